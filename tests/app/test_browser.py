"""End to end in a real headless Chromium (Debian's), driven by Playwright for Python.

Set DEBLURKIT_SCREENSHOT=path.png to save a screenshot of the real app deblurring scikit-image's
motion-blurred ``clock`` photo (that is how docs/images/app.png is made).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from app_testutils import LiveServer, SharpenRestorer
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian chromium not installed (run scripts/install_test_system_deps.sh as root)"),
]


def _blurry_photo(path: Path) -> tuple[int, int]:
    """A real photo (scikit-image's astronaut) with a horizontal motion blur, saved as JPEG."""
    import cv2
    from skimage import data

    img = data.astronaut()[::2, ::2]  # 256x256
    k = np.zeros((9, 9), np.float32)
    k[4, :] = 1 / 9
    blurred = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)[:, :, :]
    Image.fromarray(blurred[:200, :240]).save(path, quality=92)
    return 240, 200


def test_upload_see_result_and_download(tmp_path):
    from playwright.sync_api import sync_playwright

    from deblurkit.app.server import ServerSettings, create_app

    src = tmp_path / "blurry.jpg"
    size = _blurry_photo(src)
    infos = [{"name": "fake-sharpen", "kind": "classical", "description": "3x3 unsharp mask (test double)"}]
    app = create_app(ServerSettings(default_model="fake-sharpen"),
                     loader=lambda name: SharpenRestorer(name, delay=0.6), restorer_infos=infos)
    with LiveServer(app) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 760}, accept_downloads=True)
            page.goto(srv.url + "/")
            page.wait_for_selector("#model option[value='fake-sharpen']", state="attached")
            page.set_input_files("#file", str(src))
            page.click("#run")
            page.wait_for_selector("#progress:not([hidden])")  # progress shows while it works
            page.wait_for_selector("#download:not([hidden])", timeout=30_000)
            assert page.is_hidden("#error")
            page.wait_for_function("document.getElementById('after').naturalWidth > 0")
            assert page.evaluate("document.getElementById('after').naturalWidth") == size[0]
            page.fill("#slider", "30")
            page.dispatch_event("#slider", "input")
            assert "30%" in page.evaluate("document.getElementById('after-wrap').style.clipPath")
            box = page.locator("#compare").bounding_box()
            page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)  # drag on the picture
            split = float(page.evaluate("document.getElementById('slider').value"))
            assert 70 < split < 80
            page.fill("#slider", "50")
            page.dispatch_event("#slider", "input")
            with page.expect_download() as dl_info:
                page.click("#download")
            dl = dl_info.value
            assert dl.suggested_filename == "blurry-deblurred.jpg"
            saved = tmp_path / "downloaded.jpg"
            dl.save_as(saved)
            with Image.open(saved) as im:
                im.load()
                assert im.format == "JPEG" and im.size == size
        finally:
            browser.close()


def test_dropped_bad_file_shows_one_line_error(tmp_path):
    from playwright.sync_api import sync_playwright

    from deblurkit.app.server import ServerSettings, create_app

    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo\n")
    app = create_app(ServerSettings(default_model="fake-sharpen"), loader=lambda name: SharpenRestorer(name),
                     restorer_infos=[{"name": "fake-sharpen", "kind": "classical", "description": ""}])
    with LiveServer(app) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(srv.url + "/")
            page.wait_for_selector("#model option", state="attached")
            # drag-and-drop path: a drop event carrying the file
            dt = page.evaluate_handle(
                "(text) => { const dt = new DataTransfer();"
                " dt.items.add(new File([text], 'notes.jpg', {type: 'image/jpeg'})); return dt; }",
                bad.read_text())
            page.dispatch_event("#drop", "drop", {"dataTransfer": dt})
            assert "notes.jpg" in page.inner_text("#drop-text")
            page.click("#run")
            page.wait_for_selector("#error:not([hidden])", timeout=15_000)
            assert "not an image" in page.inner_text("#error")
            assert page.is_hidden("#download")
        finally:
            browser.close()


def test_real_app_deblurs_the_clock_photo(tmp_path):
    """The real runtime (default restorer) on scikit-image's real motion-blurred photo."""
    from playwright.sync_api import sync_playwright
    from skimage import data

    from deblurkit.app.server import create_app

    screenshot = os.environ.get("DEBLURKIT_SCREENSHOT")
    clock = data.clock() if screenshot else data.clock()[70:230, 100:300]  # a crop keeps the test fast
    src = tmp_path / "clock.png"
    Image.fromarray(clock).save(src)
    with LiveServer(create_app()) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 860, "height": 700})
            page.goto(srv.url + "/")
            page.wait_for_selector("#model option", state="attached")
            page.set_input_files("#file", str(src))
            page.click("#run")
            page.wait_for_selector("#download:not([hidden])", timeout=60_000)
            page.wait_for_function(f"document.getElementById('after').naturalWidth === {clock.shape[1]}")
            assert page.is_hidden("#error")
            if screenshot:
                page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()
