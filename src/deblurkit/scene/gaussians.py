"""A set of 3-D Gaussians: parameters, covariances and colours.

Each Gaussian has a mean (world units), per-axis log standard deviations, a rotation quaternion
``(w, x, y, z)`` (normalised on use), an opacity logit, and a colour as spherical-harmonic
coefficients of degree 0 (optionally degree 1). Colours are in **linear light**; the SH
convention is the one of 3-D Gaussian Splatting (``rgb = C0 * sh0 + 0.5 + degree-1 terms``,
clamped at 0), so ``sh0 = 0`` is mid grey.

References:
    Kerbl, Kopanas, Leimkühler, Drettakis, "3D Gaussian Splatting for Real-Time Radiance Field
    Rendering", SIGGRAPH 2023.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

#: Real spherical-harmonic constants of degree 0 and 1.
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199


def linear_rgb_to_sh0(rgb: Tensor) -> Tensor:
    """Degree-0 SH coefficient that renders as ``rgb`` (linear light): ``(rgb - 0.5) / C0``."""
    return (rgb - 0.5) / SH_C0


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices of quaternions ``(w, x, y, z)``, normalised first.

    Args:
        quats: ``(..., 4)``, any non-zero norm.

    Returns:
        ``(..., 3, 3)`` rotation matrices, same dtype.
    """
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat(rot: Tensor) -> Tensor:
    """Quaternions ``(w, x, y, z)`` (w >= 0) of rotation matrices ``(..., 3, 3)``; not differentiable-safe."""
    m = rot
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack(
        [
            torch.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - tr, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m[..., 1, 1] - tr, m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - tr], -1),
        ],
        dim=-2,
    )  # each row is 4 * (the largest component) * q, pick the best-conditioned one
    diag = torch.stack([tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = diag.argmax(-1)
    q = torch.take_along_dim(cands, best[..., None, None].expand(*best.shape, 1, 4), dim=-2).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


@dataclass
class Gaussians:
    """Parameters of ``G`` Gaussians (all tensors share dtype and device).

    Use :meth:`parameters` to get the tensors an optimiser updates; :meth:`select` and
    :meth:`cat` build new sets for densification and pruning.
    """

    means: Tensor
    """``(G, 3)`` centres in world units."""
    log_scales: Tensor
    """``(G, 3)`` natural logs of the standard deviations along the Gaussian's own axes."""
    quats: Tensor
    """``(G, 4)`` rotations ``(w, x, y, z)``, normalised on use."""
    opacity_logits: Tensor
    """``(G,)`` opacity before the sigmoid."""
    sh0: Tensor
    """``(G, 3)`` degree-0 SH coefficients (linear-light colour, see :func:`linear_rgb_to_sh0`)."""
    sh1: Tensor | None = None
    """``(G, 3, 3)`` degree-1 coefficients ``[basis (y, z, x), channel]``, or None for degree 0."""

    def __post_init__(self) -> None:
        g = self.means.shape[0]
        expect = {"means": (g, 3), "log_scales": (g, 3), "quats": (g, 4), "opacity_logits": (g,), "sh0": (g, 3)}
        if self.sh1 is not None:
            expect["sh1"] = (g, 3, 3)
        for name, shape in expect.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"Gaussians.{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return 0 if self.sh1 is None else 1

    def names(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def parameters(self) -> dict[str, Tensor]:
        """Name -> tensor for every parameter that is present."""
        return {n: getattr(self, n) for n in self.names()}

    def requires_grad_(self, flag: bool = True) -> Gaussians:
        for t in self.parameters().values():
            t.requires_grad_(flag)
        return self

    def detach(self) -> Gaussians:
        return replace(self, **{n: t.detach().clone() for n, t in self.parameters().items()})

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Gaussians:
        return replace(self, **{n: t.detach().to(device=device, dtype=dtype) for n, t in self.parameters().items()})

    def select(self, index: Tensor) -> Gaussians:
        """The subset given by a boolean mask ``(G,)`` or an index tensor (detached copies)."""
        return replace(self, **{n: t.detach()[index].clone() for n, t in self.parameters().items()})

    def cat(self, other: Gaussians) -> Gaussians:
        if self.names() != other.names():
            raise ValueError("cannot concatenate Gaussians with different SH degrees")
        return replace(self, **{n: torch.cat([t.detach(), getattr(other, n).detach()]) for n, t in self.parameters().items()})

    def opacities(self) -> Tensor:
        return torch.sigmoid(self.opacity_logits)

    def scales(self) -> Tensor:
        return torch.exp(self.log_scales)

    def covariances(self) -> Tensor:
        """``(G, 3, 3)`` world-space covariances ``R S S^T R^T``."""
        m = quat_to_rotmat(self.quats) * self.scales()[:, None, :]
        return m @ m.transpose(-1, -2)

    def state_dict(self) -> dict[str, Tensor]:
        return {n: t.detach().cpu() for n, t in self.parameters().items()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> Gaussians:
        return cls(**{k: v.clone() for k, v in state.items()})


def colors_linear(gaussians: Gaussians, camera_centers: Tensor) -> Tensor:
    """View-dependent linear-light colours of every Gaussian seen from each camera centre.

    Args:
        gaussians: ``G`` Gaussians.
        camera_centers: ``(B, 3)`` camera positions in world coordinates.

    Returns:
        ``(B, G, 3)`` colours, clamped at 0 (not above).
    """
    rgb = SH_C0 * gaussians.sh0 + 0.5
    b = camera_centers.shape[0]
    if gaussians.sh1 is None:
        return rgb.clamp_min(0.0).expand(b, -1, -1)
    d = gaussians.means[None] - camera_centers[:, None, :]
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = d[..., 0:1], d[..., 1:2], d[..., 2:3]
    sh1 = gaussians.sh1[None]
    rgb = rgb[None] - SH_C1 * y * sh1[:, :, 0] + SH_C1 * z * sh1[:, :, 1] - SH_C1 * x * sh1[:, :, 2]
    return rgb.clamp_min(0.0)


def random_gaussians(
    points: Tensor,
    colors_lin: Tensor,
    *,
    scale: float | Tensor,
    opacity: float = 0.1,
    sh_degree: int = 0,
) -> Gaussians:
    """Isotropic Gaussians at given points (the usual initialisation).

    Args:
        points: ``(G, 3)`` centres.
        colors_lin: ``(G, 3)`` linear-light colours in [0, 1].
        scale: standard deviation, one value or ``(G,)``.
        opacity: initial opacity in (0, 1).
        sh_degree: 0 or 1 (degree-1 coefficients start at 0).

    Returns:
        Gaussians with the dtype and device of ``points``.
    """
    g = points.shape[0]
    s = torch.as_tensor(scale, dtype=points.dtype, device=points.device).expand(g)
    quats = torch.zeros(g, 4, dtype=points.dtype, device=points.device)
    quats[:, 0] = 1.0
    return Gaussians(
        means=points.clone(),
        log_scales=torch.log(s)[:, None].repeat(1, 3),
        quats=quats,
        opacity_logits=torch.full((g,), math.log(opacity / (1 - opacity)), dtype=points.dtype, device=points.device),
        sh0=linear_rgb_to_sh0(colors_lin),
        sh1=torch.zeros(g, 3, 3, dtype=points.dtype, device=points.device) if sh_degree == 1 else None,
    )
