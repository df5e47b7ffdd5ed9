import argparse

import numpy as np
import pytest
import torch

from deblurkit.errors import DeblurkitError
from deblurkit.infer import export_cli
from deblurkit.infer.backends import (
    OnnxBackend,
    TorchBackend,
    export_onnx_bytes,
    model_fingerprint,
    onnx_cache_dir,
)
from deblurkit.models.checkpoint import save_safetensors
from deblurkit.models.nafnet import convert_to_tlc
from deblurkit.models.registry import create_model


def _randomised(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(("beta", "gamma")):  # zero at init: make every NAFNet branch count
                p.normal_(0, 0.2)
    return model


@pytest.mark.parametrize("name", ["mimo-unet-narrow", "nafnet-w16"])
def test_onnx_matches_torch_with_dynamic_size(name):
    model = _randomised(name)
    onnx_run = OnnxBackend(export_onnx_bytes(model, example_size=64), threads=1)
    torch_run = TorchBackend(model)
    m = model.size_multiple
    rng = np.random.default_rng(0)
    for h, w in ((3 * m, 5 * m), (96, 64)):  # neither is the 64x64 export size
        x = rng.random((1, 3, h, w), dtype=np.float32)
        ref = torch_run(x)
        assert np.abs(ref - x).max() > 1e-3  # the network does something
        assert np.abs(onnx_run(x) - ref).max() < 1e-4


def test_onnx_cache_reused():
    model = _randomised("mimo-unet-narrow")
    OnnxBackend(model)
    files = list(onnx_cache_dir().glob("*.onnx"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    OnnxBackend(model)
    assert [f.stat().st_mtime_ns for f in onnx_cache_dir().glob("*.onnx")] == [mtime]


def test_tlc_model_runs_on_onnx_runtime_and_small_inputs_fall_back_to_torch():
    model = convert_to_tlc(_randomised("nafnet-w16"), train_size=64)  # 96-px window
    onnx_run = OnnxBackend(model, threads=1)
    torch_run = TorchBackend(model)
    assert onnx_run.min_side == 96
    rng = np.random.default_rng(1)
    # 112 x 160: local windows inside the exported graph; 64 x 160: the window is clamped (torch)
    for h, w in ((112, 160), (64, 160), (96, 96)):
        x = rng.random((1, 3, h, w), dtype=np.float32)
        assert np.abs(onnx_run(x) - torch_run(x)).max() < 1e-4, (h, w)
    assert onnx_run._fallback is not None  # the small input did not go through the graph
    # TLC is part of the cache key: the plain model's graph is a different file
    assert model_fingerprint(model) != model_fingerprint(_randomised("nafnet-w16"))


def test_export_command(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_safetensors(_randomised("mimo-unet-narrow"), ckpt, name="m", meta={})
    parser = argparse.ArgumentParser()
    export_cli.add_arguments(parser)
    out = tmp_path / "m.onnx"
    assert export_cli.run(parser.parse_args([str(ckpt), "-o", str(out)])) == 0
    assert out.stat().st_size > 100_000
    text = capsys.readouterr().out
    assert "max |onnxruntime - torch|" in text
    import onnx

    graph = onnx.load(str(out)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    with pytest.raises(DeblurkitError, match=".onnx"):
        export_cli.run(parser.parse_args([str(ckpt), "-o", str(tmp_path / "m.bin")]))


def test_concurrent_onnx_tiles_match_the_sequential_restorer_and_keep_one_session():
    from deblurkit.infer.restorers import NetworkRestorer

    model = _randomised("nafnet-w16")
    backend = OnnxBackend(export_onnx_bytes(model, example_size=64), threads=2)
    kw = {"name": "n", "description": "", "size_multiple": 16, "tile": 64, "overlap": 16, "backend": "onnx"}
    img = np.random.default_rng(2).random((100, 130, 3), dtype=np.float32)
    one = NetworkRestorer(backend, **kw)(img)
    two = NetworkRestorer(backend, tile_workers=2, **kw)(img)
    assert np.abs(one - two).max() < 1e-5  # the 1-thread session may round differently, within float noise
    assert backend._live[0] == 1  # the two-thread session was released for the one-thread pair
    backend(np.zeros((1, 3, 32, 32), dtype=np.float32))
    assert backend._live[0] == 2


def test_cached_graph_is_used_without_loading_the_model(tmp_path, monkeypatch):
    from deblurkit.infer import load_restorer
    from deblurkit.models import checkpoint

    ckpt = tmp_path / "m.safetensors"
    save_safetensors(_randomised("mimo-unet-narrow"), ckpt, name="m", meta={"training_data": "none"})
    x = np.random.default_rng(2).random((24, 32, 3), dtype=np.float32)
    first = load_restorer(str(ckpt), backend="onnx", threads=1)
    assert list((onnx_cache_dir() / "index").glob("*.json"))
    ref = first(x)

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded although its graph is cached")

    monkeypatch.setattr(checkpoint, "load_model", refuse)
    second = load_restorer(str(ckpt), backend="onnx", threads=1)
    assert second.meta == first.meta and second.description == first.description
    assert np.array_equal(second(x), ref)
    # Other weights (same architecture) are another key: the model is loaded for them.
    other = tmp_path / "other.safetensors"
    save_safetensors(create_model("mimo-unet-narrow").eval(), other, name="m", meta={})
    with pytest.raises(AssertionError, match="was loaded"):
        load_restorer(str(other), backend="onnx", threads=1)
    # A damaged index entry is ignored.
    monkeypatch.undo()
    for entry in (onnx_cache_dir() / "index").glob("*.json"):
        entry.write_text("{not json")
    assert np.array_equal(load_restorer(str(ckpt), backend="onnx", threads=1)(x), ref)
