"""The blind benchmark harness on a tiny synthetic set: a perfect estimator scores ratio 1."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from deblurkit.color import linear_to_srgb, srgb_to_linear
from deblurkit.io import save_png
from deblurkit.kernel_aware.deconv import convolve_fft
from deblurkit.synth.trajectory import random_shake_kernel
from studies import blind_benchmark


def _tiny_set(root, rng, kernel: np.ndarray, n: int = 2) -> None:
    import cv2

    items = []
    for i in range(n):
        sharp = np.clip(cv2.GaussianBlur(rng.random((96, 96, 3)).astype(np.float32), (0, 0), 1.5) * 1.6 - 0.3, 0, 1)
        blur = linear_to_srgb(convolve_fft(srgb_to_linear(sharp), kernel))
        save_png(root / "blur" / f"{i:03d}.png", blur)
        save_png(root / "sharp" / f"{i:03d}.png", sharp)
        (root / "kernels").mkdir(parents=True, exist_ok=True)
        np.save(root / "kernels" / f"{i:03d}.npy", kernel.astype(np.float32))
        items.append({"index": i, "photo": f"p{i}", "kernel": f"kernels/{i:03d}.npy"})
    (root / "meta.json").write_text(json.dumps({"items": items}))


def test_harness_scores_a_perfect_and_a_declining_estimator(tmp_path, rng, monkeypatch):
    kernel = random_shake_kernel(9, 7.0, rng)
    _tiny_set(tmp_path / "sets" / "tiny", rng, kernel)
    fake = types.ModuleType("fake_estimators")
    fake.truth = lambda gray: kernel
    fake.never = lambda gray: None
    fake.box = lambda gray: np.full((3, 3), 1 / 9)

    class Reporting:  # an estimator that reports the scores of its last call, as the pipeline does
        scores: dict | None = None

        def __call__(self, gray):
            self.scores = {"mean": float(gray.mean())}
            return kernel

    fake.reporting = Reporting()
    monkeypatch.setitem(sys.modules, "fake_estimators", fake)
    out = tmp_path / "res" / "bench"

    assert blind_benchmark.main(["--testsets", str(tmp_path / "sets"), "--sets", "tiny", "--border", "6",
                                 "--estimators", "oracle=fake_estimators:truth", "none=fake_estimators:never",
                                 "box=fake_estimators:box", "reporting=fake_estimators:reporting", "--true-rows", "rl-saturated", "--rl-iterations", "5",
                                 "--restorers", "identity", "--out", str(out)]) == 0

    res = json.loads(out.with_suffix(".json").read_text())["sets"]["tiny"]
    rows = {s["row"]: s for s in res["summary"]}
    assert rows["oracle"]["ratio_median"] == pytest.approx(1.0, abs=1e-6)
    assert rows["oracle"]["success_2"] == 1.0 and rows["oracle"]["similarity"] == pytest.approx(1.0, abs=1e-6)
    assert rows["oracle"]["gain_aligned"] > 3.0
    assert rows["none"]["declined"] == 2 and rows["none"]["gain"] == pytest.approx(0.0, abs=1e-9)
    assert rows["none"]["ratio_median"] > 2.0 and rows["none"]["success_2"] == 0.0
    assert 1.0 < rows["box"]["ratio_median"] and rows["box"]["similarity"] < 0.9
    assert rows["true kernel"]["gain_aligned"] > 3.0 and rows["true kernel, rl-saturated"]["ratio_median"] > 0
    # A whole restorer is scored with the same protocol: "identity" returns the input.
    assert rows["restorer identity"]["gain"] == pytest.approx(0.0, abs=1e-6)
    assert rows["restorer identity"]["ratio_median"] == pytest.approx(rows["none"]["ratio_median"])
    image = res["per_image"][0]
    assert image["reach"] == 4 and image["border"] == 6
    assert image["estimators"]["oracle"]["psnr_aligned"] >= image["estimators"]["oracle"]["psnr"] - 1e-9
    assert "| oracle |" in out.with_suffix(".md").read_text()
    # Scores an estimator reports are kept per image; the others have none.
    assert image["estimators"]["reporting"]["scores"]["mean"] > 0 and "scores" not in image["estimators"]["oracle"]


def test_params_reach_the_restorers_kernel_stages(tmp_path, rng, monkeypatch):
    import deblurkit.infer

    _tiny_set(tmp_path / "sets" / "tiny", rng, random_shake_kernel(9, 7.0, rng))
    given = []

    def spy(name, **options):
        given.append((name, options.get("blind_params")))
        return real("identity")

    real = deblurkit.infer.load_restorer
    monkeypatch.setattr(deblurkit.infer, "load_restorer", spy)
    common = ["--testsets", str(tmp_path / "sets"), "--sets", "tiny", "--estimators", "--restorers", "default"]
    assert blind_benchmark.main([*common, "--params", "kernel_cut=0.1", "--out", str(tmp_path / "a")]) == 0
    assert blind_benchmark.main([*common, "--out", str(tmp_path / "b")]) == 0
    assert given[0][0] == "default" and given[0][1].kernel_cut == 0.1
    assert given[1] == ("default", None)  # no --params: the restorer's own settings


def test_pipeline_estimator_reports_the_tile_scores(rng):
    kernel = random_shake_kernel(9, 7.0, rng)
    gray = convolve_fft(rng.random((128, 128)).astype(np.float32), kernel)
    estimator = blind_benchmark.PipelineEstimator({"kernel_bridge": None})
    estimator(gray)
    assert {"overshoot", "connectedness", "bridged"} <= set(estimator.scores)


def test_pipeline_params_are_parsed_and_checked():
    from studies.blind_benchmark import parse_params

    assert parse_params(["agreement=0.8", "est_crop=384"]) == {"agreement": 0.8, "est_crop": 384}
    assert isinstance(parse_params(["est_crop=384"])["est_crop"], int)
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_params(["no_such_setting=1"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_params(["agreement"])
    assert parse_params(["kernel_bridge=none", "region_agreement=None"]) == {"kernel_bridge": None,
                                                                            "region_agreement": None}
    with pytest.raises(SystemExit, match="not a number"):
        parse_params(["est_crop=none"])  # a setting that cannot be off


def test_a_set_blurred_on_encoded_values_is_deconvolved_there(tmp_path, rng, monkeypatch):
    """The true kernel of a set whose ``meta.json`` says ``blur_space: srgb`` is deconvolved on the
    encoded values; a pipeline kernel reported for the encoded values is deconvolved there too,
    and the row says so."""
    import cv2

    kernel = random_shake_kernel(9, 7.0, rng)
    root = tmp_path / "sets" / "enc"
    items = []
    for i in range(2):
        sharp = np.clip(cv2.GaussianBlur(rng.random((96, 96, 3)).astype(np.float32), (0, 0), 1.5) * 1.6 - 0.3, 0, 1)
        save_png(root / "blur" / f"{i:03d}.png", convolve_fft(sharp, kernel))
        save_png(root / "sharp" / f"{i:03d}.png", sharp)
        (root / "kernels").mkdir(parents=True, exist_ok=True)
        np.save(root / "kernels" / f"{i:03d}.npy", kernel.astype(np.float32))
        items.append({"index": i, "photo": f"p{i}", "kernel": f"kernels/{i:03d}.npy"})

    def run(blur_space: str, name: str) -> dict:
        (root / "meta.json").write_text(json.dumps({"config": {"blur_space": blur_space}, "items": items}))
        out = tmp_path / name
        assert blind_benchmark.main(["--testsets", str(tmp_path / "sets"), "--sets", "enc", "--border", "6",
                                     "--estimators", "pipeline", "--out", str(out)]) == 0
        return json.loads(out.with_suffix(".json").read_text())["sets"]["enc"]

    def truth_on_encoded_values(self, blur_srgb):
        self.blur_space, self.scores = "srgb", {"scale": 2.0}
        return kernel

    monkeypatch.setattr(blind_benchmark.PipelineEstimator, "from_srgb", truth_on_encoded_values)
    encoded, linear = run("srgb", "a"), run("linear", "b")
    rows = {s["row"]: s for s in encoded["summary"]}
    assert rows["true kernel"]["gain_aligned"] > 3.0
    assert rows["pipeline"]["ratio_median"] == pytest.approx(1.0, abs=1e-6)
    assert encoded["per_image"][0]["estimators"]["pipeline"]["blur_space"] == "srgb"
    # The same kernel on the same values: the same result; against a linear-light true kernel, not.
    image, other = encoded["per_image"][0], linear["per_image"][0]
    assert image["true"]["psnr_aligned"] == pytest.approx(image["estimators"]["pipeline"]["psnr_aligned"])
    assert abs(other["true"]["psnr_aligned"] - other["estimators"]["pipeline"]["psnr_aligned"]) > 0.1
