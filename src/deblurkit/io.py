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

    Decoded by :func:`deblurkit.photo_io.read_photo` (bit depth from the file header, EXIF
    orientation applied, palette and CMYK converted); grayscale is replicated to 3 channels and
    alpha is dropped.

    Raises:
        DeblurkitError: the file is missing, not an image, or truncated.
    """
    from deblurkit.photo_io import read_photo

    path = Path(path)
    if not path.is_file():
        raise DeblurkitError(f"{path}: no such file")
    pixels = read_photo(path.read_bytes(), name=str(path)).pixels
    rgb = np.repeat(pixels[..., :1], 3, axis=2) if pixels.shape[2] < 3 else pixels[..., :3]
    return np.ascontiguousarray(rgb, dtype=np.float32)


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
