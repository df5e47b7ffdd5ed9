"""The kernel-step variants study: its loop is the library's, and its valid-pixel kernel step is exact."""

from __future__ import annotations

import json

import numpy as np

from deblurkit.synth.trajectory import random_shake_kernel
from studies import kernel_step_variants as ksv
from tests.studies.test_blind_benchmark import _tiny_set


def test_the_valid_kernel_step_recovers_a_kernel_whose_blur_does_not_wrap(rng):
    """Blur made with the true image beyond the borders: the valid pixels still obey the model
    exactly, so the valid kernel step finds the kernel, where the wrapped step is off."""
    import cv2
    from scipy.signal import fftconvolve

    from deblurkit.kernel_aware.estimation import forward_gradients, kernel_least_squares

    kernel = random_shake_kernel(9, 7.0, rng).astype(np.float64)
    big = cv2.GaussianBlur(rng.random((160, 160)).astype(np.float32), (0, 0), 1.2).astype(np.float64)
    blur = fftconvolve(big, kernel, mode="same")[16:-16, 16:-16]
    sharp = big[16:-16, 16:-16]
    lx, ly = forward_gradients(sharp)
    flat = np.full_like(kernel, 1.0 / kernel.size)
    valid = ksv.valid_least_squares(lx, ly, blur, 9, 1e-6, flat, cg_iters=300)
    wrapped = kernel_least_squares(lx, ly, blur, 9, 1e-6, flat, cg_iters=300)
    assert np.abs(valid - kernel).max() < 0.02 * kernel.max()
    assert np.abs(valid - kernel).sum() < 0.5 * np.abs(wrapped - kernel).sum()


def test_the_study_runs_the_shipped_loop_exactly_and_scores_every_variant(tmp_path, rng):
    kernel = random_shake_kernel(9, 7.0, rng)
    _tiny_set(tmp_path / "sets" / "tiny", rng, kernel)
    out = tmp_path / "res" / "variants"

    assert ksv.main(["--testsets", str(tmp_path / "sets"), "--sets", "tiny", "--workers", "1",
                     "--out", str(out)]) == 0

    result = json.loads(out.with_suffix(".json").read_text())["sets"]["tiny"]
    assert result["shipped_difference"] == 0.0  # the written-out loop is the library's estimator
    assert set(result["summary"]) == {*ksv.VARIANTS, "true kernel"}
    for row in result["per_image"]:
        assert row["rows"]["true kernel"]["similarity"] > 0.999
        assert all(0.0 <= r["similarity"] <= 1.0 + 1e-9 for r in row["rows"].values())
    md = out.with_suffix(".md").read_text()
    assert "### tiny (2 images)" in md and "| latent upsampling |" in md


def test_the_r_map_is_high_on_a_straight_edge_and_low_on_fine_texture(rng):
    edge = np.zeros((40, 40), np.float32)
    edge[:, 20:] = 1.0
    texture = rng.random((40, 40)).astype(np.float32)
    assert ksv.r_map(edge)[20, 19] > 0.9
    assert np.median(ksv.r_map(texture)) < 0.5
