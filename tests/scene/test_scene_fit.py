"""Fitting a tiny scene: the loss falls, densification follows its schedule, runs resume exactly."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deblurkit.errors import DeblurkitError
from deblurkit.scene.data import (
    ViewSet,
    foreground_masks,
    forward_facing_cameras,
    look_at_w2c,
    make_blurry_views,
    make_synthetic_scene,
)
from deblurkit.scene.fit import (
    FitConfig,
    _threshold,
    estimate_depth_range,
    fit_scene,
    init_gaussians_from_views,
    load_run,
)
from deblurkit.scene.gaussians import SH_C0
from deblurkit.scene.render import Intrinsics


@pytest.fixture(scope="module")
def tiny_views():
    gen = torch.Generator().manual_seed(0)
    gs = make_synthetic_scene(gen, spacing=0.4, num_boxes=1)
    intr = Intrinsics.from_fov(math.radians(50), 16, 16)
    return make_blurry_views(gs, forward_facing_cameras(3), intr, gen, num_samples=5, noise="none")


def _config(**kw) -> FitConfig:
    base = FitConfig(iterations=30, plain_iterations=15, num_subframes=3, bezier_order=2, subframe_chunk=2,
                     init_points=150, init_depth=(2.0, 7.0), densify_from=10, densify_every=10,
                     lr_sh0=2e-2, lr_means=5e-3, lr_scales=1e-2, checkpoint_every=20)
    return replace(base, **kw)


def test_joint_fit_lowers_the_loss_and_moves_the_trajectories(tiny_views) -> None:
    res = fit_scene(tiny_views, _config(), log_every=10)
    first, last = res.history[0]["l1"], res.history[-1]["l1"]
    assert last < 0.8 * first
    assert res.trajectories is not None and float(res.trajectories.control.detach().abs().sum()) > 0
    assert all(math.isfinite(r["loss"]) for r in res.history)
    assert res.history[-1]["gaussians"] != 150  # densification or pruning happened


def test_finished_run_folder_reloads_and_refuses_other_settings(tiny_views, tmp_path: Path) -> None:
    cfg = _config(iterations=10, plain_iterations=5, checkpoint_every=5)
    done = fit_scene(tiny_views, cfg, run_dir=tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["iterations"] == 10
    config, gs, traj, ck = load_run(tmp_path)
    assert config == cfg and traj is not None and ck["iteration"] == 10
    torch.testing.assert_close(gs.means, done.gaussians.means)
    again = fit_scene(tiny_views, cfg, run_dir=tmp_path)  # nothing left to do
    torch.testing.assert_close(again.gaussians.means, done.gaussians.means)
    with pytest.raises(DeblurkitError, match="different settings"):
        fit_scene(tiny_views, replace(cfg, seed=1), run_dir=tmp_path)
    with pytest.raises(DeblurkitError, match="cannot read"):
        load_run(tmp_path / "nothing")


class _Stop(Exception):
    pass


def _interrupt_at(views, cfg, run_dir: Path, iteration: int, **kw) -> None:
    """Start a fit in ``run_dir`` and stop it (as a killed process would) at ``iteration``."""

    def stop(rec: dict) -> None:
        if rec["iteration"] == iteration:
            raise _Stop

    with pytest.raises(_Stop):
        fit_scene(views, cfg, run_dir=run_dir, progress=stop, **kw)


def test_resume_from_a_middle_checkpoint_matches_an_uninterrupted_run(tiny_views, tmp_path: Path) -> None:
    cfg = _config(iterations=12, plain_iterations=4, checkpoint_every=6, densify_from=4, densify_every=4)
    whole = fit_scene(tiny_views, cfg)

    _interrupt_at(tiny_views, cfg, tmp_path, 9, log_every=3)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["iteration"] == 6
    resumed = fit_scene(tiny_views, cfg, run_dir=tmp_path)
    torch.testing.assert_close(resumed.gaussians.means, whole.gaussians.means)
    torch.testing.assert_close(resumed.trajectories.control, whole.trajectories.control)


def test_a_resumed_fit_counts_the_time_before_the_interruption(tiny_views, tmp_path: Path) -> None:
    cfg = _config(iterations=8, plain_iterations=4, checkpoint_every=4)
    _interrupt_at(tiny_views, cfg, tmp_path, 6, log_every=2)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ck["iteration"] == 4 and ck["seconds"] > 0
    # as if the first session had taken an hour: the resumed records start from there
    ck["seconds"] = 3600.0
    torch.save(ck, tmp_path / "checkpoint.pt")
    resumed = fit_scene(tiny_views, cfg, run_dir=tmp_path, log_every=2)
    records = [r for r in resumed.history if r["iteration"] > 4]
    assert [r["iteration"] for r in records] == [6, 8]
    assert all(3600.0 < r["seconds"] < 3600.0 + 600.0 for r in records)
    assert [r["iteration"] for r in resumed.history if r["iteration"] <= 4] == [2, 4]


def test_records_give_the_longest_tile_list_before_the_cap(tiny_views) -> None:
    capped = fit_scene(tiny_views, _config(iterations=4, plain_iterations=2, max_per_tile=1), log_every=2)
    assert [r["iteration"] for r in capped.history] == [2, 4]
    assert all(isinstance(r["tile_max"], int) and r["tile_max"] > 1 for r in capped.history)
    # counted before the cap: one iteration from the same start renders the same lists with any cap
    firsts = [fit_scene(tiny_views, _config(iterations=1, plain_iterations=1, max_per_tile=cap),
                        log_every=1).history[0]["tile_max"] for cap in (1, 100000)]
    assert firsts[0] == firsts[1] > 1


def _tensors(obj, path: str = "") -> list[tuple[str, torch.Tensor]]:
    """Every tensor in a nested checkpoint payload, with where it sits."""
    if torch.is_tensor(obj):
        return [(path, obj)]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    return [t for k, v in items for t in _tensors(v, f"{path}/{k}")]


def test_fit_on_an_explicit_device_writes_a_checkpoint_that_loads_anywhere(tiny_views, tmp_path: Path) -> None:
    cfg = _config(iterations=6, plain_iterations=3, checkpoint_every=3, densify_from=3, densify_every=3)
    res = fit_scene(tiny_views, cfg, run_dir=tmp_path, device=torch.device("cpu"))
    assert res.gaussians.means.device.type == "cpu" and res.trajectories.control.device.type == "cpu"
    path = tmp_path / "checkpoint.pt"
    # no map_location: tensors come back where they were saved, so all must have been saved on the CPU
    raw = torch.load(path, weights_only=False)
    found = _tensors(raw)
    assert {"/w2c", "/gaussians/means", "/grad_sum", "/trajectories/control"} <= {k for k, _ in found}
    assert all(t.device.type == "cpu" for _, t in found), [k for k, t in found if t.device.type != "cpu"]
    mapped = torch.load(path, map_location=torch.device("cpu"), weights_only=False)
    torch.testing.assert_close(mapped["gaussians"]["means"], res.gaussians.means)
    config, gs, traj, ck = load_run(tmp_path, device=torch.device("cpu"))
    assert config == cfg and ck["iteration"] == 6
    torch.testing.assert_close(gs.means, res.gaussians.means)
    torch.testing.assert_close(traj.control.detach(), res.trajectories.control.detach())
    with pytest.raises(DeblurkitError, match="unknown device"):
        fit_scene(tiny_views, cfg, device="banana")
    with pytest.raises(DeblurkitError, match="meta"):
        load_run(tmp_path, device="meta")


@pytest.fixture
def _default_device_meta():
    """Tensors made without ``device=`` land on the data-less meta device for the test's duration."""
    before = torch.get_default_device()
    torch.set_default_device("meta")
    yield
    torch.set_default_device(before)


def test_fit_makes_every_tensor_on_the_fitting_device(tiny_views, tmp_path: Path, _default_device_meta) -> None:
    """A stand-in for a GPU run on a CPU-only machine: with the default device set to meta, a tensor
    made without an explicit device is a meta tensor, and mixing it with the CPU data (or reading a
    number out of it) fails, as a CPU tensor would next to CUDA data. Some mixes (a matrix product,
    an index) quietly give CPU tensors of made-up values instead, so the results are also compared
    with the same steps run with the CPU as the default device."""
    from deblurkit.scene.fit import sharp_view_poses
    from deblurkit.scene.render import render

    # joint mode with chunked sub-frames, splits up to the cap, init noise, a checkpoint and a resume
    cfg = _config(iterations=8, plain_iterations=3, checkpoint_every=4, densify_from=2, densify_every=2,
                  grad_threshold_start=1e-9, grad_threshold_end=1e-9, max_gaussians=400, trajectory_init_noise=0.01)

    _interrupt_at(tiny_views, cfg, tmp_path, 6, log_every=2, device=torch.device("cpu"))
    res = fit_scene(tiny_views, cfg, run_dir=tmp_path, device=torch.device("cpu"))
    assert res.gaussians.means.device.type == "cpu" and len(res.gaussians) != cfg.init_points
    _, gs, traj, ck = load_run(tmp_path, device="cpu")
    img = render(gs, sharp_view_poses(ck["w2c"], traj), tiny_views.intr).image
    assert img.device.type == "cpu"
    oracle = fit_scene(tiny_views, _config(mode="oracle", iterations=2), device="cpu")
    assert oracle.gaussians.means.device.type == "cpu"
    with torch.device("cpu"):  # the same steps, nothing on meta (a resumed run matches an uninterrupted one)
        ref = fit_scene(tiny_views, cfg)
        ref_img = render(ref.gaussians, sharp_view_poses(tiny_views.w2c, ref.trajectories), tiny_views.intr).image
        ref_oracle = fit_scene(tiny_views, _config(mode="oracle", iterations=2))
    torch.testing.assert_close(res.gaussians.means, ref.gaussians.means)
    torch.testing.assert_close(img, ref_img)
    torch.testing.assert_close(oracle.gaussians.means, ref_oracle.gaussians.means)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_run_fitted_on_cuda_resumes_on_the_cpu(tiny_views, tmp_path: Path) -> None:
    cfg = _config(iterations=8, plain_iterations=3, checkpoint_every=4, densify_from=2, densify_every=2)

    _interrupt_at(tiny_views, cfg, tmp_path, 6, log_every=2, device="cuda")
    assert all(t.device.type == "cpu" for _, t in _tensors(torch.load(tmp_path / "checkpoint.pt", weights_only=False)))
    res = fit_scene(tiny_views, cfg, run_dir=tmp_path, device="cpu")
    assert res.gaussians.means.device.type == "cpu" and bool(torch.isfinite(res.gaussians.means).all())
    _, gs, traj, _ = load_run(tmp_path, device="cuda")
    assert gs.means.device.type == "cuda" and traj.control.device.type == "cuda"


def test_threshold_anneals_from_start_to_end_counting_from_densify_from() -> None:
    cfg = FitConfig(iterations=600, anneal_fraction=1 / 6, densify_from=100)
    assert _threshold(cfg, 0) == pytest.approx(4e-4)
    assert _threshold(cfg, 100) == pytest.approx(4e-4)  # densification starts at the start value
    assert _threshold(cfg, 150) == pytest.approx(4e-4 * 0.5**0.5)
    assert _threshold(cfg, 200) == pytest.approx(2e-4)
    assert _threshold(cfg, 500) == pytest.approx(2e-4)
    late = FitConfig(iterations=600, anneal_fraction=1 / 6, densify_from=300)
    assert _threshold(late, 200) == pytest.approx(4e-4)
    assert _threshold(late, 350) == pytest.approx(4e-4 * 0.5**0.5)


def test_depth_range_from_converging_axes() -> None:
    lo, hi = estimate_depth_range(forward_facing_cameras(6, radius=1.0, target_depth=4.0))
    assert lo < 4.0 < hi


def _ball_views(radius: float = 1.0, size: int = 48) -> ViewSet:
    """Six wide views from +-x, +-y, +-z of a grey ball at the origin on a white background."""
    intr = Intrinsics.from_fov(math.radians(90), size, size)
    eyes = 4.0 * torch.cat([torch.eye(3), -torch.eye(3)])
    w2c = torch.stack([look_at_w2c(e, torch.zeros(3), up=(0.0, 0.0, 1.0) if abs(e[1]) > 0 else (0.0, -1.0, 0.0))
                       for e in eyes])
    u, v = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="xy")
    ray = torch.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, torch.ones_like(u)], -1)
    ray = ray / ray.norm(dim=-1, keepdim=True)
    # a ray from a camera 4 units away passes the centre at distance 4 sin(angle to the axis)
    hit = 4.0 * (1 - ray[..., 2] ** 2).sqrt() < radius
    img = torch.where(hit, 0.4, 1.0).expand(6, 3, size, size).contiguous()
    return ViewSet(img, w2c, intr, [f"v{i}" for i in range(6)], background=(1.0, 1.0, 1.0))


def test_initial_points_are_carved_by_the_silhouettes_of_photos_on_a_plain_background() -> None:
    views = _ball_views()
    depth = estimate_depth_range(views.w2c)
    gen = torch.Generator().manual_seed(0)
    carved = init_gaussians_from_views(views, 400, gen, depth=depth, foreground=foreground_masks(views))
    plain = init_gaussians_from_views(views, 400, torch.Generator().manual_seed(0), depth=depth)
    assert len(carved) == 400
    # the six silhouettes of a ball of radius 1 enclose about the intersection of three cylinders,
    # whose corners lie sqrt(3/2) = 1.22 from the centre (plus the pixels' discretisation)
    assert float(carved.means.norm(dim=-1).max()) < 1.4
    assert float((plain.means.norm(dim=-1) > 1.4).float().mean()) > 0.5
    # no Gaussian takes the background's colour
    assert float((SH_C0 * carved.sh0 + 0.5).max()) < 0.5
    assert float((SH_C0 * plain.sh0 + 0.5).max()) > 0.9


def test_fit_carves_only_photos_with_a_known_background() -> None:
    views = _ball_views(size=32)
    config = _config(iterations=1, init_depth=None, checkpoint_every=10**6)
    carved = fit_scene(views, replace(config, mode="plain")).gaussians
    assert float(carved.means.norm(dim=-1).max()) < 1.5
    unknown = replace(views, background=None)
    off = fit_scene(views, replace(config, mode="plain", init_foreground=False)).gaussians
    torch.testing.assert_close(off.means, fit_scene(unknown, replace(config, mode="plain")).gaussians.means)
    assert float(off.means.norm(dim=-1).max()) > 2.0


def test_bad_settings_are_one_line_errors(tiny_views) -> None:
    with pytest.raises(DeblurkitError, match="fit mode"):
        fit_scene(tiny_views, _config(mode="bogus"))
    with pytest.raises(DeblurkitError, match="true exposure poses"):
        fit_scene(replace(tiny_views, true_w2c=None), _config(mode="oracle", iterations=2))
    with pytest.raises(DeblurkitError, match="unknown fit settings"):
        FitConfig.from_dict({"iterations": 3, "colour": 1})


def test_row_sparse_adam_moves_only_the_given_rows_like_a_dense_adam_would() -> None:
    from deblurkit.scene.fit import _Adam

    x = torch.zeros(3, 2, requires_grad=True)
    ref = torch.zeros(1, 2, requires_grad=True)
    opt = _Adam({"x": x}, {"x": 0.1}, eps=1e-8)
    dense = _Adam({"x": ref}, {"x": 0.1}, eps=1e-8)
    for step in range(3):
        g = torch.tensor([[1.0, -2.0]]) * (step + 1)
        x.grad = torch.zeros(3, 2)
        x.grad[1] = g[0]
        opt.step(rows=torch.tensor([1]))
        ref.grad = g.clone()
        dense.step()
    assert torch.equal(x.detach()[0], torch.zeros(2)) and torch.equal(x.detach()[2], torch.zeros(2))
    torch.testing.assert_close(x.detach()[1], ref.detach()[0])


def test_a_corrupt_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DeblurkitError, match="cannot read the run checkpoint"):
        load_run(tmp_path)


def test_monitor_records_join_the_history_and_init_noise_moves_the_start(tiny_views) -> None:
    seen = []

    def monitor(gs, traj) -> dict[str, float]:
        seen.append((len(gs), traj is not None))
        return {"control_norm": float(traj.control.norm())}

    cfg = _config(iterations=4, plain_iterations=2, trajectory_init_noise=0.01, densify_from=100)
    res = fit_scene(tiny_views, cfg, log_every=2, monitor=monitor)
    assert [r["iteration"] for r in res.history] == [2, 4] and len(seen) == 2 and all(t for _, t in seen)
    assert res.history[0]["control_norm"] > 0  # the noise, before the joint phase moved anything
    still = fit_scene(tiny_views, replace(cfg, trajectory_init_noise=0.0), log_every=2, monitor=monitor)
    assert still.history[0]["control_norm"] == 0
