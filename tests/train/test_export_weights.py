"""Exporting a training checkpoint's weights (EMA or live) to a .safetensors file the restorer loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deblurkit.cli import main
from deblurkit.errors import DeblurkitError
from deblurkit.train.checkpoint import export_checkpoint_weights, save_checkpoint
from deblurkit.train.config import config_to_dict, resolve_config

TINY_NAF = {"width": 8, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1], "middle_blk_num": 1}


def _tiny_checkpoint(path: Path, *, ema: bool = True, step: int = 7) -> tuple[dict, dict]:
    """A checkpoint as ``deblurkit train`` writes it, with distinct live and EMA weights of a tiny NAFNet."""
    from deblurkit.models.registry import create_model

    torch.manual_seed(0)
    live = create_model("nafnet-w16", **TINY_NAF).state_dict()
    averaged = create_model("nafnet-w16", **TINY_NAF).state_dict()  # other random weights
    cfg = resolve_config(overrides={"model": "nafnet-w16", "data": "synth", "source": "procedural",
                                    "out_dir": str(path.parent), "seed": 3})
    save_checkpoint(path, {"model": live, "optimizer": {}, "scheduler": {}, "ema": averaged if ema else None,
                           "step": step, "rng": {}, "config": config_to_dict(cfg), "data": {}, "world_size": 1})
    return live, averaged


def _same_weights(model: torch.nn.Module, sd: dict) -> bool:
    return all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())


def test_exports_ema_by_default_and_live_weights_when_asked(tmp_path):
    from deblurkit.models.checkpoint import load_model

    ckpt = tmp_path / "last.pt"
    live, averaged = _tiny_checkpoint(ckpt)
    info = export_checkpoint_weights(ckpt, tmp_path / "ema.safetensors")
    assert info["step"] == 7 and info["weights"] == "ema" and info["arch"] == "nafnet"
    model, meta = load_model(tmp_path / "ema.safetensors")
    assert _same_weights(model, averaged) and not _same_weights(model, live)
    assert meta["hparams"]["width"] == 8 and meta["extra"]["trained_steps"] == 7
    assert meta["extra"]["weights"] == "ema" and meta["extra"]["exported_from"] == str(ckpt)
    assert "preset=realistic, source=procedural, seed=3" in meta["training_data"]

    export_checkpoint_weights(ckpt, tmp_path / "live.safetensors", weights="model")
    raw, _ = load_model(tmp_path / "live.safetensors")
    assert _same_weights(raw, live)


def test_exported_weights_restore_like_the_network_they_hold(tmp_path):
    from deblurkit.infer import load_restorer
    from deblurkit.models.registry import create_model

    ckpt = tmp_path / "last.pt"
    _, averaged = _tiny_checkpoint(ckpt)
    out = tmp_path / "w.safetensors"
    export_checkpoint_weights(ckpt, out)
    net = create_model("nafnet-w16", **TINY_NAF).eval()
    net.load_state_dict(averaged)
    image = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    restored = load_restorer(str(out), backend="torch", threads=1, tile=0, self_ensemble=False, tlc=False)(image)
    with torch.no_grad():
        expected = net(torch.from_numpy(image).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert restored.shape == image.shape
    np.testing.assert_allclose(restored, expected, atol=1e-5)


def test_a_fine_tune_records_its_total_steps(tmp_path):
    from deblurkit.models.checkpoint import load_model

    ckpt = tmp_path / "last.pt"
    first = tmp_path / "first.safetensors"
    _tiny_checkpoint(ckpt, step=5)
    export_checkpoint_weights(ckpt, first)
    cfg = resolve_config(overrides={"model": "nafnet-w16", "init_weights": str(first), "out_dir": str(tmp_path)})
    sd = load_model(first)[0].state_dict()
    save_checkpoint(ckpt, {"model": sd, "ema": sd, "step": 3, "config": config_to_dict(cfg), "data": {}})
    export_checkpoint_weights(ckpt, tmp_path / "second.safetensors")
    extra = load_model(tmp_path / "second.safetensors")[1]["extra"]
    assert extra["trained_steps"] == 3 and extra["trained_steps_total"] == 8 and extra["init_weights"] == str(first)


def test_bad_checkpoints_are_one_line_errors_and_leave_the_output_alone(tmp_path):
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"previous")
    with pytest.raises(DeblurkitError, match="no checkpoint"):
        export_checkpoint_weights(tmp_path / "missing.pt", out)
    corrupt = tmp_path / "corrupt.pt"
    _tiny_checkpoint(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:1000])  # truncated
    with pytest.raises(DeblurkitError, match="cannot read checkpoint"):
        export_checkpoint_weights(corrupt, out)
    no_ema = tmp_path / "no_ema.pt"
    _tiny_checkpoint(no_ema, ema=False)
    with pytest.raises(DeblurkitError, match="holds no 'ema' weights.*--raw"):
        export_checkpoint_weights(no_ema, out)
    with pytest.raises(DeblurkitError, match="must end in .safetensors"):
        export_checkpoint_weights(no_ema, tmp_path / "w.pt", weights="model")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(DeblurkitError, match="not a deblurkit training checkpoint"):
        export_checkpoint_weights(foreign, out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_cli_exports_and_reports_errors_in_one_line(tmp_path, capsys):
    from deblurkit.models.checkpoint import load_model

    ckpt = tmp_path / "last.pt"
    live, _ = _tiny_checkpoint(ckpt, step=1234)
    out = tmp_path / "live.safetensors"
    assert main(["export-weights", str(ckpt), "-o", str(out), "--raw"]) == 0
    said = capsys.readouterr().out
    assert "live weights at step 1,234" in said and str(out) in said
    assert _same_weights(load_model(out)[0], live)

    no_ema = tmp_path / "no_ema.pt"
    _tiny_checkpoint(no_ema, ema=False)
    assert main(["export-weights", str(no_ema), "-o", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("deblurkit: error: ") and "--raw" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists()
