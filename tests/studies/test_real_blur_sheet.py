"""The real-blur contact sheet: one row per photo, kernels shown, a PNG and a JSON written."""

from __future__ import annotations

import json
import sys
import types

import numpy as np

from deblurkit.io import load_image_rgb, save_png
from studies import real_blur_sheet


def test_sheet_rows_and_files(tmp_path, rng, monkeypatch):
    data = tmp_path / "real-blur"
    for name, shape in (("a/x.png", (90, 120, 3)), ("b/y.png", (120, 80, 3))):
        save_png(data / name, rng.random(shape).astype(np.float32))
    fake = types.ModuleType("fake_sheet_estimators")
    fake.line = lambda gray: np.eye(7, dtype=np.float32) / 7
    monkeypatch.setitem(sys.modules, "fake_sheet_estimators", fake)
    out = tmp_path / "docs" / "sheet.png"

    assert real_blur_sheet.main(["--restorer", "identity", "--kernels", "line=fake_sheet_estimators:line",
                                 "--data", str(data), "--images", "a/x.png", "b/y.png", "--width", "60",
                                 "--crop", "40", "--kernel-side", "30", "--out", str(out)]) == 0

    sheet = load_image_rgb(out)
    # rows: max(60 * h / w, crop 40, kernel 30) -> 45 and 90, plus one 6-px gap
    assert sheet.shape[0] == 45 + 6 + 90
    info = json.loads(out.with_suffix(".json").read_text())
    assert [i["kernel_size"] for i in info["images"]] == [7, 7]
    assert not any(i["changed"] for i in info["images"])  # identity restorer


def test_kernel_panel_and_declined():
    k = np.zeros((5, 5))
    k[2, 1:4] = 1.0
    panel = real_blur_sheet.kernel_panel(k, 50)
    assert panel.shape == (50, 50, 3) and panel.max() == 1.0 and panel[0, 0, 0] == 0.0
    declined = real_blur_sheet.kernel_panel(None, 50)
    assert declined.shape == (50, 50, 3) and 0.2 < declined[25, 0, 0] < 0.3


def test_linear_folders_are_encoded_first(tmp_path, rng):
    """A photo of a --linear folder is shown (and restored) sRGB-encoded: brighter than stored."""
    data = tmp_path / "real-blur"
    save_png(data / "lin/x.png", np.full((60, 60, 3), 0.2, np.float32))
    out = {}
    for linear in ([], ["lin"]):
        path = tmp_path / f"sheet{len(linear)}.png"
        assert real_blur_sheet.main(["--restorer", "identity", "--kernels", "none", "--data", str(data),
                                     "--images", "lin/x.png", "--linear", *linear, "--width", "60", "--crop", "40",
                                     "--kernel-side", "30", "--out", str(path)]) == 0
        out[len(linear)] = load_image_rgb(path)[40:, :60]  # below the label strip, the whole "before" panel
        assert json.loads(path.with_suffix(".json").read_text())["linear"] == linear
    assert np.allclose(out[0], 0.2, atol=1 / 255) and np.allclose(out[1], 0.484, atol=2 / 255)
