#!/usr/bin/env python3
"""Choose, on validation sets, which kernels the (b)-then-(a) chain should act on; score it held out.

    python -m studies.make_testsets --split train --out data/valsets
    python -m studies.eval_designs --testsets data/valsets --cache data/eval_cache_val/kernel_deconv.json \\
        --e2e src/deblurkit/weights/nafnet-w16.safetensors --chain --speed-side 0 --threads 2 \\
        --out studies/results/designs_chains_val
    python -m studies.eval_designs --e2e src/deblurkit/weights/nafnet-w16.safetensors --chain \\
        --speed-side 0 --threads 2 --out studies/results/designs_chains
    python -m studies.chain_gate
    # several results files are pooled, e.g. the photo-sized sets run separately:
    python -m studies.chain_gate --val VAL_SIX.json VAL_PHOTO.json --test TEST_SIX.json TEST_PHOTO.json

The chain ``kernel-deconv+nafnet-w16`` gains most on long camera shake, where the network alone
fails, but a short kernel estimated wrongly costs up to several dB (docs/default-pipeline.md,
"Chains"). A *gate* lets (b) act only where its kernel's effective support ``1 / sum(k^2)`` is at
least ``T`` px² (``BlindParams.no_blur_support``); elsewhere the chain equals (a). ``T`` is chosen
on the validation sets (the same six sets built from the TRAIN photos, other seeds): the largest
mean gain over the six sets (each set weighted equally) among the thresholds whose worst
validation image is no worse than with (a) alone; ties go to the larger ``T``. The held-out test sets are
scored once, with that ``T``. The per-image kernels come from the ``eval_designs.py`` caches, so
this script itself takes a second.

Caveat: (a) was trained on crops of the train photos, so on the validation sets it is at an
advantage over the chain; that biases ``T`` towards acting less often (a conservative gate).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def largest_applied_support(kernels: np.ndarray, blurred: np.ndarray) -> float:
    """The largest effective support (px²) among the kernels (b) applied (``blurred`` tiles); 0 if none.

    Args:
        kernels: ``(ty, tx, k, k)`` kernels per tile, as cached by ``eval_designs.py``.
        blurred: ``(ty, tx)`` bool, the tiles (b) deconvolved.
    """
    from deblurkit.kernel_aware.blind import kernel_effective_support

    return max((kernel_effective_support(kernels[i, j]) for i, j in zip(*np.nonzero(blurred))), default=0.0)


def supports(results: dict, kernel_dir: Path) -> list[float]:
    """Per image of ``results['per_image']``: :func:`largest_applied_support` of its cached (b) run."""
    out = []
    for r in results["per_image"]:
        z = np.load(kernel_dir / f"{r['set']}-{r['index']:03d}.npz")
        out.append(largest_applied_support(z["kernels"], z["blurred"]))
    return out


def gated_gains(results: dict, support: list[float], threshold: float) -> dict[str, list[float]]:
    """Gain over the input per image and set: the chain where ``support >= threshold``, else (a)."""
    by_set: dict[str, list[float]] = {}
    for r, s in zip(results["per_image"], support):
        key = "deconv+e2e" if s >= threshold else "e2e"
        by_set.setdefault(r["set"], []).append(r[key][0] - r["identity"][0])
    return by_set


def summary(by_set: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    return {k: (float(np.mean(v)), float(np.min(v))) for k, v in by_set.items()}


def pooled_results(paths: list[str]) -> dict:
    """The ``per_image`` rows of several ``eval_designs.py`` results files as one (e.g. six sets
    in one run and the photo-sized sets in another); a set in two files is an error."""
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for i, p in enumerate(paths):
        for r in json.loads(Path(p).read_text())["per_image"]:
            if seen.setdefault(r["set"], i) != i:
                raise SystemExit(f"set {r['set']!r} is in both {paths[seen[r['set']]]} and {p}")
            rows.append(r)
    return {"per_image": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--val", nargs="+", default=[str(ROOT / "studies/results/designs_chains_val.json")],
                    help="eval_designs.py --chain results on the validation sets (several: their sets are pooled)")
    ap.add_argument("--val-kernels", default=str(ROOT / "data/eval_cache_val/kernels"))
    ap.add_argument("--test", nargs="+", default=[str(ROOT / "studies/results/designs_chains.json")],
                    help="the same on the held-out test sets")
    ap.add_argument("--test-kernels", default=str(ROOT / "data/eval_cache/kernels"))
    ap.add_argument("--out", default=str(ROOT / "studies/results/chain_gate"))
    args = ap.parse_args(argv)

    val, test = (pooled_results(paths) for paths in (args.val, args.test))
    for name, res in (("validation", val), ("test", test)):
        if not res["per_image"] or "deconv+e2e" not in res["per_image"][0]:
            print(f"{name} results lack the chain rows: run python -m studies.eval_designs with --chain and --e2e", file=sys.stderr)
            return 2
    s_val, s_test = supports(val, Path(args.val_kernels)), supports(test, Path(args.test_kernels))
    candidates = sorted({0.0, *[s for s in s_val if s > 0]}) + [float("inf")]
    scan = []
    for t in candidates:
        sm = summary(gated_gains(val, s_val, t))
        scan.append({"threshold": t, "mean_over_sets": float(np.mean([m for m, _ in sm.values()])),
                     "worst": min(w for _, w in sm.values())})
    # a gate may not make the worst validation image worse than (a) alone makes it (T = inf)
    allowed = [c for c in scan if c["worst"] >= scan[-1]["worst"] - 1e-9]
    best = max(allowed, key=lambda c: (round(c["mean_over_sets"], 6), c["threshold"]))
    t = best["threshold"]

    def table(res: dict, sup: list[float]) -> list[str]:
        a, chain, gated = (summary(gated_gains(res, sup, x)) for x in (float("inf"), 0.0, t))
        lines = ["| set | (a) nafnet-w16 | (b) then (a), every kernel | (b) then (a), gated |", "|---|---|---|---|"]
        for k in a:
            lines.append(f"| {k} | " + " | ".join(f"{d[k][0]:+.2f} / {d[k][1]:+.2f}" for d in (a, chain, gated)) + " |")
        return lines

    acted_val = sum(s >= t for s in s_val)
    acted_test = sum(s >= t for s in s_test)
    headline = (f"Gate chosen on the validation sets: (b) acts where its kernel's effective support is at least "
                f"**{t:.1f} px²** (validation mean over sets {best['mean_over_sets']:+.2f} dB, worst image "
                f"{best['worst']:+.2f} dB; (b) acts on {acted_val} of {len(s_val)} validation and {acted_test} of "
                f"{len(s_test)} test images).")
    lines = [headline, "",
             "Validation (train photos, other seeds), gain over the input, mean / worst image (dB):", "",
             *table(val, s_val), "", "Held-out test sets, same gate:", "", *table(test, s_test), "",
             "Thresholds scanned (validation): " + ", ".join(
                 f"{c['threshold']:.1f}: {c['mean_over_sets']:+.3f} / {c['worst']:+.2f}" for c in scan)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({
        "threshold": t, "chosen": best, "scan": scan,
        "validation": summary(gated_gains(val, s_val, t)), "test": summary(gated_gains(test, s_test, t)),
        "command": "python -m studies.chain_gate " + " ".join(argv if argv is not None else sys.argv[1:])},
        indent=1, default=float))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
