"""Fixtures for training tests (helpers live in train_testlib.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_testlib import write_pairs


@pytest.fixture
def pairs_dir(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "pairs", 4, size=40)
