"""Full-reference image metrics with explicit settings: PSNR and SSIM.

The value range is always passed in (``data_range``), never guessed from the pixels.
SSIM follows scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` exactly: an 11-tap Gaussian window (truncate 3.5), constants
K1 = 0.01, K2 = 0.03, the mean over the map after cropping the 5-px border that the window
cannot see, and the mean over channels. One implementation serves NumPy ``(H, W, C)`` images
(evaluation, float64) and batched torch ``(B, C, H, W)`` tensors (validation during training).

References:
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 2004.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from deblurkit.errors import DeblurkitError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SSIMSettings:
    """SSIM settings, recorded in every evaluation report."""

    sigma: float = 1.5
    """Standard deviation of the Gaussian window."""
    truncate: float = 3.5
    """The window radius is ``int(truncate * sigma + 0.5)`` (scipy.ndimage's rule): 5 px, 11 taps."""
    k1: float = 0.01
    k2: float = 0.03
    use_sample_covariance: bool = False
    """False: population (co)variances, as in Wang et al. and scikit-image's gaussian mode."""

    @property
    def radius(self) -> int:
        return int(self.truncate * self.sigma + 0.5)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "window": 2 * self.radius + 1, "gaussian_weights": True,
                "border_crop": self.radius, "channels": "mean over RGB channels"}


DEFAULT_SSIM = SSIMSettings()


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise DeblurkitError(f"metric inputs differ in shape: {a.shape} vs {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray, *, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``, computed in float64.

    Args:
        a: image, any shape (e.g. ``(H, W, C)``), values in ``[0, data_range]``.
        b: image of the same shape.
        data_range: the peak value range (1.0 for float images in [0, 1], 255 for 8-bit).

    Returns:
        PSNR in dB (``inf`` for identical images).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    _check_pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _gaussian_taps(settings: SSIMSettings, dtype, device=None):
    import torch

    r = settings.radius
    x = torch.arange(-r, r + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (x / settings.sigma) ** 2)
    return g / g.sum()


def ssim_map_torch(
    a: torch.Tensor, b: torch.Tensor, *, data_range: float, settings: SSIMSettings = DEFAULT_SSIM
) -> torch.Tensor:
    """The SSIM map over the window-valid region (the image less a ``radius`` border).

    Args:
        a: ``(B, C, H, W)`` float tensor in ``[0, data_range]``.
        b: ``(B, C, H, W)`` float tensor, same shape.
        data_range: the value range.
        settings: window and constants.

    Returns:
        ``(B, C, H - 2r, W - 2r)`` SSIM map (r = 5 for the defaults); equals scikit-image's
        ``full=True`` map with its ``r``-pixel border cropped.
    """
    import torch.nn.functional as F

    if a.shape != b.shape or a.dim() != 4:
        raise DeblurkitError(f"SSIM needs two (B,C,H,W) tensors of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    r = settings.radius
    if a.shape[-1] <= 2 * r or a.shape[-2] <= 2 * r:
        raise DeblurkitError(f"SSIM needs images larger than {2 * r + 1}x{2 * r + 1}, got {tuple(a.shape[-2:])}")
    c = a.shape[1]
    g = _gaussian_taps(settings, a.dtype, a.device)
    gx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    gy = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def filt(t):
        return F.conv2d(F.conv2d(t, gx, groups=c), gy, groups=c)

    ux, uy = filt(a), filt(b)
    uxx, uyy, uxy = filt(a * a), filt(b * b), filt(a * b)
    if settings.use_sample_covariance:
        n = (2 * r + 1) ** 2
        cov_norm = n / (n - 1)
    else:
        cov_norm = 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (settings.k1 * data_range) ** 2
    c2 = (settings.k2 * data_range) ** 2
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim_torch(
    a: torch.Tensor, b: torch.Tensor, *, data_range: float, settings: SSIMSettings = DEFAULT_SSIM
) -> torch.Tensor:
    """Per-image SSIM of two ``(B, C, H, W)`` tensors; returns a ``(B,)`` tensor."""
    return ssim_map_torch(a, b, data_range=data_range, settings=settings).mean(dim=(1, 2, 3))


def psnr_torch(a: torch.Tensor, b: torch.Tensor, *, data_range: float) -> torch.Tensor:
    """Per-image PSNR in dB of two ``(B, C, H, W)`` tensors; returns a ``(B,)`` tensor."""
    import torch

    mse = ((a.double() - b.double()) ** 2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def _to_bchw64(x: np.ndarray):
    import torch

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise DeblurkitError(f"SSIM needs an (H,W) or (H,W,C) image, got shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def ssim_map(
    a: np.ndarray, b: np.ndarray, *, data_range: float, settings: SSIMSettings = DEFAULT_SSIM
) -> np.ndarray:
    """SSIM map of two ``(H, W, C)`` (or ``(H, W)``) images, float64, window-valid region only.

    Returns:
        ``(H - 2r, W - 2r, C)`` array (r = 5 for the defaults).
    """
    _check_pair(np.asarray(a), np.asarray(b))
    m = ssim_map_torch(_to_bchw64(a), _to_bchw64(b), data_range=data_range, settings=settings)
    return m[0].permute(1, 2, 0).numpy()


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float, settings: SSIMSettings = DEFAULT_SSIM) -> float:
    """Structural similarity of two images, scikit-image compatible (Gaussian weights, σ 1.5).

    Equals ``skimage.metrics.structural_similarity(a, b, data_range=data_range, channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Args:
        a: ``(H, W, C)`` or ``(H, W)`` image in ``[0, data_range]``.
        b: image of the same shape.
        data_range: the value range (required; 1.0 for float images).
        settings: window and constants (defaults as above).

    Returns:
        Mean SSIM (mean over the cropped map and the channels).
    """
    return float(ssim_map(a, b, data_range=data_range, settings=settings).mean())
