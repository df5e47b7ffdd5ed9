"""deblurkit.synth: realistic blur synthesis (the training data).

Modules, each usable alone (pure functions on float32 ``(B, 3, H, W)`` tensors, randomness
from a generator passed in):

- :mod:`~deblurkit.synth.color`: the torch ``srgb_to_linear``/``linear_to_srgb`` pair, camera colour matrices
  (NumPy versions: :mod:`deblurkit.color`).
- :mod:`~deblurkit.synth.trajectory`: 2-D random-walk shake, 3-D rotational shake, homographies,
  simple random shake kernels.
- :mod:`~deblurkit.synth.blur`: PSF rendering, FFT convolution, warped-copy averaging.
- :mod:`~deblurkit.synth.isp`: Bayer mosaic, Poisson-Gaussian noise, Malvar demosaic, JPEG.
- :mod:`~deblurkit.synth.realesrgan`: Real-ESRGAN's second-order degradation.
- :mod:`~deblurkit.synth.presets`: ``SynthConfig``, ``PRESETS``, ``get_preset``.
- :mod:`~deblurkit.synth.pipeline`: ``synthesize_pair`` -> ``SynthPair``.
- :mod:`~deblurkit.synth.sources`: folder / bundled-sample / dead-leaves sharp images.
- :mod:`~deblurkit.synth.dataset`: ``SynthPairDataset`` (on the fly, deterministic per index).
- :mod:`~deblurkit.synth.writer` / :mod:`~deblurkit.synth.cli`: ``deblurkit synth``.

This package file imports nothing heavy, so ``deblurkit --help`` stays fast.
"""
