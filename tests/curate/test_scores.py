"""Curation measures: each responds to the degradation it measures, by deblurkit.synth's own operators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.curate import scores
from deblurkit.synth.blur import convolve_fft, render_psf
from deblurkit.synth.color import linear_to_srgb, srgb_to_linear
from deblurkit.synth.isp import jpeg_roundtrip_srgb
from deblurkit.synth.sources import DeadLeavesSource
from deblurkit.synth.trajectory import linear_trajectory_2d


def _dead_leaves(size: int = 256, seed: int = 0) -> np.ndarray:
    img, _ = DeadLeavesSource(light_sources=(0, 0)).random_crop(size, np.random.default_rng(seed))
    return img


def _apply(img: np.ndarray, fn) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    return np.ascontiguousarray(fn(x)[0].permute(1, 2, 0).numpy())


def _motion_blur(img: np.ndarray, length: float, angle: float = 0.0) -> np.ndarray:
    k = render_psf(linear_trajectory_2d(length, angle, steps=8))[None, None]
    return _apply(img, lambda x: linear_to_srgb(convolve_fft(srgb_to_linear(x), k).clamp(0, 1)))


def test_sharpness_drops_under_motion_blur():
    img = _dead_leaves(192)
    sharp = scores.sharpness_srgb(img)["sharpness"]
    assert sharp > 0.25  # sharp, scale-invariant detail: the top octave holds about as much as the one below
    for length in (3, 6, 12):
        assert scores.sharpness_srgb(_motion_blur(img, length))["sharpness"] < min(0.15, sharp / 2)


def test_sharpness_is_directional():
    # a horizontal and a vertical motion blur of the same length score alike: the weakest orientation counts
    img = _dead_leaves(192, seed=1)
    h = scores.sharpness_srgb(_motion_blur(img, 8, 0.0))["sharpness"]
    v = scores.sharpness_srgb(_motion_blur(img, 8, np.pi / 2))["sharpness"]
    assert h < 0.15 and v < 0.15
    assert abs(h - v) < 0.5 * max(h, v)


def test_sharpness_of_flat_image_is_nan():
    r = scores.sharpness_srgb(np.full((200, 300, 3), 0.4, np.float32))
    assert np.isnan(r["sharpness"]) and r["textured_fraction"] == 0.0


def test_noise_sigma_recovers_added_noise(rng):
    flat = np.full((256, 256, 3), 0.5, np.float32)  # 4 tiles
    for sigma in (0.005, 0.02):
        noisy = flat + rng.normal(0, sigma, flat.shape).astype(np.float32)
        luma_sigma = sigma * np.sqrt(sum(w * w for w in scores.LUMA_WEIGHTS))
        assert scores.noise_sigma_srgb(noisy) == pytest.approx(luma_sigma, rel=0.1)
    assert scores.noise_sigma_srgb(flat) == 0.0


def test_noise_floor_does_not_make_noise_look_sharp(rng):
    img = _motion_blur(_dead_leaves(192, seed=2), 8)
    mild = np.clip(img + rng.normal(0, 0.005, img.shape).astype(np.float32), 0, 1)
    assert scores.sharpness_srgb(mild)["sharpness"] < 0.15
    strong = np.clip(img + rng.normal(0, 0.02, img.shape).astype(np.float32), 0, 1)
    stack = scores.tiles(scores.luma_srgb(strong))
    raw = scores.sharpness_tiles(stack, 0.0)[0]
    assert scores.sharpness_srgb(strong)["sharpness"] < 0.8 * raw  # the white-noise floor is removed


def test_blockiness_detects_jpeg_at_any_grid_offset():
    img = _dead_leaves(seed=3)
    assert scores.blockiness_srgb(img) < 1.1
    jpg = _apply(img, lambda x: jpeg_roundtrip_srgb(x, 15))
    assert scores.blockiness_srgb(jpg) > 1.25
    assert scores.blockiness_srgb(jpg[3:, 5:]) > 1.25  # a crop moves the grid
    assert np.isnan(scores.blockiness_srgb(np.zeros((10, 10, 3), np.float32)))


def test_clipping_fractions_count_pixels():
    img = np.full((10, 10, 3), 0.5, np.float32)
    img[:2, :, 1] = 1.0  # 20 pixels with one channel at the top
    img[5:, :] = 0.0  # 50 black pixels
    assert scores.clipping_fractions_srgb(img) == {"clipped_high": 0.2, "clipped_low": 0.5}


def test_phash_finds_near_duplicates_only():
    a, b = _dead_leaves(seed=4), _dead_leaves(seed=5)
    ha = scores.dct_phash_srgb(a)
    assert len(ha) == 16
    assert scores.hamming_hex(ha, scores.dct_phash_srgb(np.clip(a * 0.9 + 0.05, 0, 1))) <= 6
    assert scores.hamming_hex(ha, scores.dct_phash_srgb(b)) > 12
    with pytest.raises(ValueError):
        scores.hamming_hex("ab", "abc")


def test_tiles_cover_small_and_large_images():
    assert scores.tiles(np.zeros((300, 520), np.float32)).shape == (2 * 4, 128, 128)
    assert scores.tiles(np.zeros((60, 90), np.float32)).shape == (1, 60, 60)
    with pytest.raises(ValueError):
        scores.luma_srgb(np.zeros((4, 4), np.float32))
