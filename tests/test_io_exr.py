"""OpenEXR output: exact float round trip, half precision, one-line errors, atomic writes."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from deblurkit.errors import DeblurkitError
from deblurkit.io import load_exr_linear, save_exr_linear

needs_openexr = pytest.mark.skipif(importlib.util.find_spec("OpenEXR") is None, reason="OpenEXR not installed")


def _hdr(rng: np.random.Generator) -> np.ndarray:
    img = rng.uniform(0.0, 1.0, (9, 11, 3)).astype(np.float32)
    img[2:4, 3:6] = [40.0, 55.5, 1e3]  # well above 1: what 8-bit and 16-bit PNG cannot hold
    return img


@needs_openexr
def test_float_round_trip_is_exact_beyond_one(tmp_path):
    img = _hdr(np.random.default_rng(0))
    save_exr_linear(tmp_path / "a.exr", img)
    back = load_exr_linear(tmp_path / "a.exr")
    assert back.dtype == np.float32 and back.shape == img.shape
    np.testing.assert_array_equal(back, img)
    assert back.max() == pytest.approx(1e3)


@needs_openexr
def test_half_precision_and_grey(tmp_path):
    img = _hdr(np.random.default_rng(1))
    save_exr_linear(tmp_path / "h.exr", img, precision="half")
    save_exr_linear(tmp_path / "f.exr", img)
    back = load_exr_linear(tmp_path / "h.exr")
    np.testing.assert_allclose(back, img, rtol=2**-10, atol=2**-24)
    assert (tmp_path / "h.exr").stat().st_size < (tmp_path / "f.exr").stat().st_size
    save_exr_linear(tmp_path / "g.exr", img[..., 1])
    np.testing.assert_array_equal(load_exr_linear(tmp_path / "g.exr"), img[..., 1])


@needs_openexr
@pytest.mark.parametrize(
    ("bad", "precision", "words"),
    [
        (np.zeros((4, 4, 4), np.float32), "float", "shape"),
        (np.full((4, 4, 3), np.nan, np.float32), "float", "non-finite"),
        (np.full((4, 4, 3), 1e5, np.float32), "half", "half-float range"),
    ],
)
def test_bad_image_is_one_line_and_keeps_the_old_file(tmp_path, bad, precision, words):
    good = _hdr(np.random.default_rng(2))
    path = tmp_path / "out.exr"
    save_exr_linear(path, good)
    with pytest.raises(DeblurkitError, match=words) as info:
        save_exr_linear(path, bad, precision=precision)
    assert "\n" not in str(info.value)
    np.testing.assert_array_equal(load_exr_linear(path), good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.exr"]  # no temporary file left


@needs_openexr
def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import os

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        save_exr_linear(tmp_path / "x.exr", _hdr(np.random.default_rng(3)))
    assert list(tmp_path.iterdir()) == []


@needs_openexr
def test_not_an_exr(tmp_path):
    (tmp_path / "fake.exr").write_bytes(b"not an exr")
    with pytest.raises(DeblurkitError, match="not a readable EXR"):
        load_exr_linear(tmp_path / "fake.exr")
    with pytest.raises(DeblurkitError, match="no such file"):
        load_exr_linear(tmp_path / "missing.exr")


def test_missing_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "OpenEXR", None)  # import fails as if not installed
    with pytest.raises(DeblurkitError, match=r"pip install 'deblurkit\[exr\]'"):
        save_exr_linear(tmp_path / "y.exr", np.zeros((2, 2, 3), np.float32))
    assert not (tmp_path / "y.exr").exists()
