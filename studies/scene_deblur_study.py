#!/usr/bin/env python3
"""Scene deblurring from blurry views: plain splatting vs the joint method vs the true-trajectory bound.

    python -m studies.scene_deblur_study            # or: python studies/scene_deblur_study.py
    python -m studies.scene_deblur_study --scene lego --size 64 --views 24

``--scene synthetic`` (default): a textured wall with boxes (``make_synthetic_scene``) is seen by cameras on a small disc;
two thirds of them become blurry training photos (random 6-DoF shake, linear-light averaging,
optional sensor noise), the rest are sharp test views at new poses. Four fits run on the same
photos with the same settings:

* ``plain``   (a) Gaussian splatting on the blurry photos at their given (mid-exposure) poses;
* ``deblurred`` (b) each photo first deblurred on its own by deblurkit's single-image restorer
  (``--restorer``, the one ``deblurkit deblur`` uses by default; photos under 96 px are enlarged
  for it and reduced back, :func:`deblurkit.scene.data.restore_views`), then plain splatting;
* ``joint``   (c) Gaussians + one Bézier trajectory per photo (DeblurGS schedule);
* ``oracle``  (d) Gaussians with the sub-frame poses fixed to the true ones (a bound for c).

Reported per fit: PSNR/SSIM (sRGB, data_range 1, no border crop) on the sharp test views, on
the training views (their sharp mid-exposure renders; joint renders at its own mid-exposure
pose), the number of Gaussians, the wall and CPU time (the process's, all threads), the peak resident memory of the fit (Linux:
the process's high-water mark reset before each fit; elsewhere the process's peak so far), and for ``joint`` the error of the recovered
trajectories (:func:`deblurkit.scene.trajectory.trajectory_error`, index-matched, and
:func:`deblurkit.scene.trajectory.trajectory_set_error`, as pose sets) next to those of assuming
no motion, and (synthetic scenes) the floaters: visible fitted Gaussians farther than
``--floater-distance`` from every true Gaussian. The blurry training photos vs their sharp
versions are reported too, and so are the restored ones for ``deblurred``. ``--scene lego``: the first ``--views`` NeRF-synthetic lego views
(``../shared/data/scenes/lego``, RGBA on white, resized to ``--size``), training views blurred by
camera rotation (exact homographies; ``--rotation 0 0`` leaves them sharp), test views the sharp photos; the
initial points are carved by the photos' silhouettes on the white background (``--no-carve``: drawn through every
pixel, see :func:`deblurkit.scene.fit.init_gaussians_from_views`). Writes ``--out`` ``.json`` and ``.md``, a picture row per test
view (``_test_views.png``; a blurry photo does not exist for new poses, so the row is: truth, then each fit in ``--modes``
order) and one per training view, for the first three (``_train_views.png``: the blurry photo, each fit's sharp render at
that view's mid-exposure pose, the truth).

Sizes are tiny on purpose (a shared 2-core CPU); all are options. Fits longer than a working
day: ``--runs-dir DIR`` checkpoints each fit in ``DIR/<mode>``, and the same command resumes it.

``--summarize A.json B.json ...`` (no fitting): mean and spread (sample standard deviation, min
and max) of each fit's test PSNR/SSIM and of its gap to ``joint`` over several runs, e.g. seeds;
files of the same seed (the same study split over processes with ``--modes``) are merged first;
writes ``--out`` ``.json`` and ``.md``. With ``--baseline C.json D.json ...`` (runs of the same seeds
with another setting, e.g. ``--no-anneal``) each fit is also compared with them, paired by seed:
test PSNR difference, Gaussians and floaters.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="synthetic", choices=("synthetic", "lego"),
                    help="synthetic Gaussians, or the NeRF lego views blurred by camera rotation")
    ap.add_argument("--lego", default="../shared/data/scenes/lego/transforms_train.json",
                    help="NeRF transforms file of the lego views (--scene lego)")
    ap.add_argument("--size", type=int, default=48, help="image side in pixels")
    ap.add_argument("--views", type=int, default=12, help="cameras; every third is a sharp test view")
    ap.add_argument("--spacing", type=float, default=0.15, help="splat spacing of the true scene")
    ap.add_argument("--rotation", type=float, nargs=2, default=(3.0, 5.0), help="largest shake rotation range (deg)")
    ap.add_argument("--translation", type=float, nargs=2, default=(0.05, 0.1), help="largest shake displacement range")
    ap.add_argument("--noise", default="none", help="noise model of deblurkit.synth.isp (none, unprocessing, ...)")
    ap.add_argument("--modes", default="plain,deblurred,joint,oracle")
    ap.add_argument("--restorer", default="default", help="single-image restorer of the deblurred mode (load_restorer name)")
    ap.add_argument("--iterations", type=int, default=240)
    ap.add_argument("--plain-iterations", type=int, default=80)
    ap.add_argument("--subframes", type=int, default=7)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--init-points", type=int, default=1500)
    ap.add_argument("--lr-control", type=float, default=1e-2)
    ap.add_argument("--lr-times", type=float, default=1e-2)
    ap.add_argument("--no-anneal", action="store_true",
                    help="ablation: densification threshold fixed at its final value (2e-4) instead of 4e-4 -> 2e-4")
    ap.add_argument("--densify-from", type=int, default=100)
    ap.add_argument("--densify-every", type=int, default=50)
    ap.add_argument("--max-per-tile", type=int, default=1024,
                    help="Gaussians composited per 16-px tile (FitConfig.max_per_tile); the rest of a tile's "
                         "list is dropped, so raise it for scenes of many Gaussians")
    ap.add_argument("--anneal-fraction", type=float, default=1 / 6, help="share of the iterations the threshold decays over")
    ap.add_argument("--smooth-weight", type=float, nargs=2, default=(1e-2, 1e-3),
                    help="smoothness weight at the start and the end of the joint phase")
    ap.add_argument("--lr-curve-half", type=int, default=1500, help="iterations over which the trajectory rates halve")
    ap.add_argument("--anchor", default="mid", choices=("mid", "start"),
                    help="the given pose is each trajectory's mid-exposure pose (mid) or its start")
    ap.add_argument("--lr-alignment", type=float, default=None, help="rate of the alignment twists (default: --lr-control)")
    ap.add_argument("--init-noise", type=float, default=0.0, help="std of the initial trajectory control points")
    ap.add_argument("--no-carve", action="store_true",
                    help="lego: draw the initial points through every pixel, background included (FitConfig.init_foreground)")
    ap.add_argument("--floater-distance", type=float, default=0.3,
                    help="a visible fitted Gaussian farther than this from every true one counts as a floater")
    ap.add_argument("--log-every", type=int, default=0, help="iterations between progress records (0: a sixth of the run)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="studies/results/scene_deblur")
    ap.add_argument("--runs-dir", default=None,
                    help="keep each fit's checkpoints in DIR/<mode> (every --checkpoint-every iterations), "
                         "so that the same command resumes an interrupted fit; default: no checkpoints")
    ap.add_argument("--checkpoint-every", type=int, default=100,
                    help="iterations between checkpoints (--runs-dir)")
    ap.add_argument("--summarize", nargs="+", metavar="JSON", help="summarise finished runs instead of fitting")
    ap.add_argument("--baseline", nargs="+", metavar="JSON",
                    help="with --summarize: runs of the same seeds with another setting (e.g. --no-anneal); "
                         "adds each fit's difference to them, paired by seed")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize, Path(args.out), baseline=args.baseline)
        return
    if args.baseline:
        ap.error("--baseline needs --summarize")

    import resource

    import numpy as np
    import torch

    from deblurkit.eval.metrics import psnr, ssim
    from deblurkit.io import atomic_write, save_png
    from deblurkit.scene.data import (
        forward_facing_cameras,
        make_blurry_views,
        make_synthetic_scene,
        render_views_linear,
        restore_views,
    )
    from deblurkit.scene.fit import FitConfig, fit_scene, sharp_view_poses
    from deblurkit.scene.render import Intrinsics
    from deblurkit.scene.trajectory import trajectory_error, trajectory_set_error
    from deblurkit.synth.color import linear_to_srgb

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    test_idx = list(range(0, args.views, 3))
    train_idx = [i for i in range(args.views) if i not in test_idx]

    def srgb(lin: torch.Tensor) -> np.ndarray:
        return linear_to_srgb(lin.clamp(0, 1)).permute(0, 2, 3, 1).numpy().astype(np.float64)

    if args.scene == "synthetic":
        truth = make_synthetic_scene(gen, spacing=args.spacing)
        intr = Intrinsics.from_fov(math.radians(50), args.size, args.size)
        cams = forward_facing_cameras(args.views)
        train = make_blurry_views(truth, cams[train_idx], intr, gen, num_samples=32, noise=args.noise,
                                  rotation_deg=tuple(args.rotation), translation=tuple(args.translation))
        test_true = srgb(render_views_linear(truth, cams[test_idx], intr))
        train_true = srgb(render_views_linear(truth, cams[train_idx], intr))
        background, init_depth, n_true = (0.0, 0.0, 0.0), (2.0, 7.0), len(truth)
    else:  # sharp photos of a real model; blur by rotation only, so the truth stays exact
        from deblurkit.scene.data import read_nerf_transforms, rotation_blur_views

        probe = read_nerf_transforms(args.lego, limit=1)
        views = read_nerf_transforms(args.lego, scale=args.size / probe.intr.width, limit=args.views)
        intr, cams = views.intr, views.w2c
        train = rotation_blur_views(views.subset(train_idx), gen, rotation_deg=tuple(args.rotation))
        test_true = views.images[test_idx].permute(0, 2, 3, 1).numpy().astype(np.float64)
        train_true = views.images[train_idx].permute(0, 2, 3, 1).numpy().astype(np.float64)
        background, init_depth, n_true = (1.0, 1.0, 1.0), None, 0
        truth = None

    def floaters(gs) -> dict[str, float]:
        """Visible Gaussians (opacity >= 0.05) farther than ``--floater-distance`` from every true Gaussian."""
        opacity = torch.sigmoid(gs.opacity_logits)
        dist = torch.cat([torch.cdist(m, truth.means).amin(1) for m in gs.means.split(2048)])
        far = (dist > args.floater_distance) & (opacity >= 0.05)
        return {"count": int(far.sum()), "opacity_share": float(opacity[far].sum() / opacity.sum().clamp_min(1e-12))}

    def scores(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
        return {"psnr": float(np.mean([psnr(p, r, data_range=1.0) for p, r in zip(pred, ref)])),
                "ssim": float(np.mean([ssim(p, r, data_range=1.0) for p, r in zip(pred, ref)]))}

    blurry = train.images.permute(0, 2, 3, 1).numpy().astype(np.float64)
    results: dict = {
        "settings": vars(args),
        "scene": {"kind": args.scene, "gaussians": n_true, "train_views": len(train_idx), "test_views": len(test_idx)},
        "blurry_inputs": scores(blurry, train_true),
        "fits": {},
    }
    still = [trajectory_error(w[None].expand(args.subframes, 4, 4), t) for w, t in zip(train.w2c, train.true_w2c)]
    still_set = [trajectory_set_error(w[None], t) for w, t in zip(train.w2c, train.true_w2c)]
    results["trajectory_error_of_no_motion"] = {"rotation_deg": float(np.mean([e[0] for e in still])),
                                                "position": float(np.mean([e[1] for e in still])),
                                                "set_rotation_deg": float(np.mean([e[0] for e in still_set])),
                                                "set_position": float(np.mean([e[1] for e in still_set]))}
    def reset_peak_rss() -> str:
        try:  # Linux: "5" resets the high-water mark that ru_maxrss reports
            Path("/proc/self/clear_refs").write_text("5")
            return "fit"
        except OSError:
            return "process"

    def peak_rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    def monitor(gs, traj) -> dict[str, float]:
        """Test PSNR and, with trajectories, their errors against the truth (logged during the fit)."""
        test_renders = render_views_linear(gs, cams[test_idx], intr, background=background,
                                           max_per_tile=args.max_per_tile)
        rec = {"test_psnr": scores(srgb(test_renders), test_true)["psnr"]}
        if traj is not None and train.true_w2c is not None:
            est = traj.world_to_camera(train.w2c)
            errs = [trajectory_error(e, t) for e, t in zip(est, train.true_w2c)]
            errs_set = [trajectory_set_error(e, t) for e, t in zip(est, train.true_w2c)]
            mid = sharp_view_poses(train.w2c, traj)
            errs_mid = [trajectory_set_error(m[None], w[None]) for m, w in zip(mid, train.w2c)]
            rec.update(rot_deg=float(np.mean([e[0] for e in errs])), pos=float(np.mean([e[1] for e in errs])),
                       set_rot_deg=float(np.mean([e[0] for e in errs_set])),
                       set_pos=float(np.mean([e[1] for e in errs_set])),
                       mid_rot_deg=float(np.mean([e[0] for e in errs_mid])),
                       mid_pos=float(np.mean([e[1] for e in errs_mid])))
        return rec

    pictures = {"truth": test_true}
    # Training views side by side: the blurry photo, each fit's sharp render at that view, the truth.
    shown = slice(0, 3)
    train_pictures = {"blurry": train.images[shown].permute(0, 2, 3, 1).numpy().astype(np.float64)}
    for mode in args.modes.split(","):
        photos, fit_mode = train, mode
        if mode == "deblurred":
            from deblurkit.infer import load_restorer

            t0 = time.perf_counter()
            photos = restore_views(train, load_restorer(args.restorer, threads=args.threads))
            results["deblurred_inputs"] = scores(photos.images.permute(0, 2, 3, 1).numpy().astype(np.float64), train_true)
            results["deblurred_inputs"]["seconds"] = time.perf_counter() - t0
            fit_mode = "plain"
        config = FitConfig(mode=fit_mode, iterations=args.iterations, plain_iterations=args.plain_iterations,
                           num_subframes=args.subframes, bezier_order=args.order, subframe_chunk=args.subframes,
                           init_points=args.init_points, init_depth=init_depth, background=background, lr_sh0=2e-2, lr_means=5e-3,
                           lr_scales=1e-2, lr_control=args.lr_control, lr_times=args.lr_times,
                           smooth_weight=tuple(args.smooth_weight), lr_curve_half=args.lr_curve_half,
                           trajectory_anchor=args.anchor, lr_alignment=args.lr_alignment,
                           trajectory_init_noise=args.init_noise,
                           densify_every=args.densify_every, densify_from=args.densify_from,
                           max_per_tile=args.max_per_tile, init_foreground=not args.no_carve,
                           anneal_fraction=args.anneal_fraction,
                           checkpoint_every=args.checkpoint_every if args.runs_dir else 10**9, seed=args.seed,
                           grad_threshold_start=2e-4 if args.no_anneal else 4e-4)
        scope = reset_peak_rss()
        rss_start = peak_rss_mb()  # after a reset: the resident memory now
        t0, c0 = time.perf_counter(), time.process_time()
        res = fit_scene(photos, config, log_every=args.log_every or max(1, args.iterations // 6),
                        progress=lambda r, m=mode: print(m, {k: round(x, 4) for k, x in r.items()}, flush=True),
                        monitor=monitor, run_dir=Path(args.runs_dir) / mode if args.runs_dir else None)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        if args.runs_dir is not None:  # a resumed fit: its own record of the wall time, all sessions
            seconds = max(seconds, res.history[-1]["seconds"])
        peak = peak_rss_mb()
        shown_as_fitted = {"background": background, "max_per_tile": args.max_per_tile}
        test_pred = srgb(render_views_linear(res.gaussians, cams[test_idx], intr, **shown_as_fitted))
        train_pred = srgb(render_views_linear(res.gaussians, sharp_view_poses(train.w2c, res.trajectories), intr,
                                              **shown_as_fitted))
        results["fits"][mode] = {
            "test": scores(test_pred, test_true),
            "train_sharp": scores(train_pred, train_true),
            "gaussians": len(res.gaussians),
            "floaters": None if truth is None else floaters(res.gaussians),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "peak_rss_mb": peak,
            "peak_rss_scope": scope,
            "rss_at_start_mb": rss_start,
            "final_l1": res.history[-1]["l1"],
            "history": res.history,
            "config": asdict(config),
        }
        if res.trajectories is not None:
            with torch.no_grad():
                est = res.trajectories.world_to_camera(train.w2c)
            errs = [trajectory_error(e, t) for e, t in zip(est, train.true_w2c)]
            errs_set = [trajectory_set_error(e, t) for e, t in zip(est, train.true_w2c)]
            results["fits"][mode]["trajectory_error"] = {"rotation_deg": float(np.mean([e[0] for e in errs])),
                                                         "position": float(np.mean([e[1] for e in errs])),
                                                         "set_rotation_deg": float(np.mean([e[0] for e in errs_set])),
                                                         "set_position": float(np.mean([e[1] for e in errs_set]))}
        pictures[mode] = test_pred
        train_pictures[mode] = train_pred[shown]
        print(mode, results["fits"][mode]["test"], f"{seconds:.0f} s wall, {cpu_seconds:.0f} s CPU", flush=True)

    out = Path(args.out)
    with atomic_write(out.with_suffix(".json"), "w") as fh:
        json.dump(results, fh, indent=2)
    lines = [
        f"Scene {args.scene}, {args.size}x{args.size}, {len(train_idx)} blurry training views, {len(test_idx)} test views, "
        f"shake {args.rotation[0]}-{args.rotation[1]} deg / "
        f"{'rotation only' if args.scene == 'lego' else f'{args.translation[0]}-{args.translation[1]} units'}, "
        f"noise {args.noise}, {args.iterations} iterations ({args.plain_iterations} plain first), "
        f"{args.subframes} sub-frames, Bézier order {args.order}.",
        "",
        f"Blurry training photos vs their sharp versions: {results['blurry_inputs']['psnr']:.2f} dB / "
        f"{results['blurry_inputs']['ssim']:.3f}"
        + (f"; restored by {args.restorer!r}: {results['deblurred_inputs']['psnr']:.2f} dB / "
           f"{results['deblurred_inputs']['ssim']:.3f}" if "deblurred_inputs" in results else ""),
        "",
        "| fit | test PSNR | test SSIM | train (sharp) PSNR | Gaussians | floaters (opacity share) | seconds (CPU) | "
        "peak RSS (MB), at start |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, r in results["fits"].items():
        fl = "-" if r["floaters"] is None else f"{r['floaters']['count']} ({r['floaters']['opacity_share']:.3f})"
        lines.append(f"| {mode} | {r['test']['psnr']:.2f} | {r['test']['ssim']:.3f} | {r['train_sharp']['psnr']:.2f} | "
                     f"{r['gaussians']} | {fl} | {r['seconds']:.0f} ({r['cpu_seconds']:.0f}) | "
                     f"{r['peak_rss_mb']:.0f}, {r['rss_at_start_mb']:.0f} |")
    nm = results["trajectory_error_of_no_motion"]
    lines += ["", f"Trajectory errors (mean over views; index-matched relative to the mid pose up to reversal | "
              f"pose set): no motion {nm['rotation_deg']:.2f} deg / {nm['position']:.3f} | "
              f"{nm['set_rotation_deg']:.2f} deg / {nm['set_position']:.3f}"]
    for mode, r in results["fits"].items():
        if "trajectory_error" in r:
            e = r["trajectory_error"]
            lines[-1] += (f"; {mode} {e['rotation_deg']:.2f} deg / {e['position']:.3f} | "
                          f"{e['set_rotation_deg']:.2f} deg / {e['set_position']:.3f}")
    lines[-1] += "."
    with atomic_write(out.with_suffix(".md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    row = np.concatenate([np.concatenate(list(v), axis=0) for v in pictures.values()], axis=1)
    save_png(out.parent / (out.name + "_test_views.png"), row.astype(np.float32))
    train_pictures["truth"] = train_true[shown]
    row = np.concatenate([np.concatenate(list(v), axis=0) for v in train_pictures.values()], axis=1)
    save_png(out.parent / (out.name + "_train_views.png"), row.astype(np.float32))
    print("\n".join(lines))


def _runs_by_seed(files: list[str]) -> list[dict]:
    """The runs in ``files``, one per seed: runs of one seed made with different --modes are merged."""
    runs: list[dict] = []
    for f in files:
        r = json.loads(Path(f).read_text())
        same = [q for q in runs if q["settings"]["seed"] == r["settings"]["seed"]]
        if same:
            same[0]["fits"].update(r["fits"])
        else:
            runs.append(r)
    return runs


def summarize(files: list[str], out: Path, baseline: list[str] | None = None) -> dict:
    """Mean, sample standard deviation, min and max over runs of each fit's test scores.

    With ``baseline`` (runs of the same seeds with another setting), each fit's test PSNR, number
    of Gaussians and floaters are also given against the baseline's, paired by seed.
    """
    import numpy as np

    from deblurkit.io import atomic_write

    runs = _runs_by_seed(files)
    modes = [m for m in ("plain", "deblurred", "joint", "oracle") if all(m in r["fits"] for r in runs)]

    def stats(values: list[float]) -> dict[str, float]:
        a = np.asarray(values, dtype=np.float64)
        return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                "min": float(a.min()), "max": float(a.max()), "values": [float(x) for x in a]}

    summary: dict = {"runs": files, "seeds": [r["settings"]["seed"] for r in runs],
                     "blurry_inputs_psnr": stats([r["blurry_inputs"]["psnr"] for r in runs]), "fits": {}}
    for m in modes:
        row = {k: stats([r["fits"][m]["test"][k] for r in runs]) for k in ("psnr", "ssim")}
        if "joint" in modes:
            row["joint_minus_this_psnr"] = stats([r["fits"]["joint"]["test"]["psnr"] - r["fits"][m]["test"]["psnr"]
                                                  for r in runs])
        row["peak_rss_mb"] = stats([r["fits"][m]["peak_rss_mb"] for r in runs])
        row["seconds"] = stats([r["fits"][m]["seconds"] for r in runs])
        summary["fits"][m] = row
    lines = [f"{len(runs)} runs (seeds {', '.join(str(s) for s in summary['seeds'])}); mean ± sample std [min, max].",
             "", "| fit | test PSNR | test SSIM | joint minus this (dB) | peak RSS (MB) |", "|---|---|---|---|---|"]

    def fmt(st: dict[str, float], digits: int) -> str:
        return f"{st['mean']:.{digits}f} ± {st['std']:.{digits}f} [{st['min']:.{digits}f}, {st['max']:.{digits}f}]"

    for m, row in summary["fits"].items():
        gap = fmt(row["joint_minus_this_psnr"], 2) if "joint_minus_this_psnr" in row else "-"
        lines.append(f"| {m} | {fmt(row['psnr'], 2)} | {fmt(row['ssim'], 3)} | {gap} | {row['peak_rss_mb']['mean']:.0f} |")
    keys = ("rotation_deg", "position", "set_rotation_deg", "set_position")
    if "joint" in modes and all("trajectory_error" in r["fits"]["joint"] for r in runs):
        summary["trajectory_error"] = {
            name: {k: stats([src(r)[k] for r in runs]) for k in keys}
            for name, src in (("no_motion", lambda r: r["trajectory_error_of_no_motion"]),
                              ("joint", lambda r: r["fits"]["joint"]["trajectory_error"]))}
        lines += ["", "| trajectories | index-matched rotation (deg) | index-matched position | pose-set rotation (deg) | "
                  "pose-set position |", "|---|---|---|---|---|"]
        for name, row in summary["trajectory_error"].items():
            lines.append(f"| {name.replace('_', ' ')} | {fmt(row['rotation_deg'], 2)} | {fmt(row['position'], 3)} | "
                         f"{fmt(row['set_rotation_deg'], 2)} | {fmt(row['set_position'], 3)} |")
    if baseline:
        base = {r["settings"]["seed"]: r for r in _runs_by_seed(baseline)}
        missing = [r["settings"]["seed"] for r in runs if r["settings"]["seed"] not in base]
        if missing:
            raise SystemExit(f"--baseline has no run of seed(s) {missing}")
        summary["baseline"] = {"runs": baseline, "fits": {}}
        header = ("| fit | test PSNR, this − baseline (dB) | better on | Gaussians (this / baseline) | "
                  "floaters (this / baseline) | floaters' opacity share (this / baseline) |")
        lines += ["", "Against the baseline runs (same seeds; this minus baseline where a difference):", "",
                  header, "|---|---|---|---|---|---|"]
        for m in [m for m in modes if all(m in base[r["settings"]["seed"]]["fits"] for r in runs)]:
            pairs = [(r["fits"][m], base[r["settings"]["seed"]]["fits"][m]) for r in runs]
            row = {"psnr_minus_baseline": stats([a["test"]["psnr"] - b["test"]["psnr"] for a, b in pairs]),
                   "gaussians": stats([a["gaussians"] for a, _ in pairs]),
                   "baseline_gaussians": stats([b["gaussians"] for _, b in pairs])}
            if all(a.get("floaters") and b.get("floaters") for a, b in pairs):  # None on the lego views
                for key in ("count", "opacity_share"):
                    row[f"floaters_{key}"] = stats([a["floaters"][key] for a, _ in pairs])
                    row[f"baseline_floaters_{key}"] = stats([b["floaters"][key] for _, b in pairs])
            summary["baseline"]["fits"][m] = row
            better = sum(d > 0 for d in row["psnr_minus_baseline"]["values"])
            floaters = "- | -"
            if "floaters_count" in row:
                floaters = (f"{fmt(row['floaters_count'], 0)} / {fmt(row['baseline_floaters_count'], 0)} | "
                            f"{row['floaters_opacity_share']['mean']:.3f} / "
                            f"{row['baseline_floaters_opacity_share']['mean']:.3f}")
            lines.append(f"| {m} | {fmt(row['psnr_minus_baseline'], 2)} | {better} of {len(pairs)} | "
                         f"{fmt(row['gaussians'], 0)} / {fmt(row['baseline_gaussians'], 0)} | {floaters} |")
    with atomic_write(out.with_suffix(".json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    with atomic_write(out.with_suffix(".md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


if __name__ == "__main__":
    main()
