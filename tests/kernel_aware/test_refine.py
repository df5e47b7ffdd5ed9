"""Tests of the kernel-refine pipeline and its shipped model."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.refine import (
    DEFAULT_NSRS,
    WEIGHTS_PATH,
    KernelRefineRestorer,
    load_kernel_refine_model,
    refine_image,
    refine_image_and_kernels,
    save_kernel_refine_weights,
    wiener_stack,
)
from deblurkit.models.kernel_deconv_net import KernelDeconvNet

CARD = WEIGHTS_PATH.with_suffix(".md")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


@pytest.fixture(scope="module")
def shipped():
    return load_kernel_refine_model()


def _synth_pair(noise: str):
    """A 128 px scikit-image photo crop blurred in linear light by a 12 px shake, with its true kernel."""
    import dataclasses

    from deblurkit.synth.pipeline import synthesize_pair
    from deblurkit.synth.presets import get_preset
    from deblurkit.synth.sources import SampleImageSource

    crop, _ = SampleImageSource(("astronaut",)).random_crop(136, np.random.default_rng(3))
    cfg = dataclasses.replace(get_preset("realistic-uniform"), noise_model=noise, poisson=True, saturation_prob=0.0,
                              jpeg_prob=0.0, camera_pipeline=noise != "none", trim=4, blur_length_px=(12.0, 12.0))
    x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]
    pair = synthesize_pair(x, cfg, torch.Generator().manual_seed(5))
    blur = pair.blur[0].permute(1, 2, 0).numpy()
    sharp = pair.sharp[0].permute(1, 2, 0).numpy()
    return blur, sharp, pair.kernel[0, 0].numpy()


@pytest.fixture(scope="module")
def blurred_pair():
    return _synth_pair("none")


@pytest.fixture(scope="module")
def noisy_pair():
    return _synth_pair("rsblur-realblur")


# ----------------------------------------------------------------------------- network


def test_network_shapes_and_gradients():
    torch.manual_seed(0)
    net = KernelDeconvNet(width=8, enc_blk_nums=(1, 1), middle_blk_num=1, dec_blk_nums=(1, 1))
    assert net.size_multiple == 4
    x = torch.rand(2, 12, 16, 20, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 3, 16, 20) and torch.isfinite(y).all()
    y.square().mean().backward()
    # beta/gamma start at zero (NAFNet), so the inner convs get gradients only after one step;
    # every parameter that is reachable at initialisation must get one.
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 12, 18, 20))
    with pytest.raises(ValueError, match=r"\(B, 12, H, W\)"):
        net(torch.rand(1, 9, 16, 16))


def test_network_is_residual_on_the_base_wiener_copy():
    net = KernelDeconvNet(width=8, enc_blk_nums=(1,), middle_blk_num=1, dec_blk_nums=(1,), base_index=2)
    with torch.no_grad():
        net.ending.weight.zero_()
        net.ending.bias.zero_()
    x = torch.rand(1, 12, 8, 8)
    assert torch.equal(net(x), x[:, 9:12])


# ----------------------------------------------------------------------------- Wiener inputs


def test_wiener_stack_with_delta_kernel_returns_the_input(rng):
    from deblurkit.color import linear_to_srgb, srgb_to_linear

    srgb = rng.random((40, 48, 3), dtype=np.float32)
    out = wiener_stack(srgb_to_linear(srgb), np.ones((1, 1)))
    assert out.shape == (40, 48, 3 * len(DEFAULT_NSRS))
    for i in range(len(DEFAULT_NSRS)):
        np.testing.assert_allclose(out[..., 3 * i:3 * i + 3], linear_to_srgb(srgb_to_linear(srgb)), atol=2e-4)


def test_delta_kernel_leaves_the_image_unchanged(rng, shipped):
    img = rng.random((96, 96, 3), dtype=np.float32)
    res = refine_image_and_kernels(img, shipped[0], kernels=np.ones((1, 1)))
    assert not res.blurred.any()
    np.testing.assert_array_equal(res.image, img)


# ----------------------------------------------------------------------------- shipped model


def test_shipped_weights_and_model_card(shipped):
    model, meta = shipped
    assert WEIGHTS_PATH.stat().st_size <= 30 * 2**20
    assert isinstance(model, KernelDeconvNet) and not model.training
    assert meta["name"] == "kernel-refine" and meta["arch"] == "kernel-deconv-net"
    extra = meta["extra"]
    for key in ("design", "nsrs", "steps", "wall_seconds", "hardware", "training_pairs", "command"):
        assert key in extra, key
    assert extra["steps"] > 0 and extra["wall_seconds"] > 0
    assert tuple(extra["nsrs"]) == DEFAULT_NSRS
    assert "train" in meta["training_data"]
    card = CARD.read_text()
    for heading in ("Design", "Data", "Training", "Held-out results", "Limitations"):
        assert re.search(rf"^#+ .*{heading}", card, flags=re.MULTILINE | re.IGNORECASE), heading
    assert f"{extra['steps']}" in card  # the card states the step count of the shipped weights
    assert "studies.eval_designs" in card


def test_true_kernel_refinement_beats_input_wiener_and_wrong_kernel(noisy_pair, shipped):
    """Kernel conditioning works: with the true kernel the network beats the blurry input, the
    Wiener copy it refines (whose noise it suppresses), and itself given a wrong (rotated) kernel."""
    from deblurkit.color import srgb_to_linear

    blur, sharp, kernel = noisy_pair
    out = refine_image(blur, shipped[0], kernels=kernel)
    wrong = refine_image(blur, shipped[0], kernels=np.ascontiguousarray(np.rot90(kernel)))
    mid = DEFAULT_NSRS.index(1e-2)
    wien = wiener_stack(srgb_to_linear(blur), kernel)[..., 3 * mid:3 * mid + 3]
    p_in, p_w, p_out, p_wrong = _psnr(blur, sharp), _psnr(wien, sharp), _psnr(out, sharp), _psnr(wrong, sharp)
    assert p_out > p_in + 0.5, (p_in, p_out)
    assert p_out > p_w + 1.0, (p_w, p_out)
    assert p_out > p_wrong + 0.5, (p_wrong, p_out)


def test_network_tiling_matches_whole_image(shipped, rng):
    from deblurkit.kernel_aware.refine import KernelRefineParams

    img = rng.random((150, 330, 3), dtype=np.float32)
    k = np.zeros((9, 9), np.float32)
    k[4, :] = 1 / 9
    whole = refine_image_and_kernels(img, shipped[0], kernels=k, params=KernelRefineParams(net_tile=0)).image
    calls: list[tuple[int, int]] = []
    tiled = refine_image_and_kernels(img, shipped[0], kernels=k, params=KernelRefineParams(net_tile=128, net_overlap=64),
                                     progress=lambda d, t: calls.append((d, t))).image
    np.testing.assert_allclose(tiled, whole, atol=2e-3)
    assert len(calls) > 3 and calls[-1][0] == calls[-1][1]


def test_blind_pipeline_on_a_small_image(blurred_pair, shipped):
    blur = blurred_pair[0]
    calls: list[tuple[int, int]] = []
    res = refine_image_and_kernels(blur, shipped[0], progress=lambda d, t: calls.append((d, t)))
    assert res.image.shape == blur.shape and res.image.dtype == np.float32
    assert 0.0 <= res.image.min() and res.image.max() <= 1.0
    assert calls and calls[-1][0] == calls[-1][1]
    assert res.kernels.shape[-1] == 31 and np.allclose(res.kernels.sum(axis=(2, 3)), 1.0, atol=1e-4)


def test_restorer_contract_grayscale_and_tiny_images(shipped):
    r = KernelRefineRestorer()
    tiny = np.full((20, 30), 0.5, np.float32)
    np.testing.assert_array_equal(r(tiny), tiny)  # too small for a kernel: unchanged
    flat = np.full((80, 80), 0.3, np.float32)  # no texture: nothing to sharpen, no texture invented
    out = r(flat)
    assert out.shape == flat.shape and out.dtype == np.float32
    assert out.std() < 5e-3 and abs(out.mean() - 0.3) < 5e-3
    np.testing.assert_allclose(out[8:-8, 8:-8], flat[8:-8, 8:-8], atol=5e-3)


# ----------------------------------------------------------------------------- weights I/O and errors


def test_weights_round_trip_and_errors(tmp_path):
    net = KernelDeconvNet(width=8, enc_blk_nums=(1,), middle_blk_num=1, dec_blk_nums=(1,))
    path = tmp_path / "w.safetensors"
    save_kernel_refine_weights(net, path, meta={"training_data": "none", "steps": 1})
    back, meta = load_kernel_refine_model(path)
    assert meta["hparams"] == net.hparams and meta["extra"]["steps"] == 1
    for a, b in zip(net.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(DeblurkitError, match="no such weights file"):
        load_kernel_refine_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(DeblurkitError, match="not a safetensors file"):
        load_kernel_refine_model(bad)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(DeblurkitError, match="not a kernel-deconv-net weights file"):
        load_kernel_refine_model(other)


def test_input_validation(shipped):
    model = shipped[0]
    with pytest.raises(DeblurkitError, match="shape"):
        refine_image(np.zeros((64, 64), np.float32), model)
    with pytest.raises(DeblurkitError, match="too small"):
        refine_image(np.zeros((40, 40, 3), np.float32), model)
    with pytest.raises(DeblurkitError, match="input space"):
        refine_image(np.zeros((96, 96, 3), np.float32), model, input_space="xyz")
    with pytest.raises(DeblurkitError, match="kernels must be"):
        refine_image(np.zeros((96, 96, 3), np.float32), model, kernels=np.ones((2, 3, 4)))


def test_card_metrics_match_results_file():
    """Numbers in the card's results table come from studies/results/designs.json."""
    from pathlib import Path

    results = Path(__file__).resolve().parents[2] / "studies" / "results" / "designs.json"
    if not results.is_file():
        pytest.skip("studies/results/designs.json not present")
    rows = json.loads(results.read_text())["rows"]
    card = CARD.read_text()
    for row in rows:
        if "kernel-refine" in row:
            assert f"{row['kernel-refine'][0]:.2f}" in card, row["set"]
