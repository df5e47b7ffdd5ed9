"""Per-variant score files: how a study of several trainings lands one variant at a time.

A study that trains several variants (``studies/data_scaling.py``, ``studies/train_data_study.py``)
can take longer than a working day, while its runs folder does not survive the day. So each
variant is scored as soon as its training ends and its scores are kept in the repository, one
JSON file per variant under ``<out>/variants/``; a variant with a score file is neither trained
nor scored again, and the study's tables cover every variant scored so far.

A record is a dict with at least ``rows`` (per-image dicts of the study's own columns); the
study adds what else it reports (training wall time, steps, evaluation time).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


class VariantScores:
    """The score files of one study's variants, ``<out_dir>/variants/<variant>.json``."""

    def __init__(self, out_dir: str | Path):
        self.folder = Path(out_dir) / "variants"

    def path(self, variant: str) -> Path:
        """Where ``variant``'s record lives (``identity``, the blurry input, included)."""
        return self.folder / f"{variant}.json"

    def __contains__(self, variant: str) -> bool:
        return self.path(variant).is_file()

    def scored(self, variants: Iterable[str]) -> list[str]:
        """The variants of ``variants`` that have a record, in the order given."""
        return [v for v in variants if v in self]

    def read(self, variant: str) -> dict:
        """``variant``'s record."""
        return json.loads(self.path(variant).read_text())

    def write(self, variant: str, record: dict) -> Path:
        """Store ``variant``'s record (with its ``rows``) atomically; returns the file's path."""
        from deblurkit.io import atomic_write

        if not isinstance(record.get("rows"), list):
            raise TypeError(f"a record of {variant!r} needs its per-image 'rows' list")
        path = self.path(variant)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w") as fh:
            json.dump({"variant": variant, **record}, fh, indent=0)
        return path

    def rows(self, variants: Iterable[str]) -> list[dict]:
        """The rows of every variant named, in order (each must have a record)."""
        return [row for v in variants for row in self.read(v)["rows"]]
