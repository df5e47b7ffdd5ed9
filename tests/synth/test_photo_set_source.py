"""PhotoSetSource: a manifest of photo folders with weights, fixed hash splits and random scale."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from deblurkit.errors import DeblurkitError
from deblurkit.synth.sources import PhotoSetSource, make_source, split_of_name


def _jpeg(path: Path, h: int, w: int, seed: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # smooth random texture (JPEG keeps it), different per photo
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.BILINEAR).save(path, quality=95)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    for i in range(30):
        _jpeg(tmp_path / "a" / f"img_{i:02d}.jpg", 96, 128, i)
    for i in range(10):
        _jpeg(tmp_path / "b" / "sub" / f"p{i}.jpg", 200, 160, 100 + i)
    _jpeg(tmp_path / "deb" / "pkg" / "x.jpg", 120, 120, 200)
    _jpeg(tmp_path / "deb" / "pkg" / "y.jpg", 120, 120, 201)
    (tmp_path / "photos.json").write_text(json.dumps({"root": "deb", "photos": [
        {"path": "pkg/x.jpg", "package": "pkg", "name": "x.jpg", "split": "train"},
        {"path": "pkg/y.jpg", "package": "pkg", "name": "y.jpg", "split": "test"},
    ]}))
    spec = {"validation_percent": 20, "test_percent": 10, "sources": [
        {"name": "a", "folder": "a", "weight": 3.0},
        {"name": "b", "folder": "b", "weight": 1.0, "max_side": 100},
        {"name": "deb", "photos_manifest": "photos.json", "weight": 1.0},
        {"name": "leaves", "procedural": "dead-leaves", "weight": 1.0},
    ]}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_splits_are_fixed_by_name_disjoint_and_keep_the_photos_manifest_split(manifest):
    by_split = {s: PhotoSetSource(manifest, split=s) for s in ("train", "validation", "test")}
    names = {s: {p.name for src in by_split[s].sources for p in src.photos} for s in by_split}
    assert not names["train"] & names["validation"] and not names["train"] & names["test"]
    assert not names["validation"] & names["test"]
    assert len(names["train"] | names["validation"] | names["test"]) == 42
    for s, ns in names.items():  # folder photos: the split is a function of "<source>/<relative path>"
        assert all(split_of_name(n, validation_percent=20, test_percent=10) == s for n in ns if not n.startswith("deb/"))
    assert "deb/pkg/x.jpg" in names["train"] and "deb/pkg/y.jpg" in names["test"]
    assert "b/sub/p0.jpg" in set().union(*names.values())
    # procedural images serve the training split only
    assert by_split["train"].counts()["leaves"] == -1 and "leaves" not in by_split["validation"].counts()
    # the rule itself: about the requested shares over many names
    shares = Counter(split_of_name(f"s/{i}.jpg", validation_percent=10, test_percent=10) for i in range(5000))
    assert abs(shares["test"] / 5000 - 0.1) < 0.02 and abs(shares["validation"] / 5000 - 0.1) < 0.02


def test_crops_follow_the_weights_and_the_random_scale(manifest):
    src = PhotoSetSource(manifest, split="train", scale=(0.5, 1.0))
    rng = np.random.default_rng(0)
    counts, scales_a = Counter(), []
    for _ in range(300):
        crop, info = src.random_crop(48, rng)
        assert crop.shape == (48, 48, 3) and crop.dtype == np.float32 and 0 <= crop.min() and crop.max() <= 1
        counts[info["source"].split("/")[0]] += 1
        if info["source"].startswith("a/"):
            scales_a.append(info["scale"])
            assert 0 <= info["top"] <= 96 - info["region"] and 0 <= info["left"] <= 128 - info["region"]
    assert 0.45 < counts["a"] / 300 < 0.75  # weight 3 of 6
    assert all(counts[k] > 20 for k in ("b", "deb", "leaves"))
    # region 48..96 px of a 96-px-high photo: scales from 0.5 (clamped: the region must fit) to 1
    assert min(scales_a) == pytest.approx(0.5, abs=0.01) and max(scales_a) > 0.9 and len(set(scales_a)) > 20
    # the same generator state gives the same crop
    a, ia = src.random_crop(48, np.random.default_rng(5))
    b, ib = src.random_crop(48, np.random.default_rng(5))
    assert np.array_equal(a, b) and ia == ib


def test_scaled_crop_shows_the_downsampled_region(tmp_path):
    from PIL import Image

    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 32:] = 255  # left half black, right half white
    (tmp_path / "f").mkdir()
    Image.fromarray(img).save(tmp_path / "f" / "half.png")
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"validation_percent": 0, "test_percent": 0,
                                                     "sources": [{"name": "f", "folder": "f"}]}))
    crop, info = PhotoSetSource(tmp_path / "m.yaml", scale=(0.5, 0.5)).random_crop(32, np.random.default_rng(1))
    assert info["region"] == 64 and info["scale"] == 0.5  # the whole photo, halved
    assert crop[:, :15].max() < 0.02 and crop[:, 17:].min() > 0.98


def test_bad_manifests_are_one_line_errors(tmp_path, manifest):
    cases = {
        "needs a non-empty 'sources'": {"sources": []},
        "is not a folder": {"sources": [{"name": "x", "folder": "nope"}]},
        "exactly one of": {"sources": [{"name": "x", "folder": "a", "procedural": "dead-leaves"}]},
        "unknown keys": {"sources": [{"name": "x", "folder": "a", "wieght": 2}]},
        "weight must be > 0": {"sources": [{"name": "x", "folder": "a", "weight": 0}]},
    }
    for i, (msg, spec) in enumerate(cases.items()):
        path = manifest.parent / f"bad{i}.yaml"
        path.write_text(yaml.safe_dump(spec))
        with pytest.raises(DeblurkitError, match=msg) as err:
            PhotoSetSource(path)
        assert "\n" not in str(err.value)
    with pytest.raises(DeblurkitError, match="scale range"):
        PhotoSetSource(manifest, scale=(0.0, 1.0))
    only_leaves = manifest.parent / "leaves.yaml"
    only_leaves.write_text(yaml.safe_dump({"sources": [{"name": "l", "procedural": "dead-leaves"}]}))
    with pytest.raises(DeblurkitError, match="no photos in split 'validation'"):
        PhotoSetSource(only_leaves, split="validation")
    assert isinstance(make_source(str(manifest), split="test"), PhotoSetSource)


def test_exif_rotated_and_draft_decoded_jpegs_crop_the_right_region(tmp_path):
    from PIL import Image

    # a 200x120 (w x h) file stored sideways: EXIF orientation 6 shows it as 120x200
    img = np.zeros((120, 200, 3), np.uint8)
    img[:, :100] = (255, 0, 0)
    img[:, 100:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "f").mkdir()
    Image.fromarray(img).save(tmp_path / "f" / "r.jpg", quality=95, exif=exif)
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"validation_percent": 0, "test_percent": 0,
                                                     "sources": [{"name": "f", "folder": "f"}]}))
    src = PhotoSetSource(tmp_path / "m.yaml", scale=(0.25, 0.25))
    photo = src.sources[0].photos[0]
    assert (photo.height, photo.width) == (200, 120)  # the displayed orientation
    # scale 0.25 asks for a 120-px region (clamped to the short side), decoded at half size by the DCT
    crop, info = src.random_crop(32, np.random.default_rng(0))
    assert info["region"] == 120 and crop.shape == (32, 32, 3)
    # rotated 90 degrees clockwise for display: the red (left) half is on top, rows 0-99
    rows = info["top"] + (np.arange(32) + 0.5) * 120 / 32  # displayed row at each crop row's centre
    red = crop[:, :, 0].mean(1) > 0.5
    away = np.abs(rows - 100) > 6  # rows away from the red/blue edge (JPEG and resampling blur it)
    assert away.sum() > 20 and (red == (rows < 100))[away].all()
