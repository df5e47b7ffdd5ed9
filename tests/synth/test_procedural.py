"""Procedural scenes: privacy-safe sharp images with natural-image statistics, usable as a training source."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from deblurkit.errors import DeblurkitError
from deblurkit.synth.procedural import (
    ProceduralSceneSource,
    fractal_noise,
    render_scene_srgb,
    render_scene_with_counts_srgb,
)
from deblurkit.synth.sources import PhotoSetSource, make_source


def _spectral_slope(gray: np.ndarray) -> float:
    """Slope of the radially averaged power spectrum in log-log, over 4-40 % of Nyquist."""
    h, w = gray.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fftshift(np.fft.fft2((gray - gray.mean()) * win))) ** 2
    yy, xx = np.indices(power.shape)
    r = np.hypot(yy - h // 2, xx - w // 2).astype(int)
    radial = np.bincount(r.ravel(), power.ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    f = np.arange(radial.size)
    keep = (f >= 0.04 * h / 2) & (f <= 0.4 * h / 2)
    return float(np.polyfit(np.log(f[keep]), np.log(radial[keep]), 1)[0])


def test_fractal_noise_has_the_requested_spectrum_and_unit_variance():
    rng = np.random.default_rng(0)
    for beta in (1.0, 2.0, 3.0):
        field = fractal_noise((128, 128), beta, rng)
        assert field.dtype == np.float32 and field.shape == (128, 128)
        assert abs(float(field.mean())) < 1e-4 and abs(float(field.std()) - 1) < 1e-3
        assert _spectral_slope(field) == pytest.approx(-beta, abs=0.35)


def test_scenes_are_deterministic_in_range_and_vary_with_the_seed():
    a = render_scene_srgb(64, np.random.default_rng(3))
    b = render_scene_srgb(64, np.random.default_rng(3))
    c = render_scene_srgb(64, np.random.default_rng(4))
    assert a.shape == (64, 64, 3) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.02


def test_scenes_have_natural_image_statistics():
    # natural images: power spectrum ~ 1/f^2 (slopes about -1.6 to -3); colour, not greyscale; many levels
    slopes, chroma = [], []
    for seed in range(3):
        img = render_scene_srgb(128, np.random.default_rng(seed))
        slopes.append(_spectral_slope(img.mean(axis=2)))
        chroma.append(float(np.abs(img - img.mean(axis=2, keepdims=True)).mean()))
        assert len(np.unique((img * 255).round())) > 100
    assert -3.2 < float(np.mean(slopes)) < -1.5, slopes
    assert float(np.mean(chroma)) > 0.02


def test_scenes_are_sharp_by_the_curation_measure():
    # the blur check of `deblurkit curate` (sharpness about 1 for sharp natural detail, < 0.3 blurred);
    # its JPEG and noise checks can fire on flat axis-aligned shapes and fine fractal texture (docs/curation.md)
    from deblurkit.curate.rules import CurationRules
    from deblurkit.curate.scores import sharpness_srgb

    for seed in range(2):
        scores = sharpness_srgb(render_scene_srgb(256, np.random.default_rng(seed)))
        assert scores["sharpness"] >= CurationRules().min_sharpness, scores
        assert scores["textured_fraction"] > 0.5


def test_lights_saturate_and_counts_follow_the_ranges():
    dark, counts = render_scene_with_counts_srgb(64, np.random.default_rng(1), light_sources=(0, 0), texts=(0, 0),
                                                 brightness=(0.4, 0.4))
    assert counts["lights"] == 0 and counts["texts"] == 0 and 3 <= counts["layers"] <= 5 and counts["objects"] > 10
    assert dark.max() < 0.99
    lit, counts = render_scene_with_counts_srgb(64, np.random.default_rng(1), light_sources=(4, 4), texts=(2, 2),
                                                brightness=(0.4, 0.4))
    assert counts["lights"] == 4 and counts["texts"] == 2
    assert (lit >= 0.999).any()


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(DeblurkitError, match="at least 16"):
        render_scene_srgb(8, np.random.default_rng(0))
    with pytest.raises(DeblurkitError, match="layers range"):
        render_scene_srgb(32, np.random.default_rng(0), layers=(3, 1))


def test_usable_as_a_source_a_manifest_entry_and_a_training_config(tmp_path):
    from deblurkit.train import resolve_config

    src = make_source("procedural-scenes")
    assert isinstance(src, ProceduralSceneSource)
    crop, info = src.random_crop(32, np.random.default_rng(0))
    assert crop.shape == (32, 32, 3) and info["source"] == "procedural-scenes"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"sources": [{"name": "synthetic", "procedural": "procedural-scenes"}]}))
    crop, info = PhotoSetSource(path).random_crop(32, np.random.default_rng(0))
    assert crop.shape == (32, 32, 3) and info["source"] == "synthetic/procedural-scenes"
    path.write_text(yaml.safe_dump({"sources": [{"name": "x", "procedural": "fractals"}]}))
    with pytest.raises(DeblurkitError, match="procedural must be one of dead-leaves, procedural-scenes"):
        PhotoSetSource(path)
    assert resolve_config(overrides=["source=procedural-scenes"]).source == "procedural-scenes"
