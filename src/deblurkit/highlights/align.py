"""Per-frame measurements: clipped regions, alignment of a reference frame, exposure ratio.

Alignment maps a reference frame onto the current one. ``"true"`` uses the homography known from
the camera rotations (synthetic clips); ``"homography"`` estimates one from ORB features matched
on histogram-equalised grey frames (equalisation makes matching insensitive to the exposure
change) with RANSAC; ``"flow"`` uses OpenCV's DIS optical flow on the same grey frames. The
confidence map comes from photometric agreement of the exposure-normalised warped reference
with the current frame where both are well exposed, spread into the clipped regions by a
normalised Gaussian filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

AlignMethod = Literal["true", "homography", "flow"]
ALIGN_METHODS: tuple[str, ...] = ("true", "homography", "flow")

#: Linear range counted as well exposed (away from noise and from clipping).
WELL_EXPOSED = (0.02, 0.85)


def clipped_mask_srgb8(frame: np.ndarray, *, threshold: int = 250, dilate_px: int = 0) -> np.ndarray:
    """Pixels with any channel at or above ``threshold`` (8-bit), optionally dilated: ``(H, W)`` bool."""
    import cv2

    m = frame.max(axis=2) >= threshold
    if dilate_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
        m = cv2.dilate(m.astype(np.uint8), k) > 0
    return m


def well_exposed_linear(x: np.ndarray, low: float = WELL_EXPOSED[0], high: float = WELL_EXPOSED[1]) -> np.ndarray:
    """Pixels of a linear ``(H, W, 3)`` frame with every channel in ``[low, high]``: ``(H, W)`` bool."""
    return (x.min(axis=2) >= low) & (x.max(axis=2) <= high)


def _grey_equalised(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY))


def estimate_homography_srgb8(ref: np.ndarray, cur: np.ndarray, *, min_inliers: int = 15) -> np.ndarray | None:
    """Homography mapping ``ref`` pixels to ``cur`` pixels from ORB matches + RANSAC; None if unreliable."""
    import cv2

    orb = cv2.ORB_create(nfeatures=1500, fastThreshold=10)
    ka, da = orb.detectAndCompute(_grey_equalised(ref), None)
    kb, db = orb.detectAndCompute(_grey_equalised(cur), None)
    if da is None or db is None or len(ka) < min_inliers or len(kb) < min_inliers:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < min_inliers:
        return None
    src = np.float32([ka[m.queryIdx].pt for m in matches])
    dst = np.float32([kb[m.trainIdx].pt for m in matches])
    hom, inl = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
    if hom is None or inl is None or int(inl.sum()) < min_inliers:
        return None
    return hom


def dis_flow_srgb8(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """DIS optical flow from ``cur`` to ``ref`` ``(H, W, 2)``: ``cur(p)`` matches ``ref(p + flow(p))``."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_grey_equalised(cur), _grey_equalised(ref), None)


@dataclass(frozen=True)
class Warped:
    """A reference frame warped onto the current frame.

    Attributes:
        linear: ``(H, W, 3)`` float32 linear reference in the current frame's geometry (reference
            exposure units; 1 = the reference's clipping level).
        clipped: ``(H, W)`` bool, where the warped reference was clipped.
        valid: ``(H, W)`` bool, where the warp landed inside the reference frame.
        homography: the reference->current homography used (None for flow).
    """

    linear: np.ndarray
    clipped: np.ndarray
    valid: np.ndarray
    homography: np.ndarray | None


def warp_reference(
    ref_linear: np.ndarray,
    ref_clipped: np.ndarray,
    *,
    homography: np.ndarray | None = None,
    flow: np.ndarray | None = None,
) -> Warped:
    """Warp a linear reference (and its clipped mask) onto the current frame.

    Give exactly one of ``homography`` (reference -> current pixels) and ``flow``
    (:func:`dis_flow_srgb8`). Bilinear for values, nearest for masks; outside pixels are invalid.
    """
    import cv2

    h, w = ref_linear.shape[:2]
    ones = np.ones((h, w), np.uint8)
    clip8 = ref_clipped.astype(np.uint8)
    if (homography is None) == (flow is None):
        raise ValueError("give exactly one of homography and flow")
    if homography is not None:
        warp = lambda img, interp: cv2.warpPerspective(img, homography, (w, h), flags=interp,
                                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    else:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        mx, my = xs + flow[..., 0], ys + flow[..., 1]
        warp = lambda img, interp: cv2.remap(img, mx, my, interp,
                                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    lin = warp(np.ascontiguousarray(ref_linear, np.float32), cv2.INTER_LINEAR)
    valid = warp(ones, cv2.INTER_NEAREST) > 0
    clipped = warp(clip8, cv2.INTER_NEAREST) > 0
    return Warped(lin, clipped | ~valid, valid, homography)


def exposure_ratio_linear(cur_linear: np.ndarray, ref_linear: np.ndarray, usable: np.ndarray,
                          *, min_pixels: int = 50) -> float | None:
    """Robust ratio ``cur / ref`` of two aligned linear frames (median over pixels well exposed in both).

    Args:
        cur_linear: ``(H, W, 3)`` current frame, linear.
        ref_linear: ``(H, W, 3)`` warped reference, linear.
        usable: ``(H, W)`` bool, pixels to consider (e.g. valid warp).
        min_pixels: fewer usable well-exposed pixels gives None.

    Returns:
        The ratio (multiply the reference by it to express it in the current frame's units), or None.
    """
    both = usable & well_exposed_linear(cur_linear) & well_exposed_linear(ref_linear)
    if int(both.sum()) < min_pixels:
        return None
    from deblurkit.color import luminance

    yc = luminance(cur_linear[both])
    yr = luminance(ref_linear[both])
    return float(np.exp(np.median(np.log(yc) - np.log(yr))))


def confidence_map_linear(
    cur_linear: np.ndarray, ref_normalised: np.ndarray, valid: np.ndarray, *, tolerance: float = 0.25,
    sigma_px: float = 6.0, noise_floor: float = 0.03
) -> np.ndarray:
    """Alignment confidence in [0, 1] ``(H, W)``.

    Both frames are smoothed (Gaussian, 1 px) to damp noise; where both are well exposed the
    relative difference ``d = mean_c |cur - ref| / (max(cur, ref) + noise_floor)`` gives
    ``exp(-(d / tolerance)^2)``; elsewhere (clipped or dark pixels) the Gaussian-weighted average
    of the measured neighbours (normalised convolution). Zero outside ``valid``.
    """
    import cv2

    measurable = valid & well_exposed_linear(cur_linear) & well_exposed_linear(ref_normalised)
    a = cv2.GaussianBlur(np.ascontiguousarray(cur_linear, np.float32), (0, 0), 1.0)
    b = cv2.GaussianBlur(np.ascontiguousarray(ref_normalised, np.float32), (0, 0), 1.0)
    d = (np.abs(a - b) / (np.maximum(a, b) + noise_floor)).mean(axis=2)
    agree = np.where(measurable, np.exp(-(d / tolerance) ** 2), 0.0).astype(np.float32)
    num = cv2.GaussianBlur(agree, (0, 0), sigma_px)
    den = cv2.GaussianBlur(measurable.astype(np.float32), (0, 0), sigma_px)
    spread = np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
    conf = np.where(measurable, agree, spread)
    return (conf * valid).astype(np.float32)
