"""Blind estimation of a uniform blur kernel (camera-shake PSF) from one blurry image.

A faithful re-implementation of the L0-gradient blind deconvolution of Pan, Hu, Su & Yang (2014)
as analysed by Anger, Facciolo & Delbracio (2019), with the edge selection of Cho & Lee (2009):

* coarse-to-fine over a pyramid of ratio ``1/sqrt(2)`` until the kernel is about 5 px; the
  kernel starts as two centre pixels (Pan et al.'s code) at the coarsest level; between levels
  the *latent image* is upsampled (not the kernel) and the new level's first kernel is solved
  from it (Anger et al.);
* at each level ``iterations`` alternations of
  - the latent image ``min_x ||k * x - y||^2 + lam ||grad x||_0`` by half-quadratic splitting
    (hard-thresholded gradients, closed-form FFT solve, ``beta`` doubling from ``2 lam`` to 1e5),
    on an edge-tapered copy of ``y``; ``lam`` starts at 4e-3 and shrinks by 1.1 per iteration
    down to 1e-4;
  - salient-edge selection (Cho & Lee): the latent gradients whose squared magnitude is above a
    threshold that keeps at least ``max(20 k, 10)`` pixels in each of 4 orientation bins; the
    threshold is lowered by 1.1 per iteration;
  - the kernel: ``min_k ||M (grad x * k - grad y)||^2 + gamma ||k||^2`` (``gamma = 2``, absolute)
    on the ``k x k`` support by conjugate gradients from a uniform kernel; the mask ``M`` keeps
    only the blurry pixels whose whole footprint lies inside the image (no wrap-around; Perrone
    & Favaro 2014); then two rounds of iterative support detection (Xu & Jia 2010: the taps
    below ``0.05 max`` are penalised and the kernel re-solved); finally values below
    ``0.05 max`` and 8-connected components with less than 10 % of the mass are removed;
* the kernel is re-centred on its centroid with sub-pixel accuracy after every level;
* a second phase (Xu & Jia 2010) re-solves the kernel twice at the finest level from a
  hyper-Laplacian deconvolution (Krishnan & Fergus 2009) using all its gradients;
* the kernel size is found per image: the coarsest level starts from the largest size allowed
  and each later level shrinks the support to the extent found so far (x 1.25 + 4 px); the
  result is cropped to its extent;
* levels larger than ``max_side`` are estimated on a centred window (bounded cost).

References:
    J. Pan, Z. Hu, Z. Su, M.-H. Yang, "Deblurring Text Images via L0-Regularized Intensity and
    Gradient Prior", CVPR 2014.
    J. Anger, G. Facciolo, M. Delbracio, "Blind Image Deblurring using the l0 Gradient Prior",
    IPOL 9 (2019).
    S. Cho, S. Lee, "Fast Motion Deblurring", SIGGRAPH Asia 2009.
    D. Perrone, P. Favaro, "Total Variation Blind Deconvolution: The Devil is in the Details",
    CVPR 2014.
    L. Xu, J. Jia, "Two-Phase Kernel Estimation for Robust Motion Deblurring", ECCV 2010.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from deblurkit.kernel_aware.deconv import pad_for_deconv, psf2otf
from deblurkit.errors import DeblurkitError

__all__ = [
    "EstimatorParams",
    "KernelEstimate",
    "center_kernel",
    "estimate_kernel",
    "estimate_kernel_candidates",
    "CANDIDATES",
    "kernel_extent",
    "prune_kernel",
]

RATIO = float(np.sqrt(0.5))
"""Image scale between pyramid levels."""


@dataclass(frozen=True)
class EstimatorParams:
    """Settings of :func:`estimate_kernel` (published values unless stated)."""

    lam: float = 4e-3
    """Initial weight of the L0 gradient prior of the latent image (Pan et al. 2014)."""
    lam_min: float = 1e-4
    """Floor of ``lam`` (divided by 1.1 per iteration)."""
    gamma: float = 2.0
    """Tikhonov weight of the kernel least squares (absolute, gradients in [0, 1] units)."""
    iterations: int = 5
    """Latent/kernel alternations per pyramid level."""
    cg_iterations: int = 20
    """Conjugate-gradient steps per kernel solve."""
    min_kernel: int = 5
    """Kernel size at the coarsest level, px."""
    max_kernel_size: int = 45
    """Largest kernel when the size is found per image, px (odd)."""
    prune: float = 0.05
    """Kernel values below ``prune * max`` are zeroed after every kernel solve."""
    component_mass: float = 0.1
    """8-connected kernel components holding less than this fraction of the mass are removed."""
    edge_pixels: float = 20.0
    """At least ``max(edge_pixels * k, 10)`` selected gradients per orientation bin."""
    edge_select: bool = True
    """Cho & Lee salient-edge selection (False: all latent gradients)."""
    mask_borders: bool = True
    """Kernel data term on the valid region only."""
    adapt_size: bool = True
    """Shrink the support after each level to the extent found so far plus a margin."""
    isd: int = 2
    """Iterative support detection rounds after each kernel solve (0: none)."""
    refine_rounds: int = 2
    """Final kernel re-solves at the finest level from a hyper-Laplacian deconvolution (0: none)."""
    refine_weight: float = 2e-3
    """Prior weight of that deconvolution (the blind pipeline's noise-free weight)."""
    max_side: int = 640
    """Levels larger than this (px) are estimated on a centred window of this side."""


@dataclass
class KernelEstimate:
    """One kernel estimate and how it was obtained."""

    kernel: np.ndarray
    """``(k, k)`` float32, non-negative, sums to 1, centred."""
    setting: str
    """Name of the setting that produced it."""
    latent: np.ndarray | None = None
    """The last intermediate latent image (finest level), for selectors; None if not kept."""


CANDIDATES: dict[str, dict] = {"default": {}, "no-isd": {"isd": 0}}
"""Settings of :func:`estimate_kernel_candidates` (overrides of :class:`EstimatorParams`): the
default and Pan et al.'s plain prune; the blind pipeline trusts the default only where they agree."""


def _fft():
    import scipy.fft

    return scipy.fft


def _l0_latent(blur: np.ndarray, kernel: np.ndarray, lam: float, *, kappa: float = 2.0,
               beta_max: float = 1e5) -> np.ndarray:
    """``argmin_x ||k * x - y||^2 + lam ||grad x||_0`` by half-quadratic splitting (FFT solves).

    ``blur`` is edge-tapered (:func:`pad_for_deconv`) so the periodic model holds; the result is
    cropped back to ``blur``'s shape.
    """
    fft = _fft()
    padded, (top, left) = pad_for_deconv(blur[..., None], kernel)
    y = padded[..., 0]
    shape = y.shape
    otf = psf2otf(kernel, shape)
    num_data = np.conj(otf) * fft.rfft2(y)
    den_data = np.abs(otf) ** 2
    dx = psf2otf(np.array([[0.0, -1.0, 1.0]]), shape)
    dy = psf2otf(np.array([[0.0], [-1.0], [1.0]]), shape)
    den_grad = np.abs(dx) ** 2 + np.abs(dy) ** 2
    x = y.copy()
    h = np.empty_like(x)
    v = np.empty_like(x)
    dtw = np.empty_like(x)
    beta = 2.0 * lam
    while beta < beta_max:
        # circular forward differences, hard-thresholded (the L0 step)
        np.subtract(x[:, 1:], x[:, :-1], out=h[:, :-1])
        np.subtract(x[:, :1], x[:, -1:], out=h[:, -1:])
        np.subtract(x[1:], x[:-1], out=v[:-1])
        np.subtract(x[:1], x[-1:], out=v[-1:])
        small = (h * h + v * v) < lam / beta
        h[small] = 0.0
        v[small] = 0.0
        # adjoint of the forward difference
        np.subtract(h[:, -1:], h[:, :1], out=dtw[:, :1])
        np.subtract(h[:, :-1], h[:, 1:], out=dtw[:, 1:])
        dtw[:1] += v[-1:] - v[:1]
        dtw[1:] += v[:-1] - v[1:]
        x = fft.irfft2((num_data + beta * fft.rfft2(dtw)) / (den_data + beta * den_grad), s=shape)
        x = x.astype(np.float32)
        beta *= kappa
    return x[top:top + blur.shape[0], left:left + blur.shape[1]]


def _grad_valid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences on the ``(H-1, W-1)`` region where both exist."""
    gx = x[:-1, 1:] - x[:-1, :-1]
    gy = x[1:, :-1] - x[:-1, :-1]
    return gx, gy


def _select_edges(gx: np.ndarray, gy: np.ndarray, ksize: int, threshold: float | None,
                  min_per_bin: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Cho & Lee (2009) salient gradients: keep ``|g|^2 >= t`` with ``t`` such that each of 4
    orientation bins keeps at least ``max(min_per_bin * k, 10)`` pixels (found once per level,
    then lowered by 1.1 per call). Returns the masked gradients and the next threshold."""
    mag2 = gx * gx + gy * gy
    if threshold is None:
        angle = np.arctan2(gy, gx)
        angle = np.where(angle < 0, angle + np.pi, angle)  # orientation in [0, pi)
        bins = np.minimum((angle / (np.pi / 4)).astype(np.int64), 3)
        need = max(min_per_bin * ksize, 10.0)
        threshold = np.inf
        for b in range(4):
            vals = mag2[(bins == b) & (mag2 > 0)]
            if vals.size == 0:
                continue
            n = int(min(need, vals.size))
            t = float(np.partition(vals, vals.size - n)[vals.size - n])
            threshold = min(threshold, t)
        if not np.isfinite(threshold):
            threshold = 0.0
    keep = mag2 >= threshold
    if not keep.any():
        keep = mag2 > 0
    return np.where(keep, gx, 0.0), np.where(keep, gy, 0.0), threshold / 1.1


def _solve_kernel(lx: np.ndarray, ly: np.ndarray, bx: np.ndarray, by: np.ndarray, ksize: int,
                  gamma: float, cg_iterations: int, mask_borders: bool, isd: int = 0,
                  prune: float = 0.05) -> np.ndarray:
    """``min_k sum_d ||M (l_d * k - b_d)||^2 + gamma ||k||^2`` on a ``ksize`` support by CG.

    The latent gradients are zero-padded (no wrap-around). With ``mask_borders`` only the blurry
    gradients whose footprint lies inside the image are compared (``M``); the normal matrix is
    then taken as Toeplitz, the latent autocorrelation over the masked region (exact for the
    centre tap, off by border strips of the kernel's half-width for the others), so every CG step
    is a small convolution instead of full-image FFTs.
    """
    from scipy.signal import fftconvolve

    fft = _fft()
    h, w = lx.shape
    r = ksize // 2
    shape = (fft.next_fast_len(h + 2 * ksize, real=True), fft.next_fast_len(w + 2 * ksize, real=True))
    mask = np.zeros((h, w), np.float32)
    if mask_borders:
        mask[r:h - r, r:w - r] = 1.0
    else:
        mask[:, :] = 1.0
    rhs_f = 0.0
    gram_f = 0.0
    for l, b in ((lx, bx), (ly, by)):
        fl = fft.rfft2(l, s=shape)
        rhs_f = rhs_f + np.conj(fl) * fft.rfft2(b * mask, s=shape)
        gram_f = gram_f + np.conj(fft.rfft2(l * mask, s=shape)) * fl
    # correlation at lag s sits at index s (mod shape); kernel tap q <-> lag q - r
    rhs = np.roll(fft.irfft2(rhs_f, s=shape), (r, r), axis=(0, 1))[:ksize, :ksize].astype(np.float64)
    lag = ksize - 1
    gram = np.roll(fft.irfft2(gram_f, s=shape), (lag, lag), axis=(0, 1))[:2 * lag + 1, :2 * lag + 1]
    gram = 0.5 * (gram + gram[::-1, ::-1]).astype(np.float64)

    outside = np.zeros((ksize, ksize))

    def apply(k: np.ndarray) -> np.ndarray:
        return fftconvolve(gram, k, mode="valid") + (gamma + outside) * k

    k = _cg(apply, rhs, np.full((ksize, ksize), 1.0 / (ksize * ksize)), cg_iterations)
    for _ in range(isd):
        # Iterative support detection (Xu & Jia 2010): penalise the taps outside the support.
        scale = float(np.abs(gram).max())
        outside = np.where(k > prune * k.max(), 0.0, 0.05 * scale)
        k = _cg(apply, rhs, k, cg_iterations)
    return k


def _cg(apply: Callable[[np.ndarray], np.ndarray], rhs: np.ndarray, k: np.ndarray, iterations: int) -> np.ndarray:
    k = k.copy()
    res = rhs - apply(k)
    p = res.copy()
    rs = float((res * res).sum())
    for _ in range(iterations):
        ap = apply(p)
        denom = float((p * ap).sum())
        if denom <= 0 or rs < 1e-20:
            break
        a = rs / denom
        k += a * p
        res -= a * ap
        rs_new = float((res * res).sum())
        p = res + (rs_new / rs) * p
        rs = rs_new
    return k


def prune_kernel(kernel: np.ndarray, *, rel_threshold: float = 0.05, component_mass: float = 0.1) -> np.ndarray:
    """Non-negativity, ``rel_threshold * max`` cut, weak-component removal, normalisation.

    Args:
        kernel: raw kernel ``(k, k)``.
        rel_threshold: values below this fraction of the maximum are zeroed (Pan et al.: 0.05).
        component_mass: 8-connected components with less than this fraction of the mass are
            removed (the strongest one always stays).

    Returns:
        float64 kernel summing to 1 (a centred delta if nothing positive is left).
    """
    from scipy import ndimage

    k = np.maximum(np.asarray(kernel, dtype=np.float64), 0.0)
    if not np.isfinite(k).all() or k.max() <= 0:
        out = np.zeros_like(k, dtype=np.float64)
        out[k.shape[0] // 2, k.shape[1] // 2] = 1.0
        return out
    k[k < rel_threshold * k.max()] = 0.0
    k /= k.sum()
    labels, n = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if n > 1:
        mass = ndimage.sum(k, labels, index=np.arange(1, n + 1))
        keep = np.zeros(n + 1, bool)
        keep[1:] = mass >= component_mass
        keep[1 + int(np.argmax(mass))] = True
        k[~keep[labels]] = 0.0
    return k / k.sum()


def center_kernel(kernel: np.ndarray) -> np.ndarray:
    """Shift ``kernel`` so its centroid sits on the centre pixel, with sub-pixel accuracy.

    The whole-pixel part is an exact shift; the remaining fraction (< 0.5 px) is a bilinear
    shift, which moves the centroid exactly and keeps the kernel non-negative.
    """
    from scipy import ndimage

    k = np.asarray(kernel, dtype=np.float64)
    total = k.sum()
    if total <= 0:
        return k
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    sy = k.shape[0] // 2 - (k * yy).sum() / total
    sx = k.shape[1] // 2 - (k * xx).sum() / total
    iy, ix = round(sy), round(sx)
    out = ndimage.shift(k, (iy, ix), order=0, mode="constant", cval=0.0)
    fy, fx = sy - iy, sx - ix
    if abs(fy) > 1e-3 or abs(fx) > 1e-3:
        out = np.maximum(ndimage.shift(out, (fy, fx), order=1, mode="constant", cval=0.0), 0.0)
    s = out.sum()
    return out / s if s > 0 else k


def kernel_extent(kernel: np.ndarray, *, rel: float = 0.05) -> int:
    """Side of the smallest centred square holding every value above ``rel * max``, px."""
    k = np.asarray(kernel)
    ys, xs = np.nonzero(k > rel * k.max())
    if ys.size == 0:
        return 1
    c = k.shape[0] // 2
    half = int(max(np.abs(ys - c).max(), np.abs(xs - c).max()))
    return 2 * half + 1


def _odd(n: float) -> int:
    n = int(np.ceil(n))
    return n if n % 2 == 1 else n + 1


def _level_sizes(kernel_size: int, min_kernel: int) -> list[tuple[float, int]]:
    """(image scale, kernel size) per level, coarse to fine (Pan et al.'s schedule)."""
    levels = max(int(np.floor(np.log(min_kernel / kernel_size) / np.log(RATIO))), 0) + 1
    out = []
    for s in range(levels - 1, -1, -1):
        scale = RATIO ** s
        out.append((scale, max(_odd(kernel_size * scale), 3)))
    return out


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = shape
    if (h, w) == img.shape:
        return img.astype(np.float32)
    interp = cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (w, h), interpolation=interp)


def _window(shape: tuple[int, int], side: int, center: tuple[float, float]) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of a window of at most ``side`` px around ``center`` (relative)."""
    h, w = shape
    wh, ww = min(h, side), min(w, side)
    y0 = int(np.clip(round(center[0] * h - wh / 2), 0, h - wh))
    x0 = int(np.clip(round(center[1] * w - ww / 2), 0, w - ww))
    return y0, y0 + wh, x0, x0 + ww


def _check_input(gray_linear: np.ndarray, kernel_size: int | None) -> np.ndarray:
    g = np.asarray(gray_linear, dtype=np.float32)
    if g.ndim != 2:
        raise DeblurkitError(f"estimate_kernel expects a 2-D luminance image, got shape {g.shape}")
    if not np.isfinite(g).all():
        raise DeblurkitError("estimate_kernel: the image contains NaN or infinite values")
    if kernel_size is not None and kernel_size < 3:
        raise DeblurkitError(f"kernel_size must be >= 3, got {kernel_size}")
    ks = 3 if kernel_size is None else kernel_size
    if min(g.shape) < 2 * ks + 2 or min(g.shape) < 16:
        raise DeblurkitError(f"image {g.shape[1]}x{g.shape[0]} is too small for kernel_size {ks}")
    return g


def _kernel_step(x: np.ndarray, by_x: np.ndarray, by_y: np.ndarray, ks: int, threshold: float | None,
                 p: EstimatorParams) -> tuple[np.ndarray, float | None]:
    """Edge selection on the latent ``x`` and one kernel solve; returns the pruned kernel and
    the next edge threshold."""
    lx, ly = _grad_valid(x)
    if p.edge_select:
        lx, ly, threshold = _select_edges(lx, ly, ks, threshold, p.edge_pixels)
    k = _solve_kernel(lx, ly, by_x, by_y, ks, p.gamma, p.cg_iterations, p.mask_borders, p.isd, p.prune)
    return prune_kernel(k, rel_threshold=p.prune, component_mass=p.component_mass), threshold


def _upsample_latent(latent: np.ndarray, prev_region: tuple[float, float, float, float],
                     region: tuple[float, float, float, float], shape: tuple[int, int],
                     level_shape: tuple[int, int]) -> np.ndarray:
    """The previous level's latent image resampled onto this level's window (bilinear)."""
    import cv2

    py0, py1, px0, px1 = prev_region
    hs, ws = level_shape
    ph, pw = latent.shape
    sy = ((region[0] + (np.arange(shape[0]) + 0.5) / hs) - py0) / (py1 - py0) * ph - 0.5
    sx = ((region[2] + (np.arange(shape[1]) + 0.5) / ws) - px0) / (px1 - px0) * pw - 0.5
    mx, my = np.meshgrid(sx.astype(np.float32), sy.astype(np.float32))
    return cv2.remap(latent.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _estimate(g: np.ndarray, kernel_size: int, adapt: bool, p: EstimatorParams,
              progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, np.ndarray]:
    """The coarse-to-fine loop; returns the kernel (``kernel_size`` square) and the last latent."""
    levels = _level_sizes(kernel_size, p.min_kernel)
    lam = p.lam
    latent: np.ndarray | None = None
    prev_region = (0.0, 1.0, 0.0, 1.0)  # the latent's window, in relative coordinates
    ks_cap = kernel_size
    for li, (scale, ks_level) in enumerate(levels):
        ks = min(ks_level, ks_cap)
        hs, ws = max(round(g.shape[0] * scale), 2 * ks + 2), max(round(g.shape[1] * scale), 2 * ks + 2)
        y0, y1, x0, x1 = _window((hs, ws), p.max_side, (0.5, 0.5))
        y = _resize(g, (hs, ws))[y0:y1, x0:x1]
        region = (y0 / hs, y1 / hs, x0 / ws, x1 / ws)
        by_x, by_y = _grad_valid(y)
        if latent is None:
            # Pan et al.'s start: two centre pixels.
            k = np.zeros((ks, ks))
            k[ks // 2, ks // 2 - 1:ks // 2 + 1] = 0.5
        else:
            # Upsample the latent image, not the kernel (Anger et al.), and solve the kernel from it.
            x = _upsample_latent(latent, prev_region, region, y.shape, (hs, ws))
            k, _ = _kernel_step(x, by_x, by_y, ks, None, p)
        threshold: float | None = None
        x = y
        for _ in range(p.iterations):
            x = np.maximum(_l0_latent(y, k.astype(np.float32), lam), 0.0)
            k, threshold = _kernel_step(x, by_x, by_y, ks, threshold, p)
            lam = max(lam / 1.1, p.lam_min)
        k = center_kernel(k)
        latent, prev_region = x, region
        if adapt and li + 1 < len(levels):
            # Support found so far, carried to the next level with a margin.
            ext = kernel_extent(k, rel=p.prune) * levels[li + 1][0] / scale
            ks_cap = max(_odd(1.25 * ext + 4), p.min_kernel)
        if progress is not None:
            progress(li + 1, len(levels))
    assert latent is not None
    if p.refine_rounds > 0:
        from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv

        # Second phase (Xu & Jia 2010; Cho & Lee 2009): re-solve the kernel at the finest level
        # from a natural-image deconvolution with all its gradients, no edge selection.
        refine = replace(p, edge_select=False)
        for _ in range(p.refine_rounds):
            latent = hyper_laplacian_deconv(y, k, weight=p.refine_weight)
            k, _ = _kernel_step(latent, by_x, by_y, k.shape[0], None, refine)
            k = center_kernel(k)
    k = center_kernel(prune_kernel(k, rel_threshold=p.prune, component_mass=p.component_mass))
    return k.astype(np.float32), latent


def _crop_to_extent(k: np.ndarray, rel: float) -> np.ndarray:
    ext = max(kernel_extent(k, rel=rel), 3)
    c = k.shape[0] // 2
    k = k[c - ext // 2:c + ext // 2 + 1, c - ext // 2:c + ext // 2 + 1]
    return (k / k.sum()).astype(np.float32)


def estimate_kernel_candidates(
    gray_linear: np.ndarray,
    *,
    kernel_size: int | None = None,
    params: EstimatorParams | None = None,
    settings: dict[str, dict] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[KernelEstimate]:
    """Several estimates of the same kernel, one per setting (for a selector or a gate).

    Args:
        gray_linear: as :func:`estimate_kernel`.
        kernel_size: as :func:`estimate_kernel`.
        params: base settings.
        settings: name -> overrides of ``params`` fields; default :data:`CANDIDATES`.
        progress: optional ``progress(done, total)`` over all levels of all candidates.

    Returns:
        one :class:`KernelEstimate` per setting, in order, each with its finest latent image.
    """
    base = params or EstimatorParams()
    g = _check_input(gray_linear, kernel_size)
    settings = CANDIDATES if settings is None else settings
    out = []
    n = len(settings)
    for i, (name, overrides) in enumerate(settings.items()):
        p = replace(base, **overrides)
        adapt = kernel_size is None and p.adapt_size
        ks = kernel_size if kernel_size is not None else min(p.max_kernel_size, max(min(g.shape) // 4, 5))

        def tick(done: int, total: int, i: int = i) -> None:
            if progress is not None:
                progress(i * total + done, n * total)

        k, latent = _estimate(g, ks | 1, adapt, p, tick)
        out.append(KernelEstimate(_crop_to_extent(k, p.prune) if adapt else k, name, latent))
    return out


def estimate_kernel(
    gray_linear: np.ndarray,
    *,
    kernel_size: int | None = None,
    params: EstimatorParams | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Estimate a uniform blur kernel from a single blurry luminance image.

    Args:
        gray_linear: blurry image ``(H, W)``, linear light, about [0, 1] (divide a dark photo by
            a high percentile first, e.g. :func:`deblurkit.color.working_scale`: the prior
            weights are absolute).
        kernel_size: largest blur to model, px (odd; even values are rounded up). None: found per
            image, up to ``params.max_kernel_size`` (and a quarter of the short side).
        params: :class:`EstimatorParams`.
        progress: optional ``progress(done, total)`` over pyramid levels.

    Returns:
        ``(k, k)`` float32 kernel, non-negative, summing to 1, centroid on the centre pixel;
        ``k`` is ``kernel_size`` or, when found per image, the extent found.

    Raises:
        DeblurkitError: not a 2-D finite image, or too small for the kernel size.
    """
    return estimate_kernel_candidates(gray_linear, kernel_size=kernel_size, params=params,
                                      settings={"default": {}}, progress=progress)[0].kernel
