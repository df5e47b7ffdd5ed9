"""Differentiable 3-D Gaussian splatting in pure PyTorch (CPU or any torch device).

Pipeline, for a batch of ``B`` cameras that share intrinsics:

1. **Projection** (EWA splatting): each Gaussian's mean goes to camera coordinates, its 3-D
   covariance to a 2-D one through the Jacobian of the perspective projection (``x/z`` and
   ``y/z`` clamped to 1.3x the half field of view, as in 3DGS), plus a 0.3 px^2 low-pass
   dilation. Gaussians closer than ``near`` are dropped.
2. **Tiling**: the image is cut into ``tile x tile`` pixel tiles. A Gaussian belongs to a tile when
   the bounding box of its 3-sigma ellipse touches the tile. Each tile keeps its ``max_per_tile``
   nearest Gaussians (by camera-space depth of the mean), in front-to-back order.
3. **Compositing**: per pixel, ``alpha_i = min(0.99, o_i exp(-d^T Sigma^-1 d / 2))``, set to 0
   outside the 3-sigma ellipse or below 1/255 (as in 3DGS); front-to-back ``C = sum_i c_i alpha_i
   T_i + T_end * background`` with ``T_i = prod_{j<i} (1 - alpha_j)``; a pixel stops at the first
   Gaussian that would take its transmittance below 1e-4 (that Gaussian is not added), as in 3DGS.

All tiles of all cameras are evaluated at once: the Mahalanobis term of every (tile, pixel,
Gaussian) triple is one batched matrix product of per-Gaussian quadratic coefficients with fixed
per-pixel monomials in tile-local coordinates, and compositing is a cumulative product along
the depth-sorted list. There are no Python loops over Gaussians, tiles or pixels, so autograd
gives the backward pass. Because the alpha cut is the 3-sigma ellipse itself, the image does
not depend on the tile size (up to the per-tile cap).

Conventions: world-to-camera matrices in the OpenCV/COLMAP frame (x right, y down, z forward);
pixel ``(row i, column j)`` has its centre at ``(u, v) = (j + 0.5, i + 0.5)`` with ``u = fx x/z +
cx``; images are linear light, ``(B, 3, H, W)``.

References:
    Zwicker, Pfister, van Baar, Gross, "EWA Volume Splatting", IEEE Visualization 2001;
    Kerbl et al., "3D Gaussian Splatting for Real-Time Radiance Field Rendering", SIGGRAPH 2023.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from deblurkit.scene.gaussians import Gaussians, colors_linear, quat_to_rotmat

#: Low-pass dilation added to every 2-D covariance (pixels^2), as in 3DGS.
DILATION_PX2 = 0.3
#: Alpha below this is skipped, above ``ALPHA_MAX`` it is clamped (3DGS values).
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
#: A pixel stops once its transmittance would fall below this.
T_MIN = 1e-4
#: Gaussians are cut at this Mahalanobis radius (3 sigma).
SIGMA_CUT = 3.0


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (COLMAP convention: top-left pixel centre at (0.5, 0.5))."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, fov_x_rad: float, width: int, height: int) -> Intrinsics:
        """Centred principal point and square pixels from the horizontal field of view."""
        f = 0.5 * width / math.tan(0.5 * fov_x_rad)
        return cls(f, f, 0.5 * width, 0.5 * height, width, height)

    def scaled(self, factor: float) -> Intrinsics:
        """The same camera at ``factor`` times the resolution (sizes rounded)."""
        w, h = max(1, round(self.width * factor)), max(1, round(self.height * factor))
        sx, sy = w / self.width, h / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, w, h)

    def matrix(self, device: torch.device | str | None = None) -> Tensor:
        """``(3, 3)`` float64 calibration matrix on ``device`` (the CPU when None)."""
        return torch.tensor([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=torch.float64,
                            device="cpu" if device is None else device)


@dataclass
class Projected:
    """Per-camera, per-Gaussian screen-space quantities (all ``(B, G, ...)``)."""

    means2d: Tensor
    """``(B, G, 2)`` pixel coordinates ``(u, v)``; differentiable (densification reads its gradient)."""
    conics: Tensor
    """``(B, G, 3)`` inverse 2-D covariance ``(a, b, c)`` of ``[[a, b], [b, c]]``."""
    extents: Tensor
    """``(B, G, 2)`` half widths of the 3-sigma ellipse's bounding box (pixels), 0 when culled."""
    depths: Tensor
    """``(B, G)`` camera-space z of the means."""
    visible: Tensor
    """``(B, G)`` bool: in front of the near plane."""


@dataclass
class RenderOutput:
    """What :func:`render` returns."""

    image: Tensor
    """``(B, 3, H, W)`` linear-light colour including the background."""
    alpha: Tensor
    """``(B, 1, H, W)`` accumulated opacity ``1 - T_end``."""
    depth: Tensor
    """``(B, 1, H, W)`` alpha-weighted depth (not normalised by alpha)."""
    projected: Projected
    """Screen-space quantities; ``projected.means2d`` carries the view-space gradient."""
    tile_counts: Tensor
    """``(B, tiles_y, tiles_x)`` number of Gaussians touching each tile before the cap."""


def camera_centers(viewmats: Tensor) -> Tensor:
    """``(B, 3)`` world positions of cameras given world-to-camera ``(B, 4, 4)``."""
    rot, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
    return -(rot.transpose(1, 2) @ t[..., None])[..., 0]


def project_gaussians(gaussians: Gaussians, viewmats: Tensor, intr: Intrinsics, *, near: float = 0.01) -> Projected:
    """EWA projection of every Gaussian into every camera.

    Args:
        gaussians: ``G`` Gaussians.
        viewmats: ``(B, 4, 4)`` world-to-camera matrices (differentiable).
        intr: shared intrinsics.
        near: Gaussians with camera-space z below this are culled.

    Returns:
        :class:`Projected`.
    """
    rot, trans = viewmats[:, :3, :3], viewmats[:, :3, 3]
    p = torch.einsum("bij,gj->bgi", rot, gaussians.means) + trans[:, None, :]
    z = p[..., 2]
    visible = z > near
    z_safe = torch.where(visible, z, torch.ones_like(z))
    lim_x = 1.3 * 0.5 * intr.width / intr.fx
    lim_y = 1.3 * 0.5 * intr.height / intr.fy
    tx = (p[..., 0] / z_safe).clamp(-lim_x, lim_x) * z_safe
    ty = (p[..., 1] / z_safe).clamp(-lim_y, lim_y) * z_safe
    u = intr.fx * p[..., 0] / z_safe + intr.cx
    v = intr.fy * p[..., 1] / z_safe + intr.cy
    means2d = torch.stack([u, v], dim=-1)
    # Jacobian of (fx x/z, fy y/z) at the (clamped) point, shape (B, G, 2, 3)
    zero = torch.zeros_like(z)
    jac = torch.stack(
        [
            torch.stack([intr.fx / z_safe, zero, -intr.fx * tx / z_safe**2], dim=-1),
            torch.stack([zero, intr.fy / z_safe, -intr.fy * ty / z_safe**2], dim=-1),
        ],
        dim=-2,
    )
    rs = quat_to_rotmat(gaussians.quats) * gaussians.scales()[:, None, :]  # (G, 3, 3)
    m = jac @ (rot[:, None] @ rs[None])  # (B, G, 2, 3)
    cov = m @ m.transpose(-1, -2)
    cxx = cov[..., 0, 0] + DILATION_PX2
    cyy = cov[..., 1, 1] + DILATION_PX2
    cxy = cov[..., 0, 1]
    det = (cxx * cyy - cxy * cxy).clamp_min(1e-12)
    conics = torch.stack([cyy / det, -cxy / det, cxx / det], dim=-1)
    extents = SIGMA_CUT * torch.stack([cxx, cyy], dim=-1).sqrt()
    extents = torch.where(visible[..., None], extents, torch.zeros_like(extents))
    return Projected(means2d, conics, extents, z, visible)


def _tile_monomials(tile: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(6, tile*tile)`` monomials ``[x^2, y^2, xy, x, y, 1]`` of pixel centres relative to the tile centre."""
    r = torch.arange(tile, dtype=dtype, device=device) + 0.5 - 0.5 * tile
    y, x = torch.meshgrid(r, r, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    return torch.stack([x * x, y * y, x * y, x, y, torch.ones_like(x)])


def _tile_lists(proj: Projected, tiles_y: int, tiles_x: int, tile: int, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Depth-sorted Gaussian indices per tile.

    A Gaussian touches tile ``(i, j)`` when its 3-sigma box ``[lo, hi]`` meets the tile's closed
    square: ``j tile <= hi_x`` and ``lo_x <= (j + 1) tile`` (the same in y). Only the (Gaussian,
    tile) pairs that touch are listed, then sorted by tile and depth, so the work grows with the
    pairs rather than with tiles x Gaussians.

    Returns:
        ``idx (B, T, K)`` long indices into G (0 past a list's end), ``valid (B, T, K)`` bool,
        ``counts (B, T)`` list lengths before the cap; ``K`` is the cap or the longest list,
        whichever is shorter.
    """
    b, g = proj.depths.shape
    nt = tiles_y * tiles_x
    device = proj.depths.device
    with torch.no_grad():
        centre = proj.means2d.detach()
        lo = ((centre - proj.extents) / tile - 1).ceil()  # first touched tile (may be off the image)
        hi = ((centre + proj.extents) / tile).floor()
        limit = torch.tensor([tiles_x - 1, tiles_y - 1], dtype=lo.dtype, device=device)
        lo = torch.maximum(lo, torch.zeros_like(lo)).long()
        hi = torch.minimum(hi, limit).long()
        span = (hi - lo + 1).clamp_min(0)  # (B, G, 2)
        n = torch.where(proj.visible, span[..., 0] * span[..., 1], 0).reshape(-1)  # pairs per (camera, Gaussian)
        owner = torch.repeat_interleave(torch.arange(b * g, device=device), n)
        offset = torch.arange(owner.shape[0], device=device) - (torch.cumsum(n, 0) - n)[owner]
        lo_f, span_x = lo.reshape(-1, 2)[owner], span.reshape(-1, 2)[owner, 0]
        tile_id = (lo_f[:, 1] + offset // span_x) * tiles_x + lo_f[:, 0] + offset % span_x
        cam = owner // g
        rank = torch.empty(b, g, dtype=torch.long, device=device)
        order = proj.depths.detach().argsort(dim=1)  # rank -> Gaussian index
        rank.scatter_(1, order, torch.arange(g, device=device).expand(b, g))
        row = cam * nt + tile_id
        key, perm = (row * g + rank.reshape(-1)[owner]).sort()
        row, gauss = key // g, (owner % g)[perm]
        counts = torch.bincount(row, minlength=b * nt)
        kk = max(1, min(k, g, int(counts.max()) if counts.numel() else 1))  # no longer than the longest list
        pos = torch.arange(row.shape[0], device=device) - (torch.cumsum(counts, 0) - counts)[row]
        keep = pos < kk
        idx = torch.zeros(b * nt, kk, dtype=torch.long, device=device)
        valid = torch.zeros(b * nt, kk, dtype=torch.bool, device=device)
        idx[row[keep], pos[keep]] = gauss[keep]
        valid[row[keep], pos[keep]] = True
    return idx.reshape(b, nt, kk), valid.reshape(b, nt, kk), counts.reshape(b, nt)


def _alpha_and_transmittance(coef: Tensor, opacity: Tensor, valid: Tensor, mono: Tensor) -> tuple[Tensor, Tensor]:
    """Per (tile, pixel, listed Gaussian) alpha and transmittance before it (0 once the pixel stopped).

    Args:
        coef: ``(N, 6, K)`` quadratic coefficients of the exponent in tile-local monomials.
        opacity: ``(N, K)`` opacities in (0, 1).
        valid: ``(N, K)`` bool, False past the end of a tile's list.
        mono: ``(6, P)`` pixel monomials.

    Returns:
        ``alpha, trans``, each ``(N, P, K)``; the compositing weights are ``alpha * trans``.
    """
    # one cut per listed Gaussian: alpha = o exp(power) is dropped below `cut`, which is where the
    # 3-sigma ellipse ends (o exp(-SIGMA_CUT^2 / 2)) or ALPHA_MIN, whichever is higher; past the
    # end of a list nothing passes. Shifting the exponent by log(cut / o) puts the cut at 0, where
    # one threshold sets the exponent to -20 and another the result to 0: exp is several times
    # slower on -inf and tens of times slower where it underflows, so it never sees either.
    cut = (opacity * math.exp(-0.5 * SIGMA_CUT**2)).clamp_min(ALPHA_MIN)
    shift = torch.where(valid, torch.log(cut / opacity), 1e30)
    cut = torch.where(valid, cut, 0.0)
    coef = torch.cat([coef[:, :5], coef[:, 5:] - shift[:, None]], dim=1)
    power = mono.T @ coef  # (N, P, K), the list along the contiguous axis
    alpha = F.threshold_(power, 0.0, -20.0).exp_().mul_(cut[:, None, :])
    alpha = F.threshold_(alpha, 0.5 * ALPHA_MIN, 0.0).clamp_max_(ALPHA_MAX)  # kept ones are >= cut >= ALPHA_MIN
    keep = 1.0 - alpha
    # early termination: the Gaussian that would take T below T_MIN, and all after it, are not
    # added (a prefix of each list stays alive since T only decreases); T before a Gaussian is the
    # inclusive product over its own 1 - alpha (>= 1 - ALPHA_MAX)
    trans = F.threshold_(torch.cumprod(keep, dim=-1), T_MIN, 0.0).div_(keep)
    return alpha, trans


#: Elements of the ``(tiles, pixels, list)`` intermediates processed at once by :class:`_Composite`
#: (2 MB in float32): small enough to stay in a CPU's cache and below glibc's mmap threshold, so
#: the chunks reuse memory instead of page-faulting fresh allocations.
COMPOSITE_CHUNK_ELEMENTS = 1 << 19


def _row_chunks(lengths: Tensor, pixels: int) -> list[tuple[slice, int]]:
    """Chunks of rows sorted by decreasing list length, each with the longest list it holds.

    Returns:
        ``(rows, k)`` pairs: a slice of the sorted rows and how many list entries they need.
    """
    chunks, i, n = [], 0, lengths.shape[0]
    sizes = lengths.tolist()
    while i < n:
        k = max(1, sizes[i])
        step = max(1, COMPOSITE_CHUNK_ELEMENTS // (pixels * k))
        chunks.append((slice(i, min(i + step, n)), k))
        i += step
    return chunks


class _Composite(torch.autograd.Function):
    """Front-to-back compositing of per-tile depth-sorted lists with an analytic backward pass.

    Inputs are flattened over (camera, tile) rows: ``coef (N, 6, K)``, ``opacity (N, K)``,
    ``feats (N, C, K)``, ``valid (N, K)`` (a prefix of each row), ``mono (6, P)``; the output is
    ``(N, C, P)`` with ``out[n, :, p] = sum_i w_i feats[n, :, i]``, ``w_i = alpha_i T_i``
    (:func:`_alpha_and_transmittance`). The backward pass differentiates the same formula in closed
    form (as 3DGS's does): with ``g_i = dL/dw_i``, ``dL/dalpha_i = g_i T_i - (sum_{j>i} g_j w_j) /
    (1 - alpha_i)``, and alpha passes gradient only where it was neither cut (below 1/255) nor
    clamped (0.99). Both passes run over chunks of rows sorted by list length, each chunk only as
    long as its longest list (so short lists do not pay for the longest one) and cut where every
    pixel of its tiles had stopped (nothing after has an effect or a gradient). The forward pass
    keeps alpha and T of each chunk for the backward pass (about 15% faster than recomputing them,
    for two ``(N, P, K)`` float tensors of memory); no other ``(N, P, K)`` intermediate is kept.
    The channel axis comes before the list and pixel axes because CPU batched matrix products
    with 5-6 wide operands are several times faster in that orientation.
    """

    @staticmethod
    def forward(ctx: Any, coef: Tensor, opacity: Tensor, feats: Tensor, valid: Tensor, mono: Tensor) -> Tensor:
        lengths, order = valid.sum(-1).sort(descending=True)
        opacity, feats = opacity[order], feats[order]
        coef, valid = coef[order], valid[order]
        out = feats.new_zeros(feats.shape[0], feats.shape[1], mono.shape[1])
        saved = []
        for sl, k in _row_chunks(lengths, mono.shape[1]):
            alpha, trans = _alpha_and_transmittance(coef[sl, :, :k], opacity[sl, :k], valid[sl, :k], mono)
            # list entries before every pixel of the tile stopped (a prefix): the backward pass needs no more
            reached = max(1, int((trans.amax((0, 1)) > 0).sum()))
            alpha, trans = alpha[..., :reached].contiguous(), trans[..., :reached].contiguous()
            saved.append((sl, alpha, trans))
            torch.matmul(feats[sl, :, :reached], (alpha * trans).transpose(-1, -2), out=out[sl])  # (rows, C, P)
        ctx.save_for_backward(opacity, feats, mono, order)
        ctx.chunks = saved
        return out[order.argsort()]

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        opacity, feats, mono, order = ctx.saved_tensors
        grad_out = grad_out[order]
        g_coef = feats.new_zeros(feats.shape[0], 6, feats.shape[2])
        g_opacity, g_feats = torch.zeros_like(opacity), torch.zeros_like(feats)
        for sl, alpha, trans in ctx.chunks:
            k = alpha.shape[-1]
            g = grad_out[sl]  # (rows, C, P)
            w = alpha * trans
            g_feats[sl, :, :k] = g @ w  # (rows, C, k)
            g_w = g.transpose(-1, -2).contiguous() @ feats[sl, :, :k]  # (rows, P, k)
            upto = w.mul_(g_w).cumsum(-1)
            behind = upto[..., -1:] - upto  # sum over j > i (exactly 0 past the last alive)
            neg_g_alpha = behind.div_(1.0 - alpha).sub_(g_w.mul_(trans))
            # d alpha / d exponent = alpha where alpha is the unclamped, uncut o exp(power) (the
            # threshold keeps -alpha where alpha < ALPHA_MAX); the opacity gets it divided by o
            g_power = neg_g_alpha.mul_(F.threshold(-alpha, -ALPHA_MAX, 0.0))
            g_opacity[sl, :k] = g_power.sum(-2) / opacity[sl, :k]
            g_coef[sl, :, :k] = mono @ g_power  # (rows, 6, k)
        inverse = order.argsort()
        return g_coef[inverse], g_opacity[inverse], g_feats[inverse], None, None


def render(
    gaussians: Gaussians,
    viewmats: Tensor,
    intr: Intrinsics,
    *,
    background: Tensor | tuple[float, float, float] = (0.0, 0.0, 0.0),
    tile: int = 16,
    max_per_tile: int = 1024,
    near: float = 0.01,
) -> RenderOutput:
    """Render Gaussians from a batch of cameras (differentiable in Gaussians and poses).

    Args:
        gaussians: ``G`` Gaussians (float32 or float64).
        viewmats: ``(B, 4, 4)`` or ``(4, 4)`` world-to-camera matrices, OpenCV frame; moved to the
            device and dtype of the Gaussians (which decide where the rendering runs).
        intr: shared intrinsics; the image is ``intr.height x intr.width``.
        background: linear-light RGB behind the Gaussians.
        tile: tile side in pixels.
        max_per_tile: the cap ``K`` on Gaussians per tile (the nearest ones are kept).
        near: near-plane distance in world units.

    Returns:
        :class:`RenderOutput` with a ``(B, 3, H, W)`` linear-light image.

    Shape:
        ``viewmats (B, 4, 4) -> image (B, 3, H, W)``.
    """
    if viewmats.ndim == 2:
        viewmats = viewmats[None]
    if viewmats.shape[-2:] != (4, 4):
        raise ValueError(f"viewmats must be (B, 4, 4), got {tuple(viewmats.shape)}")
    if tile < 1 or max_per_tile < 1:
        raise ValueError("tile and max_per_tile must be positive")
    dtype, device = gaussians.means.dtype, gaussians.means.device
    viewmats = viewmats.to(device=device, dtype=dtype)  # a pose read from a file is on the CPU
    b, w, h = viewmats.shape[0], intr.width, intr.height
    tiles_x, tiles_y = -(-w // tile), -(-h // tile)
    nt = tiles_x * tiles_y
    bg = torch.as_tensor(background, dtype=dtype, device=device).reshape(3)

    proj = project_gaussians(gaussians, viewmats, intr, near=near)
    g = len(gaussians)
    idx, valid, counts = _tile_lists(proj, tiles_y, tiles_x, tile, max_per_tile)
    k = idx.shape[-1]
    flat = (idx + torch.arange(b, device=device)[:, None, None] * g).reshape(-1)  # into (B*G)

    # Per (tile, Gaussian) quadratic coefficients in tile-local coordinates.
    ty, tx = torch.meshgrid(torch.arange(tiles_y, device=device), torch.arange(tiles_x, device=device), indexing="ij")
    centre = torch.stack([tx.reshape(-1), ty.reshape(-1)], dim=-1).to(dtype) * tile + 0.5 * tile  # (T, 2)
    mean = proj.means2d.reshape(b * g, 2)[flat].reshape(b, nt, k, 2) - centre[None, :, None, :]
    con = proj.conics.reshape(b * g, 3)[flat].reshape(b, nt, k, 3)
    ca, cb, cc = con.unbind(-1)
    mx, my = mean.unbind(-1)
    coef = torch.stack(
        [
            -0.5 * ca,
            -0.5 * cc,
            -cb,
            ca * mx + cb * my,
            cc * my + cb * mx,
            -0.5 * ca * mx * mx - 0.5 * cc * my * my - cb * mx * my,
        ],
        dim=-2,
    )  # (B, T, 6, K)
    mono = _tile_monomials(tile, dtype, device)  # (6, P)
    opacity = torch.sigmoid(gaussians.opacity_logits)[idx]  # (B, T, K)
    cols = colors_linear(gaussians, camera_centers(viewmats))  # (B, G, 3)
    ones = torch.ones_like(proj.depths)[..., None]
    feats = torch.cat([cols, proj.depths[..., None], ones], dim=-1).reshape(b * g, 5)[flat].reshape(b * nt, k, 5)
    out = _Composite.apply(coef.reshape(b * nt, 6, k), opacity.reshape(b * nt, k), feats.transpose(-1, -2),
                           valid.reshape(b * nt, k), mono).reshape(b, nt, 5, -1)  # colour, depth, alpha
    t_end = 1.0 - out[:, :, 4]  # sum_i alpha_i T_i telescopes to 1 - T_end
    rgb = out[:, :, :3] + t_end[:, :, None] * bg[:, None]
    chans = torch.cat([rgb, out[:, :, 4:5], out[:, :, 3:4]], dim=2)  # (B, T, 5, P)
    img = chans.reshape(b, tiles_y, tiles_x, 5, tile, tile).permute(0, 3, 1, 4, 2, 5)
    img = img.reshape(b, 5, tiles_y * tile, tiles_x * tile)[:, :, :h, :w]
    return RenderOutput(
        image=img[:, :3],
        alpha=img[:, 3:4],
        depth=img[:, 4:5],
        projected=proj,
        tile_counts=counts.reshape(b, tiles_y, tiles_x),
    )
