"""Fit a sharp Gaussian scene and per-view camera trajectories to blurry photos.

The schedule follows DeblurGS: plain splatting from each view's given pose first (the first
``plain_iterations``), then joint optimisation of the Gaussians and the exposure trajectories
(:class:`~deblurkit.scene.trajectory.ExposureTrajectories`). The loss is the L1 distance between
the synthesised blurry photo (mean of the sub-frame renders in linear light, then sRGB) and
the input, plus a smoothness term on neighbouring sub-frame poses whose weight decays
geometrically. Densification (clone small / split large Gaussians whose view-space gradient is
high) uses a threshold annealed from ``grad_threshold_start`` to ``grad_threshold_end``
(exponentially over ``anneal_fraction`` of the iterations, counted from ``densify_from``), so that wrong early trajectories do
not spawn floaters; transparent Gaussians are pruned.

Three modes share the loop:

- ``"plain"``: plain splatting on the blurry photos at their given poses (no trajectories);
- ``"joint"``: the method above;
- ``"oracle"``: the sub-frame poses are the true ones (``views.true_w2c``), a bound for ``joint``.

Gradients of the sub-frame renders are taken one chunk of sub-frames at a time: a first pass
without autograd gives the blurry image and the loss gradient with respect to it, then each chunk
is rendered again with autograd and back-propagated with its share of that gradient (the blurry
image is linear in the sub-frames). Memory stays that of one chunk, at the price of one extra
forward pass.

A run folder holds ``checkpoint.pt`` (written atomically every ``checkpoint_every`` iterations and
at the end; a run resumes from it) and ``config.json``.

Devices: the fit runs where the views are (or on ``fit_scene(..., device=...)``); every tensor
it makes follows them. Random draws come from a CPU ``torch.Generator`` and are moved, so a seed
starts the same fit on any device, and checkpoints hold CPU tensors only: a run fitted on a GPU
resumes on the CPU and back.

References:
    Oh, Chung, Lee, Lee, "DeblurGS: Gaussian Splatting for Camera Motion Blur", arXiv 2404.11358;
    Kerbl et al., "3D Gaussian Splatting for Real-Time Radiance Field Rendering", SIGGRAPH 2023.
"""

from __future__ import annotations

import functools
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from deblurkit.devices import resolve_device
from deblurkit.errors import DeblurkitError
from deblurkit.io import atomic_write
from deblurkit.scene.data import ViewSet, foreground_masks
from deblurkit.scene.gaussians import Gaussians, quat_to_rotmat, random_gaussians
from deblurkit.scene.render import Intrinsics, camera_centers, render
from deblurkit.scene.trajectory import ExposureTrajectories, TrajectoryAnchor, average_linear_to_srgb
from deblurkit.synth.color import srgb_to_linear

FitMode = Literal["plain", "joint", "oracle"]
_GAUSSIAN_LR_KEYS = {"means": "lr_means", "log_scales": "lr_scales", "quats": "lr_quats",
                     "opacity_logits": "lr_opacity", "sh0": "lr_sh0", "sh1": "lr_sh1"}


@dataclass
class FitConfig:
    """Settings of :func:`fit_scene` (written to ``config.json`` in the run folder)."""

    mode: FitMode = "joint"
    iterations: int = 3000
    plain_iterations: int = 500
    """Plain splatting from the given poses before the trajectories are optimised (joint mode)."""
    num_subframes: int = 21
    bezier_order: int = 9
    subframe_chunk: int = 7
    """Sub-frames rendered with autograd at once (memory vs speed)."""
    init_points: int = 3000
    init_depth: tuple[float, float] | None = None
    """Depth range for the random initial points; None estimates it from where the optical axes meet."""
    init_foreground: bool = True
    """For photos on a known plain background (:attr:`ViewSet.background`, e.g. RGBA photos), draw the
    initial points only through scene pixels and carve them by every view's silhouette
    (:func:`init_gaussians_from_views`); no effect on other photos."""
    sh_degree: int = 0
    lr_means: float = 1.6e-3
    """Initial learning rate of the means, times the scene extent; decays 100x over the run."""
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacity: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_sh1: float = 1.25e-4
    lr_control: float = 1e-3
    """Learning rate of the Bézier control points (halves every ``lr_curve_half``, as the other trajectory rates)."""
    lr_alignment: float | None = None
    """Learning rate of each trajectory's alignment twist; None: ``lr_control``."""
    trajectory_anchor: TrajectoryAnchor = "mid"
    """``"mid"``: the given pose is the trajectory's mid-exposure pose (up to the alignment); ``"start"``: its start."""
    trajectory_init_noise: float = 0.0
    """Standard deviation of the initial control points (0: every trajectory starts as no motion)."""
    lr_times: float = 3e-3
    lr_curve_half: int = 1500
    smooth_weight: tuple[float, float] = (1e-2, 1e-3)
    """Weight of the smoothness term at the start and the end of the joint phase (geometric decay)."""
    densify_every: int = 100
    densify_from: int = 100
    densify_until_fraction: float = 0.6
    grad_threshold_start: float = 4e-4
    grad_threshold_end: float = 2e-4
    anneal_fraction: float = 1 / 6
    """Fraction of the iterations over which the threshold decays from ``densify_from`` on (25k of 150k in DeblurGS)."""
    percent_dense: float = 0.01
    prune_opacity: float = 0.005
    max_gaussians: int = 50_000
    opacity_reset_every: int = 0
    """0 disables the periodic opacity reset."""
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tile: int = 16
    max_per_tile: int = 1024
    checkpoint_every: int = 200
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise DeblurkitError(f"unknown fit settings: {', '.join(sorted(unknown))}")
        vals = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**vals)

    def validate(self) -> None:
        if self.mode not in ("plain", "joint", "oracle"):
            raise DeblurkitError(f"unknown fit mode {self.mode!r}; valid: joint, oracle, plain")
        if self.iterations < 1 or self.num_subframes < 2 or self.subframe_chunk < 1:
            raise DeblurkitError("iterations, subframe_chunk must be >= 1 and num_subframes >= 2")
        if self.sh_degree not in (0, 1):
            raise DeblurkitError(f"sh_degree must be 0 or 1, got {self.sh_degree}")
        if self.max_per_tile < 1:
            raise DeblurkitError(f"max_per_tile must be >= 1, got {self.max_per_tile}")


@dataclass
class FitResult:
    gaussians: Gaussians
    trajectories: ExposureTrajectories | None
    history: list[dict[str, float]] = field(default_factory=list)
    """One record per logged iteration: iteration, loss, l1, gaussians, seconds (wall time of the
    fit so far, the sessions before a resume included), tile_max (the most Gaussians a tile held
    since the previous record; above ``max_per_tile`` the renders dropped some)."""


def scene_extent(w2c: Tensor) -> float:
    """3DGS's scene scale: 1.1 x the largest distance of a camera centre from their mean (at least 1e-3)."""
    c = camera_centers(w2c.double())
    return max(1.1 * float((c - c.mean(0)).norm(dim=-1).max()), 1e-3)


def _to_device(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor in it (through dicts, lists and tuples) detached and moved to ``device``."""
    if torch.is_tensor(obj):
        return obj.detach().to(device)
    if isinstance(obj, dict):
        return {k: _to_device(x, device) for k, x in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(x, device) for x in obj)
    return obj


def estimate_depth_range(w2c: Tensor) -> tuple[float, float]:
    """Depth range around the point nearest to all optical axes (least squares); (1, 10) if they are parallel."""
    c = camera_centers(w2c.double())
    d = w2c[:, 2, :3].double()  # optical axes (third row of the rotation) in world coordinates
    eye = torch.eye(3, dtype=torch.float64, device=w2c.device)
    proj = eye - d[:, :, None] * d[:, None, :]
    a = proj.sum(0)
    b = (proj @ c[:, :, None]).sum(0)[:, 0]
    if torch.linalg.cond(a) > 1e6:
        return 1.0, 10.0
    p = torch.linalg.solve(a, b)
    dist = float(((p - c) * d).sum(-1).median())
    if not dist > 0:
        return 1.0, 10.0
    return 0.4 * dist, 1.6 * dist


def init_gaussians_from_views(views: ViewSet, num: int, gen: torch.Generator, *, depth: tuple[float, float],
                              sh_degree: int = 0, foreground: Tensor | None = None,
                              carve_tolerance: float = 0.1, max_rounds: int = 20) -> Gaussians:
    """Random Gaussians in the views' frustums, coloured by the (linearised) photo pixel they project to.

    Points are spread evenly over the views, at uniform inverse depth in ``depth``; each
    Gaussian's size covers its share of the image. With ``foreground`` masks (photos on a known
    plain background, :func:`~deblurkit.scene.data.foreground_masks`) the points are drawn only
    through scene pixels and kept only where at most ``carve_tolerance`` of the views that see
    them show background there (space carving: the scene lies inside every view's silhouette).
    Otherwise points drawn through background pixels become background-coloured Gaussians
    scattered in front of the object, which the training views tolerate and new views show as
    haze. The draws are made on the CPU (``gen`` is a CPU generator, so a seed gives the same
    points on any device); the Gaussians are on the device of ``views``.

    Args:
        views: the photos and their poses.
        num: number of Gaussians.
        gen: CPU random generator.
        depth: ``(near, far)`` range of the points' camera depth.
        sh_degree: spherical-harmonics degree of the colours (0 or 1).
        foreground: ``(V, H, W)`` bool scene masks, or None to draw through every pixel.
        carve_tolerance: largest fraction of the seeing views whose mask may reject a kept point
            (blurred silhouettes and given poses are not exact).
        max_rounds: batches of ``4 num`` candidates drawn at most; if they hold fewer than ``num``
            carved points, the rest are drawn through scene pixels without carving.
    """
    v, _, h, w = views.images.shape
    intr = views.intr
    device = views.images.device
    # the draws, lifting and carving run on the CPU (small tensors); only the result moves
    w2c = views.w2c.float().cpu()
    c2w = torch.linalg.inv(views.w2c.double()).float().cpu()
    lin = srgb_to_linear(views.images)
    masks = None if foreground is None else foreground.to("cpu")
    if masks is not None and not bool(masks.flatten(1).any(1).all()):
        masks = None  # a view without any scene pixel: the masks do not describe this scene

    if masks is not None:  # every view's scene pixels (flat indices), concatenated
        flat = [m.flatten().nonzero()[:, 0] for m in masks]
        sizes = torch.tensor([len(f) for f in flat], device="cpu")
        offsets = torch.cumsum(sizes, 0) - sizes
        all_pixels = torch.cat(flat)

    def draw(count: int, first_view: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        view = (torch.arange(count, device="cpu") + first_view) % v
        if masks is None:
            u = torch.rand(count, generator=gen, device="cpu") * w
            vv = torch.rand(count, generator=gen, device="cpu") * h
        else:  # a uniformly random scene pixel of each point's view, then a random spot inside it
            pick = (torch.rand(count, generator=gen, device="cpu") * sizes[view]).long().minimum(sizes[view] - 1)
            pix = all_pixels[offsets[view] + pick]
            u = (pix % w).float() + torch.rand(count, generator=gen, device="cpu")
            vv = (pix // w).float() + torch.rand(count, generator=gen, device="cpu")
        inv = 1 / depth[1] + torch.rand(count, generator=gen, device="cpu") * (1 / depth[0] - 1 / depth[1])
        return view, u, vv, 1 / inv

    def lift(view: Tensor, u: Tensor, vv: Tensor, z: Tensor) -> Tensor:
        cam = torch.stack([(u - intr.cx) / intr.fx * z, (vv - intr.cy) / intr.fy * z, z, torch.ones_like(z)], dim=-1)
        return (c2w[view] @ cam[..., None])[:, :3, 0]

    def carved(pts: Tensor) -> Tensor:
        """Which points lie inside (almost) every silhouette that sees them."""
        if len(pts) > 8192:  # bounds the (views x points) arrays
            return torch.cat([carved(part) for part in pts.split(8192)])
        hom = torch.cat([pts, torch.ones_like(pts[:, :1])], dim=1)
        cam = torch.einsum("vij,gj->vgi", w2c, hom)
        zc = cam[..., 2]
        pu = intr.fx * cam[..., 0] / zc.clamp_min(1e-6) + intr.cx
        pv = intr.fy * cam[..., 1] / zc.clamp_min(1e-6) + intr.cy
        seen = (zc > 1e-6) & (pu >= 0) & (pu < w) & (pv >= 0) & (pv < h)
        iu, iv = pu.long().clamp(0, w - 1), pv.long().clamp(0, h - 1)
        scene = masks[torch.arange(v, device="cpu")[:, None], iv, iu]
        rejected = (seen & ~scene).sum(0).float()
        return rejected <= carve_tolerance * seen.sum(0).clamp_min(1).float()

    if masks is None:
        view, u, vv, z = draw(num, 0)
        pts = lift(view, u, vv, z)
        area = float(h * w)
    else:
        kept: list[tuple[Tensor, ...]] = []
        have, first = 0, 0
        for _ in range(max_rounds):
            view, u, vv, z = draw(4 * num, first)
            first = (first + 4 * num) % v
            pts = lift(view, u, vv, z)
            ok = carved(pts)
            kept.append((view[ok], u[ok], vv[ok], z[ok], pts[ok]))
            have += int(ok.sum())
            if have >= num:
                break
        if have < num:  # too few carved points: fill up with uncarved scene-pixel draws
            extra = draw(num - have, first)
            kept.append((*extra, lift(*extra)))
        view, u, vv, z, pts = (torch.cat(parts)[:num] for parts in zip(*kept))
        area = float(sizes.float().mean())
    pts, z, view = pts.to(device), z.to(device), view.to(device)
    colors = lin[view, :, vv.long().clamp_max(h - 1).to(device), u.long().clamp_max(w - 1).to(device)]
    per_view = max(num / v, 1.0)
    sigma_px = 0.5 * math.sqrt(area / per_view)
    scale = z * sigma_px / intr.fx
    return random_gaussians(pts, colors.clamp(0.02, 0.98), scale=scale, opacity=0.1, sh_degree=sh_degree)


class _Adam:
    """Adam over named tensors (Kingma & Ba 2015, torch's defaults), whose moments can follow
    densification and pruning. Plain tensor code: constructing ``torch.optim.Adam`` imports
    torch's compiler stack, seconds on a busy machine."""

    def __init__(self, params: dict[str, Tensor], lrs: dict[str, float], *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-15) -> None:
        self.params = dict(params)
        self.lrs = dict(lrs)
        self.betas, self.eps = betas, eps
        self.state: dict[str, dict[str, Any]] = {
            n: {"m": torch.zeros_like(t), "v": torch.zeros_like(t), "step": 0} for n, t in self.params.items()
        }

    @torch.no_grad()
    def step(self, rows: Tensor | None = None) -> None:
        """One Adam step; with ``rows``, only those rows (first axis) of every tensor are updated.

        Row-sparse steps keep a step count per row, so that a per-view parameter (a trajectory)
        moves only when its view was rendered: a dense Adam would keep moving every view's rows
        on stale momentum at every iteration, about 30x the intended step per visit.
        """
        b1, b2 = self.betas
        for n, t in self.params.items():
            if t.grad is None:
                continue
            st = self.state[n]
            if rows is None:
                st["step"] += 1
                st["m"].mul_(b1).add_(t.grad, alpha=1 - b1)
                st["v"].mul_(b2).addcmul_(t.grad, t.grad, value=1 - b2)
                denom = (st["v"] / (1 - b2 ** st["step"])).sqrt_().add_(self.eps)
                t.addcdiv_(st["m"], denom, value=-self.lrs[n] / (1 - b1 ** st["step"]))
            else:
                if not torch.is_tensor(st["step"]):
                    st["step"] = torch.full((t.shape[0],), float(st["step"]), device=t.device)
                st["step"][rows] += 1
                k = st["step"][rows].reshape(-1, *([1] * (t.ndim - 1)))
                g = t.grad[rows]
                st["m"][rows] = b1 * st["m"][rows] + (1 - b1) * g
                st["v"][rows] = b2 * st["v"][rows] + (1 - b2) * g * g
                denom = (st["v"][rows] / (1 - b2**k)).sqrt() + self.eps
                t[rows] -= self.lrs[n] / (1 - b1**k) * st["m"][rows] / denom
            t.grad = None

    def rebuild(self, new: Gaussians, keep: Tensor, appended: int) -> None:
        """Swap in ``new`` = ``old[keep]`` followed by ``appended`` fresh Gaussians (zero moments)."""
        self.params = new.parameters()
        for st in self.state.values():
            for key in ("m", "v"):
                s = st[key][keep]
                st[key] = torch.cat([s, s.new_zeros((appended, *s.shape[1:]))])

    def reset(self, name: str) -> None:
        st = self.state[name]
        st["m"].zero_()
        st["v"].zero_()

    def state_dict(self) -> dict[str, Any]:
        return {"lrs": dict(self.lrs), "state": {n: dict(st) for n, st in self.state.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load moments saved by :meth:`state_dict`, onto the device of each parameter (checkpoints hold CPU tensors)."""
        self.lrs = dict(state["lrs"])
        self.state = {n: _to_device(dict(st), self.params[n].device) for n, st in state["state"].items()}


def _threshold(config: FitConfig, it: int) -> float:
    """Densification gradient threshold after ``it`` iterations.

    Constant at ``grad_threshold_start`` until ``densify_from`` (when densification starts),
    then exponential down to ``grad_threshold_end`` over ``anneal_fraction`` of the iterations,
    then constant.
    """
    span = max(1, round(config.anneal_fraction * config.iterations))
    f = min(max(it - config.densify_from, 0) / span, 1.0)
    return config.grad_threshold_start * (config.grad_threshold_end / config.grad_threshold_start) ** f


def _densify_and_prune(gs: Gaussians, opt: _Adam, grad_sum: Tensor, count: Tensor, threshold: float,
                       extent: float, config: FitConfig, gen: torch.Generator) -> tuple[Gaussians, dict[str, int]]:
    grads = grad_sum / count.clamp_min(1)
    big_grad = (grads >= threshold) & (count > 0)
    max_scale = gs.scales().detach().amax(-1)
    room = max(0, config.max_gaussians - len(gs))
    clone = big_grad & (max_scale <= config.percent_dense * extent)
    split = big_grad & (max_scale > config.percent_dense * extent)
    # respect the cap: drop the lowest-gradient candidates first
    for mask, cost in ((clone, 1), (split, 1)):
        n = int(mask.sum())
        if n * cost > room:
            idx = torch.nonzero(mask)[:, 0]
            drop = idx[grads[idx].argsort()[: n - room // cost]]
            mask[drop] = False
        room -= int(mask.sum()) * cost
    d = gs.detach()
    cloned = d.select(clone)
    parts = d.select(split)
    # two samples from each split Gaussian, scales / 1.6
    new_parts = []
    for _ in range(2):
        p = parts.select(torch.arange(len(parts), device=parts.means.device))
        # drawn on the CPU from the CPU generator: the same samples on any device
        offset = torch.randn(len(parts), 3, generator=gen, dtype=d.means.dtype, device="cpu").to(d.means.device)
        offset = offset * parts.scales()
        p.means = parts.means + (quat_to_rotmat(parts.quats) @ offset[..., None])[..., 0]
        p.log_scales = parts.log_scales - math.log(1.6)
        new_parts.append(p)
    appended = cloned
    for p in new_parts:
        appended = appended.cat(p)
    keep = ~split
    keep &= torch.sigmoid(d.opacity_logits) >= config.prune_opacity
    kept = d.select(keep)
    # the appended ones are pruned too when transparent (never, right after a clone)
    new = kept.cat(appended).requires_grad_(True)
    opt.rebuild(new, keep, len(appended))
    stats = {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int((~keep).sum()) - int(split.sum())}
    return new, stats


def _subframe_poses(mode: FitMode, views: ViewSet, traj: ExposureTrajectories | None, v: int, n: int, joint: bool) -> Tensor:
    """``(N', 4, 4)`` sub-frame world-to-camera poses of view ``v`` (differentiable in the trajectory)."""
    if mode == "oracle":
        if views.true_w2c is None:
            raise DeblurkitError("oracle mode needs the true exposure poses (synthetic views)")
        m = views.true_w2c.shape[1]
        pick = torch.linspace(0, m - 1, n, device=views.true_w2c.device).round().long()
        return views.true_w2c[v, pick]
    if mode == "plain" or not joint or traj is None:
        return views.w2c[v : v + 1]
    return traj.world_to_camera(views.w2c[v : v + 1], torch.tensor([v], device=views.w2c.device))[0]


def _on_screen(out: Any, intr: Intrinsics) -> Tensor:
    """``(G,)`` bool: the Gaussian's 3-sigma box touches the image in some camera of the batch."""
    p, e = out.projected.means2d.detach(), out.projected.extents
    size = torch.tensor([intr.width, intr.height], dtype=p.dtype, device=p.device)
    hit = (e > 0).all(-1) & ((p + e) >= 0).all(-1) & ((p - e) <= size).all(-1)
    return hit.any(0)


def _blurry_loss_backward(gs: Gaussians, poses_fn: Callable[[], Tensor], target: Tensor, intr: Intrinsics,
                          config: FitConfig, ndc_scale: Tensor) -> tuple[float, Tensor, Tensor]:
    """Render the blurry view, back-propagate its L1 loss chunk by chunk.

    Returns:
        ``(l1, ndc_grad (G, 2) summed over sub-frames, seen (G,) bool, tile_max)``, ``tile_max``
        the most Gaussians any tile of these renders held before ``max_per_tile`` cut its list.
    """
    kw = {"background": config.background, "tile": config.tile, "max_per_tile": config.max_per_tile}
    with torch.no_grad():
        poses = poses_fn()
    n = poses.shape[0]
    chunk = config.subframe_chunk
    if n <= chunk:
        poses = poses_fn()
        out = render(gs, poses, intr, **kw)
        out.projected.means2d.retain_grad()
        loss = (average_linear_to_srgb(out.image) - target).abs().mean()
        loss.backward()
        grad = out.projected.means2d.grad.sum(0) * ndc_scale
        return float(loss.detach()), grad, _on_screen(out, intr), int(out.tile_counts.max())
    tile_max = 0
    with torch.no_grad():
        lin = []
        for i in range(0, n, chunk):
            out = render(gs, poses[i : i + chunk], intr, **kw)
            lin.append(out.image)
            tile_max = max(tile_max, int(out.tile_counts.max()))
        lin = torch.cat(lin)
    mean = lin.mean(0, keepdim=True).requires_grad_(True)
    from deblurkit.synth.color import linear_to_srgb

    loss = (linear_to_srgb(mean.clamp(0.0, 1.0)) - target).abs().mean()
    loss.backward()
    upstream = mean.grad / n
    grad = torch.zeros(len(gs), 2, dtype=gs.means.dtype, device=gs.means.device)
    seen = torch.zeros(len(gs), dtype=torch.bool, device=gs.means.device)
    for i in range(0, n, chunk):
        poses = poses_fn()[i : i + chunk]
        out = render(gs, poses, intr, **kw)
        out.projected.means2d.retain_grad()
        (out.image * upstream).sum().backward()
        grad += out.projected.means2d.grad.sum(0) * ndc_scale
        seen |= _on_screen(out, intr)
    return float(loss.detach()), grad, seen, tile_max


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically, every tensor moved to the CPU so that any machine can load it."""
    buf = io.BytesIO()
    torch.save(_to_device(payload, "cpu"), buf)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu",
             ) -> tuple[FitConfig, Gaussians, ExposureTrajectories | None, dict[str, Any]]:
    """The config, Gaussians, trajectories and raw checkpoint of a run folder.

    The checkpoint also holds the input views' given poses (``w2c``), ``intrinsics`` (a dict of
    :class:`~deblurkit.scene.render.Intrinsics` fields), ``names``, ``iteration`` and ``history``.

    Args:
        run_dir: the run folder.
        device: where the Gaussians and trajectories go; the raw checkpoint stays on the CPU
            (it is loaded with ``map_location="cpu"``, whatever device the run was fitted on).

    Raises:
        DeblurkitError: no readable checkpoint there, or an unusable ``device``.
    """
    device = resolve_device(device)
    path = Path(run_dir) / "checkpoint.pt"
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        config = FitConfig.from_dict(ck["config"])
        gs = Gaussians.from_state_dict(ck["gaussians"]).to(device)
        traj = None
        if ck.get("trajectories") is not None:
            traj = ExposureTrajectories(ck["num_views"], order=config.bezier_order, num_subframes=config.num_subframes,
                                        device=device, anchor=config.trajectory_anchor)
            traj.load_state_dict(ck["trajectories"])
    except DeblurkitError:
        raise
    except Exception as exc:  # unreadable, truncated or foreign file: one line, no traceback
        raise DeblurkitError(f"cannot read the run checkpoint {path}: {exc}") from exc
    return config, gs, traj, ck


def sharp_view_poses(w2c: Tensor, trajectories: ExposureTrajectories | None) -> Tensor:
    """``(V, 4, 4)`` poses at which to render sharp versions of the input views: mid-exposure when
    trajectories were fitted, else the given poses."""
    if trajectories is None:
        return w2c
    with torch.no_grad():
        v = trajectories.num_views
        mid = torch.full((v, 1), 0.5, dtype=trajectories.control.dtype, device=trajectories.control.device)
        return trajectories.world_to_camera(w2c, None, mid)[:, 0].to(w2c.dtype)


def fit_scene(
    views: ViewSet,
    config: FitConfig,
    *,
    run_dir: str | Path | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
    log_every: int = 50,
    monitor: Callable[[Gaussians, ExposureTrajectories | None], dict[str, float]] | None = None,
    device: str | torch.device | None = None,
) -> FitResult:
    """Fit Gaussians (and, in joint mode, exposure trajectories) to blurry posed photos.

    Args:
        views: the blurry photos, float32 sRGB ``(V, 3, H, W)``, with their given poses.
        config: settings (:class:`FitConfig`).
        run_dir: folder for ``config.json`` and ``checkpoint.pt``; a run there resumes from its
            checkpoint (the settings must match). None keeps everything in memory.
        progress: called with each logged record.
        log_every: iterations between history records.
        monitor: called at each logged iteration with the current Gaussians and trajectories
            (no gradients); the numbers it returns join the record (e.g. trajectory errors
            against known true poses).
        device: where to fit (any torch device); None: where ``views`` are. The views are moved
            there; a checkpoint from any device resumes.

    Returns:
        :class:`FitResult` with the Gaussians, the trajectories (joint mode) and the history, on
        the fitting device.

    Raises:
        DeblurkitError: bad settings, an unusable device, or a run folder made with different settings.
    """
    config.validate()
    device = views.device if device is None else resolve_device(device)
    views = views.to(device)
    # a CPU generator on every device: the same seed draws the same numbers on a GPU
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    v = len(views)
    extent = scene_extent(views.w2c)
    intr = views.intr
    ndc_scale = torch.tensor([0.5 * intr.width, 0.5 * intr.height], dtype=views.images.dtype, device=device)
    run = Path(run_dir) if run_dir is not None else None
    ck_path = run / "checkpoint.pt" if run is not None else None

    traj = None
    if config.mode == "joint":
        traj = ExposureTrajectories(v, order=config.bezier_order, num_subframes=config.num_subframes,
                                    device=device, anchor=config.trajectory_anchor)
    depth = config.init_depth or estimate_depth_range(views.w2c)
    gs = init_gaussians_from_views(views, config.init_points, gen, depth=depth, sh_degree=config.sh_degree,
                                   foreground=foreground_masks(views) if config.init_foreground else None)
    if traj is not None and config.trajectory_init_noise > 0:
        with torch.no_grad():
            noise = torch.randn(traj.control.shape, generator=gen, device="cpu")
            traj.control.copy_(config.trajectory_init_noise * noise.to(device))
    gs.requires_grad_(True)
    lrs = {n: getattr(config, _GAUSSIAN_LR_KEYS[n]) for n in gs.names()}
    lrs["means"] *= extent
    opt = _Adam(gs.parameters(), lrs)
    traj_opt = None
    if traj is not None:
        traj_params = {"control": traj.control, "alignment": traj.alignment, "inner_times": traj.inner_times}
        lr_align = config.lr_control if config.lr_alignment is None else config.lr_alignment
        traj_lrs = {"control": config.lr_control, "alignment": lr_align, "inner_times": config.lr_times}
        traj_opt = _Adam(traj_params, traj_lrs, eps=1e-8)
    start, history, seconds_before = 0, [], 0.0
    grad_sum = gs.means.new_zeros(len(gs))
    count = gs.means.new_zeros(len(gs))
    order: list[int] = []

    if ck_path is not None and ck_path.exists():
        saved_config, gs_saved, traj_saved, ck = load_run(run, device=device)
        if saved_config.to_dict() != config.to_dict():
            raise DeblurkitError(f"{run} holds a run with different settings; use another folder")
        gs = gs_saved.requires_grad_(True)
        opt = _Adam(gs.parameters(), lrs)
        opt.load_state_dict(ck["optimizer"])
        if traj is not None and traj_saved is not None:
            traj.load_state_dict(traj_saved.state_dict())
            traj_opt.load_state_dict(ck["trajectory_optimizer"])
        start, history = ck["iteration"], ck["history"]
        seconds_before = float(ck.get("seconds", 0.0))  # checkpoints from before this field: 0
        grad_sum, count = ck["grad_sum"].to(device), ck["count"].to(device)
        gen.set_state(ck["generator"])
        order = ck["order"]
    elif run is not None:
        run.mkdir(parents=True, exist_ok=True)
        with atomic_write(run / "config.json", "w") as fh:
            json.dump(config.to_dict(), fh, indent=2)

    def checkpoint(it: int) -> None:
        if ck_path is None:
            return
        _save_checkpoint(ck_path, {
            "config": config.to_dict(), "iteration": it, "num_views": v,
            "w2c": views.w2c, "intrinsics": asdict(intr), "names": views.names,
            "gaussians": gs.state_dict(), "optimizer": opt.state_dict(),
            "trajectories": None if traj is None else traj.state_dict(),
            "trajectory_optimizer": None if traj_opt is None else traj_opt.state_dict(),
            "history": history, "grad_sum": grad_sum, "count": count,
            "generator": gen.get_state(), "order": order, "seconds": time.perf_counter() - t0,
        })

    densify_until = round(config.densify_until_fraction * config.iterations)
    t0 = time.perf_counter() - seconds_before  # a resumed fit's records count the earlier sessions' time
    tile_max = 0  # the longest tile list (before the cap) since the last record
    for it in range(start, config.iterations):
        frac = it / max(1, config.iterations - 1)
        opt.lrs["means"] = lrs["means"] * 0.01**frac
        joint = config.mode == "joint" and it >= config.plain_iterations
        if traj_opt is not None:
            half = 0.5 ** (max(0, it - config.plain_iterations) / config.lr_curve_half)
            traj_opt.lrs.update(control=config.lr_control * half, alignment=lr_align * half,
                                inner_times=config.lr_times * half)
        if not order:
            order = torch.randperm(v, generator=gen, device="cpu").tolist()
        view = order.pop()
        target = views.images[view : view + 1]
        n_sub = config.num_subframes if (joint or config.mode == "oracle") else 1
        poses_fn = functools.partial(_subframe_poses, config.mode, views, traj, view, n_sub, joint)
        l1, grad2d, seen, tiles = _blurry_loss_backward(gs, poses_fn, target, intr, config, ndc_scale)
        tile_max = max(tile_max, tiles)
        loss = l1
        if joint and traj is not None and traj_opt is not None:
            span = max(1, config.iterations - config.plain_iterations)
            f = (it - config.plain_iterations) / span
            w = config.smooth_weight[0] * (config.smooth_weight[1] / config.smooth_weight[0]) ** f
            rows = torch.tensor([view], device=device)
            smooth = w * traj.smoothness(rows)
            smooth.backward()
            loss += float(smooth.detach())
            traj_opt.step(rows=rows)
        opt.step()
        with torch.no_grad():
            grad_sum += torch.where(seen, grad2d.norm(dim=-1), 0.0)
            count += seen.float()
        done = it + 1
        if config.densify_from <= done <= densify_until and done % config.densify_every == 0:
            gs, _ = _densify_and_prune(gs, opt, grad_sum, count, _threshold(config, done), extent, config, gen)
            grad_sum = gs.means.new_zeros(len(gs))
            count = gs.means.new_zeros(len(gs))
        if config.opacity_reset_every and done % config.opacity_reset_every == 0 and done < densify_until:
            with torch.no_grad():
                cap = math.log(0.01 / 0.99)
                gs.opacity_logits.clamp_(max=cap)
            opt.reset("opacity_logits")
        if done % log_every == 0 or done == config.iterations:
            rec = {"iteration": done, "loss": loss, "l1": l1, "gaussians": len(gs),
                   "seconds": time.perf_counter() - t0, "tile_max": tile_max}
            tile_max = 0
            if monitor is not None:
                with torch.no_grad():
                    rec.update(monitor(gs.detach(), traj))
            history.append(rec)
            if progress is not None:
                progress(rec)
        if done % config.checkpoint_every == 0 or done == config.iterations:
            checkpoint(done)
    return FitResult(gs.detach(), traj, history)
