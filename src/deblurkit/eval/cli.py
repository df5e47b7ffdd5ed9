"""``deblurkit eval``: score restorers and baselines side by side on one dataset.

Examples::

    deblurkit eval --preset realistic --seed 0 --count 20 --methods identity,unsharp,wiener,kernel-deconv
    deblurkit eval --data GOPRO --split test --methods identity,mimo-unet --out eval-gopro
    deblurkit eval --data RealBlur --datalist RealBlur_J_test_list.txt --protocol realblur --methods identity,default
    deblurkit eval --data synth-out/ --methods identity,runs/my/model.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Methods: identity, unsharp, wiener, richardson-lucy (the last two need the true kernel, i.e.\n"
        "--preset), or any restorer name / checkpoint path accepted by 'deblurkit deblur --model'.\n"
        "Writes OUT/per_image.csv, summary.json (every metric setting), results.md and figure.png."
    )
    parser.add_argument("--methods", default="identity,unsharp",
                        help="comma-separated methods, scored in this order (default: identity,unsharp)")
    src = parser.add_argument_group("dataset (one of --data or --preset)")
    src.add_argument("--data", type=Path, metavar="ROOT",
                     help="paired folder (blur/ + sharp/), GoPro root (with --split) or RealBlur root (with --datalist)")
    src.add_argument("--split", help="GoPro split folder under ROOT, e.g. test")
    src.add_argument("--datalist", type=Path, help="RealBlur datalist (lines 'gt_path blur_path' relative to ROOT)")
    src.add_argument("--preset", help="synthesize pairs on the fly with this preset")
    src.add_argument("--seed", type=int, default=0, help="synthesis seed (default 0)")
    src.add_argument("--count", type=int, default=16, help="synthesized pairs (default 16)")
    src.add_argument("--size", type=int, default=256, help="synthesized pair size in pixels (default 256)")
    src.add_argument("--source", default="samples", help="synthesis source: folder, samples, dead-leaves or procedural-scenes")
    parser.add_argument("--protocol", choices=("standard", "realblur"), default="standard",
                        help="standard PSNR/SSIM, or the RealBlur protocol (ECC alignment, masked metrics)")
    parser.add_argument("--out", type=Path, default=Path("eval-output"), help="output folder (default eval-output)")
    parser.add_argument("--limit", type=int, help="score only the first N pairs")
    parser.add_argument("--device", default="cpu", help="device for network restorers (cpu, cuda)")
    parser.add_argument("--tile", type=int, help="tile size for network restorers")
    parser.add_argument("--no-figure", action="store_true", help="skip figure.png")
    parser.add_argument("--quiet", action="store_true", help="no per-image lines")


def run(args: argparse.Namespace) -> int:
    from deblurkit.errors import DeblurkitError
    from deblurkit.eval.evaluate import evaluate, folder_pairs, markdown_table, realblur_pairs, synth_pairs
    from deblurkit.io import ensure_writable_folder

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise DeblurkitError("--methods names no method")
    if (args.data is None) == (args.preset is None):
        raise DeblurkitError("give exactly one dataset: --data ROOT or --preset NAME")
    for flag, value, low in (("--size", args.size, 16), ("--count", args.count, 1), ("--limit", args.limit, 1),
                             ("--tile", args.tile, 16), ("--seed", args.seed, 0)):
        if value is not None and value < low:
            raise DeblurkitError(f"{flag} must be >= {low}, got {value}")
    if args.preset is not None:
        pairs = synth_pairs(args.preset, seed=args.seed, count=args.count, size=args.size, source=args.source)
    elif args.datalist is not None:
        pairs = realblur_pairs(args.data, args.datalist)
    else:
        pairs = folder_pairs(args.data, args.split)
    ensure_writable_folder(args.out, label="--out")  # before any pair is scored
    report = evaluate(methods, pairs, protocol=args.protocol, out_dir=args.out, limit=args.limit,
                      device=args.device, tile=args.tile, progress=not args.quiet, figure=not args.no_figure)
    print(markdown_table(report.summary), end="")
    print(f"wrote {', '.join(str(p) for p in report.files.values())}")
    return 0
