"""The ``kernel-refine`` pipeline: blind kernel estimation + multi-NSR Wiener + a learned refiner.

Steps, all with the colour space stated by the caller:

1. sRGB -> linear light (unless ``input_space="linear"``).
2. Blur kernel(s) from the classical kernel-aware pipeline (:func:`estimate_kernels`, which
   reuses :mod:`deblurkit.kernel_aware.blind`): one tile for uniform blur, a grid for blur that
   varies across the photo. A tile where no blur is found is left as it is; when no tile is
   blurred the input is returned unchanged (so sharp photos are never made worse).
3. Wiener deconvolution (:func:`deblurkit.kernel_aware.deconv.wiener_deconv`, border-safe) at the
   noise-to-signal ratios :data:`DEFAULT_NSRS`, scaled by ``1 + nsr`` so flat areas keep their
   brightness, per tile and blended over the tile overlaps; clipped and re-encoded to sRGB.
4. :class:`deblurkit.models.kernel_deconv_net.KernelDeconvNet` refines: it sees the blurry image
   plus the Wiener copies and predicts a residual on the middle copy (tiled for large images).
5. Tiles without blur are blended back to the input; output clipped to [0, 1].

The shipped weights live in ``deblurkit/weights/kernel-refine.safetensors`` (model card
``kernel-refine.md``; trained by ``studies/train_kernel_refine.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deblurkit.color import ColorSpace, linear_to_srgb, srgb_to_linear
from deblurkit.errors import DeblurkitError
from deblurkit.infer.base import ProgressFn, Restorer
from deblurkit.infer.tiling import blend_regions, split_evenly
from deblurkit.kernel_aware.blind import min_image_side
from deblurkit.models.checkpoint import bundled_weights_dir

__all__ = [
    "DEFAULT_NSRS",
    "WEIGHTS_PATH",
    "KernelRefineParams",
    "KernelRefineRestorer",
    "KernelRefineResult",
    "estimate_kernels",
    "load_kernel_refine_model",
    "refine_image",
    "refine_image_and_kernels",
    "save_kernel_refine_weights",
    "wiener_stack",
]

#: Noise-to-signal ratios of the Wiener copies fed to the network (weakest regularisation first).
DEFAULT_NSRS: tuple[float, ...] = (2e-3, 1e-2, 5e-2)
#: The weights shipped with the package.
WEIGHTS_PATH = bundled_weights_dir() / "kernel-refine.safetensors"


@dataclass(frozen=True)
class KernelRefineParams:
    """Settings of :func:`refine_image`."""

    kernel_size: int = 31
    """Largest blur to model, in pixels (odd)."""
    no_blur_support: float | None = None
    """Override of the classical "no blur" threshold on the kernel's effective support
    (:class:`deblurkit.kernel_aware.blind.BlindParams`); None keeps the classical default."""
    agreement: float | None = None
    """Override of the kernel-agreement threshold at every scale (:attr:`BlindParams.agreement`
    and :attr:`BlindParams.agreement_downscaled`); None keeps the classical defaults."""
    overlap: int = 48
    """Blend width between neighbouring kernel tiles, in pixels."""
    net_tile: int = 512
    """Tile side for the network on large images (bounds memory); 0 = whole image."""
    net_overlap: int = 64
    """Overlap between network tiles."""


@dataclass
class KernelRefineResult:
    """Output of :func:`refine_image_and_kernels`."""

    image: np.ndarray
    """Restored image, float32 ``(H, W, 3)`` in [0, 1], in the input's colour space."""
    kernels: np.ndarray
    """Kernels per tile ``(ny, nx, k, k)`` (a delta where no blur was detected)."""
    blurred: np.ndarray
    """Per-tile flag ``(ny, nx)``: True where blur was detected and restored."""
    params: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- kernels


def estimate_kernels(
    image: np.ndarray,
    *,
    input_space: ColorSpace = "srgb",
    tiles: int | tuple[int, int] | None = None,
    kernel_size: int = 31,
    progress: ProgressFn | None = None,
    no_blur_support: float | None = None,
    agreement: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blind blur kernels per tile, from the classical kernel-aware pipeline.

    Reuses :mod:`deblurkit.kernel_aware.blind` (crop selection, coarse-to-fine L0 estimation,
    trust checks, "no blur" detection, texture-poor tiles borrowing the global kernel), so
    both pipelines see the same kernels: :func:`~deblurkit.kernel_aware.blind.estimate_tile_kernels`.

    Args:
        image: float32 ``(H, W, 3)`` in [0, 1], encoded as ``input_space``.
        input_space: ``"srgb"`` or ``"linear"``.
        tiles: kernel grid: int ``n`` (n x n), ``(ny, nx)`` or None (automatic).
        kernel_size: largest blur to model, in pixels.
        progress: optional ``progress(done, total)``.
        no_blur_support, agreement: overrides of the classical detection thresholds
            (None = the classical defaults).

    Returns:
        ``(kernels (ny, nx, k, k) float32, blurred (ny, nx) bool)``.
    """
    import dataclasses

    from deblurkit.kernel_aware import blind

    overrides = {k: v for k, v in (("no_blur_support", no_blur_support), ("agreement", agreement),
                                   ("agreement_downscaled", agreement)) if v is not None}
    # Linear-light kernels only: the refiner's Wiener inputs are made in linear light.
    bp = dataclasses.replace(blind.BlindParams(), encoded_fallback=None, **overrides)
    res = blind.estimate_tile_kernels(image, kernel_size=kernel_size, tiles=tiles, progress=progress,
                                      input_space=input_space, params=bp)
    return np.asarray(res.kernels, np.float32), np.asarray(res.blurred, bool)


# ----------------------------------------------------------------------------- Wiener inputs


def wiener_stack(lin: np.ndarray, kernel: np.ndarray, nsrs: tuple[float, ...] = DEFAULT_NSRS) -> np.ndarray:
    """Wiener deconvolutions of a linear image at several NSRs, clipped and encoded to sRGB.

    Uses :func:`deblurkit.kernel_aware.deconv.wiener_deconv` and multiplies by ``1 + nsr`` so the
    image mean is kept (a delta kernel gives back the input exactly).

    Args:
        lin: float32 ``(H, W, 3)`` linear light.
        kernel: ``(k, k)`` summing to 1.
        nsrs: noise-to-signal ratios.

    Returns:
        float32 ``(H, W, 3 * len(nsrs))`` sRGB in [0, 1].
    """
    from deblurkit.kernel_aware.deconv import wiener_deconv

    outs = [linear_to_srgb(np.clip(wiener_deconv(lin, kernel, nsr=n) * (1.0 + n), 0.0, 1.0)) for n in nsrs]
    return np.concatenate(outs, axis=2).astype(np.float32)


# ----------------------------------------------------------------------------- weights


def save_kernel_refine_weights(model: Any, path: str | os.PathLike[str], *, meta: dict[str, Any]) -> None:
    """Write a :class:`KernelDeconvNet` and its training record to ``.safetensors`` (atomically)."""
    from deblurkit.models.checkpoint import save_safetensors

    save_safetensors(model, path, name="kernel-refine", meta=meta)


def load_kernel_refine_model(path: str | os.PathLike[str] | None = None) -> tuple[Any, dict[str, Any]]:
    """Load the refiner network (default: the shipped weights) through :mod:`deblurkit.models.checkpoint`.

    Returns:
        ``(model, meta)``: a :class:`KernelDeconvNet` in eval mode on CPU, and the metadata of
        :func:`deblurkit.models.checkpoint.load_model` (``name``, ``arch``, ``hparams``,
        ``training_data``, ``extra``, ``weights``).

    Raises:
        DeblurkitError: missing, unreadable or foreign file.
    """
    from deblurkit.models.checkpoint import load_safetensors

    return load_safetensors(WEIGHTS_PATH if path is None else path, architecture="kernel-deconv-net")


# ----------------------------------------------------------------------------- pipeline


def _run_net(model: Any, stack_chw: np.ndarray, p: KernelRefineParams, progress: Callable[[], None] | None) -> np.ndarray:
    import torch

    from deblurkit.infer.tiling import run_tiled

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    tile = p.net_tile if p.net_tile > 0 else None
    return run_tiled(stack_chw, run, multiple=model.size_multiple, tile=tile, overlap=p.net_overlap,
                     progress=progress, out_channels=3)


def refine_image_and_kernels(
    image: np.ndarray,
    model: Any,
    *,
    kernels: np.ndarray | None = None,
    blurred: np.ndarray | None = None,
    tiles: int | tuple[int, int] | None = None,
    input_space: ColorSpace = "srgb",
    params: KernelRefineParams | None = None,
    progress: ProgressFn | None = None,
) -> KernelRefineResult:
    """Run the kernel-refine pipeline; returns the image with the kernels used.

    Args:
        image: float32 ``(H, W, 3)`` in [0, 1], encoded as ``input_space``.
        model: a :class:`KernelDeconvNet` (see :func:`load_kernel_refine_model`).
        kernels: known kernel(s), skipping blind estimation: ``(k, k)`` for uniform blur or
            ``(ny, nx, k, k)`` per tile. Each must sum to 1.
        blurred: with ``kernels``, which tiles to restore ``(ny, nx)`` bool (default: every
            tile whose kernel is not a delta).
        tiles: kernel grid when estimating (see :func:`estimate_kernels`).
        input_space: ``"srgb"`` or ``"linear"``; the output is in the same space.
        params: settings.
        progress: optional ``progress(done, total)``.

    Returns:
        :class:`KernelRefineResult`.
    """
    import torch

    p = params or KernelRefineParams()
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DeblurkitError(f"expected an image of shape (H, W, 3), got {img.shape}")
    if input_space not in ("srgb", "linear"):
        raise DeblurkitError(f"unknown input space {input_space!r}; valid: linear, srgb")
    h, w = img.shape[:2]
    if min(h, w) < min_image_side(p.kernel_size):
        raise DeblurkitError(f"image {w}x{h} is too small (needs >= {min_image_side(p.kernel_size)} px per side)")
    img = np.clip(img.astype(np.float32), 0.0, 1.0)
    lin = srgb_to_linear(img) if input_space == "srgb" else img
    srgb = img if input_space == "srgb" else linear_to_srgb(img)
    nsrs = DEFAULT_NSRS
    if model.num_wiener != len(nsrs):
        raise DeblurkitError(f"model expects {model.num_wiener} Wiener inputs, the pipeline makes {len(nsrs)}")

    net_tiles = 1
    if p.net_tile > 0:
        from deblurkit.infer.tiling import count_tiles

        net_tiles = count_tiles(h, w, multiple=model.size_multiple, tile=p.net_tile, overlap=p.net_overlap)
    # Progress: the estimation phase reports its own (done, total); the later steps are added on.
    est_total = 0
    done = 0
    rest = 0

    def est_progress(d: int, t: int) -> None:
        nonlocal est_total
        est_total = t
        if progress:
            progress(d, t + rest)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(est_total + done, est_total + rest)

    if kernels is None:
        kernels, blurred = estimate_kernels(img, input_space=input_space, tiles=tiles, kernel_size=p.kernel_size,
                                            progress=est_progress, no_blur_support=p.no_blur_support,
                                            agreement=p.agreement)
        kernels = kernels / kernels.sum(axis=(2, 3), keepdims=True)
    else:
        kernels = np.asarray(kernels, np.float32)
        if kernels.ndim == 2:
            kernels = kernels[None, None]
        if kernels.ndim != 4 or kernels.shape[2] != kernels.shape[3]:
            raise DeblurkitError(f"kernels must be (k, k) or (ny, nx, k, k), got {kernels.shape}")
        if not np.all(np.isfinite(kernels)) or (kernels < 0).any() or (kernels.sum(axis=(2, 3)) <= 0).any():
            raise DeblurkitError("kernels must be finite, non-negative and have a positive sum")
        kernels = kernels / kernels.sum(axis=(2, 3), keepdims=True)
        if blurred is None:
            blurred = kernels.max(axis=(2, 3)) < 1.0 - 1e-6  # anything but a delta
        blurred = np.asarray(blurred, bool)
        if blurred.shape != kernels.shape[:2]:
            raise DeblurkitError(f"blurred must have shape {kernels.shape[:2]}, got {blurred.shape}")
    ny, nx = kernels.shape[:2]
    rest = ny * nx + net_tiles
    resolved = {**p.__dict__, "tiles": [ny, nx], "nsrs": list(nsrs), "input_space": input_space}
    if not blurred.any():
        if progress:
            progress(est_total + rest, est_total + rest)
        return KernelRefineResult(np.asarray(image, np.float32).copy(), kernels, blurred, resolved)

    # Wiener copies per kernel tile, blended over the overlaps; the last channel is 1 where the
    # tile was blurred (after blending: the share of blurred tiles at each pixel).
    n = len(nsrs)
    ys, xs = split_evenly(h, ny), split_evenly(w, nx)
    cells = [(a, b, c, d) for (a, b) in ys for (c, d) in xs]

    def wiener_copies(index: int, region: tuple[int, int, int, int]) -> np.ndarray:
        ey0, ey1, ex0, ex1 = region
        i, j = divmod(index, nx)
        if not blurred[i, j]:
            copies = np.tile(srgb[ey0:ey1, ex0:ex1], (1, 1, n))
        else:
            copies = wiener_stack(lin[ey0:ey1, ex0:ex1], kernels[i, j], nsrs)
        flag = np.full((ey1 - ey0, ex1 - ex0, 1), 1.0 if blurred[i, j] else 0.0, np.float32)
        return np.concatenate([copies, flag], axis=2)

    blended = blend_regions(h, w, 3 * n + 1, cells, wiener_copies, overlap=p.overlap // 2,
                            margin=3 * kernels.shape[-1], progress=tick)
    stack, bmask = blended[..., :3 * n], blended[..., 3 * n:]
    net_in = np.concatenate([srgb, stack], axis=2).transpose(2, 0, 1)
    with torch.no_grad():
        out = _run_net(model, np.ascontiguousarray(net_in), p, tick).transpose(1, 2, 0)
    out = np.clip(bmask * out + (1.0 - bmask) * srgb, 0.0, 1.0)
    if input_space == "linear":
        out = srgb_to_linear(out)
    return KernelRefineResult(out.astype(np.float32), kernels, blurred, resolved)


def refine_image(
    image: np.ndarray,
    model: Any | None = None,
    *,
    kernels: np.ndarray | None = None,
    tiles: int | tuple[int, int] | None = None,
    input_space: ColorSpace = "srgb",
    params: KernelRefineParams | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Deblur a photo with the kernel-refine pipeline (see the module docstring).

    Args:
        image: float32 ``(H, W, 3)`` in [0, 1], encoded as ``input_space``.
        model: the refiner; None loads the shipped weights.
        kernels, tiles, input_space, params, progress: see :func:`refine_image_and_kernels`.

    Returns:
        float32 ``(H, W, 3)`` in [0, 1]; a copy of the input when no blur is detected.

    Example:
        >>> import numpy as np
        >>> from deblurkit.kernel_aware.refine import refine_image
        >>> img = np.random.default_rng(0).random((96, 96, 3), dtype=np.float32)
        >>> refine_image(img, kernels=np.ones((1, 1))).shape  # a delta kernel: returned unchanged
        (96, 96, 3)
    """
    if model is None:
        model, _ = load_kernel_refine_model()
    return refine_image_and_kernels(image, model, kernels=kernels, tiles=tiles, input_space=input_space,
                                    params=params, progress=progress).image


class KernelRefineRestorer(Restorer):
    """Restorer for :func:`refine_image` (register as ``"kernel-refine"``)."""

    name = "kernel-refine"
    kind = "network"
    description = ("kernel-aware learned deblurring: blind kernel estimation per tile, multi-strength Wiener "
                   "in linear light, refined by a small shipped network")

    def __init__(self, weights: str | os.PathLike[str] | None = None, *, tiles: int | None = None,
                 threads: int | None = None, params: KernelRefineParams | None = None,
                 loaded: tuple[Any, dict[str, Any]] | None = None) -> None:
        """``weights``: a weights file (None: the shipped one); ``loaded``: an already loaded
        ``(model, meta)`` pair from :func:`load_kernel_refine_model` instead."""
        self.model, self.meta = loaded if loaded is not None else load_kernel_refine_model(weights)
        self.tiles = tiles
        self.threads = threads
        self.params = params or KernelRefineParams()

    def restore_rgb(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        if min(rgb.shape[:2]) < min_image_side(self.params.kernel_size):
            if progress:
                progress(1, 1)
            return rgb.copy()  # too small to hold a measurable blur kernel
        return refine_image(rgb, self.model, tiles=self.tiles, params=self.params, progress=progress)
