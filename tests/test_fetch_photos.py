"""scripts/fetch_photos.py: a re-fetch keeps what a person noted on the manifest's entries."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("fetch_photos", ROOT / "scripts" / "fetch_photos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_refetch_keeps_annotations_of_unchanged_files_only(tmp_path):
    fetch = _script()
    old = tmp_path / "manifest.json"
    old.write_text(json.dumps({"photos": [
        {"path": "pkg/a.jpg", "sha256": "aa", "exclude_from_scoring": "itself motion-blurred"},
        {"path": "pkg/b.jpg", "sha256": "bb", "exclude_from_scoring": "noted on an older file"},
    ]}))
    entries = [{"path": "pkg/a.jpg", "sha256": "aa"}, {"path": "pkg/b.jpg", "sha256": "b2"},
               {"path": "pkg/c.jpg", "sha256": "cc"}]
    fetch.carry_annotations(entries, old)
    assert entries[0]["exclude_from_scoring"] == "itself motion-blurred"
    assert "exclude_from_scoring" not in entries[1]  # the file changed: its note may not hold
    assert "exclude_from_scoring" not in entries[2]
    old.write_text("{not json")  # an unreadable manifest carries nothing and does not stop the fetch
    fetch.carry_annotations(entries[2:], old)
    fetch.carry_annotations(entries[2:], tmp_path / "missing.json")
    assert entries[2] == {"path": "pkg/c.jpg", "sha256": "cc"}

