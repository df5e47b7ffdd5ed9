"""Reading and writing limits: header-first reading with a byte cap, EXIF too long for JPEG, large pixel limits."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from app_testutils import blurry_rgb, pil_bytes
from PIL import Image

from deblurkit.photo_io import (
    HEADER_BYTES,
    JPEG_MAX_EXIF_BYTES,
    PhotoError,
    encode_photo,
    max_input_bytes,
    read_photo,
    read_photo_file,
    read_photo_stream,
)


class EndlessJunk(io.RawIOBase):
    """A read-only stream of ``size`` bytes (``head`` then ``x``), generated on demand; counts what was read."""

    def __init__(self, size: int, head: bytes = b"") -> None:
        self.size, self.head, self.pos = size, head, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.size - self.pos)
        if n <= 0:
            return 0
        part = self.head[self.pos:self.pos + n] if self.pos < len(self.head) else b""
        buf[:n] = part + b"x" * (n - len(part))
        self.pos += n
        return n


def _png_header(width: int, height: int) -> bytes:
    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


GIB = 1 << 30


def test_a_gigabyte_of_non_image_on_stdin_is_refused_after_the_header():
    stream = EndlessJunk(GIB)
    tracemalloc.start()
    try:
        with pytest.raises(PhotoError, match="not an image") as err:
            read_photo_stream(io.BufferedReader(stream, 1 << 16))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.kind == "not-image" and "\n" not in str(err.value)
    assert stream.pos <= HEADER_BYTES and peak < 8 * 1024 * 1024


def test_stdin_is_capped_even_when_it_starts_like_an_image():
    stream = EndlessJunk(GIB, head=_png_header(100, 100))
    with pytest.raises(PhotoError, match="more than 5,000,000 bytes") as err:
        read_photo_stream(io.BufferedReader(stream, 1 << 16), max_bytes=5_000_000)
    assert err.value.kind == "too-large" and stream.pos <= 5_000_000 + (1 << 20) + HEADER_BYTES
    assert max_input_bytes(1000) == 8000 + 64 * 1024 * 1024  # the documented default cap


def test_a_huge_file_named_jpg_is_judged_by_its_header(tmp_path):
    junk = tmp_path / "big.jpg"
    with open(junk, "wb") as fh:  # sparse: a gigabyte that costs no disk
        fh.write(b"not a photo at all\n")
        fh.truncate(GIB)
    tracemalloc.start()
    try:
        with pytest.raises(PhotoError, match="not an image"):
            read_photo_file(junk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
    fake = tmp_path / "big.png"  # a real PNG header, but larger than any image within the limit
    with open(fake, "wb") as fh:
        fh.write(_png_header(100, 100))
        fh.truncate(GIB)
    with pytest.raises(PhotoError, match="more than any image within the pixel limit") as err:
        read_photo_file(fake, max_pixels=1_000_000)
    assert err.value.kind == "too-large"
    with pytest.raises(PhotoError, match="more than the limit of 5,000") as err:  # from the header, unread
        read_photo_file(fake, max_pixels=5000)


def test_pixel_limit_above_pillows_default_is_honoured(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    header = _png_header(15000, 14000) + b"\0\0\0\0IEND\xaeB`\x82"  # 210 MP declared, no real data
    with pytest.raises(PhotoError) as err:
        read_photo(header)
    assert err.value.kind == "too-large"
    with pytest.raises(PhotoError) as err:
        read_photo(header, max_pixels=250_000_000)
    assert err.value.kind == "corrupt"  # allowed by size; then the (missing) pixel data is the problem


def _png_with_big_exif(maker_note_bytes: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = 1
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = 0.004  # exposure time
    sub[0x927C] = b"M" * maker_note_bytes  # maker note
    im = Image.fromarray((blurry_rgb(12, 16) * 255).astype(np.uint8))
    return pil_bytes(im, "PNG", exif=exif.tobytes())


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_exif_over_64_kb_is_trimmed_not_fatal(fmt):
    photo = read_photo(_png_with_big_exif(70_000))
    assert len(photo.exif) > JPEG_MAX_EXIF_BYTES
    out = Image.open(io.BytesIO(encode_photo(photo, fmt)))
    exif = out.getexif()
    assert exif[0x010F] == "TestCam"  # the useful tags survive
    assert abs(float(exif.get_ifd(0x8769)[0x829A]) - 0.004) < 1e-9
    if fmt == "JPEG":
        assert 0x927C not in exif.get_ifd(0x8769)  # the bulky maker note went


def test_exif_that_cannot_be_trimmed_is_dropped():
    photo = read_photo(_png_with_big_exif(10))
    from PIL import TiffTags

    crowded = Image.Exif()
    free_tags = [t for t in range(0xC000, 0xFFFF) if t not in TiffTags.TAGS_V2 and t not in TiffTags.TAGS]
    for i, tag in enumerate(free_tags[:3000]):  # short private tags: over 64 KB, no single bulky value
        crowded[tag] = f"value {i:06d}"
    raw = crowded.tobytes()
    assert len(raw) > JPEG_MAX_EXIF_BYTES
    from dataclasses import replace

    out = Image.open(io.BytesIO(encode_photo(replace(photo, exif=raw), "JPEG")))
    assert out.size == (16, 12) and len(out.getexif()) == 0
