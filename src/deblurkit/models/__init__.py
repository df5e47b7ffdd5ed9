"""Deblurring architectures: one file per architecture, pure ``nn.Module`` s, official key names.

- :mod:`deblurkit.models.mimo_unet`: ``MIMOUNet``, ``MIMOUNetPlus`` (list output at 1/4, 1/2, 1).
- :mod:`deblurkit.models.nafnet`: ``NAFNet`` (tensor output) and ``convert_to_tlc``.
- :mod:`deblurkit.models.registry`: the explicit table of named variants (``create_model``,
  ``list_models``, ``model_spec``).
- :mod:`deblurkit.models.checkpoint`: ``load_model`` (names, official ``.pth``/``.pkl`` files,
  our ``.safetensors``) and ``save_safetensors``.

This package module imports no torch, so ``deblurkit --help`` stays fast.
"""

from __future__ import annotations

from typing import Any


def final_output(out: Any) -> Any:
    """The deblurred image of a model's output: the last element of a list/tuple, else ``out`` itself."""
    if isinstance(out, (list, tuple)):
        return out[-1]
    return out


def multiscale_outputs(out: Any) -> list[Any]:
    """All outputs of a model, coarse to fine, as a list (a single tensor becomes a 1-element list)."""
    if isinstance(out, (list, tuple)):
        return list(out)
    return [out]


__all__ = ["final_output", "multiscale_outputs"]
