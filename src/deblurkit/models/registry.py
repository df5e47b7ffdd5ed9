"""The explicit table of named model variants.

Every variant is one entry of :data:`MODELS`: a name, the architecture, the hyper-parameters that
fix it and where it comes from. Nothing is discovered by import side effects.

>>> model_spec("mimo-unet").size_multiple
4
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from deblurkit.errors import UnknownNameError

#: architecture name -> (module, class) ; imported lazily so this module stays torch-free.
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "mimo-unet": ("deblurkit.models.mimo_unet", "MIMOUNet"),
    "mimo-unet-plus": ("deblurkit.models.mimo_unet", "MIMOUNetPlus"),
    "nafnet": ("deblurkit.models.nafnet", "NAFNet"),
    "kernel-deconv-net": ("deblurkit.models.kernel_deconv_net", "KernelDeconvNet"),
    "moam-nafnet": ("deblurkit.models.moam_nafnet", "MoAMNAFNet"),
    "highlight-net": ("deblurkit.models.highlight_net", "HighlightNet"),
}


@dataclass(frozen=True)
class ModelSpec:
    """One named variant."""

    name: str
    """Registry name, e.g. ``"mimo-unet"``."""
    arch: str
    """Architecture key of :data:`ARCHITECTURES`."""
    hparams: dict[str, Any] = field(default_factory=dict)
    """Constructor keyword arguments."""
    size_multiple: int = 4
    """Input H and W must be multiples of this (the runtime pads by reflection and crops back)."""
    description: str = ""
    source: str = ""
    """Paper / repository, and the official checkpoint it is compatible with."""
    tlc: bool = False
    """Whether the runtime applies NAFNet's TLC conversion (local statistics) at inference."""
    self_ensemble: bool = False
    """Whether the runtime averages over the four 90-degree rotations by default (4x the time; on
    where it was measured to pay off on the held-out sets, docs/default-pipeline.md)."""


@dataclass(frozen=True)
class ModelInfo:
    """What ``deblurkit models`` prints for one variant."""

    name: str
    arch: str
    params: int
    macs_256: int
    """Conv MACs for one 256x256 RGB image."""
    size_multiple: int
    description: str
    source: str


_MIMO_SRC = "Cho et al. ICCV 2021, github chosj95/MIMO-UNet"
_NAF_SRC = "Chen et al. ECCV 2022, github megvii-research/NAFNet"
_MOAM_SRC = "MoAM: Ai et al., DreamClear, NeurIPS 2024 (arXiv 2410.18666)"
_NAF_GOPRO = {"img_channel": 3, "middle_blk_num": 1, "enc_blk_nums": (1, 1, 1, 28), "dec_blk_nums": (1, 1, 1, 1)}
_NAF_SMALL = {"img_channel": 3, "middle_blk_num": 1, "enc_blk_nums": (1, 1, 1, 4), "dec_blk_nums": (1, 1, 1, 1)}
_OWN_NAF = "deblurkit (NAFNet layout, no official weights)"

MODELS: dict[str, ModelSpec] = {
    "mimo-unet": ModelSpec(
        "mimo-unet", "mimo-unet", {"num_res": 8, "base_channel": 32}, 4,
        "MIMO-UNet, 8 residual blocks per block (6.8M params)", f"{_MIMO_SRC} (MIMO-UNet.pkl)"),
    "mimo-unet-plus": ModelSpec(
        "mimo-unet-plus", "mimo-unet-plus", {"num_res": 20, "base_channel": 32}, 4,
        "MIMO-UNet+, 20 residual blocks per block (16.1M params); '++' = self-ensemble option",
        f"{_MIMO_SRC} (MIMO-UNetPlus.pkl, RealBlur MIMO-UNet+ file)"),
    "mimo-unet-narrow": ModelSpec(
        "mimo-unet-narrow", "mimo-unet", {"num_res": 4, "base_channel": 16}, 4,
        "narrow MIMO-UNet for CPU training (base_channel 16, 4 res-blocks per block)",
        "deblurkit (MIMO-UNet layout, no official weights)"),
    "nafnet-gopro-w32": ModelSpec(
        "nafnet-gopro-w32", "nafnet", {**_NAF_GOPRO, "width": 32}, 16,
        "NAFNet width 32, GoPro configuration", f"{_NAF_SRC} (NAFNet-GoPro-width32.pth)", tlc=True),
    "nafnet-gopro-w64": ModelSpec(
        "nafnet-gopro-w64", "nafnet", {**_NAF_GOPRO, "width": 64}, 16,
        "NAFNet width 64, GoPro configuration", f"{_NAF_SRC} (NAFNet-GoPro-width64.pth)", tlc=True),
    "nafnet-w16": ModelSpec(
        "nafnet-w16", "nafnet", {**_NAF_SMALL, "width": 16}, 16,
        "small NAFNet for CPU training (width 16, 1/1/1/4 encoder blocks)", _OWN_NAF, self_ensemble=True),
    "nafnet-w32": ModelSpec(
        "nafnet-w32", "nafnet", {**_NAF_SMALL, "width": 32}, 16,
        "nafnet-w16's blocks at width 32 (4x the parameters), for the width-vs-steps comparison", _OWN_NAF,
        self_ensemble=True),
    # MoAM ablation at equal parameters (within 1 %): the router + 3 experts, one modulator, none
    "moam-nafnet-w16": ModelSpec(
        "moam-nafnet-w16", "moam-nafnet", {"width": 16, "enc_blk_nums": (1, 1, 1, 4), "modulation": "moam"}, 32,
        "nafnet-w16 backbone, every block modulated by MoAM (degradation map, router, 3 experts)",
        f"{_MOAM_SRC}; deblurkit (no official weights)"),
    "moam-nafnet-w16-single": ModelSpec(
        "moam-nafnet-w16-single", "moam-nafnet",
        {"width": 16, "enc_blk_nums": (1, 1, 1, 4), "modulation": "single", "expert_hidden": 48}, 32,
        "ablation: one adaptive modulator per block instead of MoAM (same size)",
        f"{_MOAM_SRC}; deblurkit (no official weights)"),
    "moam-nafnet-w16-none": ModelSpec(
        "moam-nafnet-w16-none", "moam-nafnet", {"width": 16, "enc_blk_nums": (1, 1, 2, 5), "modulation": "none"}, 16,
        "ablation: the backbone without modulators, two more blocks for the same size",
        f"{_MOAM_SRC}; deblurkit (no official weights)"),
}


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registry name.

    Raises:
        UnknownNameError: ``name`` is not in :data:`MODELS`.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownNameError("model", name, list(MODELS)) from None


def build_architecture(arch: str, hparams: dict[str, Any]):
    """Instantiate architecture ``arch`` with ``hparams`` (random weights)."""
    import importlib

    if arch not in ARCHITECTURES:
        raise UnknownNameError("architecture", arch, list(ARCHITECTURES))
    module_name, cls_name = ARCHITECTURES[arch]
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**hparams)


def create_model(name: str, **overrides: Any):
    """Build the variant ``name`` with random weights; ``overrides`` replace its hyper-parameters.

    Returns:
        ``torch.nn.Module`` in train mode on CPU, float32.
    """
    spec = model_spec(name)
    return build_architecture(spec.arch, {**spec.hparams, **overrides})


def architecture_of(model: Any) -> str:
    """The :data:`ARCHITECTURES` key of a model instance."""
    for arch, (module_name, cls_name) in ARCHITECTURES.items():
        cls = type(model)
        if cls.__module__ == module_name and cls.__name__ == cls_name:
            return arch
    raise ValueError(f"not a registered architecture: {type(model).__name__}")


def count_params(model: Any) -> int:
    """Number of learnable parameters."""
    return sum(p.numel() for p in model.parameters())


def count_conv_macs(model: Any, height: int = 256, width: int = 256, channels: int = 3) -> int:
    """Multiply-accumulates of every Conv2d / ConvTranspose2d for one ``(1, C, height, width)`` input.

    Runs the model on the ``meta`` device (shapes only, no arithmetic), so it is instant even
    for large models.
    """
    import copy

    import torch
    from torch import nn

    total = 0

    def hook(mod, inputs, output):
        nonlocal total
        kh, kw = mod.kernel_size
        if isinstance(mod, nn.ConvTranspose2d):
            total += inputs[0].numel() * (mod.out_channels // mod.groups) * kh * kw
        else:
            total += output.numel() * (mod.in_channels // mod.groups) * kh * kw

    meta = copy.deepcopy(model).to("meta").eval()
    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            meta(torch.empty(1, channels, height, width, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return int(total)


def list_models() -> list[ModelInfo]:
    """Every registry entry with its parameter count and conv MACs at 256x256."""
    return list(_list_models_cached())


@functools.lru_cache(maxsize=1)
def _list_models_cached() -> tuple[ModelInfo, ...]:
    out = []
    for spec in MODELS.values():
        with _meta_init():
            model = create_model(spec.name)
        out.append(ModelInfo(spec.name, spec.arch, count_params(model), count_conv_macs(model),
                             spec.size_multiple, spec.description, spec.source))
    return tuple(out)


def _meta_init():
    """Context manager that builds modules on the meta device (no memory, no init cost)."""
    import torch

    return torch.device("meta")
