"""Camera-shake trajectories: 2-D random walks and 3-D rotational shake.

A trajectory is a curve sampled at equal time steps over the exposure. The 2-D walk follows the
spirit of Boracchi & Foi ("Modeling the performance of image restoration from motion blur",
IEEE TIP 2012): a velocity with inertia, Gaussian perturbations, a pull back towards the start
(centripetal term) and rare abrupt jerks; the step length is constant, so the path length is
exactly the requested exposure length. The 3-D version walks in (yaw, pitch, roll) and becomes
spatially varying blur through the homographies ``K R(t) K^-1``.

All randomness comes from the ``torch.Generator`` passed in; results are float64 tensors
(geometry is cheap and precision helps sub-pixel rendering).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One sample of U(low, high) drawn from ``generator`` (a Python float)."""
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def random_walk(
    steps: int,
    dims: int,
    generator: torch.Generator,
    *,
    anxiety: float = 0.05,
    jerk_rate: float | None = None,
    centripetal: float | None = None,
    gaussian_term: float | None = None,
) -> Tensor:
    """A random walk with inertia and jerks, with path length 1 and start at the origin.

    Args:
        steps: number of time samples (>= 2).
        dims: 2 for image-plane shake, 3 for (yaw, pitch, roll).
        generator: random source.
        anxiety: shake intensity in [0, 1]; 0 gives a straight line.
        jerk_rate: probability (per step, scaled by ``anxiety``) of an abrupt direction change;
            sampled from U(0, 0.2) when None.
        centripetal: strength of the pull back to the start; U(0, 0.7) when None.
        gaussian_term: strength of random perturbations; U(0, 10) when None.

    Returns:
        ``(steps, dims)`` float64 positions; consecutive samples are ``1 / (steps - 1)`` apart.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    jerk_rate = uniform(generator, 0.0, 0.2) if jerk_rate is None else jerk_rate
    centripetal = uniform(generator, 0.0, 0.7) if centripetal is None else centripetal
    gaussian_term = uniform(generator, 0.0, 10.0) if gaussian_term is None else gaussian_term
    step = 1.0 / (steps - 1)
    normals = torch.randn(steps, dims, generator=generator, dtype=torch.float64).numpy()
    jerks = (torch.rand(steps, generator=generator, dtype=torch.float64) < jerk_rate * anxiety).numpy()
    # Plain numpy in the loop: ~10x faster than tensor ops on 2-3 element vectors.
    v = normals[0] / max(float(np.linalg.norm(normals[0])), 1e-12) * step
    x = np.zeros((steps, dims), dtype=np.float64)
    for t in range(steps - 1):
        dv = anxiety * (gaussian_term * normals[t + 1] - centripetal * x[t] / step) * step
        if jerks[t]:
            dv = dv - 2.0 * v  # reverse the motion: an abrupt shake
        v = v + dv
        v = v / max(float(np.linalg.norm(v)), 1e-12) * step
        x[t + 1] = x[t] + v
    return torch.from_numpy(x)


def shake_trajectory_2d(
    length_px: float, generator: torch.Generator, *, steps: int = 64, anxiety: float = 0.05
) -> Tensor:
    """Image-plane shake: a :func:`random_walk` scaled to a path length of ``length_px`` pixels.

    Returns:
        ``(steps, 2)`` float64 ``(x, y)`` offsets in pixels, starting at (0, 0).
    """
    return random_walk(steps, 2, generator, anxiety=anxiety) * float(length_px)


def linear_trajectory_2d(length_px: float, angle_rad: float, steps: int = 2) -> Tensor:
    """A straight motion of ``length_px`` pixels at ``angle_rad``, centred on the origin: ``(steps, 2)``."""
    t = torch.linspace(-0.5, 0.5, steps, dtype=torch.float64)[:, None]
    d = torch.tensor([math.cos(angle_rad), math.sin(angle_rad)], dtype=torch.float64)
    return t * d * float(length_px)


def rotation_trajectory(
    length_px: float,
    focal_px: float,
    image_size: tuple[int, int],
    generator: torch.Generator,
    *,
    steps: int = 64,
    anxiety: float = 0.05,
    roll_fraction: float = 0.3,
) -> Tensor:
    """3-D rotational camera shake as (yaw, pitch, roll) angles in radians over the exposure.

    The walk is scaled so that, at the image centre, yaw/pitch move the image by about
    ``length_px`` pixels along the path (angle ~ pixels / focal length); the roll component is
    scaled so that it moves the image corners by ``roll_fraction * length_px`` pixels.

    Args:
        length_px: blur path length in pixels at the image centre.
        focal_px: focal length in pixels.
        image_size: ``(H, W)`` of the image the homographies will act on.
        generator: random source.
        steps: time samples.
        anxiety: shake intensity (see :func:`random_walk`).
        roll_fraction: relative strength of in-plane rotation.

    Returns:
        ``(steps, 3)`` float64 angles ``(yaw, pitch, roll)``.
    """
    h, w = image_size
    walk = random_walk(steps, 3, generator, anxiety=anxiety)
    # Direction of the walk is random in 3-D; re-weight so roll contributes roll_fraction.
    corner_radius = 0.5 * math.hypot(h, w)
    scale = torch.tensor(
        [length_px / focal_px, length_px / focal_px, roll_fraction * length_px / corner_radius],
        dtype=torch.float64,
    )
    return walk * scale


def rotation_matrices(angles: Tensor) -> Tensor:
    """Rotation matrices ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` for ``(T, 3)`` angles -> ``(T, 3, 3)``."""
    yaw, pitch, roll = angles[:, 0], angles[:, 1], angles[:, 2]
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    ry = torch.stack(
        [torch.cos(yaw), zero, torch.sin(yaw), zero, one, zero, -torch.sin(yaw), zero, torch.cos(yaw)], 1
    )
    rx = torch.stack(
        [
            one,
            zero,
            zero,
            zero,
            torch.cos(pitch),
            -torch.sin(pitch),
            zero,
            torch.sin(pitch),
            torch.cos(pitch),
        ],
        1,
    )
    rz = torch.stack(
        [torch.cos(roll), -torch.sin(roll), zero, torch.sin(roll), torch.cos(roll), zero, zero, zero, one], 1
    )
    return rz.view(-1, 3, 3) @ ry.view(-1, 3, 3) @ rx.view(-1, 3, 3)


def rotation_homographies(angles: Tensor, focal_px: float, image_size: tuple[int, int]) -> Tensor:
    """Homographies ``K R(t) K^-1`` in pixel coordinates (x right, y down, pixel centres at integers).

    Args:
        angles: ``(T, 3)`` (yaw, pitch, roll) in radians.
        focal_px: focal length in pixels.
        image_size: ``(H, W)``; the principal point is the image centre.

    Returns:
        ``(T, 3, 3)`` float64; a point ``p`` of the sharp image moves to ``H p`` at time ``t``.
    """
    h, w = image_size
    angles = angles.to(torch.float64)
    k = torch.tensor(
        [[focal_px, 0.0, (w - 1) / 2], [0.0, focal_px, (h - 1) / 2], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    return k @ rotation_matrices(angles) @ torch.linalg.inv(k)


def random_pauses(generator: torch.Generator, share: tuple[float, float], count: int = 2) -> list[tuple[float, float]]:
    """``count`` pauses ``(at, share)`` for :func:`retime_with_pauses`: times U(0.05, 0.95) of the
    exposure, shares U(``share``); drawn pause by pause, time first."""
    return [(uniform(generator, 0.05, 0.95), uniform(generator, *share)) for _ in range(count)]


def retime_with_pauses(traj: Tensor, pauses: list[tuple[float, float]], *, width: float = 0.01,
                       steps: int | None = None) -> Tensor:
    """The same path with part of the exposure time moved to pauses.

    :func:`random_walk` moves at constant speed, so a kernel rendered from it spreads the exposure
    evenly along the path; a hand slows almost to a stop where it turns, and those moments show as
    bright points in recorded shake kernels. Each pause ``(at, share)`` moves ``share`` of the
    exposure time to a Gaussian bump of standard deviation ``width`` around time ``at`` (both in
    units of the exposure, [0, 1]); the rest stays spread as before.

    Args:
        traj: ``(T, D)`` positions at equal time intervals (``T >= 2``).
        pauses: ``(at, share)`` pairs, shares summing to less than 1.
        width: duration of a pause (standard deviation, exposure units).
        steps: number of output samples; ``16 * (T - 1) + 1`` by default.

    Returns:
        ``(steps, D)`` float64 positions on the same path at equal time intervals (what
        :func:`deblurkit.synth.blur.render_psf` expects), dense where the camera pauses.
    """
    if traj.ndim != 2 or traj.shape[0] < 2:
        raise ValueError(f"traj must be (T, D) with T >= 2, got {tuple(traj.shape)}")
    total = sum(share for _, share in pauses)
    if any(share < 0 for _, share in pauses) or total >= 1.0:
        raise ValueError(f"pause shares must be >= 0 and sum to less than 1, got {pauses}")
    steps = 16 * (traj.shape[0] - 1) + 1 if steps is None else steps
    grid = np.linspace(0.0, 1.0, 4097)
    density = np.full_like(grid, 1.0 - total)
    for at, share in pauses:
        bump = np.exp(-0.5 * ((grid - at) / width) ** 2)
        density += share * bump / (bump.mean() if bump.mean() > 0 else 1.0)
    exposure = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    exposure /= exposure[-1]
    # Path time reached at equally spaced exposure times: slow (dense) where the density is high.
    when = np.interp(np.linspace(0.0, 1.0, steps), exposure, grid) * (traj.shape[0] - 1)
    path = traj.to(torch.float64).numpy()
    out = np.stack([np.interp(when, np.arange(traj.shape[0]), path[:, d]) for d in range(path.shape[1])], axis=1)
    return torch.from_numpy(out)


def resample_trajectory(traj: Tensor, n: int) -> Tensor:
    """Linearly resample a ``(T, D)`` trajectory to ``n`` equally spaced time samples."""
    t_old = torch.linspace(0.0, 1.0, traj.shape[0], dtype=torch.float64)
    t_new = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    idx = torch.searchsorted(t_old, t_new, right=True).clamp(1, traj.shape[0] - 1)
    t0, t1 = t_old[idx - 1], t_old[idx]
    a = ((t_new - t0) / (t1 - t0))[:, None]
    return traj[idx - 1] * (1 - a) + traj[idx] * a


def homography_path_length(homographies: Tensor, image_size: tuple[int, int]) -> float:
    """Largest path length (pixels) travelled by the image centre or a corner under ``(T, 3, 3)`` homographies."""
    h, w = image_size
    pts = torch.tensor(
        [[(w - 1) / 2, (h - 1) / 2, 1], [0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]],
        dtype=torch.float64,
    )
    proj = torch.einsum("tij,pj->tpi", homographies, pts)
    xy = proj[..., :2] / proj[..., 2:3]
    return float((xy[1:] - xy[:-1]).norm(dim=-1).sum(dim=0).max()) if homographies.shape[0] > 1 else 0.0


def random_shake_kernel(size: int, length: float, rng: np.random.Generator, *, steps: int = 256,
                        turn: float = 0.3) -> np.ndarray:
    """A random smooth camera-shake trajectory rasterised into a ``(size, size)`` kernel.

    Args:
        size: kernel support (odd).
        length: largest extent of the trajectory in pixels (<= size - 2).
        rng: random generator (the only source of randomness).
        steps: number of trajectory samples.
        turn: standard deviation of the direction change per step (larger = more curved).

    Returns:
        float64 kernel summing to 1, trajectory centred on the mean position.
    """
    pos = np.zeros((steps, 2))
    vel = rng.normal(size=2)
    vel /= np.linalg.norm(vel)
    for i in range(1, steps):
        vel = vel + rng.normal(scale=turn, size=2)
        vel /= np.linalg.norm(vel)
        pos[i] = pos[i - 1] + vel
    pos -= pos.mean(axis=0)
    extent = np.abs(pos).max()
    pos *= (min(length, size - 2) / 2.0) / max(extent, 1e-9)
    k = np.zeros((size, size))
    c = size // 2
    for y, x in pos + c:
        iy, ix = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - iy, x - ix
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
            if 0 <= iy + dy < size and 0 <= ix + dx < size:
                k[iy + dy, ix + dx] += w
    return k / k.sum()
