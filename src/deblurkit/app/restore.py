"""Glue between photos and restorers, shared by the CLI, the web server and the demo.

A *restorer* follows :class:`deblurkit.infer.base.Restorer` (the app uses only its call,
``.name`` and ``.description``). A *loader* maps a name (or checkpoint path) to a restorer; the CLI and
the server take the loader as an argument so tests can inject a fast fake one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from deblurkit.color import ColorSpace, linear_to_srgb, srgb_to_linear
from deblurkit.errors import DeblurkitError
from deblurkit.infer.base import ProgressFn, Restorer

RestorerLoader = Callable[[str], Restorer]


def default_restorer_name() -> str:
    """``deblurkit.infer.DEFAULT_RESTORER`` (imported lazily)."""
    from deblurkit.infer import DEFAULT_RESTORER

    return str(DEFAULT_RESTORER)


def make_loader(*, backend: str = "auto", device: str = "cpu", threads: int | None = None,
                tile: int | None = None, self_ensemble: bool | None = None) -> RestorerLoader:
    """A loader that calls :func:`deblurkit.infer.load_restorer` with these runtime options
    (``self_ensemble=None``: each network's recommendation)."""

    def load(spec: str) -> Restorer:
        from deblurkit.infer import load_restorer

        return load_restorer(spec, backend=backend, device=device, threads=threads, tile=tile,
                             self_ensemble=self_ensemble)

    return load


def list_restorer_infos() -> list[dict[str, Any]]:
    """``deblurkit.infer.list_restorers()`` as plain dicts (name, kind, description)."""
    from deblurkit.infer import list_restorers

    return [{"name": r.name, "kind": r.kind, "description": r.description} for r in list_restorers()]


class RestorerCache:
    """Loads each restorer once (by name) and shares it; safe to use from many threads."""

    def __init__(self, loader: RestorerLoader) -> None:
        self._loader = loader
        self._cache: dict[str, Restorer] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str) -> Restorer:
        """The restorer called ``name``, loading it on first use."""
        with self._guard:
            if name in self._cache:
                return self._cache[name]
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._cache:
                restorer = self._loader(name)
                with self._guard:
                    self._cache[name] = restorer
            return self._cache[name]

    def loaded(self) -> list[str]:
        with self._guard:
            return sorted(self._cache)


INPUT_SPACES = ("srgb", "linear")


def restore_pixels(pixels: np.ndarray, restorer: Restorer, progress: ProgressFn | None = None,
                   *, input_space: ColorSpace = "srgb") -> np.ndarray:
    """Deblur a photo's pixels, keeping its channel layout and colour encoding.

    Gray and alpha follow the :class:`Restorer` contract (gray restored as RGB and averaged
    back, alpha passed through). Restorers expect sRGB-encoded values (what cameras write):
    linear-light input (e.g. raw-derived images) is sRGB-encoded before and decoded after.

    Args:
        pixels: float32 ``(H, W, C)`` in [0, 1], C in 1..4 (gray, gray+alpha, RGB, RGBA).
        restorer: see :class:`Restorer`.
        progress: forwarded to the restorer (``progress(done, total)``).
        input_space: ``"srgb"`` (default) or ``"linear"``: how ``pixels`` are encoded.

    Returns:
        float32 ``(H, W, C)`` in [0, 1].
    """
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise DeblurkitError(f"expected an (H, W, 1..4) image, got shape {pixels.shape}")
    if input_space not in INPUT_SPACES:
        raise DeblurkitError(f"unknown input space {input_space!r}; valid: {', '.join(INPUT_SPACES)}")
    n = 3 if pixels.shape[2] >= 3 else 1  # colour channels; a last one beyond them is alpha
    work = np.array(pixels, dtype=np.float32)
    if input_space == "linear":
        work[..., :n] = linear_to_srgb(work[..., :n])
    out = np.asarray(restorer(work, progress=progress))
    if out.shape != work.shape:
        raise RuntimeError(f"restorer {getattr(restorer, 'name', '?')} returned shape {out.shape} "
                           f"for input {work.shape}")
    out = np.clip(np.nan_to_num(out.astype(np.float32), nan=0.0), 0.0, 1.0)
    if input_space == "linear":
        out[..., :n] = srgb_to_linear(out[..., :n])
    return out
