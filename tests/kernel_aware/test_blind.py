"""The blind kernel-aware pipeline: improves a synthetic shake, leaves sharp photos alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import convolve

from deblurkit.color import linear_to_srgb, srgb_to_linear
from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.blind import (
    BlindParams,
    deblur_image,
    deblur_image_and_kernels,
    deconvolve_with_kernel,
    estimate_noise_sigma,
    estimate_tile_kernels,
    kernel_effective_support,
    trusting_every_kernel,
)
from deblurkit.kernel_aware.kernels import kernel_similarity
from deblurkit.synth.trajectory import random_shake_kernel


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


@pytest.fixture(scope="module")
def sharp_srgb() -> np.ndarray:
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    return img.astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def blurred(sharp_srgb):
    rng = np.random.default_rng(1)  # a shake the estimator recovers reliably (similarity ~0.98)
    k = random_shake_kernel(21, 14.0, rng)
    lin = srgb_to_linear(sharp_srgb)
    b = np.stack([convolve(lin[..., c], k, mode="reflect") for c in range(3)], -1)
    b = b + rng.normal(0, 0.002, b.shape)
    return linear_to_srgb(b), k


def test_blind_pipeline_improves_uniform_shake(sharp_srgb, blurred) -> None:
    blur, k_true = blurred
    calls: list[tuple[int, int]] = []
    res = deblur_image_and_kernels(blur, kernel_size=21, tiles=1, progress=lambda d, t: calls.append((d, t)))
    assert res.image.shape == blur.shape and res.image.dtype == np.float32
    assert res.image.min() >= 0 and res.image.max() <= 1
    assert res.blurred.shape == (1, 1) and res.blurred[0, 0]
    assert kernel_similarity(res.kernels[0, 0], k_true) > 0.9
    assert _psnr(res.image, sharp_srgb) > _psnr(blur, sharp_srgb) + 3.0
    assert calls and calls[-1][0] == calls[-1][1]


def test_sharp_photo_returned_unchanged(sharp_srgb) -> None:
    out = deblur_image_and_kernels(sharp_srgb, kernel_size=21, tiles=1)
    assert not out.blurred.any()
    assert np.array_equal(out.image, sharp_srgb)
    assert kernel_effective_support(out.kernels[0, 0]) == pytest.approx(1.0)


def test_agreement_is_measured_only_for_kernels_the_other_checks_pass(sharp_srgb) -> None:
    """A sharp photo's kernel is too small to deconvolve: its two re-estimates are skipped."""
    declined = estimate_tile_kernels(sharp_srgb, kernel_size=21, tiles=1, params=BlindParams(agreement=0.88))
    assert not declined.blurred[0, 0] and np.isnan(declined.scores[0][0]["agreement"])
    permissive = trusting_every_kernel(BlindParams(no_blur_support=0.0))
    measured = estimate_tile_kernels(sharp_srgb, kernel_size=21, tiles=1, params=permissive)
    assert 0.0 <= measured.scores[0][0]["agreement"] <= 1.0
    np.testing.assert_array_equal(declined.kernels, measured.kernels)


def test_tiles_cover_the_image_and_blend(sharp_srgb, blurred) -> None:
    """Per-tile decisions hold away from the border; the blend itself is tested seam-free in test_tiling."""
    blur, _ = blurred
    blur = np.concatenate([blur[:, :128], sharp_srgb[:, 128:]], axis=1)  # shaken left half, sharp right half
    # The half-width tile's kernel agrees at about 0.88, on the default threshold: the test is about
    # the tiles, not the threshold, so it uses a looser one.
    res = deblur_image_and_kernels(blur, kernel_size=21, tiles=(1, 2), params=BlindParams(agreement=0.8))
    assert res.kernels.shape[:2] == (1, 2) and res.kernels.shape[2] >= 21
    assert np.isfinite(res.image).all() and res.image.shape == blur.shape
    assert res.blurred.tolist() == [[True, False]]  # no blur found in the sharp half: left as it is
    change = np.abs(res.image - blur).mean(axis=(0, 2))  # per column
    assert change[:80].mean() > 5e-3 and change[176:].max() < 1e-4


def test_deblur_image_returns_array_and_keeps_grayscale_shape(blurred) -> None:
    blur, _ = blurred
    gray = blur.mean(axis=2)
    out = deblur_image(gray, kernel_size=21, tiles=1)
    assert out.shape == gray.shape


def test_srgb_roundtrip_and_noise_estimate(rng) -> None:
    x = rng.random((32, 32, 3)).astype(np.float32)
    assert np.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    flat = np.full((128, 128), 0.5) + rng.normal(0, 0.02, (128, 128))
    assert estimate_noise_sigma(flat) == pytest.approx(0.02, rel=0.15)


def test_errors() -> None:
    with pytest.raises(DeblurkitError, match="too small"):
        deblur_image(np.zeros((30, 30, 3), np.float32), kernel_size=31)
    with pytest.raises(DeblurkitError, match="input space"):
        deblur_image(np.zeros((100, 100, 3), np.float32), input_space="xyz")
    with pytest.raises(DeblurkitError, match="tiles"):
        deblur_image(np.zeros((100, 100, 3), np.float32), kernel_size=11, tiles=0)


def test_estimate_tile_kernels_matches_the_full_pipeline(blurred):
    """The estimation stage alone gives the kernels and flags the full pipeline deconvolves with."""
    blur, _ = blurred
    calls = []
    tk = estimate_tile_kernels(blur, kernel_size=25, tiles=(1, 2), progress=lambda d, t: calls.append((d, t)))
    full = deblur_image_and_kernels(blur, kernel_size=25, tiles=(1, 2))
    assert tk.kernels.shape[:2] == (1, 2) and tk.kernels.shape[2] >= 25
    np.testing.assert_array_equal(tk.blurred, full.blurred)
    if full.blurred.any():
        np.testing.assert_array_equal(tk.kernels[full.blurred], full.kernels[full.blurred])
    assert calls[-1] == (3, 3)  # one global estimate + two tiles
    assert [b - a for a, b in tk.xs] == [128, 128] and tk.scale > 0


def test_kernel_estimates_do_not_depend_on_the_thread_count(blurred):
    """Tiles are estimated in parallel threads; the kernels and flags must be identical to one thread."""
    blur, _ = blurred
    one = estimate_tile_kernels(blur, kernel_size=25, tiles=(1, 2), params=BlindParams(workers=1))
    calls = []
    many = estimate_tile_kernels(blur, kernel_size=25, tiles=(1, 2), params=BlindParams(workers=3),
                                 progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_array_equal(one.kernels, many.kernels)
    np.testing.assert_array_equal(one.blurred, many.blurred)
    assert [d for d, _ in calls] == [1, 2, 3] and {t for _, t in calls} == {3}


def test_texture_poor_tile_borrows_the_whole_image_kernel(blurred):
    """A flat tile has nothing to estimate from: it takes the whole image's kernel and flag."""
    blur, _ = blurred
    flat = blur.copy()
    flat[:, 128:] = blur[:, 128:].mean(axis=(0, 1))  # right half: one flat colour
    calls = []
    tk = estimate_tile_kernels(flat, kernel_size=21, tiles=(1, 2), progress=lambda d, t: calls.append((d, t)))
    whole = estimate_tile_kernels(flat, kernel_size=21, tiles=1)
    assert calls[-1] == (3, 3)  # two tiles + the global estimate
    assert tk.blurred[0, 1] == whole.blurred[0, 0]
    k_whole = whole.kernels[0, 0]
    size = tk.kernels.shape[-1]
    o = (size - k_whole.shape[0]) // 2
    np.testing.assert_array_equal(tk.kernels[0, 1, o:o + k_whole.shape[0], o:o + k_whole.shape[0]], k_whole)


def test_trust_thresholds_decide_which_kernels_are_deconvolved(blurred):
    """Permissive thresholds trust the kernel; an impossible agreement declines it (input unchanged)."""
    blur, _ = blurred
    trusting = estimate_tile_kernels(blur, kernel_size=21, tiles=1,
                                     params=trusting_every_kernel())
    assert trusting.blurred[0, 0]
    scores = trusting.scores[0][0]
    assert set(scores) >= {"consistency", "agreement", "overshoot", "support", "extent", "compactness", "connectedness",
                           "noise_sigma"}
    assert scores["support"] == pytest.approx(kernel_effective_support(trusting.kernels[0, 0]), rel=1e-5)
    default = estimate_tile_kernels(blur, kernel_size=21, tiles=1)
    np.testing.assert_array_equal(default.kernels, trusting.kernels)
    p = BlindParams()
    assert p.agreement is None and scores["scale"] == 1.0  # full resolution: the agreement is not read
    assert p.consistency is None  # nor the consistency
    assert default.blurred[0, 0] == (scores["overshoot"] <= p.accept_overshoot
                                     and scores["connectedness"] >= p.connectedness)
    # so their re-estimates were skipped (one hypothesis on this small image: nothing to choose)
    assert np.isnan(default.scores[0][0]["agreement"]) and np.isnan(default.scores[0][0]["consistency"])
    assert not np.isnan(scores["consistency"])  # measured where a study asks for it
    off = BlindParams(agreement=1.01, region_agreement=None)
    assert np.isnan(estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=off).scores[0][0]["region_agreement"])
    none = deblur_image_and_kernels(blur, kernel_size=21, tiles=1, params=off)
    assert not none.blurred.any() and np.array_equal(none.image, blur)


def test_half_image_agreement_overturns_a_decline_of_a_uniform_shake(blurred):
    """A kernel the other checks decline is deconvolved after all when both halves of the photo find it again."""
    blur, _ = blurred
    strict = BlindParams(agreement=1.01)  # declined by the other checks
    agreement = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=strict).scores[0][0]["region_agreement"]
    assert agreement >= strict.region_agreement  # the blur is uniform: both halves see the same shake
    res = deblur_image_and_kernels(blur, kernel_size=21, tiles=1, params=strict)
    assert res.blurred.all() and not np.array_equal(res.image, blur)
    stricter = deblur_image_and_kernels(blur, kernel_size=21, tiles=1,
                                        params=BlindParams(agreement=1.01, region_agreement=min(agreement + 0.01, 1.01)))
    assert not stricter.blurred.any()


def _joined_kernel(case: str) -> np.ndarray:
    """A second estimate as the join leaves it: a 24-px stroke below the cut, between two pauses
    (2 x 2 spots); the same stroke at constant speed split by a faint pixel; or in one piece."""
    k = np.zeros((31, 31))
    if case == "pauses":
        k[15, 4:28] = 0.1
        k[14:16, 2:4] = k[14:16, 28:30] = 1.0
    else:
        k[15, 4:28] = 1.0
        if case == "split":
            k[15, 15] = 0.1
    return k / k.sum()


@pytest.mark.parametrize(("case", "used"), [("pauses", True), ("split", False), ("one piece", False)])
def test_a_declined_kernel_is_estimated_again_with_its_pieces_joined(blurred, monkeypatch, case, used):
    """A declined kernel is estimated again with ``kernel_bridge``; the second is deconvolved only
    where the cut splits it, it has a pause and it passes the checks."""
    from deblurkit.kernel_aware import blind
    from deblurkit.kernel_aware.estimation import KernelEstimate

    blur, _ = blurred
    first = KernelEstimate(_joined_kernel("one piece"), 1.0, math.nan, 1.0, math.nan)  # rings: declined
    second = KernelEstimate(_joined_kernel(case), 1.0, math.nan, 0.0, math.nan)
    bridges: list[float | None] = []
    monkeypatch.setattr(blind, "estimate_kernel_auto",
                        lambda gray, **kw: bridges.append(kw["bridge"]) or (first if kw["bridge"] is None else second))
    monkeypatch.setattr(blind, "region_agreement", lambda *a, **kw: 0.0)
    found = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=BlindParams(encoded_fallback=None))
    assert bridges == [None, BlindParams().kernel_bridge]
    assert bool(found.blurred[0, 0]) == used and found.scores[0][0]["bridged"] == float(used)
    if used:
        assert np.array_equal(found.kernels[0, 0], second.kernel.astype(np.float32))
    bridges.clear()
    off = estimate_tile_kernels(blur, kernel_size=21, tiles=1,
                                params=BlindParams(kernel_bridge=None, encoded_fallback=None))
    assert bridges == [None] and not off.blurred.any()
    # A paused kernel that the checks decline stays declined.
    bridges.clear()
    strict = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=BlindParams(accept_overshoot=-1.0,
                                                                                     encoded_fallback=None))
    assert not strict.blurred.any() and strict.scores[0][0]["bridged"] == 0.0


@pytest.mark.parametrize("encoded_scale", [1.0, 2.0])
def test_the_estimate_on_encoded_values_skips_checks_of_kernels_it_discards(blurred, monkeypatch, encoded_scale):
    """On the encoded values only kernels found downscaled are kept: a full-resolution one gets
    neither the half-image re-estimates, the agreement's re-estimates nor the join, which could
    only overturn a decline; a downscaled one gets the same checks as in linear light."""
    from deblurkit.kernel_aware import blind
    from deblurkit.kernel_aware.estimation import KernelEstimate

    blur, _ = blurred
    kernel = np.zeros((31, 31))
    kernel[10:21, 4:28] = 1.0 / (11 * 24)  # long and wide enough to be checked at either scale
    calls: list[tuple[str, object, bool]] = []

    def fake_auto(gray, **kw):
        space = "linear" if len(calls) < 2 else "encoded"  # linear light: the estimate and its join
        scale = 1.0 if space == "linear" else encoded_scale
        calls.append((space, kw["bridge"], kw["agreement_wanted"](kernel, scale, 1.0, 0.0)))
        return KernelEstimate(kernel, scale, math.nan, 1.0, math.nan)  # rings: declined

    regions: list[float] = []
    monkeypatch.setattr(blind, "estimate_kernel_auto", fake_auto)
    monkeypatch.setattr(blind, "region_agreement", lambda gray, kernel, scale, **kw: regions.append(scale) or 0.0)
    # agreement=0.5: the agreement is measured at full resolution too (by default only downscaled).
    params = BlindParams(encoded_fallback=1.0, agreement=0.5)
    found = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=params)
    assert not found.blurred.any() and found.blur_space == "linear"
    linear = [("linear", None, True), ("linear", params.kernel_bridge, True)]
    if encoded_scale == 1.0:  # discarded: one estimate, no checks
        assert calls == [*linear, ("encoded", None, False)] and regions == [1.0]
    else:  # kept if it passes: its decline may be overturned; a join (full resolution) could not be kept
        assert calls == [*linear, ("encoded", None, True)] and regions == [1.0, 2.0]


def _report_kernels_as_found_downscaled(monkeypatch, factor: float) -> None:
    """The pipeline's estimates, unchanged, but reported as made on the image downscaled ``factor`` times."""
    import dataclasses

    from deblurkit.kernel_aware import blind

    real = blind.estimate_kernel_auto
    monkeypatch.setattr(blind, "estimate_kernel_auto",
                        lambda *a, **kw: dataclasses.replace(real(*a, **kw), scale=factor))


def test_half_image_agreement_skips_kernels_that_are_a_blob_where_they_were_estimated(blurred, monkeypatch):
    """The same kernel, reported as found on an image downscaled 3x: there it spans under 12 px², a
    blob both halves agree on whatever the blur, so the decline stands and no re-estimate is made."""
    from deblurkit.kernel_aware import blind

    blur, _ = blurred
    strict = BlindParams(agreement=1.01, agreement_downscaled=1.01)  # declined by the other checks
    found = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=strict).scores[0][0]
    assert found["support"] >= strict.no_blur_support > found["support"] / 9
    assert found["region_agreement"] >= strict.region_agreement  # at full resolution it is overturned

    _report_kernels_as_found_downscaled(monkeypatch, 3.0)
    calls: list[float] = []
    monkeypatch.setattr(blind, "region_agreement", lambda *a, **kw: calls.append(1.0) or 1.0)
    coarse = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=strict)
    assert np.isnan(coarse.scores[0][0]["region_agreement"]) and not coarse.blurred.any() and not calls


def test_a_kernel_that_is_a_blob_where_it_was_estimated_is_not_deconvolved(blurred, monkeypatch):
    """Every check passes, and the kernel spans more than a delta at full resolution; reported as
    found on an image downscaled 3x, where it spans under ``no_blur_support``, it is declined."""
    blur, _ = blurred
    trust = trusting_every_kernel(BlindParams(region_agreement=None))
    full = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=trust)
    assert full.blurred.all() and full.scores[0][0]["support"] / 9 < trust.no_blur_support

    _report_kernels_as_found_downscaled(monkeypatch, 3.0)
    coarse = estimate_tile_kernels(blur, kernel_size=21, tiles=1, params=trust)
    assert not coarse.blurred.any()
    assert coarse.scores[0][0]["support"] == pytest.approx(full.scores[0][0]["support"])


def test_clipped_highlights_are_deconvolved_like_the_rest(blurred) -> None:
    blur_srgb, _ = blurred
    img = blur_srgb.copy()
    img[100:110, 100:110] = 1.0  # a clipped light
    trust_all = trusting_every_kernel()
    res = deblur_image_and_kernels(img, tiles=1, params=trust_all)
    assert res.blurred.all()
    k = res.kernels[0, 0]
    expected = linear_to_srgb(deconvolve_with_kernel(srgb_to_linear(img), k, trust_all))
    # Around the light too, the output is the deconvolution (not the blurry input).
    np.testing.assert_allclose(res.image[90:120, 90:120], np.clip(expected[90:120, 90:120], 0, 1), atol=2e-3)
    assert np.abs(res.image[90:120, 90:120] - img[90:120, 90:120]).max() > 0.05


@pytest.mark.parametrize(("encoded_scale", "fallback", "input_space", "linear_support", "used"), [
    (2.0, 1.0, "srgb", 50.0, True),     # a large blur found on the encoded values: deconvolved there
    (1.0, 1.0, "srgb", 50.0, False),    # a small one is not trusted in that space
    (2.0, None, "srgb", 50.0, False),   # the second estimate is off
    (2.0, 1.0, "linear", 50.0, False),  # the caller says the values are linear light: nothing to re-read
    (2.0, 1.0, "srgb", 6.0, False),     # linear light shows no blur (a near-delta): a sharp photo
])
def test_a_photo_declined_in_linear_light_is_estimated_again_on_its_encoded_values(
        sharp_srgb, blurred, monkeypatch, encoded_scale, fallback, input_space, linear_support, used):
    """Blur made on the sRGB-encoded values (not a convolution of linear light): where every
    linear-light kernel is declined but one is longer than a delta, the kernels are estimated on
    the encoded values and a large one found there is deconvolved there, so the output is not
    re-encoded."""
    from deblurkit.kernel_aware import blind

    _, k = blurred
    blur = np.stack([convolve(sharp_srgb[..., c], k, mode="reflect") for c in range(3)], -1).astype(np.float32)
    seen: list[str] = []
    runs: list[object] = []

    def fake_estimate(prep, p, tick, min_scale=0.0, network=None):
        # The first estimate of a run is declined; a second one is trusted if its kernel is large.
        second = bool(runs) and runs[-1] is tick
        assert min_scale == (p.encoded_fallback if second else 0.0)
        runs.append(tick)
        seen.append("encoded" if np.allclose(prep.lin, blur) else "linear light")
        tick()
        trusted = second and encoded_scale > p.encoded_fallback
        scores = [[{"scale": encoded_scale, "support": 50.0} if second else {"scale": 1.0, "support": linear_support}]]
        return k.astype(np.float32)[None, None], np.array([[trusted]]), 0.002, scores

    monkeypatch.setattr(blind, "_estimate", fake_estimate)
    params = BlindParams(encoded_fallback=fallback)
    res = deblur_image_and_kernels(blur, kernel_size=21, tiles=1, input_space=input_space, params=params)
    found = estimate_tile_kernels(blur, kernel_size=21, tiles=1, input_space=input_space, params=params)
    second = input_space == "srgb" and fallback is not None and linear_support >= BlindParams().no_blur_support
    if second:  # linear light first, then the photo's own values
        assert seen == ["linear light", "encoded"] * 2
    else:
        assert seen == ["encoded" if input_space == "linear" else "linear light"] * 2
    assert bool(res.blurred.any()) == used == bool(found.blurred.any())
    assert res.params["blur_space"] == found.blur_space == ("srgb" if used else "linear")
    if used:
        # Deconvolved on the encoded values and not encoded again (that would brighten it).
        assert abs(float(res.image.mean()) - float(blur.mean())) < 0.01
        assert _psnr(res.image, sharp_srgb) > _psnr(blur, sharp_srgb) + 3.0
    else:
        assert np.array_equal(res.image, blur)
