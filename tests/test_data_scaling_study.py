"""studies/data_scaling.py: nested photo pools from the training split only, and a tiny end-to-end run."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image


def _load():
    return importlib.import_module("studies.data_scaling")


def _photos(root: Path, n: int, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BILINEAR).save(root / f"{i:02d}.jpg", quality=95)


def _manifest(tmp_path: Path) -> Path:
    _photos(tmp_path / "deb" / "pkg", 3, 80, 0)
    _photos(tmp_path / "other", 40, 64, 1)
    (tmp_path / "photos.json").write_text(json.dumps({"root": "deb", "photos": [
        {"path": f"pkg/{i:02d}.jpg", "package": "pkg", "name": f"{i:02d}.jpg", "split": "test" if i == 2 else "train"}
        for i in range(3)]}))
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"sources": [{"name": "debian", "photos_manifest": "photos.json"},
                                                {"name": "other", "folder": "other"}]}))
    return path


def test_pools_are_nested_and_hold_training_photos_only(tmp_path):
    study = _load()
    manifest = _manifest(tmp_path)
    pool = study.training_pool(manifest)
    debian, others = pool
    assert [p.name for p in debian] == ["debian/pkg/00.jpg", "debian/pkg/01.jpg"]  # the test photo is left out
    assert all(p.split == "train" for p in others) and 20 < len(others) < 40  # 10 % validation + 10 % test held out
    names = {}
    for variant, count in (("a", 10), ("b", 20), ("c", -1)):
        study.write_variant_manifest(variant, count, pool, tmp_path / variant)
        names[variant] = [p["path"] for p in json.loads((tmp_path / variant / "photos.json").read_text())["photos"]]
    assert len(names["a"]) == 10 and names["b"][:10] == names["a"] and names["c"][:20] == names["b"]
    assert len(names["c"]) == 2 + len(others) and names["a"][:2] == [str(p.path) for p in debian]
    spec = yaml.safe_load(study.write_variant_manifest("p", 0, pool, tmp_path / "p").read_text())
    assert spec == {"sources": [{"name": "procedural", "procedural": "dead-leaves"}]}


def test_tiny_end_to_end_run_writes_table_and_figure(tmp_path, monkeypatch):
    study = _load()
    manifest = _manifest(tmp_path)
    sets = tmp_path / "testsets" / "uniform"
    rng = np.random.default_rng(3)
    for sub in ("blur", "sharp"):
        (sets / sub).mkdir(parents=True)
    sharp = rng.random((32, 32, 3))
    for name, img in (("blur", 0.5 * sharp + 0.25), ("sharp", sharp)):
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(sets / name / "000.png")
    (sets / "meta.json").write_text(json.dumps({"items": [{"index": 0, "photo": "a.jpg"}]}))
    monkeypatch.setitem(study.VARIANTS, "photos-22", 2)
    monkeypatch.setattr(study, "TRAIN", {**study.TRAIN, "crop_size": 32, "batch_size": 1, "num_workers": 0,
                                         "val_crop": 32, "val_count": 1, "preset": "naive"})
    out = tmp_path / "res"
    argv = ["--manifest", str(manifest), "--variants", "photos-22,procedural", "--runs-dir", str(tmp_path / "runs"),
            "--testsets", str(tmp_path / "testsets"), "--sets", "uniform", "night", "--out", str(out), "--figure", str(tmp_path / "fig.png"),
            "--max-steps", "1"]
    assert study.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["photos"] == {"photos-22": 2, "procedural": 0}
    row = summary["table"]["uniform"]["identity"]
    assert abs(row["psnr_gain"]) < 1e-9 and summary["table"]["uniform"]["procedural"]["n"] == 1
    assert "photos-22 (2 photos)" in (out / "results.md").read_text()
    assert summary["paired_to"] == "photos-22" and set(summary["paired"]) == {"procedural"}
    assert summary["paired"]["procedural"]["psnr"]["n"] == 1  # the uniform pair ("sharp" is not a blurred set)
    assert Image.open(tmp_path / "fig.png").size == (760, 420)
    record = json.loads((out / "variants" / "procedural.json").read_text())
    assert record["steps"] == 1 and {r["set"] for r in record["rows"]} == {"uniform"}

    # the scores outlive the runs folder: nothing is trained again, and a new variant is reported missing
    import shutil

    shutil.rmtree(tmp_path / "runs")
    monkeypatch.setattr(study, "train_run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    argv[argv.index("--variants") + 1] = "photos-22,procedural,photos-100"
    assert study.main([*argv, "--eval-only"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"] == ["photos-22", "procedural"] and summary["missing"] == ["photos-100"]
    assert "Not trained yet: photos-100." in (out / "results.md").read_text()


def test_each_photo_pool_is_paired_with_the_next_smaller_one():
    study = _load()
    rows = []
    for image in range(3):
        for method, psnr in (("identity", 20.0), ("photos-22", 21.0), ("photos-100", 22.0 + image),
                             ("photos-all", 21.5), ("procedural", 19.0)):
            rows.append({"method": method, "set": "uniform", "image": image, "psnr": psnr, "psnr_aligned": psnr})
    variants = ["photos-22", "photos-100", "photos-all", "procedural"]
    photos = {"photos-22": 22, "photos-100": 100, "photos-all": 619, "procedural": 0}
    s = study.summarise(rows, ["uniform"], variants, {}, photos, {v: 1 for v in variants}, [])
    # Against the first variant: every other one; steps: 100 -> all only (22 -> 100 is the first pairing).
    assert set(s["paired"]) == {"photos-100", "photos-all", "procedural"}
    assert [(d["from"], d["to"]) for d in s["paired_steps"]] == [("photos-100", "photos-all")]
    step = s["paired_steps"][0]["psnr"]
    assert step["mean"] == -1.5 and step["better"] == 0 and step["n"] == 3  # 21.5 vs 22, 23, 24
    assert "photos-all minus photos-100 (the next smaller photo pool)" in study.markdown(s, ["uniform"])


def test_a_network_variant_is_compared_with_its_pool_not_counted_as_one():
    study = _load()
    gains = {"identity": 0.0, "photos-22": 0.5, "photos-all": 1.0, "photos-all-w32": 1.5}
    rows = [{"set": s, "image": f"{i}.jpg", "method": m, "psnr": 30.0 + g + 0.1 * i, "psnr_aligned": 30.0 + g}
            for m, g in gains.items() for s in ("uniform", "sharp") for i in range(3)]
    variants = ["photos-22", "photos-all", "photos-all-w32"]
    photos = {"photos-22": 22, "photos-all": 619, "photos-all-w32": 619}
    summary = study.summarise(rows, ["uniform", "sharp"], variants, {v: 1.0 for v in variants}, photos,
                              {v: 3000 for v in variants}, [])
    assert [(d["from"], d["to"]) for d in summary["paired_steps"]] == []  # one pool step only, from the base
    (net,) = summary["paired_networks"]
    assert (net["from"], net["to"]) == ("photos-all", "photos-all-w32")
    assert net["psnr"]["mean"] == pytest.approx(0.5) and net["psnr"]["better"] == 3
    assert "photos-all-w32 (619 photos, nafnet-w32, 1400 steps)" in study.markdown(summary, ["uniform", "sharp"])
