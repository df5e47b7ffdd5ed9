"""DDP with 2 CPU processes (gloo): replicas stay identical and match a single-process run."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from train_testlib import TinyMultiScaleNet, write_pairs

from deblurkit.train import resolve_config, train


def _config(out: Path, data: Path, batch_size: int):
    return resolve_config(overrides={
        "out_dir": str(out), "data": "paired", "data_root": str(data), "crop_size": "32", "val_crop": "0",
        "batch_size": str(batch_size), "max_steps": "4", "checkpoint_every": "2", "val_every": "2",
        "progress": "false", "tensorboard": "false", "loss": "mimo", "lr": "1e-3", "seed": "3",
    })


def _worker(rank: int, world: int, port: int, out: str, data: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = train(_config(Path(out), Path(data), batch_size=1), model_factory=functools.partial(TinyMultiScaleNet, width=8))
    torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes_keep_replicas_identical(tmp_path):
    data = write_pairs(tmp_path / "pairs", 5, size=40)
    out = tmp_path / "ddp"
    mp.start_processes(_worker, args=(2, _free_port(), str(out), str(data)), nprocs=2, join=True,
                       start_method="spawn")
    sd0 = torch.load(out / "rank0.pt", weights_only=True)
    sd1 = torch.load(out / "rank1.pt", weights_only=True)
    for name, value in sd0.items():
        assert torch.equal(value, sd1[name]), name
    # only rank 0 wrote the run's files
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "metrics.csv").is_file()

    # 2 processes x batch 1 == 1 process x batch 2 (DDP averages the per-rank mean gradients)
    torch.set_num_threads(1)
    single = train(_config(tmp_path / "single", data, batch_size=2), model_factory=functools.partial(TinyMultiScaleNet, width=8))
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(value, sd0[name], rtol=1e-4, atol=1e-6)
    torch.manual_seed(3)  # the run's seed: the same initial weights as the run started from
    initial = TinyMultiScaleNet(width=8).state_dict()
    assert not torch.equal(initial["tail.weight"], sd0["tail.weight"])  # training did move the weights
