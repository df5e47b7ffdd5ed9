"""Trajectories, PSF rendering and blur operators: physics, not just shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deblurkit.synth import blur, trajectory


def centroid(k: torch.Tensor) -> tuple[float, float]:
    n = k.shape[-1]
    r = torch.arange(n, dtype=torch.float64)
    kk = k.double()
    return float((kk.sum(0) * r).sum()), float((kk.sum(1) * r).sum())  # (x, y)


@pytest.mark.parametrize("seed", range(5))
def test_random_walk_kernels_sum_to_one_and_are_centred(seed):
    gen = torch.Generator().manual_seed(seed)
    xy = trajectory.shake_trajectory_2d(25.0, gen, anxiety=0.08)
    steps = (xy[1:] - xy[:-1]).norm(dim=1)
    assert abs(float(steps.sum()) - 25.0) < 1e-6  # path length is the exposure length
    k = blur.render_psf(xy)
    assert abs(float(k.sum()) - 1) < 1e-6 and float(k.min()) >= 0
    c = k.shape[-1] // 2
    cx, cy = centroid(k)
    assert abs(cx - c) < 1e-4 and abs(cy - c) < 1e-4


def test_psf_is_sub_pixel_accurate():
    k = blur.render_psf(torch.tensor([[0.3, -0.25]]), kernel_size=5, align_centroid=False)
    # Bilinear splat of a point at (+0.3, -0.25) from the centre (2, 2).
    assert torch.allclose(k[2, 2], torch.tensor(0.7 * 0.75), atol=1e-6)
    assert torch.allclose(k[2, 3], torch.tensor(0.3 * 0.75), atol=1e-6)
    assert torch.allclose(k[1, 2], torch.tensor(0.7 * 0.25), atol=1e-6)
    assert torch.allclose(k[1, 3], torch.tensor(0.3 * 0.25), atol=1e-6)
    cx, cy = centroid(k)
    assert abs(cx - 2.3) < 1e-6 and abs(cy - 1.75) < 1e-6


def test_straight_kernel_has_requested_length():
    k = blur.render_psf(trajectory.linear_trajectory_2d(10.0, 0.0))
    row = k.sum(0)
    support = (row > 1e-6).nonzero().flatten()
    assert 9 <= int(support[-1] - support[0]) <= 12
    assert float(k.sum(1).max()) > 0.99  # all mass on one row: horizontal


def test_zero_length_trajectory_is_identity():
    x = torch.rand(2, 3, 32, 40)
    k = blur.render_psf(torch.zeros(64, 2))
    assert k.shape == (3, 3) and float(k[1, 1]) == 1.0
    assert torch.allclose(blur.convolve_fft(x, k[None, None]), x, atol=1e-5)
    homs = trajectory.rotation_homographies(torch.zeros(8, 3), 100.0, (32, 40))
    assert torch.allclose(blur.warp_average(x, [homs, homs]), x, atol=1e-5)


def test_fft_convolution_matches_direct_convolution_and_does_not_wrap():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 40, 48, generator=gen)
    k = blur.render_psf(trajectory.shake_trajectory_2d(9.0, gen))
    kk = k.shape[-1]
    y = blur.convolve_fft(x, k[None, None])
    # True convolution = correlation with the flipped kernel.
    ref = F.conv2d(F.pad(x, [kk // 2] * 4, mode="reflect"), k.flip(0, 1).expand(3, 1, kk, kk), groups=3)
    assert torch.allclose(y, ref, atol=1e-5)
    # A bright line at the left border must not leak to the right border.
    img = torch.zeros(1, 1, 32, 64)
    img[..., 1] = 1.0
    line = blur.render_psf(trajectory.linear_trajectory_2d(12.0, 0.0))
    out = blur.convolve_fft(img, line[None, None])
    assert float(out[..., -8:].abs().max()) < 1e-5
    assert abs(float(out.sum()) - float(img.sum())) / float(img.sum()) < 0.2


def test_pure_yaw_blurs_horizontally_by_focal_times_angle():
    h = w = 129
    f, theta = 200.0, 0.1  # expected extent f * theta = 20 px
    img = torch.zeros(1, 1, h, w)
    img[..., 64, 64] = 1.0
    n = 41
    angles = torch.zeros(n, 3, dtype=torch.float64)
    angles[:, 0] = torch.linspace(-theta / 2, theta / 2, n, dtype=torch.float64)
    homs = trajectory.rotation_homographies(angles, f, (h, w))
    out = blur.warp_average(img.expand(1, 3, h, w).contiguous(), [homs])[0, 0]
    cols = (out.sum(0) > 1e-4).nonzero().flatten()
    rows = (out.sum(1) > 1e-4).nonzero().flatten()
    extent_x = int(cols[-1] - cols[0])
    assert abs(extent_x - f * math.tan(theta / 2) * 2) <= 2
    assert int(rows[-1] - rows[0]) <= 2  # no vertical smear at the centre (interpolation: +-1 px)
    assert float(out[64].sum()) > 0.9
    assert abs(float(out.sum()) - 1.0) < 1e-2  # energy preserved (up to perspective stretch)
    # Path length is the maximum over centre and corners; corners move more under yaw (perspective).
    centre_path = f * 2 * math.tan(theta / 2)
    assert centre_path <= trajectory.homography_path_length(homs, (h, w)) <= 1.2 * centre_path


def test_roll_blur_is_spatially_varying():
    h = w = 96
    angles = torch.zeros(17, 3, dtype=torch.float64)
    angles[:, 2] = torch.linspace(-0.1, 0.1, 17, dtype=torch.float64)
    homs = trajectory.rotation_homographies(angles, 100.0, (h, w))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=gen)
    out = blur.warp_average(x, [homs])
    diff = (out - x).abs().mean(dim=(0, 1))
    centre, corner = float(diff[40:56, 40:56].mean()), float(diff[:16, :16].mean())
    assert corner > 2 * centre  # rotation about the centre blurs the corners more


def test_random_walk_is_deterministic_given_the_generator():
    a = trajectory.random_walk(32, 3, torch.Generator().manual_seed(7), anxiety=0.1)
    b = trajectory.random_walk(32, 3, torch.Generator().manual_seed(7), anxiety=0.1)
    c = trajectory.random_walk(32, 3, torch.Generator().manual_seed(8), anxiety=0.1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_resample_trajectory_keeps_endpoints():
    t = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]], dtype=torch.float64)
    r = trajectory.resample_trajectory(t, 5)
    assert torch.allclose(r[0], t[0]) and torch.allclose(r[-1], t[-1]) and torch.allclose(r[2], t[1])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-12, 12, allow_nan=False), st.floats(-12, 12, allow_nan=False)),
        min_size=1,
        max_size=12,
    )
)
def test_any_trajectory_renders_a_normalised_centred_kernel(points):
    k = blur.render_psf(torch.tensor(points, dtype=torch.float64))
    assert abs(float(k.sum()) - 1) < 1e-5 and float(k.min()) >= 0
    c = k.shape[-1] // 2
    cx, cy = centroid(k)
    assert abs(cx - c) < 1e-3 and abs(cy - c) < 1e-3


def test_sixteen_bit_warping_matches_float_warping():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 40, 40, generator=gen) * 2.5  # saturated linear values exceed 1
    angles = trajectory.rotation_trajectory(12.0, 60.0, (40, 40), gen)
    homs = trajectory.rotation_homographies(angles, 60.0, (40, 40))
    fast = blur.warp_average(x, [homs], quantize=True)
    exact = blur.warp_average(x, [homs], quantize=False)
    assert float((fast - exact).abs().max()) < 2.5 / 65535 * 2


def test_centered_psf_puts_the_centroid_in_the_middle_of_an_odd_square():
    from deblurkit.synth.blur import centered_psf

    psf = np.zeros((6, 10))
    psf[1, 2:8] = 2.0  # a 6-px stroke, off-centre, in an even-sized array
    psf[4, 0] = -1.0  # negative noise of a measurement is dropped
    k = centered_psf(psf).numpy()
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert np.isclose(k.sum(), 1.0) and k.min() >= 0
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    c = k.shape[0] // 2
    assert abs((k * yy).sum() - c) <= 0.5 + 1e-5 and abs((k * xx).sum() - c) <= 0.5 + 1e-5
    assert np.count_nonzero(k) == 6


def test_centered_psf_rejects_what_is_not_a_psf():
    from deblurkit.synth.blur import centered_psf

    for bad in (np.zeros((5, 5)), np.ones((3, 3, 3)), np.full((3, 3), np.nan)):
        with pytest.raises(ValueError):
            centered_psf(bad)


def test_psf_bank_reads_npy_and_16_bit_png_sorted_and_names_a_bad_file(tmp_path):
    import cv2

    from deblurkit.synth.blur import load_psf_bank

    a = np.zeros((5, 5), np.uint16)
    a[2, 1:4] = 65535
    cv2.imwrite(str(tmp_path / "b_line.png"), a)
    np.save(tmp_path / "a_dot.npy", np.ones((1, 1)))
    (tmp_path / "notes.txt").write_text("not a PSF")
    bank = load_psf_bank(str(tmp_path))
    assert [name for name, _ in bank] == ["a_dot.npy", "b_line.png"]
    assert bank[0][1].numpy().tolist() == [[1.0]]
    assert np.allclose(bank[1][1].numpy(), [[0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 0]])
    np.save(tmp_path / "c_empty.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="c_empty.npy"):
        load_psf_bank(str(tmp_path))
    (tmp_path / "c_empty.npy").unlink()
    cv2.imwrite(str(tmp_path / "d_colour.png"), np.full((3, 3, 3), 200, np.uint8))
    with pytest.raises(ValueError, match="d_colour.png.*grayscale"):
        load_psf_bank(str(tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        load_psf_bank(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        load_psf_bank(str(tmp_path / "empty"))
