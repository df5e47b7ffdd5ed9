"""Reproducible, resumable training (single process or DDP via torchrun).

- :class:`TrainConfig` (:mod:`deblurkit.train.config`): the flat, typed config; ``resolve_config``
  applies a recipe, a YAML file and ``key=value`` overrides.
- :func:`train` (:mod:`deblurkit.train.loop`): runs it; checkpoints, metrics.csv, validation.
- :mod:`deblurkit.train.losses`: MIMO-UNet multi-scale L1 + FFT loss, PSNR loss, Charbonnier.

Importing this package does not import torch (the names below are loaded on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "TrainResult", "resolve_config", "train"]


def __getattr__(name: str) -> Any:
    if name in ("TrainConfig", "resolve_config"):
        from deblurkit.train import config

        return getattr(config, name)
    if name in ("train", "TrainResult"):
        from deblurkit.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'deblurkit.train' has no attribute {name!r}")
