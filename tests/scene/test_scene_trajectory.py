"""se(3) maps, Bézier exposure trajectories and blur synthesis."""

from __future__ import annotations

import math

import pytest
import torch

from deblurkit.scene.gaussians import Gaussians
from deblurkit.scene.render import Intrinsics, render
from deblurkit.scene.trajectory import (
    ExposureTrajectories,
    average_linear_to_srgb,
    bernstein_basis,
    rigid_inverse,
    se3_exp,
    se3_log,
    so3_exp,
)
from deblurkit.synth.color import linear_to_srgb


def _twist_matrix(xi: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(*xi.shape[:-1], 4, 4, dtype=xi.dtype)
    w = xi[..., 3:]
    m[..., 0, 1], m[..., 0, 2], m[..., 1, 2] = -w[..., 2], w[..., 1], -w[..., 0]
    m[..., 1, 0], m[..., 2, 0], m[..., 2, 1] = w[..., 2], -w[..., 1], w[..., 0]
    m[..., :3, 3] = xi[..., :3]
    return m


def test_se3_exp_equals_matrix_exponential_small_and_large_angles() -> None:
    gen = torch.Generator().manual_seed(0)
    xi = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    xi[:20, 3:] *= 1e-3  # series branch
    xi[20:, 3:] *= 1.0  # exact branch
    torch.testing.assert_close(se3_exp(xi), torch.linalg.matrix_exp(_twist_matrix(xi)))
    r = se3_exp(xi)[:, :3, :3]
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(40, 3, 3))
    assert torch.allclose(torch.linalg.det(r), torch.ones(40, dtype=torch.float64))


def test_se3_exp_zero_is_identity_with_finite_gradient() -> None:
    xi = torch.zeros(6, requires_grad=True)
    m = se3_exp(xi)
    torch.testing.assert_close(m, torch.eye(4))
    (m * torch.arange(16.0).reshape(4, 4)).sum().backward()
    assert torch.isfinite(xi.grad).all() and xi.grad.abs().sum() > 0


def test_se3_log_inverts_exp_and_inverse_composes_to_identity() -> None:
    gen = torch.Generator().manual_seed(1)
    xi = torch.randn(30, 6, generator=gen, dtype=torch.float64)
    xi[:, 3:] *= 0.8
    xi[:10, 3:] *= 1e-5
    torch.testing.assert_close(se3_log(se3_exp(xi)), xi)
    m = se3_exp(xi)
    torch.testing.assert_close(rigid_inverse(m) @ m, torch.eye(4, dtype=torch.float64).expand(30, 4, 4))
    torch.testing.assert_close(se3_exp(-xi), rigid_inverse(m))
    near_pi = torch.tensor([[0.1, 0.2, 0.3, 0.0, 0.0, math.pi - 1e-5]], dtype=torch.float64)
    torch.testing.assert_close(so3_exp(se3_log(se3_exp(near_pi))[:, 3:]), se3_exp(near_pi)[:, :3, :3])


def test_bernstein_partition_of_unity_and_endpoints() -> None:
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    b = bernstein_basis(t, 9)
    torch.testing.assert_close(b.sum(-1), torch.ones(11, dtype=torch.float64))
    assert b[0, 0] == 1 and b[-1, -1] == 1


def test_trajectory_times_sorted_with_fixed_ends_and_start_at_given_pose() -> None:
    traj = ExposureTrajectories(3, order=4, num_subframes=6, dtype=torch.float64)
    with torch.no_grad():
        traj.inner_times[0] = torch.tensor([0.9, -0.2, 0.5, 1.4], dtype=torch.float64)
        traj.control.normal_(generator=torch.Generator().manual_seed(0))
    t = traj.times().detach()
    assert torch.equal(t[:, 0], torch.zeros(3, dtype=torch.float64))
    assert torch.equal(t[:, -1], torch.ones(3, dtype=torch.float64))
    assert bool((t[:, 1:] >= t[:, :-1]).all()) and float(t.min()) >= 0 and float(t.max()) <= 1
    given = se3_exp(torch.randn(3, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    poses = traj.world_to_camera(given)
    assert poses.shape == (3, 6, 4, 4)
    torch.testing.assert_close(poses[:, 0], given)  # c_0 = 0 and no alignment yet
    assert not torch.allclose(poses[:, -1], given)
    assert float(traj.smoothness().detach()) > 0


def test_identity_trajectory_reproduces_the_sharp_render() -> None:
    gen = torch.Generator().manual_seed(2)
    g = 30
    gs = Gaussians(
        means=torch.cat([torch.rand(g, 2, generator=gen) - 0.5, 2 + torch.rand(g, 1, generator=gen)], dim=1),
        log_scales=torch.full((g, 3), math.log(0.08)),
        quats=torch.randn(g, 4, generator=gen),
        opacity_logits=torch.randn(g, generator=gen),
        sh0=torch.randn(g, 3, generator=gen),
    )
    intr = Intrinsics(16.0, 16.0, 8.0, 8.0, 16, 16)
    traj = ExposureTrajectories(1, order=3, num_subframes=5)
    poses = traj.world_to_camera(torch.eye(4)[None])[0]
    blurry = average_linear_to_srgb(render(gs, poses, intr, tile=8).image)
    sharp = linear_to_srgb(render(gs, torch.eye(4), intr, tile=8).image[0].clamp(0, 1))
    torch.testing.assert_close(blurry, sharp, atol=1e-5, rtol=1e-5)
    # a moving trajectory blurs: the result differs and gradients reach control points and times
    with torch.no_grad():
        traj.control[0, -1, 3:] = torch.tensor([0.0, 0.2, 0.0])
    poses = traj.world_to_camera(torch.eye(4)[None])[0]
    moved = average_linear_to_srgb(render(gs, poses, intr, tile=8).image)
    assert (moved - sharp).abs().mean() > 1e-3
    moved.square().mean().backward()
    assert traj.control.grad.abs().sum() > 0 and traj.inner_times.grad.abs().sum() > 0


def test_trajectory_error_is_zero_for_the_truth_and_its_reversal() -> None:
    from deblurkit.scene.trajectory import trajectory_error

    gen = torch.Generator().manual_seed(3)
    base = se3_exp(torch.randn(6, generator=gen, dtype=torch.float64))
    t = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    xi = t * torch.tensor([0.01, 0.0, 0.02, 0.0, 0.03, 0.01], dtype=torch.float64)
    true = se3_exp(xi) @ base
    assert trajectory_error(true, true) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert trajectory_error(true.flip(0), true) == pytest.approx((0.0, 0.0), abs=1e-6)
    # a static estimate is off by the motion itself; a shifted estimate by its own mid pose
    still = base[None].expand(9, 4, 4)
    rot, _ = trajectory_error(still, true)
    expected = float(torch.rad2deg(xi[:, 3:].norm(dim=-1)).mean())
    assert rot == pytest.approx(expected, rel=1e-6)
    shifted = true @ se3_exp(torch.tensor([0.3, 0, 0, 0, 0.2, 0], dtype=torch.float64))
    assert trajectory_error(shifted, true)[0] < 1e-6


def test_trajectory_set_error_ignores_order_and_speed_but_not_the_path() -> None:
    from deblurkit.scene.trajectory import trajectory_set_error

    t = torch.linspace(-1, 1, 33, dtype=torch.float64)[:, None]
    step = torch.tensor([0.01, 0.0, 0.02, 0.0, 0.03, 0.01], dtype=torch.float64)
    true = se3_exp(t * step)
    faster = se3_exp(torch.sign(t) * t.abs() ** 0.5 * step)  # same path, other speed profile
    assert trajectory_set_error(true.flip(0), true)[0] == pytest.approx(0.0, abs=1e-6)
    rot_speed, _ = trajectory_set_error(faster, true)
    rot_still, _ = trajectory_set_error(torch.eye(4, dtype=torch.float64)[None].expand(5, 4, 4), true)
    assert rot_speed < 0.1 * rot_still


def test_mid_anchor_keeps_the_mid_pose_at_the_aligned_given_pose() -> None:
    gen = torch.Generator().manual_seed(4)
    given = se3_exp(torch.randn(2, 6, generator=gen, dtype=torch.float64))
    mid = ExposureTrajectories(2, order=4, num_subframes=7, dtype=torch.float64, anchor="mid")
    start = ExposureTrajectories(2, order=4, num_subframes=7, dtype=torch.float64)
    with torch.no_grad():
        for traj in (mid, start):
            traj.control.copy_(0.1 * torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
            traj.alignment.copy_(0.05 * torch.randn(2, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64))
    half = torch.full((2, 1), 0.5, dtype=torch.float64)
    aligned = se3_exp(mid.alignment.detach()) @ given
    torch.testing.assert_close(mid.world_to_camera(given, None, half)[:, 0].detach(), aligned)
    assert not torch.allclose(start.world_to_camera(given, None, half)[:, 0].detach(), aligned)
    torch.testing.assert_close(start.world_to_camera(given)[:, 0].detach(), aligned)  # start anchor: t = 0
    # a common shift of all control points moves the start-anchored mid pose, not the mid-anchored one
    with torch.no_grad():
        mid.control += 0.2
    torch.testing.assert_close(mid.world_to_camera(given, None, half)[:, 0].detach(), aligned)
    with pytest.raises(ValueError, match="anchor"):
        ExposureTrajectories(1, anchor="end")  # type: ignore[arg-type]
