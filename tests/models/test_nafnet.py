import pytest
import torch
import torch.nn.functional as F
from _official import nafnet_official_state_dict

from deblurkit.models.nafnet import LayerNorm2d, LocalAvgPool2d, NAFNet, convert_to_tlc, widen_nafnet
from deblurkit.models.registry import create_model


def test_official_gopro_w32_state_dict_loads_strictly():
    sd = nafnet_official_state_dict(32)
    model = NAFNet(width=32, middle_blk_num=1, enc_blk_nums=(1, 1, 1, 28), dec_blk_nums=(1, 1, 1, 1))
    model.load_state_dict(sd, strict=True)
    assert set(model.state_dict()) == set(sd)
    tops = list(dict.fromkeys(k.split(".")[0] for k in model.state_dict()))
    assert tops == ["intro", "ending", "encoders", "decoders", "middle_blks", "ups", "downs"]


def test_shape_kept_for_odd_sizes_and_grad():
    torch.manual_seed(0)
    model = NAFNet(width=8, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1))
    model.load_state_dict(nafnet_official_state_dict(8, enc=(1, 1), dec=(1, 1)))
    x = torch.rand(2, 3, 37, 21)
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_zero_branches_give_identity():
    model = NAFNet(width=8, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1)).eval()
    with torch.no_grad():
        model.ending.weight.zero_()
        model.ending.bias.zero_()
    x = torch.rand(1, 3, 20, 28)
    assert torch.equal(model(x), x)


def test_layernorm2d_matches_layer_norm_over_channels():
    ln = LayerNorm2d(6)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(2, 6, 5, 7)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias, eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref, atol=1e-5, rtol=1e-5)


def test_local_avg_pool_matches_brute_force():
    x = torch.randn(1, 2, 13, 17, dtype=torch.float64)
    k = 5
    ref = F.avg_pool2d(x, k, stride=1)  # valid windows, (9, 13)
    ref = F.pad(ref, (2, 2, 2, 2), mode="replicate")
    torch.testing.assert_close(LocalAvgPool2d(k)(x), ref)
    # window larger than the map: global mean
    torch.testing.assert_close(LocalAvgPool2d(64)(x), x.mean(dim=(2, 3), keepdim=True).expand_as(x))


def test_tlc_changes_only_large_inputs():
    torch.manual_seed(0)
    model = NAFNet(width=8, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1)).eval()
    sd = nafnet_official_state_dict(8, enc=(1, 1), dec=(1, 1))
    for k in sd:  # make the channel attention and residual branches matter
        if k.endswith("sca.1.weight"):
            sd[k] = sd[k] * 20
        elif k.endswith(("conv1.weight", "conv2.weight")):
            sd[k] = sd[k] * 5
        elif k.endswith(".beta"):
            sd[k] = sd[k] * 10
    model.load_state_dict(sd)
    small, large = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 96, 96)
    large[:, 0, :, :48] += 1.0  # very different colour statistics left and right
    large[:, 2, :, 48:] += 1.0
    with torch.no_grad():
        ref_small, ref_large = model(small), model(large)
        convert_to_tlc(model, train_size=32)  # window 48 px at full resolution
        assert model.encoders[0][0].sca[0].kernel_size == 48
        assert model.middle_blks[0].sca[0].kernel_size == 12
        torch.testing.assert_close(model(small), ref_small)
        assert (model(large) - ref_large).abs().max() > 1e-4
    assert set(model.state_dict()) == set(nafnet_official_state_dict(8, enc=(1, 1), dec=(1, 1)))


def test_registry_variants():
    w16 = create_model("nafnet-w16")
    assert isinstance(w16, NAFNet) and w16.size_multiple == 16 and w16.hparams["width"] == 16
    assert create_model("nafnet-gopro-w32").hparams["enc_blk_nums"] == [1, 1, 1, 28]


def test_mismatched_levels_rejected():
    with pytest.raises(ValueError):
        NAFNet(enc_blk_nums=(1, 1), dec_blk_nums=(1,))


def _random_nafnet(width: int = 4) -> NAFNet:
    torch.manual_seed(0)
    model = NAFNet(width=width, middle_blk_num=1, enc_blk_nums=(1, 2), dec_blk_nums=(1, 1)).eval()
    with torch.no_grad():
        for p in model.parameters():  # beta/gamma too, so every branch counts
            p.normal_(0.0, 0.2)
    return model


@pytest.mark.parametrize("factor", [2, 3])
def test_widen_keeps_the_function(factor):
    model = _random_nafnet()
    wide = widen_nafnet(model, factor, generator=torch.Generator().manual_seed(1))
    assert wide.hparams == {**model.hparams, "width": 4 * factor}
    x = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        ref, out = model(x), wide(x)
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()
    assert not torch.allclose(out, x, atol=1e-2)  # the branches do change the image


def test_widened_copies_diverge_under_training():
    wide = widen_nafnet(_random_nafnet(), 2, generator=torch.Generator().manual_seed(1)).train()
    w = wide.intro.weight
    assert torch.equal(w[:4], w[4:])  # every channel starts as two identical copies ...
    loss = (wide(torch.rand(1, 3, 16, 16)) - 0.5).square().mean()
    loss.backward()
    assert not torch.allclose(w.grad[:4], w.grad[4:])  # ... whose gradients differ


def test_widen_rejects_bad_factor():
    with pytest.raises(ValueError, match="factor"):
        widen_nafnet(_random_nafnet(), 0)
