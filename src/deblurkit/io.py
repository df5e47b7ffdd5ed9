"""Image and file I/O shared by every part of the toolkit.

Conventions: images in memory are float32 numpy arrays ``(H, W, C)`` in [0, 1], sRGB-encoded
unless a function name says otherwise. Bit depth comes from the file's mode, never from pixels.
Every write goes to a temporary name in the target folder and is renamed into place, so an
interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from deblurkit.errors import DeblurkitError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it to ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path``
    is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_image_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as float32 sRGB ``(H, W, 3)`` in [0, 1].

    EXIF orientation is applied; grayscale is replicated to 3 channels; alpha is dropped
    (composited on nothing); 16-bit files keep their precision (scaled by 65535).

    Raises:
        DeblurkitError: the file is missing, not an image, or truncated.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DeblurkitError(f"{path}: no such file")
    if path.suffix.lower() in (".png", ".tif", ".tiff"):
        # Pillow reads 48-bit RGB as 8-bit; OpenCV keeps 16 bits (these formats rarely carry EXIF rotation).
        arr = _read_with_opencv(path)
        if arr is not None:
            return arr
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DeblurkitError(f"{path}: cannot read image ({exc})") from None
    return pil_to_float_rgb(im)


def _read_with_opencv(path: Path) -> np.ndarray | None:
    import cv2

    raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype not in (np.uint8, np.uint16):
        return None  # let Pillow try (and report) it
    scale = 255.0 if raw.dtype == np.uint8 else 65535.0
    arr = raw.astype(np.float32) / scale
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., 2::-1])  # BGR(A) -> RGB, alpha dropped


def pil_to_float_rgb(im) -> np.ndarray:
    """Convert a PIL image of any mode to float32 sRGB ``(H, W, 3)`` in [0, 1] (range from the mode)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def float_to_uint(img: np.ndarray, bits: int = 8) -> np.ndarray:
    """Quantise a float image in [0, 1] to uint8 / uint16 with rounding (values are clipped)."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    scale = 255.0 if bits == 8 else 65535.0
    out = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0) * scale + 0.5
    return out.astype(np.uint8 if bits == 8 else np.uint16)


def save_png(path: str | os.PathLike[str], img: np.ndarray, bits: int = 8) -> None:
    """Write a float image in [0, 1] (``(H, W)`` or ``(H, W, 3|4)``) as PNG, atomically.

    PNG encoding is deterministic (same pixels => same bytes), which the synthesis CLI relies on.
    """
    import cv2

    arr = float_to_uint(img, bits)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]  # RGB -> BGR for OpenCV
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise DeblurkitError(f"{path}: PNG encoding failed")
    with atomic_write(path) as fh:
        fh.write(buf.tobytes())


def iter_image_files(root: str | os.PathLike[str]) -> list[Path]:
    """All image files below ``root`` (recursive, sorted, by suffix), hidden files skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DeblurkitError(f"{root}: not a folder")
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
