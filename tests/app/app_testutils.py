"""Helpers shared by the app tests (a fake restorer and tiny image encoders)."""

from __future__ import annotations

import io
import threading
from typing import Self

import numpy as np

from deblurkit.infer.base import Restorer


class SharpenRestorer(Restorer):
    """A real (if crude) deblurring filter: I + a * (I - box3(I)), clipped. Reports row-block progress."""

    kind = "classical"

    def __init__(self, name: str = "fake-sharpen", amount: float = 1.0, delay: float = 0.0,
                 gate: threading.Event | None = None) -> None:
        self.name, self.description = name, "3x3 unsharp mask (test double)"
        self.amount, self.delay, self.gate = amount, delay, gate
        self.calls = 0

    def restore_rgb(self, image: np.ndarray, progress=None) -> np.ndarray:
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        pad = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
        h, w = image.shape[:2]
        box = sum(pad[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0
        out = np.clip(image + self.amount * (image - box), 0.0, 1.0).astype(np.float32)
        steps = 4
        for i in range(1, steps + 1):
            if self.delay:
                import time

                time.sleep(self.delay / steps)
            if progress is not None:
                progress(i, steps)
        return out


def blurry_rgb(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth-ish random RGB image (float32, [0, 1])."""
    rng = np.random.default_rng(seed)
    img = rng.random((h, w, 3)).astype(np.float32)
    for _ in range(2):
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1) + np.roll(img, (1, 1), (0, 1))) / 4
    return img.astype(np.float32)


def png_bytes(arr_uint: np.ndarray) -> bytes:
    import cv2

    a = arr_uint
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[..., ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[..., [2, 1, 0, 3]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a))
    assert ok
    return buf.tobytes()


def pil_bytes(im, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


class LiveServer:
    """Run an ASGI app with uvicorn in a background thread on a free 127.0.0.1 port."""

    def __init__(self, app) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class BodyCounter:
    """ASGI wrapper that records, per request, how many body bytes the app pulled from the server."""

    def __init__(self, app) -> None:
        self.app, self.pulled = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        record = {"path": scope["path"], "bytes": 0}
        self.pulled.append(record)

        async def counting_receive():
            message = await receive()
            record["bytes"] += len(message.get("body", b""))
            return message

        return await self.app(scope, counting_receive, send)


def raw_chunked_upload(port: int, total: int, *, chunk: int = 64 * 1024, filename: str = "a.jpg",
                       headers: dict[str, str] | None = None, stall_after: int | None = None,
                       deadline_s: float = 30.0) -> tuple[int, dict, int]:
    """POST ``total`` junk bytes as one multipart file with ``Transfer-Encoding: chunked`` on a raw socket.

    Stops sending as soon as the server answers (or, with ``stall_after``, after that many bytes,
    then waits). Returns ``(status, json_body, bytes_sent)``.
    """
    import json
    import select
    import socket
    import time

    boundary = "deblurkitboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    lines = ["POST /api/deblur HTTP/1.1", f"Host: 127.0.0.1:{port}", "Transfer-Encoding: chunked",
             f"Content-Type: multipart/form-data; boundary={boundary}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock = socket.create_connection(("127.0.0.1", port), timeout=deadline_s)
    end = time.monotonic() + deadline_s
    sent = 0
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        block = b"\xab" * chunk
        answered = False
        while sent < total and time.monotonic() < end:
            if stall_after is not None and sent >= stall_after:
                break
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
            n = min(chunk, total - sent)
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (n, block[:n]))
            except OSError:  # the server answered and closed
                answered = True
                break
            sent += n
        if not answered and stall_after is None:
            tail = f"\r\n--{boundary}--\r\n".encode()
            try:
                sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
            except OSError:
                pass
        data = b""
        while time.monotonic() < end:
            try:
                part = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not part:
                break
            data += part
            header, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = [int(h.split(b":")[1]) for h in header.split(b"\r\n") if h.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    finally:
        sock.close()
    header, _, body = data.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1]) if header else 0
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {"raw": body[:200].decode("latin-1")}
    return status, parsed, sent
