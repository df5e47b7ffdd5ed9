"""The one restorer contract: :class:`Restorer`, :data:`ProgressFn` and :class:`RestorerInfo`.

``restorer(image)`` takes an sRGB image in [0, 1], either a NumPy ``(H, W, C)`` float array
(C = 1, 3 or 4; also ``(H, W)``) or a PIL image, and returns the same type and shape. Grayscale is
replicated to RGB for the method and averaged back; an alpha channel is passed through
untouched; the output is clamped to [0, 1]. Values are never rescaled by guessing the range:
integer arrays are refused. Every deblurring method (:mod:`deblurkit.infer.restorers`,
:mod:`deblurkit.kernel_aware.refine`) subclasses :class:`Restorer` and implements
:meth:`Restorer.restore_rgb`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from deblurkit.errors import DeblurkitError

__all__ = ["ProgressFn", "Restorer", "RestorerInfo", "RestorerKind"]

#: ``progress(done, total)``: called after each unit of work (tiles, kernel estimates, stages).
ProgressFn = Callable[[int, int], None]
RestorerKind = Literal["network", "classical", "identity"]


@dataclass(frozen=True)
class RestorerInfo:
    """One entry of :func:`list_restorers`."""

    name: str
    kind: RestorerKind
    description: str


class Restorer:
    """Base class: handles the image contract; subclasses implement :meth:`restore_rgb`."""

    name: str = "restorer"
    description: str = ""
    kind: RestorerKind = "identity"

    def restore_rgb(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        """Deblur ``(H, W, 3)`` float32 sRGB in [0, 1]; returns the same shape (not yet clamped)."""
        raise NotImplementedError

    def __call__(self, image: Any, progress: ProgressFn | None = None) -> Any:
        """Deblur ``image`` (NumPy ``(H, W[, C])`` float in [0, 1], or PIL); returns the same type/shape."""
        if _is_pil(image):
            return _call_pil(self, image, progress)
        arr = np.asarray(image)
        if not np.issubdtype(arr.dtype, np.floating):
            raise DeblurkitError(
                f"expected a float image in [0, 1], got dtype {arr.dtype}; convert first (e.g. img / 255.0 for 8-bit)"
            )
        squeeze = arr.ndim == 2
        if squeeze:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise DeblurkitError(f"expected an image of shape (H, W) or (H, W, C) with C in 1..4, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise DeblurkitError("image contains NaN or infinite values")
        c = arr.shape[2]
        color = arr[..., :1] if c in (1, 2) else arr[..., :3]
        alpha = arr[..., c - 1:] if c in (2, 4) else None
        rgb = np.ascontiguousarray(np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color, dtype=np.float32)
        out = np.clip(np.asarray(self.restore_rgb(np.clip(rgb, 0.0, 1.0), progress), dtype=np.float32), 0.0, 1.0)
        if out.shape != rgb.shape:
            raise RuntimeError(f"{self.name}: returned shape {out.shape}, expected {rgb.shape}")
        if color.shape[2] == 1:
            out = out.mean(axis=2, keepdims=True)
        if alpha is not None:
            out = np.concatenate([out, alpha.astype(np.float32)], axis=2)
        if squeeze:
            out = out[..., 0]
        return out.astype(arr.dtype, copy=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.")


def _call_pil(restorer: Restorer, im: Any, progress: ProgressFn | None) -> Any:
    """A PIL image through ``restorer``, decoded by :func:`deblurkit.photo_io.pil_to_pixels`; same mode family back."""
    from PIL import Image

    from deblurkit.photo_io import pil_to_pixels

    sixteen = im.mode in ("I;16", "I;16B", "I;16L", "I")
    pixels, _ = pil_to_pixels(im, None, "image")
    out = np.clip(restorer(pixels, progress), 0, 1)
    if sixteen:
        return Image.fromarray((out[..., 0] * 65535.0 + 0.5).astype(np.uint16))
    arr = (out * 255.0 + 0.5).astype(np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    return Image.fromarray(arr[..., 0] if mode == "L" else arr, mode=mode)
