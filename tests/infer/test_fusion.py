import pytest
import torch
import torch.nn.functional as F

from deblurkit.infer.fusion import (
    POINTWISE_NORM_MAX_CHANNELS,
    ChannelNormPointwise,
    FusedNAFBlock,
    fuse_for_inference,
)
from deblurkit.models.registry import create_model


def _perturbed(name):
    """Random weights with every affine/scale parameter away from its init (1 or 0)."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(("beta", "gamma", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")):
                p.normal_(0.5, 0.3)
    return model


@pytest.mark.parametrize("name", ["nafnet-w16", "mimo-unet-narrow", "mimo-unet-plus"])
def test_fused_copy_computes_the_same_function(name):
    model = _perturbed(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_for_inference(model)
    x = torch.rand(2, 3, 48, 80)
    with torch.no_grad():
        ref, out = model(x), fused(x)
    ref, out = (r[-1] if isinstance(r, (list, tuple)) else r for r in (ref, out))
    assert torch.allclose(out, ref, atol=2e-5), float((out - ref).abs().max())
    # the original is untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_every_nafnet_block_is_rewritten_and_keeps_model_attributes():
    model = _perturbed("nafnet-w16")
    fused = fuse_for_inference(model)
    n_blocks = sum(type(m).__name__ == "NAFBlock" for m in model.modules())
    assert n_blocks > 0
    assert sum(isinstance(m, FusedNAFBlock) for m in fused.modules()) == n_blocks
    assert not any(type(m).__name__ == "NAFBlock" for m in fused.modules())
    assert fused.size_multiple == model.size_multiple and fused.hparams == model.hparams


@pytest.mark.parametrize("channels", [3, 16, 32])
def test_pointwise_channel_norm_is_a_layer_norm_over_channels(channels):
    torch.manual_seed(channels)
    # a large common offset and a small spread: the case where a one-pass variance would fail
    x = torch.randn(2, channels, 9, 13) * 0.05 + 3.0
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (channels,), eps=1e-6).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = ChannelNormPointwise(channels, 1e-6)(x)
    assert torch.allclose(out, ref, atol=1e-4), float((out - ref).abs().max())


def test_exported_nafnet_graph_uses_fused_layer_norms_only_in_wide_blocks_and_no_channel_slices():
    import onnx

    from deblurkit.infer.backends import export_onnx_bytes

    model = _perturbed("nafnet-w16")
    graph = onnx.load_from_string(export_onnx_bytes(model)).graph
    ops = [n.op_type for n in graph.node]
    wide = sum(type(m).__name__ == "NAFBlock" and m.conv1.in_channels > POINTWISE_NORM_MAX_CHANNELS
               for m in model.modules())
    assert wide > 0
    assert ops.count("LayerNormalization") == 2 * wide
    assert not set(ops) & {"Slice", "Split", "ReduceMean"}


def test_exported_graph_carries_symbolic_spatial_sizes():
    """ONNX Runtime keeps elementwise products in its blocked layout only with these annotations."""
    import onnx

    from deblurkit.infer.backends import export_onnx_bytes

    graph = onnx.load_from_string(export_onnx_bytes(_perturbed("nafnet-w16"))).graph
    shapes = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.value_info]
    full_res = [s for s in shapes if len(s) == 4 and s[2:] == ["height", "width"]]
    assert len(full_res) > 20  # the first level's tensors, before any downsampling
    assert all(len(s) != 4 or all(d for d in s) for s in shapes)  # no unknown dimension left


def test_exported_mimo_unet_graph_has_no_feature_concatenation():
    import onnx

    from deblurkit.infer.backends import export_onnx_bytes

    graph = onnx.load_from_string(export_onnx_bytes(_perturbed("mimo-unet-narrow"))).graph
    # only the two shallow modules (SCM) concatenate, with the 3-channel downscaled input
    assert sum(n.op_type == "Concat" for n in graph.node) == 2


def test_training_mode_mimo_unet_plus_is_refused():
    model = create_model("mimo-unet-plus").train()
    with pytest.raises(ValueError, match="eval mode"):
        fuse_for_inference(model)
