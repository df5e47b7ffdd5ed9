#!/usr/bin/env python3
"""Wall time of the default ``deblurkit deblur`` (the gated chain) per photo size, by stage.

    python benchmarks/default_speed.py                      # 64x64, 1 MP and 12 MP
    python benchmarks/default_speed.py --sizes 64 1         # quick (about a minute on 2 cores)
    python benchmarks/default_speed.py --sizes 1280x720     # a size given in pixels
    python benchmarks/default_speed.py --sizes 64 --model identity   # start-up reference
    python benchmarks/default_speed.py --hot                # CPU seconds of the hot functions

Each size runs ``deblurkit deblur IN -o OUT --force`` in its own process, as a user runs it
(the ONNX graph cache, ``~/.cache/deblurkit/onnx``, as it is; run once before to warm it). The
input is scikit-image's astronaut resized to the size and blurred in linear light by a fixed
21-px shake kernel (9 px at 64x64), as in ``benchmarks/classical_speed.py``, so the gate accepts
the kernels at 1 and 12 MP and the whole path runs; written as PNG. The process times its own
stages by wrapping the pipeline's functions (no change to what runs):

- ``imports``: interpreter start and the command's modules (for the default also SciPy's FFT
  and the classical pipeline's); libraries imported lazily later (NumPy for ``identity``, ONNX
  Runtime, OpenCV, ...) count in the stage that needs them;
- ``load``: building the restorer (weights, ONNX session; torch only when the graph is not cached);
- ``read`` / ``write``: decoding the input, encoding and writing the output;
- ``estimate``: kernel estimation per tile (wall), with the summed thread CPU seconds and the
  number of calls of ``estimate_kernel`` and of the whole-image ringing check
  (``deconvolution_overshoot``) inside it;
- ``judge``: the learned veto inside ``estimate`` (per trusted tile, a window deconvolved with the
  kernel and with a delta kernel, each then run once through the network, the two at once);
- ``refit``: inside ``estimate`` too, the kernel refitted to the network's restoration (per
  deconvolved tile, a window deconvolved with the kernel, run once through the network, one kernel step);
- ``deconvolve``: the hyper-Laplacian deconvolution of the tiles the gate accepted;
- ``network``: the learned stage (tiles x the self-ensemble's passes: four rotations below 0.5 MP,
  two from 0.5 MP up), without the judge's and the refit's runs;
- ``total``: the process's wall time, interpreter start to exit.

Every line reports the 1-minute load average before and after the run: the machine may be
shared, and timings are only comparable at similar load. Timing goals live here, not in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_T0 = time.perf_counter()


def make_input(size: str, path: Path) -> dict:
    """Write the blurry test photo for ``size`` (``"64"``: 64x64 px; ``"WxH"``: that size; else
    megapixels, 4:3)."""
    import cv2
    import numpy as np
    from skimage import data

    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.kernel_aware.deconv import convolve_fft
    from deblurkit.synth.trajectory import random_shake_kernel

    if size == "64":
        w = h = 64
        ks, length = 9, 6.75
    else:
        if "x" in size:
            w, h = (int(v) for v in size.split("x"))
        else:
            w = round((float(size) * 1e6 * 4 / 3) ** 0.5)
            h = round(w * 3 / 4)
        ks, length = 21, 16.0
    img = cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA if w < 512 else cv2.INTER_CUBIC)
    kernel = random_shake_kernel(ks, length, np.random.default_rng(0))
    blur = linear_to_srgb(convolve_fft(srgb_to_linear(img.astype(np.float32) / 255.0), kernel))
    cv2.imwrite(str(path), (np.clip(blur, 0, 1) * 255 + 0.5).astype(np.uint8)[..., ::-1])
    return {"size": [w, h], "megapixels": round(w * h / 1e6, 3), "kernel_px": ks}


def _child(src: str, dst: str, model: str) -> dict:
    """Run the command in this process with timers around its stages."""
    import threading
    from collections import defaultdict

    stages: dict[str, float] = defaultdict(float)
    cpu: dict[str, list] = defaultdict(lambda: [0, 0.0])
    lock = threading.Lock()

    def timed(module, name: str, stage: str, *, marks: threading.Event | None = None,
              unless: threading.Event | None = None) -> None:
        """Add the wall time of ``module.name``'s calls to ``stage``; ``marks`` is set during
        them; calls made while ``unless`` is set are not counted."""
        inner = getattr(module, name)

        def wrapper(*args, **kwargs):
            counts = unless is None or not unless.is_set()
            if marks is not None:
                marks.set()
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                if marks is not None:
                    marks.clear()
                if counts:
                    with lock:
                        stages[stage] += time.perf_counter() - t

        setattr(module, name, wrapper)

    def counted(module, name: str) -> None:
        inner = getattr(module, name)

        def wrapper(*args, **kwargs):
            t = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                with lock:
                    cpu[name][0] += 1
                    cpu[name][1] += time.thread_time() - t

        setattr(module, name, wrapper)

    t = time.perf_counter()
    from deblurkit import cli
    from deblurkit.app import cli as app_cli  # noqa: F401 (the command's module)

    classical = "kernel-deconv" in model or model == "default"
    if classical:  # the modules the classical stage needs anyway, imported here to be wrapped
        import scipy.fft  # noqa: F401

        from deblurkit.kernel_aware import blind, estimation
    imports = time.perf_counter() - t + (t - _T0)
    from deblurkit import infer, photo_io
    from deblurkit.infer import restorers

    timed(infer, "load_restorer", "load")
    timed(photo_io, "read_photo_file", "read")
    timed(photo_io, "encode_photo", "write")
    judging = threading.Event()  # set while the judge or the refit runs: their network runs count there only
    timed(restorers.NetworkRestorer, "restore_rgb", "network", unless=judging)
    tiles: dict[str, list[int] | int] = {}
    if classical:
        timed(blind, "_estimate", "estimate")
        timed(blind, "decision_features", "judge", marks=judging)
        timed(blind, "refitted_kernel", "refit", marks=judging)
        timed(blind, "blend_regions", "deconvolve")
        estimate = blind._estimate

        def noted(*args, **kwargs):
            found = estimate(*args, **kwargs)  # (kernels, blurred, ...)
            blurred = found[1]
            tiles.update(tiles=list(blurred.shape), accepted=int(blurred.sum()))
            return found

        blind._estimate = noted
        counted(estimation, "estimate_kernel")
        counted(estimation, "deconvolution_overshoot")
    status = cli.main(["deblur", src, "-o", dst, "--force", "--quiet", "--model", model])
    if status != 0:
        raise SystemExit(status)
    return {"imports": imports, **stages, **tiles, "calls": {k: [n, round(s, 2)] for k, (n, s) in cpu.items()}}


def hot_functions(repeat: int = 2) -> dict[str, float]:
    """Thread CPU seconds (best of ``repeat``) of the functions the stages spend their time in.

    CPU time, unlike wall time, hardly depends on what else the machine runs, so these compare
    two versions of the code fairly on a shared machine (run this file with each on PYTHONPATH).
    """
    import cv2
    import numpy as np
    from skimage import data

    from deblurkit.color import luminance, srgb_to_linear
    from deblurkit.kernel_aware.deconv import hyper_laplacian_deconv, psf2otf
    from deblurkit.kernel_aware.estimation import deconvolution_overshoot, estimate_kernel
    from deblurkit.synth.trajectory import random_shake_kernel

    img = cv2.resize(data.astronaut(), (1155, 866), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    gray = luminance(srgb_to_linear(img))
    gray /= np.percentile(gray, 99.5)
    kernel = random_shake_kernel(21, 16.0, np.random.default_rng(0))
    block = np.random.default_rng(1).random((1024, 1024, 3), dtype=np.float32) * 0.5 + 0.25
    crop = np.ascontiguousarray(gray[177:689, 321:833])
    jobs = {
        "estimate_kernel (512 px crop, 31 px window)": lambda: estimate_kernel(crop, kernel_size=31),
        "deconvolution_overshoot (1155x866 gray)": lambda: deconvolution_overshoot(gray, kernel),
        "hyper_laplacian_deconv (1024x1024x3 block)": lambda: hyper_laplacian_deconv(block, kernel),
        "psf2otf x100 (31 px kernel, 512x512)": lambda: [psf2otf(kernel, (512, 512)) for _ in range(100)],
    }
    estimate_kernel(crop[:128, :128], kernel_size=15)  # lazy imports and FFT plans
    out = {}
    for name, job in jobs.items():
        best = float("inf")
        for _ in range(repeat):
            t = time.thread_time()
            job()
            best = min(best, time.thread_time() - t)
        out[name] = best
    return out


def run_size(size: str, model: str, workdir: Path) -> dict:
    src, dst, rep = workdir / f"in_{size}.png", workdir / f"out_{size}.png", workdir / f"stages_{size}.json"
    info = make_input(size, src)
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(src), str(dst), str(rep), "--model", model],
                          capture_output=True, text=True, check=False)
    total = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"size {size}: the command failed:\n{proc.stderr}")
    stages = json.loads(rep.read_text())
    return {**info, "total": total, **stages, "load_before": load_before, "load_after": os.getloadavg()[0]}


def _format(r: dict) -> str:
    parts = [f"{k} {r[k]:.2f}" for k in ("imports", "load", "read", "estimate", "judge", "refit", "deconvolve", "network", "write")
             if k in r]
    calls = ", ".join(f"{k} x{n} {s:.1f} s CPU" for k, (n, s) in r["calls"].items())
    w, h = r["size"]
    return (f"{w}x{h} ({r['megapixels']} MP, kernel {r['kernel_px']} px): total {r['total']:.2f} s = "
            f"{'; '.join(parts)} s" + (f" [estimate: {calls}]" if calls else "")
            + (f"; kernel tiles {r['tiles']} ({r['accepted']} deconvolved)" if "tiles" in r else "")
            + f"; load average {r['load_before']:.2f} -> {r['load_after']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["64", "1", "12"],
                    help="'64' (64x64 px), 'WxH' (e.g. 1280x720) and/or megapixels (4:3)")
    ap.add_argument("--model", default="default", help="restorer (default: the shipped default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--hot", action="store_true",
                    help="instead: CPU seconds of the hot functions (compare versions of the code)")
    ap.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        src, dst, rep = args.child
        result = _child(src, dst, args.model)
        Path(rep).write_text(json.dumps(result))
        return 0
    if args.hot:
        load = os.getloadavg()[0]
        for name, seconds in hot_functions().items():
            print(f"{name}: {seconds:.2f} s CPU")
        print(f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
        return 0
    print(f"deblurkit deblur --model {args.model}; CPU cores visible: {os.cpu_count()}; "
          f"stages in seconds of wall time")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            r = run_size(size, args.model, Path(tmp))
            results.append(r)
            print(_format(r), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
