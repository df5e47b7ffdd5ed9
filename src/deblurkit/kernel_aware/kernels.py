"""Kernel utilities shared by estimation, the blind pipeline, training data and the studies."""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_centroid_offset", "kernel_effective_support", "kernel_similarity", "perturbed_kernel",
           "resize_kernel"]


def kernel_effective_support(kernel: np.ndarray) -> float:
    """``1 / sum(k^2)`` for a kernel summing to 1: 1 for a delta, N for N equal pixels."""
    k = np.asarray(kernel, dtype=np.float64)
    k = k / k.sum()
    return float(1.0 / (k * k).sum())


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


def kernel_centroid_offset(kernel: np.ndarray) -> tuple[float, float]:
    """``(dy, dx)``: the kernel's centroid minus its centre pixel ``(k_h // 2, k_w // 2)``, in pixels.

    Deconvolving with a kernel whose centroid is off its centre pixel displaces the result by
    this much against the convention that a blur keeps the centroid of the scene in place (whole
    pixels are removed by re-centring; the fraction is what remains).
    """
    k = np.asarray(kernel, dtype=np.float64)
    total = float(k.sum())
    if total <= 0:
        return 0.0, 0.0
    ys = np.arange(k.shape[0], dtype=np.float64)
    xs = np.arange(k.shape[1], dtype=np.float64)
    cy = float((k.sum(axis=1) * ys).sum()) / total
    cx = float((k.sum(axis=0) * xs).sum()) / total
    return cy - k.shape[0] // 2, cx - k.shape[1] // 2


def resize_kernel(k: np.ndarray, size: int) -> np.ndarray:
    """``k`` resampled (bilinear) to ``size`` x ``size``, negatives dropped, summing to 1 (a
    centred delta if nothing is left). Float64."""
    import cv2

    out = cv2.resize(k.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    out = np.maximum(out, 0.0)
    s = out.sum()
    if s <= 0:
        out = np.zeros((size, size))
        out[size // 2, size // 2] = 1.0
        return out
    return out / s


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
    from scipy.ndimage import gaussian_filter

    factor = float(rng.uniform(1.0 - size_jitter, 1.0 + size_jitter))
    sigma = float(rng.uniform(0.0, max_smoothing))
    out = resize_kernel(np.asarray(kernel), max(3, round(kernel.shape[0] * factor) | 1))
    if sigma > 0:
        out = gaussian_filter(out, sigma, mode="constant")
    return out / out.sum()  # the blur of a non-negative kernel keeps most of its mass
