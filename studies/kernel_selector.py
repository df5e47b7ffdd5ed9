#!/usr/bin/env python3
"""A learned no-reference kernel selector: can a model trained on synthetic pairs pick, per photo,
the kernel estimate that deconvolves best?

    # training pools: photos of ../shared/data/sharp, never the held-out photos (BSDS500's photos
    # are too small for the 384-px sets: capture only)
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/bsds500 --limit 30 \
        --sets capture --out data/selector-bsds500
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/sunhays80 --limit 20 \
        --sets capture uniform noise-low --out data/selector-sunhays80
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/urban100 --limit 30 \
        --sets uniform noise-low --out data/selector-urban100
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/polyu40 --limit 40 \
        --sets uniform noise-low --out data/selector-polyu40
    for t in data/selector-bsds500 data/selector-sunhays80 data/selector-urban100 data/selector-polyu40 \
            data/testsets; do
        python -m studies.kernel_selector collect --testsets $t; done
    python -m studies.kernel_selector collect --testsets data/valsets --sets uniform noise-low
    python -m studies.kernel_selector collect --testsets data/valsets --sets capture --limit 44
    # the held-out paths re-timed with pauses (studies/paused_shake.py), without and with sensor noise
    python -m studies.paused_shake --testsets data/testsets --set capture --out data/testsets-paused
    python -m studies.paused_shake --testsets data/testsets --set uniform --out data/testsets-paused
    python -m studies.paused_shake --testsets data/testsets --set capture --noise --out data/testsets-paused-noise
    python -m studies.kernel_selector collect --testsets data/testsets-paused/paused
    python -m studies.kernel_selector collect --testsets data/testsets-paused-noise/paused
    # the blind pipeline's own kernels (every kernel trusted) on the scored sets and the training pools
    for t in data/testsets data/testsets-paused/paused data/testsets-paused-noise/paused data/selector-bsds500 \
            data/selector-sunhays80 data/selector-urban100 data/selector-polyu40; do
        python -m studies.kernel_selector collect --candidates pipeline --testsets $t; done
    python -m studies.kernel_selector collect --candidates pipeline --testsets data/valsets --sets uniform noise-low
    # night pairs, scored (and, with fit --train-sets ... night, trained on)
    for p in "sunhays80 20" "urban100 30" "polyu40 40"; do set -- $p
        python -m studies.make_testsets --photo-dir ../shared/data/sharp/$1 --limit $2 --sets night \
            --out data/selector-$1; done
    for t in data/selector-sunhays80 data/selector-urban100 data/selector-polyu40 data/testsets data/valsets; do
        python -m studies.kernel_selector collect --candidates pipeline --testsets $t --sets night; done
    # large and medium shakes (1000-px and 800-px crops: PolyU's photos and the 27 Urban100 photos wide
    # enough), scored with fit --train ... data/selector-urban100-large --train-sets ... large medium
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/polyu40 --limit 40 --sets large medium \
        --out data/selector-polyu40
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/urban100 --sets large medium \
        --out data/selector-urban100-large
    for t in data/selector-polyu40 data/selector-urban100-large; do
        python -m studies.kernel_selector collect --candidates pipeline --testsets $t --sets large medium; done
    # the choice among four estimates (``choice``): their kernels, and the pipeline with its checks on
    # the validation capture pairs
    for t in data/selector-bsds500 data/selector-sunhays80 data/selector-urban100 data/selector-polyu40 \
            data/testsets data/testsets-paused/paused data/testsets-paused-noise/paused; do
        python -m studies.kernel_selector collect --candidates kernels --testsets $t; done
    python -m studies.kernel_selector collect --candidates kernels --testsets data/valsets --sets uniform noise-low
    python -m studies.kernel_selector collect --candidates kernels --testsets data/valsets --sets capture --limit 44
    python -m studies.blind_benchmark --testsets data/valsets --sets capture --limit 44 --estimators pipeline \
        --out studies/results/blind_benchmark_pipeline_selector_val_capture
    # more training pools: other photos of the same collections, with the choice's candidates alone
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/bsds500 --skip 30 --limit 30 --sets capture \
        --out data/selector-bsds500-more
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/sunhays80 --skip 20 --limit 30 \
        --sets capture uniform noise-low --out data/selector-sunhays80-more
    python -m studies.make_testsets --photo-dir ../shared/data/sharp/urban100 --skip 30 --limit 40 \
        --sets uniform noise-low --out data/selector-urban100-more
    for t in data/selector-bsds500-more data/selector-sunhays80-more data/selector-urban100-more; do
        python -m studies.kernel_selector collect --candidates pipeline --testsets $t
        python -m studies.kernel_selector collect --testsets $t --settings "lam 4e-3" "gamma 8" "kernel_size 41, lam 1.6e-2"
        python -m studies.kernel_selector collect --candidates kernels --testsets $t; done
    # the pipeline with its trust checks on the training pools (the held-out sets: docs/classical.md)
    for p in bsds500 sunhays80 urban100 polyu40; do
        python -m studies.blind_benchmark --testsets data/selector-$p --estimators pipeline \
            --sets capture uniform noise-low --out studies/results/blind_benchmark_pipeline_checks_pool_$p; done
    python -m studies.kernel_selector fit --export src/deblurkit/weights/kernel-decision.json \
        --checks studies/results/blind_benchmark_pipeline_checks_pool_bsds500.json=data/selector-bsds500 ...

``studies/kernel_estimation_study.py`` found that the per-photo best of its 12 estimator settings
and "no deconvolution" comes within 0.1 dB of the true kernel, and that no hand-made rule
(consensus, gradient sparsity, the shipped network's judgement, the variational free energy)
finds it. Liu, Wang, Cho & Tang (2013) learned a no-reference quality of deblurred images from
labelled examples to choose among kernels and parameters. The same idea here, with the gain over
the blurry photo (PSNR, known on synthetic pairs) as the label:

``collect``: per pair of a set folder, the candidates (the study's ``SETTINGS`` of
:func:`deblurkit.kernel_aware.estimation.estimate_kernel` and a delta kernel, i.e. the
deconvolution's prior alone), each deconvolved by (b)'s step
(:func:`deblurkit.kernel_aware.blind.deconvolve_with_kernel`), with its no-reference features
(:func:`deblurkit.kernel_aware.blind.decision_features`: the kernel's shape and what the
deconvolution did to the photo; and :func:`agreement_features`, its agreement with the other
candidates) and its gain over the blurry input (unaligned and
shift-aligned PSNR, sRGB) and similarity to the true kernel. One JSON per set under
``--cache``/<testsets folder name>, written after every pair, so an interrupted run resumes.

``fit``: gradient-boosted regressors (scikit-learn) of each candidate's gain from its features
(:data:`MODELS`: of the mean, and of a low quantile), trained on the ``--train`` pools (other
photos than every set it is scored on). Each one's rule: per photo the candidate with the largest
prediction. Scored by photo-grouped 5-fold cross-validation on the training pools and, trained on
all of them, on the ``--evaluate`` folders, beside the shipped setting, no deconvolution, the true
kernel and the oracle (the best candidate, chosen with the truth). The ``--validation`` folder's
sets choose the regressor (the highest mean of their mean gains). The mean regressor is also
trained and scored on :data:`FEWER_CANDIDATES` (down to the shipped setting alone: one estimate per
photo, deconvolved or not). That one-estimate decision is then applied to the blind pipeline's own
kernels where ``collect --candidates pipeline`` gathered them (``--cache``/pipeline): a learned
replacement of the pipeline's trust checks, scored with a declined photo left unchanged as the
pipeline leaves it; and the same decision trained on the pipeline's kernels of the training pools,
where collected, cross-validated by photo on the training pools; ``--export`` writes that model as
the pipeline's learned decision (:mod:`deblurkit.kernel_aware.decision`). ``--checks`` adds the
pipeline with its trust checks (``studies/blind_benchmark.py`` results) and the checks followed by
the learned veto (:attr:`deblurkit.kernel_aware.blind.BlindParams.decision`), scored from the
same pairs. The features are those the pipeline computes
(:func:`deblurkit.kernel_aware.blind.decision_features`). Writes ``--out`` ``.md`` and ``.json``.

``choice``: the same regressors choosing per photo among the pipeline's kernel, each subset of the
three other estimates of :data:`CHOICE` and the delta kernel (which leaves the photo unchanged, as
the pipeline leaves a declined one), with or without each kernel's agreement with the other
candidates; every rule ranked by the mean of the ``--validation`` sets' mean gains and scored on
the ``--evaluate`` folders beside the pipeline (``--checks``, then the shipped learned veto; and the
veto trained again on the ``--train`` pools). Writes ``--out`` (default
``studies/results/kernel_choice``) ``.md`` and ``.json``.

Needs scikit-learn (the ``curate`` extra).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from studies.heldout import available_sets, load_pair, set_items, true_kernel, write_results
from studies.kernel_estimation_study import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "data/kernel_selector_cache"
TRAIN = ["data/selector-bsds500", "data/selector-sunhays80", "data/selector-urban100", "data/selector-polyu40"]
EVALUATE = ["data/valsets", "data/testsets", "data/testsets-paused/paused", "data/testsets-paused-noise/paused"]
TRAIN_SETS = ["capture", "uniform", "noise-low"]
"""The sets ``collect`` gathers by default, and those of the training pools ``fit`` trains on."""
BORDER = 15
"""Least border crop (px) of the shift-aligned PSNR (at least the shift reach; as ``studies/blind_benchmark.py``)."""
DELTA = "delta"
"""The candidate that does not deblur: :func:`deblurkit.kernel_aware.decision.delta_kernel`."""
PIPELINE = "pipeline"
"""The candidate of ``collect --candidates pipeline``: the blind pipeline's kernel, every kernel trusted."""
KERNELS = "kernels"
"""``collect --candidates kernels``: the kernels of :data:`CHOICE` alone (no deconvolution), kept
under ``--cache``/kernels, from which ``choice`` computes their agreement with each other."""
CHOICE = [PIPELINE, "lam 4e-3", "gamma 8", "kernel_size 41, lam 1.6e-2"]
"""The estimates ``choice`` chooses among: the blind pipeline's kernel and three settings of
``SETTINGS`` (those of the four-setting subset of :data:`FEWER_CANDIDATES` besides the shipped
one, which the pipeline's kernel stands for), all made at full resolution on the whole photo."""


def agreement_features(kernel: np.ndarray, others: list[np.ndarray]) -> dict[str, float]:
    """A candidate's mean and largest kernel similarity to the photo's other estimates (1 where there are none)."""
    from deblurkit.kernel_aware.kernels import kernel_similarity

    sims = [kernel_similarity(kernel, o) for o in others] or [1.0]
    return {"agreement_mean": float(np.mean(sims)), "agreement_max": float(np.max(sims))}


_judge = None


def judge() -> object:
    """The decision's judge network (:func:`deblurkit.infer.judge_network`, one thread), once per worker process."""
    global _judge
    if _judge is None:
        from deblurkit.infer import judge_network

        _judge = judge_network(threads=1)
    return _judge


def collect_pair(job: tuple[str, int, str] | tuple[str, int, str, tuple[str, ...]]) -> dict:
    """Every candidate of one pair: features, gains and similarity to the true kernel.

    ``job``: set folder, pair index, and the candidates: ``settings`` (the 12 settings and the
    delta kernel) or ``pipeline`` (the blind pipeline's kernel with every kernel trusted, one tile,
    as :class:`studies.blind_benchmark.PipelineEstimator` gets it from the sRGB photo, and the delta
    kernel).
    """
    from deblurkit.color import linear_to_srgb, luminance, srgb_to_linear, working_scale
    from deblurkit.kernel_aware.blind import (
        decision_features,
        deconvolve_with_kernel,
        estimate_noise_sigma,
        estimate_tile_kernels,
        trusting_every_kernel,
    )
    from deblurkit.kernel_aware.decision import delta_kernel
    from deblurkit.kernel_aware.estimation import estimate_kernel
    from deblurkit.kernel_aware.kernels import kernel_similarity
    from studies.blind_benchmark import scores

    root, index, candidates = Path(job[0]), job[1], job[2]
    names = job[3] if len(job) > 3 else tuple(SETTINGS)
    blur, sharp = load_pair(root, index)
    true_k = np.load(root / "kernels" / f"{index:03d}.npy")
    lin = srgb_to_linear(blur)
    lum = luminance(lin)
    scale = working_scale(lum)
    gray = (lum / scale).astype(np.float32)
    if candidates in (PIPELINE, KERNELS):
        found = estimate_tile_kernels(blur, tiles=1, input_space="srgb", params=trusting_every_kernel())
        kernels = {PIPELINE: np.asarray(found.kernels[0, 0], np.float32)}
        if candidates == KERNELS:  # the kernels alone: nothing deconvolved or scored
            kernels.update({name: estimate_kernel(gray, **SETTINGS[name]) for name in CHOICE if name != PIPELINE})
            return {"index": index, "kernels": {n: np.round(k, 7).tolist() for n, k in kernels.items()},
                    "similarity": {n: kernel_similarity(k, true_k) for n, k in kernels.items()}}
    else:
        kernels = {name: estimate_kernel(gray, **SETTINGS[name]) for name in names}
    sigma = estimate_noise_sigma(gray)
    reach = max(true_k.shape[0] // 2, 1)
    border = max(math.ceil(reach), BORDER)
    base = scores(blur, sharp, reach, border)
    # The features exactly as the pipeline's learned decision computes them (its judging window is
    # the whole photo at these sizes).
    found_features, delta_features = decision_features(lin, list(kernels.values()), scale=scale, sigma=sigma,
                                                       network=judge())
    features = {**dict(zip(kernels, found_features)), DELTA: delta_features}
    kernels[DELTA] = delta_kernel()
    rows = {}
    for name, k in {**kernels, "true": true_k}.items():
        out = deconvolve_with_kernel(lin, k)
        out_srgb = np.clip(linear_to_srgb(out), 0.0, 1.0).astype(np.float32)
        got = scores(out_srgb, sharp, reach, border)
        row = {
            "gain": got["psnr"] - base["psnr"],
            "aligned_gain": got["psnr_aligned"] - base["psnr_aligned"],
            "similarity": kernel_similarity(k, true_k),
        }
        if name != "true":
            others = [o for n, o in kernels.items() if n not in (name, DELTA)]
            row["features"] = {**features[name], **agreement_features(np.asarray(k, np.float64), others)}
        rows[name] = row
    return {"index": index, "rows": rows}


def pool_name(testsets: str | Path) -> str:
    """A set folder's name in the cache and the tables: its folder name, with its parent's where the
    parent is not ``data/`` (``data/testsets-paused/paused`` -> ``testsets-paused-paused``)."""
    path = Path(testsets).resolve()
    return path.name if path.parent == ROOT / "data" else f"{path.parent.name}-{path.name}"


def cache_file(cache: Path, testsets: str | Path, set_name: str) -> Path:
    """Where ``collect`` keeps a set's pairs: ``cache/<pool name>/<set>.json``."""
    return cache / pool_name(testsets) / f"{set_name}.json"


def collect(args: argparse.Namespace) -> int:
    from deblurkit.io import atomic_write

    sets = args.sets or [s for s in available_sets(args.testsets) if s in TRAIN_SETS]
    for set_name in sets:
        found = set_items(args.testsets, set_name, args.limit)
        if found is None:
            continue
        root, items = found
        sub = args.candidates if args.candidates in (PIPELINE, KERNELS) else ""
        path = cache_file(Path(args.cache) / sub, args.testsets, set_name)
        done = json.loads(path.read_text()) if path.is_file() else {"pairs": {}}
        todo = [it for it in items if str(it["index"]) not in done["pairs"] and true_kernel(root, it) is not None]
        print(f"{pool_name(args.testsets)}/{set_name}: {len(items) - len(todo)} of {len(items)} pairs collected",
              file=sys.stderr)
        t0 = time.time()
        jobs = [(str(root), int(it["index"]), args.candidates, tuple(args.settings or SETTINGS)) for it in todo]
        with ProcessPoolExecutor(max(1, args.workers)) as pool:
            # One worker: in this process (its settings are those of this process).
            rows = map(collect_pair, jobs) if args.workers <= 1 else pool.map(collect_pair, jobs)
            for n, row in enumerate(rows, 1):
                row["photo"] = next(it["photo"] for it in todo if int(it["index"]) == row["index"])
                done["pairs"][str(row["index"])] = row
                with atomic_write(path, "w") as fh:
                    json.dump(done, fh)
                print(f"  {n}/{len(todo)} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return 0


def load_pairs(cache: Path, testsets: str | Path, sets: list[str] | None = None) -> dict[str, list[dict]]:
    """The collected pairs of a folder's sets (``{set: [pair, ...]}``), each tagged with its pool."""
    out = {}
    folder = cache / pool_name(testsets)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if sets and path.stem not in sets:
            continue
        pairs = list(json.loads(path.read_text())["pairs"].values())
        for p in pairs:
            p["pool"] = f"{pool_name(testsets)}/{path.stem}"
        out[path.stem] = sorted(pairs, key=lambda p: p["index"])
    return out


FEWER_CANDIDATES: dict[str, list[str]] = {
    "12 settings": list(SETTINGS),
    "4 settings: default, lam 4e-3, kernel_size 41, iterations 10": ["default", "lam 4e-3", "kernel_size 41",
                                                                     "iterations 10"],
    "4 settings: default, lam 4e-3, gamma 8, kernel_size 41 with lam 1.6e-2": ["default", "lam 4e-3", "gamma 8",
                                                                               "kernel_size 41, lam 1.6e-2"],
    "2 settings: default, kernel_size 41": ["default", "kernel_size 41"],
    "the shipped setting alone": ["default"],
}
"""Candidate subsets (with the delta kernel) scored by the mean regressor without the agreement
features, which need the 12 estimates: what a rule with fewer estimates per photo keeps."""


def candidate_names(settings: list[str] | None = None) -> list[str]:
    """The candidates: ``settings`` (default: every one of ``SETTINGS``) and the delta kernel."""
    return list(SETTINGS if settings is None else settings) + [DELTA]


def design(pairs: list[dict], settings: list[str] | None = None,
           agreement: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Feature matrix (one row per pair and candidate), gains, pair index of each row, feature names.

    The rows of :func:`deblurkit.kernel_aware.decision.candidate_rows` (the pipeline's learned
    decision reads the same), and with ``agreement`` the candidate's agreement with the other
    estimates, raw and minus its median over the photo's kernel candidates (0 for the delta
    candidate). ``settings``: the candidates (:func:`candidate_names`).
    """
    from deblurkit.kernel_aware.decision import candidate_rows, row_names

    names = candidate_names(settings)
    kernel_names = names[:-1]
    extra = ["agreement_mean", "agreement_max"] if agreement else []
    x, y, group = [], [], []
    for i, pair in enumerate(pairs):
        rows = candidate_rows([pair["rows"][n]["features"] for n in kernel_names], pair["rows"][DELTA]["features"])
        if extra:
            a = np.array([[pair["rows"][n]["features"][k] for k in extra] for n in kernel_names] + [[0.0] * len(extra)])
            rows = np.concatenate([rows, a, a - np.median(a[:-1], axis=0)], axis=1)
        x.extend(rows)
        y.extend(pair["rows"][n]["gain"] for n in names)
        group.extend([i] * len(names))
    feature_names = row_names() + extra + [f"{k} - median" for k in extra]
    return np.array(x), np.array(y), np.array(group), feature_names


MODELS: dict[str, dict] = {
    "mean": {"loss": "squared_error"},
    "25 % quantile": {"loss": "quantile", "quantile": 0.25},
    "10 % quantile": {"loss": "quantile", "quantile": 0.1},
}
"""The regressors compared: of the mean gain, and of a low quantile of it (a cautious rule: a
candidate whose features also occur with losses ranks low even where it usually gains)."""


def fit_model(x: np.ndarray, y: np.ndarray, model: str = "mean"):
    """Gradient-boosted regression of the (clipped) gain, one of :data:`MODELS`."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    reg = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
                                        l2_regularization=1.0, random_state=0, **MODELS[model])
    # Clipped: a kernel that loses 5 dB or 15 dB is equally wrong; the choice needs the order near the top.
    return reg.fit(x, np.clip(y, -5.0, None))


def export_trees(model, columns: list[str], meta: dict):
    """A fitted ``HistGradientBoostingRegressor`` (squared error, numeric features) as
    :class:`deblurkit.kernel_aware.decision.GainTrees`, which predicts the same without scikit-learn.

    Reads the regressor's fitted trees (``_predictors``, ``_baseline_prediction``: scikit-learn keeps
    them private; ``tests/studies/test_kernel_selector.py`` checks the predictions agree).
    """
    from deblurkit.kernel_aware.decision import GainTrees

    trees = []
    for (tree,) in model._predictors:
        n = tree.nodes
        if n["is_categorical"].any():
            raise ValueError("categorical splits are not exported")
        trees.append({"feature": n["feature_idx"].astype(np.int64), "threshold": n["num_threshold"].astype(np.float64),
                      "left": n["left"].astype(np.int64), "right": n["right"].astype(np.int64),
                      "missing_left": n["missing_go_to_left"].astype(bool), "leaf": n["is_leaf"].astype(bool),
                      "value": n["value"].astype(np.float64)})
    return GainTrees(float(np.ravel(model._baseline_prediction)[0]), tuple(trees), tuple(columns), dict(meta))


def choose(pairs: list[dict], predicted: np.ndarray, settings: list[str] | None = None) -> list[str]:
    """Per pair the candidate with the largest prediction (``predicted``: one per pair and candidate,
    in :func:`design`'s order for ``settings``)."""
    names = candidate_names(settings)
    return [names[int(np.argmax(row))] for row in predicted.reshape(len(pairs), len(names))]


def score_rule(pairs: list[dict], picks: list[str]) -> dict[str, float]:
    """Mean and worst gain (unaligned and aligned) of a per-pair choice, the mean similarity to the
    truth of the kernels it deconvolves with, and how often it picked the delta candidate."""
    g = np.array([p["rows"][c]["gain"] for p, c in zip(pairs, picks, strict=True)])
    a = np.array([p["rows"][c]["aligned_gain"] for p, c in zip(pairs, picks, strict=True)])
    sims = [p["rows"][c]["similarity"] for p, c in zip(pairs, picks, strict=True) if c != DELTA]
    return {"gain": float(g.mean()), "worst": float(g.min()), "aligned_gain": float(a.mean()),
            "aligned_worst": float(a.min()), "similarity": float(np.mean(sims)) if sims else math.nan,
            "delta": sum(c == DELTA for c in picks), "pairs": len(pairs)}


def best_candidates(pairs: list[dict], settings: list[str] | None = None) -> list[str]:
    """Per pair the candidate (:func:`candidate_names` of ``settings``) with the largest gain: needs the truth."""
    return [max(candidate_names(settings), key=lambda n: p["rows"][n]["gain"]) for p in pairs]


def fixed_and_oracle_rows(pairs: list[dict]) -> dict[str, dict]:
    rows = {
        "shipped setting": score_rule(pairs, ["default"] * len(pairs)),
        "no deconvolution (delta)": score_rule(pairs, [DELTA] * len(pairs)),
        "true kernel": score_rule(pairs, ["true"] * len(pairs)),
        "oracle (best candidate)": score_rule(pairs, best_candidates(pairs)),
    }
    rows["true kernel"]["similarity"] = 1.0
    return rows


def _photo(pair: dict) -> str:
    return pair["pool"].split("/")[0] + "/" + pair["photo"]


def cross_validated(pairs: list[dict], x: np.ndarray, y: np.ndarray, group: np.ndarray, folds: int,
                    model: str, settings: list[str] | None = None) -> list[str]:
    """Picks of models trained without each photo's pairs (photo-grouped folds); ``x, y, group``:
    :func:`design` of ``pairs`` for the candidates of ``settings``."""
    photos = sorted({_photo(p) for p in pairs})
    fold_of = {ph: i % folds for i, ph in enumerate(np.random.default_rng(0).permutation(photos))}
    pair_fold = np.array([fold_of[_photo(p)] for p in pairs])
    predicted = np.zeros(len(y))
    for f in range(folds):
        test_rows = pair_fold[group] == f
        predicted[test_rows] = fit_model(x[~test_rows], y[~test_rows], model).predict(x[test_rows])
    return choose(pairs, predicted, settings)


def load_checks(specs: list[str]) -> dict[str, dict[int, dict]]:
    """``["RESULT.json=SET_FOLDER", ...]`` (``studies/blind_benchmark.py`` results with a ``pipeline``
    row, run with the trust checks) -> ``{"<pool>/<set>": {pair index: {"gain", "aligned_gain",
    "declined"}}}``."""
    out: dict[str, dict[int, dict]] = {}
    for spec in specs:
        path, _, folder = spec.partition("=")
        if not folder:
            raise SystemExit(f"--checks {spec!r}: expected RESULT.json=SET_FOLDER")
        for set_name, data in json.loads(Path(path).read_text())["sets"].items():
            out[f"{pool_name(folder)}/{set_name}"] = {
                int(r["index"]): {"gain": r["estimators"]["pipeline"]["psnr"] - r["blurry"]["psnr"],
                                  "aligned_gain": r["estimators"]["pipeline"]["psnr_aligned"] - r["blurry"]["psnr_aligned"],
                                  "declined": bool(r["estimators"]["pipeline"]["declined"])}
                for r in data["per_image"]}
    return out


UNCHANGED = {"gain": 0.0, "aligned_gain": 0.0}
"""The gains of a photo left as it is."""


def kept_summary(kept: list[dict]) -> dict[str, float]:
    """Mean and worst gain, mean aligned gain and how many photos were left unchanged
    (:data:`UNCHANGED`), of the per-photo results of a rule that deconvolves or declines."""
    g = [k["gain"] for k in kept]
    return {"gain": float(np.mean(g)), "worst": float(min(g)),
            "aligned_gain": float(np.mean([k["aligned_gain"] for k in kept])),
            "declined": sum(k is UNCHANGED for k in kept)}


def veto_rows(pairs: list[dict], checks: dict[int, dict], takes: list[bool]) -> dict[str, dict]:
    """The trust checks' scores of ``pairs`` and those of the checks followed by the learned veto
    (a photo is deconvolved, with the checks' kernel, only where the checks trust its kernel and
    ``takes`` says the regressor takes the pipeline's kernel); a declined photo is unchanged."""
    own = [checks[p["index"]] for p in pairs]
    return {"trust checks": kept_summary([UNCHANGED if c["declined"] else c for c in own]),
            "checks, then the learned veto": kept_summary(
                [c if not c["declined"] and t else UNCHANGED for c, t in zip(own, takes, strict=True)])}


def export_decision(model, args: argparse.Namespace, pairs: list[dict]) -> None:
    """Write the one-estimate decision trained on the pipeline's kernels to ``args.export`` (JSON)."""
    import sklearn

    from deblurkit.io import atomic_write
    from deblurkit.kernel_aware.decision import JUDGE, row_names

    meta = {"target": "PSNR gain (dB, sRGB) of the pipeline's deconvolution over the blurry photo, clipped at -5",
            "judge": JUDGE, "trained_on": sorted({p["pool"] for p in pairs}), "pairs": len(pairs),
            "photos": len({_photo(p) for p in pairs}), "regressor": "HistGradientBoostingRegressor",
            "regressor_settings": {k: v for k, v in model.get_params().items() if v is not None},
            "scikit_learn": sklearn.__version__, "command": "python -m studies.kernel_selector " + " ".join(sys.argv[1:])}
    trees = export_trees(model, row_names(), meta)
    with atomic_write(Path(args.export), "w") as fh:
        json.dump(trees.to_dict(), fh, separators=(",", ":"))
    print(f"decision trees ({len(trees.trees)}) -> {args.export}", file=sys.stderr)


def fit(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    t0 = time.time()
    # One thread: a few thousand rows fit in seconds, and OpenMP threads beside other jobs stall.
    threadpool_limits(limits=1)
    cache = Path(args.cache)
    # The settings' tables need every setting's candidate: pools collected with some (``collect
    # --settings``) train the decision on the pipeline's kernels only.
    train = [p for folder in args.train for ps in load_pairs(cache, folder, args.train_sets).values() for p in ps
             if all(n in p["rows"] for n in SETTINGS)]
    pipeline_train = [p for folder in args.train
                      for ps in load_pairs(cache / PIPELINE, folder, args.train_sets).values() for p in ps]
    if not train and not pipeline_train:
        raise SystemExit(f"no collected pairs for {args.train} under {cache} (run 'collect' first)")
    results: dict = {"train_pairs": len(train), "train_photos": len({_photo(p) for p in train}),
                     "pipeline_train_pairs": len(pipeline_train), "train_sets": args.train_sets, "sets": {}}
    pools = ", ".join(pool_name(t) for t in args.train)
    lines = [(f"Learned kernel selector. Training pools: {pools} (sets: {', '.join(args.train_sets)}); "
              f"{len(train)} pairs with the 12 estimator settings of studies/kernel_estimation_study.py as "
              f"candidates, {len(pipeline_train)} with the blind pipeline's kernel; each with a delta kernel (no "
              "deblurring). Gain of (b)'s deconvolution step over the blurry input, PSNR dB (sRGB), mean / worst; "
              "aligned = after the best sub-pixel shift within half the true kernel size. 'learned (M)': per photo "
              "the candidate with the largest prediction of the regressor M of the gain."),
             ""]
    if not train:
        lines += [("No pairs with the 12 settings' candidates were collected (`collect` without `--candidates`): "
                   "only the decision on the pipeline's kernels is fitted and scored."), ""]

    def table(title: str, pairs: list[dict], rows: dict[str, dict]) -> None:
        lines.extend([f"### {title} ({len(pairs)} pairs)", "",
                      "| rule | gain | aligned gain | similarity of the kernels used | delta picked |",
                      "|---|---|---|---|---|"])
        for name, r in rows.items():
            lines.append(f"| {name} | {r['gain']:+.2f} / {r['worst']:+.2f} | {r['aligned_gain']:+.2f} / "
                         f"{r['aligned_worst']:+.2f} | {r['similarity']:.3f} | {r['delta']} |")
        lines.append("")

    one_estimate = None
    if train:  # the settings' candidates, where collected
        by_pool: dict[str, list[int]] = {}
        for i, p in enumerate(train):
            by_pool.setdefault(p["pool"], []).append(i)
        x, y, group, feature_names = design(train)
        picks = {m: cross_validated(train, x, y, group, args.folds, m) for m in MODELS}
        for pool, idx in sorted(by_pool.items()):
            pairs = [train[i] for i in idx]
            rows = fixed_and_oracle_rows(pairs)
            for m in MODELS:
                rows[f"learned ({m}), cross-validated by photo"] = score_rule(pairs, [picks[m][i] for i in idx])
            results["sets"][f"train {pool}"] = rows
            table(f"training pool {pool}, photo-grouped {args.folds}-fold cross-validation", pairs, rows)

        models = {m: fit_model(x, y, m) for m in MODELS}
        evaluated: dict[str, list[dict]] = {}
        for folder in args.evaluate:
            for set_name, pairs in load_pairs(cache, folder).items():
                evaluated[f"{pool_name(folder)}/{set_name}"] = pairs
                xe, _, _, _ = design(pairs)
                rows = fixed_and_oracle_rows(pairs)
                for m, model in models.items():
                    rows[f"learned ({m})"] = score_rule(pairs, choose(pairs, model.predict(xe)))
                results["sets"][f"{pool_name(folder)}/{set_name}"] = rows
                table(f"{pool_name(folder)}/{set_name}", pairs, rows)
        results["fewer_candidates"] = {}
        lines += ["### Fewer candidates: the mean regressor, without the agreement features", "",
                  "Gain, mean over the set's pairs, and in brackets that of the best of the same candidates.", "",
                  "| candidates (and the delta kernel) | " + " | ".join(evaluated) + " |",
                  "|---|" + "---|" * len(evaluated)]
        one_estimate = None
        for label, settings in FEWER_CANDIDATES.items():
            xs, ys, _, _ = design(train, settings, agreement=False)
            model = fit_model(xs, ys, "mean")
            if settings == ["default"]:
                one_estimate = model
            row = {}
            for key, pairs in evaluated.items():
                xe, _, _, _ = design(pairs, settings, agreement=False)
                row[key] = {"learned": score_rule(pairs, choose(pairs, model.predict(xe), settings)),
                            "best candidate": score_rule(pairs, best_candidates(pairs, settings))}
            results["fewer_candidates"][label] = row
            lines.append(f"| {label} | " + " | ".join(f"{r['learned']['gain']:+.2f} ({r['best candidate']['gain']:+.2f})"
                                                       for r in row.values()) + " |")
        lines.append("")
    pipeline_pairs = {f"{pool_name(folder)}/{set_name}": pairs for folder in args.evaluate
                      for set_name, pairs in load_pairs(cache / PIPELINE, folder).items()}
    # The same decision trained on the pipeline's own kernels of the training pools, where collected.
    on_pipeline = None
    if pipeline_train:
        xp, yp, gp, _ = design(pipeline_train, [PIPELINE], agreement=False)
        on_pipeline = fit_model(xp, yp, "mean")
        if args.export:
            export_decision(on_pipeline, args, pipeline_train)

    from deblurkit.kernel_aware.blind import BlindParams
    from deblurkit.kernel_aware.decision import row_names

    gate = BlindParams().no_blur_support
    checks = load_checks(args.checks)

    def unchanged_where_declined(pairs: list[dict], picks: list[str], gated: bool = False) -> dict[str, float]:
        # ``gated``: as the pipeline decides, a kernel of less effective support than its gate is
        # declined unasked (the photos here are small enough to be estimated at full resolution).
        taken = [c == PIPELINE and (not gated or math.exp(p["rows"][PIPELINE]["features"]["log_support"]) >= gate)
                 for p, c in zip(pairs, picks, strict=True)]
        return kept_summary([p["rows"][PIPELINE] if t else UNCHANGED for p, t in zip(pairs, taken)])

    if pipeline_train:
        # The shipped decision's own cross-validation: photo-grouped folds of the training pools,
        # each pair decided by a model trained without its photo, as the pipeline decides.
        picks = cross_validated(pipeline_train, xp, yp, gp, args.folds, "mean", [PIPELINE])
        by_pool_pipeline: dict[str, list[int]] = {}
        for i, p in enumerate(pipeline_train):
            by_pool_pipeline.setdefault(p["pool"], []).append(i)
        results["pipeline_kernels_cross_validated"] = {}
        lines += ["### The decision on the pipeline's kernels, cross-validated on the training pools", "",
                  (f"The mean regressor trained on the pipeline's kernels of the training pools, photo-grouped "
                   f"{args.folds}-fold: each pair decided by a model that never saw its photo; a kernel below the "
                   f"pipeline's support gate ({gate:g} px²) declined, a declined photo unchanged. Gain, mean / worst; "
                   "aligned in brackets; in braces, how many photos it declines."), "",
                  ("| pool | always deconvolved | learned (cross-validated), as the pipeline decides | better of the "
                   "two (needs the truth) |" + (" trust checks (`--checks`) | checks, then the learned veto |"
                                                if checks else "")), "|---|---|---|---|" + ("---|---|" if checks else "")]
        for pool, idx in sorted(by_pool_pipeline.items()):
            pairs = [pipeline_train[i] for i in idx]
            rows = {"always": score_rule(pairs, [PIPELINE] * len(pairs)),
                    "learned, as the pipeline decides": unchanged_where_declined(pairs, [picks[i] for i in idx],
                                                                                 gated=True),
                    "best": score_rule(pairs, best_candidates(pairs, [PIPELINE]))}
            if pool in checks:
                rows.update(veto_rows(pairs, checks[pool], [picks[i] == PIPELINE for i in idx]))
            results["pipeline_kernels_cross_validated"][pool] = rows
            cells = [f"{r['gain']:+.2f} / {r['worst']:+.2f} ({r['aligned_gain']:+.2f})"
                     + (f" {{{r['declined']}}}" if "declined" in r else "") for r in rows.values()]
            cells += ["–"] * ((5 if checks else 3) - len(cells))
            lines.append(f"| {pool} ({len(pairs)}) | " + " | ".join(cells) + " |")
        lines.append("")

    if pipeline_pairs and (one_estimate is not None or on_pipeline is not None):
        results["pipeline_kernels"] = {}
        header = ["always deconvolved"]
        if one_estimate is not None:
            header += ["learned on the shipped setting's kernels, delta kernel where it declines",
                       "the same, photo unchanged where it declines"]
        if on_pipeline is not None:
            header.append(f"learned on the pipeline's kernels ({len(pipeline_train)} training pairs), as the pipeline "
                          f"decides (kernels below its {gate:g}-px² support gate declined, photo unchanged)")
        header.append("better of the two (needs the truth)")
        if checks and on_pipeline is not None:
            header += ["trust checks (`--checks`)", "checks, then the learned veto"]
        lines += ["### The one-estimate decision on the blind pipeline's kernels", "",
                  ("The mean regressor applied to the pipeline's kernel (every kernel trusted, one tile) and the "
                   "delta kernel. Gain, mean / worst; aligned in brackets; in braces, how many photos it declines."),
                  "", "| set | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
        for key, pairs in pipeline_pairs.items():
            xe, _, _, _ = design(pairs, [PIPELINE], agreement=False)
            rows = {"always": score_rule(pairs, [PIPELINE] * len(pairs))}
            if one_estimate is not None:
                picks = choose(pairs, one_estimate.predict(xe), [PIPELINE])
                rows["learned"] = score_rule(pairs, picks)
                rows["learned, unchanged"] = unchanged_where_declined(pairs, picks)
            if on_pipeline is not None:
                shipped = choose(pairs, on_pipeline.predict(xe), [PIPELINE])
                rows["learned on the pipeline's kernels, unchanged"] = unchanged_where_declined(pairs, shipped,
                                                                                                gated=True)
            rows["best"] = score_rule(pairs, best_candidates(pairs, [PIPELINE]))
            if on_pipeline is not None and key in checks:
                rows.update(veto_rows(pairs, checks[key], [c == PIPELINE for c in shipped]))
            results["pipeline_kernels"][key] = rows
            cells = [f"{r['gain']:+.2f} / {r['worst']:+.2f} ({r['aligned_gain']:+.2f})"
                     + (f" {{{r['declined']}}}" if "declined" in r else "") for r in rows.values()]
            cells += ["–"] * (len(header) - len(cells))
            lines.append(f"| {key} ({len(pairs)}) | " + " | ".join(cells) + " |")
        lines.append("")
    if on_pipeline is not None:
        from sklearn.inspection import permutation_importance

        names = row_names()
        imp = permutation_importance(on_pipeline, xp, np.clip(yp, -5.0, None), n_repeats=3, random_state=0)
        order = np.argsort(imp.importances_mean)[::-1][:10]
        results["pipeline_importance"] = {names[i]: float(imp.importances_mean[i]) for i in order}
        lines += ["Most important inputs of the decision trained on the pipeline's kernels (permutation importance "
                  "on its training pairs, R² drop): "
                  + ", ".join(f"{names[i]} {imp.importances_mean[i]:.3f}" for i in order), ""]
    if train:
        validation = [k for k in results["sets"] if k.split("/")[0] == pool_name(args.validation)]
        if validation:
            summary = {m: {"mean_of_sets": float(np.mean([results["sets"][k][f"learned ({m})"]["gain"] for k in validation])),
                           "worst_pair": float(min(results["sets"][k][f"learned ({m})"]["worst"] for k in validation))}
                       for m in MODELS}
            chosen = max(MODELS, key=lambda m: summary[m]["mean_of_sets"])
            results["validation"] = {"sets": validation, "models": summary, "chosen": chosen}
            lines += [f"On the validation sets ({', '.join(validation)}), mean gain of the set means / worst pair: "
                      + ", ".join(f"{m} {v['mean_of_sets']:+.2f} / {v['worst_pair']:+.2f}" for m, v in summary.items())
                      + f". Chosen (highest mean): learned ({chosen}).", ""]
        from sklearn.inspection import permutation_importance

        imp = permutation_importance(models["mean"], x, np.clip(y, -5.0, None), n_repeats=3, random_state=0)
        order = np.argsort(imp.importances_mean)[::-1][:10]
        results["importance"] = {feature_names[i]: float(imp.importances_mean[i]) for i in order}
        lines += ["Most important features of the mean model (permutation importance on the training pairs, R² drop): "
                  + ", ".join(f"{feature_names[i]} {imp.importances_mean[i]:.3f}" for i in order), ""]
    results["wall_seconds"] = round(time.time() - t0, 1)
    results["command"] = "python -m studies.kernel_selector " + " ".join(sys.argv[1:])
    lines.append(f"Fit and scoring {results['wall_seconds']:.0f} s: `{results['command'].strip()}`")
    write_results(args.out, results, lines)
    return 0


def choice_pairs(cache: Path, testsets: str | Path, sets: list[str] | None) -> dict[str, list[dict]]:
    """The pairs of a folder's sets with the :data:`CHOICE` candidates: the settings' rows
    (``collect``), the pipeline's row (``collect --candidates pipeline``) and the delta kernel's, and
    the candidates' ``kernels`` (``collect --candidates kernels``), where all were collected; pairs
    missing any are left out. Each candidate's agreement features are still those of its collection:
    :func:`with_agreement` sets them for a subset of candidates."""
    settings = load_pairs(cache, testsets, sets)
    own = load_pairs(cache / PIPELINE, testsets, sets)
    kept = load_pairs(cache / KERNELS, testsets, sets)
    out = {}
    for set_name, pairs in settings.items():
        rows_of = {p["index"]: p["rows"][PIPELINE] for p in own.get(set_name, [])}
        kernels_of = {p["index"]: p["kernels"] for p in kept.get(set_name, [])}
        merged = []
        for pair in pairs:
            if pair["index"] not in rows_of or pair["index"] not in kernels_of:
                continue
            rows = {n: pair["rows"][n] for n in [*CHOICE[1:], DELTA, "true"]}
            rows[PIPELINE] = rows_of[pair["index"]]
            kernels = {n: np.asarray(kernels_of[pair["index"]][n], np.float64) for n in CHOICE}
            merged.append({**pair, "rows": rows, "kernels": kernels})
        if merged:
            out[set_name] = merged
    return out


def with_agreement(pairs: list[dict], candidates: list[str]) -> list[dict]:
    """Copies of :func:`choice_pairs` pairs whose ``candidates`` carry ``agreement_mean`` and
    ``agreement_max`` with the other ``candidates``' kernels (not with the 12 settings)."""
    out = []
    for pair in pairs:
        kernels = pair["kernels"]
        rows = dict(pair["rows"])
        for n in candidates:
            rows[n] = {**rows[n], "features": {
                **rows[n]["features"], **agreement_features(kernels[n], [kernels[o] for o in candidates if o != n])}}
        out.append({**pair, "rows": rows})
    return out


def unchanged_if_delta(pairs: list[dict], picks: list[str]) -> dict[str, float]:
    """:func:`kept_summary` of a choice run as the pipeline runs it: a photo whose pick is the delta
    kernel is left unchanged."""
    return kept_summary([UNCHANGED if c == DELTA else p["rows"][c] for p, c in zip(pairs, picks, strict=True)])


def choice(args: argparse.Namespace) -> int:
    """Learned choices among the pipeline's kernel, subsets of the other :data:`CHOICE` estimates and
    the delta kernel, ranked on the validation sets, against the pipeline (checks, then the veto)."""
    from threadpoolctl import threadpool_limits

    from deblurkit.kernel_aware.decision import load_decision

    t0 = time.time()
    threadpool_limits(limits=1)
    cache = Path(args.cache)
    checks = load_checks(args.checks)
    pipeline_train = [p for folder in args.train
                      for ps in load_pairs(cache / PIPELINE, folder, args.train_sets).values() for p in ps]
    xp, yp, _, _ = design(pipeline_train, [PIPELINE], agreement=False)
    vetoes = {"shipped": load_decision(),  # what the pipeline runs
              "trained here": fit_model(xp, yp, "mean")}  # the same training (fit --export) on the --train pools
    # Loaded once; each candidate set then has its own agreement features.
    loaded_train = [p for folder in args.train for ps in choice_pairs(cache, folder, args.train_sets).values()
                    for p in ps]
    loaded = {f"{pool_name(folder)}/{s}": ps for folder in args.evaluate
              for s, ps in choice_pairs(cache, folder, None).items()}
    if not loaded_train or not loaded:
        raise SystemExit(f"no pairs with every CHOICE candidate under {cache} (run the collect commands)")
    rules = []
    for n in range(len(CHOICE)):
        for extra in itertools.combinations(CHOICE[1:], n):
            candidates = [PIPELINE, *extra]
            train = with_agreement(loaded_train, candidates)
            evaluated = {key: with_agreement(ps, candidates) for key, ps in loaded.items()}
            designs = {a: (design(train, candidates, a),
                           {key: design(ps, candidates, a)[0] for key, ps in evaluated.items()})
                       for a in ((False, True) if extra else (False,))}
            for model in MODELS:
                for agreement, ((x, y, _, _), rows) in designs.items():
                    fitted = fit_model(x, y, model)
                    sets = {key: unchanged_if_delta(ps, choose(ps, fitted.predict(rows[key]), candidates))
                            for key, ps in evaluated.items()}
                    rules.append({"candidates": candidates, "model": model, "agreement": agreement,
                                  "train_pairs": len(train), "sets": sets})
    validation = [k for k in rules[0]["sets"] if k.split("/")[0] == pool_name(args.validation)]
    for rule in rules:
        rule["validation"] = float(np.mean([rule["sets"][k]["gain"] for k in validation]))
    rules.sort(key=lambda r: -r["validation"])
    baseline: dict[str, dict] = {name: {} for name in vetoes}
    best = {}
    for key, pairs in loaded.items():
        # The best kernel where it gains, else the photo unchanged: the most any rule can keep.
        best_kernels = [max(CHOICE, key=lambda n, p=p: p["rows"][n]["gain"]) for p in pairs]
        best[key] = unchanged_if_delta(pairs, [c if p["rows"][c]["gain"] > 0 else DELTA
                                               for p, c in zip(pairs, best_kernels, strict=True)])
        if key in checks:
            xe, _, _, _ = design(pairs, [PIPELINE], agreement=False)
            for name, veto in vetoes.items():
                takes = [c == PIPELINE for c in choose(pairs, veto.predict(xe), [PIPELINE])]
                baseline[name][key] = veto_rows(pairs, checks[key], takes)["checks, then the learned veto"]
    keys = list(rules[0]["sets"])
    short = {PIPELINE: "pipeline", "lam 4e-3": "lam 4e-3", "gamma 8": "gamma 8", "kernel_size 41, lam 1.6e-2": "41 px, lam 1.6e-2"}

    def cells(row: dict) -> str:
        return " | ".join(f"{row[k]['gain']:+.2f} / {row[k]['worst']:+.2f}" if k in row else "–" for k in keys)

    lines = [(f"Learned choice per photo among the blind pipeline's kernel (every kernel trusted, one tile), subsets "
              f"of three more estimates of the photo ({', '.join(CHOICE[1:])}: settings of "
              "studies/kernel_estimation_study.py) and the delta kernel, which leaves the photo unchanged. Each rule: "
              "the candidates, the regressor (studies.kernel_selector MODELS) and whether each kernel's similarity to "
              f"the other candidates enters ('agreement'); trained on the training pools ({', '.join(args.train_sets)}), "
              f"ranked by the mean of the validation sets' mean gains ({', '.join(validation)}). Gain of (b)'s "
              "deconvolution step over the blurry input, PSNR dB (sRGB), mean / worst."), "",
             "| rule | validation mean | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys),
             f"| the pipeline: checks, then the shipped learned veto | – | {cells(baseline['shipped'])} |",
             (f"| checks, then the veto trained on these pools ({len(pipeline_train)} pairs) | – | "
              f"{cells(baseline['trained here'])} |")]
    for rule in rules[:args.top]:
        name = " + ".join(short.get(c, c) for c in rule["candidates"]) + f"; {rule['model']}" + (", agreement" if rule["agreement"] else "")
        lines.append(f"| {name} | {rule['validation']:+.2f} | {cells(rule['sets'])} |")
    lines += [f"| the best of the four where it gains, else unchanged (needs the truth) | – | {cells(best)} |", "",
              f"{len(rules)} rules scored; the table shows the {min(args.top, len(rules))} that rank highest on validation."]
    results = {"rules": rules, "pipeline": baseline, "best": best, "validation_sets": validation,
               "wall_seconds": round(time.time() - t0, 1),
               "command": "python -m studies.kernel_selector " + " ".join(sys.argv[1:])}
    lines += ["", f"Fit and scoring {results['wall_seconds']:.0f} s: `{results['command'].strip()}`"]
    write_results(args.out, results, lines)
    return 0


def pools(parser: argparse.ArgumentParser) -> None:
    """The options ``fit`` and ``choice`` share: the pools trained on, the folders scored, the cache."""
    parser.add_argument("--train", nargs="*", default=[str(ROOT / t) for t in TRAIN])
    parser.add_argument("--train-sets", nargs="*", default=TRAIN_SETS,
                        help="the sets of the --train pools trained on (default: those collect gathers by default)")
    parser.add_argument("--evaluate", nargs="*", default=[str(ROOT / e) for e in EVALUATE])
    parser.add_argument("--validation", default=str(ROOT / "data/valsets"),
                        help="the --evaluate folder whose sets choose the regressor")
    parser.add_argument("--cache", default=str(CACHE))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="candidates, features and gains per pair of a set folder")
    c.add_argument("--testsets", default=str(ROOT / "data/valsets"))
    c.add_argument("--sets", nargs="*", default=None, help="default: capture uniform noise-low, where present")
    c.add_argument("--limit", type=int, default=None)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--cache", default=str(CACHE))
    c.add_argument("--candidates", choices=["settings", PIPELINE, KERNELS], default="settings",
                   help="the 12 settings, the blind pipeline's kernel (kept under CACHE/pipeline), or the "
                        "kernels of CHOICE alone (CACHE/kernels)")
    c.add_argument("--settings", nargs="*", default=None, choices=list(SETTINGS), metavar="SETTING",
                   help="with --candidates settings: only these of SETTINGS (a pool collected so serves "
                        "'choice', and in 'fit' the decision on the pipeline's kernels alone)")
    f = sub.add_parser("fit", help="train the selector and score it")
    pools(f)
    f.add_argument("--folds", type=int, default=5)
    f.add_argument("--checks", nargs="*", default=[], metavar="RESULT.json=SET_FOLDER",
                   help="blind_benchmark results of the pipeline with its trust checks on a set folder: adds the "
                        "checks and the checks followed by the learned veto to the pipeline tables")
    f.add_argument("--out", default=str(ROOT / "studies/results/kernel_selector"))
    f.add_argument("--export", default=None,
                   help="write the decision trained on the pipeline's kernels here (the shipped one: "
                        "src/deblurkit/weights/kernel-decision.json)")
    h = sub.add_parser("choice", help="rank learned choices among the CHOICE estimates on validation; score them")
    pools(h)
    h.add_argument("--checks", nargs="*", default=[], metavar="RESULT.json=SET_FOLDER",
                   help="as fit's: the pipeline with its trust checks; scored with the learned veto after them")
    h.add_argument("--top", type=int, default=12, help="rules shown in the table (all are in the JSON)")
    h.add_argument("--out", default=str(ROOT / "studies/results/kernel_choice"))
    args = ap.parse_args(argv)
    return {"collect": collect, "fit": fit, "choice": choice}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
