"""Shared test settings: CPU only, small thread count, seeded generators."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Intra-op threads busy-wait; on a shared 2-core machine one thread is many times faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def torch_gen():
    import torch

    return torch.Generator().manual_seed(0)
