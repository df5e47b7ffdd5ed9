"""Real-ESRGAN's second-order degradation (Wang et al., ICCV-W 2021), at the input size.

Two rounds of blur -> resize -> noise -> JPEG, then a final resize back to the input size with
an optional sinc filter (in random order with the last JPEG). The settings are those of
Real-ESRGAN's ``train_realesrnet_x4plus.yml`` (also used by DreamClear for general
restoration), with ``scale = 1``: the degraded image has the size of the sharp one. Works on
sRGB values, as the original does. The sharp target is not USM-sharpened.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from deblurkit.synth.isp import jpeg_roundtrip_srgb
from deblurkit.synth.trajectory import uniform

KERNEL_TYPES: tuple[str, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
KERNEL_PROBS: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
KERNEL_SIZES: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")


def _choice(generator: torch.Generator, options: tuple, probs: tuple[float, ...] | None = None):
    if probs is None:
        return options[int(torch.randint(len(options), (), generator=generator))]
    idx = int(torch.multinomial(torch.tensor(probs, dtype=torch.float64), 1, generator=generator))
    return options[idx]


def _coin(generator: torch.Generator, p: float) -> bool:
    return float(torch.rand((), generator=generator, dtype=torch.float64)) < p


def anisotropic_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, kind: str = "gaussian", beta: float = 1.0
) -> Tensor:
    """A (generalised / plateau) anisotropic Gaussian kernel ``(size, size)`` summing to 1.

    ``q = d^T Sigma^-1 d`` with ``Sigma = R diag(sx^2, sy^2) R^T``; ``kind`` selects
    ``exp(-q/2)`` (gaussian), ``exp(-(q)^beta / 2)`` (generalized) or ``1 / (1 + q^beta)`` (plateau).
    """
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    cov = rot @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2], dtype=torch.float64)) @ rot.T
    inv = torch.linalg.inv(cov)
    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    d = torch.stack([xx, yy], -1)
    q = torch.einsum("...i,ij,...j->...", d, inv, d)
    if kind == "gaussian":
        k = torch.exp(-0.5 * q)
    elif kind == "generalized":
        k = torch.exp(-0.5 * q.pow(beta))
    elif kind == "plateau":
        k = 1.0 / (1.0 + q.pow(beta))
    else:
        raise ValueError(f"unknown kernel kind {kind!r}")
    return (k / k.sum()).to(torch.float32)


def sinc_kernel(size: int, cutoff: float) -> Tensor:
    """Circular low-pass (2-D sinc, ``cutoff`` in radians/pixel) kernel ``(size, size)`` summing to 1."""
    from scipy.special import j1

    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    rad = torch.sqrt(xx**2 + yy**2).numpy()
    with_r = cutoff * j1(cutoff * rad.clip(1e-12)) / (2 * math.pi * rad.clip(1e-12))
    with_r[rad == 0] = cutoff**2 / (4 * math.pi)
    k = torch.from_numpy(with_r)
    return (k / k.sum()).to(torch.float32)


def _random_blur_kernel(
    generator: torch.Generator, sigma_range: tuple[float, float], sinc_prob: float, p: dict
) -> Tensor:
    size = _choice(generator, KERNEL_SIZES)
    if _coin(generator, sinc_prob):
        cutoff = (
            uniform(generator, math.pi / 3, math.pi)
            if size < 13
            else uniform(generator, math.pi / 5, math.pi)
        )
        p.update(kernel="sinc", size=size, cutoff=cutoff)
        return sinc_kernel(size, cutoff)
    kind = _choice(generator, KERNEL_TYPES, KERNEL_PROBS)
    sx = uniform(generator, *sigma_range)
    iso = kind.endswith("iso") and not kind.endswith("aniso")
    sy = sx if iso else uniform(generator, *sigma_range)
    theta = 0.0 if iso else uniform(generator, -math.pi, math.pi)
    family = "gaussian" if kind in ("iso", "aniso") else kind.split("_")[0]
    beta = 1.0
    if family == "generalized":
        beta = uniform(generator, 0.5, 1.0) if _coin(generator, 0.5) else uniform(generator, 1.0, 4.0)
    elif family == "plateau":
        beta = uniform(generator, 1.0, 2.0)
    p.update(kernel=kind, size=size, sigma_x=sx, sigma_y=sy, theta=theta, beta=beta)
    return anisotropic_kernel(size, sx, sy, theta, family, beta)


def _filter(x: Tensor, kernel: Tensor) -> Tensor:
    k = kernel.shape[-1]
    pad = k // 2
    w = kernel.flip(-1, -2).view(1, 1, k, k).expand(x.shape[1], 1, k, k)
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode=mode), w, groups=x.shape[1])


def _resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def _random_resize(img: Tensor, generator: torch.Generator, probs: tuple[float, float, float],
                   up: tuple[float, float], down: tuple[float, float], size: tuple[int, int],
                   info: dict[str, Any]) -> Tensor:
    """Resize ``img`` up, down or not (``probs``) by a random factor of ``size``, with a random mode."""
    kind = _choice(generator, ("up", "down", "keep"), probs)
    scale = uniform(generator, *up) if kind == "up" else uniform(generator, *down) if kind == "down" else 1.0
    mode = _choice(generator, RESIZE_MODES)
    info.update(resize=scale, resize_mode=mode)
    return _resize(img, (max(1, int(size[0] * scale)), max(1, int(size[1] * scale))), mode)


def _noise(
    x: Tensor,
    generator: torch.Generator,
    gaussian_prob: float,
    sigma_range: tuple[float, float],
    poisson_range: tuple[float, float],
    gray_prob: float,
    p: dict,
) -> Tensor:
    gray = _coin(generator, gray_prob)
    shape = (1, 1, *x.shape[-2:]) if gray else tuple(x.shape)
    if _coin(generator, gaussian_prob):
        sigma = uniform(generator, *sigma_range) / 255.0
        noise = torch.randn(shape, generator=generator) * sigma
        p.update(noise="gaussian", sigma=sigma * 255.0, gray=gray)
    else:
        scale = uniform(generator, *poisson_range)
        base = x.clamp(0, 1)
        if gray:
            base = 0.299 * base[:, 0:1] + 0.587 * base[:, 1:2] + 0.114 * base[:, 2:3]
        vals = 255.0
        noise = (torch.poisson(base * vals, generator=generator) / vals - base) * scale
        p.update(noise="poisson", scale=scale, gray=gray)
    return x + noise


def degrade_realesrgan_srgb(x: Tensor, generator: torch.Generator) -> tuple[Tensor, list[dict[str, Any]]]:
    """Apply the second-order degradation to each sRGB image of ``(B, 3, H, W)`` in [0, 1].

    Returns:
        The degraded ``(B, 3, H, W)`` (clipped to [0, 1] and quantised to 8 bits, as JPEG output
        is) and one parameter dict per item.
    """
    outs, params = [], []
    h, w = x.shape[-2:]
    for i in range(x.shape[0]):
        img = x[i : i + 1]
        p: dict[str, Any] = {}
        # Stage 1.
        s1: dict[str, Any] = {}
        img = _filter(img, _random_blur_kernel(generator, (0.2, 3.0), 0.1, s1))
        img = _random_resize(img, generator, (0.2, 0.7, 0.1), (1.0, 1.5), (0.15, 1.0), (h, w), s1)
        img = _noise(img, generator, 0.5, (1.0, 30.0), (0.05, 3.0), 0.4, s1)
        q1 = round(uniform(generator, 30, 95))
        img = jpeg_roundtrip_srgb(img.clamp(0, 1), q1)
        s1["jpeg_quality"] = q1
        # Stage 2.
        s2: dict[str, Any] = {}
        if _coin(generator, 0.8):
            img = _filter(img, _random_blur_kernel(generator, (0.2, 1.5), 0.1, s2))
        img = _random_resize(img, generator, (0.3, 0.4, 0.3), (1.0, 1.2), (0.3, 1.0), (h, w), s2)
        img = _noise(img, generator, 0.5, (1.0, 25.0), (0.05, 2.5), 0.4, s2)
        final: dict[str, Any] = {}
        sinc = None
        if _coin(generator, 0.8):
            size = _choice(generator, KERNEL_SIZES)
            cutoff = uniform(generator, math.pi / 3, math.pi)
            sinc = sinc_kernel(size, cutoff)
            final.update(sinc_size=size, sinc_cutoff=cutoff)
        mode = _choice(generator, RESIZE_MODES)
        q2 = round(uniform(generator, 30, 95))
        jpeg_first = _coin(generator, 0.5)
        final.update(resize_mode=mode, jpeg_quality=q2, jpeg_first=jpeg_first)
        if jpeg_first:
            img = jpeg_roundtrip_srgb(img.clamp(0, 1), q2)
        img = _resize(img, (h, w), mode)
        if sinc is not None:
            img = _filter(img, sinc)
        if not jpeg_first:
            img = jpeg_roundtrip_srgb(img.clamp(0, 1), q2)
        img = (img.clamp(0, 1) * 255.0).round() / 255.0
        p.update(stage1=s1, stage2=s2, final=final)
        outs.append(img)
        params.append(p)
    return torch.cat(outs), params
