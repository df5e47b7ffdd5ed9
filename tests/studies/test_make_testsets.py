"""Building validation sets from a folder of photos (no manifest)."""

from __future__ import annotations

import json

import numpy as np

from deblurkit.io import save_png
from studies.make_testsets import main


def test_sets_from_a_photo_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.png", "c.png"):
        save_png(tmp_path / "photos" / name, rng.random((160, 160, 3)).astype(np.float32))
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    assert main(["--photo-dir", str(tmp_path / "photos"), "--limit", "2", "--sets", "uniform",
                 "--size", "64", "--out", str(tmp_path / "sets")]) == 0
    meta = json.loads((tmp_path / "sets" / "uniform" / "meta.json").read_text())
    assert meta["split"] == "folder" and [it["photo"] for it in meta["items"]] == ["a.png", "b.png"]
    assert (tmp_path / "sets" / "uniform" / "blur" / "001.png").is_file()
    assert (tmp_path / "sets" / "uniform" / "kernels" / "000.npy").is_file()
