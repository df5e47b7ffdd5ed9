#!/usr/bin/env python3
"""Blind kernel estimators scored with the field's protocol (Levin et al. 2009) on the held-out sets.

    python -m studies.blind_benchmark --sets uniform large --estimators shipped pipeline
    python -m studies.blind_benchmark --estimators shipped new=deblurkit.kernel_aware.estimation:estimate_kernel

Per image of a set of ``studies/make_testsets.py`` (blurry, sharp, true kernel), each estimator
gets the normalised linear luminance (the luminance of the sRGB-decoded input divided by its
99.5th percentile, as the blind pipeline prepares it) and returns a kernel, or None to decline
(the input is then kept unchanged, as the pipeline does). Then ONE fixed non-blind step
deconvolves the colour image in linear light with (a) the estimated and (b) the true kernel:
the pipeline's :func:`deblurkit.kernel_aware.blind.deconvolve_with_kernel` (hyper-Laplacian at
the working brightness scale, noise-adapted weight, :class:`BlindParams` defaults). Reported per image and per estimator:

* PSNR unaligned (whole image) and shift-aligned (:func:`deblurkit.eval.metrics.psnr_shift_aligned`:
  best sub-pixel shift within half the true kernel's size, border crop of ``max(reach, --border)``
  pixels, no intensity fit), sRGB in [0, 1], data range 1;
* the error ratio ``MSE(a) / MSE(b)`` of the shift-aligned errors (Levin et al.'s success rate:
  the share of images with a ratio of at most 2 and 3; for a declined image (a) is the input
  itself, so a decline where the true kernel gains little counts as a success);
* kernel similarity to the truth (:func:`kernel_similarity`, maximum over shifts);
* wall-clock seconds of the estimator per image (on a shared machine, only a rough guide);
* where the blurry image clips (any channel >= 0.999), the unaligned PSNR gain over the pixels
  within a kernel size of a clipped one ("near clipped"; mean over the images that clip).

Estimators: ``shipped`` (the current :func:`estimate_kernel` alone, default settings),
``pipeline`` (the blind pipeline's kernel with its trust checks, one tile; it gets the sRGB image
as the pipeline does, and where it returns a kernel of the encoded values
(:attr:`BlindParams.encoded_fallback`) the fixed step deconvolves those instead of linear light), or
``NAME=module:function`` (any callable ``f(gray) -> kernel | None``; e.g. a new estimator). A set
blurred on its encoded values (``make_testsets.py --blur-space srgb``, recorded in its
``meta.json``) has its true kernel deconvolved there.
The true-kernel row (b) is the upper bound. A set without true kernels (``varying``) is scored
with ``--reach`` pixels of shift and no ratio. ``--restorers NAME ...`` adds rows for whole
restorers as ``deblurkit deblur --model NAME`` runs them (e.g. ``default``, ``nafnet-w16``),
scored with the same protocol (their error ratio is against the true-kernel row); ``--params`` apply to
their kernel stages too (a chain keeps its support gate).

Writes ``--out`` ``.json`` (per image) and ``.md`` atomically.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studies.heldout import add_testset_arguments, load_pair, set_items, write_results

ROOT = Path(__file__).resolve().parents[1]

Estimator = Callable[[np.ndarray], "np.ndarray | None"]
"""``f(gray)``: normalised linear luminance ``(H, W)`` float32 -> kernel ``(k, k)`` or None (declined)."""

BUILTIN = ("shipped", "pipeline")
SUCCESS_RATIOS = (2.0, 3.0)


def working_luminance(blur_srgb: np.ndarray) -> np.ndarray:
    """What an estimator gets: the linear luminance of an sRGB image divided by its working scale."""
    from deblurkit.color import luminance, srgb_to_linear, working_scale

    gray = luminance(srgb_to_linear(blur_srgb))
    return (gray / working_scale(gray)).astype(np.float32)


def shipped_estimator(gray: np.ndarray) -> np.ndarray:
    """The current kernel estimator alone, default settings (31-px support, on the whole image)."""
    from deblurkit.kernel_aware.estimation import estimate_kernel

    return estimate_kernel(gray)


class PipelineEstimator:
    """The blind pipeline's kernel (size found per image, its gate), one tile; None where it declines.

    After each call :attr:`scores` holds the tile's scores (:func:`deblurkit.kernel_aware.blind.kernel_scores`,
    with the pipeline's flags such as ``bridged``), which :func:`score_image` stores beside the image's row.

    Args:
        params: :class:`deblurkit.kernel_aware.blind.BlindParams` fields to override (e.g. the gate).
    """

    def __init__(self, params: dict | None = None) -> None:
        self.params = dict(params or {})
        self.scores: dict[str, float] | None = None
        self.blur_space = "linear"
        self.network = None  # the learned decision's judge, loaded at the first call that needs it

    def __call__(self, gray: np.ndarray) -> np.ndarray | None:
        return self._kernel(gray, "linear")

    def from_srgb(self, blur_srgb: np.ndarray) -> np.ndarray | None:
        """The kernel from the sRGB image as the pipeline gets it (its clipped-pixel map from the
        colour channels): estimated in linear light or, where it declines there, on the encoded
        values (:attr:`blur_space` says which)."""
        return self._kernel(blur_srgb, "srgb")

    def _kernel(self, image: np.ndarray, input_space: str) -> np.ndarray | None:
        from deblurkit.kernel_aware.blind import BlindParams, estimate_tile_kernels

        params = BlindParams(**self.params)
        if params.decision == "learned" and self.network is None:
            from deblurkit.infer import judge_network

            self.network = judge_network(threads=1)
        found = estimate_tile_kernels(image, tiles=1, input_space=input_space, params=params, network=self.network)
        self.scores = {k: float(v) for k, v in found.scores[0][0].items()}
        self.blur_space = found.blur_space
        return found.kernels[0, 0] if bool(found.blurred[0, 0]) else None


def parse_params(pairs: list[str]) -> dict:
    """``["agreement=0.8", ...]`` -> ``{"agreement": 0.8}`` for :class:`BlindParams` (numbers, or
    ``none`` for a setting that can be off)."""
    from dataclasses import fields

    from deblurkit.kernel_aware.blind import BlindParams

    known = {f.name: f.type for f in fields(BlindParams)}
    out: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in known or not value:
            raise SystemExit(f"--params {pair!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        if value.lower() == "none" and "None" in str(known[key]):
            out[key] = None  # a setting that can be switched off
            continue
        if "Literal" in str(known[key]):
            out[key] = value  # a named choice (e.g. decision=learned)
            continue
        try:
            out[key] = int(value) if known[key] in ("int", int) else float(value)
        except ValueError:
            raise SystemExit(f"--params {pair!r}: {value!r} is not a number for {key} ({known[key]})") from None
    return out


def blind_params(params: dict):
    """:class:`BlindParams` with the :func:`parse_params` overrides, or None where there are none
    (a restorer's kernel stage then keeps its own defaults)."""
    from deblurkit.kernel_aware.blind import BlindParams

    return BlindParams(**params) if params else None


def resolve_estimator(spec: str, params: dict | None = None) -> tuple[str, Estimator]:
    """``shipped``, ``pipeline`` or ``NAME=module:function`` -> (name, callable).

    ``params`` override :class:`BlindParams` fields of the ``pipeline`` estimator.
    """
    if spec == "shipped":
        return spec, shipped_estimator
    if spec == "pipeline":
        return spec, PipelineEstimator(params)
    name, _, target = spec.partition("=")
    module, _, attr = target.partition(":")
    if not (name and module and attr):
        raise SystemExit(f"estimator {spec!r}: expected one of {', '.join(BUILTIN)} or NAME=module:function")
    return name, getattr(importlib.import_module(module), attr)


NONBLIND = ("richardson-lucy", "rl-saturated", "hl+rl-saturated")
"""Extra non-blind methods that ``--true-rows`` adds with the true kernel (beside the fixed one)."""


def deconvolve_other_linear(method: str, lin: np.ndarray, kernel: np.ndarray, iterations: int) -> np.ndarray:
    """A non-blind method of :data:`NONBLIND` on the linear image (clipping level 1.0)."""
    from deblurkit.kernel_aware.blind import deconvolve_with_kernel
    from deblurkit.kernel_aware.deconv import richardson_lucy_deconv, richardson_lucy_saturated_linear

    if method == "richardson-lucy":
        return richardson_lucy_deconv(lin, kernel, iterations=iterations)
    if method == "rl-saturated":
        return richardson_lucy_saturated_linear(lin, kernel, iterations=iterations, clip_level=1.0)
    if method == "hl+rl-saturated":
        # The fixed step, with the saturation-aware RL result blended in around clipped pixels
        # (clipped pixels dilated by the kernel size, then smoothed).
        from studies.clipped_blend import blend_near, clipped_regions_linear

        base = deconvolve_with_kernel(lin, kernel)
        clipped = clipped_regions_linear(lin)
        if not clipped.any():
            return base
        sat = richardson_lucy_saturated_linear(lin, kernel, iterations=iterations, clip_level=1.0)
        return blend_near(sat, base, clipped, kernel.shape[0])
    raise ValueError(f"unknown non-blind method {method!r}; valid: {', '.join(NONBLIND)}")


def near_clipped_mask(blur_srgb: np.ndarray, kernel_size: int) -> np.ndarray | None:
    """Pixels within ``kernel_size`` px of a clipped blurry pixel (any channel >= 0.999); None if none clip."""
    import cv2

    clipped = (blur_srgb >= 0.999).any(axis=2)
    if not clipped.any():
        return None
    k = max(3, int(kernel_size) | 1)
    return cv2.dilate(clipped.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


def scores(out_srgb: np.ndarray, sharp: np.ndarray, reach: float, border: int,
           near_clipped: np.ndarray | None = None) -> dict:
    """Unaligned PSNR, shift-aligned PSNR and MSE, and the shift, of an sRGB output; with a mask,
    also the (unaligned) PSNR over the pixels near clipped highlights."""
    from deblurkit.eval.metrics import align_upto_shift, psnr

    out = np.clip(out_srgb, 0.0, 1.0)
    al = align_upto_shift(out, sharp, max_shift=reach, border=border)
    res = {
        "psnr": psnr(out, sharp, data_range=1.0),
        "psnr_aligned": 10.0 * math.log10(1.0 / al.mse) if al.mse > 0 else math.inf,
        "mse_aligned": al.mse,
        "shift_yx": list(al.shift_yx),
    }
    if near_clipped is not None:
        res["psnr_near_clipped"] = psnr(out[near_clipped], sharp[near_clipped], data_range=1.0)
    return res


def score_image(blur: np.ndarray, sharp: np.ndarray, true_k: np.ndarray | None,
                estimators: dict[str, Estimator], *, reach: float, border: int,
                true_rows: tuple[str, ...] = (), rl_iterations: int = 30, restorers: dict | None = None,
                blur_space: str = "linear") -> dict:
    """All rows for one image: the input, the true kernel (if known) and every estimator.

    ``true_rows``: methods of :data:`NONBLIND` also run with the true kernel (``row["true_other"]``).
    ``blur_space``: where the set's blur convolved (its ``meta.json``), so where the true kernel
    deconvolves: ``"linear"`` light or ``"srgb"``, the encoded values.
    """
    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.kernel_aware.blind import deconvolve_with_kernel
    from deblurkit.kernel_aware.kernels import kernel_similarity

    lin = srgb_to_linear(blur)

    def deconvolved(kernel: np.ndarray, space: str) -> np.ndarray:
        """sRGB result of the fixed non-blind step in the space where ``kernel`` convolves."""
        if space == "linear":
            return linear_to_srgb(deconvolve_with_kernel(lin, kernel))
        return np.clip(deconvolve_with_kernel(blur, kernel), 0.0, 1.0)

    gray = working_luminance(blur)
    if true_k is not None:
        reach = float(true_k.shape[0] // 2)
    border = max(math.ceil(reach), border)
    near = near_clipped_mask(blur, true_k.shape[0] if true_k is not None else 2 * int(reach) + 1)
    row: dict = {"reach": reach, "border": border, "blurry": scores(blur, sharp, reach, border, near),
                 "near_clipped_fraction": 0.0 if near is None else float(near.mean())}
    if true_k is not None:
        row["true"] = scores(deconvolved(true_k, blur_space), sharp, reach, border, near)
        row["true_other"] = {}
        for method in true_rows:
            out = deconvolve_other_linear(method, lin, true_k, rl_iterations)
            r = scores(linear_to_srgb(out), sharp, reach, border, near)
            r["ratio"] = r["mse_aligned"] / max(row["true"]["mse_aligned"], 1e-20)
            row["true_other"][method] = r
    def scored(out: np.ndarray, seconds: float, *, kernel: np.ndarray | None = None, declined: bool = False) -> dict:
        """Scores of one output; with a true kernel also its error ratio and the kernel's similarity."""
        r = {**scores(out, sharp, reach, border, near), "seconds": seconds, "declined": declined,
             "kernel_size": None if kernel is None else int(np.asarray(kernel).shape[0])}
        if true_k is not None:
            r["ratio"] = r["mse_aligned"] / max(row["true"]["mse_aligned"], 1e-20)
            r["similarity"] = None if kernel is None else kernel_similarity(kernel, true_k)
        return r

    row["estimators"] = {}
    for name, fn in estimators.items():
        t0 = time.perf_counter()
        k = fn.from_srgb(blur) if hasattr(fn, "from_srgb") else fn(gray)
        seconds = time.perf_counter() - t0
        space = getattr(fn, "blur_space", "linear")
        out = blur if k is None else deconvolved(np.asarray(k, np.float64), space)
        row["estimators"][name] = scored(out, seconds, kernel=k, declined=k is None)
        if k is not None and space != "linear":
            row["estimators"][name]["blur_space"] = space
        if getattr(fn, "scores", None) is not None:  # an estimator that reports its scores (the pipeline)
            row["estimators"][name]["scores"] = fn.scores
    for name, restorer in (restorers or {}).items():
        t0 = time.perf_counter()
        out = np.asarray(restorer.restore_rgb(blur), np.float32)  # scores() clips to [0, 1]
        row["estimators"][f"restorer {name}"] = scored(out, time.perf_counter() - t0)
    return row


def summarise(per_image: list[dict], names: list[str]) -> list[dict]:
    """One row per estimator (and the true kernel): means over the images."""

    def mean(v: list[float]) -> float | None:
        v = [x for x in v if x is not None]
        return float(np.mean(v)) if v else None

    base = [r["blurry"] for r in per_image]
    rows = []
    candidates = [(n, [r["estimators"][n] for r in per_image]) for n in names]
    if all("true" in r for r in per_image):
        candidates.append(("true kernel", [r["true"] for r in per_image]))
        for method in per_image[0].get("true_other", {}):
            candidates.append((f"true kernel, {method}", [r["true_other"][method] for r in per_image]))
    for name, rs in candidates:
        s = {
            "row": name,
            "psnr": mean([x["psnr"] for x in rs]),
            "psnr_aligned": mean([x["psnr_aligned"] for x in rs]),
            "gain": mean([x["psnr"] - b["psnr"] for x, b in zip(rs, base)]),
            "gain_aligned": mean([x["psnr_aligned"] - b["psnr_aligned"] for x, b in zip(rs, base)]),
            "worst_gain_aligned": float(min(x["psnr_aligned"] - b["psnr_aligned"] for x, b in zip(rs, base))),
            "psnr_near_clipped": mean([x.get("psnr_near_clipped") for x in rs]),
            "gain_near_clipped": mean([x["psnr_near_clipped"] - b["psnr_near_clipped"] for x, b in zip(rs, base)
                                       if "psnr_near_clipped" in x]),
            "seconds": mean([x.get("seconds") for x in rs]),
            "declined": int(sum(bool(x.get("declined")) for x in rs)),
        }
        if "ratio" in rs[0]:
            ratios = np.array([x["ratio"] for x in rs])
            s["ratio_median"] = float(np.median(ratios))
            for t in SUCCESS_RATIOS:
                s[f"success_{t:g}"] = float(np.mean(ratios <= t))
            s["similarity"] = mean([x.get("similarity") for x in rs])
        rows.append(s)
    return rows


def run_set(root: Path, items: list[dict], estimators: dict[str, Estimator], *, reach: float,
            border: int, true_rows: tuple[str, ...] = (), rl_iterations: int = 30,
            restorers: dict | None = None) -> list[dict]:
    """Per-image rows of one set folder."""
    per_image = []
    meta = root / "meta.json"
    blur_space = json.loads(meta.read_text()).get("config", {}).get("blur_space", "linear") if meta.exists() else "linear"
    for it in items:
        i = int(it["index"])
        blur, sharp = load_pair(root, i)
        true_k = np.load(root / it["kernel"]).astype(np.float64) if it.get("kernel") else None
        row = score_image(blur, sharp, true_k, estimators, reach=reach, border=border, true_rows=true_rows,
                          rl_iterations=rl_iterations, restorers=restorers, blur_space=blur_space)
        row.update(index=i, photo=it.get("photo"))
        per_image.append(row)
        print(f"  {root.name}/{i:03d}: " + ", ".join(
            f"{n} {r['psnr_aligned']:.2f} dB" for n, r in row["estimators"].items()), file=sys.stderr)
    return per_image


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def table(set_name: str, per_image: list[dict], summary: list[dict]) -> list[str]:
    """Markdown: the summary, then one line per image and estimator."""
    b = per_image[0]
    blurry = np.mean([r["blurry"]["psnr"] for r in per_image])
    blurry_aligned = np.mean([r["blurry"]["psnr_aligned"] for r in per_image])
    lines: list[str] = [
        f"### {set_name} ({len(per_image)} images; blurry input {blurry:.2f} dB unaligned, {blurry_aligned:.2f} dB aligned)",
        "",
        ("| row | PSNR | PSNR aligned | gain / aligned gain | worst aligned gain | error ratio (median) "
         "| ratio ≤ 2 | ratio ≤ 3 | kernel similarity | s / image | declined | gain near clipped |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['row']} | {s['psnr']:.2f} | {s['psnr_aligned']:.2f} | {s['gain']:+.2f} / {s['gain_aligned']:+.2f} "
            f"| {s['worst_gain_aligned']:+.2f} | {_fmt(s.get('ratio_median'), '.2f')} "
            f"| {_fmt(s.get('success_2'), '.0%')} | {_fmt(s.get('success_3'), '.0%')} "
            f"| {_fmt(s.get('similarity'), '.3f')} | {_fmt(s['seconds'], '.1f')} | {s['declined']} "
            f"| {_fmt(s['gain_near_clipped'], '+.2f')} |")
    names = list(b["estimators"])
    others = list(b.get("true_other", {}))
    if others:
        names = names + [f"true kernel, {m}" for m in others]
    lines += ["", "Per image (aligned PSNR dB / error ratio / similarity):", "",
              "| image | reach px | blurry | true kernel | " + " | ".join(names) + " |",
              "|---|---|---|---|" + "---|" * len(names)]
    for r in per_image:
        cells = []
        for n in names:
            e = r["estimators"][n] if n in r["estimators"] else r["true_other"][n.split(", ", 1)[1]]
            cell = f"{e['psnr_aligned']:.2f}"
            if "ratio" in e:
                cell += f" / {e['ratio']:.2f} / {_fmt(e.get('similarity'), '.2f')}"
            cells.append(cell + (" (declined)" if e.get("declined") else ""))
        true = f"{r['true']['psnr_aligned']:.2f}" if "true" in r else "–"
        lines.append(f"| {r['index']:03d} {r.get('photo') or ''} | {r['reach']:g} | {r['blurry']['psnr_aligned']:.2f} "
                     f"| {true} | " + " | ".join(cells) + " |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.set_defaults(sets=["uniform", "large"])
    ap.add_argument("--true-rows", nargs="*", default=[], choices=NONBLIND,
                    help="also deconvolve with the true kernel by these methods (rows 'true kernel, METHOD')")
    ap.add_argument("--rl-iterations", type=int, default=30, help="iterations of the --true-rows RL methods")
    ap.add_argument("--estimators", nargs="*", default=["shipped", "pipeline"],
                    help="shipped, pipeline, or NAME=module:function (f(gray) -> kernel | None)")
    ap.add_argument("--restorers", nargs="*", default=[], metavar="NAME",
                    help="also score whole restorers (names of deblurkit deblur --model, e.g. default nafnet-w16)")
    ap.add_argument("--params", nargs="*", default=[], metavar="KEY=VALUE",
                    help="BlindParams overrides for the pipeline estimator and the restorers' kernel stages, "
                         "e.g. agreement=0.8 accept_overshoot=0.005")
    ap.add_argument("--reach", type=float, default=15.0,
                    help="shift reach in px for sets without true kernels (else half the true kernel size)")
    ap.add_argument("--border", type=int, default=15, help="least border crop in px for the aligned scores")
    ap.add_argument("--out", default=str(ROOT / "studies/results/blind_benchmark"))
    args = ap.parse_args(argv)

    params = parse_params(args.params)
    estimators = dict(resolve_estimator(s, params) for s in args.estimators)
    from deblurkit.infer import load_restorer

    # --params apply to the restorers' kernel stages too (a chain keeps its own support gate)
    restorers = {name: load_restorer(name, blind_params=blind_params(params)) for name in args.restorers}
    t0 = time.time()
    results: dict = {"sets": {}, "estimators": args.estimators, "restorers": args.restorers, "protocol": {
        "space": "sRGB in [0, 1], data range 1, outputs clipped",
        "aligned": "best sub-pixel shift (0.25 px) within half the true kernel size; border crop max(reach, border)",
        "border": args.border, "reach_without_kernel": args.reach,
        "deconvolution": "hyper-Laplacian in linear light, BlindParams weight/alpha, brightness scale p99.5",
        "success_ratios": list(SUCCESS_RATIOS), "true_rows": args.true_rows, "pipeline_params": params,
        "rl_iterations": args.rl_iterations}}
    lines = [("Blind kernel estimators, Levin et al. 2009 protocol (see studies/blind_benchmark.py). PSNR dB in sRGB; "
              "'aligned' = after the best sub-pixel shift within half the true kernel size, border cropped; the error "
              "ratio is MSE(estimated kernel) / MSE(true kernel), both aligned, same deconvolution."), ""]
    for set_name in args.sets:
        found = set_items(args.testsets, set_name, args.limit, args.all_photos)
        if found is None or not found[1]:  # not built, or no photo large enough for it
            continue
        root, items = found
        per_image = run_set(root, items, estimators, reach=args.reach, border=args.border,
                            true_rows=tuple(args.true_rows), rl_iterations=args.rl_iterations, restorers=restorers)
        summary = summarise(per_image, list(estimators) + [f"restorer {n}" for n in restorers])
        results["sets"][set_name] = {"summary": summary, "per_image": per_image}
        lines += table(set_name, per_image, summary)
    results["wall_seconds"] = round(time.time() - t0, 1)
    results["command"] = "python -m studies.blind_benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
    lines.append(f"Whole run {results['wall_seconds']:.0f} s: `{results['command'].strip()}`")
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
