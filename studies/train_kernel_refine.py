#!/usr/bin/env python3
"""Train the ``kernel-refine`` network (design (c) of docs/default-pipeline.md) on CPU.

Two sub-commands, both resumable and writing atomically:

    # 1. a cache of synthesized training pairs (shards of N pairs; run several in parallel with --seed)
    python -m studies.train_kernel_refine cache --out data/kernel_refine/cache --shards 12 --seed 0
    # 2. training (reads every shard present, re-scans as new ones appear)
    python -m studies.train_kernel_refine train --cache data/kernel_refine/cache --out runs/kernel_refine \
        --steps 4000 [--resume]
    # 3. export the weights shipped in the package
    python -m studies.train_kernel_refine export --ckpt runs/kernel_refine/last.pt \
        --out src/deblurkit/weights/kernel-refine.safetensors

Data recipe (cache): sharp crops from the TRAIN photos of ``studies/photos_manifest.json`` (never
the test ones; resized to a random long side of 768-1280 px, the scale of the test sets),
dead leaves and scikit-image samples; degraded with the ``realistic-uniform`` synthesis preset
(uniform shake 2-32 px, blur in linear light, camera pipeline), with the noise model drawn from
none / RSBlur-RealBlur / Unprocessing, saturation on 30 %, JPEG on 15 %, 10 % darkened "night"
crops and 8 % sharp pairs (no blur). Each pair keeps its true PSF.

Training: each step re-perturbs the true PSF (shift, scale 0.85-1.15, rotation +-12 deg,
additive noise, Gaussian blur; 15 % unperturbed) to mimic kernel-estimation errors, computes
Wiener deconvolutions at the pipeline's NSRs in linear light (reflect-padded FFT, the same
DC-preserving formula as :func:`deblurkit.kernel_aware.refine.wiener_stack`), and trains the network
with L1 loss, AdamW and a cosine schedule. Random flips/rotations are applied to images and
kernel together.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
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
                crop, _ = dead.random_crop(size, rng)
                src = "dead-leaves"
            else:
                crop, _ = samples.random_crop(size, rng)
                src = "samples"
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
            if pair.kernel is None:
                k = np.zeros((1, 1), np.float32) + 1
            else:
                k = pair.kernel[0, 0].numpy()
            kern_a[i] = _pad_kernel(k)
            info.append({"source": src, "night": night, "noise": noise, "sharp": sharp_pair,
                         "blur_length_px": pair.params[0].get("blur_length_px")})
        with atomic_write(path) as fh:
            np.savez(fh, blur=blur_a, sharp=sharp_a, kernel=kern_a, info=json.dumps(info))
        print(f"{path.name}: {n} pairs ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    return 0


# ----------------------------------------------------------------------------- training helpers


def perturb_kernels(k, gen):
    """Randomly perturb PSFs ``(B, K, K)`` (shift, scale, rotation, noise, blur); rows sum to 1."""
    import torch
    import torch.nn.functional as F

    b, ks, _ = k.shape
    ang = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(12)
    scale = 0.85 + 0.3 * torch.rand(b, generator=gen)
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (1.5 / (ks / 2))  # up to 1.5 px
    keep = torch.rand(b, generator=gen) < 0.15
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, (b, 1, ks, ks), align_corners=False)
    kp = F.grid_sample(k[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    kp = kp.clamp_min(0)
    peak = kp.amax(dim=(1, 2), keepdim=True)
    noise_level = torch.rand(b, 1, 1, generator=gen) * 0.08
    kp = kp + (torch.randn(kp.shape, generator=gen) * noise_level * peak).clamp_min(0) * (kp > 0.02 * peak)
    sig = torch.rand(b, generator=gen) * 0.8
    xs = torch.arange(-2, 3, dtype=torch.float32)
    g = torch.exp(-xs[None] ** 2 / (2 * sig[:, None].clamp_min(1e-3) ** 2))
    g = g / g.sum(1, keepdim=True)
    kp = F.conv2d(kp[None], g[:, None, None, :], padding=(0, 2), groups=b)
    kp = F.conv2d(kp, g[:, None, :, None], padding=(2, 0), groups=b)[0]
    kp = kp / kp.sum(dim=(1, 2), keepdim=True).clamp_min(1e-8)
    # Sharp pairs (delta kernels) stay deltas with probability 1/2 (the "leave sharp alone" case).
    is_delta = k.amax(dim=(1, 2)) > 0.99
    keep = keep | (is_delta & (torch.rand(b, generator=gen) < 0.5))
    return torch.where(keep[:, None, None], k, kp)


def wiener_stack_torch(blur_srgb, kernels, nsrs, pad: int = 24):
    """Wiener deconvolutions in linear light, re-encoded to sRGB: ``(B,3,H,W)`` -> ``(B,3*len(nsrs),H,W)``.

    Reflect padding stands in for the edge taper of :func:`deblurkit.kernel_aware.deconv.wiener_deconv`;
    the formula (``conj(K) Y / (|K|^2 + nsr) * (1 + nsr)``) is the same.
    """
    import torch
    import torch.nn.functional as F

    from deblurkit.synth.color import linear_to_srgb, srgb_to_linear

    b, _, h, w = blur_srgb.shape
    lin = F.pad(srgb_to_linear(blur_srgb), (pad, pad, pad, pad), mode="reflect")
    hp, wp = lin.shape[-2:]
    ks = kernels.shape[-1]
    big = torch.zeros(b, hp, wp)
    big[:, :ks, :ks] = kernels
    big = torch.roll(big, (-(ks // 2), -(ks // 2)), dims=(1, 2))
    otf = torch.fft.rfft2(big)[:, None]
    spec = torch.fft.rfft2(lin)
    outs = []
    for nsr in nsrs:
        x = torch.fft.irfft2(torch.conj(otf) * spec / (otf.abs() ** 2 + nsr), s=(hp, wp)) * (1 + nsr)
        outs.append(linear_to_srgb(x[..., pad:pad + h, pad:pad + w].clamp(0, 1)))
    return torch.cat(outs, 1)


class ShardData:
    """All cached shards in memory; re-scans the folder for new shards on :meth:`refresh`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[Path] = []
        self.blur = self.sharp = self.kernel = None
        self.refresh()

    def refresh(self) -> None:
        new = sorted(p for p in self.root.glob("shard-*.npz") if p not in self.files)
        if not new:
            return
        parts = [np.load(p) for p in new]
        cat = lambda key, old: np.concatenate(([old] if old is not None else []) + [d[key] for d in parts])
        self.blur, self.sharp, self.kernel = cat("blur", self.blur), cat("sharp", self.sharp), cat("kernel", self.kernel)
        self.files += new

    def __len__(self) -> int:
        return 0 if self.blur is None else len(self.blur)

    def batch(self, rng: np.random.Generator, bs: int, crop: int):
        import torch

        idx = rng.integers(0, len(self), bs)
        y = rng.integers(0, CROP - crop + 1, bs)
        x = rng.integers(0, CROP - crop + 1, bs)
        bl = np.stack([self.blur[i, :, a:a + crop, c:c + crop] for i, a, c in zip(idx, y, x)])
        sh = np.stack([self.sharp[i, :, a:a + crop, c:c + crop] for i, a, c in zip(idx, y, x)])
        bl = torch.from_numpy(bl).float() / 255
        sh = torch.from_numpy(sh).float() / 255
        k = torch.from_numpy(self.kernel[idx].copy())
        # The same flip / transpose of images and kernel keeps blur = k * sharp.
        if rng.random() < 0.5:
            bl, sh, k = bl.flip(-1), sh.flip(-1), k.flip(-1)
        if rng.random() < 0.5:
            bl, sh, k = bl.flip(-2), sh.flip(-2), k.flip(-2)
        if rng.random() < 0.5:
            bl, sh, k = bl.transpose(-1, -2), sh.transpose(-1, -2), k.transpose(-1, -2)
        return bl.contiguous(), sh.contiguous(), k.contiguous()


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from deblurkit.kernel_aware.refine import DEFAULT_NSRS
    from deblurkit.models.kernel_deconv_net import KernelDeconvNet
    from deblurkit.train.checkpoint import load_checkpoint, save_checkpoint

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = ShardData(Path(args.cache))
    while len(data) == 0:
        print("waiting for cache shards ...", file=sys.stderr, flush=True)
        time.sleep(20)
        data.refresh()
    hp = {"num_wiener": len(DEFAULT_NSRS), "base_index": 1, "width": args.width,
          "enc_blk_nums": [1, 1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1]}
    model = KernelDeconvNet(**hp)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4, betas=(0.9, 0.9))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.02, 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps))))
    step, wall = 0, 0.0
    last = out / "last.pt"
    if args.resume and last.is_file():
        ck = load_checkpoint(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, wall = int(ck["step"]), float(ck["wall_seconds"])
        print(f"resumed at step {step}", file=sys.stderr)
    gen = torch.Generator().manual_seed(1000 + step)
    rng = np.random.default_rng([args.seed, step])
    log = open(out / "log.jsonl", "a")  # noqa: SIM115 - appended to for the whole run
    t_last = time.time()
    run_loss = 0.0

    def save() -> None:
        save_checkpoint(last, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "step": step, "wall_seconds": wall,
                               "hparams": json.dumps(hp), "nsrs": json.dumps(list(DEFAULT_NSRS)),
                               "shards": len(data.files), "pairs": len(data), "args": json.dumps(vars(args))})

    model.train()
    while step < args.steps:
        bl, sh, k = data.batch(rng, args.batch, args.crop)
        kp = perturb_kernels(k, gen)
        with torch.no_grad():
            wien = wiener_stack_torch(bl, kp, DEFAULT_NSRS)
        pred = model(torch.cat([bl, wien], 1))
        loss = (pred - sh).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        sched.step()
        step += 1
        now = time.time()
        wall += now - t_last
        t_last = now
        run_loss += float(loss.detach())
        if step % 50 == 0:
            row = {"step": step, "l1": round(run_loss / 50, 5), "lr": opt.param_groups[0]["lr"],
                   "wall_s": round(wall, 1), "pairs": len(data)}
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(row, file=sys.stderr, flush=True)
            run_loss = 0.0
        if step % args.save_every == 0 or step == args.steps:
            save()
            data.refresh()
    log.close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from deblurkit.kernel_aware.refine import save_kernel_refine_weights
    from deblurkit.models.kernel_deconv_net import KernelDeconvNet
    from deblurkit.train.checkpoint import load_checkpoint

    ck = load_checkpoint(args.ckpt)
    hp = json.loads(ck["hparams"])
    model = KernelDeconvNet(**hp)
    model.load_state_dict(ck["model"])
    train_args = json.loads(ck["args"])
    meta = {
        "design": "(c) blind kernel estimation (deblurkit.kernel_aware) + multi-NSR Wiener in linear light + "
                  "KernelDeconvNet residual refinement",
        "nsrs": json.loads(ck["nsrs"]),
        "steps": int(ck["step"]), "batch": train_args["batch"], "crop": train_args["crop"], "lr": train_args["lr"],
        "wall_seconds": round(float(ck["wall_seconds"]), 1),
        "hardware": args.hardware,
        "training_pairs": int(ck["pairs"]),
        "training_data": "realistic-uniform synthesis (uniform shake 2-32 px, linear light, camera pipeline, "
                         "noise none/rsblur-realblur/unprocessing, 30% saturation, 15% JPEG, 10% night, 8% sharp) "
                         "on train photos of studies/photos_manifest.json + dead leaves + skimage samples; "
                         "perturbed true kernels (shift, scale 0.85-1.15, rotation 12 deg, noise, blur)",
        "command": "python -m studies.train_kernel_refine " + " ".join(sys.argv[1:]),
    }
    save_kernel_refine_weights(model, args.out, meta=meta)
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
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--crop", type=int, default=96)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--save-every", type=int, default=200)
    t.add_argument("--resume", action="store_true")
    e = sub.add_parser("export")
    e.add_argument("--ckpt", default=str(ROOT / "runs/kernel_refine/last.pt"))
    e.add_argument("--out", default=str(ROOT / "src/deblurkit/weights/kernel-refine.safetensors"))
    e.add_argument("--hardware", default="2 shared CPU cores (torch 2.13 CPU)")
    args = ap.parse_args(argv)
    return {"cache": cmd_cache, "train": cmd_train, "export": cmd_export}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
