"""deblurkit: make blurry real-world photos sharp.

Subpackages (import what you need; nothing heavy is imported here):

- :mod:`deblurkit.synth`     realistic blur synthesis (training data)
- :mod:`deblurkit.data`      readers of real paired datasets (GoPro folders, RealBlur lists)
- :mod:`deblurkit.models`    deblurring architectures (MIMO-UNet, NAFNet) and checkpoint loading
- :mod:`deblurkit.infer`     the runtime: padding, tiling, ONNX Runtime backend, restorers by name
- :mod:`deblurkit.kernel_aware` blind kernel estimation, deconvolution and the kernel-refine pipeline
- :mod:`deblurkit.color`     sRGB <-> linear light, luminance (NumPy)
- :mod:`deblurkit.train`     reproducible, resumable training (single process or DDP)
- :mod:`deblurkit.eval`      metrics (PSNR/SSIM, RealBlur protocol) and benchmark tables
- :mod:`deblurkit.app`       the ``deblurkit deblur`` command and the web app
"""

__version__ = "0.1.0"
