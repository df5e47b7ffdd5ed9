"""``deblurkit synth``: write synthetic blurry/sharp training pairs to a folder."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sharp", required=True,
        help="folder of sharp images, 'samples' (bundled photos), 'dead-leaves', 'procedural-scenes' or a photo manifest .yaml "
             "(its training photos; docs/training.md)",
    )
    parser.add_argument("--out", required=True, help="output folder (blur/, sharp/, manifest.jsonl)")
    from deblurkit.synth.presets import PRESETS  # light: no torch

    parser.add_argument(
        "--preset", default="realistic", help=f"degradation preset: {', '.join(PRESETS)} (default realistic)"
    )
    parser.add_argument("--psf-dir", default=None,
                        help="blur with the measured PSFs of this folder (.npy or grayscale PNG) instead "
                             "of the preset's synthetic shake; the preset's other stages are kept")
    parser.add_argument("--count", type=int, default=100, help="number of pairs (default 100)")
    parser.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bytes (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes; the output does not depend on it")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from deblurkit.synth.writer import write_pairs

    logging.basicConfig(level=logging.WARNING, format="deblurkit: warning: %(message)s")
    summary = write_pairs(
        args.sharp,
        args.out,
        preset=args.preset,
        count=args.count,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
        psf_dir=args.psf_dir,
    )
    msg = f"wrote {summary.written} pairs to {summary.out_dir}"
    if summary.reused:
        msg += f" ({summary.reused} already present, resumed)"
    if summary.skipped_files:
        msg += f"; skipped {len(summary.skipped_files)} unreadable files"
    print(msg, file=sys.stderr)
    return 0
