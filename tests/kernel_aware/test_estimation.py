"""Blind kernel estimation recovers a known shake kernel from a synthetic blur."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import convolve

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv
from deblurkit.kernel_aware.estimation import (
    center_kernel,
    clean_kernel,
    deconvolution_overshoot,
    estimate_kernel,
    estimate_kernel_auto,
    kernel_connectedness,
    kernel_extent,
    kernel_pause_share,
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


def _paused_stroke() -> np.ndarray:
    """A bent stroke at 5 % of its two bright end points (where the hand paused), on a faint floor."""
    k = np.full((15, 15), 0.01)
    k[7, 2:12] = 0.05
    k[3:8, 11] = 0.05
    k[7, 2] = k[3, 11] = 1.0
    return k


def test_bridging_restores_the_faint_stroke_between_pauses() -> None:
    k = _paused_stroke()
    split = clean_kernel(k, rel_threshold=0.15)  # the cut keeps only the two points
    assert np.count_nonzero(split) == 2 and kernel_connectedness(split) == pytest.approx(0.5)
    joined = clean_kernel(k, rel_threshold=0.15, bridge_floor=0.04)
    assert kernel_connectedness(joined) == 1.0 and joined.sum() == pytest.approx(1.0)
    # The stroke (an 8-connected path may cut its corner), not the floor around it, with its values.
    stroke = k >= 0.05
    on = joined > 0
    assert not (on & ~stroke).any() and on.sum() >= stroke.sum() - 1
    assert np.allclose(joined[on], k[on] / k[on].sum())
    # Below the floor the stroke does not count: the points stay apart.
    assert np.array_equal(clean_kernel(k, rel_threshold=0.15, bridge_floor=0.06), split)


def test_bridging_leaves_one_piece_and_a_cut_at_the_floor_unchanged() -> None:
    k = _paused_stroke()
    k[2:13, 2:13] += 0.2  # one bright square: a single piece after the cut, halo around it
    assert np.array_equal(clean_kernel(k, rel_threshold=0.15, bridge_floor=0.04), clean_kernel(k, rel_threshold=0.15))
    k = _paused_stroke()
    assert np.array_equal(clean_kernel(k, rel_threshold=0.04, bridge_floor=0.04), clean_kernel(k, rel_threshold=0.04))


def test_pause_share_tells_a_pause_from_a_stroke_at_constant_speed() -> None:
    stroke = np.zeros((25, 25))
    stroke[12, 2:22] = 1.0  # 20 px at constant speed: any 3 x 3 spot holds 3 of them
    assert kernel_pause_share(stroke) == pytest.approx(3 / 20)
    paused = stroke.copy()
    paused[12, 2] = paused[12, 21] = 6.0  # two pauses, each 30 % of the exposure
    assert kernel_pause_share(paused) == pytest.approx((6 + 2) / 30)
    # Values under the cut do not count: a faint stroke between two points is all pause.
    assert kernel_pause_share(_paused_stroke()) == pytest.approx(0.5)
    assert kernel_pause_share(np.zeros((5, 5))) == 0.0


def test_connectedness_of_a_path_and_of_split_copies() -> None:
    path = np.zeros((15, 15))
    path[7, 2:12] = 1.0
    path[3:8, 11] = 1.0  # one bent stroke
    assert kernel_connectedness(path) == 1.0
    copies = np.zeros((15, 15))
    copies[2, 2:6] = 1.0
    copies[12, 8:12] = 1.0  # the same stroke twice, apart (periodic texture)
    assert kernel_connectedness(copies) == pytest.approx(0.5)
    copies[12, 8:12] = 0.5 * 0.04  # a faint speck below the 5 % cut does not count
    assert kernel_connectedness(copies) == 1.0


def test_pyramid_sizes_are_odd_and_increasing() -> None:
    sizes = kernel_pyramid_sizes(31)
    assert sizes[-1] == 31 and sizes[0] >= 5
    assert all(s % 2 == 1 for s in sizes) and sizes == sorted(sizes)


def test_errors() -> None:
    with pytest.raises(DeblurkitError, match="2-D"):
        estimate_kernel(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(DeblurkitError, match="too small"):
        estimate_kernel(np.zeros((20, 20), np.float32), kernel_size=31)


@pytest.fixture(scope="module")
def large_case():
    """A 45-px shake on a 768-px photo: larger than the 31-px window at full resolution."""
    import cv2
    from skimage import data

    sharp = cv2.resize(data.astronaut(), (768, 768), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    sharp = cv2.cvtColor(sharp, cv2.COLOR_RGB2GRAY) ** 2.2
    rng = np.random.default_rng(5)
    k_true = random_shake_kernel(61, 45.0, rng)
    blur = convolve(sharp, k_true, mode="reflect") + rng.normal(0, 0.002, sharp.shape)
    return sharp, (blur / np.percentile(blur, 99.5)).astype(np.float32), k_true


def test_auto_size_finds_a_shake_larger_than_the_window(large_case) -> None:
    _, blur, k_true = large_case
    est = estimate_kernel_auto(blur, window=31)
    assert est.scale > 1.0 and est.kernel.shape[0] > 31  # estimated on a downscaled image
    assert est.kernel.min() >= 0 and est.kernel.sum() == pytest.approx(1.0, abs=1e-4)
    assert kernel_similarity(est.kernel, k_true) > 0.7
    assert abs(kernel_extent(est.kernel) - kernel_extent(k_true)) <= 0.3 * kernel_extent(k_true)
    assert est.consistency > 0.7 and est.overshoot < 0.01 and 0.0 <= est.agreement <= 1.0
    assert len(est.candidates) == 2  # small-blur and large-blur hypotheses


def test_auto_size_keeps_small_shakes_at_full_resolution(case) -> None:
    _, blur, k_true = case
    est = estimate_kernel_auto(blur, window=31)
    assert est.scale == 1.0 and est.kernel.shape[0] < 31  # window fitted to the kernel found
    assert kernel_similarity(est.kernel, k_true) > 0.8


def test_kernel_cut_reaches_every_estimate(case) -> None:
    """A lower cut keeps more of the kernel's faint values, in the estimator and in the pipeline."""
    from deblurkit.kernel_aware.blind import BlindParams, estimate_tile_kernels

    _, blur, _ = case
    low, high = (estimate_kernel_auto(blur, window=31, cut=c).kernel for c in (0.05, 0.4))
    assert np.count_nonzero(low) > np.count_nonzero(high)
    lin = np.repeat(blur[..., None], 3, axis=2)
    found = {c: estimate_tile_kernels(lin, tiles=1, input_space="linear", params=BlindParams(kernel_cut=c)).kernels[0, 0]
             for c in (0.05, 0.4)}
    assert np.count_nonzero(found[0.05]) > np.count_nonzero(found[0.4])


def test_overshoot_flags_a_wrong_kernel(case) -> None:
    _, blur, k_true = case
    wrong = np.zeros((21, 21))
    wrong[10, :] = 1.0 / 21  # a long horizontal line: not this shake
    assert deconvolution_overshoot(blur, k_true) < 0.01 < deconvolution_overshoot(blur, wrong)


@pytest.mark.parametrize("side", [256, 96])
def test_kernel_step_recovers_the_kernel_from_the_true_latent_image(case, side) -> None:
    """Given the sharp image, the gradient-domain least-squares kernel step returns the shake kernel
    (circular blur, so the data model holds exactly)."""
    from deblurkit.kernel_aware.deconv import psf2otf
    from deblurkit.kernel_aware.estimation import forward_gradients, kernel_least_squares

    sharp, _, k_true = case
    sharp = sharp[256 - side:, 256 - side:]
    blur = np.fft.irfft2(np.fft.rfft2(sharp) * psf2otf(k_true, sharp.shape), s=sharp.shape).astype(np.float32)
    flat = np.full_like(k_true, 1.0 / k_true.size)
    k = kernel_least_squares(*forward_gradients(sharp), blur, k_true.shape[0], 1e-6, flat, cg_iters=300)
    assert kernel_similarity(np.maximum(k, 0), k_true) > 0.99
    assert np.abs(k - k_true).max() < 0.1 * k_true.max()


def test_refit_from_the_sharp_image_narrows_a_too_wide_kernel(case) -> None:
    """Given the sharp image as the latent, one kernel step from a too-wide estimate comes back to
    the shake, on a support widened by the margin, normalised and centred."""
    from scipy.ndimage import gaussian_filter

    from deblurkit.kernel_aware.estimation import refit_kernel
    from deblurkit.kernel_aware.kernels import kernel_centroid_offset

    sharp, blur, k_true = case
    wide = gaussian_filter(k_true, 1.5)
    wide /= wide.sum()
    k = refit_kernel(sharp, blur, wide, margin=4)
    assert k.shape == (29, 29) and k.dtype == np.float32
    assert k.min() >= 0 and abs(float(k.sum()) - 1.0) < 1e-5
    assert max(abs(v) for v in kernel_centroid_offset(k)) <= 0.5
    assert kernel_similarity(wide, k_true) < 0.9
    assert kernel_similarity(k, k_true) > 0.95


def test_edge_selection_keeps_every_orientation() -> None:
    """Weak diagonal edges survive the selection beside strong horizontal ones: each of the four
    orientation bins keeps its strongest max(20 k, 10) pixels, however weak they are globally."""
    from deblurkit.kernel_aware.estimation import select_edges_by_orientation

    rng = np.random.default_rng(0)
    lx = np.zeros((64, 64), np.float32)
    ly = np.zeros((64, 64), np.float32)
    lx[:, :32] = rng.uniform(0.5, 1.0, (64, 32))  # strong 0-degree gradients
    diag = rng.uniform(0.01, 0.02, (64, 32))
    lx[:, 32:], ly[:, 32:] = diag, diag  # weak 45-degree gradients
    ly[:8, 32:] = -diag[:8]  # ... a few at 135 degrees
    ly[8:16, :32] = 0.0
    lx[8:16, :32] = 0.0
    ly[8:16, :32] = rng.uniform(0.5, 1.0, (8, 32))  # and some at 90 degrees
    sx, sy = select_edges_by_orientation(lx, ly, 3)
    kept = np.hypot(sx, sy) > 0
    assert kept[16:, 32:].sum() >= 60 and kept[:8, 32:].sum() >= 60  # 45 and 135 degrees kept
    assert kept[8:16, :32].sum() >= 60 and kept[16:, :32].sum() >= 60  # 90 and 0 degrees kept
    assert kept.sum() < kept.size  # ... and it is a selection


def test_consistency_unmeasured_gives_the_same_kernel_in_fewer_estimates(case, monkeypatch) -> None:
    """Without ``measure_consistency`` a cross-scale estimate is made only where it chooses between
    hypotheses: the kernel is the same, the work smaller."""
    from deblurkit.kernel_aware import estimation

    _, blur, _ = case
    calls = []
    real = estimation.estimate_kernel

    def counted(*args, **kwargs):
        calls.append(kwargs.get("kernel_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(estimation, "estimate_kernel", counted)
    measured = estimate_kernel_auto(blur, window=31)
    n_measured = len(calls)
    calls.clear()
    lean = estimate_kernel_auto(blur, window=31, measure_consistency=False)
    np.testing.assert_array_equal(lean.kernel, measured.kernel)
    assert lean.scale == measured.scale and lean.overshoot == measured.overshoot
    assert len(measured.candidates) == 1  # one hypothesis: nothing to choose, no cross-scale estimate
    assert np.isnan(lean.consistency) and len(calls) == n_measured - 1


@pytest.mark.parametrize("select_edges", [True, False])
def test_one_kernel_update_keeps_the_true_kernel_on_a_clean_blur(case, select_edges) -> None:
    """Started from the true kernel, one alternation (latent image, then kernel) stays on it where
    the blur is clean; and it returns a valid kernel of the window's size."""
    from deblurkit.kernel_aware.estimation import update_kernel

    _, blur, k_true = case
    k = update_kernel(blur, k_true, 1e-4, select_edges=select_edges)
    assert k.shape == k_true.shape and k.min() >= 0 and abs(float(k.sum()) - 1.0) < 1e-9
    assert kernel_similarity(k, k_true) > 0.97


def test_kernel_updates_move_a_flat_start_toward_the_shake(case) -> None:
    from deblurkit.kernel_aware.estimation import update_kernel

    _, blur, k_true = case
    k = np.full_like(k_true, 1.0 / k_true.size)
    before = kernel_similarity(k, k_true)
    for _ in range(3):
        k = update_kernel(blur, k, 1e-3)
    assert kernel_similarity(k, k_true) > before + 0.08


def test_kernel_centroid_offset() -> None:
    from deblurkit.kernel_aware.kernels import kernel_centroid_offset

    k = np.zeros((5, 5))
    k[2, 2:4] = 0.5  # centroid half a pixel right of the centre pixel
    assert kernel_centroid_offset(k) == (0.0, 0.5)
    k = np.zeros((5, 5))
    k[0, 2] = 1.0
    assert kernel_centroid_offset(k) == (-2.0, 0.0)
    assert kernel_centroid_offset(np.zeros((3, 3))) == (0.0, 0.0)


def test_l0_latent_is_the_plain_half_quadratic_splitting(case) -> None:
    """The in-place loop of ``l0_latent`` computes the textbook iteration (Pan et al. 2014):
    zero the gradients below ``lam / beta``, then solve the quadratic step in Fourier."""
    from scipy import fft

    from deblurkit.kernel_aware.deconv import circular_diff, circular_diff_adjoint, pad_for_deconv, psf2otf
    from deblurkit.kernel_aware.estimation import l0_latent

    _, blur, k_true = case
    blur = blur[:96, :128]
    lam = 2e-3
    padded, (top, left) = pad_for_deconv(blur[..., None], k_true)
    y = padded[..., 0].astype(np.float64)
    otf = psf2otf(k_true, y.shape).astype(np.complex128)
    d2 = np.abs(psf2otf(np.array([[0.0, -1.0, 1.0]]), y.shape)) ** 2
    d2 = d2 + np.abs(psf2otf(np.array([[0.0], [-1.0], [1.0]]), y.shape)) ** 2
    x, beta = y.copy(), 2.0 * lam
    while beta < 1e5:
        h, v = circular_diff(x)
        small = h ** 2 + v ** 2 < lam / beta
        h[small], v[small] = 0.0, 0.0
        rhs = np.conj(otf) * fft.rfft2(y) + beta * fft.rfft2(circular_diff_adjoint(h, v))
        x = fft.irfft2(rhs / (np.abs(otf) ** 2 + beta * d2), s=y.shape)
        beta *= 2.0
    expected = x[top:top + blur.shape[0], left:left + blur.shape[1]]
    got = l0_latent(blur, k_true, lam)
    assert got.dtype == np.float32 and got.shape == blur.shape
    # Single precision may flip the threshold of a few gradients; the images agree closely.
    assert float(np.mean(np.abs(got - expected))) < 1e-4
    assert float(np.abs(got - expected).max()) < 2e-2


def test_region_agreement_finds_the_shake_in_both_halves_and_not_a_wrong_kernel(case) -> None:
    from deblurkit.kernel_aware.estimation import region_agreement

    _, blur, k_true = case
    right = region_agreement(blur, k_true, 1.0)
    wrong = region_agreement(blur, np.rot90(k_true).copy(), 1.0)
    assert right > 0.7 and wrong < right - 0.2
    # A kernel estimated at half resolution is re-estimated at that scale (halves of 64 x 128 px).
    assert 0.0 < region_agreement(blur, k_true, 2.0) <= 1.0
    assert math.isnan(region_agreement(blur[:40, :40], k_true, 1.0))
