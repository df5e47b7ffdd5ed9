"""Rules give one reason per failed threshold; the classifier learns, saves and loads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deblurkit.curate.classifier import QualityClassifier, train_logistic
from deblurkit.curate.rules import CurationRules, decide
from deblurkit.errors import DeblurkitError

GOOD = {"width": 800, "height": 600, "sharpness": 0.8, "textured_fraction": 0.7, "noise_sigma": 0.002,
        "blockiness": 1.02, "clipped_high": 0.01, "clipped_low": 0.0, "brisque": 20.0, "face_confidence": 0.0}


def test_good_record_passes_and_each_failure_names_its_reason():
    rules = CurationRules()
    assert decide(GOOD, rules) == []
    cases = {
        "height": (100, "too small"), "sharpness": (0.05, "blurred"), "noise_sigma": (0.05, "noisy"),
        "blockiness": (1.6, "JPEG blocking"), "clipped_high": (0.5, "clipped highlights"),
        "clipped_low": (0.5, "crushed shadows"), "face_confidence": (0.95, "face detected"),
        "textured_fraction": (0.0, "too flat"),
    }
    for key, (value, word) in cases.items():
        reasons = decide({**GOOD, key: value}, rules)
        assert len(reasons) == 1 and reasons[0].startswith(word), (key, reasons)


def test_missing_or_nan_scores_are_not_checked_and_options_switch_checks():
    assert decide({"width": 800, "height": 600}, CurationRules()) == []
    assert decide({**GOOD, "noise_sigma": float("nan")}, CurationRules()) == []
    assert decide({**GOOD, "sharpness": None}, CurationRules())[0].startswith("too flat")
    blurred_out = decide({**GOOD, "sharpness": None, "textured_fraction": 0.0, "contrast": 0.2}, CurationRules())
    assert blurred_out[0].startswith("blurred (no fine detail")
    assert decide({**GOOD, "face_confidence": 0.99}, CurationRules(reject_faces=False)) == []
    assert decide({**GOOD, "brisque": 80.0}, CurationRules(max_brisque=50.0))[0].startswith("low BRISQUE")


def _records(rng, n):
    good = [{**GOOD, "sharpness": float(rng.uniform(0.5, 1.2)), "noise_sigma": float(rng.uniform(0.001, 0.004))}
            for _ in range(n)]
    bad = [{**GOOD, "sharpness": float(rng.uniform(0.02, 0.3)), "noise_sigma": float(rng.uniform(0.001, 0.004))}
           for _ in range(n)]
    return good + bad, [1] * n + [0] * n


def test_classifier_learns_separates_and_roundtrips(tmp_path, rng):
    x, y = _records(rng, 40)
    clf = train_logistic(x, y, features=("sharpness", "noise_sigma"), info={"note": "test"})
    xt, yt = _records(rng, 20)
    p = np.array([clf.probability(r) for r in xt])
    assert ((p >= 0.5) == (np.array(yt) == 1)).mean() > 0.95
    assert clf.probability({}) == pytest.approx(1 / (1 + np.exp(-clf.intercept)))  # missing -> training mean
    clf.save(tmp_path / "m.json")
    back = QualityClassifier.load(tmp_path / "m.json")
    assert back == clf and back.info == {"note": "test"}


def test_classifier_load_rejects_bad_files(tmp_path):
    with pytest.raises(DeblurkitError, match="not a curation classifier"):
        QualityClassifier.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"features": ["a", "b"], "mean": [0], "scale": [1], "coef": [1], "intercept": 0}))
    with pytest.raises(DeblurkitError, match="lengths differ"):
        QualityClassifier.load(bad)
