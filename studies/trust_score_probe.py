#!/usr/bin/env python3
"""Two candidate no-reference scores for catching wrong kernels that pass the trust checks.

    python -m studies.trust_score_probe \
        --results studies/results/blind_benchmark_test_paused_paused_bridge.json=data/testsets-paused/paused \
                  studies/results/blind_benchmark_test_paused_noise_paused_bridge.json=data/testsets-paused-noise/paused \
                  studies/results/blind_benchmark_val_bridge.json=data/valsets \
                  studies/results/blind_benchmark_val_pauses_bridge.json=data/valsets-pauses \
                  studies/results/blind_benchmark_val_urban100_sets.json=data/valsets-urban100 \
        --real ../shared/data/real-blur --out studies/results/trust_score_probe

On the default pipeline's worst held-out photos (shakes with pauses: ``Blinds.jpg``, ``summer_1am``)
the kernel passes every check and the deconvolution ruins the photo. Two scores that read only
the blurry photo and the kernel are measured on every kernel the pipeline deconvolves:

* **local ringing**: the hyper-Laplacian deconvolution (the pipeline's prior weight and exponent,
  ``BlindParams.weight`` and ``alpha``: 2e-3 and 0.8) of the working
  luminance, its excess above the ``k x k`` maximum or below the minimum of the blurry photo,
  divided by that window's range (at least 0.02); the 99th percentile over the photo (a border of
  ``k`` left out). Blur averages, so a deconvolution should stay near the local range of the
  blurry values; echo edges of a wrong kernel leave it.
* **spectral residue**: the blurry photo's power (mean removed, Hann window) at the frequencies of
  radius 0.02-0.35 cycles/px where the kernel's transfer function is below 0.05, divided by the
  noise variance (standard deviation from the finest diagonal Haar band, at least 1e-3). A photo
  blurred by that kernel holds only noise there.

``--results FILE=DIR``: ``studies/blind_benchmark.py`` result files with a ``pipeline`` row and the
sets they scored (the kernels are estimated again with the pipeline, one tile, as that row was;
its aligned gain over the blurry input is read from the file). ``--real DIR``: the photos of the
real-blur folder (``koehler2012`` is skipped: 48 photos of 800 px, and read as linear light); the
default pipeline's kernel (one tile) and, where it is deconvolved, both scores. A score is of use
only if the held-out losers stand above every kernel that gains, on validation and on real
photos. Writes ``--out`` ``.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from studies.blind_benchmark import PipelineEstimator, working_luminance
from studies.heldout import load_pair, write_results


def local_ringing(gray: np.ndarray, kernel: np.ndarray) -> float:
    """99th percentile of the deconvolution's excess over the blurry photo's local range, relative to it."""
    from scipy import ndimage

    from deblurkit.kernel_aware.blind import BlindParams
    from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv

    prior = BlindParams()
    x = hyper_laplacian_deconv(gray, kernel, weight=prior.weight, alpha=prior.alpha)
    size = kernel.shape[0]
    lo, hi = ndimage.minimum_filter(gray, size), ndimage.maximum_filter(gray, size)
    excess = np.maximum(x - hi, 0.0) + np.maximum(lo - x, 0.0)
    inner = (slice(size, -size), slice(size, -size))
    return float(np.quantile(excess[inner] / np.maximum(hi - lo, 0.02)[inner], 0.99))


def _scores(gray: np.ndarray, kernel: np.ndarray) -> dict[str, float]:
    from deblurkit.kernel_aware.blind import estimate_noise_sigma
    from deblurkit.kernel_aware.decision import spectral_residue

    residue = spectral_residue(gray, kernel, estimate_noise_sigma(gray))
    return {"local_ringing": local_ringing(gray, kernel), "spectral_residue": residue}


def _from_results(spec: str) -> list[dict]:
    path, _, testsets = spec.partition("=")
    if not testsets:
        raise SystemExit(f"--results {spec!r}: expected FILE=TESTSETS_DIR")
    rows = []
    for name, data in json.loads(Path(path).read_text())["sets"].items():
        for row in data["per_image"]:
            est = row["estimators"].get("pipeline")
            if est is None or est["declined"]:
                continue
            blur, _ = load_pair(Path(testsets) / name, row["index"])
            gray = working_luminance(blur)
            kernel = PipelineEstimator()(gray)
            if kernel is None:  # not deconvolved on this machine
                continue
            rows.append({"source": Path(path).stem, "set": name, "index": row["index"], "photo": row["photo"],
                         "gain": est["psnr_aligned"] - row["blurry"]["psnr_aligned"], **_scores(gray, kernel)})
            print(f"{rows[-1]['source']} {name}/{row['index']:03d}: {rows[-1]['gain']:+.2f} dB, "
                  f"{rows[-1]['local_ringing']:.3f}, {rows[-1]['spectral_residue']:.1f}", file=sys.stderr)
    return rows


def _from_real(data: Path) -> list[dict]:
    from deblurkit.io import load_image_rgb

    rows = []
    for path in sorted(p for p in data.glob("*/*.png") if p.parent.name != "koehler2012"):
        gray = working_luminance(load_image_rgb(path))
        kernel = PipelineEstimator()(gray)
        if kernel is None:
            continue
        rows.append({"source": "real-blur", "set": path.parent.name, "index": -1, "photo": path.name,
                     "gain": None, **_scores(gray, kernel)})
        print(f"real {path.parent.name}/{path.name}: {rows[-1]['local_ringing']:.3f}, "
              f"{rows[-1]['spectral_residue']:.1f}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", nargs="+", required=True, metavar="FILE=TESTSETS_DIR")
    ap.add_argument("--real", default=None, help="the real-blur folder beside the project")
    ap.add_argument("--out", default="studies/results/trust_score_probe")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    rows = [r for spec in args.results for r in _from_results(spec)]
    if args.real and Path(args.real).is_dir():
        rows += _from_real(Path(args.real))
    intro = ("Every kernel the blind pipeline deconvolves (one tile); aligned gain over the blurry input "
             "(none for real photos). The kernels that lose over 2 dB, and the highest of each score among "
             "those that gain (every real photo counts):")
    header = ("| source | kernels | losing > 2 dB: photo, gain, local ringing, residue | highest local ringing (gain) "
              "| highest residue (gain) |")
    lines = ["# Two candidate scores for wrong kernels that pass the trust checks", "", intro, "", header,
             "|---|---|---|---|---|"]
    for source in dict.fromkeys(r["source"] for r in rows):
        part = [r for r in rows if r["source"] == source]
        losers = "; ".join(f"{r['photo'][:16]} {r['gain']:+.2f}, {r['local_ringing']:.2f}, {r['spectral_residue']:.0f}"
                           for r in part if r["gain"] is not None and r["gain"] < -2.0) or "–"

        def top(key: str, part: list[dict] = part) -> str:
            r = max((r for r in part if r["gain"] is None or r["gain"] > 0), key=lambda r: r[key], default=None)
            if r is None:
                return "–"  # no kernel of this source gains
            gain = "real" if r["gain"] is None else f"{r['gain']:+.2f}"
            return f"{r[key]:.2f} {r['photo'][:16]} ({gain})"

        lines.append(f"| {source} | {len(part)} | {losers} | {top('local_ringing')} | {top('spectral_residue')} |")
    cmd = "python -m studies.trust_score_probe " + " ".join(argv if argv is not None else sys.argv[1:])
    lines += ["", f"Command: `{cmd}` ({time.perf_counter() - t0:.0f} s)"]
    write_results(args.out, {"rows": rows}, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
