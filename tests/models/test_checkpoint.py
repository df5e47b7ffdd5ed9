import pickle
from pathlib import Path

import pytest
import torch
from _official import mimo_official_state_dict, nafnet_official_state_dict

from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.models import final_output
from deblurkit.models.checkpoint import load_model, save_safetensors
from deblurkit.models.mimo_unet import MIMOUNet, MIMOUNetPlus
from deblurkit.models.nafnet import NAFNet
from deblurkit.models.registry import create_model


def _out(model, x):
    with torch.no_grad():
        return final_output(model.eval()(x))


def test_official_mimo_pkl_detected_and_loaded(tmp_path):
    sd = mimo_official_state_dict(8)
    path = tmp_path / "MIMO-UNet.pkl"
    # the release files were written by torch 1.4, before the zip format
    torch.save({"model": sd}, path, _use_new_zipfile_serialization=False)
    model, meta = load_model(path)
    assert isinstance(model, MIMOUNet) and not isinstance(model, MIMOUNetPlus)
    assert meta["name"] == "mimo-unet" and meta["hparams"] == {"num_res": 8, "base_channel": 32}
    assert meta["wrapper_key"] == "model" and meta["size_multiple"] == 4
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())


def test_mimo_plus_detected_from_resblock_count(tmp_path):
    path = tmp_path / "MIMO-UNetPlus.pkl"
    torch.save({"model": mimo_official_state_dict(20), "epoch": 3000}, path)
    model, meta = load_model(path)
    assert type(model) is MIMOUNetPlus and meta["name"] == "mimo-unet-plus"


def test_narrow_mimo_with_module_prefix(tmp_path):
    sd = mimo_official_state_dict(2, c=16)
    path = tmp_path / "narrow.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)  # bare DataParallel state dict
    _, meta = load_model(path)
    assert meta["hparams"] == {"num_res": 2, "base_channel": 16} and meta["name"] == "mimo-unet-custom"


def test_basicsr_nafnet_prefers_params_ema(tmp_path):
    sd = nafnet_official_state_dict(8, enc=(1, 2), middle=3, dec=(2, 1), seed=1)
    other = nafnet_official_state_dict(8, enc=(1, 2), middle=3, dec=(2, 1), seed=2)
    path = tmp_path / "net_g_latest.pth"
    torch.save({"params": other, "params_ema": sd}, path)
    model, meta = load_model(path)
    assert isinstance(model, NAFNet)
    assert meta["hparams"]["enc_blk_nums"] == [1, 2] and meta["hparams"]["dec_blk_nums"] == [2, 1]
    assert meta["hparams"]["middle_blk_num"] == 3 and meta["hparams"]["width"] == 8
    assert meta["size_multiple"] == 4 and meta["wrapper_key"] == "params_ema"
    assert torch.equal(model.state_dict()["intro.weight"], sd["intro.weight"])


def test_official_nafnet_gopro_named(tmp_path):
    path = tmp_path / "NAFNet-GoPro-width32.pth"
    torch.save({"params": nafnet_official_state_dict(32)}, path)
    _, meta = load_model(path)
    assert meta["name"] == "nafnet-gopro-w32" and meta["tlc"]


@pytest.mark.parametrize("name", ["mimo-unet-narrow", "nafnet-w16"])
def test_safetensors_round_trip_identical_outputs(tmp_path, name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():
        for p in model.parameters():  # non-trivial weights everywhere (NAFNet beta/gamma start at zero)
            p.add_(torch.randn_like(p) * 0.02)
    path = tmp_path / f"{name}.safetensors"
    save_safetensors(model, path, name=f"{name}-test", meta={"training_data": "synth realistic, 1000 pairs", "steps": 5})
    loaded, meta = load_model(path)
    assert meta["name"] == f"{name}-test" and meta["training_data"] == "synth realistic, 1000 pairs"
    assert meta["extra"] == {"steps": 5} and meta["hparams"] == model.hparams
    x = torch.rand(1, 3, 48, 64)
    assert torch.equal(_out(model, x), _out(loaded, x))


def test_registry_name_gives_random_init():
    model, meta = load_model("nafnet-gopro-w32")  # no weights bundled for this name
    assert isinstance(model, NAFNet) and meta["weights"] == "random-init"


def test_registry_name_uses_bundled_weights():
    """``nafnet-w16`` ships trained weights (the training-data study's `realistic` run)."""
    from deblurkit.models.checkpoint import bundled_weights_dir

    model, meta = load_model("nafnet-w16")
    assert isinstance(model, NAFNet) and meta["weights"] != "random-init"
    ref, _ = load_model(str(bundled_weights_dir() / "nafnet-w16.safetensors"))
    for (k, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_unknown_name():
    with pytest.raises(UnknownNameError, match="mimo-unet"):
        load_model("mimo-unet-xxl")


class _Payload:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_unsafe_pickle_refused_and_not_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"model": _Payload(marker)}, fh)
    with pytest.raises(DeblurkitError, match="refused") as info:
        load_model(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    torch.save({"model": {"w": torch.zeros(1)}, "cfg": _Payload(marker)}, path)  # zip format, same refusal
    with pytest.raises(DeblurkitError, match="refused"):
        load_model(path)
    assert not marker.exists()


def test_truncated_files(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"model": mimo_official_state_dict(1, c=8)}, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DeblurkitError, match="truncated") as info:
        load_model(bad)
    assert "\n" not in str(info.value)
    st = tmp_path / "m.safetensors"
    save_safetensors(create_model("nafnet-w16"), st, name="x", meta={})
    st.write_bytes(st.read_bytes()[:1000])
    with pytest.raises(DeblurkitError, match="truncated"):
        load_model(st)


def test_unknown_architecture(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(DeblurkitError, match="unknown architecture: expected MIMO-UNet keys") as info:
        load_model(path)
    assert "intro.weight" in str(info.value) and "\n" not in str(info.value)


def test_mismatched_shapes_and_missing_keys(tmp_path):
    sd = mimo_official_state_dict(1, c=8)
    sd["Encoder.1.layers.0.main.0.main.0.weight"] = torch.zeros(16, 16, 5, 5)
    path = tmp_path / "bad_shape.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(DeblurkitError, match=r"Encoder\.1\.layers\.0\.main\.0\.main\.0\.weight is \(16, 16, 5, 5\), "
                                             r"expected \(16, 16, 3, 3\)"):
        load_model(path)
    sd = mimo_official_state_dict(1, c=8)
    del sd["FAM2.merge.main.0.bias"]
    torch.save({"model": sd}, path)
    with pytest.raises(DeblurkitError, match=r"1 missing \(e\.g\. FAM2\.merge\.main\.0\.bias\)"):
        load_model(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DeblurkitError, match="no such checkpoint"):
        load_model(tmp_path / "nope.pth")
    with pytest.raises(DeblurkitError, match="folder"):
        load_model(tmp_path)


def test_save_unwraps_ddp_style_wrappers(tmp_path):
    inner = create_model("nafnet-w16")
    wrapper = torch.nn.Module()
    wrapper.module = inner
    save_safetensors(wrapper, tmp_path / "w.safetensors", name="nafnet-w16", meta={})
    model, meta = load_model(tmp_path / "w.safetensors")
    assert meta["name"] == "nafnet-w16" and meta["training_data"] == "unspecified"
    assert set(model.state_dict()) == set(inner.state_dict())
