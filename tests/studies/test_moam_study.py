"""The MoAM study's training: a start from a trained backbone, and a killed run resumed exactly."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from deblurkit.errors import DeblurkitError
from deblurkit.models.registry import create_model
from studies import moam_study

VARIANTS = ["moam-nafnet-w16", "moam-nafnet-w16-none"]


def _args(tmp_path, **kw) -> argparse.Namespace:
    base = {"steps": 2, "batch": 1, "crop": 32, "lr": 1e-3, "seed": 0, "photo_side": 64, "init": "scratch",
            "new_lr_mult": 1.0, "checkpoint_every": 1, "log_every": 10, "eval_only": False, "ckpt_dir": tmp_path,
            "map_norm": False, "expert_init_std": 0.0}
    return argparse.Namespace(**{**base, **kw})


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((64, 64, 3), dtype=np.float32) for _ in range(2)]


@pytest.mark.parametrize("name", moam_study.VARIANTS)
def test_a_variant_started_from_a_backbone_computes_the_backbone(name):
    torch.manual_seed(1)
    backbone = create_model("nafnet-w16").eval()
    with torch.no_grad():  # non-zero layer scales, so that every block does something
        for n, p in backbone.named_parameters():
            if n.endswith(("beta", "gamma")):
                p.copy_(0.1 * torch.randn(p.shape))
    model = create_model(name).eval()
    moam_study.start_from_backbone(model, backbone.state_dict())
    x, ref = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x, ref), backbone(x), atol=1e-6)


def test_a_backbone_of_another_shape_is_refused():
    other = create_model("nafnet-w16").state_dict()
    other["intro.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(ValueError, match="intro.weight"):
        moam_study.start_from_backbone(create_model("moam-nafnet-w16"), other)


def test_a_killed_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    photos, ref_model = _photos(), torch.nn.Identity()
    straight, step, _ = moam_study.train_variants(VARIANTS, photos, ref_model, _args(tmp_path / "a"))
    assert step == 2

    batch = moam_study.training_batch

    def killed_at_step_1(photos, step, args):
        if step == 1:
            raise KeyboardInterrupt
        return batch(photos, step, args)

    monkeypatch.setattr(moam_study, "training_batch", killed_at_step_1)
    with pytest.raises(KeyboardInterrupt):
        moam_study.train_variants(VARIANTS, photos, ref_model, _args(tmp_path / "b"))
    monkeypatch.setattr(moam_study, "training_batch", batch)
    resumed, step, _ = moam_study.train_variants(VARIANTS, photos, ref_model, _args(tmp_path / "b"))
    assert step == 2
    for name in VARIANTS:
        a, b = straight[name].state_dict(), resumed[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # the moved weights differ between the variants' shared layers: each was trained, not copied
    assert not torch.equal(straight[VARIANTS[0]].state_dict()["intro.weight"],
                           straight[VARIANTS[1]].state_dict()["intro.weight"])


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    photos = _photos()
    moam_study.train_variants(VARIANTS, photos, torch.nn.Identity(), _args(tmp_path, steps=1))
    with pytest.raises(DeblurkitError, match="another run"):
        moam_study.train_variants(VARIANTS, photos, torch.nn.Identity(), _args(tmp_path, steps=1, lr=5e-4))
    with pytest.raises(DeblurkitError, match="no checkpoint"):
        moam_study.train_variants(VARIANTS, photos, torch.nn.Identity(), _args(tmp_path / "none", eval_only=True))


def test_layers_the_backbone_lacks_learn_at_the_multiplied_rate():
    model = create_model("moam-nafnet-w16")
    backbone = create_model("nafnet-w16").state_dict()
    copied, new = moam_study.param_groups(model, backbone, 1e-3, 10.0)
    assert copied["lr"] == 1e-3 and new["lr"] == 1e-2
    assert sum(p.numel() for p in copied["params"]) == sum(v.numel() for v in backbone.values()
                                                           if v.dtype.is_floating_point)
    assert len(moam_study.param_groups(model, None, 1e-3, 10.0)) == 1
    assert moam_study.cosine_factor(0, 100) == 1.0 and abs(moam_study.cosine_factor(100, 100) - 0.05) < 1e-12


def test_cold_start_options_reach_the_modulated_variants_only_and_key_the_checkpoint(tmp_path):
    from studies.moam_study import model_options, run_key

    args = _args(tmp_path, map_norm=True, expert_init_std=0.01)
    assert model_options("moam-nafnet-w16-none", args) == {}
    assert model_options("moam-nafnet-w16", args) == {"map_norm": True, "expert_init_std": 0.01}
    assert run_key(args) != run_key(_args(tmp_path))  # a remedied run never resumes a plain one
