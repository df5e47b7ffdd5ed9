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


def test_exported_trees_predict_as_the_fitted_regressor(rng):
    from sklearn.ensemble import HistGradientBoostingRegressor

    from deblurkit.kernel_aware.decision import GainTrees

    x = rng.normal(size=(400, 5))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take each split's learned side
    y = np.nan_to_num(x[:, 0]) * 2 + np.sin(np.nan_to_num(x[:, 1]) * 3) + rng.normal(0, 0.1, 400)
    model = HistGradientBoostingRegressor(max_iter=40, max_leaf_nodes=7, random_state=0).fit(x, y)
    trees = ks.export_trees(model, [f"f{i}" for i in range(5)], {"note": "test"})
    back = GainTrees.from_dict(json.loads(json.dumps(trees.to_dict())))
    probe = rng.normal(size=(200, 5))
    probe[rng.random(probe.shape) < 0.1] = np.nan
    np.testing.assert_allclose(back.predict(probe), model.predict(probe), rtol=1e-9, atol=1e-9)
    assert back.meta == {"note": "test"}


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
    monkeypatch.setattr(ks, "judge", lambda: (lambda srgb: np.clip(srgb * 0.95 + 0.02, 0.0, 1.0)))
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
    stored_held = json.loads((cache / held_pool / "uniform.json").read_text())["pairs"]
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
    exported = tmp_path / "res" / "decision.json"
    assert ks.main(["fit", "--train", str(tmp_path / "train-a"), "--evaluate", str(tmp_path / "held-out"),
                    "--folds", "2", "--validation", str(tmp_path / "held-out"), "--cache", str(cache),
                    "--out", str(out), "--export", str(exported)]) == 0
    from deblurkit.kernel_aware.decision import candidate_rows, load_decision

    trees = load_decision(exported)  # reads the features this version computes
    assert trees.meta["pairs"] == 4 and trees.meta["judge"] == "nafnet-w16"
    rows = candidate_rows([piped["0"]["rows"][ks.PIPELINE]["features"]], piped["0"]["rows"][ks.DELTA]["features"])
    assert np.all(np.isfinite(trees.predict(rows)))
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
    own = res["pipeline_kernels_cross_validated"][f"{train_pool}/uniform"]["learned, as the pipeline decides"]
    train_piped = json.loads((cache / "pipeline" / train_pool / "uniform.json").read_text())["pairs"]
    assert own["gain"] <= np.mean([max(p["rows"][ks.PIPELINE]["gain"], 0.0) for p in train_piped.values()]) + 1e-9
    assert 0 <= own["declined"] <= 4
    chosen = res["validation"]["chosen"]
    assert res["validation"]["sets"] == [f"{held_pool}/uniform"] and chosen in ks.MODELS
    assert res["validation"]["models"][chosen]["mean_of_sets"] == pytest.approx(held[f"learned ({chosen})"]["gain"])
    md = out.with_suffix(".md").read_text()
    assert f"### {held_pool}/uniform (4 pairs)" in md and f"training pool {train_pool}/uniform" in md

    # The choice among several estimates: their kernels, then every rule ranked on validation.
    monkeypatch.setattr(ks, "CHOICE", [ks.PIPELINE, "lam 4e-3"])
    for pool in ("train-a", "held-out"):
        assert ks.main(["collect", "--candidates", "kernels", "--testsets", str(tmp_path / pool), "--sets",
                        "uniform", "--workers", "1", "--cache", str(cache)]) == 0
    kept = json.loads((cache / "kernels" / held_pool / "uniform.json").read_text())["pairs"]
    assert set(kept["0"]["kernels"]) == {ks.PIPELINE, "lam 4e-3"}
    for i, pair in kept.items():  # the same kernels as the candidates' collection deconvolved
        assert pair["similarity"][ks.PIPELINE] == pytest.approx(piped[i]["rows"][ks.PIPELINE]["similarity"], abs=1e-6)
    merged = ks.with_agreement(ks.choice_pairs(cache, tmp_path / "held-out", None)["uniform"], ks.CHOICE)
    assert len(merged) == 4 and set(merged[0]["rows"]) == {ks.PIPELINE, "lam 4e-3", ks.DELTA, "true"}
    one, other = (merged[0]["rows"][n]["features"]["agreement_max"] for n in ks.CHOICE)
    assert one == pytest.approx(other) and 0.0 <= one <= 1.0 + 1e-9  # similarity is symmetric
    out = tmp_path / "res" / "choice"
    assert ks.main(["choice", "--train", str(tmp_path / "train-a"), "--evaluate", str(tmp_path / "held-out"),
                    "--validation", str(tmp_path / "held-out"), "--cache", str(cache), "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert len(res["rules"]) == 3 * (1 + 2)  # the models; the pipeline's kernel alone, and with lam 4e-3 (+ agreement)
    ranked = [r["validation"] for r in res["rules"]]
    assert ranked == sorted(ranked, reverse=True)
    bound = res["best"][f"{held_pool}/uniform"]["gain"]
    assert all(r["sets"][f"{held_pool}/uniform"]["gain"] <= bound + 1e-9 for r in res["rules"])
    assert res["pipeline"]["shipped"] == {}  # no --checks given: no pipeline row
    # A pool collected with some of the settings alone (for ``choice``).
    few = tmp_path / "cache-few"
    assert ks.main(["collect", "--testsets", str(tmp_path / "held-out"), "--sets", "uniform", "--workers", "1",
                    "--settings", "lam 4e-3", "--cache", str(few)]) == 0
    subset = json.loads((few / held_pool / "uniform.json").read_text())["pairs"]
    assert set(subset["0"]["rows"]) == {"lam 4e-3", ks.DELTA, "true"}
    assert subset["0"]["rows"]["lam 4e-3"]["gain"] == pytest.approx(stored_held["0"]["rows"]["lam 4e-3"]["gain"])


def test_the_veto_only_removes_kernels_the_checks_trust(tmp_path):
    result = {"sets": {"uniform": {"per_image": [
        {"index": i, "blurry": {"psnr": 20.0, "psnr_aligned": 20.0},
         "estimators": {"pipeline": {"psnr": 20.0 + g, "psnr_aligned": 20.5 + g, "declined": d}}}
        for i, (g, d) in enumerate([(3.0, False), (-4.0, False), (0.0, True)])]}}}
    (tmp_path / "checks.json").write_text(json.dumps(result))
    checks = ks.load_checks([f"{tmp_path / 'checks.json'}={tmp_path / 'pool'}"])
    key = f"{ks.pool_name(tmp_path / 'pool')}/uniform"
    pairs = [{"index": i} for i in range(3)]
    # The regressor takes the first kernel, declines the second (which loses) and would take the
    # third, which the checks declined: that one stays unchanged.
    rows = ks.veto_rows(pairs, checks[key], [True, False, True])
    assert rows["trust checks"]["gain"] == pytest.approx(-1.0 / 3) and rows["trust checks"]["declined"] == 1
    veto = rows["checks, then the learned veto"]
    assert veto["gain"] == pytest.approx(1.0) and veto["worst"] == 0.0 and veto["declined"] == 2
    assert veto["aligned_gain"] == pytest.approx(3.5 / 3)
