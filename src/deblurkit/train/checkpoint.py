"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model (unwrapped from DDP), optimizer, scheduler, EMA, step, the RNG
states (torch CPU, CUDA when used, NumPy, Python ``random``) and the resolved config. It is
written to a temporary file beside the target, fsynced and renamed into place
(``os.replace``), so a run killed at any moment leaves either the previous checkpoint or the
new one, never a truncated file. :func:`export_checkpoint_weights` turns one into a ``.safetensors``
file that :func:`deblurkit.infer.load_restorer` loads like the shipped weights.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Literal

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


def weights_meta(config: dict[str, Any], step: int, data_info: dict[str, Any]) -> dict[str, Any]:
    """The metadata recorded in a trained model's ``.safetensors`` file (see ``save_safetensors``).

    Args:
        config: the run's resolved config (``config_to_dict(TrainConfig)``, as a checkpoint stores it).
        step: optimizer steps behind the weights.
        data_info: what the datasets report (a checkpoint's ``"data"``); its ``training_data`` is used
            when present.

    Returns:
        ``training_data`` (a description), ``trained_steps``, ``train_config`` and, for a fine-tune,
        ``init_weights`` and ``trained_steps_total`` (the steps behind the starting weights added).
    """
    if "training_data" in data_info:
        training_data = str(data_info["training_data"])
    elif config.get("data") == "synth":
        training_data = (f"synthesized on the fly: preset={config.get('preset')}, source={config.get('source')}, "
                         f"seed={config.get('seed')}")
    else:
        training_data = f"{config.get('data')}: {config.get('data_root')}" + (
            f" ({config['datalist']})" if config.get("datalist") else "")
    meta: dict[str, Any] = {"training_data": training_data, "trained_steps": int(step), "train_config": dict(config)}
    init = config.get("init_weights")
    if init:  # fine-tuned: record where it started and the steps behind it in total
        from deblurkit.models.checkpoint import load_model

        meta["init_weights"] = init
        try:
            extra = load_model(init)[1].get("extra")
        except DeblurkitError:  # the starting weights are gone: their steps are unknown
            return meta
        extra = extra if isinstance(extra, dict) else {}
        before = int(extra.get("trained_steps_total", extra.get("trained_steps", 0)) or 0)
        meta["trained_steps_total"] = before + int(step)
    return meta


def export_checkpoint_weights(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], *, weights: Literal["ema", "model"] = "ema",
    origin: str | None = None,
) -> dict[str, Any]:
    """Write the weights of a training checkpoint to a ``.safetensors`` file (atomically).

    The file is the one training writes at its end (``model.safetensors``), for any step: the
    architecture and hyper-parameters are recorded, so ``load_restorer(out)`` / ``deblurkit deblur
    --model OUT`` use it like the shipped weights of that registry name (self-ensemble, TLC).

    Args:
        checkpoint: a ``checkpoints/last.pt`` written by ``deblurkit train``.
        out: the ``.safetensors`` file to write.
        weights: ``"ema"`` (the averaged weights, what validation scores) or ``"model"`` (the live ones).
        origin: the source recorded in the file (``exported_from``); default ``checkpoint``. For a
            copy of a checkpoint that a running training rewrites, the original's path.

    Returns:
        The loaded model's description (``name``, ``arch``, ``hparams``, ...) plus ``step`` and ``weights``.

    Raises:
        DeblurkitError: missing, corrupt or foreign checkpoint; no EMA weights in it; weights of
            no known architecture; ``out`` not ending in ``.safetensors``.
    """
    from deblurkit.models.checkpoint import model_from_state_dict, save_safetensors
    from deblurkit.models.registry import MODELS

    path, out = Path(checkpoint), Path(out)
    if out.suffix.lower() != ".safetensors":
        raise DeblurkitError(f"{out}: output must end in .safetensors")
    ckpt = load_checkpoint(path)
    sd = ckpt.get(weights)
    if not isinstance(sd, dict) or not sd:
        hint = " (the run had ema_decay=0; export the live weights with --raw)" if weights == "ema" else ""
        raise DeblurkitError(f"{path}: checkpoint holds no {weights!r} weights{hint}")
    config = ckpt.get("config") or {}
    step = int(ckpt.get("step", 0))
    spec = MODELS.get(config.get("model", ""))
    try:  # NAFNet / MIMO-UNet layouts are recognised from their keys and shapes
        model, meta = model_from_state_dict(sd, source=f"{path} [{weights}]")
    except DeblurkitError:
        if spec is None:
            raise
        model, meta = model_from_state_dict(sd, source=f"{path} [{weights}]", arch=spec.arch,
                                            hparams=dict(spec.hparams), name=spec.name)
    info = {**weights_meta(config, step, ckpt.get("data") or {}), "exported_from": origin or str(path),
            "weights": weights}
    save_safetensors(model, out, name=meta["name"], meta=info)
    return {**meta, "weights": weights, "step": step, "file": str(out)}
