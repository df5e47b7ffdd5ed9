"""Synthesis throughput: pairs/s for 256x256 crops per preset on ONE CPU core.

Compared with the floor of any file-based data pipeline: the time to decode one 256x256 PNG.
Crops come from the procedural dead-leaves source, pre-rendered so that only synthesis is
timed (dead-leaves and procedural-scene rendering are reported on their own lines).

Times are CPU time of this process (``time.process_time``) with one thread, which is what one
core delivers even on a shared machine; wall time is printed beside it.

Usage: python benchmarks/synth_speed.py [--pairs N] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="pairs timed per preset")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    import cv2
    import numpy as np
    import torch

    from deblurkit.io import float_to_uint
    from deblurkit.synth.pipeline import synthesize_pair
    from deblurkit.synth.presets import PRESETS, get_preset
    from deblurkit.synth.procedural import ProceduralSceneSource
    from deblurkit.synth.sources import DeadLeavesSource

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    size = args.size
    rng = np.random.default_rng(0)
    src = DeadLeavesSource()
    t0 = time.process_time()
    crops = [src.random_crop(size + 8, rng)[0] for _ in range(8)]
    dl_ms = (time.process_time() - t0) / len(crops) * 1e3
    t0 = time.process_time()
    for _ in range(8):
        ProceduralSceneSource().random_crop(size + 8, rng)
    scene_ms = (time.process_time() - t0) / 8 * 1e3
    tensors = [torch.from_numpy(np.ascontiguousarray(c.transpose(2, 0, 1)))[None] for c in crops]

    # Floor: decode one PNG of the output size (what reading pre-made pairs from disk costs).
    ok, buf = cv2.imencode(
        ".png", float_to_uint(crops[0][:size, :size, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3]
    )
    assert ok
    n_dec = 200
    t0 = time.process_time()
    for _ in range(n_dec):
        cv2.imdecode(buf, cv2.IMREAD_COLOR)
    png_ms = (time.process_time() - t0) / n_dec * 1e3

    configs = dict(PRESETS)
    configs["realistic (100% spatially varying)"] = replace(
        get_preset("realistic"), spatially_varying_prob=1.0
    )
    configs["realistic (uniform only)"] = replace(get_preset("realistic"), spatially_varying_prob=0.0)
    print(f"one CPU thread; {size}x{size} output; {args.pairs} pairs per preset")
    print(
        f"decode one {size}x{size} PNG: {png_ms:.2f} ms  (a pair = 2 PNGs: {2 * png_ms:.2f} ms, "
        f"{1000 / (2 * png_ms):.0f} pairs/s)"
    )
    print(f"dead-leaves source, one {size + 8}px image: {dl_ms:.1f} ms")
    print(f"procedural-scenes source, one {size + 8}px image: {scene_ms:.1f} ms")
    print(f"{'preset':<40} {'CPU ms/pair':>11} {'pairs/s':>8} {'wall ms/pair':>12}")
    for name, cfg in configs.items():
        gen = torch.Generator().manual_seed(0)
        inputs = [
            t[
                ...,
                4 - cfg.trim : 4 - cfg.trim + size + 2 * cfg.trim,
                4 - cfg.trim : 4 - cfg.trim + size + 2 * cfg.trim,
            ]
            for t in tensors
        ]
        synthesize_pair(inputs[0].contiguous(), cfg, gen)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(args.pairs):
            synthesize_pair(inputs[i % len(inputs)].contiguous(), cfg, gen)
        wall = (time.perf_counter() - t0) / args.pairs * 1e3
        ms = (time.process_time() - c0) / args.pairs * 1e3
        print(f"{name:<40} {ms:11.1f} {1000 / ms:8.1f} {wall:12.1f}")

    # End to end, as a training DataLoader worker sees it: crop from the bundled photos + synthesis.
    from deblurkit.synth.dataset import SynthPairDataset

    ds = SynthPairDataset("samples", "realistic", size=size, length=args.pairs + 20, seed=0)
    for i in range(20):  # warm the per-process photo cache
        ds[i]
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(20, 20 + args.pairs):
        ds[i]
    wall = (time.perf_counter() - t0) / args.pairs * 1e3
    ms = (time.process_time() - c0) / args.pairs * 1e3
    print(f"{'SynthPairDataset(samples, realistic)[i]':<40} {ms:11.1f} {1000 / ms:8.1f} {wall:12.1f}")


if __name__ == "__main__":
    main()
