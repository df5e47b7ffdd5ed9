#!/usr/bin/env python3
"""Frames per second and memory of online highlight recovery at 640x360, over a long stream.

    python benchmarks/highlights_speed.py                         # copy fill, homography, 1000 frames
    python benchmarks/highlights_speed.py --restorer net --frames 200
    python benchmarks/highlights_speed.py --frames 60 --threads 1 --write exr   # quick, with EXR output

The stream cycles through 8 synthetic frames of a held-out panorama (oscillating exposure), so
frame synthesis is not timed; each streamed frame is a fresh copy (as a decoder would hand out),
so a frame kept by mistake would show as growth. ``run_online`` keeps only its reference, so
memory should stay flat. Every ``--every`` frames the benchmark records: resident memory
(``/proc/self/statm``), the peak resident memory so far (``resource.getrusage``'s ``ru_maxrss``)
and, with ``--tracemalloc``, the peak of memory allocated through Python and NumPy since the
previous sample (``tracemalloc``; OpenCV's own buffers are not traced). Growth figures compare
the last sample with the first sample at or after ``--warmup`` frames.

``frames_per_cpu_second`` (frames over the process's CPU time) is the figure that survives a busy
machine; ``fps`` is wall-clock. ``--write`` adds writing each output (overwriting one file in a
temporary folder) as ``deblurkit highlights`` does. ``net`` uses a randomly initialised
HighlightNet (width 16): speed does not depend on the weights. ``--json`` also writes the result.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdr", default=str(ROOT.parent / "shared/data/hdr/night.hdr"))
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--restorer", choices=["copy", "net"], default="copy")
    ap.add_argument("--align", choices=["homography", "flow"], default="homography")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=50, help="frames before the growth baseline")
    ap.add_argument("--write", choices=["none", "png", "exr", "tif"], default="none")
    ap.add_argument("--tracemalloc", action="store_true", help="trace Python/NumPy allocations (slower)")
    ap.add_argument("--json", default=None, help="also write the result here")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from deblurkit.highlights.cli import write_frame_linear
    from deblurkit.highlights.online import restore_copy, rule_policy, run_online
    from deblurkit.highlights.video import (
        AUTO_EXPOSURE_PRESETS,
        VideoConfig,
        generate_video,
        load_panorama_linear,
    )

    torch.set_num_threads(args.threads)
    cfg = VideoConfig(height=360, width=640, frames=8, auto_exposure=AUTO_EXPOSURE_PRESETS["oscillating"])
    base = [f.srgb8 for f in generate_video(load_panorama_linear(args.hdr), cfg, np.random.default_rng(0))]

    class _F:
        __slots__ = ("srgb8",)

        def __init__(self, srgb8):
            self.srgb8 = srgb8

    stream = (_F(f.copy()) for f in itertools.islice(itertools.cycle(base), args.frames))
    restorer = restore_copy
    if args.restorer == "net":
        from deblurkit.highlights.net import load_highlight_restorer
        from deblurkit.models.highlight_net import HighlightNet

        restorer = load_highlight_restorer(HighlightNet())
    tmp = tempfile.TemporaryDirectory(prefix="highlights-bench-")
    target = Path(tmp.name) / f"frame.{args.write}"
    if args.tracemalloc:
        tracemalloc.start()
    samples = []
    t0, c0 = time.perf_counter(), time.process_time()
    for res in run_online(stream, restorer, rule_policy("interval"), align=args.align):
        if args.write != "none":
            write_frame_linear(target, res.output, args.write, 16.0)
        if res.index % args.every == 0 or res.index == args.frames - 1:
            row = {"frame": res.index, "rss_mb": round(_rss_mb(), 1), "maxrss_mb": round(_maxrss_mb(), 1)}
            if args.tracemalloc:
                cur, peak = tracemalloc.get_traced_memory()
                row.update(traced_mb=round(cur / 2**20, 2), traced_peak_mb=round(peak / 2**20, 2))
                tracemalloc.reset_peak()
            samples.append(row)
        del res
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    bytes_per_frame = target.stat().st_size if args.write != "none" else None
    tmp.cleanup()
    after = [s for s in samples if s["frame"] >= args.warmup] or samples
    out = {"frames": args.frames, "size": "640x360", "restorer": args.restorer, "align": args.align,
           "threads": args.threads, "write": args.write, "bytes_last_frame": bytes_per_frame,
           "fps": round(args.frames / secs, 2), "frames_per_cpu_second": round(args.frames / cpu, 2),
           "load_avg_1min": round(os.getloadavg()[0], 2), "samples": samples,
           "rss_growth_mb": round(after[-1]["rss_mb"] - after[0]["rss_mb"], 1),
           "maxrss_growth_mb": round(after[-1]["maxrss_mb"] - after[0]["maxrss_mb"], 1)}
    if args.tracemalloc:
        peaks = [s["traced_peak_mb"] for s in after[1:]] or [after[0]["traced_peak_mb"]]
        out["traced_peak_mb_range"] = [min(peaks), max(peaks)]
    text = json.dumps(out)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
