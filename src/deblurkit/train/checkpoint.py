"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model (unwrapped from DDP), optimizer, scheduler, EMA, step, the RNG
states (torch CPU, CUDA when used, NumPy, Python ``random``) and the resolved config. It is
written to a temporary file beside the target, fsynced and renamed into place
(``os.replace``), so a run killed at any moment leaves either the previous checkpoint or the
new one, never a truncated file.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deblurkit.errors import DeblurkitError
from deblurkit.io import atomic_write

FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """The global RNG states as plain types/tensors (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format version) to ``path`` atomically."""
    with atomic_write(path) as fh:
        torch.save({"format": FORMAT_VERSION, **payload}, fh)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint (tensors land on the CPU).

    Raises:
        DeblurkitError: the file is missing, unreadable or not a deblurkit training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DeblurkitError(f"{path}: no checkpoint to resume from")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DeblurkitError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION or "model" not in ckpt:
        raise DeblurkitError(f"{path}: not a deblurkit training checkpoint")
    return ckpt
