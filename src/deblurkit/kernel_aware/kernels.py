"""Kernel utilities shared by estimation, the blind pipeline and the studies."""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_similarity", "perturbed_kernel"]


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


def perturbed_kernel(kernel: np.ndarray, rng: np.random.Generator, *, size_jitter: float = 0.15,
                     max_smoothing: float = 0.8) -> np.ndarray:
    """A plausible blind estimate of ``kernel``: its extent scaled by a random factor within
    ``1 +- size_jitter`` and smoothed with a Gaussian of random width (``0..max_smoothing`` px), the
    two ways the blind stage's kernels most often differ from the truth (too short or long, too thick).

    Args:
        kernel: ``(k, k)`` non-negative PSF, ``k`` odd.
        rng: the only source of randomness.

    Returns:
        ``(k', k')`` float64 PSF summing to 1, ``k'`` odd (the jittered size).
    """
    import cv2
    from scipy.ndimage import gaussian_filter

    k = np.asarray(kernel, np.float64)
    factor = float(rng.uniform(1.0 - size_jitter, 1.0 + size_jitter))
    sigma = float(rng.uniform(0.0, max_smoothing))
    size = max(3, round(k.shape[0] * factor) | 1)
    out = cv2.resize(k, (size, size), interpolation=cv2.INTER_LINEAR) if size != k.shape[0] else k
    if sigma > 0:
        out = gaussian_filter(out, sigma, mode="constant")
    out = np.maximum(out, 0.0)
    total = out.sum()
    if total <= 0:  # pragma: no cover - a resized non-negative kernel keeps its mass
        return k / k.sum()
    return out / total
