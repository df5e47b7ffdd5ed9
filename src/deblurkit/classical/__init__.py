"""Classical (non-learned) deblurring: non-blind deconvolution, blind kernel estimation, and the
kernel-aware pipeline.

* :mod:`deblurkit.classical.deconv` — ``wiener_deconv``, ``richardson_lucy_deconv``,
  ``hyper_laplacian_deconv`` on linear-light ``(H, W, C)`` float32 arrays (border-safe).
* :mod:`deblurkit.classical.kernel_estimation` — ``estimate_kernel`` (coarse-to-fine, L0
  gradient prior, gradient-domain least squares).
* :mod:`deblurkit.classical.blind` — ``deblur_image`` / ``deblur_image_with_kernel``: the whole
  pipeline (sRGB in, per-tile kernels, "no blur" and "unreliable estimate" detection).
* :mod:`deblurkit.classical.kernels` — random shake kernels and kernel similarity (tests, studies).

Heavy modules are imported lazily by the callers; importing this package imports nothing else.
"""
