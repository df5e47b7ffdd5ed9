"""``deblurkit serve``: run the web app with uvicorn (127.0.0.1 by default)."""

from __future__ import annotations

import argparse
import math
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("-m", "--model", default=None, help="default restorer (default: the shipped default)")
    parser.add_argument("--models", default=None,
                        help="comma-separated restorers users may choose (default: all listed by the runtime)")
    parser.add_argument("--workers", type=int, default=1, help="images deblurred at the same time")
    parser.add_argument("--queue", type=int, default=4, help="jobs that may wait; more get 503 + Retry-After")
    parser.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload (413 beyond)")
    parser.add_argument("--max-pixels", type=int, default=16_000_000, help="largest image in pixels (413 beyond)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="per-request time limit in seconds, queueing included (504)")
    parser.add_argument("--upload-timeout", type=float, default=120.0,
                        help="seconds an upload may take to arrive (408 beyond; default 120)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="also accept requests whose Host header is NAME (repeatable; localhost, 127.0.0.1, "
                             "::1 and --host are always accepted; '*' accepts any, e.g. behind a proxy)")
    parser.add_argument("--tile", type=int, default=None, help="tile size for inference (bounds memory)")
    parser.add_argument("--backend", default="auto", help="runtime backend: auto, torch or onnx")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference")


def settings_from_args(args: argparse.Namespace):
    """Build :class:`~deblurkit.app.server.ServerSettings` from parsed arguments (validated)."""
    from deblurkit.app.server import LOOPBACK_HOSTS, ServerSettings
    from deblurkit.errors import DeblurkitError

    if args.workers < 1 or args.queue < 0:
        raise DeblurkitError("--workers must be >= 1 and --queue >= 0")
    numbers = (args.max_upload_mb, args.max_pixels, args.timeout, args.upload_timeout)
    if not all(math.isfinite(v) and v > 0 for v in numbers):
        raise DeblurkitError("--max-upload-mb, --max-pixels, --timeout and --upload-timeout must be positive")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else None
    hosts = list(LOOPBACK_HOSTS)
    if args.host not in ("0.0.0.0", "::", ""):
        hosts.append(args.host)
    hosts += [h.strip() for h in args.allowed_host if h.strip()]
    return ServerSettings(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                          workers=args.workers, queue_size=args.queue, timeout_s=args.timeout,
                          upload_timeout_s=args.upload_timeout, allowed_hosts=tuple(dict.fromkeys(hosts)),
                          default_model=args.model, models=models)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from deblurkit.app.restore import make_loader
    from deblurkit.app.server import create_app

    settings = settings_from_args(args)
    app = create_app(settings, loader=make_loader(backend=args.backend, device=args.device,
                                                  threads=args.threads, tile=args.tile))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"deblurkit: warning: listening on {args.host}; anyone who can reach it can use it", file=sys.stderr)
        if args.host in ("0.0.0.0", "::") and not args.allowed_host:
            print("deblurkit: note: only requests for localhost are answered; add the names clients use with "
                  "--allowed-host NAME", file=sys.stderr)
    print(f"deblurkit: serving on http://{args.host}:{args.port}/ (API docs at /docs)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
