"""``deblurkit scene``: fit a sharp 3-D scene to blurry posed photos, then render it.

- ``deblurkit scene fit POSES --out RUN`` fits (resumable: run it again to continue);
- ``deblurkit scene views RUN -o DIR`` writes sharp versions of the input views;
- ``deblurkit scene render RUN --pose FILE -o out.png`` renders a new view.

``--device`` takes any torch device (``cpu``, the default, ``cuda``, ``cuda:1``, ``mps``, ...); it is
checked before anything is read or written, and a device this machine lacks is a one-line error.
A run fitted on one device renders and resumes on any other.

Heavy imports (torch) happen inside the handlers so ``deblurkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scene_command", required=True, metavar="{fit,views,render}")
    fit = sub.add_parser("fit", help="fit Gaussians and camera motion to blurry posed photos")
    fit.add_argument("poses", help="NeRF transforms.json, or a COLMAP text folder / images.txt")
    fit.add_argument("--images", default=None, help="photo folder for COLMAP poses (default: beside the pose file)")
    fit.add_argument("--out", required=True, help="run folder (config.json, checkpoint.pt); an existing run resumes")
    fit.add_argument("--mode", default="joint", choices=("joint", "plain"), help="joint (default) or plain splatting")
    fit.add_argument("--iterations", type=int, default=3000)
    fit.add_argument("--scale", type=float, default=1.0, help="resize the photos by this factor first")
    fit.add_argument("--subframes", type=int, default=21, help="renders per exposure (default 21)")
    fit.add_argument("--order", type=int, default=9, help="Bézier order of each trajectory (default 9)")
    fit.add_argument("--sh-degree", type=int, default=0, choices=(0, 1),
                     help="spherical-harmonics degree of the colours: 0 (default, one colour per Gaussian) or 1 "
                          "(view-dependent)")
    fit.add_argument("--max-per-tile", type=int, default=1024,
                     help="Gaussians composited per 16-px tile (default 1024); a tile's list beyond it is "
                          "dropped, and the progress lines say when that happens")
    fit.add_argument("--background", type=float, nargs=3, default=(1.0, 1.0, 1.0), metavar=("R", "G", "B"),
                     help="sRGB colour behind transparent pixels of RGBA photos, also rendered behind the "
                          "scene (default white)")
    fit.add_argument("--no-carve", action="store_true",
                     help="RGBA photos: draw the initial points through every pixel instead of carving them by "
                          "the photos' silhouettes on the background (the default)")
    fit.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N, mps, ...")
    fit.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    fit.add_argument("--seed", type=int, default=0)
    views = sub.add_parser("views", help="write sharp versions of the input views of a run")
    views.add_argument("run", help="run folder")
    views.add_argument("-o", "--output", required=True, help="output folder (PNG per view)")
    views.add_argument("--device", default="cpu", help="torch device to render on (default cpu)")
    rend = sub.add_parser("render", help="render a run from a new pose")
    rend.add_argument("run", help="run folder")
    rend.add_argument("--pose", required=True,
                      help="JSON file with 'w2c' (4x4 world-to-camera, OpenCV axes) or 'transform_matrix' (NeRF c2w)")
    rend.add_argument("-o", "--output", required=True, help="output PNG")
    rend.add_argument("--device", default="cpu", help="torch device to render on (default cpu)")


def _run_fit(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from deblurkit.devices import resolve_device
    from deblurkit.scene.data import load_views
    from deblurkit.scene.fit import FitConfig, fit_scene

    # first: a missing GPU is a one-line error before anything is read or written
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    poses = Path(args.poses)
    images = Path(args.images) if args.images else (poses.parent if poses.is_file() else poses)
    views = load_views(images, poses, scale=args.scale, background=tuple(args.background))
    from deblurkit.synth.color import srgb_to_linear

    # transparent pixels were composited on this colour, so the scene is rendered over it too
    background = tuple(float(c) for c in srgb_to_linear(torch.tensor(args.background, dtype=torch.float32)))
    config = FitConfig(mode=args.mode, iterations=args.iterations, num_subframes=args.subframes,
                       bezier_order=args.order, sh_degree=args.sh_degree, max_per_tile=args.max_per_tile,
                       seed=args.seed, background=background, init_foreground=not args.no_carve)
    config.validate()  # a bad setting is one line before any progress

    def report(rec: dict) -> None:
        note = (f"; a tile held {rec['tile_max']} Gaussians, over --max-per-tile {config.max_per_tile}: "
                "the renders dropped the rest") if rec["tile_max"] > config.max_per_tile else ""
        print(f"iteration {rec['iteration']}/{config.iterations}: L1 {rec['l1']:.4f}, "
              f"{rec['gaussians']} Gaussians, {rec['seconds']:.0f} s{note}", file=sys.stderr)

    print(f"fitting {len(views)} views of {views.intr.width}x{views.intr.height} ({args.mode}) on {device}",
          file=sys.stderr)
    fit_scene(views, config, run_dir=args.out, progress=report, log_every=max(1, min(100, args.iterations // 20)),
              device=device)
    print(f"wrote {Path(args.out) / 'checkpoint.pt'}", file=sys.stderr)
    return 0


def _load(run: str, device: str):
    from deblurkit.scene.fit import load_run
    from deblurkit.scene.render import Intrinsics

    config, gs, traj, ck = load_run(run, device=device)  # checks the device before reading the run
    return config, gs, traj, ck, Intrinsics(**ck["intrinsics"])


def _save(path, image_linear) -> None:
    from deblurkit.io import save_png
    from deblurkit.synth.color import linear_to_srgb

    img = linear_to_srgb(image_linear.clamp(0, 1))[0].permute(1, 2, 0).cpu().numpy()
    save_png(path, img)


def _run_views(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deblurkit.scene.fit import sharp_view_poses
    from deblurkit.scene.render import render

    config, gs, traj, ck, intr = _load(args.run, args.device)
    poses = sharp_view_poses(ck["w2c"], traj)
    out = Path(args.output)
    for name, pose in zip(ck["names"], poses):
        img = render(gs, pose, intr, background=config.background, tile=config.tile,
                     max_per_tile=config.max_per_tile).image.detach()
        _save(out / (Path(name).stem + ".png"), img)
    print(f"wrote {len(poses)} views to {out}", file=sys.stderr)
    return 0


def _read_pose(path: str):
    import json
    from pathlib import Path

    import torch

    from deblurkit.errors import DeblurkitError

    try:
        data = json.loads(Path(path).read_text())
        if "w2c" in data:
            m = torch.tensor(data["w2c"], dtype=torch.float64)
        else:
            c2w = torch.tensor(data["transform_matrix"], dtype=torch.float64)
            m = torch.linalg.inv(c2w @ torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DeblurkitError(f"cannot read a pose from {path}: {exc}") from exc
    if m.shape != (4, 4):
        raise DeblurkitError(f"the pose in {path} must be a 4x4 matrix")
    return m.float()


def _run_render(args: argparse.Namespace) -> int:
    from deblurkit.scene.render import render

    config, gs, _, _, intr = _load(args.run, args.device)
    pose = _read_pose(args.pose)
    img = render(gs, pose, intr, background=config.background, tile=config.tile,
                 max_per_tile=config.max_per_tile).image.detach()
    _save(args.output, img)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {"fit": _run_fit, "views": _run_views, "render": _run_render}
    return handlers[args.scene_command](args)
