"""Measures whose models ship inside optional PyPI packages (the ``curate`` extra); nothing is downloaded.

- :func:`brisque_srgb`: BRISQUE (Mittal et al., IEEE TIP 2012), the features and the LIBSVM
  regression model of the ``brisque`` package (``brisque/models/svm.txt``, trained on LIVE);
  lower is better, about 0-100. (``piq``'s BRISQUE fetches its weights from the web at first
  use, so it is not used; OpenCV's needs separate model files.)
- :func:`detect_faces_srgb`: faces found by libfacedetection (Yu et al., a YuNet-style CNN whose
  weights are compiled into the ``yuface`` wheel's shared library). OpenCV 5 has no Haar
  cascades, and MediaPipe's current wheel ships no face model (and replaces OpenCV).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from deblurkit.errors import DeblurkitError

_EXTRA_HINT = "install the curate extra: pip install 'deblurkit[curate]'"
BRISQUE_MAX_SIDE = 512
"""BRISQUE runs on the image downscaled (area) to at most this long side (about 1 s on one core)."""
FACE_MAX_SIDE = 960
"""Face detection runs on the image downscaled to at most this long side (libfacedetection's
documented working size); faces smaller than ~10 px there are missed."""


def _downscale_srgb(img_srgb: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = img_srgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return img_srgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img_srgb, size, interpolation=cv2.INTER_AREA)


def _to_uint8(img_srgb: np.ndarray) -> np.ndarray:
    return np.clip(img_srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


@functools.cache
def _brisque_model():
    try:
        from brisque import BRISQUE
    except ImportError as exc:
        raise DeblurkitError(f"BRISQUE needs the 'brisque' package ({exc}); {_EXTRA_HINT}") from None

    class _Brisque(BRISQUE):
        # brisque 0.2.0 returns some features as 1-element arrays, which NumPy >= 2.4 refuses to
        # turn into floats in its scaling step; flatten them to scalars first (same values).
        def calculate_brisque_features(self, image, kernel_size=7, sigma=7 / 6):
            feats = super().calculate_brisque_features(image, kernel_size, sigma)
            return np.array([float(np.asarray(f).reshape(-1)[0]) for f in feats], dtype=np.float64)

    return _Brisque(url=False)


def brisque_srgb(img_srgb: np.ndarray) -> float:
    """BRISQUE score of an sRGB image ``(H, W, 3)`` in [0, 1] (lower = better quality).

    The image is first downscaled to at most :data:`BRISQUE_MAX_SIDE` pixels on its long side.

    Raises:
        DeblurkitError: the ``brisque`` package is not installed.
    """
    import warnings

    model = _brisque_model()
    small = _to_uint8(_downscale_srgb(img_srgb, BRISQUE_MAX_SIDE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(model.score(small))


@dataclass(frozen=True)
class Face:
    """One detected face, in the input image's pixel coordinates."""

    confidence: float
    """Detector confidence in [0, 1]."""
    box: tuple[int, int, int, int]
    """``(x, y, width, height)``."""


@functools.cache
def _yuface_detect():
    # yuface bundles its own OpenMP runtime, which spins on every core it sees; on a shared
    # machine one thread is ~6x faster. OMP_NUM_THREADS is read once, when that runtime loads.
    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import yuface
    except ImportError as exc:
        raise DeblurkitError(f"the privacy filter needs the 'yuface' package ({exc}); {_EXTRA_HINT}") from None
    finally:
        if previous is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = previous
    return yuface.detect


def require_face_detector() -> None:
    """Load the face detector now (so a missing package fails before any work).

    Raises:
        DeblurkitError: the ``yuface`` package is not installed.
    """
    _yuface_detect()


def detect_faces_srgb(img_srgb: np.ndarray, min_confidence: float = 0.5) -> list[Face]:
    """Faces in an sRGB image ``(H, W, 3)`` in [0, 1], most confident first.

    Args:
        img_srgb: float32 sRGB image.
        min_confidence: detections below this confidence (0-1) are dropped.

    Raises:
        DeblurkitError: the ``yuface`` package is not installed.
    """
    detect = _yuface_detect()
    small = _downscale_srgb(img_srgb, FACE_MAX_SIDE)
    scale = img_srgb.shape[1] / small.shape[1]
    bgr = np.ascontiguousarray(_to_uint8(small)[..., ::-1])
    confs, boxes, _ = detect(bgr, conf=min_confidence)
    faces = [
        Face(float(c) / 100.0, tuple(round(float(v) * scale) for v in b))  # type: ignore[arg-type]
        for c, b in zip(confs, boxes, strict=True)
    ]
    return sorted(faces, key=lambda f: -f.confidence)
