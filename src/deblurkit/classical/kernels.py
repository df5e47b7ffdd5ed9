"""Small kernel helpers for tests and studies: random camera-shake kernels and similarity.

The realistic blur synthesis lives in :mod:`deblurkit.synth`; this module only provides a
dependency-free shake kernel so the classical pipeline can be tested on its own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_similarity", "random_shake_kernel"]


def random_shake_kernel(size: int, length: float, rng: np.random.Generator, *, steps: int = 256,
                        turn: float = 0.3) -> np.ndarray:
    """A random smooth camera-shake trajectory rasterised into a ``(size, size)`` kernel.

    Args:
        size: kernel support (odd).
        length: largest extent of the trajectory in pixels (<= size - 2).
        rng: random generator (the only source of randomness).
        steps: number of trajectory samples.
        turn: standard deviation of the direction change per step (larger = more curved).

    Returns:
        float64 kernel summing to 1, trajectory centred on the mean position.
    """
    pos = np.zeros((steps, 2))
    vel = rng.normal(size=2)
    vel /= np.linalg.norm(vel)
    for i in range(1, steps):
        vel = vel + rng.normal(scale=turn, size=2)
        vel /= np.linalg.norm(vel)
        pos[i] = pos[i - 1] + vel
    pos -= pos.mean(axis=0)
    extent = np.abs(pos).max()
    pos *= (min(length, size - 2) / 2.0) / max(extent, 1e-9)
    k = np.zeros((size, size))
    c = size // 2
    for y, x in pos + c:
        iy, ix = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - iy, x - ix
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
            if 0 <= iy + dy < size and 0 <= ix + dx < size:
                k[iy + dy, ix + dx] += w
    return k / k.sum()


def kernel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Maximum normalised cross-correlation of two kernels over all shifts (1 = identical up to shift)."""
    from scipy.signal import correlate

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(correlate(a, b, mode="full").max() / np.sqrt((a * a).sum() * (b * b).sum()))
