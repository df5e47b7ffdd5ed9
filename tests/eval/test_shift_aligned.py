"""Shift-aligned PSNR (Levin et al.'s comp_upto_shift protocol): shifts within reach are undone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deblurkit.errors import DeblurkitError
from deblurkit.eval.metrics import align_upto_shift, psnr, psnr_shift_aligned


def _smooth(rng: np.random.Generator, shape: tuple[int, ...], sigma: float = 2.5) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(rng.random(shape), (0, 0), sigma)


def _subpixel_shift(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``out(y, x) = img(y - dy, x - dx)`` by Fourier phase (exact for band-limited content)."""
    h, w = img.shape[:2]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    phase = np.exp(-2j * np.pi * (fy * dy + fx * dx))
    if img.ndim == 3:
        phase = phase[..., None]
    return np.real(np.fft.ifft2(np.fft.fft2(img, axes=(0, 1)) * phase, axes=(0, 1)))


def test_integer_shift_scores_as_unshifted(rng):
    ref = _smooth(rng, (90, 100, 3))
    est = np.clip(ref + rng.normal(0, 0.02, ref.shape), 0, 1)
    moved = np.roll(est, (4, -3), axis=(0, 1))
    aligned = psnr_shift_aligned(moved, ref, data_range=1.0, max_shift=6)
    assert aligned == pytest.approx(psnr_shift_aligned(est, ref, data_range=1.0, max_shift=6), abs=1e-9)
    # Noise-free, the shift is found exactly; with noise, within half a pixel (bilinear
    # interpolation at a half-pixel shift averages the noise, which the search may prefer).
    res = align_upto_shift(np.roll(ref, (4, -3), axis=(0, 1)), ref, max_shift=6)
    assert res.shift_yx == (4.0, -3.0) and res.mse == 0.0
    assert res.border == 6 and res.scale == 1.0
    noisy = align_upto_shift(moved, ref, max_shift=6).shift_yx
    assert abs(noisy[0] - 4.0) <= 0.5 and abs(noisy[1] + 3.0) <= 0.5
    # Unaligned, the shift costs a lot.
    assert psnr(moved, ref, data_range=1.0) < aligned - 10.0


def test_subpixel_shift_is_found(rng):
    ref = _smooth(rng, (96, 96), sigma=3.0)
    moved = _subpixel_shift(ref, 1.25, -2.5)
    res = align_upto_shift(moved, ref, max_shift=4)
    assert res.shift_yx == (1.25, -2.5)
    whole = psnr_shift_aligned(moved, ref, data_range=1.0, max_shift=4, step=1.0)
    fine = psnr_shift_aligned(moved, ref, data_range=1.0, max_shift=4)
    assert fine > whole + 10.0


def test_shift_beyond_reach_is_not_undone(rng):
    ref = _smooth(rng, (80, 80))
    moved = np.roll(ref, 7, axis=1)
    assert abs(align_upto_shift(moved, ref, max_shift=3).shift_yx[1]) <= 3.0
    assert psnr_shift_aligned(moved, ref, data_range=1.0, max_shift=3) < 60.0
    assert math.isinf(psnr_shift_aligned(moved, ref, data_range=1.0, max_shift=8))


def test_data_range_is_explicit_and_scale_fit(rng):
    ref = _smooth(rng, (64, 64, 3))
    est = np.clip(ref + rng.normal(0, 0.03, ref.shape), 0, 1)
    p1 = psnr_shift_aligned(est, ref, data_range=1.0, max_shift=2)
    p255 = psnr_shift_aligned(est * 255.0, ref * 255.0, data_range=255.0, max_shift=2)
    assert p1 == pytest.approx(p255, abs=1e-9)
    assert psnr_shift_aligned(est, ref, data_range=2.0, max_shift=2) == pytest.approx(p1 + 20 * math.log10(2), abs=1e-9)
    darker = 0.7 * est
    fitted = align_upto_shift(darker, ref, max_shift=2, fit_scale=True)
    assert fitted.scale == pytest.approx(1 / 0.7, rel=0.02)
    assert fitted.mse < align_upto_shift(darker, ref, max_shift=2).mse / 10


def test_bad_arguments(rng):
    a = rng.random((40, 40))
    with pytest.raises(DeblurkitError, match="border"):
        align_upto_shift(a, a, max_shift=5, border=3)
    with pytest.raises(DeblurkitError, match="shape"):
        align_upto_shift(a, a[:-1], max_shift=1)
    with pytest.raises(DeblurkitError, match="too small"):
        align_upto_shift(a, a, max_shift=20)
    with pytest.raises(DeblurkitError, match="max_shift"):
        align_upto_shift(a, a, max_shift=-1)
