"""The kernel-aware blind deblurring pipeline (estimate the shake kernel, then deconvolve).

Steps (all in linear light; the image's colour space is stated by the caller, never guessed):

1. sRGB -> linear; luminance, normalised by its 99.5th percentile (the priors' weights are
   absolute, so dark photos are brightened for the computation and scaled back); noise
   level (MAD of the finest diagonal Haar band).
2. Kernel estimation (:func:`deblurkit.kernel_aware.estimation.estimate_kernel_auto`: kernel
   size and image scale found per tile, on the most informative crop away from clipped
   highlights) for each kernel tile: one tile for uniform blur, a grid ``(ny, nx)`` for blur
   that varies across the photo. A tile whose kernel makes the deconvolution ring (overshoot),
   splits into pieces (connectedness), was found on a downscaled image and depends on the
   estimator's settings (agreement), or is close to a delta (small effective support), is
   declared "not blurred" and left untouched
   (:func:`kernel_scores` gives the scores); a tile without enough texture borrows the global kernel.
   With ``BlindParams(decision="learned")`` (the restorers' default) a learned regressor may then
   still decline a trusted kernel found at full resolution (:mod:`deblurkit.kernel_aware.decision`),
   and each kernel kept is fitted once more to the judge network's restoration of its
   deconvolution (:func:`refitted_kernel`, :attr:`BlindParams.refit_side`).
3. Hyper-Laplacian deconvolution at full resolution in blocks of at most ``block`` pixels,
   blended with linear ramps over the overlaps; the prior weight grows with the noise; then
   linear -> sRGB and clip to [0, 1]. Clipped highlights are deconvolved like the rest: keeping
   the input around them cost more gain than the ringing it avoided on the validation pairs,
   the saturated ones included (``studies/clipped_blend.py``).

If no tile is blurred, the input is returned unchanged (bit-exact copy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from deblurkit.color import ColorSpace, linear_to_srgb, luminance, srgb_to_linear, working_scale
from deblurkit.errors import DeblurkitError
from deblurkit.infer.base import ProgressFn
from deblurkit.infer.tiling import blend_regions, split_evenly
from deblurkit.kernel_aware.decision import (
    Network,
    candidate_rows,
    deconvolution_features,
    delta_kernel,
    load_decision,
)
from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv
from deblurkit.kernel_aware.estimation import (
    KernelEstimate,
    estimate_kernel_auto,
    kernel_connectedness,
    kernel_extent,
    kernel_pause_share,
    refit_kernel,
    region_agreement,
    textured_window,
)
from deblurkit.kernel_aware.kernels import kernel_centroid_offset, kernel_effective_support

__all__ = [
    "BlindParams",
    "DeblurResult",
    "TileKernels",
    "agreement_threshold",
    "deblur_image",
    "deblur_image_and_kernels",
    "decision_features",
    "deconvolve_with_kernel",
    "estimate_noise_sigma",
    "estimate_tile_kernels",
    "kernel_effective_support",
    "kernel_scores",
    "kernel_support_at_scale",
    "kernel_trusted",
    "min_image_side",
    "refitted_kernel",
    "trusting_every_kernel",
]

@dataclass(frozen=True)
class BlindParams:
    """Tunable settings of the blind pipeline (defaults chosen by ``studies/eval_kernel_aware.py``)."""

    decision: Literal["checks", "learned"] = "checks"
    """How the pipeline decides whether a tile's kernel is deconvolved: ``"checks"``, the trust
    checks below (``no_blur_support`` and the thresholds after it); ``"learned"``, the same checks,
    and then, for a kernel they trust that was found at full resolution, the regressor of
    :mod:`deblurkit.kernel_aware.decision`: it predicts the gain of deconvolving with the kernel
    and with a delta kernel from no-reference features of both deconvolutions, and the tile is
    deconvolved only where the first is larger. It needs the judge network (the ``network``
    argument of :func:`deblur_image_and_kernels`). A kernel found on a downscaled image (a large
    blur, which its training photos were too small to have) is decided by the checks alone."""
    judge_side: int = 384
    """Least side (px) of the tile's most textured window on which the learned decision
    deconvolves and runs the judge network; at least six kernel widths."""
    refit_side: int | None = 512
    """Where the pipeline is given a network (the judge of the learned decision), each kernel it
    deconvolves is fitted once more to that network's restoration of the deconvolution
    (:func:`refitted_kernel`), on the tile's most textured window of at least this side (px) and
    six kernel widths: the estimator's L0 latent image pulls its kernels away from the truth, a
    restoration closer to the sharp photo less. None: not refitted."""
    est_crop: int = 512
    """Side of the crop (per kernel tile and scale) on which the kernel is estimated, in pixels."""
    no_blur_support: float = 12.0
    """A kernel whose effective support ``1 / sum(k^2)`` is below this is treated as a delta
    (short blurs gain little, while a spurious small kernel over-sharpens a sharp photo); for a
    kernel found on a downscaled image, on that image (its support divided by the square of the
    downscale factor)."""
    accept_overshoot: float = 0.003
    """A tile's kernel is trusted only if the hyper-Laplacian deconvolution with it leaves [0, 1]
    by at most this on average (:attr:`KernelEstimate.overshoot`; wrong kernels ring), ..."""
    connectedness: float = 0.9
    """... at least this fraction of its mass lies in one connected piece
    (:func:`~deblurkit.kernel_aware.estimation.kernel_connectedness`; estimates fooled by texture
    or noise split) ..."""
    consistency: float | None = None
    """... an estimate from a 1.5x coarser scale matches it with at least this
    (:attr:`KernelEstimate.consistency`; None: not checked, and the cross-scale estimates are made
    only where they choose between the estimator's hypotheses) ..."""
    agreement: float | None = None
    """... and, for a kernel estimated at full resolution, two re-estimates at its scale (weaker
    L0 prior; window +10 px) match it with a kernel similarity of at least this
    (:attr:`KernelEstimate.agreement`); None: not checked, and the re-estimates are skipped ..."""
    agreement_downscaled: float | None = 0.88
    """... the same for a kernel estimated on a downscaled image (the large-blur hypothesis of
    :func:`~deblurkit.kernel_aware.estimation.estimate_kernel_auto`; periodic texture fools it
    there). Fitted on validation pairs by ``studies/kernel_gate.py`` (docs/classical.md, "Trust
    thresholds")."""
    region_agreement: float | None = 0.85
    """A kernel the checks above decline is trusted after all if re-estimates on the two halves of
    the tile both find it with a kernel similarity of at least this
    (:func:`~deblurkit.kernel_aware.estimation.region_agreement`; a uniform shake is the same in
    both halves, a kernel shaped by one region's texture or noise is not); None: not checked, and
    the re-estimates are skipped. Only kernels whose effective support at the scale they were
    estimated on is at least ``no_blur_support`` qualify: the halves, estimated at that scale too,
    agree just as well on the small blob a near-delta becomes there, which upsampling to full
    resolution turns into a wrong, wide kernel. Chosen on validation pairs by
    ``studies/kernel_gate.py regions`` (docs/classical.md, "Trust thresholds")."""
    kernel_cut: float = 0.15
    """Kernel values below this fraction of the kernel's maximum are zeroed after every kernel update
    and at the end (:func:`~deblurkit.kernel_aware.estimation.estimate_kernel`'s thresholds). Lower
    cuts keep faint parts of a shake, and on real recorded shakes the kernels then agree better
    across photos; on the synthetic validation pairs they cost several dB (docs/classical.md,
    "The kernel cut")."""
    kernel_bridge: float | None = 0.05
    """A kernel the trust checks decline is estimated once more with the pieces that ``kernel_cut``
    leaves joined, after every update, by the brightest path through values of at least this
    fraction of the maximum (:func:`~deblurkit.kernel_aware.estimation.clean_kernel`): the faint
    stroke between the points where a hand paused, which the cut drops. The second estimate is
    deconvolved where it was made at full resolution, the cut splits it (so the join mattered), it
    has a pause (:attr:`pause_spot`) and it passes the checks (the half-image agreement included,
    re-estimated with the join). None: not re-estimated. A kernel split by texture or noise has no
    such spot, and joining its pieces is what let wrong kernels pass when every estimate joined
    them (docs/classical.md, "Shakes with pauses")."""
    pause_spot: float = 0.25
    """See ``kernel_bridge``: the least share of the joined kernel's mass in its brightest 3 x 3 spot
    (:func:`~deblurkit.kernel_aware.estimation.kernel_pause_share`). Chosen on validation pairs."""
    max_overshoot: float = 0.01
    """Of the estimator's kernel-size hypotheses, those whose deconvolution overshoots by more than
    this are passed over (:func:`estimate_kernel_auto`)."""
    weight: float = 2e-3
    """Hyper-Laplacian prior weight for a noise-free image."""
    noise_weight: float = 20.0
    """Added prior weight per unit noise variance (linear light): ``weight + noise_weight * sigma^2``."""
    alpha: float = 0.8
    """Hyper-Laplacian exponent."""
    block: int = 1024
    """Largest side of a deconvolution block (bounds memory on large photos)."""
    overlap: int = 32
    """Blend width between neighbouring blocks, in pixels."""
    encoded_fallback: float | None = 1.0
    """Where every tile's kernel is declined in linear light (``input_space="srgb"`` only) and one
    of them is longer than a delta (:attr:`no_blur_support`: blur on the encoded values blurs
    linear light too, so a photo of near-deltas is sharp), the kernels are estimated once more on
    the sRGB-encoded values themselves, and that result is deconvolved there if a tile passes the
    checks with a kernel found on the image downscaled by more than this factor (a large blur).
    Blur is a convolution of linear light in a camera, but synthetic benchmarks and frame averages
    of processed video often blur the encoded values, where a linear-light estimate fails; small
    kernels found there on photos blurred in linear light are often wrong (docs/classical.md,
    "Blur in encoded values"). None: no second estimate."""
    saturation: float = 0.98
    """Linear values at or above this (any channel) count as clipped; the kernel is estimated away from them."""
    min_texture: float = 0.25
    """A tile whose gradient energy is below this fraction of the image median borrows the global kernel."""
    workers: int = 0
    """Threads for the kernel estimates, the learned decision's candidates and the deconvolution
    blocks (0: one per CPU core). The result does not depend on it."""

    def prior_weight(self, sigma: float) -> float:
        """The deconvolution's prior weight for noise ``sigma`` (at the working brightness scale):
        ``weight + noise_weight * sigma^2``."""
        return self.weight + self.noise_weight * sigma * sigma


@dataclass
class DeblurResult:
    """Output of :func:`deblur_image_and_kernels`."""

    image: np.ndarray
    """Restored image, float32 sRGB ``(H, W, 3)`` in [0, 1]."""
    kernels: np.ndarray
    """Kernels per tile, ``(ny, nx, k, k)`` float32 (a delta where no blur was detected)."""
    blurred: np.ndarray
    """Per-tile flag ``(ny, nx)``: True where blur was detected and deconvolved."""
    noise_sigma: float
    """Estimated noise standard deviation in linear light, relative to the image's 99.5th
    percentile luminance (the working brightness scale)."""
    params: dict = field(default_factory=dict)
    """Resolved settings, for reports."""


def estimate_noise_sigma(gray: np.ndarray) -> float:
    """Noise standard deviation from the median absolute finest diagonal Haar coefficient."""
    g = np.asarray(gray, dtype=np.float64)
    h, w = (g.shape[0] // 2) * 2, (g.shape[1] // 2) * 2
    g = g[:h, :w]
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2.0
    return float(np.median(np.abs(hh)) / 0.6745)


def kernel_scores(estimate: KernelEstimate, noise_sigma: float) -> dict[str, float]:
    """No-reference scores of a kernel estimate, those the pipeline's trust decision reads and more.

    Args:
        estimate: result of :func:`deblurkit.kernel_aware.estimation.estimate_kernel_auto`.
        noise_sigma: noise standard deviation of the image at the working brightness scale.

    Returns:
        ``consistency``, ``agreement``, ``overshoot`` and ``scale`` of the estimate; the kernel's
        effective ``support`` (px), ``extent`` (px) and their ratio ``compactness`` (a thin
        trajectory has a high ratio, a diffuse blob a low one); its ``connectedness``
        (:func:`~deblurkit.kernel_aware.estimation.kernel_connectedness`); ``noise_sigma``;
        ``bridged`` (0; the pipeline sets it to 1 where the estimate is its second, see
        :attr:`BlindParams.kernel_bridge`).
    """
    support = kernel_effective_support(estimate.kernel)
    extent = float(kernel_extent(estimate.kernel))
    return {
        "consistency": float(estimate.consistency),
        "agreement": float(estimate.agreement),
        "overshoot": float(estimate.overshoot),
        "scale": float(estimate.scale),
        "support": support,
        "extent": extent,
        "compactness": support / max(extent, 1.0),
        "connectedness": kernel_connectedness(estimate.kernel),
        "noise_sigma": float(noise_sigma),
        "region_agreement": math.nan,  # measured by the pipeline only where it decides
        "bridged": 0.0,  # 1 where the pipeline used its joined second estimate (BlindParams.kernel_bridge)
    }


def trusting_every_kernel(params: BlindParams | None = None) -> BlindParams:
    """``params`` (default :class:`BlindParams`) with every trust threshold off; the scores, the
    agreement included, are still measured (for studies of the thresholds)."""
    return replace(params or BlindParams(), accept_overshoot=math.inf, connectedness=0.0, consistency=0.0,
                   agreement=0.0, agreement_downscaled=0.0)


def agreement_threshold(scale: float, params: BlindParams) -> float | None:
    """The agreement a kernel estimated at downscale factor ``scale`` must reach (None: not checked)."""
    return params.agreement if scale <= 1.0 else params.agreement_downscaled


def kernel_trusted(scores: dict[str, float], params: BlindParams) -> bool:
    """Whether an estimate with these :func:`kernel_scores` passes the trust thresholds of ``params``
    (overshoot at most ``accept_overshoot``; connectedness, consistency and, where its scale asks
    for it (:func:`agreement_threshold`), agreement at least their thresholds), or else its two
    half-image re-estimates agree with it (``region_agreement``, where measured)."""
    needed = agreement_threshold(scores["scale"], params)
    checks = (scores["overshoot"] <= params.accept_overshoot
              and scores["connectedness"] >= params.connectedness
              and (params.consistency is None or scores["consistency"] >= params.consistency)
              and (needed is None or scores["agreement"] >= needed))
    return checks or (params.region_agreement is not None
                      and scores.get("region_agreement", math.nan) >= params.region_agreement)


def kernel_support_at_scale(scores: dict[str, float]) -> float:
    """Effective support (px²) of a kernel with these :func:`kernel_scores` on the image it was
    estimated on: upsampling a kernel found on an image downscaled ``s`` times multiplies its
    support by about ``s²``. The pipeline deconvolves only kernels for which this is at least
    ``BlindParams.no_blur_support``."""
    return scores["support"] / max(scores["scale"], 1.0) ** 2


def _longer_than_delta(scores: dict[str, float], params: BlindParams) -> bool:
    """Whether the kernel spans at least ``no_blur_support`` on the image it was estimated on."""
    return kernel_support_at_scale(scores) >= params.no_blur_support


def _deconvolved(scores: dict[str, float], params: BlindParams) -> bool:
    """The pipeline's decision for a tile: its kernel is trusted and is more than a delta, at full
    resolution and on the image it was estimated on (a near-delta found on a downscaled image is a
    blob that upsampling turns into a wrong, wide kernel)."""
    return kernel_trusted(scores, params) and _longer_than_delta(scores, params)


def _texture_map(gray: np.ndarray) -> np.ndarray:
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, :-1] = np.diff(gray, axis=1)
    gy[:-1, :] = np.diff(gray, axis=0)
    return np.sqrt(gx * gx + gy * gy)


def _parse_tiles(tiles: int | tuple[int, int] | None, shape: tuple[int, int], est_crop: int) -> tuple[int, int]:
    if tiles is None:
        h, w = shape
        # About one tile per 2048 px: smaller tiles gave worse kernels on validation photos of
        # spatially varying shake at 1 and 4 MP (docs/classical.md, "Tiles").
        auto = lambda n: min(3, max(1, round(n / (4 * est_crop))))
        return auto(h), auto(w)
    if isinstance(tiles, int):
        if tiles < 1:
            raise DeblurkitError(f"tiles must be >= 1, got {tiles}")
        return tiles, tiles
    if len(tiles) != 2 or min(tiles) < 1:
        raise DeblurkitError(f"tiles must be an int or (ny, nx) with both >= 1, got {tiles}")
    return int(tiles[0]), int(tiles[1])


@dataclass
class TileKernels:
    """Output of :func:`estimate_tile_kernels`: the kernel grid and what deconvolution needs."""

    kernels: np.ndarray
    """Kernels per tile, ``(ny, nx, k, k)`` float32."""
    blurred: np.ndarray
    """Per-tile flag ``(ny, nx)``: True where blur was detected (and the estimate is trusted)."""
    noise_sigma: float
    """Noise standard deviation in linear light, relative to ``scale``."""
    scale: float
    """Working brightness scale (99.5th percentile of the linear luminance, at least 0.05)."""
    ys: list[tuple[int, int]]
    """Row ranges of the tiles."""
    xs: list[tuple[int, int]]
    """Column ranges of the tiles."""
    params: dict = field(default_factory=dict)
    """Resolved settings, for reports."""
    scores: list[list[dict[str, float]]] = field(default_factory=list)
    """Per tile ``[i][j]``: the :func:`kernel_scores` of its kernel estimate."""
    blur_space: ColorSpace = "linear"
    """Where the kernels convolve: ``"linear"`` light, or ``"srgb"``, the encoded values
    (:attr:`BlindParams.encoded_fallback`); ``noise_sigma`` and ``scale`` are in the same space."""


@dataclass
class _Prepared:
    lin: np.ndarray
    gray: np.ndarray
    sat: np.ndarray
    scale: float
    kernel_size: int
    ys: list[tuple[int, int]]
    xs: list[tuple[int, int]]
    space: ColorSpace = "linear"
    """What ``lin`` holds: ``"linear"`` light, or the ``"srgb"``-encoded values read as linear."""


def min_image_side(kernel_size: int = 31) -> int:
    """Smallest image side (px) on which a kernel of ``kernel_size`` px can be estimated: the
    window twice over plus a pixel of margin on each side (even sizes are rounded up to odd)."""
    return 2 * (kernel_size | 1) + 2


def _prepare(image: np.ndarray, *, kernel_size: int, tiles: int | tuple[int, int] | None, input_space: ColorSpace,
             p: BlindParams) -> _Prepared:
    """Validate the input; linearise, normalise the brightness and lay out the kernel tiles."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise DeblurkitError(f"expected an image of shape (H, W, 3) or (H, W), got {np.asarray(image).shape}")
    if input_space not in ("srgb", "linear"):
        raise DeblurkitError(f"unknown input space {input_space!r}; valid: linear, srgb")
    if kernel_size < 3:
        raise DeblurkitError(f"kernel_size must be >= 3, got {kernel_size}")
    kernel_size = kernel_size | 1
    img = img.astype(np.float32, copy=False)
    h, w = img.shape[:2]
    if min(h, w) < min_image_side(kernel_size):
        raise DeblurkitError(f"image {w}x{h} is too small for kernel_size {kernel_size} "
                             f"(needs >= {min_image_side(kernel_size)} px)")
    lin = srgb_to_linear(img) if input_space == "srgb" else np.clip(img, 0.0, None)
    gray = _luminance(lin)
    # The L0 and hyper-Laplacian weights are absolute, so work at a fixed brightness scale:
    # a dark (night) photo is scaled up before estimation and deconvolution, and back after.
    scale = working_scale(gray)
    ny, nx = _parse_tiles(tiles, (h, w), p.est_crop)
    min_tile = min_image_side(kernel_size)
    ny, nx = max(1, min(ny, h // min_tile)), max(1, min(nx, w // min_tile))
    sat = (lin >= p.saturation).any(axis=2)
    return _Prepared(lin, gray / scale, sat, scale, kernel_size, split_evenly(h, ny), split_evenly(w, nx))


def _n_estimates(prep: _Prepared) -> int:
    n = len(prep.ys) * len(prep.xs)
    return n + (1 if n > 1 else 0)


def _pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """``kernel`` centred in a ``size`` x ``size`` window (``size`` odd, at least the kernel's)."""
    out = np.zeros((size, size), np.float32)
    o = (size - kernel.shape[0]) // 2
    out[o:o + kernel.shape[0], o:o + kernel.shape[1]] = kernel
    return out


def _stacked(by_tile: dict[tuple[int, int], np.ndarray], shape: tuple[int, int], least: int = 0) -> np.ndarray:
    """The kernel of every tile of a ``shape`` grid as one ``(ny, nx, k, k)`` float32 array, each
    centred in the largest kernel's window (at least ``least``)."""
    size = max(least, *(k.shape[0] for k in by_tile.values()))
    out = np.zeros((*shape, size, size), np.float32)
    for (i, j), k in by_tile.items():
        out[i, j] = _pad_kernel(k, size)
    return out


def decision_features(image: np.ndarray, kernels: list[np.ndarray], *, scale: float, sigma: float,
                      network: Network, space: ColorSpace = "linear", params: BlindParams | None = None
                      ) -> tuple[list[dict[str, float]], dict[str, float]]:
    """What the learned decision reads: no-reference features of deconvolving a tile with each of
    its candidate kernels and with a 3 x 3 delta kernel
    (:func:`deblurkit.kernel_aware.decision.deconvolution_features`).

    Each is deconvolved as the pipeline deconvolves, on the tile's most textured window of side
    ``max(params.judge_side, 6 * widest kernel)`` (away from clipped pixels), and passed through
    ``network`` for the network's change of it.

    Args:
        image: the tile ``(H, W, C)`` (C = 1 or 3), in the space the kernels convolve: linear
            light (``space="linear"``) or the sRGB-encoded values (``"srgb"``), not normalised.
        kernels: ``(k, k)`` kernels summing to 1 (the pipeline judges one).
        scale: the working brightness scale (:attr:`TileKernels.scale`).
        sigma: the noise standard deviation at that scale (:attr:`TileKernels.noise_sigma`).
        network: the judge (:data:`deblurkit.kernel_aware.decision.Network`), sRGB in and out.
        space: see ``image``.
        params: the deconvolution's settings (:class:`BlindParams`; default its defaults); its
            ``workers`` threads judge the candidates at once (the result does not depend on it), so
            ``network`` may be called from several threads.

    Returns:
        The features of each kernel, and the delta kernel's.
    """
    p = params or BlindParams()
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    side = max(p.judge_side, 6 * max(int(k.shape[0]) for k in kernels))
    patch = img[_textured_window(img, side, p)] / scale
    gray = _luminance(patch)

    def features(k: np.ndarray) -> dict[str, float]:
        deconvolved, shown = _deconvolved_srgb(patch, k, sigma, scale, space, p)
        judged = np.clip(np.asarray(network(shown), np.float64), 0.0, 1.0)
        mse = max(float(np.mean((judged - shown) ** 2)), 1e-12)
        return deconvolution_features(gray, k, _luminance(deconvolved), sigma, -10.0 * math.log10(mse))

    candidates = [*(np.asarray(k, np.float32) for k in kernels), delta_kernel()]
    workers = _workers(p.workers, len(candidates))
    if workers <= 1:
        out = [features(k) for k in candidates]
    else:
        # The candidates are independent: each in its own thread (FFTs and the network release
        # the GIL), in order.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = list(pool.map(features, candidates))
    return out[:-1], out[-1]


def _luminance(img: np.ndarray) -> np.ndarray:
    return luminance(img) if img.shape[2] == 3 else img[..., 0]


def _textured_window(img: np.ndarray, side: int, p: BlindParams) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window of ``img`` ``(H, W, C)`` with the most texture away from clipped pixels."""
    return textured_window(_luminance(img), side, (img >= p.saturation).any(axis=2))


def _deconvolved_srgb(patch: np.ndarray, kernel: np.ndarray, sigma: float, scale: float, space: ColorSpace,
                      p: BlindParams) -> tuple[np.ndarray, np.ndarray]:
    """``patch`` ``(H, W, C)`` (at the working scale, in ``space``, noise ``sigma``) deconvolved as the
    pipeline does: as it is, and as the sRGB float32 ``(H, W, 3)`` in [0, 1] a network reads."""
    deconvolved = hyper_laplacian_deconv(patch, kernel, weight=p.prior_weight(sigma), alpha=p.alpha,
                                         shift=kernel_centroid_offset(kernel))
    values = deconvolved * scale
    shown = np.clip(linear_to_srgb(values) if space == "linear" else values, 0.0, 1.0).astype(np.float32)
    if shown.shape[2] == 1:
        shown = np.repeat(shown, 3, axis=2)
    return deconvolved, shown


def refitted_kernel(image: np.ndarray, kernel: np.ndarray, *, scale: float, sigma: float, network: Network,
                    space: ColorSpace = "linear", params: BlindParams | None = None) -> np.ndarray:
    """``kernel`` fitted once more to ``network``'s restoration of the deconvolution with it.

    On the tile's most textured window of side ``max(params.refit_side, 6 * kernel width)`` (away
    from clipped pixels), deconvolved as the pipeline deconvolves and restored by ``network``, the
    kernel step (:func:`~deblurkit.kernel_aware.estimation.refit_kernel`) maps the restoration's
    luminance to the blurry window's.

    Args:
        image: the tile ``(H, W, C)`` (C = 1 or 3), in the space the kernel convolves (``space``:
            linear light, or the sRGB-encoded values), not normalised.
        kernel: ``(k, k)`` kernel summing to 1.
        scale: the working brightness scale (:attr:`TileKernels.scale`).
        sigma: the noise standard deviation at that scale.
        network: sRGB float32 ``(H, W, 3)`` in [0, 1] -> its restoration
            (:data:`deblurkit.kernel_aware.decision.Network`).
        space: see ``image``.
        params: the deconvolution's settings and ``refit_side`` (:class:`BlindParams`; default its defaults).

    Returns:
        kernel ``(k + 8, k + 8)`` float32, summing to 1, centred.
    """
    p = params or BlindParams()
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    patch = img[_textured_window(img, max(p.refit_side or 0, 6 * int(kernel.shape[0])), p)] / scale
    _, shown = _deconvolved_srgb(patch, kernel, sigma, scale, space, p)
    restored = np.clip(np.asarray(network(shown), np.float32), 0.0, 1.0)
    latent = luminance(srgb_to_linear(restored) if space == "linear" else restored) / scale
    return refit_kernel(latent, _luminance(patch), kernel)


def _judged(prep: _Prepared, tile: tuple[int, int], kernel: np.ndarray, scores: dict[str, float], sigma: float,
            p: BlindParams, network: Network) -> bool:
    """The learned decision for a tile (:attr:`BlindParams.decision`); records both predicted gains
    (dB) in ``scores`` (``predicted_gain``, ``predicted_gain_delta``)."""
    (a, b), (c, d) = prep.ys[tile[0]], prep.xs[tile[1]]
    (found,), delta = decision_features(prep.lin[a:b, c:d], [kernel], scale=prep.scale, sigma=sigma,
                                        network=network, space=prep.space, params=p)
    gains = load_decision().predict(candidate_rows([found], delta))
    scores["predicted_gain"], scores["predicted_gain_delta"] = float(gains[0]), float(gains[1])
    return bool(gains[0] > gains[1])


def _estimate(prep: _Prepared, p: BlindParams, tick: Callable[[], None], *, min_scale: float = 0.0,
              network: Network | None = None) -> tuple[np.ndarray, np.ndarray, float, list[list[dict[str, float]]]]:
    """Kernels (padded to one common size), "blurred" flags and :func:`kernel_scores` per tile, and the noise level.

    ``min_scale``: the caller discards every kernel found on an image downscaled at most this many
    times, so those kernels skip the checks that could only overturn their decline or replace
    them (agreement and half-image re-estimates, the join); the kernels kept are the same.
    ``network``: the judge of the learned decision (:attr:`BlindParams.decision`).
    """
    learned = p.decision == "learned"
    if learned and network is None:
        raise DeblurkitError("the learned kernel decision needs the judge network (network=...); "
                             "or use BlindParams(decision='checks')")
    gray, kernel_size, ys, xs = prep.gray, prep.kernel_size, prep.ys, prep.xs
    h, w = gray.shape
    ny, nx = len(ys), len(xs)
    sigma = estimate_noise_sigma(gray)
    # Kernel estimation avoids clipped highlights, where the linear blur model does not hold.
    sat_d = None
    if prep.sat.any():
        import cv2

        sat_d = cv2.dilate(prep.sat.astype(np.uint8), np.ones((kernel_size, kernel_size), np.uint8)) > 0

    def agreement_wanted(kernel: np.ndarray, scale: float, consistency: float, overshoot: float) -> bool:
        # The agreement's two re-estimates are skipped where no threshold reads them, and for a
        # kernel the other checks decline.
        if agreement_threshold(scale, p) is None or scale <= min_scale:
            return False
        partial = {"overshoot": overshoot, "consistency": consistency, "agreement": math.inf, "scale": scale,
                   "connectedness": kernel_connectedness(kernel), "support": kernel_effective_support(kernel)}
        return _deconvolved(partial, p)

    def est(region: tuple[int, int, int, int], workers: int = 1) -> tuple[np.ndarray, dict[str, float]]:
        """Kernel of the region and its scores."""
        a, b, c, d = region
        exclude = None if sat_d is None else sat_d[a:b, c:d]

        def auto(bridge: float | None = None) -> KernelEstimate:
            return estimate_kernel_auto(gray[a:b, c:d], window=kernel_size, crop=p.est_crop, exclude=exclude,
                                        max_overshoot=p.max_overshoot, workers=workers,
                                        agreement_wanted=agreement_wanted,
                                        measure_consistency=p.consistency is not None, cut=p.kernel_cut,
                                        bridge=bridge)

        def overturned(found: KernelEstimate, scores: dict[str, float], bridge: float | None = None) -> None:
            # The half-image re-estimates (made as ``found`` was) are made only where they can
            # overturn a decline: for a kernel longer than a delta at the scale it was estimated on.
            if p.region_agreement is not None and _longer_than_delta(scores, p) and not _deconvolved(scores, p):
                scores["region_agreement"] = region_agreement(
                    gray[a:b, c:d], found.kernel, found.scale, crop=p.est_crop, exclude=exclude, workers=workers,
                    cut=p.kernel_cut, bridge=bridge)

        r = auto()
        scores = kernel_scores(r, sigma)
        if r.scale > min_scale:
            overturned(r, scores)
        # A join is kept only at full resolution (scale 1), which a ``min_scale`` of 1 or more discards.
        if p.kernel_bridge is None or _deconvolved(scores, p) or min_scale >= 1.0:
            return r.kernel, scores
        joined = auto(p.kernel_bridge)
        # Only a join that mattered (the cut splits the kernel) and a kernel with a pause; at full
        # resolution, where the kernel is the one the pieces were joined on.
        if (joined.scale == 1.0 and kernel_connectedness(joined.kernel, rel=p.kernel_cut) < 1.0
                and kernel_pause_share(joined.kernel, rel=p.kernel_cut) >= p.pause_spot):
            joined_scores = {**kernel_scores(joined, sigma), "bridged": 1.0}
            # The checks, the half-image overturn included (re-estimated with the join).
            overturned(joined, joined_scores, p.kernel_bridge)
            if _deconvolved(joined_scores, p):
                return joined.kernel, joined_scores
        return r.kernel, scores

    energy = _texture_map(gray)
    if sat_d is not None:
        energy = np.where(sat_d, 0.0, energy)
    tile_energy = np.array([[energy[a:b, c:d].mean() for c, d in xs] for a, b in ys])
    ref_energy = float(np.median(tile_energy)) if tile_energy.size else 0.0
    # Regions to estimate: every textured tile; the whole image (when tiled) only if a
    # texture-poor tile has to borrow its kernel.
    textured = [(i, j) for i in range(ny) for j in range(nx)
                if not (ny * nx > 1 and tile_energy[i, j] < p.min_texture * ref_energy)]
    regions = [(ys[i][0], ys[i][1], xs[j][0], xs[j][1]) for i, j in textured]
    if ny * nx > 1 and len(textured) < ny * nx:
        regions.append((0, h, 0, w))
    results: list[tuple[np.ndarray, dict[str, float]]] = []
    if len(regions) == 1:
        # One region: its independent estimates run in parallel instead.
        results.append(est(regions[0], _workers(p.workers, 4)))
        tick()
    elif _workers(p.workers, len(regions)) <= 1:
        for r in regions:
            results.append(est(r))
            tick()
    else:
        # The FFTs and array arithmetic release the GIL, so threads use several cores.
        with ThreadPoolExecutor(max_workers=_workers(p.workers, len(regions))) as pool:
            for f in [pool.submit(est, r) for r in regions]:
                results.append(f.result())
                tick()
    if ny * nx > 1 and len(textured) == ny * nx:
        tick()  # the global estimate was not needed; it still counts as one step of progress
    chosen: dict[tuple[int, int], tuple[np.ndarray, dict[str, float]]] = dict(zip(textured, results))
    for i in range(ny):
        for j in range(nx):
            if (i, j) not in chosen:
                chosen[(i, j)] = results[-1]  # the whole image's kernel
                tick()  # a borrowed kernel counts as one step of progress too
    kernels = _stacked({tile: k for tile, (k, _) in chosen.items()}, (ny, nx), kernel_size)
    blurred = np.zeros((ny, nx), dtype=bool)
    scores = [[dict(chosen[(i, j)][1]) for j in range(nx)] for i in range(ny)]  # a borrowed kernel's own copy
    for i, j in chosen:
        sc = scores[i][j]
        blurred[i, j] = _deconvolved(sc, p)
        # The learned decision may still decline a kernel the checks trust, where it was found at
        # full resolution as on its training photos (too small for the large-blur hypothesis).
        if learned and blurred[i, j] and sc["scale"] <= 1.0 and sc["scale"] > min_scale:
            # In the common window, as in training: the features read the window's size.
            blurred[i, j] = _judged(prep, (i, j), kernels[i, j], sc, sigma, p, network)
    # A tile that borrowed the global kernel has too little texture to refit it on.
    own = np.zeros_like(blurred)
    for i, j in textured:
        own[i, j] = True
    if network is not None and p.refit_side is not None and (blurred & own).any():
        kernels = _refitted(prep, kernels, blurred & own, sigma, p, network)
    return kernels, blurred, sigma, scores


def _refitted(prep: _Prepared, kernels: np.ndarray, refit: np.ndarray, sigma: float, p: BlindParams,
              network: Network) -> np.ndarray:
    """``kernels`` ``(ny, nx, k, k)`` with the kernel of each tile flagged in ``refit`` refitted on
    that tile (:func:`refitted_kernel`), all padded to one common size."""
    return _stacked({(i, j): refitted_kernel(prep.lin[a:b, c:d], kernels[i, j], scale=prep.scale, sigma=sigma,
                                             network=network, space=prep.space, params=p)
                     if refit[i, j] else kernels[i, j]
                     for i, (a, b) in enumerate(prep.ys) for j, (c, d) in enumerate(prep.xs)}, kernels.shape[:2])


def _workers(requested: int, jobs: int) -> int:
    """Threads for the kernel estimates: ``requested`` (0 = one per CPU core), at most ``jobs``."""
    import os

    n = requested if requested > 0 else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                          else (os.cpu_count() or 1))
    return max(1, min(n, jobs))


def _resolved_settings(p: BlindParams, prep: _Prepared, input_space: ColorSpace, blur_space: ColorSpace) -> dict:
    """The settings actually used, for reports."""
    return {**p.__dict__, "kernel_size": prep.kernel_size, "tiles": [len(prep.ys), len(prep.xs)],
            "input_space": input_space, "blur_space": blur_space}


class _Counter:
    """Progress steps: ``tick()`` after each; ``total`` grows when a second estimate is made."""

    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _estimate_in_blur_space(image: np.ndarray, prep: _Prepared, input_space: ColorSpace, p: BlindParams,
                            tick: _Counter, network: Network | None) -> tuple[_Prepared, np.ndarray, np.ndarray, float,
                                                     list[list[dict[str, float]]], ColorSpace]:
    """:func:`_estimate` in linear light, else (:attr:`BlindParams.encoded_fallback`) on the encoded values.

    Args:
        image: the caller's image, encoded as ``input_space``; ``prep``: it prepared by :func:`_prepare`.

    Returns:
        The prepared image the kernels belong to (``prep`` or the encoded values' own), the
        outputs of :func:`_estimate`, and the space in which the kernels convolve.
    """
    found = _estimate(prep, p, tick, network=network)
    # Blur made on the encoded values blurs linear light too: a photo whose kernels there are all
    # near-deltas is taken as sharp, not estimated again.
    seen_blur = any(_longer_than_delta(sc, p) for row in found[3] for sc in row)
    if input_space != "srgb" or p.encoded_fallback is None or found[1].any() or not seen_blur:
        return prep, *found, "linear"
    # The encoded values read as linear light: the same estimator and checks on the same tiles,
    # on the values the blur may have convolved.
    encoded = replace(_prepare(image, kernel_size=prep.kernel_size, tiles=(len(prep.ys), len(prep.xs)),
                               input_space="linear", p=p), space="srgb")
    tick.total += _n_estimates(encoded)
    kernels, blurred, sigma, scores = _estimate(encoded, p, tick, min_scale=p.encoded_fallback, network=network)
    large = np.array([[sc["scale"] > p.encoded_fallback for sc in row] for row in scores], dtype=bool)
    blurred &= large
    if not blurred.any():
        return prep, *found, "linear"
    return encoded, kernels, blurred, sigma, scores, "srgb"


def estimate_tile_kernels(
    image: np.ndarray,
    *,
    kernel_size: int = 31,
    tiles: int | tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
    input_space: ColorSpace = "srgb",
    params: BlindParams | None = None,
    network: Network | None = None,
) -> TileKernels:
    """Step 2 of the pipeline alone: blind kernels per tile, without deconvolving.

    Args: as :func:`deblur_image_and_kernels`.

    Returns:
        :class:`TileKernels` (the same kernels and flags :func:`deblur_image_and_kernels` uses).
    """
    p = params or BlindParams()
    prep = _prepare(image, kernel_size=kernel_size, tiles=tiles, input_space=input_space, p=p)
    prep, kernels, blurred, sigma, scores, space = _estimate_in_blur_space(
        image, prep, input_space, p, _Counter(progress, _n_estimates(prep)), network)
    resolved = _resolved_settings(p, prep, input_space, space)
    return TileKernels(kernels, blurred, sigma, prep.scale, prep.ys, prep.xs, resolved, scores, space)


def deblur_image_and_kernels(
    image_srgb: np.ndarray,
    *,
    kernel_size: int = 31,
    tiles: int | tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
    input_space: ColorSpace = "srgb",
    params: BlindParams | None = None,
    network: Network | None = None,
) -> DeblurResult:
    """Blind kernel-aware deblurring; returns the image together with the kernels found.

    Args:
        image_srgb: float32 ``(H, W, 3)`` (or ``(H, W)``) in [0, 1], encoded as ``input_space``.
        kernel_size: kernel window of the estimator at every scale, in pixels (odd; even values
            are rounded up). Larger blurs are estimated on a downscaled image, up to about a
            tenth of the image side; the kernels returned may be larger than this.
        tiles: kernel grid for spatially varying blur: an int ``n`` (n x n), ``(ny, nx)``, or
            None for automatic (one tile per ~4 x ``est_crop`` pixels of side, at most 3 x 3).
        progress: optional ``progress(done, total)`` callback.
        input_space: ``"srgb"`` (default) or ``"linear"`` (raw-derived images); the output is
            in the same space.
        params: tuning (:class:`BlindParams`).
        network: the judge network of the learned decision (needed where ``params.decision`` is
            ``"learned"``; :data:`deblurkit.kernel_aware.decision.Network`); given, it also refits
            the kernels deconvolved (:attr:`BlindParams.refit_side`).

    Returns:
        :class:`DeblurResult` (image in the input's shape and space).
    """
    p = params or BlindParams()
    prep = _prepare(image_srgb, kernel_size=kernel_size, tiles=tiles, input_space=input_space, p=p)
    kernel_size, ys, xs = prep.kernel_size, prep.ys, prep.xs
    h, w = prep.lin.shape[:2]
    n_blocks_y = [max(1, int(np.ceil((b - a) / p.block))) for a, b in ys]
    n_blocks_x = [max(1, int(np.ceil((b - a) / p.block))) for a, b in xs]
    total = _n_estimates(prep) + sum(n_blocks_y) * sum(n_blocks_x)
    tick = _Counter(progress, total)
    prep, kernels, blurred, sigma, _, space = _estimate_in_blur_space(image_srgb, prep, input_space, p, tick, network)
    lin, scale = prep.lin, prep.scale  # the values the kernels convolve: linear light or the encoded ones
    kernel_size = kernels.shape[-1]  # the largest kernel found (at least the window)

    resolved = _resolved_settings(p, prep, input_space, space)
    if not blurred.any():
        if progress is not None:
            progress(tick.total, tick.total)
        out = np.asarray(image_srgb, dtype=np.float32).copy()
        delta = np.zeros((kernel_size, kernel_size), np.float32)
        delta[kernel_size // 2, kernel_size // 2] = 1.0
        kernels[:] = delta
        return DeblurResult(out, kernels, blurred, sigma, resolved)

    weight = p.prior_weight(sigma)
    cells, tile_of = [], []  # deconvolution blocks of at most p.block pixels, tile by tile
    for i, (a, b) in enumerate(ys):
        for j, (c, d) in enumerate(xs):
            for (ba, bb) in split_evenly(b - a, n_blocks_y[i]):
                for (bc, bd) in split_evenly(d - c, n_blocks_x[j]):
                    cells.append((a + ba, a + bb, c + bc, c + bd))
                    tile_of.append((i, j))

    def deconvolve(index: int, region: tuple[int, int, int, int]) -> np.ndarray:
        ey0, ey1, ex0, ex1 = region
        patch = lin[ey0:ey1, ex0:ex1]
        i, j = tile_of[index]
        if not blurred[i, j]:
            return patch
        k = kernels[i, j]
        return hyper_laplacian_deconv(patch / scale, k, weight=weight, alpha=p.alpha,
                                      shift=kernel_centroid_offset(k)) * scale

    # Blocks in threads (one per core): same result, blocks are added in order.
    out_lin = blend_regions(h, w, lin.shape[2], cells, deconvolve, overlap=p.overlap,
                            margin=3 * kernel_size + p.overlap, progress=tick,
                            workers=_workers(p.workers, sum(bool(blurred[t]) for t in tile_of)))
    out = linear_to_srgb(out_lin) if input_space == "srgb" and space == "linear" else np.clip(out_lin, 0.0, 1.0)
    if np.asarray(image_srgb).ndim == 2:
        out = out[..., 0]
    return DeblurResult(out.astype(np.float32), kernels, blurred, sigma, resolved)


def deblur_image(
    image_srgb: np.ndarray,
    *,
    kernel_size: int = 31,
    tiles: int | tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
    input_space: ColorSpace = "srgb",
    params: BlindParams | None = None,
    network: Network | None = None,
) -> np.ndarray:
    """Blind kernel-aware deblurring of a photo (see the module docstring for the steps).

    Args:
        image_srgb: float32 ``(H, W, 3)`` (or ``(H, W)``) in [0, 1], encoded as ``input_space``.
        kernel_size: kernel window of the estimator at every scale, in pixels.
        tiles: kernel grid (int, ``(ny, nx)``) or None for automatic.
        progress: optional ``progress(done, total)`` callback.
        input_space: ``"srgb"`` or ``"linear"``; output in the same space.
        params: tuning (:class:`BlindParams`).
        network: the judge network of the learned decision (see :func:`deblur_image_and_kernels`).

    Returns:
        float32 array of the input's shape in [0, 1]; the input itself (copied) when no blur
        is detected.
    """
    return deblur_image_and_kernels(
        image_srgb, kernel_size=kernel_size, tiles=tiles, progress=progress,
        input_space=input_space, params=params, network=network,
    ).image


def deconvolve_with_kernel(linear: np.ndarray, kernel: np.ndarray, params: BlindParams | None = None) -> np.ndarray:
    """The pipeline's deconvolution for a known kernel, on a whole linear-light image.

    Hyper-Laplacian deconvolution at the working brightness scale
    (:func:`deblurkit.color.working_scale` of the luminance), with the prior weight raised for
    the noise measured on the image, as :func:`deblur_image_and_kernels` does per tile.

    Args:
        linear: float32 ``(H, W, 3)`` linear light.
        kernel: ``(k, k)`` blur kernel summing to 1.
        params: tuning (:class:`BlindParams`; ``weight``, ``noise_weight`` and ``alpha`` are used).

    Returns:
        The deconvolved linear image, same shape (not clipped).
    """
    p = params or BlindParams()
    gray = luminance(linear)
    scale = working_scale(gray)
    sigma = estimate_noise_sigma(gray / scale)
    return hyper_laplacian_deconv(linear / scale, kernel, weight=p.prior_weight(sigma), alpha=p.alpha,
                                  shift=kernel_centroid_offset(kernel)) * scale
