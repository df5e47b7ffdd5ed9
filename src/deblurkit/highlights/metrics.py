"""Scores inside clipped regions: PSNR in linear and in mu-law tone-mapped space.

HDR values have no natural maximum, so both metrics take an explicit ``peak`` (sensor units,
1 = clipping level): values are divided by it and clipped to [0, 1] before scoring. The mu-law
curve ``log(1 + mu x) / log(1 + mu)`` with ``mu = 5000`` is the usual HDR tone mapping for
losses and metrics (Kalantari & Ramamoorthi, "Deep High Dynamic Range Imaging of Dynamic Scenes",
SIGGRAPH 2017).
"""

from __future__ import annotations

import math

import numpy as np

MU = 5000.0
#: Default peak: 64x the clipping level (6 stops of highlight headroom).
HDR_PEAK = 64.0


def mu_law_linear(x: np.ndarray, *, peak: float, mu: float = MU) -> np.ndarray:
    """Mu-law tone mapping of linear values normalised by ``peak``: result in [0, 1]."""
    y = np.clip(np.asarray(x, dtype=np.float64) / peak, 0.0, 1.0)
    return np.log1p(mu * y) / math.log1p(mu)


def _masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    if a.shape != b.shape or a.shape[:2] != mask.shape:
        raise ValueError(f"shape mismatch: {a.shape}, {b.shape}, mask {mask.shape}")
    if not mask.any():
        return float("nan")
    mse = float(((a - b) ** 2)[mask].mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def psnr_linear_masked(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, peak: float) -> float:
    """PSNR (dB) of linear ``(H, W, 3)`` images over the pixels of ``mask`` ``(H, W)``, data range ``peak``.

    NaN when the mask is empty.
    """
    a = np.clip(np.asarray(pred, np.float64) / peak, 0.0, 1.0)
    b = np.clip(np.asarray(truth, np.float64) / peak, 0.0, 1.0)
    return _masked_psnr(a, b, mask)


def psnr_mulaw_masked(
    pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, peak: float, mu: float = MU
) -> float:
    """PSNR (dB) after :func:`mu_law_linear` over the pixels of ``mask``; NaN when the mask is empty."""
    return _masked_psnr(mu_law_linear(pred, peak=peak, mu=mu), mu_law_linear(truth, peak=peak, mu=mu), mask)
