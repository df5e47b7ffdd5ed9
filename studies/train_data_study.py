#!/usr/bin/env python3
"""The training-data study: which synthesis preset gives the best deblurring network?

    python -m studies.train_data_study --trial     # 20-step trial: steps/s, to set max_steps
    python -m studies.train_data_study             # train every variant, then evaluate
    python -m studies.train_data_study --eval-only # score finished runs that have no score file yet
    python -m studies.train_data_study --rescore   # score every finished run again
    python -m studies.train_data_study --seed 1    # a training-seed replicate (folders suffixed -seed1)
    python -m studies.train_data_study --combine-seeds 0,1   # replicates side by side -> seeds.md
    python -m studies.train_data_study --config studies/data_study_many.yaml   # 619 photos, 3,000 steps
    python -m studies.train_data_study --config studies/data_study_many.yaml --variants realistic,naive
                                                    # only these variants; the others' scores are kept
    python -m studies.train_data_study --source-only data/train-ms --photo-sides 1024,1536,2048
                                                    # only the sharp folder, photos at three scales

Run time on 2 shared CPU cores: ~29 min of training (5 x 200-570 s) + ~3 min of evaluation.

Same network (``nafnet-w16``), same step budget, same seed and same sharp source for every
variant in ``studies/data_study_config.yaml`` (``naive``, ``gopro``, ``realistic-no-noise``,
``realistic-no-saturation``, ``realistic``); only ``preset`` differs. Each run goes through
:func:`deblurkit.train.train`, so it has its ``config.yaml``, ``metrics.csv`` and checkpoints;
a finished variant (``model.safetensors`` present) is skipped, an unfinished one is resumed.
Training runs one variant at a time with ``torch.set_num_threads(1)``.

Sharp source (built once under ``data/``, git-ignored): the TRAIN-split photos of
``studies/photos_manifest.json`` resized to ``photo_side`` on the long side, scikit-image's
bundled sample photos, and procedural dead-leaves images; or, where the config names a
``source`` (``studies/data_study_many.yaml``: the photo manifest ``studies/train_photos_many.yaml``,
its TRAIN split), that source as it is. The held-out test photos are never
read here except through ``studies/make_testsets.py``'s sets in ``data/testsets``.

Evaluation: every variant plus ``identity`` (the blurry input) on every held-out set, PSNR/SSIM
(``deblurkit.eval.metrics``, data range 1, RGB, outputs clipped to [0, 1]). Each variant is scored
as soon as its training ends, into ``out_dir``/variants/<variant>.json (per-image rows, training
wall time; :class:`studies.variant_scores.VariantScores`), so a study too long for one working day
lands variant by variant: a variant with a score file is neither trained nor scored again. The
tables cover every variant scored so far: ``per_image.csv``, ``summary.json`` and ``results.md`` in
``out_dir`` and a bar chart in ``figures_dir``; the crop figure is drawn when every variant's weights
are in the runs folder. The run time is printed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from deblurkit.train.runlog import run_wall_seconds
from studies.heldout import available_sets, load_pair, metrics, set_items
from studies.variant_scores import VariantScores

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "studies" / "data_study_config.yaml"


def load_study_config(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------- sharp source


def build_source(cfg: dict) -> Path:
    """The sharp source of every variant: the config's ``source`` (a photo manifest or folder) if it
    names one, else the shared sharp-image folder, written once (BMP: fast to decode)."""
    if cfg.get("source"):
        path = ROOT / cfg["source"]
        if not path.exists():
            raise SystemExit(f"{path} missing: the config's source must exist")
        return path
    import cv2

    from deblurkit.io import load_image_rgb
    from deblurkit.synth.sources import SAMPLE_IMAGES, DeadLeavesSource, SampleImageSource

    out = ROOT / cfg["source_dir"]
    done = out / "source.json"
    if done.exists():
        return out
    sides = cfg.get("photo_sides", [cfg["photo_side"]])  # several: each photo at several scales
    info: dict = {"photos": [], "photo_sides": sides, "samples": list(SAMPLE_IMAGES), "dead_leaves": 0}
    manifest_path = ROOT / "studies" / "photos_manifest.json"
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    (out / "dead-leaves").mkdir(parents=True, exist_ok=True)

    def write(path: Path, img: np.ndarray) -> None:
        u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
        if not cv2.imwrite(str(path), cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")

    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        photo_root = ROOT / manifest.get("root", "data/photos")
        for e in manifest["photos"]:
            if e["split"] != "train":  # held-out test photos are never trained on
                continue
            full = load_image_rgb(photo_root / e["path"])
            h, w = full.shape[:2]
            name = Path(e["path"]).stem.replace(" ", "_")
            index = len(info["photos"])
            for side in sides:
                s = side / max(h, w)
                if s > 1 and side != sides[0]:
                    continue  # never upsample an extra scale
                img = cv2.resize(full, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else full
                suffix = "" if len(sides) == 1 else f"_{side}"
                write(out / "photos" / f"{index:03d}_{name}{suffix}.bmp", img)
            info["photos"].append(e["path"])
    for name in SAMPLE_IMAGES:
        write(out / "samples" / f"{name}.bmp", SampleImageSource.load(name))
    dl = DeadLeavesSource()
    rng = np.random.default_rng(12345)
    for i in range(cfg["dead_leaves_count"]):
        img, _ = dl.random_crop(cfg["dead_leaves_size"], rng)
        write(out / "dead-leaves" / f"{i:03d}.bmp", img)
    info["dead_leaves"] = cfg["dead_leaves_count"]
    done.write_text(json.dumps(info, indent=1))
    return out


# --------------------------------------------------------------------------- training


def train_config(cfg: dict, variant: str, source: Path, **extra):
    from deblurkit.train import resolve_config

    t = dict(cfg["train"])
    recipe = t.pop("recipe", None)
    t.update(preset=variant, source=str(source), out_dir=str(ROOT / cfg["runs_dir"] / variant))
    t.update(extra)
    return resolve_config(recipe=recipe, overrides={k: v for k, v in t.items()})


def train_variant(cfg: dict, variant: str, source: Path) -> None:
    """Train one variant (resumed from its last checkpoint if one exists)."""
    from deblurkit.train import train

    out = ROOT / cfg["runs_dir"] / variant
    resume = (out / "checkpoints" / "last.pt").exists()
    print(f"[{variant}] {'resuming' if resume else 'training'} -> {out}", flush=True)
    t0 = time.time()
    train(train_config(cfg, variant, source), resume=resume)
    print(f"[{variant}] done in {time.time() - t0:.0f} s", flush=True)


def run_variants(cfg: dict, variants: list[str], *, train_missing: bool = True, rescore: bool = False) -> None:
    """Score every variant of ``variants`` that has no score file yet (``rescore``: every finished
    one again), training it first if it has no weights and ``train_missing``; the blurry input
    (``identity``) is scored once."""
    store = VariantScores(ROOT / cfg["out_dir"])
    if "identity" not in store or rescore:
        score_variant(cfg, "identity")
    source = None
    for v in variants:
        if v in store and not rescore:
            print(f"[{v}] scored already ({store.path(v)}), skipped", flush=True)
            continue
        if not (ROOT / cfg["runs_dir"] / v / "model.safetensors").exists():
            if not train_missing:
                continue
            source = source or build_source(cfg)
            train_variant(cfg, v, source)
        score_variant(cfg, v)


def trial(cfg: dict, source: Path, steps: int = 20) -> None:
    """Time ``steps`` training steps of the first variant in a scratch folder."""
    import shutil
    import tempfile

    from deblurkit.train import train

    tmp = Path(tempfile.mkdtemp(prefix="data-study-trial-"))
    try:
        c = train_config(cfg, "realistic", source, out_dir=str(tmp), max_steps=steps, val_every=10 ** 9,
                         checkpoint_every=10 ** 9)
        t0 = time.time()
        train(c)
        dt = time.time() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = steps / dt
    print(f"trial: {steps} steps in {dt:.1f} s = {rate:.2f} steps/s (incl. start-up and final validation); "
          f"9 min = {int(rate * 540)} steps", flush=True)


# --------------------------------------------------------------------------- evaluation


def score_variant(cfg: dict, variant: str) -> None:
    """Score one finished variant (``identity``: the blurry input) on every held-out set and store its
    per-image rows (and training wall time) in the study's score files."""
    import torch

    from deblurkit.infer import load_restorer

    torch.set_num_threads(1)
    troot = ROOT / cfg["testsets_dir"]
    if not troot.is_dir():
        raise SystemExit(f"{troot} missing: run python -m studies.make_testsets first")
    run = ROOT / cfg["runs_dir"] / variant
    restorer = None
    if variant != "identity":
        restorer = load_restorer(run / "model.safetensors", backend="torch", threads=1, tile=0)
    t0, rows = time.time(), []
    for s in available_sets(troot):
        root, items = set_items(troot, s, None, all_photos=True)
        for it in items:
            blur, sharp = load_pair(root, it["index"])
            t = time.time()
            out = blur if restorer is None else np.clip(restorer(blur), 0, 1)
            sec = time.time() - t
            p, q = metrics(out, sharp)
            rows.append({"set": s, "image": f"{it['index']:03d}.png", "method": variant, "psnr": p, "ssim": q,
                         "seconds": sec})
    record: dict = {"rows": rows, "eval_s": round(time.time() - t0, 1)}
    if variant != "identity":
        record["train_wall_s"] = run_wall_seconds(run)
    path = VariantScores(ROOT / cfg["out_dir"]).write(variant, record)
    print(f"[{variant}] scored {len(rows)} images in {record['eval_s']:.0f} s -> {path}", flush=True)


def stored_results(cfg: dict) -> dict:
    """The tables of every scored variant (in the config's order) and the blurry input."""
    store = VariantScores(ROOT / cfg["out_dir"])
    methods = ["identity"] + store.scored(cfg["variants"])
    rows = store.rows(methods)
    sets = list(dict.fromkeys(r["set"] for r in rows))
    walls = {v: store.read(v)["train_wall_s"] for v in methods[1:]}
    return {"rows": rows, "summary": summarise(cfg, rows, sets, methods, walls), "sets": sets, "methods": methods}


def first_image_outputs(cfg: dict, sets: list[str], methods: list[str]) -> dict[tuple[str, str, str], np.ndarray]:
    """``(set, image, method) -> output`` for the first image of each set (and ``sharp``: its target),
    from the variants' weights in the runs folder, for :func:`crop_figure`."""
    from deblurkit.infer import load_restorer

    troot = ROOT / cfg["testsets_dir"]
    restorers = {m: None if m == "identity" else load_restorer(ROOT / cfg["runs_dir"] / m / "model.safetensors",
                                                               backend="torch", threads=1, tile=0)
                 for m in methods}
    outputs = {}
    for s in sets:
        root, items = set_items(troot, s, None, all_photos=True)
        name = f"{items[0]['index']:03d}.png"
        blur, sharp = load_pair(root, items[0]["index"])
        outputs[(s, name, "sharp")] = sharp
        for m, restorer in restorers.items():
            outputs[(s, name, m)] = blur if restorer is None else np.clip(restorer(blur), 0, 1)
    return outputs


def summarise(cfg: dict, rows: list[dict], sets: list[str], methods: list[str], walls: dict[str, float]) -> dict:
    blurred = [s for s in sets if s != "sharp"]
    groups: dict[str, list[str]] = {s: [s] for s in sets}
    groups["blurred"] = blurred  # every set with blur (all but "sharp")
    groups["all"] = list(sets)

    def vals(name: str, m: str, key: str) -> np.ndarray:
        return np.array([r[key] for r in rows if r["method"] == m and r["set"] in groups[name]])

    table: dict = {}
    for s in groups:
        name = s
        ident = vals(s, "identity", "psnr")
        ref = vals(s, "realistic", "psnr") if "realistic" in methods else None
        table[name] = {}
        for m in methods:
            p, q = vals(s, m, "psnr"), vals(s, m, "ssim")
            gain = p - ident
            e = {"psnr": float(p.mean()), "ssim": float(q.mean()), "n": int(p.size),
                 "gain_db": float(gain.mean()), "gain_std_db": float(gain.std(ddof=1)) if p.size > 1 else 0.0}
            if ref is not None and m != "realistic":
                d = ref - p  # paired: realistic minus this variant
                e["realistic_minus_this_db"] = float(d.mean())
                e["realistic_minus_this_se_db"] = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
                e["realistic_wins"] = int((d > 0).sum())
            table[name][m] = e
    tcfg = dict(cfg["train"])
    return {
        "groups": groups,
        "command": "python -m studies.train_data_study",
        "train": tcfg,
        "variants": methods[1:],
        "testsets": {s: len({r["image"] for r in rows if r["set"] == s}) for s in sets},
        "metrics": "PSNR/SSIM (deblurkit.eval.metrics), RGB, data range 1, outputs clipped to [0,1], float",
        "train_wall_s": walls,
        "train_wall_total_s": float(sum(walls.values())),
        "table": table,
    }


def write_results(cfg: dict, res: dict, total_s: float) -> None:
    from deblurkit.io import atomic_write

    out = ROOT / cfg["out_dir"]
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "per_image.csv", "w") as fh:
        w = csv.DictWriter(fh, fieldnames=["set", "image", "method", "psnr", "ssim", "seconds"])
        w.writeheader()
        for r in res["rows"]:
            w.writerow({**r, "psnr": f"{r['psnr']:.4f}", "ssim": f"{r['ssim']:.5f}", "seconds": f"{r['seconds']:.3f}"})
    summary = dict(res["summary"], invocation_run_s=round(total_s, 1))
    with atomic_write(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=1)
    md = markdown_table(res["summary"], res["sets"], res["methods"])
    with atomic_write(out / "results.md", "w") as fh:
        fh.write(md)
    print(md)


def markdown_table(summary: dict, sets: list[str], methods: list[str]) -> str:
    t = summary["table"]
    cols = list(summary["groups"])
    head = "| trained on | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols) + "\n"
    per_set = ", ".join(f"{s}: {n}" for s, n in summary["testsets"].items())
    lines = [f"PSNR (dB) / SSIM per held-out set, mean over images ({per_set}).", "", head.rstrip("\n")]
    for m in methods:
        cells = [f"{t[s][m]['psnr']:.2f} / {t[s][m]['ssim']:.3f}" for s in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "Gain over the blurry input, dB: mean ± std over images.", "", head.rstrip("\n")]
    for m in methods[1:]:
        cells = [f"{t[s][m]['gain_db']:+.2f} ± {t[s][m]['gain_std_db']:.2f}" for s in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if "realistic" in methods:
        lines += ["", ("Paired comparison: PSNR(realistic) − PSNR(variant), dB, mean ± standard error; "
                       "images where realistic is better."), "", head.rstrip("\n")]
        for m in methods[1:]:
            if m == "realistic":
                continue
            cells = [f"{t[s][m]['realistic_minus_this_db']:+.2f} ± {t[s][m]['realistic_minus_this_se_db']:.2f} "
                     f"({t[s][m]['realistic_wins']}/{t[s][m]['n']})" for s in cols]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    walls = summary["train_wall_s"]
    lines += ["", ("`blurred` = every set except `sharp`; `all` = every set. Every set uses the same test photos, "
                   "so images in different sets are not independent."), ""]
    lines += ["Training wall time per variant (s): "
              + ", ".join(f"{v} {walls.get(v, float('nan')):.0f}" for v in summary["variants"]), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures (PIL only)

COLOURS = [(150, 150, 150), (230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167), (0, 114, 178)]


def bar_figure(summary: dict, sets: list[str], methods: list[str], path: Path) -> None:
    """Grouped bars: PSNR gain over the blurry input per held-out set, one bar per variant."""
    from PIL import Image, ImageDraw

    t = summary["table"]
    groups = list(summary["groups"])
    variants = methods[1:]
    gains = np.array([[t[g][m]["gain_db"] for m in variants] for g in groups])
    lo, hi = min(0.0, float(gains.min())), max(0.0, float(gains.max()))
    pad = 0.1 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    W, H, left, top, bottom = 900, 420, 60, 40, 70
    plot_h = H - top - bottom
    gw = (W - left - 20) / len(groups)
    bw = gw * 0.8 / len(variants)
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    step = 0.5 if hi - lo < 4 else 1.0
    tick = math.ceil(lo / step) * step
    while tick <= hi:
        d.line([(left, y(tick)), (W - 20, y(tick))], fill=(225, 225, 225))
        d.text((5, y(tick) - 6), f"{tick:+.1f}", fill="black")
        tick += step
    d.line([(left, y(0)), (W - 20, y(0))], fill="black")
    for gi, g in enumerate(groups):
        x0 = left + gi * gw + gw * 0.1
        for vi, v in enumerate(variants):
            x = x0 + vi * bw
            val = gains[gi, vi]
            d.rectangle([x, min(y(0), y(val)), x + bw - 2, max(y(0), y(val))], fill=COLOURS[(vi + 1) % len(COLOURS)])
        d.text((left + gi * gw + gw * 0.3, H - bottom + 8), g, fill="black")
    d.text((left, 10), "PSNR gain over the blurry input (dB) per held-out set, nafnet-w16, same budget", fill="black")
    lx = left
    for vi, v in enumerate(variants):
        d.rectangle([lx, H - 30, lx + 12, H - 18], fill=COLOURS[(vi + 1) % len(COLOURS)])
        d.text((lx + 16, H - 30), v, fill="black")
        lx += 30 + 7 * len(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def crop_figure(outputs: dict, sets: list[str], methods: list[str], path: Path, crop: int = 112) -> None:
    """Rows: held-out sets; columns: blurry input, each variant, sharp target (same crop, with PSNR)."""
    from PIL import Image, ImageDraw

    from deblurkit.eval.metrics import psnr

    cols = methods + ["sharp"]
    label_h = 14
    W = crop * len(cols)
    H = (crop + label_h) * len(sets) + label_h
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    for ci, c in enumerate(cols):
        d.text((ci * crop + 3, 1), "blurry" if c == "identity" else c[:20], fill="black")
    for si, s in enumerate(sets):
        keys = [k for k in outputs if k[0] == s and k[2] == "sharp"]
        _, name, _ = keys[0]
        sharp = outputs[(s, name, "sharp")]
        h, w = sharp.shape[:2]
        # the most textured crop of the sharp image, so differences are visible
        best, top_left = -1.0, (0, 0)
        g = np.abs(np.diff(sharp.mean(2), axis=1))
        for ty in range(0, h - crop + 1, crop // 2):
            for tx in range(0, w - crop + 1, crop // 2):
                v = float(g[ty:ty + crop, tx:tx + crop - 1].mean())
                if v > best:
                    best, top_left = v, (ty, tx)
        ty, tx = top_left
        y0 = label_h + si * (crop + label_h)
        for ci, c in enumerate(cols):
            a = outputs[(s, name, c)][ty:ty + crop, tx:tx + crop]
            img.paste(Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)), (ci * crop, y0))
            txt = f"{s} {name}" if c == "sharp" else f"{psnr(a, sharp[ty:ty + crop, tx:tx + crop], data_range=1.0):.2f} dB"
            d.text((ci * crop + 3, y0 + crop), txt, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


# --------------------------------------------------------------------------- replicates


def with_seed(cfg: dict, seed: int) -> dict:
    """The study config for a replicate: same everything, another training seed, own folders."""
    if seed == cfg["train"]["seed"]:
        return cfg
    c = dict(cfg, train=dict(cfg["train"], seed=seed))
    c["runs_dir"] = f"{cfg['runs_dir']}-seed{seed}"
    c["out_dir"] = f"{cfg['out_dir']}-seed{seed}"
    c["figures_dir"] = f"{c['runs_dir']}/figures"  # replicate figures: git-ignored runs/, not docs/
    return c


def combine_seeds(cfg: dict, seeds: list[str | int]) -> None:
    """Per variant: PSNR gain over the input on the blurred sets, for each seed, their mean and spread."""
    from deblurkit.io import atomic_write

    sums = {}
    for s in seeds:
        path = ROOT / with_seed(cfg, int(s))["out_dir"] / "summary.json"
        if not path.exists():
            raise SystemExit(f"{path} missing: run the replicate with --seed {s} first")
        sums[int(s)] = json.loads(path.read_text())
    groups = ["blurred", "sharp", "all"]
    lines = [("Training-seed replicates: mean PSNR gain over the blurry input (dB), per seed; "
              "last columns: mean over seeds and max − min across seeds."), "",
             "| trained on | " + " | ".join(f"{g} seed {s}" for g in groups for s in sums)
             + " | blurred mean | blurred spread |", "|---|" + "---:|" * (len(groups) * len(sums) + 2)]
    out: dict = {}
    for v in cfg["variants"]:
        cells, b = [], []
        for g in groups:
            for s, sm in sums.items():
                val = sm["table"][g][v]["gain_db"]
                cells.append(f"{val:+.2f}")
                if g == "blurred":
                    b.append(val)
        out[v] = {"blurred_gain_db_per_seed": dict(zip(sums, b)), "mean": float(np.mean(b)),
                  "spread": float(max(b) - min(b))}
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {np.mean(b):+.2f} | {max(b) - min(b):.2f} |")
    ranks = {s: sorted(cfg["variants"], key=lambda v: -sm["table"]["blurred"][v]["gain_db"]) for s, sm in sums.items()}
    lines += ["", "Ranking on the blurred sets (best first): "
              + "; ".join(f"seed {s}: " + " > ".join(r) for s, r in ranks.items()), ""]
    md = "\n".join(lines)
    dest = ROOT / cfg["out_dir"] / "seeds.md"
    with atomic_write(dest, "w") as fh:
        fh.write(md)
    with atomic_write(dest.with_suffix(".json"), "w") as fh:
        json.dump({"seeds": list(sums), "variants": out, "ranking_blurred": ranks}, fh, indent=1)
    print(md)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--trial", action="store_true", help="time 20 training steps and exit")
    ap.add_argument("--eval-only", action="store_true",
                    help="train nothing: score the finished runs that have no score file yet")
    ap.add_argument("--rescore", action="store_true", help="score every finished run again (and the input)")
    ap.add_argument("--seed", type=int, default=None,
                    help="train/evaluate a replicate with this seed (own runs/results folders, suffix -seedN)")
    ap.add_argument("--combine-seeds", default=None, metavar="S0,S1,...",
                    help="tabulate finished replicates' summaries side by side and exit")
    ap.add_argument("--variants", default=None, metavar="V0,V1,...",
                    help="train and score only these variants (default: every variant of the config)")
    ap.add_argument("--source-only", metavar="DIR", default=None,
                    help="only write the sharp source folder to DIR (e.g. for the default model's training) and exit")
    ap.add_argument("--photo-sides", default=None, metavar="S0,S1,...",
                    help="with --source-only: write each train photo at these long sides (default: photo_side)")
    args = ap.parse_args(argv)
    if args.photo_sides and not args.source_only:
        ap.error("--photo-sides needs --source-only")

    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    cfg = load_study_config(Path(args.config))
    if args.combine_seeds:
        combine_seeds(cfg, [int(s) for s in args.combine_seeds.split(",")])
        return 0
    if args.seed is not None:
        cfg = with_seed(cfg, args.seed)
    if args.source_only:
        cfg = {**{k: v for k, v in cfg.items() if k != "source"}, "source_dir": args.source_only}
        if args.photo_sides:
            cfg["photo_sides"] = [int(v) for v in args.photo_sides.split(",")]
        print(build_source(cfg))
        return 0
    wanted = list(cfg["variants"])
    if args.variants:
        wanted = args.variants.split(",")
        unknown = [v for v in wanted if v not in cfg["variants"]]
        if unknown:
            ap.error(f"--variants: {unknown} not in the config's variants {cfg['variants']}")
    if args.trial:
        trial(cfg, build_source(cfg))
        return 0
    run_variants(cfg, wanted, train_missing=not (args.eval_only or args.rescore), rescore=args.rescore)
    store = VariantScores(ROOT / cfg["out_dir"])
    missing = [v for v in cfg["variants"] if v not in store]
    if missing:
        print(f"not scored yet: {', '.join(missing)}", file=sys.stderr)
    if len(missing) == len(cfg["variants"]):
        return 1
    res = stored_results(cfg)
    write_results(cfg, res, time.time() - t0)
    figs = ROOT / cfg["figures_dir"]
    bar_figure(res["summary"], res["sets"], res["methods"], figs / "psnr_gain_per_variant.png")
    runs = [ROOT / cfg["runs_dir"] / v / "model.safetensors" for v in cfg["variants"]]
    if not missing and all(p.exists() for p in runs):  # the crops need every variant's weights
        outputs = first_image_outputs(cfg, res["sets"], res["methods"])
        crop_figure(outputs, res["sets"], res["methods"], figs / "crops_per_variant.png")
    else:
        print("crop figure not drawn: it needs every variant's weights in the runs folder", file=sys.stderr)
    walls = res["summary"]["train_wall_s"]
    print(f"this invocation {time.time() - t0:.0f} s; training wall time (sum over variants, from metrics.csv) "
          f"{sum(walls.values()):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
