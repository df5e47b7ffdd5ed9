"""studies/curated_training.py: each arm's image lists, the cached procedural pool and the summary."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml


def _study():
    return importlib.import_module("studies.curated_training")


def _photo(path: str, source: str) -> SimpleNamespace:
    return SimpleNamespace(path=Path(path), source=source, name=f"{source}/{Path(path).name}")


def test_arm_manifests_hold_the_right_images(tmp_path):
    study = _study()
    photos = [_photo("/p/a.jpg", "debian"), _photo("/p/b.jpg", "urban100"), _photo("/p/c.jpg", "urban100")]
    curated = {"/p/a.jpg": {"status": "accepted"}, "/p/b.jpg": {"status": "rejected"},
               "/p/c.jpg": {"status": "accepted"}}
    procedural = [tmp_path / "scene-0000.png", tmp_path / "leaves-0001.png"]

    def lists(arm):
        path, counts = study.write_arm_manifest(arm, photos, curated, procedural, tmp_path / arm)
        spec = yaml.safe_load(path.read_text())
        out = {s["name"]: [e["path"] for e in json.loads((path.parent / s["photos_manifest"]).read_text())["photos"]]
               for s in spec["sources"]}
        assert {k: len(v) for k, v in out.items()} == counts
        assert all(s["weight"] == 1.0 for s in spec["sources"])
        return out

    assert lists("uncurated") == {"photos": ["/p/a.jpg", "/p/b.jpg", "/p/c.jpg"]}
    assert lists("curated") == {"photos": ["/p/a.jpg", "/p/c.jpg"]}
    assert lists("procedural") == {"procedural": [str(p.resolve()) for p in procedural]}
    both = lists("curated+procedural")
    assert both["photos"] == ["/p/a.jpg", "/p/c.jpg"] and len(both["procedural"]) == 2
    rendered = [tmp_path / "hdr-0000.png"]
    _, counts = study.write_arm_manifest("privacy-safe", photos, curated, procedural, tmp_path / "ps", rendered)
    assert counts == {"procedural": 2, "rendered": 1}  # no photo in the privacy-safe arm


def test_rendered_pool_composites_views_on_white_and_exposes_hdr_crops(tmp_path):
    import cv2

    study = _study()
    views, hdr = tmp_path / "views", tmp_path / "hdr"
    views.mkdir()
    hdr.mkdir()
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 10:30] = (0, 0, 255, 255)  # an opaque red square (BGRA) on a transparent background
    cv2.imwrite(str(views / "r_0.png"), rgba)
    scene = tmp_path / "transforms_train.json"
    scene.write_text(json.dumps({"camera_angle_x": 0.7, "frames": [
        {"file_path": "./views/r_0", "transform_matrix": np.eye(4).tolist()}]}))
    pano = np.random.default_rng(0).uniform(0.5, 50.0, (64, 128, 3)).astype(np.float32)
    cv2.imwrite(str(hdr / "p.hdr"), pano)
    paths = study.render_rendered_pool(tmp_path / "pool", scene, hdr, 2, 16)
    assert [p.name for p in paths] == ["scene-r_0.png", "hdr-0000.png", "hdr-0001.png"]
    view = cv2.imread(str(paths[0]))
    assert (view[0, 0] == 255).all() and tuple(view[20, 20]) == (0, 0, 255)
    crop = cv2.imread(str(paths[1]))
    assert crop.shape == (16, 16, 3)
    from deblurkit.color import luminance, srgb_to_linear

    lum = luminance(srgb_to_linear(crop[..., ::-1].astype(np.float32) / 255.0))
    assert abs(float(np.median(lum)) - 0.18) < 0.03  # exposed to a mid-grey median
    stamps = [p.stat().st_mtime_ns for p in paths]
    again = study.render_rendered_pool(tmp_path / "pool", scene, hdr, 2, 16)
    assert [p.stat().st_mtime_ns for p in again] == stamps  # written once
    assert study.render_rendered_pool(tmp_path / "none", tmp_path / "missing", tmp_path / "missing", 3, 16) == []


def test_arm_manifest_is_a_working_training_source(tmp_path):
    study = _study()
    procedural = study.render_procedural_pool(tmp_path / "pool", 2, 48)
    path, _ = study.write_arm_manifest("procedural", [], {}, procedural, tmp_path / "arm")
    from deblurkit.synth.sources import PhotoSetSource

    crop, info = PhotoSetSource(path).random_crop(32, np.random.default_rng(0))
    assert crop.shape == (32, 32, 3) and info["source"].startswith("procedural/")


def test_procedural_pool_is_rendered_once_and_alternates_kinds(tmp_path):
    study = _study()
    paths = study.render_procedural_pool(tmp_path, 3, 32)
    assert [p.name for p in paths] == ["scene-0000.png", "leaves-0001.png", "scene-0002.png"]
    stamps = [p.stat().st_mtime_ns for p in paths]
    again = study.render_procedural_pool(tmp_path, 4, 32)
    assert [p.stat().st_mtime_ns for p in again[:3]] == stamps and again[3].name == "leaves-0003.png"
    assert not list(tmp_path.glob("*.tmp.png"))
    import cv2

    study.pool_sheet(again, tmp_path / "sheet.png", per_row=3, side=16)
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape == (32, 48, 3)
    assert (sheet[16:, 32:] == 255).all()  # two dead-leaves images for a row of three: the rest is blank


def test_summary_gains_are_against_the_input_on_the_same_images():
    study = _study()
    rows = []
    for s, base in (("uniform", 20.0), ("sharp", 30.0)):
        for img in range(3):
            rows.append({"set": s, "image": img, "method": "input", "psnr": base + img, "ssim": 0.5})
            rows.append({"set": s, "image": img, "method": "curated", "psnr": base + img + 1.0 + 0.5 * img,
                         "ssim": 0.6})
    table = study.summarise(rows, ["uniform", "sharp"], ["curated"])
    assert list(table) == ["uniform", "sharp", "blurred sets"]
    assert table["uniform"]["curated"]["psnr_gain"] == pytest.approx(1.5)
    assert table["uniform"]["curated"]["psnr_gain_se"] == pytest.approx(0.5 / np.sqrt(3))
    assert table["blurred sets"]["curated"]["n"] == 3  # the unblurred 'sharp' set is not a blurred set
    assert table["sharp"]["curated"]["ssim_gain"] == pytest.approx(0.1)


def test_procedural_curation_counts_each_kind(tmp_path):
    study = _study()
    pool = study.render_procedural_pool(tmp_path, 2, 256)
    report = study.procedural_curation(pool, per_kind=5)
    for kind in ("scene", "leaves"):
        e = report[kind]
        assert e["n"] == 1 and e["accepted"] + sum(e["reasons"].values()) >= 1
        lo, mid, hi = e["sharpness"]
        assert 0 < lo <= mid <= hi
    assert report["scene"]["sharpness"][0] >= 0.3  # sharp by the curation measure


def test_paired_differences_match_pairs_by_position_not_by_photo_name():
    study = _study()
    rows = []
    for index, (base, arm) in enumerate([(20.0, 21.0), (30.0, 30.5), (25.0, 27.0)]):  # one photo, three crops
        rows.append({"set": "capture", "index": index, "image": "same.jpg", "method": "uncurated", "psnr": base})
        rows.append({"set": "capture", "index": index, "image": "same.jpg", "method": "procedural", "psnr": arm})
    diffs = study.paired_differences(rows, {"capture": ["capture"]}, ["uncurated", "procedural"], "uncurated")
    mean, se = diffs["capture"]["procedural"]
    assert mean == pytest.approx(7 / 6)
    assert se == pytest.approx(np.std([1.0, 0.5, 2.0], ddof=1) / np.sqrt(3))
    assert "uncurated" not in diffs["capture"]
