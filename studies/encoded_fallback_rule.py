#!/usr/bin/env python3
"""Which kernels found on the encoded values to deconvolve: none, large ones, or all.

    python -m studies.blind_benchmark --testsets data/valsets-srgb --sets uniform large capture medium noise-low \
        --estimators pipeline --params encoded_fallback=0 --out studies/results/blind_benchmark_val_srgb_fallback_all
    python -m studies.encoded_fallback_rule studies/results/blind_benchmark_val_srgb_fallback_all.json

Reads a :mod:`studies.blind_benchmark` result made with ``encoded_fallback=0`` (every kernel
that the estimate on the encoded values finds and trusts is deconvolved, whatever its scale). The
fallback runs only where the linear-light estimate is declined (and longer than a delta), so the
other rules follow exactly from the same rows: a row deconvolved on the encoded values keeps its
gain under a rule that accepts its kernel and falls back to the input (gain 0) under one that
does not. Rules:

* ``none``: no second estimate (``encoded_fallback=None``);
* ``large``: kernels found on an image downscaled by more than ``--scale`` (the default,
  ``encoded_fallback=1.0``);
* ``all``: every trusted kernel (``encoded_fallback=0``).

Prints, per set, the mean shift-aligned gain (dB) under each rule, the pairs deconvolved on the
encoded values, the pairs left unchanged, the worst gain, and the true kernel's gain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def rule_gains(per_image: list[dict], scale: float) -> dict[str, dict]:
    """Per rule: the mean aligned gain, pairs on encoded values, pairs unchanged, worst gain."""
    gains: dict[str, list[float]] = {"none": [], "large": [], "all": []}
    encoded = {"none": 0, "large": 0, "all": 0}
    unchanged = {"none": 0, "large": 0, "all": 0}
    for row in per_image:
        est = row["estimators"]["pipeline"]
        gain = est["psnr_aligned"] - row["blurry"]["psnr_aligned"]
        on_encoded = est.get("blur_space") == "srgb"
        found_at = (est.get("scores") or {}).get("scale", 1.0)
        for rule, accepted in (("none", not on_encoded), ("large", not on_encoded or found_at > scale),
                               ("all", True)):
            gains[rule].append(gain if accepted else 0.0)
            encoded[rule] += int(on_encoded and accepted)
            unchanged[rule] += int(bool(est["declined"]) or not accepted)
    return {rule: {"gain": float(np.mean(g)), "encoded": encoded[rule], "unchanged": unchanged[rule],
                   "worst": float(min(g))} for rule, g in gains.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="a studies.blind_benchmark .json made with --params encoded_fallback=0")
    ap.add_argument("--scale", type=float, default=1.0, help="the 'large' rule's least downscale factor")
    args = ap.parse_args(argv)
    data = json.loads(Path(args.results).read_text())
    if data.get("protocol", {}).get("pipeline_params", {}).get("encoded_fallback") != 0.0:
        print(f"{args.results}: not made with --params encoded_fallback=0", file=sys.stderr)
        return 2
    print("| set | n | none | large (on encoded / unchanged / worst) | all (on encoded / unchanged / worst) | true kernel |")
    print("|---|---|---|---|---|---|")
    for name, result in data["sets"].items():
        rows = result["per_image"]
        r = rule_gains(rows, args.scale)
        true = [row["true"]["psnr_aligned"] - row["blurry"]["psnr_aligned"] for row in rows if "true" in row]
        print(f"| {name} | {len(rows)} | {r['none']['gain']:+.2f} | {r['large']['gain']:+.2f} "
              f"({r['large']['encoded']} / {r['large']['unchanged']} / {r['large']['worst']:+.2f}) | "
              f"{r['all']['gain']:+.2f} ({r['all']['encoded']} / {r['all']['unchanged']} / {r['all']['worst']:+.2f}) | "
              + (f"{np.mean(true):+.2f} |" if true else "– |"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
