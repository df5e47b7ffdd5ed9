"""Nothing is left behind: stale temporary files are removed, SIGTERM unwinds like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from deblurkit import cli
from deblurkit.io import atomic_write, ensure_writable_folder


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_stale_temp_files_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    stale = tmp_path / f".a.png.{_dead_pid()}-k2j4h.tmp"
    live = tmp_path / f".b.png.{os.getppid()}-x8d7s.tmp"  # a running process: maybe still writing
    other = tmp_path / ".notes.tmp"  # not ours
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    with atomic_write(tmp_path / "c.png") as fh:
        fh.write(b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "c.png"])


def test_temp_names_carry_the_writer_pid(tmp_path):
    with atomic_write(tmp_path / "d.png") as fh:
        names = [p.name for p in tmp_path.iterdir()]
        fh.write(b"x")
    assert len(names) == 1 and names[0].startswith(f".d.png.{os.getpid()}-") and names[0].endswith(".tmp")


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "out" / "e.png"

    def run(args) -> int:
        with atomic_write(target) as fh:
            fh.write(b"half of an image")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
            fh.write(b"never")
        return 0

    monkeypatch.setattr("deblurkit.eval.cli.run", run)
    before = signal.getsignal(signal.SIGTERM)
    t0 = time.monotonic()
    code = cli.main(["eval", "--preset", "realistic"])
    assert code == 143 and time.monotonic() - t0 < 4
    assert "deblurkit: terminated" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out") == []
    assert signal.getsignal(signal.SIGTERM) == before  # restored


def test_ensure_writable_folder_creates_and_checks(tmp_path):
    import pytest

    from deblurkit.errors import DeblurkitError

    assert ensure_writable_folder(tmp_path / "new" / "deep").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DeblurkitError, match="is a file"):
        ensure_writable_folder(tmp_path / "file", label="--out")
    with pytest.raises(DeblurkitError, match="a parent of it is a file"):
        ensure_writable_folder(tmp_path / "file" / "sub", label="--out")
    assert [p.name for p in (tmp_path / "new" / "deep").iterdir()] == []  # the probe is gone


def test_forked_workers_keep_the_default_sigterm(tmp_path):
    """A worker forked by a command (a pool, a DataLoader) still dies quietly on SIGTERM."""
    import multiprocessing as mp

    previous = cli._terminate_like_interrupt()
    try:
        proc = mp.get_context("fork").Process(target=time.sleep, args=(30,))
        proc.start()
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        proc.join(10)
        assert proc.exitcode == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
