"""The study scripts' data plumbing (studies/ is not a package: imported by path)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from PIL import Image

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def _load(name: str):
    import sys

    sys.path.insert(0, str(STUDIES))
    try:
        spec = importlib.util.spec_from_file_location(name, STUDIES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(STUDIES))


def test_build_source_writes_train_photos_at_each_scale_and_never_a_test_photo(tmp_path, monkeypatch):
    study = _load("train_data_study")
    monkeypatch.setattr(study, "ROOT", tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("train_a.png", "test_b.png"):
        Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(photos / name)
    (tmp_path / "studies").mkdir()
    manifest = {"root": "photos", "photos": [{"path": "train_a.png", "split": "train"},
                                             {"path": "test_b.png", "split": "test"}]}
    (tmp_path / "studies" / "photos_manifest.json").write_text(json.dumps(manifest))
    cfg = {"source_dir": "src", "photo_side": 64, "photo_sides": [64, 32, 128],
           "dead_leaves_count": 1, "dead_leaves_size": 32}

    out = study.build_source(cfg)

    written = {p.name: Image.open(p).size for p in (out / "photos").iterdir()}
    # 128 would upsample the 100-px photo: an extra scale is never upsampled
    assert written == {"000_train_a_64.bmp": (64, 51), "000_train_a_32.bmp": (32, 26)}
    info = json.loads((out / "source.json").read_text())
    assert info["photos"] == ["train_a.png"] and info["photo_sides"] == [64, 32, 128]
    assert len(list((out / "dead-leaves").iterdir())) == 1
