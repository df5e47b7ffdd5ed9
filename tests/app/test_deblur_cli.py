"""`deblurkit deblur`: naming, no overwrites, folders/globs, pipes, compare, errors, atomic writes."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
import pytest
from app_testutils import SharpenRestorer, blurry_rgb, pil_bytes, png_bytes
from PIL import Image

from deblurkit.app import cli as deblur_cli
from deblurkit.errors import DeblurkitError


def _write_png(path: Path, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    arr = (blurry_rgb(h, w, seed) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(arr))
    return arr


def _run(argv: list[str], loader) -> int:
    parser = argparse.ArgumentParser(prog="deblurkit deblur")
    deblur_cli.add_arguments(parser)
    return deblur_cli.run(parser.parse_args(argv), loader=loader)


def test_default_output_beside_input_is_sharper(tmp_path, fake_loader):
    src = tmp_path / "photo.png"
    arr = _write_png(src)
    assert _run([str(src), "--model", "fake-sharpen", "--quiet"], fake_loader) == 0
    out = tmp_path / "photo-deblurred.png"
    res = np.asarray(Image.open(out))
    assert res.shape == arr.shape
    lap = lambda a: np.abs(np.diff(a.astype(np.float32), axis=1)).mean()
    assert lap(res) > lap(arr) * 1.3  # the fake restorer sharpens: more high-frequency energy
    expected = SharpenRestorer()(arr.astype(np.float32) / 255)
    np.testing.assert_allclose(res / 255.0, expected, atol=1 / 255 + 1e-6)


def test_summary_line_per_file(tmp_path, fake_loader, capsys):
    for i in range(3):
        _write_png(tmp_path / "in" / f"im{i}.png", seed=i)
    assert _run([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "fake-sharpen"], fake_loader) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "->" in ln]
    assert len(lines) == 3 and all("32x24" in ln and " s" in ln and "8-bit" in ln for ln in lines)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0.png", "im1.png", "im2.png"]
    assert fake_loader.loaded == ["fake-sharpen"]  # loaded once for the batch


def test_folder_recursion_keeps_relative_paths_and_globs(tmp_path, fake_loader):
    _write_png(tmp_path / "in" / "a.png")
    _write_png(tmp_path / "in" / "sub" / "b.png")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    assert _run([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "fake-sharpen", "--quiet"], fake_loader) == 0
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "sub" / "b.png").is_file()
    assert _run([str(tmp_path / "in" / "**" / "*.png"), "-o", str(tmp_path / "g"), "-m", "fake-sharpen", "--quiet"],
                fake_loader) == 0
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["a.png", "b.png"]


def test_never_overwrites_inputs_or_existing_outputs(tmp_path, fake_loader):
    src = tmp_path / "a.png"
    _write_png(src)
    before = src.read_bytes()
    # -o pointing at the input's own folder: name gets the suffix instead of replacing the input
    assert _run([str(src), "-o", str(tmp_path), "-m", "fake-sharpen", "--quiet"], fake_loader) == 0
    assert src.read_bytes() == before and (tmp_path / "a-deblurred.png").is_file()
    # -o naming the input itself
    with pytest.raises(DeblurkitError, match="overwrite an input"):
        _run([str(src), "-o", str(src), "-m", "fake-sharpen", "--force"], fake_loader)
    # existing output without --force: refused before any work; with --force: replaced
    out = tmp_path / "a-deblurred.png"
    out.write_bytes(b"old")
    with pytest.raises(DeblurkitError, match="already exists .*--force"):
        _run([str(src), "-m", "fake-sharpen"], fake_loader)
    assert out.read_bytes() == b"old"
    assert _run([str(src), "-m", "fake-sharpen", "--force", "--quiet"], fake_loader) == 0
    assert out.read_bytes() != b"old" and src.read_bytes() == before


def test_output_file_needs_single_input_and_known_suffix(tmp_path, fake_loader):
    _write_png(tmp_path / "a.png")
    _write_png(tmp_path / "b.png")
    with pytest.raises(DeblurkitError, match="is a file name but there are 2 inputs"):
        _run([str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "x.png")], fake_loader)
    with pytest.raises(DeblurkitError, match="no such file"):
        _run([str(tmp_path / "missing.png")], fake_loader)
    with pytest.raises(DeblurkitError, match="unknown restorer 'nope'"):
        _run([str(tmp_path / "a.png"), "-m", "nope"], fake_loader)


def test_format_conversion_jpeg_quality_and_compare(tmp_path, fake_loader):
    src = tmp_path / "a.png"
    arr = _write_png(src, 40, 50)
    hi, lo = tmp_path / "hi.jpg", tmp_path / "lo.jpg"
    assert _run([str(src), "-o", str(hi), "--quality", "95", "-m", "fake-sharpen", "--quiet", "--compare"], fake_loader) == 0
    assert _run([str(src), "-o", str(lo), "--quality", "20", "-m", "fake-sharpen", "--quiet"], fake_loader) == 0
    assert Image.open(hi).format == "JPEG" and lo.stat().st_size < hi.stat().st_size
    cmp_img = Image.open(tmp_path / "hi-compare.jpg")
    assert cmp_img.size[0] > 2 * arr.shape[1] and cmp_img.size[1] == arr.shape[0]


def test_stdin_to_stdout_keeps_format(fake_loader):
    jpg = pil_bytes(Image.fromarray((blurry_rgb(20, 30) * 255).astype(np.uint8)), "JPEG")
    sink = io.BytesIO()
    log = io.StringIO()
    assert deblur_cli.deblur_files(["-"], None, model="fake-sharpen", loader=fake_loader, stdin=io.BytesIO(jpg),
                                   stdout=sink, log=log, quiet=False) == 0
    out = Image.open(io.BytesIO(sink.getvalue()))
    assert out.format == "JPEG" and out.size == (30, 20)
    assert "<stdin> -> <stdout>" in log.getvalue()


@pytest.mark.parametrize("kind", ["truncated", "text", "empty"])
def test_bad_input_single_file_fails_cleanly_without_output(tmp_path, fake_loader, kind):
    src = tmp_path / "bad.jpg"
    good = pil_bytes(Image.fromarray((blurry_rgb(64, 64) * 255).astype(np.uint8)), "JPEG")
    src.write_bytes({"truncated": good[:400], "text": b"just text\n", "empty": b""}[kind])
    with pytest.raises(DeblurkitError) as info:
        _run([str(src), "-m", "fake-sharpen", "--quiet"], fake_loader)
    assert "\n" not in str(info.value) and "bad.jpg" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"]  # no partial or temp file


def test_batch_continues_past_bad_files_and_exits_nonzero(tmp_path, fake_loader, capsys):
    _write_png(tmp_path / "in" / "good.png")
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code = _run([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "fake-sharpen"], fake_loader)
    err = capsys.readouterr().err
    assert code == 2 and "bad.png" in err and "1 of 2 files failed" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


def test_interrupt_leaves_no_partial_file(tmp_path):
    src = tmp_path / "a.png"
    _write_png(src)

    def boom(image, progress=None):
        raise KeyboardInterrupt

    boom.name, boom.description = "boom", ""
    with pytest.raises(KeyboardInterrupt):
        deblur_cli.deblur_files([str(src)], model="boom", loader=lambda n: boom, quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_16bit_tiff_and_png_in_16bit_out(tmp_path, fake_loader):
    import cv2

    arr = np.random.default_rng(0).integers(0, 65536, (16, 20, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "a.tif"), arr)
    (tmp_path / "b.png").write_bytes(png_bytes(arr))
    assert _run([str(tmp_path / "a.tif"), str(tmp_path / "b.png"), "-o", str(tmp_path / "o"), "-m", "fake-sharpen",
                 "--quiet"], fake_loader) == 0
    for name in ("a.tif", "b.png"):
        out = cv2.imread(str(tmp_path / "o" / name), cv2.IMREAD_UNCHANGED)
        assert out.dtype == np.uint16 and out.shape == arr.shape


def test_pixel_limit_option(tmp_path, fake_loader):
    _write_png(tmp_path / "a.png", 30, 30)
    with pytest.raises(DeblurkitError, match="more than the limit of 100"):
        _run([str(tmp_path / "a.png"), "--max-pixels", "100", "-m", "fake-sharpen"], fake_loader)


def test_decompression_bomb_file_is_refused_without_output(tmp_path, fake_loader):
    import struct
    import zlib

    def chunk(tag, payload):
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                                        + chunk(b"IDAT", zlib.compress(b"\0" * 99)) + chunk(b"IEND", b""))
    with pytest.raises(DeblurkitError, match="too many pixels"):
        _run([str(tmp_path / "bomb.png"), "-m", "fake-sharpen"], fake_loader)
    assert [p.name for p in tmp_path.iterdir()] == ["bomb.png"]


@pytest.mark.parametrize(("name", "make", "mode", "size"), [
    ("cmyk.jpg", lambda rgb: Image.fromarray(rgb).convert("CMYK"), "RGB", (10, 12)),
    ("pal.png", lambda rgb: Image.fromarray(rgb).convert("P"), "RGB", (10, 12)),
    ("one.png", lambda rgb: Image.new("RGB", (1, 1), (1, 2, 3)), "RGB", (1, 1)),
    ("gray.jpg", lambda rgb: Image.fromarray(rgb[..., 0]), "L", (10, 12)),
])
def test_unusual_valid_files_give_correct_outputs(tmp_path, fake_loader, name, make, mode, size):
    rgb = (blurry_rgb(12, 10) * 255).astype(np.uint8)
    make(rgb).save(tmp_path / name)
    assert _run([str(tmp_path / name), "-m", "fake-sharpen", "--quiet"], fake_loader) == 0
    out_path = tmp_path / name.replace(".", "-deblurred.")
    with Image.open(out_path) as out:
        out.load()
        assert out.mode == mode and out.size == size


def test_interrupt_while_writing_leaves_no_partial_file(tmp_path, fake_loader, monkeypatch):
    import deblurkit.io

    src = tmp_path / "a.png"
    _write_png(src)

    def interrupted_fsync(fd):
        raise KeyboardInterrupt  # Ctrl-C after the bytes were written, before the rename

    monkeypatch.setattr(deblurkit.io.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        deblur_cli.deblur_files([str(src)], model="fake-sharpen", loader=fake_loader, quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_output_folder_inside_input_folder_is_not_reprocessed(tmp_path, fake_loader):
    _write_png(tmp_path / "shots" / "a.png")
    out = tmp_path / "shots" / "sharp"
    assert _run([str(tmp_path / "shots"), "-o", str(out), "-m", "fake-sharpen", "--quiet"], fake_loader) == 0
    assert [p.name for p in out.iterdir()] == ["a.png"]
    # a second run with --force sees only the original input, not its own earlier output
    assert _run([str(tmp_path / "shots"), "-o", str(out), "-m", "fake-sharpen", "--quiet", "--force"], fake_loader) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.png"]


@pytest.mark.parametrize(("flag", "expected"), [([], None), (["--ensemble"], True), (["--no-ensemble"], False)])
def test_ensemble_flag_reaches_the_loader(tmp_path, monkeypatch, flag, expected):
    from deblurkit.app import restore

    seen = {}

    def fake_make_loader(**kw):
        seen.update(kw)
        return lambda name: SharpenRestorer()

    monkeypatch.setattr(restore, "make_loader", fake_make_loader)
    src = tmp_path / "a.png"
    _write_png(src)
    parser = argparse.ArgumentParser(prog="deblurkit deblur")
    deblur_cli.add_arguments(parser)
    assert deblur_cli.run(parser.parse_args([str(src), "--quiet", *flag])) == 0
    assert seen["self_ensemble"] is expected
