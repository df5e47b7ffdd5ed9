"""Every learnable parameter of every registered architecture receives a gradient."""

from __future__ import annotations

import pytest
import torch

from deblurkit.models.registry import ARCHITECTURES, build_architecture

#: A small instance of each architecture, and its input channels.
SMALL: dict[str, tuple[dict, int]] = {
    "mimo-unet": ({"num_res": 1, "base_channel": 8}, 3),
    "mimo-unet-plus": ({"num_res": 1, "base_channel": 8}, 3),
    "nafnet": ({"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}, 3),
    "kernel-deconv-net": ({"width": 8, "enc_blk_nums": [1], "middle_blk_num": 1, "dec_blk_nums": [1]}, 12),
}


def test_every_architecture_has_a_small_instance_here():
    assert set(SMALL) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_parameter_gets_a_gradient(arch, torch_gen):
    hparams, channels = SMALL[arch]
    model = build_architecture(arch, hparams).train()
    with torch.no_grad():  # zero-initialised scales (NAFNet's beta/gamma) would block the gradient behind them
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch_gen))
    x = torch.rand(2, channels, 32, 32, generator=torch_gen)
    out = model(x)
    outs = out if isinstance(out, (list, tuple)) else [out]
    loss = sum((o * torch.rand(o.shape, generator=torch_gen)).sum() for o in outs)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
