import pytest
import torch
import torch.nn.functional as F
from _official import mimo_official_state_dict

from deblurkit.models import final_output, multiscale_outputs
from deblurkit.models.mimo_unet import MIMOUNet, MIMOUNetPlus
from deblurkit.models.registry import count_conv_macs, count_params

TOP_LEVEL_ORDER = ["Encoder", "feat_extract", "Decoder", "Convs", "ConvsOut", "AFFs", "FAM1", "SCM1", "FAM2", "SCM2"]


@pytest.mark.parametrize(("cls", "num_res", "params", "tensors"), [
    (MIMOUNet, 8, 6_807_171, 244),
    (MIMOUNetPlus, 20, 16_107_651, 532),
])
def test_official_state_dict_loads_strictly(cls, num_res, params, tensors):
    model = cls()
    sd = mimo_official_state_dict(num_res)
    assert len(sd) == tensors
    assert sum(v.numel() for v in sd.values()) == params
    model.load_state_dict(sd, strict=True)
    assert count_params(model) == params
    assert len(model.state_dict()) == tensors
    assert list(model.state_dict()) == list(sd)  # same key order as the official registration order
    tops = list(dict.fromkeys(k.split(".")[0] for k in model.state_dict()))
    assert tops == TOP_LEVEL_ORDER


def test_anchor_shapes():
    sd = MIMOUNet().state_dict()
    assert tuple(sd["feat_extract.3.main.0.weight"].shape) == (128, 64, 4, 4)
    assert tuple(sd["SCM1.main.3.main.0.weight"].shape) == (125, 64, 1, 1)
    assert tuple(sd["SCM2.main.3.main.0.weight"].shape) == (61, 32, 1, 1)
    assert tuple(sd["AFFs.0.conv.0.main.0.weight"].shape) == (32, 224, 1, 1)


def test_macs_at_256_match_published_calculation():
    # anchors §1.2 [calc]: 63.7 G (MIMO-UNet), 150.7 G (MIMO-UNet+) conv MACs at 256x256
    assert count_conv_macs(MIMOUNet()) / 1e9 == pytest.approx(63.7, abs=0.05)
    assert count_conv_macs(MIMOUNetPlus()) / 1e9 == pytest.approx(150.7, abs=0.05)


def test_three_residual_outputs():
    torch.manual_seed(0)
    model = MIMOUNet(num_res=1, base_channel=8).eval()
    x = torch.rand(2, 3, 32, 48)
    out = model(x)
    assert [tuple(o.shape) for o in out] == [(2, 3, 8, 12), (2, 3, 16, 24), (2, 3, 32, 48)]
    assert final_output(out) is out[-1] and multiscale_outputs(out) == list(out)
    # zero weights => every output is exactly the (nearest-downscaled) input: the outputs are residual
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    out = model(x)
    x2 = F.interpolate(x, scale_factor=0.5)
    assert torch.equal(out[2], x)
    assert torch.equal(out[1], x2)
    assert torch.equal(out[0], F.interpolate(x2, scale_factor=0.5))


def test_plus_dropout_only_in_training():
    torch.manual_seed(0)
    model = MIMOUNetPlus(num_res=1, base_channel=8)
    x = torch.rand(1, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[2], model(x)[2])
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x)[2], model(x)[2])


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = MIMOUNet(num_res=1, base_channel=8)
    out = model(torch.rand(1, 3, 16, 16))
    sum(o.square().mean() for o in out).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_hyperparameters():
    with pytest.raises(ValueError):
        MIMOUNet(base_channel=10)
