"""``deblurkit demo``: the README's main job.

Synthesizes a small realistic dataset from scikit-image's bundled photos and writes a contact
sheet; then deblurs the bundled real motion-blurred photo and a synthetic example, writing
before/after images.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    parser.add_argument("--count", type=int, default=8, help="synthetic pairs to write")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from deblurkit.app.demo import write_deblur_demo
    from deblurkit.synth.demo import write_synth_demo

    out: Path = args.out
    write_synth_demo(out / "synth", count=args.count, seed=args.seed)
    write_deblur_demo(out / "deblur", seed=args.seed)
    print(f"demo outputs in {out}/")
    return 0
