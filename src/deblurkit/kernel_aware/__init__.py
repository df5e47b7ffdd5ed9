"""Kernel-aware deblurring: estimate the blur kernel, then deconvolve (and optionally refine).

* :mod:`deblurkit.kernel_aware.deconv` — ``wiener_deconv``, ``richardson_lucy_deconv``,
  ``hyper_laplacian_deconv`` on linear-light ``(H, W, C)`` float32 arrays (border-safe).
* :mod:`deblurkit.kernel_aware.estimation` — ``estimate_kernel`` (coarse-to-fine, L0
  gradient prior, gradient-domain least squares).
* :mod:`deblurkit.kernel_aware.blind` — ``deblur_image`` / ``deblur_image_and_kernels``: the
  tiled blind pipeline (sRGB in, per-tile kernels, "no blur" and "unreliable estimate" detection).
* :mod:`deblurkit.kernel_aware.refine` — the ``kernel-refine`` pipeline: the same kernels,
  Wiener copies at several strengths, refined by :class:`~deblurkit.models.kernel_deconv_net.KernelDeconvNet`.
* :mod:`deblurkit.kernel_aware.kernels` — kernel similarity.

Heavy modules are imported lazily by the callers; importing this package imports nothing else.
"""
