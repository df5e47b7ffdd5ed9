"""Kernel utilities shared by estimation, the blind pipeline and the studies."""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_similarity"]


def kernel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Maximum normalised cross-correlation of two kernels over all shifts (1 = identical up to shift).

    The full cross-correlation is computed with FFTs padded to at least the sum of the sizes, so
    the circular correlation has no wrap-around and its maximum is that of the full one
    (``scipy.signal.correlate(a, b, "full").max()``, without importing ``scipy.signal``, which
    takes about 2 s on a 2-core machine).
    """
    import scipy.fft

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    shape = [scipy.fft.next_fast_len(a.shape[i] + b.shape[i] - 1, real=True) for i in range(2)]
    spectrum = scipy.fft.rfft2(a, shape) * np.conj(scipy.fft.rfft2(b, shape))
    full = scipy.fft.irfft2(spectrum, shape)
    return float(full.max() / np.sqrt((a * a).sum() * (b * b).sum()))
