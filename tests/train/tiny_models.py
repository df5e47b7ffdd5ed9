"""Tiny networks for fast training tests (importable by spawned DDP workers)."""

from __future__ import annotations

import torch
from torch import nn


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
