#!/usr/bin/env python3
"""Build the held-out test sets from the TEST photos of ``studies/photos_manifest.json``.

    python -m studies.make_testsets            # -> data/testsets/<set>/{blur,sharp}/NNN.png, kernels, meta.json

Sets (each: one crop per test photo, ``--size`` px, fixed seeds; synthesised with
:mod:`deblurkit.synth`, realistic camera pipeline, no JPEG):

* ``uniform``   uniform camera shake 5-30 px, no noise
* ``varying``   3-D rotational shake (spatially varying), 5-30 px at the centre, no noise
* ``night``     uniform shake with clipped highlights (RSBlur saturation model, always on),
                photos darkened x0.35 in linear light first
* ``noise-low`` uniform shake + RSBlur (RealBlur-calibrated) sensor noise
* ``noise-high`` uniform shake + "Unprocessing" sensor noise (log-uniform, up to strong)
* ``sharp``     no blur, low sensor noise (the "never make a sharp photo worse" check)
* ``saturated`` uniform shake with clipped highlights (RSBlur saturation model, always on) on the
                photos as they are: the photo's own highlights (>= 0.98 linear) are boosted and
                clip after the blur (in ``night`` the darkening comes first, so nothing clips there)
* ``large``     large uniform camera shake, no noise, on 1000 px crops of photos resized to
                1920 px (about 1 MP): path length 40-90 px with a calmer hand (anxiety
                0.005-0.03), so the kernels span about 25-80 px (median 45 px over 300 draws)
* ``capture``   the conditions of the real-capture benchmark of Levin et al. 2009: gray 255 px crops
                (four per photo), uniform shake (path 12-32 px with a calm hand: kernels of about 8-27 px)
                blurred in linear light, low sensor noise
                (RSBlur's RealBlur calibration, Poisson-Gaussian), no camera pipeline, gamma-encoded
                (sRGB) 8-bit gray PNG as a camera writes it
* ``medium``    medium uniform shake on photo-sized images: 800 px crops of photos resized to
                1600 px, path length 15-40 px with a calm hand (kernels of about 10-35 px), RSBlur
                sensor noise; the size of real photos, where the blind stage's coarse probe runs

``--pause-prob P`` makes that share of the uniform shakes pause twice on their path
(:attr:`deblurkit.synth.presets.SynthConfig.pause_prob`; each pause holds 15-30 % of the
exposure at one point), as a hand does where it turns; by default the shakes move at constant
speed and the sets are as before.

Each crop is the most textured of 8 random candidates (mean gradient magnitude). Photos are first resized to ``--photo-side`` px on their long side (a typical phone-photo
scale at which 30 px of shake is realistic), then cropped. ``data/`` is git-ignored; the
sets are rebuilt bit-identically from the manifest by this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SETS: dict[str, dict] = {
    "uniform": {"spatially_varying_prob": 0.0, "noise_model": "none"},
    "varying": {"spatially_varying_prob": 1.0, "noise_model": "none"},
    "night": {"spatially_varying_prob": 0.0, "noise_model": "none", "saturation_prob": 1.0},
    "noise-low": {"spatially_varying_prob": 0.0, "noise_model": "rsblur-realblur"},
    "noise-high": {"spatially_varying_prob": 0.0, "noise_model": "unprocessing"},
    "sharp": {"spatially_varying_prob": 0.0, "noise_model": "rsblur-realblur", "blur_length_px": (0.0, 0.0)},
    "saturated": {"spatially_varying_prob": 0.0, "noise_model": "none", "saturation_prob": 1.0},
    "large": {"spatially_varying_prob": 0.0, "noise_model": "none", "blur_length_px": (40.0, 90.0),
              "anxiety": (0.005, 0.03)},
    "capture": {"spatially_varying_prob": 0.0, "noise_model": "rsblur-realblur", "blur_length_px": (12.0, 32.0),
                "anxiety": (0.005, 0.03),
                "camera_pipeline": False, "trim": 0},
    "medium": {"spatially_varying_prob": 0.0, "noise_model": "rsblur-realblur", "blur_length_px": (15.0, 40.0),
               "anxiety": (0.005, 0.03)},
}
DARKEN = {"night": 0.35}
GEOMETRY = {"large": {"size": 1000, "photo_side": 1920},
            "medium": {"size": 800, "photo_side": 1600},
            "capture": {"size": 255, "photo_side": 1024, "crops": 4, "gray": True}}
"""Sets with their own crop size, photo side, crops per photo and gray flag (the others use
``--size`` and ``--photo-side``, one colour crop per photo)."""


def set_config(name: str):
    from deblurkit.synth.presets import get_preset

    base = dataclasses.replace(
        get_preset("realistic"), saturation_prob=0.0, jpeg_prob=0.0, blur_length_px=(5.0, 30.0)
    )
    return dataclasses.replace(base, name=f"testset-{name}", **SETS[name])


def _load_photo(path: Path, side: int) -> np.ndarray:
    """A photo as float32 sRGB in [0, 1], downscaled (area) to at most ``side`` px."""
    import cv2

    from deblurkit.io import load_image_rgb

    img = load_image_rgb(path)
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s < 1:
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return np.clip(img, 0, 1).astype(np.float32)


def load_test_photos(manifest_path: Path, photo_root: Path, side: int,
                     split: str = "test") -> list[tuple[str, np.ndarray]]:
    manifest = json.loads(manifest_path.read_text())
    return [(e["name"], _load_photo(photo_root / e["path"], side)) for e in manifest["photos"] if e["split"] == split]


def load_folder_photos(folder: Path, side: int, limit: int | None = None, skip: int = 0) -> list[tuple[str, np.ndarray]]:
    """``limit`` images (sorted by name) of ``folder`` after the first ``skip``, resized to at most ``side`` px."""
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    files = files[skip:][:limit]
    return [(f.name, _load_photo(f, side)) for f in files]


def _textured_crop(img: np.ndarray, crop: int, rng: np.random.Generator, candidates: int = 8) -> tuple[int, int]:
    """Of ``candidates`` random crops, the one with the largest mean gradient magnitude.

    Wallpaper photos have large smooth areas (sky, bokeh) where blur changes almost nothing;
    picking the most textured crop keeps the sets informative about deblurring.
    """
    gray = img.mean(axis=2)
    best, arg = -1.0, (0, 0)
    for _ in range(candidates):
        y0 = int(rng.integers(0, img.shape[0] - crop + 1))
        x0 = int(rng.integers(0, img.shape[1] - crop + 1))
        g = gray[y0:y0 + crop, x0:x0 + crop]
        e = float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())
        if e > best:
            best, arg = e, (y0, x0)
    return arg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(ROOT / "studies/photos_manifest.json"))
    ap.add_argument("--photos", default=str(ROOT / "data/photos"))
    ap.add_argument("--out", default=str(ROOT / "data/testsets"))
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--photo-side", type=int, default=1024)
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--split", choices=("test", "train"), default="test",
                    help="photos to use: 'train' builds validation sets for tuning a setting "
                         "(e.g. --split train --out data/valsets) without touching the held-out photos")
    ap.add_argument("--photo-dir", default=None,
                    help="build validation sets from the images of this folder instead of the manifest's "
                         "(e.g. ../shared/data/sharp/urban100: building facades, periodic structure)")
    ap.add_argument("--limit", type=int, default=None, help="with --photo-dir: the first N images by name")
    ap.add_argument("--skip", type=int, default=0,
                    help="with --photo-dir: leave out the first N images by name (those of another pool), "
                         "then take --limit")
    ap.add_argument("--psf-dir", default=None,
                    help="blur with the measured PSFs of this folder (.npy or grayscale PNG; a random one "
                         "per pair, in a random orientation) instead of synthetic shake; every set's other "
                         "settings are kept")
    ap.add_argument("--pause-prob", type=float, default=0.0,
                    help="share of the uniform shakes that pause twice on their path (SynthConfig.pause_prob; "
                         "a hand slows where it turns, and recorded shake kernels show bright points on "
                         "fainter strokes); e.g. --pause-prob 1 --out data/valsets-pauses")
    ap.add_argument("--blur-space", choices=("linear", "srgb"), default="linear",
                    help="where the blur convolves: linear light (a camera; default) or the sRGB-encoded "
                         "values (as many synthetic benchmarks and frame averages of processed video blur; "
                         "no camera pipeline then), e.g. --blur-space srgb --out data/valsets-srgb")
    args = ap.parse_args(argv)
    split = "folder" if args.photo_dir else args.split
    if not 0.0 <= args.pause_prob <= 1.0:
        print(f"--pause-prob must be in [0, 1], got {args.pause_prob}", file=sys.stderr)
        return 2

    import torch

    from deblurkit.color import linear_to_srgb, luminance, srgb_to_linear
    from deblurkit.io import atomic_write, save_png
    from deblurkit.synth.pipeline import synthesize_pair

    torch.set_num_threads(1)
    t0 = time.time()
    loaded: dict[int, list[tuple[str, np.ndarray]]] = {}
    for set_name in args.sets:
        geometry = GEOMETRY.get(set_name, {"size": args.size, "photo_side": args.photo_side})
        size, photo_side = geometry["size"], geometry["photo_side"]
        if photo_side not in loaded:
            loaded[photo_side] = (
                load_folder_photos(Path(args.photo_dir), photo_side, args.limit, args.skip) if args.photo_dir
                else load_test_photos(Path(args.manifest), Path(args.photos), photo_side, args.split))
        photos = loaded[photo_side]
        if not photos:
            print(f"no {split} photos: run scripts/fetch_photos.py first (or check --photo-dir)", file=sys.stderr)
            return 2
        cfg = set_config(set_name)
        if args.psf_dir:
            cfg = dataclasses.replace(cfg, trajectory="recorded", psf_dir=args.psf_dir)
        if args.pause_prob:
            cfg = dataclasses.replace(cfg, pause_prob=args.pause_prob)
        if args.blur_space == "srgb":
            cfg = dataclasses.replace(cfg, blur_space="srgb", camera_pipeline=False)
        out = Path(args.out) / set_name
        items = []
        crops = geometry.get("crops", 1)
        gray = geometry.get("gray", False)
        crop = size + 2 * cfg.trim
        fitting = [(photo_name, img) for photo_name, img in photos if min(img.shape[:2]) >= crop]
        if len(fitting) < len(photos):
            print(f"{set_name}: {len(photos) - len(fitting)} photos smaller than the {crop}-px crop left out",
                  file=sys.stderr)
        jobs = [(photo_name, img, c) for photo_name, img in fitting for c in range(crops)]
        for i, (photo_name, img, c) in enumerate(jobs):
            key = {"test": f"{set_name}/{photo_name}", "train": f"val/{set_name}/{photo_name}",
                   "folder": f"folder/{set_name}/{photo_name}"}[split]
            if c:
                key += f"/{c}"
            seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
            rng = np.random.default_rng(seed)
            y0, x0 = _textured_crop(img, crop, rng)
            sharp = img[y0:y0 + crop, x0:x0 + crop]
            if set_name in DARKEN:
                sharp = linear_to_srgb(srgb_to_linear(sharp) * DARKEN[set_name])
            if gray:
                sharp = np.repeat(linear_to_srgb(luminance(srgb_to_linear(sharp)))[..., None], 3, axis=2)
            x = torch.from_numpy(np.ascontiguousarray(sharp.transpose(2, 0, 1)))[None]
            pair = synthesize_pair(x, cfg, torch.Generator().manual_seed(seed))
            blur = pair.blur[0].permute(1, 2, 0).numpy()
            tgt = pair.sharp[0].permute(1, 2, 0).numpy()
            if gray:  # one channel keeps the sampled noise level (a mean of three would lower it)
                blur, tgt = blur[..., 1], tgt[..., 1]
            save_png(out / "blur" / f"{i:03d}.png", blur)
            save_png(out / "sharp" / f"{i:03d}.png", tgt)
            kernel_file = None
            if pair.kernel is not None:
                kernel_file = f"kernels/{i:03d}.npy"
                (out / "kernels").mkdir(parents=True, exist_ok=True)
                with atomic_write(out / kernel_file) as fh:
                    np.save(fh, pair.kernel[0, 0].numpy().astype(np.float32))
            items.append({"index": i, "photo": photo_name, "crop_yx": [y0, x0], "seed": seed,
                          "kernel": kernel_file, "params": pair.params[0]})
        meta = {"set": set_name, "split": split, "photo_dir": args.photo_dir, "config": dataclasses.asdict(cfg), "size": size,
                "photo_side": photo_side, "darken_linear": DARKEN.get(set_name), "items": items}
        with atomic_write(out / "meta.json", "w") as fh:
            json.dump(meta, fh, indent=1, default=str)
        print(f"{set_name}: {len(items)} pairs -> {out}", file=sys.stderr)
    print(f"done in {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
