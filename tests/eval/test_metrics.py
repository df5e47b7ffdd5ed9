"""Metrics agree with scikit-image; the RealBlur protocol undoes a known homography."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deblurkit.errors import DeblurkitError
from deblurkit.eval.metrics import psnr, psnr_torch, ssim, ssim_torch
from deblurkit.eval.realblur import realblur_psnr_ssim


def _photo(size: int = 96) -> np.ndarray:
    img = skdata.astronaut()[100 : 100 + size, 150 : 150 + size].astype(np.float32) / 255.0
    return np.ascontiguousarray(img)


def _degraded(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    out = cv2.GaussianBlur(img, (0, 0), 1.2) + rng.normal(0, 0.03, img.shape).astype(np.float32)
    return np.clip(out, 0, 1).astype(np.float32)


@pytest.mark.parametrize("data_range", [1.0, 2.0])
def test_psnr_matches_skimage(rng, data_range):
    a = _photo()
    b = _degraded(a, rng)
    ours = psnr(a, b, data_range=data_range)
    ref = peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64), data_range=data_range)
    assert ours == pytest.approx(ref, abs=1e-9)
    assert math.isinf(psnr(a, a, data_range=1.0))


@pytest.mark.parametrize("shape", [(96, 96, 3), (40, 57, 3), (33, 41)])
def test_ssim_matches_skimage(rng, shape):
    a = rng.random(shape).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    kw = {"channel_axis": -1} if len(shape) == 3 else {}
    ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, **kw)
    assert ssim(a, b, data_range=1.0) == pytest.approx(ref, abs=1e-6)


def test_ssim_matches_skimage_on_photo(rng):
    a = _photo()
    b = _degraded(a, rng)
    ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, channel_axis=-1)
    assert ssim(a, b, data_range=1.0) == pytest.approx(ref, abs=1e-6)
    assert ssim(a, a, data_range=1.0) == pytest.approx(1.0)


def test_torch_metrics_match_numpy(rng):
    import torch

    a = np.stack([_photo(), _photo()[::-1].copy()])
    b = np.stack([_degraded(x, rng) for x in a])
    ta = torch.from_numpy(a).permute(0, 3, 1, 2).float()
    tb = torch.from_numpy(b).permute(0, 3, 1, 2).float()
    p = psnr_torch(ta, tb, data_range=1.0)
    s = ssim_torch(ta, tb, data_range=1.0)
    for i in range(2):
        assert float(p[i]) == pytest.approx(psnr(a[i], b[i], data_range=1.0), abs=1e-4)
        assert float(s[i]) == pytest.approx(ssim(a[i], b[i], data_range=1.0), abs=1e-4)


def test_metrics_reject_shape_mismatch():
    with pytest.raises(DeblurkitError, match="shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), data_range=1.0)
    with pytest.raises(DeblurkitError, match="shape"):
        ssim(np.zeros((20, 20, 3)), np.zeros((20, 21, 3)), data_range=1.0)


@pytest.mark.parametrize(
    "homography",
    [
        [[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]],  # translation
        [[1.0, 0.004, 1.7], [-0.003, 1.0, -1.2], [5e-6, 0.0, 1.0]],  # shear + perspective + subpixel shift
    ],
)
def test_realblur_protocol_undoes_known_homography(homography):
    import cv2

    # A "scene" larger than the frame, so the shifted output has real content at its borders (as a
    # misaligned camera would), and a realistic restoration (about 30 dB, like RealBlur results).
    scene = skdata.astronaut()[:288, :288].astype(np.float32) / 255.0
    restored_scene = cv2.GaussianBlur(scene, (0, 0), 1.0)
    H = np.array(homography, dtype=np.float64)
    shifted_scene = cv2.warpPerspective(restored_scene, H, (288, 288), flags=cv2.INTER_CUBIC,
                                        borderMode=cv2.BORDER_REFLECT)
    crop = np.s_[16:-16, 16:-16]
    gt, output = scene[crop].copy(), restored_scene[crop].copy()
    shifted = np.clip(shifted_scene[crop], 0, 1).copy()

    base = realblur_psnr_ssim(output, gt)
    moved = realblur_psnr_ssim(shifted, gt)
    assert base.aligned and moved.aligned
    assert 27 < base.psnr < 33
    assert abs(moved.psnr - base.psnr) < 0.1
    assert abs(moved.ssim - base.ssim) < 0.005
    np.testing.assert_allclose(moved.warp[:2, 2], H[:2, 2], atol=0.1)  # ECC found the shift
    # without alignment the shift costs several dB: the protocol is doing real work
    assert psnr(shifted, gt, data_range=1.0) < base.psnr - 3.0


def test_realblur_intensity_matching_and_identity(rng):
    gt = _photo(128)
    perfect = realblur_psnr_ssim(gt, gt, quantize_8bit=False)
    assert perfect.psnr > 60 and perfect.ssim == pytest.approx(1.0, abs=1e-4)
    darker = realblur_psnr_ssim(0.8 * gt, gt, quantize_8bit=False)
    assert darker.psnr > 50  # a global gain is matched before scoring


def test_realblur_ecc_failure_is_graceful():
    flat = np.full((48, 48, 3), 0.5, np.float32)
    score = realblur_psnr_ssim(flat, flat)
    assert not score.aligned  # ECC cannot align featureless images; identity warp is used
    assert np.isfinite(score.ssim)
