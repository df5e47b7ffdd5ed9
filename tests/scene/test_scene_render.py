"""The tile renderer against a per-pixel brute-force reference, finite differences and gradient flow."""

from __future__ import annotations

import math

import pytest
import torch

from deblurkit.scene.gaussians import Gaussians, colors_linear, quat_to_rotmat, rotmat_to_quat
from deblurkit.scene.render import (
    ALPHA_MAX,
    ALPHA_MIN,
    DILATION_PX2,
    SIGMA_CUT,
    T_MIN,
    Intrinsics,
    camera_centers,
    render,
)


def _scene(g: int, seed: int, dtype=torch.float64, sh_degree: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=gen, dtype=dtype)
    means = torch.stack([(r(g) - 0.5) * 1.6, (r(g) - 0.5) * 1.6, 2.0 + 2.0 * r(g)], dim=-1)
    return Gaussians(
        means=means,
        log_scales=torch.log(0.05 + 0.25 * r(g, 3)),
        quats=torch.randn(g, 4, generator=gen, dtype=dtype),
        opacity_logits=torch.randn(g, generator=gen, dtype=dtype) * 1.5,
        sh0=torch.randn(g, 3, generator=gen, dtype=dtype),
        sh1=torch.randn(g, 3, 3, generator=gen, dtype=dtype) * 0.3 if sh_degree else None,
    )


def _viewmat(dtype=torch.float64, angle: float = 0.1) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    m = torch.eye(4, dtype=dtype)
    m[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=dtype)
    m[:3, 3] = torch.tensor([0.05, -0.1, 0.2], dtype=dtype)
    return m


def _brute_force(gs: Gaussians, viewmat: torch.Tensor, intr: Intrinsics, bg: torch.Tensor) -> torch.Tensor:
    """Straight per-pixel evaluation of the documented model (all Gaussians, no tiles, no cap)."""
    rot, t = viewmat[:3, :3], viewmat[:3, 3]
    img = torch.zeros(3, intr.height, intr.width, dtype=gs.means.dtype)
    cols = colors_linear(gs, camera_centers(viewmat[None]))[0]
    splats = []
    for i in range(len(gs)):
        p = rot @ gs.means[i] + t
        x, y, z = p.tolist()
        if z <= 0.01:
            continue
        lx, ly = 1.3 * 0.5 * intr.width / intr.fx, 1.3 * 0.5 * intr.height / intr.fy
        tx, ty = min(max(x / z, -lx), lx) * z, min(max(y / z, -ly), ly) * z
        jac = torch.tensor([[intr.fx / z, 0, -intr.fx * tx / z**2], [0, intr.fy / z, -intr.fy * ty / z**2]], dtype=p.dtype)
        cov3 = quat_to_rotmat(gs.quats[i]) @ torch.diag(torch.exp(2 * gs.log_scales[i])) @ quat_to_rotmat(gs.quats[i]).T
        cov2 = jac @ rot @ cov3 @ rot.T @ jac.T + DILATION_PX2 * torch.eye(2, dtype=p.dtype)
        mean = torch.tensor([intr.fx * x / z + intr.cx, intr.fy * y / z + intr.cy], dtype=p.dtype)
        splats.append((z, mean, torch.linalg.inv(cov2), torch.sigmoid(gs.opacity_logits[i]), cols[i]))
    splats.sort(key=lambda s: s[0])
    for row in range(intr.height):
        for col in range(intr.width):
            px = torch.tensor([col + 0.5, row + 0.5], dtype=gs.means.dtype)
            trans, acc = 1.0, torch.zeros(3, dtype=gs.means.dtype)
            for _, mean, icov, op, c in splats:
                d = px - mean
                power = -0.5 * float(d @ icov @ d)
                if power < -0.5 * SIGMA_CUT**2:
                    continue
                a = min(ALPHA_MAX, float(op) * math.exp(power))
                if a < ALPHA_MIN:
                    continue
                if trans * (1 - a) < T_MIN:
                    break
                acc = acc + c * a * trans
                trans *= 1 - a
            img[:, row, col] = acc + trans * bg
    return img


@pytest.mark.parametrize("tile", [4, 8])
def test_matches_brute_force(tile: int) -> None:
    gs = _scene(12, seed=1, sh_degree=1)
    intr = Intrinsics(fx=14.0, fy=15.0, cx=9.5, cy=6.0, width=19, height=13)  # not a multiple of the tile
    bg = torch.tensor([0.2, 0.4, 0.1], dtype=torch.float64)
    vm = _viewmat()
    out = render(gs, vm, intr, background=bg, tile=tile, max_per_tile=64)
    ref = _brute_force(gs, vm, intr, bg)
    assert out.image.shape == (1, 3, 13, 19)
    assert float(out.alpha.min()) >= 0 and float(out.alpha.max()) <= 1
    torch.testing.assert_close(out.image[0], ref, atol=1e-9, rtol=1e-9)


def test_opaque_wall_terminates_and_hides_what_is_behind() -> None:
    # a large opaque red Gaussian in front of a green one: the pixel at its centre is red
    # (the green one is never added because transmittance is already ~0.01 ** n)
    gs = Gaussians(
        means=torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 3.0]], dtype=torch.float64),
        log_scales=torch.log(torch.tensor([[1.0, 1.0, 0.01], [1.0, 1.0, 0.01]], dtype=torch.float64)),
        quats=torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]], dtype=torch.float64),
        opacity_logits=torch.tensor([20.0, 20.0], dtype=torch.float64),
        sh0=torch.tensor([[2.0, -2.0, -2.0], [-2.0, 2.0, -2.0]], dtype=torch.float64),
    )
    intr = Intrinsics(8.0, 8.0, 4.0, 4.0, 8, 8)
    img = render(gs, torch.eye(4, dtype=torch.float64), intr, tile=4).image[0, :, 4, 4]
    assert img[0] > 0.9 and img[1] < 0.02


def test_tile_cap_keeps_nearest() -> None:
    gs = _scene(30, seed=2, dtype=torch.float32)
    intr = Intrinsics(20.0, 20.0, 8.0, 8.0, 16, 16)
    full = render(gs, _viewmat(torch.float32), intr, tile=8, max_per_tile=64)
    capped = render(gs, _viewmat(torch.float32), intr, tile=8, max_per_tile=2)
    assert int(full.tile_counts.max()) > 2
    assert not torch.allclose(full.image, capped.image)
    # with the cap at the largest count nothing changes
    exact = render(gs, _viewmat(torch.float32), intr, tile=8, max_per_tile=int(full.tile_counts.max()))
    torch.testing.assert_close(exact.image, full.image)


def test_batch_of_cameras_equals_single_renders() -> None:
    gs = _scene(20, seed=3, dtype=torch.float32)
    intr = Intrinsics(20.0, 20.0, 8.0, 8.0, 16, 16)
    vms = torch.stack([_viewmat(torch.float32, a) for a in (0.0, 0.1, -0.15)])
    both = render(gs, vms, intr, tile=8).image
    for i in range(3):
        torch.testing.assert_close(both[i], render(gs, vms[i], intr, tile=8).image[0])


def test_gradcheck_float64() -> None:
    gs = _scene(4, seed=4, sh_degree=1)
    intr = Intrinsics(9.0, 9.0, 4.0, 3.5, 8, 7)
    vm = _viewmat()
    names = gs.names()

    def f(*tensors: torch.Tensor) -> torch.Tensor:
        *params, viewmat = tensors
        g = Gaussians(**dict(zip(names, params)))
        return render(g, viewmat, intr, tile=4, background=(0.3, 0.3, 0.3)).image

    inputs = [t.clone().requires_grad_(True) for t in gs.parameters().values()] + [vm.clone().requires_grad_(True)]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_chunked_compositing_equals_one_chunk(monkeypatch) -> None:
    import deblurkit.scene.render as render_module

    gs = _scene(30, seed=7, dtype=torch.float64)
    vms = torch.stack([_viewmat(torch.float64, a) for a in (0.0, 0.12)])
    intr = Intrinsics(20.0, 20.0, 8.0, 8.0, 16, 16)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        g = Gaussians(**{n: t.clone().requires_grad_(True) for n, t in gs.parameters().items()})
        img = render(g, vms, intr, tile=4).image
        (img * torch.linspace(-1, 1, img.numel(), dtype=img.dtype).reshape(img.shape)).sum().backward()
        return img.detach(), [t.grad for t in g.parameters().values()]

    img_one, grads_one = run()
    monkeypatch.setattr(render_module, "COMPOSITE_CHUNK_ELEMENTS", 1)  # one tile per chunk
    img_rows, grads_rows = run()
    torch.testing.assert_close(img_rows, img_one)
    for a, b in zip(grads_rows, grads_one):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("chunk", [1 << 19, 1])
def test_closed_form_backward_equals_autograd_where_pixels_stop(chunk: int, monkeypatch) -> None:
    import deblurkit.scene.render as render_module

    monkeypatch.setattr(render_module, "COMPOSITE_CHUNK_ELEMENTS", chunk)  # 1: each tile trimmed on its own

    gen = torch.Generator().manual_seed(8)
    n, k = 6, 40
    mono = render_module._tile_monomials(4, torch.float64, torch.device("cpu"))
    # wide Gaussians near the tile centre, opaque enough that most pixels stop within the lists
    coef = torch.zeros(n, 6, k, dtype=torch.float64)
    coef[:, 0] = coef[:, 1] = -0.02 - 0.02 * torch.rand(n, k, generator=gen, dtype=torch.float64)
    coef[:, 3:5] = 0.1 * torch.randn(n, 2, k, generator=gen, dtype=torch.float64)
    opacity = 0.3 + 0.69 * torch.rand(n, k, generator=gen, dtype=torch.float64)
    feats = torch.rand(n, 5, k, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([40, 3, 25, 0, 40, 12])
    valid = torch.arange(k)[None, :] < lengths[:, None]
    upstream = torch.randn(n, 5, 16, generator=gen, dtype=torch.float64)

    def grads(fn) -> list[torch.Tensor]:
        inputs = [t.clone().requires_grad_(True) for t in (coef, opacity, feats)]
        (fn(*inputs) * upstream).sum().backward()
        return [t.grad for t in inputs]

    def reference(c: torch.Tensor, o: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """The documented model, step by step through autograd."""
        power = mono.T @ c  # (n, P, k)
        raw = o[:, None, :] * torch.exp(power)
        passes = valid[:, None, :] & (power >= -0.5 * SIGMA_CUT**2) & (raw >= ALPHA_MIN)
        alpha = torch.where(passes, raw.clamp(max=ALPHA_MAX), 0.0)
        keep = 1.0 - alpha
        trans = torch.cumprod(torch.nn.functional.pad(keep[..., :-1], (1, 0), value=1.0), dim=-1)
        weights = torch.where((trans * keep >= T_MIN).detach(), alpha * trans, 0.0)
        return f @ weights.transpose(-1, -2)

    _, trans = render_module._alpha_and_transmittance(coef, opacity, valid, mono)
    assert bool((trans[[0, 4], :, -1] == 0).all()), "the test needs tiles where every pixel stops"
    ours = grads(lambda c, o, f: render_module._Composite.apply(c, o, f, valid, mono))
    for a, b in zip(ours, grads(reference)):
        torch.testing.assert_close(a, b)


def test_every_parameter_and_the_pose_get_gradients() -> None:
    gs = _scene(25, seed=5, dtype=torch.float32, sh_degree=1).requires_grad_(True)
    vm = _viewmat(torch.float32).requires_grad_(True)
    out = render(gs, vm, Intrinsics(20.0, 20.0, 8.0, 8.0, 16, 16), tile=8)
    out.projected.means2d.retain_grad()
    out.image.square().mean().backward()
    for name, t in gs.parameters().items():
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
        assert t.grad.abs().sum() > 0, name
    assert vm.grad is not None and vm.grad[:3].abs().sum() > 0
    assert out.projected.means2d.grad.abs().sum() > 0


def test_gaussian_behind_camera_is_culled_without_nan() -> None:
    gs = _scene(5, seed=6, dtype=torch.float32)
    gs.means[0, 2] = -1.0
    gs.requires_grad_(True)
    out = render(gs, torch.eye(4), Intrinsics(10.0, 10.0, 4.0, 4.0, 8, 8), tile=4)
    out.image.sum().backward()
    assert torch.isfinite(gs.means.grad).all() and float(gs.means.grad[0].abs().sum()) == 0.0


def test_quaternion_roundtrip() -> None:
    q = torch.randn(50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    torch.testing.assert_close(rotmat_to_quat(quat_to_rotmat(q)), q)
    r = quat_to_rotmat(q)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3))
