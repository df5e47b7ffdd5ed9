"""Torch device names: the one check that a device asked for exists on this machine.

Every part of deblurkit that takes a ``device`` option (scene fitting, the torch inference backend,
training) resolves it here, so a missing GPU reads the same everywhere: one line, no traceback.
Which device *types* a part supports is its own rule; whether the device is usable is this one's.
torch is imported inside the function, so importing this module stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deblurkit.errors import DeblurkitError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device ``name`` stands for, checked to be usable on this machine.

    Args:
        name: any torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ``xpu``, ...) or device.

    Returns:
        The :class:`torch.device`.

    Raises:
        DeblurkitError: not a device name, ``meta`` (no data), or a device this torch build or
            machine does not have (e.g. ``cuda`` without a GPU, ``cuda:7`` on a one-GPU machine).
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise DeblurkitError(f"unknown device {str(name)!r}; e.g. cpu, cuda, cuda:1, mps") from exc
    if device.type == "meta":
        raise DeblurkitError("device 'meta' holds no data; use a real device such as cpu or cuda")
    if device.type != "cpu":
        # torch.cuda, torch.xpu, ... (torch.backends.mps for mps) say whether such a device is here
        backend = torch.backends.mps if device.type == "mps" else getattr(torch, device.type, None)
        available, count = getattr(backend, "is_available", None), getattr(backend, "device_count", None)
        if callable(available) and not available():
            raise DeblurkitError(f"device {str(name)!r} requested but no {device.type.upper()} device is available; use cpu")
        if device.index is not None and callable(count) and device.index >= count():
            raise DeblurkitError(f"device {str(name)!r} requested but only {count()} {device.type.upper()} device(s) are visible")
    try:  # the last word: can a tensor be made there?
        torch.empty(1, device=device)
    except Exception as exc:  # backends raise RuntimeError, AssertionError (torch built without them), ...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]
        raise DeblurkitError(f"device {str(name)!r} is not available: {reason}") from exc
    return device
