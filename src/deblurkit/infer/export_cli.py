"""``deblurkit export-onnx``: export a model (name or checkpoint) to ONNX with dynamic height/width."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model registry name or checkpoint file (.safetensors/.pth/.pkl)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output .onnx file")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the ONNX Runtime vs PyTorch comparison on a random 64x96 input")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from deblurkit.errors import DeblurkitError
    from deblurkit.infer.backends import OnnxBackend, TorchBackend, export_onnx_bytes, onnxruntime_available
    from deblurkit.io import atomic_write
    from deblurkit.models.checkpoint import load_model

    if args.out.suffix.lower() != ".onnx":
        raise DeblurkitError(f"{args.out}: output must end in .onnx")
    model, meta = load_model(args.model)
    data = export_onnx_bytes(model, opset=args.opset)
    with atomic_write(args.out) as fh:
        fh.write(data)
    print(f"wrote {args.out} ({len(data) / 1e6:.1f} MB; {meta['name']}, input 'input' (N,3,H,W) float32 sRGB [0,1], "
          f"H and W multiples of {meta['size_multiple']}; output 'output' same shape)")
    if not args.no_check and onnxruntime_available():
        m = meta["size_multiple"]
        x = np.random.default_rng(0).random((1, 3, 64 // m * m or m, 96 // m * m or m), dtype=np.float32)
        diff = float(np.abs(OnnxBackend(data)(x) - TorchBackend(model)(x)).max())
        print(f"check: max |onnxruntime - torch| = {diff:.2e} on a random {x.shape[2]}x{x.shape[3]} input")
        if diff > 1e-4:
            raise DeblurkitError(f"exported graph differs from PyTorch by {diff:.2e} (> 1e-4)")
    return 0
