"""Gaussian-splat renderer speed: forward + backward of one 128x128 render of 4k Gaussians on ONE thread.

The scene is random: ``--gaussians`` anisotropic Gaussians spread through the view frustum at
depths 2-6, sized so that they cover the image several times over (the mean and maximum number
per 16x16 tile are printed, since the cost grows with them). The loss is an L1 to a fixed
target, so the backward pass is the one fitting runs.

Times are CPU time of this process (``time.process_time``) with one thread, which is what one
core delivers even on a shared machine; wall time and the load average are printed beside it.

Usage: python benchmarks/splat_speed.py [--gaussians 4096] [--size 128] [--tile 16] [--cap 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=4096)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--tile", type=int, default=16)
    parser.add_argument("--cap", type=int, default=1024, help="max Gaussians per tile")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import math

    import torch

    from deblurkit.scene.gaussians import Gaussians
    from deblurkit.scene.render import Intrinsics, render

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    g, size = args.gaussians, args.size
    intr = Intrinsics.from_fov(math.radians(50), size, size)
    depth = 2.0 + 4.0 * torch.rand(g, generator=gen)
    half = depth * math.tan(math.radians(25))
    xy = (torch.rand(g, 2, generator=gen) * 2 - 1) * half[:, None]
    # about 2 px standard deviation on average: sigma = depth * px / f
    sigma_px = torch.exp(torch.randn(g, 3, generator=gen) * 0.5) * 2.0
    gs = Gaussians(
        means=torch.cat([xy, depth[:, None]], dim=1),
        log_scales=torch.log(sigma_px * depth[:, None] / intr.fx),
        quats=torch.randn(g, 4, generator=gen),
        opacity_logits=torch.randn(g, generator=gen),
        sh0=torch.randn(g, 3, generator=gen),
    ).requires_grad_(True)
    target = torch.rand(1, 3, size, size, generator=gen)
    viewmat = torch.eye(4)

    def step() -> tuple[float, float, float]:
        t0, w0 = time.process_time(), time.perf_counter()
        out = render(gs, viewmat, intr, tile=args.tile, max_per_tile=args.cap)
        t1 = time.process_time()
        loss = (out.image - target).abs().mean()
        loss.backward()
        for t in gs.parameters().values():
            t.grad = None
        return t1 - t0, time.process_time() - t0, time.perf_counter() - w0

    step()  # warm-up
    runs = [step() for _ in range(args.repeats)]
    fwd = min(r[0] for r in runs)
    total = min(r[1] for r in runs)
    wall = min(r[2] for r in runs)
    counts = render(gs, viewmat, intr, tile=args.tile, max_per_tile=args.cap).tile_counts.float()
    print(f"{g} Gaussians, {size}x{size}, tile {args.tile}, cap {args.cap}, {args.threads} thread(s)")
    print(f"Gaussians per tile: mean {counts.mean():.0f}, max {counts.max():.0f} (tiles over the cap: "
          f"{int((counts > args.cap).sum())}/{counts.numel()})")
    print(f"forward {fwd:.3f} s, forward+backward {total:.3f} s CPU (best of {args.repeats}); wall {wall:.3f} s")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
