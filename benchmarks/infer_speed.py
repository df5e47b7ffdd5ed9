"""Inference speed and peak memory per model, image size and backend (CPU).

Each measurement runs in a fresh subprocess so its peak resident memory (``ru_maxrss``) belongs
to that case alone. Weights are random (the timing does not depend on them); the ONNX graph is
exported (and cached) by the parent first, so export time is not counted.

Usage:
    python benchmarks/infer_speed.py --quick                    # small models, 1280x720 only
    python benchmarks/infer_speed.py --models mimo-unet --sizes 720p,12mp --backends torch,onnx
    python benchmarks/infer_speed.py                            # the full table (hours on 2 cores)

Columns: seconds for one image (after one warm-up run for sizes up to 720p; the median of
``--repeat`` timed runs), peak RSS of the process in MB, number of tiles, and the network's
convolution multiply-accumulates over all tiles divided by the seconds (GMAC/s; with ``--peak``
also as a share of this CPU's measured float32 matrix-multiply throughput, the ceiling for a
convolution-bound network on any backend). At the end, the speed-up
of ``default`` over ``torch`` (eager PyTorch, same weights and tiling) per model and size. ``default`` = what ``load_restorer(name)`` does (backend auto,
automatic tiling); ``torch``/``onnx`` force a backend with the same tiling. One forward pass per
tile unless ``--ensemble auto`` (each model's recommended self-ensemble, as the default pipeline runs
it: for ``nafnet-w16`` 4 passes below 1 MP, 2 from 1 MP up) or ``--ensemble on`` (4 passes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = {"256": (256, 256), "720p": (720, 1280), "12mp": (3000, 4000)}
ALL_MODELS = ["mimo-unet", "mimo-unet-plus", "mimo-unet-narrow", "nafnet-gopro-w32", "nafnet-gopro-w64", "nafnet-w16"]
QUICK_MODELS = ["mimo-unet-narrow", "nafnet-w16"]


ENSEMBLE = {"off": False, "on": True, "auto": None}


def run_case(model: str, size: str, backend: str, threads: int, tile: int | None, repeat: int = 1,
             ensemble: str = "off") -> dict:
    import resource

    import numpy as np

    from deblurkit.infer import load_restorer
    from deblurkit.infer.tiling import tile_windows

    h, w = SIZES[size]
    # Library defaults (NAFNet GoPro models: TLC on, on both backends).
    kwargs = {"threads": threads, "tile": tile, "self_ensemble": ENSEMBLE[ensemble]}
    r = load_restorer(model, backend="auto" if backend == "default" else backend, **kwargs)
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if h * w <= 1280 * 720:
        r(img[: min(h, 256), : min(w, 256)])  # warm-up (allocators, kernels) on a small crop
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        r(img)
        times.append(time.perf_counter() - t0)
    seconds = float(np.median(times))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def windows_for(hh: int, ww: int) -> list[tuple[int, int, int, int]]:
        return tile_windows(hh, ww, multiple=r.size_multiple, tile=r._tile_for(hh, ww), overlap=r.overlap)

    windows = windows_for(h, w)
    # the self-ensemble's passes at 90 and 270 degrees tile the transposed image
    passes = [(h, w) if k % 2 == 0 else (w, h) for k in r.ensemble_rotations(h, w)]
    pixels = sum(th * tw for hh, ww in passes for _, _, th, tw in windows_for(hh, ww))
    gmacs = conv_gmacs_per_mpixel(model) * pixels / 1e6
    return {"model": model, "size": size, "backend": backend, "resolved": r.backend, "threads": threads,
            "seconds": round(seconds, 2), "runs": [round(t, 2) for t in times], "peak_rss_mb": round(peak), "rss_before_mb": round(rss_before),
            "tiles": len(windows), "ensemble_passes": len(passes), "conv_gmacs": round(gmacs, 1),
            "gmacs_per_s": round(gmacs / seconds, 1)}


def conv_gmacs_per_mpixel(model: str) -> float:
    """Convolution multiply-accumulates per megapixel of network input (the network's own layers:
    the same count for every backend; graph rewrites and TLC's box filters are not counted)."""
    from deblurkit.models.registry import count_conv_macs, create_model

    return count_conv_macs(create_model(model), 256, 256) / 1e9 * (1e6 / (256 * 256))


def gemm_peak(threads: int, n: int = 2048, repeat: int = 10) -> float:
    """Measured float32 matrix-multiply throughput of this CPU (GMAC/s, best of ``repeat``): the
    ceiling for convolution-bound networks on any backend."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return n ** 3 / best / 1e9


def accuracy(models: list[str], threads: int) -> None:
    """Max |ONNX Runtime - torch|, max |bf16 - fp32| and PSNR(tiled, whole) for random-weight models."""
    import copy

    import numpy as np
    import torch

    from deblurkit.infer.backends import OnnxBackend, TorchBackend
    from deblurkit.infer.restorers import NetworkRestorer
    from deblurkit.models.registry import create_model

    torch.set_num_threads(threads)
    print(f"{'model':<18} {'|onnx-torch|':>12} {'|bf16-fp32|':>12} {'PSNR tiled/whole':>17}  (384x512 input)")
    for name in models:
        torch.manual_seed(0)
        model = create_model(name).eval()
        with torch.no_grad():
            for n, prm in model.named_parameters():
                if n.endswith(("beta", "gamma")):  # zero at init
                    prm.normal_(0, 0.2)
        x = np.random.default_rng(0).random((1, 3, 384, 512), dtype=np.float32)
        ref = TorchBackend(model)(x)
        d_onnx = float(np.abs(OnnxBackend(model, threads=threads)(x) - ref).max())
        bf16 = TorchBackend(copy.deepcopy(model), dtype="bfloat16")(x)
        d_bf16 = float(np.abs(np.clip(bf16, 0, 1) - np.clip(ref, 0, 1)).max())
        kw = {"name": name, "description": "", "size_multiple": model.size_multiple}
        img = x[0].transpose(1, 2, 0)
        whole = NetworkRestorer(TorchBackend(model), tile=0, **kw)(img)
        tiled = NetworkRestorer(TorchBackend(model), tile=256, overlap=64, **kw)(img)
        psnr = 10 * np.log10(1.0 / max(float(np.mean((whole - tiled) ** 2)), 1e-20))
        print(f"{name:<18} {d_onnx:>12.2e} {d_bf16:>12.2e} {psnr:>14.1f} dB", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small models at 720p only")
    p.add_argument("--models", default=None, help="comma-separated registry names")
    p.add_argument("--sizes", default=None, help=f"comma-separated from {list(SIZES)}")
    p.add_argument("--backends", default="torch,onnx,default")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tile", type=int, default=None, help="tile size (default: automatic)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per case (the median is reported)")
    p.add_argument("--ensemble", choices=list(ENSEMBLE), default="off",
                   help="self-ensemble: off (one pass, the runtime comparison), on, or auto (library default)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--case", nargs=3, metavar=("MODEL", "SIZE", "BACKEND"), help=argparse.SUPPRESS)
    p.add_argument("--peak", action="store_true",
                   help="also measure float32 matrix-multiply throughput (GMAC/s) and print each row's share of it")
    p.add_argument("--accuracy", action="store_true",
                   help="instead of timing: ONNX/bf16 deviations and tiled-vs-whole PSNR at 384x512")
    args = p.parse_args()
    if args.accuracy:
        accuracy(args.models.split(",") if args.models else QUICK_MODELS, args.threads)
        return 0
    if args.case:
        print(json.dumps(run_case(*args.case, args.threads, args.tile, args.repeat, args.ensemble)))
        return 0
    models = args.models.split(",") if args.models else (QUICK_MODELS if args.quick else ALL_MODELS)
    sizes = args.sizes.split(",") if args.sizes else (["720p"] if args.quick else ["720p", "12mp"])
    backends = args.backends.split(",")

    from deblurkit.infer import load_restorer

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []
    peak = None
    if args.peak:
        peak = gemm_peak(args.threads)
        print(f"float32 matrix-multiply throughput, {args.threads} threads: {peak:.1f} GMAC/s")
    print(f"{'model':<18} {'size':<5} {'backend':<8} {'resolved':<8} {'seconds':>8} {'peak MB':>8} {'tiles':>5} "
          f"{'GMAC/s':>7}" + ("  of peak" if peak else ""))
    for model in models:
        if any(b in ("onnx", "default") for b in backends):
            load_restorer(model, backend="onnx")  # export + cache (same settings) outside the timed subprocesses
        for size in sizes:
            for backend in backends:
                cmd = [sys.executable, __file__, "--case", model, size, backend, "--threads", str(args.threads),
                       "--repeat", str(args.repeat), "--ensemble", args.ensemble]
                if args.tile is not None:
                    cmd += ["--tile", str(args.tile)]
                res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                if res.returncode != 0:
                    print(f"{model:<18} {size:<5} {backend:<8} FAILED: {res.stderr.strip().splitlines()[-1:]}")
                    continue
                row = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append(row)
                share = f"  {row['gmacs_per_s'] / peak:7.0%}" if peak else ""
                print(f"{model:<18} {size:<5} {backend:<8} {row['resolved']:<8} {row['seconds']:>8.2f} "
                      f"{row['peak_rss_mb']:>8} {row['tiles']:>5} {row['gmacs_per_s']:>7.1f}{share}", flush=True)
    seconds = {(r["model"], r["size"], r["backend"]): r["seconds"] for r in rows}
    for (model, size, backend), sec in seconds.items():
        eager = seconds.get((model, size, "torch"))
        if backend == "default" and eager:
            print(f"speed-up default vs torch eager: {model} {size}: {eager / sec:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"gemm_peak_gmacs_per_s": peak, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
