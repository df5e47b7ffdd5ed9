"""Blind estimation of a uniform blur kernel (camera-shake PSF) from one blurry image.

The method follows the L0-gradient family of blind deconvolution (Xu, Zheng & Jia 2013;
Pan, Hu, Su & Yang 2014), written from the papers' equations:

* coarse-to-fine over an image pyramid (ratio ``1/sqrt(2)``), the kernel from each level is
  upsampled to initialise the next;
* at each level, alternate ``iterations`` times between
  - an intermediate latent image with an L0 gradient prior,
    ``min_x ||k * x - y||^2 + lam ||grad x||_0``, by half-quadratic splitting (hard
    thresholding of gradients, closed-form FFT solve for ``x``, ``beta`` doubling), and
  - the kernel, by least squares in the gradient domain restricted to the ``k x k`` support,
    ``min_k ||grad x * k - grad y||^2 + gamma ||k||^2`` (conjugate gradients with FFT
    products) over the strong latent edges of every orientation (Cho & Lee 2009's selection),
    followed by non-negativity, removal of weak connected components and
    normalisation; ``lam`` shrinks by 1.1 per iteration;
* the kernel is re-centred on its centroid after every level and small values are
  thresholded at the end.

References:
    S. Cho, S. Lee, "Fast Motion Deblurring", SIGGRAPH Asia 2009.
    L. Xu, J. Jia, "Two-Phase Kernel Estimation for Robust Motion Deblurring", ECCV 2010.
    L. Xu, S. Zheng, J. Jia, "Unnatural L0 Sparse Representation for Natural Image
    Deblurring", CVPR 2013.
    J. Pan, Z. Hu, Z. Su, M.-H. Yang, "Deblurring Text Images via L0-Regularized Intensity
    and Gradient Prior", CVPR 2014.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deblurkit.errors import DeblurkitError
from deblurkit.kernel_aware.deconv import (
    circular_diff,
    circular_diff_adjoint,
    pad_for_deconv,
    psf2otf,
    split_solve_spectrum,
)
from deblurkit.kernel_aware.kernels import kernel_centroid_offset, resize_kernel

__all__ = [
    "KernelEstimate",
    "border_crop",
    "center_kernel",
    "clean_kernel",
    "deconvolution_overshoot",
    "estimate_kernel",
    "estimate_kernel_auto",
    "forward_gradients",
    "kernel_connectedness",
    "kernel_extent",
    "kernel_least_squares",
    "kernel_pause_share",
    "kernel_pyramid_sizes",
    "l0_latent",
    "range_overshoot",
    "refit_kernel",
    "select_edges_by_orientation",
    "textured_window",
    "update_kernel",
]


def _fft():
    import scipy.fft

    return scipy.fft


def forward_gradients(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences ``(gx, gy)`` of ``x`` ``(H, W)``, with a zero last column / row (no
    wrap-around gradient): the gradients the kernel step reads."""
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :-1] = x[:, 1:] - x[:, :-1]
    gy[:-1, :] = x[1:, :] - x[:-1, :]
    return gx, gy


def l0_latent(blur: np.ndarray, kernel: np.ndarray, lam: float, *, kappa: float = 2.0,
              beta_max: float = 1e5) -> np.ndarray:
    """Latent image under an L0 gradient prior (half-quadratic splitting, FFT solves).

    Args:
        blur: blurry image ``(H, W)`` float32.
        kernel: current kernel ``(k, k)`` summing to 1.
        lam: weight of the L0 gradient term.
        kappa: growth factor of the splitting weight ``beta`` (from ``2 lam`` to ``beta_max``).

    Returns:
        latent image ``(H, W)`` float32 with piecewise-flat regions and strong edges.
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
    beta = 2.0 * lam
    energy = np.empty_like(x)
    scratch = np.empty_like(x)
    while beta < beta_max:
        h, v = circular_diff(x)
        # In place and by multiplication: a masked assignment costs more than the FFTs.
        np.multiply(h, h, out=energy)
        energy += np.multiply(v, v, out=scratch)
        keep = energy >= lam / beta
        h *= keep
        v *= keep
        spectrum = split_solve_spectrum(circular_diff_adjoint(h, v), beta, num_data, den_data, den_grad)
        x = fft.irfft2(spectrum, s=shape, overwrite_x=True).astype(np.float32, copy=False)
        beta *= kappa
    return x[top:top + blur.shape[0], left:left + blur.shape[1]]


def _otf2psf(otf: np.ndarray, shape: tuple[int, int], ksize: tuple[int, int]) -> np.ndarray:
    full = _fft().irfft2(otf, s=shape)
    kh, kw = ksize
    full = np.roll(full, (kh // 2, kw // 2), axis=(0, 1))
    return full[:kh, :kw]


def select_edges_by_orientation(lx: np.ndarray, ly: np.ndarray, ksize: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the strong latent gradients with every orientation represented (Cho & Lee 2009).

    Gradients fall into 4 orientation bins (0, 45, 90, 135 degrees); the threshold is the largest
    magnitude that still keeps at least ``max(20 * ksize, 10)`` pixels in every bin, so that the
    kernel is constrained across all directions, not only along the image's dominant edges.

    Args:
        lx, ly: horizontal and vertical gradients ``(H, W)`` of the latent image.
        ksize: kernel size in pixels.

    Returns:
        ``(lx, ly)`` with the gradients below the threshold set to 0.
    """
    mag = np.hypot(lx, ly)
    angle = np.mod(np.arctan2(ly, lx), np.pi)
    bins = np.floor((angle + np.pi / 8) / (np.pi / 4)).astype(np.int64) % 4
    need = max(20 * ksize, 10)
    threshold = math.inf
    for b in range(4):
        m = mag[(bins == b) & (mag > 0)]
        if m.size:
            rank = max(m.size - need, 0)  # the need-th largest, or the smallest if fewer
            threshold = min(threshold, float(np.partition(m, rank)[rank]))
    small = mag < (threshold if math.isfinite(threshold) else 0.0)
    return np.where(small, 0.0, lx).astype(np.float32), np.where(small, 0.0, ly).astype(np.float32)


def kernel_least_squares(lx: np.ndarray, ly: np.ndarray, blur: np.ndarray, ksize: int, gamma: float,
                         init: np.ndarray, cg_iters: int = 20) -> np.ndarray:
    """The kernel step: least-squares kernel in the gradient domain on a ``ksize`` support.

    ``min_k ||lx * k - bx||^2 + ||ly * k - by||^2 + reg ||k||^2`` with circular convolution, where
    ``bx``, ``by`` are the blurry image's :func:`forward_gradients` and
    ``reg = gamma * 1e-3 *`` the latent gradients' energy (so ``gamma`` does not depend on the
    image's size or contrast). Unconstrained, by conjugate gradients (``cg_iters``) started from ``init``.

    Args:
        lx, ly: the latent image's selected gradients ``(H, W)`` (:func:`select_edges_by_orientation`).
        blur: the blurry image ``(H, W)``.
        ksize: odd kernel size.
        gamma: Tikhonov weight (relative units).
        init: ``(ksize, ksize)`` start of the iterations.

    Returns:
        ``(ksize, ksize)`` float64 kernel, not clipped or normalised (:func:`clean_kernel` does that).
    """
    fft = _fft()
    bx, by = forward_gradients(blur)
    shape = lx.shape
    flx, fly = fft.rfft2(lx), fft.rfft2(ly)
    m = np.abs(flx) ** 2 + np.abs(fly) ** 2
    b = _otf2psf(np.conj(flx) * fft.rfft2(bx) + np.conj(fly) * fft.rfft2(by), shape, (ksize, ksize))
    # Scale gamma with the gradient energy so it is independent of image size/contrast.
    reg = gamma * float(m.mean()) * 1e-3 + 1e-12
    # The normal operator convolves the kernel with the gradients' (circular) autocorrelation and
    # keeps the k x k support, so only the autocorrelation's lags up to k - 1 matter: apply it with
    # FFTs of about 3k instead of image-sized ones (same operator; most of the solve's time).
    lags = np.arange(-(ksize - 1), ksize)
    auto = fft.irfft2(m, s=shape)[np.ix_(lags % shape[0], lags % shape[1])]
    n = fft.next_fast_len(3 * ksize - 2, real=True)
    auto_f = fft.rfft2(auto, s=(n, n))
    valid = slice(ksize - 1, 2 * ksize - 1)

    def apply(k: np.ndarray) -> np.ndarray:
        return fft.irfft2(auto_f * fft.rfft2(k, s=(n, n)), s=(n, n))[valid, valid] + reg * k

    k = init.astype(np.float64).copy()
    r = b - apply(k)
    p = r.copy()
    rs = float((r * r).sum())
    for _ in range(cg_iters):
        ap = apply(p)
        denom = float((p * ap).sum())
        if denom <= 0 or rs < 1e-20:
            break
        a = rs / denom
        k += a * p
        r -= a * ap
        rs_new = float((r * r).sum())
        p = r + (rs_new / rs) * p
        rs = rs_new
    return k


def update_kernel(blurry: np.ndarray, kernel: np.ndarray, lam: float, *, gamma: float = 2.0,
                  threshold: float = 0.15, select_edges: bool = True,
                  bridge_floor: float | None = None) -> np.ndarray:
    """One alternation of :func:`estimate_kernel` at one scale: the latent image, then the kernel.

    The latent image for ``kernel`` under the L0 gradient prior (:func:`l0_latent`, weight ``lam``);
    its gradients, restricted to the strong edges of every orientation
    (:func:`select_edges_by_orientation`) with ``select_edges``; the kernel on ``kernel``'s
    support that maps them best to the blurry image's gradients (least squares, started from
    ``kernel``); then :func:`clean_kernel` with ``threshold`` and ``bridge_floor``.

    Args:
        blurry: blurry image ``(H, W)`` float32.
        kernel: current kernel ``(k, k)`` summing to 1.
        lam: weight of the L0 gradient prior of the latent image.
        gamma: Tikhonov weight of the kernel least squares (relative units).
        threshold: kernel values below this fraction of the maximum are zeroed.
        select_edges: False: every latent gradient enters the kernel step.
        bridge_floor: pieces the threshold leaves are joined through values of at least this
            fraction of the maximum (:func:`clean_kernel`); None: not joined.

    Returns:
        kernel ``(k, k)`` float64, non-negative, summing to 1 (not re-centred).
    """
    return _kernel_from_latent(l0_latent(blurry, kernel, lam), blurry, kernel, gamma=gamma, threshold=threshold,
                               select_edges=select_edges, bridge_floor=bridge_floor)


def _kernel_from_latent(latent: np.ndarray, blurry: np.ndarray, kernel: np.ndarray, *, gamma: float,
                        threshold: float, select_edges: bool = True, bridge_floor: float | None = None) -> np.ndarray:
    """The kernel half of :func:`update_kernel` for a given latent image: ``(k, k)`` float64."""
    lx, ly = forward_gradients(latent)
    if select_edges:
        # The strong edges of every orientation. The selection keeps a fixed count per
        # orientation; lowering its threshold over the iterations as Cho & Lee do let weak,
        # noisy edges in and lost long shakes.
        lx, ly = select_edges_by_orientation(lx, ly, kernel.shape[0])
    return clean_kernel(kernel_least_squares(lx, ly, blurry, kernel.shape[0], gamma, kernel),
                        rel_threshold=threshold, bridge_floor=bridge_floor)


def refit_kernel(latent: np.ndarray, blurry: np.ndarray, kernel: np.ndarray, *, margin: int = 4,
                 gamma: float = 2.0, threshold: float = 0.15) -> np.ndarray:
    """The kernel step once more, from a given estimate of the sharp image.

    The kernel on ``kernel``'s support widened by ``margin`` on every side that maps the strong
    edges of every orientation of ``latent`` (:func:`select_edges_by_orientation`) best to
    ``blurry``'s gradients (:func:`kernel_least_squares`, started from ``kernel``), then
    :func:`clean_kernel` with ``threshold`` and :func:`center_kernel`. Given the sharp image's own
    gradients this step finds the true kernel; the estimator's L0 latent image, whose flat regions
    and hard steps differ from a photo's, pulls it away from the truth (docs/default-pipeline.md,
    "Where the estimator settles"), which a restoration closer to the sharp photo does less.

    Args:
        latent: the estimate of the sharp image ``(H, W)``, in the units and alignment of ``blurry``.
        blurry: the blurry image ``(H, W)``.
        kernel: the current kernel ``(k, k)``, ``k`` odd, summing to 1.
        margin: pixels added to each side of the support.
        gamma: Tikhonov weight of the least squares (relative units).
        threshold: kernel values below this fraction of the maximum are zeroed.

    Returns:
        kernel ``(k + 2 * margin, k + 2 * margin)`` float32, non-negative, summing to 1, centroid on
        the centre pixel (to a whole pixel).
    """
    k = _kernel_from_latent(np.asarray(latent, np.float32), np.asarray(blurry, np.float32),
                            np.pad(np.asarray(kernel, np.float64), margin), gamma=gamma, threshold=threshold)
    return center_kernel(k).astype(np.float32)


def clean_kernel(kernel: np.ndarray, *, component_mass: float = 0.1, rel_threshold: float = 0.0,
                 bridge_floor: float | None = None) -> np.ndarray:
    """Non-negativity, optional relative threshold, weak-component removal and normalisation.

    Args:
        kernel: raw kernel estimate ``(k, k)``.
        component_mass: 8-connected components carrying less than this fraction of the
            total mass are removed.
        rel_threshold: values below ``rel_threshold * max`` are zeroed first.
        bridge_floor: where several components remain, each is joined to the heaviest by the
            cheapest 8-connected path through values of at least ``bridge_floor * max`` (a pixel
            costs ``max / value``, so the path follows the brightest ridge), and the path keeps its
            values. A hand slows where it turns, so a shake's kernel has bright points on a fainter
            stroke that ``rel_threshold`` cuts into pieces; the path restores the stroke without
            the diffuse halo a lower threshold keeps everywhere. None (or not below
            ``rel_threshold``): pieces stay apart.
    """
    from scipy import ndimage

    k = np.maximum(np.asarray(kernel, dtype=np.float64), 0.0)
    if k.max() <= 0:
        out = np.zeros_like(k)
        out[k.shape[0] // 2, k.shape[1] // 2] = 1.0
        return out
    values = k.copy()
    if rel_threshold > 0:
        k[k < rel_threshold * k.max()] = 0.0
    k /= k.sum()
    labels, n = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if n > 1:
        mass = ndimage.sum(k, labels, index=np.arange(1, n + 1))
        keep = np.zeros(n + 1, bool)
        keep[1:] = mass >= component_mass
        if not keep.any():
            keep[1 + int(np.argmax(mass))] = True
        k[~keep[labels]] = 0.0
        if bridge_floor is not None and bridge_floor < rel_threshold and keep.sum() > 1:
            k = np.where(_join_pieces(values, k > 0, bridge_floor), values, 0.0)
    return k / k.sum()


def _join_pieces(values: np.ndarray, support: np.ndarray, floor: float) -> np.ndarray:
    """``support`` with its 8-connected pieces joined to the heaviest one by cheapest paths.

    Paths run through pixels of ``values`` of at least ``floor * max`` (or on the support); a
    pixel costs 1 on the support and ``max / value`` elsewhere. A piece no such path reaches
    stays apart.
    """
    from scipy import ndimage
    from skimage.graph import MCP

    top = float(values.max())
    cost = np.where(support, 1.0, top / np.maximum(values, 1e-300))
    cost[(values < floor * top) & ~support] = np.inf  # impassable
    joined = support.copy()
    while True:
        labels, n = ndimage.label(joined, structure=np.ones((3, 3)))
        if n < 2:
            return joined
        heaviest = 1 + int(np.argmax(ndimage.sum(values, labels, index=np.arange(1, n + 1))))
        paths = MCP(cost, fully_connected=True)
        dist, _ = paths.find_costs(np.argwhere(labels == heaviest))
        others = (labels > 0) & (labels != heaviest) & np.isfinite(dist)
        if not others.any():
            return joined
        flat = np.flatnonzero(others)
        end = np.unravel_index(flat[np.argmin(dist.ravel()[flat])], dist.shape)
        for y, x in paths.traceback(end):
            if labels[y, x] != heaviest:
                joined[y, x] = True


def center_kernel(kernel: np.ndarray) -> np.ndarray:
    """Shift ``kernel`` (by whole pixels) so its centroid sits on the centre pixel."""
    from scipy import ndimage

    k = np.asarray(kernel, dtype=np.float64)
    if k.sum() <= 0:
        return k
    dy, dx = kernel_centroid_offset(k)
    sy, sx = round(-dy), round(-dx)
    if sy == 0 and sx == 0:
        return k
    out = ndimage.shift(k, (sy, sx), order=0, mode="constant", cval=0.0)
    s = out.sum()
    return out / s if s > 0 else k


def kernel_pyramid_sizes(kernel_size: int, *, min_size: int = 5) -> list[int]:
    """Odd kernel sizes from coarse to fine, ratio ``1/sqrt(2)`` per level."""
    sizes = [kernel_size]
    while True:
        nxt = int(np.floor(sizes[-1] / np.sqrt(2.0)))
        nxt = nxt if nxt % 2 == 1 else nxt - 1
        if nxt < min_size or nxt >= sizes[-1]:
            break
        sizes.append(nxt)
    return sizes[::-1]


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = shape
    interp = cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (w, h), interpolation=interp)


def estimate_kernel(
    gray: np.ndarray,
    *,
    kernel_size: int = 31,
    lam: float = 8e-3,
    lam_min: float = 1e-4,
    iterations: int = 5,
    gamma: float = 2.0,
    final_threshold: float = 0.15,
    iter_threshold: float = 0.15,
    bridge_floor: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Estimate a uniform blur kernel from a single blurry grayscale image.

    Args:
        gray: blurry image ``(H, W)`` float32, linear light (or any fixed encoding) in [0, 1].
            At least ``2 * kernel_size`` pixels on each side.
        kernel_size: odd size of the kernel support in pixels (largest blur it can represent).
        lam: initial weight of the L0 gradient prior of the intermediate latent image.
        lam_min: floor of ``lam`` (it is divided by 1.1 each iteration).
        iterations: alternations of latent/kernel updates per pyramid level.
        gamma: Tikhonov weight of the kernel least-squares problem (relative units).
        final_threshold: kernel values below this fraction of the maximum are zeroed at the end.
        iter_threshold: the same, after every kernel update (suppresses the diffuse halo
            that least squares leaves around the true trajectory).
        bridge_floor: after every kernel update and at the end, pieces the thresholds leave are
            joined by the brightest paths through values of at least this fraction of the maximum
            (:func:`clean_kernel`; the faint stroke between the points where a hand paused);
            None: not joined.
        progress: optional callback ``progress(done, total)`` over pyramid levels.

    Returns:
        kernel ``(kernel_size, kernel_size)`` float32, non-negative, sums to 1, centroid at
        the centre pixel.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise DeblurkitError(f"estimate_kernel expects a 2-D grayscale image, got shape {gray.shape}")
    if kernel_size < 3:
        raise DeblurkitError(f"kernel_size must be >= 3, got {kernel_size}")
    if kernel_size % 2 == 0:
        kernel_size += 1
    if min(gray.shape) < 2 * kernel_size:
        raise DeblurkitError(
            f"image {gray.shape[1]}x{gray.shape[0]} is too small for kernel_size {kernel_size}"
        )
    sizes = kernel_pyramid_sizes(kernel_size)
    k = np.zeros((3, 3))
    k[1, 0:2] = 0.5
    for level, ks in enumerate(sizes):
        scale = ks / kernel_size
        shape = (max(round(gray.shape[0] * scale), 2 * ks), max(round(gray.shape[1] * scale), 2 * ks))
        y = gray if level == len(sizes) - 1 else _resize(gray, shape)
        k = resize_kernel(k, ks)
        for _ in range(iterations):
            k = update_kernel(y, k, lam, gamma=gamma, threshold=iter_threshold, bridge_floor=bridge_floor)
            lam = max(lam / 1.1, lam_min)
        k = center_kernel(k)
        if progress is not None:
            progress(level + 1, len(sizes))
    k = clean_kernel(k, rel_threshold=final_threshold, bridge_floor=bridge_floor)
    return center_kernel(k).astype(np.float32)


@dataclass(frozen=True)
class KernelEstimate:
    """Result of :func:`estimate_kernel_auto`."""

    kernel: np.ndarray
    """Kernel ``(k, k)`` float32 at the input's resolution, sums to 1, centroid at the centre."""
    scale: float
    """Downscale factor of the image it was estimated on (1 = full resolution)."""
    consistency: float
    """Kernel similarity (0..1) with a second estimate from the image downscaled ``check_scale`` times more."""
    overshoot: float
    """Mean out-of-range amount (below 0 or above 1) of the hyper-Laplacian deconvolution of the
    estimation crop with this kernel: large for kernels that make the deconvolution ring."""
    agreement: float = 1.0
    """Smallest kernel similarity (0..1) between this kernel and two re-estimates at the same scale
    (weaker L0 prior; window 10 px larger): low where the estimate depends on its settings. NaN
    where it was not measured (see ``agreement_wanted`` of :func:`estimate_kernel_auto`)."""
    candidates: tuple[tuple[float, float, float], ...] = ()
    """``(scale, consistency, overshoot)`` of every hypothesis tried, for reports."""


def _downscale(gray: np.ndarray, factor: float) -> np.ndarray:
    if factor <= 1.0:
        return gray
    h, w = gray.shape
    return _resize(gray, (max(8, round(h / factor)), max(8, round(w / factor))))


def _upscale_kernel(kernel: np.ndarray, factor: float) -> np.ndarray:
    """A kernel estimated on an image downscaled ``factor`` times, at the full resolution."""
    if factor <= 1.0:
        return np.asarray(kernel, np.float64)
    return resize_kernel(kernel, round(kernel.shape[0] * factor) | 1)


def textured_window(gray: np.ndarray, size: int, exclude: np.ndarray | None = None) -> tuple[slice, slice]:
    """Rows and columns of the ``size`` x ``size`` window (searched on a 9 x 9 grid) with the most
    gradient energy outside ``exclude`` (a boolean mask of pixels to ignore, e.g. near clipped
    highlights); the whole image where it is no larger."""
    h, w = gray.shape
    if h <= size and w <= size:
        return slice(0, h), slice(0, w)
    ch, cw = min(h, size), min(w, size)
    gx, gy = forward_gradients(gray)
    energy = np.abs(gx) + np.abs(gy)
    if exclude is not None:
        energy[_resize(exclude.astype(np.float32), (h, w)) > 0.5] = 0.0
    ii = np.zeros((h + 1, w + 1))
    ii[1:, 1:] = energy.cumsum(0).cumsum(1)
    best, at = -1.0, (0, 0)
    for y in np.linspace(0, h - ch, 9).round().astype(int):
        for x in np.linspace(0, w - cw, 9).round().astype(int):
            e = ii[y + ch, x + cw] - ii[y, x + cw] - ii[y + ch, x] + ii[y, x]
            if e > best:
                best, at = e, (y, x)
    return slice(at[0], at[0] + ch), slice(at[1], at[1] + cw)


def _textured_crop(gray: np.ndarray, size: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """The :func:`textured_window` of ``gray``."""
    return gray[textured_window(gray, size, exclude)]


def kernel_extent(kernel: np.ndarray, rel: float = 0.05) -> int:
    """Side in pixels of the bounding box of the kernel values of at least ``rel * max``."""
    ys, xs = np.nonzero(np.asarray(kernel) >= rel * float(np.max(kernel)))
    return int(max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))


def kernel_connectedness(kernel: np.ndarray, rel: float = 0.05) -> float:
    """Fraction of the kernel's mass (values of at least ``rel * max``) in its largest 8-connected piece.

    A camera-shake kernel is one connected path (1.0); an estimate fooled by periodic texture
    or noise tends to split into separate copies or specks.
    """
    from scipy import ndimage

    k = np.asarray(kernel, dtype=np.float64)
    k = np.where(k >= rel * float(k.max()), k, 0.0)
    labels, n = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if n <= 1:
        return 1.0
    mass = ndimage.sum(k, labels, index=np.arange(1, n + 1))
    return float(mass.max() / mass.sum())


def kernel_pause_share(kernel: np.ndarray, rel: float = 0.15) -> float:
    """Share of the kernel's mass (values of at least ``rel * max``) in its brightest 3 x 3 spot.

    Where a hand pauses, a share of the exposure stays on one spot of the path, so a shake that
    pauses has a spot holding a fifth or more of the kernel; a stroke drawn at constant speed over
    ``n`` pixels holds about ``3 / n`` in any spot.
    """
    from scipy import ndimage

    k = np.maximum(np.asarray(kernel, dtype=np.float64), 0.0)
    k = np.where(k >= rel * float(k.max()), k, 0.0)
    if k.sum() <= 0:
        return 0.0
    spots = ndimage.uniform_filter(k, 3, mode="constant") * 9.0
    return float(spots.max() / k.sum())


def deconvolution_overshoot(gray: np.ndarray, kernel: np.ndarray, *, weight: float = 2e-3,
                            alpha: float = 0.8) -> float:
    """Mean amount by which the hyper-Laplacian deconvolution of ``gray`` leaves [0, 1].

    ``gray`` is linear luminance at the working brightness scale (99.5th percentile at 1), so a
    correct kernel keeps the result almost in range, while a wrong one makes it ring far outside.
    The border band of one kernel size is ignored.
    """
    from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv

    return range_overshoot(hyper_laplacian_deconv(gray, kernel, weight=weight, alpha=alpha), kernel.shape[0])


def border_crop(x: np.ndarray, border: int) -> np.ndarray:
    """``x`` without a band of ``border`` px on every side (at most a quarter of its shorter side)."""
    b = min(border, min(x.shape[:2]) // 4)
    return x[b:x.shape[0] - b, b:x.shape[1] - b]


def range_overshoot(x: np.ndarray, border: int) -> float:
    """Mean amount by which ``x`` (a deconvolution at the working brightness scale) leaves [0, 1],
    away from a :func:`border_crop` band of ``border`` px: wrong kernels make it ring out of range."""
    x = border_crop(x, border)
    return float(np.mean(np.maximum(x - 1.0, 0.0) + np.maximum(-x, 0.0)))


def estimate_kernel_auto(
    gray: np.ndarray,
    *,
    window: int = 31,
    crop: int = 512,
    probe_side: int = 333,
    margin: float = 1.3,
    min_size: int = 9,
    check_scale: float = 1.5,
    max_overshoot: float = 0.01,
    overshoot_side: int = 1024,
    exclude: np.ndarray | None = None,
    workers: int = 1,
    agreement_wanted: Callable[[np.ndarray, float, float, float], bool] | None = None,
    measure_consistency: bool = True,
    cut: float = 0.15,
    bridge: float | None = None,
) -> KernelEstimate:
    """Blind kernel of any size up to about a tenth of the image side, size found per image.

    :func:`estimate_kernel` works on a fixed ``window``; this chooses the image scale and window
    for it. Two hypotheses are estimated:

    * *small blur*: full resolution, ``window`` px; then again with a window fitted to the
      kernel found (``margin`` x its extent + 4 px, at least ``min_size``);
    * *large blur* (images longer than ``1.5 * probe_side``): on the image downscaled to
      ``probe_side`` px (covering blurs up to ``window * side / probe_side`` px), then at the
      finest scale on which the kernel found still fits the window.

    Each hypothesis is checked against a second estimate on the image downscaled ``check_scale``
    times more (:attr:`KernelEstimate.consistency`, a cross-scale agreement), and by the ringing
    it causes (:func:`deconvolution_overshoot` of the whole image). Of the hypotheses whose
    overshoot is at most ``max_overshoot``, the most consistent one is returned; if none passes,
    the least overshooting one (callers decline it by its scores). The winner is re-estimated
    twice at its scale (weaker prior; larger window) for :attr:`KernelEstimate.agreement`.

    Estimation runs on the most textured ``crop`` x ``crop`` window of each scale, so the time
    does not grow with the photo's size beyond the downscaling.

    Args:
        gray: blurry linear luminance ``(H, W)`` at the working brightness scale (about [0, 1]),
            at least ``2 * window`` px on each side.
        window: kernel window in pixels at every estimation scale (odd).
        crop: side of the estimation crop at every scale.
        probe_side: image side (px) at which the large-blur hypothesis is probed.
        margin: window size relative to the extent of the kernel found.
        min_size: smallest window.
        check_scale: extra downscaling of the cross-scale check.
        max_overshoot: largest accepted :func:`deconvolution_overshoot`.
        overshoot_side: longest side of the image on which the overshoot is measured.
        exclude: optional boolean ``(H, W)`` mask of pixels the crop should avoid (clipped areas).
        workers: threads for the independent estimates (the result does not depend on it).
        agreement_wanted: optional ``(kernel, scale, consistency, overshoot) -> bool``; where it says
            no (e.g. the kernel will be declined anyway), the two re-estimates are skipped and
            the agreement is NaN.
        measure_consistency: False: a hypothesis' cross-scale estimate is made only where it
            decides between hypotheses (two or more pass ``max_overshoot``), and the consistency
            is NaN elsewhere; the kernel returned is the same, in fewer estimates.
        cut: every estimate's kernel thresholds (:func:`estimate_kernel`'s ``iter_threshold`` and
            ``final_threshold``): values below this fraction of the maximum are zeroed.
        bridge: every estimate's ``bridge_floor`` (:func:`estimate_kernel`); None: pieces stay apart.

    Returns:
        :class:`KernelEstimate`.
    """
    from deblurkit.kernel_aware.kernels import kernel_similarity

    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise DeblurkitError(f"estimate_kernel_auto expects a 2-D grayscale image, got shape {gray.shape}")
    window |= 1
    if min(gray.shape) < 2 * window:
        raise DeblurkitError(f"image {gray.shape[1]}x{gray.shape[0]} is too small for window {window}")

    @functools.cache
    def crop_at(scale: float) -> np.ndarray:
        # Several estimates share a scale (the hypothesis and its two re-estimates): one crop each.
        return _textured_crop(_downscale(gray, scale), crop, exclude)

    def at(scale: float, size: int, **options) -> np.ndarray:
        img = crop_at(scale)
        limit = min(img.shape) // 2
        limit -= 1 - limit % 2  # largest odd size the crop allows
        return estimate_kernel(img, kernel_size=max(3, min(size, limit)), final_threshold=cut, iter_threshold=cut,
                               bridge_floor=bridge, **options)

    def fitted(extent_px: float) -> tuple[float, int]:
        need = margin * extent_px + 4.0
        scale = max(1.0, need / window)
        return scale, max(min_size, min(window, int(np.ceil(need / scale)))) | 1

    def run(*jobs: Callable[[], object]) -> list:
        """The jobs in ``workers`` threads (FFTs release the GIL); results in order, as if serial."""
        if workers <= 1 or len(jobs) <= 1:
            return [job() for job in jobs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            return [f.result() for f in [pool.submit(job) for job in jobs]]

    probe = max(gray.shape) / probe_side
    with_large = probe >= 1.5
    # Stage 1: the full-resolution window and (for large photos) the coarse probe.
    first = run(lambda: at(1.0, window), *([lambda: at(probe, window)] if with_large else []))
    plans = [(first[0], 1.0, fitted(kernel_extent(first[0]))[1])]
    if with_large:
        scale, size = fitted(kernel_extent(first[1]) * probe)
        if abs(scale - probe) / probe < 0.1 and size == window:
            scale, size = probe, window
        plans.append((first[1], scale, size))
    # Stage 2: each hypothesis at its own scale and window (unless the first estimate is it).
    redo = [i for i, (k, scale, size) in enumerate(plans) if size != k.shape[0] or (i == 1 and scale != probe)]
    again = run(*[lambda i=i: at(plans[i][1], plans[i][2]) for i in redo])
    hypotheses = [(k, scale) for k, scale, _ in plans]
    for i, k in zip(redo, again):
        hypotheses[i] = (k, plans[i][1])

    # Stage 3: the checks of every hypothesis. Ringing is judged on the whole image (at most
    # ``overshoot_side`` px long; the kernel scaled with it): the most textured crop rings
    # more than a photo as a whole.
    shrink = max(1.0, max(gray.shape) / overshoot_side)
    whole = _downscale(gray, shrink)

    def coarser(k: np.ndarray, scale: float) -> np.ndarray:
        scale2 = scale * check_scale
        return _upscale_kernel(at(scale2, max(min_size, int(np.ceil(k.shape[0] / check_scale))) | 1), scale2)

    def overshoot(full: np.ndarray) -> float:
        small = full if shrink == 1.0 else resize_kernel(full, max(3, round(full.shape[0] / shrink) | 1))
        return deconvolution_overshoot(whole, small)

    fulls = [_upscale_kernel(k, scale) for k, scale in hypotheses]
    overs = [float(o) for o in run(*[lambda full=full: overshoot(full) for full in fulls])]
    if measure_consistency:
        wanted = list(range(len(fulls)))
    else:  # the consistency only chooses between hypotheses that both pass the ringing check
        wanted = [i for i, o in enumerate(overs) if o <= max_overshoot]
        wanted = wanted if len(wanted) > 1 else []
    checks = dict(zip(wanted, run(*[lambda i=i: coarser(*hypotheses[i]) for i in wanted])))
    checked = [(full, scale, kernel_similarity(full, checks[i]) if i in checks else math.nan, overs[i], k)
               for i, ((k, scale), full) in enumerate(zip(hypotheses, fulls))]
    passing = [c for c in checked if c[3] <= max_overshoot]
    best = max(passing, key=lambda c: c[2]) if passing else min(checked, key=lambda c: c[3])
    full, scale, consistency, over, k = best
    # Stage 4: the winner must not hinge on the estimator's settings (periodic texture fools
    # the cross-scale check: it gives the same wrong kernel at every scale).
    size = k.shape[0]
    full = center_kernel(full).astype(np.float32)
    if agreement_wanted is None or agreement_wanted(full, float(scale), float(consistency), float(over)):
        weaker, wider = run(lambda: at(scale, size, lam=4e-3), lambda: at(scale, size + 10))
        agreement = min(kernel_similarity(k, weaker), kernel_similarity(k, wider))
    else:
        agreement = math.nan
    return KernelEstimate(full, float(scale), float(consistency), float(over),
                          float(agreement), tuple((float(s), float(c), float(o)) for _, s, c, o, _ in checked))


def region_agreement(gray: np.ndarray, kernel: np.ndarray, scale: float, *, crop: int = 512,
                     exclude: np.ndarray | None = None, workers: int = 1, cut: float = 0.15,
                     bridge: float | None = None) -> float:
    """Smallest kernel similarity (0..1) between ``kernel`` and re-estimates on the two halves of the image.

    A uniform shake is the same everywhere, so an estimate from either half of the photo should
    find it again; a kernel shaped by one region's texture or noise is not found in the other
    half. The image is downscaled ``scale`` times (the scale ``kernel`` was estimated at, see
    :attr:`KernelEstimate.scale`) and split across its longer side; on each half's most textured
    ``crop`` x ``crop`` window :func:`estimate_kernel` runs with ``kernel``'s window at that scale.

    Args:
        gray: blurry linear luminance ``(H, W)`` at the working brightness scale.
        kernel: the estimate to check, at ``gray``'s resolution.
        scale: downscale factor the kernel was estimated at (1 = full resolution).
        crop: largest side of the estimation window in each half.
        exclude: optional boolean ``(H, W)`` mask of pixels the windows avoid (clipped areas).
        workers: threads for the two estimates (the result does not depend on it).
        cut: :func:`estimate_kernel`'s kernel thresholds (after every update and at the end).
        bridge: :func:`estimate_kernel`'s ``bridge_floor``.

    Returns:
        The smaller of the two similarities; NaN where a half (or ``crop``) is less than twice the
        kernel's window at that scale.
    """
    from deblurkit.kernel_aware.kernels import kernel_similarity

    img = _downscale(np.asarray(gray, dtype=np.float32), scale)
    mask = None if exclude is None else _resize(exclude.astype(np.float32), img.shape) > 0.5
    size = max(3, round(kernel.shape[0] / scale) | 1) if scale > 1.0 else kernel.shape[0]
    h, w = img.shape
    split = (slice(None), slice(0, w // 2)), (slice(None), slice(w // 2, None))
    if h > w:
        split = (slice(0, h // 2), slice(None)), (slice(h // 2, None), slice(None))
    halves = [(img[c], None if mask is None else mask[c]) for c in split]
    if min(min(min(half.shape), crop) for half, _ in halves) < 2 * size:
        return math.nan  # a half cannot hold the kernel's window twice over

    def again(half: np.ndarray, avoid: np.ndarray | None) -> float:
        found = estimate_kernel(_textured_crop(half, crop, avoid), kernel_size=size, final_threshold=cut,
                                iter_threshold=cut, bridge_floor=bridge)
        return kernel_similarity(kernel, center_kernel(_upscale_kernel(found, scale)))

    if workers <= 1:
        return min(again(*half) for half in halves)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return min(pool.map(lambda half: again(*half), halves))
