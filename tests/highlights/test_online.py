"""Clipped masks, alignment, exposure ratio, baselines, reference rules and metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deblurkit.highlights import align as ha
from deblurkit.highlights import video as hv
from deblurkit.highlights.camera import CameraConfig
from deblurkit.highlights.metrics import mu_law_linear, psnr_linear_masked, psnr_mulaw_masked
from deblurkit.highlights.online import (
    StepInputs,
    restore_copy,
    restore_none,
    rule_policy,
    run_online,
)


def _textured_pano(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0.0, 1.0, (256, 512)).astype(np.float32), (0, 0), 2.0)
    base = (base - base.min()) / np.ptp(base)
    pano = (0.03 + 0.5 * base[..., None] ** 2 * np.array([1.0, 0.9, 0.8])).astype(np.float32)
    pano[100:140, ::64] = 30.0  # rows of bright lamps near the horizon
    pano = cv2.GaussianBlur(pano, (0, 0), 1.0)
    return pano


def test_clipped_mask_and_dilation():
    f = np.zeros((10, 10, 3), np.uint8)
    f[5, 5, 1] = 255
    assert ha.clipped_mask_srgb8(f).sum() == 1
    assert ha.clipped_mask_srgb8(f, dilate_px=1).sum() > 1


def test_true_homography_warp_and_exposure_ratio():
    pano = _textured_pano()
    k = hv.intrinsics(96, 128, 70.0)
    r_ref = hv.rotation_from_angles(0.3, 0.05, 0.0)
    r_cur = hv.rotation_from_angles(0.36, 0.03, 0.01)
    ref = hv.render_view_linear(pano, r_ref, k, (96, 128)) * 0.5
    cur = hv.render_view_linear(pano, r_cur, k, (96, 128)) * 1.5
    warped = ha.warp_reference(np.clip(ref, 0, 1), ref.max(2) >= 1, homography=hv.frame_homography(r_ref, r_cur, k))
    assert 0.6 < warped.valid.mean() < 1.0
    ratio = ha.exposure_ratio_linear(np.clip(cur, 0, 1), warped.linear, warped.valid & ~warped.clipped)
    assert ratio == pytest.approx(3.0, rel=0.03)
    conf = ha.confidence_map_linear(np.clip(cur, 0, 1), warped.linear * ratio, warped.valid)
    assert conf[warped.valid].mean() > 0.8 and conf[~warped.valid].max() == 0.0
    # A wrong warp (identity) gives a clearly lower confidence.
    wrong = ha.warp_reference(np.clip(ref, 0, 1), ref.max(2) >= 1, homography=np.eye(3))
    conf_wrong = ha.confidence_map_linear(np.clip(cur, 0, 1), wrong.linear * 3.0, wrong.valid)
    assert conf_wrong.mean() < conf[warped.valid].mean() - 0.2


def test_estimated_homography_close_to_truth_under_exposure_change():
    import cv2

    pano = _textured_pano(1)
    k = hv.intrinsics(144, 192, 70.0)
    r_ref = hv.rotation_from_angles(1.0, 0.0, 0.0)
    r_cur = hv.rotation_from_angles(1.05, 0.02, 0.0)
    enc = lambda x: (np.clip(x, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
    ref8 = enc(hv.render_view_linear(pano, r_ref, k, (144, 192)) * 0.7)
    cur8 = enc(hv.render_view_linear(pano, r_cur, k, (144, 192)) * 1.4)
    hom = ha.estimate_homography_srgb8(ref8, cur8)
    assert hom is not None
    truth = hv.frame_homography(r_ref, r_cur, k)
    pts = np.float32([[20, 20], [170, 30], [96, 72], [30, 120]])[:, None]
    err = np.abs(cv2.perspectiveTransform(pts, hom) - cv2.perspectiveTransform(pts, truth)).max()
    assert err < 2.0
    flow = ha.dis_flow_srgb8(ref8, cur8)
    assert flow.shape == (144, 192, 2) and np.isfinite(flow).all()


def test_copy_fill_takes_reference_only_in_clipped_confident_pixels():
    cur = np.full((4, 4, 3), 0.5, np.float32)
    cur[0, 0] = 1.0
    clipped = np.zeros((4, 4), bool)
    clipped[0, 0] = True
    ref = np.full((4, 4, 3), 0.45, np.float32)
    ref[0, 0] = 3.0
    conf = np.ones((4, 4), np.float32)
    out = restore_copy(StepInputs(cur, clipped, ref, conf, np.zeros((4, 4), bool)))
    assert np.allclose(out[0, 0], 3.0) and np.allclose(out[1:], 0.5)
    out0 = restore_copy(StepInputs(cur, clipped, ref, conf * 0, np.zeros((4, 4), bool)))
    assert np.allclose(out0, cur)
    assert restore_none(StepInputs(cur, clipped, ref, conf, clipped)) is cur


def test_metrics_known_values():
    truth = np.full((2, 2, 3), 8.0)
    pred = truth.copy()
    pred[0, 0] = 4.0
    mask = np.zeros((2, 2), bool)
    mask[0, 0] = True
    assert psnr_linear_masked(pred, truth, mask, peak=64.0) == pytest.approx(10 * math.log10(1 / (4 / 64) ** 2))
    assert psnr_mulaw_masked(truth, truth, mask, peak=64.0) == float("inf")
    assert math.isnan(psnr_linear_masked(pred, truth, np.zeros((2, 2), bool), peak=64.0))
    assert mu_law_linear(np.array([0.0, 64.0, 1000.0]), peak=64.0).tolist() == pytest.approx([0.0, 1.0, 1.0])


def test_rules_and_oracle_on_a_clip():
    pano = _textured_pano(2)
    cfg = hv.VideoConfig(height=48, width=64, frames=8, hfov_deg=70.0, motion_blur=False,
                         auto_exposure=hv.AUTO_EXPOSURE_PRESETS["oscillating"],
                         camera=CameraConfig(noise_model="none"))
    frames = list(hv.generate_video(pano, cfg, np.random.default_rng(4)))
    prev = list(run_online(frames, restore_copy, rule_policy("previous"), align="true"))
    first = list(run_online(frames, restore_copy, rule_policy("first"), align="true"))
    every3 = list(run_online(frames, restore_copy, rule_policy("interval", interval=3), align="true"))
    oracle = list(run_online(frames, restore_copy, "oracle", align="true"))
    assert [r.reference_index for r in prev][1:] == list(range(7))
    assert all(r.reference_index in (None, 0) for r in first)
    assert [r.reference_index for r in every3][1:] == [0, 0, 0, 3, 3, 3, 6]
    for r in oracle[1:]:  # the oracle keeps a past frame, never a future one
        assert r.reference_index is None or r.reference_index < r.index

    def score(results):
        vals = [psnr_mulaw_masked(r.output, f.truth_linear, ha.clipped_mask_srgb8(f.srgb8), peak=64.0)
                for r, f in zip(results, frames) if ha.clipped_mask_srgb8(f.srgb8).any()]
        return float(np.mean(vals))

    none = list(run_online(frames, restore_none, rule_policy("previous"), align="true"))
    assert score(oracle) >= score(prev) - 1e-9
    assert score(oracle) > score(none)


class _StreamFrame:
    """A streamed frame that holds its own pixels (like a decoder's fresh buffer per frame)."""

    __slots__ = ("__weakref__", "srgb8")

    def __init__(self, srgb8: np.ndarray) -> None:
        self.srgb8 = srgb8


@pytest.mark.parametrize(("rule", "kept"), [("first", {0}), ("interval", set()), ("previous", set())])
def test_memory_is_bounded_only_the_reference_survives(rule, kept):
    """Streamed frames are released once processed: at most the current frame, the reference and
    the previous frame are alive, however long the stream (checked through weak references; no
    garbage collection is forced, so a frame kept alive only by a reference cycle counts as kept)."""
    import weakref

    pano = _textured_pano(3)
    cfg = hv.VideoConfig(height=32, width=48, frames=4, hfov_deg=70.0, motion_blur=False,
                         auto_exposure=hv.AUTO_EXPOSURE_PRESETS["oscillating"], camera=CameraConfig(noise_model="none"))
    base = [f.srgb8 for f in hv.generate_video(pano, cfg, np.random.default_rng(5))]
    alive: dict[int, weakref.ref] = {}

    def stream(n: int):
        for i in range(n):
            fr = _StreamFrame(base[i % len(base)].copy())
            alive[i] = weakref.ref(fr.srgb8)  # numpy arrays can be weakly referenced
            yield fr

    n_alive = []
    for res in run_online(stream(40), restore_copy, rule_policy(rule, interval=8), align="flow"):
        live = {i for i, r in alive.items() if r() is not None}
        n_alive.append(len(live))
        assert kept <= live  # the kept reference of "first" stays
        assert res.index in live
        del res
    assert max(n_alive) <= 3
    assert len(alive) == 40
