"""The web API under hostile-but-fair use: streamed uploads, slow clients, odd names, Host/Origin, error format.

The streamed-upload and file-name cases run through a real uvicorn server on 127.0.0.1 (not only
the test client), since framing and header encoding are what the server itself does.
"""

from __future__ import annotations

import io
import threading
import time
from urllib.parse import unquote

import httpx
import numpy as np
import pytest
from app_testutils import BodyCounter, LiveServer, SharpenRestorer, blurry_rgb, pil_bytes, raw_chunked_upload
from fastapi.testclient import TestClient
from PIL import Image

from deblurkit.app.server import ServerSettings, create_app

INFOS = [{"name": "fake-sharpen", "kind": "classical", "description": "3x3 unsharp mask"}]
LIMIT = 1_000_000


def _app(**settings):
    restorer = settings.pop("restorer", None) or SharpenRestorer("fake-sharpen")
    s = ServerSettings(default_model="fake-sharpen", **settings)
    return create_app(s, loader=lambda name: restorer, restorer_infos=INFOS)


def _jpeg() -> bytes:
    return pil_bytes(Image.fromarray((blurry_rgb(24, 32) * 255).astype(np.uint8)), "JPEG")


def test_chunked_upload_over_the_limit_is_refused_while_streaming():
    counter = BodyCounter(_app(max_upload_bytes=LIMIT))
    with LiveServer(counter) as srv:
        status, body, sent = raw_chunked_upload(srv.port, 24 * LIMIT)
        assert status == 413, body
        assert "limit of 1,000,000 bytes" in body["error"]
        pulled = [r["bytes"] for r in counter.pulled if r["path"] == "/api/deblur"]
        # the app stopped reading at the limit (+ multipart framing) plus at most one chunk
        assert pulled and pulled[0] <= LIMIT + 64 * 1024 + 256 * 1024, pulled
        assert sent < 24 * LIMIT  # the client was answered before it finished
        assert httpx.get(srv.url + "/healthz").json()["jobs"] == 0  # the slot was given back


def test_chunked_upload_within_the_limit_still_works():
    with LiveServer(_app(max_upload_bytes=LIMIT)) as srv:
        def gen():
            data = _jpeg()
            yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.jpg\"\r\n\r\n"
            yield data
            yield b"\r\n--b--\r\n"

        r = httpx.post(srv.url + "/api/deblur", content=gen(), timeout=30,
                       headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


def test_busy_server_refuses_before_reading_the_body():
    gate = threading.Event()
    counter = BodyCounter(_app(workers=1, queue_size=0, restorer=SharpenRestorer("fake-sharpen", gate=gate)))
    with LiveServer(counter) as srv:
        first: list[int] = []
        t = threading.Thread(target=lambda: first.append(
            httpx.post(srv.url + "/api/deblur", files={"file": ("a.jpg", _jpeg())}, timeout=30).status_code))
        t.start()
        deadline = time.monotonic() + 10
        while httpx.get(srv.url + "/healthz").json()["jobs"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            status, body, _ = raw_chunked_upload(srv.port, 8 * LIMIT)
            assert status == 503 and "busy" in body["error"]
            refused = [r["bytes"] for r in counter.pulled if r["path"] == "/api/deblur"][-1]
            assert refused == 0  # nothing of the refused body was read
        finally:
            gate.set()
            t.join(30)
        assert first == [200]


def test_slow_upload_gets_408_and_frees_its_slot():
    with LiveServer(_app(upload_timeout_s=0.5, workers=1, queue_size=0)) as srv:
        t0 = time.monotonic()
        status, body, _ = raw_chunked_upload(srv.port, 10 * LIMIT, stall_after=100_000, deadline_s=10)
        assert status == 408 and "within 0.5 s" in body["error"]
        assert time.monotonic() - t0 < 8
        assert httpx.post(srv.url + "/api/deblur", files={"file": ("a.jpg", _jpeg())}, timeout=30).status_code == 200


@pytest.mark.parametrize("name", ["写真.jpg", "фото.jpg"])
def test_non_latin_file_names_through_the_real_server(name):
    with LiveServer(_app()) as srv:
        r = httpx.post(srv.url + "/api/deblur", files={"file": (name, _jpeg(), "image/jpeg")}, timeout=30)
        assert r.status_code == 200, r.text
        disp = r.headers["content-disposition"]
        assert disp.isascii()
        assert 'filename="image-deblurred.jpg"' in disp
        encoded = disp.split("filename*=UTF-8''", 1)[1]
        assert unquote(encoded) == name.replace(".jpg", "-deblurred.jpg")


def test_chunked_over_the_limit_through_the_test_client():
    with TestClient(_app(max_upload_bytes=LIMIT), base_url="http://127.0.0.1") as c:
        def gen():
            yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.jpg\"\r\n\r\n"
            for _ in range(4):
                yield b"\0" * LIMIT

        r = c.post("/api/deblur", content=gen(), headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert c.get("/healthz").json()["jobs"] == 0


def test_host_header_must_be_an_allowed_name():
    with TestClient(_app(), base_url="http://127.0.0.1") as c:
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
            r = c.get("/api/models", headers={"Host": host})
            assert r.status_code == 400 and "is not served here" in r.json()["error"], host
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
            assert c.get("/api/models", headers={"Host": host}).status_code == 200, host
    with TestClient(_app(allowed_hosts=("photos.lan",)), base_url="http://photos.lan") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"Host": "localhost"}).status_code == 400


def test_cross_origin_uploads_are_refused():
    with TestClient(_app(), base_url="http://127.0.0.1:8000") as c:
        files = {"file": ("a.jpg", _jpeg())}
        r = c.post("/api/deblur", files=files, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.json()["error"]
        r = c.post("/api/deblur", files=files, headers={"Origin": "null"})
        assert r.status_code == 403
        r = c.post("/api/deblur", files=files, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403 and "cross-site" in r.json()["error"]
        # the page itself (same origin) and clients without Origin (curl) are served
        assert c.post("/api/deblur", files=files, headers={"Origin": "http://127.0.0.1:8000",
                                                           "Sec-Fetch-Site": "same-origin"}).status_code == 200
        assert c.post("/api/deblur", files=files).status_code == 200


def test_every_error_body_is_one_error_line():
    with TestClient(_app(), base_url="http://127.0.0.1") as c:
        r = c.get("/no/such/page")
        assert r.status_code == 404 and r.json() == {"error": "Not Found"}
        r = c.post("/api/deblur", data={"model": "fake-sharpen"})
        assert r.status_code == 422 and set(r.json()) == {"error"} and "file" in r.json()["error"]
        assert "\n" not in r.json()["error"]
        r = c.get("/api/deblur")
        assert r.status_code == 405 and set(r.json()) == {"error"}


def test_serve_options_for_hosts_and_upload_time():
    import argparse

    from deblurkit.app import serve_cli
    from deblurkit.errors import DeblurkitError

    parser = argparse.ArgumentParser()
    serve_cli.add_arguments(parser)
    st = serve_cli.settings_from_args(parser.parse_args([]))
    assert st.allowed_hosts == ("localhost", "127.0.0.1", "::1") and st.upload_timeout_s == 120
    st = serve_cli.settings_from_args(parser.parse_args(["--host", "192.168.1.5", "--allowed-host", "photos.lan",
                                                         "--upload-timeout", "30"]))
    assert st.allowed_hosts[-2:] == ("192.168.1.5", "photos.lan") and st.upload_timeout_s == 30
    assert "0.0.0.0" not in serve_cli.settings_from_args(parser.parse_args(["--host", "0.0.0.0"])).allowed_hosts
    for bad in (["--upload-timeout", "0"], ["--max-upload-mb", "nan"], ["--timeout", "-1"]):
        with pytest.raises(DeblurkitError, match="must be positive"):
            serve_cli.settings_from_args(parser.parse_args(bad))


def test_exif_over_64_kb_gives_a_jpeg_not_a_500():
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0x927C] = b"M" * 70_000  # maker note: too long for a JPEG APP1 segment
    png = pil_bytes(Image.fromarray((blurry_rgb(12, 16) * 255).astype(np.uint8)), "PNG", exif=exif.tobytes())
    with TestClient(_app(), base_url="http://127.0.0.1") as c:
        r = c.post("/api/deblur", files={"file": ("big-exif.png", png)}, data={"format": "jpeg"})
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).getexif()[0x010F] == "TestCam"


def test_a_job_longer_than_the_upload_timeout_still_answers():
    slow = SharpenRestorer("fake-sharpen", delay=1.0)
    with LiveServer(_app(upload_timeout_s=0.3, restorer=slow)) as srv:
        r = httpx.post(srv.url + "/api/deblur", files={"file": ("a.jpg", _jpeg())}, timeout=30)
        assert r.status_code == 200  # the upload deadline covers the upload, not the deblurring
