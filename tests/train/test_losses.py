"""Losses: MIMO multi-scale L1 + FFT (against an explicit NumPy reference), PSNR, Charbonnier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deblurkit.train.losses import (
    charbonnier_loss,
    compute_loss,
    fft_l1,
    mimo_loss,
    psnr_loss,
    target_pyramid,
)


def test_fft_l1_matches_numpy_full_complex_fft(torch_gen):
    a = torch.rand(2, 3, 8, 12, generator=torch_gen)
    b = torch.rand(2, 3, 8, 12, generator=torch_gen)
    fa, fb = np.fft.fft2(a.double().numpy()), np.fft.fft2(b.double().numpy())
    ref = np.mean(np.abs(np.stack([fa.real - fb.real, fa.imag - fb.imag], axis=-1)))
    assert float(fft_l1(a, b)) == pytest.approx(ref, rel=1e-5)


def test_mimo_loss_is_multiscale_l1_plus_tenth_fft(torch_gen):
    gt = torch.rand(1, 3, 16, 16, generator=torch_gen)
    outs = [torch.rand(1, 3, s, s, generator=torch_gen) for s in (4, 8, 16)]
    pyr = [F.interpolate(F.interpolate(gt, scale_factor=0.5, mode="bilinear"), scale_factor=0.5, mode="bilinear"),
           F.interpolate(gt, scale_factor=0.5, mode="bilinear"), gt]
    for p, q in zip(target_pyramid(gt, 3), pyr, strict=True):
        torch.testing.assert_close(p, q)
    content = sum(F.l1_loss(o, t) for o, t in zip(outs, pyr))
    freq = sum(fft_l1(o, t) for o, t in zip(outs, pyr))
    assert float(mimo_loss(outs, gt)) == pytest.approx(float(content + 0.1 * freq), rel=1e-6)
    assert float(mimo_loss(pyr, gt)) == pytest.approx(0.0, abs=1e-7)
    assert float(compute_loss("mimo", outs, gt, fft_weight=0.0)) == pytest.approx(float(content), rel=1e-6)


def test_psnr_and_charbonnier(torch_gen):
    gt = torch.rand(2, 3, 8, 8, generator=torch_gen)
    out = gt + 0.1
    assert float(psnr_loss(out, gt)) == pytest.approx(-20.0, abs=1e-3)  # MSE 0.01 -> PSNR 20 dB
    assert float(charbonnier_loss(out, gt, eps=1e-3)) == pytest.approx(float(np.sqrt(0.01 + 1e-6)), rel=1e-5)
    assert float(compute_loss("l1", [out], gt)) == pytest.approx(0.1, rel=1e-5)
