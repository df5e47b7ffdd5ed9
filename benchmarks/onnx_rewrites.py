#!/usr/bin/env python3
"""Which ONNX graph rewrites pay: seconds per tile for each combination, per model.

    python benchmarks/onnx_rewrites.py --models nafnet-w16,nafnet-gopro-w32,mimo-unet --size 512 --threads 1

Variants (every one computes the same function; the largest difference to ``base`` is printed):

* ``base``       the fused graph of :mod:`deblurkit.infer.fusion` with every NAFNet layer norm as
  ``LayerNormalization`` on an NHWC view, and without symbolic shape annotations;
* ``shapes``     ``base`` plus symbolic shapes on every tensor (:func:`deblurkit.infer.backends.export_onnx_bytes`);
* ``pointwise``  pointwise layer norms (blocks up to ``--max-channels``), no annotations;
* ``both``       pointwise layer norms and annotations: the library default.

Random weights (the time does not depend on them), with NAFNet's ``beta``/``gamma`` and layer
norm affine randomised so that every branch computes. Each variant runs in an ONNX Runtime session
built as :class:`deblurkit.infer.backends.OnnxBackend` builds it, on one ``--size`` square tile
(1 thread: the concurrent-tile case of the runtime). Rounds are interleaved (one run of each
variant per round) so that drifts of the machine hit all variants alike; min and median over
``--repeat`` rounds. Run time: about 1 minute for ``nafnet-w16`` and ``nafnet-gopro-w32`` at 512 px.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

VARIANTS = {"base": (False, 0), "shapes": (True, 0), "pointwise": (False, None), "both": (True, None)}


def _model(name: str, tlc: bool):
    import torch

    from deblurkit.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(("beta", "gamma", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")):
                p.normal_(0.5, 0.3)
    if tlc:
        from deblurkit.models.nafnet import convert_to_tlc

        convert_to_tlc(model)
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="nafnet-w16,nafnet-gopro-w32")
    ap.add_argument("--size", type=int, default=512, help="square tile side (a multiple of the model's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max-channels", type=int, default=None,
                    help="pointwise layer norm up to this many channels (default: the library's)")
    ap.add_argument("--tlc", action="store_true", help="NAFNet with TLC (local statistics)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)

    from deblurkit.infer.backends import OnnxBackend, export_onnx_bytes
    from deblurkit.infer.fusion import POINTWISE_NORM_MAX_CHANNELS

    pointwise_max = POINTWISE_NORM_MAX_CHANNELS if args.max_channels is None else args.max_channels
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    rows = []
    print(f"{args.size}x{args.size} tile, {args.threads} thread(s), pointwise norm up to {pointwise_max} channels"
          f"{', TLC' if args.tlc else ''}")
    print(f"{'model':18s} {'variant':10s} {'min s':>8s} {'median s':>9s} {'vs base':>8s} {'max |diff|':>11s}")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = _model(name, args.tlc)
        backends = {}
        for variant, (annotate, pw) in VARIANTS.items():
            data = export_onnx_bytes(model, annotate_shapes=annotate,
                                     pointwise_norm_max_channels=pointwise_max if pw is None else pw)
            backends[variant] = OnnxBackend(data, threads=args.threads)
        outputs = {v: b(x) for v, b in backends.items()}  # also the warm-up run
        times: dict[str, list[float]] = {v: [] for v in backends}
        for _ in range(args.repeat):
            for v, b in backends.items():
                t0 = time.perf_counter()
                b(x)
                times[v].append(time.perf_counter() - t0)
        base = float(np.median(times["base"]))
        for v in backends:
            med = float(np.median(times[v]))
            diff = float(np.abs(outputs[v] - outputs["base"]).max())
            rows.append({"model": name, "variant": v, "min_s": round(min(times[v]), 4), "median_s": round(med, 4),
                         "speedup_vs_base": round(base / med, 3), "max_abs_diff": diff})
            print(f"{name:18s} {v:10s} {min(times[v]):8.4f} {med:9.4f} {base / med:7.2f}x {diff:11.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"size": args.size, "threads": args.threads, "tlc": args.tlc,
                       "pointwise_norm_max_channels": pointwise_max, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
