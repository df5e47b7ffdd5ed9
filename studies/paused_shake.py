"""Shakes with pauses: the same paths as a test set's, with part of the exposure held at a few points.

The synthetic shakes (:func:`deblurkit.synth.trajectory.random_walk`) move at constant speed, so
their kernels are evenly bright strokes; a hand slows almost to a stop where it turns, and
recorded shake kernels have bright points along fainter strokes. This writes two test-set
folders from the uniform-shake pairs of an existing set (their sharp crops and the recorded
trajectories in ``meta.json``):

* ``even/<set>``: each trajectory rendered as it is (constant speed);
* ``paused/<set>``: the same trajectory re-timed with two pauses
  (:func:`deblurkit.synth.trajectory.retime_with_pauses`) at random times in [0.05, 0.95], each
  holding 15–30 % of the exposure (seeded per pair).

Both are blurred in linear light and written in 8-bit sRGB, without noise or (``--noise``) with
each pair's recorded sensor noise, the same draw in both, so the two folders differ only in how
the exposure is spread along the path. Score them with
``python -m studies.blind_benchmark --testsets OUT/even`` (and ``OUT/paused``).

Run: ``python -m studies.paused_shake [--testsets data/valsets] [--set capture] [--every 2]
[--noise] [--out data/valsets-paused]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from studies.heldout import set_items


def pauses_for(index: int, seed: int) -> list[tuple[float, float]]:
    """The seeded ``(at, share)`` pauses of pair ``index``: the synthesis's own draw
    (:func:`deblurkit.synth.trajectory.random_pauses` with ``SynthConfig.pause_share``)."""
    import torch

    from deblurkit.synth.presets import SynthConfig
    from deblurkit.synth.trajectory import random_pauses

    return random_pauses(torch.Generator().manual_seed(seed * 100003 + index), SynthConfig().pause_share)


def blur_srgb(sharp_srgb: np.ndarray, kernel: np.ndarray, noise: tuple[float, float] | None = None,
              seed: int = 0) -> np.ndarray:
    """``sharp_srgb`` ``(H, W, 3)`` in [0, 1] blurred by ``kernel`` in linear light, back in sRGB.

    ``noise``: ``(shot gain, read variance)`` of Poisson–Gaussian sensor noise added in linear light
    (:func:`deblurkit.synth.isp.add_poisson_gaussian_noise`, seeded by ``seed``); a gray image
    (three equal channels) gets one noise image on all three.
    """
    import torch

    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.synth.blur import convolve_fft
    from deblurkit.synth.isp import add_poisson_gaussian_noise

    gray = bool(np.all(sharp_srgb == sharp_srgb[..., :1]))
    lin = srgb_to_linear(sharp_srgb[..., :1] if gray else sharp_srgb)
    x = torch.from_numpy(lin.transpose(2, 0, 1)[None].copy()).float()
    out = convolve_fft(x, torch.from_numpy(kernel)[None, None].float()).clamp(0.0, 1.0)
    if noise is not None:
        out = add_poisson_gaussian_noise(out, torch.tensor([noise[0]]), torch.tensor([noise[1]]),
                                         torch.Generator().manual_seed(seed)).clamp(0.0, 1.0)
    out = out[0].numpy().transpose(1, 2, 0)
    return np.clip(linear_to_srgb(np.repeat(out, 3, axis=2) if gray else out), 0.0, 1.0)


def write_sets(root: Path, items: list[dict], out: Path, set_name: str, seed: int, noise: bool = False
               ) -> dict[str, int]:
    """Write ``out/even/<set_name>`` and ``out/paused/<set_name>``; the number of pairs each.

    ``noise``: add each pair's recorded sensor noise (``shot_noise``, ``read_noise_var`` of its
    ``meta.json`` entry), the same noise draw in both folders."""
    import torch

    from deblurkit.io import load_image_rgb, save_png
    from deblurkit.synth.blur import render_psf
    from deblurkit.synth.trajectory import retime_with_pauses

    kept = {"even": [], "paused": []}
    for item in items:
        traj = item.get("params", {}).get("trajectory_px")
        if not traj:
            continue  # not a uniform shake (rotational or no blur)
        index = item["index"]
        xy = torch.tensor(traj, dtype=torch.float64)
        pauses = pauses_for(index, seed)
        sharp = load_image_rgb(root / "sharp" / f"{index:03d}.png")
        params = item["params"]
        sensor = ((params["shot_noise"], params["read_noise_var"])
                  if noise and params.get("noise_model", "none") != "none" else None)
        for kind, path in (("even", xy), ("paused", retime_with_pauses(xy, pauses))):
            kernel = render_psf(path).numpy()
            folder = out / kind / set_name
            save_png(folder / "blur" / f"{index:03d}.png", blur_srgb(sharp, kernel, sensor, seed=seed * 100003 + index))
            save_png(folder / "sharp" / f"{index:03d}.png", sharp)
            (folder / "kernels").mkdir(parents=True, exist_ok=True)
            np.save(folder / "kernels" / f"{index:03d}.npy", kernel)
            kept[kind].append({"index": index, "photo": item["photo"], "kernel": f"kernels/{index:03d}.npy",
                               "pauses": pauses if kind == "paused" else [], "source": str(root)})
    for kind, rows in kept.items():
        if rows:
            (out / kind / set_name / "meta.json").write_text(json.dumps({"set": set_name, "items": rows}, indent=1))
    return {kind: len(rows) for kind, rows in kept.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--testsets", default="data/valsets", help="folder of the test sets whose paths are re-used")
    ap.add_argument("--set", default="capture", help="set name (uniform-shake pairs with trajectories)")
    ap.add_argument("--every", type=int, default=2, help="use every n-th pair")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", action="store_true", help="add each pair's recorded sensor noise (same draw in both)")
    ap.add_argument("--out", default="data/valsets-paused", help="writes OUT/even/<set> and OUT/paused/<set>")
    args = ap.parse_args(argv)
    found = set_items(args.testsets, args.set, None)
    if found is None:
        return 2
    root, items = found
    counts = write_sets(root, items[::max(1, args.every)], Path(args.out), args.set, args.seed, args.noise)
    if not counts["even"]:
        print(f"paused_shake: {root}: no pair with a recorded trajectory", file=sys.stderr)
        return 2
    print(f"wrote {counts['even']} pairs each to {Path(args.out) / 'even' / args.set} and "
          f"{Path(args.out) / 'paused' / args.set}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
