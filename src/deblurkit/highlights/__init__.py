"""deblurkit.highlights: recover clipped highlights in video from past frames, online.

Modules (imported on demand; this file imports nothing heavy):

- :mod:`~deblurkit.highlights.camera`: the video camera (noise, clipping, tone curve, 8 bits) and
  its inverse tone curve.
- :mod:`~deblurkit.highlights.video`: synthetic clips from linear HDR panoramas with exact ground
  truth (rotation-only camera, motion blur, auto-exposure).
- :mod:`~deblurkit.highlights.align`: clipped-region masks, reference alignment (homography or
  DIS flow) with a confidence map, exposure-ratio estimation.
- :mod:`~deblurkit.highlights.fill`: per-frame restoration (no fill, copy from the reference) and
  reference-selection rules.
- :mod:`~deblurkit.highlights.metrics`: PSNR in linear and mu-law space inside clipped regions.
"""
