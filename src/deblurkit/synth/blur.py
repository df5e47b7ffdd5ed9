"""PSF rendering and blur operators (uniform via FFT, spatially varying via homographies).

Blur is applied to whatever the caller passes; the pipeline passes linear light (physically,
a sensor integrates photons, so averaging happens in linear space). Borders are handled by
reflect padding and cropping: there is no wrap-around from circular convolution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def render_psf(trajectory_xy: Tensor, kernel_size: int | None = None, *, align_centroid: bool = True) -> Tensor:
    """Render a blur kernel (PSF) from a 2-D trajectory with sub-pixel accuracy.

    Each segment between consecutive time samples gets an equal share of the exposure time,
    spread over points ~1/4 px apart; each point is splatted bilinearly onto the grid, which
    preserves its sub-pixel position exactly (the kernel's centroid equals the trajectory's
    time-weighted mean).

    Args:
        trajectory_xy: ``(T, 2)`` ``(x, y)`` positions in pixels (x right, y down).
        kernel_size: odd output size; by default the smallest odd size holding the path plus a
            one-pixel margin. Points outside are clamped to the border.
        align_centroid: shift the trajectory so the kernel's centroid is exactly the centre
            pixel, so blurring does not shift the image relative to the sharp target.

    Returns:
        ``(k, k)`` float32 kernel, non-negative, summing to 1. ``kernel[row=y, col=x]``.
    """
    traj = trajectory_xy.to(torch.float64)
    if traj.ndim != 2 or traj.shape[1] != 2 or traj.shape[0] < 1:
        raise ValueError(f"trajectory_xy must be (T, 2), got {tuple(traj.shape)}")
    if traj.shape[0] == 1:
        pts, wts = traj, torch.ones(1, dtype=torch.float64)
    else:
        seg_pts, seg_wts = [], []
        for a, b in zip(traj[:-1], traj[1:], strict=True):
            n = max(2, math.ceil(float((b - a).norm()) * 4) + 1)
            t = (torch.arange(n, dtype=torch.float64) + 0.5)[:, None] / n
            seg_pts.append(a + (b - a) * t)
            seg_wts.append(torch.full((n,), 1.0 / n, dtype=torch.float64))
        pts, wts = torch.cat(seg_pts), torch.cat(seg_wts)
    wts = wts / wts.sum()
    if align_centroid:
        pts = pts - (pts * wts[:, None]).sum(0)
    if kernel_size is None:
        radius = math.ceil(float(pts.abs().max())) + 1
        kernel_size = 2 * radius + 1
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    c = kernel_size // 2
    xy = (pts + c).clamp(0, kernel_size - 1 - 1e-9)
    x0, y0 = xy[:, 0].floor(), xy[:, 1].floor()
    fx, fy = xy[:, 0] - x0, xy[:, 1] - y0
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp_max(kernel_size - 1), (y0 + 1).clamp_max(kernel_size - 1)
    k = torch.zeros(kernel_size * kernel_size, dtype=torch.float64)
    for yy, xx, ww in (
        (y0, x0, (1 - fx) * (1 - fy)),
        (y0, x1, fx * (1 - fy)),
        (y1, x0, (1 - fx) * fy),
        (y1, x1, fx * fy),
    ):
        k.index_add_(0, yy * kernel_size + xx, ww * wts)
    k = k.view(kernel_size, kernel_size)
    return (k / k.sum()).to(torch.float32)


def pad_kernels(kernels: list[Tensor]) -> Tensor:
    """Zero-pad a list of odd ``(k_i, k_i)`` kernels to a common size: ``(B, 1, k, k)``."""
    k = max(int(t.shape[-1]) for t in kernels)
    out = torch.zeros(len(kernels), 1, k, k, dtype=torch.float32)
    for i, t in enumerate(kernels):
        p = (k - t.shape[-1]) // 2
        out[i, 0, p : p + t.shape[-2], p : p + t.shape[-1]] = t
    return out


def convolve_fft(x: Tensor, kernels: Tensor) -> Tensor:
    """Convolve each image with its own kernel via FFT, reflect-padded so nothing wraps around.

    Args:
        x: ``(B, C, H, W)`` float32.
        kernels: ``(B, 1, k, k)`` or ``(1, 1, k, k)`` with odd ``k``; applied to every channel
            (true convolution, i.e. the kernel is the PSF: a point becomes the kernel image).

    Returns:
        ``(B, C, H, W)`` float32.
    """
    if x.ndim != 4 or kernels.ndim != 4 or kernels.shape[-1] % 2 != 1:
        raise ValueError(f"expected x (B,C,H,W) and odd kernels (B,1,k,k); got {tuple(x.shape)}, {tuple(kernels.shape)}")
    _, _, h, w = x.shape
    k = kernels.shape[-1]
    p = k // 2
    mode = "reflect" if p < min(h, w) else "replicate"
    xp = F.pad(x, (p, p, p, p), mode=mode) if p else x
    hp, wp = xp.shape[-2:]
    kp = torch.zeros(kernels.shape[0], 1, hp, wp, dtype=torch.float32)
    kp[..., :k, :k] = kernels
    kp = torch.roll(kp, shifts=(-p, -p), dims=(-2, -1))
    y = torch.fft.irfft2(torch.fft.rfft2(xp) * torch.fft.rfft2(kp), s=(hp, wp))
    return y[..., p : p + h, p : p + w].contiguous()


def warp_average(x: Tensor, homographies: list[Tensor]) -> Tensor:
    """Spatially varying blur: average of the image warped by each homography of a trajectory.

    ``out(p) = mean_t x(H_t^-1 p)``, i.e. a scene point at ``p`` in the sharp image is smeared
    along ``H_t p``. Bilinear interpolation, reflected borders (OpenCV ``warpPerspective``,
    the fastest option on CPU).

    Args:
        x: ``(B, C, H, W)`` float32 (any number of channels).
        homographies: per batch item a ``(T_b, 3, 3)`` tensor in pixel coordinates.

    Returns:
        ``(B, C, H, W)`` float32.
    """
    import cv2

    if len(homographies) != x.shape[0]:
        raise ValueError(f"need one homography stack per batch item: {len(homographies)} vs {x.shape[0]}")
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(b):
        img = np.ascontiguousarray(x[i].permute(1, 2, 0).numpy())
        acc = np.zeros_like(img)
        hs = homographies[i].numpy()
        for hom in hs:
            warped = cv2.warpPerspective(img, hom, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            acc += warped.reshape(img.shape)
        out[i] = torch.from_numpy(acc / len(hs)).permute(2, 0, 1)
    return out
