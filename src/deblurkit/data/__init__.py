"""Readers of real paired (blurry, sharp) datasets on disk: GoPro-style folders and RealBlur datalists.

Synthetic pairs come from :mod:`deblurkit.synth`.
"""
