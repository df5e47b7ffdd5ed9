"""Score candidate images, decide, and write the manifest (the library side of ``deblurkit curate``).

The manifest is JSON Lines, one record per candidate in input order::

    {"path": "...", "status": "accepted" | "rejected" | "error", "reasons": [...],
     "width": ..., "height": ..., "sharpness": ..., "textured_fraction": ..., "noise_sigma": ..., "contrast": ...,
     "blockiness": ..., "clipped_high": ..., "clipped_low": ..., "phash": "...",
     "brisque": ..., "faces": n, "face_confidence": ..., "duplicate_of": "..." | null,
     "p_good": ...}

It is written atomically (a temporary file renamed into place) after every ``flush_every``
images and at the end, so an interrupted run leaves a complete manifest of what was scored.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deblurkit.curate import scores
from deblurkit.curate.rules import CurationRules, decide
from deblurkit.errors import DeblurkitError
from deblurkit.io import atomic_write

MANIFEST_NAME = "manifest.jsonl"
ACCEPTED_NAME = "accepted.txt"


def _round(x: float, nd: int = 5) -> float | None:
    return None if x is None or math.isnan(x) else float(f"{x:.{nd}g}")


def score_image_srgb(img_srgb: np.ndarray, *, privacy: bool = True, brisque: bool = True) -> dict[str, Any]:
    """Every curation score of one float32 sRGB image ``(H, W, 3)`` in [0, 1].

    Args:
        img_srgb: the image at its own resolution.
        privacy: run the face detector (``faces``, ``face_confidence``: the most confident face,
            0 when none).
        brisque: compute the BRISQUE score.

    Returns:
        A JSON-serialisable dict (NaN becomes None).
    """
    from deblurkit.curate import detectors

    h, w = img_srgb.shape[:2]
    rec: dict[str, Any] = {"width": int(w), "height": int(h)}
    if min(h, w) < 8:
        return rec
    sharp = scores.sharpness_srgb(img_srgb)
    rec.update({k: _round(v) for k, v in sharp.items()})
    rec["contrast"] = _round(float(scores.luma_srgb(img_srgb).std()))
    rec["blockiness"] = _round(scores.blockiness_srgb(img_srgb))
    rec.update({k: _round(v) for k, v in scores.clipping_fractions_srgb(img_srgb).items()})
    rec["phash"] = scores.dct_phash_srgb(img_srgb)
    if brisque:
        rec["brisque"] = _round(detectors.brisque_srgb(img_srgb))
    if privacy:
        faces = detectors.detect_faces_srgb(img_srgb, min_confidence=0.3)
        rec["faces"] = len(faces)
        rec["face_confidence"] = faces[0].confidence if faces else 0.0
    return rec


@dataclass
class CurateSummary:
    """What :func:`curate_files` did."""

    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    """Count of each rejection reason (its words before the parenthesis)."""
    manifest: Path | None = None


def _write_manifest(path: Path, records: list[dict[str, Any]]) -> None:
    with atomic_write(path, "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=False) + "\n")


def curate_files(
    files: Sequence[Path],
    out_dir: Path,
    rules: CurationRules,
    *,
    privacy: bool = True,
    brisque: bool = True,
    classifier: Any | None = None,
    copy_to: Path | None = None,
    flush_every: int = 20,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> CurateSummary:
    """Score ``files`` in order, decide each, and write ``out_dir/manifest.jsonl`` and ``accepted.txt``.

    Args:
        files: candidate image files.
        out_dir: where the manifest and the accepted list go (created).
        rules: thresholds (:class:`CurationRules`).
        privacy: run the face detector (and reject faces when ``rules.reject_faces``).
        brisque: compute BRISQUE.
        classifier: optional :class:`deblurkit.curate.classifier.QualityClassifier`; its
            probability is recorded as ``p_good`` and an image below its threshold is rejected.
        copy_to: copy accepted files into this folder (names made unique by their order).
        flush_every: rewrite the manifest after this many images.
        progress: called after each image with ``(done, total, record)``.

    A file that cannot be read is recorded with ``status: "error"`` and a one-line ``error``.
    """
    from deblurkit.io import load_image_rgb

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST_NAME
    records: list[dict[str, Any]] = []
    kept_hashes: list[tuple[str, str]] = []
    summary = CurateSummary(manifest=manifest)
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
    try:
        for i, path in enumerate(files):
            rec: dict[str, Any] = {"path": str(path)}
            try:
                img = load_image_rgb(path)
                rec.update(score_image_srgb(img, privacy=privacy, brisque=brisque))
            except (DeblurkitError, OSError, ValueError) as exc:
                rec.update(status="error", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                summary.errors += 1
            else:
                reasons = decide(rec, rules if privacy else _without_faces(rules))
                if classifier is not None:
                    p = classifier.probability(rec)
                    rec["p_good"] = _round(p)
                    if p < classifier.threshold:
                        reasons.append(f"classifier (p_good {p:.2f} < {classifier.threshold:.2f})")
                dup = None
                if "phash" in rec:
                    for other_path, other_hash in kept_hashes:
                        if scores.hamming_hex(rec["phash"], other_hash) <= rules.max_duplicate_distance:
                            dup = other_path
                            break
                rec["duplicate_of"] = dup
                if dup is not None:
                    reasons.append(f"near-duplicate of {dup}")
                rec["status"] = "rejected" if reasons else "accepted"
                rec["reasons"] = reasons
                if reasons:
                    summary.rejected += 1
                    for reason in reasons:
                        key = reason.split(" (")[0].split(" of ")[0]
                        summary.reasons[key] = summary.reasons.get(key, 0) + 1
                else:
                    summary.accepted += 1
                    if "phash" in rec:
                        kept_hashes.append((str(path), rec["phash"]))
                    if copy_to is not None:
                        shutil.copy2(path, copy_to / f"{summary.accepted:06d}-{Path(path).name}")
            records.append(rec)
            if progress is not None:
                progress(i + 1, len(files), rec)
            if (i + 1) % flush_every == 0:
                _write_manifest(manifest, records)
    finally:
        _write_manifest(manifest, records)
        with atomic_write(out_dir / ACCEPTED_NAME, "w") as fh:
            fh.writelines(r["path"] + "\n" for r in records if r.get("status") == "accepted")
    return summary


def _without_faces(rules: CurationRules) -> CurationRules:
    from dataclasses import replace

    return replace(rules, reject_faces=False)


class ProgressPrinter:
    """Prints one line per image (``[done/total elapsed] status path (reasons)``) to ``stream``."""

    def __init__(self, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int, rec: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - self.t0
        why = "; ".join(rec.get("reasons", [])) or rec.get("error", "")
        line = f"[{done}/{total} {elapsed:.0f}s] {rec.get('status', '?'):8s} {rec['path']}"
        print(line + (f"  ({why})" if why else ""), file=self.stream, flush=True)
