"""Blind kernel estimation recovers a known shake kernel from a synthetic blur."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv
from deblurkit.kernel_aware.estimation import (
    center_kernel,
    estimate_kernel,
    estimate_kernel_candidates,
    kernel_extent,
    prune_kernel,
)
from deblurkit.kernel_aware.kernels import kernel_similarity
from deblurkit.synth.trajectory import random_shake_kernel


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


@pytest.fixture(scope="module")
def case():
    import cv2
    from skimage import data

    sharp = cv2.resize(data.camera(), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    sharp = sharp ** 2.2  # linear light
    rng = np.random.default_rng(3)
    k_true = random_shake_kernel(21, 15.0, rng)
    blur = convolve(sharp, k_true, mode="reflect") + rng.normal(0, 0.002, sharp.shape)
    return sharp, blur.astype(np.float32), k_true


@pytest.fixture(scope="module")
def candidates(case):
    _, blur, _ = case
    return estimate_kernel_candidates(blur / np.percentile(blur, 99.5))


def test_recovers_known_kernel_with_given_size(case) -> None:
    sharp, blur, k_true = case
    k = estimate_kernel(blur, kernel_size=21)
    assert k.shape == (21, 21) and k.dtype == np.float32
    assert abs(float(k.sum()) - 1.0) < 1e-5 and k.min() >= 0
    assert kernel_similarity(k, k_true) > 0.85
    delta = np.zeros((21, 21))
    delta[10, 10] = 1
    assert kernel_similarity(k, k_true) > kernel_similarity(delta, k_true) + 0.3
    gain = _psnr(hyper_laplacian_deconv(blur, k), sharp) - _psnr(blur, sharp)
    assert gain > 3.0


def test_size_found_per_image_and_candidates_agree(case, candidates) -> None:
    _, _, k_true = case
    assert [c.setting for c in candidates] == ["default", "no-isd"]
    for c in candidates:
        k = c.kernel
        assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        # the support found is the blur's extent, not the largest size allowed
        assert abs(k.shape[0] - kernel_extent(k_true)) <= 6
        assert kernel_similarity(k, k_true) > 0.8
        assert c.latent is not None and c.latent.ndim == 2
    assert kernel_similarity(candidates[0].kernel, candidates[1].kernel) > 0.8


def test_sharp_image_gives_compact_kernel(case) -> None:
    sharp, _, _ = case
    k = estimate_kernel(sharp.astype(np.float32), kernel_size=15)
    # effective support (inverse participation) of a near-delta kernel is a few pixels
    assert 1.0 / float((k.astype(np.float64) ** 2).sum()) < 6.0


def test_prune_drops_faint_values_and_weak_components() -> None:
    k = np.zeros((9, 9))
    k[4, 2:7] = 1.0  # main stroke
    k[4, 7] = 0.04  # below 0.05 max: cut
    k[0, 0] = 0.3  # isolated speck with 0.3 / 5.3 < 10 % of the mass: removed
    k[2, 2] = -0.5  # negative: clipped
    out = prune_kernel(k)
    assert out.sum() == pytest.approx(1.0)
    assert np.count_nonzero(out) == 5 and out[4, 2:7].min() > 0
    # a strong second component is kept
    k[0, 0] = 2.0
    assert prune_kernel(k)[0, 0] > 0


def test_center_kernel_is_subpixel() -> None:
    k = np.zeros((11, 11))
    k[3, 3] = 0.7
    k[3, 4] = 0.3  # centroid (3, 3.3): 2 px and 1.7 px off centre
    out = center_kernel(k)
    yy, xx = np.mgrid[:11, :11]
    assert out.sum() == pytest.approx(1.0) and out.min() >= 0
    assert abs((out * yy).sum() - 5) < 0.05 and abs((out * xx).sum() - 5) < 0.05


def test_kernel_extent() -> None:
    k = np.zeros((21, 21))
    k[10, 7:14] = 1.0
    assert kernel_extent(k) == 7


def test_errors() -> None:
    with pytest.raises(DeblurkitError, match="2-D"):
        estimate_kernel(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(DeblurkitError, match="too small"):
        estimate_kernel(np.zeros((20, 20), np.float32), kernel_size=31)
    with pytest.raises(DeblurkitError, match="NaN"):
        estimate_kernel(np.full((64, 64), np.nan, np.float32))
