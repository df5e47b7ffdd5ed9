"""studies/curation_filters.py: degradations of known strength and threshold tuning."""

from __future__ import annotations

import importlib

import numpy as np
import pytest


@pytest.fixture(scope="module")
def cf():
    return importlib.import_module("studies.curation_filters")


def test_tune_threshold_separates_clean_from_positives_only(cf):
    recs = [{"kind": "clean", "strength": 0.0, "sharpness": v} for v in (0.8, 0.9, 1.0)]
    recs += [{"kind": "blur", "strength": 8.0, "sharpness": v} for v in (0.1, 0.2)]
    recs += [{"kind": "blur", "strength": 2.0, "sharpness": 0.95}]  # below the cutoff: ignored
    threshold, bacc = cf.tune_threshold(recs, "blur")
    assert bacc == 1.0 and 0.2 < threshold <= 0.8  # reject below it: every positive, no clean photo


def test_degradations_have_the_asked_strength(cf, rng):
    from deblurkit.curate import scores
    from deblurkit.synth.sources import DeadLeavesSource

    img, _ = DeadLeavesSource(light_sources=(0, 0)).random_crop(128, rng)
    for kind, strength in (("blur", 8), ("noise", 8e-3), ("jpeg", 20)):
        out = cf.degrade_srgb(img, kind, strength, seed=0)
        assert out.shape == img.shape and out.dtype == np.float32
        assert np.array_equal(out, cf.degrade_srgb(img, kind, strength, seed=0))  # seeded
    assert scores.sharpness_srgb(cf.degrade_srgb(img, "blur", 8, 0))["sharpness"] < scores.sharpness_srgb(img)["sharpness"]
    assert scores.noise_sigma_srgb(cf.degrade_srgb(img, "noise", 8e-3, 0)) > scores.noise_sigma_srgb(img) + 0.01
    assert scores.blockiness_srgb(cf.degrade_srgb(img, "jpeg", 20, 0)) > 1.1
