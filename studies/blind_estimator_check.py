#!/usr/bin/env python3
"""The blind kernel estimator against the true kernels of the synthetic uniform-shake sets.

    python -m studies.blind_estimator_check --testsets data/valsets --limit 12 --out studies/results/blind_estimator_val
    python -m studies.blind_estimator_check --testsets data/testsets --out studies/results/blind_estimator_test

Per image of each set (``--sets``, default ``uniform``): the estimator's candidates
(:func:`deblurkit.kernel_aware.estimation.estimate_kernel_candidates`, kernel size found per
image) run on the normalised linear luminance exactly as the blind pipeline prepares it; each
kernel, and the true one, is then used by the pipeline's deconvolution step (same brightness
scale, noise-adapted hyper-Laplacian weight; ``blind.deconvolve_with_kernel``). Columns:

* kernel similarity to the truth (max normalised cross-correlation over shifts) per candidate,
  and the agreement of the two candidates (the pipeline's gate);
* PSNR (sRGB, clipped, no crop) of the blurry input, of the deconvolution with each kernel;
* shift-aligned PSNR: the best over integer shifts of at most 4 px, 16-px border crop (in the
  spirit of Levin et al.'s ``comp_upto_shift``), for the default kernel and the true one, and the
  **error ratio** ``MSE(estimate) / MSE(true kernel)`` from the aligned PSNRs (success: <= 2);
* the gated gain: the default kernel's gain where the candidates agree at or above each
  threshold of ``GATE_THRESHOLDS``, 0 elsewhere (the pipeline then leaves the image unchanged).

Writes ``--out`` ``.json`` (per image) and ``.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from deblurkit.kernel_aware.estimation import EstimatorParams
from studies.heldout import ROOT, add_testset_arguments, load_pair, metrics, requested_sets, write_results

GATE_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Agreement thresholds scored for the pipeline's gate."""


def aligned_psnr(out: np.ndarray, gt: np.ndarray, *, reach: int = 4, border: int = 16) -> float:
    """Best PSNR (dB, range 1) of ``out`` against ``gt`` over integer shifts up to ``reach`` px."""
    h, w = gt.shape[:2]
    ref = gt[border:h - border, border:w - border].astype(np.float64)
    best = 0.0
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            cand = out[border + dy:h - border + dy, border + dx:w - border + dx].astype(np.float64)
            mse = float(np.mean((np.clip(cand, 0.0, 1.0) - ref) ** 2))
            best = max(best, 10.0 * np.log10(1.0 / max(mse, 1e-12)))
    return best


def large_shake_pair(photo: Path, rng: np.random.Generator, *, side: int = 1024,
                     length: tuple[float, float] = (30.0, 75.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blurry, sharp, kernel): a centred ``side`` crop of ``photo`` blurred in linear light by a
    random shake of ``length`` px (no noise, no camera pipeline), both sRGB in [0, 1]."""
    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.io import load_image_rgb
    from deblurkit.kernel_aware.deconv import convolve_fft
    from deblurkit.synth.trajectory import random_shake_kernel

    img = load_image_rgb(photo)
    h, w = img.shape[:2]
    s = min(side, h, w)
    sharp = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    ln = float(rng.uniform(*length))
    size = int(ln) + 5 | 1
    k = random_shake_kernel(size, ln, rng).astype(np.float32)
    blurred = linear_to_srgb(convolve_fft(srgb_to_linear(sharp), k))
    # the border band depends on wrapped pixels: score the interior only
    m = size
    return blurred[m:-m, m:-m], sharp[m:-m, m:-m], k


def check_image(root: Path | None, item: dict) -> dict:
    """All numbers for one pair of a set folder (``root``), or a large-shake pair (``item``
    holding ``blur``, ``sharp`` and ``kernel_array``)."""
    from deblurkit.color import linear_to_srgb, luminance, srgb_to_linear, working_scale
    from deblurkit.kernel_aware.estimation import estimate_kernel_candidates
    from deblurkit.kernel_aware.kernels import kernel_similarity
    from deblurkit.kernel_aware.blind import deconvolve_with_kernel

    if root is None:
        blur, sharp, k_true = item.pop("blur"), item.pop("sharp"), item.pop("kernel_array")
    else:
        blur, sharp = load_pair(root, item["index"])
        k_true = np.load(root / item["kernel"])
    lin = srgb_to_linear(blur)
    gray = luminance(lin)
    t0 = time.perf_counter()
    kernel_size = item.get("kernel_size")
    cands = estimate_kernel_candidates(gray / working_scale(gray), kernel_size=None,
                                       params=None if kernel_size is None else EstimatorParams(max_kernel_size=kernel_size))
    seconds = time.perf_counter() - t0
    p_blur = metrics(blur, sharp)[0]
    row: dict = {"index": item["index"], "true_size": int(k_true.shape[0]), "blurry": p_blur, "seconds": seconds}
    outs = {}
    for c in cands:
        out = np.clip(linear_to_srgb(deconvolve_with_kernel(lin, c.kernel)), 0.0, 1.0)
        outs[c.setting] = out
        row[c.setting] = {"similarity": kernel_similarity(c.kernel, k_true), "size": int(c.kernel.shape[0]),
                          "psnr": metrics(out, sharp)[0]}
    out_true = np.clip(linear_to_srgb(deconvolve_with_kernel(lin, k_true)), 0.0, 1.0)
    row["true"] = {"psnr": metrics(out_true, sharp)[0]}
    main = cands[0].setting
    row["agreement"] = kernel_similarity(cands[0].kernel, cands[1].kernel) if len(cands) > 1 else 1.0
    a_est, a_true = aligned_psnr(outs[main], sharp), aligned_psnr(out_true, sharp)
    row["aligned"] = {"estimate": a_est, "true": a_true, "blurry": aligned_psnr(blur, sharp)}
    row["error_ratio"] = float(10 ** ((a_true - a_est) / 10))
    return row


def summarise(set_name: str, rows: list[dict]) -> list[str]:
    """Markdown lines for one set."""
    names = [k for k in rows[0] if isinstance(rows[0][k], dict) and "similarity" in rows[0][k]]
    main = names[0]
    lines = [f"### {set_name} ({len(rows)} images)", "",
             "| image | true size | est size | similarity " + " | ".join(names) + " | agreement | blurry | est | true "
             "| aligned est | aligned true | error ratio |",
             "|---" * (9 + len(names)) + "|"]
    for r in rows:
        sims = " | ".join(f"{r[n]['similarity']:.3f}" for n in names)
        lines.append(f"| {r['index']:03d} | {r['true_size']} | {r[main]['size']} | {sims} | {r['agreement']:.3f} "
                     f"| {r['blurry']:.2f} | {r[main]['psnr']:.2f} | {r['true']['psnr']:.2f} "
                     f"| {r['aligned']['estimate']:.2f} | {r['aligned']['true']:.2f} | {r['error_ratio']:.2f} |")
    gain = lambda key: float(np.mean([r[key]["psnr"] - r["blurry"] for r in rows]))
    er = np.array([r["error_ratio"] for r in rows])
    lines += ["", f"Mean gain over the blurry input: " + ", ".join(f"{n} {gain(n):+.2f} dB" for n in names)
              + f", true kernel {gain('true'):+.2f} dB. Aligned PSNR: estimate "
              f"{np.mean([r['aligned']['estimate'] for r in rows]):.2f}, true "
              f"{np.mean([r['aligned']['true'] for r in rows]):.2f} dB. Error ratio <= 2: {np.mean(er <= 2):.0%}, "
              f"<= 3: {np.mean(er <= 3):.0%}. Mean similarity: "
              + ", ".join(f"{n} {np.mean([r[n]['similarity'] for r in rows]):.3f}" for n in names)
              + f". Estimation {np.mean([r['seconds'] for r in rows]):.1f} s per image (all candidates).", "",
              "| gate: agreement >= | kept | gated gain (dB) |", "|---|---|---|"]
    for t in GATE_THRESHOLDS:
        kept = [r for r in rows if r["agreement"] >= t]
        gated = np.mean([(r[main]["psnr"] - r["blurry"]) if r["agreement"] >= t else 0.0 for r in rows])
        lines.append(f"| {t:.2f} | {len(kept)}/{len(rows)} | {gated:+.2f} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.set_defaults(sets=["uniform"])
    ap.add_argument("--large", type=int, default=0,
                    help="also N large-shake pairs (30-75 px on 1024-px crops of data/photos, seed 0; kernel_size 81)")
    ap.add_argument("--out", default=str(ROOT / "studies/results/blind_estimator_test"))
    args = ap.parse_args(argv)
    results: dict = {}
    lines = [f"Blind kernel estimator vs the true kernels (`{Path(args.testsets).name}`).", ""]
    t0 = time.perf_counter()
    for set_name, root, items in requested_sets(args):
        rows = []
        for it in items:
            rows.append(check_image(root, it))
            r = rows[-1]
            print(f"{set_name}/{r['index']:03d}: similarity {r['default']['similarity']:.3f} agreement "
                  f"{r['agreement']:.3f} error ratio {r['error_ratio']:.2f}", flush=True)
        results[set_name] = rows
        lines += summarise(set_name, rows)
    if args.large:
        photos = sorted((ROOT / "data/photos").rglob("*.jpg"))
        rng = np.random.default_rng(0)
        rows = []
        for i, j in enumerate(rng.choice(len(photos), size=args.large, replace=False)):
            blur, sharp, k = large_shake_pair(photos[int(j)], rng)
            rows.append(check_image(None, {"index": i, "blur": blur, "sharp": sharp, "kernel_array": k,
                                           "kernel_size": 81}))
            print(f"large/{i:03d} ({photos[int(j)].name}, {k.shape[0]} px): similarity "
                  f"{rows[-1]['default']['similarity']:.3f} error ratio {rows[-1]['error_ratio']:.2f}", flush=True)
        results["large"] = rows
        lines += summarise("large shake (30-75 px, 1024-px crops, clean)", rows)
    cmd = "python -m studies.blind_estimator_check " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    lines.append(f"Whole run {time.perf_counter() - t0:.0f} s: `{cmd}`")
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
