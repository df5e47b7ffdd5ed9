#!/usr/bin/env python3
"""Fit the blind pipeline's kernel trust thresholds on validation sets (train photos), never on the test sets.

    python -m studies.make_testsets --split train --out data/valsets
    python -m studies.kernel_gate collect --sets capture sharp noise-low night varying --step 2
    python -m studies.kernel_gate collect --sets uniform
    python -m studies.kernel_gate collect --sets large noise-high --step 2
    python -m studies.kernel_gate collect --sets saturated
    python -m studies.kernel_gate collect --sets medium
    # more validation photos: building facades (periodic structure)
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/urban100 --limit 16 --sets uniform varying \
        --out data/valsets-urban100
    python -m studies.kernel_gate collect --testsets data/valsets-urban100 --cache data/kernel_gate_cache_urban100 \
        --sets uniform varying
    python -m studies.kernel_gate fit --extra-cache urban=data/kernel_gate_cache_urban100 --worst 0.6 \
        --against-truth --unconstrained saturated

``collect``: per validation pair, the blind pipeline's kernel on one tile with every kernel
trusted, its no-reference scores (:func:`deblurkit.kernel_aware.blind.kernel_scores`) and the
gain of the pipeline's deconvolution with it over the blurry input (shift-aligned PSNR as in
``studies/blind_benchmark.py``; also with the true kernel). One JSON per set under ``--cache``,
written after every image, so an interrupted run resumes. ``--step N`` takes every N-th pair.
``rescore``: the gains again from the stored kernels (after a change of the deconvolution; no
re-estimation). ``weights``: the deconvolution's prior weights compared on the pairs the shipped
rule deconvolves, from the stored kernels (``--combos WEIGHT:NOISE_WEIGHT ...``; writes ``--out``),
beside the best of them per pair (chosen with the sharp image: a bound on any per-photo choice);
with ``--chain``, on the pairs the default chain deconvolves, the chain (deconvolution, then its
network) at each weight beside the network alone.

``fit``: the thresholds on the deconvolution's overshoot (at most), the agreement, the
cross-scale consistency and the kernel's connectedness (at least) with the largest mean gain over the sets (each set weighted
equally; a declined pair gains 0) among those whose worst validation pair loses at most
``--worst`` dB (with ``--against-truth``: beyond what the true kernel's deconvolution loses; sets named
by ``--unconstrained`` count in the mean, not in this limit). Reported beside it: every kernel trusted; leave-one-photo-out (thresholds refitted
without each photo's pairs, that photo scored), so the validation figure is not the rule scoring
its own training pairs; a logistic model over all the scores
(:func:`deblurkit.logistic.fit_logistic`, pairs weighted by their absolute gain, its probability
threshold chosen the same way, also leave-one-photo-out); the shipped defaults of
:class:`deblurkit.kernel_aware.blind.BlindParams` (``accept_overshoot``, ``connectedness``,
``consistency``, ``agreement`` and ``agreement_downscaled``, through ``kernel_trusted``); and the oracle that accepts exactly the pairs that gain. Writes ``--out`` ``.md``/``.json``.
Compare a fitted rule on the held-out sets with ``python -m studies.blind_benchmark --params
accept_overshoot=... agreement=... consistency=... connectedness=...`` before making it the default.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from studies.heldout import load_pair, set_items, true_kernel, write_results

ROOT = Path(__file__).resolve().parents[1]
VAL_SETS = ["capture", "uniform", "large", "sharp", "noise-low", "noise-high", "night", "varying", "saturated", "medium"]


def collect_pair(blur: np.ndarray, sharp: np.ndarray, true_k: np.ndarray | None, border: int = 15) -> dict:
    """Kernel scores and deconvolution gains (dB) of one blurry/sharp pair."""
    from deblurkit.kernel_aware.blind import estimate_tile_kernels, trusting_every_kernel
    from studies.blind_benchmark import working_luminance

    t0 = time.perf_counter()
    found = estimate_tile_kernels(working_luminance(blur), tiles=1, input_space="linear",
                                  params=trusting_every_kernel())
    seconds = time.perf_counter() - t0
    kernel = found.kernels[0, 0]
    return {"scores": found.scores[0][0], "kernel": kernel, "blurred": bool(found.blurred[0, 0]),
            "seconds": seconds, **pair_gains(blur, sharp, kernel, true_k, border)}


def gain_scorer(blur: np.ndarray, sharp: np.ndarray, true_k: np.ndarray | None, border: int = 15):
    """A function of a restored sRGB image to its gains over the blurry input, dB, ``(shift-aligned,
    unaligned)``, scored as in ``studies/blind_benchmark.py``: shifts within half the true kernel's
    size (15 px without one), a border of at least that. The input is scored once."""
    from studies.blind_benchmark import scores

    reach = float(true_k.shape[0] // 2) if true_k is not None else 15.0
    border = max(math.ceil(reach), border)
    base = scores(blur, sharp, reach, border)

    def gain(out: np.ndarray) -> tuple[float, float]:
        s = scores(out, sharp, reach, border)
        return s["psnr_aligned"] - base["psnr_aligned"], s["psnr"] - base["psnr"]

    return gain


def pair_gains(blur: np.ndarray, sharp: np.ndarray, kernel: np.ndarray, true_k: np.ndarray | None,
               border: int = 15, params=None, then=None, gain=None) -> dict:
    """Gains (dB over the blurry input) of the pipeline's deconvolution with ``kernel`` (and ``true_k``),
    :func:`deblurkit.kernel_aware.blind.deconvolve_with_kernel` (with ``params``, a
    :class:`~deblurkit.kernel_aware.blind.BlindParams`; default settings if None); shift-aligned and
    unaligned (:func:`gain_scorer`, or ``gain``, one made for this pair already). ``then``: a
    restorer run on the deconvolved sRGB image clipped to [0, 1], as the default chain does (adds
    ``chain_gain``, with the estimated kernel)."""
    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.kernel_aware.blind import deconvolve_with_kernel

    lin = srgb_to_linear(blur)
    gain = gain or gain_scorer(blur, sharp, true_k, border)

    def deconvolved(k: np.ndarray) -> np.ndarray:
        return linear_to_srgb(deconvolve_with_kernel(lin, k, params))

    out = deconvolved(kernel)
    aligned, unaligned = gain(out)
    rec = {"gain": aligned, "gain_unaligned": unaligned}
    if true_k is not None:
        rec["true_gain"] = gain(deconvolved(true_k))[0]
    if then is not None:
        rec["chain_gain"] = gain(then(np.clip(out, 0.0, 1.0).astype(np.float32)))[0]
    return rec


def stored_kernel_path(cache: Path, set_name: str, key: str) -> Path:
    """Where ``collect`` stores the kernel it estimated for pair ``key`` of ``set_name``."""
    return Path(cache) / "kernels" / set_name / f"{key}.npy"


def collected_pairs(testsets: str | Path, cache: Path, set_name: str) -> tuple[Path, dict, dict[str, dict]] | None:
    """What ``collect`` stored for a set: its folder, the records by pair key and the set's items by
    the same keys; None (with a note) if the set or its records are missing."""
    path = Path(cache) / f"{set_name}.json"
    found = set_items(testsets, set_name, None)
    if found is None or not path.is_file():
        print(f"skip {set_name}: no pairs or no collected kernels ({path})", file=sys.stderr)
        return None
    root, items = found
    return root, json.loads(path.read_text()), {str(it["index"]): it for it in items}


def collect(args: argparse.Namespace) -> int:
    from deblurkit.io import atomic_write

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for set_name in args.sets:
        found = set_items(args.testsets, set_name, None)
        if found is None:
            continue
        root, items = found
        path = cache / f"{set_name}.json"
        done = json.loads(path.read_text()) if path.is_file() else {}
        for it in items[::args.step]:
            key = str(it["index"])
            # the estimates are kept, so that new scores need no re-estimation
            stored = stored_kernel_path(cache, set_name, key)
            if key in done and stored.is_file():
                continue
            blur, sharp = load_pair(root, it["index"])
            true_k = true_kernel(root, it)
            rec = {"photo": it["photo"], **collect_pair(blur, sharp, true_k)}
            stored.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(stored, "wb") as fh:
                np.save(fh, rec.pop("kernel"))
            done[key] = rec
            with atomic_write(path, "w") as fh:
                json.dump(done, fh, indent=1)
            print(f"{set_name} {key:>3}: gain {rec['gain']:+6.2f} dB (true {rec.get('true_gain', 0.0):+6.2f}) "
                  f"{rec['seconds']:.1f} s", file=sys.stderr)
    return 0


def rescore(args: argparse.Namespace) -> int:
    """Recompute the gains of every collected pair from its stored kernel (no re-estimation), e.g.
    after a change of the deconvolution; the scores and kernels are kept."""
    from deblurkit.io import atomic_write

    cache = Path(args.cache)
    for set_name in args.sets:
        found = collected_pairs(args.testsets, cache, set_name)
        if found is None:
            continue
        root, done, items = found
        for key, rec in done.items():
            it = items[key]
            blur, sharp = load_pair(root, it["index"])
            true_k = true_kernel(root, it)
            old = rec["gain"]
            rec.update(pair_gains(blur, sharp, np.load(stored_kernel_path(cache, set_name, key)), true_k))
            print(f"{set_name} {key:>3}: gain {old:+6.2f} -> {rec['gain']:+6.2f} dB", file=sys.stderr)
        with atomic_write(cache / f"{set_name}.json", "w") as fh:
            json.dump(done, fh, indent=1)
    return 0


_NETWORK: dict = {}


def chain_network():
    """The network stage of the default chain (loaded once per worker process), as a function of an
    sRGB image in [0, 1] to its restoration clipped to [0, 1]."""
    if "run" not in _NETWORK:
        from deblurkit.infer import DEFAULT_RESTORER, load_restorer

        stage = load_restorer(DEFAULT_RESTORER.split("+")[-1], threads=1)
        _NETWORK["run"] = lambda rgb: np.clip(stage.restore_rgb(rgb), 0.0, 1.0)
    return _NETWORK["run"]


def _weight_gains(job: tuple) -> dict:
    """Gains of one pair's deconvolution with its stored and its true kernel, per prior weight pair;
    with ``chain``, also of the default chain's network after the deconvolution and alone."""
    from dataclasses import replace

    from deblurkit.kernel_aware.blind import BlindParams

    set_label, root, item, kernel_path, combos, chain = job
    index = item["index"]
    blur, sharp = load_pair(Path(root), index)
    true_k, kernel = true_kernel(Path(root), item), np.load(kernel_path)
    then = chain_network() if chain else None
    gain = gain_scorer(blur, sharp, true_k)
    rows = [pair_gains(blur, sharp, kernel, true_k, params=replace(BlindParams(), weight=w, noise_weight=nw),
                       then=then, gain=gain)
            for w, nw in combos]
    rec = {"set": set_label, "index": index, "rows": rows}
    note = " ".join(f"{r['gain']:+.2f}" for r in rows)
    if chain:
        rec["network_gain"] = gain(then(blur))[0]
        note += f" | network {rec['network_gain']:+.2f} chain " + " ".join(f"{r['chain_gain']:+.2f}" for r in rows)
    print(f"{set_label} {index:>3}: {note}", file=sys.stderr, flush=True)
    return rec


def best_per_pair(rows: list[list[dict]], key: str) -> float:
    """Mean over pairs of each pair's best ``key`` over the weights (``rows[pair][weight]``): the
    weight chosen per pair with the sharp image, the most any per-photo choice among them could add."""
    return float(np.mean([max(x[key] for x in r) for r in rows]))


def weights(args: argparse.Namespace) -> int:
    """The deconvolution's prior weights compared on the collected pairs whose kernel the shipped
    trust rule deconvolves (stored kernels, no re-estimation): mean gain per set with the estimated
    and with the true kernel for every ``(weight, noise_weight)``, and with the best of them per pair.
    With ``--chain``: on the pairs the default chain deconvolves (support at least
    ``CHAIN_KERNEL_MIN_SUPPORT``, read as the pipeline reads it, ``blind.kernel_support_at_scale``),
    the chain's gain (deconvolution, then its network) per weight beside the network alone."""
    from concurrent.futures import ProcessPoolExecutor

    from deblurkit.infer.restorers import CHAIN_KERNEL_MIN_SUPPORT
    from deblurkit.kernel_aware.blind import BlindParams, kernel_support_at_scale, kernel_trusted

    shipped = BlindParams()
    combos = [(float(w), float(nw)) for w, nw in (c.split(":") for c in args.combos)]
    min_support = CHAIN_KERNEL_MIN_SUPPORT if args.chain else shipped.no_blur_support
    caches = [("", Path(args.testsets), Path(args.cache))]
    for extra in args.extra:
        label, _, dirs = extra.partition("=")
        testsets, _, cache = dirs.partition(",")
        caches.append((label + "-", Path(testsets), Path(cache)))
    jobs = []
    for prefix, testsets, cache in caches:
        for set_name in args.sets:
            found = collected_pairs(testsets, cache, set_name)
            if found is None:
                continue
            root, done, items = found
            for key, rec in done.items():
                deconvolved = rec["blurred"] and kernel_trusted(rec["scores"], shipped)  # as gated_summary counts it
                if deconvolved and (not args.chain or kernel_support_at_scale(rec["scores"]) >= min_support):
                    jobs.append((prefix + set_name, str(root), items[key],
                                 str(stored_kernel_path(cache, set_name, key)), combos, args.chain))
    if not jobs:
        print("no collected pair is deconvolved" + (" by the chain" if args.chain else "") + ": nothing to compare",
              file=sys.stderr)
        return 1
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        pairs = list(pool.map(_weight_gains, jobs))
    labels = list(dict.fromkeys(p["set"] for p in pairs))
    table: dict = {}
    for label in labels:
        mine = [p for p in pairs if p["set"] == label]
        rows = [p["rows"] for p in mine]
        t = table[label] = {"pairs": len(rows),
                            "gain": [float(np.mean([r[i]["gain"] for r in rows])) for i in range(len(combos))]}
        t["best_gain"] = best_per_pair(rows, "gain")
        if "true_gain" in rows[0][0]:
            t["true_gain"] = [float(np.mean([r[i]["true_gain"] for r in rows])) for i in range(len(combos))]
            t["best_true_gain"] = best_per_pair(rows, "true_gain")
        if args.chain:
            t["network_gain"] = float(np.mean([p["network_gain"] for p in mine]))
            t["chain_gain"] = [float(np.mean([r[i]["chain_gain"] for r in rows])) for i in range(len(combos))]
            t["chain_worst_vs_network"] = [float(min(p["rows"][i]["chain_gain"] - p["network_gain"] for p in mine))
                                           for i in range(len(combos))]
    heads = [f"{w:g} + {nw:g} σ²" for w, nw in combos]
    means = [float(np.mean([t["gain"][i] for t in table.values()])) for i in range(len(combos))]
    lines = [("Hyper-Laplacian prior weight of the pipeline's deconvolution (`weight + noise_weight σ²`) on the "
              "validation pairs whose estimated kernel the shipped trust rule deconvolves"
              + (f" and whose effective support is at least {min_support:g} px² (the default chain's gate)"
                 if args.chain else "")
              + " (stored kernels of `kernel_gate collect`). Mean shift-aligned gain over the blurry input, dB: "
              "estimated kernel (true kernel)."), "",
             "| set | pairs | " + " | ".join(heads) + " | best per pair |", "|---|---|" + "---|" * (len(combos) + 1)]
    for label, t in table.items():
        cells = [f"{g:+.2f}" + (f" ({t['true_gain'][i]:+.2f})" if "true_gain" in t else "")
                 for i, g in enumerate(t["gain"])]
        cells.append(f"{t['best_gain']:+.2f}" + (f" ({t['best_true_gain']:+.2f})" if "true_gain" in t else ""))
        lines.append(f"| {label} | {t['pairs']} | " + " | ".join(cells) + " |")
    best_mean = float(np.mean([t["best_gain"] for t in table.values()]))
    lines.append("| mean of sets | | " + " | ".join(f"{m:+.2f}" for m in means) + f" | {best_mean:+.2f} |")
    lines += ["", ("Best per pair: the weight of this list with the largest gain, chosen for each pair with the "
              "sharp image (a bound on any per-photo choice among them, not a method).")]
    result = {"combos": combos, "sets": table, "mean_of_sets": means, "best_per_pair_mean_of_sets": best_mean,
              "min_support": min_support}
    if args.chain:
        chain_means = [float(np.mean([t["chain_gain"][i] for t in table.values()])) for i in range(len(combos))]
        gaps = [[p["rows"][i]["chain_gain"] - p["network_gain"] for p in pairs] for i in range(len(combos))]
        result.update(chain_mean_of_sets=chain_means,
                      network_mean_of_sets=float(np.mean([t["network_gain"] for t in table.values()])),
                      chain_worst_vs_network=[float(min(g)) for g in gaps],
                      chain_pairs_below_network=[int(sum(x < -0.5 for x in g)) for g in gaps])
        lines += ["", ("The default chain on the same pairs: the deconvolution at each weight, then the network "
                       "(`" + ", ".join(heads) + "`), beside the network alone. Mean shift-aligned gain, dB "
                       "(worst pair's chain gain minus the network alone's)."), "",
                  "| set | pairs | network alone | " + " | ".join(heads) + " |",
                  "|---|---|---|" + "---|" * len(combos)]
        for label, t in table.items():
            cells = [f"{g:+.2f} ({t['chain_worst_vs_network'][i]:+.2f})" for i, g in enumerate(t["chain_gain"])]
            lines.append(f"| {label} | {t['pairs']} | {t['network_gain']:+.2f} | " + " | ".join(cells) + " |")
        lines.append(f"| mean of sets | | {result['network_mean_of_sets']:+.2f} | "
                     + " | ".join(f"{m:+.2f} ({w:+.2f})" for m, w in zip(chain_means, result["chain_worst_vs_network"]))
                     + " |")
        lines.append("| pairs > 0.5 dB below the network alone | | | "
                     + " | ".join(str(n) for n in result["chain_pairs_below_network"]) + " |")
    lines += ["", f"Whole run {time.time() - t0:.0f} s: `python -m studies.kernel_gate weights "
              + " ".join(sys.argv[2:]) + "`"]
    write_results(args.out, result, lines)  # prints the tables too
    return 0


def load_records(cache: Path, sets: list[str], label: str = "") -> list[dict]:
    """All collected pairs of ``sets`` as flat records (``set``, ``photo``, scores, gains); with a
    ``label``, the sets are named ``label-set`` (validation pairs from another photo source)."""
    out = []
    for set_name in sets:
        path = cache / f"{set_name}.json"
        if not path.is_file():
            if not label:
                print(f"skip {set_name}: no {path} (run collect first)", file=sys.stderr)
            continue
        name = f"{label}-{set_name}" if label else set_name
        for key, rec in sorted(json.loads(path.read_text()).items(), key=lambda kv: int(kv[0])):
            out.append({"set": name, "index": int(key), **rec, "photo": f"{label}/{rec['photo']}" if label else rec["photo"]})
    return out


def kernel_loss(record: dict, against_truth: bool) -> float:
    """A deconvolved pair's gain as the fit's loss limit reads it: over the input, or (``against_truth``)
    over the lesser of the input and the true kernel's deconvolution, so that a pair the true kernel
    loses too (a failure of the deconvolution, not of the kernel) counts only by its excess."""
    true_gain = record.get("true_gain")
    if not against_truth or true_gain is None or math.isnan(true_gain):
        return record["gain"]
    return record["gain"] - min(0.0, true_gain)


def gated_summary(records: list[dict], accept: list[bool], *, against_truth: bool = False,
                  unconstrained: tuple[str, ...] = ()) -> dict:
    """Per set and overall: mean gain with the accepted kernels (declined pairs gain 0), worst pair, kept;
    ``constrained_worst``: the worst :func:`kernel_loss` outside the ``unconstrained`` sets."""
    by_set: dict[str, list[float]] = {}
    kept: dict[str, int] = {}
    constrained = [0.0]
    for r, ok in zip(records, accept):
        deconvolved = ok and r["blurred"]
        by_set.setdefault(r["set"], []).append(r["gain"] if deconvolved else 0.0)
        kept[r["set"]] = kept.get(r["set"], 0) + int(deconvolved)
        if deconvolved and r["set"] not in unconstrained:
            constrained.append(kernel_loss(r, against_truth))
    sets = {s: {"mean": float(np.mean(g)), "worst": float(np.min(g)), "kept": kept[s], "n": len(g)}
            for s, g in by_set.items()}
    return {"sets": sets, "mean_of_sets": float(np.mean([v["mean"] for v in sets.values()])),
            "worst": float(min(v["worst"] for v in sets.values())), "constrained_worst": float(min(constrained))}


def summary_rows(rows: dict[str, dict], sets: list[str], *extra: str) -> list[str]:
    """Markdown table rows of :func:`gated_summary` results: per set mean gain / worst pair / pairs kept,
    then the mean of sets, the worst pair, the limit's worst pair and the ``extra`` keys of each row."""
    lines = []
    for name, s in rows.items():
        cells = [f"{s['sets'][k]['mean']:+.2f} / {s['sets'][k]['worst']:+.2f} / {s['sets'][k]['kept']} of "
                 f"{s['sets'][k]['n']}" for k in sets]
        cells += [f"{s[k]:+.2f}" for k in ("mean_of_sets", "worst", "constrained_worst", *extra)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


OVERSHOOTS = (0.002, 0.003, 0.004, 0.005, 0.007, 0.01, math.inf)
AGREEMENTS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.88)
CONSISTENCIES = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8)
CONNECTEDNESS = (0.0, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def rule_accepts(records: list[dict], overshoot: float, agreement: float, consistency: float,
                 connectedness: float) -> list[bool]:
    """Which pairs the thresholds trust (the pipeline's own test, :func:`deblurkit.kernel_aware.blind.kernel_trusted`;
    the agreement threshold applies at every scale)."""
    from deblurkit.kernel_aware.blind import BlindParams, kernel_trusted

    params = BlindParams(accept_overshoot=overshoot, agreement=agreement, agreement_downscaled=agreement,
                         consistency=consistency, connectedness=connectedness)
    return [kernel_trusted(r["scores"], params) for r in records]


def best_decision(records: list[dict], candidates, accepts, worst: float, fallback, **constraint):
    """The candidate whose accepted pairs (``accepts(candidate)``) give the largest mean-of-sets gain
    with no pair losing more than ``worst`` dB (ties: the first); ``fallback`` if none qualifies.
    ``constraint``: :func:`gated_summary`'s ``against_truth`` and ``unconstrained``."""
    best, chosen = -math.inf, fallback
    for candidate in candidates:
        s = gated_summary(records, accepts(candidate), **constraint)
        if s["constrained_worst"] >= -worst and s["mean_of_sets"] > best + 1e-9:
            best, chosen = s["mean_of_sets"], candidate
    return chosen


def choose_rule(records: list[dict], worst: float, **constraint) -> tuple[float, float, float, float]:
    """The grid thresholds with the largest mean-of-sets gain whose worst pair loses at most ``worst``
    (ties: the first in grid order, i.e. the strictest overshoot and the weakest other checks)."""
    return best_decision(records, itertools.product(OVERSHOOTS, AGREEMENTS, CONSISTENCIES, CONNECTEDNESS),
                         lambda rule: rule_accepts(records, *rule), worst,
                         (0.0, 1.01, 1.01, 1.01), **constraint)  # fallback: trust nothing


def choose_threshold(records: list[dict], probs: np.ndarray, worst: float, **constraint) -> float:
    """The probability threshold with the largest mean-of-sets gain whose worst pair loses at most ``worst``."""
    return float(best_decision(records, sorted(set(np.round(probs, 4).tolist()) | {0.5}),
                               lambda t: list(probs >= t), worst, 1.0 + 1e-9, **constraint))


def leave_one_photo_out(records: list[dict], decide) -> list[bool]:
    """``decide(train, test) -> accepted flags of test``, run with each photo's pairs held out."""
    accept = [False] * len(records)
    for photo in sorted({r["photo"] for r in records}):
        held = [i for i, r in enumerate(records) if r["photo"] == photo]
        train = [r for r in records if r["photo"] != photo]
        for i, ok in zip(held, decide(train, [records[i] for i in held])):
            accept[i] = ok
    return accept


def fit(args: argparse.Namespace) -> int:
    from deblurkit.kernel_aware.blind import BlindParams, kernel_trusted
    from deblurkit.logistic import fit_logistic

    t0 = time.time()
    records = load_records(Path(args.cache), args.sets)
    for extra in args.extra_cache:
        label, _, folder = extra.partition("=")
        records += load_records(Path(folder), args.sets, label)
    if not records:
        return 2
    constraint = {"against_truth": args.against_truth, "unconstrained": tuple(args.unconstrained)}
    features = tuple(records[0]["scores"])
    logs = tuple(f for f in features if f in ("overshoot", "support", "extent", "noise_sigma", "scale"))

    def rule_decide(train: list[dict], test: list[dict]) -> list[bool]:
        return rule_accepts(test, *choose_rule(train, args.worst, **constraint))

    def measured(scores: dict[str, float]) -> dict[str, float]:
        # The pipeline skips the agreement (NaN) of kernels too small to deconvolve: no evidence, 0.
        return {k: 0.0 if math.isnan(v) else v for k, v in scores.items()}

    def logistic_decide(train: list[dict], test: list[dict]) -> list[bool]:
        m = fit_logistic([measured(r["scores"]) for r in train], [int(r["gain"] > 0) for r in train], features,
                         log_features=logs, c=args.c, sample_weight=[abs(r["gain"]) + 0.1 for r in train])
        t = choose_threshold(train, np.array([m.probability(measured(r["scores"])) for r in train]), args.worst,
                             **constraint)
        return [m.probability(measured(r["scores"])) >= t for r in test]

    rule = choose_rule(records, args.worst, **constraint)
    shipped = BlindParams()

    def summary(accept: list[bool]) -> dict:
        return gated_summary(records, accept, **constraint)

    rows = {
        "every kernel trusted": summary([True] * len(records)),
        "fitted thresholds": summary(rule_accepts(records, *rule)),
        "fitted thresholds, leave one photo out": summary(leave_one_photo_out(records, rule_decide)),
        "logistic model, all scores": summary(logistic_decide(records, records)),
        "logistic model, leave one photo out": summary(leave_one_photo_out(records, logistic_decide)),
        "shipped defaults (BlindParams)": summary([kernel_trusted(r["scores"], shipped) for r in records]),
        "oracle (accept where it gains)": summary([r["gain"] > 0 for r in records]),
    }
    sets = list(rows["every kernel trusted"]["sets"])
    cmd = "python -m studies.kernel_gate " + " ".join(sys.argv[1:])
    lines = [
        ("Kernel trust thresholds fitted on validation pairs (train photos; see studies/kernel_gate.py). Gain = "
         "shift-aligned PSNR gain (dB) of the pipeline's deconvolution with the estimated kernel; a declined pair "
         "gains 0; a kernel with effective support below 12 px is never deconvolved. Cells: mean gain / worst pair "
         "/ pairs deconvolved of pairs."),
        "",
        (f"Fitted: overshoot <= {rule[0]:g}, agreement >= {rule[1]:g}, consistency >= {rule[2]:g}, "
         f"connectedness >= {rule[3]:g} (largest "
         f"mean-of-sets gain with {'no pair made worse' if args.worst == 0 else f'no pair below -{args.worst:g} dB'}"
         f"{' beyond the true kernel' if args.against_truth else ''}"
         f"{', sets ' + ', '.join(args.unconstrained) + ' aside' if args.unconstrained else ''}); "
         f"{len(records)} pairs. Last column: that limit's worst pair."),
        "",
        "| row | " + " | ".join(sets) + " | mean of sets | worst | worst (limit) |",
        "|---|" + "---|" * (len(sets) + 3),
    ]
    lines += summary_rows(rows, sets)
    lines += ["", (f"`{cmd.strip()}` ({time.time() - t0:.0f} s; collecting took "
                   f"{sum(r['seconds'] for r in records) / 60:.0f} min of kernel estimation on a shared 2-core machine)")]
    results = {"rule": {"accept_overshoot": rule[0], "agreement": rule[1], "consistency": rule[2],
                        "connectedness": rule[3]},
               "rows": rows, "records": len(records), "worst_db": args.worst, "c": args.c}
    write_results(args.out, results, lines)
    return 0

REGION_AGREEMENTS = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def region_record(job: tuple[str, str, int, str]) -> dict:
    """The shipped pipeline's scores of one collected pair, the half-image agreement measured where it
    could overturn a decline (``BlindParams.region_agreement``), and whether its kernel is the stored one."""
    from deblurkit.kernel_aware.blind import BlindParams, estimate_tile_kernels
    from studies.blind_benchmark import working_luminance

    root, _, index, kernel_path = job
    blur, _ = load_pair(Path(root), index)
    found = estimate_tile_kernels(working_luminance(blur), tiles=1, input_space="linear", params=BlindParams(workers=1))
    stored = np.load(kernel_path)
    kernel = found.kernels[0, 0]
    same = kernel.shape == stored.shape and bool(np.allclose(kernel, stored, atol=1e-6))
    return {"scores": found.scores[0][0], "same_kernel": same}


def regions(args: argparse.Namespace) -> int:
    """The half-image agreement as a way to overturn the other checks' declines, on the collected pairs."""
    from concurrent.futures import ProcessPoolExecutor
    from dataclasses import replace

    from deblurkit.kernel_aware.blind import BlindParams, kernel_trusted

    t0 = time.time()
    sources = [("", args.testsets, args.cache)] + [
        (label, *spec.split(",", 1)) for label, _, spec in (e.partition("=") for e in args.extra)]
    records, jobs = [], []
    for label, testsets, cache in sources:
        for rec in load_records(Path(cache), args.sets, label):
            set_name = rec["set"].split("-", 1)[1] if label else rec["set"]
            found = collected_pairs(testsets, Path(cache), set_name)
            if found is None:
                continue
            root, _, items = found
            records.append(rec)
            jobs.append((str(root), set_name, int(items[str(rec["index"])]["index"]),
                         str(stored_kernel_path(Path(cache), set_name, str(rec["index"])))))
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        measured = list(pool.map(region_record, jobs))
    shipped = BlindParams()
    checks = replace(shipped, region_agreement=None)
    for rec, m in zip(records, measured):
        rec["checks"] = kernel_trusted(m["scores"], checks)
        rec["region_agreement"] = m["scores"]["region_agreement"]
        rec["same_kernel"] = m["same_kernel"]
    constraint = {"against_truth": True, "unconstrained": tuple(args.unconstrained)}

    def accepts(threshold: float | None, rows: list[dict] | None = None) -> list[bool]:
        return [r["checks"] or (threshold is not None and r["region_agreement"] >= threshold)
                for r in (records if rows is None else rows)]

    def overturned_worst(rows: list[dict], accept: list[bool]) -> float:
        """Worst :func:`kernel_loss` among the pairs only the half-image agreement lets through (0 if none):
        the other checks' own losses are the same for every threshold, so the limit reads these."""
        return min((kernel_loss(r, True) for r, ok in zip(rows, accept)
                    if ok and r["blurred"] and not r["checks"] and r["set"] not in args.unconstrained), default=0.0)

    def decide(train: list[dict], test: list[dict]) -> list[bool]:
        best, chosen = -math.inf, None
        for t in (None, *REGION_AGREEMENTS):
            accept = accepts(t, train)
            mean = gated_summary(train, accept, **constraint)["mean_of_sets"]
            if overturned_worst(train, accept) >= -args.worst and mean > best + 1e-9:
                best, chosen = mean, t
        return accepts(chosen, test)

    rows = {}
    for t in (None, *REGION_AGREEMENTS):
        accept = accepts(t)
        rows["other checks only" if t is None else f"or half-image agreement >= {t:g}"] = {
            **gated_summary(records, accept, **constraint), "overturned_worst": overturned_worst(records, accept)}
    accept = leave_one_photo_out(records, decide)
    rows["threshold chosen leaving one photo out"] = {**gated_summary(records, accept, **constraint),
                                                      "overturned_worst": overturned_worst(records, accept)}
    overturned = sorted((r for r in records if not r["checks"] and r["blurred"]
                         and r["region_agreement"] >= min(REGION_AGREEMENTS)),
                        key=lambda r: -r["region_agreement"])
    sets = list(rows["other checks only"]["sets"])
    cmd = "python -m studies.kernel_gate " + " ".join(sys.argv[1:])
    lines = [
        ("Kernels the shipped checks decline, trusted after all where two re-estimates on the halves of the "
         "image find them again (`deblurkit.kernel_aware.estimation.region_agreement`, the smaller of the two "
         "kernel similarities), on the validation pairs of studies/kernel_gate.py. Gain = shift-aligned PSNR gain "
         "(dB) of the pipeline's deconvolution; a declined pair gains 0. Cells: mean gain / worst pair / pairs "
         "deconvolved of pairs. Last two columns: the worst loss beyond the true kernel's (outside "
         f"{', '.join(args.unconstrained) or 'no set'}) of all deconvolved pairs, and of those only the "
         "half-image agreement lets through; the leave-one-photo-out row chooses the threshold without each "
         f"photo (largest mean of sets whose overturned pairs lose at most {args.worst:g} dB)."),
        "",
        "| rule | " + " | ".join(sets) + " | mean of sets | worst | worst (limit) | worst overturned |",
        "|---|" + "---|" * (len(sets) + 4),
    ]
    lines += summary_rows(rows, sets, "overturned_worst")
    lines += ["", (f"Declined pairs (support of at least 12 px²) with a half-image agreement of at least "
                   f"{min(REGION_AGREEMENTS):g}:"), "", "| pair | agreement | gain | true kernel's gain |", "|---|---|---|---|"]
    lines += [f"| {r['set']} {r['index']} | {r['region_agreement']:.2f} | {r['gain']:+.2f} | "
              f"{r.get('true_gain', math.nan):+.2f} |" for r in overturned]
    lines += ["", (f"{len(records)} pairs; the pipeline's kernel equals the stored one on "
                   f"{sum(r['same_kernel'] for r in records)}. `{cmd.strip()}` ({time.time() - t0:.0f} s)")]
    results = {"rows": rows, "pairs": [{k: r[k] for k in ("set", "index", "photo", "checks", "region_agreement",
                                                          "gain", "blurred", "same_kernel")} for r in records]}
    write_results(args.out, results, lines)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="estimate, score and deconvolve every validation pair (resumable)")
    c.add_argument("--testsets", default=str(ROOT / "data/valsets"))
    c.add_argument("--sets", nargs="*", default=VAL_SETS)
    c.add_argument("--step", type=int, default=1, help="every N-th pair of each set")
    c.add_argument("--cache", default=str(ROOT / "data/kernel_gate_cache"))
    r = sub.add_parser("rescore", help="recompute the collected pairs' gains from their stored kernels")
    r.add_argument("--testsets", default=str(ROOT / "data/valsets"))
    r.add_argument("--sets", nargs="*", default=VAL_SETS)
    r.add_argument("--cache", default=str(ROOT / "data/kernel_gate_cache"))
    w = sub.add_parser("weights", help="compare deconvolution prior weights on the trusted collected pairs")
    w.add_argument("--testsets", default=str(ROOT / "data/valsets"))
    w.add_argument("--sets", nargs="*", default=VAL_SETS)
    w.add_argument("--cache", default=str(ROOT / "data/kernel_gate_cache"))
    w.add_argument("--extra", nargs="*", default=[], metavar="LABEL=TESTSETS,CACHE",
                   help="more collected pairs, e.g. urban=data/valsets-urban100,data/kernel_gate_cache_urban100")
    w.add_argument("--combos", nargs="+", default=["2e-3:20", "1e-3:20", "5e-4:20", "1e-3:5", "5e-4:5"],
                   metavar="WEIGHT:NOISE_WEIGHT")
    w.add_argument("--chain", action="store_true",
                   help="on the pairs the default chain deconvolves, also its network after each deconvolution")
    w.add_argument("--workers", type=int, default=2, help="processes")
    w.add_argument("--out", default=str(ROOT / "studies/results/deconv_weight"))
    f = sub.add_parser("fit", help="fit the thresholds on the collected pairs")
    f.add_argument("--sets", nargs="*", default=VAL_SETS)
    f.add_argument("--cache", default=str(ROOT / "data/kernel_gate_cache"))
    f.add_argument("--extra-cache", nargs="*", default=[], metavar="LABEL=DIR",
                   help="more collected pairs (e.g. urban=data/kernel_gate_cache_urban100, collected from "
                        "sets built with make_testsets --photo-dir); their sets are named LABEL-SET")
    f.add_argument("--worst", type=float, default=0.0,
                   help="largest loss (dB) allowed on a validation pair (0: none may lose, the project's standard)")
    f.add_argument("--against-truth", action="store_true",
                   help="--worst limits a pair's loss beyond the true kernel's (a pair the true kernel loses "
                        "too fails in the deconvolution, which no kernel threshold can avoid)")
    f.add_argument("--unconstrained", nargs="*", default=[], metavar="SET",
                   help="sets whose pairs count in the mean gain but not in the --worst limit")
    f.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the compared logistic regression")
    f.add_argument("--out", default=str(ROOT / "studies/results/kernel_gate"))
    g = sub.add_parser("regions", help="the half-image agreement as a way to overturn declines, on the collected pairs")
    g.add_argument("--testsets", default=str(ROOT / "data/valsets"))
    g.add_argument("--sets", nargs="*", default=VAL_SETS)
    g.add_argument("--cache", default=str(ROOT / "data/kernel_gate_cache"))
    g.add_argument("--extra", nargs="*", default=[], metavar="LABEL=TESTSETS,CACHE",
                   help="more collected pairs, e.g. urban=data/valsets-urban100,data/kernel_gate_cache_urban100")
    g.add_argument("--worst", type=float, default=0.6, help="largest loss beyond the true kernel's (dB) when choosing")
    g.add_argument("--unconstrained", nargs="*", default=["saturated"], metavar="SET")
    g.add_argument("--workers", type=int, default=2, help="processes")
    g.add_argument("--out", default=str(ROOT / "studies/results/kernel_gate_regions"))
    args = ap.parse_args(argv)
    return {"collect": collect, "rescore": rescore, "weights": weights, "fit": fit, "regions": regions}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
