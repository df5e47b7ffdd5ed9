"""The learned deblur-or-not decision: its features, its stored trees, and the pipeline's use of it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware import decision
from deblurkit.kernel_aware.blind import (
    BlindParams,
    deblur_image_and_kernels,
    decision_features,
    trusting_every_kernel,
)


@pytest.fixture(scope="module")
def case(camera_shake):
    return camera_shake


def test_spectral_residue_is_higher_for_a_kernel_that_did_not_make_the_blur(case):
    sharp, blur, kernel = case
    line = np.zeros((21, 21))
    line[10, :] = 1.0 / 21  # removes horizontal detail this blur kept
    right = decision.spectral_residue(blur, kernel, 0.002)
    assert right < 10.0
    assert decision.spectral_residue(blur, line, 0.002) > 10 * right
    assert decision.spectral_residue(sharp, kernel, 0.002) > 10 * right  # the sharp photo has what the kernel removes
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    assert decision.spectral_residue(blur, delta, 0.002) == 0.0


def test_features_tell_the_true_kernel_from_a_delta_and_a_wider_kernel(case):
    import cv2

    _, blur, kernel = case
    wide = cv2.resize(kernel, (41, 41), interpolation=cv2.INTER_LINEAR)
    wide /= wide.sum()
    image = np.repeat(blur[..., None], 3, axis=2)
    network = lambda srgb: np.clip(srgb * 0.98 + 0.01, 0.0, 1.0)  # a stand-in judge
    (true, too_wide), delta = decision_features(image, [kernel, wide], scale=1.0, sigma=0.002, network=network)
    for f in (true, too_wide, delta):
        assert list(f) == list(decision.FEATURES) and all(np.isfinite(v) for v in f.values())
    assert delta["log_support"] == pytest.approx(0.0) and delta["log_spectral_residue"] == 0.0
    # The true kernel's deconvolution sharpens (gradient gain); the delta's leaves the photo blurry.
    assert true["log_gradient_gain"] > delta["log_gradient_gain"] + 0.3
    # A kernel twice too wide over-sharpens: it rings beyond the photo's local range.
    assert too_wide["ringing"] > true["ringing"]
    assert too_wide["log_spectral_residue"] > true["log_spectral_residue"]


def test_candidates_judged_in_threads_give_the_serial_features(case):
    _, blur, kernel = case
    image = np.repeat(blur[..., None], 3, axis=2)
    threads = set()

    def network(srgb):
        import threading

        threads.add(threading.get_ident())
        return np.clip(srgb * 0.98 + 0.01, 0.0, 1.0)

    kernels = [kernel, np.rot90(kernel).copy()]
    serial = decision_features(image, kernels, scale=1.0, sigma=0.002, network=network,
                               params=BlindParams(workers=1))
    assert len(threads) == 1
    parallel = decision_features(image, kernels, scale=1.0, sigma=0.002, network=network,
                                 params=BlindParams(workers=3))
    assert len(threads) > 1  # the candidates ran in worker threads
    assert parallel == serial


def test_reblur_residual_is_that_of_a_linear_convolution_away_from_the_border(case):
    from scipy.signal import fftconvolve

    from deblurkit.kernel_aware.estimation import border_crop

    sharp, blur, kernel = case
    sigma = 0.002
    k = np.asarray(kernel, np.float64) / kernel.sum()
    border = 2 * k.shape[0]
    want = border_crop(fftconvolve(sharp.astype(np.float64), k, mode="same") - blur, border)
    found = decision.deconvolution_features(blur, kernel, sharp, sigma, 30.0)["reblur_residual"]
    assert found == pytest.approx(float(np.sqrt((want ** 2).mean())) / sigma, rel=1e-5)


def test_judging_does_not_import_scipy_signal():
    # Importing it took about 0.5 s of every run of the default.
    import subprocess
    import sys

    code = ("import sys, numpy as np; from deblurkit.kernel_aware.blind import decision_features; "
            "img = np.random.default_rng(0).random((96, 96, 3), dtype=np.float32); k = np.full((5, 5), 0.04); "
            "decision_features(img, [k], scale=1.0, sigma=0.002, network=lambda x: x); "
            "print('scipy.signal' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _stump(feature: int, threshold: float, low: float, high: float) -> dict:
    return {"feature": [feature, 0, 0], "threshold": [threshold, 0.0, 0.0], "left": [1, 0, 0], "right": [2, 0, 0],
            "missing_left": [False, False, False], "leaf": [False, True, True], "value": [0.0, low, high]}


def test_gain_trees_sum_their_leaves_and_send_missing_values_to_their_side():
    trees = decision.GainTrees.from_dict({"baseline": 1.0, "columns": ["a", "b"], "meta": {},
                                          "trees": [_stump(0, 0.5, -1.0, 2.0), _stump(1, 0.0, 0.25, 0.5)]})
    x = np.array([[0.0, -1.0], [1.0, 1.0], [0.5, np.nan]])
    np.testing.assert_allclose(trees.predict(x), [1.0 - 1.0 + 0.25, 1.0 + 2.0 + 0.5, 1.0 - 1.0 + 0.5])
    back = decision.GainTrees.from_dict(json.loads(json.dumps(trees.to_dict())))
    np.testing.assert_allclose(back.predict(x), trees.predict(x))
    with pytest.raises(DeblurkitError, match="rows of 2 features"):
        trees.predict(np.zeros((1, 3)))


@pytest.mark.parametrize("broken", [
    lambda t: t["trees"][0].update(left=[5, 0, 0]),  # a child that does not exist
    lambda t: t["trees"][0].update(value=[0.0, 1.0]),  # node arrays of unequal length
    lambda t: t["trees"][0].update(feature=[7, 0, 0]),  # a column that does not exist
    lambda t: t.pop("baseline"),
])
def test_malformed_trees_are_refused_with_one_clear_error(broken):
    data = {"baseline": 0.0, "columns": ["a", "b"], "meta": {}, "trees": [_stump(0, 0.5, -1.0, 2.0)]}
    broken(data)
    with pytest.raises(DeblurkitError, match="malformed decision trees"):
        decision.GainTrees.from_dict(data)


def test_the_shipped_decision_reads_the_features_this_version_computes(tmp_path):
    trees = decision.load_decision()
    assert list(trees.columns) == decision.row_names() and trees.meta["judge"] == decision.JUDGE
    stale = trees.to_dict()
    stale["columns"] = stale["columns"][::-1]
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    with pytest.raises(DeblurkitError, match="other features"):
        decision.load_decision(tmp_path / "stale.json")
    (tmp_path / "cut.json").write_text(json.dumps(stale)[:100])
    with pytest.raises(DeblurkitError, match="cannot read"):
        decision.load_decision(tmp_path / "cut.json")


def test_the_learned_decision_needs_its_judge(case):
    _, blur, _ = case
    srgb = np.repeat(blur[..., None], 3, axis=2)
    with pytest.raises(DeblurkitError, match="judge network"):
        deblur_image_and_kernels(srgb, tiles=1, params=BlindParams(decision="learned"))


def test_the_pipeline_deblurs_where_the_kernel_is_predicted_to_gain_more(case, monkeypatch):
    _, blur, _ = case
    srgb = np.repeat(blur[..., None], 3, axis=2)
    network = lambda x: np.clip(x * 0.98 + 0.01, 0.0, 1.0)  # a stand-in judge
    for kernel_gain, deblurred in ((3.0, True), (-3.0, False)):
        # A decision that predicts +3 (or -3) dB for the kernel and 0 for the delta kernel.
        fixed = decision.GainTrees(0.0, ({"feature": np.array([decision.row_names().index("is_delta"), 0, 0]),
                                          "threshold": np.array([0.5, 0.0, 0.0]), "left": np.array([1, 0, 0]),
                                          "right": np.array([2, 0, 0]), "missing_left": np.zeros(3, bool),
                                          "leaf": np.array([False, True, True]),
                                          "value": np.array([0.0, kernel_gain, 0.0])},),
                                   tuple(decision.row_names()), {})
        monkeypatch.setattr("deblurkit.kernel_aware.blind.load_decision", lambda: fixed)  # noqa: B023
        params = replace(trusting_every_kernel(), decision="learned")  # the checks pass: the regressor decides
        result = deblur_image_and_kernels(srgb, tiles=1, params=params, network=network)
        assert bool(result.blurred[0, 0]) is deblurred
        assert (not np.array_equal(result.image, srgb)) is deblurred


@pytest.mark.parametrize(("scale", "overshoot", "agreement", "judged", "deblurred"), [
    (1.0, 0.0, 0.5, True, True),  # trusted at full resolution, as in training: the regressor decides
    (1.0, 0.5, 0.5, False, False),  # the checks decline (it rings): the regressor is not asked
    (1.5, 0.0, 0.95, False, True),  # found on a downscaled image: the checks alone decide, and pass it ...
    (1.5, 0.0, 0.5, False, False),  # ... or decline it (agreement below BlindParams.agreement_downscaled)
])
def test_the_regressor_judges_kernels_the_checks_trust_at_full_resolution(
        case, monkeypatch, scale, overshoot, agreement, judged, deblurred):
    from deblurkit.kernel_aware import blind
    from deblurkit.kernel_aware.estimation import KernelEstimate

    _, blur, kernel = case
    srgb = np.repeat(blur[..., None], 3, axis=2)
    found = KernelEstimate(np.asarray(kernel, np.float32), scale, 0.9, overshoot, agreement)
    monkeypatch.setattr(blind, "estimate_kernel_auto", lambda *a, **k: found)
    monkeypatch.setattr(blind, "region_agreement", lambda *a, **k: 0.0)  # no half-image overturn
    asked = []

    def always_deblur(features, delta):
        asked.append(True)
        return np.array([[1.0], [0.0]])  # +1 dB predicted for the kernel, 0 for the delta kernel

    monkeypatch.setattr(blind, "candidate_rows", always_deblur)
    # Predicts each row's one value: +1 dB for the kernel, 0 for the delta kernel.
    trees = decision.GainTrees.from_dict({"baseline": 0.0, "columns": ["a"], "trees": [_stump(0, 0.5, 0.0, 1.0)]})
    monkeypatch.setattr(blind, "load_decision", lambda: trees)
    network = lambda x: x  # a stand-in judge
    params = BlindParams(decision="learned", kernel_bridge=None)
    result = deblur_image_and_kernels(srgb, tiles=1, params=params, network=network)
    assert bool(asked) is judged and bool(result.blurred[0, 0]) is deblurred


def test_a_deconvolved_kernel_is_refitted_to_the_network_restoration(case, monkeypatch):
    """With a network, each kernel the pipeline deconvolves is fitted once more to the network's
    restoration of its deconvolution: a network that restores the sharp photo brings a too-wide
    estimate back to the shake. Without a network, or with ``refit_side=None``, the estimate stays."""
    from scipy.ndimage import gaussian_filter

    from deblurkit.color import linear_to_srgb
    from deblurkit.kernel_aware import blind
    from deblurkit.kernel_aware.estimation import KernelEstimate
    from deblurkit.kernel_aware.kernels import kernel_similarity

    sharp, blur, kernel = case
    wide = gaussian_filter(kernel, 1.5).astype(np.float32)
    wide /= wide.sum()
    found = KernelEstimate(wide, 1.0, 0.9, 0.0, 0.9)
    monkeypatch.setattr(blind, "estimate_kernel_auto", lambda *a, **k: found)
    trees = decision.GainTrees.from_dict({"baseline": 0.0, "columns": ["a"], "trees": [_stump(0, 0.5, 0.0, 1.0)]})
    monkeypatch.setattr(blind, "load_decision", lambda: trees)
    monkeypatch.setattr(blind, "candidate_rows", lambda features, delta: np.array([[1.0], [0.0]]))  # deblur
    restored = np.repeat(linear_to_srgb(sharp)[..., None], 3, axis=2).astype(np.float32)
    seen = []

    def oracle(srgb):  # the photo fits one window: the network "restores" the sharp photo
        seen.append(srgb.shape)
        return restored

    image = np.repeat(blur[..., None], 3, axis=2)
    kernels = {}
    for name, params, network in (
            ("refit", BlindParams(decision="learned", kernel_bridge=None), oracle),
            ("off", BlindParams(decision="learned", kernel_bridge=None, refit_side=None), oracle),
            ("checks", trusting_every_kernel(BlindParams(kernel_bridge=None)), None)):
        result = deblur_image_and_kernels(image, tiles=1, input_space="linear", params=params, network=network)
        assert result.blurred[0, 0]
        kernels[name] = result.kernels[0, 0]
    assert all(shape == restored.shape for shape in seen)
    size = kernels["off"].shape[0]  # the estimate in the pipeline's common window
    assert kernels["refit"].shape == (size + 8, size + 8) and abs(float(kernels["refit"].sum()) - 1.0) < 1e-5
    assert kernel_similarity(wide, kernel) < 0.9
    assert kernel_similarity(kernels["refit"], kernel) > 0.95
    pad = (size - wide.shape[0]) // 2
    np.testing.assert_array_equal(kernels["off"], np.pad(wide, pad))
    np.testing.assert_array_equal(kernels["checks"], np.pad(wide, pad))


def test_a_tile_that_borrows_the_global_kernel_keeps_it_unrefitted(case, monkeypatch):
    """A texture-poor tile borrows the whole photo's kernel; it has too little texture to refit it
    on, so its kernel stays as estimated while the textured tile's is refitted."""
    from scipy.ndimage import gaussian_filter

    from deblurkit.kernel_aware import blind
    from deblurkit.kernel_aware.estimation import KernelEstimate

    _, blur, kernel = case
    wide = gaussian_filter(kernel, 1.5).astype(np.float32)
    wide /= wide.sum()
    monkeypatch.setattr(blind, "estimate_kernel_auto", lambda *a, **k: KernelEstimate(wide, 1.0, 0.9, 0.0, 0.9))
    trees = decision.GainTrees.from_dict({"baseline": 0.0, "columns": ["a"], "trees": [_stump(0, 0.5, 0.0, 1.0)]})
    monkeypatch.setattr(blind, "load_decision", lambda: trees)
    monkeypatch.setattr(blind, "candidate_rows", lambda features, delta: np.array([[1.0], [0.0]]))  # deblur
    flat = np.full_like(blur, float(blur.mean()))
    image = np.repeat(np.concatenate([blur, flat], axis=1)[..., None], 3, axis=2)  # textured | flat
    result = deblur_image_and_kernels(image, tiles=(1, 2), input_space="linear", network=lambda x: x,
                                      params=BlindParams(decision="learned", kernel_bridge=None))
    assert result.blurred.all()
    size = result.kernels.shape[-1]
    pad = (size - wide.shape[0]) // 2
    np.testing.assert_array_equal(result.kernels[0, 1], np.pad(wide, pad))  # borrowed, as estimated
    assert not np.array_equal(result.kernels[0, 0], np.pad(wide, pad))  # refitted on its own tile
