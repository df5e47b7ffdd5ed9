"""Accept/reject thresholds over the curation scores, and the reasons an image is rejected.

The defaults were chosen on labelled synthetic degradations and labelled photos by
``python -m studies.curation_filters`` (docs/curation.md gives the precision and recall).

>>> decide({"width": 100, "height": 80}, CurationRules(min_side=256))
['too small (80 px < 256)']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CurationRules:
    """Thresholds; a score that is missing from a record (not computed) is not checked."""

    min_side: int = 256
    """Smallest accepted shorter side in pixels (one training crop)."""
    min_sharpness: float = 0.30
    """Smallest directional octave ratio (:func:`deblurkit.curate.scores.sharpness_tiles`)."""
    min_textured_fraction: float = 0.05
    """Smallest share of textured tiles (a blank or almost blank image teaches nothing)."""
    min_contrast: float = 0.05
    """An image without textured tiles but with at least this luma standard deviation counts as
    blurred rather than blank."""
    max_noise_sigma: float = 0.014
    """Largest luma noise standard deviation, sRGB 0-1 units (0.014 = 3.6 levels of 255; the
    estimate includes fine texture, so clean textured photos reach 0.01-0.02)."""
    max_blockiness: float = 1.10
    """Largest JPEG blockiness (1 = no 8x8 grid)."""
    max_clipped_high: float = 0.25
    """Largest share of pixels at the top code value."""
    max_clipped_low: float = 0.25
    """Largest share of black pixels."""
    max_brisque: float | None = None
    """Largest BRISQUE score; None = recorded only (it did not separate the labelled cases better
    than the dedicated measures, docs/curation.md)."""
    reject_faces: bool = True
    """Drop images with at least one detected face (privacy)."""
    min_face_confidence: float = 0.5
    """Detector confidence from which a face counts (low: for privacy a missed face costs more
    than a dropped photo)."""
    max_duplicate_distance: int = 6
    """Perceptual hashes at most this many bits apart (of 64) are near-duplicates; the later one
    is dropped."""


def _bad(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def decide(record: dict[str, Any], rules: CurationRules) -> list[str]:
    """Reasons to reject an image, from its scores (empty list = accept).

    ``record`` holds any of the keys written by :func:`deblurkit.curate.run.score_image_srgb`;
    missing keys are not checked. Near-duplicates are decided by the caller, which knows the
    other images.
    """
    reasons: list[str] = []
    r = record
    if "width" in r and "height" in r and min(r["width"], r["height"]) < rules.min_side:
        reasons.append(f"too small ({min(r['width'], r['height'])} px < {rules.min_side})")
    if "textured_fraction" in r and (
        r["textured_fraction"] < rules.min_textured_fraction or _bad(r.get("sharpness"))
    ):
        if not _bad(r.get("contrast")) and r["contrast"] >= rules.min_contrast:
            # contrast but no fine detail anywhere: blurred beyond measure, not blank
            reasons.append(f"blurred (no fine detail; {r['textured_fraction']:.2f} of tiles textured)")
        else:
            reasons.append(f"too flat ({r['textured_fraction']:.2f} of tiles textured)")
    elif not _bad(r.get("sharpness")) and r["sharpness"] < rules.min_sharpness:
        reasons.append(f"blurred (sharpness {r['sharpness']:.3f} < {rules.min_sharpness})")
    if not _bad(r.get("noise_sigma")) and r["noise_sigma"] > rules.max_noise_sigma:
        reasons.append(f"noisy (sigma {r['noise_sigma']:.4f} > {rules.max_noise_sigma})")
    if not _bad(r.get("blockiness")) and r["blockiness"] > rules.max_blockiness:
        reasons.append(f"JPEG blocking ({r['blockiness']:.2f} > {rules.max_blockiness})")
    if not _bad(r.get("clipped_high")) and r["clipped_high"] > rules.max_clipped_high:
        reasons.append(f"clipped highlights ({r['clipped_high']:.2f} > {rules.max_clipped_high})")
    if not _bad(r.get("clipped_low")) and r["clipped_low"] > rules.max_clipped_low:
        reasons.append(f"crushed shadows ({r['clipped_low']:.2f} > {rules.max_clipped_low})")
    if rules.max_brisque is not None and not _bad(r.get("brisque")) and r["brisque"] > rules.max_brisque:
        reasons.append(f"low BRISQUE quality ({r['brisque']:.1f} > {rules.max_brisque})")
    if rules.reject_faces and r.get("face_confidence", 0.0) >= rules.min_face_confidence:
        reasons.append(f"face detected (confidence {r['face_confidence']:.2f})")
    return reasons
