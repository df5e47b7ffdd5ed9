"""The RealBlur evaluation protocol (Rim et al., ECCV 2020), re-implemented with its settings explicit.

RealBlur's ground truth is not pixel-aligned with the blurred input, so the official script
(``evaluation_RealBlur_ecc.py`` in rimchang/RealBlur) aligns each output to its ground truth
before scoring. The steps:

1. intensity matching: ``zs = (Σ x·z / Σ z·z) · z`` (x = ground truth, z = output);
2. ``cv2.findTransformECC`` with ``MOTION_HOMOGRAPHY``, identity initialisation, 100 iterations,
   eps 0, ``gaussFiltSize=5``, on the grayscale ground truth vs the grayscale matched output;
3. warp ``zs`` with ``INTER_CUBIC + WARP_INVERSE_MAP`` and ``BORDER_REFLECT``; the validity mask is
   a warped ones image (``INTER_NEAREST``, ``BORDER_CONSTANT`` 0); output and ground truth are
   both multiplied by the mask;
4. PSNR with the MSE over valid pixels only: ``10 log10(1 / (Σ err² / Σ mask))``;
5. SSIM map (scikit-image settings, see :mod:`deblurkit.eval.metrics`) times the mask, 5-px
   border cropped, summed per channel over the mask sum, averaged over channels.

The official script reads the output from an 8-bit PNG, so by default the output is quantised
to 8 bits first (``quantize_8bit=True``). When ECC fails to converge (OpenCV raises), the
identity warp is used and the result says ``aligned=False`` instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deblurkit.errors import DeblurkitError
from deblurkit.eval.metrics import DEFAULT_SSIM, ssim_map

#: every setting of the protocol, written into evaluation reports
PROTOCOL_SETTINGS: dict[str, Any] = {
    "intensity_matching": "zs = (sum(x*z) / sum(z*z)) * z",
    "ecc_motion": "MOTION_HOMOGRAPHY",
    "ecc_init": "identity",
    "ecc_iterations": 100,
    "ecc_eps": 0.0,
    "ecc_gauss_filt_size": 5,
    "ecc_input": "grayscale (cv2.COLOR_RGB2GRAY) of ground truth vs matched output",
    "warp": "INTER_CUBIC + WARP_INVERSE_MAP, BORDER_REFLECT",
    "mask": "warped ones, INTER_NEAREST + WARP_INVERSE_MAP, BORDER_CONSTANT 0",
    "psnr": "10*log10(1 / (sum(err^2) / sum(mask)))",
    "ssim": {**DEFAULT_SSIM.as_dict(), "masked": True, "data_range": 1.0},
    "ecc_failure": "identity warp, flagged aligned=False",
}


@dataclass
class RealBlurScore:
    """Result of :func:`realblur_psnr_ssim`."""

    psnr: float
    ssim: float
    aligned: bool
    """False when ECC did not converge and the identity warp was used."""
    warp: np.ndarray = field(repr=False)
    """The 3x3 homography found by ECC (float32)."""
    cc: float
    """ECC correlation coefficient (nan when ECC failed)."""


def align_realblur(output: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool, float]:
    """Steps 1–3 of the protocol: intensity matching, ECC homography, warp and mask.

    Args:
        output: ``(H, W, 3)`` float32 sRGB in [0, 1] (the restored image).
        gt: ``(H, W, 3)`` float32 sRGB in [0, 1].

    Returns:
        ``(warped_output * mask, gt * mask, mask, warp, aligned, cc)``; images and mask are
        ``(H, W, 3)`` float32.
    """
    import cv2

    z = np.ascontiguousarray(output, dtype=np.float32)
    x = np.ascontiguousarray(gt, dtype=np.float32)
    denom = float(np.sum(z.astype(np.float64) ** 2))
    scale = float(np.sum(x.astype(np.float64) * z)) / denom if denom > 0 else 1.0
    zs = (scale * z).astype(np.float32)
    warp = np.eye(3, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 0)
    aligned, cc = True, float("nan")
    try:
        cc, warp = cv2.findTransformECC(
            cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.cvtColor(zs, cv2.COLOR_RGB2GRAY),
            warp, cv2.MOTION_HOMOGRAPHY, criteria, None, 5,
        )
        if not np.all(np.isfinite(warp)):
            raise cv2.error("non-finite homography")
    except cv2.error:
        aligned, warp = False, np.eye(3, 3, dtype=np.float32)
    h, w = x.shape[:2]
    zr = cv2.warpPerspective(zs, warp, (w, h), flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
    cr = cv2.warpPerspective(np.ones_like(zs, dtype=np.float32), warp, (w, h),
                             flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return zr * cr, x * cr, cr, warp, aligned, float(cc)


def realblur_psnr_ssim(output: np.ndarray, gt: np.ndarray, *, quantize_8bit: bool = True) -> RealBlurScore:
    """Score a restored image against its RealBlur ground truth with the official protocol.

    Args:
        output: ``(H, W, 3)`` float32 sRGB in [0, 1].
        gt: ``(H, W, 3)`` float32 sRGB in [0, 1], same shape.
        quantize_8bit: round the output to 8 bits first, as the official script (which reads
            PNG files) does.

    Returns:
        A :class:`RealBlurScore` (PSNR in dB over the valid warped region, masked SSIM).
    """
    output = np.asarray(output, dtype=np.float32)
    gt = np.asarray(gt, dtype=np.float32)
    if output.shape != gt.shape or output.ndim != 3 or output.shape[2] != 3:
        raise DeblurkitError(f"RealBlur protocol needs two (H,W,3) images of one shape, got {output.shape}, {gt.shape}")
    if quantize_8bit:
        output = np.round(np.clip(output, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0
    zr, xr, cr, warp, aligned, cc = align_realblur(output, gt)
    err = np.sum((xr.astype(np.float64) - zr) ** 2)
    valid = float(np.sum(cr, dtype=np.float64))
    psnr = float("inf") if err == 0 else 10.0 * np.log10(1.0 / (err / valid))
    smap = ssim_map(xr, zr, data_range=1.0)  # the window-valid region = the map less a 5-px border
    r = DEFAULT_SSIM.radius
    crop_mask = cr[r:-r, r:-r, :].astype(np.float64)
    per_channel = (smap * crop_mask).sum(axis=(0, 1)) / np.maximum(crop_mask.sum(axis=(0, 1)), 1e-12)
    return RealBlurScore(psnr=float(psnr), ssim=float(np.mean(per_channel)), aligned=aligned, warp=warp, cc=cc)
