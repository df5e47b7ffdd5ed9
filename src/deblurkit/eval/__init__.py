"""Evaluation: metrics with explicit settings, the RealBlur protocol, baselines and reports.

- :mod:`deblurkit.eval.metrics`: ``psnr(a, b, *, data_range)``, ``ssim(a, b, *, data_range)``
  (scikit-image compatible, Gaussian σ 1.5), batched torch versions, and
  ``psnr_shift_aligned(a, b, *, data_range, max_shift)`` (Levin et al. 2009 protocol).
- :mod:`deblurkit.eval.realblur`: ``realblur_psnr_ssim(output, gt)`` (ECC-aligned, masked).
- :mod:`deblurkit.eval.baselines`: identity, unsharp masking, non-blind Wiener / Richardson–Lucy.
- :mod:`deblurkit.eval.evaluate`: ``evaluate(methods, pairs, ...)`` and the dataset helpers
  ``folder_pairs``, ``realblur_pairs``, ``synth_pairs``; writes CSV, JSON, Markdown and a figure.

Importing this package imports neither torch nor OpenCV.
"""
