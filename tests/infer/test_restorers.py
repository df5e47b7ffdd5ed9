import sys
import types
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from deblurkit import infer
from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.infer import DEFAULT_RESTORER, list_restorers, load_restorer
from deblurkit.models.checkpoint import save_safetensors
from deblurkit.models.registry import create_model


@pytest.fixture
def zero_mimo(tmp_path):
    """A narrow MIMO-UNet with all weights zero: exactly the identity (all outputs are residual)."""
    model = create_model("mimo-unet-narrow")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    path = tmp_path / "zero.safetensors"
    save_safetensors(model, path, name="zero-mimo", meta={"training_data": "none"})
    return path


def test_list_restorers_kinds():
    infos = {i.name: i for i in list_restorers()}
    assert infos["identity"].kind == "identity" and infos["kernel-deconv"].kind == "classical"
    assert infos["mimo-unet"].kind == "network" and infos["nafnet-w16"].kind == "network"
    assert all(i.description for i in infos.values())


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_odd_size_padding_and_cropping_exact(zero_mimo, backend):
    r = load_restorer(zero_mimo, backend=backend, threads=1)
    assert r.name == "zero-mimo" and r.backend == backend and r.kind == "network"
    img = np.random.default_rng(0).random((333, 517, 3), dtype=np.float32)
    out = r(img)
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, img, atol=1e-6)  # padding is cropped back exactly where it was added


def test_random_network_output_in_range_and_shape():
    r = load_restorer("nafnet-w16", backend="torch", tile=0)
    img = np.random.default_rng(0).random((37, 45, 3), dtype=np.float32)
    out = r(img)
    assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1


def test_grayscale_rgba_and_2d_contract():
    r = load_restorer("identity")
    rng = np.random.default_rng(0)
    gray = rng.random((20, 30, 1), dtype=np.float32)
    np.testing.assert_allclose(r(gray), gray, atol=1e-6)
    flat = rng.random((20, 30), dtype=np.float32)
    assert r(flat).shape == (20, 30)
    rgba = rng.random((20, 30, 4), dtype=np.float32)
    out = r(rgba)
    assert out.shape == rgba.shape and np.array_equal(out[..., 3], rgba[..., 3])


def test_alpha_passed_through_by_network(zero_mimo):
    r = load_restorer(zero_mimo, backend="torch")
    rgba = np.random.default_rng(0).random((17, 23, 4), dtype=np.float32)
    rgba[..., :3] *= 0  # black colour, random alpha: a network must not touch alpha
    out = r(rgba)
    assert np.array_equal(out[..., 3], rgba[..., 3]) and np.allclose(out[..., :3], 0, atol=1e-6)


def test_pil_in_pil_out():
    r = load_restorer("identity")
    for mode in ("RGB", "RGBA", "L"):
        im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 9, len(mode)), dtype=np.uint8).squeeze())
        out = r(im)
        assert isinstance(out, Image.Image) and out.mode == mode and out.size == im.size
        assert np.array_equal(np.asarray(out), np.asarray(im))


def test_refuses_integer_arrays_and_bad_shapes():
    r = load_restorer("identity")
    with pytest.raises(DeblurkitError, match="float image in \\[0, 1\\].*uint8"):
        r(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DeblurkitError, match="shape"):
        r(np.zeros((4, 4, 5), np.float32))
    with pytest.raises(DeblurkitError, match="NaN"):
        r(np.full((4, 4, 3), np.nan, np.float32))


def test_default_and_kernel_deconv_wrapper(monkeypatch):
    calls = []

    from deblurkit.kernel_aware.blind import BlindParams

    def judge(rgb):
        return rgb

    def fake_deblur_image(image_srgb, *, kernel_size=31, tiles=None, progress=None, params=None, network=None):
        calls.append((image_srgb.shape, image_srgb.dtype, kernel_size))
        assert params.decision == "learned" and network is judge  # the learned decision, with its judge
        if progress:
            progress(1, 1)
        return image_srgb * 0.5 + 0.6  # out of range on purpose: the restorer clamps

    fake = types.ModuleType("deblurkit.kernel_aware.blind")
    fake.deblur_image = fake_deblur_image
    fake.BlindParams = BlindParams
    fake.min_image_side = lambda kernel_size=31: 1  # the fake takes images of any size
    monkeypatch.setitem(sys.modules, "deblurkit.kernel_aware.blind", fake)
    import deblurkit.kernel_aware

    monkeypatch.setattr(deblurkit.kernel_aware, "blind", fake, raising=False)
    monkeypatch.setattr(infer, "DEFAULT_RESTORER", "kernel-deconv")
    r = load_restorer("default")
    assert r.name == "kernel-deconv" and r.kind == "classical"
    r.judge = judge  # instead of loading the network
    gray = np.full((10, 12), 0.2, np.float32)
    ticks = []
    out = r(gray, progress=lambda i, n: ticks.append((i, n)))
    assert calls == [((10, 12, 3), np.float32, 31)] and ticks == [(1, 1)]
    np.testing.assert_allclose(out, 0.7, atol=1e-6)
    np.testing.assert_allclose(r(np.full((4, 4, 3), 0.9, np.float32)), 1.0)  # clamped


def test_default_restorer_is_registered():
    assert DEFAULT_RESTORER in {i.name for i in list_restorers()}


def test_unknown_and_bad_options(zero_mimo):
    with pytest.raises(UnknownNameError, match="valid: .*kernel-deconv"):
        load_restorer("sharpen-9000")
    with pytest.raises(UnknownNameError, match="backend"):
        load_restorer(zero_mimo, backend="tensorrt")
    with pytest.raises(DeblurkitError, match="cpu only"):
        load_restorer(zero_mimo, backend="onnx", device="cuda")
    with pytest.raises(DeblurkitError, match="tlc"):
        load_restorer(zero_mimo, tlc=True)
    with pytest.raises(DeblurkitError, match="threads"):
        load_restorer(zero_mimo, threads=0)


def test_backend_auto_choice(zero_mimo):
    assert load_restorer(zero_mimo).backend == "onnx"  # onnxruntime is installed in the test env
    nafnet = load_restorer("nafnet-gopro-w32", tile=0)  # TLC by default, on ONNX Runtime too
    assert nafnet.backend == "onnx" and nafnet.meta["tlc"]
    from deblurkit.infer.restorers import _resolve_backend

    assert _resolve_backend("auto", "cpu", "float32") == "onnx"
    assert _resolve_backend("auto", "cpu", "bfloat16") == "torch"
    assert _resolve_backend("auto", "cuda", "float32") == "torch"


def test_bfloat16_within_stated_tolerance(tmp_path):
    torch.manual_seed(0)
    img = np.random.default_rng(0).random((32, 48, 3), dtype=np.float32)
    path = tmp_path / "m.safetensors"
    save_safetensors(create_model("mimo-unet-narrow"), path, name="m", meta={})
    f32 = load_restorer(path, backend="torch")(img)
    b16 = load_restorer(path, backend="torch", dtype="bfloat16")(img)
    assert 0 < np.abs(f32 - b16).max() < 0.05  # the documented bf16 tolerance (docs/models.md)


def test_kernel_deconv_with_the_real_classical_pipeline():
    pytest.importorskip("deblurkit.kernel_aware.blind")
    img = np.random.default_rng(0).random((72, 80, 3), dtype=np.float32)
    out = load_restorer("kernel-deconv")(img)
    assert out.shape == img.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1


def test_default_is_the_gated_chain_with_the_shipped_network_and_kernel_refine_stays_available():
    from deblurkit.infer import DEFAULT_RESTORER
    from deblurkit.infer.restorers import SHAKE_CHAIN
    from deblurkit.kernel_aware.refine import WEIGHTS_PATH

    assert DEFAULT_RESTORER == SHAKE_CHAIN
    by_default = load_restorer("default", threads=1)
    network = by_default.stages[-1]
    assert network.name == "nafnet-w16" and network.meta["weights"] != "random-init"
    assert by_default.stages[0].no_blur_support == infer.restorers.CHAIN_KERNEL_MIN_SUPPORT
    blurry = np.random.default_rng(0).random((64, 80, 3), dtype=np.float32)
    out = by_default(blurry)
    assert out.shape == blurry.shape and not np.allclose(out, blurry, atol=1e-3)  # a trained net acts
    by_file = load_restorer(str(WEIGHTS_PATH))
    assert by_file.name == "kernel-refine"
    assert "kernel-refine" in {i.name for i in list_restorers()}
    img = np.full((40, 40, 3), 0.5, np.float32)  # too small for a kernel: returned unchanged
    np.testing.assert_allclose(by_file(img), img, atol=1e-6)


def test_default_model_card_matches_its_weights_and_measured_results():
    """The card states the shipped training run and the held-out numbers from the results file."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    from deblurkit.models.checkpoint import bundled_weights_dir

    card = (bundled_weights_dir() / "nafnet-w16.md").read_text()
    with safe_open(str(bundled_weights_dir() / "nafnet-w16.safetensors"), "pt") as fh:
        extra = json.loads(fh.metadata()["extra"])
    cfg = extra["train_config"]  # the last training stage's resolved config
    assert f"{extra['trained_steps']:,}" in card and f"{extra['trained_steps_total']:,} steps" in card
    schedule = " → ".join(f"{b} × {c}" for b, c in zip(cfg["batch_sizes"], cfg["crop_sizes"])) + " px"
    assert schedule in card and f"seed {cfg['seed']}" in card
    assert f"deconvolved_input_prob={cfg['deconvolved_input_prob']}" in card
    assert cfg["preset"] == "realistic" and "`realistic` preset" in card
    results = Path(__file__).resolve().parents[2] / "studies" / "results" / "designs_default.json"
    if not results.is_file():
        pytest.skip("studies/results/designs_default.json not present")
    for row in json.loads(results.read_text())["rows"]:
        assert f"{row['e2e'][0]:.2f}" in card, row["set"]
        assert f"{row['e2e'][0] - row['identity'][0]:+.2f}" in card, row["set"]


def test_self_ensemble_follows_the_registry_unless_given(zero_mimo):
    """The default network averages over rotations (measured to help it); others do not unless asked."""
    assert load_restorer("default", threads=1).stages[-1].meta["self_ensemble"] is True
    assert load_restorer("nafnet-w16", threads=1, self_ensemble=False).meta["self_ensemble"] is False
    assert load_restorer(zero_mimo, threads=1).meta["self_ensemble"] is False
    assert load_restorer(zero_mimo, threads=1, self_ensemble=True).meta["self_ensemble"] is True


def test_recommended_ensemble_halves_from_the_size_limit_and_explicit_stays_full():
    from deblurkit.infer.restorers import TWO_ROTATIONS_FROM_PIXELS

    recommended = load_restorer("nafnet-w16", threads=1)
    assert recommended.ensemble_rotations(1, TWO_ROTATIONS_FROM_PIXELS - 1) == (0, 1, 2, 3)
    assert recommended.ensemble_rotations(1, TWO_ROTATIONS_FROM_PIXELS) == (0, 1)
    assert recommended.ensemble_rotations(720, 1280) == (0, 1)  # 720p: not more passes than 1 MP
    assert f"x2 from {TWO_ROTATIONS_FROM_PIXELS / 1e6:g} MP" in recommended.description
    explicit = load_restorer("nafnet-w16", threads=1, self_ensemble=True)
    assert explicit.ensemble_rotations(4000, 3000) == (0, 1, 2, 3)
    assert load_restorer("nafnet-w16", threads=1, self_ensemble=False).ensemble_rotations(64, 64) == (0,)


def test_concurrent_tiles_only_for_small_networks_on_onnx(monkeypatch):
    pytest.importorskip("onnxruntime")
    from deblurkit.infer import restorers

    assert load_restorer("nafnet-w16", backend="onnx", threads=2).meta["tile_workers"] == 2
    monkeypatch.setattr(restorers, "CONCURRENT_TILES_MAX_PARAMS", 1000)  # as if it were a wide network
    assert load_restorer("nafnet-w16", backend="onnx", threads=2).meta["tile_workers"] == 1
    monkeypatch.undo()
    assert load_restorer("nafnet-w16", backend="onnx", threads=1).meta["tile_workers"] == 1
    assert load_restorer("nafnet-w16", backend="torch", threads=2).meta["tile_workers"] == 1
    with pytest.raises(DeblurkitError, match="tile_workers"):
        load_restorer("nafnet-w16", tile_workers=0)


def test_automatic_tiles_are_larger_for_small_networks_on_onnx(monkeypatch):
    """Above AUTO_TILE_AREA pixels a small network on ONNX Runtime runs in AUTO_TILE_NARROW-px
    tiles, a wide one (or torch) in AUTO_TILE-px tiles; smaller photos are not tiled, and an
    explicit tile size is kept."""
    pytest.importorskip("onnxruntime")
    from deblurkit.infer import restorers

    small = load_restorer("nafnet-w16", backend="onnx", threads=2)
    assert small._tile_for(3000, 4000) == restorers.AUTO_TILE_NARROW > restorers.AUTO_TILE
    assert small._tile_for(1000, 1000) is None  # up to 1 MP: one window
    assert load_restorer("nafnet-w16", backend="torch", threads=2)._tile_for(3000, 4000) == restorers.AUTO_TILE
    assert load_restorer("nafnet-w16", backend="onnx", tile=256)._tile_for(3000, 4000) == 256
    monkeypatch.setattr(restorers, "CONCURRENT_TILES_MAX_PARAMS", 1000)  # as if it were a wide network
    assert load_restorer("nafnet-w16", backend="onnx", threads=2)._tile_for(3000, 4000) == restorers.AUTO_TILE


def _fake_blind(monkeypatch, calls):
    from deblurkit.kernel_aware.blind import BlindParams

    def fake_deblur_image(image_srgb, *, kernel_size=31, tiles=None, progress=None, params=None, network=None):
        calls.append((image_srgb.copy(), params))
        assert (network is not None) == (params.decision == "learned")
        for i in range(3):
            if progress:
                progress(i + 1, 3)
        return image_srgb * 0.5 + 0.6  # partly out of range: the next stage gets it clamped

    fake = types.ModuleType("deblurkit.kernel_aware.blind")
    fake.deblur_image = fake_deblur_image
    fake.BlindParams = BlindParams
    fake.min_image_side = lambda kernel_size=31: 1  # the fake takes images of any size
    monkeypatch.setattr(infer.restorers, "judge_network", lambda threads=None: (lambda rgb: rgb))
    monkeypatch.setitem(sys.modules, "deblurkit.kernel_aware.blind", fake)
    import deblurkit.kernel_aware

    monkeypatch.setattr(deblurkit.kernel_aware, "blind", fake, raising=False)


def test_chain_runs_stages_left_to_right_with_combined_progress(monkeypatch, zero_mimo):
    calls = []
    _fake_blind(monkeypatch, calls)
    chain = load_restorer(f"kernel-deconv+{zero_mimo}", backend="torch")
    assert isinstance(chain, infer.restorers.ChainRestorer)
    assert [s.name for s in chain.stages] == ["kernel-deconv", "zero-mimo"] and chain.kind == "network"
    img = np.random.default_rng(0).random((20, 28, 3), dtype=np.float32)
    ticks = []
    out = chain(img, progress=lambda i, n: ticks.append((i, n)))
    np.testing.assert_array_equal(calls[0][0], img)
    # inside a chain, kernel-deconv leaves short kernels to the network after it
    from deblurkit.kernel_aware.blind import BlindParams

    learned = BlindParams(decision=infer.restorers.KERNEL_DECISION)
    assert calls[0][1] == replace(learned, no_blur_support=infer.restorers.CHAIN_KERNEL_MIN_SUPPORT)
    calls.clear()
    load_restorer("kernel-deconv")(img)
    assert calls[0][1] == learned  # alone, the classical pipeline's own threshold
    # the zero network is the identity, so the output is the first stage's clamped output
    np.testing.assert_allclose(out, np.clip(img * 0.5 + 0.6, 0, 1), atol=1e-6)
    done = [i for i, _ in ticks]
    assert done == sorted(done) and ticks[-1][0] == ticks[-1][1] and {n for _, n in ticks} == {ticks[-1][1]}
    assert 0 < done[2] < ticks[-1][1]  # the first stage's end is part-way, not the end


def test_blind_params_reach_the_kernel_stage_and_a_chain_keeps_its_gate(monkeypatch, zero_mimo):
    from deblurkit.kernel_aware.blind import BlindParams

    settings = BlindParams(kernel_cut=0.1, no_blur_support=3.0)
    calls = []
    _fake_blind(monkeypatch, calls)
    img = np.random.default_rng(1).random((20, 28, 3), dtype=np.float32)
    load_restorer("kernel-deconv", blind_params=settings)(img)
    assert calls[0][1] is settings  # alone: exactly the settings given
    load_restorer(f"kernel-deconv+{zero_mimo}", backend="torch", blind_params=settings)(img)
    in_chain = calls[1][1]
    assert in_chain.kernel_cut == 0.1 and in_chain.no_blur_support == infer.restorers.CHAIN_KERNEL_MIN_SUPPORT


def test_shake_chain_is_listed_and_loads_the_shipped_parts():
    from deblurkit.infer.restorers import SHAKE_CHAIN

    assert SHAKE_CHAIN in {i.name for i in list_restorers()}
    chain = load_restorer(SHAKE_CHAIN)
    assert [s.name for s in chain.stages] == ["kernel-deconv", "nafnet-w16"]
    assert chain.stages[1].self_ensemble  # the registry's recommendation for nafnet-w16 carries over
    # The learned veto judges with the chain's own network session, one pass.
    judge = chain.stages[0].judge.__self__
    assert judge.run is chain.stages[1].run and not judge.self_ensemble


@pytest.mark.parametrize("spec", ["nafnet-w16+", "+identity", "identity++identity"])
def test_bad_chains_give_one_line_errors(spec):
    with pytest.raises(DeblurkitError, match="bad restorer chain") as err:
        load_restorer(spec)
    assert "\n" not in str(err.value)


def test_chain_with_an_unknown_part_names_the_valid_ones():
    with pytest.raises(UnknownNameError, match="valid: .*kernel-deconv"):
        load_restorer("sharpen-9000+identity")


def test_an_image_too_small_for_a_kernel_skips_the_kernel_stage_not_the_network():
    from deblurkit.kernel_aware.blind import min_image_side

    side = min_image_side(31) - 1
    img = np.random.default_rng(1).random((side, side + 10, 3), dtype=np.float32)
    ticks = []
    alone = load_restorer("kernel-deconv")(img, progress=lambda i, n: ticks.append((i, n)))
    np.testing.assert_array_equal(alone, img)  # nothing to deconvolve: returned as it is
    assert ticks and ticks[-1][0] == ticks[-1][1]
    default = load_restorer("default", threads=1)
    network = load_restorer("nafnet-w16", threads=1)
    np.testing.assert_allclose(default(img), np.clip(network(img), 0, 1), atol=1e-5)  # the network still runs
