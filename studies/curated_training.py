#!/usr/bin/env python3
"""Curated, uncurated and privacy-safe procedural training data (DreamClear's Figure 6, at CPU scale).

    python -m studies.curated_training                       # curate, render, train 5 arms, evaluate
    python -m studies.curated_training --arms uncurated,curated --no-eval   # train some arms only
    python -m studies.curated_training --eval-only           # score the finished runs again
    python -m studies.curated_training --max-steps 2 --procedural-count 4 --pool-limit 8 \\
        --runs-dir /tmp/ct --out /tmp/ct/results --figure "" --real-blur-figure "" --sets uniform --limit 1     # a smoke run

The same network (``--model``, random initialisation), the same step budget, seed and synthesis
(the ``realistic`` preset, a random scale per crop) for every arm; only the sharp images differ:

- ``uncurated``: every TRAINING photo of ``studies/train_photos_many.yaml`` — the Debian
  wallpaper photos (``studies/photos_manifest.json``, data/photos) and the research folders
  ``../shared/data/sharp/{urban100,sunhays80,bsds500,polyu40,kodak24}`` (their train split);
- ``curated``: the photos of that pool that ``deblurkit curate`` accepts (default thresholds, the
  face filter on, BRISQUE off since it rejects nothing by default), run once and cached in
  ``<runs-dir>/curation/manifest.jsonl``;
- ``procedural``: privacy-safe images only: ``--procedural-count`` images rendered once at
  ``--procedural-size`` px, half :class:`deblurkit.synth.procedural.ProceduralSceneSource` scenes
  and half :class:`deblurkit.synth.sources.DeadLeavesSource` dead leaves (fixed seeds); a fixed,
  pre-rendered pool like GenIR's generated set, and the same per-step cost as the photo arms;
- ``curated+procedural``: both, each drawn with probability 1/2;
- ``privacy-safe``: the procedural pool and a pool of rendered images, each drawn with probability
  1/2: the 100 training views of ``../shared/data/scenes/lego`` (a path-traced 3-D scene,
  composited on white as its renders are published) and ``--rendered-count`` crops of the
  ``../shared/data/hdr`` panoramas, tone-mapped (:func:`render_rendered_pool`): a rendered scene
  and published scenery, no personal photo collection (the panoramas are photographs of places;
  no face filter is run on them).

Validation and test photos of the manifest are never in a pool; every arm is scored on the
held-out sets of ``data/testsets`` (the Debian TEST photos; ``python -m studies.make_testsets``):
PSNR and SSIM (``studies.heldout.metrics``: sRGB, data range 1) of each network (one pass, no
self-ensemble) and of the blurry input. Writes ``<out>.json`` / ``<out>.md``, a contact sheet of
the procedural pool (``--figure``) and 1:1 crops of real blurry photos restored by each arm
(``--real-blur-figure``; ``../shared/data/real-blur``, no ground truth).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from deblurkit.train.runlog import run_wall_seconds
from studies.data_scaling import train_run
from studies.heldout import SHARED, add_testset_arguments, load_pair, metrics, requested_sets, write_results

#: the image pools each arm draws from (each pool with probability 1 / number of pools)
ARM_POOLS = {
    "uncurated": ("photos",), "curated": ("photos",), "procedural": ("procedural",),
    "curated+procedural": ("photos", "procedural"), "privacy-safe": ("procedural", "rendered"),
}
ARMS = tuple(ARM_POOLS)
#: training settings shared by every arm (deblurkit TrainConfig keys, recipe nafnet)
TRAIN = {
    "model": "nafnet-w16", "preset": "realistic", "scale_min": 0.35, "scale_max": 1.0, "crop_size": 64,
    "batch_size": 4, "max_steps": 800, "synth_length": 1_000_000, "seed": 0, "ema_decay": 0.0,
    "num_workers": 0, "threads": 1, "val_every": 0, "val_count": 2, "val_crop": 64, "checkpoint_every": 100,
    "checkpoint_minutes": 10, "log_every": 50, "progress": False, "tensorboard": False,
}


def photo_pool(manifest: Path, limit: int = 0) -> list:
    """Every training photo of a photo manifest (procedural sources left out), sorted by name.

    ``limit`` > 0 keeps an evenly spaced subset of that many (smoke runs).
    """
    from deblurkit.synth.sources import PhotoSetSource

    src = PhotoSetSource(manifest, split="train")
    photos = sorted((p for s in src.sources for p in s.photos), key=lambda p: p.name)
    if 0 < limit < len(photos):
        photos = [photos[i] for i in np.linspace(0, len(photos) - 1, limit).round().astype(int)]
    return photos


def curate_pool(photos: list, folder: Path) -> dict[str, dict]:
    """Run ``deblurkit curate``'s scorer over the pool once (cached); path -> manifest record."""
    from deblurkit.curate.rules import CurationRules
    from deblurkit.curate.run import MANIFEST_NAME, ProgressPrinter, curate_files

    manifest = folder / MANIFEST_NAME
    want = [str(p.path) for p in photos]
    if manifest.is_file():
        records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        by_path = {r["path"]: r for r in records}
        if all(w in by_path for w in want):
            print(f"curation: cached {manifest}", flush=True)
            return {w: by_path[w] for w in want}
    print(f"curation: scoring {len(want)} photos -> {manifest}", flush=True)
    curate_files([Path(w) for w in want], folder, CurationRules(), privacy=True, brisque=False,
                 progress=ProgressPrinter())
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return {r["path"]: r for r in records}


def render_procedural_pool(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` procedural images (half scenes, half dead leaves, image i from seed i), rendered once."""
    import cv2

    from deblurkit.synth.procedural import ProceduralSceneSource
    from deblurkit.synth.sources import DeadLeavesSource

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        kind = "scene" if i % 2 == 0 else "leaves"
        path = folder / f"{kind}-{i:04d}.png"
        if not path.is_file():
            src = ProceduralSceneSource() if kind == "scene" else DeadLeavesSource()
            img, _ = src.random_crop(size, np.random.default_rng([18, i]))
            tmp = path.with_suffix(".tmp.png")
            cv2.imwrite(str(tmp), (img[..., ::-1] * 255.0).round().astype(np.uint8))
            tmp.replace(path)
        paths.append(path)
    return paths


def procedural_curation(procedural: list[Path], per_kind: int) -> dict[str, dict]:
    """How ``deblurkit curate``'s checks (no face detector, no BRISQUE) judge the first images of each kind.

    Returns:
        kind -> ``{"n", "accepted", "reasons": {reason: count}, "sharpness": [min, median, max]}``.
    """
    from deblurkit.curate.rules import CurationRules, decide
    from deblurkit.curate.run import score_image_srgb
    from deblurkit.io import load_image_rgb

    out: dict[str, dict] = {}
    for kind in ("scene", "leaves"):
        files = [p for p in procedural if p.name.startswith(kind)][:per_kind]
        e: dict = {"n": len(files), "accepted": 0, "reasons": {}, "sharpness": []}
        for f in files:
            scores = score_image_srgb(load_image_rgb(f), privacy=False, brisque=False)
            reasons = decide(scores, CurationRules())
            e["accepted"] += not reasons
            e["sharpness"].append(scores["sharpness"])
            for r in reasons:
                key = r.split(" (")[0]
                e["reasons"][key] = e["reasons"].get(key, 0) + 1
        if files:
            e["sharpness"] = [float(np.min(e["sharpness"])), float(np.median(e["sharpness"])),
                              float(np.max(e["sharpness"]))]
        out[kind] = e
    return out


def pool_sheet(procedural: list[Path], path: Path, per_row: int = 4, side: int = 192) -> None:
    """A contact sheet of the procedural pool: the first ``per_row`` scenes above the first dead-leaves images."""
    import cv2

    rows = []
    for kind in ("scene", "leaves"):
        tiles = [cv2.resize(cv2.imread(str(p)), (side, side), interpolation=cv2.INTER_AREA)
                 for p in procedural if p.name.startswith(kind)][:per_row]
        tiles += [np.full((side, side, 3), 255, np.uint8)] * (per_row - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
    ok, buf = cv2.imencode(".png", np.concatenate(rows, axis=0))
    if ok:
        from deblurkit.io import atomic_write

        with atomic_write(path, "wb") as fh:
            fh.write(buf.tobytes())


def render_rendered_pool(folder: Path, scene: Path, hdr: Path, hdr_count: int, size: int) -> list[Path]:
    """Rendered, privacy-safe sharp images, written once: the scene's views and tone-mapped HDR crops.

    The views of the NeRF-style ``scene`` (a ``transforms_*.json``) are composited on white by
    :func:`deblurkit.scene.data.read_nerf_transforms`. HDR crop ``i`` comes from panorama ``i % n``
    at a random position of its middle half of rows (where the equirectangular projection
    stretches least), exposed so that its median luminance is 0.18, clipped at 1 and sRGB-encoded.
    """
    from deblurkit.color import linear_to_srgb, luminance
    from deblurkit.highlights.video import load_panorama_linear
    from deblurkit.io import save_png

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if scene.is_file():
        from deblurkit.scene.data import read_nerf_transforms

        views = read_nerf_transforms(scene, background=(1.0, 1.0, 1.0))
        for name, image in sorted(zip(views.names, views.images), key=lambda v: v[0]):
            path = folder / f"scene-{name}.png"
            if not path.is_file():
                save_png(path, image.permute(1, 2, 0).numpy())
            paths.append(path)
    panoramas = sorted(hdr.glob("*.hdr")) if hdr.is_dir() else []
    loaded: dict[Path, np.ndarray] = {}
    for i in range(hdr_count if panoramas else 0):
        path = folder / f"hdr-{i:04d}.png"
        if not path.is_file():
            pano_path = panoramas[i % len(panoramas)]
            pano = loaded.setdefault(pano_path, load_panorama_linear(pano_path))
            rng = np.random.default_rng([19, i])
            h, w = pano.shape[:2]
            y = int(rng.integers(h // 4, max(h // 4 + 1, 3 * h // 4 - size)))
            x = int(rng.integers(0, w - size))
            crop = pano[y:y + size, x:x + size]
            save_png(path, linear_to_srgb(np.clip(crop * (0.18 / max(float(np.median(luminance(crop))), 1e-6)), 0, 1)))
        paths.append(path)
    return paths


def write_arm_manifest(arm: str, photos: list, curated: dict[str, dict], procedural: list[Path],
                       folder: Path, rendered: list[Path] | None = None) -> tuple[Path, dict[str, int]]:
    """The photo manifest of one arm (fetch-style photo lists, every image in the train split)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    pools = ARM_POOLS[arm]
    lists: dict[str, list[dict]] = {}
    if "photos" in pools:
        keep = [p for p in photos if arm == "uncurated" or curated.get(str(p.path), {}).get("status") == "accepted"]
        lists["photos"] = [{"path": str(Path(p.path).resolve()), "package": p.source,
                            "name": p.name.split("/", 1)[1], "split": "train"} for p in keep]
    if "procedural" in pools:
        lists["procedural"] = [{"path": str(p.resolve()), "package": "procedural", "name": p.name, "split": "train"}
                               for p in procedural]
    if "rendered" in pools:
        lists["rendered"] = [{"path": str(p.resolve()), "package": "rendered", "name": p.name, "split": "train"}
                             for p in rendered or []]
    sources = []
    for name, entries in lists.items():
        (folder / f"{name}.json").write_text(json.dumps({"root": "/", "photos": entries}, indent=1))
        sources.append({"name": name, "photos_manifest": f"{name}.json", "weight": 1.0, "max_side": 2048})
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    return path, {k: len(v) for k, v in lists.items()}


def train_arm(arm: str, source: Path, out: Path, max_steps: int, seed: int = TRAIN["seed"]) -> None:
    overrides = {**TRAIN, "source": str(source), "out_dir": str(out), "max_steps": max_steps, "seed": seed,
                 "checkpoint_every": min(TRAIN["checkpoint_every"], max_steps)}
    train_run(arm, out, overrides)


def evaluate(args: argparse.Namespace, arms: list[str]) -> tuple[list[dict], list[str]]:
    """PSNR / SSIM of every arm's network and of the input on every requested held-out set."""
    import torch

    from deblurkit.infer import load_restorer

    torch.set_num_threads(args.threads)
    restorers = {"input": None}
    for arm in arms:
        restorers[arm] = load_restorer(Path(args.runs_dir) / arm_folder(arm) / "model.safetensors",
                                       backend="torch", threads=args.threads, tile=0, self_ensemble=False)
    rows, sets = [], []
    for set_name, root, items in requested_sets(args):
        sets.append(set_name)
        for it in items:
            blur, sharp = load_pair(root, it["index"])
            for m, r in restorers.items():
                p, s = metrics(blur if r is None else r(blur), sharp)
                rows.append({"set": set_name, "index": it["index"], "image": it["photo"], "method": m, "psnr": p, "ssim": s})
        print(f"evaluated {set_name}: {len(items)} images", flush=True)
    if not rows:
        raise SystemExit(f"no held-out set found in {args.testsets}: run python -m studies.make_testsets first")
    return rows, sets


def real_blur_sheet(args: argparse.Namespace, arms: list[str], path: Path, crop: int = 160, margin: int = 48) -> int:
    """1:1 crops of real blurry photos (``studies.real_blur_sheet``'s photos) restored by every arm; rows written.

    Each network restores the ``crop`` square with the most texture plus ``margin`` px around it
    (the margin is cut off again). No ground truth: a visual check only.
    """
    import cv2
    import torch

    from deblurkit.infer import load_restorer
    from deblurkit.io import atomic_write, load_image_rgb
    from studies.real_blur_sheet import DEFAULT_DATA, DEFAULT_IMAGES, label, most_textured_crop

    torch.set_num_threads(args.threads)
    nets = {a: load_restorer(Path(args.runs_dir) / arm_folder(a) / "model.safetensors", backend="torch",
                             threads=args.threads, tile=0, self_ensemble=False) for a in arms}
    rows = []
    for rel in DEFAULT_IMAGES:
        f = DEFAULT_DATA / rel
        if not f.is_file():
            continue
        img = load_image_rgb(f)
        y, x = most_textured_crop(img, crop)
        y0, x0 = max(0, y - margin), max(0, x - margin)
        region = img[y0:y + crop + margin, x0:x + crop + margin]
        panels = [label(img[y:y + crop, x:x + crop], f"{Path(rel).stem[:18]} input")]
        for a, net in nets.items():
            out = np.clip(net(region), 0.0, 1.0)
            panels.append(label(out[y - y0:y - y0 + crop, x - x0:x - x0 + crop], a))
        gap = np.ones((panels[0].shape[0], 4, 3), np.float32)
        rows.append(np.concatenate([q for p in panels for q in (p, gap)][:-1], axis=1))
    if not rows:
        return 0
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    sheet = (np.concatenate(rows, axis=0)[..., ::-1] * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(path.suffix or ".png", sheet, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if ok:
        with atomic_write(path, "wb") as fh:
            fh.write(buf.tobytes())
    return len(rows)


def arm_folder(arm: str) -> str:
    return arm.replace("+", "-and-")


def summarise(rows: list[dict], sets: list[str], arms: list[str]) -> dict:
    """Mean PSNR / SSIM per set and over the blurred sets, with the gain over the input and its SE."""
    groups = {**{s: [s] for s in sets}, "blurred sets": [s for s in sets if s != "sharp"]}
    table: dict = {}
    for g, members in groups.items():
        if not members:
            continue
        table[g] = {}
        for m in ["input", *arms]:
            e: dict = {}
            for k in ("psnr", "ssim"):
                vals = np.array([r[k] for r in rows if r["method"] == m and r["set"] in members])
                ref = np.array([r[k] for r in rows if r["method"] == "input" and r["set"] in members])
                e[k] = float(vals.mean())
                e[f"{k}_gain"] = float((vals - ref).mean())
                e[f"{k}_gain_se"] = float((vals - ref).std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else 0.0
            e["n"] = int(vals.size)
            table[g][m] = e
    return table


def paired_differences(rows: list[dict], groups: dict[str, list[str]], arms: list[str], base: str) -> dict:
    """PSNR of each arm minus ``base`` on the same images: group -> arm -> (mean, standard error)."""
    out: dict = {}
    for g, members in groups.items():
        out[g] = {}
        ref = {(r["set"], r["index"]): r["psnr"] for r in rows if r["method"] == base and r["set"] in members}
        for m in arms:
            if m == base:
                continue
            d = np.array([r["psnr"] - ref[(r["set"], r["index"])] for r in rows
                          if r["method"] == m and r["set"] in members])
            out[g][m] = (float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0)
    return out


def markdown(table: dict, arms: list[str], counts: dict, walls: dict, steps: int,
             diffs: dict | None = None) -> list[str]:
    groups = list(table)
    lines = [(f"PSNR (dB) / SSIM, mean over the images of each held-out set; `{TRAIN['model']}`, {steps} steps of "
              f"batch {TRAIN['batch_size']} on {TRAIN['crop_size']}-px crops per arm:"), "",
             "| training images | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
    for m in ["input", *arms]:
        label = "blurry input" if m == "input" else f"{m} ({', '.join(f'{n} {k}' for k, n in counts.get(m, {}).items())})"
        lines.append(f"| {label} | " + " | ".join(f"{table[g][m]['psnr']:.2f} / {table[g][m]['ssim']:.3f}"
                                                  for g in groups) + " |")
    lines += ["", "Gain over the blurry input, PSNR dB (mean ± standard error over images):", "",
              "| arm | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
    for m in arms:
        lines.append(f"| {m} | " + " | ".join(f"{table[g][m]['psnr_gain']:+.2f} ± {table[g][m]['psnr_gain_se']:.2f}"
                                              for g in groups) + " |")
    if diffs:
        base = next(a for a in arms if a not in next(iter(diffs.values())))
        lines += ["", (f"PSNR difference to `{base}` on the same images, dB (mean ± standard error of the paired "
                       "differences):"), "", "| arm | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
        for m in arms:
            if m != base:
                lines.append(f"| {m} | " + " | ".join(f"{diffs[g][m][0]:+.2f} ± {diffs[g][m][1]:.2f}" for g in groups)
                             + " |")
    lines += ["", "Training wall time per arm (s): " + ", ".join(f"{a} {walls.get(a, math.nan):.0f}" for a in arms)]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(ROOT / "studies" / "train_photos_many.yaml"))
    ap.add_argument("--arms", default=",".join(ARMS), help=f"subset of {','.join(ARMS)}")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "curated-training"))
    ap.add_argument("--out", default=str(ROOT / "studies" / "results" / "curated_training"))
    ap.add_argument("--max-steps", type=int, default=TRAIN["max_steps"])
    ap.add_argument("--seed", type=int, default=TRAIN["seed"], help="training seed (initialisation, crops, degradations)")
    ap.add_argument("--procedural-count", type=int, default=400)
    ap.add_argument("--procedural-size", type=int, default=384, help="side of procedural images and HDR crops")
    ap.add_argument("--rendered-count", type=int, default=100, help="tone-mapped HDR crops in the rendered pool")
    ap.add_argument("--scene", default=str(SHARED / "scenes" / "lego" / "transforms_train.json"),
                    help="NeRF-style transforms file whose views join the rendered pool")
    ap.add_argument("--hdr", default=str(SHARED / "hdr"))
    ap.add_argument("--figure", default=str(ROOT / "docs" / "images" / "curation" / "procedural_pool.png"),
                    help="contact sheet of the procedural pool (empty: none)")
    ap.add_argument("--real-blur-figure", default=str(ROOT / "docs" / "images" / "curation" / "real_blur_arms.jpg"),
                    help="1:1 crops of ../shared/data/real-blur restored by each arm (empty: none; skipped "
                         "without that folder)")
    ap.add_argument("--pool-limit", type=int, default=0, help="use only this many pool photos (smoke runs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--no-eval", action="store_true")
    add_testset_arguments(ap)
    args = ap.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        ap.error(f"unknown arms {unknown}; valid: {', '.join(ARMS)}")
    runs = Path(args.runs_dir)
    photos = photo_pool(Path(args.manifest), args.pool_limit)
    pools = {pool for a in arms for pool in ARM_POOLS[a]}
    curated = curate_pool(photos, runs / "curation") if "photos" in pools else {}
    procedural = (render_procedural_pool(runs / "procedural-pool", args.procedural_count, args.procedural_size)
                  if "procedural" in pools else [])
    rendered = (render_rendered_pool(runs / "rendered-pool", Path(args.scene), Path(args.hdr),
                                     args.rendered_count, args.procedural_size)
                if "rendered" in pools else [])
    if args.figure:
        pool_sheet(procedural, Path(args.figure))
    counts = {}
    for arm in arms:
        source, counts[arm] = write_arm_manifest(arm, photos, curated, procedural, runs / arm_folder(arm) / "data",
                                                 rendered)
        print(f"[{arm}] images: {counts[arm]}", flush=True)
        if not args.eval_only:
            train_arm(arm, source, runs / arm_folder(arm), args.max_steps, args.seed)
    if args.no_eval:
        return 0
    missing = [a for a in arms if not (runs / arm_folder(a) / "model.safetensors").exists()]
    if missing:
        print(f"not finished: {missing}", file=sys.stderr)
        return 1
    walls = {a: run_wall_seconds(runs / arm_folder(a)) for a in arms}
    rows, sets = evaluate(args, arms)
    table = summarise(rows, sets, arms)
    reasons: dict[str, int] = {}
    for r in curated.values():
        for reason in r.get("reasons") or []:
            key = reason.split(" (")[0].split(" of ")[0]
            reasons[key] = reasons.get(key, 0) + 1
    per_source: dict[str, list[int]] = {}
    for p in photos:
        kept = per_source.setdefault(p.source, [0, 0])
        kept[0] += curated.get(str(p.path), {}).get("status") == "accepted"
        kept[1] += 1
    command = "python -m studies.curated_training " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {"command": command, "train": {**TRAIN, "max_steps": args.max_steps, "seed": args.seed}, "arms": arms, "counts": counts,
               "pool": len(photos), "curation_reasons": reasons, "curation_kept_per_source": per_source, "train_wall_s": walls, "table": table, "rows": rows}
    proc_scores = procedural_curation(procedural, 20) if procedural else {}
    results["procedural_curation"] = proc_scores
    groups = {g: ([g] if g != "blurred sets" else [s for s in sets if s != "sharp"]) for g in table}
    diffs = paired_differences(rows, groups, arms, arms[0]) if len(arms) > 1 else None
    results["paired_differences"] = diffs
    lines = markdown(table, arms, counts, walls, args.max_steps, diffs)
    lines += ["", f"Pool: {len(photos)} training photos; curation rejected "
              + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
              + " (an image can fail several checks); kept per source: "
              + ", ".join(f"{k} {a} of {n}" for k, (a, n) in per_source.items()) + "."]
    for kind, e in proc_scores.items():
        lines.append(f"Procedural `{kind}` images passing the curation checks (no face detector): {e['accepted']} of "
                     f"{e['n']}; sharpness min / median / max " + " / ".join(f"{v:.2f}" for v in e["sharpness"])
                     + "; rejected as " + (", ".join(f"{k} {v}" for k, v in e["reasons"].items()) or "-") + ".")
    lines += ["", f"Command: `{command}`"]
    write_results(args.out, results, lines)
    if args.real_blur_figure:
        n = real_blur_sheet(args, arms, Path(args.real_blur_figure))
        print(f"real-blur sheet: {n} photos -> {args.real_blur_figure}" if n else "real-blur sheet: no photos found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
