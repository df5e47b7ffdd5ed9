"""The learned kernel selector study: features, the choice rule, and the study end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deblurkit.synth.trajectory import random_shake_kernel
from studies import kernel_selector as ks
from tests.studies.test_blind_benchmark import _tiny_set


def _pair(gains: dict[str, float]) -> dict:
    return {"rows": {n: {"gain": g, "aligned_gain": g + 0.1, "similarity": 0.5} for n, g in gains.items()}}


def test_features_tell_the_true_kernel_from_a_delta_and_a_wider_kernel(rng):
    from scipy.signal import fftconvolve

    from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv

    kernel = random_shake_kernel(13, 9.0, rng)
    import cv2

    sharp = np.clip(cv2.GaussianBlur(rng.random((128, 128)).astype(np.float32), (0, 0), 2.0) * 2.0 - 0.5, 0, 1)
    blur = fftconvolve(sharp, kernel, mode="same").astype(np.float32) + rng.normal(0, 0.002, sharp.shape).astype(np.float32)
    wide = cv2.resize(kernel, (25, 25), interpolation=cv2.INTER_LINEAR)
    wide /= wide.sum()
    feats = {}
    for name, k in {"true": kernel, "delta": ks.delta_kernel(), "wide": wide}.items():
        x = hyper_laplacian_deconv(blur, k, weight=2e-3, alpha=0.8)
        feats[name] = ks.candidate_features(blur, np.asarray(k, np.float64), x, [kernel, wide], 0.002)
    for f in feats.values():
        assert all(np.isfinite(v) for v in f.values())
    assert feats["delta"]["log_support"] == pytest.approx(0.0)
    assert feats["true"]["agreement_max"] == pytest.approx(1.0, abs=1e-6)
    # The true kernel's deconvolution re-blurs to the photo; a delta leaves it blurry (no gradient gain).
    assert feats["true"]["log_gradient_gain"] > feats["delta"]["log_gradient_gain"] + 0.3
    # A kernel twice too wide over-sharpens: rings beyond the photo's local range.
    assert feats["wide"]["ringing"] > feats["true"]["ringing"]


def test_choose_picks_the_largest_prediction_and_scores_the_picks():
    names = ks.candidate_names()
    pred = np.full((2, len(names)), -1.0)
    pred[0, names.index("gamma 8")] = 2.0
    pred[1, names.index(ks.DELTA)] = 0.1
    pairs = [_pair({n: 0.0 for n in names}), _pair({n: 0.0 for n in names})]
    assert ks.choose(pairs, pred.ravel()) == ["gamma 8", ks.DELTA]
    pairs[0]["rows"]["gamma 8"]["gain"] = 3.0
    pairs[1]["rows"][ks.DELTA]["gain"] = -1.0
    s = ks.score_rule(pairs, ["gamma 8", ks.DELTA])
    assert s["gain"] == pytest.approx(1.0) and s["worst"] == -1.0 and s["delta"] == 1
    assert s["aligned_gain"] == pytest.approx(0.1) and s["similarity"] == pytest.approx(0.5)


def test_study_collects_fits_and_writes_its_tables(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(ks, "SETTINGS", {"default": {}, "lam 4e-3": {"lam": 4e-3}})
    monkeypatch.setattr(ks, "network_change", lambda srgb: float(srgb.mean()))
    monkeypatch.setattr(ks, "FEWER_CANDIDATES", {"the shipped setting alone": ["default"]})
    kernel = random_shake_kernel(9, 7.0, rng)
    for pool in ("train-a", "held-out"):
        _tiny_set(tmp_path / pool / "uniform", rng, kernel, n=4)
    cache = tmp_path / "cache"
    for pool in ("train-a", "held-out"):
        assert ks.main(["collect", "--testsets", str(tmp_path / pool), "--sets", "uniform", "--workers", "1",
                        "--cache", str(cache)]) == 0
    train_pool, held_pool = ks.pool_name(tmp_path / "train-a"), ks.pool_name(tmp_path / "held-out")
    assert train_pool.endswith("-train-a")  # the parent folder's name joins a folder's outside data/
    stored = json.loads((cache / train_pool / "uniform.json").read_text())["pairs"]
    assert len(stored) == 4
    row = stored["0"]["rows"]
    assert set(row) == {"default", "lam 4e-3", ks.DELTA, "true"}
    assert row["true"]["similarity"] == pytest.approx(1.0, abs=1e-6) and "features" not in row["true"]
    # Collecting again finds every pair done.
    assert ks.main(["collect", "--testsets", str(tmp_path / "train-a"), "--sets", "uniform", "--workers", "1",
                    "--cache", str(cache)]) == 0

    for pool in ("train-a", "held-out"):
        assert ks.main(["collect", "--candidates", "pipeline", "--testsets", str(tmp_path / pool), "--sets",
                        "uniform", "--workers", "1", "--cache", str(cache)]) == 0
    piped = json.loads((cache / "pipeline" / held_pool / "uniform.json").read_text())["pairs"]
    assert set(piped["0"]["rows"]) == {ks.PIPELINE, ks.DELTA, "true"}

    out = tmp_path / "res" / "selector"
    assert ks.main(["fit", "--train", str(tmp_path / "train-a"), "--evaluate", str(tmp_path / "held-out"),
                    "--folds", "2", "--validation", str(tmp_path / "held-out"), "--cache", str(cache),
                    "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["train_pairs"] == 4
    held = res["sets"][f"{held_pool}/uniform"]
    oracle = held["oracle (best candidate)"]["gain"]
    for rule in [f"learned ({m})" for m in ks.MODELS] + ["shipped setting", "no deconvolution (delta)"]:
        assert held[rule]["pairs"] == 4 and held[rule]["gain"] <= oracle + 1e-9
    fewer = res["fewer_candidates"]["the shipped setting alone"][f"{held_pool}/uniform"]
    assert fewer["learned"]["gain"] <= fewer["best candidate"]["gain"] + 1e-9
    assert fewer["best candidate"]["gain"] <= oracle + 1e-9  # the best of fewer candidates
    gate = res["pipeline_kernels"][f"{held_pool}/uniform"]
    assert gate["learned"]["pairs"] == 4
    # Leaving a photo unchanged where the pipeline's kernel would lose is the most it can gain.
    bound = np.mean([max(p["rows"][ks.PIPELINE]["gain"], 0.0) for p in piped.values()])
    assert gate["learned, unchanged"]["gain"] <= bound + 1e-9
    assert gate["learned on the pipeline's kernels, unchanged"]["gain"] <= bound + 1e-9
    chosen = res["validation"]["chosen"]
    assert res["validation"]["sets"] == [f"{held_pool}/uniform"] and chosen in ks.MODELS
    assert res["validation"]["models"][chosen]["mean_of_sets"] == pytest.approx(held[f"learned ({chosen})"]["gain"])
    md = out.with_suffix(".md").read_text()
    assert f"### {held_pool}/uniform (4 pairs)" in md and f"training pool {train_pool}/uniform" in md
