"""Scene fit speed: CPU time per plain and per joint iteration of a 24-view 128x128 fit, extrapolated to a schedule.

A synthetic scene (:func:`deblurkit.scene.data.make_synthetic_scene`) is seen by ``--views``
blurry photos of ``--size`` pixels (random 6-DoF shake, no noise); :func:`deblurkit.scene.fit.fit_scene`
runs ``--plain`` plain iterations and then ``--joint`` joint ones with densification switched
off, so the number of Gaussians stays at ``--init-points`` (a real fit grows and prunes them; the
cost per iteration grows with the number per tile). The CPU time of each iteration
(``time.process_time``, one thread unless ``--threads``) is recorded through the fit's progress
callback; the median plain and joint times are multiplied by the schedule's iteration counts
(``--schedule TOTAL PLAIN``), which is an extrapolation, not a measured full fit. Peak resident
memory of the process (Linux high-water mark, reset just before the fit) is printed too.

Usage: python benchmarks/scene_fit_speed.py [--views 24] [--size 128] [--subframes 7] [--plain 3] [--joint 4] [--samples 16] [--tile 16]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--subframes", type=int, default=7)
    parser.add_argument("--order", type=int, default=4)
    parser.add_argument("--init-points", type=int, default=4000)
    parser.add_argument("--plain", type=int, default=3, help="plain iterations timed")
    parser.add_argument("--joint", type=int, default=4, help="joint iterations timed")
    parser.add_argument("--schedule", type=int, nargs=2, default=(3000, 500), metavar=("TOTAL", "PLAIN"),
                        help="iterations of the full fit to extrapolate to, and how many of them plain")
    parser.add_argument("--samples", type=int, default=16, help="sharp renders averaged per blurry photo (setup only)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tile", type=int, default=16, help="renderer tile side (FitConfig.tile)")
    args = parser.parse_args()

    import math
    import resource
    import statistics
    from pathlib import Path

    import torch

    from deblurkit.scene.data import forward_facing_cameras, make_blurry_views, make_synthetic_scene
    from deblurkit.scene.fit import FitConfig, fit_scene
    from deblurkit.scene.render import Intrinsics

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    truth = make_synthetic_scene(gen, spacing=0.15)
    intr = Intrinsics.from_fov(math.radians(50), args.size, args.size)
    views = make_blurry_views(truth, forward_facing_cameras(args.views), intr, gen, num_samples=args.samples, noise="none",
                              rotation_deg=(3.0, 5.0), translation=(0.05, 0.1))
    total = args.plain + args.joint
    config = FitConfig(mode="joint", iterations=total, plain_iterations=args.plain, num_subframes=args.subframes,
                       bezier_order=args.order, subframe_chunk=args.subframes, init_points=args.init_points,
                       init_depth=(2.0, 7.0), densify_from=10**9, checkpoint_every=10**9, tile=args.tile)
    stamps: list[float] = []
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, w0 = time.process_time(), time.perf_counter()
    fit_scene(views, config, log_every=1, progress=lambda rec: stamps.append(time.process_time()))
    wall = time.perf_counter() - w0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_it = [b - a for a, b in zip([t0, *stamps[:-1]], stamps)]
    plain = statistics.median(per_it[: args.plain])
    joint = statistics.median(per_it[args.plain :])
    full_total, full_plain = args.schedule
    estimate = full_plain * plain + (full_total - full_plain) * joint
    print(f"{args.views} views {args.size}x{args.size}, {args.init_points} Gaussians (no densification), "
          f"{args.subframes} sub-frames, {args.tile}x{args.tile} tiles, {args.threads} thread(s)")
    print(f"CPU time per iteration (median): plain {plain:.2f} s ({args.plain} timed), "
          f"joint {joint:.2f} s ({args.joint} timed); wall for the {total} iterations {wall:.1f} s")
    print(f"extrapolated: {full_total} iterations ({full_plain} plain) = {estimate / 60:.1f} CPU minutes")
    print(f"peak RSS {peak:.0f} MB (at fit start {rss_start:.0f} MB); load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
