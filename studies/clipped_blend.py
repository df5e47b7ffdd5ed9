#!/usr/bin/env python3
"""Should the blind pipeline keep the blurry input around clipped highlights? Measured on validation pairs.

    python -m studies.kernel_gate collect --sets capture uniform saturated night   # the kernels
    python -m studies.clipped_blend --sets capture uniform saturated night

A clipped pixel breaks the linear blur model within a kernel's reach, and a linear deconvolution
rings there. A common guard keeps the blurry input around clipped pixels (the mask of pixels with
any linear channel >= 0.98, dilated by the kernel size and smoothed with a Gaussian of sigma
kernel/4, blended in). Per validation pair of the kernel-gate cache (train photos only; the
kernel the pipeline estimated, stored by ``studies/kernel_gate.py collect``, and the true kernel),
this scores the pipeline's deconvolution
(:func:`deblurkit.kernel_aware.blind.deconvolve_with_kernel`) three ways:

* ``deconvolved``: the deconvolution everywhere;
* ``input near clipped``: the blend above around every clipped pixel;
* ``input near small clipped``: the blend only around clipped regions (8-connected) of at most
  one kernel area (light sources, whose true brightness is far above the clip; an overexposed
  sky or wall is deconvolved).

Gains are shift-aligned PSNR dB over the blurry input, as in ``studies/blind_benchmark.py``.
Results per pair are cached in ``--cache`` (resumable); the table goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from studies.heldout import load_pair, true_kernel, write_results
from studies.kernel_gate import collected_pairs, stored_kernel_path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("deconvolved", "input near clipped", "input near small clipped")


def clipped_regions_linear(lin: np.ndarray, level: float | None = None, max_area: float = math.inf) -> np.ndarray:
    """Boolean ``(H, W)`` mask of clipped pixels (any channel >= ``level``, by default the blind
    pipeline's :attr:`~deblurkit.kernel_aware.blind.BlindParams.saturation`) in regions of at most
    ``max_area`` px."""
    import cv2

    if level is None:
        from deblurkit.kernel_aware.blind import BlindParams

        level = BlindParams.saturation
    clipped = (lin >= level).any(axis=2)
    if not math.isfinite(max_area) or not clipped.any():
        return clipped
    n, labels, stats, _ = cv2.connectedComponentsWithStats(clipped.astype(np.uint8), connectivity=8)
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] <= max_area
    return small[labels]


def blend_near(near: np.ndarray, elsewhere: np.ndarray, mask: np.ndarray, kernel_size: int) -> np.ndarray:
    """``near`` around ``mask`` (dilated by the kernel size, smoothed with sigma kernel/4), ``elsewhere`` away from it.

    Args:
        near, elsewhere: images ``(H, W, C)`` in the same space.
        mask: boolean ``(H, W)``, e.g. :func:`clipped_regions_linear`.
        kernel_size: side of the blur kernel in pixels.
    """
    import cv2

    if not mask.any():
        return elsewhere
    ks = max(1, int(kernel_size))
    m = cv2.dilate(mask.astype(np.uint8), np.ones((ks, ks), np.uint8)).astype(np.float32)
    m = cv2.GaussianBlur(m, (0, 0), ks / 4.0)[..., None]
    return m * near + (1.0 - m) * elsewhere


def pair_gains(blur: np.ndarray, sharp: np.ndarray, kernels: dict[str, np.ndarray], reach: float,
               border: int = 15) -> dict[str, float]:
    """``{"<kernel name>:<variant>": gain dB}`` for every kernel and :data:`VARIANTS`, and the
    ``"clipped"`` fraction of the blurry image's pixels."""
    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.kernel_aware.blind import deconvolve_with_kernel
    from studies.blind_benchmark import scores

    lin = srgb_to_linear(blur)
    border = max(math.ceil(reach), border)
    base = scores(blur, sharp, reach, border)["psnr_aligned"]
    clipped = clipped_regions_linear(lin)
    out = {"clipped": float(clipped.mean())}
    for name, k in kernels.items():
        ks = max(k.shape)
        plain = deconvolve_with_kernel(lin, k)
        masks = {"deconvolved": None, "input near clipped": clipped,
                 "input near small clipped": clipped_regions_linear(lin, max_area=ks * ks)}
        for variant, mask in masks.items():
            restored = plain if mask is None else blend_near(lin, plain, mask, ks)
            out[f"{name}:{variant}"] = scores(linear_to_srgb(restored), sharp, reach, border)["psnr_aligned"] - base
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--testsets", default=str(ROOT / "data/valsets"))
    ap.add_argument("--kernels", default=str(ROOT / "data/kernel_gate_cache"), help="kernel-gate cache (stored kernels)")
    ap.add_argument("--sets", nargs="*", default=["capture", "uniform", "saturated", "night"])
    ap.add_argument("--cache", default=str(ROOT / "data/clipped_blend_cache.json"))
    ap.add_argument("--out", default=str(ROOT / "studies/results/clipped_blend"))
    args = ap.parse_args(argv)
    from deblurkit.io import atomic_write

    t0 = time.time()
    cache = Path(args.cache)
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    rows: dict[str, list[dict]] = {}
    for set_name in args.sets:
        found = collected_pairs(args.testsets, args.kernels, set_name)
        if found is None:
            continue
        root, collected, items = found
        for key in collected:
            tag = f"{set_name}|{key}"
            if tag not in done:
                it = items[key]
                blur, sharp = load_pair(root, it["index"])
                kernels = {"est": np.load(stored_kernel_path(args.kernels, set_name, key))}
                true_k = true_kernel(root, it)
                if true_k is not None:
                    kernels["true"] = true_k
                reach = float(true_k.shape[0] // 2) if true_k is not None else 15.0
                done[tag] = {"photo": it["photo"], **pair_gains(blur, sharp, kernels, reach)}
                with atomic_write(cache, "w") as fh:
                    json.dump(done, fh)
                print(tag, {k: round(v, 2) for k, v in done[tag].items() if ":" in k}, file=sys.stderr)
            rows.setdefault(set_name, []).append(done[tag])

    lines = [
        ("Keeping the blurry input around clipped highlights, or not: gain (dB, shift-aligned PSNR over the blurry "
         "input) of the blind pipeline's deconvolution on validation pairs (train photos), with the kernel the "
         "pipeline estimated (every kernel, as if trusted) and with the true kernel. Cells: mean / worst pair."),
        "",
        "| set | pairs (with clipped pixels) | kernel | " + " | ".join(VARIANTS) + " |",
        "|---|---|---|" + "---|" * len(VARIANTS),
    ]
    summary: dict = {}
    for set_name, recs in rows.items():
        n_clip = sum(r["clipped"] > 0 for r in recs)
        for kname, label in (("est", "estimated"), ("true", "true")):
            if f"{kname}:deconvolved" not in recs[0]:
                continue
            cells = []
            for v in VARIANTS:
                g = np.array([r[f"{kname}:{v}"] for r in recs])
                summary.setdefault(set_name, {}).setdefault(kname, {})[v] = {"mean": float(g.mean()), "worst": float(g.min())}
                cells.append(f"{g.mean():+.2f} / {g.min():+.2f}")
            lines.append(f"| {set_name} | {len(recs)} ({n_clip}) | {label} | " + " | ".join(cells) + " |")
    cmd = "python -m studies.clipped_blend " + " ".join(sys.argv[1:] if argv is None else argv)
    lines += ["", f"`{cmd.strip()}` ({time.time() - t0:.0f} s with the cache)"]
    write_results(args.out, {"sets": summary, "variants": list(VARIANTS)}, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
