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
