"""Photo decoding and encoding that keeps what a photographer cares about.

A :class:`Photo` is the decoded pixels plus everything needed to write a faithful result:
bit depth (8 or 16, read from the file header, never guessed from pixel values), alpha,
grayscale, the EXIF block (with the orientation already applied to the pixels and the tag reset
to 1) and the ICC profile.

Conventions: ``Photo.pixels`` is float32 ``(H, W, C)`` in [0, 1], sRGB-encoded (or whatever the
ICC profile says; the profile is carried through untouched), with ``C`` = 1 (gray), 2 (gray +
alpha), 3 (RGB) or 4 (RGBA). Alpha is never premultiplied.

Every user-caused problem raises :class:`PhotoError` (a :class:`~deblurkit.errors.DeblurkitError`)
with a one-line message and a ``kind`` the web server maps to an HTTP status:
``"not-image"`` (415), ``"corrupt"`` (400), ``"too-large"`` (413), ``"unsupported"`` (415).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from deblurkit.errors import DeblurkitError

PhotoErrorKind = Literal["not-image", "corrupt", "too-large", "unsupported"]

#: Pillow's own decompression-bomb limit (about 89.5 megapixels), our default pixel cap.
DEFAULT_MAX_PIXELS = 89_478_485

#: Output suffix -> container format written by :func:`encode_photo`.
SUFFIX_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".heic": "HEIF",
    ".heif": "HEIF",
}

#: Container format -> (preferred suffix, MIME type).
FORMAT_INFO: dict[str, tuple[str, str]] = {
    "PNG": (".png", "image/png"),
    "JPEG": (".jpg", "image/jpeg"),
    "TIFF": (".tif", "image/tiff"),
    "WEBP": (".webp", "image/webp"),
    "BMP": (".bmp", "image/bmp"),
    "HEIF": (".heic", "image/heic"),
}

_EXIF_ORIENTATION = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"


class PhotoError(DeblurkitError):
    """A photo that cannot be read or written; ``kind`` says why (see the module docstring)."""

    def __init__(self, message: str, kind: PhotoErrorKind) -> None:
        super().__init__(message)
        self.kind: PhotoErrorKind = kind


@dataclass(frozen=True)
class Photo:
    """Decoded pixels plus the metadata needed to write them back faithfully."""

    pixels: np.ndarray
    """float32 ``(H, W, C)`` in [0, 1]; C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; orientation applied."""
    bits: int
    """Bit depth per sample in the source file: 8 or 16 (from the file header)."""
    format: str
    """Source container format as Pillow names it (``"PNG"``, ``"JPEG"``, ``"TIFF"``, ...)."""
    exif: bytes | None = None
    """Raw EXIF block (starting with ``b"Exif\\0\\0"``) with orientation reset to 1, or None."""
    icc_profile: bytes | None = None
    """ICC profile bytes, or None."""
    source_mode: str = ""
    """Pillow mode of the source (e.g. ``"CMYK"``, ``"P"``), for messages."""

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] in (2, 4)

    @property
    def is_gray(self) -> bool:
        return self.pixels.shape[2] in (1, 2)

    def with_pixels(self, pixels: np.ndarray) -> Photo:
        """A copy with new pixels (same metadata); ``pixels`` must keep the channel count."""
        if pixels.shape[2] != self.pixels.shape[2]:
            raise ValueError(f"channel count changed: {self.pixels.shape} -> {pixels.shape}")
        return replace(self, pixels=np.ascontiguousarray(pixels, dtype=np.float32))


# ----------------------------------------------------------------------------- decoding


def read_photo(data: bytes, *, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode an image file's bytes into a :class:`Photo`.

    The pixel count is checked from the header before any pixel is decoded, so a decompression
    bomb costs nothing. Palette images become RGB(A), CMYK becomes RGB (through its ICC profile
    when it has one), 16-bit PNG/TIFF keep 16 bits (decoded with OpenCV, since Pillow reduces
    48/64-bit RGB(A) to 8 bits).

    Args:
        data: the whole file.
        name: used in error messages.
        max_pixels: refuse images with more pixels (None: no limit besides Pillow's own).

    Returns:
        The decoded photo.

    Raises:
        PhotoError: empty, not an image, truncated/corrupt, too many pixels, or unsupported mode.
    """
    from PIL import Image, UnidentifiedImageError

    _register_heif()
    if not data:
        raise PhotoError(f"{name}: empty file (0 bytes)", "not-image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"{name}: too many pixels, refused as a possible decompression bomb ({exc})",
                         "too-large") from None
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image file (unrecognised format)", "not-image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"{name}: truncated or corrupt image header ({exc})", "corrupt") from None

    width, height = im.size
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if width * height > limit:
        raise PhotoError(f"{name}: image is {width}x{height} = {width * height:,} pixels, "
                         f"more than the limit of {limit:,}", "too-large")
    if width < 1 or height < 1:
        raise PhotoError(f"{name}: image has no pixels ({width}x{height})", "corrupt")

    fmt = im.format or "UNKNOWN"
    source_mode = im.mode
    bits = 16 if _is_16bit(im) else 8  # before getexif(), which may load the image and drop .tile
    icc = im.info.get("icc_profile") or None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if bits == 16 and fmt in ("PNG", "TIFF") and im.mode not in ("I;16", "I;16B", "I;16L", "I"):
                pixels = _decode_16bit_opencv(data, name)
            else:
                im.load()
                pixels, icc = pil_to_pixels(im, icc, name)
        exif_obj = _get_exif(im)  # after decoding: Pillow may load the whole PNG to find eXIf
    except PhotoError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise PhotoError(f"{name}: truncated or corrupt image data ({exc})", "corrupt") from None
    finally:
        im.close()
    orientation = int(exif_obj.get(_EXIF_ORIENTATION, 1)) if exif_obj is not None else 1

    pixels = apply_exif_orientation(pixels, orientation)
    exif_bytes = None
    if exif_obj is not None and len(exif_obj) > 0:
        if _EXIF_ORIENTATION in exif_obj:
            exif_obj[_EXIF_ORIENTATION] = 1
        try:
            exif_bytes = exif_obj.tobytes()
        except Exception:  # noqa: BLE001 - a malformed EXIF block is dropped rather than failing the photo
            exif_bytes = None
    return Photo(pixels=np.ascontiguousarray(pixels, dtype=np.float32), bits=bits, format=fmt,
                 exif=exif_bytes, icc_profile=icc, source_mode=source_mode)


def _register_heif() -> None:
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return
    pillow_heif.register_heif_opener()


def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read (``pillow-heif`` is installed)."""
    try:
        import pillow_heif  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def _get_exif(im):
    try:
        exif = im.getexif()
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not make the photo unreadable
        return None
    return exif if len(exif) else None


def _is_16bit(im) -> bool:
    """Bit depth from the decoder's raw mode (the file header), not from pixel values."""
    if im.mode in ("I;16", "I;16B", "I;16L"):
        return True
    if im.mode == "I" and im.format == "PNG":
        return True
    for tile in getattr(im, "tile", None) or []:
        args = tile[3] if not hasattr(tile, "args") else tile.args
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _decode_16bit_opencv(data: bytes, name: str) -> np.ndarray:
    import cv2

    raw = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise PhotoError(f"{name}: truncated or corrupt 16-bit image data", "corrupt")
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    if raw.dtype not in (np.uint8, np.uint16):
        raise PhotoError(f"{name}: unsupported sample type {raw.dtype}", "unsupported")
    arr = raw.astype(np.float32) / scale
    if arr.ndim == 2:
        return arr[..., None]
    if arr.shape[2] == 3:
        return arr[..., ::-1]
    if arr.shape[2] == 4:
        return arr[..., [2, 1, 0, 3]]
    return arr


def pil_to_pixels(im, icc: bytes | None, name: str) -> tuple[np.ndarray, bytes | None]:
    """Pixels of a loaded Pillow image as float32 (H, W, C); returns the ICC profile that still applies."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64) / 65535.0
        return np.clip(arr, 0.0, 1.0).astype(np.float32)[..., None], icc
    if mode == "F":
        raise PhotoError(f"{name}: floating-point images are not supported", "unsupported")
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc)
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr, icc


def _cmyk_to_rgb(im, icc: bytes | None):
    """CMYK -> RGB through the embedded profile when there is one (then the result is sRGB)."""
    from PIL import ImageCms

    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(im, src, dst, outputMode="RGB"), None
        except (OSError, ValueError, ImageCms.PyCMSError):
            pass  # unusable profile: fall back to the naive conversion below
    return im.convert("RGB"), None  # the CMYK profile no longer describes the pixels


def apply_exif_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip ``(H, W, C)`` pixels so that EXIF ``orientation`` (1..8) becomes 1.

    Shape:
        ``(H, W, C)`` -> ``(H, W, C)`` for orientations 1-4, ``(W, H, C)`` for 5-8.
    """
    o = orientation if orientation in range(1, 9) else 1
    if o == 2:
        return pixels[:, ::-1]
    if o == 3:
        return pixels[::-1, ::-1]
    if o == 4:
        return pixels[::-1]
    if o == 5:
        return pixels.transpose(1, 0, 2)
    if o == 6:
        return pixels[::-1].transpose(1, 0, 2)
    if o == 7:
        return pixels[::-1, ::-1].transpose(1, 0, 2)
    if o == 8:
        return pixels[:, ::-1].transpose(1, 0, 2)
    return pixels


# ----------------------------------------------------------------------------- encoding


def format_for_suffix(suffix: str) -> str:
    """Container format for an output suffix like ``".jpg"``; raises PhotoError if unknown."""
    fmt = SUFFIX_FORMATS.get(suffix.lower())
    if fmt is None:
        raise PhotoError(f"cannot write {suffix or 'files without a suffix'!r}; "
                         f"valid: {', '.join(sorted(SUFFIX_FORMATS))}", "unsupported")
    if fmt == "HEIF" and not heif_available():
        raise PhotoError("writing HEIC needs the optional package pillow-heif", "unsupported")
    return fmt


def writable_format(source_format: str) -> str:
    """The format to write when the caller did not choose one: the source's, if we can write it."""
    if source_format in FORMAT_INFO and (source_format != "HEIF" or heif_available()):
        return source_format
    return "PNG"


def encode_photo(photo: Photo, fmt: str, *, quality: int = 95) -> bytes:
    """Encode ``photo`` as ``fmt`` keeping EXIF, ICC, alpha, gray and (where the format allows) 16 bits.

    PNG keeps 16 bits (written with OpenCV; the ICC and EXIF chunks are inserted after IHDR);
    TIFF keeps 16 bits (without ICC/EXIF, which OpenCV cannot write); JPEG/WEBP/BMP are 8-bit.
    JPEG and BMP cannot hold alpha: it is dropped (composited over nothing).

    Args:
        photo: pixels and metadata.
        fmt: one of ``FORMAT_INFO``'s keys.
        quality: JPEG/WEBP/HEIF quality, 1..100.

    Returns:
        The encoded file.
    """
    if fmt not in FORMAT_INFO:
        raise PhotoError(f"cannot write format {fmt!r}; valid: {', '.join(sorted(FORMAT_INFO))}", "unsupported")
    if not 1 <= quality <= 100:
        raise PhotoError(f"quality must be in 1..100, got {quality}", "unsupported")
    px = np.clip(np.nan_to_num(photo.pixels, nan=0.0), 0.0, 1.0)
    if fmt == "PNG":
        return _encode_png(px, photo.bits, photo.icc_profile, photo.exif)
    if fmt == "TIFF" and photo.bits == 16:
        return _encode_opencv(px, 16, ".tiff")
    return _encode_pillow(px, fmt, quality, photo.icc_profile, photo.exif)


def _to_uint(px: np.ndarray, bits: int) -> np.ndarray:
    scale = 65535.0 if bits == 16 else 255.0
    return (px * scale + 0.5).astype(np.uint16 if bits == 16 else np.uint8)


def _encode_opencv(px: np.ndarray, bits: int, ext: str) -> bytes:
    import cv2

    arr = _to_uint(px, bits)
    c = arr.shape[2]
    if c == 1:
        arr = arr[..., 0]
    elif c == 2:  # OpenCV has no gray+alpha: widen to RGBA
        g, a = arr[..., 0], arr[..., 1]
        arr = np.stack([g, g, g, a], axis=2)
    elif c == 3:
        arr = arr[..., ::-1]
    else:
        arr = arr[..., [2, 1, 0, 3]]
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3] if ext == ".png" else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr), params)
    if not ok:
        raise PhotoError(f"{ext[1:].upper()} encoding failed", "unsupported")
    return buf.tobytes()


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _encode_png(px: np.ndarray, bits: int, icc: bytes | None, exif: bytes | None) -> bytes:
    if px.shape[2] == 2 and bits == 8:
        data = _encode_pillow(px, "PNG", 95, icc, exif)
        return data
    png = _encode_opencv(px, bits, ".png")
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        raw = exif.removeprefix(_EXIF_PREFIX)
        extra += _png_chunk(b"eXIf", raw)
    if not extra:
        return png
    ihdr_end = 8 + 8 + 13 + 4  # signature + (length, type) + IHDR payload + CRC
    return png[:ihdr_end] + extra + png[ihdr_end:]


def _encode_pillow(px: np.ndarray, fmt: str, quality: int, icc: bytes | None, exif: bytes | None) -> bytes:
    from PIL import Image

    if fmt == "HEIF":
        _register_heif()
    arr = _to_uint(px, 8)
    c = arr.shape[2]
    if fmt in ("JPEG", "BMP") and c in (2, 4):
        arr, c = arr[..., : c - 1], c - 1
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    im = Image.fromarray(arr[..., 0] if c == 1 else arr, mode=mode)
    kwargs: dict = {}
    if icc and fmt != "BMP":
        kwargs["icc_profile"] = icc
    if exif and fmt in ("JPEG", "WEBP", "TIFF", "PNG", "HEIF"):
        kwargs["exif"] = exif
    if fmt in ("JPEG", "WEBP", "HEIF"):
        kwargs["quality"] = quality
    if fmt == "JPEG":
        kwargs["subsampling"] = 0 if quality >= 90 else 2
    if fmt == "TIFF":
        kwargs["compression"] = "tiff_deflate"
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()
