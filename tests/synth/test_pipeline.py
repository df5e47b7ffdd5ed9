"""synthesize_pair: presets, determinism, identities and the saturation model."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.synth.pipeline import SynthPair, synthesize_pair
from deblurkit.synth.presets import PRESETS, SynthConfig, get_preset


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-20))


def textured(h: int = 72, w: int = 72, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8, w // 8, generator=gen)
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False).clamp(
        0, 1
    )


def test_required_presets_exist_and_unknown_is_a_clear_error():
    for name in (
        "naive",
        "gopro",
        "realistic",
        "realesrgan",
        "realistic-no-noise",
        "realistic-no-saturation",
    ):
        assert isinstance(get_preset(name), SynthConfig) and get_preset(name).name == name
    with pytest.raises(UnknownNameError) as err:
        get_preset("realstic")
    assert isinstance(err.value, DeblurkitError)
    assert "realistic" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_gives_aligned_pairs_in_range(name):
    cfg = get_preset(name)
    x = textured(64 + 2 * cfg.trim, 64 + 2 * cfg.trim)
    pair = synthesize_pair(x, cfg, torch.Generator().manual_seed(3))
    assert isinstance(pair, SynthPair)
    assert pair.blur.shape == pair.sharp.shape == (1, 3, 64, 64)
    assert pair.blur.dtype == pair.sharp.dtype == torch.float32
    assert float(pair.blur.min()) >= 0 and float(pair.blur.max()) <= 1
    assert float(pair.sharp.min()) >= 0 and float(pair.sharp.max()) <= 1
    json.dumps(pair.params)  # JSON-serialisable
    assert pair.params[0]["preset"] == name
    if pair.kernel is not None:
        assert pair.kernel.shape[:2] == (1, 1) and abs(float(pair.kernel.sum()) - 1) < 1e-5


def test_same_seed_same_pair_different_seed_different_pair():
    cfg = get_preset("realistic")
    x = textured(2 * 40, 2 * 40)
    a = synthesize_pair(x, cfg, torch.Generator().manual_seed(5))
    b = synthesize_pair(x, cfg, torch.Generator().manual_seed(5))
    c = synthesize_pair(x, cfg, torch.Generator().manual_seed(6))
    assert torch.equal(a.blur, b.blur) and torch.equal(a.sharp, b.sharp) and a.params == b.params
    assert not torch.equal(a.blur, c.blur)


def test_uniform_blur_returns_its_kernel_and_matches_it():
    cfg = replace(get_preset("gopro"), spatially_varying_prob=0.0)
    x = textured(64, 64)
    pair = synthesize_pair(x, cfg, torch.Generator().manual_seed(0))
    assert pair.kernel is not None
    from deblurkit.synth.blur import convolve_fft
    from deblurkit.synth.color import linear_to_srgb, srgb_to_linear

    expected = linear_to_srgb(convolve_fft(srgb_to_linear(x), pair.kernel).clamp(0, 1))
    assert torch.allclose(pair.blur, expected, atol=1e-5)


def smooth(h: int, w: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    ph = torch.rand(3, 2, generator=gen) * 6.28
    chans = [0.5 + 0.3 * torch.sin(2.5 * x + ph[c, 0]) * torch.cos(2.0 * y + ph[c, 1]) for c in range(3)]
    return torch.stack(chans)[None].float()


def test_zero_blur_no_noise_is_identity_through_the_whole_pipeline():
    for base in ("gopro", "realistic-no-noise"):
        cfg = replace(get_preset(base), blur_length_px=(0.0, 0.0), jpeg_prob=0.0, saturation_prob=0.0)
        for seed in range(4):  # both uniform and rotational shake
            x = smooth(64, 64, seed)
            pair = synthesize_pair(x, cfg, torch.Generator().manual_seed(seed))
            assert psnr(pair.blur, pair.sharp) > 40, (base, seed, pair.params[0]["blur_type"])


def test_blur_lowers_high_frequencies_and_noise_adds_them_back():
    x = textured(64, 64)
    gen = lambda: torch.Generator().manual_seed(2)
    clean = synthesize_pair(x, replace(get_preset("realistic-no-noise"), jpeg_prob=0), gen())
    noisy = synthesize_pair(
        x, replace(get_preset("realistic"), jpeg_prob=0, noise_model="rsblur-rsblur"), gen()
    )
    assert psnr(clean.blur, clean.sharp) < 45  # it is blurred
    residual = noisy.blur - clean.blur
    assert float(residual.std()) > 1e-3  # noise present, same blur (same seed)


def test_naive_blurs_in_srgb_and_gopro_in_linear_light():
    # A black/white edge blurred by the same kernel: averaging in linear light is brighter.
    x = torch.zeros(1, 3, 64, 64)
    x[..., 32:] = 1.0
    base = {"trajectory": "linear", "spatially_varying_prob": 0.0, "blur_length_px": (16.0, 16.0)}
    naive = synthesize_pair(x, replace(get_preset("naive"), **base), torch.Generator().manual_seed(0))
    linear = synthesize_pair(x, replace(get_preset("gopro"), **base), torch.Generator().manual_seed(0))
    assert torch.allclose(naive.kernel, linear.kernel)
    assert float(linear.blur.mean()) > float(naive.blur.mean()) + 0.02


def test_saturation_makes_light_streaks_brighter_and_wider():
    x = torch.full((1, 3, 64, 64), 0.05)
    x[..., 30:34, 30:34] = 1.0  # a small light source
    cfg = replace(
        get_preset("gopro"),
        spatially_varying_prob=0.0,
        trajectory="linear",
        blur_length_px=(20.0, 20.0),
        saturation_alpha=(1.5, 1.5),
    )
    off = synthesize_pair(x, replace(cfg, saturation_prob=0.0), torch.Generator().manual_seed(1))
    on = synthesize_pair(x, replace(cfg, saturation_prob=1.0), torch.Generator().manual_seed(1))
    assert on.params[0]["saturation"] and not off.params[0]["saturation"]
    assert float(on.blur.sum()) > float(off.blur.sum()) * 1.05
    assert int((on.blur > 0.6).sum()) > int((off.blur > 0.6).sum())
    assert torch.equal(on.sharp, off.sharp)  # the target is clipped either way


def test_bad_inputs_raise_clear_errors():
    cfg = get_preset("realistic")
    with pytest.raises(ValueError, match="B, 3, H, W"):
        synthesize_pair(torch.rand(3, 32, 32), cfg, torch.Generator())
    with pytest.raises(ValueError, match="float32"):
        synthesize_pair(torch.rand(1, 3, 32, 32, dtype=torch.float64), cfg, torch.Generator())
    with pytest.raises(ValueError, match="even"):
        synthesize_pair(torch.rand(1, 3, 33, 32), cfg, torch.Generator())


def test_batches_are_processed_item_by_item():
    cfg = replace(get_preset("gopro"), spatially_varying_prob=0.0)
    x = torch.cat([textured(48, 48, 0), textured(48, 48, 1)])
    pair = synthesize_pair(x, cfg, torch.Generator().manual_seed(0))
    assert pair.blur.shape == (2, 3, 48, 48) and len(pair.params) == 2
    assert pair.kernel is not None and pair.kernel.shape[0] == 2
    assert torch.allclose(pair.kernel.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)


def test_study_variants_share_every_draw_except_the_stage_they_switch_off():
    x = smooth(72, 72, 1)
    runs = {}
    for name in ("realistic", "realistic-no-noise", "realistic-no-saturation", "gopro"):
        cfg = replace(
            get_preset(name), saturation_prob=0.999 if name != "realistic-no-saturation" else 0.0, trim=4
        )
        runs[name] = synthesize_pair(x, cfg, torch.Generator().manual_seed(11)).params[0]
    ref = runs["realistic"]
    shake_keys = ("blur_type", "blur_length_px", "anxiety", "angles_rad", "trajectory_px")
    for other in runs.values():
        assert all(other.get(k) == ref.get(k) for k in shake_keys)
    for name in ("realistic-no-noise", "realistic-no-saturation"):
        assert runs[name]["camera_weights"] == ref["camera_weights"]
        assert runs[name]["bayer_pattern"] == ref["bayer_pattern"]
    assert runs["realistic-no-saturation"]["shot_noise"] == ref["shot_noise"]
    assert runs["realistic-no-noise"]["saturation_alpha"] == ref["saturation_alpha"]
    assert (
        runs["realistic-no-noise"]["shot_noise"] == 0.0 and not runs["realistic-no-saturation"]["saturation"]
    )


def test_recorded_psfs_blur_with_one_of_the_folder_in_one_of_its_orientations(tmp_path):
    import numpy as np

    from deblurkit.synth.blur import convolve_fft
    from deblurkit.synth.color import linear_to_srgb, srgb_to_linear

    hook = np.zeros((7, 7))
    hook[3, 1:6] = 1.0
    hook[1:3, 5] = 1.0  # an L-shaped stroke: its 8 orientations all differ
    np.save(tmp_path / "hook.npy", hook)
    cfg = replace(get_preset("gopro"), trajectory="recorded", psf_dir=str(tmp_path))
    x = textured(64, 64)
    seen = set()
    for seed in range(12):
        pair = synthesize_pair(x, cfg, torch.Generator().manual_seed(seed))
        p = pair.params[0]
        assert p["trajectory"] == "recorded" and p["psf"] == "hook.npy" and p["blur_type"] == "uniform"
        k = pair.kernel[0, 0].numpy()
        ref = hook[:, 1:]  # the stroke's bounding box, centred as the pipeline centres it
        ref = np.rot90(ref / ref.sum(), p["psf_orientation"] % 4)
        ref = ref[:, ::-1] if p["psf_orientation"] >= 4 else ref
        assert np.count_nonzero(k) == 7 and np.allclose(np.sort(k[k > 0]), np.sort(ref[ref > 0]))
        rows, cols = k.shape[0] - ref.shape[0] + 1, k.shape[1] - ref.shape[1] + 1
        assert any(np.allclose(k[i:i + ref.shape[0], j:j + ref.shape[1]], ref)
                   for i in range(rows) for j in range(cols))
        seen.add(p["psf_orientation"])
        expected = linear_to_srgb(convolve_fft(srgb_to_linear(x), pair.kernel).clamp(0, 1))
        assert torch.allclose(pair.blur, expected, atol=1e-5)
    assert len(seen) >= 4
    first, again = (synthesize_pair(x, cfg, torch.Generator().manual_seed(3)) for _ in range(2))
    assert first.params[0] == again.params[0] and torch.equal(first.blur, again.blur)


def test_recorded_psfs_need_a_folder():
    cfg = replace(get_preset("gopro"), trajectory="recorded")
    with pytest.raises(ValueError, match="psf_dir"):
        synthesize_pair(textured(32, 32), cfg, torch.Generator().manual_seed(0))
