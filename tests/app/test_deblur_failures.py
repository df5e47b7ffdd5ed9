"""`deblurkit deblur` when the file system says no: one line, exit status 2, the other files still written."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from app_testutils import blurry_rgb, png_bytes

from deblurkit import cli


def _write_png(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes((blurry_rgb(16, 20, seed) * 255).astype(np.uint8)))


@pytest.fixture
def deblur(fake_loader, monkeypatch, capsys):
    """Run ``deblurkit deblur ARGS`` through the real entry point; returns (status, stderr lines)."""
    monkeypatch.setattr("deblurkit.app.restore.make_loader", lambda **kw: fake_loader)

    def run(*args: str) -> tuple[int, list[str]]:
        code = cli.main(["deblur", *args, "-m", "fake-sharpen", "--quiet"])
        return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]

    run.loaded = fake_loader.loaded  # type: ignore[attr-defined]
    return run


@pytest.fixture
def unwritable_folder(tmp_path):
    """An existing folder nobody may create files in (chmod for users; /sys for root)."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        yield ro
        ro.chmod(0o700)
        return
    sys_folder = Path("/sys")
    if not sys_folder.is_dir() or os.access(sys_folder, os.W_OK) and _can_create(sys_folder):
        pytest.skip("no unwritable folder available to root here")
    yield sys_folder


def _can_create(folder: Path) -> bool:
    try:
        (folder / ".deblurkit-probe").touch()
    except OSError:
        return False
    (folder / ".deblurkit-probe").unlink()
    return True


def test_unwritable_output_folder_is_one_line_before_any_work(tmp_path, deblur, unwritable_folder):
    _write_png(tmp_path / "a.png")
    code, err = deblur(str(tmp_path / "a.png"), "-o", str(unwritable_folder) + "/")
    assert code == 2 and len(err) == 1 and "cannot write there" in err[0], err
    assert deblur.loaded == []  # refused before the restorer was even loaded


def test_output_below_a_file_is_one_line(tmp_path, deblur):
    _write_png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    code, err = deblur(str(tmp_path / "a.png"), "-o", str(tmp_path / "notes.txt" / "out") + "/")
    assert code == 2 and len(err) == 1 and "a parent of it is a file" in err[0], err
    code, err = deblur(str(tmp_path / "a.png"), "-o", str(tmp_path / "notes.txt" / "x.png"))
    assert code == 2 and len(err) == 1 and "is a file, not a folder" in err[0], err


def test_force_onto_an_existing_folder_is_refused(tmp_path, deblur):
    _write_png(tmp_path / "a.png")
    (tmp_path / "a-deblurred.png").mkdir()
    code, err = deblur(str(tmp_path / "a.png"), "--force")
    assert code == 2 and len(err) == 1 and "is a folder" in err[0], err
    assert (tmp_path / "a-deblurred.png").is_dir()


def test_full_disk_fails_one_file_and_the_batch_goes_on(tmp_path, deblur, monkeypatch):
    for i in range(3):
        _write_png(tmp_path / "in" / f"p{i}.png", seed=i)
    import deblurkit.io as dio

    real_replace = os.replace

    def replace_or_enospc(src, dst):  # the writer fails for one file, as on a full disk
        if Path(dst).name == "p1.png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(dio.os, "replace", replace_or_enospc)
    code, err = deblur(str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert code == 2
    assert sorted(os.listdir(tmp_path / "out")) == ["p0.png", "p2.png"]  # no temporary file left either
    assert any("p1.png: cannot write, the disk is full" in line for line in err), err
    assert err[-1] == "deblurkit: 1 of 3 files failed"


def test_bad_suffix_output_format_and_pixel_limit_are_one_line(tmp_path, deblur):
    _write_png(tmp_path / "a.png")
    code, err = deblur(str(tmp_path / "a.png"), "--suffix", "/../../z")
    assert code == 2 and len(err) == 1 and "--suffix" in err[0], err
    code, err = deblur(str(tmp_path / "a.png"), "-o", str(tmp_path / "out.gif"))
    assert code == 2 and len(err) == 1 and "cannot write '.gif'" in err[0], err
    assert not (tmp_path / "out.gif").exists()  # no folder made
    code, err = deblur(str(tmp_path / "a.png"), "--max-pixels", "-5")
    assert code == 2 and len(err) == 1 and "--max-pixels must be >= 1" in err[0], err
    code, err = deblur(str(tmp_path / "a.png"), "-o", str(tmp_path / "results.v2"))  # a folder with a dot
    assert code == 0 and (tmp_path / "results.v2" / "a.png").is_file()


class _ClosedPipe(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def test_closed_stdout_is_one_line(tmp_path, deblur, monkeypatch):
    _write_png(tmp_path / "a.png")
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(_ClosedPipe())))
    code, err = deblur(str(tmp_path / "a.png"), "-o", "-")
    assert code == 2 and len(err) == 1 and err[0].startswith("deblurkit: error: <stdout>: cannot write"), err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_stdout_in_a_real_process_is_one_line(tmp_path):
    src = tmp_path / "a.png"
    _write_png(src)
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "deblurkit", "deblur", str(src), "-o", "-", "-m", "identity",
                               "--quiet"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
                              env=dict(os.environ, PYTHONPATH=str(Path(cli.__file__).parents[1])))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines == ["deblurkit: error: <stdout>: cannot write (No space left on device)"]
