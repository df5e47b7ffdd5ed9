"""``deblurkit synth``: output layout, byte-identical reruns, resume, bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.io import save_png
from deblurkit.synth import cli
from deblurkit.synth.writer import write_pairs


def files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def test_cli_writes_pairs_and_a_manifest(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        run_cli(
            "--sharp",
            "dead-leaves",
            "--out",
            str(out),
            "--count",
            "3",
            "--size",
            "48",
            "--seed",
            "1",
            "--no-progress",
        )
        == 0
    )
    names = files(out)
    assert {"blur/000000.png", "sharp/000002.png", "manifest.jsonl", "run.json"} <= set(names)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2]
    rec = json.loads(lines[0])
    assert rec["crop"]["source"] == "dead-leaves" and rec["params"]["preset"] == "realistic"
    assert not [p for p in out.rglob("*.tmp")]
    assert "wrote 3 pairs" in capsys.readouterr().err


def test_same_seed_same_bytes_for_any_worker_count(tmp_path):
    import torch

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    threads = torch.get_num_threads()
    write_pairs("samples", a, preset="realistic", count=4, size=48, seed=7, progress=False)
    write_pairs("samples", b, preset="realistic", count=4, size=48, seed=7, workers=2, progress=False)
    write_pairs("samples", c, preset="realistic", count=4, size=48, seed=8, progress=False)
    fa, fb, fc = files(a), files(b), files(c)
    assert fa == fb
    assert torch.get_num_threads() == threads  # the caller's setting is restored
    assert fa["blur/000001.png"] != fc["blur/000001.png"]


def test_interrupted_run_resumes_to_identical_output(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    write_pairs("dead-leaves", ref, preset="gopro", count=5, size=32, seed=2, progress=False)
    write_pairs("dead-leaves", out, preset="gopro", count=5, size=32, seed=2, progress=False)
    # Simulate an interruption: a PNG and two manifest lines lost, a stray temp file left.
    (out / "blur" / "000003.png").unlink()
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    summary = write_pairs("dead-leaves", out, preset="gopro", count=5, size=32, seed=2, progress=False)
    assert summary.reused == 3 and summary.written == 2
    assert files(out) == files(ref)
    # Extending the run keeps the first items.
    more = write_pairs("dead-leaves", out, preset="gopro", count=6, size=32, seed=2, progress=False)
    assert more.reused == 5 and more.written == 1
    assert files(out)["blur/000002.png"] == files(ref)["blur/000002.png"]


def test_other_options_in_the_same_folder_are_refused(tmp_path):
    write_pairs("dead-leaves", tmp_path, preset="gopro", count=1, size=32, seed=2, progress=False)
    with pytest.raises(DeblurkitError, match="other options"):
        write_pairs("dead-leaves", tmp_path, preset="gopro", count=1, size=32, seed=3, progress=False)


def test_bad_input_is_reported_in_one_line(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    with pytest.raises(DeblurkitError, match="no readable images") as err:
        write_pairs(str(photos), tmp_path / "o1", count=1, size=32, progress=False)
    assert "\n" not in str(err.value)
    save_png(photos / "ok.png", np.random.default_rng(0).random((40, 50, 3)).astype(np.float32))
    (photos / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(DeblurkitError, match="larger than every image"):
        write_pairs(str(photos), tmp_path / "o2", count=1, size=64, progress=False)
    with pytest.raises(DeblurkitError, match="larger than every bundled sample image"):
        write_pairs("samples", tmp_path / "o5", count=1, size=5000, progress=False)
    assert not (tmp_path / "o5").exists()
    with pytest.raises(UnknownNameError, match="valid: .*realistic"):
        write_pairs(str(photos), tmp_path / "o3", preset="sharpest", count=1, size=32, progress=False)
    assert not (tmp_path / "o3").exists()
    assert (
        run_cli(
            "--sharp",
            str(photos),
            "--out",
            str(tmp_path / "o4"),
            "--count",
            "2",
            "--size",
            "32",
            "--no-progress",
        )
        == 0
    )
    err_text = capsys.readouterr().err
    assert "skipped 1 unreadable files" in err_text
    assert len((tmp_path / "o4" / "manifest.jsonl").read_text().splitlines()) == 2


def test_write_synth_demo_writes_pairs_and_a_contact_sheet(tmp_path):
    from deblurkit.demo import write_synth_demo
    from deblurkit.io import load_image_rgb

    write_synth_demo(tmp_path, count=2, seed=0)
    assert (tmp_path / "pairs" / "blur" / "000001.png").is_file()
    sheet = load_image_rgb(tmp_path / "contact_sheet.png")
    assert sheet.shape == (3 * 256, 2 * 256, 3)  # rows: sharp / naive / realistic


@pytest.mark.parametrize("workers", [1, 2])
def test_truncated_files_are_skipped_and_counted(tmp_path, workers):
    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    save_png(photos / "good.png", rng.random((40, 40, 3)).astype(np.float32))
    save_png(photos / "cut.png", rng.random((40, 40, 3)).astype(np.float32))
    data = (photos / "cut.png").read_bytes()
    (photos / "cut.png").write_bytes(data[: len(data) // 3])  # valid header, truncated pixel data
    summary = write_pairs(
        str(photos), tmp_path / "out", preset="gopro", count=6, size=32, workers=workers, progress=False
    )
    assert [p.rsplit("/", 1)[-1] for p in summary.skipped_files] == ["cut.png"]
    sources = {
        json.loads(line)["crop"]["source"]
        for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    }
    assert sources == {"good.png"}


def test_unwritable_out_and_negative_seed_are_one_line(tmp_path, capsys):
    from deblurkit.cli import main

    (tmp_path / "file").write_text("x")
    code = main(["synth", "--sharp", "dead-leaves", "--out", str(tmp_path / "file" / "pairs"), "--count", "1",
                 "--size", "32", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--out" in err[0] and "a parent of it is a file" in err[0], err
    code = main(["synth", "--sharp", "dead-leaves", "--out", str(tmp_path / "p"), "--seed", "-1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["deblurkit: error: --seed must be >= 0, got -1"]


def test_measured_psfs_from_the_command_line(tmp_path, capsys):
    from deblurkit.cli import main

    psfs = tmp_path / "psfs"
    psfs.mkdir()
    stroke = np.zeros((5, 5))
    stroke[2, :] = 1.0
    np.save(psfs / "stroke.npy", stroke)
    out = tmp_path / "pairs"
    args = ["synth", "--sharp", "dead-leaves", "--out", str(out), "--count", "2", "--size", "32",
            "--preset", "gopro", "--psf-dir", str(psfs), "--no-progress"]
    assert main(args) == 0
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["params"]["psf"] for r in recs] == ["stroke.npy", "stroke.npy"]
    assert all(r["params"]["trajectory"] == "recorded" for r in recs)
    assert json.loads((out / "run.json").read_text())["psf_dir"] == str(psfs.resolve())
    # the same folder with the preset's own shake is another run: refused, nothing overwritten
    before = files(out)
    assert main(args[:-3] + ["--no-progress"]) == 2
    assert "other options" in capsys.readouterr().err and files(out) == before
    # a folder without PSFs: one line, no output folder
    (tmp_path / "empty").mkdir()
    assert main(["synth", "--sharp", "dead-leaves", "--out", str(tmp_path / "p2"), "--count", "1",
                 "--size", "32", "--psf-dir", str(tmp_path / "empty"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--psf-dir" in err[0] and "holds no" in err[0], err
    assert not (tmp_path / "p2").exists()
