#!/usr/bin/env python3
"""Can a photo's exposure trajectory be recovered when the scene is known? (true Gaussians held fixed)

    python -m studies.scene_trajectory_probe

One blurry view of the synthetic scene (6-DoF shake of a fixed size, no noise) is explained by
optimising only its :class:`~deblurkit.scene.trajectory.ExposureTrajectories` (Adam) while the
true Gaussians stay fixed. Prints every 10 steps the photometric L1 and two trajectory errors
(rotation in degrees / camera position) next to those of assuming no motion:
:func:`~deblurkit.scene.trajectory.trajectory_error` (poses matched by index, relative to the mid
pose, up to reversal) and :func:`~deblurkit.scene.trajectory.trajectory_set_error` (nearest poses,
order and speed ignored, in the world frame).
"""

from __future__ import annotations

import argparse
import math
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--spacing", type=float, default=0.25)
    ap.add_argument("--rotation", type=float, default=4.0, help="largest rotation from the mid pose (deg)")
    ap.add_argument("--translation", type=float, default=0.08, help="largest displacement from the mid pose")
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--subframes", type=int, default=7)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from deblurkit.scene.data import forward_facing_cameras, make_blurry_views, make_synthetic_scene
    from deblurkit.scene.render import Intrinsics, render
    from deblurkit.scene.trajectory import (
        ExposureTrajectories,
        average_linear_to_srgb,
        trajectory_error,
        trajectory_set_error,
    )

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed)
    truth = make_synthetic_scene(gen, spacing=args.spacing)
    intr = Intrinsics.from_fov(math.radians(50), args.size, args.size)
    view = make_blurry_views(truth, forward_facing_cameras(3)[:1], intr, gen, num_samples=32, noise="none",
                             rotation_deg=(args.rotation, args.rotation),
                             translation=(args.translation, args.translation))
    traj = ExposureTrajectories(1, order=args.order, num_subframes=args.subframes)
    opt = torch.optim.Adam(traj.parameters(), lr=args.lr)
    fixed = view.w2c[0][None].expand(args.subframes, 4, 4)
    still, still_set = trajectory_error(fixed, view.true_w2c[0]), trajectory_set_error(fixed, view.true_w2c[0])
    print(f"{len(truth)} Gaussians; assuming no motion: index-matched error {still[0]:.2f} deg / {still[1]:.3f}, "
          f"pose-set error {still_set[0]:.2f} deg / {still_set[1]:.3f}")
    t0 = time.perf_counter()
    for step in range(args.steps + 1):
        poses = traj.world_to_camera(view.w2c)[0]
        loss = (average_linear_to_srgb(render(truth, poses, intr).image) - view.images).abs().mean()
        if step % 10 == 0:
            with torch.no_grad():
                err = trajectory_error(poses.detach(), view.true_w2c[0])
                err_set = trajectory_set_error(poses.detach(), view.true_w2c[0])
            print(f"step {step}: L1 {float(loss.detach()):.4f}, index-matched {err[0]:.2f} deg / {err[1]:.3f}, "
                  f"pose-set {err_set[0]:.2f} deg / {err_set[1]:.3f}, {time.perf_counter() - t0:.0f} s", flush=True)
        if step < args.steps:
            opt.zero_grad()
            loss.backward()
            opt.step()


if __name__ == "__main__":
    main()
