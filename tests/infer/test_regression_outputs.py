"""The shipped restorers give the same outputs on a fixed synthetic image set.

Every output is reduced to its 16 x 16 block means (a 10 x 10 x 3 digest of each 160 x 160 image),
stored in ``tests/infer/restorer_outputs.json`` by running this file as a script
(``python tests/infer/test_regression_outputs.py``). A change of behaviour moves the block means
by far more than :data:`TOLERANCE`; what differs between CPUs (the vector instructions that
PyTorch and the FFTs pick give last-bit differences) stays far below it, which bit-exact hashes
did not survive. Regenerate the file only for an intended change of behaviour, and say so in the
commit message.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # runs the default chain several times (about a minute on 2 busy cores)

STORED = Path(__file__).resolve().parent / "restorer_outputs.json"
TOLERANCE = 2e-4
"""Largest allowed difference of a block mean (images in [0, 1])."""
BLOCK = 16
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


def digest(img: np.ndarray) -> list:
    """16 x 16 block means of an ``(H, W, 3)`` image, rounded to 1e-6, as nested lists."""
    h, w, c = img.shape
    blocks = np.asarray(img, np.float64)[: h // BLOCK * BLOCK, : w // BLOCK * BLOCK]
    blocks = blocks.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, c).mean(axis=(1, 3))
    return np.round(blocks, 6).tolist()


def output_digests(case: str) -> dict[str, list]:
    from deblurkit.infer import load_restorer

    spec, kwargs = CASES[case]
    restorer = load_restorer(spec, **kwargs)
    return {name: digest(restorer(img)) for name, img in fixed_images().items()}


def test_fixed_images_are_fixed():
    stored = json.loads(STORED.read_text())["inputs"]
    for name, img in fixed_images().items():
        np.testing.assert_allclose(digest(img), stored[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_unchanged(case):
    stored = json.loads(STORED.read_text())["outputs"][case]
    for name, got in output_digests(case).items():
        np.testing.assert_allclose(got, stored[name], rtol=0, atol=TOLERANCE, err_msg=f"{case} on {name}")


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    record = {"inputs": {k: digest(v) for k, v in fixed_images().items()},
              "outputs": {case: output_digests(case) for case in CASES}}
    STORED.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    print(f"wrote {STORED} ({STORED.stat().st_size} bytes)")
