"""Fixtures for training tests: tiny paired folders written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_pairs(root: Path, count: int, size: int = 32, sigma: float = 1.0, offset: int = 0) -> Path:
    """``root/blur/*.png`` + ``root/sharp/*.png``: smooth photo crops and their Gaussian blur."""
    import cv2
    from skimage import data as skdata

    from deblurkit.io import save_png

    photo = skdata.astronaut().astype(np.float32) / 255.0
    photo = cv2.resize(cv2.GaussianBlur(photo, (0, 0), 3), (128, 128), interpolation=cv2.INTER_AREA)
    for i in range(count):
        y, x = 40 + 7 * ((i + offset) % 8), 40 + 11 * ((i + offset) % 5)
        sharp = np.ascontiguousarray(photo[y:y + size, x:x + size])
        blur = cv2.GaussianBlur(sharp, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        save_png(root / "sharp" / f"p{i:02d}.png", sharp, bits=16)
        save_png(root / "blur" / f"p{i:02d}.png", blur, bits=16)
    return root


@pytest.fixture
def pairs_dir(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "pairs", 4, size=40)
