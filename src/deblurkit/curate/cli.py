"""``deblurkit curate``: score candidate sharp training images and keep the good, privacy-safe ones.

Writes ``OUT/manifest.jsonl`` (every score and the accept/reject reasons of every candidate) and
``OUT/accepted.txt`` (one accepted path per line); ``--copy`` also copies the accepted files to
``OUT/accepted/``.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from deblurkit.errors import DeblurkitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deblurkit.curate.rules import CurationRules

    d = CurationRules()
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="image files, folders (recursive) or globs")
    parser.add_argument("--out", required=True, type=Path, help="output folder for manifest.jsonl and accepted.txt")
    parser.add_argument("--copy", action="store_true", help="also copy the accepted images to OUT/accepted/")
    parser.add_argument("--no-privacy", action="store_true",
                        help="skip the face detector (keeps photos of people: only for sources known to have none)")
    parser.add_argument("--no-brisque", action="store_true", help="skip the BRISQUE score (about 1 s per image)")
    parser.add_argument("--classifier", default="none",
                        help="also reject by the learned classifier: 'default' (shipped model), a JSON file, "
                             "or 'none' (default: thresholds only)")
    parser.add_argument("--min-side", type=int, default=d.min_side, help=f"smallest shorter side (default {d.min_side})")
    parser.add_argument("--min-sharpness", type=float, default=d.min_sharpness,
                        help=f"smallest sharpness, ~1 = sharp (default {d.min_sharpness})")
    parser.add_argument("--max-noise", type=float, default=d.max_noise_sigma,
                        help=f"largest noise sigma, sRGB 0-1 (default {d.max_noise_sigma})")
    parser.add_argument("--max-blockiness", type=float, default=d.max_blockiness,
                        help=f"largest JPEG blockiness, 1 = none (default {d.max_blockiness})")
    parser.add_argument("--face-confidence", type=float, default=d.min_face_confidence,
                        help=f"detector confidence from which a face counts (default {d.min_face_confidence})")
    parser.add_argument("--quiet", action="store_true", help="no per-image progress lines")


def expand_sources(sources: list[str]) -> list[Path]:
    """Files, folders (recursive) and globs to a list of image files, each once, in order.

    Raises:
        DeblurkitError: a source matches no image.
    """
    from deblurkit.io import IMAGE_SUFFIXES, iter_image_files

    files: list[Path] = []
    for item in sources:
        p = Path(item)
        if p.is_dir():
            found = list(iter_image_files(p))
        elif p.is_file():
            found = [p]
        elif set("*?[") & set(item):
            found = [Path(m) for m in sorted(glob.glob(item, recursive=True))
                     if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_SUFFIXES]
        else:
            raise DeblurkitError(f"{item}: no such file or folder")
        if not found:
            raise DeblurkitError(f"{item}: no image files")
        files.extend(found)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from deblurkit.curate.classifier import DEFAULT_MODEL, QualityClassifier
    from deblurkit.curate.rules import CurationRules
    from deblurkit.curate.run import ProgressPrinter, curate_files

    files = expand_sources(args.sources)
    if args.out.exists() and not args.out.is_dir():
        raise DeblurkitError(f"--out {args.out}: exists and is not a folder")
    rules = replace(CurationRules(), min_side=args.min_side, min_sharpness=args.min_sharpness,
                    max_noise_sigma=args.max_noise, max_blockiness=args.max_blockiness,
                    min_face_confidence=args.face_confidence)
    clf = None
    if args.classifier != "none":
        clf = QualityClassifier.load(DEFAULT_MODEL if args.classifier == "default" else args.classifier)
    if not args.no_privacy:  # fail before any work if the detector is missing
        from deblurkit.curate.detectors import require_face_detector

        require_face_detector()
    summary = curate_files(
        files, args.out, rules, privacy=not args.no_privacy, brisque=not args.no_brisque, classifier=clf,
        copy_to=args.out / "accepted" if args.copy else None, progress=None if args.quiet else ProgressPrinter(),
    )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.reasons.items(), key=lambda kv: -kv[1]))
    print(f"{summary.accepted} accepted, {summary.rejected} rejected"
          + (f" ({reasons})" if reasons else "") + (f", {summary.errors} unreadable" if summary.errors else "")
          + f"; manifest: {summary.manifest}")
    return 0
