"""``deblurkit highlights``: folder and video input, 16-bit PNG / float TIFF output, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from deblurkit.cli import main
from deblurkit.highlights import video as hv
from deblurkit.highlights.camera import CameraConfig


def _clip(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    pano = rng.uniform(0.02, 0.6, (128, 256, 3)).astype(np.float32)
    pano[50:70, ::24] = 20.0
    cfg = hv.VideoConfig(height=48, width=64, frames=n, hfov_deg=70.0, motion_blur=False,
                         auto_exposure=hv.AUTO_EXPOSURE_PRESETS["oscillating"], camera=CameraConfig(noise_model="none"))
    return [f.srgb8 for f in hv.generate_video(pano, cfg, rng)]


def test_folder_to_16bit_png(tmp_path, capsys):
    from deblurkit.io import save_png

    frames = _clip()
    for i, f in enumerate(frames):
        save_png(tmp_path / "in" / f"{i:03d}.png", f.astype(np.float32) / 255.0)
    rc = main(["highlights", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--quiet", "--align", "flow",
               "--policy", "previous"])
    assert rc == 0
    outs = sorted((tmp_path / "out").glob("frame_*.png"))
    assert len(outs) == len(frames)
    import cv2

    img = cv2.imread(str(outs[-1]), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape == (48, 64, 3)
    assert "4 frames" in capsys.readouterr().out


def test_default_reference_choice_is_the_shipped_policy(tmp_path, monkeypatch):
    from deblurkit.highlights import policy as hp
    from deblurkit.io import save_png

    for i, f in enumerate(_clip()):
        save_png(tmp_path / "in" / f"{i:03d}.png", f.astype(np.float32) / 255.0)
    loaded = []
    real_load = hp.load_policy
    monkeypatch.setattr(hp, "load_policy", lambda p: loaded.append(str(p)) or real_load(p))
    assert main(["highlights", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--quiet", "--align", "flow"]) == 0
    assert loaded == [hp.BUNDLED_POLICY] and len(list((tmp_path / "out").glob("frame_*.png"))) == 4


def test_video_in_float_tiff_out(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v3 as iio

    frames = _clip(3)
    iio.imwrite(tmp_path / "clip.mp4", np.stack(frames), fps=10, extension=".mp4")
    rc = main(["highlights", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out"), "--quiet",
               "--format", "tif"])
    assert rc == 0
    outs = sorted((tmp_path / "out").glob("frame_*.tif"))
    assert len(outs) == 3
    import tifffile

    hdr = tifffile.imread(outs[0])
    assert hdr.dtype == np.float32 and hdr.shape[:2] == (48, 64)


def test_bad_inputs_give_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["highlights", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "o")]) == 2
    assert main(["highlights", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()  # nothing written for bad input
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("deblurkit: error:") for line in err)


def test_folder_to_exr_keeps_restored_values_above_clipping(tmp_path):
    pytest.importorskip("OpenEXR")
    from deblurkit.io import load_exr_linear, save_png

    frames = _clip(6)
    for i, f in enumerate(frames):
        save_png(tmp_path / "in" / f"{i:03d}.png", f.astype(np.float32) / 255.0)
    rc = main(["highlights", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--quiet", "--align", "flow",
               "--policy", "first", "--format", "exr"])
    assert rc == 0
    outs = sorted((tmp_path / "out").glob("frame_*.exr"))
    assert [p.name for p in outs] == [f"frame_{i:06d}.exr" for i in range(6)]
    hdr = [load_exr_linear(p) for p in outs]
    assert all(h.dtype == np.float32 and h.shape == (48, 64, 3) for h in hdr)
    assert max(float(h.max()) for h in hdr) > 1.0  # filled highlights exceed the clipping level (1)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_exr_without_openexr_or_to_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    from deblurkit.io import save_png

    for i, f in enumerate(_clip(2)):
        save_png(tmp_path / "in" / f"{i:03d}.png", f.astype(np.float32) / 255.0)
    (tmp_path / "taken").write_text("a file")
    assert main(["highlights", str(tmp_path / "in"), "-o", str(tmp_path / "taken"), "--quiet"]) == 2
    monkeypatch.setitem(sys.modules, "OpenEXR", None)  # import fails as if not installed
    assert main(["highlights", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--quiet", "--format", "exr"]) == 2
    assert not (tmp_path / "o").exists()  # checked before any work or folder creation
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "is a file" in err[0] and "deblurkit[exr]" in err[1]


def test_tonemapped_video_out(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v3 as iio

    frames = _clip(5)
    iio.imwrite(tmp_path / "clip.mp4", np.stack(frames), fps=12, extension=".mp4")
    out = tmp_path / "res" / "restored.mp4"
    rc = main(["highlights", str(tmp_path / "clip.mp4"), "-o", str(out), "--quiet", "--policy", "first"])
    assert rc == 0
    video = iio.imread(out, plugin="FFMPEG")
    assert video.shape == (5, 48, 64, 3) and video.dtype == np.uint8
    assert iio.immeta(out, plugin="FFMPEG")["fps"] == pytest.approx(12.0)  # the input's rate
    assert 20 < video.mean() < 235  # tone-mapped, not black or white
    assert [p.name for p in out.parent.iterdir()] == ["restored.mp4"]  # no temporary file left


def test_failed_video_run_leaves_no_partial_file(tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    from deblurkit.io import save_png

    frames = _clip(3)
    for i, f in enumerate(frames):
        save_png(tmp_path / "in" / f"{i:03d}.png", f.astype(np.float32) / 255.0)
    save_png(tmp_path / "in" / "003.png", np.zeros((40, 64, 3), np.float32))  # a frame of another size
    out = tmp_path / "out"
    out.mkdir()
    assert main(["highlights", str(tmp_path / "in"), "-o", str(out / "r.mp4"), "--quiet", "--fps", "10"]) == 2
    assert main(["highlights", str(tmp_path / "in"), "-o", str(out / "r.webm"), "--quiet"]) == 2
    assert list(out.iterdir()) == []  # nothing left: neither a partial video nor a temporary file
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "frame 3 is 64x40" in err[0] and ".mp4, .mkv, .mov" in err[1]


def test_reinhard_tonemap_is_monotone_and_keeps_hue():
    from deblurkit.color import reinhard_tonemap_linear

    lum = np.geomspace(1e-3, 16.0, 50, dtype=np.float32)
    grey = reinhard_tonemap_linear(np.repeat(lum[None, :, None], 3, axis=2), white=16.0)[0, :, 0]
    assert np.all(np.diff(grey) > 0)  # brighter stays brighter, also above the clipping level 1
    assert grey[-1] == pytest.approx(1.0, abs=1e-5) and grey[0] == pytest.approx(1e-3, rel=1e-2)
    colour = reinhard_tonemap_linear(lum[None, :, None] * np.array([1.0, 0.5, 0.25], np.float32), white=16.0)[0]
    below = colour[:, 0] < 1.0  # a saturated colour's red channel reaches 1 before white
    assert below.sum() > 30
    np.testing.assert_allclose(colour[below, 1] / colour[below, 0], 0.5, rtol=1e-4)  # hue kept
    assert colour.max() <= 1.0
