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
