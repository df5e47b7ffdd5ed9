"""Optimizers, learning-rate schedules (step-based) and the weight EMA."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from deblurkit.train.config import TrainConfig


def build_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (MIMO-UNet recipe) or AdamW (NAFNet recipe) with the config's lr, betas and weight decay."""
    kwargs = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2), "weight_decay": cfg.weight_decay}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)


def default_milestones(max_steps: int) -> list[int]:
    """Halve at every sixth of the run (MIMO-UNet: every 500 of 3000 epochs)."""
    step = max(1, max_steps // 6)
    return list(range(step, max_steps, step))[:5]


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule: ``multistep`` (× gamma at milestones), ``cosine`` (lr → min_lr at max_steps), ``constant``."""
    if cfg.scheduler == "multistep":
        milestones = cfg.milestones or default_milestones(cfg.max_steps)
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.max_steps, eta_min=cfg.min_lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied).

    ``ema = decay · ema + (1 - decay) · param`` after each optimizer step. ``.module`` is a full
    copy of the model holding the averaged weights (use it for validation and export).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.module.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - self.decay)
        for e, b in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
