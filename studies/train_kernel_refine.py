#!/usr/bin/env python3
"""Train the ``kernel-refine`` network (design (c) of docs/default-pipeline.md) on CPU.

Three sub-commands, all resumable and writing atomically:

    # 1. a cache of synthesized training pairs (shards of N pairs; run several in parallel with --seed)
    python -m studies.train_kernel_refine cache --out data/kernel_refine/cache --shards 12 --seed 0
    # 2. training through deblurkit.train (checkpoints, resume, EMA, validation, config.yaml in --out)
    python -m studies.train_kernel_refine train --out runs/kernel_refine [max_steps=4000 ...] [--resume]
    # 3. export the weights shipped in the package (src/deblurkit/weights/kernel-refine.safetensors)
    python -m studies.train_kernel_refine export --run runs/kernel_refine

Data recipe (cache): sharp crops from the TRAIN photos of ``studies/photos_manifest.json`` (never
the test ones; resized to a random long side of 768-1280 px, the scale of the test sets),
dead leaves and scikit-image samples; degraded with the ``realistic-uniform`` synthesis preset
(uniform shake 2-32 px, blur in linear light, camera pipeline), with the noise model drawn from
none / RSBlur-RealBlur / Unprocessing, saturation on 30 %, JPEG on 15 %, 10 % darkened "night"
crops and 8 % sharp pairs (no blur). Each pair keeps its true PSF.

Training (:class:`KernelRefineTask`, a :class:`deblurkit.train.loop.TrainTask`): each step
re-perturbs the true PSF (shift, scale 0.85-1.15, rotation +-12 deg, additive noise, Gaussian blur;
15 % unperturbed) to mimic kernel-estimation errors; the network sees the blurry image plus
:func:`deblurkit.kernel_aware.refine.wiener_stack` at the pipeline's NSRs. ``val_fraction`` of the
cached pairs is held out for validation (true kernels). Recipe: :data:`RECIPE` (L1, AdamW, cosine).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KSIZE = 41  # kernels are stored zero-padded to this size
CROP = 160  # cached pair size (after the synth trim)


# ----------------------------------------------------------------------------- cache


def _train_photos(manifest: Path, photo_root: Path) -> list[Path]:
    m = json.loads(manifest.read_text())
    return [photo_root / e["path"] for e in m["photos"] if e["split"] == "train" and (photo_root / e["path"]).is_file()]


def _pad_kernel(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.float32)
    s = k.shape[0]
    if s > KSIZE:  # crop to the centre (mass outside is negligible for <= 33 px shake)
        o = (s - KSIZE) // 2
        k = k[o:o + KSIZE, o:o + KSIZE]
        s = KSIZE
    out = np.zeros((KSIZE, KSIZE), np.float32)
    o = (KSIZE - s) // 2
    out[o:o + s, o:o + s] = k
    return out / out.sum()


def cmd_cache(args: argparse.Namespace) -> int:
    import dataclasses

    import cv2
    import torch

    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.io import atomic_write, load_image_rgb
    from deblurkit.synth.pipeline import synthesize_pair
    from deblurkit.synth.presets import get_preset
    from deblurkit.synth.sources import DeadLeavesSource, SampleImageSource

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = _train_photos(Path(args.manifest), Path(args.photos))
    print(f"{len(photos)} train photos", file=sys.stderr)
    base = get_preset("realistic-uniform")
    dead, samples = DeadLeavesSource(), SampleImageSource()
    loaded: dict[Path, np.ndarray] = {}
    t0 = time.time()
    for shard in range(args.shards):
        path = out / f"shard-{args.seed:03d}-{shard:03d}.npz"
        if path.exists():
            continue
        rng = np.random.default_rng([args.seed, shard])
        n = args.per_shard
        blur_a = np.zeros((n, 3, CROP, CROP), np.uint8)
        sharp_a = np.zeros((n, 3, CROP, CROP), np.uint8)
        kern_a = np.zeros((n, KSIZE, KSIZE), np.float32)
        info = []
        for i in range(n):
            size = CROP + 2 * base.trim
            u = rng.random()
            if u < 0.7 and photos:
                p = photos[int(rng.integers(len(photos)))]
                if p not in loaded:
                    loaded[p] = load_image_rgb(p)
                img = loaded[p]
                side = rng.uniform(768, 1280)
                s = side / max(img.shape[:2])
                if s < 1:
                    img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
                y = int(rng.integers(0, img.shape[0] - size + 1))
                x = int(rng.integers(0, img.shape[1] - size + 1))
                crop, src = img[y:y + size, x:x + size], "photo"
            elif u < 0.9:
                (crop, _), src = dead.random_crop(size, rng), "dead-leaves"
            else:
                (crop, _), src = samples.random_crop(size, rng), "samples"
            crop = np.clip(crop, 0, 1).astype(np.float32)
            night = rng.random() < 0.1
            if night:
                crop = linear_to_srgb(srgb_to_linear(crop) * rng.uniform(0.25, 0.5))
            sharp_pair = rng.random() < 0.08
            noise = ["none", "rsblur-realblur", "unprocessing"][int(rng.choice(3, p=[0.3, 0.3, 0.4]))]
            cfg = dataclasses.replace(
                base, name="kernel-refine-train", noise_model=noise, poisson=noise != "unprocessing",
                saturation_prob=1.0 if night else 0.3, jpeg_prob=0.15,
                blur_length_px=(0.0, 0.0) if sharp_pair else (2.0, 32.0),
            )
            xt = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]
            pair = synthesize_pair(xt, cfg, torch.Generator().manual_seed(int(rng.integers(2**62))))
            blur_a[i] = np.round(pair.blur[0].numpy().clip(0, 1) * 255).astype(np.uint8)
            sharp_a[i] = np.round(pair.sharp[0].numpy().clip(0, 1) * 255).astype(np.uint8)
            kern_a[i] = _pad_kernel(np.ones((1, 1), np.float32) if pair.kernel is None else pair.kernel[0, 0].numpy())
            info.append({"source": src, "night": night, "noise": noise, "sharp": sharp_pair,
                         "blur_length_px": pair.params[0].get("blur_length_px")})
        with atomic_write(path) as fh:
            np.savez(fh, blur=blur_a, sharp=sharp_a, kernel=kern_a, info=json.dumps(info))
        print(f"{path.name}: {n} pairs ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    return 0


# ----------------------------------------------------------------------------- training

#: the shipped network's shape
HPARAMS = {"num_wiener": 3, "base_index": 1, "width": 16, "enc_blk_nums": [1, 1, 1], "middle_blk_num": 1,
           "dec_blk_nums": [1, 1, 1]}
#: TrainConfig fields of the recipe (``key=value`` arguments override them)
RECIPE = {"model": "kernel-deconv-net", "max_steps": 4000, "batch_size": 8, "crop_size": 96, "loss": "l1",
          "optimizer": "adamw", "lr": 1e-3, "beta1": 0.9, "beta2": 0.9, "weight_decay": 1e-4, "scheduler": "cosine",
          "min_lr": 2e-5, "grad_clip": 0.5, "checkpoint_every": 200, "val_every": 200, "log_every": 50}
TRAINING_DATA = ("realistic-uniform synthesis (uniform shake 2-32 px, linear light, camera pipeline, "
                 "noise none/rsblur-realblur/unprocessing, 30% saturation, 15% JPEG, 10% night, 8% sharp) "
                 "on train photos of studies/photos_manifest.json + dead leaves + skimage samples; "
                 "perturbed true kernels (shift, scale 0.85-1.15, rotation 12 deg, noise, blur)")


def perturb_kernels(k):
    """Randomly perturb PSFs ``(B, K, K)`` (shift, scale, rotation, noise, blur; torch's global RNG); rows sum to 1."""
    import torch
    import torch.nn.functional as F

    b, ks, _ = k.shape
    ang = (torch.rand(b) * 2 - 1) * math.radians(12)
    scale = 0.85 + 0.3 * torch.rand(b)
    shift = (torch.rand(b, 2) * 2 - 1) * (1.5 / (ks / 2))  # up to 1.5 px
    keep = torch.rand(b) < 0.15
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, (b, 1, ks, ks), align_corners=False)
    kp = F.grid_sample(k[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    kp = kp.clamp_min(0)
    peak = kp.amax(dim=(1, 2), keepdim=True)
    noise_level = torch.rand(b, 1, 1) * 0.08
    kp = kp + (torch.randn(kp.shape) * noise_level * peak).clamp_min(0) * (kp > 0.02 * peak)
    sig = torch.rand(b) * 0.8
    xs = torch.arange(-2, 3, dtype=torch.float32)
    g = torch.exp(-xs[None] ** 2 / (2 * sig[:, None].clamp_min(1e-3) ** 2))
    g = g / g.sum(1, keepdim=True)
    kp = F.conv2d(kp[None], g[:, None, None, :], padding=(0, 2), groups=b)
    kp = F.conv2d(kp, g[:, None, :, None], padding=(2, 0), groups=b)[0]
    kp = kp / kp.sum(dim=(1, 2), keepdim=True).clamp_min(1e-8)
    # Sharp pairs (delta kernels) stay deltas with probability 1/2 (the "leave sharp alone" case).
    is_delta = k.amax(dim=(1, 2)) > 0.99
    keep = keep | (is_delta & (torch.rand(b) < 0.5))
    return torch.where(keep[:, None, None], k, kp)


class ShardPairs:
    """The cached pairs of every shard in ``root``: items ``{"blur", "sharp"}`` float ``(3, CROP, CROP)``
    in [0, 1] (sRGB) and ``"kernel"`` ``(KSIZE, KSIZE)``."""

    def __init__(self, root: Path) -> None:
        from deblurkit.errors import DeblurkitError

        self.files = sorted(root.glob("shard-*.npz"))
        if not self.files:
            raise DeblurkitError(f"{root}: no cache shards (run the cache sub-command first)")
        parts = [np.load(p) for p in self.files]
        self.blur, self.sharp, self.kernel = (np.concatenate([d[key] for d in parts]) for key in ("blur", "sharp", "kernel"))

    def __len__(self) -> int:
        return len(self.blur)

    def __getitem__(self, i: int) -> dict:
        import torch

        return {"blur": torch.from_numpy(self.blur[i]).float() / 255, "sharp": torch.from_numpy(self.sharp[i]).float() / 255,
                "kernel": torch.from_numpy(self.kernel[i])}


@dataclass
class KernelRefineTask:
    """The training task of ``kernel-refine``: cached pairs, input = blurry image + its Wiener stack."""

    cache: Path

    def build_datasets(self, cfg):
        from torch.utils.data import Subset

        from deblurkit.train.data import holdout_split

        pairs = ShardPairs(self.cache)
        train_idx, val_idx = holdout_split(len(pairs), cfg.val_fraction)
        info = {"data": str(self.cache), "shards": len(pairs.files), "train_pairs": len(train_idx),
                "val": f"{min(len(val_idx), cfg.val_count)} of {len(val_idx)} held-out pairs", "training_data": TRAINING_DATA}
        return Subset(pairs, train_idx), Subset(pairs, val_idx[:cfg.val_count]), info

    def model_input(self, batch, *, training: bool):
        import torch

        from deblurkit.color import srgb_to_linear
        from deblurkit.kernel_aware.refine import DEFAULT_NSRS, wiener_stack

        kernels = perturb_kernels(batch["kernel"]) if training else batch["kernel"]
        blur = batch["blur"].detach().cpu().numpy().transpose(0, 2, 3, 1)
        stacks = [wiener_stack(srgb_to_linear(b), k, DEFAULT_NSRS) for b, k in zip(blur, kernels.cpu().numpy())]
        wien = torch.from_numpy(np.stack(stacks).transpose(0, 3, 1, 2)).to(batch["blur"].device)
        return torch.cat([batch["blur"], wien], 1)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from deblurkit.models.kernel_deconv_net import KernelDeconvNet
    from deblurkit.train import resolve_config, train
    from deblurkit.train.config import parse_overrides

    torch.set_num_threads(args.threads)
    cfg = resolve_config(overrides={**RECIPE, "out_dir": args.out, **parse_overrides(args.overrides)})
    train(cfg, resume=args.resume, model_factory=lambda: KernelDeconvNet(**HPARAMS), task=KernelRefineTask(Path(args.cache)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import csv

    from deblurkit.kernel_aware import refine
    from deblurkit.models.kernel_deconv_net import KernelDeconvNet
    from deblurkit.train.checkpoint import load_checkpoint

    run = Path(args.run)
    ck = load_checkpoint(run / "checkpoints" / "last.pt")
    model = KernelDeconvNet(**HPARAMS)
    model.load_state_dict(ck["ema"] if ck["ema"] is not None else ck["model"])
    with open(run / "metrics.csv", newline="") as fh:
        elapsed = [float(r["elapsed_s"]) for r in csv.DictReader(fh)]
    meta = {
        "design": "(c) blind kernel estimation (deblurkit.kernel_aware) + multi-NSR Wiener in linear light + "
                  "KernelDeconvNet residual refinement",
        "nsrs": list(refine.DEFAULT_NSRS), "steps": int(ck["step"]), "train_config": ck["config"],
        # elapsed_s restarts at each resume: the logged training time is the sum of each segment's last value
        "wall_seconds": round(sum(x for x, nxt in zip(elapsed, [*elapsed[1:], 0.0]) if nxt < x), 1),
        "hardware": args.hardware, "training_pairs": ck["data"]["train_pairs"], "training_data": TRAINING_DATA,
        "command": "python -m studies.train_kernel_refine " + " ".join(sys.argv[1:]),
    }
    refine.save_kernel_refine_weights(model, args.out, meta=meta)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--out", default=str(ROOT / "data/kernel_refine/cache"))
    c.add_argument("--manifest", default=str(ROOT / "studies/photos_manifest.json"))
    c.add_argument("--photos", default=str(ROOT / "data/photos"))
    c.add_argument("--shards", type=int, default=12)
    c.add_argument("--per-shard", type=int, default=250)
    c.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("--cache", default=str(ROOT / "data/kernel_refine/cache"))
    t.add_argument("--out", default=str(ROOT / "runs/kernel_refine"))
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--resume", action="store_true")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="TrainConfig fields over RECIPE")
    e = sub.add_parser("export")
    e.add_argument("--run", default=str(ROOT / "runs/kernel_refine"))
    e.add_argument("--out", default=str(ROOT / "src/deblurkit/weights/kernel-refine.safetensors"))
    e.add_argument("--hardware", default="2 shared CPU cores (torch 2.13 CPU)")
    args = ap.parse_args(argv)
    return {"cache": cmd_cache, "train": cmd_train, "export": cmd_export}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
