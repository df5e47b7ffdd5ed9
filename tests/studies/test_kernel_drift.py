"""The kernel-drift study on a tiny synthetic set: every arm is tracked from the true kernel."""

from __future__ import annotations

import json

import numpy as np

from deblurkit.synth.trajectory import random_shake_kernel
from studies import kernel_drift
from tests.studies.test_blind_benchmark import _tiny_set


def test_drift_tracks_every_arm_from_the_truth_and_writes_its_tables(tmp_path, rng):
    kernel = random_shake_kernel(9, 7.0, rng)
    _tiny_set(tmp_path / "sets" / "tiny", rng, kernel)
    out = tmp_path / "res" / "drift"

    assert kernel_drift.main(["--testsets", str(tmp_path / "sets"), "--sets", "tiny", "--steps", "2",
                              "--out", str(out)]) == 0

    rows = json.loads(out.with_suffix(".json").read_text())["sets"]["tiny"]
    assert len(rows) == 2 and rows[0]["window"] == 13
    for row in rows:
        assert set(row["arms"]) == {"0.0001/edges", "0.0001/all", "0.001/edges", "0.001/all"}
        track = np.array(row["arms"]["0.0001/all"])
        assert track.shape == (2, 2)
        assert track[0, 0] > 0.8  # one step from the truth on a clean blur stays near it
        assert 0.0 <= row["from_scratch"][0] <= 1.0 + 1e-9
    md = out.with_suffix(".md").read_text()
    assert "### tiny (2 pairs)" in md and "coarse-to-fine estimator" in md
