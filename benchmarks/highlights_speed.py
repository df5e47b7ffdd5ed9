#!/usr/bin/env python3
"""Frames per second and memory of online highlight recovery at 640x360.

    python benchmarks/highlights_speed.py                         # copy fill, homography, 1000 frames
    python benchmarks/highlights_speed.py --restorer net --frames 200
    python benchmarks/highlights_speed.py --frames 60 --threads 1 # quick

The stream cycles through 8 synthetic frames of a held-out panorama (oscillating exposure), so
frame synthesis is not timed; ``run_online`` keeps only its reference, so resident memory should
stay flat: RSS is sampled every ``--every`` frames (``/proc/self/statm``) and reported with the
growth between the first and the last sample. ``frames_per_cpu_second`` (frames over the
process's CPU time) is the figure that survives a busy machine; ``fps`` is wall-clock. ``net`` uses a randomly initialised HighlightNet
(width 16): speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdr", default=str(ROOT.parent / "shared/data/hdr/night.hdr"))
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--restorer", choices=["copy", "net"], default="copy")
    ap.add_argument("--align", choices=["homography", "flow"], default="homography")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=50)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from deblurkit.highlights.online import restore_copy, rule_policy, run_online
    from deblurkit.highlights.video import (
        AUTO_EXPOSURE_PRESETS,
        VideoConfig,
        generate_video,
        load_panorama_linear,
    )

    torch.set_num_threads(args.threads)
    cfg = VideoConfig(height=360, width=640, frames=8, auto_exposure=AUTO_EXPOSURE_PRESETS["oscillating"])
    base = list(generate_video(load_panorama_linear(args.hdr), cfg, np.random.default_rng(0)))

    class _F:
        def __init__(self, srgb8):
            self.srgb8 = srgb8

    stream = (_F(f.srgb8) for f in itertools.islice(itertools.cycle(base), args.frames))
    restorer = restore_copy
    if args.restorer == "net":
        from deblurkit.highlights.net import load_highlight_restorer
        from deblurkit.models.highlight_net import HighlightNet

        restorer = load_highlight_restorer(HighlightNet())
    samples, t0, c0 = [], time.perf_counter(), time.process_time()
    for res in run_online(stream, restorer, rule_policy("interval"), align=args.align):
        if res.index % args.every == 0 or res.index == args.frames - 1:
            samples.append((res.index, round(_rss_mb(), 1)))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"frames": args.frames, "size": "640x360", "restorer": args.restorer, "align": args.align,
           "threads": args.threads, "fps": round(args.frames / secs, 2),
           "frames_per_cpu_second": round(args.frames / cpu, 2), "rss_mb": samples,
           "rss_growth_mb": round(samples[-1][1] - samples[0][1], 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
