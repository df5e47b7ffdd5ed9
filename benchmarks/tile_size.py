#!/usr/bin/env python3
"""Automatic tile size of a network: seconds and PSNR per tile size on blurred photos.

    python benchmarks/tile_size.py                              # nafnet-w16, tiles 512 and 1024
    python benchmarks/tile_size.py --tiles 512 768 1024 --photos 5

Takes ``--photos`` photos at least ``--size`` large from ``data/photos`` (``scripts/fetch_photos.py``),
chosen with ``--seed``, crops their centre to ``--size`` (no resampling), blurs them with a
horizontal 15-px box in sRGB values, and runs the network once (no self-ensemble) on the whole
image (``tile=0``) and with each tile size (overlap 64, the library's blending). Prints, per tile
size, the seconds and the PSNR (dB) of the output against the sharp crop and against the whole-image
output. Tiles are an approximation for networks whose receptive field exceeds the overlap
(docs/models.md, "Tiling"); larger tiles have fewer seams.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="nafnet-w16")
    ap.add_argument("--tiles", nargs="+", type=int, default=[512, 1024])
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--size", default="1920x1280", help="WxH of the centre crop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photo-dir", default=str(ROOT / "data/photos"))
    args = ap.parse_args(argv)

    import cv2
    import numpy as np

    from deblurkit.eval.metrics import psnr as psnr_range
    from deblurkit.infer import load_restorer
    from deblurkit.io import load_image_rgb

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return psnr_range(a, b, data_range=1.0)

    w, h = (int(v) for v in args.size.lower().split("x"))
    files = sorted(p for p in Path(args.photo_dir).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        print(f"no photos under {args.photo_dir}: run scripts/fetch_photos.py first", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    crops = []
    for i in rng.permutation(len(files)):
        img = load_image_rgb(files[i])
        if img.shape[0] >= h and img.shape[1] >= w:
            top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
            crops.append((files[i].name, np.ascontiguousarray(img[top:top + h, left:left + w, :3])))
        if len(crops) == args.photos:
            break
    box = np.full((1, 15), 1.0 / 15, np.float32)
    runs = {t: load_restorer(args.model, tile=t, self_ensemble=False) for t in (0, *args.tiles)}
    totals: dict[int, list[float]] = {t: [0.0, 0.0, 0.0] for t in args.tiles}
    for name, sharp in crops:
        blur = np.clip(cv2.filter2D(sharp, -1, box, borderType=cv2.BORDER_REFLECT), 0.0, 1.0)
        whole = runs[0].restore_rgb(blur)
        line = [f"{name[:28]:<28} whole {psnr(whole, sharp):6.2f} dB"]
        for t in args.tiles:
            t0 = time.perf_counter()
            out = runs[t].restore_rgb(blur)
            sec = time.perf_counter() - t0
            vs_sharp, vs_whole = psnr(out, sharp), psnr(out, whole)
            totals[t] = [totals[t][0] + sec, totals[t][1] + vs_sharp, totals[t][2] + vs_whole]
            line.append(f"| {t}: {sec:5.2f} s, {vs_sharp:6.2f} dB, {vs_whole:5.1f} dB vs whole")
        print(" ".join(line), flush=True)
    n = max(len(crops), 1)
    for t, (sec, vs_sharp, vs_whole) in totals.items():
        print(f"tile {t}: mean {sec / n:.2f} s, {vs_sharp / n:.3f} dB against the sharp crop, "
              f"{vs_whole / n:.1f} dB against the whole-image output ({len(crops)} photos, {w}x{h})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
