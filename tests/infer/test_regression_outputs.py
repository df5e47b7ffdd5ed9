"""The shipped restorers give bit-identical outputs on a fixed synthetic image set.

The SHA-256 of every float32 output was stored in ``tests/infer/restorer_outputs.json`` by running
this file as a script (``python tests/infer/test_regression_outputs.py``); a refactoring that
changes any output by one bit fails here. Regenerate the file only for an intended change of
behaviour, and say so in the commit message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # runs the default chain several times (about a minute on 2 busy cores)

STORED = Path(__file__).resolve().parent / "restorer_outputs.json"
#: (restorer spec, load_restorer keyword arguments)
CASES: dict[str, tuple[str, dict]] = {
    "identity": ("identity", {}),
    "kernel-deconv": ("kernel-deconv", {}),
    "nafnet-w16-torch": ("nafnet-w16", {"backend": "torch"}),
    "kernel-refine": ("kernel-refine", {}),
    "default-torch": ("default", {"backend": "torch"}),
    "default": ("default", {}),
}


def _line_kernel(length: int, angle: float) -> np.ndarray:
    """A straight motion-blur kernel of ``length`` pixels at ``angle`` radians (sums to 1)."""
    size = length + 2 if length % 2 else length + 3
    k = np.zeros((size, size))
    c = size // 2
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 8 * length):
        k[int(np.rint(c + t * np.sin(angle))), int(np.rint(c + t * np.cos(angle)))] += 1.0
    return k / k.sum()


def fixed_images() -> dict[str, np.ndarray]:
    """Two 160x160 sRGB float32 crops of ``skimage.data.astronaut()``: sharp, and with a long motion blur."""
    from scipy.ndimage import convolve
    from skimage import data

    base = (data.astronaut()[0:160, 180:340] / 255.0).astype(np.float32)
    out = {"sharp": base}
    for name, length, angle in (("long", 21, 1.1),):
        k = _line_kernel(length, angle)
        blurred = np.stack([convolve(base[..., c], k, mode="reflect") for c in range(3)], axis=2)
        noise = np.random.default_rng(0).normal(0.0, 0.003, blurred.shape)
        out[name] = np.clip(blurred + noise, 0.0, 1.0).astype(np.float32)
    return out


def output_hashes(case: str) -> dict[str, str]:
    from deblurkit.infer import load_restorer

    spec, kwargs = CASES[case]
    restorer = load_restorer(spec, **kwargs)
    out = {}
    for name, img in fixed_images().items():
        y = np.ascontiguousarray(restorer(img), dtype=np.float32)
        out[name] = hashlib.sha256(y.tobytes()).hexdigest()[:24]
    return out


def test_fixed_images_are_fixed():
    stored = json.loads(STORED.read_text())["inputs"]
    got = {k: hashlib.sha256(v.tobytes()).hexdigest()[:24] for k, v in fixed_images().items()}
    assert got == stored


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_bit_identical(case):
    stored = json.loads(STORED.read_text())["outputs"][case]
    assert output_hashes(case) == stored


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    record = {"inputs": {k: hashlib.sha256(v.tobytes()).hexdigest()[:24] for k, v in fixed_images().items()},
              "outputs": {case: output_hashes(case) for case in CASES}}
    STORED.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
