"""The web app: a FastAPI application built by :func:`create_app`.

Endpoints:

* ``GET /`` — the single page (plain HTML/JS/CSS from ``deblurkit/app/static``).
* ``POST /api/deblur`` — multipart form: ``file`` (the image), optional ``model``, optional
  ``format`` (``same``, ``png``, ``jpeg``, ``webp``); returns the deblurred image.
  An optional ``X-Job-Id`` header lets the page poll ``GET /api/progress/{job_id}``.
* ``GET /api/models`` — the restorers one can choose, and the default.
* ``GET /healthz`` — liveness plus queue occupancy.
* ``GET /docs``, ``GET /openapi.json`` — the generated API docs.

Limits that keep the server alive: request bodies above ``max_upload_bytes`` and images above
``max_pixels`` get 413 (checked from the header before decoding), non-images 415, corrupt images
400; at most ``workers + queue_size`` jobs are admitted at once and the rest get 503 with
``Retry-After``; a job that runs past ``timeout_s`` gets 504 (and is cancelled at its next
progress report). Uploads stay in memory (or in Starlette's spooled temp files); nothing else is
written. Restorers are loaded once per name and shared by all requests.
"""

# No `from __future__ import annotations`: FastAPI must resolve the endpoint annotations, whose
# types (UploadFile, ...) are imported inside create_app to keep `deblurkit --help` fast.

import asyncio
import contextlib
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from deblurkit.app.restore import INPUT_SPACES, RestorerCache, RestorerLoader
from deblurkit.color import ColorSpace
from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.photo_io import FORMAT_INFO, PhotoError

_STATUS_FOR_KIND = {"not-image": 415, "unsupported": 415, "corrupt": 400, "too-large": 413}
_OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
_BROWSER_FORMATS = {"PNG", "JPEG", "WEBP"}


@dataclass(frozen=True)
class ServerSettings:
    """Limits and defaults of the web app (all user-visible in ``deblurkit serve --help``)."""

    max_upload_bytes: int = 25 * 1024 * 1024
    """Largest accepted request body; larger ones get 413."""
    max_pixels: int = 16_000_000
    """Largest accepted image (width x height), checked from the header; larger ones get 413."""
    workers: int = 1
    """Jobs deblurred at the same time (threads)."""
    queue_size: int = 4
    """Jobs allowed to wait for a worker; beyond ``workers + queue_size`` requests get 503."""
    timeout_s: float = 600.0
    """Per-request limit (queueing + deblurring); past it the request gets 504."""
    retry_after_s: int = 5
    """Value of the Retry-After header sent with 503."""
    default_model: str | None = None
    """Restorer used when the request names none (None: ``deblurkit.infer.DEFAULT_RESTORER``)."""
    models: tuple[str, ...] | None = None
    """Names a request may choose (None: everything ``deblurkit.infer.list_restorers()`` lists)."""
    jpeg_quality: int = 95
    """Quality of JPEG/WEBP outputs."""


class JobCancelled(Exception):
    """Raised inside a job's progress callback once its request has timed out."""


@dataclass
class _JobState:
    done: int = 0
    total: int = 0
    state: str = "queued"
    cancel: threading.Event = field(default_factory=threading.Event)


class _Progress:
    """Bounded table of job progress (for ``/api/progress``)."""

    def __init__(self, capacity: int = 256) -> None:
        self._jobs: OrderedDict[str, _JobState] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def new(self, job_id: str) -> _JobState:
        with self._lock:
            st = _JobState()
            self._jobs[job_id] = st
            while len(self._jobs) > self._capacity:
                self._jobs.popitem(last=False)
            return st

    def get(self, job_id: str) -> _JobState | None:
        with self._lock:
            return self._jobs.get(job_id)


def create_app(settings: ServerSettings | None = None, *, loader: RestorerLoader | None = None,
               restorer_infos: list[dict[str, Any]] | None = None):
    """Build the FastAPI application.

    Args:
        settings: limits and defaults (default :class:`ServerSettings` ()).
        loader: ``name -> restorer`` (default :func:`deblurkit.app.restore.make_loader` ()); each
            name is loaded once and shared.
        restorer_infos: the choosable restorers as dicts with ``name``, ``kind``, ``description``
            (default: :func:`deblurkit.app.restore.list_restorer_infos` (), filtered by
            ``settings.models``).

    Returns:
        A ``fastapi.FastAPI`` app; ``app.state.executor`` is its worker pool (shut down on app
        shutdown).
    """
    from fastapi import FastAPI, File, Form, Header, Request, UploadFile
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    from deblurkit.app.restore import default_restorer_name, list_restorer_infos, make_loader

    settings = settings or ServerSettings()
    if settings.workers < 1 or settings.queue_size < 0:
        raise DeblurkitError("workers must be >= 1 and queue_size >= 0")
    cache = RestorerCache(loader or make_loader())
    default_model = settings.default_model or default_restorer_name()
    if restorer_infos is None:
        restorer_infos = list_restorer_infos()
    if settings.models is not None:
        restorer_infos = [r for r in restorer_infos if r["name"] in settings.models]
    allowed = {r["name"] for r in restorer_infos} | {default_model}
    capacity = settings.workers + settings.queue_size
    slots = threading.BoundedSemaphore(capacity)
    active = {"n": 0}
    active_lock = threading.Lock()
    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="deblur")
    progress_table = _Progress()
    static_dir = Path(str(resources.files("deblurkit.app") / "static"))

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="deblurkit", version=_version(), lifespan=lifespan,
                  description="Make blurry photos sharp. POST an image to /api/deblur.")
    app.state.executor = executor
    app.state.settings = settings
    app.state.cache = cache

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > settings.max_upload_bytes + 64 * 1024:
                return _error(413, f"upload is {int(length):,} bytes; the limit is {settings.max_upload_bytes:,}")
        return await call_next(request)

    def _error(status: int, message: str, headers: dict[str, str] | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(static_dir / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static_dir), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness and queue occupancy."""
        with active_lock:
            n = active["n"]
        return {"status": "ok", "jobs": n, "capacity": capacity, "loaded_models": cache.loaded()}

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        """The restorers a request may choose, and the default one."""
        return {"default": default_model, "models": restorer_infos,
                "limits": {"max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels}}

    @app.get("/api/progress/{job_id}")
    def progress(job_id: str) -> dict[str, Any]:
        """Progress of a job started with an ``X-Job-Id`` header: state, done, total."""
        st = progress_table.get(job_id)
        if st is None:
            return {"state": "unknown", "done": 0, "total": 0}
        return {"state": st.state, "done": st.done, "total": st.total}

    @app.post("/api/deblur", responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}, "description": "The deblurred image"},
        400: {"description": "Corrupt image"}, 413: {"description": "Upload or image too large"},
        415: {"description": "Not an image"}, 503: {"description": "Queue full; see Retry-After"},
        504: {"description": "Timed out"}})
    async def deblur(file: Annotated[UploadFile, File(description="the blurry image")],
                     model: Annotated[str | None, Form(description="restorer name (default: the server's)")] = None,
                     format: Annotated[str, Form(description="same, png, jpeg or webp")] = "same",
                     input_space: Annotated[str, Form(description="srgb (default) or linear")] = "srgb",
                     x_job_id: Annotated[str | None, Header(description="optional id for /api/progress")] = None):
        """Deblur one uploaded image; the response is the image (same format when a browser can show it)."""
        name = model or default_model
        if name not in allowed:
            return _error(400, str(UnknownNameError("model", name, sorted(allowed))))
        if input_space not in INPUT_SPACES:
            return _error(400, f"unknown input space {input_space!r}; valid: {', '.join(INPUT_SPACES)}")
        fmt_key = format.lower()
        if fmt_key != "same" and fmt_key not in _OUTPUT_FORMATS:
            return _error(400, f"unknown format {format!r}; valid: same, {', '.join(sorted(_OUTPUT_FORMATS))}")
        data = await _read_limited(file, settings.max_upload_bytes)
        if data is None:
            return _error(413, f"upload is larger than the limit of {settings.max_upload_bytes:,} bytes")
        if not slots.acquire(blocking=False):
            return _error(503, f"server busy ({capacity} jobs in progress); retry in {settings.retry_after_s} s",
                          {"Retry-After": str(settings.retry_after_s)})
        job_id = (x_job_id or uuid.uuid4().hex)[:64]
        state = progress_table.new(job_id)
        with active_lock:
            active["n"] += 1

        def release(_fut=None) -> None:
            with active_lock:
                active["n"] -= 1
            slots.release()

        filename = file.filename or "image"
        try:
            fut = executor.submit(_run_job, data, filename, name, fmt_key, cache, settings, state,
                                  input_space)
        except RuntimeError:  # executor shut down
            release()
            return _error(503, "server is shutting down", {"Retry-After": str(settings.retry_after_s)})
        fut.add_done_callback(release)  # the slot frees only when the work really stops
        try:
            body, media_type, out_name, seconds = await asyncio.wait_for(
                asyncio.wrap_future(fut), timeout=settings.timeout_s)
        except TimeoutError:
            state.cancel.set()
            state.state = "timeout"
            return _error(504, f"deblurring took longer than {settings.timeout_s:g} s; try a smaller image")
        except PhotoError as exc:
            state.state = "error"
            return _error(_STATUS_FOR_KIND.get(exc.kind, 400), str(exc))
        except DeblurkitError as exc:
            state.state = "error"
            return _error(400, str(exc))
        except JobCancelled:
            state.state = "timeout"
            return _error(504, "job cancelled after the time limit")
        except Exception as exc:  # noqa: BLE001 - a bug or exhausted resource: report it, keep serving
            state.state = "error"
            return _error(500, f"internal error while deblurring: {type(exc).__name__}: {exc}")
        state.state = "done"
        return Response(body, media_type=media_type, headers={
            "Content-Disposition": f'attachment; filename="{out_name}"',
            "X-Deblur-Seconds": f"{seconds:.3f}", "X-Model": name, "X-Job-Id": job_id})

    return app


async def _read_limited(file, limit: int) -> bytes | None:
    """Read an upload, or None once it exceeds ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        chunk = await file.read(1 << 20)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _run_job(data: bytes, filename: str, model: str, fmt_key: str, cache: RestorerCache,
             settings: ServerSettings, state: _JobState,
             input_space: ColorSpace = "srgb") -> tuple[bytes, str, str, float]:
    """Decode, deblur and encode in a worker thread."""
    from deblurkit.app.restore import restore_pixels
    from deblurkit.photo_io import encode_photo, read_photo

    if state.cancel.is_set():
        raise JobCancelled()
    t0 = time.perf_counter()
    state.state = "decoding"
    photo = read_photo(data, name=_safe_name(filename), max_pixels=settings.max_pixels)
    restorer = cache.get(model)
    state.state = "deblurring"

    def progress(done: int, total: int) -> None:
        state.done, state.total = done, total
        if state.cancel.is_set():
            raise JobCancelled()

    result = photo.with_pixels(restore_pixels(photo.pixels, restorer, progress=progress,
                                              input_space=input_space))
    state.state = "encoding"
    if fmt_key == "same":
        fmt = photo.format if photo.format in _BROWSER_FORMATS else "PNG"
    else:
        fmt = _OUTPUT_FORMATS[fmt_key]
    body = encode_photo(result, fmt, quality=settings.jpeg_quality)
    suffix, media_type = FORMAT_INFO[fmt]
    stem = Path(_safe_name(filename)).stem or "image"
    return body, media_type, f"{stem}-deblurred{suffix}", time.perf_counter() - t0


def _safe_name(filename: str) -> str:
    """A client file name reduced to a harmless base name (used only in messages and headers)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isalnum() or ch in "._- ")[:100].strip()
    return cleaned or "image"


def _version() -> str:
    from deblurkit import __version__

    return __version__
