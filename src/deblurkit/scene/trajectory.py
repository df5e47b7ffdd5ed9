"""Camera motion during an exposure: se(3) maps, Bézier trajectories, blur synthesis.

A blurry view is modelled as the average, in linear light, of ``N`` sharp renders from poses
along a smooth curve over the exposure; the camera's gamma (sRGB) is applied after averaging.
Each view's curve is a Bézier curve of order ``n`` in se(3),

    xi(t) = sum_{i=0..n} binom(n, i) t^i (1 - t)^(n - i) c_i,   c_0 = 0,

and the sub-frame world-to-camera poses are ``exp(xi(t_k)) @ exp(a) @ P`` where ``P`` is the
given (initial) pose of the view and ``a`` a learnable alignment of the curve's start (the given
pose of a blurry photo is usually close to its mid-exposure pose, not its start). Sub-frame
times ``t_k`` are learnable, kept sorted and clamped to [0, 1], with ``t_0 = 0`` and ``t_{N-1} = 1``.

With ``anchor="mid"`` the curve is taken relative to its value at ``t = 0.5``
(``exp(xi(t_k) - xi(0.5)) @ exp(a) @ P``): the control points then encode only the shape of the
motion and ``a`` alone the offset of the mid-exposure pose from the given one. With the start
anchor, a shift of the whole trajectory is spread over ``a`` and every control point, so an
optimiser that normalises each parameter's step (Adam) moves the mid pose several times faster
than the shape, and it drifts away from the given pose.

se(3) vectors are ``(rho, omega)``: translation part first, then the rotation vector (radians).

References:
    Oh, Chung, Lee, Lee, "DeblurGS: Gaussian Splatting for Camera Motion Blur", arXiv 2404.11358;
    Barfoot, "State Estimation for Robotics" (2017), section 7.1 (SE(3) exponential and logarithm).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from deblurkit.synth.color import linear_to_srgb

TrajectoryAnchor = Literal["start", "mid"]
_SMALL_ANGLE2 = 1e-2  # below this squared angle the series expansions are used


def _hat(w: Tensor) -> Tensor:
    """``(..., 3) -> (..., 3, 3)`` skew-symmetric cross-product matrices."""
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*w.shape[:-1], 3, 3)


def _exp_coefficients(theta2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``sin(t)/t, (1 - cos t)/t^2, (t - sin t)/t^3`` of ``t = sqrt(theta2)``, smooth at 0."""
    small = theta2 < _SMALL_ANGLE2
    t2 = torch.where(small, torch.ones_like(theta2), theta2)  # safe branch for the exact formulas
    t = t2.sqrt()
    a_exact, b_exact, c_exact = torch.sin(t) / t, (1 - torch.cos(t)) / t2, (t - torch.sin(t)) / (t2 * t)
    s = theta2
    a_series = 1 - s / 6 * (1 - s / 20 * (1 - s / 42))
    b_series = 0.5 * (1 - s / 12 * (1 - s / 30 * (1 - s / 56)))
    c_series = (1 - s / 20 * (1 - s / 42 * (1 - s / 72))) / 6
    return (torch.where(small, a_series, a_exact), torch.where(small, b_series, b_exact),
            torch.where(small, c_series, c_exact))


def so3_exp(omega: Tensor) -> Tensor:
    """Rotation matrices ``(..., 3, 3)`` of rotation vectors ``(..., 3)`` (Rodrigues), differentiable at 0."""
    a, b, _ = _exp_coefficients((omega * omega).sum(-1))
    k = _hat(omega)
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def se3_exp(xi: Tensor) -> Tensor:
    """Rigid transforms ``(..., 4, 4)`` of twists ``(..., 6) = (rho, omega)``; ``se3_exp(0)`` is the identity.

    Args:
        xi: ``(..., 6)`` twists, float32 or float64.

    Returns:
        ``(..., 4, 4)`` homogeneous matrices ``[[R, V rho], [0, 1]]``.
    """
    rho, omega = xi[..., :3], xi[..., 3:]
    a, b, c = _exp_coefficients((omega * omega).sum(-1))
    k = _hat(omega)
    k2 = k @ k
    eye = torch.eye(3, dtype=xi.dtype, device=xi.device)
    rot = eye + a[..., None, None] * k + b[..., None, None] * k2
    v = eye + b[..., None, None] * k + c[..., None, None] * k2
    t = (v @ rho[..., None])[..., 0]
    top = torch.cat([rot, t[..., None]], dim=-1)
    bottom = torch.zeros(*xi.shape[:-1], 1, 4, dtype=xi.dtype, device=xi.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def so3_log(rot: Tensor) -> Tensor:
    """Rotation vectors ``(..., 3)`` of rotation matrices ``(..., 3, 3)`` (angles in [0, pi])."""
    cos = ((rot[..., 0, 0] + rot[..., 1, 1] + rot[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0)
    theta = torch.acos(cos)
    vee = torch.stack([rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0], rot[..., 1, 0] - rot[..., 0, 1]], -1)
    sin = torch.sin(theta)
    small = theta < 1e-4
    scale = torch.where(small, 0.5 + theta**2 / 12, theta / (2 * torch.where(small, torch.ones_like(sin), sin)))
    omega = scale[..., None] * vee
    # near pi the antisymmetric part vanishes: take the axis from the symmetric part
    near_pi = theta > math.pi - 1e-3
    if bool(near_pi.any()):
        sym = (rot + torch.eye(3, dtype=rot.dtype, device=rot.device)) / 2
        col = sym.diagonal(dim1=-2, dim2=-1).argmax(-1)
        axis = torch.take_along_dim(sym, col[..., None, None].expand(*col.shape, 3, 1), dim=-1)[..., 0]
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        sign = torch.sign((axis * vee).sum(-1, keepdim=True))
        axis = axis * torch.where(sign == 0, torch.ones_like(sign), sign)
        omega = torch.where(near_pi[..., None], axis * theta[..., None], omega)
    return omega


def se3_log(mat: Tensor) -> Tensor:
    """Twists ``(..., 6) = (rho, omega)`` of rigid transforms ``(..., 4, 4)`` (inverse of :func:`se3_exp`)."""
    omega = so3_log(mat[..., :3, :3])
    _, b, c = _exp_coefficients((omega * omega).sum(-1))
    k = _hat(omega)
    eye = torch.eye(3, dtype=mat.dtype, device=mat.device)
    v = eye + b[..., None, None] * k + c[..., None, None] * (k @ k)
    rho = torch.linalg.solve(v, mat[..., :3, 3:4])[..., 0]
    return torch.cat([rho, omega], dim=-1)


def rigid_inverse(mat: Tensor) -> Tensor:
    """Inverse of rigid transforms ``(..., 4, 4)``."""
    rot_t = mat[..., :3, :3].transpose(-1, -2)
    t = -(rot_t @ mat[..., :3, 3:4])
    bottom = mat[..., 3:4, :]
    return torch.cat([torch.cat([rot_t, t], dim=-1), bottom], dim=-2)


def bernstein_basis(t: Tensor, order: int) -> Tensor:
    """Bernstein polynomials ``(..., order + 1)`` of degree ``order`` at ``t (...)`` in [0, 1]."""
    i = torch.arange(order + 1, dtype=t.dtype, device=t.device)
    binom = torch.tensor([math.comb(order, k) for k in range(order + 1)], dtype=t.dtype, device=t.device)
    t = t[..., None]
    return binom * t**i * (1 - t) ** (order - i)


def average_linear_to_srgb(renders_linear: Tensor) -> Tensor:
    """The blurry photo of sub-frame renders: mean in linear light, clipped to [0, 1], then sRGB-encoded.

    Args:
        renders_linear: ``(..., N, 3, H, W)`` sub-frame renders in linear light.

    Returns:
        ``(..., 3, H, W)`` sRGB in [0, 1].
    """
    return linear_to_srgb(renders_linear.mean(dim=-4).clamp(0.0, 1.0))


class ExposureTrajectories(nn.Module):
    """One learnable exposure trajectory per view (Bézier curve in se(3) + sub-frame times).

    Args:
        num_views: ``V``.
        order: Bézier order ``n`` (``n`` learnable control points after the fixed ``c_0 = 0``).
        num_subframes: ``N`` >= 2 renders per exposure.
        dtype: parameter dtype.
        device: parameter device (the CPU when None; ``.to(device)`` moves them later).
        anchor: ``"start"``: the curve starts at ``exp(a) P``; ``"mid"``: its pose at ``t = 0.5``
            is ``exp(a) P`` (see the module docstring).
    """

    def __init__(self, num_views: int, *, order: int = 9, num_subframes: int = 21, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, anchor: TrajectoryAnchor = "start") -> None:
        super().__init__()
        if order < 1 or num_subframes < 2 or num_views < 1:
            raise ValueError("need num_views >= 1, order >= 1 and num_subframes >= 2")
        if anchor not in ("start", "mid"):
            raise ValueError(f"anchor must be 'start' or 'mid', got {anchor!r}")
        self.order, self.num_subframes, self.anchor = order, num_subframes, anchor
        kw = {"dtype": dtype, "device": "cpu" if device is None else device}
        self.control = nn.Parameter(torch.zeros(num_views, order, 6, **kw))
        """``(V, n, 6)`` control points ``c_1 .. c_n`` relative to the curve's start."""
        self.alignment = nn.Parameter(torch.zeros(num_views, 6, **kw))
        """``(V, 6)`` twist from the given pose to the curve's start."""
        self.inner_times = nn.Parameter(torch.linspace(0, 1, num_subframes, **kw)[1:-1].repeat(num_views, 1))
        """``(V, N - 2)`` raw interior sub-frame times (sorted and clamped on use)."""

    @property
    def num_views(self) -> int:
        return int(self.control.shape[0])

    def times(self, views: Tensor | None = None) -> Tensor:
        """``(V', N)`` sub-frame times in [0, 1], sorted, first 0 and last 1."""
        inner = self.inner_times if views is None else self.inner_times[views]
        inner = torch.sort(inner.clamp(0.0, 1.0), dim=-1).values
        zero = torch.zeros_like(inner[:, :1])
        return torch.cat([zero, inner, zero + 1.0], dim=-1)

    def curve(self, t: Tensor, views: Tensor | None = None) -> Tensor:
        """Twists ``(V', M, 6)`` of the curves at times ``t (V', M)`` (relative to each curve's start)."""
        control = self.control if views is None else self.control[views]
        basis = bernstein_basis(t, self.order)[..., 1:]  # c_0 = 0 drops out
        return basis @ control

    def subframe_twists(self, views: Tensor | None = None) -> Tensor:
        """``(V', N, 6)`` curve twists at the sub-frame times."""
        return self.curve(self.times(views), views)

    def relative_poses(self, views: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        """``(V', M, 4, 4)`` transforms from each view's given camera frame to its sub-frame frames.

        Args:
            views: ``(V',)`` view indices, all views when None.
            t: ``(V', M)`` times; the learnable sub-frame times when None.
        """
        t = self.times(views) if t is None else t
        align = self.alignment if views is None else self.alignment[views]
        xi = self.curve(t, views)
        if self.anchor == "mid":
            xi = xi - self.curve(torch.full_like(t[:, :1], 0.5), views)
        return se3_exp(xi) @ se3_exp(align)[:, None]

    def world_to_camera(self, given_w2c: Tensor, views: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        """``(V', M, 4, 4)`` sub-frame world-to-camera poses ``exp(xi(t)) exp(a) P``.

        Args:
            given_w2c: ``(V', 4, 4)`` given poses of the selected views (moved to the trajectories' device).
            views: view indices (all when None).
            t: times (the sub-frame times when None).
        """
        rel = self.relative_poses(views, t)
        return rel @ given_w2c.to(device=rel.device, dtype=rel.dtype)[:, None]

    def smoothness(self, views: Tensor | None = None) -> Tensor:
        """Mean squared twist difference between neighbouring sub-frames (a scalar)."""
        xi = self.subframe_twists(views)
        return (xi[:, 1:] - xi[:, :-1]).square().sum(-1).mean()


def trajectory_error(est_w2c: Tensor, true_w2c: Tensor, *, samples: int = 9) -> tuple[float, float]:
    """Mean rotation (degrees) and camera-position error between two exposure trajectories.

    Both are compared as motions relative to their own mid-exposure pose, sampled at ``samples``
    evenly spaced indices, because an average of sub-frames does not tell the start from the end:
    the smaller error of the two time directions is returned.

    Args:
        est_w2c: ``(N, 4, 4)`` estimated sub-frame poses, in time order.
        true_w2c: ``(M, 4, 4)`` true sub-frame poses, in time order.
        samples: poses compared along each trajectory.

    Returns:
        ``(mean rotation error in degrees, mean camera-centre error in world units)``.
    """
    def resample(w2c: Tensor) -> Tensor:
        idx = torch.linspace(0, w2c.shape[0] - 1, samples, device=w2c.device).round().long()
        mats = w2c[idx].double()
        mid = w2c[(w2c.shape[0] - 1) // 2 : (w2c.shape[0] - 1) // 2 + 1].double() if w2c.shape[0] % 2 else None
        if mid is None:  # even count: average the two middle twists
            a, b = w2c[w2c.shape[0] // 2 - 1].double(), w2c[w2c.shape[0] // 2].double()
            mid = (se3_exp(0.5 * se3_log(b @ rigid_inverse(a))) @ a)[None]
        return mats @ rigid_inverse(mid)  # motion relative to the mid pose

    est, true = resample(est_w2c), resample(true_w2c)
    best = None
    for cand in (est, est.flip(0)):
        rel = cand @ rigid_inverse(true)
        rot = torch.rad2deg(so3_log(rel[:, :3, :3]).norm(dim=-1)).mean()
        # camera centres of the relative motions: -R^T t
        c_est = -(cand[:, :3, :3].transpose(1, 2) @ cand[:, :3, 3:])[..., 0]
        c_true = -(true[:, :3, :3].transpose(1, 2) @ true[:, :3, 3:])[..., 0]
        pos = (c_est - c_true).norm(dim=-1).mean()
        if best is None or float(rot) < best[0]:
            best = (float(rot), float(pos))
    assert best is not None
    return best


def trajectory_set_error(est_w2c: Tensor, true_w2c: Tensor) -> tuple[float, float]:
    """Symmetric nearest-pose (Chamfer) distance between two exposure trajectories, as pose sets.

    A blurry photo is the *average* over the exposure, so it constrains which poses the camera
    passed through but neither their order nor the speed along the path; this measure compares
    just that. Poses are compared in the world frame (both trajectories must share it).

    Args:
        est_w2c: ``(N, 4, 4)`` estimated sub-frame poses.
        true_w2c: ``(M, 4, 4)`` true sub-frame poses.

    Returns:
        ``(rotation distance in degrees, camera-centre distance in world units)``, each the mean
        of the two directed nearest-neighbour averages.
    """
    a, b = est_w2c.double(), true_w2c.double()
    rel = a[:, None] @ rigid_inverse(b)[None]  # (N, M, 4, 4)
    rot = torch.rad2deg(so3_log(rel[..., :3, :3]).norm(dim=-1))
    ca = -(a[:, :3, :3].transpose(1, 2) @ a[:, :3, 3:])[..., 0]
    cb = -(b[:, :3, :3].transpose(1, 2) @ b[:, :3, 3:])[..., 0]
    pos = (ca[:, None] - cb[None]).norm(dim=-1)

    def chamfer(d: Tensor) -> float:
        return float(0.5 * (d.amin(1).mean() + d.amin(0).mean()))

    return chamfer(rot), chamfer(pos)
