import numpy as np
import pytest
from PIL import Image

from deblurkit.errors import DeblurkitError
from deblurkit.io import atomic_write, load_image_rgb, save_png


def test_png_roundtrip_8_and_16_bit(tmp_path, rng):
    img = rng.random((17, 23, 3), dtype=np.float32)
    save_png(tmp_path / "a.png", img, bits=8)
    assert np.abs(load_image_rgb(tmp_path / "a.png") - img).max() <= 0.5 / 255 + 1e-6
    save_png(tmp_path / "b.png", img, bits=16)
    back = load_image_rgb(tmp_path / "b.png")
    assert np.abs(back - img).max() <= 0.5 / 65535 + 1e-6  # 16 bits survive the round trip


def test_grayscale_and_rgba_become_rgb(tmp_path):
    Image.fromarray(np.full((4, 5), 128, np.uint8), "L").save(tmp_path / "g.png")
    Image.fromarray(np.zeros((4, 5, 4), np.uint8), "RGBA").save(tmp_path / "a.png")
    assert load_image_rgb(tmp_path / "g.png").shape == (4, 5, 3)
    assert load_image_rgb(tmp_path / "a.png").shape == (4, 5, 3)


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_image_is_one_line_error(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_text("not an image")
    with pytest.raises(DeblurkitError, match="not an image"):
        load_image_rgb(bad)


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os

    with atomic_write(tmp_path / "f.txt", "w") as fh:
        fh.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask
