"""The shared-shake study: scenes grouped by shake, pairwise agreement, declines, the kernel grid."""

from __future__ import annotations

import json
import sys
import types

import numpy as np

from deblurkit.io import load_image_rgb, save_png
from studies import shared_shake


def _line(length: int, size: int = 15) -> np.ndarray:
    k = np.zeros((size, size), np.float32)
    k[size // 2, size // 2 - length // 2: size // 2 - length // 2 + length] = 1.0 / length
    return k


def test_agreement_of_shakes_and_declines(tmp_path, rng, monkeypatch):
    data = tmp_path / "koehler"
    for scene in (1, 2, 3):
        for shake in (1, 2):
            save_png(data / f"Blurry{scene}_{shake}.png", rng.random((80, 80, 3)).astype(np.float32))
    save_png(data / "notes.png", np.zeros((8, 8, 3), np.float32))  # not a Blurry{scene}_{shake} photo
    fake = types.ModuleType("fake_shake_estimators")
    lengths = iter([5, 5, 9, 7, 7, None])  # calls go shake by shake, scene by scene; None: declined

    def estimate(gray: np.ndarray) -> np.ndarray | None:
        assert gray.shape == (60, 60)  # the centred crop
        length = next(lengths)
        return None if length is None else _line(length)

    fake.line = estimate
    monkeypatch.setitem(sys.modules, "fake_shake_estimators", fake)
    figure = tmp_path / "grid.png"
    out = tmp_path / "res"
    assert shared_shake.main(["--data", str(data), "--crop", "60", "--estimators", "line=fake_shake_estimators:line",
                              "--kernel-side", "30", "--figure", str(figure), "--out", str(out)]) == 0

    res = json.loads(out.with_suffix(".json").read_text())
    one = res["per_shake"]["line"]["1"]
    assert np.isclose(one["pairs"]["1-2"], 1.0) and one["pairs"]["1-3"] < 0.9 and one["extent_px"] == {"1": 5, "2": 5, "3": 9}
    summary = res["summary"]["line"]
    assert res["per_shake"]["line"]["2"]["declined"] == [3]
    assert summary["n_pairs"] == 3 + 1 and summary["images"] == 6 and summary["declined"] == 1
    assert np.isclose(summary["mean_similarity"], np.mean([one["mean"], res["per_shake"]["line"]["2"]["mean"]]))
    assert load_image_rgb(figure).shape == (2 * 30 + 4, 3 * 30 + 2 * 4, 3)


def test_declined_scene_is_left_out_of_the_pairs():
    found = {1: _line(5), 2: None, 3: _line(5)}
    entry = shared_shake.agreement(found)
    assert entry["declined"] == [2] and list(entry["pairs"]) == ["1-3"] and np.isclose(entry["mean"], 1.0)


def test_missing_folder_is_one_line(tmp_path, capsys):
    assert shared_shake.main(["--data", str(tmp_path / "none"), "--figure", "", "--out", str(tmp_path / "r")]) == 2
    assert "no such folder" in capsys.readouterr().err
