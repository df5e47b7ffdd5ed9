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


@pytest.fixture(scope="module")
def camera_shake():
    """``(sharp, blurry, kernel)``: the 256-px camera photo in dim linear light (no deconvolution of
    it leaves [0, 1]), blurred by a 15-px shake (21-px window) with noise 0.002, float32."""
    import cv2
    from scipy.ndimage import convolve
    from skimage import data

    from deblurkit.synth.trajectory import random_shake_kernel

    sharp = cv2.resize(data.camera(), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    sharp = 0.2 + 0.4 * sharp**2.2
    rng = np.random.default_rng(3)
    kernel = random_shake_kernel(21, 15.0, rng)
    blur = convolve(sharp, kernel, mode="reflect") + rng.normal(0, 0.002, sharp.shape)
    return sharp.astype(np.float32), blur.astype(np.float32), kernel
