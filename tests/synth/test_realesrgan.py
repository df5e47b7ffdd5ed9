"""Real-ESRGAN second-order degradation: kernel families and the whole chain."""

from __future__ import annotations

import json
import math

import pytest
import torch

from deblurkit.synth import realesrgan


@pytest.mark.parametrize("kind", ["gaussian", "generalized", "plateau"])
def test_anisotropic_kernels_sum_to_one_and_follow_their_axes(kind):
    k = realesrgan.anisotropic_kernel(21, 4.0, 1.0, 0.0, kind, beta=1.5)
    assert abs(float(k.sum()) - 1) < 1e-6 and float(k.min()) >= 0
    assert float(k[10, 15]) > float(k[15, 10])  # wider along x than along y
    rotated = realesrgan.anisotropic_kernel(21, 4.0, 1.0, math.pi / 2, kind, beta=1.5)
    assert torch.allclose(rotated, k.T, atol=1e-6)


def test_sinc_kernel_is_a_normalised_low_pass():
    k = realesrgan.sinc_kernel(21, math.pi / 3)
    assert abs(float(k.sum()) - 1) < 1e-6
    assert torch.allclose(k, k.flip(0), atol=1e-7) and torch.allclose(k, k.T, atol=1e-7)
    spectrum = torch.fft.fft2(k, s=(64, 64)).abs()
    assert float(spectrum[0, 0]) == pytest.approx(1.0, abs=1e-5)
    assert float(spectrum[0, 28]) < 0.2  # high frequencies (beyond the cutoff) removed


def test_degradation_keeps_size_records_params_and_is_deterministic():
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    a, pa = realesrgan.degrade_realesrgan_srgb(x, torch.Generator().manual_seed(1))
    b, pb = realesrgan.degrade_realesrgan_srgb(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and pa == pb
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.allclose(a * 255, (a * 255).round(), atol=1e-4)  # 8-bit values, like JPEG output
    json.dumps(pa)
    assert {"stage1", "stage2", "final"} <= set(pa[0])
    assert 30 <= pa[0]["stage1"]["jpeg_quality"] <= 95
