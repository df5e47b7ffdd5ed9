"""Data plumbing: step-indexed sampler (resume/rank slicing), held-out splits, dataset kinds."""

from __future__ import annotations

import pytest
import torch
from train_testlib import write_pairs

from deblurkit.errors import DeblurkitError
from deblurkit.train import resolve_config
from deblurkit.train.data import StepBatchSampler, build_datasets, holdout_split


def test_sampler_is_a_pure_function_of_step():
    full = list(StepBatchSampler(10, 3, seed=5, start_step=0, max_steps=8))
    tail = list(StepBatchSampler(10, 3, seed=5, start_step=5, max_steps=8))
    assert tail == full[5:]
    # each epoch is a permutation: the first 30 positions (10 steps x 3) cover every index 3 times
    flat = [i for batch in list(StepBatchSampler(10, 3, seed=5, start_step=0, max_steps=10)) for i, *_ in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert len({s for batch in full for _, s, _ in batch}) == 24  # distinct crop/flip seeds


def test_sampler_ranks_split_the_global_batch():
    single = list(StepBatchSampler(7, 4, seed=1, start_step=0, max_steps=5))
    r0 = list(StepBatchSampler(7, 2, seed=1, start_step=0, max_steps=5, rank=0, world_size=2))
    r1 = list(StepBatchSampler(7, 2, seed=1, start_step=0, max_steps=5, rank=1, world_size=2))
    for s in range(5):
        assert [i for i, *_ in r0[s] + r1[s]] == [i for i, *_ in single[s]]


def test_holdout_is_fixed_and_disjoint():
    train, val = holdout_split(40, 0.1)
    assert len(val) == 4 and not set(train) & set(val) and sorted(train + val) == list(range(40))
    assert holdout_split(40, 0.1) == (train, val)


def test_dataset_kinds(tmp_path):
    root = tmp_path / "GOPRO"
    write_pairs(root / "train", 3, size=32)
    write_pairs(root / "test", 2, size=32, offset=3)
    cfg = resolve_config(overrides={"data": "gopro", "data_root": str(root), "val_split": "test", "val_count": "1"})
    train, val, info = build_datasets(cfg)
    assert len(train) == 3 and len(val) == 1 and info["train_pairs"] == 3
    assert val[0]["blur"].shape == (3, 32, 32)

    cfg = resolve_config(overrides={"data": "gopro", "data_root": str(root), "val_fraction": "0.34"})
    train, val, info = build_datasets(cfg)
    assert (len(train), len(val)) == (1, 2) and "held out" in info["val"]

    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"test/sharp/p{i:02d}.png test/blur/p{i:02d}.png\n" for i in range(2)))
    cfg = resolve_config(overrides={"data": "realblur", "data_root": str(root), "datalist": str(lst)})
    train, val, _ = build_datasets(cfg)
    assert len(train) + len(val) == 2

    cfg = resolve_config(overrides={"data": "paired", "data_root": str(root / "train"), "val_crop": "16"})
    train, val, _ = build_datasets(cfg)
    assert val[0]["sharp"].shape == (3, 16, 16)

    with pytest.raises(DeblurkitError, match="data=gopro"):  # would silently train on the test split
        build_datasets(resolve_config(overrides={"data": "paired", "data_root": str(root)}))


def test_deconvolved_inputs_replace_uniform_blur_only(tmp_path):
    """With deconvolved_input_prob=1 every uniform-blur input is the kernel stage's output."""
    import numpy as np

    from deblurkit.kernel_aware.kernels import kernel_similarity, perturbed_kernel
    from deblurkit.train.data import DeconvolvedInputs

    cfg = resolve_config(overrides={"data": "synth", "source": "samples", "preset": "realistic-no-noise",
                                    "crop_size": "128", "synth_length": "6", "val_count": "1",
                                    "deconvolved_input_prob": "1"})
    train, _, info = build_datasets(cfg)
    assert isinstance(train, DeconvolvedInputs) and info["deconvolved_input_prob"] == 1.0

    def psnr(a, b):
        return float(10 * np.log10(1.0 / ((a.numpy() - b.numpy()) ** 2).mean()))

    uniform = 0
    for i in range(len(train)):
        item, plain = train.render(i, 128), train.base.render(i, 128)
        assert item["blur"].shape == plain["blur"].shape and torch.equal(item["sharp"], plain["sharp"])
        assert float(item["blur"].min()) >= 0.0 and float(item["blur"].max()) <= 1.0
        assert torch.equal(item["blur"], train.render(i, 128)["blur"])  # a pure function of (seed, index)
        pair = train.base.sample(i, 128)
        if pair.kernel is None:  # spatially varying blur: left as it is
            assert torch.equal(item["blur"], plain["blur"])
            continue
        uniform += 1
        assert not torch.equal(item["blur"], plain["blur"])
        # the deconvolution itself (colour conversions, layout): the true kernel brings the input closer
        exact = DeconvolvedInputs.deconvolved(plain["blur"], pair.kernel[0, 0].numpy())
        assert psnr(exact, plain["sharp"]) > psnr(plain["blur"], plain["sharp"])
        guess = perturbed_kernel(pair.kernel[0, 0].numpy(), np.random.default_rng(i))
        assert guess.shape[0] % 2 == 1 and guess.sum() == pytest.approx(1.0) and guess.min() >= 0
        assert 0.5 < kernel_similarity(guess, pair.kernel[0, 0].numpy()) < 1.0
    assert uniform >= 2

    with pytest.raises(DeblurkitError, match="data=synth"):
        build_datasets(resolve_config(overrides={"data": "paired", "data_root": str(tmp_path),
                                                 "deconvolved_input_prob": "0.5"}))
