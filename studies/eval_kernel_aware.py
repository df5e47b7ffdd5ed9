#!/usr/bin/env python3
"""Evaluate the kernel-aware pipeline (design (b)) on the held-out test sets.

    python -m studies.make_testsets && python -m studies.eval_kernel_aware

For every set in ``data/testsets/`` and every pair, reports PSNR/SSIM (sRGB, data_range 1,
no border crop) of:

* ``identity``   the blurry input itself;
* ``blind``      :func:`deblurkit.kernel_aware.blind.deblur_image` (no knowledge of the kernel);
* ``rl-true``    Richardson-Lucy (30 iterations) with the TRUE kernel, in linear light;
* ``hl-true``    hyper-Laplacian deconvolution with the TRUE kernel (same weight and brightness
                 normalisation as blind).

True-kernel rows exist only for sets with a uniform PSF. Writes a JSON with per-image
numbers and a Markdown table (``--out``, default ``studies/results/kernel_aware.{json,md}``),
plus seconds per megapixel of the blind pipeline.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from studies.heldout import add_testset_arguments, load_pair, metrics, requested_sets, write_results

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.add_argument("--kernel-size", type=int, default=31)
    ap.add_argument("--tiles", default=None, help="blind tiles: int, 'ny,nx' or omitted (automatic)")
    ap.add_argument("--out", default=str(ROOT / "studies/results/kernel_aware"))
    args = ap.parse_args(argv)

    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.kernel_aware.blind import BlindParams, deblur_image_and_kernels, deconvolve_with_kernel
    from deblurkit.kernel_aware.deconv import richardson_lucy_deconv

    tiles = None
    if args.tiles:
        parts = [int(v) for v in args.tiles.split(",")]
        tiles = parts[0] if len(parts) == 1 else (parts[0], parts[1])
    params = BlindParams()
    t_start = time.time()
    rows, per_image = [], []
    blind_time, blind_mp = 0.0, 0.0
    for set_name, root, items in requested_sets(args):
        acc: dict[str, list[tuple[float, float]]] = {}
        for it in items:
            i = it["index"]
            blur, gt = load_pair(root, i)
            res = {"identity": metrics(blur, gt)}
            t0 = time.time()
            r = deblur_image_and_kernels(blur, kernel_size=args.kernel_size, tiles=tiles, params=params)
            dt = time.time() - t0
            blind_time += dt
            blind_mp += blur.shape[0] * blur.shape[1] / 1e6
            res["blind"] = metrics(r.image, gt)
            if it.get("kernel"):
                k = np.load(root / it["kernel"]).astype(np.float64)
                lin = srgb_to_linear(blur)
                res["rl-true"] = metrics(linear_to_srgb(richardson_lucy_deconv(lin, k, iterations=30)), gt)
                res["hl-true"] = metrics(linear_to_srgb(deconvolve_with_kernel(lin, k, params)), gt)
            for key, v in res.items():
                acc.setdefault(key, []).append(v)
            per_image.append({"set": set_name, "index": i, "photo": it["photo"], "seconds_blind": round(dt, 3),
                              "blur_detected": bool(r.blurred.any()), "noise_sigma": round(r.noise_sigma, 5),
                              **{k: [round(a, 3), round(b, 4)] for k, (a, b) in res.items()}})
            print(f"{set_name}/{i:03d} " + " ".join(f"{k}={v[0]:.2f}" for k, v in res.items()) + f" ({dt:.1f}s)",
                  file=sys.stderr)
        row = {"set": set_name, "n": len(items)}
        for key, vals in acc.items():
            arr = np.array(vals)
            row[key] = [round(float(arr[:, 0].mean()), 2), round(float(arr[:, 1].mean()), 4)]
        worst = min(p["blind"][0] - p["identity"][0] for p in per_image if p["set"] == set_name)
        row["blind_minus_identity_worst_db"] = round(worst, 2)
        rows.append(row)
    total = time.time() - t_start
    summary = {"rows": rows, "per_image": per_image, "blind_seconds_per_megapixel": round(blind_time / max(blind_mp, 1e-9), 2),
               "kernel_size": args.kernel_size, "tiles": args.tiles, "params": params.__dict__,
               "wall_seconds": round(total, 1), "command": "python -m studies.eval_kernel_aware " + " ".join(argv or sys.argv[1:])}
    lines = ["| set | n | identity PSNR/SSIM | blind | blind − input (mean / worst) dB | RL true k | HL true k | blind − RL true dB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def f(key: str, r: dict = r) -> str:
            return f"{r[key][0]:.2f} / {r[key][1]:.3f}" if key in r else "–"

        gain = r["blind"][0] - r["identity"][0]
        vs_rl = f"{r['blind'][0] - r['rl-true'][0]:+.2f}" if "rl-true" in r else "–"
        lines.append(f"| {r['set']} | {r['n']} | {f('identity')} | {f('blind')} | {gain:+.2f} / {r['blind_minus_identity_worst_db']:+.2f} "
                     f"| {f('rl-true')} | {f('hl-true')} | {vs_rl} |")
    lines.append("")
    lines.append(f"Blind pipeline: {summary['blind_seconds_per_megapixel']} s/MP on these crops; whole run {total:.0f} s.")
    write_results(args.out, summary, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
