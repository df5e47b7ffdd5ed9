"""Loading and saving model weights.

Accepted inputs for :func:`load_model`:

- a registry name (``"mimo-unet"``): built with random weights unless a bundled
  ``deblurkit/weights/<name>.safetensors`` exists;
- an official ``.pth`` / ``.pkl`` / ``.pt`` file: MIMO-UNet (``{"model": sd}``), BasicSR / NAFNet
  (``{"params": sd}`` or ``{"params_ema": sd}``), or a bare state dict, with ``module.`` prefixes
  stripped. The architecture and its hyper-parameters are detected from the keys and shapes.
  Files are read with ``torch.load(..., weights_only=True)``: a pickle that needs arbitrary code
  is refused;
- our own ``.safetensors`` files written by :func:`save_safetensors`, whose metadata records the
  architecture, hyper-parameters (JSON) and a description of the training data (this includes
  the kernel-refine network, architecture ``kernel-deconv-net``).

Every user mistake (missing/truncated file, unknown architecture, mismatched shapes) raises a
one-line :class:`~deblurkit.errors.DeblurkitError` saying what was expected.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from deblurkit.errors import DeblurkitError
from deblurkit.models.registry import MODELS, architecture_of, build_architecture, model_spec

FORMAT_VERSION = "1"
_WRAPPER_KEYS = ("params_ema", "params", "model", "state_dict", "net", "generator")
_MIMO_MARKERS = ("feat_extract.0.main.0.weight", "SCM1.conv.main.0.weight", "Encoder.0.layers.0.main.0.main.0.weight")
_NAF_MARKERS = ("intro.weight", "ending.weight", "downs.0.weight")


def bundled_weights_dir() -> Path:
    """Folder of weights shipped inside the package (``deblurkit/weights``)."""
    return Path(__file__).resolve().parent.parent / "weights"


def load_model(path_or_name: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Build a model from a registry name or a checkpoint file.

    Args:
        path_or_name: registry name, or path to a ``.safetensors`` / ``.pth`` / ``.pkl`` / ``.pt`` file.

    Returns:
        ``(model, meta)``: the ``nn.Module`` in eval mode on CPU (float32), and a dict with at least
        ``name`` (registry name, or ``"<arch>-custom"``), ``arch``, ``hparams``, ``size_multiple``,
        ``weights`` (file path or ``"random-init"``) and ``tlc`` (whether TLC is recommended).

    Raises:
        DeblurkitError: unknown name, unreadable/unsafe/truncated file, unknown architecture or
            mismatched shapes.
    """
    text = os.fspath(path_or_name)
    if text in MODELS:
        bundled = bundled_weights_dir() / f"{text}.safetensors"
        if bundled.is_file():
            return load_safetensors(bundled)
        spec = model_spec(text)
        model = build_architecture(spec.arch, dict(spec.hparams)).eval()
        return model, _meta(model, name=text, weights="random-init",
                            note="no trained weights bundled for this name: random initialisation")
    path = Path(text)
    if not path.exists():
        if not any(sep in text for sep in ("/", os.sep)) and not path.suffix:
            model_spec(text)  # raises UnknownNameError listing the valid names
        raise DeblurkitError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise DeblurkitError(f"{path}: is a folder, expected a checkpoint file")
    if path.suffix.lower() == ".safetensors":
        return load_safetensors(path)
    return _load_pickle_checkpoint(path)


def _meta(model: Any, *, name: str, weights: str, **extra: Any) -> dict[str, Any]:
    arch = architecture_of(model)
    return {
        "name": name, "arch": arch, "hparams": dict(model.hparams),
        "size_multiple": int(getattr(model, "size_multiple", 1)), "weights": weights,
        "tlc": arch == "nafnet", **extra,
    }


def _registry_name(arch: str, hparams: dict[str, Any]) -> str:
    """The registry name whose architecture and hyper-parameters match, else ``<arch>-custom``."""
    norm = _normalise(hparams)
    for spec in MODELS.values():
        if spec.arch == arch and _normalise(spec.hparams) == norm:
            return spec.name
    return f"{arch}-custom"


def _normalise(h: dict[str, Any]) -> dict[str, Any]:
    base = {"dw_expand": 2, "ffn_expand": 2} if "width" in h else {}
    return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in {**base, **h}.items()}


def _load_pickle_checkpoint(path: Path) -> tuple[Any, dict[str, Any]]:
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights only load failed" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise DeblurkitError(
                f"{path}: refused: this pickle needs arbitrary code to load (not a plain tensor state dict); "
                "re-save it as a state dict or .safetensors"
            ) from None
        raise DeblurkitError(f"{path}: not a readable checkpoint ({first[:120]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeblurkitError(f"{path}: truncated or not a PyTorch checkpoint ({msg[:120]})") from None
    sd, wrapper = _unwrap_state_dict(obj, path)
    model, meta = model_from_state_dict(sd, source=str(path))
    meta["wrapper_key"] = wrapper
    return model, meta


def _unwrap_state_dict(obj: Any, path: Path) -> tuple[dict[str, Any], str | None]:
    import torch

    if not isinstance(obj, dict):
        raise DeblurkitError(f"{path}: expected a dict of tensors (state dict), got {type(obj).__name__}")
    wrapper = None
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), dict) and any(torch.is_tensor(v) for v in obj[key].values()):
            obj, wrapper = obj[key], key
            break
    sd = {k: v for k, v in obj.items() if torch.is_tensor(v)}
    if not sd:
        raise DeblurkitError(
            f"{path}: no tensors found; expected a state dict, optionally under one of {', '.join(_WRAPPER_KEYS)}"
        )
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd, wrapper


def detect_architecture(sd: dict[str, Any], source: str = "checkpoint") -> tuple[str, dict[str, Any]]:
    """Architecture key and constructor hyper-parameters of a state dict, from its keys and shapes.

    Raises:
        DeblurkitError: the keys match no known architecture.
    """
    keys = set(sd)
    if all(k in keys for k in _MIMO_MARKERS):
        num_res = _count_indices(keys, r"Encoder\.0\.layers\.(\d+)\.")
        base = int(sd["feat_extract.0.main.0.weight"].shape[0])
        return ("mimo-unet-plus" if num_res == 20 else "mimo-unet"), {"num_res": num_res, "base_channel": base}
    if all(k in keys for k in _NAF_MARKERS):
        intro = sd["intro.weight"]
        width, img_channel = int(intro.shape[0]), int(intro.shape[1])
        levels = _count_indices(keys, r"downs\.(\d+)\.")
        enc = [_count_indices(keys, rf"encoders\.{i}\.(\d+)\.") for i in range(levels)]
        dec = [_count_indices(keys, rf"decoders\.{i}\.(\d+)\.") for i in range(levels)]
        mid = _count_indices(keys, r"middle_blks\.(\d+)\.")
        conv1 = next((v for k, v in sd.items() if k.endswith(".conv1.weight")), None)
        conv4 = next((v for k, v in sd.items() if k.endswith(".conv4.weight")), None)
        dw = int(conv1.shape[0] // conv1.shape[1]) if conv1 is not None else 2
        ffn = int(conv4.shape[0] // conv4.shape[1]) if conv4 is not None else 2
        return "nafnet", {"img_channel": img_channel, "width": width, "middle_blk_num": mid,
                          "enc_blk_nums": enc, "dec_blk_nums": dec, "dw_expand": dw, "ffn_expand": ffn}
    sample = ", ".join(sorted(keys)[:3])
    raise DeblurkitError(
        f"{source}: unknown architecture: expected MIMO-UNet keys ({', '.join(_MIMO_MARKERS[:2])}, ...) "
        f"or NAFNet keys ({', '.join(_NAF_MARKERS)}, ...); found {len(keys)} tensors such as {sample}"
    )


def _count_indices(keys: set[str], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def model_from_state_dict(sd: dict[str, Any], *, source: str = "checkpoint",
                          arch: str | None = None, hparams: dict[str, Any] | None = None,
                          name: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Build the matching architecture and load ``sd`` strictly (architecture detected if not given).

    Raises:
        DeblurkitError: unknown architecture, missing/unexpected keys or mismatched shapes, named
            against what the architecture expects.
    """
    if arch is None or hparams is None:
        arch, hparams = detect_architecture(sd, source)
    try:
        model = build_architecture(arch, hparams)
    except (TypeError, ValueError) as exc:
        raise DeblurkitError(f"{source}: invalid {arch} hyper-parameters {hparams} ({exc})") from None
    if hasattr(model, "remap_state_dict"):  # key names of files written by earlier layouts
        sd = model.remap_state_dict(sd)
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    label = f"{arch}({', '.join(f'{k}={v}' for k, v in hparams.items())})"
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise DeblurkitError(f"{source}: keys do not match {label}: {'; '.join(parts)}")
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise DeblurkitError(
                f"{source}: shape mismatch for {label}: {k} is {tuple(sd[k].shape)}, expected {tuple(v.shape)}"
            )
    import torch

    model.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()}, strict=True)
    model.eval()
    return model, _meta(model, name=name or _registry_name(arch, hparams), weights=source)


def load_safetensors(path: str | os.PathLike[str], *, architecture: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load a ``.safetensors`` file written by :func:`save_safetensors` (or a bare state dict).

    Args:
        path: the file.
        architecture: if given, the :data:`~deblurkit.models.registry.ARCHITECTURES` key the file
            must record (e.g. ``"kernel-deconv-net"``).

    Returns:
        ``(model, meta)`` as :func:`load_model`.

    Raises:
        DeblurkitError: missing, truncated or foreign file, or another architecture than asked.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise DeblurkitError(f"{path}: no such weights file")

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = dict(fh.metadata() or {})
            sd = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DeblurkitError(f"{path}: truncated or not a safetensors file ({str(exc).splitlines()[0][:120]})") from None
    arch = header.get("architecture")
    if architecture is not None and arch != architecture:
        raise DeblurkitError(f"{path}: not a {architecture} weights file (architecture {arch!r})")
    hparams = None
    if arch is not None:
        try:
            hparams = json.loads(header.get("hyperparameters", "null"))
        except json.JSONDecodeError:
            raise DeblurkitError(f"{path}: metadata 'hyperparameters' is not valid JSON") from None
    model, meta = model_from_state_dict(sd, source=str(path), arch=arch, hparams=hparams,
                                        name=header.get("name") or None)
    for key in ("training_data", "description"):
        if key in header:
            meta[key] = header[key]
    if "extra" in header:
        try:
            meta["extra"] = json.loads(header["extra"])
        except json.JSONDecodeError:
            meta["extra"] = header["extra"]
    return model, meta


def save_safetensors(model: Any, path: str | os.PathLike[str], *, name: str, meta: dict[str, Any]) -> None:
    """Write ``model``'s weights and metadata to ``path`` (``.safetensors``), atomically.

    Args:
        model: a registered architecture (MIMO-UNet, MIMO-UNet+, NAFNet).
        path: output file.
        name: registry-style name to record (e.g. ``"nafnet-w16"`` or ``"nafnet-w16-realistic"``).
        meta: free-form JSON-serialisable description; ``meta["training_data"]`` (a string) is stored
            as its own metadata field, everything else under ``extra``.
    """
    from safetensors.torch import save

    from deblurkit.io import atomic_write

    for _ in range(3):  # unwrap DistributedDataParallel / EMA wrappers (.module) and torch.compile (._orig_mod)
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if inner is None or not hasattr(inner, "state_dict"):
            break
        model = inner
    arch = architecture_of(model)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    rest = {k: v for k, v in meta.items() if k != "training_data"}
    header = {
        "format": f"deblurkit-{FORMAT_VERSION}",
        "name": name,
        "architecture": arch,
        "hyperparameters": json.dumps(model.hparams, sort_keys=True),
        "training_data": str(meta.get("training_data", "unspecified")),
        "extra": json.dumps(rest, sort_keys=True, default=str),
    }
    data = save(tensors, metadata=header)
    with atomic_write(path) as fh:
        fh.write(data)
