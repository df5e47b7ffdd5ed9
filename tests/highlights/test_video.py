"""Synthetic HDR video: geometry, auto-exposure and the camera."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deblurkit.highlights import video as hv
from deblurkit.highlights.camera import CameraConfig, capture_srgb8, linearize_srgb8, sample_camera


def _dot_panorama(lon_deg: float, lat_deg: float, h: int = 256, w: int = 512) -> np.ndarray:
    pano = np.full((h, w, 3), 0.05, np.float32)
    u, v = hv.direction_to_equirect(hv.equirect_to_direction(0, 0, h, w), h, w)  # round trip sanity
    assert abs(float(u)) < 1e-9 and abs(float(v)) < 1e-9
    d = np.array([math.cos(math.radians(lat_deg)) * math.sin(math.radians(lon_deg)), -math.sin(math.radians(lat_deg)),
                  math.cos(math.radians(lat_deg)) * math.cos(math.radians(lon_deg))])
    u, v = hv.direction_to_equirect(d, h, w)
    r, c = round(float(v)), round(float(u))
    pano[r - 1:r + 2, c - 1:c + 2] = 100.0
    return pano


def test_known_direction_lands_at_the_expected_pixel():
    pano = _dot_panorama(lon_deg=100.0, lat_deg=20.0)
    k = hv.intrinsics(64, 96, 60.0)
    # Looking straight at the dot: it is at the image centre.
    rot = hv.rotation_from_angles(math.radians(100.0), math.radians(20.0), 0.0)
    img = hv.render_view_linear(pano, rot, k, (64, 96))
    y, x = np.unravel_index(np.argmax(img[..., 1]), img.shape[:2])
    assert abs(y - 31.5) <= 1.5 and abs(x - 47.5) <= 1.5
    # Yawing 10 degrees less puts the dot f * tan(10 deg) pixels to the right of the centre.
    rot2 = hv.rotation_from_angles(math.radians(90.0), math.radians(20.0), 0.0)
    img2 = hv.render_view_linear(pano, rot2, k, (64, 96))
    y2, x2 = np.unravel_index(np.argmax(img2[..., 1]), img2.shape[:2])
    assert x2 > x + 0.8 * k[0, 0] * math.tan(math.radians(10.0))
    # ... and the homography from the rotations predicts where it moved.
    p = hv.frame_homography(rot, rot2, k) @ np.array([x, y, 1.0])
    assert abs(p[0] / p[2] - x2) <= 1.5 and abs(p[1] / p[2] - y2) <= 1.5


def test_longitude_wraps_around_the_seam():
    pano = _dot_panorama(lon_deg=179.5, lat_deg=0.0)
    k = hv.intrinsics(32, 32, 40.0)
    img = hv.render_view_linear(pano, hv.rotation_from_angles(math.pi, 0.0, 0.0), k, (32, 32))
    assert img.max() > 10.0  # the dot across the seam is visible, not a border artefact
    assert np.isfinite(img).all() and img.min() >= 0.0


def test_auto_exposure_converges_bounded_and_oscillates_when_configured():
    rng = np.random.default_rng(0)
    scene_y = 0.5  # a flat grey scene of radiance 0.5: ideal exposure 0.36

    def run(cfg: hv.AutoExposureConfig) -> np.ndarray:
        state = hv.init_auto_exposure(np.full((4, 4, 3), scene_y, np.float32), cfg, rng)
        evs = []
        for _ in range(120):
            evs.append(state.log2_exposure)
            meter = min(1.0, scene_y * 2.0**state.log2_exposure)
            state = hv.auto_exposure_step(state, meter, cfg, rng)
        return np.array(evs)

    ideal = math.log2(0.18 / scene_y)
    steady = run(hv.AUTO_EXPOSURE_PRESETS["steady"])
    assert abs(steady[-30:].mean() - ideal) < 0.1 and steady[-30:].std() < 0.1
    osc = run(hv.AUTO_EXPOSURE_PRESETS["oscillating"])
    tail = osc[-60:] - ideal
    crossings = int((np.diff(np.sign(tail)) != 0).sum())
    assert crossings >= 6 and np.ptp(tail) > 1.0  # it hunts around the target...
    assert np.abs(tail).max() < 4.0  # ... but stays bounded
    wild = run(hv.AutoExposureConfig(gain=2.5, momentum=0.9, max_ev=3.0, min_ev=-5.0))
    assert wild.max() <= 3.0 and wild.min() >= -5.0


def test_exposure_loop_is_a_pure_function_of_the_rng():
    pano = np.random.default_rng(3).uniform(0.01, 3.0, (64, 128, 3)).astype(np.float32)
    cfg = hv.VideoConfig(height=24, width=32, frames=3, hfov_deg=60.0)
    a = [f.exposure for f in hv.generate_video(pano, cfg, np.random.default_rng(7))]
    b = [f.exposure for f in hv.generate_video(pano, cfg, np.random.default_rng(7))]
    assert a == b


@pytest.mark.parametrize("pipeline", [False, True])
def test_frames_are_8bit_and_clipped_where_exposed_radiance_exceeds_one(pipeline):
    import cv2
    from scipy.ndimage import maximum_filter

    rng = np.random.default_rng(1)
    field = cv2.GaussianBlur(rng.uniform(0.0, 1.0, (32, 48)).astype(np.float32), (0, 0), 3.0)
    field = (field - field.min()) / np.ptp(field)
    exposed = (field[..., None] ** 2 * np.array([2.5, 2.0, 1.6])).astype(np.float32)
    cam = sample_camera(CameraConfig(camera_pipeline=pipeline), torch.Generator().manual_seed(0))
    frame = capture_srgb8(exposed, cam, torch.Generator().manual_seed(1))
    assert frame.dtype == np.uint8 and frame.shape == exposed.shape
    assert (frame[exposed >= 1.0] == 255).all()
    dark = maximum_filter(exposed.max(axis=2), size=5) < 0.6  # demosaicing reads a 5x5 neighbourhood
    assert dark.mean() > 0.1
    assert (frame[dark] < 250).all()
    lin = linearize_srgb8(frame)
    ok = exposed < 0.6
    assert np.median(np.abs(lin[ok] - exposed[ok])) < 0.03


def test_generated_clip_has_truth_and_consistent_clipping():
    pano = np.random.default_rng(3).uniform(0.01, 1.0, (64, 128, 3)).astype(np.float32)
    pano[20:30, :, :] = 50.0  # a bright band around the horizon-ish rows
    cfg = hv.VideoConfig(height=24, width=32, frames=4, hfov_deg=80.0,
                         camera=CameraConfig(camera_pipeline=False, noise_model="none"))
    frames = list(hv.generate_video(pano, cfg, np.random.default_rng(0)))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    for f in frames:
        assert f.srgb8.dtype == np.uint8 and f.radiance.shape == (24, 32, 3)
        truth = f.truth_linear
        assert (f.srgb8[truth >= 1.0] == 255).all()
        assert (f.srgb8[truth < 0.95] < 255).all()
