"""Colour-space conversions and camera colour matrices.

All functions take and return float32 tensors ``(B, 3, H, W)``; the colour space is in the name.
Values are not clipped unless a docstring says so (linear light may exceed 1 before clipping,
e.g. after the saturation stage).

References:
    IEC 61966-2-1 (sRGB transfer function); Brooks et al., "Unprocessing Images for Learned Raw
    Denoising", CVPR 2019 (random colour matrices); Rim et al., "Realistic Blur Synthesis for
    Learning Image Deblurring", ECCV 2022 (Sony A7R3 matrix).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Linear sRGB (D65) -> CIE XYZ.
RGB_TO_XYZ: tuple[tuple[float, ...], ...] = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)

#: XYZ -> camera-RGB matrices of real cameras (Adobe DNG ColorMatrix values as listed by
#: dcraw/libraw, divided by 10000). The first four are the ones "Unprocessing" mixes; the
#: Sony A7R3 is the RealBlur/RSBlur camera.
XYZ_TO_CAM: dict[str, tuple[tuple[float, ...], ...]] = {
    "unprocessing-1": ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    "unprocessing-2": ((0.4913, -0.0541, -0.0202), (-0.6130, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    "unprocessing-3": ((0.8380, -0.2630, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    "unprocessing-4": ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.0970, 0.1581, 0.5181)),
    "sony-a7r3": ((0.6640, -0.1847, -0.0503), (-0.5238, 1.3010, 0.2474), (-0.0993, 0.1673, 0.6527)),
}


def srgb_to_linear(x: Tensor) -> Tensor:
    """Decode the sRGB transfer function (IEC 61966-2-1) to linear light.

    Args:
        x: sRGB-encoded values, float32 ``(B, 3, H, W)`` (any shape works), nominally in [0, 1].
            Negative values are mapped with odd symmetry.

    Returns:
        Linear-light values, same shape and dtype.

    Example:
        >>> float(srgb_to_linear(torch.tensor([0.5])))  # doctest: +ELLIPSIS
        0.2140...
    """
    a = x.abs()
    out = torch.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055).clamp_min(0) ** 2.4)
    return out * torch.sign(x) if bool((x < 0).any()) else out


def linear_to_srgb(x: Tensor) -> Tensor:
    """Encode linear light with the sRGB transfer function (inverse of :func:`srgb_to_linear`).

    Args:
        x: linear values, float32 ``(B, 3, H, W)`` (any shape works). Not clipped.

    Returns:
        sRGB-encoded values, same shape and dtype.
    """
    a = x.abs()
    out = torch.where(a <= 0.0031308, a * 12.92, 1.055 * a.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    return out * torch.sign(x) if bool((x < 0).any()) else out


def smoothstep(x: Tensor) -> Tensor:
    """Global tone curve ``3x^2 - 2x^3`` used as a simple camera response ("Unprocessing").

    Input is clipped to [0, 1]; output is in [0, 1].
    """
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def apply_color_matrix(x: Tensor, matrix: Tensor) -> Tensor:
    """Multiply every pixel's colour vector by a 3x3 matrix.

    Args:
        x: ``(B, 3, H, W)`` float32.
        matrix: ``(3, 3)`` or per-item ``(B, 3, 3)``; ``out[:, i] = sum_j matrix[i, j] * x[:, j]``.

    Returns:
        ``(B, 3, H, W)`` float32.
    """
    if matrix.ndim == 2:
        matrix = matrix.expand(x.shape[0], 3, 3)
    return torch.einsum("bij,bjhw->bihw", matrix.to(x.dtype), x)


def rgb_to_cam_matrix(camera_weights: dict[str, float]) -> Tensor:
    """Linear-sRGB -> camera-RGB matrix from a convex combination of real cameras' XYZ->cam matrices.

    Rows are normalised to sum to 1, so white (1, 1, 1) maps to white before white balance
    (as in "Unprocessing").

    Args:
        camera_weights: non-negative weight per key of :data:`XYZ_TO_CAM` (normalised here).

    Returns:
        ``(3, 3)`` float32 matrix.
    """
    total = sum(camera_weights.values())
    xyz2cam = sum(
        torch.tensor(XYZ_TO_CAM[name], dtype=torch.float64) * (w / total)
        for name, w in camera_weights.items()
    )
    rgb2cam = xyz2cam @ torch.tensor(RGB_TO_XYZ, dtype=torch.float64)
    rgb2cam = rgb2cam / rgb2cam.sum(dim=1, keepdim=True)
    return rgb2cam.to(torch.float32)
