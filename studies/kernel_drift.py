#!/usr/bin/env python3
"""Does the kernel estimator keep the true kernel? Its alternation started from the truth.

    python -m studies.kernel_drift --sets capture uniform
    python -m studies.kernel_drift --testsets data/valsets --sets capture --out studies/results/kernel_drift_val

A blind estimate can miss the true kernel for two reasons: the alternation does not reach it
from its coarse start, or the truth is not where the alternation settles. This separates them.
For every pair of a set with a true kernel, the estimator's per-scale step
(:func:`deblurkit.kernel_aware.estimation.update_kernel`: the L0 latent image for the current
kernel, then the kernel least squares from its gradients) is run ``--steps`` times at full
resolution **starting from the true kernel** (on a window ``--margin`` px wider than it, the way
the pipeline fits its window), with the L0 weight at its floor (``1e-4``, where the estimator ends)
and at ten times it, with the edge selection of every orientation (as the estimator runs) and
with every latent gradient. Beside it, the estimator from its usual coarse start
(:func:`estimate_kernel` on the same window). Reported per arm: the mean kernel similarity to the
truth (:func:`kernel_similarity`) and the median ratio of effective supports (``1 / sum k^2``,
estimate over truth) after the first and the last step. Input: the normalised linear luminance, as
the blind pipeline prepares it (``studies.blind_benchmark.working_luminance``).

Writes ``--out`` ``.json`` (per pair) and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from studies.blind_benchmark import working_luminance
from studies.heldout import add_testset_arguments, kernel_pairs, load_pair, write_results

ARMS = [(1e-4, True), (1e-4, False), (1e-3, True), (1e-3, False)]
"""(L0 weight, edge selection) of each arm started from the truth."""


def windowed_kernel(kernel: np.ndarray, margin: int) -> np.ndarray:
    """``kernel`` centred in a square window ``margin`` px wider on each side (odd size), the way
    the pipeline fits its window around a kernel."""
    size = (kernel.shape[0] + 2 * margin) | 1
    out = np.zeros((size, size))
    o = (size - kernel.shape[0]) // 2
    out[o:o + kernel.shape[0], o:o + kernel.shape[1]] = kernel
    return out


def drift(gray: np.ndarray, k_true: np.ndarray, *, steps: int, margin: int) -> dict:
    """Similarity and support ratio of every arm after each step, and of the estimator from scratch."""
    from deblurkit.kernel_aware.blind import kernel_effective_support
    from deblurkit.kernel_aware.estimation import estimate_kernel, update_kernel
    from deblurkit.kernel_aware.kernels import kernel_similarity

    start = windowed_kernel(k_true, margin)
    size = start.shape[0]
    true_support = kernel_effective_support(k_true)
    row: dict = {"true_support": true_support, "window": size, "arms": {}}
    for lam, select in ARMS:
        k, track = start, []
        for _ in range(steps):
            k = update_kernel(gray, k, lam, select_edges=select)
            track.append([kernel_similarity(k, k_true), kernel_effective_support(k) / true_support])
        row["arms"][f"{lam:g}/{'edges' if select else 'all'}"] = track
    k = estimate_kernel(gray, kernel_size=size)
    row["from_scratch"] = [kernel_similarity(k, k_true), kernel_effective_support(k) / true_support]
    return row


def summary_lines(name: str, rows: list[dict], steps: int) -> list[str]:
    header = ("| start | L0 weight | latent gradients | similarity, step 1 | similarity, step "
              f"{steps} | support ratio, step 1 | support ratio, step {steps} |")
    lines = [f"### {name} ({len(rows)} pairs)", "", header, "|---|---|---|---|---|---|---|"]
    for arm in rows[0]["arms"]:
        lam, grads = arm.split("/")
        t = np.array([r["arms"][arm] for r in rows])  # (pairs, steps, 2)
        lines.append(f"| true kernel | {lam} | {'selected edges' if grads == 'edges' else 'all'} | "
                     f"{t[:, 0, 0].mean():.3f} | {t[:, -1, 0].mean():.3f} | "
                     f"{np.median(t[:, 0, 1]):.2f} | {np.median(t[:, -1, 1]):.2f} |")
    s = np.array([r["from_scratch"] for r in rows])
    lines.append(f"| coarse-to-fine estimator | 8e-3 → 1e-4 | selected edges | – | {s[:, 0].mean():.3f} | – | "
                 f"{np.median(s[:, 1]):.2f} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.set_defaults(sets=["capture"])
    ap.add_argument("--steps", type=int, default=8, help="alternations started from the true kernel")
    ap.add_argument("--margin", type=int, default=2, help="window margin around the true kernel, px per side")
    ap.add_argument("--out", default="studies/results/kernel_drift")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results: dict = {"settings": {"steps": args.steps, "margin": args.margin, "arms": [list(a) for a in ARMS]},
                     "sets": {}}
    intro = ("The blind kernel estimator's alternation started from the true kernel "
             "(studies/kernel_drift.py). Similarity: kernel_similarity to the truth (1 = equal up to a shift); "
             "support ratio: effective support 1/sum(k^2) of the estimate over the truth's (median).")
    lines = [intro, ""]
    for name, root, pairs in kernel_pairs(args):
        rows = []
        for it, k_true in pairs:
            blur, _ = load_pair(root, it["index"])
            row = {"index": it["index"], "photo": it.get("photo"),
                   **drift(working_luminance(blur), k_true, steps=args.steps, margin=args.margin)}
            rows.append(row)
            print(f"{name}/{it['index']:03d}: from the truth " + ", ".join(
                f"{a} {v[-1][0]:.2f}" for a, v in row["arms"].items()) + f"; from scratch {row['from_scratch'][0]:.2f}",
                file=sys.stderr, flush=True)
        results["sets"][name] = rows
        lines += summary_lines(name, rows, args.steps)
    seconds = time.perf_counter() - t0
    cmd = "python -m studies.kernel_drift " + " ".join(argv if argv is not None else sys.argv[1:])
    lines.append(f"Whole run {seconds:.0f} s: `{cmd.strip()}`")
    results["seconds"] = seconds
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
