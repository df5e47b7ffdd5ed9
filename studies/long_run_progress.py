#!/usr/bin/env python3
"""Progress of a long, resumed training run: steps, wall time, speed and the validation curve.

    python -m studies.long_run_progress /work/runs/nafnet-w16-many-photos
    python -m studies.long_run_progress RUN_DIR --baseline      # also validate the init weights (step 0)
    python -m studies.long_run_progress RUN_DIR --out studies/results/long_run

Reads ``RUN_DIR/metrics.csv`` and ``RUN_DIR/config.yaml`` (written by ``deblurkit train``). A run
resumed several times restarts its ``elapsed_s`` clock at each start; the wall time is summed
over these sessions. ``--baseline`` validates the run's ``init_weights`` on the run's own
validation pairs (the same held-out pairs as every validation row), so the curve has a step-0
point; the result is cached in ``OUT/baseline.json``. Writes ``OUT/progress.md`` and
``OUT/progress.json`` when ``--out`` is given (the numbers quoted in the model card).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from deblurkit.train.runlog import read_metrics, training_sessions

ROOT = Path(__file__).resolve().parents[1]


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    if not (run_dir / "metrics.csv").is_file():
        raise SystemExit(f"{run_dir / 'metrics.csv'}: no metrics.csv (is this a deblurkit train run folder?)")
    return read_metrics(run_dir)


def baseline(run_dir: Path, cache: Path) -> dict:
    """Validate the run's ``init_weights`` on its validation pairs (cached)."""
    if cache.is_file():
        return json.loads(cache.read_text())
    import torch

    from deblurkit.models.checkpoint import load_model
    from deblurkit.train import resolve_config
    from deblurkit.train.data import build_datasets
    from deblurkit.train.loop import validate

    cfg = resolve_config(yaml_path=run_dir / "config.yaml")
    if not cfg.init_weights:
        return {}
    torch.set_num_threads(max(1, cfg.threads))
    model, _ = load_model(cfg.init_weights)
    _, val_ds, info = build_datasets(cfg)
    t0 = time.time()
    res = validate(model, val_ds, device=torch.device("cpu"), size_multiple=16, cfg=cfg)
    res.update(weights=cfg.init_weights, val=info["val"], seconds=round(time.time() - t0, 1))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res, indent=1))
    return res


def summarise(run_dir: Path, base: dict) -> dict:
    import yaml

    rows = read_rows(run_dir)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    sess = training_sessions(rows)
    wall = sum(s[2] for s in sess)
    speed = [float(r["step_s"]) for r in rows if r.get("step_s")]
    val = [{"step": int(r["step"]), "val_psnr": float(r["val_psnr"]), "val_input_psnr": float(r["val_input_psnr"]),
            "val_ssim": float(r["val_ssim"])} for r in rows if r.get("val_psnr")]
    waits = [float(r["data_wait"]) for r in rows if r.get("data_wait")]
    return {
        "run_dir": str(run_dir), "max_steps": cfg["max_steps"], "steps_done": int(rows[-1]["step"]) if rows else 0,
        "sessions": [{"from_step": a, "to_step": b, "wall_s": round(w, 1)} for a, b, w in sess],
        "wall_s": round(wall, 1),
        "median_step_s": round(sorted(speed)[len(speed) // 2], 3) if speed else None,
        "steps_per_hour_training": round(3600 / sorted(speed)[len(speed) // 2]) if speed else None,
        "steps_per_hour_overall": round(3600 * int(rows[-1]["step"]) / wall) if wall else None,
        "median_data_wait": round(sorted(waits)[len(waits) // 2], 4) if waits else None,
        "baseline": base, "validation": val,
        "config": {k: cfg[k] for k in ("model", "init_weights", "source", "preset", "scale_min", "scale_max",
                                       "crop_sizes", "batch_sizes", "crop_milestones", "lr", "ema_decay",
                                       "val_count", "val_crop", "threads", "num_workers", "device", "amp")},
    }


def markdown(s: dict) -> str:
    lines = [f"Run `{s['run_dir']}`: {s['steps_done']:,} of {s['max_steps']:,} steps in {len(s['sessions'])} "
             f"session(s), {s['wall_s'] / 3600:.2f} h wall time; median {s['median_step_s']} s/step, "
             f"i.e. {s['steps_per_hour_training']} steps/hour at the median step time, {s['steps_per_hour_overall']} "
             f"steps/hour overall (all wall time: slow periods, validation, start-ups); median share of time "
             f"waiting for data {s['median_data_wait']}.", "",
             "| step | val PSNR (dB) | blurry input (dB) | gain (dB) | SSIM |", "|---:|---:|---:|---:|---:|"]
    b = s["baseline"]
    if b:
        lines.append(f"| 0 (init: {b['weights']}) | {b['val_psnr']:.2f} | {b['val_input_psnr']:.2f} | "
                     f"{b['val_psnr'] - b['val_input_psnr']:+.2f} | {b['val_ssim']:.4f} |")
    for v in s["validation"]:
        lines.append(f"| {v['step']:,} | {v['val_psnr']:.2f} | {v['val_input_psnr']:.2f} | "
                     f"{v['val_psnr'] - v['val_input_psnr']:+.2f} | {v['val_ssim']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--baseline", action="store_true", help="validate init_weights on the run's validation pairs")
    ap.add_argument("--out", default="", help="folder for progress.md / progress.json (and baseline.json)")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else None
    base = {}
    if args.baseline:
        base = baseline(run_dir, (out or run_dir) / "baseline.json")
    elif out is not None and (out / "baseline.json").is_file():
        base = json.loads((out / "baseline.json").read_text())
    s = summarise(run_dir, base)
    md = markdown(s)
    print(md)
    if out is not None:
        from deblurkit.io import atomic_write

        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "progress.md", "w") as fh:
            fh.write(md)
        with atomic_write(out / "progress.json", "w") as fh:
            json.dump(s, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
