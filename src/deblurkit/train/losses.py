"""Training losses on float32 ``(B, C, H, W)`` tensors (sRGB, [0, 1]).

- :func:`mimo_loss`: MIMO-UNet's multi-scale content L1 plus ``fft_weight`` × multi-scale
  frequency L1 (Cho et al., ICCV 2021). The ground-truth pyramid is bilinear (1/2, 1/4); the FFT
  term is the L1 between ``torch.view_as_real(torch.fft.fft2(x))`` of output and target (real and
  imaginary parts, unnormalised, mean over elements) — the modern equivalent of the original
  ``torch.rfft(x, 2, onesided=False)``.
- :func:`psnr_loss`: NAFNet's ``-PSNR`` loss, ``10 log10(mean MSE per image + 1e-8)`` averaged.
- :func:`charbonnier_loss`: ``mean(sqrt((x - y)^2 + eps^2))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def target_pyramid(target: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``[target↓2^(levels-1), ..., target↓2, target]`` with bilinear downscaling (coarsest first)."""
    pyramid = [target]
    for _ in range(levels - 1):
        pyramid.insert(0, F.interpolate(pyramid[0], scale_factor=0.5, mode="bilinear"))
    return pyramid


def fft_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the full complex 2-D FFTs (real and imaginary parts stacked), mean over elements."""
    return F.l1_loss(torch.view_as_real(torch.fft.fft2(output.float())),
                     torch.view_as_real(torch.fft.fft2(target.float())))


def mimo_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor, *, fft_weight: float = 0.1) -> torch.Tensor:
    """MIMO-UNet loss over a list of outputs at 1/2^(n-1), ..., 1/2, 1 scale (coarsest first).

    Args:
        outputs: n tensors ``(B, C, H/2^k, W/2^k)``; a single full-size output also works.
        target: ``(B, C, H, W)`` ground truth.
        fft_weight: weight of the frequency term (0.1 in the paper).

    Returns:
        Scalar ``Σ_k L1(out_k, gt_k) + fft_weight · Σ_k L1(FFT(out_k), FFT(gt_k))``.
    """
    outputs = list(outputs)
    pyramid = target_pyramid(target, len(outputs))
    content = sum(F.l1_loss(o.float(), t) for o, t in zip(outputs, pyramid, strict=True))
    freq = sum(fft_l1(o, t) for o, t in zip(outputs, pyramid, strict=True))
    return content + fft_weight * freq


def psnr_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative PSNR (data range 1) averaged over the batch, as in NAFNet's ``PSNRLoss``."""
    mse = ((output.float() - target) ** 2).mean(dim=(1, 2, 3))
    return (10.0 * torch.log10(mse + 1e-8)).mean()


def charbonnier_loss(output: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier (smooth L1) loss ``mean(sqrt((x - y)^2 + eps^2))``."""
    return torch.sqrt((output.float() - target) ** 2 + eps * eps).mean()


def compute_loss(name: str, outputs: list[torch.Tensor], target: torch.Tensor, *,
                 fft_weight: float = 0.1, charbonnier_eps: float = 1e-3) -> torch.Tensor:
    """Dispatch by config name; ``outputs`` is the model's list of outputs (coarsest first).

    Only ``mimo`` uses the coarser outputs; the others score the last (full-size) one.
    """
    if name == "mimo":
        return mimo_loss(outputs, target, fft_weight=fft_weight)
    final = outputs[-1]
    if name == "l1":
        return F.l1_loss(final.float(), target)
    if name == "psnr":
        return psnr_loss(final, target)
    if name == "charbonnier":
        return charbonnier_loss(final, target, eps=charbonnier_eps)
    from deblurkit.errors import UnknownNameError
    from deblurkit.train.config import LOSSES

    raise UnknownNameError("loss", name, LOSSES)
