"""The manifest runner and ``deblurkit curate``: every candidate recorded, reasons, duplicates, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deblurkit.cli import main
from deblurkit.curate.rules import CurationRules
from deblurkit.curate.run import curate_files
from deblurkit.io import save_png
from deblurkit.synth.sources import DeadLeavesSource


@pytest.fixture
def candidates(tmp_path):
    import cv2

    folder = tmp_path / "in"
    folder.mkdir()
    src = DeadLeavesSource(light_sources=(0, 0))
    a, _ = src.random_crop(160, np.random.default_rng(1))
    b, _ = src.random_crop(160, np.random.default_rng(2))
    save_png(folder / "a.png", a)
    save_png(folder / "b_copy_of_a.png", np.clip(a * 0.95 + 0.02, 0, 1))  # near-duplicate
    save_png(folder / "c_blurred.png", cv2.GaussianBlur(b, (0, 0), 3.0))
    save_png(folder / "d_small.png", b[:64, :64])
    (folder / "e_broken.png").write_bytes(b"not an image")
    return folder


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_curate_files_records_every_candidate_with_reasons(candidates, tmp_path):
    files = sorted(candidates.iterdir())
    out = tmp_path / "out"
    seen = []
    summary = curate_files(files, out, CurationRules(min_side=128, min_sharpness=0.2), privacy=False, brisque=False,
                           copy_to=out / "accepted", progress=lambda d, t, r: seen.append((d, t)))
    recs = {r["path"].split("/")[-1]: r for r in _read(out / "manifest.jsonl")}
    assert list(recs) == [f.name for f in files] and seen[-1] == (5, 5)
    assert recs["a.png"]["status"] == "accepted" and recs["a.png"]["reasons"] == []
    assert recs["b_copy_of_a.png"]["duplicate_of"].endswith("a.png")
    assert any(r.startswith("near-duplicate") for r in recs["b_copy_of_a.png"]["reasons"])
    assert any(r.startswith("blurred") for r in recs["c_blurred.png"]["reasons"])
    assert recs["d_small.png"]["reasons"][0].startswith("too small")
    assert recs["e_broken.png"]["status"] == "error" and "\n" not in recs["e_broken.png"]["error"]
    for key in ("sharpness", "noise_sigma", "blockiness", "clipped_high", "phash", "width"):
        assert key in recs["c_blurred.png"]
    assert (summary.accepted, summary.rejected, summary.errors) == (1, 3, 1)
    assert (out / "accepted.txt").read_text().splitlines() == [recs["a.png"]["path"]]
    assert [p.name for p in (out / "accepted").iterdir()] == ["000001-a.png"]


def test_interrupted_run_leaves_a_complete_manifest(candidates, tmp_path):
    def stop(done, total, rec):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        curate_files(sorted(candidates.iterdir()), tmp_path / "o", CurationRules(), privacy=False, brisque=False,
                     progress=stop)
    assert len(_read(tmp_path / "o" / "manifest.jsonl")) == 2


def test_cli_curate_writes_manifest_and_summary(candidates, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["curate", str(candidates), "--out", str(out), "--no-privacy", "--no-brisque", "--quiet",
               "--min-side", "128", "--min-sharpness", "0.2"])
    assert rc == 0
    assert "1 accepted, 3 rejected" in capsys.readouterr().out
    assert len(_read(out / "manifest.jsonl")) == 5


def test_cli_curate_bad_input_is_one_line(tmp_path, capsys):
    assert main(["curate", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--no-privacy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("deblurkit: error:") and "no such file" in err and "\n" not in err
    assert main(["curate", str(tmp_path), "--out", str(tmp_path / "o"), "--no-privacy",
                 "--classifier", str(tmp_path / "missing.json")]) == 2
