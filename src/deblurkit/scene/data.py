"""Multi-view data: synthetic scenes with shaken views, and readers for posed photo folders.

- :func:`make_synthetic_scene`: textured boxes in front of a textured wall, as ground-truth
  Gaussians (flat splats on a grid over every face).
- :func:`forward_facing_cameras`: cameras on a small disc looking at the scene.
- :func:`random_shake_twists` / :func:`make_blurry_views`: random smooth 6-DoF camera shake
  over each exposure, rendered densely and averaged in linear light, plus sensor noise from
  :mod:`deblurkit.synth.isp`; the given pose of each view is its mid-exposure pose.
- :func:`rotation_blur_views`: blur sharp photos of any scene by camera *rotation* (an exact
  homography per sub-frame), e.g. the NeRF-synthetic lego views.
- :func:`restore_views`: each photo deblurred on its own by a single-image restorer (the
  "deblur, then splat" baseline).
- :func:`read_nerf_transforms`, :func:`read_colmap_text`, :func:`load_views`: posed photos from
  NeRF ``transforms.json`` or COLMAP text (``cameras.txt`` + ``images.txt``).

Poses are world-to-camera ``(4, 4)`` matrices in the OpenCV/COLMAP frame (x right, y down, z
forward); images are float32 sRGB ``(V, 3, H, W)`` in [0, 1].

Devices: readers and the synthetic-scene makers build on the CPU (random draws come from a CPU
``torch.Generator``, so a seed gives the same data on any machine); :meth:`ViewSet.to` and
:meth:`~deblurkit.scene.gaussians.Gaussians.to` move them. Functions that take tensors
(:func:`make_blurry_views`, :func:`rotation_blur_views`, :func:`restore_views`, :func:`look_at_w2c`)
return them on the device of their inputs; CPU-only steps (sensor noise, homography warps,
single-image restorers) run on a CPU copy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from deblurkit.errors import DeblurkitError
from deblurkit.scene.gaussians import Gaussians, linear_rgb_to_sh0, rotmat_to_quat
from deblurkit.scene.render import Intrinsics, render
from deblurkit.scene.trajectory import se3_exp
from deblurkit.synth.color import linear_to_srgb, srgb_to_linear
from deblurkit.synth.isp import add_poisson_gaussian_noise, sample_noise_levels

if TYPE_CHECKING:
    from deblurkit.infer.base import Restorer


@dataclass
class ViewSet:
    """Posed images of one scene that share a pinhole camera."""

    images: Tensor
    """``(V, 3, H, W)`` float32 sRGB in [0, 1]."""
    w2c: Tensor
    """``(V, 4, 4)`` float32 world-to-camera poses (for blurry photos: the given, roughly mid-exposure, pose)."""
    intr: Intrinsics
    names: list[str]
    true_w2c: Tensor | None = None
    """``(V, M, 4, 4)`` true poses over each exposure (synthetic data only)."""
    background: tuple[float, float, float] | None = None
    """sRGB colour that transparent pixels of the photos were composited on (photos with transparent
    pixels, e.g. NeRF-synthetic scenes): pixels of this colour show no part of the scene
    (:func:`foreground_masks`). None: unknown (opaque photos, an opaque alpha channel included)."""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> ViewSet:
        """The same views with images and poses on ``device`` (no copy where they already are)."""
        return replace(
            self,
            images=self.images.to(device),
            w2c=self.w2c.to(device),
            true_w2c=None if self.true_w2c is None else self.true_w2c.to(device),
        )

    def subset(self, index: list[int]) -> ViewSet:
        return replace(
            self,
            images=self.images[index],
            w2c=self.w2c[index],
            names=[self.names[i] for i in index],
            true_w2c=None if self.true_w2c is None else self.true_w2c[index],
        )


def look_at_w2c(eye: Tensor, target: Tensor, up: tuple[float, float, float] = (0.0, -1.0, 0.0)) -> Tensor:
    """World-to-camera pose (OpenCV frame) of a camera at ``eye`` looking at ``target``.

    Args:
        eye: ``(3,)`` camera position.
        target: ``(3,)`` point on the optical axis.
        up: world direction that appears upwards in the image (default -y, the OpenCV convention).

    Returns:
        ``(4, 4)`` float32 matrix on the device of ``eye``.
    """
    eye, target = eye.to(torch.float64), target.to(device=eye.device, dtype=torch.float64)
    z = target - eye
    z = z / z.norm()
    x = torch.linalg.cross(z, -torch.tensor(up, dtype=torch.float64, device=eye.device))
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    rot = torch.stack([x, y, z])  # rows: camera axes in world coordinates
    m = torch.eye(4, dtype=torch.float64, device=eye.device)
    m[:3, :3] = rot
    m[:3, 3] = -rot @ eye
    return m.float()


def forward_facing_cameras(num: int, *, radius: float = 0.6, target_depth: float = 4.0) -> Tensor:
    """``(num, 4, 4)`` poses on a golden-angle spiral of the given radius in the z = 0 plane, looking at (0, 0, target_depth)."""
    poses = []
    for i in range(num):
        r = radius * math.sqrt((i + 0.5) / num)
        a = i * math.pi * (3 - math.sqrt(5))
        eye = torch.tensor([r * math.cos(a), r * math.sin(a), 0.1 * math.sin(3 * a)])
        poses.append(look_at_w2c(eye, torch.tensor([0.0, 0.0, target_depth])))
    return torch.stack(poses)


def _texture_srgb(u: Tensor, v: Tensor, gen: torch.Generator) -> Tensor:
    """A random procedural texture (coloured checker cells with stripes) at face coordinates ``(u, v)``."""
    cell = 0.25 + 0.35 * float(torch.rand((), generator=gen))
    palette = torch.rand(5, 3, generator=gen) * 0.85 + 0.1
    iu, iv = torch.floor(u / cell).long(), torch.floor(v / cell).long()
    pick = (iu * 3 + iv * 7 + (iu * iv) % 5).remainder(5)
    freq = 2 * math.pi / (0.2 + 0.3 * float(torch.rand((), generator=gen)))
    angle = math.pi * float(torch.rand((), generator=gen))
    stripes = 0.75 + 0.25 * torch.sign(torch.sin(freq * (u * math.cos(angle) + v * math.sin(angle))))
    return palette[pick] * stripes[:, None]


def _face_gaussians(centre: Tensor, axis_u: Tensor, axis_v: Tensor, size_u: float, size_v: float,
                    spacing: float, gen: torch.Generator) -> Gaussians:
    """Flat opaque Gaussians on a grid over a rectangle ``centre + u axis_u + v axis_v``."""
    nu, nv = max(2, round(size_u / spacing)), max(2, round(size_v / spacing))
    us = (torch.arange(nu) + 0.5) / nu * size_u - size_u / 2
    vs = (torch.arange(nv) + 0.5) / nv * size_v - size_v / 2
    uu, vv = torch.meshgrid(us, vs, indexing="ij")
    uu, vv = uu.reshape(-1), vv.reshape(-1)
    means = centre + uu[:, None] * axis_u + vv[:, None] * axis_v
    normal = torch.linalg.cross(axis_u, axis_v)
    rot = torch.stack([axis_u, axis_v, normal], dim=1)  # columns: the Gaussian's axes
    g = means.shape[0]
    su, sv = 0.6 * size_u / nu, 0.6 * size_v / nv
    log_scales = torch.log(torch.tensor([su, sv, 0.05 * min(su, sv)])).expand(g, 3).clone()
    color = srgb_to_linear(_texture_srgb(uu + size_u / 2, vv + size_v / 2, gen))
    return Gaussians(
        means=means.float(),
        log_scales=log_scales,
        quats=rotmat_to_quat(rot[None].double()).float().expand(g, 4).clone(),
        opacity_logits=torch.full((g,), 4.0),
        sh0=linear_rgb_to_sh0(color).float(),
    )


def make_synthetic_scene(gen: torch.Generator, *, spacing: float = 0.1, num_boxes: int = 3) -> Gaussians:
    """A textured wall at depth 6 with ``num_boxes`` textured boxes at depths 2.5-4.5, as Gaussians.

    The scene fills the view of :func:`forward_facing_cameras` with a 50 degree field of view.

    Args:
        gen: random source (textures, box sizes and places).
        spacing: grid step of the splats on every face (world units; the wall is 7.2 x 7.2).
        num_boxes: boxes in front of the wall.

    Returns:
        Float32 degree-0 Gaussians (about ``60 / spacing^2`` of them).
    """
    ex, ey, _ = torch.eye(3).unbind(0)
    parts = [_face_gaussians(torch.tensor([0.0, 0.0, 6.0]), ex, ey, 7.2, 7.2, spacing, gen)]
    for _ in range(num_boxes):
        size = 0.6 + 0.5 * torch.rand(3, generator=gen)
        depth = 2.5 + 2.0 * float(torch.rand((), generator=gen))
        half_view = depth * math.tan(math.radians(25)) - 0.6
        c = torch.tensor([(2 * float(torch.rand((), generator=gen)) - 1) * half_view,
                          (2 * float(torch.rand((), generator=gen)) - 1) * half_view, depth])
        a = 0.6 * (float(torch.rand((), generator=gen)) - 0.5)  # yaw
        ru = torch.tensor([math.cos(a), 0.0, -math.sin(a)])
        rw = torch.tensor([math.sin(a), 0.0, math.cos(a)])
        sx, sy, sz = size.tolist()
        faces = [
            (c - rw * sz / 2, ru, ey, sx, sy), (c + rw * sz / 2, -ru, ey, sx, sy),
            (c - ru * sx / 2, -rw, ey, sz, sy), (c + ru * sx / 2, rw, ey, sz, sy),
            (c - ey * sy / 2, ru, -rw, sx, sz), (c + ey * sy / 2, ru, rw, sx, sz),
        ]
        parts += [_face_gaussians(*f, spacing, gen) for f in faces]
    out = parts[0]
    for p in parts[1:]:
        out = out.cat(p)
    return out


def random_shake_twists(gen: torch.Generator, num_views: int, num_samples: int, *,
                        rotation_deg: tuple[float, float] = (1.0, 2.5),
                        translation: tuple[float, float] = (0.02, 0.08)) -> Tensor:
    """Random smooth 6-DoF camera shake over an exposure, relative to the mid-exposure pose.

    Each degree of freedom is a sum of three random low-frequency sinusoids over ``t`` in [0, 1]
    (0.3 to 2 cycles); the curve is shifted so that ``t = 0.5`` is the identity and scaled so
    that its largest rotation angle and camera displacement (from the mid pose) are uniform
    draws from the given ranges.

    Args:
        gen: random source.
        num_views: ``V``.
        num_samples: ``M`` time samples (uniform, ends included).
        rotation_deg: range of the largest rotation angle (degrees).
        translation: range of the largest displacement (world units).

    Returns:
        ``(V, M, 6)`` float32 twists ``(rho, omega)``; poses are ``se3_exp(xi) @ P_mid``.
    """
    t = torch.linspace(0, 1, num_samples, dtype=torch.float64)
    freq = 0.3 + 1.7 * torch.rand(num_views, 6, 3, 1, generator=gen, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(num_views, 6, 3, 1, generator=gen, dtype=torch.float64)
    amp = torch.randn(num_views, 6, 3, 1, generator=gen, dtype=torch.float64)
    xi = (amp * torch.sin(2 * math.pi * freq * t + phase)).sum(2).transpose(1, 2)  # (V, M, 6)
    xi = xi - xi[:, num_samples // 2 : num_samples // 2 + 1] if num_samples % 2 else xi - 0.5 * (
        xi[:, num_samples // 2 - 1 : num_samples // 2] + xi[:, num_samples // 2 : num_samples // 2 + 1])
    lo_r, hi_r = rotation_deg
    lo_t, hi_t = translation
    rot_target = torch.deg2rad(lo_r + (hi_r - lo_r) * torch.rand(num_views, 1, 1, generator=gen, dtype=torch.float64))
    tr_target = lo_t + (hi_t - lo_t) * torch.rand(num_views, 1, 1, generator=gen, dtype=torch.float64)
    rot_max = xi[..., 3:].norm(dim=-1).amax(dim=1, keepdim=True)[..., None].clamp_min(1e-12)
    xi[..., 3:] = xi[..., 3:] / rot_max * rot_target
    disp = se3_exp(xi)[..., :3, 3].norm(dim=-1).amax(dim=1, keepdim=True)[..., None].clamp_min(1e-12)
    xi[..., :3] = xi[..., :3] / disp * tr_target
    return xi.float()


@torch.no_grad()
def render_views_linear(gaussians: Gaussians, w2c: Tensor, intr: Intrinsics, *, chunk: int = 8, **kwargs) -> Tensor:
    """Sharp linear-light renders ``(V, 3, H, W)`` of ``w2c (V, 4, 4)``, ``chunk`` cameras at a time."""
    return torch.cat([render(gaussians, w2c[i : i + chunk], intr, **kwargs).image for i in range(0, w2c.shape[0], chunk)])


def make_blurry_views(
    gaussians: Gaussians,
    w2c_mid: Tensor,
    intr: Intrinsics,
    gen: torch.Generator,
    *,
    num_samples: int = 32,
    rotation_deg: tuple[float, float] = (1.0, 2.5),
    translation: tuple[float, float] = (0.02, 0.08),
    noise: str = "unprocessing",
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> ViewSet:
    """Blurry sRGB photos of a Gaussian scene under random camera shake.

    Each view is the mean of ``num_samples`` sharp linear renders along a random shake trajectory
    (:func:`random_shake_twists`), plus Poisson-Gaussian noise (a model from
    :data:`deblurkit.synth.isp.NOISE_MODELS`), clipped and sRGB-encoded. The given pose of a view
    is its mid-exposure pose; the true poses are kept in ``true_w2c``.

    Returns:
        :class:`ViewSet` with ``true_w2c (V, num_samples, 4, 4)``, on the device of ``gaussians``
        (the shake and the noise are drawn on the CPU from ``gen``, the same on any device).
    """
    v = w2c_mid.shape[0]
    device = gaussians.means.device
    w2c_mid = w2c_mid.to(device)
    xi = random_shake_twists(gen, v, num_samples, rotation_deg=rotation_deg, translation=translation)
    true_w2c = se3_exp(xi.to(device)) @ w2c_mid[:, None]
    images = []
    for i in range(v):
        lin = render_views_linear(gaussians, true_w2c[i], intr, background=background).mean(0, keepdim=True)
        shot, read = sample_noise_levels(noise, gen)
        if shot > 0 or read > 0:  # the noise draws from the CPU generator, so they are made on the CPU
            levels = torch.tensor([shot], device="cpu"), torch.tensor([read], device="cpu")
            lin = add_poisson_gaussian_noise(lin.clamp_min(0).cpu(), *levels, gen).to(device)
        images.append(linear_to_srgb(lin.clamp(0, 1)))
    return ViewSet(torch.cat(images), w2c_mid.clone(), intr, [f"view_{i:03d}" for i in range(v)], true_w2c)


def rotation_blur_views(views: ViewSet, gen: torch.Generator, *, num_samples: int = 32,
                        rotation_deg: tuple[float, float] = (1.0, 2.5)) -> ViewSet:
    """Blur sharp posed photos by camera rotation during the exposure (exact up to the image border).

    A rotation ``R`` about the camera centre maps pixels by the homography ``K R K^-1``, so every
    sub-frame is a warp of the sharp photo (bilinear; the border is reflected). Averaging is in
    linear light. The given pose stays the sharp photo's pose, which is the mid-exposure pose.

    Returns:
        A :class:`ViewSet` of blurry photos with ``true_w2c (V, num_samples, 4, 4)``, on the device
        of ``views`` (the warps themselves run on the CPU).
    """
    from deblurkit.synth.blur import warp_average

    xi = random_shake_twists(gen, len(views), num_samples, rotation_deg=rotation_deg, translation=(0.0, 0.0))
    xi[..., :3] = 0.0
    rel = se3_exp(xi)
    k = views.intr.matrix()
    shift = torch.tensor([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], dtype=torch.float64, device="cpu")  # OpenCV centres -> ours
    homs = [torch.linalg.inv(shift) @ k @ r[:, :3, :3].double() @ torch.linalg.inv(k) @ shift for r in rel]
    lin = srgb_to_linear(views.images.cpu())  # warp_average works on NumPy arrays
    blurred = warp_average(lin, [h.float() for h in homs], quantize=False).to(views.device)
    return replace(views, images=linear_to_srgb(blurred.clamp(0, 1)), true_w2c=rel.to(views.device) @ views.w2c[:, None])


def restore_views(views: ViewSet, restorer: Restorer, *, min_side: int = 96) -> ViewSet:
    """Deblur every photo on its own with a single-image restorer (poses unchanged).

    Photos whose shorter side is under ``min_side`` are enlarged by the smallest integer factor
    that reaches it (bicubic) before restoring and reduced back (area average) afterwards: the
    classical kernel estimator refuses images under twice its kernel window (64 px for the
    default 31 px), and the scene studies use photos of 48-64 px.

    Args:
        views: blurry photos, float32 sRGB ``(V, 3, H, W)`` in [0, 1].
        restorer: a :class:`deblurkit.infer.base.Restorer`, e.g. ``load_restorer("default")``.
        min_side: smallest side, in pixels, handed to the restorer.

    Returns:
        The same :class:`ViewSet` with restored images, clipped to [0, 1], on the device of the
        input ones; ``true_w2c`` is kept.
    """
    import cv2

    h, w = views.images.shape[-2:]
    factor = max(1, math.ceil(min_side / min(h, w)))
    out = []
    for img in views.images.permute(0, 2, 3, 1).cpu().numpy():  # the restorers take NumPy images
        big = img if factor == 1 else cv2.resize(img, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
        res = np.asarray(restorer.restore_rgb(np.ascontiguousarray(big, dtype=np.float32)), dtype=np.float32)
        if factor > 1:
            res = cv2.resize(res, (w, h), interpolation=cv2.INTER_AREA)
        out.append(np.clip(res, 0.0, 1.0))
    return replace(views, images=torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous().to(views.device))


def foreground_masks(views: ViewSet, *, tolerance: float = 2.0 / 255.0) -> Tensor | None:
    """Where each photo shows the scene rather than its plain background.

    Args:
        views: photos with a known :attr:`ViewSet.background` (blurred or restored photos keep it:
            the object's blur spreads over the background and counts as scene).
        tolerance: largest difference (sRGB, any channel) from the background colour that still
            counts as background.

    Returns:
        ``(V, H, W)`` bool, True on scene pixels; None if the background is unknown.
    """
    if views.background is None:
        return None
    bg = torch.tensor(views.background, dtype=views.images.dtype, device=views.device)
    return (views.images - bg[None, :, None, None]).abs().amax(dim=1) > tolerance


def _load_rgb(path: Path, background: tuple[float, float, float], size: tuple[int, int] | None) -> tuple[np.ndarray, bool]:
    """An image as float32 sRGB ``(H, W, 3)``, RGBA composited on ``background``; and whether it had
    transparent pixels."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DeblurkitError(f"cannot read image {path}")
    depth = 65535.0 if img.dtype == np.uint16 else 255.0
    img = img.astype(np.float32) / depth
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if size is not None and (img.shape[1], img.shape[0]) != size:
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    rgb = img[..., 2::-1] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
    # only photos with transparent pixels tell where the scene is not (an opaque alpha channel does not)
    transparent = img.shape[2] == 4 and bool((img[..., 3] < 1.0).any())
    if transparent:  # composite on the background, in sRGB as the NeRF-synthetic convention does
        a = img[..., 3:4]
        rgb = rgb * a + np.asarray(background, dtype=np.float32) * (1 - a)
    return np.ascontiguousarray(rgb), transparent


def read_nerf_transforms(path: str | Path, *, scale: float = 1.0, background: tuple[float, float, float] = (1.0, 1.0, 1.0),
                         limit: int | None = None) -> ViewSet:
    """Posed photos from a NeRF ``transforms*.json`` (camera-to-world, OpenGL axes).

    Reads ``camera_angle_x`` (or ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h`` when present) and each
    frame's ``file_path`` (``.png`` added when it has no suffix) relative to the file's folder.
    RGBA photos are composited on ``background``, which the returned views then record
    (:attr:`ViewSet.background`).

    Args:
        path: the JSON file.
        scale: resize factor (e.g. 0.32 turns 400 px into 128 px).
        background: sRGB colour behind transparent pixels.
        limit: read only the first ``limit`` frames.

    Returns:
        :class:`ViewSet` with OpenCV-frame world-to-camera poses.

    Raises:
        DeblurkitError: missing or malformed file, unreadable image.
    """
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
        frames = meta["frames"][:limit]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeblurkitError(f"cannot read NeRF transforms {path}: {exc}") from exc
    if not frames:
        raise DeblurkitError(f"{path} lists no frames")
    names, images, poses = [], [], []
    any_transparent = False
    size = None
    intr = None
    for f in frames:
        file = path.parent / f["file_path"]
        if not file.suffix:
            file = file.with_suffix(".png")
        if intr is None:
            import cv2

            probe = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
            if probe is None:
                raise DeblurkitError(f"cannot read image {file}")
            h0, w0 = probe.shape[:2]
            w0, h0 = int(meta.get("w", w0)), int(meta.get("h", h0))
            if "fl_x" in meta:
                base = Intrinsics(float(meta["fl_x"]), float(meta.get("fl_y", meta["fl_x"])),
                                  float(meta.get("cx", w0 / 2)), float(meta.get("cy", h0 / 2)), w0, h0)
            elif "camera_angle_x" in meta:
                base = Intrinsics.from_fov(float(meta["camera_angle_x"]), w0, h0)
            else:
                raise DeblurkitError(f"{path} has neither camera_angle_x nor fl_x")
            intr = base.scaled(scale) if scale != 1.0 else base
            size = (intr.width, intr.height)
        rgb, transparent = _load_rgb(file, background, size)
        images.append(rgb)
        any_transparent |= transparent
        c2w = torch.tensor(f["transform_matrix"], dtype=torch.float64) @ torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
        poses.append(torch.linalg.inv(c2w))
        names.append(Path(f["file_path"]).name)
    imgs = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    assert intr is not None
    return ViewSet(imgs, torch.stack(poses).float(), intr, names,
                   background=tuple(float(c) for c in background) if any_transparent else None)


def read_colmap_text(folder: str | Path) -> tuple[dict[int, Intrinsics], list[tuple[str, Tensor, int]]]:
    """Cameras and image poses from COLMAP's text export.

    Args:
        folder: a folder with ``cameras.txt`` and ``images.txt``.

    Returns:
        ``{camera_id: Intrinsics}`` (PINHOLE, SIMPLE_PINHOLE; radial models only when their
        distortion is zero) and ``[(image name, (4, 4) float32 world-to-camera, camera_id)]``.

    Raises:
        DeblurkitError: missing files, unsupported camera models, malformed lines.
    """
    folder = Path(folder)
    cams: dict[int, Intrinsics] = {}
    try:
        cam_lines = (folder / "cameras.txt").read_text().splitlines()
        img_lines = (folder / "images.txt").read_text().splitlines()
    except OSError as exc:
        raise DeblurkitError(f"cannot read COLMAP text model in {folder}: {exc}") from exc
    for line in cam_lines:
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        try:
            cid, model, w, h = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
            p = [float(x) for x in parts[4:]]
        except (IndexError, ValueError) as exc:
            raise DeblurkitError(f"malformed line in cameras.txt: {line!r}") from exc
        if model == "PINHOLE":
            cams[cid] = Intrinsics(p[0], p[1], p[2], p[3], w, h)
        elif model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
            if any(abs(x) > 0 for x in p[3:]):
                raise DeblurkitError(f"camera {cid} ({model}) has lens distortion; undistort the photos first")
            cams[cid] = Intrinsics(p[0], p[0], p[1], p[2], w, h)
        else:
            raise DeblurkitError(f"camera model {model} is not supported; valid: PINHOLE, SIMPLE_PINHOLE "
                                 "(or undistorted SIMPLE_RADIAL, RADIAL)")
    records = []
    lines = [ln for ln in img_lines if not ln.startswith("#")]
    for i in range(0, len(lines), 2):  # each image: a pose line, then a (possibly empty) points line
        parts = lines[i].split()
        if not parts:
            continue
        try:
            qw, qx, qy, qz, tx, ty, tz = (float(x) for x in parts[1:8])
            cid, name = int(parts[8]), " ".join(parts[9:])
        except (IndexError, ValueError) as exc:
            raise DeblurkitError(f"malformed line in images.txt: {lines[i]!r}") from exc
        from deblurkit.scene.gaussians import quat_to_rotmat

        m = torch.eye(4)
        m[:3, :3] = quat_to_rotmat(torch.tensor([qw, qx, qy, qz], dtype=torch.float64)).float()
        m[:3, 3] = torch.tensor([tx, ty, tz])
        if cid not in cams:
            raise DeblurkitError(f"image {name} refers to unknown camera {cid}")
        records.append((name, m, cid))
    if not records:
        raise DeblurkitError(f"no images in {folder / 'images.txt'}")
    return cams, records


def load_views(images_dir: str | Path, poses: str | Path, *, scale: float = 1.0,
               background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> ViewSet:
    """Posed photos from a folder plus a pose file: NeRF ``*.json`` or a COLMAP text folder / ``images.txt``.

    For NeRF files the image paths inside the JSON are used (``images_dir`` is ignored when they
    exist relative to the JSON). All photos must share one camera.
    """
    poses = Path(poses)
    if poses.suffix == ".json":
        return read_nerf_transforms(poses, scale=scale, background=background)
    folder = poses.parent if poses.name == "images.txt" else poses
    cams, records = read_colmap_text(folder)
    used = {cid for _, _, cid in records}
    if len({cams[c] for c in used}) != 1:
        raise DeblurkitError("photos taken with different cameras are not supported yet")
    base = cams[next(iter(used))]
    intr = base.scaled(scale) if scale != 1.0 else base
    loaded = [_load_rgb(Path(images_dir) / name, background, (intr.width, intr.height)) for name, _, _ in records]
    return ViewSet(
        torch.from_numpy(np.stack([rgb for rgb, _ in loaded])).permute(0, 3, 1, 2).contiguous(),
        torch.stack([m for _, m, _ in records]),
        intr,
        [name for name, _, _ in records],
        background=tuple(float(c) for c in background) if any(a for _, a in loaded) else None,
    )
