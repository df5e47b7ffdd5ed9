"""Sharp-image sources, SynthPairDataset and the paired-folder readers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurkit.data.paired import PairedFolderDataset, RealBlurListDataset
from deblurkit.errors import DeblurkitError
from deblurkit.io import save_png
from deblurkit.synth.dataset import SynthPairDataset
from deblurkit.synth.sources import DeadLeavesSource, ImageFolderSource, SampleImageSource, make_source


def _img(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


@pytest.fixture
def photo_dir(tmp_path):
    save_png(tmp_path / "a.png", _img(80, 100, 1))
    save_png(tmp_path / "sub" / "b.png", _img(120, 90, 2))
    save_png(tmp_path / "small.png", _img(20, 20, 3))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "notes.jpg").write_text("this is text")
    (tmp_path / "readme.txt").write_text("ignored: not an image suffix")
    return tmp_path


def test_folder_source_skips_unreadable_files_and_crops(photo_dir, rng):
    src = ImageFolderSource(photo_dir)
    assert len(src) == 3
    assert sorted(p.rsplit("/", 1)[-1] for p in src.skipped) == ["broken.png", "notes.jpg"]
    seen = set()
    for _ in range(20):
        crop, info = src.random_crop(64, rng)
        assert crop.shape == (64, 64, 3) and crop.dtype == np.float32
        assert 0 <= crop.min() and crop.max() <= 1
        seen.add(info["source"])
    assert seen == {"a.png", "sub/b.png"}  # the 20x20 image is too small for 64
    with pytest.raises(DeblurkitError, match="larger than every image"):
        src.random_crop(200, rng)


def test_folder_source_crop_is_the_right_region(tmp_path, rng):
    img = _img(50, 60, 4)
    save_png(tmp_path / "x.png", img)
    crop, info = ImageFolderSource(tmp_path).random_crop(16, rng)
    ref = np.round(img * 255) / 255
    t, l = info["top"], info["left"]
    assert np.allclose(crop, ref[t : t + 16, l : l + 16], atol=1e-6)


def test_empty_and_missing_folders_are_one_line_errors(tmp_path):
    with pytest.raises(DeblurkitError, match="no readable images") as err:
        ImageFolderSource(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(DeblurkitError, match="not a folder"):
        make_source(str(tmp_path / "nope"))


def test_sample_and_dead_leaves_sources(rng):
    crop, info = SampleImageSource().random_crop(96, rng)
    assert crop.shape == (96, 96, 3) and info["source"].startswith("skimage:")
    dl = DeadLeavesSource()
    a, _ = dl.random_crop(64, np.random.default_rng(5))
    b, _ = dl.random_crop(64, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.shape == (64, 64, 3)
    assert a.max() == pytest.approx(1.0) and a.std() > 0.1  # light sources saturate; texture present
    assert isinstance(make_source("samples"), SampleImageSource)
    assert isinstance(make_source("dead-leaves"), DeadLeavesSource)


def test_dataset_is_deterministic_per_index_and_order_independent():
    ds = SynthPairDataset("dead-leaves", preset="realistic", size=48, length=6, seed=3)
    first = [ds[i] for i in (4, 1)]
    again = [
        SynthPairDataset("dead-leaves", preset="realistic", size=48, length=6, seed=3)[i] for i in (1, 4)
    ]
    assert torch.equal(first[0]["blur"], again[1]["blur"]) and torch.equal(
        first[1]["sharp"], again[0]["sharp"]
    )
    item = first[0]
    assert item["index"] == 4 and item["blur"].shape == item["sharp"].shape == (3, 48, 48)
    other_seed = SynthPairDataset("dead-leaves", preset="realistic", size=48, length=6, seed=4)[4]
    assert not torch.equal(other_seed["blur"], item["blur"])
    pair = ds.sample(2)
    assert pair.params[0]["crop"]["source"] == "dead-leaves"
    with pytest.raises(IndexError):
        ds.sample(6)


def test_dataset_with_uniform_preset_exposes_kernels():
    from dataclasses import replace

    from deblurkit.synth.presets import get_preset

    ds = SynthPairDataset(
        "dead-leaves", preset=replace(get_preset("realistic"), spatially_varying_prob=0.0), size=32, length=2
    )
    k = ds.sample(0).kernel
    assert k is not None and abs(float(k.sum()) - 1) < 1e-5


def test_dataloader_with_workers_gives_the_same_items():
    ds = SynthPairDataset("dead-leaves", preset="gopro", size=32, length=4, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="fork")
    batches = list(loader)
    direct = torch.stack([ds[i]["blur"] for i in range(4)])
    assert torch.equal(torch.cat([b["blur"] for b in batches]), direct)


def test_paired_folder_layouts(tmp_path):
    for split in ("train", "test"):
        for seq in ("seqA", "seqB"):
            for i in range(2):
                img = _img(16, 16, i)
                save_png(tmp_path / "large" / split / seq / "blur" / f"{i}.png", img)
                save_png(tmp_path / "large" / split / seq / "sharp" / f"{i}.png", img)
        save_png(tmp_path / "flat" / split / "blur" / "x.png", _img(8, 8))
        save_png(tmp_path / "flat" / split / "sharp" / "x.png", _img(8, 8))
    ds = PairedFolderDataset(tmp_path / "large", "train")
    assert len(ds) == 4 and ds[0]["name"] == "seqA/0.png"
    assert ds[0]["blur"].shape == (3, 16, 16)
    assert len(PairedFolderDataset(tmp_path / "flat", "test")) == 1
    (tmp_path / "flat" / "test" / "sharp" / "x.png").unlink()
    with pytest.raises(DeblurkitError, match="missing sharp partner"):
        PairedFolderDataset(tmp_path / "flat", "test")
    with pytest.raises(DeblurkitError, match="no 'blur' folder"):
        PairedFolderDataset(tmp_path, "nope") if (tmp_path / "nope").mkdir() is None else None


def test_realblur_datalist(tmp_path):
    save_png(tmp_path / "scene1" / "gt" / "gt_1.png", _img(8, 8, 1))
    save_png(tmp_path / "scene1" / "blur" / "blur_1.png", _img(8, 8, 2))
    lst = tmp_path / "list.txt"
    lst.write_text("scene1/gt/gt_1.png scene1/blur/blur_1.png\n\n")
    ds = RealBlurListDataset(tmp_path, lst)
    assert len(ds) == 1 and ds[0]["name"] == "scene1/blur/blur_1.png"
    assert not torch.equal(ds[0]["blur"], ds[0]["sharp"])
    lst.write_text("scene1/gt/gt_1.png scene1/blur/blur_2.png\n")
    with pytest.raises(DeblurkitError, match="missing file"):
        RealBlurListDataset(tmp_path, lst)


def test_dead_leaves_large_canvas_is_covered(rng):
    """Large canvases need more than one chunk of disc radii (regression: crashed at 512 px)."""
    for size in (512, 768):
        img, info = DeadLeavesSource().random_crop(size, rng)
        assert img.shape == (size, size, 3) and np.isfinite(img).all()
    assert info["discs"] > 12000  # the 768-px canvas needed a second chunk
