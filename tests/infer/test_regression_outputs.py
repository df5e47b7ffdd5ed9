"""The shipped restorers give the same outputs on a fixed synthetic image set.

Every output is reduced to its 16 x 16 block means (a 10 x 10 x 3 digest of each 160 x 160 image),
stored in ``tests/infer/restorer_outputs.json`` by running this file as a script
(``python tests/infer/test_regression_outputs.py``). A change of behaviour moves the block means
by far more than the tolerances; what differs between CPUs must stay below them. Regenerate the
file only for an intended change of behaviour, and say so in the commit message.

Two tolerances, because CPUs differ in two ways. The networks see last-bit differences (the vector
instructions that PyTorch and the FFTs pick) and pass them on unamplified: :data:`TOLERANCE`.
Blind kernel estimation amplifies them: its L0 steps threshold every pixel, so a last-bit change
can move a pixel across a threshold and the kernel a little, and on an image whose ringing check
sits near its limit it can flip the decision to deblur at all (a 21-px blur of the same crop at
1.1 rad is such an image: its block means move by up to 0.18 under 1e-6 perturbations, and they
did between two CPUs; an 11-px blur at 0.3 rad moves them by up to 1.5e-2 under such perturbations
since the restorers refit their kernels to the network's restoration). The blurred image is therefore one on which the
decision has a margin and the kernel is stable, and the restorers that estimate kernels get
:data:`BLIND_TOLERANCE`. ``python tests/infer/test_regression_outputs.py --spread`` measures that
stability: each case's largest block-mean change under input perturbations of 1e-6 (about a
float32 last bit), which must stay well below the case's tolerance (measured: at most 4.5e-4 for
the blind cases, 1e-6 for the others). The blind tolerance still catches small
changes: the deconvolution's prior weight at 1e-3 or 3e-3 instead of 2e-3 moves ``kernel-deconv``'s
block means by 1.1e-2 and 2.4e-3.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # runs the default chain several times (about a minute on 2 busy cores)

STORED = Path(__file__).resolve().parent / "restorer_outputs.json"
TOLERANCE = 2e-4
"""Largest allowed difference of a block mean (images in [0, 1]) for restorers without blind kernels."""
BLIND_TOLERANCE = 2e-3
"""The same for restorers that estimate kernels (about 17x the ``--spread`` measured on this image)."""
BLIND_CASES = frozenset({"kernel-deconv", "kernel-refine", "default-torch", "default"})
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
    """Two 160x160 sRGB float32 crops of ``skimage.data.astronaut()``: sharp, and with a 13-px
    motion blur."""
    from scipy.ndimage import convolve
    from skimage import data

    base = (data.astronaut()[0:160, 180:340] / 255.0).astype(np.float32)
    out = {"sharp": base}
    for name, length, angle in (("shake", 13, 0.3),):
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


def tolerance(case: str) -> float:
    """The largest allowed block-mean difference for ``case``."""
    return BLIND_TOLERANCE if case in BLIND_CASES else TOLERANCE


def _restorer(case: str):
    from deblurkit.infer import load_restorer

    spec, kwargs = CASES[case]
    return load_restorer(spec, **kwargs)


def _digests(restorer, images: dict[str, np.ndarray]) -> dict[str, list]:
    return {name: digest(restorer(img)) for name, img in images.items()}


def output_digests(case: str) -> dict[str, list]:
    """Block means of ``case``'s outputs on :func:`fixed_images`."""
    return _digests(_restorer(case), fixed_images())


def spread(case: str, draws: int = 8) -> float:
    """Largest block-mean change of ``case``'s outputs when the inputs get N(0, 1e-6) noise
    (``draws`` draws)."""
    restorer = _restorer(case)
    images = fixed_images()
    base = _digests(restorer, images)
    largest = 0.0
    for seed in range(1, draws + 1):
        rng = np.random.default_rng(seed)
        perturbed = {k: np.clip(v + rng.normal(0.0, 1e-6, v.shape), 0.0, 1.0).astype(np.float32)
                     for k, v in images.items()}
        got = _digests(restorer, perturbed)
        largest = max(largest, max(float(np.abs(np.subtract(got[k], base[k])).max()) for k in base))
    return largest


def test_fixed_images_are_fixed():
    stored = json.loads(STORED.read_text())["inputs"]
    for name, img in fixed_images().items():
        np.testing.assert_allclose(digest(img), stored[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_unchanged(case):
    stored = json.loads(STORED.read_text())["outputs"][case]
    for name, got in output_digests(case).items():
        np.testing.assert_allclose(got, stored[name], rtol=0, atol=tolerance(case),
                                   err_msg=f"{case} on {name}")


if __name__ == "__main__":
    import sys

    import torch

    torch.set_num_threads(1)
    if "--spread" in sys.argv[1:]:
        for case in CASES:
            print(f"{case}: largest change {spread(case):.1e} (tolerance {tolerance(case):.0e})", flush=True)
        sys.exit(0)
    record = {"inputs": {k: digest(v) for k, v in fixed_images().items()},
              "outputs": {case: output_digests(case) for case in CASES}}
    STORED.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    print(f"wrote {STORED} ({STORED.stat().st_size} bytes)")
