"""Learned reference policy: semantics, persistence, one REINFORCE step."""

from __future__ import annotations

import numpy as np
import pytest

from deblurkit.highlights import video as hv
from deblurkit.highlights.camera import CameraConfig
from deblurkit.highlights.online import StepFeatures, restore_copy
from deblurkit.highlights.policy import LogisticPolicy, load_policy, save_policy, train_reference_policy


def _feats(newly: float, has_ref: bool = True) -> StepFeatures:
    return StepFeatures(5, newly, 0.0, 3, 0.9, 0.02, has_ref)


def test_greedy_decision_follows_the_weights_and_first_frame_always_becomes_reference():
    pol = LogisticPolicy((10.0, 0.0, 0.0, 0.0, 0.0), -1.0)
    assert pol(_feats(0.2)) and not pol(_feats(0.0))
    assert pol.probability(_feats(0.0, has_ref=False)) == 1.0


def test_save_load_round_trip_and_bad_file(tmp_path):
    from deblurkit.errors import DeblurkitError

    pol = LogisticPolicy((0.1, -0.2, 0.3, 0.4, -0.5), 0.25)
    save_policy(pol, tmp_path / "p.json", note="x")
    assert load_policy(tmp_path / "p.json") == pol
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DeblurkitError):
        load_policy(tmp_path / "bad.json")


def test_the_shipped_policy_loads_by_name_and_prefers_a_darker_less_clipped_frame():
    from deblurkit.highlights.policy import BUNDLED_POLICY, bundled_policy_path

    pol = load_policy(BUNDLED_POLICY)
    assert pol == load_policy(bundled_policy_path())
    # StepFeatures(index, newly well exposed, log2 ratio now / reference, age, confidence, clipped fraction, ...)
    darker_less_clipped = StepFeatures(5, 0.05, -1.0, 5, 1.0, 0.01, True)
    brighter_more_clipped = StepFeatures(5, 0.0, 1.0, 5, 1.0, 0.2, True)
    assert pol.probability(darker_less_clipped) > 0.5 > pol.probability(brighter_more_clipped)


def test_reinforce_iteration_runs_and_moves_the_weights():
    rng = np.random.default_rng(0)
    pano = rng.uniform(0.02, 0.6, (64, 128, 3)).astype(np.float32)
    pano[28:36, ::16] = 20.0
    cfg = hv.VideoConfig(height=32, width=48, frames=6, hfov_deg=70.0, motion_blur=False,
                         auto_exposure=hv.AUTO_EXPOSURE_PRESETS["oscillating"], camera=CameraConfig(noise_model="none"))
    clip = list(hv.generate_video(pano, cfg, rng))
    pol, history = train_reference_policy([clip], restore_copy, iterations=1, rollouts=2, rng=rng, log=False)
    assert len(history) == 1 and np.isfinite(history[0])
    assert pol != LogisticPolicy((0.0,) * 5, 0.0)
