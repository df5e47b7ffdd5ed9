"""Blind kernel estimation recovers a known shake kernel from a synthetic blur."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv
from deblurkit.kernel_aware.estimation import (
    center_kernel,
    clean_kernel,
    estimate_kernel,
    kernel_pyramid_sizes,
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


def test_recovers_known_kernel(case) -> None:
    sharp, blur, k_true = case
    k = estimate_kernel(blur, kernel_size=21)
    assert k.shape == (21, 21) and k.dtype == np.float32
    assert abs(float(k.sum()) - 1.0) < 1e-5 and k.min() >= 0
    assert kernel_similarity(k, k_true) > 0.8
    delta = np.zeros((21, 21))
    delta[10, 10] = 1
    assert kernel_similarity(k, k_true) > kernel_similarity(delta, k_true) + 0.3
    gain = _psnr(hyper_laplacian_deconv(blur, k), sharp) - _psnr(blur, sharp)
    assert gain > 3.0


def test_sharp_image_gives_compact_kernel(case) -> None:
    sharp, _, _ = case
    k = estimate_kernel(sharp.astype(np.float32), kernel_size=15)
    # effective support (inverse participation) of a near-delta kernel is a few pixels
    assert 1.0 / float((k.astype(np.float64) ** 2).sum()) < 6.0


def test_clean_and_center_kernel() -> None:
    k = np.zeros((9, 9))
    k[1, 1:4] = 1.0  # main stroke, off centre
    k[8, 8] = 0.05  # weak isolated speck
    out = center_kernel(clean_kernel(k))
    assert out[8, 8] == 0 or out.sum() == pytest.approx(1.0)
    assert out.sum() == pytest.approx(1.0)
    yy, xx = np.mgrid[:9, :9]
    assert abs((out * yy).sum() - 4) <= 0.5 and abs((out * xx).sum() - 4) <= 0.5
    assert np.count_nonzero(out) == 3


def test_pyramid_sizes_are_odd_and_increasing() -> None:
    sizes = kernel_pyramid_sizes(31)
    assert sizes[-1] == 31 and sizes[0] >= 5
    assert all(s % 2 == 1 for s in sizes) and sizes == sorted(sizes)


def test_errors() -> None:
    with pytest.raises(DeblurkitError, match="2-D"):
        estimate_kernel(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(DeblurkitError, match="too small"):
        estimate_kernel(np.zeros((20, 20), np.float32), kernel_size=31)
