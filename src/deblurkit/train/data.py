"""Training data: datasets from the config, random patches, and a step-indexed sampler.

Every random choice in the data pipeline is a function of ``(seed, step, slot)``: which pair
a slot of a step sees (a per-epoch permutation), and its crop and flip (a per-sample
``torch.Generator``). So a run resumed at step ``s`` sees exactly the batches an
uninterrupted run sees, whatever the number of DataLoader workers, and under DDP each rank
takes its own slice of the global batch (as ``DistributedSampler`` would, but indexed by step
so that resumption needs no sampler state).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, Subset

from deblurkit.errors import DeblurkitError
from deblurkit.train.config import TrainConfig

#: seed of the held-out validation pairs when synthesizing (training uses ``config.seed``)
SYNTH_VAL_SEED = 2_147_483_000
#: seed of the fixed permutation that holds out ``val_fraction`` of a folder or list
HOLDOUT_SEED = 1234


def _mix(*values: int) -> int:
    """A 63-bit seed from a few integers (splitmix64-style), stable across runs and platforms."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h ^= (int(v) + 0x9E3779B97F4A7C15 + ((h << 6) & 0xFFFFFFFFFFFFFFFF) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


@dataclass(frozen=True)
class CropSchedule:
    """Crop size and batch size per step: stage *k* runs from ``starts[k]`` to the next start.

    Built from the config by :meth:`from_config` (``crop_sizes``, ``crop_milestones``,
    ``batch_sizes``; without ``crop_sizes``, one stage of ``crop_size`` and ``batch_size``).
    """

    sizes: tuple[int, ...]
    batches: tuple[int, ...]
    starts: tuple[int, ...]

    @classmethod
    def constant(cls, crop_size: int, batch_size: int) -> CropSchedule:
        return cls((crop_size,), (batch_size,), (0,))

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> CropSchedule:
        if not cfg.crop_sizes:
            return cls.constant(cfg.crop_size, cfg.batch_size)
        n = len(cfg.crop_sizes)
        miles = cfg.crop_milestones or [round(cfg.max_steps * k / n) for k in range(1, n)]
        batches = cfg.batch_sizes or [cfg.batch_size] * n
        return cls(tuple(cfg.crop_sizes), tuple(batches), (0, *miles))

    def stage(self, step: int) -> int:
        """The stage of 0-based ``step``."""
        k = 0
        while k + 1 < len(self.starts) and step >= self.starts[k + 1]:
            k += 1
        return k

    def crop(self, step: int) -> int:
        return self.sizes[self.stage(step)]

    def batch(self, step: int) -> int:
        return self.batches[self.stage(step)]

    def samples_before(self, step: int) -> int:
        """Samples per process drawn by steps ``0 .. step-1``."""
        total = 0
        for k, start in enumerate(self.starts):
            if step <= start:
                break
            end = self.starts[k + 1] if k + 1 < len(self.starts) else step
            total += (min(step, end) - start) * self.batches[k]
        return total


class StepBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """Yields, for each step in ``[start_step, max_steps)``, this rank's batch as ``(index, sample_seed, crop)``.

    The global batch of step ``s`` (``B`` = the step's batch size, ``W`` = world size) is the next
    ``B·W`` positions of an endless stream of per-epoch permutations of ``range(length)``,
    starting after the positions of all earlier steps; rank ``r`` takes positions ``r·B .. r·B+B-1``
    of it. ``crop`` is the step's crop size (``schedule``; default: constant ``batch_size``, crop 0
    = the dataset's own size).
    """

    def __init__(self, length: int, batch_size: int, *, seed: int, start_step: int, max_steps: int,
                 rank: int = 0, world_size: int = 1, schedule: CropSchedule | None = None) -> None:
        if length < 1:
            raise DeblurkitError("the training dataset is empty")
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.start_step, self.max_steps, self.rank, self.world_size = start_step, max_steps, rank, world_size
        self.schedule = schedule or CropSchedule.constant(0, batch_size)
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.length)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch, 17))
            self._perm, self._epoch = torch.randperm(self.length, generator=g), epoch
        return int(self._perm[offset])

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        w, sched = self.world_size, self.schedule
        for step in range(self.start_step, self.max_steps):
            b, crop = sched.batch(step), sched.crop(step)
            base = sched.samples_before(step) * w + self.rank * b
            yield [(self._index(base + j), _mix(self.seed, step, self.rank * b + j, 29), crop) for j in range(b)]


class PatchDataset(Dataset):
    """Random ``crop_size`` patches (plus optional horizontal flips) of a paired dataset.

    ``ds[(index, sample_seed, crop)]`` returns ``{"blur", "sharp"}`` float32 ``(3, crop, crop)``
    tensors (``crop`` 0 or absent: ``crop_size``); the crop position and flip come from
    ``torch.Generator().manual_seed(sample_seed)``. A base that renders items at any size
    (``base.render(index, size)``, e.g. synthesis) is asked for the crop size directly. An item's
    ``kernel`` (its PSF, ``(K, K)``) is passed on, flipped with the images so blur = kernel * sharp holds.
    """

    def __init__(self, base: Any, crop_size: int, *, hflip: bool) -> None:
        self.base, self.crop_size, self.hflip = base, crop_size, hflip

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, ...]) -> dict[str, torch.Tensor]:
        index, sample_seed = key[0], key[1]
        c = (key[2] if len(key) > 2 else 0) or self.crop_size
        item = self.base.render(index, c) if hasattr(self.base, "render") else self.base[index]
        blur, sharp = item["blur"], item["sharp"]
        name = item.get("name", f"#{index}")
        if blur.shape != sharp.shape:
            raise DeblurkitError(f"{name}: blur {tuple(blur.shape)} and sharp {tuple(sharp.shape)} differ in size")
        g = torch.Generator().manual_seed(sample_seed)
        h, w = blur.shape[-2:]
        if h < c or w < c:
            raise DeblurkitError(f"{name}: image {h}x{w} is smaller than crop_size={c}")
        y = int(torch.randint(0, h - c + 1, (1,), generator=g))
        x = int(torch.randint(0, w - c + 1, (1,), generator=g))
        blur, sharp = blur[:, y:y + c, x:x + c], sharp[:, y:y + c, x:x + c]
        flip = self.hflip and bool(torch.rand((), generator=g) < 0.5)
        if flip:
            blur, sharp = blur.flip(-1), sharp.flip(-1)
        out = {"blur": blur.contiguous().float(), "sharp": sharp.contiguous().float()}
        if "kernel" in item:
            out["kernel"] = (item["kernel"].flip(-1) if flip else item["kernel"]).contiguous().float()
        return out


class DeconvolvedInputs(Dataset):
    """Synthetic pairs whose input is, for a share of the uniform-blur items, the blind stage's
    deconvolution instead of the blurry image.

    The default chain restores the output of the kernel stage wherever it trusts a kernel, so a
    network trained only on blurry inputs meets ringing and leftover blur it never saw. For item
    ``i`` a coin with probability ``prob`` (seeded by ``(seed, i)``) decides; if it falls and the
    item's blur is uniform, the blurry image is deconvolved in linear light by
    :func:`deblurkit.kernel_aware.blind.deconvolve_with_kernel` with
    :func:`deblurkit.kernel_aware.kernels.perturbed_kernel` of the true kernel (an estimate is never
    exact), then clipped to [0, 1] in sRGB as the stage's output is.

    Args:
        base: a :class:`~deblurkit.synth.dataset.SynthPairDataset`.
        prob: share of items to deconvolve, in [0, 1].
        seed: base seed of the coin and the kernel perturbation.
    """

    def __init__(self, base: Any, prob: float, seed: int) -> None:
        if base.config.blur_space != "linear":
            raise DeblurkitError(f"deconvolved inputs need blur in linear light; preset {base.config.name!r} "
                                 f"blurs in {base.config.blur_space}")
        self.base, self.prob, self.seed = base, float(prob), int(seed)

    def __len__(self) -> int:
        return len(self.base)

    def render(self, index: int, size: int) -> dict[str, Any]:
        pair = self.base.sample(int(index), size)
        blur = pair.blur[0]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(index), 31]))
        if pair.kernel is not None and rng.random() < self.prob:
            from deblurkit.kernel_aware.kernels import perturbed_kernel

            blur = self.deconvolved(blur, perturbed_kernel(pair.kernel[0, 0].numpy(), rng))
        return {"blur": blur, "sharp": pair.sharp[0], "index": int(index)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.render(index, self.base.size)

    @staticmethod
    def deconvolved(blur_srgb: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
        """``(3, H, W)`` sRGB in [0, 1] deconvolved in linear light with ``kernel``; same shape and range."""
        from deblurkit.color import linear_to_srgb, srgb_to_linear
        from deblurkit.kernel_aware.blind import deconvolve_with_kernel

        linear = srgb_to_linear(blur_srgb.permute(1, 2, 0).numpy().astype(np.float32))
        out = deconvolve_with_kernel(linear, kernel)
        srgb = linear_to_srgb(out)  # clips to [0, 1] in linear light, so in sRGB too
        return torch.from_numpy(np.ascontiguousarray(srgb.transpose(2, 0, 1)))


class CenterCropDataset(Dataset):
    """Validation items center-cropped to ``crop`` (0 keeps full images)."""

    def __init__(self, base: Any, crop: int) -> None:
        self.base, self.crop = base, crop

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        blur, sharp = item["blur"], item["sharp"]
        name = item.get("name", f"val#{index}")
        if blur.shape != sharp.shape:
            raise DeblurkitError(f"{name}: blur {tuple(blur.shape)} and sharp {tuple(sharp.shape)} differ in size")
        if self.crop:
            h, w = blur.shape[-2:]
            ch, cw = min(self.crop, h), min(self.crop, w)
            y, x = (h - ch) // 2, (w - cw) // 2
            blur, sharp = blur[:, y:y + ch, x:x + cw], sharp[:, y:y + ch, x:x + cw]
        return {"blur": blur.float(), "sharp": sharp.float(), "name": name}


def holdout_split(n: int, fraction: float) -> tuple[list[int], list[int]]:
    """A fixed (seed-independent) split of ``range(n)`` into train and held-out indices."""
    if n < 2:
        raise DeblurkitError(f"need at least 2 pairs to hold out a validation split, found {n}")
    n_val = min(max(1, math.ceil(n * fraction)), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED)).tolist()
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset, dict[str, Any]]:
    """The training dataset (full items) and the validation dataset (center crops), plus a description.

    Raises:
        DeblurkitError: missing/empty data or mismatched pairs (the readers name the files).
    """
    info: dict[str, Any] = {"data": cfg.data}
    if cfg.data == "synth":
        from deblurkit.synth.dataset import SynthPairDataset
        from deblurkit.synth.sources import PhotoSetSource, is_photo_manifest, make_source

        scale = (cfg.scale_min, cfg.scale_max)
        if scale != (1.0, 1.0) and not is_photo_manifest(cfg.source):
            raise DeblurkitError(f"scale_min/scale_max apply to a photo manifest source (source=FILE.yaml), "
                                 f"not to source={cfg.source}")
        source = make_source(cfg.source, split="train", scale=scale)
        val_source, val_from = source, "the training source"
        if isinstance(source, PhotoSetSource):
            info["train_photos"] = source.counts()
            try:
                val_source = PhotoSetSource(cfg.source, split="validation", scale=scale)
                val_from = f"the {len(val_source)} validation photos {val_source.counts()}"
            except DeblurkitError:  # a manifest without validation photos: held-out seed on the training photos
                val_from = "the training photos (the manifest has no validation photos)"
        train = SynthPairDataset(source, cfg.preset, size=cfg.crop_size, length=cfg.synth_length, seed=cfg.seed)
        if cfg.deconvolved_input_prob > 0:
            train = DeconvolvedInputs(train, cfg.deconvolved_input_prob, cfg.seed)
            info["deconvolved_input_prob"] = cfg.deconvolved_input_prob
        val_size = cfg.val_crop or cfg.crop_size
        val = SynthPairDataset(val_source, cfg.preset, size=val_size, length=max(1, cfg.val_count), seed=SYNTH_VAL_SEED)
        info.update(source=cfg.source, preset=cfg.preset, train_pairs=cfg.synth_length,
                    val=f"{len(val)} pairs synthesized from {val_from} with held-out seed {SYNTH_VAL_SEED}")
        return train, CenterCropDataset(val, cfg.val_crop), info

    if cfg.deconvolved_input_prob > 0:
        raise DeblurkitError(f"deconvolved_input_prob needs the true kernels of synthesis (data=synth), not data={cfg.data}")
    from deblurkit.data.paired import PairedFolderDataset, RealBlurListDataset

    if cfg.data == "realblur":
        full = RealBlurListDataset(cfg.data_root, cfg.datalist)
        val_full = RealBlurListDataset(cfg.data_root, cfg.val_datalist) if cfg.val_datalist else None
    else:
        root = Path(cfg.data_root)
        if cfg.data == "paired" and any((root / name / "blur").is_dir() or (root / name).is_dir() and
                                        any((root / name).glob("*/blur")) for name in ("test", "valid", "val")):
            raise DeblurkitError(f"{root} has test/validation split folders; data=paired would train on them. "
                                 f"Use data=gopro (train_split=..., val_split=...) for split layouts")
        split = cfg.train_split if cfg.data == "gopro" else None
        full = PairedFolderDataset(cfg.data_root, split=split)
        val_full = PairedFolderDataset(cfg.data_root, split=cfg.val_split) if (cfg.data == "gopro" and cfg.val_split) else None
    if len(full) == 0:
        raise DeblurkitError(f"{cfg.data_root}: no training pairs found")
    if val_full is not None:
        train = full
        val: Dataset = Subset(val_full, list(range(min(len(val_full), max(1, cfg.val_count)))))
        info["val"] = f"{len(val)} pairs of the given validation split"
    else:
        train_idx, held_idx = holdout_split(len(full), cfg.val_fraction)
        train, val = Subset(full, train_idx), Subset(full, held_idx[: max(1, cfg.val_count)])
        info["val"] = (f"{len(held_idx)} of {len(full)} pairs held out (fixed permutation, seed {HOLDOUT_SEED}); "
                       f"{len(val)} used for validation")
    info["train_pairs"] = len(train)
    return train, CenterCropDataset(val, cfg.val_crop), info
