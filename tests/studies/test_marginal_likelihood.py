"""The marginal-likelihood kernel study: its operators, its kernel step and its tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import fftconvolve

from deblurkit.kernel_aware.kernels import kernel_similarity
from deblurkit.synth.trajectory import random_shake_kernel
from studies import marginal_likelihood as ml
from tests.studies.test_blind_benchmark import _tiny_set


def test_valid_convolution_and_its_adjoint(rng):
    kernel = rng.random((5, 3))
    op = ml._ValidConvolution(kernel, (20, 17))
    x, y = rng.standard_normal((20, 17)), rng.standard_normal((16, 15))
    np.testing.assert_allclose(op.forward(x), fftconvolve(x, kernel, mode="valid"), atol=1e-10)
    assert np.isclose((op.forward(x) * y).sum(), (x * op.adjoint(y)).sum())


def test_kernel_step_recovers_the_kernel_from_the_sharp_gradients(rng):
    import cv2

    kernel = random_shake_kernel(11, 8.0, rng)
    sharp = cv2.GaussianBlur(rng.random((90, 90)), (0, 0), 1.2)
    xs = ml._derivatives(sharp)
    ys = [fftconvolve(x, kernel, mode="valid") for x in xs]
    k = ml.kernel_from_moments(xs, [np.zeros_like(x) for x in xs], ys, kernel.shape, sparsity=1e-6)
    assert k.shape == kernel.shape and k.min() >= 0 and np.isclose(k.sum(), 1.0)
    assert kernel_similarity(k, kernel) > 0.97
    # the latent variances add to the normal matrix's diagonal: large ones spread the kernel
    spread = ml.kernel_from_moments(xs, [np.full_like(x, 1.0) for x in xs], ys, kernel.shape, sparsity=1e-6)
    assert (spread ** 2).sum() < (k ** 2).sum()


def test_latent_moments_shapes_and_a_delta_kernel_returns_the_data(rng):
    y = rng.standard_normal((30, 40)) * 0.1
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    mean, var = ml.latent_moments(y, delta, noise=1e-3, cg_iterations=50)
    assert mean.shape == var.shape == (34, 44)
    assert (var > 0).all()
    np.testing.assert_allclose(mean[2:-2, 2:-2], y, atol=2e-3)


def test_free_energy_prefers_the_true_kernel_to_wider_ones(rng):
    import cv2

    kernel = random_shake_kernel(11, 8.0, rng)
    sharp = np.clip(cv2.GaussianBlur(rng.random((120, 120)), (0, 0), 1.5) * 1.6 - 0.3, 0, 1)
    blur = fftconvolve(sharp, kernel, mode="same") + rng.normal(0.0, 0.005, sharp.shape)
    true = ml.free_energy(blur, kernel, size=23)
    assert true < ml.free_energy(blur, np.ones((11, 11)), size=23)
    assert true < ml.free_energy(blur, cv2.resize(kernel, (21, 21)), size=23)
    with pytest.raises(ValueError, match="larger than the common window"):
        ml.free_energy(blur, kernel, size=9)


def test_study_tracks_the_three_starts_and_writes_its_tables(tmp_path, rng):
    kernel = random_shake_kernel(9, 7.0, rng)
    _tiny_set(tmp_path / "sets" / "tiny", rng, kernel)
    out = tmp_path / "res" / "ml"

    assert ml.main(["--testsets", str(tmp_path / "sets"), "--sets", "tiny", "--steps", "2",
                    "--kernel-size", "11", "--out", str(out)]) == 0

    rows = json.loads(out.with_suffix(".json").read_text())["sets"]["tiny"]
    assert len(rows) == 2 and rows[0]["window"] == 13
    for row in rows:
        assert np.array(row["from_truth"]).shape == (2, 2)
        assert row["from_truth"][0][0] > 0.8  # one step from the truth on a clean blur stays near it
        assert row["from_sharp"][0] > 0.85  # 8-bit sRGB pairs of 96 px
        assert 0.0 <= row["from_scratch"][0] <= 1.0 + 1e-9
    md = out.with_suffix(".md").read_text()
    assert "### tiny (2 pairs)" in md and "coarse-to-fine, 11-px window" in md
