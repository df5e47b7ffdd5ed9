"""Reading a training run's ``metrics.csv`` (written by :func:`deblurkit.train.train`).

``elapsed_s`` restarts at every resume, so a run's wall time is the sum over its sessions.
NumPy/torch-free.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

__all__ = ["read_metrics", "run_wall_seconds", "training_sessions"]


def read_metrics(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of ``run_dir/metrics.csv`` with a numeric ``step`` (empty if the file is absent)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("step", "").isdigit()]


def training_sessions(rows: list[dict[str, str]]) -> list[tuple[int, int, float]]:
    """``(first_step, last_step, wall_s)`` per session: a new session starts where ``elapsed_s`` drops.

    >>> training_sessions([{"step": "10", "elapsed_s": "5"}, {"step": "20", "elapsed_s": "9"},
    ...                    {"step": "30", "elapsed_s": "2"}])
    [(10, 20, 9.0), (30, 30, 2.0)]
    """
    out: list[list[float]] = []
    prev = None
    for r in rows:
        if not r.get("elapsed_s"):
            continue
        step, el = int(r["step"]), float(r["elapsed_s"])
        if prev is None or el < prev:
            out.append([step, step, el])
        else:
            out[-1][1], out[-1][2] = step, el
        prev = el
    return [(int(a), int(b), float(c)) for a, b, c in out]


def run_wall_seconds(run_dir: str | Path) -> float:
    """Training wall time of a run folder, summed over resumed sessions (NaN without metrics)."""
    sessions = training_sessions(read_metrics(run_dir))
    return sum(s[2] for s in sessions) if sessions else math.nan
