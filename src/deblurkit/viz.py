"""Comparison images: two images side by side, labelled grids of examples.

>>> import numpy as np
>>> side_by_side(np.zeros((4, 5, 3)), np.ones((4, 5, 3)), gap=2).shape
(4, 12, 3)
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_rows", "side_by_side"]


def side_by_side(before: np.ndarray, after: np.ndarray, *, gap: int = 8) -> np.ndarray:
    """Place two ``(H, W, C)`` images next to each other with a white gap: ``(H, 2W + gap, C)``."""
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} vs {after.shape}")
    h, _, c = before.shape
    sep = np.ones((h, gap, c), dtype=np.float32)
    return np.concatenate([before.astype(np.float32), sep, after.astype(np.float32)], axis=1)


def label_rows(grid: np.ndarray, labels: list[str], tile: int) -> np.ndarray:
    """Write ``labels[i]`` (white on a dark outline) at the top left of row ``i`` of a grid of ``tile``-px rows.

    Args:
        grid: float32 ``(rows * tile, W, 3)`` sRGB in [0, 1].
        labels: one text per row.
        tile: row height in pixels.

    Returns:
        The labelled grid, float32 in [0, 1] (quantised to 8 bits).
    """
    import cv2

    from deblurkit.io import float_to_uint

    out = np.ascontiguousarray(float_to_uint(grid, 8))
    for i, text in enumerate(labels):
        y = i * tile + 18
        cv2.putText(out, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out.astype(np.float32) / 255.0
