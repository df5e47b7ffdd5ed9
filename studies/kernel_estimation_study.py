#!/usr/bin/env python3
"""How far are the blind kernel estimates from the truth, and can a setting or a rule fix that?

    python -m studies.make_testsets --split train --out data/valsets     # once (16 s)
    python -m studies.kernel_estimation_study                            # validation, ~7.5 min
    python -m studies.kernel_estimation_study --testsets data/testsets --out studies/results/kernel_estimation_test

The default chain reaches +3.43 dB on uniform shake with the true kernel but +2.44 dB with its
blind estimates (docs/default-pipeline.md), so this study looks at the estimator alone. Per image
(the set's true kernel is known), :func:`deblurkit.kernel_aware.estimation.estimate_kernel`
runs on the normalised linear luminance exactly as the blind pipeline prepares it, with each of
``SETTINGS``; every kernel is then used by (b)'s deconvolution step (same brightness scale,
noise-adapted weight; ``deblurkit.kernel_aware.blind.deconvolve_with_kernel``). Rows:

* one per setting: kernel similarity to the truth (max normalised cross-correlation), estimated
  over true effective support ``1 / sum(k^2)`` (median), PSNR gain of the deconvolution over the
  blurry input (mean and worst), and the *oracle-gated* gain ``mean(max(gain, 0))``: what a gate
  that knew which estimates help would keep;
* ``delta``: the deconvolution step with a delta kernel (the prior alone, i.e. denoising);
* ``true``: the deconvolution step with the true kernel (the target);
* ``consensus``: per image, the setting whose kernel agrees best with the others' (medoid);
* ``sparsity``: per image, the candidate (settings and delta) whose deconvolved luminance has the
  smallest normalised gradient sparsity ``|grad|_1 / |grad|_2`` (Krishnan, Tay & Fergus 2011),
  a no-reference rule;
* ``network``: per image, the candidate (settings and delta) that the shipped network
  (``nafnet-w16``, one pass) changes least, PSNR between the deconvolution and the network's output
  of it: a no-reference score in the spirit of Liu et al. 2013's learned deblur quality, with a
  network that knows what sharp photos look like; ``network, kernels only``: the same among the
  settings alone (never declining);
* ``free energy``: per image, the candidate (settings and delta) with the lowest variational free
  energy (:func:`studies.marginal_likelihood.free_energy`: an upper bound on ``-log p(blurry |
  kernel)`` that integrates over the latent image, Levin et al. 2011's criterion for a kernel);
* ``oracle``: per image, the best candidate by PSNR (needs the truth; an upper bound for any rule).

``clean`` repeats the default setting on a re-blur of the sharp luminance with the true kernel
(no camera pipeline, no noise), separating the estimator's own error from the pipeline's.

Writes ``--out`` ``.json`` (per image) and ``.md``. Run time: about 20 s per image on one core,
``--workers`` images at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from studies.heldout import add_testset_arguments, load_pair, metrics, requested_sets, write_results

ROOT = Path(__file__).resolve().parents[1]

SETTINGS: dict[str, dict] = {
    "default": {},
    "lam 4e-3": {"lam": 4e-3},
    "lam 1.6e-2": {"lam": 1.6e-2},
    "final_threshold 0.05": {"final_threshold": 0.05},
    "iter_threshold 0.1": {"iter_threshold": 0.1},
    "gamma 0.5": {"gamma": 0.5},
    "gamma 8": {"gamma": 8.0},
    "iter_threshold 0.05": {"iter_threshold": 0.05},
    "iterations 10": {"iterations": 10},
    "kernel_size 41": {"kernel_size": 41},
    "kernel_size 41, lam 1.6e-2": {"kernel_size": 41, "lam": 1.6e-2},
    "iter_threshold 0.1, lam 1.6e-2": {"iter_threshold": 0.1, "lam": 1.6e-2},
}
"""Estimator settings compared (keyword arguments of ``estimate_kernel``; ``{}`` = the shipped one)."""

FREE_ENERGY_WINDOW = 45
"""Common window (px) of the candidates' free energies: the largest setting's kernel (41 px) and
the test sets' true kernels fit."""


def normalised_sparsity(lin: np.ndarray) -> float:
    """``|grad|_1 / |grad|_2`` of the luminance (x plus y), ignoring a 20-px border."""
    from deblurkit.color import luminance

    g = luminance(np.clip(lin, 0.0, None))[20:-20, 20:-20].astype(np.float64)
    total = 0.0
    for d in (np.diff(g, axis=1), np.diff(g, axis=0)):
        total += np.abs(d).sum() / max(np.sqrt((d * d).sum()), 1e-12)
    return float(total)


_network = None


def network_change(srgb: np.ndarray) -> float:
    """PSNR (dB) between an sRGB image ``(H, W, 3)`` in [0, 1] and the shipped network's output of
    it (``nafnet-w16``, one pass, one thread): high where the network finds little to change."""
    from deblurkit.eval.metrics import psnr

    global _network
    if _network is None:  # once per worker process
        from deblurkit.infer import load_restorer

        _network = load_restorer("nafnet-w16", threads=1, self_ensemble=False)
    x = np.clip(srgb, 0.0, 1.0).astype(np.float32)
    return psnr(np.clip(_network.restore_rgb(x), 0.0, 1.0), x, data_range=1.0)


def estimation_pair(job: tuple[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Pair ``job = (set folder, index)`` as the estimator studies read it: the blurry image in
    linear light, its luminance at the working brightness scale (the L0 weights are absolute, so
    the blind pipeline works at a fixed scale), the sharp sRGB image, the true kernel, and the
    blurry image's PSNR (dB)."""
    from deblurkit.color import srgb_to_linear
    from studies.blind_benchmark import working_luminance

    root, index = Path(job[0]), job[1]
    blur, sharp = load_pair(root, index)
    return (srgb_to_linear(blur), working_luminance(blur), sharp, np.load(root / "kernels" / f"{index:03d}.npy"),
            metrics(blur, sharp)[0])


def deconvolution_scores(lin: np.ndarray, kernel: np.ndarray, true_k: np.ndarray, sharp: np.ndarray,
                         base: float) -> tuple[dict[str, float], np.ndarray]:
    """A kernel's similarity to the truth, effective support over the truth's and the PSNR gain
    (sRGB) of (b)'s deconvolution step with it; and that deconvolution (linear light)."""
    from deblurkit.color import linear_to_srgb
    from deblurkit.kernel_aware.blind import deconvolve_with_kernel, kernel_effective_support
    from deblurkit.kernel_aware.kernels import kernel_similarity

    out = deconvolve_with_kernel(lin, kernel)
    return {"similarity": kernel_similarity(kernel, true_k),
            "support_ratio": kernel_effective_support(kernel) / kernel_effective_support(true_k),
            "gain": metrics(linear_to_srgb(out), sharp)[0] - base}, out


def study_image(job: tuple[str, int]) -> dict:
    """All rows for one image of a set folder."""
    from scipy.signal import fftconvolve

    from deblurkit.color import linear_to_srgb, luminance, srgb_to_linear, working_scale
    from deblurkit.kernel_aware.blind import kernel_effective_support
    from deblurkit.kernel_aware.decision import delta_kernel
    from deblurkit.kernel_aware.estimation import estimate_kernel
    from deblurkit.kernel_aware.kernels import kernel_similarity
    from studies.marginal_likelihood import free_energy

    index = job[1]
    lin, gray, sharp, true_k, base = estimation_pair(job)
    kernels = {name: estimate_kernel(gray, **kw) for name, kw in SETTINGS.items()}
    delta = delta_kernel()
    row: dict = {"index": index, "true_support": kernel_effective_support(true_k), "rows": {}}
    for name, k in {**kernels, "delta": delta, "true": true_k}.items():
        scores, out = deconvolution_scores(lin, k, true_k, sharp, base)
        out_srgb = linear_to_srgb(out)
        row["rows"][name] = {
            **scores,
            "sparsity": normalised_sparsity(out),
            "network_change": network_change(out_srgb),
            "free_energy": free_energy(gray, k, size=FREE_ENERGY_WINDOW),
        }
    names = list(SETTINGS)
    sim = np.array([[kernel_similarity(kernels[a], kernels[b]) for b in names] for a in names])
    row["consensus"] = names[int(np.argmax(sim.sum(axis=1)))]
    candidates = names + ["delta"]
    row["sparsity"] = min(candidates, key=lambda n: row["rows"][n]["sparsity"])
    row["network"] = max(candidates, key=lambda n: row["rows"][n]["network_change"])
    row["network, kernels only"] = max(names, key=lambda n: row["rows"][n]["network_change"])
    row["free energy"] = min(candidates, key=lambda n: row["rows"][n]["free_energy"])
    row["oracle"] = max(candidates, key=lambda n: row["rows"][n]["gain"])
    pad = 3 * true_k.shape[0]
    sharp_gray = np.pad(luminance(srgb_to_linear(sharp)), pad, mode="reflect")
    clean = fftconvolve(sharp_gray, true_k, mode="same")[pad:-pad, pad:-pad]
    clean = (clean / working_scale(clean)).astype(np.float32)  # the working brightness scale, as above
    row["clean_similarity"] = kernel_similarity(estimate_kernel(clean), true_k)
    return row


def summarise(per_image: list[dict]) -> list[dict]:
    """One dict per row name: mean similarity, median support ratio, gains."""
    out = []
    rules = ("consensus", "sparsity", "network", "network, kernels only", "free energy", "oracle")
    rule_rows = {rule: [r["rows"][r[rule]] for r in per_image] for rule in rules}
    names = list(SETTINGS) + ["delta", "true"]
    for name, rows in [(n, [r["rows"][n] for r in per_image]) for n in names] + list(rule_rows.items()):
        gains = np.array([x["gain"] for x in rows])
        out.append({
            "row": name,
            "similarity": float(np.mean([x["similarity"] for x in rows])),
            "support_ratio": float(np.median([x["support_ratio"] for x in rows])),
            "gain": float(gains.mean()),
            "worst": float(gains.min()),
            "oracle_gated": float(np.maximum(gains, 0.0).mean()),
        })
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.set_defaults(testsets=str(ROOT / "data/valsets"), sets=["uniform"])
    ap.add_argument("--workers", type=int, default=2, help="images estimated at once (one process each)")
    ap.add_argument("--out", default=str(ROOT / "studies/results/kernel_estimation_val"))
    args = ap.parse_args(argv)

    t0 = time.time()
    results: dict = {"sets": {}, "settings": SETTINGS}
    lines = [(f"Blind kernel estimates vs the truth (`{Path(args.testsets).name}`). Gains are (b)'s deconvolution "
              "step alone, PSNR dB over the blurry input."), ""]
    for set_name, root, items in requested_sets(args):
        with ProcessPoolExecutor(max(1, args.workers)) as pool:
            per_image = list(pool.map(study_image, [(str(root), int(it["index"])) for it in items]))
        summary = summarise(per_image)
        clean = float(np.mean([r["clean_similarity"] for r in per_image]))
        results["sets"][set_name] = {"summary": summary, "per_image": per_image, "clean_similarity": clean}
        lines += [f"### {set_name} ({len(per_image)} images)", "",
                  "| row | similarity | support est/true | gain mean / worst | oracle-gated gain |",
                  "|---|---|---|---|---|"]
        for s in summary:
            lines.append(f"| {s['row']} | {s['similarity']:.3f} | {s['support_ratio']:.2f} | "
                         f"{s['gain']:+.2f} / {s['worst']:+.2f} | {s['oracle_gated']:+.2f} |")
        lines += ["", f"Default setting on a clean re-blur (no camera pipeline, no noise): similarity {clean:.3f}.", ""]
    results["wall_seconds"] = round(time.time() - t0, 1)
    results["command"] = "python -m studies.kernel_estimation_study " + " ".join(sys.argv[1:] if argv is None else argv)
    lines.append(f"Whole run {results['wall_seconds']:.0f} s: `{results['command'].strip()}`")
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
