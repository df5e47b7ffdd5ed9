"""Building validation sets from a folder of photos (no manifest)."""

from __future__ import annotations

import json

import numpy as np

from deblurkit.io import save_png
from studies.make_testsets import main


def test_sets_from_a_photo_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.png", "c.png"):
        save_png(tmp_path / "photos" / name, rng.random((160, 160, 3)).astype(np.float32))
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    assert main(["--photo-dir", str(tmp_path / "photos"), "--limit", "2", "--sets", "uniform",
                 "--size", "64", "--out", str(tmp_path / "sets")]) == 0
    meta = json.loads((tmp_path / "sets" / "uniform" / "meta.json").read_text())
    assert meta["split"] == "folder" and [it["photo"] for it in meta["items"]] == ["a.png", "b.png"]
    assert (tmp_path / "sets" / "uniform" / "blur" / "001.png").is_file()
    assert (tmp_path / "sets" / "uniform" / "kernels" / "000.npy").is_file()
    # The photos after those: another pool of the same folder.
    assert main(["--photo-dir", str(tmp_path / "photos"), "--skip", "2", "--sets", "uniform",
                 "--size", "64", "--out", str(tmp_path / "more")]) == 0
    meta = json.loads((tmp_path / "more" / "uniform" / "meta.json").read_text())
    assert [it["photo"] for it in meta["items"]] == ["c.png"]


def test_photos_smaller_than_the_crop_are_left_out(tmp_path, capsys):
    rng = np.random.default_rng(1)
    save_png(tmp_path / "photos" / "big.png", rng.random((160, 160, 3)).astype(np.float32))
    save_png(tmp_path / "photos" / "small.png", rng.random((60, 160, 3)).astype(np.float32))
    assert main(["--photo-dir", str(tmp_path / "photos"), "--sets", "uniform",
                 "--size", "64", "--out", str(tmp_path / "sets")]) == 0
    meta = json.loads((tmp_path / "sets" / "uniform" / "meta.json").read_text())
    assert [it["photo"] for it in meta["items"]] == ["big.png"]
    assert "1 photos smaller than the 72-px crop left out" in capsys.readouterr().err


def test_sets_blurred_with_measured_psfs(tmp_path):
    rng = np.random.default_rng(2)
    for name in ("a.png", "b.png"):
        save_png(tmp_path / "photos" / name, rng.random((160, 160, 3)).astype(np.float32))
    psf = np.zeros((9, 9), np.float32)
    psf[4, 1:8] = 1.0  # a 7-px horizontal stroke
    (tmp_path / "psfs").mkdir()
    np.save(tmp_path / "psfs" / "stroke.npy", psf)
    assert main(["--photo-dir", str(tmp_path / "photos"), "--sets", "uniform", "--size", "64",
                 "--psf-dir", str(tmp_path / "psfs"), "--out", str(tmp_path / "sets")]) == 0
    meta = json.loads((tmp_path / "sets" / "uniform" / "meta.json").read_text())
    assert meta["config"]["trajectory"] == "recorded" and meta["config"]["psf_dir"] == str(tmp_path / "psfs")
    for it in meta["items"]:
        assert it["params"]["psf"] == "stroke.npy"
        k = np.load(tmp_path / "sets" / "uniform" / it["kernel"])
        # the stroke in one of its orientations: 7 equal values on one row or one column
        assert k.shape == (7, 7) and np.isclose(k.sum(), 1.0)
        assert np.count_nonzero(k) == 7
        assert np.count_nonzero(k.sum(0)) == 1 or np.count_nonzero(k.sum(1)) == 1


def test_sets_with_shakes_that_pause(tmp_path, capsys):
    rng = np.random.default_rng(3)
    save_png(tmp_path / "photos" / "a.png", rng.random((160, 160, 3)).astype(np.float32))
    common = ["--photo-dir", str(tmp_path / "photos"), "--sets", "uniform", "--size", "64"]
    assert main([*common, "--out", str(tmp_path / "even")]) == 0
    assert main([*common, "--pause-prob", "1", "--out", str(tmp_path / "paused")]) == 0
    even, paused = (json.loads((tmp_path / d / "uniform" / "meta.json").read_text())["items"][0]
                    for d in ("even", "paused"))
    assert "pauses" not in even["params"] and len(paused["params"]["pauses"]) == 2
    # Two points of the path hold a share of the exposure each: the kernel's brightest values rise.
    k_even, k_paused = (np.load(tmp_path / d / "uniform" / it["kernel"]) for d, it in (("even", even),
                                                                                           ("paused", paused)))
    assert k_paused.max() > k_even.max()
    assert main([*common, "--pause-prob", "2", "--out", str(tmp_path / "bad")]) == 2
    assert "--pause-prob must be in [0, 1]" in capsys.readouterr().err


def test_sets_blurred_on_the_encoded_values(tmp_path):
    """``--blur-space srgb``: the blurry image is the sRGB sharp image convolved by the kernel."""
    from deblurkit.io import load_image_rgb
    from deblurkit.kernel_aware.deconv import convolve_fft

    rng = np.random.default_rng(4)
    save_png(tmp_path / "photos" / "a.png", rng.random((160, 160, 3)).astype(np.float32))
    assert main(["--photo-dir", str(tmp_path / "photos"), "--sets", "uniform", "--size", "64",
                 "--blur-space", "srgb", "--out", str(tmp_path / "sets")]) == 0
    root = tmp_path / "sets" / "uniform"
    meta = json.loads((root / "meta.json").read_text())
    assert meta["config"]["blur_space"] == "srgb" and not meta["config"]["camera_pipeline"]
    sharp, blur = (load_image_rgb(root / d / "000.png") for d in ("sharp", "blur"))
    k = np.load(root / meta["items"][0]["kernel"])
    m = k.shape[0]  # away from the borders, where the crop's surroundings were blurred in
    expected = convolve_fft(sharp, k)[m:-m, m:-m]
    assert np.abs(blur[m:-m, m:-m] - expected).mean() < 0.01
