#!/usr/bin/env python3
"""Before/after contact sheet of a restorer on real blurry photos, with the estimated kernel beside each.

    python -m studies.real_blur_sheet                                   # default restorer, default photos
    python -m studies.real_blur_sheet --restorer kernel-deconv --kernels pipeline --out docs/images/real-blur/kd.png
    python -m studies.real_blur_sheet --kernels new=deblurkit.kernel_aware.estimation:estimate_kernel

Real blur has no ground truth, so this is a visual check. Photos come from ``--data`` (default
``../shared/data/real-blur`` beside the project: Köhler et al. 2012 recorded 6-DoF shakes,
RealBlur-J frames incl. night lights, Pan et al. 2016 inputs incl. a saturated night scene,
handheld phone photos); they are research data, never copied into the repository. Each row:
the whole photo before and after (downscaled, sRGB-encoded for viewing), a 1:1 crop before and
after (the most textured ``--crop`` square), and the kernel that ``--kernels`` finds: an estimator
of ``studies.blind_benchmark``, ``pipeline`` (the blind pipeline's global kernel with its
decision, from the sRGB photo as the restorer gets it; ``--params`` for its settings, e.g.
``decision=learned``, the default restorer's decision), ``shipped``, ``NAME=module:function``
(from the photo's normalised linear luminance), or ``none``. The kernel
is shown magnified, brightest = white, or marked "declined" where the estimator returns none.
Photos of the ``--linear`` subfolders (default: Köhler et al.'s, stored in linear light) are
sRGB-encoded before anything else, as ``deblurkit deblur --input-space linear`` does. Writes one
PNG (and a ``.json`` beside it with the timings and settings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from studies.blind_benchmark import blind_params, parse_params, resolve_estimator, working_luminance

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real-blur"
DEFAULT_IMAGES = [
    "koehler2012/Blurry1_1.png",
    "koehler2012/Blurry4_8.png",
    "realblur-j/scene075_blur_05.png",
    "realblur-j/scene050_blur_07.png",
    "pan2016/las_vegas_saturated.png",
    "phone/set002_001_IMG_20190504_083343_BURST21.png",
]


LINEAR_FOLDERS = ["koehler2012"]
"""Köhler et al. 2012's photos are raw-derived (Canon SRAW2) linear intensities, dark when shown
as sRGB; decoded as sRGB once more, their shakes no longer fit a convolution and the kernel
estimates collapse to blobs."""


def most_textured_crop(img: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` square with the largest mean gradient magnitude (stride size/4)."""
    g = img.mean(axis=2)
    e = np.zeros_like(g)
    e[:, 1:] += np.abs(np.diff(g, axis=1))
    e[1:, :] += np.abs(np.diff(g, axis=0))
    ii = np.pad(e.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = g.shape
    size = min(size, h, w)
    best, arg = -1.0, (0, 0)
    for y in range(0, h - size + 1, max(1, size // 4)):
        for x in range(0, w - size + 1, max(1, size // 4)):
            v = ii[y + size, x + size] - ii[y, x + size] - ii[y + size, x] + ii[y, x]
            if v > best:
                best, arg = v, (y, x)
    return arg


def kernel_panel(kernel: np.ndarray | None, side: int) -> np.ndarray:
    """The kernel magnified to ``side`` px (nearest), max = white; grey with a cross where declined."""
    import cv2

    if kernel is None:
        panel = np.full((side, side, 3), 64, np.uint8)
        cv2.line(panel, (8, 8), (side - 9, side - 9), (150, 150, 150), 2)
        cv2.line(panel, (8, side - 9), (side - 9, 8), (150, 150, 150), 2)
        return panel.astype(np.float32) / 255.0
    k = np.asarray(kernel, np.float32)
    k = k / max(float(k.max()), 1e-12)
    big = cv2.resize(k, (side, side), interpolation=cv2.INTER_NEAREST)
    return np.repeat(big[..., None], 3, axis=2)


def label(img: np.ndarray, text: str) -> np.ndarray:
    """``img`` with ``text`` in a dark strip at its top-left."""
    import cv2

    out = np.clip(img, 0.0, 1.0)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    out[: th + 6, : tw + 6] *= 0.3
    u8 = np.ascontiguousarray((out * 255.0 + 0.5).astype(np.uint8))  # OpenCV draws text on 8-bit images
    cv2.putText(u8, text, (3, th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return u8.astype(np.float32) / 255.0


def sheet_row(before: np.ndarray, after: np.ndarray, kernel: np.ndarray | None, name: str, *,
              width: int, crop: int, kernel_side: int, seconds: float) -> np.ndarray:
    """One row: whole before/after (downscaled to ``width``), 1:1 crops, kernel panel."""
    import cv2

    h, w = before.shape[:2]
    height = round(h * width / w)
    small = [cv2.resize(x, (width, height), interpolation=cv2.INTER_AREA) for x in (before, after)]
    y, x = most_textured_crop(before, crop)
    c = min(crop, h, w)
    crops = [x_[y:y + c, x:x + c] for x_ in (before, after)]
    row_h = max(height, c, kernel_side)

    def fit(p: np.ndarray) -> np.ndarray:
        return np.pad(p, ((0, row_h - p.shape[0]), (0, 0), (0, 0)), constant_values=1.0)

    k_label = "declined" if kernel is None else f"kernel {kernel.shape[0]} px"
    panels = [label(small[0], f"{name}  before"), label(small[1], f"after ({seconds:.0f} s)"),
              label(crops[0], "1:1 before"), label(crops[1], "1:1 after"),
              label(kernel_panel(kernel, kernel_side), k_label)]
    gap = np.ones((row_h, 4, 3), np.float32)
    parts: list[np.ndarray] = []
    for p in panels:
        parts += [fit(p), gap]
    return np.concatenate(parts[:-1], axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--restorer", default="default", help="a name or path for deblurkit's load_restorer")
    ap.add_argument("--kernels", default="pipeline",
                    help="estimator whose kernel is shown: pipeline, shipped, NAME=module:function, or none")
    ap.add_argument("--params", nargs="*", default=[], metavar="KEY=VALUE",
                    help="BlindParams fields of the pipeline estimator and the restorer's kernel stage "
                         "(e.g. decision=learned, the default restorer's decision)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="folder holding the real-blur subfolders")
    ap.add_argument("--images", nargs="+", default=DEFAULT_IMAGES, help="paths relative to --data")
    ap.add_argument("--linear", nargs="*", default=LINEAR_FOLDERS,
                    help="subfolders whose photos are stored in linear light: sRGB-encoded first, as "
                         "`deblurkit deblur --input-space linear` does")
    ap.add_argument("--width", type=int, default=200, help="width of the downscaled whole photos")
    ap.add_argument("--crop", type=int, default=144, help="side of the 1:1 crops")
    ap.add_argument("--kernel-side", type=int, default=96, help="side of the magnified kernel panel")
    ap.add_argument("--out", default=str(ROOT / "docs/images/real-blur/default.png"))
    args = ap.parse_args(argv)

    from deblurkit.color import linear_to_srgb
    from deblurkit.infer import load_restorer
    from deblurkit.io import atomic_write, load_image_rgb, save_png

    data = Path(args.data)
    if not data.is_dir():
        print(f"no real-blur data at {data} (it lives beside the project; pass --data)", file=sys.stderr)
        return 2
    params = parse_params(args.params)
    restorer = load_restorer(args.restorer, blind_params=blind_params(params))
    estimator = None if args.kernels == "none" else resolve_estimator(args.kernels, params)[1]
    rows, info = [], []
    for rel in args.images:
        img = load_image_rgb(data / rel)
        if Path(rel).parts[0] in args.linear:
            img = linear_to_srgb(img)
        t0 = time.perf_counter()
        out = np.clip(restorer.restore_rgb(img), 0.0, 1.0)
        seconds = time.perf_counter() - t0
        kernel = None
        if estimator is not None:
            # From the sRGB photo where the estimator takes it (the pipeline: its clipped-pixel map,
            # its colour deconvolution for the learned decision), as the restorer gets it.
            kernel = estimator.from_srgb(img) if hasattr(estimator, "from_srgb") else estimator(working_luminance(img))
        rows.append(sheet_row(img, out, kernel, Path(rel).parent.name + "/" + Path(rel).stem, width=args.width,
                              crop=args.crop, kernel_side=args.kernel_side, seconds=seconds))
        info.append({"image": rel, "seconds": round(seconds, 1),
                     "kernel_size": None if kernel is None else int(np.asarray(kernel).shape[0]),
                     "changed": bool(np.abs(out - img).max() > 1.0 / 255),
                     # the pipeline estimator's tile scores, the learned decision's predictions included
                     "scores": getattr(estimator, "scores", None)})
        print(f"{rel}: {seconds:.1f} s, kernel {info[-1]['kernel_size']}", file=sys.stderr)
    width = max(r.shape[1] for r in rows)
    gap = np.ones((6, width, 3), np.float32)
    parts: list[np.ndarray] = []
    for r in rows:
        parts += [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=1.0), gap]
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_png(out_path, np.concatenate(parts[:-1], axis=0))
    with atomic_write(out_path.with_suffix(".json"), "w") as fh:
        json.dump({"restorer": args.restorer, "kernels": args.kernels, "data": os.path.relpath(data, ROOT),
                   "linear": args.linear, "images": info,
                   "command": "python -m studies.real_blur_sheet " + " ".join(sys.argv[1:] if argv is None else argv)},
                  fh, indent=1)
    print(f"wrote {out_path} ({out_path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
