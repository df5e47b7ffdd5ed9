"""HighlightNet: shapes, copy outside the mask, gradients, checkpoint round trip, loss, restorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.highlights.net import encode_inputs_linear, load_highlight_restorer
from deblurkit.highlights.online import StepInputs
from deblurkit.highlights.train import mulaw_l1_loss
from deblurkit.models.highlight_net import HighlightNet

TINY = {"width": 8, "enc_blk_nums": (1, 1), "middle_blk_num": 1, "dec_blk_nums": (1, 1)}


def _inputs(h: int = 20, w: int = 28, with_ref: bool = True) -> StepInputs:
    rng = np.random.default_rng(0)
    cur = rng.uniform(0.05, 0.9, (h, w, 3)).astype(np.float32)
    clipped = np.zeros((h, w), bool)
    clipped[5:10, 6:14] = True
    cur[clipped] = 1.0
    ref = (cur * 1.1).astype(np.float32) if with_ref else None
    return StepInputs(cur, clipped, ref, np.full((h, w), 0.9, np.float32), np.zeros((h, w), bool))


def test_forward_copies_log_current_outside_mask_any_size():
    torch.manual_seed(0)
    model = HighlightNet(**TINY).eval()
    for p in model.parameters():  # make the residual non-trivial (NAFBlock scales start at zero)
        torch.nn.init.normal_(p, std=0.05)
    x = encode_inputs_linear(_inputs(20, 28))
    assert x.shape == (1, 9, 20, 28)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 20, 28) and torch.isfinite(y).all()
    outside = x[:, 6:7].expand(-1, 3, -1, -1) == 0
    assert torch.equal(y[outside], x[:, 0:3][outside])
    assert (y[~outside] - x[:, 0:3][~outside]).abs().max() > 0
    with pytest.raises(ValueError, match="expected"):
        model(torch.zeros(1, 3, 16, 16))


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = HighlightNet(**TINY)
    x = encode_inputs_linear(_inputs(16, 16)).repeat(2, 1, 1, 1)
    truth = torch.exp(x[:, 0:3]) * (1 + 2 * x[:, 6:7])
    loss = mulaw_l1_loss(model(x), truth, x[:, 6:7])
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():  # zero-initialised block scales: some grads are 0, none missing
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.ending.weight.grad.abs().sum() > 0


def test_loss_is_zero_for_perfect_prediction_and_weights_clipped_pixels():
    truth = torch.full((1, 3, 4, 4), 2.0)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 0, 0] = 1
    assert float(mulaw_l1_loss(truth.log(), truth, mask)) == pytest.approx(0.0, abs=1e-7)
    wrong_in = truth.clone()
    wrong_in[..., 0, 0] = 8.0
    wrong_out = truth.clone()
    wrong_out[..., 1, 1] = 8.0
    assert float(mulaw_l1_loss(wrong_in.log(), truth, mask)) > 5 * float(mulaw_l1_loss(wrong_out.log(), truth, mask))


def test_checkpoint_round_trip_and_restorer(tmp_path):
    from deblurkit.errors import DeblurkitError
    from deblurkit.models.checkpoint import load_model, save_safetensors

    torch.manual_seed(1)
    model = HighlightNet(**TINY)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "hl.safetensors"
    save_safetensors(model, path, name="highlight-net", meta={"training_data": "test"})
    loaded, _ = load_model(path)
    assert isinstance(loaded, HighlightNet) and loaded.hparams == model.hparams
    x = encode_inputs_linear(_inputs())
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x))
    inputs = _inputs()
    out = load_highlight_restorer(path)(inputs)
    assert out.shape == inputs.current.shape
    assert np.array_equal(out[~inputs.clipped], inputs.current[~inputs.clipped])
    assert (out[inputs.clipped] >= 1.0).all()  # clipped values are lower bounds
    single = load_highlight_restorer(path, use_reference=False)(_inputs(with_ref=False))
    assert single.shape == inputs.current.shape
    with pytest.raises(DeblurkitError):
        load_highlight_restorer(tmp_path / "missing.safetensors")


def test_training_end_to_end_on_a_tiny_panorama(tmp_path):
    import cv2

    from deblurkit.highlights import video as hv
    from deblurkit.highlights.camera import CameraConfig
    from deblurkit.highlights.train import HighlightTrainConfig, train_highlight_net
    from deblurkit.models.checkpoint import load_model

    rng = np.random.default_rng(0)
    pano = rng.uniform(0.02, 0.6, (128, 256, 3)).astype(np.float32)
    pano[50:70, ::16] = 20.0
    assert cv2.imwrite(str(tmp_path / "tiny.hdr"), pano[..., ::-1])
    cfg = HighlightTrainConfig(
        hdr_dir=str(tmp_path), panoramas=("tiny",), out_dir=str(tmp_path / "run"), width=8, enc_blk_nums=(1,),
        middle_blk_num=1, dec_blk_nums=(1,), steps=2, batch=2, crop=16, clips=1, frames_per_clip=4,
        video=hv.VideoConfig(height=32, width=48, hfov_deg=70.0, motion_blur=False,
                             camera=CameraConfig(noise_model="none")),
        log_every=1)
    summary = train_highlight_net(cfg)
    assert summary["samples"] > 0 and np.isfinite(summary["final_loss"])
    model, meta = load_model(tmp_path / "run" / "highlight-net.safetensors")
    assert isinstance(model, HighlightNet) and "tiny" in meta["training_data"]
    assert (tmp_path / "run" / "config.json").is_file()


def test_training_resumes_from_a_checkpoint(tmp_path):
    from dataclasses import replace

    import cv2

    from deblurkit.highlights import video as hv
    from deblurkit.highlights.camera import CameraConfig
    from deblurkit.highlights.train import HighlightTrainConfig, train_highlight_net
    from deblurkit.models.checkpoint import load_model

    rng = np.random.default_rng(1)
    pano = rng.uniform(0.02, 0.6, (128, 256, 3)).astype(np.float32)
    pano[50:70, ::16] = 20.0
    assert cv2.imwrite(str(tmp_path / "tiny.hdr"), pano[..., ::-1])
    cfg = HighlightTrainConfig(
        hdr_dir=str(tmp_path), panoramas=("tiny",), out_dir=str(tmp_path / "a"), width=8, enc_blk_nums=(1,),
        middle_blk_num=1, dec_blk_nums=(1,), steps=2, batch=2, crop=16, clips=1, frames_per_clip=5,
        ref_darkest=1.0, save_every=1,
        video=hv.VideoConfig(height=32, width=48, hfov_deg=70.0, motion_blur=False,
                             camera=CameraConfig(noise_model="none")),
        log_every=1)
    train_highlight_net(cfg)
    first, _ = load_model(tmp_path / "a" / "highlight-net.safetensors")
    # lr 0: the resumed run must end exactly where the checkpoint started it.
    train_highlight_net(replace(cfg, out_dir=str(tmp_path / "b"), init=str(tmp_path / "a" / "highlight-net.safetensors"),
                                lr=0.0, steps=1))
    second, _ = load_model(tmp_path / "b" / "highlight-net.safetensors")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_copy_base_starts_from_the_trusted_reference(tmp_path):
    from deblurkit.models.checkpoint import load_model, save_safetensors

    model = HighlightNet(**TINY, residual_from="copy").eval()
    torch.nn.init.zeros_(model.ending.weight)
    torch.nn.init.zeros_(model.ending.bias)  # zero residual: the output is the base alone
    inputs = _inputs()
    conf = np.full(inputs.confidence.shape, 1.0, np.float32)
    conf[:, :10] = 0.0  # untrusted reference on the left
    inputs = StepInputs(inputs.current, inputs.clipped, inputs.reference, conf, inputs.reference_clipped)
    with torch.inference_mode():
        out = model(encode_inputs_linear(inputs))[0].permute(1, 2, 0).numpy()
    log_cur, log_ref = np.log(inputs.current), np.log(inputs.reference)
    trusted = inputs.clipped & (conf > 0)
    np.testing.assert_allclose(out[trusted], log_ref[trusted], atol=1e-5)  # ref 1.1x brighter: taken
    np.testing.assert_allclose(out[~trusted], log_cur[~trusted], atol=1e-5)
    save_safetensors(model, tmp_path / "c.safetensors", name="highlight-net", meta={})
    again, _ = load_model(tmp_path / "c.safetensors")
    assert again.residual_from == "copy"
    with pytest.raises(ValueError, match="residual_from"):
        HighlightNet(**TINY, residual_from="reference")


def test_loss_corrects_overshoots_above_the_peak_only_where_the_truth_is_below():
    truth = torch.tensor([2.0, 500.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2).contiguous()
    mask = torch.ones(1, 1, 1, 2)
    pred_log = torch.full((1, 3, 1, 2), float(np.log(200.0)), requires_grad=True)  # 200 > peak 64 everywhere
    mulaw_l1_loss(pred_log, truth, mask).backward()
    grad = pred_log.grad[0, :, 0]
    assert (grad[:, 0] > 0).all()  # truth 2: pushed down although the prediction is above the peak
    assert (grad[:, 1] == 0).all()  # truth 500: above the peak both count as the peak, as in the metric


def test_copy_trusted_takes_the_reference_where_it_saw_the_pixel():
    from deblurkit.highlights.online import restore_copy

    torch.manual_seed(0)
    model = HighlightNet(**TINY).eval()
    for p in model.parameters():  # a non-trivial residual, so that the network differs from the copy
        torch.nn.init.normal_(p, std=0.2)
    base = _inputs()
    ref_clipped = np.zeros_like(base.clipped)
    ref_clipped[5:10, 10:14] = True  # the reference is clipped too on the right part of the region
    inputs = StepInputs(base.current, base.clipped, base.reference, base.confidence, ref_clipped)
    plain = load_highlight_restorer(model)(inputs)
    hybrid = load_highlight_restorer(model, copy_trusted=True)(inputs)
    seen = inputs.clipped & ~ref_clipped
    np.testing.assert_allclose(hybrid[seen], restore_copy(inputs)[seen], rtol=1e-6)
    assert not np.allclose(plain[seen], hybrid[seen])
    np.testing.assert_array_equal(hybrid[~seen], plain[~seen])  # both-clipped and unclipped: the network's
