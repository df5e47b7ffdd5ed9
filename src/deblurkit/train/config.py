"""The training configuration: one flat, typed dataclass.

Resolution order (later wins): dataclass defaults → a named recipe (``RECIPES``) → a YAML file →
``key=value`` overrides from the command line. Unknown keys fail immediately, listing the valid
ones, before any data is read or model built. The resolved config is written as
``<out_dir>/config.yaml`` next to the run's checkpoints and metrics.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from deblurkit.errors import DeblurkitError, UnknownNameError

DATA_KINDS = ("synth", "paired", "gopro", "realblur")
LOSSES = ("mimo", "l1", "charbonnier", "psnr")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("multistep", "cosine", "constant")
AMP_MODES = ("none", "bf16")


@dataclass
class TrainConfig:
    """Every setting of a training run (flat; each field can be set from YAML or ``key=value``)."""

    # --- run ---
    out_dir: str = "runs/train"
    """Folder for config.yaml, checkpoints/, metrics.csv and the final weights."""
    seed: int = 0
    """Seeds model init, data order, crops and flips; a run is a function of (config, seed)."""
    model: str = "mimo-unet-narrow"
    """A model-registry name (``deblurkit models`` lists them)."""
    max_steps: int = 1000
    """Optimizer steps in total (the schedule is defined over these)."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each process uses ``cuda:LOCAL_RANK``)."""
    amp: str = "none"
    """Mixed precision: ``none`` or ``bf16`` (autocast on CPU and CUDA; losses are computed in float32)."""
    init_weights: str = ""
    """Start from these weights (a ``.safetensors``/``.pth`` file or a registry name with bundled
    weights) instead of a random initialisation: fine-tuning. The optimizer and schedule start fresh;
    the architecture must match ``model``. Empty: random initialisation."""

    # --- data ---
    data: str = "synth"
    """``synth`` (on-the-fly synthesis), ``paired`` (a folder with blur/ + sharp/, e.g. written by
    ``deblurkit synth``), ``gopro`` (``{split}/{blur,sharp}`` layout) or ``realblur`` (datalist)."""
    source: str = "samples"
    """Synthesis source: a folder of sharp photos, a photo manifest, ``samples``, or a procedural
    (privacy-safe) source: ``dead-leaves`` or ``procedural-scenes``."""
    preset: str = "realistic"
    """Synthesis preset name (``deblurkit.synth.presets.PRESETS``)."""
    synth_length: int = 10000
    """Number of distinct synthesized training pairs (indices 0..synth_length-1)."""
    deconvolved_input_prob: float = 0.0
    """Share of synthesized uniform-blur training pairs whose input is the blind stage's
    deconvolution with a perturbed copy of the true kernel instead of the blurry image: the default
    chain feeds the network that stage's output wherever it trusts a kernel."""
    data_root: str = ""
    """Dataset root for ``paired``/``gopro``/``realblur``."""
    train_split: str = "train"
    """GoPro split folder used for training."""
    val_split: str = ""
    """GoPro split folder for validation; empty: hold out ``val_fraction`` of the training pairs."""
    datalist: str = ""
    """RealBlur training datalist (``gt_path blur_path`` per line, relative to ``data_root``)."""
    val_datalist: str = ""
    """RealBlur validation datalist; empty: hold out ``val_fraction`` of the training list."""
    val_fraction: float = 0.05
    """Fraction of a folder/list held out for validation when no split is given (fixed, seed-independent)."""
    val_count: int = 16
    """Validation images (synthesis: pairs drawn with a separate held-out seed; folders: upper bound)."""
    val_crop: int = 256
    """Validation on the central crop of this size (0: full images)."""
    crop_size: int = 256
    """Training patch size (random crop; synthesis renders pairs of this size directly). With
    ``crop_sizes`` set it must equal the last (largest) of them."""
    crop_sizes: list[int] = dataclasses.field(default_factory=list)
    """Crop-size schedule: the sizes used in turn, e.g. ``[128, 192, 256]`` (each even, >= 16);
    empty: ``crop_size`` throughout."""
    crop_milestones: list[int] = dataclasses.field(default_factory=list)
    """Steps at which the next of ``crop_sizes`` starts (one fewer than the sizes, increasing);
    empty: evenly spaced over ``max_steps``."""
    batch_sizes: list[int] = dataclasses.field(default_factory=list)
    """Batch size for each of ``crop_sizes`` (e.g. ``[8, 4, 2]`` keeps the pixels per step about
    constant); empty: ``batch_size`` throughout."""
    scale_min: float = 1.0
    """Photo-manifest sources: smallest per-crop random scale (crops show up to 1/scale_min times
    more of the photo, downsampled); in (0, scale_max]."""
    scale_max: float = 1.0
    """Photo-manifest sources: largest per-crop random scale, in [scale_min, 1] (1: full resolution
    after the source's ``max_side``)."""
    hflip: bool = True
    """Random horizontal flips of training pairs (MIMO-UNet recipe)."""
    batch_size: int = 4
    """Pairs per optimizer step per process."""
    num_workers: int = 0
    """DataLoader worker processes (results do not depend on it)."""
    prefetch_factor: int = 2
    """Batches each worker prepares ahead (with ``num_workers`` > 0; results do not depend on it)."""
    threads: int = 0
    """Threads of the training process (``torch.set_num_threads``; 0: PyTorch's default)."""

    # --- loss ---
    loss: str = "mimo"
    """``mimo`` (multi-scale L1 + fft_weight × multi-scale FFT L1), ``l1``, ``charbonnier`` or ``psnr``."""
    fft_weight: float = 0.1
    charbonnier_eps: float = 1e-3

    # --- optimisation ---
    optimizer: str = "adam"
    """``adam`` (MIMO-UNet) or ``adamw`` (NAFNet)."""
    lr: float = 1e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    scheduler: str = "multistep"
    """``multistep`` (×gamma at each milestone), ``cosine`` (to min_lr at max_steps) or ``constant``."""
    milestones: list[int] = dataclasses.field(default_factory=list)
    """Steps at which ``multistep`` multiplies the rate by gamma; empty: every max_steps/6 steps."""
    gamma: float = 0.5
    min_lr: float = 1e-7
    grad_clip: float = 0.0
    """Clip the global gradient norm to this value (0: off)."""
    ema_decay: float = 0.0
    """Exponential moving average of the weights (e.g. 0.999; 0: off). Validation and the final
    weights use the EMA when it is on."""

    # --- bookkeeping ---
    checkpoint_every: int = 500
    """Write checkpoints/last.pt (atomically) every this many steps, and at the end."""
    checkpoint_minutes: float = 0.0
    """Also write it when this many minutes have passed since the last one (0: off)."""
    val_every: int = 500
    """Validate every this many steps (0: only at the end)."""
    log_every: int = 10
    """Append to metrics.csv every this many steps."""
    progress: bool = True
    """Show a tqdm progress bar (loss, it/s, ETA) on rank 0."""
    tensorboard: bool = True
    """Also log to TensorBoard under out_dir/tb when the tensorboard package is installed."""


#: fields that may differ between a run and its resumption (they do not change the result)
#: (``device`` and ``amp`` continue the same run, e.g. on a GPU and back, but not bit-identically)
RESUMABLE_CHANGES = frozenset({"checkpoint_every", "checkpoint_minutes", "val_every", "log_every", "progress",
                               "tensorboard", "num_workers", "prefetch_factor", "threads", "out_dir", "device",
                               "amp"})

#: published recipes, as field overrides (steps replace the papers' epochs)
RECIPES: dict[str, dict[str, Any]] = {
    "mimo-unet": {  # Cho et al. 2021: Adam 1e-4, halve the rate every 500 of 3000 epochs, batch 4, 256 crops
        "loss": "mimo", "fft_weight": 0.1, "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0,
        "scheduler": "multistep", "gamma": 0.5, "batch_size": 4, "crop_size": 256, "hflip": True,
    },
    "nafnet": {  # Chen et al. 2022: AdamW 1e-3, betas (0.9, 0.9), cosine to 1e-7, PSNR loss, 256 crops
        "loss": "psnr", "optimizer": "adamw", "lr": 1e-3, "beta1": 0.9, "beta2": 0.9, "weight_decay": 0.0,
        "scheduler": "cosine", "min_lr": 1e-7, "batch_size": 32, "crop_size": 256, "hflip": True,
    },
}


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


@functools.cache
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _coerce(name: str, value: Any) -> Any:
    """Convert ``value`` (from YAML or a ``key=value`` string) to the field's declared type."""
    hint = _field_types()[name]
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if hint is str:
            return "" if value is None else str(value)
        if origin is list:
            if isinstance(value, str):
                import yaml

                try:
                    value = yaml.safe_load(value) if value.strip() else []
                except yaml.YAMLError:
                    raise ValueError from None
            if isinstance(value, int):
                value = [value]
            if value is None:
                value = []
            return [int(v) for v in value]
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"unhandled type for {name}: {hint}")  # pragma: no cover
    raise DeblurkitError(f"config key {name!r}: cannot use {value!r} as {getattr(hint, '__name__', hint)}")


INF = float("inf")

#: Valid range of every numeric key: ``(low, high, low included, high included)``.
NUMERIC_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "seed": (0, 2**63 - 1, True, True),
    "max_steps": (1, INF, True, False),
    "synth_length": (1, INF, True, False),
    "deconvolved_input_prob": (0.0, 1.0, True, True),
    "val_fraction": (0.0, 1.0, False, False),
    "val_count": (1, INF, True, False),
    "val_crop": (0, INF, True, False),  # and 0 or >= MIN_CROP, checked below
    "crop_size": (8, INF, True, False),
    "batch_size": (1, INF, True, False),
    "num_workers": (0, 1024, True, True),
    "fft_weight": (0.0, INF, True, False),
    "charbonnier_eps": (0.0, INF, False, False),
    "lr": (0.0, 1.0, True, True),  # 0 freezes the weights (a check that fine-tuning starts where it should)
    "weight_decay": (0.0, INF, True, False),
    "beta1": (0.0, 1.0, True, False),
    "beta2": (0.0, 1.0, True, False),
    "gamma": (0.0, 1.0, False, True),
    "min_lr": (0.0, INF, True, False),  # and <= lr for the cosine schedule, checked below
    "grad_clip": (0.0, INF, True, False),
    "ema_decay": (0.0, 1.0, True, False),
    "checkpoint_every": (1, INF, True, False),
    "val_every": (0, INF, True, False),
    "log_every": (1, INF, True, False),
    "prefetch_factor": (1, INF, True, False),
    "threads": (0, 1024, True, True),  # 0: PyTorch's default
    "checkpoint_minutes": (0.0, INF, True, False),  # 0: off
    "scale_min": (0.0, 1.0, False, True),  # and <= scale_max, checked below
    "scale_max": (0.0, 1.0, False, True),
}
MIN_CROP = 8
_DEVICE = re.compile(r"^(cpu|mps|(cuda|xpu)(:\d+)?)$")


def _interval(low: float, high: float, low_in: bool, high_in: bool) -> str:
    def fmt(v: float) -> str:
        return "inf" if v == INF else f"{v:g}" if isinstance(v, float) else str(v)

    return f"{'[' if low_in else '('}{fmt(low)}, {fmt(high)}{']' if high_in else ')'}"


def _check_choices(cfg: TrainConfig) -> None:
    """Validate every key at the boundary, naming the valid values or range in the message."""
    for name, valid in (("data", DATA_KINDS), ("loss", LOSSES), ("optimizer", OPTIMIZERS),
                        ("scheduler", SCHEDULERS), ("amp", AMP_MODES)):
        if getattr(cfg, name) not in valid:
            raise UnknownNameError(f"{name} (config key)", getattr(cfg, name), valid)
    for name, (low, high, low_in, high_in) in NUMERIC_RANGES.items():
        value = getattr(cfg, name)
        inside = (math.isfinite(value) and (value >= low if low_in else value > low)
                  and (value <= high if high_in else value < high))
        if not inside:
            raise DeblurkitError(f"config key {name!r} must be in {_interval(low, high, low_in, high_in)}, "
                                 f"got {value!r}")
    if 0 < cfg.val_crop < MIN_CROP:
        raise DeblurkitError(f"config key 'val_crop' must be 0 (full images) or >= {MIN_CROP}, got {cfg.val_crop}")
    if cfg.scheduler == "cosine" and cfg.min_lr > cfg.lr:
        raise DeblurkitError(f"config key 'min_lr' must be in [0, lr={cfg.lr:g}], got {cfg.min_lr:g}")
    steps = cfg.milestones
    if any(m < 1 for m in steps) or any(a >= b for a, b in itertools.pairwise(steps)):
        raise DeblurkitError(f"config key 'milestones' must be increasing steps >= 1, got {steps}")
    for name in ("out_dir", "model"):
        if not str(getattr(cfg, name)).strip():
            raise DeblurkitError(f"config key {name!r} must not be empty")
    if not _DEVICE.match(cfg.device):
        raise DeblurkitError(f"config key 'device' must be cpu, cuda, cuda:N, mps or xpu[:N], got {cfg.device!r}")
    if cfg.data == "synth":
        from deblurkit.synth.presets import PRESETS  # light: no torch

        if cfg.preset not in PRESETS:
            raise UnknownNameError("preset (config key)", cfg.preset, list(PRESETS))
        if not cfg.source.strip():
            raise DeblurkitError("config key 'source' must name a folder, a photo manifest, 'samples', "
                                 "'dead-leaves' or 'procedural-scenes'")
    if cfg.data in ("paired", "gopro", "realblur") and not cfg.data_root:
        raise DeblurkitError(f"data={cfg.data} needs data_root=PATH")
    if cfg.scale_min > cfg.scale_max:
        raise DeblurkitError(f"config keys 'scale_min', 'scale_max' must satisfy 0 < scale_min <= scale_max <= 1, "
                             f"got {cfg.scale_min}, {cfg.scale_max}")
    _check_crop_schedule(cfg)
    if cfg.data == "realblur" and not cfg.datalist:
        raise DeblurkitError("data=realblur needs datalist=FILE (lines 'gt_path blur_path')")


def _check_crop_schedule(cfg: TrainConfig) -> None:
    sizes, miles, batches = cfg.crop_sizes, cfg.crop_milestones, cfg.batch_sizes
    if not sizes:
        if miles or batches:
            raise DeblurkitError("config keys 'crop_milestones' and 'batch_sizes' need 'crop_sizes' (the schedule's sizes)")
        return
    bad = [v for v in sizes if v < 16 or v % 2]
    if bad:
        raise DeblurkitError(f"config key 'crop_sizes': every size must be even and >= 16, got {sizes}")
    if cfg.crop_size != sizes[-1]:
        raise DeblurkitError(f"config key 'crop_size' must equal the last of crop_sizes ({sizes[-1]}) when crop_sizes "
                             f"is set, got {cfg.crop_size}")
    if miles and (len(miles) != len(sizes) - 1 or any(b <= a for a, b in zip(miles, miles[1:]))
                  or miles[0] < 1 or miles[-1] >= cfg.max_steps):
        raise DeblurkitError(f"config key 'crop_milestones' must hold {len(sizes) - 1} increasing steps in "
                             f"[1, max_steps={cfg.max_steps}), got {miles}")
    if batches and (len(batches) != len(sizes) or min(batches) < 1):
        raise DeblurkitError(f"config key 'batch_sizes' must hold {len(sizes)} values >= 1 (one per crop size), "
                             f"got {batches}")


def apply_overrides(cfg: TrainConfig, values: Mapping[str, Any], *, origin: str) -> TrainConfig:
    """Return a copy of ``cfg`` with ``values`` applied; unknown keys raise before anything else."""
    valid = field_names()
    unknown = [k for k in values if k not in valid]
    if unknown:
        raise DeblurkitError(
            f"{origin}: unknown config key(s) {', '.join(repr(k) for k in unknown)}; valid keys: {', '.join(valid)}"
        )
    return dataclasses.replace(cfg, **{k: _coerce(k, v) for k, v in values.items()})


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """Parse ``key=value`` strings (values are parsed by type later)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DeblurkitError(f"expected key=value, got {item!r}")
        out[key.strip()] = value
    return out


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DeblurkitError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DeblurkitError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DeblurkitError(f"{path}: expected a mapping of config keys")
    return data


def resolve_config(
    *, recipe: str | None = None, yaml_path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | Iterable[str] = (),
) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from a recipe, a YAML file and overrides (in that order).

    Raises:
        DeblurkitError: unknown recipe or key (valid ones listed), a value of the wrong type, or
            an inconsistent setting. Nothing has been read or built yet when this raises.
    """
    cfg = TrainConfig()
    if recipe:
        if recipe not in RECIPES:
            raise UnknownNameError("recipe", recipe, list(RECIPES))
        cfg = apply_overrides(cfg, RECIPES[recipe], origin=f"recipe {recipe}")
    if yaml_path:
        cfg = apply_overrides(cfg, load_yaml(yaml_path), origin=str(yaml_path))
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    cfg = apply_overrides(cfg, overrides, origin="command line")
    _check_choices(cfg)
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def write_config(cfg: TrainConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (atomically)."""
    import yaml

    from deblurkit.io import atomic_write

    with atomic_write(path, "w") as fh:
        yaml.safe_dump(config_to_dict(cfg), fh, sort_keys=False)
