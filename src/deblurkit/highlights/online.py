"""Online restoration of clipped highlights: one reference frame, chosen as the clip goes.

For each frame: linearise (invert the tone curve), detect the clipped regions, warp the reference
onto it (:mod:`deblurkit.highlights.align`), bring the reference to the current exposure with the
estimated exposure ratio, restore, then decide whether the current frame replaces the reference.
Only the reference is kept between frames, so memory does not grow with the clip.

Restorers (``(StepInputs) -> linear frame``): :func:`restore_none` (the clipped frame as is),
:func:`restore_copy` (exposure-normalised warped reference pasted into the clipped regions,
weighted by alignment confidence), or a network (:mod:`deblurkit.highlights.net`).

Reference rules: ``previous`` (always the previous frame), ``first`` (never update),
``interval`` (every k-th frame), ``oracle`` (greedy with ground truth: each frame keeps the
better of the current reference and the previous frame, scored by mu-law PSNR in the clipped
region), or any callable policy over :class:`StepFeatures`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from deblurkit.highlights.align import (
    AlignMethod,
    clipped_mask_srgb8,
    confidence_map_linear,
    dis_flow_srgb8,
    estimate_homography_srgb8,
    exposure_ratio_linear,
    warp_reference,
    well_exposed_linear,
)
from deblurkit.highlights.camera import ToneCurve, linearize_srgb8
from deblurkit.highlights.metrics import HDR_PEAK, psnr_mulaw_masked

ReferenceRule = Literal["previous", "first", "interval", "oracle"]
REFERENCE_RULES: tuple[str, ...] = ("previous", "first", "interval", "oracle")


@dataclass(frozen=True)
class Reference:
    """The kept reference frame."""

    index: int
    srgb8: np.ndarray
    linear: np.ndarray
    clipped: np.ndarray
    rotation: np.ndarray | None = None


@dataclass(frozen=True)
class StepInputs:
    """What a restorer sees for one frame (all ``(H, W, ...)`` in the current frame's geometry).

    Attributes:
        current: ``(H, W, 3)`` float32 linear current frame in [0, 1] (1 = clipping).
        clipped: ``(H, W)`` bool clipped mask of the current frame.
        reference: ``(H, W, 3)`` float32 warped reference in current-frame units, or None.
        confidence: ``(H, W)`` float32 alignment confidence in [0, 1] (zeros without reference).
        reference_clipped: ``(H, W)`` bool, where the warped reference is clipped or invalid.
    """

    current: np.ndarray
    clipped: np.ndarray
    reference: np.ndarray | None
    confidence: np.ndarray
    reference_clipped: np.ndarray


@dataclass(frozen=True)
class StepFeatures:
    """Features of the (current frame, reference) pair for a reference-selection policy.

    Attributes:
        index: frame number.
        newly_well_exposed: fraction of the frame well exposed now but clipped (or unseen) in the reference.
        log2_ratio: log2 of the exposure ratio current / reference (0 without a reference).
        age: frames since the reference was taken.
        confidence: mean alignment confidence over the valid warp.
        clipped_fraction: fraction of the current frame that is clipped.
        has_reference: False on the first frame or when the reference could not be used.
    """

    index: int
    newly_well_exposed: float
    log2_ratio: float
    age: int
    confidence: float
    clipped_fraction: float
    has_reference: bool

    def vector(self) -> np.ndarray:
        """``(5,)`` float64 of order-1 features: 20 x newly well exposed, log2 ratio, age / 10,
        confidence, 20 x clipped fraction."""
        return np.array([20.0 * self.newly_well_exposed, self.log2_ratio, self.age / 10.0, self.confidence,
                         20.0 * self.clipped_fraction])


@dataclass(frozen=True)
class StepResult:
    """One restored frame."""

    index: int
    output: np.ndarray
    """``(H, W, 3)`` float32 linear, current-frame units (may exceed 1 in restored highlights)."""
    clipped: np.ndarray
    reference_index: int | None
    features: StepFeatures
    inputs: StepInputs


Restorer = Callable[[StepInputs], np.ndarray]
Policy = Callable[[StepFeatures], bool]


def restore_none(inputs: StepInputs) -> np.ndarray:
    """The clipped frame unchanged (the no-fill baseline)."""
    return inputs.current


def restore_copy(inputs: StepInputs) -> np.ndarray:
    """Paste the exposure-normalised warped reference into the clipped regions.

    ``out = cur + clipped * conf * (max(cur, ref) - cur)``: a clipped value is a lower bound, so
    the larger of the two is kept, weighted by the alignment confidence.
    """
    if inputs.reference is None:
        return inputs.current
    w = (inputs.clipped * inputs.confidence)[..., None].astype(np.float32)
    return inputs.current + w * (np.maximum(inputs.current, inputs.reference) - inputs.current)


def make_reference(index: int, srgb8: np.ndarray, tone_curve: ToneCurve, rotation: np.ndarray | None = None,
                   linear: np.ndarray | None = None) -> Reference:
    """A :class:`Reference` from an 8-bit frame."""
    lin = linearize_srgb8(srgb8, tone_curve) if linear is None else linear
    return Reference(index, srgb8, lin, clipped_mask_srgb8(srgb8, dilate_px=1), rotation)


def prepare_inputs(
    cur_srgb8: np.ndarray,
    cur_linear: np.ndarray,
    ref: Reference | None,
    *,
    align: AlignMethod,
    rotation: np.ndarray | None = None,
    k: np.ndarray | None = None,
    index: int = 0,
) -> tuple[StepInputs, StepFeatures]:
    """Align the reference to the current frame and measure the policy features."""
    clipped = clipped_mask_srgb8(cur_srgb8, dilate_px=1)
    h, w = clipped.shape
    none = StepInputs(cur_linear, clipped, None, np.zeros((h, w), np.float32), np.ones((h, w), bool))
    feats = StepFeatures(index, 0.0, 0.0, 0, 0.0, float(clipped.mean()), False)
    if ref is None:
        return none, feats
    if align == "true":
        if ref.rotation is None or rotation is None or k is None:
            raise ValueError("align='true' needs the rotations and intrinsics of both frames")
        from deblurkit.highlights.video import frame_homography

        warped = warp_reference(ref.linear, ref.clipped, homography=frame_homography(ref.rotation, rotation, k))
    elif align == "homography":
        hom = estimate_homography_srgb8(ref.srgb8, cur_srgb8)
        if hom is None:
            return none, feats
        warped = warp_reference(ref.linear, ref.clipped, homography=hom)
    elif align == "flow":
        warped = warp_reference(ref.linear, ref.clipped, flow=dis_flow_srgb8(ref.srgb8, cur_srgb8))
    else:
        raise ValueError(f"unknown alignment {align!r}; valid: true, homography, flow")
    ratio = exposure_ratio_linear(cur_linear, warped.linear, warped.valid & ~warped.clipped & ~clipped)
    if ratio is None:
        return none, feats
    ref_norm = warped.linear * np.float32(ratio)
    conf = confidence_map_linear(cur_linear, ref_norm, warped.valid)
    newly = float((well_exposed_linear(cur_linear) & warped.clipped).mean())
    valid_conf = float(conf[warped.valid].mean()) if warped.valid.any() else 0.0
    inputs = StepInputs(cur_linear, clipped, ref_norm, conf, warped.clipped)
    return inputs, StepFeatures(index, newly, float(np.log2(ratio)), index - ref.index, valid_conf,
                                float(clipped.mean()), True)


def rule_policy(rule: ReferenceRule, *, interval: int = 8) -> Policy:
    """A fixed rule as a policy: should the current frame become the reference?"""
    if rule == "previous":
        return lambda f: True
    if rule == "first":
        return lambda f: False
    if rule == "interval":
        return lambda f: f.index % interval == 0
    raise ValueError(f"rule {rule!r} is not a policy over features; valid: previous, first, interval")


def run_online(
    frames: Iterable[Any],
    restorer: Restorer,
    policy: Policy | Literal["oracle"],
    *,
    align: AlignMethod = "homography",
    tone_curve: ToneCurve = "srgb",
    peak: float = HDR_PEAK,
) -> Iterator[StepResult]:
    """Restore a clip frame by frame, keeping one reference frame.

    Args:
        frames: items with ``srgb8`` ``(H, W, 3)`` uint8; with ``rotation`` and ``k`` for
            ``align="true"``, with ``truth_linear`` for the oracle
            (:class:`deblurkit.highlights.video.VideoFrame` has all of them).
        restorer: :func:`restore_none`, :func:`restore_copy` or a network restorer.
        policy: a :data:`Policy` (e.g. :func:`rule_policy`) or ``"oracle"``.
        align: how the reference is aligned.
        tone_curve: the camera's tone curve (inverted to linearise frames).
        peak: the oracle's mu-law PSNR peak.

    Yields:
        :class:`StepResult` per frame, in order.
    """
    ref: Reference | None = None
    prev: Reference | None = None
    for i, fr in enumerate(frames):
        srgb8 = fr.srgb8
        rot, k = getattr(fr, "rotation", None), getattr(fr, "k", None)
        cur_lin = linearize_srgb8(srgb8, tone_curve)
        candidates = [ref]
        if policy == "oracle" and prev is not None and (ref is None or prev.index != ref.index):
            candidates.append(prev)
        best: tuple[float, StepInputs, StepFeatures, np.ndarray, Reference | None] | None = None
        for cand in candidates:
            inputs, feats = prepare_inputs(srgb8, cur_lin, cand, align=align, rotation=rot, k=k, index=i)
            out = restorer(inputs)
            if len(candidates) == 1:
                best = (0.0, inputs, feats, out, cand)
                break
            clip0 = clipped_mask_srgb8(srgb8)
            score = psnr_mulaw_masked(out, fr.truth_linear, clip0, peak=peak) if clip0.any() else 0.0
            if best is None or score > best[0]:
                best = (score, inputs, feats, out, cand)
        assert best is not None
        _, inputs, feats, out, used = best
        yield StepResult(i, out, inputs.clipped, None if used is None or not feats.has_reference else used.index,
                         feats, inputs)
        this = make_reference(i, srgb8, tone_curve, rot, cur_lin)
        if policy == "oracle":
            ref, prev = (used if used is not None else this), this
        elif ref is None or policy(feats):
            ref = this
