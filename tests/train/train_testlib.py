"""Helpers for the training tests: tiny paired folders and tiny networks (importable by spawned DDP workers).

The module name is unique on purpose: pytest puts several test folders on sys.path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


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


class TinyResidualNet(nn.Module):
    """``x + tail(body(x))``: ``depth`` 3x3 convs with ReLU; the tail is zero-initialised, so the
    network starts as the identity (its first loss is the loss of the blurry input)."""

    size_multiple = 1

    def __init__(self, width: int = 16, depth: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout2d(dropout))
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.tail(self.body(x))


class TinyMultiScaleNet(TinyResidualNet):
    """Returns ``[1/4, 1/2, full]`` outputs like MIMO-UNet (coarse ones are the downscaled full output)."""

    size_multiple = 4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        full = super().forward(x)
        half = nn.functional.interpolate(full, scale_factor=0.5, mode="bilinear")
        quarter = nn.functional.interpolate(half, scale_factor=0.5, mode="bilinear")
        return [quarter, half, full]
