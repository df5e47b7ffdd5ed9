"""``deblurkit scene fit / views / render`` on a tiny NeRF-layout folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deblurkit.cli import main
from deblurkit.scene.data import forward_facing_cameras, make_synthetic_scene, render_views_linear
from deblurkit.scene.render import Intrinsics
from deblurkit.synth.color import linear_to_srgb


def _nerf_folder(root: Path) -> Path:
    gen = torch.Generator().manual_seed(0)
    gs = make_synthetic_scene(gen, spacing=0.5, num_boxes=1)
    fov = math.radians(50)
    cams = forward_facing_cameras(3)
    imgs = linear_to_srgb(render_views_linear(gs, cams, Intrinsics.from_fov(fov, 16, 16)).clamp(0, 1))
    frames = []
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    for i, (img, w2c) in enumerate(zip(imgs, cams)):
        (root / "train").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "train" / f"r_{i}.png"), (img.permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8))
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": (torch.linalg.inv(w2c) @ flip).tolist()})
    (root / "transforms.json").write_text(json.dumps({"camera_angle_x": fov, "frames": frames}))
    return root / "transforms.json"


def test_fit_views_render_roundtrip(tmp_path: Path, capsys) -> None:
    poses = _nerf_folder(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["scene", "fit", str(poses), "--out", str(run), "--iterations", "3", "--threads", "1"]) == 0
    assert (run / "checkpoint.pt").exists() and (run / "config.json").exists()
    assert main(["scene", "views", str(run), "-o", str(tmp_path / "views")]) == 0
    outs = sorted((tmp_path / "views").glob("*.png"))
    assert [p.name for p in outs] == ["r_0.png", "r_1.png", "r_2.png"]
    assert cv2.imread(str(outs[0])).shape == (16, 16, 3)
    frame = json.loads(poses.read_text())["frames"][1]
    pose_file = tmp_path / "pose.json"
    pose_file.write_text(json.dumps({"transform_matrix": frame["transform_matrix"]}))
    assert main(["scene", "render", str(run), "--pose", str(pose_file), "-o", str(tmp_path / "new.png")]) == 0
    assert cv2.imread(str(tmp_path / "new.png")).shape == (16, 16, 3)
    capsys.readouterr()
    pose_file.write_text(json.dumps({"w2c": [[1, 0], [0, 1]]}))
    assert main(["scene", "render", str(run), "--pose", str(pose_file), "-o", str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4x4" in err[0]
    assert main(["scene", "views", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x")]) == 2


#: devices no machine running these tests has: a nonsense name, the data-less meta device, a CUDA
#: index past the last GPU (cuda:3 where there is none), and plain cuda where CUDA is unavailable
_MISSING_DEVICES = ["banana", "meta", f"cuda:{torch.cuda.device_count() + 3}"] + (
    [] if torch.cuda.is_available() else ["cuda"])


@pytest.fixture(scope="module")
def nerf_poses(tmp_path_factory) -> Path:
    return _nerf_folder(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("device", _MISSING_DEVICES)
def test_fit_refuses_a_missing_device_in_one_line_and_writes_nothing(nerf_poses: Path, tmp_path: Path, capsys,
                                                                      device: str) -> None:
    run = tmp_path / "run"
    assert main(["scene", "fit", str(nerf_poses), "--out", str(run), "--iterations", "2", "--device", device]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deblurkit: error:") and repr(device) in err[0], err
    assert captured.out == ""
    assert not run.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["views", "render"])
def test_views_and_render_check_the_device_before_the_run(tmp_path: Path, capsys, command: str) -> None:
    out = tmp_path / ("views" if command == "views" else "new.png")
    extra = ["--pose", str(tmp_path / "pose.json")] if command == "render" else []
    assert main(["scene", command, str(tmp_path / "no_run"), *extra, "-o", str(out), "--device", "banana"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown device 'banana'" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_resolve_device_accepts_cpu_in_any_spelling() -> None:
    from deblurkit.devices import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")).type == "cpu"
    assert resolve_device("cpu:0").type == "cpu"


def test_fit_sh_degree_one_gives_view_dependent_colours(nerf_poses: Path, tmp_path: Path) -> None:
    from deblurkit.scene.fit import load_run

    run = tmp_path / "run"
    assert main(["scene", "fit", str(nerf_poses), "--out", str(run), "--iterations", "3", "--threads", "1",
                 "--sh-degree", "1"]) == 0
    config, gs, _, _ = load_run(run)
    assert config.sh_degree == 1 and gs.sh_degree == 1
    assert json.loads((run / "config.json").read_text())["sh_degree"] == 1
    # the degree-1 coefficients start at 0 and were trained: three iterations moved them
    assert gs.sh1 is not None and float(gs.sh1.abs().max()) > 0
    assert main(["scene", "views", str(run), "-o", str(tmp_path / "views")]) == 0
    assert len(list((tmp_path / "views").glob("*.png"))) == 3


def test_fit_refuses_an_unsupported_sh_degree(nerf_poses: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["scene", "fit", str(nerf_poses), "--out", str(tmp_path / "run"), "--sh-degree", "3"])
    assert exc.value.code == 2
    assert "--sh-degree" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_fit_says_when_a_tile_holds_more_gaussians_than_the_cap(nerf_poses: Path, tmp_path: Path,
                                                                capsys) -> None:
    run = tmp_path / "run"
    assert main(["scene", "fit", str(nerf_poses), "--out", str(run), "--iterations", "2", "--threads", "1",
                 "--max-per-tile", "2"]) == 0
    err = capsys.readouterr().err
    assert "over --max-per-tile 2: the renders dropped the rest" in err
    # the default fit puts its 3,000 initial points into this 16-px scene's single tile: over 1024 too
    assert main(["scene", "fit", str(nerf_poses), "--out", str(tmp_path / "run2"), "--iterations", "2",
                 "--threads", "1", "--max-per-tile", "100000"]) == 0
    assert "over --max-per-tile" not in capsys.readouterr().err
    assert main(["scene", "fit", str(nerf_poses), "--out", str(tmp_path / "run3"), "--iterations", "2",
                 "--max-per-tile", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_per_tile must be >= 1" in err[0], err
    assert not (tmp_path / "run3").exists()


def test_fit_carves_rgba_photos_unless_told_not_to(tmp_path: Path) -> None:
    from deblurkit.scene.fit import load_run

    root = tmp_path / "rgba"
    poses = _nerf_folder(root)
    for f in (root / "train").glob("*.png"):  # a grey square on a transparent background
        rgba = np.zeros((16, 16, 4), np.uint8)
        rgba[5:11, 5:11] = 128
        rgba[5:11, 5:11, 3] = 255
        cv2.imwrite(str(f), rgba)
    runs = {}
    for flag in ([], ["--no-carve"]):
        run = tmp_path / ("plain" if flag else "carved")
        assert main(["scene", "fit", str(poses), "--out", str(run), "--iterations", "1", "--threads", "1", *flag]) == 0
        assert json.loads((run / "config.json").read_text())["init_foreground"] is not bool(flag)
        runs[bool(flag)] = load_run(run)[1]
    # carved points take the square's grey, uncarved ones also the white background
    from deblurkit.scene.gaussians import SH_C0

    assert float((SH_C0 * runs[False].sh0 + 0.5).max()) < 0.5
    assert float((SH_C0 * runs[True].sh0 + 0.5).max()) > 0.9
