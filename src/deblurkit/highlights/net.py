"""Running :class:`~deblurkit.models.highlight_net.HighlightNet` on online steps.

:func:`encode_inputs_linear` turns a :class:`~deblurkit.highlights.online.StepInputs` into the
network's 9 input planes; :func:`load_highlight_restorer` wraps a trained network as a restorer
for :func:`~deblurkit.highlights.online.run_online`. Without a reference (first frame, failed
alignment, or ``use_reference=False``) the reference planes repeat the current frame with zero
confidence and a full reference-clipped mask: the same network then works as a single-frame
baseline (training drops the reference at random so that it learns both cases).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from deblurkit.highlights.online import StepInputs

LOG_FLOOR = float(np.exp(-8.0))
#: Alignment confidence above which ``copy_trusted`` copies the reference.
TRUSTED_CONFIDENCE = 0.5


def encode_inputs_linear(inputs: StepInputs, *, use_reference: bool = True) -> torch.Tensor:
    """``(1, 9, H, W)`` float32 input planes for one step (see the network's docstring)."""
    cur = inputs.current
    has_ref = use_reference and inputs.reference is not None
    ref = inputs.reference if has_ref else cur
    conf = inputs.confidence if has_ref else np.zeros(cur.shape[:2], np.float32)
    ref_clip = inputs.reference_clipped if has_ref else np.ones(cur.shape[:2], bool)
    planes = np.concatenate([
        np.log(np.maximum(cur, LOG_FLOOR)), np.log(np.maximum(ref, LOG_FLOOR)),  # type: ignore[arg-type]
        inputs.clipped[..., None].astype(np.float32), conf[..., None], ref_clip[..., None].astype(np.float32),
    ], axis=2).astype(np.float32)
    return torch.from_numpy(planes).permute(2, 0, 1)[None].contiguous()


def predict_linear(
    model: torch.nn.Module, inputs: StepInputs, *, use_reference: bool = True, copy_trusted: bool = False
) -> np.ndarray:
    """Restored linear frame ``(H, W, 3)`` float32 (current-frame units) from one step.

    With ``copy_trusted``, clipped pixels that the reference saw unclipped with confidence above
    :data:`TRUSTED_CONFIDENCE` take the copy fill (:func:`~deblurkit.highlights.online.restore_copy`)
    instead of the network's value: the network only fills what the reference cannot show.
    """
    with torch.inference_mode():
        out = model(encode_inputs_linear(inputs, use_reference=use_reference))
    pred = np.exp(out[0].permute(1, 2, 0).numpy().clip(-12.0, 12.0)).astype(np.float32)
    if copy_trusted and use_reference and inputs.reference is not None:
        from deblurkit.highlights.online import restore_copy

        trusted = inputs.clipped & ~inputs.reference_clipped & (inputs.confidence > TRUSTED_CONFIDENCE)
        pred = np.where(trusted[..., None], restore_copy(inputs), pred)
    # Clipped pixels are lower bounds: never go below the recorded value.
    return np.where(inputs.clipped[..., None], np.maximum(pred, inputs.current), inputs.current)


def load_highlight_restorer(
    path: str | os.PathLike[str] | torch.nn.Module, *, use_reference: bool = True, copy_trusted: bool = False
) -> Callable[[StepInputs], np.ndarray]:
    """A restorer for :func:`~deblurkit.highlights.online.run_online` from a checkpoint or a model.

    ``use_reference=False`` is the single-frame baseline; ``copy_trusted`` see :func:`predict_linear`.

    Raises:
        DeblurkitError: the file is missing, unreadable or not a HighlightNet.
    """
    from deblurkit.errors import DeblurkitError
    from deblurkit.models.highlight_net import HighlightNet

    if isinstance(path, torch.nn.Module):
        model = path
    else:
        from deblurkit.models.checkpoint import load_model

        model, _ = load_model(path)
    if not isinstance(model, HighlightNet):
        raise DeblurkitError(f"{path}: not a highlight network ({type(model).__name__})")
    model.eval()
    return lambda inputs: predict_linear(model, inputs, use_reference=use_reference, copy_trusted=copy_trusted)
