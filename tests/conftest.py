"""Shared test settings: CPU only, small thread count, seeded generators."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def torch_gen():
    import torch

    return torch.Generator().manual_seed(0)
