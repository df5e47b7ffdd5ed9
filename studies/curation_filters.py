#!/usr/bin/env python3
"""Precision and recall of the curation filters on labelled cases, and the learned classifier.

    python -m studies.curation_filters                  # full run (~15 min on 2 busy cores)
    python -m studies.curation_filters --limit 2 --out /tmp/cf   # smoke test

1. Synthetic degradations of known strength, made by deblurkit.synth on sharp photos:
   camera shake of path length 2/4/8/16 px (random-walk trajectory, blurred in linear light),
   Poisson-Gaussian sensor noise with shot gain 1e-4/5e-4/2e-3/8e-3 (read variance from the
   "Unprocessing" relation, added in linear light), JPEG at quality 95/75/50/30, and one pair of
   the ``realistic`` preset (mixed blur, noise, JPEG). Positives for a filter are the strengths
   past a cutoff (blur >= 4 px, shot >= 2e-3, quality <= 50); the intermediate strengths are
   shown as detection rates only. Thresholds are tuned on a TUNE set (balanced accuracy of clean
   vs positives) and then scored on a separate TEST set with the shipped defaults
   (:class:`deblurkit.curate.rules.CurationRules`).
2. Faces: a labelled set of photos with and without people (studies/curation_face_labels.json);
   precision and recall of the face filter against "a face is visible" and "a person is
   visible", over detector confidence thresholds. (No separate tuning set: the default
   threshold was read off this sweep, so its numbers are optimistic for that threshold.)
3. BRISQUE: how well it separates clean from each degradation (ROC AUC), next to the dedicated
   measure.
4. The learned classifier: logistic regression over the scores, trained on the TUNE images
   (clean = good; positives and the realistic preset = bad), scored on the TEST images; written
   to src/deblurkit/curate/quality_classifier.json unless --no-save-model.

Sets: TUNE = the first --tune-count photos of ../shared/data/sharp/urban100 (centre 512x512
crops), TEST = ../shared/data/sharp/kodak24 (500x500). Results: studies/results/curation_filters.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from studies.heldout import SHARED, write_results

STRENGTHS: dict[str, list[float]] = {
    "blur": [2, 4, 8, 16],
    "noise": [1e-4, 5e-4, 2e-3, 8e-3],
    "jpeg": [95, 75, 50, 30],
}
#: strength -> counts as a positive (clearly degraded) for that kind's filter
POSITIVE = {"blur": lambda s: s >= 4, "noise": lambda s: s >= 2e-3, "jpeg": lambda s: s <= 50}
#: kind -> (score name, +1 if large = degraded else -1, CurationRules field)
FILTERS = {
    "blur": ("sharpness", -1, "min_sharpness"),
    "noise": ("noise_sigma", +1, "max_noise_sigma"),
    "jpeg": ("blockiness", +1, "max_blockiness"),
}


def degrade_srgb(img: np.ndarray, kind: str, strength: float, seed: int) -> np.ndarray:
    """One synthetic degradation of known strength of a float32 sRGB ``(H, W, 3)`` image."""
    import torch

    from deblurkit.synth import isp
    from deblurkit.synth.blur import convolve_fft, render_psf
    from deblurkit.synth.color import linear_to_srgb, srgb_to_linear
    from deblurkit.synth.trajectory import shake_trajectory_2d

    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    if kind == "blur":
        k = render_psf(shake_trajectory_2d(float(strength), g, anxiety=0.05))
        y = linear_to_srgb(convolve_fft(srgb_to_linear(x), k[None, None]).clamp(0, 1))
    elif kind == "noise":
        shot = float(strength)
        read = math.exp(2.18 * math.log(shot) + 1.20)
        lin = srgb_to_linear(x)
        noisy = isp.add_poisson_gaussian_noise(lin, torch.tensor([shot]), torch.tensor([read]), g, poisson=False)
        y = linear_to_srgb(noisy.clamp(0, 1))
    elif kind == "jpeg":
        y = isp.jpeg_roundtrip_srgb(x, int(strength))
    elif kind == "realistic":
        from deblurkit.synth.pipeline import synthesize_pair
        from deblurkit.synth.presets import get_preset

        y = synthesize_pair(x, get_preset("realistic"), g).blur
    else:
        raise ValueError(kind)
    return np.ascontiguousarray(y[0].permute(1, 2, 0).numpy().astype(np.float32))


def load_set(folder: Path, count: int, crop: int) -> list[tuple[str, np.ndarray]]:
    from deblurkit.io import iter_image_files, load_image_rgb

    out = []
    for f in iter_image_files(folder)[:count]:
        img = load_image_rgb(f)
        h, w = img.shape[:2]
        if min(h, w) > crop:
            t, l0 = (h - crop) // 2, (w - crop) // 2
            img = img[t : t + crop, l0 : l0 + crop]
        out.append((f.name, np.ascontiguousarray(img)))
    return out


def score_set(images: list[tuple[str, np.ndarray]], cache: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """Scores of every (image, kind, strength); clean images have kind 'clean'."""
    from deblurkit.curate.run import score_image_srgb

    jobs = [("clean", 0.0)] + [(k, s) for k, ss in STRENGTHS.items() for s in ss] + [("realistic", 0.0)]
    recs = []
    t0 = time.perf_counter()
    for i, (name, img) in enumerate(images):
        for j, (kind, s) in enumerate(jobs):
            key = f"{tag}/{name}/{kind}/{s:g}"
            if key not in cache:
                x = img if kind == "clean" else degrade_srgb(img, kind, s, seed=1000 * i + j)
                cache[key] = score_image_srgb(x, privacy=False, brisque=True)
            recs.append({"image": name, "kind": kind, "strength": s, **cache[key]})
        print(f"  {tag}: {i + 1}/{len(images)} images scored ({time.perf_counter() - t0:.0f} s)", flush=True)
    return recs


def degraded_value(rec: dict[str, Any], score: str, sign: int) -> float:
    v = rec.get(score)
    if v is None:
        return math.inf  # no texture: a blank image counts as 'degraded' for the sharpness filter
    return sign * float(v)


def tune_threshold(recs: list[dict[str, Any]], kind: str) -> tuple[float, float]:
    """Threshold (in score units) maximising balanced accuracy of clean vs positives of ``kind``."""
    score, sign, _ = FILTERS[kind]
    clean = np.array([degraded_value(r, score, sign) for r in recs if r["kind"] == "clean"])
    pos = np.array([degraded_value(r, score, sign) for r in recs if r["kind"] == kind and POSITIVE[kind](r["strength"])])
    cands = np.unique(np.concatenate([clean, pos]))
    cands = cands[np.isfinite(cands)]
    best = (-1.0, 0.0)
    for c in cands:
        # flag when value > c (value = sign * score); threshold between c and the next value
        bacc = 0.5 * ((pos > c).mean() + (clean <= c).mean())
        if bacc > best[0]:
            best = (float(bacc), float(c))
    return sign * best[1], best[0]


def flagged(rec: dict[str, Any], kind: str, rules) -> bool:
    from deblurkit.curate.rules import decide

    words = {"blur": ("blurred", "too flat"), "noise": ("noisy",), "jpeg": ("JPEG blocking",)}[kind]
    return any(r.startswith(words) for r in decide(rec, rules))


def filter_report(recs: list[dict[str, Any]], rules) -> dict[str, Any]:
    out: dict[str, Any] = {}
    clean = [r for r in recs if r["kind"] == "clean"]
    for kind in FILTERS:
        fa = np.mean([flagged(r, kind, rules) for r in clean])
        det = {f"{s:g}": float(np.mean([flagged(r, kind, rules) for r in recs if r["kind"] == kind and r["strength"] == s]))
               for s in STRENGTHS[kind]}
        pos = [r for r in recs if r["kind"] == kind and POSITIVE[kind](r["strength"])]
        tp = sum(flagged(r, kind, rules) for r in pos)
        fp = sum(flagged(r, kind, rules) for r in clean)
        cross = {k: float(np.mean([flagged(r, kind, rules) for r in recs if r["kind"] == k])) for k in
                 ("blur", "noise", "jpeg", "realistic") if k != kind}
        out[kind] = {
            "precision": tp / max(tp + fp, 1), "recall": tp / max(len(pos), 1), "false_alarm_clean": float(fa),
            "detection_by_strength": det, "fires_on_other_kinds": cross, "n_clean": len(clean), "n_pos": len(pos),
        }
    any_flag = [bool(r2) for r2 in (rules_reasons(r, rules) for r in recs if r["kind"] == "realistic")]
    out["all_rules_on_realistic"] = float(np.mean(any_flag)) if any_flag else None
    out["all_rules_on_clean"] = float(np.mean([bool(rules_reasons(r, rules)) for r in clean]))
    return out


def rules_reasons(rec: dict[str, Any], rules) -> list[str]:
    from dataclasses import replace

    from deblurkit.curate.rules import decide

    return decide(rec, replace(rules, reject_faces=False))


def auc(pos: list[float], neg: list[float]) -> float:
    p, n = np.asarray(pos, float)[:, None], np.asarray(neg, float)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def separation_report(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """ROC AUC of clean vs positives of each kind, for BRISQUE and for the kind's own measure."""
    out = {}
    clean = [r for r in recs if r["kind"] == "clean"]
    for kind, (score, sign, _) in FILTERS.items():
        pos = [r for r in recs if r["kind"] == kind and POSITIVE[kind](r["strength"])]
        out[kind] = {
            "brisque_auc": auc([r["brisque"] for r in pos], [r["brisque"] for r in clean]),
            f"{score}_auc": auc([degraded_value(r, score, sign) for r in pos], [degraded_value(r, score, sign) for r in clean]),
        }
    pos = [r for r in recs if r["kind"] == "realistic"]
    out["realistic"] = {"brisque_auc": auc([r["brisque"] for r in pos], [r["brisque"] for r in clean])}
    return out


def face_report(labels_path: Path, thresholds: list[float]) -> dict[str, Any]:
    from deblurkit.curate.detectors import detect_faces_srgb
    from deblurkit.curate.rules import CurationRules
    from deblurkit.io import load_image_rgb

    doc = json.loads(labels_path.read_text())
    folder = (ROOT / doc["folder"]).resolve()  # relative to the project root
    conf = {}
    t0 = time.perf_counter()
    for name in doc["labels"]:
        faces = detect_faces_srgb(load_image_rgb(folder / name), min_confidence=0.3)
        conf[name] = faces[0].confidence if faces else 0.0
    seconds = (time.perf_counter() - t0) / max(len(conf), 1)
    rows = []
    for t in thresholds:
        row = {"threshold": t}
        for target in ("face", "person"):
            lab = {n: bool(v[target]) for n, v in doc["labels"].items()}
            tp = sum(conf[n] >= t and lab[n] for n in lab)
            fp = sum(conf[n] >= t and not lab[n] for n in lab)
            fn = sum(conf[n] < t and lab[n] for n in lab)
            row[target] = {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1), "tp": tp, "fp": fp, "fn": fn}
        rows.append(row)
    t_default = CurationRules().min_face_confidence
    missed = sorted(n for n, v in doc["labels"].items() if v["face"] and conf[n] < t_default)
    false_pos = sorted(n for n, v in doc["labels"].items() if not v["person"] and conf[n] >= t_default)
    return {"folder": doc["folder"], "n": len(conf), "n_face": sum(v["face"] for v in doc["labels"].values()),
            "n_person": sum(v["person"] for v in doc["labels"].values()), "sweep": rows,
            "seconds_per_image": seconds, "default_threshold": t_default, "missed_faces_at_default": missed,
            "false_alarms_at_default": false_pos,
            "confidence": conf}


def classifier_labelled(recs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    xs, ys = [], []
    for r in recs:
        if r["kind"] == "clean":
            xs.append(r), ys.append(1)
        elif r["kind"] == "realistic" or POSITIVE[r["kind"]](r["strength"]):
            xs.append(r), ys.append(0)
    return xs, ys


def classifier_report(tune: list[dict[str, Any]], test: list[dict[str, Any]], rules, save: Path | None) -> dict[str, Any]:
    from deblurkit.curate.classifier import train_logistic

    xt, yt = classifier_labelled(tune)
    xe, ye = classifier_labelled(test)
    clf = train_logistic(xt, yt, info={"trained_on": "studies/curation_filters.py TUNE set: clean vs degraded "
                                       "(blur >= 4 px, shot >= 2e-3, JPEG <= 50, realistic preset)",
                                       "n_train": len(yt)})
    p = np.array([clf.probability(r) for r in xe])
    y = np.array(ye)
    pred_bad = p < clf.threshold
    rules_bad = np.array([bool(rules_reasons(r, rules)) for r in xe])
    def pr(flag):
        tp = int((flag & (y == 0)).sum()); fp = int((flag & (y == 1)).sum())
        return {"precision_reject": tp / max(tp + fp, 1), "recall_reject": tp / max(int((y == 0).sum()), 1),
                "accuracy": float((flag == (y == 0)).mean())}
    by_kind = {}
    for kind in ("blur", "noise", "jpeg", "realistic"):
        m = [i for i, r in enumerate(xe) if r["kind"] == kind]
        by_kind[kind] = {"classifier": float(pred_bad[m].mean()), "rules": float(rules_bad[m].mean())}
    # two non-linear models over the same features, for comparison only (not shipped)
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from deblurkit.curate.classifier import feature_vector

    ft = np.stack([feature_vector(r, clf.features) for r in xt])
    fe = np.stack([feature_vector(r, clf.features) for r in xe])
    mean = np.nanmean(ft, axis=0)
    zt = (np.where(np.isnan(ft), mean, ft) - clf.mean) / clf.scale
    ze = (np.where(np.isnan(fe), mean, fe) - clf.mean) / clf.scale
    quad = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(np.hstack([zt, zt**2]), yt)
    p_quad = quad.predict_proba(np.hstack([ze, ze**2]))[:, 1]
    gbm = HistGradientBoostingClassifier(max_depth=3, max_iter=100, class_weight="balanced", random_state=0).fit(ft, yt)
    p_gbm = gbm.predict_proba(fe)[:, 1]
    others = {name: {**pr(pp < 0.5), "auc": auc(list(-pp[y == 0]), list(-pp[y == 1]))}
              for name, pp in (("logistic, features and their squares (not shipped)", p_quad),
                               ("gradient-boosted trees, depth 3 (not shipped)", p_gbm))}
    out = {"test_auc": auc(list(-p[y == 0]), list(-p[y == 1])), "classifier": pr(pred_bad), "rules": pr(rules_bad),
           "other_models": others,
           "rejected_by_kind": by_kind, "coef": dict(zip(clf.features, clf.coef, strict=True))}
    if save is not None:
        from dataclasses import replace

        clf = replace(clf, info={**clf.info, "test": {"set": "kodak24", **out["classifier"], "auc": out["test_auc"]}})
        clf.save(save)
        out["saved"] = str(save.relative_to(ROOT)) if save.is_relative_to(ROOT) else str(save)
    return out


def fmt(x: float) -> str:
    return f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tune", type=Path, default=SHARED / "sharp" / "urban100")
    ap.add_argument("--tune-count", type=int, default=16)
    ap.add_argument("--test", type=Path, default=SHARED / "sharp" / "kodak24")
    ap.add_argument("--limit", type=int, default=None, help="at most this many images per set (smoke test)")
    ap.add_argument("--faces", type=Path, default=ROOT / "studies" / "curation_face_labels.json")
    ap.add_argument("--cache", type=Path, default=None, help="JSON cache of scores (reruns are instant)")
    ap.add_argument("--out", type=Path, default=ROOT / "studies" / "results" / "curation_filters")
    ap.add_argument("--no-save-model", action="store_true", help="do not write the shipped classifier JSON")
    args = ap.parse_args(argv)

    from deblurkit.curate.classifier import DEFAULT_MODEL
    from deblurkit.curate.rules import CurationRules

    for p in (args.tune, args.test):
        if not p.is_dir():
            print(f"curation_filters: {p} not found (../shared/data is needed for this study)", file=sys.stderr)
            return 2
    cache: dict[str, Any] = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    n_tune = args.tune_count if args.limit is None else min(args.tune_count, args.limit)
    tune = score_set(load_set(args.tune, n_tune, 512), cache, "tune")
    test = score_set(load_set(args.test, 10**6 if args.limit is None else args.limit, 512), cache, "test")
    if args.cache:
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_text(json.dumps(cache))

    rules = CurationRules()
    tuned = {kind: dict(zip(("threshold", "balanced_accuracy"), tune_threshold(tune, kind), strict=True))
             for kind in FILTERS}
    for kind, (_, _, field_name) in FILTERS.items():
        tuned[kind]["default"] = getattr(rules, field_name)
    res: dict[str, Any] = {
        "sets": {"tune": f"{args.tune} (first {n_tune}, centre 512 crops)", "test": str(args.test)},
        "strengths": STRENGTHS, "tuned_on_tune_set": tuned,
        "test_with_defaults": filter_report(test, rules), "tune_with_defaults": filter_report(tune, rules),
        "separation_test": separation_report(test),
    }
    limit_faces = args.limit is None
    if args.faces.exists():
        res["faces"] = face_report(args.faces, [0.5, 0.6, 0.7, 0.8, 0.9]) if limit_faces else None
    save = None if (args.no_save_model or args.limit is not None) else DEFAULT_MODEL
    res["classifier"] = classifier_report(tune, test, rules, save)

    lines = ["# Curation filters", "", (f"Command: `python -m studies.curation_filters` (TUNE {res['sets']['tune']}, "
              f"TEST {res['sets']['test']})"), "",
             "## Synthetic degradations (TEST set, shipped thresholds)", "",
             "| filter | score | threshold (tuned on TUNE) | precision | recall | false alarms on clean | detected by strength | fires on other kinds |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, (score, _, field_name) in FILTERS.items():
        r = res["test_with_defaults"][kind]
        det = ", ".join(f"{k}: {v:.2f}" for k, v in r["detection_by_strength"].items())
        cross = ", ".join(f"{k} {v:.2f}" for k, v in r["fires_on_other_kinds"].items())
        lines.append(f"| {kind} | {score} | {getattr(rules, field_name)} ({tuned[kind]['threshold']:.4g}) | "
                     f"{fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['false_alarm_clean'])} | {det} | {cross} |")
    lines += ["", (f"All rules together reject {res['test_with_defaults']['all_rules_on_clean']:.2f} of the clean "
                   f"TEST photos and {res['test_with_defaults']['all_rules_on_realistic']:.2f} of their "
                   "`realistic`-preset degradations."), "",
              "## BRISQUE vs the dedicated measures (TEST, ROC AUC clean vs degraded)", "",
              "| degradation | BRISQUE | dedicated measure |", "|---|---|---|"]
    for kind, r in res["separation_test"].items():
        ded = next((f"{k[:-4]} {v:.2f}" for k, v in r.items() if k != "brisque_auc"), "-")
        lines.append(f"| {kind} | {r['brisque_auc']:.2f} | {ded} |")
    if res.get("faces"):
        f = res["faces"]
        lines += ["", (f"## Face filter ({f['n']} labelled photos of {f['folder']}: {f['n_face']} with a visible "
                       f"face, {f['n_person']} with a person; {f['seconds_per_image']:.2f} s per photo)"), "",
                  "| confidence >= | face: precision | face: recall | person: precision | person: recall |", "|---|---|---|---|---|"]
        for row in f["sweep"]:
            lines.append(f"| {row['threshold']} | {fmt(row['face']['precision'])} | {fmt(row['face']['recall'])} | "
                         f"{fmt(row['person']['precision'])} | {fmt(row['person']['recall'])} |")
    c = res["classifier"]
    lines += ["", "## Learned classifier (trained on TUNE, scored on TEST)", "",
              "| model | ROC AUC | precision (reject) | recall (reject) | accuracy |", "|---|---|---|---|---|"]
    rows = [("logistic regression (shipped: quality_classifier.json)", {**c["classifier"], "auc": c["test_auc"]}),
            *c["other_models"].items(), ("the thresholds (CurationRules)", {**c["rules"], "auc": float("nan")})]
    for k, r in rows:
        lines.append(f"| {k} | {r['auc']:.3f} | {fmt(r['precision_reject'])} | {fmt(r['recall_reject'])} | "
                     f"{fmt(r['accuracy'])} |")
    lines += ["", "Rejected share by degradation: " + ", ".join(
        f"{k} {v['classifier']:.2f} (rules {v['rules']:.2f})" for k, v in c["rejected_by_kind"].items())]
    write_results(args.out, res, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
