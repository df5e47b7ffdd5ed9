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


def render_psf(
    trajectory_xy: Tensor, kernel_size: int | None = None, *, align_centroid: bool = True
) -> Tensor:
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
        a, b = traj[:-1], traj[1:]
        counts = ((b - a).norm(dim=1) * 4).ceil().long().clamp_min(1) + 1  # points per segment
        seg = torch.repeat_interleave(torch.arange(a.shape[0]), counts)
        starts = torch.cumsum(counts, 0) - counts
        j = torch.arange(int(counts.sum())) - torch.repeat_interleave(starts, counts)
        t = ((j.to(torch.float64) + 0.5) / counts[seg].to(torch.float64))[:, None]
        pts = a[seg] + (b[seg] - a[seg]) * t
        wts = 1.0 / counts[seg].to(torch.float64)  # each segment holds an equal share of time
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


PSF_SUFFIXES = (".npy", ".png")
"""File types :func:`load_psf_bank` reads: float ``.npy`` arrays and grayscale PNG (8 or 16 bit)."""


def centered_psf(psf: np.ndarray) -> Tensor:
    """A measured PSF as a kernel: non-negative, summing to 1, zero-padded to an odd square whose
    centre pixel holds its centroid (whole-pixel shift, so no resampling smooths it).

    Args:
        psf: ``(h, w)`` array, any non-negative scale.

    Returns:
        ``(k, k)`` float32 tensor, ``k`` odd.

    Raises:
        ValueError: not 2-D, or nothing positive in it.
    """
    a = np.asarray(psf, dtype=np.float64)
    if a.ndim != 2 or not np.isfinite(a).all():
        raise ValueError(f"a PSF must be a finite 2-D array, got shape {a.shape}")
    a = np.maximum(a, 0.0)
    total = a.sum()
    if total <= 0:
        raise ValueError("a PSF must have positive values")
    a = a / total
    ys, xs = np.nonzero(a)
    a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
    cy, cx = (a * yy).sum(), (a * xx).sum()
    # half-side that holds the support around the rounded centroid
    r = int(max(round(cy), a.shape[0] - 1 - round(cy), round(cx), a.shape[1] - 1 - round(cx)))
    out = np.zeros((2 * r + 1, 2 * r + 1))
    top, left = r - round(cy), r - round(cx)
    out[top : top + a.shape[0], left : left + a.shape[1]] = a
    return torch.from_numpy(out.astype(np.float32))


def load_psf_bank(folder: str) -> list[tuple[str, Tensor]]:
    """Every PSF file of ``folder`` (sorted by name) as ``(name, kernel)``, kernels from :func:`centered_psf`.

    Raises:
        ValueError: no such folder, no PSF file in it, or a file that is not a usable PSF (named).
    """
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"PSF folder {folder!r} does not exist")
    files = sorted(f for f in root.iterdir() if f.suffix.lower() in PSF_SUFFIXES and f.is_file())
    if not files:
        raise ValueError(f"PSF folder {folder!r} holds no {'/'.join(PSF_SUFFIXES)} file")
    from deblurkit.errors import DeblurkitError
    from deblurkit.photo_io import read_photo_file

    bank = []
    for f in files:
        try:
            if f.suffix.lower() == ".npy":
                arr = np.load(f, allow_pickle=False)
            else:
                pixels = read_photo_file(f, name=str(f)).pixels  # bit depth from the header
                if pixels.shape[2] != 1:
                    raise ValueError("a PSF image must be grayscale")
                arr = pixels[..., 0]
            bank.append((f.name, centered_psf(arr)))
        except (ValueError, OSError, DeblurkitError) as err:
            raise ValueError(f"PSF file {f}: {err}") from None
    return bank


def pad_kernels(kernels: list[Tensor]) -> Tensor:
    """Zero-pad a list of odd ``(k_i, k_i)`` kernels to a common size: ``(B, 1, k, k)``."""
    k = max(int(t.shape[-1]) for t in kernels)
    out = torch.zeros(len(kernels), 1, k, k, dtype=torch.float32)
    for i, t in enumerate(kernels):
        p = (k - t.shape[-1]) // 2
        out[i, 0, p : p + t.shape[-2], p : p + t.shape[-1]] = t
    return out


def _fft_size(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3 and 5 (fast FFT lengths)."""
    m = n
    while True:
        r = m
        for f in (2, 3, 5):
            while r % f == 0:
                r //= f
        if r == 1:
            return m
        m += 1


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
        raise ValueError(
            f"expected x (B,C,H,W) and odd kernels (B,1,k,k); got {tuple(x.shape)}, {tuple(kernels.shape)}"
        )
    _, _, h, w = x.shape
    k = kernels.shape[-1]
    p = k // 2
    mode = "reflect" if p < min(h, w) else "replicate"
    # Pad at least p on every side, more at the bottom/right to reach an FFT-friendly size.
    hp, wp = _fft_size(h + 2 * p), _fft_size(w + 2 * p)
    xp = F.pad(x, (p, p, p, p), mode=mode) if p else x
    extra_h, extra_w = hp - xp.shape[-2], wp - xp.shape[-1]
    if extra_h or extra_w:
        xp = F.pad(xp, (0, extra_w, 0, extra_h), mode="constant")
    kp = torch.zeros(kernels.shape[0], 1, hp, wp, dtype=torch.float32)
    kp[..., :k, :k] = kernels
    kp = torch.roll(kp, shifts=(-p, -p), dims=(-2, -1))
    y = torch.fft.irfft2(torch.fft.rfft2(xp) * torch.fft.rfft2(kp), s=(hp, wp))
    return y[..., p : p + h, p : p + w].contiguous()


def warp_average(x: Tensor, homographies: list[Tensor], *, quantize: bool = True) -> Tensor:
    """Spatially varying blur: average of the image warped by each homography of a trajectory.

    ``out(p) = mean_t x(H_t^-1 p)``, i.e. a scene point at ``p`` in the sharp image is smeared
    along ``H_t p``. Bilinear interpolation, reflected borders (OpenCV ``warpPerspective``,
    the fastest option on CPU).

    Args:
        x: ``(B, C, H, W)`` float32, non-negative (C <= 4).
        homographies: per batch item a ``(T_b, 3, 3)`` tensor in pixel coordinates.
        quantize: warp 16-bit copies (about 2x faster); each image is scaled so its maximum
            maps to 65535, so the added error is below ``max(x) / 131070`` (under 8e-6 for
            values in [0, 1]). False warps float32.

    Returns:
        ``(B, C, H, W)`` float32.
    """
    import cv2

    if len(homographies) != x.shape[0]:
        raise ValueError(f"need one homography stack per batch item: {len(homographies)} vs {x.shape[0]}")
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(b):
        img = np.ascontiguousarray(x[i].permute(1, 2, 0).numpy(), dtype=np.float32)
        scale = 1.0
        if quantize:
            scale = max(float(img.max()), 1e-12) / 65535.0
            img = (img / scale + 0.5).clip(0, 65535).astype(np.uint16)
        acc = np.zeros((h, w, c), dtype=np.float32)
        hs = homographies[i].numpy()
        for hom in hs:
            warped = cv2.warpPerspective(
                img, hom, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
            cv2.accumulate(warped.reshape(h, w, c), acc)
        out[i] = torch.from_numpy(acc * np.float32(scale / len(hs))).permute(2, 0, 1)
    return out
