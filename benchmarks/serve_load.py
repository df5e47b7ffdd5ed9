"""Load test of the web app on loopback: throughput, p50/p99 latency, peak server memory, overflow.

Starts ``deblurkit.app.server.create_app`` under uvicorn in a child process on a free 127.0.0.1
port, then:

1. *within capacity*: ``--requests`` POSTs of one test photo with at most ``workers + queue``
   in flight — reports throughput, p50/p99 latency and the server's peak RSS (VmHWM);
2. *overflow*: a burst of ``--burst`` simultaneous POSTs (more than the queue holds) — reports how
   many got 503 + Retry-After, then checks ``/healthz`` and that one more request succeeds;
3. *chunked flood*: ``--flood`` simultaneous uploads of ``--flood-factor`` x the upload limit with
   ``Transfer-Encoding: chunked`` (no Content-Length to refuse them by) — reports their statuses,
   how much each client sent before it was answered, the server's RSS growth (sampled every 10 ms)
   and its peak temporary-disk use (the open, deleted spool files under ``/proc/PID/fd``), against
   the goals RSS within +100 MB and temporary disk within limit x job slots (exit status 1 if missed);
4. *slow client*: one upload that stalls after a few bytes, while normal requests go on — reports
   the stalled upload's status (408 after ``--upload-timeout``) and the other requests' statuses.

Bounded: at most 500 requests, a 300 s overall limit, loopback only.

    python benchmarks/serve_load.py                      # identity restorer: server overhead only
    python benchmarks/serve_load.py --model default --size 256 --requests 8
    python benchmarks/serve_load.py --requests 10 --burst 12 --flood 20 --max-upload-mb 8
"""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import numpy as np

SERVER_CODE = """
import json, sys, uvicorn
from deblurkit.app.server import ServerSettings, create_app
port, settings = int(sys.argv[1]), json.loads(sys.argv[2])
app = create_app(ServerSettings(timeout_s=120, **settings))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""
MB = 1024 * 1024


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


def _proc_status_mb(pid: int, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _open_temp_bytes(pid: int) -> int:
    """Bytes in the server's open regular files that were deleted (Starlette's spooled uploads)."""
    total = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return 0
    for fd in fds:
        try:
            target = os.readlink(fd)
            if target.endswith("(deleted)") or "/tmp" in target:
                st = os.stat(fd)
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
        except OSError:
            continue
    return total


class _Sampler:
    """Samples the server's RSS and temporary-disk use every 10 ms in a thread; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_rss_mb, self.peak_temp = pid, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = _proc_status_mb(self.pid, "VmRSS") or 0.0
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self.peak_temp = max(self.peak_temp, _open_temp_bytes(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def _chunked_upload(port: int, total: int, *, chunk: int = 64 * 1024, stall_after: int | None = None,
                    deadline_s: float = 60.0) -> tuple[int, int, float]:
    """One multipart upload of ``total`` junk bytes with chunked framing on a raw socket.

    Stops sending as soon as the server answers (or after ``stall_after`` bytes, then waits).
    Returns ``(status, bytes_sent, seconds)``; status 0 when no answer came.
    """
    t0 = time.monotonic()
    boundary = "loadtestboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    request = (f"POST /api/deblur HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    sent, data = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as sock:
        try:
            sock.sendall(request + b"%x\r\n%s\r\n" % (len(head), head))
            block = b"\xab" * chunk
            answered = False
            while sent < total and (stall_after is None or sent < stall_after):
                if select.select([sock], [], [], 0)[0]:
                    answered = True  # answered early
                    break
                n = min(chunk, total - sent)
                sock.sendall(b"%x\r\n%s\r\n" % (n, block[:n]))
                sent += n
            if not answered and stall_after is None:  # all sent: close the part and the body
                tail = f"\r\n--{boundary}--\r\n".encode()
                sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        except OSError:
            pass  # the server answered and closed the connection
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and b"\r\n" not in data:
            try:
                part = sock.recv(4096)
            except OSError:
                break
            if not part:
                break
            data += part
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, sent, time.monotonic() - t0


def _flood(port: int, pid: int, count: int, total: int) -> dict:
    """``count`` simultaneous oversize chunked uploads; statuses, bytes sent, server RSS and temp disk."""
    rss_before = _proc_status_mb(pid, "VmRSS") or 0.0
    results: list[tuple[int, int, float]] = []
    lock = threading.Lock()

    def one() -> None:
        res = _chunked_upload(port, total)
        with lock:
            results.append(res)

    with _Sampler(pid) as sampler:
        threads = [threading.Thread(target=one) for _ in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    codes: dict[int, int] = {}
    for code, _, _ in results:
        codes[code] = codes.get(code, 0) + 1
    return {"uploads": count, "upload_mb_each": round(total / MB, 1), "status_counts": codes,
            "max_sent_before_answer_mb": round(max(s for _, s, _ in results) / MB, 2),
            "max_seconds": round(max(t for _, _, t in results), 2),
            "server_rss_before_mb": round(rss_before, 1), "server_rss_peak_mb": round(sampler.peak_rss_mb, 1),
            "server_rss_growth_mb": round(sampler.peak_rss_mb - rss_before, 1),
            "server_temp_disk_peak_mb": round(sampler.peak_temp / MB, 2)}


def _slow_client(url: str, port: int, photo: bytes, upload_timeout: float) -> dict:
    """One upload that stalls; meanwhile three normal requests. Statuses and times of both."""
    import httpx

    stalled: list[tuple[int, int, float]] = []
    t = threading.Thread(target=lambda: stalled.append(
        _chunked_upload(port, 10 * MB, stall_after=4096, deadline_s=upload_timeout + 30)))
    t.start()
    time.sleep(0.3)
    normal = []
    with httpx.Client() as client:
        for _ in range(3):
            code, seconds, _ = _post(client, url, photo)
            normal.append((code, round(seconds, 2)))
    t.join(upload_timeout + 40)
    code, _, seconds = stalled[0] if stalled else (0, 0, 0.0)
    return {"stalled_status": code, "stalled_answered_after_s": round(seconds, 2),
            "upload_timeout_s": upload_timeout, "normal_requests_meanwhile": normal}


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
    p.add_argument("--flood", type=int, default=20, help="simultaneous oversize chunked uploads (0: skip)")
    p.add_argument("--flood-factor", type=float, default=3.0, help="size of each flood upload, x the limit")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="the server's upload limit")
    p.add_argument("--upload-timeout", type=float, default=8.0, help="the server's upload time limit (slow client)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if not (1 <= args.requests <= 500 and 1 <= args.burst <= 500 and 0 <= args.flood <= 100):
        p.error("--requests and --burst must be in 1..500, --flood in 0..100")

    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    limit = int(args.max_upload_mb * MB)
    server_settings = {"default_model": args.model, "workers": args.workers, "queue_size": args.queue,
                       "max_upload_bytes": limit, "upload_timeout_s": args.upload_timeout}
    server = subprocess.Popen([sys.executable, "-c", SERVER_CODE, str(port), json.dumps(server_settings)], env=env)
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
        flood = _flood(port, server.pid, args.flood, int(args.flood_factor * limit)) if args.flood else None
        slow = _slow_client(url, port, photo, args.upload_timeout)
        health_end = httpx.get(url + "/healthz", timeout=5).json()
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
            "chunked_flood": flood, "slow_client": slow,
            "healthz_at_end": {"status": health_end.get("status"), "jobs": health_end.get("jobs")},
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
    goals_met = True
    if flood:
        slots = args.workers + args.queue
        disk_goal_mb = args.max_upload_mb * slots
        rss_ok = flood["server_rss_growth_mb"] <= 100
        disk_ok = flood["server_temp_disk_peak_mb"] <= disk_goal_mb
        goals_met = rss_ok and disk_ok and set(flood["status_counts"]) <= {413, 503}
        print(f"chunked flood: {flood['uploads']} x {flood['upload_mb_each']} MB (limit {args.max_upload_mb:g} MB, "
              f"{slots} slots): statuses {flood['status_counts']}; each client sent at most "
              f"{flood['max_sent_before_answer_mb']} MB before its answer (all answered within {flood['max_seconds']} s)")
        print(f"  server RSS {flood['server_rss_before_mb']} -> peak {flood['server_rss_peak_mb']} MB "
              f"(+{flood['server_rss_growth_mb']} MB; goal <= +100: {'met' if rss_ok else 'MISSED'}); "
              f"temporary disk peak {flood['server_temp_disk_peak_mb']} MB "
              f"(goal <= {disk_goal_mb:g} MB = limit x slots: {'met' if disk_ok else 'MISSED'})")
    sl = out["slow_client"]
    slow_ok = sl["stalled_status"] == 408 and all(code == 200 for code, _ in sl["normal_requests_meanwhile"])
    print(f"slow client: stalled upload answered {sl['stalled_status']} after {sl['stalled_answered_after_s']} s "
          f"(--upload-timeout {sl['upload_timeout_s']:g}); normal requests meanwhile: "
          f"{sl['normal_requests_meanwhile']}; healthz at end: {out['healthz_at_end']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    stayed_up = (ov["healthz_after"] == "ok" and ov["next_request_status"] == 200
                 and out["healthz_at_end"] == {"status": "ok", "jobs": 0})
    return 0 if stayed_up and goals_met and slow_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
