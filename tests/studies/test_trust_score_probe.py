"""The probe's local ringing ranks a wrong kernel above the one that made the blur (the spectral
residue is tested with the library, tests/kernel_aware/test_decision.py)."""

from __future__ import annotations

import numpy as np
import pytest

from studies.trust_score_probe import local_ringing


@pytest.fixture(scope="module")
def case(camera_shake):
    return camera_shake


def test_local_ringing_is_higher_for_a_kernel_that_echoes(case):
    _, blur, kernel = case
    echo = 0.5 * kernel + 0.5 * np.roll(kernel, 8, axis=1)  # the shake drawn twice, 8 px apart
    assert local_ringing(blur, kernel) < 0.4 < local_ringing(blur, echo)
    delta = np.zeros((21, 21))
    delta[10, 10] = 1.0
    assert local_ringing(blur, delta) == 0.0  # the blurry photo itself stays within its range
