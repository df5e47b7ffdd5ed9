"""Shared by the study scripts that score restorers on the held-out sets of ``make_testsets.py``.

Metric settings (explicit, never guessed): PSNR and SSIM in sRGB, data range 1, outputs clipped
to [0, 1], no border crop.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETS = ["uniform", "varying", "night", "noise-low", "noise-high", "sharp"]


MANIFEST = ROOT / "studies/photos_manifest.json"
SHARED = ROOT.parent / "shared" / "data"
"""The data folder beside the project (../shared/data: sharp photos, real blur, scenes, HDR panoramas)."""


def add_testset_arguments(ap: argparse.ArgumentParser) -> None:
    """``--testsets DIR``, ``--sets NAME ...``, ``--limit N`` and ``--all-photos``."""
    ap.add_argument("--testsets", default=str(ROOT / "data/testsets"))
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--limit", type=int, default=None, help="first N pairs per set")
    ap.add_argument("--all-photos", action="store_true",
                    help="also score pairs of photos the manifest excludes from scoring (unsharp references)")


def excluded_photos(manifest: str | Path = MANIFEST) -> dict[str, str]:
    """Test photos the manifest marks ``exclude_from_scoring``: name -> reason."""
    path = Path(manifest)
    if not path.is_file():
        return {}
    photos = json.loads(path.read_text()).get("photos", [])
    return {e["name"]: e["exclude_from_scoring"] for e in photos if e.get("exclude_from_scoring")}


def metrics(out: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``out`` against ``gt``, both ``(H, W, 3)`` sRGB in [0, 1]."""
    from deblurkit.eval.metrics import psnr, ssim

    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return float(psnr(out, gt, data_range=1.0)), float(ssim(out, gt, data_range=1.0))


def set_items(testsets: str | Path, set_name: str, limit: int | None,
              all_photos: bool = False) -> tuple[Path, list[dict]] | None:
    """The set's folder and its first ``limit`` scored items from ``meta.json``; None (with a note)
    if absent. Pairs of photos in :func:`excluded_photos` are left out unless ``all_photos``."""
    root = Path(testsets) / set_name
    if not (root / "meta.json").is_file():
        print(f"skip {set_name}: no {root}/meta.json (run python -m studies.make_testsets)", file=sys.stderr)
        return None
    items = json.loads((root / "meta.json").read_text())["items"]
    if not all_photos:
        skip = excluded_photos()
        left_out = [it["photo"] for it in items if it["photo"] in skip]
        if left_out:
            print(f"{set_name}: not scored (manifest exclude_from_scoring): {', '.join(left_out)}", file=sys.stderr)
        items = [it for it in items if it["photo"] not in skip]
    return root, (items[:limit] if limit else items)


def requested_sets(args: argparse.Namespace) -> Iterator[tuple[str, Path, list[dict]]]:
    """``(set name, folder, items)`` of each set of ``--sets`` that exists (:func:`set_items` with the
    arguments of :func:`add_testset_arguments`)."""
    for set_name in args.sets:
        found = set_items(args.testsets, set_name, args.limit, args.all_photos)
        if found is not None:
            yield set_name, *found


def kernel_pairs(args: argparse.Namespace) -> Iterator[tuple[str, Path, list[tuple[dict, np.ndarray]]]]:
    """``(set name, folder, [(item, true kernel), ...])`` of each set of :func:`requested_sets` that
    has pairs with a true kernel (a set without any, e.g. ``varying``, is skipped with a note)."""
    for set_name, root, items in requested_sets(args):
        pairs = [(it, k) for it in items if (k := true_kernel(root, it)) is not None]
        if pairs:
            yield set_name, root, pairs
        else:
            print(f"skip {set_name}: no pairs with a true kernel", file=sys.stderr)


def available_sets(testsets: str | Path) -> list[str]:
    """The set folders under ``testsets`` (those with a ``meta.json``): :data:`SETS` first, in order."""
    have = sorted(p.name for p in Path(testsets).iterdir() if (p / "meta.json").is_file())
    return [s for s in SETS if s in have] + [s for s in have if s not in SETS]


def load_pair(root: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(blurry, sharp) images of pair ``index`` of a set folder."""
    from deblurkit.io import load_image_rgb

    return load_image_rgb(root / "blur" / f"{index:03d}.png"), load_image_rgb(root / "sharp" / f"{index:03d}.png")


def true_kernel(root: Path, item: dict) -> np.ndarray | None:
    """The true blur kernel of a set item from ``meta.json``; None for items without one (varying, sharp)."""
    return np.load(root / item["kernel"]) if item.get("kernel") else None


def write_results(out: str | Path, results: dict, lines: list[str]) -> None:
    """Write ``out.json`` (``results``) and ``out.md`` (``lines``) atomically; echo the table."""
    from deblurkit.io import atomic_write

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out.with_suffix(".json"), "w") as fh:
        json.dump(results, fh, indent=1)
    with atomic_write(out.with_suffix(".md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
