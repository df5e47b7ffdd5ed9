"""``deblurkit export-weights``: a training checkpoint's weights as a ``.safetensors`` file.

Examples::

    deblurkit export-weights runs/naf/checkpoints/last.pt -o naf-step.safetensors          # EMA weights
    deblurkit export-weights runs/naf/checkpoints/last.pt -o naf-live.safetensors --raw    # live weights
    deblurkit deblur photo.jpg --model naf-step.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("checkpoint", type=Path, help="training checkpoint (OUT_DIR/checkpoints/last.pt)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output .safetensors file")
    parser.add_argument("--raw", action="store_true",
                        help="export the live model weights instead of their exponential moving average (EMA)")


def run(args: argparse.Namespace) -> int:
    from deblurkit.train.checkpoint import export_checkpoint_weights

    info = export_checkpoint_weights(args.checkpoint, args.out, weights="model" if args.raw else "ema")
    kind = "live" if args.raw else "EMA"
    print(f"wrote {info['file']} ({info['name']}, {kind} weights at step {info['step']:,}); "
          f"use it with: deblurkit deblur --model {info['file']}")
    return 0
