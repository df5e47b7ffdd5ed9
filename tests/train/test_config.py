"""TrainConfig: YAML + key=value overrides, typed coercion, unknown keys fail early."""

from __future__ import annotations

import pytest
import yaml

from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.train.config import RECIPES, TrainConfig, field_names, resolve_config, write_config


def test_defaults_validate():
    cfg = resolve_config()
    assert cfg == TrainConfig()


def test_yaml_then_cli_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.0005\nbatch_size: 8\nmilestones: [10, 20]\nhflip: false\n")
    cfg = resolve_config(yaml_path=path, overrides=["batch_size=2", "ema_decay=0.999", "amp=bf16"])
    assert cfg.lr == 5e-4 and cfg.batch_size == 2 and cfg.milestones == [10, 20] and cfg.hflip is False
    assert cfg.ema_decay == 0.999 and cfg.amp == "bf16"
    cfg = resolve_config(overrides=["milestones=[5,7]", "hflip=yes", "lr=1e-3"])
    assert cfg.milestones == [5, 7] and cfg.hflip is True and cfg.lr == 1e-3


def test_recipe_then_override():
    cfg = resolve_config(recipe="nafnet", overrides=["batch_size=2"])
    assert cfg.optimizer == "adamw" and cfg.scheduler == "cosine" and cfg.loss == "psnr" and cfg.beta2 == 0.9
    assert cfg.batch_size == 2
    assert set(RECIPES) == {"mimo-unet", "nafnet"}
    with pytest.raises(UnknownNameError, match="mimo-unet"):
        resolve_config(recipe="nope")


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(DeblurkitError) as err:
        resolve_config(overrides=["learning_rate=1"])
    msg = str(err.value)
    assert "'learning_rate'" in msg and "valid keys:" in msg
    for name in ("lr", "batch_size", "max_steps", "ema_decay"):
        assert name in msg
    path = tmp_path / "bad.yaml"
    path.write_text("lr: 1e-4\nepochs: 3\n")
    with pytest.raises(DeblurkitError, match=r"bad\.yaml: unknown config key\(s\) 'epochs'"):
        resolve_config(yaml_path=path)


@pytest.mark.parametrize(
    ("override", "match"),
    [("batch_size=two", "batch_size"), ("lr=fast", "lr"), ("hflip=maybe", "hflip"), ("batch_size=1.5", "batch_size"),
     ("noequals", "key=value"), ("optimizer=sgd", "adamw"), ("loss=mse", "charbonnier"), ("amp=fp8", "bf16"),
     ("batch_size=0", ">= 1"), ("ema_decay=1.0", "ema_decay"), ("data=paired", "data_root"),
     ("scale_min=0", r"0 < scale_min <= scale_max <= 1"), ("scale_max=1.5", r"scale_min <= scale_max <= 1"),
     ("crop_sizes=[64,127]", "even and >= 16"), ("crop_sizes=[64,128]", r"equal the last of crop_sizes \(128\)"),
     ("batch_sizes=[4]", "need 'crop_sizes'"), ("threads=-1", ">= 0"), ("checkpoint_minutes=-1", ">= 0"),
     ("prefetch_factor=0", ">= 1")],
)
def test_bad_values_are_reported(override, match):
    with pytest.raises(DeblurkitError, match=match):
        resolve_config(overrides=[override])


def test_written_config_round_trips(tmp_path):
    cfg = resolve_config(overrides=["lr=3e-4", "milestones=[4]", "data=gopro", "data_root=/x"])
    write_config(cfg, tmp_path / "config.yaml")
    loaded = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert list(loaded) == field_names()
    assert resolve_config(yaml_path=tmp_path / "config.yaml") == cfg


def test_cli_rejects_unknown_key_before_any_work(tmp_path, capsys):
    from deblurkit.cli import main

    out = tmp_path / "run"
    assert main(["train", f"out_dir={out}", "epochs=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key(s) 'epochs'" in err and "max_steps" in err
    assert not out.exists()  # nothing was created
    assert main(["train", "--print-config", "lr=2e-4", "--recipe", "mimo-unet"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["lr"] == 2e-4 and printed["loss"] == "mimo"


def test_cli_resume_flag_does_not_swallow_an_override(tmp_path, capsys):
    from deblurkit.cli import main

    # `--resume lr=...` must read lr=... as an override (and then fail: there is no run to resume)
    assert main(["train", "--resume", "lr=1e-3", f"out_dir={tmp_path / 'none'}", "data=synth",
                 "source=dead-leaves", "crop_size=32", "progress=false"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err


def test_crop_schedule_keys_are_checked_against_each_other():
    ok = resolve_config(overrides=["crop_sizes=[64,96,128]", "crop_size=128", "batch_sizes=[8,4,2]",
                                   "crop_milestones=[100,200]", "max_steps=300"])
    assert ok.crop_sizes == [64, 96, 128] and ok.batch_sizes == [8, 4, 2]
    for bad, match in ((["crop_milestones=[200,100]"], r"2 increasing steps in \[1, max_steps=300\)"),
                       (["crop_milestones=[100,300]"], "increasing steps"),
                       (["batch_sizes=[8,4]"], "3 values >= 1")):
        with pytest.raises(DeblurkitError, match=match):
            resolve_config(overrides=["crop_sizes=[64,96,128]", "crop_size=128", "max_steps=300", *bad])
