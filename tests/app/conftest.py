"""Fixtures for the app tests: a fast fake restorer (3x3 sharpening filter)."""

from __future__ import annotations

import pytest
from app_testutils import SharpenRestorer


@pytest.fixture
def fake_loader():
    """name -> SharpenRestorer; records which names were loaded (and how often)."""
    loaded: list[str] = []

    def load(name: str):
        from deblurkit.errors import UnknownNameError

        if name not in ("fake-sharpen", "fake-other"):
            raise UnknownNameError("restorer", name, ["fake-sharpen", "fake-other"])
        loaded.append(name)
        return SharpenRestorer(name)

    load.loaded = loaded  # type: ignore[attr-defined]
    return load
