"""Image and file I/O shared by every part of the toolkit.

Conventions: images in memory are float32 numpy arrays ``(H, W, C)`` in [0, 1], sRGB-encoded
unless a function name says otherwise. Bit depth comes from the file's mode, never from pixels.
Every write goes to a temporary name in the target folder and is renamed into place, so an
interrupted run never leaves a half-written file. A temporary name carries its writer's process id
(``.<name>.<pid>-<random>.tmp``); one left by a killed process is removed by the next write into
that folder.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

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
    remove_stale_temp_files(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
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


_TEMP_NAME = re.compile(r"^\..+\.(\d+)-[^./]+\.tmp$")
_swept: set[tuple[int, str]] = set()
_swept_lock = threading.Lock()


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files of :func:`atomic_write` left in ``folder`` by processes that are gone.

    Runs once per folder and process (later calls return ``[]``). Files of live processes (a
    concurrent writer) are kept.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    key = (os.getpid(), str(folder.resolve()))
    with _swept_lock:
        if key in _swept:
            return []
        _swept.add(key)
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    except OSError:
        return removed
    for p in candidates:
        m = _TEMP_NAME.match(p.name)
        if m is None or _process_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists but is someone else's (or not a valid pid): leave its files alone
    return True


def ensure_writable_folder(folder: str | os.PathLike[str], *, label: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that files can be written in it, before any work starts.

    Args:
        folder: the folder.
        label: what it is, for the message (e.g. ``"--out"``, ``"out_dir"``).

    Returns:
        ``folder`` as a Path.

    Raises:
        DeblurkitError: (one line) it is a file, a parent of it is a file, it cannot be created,
            or a file cannot be created in it (permissions, read-only or full file system).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DeblurkitError(f"{label} {folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DeblurkitError(f"{label} {folder}: a parent of it is a file, not a folder") from None
    except OSError as exc:
        raise DeblurkitError(f"{label} {folder}: cannot create it ({describe_os_error(exc)})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".deblurkit-probe.{os.getpid()}-", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DeblurkitError(f"{label} {folder}: cannot write there ({describe_os_error(exc)})") from None
    return folder


def describe_os_error(exc: OSError) -> str:
    """A short reason for an OSError: ``"No space left on device"``, ``"Permission denied"``, ..."""
    if exc.strerror:
        return exc.strerror
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def write_error(path: str | os.PathLike[str], exc: OSError) -> DeblurkitError:
    """The one-line error for a failed write of ``path`` (full disk, permissions, a folder in the way)."""
    if exc.errno == errno.ENOSPC:
        return DeblurkitError(f"{path}: cannot write, the disk is full (nothing was left behind)")
    return DeblurkitError(f"{path}: cannot write ({describe_os_error(exc)})")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_image_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as float32 sRGB ``(H, W, 3)`` in [0, 1].

    Decoded by :func:`deblurkit.photo_io.read_photo_file` (header first; bit depth from the file
    header, EXIF orientation applied, palette and CMYK converted); grayscale is replicated to 3
    channels and alpha is dropped.

    Raises:
        DeblurkitError: the file is missing, not an image, or truncated.
    """
    from deblurkit.photo_io import read_photo_file

    path = Path(path)
    if not path.is_file():
        raise DeblurkitError(f"{path}: no such file")
    pixels = read_photo_file(path, name=str(path)).pixels
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


ExrPrecision = Literal["float", "half"]


def require_openexr():
    """The ``OpenEXR`` module; a one-line :class:`DeblurkitError` with the install hint if it is missing."""
    try:
        import OpenEXR
    except ImportError:
        raise DeblurkitError("EXR files need the OpenEXR package: pip install 'deblurkit[exr]'") from None
    return OpenEXR


def save_exr_linear(path: str | os.PathLike[str], img: np.ndarray, *, precision: ExrPrecision = "float") -> None:
    """Write a linear high-dynamic-range image as OpenEXR (ZIP-compressed scan lines), atomically.

    Values are written as they are (no clipping, no tone curve): linear light, any non-negative
    range, e.g. 1 = a camera's clipping level and more in restored highlights.

    Args:
        path: the ``.exr`` file.
        img: ``(H, W, 3)`` linear RGB or ``(H, W)`` grey, float, finite.
        precision: ``"float"`` (32-bit, exact) or ``"half"`` (16-bit float: 11-bit mantissa,
            at most 65504, half the size).

    Raises:
        DeblurkitError: (one line) the OpenEXR package is missing, or ``img`` is not
            ``(H, W)`` / ``(H, W, 3)``, or has non-finite values; ``path`` is then left untouched.
    """
    arr = np.asarray(img)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.size == 0:
        raise DeblurkitError(f"{path}: EXR needs an (H, W) or (H, W, 3) image, got shape {arr.shape}")
    if precision not in ("float", "half"):
        raise DeblurkitError(f"{path}: unknown EXR precision {precision!r}; valid: float, half")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DeblurkitError(f"{path}: image has non-finite values (NaN or inf); nothing written")
    if precision == "half":
        if np.abs(arr).max() > np.finfo(np.float16).max:
            raise DeblurkitError(f"{path}: image has values beyond half-float range (65504); nothing written")
        arr = arr.astype(np.float16)
    exr = require_openexr()
    header = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
    buf = io.BytesIO()
    with exr.File(header, {"RGB" if arr.ndim == 3 else "Y": arr}) as f:
        f.write(buf)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def load_exr_linear(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an OpenEXR file's RGB (or grey ``Y``) channels as float32 ``(H, W, 3)`` / ``(H, W)``, linear.

    Raises:
        DeblurkitError: (one line) the OpenEXR package is missing, the file is missing or not
            a readable EXR, or it has neither RGB nor Y channels.
    """
    path = Path(path)
    if not path.is_file():
        raise DeblurkitError(f"{path}: no such file")
    exr = require_openexr()
    try:
        with exr.File(str(path)) as f:
            channels = f.channels()
            key = "RGB" if "RGB" in channels else "Y" if "Y" in channels else None
            if key is None:
                raise DeblurkitError(f"{path}: EXR has neither RGB nor Y channels ({', '.join(channels)})")
            return np.ascontiguousarray(channels[key].pixels, dtype=np.float32)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DeblurkitError(f"{path}: not a readable EXR file ({str(exc).splitlines()[0][:120]})") from None


def iter_image_files(root: str | os.PathLike[str]) -> list[Path]:
    """All image files below ``root`` (recursive, sorted, by suffix), hidden files skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DeblurkitError(f"{root}: not a folder")
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
