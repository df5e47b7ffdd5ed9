"""Glue between photos and restorers, shared by the CLI, the web server and the demo.

A *restorer* is any callable ``restorer(image, progress=None) -> image`` on float32 ``(H, W, 3)``
sRGB arrays in [0, 1] (the :func:`deblurkit.infer.load_restorer` contract) with ``.name`` and
``.description`` attributes. A *loader* maps a name (or checkpoint path) to a restorer; the CLI and
the server take the loader as an argument so tests can inject a fast fake one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from deblurkit.errors import DeblurkitError

ProgressFn = Callable[[int, int], None]


class Restorer(Protocol):
    """What the app needs from a restorer (see :func:`deblurkit.infer.load_restorer`)."""

    name: str
    description: str

    def __call__(self, image: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray: ...


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
                   *, input_space: str = "srgb") -> np.ndarray:
    """Deblur a photo's pixels, keeping its channel layout and colour encoding.

    Gray is replicated to RGB for the restorer and averaged back; alpha is split off and passed
    through unchanged. Restorers expect sRGB-encoded values (what cameras write): linear-light
    input (e.g. raw-derived images) is sRGB-encoded before and decoded after restoration.

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
    c = pixels.shape[2]
    color = pixels[..., :3] if c >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    alpha = pixels[..., c - 1:] if c in (2, 4) else None
    if input_space == "linear":
        color = _convert_encoding(color, to_srgb=True)
    out = np.asarray(restorer(np.ascontiguousarray(color, dtype=np.float32), progress=progress))
    if out.shape != color.shape:
        raise RuntimeError(f"restorer {getattr(restorer, 'name', '?')} returned shape {out.shape} "
                           f"for input {color.shape}")
    out = np.clip(np.nan_to_num(out.astype(np.float32), nan=0.0), 0.0, 1.0)
    if input_space == "linear":
        out = _convert_encoding(out, to_srgb=False)
    if c in (1, 2):
        out = out.mean(axis=2, keepdims=True)
    if alpha is not None:
        out = np.concatenate([out, alpha.astype(np.float32)], axis=2)
    return out


def _convert_encoding(rgb: np.ndarray, *, to_srgb: bool) -> np.ndarray:
    """linear <-> sRGB for an ``(H, W, 3)`` float array, via :mod:`deblurkit.synth.color`."""
    import torch

    from deblurkit.synth.color import linear_to_srgb, srgb_to_linear

    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    t = linear_to_srgb(t) if to_srgb else srgb_to_linear(t)
    return t[0].permute(1, 2, 0).numpy().astype(np.float32)
