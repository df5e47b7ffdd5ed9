"""Execution backends: eager PyTorch and ONNX Runtime, behind one ``run(array) -> array`` call.

Both take and return ``(1, 3, h, w)`` float32 NumPy arrays (h, w multiples of the model's size
multiple) and return only the final (full-resolution) output of the network.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deblurkit.devices import resolve_device
from deblurkit.errors import DeblurkitError

VALID_BACKENDS = ("auto", "torch", "onnx")
VALID_DEVICES = ("cpu", "cuda", "mps")
VALID_DTYPES = ("float32", "bfloat16")
ONNX_OPSET = 17


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class TorchBackend:
    """Eager PyTorch on an explicit device and dtype."""

    name = "torch"

    def __init__(self, model: Any, *, device: str = "cpu", dtype: str = "float32") -> None:
        import torch

        if device not in VALID_DEVICES:
            raise DeblurkitError(f"unknown device {device!r}; valid: {', '.join(VALID_DEVICES)}")
        if dtype not in VALID_DTYPES:
            raise DeblurkitError(f"unknown dtype {dtype!r}; valid: {', '.join(VALID_DTYPES)}")
        self.device = resolve_device(device)  # a supported type; is it on this machine?
        self.dtype = getattr(torch, dtype)
        self.model = model.to(self.device, self.dtype).eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        from deblurkit.models import final_output

        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device, self.dtype)
            out = final_output(self.model(t))
            return out.to("cpu", torch.float32).numpy()


class _FinalOutput:
    """Wraps a model so its forward returns only the final output (for export)."""

    @staticmethod
    def wrap(model: Any) -> Any:
        from torch import nn

        from deblurkit.models import final_output

        class FinalOutput(nn.Module):
            def __init__(self, inner: nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return final_output(self.inner(x))

        return FinalOutput(model)


def tlc_min_side(model: Any) -> int:
    """Smallest input side for which a TLC-converted NAFNet's exported graph is exact (0: no TLC).

    TLC averages over a window of ``train_size * window_scale`` input pixels (scaled per level);
    the exported graph hard-codes that window, which is exact whenever both sides of the input
    are at least the window. Smaller inputs (where the official code clamps the window) must run
    on torch: :class:`OnnxBackend` does that by itself.
    """
    tlc = getattr(model, "tlc", None)
    if not tlc:
        return 0
    return int(tlc["train_size"] * tlc["window_scale"])


def export_onnx_bytes(model: Any, *, example_size: int = 64, opset: int = ONNX_OPSET,
                      annotate_shapes: bool | None = None, pointwise_norm_max_channels: int | None = None) -> bytes:
    """Export ``model`` (float32, CPU) to an ONNX graph with dynamic batch, height and width.

    The graph is that of :func:`deblurkit.infer.fusion.fuse_for_inference` (exact rewrites that
    ONNX Runtime runs faster). Uses the TorchScript-based exporter (``dynamo=False``). The example
    input is ``example_size x example_size`` (a multiple of the model's size multiple; for a
    TLC-converted NAFNet, larger than its window), so no internal padding/cropping gets traced: the
    graph requires H and W to be multiples of the size multiple, which the runtime guarantees,
    and for TLC both sides of at least :func:`tlc_min_side`.

    ``annotate_shapes`` adds symbolic tensor shapes (:func:`_annotate_shapes`); None = only for
    graphs with pointwise layer norms, the one case where they pay (on MIMO-UNet they changed
    nothing, and NAFNet-w64 with TLC peaked at 3.1 instead of 2.5 GB on a 12-MP photo).
    ``pointwise_norm_max_channels`` overrides the fusion's default. Both are for comparisons in
    ``benchmarks/onnx_rewrites.py``; the cached graphs use the defaults.
    """
    import warnings

    import torch

    from deblurkit.infer.fusion import ChannelNormPointwise, fuse_for_inference

    multiple = int(getattr(model, "size_multiple", 1))
    size = max(example_size, multiple, tlc_min_side(model) + 1)
    size = -(-size // multiple) * multiple
    was_training = model.training
    try:
        options = {} if pointwise_norm_max_channels is None else {
            "pointwise_norm_max_channels": pointwise_norm_max_channels}
        fused = fuse_for_inference(model.eval(), **options)
    finally:
        model.train(was_training)
    wrapped = _FinalOutput.wrap(fused).to("cpu", torch.float32).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():  # no autograd graph: tracing keeps less in memory
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, (torch.rand(1, 3, size, size),), buf, dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                          "output": {0: "batch", 2: "height", 3: "width"}},
        )
    if annotate_shapes is None:
        annotate_shapes = any(isinstance(m, ChannelNormPointwise) for m in fused.modules())
    return _annotate_shapes(buf.getvalue()) if annotate_shapes else buf.getvalue()


def _annotate_shapes(data: bytes) -> bytes:
    """The graph with a symbolic shape on every tensor (ONNX Runtime's symbolic shape inference).

    ONNX Runtime keeps an elementwise ``Mul`` in its blocked NCHWc layout only when it can prove
    that both inputs have the same shape. With a dynamic height and width, plain ONNX shape
    inference loses the spatial sizes after the first convolution; these annotations keep them
    (``height``, ``width``), which saves two layout reorders per ``Mul``. Returned unchanged when
    ONNX Runtime is not installed (the graph is valid either way).
    """
    try:
        import onnx
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except ImportError:
        return data
    annotated = SymbolicShapeInference.infer_shapes(onnx.load_from_string(data), auto_merge=True)
    return annotated.SerializeToString()


def onnx_cache_dir() -> Path:
    """Where exported graphs are cached: ``$DEBLURKIT_CACHE_DIR/onnx`` or ``~/.cache/deblurkit/onnx``."""
    root = os.environ.get("DEBLURKIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "deblurkit")
    return Path(root) / "onnx"


def model_fingerprint(model: Any) -> str:
    """SHA-256 over the architecture, hyper-parameters, torch version and every weight."""
    import torch

    from deblurkit.infer.fusion import FUSION_VERSION

    h = hashlib.sha256()
    h.update(f"{type(model).__module__}.{type(model).__qualname__}|{getattr(model, 'hparams', {})}|"
             f"{torch.__version__}|opset{ONNX_OPSET}|fusion{FUSION_VERSION}|tlc{getattr(model, 'tlc', None)}".encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def cached_onnx_bytes(model: Any, *, use_cache: bool = True) -> bytes:
    """The model's ONNX graph, from the on-disk cache when an identical model was exported before."""
    from deblurkit.io import atomic_write

    if not use_cache:
        return export_onnx_bytes(model)
    path = onnx_cache_dir() / f"{model_fingerprint(model)}.onnx"
    if path.is_file():
        return path.read_bytes()
    data = export_onnx_bytes(model)
    try:
        with atomic_write(path) as fh:
            fh.write(data)
    except OSError:
        pass  # a read-only cache is not an error
    return data


#: Bumped when the layout of the index entries of :func:`onnx_index_key` changes.
ONNX_INDEX_VERSION = 1
#: Sources whose code shapes an exported graph (the architectures, the fusion, the export): a
#: change to any of them is a new index key, so an index entry never outlives the code it came from.
_GRAPH_SOURCES = ("models", "infer/fusion.py", "infer/backends.py")


def _graph_code_digest() -> str:
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for name in _GRAPH_SOURCES:
        target = root / name
        for f in sorted(target.glob("*.py")) if target.is_dir() else [target]:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def onnx_index_key(weights: str | os.PathLike[str], *, tlc: bool | None) -> str | None:
    """A key for a weights file's cached graph that is computed without importing torch.

    Loading a network to fingerprint it (:func:`model_fingerprint`) imports torch, which takes
    seconds; the index maps this key (the weights file's bytes, the requested TLC option, the
    deblurkit and torch versions, the ONNX opset and the code that builds graphs) to the fingerprint
    and the network's metadata, so a run whose graph is cached needs neither torch nor the model
    (:func:`read_onnx_index`, :func:`write_onnx_index`).

    Returns:
        The key, or None when torch is not installed (nothing can be exported then).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return None
    from deblurkit import __version__

    h = hashlib.sha256(f"index{ONNX_INDEX_VERSION}|deblurkit{__version__}|torch{torch_version}|opset{ONNX_OPSET}|"
                       f"tlc{tlc}|".encode())
    h.update(_graph_code_digest().encode())
    with open(weights, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def _index_path(key: str) -> Path:
    return onnx_cache_dir() / "index" / f"{key}.json"


def read_onnx_index(key: str) -> tuple[bytes, dict[str, Any]] | None:
    """The cached graph and the index entry written by :func:`write_onnx_index` for ``key``.

    Returns:
        ``(graph bytes, entry)``, or None when either is missing or unreadable (the caller then
        loads the network and exports or reads the graph as usual).
    """
    import json

    try:
        entry = json.loads(_index_path(key).read_text())
        return (onnx_cache_dir() / f"{entry['fingerprint']}.onnx").read_bytes(), entry
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_onnx_index(key: str, model: Any, entry: dict[str, Any]) -> None:
    """Record ``entry`` (JSON-serialisable; the network's metadata) and the fingerprint of
    ``model`` under ``key``, if the model's graph is in the cache. Written atomically; a
    read-only cache is not an error."""
    import json

    from deblurkit.io import atomic_write

    fingerprint = model_fingerprint(model)
    if not (onnx_cache_dir() / f"{fingerprint}.onnx").is_file():
        return
    try:
        with atomic_write(_index_path(key), "w") as fh:
            fh.write(json.dumps({**entry, "fingerprint": fingerprint}, default=str))
    except OSError:
        pass


class OnnxBackend:
    """ONNX Runtime (CPU execution provider) with an explicit thread count.

    For a TLC-converted NAFNet, inputs with a side below :func:`tlc_min_side` run on eager torch
    (same function; the exported window is only exact for larger inputs).
    """

    name = "onnx"

    def __init__(self, model_or_bytes: Any, *, threads: int | None = None, use_cache: bool = True) -> None:
        try:
            import onnxruntime  # noqa: F401 (checked here for a clear message)
        except ImportError:
            raise DeblurkitError("backend 'onnx' needs onnxruntime: pip install 'deblurkit[onnx]'") from None
        is_model = not isinstance(model_or_bytes, (bytes, bytearray))
        self.min_side = tlc_min_side(model_or_bytes) if is_model else 0
        self._model = model_or_bytes if self.min_side else None
        self._fallback: TorchBackend | None = None
        data = model_or_bytes if isinstance(model_or_bytes, (bytes, bytearray)) else cached_onnx_bytes(
            model_or_bytes, use_cache=use_cache)
        self._data = bytes(data)
        self.threads = int(threads) if threads else None
        self._lock = threading.Lock()
        self._live: tuple[int | None, Any] | None = None
        self.input_name = self._session(self.threads).get_inputs()[0].name

    def _session(self, threads: int | None) -> Any:
        """The session with this intra-op thread count (None: ONNX Runtime's default, one per core).

        At most one session is kept: a second one would hold its own copy of the weights and its own
        memory arena. Runs already in flight keep the session they started with.
        """
        import onnxruntime as ort

        with self._lock:
            if self._live is None or self._live[0] != threads:
                self._live = None  # release the old arena before building the new one
                opts = ort.SessionOptions()
                if threads:
                    opts.intra_op_num_threads = int(threads)
                    opts.inter_op_num_threads = 1
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                # The memory pattern preallocates one block per input shape for all
                # intermediates at once; without it, buffers are reused as they free up. Same
                # speed, far lower peak (MIMO-UNet at 1280x720: 1.4 instead of 2.1 GB).
                opts.enable_mem_pattern = False
                self._live = (threads, ort.InferenceSession(self._data, sess_options=opts,
                                                            providers=["CPUExecutionProvider"]))
            return self._live[1]

    def _run(self, x: np.ndarray, threads: int | None) -> np.ndarray:
        if self.min_side and min(x.shape[-2:]) < self.min_side:
            with self._lock:
                if self._fallback is None:
                    self._fallback = TorchBackend(self._model)
            return self._fallback(x)
        session = self._session(threads)
        return session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, self.threads)

    def concurrent(self, workers: int) -> Callable[[np.ndarray], np.ndarray]:
        """A run function for ``workers`` tiles at once, each with its share of the threads.

        On few cores ONNX Runtime parallelises one small tile poorly across threads; two tiles with
        one thread each finish sooner (measured in docs/models.md). Results are identical.
        """
        total = self.threads or os.cpu_count() or 1
        share = max(1, total // max(1, workers))
        return lambda x: self._run(x, share)
