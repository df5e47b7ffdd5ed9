"""Sensor and camera-pipeline stages: Bayer mosaic, Poisson-Gaussian noise, Malvar demosaic, JPEG.

Raw images are kept at full resolution as ``(B, 1, H, W)`` colour-filter-array (CFA) samples;
the Bayer pattern string gives the colours of the 2x2 tile read row by row (``"RGGB"``: R at
(0,0), G at (0,1) and (1,0), B at (1,1)). H and W must be even.

References:
    Malvar, He, Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned
    color images", ICASSP 2004. Brooks et al., "Unprocessing Images for Learned Raw Denoising",
    CVPR 2019 (noise model and level sampling). Rim et al., RSBlur, ECCV 2022 (noise presets).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from deblurkit.synth.trajectory import uniform

BAYER_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def _check_pattern(pattern: str) -> None:
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"unknown Bayer pattern {pattern!r}; valid: {', '.join(BAYER_PATTERNS)}")


def bayer_masks(pattern: str, height: int, width: int) -> Tensor:
    """Binary ``(3, H, W)`` float32 masks: ``masks[c, y, x] = 1`` where the CFA samples colour c."""
    _check_pattern(pattern)
    m = torch.zeros(3, height, width, dtype=torch.float32)
    for i, ch in enumerate(pattern):
        m[_CHANNEL[ch], i // 2 :: 2, i % 2 :: 2] = 1.0
    return m


def mosaic_bayer(x: Tensor, pattern: str) -> Tensor:
    """Sample an RGB image ``(B, 3, H, W)`` through a Bayer CFA: returns ``(B, 1, H, W)``."""
    m = bayer_masks(pattern, x.shape[-2], x.shape[-1])
    return (x * m).sum(dim=1, keepdim=True)


# Malvar-He-Cutler 5x5 filters (the paper's Fig. 2), divided by 8.
_G_AT_RB = [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]
_RB_AT_G_ROW = [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]]
_RB_AT_G_COL = [list(r) for r in zip(*_RB_AT_G_ROW, strict=True)]
_RB_AT_BR = [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]
_MALVAR = torch.tensor([_G_AT_RB, _RB_AT_G_ROW, _RB_AT_G_COL, _RB_AT_BR], dtype=torch.float32)[:, None] / 8.0


def demosaic_malvar(raw: Tensor, pattern: str) -> Tensor:
    """Malvar-2004 gradient-corrected bilinear demosaicing.

    Args:
        raw: ``(B, 1, H, W)`` CFA samples (linear, any range), H and W even.
        pattern: one of :data:`BAYER_PATTERNS`.

    Returns:
        ``(B, 3, H, W)`` float32 RGB (not clipped; the filters can overshoot at edges).
    """
    _check_pattern(pattern)
    _, _, h, w = raw.shape
    if h % 2 or w % 2:
        raise ValueError(f"demosaic needs even height and width, got {h}x{w}")
    f = F.conv2d(F.pad(raw, (2, 2, 2, 2), mode="reflect"), _MALVAR.to(raw.dtype))
    g_at_rb, at_g_row, at_g_col, at_opposite = f[:, 0:1], f[:, 1:2], f[:, 2:3], f[:, 3:4]
    m = bayer_masks(pattern, h, w).to(raw.dtype)
    r_row = torch.zeros(h, 1, dtype=raw.dtype)  # rows that contain red samples
    r_row[m[0].sum(dim=1) > 0] = 1.0
    b_row = 1.0 - r_row
    g_mask = m[1]
    green = raw * g_mask + g_at_rb * (1 - g_mask)
    red = raw * m[0] + at_opposite * m[2] + g_mask * (at_g_row * r_row + at_g_col * b_row)
    blue = raw * m[2] + at_opposite * m[0] + g_mask * (at_g_row * b_row + at_g_col * r_row)
    return torch.cat([red, green, blue], dim=1)


def add_poisson_gaussian_noise(
    x: Tensor, shot: Tensor, read: Tensor, generator: torch.Generator, *, poisson: bool = True
) -> Tensor:
    """Add signal-dependent sensor noise with variance ``shot * x + read``.

    Args:
        x: ``(B, C, H, W)`` clean linear raw values in [0, 1] (negative values treated as 0 for
            the shot term).
        shot: ``(B,)`` shot-noise gain (variance per unit signal).
        read: ``(B,)`` read-noise variance.
        generator: random source.
        poisson: exact Poisson shot noise (``shot * Poisson(x / shot)``) when True, as in RSBlur;
            its Gaussian approximation when False, as in "Unprocessing".

    Returns:
        Noisy ``(B, C, H, W)`` float32, not clipped.
    """
    shot = shot.to(x.dtype).view(-1, 1, 1, 1)
    read = read.to(x.dtype).view(-1, 1, 1, 1)
    xc = x.clamp_min(0.0)
    if poisson:
        noisy = torch.poisson(xc / shot, generator=generator) * shot
    else:
        noisy = x + (xc * shot).sqrt() * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return noisy + read.sqrt() * torch.randn(x.shape, generator=generator, dtype=x.dtype)


#: RSBlur noise presets: (beta1 = shot gain K, beta2 = read-noise standard deviation); the
#: sampled values are U(0.5, 1.5) times these.
RSBLUR_NOISE: dict[str, tuple[float, float]] = {
    "rsblur-realblur": (8.8915e-5, 2.9430e-5),
    "rsblur-rsblur": (1e-4, 9.1504e-4),
}
NOISE_MODELS: tuple[str, ...] = ("none", "unprocessing", "rsblur-realblur", "rsblur-rsblur")


def sample_noise_levels(model: str, generator: torch.Generator) -> tuple[float, float]:
    """Sample ``(shot, read_variance)`` for a noise model.

    ``"unprocessing"``: log(shot) ~ U(log 1e-4, log 0.012); log(read) = 2.18 log(shot) + 1.20 +
    N(0, 0.26^2). ``"rsblur-*"``: shot ~ U(0.5, 1.5) * beta1, read std ~ U(0.5, 1.5) * beta2.
    ``"none"``: (0, 0).
    """
    if model == "none":
        return 0.0, 0.0
    if model == "unprocessing":
        log_shot = uniform(generator, math.log(1e-4), math.log(0.012))
        log_read = (
            2.18 * log_shot + 1.20 + 0.26 * float(torch.randn((), generator=generator, dtype=torch.float64))
        )
        return math.exp(log_shot), math.exp(log_read)
    if model in RSBLUR_NOISE:
        b1, b2 = RSBLUR_NOISE[model]
        return uniform(generator, 0.5 * b1, 1.5 * b1), uniform(generator, 0.5 * b2, 1.5 * b2) ** 2
    raise ValueError(f"unknown noise model {model!r}; valid: {', '.join(NOISE_MODELS)}")


def jpeg_roundtrip_srgb(x: Tensor, quality: int) -> Tensor:
    """Encode and decode an sRGB image ``(B, 3, H, W)`` in [0, 1] as 8-bit JPEG (OpenCV, 4:2:0)."""
    import cv2

    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        arr = (x[i].clamp(0, 1).permute(1, 2, 0).numpy()[..., ::-1] * 255.0 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
            raise RuntimeError("JPEG encoding failed")
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
        out[i] = torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1)
    return out
