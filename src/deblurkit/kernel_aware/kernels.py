"""Kernel utilities shared by estimation, the blind pipeline and the studies."""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_similarity"]


def kernel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Maximum normalised cross-correlation of two kernels over all shifts (1 = identical up to shift)."""
    from scipy.signal import correlate

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(correlate(a, b, mode="full").max() / np.sqrt((a * a).sum() * (b * b).sum()))
