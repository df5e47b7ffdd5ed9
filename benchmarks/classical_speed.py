#!/usr/bin/env python3
"""Seconds per megapixel (and peak memory) of the kernel-aware pipelines.

    python benchmarks/classical_speed.py                              # kernel-deconv, 1 MP and 12 MP
    python benchmarks/classical_speed.py --mp 1                       # quick
    python benchmarks/classical_speed.py --pipeline kernel-refine     # design (c)
    python benchmarks/classical_speed.py --pipeline kernel-deconv+nafnet-w16   # the gated chain
    python benchmarks/classical_speed.py --sharp                      # a photo every check declines

Each size runs in its own subprocess so the reported peak RSS belongs to that size alone.
The test image is scikit-image's astronaut, resized to the target size and blurred with a
fixed 21-px shake kernel in linear light (so the full estimate + deconvolve path runs); with
``--sharp`` it is not blurred, the slow path of a photo whose kernels are declined in linear
light and estimated once more on its encoded values.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHAIN = "kernel-deconv+nafnet-w16"


def _one(mp: float, pipeline: str, sharp: bool = False) -> dict:
    import resource
    import time

    import cv2
    import numpy as np
    from skimage import data

    from deblurkit.color import linear_to_srgb, srgb_to_linear
    from deblurkit.kernel_aware.blind import deblur_image_and_kernels
    from deblurkit.kernel_aware.deconv import convolve_fft
    from deblurkit.synth.trajectory import random_shake_kernel

    w = round((mp * 1e6 * 4 / 3) ** 0.5)
    h = round(w * 3 / 4)
    img = cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    k = random_shake_kernel(21, 16.0, np.random.default_rng(0))
    blur = img.copy() if sharp else linear_to_srgb(convolve_fft(srgb_to_linear(img), k))
    del img
    steps = []
    t0 = time.perf_counter()
    if pipeline == "kernel-refine":
        from deblurkit.kernel_aware.refine import load_kernel_refine_model, refine_image_and_kernels

        model, _ = load_kernel_refine_model()
        t0 = time.perf_counter()  # time the pipeline, not the one-off weight loading
        res = refine_image_and_kernels(blur, model, progress=lambda d, t: steps.append(d))
    elif pipeline == CHAIN:
        from deblurkit.infer import load_restorer

        restorer = load_restorer(CHAIN)
        t0 = time.perf_counter()
        restorer(blur, progress=lambda d, t: steps.append(d))
        res = None
    else:
        res = deblur_image_and_kernels(blur, kernel_size=31, progress=lambda d, t: steps.append(d))
    dt = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"megapixels": round(w * h / 1e6, 2), "size": [w, h], "seconds": round(dt, 1),
            "seconds_per_megapixel": round(dt / (w * h / 1e6), 2),
            "tiles": list(res.kernels.shape[:2]) if res is not None else None,
            "deconvolved_tiles": int(res.blurred.sum()) if res is not None else None,
            "progress_steps": len(steps), "peak_rss_mb": round(peak_mb)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mp", type=float, nargs="*", default=[1.0, 12.0])
    ap.add_argument("--pipeline", choices=("kernel-deconv", "kernel-refine", CHAIN), default="kernel-deconv")
    ap.add_argument("--sharp", action="store_true", help="time an unblurred photo (every kernel declined)")
    ap.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(_one(args.child, args.pipeline, args.sharp)))
        return 0
    import os

    print(f"{args.pipeline} pipeline (kernel_size 31), {'sharp' if args.sharp else 'blurred'} photo, OMP/torch threads as set by the environment; "
          f"CPU cores visible: {os.cpu_count()}")
    for mp in args.mp:
        out = subprocess.run([sys.executable, __file__, "--child", str(mp), "--pipeline", args.pipeline,
                              *(["--sharp"] if args.sharp else [])],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['megapixels']:6.2f} MP {r['size'][0]}x{r['size'][1]}: {r['seconds']:7.1f} s "
              f"= {r['seconds_per_megapixel']:.2f} s/MP, kernel tiles {r['tiles'] or '-'} "
              f"({r['deconvolved_tiles'] if r['deconvolved_tiles'] is not None else '-'} deconvolved), "
              f"peak RSS {r['peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
