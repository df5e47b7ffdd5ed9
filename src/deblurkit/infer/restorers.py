"""Restorers by name: identity, the classical kernel-aware pipeline, networks and chains of them.

The call contract is :class:`deblurkit.infer.base.Restorer`; :func:`load_restorer` builds any
of them from a name or a checkpoint path.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.infer.base import ProgressFn, Restorer, RestorerInfo, RestorerKind

if TYPE_CHECKING:
    from deblurkit.kernel_aware.blind import BlindParams

Backend = Literal["auto", "torch", "onnx"]
Device = Literal["cpu", "cuda", "mps"]
Dtype = Literal["float32", "bfloat16"]

#: Tile size used when ``tile=None`` and the image is larger than :data:`AUTO_TILE_AREA` pixels.
AUTO_TILE = 512
#: ... for networks of at most :data:`CONCURRENT_TILES_MAX_PARAMS` parameters on ONNX Runtime:
#: fewer tiles, so less overlap computed twice (``nafnet-w16`` at 12 MP, one pass: 20 tiles
#: instead of 63, about 2 s less of 15–17 s; docs/models.md), for about 0.5 GB more memory.
AUTO_TILE_NARROW = 1024
AUTO_TILE_AREA = 1_000_000
DEFAULT_OVERLAP = 64
#: Tiles run at once on ONNX Runtime when tiling (each with its share of the threads): on a 2-core
#: CPU two tiles with one thread each beat one tile with two (docs/models.md); more would multiply
#: the activation memory.
MAX_TILE_WORKERS = 2
#: ... for networks up to this many parameters: the wide NAFNet-w64 (68 M) gained nothing from it
#: and its 12-MP peak grew from 2.75 to 3.9 GB.
CONCURRENT_TILES_MAX_PARAMS = 20_000_000
#: From this many pixels up the recommended self-ensemble averages two rotations (0 and 90 degrees)
#: instead of four: half the network's time on photos for a few hundredths of a dB
#: (``studies/ensemble_passes.py``, docs/models.md). Four passes over half a megapixel cost what two
#: over one megapixel do, so from here on a larger photo never takes the network less time.
TWO_ROTATIONS_FROM_PIXELS = 500_000


class IdentityRestorer(Restorer):
    """Returns the input unchanged (a baseline)."""

    name = "identity"
    kind = "identity"
    description = "returns the input unchanged (baseline)"

    def restore_rgb(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        if progress:
            progress(1, 1)
        return rgb.copy()


class KernelDeconvRestorer(Restorer):
    """The classical kernel-aware pipeline (:func:`deblurkit.kernel_aware.blind.deblur_image`)."""

    name = "kernel-deconv"
    kind = "classical"
    description = "classical blind deblurring: kernel estimation + deconvolution in linear light, per tile"

    def __init__(self, *, kernel_size: int = 31, tiles: int | None = None,
                 no_blur_support: float | None = None, params: BlindParams | None = None,
                 judge: Callable[[np.ndarray], np.ndarray] | None = None, threads: int | None = None) -> None:
        """``params``: the pipeline's settings (None: :class:`deblurkit.kernel_aware.blind.BlindParams`'
        defaults with :data:`KERNEL_DECISION`); ``no_blur_support``, where given, replaces their gate: kernels with a smaller
        effective support (px²) count as no blur. ``judge``: the network of the learned kernel
        decision (``params.decision == "learned"``; None: :func:`judge_network` with ``threads``,
        loaded at the first photo that needs it)."""
        self.kernel_size = kernel_size
        self.tiles = tiles
        self.no_blur_support = no_blur_support
        self.params = params
        self.judge = judge
        self.threads = threads

    def restore_rgb(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        from deblurkit.kernel_aware import blind  # lazy: owned by the classical module

        if min(rgb.shape[:2]) < blind.min_image_side(self.kernel_size):
            if progress is not None:
                progress(1, 1)
            return rgb.copy()  # too small to hold a measurable blur kernel: nothing to deconvolve
        params = self.params or blind.BlindParams(decision=KERNEL_DECISION)
        if self.no_blur_support is not None:
            params = replace(params, no_blur_support=self.no_blur_support)
        if params.decision == "learned" and self.judge is None:
            self.judge = judge_network(self.threads)
        network = self.judge if params.decision == "learned" else None
        return np.asarray(blind.deblur_image(rgb, kernel_size=self.kernel_size, tiles=self.tiles, progress=progress,
                                             params=params, network=network), dtype=np.float32)


def judge_network(threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The network the learned kernel decision reads
    (:data:`deblurkit.kernel_aware.decision.JUDGE`, one pass per image), as an sRGB -> sRGB function."""
    from deblurkit.kernel_aware.decision import JUDGE

    network = load_restorer(JUDGE, threads=threads, self_ensemble=False)
    return lambda rgb: network.restore_rgb(rgb)


class NetworkRestorer(Restorer):
    """A deblurring network run through a backend, with padding, tiling and optional self-ensemble."""

    kind = "network"

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], *, name: str, description: str,
                 size_multiple: int, tile: int | None, overlap: int = DEFAULT_OVERLAP,
                 self_ensemble: bool = False, two_rotations_from_pixels: int | None = None,
                 backend: str = "torch", meta: dict[str, Any] | None = None, tile_workers: int = 1,
                 auto_tile: int = AUTO_TILE) -> None:
        """``two_rotations_from_pixels``: with ``self_ensemble``, images of at least this many pixels
        average two rotations instead of four (None: four at every size). ``auto_tile``: the tile
        size of ``tile=None`` above :data:`AUTO_TILE_AREA` pixels."""
        self.run = run
        self.auto_tile = int(auto_tile)
        self.tile_workers = max(1, int(tile_workers))
        self.name = name
        self.description = description
        self.size_multiple = int(size_multiple)
        self.tile = tile
        self.overlap = int(overlap)
        self.self_ensemble = self_ensemble
        self.two_rotations_from_pixels = two_rotations_from_pixels
        self.backend = backend
        self.meta = dict(meta or {})

    def _tile_for(self, h: int, w: int) -> int | None:
        if self.tile is None:
            return self.auto_tile if h * w > AUTO_TILE_AREA else None
        return None if self.tile <= 0 else int(self.tile)

    def ensemble_rotations(self, h: int, w: int) -> tuple[int, ...]:
        """The quarter turns whose outputs are averaged for an ``h`` x ``w`` image."""
        if not self.self_ensemble:
            return (0,)
        if self.two_rotations_from_pixels is not None and h * w >= self.two_rotations_from_pixels:
            return (0, 1)
        return (0, 1, 2, 3)

    def restore_rgb(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        from deblurkit.infer.tiling import count_tiles, run_tiled

        chw = np.ascontiguousarray(rgb.transpose(2, 0, 1))
        rotations = self.ensemble_rotations(*rgb.shape[:2])
        total = 0
        for k in rotations:
            h, w = (chw.shape[1], chw.shape[2]) if k % 2 == 0 else (chw.shape[2], chw.shape[1])
            total += count_tiles(h, w, multiple=self.size_multiple, tile=self._tile_for(h, w), overlap=self.overlap)
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, total)

        parallel = {"workers": self.tile_workers}
        if self.tile_workers > 1 and hasattr(self.run, "concurrent"):
            parallel["concurrent_run"] = self.run.concurrent(self.tile_workers)
        if len(rotations) == 1:  # no accumulator: one full-size buffer less
            out = run_tiled(chw, self.run, multiple=self.size_multiple, tile=self._tile_for(*chw.shape[1:]),
                            overlap=self.overlap, progress=step, **parallel)
            return out.transpose(1, 2, 0)
        acc = np.zeros_like(chw)
        for k in rotations:
            rot = np.ascontiguousarray(np.rot90(chw, k, axes=(1, 2)))
            out = run_tiled(rot, self.run, multiple=self.size_multiple, tile=self._tile_for(*rot.shape[1:]),
                            overlap=self.overlap, progress=step, **parallel)
            acc += np.rot90(out, -k, axes=(1, 2))
        acc /= len(rotations)
        return acc.transpose(1, 2, 0)


#: The default restorer (:data:`deblurkit.infer.DEFAULT_RESTORER`): classical blind deconvolution
#: where a long shake kernel is found, then the shipped network on every photo; the best measured
#: design on all six held-out sets (docs/default-pipeline.md).
SHAKE_CHAIN = "kernel-deconv+nafnet-w16"
#: Inside a chain, ``kernel-deconv`` acts only on kernels with at least this effective support
#: (px²) and leaves shorter blur to the stages after it: a wrongly estimated short kernel cost
#: the chain up to 4.7 dB. Chosen on validation sets from the train photos by
#: ``studies/chain_gate.py`` (any value in (16.86, 17.22] selects the same validation images; the
#: classical pipeline alone uses 12).
CHAIN_KERNEL_MIN_SUPPORT = 17.2
#: The kernel decision of ``kernel-deconv`` (:attr:`deblurkit.kernel_aware.blind.BlindParams.decision`)
#: where no ``blind_params`` are given: the learned one, judged by :func:`judge_network`.
KERNEL_DECISION = "learned"


class ChainRestorer(Restorer):
    """Restorers applied one after another: ``"kernel-deconv+nafnet-w16"`` deconvolves, then runs the network.

    Each stage receives the previous stage's output clamped to [0, 1]. Progress is reported as one
    combined count over all stages.
    """

    def __init__(self, stages: list[Restorer]) -> None:
        if len(stages) < 2:
            raise ValueError("a chain needs at least two restorers")
        self.stages = list(stages)
        self.name = "+".join(s.name for s in self.stages)
        self.kind = "network" if any(s.kind == "network" for s in self.stages) else self.stages[-1].kind
        self.description = "chain: " + ", then ".join(f"{s.name} ({s.description})" for s in self.stages)

    def restore_rgb(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        # 1000 progress units per stage: stages count their own steps, unknown in advance.
        units, total = 1000, 1000 * len(self.stages)
        out = rgb
        for i, stage in enumerate(self.stages):
            sub: ProgressFn | None = None
            if progress is not None:
                def sub(done: int, of: int, base: int = i * units) -> None:
                    progress(base + min(units, units * done // max(of, 1)), total)
            out = np.clip(np.asarray(stage.restore_rgb(out, sub), dtype=np.float32), 0.0, 1.0)
        return out


def _resolve_backend(backend: str, device: str, dtype: str) -> str:
    from deblurkit.infer.backends import VALID_BACKENDS, onnxruntime_available

    if backend not in VALID_BACKENDS:
        raise UnknownNameError("backend", backend, list(VALID_BACKENDS))
    if backend == "auto":
        ok = device == "cpu" and dtype == "float32" and onnxruntime_available()
        return "onnx" if ok else "torch"
    if backend == "onnx":
        if device != "cpu":
            raise DeblurkitError(f"backend 'onnx' runs on cpu only (got device {device!r}); use backend 'torch'")
        if dtype != "float32":
            raise DeblurkitError("backend 'onnx' supports dtype float32 only")
    return backend


@dataclass(frozen=True)
class LoadOptions:
    """The arguments of :func:`load_restorer` that factories may use (see its docstring)."""

    backend: Backend = "auto"
    device: Device = "cpu"
    threads: int | None = None
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    dtype: Dtype = "float32"
    self_ensemble: bool | None = None
    tlc: bool | None = None
    tile_workers: int | None = None
    before_last: bool = False
    """True for a chain stage that another stage follows."""
    blind_params: BlindParams | None = None


def _kernel_deconv(o: LoadOptions) -> Restorer:
    return KernelDeconvRestorer(no_blur_support=CHAIN_KERNEL_MIN_SUPPORT if o.before_last else None,
                                params=o.blind_params, threads=o.threads)


def _kernel_refine(o: LoadOptions) -> Restorer:
    from deblurkit.kernel_aware.refine import KernelRefineRestorer

    return KernelRefineRestorer(threads=o.threads)


@dataclass(frozen=True)
class RestorerEntry:
    """One named restorer of :data:`RESTORERS`."""

    kind: RestorerKind
    build: Callable[[LoadOptions], Restorer]
    describe: Callable[[], str]


def _kernel_refine_description() -> str:
    from deblurkit.kernel_aware.refine import KernelRefineRestorer

    return KernelRefineRestorer.description + " [trained weights bundled]"


#: Every restorer name besides the model registry's (:data:`deblurkit.models.registry.MODELS`,
#: each built as a :class:`NetworkRestorer`), chains joined by ``+`` and checkpoint files.
RESTORERS: dict[str, RestorerEntry] = {
    "identity": RestorerEntry("identity", lambda o: IdentityRestorer(), lambda: IdentityRestorer.description),
    "kernel-deconv": RestorerEntry("classical", _kernel_deconv, lambda: KernelDeconvRestorer.description),
    "kernel-refine": RestorerEntry("network", _kernel_refine, _kernel_refine_description),
}


def restorer_names() -> list[str]:
    """Every name :func:`load_restorer` accepts: ``"default"``, :data:`RESTORERS` and the model registry."""
    from deblurkit.models.registry import MODELS

    return ["default", *RESTORERS, *MODELS]


def load_restorer(
    spec: str | os.PathLike[str] = "default",
    *,
    backend: Backend = "auto",
    device: Device = "cpu",
    threads: int | None = None,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    dtype: Dtype = "float32",
    self_ensemble: bool | None = None,
    tlc: bool | None = None,
    tile_workers: int | None = None,
    blind_params: BlindParams | None = None,
) -> Restorer:
    """Build a :class:`Restorer` by name or checkpoint path.

    Args:
        spec: ``"default"`` (:data:`DEFAULT_RESTORER`), ``"identity"``, ``"kernel-deconv"``,
            ``"kernel-refine"`` (the shipped kernel-aware network), a model
            registry name (``"mimo-unet"``; random weights unless bundled weights exist), a
            checkpoint file (``.safetensors``, official ``.pth``/``.pkl``), or several of these
            joined by ``+``, applied from left to right (:class:`ChainRestorer`, e.g.
            :data:`SHAKE_CHAIN`); the other arguments apply to every network in the chain.
        backend: ``"auto"`` (ONNX Runtime on CPU when installed and applicable, else torch),
            ``"torch"`` or ``"onnx"``. Networks only.
        device: ``"cpu"``, ``"cuda"`` or ``"mps"`` (torch backend).
        threads: CPU threads (torch: ``torch.set_num_threads``, process-wide; ONNX Runtime:
            per session). None keeps the library defaults.
        tile: tile size in pixels; None = automatic (above :data:`AUTO_TILE_AREA` pixels, tiles
            of :data:`AUTO_TILE_NARROW` for networks of at most :data:`CONCURRENT_TILES_MAX_PARAMS`
            parameters on ONNX Runtime, else :data:`AUTO_TILE`), 0 = never tile.
        overlap: minimum overlap between tiles in pixels.
        dtype: ``"float32"`` or ``"bfloat16"`` (torch backend only; see docs/models.md for the
            measured deviation).
        self_ensemble: True = average the outputs over the four 90-degree rotations (MIMO-UNet "++");
            None = the registry's recommendation for that model: for ``nafnet-w16`` (the default's
            network) four rotations below :data:`TWO_ROTATIONS_FROM_PIXELS` pixels and two (0 and 90
            degrees) from there, off for the others.
        tlc: NAFNet test-time local statistics; None = the registry's recommendation for that model.
        tile_workers: tiles processed at once when tiling (the threads are shared among them);
            None = :data:`MAX_TILE_WORKERS` on ONNX Runtime when at least that many threads are
            available and the network has at most :data:`CONCURRENT_TILES_MAX_PARAMS` parameters,
            else 1. The output does not depend on it (beyond float rounding).
        blind_params: settings of every ``kernel-deconv`` stage (None: their defaults); in a chain
            where another stage follows, its support gate stays :data:`CHAIN_KERNEL_MIN_SUPPORT`.

    Raises:
        DeblurkitError: unknown name, bad file, or an unsupported backend/device/dtype combination.
    """
    from deblurkit.infer import DEFAULT_RESTORER

    if threads is not None and threads < 1:
        raise DeblurkitError(f"threads must be >= 1, got {threads}")
    if tile_workers is not None and tile_workers < 1:
        raise DeblurkitError(f"tile_workers must be >= 1, got {tile_workers}")
    text = os.fspath(spec)
    options = LoadOptions(backend=backend, device=device, threads=threads, tile=tile, overlap=overlap, dtype=dtype,
                          self_ensemble=self_ensemble, tlc=tlc, tile_workers=tile_workers, blind_params=blind_params)
    return _build(DEFAULT_RESTORER if text == "default" else text, options)


def _build(text: str, options: LoadOptions) -> Restorer:
    if "+" in text and not os.path.exists(text):
        parts = [p.strip() for p in text.split("+")]
        if not all(parts):
            raise DeblurkitError(f"bad restorer chain {text!r}: expected names joined by '+', e.g. {SHAKE_CHAIN!r}")
        stages = [_build(p, replace(options, before_last=k < len(parts) - 1)) for k, p in enumerate(parts)]
        _share_judge(stages)
        return ChainRestorer(stages)
    if text in RESTORERS:
        return RESTORERS[text].build(options)
    return _load_network(text, options)


def _share_judge(stages: list[Restorer]) -> None:
    """Where a chain runs the judge network itself (:func:`judge_network`'s shipped weights), its
    kernel stages judge with that network's session, one pass, instead of loading and warming a
    second one."""
    from deblurkit.kernel_aware.decision import JUDGE

    bundled = _weights_file(JUDGE)
    network = next((s for s in stages if isinstance(s, NetworkRestorer) and bundled is not None
                    and s.meta.get("weights") == bundled), None)
    if network is None:
        return
    one_pass = copy.copy(network)
    one_pass.self_ensemble = False
    for stage in stages:
        if isinstance(stage, KernelDeconvRestorer) and stage.judge is None:
            stage.judge = one_pass.restore_rgb


def _weights_file(text: str) -> str | None:
    """The ``.safetensors`` file a network name or path loads from (None: random init or another format)."""
    from deblurkit.models.checkpoint import bundled_weights_dir
    from deblurkit.models.registry import MODELS

    if text in MODELS:
        bundled = bundled_weights_dir() / f"{text}.safetensors"
        return str(bundled) if bundled.is_file() else None
    return text if text.lower().endswith(".safetensors") and os.path.isfile(text) else None


def _load_network(text: str, o: LoadOptions) -> Restorer:
    from deblurkit.models.registry import MODELS

    if text not in MODELS and not os.path.exists(text) and os.sep not in text and "." not in text:
        raise UnknownNameError("restorer", text, restorer_names())
    backend, device, dtype = o.backend, o.device, o.dtype
    weights = _weights_file(text)
    index_key = None
    if weights is not None and backend in ("auto", "onnx") and _resolve_backend(backend, device, dtype) == "onnx":
        from deblurkit.infer.backends import OnnxBackend, onnx_index_key, read_onnx_index

        index_key = onnx_index_key(weights, tlc=o.tlc)
        hit = read_onnx_index(index_key) if index_key is not None else None
        if hit is not None:
            # The graph is cached: no torch, no model (start-up in a fraction of a second).
            graph, entry = hit
            meta = {**entry["meta"], "weights": weights}
            return _network_restorer(OnnxBackend(graph, threads=o.threads), meta, entry["params"], "onnx",
                                     tlc=False, o=o)
    return _load_network_model(text, o, index_key)


def _load_network_model(text: str, o: LoadOptions, index_key: str | None) -> Restorer:
    """:func:`_load_network` with the model loaded (torch imported); records the ONNX index entry."""
    from deblurkit.models.checkpoint import load_model
    from deblurkit.models.registry import MODELS, count_params

    threads, tlc = o.threads, o.tlc
    backend, device, dtype = o.backend, o.device, o.dtype
    model, meta = load_model(text)
    if meta["arch"] == "kernel-deconv-net":  # a kernel-refine weights file: the whole pipeline
        from deblurkit.kernel_aware.refine import KernelRefineRestorer

        return KernelRefineRestorer(threads=threads, loaded=(model, meta))
    if tlc is None:
        tlc = bool(MODELS[meta["name"]].tlc) if meta["name"] in MODELS else False
    if tlc and meta["arch"] != "nafnet":
        raise DeblurkitError(f"tlc applies to NAFNet models only, not {meta['arch']}")
    chosen = _resolve_backend(backend, device, dtype)
    if tlc:
        from deblurkit.models.nafnet import convert_to_tlc

        convert_to_tlc(model)
    if threads is not None and chosen == "torch":
        import torch

        torch.set_num_threads(int(threads))
    if chosen == "onnx":
        from deblurkit.infer.backends import OnnxBackend, write_onnx_index

        run: Callable[[np.ndarray], np.ndarray] = OnnxBackend(model, threads=threads)
        if index_key is not None and not tlc:  # a TLC graph needs the model for small inputs
            write_onnx_index(index_key, model, {"meta": meta, "params": count_params(model)})
    else:
        from deblurkit.infer.backends import TorchBackend

        run = TorchBackend(model, device=device, dtype=dtype)
    return _network_restorer(run, meta, count_params(model), chosen, tlc=tlc, o=o)


def _network_restorer(run: Callable[[np.ndarray], np.ndarray], meta: dict[str, Any], params: int, chosen: str, *,
                      tlc: bool, o: LoadOptions) -> NetworkRestorer:
    from deblurkit.models.registry import MODELS

    self_ensemble, tile_workers = o.self_ensemble, o.tile_workers
    two_from = None  # asked for explicitly: four rotations at every size
    if self_ensemble is None:
        self_ensemble = bool(MODELS[meta["name"]].self_ensemble) if meta["name"] in MODELS else False
        two_from = TWO_ROTATIONS_FROM_PIXELS if self_ensemble else None
    desc = f"{meta['name']} ({meta['arch']}, weights: {meta['weights']}, backend {chosen}"
    if not self_ensemble:
        desc += ")"
    elif two_from is None:
        desc += ", self-ensemble x4)"
    else:
        desc += f", self-ensemble x4, x2 from {two_from / 1e6:g} MP)"
    small = params <= CONCURRENT_TILES_MAX_PARAMS
    if tile_workers is None:
        available = o.threads or os.cpu_count() or 1
        tile_workers = MAX_TILE_WORKERS if chosen == "onnx" and available >= MAX_TILE_WORKERS and small else 1
    auto_tile = AUTO_TILE_NARROW if chosen == "onnx" and small else AUTO_TILE
    meta = {**meta, "backend": chosen, "tlc": tlc, "self_ensemble": self_ensemble,
            "two_rotations_from_pixels": two_from, "dtype": o.dtype, "device": o.device, "tile_workers": tile_workers}
    return NetworkRestorer(run, name=meta["name"], description=desc, size_multiple=meta["size_multiple"],
                           tile=o.tile, overlap=o.overlap, self_ensemble=self_ensemble,
                           two_rotations_from_pixels=two_from, backend=chosen, meta=meta, tile_workers=tile_workers,
                           auto_tile=auto_tile)


def list_restorers() -> list[RestorerInfo]:
    """Every restorer name accepted by :func:`load_restorer` (besides checkpoint paths and ``"default"``)."""
    from deblurkit.models.checkpoint import bundled_weights_dir
    from deblurkit.models.registry import MODELS

    out = [RestorerInfo(name, entry.kind, entry.describe()) for name, entry in RESTORERS.items()]
    out += [
        RestorerInfo(SHAKE_CHAIN, "network",
                     "the default: kernel-deconv where it finds a long shake kernel, then nafnet-w16; "
                     "the best measured on the held-out sets, 3-9x slower than nafnet-w16 alone"),
    ]
    for spec in MODELS.values():
        trained = (bundled_weights_dir() / f"{spec.name}.safetensors").is_file()
        note = "" if trained else " [no trained weights bundled: random init]"
        out.append(RestorerInfo(spec.name, "network", spec.description + note))
    return out
