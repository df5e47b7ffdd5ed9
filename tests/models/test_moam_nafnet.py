"""MoAM-NAFNet: shapes, gradients, identity at init, routing, equal-parameter ablation variants."""

from __future__ import annotations

import pytest
import torch

from deblurkit.models.moam_nafnet import MixtureOfModulators, MoAMNAFNet
from deblurkit.models.registry import count_params, create_model

SMALL = {"width": 8, "enc_blk_nums": (1, 1), "dec_blk_nums": (1, 1), "map_dim": 8, "expert_hidden": 8,
         "router_hidden": 8, "window": 4}


def _perturb_zero_init(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if (name.endswith(("beta", "gamma")) or ".experts." in name) and not p.any():
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("modulation", ["moam", "single", "none"])
def test_shape_kept_and_every_parameter_gets_a_gradient(modulation):
    torch.manual_seed(0)
    model = MoAMNAFNet(modulation=modulation, **SMALL)
    _perturb_zero_init(model)  # zero-initialised layers would block the gradient of the layers before them
    x = torch.rand(2, 3, 37, 50)
    y = model(x, torch.rand_like(x))
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_untrained_modulation_is_identity_and_reference_matters_after():
    torch.manual_seed(0)
    model = MoAMNAFNet(**SMALL).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, x), model(x, torch.rand_like(x)))  # experts start at zero
        _perturb_zero_init(model)
        assert not torch.allclose(model(x, x), model(x, torch.rand_like(x)))
        assert torch.equal(model(x), model(x, x))  # no reference: the input is its own


def test_router_weights_are_a_distribution_per_block():
    torch.manual_seed(0)
    model = MoAMNAFNet(**SMALL)
    x = torch.rand(2, 3, 32, 32)
    _, routing = model(x, x, return_routing=True)
    assert len(routing) == 1 + 1 + 1 + 2  # encoder blocks, middle, decoder blocks
    for w in routing:
        assert w.shape == (2, 3) and torch.allclose(w.sum(dim=1), torch.ones(2))
    mod = MixtureOfModulators(8, 4, experts=1)
    assert mod.router is None
    _, w = mod(torch.rand(1, 4, 8, 8), torch.rand(1, 8, 4, 4))
    assert torch.equal(w, torch.ones(1, 1, 4, 4))


def test_registry_ablation_variants_have_equal_parameters():
    counts = {n: count_params(create_model(n)) for n in ("moam-nafnet-w16", "moam-nafnet-w16-single", "moam-nafnet-w16-none")}
    ref = counts["moam-nafnet-w16"]
    assert all(abs(c - ref) / ref < 0.10 for c in counts.values()), counts
    assert count_params(create_model("nafnet-w16")) < 0.95 * ref  # the modulators are not free


def test_bad_arguments():
    with pytest.raises(ValueError, match="modulation"):
        MoAMNAFNet(modulation="mixture")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="experts"):
        MoAMNAFNet(experts=1)
    with pytest.raises(ValueError, match="reference"):
        MoAMNAFNet(**SMALL)(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 16, 16))


def test_safetensors_round_trip(tmp_path):
    from deblurkit.models.checkpoint import load_model, save_safetensors

    torch.manual_seed(0)
    model = MoAMNAFNet(**SMALL).eval()
    _perturb_zero_init(model)
    save_safetensors(model, tmp_path / "m.safetensors", name="moam-test", meta={})
    back, meta = load_model(tmp_path / "m.safetensors")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), back(x))
    assert meta["arch"] == "moam-nafnet"


def test_router_has_a_gradient_at_the_start_only_with_random_experts():
    x = torch.rand(2, 3, 32, 32)

    def router_grad(**options) -> float:
        torch.manual_seed(0)
        model = MoAMNAFNet(**SMALL, **options)
        model(x, torch.rand_like(x)).square().mean().backward()
        return sum(float(p.grad.abs().sum()) for n, p in model.named_parameters() if ".router." in n)

    assert router_grad() == 0.0  # zero experts: every mixture is the same, the router learns nothing
    assert router_grad(expert_init_std=0.01) > 0.0
    assert router_grad(expert_init_std=0.01, map_norm=True) > 0.0


def test_map_norm_gives_every_token_zero_mean_and_unit_variance_and_round_trips(tmp_path):
    from deblurkit.models.checkpoint import load_model, save_safetensors

    torch.manual_seed(0)
    model = MoAMNAFNet(**SMALL, map_norm=True, expert_init_std=0.01).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        d = model.map_norm(model.dmap(x, torch.rand_like(x)))
    assert torch.allclose(d.mean(dim=1), torch.zeros(1), atol=1e-5)
    assert torch.allclose(d.var(dim=1, unbiased=False), torch.ones(1), atol=1e-3)
    save_safetensors(model, tmp_path / "m.safetensors", name="moam-test", meta={})
    back, _ = load_model(tmp_path / "m.safetensors")
    with torch.no_grad():
        assert back.map_norm is not None and torch.equal(model(x), back(x))
    assert MoAMNAFNet(**SMALL, modulation="none", map_norm=True).map_norm is None
