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
     ("batch_size=0", r"'batch_size' must be in \[1, inf\)"), ("ema_decay=1.0", "ema_decay"), ("data=paired", "data_root"),
     ("scale_min=0", r"'scale_min' must be in \(0, 1\]"), ("scale_max=1.5", r"'scale_max' must be in"), ("scale_min=0.8 scale_max=0.5", "scale_min <= scale_max"),
     ("crop_sizes=[64,127]", "even and >= 16"), ("crop_sizes=[64,128]", r"equal the last of crop_sizes \(128\)"),
     ("batch_sizes=[4]", "need 'crop_sizes'"), ("threads=-1", r"'threads' must be in \[0, 1024\]"), ("checkpoint_minutes=-1", r"'checkpoint_minutes' must be in \[0"),
     ("prefetch_factor=0", r"'prefetch_factor' must be in \[1, inf\)")],
)
def test_bad_values_are_reported(override, match):
    with pytest.raises(DeblurkitError, match=match):
        resolve_config(overrides=override.split())


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


def test_every_numeric_key_has_a_valid_range():
    import typing

    from deblurkit.train.config import NUMERIC_RANGES

    hints = typing.get_type_hints(TrainConfig)
    numeric = {name for name in field_names() if hints[name] in (int, float)}
    assert numeric == set(NUMERIC_RANGES)


@pytest.mark.parametrize("name", sorted(__import__("deblurkit.train.config", fromlist=["x"]).NUMERIC_RANGES))
def test_out_of_range_values_are_one_line_with_the_range(name):
    import math
    import typing

    from deblurkit.train.config import NUMERIC_RANGES

    low, high, low_in, high_in = NUMERIC_RANGES[name]
    is_float = typing.get_type_hints(TrainConfig)[name] is float
    bad = [low - 1 if low_in else low]
    if math.isfinite(high):
        bad.append(high if not high_in else (high + 1 if not is_float else high * 2 + 1))
    if is_float:
        bad += [float("nan"), float("inf"), float("-inf")]
    for value in bad:
        text = repr(value) if not is_float else str(value)
        with pytest.raises(DeblurkitError) as err:
            resolve_config(overrides=[f"{name}={text}"])
        msg = str(err.value)
        assert name in msg and "must be in" in msg and "\n" not in msg, (name, value, msg)


@pytest.mark.parametrize(("override", "match"), [
    ("lr=-1", r"'lr' must be in \[0, 1\]"), ("lr=nan", "'lr'"), ("beta1=1.5", r"'beta1' must be in \[0, 1\)"),
    ("weight_decay=-1", "'weight_decay'"), ("num_workers=-1", "'num_workers'"), ("val_crop=-8", "'val_crop'"),
    ("val_crop=4", "0 \\(full images\\) or >= 8"), ("gamma=-2", "'gamma'"), ("fft_weight=-1", "'fft_weight'"),
    ("val_count=-3", "'val_count'"), ("val_every=-1", "'val_every'"), ("lr=1e-3", None), ("lr=0", None),
    ("min_lr=1", None), ("scheduler=cosine min_lr=1", "min_lr"),
    ("milestones=[5,3]", "increasing"), ("milestones=[0]", "milestones"), ("device=gpu", "device"),
    ("preset=nope", "realistic"), ("out_dir=", "out_dir"),
])
def test_values_from_the_field_report(override, match):
    if match is None:  # valid
        resolve_config(overrides=override.split())
        return
    with pytest.raises(DeblurkitError, match=match):
        resolve_config(overrides=override.split())


def test_unwritable_out_dir_is_one_line_before_training(tmp_path, capsys):
    from deblurkit.cli import main

    (tmp_path / "file").write_text("x")
    assert main(["train", f"out_dir={tmp_path / 'file' / 'run'}", "data=synth", "source=dead-leaves",
                 "crop_size=32", "progress=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out_dir" in err[0] and "a parent of it is a file" in err[0]
def test_crop_schedule_keys_are_checked_against_each_other():
    ok = resolve_config(overrides=["crop_sizes=[64,96,128]", "crop_size=128", "batch_sizes=[8,4,2]",
                                   "crop_milestones=[100,200]", "max_steps=300"])
    assert ok.crop_sizes == [64, 96, 128] and ok.batch_sizes == [8, 4, 2]
    for bad, match in ((["crop_milestones=[200,100]"], r"2 increasing steps in \[1, max_steps=300\)"),
                       (["crop_milestones=[100,300]"], "increasing steps"),
                       (["batch_sizes=[8,4]"], "3 values >= 1")):
        with pytest.raises(DeblurkitError, match=match):
            resolve_config(overrides=["crop_sizes=[64,96,128]", "crop_size=128", "max_steps=300", *bad])
