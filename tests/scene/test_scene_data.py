"""Synthetic scenes, shaken views, rotation blur and the pose-file readers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deblurkit.errors import DeblurkitError
from deblurkit.scene.data import (
    ViewSet,
    foreground_masks,
    forward_facing_cameras,
    load_views,
    make_blurry_views,
    make_synthetic_scene,
    random_shake_twists,
    read_colmap_text,
    read_nerf_transforms,
    render_views_linear,
    restore_views,
    rotation_blur_views,
)
from deblurkit.scene.gaussians import Gaussians
from deblurkit.scene.render import Intrinsics
from deblurkit.scene.trajectory import se3_exp
from deblurkit.synth.color import linear_to_srgb


def _small_setup(size: int = 32):
    gen = torch.Generator().manual_seed(0)
    gs = make_synthetic_scene(gen, spacing=0.3, num_boxes=2)
    intr = Intrinsics.from_fov(math.radians(50), size, size)
    return gen, gs, intr


def test_synthetic_scene_fills_the_views_at_several_depths() -> None:
    _, gs, intr = _small_setup()
    cams = forward_facing_cameras(3)
    out = render_views_linear(gs, cams, intr)
    assert out.shape == (3, 3, 32, 32)
    assert float(out.min()) >= 0 and float(out.std()) > 0.05
    z = gs.means[:, 2]
    assert float(z.min()) < 5.0 and float(z.max()) == pytest.approx(6.0)


def test_shake_is_centred_on_the_mid_exposure_pose_and_scaled() -> None:
    xi = random_shake_twists(torch.Generator().manual_seed(1), 4, 9, rotation_deg=(2.0, 2.0), translation=(0.05, 0.05))
    assert xi.shape == (4, 9, 6)
    torch.testing.assert_close(xi[:, 4], torch.zeros(4, 6))
    angle = xi[..., 3:].norm(dim=-1).amax(dim=1)
    torch.testing.assert_close(angle, torch.full((4,), math.radians(2.0)))
    disp = se3_exp(xi)[..., :3, 3].norm(dim=-1).amax(dim=1)
    torch.testing.assert_close(disp, torch.full((4,), 0.05), rtol=1e-4, atol=1e-6)


def test_blurry_views_keep_mid_pose_and_blur() -> None:
    gen, gs, intr = _small_setup()
    cams = forward_facing_cameras(2)
    views = make_blurry_views(gs, cams, intr, gen, num_samples=7, rotation_deg=(3.0, 3.0), noise="none")
    assert views.images.shape == (2, 3, 32, 32) and views.true_w2c.shape == (2, 7, 4, 4)
    torch.testing.assert_close(views.true_w2c[:, 3], cams)
    sharp = linear_to_srgb(render_views_linear(gs, cams, intr).clamp(0, 1))
    diff = (views.images - sharp).abs().mean()
    assert 0.005 < float(diff) < 0.3
    # blur lowers the high-frequency energy
    def grad_energy(x: torch.Tensor) -> float:
        return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean())
    assert grad_energy(views.images) < grad_energy(sharp)


def test_rotation_blur_equals_rendering_along_the_rotations() -> None:
    # smooth Gaussians at well separated depths, so that neither bilinear interpolation nor
    # depth-order changes between sub-frames matter: warping must then equal rendering
    gen = torch.Generator().manual_seed(0)
    g = 40
    depth = torch.linspace(2.0, 6.0, g)
    gs = Gaussians(
        means=torch.cat([(torch.rand(g, 2, generator=gen) - 0.5) * depth[:, None] * 0.8, depth[:, None]], dim=1),
        log_scales=torch.log(0.05 * depth)[:, None].repeat(1, 3),
        quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(g, 1),
        opacity_logits=torch.zeros(g),
        sh0=torch.randn(g, 3, generator=gen),
    )
    intr = Intrinsics.from_fov(math.radians(50), 48, 48)
    cams = forward_facing_cameras(1)
    sharp = render_views_linear(gs, cams, intr, background=(0.2, 0.2, 0.2))
    views = ViewSet(linear_to_srgb(sharp.clamp(0, 1)), cams, intr, ["v"])
    blurred = rotation_blur_views(views, gen, num_samples=5, rotation_deg=(5.0, 5.0))
    rendered = render_views_linear(gs, blurred.true_w2c[0], intr, background=(0.2, 0.2, 0.2)).mean(0, keepdim=True)
    ref = linear_to_srgb(rendered.clamp(0, 1))
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # away from the reflected border
    err = (blurred.images - ref)[inner].abs().mean()
    moved = (blurred.images - views.images)[inner].abs().mean()
    assert float(moved) > 0.01 and float(err) < 0.1 * float(moved)


def _write_png(path: Path, rgba: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bgra = rgba[..., [2, 1, 0, 3]] if rgba.shape[2] == 4 else rgba[..., ::-1]
    cv2.imwrite(str(path), (bgra * 255).round().astype(np.uint8))


def test_nerf_transforms_reader_converts_axes_and_composites(tmp_path: Path) -> None:
    rgba = np.zeros((8, 10, 4), np.float32)
    rgba[..., 0] = 1.0
    rgba[:4, :, 3] = 1.0  # top half opaque red, bottom half transparent
    _write_png(tmp_path / "train" / "r_0.png", rgba)
    c2w = np.eye(4)
    c2w[:3, 3] = [1.0, 2.0, 3.0]
    meta = {"camera_angle_x": 0.8, "frames": [{"file_path": "./train/r_0", "transform_matrix": c2w.tolist()}]}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    views = read_nerf_transforms(tmp_path / "transforms.json", background=(0.0, 0.0, 1.0))
    assert views.intr.width == 10 and views.intr.fx == pytest.approx(5 / math.tan(0.4))
    w2c = views.w2c[0]
    # the GL camera looks down its -z: the point one unit ahead has OpenCV camera z = +1
    ahead = torch.tensor([1.0, 2.0, 2.0, 1.0])
    torch.testing.assert_close((w2c @ ahead)[:3], torch.tensor([0.0, 0.0, 1.0]))
    img = views.images[0]
    torch.testing.assert_close(img[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(img[:, -1, 0], torch.tensor([0.0, 0.0, 1.0]))
    # the photos had alpha: the views know their background, and which pixels show the scene
    assert views.background == (0.0, 0.0, 1.0)
    mask = foreground_masks(views)[0]
    assert bool(mask[:4].all()) and not bool(mask[4:].any())
    assert foreground_masks(views.subset([0])) is not None
    rgba[..., 3] = 1.0  # an alpha channel without transparent pixels says nothing about the scene
    _write_png(tmp_path / "train" / "r_0.png", rgba)
    assert read_nerf_transforms(tmp_path / "transforms.json").background is None
    with pytest.raises(DeblurkitError):
        read_nerf_transforms(tmp_path / "missing.json")


def test_foreground_masks_need_a_known_background_and_keep_blurred_edges() -> None:
    images = torch.ones(1, 3, 8, 8)
    images[:, :, 2:6, 2:6] = 0.3
    views = ViewSet(images, torch.eye(4)[None], Intrinsics.from_fov(1.0, 8, 8), ["a"])
    assert foreground_masks(views) is None  # opaque photos: no background to tell apart
    known = ViewSet(images, views.w2c, views.intr, ["a"], background=(1.0, 1.0, 1.0))
    assert int(foreground_masks(known).sum()) == 16
    soft = images.clone()
    soft[:, :, 1, 2:6] = 0.97  # a blurred edge, a little darker than the background
    assert int(foreground_masks(ViewSet(soft, views.w2c, views.intr, ["a"], background=(1.0, 1.0, 1.0))).sum()) == 20


def test_colmap_text_reader(tmp_path: Path) -> None:
    (tmp_path / "cameras.txt").write_text("# comment\n1 PINHOLE 10 8 12 13 5 4\n2 OPENCV 10 8 1 1 5 4 0.1 0 0 0\n")
    (tmp_path / "images.txt").write_text(
        "# header\n1 0.7071067811865476 0 0.7071067811865476 0 1 2 3 1 a.png\n1 2 -1\n"
        "2 1 0 0 0 0 0 0 1 b.png\n\n"
    )
    with pytest.raises(DeblurkitError, match="not supported"):
        read_colmap_text(tmp_path)
    (tmp_path / "cameras.txt").write_text("1 PINHOLE 10 8 12 13 5 4\n")
    cams, records = read_colmap_text(tmp_path)
    assert cams[1] == Intrinsics(12.0, 13.0, 5.0, 4.0, 10, 8)
    assert [r[0] for r in records] == ["a.png", "b.png"]
    rot = records[0][1][:3, :3]
    torch.testing.assert_close(rot, torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(records[0][1][:3, 3], torch.tensor([1.0, 2.0, 3.0]))
    for name in ("a.png", "b.png"):
        _write_png(tmp_path / "img" / name, np.full((8, 10, 3), 0.5, np.float32))
    views = load_views(tmp_path / "img", tmp_path / "images.txt", scale=0.5)
    assert views.images.shape == (2, 3, 4, 5) and views.intr.fx == pytest.approx(6.0)
    assert views.background is None  # opaque photos
    (tmp_path / "cameras.txt").write_text("1 SIMPLE_RADIAL 10 8 12 5 4 0.01\n")
    with pytest.raises(DeblurkitError, match="distortion"):
        read_colmap_text(tmp_path)


def test_restore_views_enlarges_small_photos_for_the_restorer_and_keeps_poses() -> None:
    from deblurkit.infer import load_restorer

    gen = torch.Generator().manual_seed(3)
    coarse = torch.rand(2, 3, 5, 6, generator=gen)
    images = torch.nn.functional.interpolate(coarse, size=(40, 48), mode="bilinear", align_corners=False)
    views = ViewSet(images, torch.eye(4).repeat(2, 1, 1), Intrinsics.from_fov(1.0, 48, 40), ["a", "b"])
    seen: list[tuple[int, ...]] = []

    class Darken:  # a stand-in restorer that records what it is given
        def restore_rgb(self, rgb: np.ndarray, progress=None) -> np.ndarray:
            seen.append(rgb.shape)
            return rgb * 0.5 - 0.1

    out = restore_views(views, Darken(), min_side=96)
    assert seen == [(120, 144, 3)] * 2  # factor 3: shorter side 40 -> 120 >= 96
    assert out.images.shape == images.shape and out.images.dtype == torch.float32
    assert out.images.min() >= 0.0
    torch.testing.assert_close(out.w2c, views.w2c)
    assert out.names == views.names
    # a restorer that changes nothing gives back the photo up to the resampling round trip
    same = restore_views(views, load_restorer("identity"), min_side=96).images
    assert (same - images).abs().max() < 0.02
    assert torch.equal(restore_views(views, load_restorer("identity"), min_side=40).images, images)
