import argparse

import pytest

from deblurkit.app import models_cli as cli
from deblurkit.errors import UnknownNameError
from deblurkit.models.registry import MODELS, list_models, model_spec

REQUIRED = {"mimo-unet", "mimo-unet-plus", "mimo-unet-narrow", "nafnet-gopro-w32", "nafnet-gopro-w64", "nafnet-w16"}


def test_required_names_and_multiples():
    assert REQUIRED <= set(MODELS)
    assert model_spec("mimo-unet").size_multiple == 4
    assert model_spec("nafnet-gopro-w64").size_multiple == 16
    with pytest.raises(UnknownNameError, match="valid: .*nafnet-w16"):
        model_spec("unet")


def test_list_models_counts():
    infos = {i.name: i for i in list_models()}
    assert infos["mimo-unet"].params == 6_807_171 and infos["mimo-unet-plus"].params == 16_107_651
    assert infos["nafnet-w16"].params < 2_000_000 and infos["mimo-unet-narrow"].params < 1_000_000
    assert infos["nafnet-w16"].macs_256 < infos["nafnet-gopro-w32"].macs_256 < infos["nafnet-gopro-w64"].macs_256


def test_models_command_prints_table(capsys):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([])) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out
    assert "6,807,171" in out and "63.73" in out


def test_models_inspect_checkpoint(tmp_path, capsys):
    import json

    import torch

    from deblurkit.models.registry import create_model

    path = tmp_path / "n.pth"
    torch.save({"params": create_model("nafnet-w16").state_dict()}, path)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--inspect", str(path)])) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["name"] == "nafnet-w16" and meta["wrapper_key"] == "params" and meta["params"] == 1_493_939
