"""Saturation-aware Richardson–Lucy: a clipped light source rings less than with plain RL or a prior."""

from __future__ import annotations

import numpy as np
import pytest

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.deconv import (
    convolve_fft,
    hyper_laplacian_deconv,
    richardson_lucy_deconv,
    richardson_lucy_saturated_linear,
)
from deblurkit.synth.trajectory import random_shake_kernel


def _scene(rng: np.random.Generator, light: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sharp linear, kernel, blurry clipped at 1): texture in [0.25, 0.8] and a 4x4 light."""
    import cv2

    sharp = np.clip(0.25 + 0.75 * cv2.GaussianBlur(rng.random((128, 128)), (0, 0), 2.0), 0.0, 0.8)
    sharp[62:66, 62:66] = light
    kernel = random_shake_kernel(15, 13.0, rng)
    pad = 30
    blur = convolve_fft(np.pad(sharp, pad, mode="reflect").astype(np.float32), kernel)[pad:-pad, pad:-pad]
    blur = np.clip(blur + rng.normal(0, 0.003, blur.shape), 0.0, 1.0).astype(np.float32)
    return sharp.astype(np.float32), kernel, blur


def _ring_rms(out: np.ndarray, sharp: np.ndarray) -> float:
    """RMS error (outputs and truth clipped to [0, 1]) in a band 5-23 px around the light."""
    yy, xx = np.mgrid[:128, :128]
    d = np.maximum(abs(yy - 63.5), abs(xx - 63.5))
    band = (d > 4) & (d < 24)
    return float(np.sqrt(((np.clip(out, 0, 1) - np.clip(sharp, 0, 1))[band] ** 2).mean()))


def test_clipped_light_rings_less_than_plain_rl_and_hyper_laplacian(rng):
    sharp, kernel, blur = _scene(rng, light=6.0)
    sat = _ring_rms(richardson_lucy_saturated_linear(blur, kernel, iterations=30), sharp)
    plain = _ring_rms(richardson_lucy_deconv(blur, kernel, iterations=30), sharp)
    prior = _ring_rms(hyper_laplacian_deconv(blur, kernel), sharp)
    no_split = _ring_rms(richardson_lucy_saturated_linear(blur, kernel, iterations=30, split=False), sharp)
    assert sat < 0.6 * plain and sat < 0.6 * prior
    assert sat < no_split < plain  # the clipping model helps, the split helps more
    assert sat < _ring_rms(blur, sharp)  # better than leaving the blur


def test_without_clipping_it_is_plain_rl(rng):
    _, kernel, blur = _scene(rng, light=0.8)
    assert blur.max() < 0.85
    ours = richardson_lucy_saturated_linear(blur, kernel, iterations=20)
    assert np.abs(ours - richardson_lucy_deconv(blur, kernel, iterations=20)).max() < 2e-3
    colour = richardson_lucy_saturated_linear(np.stack([blur] * 3, axis=2), kernel, iterations=2)
    assert colour.shape == (128, 128, 3) and colour.dtype == np.float32
    assert np.allclose(colour[..., 0], colour[..., 2])


@pytest.mark.parametrize("kwargs", [{"iterations": -1}, {"clip_level": 0.0}, {"sharpness": 0.0},
                                    {"bright_fraction": 1.5}])
def test_bad_settings(kwargs):
    with pytest.raises(DeblurkitError):
        richardson_lucy_saturated_linear(np.zeros((16, 16), np.float32), np.ones((3, 3)), **kwargs)
