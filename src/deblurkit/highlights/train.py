"""Training the highlight network on synthetic clips.

Samples are (current frame, past reference) pairs from clips of the training panoramas with a
randomly drawn auto-exposure controller; the reference is 1..``max_ref_age`` frames old (with
probability ``ref_darkest`` the least exposed frame of that window, the one a good reference
policy would keep, else a uniformly drawn one), aligned with the known homography
(``align="true"``) or an estimated one, and dropped (replaced by "no reference") with probability
``ref_drop`` so that the same network also serves as the single-frame baseline. Crops are centred
on clipped pixels most of the time. Weights are saved every ``save_every`` steps (atomically, so a
stopped run leaves a usable checkpoint); ``init`` starts from an earlier checkpoint.

Loss (:func:`mulaw_l1_loss`): L1 between mu-law tone-mapped prediction and truth (mu = 5000,
values divided by ``peak``), pixels weighted ``1 + clipped_weight`` inside the clipped mask and 1
elsewhere (outside the mask the network copies its input, so those pixels only contribute the
recorded-vs-true noise, a constant).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from deblurkit.highlights.align import clipped_mask_srgb8
from deblurkit.highlights.camera import linearize_srgb8
from deblurkit.highlights.metrics import HDR_PEAK, MU
from deblurkit.highlights.net import encode_inputs_linear
from deblurkit.highlights.online import make_reference, prepare_inputs
from deblurkit.highlights.video import (
    TRAIN_PANORAMAS,
    AutoExposureConfig,
    VideoConfig,
    generate_video,
    load_panorama_linear,
)


def mulaw_torch(x: torch.Tensor, *, peak: float, mu: float = MU, clip_above: bool = True) -> torch.Tensor:
    """Mu-law of linear values divided by ``peak`` (clipped to [0, 1]; to [0, inf) without ``clip_above``)."""
    return torch.log1p(mu * (x / peak).clamp(0.0, 1.0 if clip_above else None)) / math.log1p(mu)


def mulaw_l1_loss(
    pred_log: torch.Tensor, truth_linear: torch.Tensor, clipped: torch.Tensor, *, peak: float = HDR_PEAK,
    clipped_weight: float = 10.0, mu: float = MU
) -> torch.Tensor:
    """Weighted L1 after mu-law tone mapping.

    Args:
        pred_log: ``(B, 3, H, W)`` predicted log-radiance (current-frame units).
        truth_linear: ``(B, 3, H, W)`` true linear radiance in the same units.
        clipped: ``(B, 1, H, W)`` 0/1 clipped mask.
        peak: normalisation of the mu-law curve.
        clipped_weight: extra weight of clipped pixels.

    Returns:
        Scalar loss.
    """
    pred = torch.exp(pred_log.clamp(max=math.log(peak) + 4.0))
    # As the metric, values above the peak count as the peak where the truth is above it; elsewhere a
    # prediction above the peak keeps its gradient (a hard clamp would leave overshoots uncorrected).
    pred = torch.where(truth_linear >= peak, pred.clamp(max=peak), pred)
    diff = (mulaw_torch(pred, peak=peak, mu=mu, clip_above=False) - mulaw_torch(truth_linear, peak=peak, mu=mu)).abs()
    w = 1.0 + clipped_weight * clipped
    return (diff * w).sum() / (w.sum() * diff.shape[1])


def sample_auto_exposure(rng: np.random.Generator) -> AutoExposureConfig:
    """A random controller: steady ones and ones that overshoot and hunt."""
    hunting = rng.uniform() < 0.6
    return AutoExposureConfig(
        gain=rng.uniform(0.2, 0.7), momentum=rng.uniform(0.0, 0.7), delay_frames=int(rng.integers(1, 4)),
        jitter_ev=rng.uniform(0.0, 0.08), hunt_ev=rng.uniform(0.3, 1.5) if hunting else 0.0,
        hunt_period_frames=rng.uniform(8.0, 30.0), initial_error_ev=1.5)


@dataclass(frozen=True)
class HighlightTrainConfig:
    """Flat training settings (recorded as ``config.json`` next to the weights)."""

    hdr_dir: str = "../shared/data/hdr"
    panoramas: tuple[str, ...] = TRAIN_PANORAMAS
    out_dir: str = "runs/highlights"
    width: int = 16
    enc_blk_nums: tuple[int, ...] = (1, 1, 2)
    middle_blk_num: int = 2
    dec_blk_nums: tuple[int, ...] = (1, 1, 1)
    residual_from: Literal["current", "copy"] = "current"
    steps: int = 2000
    batch: int = 8
    crop: int = 64
    lr: float = 1e-3
    clips: int = 24
    """Clips synthesised for the sample pool (spread over the panoramas)."""
    frames_per_clip: int = 24
    samples_per_frame: int = 2
    max_ref_age: int = 8
    ref_darkest: float = 0.0
    """Probability that the reference is the least exposed frame of the window (else uniform)."""
    ref_drop: float = 0.25
    clipped_weight: float = 10.0
    peak: float = HDR_PEAK
    align: Literal["true", "homography", "flow"] = "true"
    video: VideoConfig = field(default_factory=VideoConfig)
    seed: int = 0
    threads: int = 1
    """torch intra-op threads (1 is fastest on a shared 2-core machine: 15x less CPU than 2 here)."""
    log_every: int = 50
    save_every: int = 0
    """Save the weights every this many steps (0: only at the end)."""
    init: str | None = None
    """Checkpoint to start from (same hyperparameters), or None for a fresh network."""


def _random_crop(planes: np.ndarray, truth: np.ndarray, clipped: np.ndarray, crop: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = clipped.shape
    if crop > min(h, w):
        raise ValueError(f"crop {crop} larger than the {w}x{h} frames")
    ys, xs = np.nonzero(clipped)
    if len(ys) and rng.uniform() < 0.85:
        i = int(rng.integers(len(ys)))
        cy, cx = ys[i] + int(rng.integers(-crop // 3, crop // 3 + 1)), xs[i] + int(rng.integers(-crop // 3, crop // 3 + 1))
    else:
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0 = int(np.clip(cy - crop // 2, 0, h - crop))
    x0 = int(np.clip(cx - crop // 2, 0, w - crop))
    return planes[:, y0:y0 + crop, x0:x0 + crop], truth[:, y0:y0 + crop, x0:x0 + crop]


def build_sample_pool(cfg: HighlightTrainConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, 9, crop, crop)`` input planes and ``(N, 3, crop, crop)`` truth from fresh clips."""
    from dataclasses import replace

    planes_all, truth_all = [], []
    panos = {name: load_panorama_linear(Path(cfg.hdr_dir) / f"{name}.hdr") for name in cfg.panoramas}
    tone = cfg.video.camera.tone_curve
    for c in range(cfg.clips):
        name = cfg.panoramas[c % len(cfg.panoramas)]
        vcfg = replace(cfg.video, frames=cfg.frames_per_clip, auto_exposure=sample_auto_exposure(rng))
        window: list = []
        for fr in generate_video(panos[name], vcfg, rng):
            window = (window + [fr])[-(cfg.max_ref_age + 1):]
            if len(window) < 2 or not clipped_mask_srgb8(fr.srgb8).any():
                continue
            cur_lin = linearize_srgb8(fr.srgb8, tone)
            for _ in range(cfg.samples_per_frame):
                past = window[:-1]
                if rng.uniform() < cfg.ref_darkest:
                    ref_fr = min(past, key=lambda f: f.exposure)
                else:
                    ref_fr = past[int(rng.integers(0, len(past)))]
                ref = make_reference(ref_fr.index, ref_fr.srgb8, tone, ref_fr.rotation)
                inputs, _ = prepare_inputs(fr.srgb8, cur_lin, ref, align=cfg.align, rotation=fr.rotation,
                                           k=fr.k, index=fr.index)
                planes = encode_inputs_linear(inputs, use_reference=rng.uniform() >= cfg.ref_drop)[0].numpy()
                truth = fr.truth_linear.transpose(2, 0, 1)
                p, t = _random_crop(planes, truth, inputs.clipped, cfg.crop, rng)
                planes_all.append(p)
                truth_all.append(t)
    if not planes_all:
        raise RuntimeError("no clipped frames in the sampled clips; raise clips or frames_per_clip")
    return torch.from_numpy(np.stack(planes_all)), torch.from_numpy(np.ascontiguousarray(np.stack(truth_all)))


def train_highlight_net(cfg: HighlightTrainConfig) -> dict:
    """Train, save ``out_dir/highlight-net.safetensors`` and ``config.json``; returns a summary."""
    from deblurkit.models.checkpoint import save_safetensors
    from deblurkit.models.highlight_net import HighlightNet

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    planes, truth = build_sample_pool(cfg, rng)
    t_data = time.perf_counter() - t0
    model = HighlightNet(width=cfg.width, enc_blk_nums=cfg.enc_blk_nums, middle_blk_num=cfg.middle_blk_num,
                         dec_blk_nums=cfg.dec_blk_nums, residual_from=cfg.residual_from)
    if cfg.init:
        from deblurkit.models.checkpoint import load_model

        start, _ = load_model(cfg.init)
        model.load_state_dict(start.state_dict())
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"training_data": f"{cfg.hdr_dir} panoramas {', '.join(cfg.panoramas)} "
                             "(synthetic clips, deblurkit.highlights.video)"}
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.steps), eta_min=cfg.lr * 0.01)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = []
    model.train()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(planes), (cfg.batch,), generator=gen)
        x, y = planes[idx], truth[idx]
        if bool(torch.rand((), generator=gen) < 0.5):  # flips keep the clip's physics
            x, y = x.flip(-1), y.flip(-1)
        loss = mulaw_l1_loss(model(x), y, x[:, 6:7], peak=cfg.peak, clipped_weight=cfg.clipped_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % cfg.log_every == 0 or step == cfg.steps:
            print(f"step {step}/{cfg.steps} loss {np.mean(losses[-cfg.log_every:]):.5f}", flush=True)
        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
            save_safetensors(model, out / "highlight-net.safetensors", name="highlight-net",
                             meta={**meta, "summary": {"step": step, "samples": len(planes)}})
            model.train()
    summary = {"step": cfg.steps, "samples": len(planes), "data_seconds": round(t_data, 1),
               "train_seconds": round(time.perf_counter() - t0 - t_data, 1),
               "final_loss": float(np.mean(losses[-max(1, cfg.log_every):]))}
    save_safetensors(model, out / "highlight-net.safetensors", name="highlight-net", meta={**meta, "summary": summary})
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1, default=str))
    return summary
