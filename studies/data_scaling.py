#!/usr/bin/env python3
"""The data-scaling study: does a deblurring network improve with more distinct photos?

    python -m studies.data_scaling                     # train every variant, then evaluate (hours: see docs)
    python -m studies.data_scaling --eval-only         # score finished runs that have no score file yet
    python -m studies.data_scaling --max-steps 4 --variants photos-22,procedural --runs-dir /tmp/ds \\
        --out /tmp/ds/results --figure /tmp/ds/scaling.png   # a smoke run

Same network (``nafnet-w16``, random initialisation), same step budget, same seed, same
synthesis (the ``realistic`` preset, a random scale per crop) for every photo-pool variant; only
the pool of sharp photos differs:

- ``photos-22``: the 22 training photos of ``studies/photos_manifest.json`` (the Debian photos the
  shipped network was trained on);
- ``photos-100`` / ``photos-300`` / ``photos-all``: those 22 plus the first 78 / 278 / all of the
  other TRAINING photos of ``studies/train_photos_many.yaml`` (../shared/data/sharp) in a fixed
  shuffled order, so each pool contains the smaller ones;
- ``procedural``: dead-leaves images only, no photo;
- ``photos-all-w32``: the ``photos-all`` pool, but ``nafnet-w32`` (the same blocks at twice the
  width) for 1,400 steps, about the training time of the 3,000 ``nafnet-w16`` steps: is a wider
  network better at equal CPU time?

Crops are drawn uniformly over the photos of a pool (each photo reduced to at most 2,048 px on
its long side, then a random scale in [scale_min, 1] per crop). Validation and test photos of
the manifest are never in a pool. Each run goes through :func:`deblurkit.train.train` (its
folder holds ``config.yaml``, ``metrics.csv``, checkpoints, ``model.safetensors``; a finished
variant is skipped, an interrupted one resumed).

Evaluation: every network (one pass, no self-ensemble) and ``identity`` on every held-out set of
``data/testsets`` (the Debian TEST photos; ``python -m studies.make_testsets``; photos the manifest
excludes from scoring are left out, as in every held-out table): PSNR, and shift-aligned PSNR
(``deblurkit.eval.metrics.psnr_shift_aligned`` within ``ALIGN_REACH_PX``). Each variant is scored
as soon as its training ends, into ``--out``/variants/<variant>.json (per-image rows, steps, training
wall time), so the study outlives its runs folder: a variant with a score file is neither trained nor
scored again (``--rescore`` scores the runs that exist again). The summary covers every requested
variant with a score file: ``results.md``, ``summary.json`` and ``per_image.csv`` in ``--out`` and a
figure at ``--figure``; variants still missing are named there.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from deblurkit.train.runlog import run_wall_seconds
from studies.heldout import add_testset_arguments, load_pair, set_items
from studies.variant_scores import VariantScores

#: the photo pools: name -> number of photos (0: procedural only; -1: every training photo)
VARIANTS: dict[str, int] = {"photos-22": 22, "photos-100": 100, "photos-300": 300, "photos-all": -1,
                            "procedural": 0, "photos-all-w32": -1}
#: variants that train another network on a pool instead, at about the training wall time of the
#: ``nafnet-w16`` variants (a step of ``nafnet-w32`` costs 2.1x one of ``nafnet-w16`` on one thread):
#: name -> TRAIN overrides; each is compared with the ``nafnet-w16`` variant of the same pool
NETWORKS: dict[str, dict] = {"photos-all-w32": {"model": "nafnet-w32", "max_steps": 1400}}
#: training settings shared by every variant (deblurkit TrainConfig keys, recipe nafnet)
TRAIN = {
    "model": "nafnet-w16", "preset": "realistic", "scale_min": 0.35, "scale_max": 1.0, "crop_size": 128,
    "batch_size": 8, "max_steps": 3000, "synth_length": 10_000_000, "seed": 0, "ema_decay": 0.999,
    "num_workers": 1, "threads": 1, "val_every": 0, "val_count": 2, "val_crop": 64, "checkpoint_every": 250,
    "checkpoint_minutes": 10, "log_every": 50, "progress": False, "tensorboard": False,
}


def training_pool(manifest: Path) -> tuple[list, list]:
    """``(debian_train, other_train)`` photo entries of the manifest's training split (fixed order)."""
    from deblurkit.synth.sources import PhotoSetSource

    src = PhotoSetSource(manifest, split="train")
    debian = sorted((p for s in src.sources for p in s.photos if s.name == "debian"), key=lambda p: p.name)
    others = sorted((p for s in src.sources for p in s.photos if s.name != "debian"), key=lambda p: p.name)
    order = np.random.default_rng(0).permutation(len(others))
    return debian, [others[i] for i in order]


def write_variant_manifest(variant: str, count: int, pool: tuple[list, list], folder: Path) -> Path:
    """A photo manifest for one variant (a fetch-style photo list, every photo in the train split)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "photos.yaml"
    if count == 0:
        spec = {"sources": [{"name": "procedural", "procedural": "dead-leaves"}]}
    else:
        debian, others = pool
        n_more = len(others) if count < 0 else max(0, count - len(debian))
        if count > 0 and n_more > len(others):
            raise SystemExit(f"{variant}: needs {count} photos, the manifest has {len(debian) + len(others)}")
        chosen = debian[:count] if 0 < count < len(debian) else debian + others[:n_more]
        photos = [{"path": str(p.path), "package": p.source, "name": p.name.split("/", 1)[1], "split": "train"}
                  for p in chosen]
        (folder / "photos.json").write_text(json.dumps({"root": "/", "photos": photos}, indent=1))
        spec = {"sources": [{"name": "pool", "photos_manifest": "photos.json", "max_side": 2048}]}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def train_run(label: str, out: Path, overrides: dict) -> None:
    """Train one study run of the ``nafnet`` recipe into ``out``: resumed from its last checkpoint,
    skipped if its weights exist already."""
    from deblurkit.train import resolve_config, train

    if (out / "model.safetensors").exists():
        print(f"[{label}] finished already, skipped", flush=True)
        return
    cfg = resolve_config(recipe="nafnet", overrides=overrides)
    resume = (out / "checkpoints" / "last.pt").exists()
    print(f"[{label}] {'resuming' if resume else 'training'} -> {out}", flush=True)
    t0 = time.time()
    train(cfg, resume=resume)
    print(f"[{label}] done in {time.time() - t0:.0f} s", flush=True)


def train_variants(args: argparse.Namespace, variants: list[str]) -> None:
    """Train each variant that has neither weights nor a score file, and score it as soon as it ends."""
    pool = training_pool(Path(args.manifest))
    store = VariantScores(args.out)
    for v in variants:
        out = Path(args.runs_dir) / v
        if v in store:
            print(f"[{v}] scored already ({store.path(v)}), skipped", flush=True)
            continue
        if not (out / "model.safetensors").exists():
            source = write_variant_manifest(v, VARIANTS[v], pool, out / "data")
            overrides = {**TRAIN, **NETWORKS.get(v, {}), "source": str(source), "out_dir": str(out)}
            if args.max_steps:
                overrides.update(max_steps=args.max_steps, checkpoint_every=args.max_steps)
            train_run(v, out, overrides)
        score_variant(args, v)


ALIGN_REACH_PX = 15
"""Shift search reach: half the longest kernel of the held-out sets (5-30 px shakes)."""


def score_variant(args: argparse.Namespace, variant: str) -> None:
    """Score one trained variant (one pass, no self-ensemble; ``identity``: the blurry input) on every
    held-out set and write its score file atomically."""
    import torch

    from deblurkit.eval import metrics
    from deblurkit.infer import load_restorer

    torch.set_num_threads(args.threads)
    run = Path(args.runs_dir) / variant
    restorer = None
    if variant != "identity":
        restorer = load_restorer(run / "model.safetensors", backend="torch", threads=args.threads, tile=0,
                                 self_ensemble=False)
    t0, rows = time.time(), []
    for set_name in args.sets:
        found = set_items(args.testsets, set_name, args.limit, args.all_photos)
        if found is None:
            continue
        root, items = found
        for it in items:
            blur, sharp = load_pair(root, it["index"])
            out = blur if restorer is None else np.clip(restorer(blur), 0, 1)
            rows.append({"set": set_name, "image": it["photo"], "method": variant,
                         "psnr": metrics.psnr(out, sharp, data_range=1.0),
                         "psnr_aligned": metrics.psnr_shift_aligned(out, sharp, data_range=1.0,
                                                                    max_shift=ALIGN_REACH_PX)})
    if not rows:
        raise SystemExit(f"no held-out set found in {args.testsets}: run python -m studies.make_testsets first")
    record = {"rows": rows, "eval_s": round(time.time() - t0, 1)}
    if variant != "identity":
        import yaml

        config = yaml.safe_load((run / "config.yaml").read_text())
        record.update(train_wall_s=run_wall_seconds(run), steps=int(config["max_steps"]))
    path = VariantScores(args.out).write(variant, record)
    print(f"[{variant}] scored {len(rows)} images in {record['eval_s']:.0f} s -> {path}", flush=True)


def load_scores(args: argparse.Namespace, variants: list[str]) -> tuple[list[dict], list[str], dict, dict]:
    """Rows of ``identity`` and of every scored variant, the sets in order, walls and steps per variant."""
    store = VariantScores(args.out)
    if "identity" not in store or args.rescore:
        score_variant(args, "identity")
    rows, walls, steps = store.rows(["identity", *variants]), {}, {}
    for v in variants:
        record = store.read(v)
        walls[v], steps[v] = record["train_wall_s"], record["steps"]
    sets = list(dict.fromkeys(r["set"] for r in rows))
    return rows, sets, walls, steps


def summarise(rows: list[dict], sets: list[str], variants: list[str], walls: dict, photos: dict,
              steps: dict, missing: list[str]) -> dict:
    groups = {s: [s] for s in sets}
    groups["blurred"] = [s for s in sets if s != "sharp"]
    keys = ["psnr", "psnr_aligned"]
    table: dict = {}
    for g, members in groups.items():
        table[g] = {}
        for m in ["identity", *variants]:
            e = {}
            for k in keys:
                vals = np.array([r[k] for r in rows if r["method"] == m and r["set"] in members])
                ident = np.array([r[k] for r in rows if r["method"] == "identity" and r["set"] in members])
                e[k] = float(vals.mean())
                e[f"{k}_gain"] = float((vals - ident).mean())
                e[f"{k}_gain_se"] = float((vals - ident).std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else 0.0
            e["n"] = int(sum(1 for r in rows if r["method"] == m and r["set"] in members))
            table[g][m] = e
    # Paired per-image differences (same images, so far tighter than the per-set standard errors):
    # every variant against the first, and each photo pool against the next smaller one.
    def paired_difference(base: str, m: str) -> dict:
        out = {}
        for k in keys:
            by_image: dict = {}
            for r in rows:
                if r["set"] in groups["blurred"] and r["method"] in (base, m):
                    by_image.setdefault((r["set"], r["image"]), {})[r["method"]] = r[k]
            d = np.array([v[m] - v[base] for v in by_image.values() if len(v) == 2])
            out[k] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1
                      else 0.0, "better": int((d > 0).sum()), "n": int(d.size)}
        return out

    base = variants[0] if variants else None
    paired = {m: paired_difference(base, m) for m in variants[1:]}
    pools = sorted((v for v in variants if photos.get(v) and v not in NETWORKS), key=lambda v: photos[v])
    steps_up = [{"from": a, "to": b, **paired_difference(a, b)} for a, b in itertools.pairwise(pools) if a != base]
    same_pool = {v: next((u for u in pools if photos[u] == photos[v]), None) for v in variants if v in NETWORKS}
    networks = [{"from": u, "to": v, **paired_difference(u, v)} for v, u in same_pool.items() if u]
    return {"variants": variants, "missing": missing, "photos": photos, "train": TRAIN, "steps": steps,
            "networks": {v: NETWORKS[v] for v in same_pool}, "paired_networks": networks,
            "train_wall_s": walls, "groups": groups, "aligned_metric": "psnr_shift_aligned", "table": table,
            "paired_to": base, "paired": paired, "paired_steps": steps_up}


def markdown(summary: dict, sets: list[str]) -> str:
    t, groups = summary["table"], list(summary["groups"])
    lines = []
    metrics_md = [("psnr", "PSNR"), ("psnr_aligned", "shift-aligned PSNR")]
    for key, label in metrics_md:
        lines += [f"{label} gain over the blurry input (dB), mean ± standard error over images:", "",
                  "| training photos | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
        for v in summary["variants"]:
            n, net = summary["photos"][v], summary.get("networks", {}).get(v)
            name = f"{v} ({n} photos)" if n else f"{v} (dead leaves)"
            name = f"{v} ({n} photos, {net['model']}, {net['max_steps']} steps)" if net else name
            lines.append(f"| {name} | " + " | ".join(
                f"{t[g][v][key + '_gain']:+.2f} ± {t[g][v][key + '_gain_se']:.2f}" for g in groups) + " |")
        lines.append("| input " + label + " | " + " | ".join(f"{t[g]['identity'][key]:.2f}" for g in groups) + " |")
        lines.append("")
        for v, d in summary["paired"].items():
            e = d[key]
            lines += [(f"{v} minus {summary['paired_to']}, per image over the blurred sets: {e['mean']:+.2f} ± "
                       f"{e['se']:.2f} dB, better on {e['better']} of {e['n']} images."), ""]
        for d in summary.get("paired_steps", []):
            e = d[key]
            lines += [(f"{d['to']} minus {d['from']} (the next smaller photo pool), per image over the blurred sets: "
                       f"{e['mean']:+.2f} ± {e['se']:.2f} dB, better on {e['better']} of {e['n']} images."), ""]
        for d in summary.get("paired_networks", []):
            e = d[key]
            lines += [(f"{d['to']} minus {d['from']} (another network, same photos, about the same training time), "
                       f"per image over the blurred sets: {e['mean']:+.2f} ± {e['se']:.2f} dB, better on "
                       f"{e['better']} of {e['n']} images."), ""]
    walls = summary["train_wall_s"]
    lines += ["Steps and training wall time per variant: " + ", ".join(
        f"{v} {summary['steps'][v]} steps, {walls.get(v, math.nan):.0f} s" for v in summary["variants"]), ""]
    if summary["missing"]:
        lines += ["Not trained yet: " + ", ".join(summary["missing"]) + ".", ""]
    return "\n".join(lines)


def figure(summary: dict, sets: list[str], path: Path) -> None:
    """PSNR gain vs. number of training photos (log axis), one line per held-out set; procedural at the left."""
    from PIL import Image, ImageDraw

    t = summary["table"]
    photo_vs = [v for v in summary["variants"] if summary["photos"][v] > 0 and v not in NETWORKS]
    proc = [v for v in summary["variants"] if summary["photos"][v] == 0]
    groups = [*sets, "blurred"]
    vals = [t[g][v]["psnr_gain"] for g in groups for v in [*photo_vs, *proc]]
    lo, hi = min(0.0, min(vals)), max(0.0, max(vals))
    pad = 0.1 * ((hi - lo) or 1.0)
    lo, hi = lo - pad, hi + pad
    W, H, left, right, top, bottom = 760, 420, 60, 170, 36, 50
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    counts = [summary["photos"][v] for v in photo_vs]
    xmin, xmax = math.log(min(counts) / 1.6) if counts else 0.0, math.log(max(counts) * 1.3) if counts else 1.0

    def x(n: float) -> float:
        return left + 40 + (math.log(n) - xmin) / ((xmax - xmin) or 1.0) * (W - left - right - 40)

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (H - top - bottom)

    d.line([(left, y(0)), (W - right, y(0))], fill="black")
    step = 0.5 if hi - lo < 5 else 1.0
    tick = math.ceil(lo / step) * step
    while tick <= hi:
        d.line([(left, y(tick)), (W - right, y(tick))], fill=(225, 225, 225))
        d.text((8, y(tick) - 6), f"{tick:+.1f}", fill="black")
        tick += step
    for n in counts:
        d.text((x(n) - 10, H - bottom + 6), str(n), fill="black")
    if proc:
        d.text((left - 4, H - bottom + 6), "proc.", fill="black")
    d.text((left + 60, H - 22), "training photos (log scale); 'proc.' = procedural images only", fill="black")
    d.text((left, 8), "PSNR gain over the blurry input (dB), nafnet-w16, same step budget", fill="black")
    colours = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167), (0, 114, 178), (213, 94, 0),
               (0, 0, 0)]
    for gi, g in enumerate(groups):
        c = colours[gi % len(colours)]
        pts = [(x(summary["photos"][v]), y(t[g][v]["psnr_gain"])) for v in photo_vs]
        if len(pts) > 1:
            d.line(pts, fill=c, width=3 if g == "blurred" else 2)
        for px, py in pts:
            d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=c)
        for v in proc:
            py = y(t[g][v]["psnr_gain"])
            d.rectangle([left + 8, py - 3, left + 14, py + 3], fill=c)
        d.line([(W - right + 12, top + 14 + 18 * gi), (W - right + 32, top + 14 + 18 * gi)], fill=c, width=3)
        d.text((W - right + 38, top + 8 + 18 * gi), g, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(ROOT / "studies" / "train_photos_many.yaml"))
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "data-scaling"))
    add_testset_arguments(ap)
    ap.add_argument("--out", default=str(ROOT / "studies" / "results" / "data_scaling"))
    ap.add_argument("--figure", default=str(ROOT / "docs" / "images" / "training-data" / "data_scaling.png"))
    ap.add_argument("--max-steps", type=int, default=0, help="override the step budget (smoke runs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-only", action="store_true", help="train nothing: score the finished runs without scores")
    ap.add_argument("--rescore", action="store_true", help="score every finished run again (and the input)")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    t0 = time.time()
    store = VariantScores(args.out)
    if args.eval_only or args.rescore:
        for v in variants:
            if (Path(args.runs_dir) / v / "model.safetensors").exists() and (args.rescore or v not in store):
                score_variant(args, v)
    else:
        train_variants(args, variants)
    scored = store.scored(variants)
    missing = [v for v in variants if v not in scored]
    if missing:
        print(f"not trained yet: {', '.join(missing)}", file=sys.stderr)
    if not scored:
        return 1
    debian, others = training_pool(Path(args.manifest))
    photos = {v: (len(debian) + len(others) if n < 0 else n) for v, n in VARIANTS.items() if v in scored}
    rows, sets, walls, steps = load_scores(args, scored)
    summary = summarise(rows, sets, scored, walls, photos, steps, missing)
    summary.update(invocation_s=round(time.time() - t0, 1),
                   command="python -m studies.data_scaling " + " ".join(argv if argv is not None else sys.argv[1:]))
    md = markdown(summary, sets)

    from deblurkit.io import atomic_write

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "per_image.csv", "w") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with atomic_write(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=1)
    with atomic_write(out / "results.md", "w") as fh:
        fh.write(md)
    figure(summary, sets, Path(args.figure))
    print(md)
    print(f"training {sum(v for v in walls.values() if not math.isnan(v)):.0f} s in all, "
          f"this invocation {summary['invocation_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
