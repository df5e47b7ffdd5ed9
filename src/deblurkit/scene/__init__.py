"""deblurkit.scene: sharp 3-D scenes from several blurry views (Gaussian splatting + camera motion).

- :mod:`~deblurkit.scene.gaussians`: ``Gaussians`` (parameters, covariances, SH colours).
- :mod:`~deblurkit.scene.render`: differentiable tile-based splatting in pure PyTorch (``render``).
- :mod:`~deblurkit.scene.trajectory`: se(3) maps, per-view Bézier exposure trajectories, blur synthesis.
- :mod:`~deblurkit.scene.data`: synthetic scenes, shaken views, NeRF/COLMAP pose readers.
- :mod:`~deblurkit.scene.fit`: joint optimisation of Gaussians and trajectories, densification, checkpoints.
- :mod:`~deblurkit.scene.cli`: ``deblurkit scene fit | views | render``.

This package file imports nothing heavy.
"""
