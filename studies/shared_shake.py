"""Kernels that should agree: blind estimates across photos taken under the same recorded shake.

Köhler et al. 2012 recorded twelve human hand shakes (6-DoF camera trajectories) and played each
back on a robot while photographing four different posters, so ``Blurry{scene}_{shake}.png`` with
the same ``shake`` share one blur (the same field of kernels over the frame) on different
content. There is no sharp image here, but there is a check: an estimator that finds the shake
returns the same kernel from all four scenes, while one misled by texture, noise or its own
settings returns kernels that depend on the scene. This scores, per estimator, the kernel
similarity (:func:`deblurkit.kernel_aware.kernels.kernel_similarity`, 1 = identical up to a
shift) of every pair of scenes under each shake, on the same centred crop of every photo (the
kernel varies over the frame), and draws the kernels side by side.

It measures the spread of the estimates, not their bias: a kernel that every scene makes too
short or too wide in the same way agrees with itself. The photos are stored in linear light;
each crop's luminance, divided by its working scale, is what ``deblurkit deblur --input-space
linear`` gives the estimator.

Run: ``python -m studies.shared_shake [--crop 600] [--estimators pipeline shipped]``
(``../shared/data/real-blur/koehler2012``; never copied into the repository).
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
from pathlib import Path

import numpy as np

from studies.blind_benchmark import parse_params, resolve_estimator, working_luminance
from studies.heldout import write_results

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real-blur" / "koehler2012"
NAME = re.compile(r"Blurry(\d+)_(\d+)\.png$")


def shake_groups(folder: Path) -> dict[int, dict[int, Path]]:
    """``{shake: {scene: path}}`` for the ``Blurry{scene}_{shake}.png`` files of ``folder``."""
    groups: dict[int, dict[int, Path]] = {}
    for path in sorted(folder.iterdir()):
        m = NAME.search(path.name)
        if m:
            groups.setdefault(int(m.group(2)), {})[int(m.group(1))] = path
    return dict(sorted(groups.items()))


def centre_crop_luminance(path: Path, crop: int, downscale: float = 1.0) -> np.ndarray:
    """The estimator's input for a linear-light photo: working luminance of its centred
    ``crop`` x ``crop`` square (the whole photo if ``crop`` is 0 or larger than it), after
    downscaling the photo ``downscale`` times (area averaging in linear light; shorter blurs)."""
    import cv2

    from deblurkit.color import linear_to_srgb
    from deblurkit.io import load_image_rgb

    linear = load_image_rgb(path)
    h, w = linear.shape[:2]
    if downscale > 1.0:
        h, w = round(h / downscale), round(w / downscale)
        linear = cv2.resize(linear, (w, h), interpolation=cv2.INTER_AREA)
    if 0 < crop < min(h, w):
        y, x = (h - crop) // 2, (w - crop) // 2
        linear = linear[y:y + crop, x:x + crop]
    return working_luminance(linear_to_srgb(linear))


def agreement(kernels: dict[int, np.ndarray | None]) -> dict:
    """Pairwise kernel similarities between the scenes that got a kernel, and their summary."""
    from deblurkit.kernel_aware.estimation import kernel_extent
    from deblurkit.kernel_aware.kernels import kernel_similarity

    found = {s: k for s, k in kernels.items() if k is not None}
    pairs = {f"{a}-{b}": kernel_similarity(found[a], found[b]) for a, b in itertools.combinations(sorted(found), 2)}
    values = list(pairs.values())
    return {"pairs": pairs, "mean": float(np.mean(values)) if values else None,
            "min": float(min(values)) if values else None,
            "declined": [s for s, k in kernels.items() if k is None],
            "extent_px": {s: kernel_extent(k) for s, k in found.items()}}


def run(groups: dict[int, dict[int, Path]], estimators: dict, crop: int, downscale: float = 1.0
        ) -> tuple[dict, dict]:
    """Per estimator and shake: :func:`agreement` of its kernels, and the kernels themselves."""
    results: dict = {name: {} for name in estimators}
    kernels: dict = {name: {} for name in estimators}
    for shake, scenes in groups.items():
        grays = {scene: centre_crop_luminance(path, crop, downscale) for scene, path in scenes.items()}
        for name, estimator in estimators.items():
            t0 = time.perf_counter()
            found = {scene: estimator(gray) for scene, gray in grays.items()}
            entry = agreement(found)
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            results[name][shake] = entry
            kernels[name][shake] = found
            mean = "–" if entry["mean"] is None else f"{entry['mean']:.3f}"
            print(f"shake {shake:2d} {name}: mean similarity {mean}, declined {entry['declined']}, "
                  f"{entry['seconds']:.0f} s", flush=True)
    return results, kernels


def summary(per_shake: dict) -> dict:
    """Mean over shakes of the mean pairwise similarity; share of pairs at least 0.9; declines."""
    means = [e["mean"] for e in per_shake.values() if e["mean"] is not None]
    pairs = [v for e in per_shake.values() for v in e["pairs"].values()]
    return {"mean_similarity": float(np.mean(means)) if means else None,
            "pairs_at_least_0.9": float(np.mean([v >= 0.9 for v in pairs])) if pairs else None,
            "n_pairs": len(pairs),
            "declined": sum(len(e["declined"]) for e in per_shake.values()),
            "images": sum(len(e["declined"]) + len(e["extent_px"]) for e in per_shake.values()),
            "seconds": round(sum(e["seconds"] for e in per_shake.values()), 1)}


def kernel_grid(kernels: dict[int, dict[int, np.ndarray | None]], side: int) -> np.ndarray:
    """One row per shake, one column per scene: kernels magnified to ``side`` px, each row on one
    pixel scale (padded to the row's largest kernel) so that lengths compare across scenes."""
    from studies.real_blur_sheet import kernel_panel, label

    scenes = sorted({s for row in kernels.values() for s in row})
    rows = []
    for shake, row in kernels.items():
        size = max((k.shape[0] for k in row.values() if k is not None), default=1)
        panels = []
        for scene in scenes:
            k = row.get(scene)
            if k is not None:
                pad = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
                k = np.pad(k, ((pad[0], size - k.shape[0] - pad[0]), (pad[1], size - k.shape[1] - pad[1])))
            panels += [label(kernel_panel(k, side), f"{scene}_{shake}"), np.ones((side, 4, 3), np.float32)]
        rows += [np.concatenate(panels[:-1], axis=1), np.ones((4, len(scenes) * (side + 4) - 4, 3), np.float32)]
    return np.concatenate(rows[:-1], axis=0)


def table(results: dict, summaries: dict) -> list[str]:
    names = list(results)
    shakes = list(next(iter(results.values())))
    lines = ["| estimator | mean similarity | pairs ≥ 0.9 | declined | s |", "|---|---|---|---|---|"]
    for name in names:
        s = summaries[name]
        mean = "–" if s["mean_similarity"] is None else f"{s['mean_similarity']:.3f}"
        share = "–" if s["pairs_at_least_0.9"] is None else f"{100 * s['pairs_at_least_0.9']:.0f} %"
        lines.append(f"| {name} | {mean} | {share} of {s['n_pairs']} | {s['declined']} of {s['images']} "
                     f"| {s['seconds']:.0f} |")
    lines += ["", ("Per shake (mean / lowest pairwise similarity; kernel extents in px, scene order; "
                   "declined scenes):"), "",
              "| shake | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for shake in shakes:
        cells = []
        for name in names:
            e = results[name][shake]
            if e["mean"] is None:
                cells.append("–")
                continue
            extents = " ".join(str(v) for v in e["extent_px"].values())
            declined = f"; declined {', '.join(map(str, e['declined']))}" if e["declined"] else ""
            cells.append(f"{e['mean']:.2f} / {e['min']:.2f} ({extents}){declined}")
        lines.append(f"| {shake} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="folder of Blurry{scene}_{shake}.png (linear light)")
    ap.add_argument("--crop", type=int, default=600, help="side of the centred square estimated on (0: whole photo)")
    ap.add_argument("--downscale", type=float, default=1.0,
                    help="downscale the photos this many times first (2 with --crop 255: the size and blur "
                         "lengths of Levin et al. 2009's real-capture benchmark)")
    ap.add_argument("--estimators", nargs="+", default=["pipeline", "shipped"],
                    help="pipeline, shipped or NAME=module:function (gray -> kernel or None)")
    ap.add_argument("--params", nargs="*", default=[], help="BlindParams overrides of the pipeline: KEY=VALUE")
    ap.add_argument("--shakes", nargs="*", type=int, help="only these shake numbers")
    ap.add_argument("--kernel-side", type=int, default=72, help="side of each magnified kernel in the figure")
    ap.add_argument("--figure", default=str(ROOT / "docs/images/real-blur/shared_shake.png"),
                    help="kernel grid of the first estimator ('' for none)")
    ap.add_argument("--out", default=str(ROOT / "studies/results/shared_shake"), help="results stem (.md, .json)")
    args = ap.parse_args(argv)

    folder = Path(args.data)
    if not folder.is_dir():
        print(f"shared_shake: {folder}: no such folder (Köhler et al. 2012's photos, "
              "../shared/data/real-blur/koehler2012)", file=sys.stderr)
        return 2
    groups = shake_groups(folder)
    if args.shakes:
        groups = {s: g for s, g in groups.items() if s in set(args.shakes)}
    if not any(len(g) > 1 for g in groups.values()):
        print(f"shared_shake: {folder}: no shake with two or more Blurry{{scene}}_{{shake}}.png photos",
              file=sys.stderr)
        return 2
    params = parse_params(args.params)
    estimators = dict(resolve_estimator(spec, params) for spec in args.estimators)
    results, kernels = run(groups, estimators, args.crop, args.downscale)
    summaries = {name: summary(per_shake) for name, per_shake in results.items()}
    if args.figure:
        from deblurkit.io import save_png

        save_png(args.figure, kernel_grid(kernels[args.estimators[0].partition("=")[0]], args.kernel_side))
    command = "python -m studies.shared_shake " + " ".join(argv if argv is not None else sys.argv[1:])
    scaled = f", downscaled {args.downscale:g}x" if args.downscale > 1.0 else ""
    title = f"# Kernels across scenes under one recorded shake ({folder.name}{scaled}, centred {args.crop or 'whole'} px)"
    lines = [title,
             "", *table(results, summaries), "", f"Command: `{command.strip()}`"]
    write_results(args.out, {"crop": args.crop, "downscale": args.downscale, "params": params, "summary": summaries,
                             "per_shake": {n: {str(s): e for s, e in r.items()} for n, r in results.items()}},
                  lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
