"""deblurkit.curate: score and filter candidate sharp training images.

Modules:

- :mod:`~deblurkit.curate.scores`: pure no-reference measures on float32 sRGB ``(H, W, 3)``
  arrays in [0, 1]: sharpness, noise level, JPEG blockiness, clipping, perceptual hash.
- :mod:`~deblurkit.curate.detectors`: measures that need an optional package with a model shipped
  inside it: BRISQUE (``brisque``) and face detection (``yuface``, libfacedetection).
- :mod:`~deblurkit.curate.rules`: ``CurationRules`` (thresholds) and ``decide`` (reasons to reject).
- :mod:`~deblurkit.curate.classifier`: a logistic-regression accept/reject model over the scores,
  stored as JSON.
- :mod:`~deblurkit.curate.run` / :mod:`~deblurkit.curate.cli`: ``deblurkit curate``, the manifest.

This package file imports nothing heavy, so ``deblurkit --help`` stays fast.
"""
