"""Command-line entry point: ``deblurkit <command> ...``.

The table below is the whole list of commands. Each command lives in its own module, which
exposes ``add_arguments(parser)`` and ``run(args) -> int`` and keeps heavy imports (torch,
cv2, fastapi) inside ``run`` so that ``deblurkit --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
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
    "eval": ("deblurkit.eval.cli", "Evaluate models and baselines on paired or synthesized data."),
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
    try:
        return int(args._run(args) or 0)
    except DeblurkitError as exc:
        print(f"deblurkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deblurkit: interrupted", file=sys.stderr)
        return 130
