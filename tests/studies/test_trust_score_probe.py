"""The probe's two scores rank a wrong kernel above the one that made the blur."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve

from deblurkit.synth.trajectory import random_shake_kernel
from studies.trust_score_probe import local_ringing, spectral_residue


@pytest.fixture(scope="module")
def case():
    import cv2
    from skimage import data

    sharp = cv2.resize(data.camera(), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    sharp = 0.2 + 0.4 * sharp**2.2  # linear light, dim: no deconvolution below leaves [0, 1]
    rng = np.random.default_rng(3)
    kernel = random_shake_kernel(21, 15.0, rng)
    blur = convolve(sharp, kernel, mode="reflect") + rng.normal(0, 0.002, sharp.shape)
    return sharp.astype(np.float32), blur.astype(np.float32), kernel


def test_local_ringing_is_higher_for_a_kernel_that_echoes(case):
    _, blur, kernel = case
    echo = 0.5 * kernel + 0.5 * np.roll(kernel, 8, axis=1)  # the shake drawn twice, 8 px apart
    assert local_ringing(blur, kernel) < 0.4 < local_ringing(blur, echo)
    delta = np.zeros((21, 21))
    delta[10, 10] = 1.0
    assert local_ringing(blur, delta) == 0.0  # the blurry photo itself stays within its range


def test_spectral_residue_is_higher_for_a_kernel_that_did_not_make_the_blur(case):
    sharp, blur, kernel = case
    line = np.zeros((21, 21))
    line[10, :] = 1.0 / 21  # removes horizontal detail this blur kept
    right = spectral_residue(blur, kernel)
    assert right < 10.0
    assert spectral_residue(blur, line) > 10 * right
    assert spectral_residue(sharp, kernel) > 10 * right  # the sharp photo has the detail the kernel removes
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    assert spectral_residue(blur, delta) == 0.0
