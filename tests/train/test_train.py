"""End-to-end training on tiny data: overfitting, exact resume, outputs, synthesis data, bad input."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pytest
import torch
from train_testlib import TinyMultiScaleNet, TinyResidualNet, write_pairs

from deblurkit.errors import DeblurkitError
from deblurkit.train import resolve_config, train


def _cfg(out: Path, data_root: Path, **kw):
    base = {"out_dir": str(out), "data": "paired", "data_root": str(data_root), "progress": False,
            "tensorboard": False, "crop_size": 32, "val_crop": 0}
    base.update(kw)
    return resolve_config(overrides={k: str(v) for k, v in base.items()})


def test_tiny_model_overfits_one_pair(tmp_path):
    data = write_pairs(tmp_path / "one", 2, size=32)  # one pair trains, the other is held out
    cfg = _cfg(tmp_path / "run", data, loss="l1", lr=2e-3, scheduler="constant", batch_size=1, hflip=False,
               max_steps=400, log_every=1, val_every=0, checkpoint_every=400)
    result = train(cfg, model_factory=functools.partial(TinyResidualNet, width=32, depth=5))
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 400
    # the network starts as the identity, so the first loss is that of the blurry input itself
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
    assert result.data_info["train_pairs"] == 1


def _run(out, data, *, max_steps=6, on_step=None, resume=False, **kw):
    cfg = _cfg(out, data, loss="mimo", batch_size=2, max_steps=max_steps, checkpoint_every=2, val_every=3,
               log_every=1, ema_decay=0.9, milestones="[3]", grad_clip=0.5, **kw)
    factory = functools.partial(TinyMultiScaleNet, width=8, dropout=0.2)  # dropout: the torch RNG state matters
    return train(cfg, model_factory=factory, on_step=on_step, resume=resume)


def test_stop_and_resume_equals_uninterrupted_run(tmp_path, pairs_dir):
    full = _run(tmp_path / "a", pairs_dir)

    def stop_at_5(step, _info):
        if step == 5:
            raise KeyboardInterrupt  # killed between checkpoints (last one at step 4)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", pairs_dir, on_step=stop_at_5)
    resumed = _run(tmp_path / "b", pairs_dir, resume=True, num_workers=1)  # a DataLoader worker changes nothing
    assert resumed.step == full.step == 6
    for name, ref in full.model.state_dict().items():
        assert torch.equal(ref, resumed.model.state_dict()[name]), name
    for name, ref in full.ema_model.state_dict().items():
        assert torch.equal(ref, resumed.ema_model.state_dict()[name]), name

    with open(tmp_path / "b" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(tmp_path / "a" / "metrics.csv", newline="") as fh:
        ref_rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == [str(s) for s in range(1, 7)]  # step 5 logged once, not twice
    assert [r["loss"] for r in rows] == [r["loss"] for r in ref_rows]
    assert rows[2]["val_psnr"] and rows[5]["val_psnr"] and not rows[0]["val_psnr"]
    assert (tmp_path / "b" / "config.yaml").is_file()
    assert not [p for p in (tmp_path / "b" / "checkpoints").iterdir() if p.name != "last.pt"]  # no temp files left


def test_resume_refuses_a_changed_config(tmp_path, pairs_dir):
    _run(tmp_path / "a", pairs_dir, max_steps=2)
    with pytest.raises(DeblurkitError, match=r"lr: 0\.0001 -> 0\.001"):
        _run(tmp_path / "a", pairs_dir, max_steps=2, resume=True, lr=1e-3)
    with pytest.raises(DeblurkitError, match="no checkpoint"):
        _run(tmp_path / "empty", pairs_dir, resume=True)
    with pytest.raises(DeblurkitError, match="already holds a run"):
        _run(tmp_path / "a", pairs_dir, max_steps=2)  # never overwrite a run silently


def test_mismatched_pairs_are_reported_by_name(tmp_path):
    data = write_pairs(tmp_path / "d", 3, size=32)
    (data / "sharp" / "p01.png").unlink()
    with pytest.raises(DeblurkitError, match=r"p01\.png"):
        train(_cfg(tmp_path / "r", data, max_steps=1), model_factory=TinyResidualNet)
    from deblurkit.io import save_png

    data2 = write_pairs(tmp_path / "e", 3, size=32)
    save_png(data2 / "sharp" / "p02.png", torch.zeros(30, 32, 3).numpy())
    with pytest.raises(DeblurkitError, match=r"p02\.png") as err:  # raised in a DataLoader worker
        train(_cfg(tmp_path / "r2", data2, max_steps=3, batch_size=3, num_workers=1), model_factory=TinyResidualNet)
    assert "\n" not in str(err.value)  # one line, no worker traceback


def test_bf16_autocast_and_synthesis_data(tmp_path):
    cfg = resolve_config(overrides={
        "out_dir": str(tmp_path / "s"), "data": "synth", "source": "dead-leaves", "preset": "naive",
        "crop_size": "32", "val_crop": "32", "val_count": "2", "batch_size": "2", "max_steps": "3",
        "amp": "bf16", "progress": "false", "tensorboard": "false", "loss": "charbonnier",
        "optimizer": "adamw", "scheduler": "cosine", "checkpoint_every": "3",
    })
    result = train(cfg, model_factory=TinyMultiScaleNet)
    assert result.step == 3
    row = result.history[-1]
    assert row["val_count"] == 2 and 0 < row["val_ssim"] <= 1 and row["val_psnr"] > 5
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_registry_model_trains_and_its_weights_evaluate(tmp_path, pairs_dir):
    from deblurkit.eval.evaluate import evaluate, folder_pairs

    cfg = _cfg(tmp_path / "m", pairs_dir, model="mimo-unet-narrow", batch_size=1, max_steps=2, checkpoint_every=2)
    result = train(cfg)
    weights = tmp_path / "m" / "model.safetensors"
    assert weights.is_file() and result.history[-1]["val_count"] == 1
    report = evaluate(["identity", str(weights)], folder_pairs(pairs_dir), limit=2)
    assert report.summary["results"][str(weights)]["scored"] == 2


def test_init_weights_fine_tunes_from_a_file_and_refuses_another_architecture(tmp_path, pairs_dir):
    from deblurkit.models.checkpoint import load_model

    first = _cfg(tmp_path / "a", pairs_dir, model="mimo-unet-narrow", batch_size=1, max_steps=2)
    train(first)
    start = tmp_path / "a" / "model.safetensors"
    # lr=0: a fine-tuning run that cannot move must give back exactly the weights it started from
    tuned = _cfg(tmp_path / "b", pairs_dir, model="mimo-unet-narrow", batch_size=1, max_steps=2,
                 lr=0, scheduler="constant", init_weights=str(start))
    train(tuned)
    a, _ = load_model(start)
    b, meta = load_model(tmp_path / "b" / "model.safetensors")
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), key
    assert meta["extra"]["trained_steps_total"] == 4 and meta["extra"]["init_weights"] == str(start)
    wrong = _cfg(tmp_path / "c", pairs_dir, model="nafnet-w16", batch_size=1, max_steps=1, init_weights=str(start))
    with pytest.raises(DeblurkitError, match="does not match the model being trained"):
        train(wrong)
    assert not (tmp_path / "c" / "checkpoints").exists()


def test_wider_nafnet_starts_from_a_narrower_one(tmp_path, pairs_dir):
    from deblurkit.models.checkpoint import load_model

    # lr=0: the widened start is what the run writes back; it must compute the narrow network's function
    cfg = _cfg(tmp_path / "w", pairs_dir, model="nafnet-w32", batch_size=1, max_steps=1, lr=0,
               scheduler="constant", ema_decay=0, init_weights="nafnet-w16")
    train(cfg)
    narrow, _ = load_model("nafnet-w16")
    wide, meta = load_model(tmp_path / "w" / "model.safetensors")
    assert wide.hparams["width"] == 32 and meta["extra"]["init_weights"] == "nafnet-w16"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(wide.eval()(x), narrow.eval()(x), atol=1e-5)
