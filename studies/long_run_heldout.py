#!/usr/bin/env python3
"""Held-out score of a training run's weights against the shipped network: ship only if every set improves.

    python -m studies.long_run_heldout /work/runs/nafnet-w16-many-photos/checkpoints/last.pt --threads 2
    python -m studies.long_run_heldout CKPT_OR_SAFETENSORS --gated-chain --cache data/eval_cache/kernel_deconv.json

The candidate is a training checkpoint (its EMA weights, ``--raw`` for the live ones) or a
``.safetensors`` file. A checkpoint is first copied (a running training rewrites it every few
minutes) and exported with :func:`deblurkit.train.checkpoint.export_checkpoint_weights` to
``--weights-out`` (kept, so that the scored weights can be shipped as they are).

Both networks are scored by ``studies/eval_designs.py --only-e2e`` on the held-out sets of
``data/testsets`` (``python -m studies.make_testsets``), each as the library runs it by default
(self-ensemble for ``nafnet-w16``): the network alone (``e2e``) and, with ``--gated-chain``, the
default pipeline's gated (b)-then-(a) chain from the cached classical runs (``--cache``; computed
there when missing, about a minute per 384-px image on 2 shared cores). Their full tables are
written to ``OUT_<label>.{md,json}``; this script writes the comparison to ``OUT.{md,json}``: per
set, the PSNR gain over the blurry input (mean and worst image) of each network and the mean
per-image difference, and whether every set improved.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from studies.heldout import SETS

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src/deblurkit/weights/nafnet-w16.safetensors"
ROWS = {"e2e": "network alone", "gated-chain": "default chain (gated (b) then (a))"}


def candidate_weights(path: Path, weights_out: Path, raw: bool) -> tuple[Path, dict]:
    """The ``.safetensors`` to score and what it is (step, source); a checkpoint is copied, then exported."""
    from deblurkit.models.checkpoint import load_model
    from deblurkit.train.checkpoint import export_checkpoint_weights

    if path.suffix.lower() == ".safetensors":
        extra = load_model(path)[1].get("extra") or {}
        return path, {"file": str(path), "checkpoint": extra.get("exported_from"), "step": extra.get("trained_steps"),
                      "steps_total": extra.get("trained_steps_total"), "weights": extra.get("weights")}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        info = export_checkpoint_weights(copy, weights_out, weights="model" if raw else "ema", origin=str(path))
    extra = load_model(weights_out)[1].get("extra") or {}
    return weights_out, {"file": str(weights_out), "checkpoint": str(path), "step": info["step"],
                         "steps_total": extra.get("trained_steps_total"), "weights": info["weights"]}


def compare(shipped: dict, candidate: dict, rows: list[str]) -> dict:
    """Per set and row: gains over the input (mean, worst) of both, and the mean per-image difference."""
    out: dict = {}
    sets = [r["set"] for r in shipped["rows"]]
    for key in rows:
        out[key] = {}
        for s in sets:
            a = [p for p in shipped["per_image"] if p["set"] == s]
            b = [p for p in candidate["per_image"] if p["set"] == s]
            assert [p["index"] for p in a] == [p["index"] for p in b], s
            ga = np.array([p[key][0] - p["identity"][0] for p in a])
            gb = np.array([p[key][0] - p["identity"][0] for p in b])
            out[key][s] = {"n": len(a), "input_psnr": round(float(np.mean([p["identity"][0] for p in a])), 2),
                           "shipped_gain": round(float(ga.mean()), 2), "shipped_worst": round(float(ga.min()), 2),
                           "candidate_gain": round(float(gb.mean()), 2), "candidate_worst": round(float(gb.min()), 2),
                           "difference": round(float((gb - ga).mean()), 3),
                           "images_better": int((gb > ga).sum())}
    return out


def every_set_improved(table: dict) -> dict[str, bool]:
    """Per row of :func:`compare`: whether the candidate's mean gain is higher on every set."""
    return {key: all(v["difference"] > 0 for v in sets.values()) for key, sets in table.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("candidate", type=Path, help="training checkpoint (last.pt) or .safetensors weights")
    ap.add_argument("--raw", action="store_true", help="score a checkpoint's live weights instead of its EMA")
    ap.add_argument("--baseline", type=Path, default=SHIPPED, help="weights to compare with (default: shipped)")
    ap.add_argument("--weights-out", type=Path, default=ROOT / "data/long_run/candidate.safetensors",
                    help="where a checkpoint's exported weights are kept")
    ap.add_argument("--testsets", default=str(ROOT / "data/testsets"))
    ap.add_argument("--sets", nargs="*", default=[*SETS, "large"])
    ap.add_argument("--limit", type=int, default=None, help="first N pairs per set (smoke runs)")
    ap.add_argument("--gated-chain", action="store_true", help="also score the default chain (needs the (b) runs)")
    ap.add_argument("--cache", default=str(ROOT / "data/eval_cache/kernel_deconv.json"),
                    help="the (b) results of eval_designs.py (with --gated-chain)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "studies/results/long_run/heldout")
    args = ap.parse_args(argv)

    from studies import eval_designs
    from studies.heldout import write_results

    t0 = time.time()
    weights, about = candidate_weights(args.candidate, args.weights_out, args.raw)
    results = {}
    for label, path in (("shipped", args.baseline), ("candidate", weights)):
        out = args.out.with_name(f"{args.out.name}_{label}")
        cmd = ["--e2e", str(path), "--only-e2e", "--testsets", args.testsets, "--sets", *args.sets,
               "--threads", str(args.threads), "--cache", args.cache, "--out", str(out)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        eval_designs.main(cmd + (["--gated-chain"] if args.gated_chain else []))
        results[label] = json.loads(out.with_suffix(".json").read_text())
    rows = ["e2e"] + (["gated-chain"] if args.gated_chain else [])
    table = compare(results["shipped"], results["candidate"], rows)
    verdict = every_set_improved(table)
    summary = {"candidate": about, "baseline": str(args.baseline), "table": table, "every_set_improved": verdict,
               "threads": args.threads, "wall_seconds": round(time.time() - t0, 1),
               "command": "python -m studies.long_run_heldout " + " ".join(argv if argv is not None else sys.argv[1:])}
    steps = f"step {about['step']:,}" if about.get("step") is not None else "?"
    if about.get("steps_total"):
        steps += f" ({about['steps_total']:,} in total with the steps behind its initial weights)"
    source = about.get("checkpoint", about["file"])
    lines = [(f"Candidate: {about.get('weights') or ''} weights at {steps}, `{source}`; "
              f"baseline `{Path(args.baseline).name}`."), ""]
    for key in rows:
        lines += [(f"{ROWS[key].capitalize()}: PSNR gain over the blurry input, mean / worst image (dB), as the "
                   "library runs each network by default (self-ensemble):"), "",
                  "| set | n | input PSNR | shipped | candidate | candidate − shipped (mean) | images better |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for s, v in table[key].items():
            lines.append(f"| {s} | {v['n']} | {v['input_psnr']:.2f} | {v['shipped_gain']:+.2f} / "
                         f"{v['shipped_worst']:+.2f} | {v['candidate_gain']:+.2f} / {v['candidate_worst']:+.2f} | "
                         f"{v['difference']:+.3f} | {v['images_better']} of {v['n']} |")
        lines += ["", f"Every set improved ({ROWS[key]}): **{'yes' if verdict[key] else 'no'}**.", ""]
    lines.append(f"Whole run {summary['wall_seconds']:.0f} s ({args.threads} torch thread(s), shared 2-core machine): "
                 f"`{summary['command']}`")
    write_results(args.out, summary, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
