"""Load test of the web app on loopback: throughput, p50/p99 latency, peak server memory, overflow.

Starts ``deblurkit.app.server.create_app`` under uvicorn in a child process on a free 127.0.0.1
port, then:

1. *within capacity*: ``--requests`` POSTs of one test photo with at most ``workers + queue``
   in flight — reports throughput, p50/p99 latency and the server's peak RSS (VmHWM);
2. *overflow*: a burst of ``--burst`` simultaneous POSTs (more than the queue holds) — reports how
   many got 503 + Retry-After, then checks ``/healthz`` and that one more request succeeds.

Bounded: at most 500 requests, a 300 s overall limit, loopback only.

    python benchmarks/serve_load.py                      # identity restorer: server overhead only
    python benchmarks/serve_load.py --model default --size 256 --requests 8
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

SERVER_CODE = """
import sys, uvicorn
from deblurkit.app.server import ServerSettings, create_app
port, model, workers, queue = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
app = create_app(ServerSettings(default_model=model, workers=workers, queue_size=queue, timeout_s=120))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_photo(size: int) -> bytes:
    """A real photo (scikit-image astronaut) resized to size x size with a motion blur, as JPEG."""
    import cv2
    from PIL import Image
    from skimage import data

    img = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    k = np.zeros((9, 9), np.float32)
    k[4, :] = 1 / 9
    img = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _post(client, url: str, photo: bytes) -> tuple[int, float, str | None]:
    t0 = time.perf_counter()
    r = client.post(url + "/api/deblur", files={"file": ("photo.jpg", photo, "image/jpeg")}, timeout=180)
    return r.status_code, time.perf_counter() - t0, r.headers.get("retry-after")


def _run_concurrent(url: str, photo: bytes, count: int, concurrency: int) -> list[tuple[int, float, str | None]]:
    import httpx

    results: list[tuple[int, float, str | None]] = []
    lock = threading.Lock()
    todo = iter(range(count))

    def worker() -> None:
        with httpx.Client() as client:
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                res = _post(client, url, photo)
                with lock:
                    results.append(res)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="identity", help="restorer the server uses (default identity: overhead only)")
    p.add_argument("--size", type=int, default=512, help="test photo side in pixels")
    p.add_argument("--requests", type=int, default=40, help="requests in the within-capacity phase (<= 500)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queue", type=int, default=4)
    p.add_argument("--burst", type=int, default=24, help="simultaneous requests in the overflow phase (<= 500)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if not (1 <= args.requests <= 500 and 1 <= args.burst <= 500):
        p.error("--requests and --burst must be in 1..500")

    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    server = subprocess.Popen([sys.executable, "-c", SERVER_CODE, str(port), args.model, str(args.workers),
                               str(args.queue)], env=env)
    started = time.monotonic()
    try:
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() - started > 60:
                print("server did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        photo = _test_photo(args.size)
        _run_concurrent(url, photo, 2, 1)  # warm-up: loads the restorer once
        capacity = args.workers + args.queue

        t0 = time.perf_counter()
        res = _run_concurrent(url, photo, args.requests, capacity)
        wall = time.perf_counter() - t0
        ok = sorted(lat for code, lat, _ in res if code == 200)
        codes: dict[int, int] = {}
        for code, _, _ in res:
            codes[code] = codes.get(code, 0) + 1

        burst = _run_concurrent(url, photo, args.burst, args.burst)
        burst_codes: dict[int, int] = {}
        for code, _, _ in burst:
            burst_codes[code] = burst_codes.get(code, 0) + 1
        retry_after = sorted({ra for code, _, ra in burst if code == 503 and ra})
        health = httpx.get(url + "/healthz", timeout=5).json()
        after = _run_concurrent(url, photo, 1, 1)[0][0]
        out = {
            "model": args.model, "photo": f"{args.size}x{args.size} JPEG ({len(photo)} bytes)",
            "workers": args.workers, "queue": args.queue, "cpu_count": os.cpu_count(),
            "within_capacity": {
                "requests": args.requests, "concurrency": capacity, "status_counts": codes,
                "throughput_rps": round(len(ok) / wall, 2),
                "p50_ms": round(1000 * float(np.percentile(ok, 50)), 1) if ok else None,
                "p99_ms": round(1000 * float(np.percentile(ok, 99)), 1) if ok else None,
            },
            "overflow": {"burst": args.burst, "status_counts": burst_codes, "retry_after": retry_after,
                         "healthz_after": health.get("status"), "next_request_status": after},
            "server_peak_rss_mb": (round(_peak_rss_mb(server.pid), 1) if _peak_rss_mb(server.pid) else None),
        }
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    wc, ov = out["within_capacity"], out["overflow"]
    print(f"model {out['model']}, photo {out['photo']}, workers {args.workers}, queue {args.queue}")
    print(f"within capacity: {wc['requests']} requests at concurrency {wc['concurrency']}: {wc['throughput_rps']} req/s, "
          f"p50 {wc['p50_ms']} ms, p99 {wc['p99_ms']} ms, statuses {wc['status_counts']}")
    print(f"overflow burst of {ov['burst']}: statuses {ov['status_counts']} (Retry-After {ov['retry_after']}); "
          f"healthz after: {ov['healthz_after']}; next request: {ov['next_request_status']}")
    print(f"server peak RSS: {out['server_peak_rss_mb']} MB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    stayed_up = ov["healthz_after"] == "ok" and ov["next_request_status"] == 200
    return 0 if stayed_up else 1


if __name__ == "__main__":
    raise SystemExit(main())
