"""Non-blind deconvolution: physics checks on a synthetic blur with the true kernel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.deconv import (
    circular_diff,
    circular_diff_adjoint,
    convolve_fft,
    hyper_laplacian_deconv,
    richardson_lucy_deconv,
    wiener_deconv,
)

FUNCS = [wiener_deconv, richardson_lucy_deconv, hyper_laplacian_deconv]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from skimage import data

    sharp = (data.astronaut()[80:272, 120:312].astype(np.float32) / 255.0) ** 2.2
    k = np.zeros((15, 15))
    k[7, 2:13] = 1.0
    k[4:8, 12] = 1.0
    k /= k.sum()
    # Blur with reflective borders (not circular): the deconvolution must cope with real edges.
    blur = np.stack([convolve(sharp[..., c], k, mode="reflect") for c in range(3)], -1)
    blur = blur + np.random.default_rng(0).normal(0, 0.003, blur.shape)
    return sharp, blur.astype(np.float32), k


@pytest.mark.parametrize("func", FUNCS)
def test_true_kernel_improves_psnr(scene, func) -> None:
    sharp, blur, k = scene
    out = func(blur, k)
    assert out.shape == blur.shape and out.dtype == np.float32
    assert _psnr(out, sharp) > _psnr(blur, sharp) + 4.0


@pytest.mark.parametrize("func", FUNCS)
def test_no_wraparound_ringing_at_borders(scene, func) -> None:
    sharp, blur, k = scene
    out = func(blur, k)
    band = 12
    border = np.ones(sharp.shape[:2], bool)
    border[band:-band, band:-band] = False
    err_border = np.mean((np.clip(out, 0, 1) - sharp)[border] ** 2)
    err_blur_border = np.mean((blur - sharp)[border] ** 2)
    assert err_border < err_blur_border  # borders get better too, not worse


@pytest.mark.parametrize("func", FUNCS)
def test_delta_kernel_is_identity(scene, func) -> None:
    sharp, _, _ = scene
    out = func(sharp, np.ones((1, 1)))
    assert _psnr(out, sharp) > 40.0


def test_grayscale_2d_shape_kept(scene) -> None:
    _, blur, k = scene
    out = hyper_laplacian_deconv(blur[..., 0], k)
    assert out.shape == blur.shape[:2]


def test_convolve_fft_matches_direct_convolution_in_interior(rng) -> None:
    img = rng.random((40, 50)).astype(np.float32)
    k = rng.random((5, 7))
    k /= k.sum()
    direct = convolve(img, k, mode="wrap")
    assert np.allclose(convolve_fft(img, k), direct, atol=1e-5)


def test_bad_inputs_raise() -> None:
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(DeblurkitError, match="kernel"):
        wiener_deconv(img, np.zeros((3, 3)))
    with pytest.raises(DeblurkitError, match="alpha"):
        hyper_laplacian_deconv(img, np.ones((3, 3)), alpha=1.5)
    with pytest.raises(DeblurkitError, match="shape"):
        richardson_lucy_deconv(np.zeros(5, np.float32), np.ones((3, 3)))


def test_shrink_matches_numpys_interpolation_and_is_odd() -> None:
    from deblurkit.kernel_aware.deconv import _shrink, _shrink_lut

    rng = np.random.default_rng(3)
    for vmax, beta in ((1e-3 + 1e-6, 1.0), (0.37, 8.0), (2.5, 181.0)):
        grid, vals = _shrink_lut(0.8, beta, vmax)
        x = np.minimum(np.abs(rng.normal(0, vmax / 4, 50_000)), vmax).astype(np.float32)
        x = np.concatenate([x, grid.astype(np.float32), [0.0, np.float32(vmax)]])  # grid points, both ends
        x = x[x <= grid[-1]]
        w = _shrink(x, (grid, vals))
        assert w.dtype == np.float32
        # Single-precision positions are off by up to 2.5e-4 of an interval (4,095 intervals),
        # which matters only in the steep interval of the jump to zero.
        j = np.minimum(np.searchsorted(grid, x, side="right") - 1, len(grid) - 2)
        step = np.abs(vals[j + 1] - vals[j])
        assert (np.abs(w - np.interp(x, grid, vals)) <= 1e-6 * vmax + 5e-4 * step).all()
        assert np.array_equal(_shrink(-x, (grid, vals)), -w)
        assert (w[x < 0.5 / np.sqrt(beta)] == 0).any()  # small gradients are set to zero


@pytest.mark.parametrize("shape", [(9, 13), (9, 13, 3)])
def test_circular_diff_wraps_around_and_its_adjoint_is_exact(shape):
    rng = np.random.default_rng(0)
    x, wx, wy = (rng.standard_normal(shape) for _ in range(3))
    h, v = circular_diff(x)
    assert h[2, -1] == pytest.approx(x[2, 0] - x[2, -1]) and v[-1, 4] == pytest.approx(x[0, 4] - x[-1, 4])
    # <D x, w> = <x, D^T w>
    assert np.sum(h * wx) + np.sum(v * wy) == pytest.approx(np.sum(x * circular_diff_adjoint(wx, wy)))


def test_shift_translates_the_result_exactly() -> None:
    from skimage import data

    img = data.camera()[100:228, 100:228].astype(np.float32) / 255.0
    k = np.zeros((7, 7))
    k[3, 1:6] = 0.2
    blur = convolve(img, k, mode="reflect")
    base = hyper_laplacian_deconv(blur, k)
    moved = hyper_laplacian_deconv(blur, k, shift=(2.0, -3.0))
    # Content at p moves to p + shift: compare away from the borders, where the wrap differs.
    np.testing.assert_allclose(moved[20:-20, 20:-20], base[18:-22, 23:-17], atol=1e-4)


def test_centroid_shift_recovers_a_centroid_centred_scene() -> None:
    """A kernel whose centroid is a fraction of a pixel off its centre pixel: with
    ``shift=kernel_centroid_offset(k)`` the result lines up with the scene blurred about the
    kernel's centroid (the convention of the synthesis), without it half a pixel off."""
    import scipy.fft
    from skimage import data

    from deblurkit.kernel_aware.deconv import fourier_shift_ramp
    from deblurkit.kernel_aware.kernels import kernel_centroid_offset

    img = data.camera().astype(np.float32) / 255.0
    k = np.zeros((9, 9))
    k[4, 2:7] = [0.1, 0.3, 0.3, 0.2, 0.1]
    k[3, 6] = 0.15
    k /= k.sum()
    dy, dx = kernel_centroid_offset(k)
    assert abs(dy) > 0.1 and abs(dx) > 0.1 and abs(dy) < 0.5 and abs(dx) < 0.5
    scene_about_centroid = scipy.fft.irfft2(scipy.fft.rfft2(img) * fourier_shift_ramp(img.shape, (-dy, -dx)),
                                            s=img.shape)
    blur = convolve_fft(scene_about_centroid.astype(np.float32), k)
    centred = hyper_laplacian_deconv(blur, k, shift=(dy, dx))
    plain = hyper_laplacian_deconv(blur, k)
    inner = (slice(20, -20), slice(20, -20))
    assert _psnr(centred[inner], img[inner]) > _psnr(plain[inner], img[inner]) + 0.3
