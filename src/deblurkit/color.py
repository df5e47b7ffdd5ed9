"""sRGB transfer functions, luminance and the working brightness scale, on NumPy arrays.

The torch versions used by the blur synthesis live in :mod:`deblurkit.synth.color`. Both follow
IEC 61966-2-1; these ones clip to [0, 1] and return float32.

>>> import numpy as np
>>> round(float(srgb_to_linear(np.float32(0.5))), 4)
0.214
>>> round(float(linear_to_srgb(np.float32(0.214))), 3)
0.5
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["ColorSpace", "linear_to_srgb", "luminance", "reinhard_tonemap_linear", "srgb_to_linear", "working_scale"]

#: How an image's values are encoded: sRGB (what cameras and image files hold) or linear light.
ColorSpace = Literal["srgb", "linear"]

#: Rec. 709 / sRGB luminance weights of linear R, G, B.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Decode sRGB values (clipped to [0, 1] first) to linear light; float32, same shape."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Encode linear values (clipped to [0, 1] first) with the sRGB curve; float32, same shape."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


def luminance(linear_rgb: np.ndarray) -> np.ndarray:
    """Luminance ``(H, W)`` float32 of linear ``(H, W, 3)`` RGB (Rec. 709 weights)."""
    r, g, b = LUMINANCE_WEIGHTS
    lin = linear_rgb
    return (r * lin[..., 0] + g * lin[..., 1] + b * lin[..., 2]).astype(np.float32)


def reinhard_tonemap_linear(linear_rgb: np.ndarray, *, white: float) -> np.ndarray:
    """Compress high-dynamic-range linear RGB into [0, 1] with Reinhard's global operator.

    Luminance ``L`` maps to ``L (1 + L / white^2) / (1 + L)`` (Reinhard et al., "Photographic Tone
    Reproduction for Digital Images", SIGGRAPH 2002, eq. 4), and each pixel's RGB is scaled by the
    same factor, so hues are kept; ``white`` maps to 1. A fixed curve: the frames of a video are
    mapped alike (no flicker). The result is linear; encode it with :func:`linear_to_srgb`.

    Args:
        linear_rgb: ``(H, W, 3)`` linear RGB, >= 0, any range.
        white: the smallest luminance shown as white (> 0), in the same units.

    Returns:
        ``(H, W, 3)`` float32 linear RGB in [0, 1] (channels of saturated colours are clipped).

    >>> img = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [16.0, 16.0, 16.0]]], np.float32)
    >>> [round(float(v), 3) for v in reinhard_tonemap_linear(img, white=16.0)[0, :, 0]]
    [0.0, 0.502, 1.0]
    """
    if white <= 0:
        raise ValueError(f"white must be positive, got {white}")
    lin = np.maximum(np.asarray(linear_rgb, dtype=np.float32), 0.0)
    lum = luminance(lin)
    mapped = lum * (1.0 + lum / np.float32(white * white)) / (1.0 + lum)
    gain = np.where(lum > 1e-8, mapped / np.maximum(lum, 1e-8), 1.0).astype(np.float32)
    return np.clip(lin * gain[..., None], 0.0, 1.0).astype(np.float32)


def working_scale(gray: np.ndarray) -> float:
    """The brightness that linear luminance ``gray`` is divided by before kernel estimation.

    Its 99.5th percentile, at least 0.05: the priors' weights are absolute, so dark photos are
    brightened for the computation (and scaled back after).

    >>> working_scale(np.full((4, 4), 0.5, np.float32))
    0.5
    """
    return float(max(np.percentile(gray, 99.5), 0.05))
