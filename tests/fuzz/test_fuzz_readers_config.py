"""Property tests: whatever bytes or values come in, the answer is a result or one DeblurkitError line.

Bounded (derandomized, 60 examples each) so the whole file runs in seconds;
``DEBLURKIT_FUZZ=deep`` searches longer (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from deblurkit.errors import DeblurkitError
from deblurkit.photo_io import check_photo_header, read_photo, read_photo_stream

FUZZ = settings()  # the profile from conftest.py: bounded and derandomized unless DEBLURKIT_FUZZ=deep


def _seeds() -> list[bytes]:
    """Small valid files of every common format: mutations of these reach deep into each decoder."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (9, 7, 3), dtype=np.uint8))
    out = []
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 80}), ("GIF", {}), ("BMP", {}), ("TIFF", {}),
                    ("WEBP", {"quality": 80}), ("TGA", {}), ("ICO", {}), ("PPM", {})):
        buf = io.BytesIO()
        rgb.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 65535, (5, 6), dtype=np.uint16)).save(buf, format="PNG")
    out.append(buf.getvalue())
    return out


SEEDS = _seeds()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def _one_line(exc: DeblurkitError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)


def _decode(data: bytes) -> None:
    try:
        photo = read_photo(data, name="fuzz.jpg", max_pixels=1_000_000)
    except DeblurkitError as exc:
        _one_line(exc)
    else:
        assert photo.pixels.dtype == np.float32 and photo.pixels.ndim == 3
        assert np.isfinite(photo.pixels).all()


@FUZZ
@given(st.binary(max_size=2048))
def test_read_photo_on_arbitrary_bytes(data):
    _decode(data)


@FUZZ
@given(mutated_images())
def test_read_photo_on_damaged_images(data):
    _decode(data)


@FUZZ
@given(st.one_of(st.binary(max_size=512), mutated_images()))
def test_header_check_and_stream_reader(data):
    try:
        check_photo_header(data, name="fuzz", max_pixels=1_000_000)
    except DeblurkitError as exc:
        _one_line(exc)
    try:
        read_photo_stream(io.BytesIO(data), max_pixels=1_000_000, max_bytes=4096)
    except DeblurkitError as exc:
        _one_line(exc)


@FUZZ
@given(data=st.one_of(st.binary(max_size=1024), mutated_images()),
       suffix=st.sampled_from([".png", ".jpg", ".tif", ".webp", ".bmp"]))
def test_load_image_rgb_on_arbitrary_files(tmp_path, data, suffix):
    from deblurkit.io import load_image_rgb

    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        img = load_image_rgb(path)
    except DeblurkitError as exc:
        _one_line(exc)
    else:
        assert img.ndim == 3 and img.shape[2] == 3


# ----------------------------------------------------------------------------- the training config

_values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.lists(st.one_of(st.integers(-5, 5000), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "[", "{a: 1", "[1, 2", "yes", "", " ", "1.5"]),
)


def _field_names() -> list[str]:
    from deblurkit.train.config import field_names

    return field_names()


@FUZZ
@given(st.dictionaries(st.sampled_from(_field_names()), _values, min_size=1, max_size=3))
def test_config_values_give_a_config_or_one_line(overrides):
    from deblurkit.train.config import resolve_config

    try:
        resolve_config(overrides=overrides)
    except DeblurkitError as exc:
        _one_line(exc)


@FUZZ
@given(st.lists(st.text(max_size=30), max_size=4))
def test_key_value_strings_give_a_config_or_one_line(items):
    from deblurkit.train.config import resolve_config

    try:
        resolve_config(overrides=items)
    except DeblurkitError as exc:
        _one_line(exc)


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_yaml_files_give_a_config_or_one_line(tmp_path, text):
    from deblurkit.train.config import resolve_config

    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        resolve_config(yaml_path=path)
    except DeblurkitError as exc:
        _one_line(exc)


_TRICKY = ["nan", "inf", "-inf", "-1", "0", "1e400", "[", "{a: 1", "[1, 2", "yes", "", " ", "1.5", "[-1]",
           "[1, nan]", "!!python/object:os.system", "- 1\n- 2", "\x00", "0x10", "1_000"]


def test_every_key_with_every_tricky_string():
    """Exhaustive where random search is thin: each key gets each awkward string."""
    from deblurkit.train.config import resolve_config

    for name in _field_names():
        for text in _TRICKY:
            try:
                resolve_config(overrides={name: text})
            except DeblurkitError as exc:
                _one_line(exc)


def test_the_seeds_themselves_decode():
    for data in SEEDS:
        assert read_photo(data).pixels.size > 0


pytestmark = pytest.mark.filterwarnings("ignore")
