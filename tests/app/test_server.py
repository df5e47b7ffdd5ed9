"""The web API: endpoints, limits (413/415/503/504), bad inputs, shared restorers."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from app_testutils import LiveServer, SharpenRestorer, blurry_rgb, pil_bytes, png_bytes
from fastapi.testclient import TestClient
from PIL import Image

from deblurkit.app.server import ServerSettings, create_app

INFOS = [{"name": "fake-sharpen", "kind": "classical", "description": "3x3 unsharp mask"},
         {"name": "fake-other", "kind": "classical", "description": "same, other name"}]


def _client(fake_loader, **settings) -> TestClient:
    s = ServerSettings(default_model="fake-sharpen", **settings)
    return TestClient(create_app(s, loader=fake_loader, restorer_infos=INFOS), base_url="http://127.0.0.1")


def _png(h=32, w=40, seed=0) -> bytes:
    return png_bytes((blurry_rgb(h, w, seed) * 255).astype(np.uint8))


def _post(client, data: bytes, name="x.png", **form):
    return client.post("/api/deblur", files={"file": (name, data, "application/octet-stream")}, data=form)


def test_meta_endpoints(fake_loader):
    with _client(fake_loader) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        m = c.get("/api/models").json()
        assert m["default"] == "fake-sharpen" and [x["name"] for x in m["models"]] == ["fake-sharpen", "fake-other"]
        assert "/api/deblur" in c.get("/openapi.json").json()["paths"]
        assert c.get("/docs").status_code == 200
        page = c.get("/")
        assert page.status_code == 200 and "deblurkit" in page.text and "/static/app.js" in page.text
        for asset in ("/static/app.js", "/static/app.css"):
            body = c.get(asset).text
            assert c.get(asset).status_code == 200 and "cdn" not in body.lower() and "https://" not in body


def test_deblur_png_and_jpeg_round_trip(fake_loader):
    with _client(fake_loader) as c:
        r = _post(c, _png(), "photo.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert 'filename="photo-deblurred.png"' in r.headers["content-disposition"]
        out = np.asarray(Image.open(io.BytesIO(r.content)), dtype=np.float32) / 255
        src = blurry_rgb(32, 40)
        np.testing.assert_allclose(out, SharpenRestorer()((src * 255).astype(np.uint8).astype(np.float32) / 255), atol=1 / 255 + 1e-6)
        jpg = pil_bytes(Image.fromarray((blurry_rgb(30, 20) * 255).astype(np.uint8)), "JPEG")
        r = _post(c, jpg, "p.jpg", model="fake-other")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.headers["x-model"] == "fake-other"
        assert Image.open(io.BytesIO(r.content)).size == (20, 30)
        r = _post(c, jpg, "p.jpg", format="png")
        assert r.headers["content-type"] == "image/png"
        # each restorer loaded once and shared across requests
        _post(c, _png(), "again.png")
        assert sorted(fake_loader.loaded) == ["fake-other", "fake-sharpen"]


def _jpeg(h=64, w=64) -> bytes:
    return pil_bytes(Image.fromarray((blurry_rgb(h, w) * 255).astype(np.uint8)), "JPEG")


def _bomb() -> bytes:
    import struct
    import zlib

    def chunk(tag, payload):
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("name", "data", "status", "words"), [
    ("trunc.jpg", _jpeg()[:400], 400, "truncated"),
    ("text.jpg", b"I am text, not a JPEG\n", 415, "not an image"),
    ("empty.jpg", b"", 415, "empty"),
    ("bomb.png", _bomb(), 413, "pixels"),
])
def test_bad_uploads_get_clear_4xx(fake_loader, name, data, status, words):
    with _client(fake_loader) as c:
        r = _post(c, data, name)
        assert r.status_code == status, r.text
        msg = r.json()["error"]
        assert words in msg and "\n" not in msg
        assert c.get("/healthz").json()["jobs"] == 0


@pytest.mark.parametrize("kind", ["cmyk", "palette", "1x1", "png16", "rgba"])
def test_unusual_but_valid_uploads_work(fake_loader, kind):
    rgb = (blurry_rgb(12, 10) * 255).astype(np.uint8)
    if kind == "cmyk":
        data, size, mode = pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG"), (10, 12), "RGB"
    elif kind == "palette":
        data, size, mode = pil_bytes(Image.fromarray(rgb).convert("P"), "PNG"), (10, 12), "RGB"
    elif kind == "1x1":
        data, size, mode = pil_bytes(Image.new("RGB", (1, 1), (9, 99, 199)), "PNG"), (1, 1), "RGB"
    elif kind == "rgba":
        data, size, mode = pil_bytes(Image.fromarray(rgb).convert("RGBA"), "PNG"), (10, 12), "RGBA"
    else:
        data, size, mode = png_bytes((blurry_rgb(12, 10) * 65535).astype(np.uint16)), (10, 12), None
    with _client(fake_loader) as c:
        r = _post(c, data, f"{kind}.img")
        assert r.status_code == 200, r.text
        im = Image.open(io.BytesIO(r.content))
        assert im.size == size
        if mode:
            assert im.mode == mode
        else:  # 16-bit in -> 16-bit out
            import cv2

            arr = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
            assert arr.dtype == np.uint16 and arr.shape == (12, 10, 3)


def test_upload_and_pixel_limits_give_413(fake_loader):
    with _client(fake_loader, max_upload_bytes=50_000, max_pixels=500) as c:
        r = _post(c, _png(64, 64, 1) + b"\0" * 200_000, "big.png")
        assert r.status_code == 413 and "limit" in r.json()["error"]
        r = _post(c, _png(30, 30), "many.png")
        assert r.status_code == 413 and "more than the limit of 500" in r.json()["error"]


def test_unknown_model_and_format_are_400(fake_loader):
    with _client(fake_loader) as c:
        r = _post(c, _png(), model="nope")
        assert r.status_code == 400 and "unknown model 'nope'" in r.json()["error"]
        r = _post(c, _png(), format="gif")
        assert r.status_code == 400 and "unknown format" in r.json()["error"]
        r = _post(c, _png(), input_space="xyz")
        assert r.status_code == 400 and "unknown input space" in r.json()["error"]
        assert _post(c, _png(), input_space="linear").status_code == 200


def test_queue_overflow_gives_503_and_server_recovers():
    import httpx

    gate = threading.Event()
    slow = SharpenRestorer("fake-sharpen", gate=gate)
    app = create_app(ServerSettings(default_model="fake-sharpen", workers=1, queue_size=1),
                     loader=lambda name: slow, restorer_infos=INFOS)
    with LiveServer(app) as srv:
        results: list[int] = []

        def send():
            r = httpx.post(f"{srv.url}/api/deblur", files={"file": ("a.png", _png())}, timeout=30)
            results.append(r.status_code)

        threads = [threading.Thread(target=send) for _ in range(2)]  # fills worker + queue slot
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{srv.url}/healthz").json()["jobs"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        r = httpx.post(f"{srv.url}/api/deblur", files={"file": ("a.png", _png())}, timeout=30)
        assert r.status_code == 503 and r.headers["retry-after"] == "5" and "busy" in r.json()["error"]
        gate.set()
        for t in threads:
            t.join(30)
        assert results == [200, 200]
        h = httpx.get(f"{srv.url}/healthz").json()
        assert h["status"] == "ok" and h["jobs"] == 0
        assert httpx.post(f"{srv.url}/api/deblur", files={"file": ("a.png", _png())}, timeout=30).status_code == 200


def test_timeout_gives_504_and_frees_the_slot():
    slow = SharpenRestorer("fake-sharpen", delay=1.2)
    app = create_app(ServerSettings(default_model="fake-sharpen", timeout_s=0.3, workers=1, queue_size=0),
                     loader=lambda name: slow, restorer_infos=INFOS)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = _post(c, _png())
        assert r.status_code == 504 and "longer than 0.3 s" in r.json()["error"]
        deadline = time.monotonic() + 5  # cancelled at the restorer's next progress report
        while c.get("/healthz").json()["jobs"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/healthz").json()["jobs"] == 0


def test_progress_endpoint_reports_job_state(fake_loader):
    with _client(fake_loader) as c:
        r = c.post("/api/deblur", files={"file": ("a.png", _png())}, headers={"X-Job-Id": "abc123"})
        assert r.status_code == 200
        assert c.get("/api/progress/abc123").json() == {"state": "done", "done": 4, "total": 4}
        assert c.get("/api/progress/unknown").json()["state"] == "unknown"
