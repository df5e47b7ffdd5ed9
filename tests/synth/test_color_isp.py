"""Colour conversions, mosaic/demosaic and the sensor noise model."""

from __future__ import annotations

import math

import pytest
import torch

from deblurkit.synth import isp
from deblurkit.synth.color import apply_color_matrix, linear_to_srgb, rgb_to_cam_matrix, srgb_to_linear


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-20))


def smooth_image(h: int = 64, w: int = 64) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    r = 0.5 + 0.3 * torch.sin(2 * math.pi * x * 0.7)
    g = 0.2 + 0.6 * y
    b = 0.5 + 0.3 * torch.cos(2 * math.pi * (x + y) * 0.5)
    return torch.stack([r, g, b])[None].float()


def test_srgb_known_values_and_round_trip():
    x = torch.tensor([0.0, 0.04045, 0.5, 1.0])
    lin = srgb_to_linear(x)
    assert lin[0] == 0 and abs(float(lin[1]) - 0.04045 / 12.92) < 1e-7
    assert abs(float(lin[2]) - 0.2140411) < 1e-5 and abs(float(lin[3]) - 1.0) < 1e-6
    img = smooth_image()
    assert psnr(linear_to_srgb(srgb_to_linear(img)), img) > 60
    assert psnr(srgb_to_linear(linear_to_srgb(img)), img) > 60


def test_camera_matrix_keeps_white_and_inverts():
    m = rgb_to_cam_matrix({"sony-a7r3": 1.0, "unprocessing-2": 0.5})
    assert torch.allclose(m.sum(dim=1), torch.ones(3), atol=1e-6)
    img = smooth_image()
    back = apply_color_matrix(apply_color_matrix(img, m), torch.linalg.inv(m))
    assert psnr(back, img) > 60


def test_bayer_masks_partition_the_grid():
    for pattern in isp.BAYER_PATTERNS:
        m = isp.bayer_masks(pattern, 4, 6)
        assert torch.equal(m.sum(0), torch.ones(4, 6))
        assert float(m[1].mean()) == 0.5  # half the sites are green
    with pytest.raises(ValueError, match="valid"):
        isp.bayer_masks("RGBG", 4, 4)


@pytest.mark.parametrize("pattern", isp.BAYER_PATTERNS)
def test_mosaic_demosaic_round_trip_on_smooth_content(pattern):
    img = smooth_image()
    out = isp.demosaic_malvar(isp.mosaic_bayer(img, pattern), pattern)
    assert out.shape == img.shape
    assert psnr(out[..., 4:-4, 4:-4], img[..., 4:-4, 4:-4]) > 40


def test_demosaic_is_exact_at_sampled_sites_and_on_flat_colour():
    img = torch.rand(1, 3, 16, 16)
    raw = isp.mosaic_bayer(img, "GRBG")
    out = isp.demosaic_malvar(raw, "GRBG")
    m = isp.bayer_masks("GRBG", 16, 16)
    assert torch.allclose(out * m, img * m, atol=1e-6)
    flat = torch.tensor([0.3, 0.5, 0.7]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    assert torch.allclose(isp.demosaic_malvar(isp.mosaic_bayer(flat, "BGGR"), "BGGR"), flat, atol=1e-5)


@pytest.mark.parametrize("poisson", [True, False])
def test_noise_variance_matches_shot_times_signal_plus_read(poisson):
    gen = torch.Generator().manual_seed(1)
    shot, read = 0.01, 2e-4
    for level in (0.05, 0.3, 0.8):
        flat = torch.full((1, 1, 256, 256), level)
        noisy = isp.add_poisson_gaussian_noise(
            flat, torch.tensor([shot]), torch.tensor([read]), gen, poisson=poisson
        )
        expected = shot * level + read
        assert abs(float(noisy.var()) / expected - 1) < 0.05
        assert abs(float(noisy.mean()) - level) < 0.01


def test_noise_level_sampling_ranges():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        shot, read = isp.sample_noise_levels("unprocessing", gen)
        assert 1e-4 <= shot <= 0.012 and read > 0
        shot, read = isp.sample_noise_levels("rsblur-realblur", gen)
        assert 0.5 * 8.8915e-5 <= shot <= 1.5 * 8.8915e-5
        assert (0.5 * 2.9430e-5) ** 2 <= read <= (1.5 * 2.9430e-5) ** 2
    assert isp.sample_noise_levels("none", gen) == (0.0, 0.0)
    with pytest.raises(ValueError, match="unknown noise model"):
        isp.sample_noise_levels("loud", gen)


def test_jpeg_round_trip_is_close_at_high_quality():
    img = smooth_image()
    assert psnr(isp.jpeg_roundtrip_srgb(img, 95), img) > 35
    assert psnr(isp.jpeg_roundtrip_srgb(img, 95), img) > psnr(isp.jpeg_roundtrip_srgb(img, 10), img)
