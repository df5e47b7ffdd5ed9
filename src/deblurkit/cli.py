"""Command-line entry point: ``deblurkit <command> ...``.

The table below is the whole list of commands. Each command lives in its own module, which
exposes ``add_arguments(parser)`` and ``run(args) -> int`` and keeps heavy imports (torch,
cv2, fastapi) inside ``run`` so that ``deblurkit --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

from deblurkit import __version__
from deblurkit.errors import DeblurkitError

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "deblur": ("deblurkit.app.cli", "Deblur photos (files, folders, globs, or '-' for stdin)."),
    "serve": ("deblurkit.app.serve_cli", "Run the web app (FastAPI + uvicorn) on 127.0.0.1."),
    "synth": ("deblurkit.synth.cli", "Synthesize realistic blurry/sharp training pairs."),
    "models": ("deblurkit.app.models_cli", "List the model variants with parameters, MACs and sources."),
    "export-onnx": ("deblurkit.infer.export_cli", "Export a model to ONNX with dynamic height/width."),
    "train": ("deblurkit.train.cli", "Train a model (resumable; torchrun for DDP)."),
    "export-weights": ("deblurkit.train.export_cli", "Export a training checkpoint's weights (EMA by default) to .safetensors."),
    "curate": ("deblurkit.curate.cli", "Score and filter candidate sharp training images (manifest, privacy filter)."),
    "eval": ("deblurkit.eval.cli", "Evaluate models and baselines on paired or synthesized data."),
    "highlights": ("deblurkit.highlights.cli", "Recover clipped highlights in a video from past frames, online."),
    "scene": ("deblurkit.scene.cli", "Fit a sharp 3-D scene to several blurry posed photos; render it."),
    "demo": ("deblurkit.demo", "The README's main job: synthesize examples and deblur sample photos."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deblurkit", description="Make blurry real-world photos sharp.")
    parser.add_argument("--version", action="version", version=f"deblurkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V"):
        print(f"deblurkit {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    previous = _terminate_like_interrupt()
    try:
        status = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed or full stdout fails here, not in the interpreter's exit
        return status
    except DeblurkitError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        return _fail("<stdout>: cannot write (the reading end of the pipe was closed)")
    except OSError as exc:  # full disk, permissions, ... met while writing: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("deblurkit: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("deblurkit: terminated", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    """Raised by the SIGTERM handler, so that ``finally`` blocks run (temporary files are removed)."""


_handler_pid: list[int] = []


def _raise_terminated(signum, _frame) -> None:
    if _handler_pid and os.getpid() != _handler_pid[0]:
        # a forked worker (multiprocessing pool, DataLoader) inherited the handler: die as before
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise _Terminated()


def _terminate_like_interrupt():
    """Make SIGTERM unwind like Ctrl-C; returns the previous handler (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _handler_pid[:] = [os.getpid()]
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _fail(message: str) -> int:
    """Print ``deblurkit: error: <message>`` and return 2; a dead stdout is pointed at /dev/null."""
    try:
        sys.stdout.flush()
    except OSError:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    print(f"deblurkit: error: {message}", file=sys.stderr)
    return 2
