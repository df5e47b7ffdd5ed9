#!/usr/bin/env python3
"""Which geometric self-ensemble for the default's network: one pass, two, or four?

    python -m studies.ensemble_passes --out studies/results/ensemble_passes
    python -m studies.ensemble_passes --testsets data/valsets-4mp --sets uniform varying --out studies/results/ensemble_passes_4mp

``nafnet-w16`` runs once (no self-ensemble, the library's default backend and tiling) on each
transformed copy of every blurry input: the four quarter turns, a horizontal flip and a transpose.
Each row averages the outputs of a subset, mapped back: one pass; the pairs 0 + 90, 0 + 180,
0 + flip and 0 + transpose degrees; all four turns (what ``self_ensemble=True`` runs). Scores:
PSNR / SSIM in sRGB (``studies.heldout``), per set the mean gain over the blurry input and the
mean per-image difference to the four-turn ensemble. The network's time per pass is reported
beside them (the ensembles cost that many passes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from studies.heldout import SETS, add_testset_arguments, load_pair, metrics, requested_sets, write_results

Transform = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]

#: name -> (forward, inverse) on ``(H, W, 3)`` images.
TRANSFORMS: dict[str, Transform] = {
    "0": (lambda x: x, lambda x: x),
    "90": (lambda x: np.rot90(x, 1), lambda x: np.rot90(x, -1)),
    "180": (lambda x: np.rot90(x, 2), lambda x: np.rot90(x, -2)),
    "270": (lambda x: np.rot90(x, 3), lambda x: np.rot90(x, -3)),
    "flip": (lambda x: x[:, ::-1], lambda x: x[:, ::-1]),
    "transpose": (lambda x: x.transpose(1, 0, 2), lambda x: x.transpose(1, 0, 2)),
}
#: row -> transforms averaged.
ROWS: dict[str, tuple[str, ...]] = {
    "one pass": ("0",),
    "0 + 90": ("0", "90"),
    "0 + 180": ("0", "180"),
    "0 + flip": ("0", "flip"),
    "0 + transpose": ("0", "transpose"),
    "four turns": ("0", "90", "180", "270"),
}
REFERENCE = "four turns"


def score_sets(args: argparse.Namespace) -> tuple[list[dict], float]:
    """Per image and row: PSNR / SSIM of the output and of the blurry input; mean seconds per pass."""
    from deblurkit.infer import load_restorer

    network = load_restorer(args.model, threads=args.threads, self_ensemble=False)
    rows, seconds, passes = [], 0.0, 0
    for set_name, root, items in requested_sets(args):
        for it in items:
            blur, sharp = load_pair(root, it["index"])
            outputs = {}
            for name, (forward, inverse) in TRANSFORMS.items():
                t0 = time.perf_counter()
                outputs[name] = inverse(network(np.ascontiguousarray(forward(blur))))
                seconds += time.perf_counter() - t0
                passes += 1
            base = metrics(blur, sharp)
            for row, names in ROWS.items():
                p, s = metrics(np.mean([outputs[n] for n in names], axis=0), sharp)
                rows.append({"set": set_name, "index": it["index"], "image": it["photo"], "row": row,
                             "psnr": p, "ssim": s, "input_psnr": base[0], "input_ssim": base[1]})
        print(f"scored {set_name}: {len(items)} images", flush=True)
    if not rows:
        raise SystemExit(f"no held-out set found in {args.testsets}: run python -m studies.make_testsets first")
    return rows, seconds / max(passes, 1)


def summarise(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """set -> row -> mean gain (dB), mean SSIM gain, mean per-image difference to :data:`REFERENCE` (dB)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for set_name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == set_name]
        ref = {r["index"]: r["psnr"] for r in mine if r["row"] == REFERENCE}
        out[set_name] = {}
        for row in ROWS:
            rs = [r for r in mine if r["row"] == row]
            out[set_name][row] = {
                "n": len(rs),
                "gain": float(np.mean([r["psnr"] - r["input_psnr"] for r in rs])),
                "ssim_gain": float(np.mean([r["ssim"] - r["input_ssim"] for r in rs])),
                "vs_four": float(np.mean([r["psnr"] - ref[r["index"]] for r in rs])),
                "worst_vs_four": float(min(r["psnr"] - ref[r["index"]] for r in rs)),
            }
    return out


def table(summary: dict, seconds_per_pass: float, command: str, wall: float) -> list[str]:
    sets = list(summary)
    lines = [("PSNR gain over the blurry input, mean per set (dB); in brackets the mean per-image difference to "
              "the four-turn ensemble:"), "",
             "| ensemble | passes | " + " | ".join(sets) + " | mean vs four turns |",
             "|---|---|" + "---|" * len(sets) + "---|"]
    for row, names in ROWS.items():
        cells = [f"{summary[s][row]['gain']:+.2f} ({summary[s][row]['vs_four']:+.3f})" for s in sets]
        mean_diff = np.mean([summary[s][row]["vs_four"] for s in sets])
        lines.append(f"| {row} | {len(names)} | " + " | ".join(cells) + f" | {mean_diff:+.3f} |")
    worst = {row: min(summary[s][row]["worst_vs_four"] for s in sets) for row in ROWS}
    lines += ["", "Worst single image against the four-turn ensemble (dB): "
              + ", ".join(f"{row} {v:+.2f}" for row, v in worst.items() if row != REFERENCE) + ".",
              "", (f"One pass takes {seconds_per_pass:.2f} s per image on average here (library default backend and "
                   f"tiling). Whole run {wall:.0f} s: `{command}`")]
    return lines


def main(argv: list[str] | None = None) -> int:
    import sys

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_testset_arguments(ap)
    ap.set_defaults(sets=[*SETS, "large", "medium", "saturated", "capture"])
    ap.add_argument("--model", default="nafnet-w16", help="network name or weights file (one pass per transform)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="studies/results/ensemble_passes")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, per_pass = score_sets(args)
    summary = summarise(rows)
    wall = time.perf_counter() - t0
    command = "python -m studies.ensemble_passes " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results(args.out, {"summary": summary, "per_image": rows, "seconds_per_pass": per_pass,
                             "rows": {k: list(v) for k, v in ROWS.items()}, "command": command, "wall_seconds": wall},
                  table(summary, per_pass, command, wall))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
