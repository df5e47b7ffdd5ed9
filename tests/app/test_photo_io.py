"""Photo decoding/encoding: metadata, bit depth, alpha, gray, and every kind of bad input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from app_testutils import blurry_rgb, pil_bytes, png_bytes
from PIL import Image, ImageCms

from deblurkit.photo_io import PhotoError, apply_exif_orientation, encode_photo, read_photo
from deblurkit.viz import side_by_side


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _jpeg_with_exif(arr: np.ndarray, orientation: int) -> bytes:
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make
    return pil_bytes(im, "JPEG", quality=95, exif=exif.tobytes())


# ------------------------------------------------------------------ good inputs keep what matters


def test_16bit_rgb_png_round_trips_at_16_bits():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 65536, size=(7, 9, 3), dtype=np.uint16)
    photo = read_photo(png_bytes(arr))
    assert photo.bits == 16 and photo.pixels.shape == (7, 9, 3)
    # values that are not multiples of 257 survive, so it really is 16-bit, not 8-bit scaled
    np.testing.assert_allclose(photo.pixels * 65535, arr, atol=0.01)
    out = read_photo(encode_photo(photo, "PNG"))
    assert out.bits == 16
    np.testing.assert_array_equal(np.round(out.pixels * 65535).astype(np.uint16), arr)


def test_16bit_gray_png_and_tiff_stay_16bit():
    import cv2

    g = np.arange(0, 65535, 65535 // 80, dtype=np.uint16)[:80].reshape(8, 10)
    p = read_photo(png_bytes(g))
    assert p.bits == 16 and p.pixels.shape == (8, 10, 1)
    np.testing.assert_allclose(p.pixels[..., 0] * 65535, g, atol=0.01)
    rgb = np.stack([g, g[::-1], g.T.reshape(8, 10)], axis=2)
    _ok, tif = cv2.imencode(".tiff", rgb[..., ::-1])
    t = read_photo(tif.tobytes())
    assert t.bits == 16 and t.format == "TIFF"
    out = read_photo(encode_photo(t, "TIFF"))
    assert out.bits == 16
    np.testing.assert_allclose(out.pixels * 65535, rgb, atol=0.5)


def test_exif_orientation_applied_once_and_reset():
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255  # white band on the left of the stored image
    photo = read_photo(_jpeg_with_exif(arr, 6))  # 6 = rotate 90 CW for display
    assert photo.pixels.shape[:2] == (40, 20)  # portrait after applying it
    assert photo.pixels[:10].mean() > 0.9 and photo.pixels[-10:].mean() < 0.1  # left band -> top
    out = encode_photo(photo, "JPEG")
    with Image.open(io.BytesIO(out)) as im:
        exif = im.getexif()
        assert exif[0x0112] == 1 and exif[0x010F] == "TestCam"
        assert im.size == (20, 40)
    again = read_photo(out)  # reading the output does not rotate a second time
    assert again.pixels.shape[:2] == (40, 20)


@pytest.mark.parametrize("o", range(1, 9))
def test_apply_exif_orientation_matches_pillow(o):
    from PIL import ImageOps

    arr = (np.arange(5 * 7 * 3) % 251).astype(np.uint8).reshape(5, 7, 3)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = o
    im.info["exif"] = exif.tobytes()
    ref = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_exif_orientation(arr, o), ref)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_icc_profile_and_exif_kept(fmt):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    im = Image.fromarray((blurry_rgb(16, 16) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    photo = read_photo(pil_bytes(im, fmt, icc_profile=icc, exif=exif.tobytes()))
    assert photo.icc_profile == icc
    with Image.open(io.BytesIO(encode_photo(photo, fmt))) as out:
        assert out.info.get("icc_profile") == icc
        assert out.getexif().get(0x010F) == "TestCam"


def test_16bit_png_keeps_icc_and_exif():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    arr = np.random.default_rng(0).integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    base = read_photo(png_bytes(arr))
    exif = Image.Exif()
    exif[0x010F] = "Cam16"
    photo = base.__class__(pixels=base.pixels, bits=16, format="PNG", exif=exif.tobytes(), icc_profile=icc)
    data = encode_photo(photo, "PNG")
    back = read_photo(data)
    assert back.bits == 16 and back.icc_profile == icc
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif().get(0x010F) == "Cam16"


def test_alpha_and_gray_layouts_are_kept():
    rgba = (np.random.default_rng(2).random((9, 11, 4)) * 255).astype(np.uint8)
    p = read_photo(pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert p.pixels.shape == (9, 11, 4) and p.has_alpha
    np.testing.assert_array_equal(np.round(read_photo(encode_photo(p, "PNG")).pixels * 255), rgba)
    la = read_photo(pil_bytes(Image.fromarray(rgba[..., :2], "LA"), "PNG"))
    assert la.pixels.shape == (9, 11, 2)
    with Image.open(io.BytesIO(encode_photo(la, "PNG"))) as im:
        assert im.mode == "LA"
    gray = read_photo(pil_bytes(Image.fromarray(rgba[..., 0], "L"), "JPEG"))
    assert gray.pixels.shape == (9, 11, 1)
    with Image.open(io.BytesIO(encode_photo(gray, "JPEG"))) as im:
        assert im.mode == "L"


def test_palette_cmyk_and_1x1_give_correct_outputs():
    rgb = (blurry_rgb(12, 10) * 255).astype(np.uint8)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p = read_photo(pil_bytes(pal, "PNG"))
    assert p.pixels.shape == (12, 10, 3)
    np.testing.assert_array_equal(np.round(p.pixels * 255).astype(np.uint8), np.asarray(pal.convert("RGB")))
    cmyk = Image.fromarray(rgb).convert("CMYK")
    c = read_photo(pil_bytes(cmyk, "JPEG", quality=100))
    assert c.pixels.shape == (12, 10, 3) and c.source_mode == "CMYK"
    assert np.abs(c.pixels * 255 - rgb.astype(np.float32)).mean() < 8
    one = read_photo(pil_bytes(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"))
    assert one.pixels.shape == (1, 1, 3)
    assert read_photo(encode_photo(one, "JPEG")).pixels.shape == (1, 1, 3)


# ------------------------------------------------------------------ bad inputs: clear one-line errors


def _jpeg() -> bytes:
    return pil_bytes(Image.fromarray((blurry_rgb(64, 64) * 255).astype(np.uint8)), "JPEG")


@pytest.mark.parametrize(("data", "kind", "words"), [
    (b"", "not-image", "empty"),
    (b"hello, I am a text file pretending to be a JPEG\n", "not-image", "not an image"),
    (_jpeg()[:300], "corrupt", "truncated"),
    (_png_header_only(40000, 40000), "too-large", "decompression bomb"),
])
def test_bad_inputs_raise_one_line_errors(data, kind, words):
    with pytest.raises(PhotoError) as info:
        read_photo(data, name="x.jpg")
    assert info.value.kind == kind
    msg = str(info.value)
    assert words in msg and "\n" not in msg and msg.startswith("x.jpg: ")


def test_pixel_limit_checked_before_decoding():
    with pytest.raises(PhotoError, match="more than the limit of 1,000") as info:
        read_photo(_png_header_only(100, 100), max_pixels=1000)  # the IDAT is bogus: never decoded
    assert info.value.kind == "too-large"


def test_truncated_16bit_png_is_an_error():
    arr = np.random.default_rng(0).integers(0, 65536, (64, 64, 3), dtype=np.uint16)
    data = png_bytes(arr)
    with pytest.raises(PhotoError) as info:
        read_photo(data[: len(data) // 2])
    assert info.value.kind == "corrupt"


def test_side_by_side_shape():
    a = np.zeros((4, 5, 3), np.float32)
    assert side_by_side(a, a, gap=2).shape == (4, 12, 3)


def test_heic_read_and_write_when_pillow_heif_is_installed():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    arr = np.zeros((32, 48, 3), np.uint8)
    arr[:, :8] = 255  # band on the left of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Phone"
    photo = read_photo(pil_bytes(Image.fromarray(arr), "HEIF", quality=95, exif=exif.tobytes()))
    assert photo.format == "HEIF" and photo.pixels.shape == (48, 32, 3)  # rotated exactly once
    assert photo.pixels[:6].mean() > 0.8
    with Image.open(io.BytesIO(encode_photo(photo, "HEIF"))) as out:
        assert out.size == (32, 48) and out.getexif().get(0x0112, 1) == 1 and out.getexif()[0x010F] == "Phone"


def test_linear_input_space_is_encoded_for_the_restorer():
    """A restorer sees sRGB-encoded values; linear input comes back linear."""
    import numpy as np

    from deblurkit.app.restore import restore_pixels
    from deblurkit.errors import DeblurkitError

    seen = {}

    def spy(image, progress=None):
        seen["img"] = image.copy()
        return image

    spy.name, spy.description = "spy", ""
    lin = np.full((4, 4, 3), 0.2140, np.float32)  # linear 0.214 == sRGB 0.5
    out = restore_pixels(lin, spy, input_space="linear")
    assert abs(float(seen["img"].mean()) - 0.5) < 2e-3
    assert np.allclose(out, lin, atol=1e-5)
    out_srgb = restore_pixels(lin, spy)  # default: passed through as sRGB
    assert np.allclose(seen["img"], lin)
    assert np.allclose(out_srgb, lin)
    import pytest

    with pytest.raises(DeblurkitError, match="input space"):
        restore_pixels(lin, spy, input_space="xyz")
