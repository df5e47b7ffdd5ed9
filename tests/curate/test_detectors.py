"""The shipped-model measures: libfacedetection finds the astronaut's face; BRISQUE ranks blur worse."""

from __future__ import annotations

import numpy as np
import pytest

# The curate extra is part of the test install (Makefile): a missing detector package fails here.
from deblurkit.curate.detectors import brisque_srgb, detect_faces_srgb


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut().astype(np.float32) / 255.0  # 512 x 512, one face


def test_face_found_and_located(astronaut):
    faces = detect_faces_srgb(astronaut)
    assert len(faces) >= 1 and faces[0].confidence > 0.7
    x, y, w, h = faces[0].box
    assert 120 < x + w / 2 < 260 and 40 < y + h / 2 < 180  # her face, upper left of centre
    big = np.repeat(np.repeat(astronaut, 3, axis=0), 3, axis=1)  # 1536 px: downscaled, boxes scaled back
    bx = detect_faces_srgb(big)[0].box
    assert abs(bx[0] - 3 * x) < 30


def test_no_face_in_texture():
    rng = np.random.default_rng(0)
    assert detect_faces_srgb(rng.random((240, 320, 3), dtype=np.float32), min_confidence=0.7) == []


def test_brisque_prefers_sharp(astronaut):
    import cv2

    crop = astronaut[:256, :256]
    assert brisque_srgb(crop) < brisque_srgb(cv2.GaussianBlur(crop, (0, 0), 2.5))
