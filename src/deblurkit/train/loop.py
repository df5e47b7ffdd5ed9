"""The training loop: ``train(config)``.

One code path serves a single process and DistributedDataParallel. Under ``torchrun`` (the
environment holds ``WORLD_SIZE`` > 1) each process joins the process group — NCCL on CUDA, gloo
on CPU — and trains its slice of every global batch; DDP averages the gradients, so the replicas
stay identical. Only rank 0 writes files (config, checkpoints, metrics, weights) and validates.

Outputs in ``config.out_dir``::

    config.yaml          the resolved config
    checkpoints/last.pt  model, optimizer, scheduler, EMA, step, RNG states (atomic)
    metrics.csv          step, loss, lr, val_psnr, val_ssim, val_input_psnr, elapsed_s, crop, batch,
                         step_s (wall seconds per step), data_wait (share of that spent waiting for data)
    model.safetensors    the final weights (EMA when enabled), loadable by deblurkit.infer
    tb/                  TensorBoard events, when the tensorboard package is installed

A network whose input is more than the blurry image is trained by passing a :class:`TrainTask`.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deblurkit.devices import resolve_device
from deblurkit.errors import DeblurkitError
from deblurkit.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    weights_meta,
)
from deblurkit.train.config import RESUMABLE_CHANGES, TrainConfig, config_to_dict, write_config
from deblurkit.train.data import CropSchedule, PatchDataset, StepBatchSampler, build_datasets
from deblurkit.train.losses import compute_loss
from deblurkit.train.optim import EMA, build_optimizer, build_scheduler

CSV_FIELDS = ("step", "loss", "lr", "val_psnr", "val_ssim", "val_input_psnr", "elapsed_s", "crop", "batch",
              "step_s", "data_wait")


class TrainTask(Protocol):
    """The hook of :func:`train`: the datasets, and the network's input made from a batch.

    ``build_datasets`` returns training items (full images; the loop crops them, see
    :class:`~deblurkit.train.data.PatchDataset`), validation items (used as they are) and a description
    (its ``training_data``, if any, goes into model.safetensors). ``model_input`` returns ``(B, C, H, W)``
    from a batch of items; its random draws come from torch's global RNG, which the checkpoints keep.
    """

    def build_datasets(self, cfg: TrainConfig) -> tuple[Any, Any, dict[str, Any]]: ...

    def model_input(self, batch: dict[str, torch.Tensor], *, training: bool) -> torch.Tensor: ...


class ImageTask:
    """The default task: the datasets of ``config.data``; the network sees the blurry image."""

    def build_datasets(self, cfg: TrainConfig) -> tuple[Any, Any, dict[str, Any]]:
        return build_datasets(cfg)

    def model_input(self, batch: dict[str, torch.Tensor], *, training: bool) -> torch.Tensor:
        return batch["blur"]


@dataclass
class DistInfo:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    step: int
    model: nn.Module
    """The trained model (unwrapped; raw weights, not the EMA)."""
    ema_model: nn.Module | None
    out_dir: Path
    history: list[dict[str, float]]
    """The rows written to metrics.csv by this process (rank 0) during this call."""
    data_info: dict[str, Any]

    @property
    def final_model(self) -> nn.Module:
        """The weights that are exported: the EMA when enabled, else the raw model."""
        return self.ema_model if self.ema_model is not None else self.model


def setup_distributed(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), and pick the device.

    ``device="cuda"`` (and any ``cuda:N`` in a multi-process run) uses ``cuda:LOCAL_RANK`` and NCCL;
    other devices use gloo. A device this machine lacks is a one-line :class:`DeblurkitError`
    (:func:`deblurkit.devices.resolve_device`).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if world > 1 or dev.index is None:  # one GPU per process; the rank's GPU must be there too
            dev = resolve_device(torch.device("cuda", local_rank))
        torch.cuda.set_device(dev)
    info = DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        info.initialized_here = True
    return info


def _model_size_multiple(cfg: TrainConfig, model: nn.Module) -> int:
    multiple = getattr(model, "size_multiple", None)
    if multiple is None:
        try:
            from deblurkit.models.registry import model_spec

            multiple = model_spec(cfg.model).size_multiple
        except Exception:  # noqa: BLE001 - custom factories need not be in the registry
            multiple = 1
    return int(multiple)


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def validate(model: nn.Module, dataset: Any, *, device: torch.device, size_multiple: int = 1,
             cfg: TrainConfig | None = None, task: TrainTask | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM (data range 1, RGB, skimage-compatible SSIM) of ``model`` on ``dataset``.

    The network's input (``task.model_input``; default: the blurry image) is reflect-padded to
    ``size_multiple`` and the output cropped back and clamped to [0, 1].
    ``val_input_psnr`` is the PSNR of the blurry inputs themselves (the score to beat).
    """
    from deblurkit.eval.metrics import psnr_torch, ssim_torch
    from deblurkit.models import final_output

    was_training = model.training
    model.eval()
    psnrs, ssims, input_psnrs = [], [], []
    try:
        for i in range(len(dataset)):
            item = dataset[i]
            batch = {k: v[None].to(device) for k, v in item.items() if isinstance(v, torch.Tensor)}
            inp = (task or ImageTask()).model_input(batch, training=False)
            sharp = item["sharp"][None].double()
            h, w = inp.shape[-2:]
            ph, pw = (-h) % size_multiple, (-w) % size_multiple
            x = F.pad(inp, (0, pw, 0, ph), mode="reflect") if (ph or pw) else inp
            with _autocast(cfg, device) if cfg is not None else contextlib.nullcontext():
                out = final_output(model(x))
            out = out[..., :h, :w].float().clamp(0, 1).cpu().double()
            psnrs.append(float(psnr_torch(out, sharp, data_range=1.0)[0]))
            ssims.append(float(ssim_torch(out, sharp, data_range=1.0)[0]))
            input_psnrs.append(float(psnr_torch(item["blur"][None].double(), sharp, data_range=1.0)[0]))
    finally:
        model.train(was_training)
    return {"val_psnr": float(np.mean(psnrs)), "val_ssim": float(np.mean(ssims)),
            "val_input_psnr": float(np.mean(input_psnrs)), "val_count": len(psnrs)}


class _MetricsLog:
    """metrics.csv (+ TensorBoard when importable), rank 0 only; truncated to the resume step."""

    def __init__(self, out_dir: Path, start_step: int, use_tb: bool) -> None:
        from deblurkit.io import atomic_write

        self.path = out_dir / "metrics.csv"
        rows: list[dict[str, str]] = []
        if start_step > 0 and self.path.is_file():
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit() and int(r["step"]) <= start_step
                        and None not in r.values()]
        with atomic_write(self.path, "w") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self._fh = open(self.path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._writer = csv.DictWriter(self._fh, fieldnames=CSV_FIELDS)
        self.tb = None
        if use_tb:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=start_step or None)
            except ImportError:
                self.tb = None

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        self._fh.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, float) and math.isfinite(v):
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        self._fh.close()
        if self.tb is not None:
            self.tb.close()


def _check_resume_config(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    current = config_to_dict(cfg)
    diffs = [k for k in current if k not in RESUMABLE_CHANGES and k in saved and saved[k] != current[k]]
    if diffs:
        detail = ", ".join(f"{k}: {saved[k]!r} -> {current[k]!r}" for k in diffs)
        raise DeblurkitError(f"{path}: cannot resume with a different config ({detail}); "
                             f"only {', '.join(sorted(RESUMABLE_CHANGES))} may change")


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def train(
    config: TrainConfig,
    *,
    resume: bool | str | os.PathLike[str] = False,
    model_factory: Callable[[], nn.Module] | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    task: TrainTask | None = None,
) -> TrainResult:
    """Train a model as described by ``config``.

    Args:
        config: a validated :class:`TrainConfig` (see :func:`~deblurkit.train.config.resolve_config`).
        resume: ``True`` continues from ``<out_dir>/checkpoints/last.pt``; a path continues from
            that checkpoint. The result equals an uninterrupted run (CPU, same config).
        model_factory: builds the network instead of ``create_model(config.model)`` (tests, custom code).
        on_step: called as ``on_step(step, {"loss": ...})`` after every optimizer step (may raise
            to stop the run, e.g. KeyboardInterrupt).
        task: supplies the datasets and the network's input from a batch (default :class:`ImageTask`).

    Returns:
        A :class:`TrainResult`.

    Raises:
        DeblurkitError: bad data, unknown model, unusable checkpoint, or a non-finite loss.
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    dist_info = setup_distributed(config.device)
    try:
        if config.amp == "bf16" and dist_info.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeblurkitError(f"amp=bf16 but {torch.cuda.get_device_name(dist_info.device)} has no bfloat16 "
                                 "support; use amp=none")
        return _train(config, dist_info, resume=resume, model_factory=model_factory, on_step=on_step,
                      task=task or ImageTask())
    finally:
        if dist_info.initialized_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(cfg: TrainConfig, di: DistInfo, *, resume, model_factory, on_step, task: TrainTask) -> TrainResult:
    from tqdm import tqdm

    from deblurkit.models import multiscale_outputs

    device = di.device
    out_dir = Path(cfg.out_dir)
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    if resume and not (ckpt_path if resume is True else Path(resume)).is_file():
        raise DeblurkitError(f"{ckpt_path if resume is True else resume}: no checkpoint to resume from")
    if not resume and ckpt_path.exists():
        raise DeblurkitError(f"{out_dir} already holds a run ({ckpt_path}); continue it with --resume "
                             "or choose another out_dir")
    _seed_everything(cfg.seed)
    if model_factory is not None:
        model = model_factory()
    else:
        from deblurkit.models.registry import create_model

        model = create_model(cfg.model)
    if cfg.init_weights and not resume:  # on resume the checkpoint holds the weights
        _load_init_weights(model, cfg.init_weights, seed=cfg.seed)
    model = model.to(device)
    size_multiple = _model_size_multiple(cfg, model)
    train_ds, val_ds, data_info = task.build_datasets(cfg)
    if len(train_ds) == 0:
        raise DeblurkitError("the training dataset is empty")
    optimizer = build_optimizer(model.parameters(), cfg)
    scheduler = build_scheduler(optimizer, cfg)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None

    start_step = 0
    if resume:
        path = ckpt_path if resume is True else Path(resume)
        ckpt = load_checkpoint(path)
        _check_resume_config(ckpt.get("config", {}), cfg, path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ema is not None:
            if ckpt.get("ema") is None:
                raise DeblurkitError(f"{path}: checkpoint has no EMA weights but ema_decay > 0")
            ema.load_state_dict(ckpt["ema"])
        start_step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])
        saved_photos = (ckpt.get("data") or {}).get("train_photos")
        if saved_photos is not None and saved_photos != data_info.get("train_photos") and di.is_main:
            print(f"deblurkit: warning: the training photos per source changed since {path} was written "
                  f"({saved_photos} -> {data_info.get('train_photos')}); continuing with the current ones")
        saved_world = int(ckpt.get("world_size", 1))
        if saved_world != di.world_size and di.is_main:
            print(f"deblurkit: warning: {path} was written by {saved_world} process(es), resuming with "
                  f"{di.world_size}: the global batch and data order change from here on")
        if start_step > cfg.max_steps:
            raise DeblurkitError(f"{path}: checkpoint is at step {start_step}, beyond max_steps={cfg.max_steps}")

    net: nn.Module = model
    if di.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    log = None
    if di.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_config(cfg, out_dir / "config.yaml")
        log = _MetricsLog(out_dir, start_step, cfg.tensorboard)

    def save(step: int) -> None:
        if not di.is_main:
            return
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None, "step": step, "rng": rng_state(),
            "config": config_to_dict(cfg), "data": data_info, "world_size": di.world_size,
        })

    schedule = CropSchedule.from_config(cfg)
    sampler = StepBatchSampler(len(train_ds), cfg.batch_size, seed=cfg.seed, start_step=start_step,
                               max_steps=cfg.max_steps, rank=di.rank, world_size=di.world_size, schedule=schedule)
    loader = torch.utils.data.DataLoader(
        PatchDataset(train_ds, cfg.crop_size, hflip=cfg.hflip), batch_sampler=sampler,
        num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
        prefetch_factor=cfg.prefetch_factor if cfg.num_workers > 0 else None,
        # its own generator: creating the iterator must not draw from the global RNG (dropout uses it)
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    history: list[dict[str, float]] = []
    t0 = time.monotonic()
    last_ckpt = t0
    # data-loading share: time waiting for the next batch vs. wall time, since the last logged row
    wait_s, span_start, span_steps = 0.0, t0, 0
    model.train()
    step = start_step
    pbar = tqdm(total=cfg.max_steps, initial=start_step, disable=not (cfg.progress and di.is_main),
                desc="train", unit="step", dynamic_ncols=True)
    try:
        t_ready = time.monotonic()
        for batch in _reraise_worker_errors(loader):
            wait_s += time.monotonic() - t_ready
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            x = task.model_input(batch, training=True)
            with _autocast(cfg, device):
                out = net(x)
            outputs = [o.float() for o in multiscale_outputs(out)]
            loss = compute_loss(cfg.loss, outputs, batch["sharp"], fft_weight=cfg.fft_weight,
                                charbonnier_eps=cfg.charbonnier_eps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            step += 1
            loss_value = float(loss.detach())
            if di.distributed:  # the logged loss is the mean over ranks; a NaN anywhere stops every rank
                import torch.distributed as dist

                stats = torch.tensor([loss_value, 0.0 if math.isfinite(loss_value) else 1.0], device=device)
                dist.all_reduce(stats)
                loss_value = float(stats[0]) / di.world_size if float(stats[1]) == 0 else math.nan
            if not math.isfinite(loss_value):
                raise DeblurkitError(f"loss is {loss_value} at step {step}; lower lr or set grad_clip "
                                     f"(last good checkpoint: {ckpt_path})")
            pbar.update(1)
            pbar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            span_steps += 1
            row: dict[str, Any] = {}
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                now = time.monotonic()
                row = {"step": step, "loss": loss_value, "lr": optimizer.param_groups[0]["lr"],
                       "elapsed_s": round(now - t0, 3), "crop": int(batch["sharp"].shape[-1]),
                       "batch": int(batch["sharp"].shape[0]),
                       "step_s": round((now - span_start) / max(span_steps, 1), 4),
                       "data_wait": round(wait_s / max(now - span_start, 1e-9), 4)}
                wait_s, span_start, span_steps = 0.0, now, 0
            if di.is_main and ((cfg.val_every and step % cfg.val_every == 0) or step == cfg.max_steps):
                metrics = validate(ema.module if ema is not None else model, val_ds, device=device,
                                   size_multiple=size_multiple, cfg=cfg, task=task)
                row = {**row, "step": step, "loss": loss_value, "lr": optimizer.param_groups[0]["lr"],
                       "elapsed_s": round(time.monotonic() - t0, 3), **metrics}
                wait_s, span_start, span_steps = 0.0, time.monotonic(), 0  # validation time is not step time
                pbar.write(f"step {step}: val PSNR {metrics['val_psnr']:.2f} dB (input {metrics['val_input_psnr']:.2f}), "
                           f"SSIM {metrics['val_ssim']:.4f}")
            if row and log is not None:
                log.write(row)
                history.append(row)
            due = cfg.checkpoint_minutes > 0 and time.monotonic() - last_ckpt >= 60 * cfg.checkpoint_minutes
            if di.distributed and cfg.checkpoint_minutes > 0:  # every rank agrees (only rank 0 writes)
                import torch.distributed as dist

                flag = torch.tensor([1.0 if due else 0.0], device=device)
                dist.broadcast(flag, 0)
                due = bool(flag.item())
            if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or due:
                save(step)
                last_ckpt = time.monotonic()
            if on_step is not None:
                on_step(step, {"loss": loss_value})
            t_ready = time.monotonic()
    finally:
        pbar.close()
        if log is not None:
            log.close()

    if di.is_main:
        _export_weights(cfg, ema.module if ema is not None else model, out_dir, step, data_info)
    if di.distributed:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(step=step, model=model, ema_model=ema.module if ema is not None else None,
                       out_dir=out_dir, history=history, data_info=data_info)


def _reraise_worker_errors(loader):
    """Iterate a DataLoader; a DeblurkitError raised in a worker comes back as its one-line message."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except DeblurkitError as exc:
            lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else ""
            prefix = "deblurkit.errors.DeblurkitError: "
            if len(lines) > 1 and last.startswith(prefix):
                raise DeblurkitError(last[len(prefix):]) from None
            raise
        yield batch


def _load_init_weights(model: nn.Module, source: str, *, seed: int = 0) -> None:
    """Copy the weights of ``source`` (file or bundled name) into ``model`` (shapes must match).

    A NAFNet of the same layout but an integer fraction of ``model``'s width is widened first
    (:func:`deblurkit.models.nafnet.widen_nafnet`: same function, copies split with ``seed``), so a
    wider network starts from a trained narrow one instead of from scratch.
    """
    from deblurkit.models.checkpoint import load_model
    from deblurkit.models.nafnet import NAFNet, widen_nafnet

    loaded, meta = load_model(source)
    if meta.get("weights") == "random-init":
        raise DeblurkitError(f"init_weights={source}: no trained weights bundled for this name")
    if isinstance(model, NAFNet) and isinstance(loaded, NAFNet):
        mine_hp, their_hp = model.hparams, loaded.hparams
        ratio = mine_hp["width"] // their_hp["width"]
        if (ratio > 1 and mine_hp["width"] == ratio * their_hp["width"]
                and {**their_hp, "width": mine_hp["width"]} == mine_hp):
            print(f"deblurkit: init_weights={source}: width {their_hp['width']} widened {ratio}x "
                  f"to {mine_hp['width']} (same function)")
            loaded = widen_nafnet(loaded, ratio, generator=torch.Generator().manual_seed(seed))
    mine, theirs = model.state_dict(), loaded.state_dict()
    if set(mine) != set(theirs) or any(mine[k].shape != theirs[k].shape for k in mine):
        raise DeblurkitError(f"init_weights={source}: holds a {meta.get('name', '?')} "
                             f"({meta.get('arch', '?')}, {meta.get('hparams', {})}), which does not match "
                             f"the model being trained ({type(model).__name__})")
    model.load_state_dict(theirs)


def _export_weights(cfg: TrainConfig, model: nn.Module, out_dir: Path, step: int, data_info: dict[str, Any]) -> None:
    """Write model.safetensors (for ``deblurkit deblur --model PATH`` / ``load_restorer``)."""
    try:
        from deblurkit.models.checkpoint import save_safetensors
    except ImportError:  # pragma: no cover - the models package is part of deblurkit
        return
    meta = weights_meta(config_to_dict(cfg), step, data_info)
    try:
        save_safetensors(model, out_dir / "model.safetensors", name=cfg.model, meta=meta)
    except DeblurkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - custom (non-registry) models cannot be described
        print(f"deblurkit: note: model.safetensors not written ({type(exc).__name__}: {exc}); "
              f"use checkpoints/last.pt")
