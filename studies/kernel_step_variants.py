#!/usr/bin/env python3
"""Do the reference methods' kernel-step choices help this estimator?

    python -m studies.kernel_step_variants --testsets data/valsets --sets capture uniform --limit 44

Read beside the reference methods, :func:`deblurkit.kernel_aware.estimation.estimate_kernel`
makes several choices they make differently. Each variant here is the shipped coarse-to-fine loop,
written out with the library's own steps (:func:`~deblurkit.kernel_aware.estimation.l0_latent`,
:func:`~deblurkit.kernel_aware.estimation.select_edges_by_orientation`,
:func:`~deblurkit.kernel_aware.estimation.kernel_least_squares`,
:func:`~deblurkit.kernel_aware.estimation.clean_kernel`), with one change:

* ``uniform start``: every kernel solve starts its conjugate gradients from a uniform kernel, as
  Pan et al.'s reference code does, instead of from the current kernel;
* ``valid data term``: the kernel's least squares read only the blurry pixels whose blur lies
  wholly inside the image (Perrone & Favaro 2014's valid convolution), where the shipped step
  wraps around the borders; ``valid data term, finest level``: only at full resolution;
* ``cubic kernel upsampling``: between pyramid levels the kernel is resampled by a cubic instead
  of a bilinear filter (a bilinear resampling widens a thin stroke);
* ``latent upsampling``: each finer level starts with a kernel solve from the coarser level's
  latent image, upsampled (Anger, Facciolo & Delbracio 2019), before the usual alternation;
* ``r-map edges``: only latent gradients where the blurry image's gradients agree in direction
  over a 5 x 5 window, ``|sum grad b| / (sum |grad b| + 0.5/255) >= 0.2``, enter the kernel step
  (Xu & Jia 2010's r-map: texture narrower than the kernel misleads it);
* ``denoised input``: the estimate is made on the blurry luminance denoised by total variation
  (weight: the blind noise estimate).

``as shipped`` is the loop without a change; the study checks that it returns the library's
kernel exactly. Every kernel is deconvolved by (b)'s step
(:func:`deblurkit.kernel_aware.blind.deconvolve_with_kernel`) on the image's linear values, as
``studies/kernel_estimation_study.py`` scores its settings: kernel similarity to the truth,
median effective support over the truth's, PSNR gain (sRGB) mean and worst, and the
oracle-gated gain ``mean(max(gain, 0))``. Writes ``--out`` ``.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from studies.heldout import ROOT, add_testset_arguments, kernel_pairs, write_results
from studies.kernel_estimation_study import deconvolution_scores, estimation_pair

KERNEL_SIZE, LAM, LAM_MIN, ITERATIONS, GAMMA, CUT = 31, 8e-3, 1e-4, 5, 2.0, 0.15
"""The shipped estimator's defaults (:func:`deblurkit.kernel_aware.estimation.estimate_kernel`)."""

VARIANTS: dict[str, dict] = {
    "as shipped": {},
    "uniform start": {"uniform_start": True},
    "valid data term": {"valid": "every level"},
    "valid data term, finest level": {"valid": "finest"},
    "cubic kernel upsampling": {"upsample": "cubic"},
    "latent upsampling": {"latent_upsampling": True},
    "r-map edges": {"r_map": 0.2},
    "denoised input": {"denoise": True},
}
"""The changes measured, each alone (keys of :func:`estimate`'s options)."""


def valid_least_squares(lx: np.ndarray, ly: np.ndarray, blur: np.ndarray, ksize: int, gamma: float,
                        init: np.ndarray, cg_iters: int = 20) -> np.ndarray:
    """:func:`~deblurkit.kernel_aware.estimation.kernel_least_squares` over the valid pixels only:
    those at least ``ksize // 2`` px inside the image (and off the last row / column, whose forward
    difference is not one), so no term wraps around a border. Same weight and iterations."""
    from scipy import fft
    from scipy.sparse.linalg import LinearOperator, cg

    from deblurkit.kernel_aware.estimation import forward_gradients

    shape, r = lx.shape, ksize // 2
    mask = np.zeros(shape)
    mask[r:shape[0] - r - 1, r:shape[1] - r - 1] = 1.0
    bx, by = forward_gradients(blur)
    flx, fly = fft.rfft2(lx), fft.rfft2(ly)
    reg = gamma * float((np.abs(flx) ** 2 + np.abs(fly) ** 2).mean()) * 1e-3 + 1e-12

    def adjoint(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
        full = fft.irfft2(np.conj(flx) * fft.rfft2(rx) + np.conj(fly) * fft.rfft2(ry), s=shape)
        return np.roll(full, (r, r), axis=(0, 1))[:ksize, :ksize]

    def forward(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        padded = np.zeros(shape)
        padded[:ksize, :ksize] = k
        spectrum = fft.rfft2(np.roll(padded, (-r, -r), axis=(0, 1)))
        return fft.irfft2(flx * spectrum, s=shape) * mask, fft.irfft2(fly * spectrum, s=shape) * mask

    def apply(k: np.ndarray) -> np.ndarray:
        return adjoint(*forward(k)) + reg * k

    n = ksize * ksize
    normal = LinearOperator((n, n), matvec=lambda v: apply(v.reshape(ksize, ksize)).ravel(), dtype=np.float64)
    # A fixed number of iterations, as the shipped step (no tolerance stop).
    k, _ = cg(normal, adjoint(bx * mask, by * mask).ravel(), x0=init.astype(np.float64).ravel(), rtol=0.0,
              atol=0.0, maxiter=cg_iters)
    return k.reshape(ksize, ksize)


def r_map(blur: np.ndarray, window: int = 5) -> np.ndarray:
    """Xu & Jia's ``r = |sum grad b| / (sum |grad b| + 0.5/255)`` over ``window`` x ``window``."""
    import cv2

    from deblurkit.kernel_aware.estimation import forward_gradients

    bx, by = forward_gradients(blur.astype(np.float32))
    box = {"ddepth": -1, "ksize": (window, window), "normalize": False, "borderType": cv2.BORDER_REFLECT}
    summed = np.hypot(cv2.boxFilter(bx, **box), cv2.boxFilter(by, **box))
    return summed / (cv2.boxFilter(np.hypot(bx, by), **box) + 0.5 / 255)


def estimate(gray: np.ndarray, options: dict) -> np.ndarray:
    """The shipped estimator's coarse-to-fine loop with ``options`` (:data:`VARIANTS`)."""
    import cv2

    from deblurkit.kernel_aware.blind import estimate_noise_sigma
    from deblurkit.kernel_aware.estimation import (
        center_kernel,
        clean_kernel,
        forward_gradients,
        kernel_least_squares,
        kernel_pyramid_sizes,
        l0_latent,
        select_edges_by_orientation,
    )
    from deblurkit.kernel_aware.kernels import resize_kernel

    if options.get("denoise"):
        from skimage.restoration import denoise_tv_chambolle

        gray = denoise_tv_chambolle(gray, weight=estimate_noise_sigma(gray)).astype(np.float32)
    sizes = kernel_pyramid_sizes(KERNEL_SIZE)
    k = np.zeros((3, 3))
    k[1, 0:2] = 0.5
    lam, latent = LAM, None

    def kernel_step(x: np.ndarray, y: np.ndarray, k: np.ndarray, finest: bool) -> np.ndarray:
        lx, ly = forward_gradients(x)
        if "r_map" in options:
            keep = r_map(y) >= options["r_map"]
            lx, ly = lx * keep, ly * keep
        lx, ly = select_edges_by_orientation(lx, ly, k.shape[0])
        init = np.full_like(k, 1.0 / k.size) if options.get("uniform_start") else k
        valid = options.get("valid") == "every level" or (options.get("valid") == "finest" and finest)
        solve = valid_least_squares if valid else kernel_least_squares
        return clean_kernel(solve(lx, ly, y, k.shape[0], GAMMA, init), rel_threshold=CUT)

    for level, ks in enumerate(sizes):
        finest = level == len(sizes) - 1
        scale = ks / KERNEL_SIZE
        shape = (max(round(gray.shape[0] * scale), 2 * ks), max(round(gray.shape[1] * scale), 2 * ks))
        interp = cv2.INTER_AREA if shape[0] < gray.shape[0] else cv2.INTER_LINEAR
        y = gray if finest else cv2.resize(gray.astype(np.float32), shape[::-1], interpolation=interp)
        if options.get("upsample") == "cubic":
            k = np.maximum(cv2.resize(k.astype(np.float32), (ks, ks), interpolation=cv2.INTER_CUBIC), 0.0)
            k = (k / k.sum()).astype(np.float64)
        else:
            k = resize_kernel(k, ks)
        if options.get("latent_upsampling") and latent is not None:
            up = cv2.resize(latent, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_LINEAR)
            k = kernel_step(up, y, k, finest)
        for _ in range(ITERATIONS):
            latent = l0_latent(y, k, lam)
            k = kernel_step(latent, y, k, finest)
            lam = max(lam / 1.1, LAM_MIN)
        k = center_kernel(k)
    return center_kernel(clean_kernel(k, rel_threshold=CUT)).astype(np.float32)


def study_image(job: tuple[str, int]) -> dict:
    """Every variant's kernel of one pair, scored; and the check of ``as shipped`` against the library."""
    from deblurkit.kernel_aware.estimation import estimate_kernel

    lin, gray, sharp, true_k, base = estimation_pair(job)
    kernels = {name: estimate(gray, options) for name, options in VARIANTS.items()}
    return {"index": job[1],
            "rows": {name: deconvolution_scores(lin, k, true_k, sharp, base)[0]
                     for name, k in {**kernels, "true kernel": true_k}.items()},
            "shipped_difference": float(np.abs(kernels["as shipped"] - estimate_kernel(gray)).max())}


def summarise(per_image: list[dict]) -> dict[str, dict[str, float]]:
    out = {}
    for name in [*VARIANTS, "true kernel"]:
        rows = [r["rows"][name] for r in per_image]
        gains = np.array([x["gain"] for x in rows])
        out[name] = {"similarity": float(np.mean([x["similarity"] for x in rows])),
                     "support_ratio": float(np.median([x["support_ratio"] for x in rows])),
                     "gain": float(gains.mean()), "worst": float(gains.min()),
                     "oracle_gated": float(np.maximum(gains, 0.0).mean()),
                     "better_than_shipped": int(sum(x["gain"] > r["rows"]["as shipped"]["gain"] + 0.1
                                                    for x, r in zip(rows, per_image, strict=True))),
                     "worse_than_shipped": int(sum(x["gain"] < r["rows"]["as shipped"]["gain"] - 0.1
                                                   for x, r in zip(rows, per_image, strict=True)))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.set_defaults(testsets=str(ROOT / "data/valsets"), sets=["capture", "uniform"])
    ap.add_argument("--workers", type=int, default=2, help="images estimated at once (one process each)")
    ap.add_argument("--out", default=str(ROOT / "studies/results/kernel_step_variants"))
    args = ap.parse_args(argv)

    t0 = time.time()
    results: dict = {"sets": {}, "variants": VARIANTS}
    lines = [(f"Kernel-step variants of the shipped estimator (`{Path(args.testsets).name}`): each the shipped "
              "coarse-to-fine loop with one change. Gains are (b)'s deconvolution step alone, PSNR dB (sRGB) over "
              "the blurry input; 'better / worse' counts the images that gain more than 0.1 dB more / less than "
              "with the shipped loop."), ""]
    for set_name, root, pairs in kernel_pairs(args):
        with ProcessPoolExecutor(max(1, args.workers)) as pool:
            per_image = list(pool.map(study_image, [(str(root), int(it["index"])) for it, _ in pairs]))
        summary = summarise(per_image)
        mismatch = max(r["shipped_difference"] for r in per_image)
        results["sets"][set_name] = {"summary": summary, "per_image": per_image, "shipped_difference": mismatch}
        lines += [f"### {set_name} ({len(per_image)} images)", "",
                  "| variant | similarity | support est/true | gain mean / worst | oracle-gated gain | better / worse |",
                  "|---|---|---|---|---|---|"]
        for name, s in summary.items():
            counts = "" if name in ("as shipped", "true kernel") else f"{s['better_than_shipped']} / {s['worse_than_shipped']}"
            lines.append(f"| {name} | {s['similarity']:.3f} | {s['support_ratio']:.2f} | "
                         f"{s['gain']:+.2f} / {s['worst']:+.2f} | {s['oracle_gated']:+.2f} | {counts} |")
        lines += ["", f"`as shipped` against the library's `estimate_kernel`: largest difference {mismatch:.1e}.", ""]
    results["wall_seconds"] = round(time.time() - t0, 1)
    results["command"] = "python -m studies.kernel_step_variants " + " ".join(sys.argv[1:] if argv is None else argv)
    lines.append(f"Whole run {results['wall_seconds']:.0f} s: `{results['command'].strip()}`")
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
