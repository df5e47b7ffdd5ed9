"""Reference methods for evaluation tables: identity, unsharp masking, non-blind deconvolution.

All take and return float32 sRGB ``(H, W, 3)`` images in [0, 1]. The non-blind ones need the
true blur kernel (known for synthesized data) and deconvolve in the space the blur was applied
(linear light for physical presets: sRGB → linear → deconvolve → sRGB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deblurkit.color import linear_to_srgb, srgb_to_linear

#: baseline name -> (needs the true kernel, settings recorded in reports)
BASELINES: dict[str, tuple[bool, dict[str, Any]]] = {
    "identity": (False, {"description": "the blurry input itself"}),
    "unsharp": (False, {"description": "unsharp masking in sRGB: x + amount*(x - gauss(x, sigma))",
                        "sigma": 2.0, "amount": 1.0}),
    "wiener": (True, {"description": "non-blind Wiener deconvolution with the true kernel", "nsr": 1e-2}),
    "richardson-lucy": (True, {"description": "non-blind Richardson-Lucy with the true kernel", "iterations": 30}),
}


def unsharp_mask_srgb(image: np.ndarray, *, sigma: float = 2.0, amount: float = 1.0) -> np.ndarray:
    """Unsharp masking: ``clip(x + amount · (x − G_sigma * x), 0, 1)`` on sRGB values.

    Args:
        image: ``(H, W, C)`` float32 sRGB in [0, 1].
        sigma: Gaussian standard deviation in pixels (border: reflect).
        amount: gain of the high-pass detail.

    Returns:
        Sharpened ``(H, W, C)`` float32 in [0, 1].
    """
    import cv2

    x = np.asarray(image, dtype=np.float32)
    low = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if low.ndim == 2 and x.ndim == 3:
        low = low[..., None]
    return np.clip(x + amount * (x - low), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class NonBlindDeconv:
    """Deconvolve with the true kernel, in linear light (``blur_space="linear"``) or on sRGB values."""

    method: str
    nsr: float = 1e-2
    iterations: int = 30

    def __call__(self, blur_srgb: np.ndarray, kernel: np.ndarray, *, blur_space: str = "linear") -> np.ndarray:
        from deblurkit.kernel_aware.deconv import richardson_lucy_deconv, wiener_deconv

        x = np.asarray(blur_srgb, dtype=np.float32)
        lin = srgb_to_linear(x) if blur_space == "linear" else x
        if self.method == "wiener":
            out = wiener_deconv(lin, kernel, nsr=self.nsr)
        else:
            out = richardson_lucy_deconv(lin, kernel, iterations=self.iterations)
        out = linear_to_srgb(out) if blur_space == "linear" else out
        return np.clip(out, 0.0, 1.0).astype(np.float32)
