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
