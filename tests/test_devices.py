"""deblurkit.devices.resolve_device: the one device check, and the parts that use it say the same thing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from deblurkit.devices import resolve_device
from deblurkit.errors import DeblurkitError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


def _message(call) -> str:
    with pytest.raises(DeblurkitError) as info:
        call()
    msg = str(info.value)
    assert msg and "\n" not in msg, msg
    return msg


def test_cpu_is_accepted_as_string_or_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("cpu:0").type == "cpu"


def test_unknown_name_is_one_line():
    assert "unknown device 'banana'" in _message(lambda: resolve_device("banana"))


def test_meta_holds_no_data():
    assert "'meta' holds no data" in _message(lambda: resolve_device("meta"))


@no_cuda
def test_cuda_without_a_gpu():
    assert _message(lambda: resolve_device("cuda")) == \
        "device 'cuda' requested but no CUDA device is available; use cpu"


def test_out_of_range_index_is_named():
    msg = _message(lambda: resolve_device("cuda:99"))
    assert "'cuda:99'" in msg
    if torch.cuda.is_available():
        assert "device(s) are visible" in msg


def test_importing_devices_does_not_import_torch():
    code = "import sys, deblurkit.devices; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert run.stdout.strip() == "False", run.stderr


@no_cuda
def test_backend_and_training_say_the_same_for_a_missing_gpu(monkeypatch, tmp_path):
    from deblurkit.infer.backends import TorchBackend
    from deblurkit.train.config import TrainConfig
    from deblurkit.train.loop import setup_distributed, train

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    expected = _message(lambda: resolve_device("cuda"))
    assert _message(lambda: TorchBackend(nn.Conv2d(3, 3, 1), device="cuda")) == expected
    assert _message(lambda: setup_distributed("cuda")) == expected
    out = tmp_path / "run"
    assert _message(lambda: train(TrainConfig(device="cuda", out_dir=str(out)))) == expected
    assert not out.exists()  # refused before anything was written


def test_backend_keeps_its_own_device_types():
    from deblurkit.infer.backends import TorchBackend

    assert TorchBackend(nn.Conv2d(3, 3, 1), device="cpu").device == torch.device("cpu")
    for name in ("cuda:0", "xpu", "meta"):
        assert "valid: cpu, cuda, mps" in _message(lambda n=name: TorchBackend(nn.Conv2d(3, 3, 1), device=n))


@pytest.mark.parametrize(("device", "world", "local_rank", "expected"), [
    ("cuda", 1, 1, "cuda:1"),  # plain "cuda" is the process's own GPU
    ("cuda:0", 1, 1, "cuda:0"),  # an explicit GPU in a single process is kept
    ("cuda:0", 2, 1, "cuda:1"),  # under torchrun each process takes cuda:LOCAL_RANK
    ("cpu", 2, 1, "cpu"),
])
def test_training_maps_cuda_to_the_local_rank(monkeypatch, device, world, local_rank, expected):
    import torch.distributed

    from deblurkit.train import loop

    checked: list[str] = []

    def fake_resolve(name):
        checked.append(str(name))
        return torch.device(name)

    monkeypatch.setattr(loop, "resolve_device", fake_resolve)
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: None)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)  # no process group is joined
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("RANK", str(local_rank))
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    info = loop.setup_distributed(device)
    assert str(info.device) == expected
    assert checked[-1] == expected  # the device actually used was checked
    assert not info.initialized_here
