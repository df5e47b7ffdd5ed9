#!/usr/bin/env python3
"""Does on-the-fly synthesis keep up with the training step? (synthesis share of step time)

    python benchmarks/train_data_loading.py                          # the long run's data, 128/192/256 stages
    python benchmarks/train_data_loading.py --steps 12 --workers 0,1,2
    python benchmarks/train_data_loading.py --source studies/train_photos_free.yaml

Three measurements per crop-size stage of the schedule (crop size, batch size):

1. ``synth_s``: seconds to produce one batch in this process (photo decode, random-scale crop,
   synthesis with the preset, patch), one thread: the cost a worker pays per batch.
2. ``compute_s``: seconds of one training step (forward, loss, backward, AdamW) on a batch of
   that shape with ``--threads`` threads.
3. ``data_wait`` with ``--workers`` DataLoader workers: a short real ``deblurkit.train.train`` run
   (random init, no validation), the share of its wall time the loop waited for a batch
   (``metrics.csv``'s ``data_wait`` column), and its seconds per step, over the second half of
   the run (the first half holds the workers' start-up).

``synth_s / (synth_s + compute_s)`` is the share synthesis would take without workers. With
workers the synthesis runs beside the step; the measured ``data_wait`` says whether it keeps up
on this machine (on a shared 2-core machine the worker and the step compete for the same cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stage_configs(args: argparse.Namespace) -> list[tuple[int, int]]:
    sizes = [int(v) for v in args.crops.split(",")]
    batches = [int(v) for v in args.batches.split(",")]
    if len(sizes) != len(batches):
        raise SystemExit("--crops and --batches need the same number of values")
    return list(zip(sizes, batches, strict=True))


def _overrides(args: argparse.Namespace, out_dir: str, crop: int, batch: int, steps: int, workers: int) -> dict:
    return {
        "model": args.model, "data": "synth", "source": args.source, "preset": args.preset,
        "scale_min": args.scale_min, "scale_max": 1.0, "crop_size": crop, "batch_size": batch,
        "max_steps": steps, "synth_length": 1_000_000, "num_workers": workers, "threads": args.threads,
        "val_every": 0, "val_count": 1, "val_crop": 64, "checkpoint_every": 10**9, "log_every": max(1, steps // 2),
        "progress": False, "tensorboard": False, "out_dir": out_dir, "seed": 7,
    }


def measure(args: argparse.Namespace) -> dict:
    import torch

    from deblurkit.models.registry import create_model
    from deblurkit.train import resolve_config, train
    from deblurkit.train.data import PatchDataset, build_datasets
    from deblurkit.train.losses import compute_loss

    results = []
    for crop, batch in _stage_configs(args):
        cfg = resolve_config(recipe="nafnet", overrides=_overrides(args, "/tmp/unused", crop, batch, 1, 0))
        train_ds, _, _ = build_datasets(cfg)
        patches = PatchDataset(train_ds, crop, hflip=True)
        torch.set_num_threads(1)
        patches[(0, 1, crop)]  # warm-up (imports, first decode)
        t = time.perf_counter()
        for b in range(args.batches_timed):
            for j in range(batch):
                patches[(1 + b * batch + j, 99 + j, crop)]
        synth_s = (time.perf_counter() - t) / args.batches_timed

        compute_by_threads = {}
        for n_threads in sorted({args.threads, *[int(v) for v in args.compare_threads.split(",") if v]}):
            torch.set_num_threads(n_threads)
            model = create_model(args.model)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            x = torch.rand(batch, 3, crop, crop)
            times = []
            for k in range(args.compute_steps + 1):
                t = time.perf_counter()
                loss = compute_loss("psnr", [model(x)], x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if k:  # the first step is a warm-up
                    times.append(time.perf_counter() - t)
            compute_by_threads[n_threads] = round(sorted(times)[len(times) // 2], 4)
        compute_s = compute_by_threads[args.threads]
        torch.set_num_threads(args.threads)

        row = {"crop": crop, "batch": batch, "synth_s": round(synth_s, 4), "compute_s": round(compute_s, 4),
               "compute_s_by_threads": compute_by_threads,
               "synth_share_no_workers": round(synth_s / (synth_s + compute_s), 3), "workers": {}}
        for w in [int(v) for v in args.workers.split(",") if v]:
            tmp = tempfile.mkdtemp(prefix="data-loading-")
            try:
                cfg = resolve_config(recipe="nafnet", overrides=_overrides(args, tmp, crop, batch, args.steps, w))
                res = train(cfg)
                last = [r for r in res.history if "data_wait" in r][-1]
                row["workers"][w] = {"data_wait": last["data_wait"], "step_s": last["step_s"]}
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        results.append(row)
        print(json.dumps(row), flush=True)
    return {"source": args.source, "preset": args.preset, "model": args.model, "threads": args.threads,
            "steps_per_run": args.steps, "stages": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="studies/train_photos_many.yaml")
    ap.add_argument("--preset", default="realistic")
    ap.add_argument("--model", default="nafnet-w16")
    ap.add_argument("--crops", default="128,192,256")
    ap.add_argument("--batches", default="8,4,2")
    ap.add_argument("--scale-min", type=float, default=0.35)
    ap.add_argument("--threads", type=int, default=2, help="threads of the training step")
    ap.add_argument("--compare-threads", default="", metavar="N,M",
                    help="also time the training step with these thread counts (e.g. 1,2)")
    ap.add_argument("--workers", default="0,1", help="DataLoader worker counts to run")
    ap.add_argument("--steps", type=int, default=8,
                    help="steps of each real training run; the second half is measured (the first holds the start-up)")
    ap.add_argument("--batches-timed", type=int, default=3)
    ap.add_argument("--compute-steps", type=int, default=3)
    ap.add_argument("--out", default="", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    t0 = time.time()
    res = measure(args)
    res["run_s"] = round(time.time() - t0, 1)
    if args.out:
        from deblurkit.io import atomic_write

        with atomic_write(args.out, "w") as fh:
            json.dump(res, fh, indent=1)
    print(f"done in {res['run_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
