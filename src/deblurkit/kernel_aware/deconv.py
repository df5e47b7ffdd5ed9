"""Non-blind deconvolution of linear-light images with a known blur kernel.

All functions take a blurry image in **linear light** as a float32 numpy array ``(H, W, C)``
(or ``(H, W)``) and a kernel ``(k, k)`` that sums to 1, and return an array of the same shape
and dtype. The kernel is applied as a correlation-free convolution centred on ``k // 2``
(the convention of :func:`scipy.ndimage.convolve` / ``cv2.filter2D`` with a flipped kernel).

Borders: FFT deconvolution assumes a periodic image, so a naive implementation rings from the
jump between opposite edges. Here the image is padded by reflection and the padding is
blended towards a circularly blurred copy (MATLAB-style ``edgetaper``), which makes the padded
image consistent with periodic blur by the kernel; the result is cropped back.

References:
    D. Krishnan, R. Fergus, "Fast Image Deconvolution using Hyper-Laplacian Priors", NIPS 2009.
    W. H. Richardson (1972), L. B. Lucy (1974).
    O. Whyte, J. Sivic, A. Zisserman, "Deblurring Shaken and Partially Saturated Images",
    IJCV 2014.
"""

from __future__ import annotations

import numpy as np

from deblurkit.errors import DeblurkitError

__all__ = [
    "circular_diff",
    "circular_diff_adjoint",
    "convolve_fft",
    "fourier_shift_ramp",
    "hyper_laplacian_deconv",
    "pad_for_deconv",
    "psf2otf",
    "richardson_lucy_deconv",
    "richardson_lucy_saturated_linear",
    "split_solve_spectrum",
    "wiener_deconv",
]


def _fft():
    import scipy.fft

    return scipy.fft


def _check(blur: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    blur = np.asarray(blur)
    kernel = np.asarray(kernel, dtype=np.float64)
    if blur.ndim not in (2, 3):
        raise DeblurkitError(f"expected an image of shape (H, W) or (H, W, C), got {blur.shape}")
    if kernel.ndim != 2:
        raise DeblurkitError(f"expected a 2-D kernel, got shape {kernel.shape}")
    s = kernel.sum()
    if not np.isfinite(s) or s <= 0:
        raise DeblurkitError("kernel must have a positive, finite sum")
    squeeze = blur.ndim == 2
    img = blur[..., None] if squeeze else blur
    return img.astype(np.float32, copy=False), (kernel / s), squeeze


def psf2otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Optical transfer function (``rfft2``) of ``kernel`` for an image of ``shape`` (H, W).

    The kernel centre ``(k_h // 2, k_w // 2)`` is moved to the origin so the transform has
    no linear phase.

    Returns:
        complex array ``(H, W // 2 + 1)``.
    """
    # ``rfft2`` of the kernel placed in a zero (H, W) array: the row transforms of the all-zero
    # rows are zero, so only the kernel's rows are transformed (a third of the time for a 31-px
    # kernel on a 512-px image; kernel estimation calls this hundreds of times). The column
    # transforms are those of ``rfft2``, so the result is the same up to the sign of exact zeros.
    fft = _fft()
    kernel = np.asarray(kernel, dtype=np.float64)
    kh, kw = kernel.shape
    h, w = shape
    rows = np.zeros((kh, w), dtype=np.float64)
    rows[:, :kw] = kernel
    rows = np.roll(rows, -(kw // 2), axis=1)
    spectrum = np.zeros((h, w // 2 + 1), dtype=np.complex128)
    spectrum[(np.arange(kh) - kh // 2) % h] = fft.rfft(rows, axis=1)
    return fft.fft(spectrum, axis=0, overwrite_x=True).astype(np.complex64)


def circular_diff(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences ``x[i+1] - x[i]`` along axis 1 and axis 0 with wrap-around, the model
    of the FFT solves (``(H, W)`` or ``(H, W, C)``; slicing, not ``np.roll``, which copies)."""
    h = np.empty_like(x)
    np.subtract(x[:, 1:], x[:, :-1], out=h[:, :-1])
    np.subtract(x[:, :1], x[:, -1:], out=h[:, -1:])
    v = np.empty_like(x)
    np.subtract(x[1:], x[:-1], out=v[:-1])
    np.subtract(x[:1], x[-1:], out=v[-1:])
    return h, v


def circular_diff_adjoint(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`circular_diff` applied to ``(h, v)``: ``D_x^T h + D_y^T v``."""
    a = np.empty_like(h)
    np.subtract(h[:, :-1], h[:, 1:], out=a[:, 1:])
    np.subtract(h[:, -1:], h[:, :1], out=a[:, :1])
    b = np.empty_like(v)
    np.subtract(v[:-1], v[1:], out=b[1:])
    np.subtract(v[-1:], v[:1], out=b[:1])
    return a + b


def split_solve_spectrum(dtw: np.ndarray, weight: float, num_data: np.ndarray, den_data: np.ndarray,
                         den_grad: np.ndarray, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Spectrum of the quadratic step of a half-quadratic splitting with gradient coupling ``weight``.

    ``(num_data + weight * F(dtw)) / (den_data + weight * den_grad)``, computed in place in single
    precision (a masked or complex division costs more than the FFTs around it).

    Args:
        dtw: ``D^T w``, the adjoint differences of the auxiliary gradients, float32.
        weight: coupling weight of the gradient term.
        num_data: ``conj(K) F(y)``, complex64, shaped like ``rfft2(dtw)``.
        den_data, den_grad: ``|K|^2`` and ``|D_x|^2 + |D_y|^2``, float32, broadcastable to it.
        axes: the two image axes of ``dtw``.

    Returns:
        complex64 spectrum, to be inverted with ``irfft2`` (overwriting it is safe).
    """
    spectrum = _fft().rfft2(dtw, axes=axes)
    spectrum *= np.float32(weight)
    spectrum += num_data
    spectrum *= 1.0 / (den_data + weight * den_grad)
    return spectrum


def convolve_fft(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution of ``img`` (H, W) or (H, W, C) with ``kernel`` via FFT (float32 out)."""
    fft = _fft()
    squeeze = img.ndim == 2
    x = img[..., None] if squeeze else img
    otf = psf2otf(kernel, x.shape[:2])[..., None]
    out = fft.irfft2(fft.rfft2(x, axes=(0, 1)) * otf, s=x.shape[:2], axes=(0, 1)).astype(np.float32)
    return out[..., 0] if squeeze else out


def pad_for_deconv(img: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad ``img`` (H, W, C) and taper the padding so it wraps around smoothly.

    The pad width is at least the kernel size on each side, and the padded size is a fast FFT
    length. Inside the pad band the image is blended (raised cosine) into a copy blurred
    circularly by ``kernel`` and by a wide box, so the padded image has no jump at the wrap.

    Returns:
        the padded image and the ``(top, left)`` offset of the original inside it.
    """
    fft = _fft()
    h, w = img.shape[:2]
    k = max(kernel.shape)
    pad = max(2 * k, 16)
    ph = fft.next_fast_len(h + 2 * pad, real=True)
    pw = fft.next_fast_len(w + 2 * pad, real=True)
    top, left = (ph - h) // 2, (pw - w) // 2
    bottom, right = ph - h - top, pw - w - left
    padded = np.pad(img, ((top, bottom), (left, right), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
    # Blend the pad band into a strongly smoothed, circularly blurred copy (edge taper).
    smooth_k = np.ones((1, 1)) if k < 3 else kernel
    blurred = convolve_fft(padded, smooth_k)
    wide = max(k, 8)
    box = np.ones((wide, wide)) / (wide * wide)
    blurred = convolve_fft(blurred, box)
    wy = _taper_1d(ph, top, bottom)
    wx = _taper_1d(pw, left, right)
    alpha = (wy[:, None] * wx[None, :])[..., None].astype(np.float32)
    return alpha * padded + (1.0 - alpha) * blurred, (top, left)


def _taper_1d(n: int, before: int, after: int) -> np.ndarray:
    """1 over the interior, raised-cosine to 0 across the outer part of each pad band."""
    w = np.ones(n, dtype=np.float64)
    for start, length, rev in ((0, before, False), (n - after, after, True)):
        if length <= 0:
            continue
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, length))
        w[start:start + length] = ramp[::-1] if rev else ramp
    return w


def wiener_deconv(blur_linear: np.ndarray, kernel: np.ndarray, *, nsr: float = 1e-2) -> np.ndarray:
    """Wiener deconvolution with a constant noise-to-signal ratio.

    Args:
        blur_linear: blurry image, float32 ``(H, W, C)`` or ``(H, W)``, linear light in [0, 1].
        kernel: blur kernel ``(k, k)``, non-negative, normalised to sum 1 here.
        nsr: noise-to-signal power ratio (regularisation); larger is smoother.

    Returns:
        float32 array of the input's shape (not clipped).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).random((32, 32, 1), dtype=np.float32)
        >>> wiener_deconv(x, np.ones((1, 1)), nsr=0.0).shape
        (32, 32, 1)
    """
    img, kernel, squeeze = _check(blur_linear, kernel)
    if nsr < 0:
        raise DeblurkitError(f"nsr must be >= 0, got {nsr}")
    fft = _fft()
    padded, (top, left) = pad_for_deconv(img, kernel)
    otf = psf2otf(kernel, padded.shape[:2])[..., None]
    spec = fft.rfft2(padded, axes=(0, 1))
    out = fft.irfft2(np.conj(otf) * spec / (np.abs(otf) ** 2 + nsr), s=padded.shape[:2], axes=(0, 1))
    out = out[top:top + img.shape[0], left:left + img.shape[1]].astype(np.float32)
    return out[..., 0] if squeeze else out


def richardson_lucy_deconv(blur_linear: np.ndarray, kernel: np.ndarray, *, iterations: int = 30) -> np.ndarray:
    """Richardson–Lucy deconvolution (maximum likelihood under Poisson noise).

    Args:
        blur_linear: blurry image, float32 ``(H, W, C)`` or ``(H, W)``, linear light in [0, 1].
        kernel: blur kernel ``(k, k)``, non-negative, normalised to sum 1 here.
        iterations: number of multiplicative updates (more = sharper and noisier).

    Returns:
        float32 array of the input's shape, non-negative.
    """
    img, kernel, squeeze = _check(blur_linear, kernel)
    if iterations < 0:
        raise DeblurkitError(f"iterations must be >= 0, got {iterations}")
    fft = _fft()
    padded, (top, left) = pad_for_deconv(np.clip(img, 0.0, None), kernel)
    padded = np.maximum(padded, 0.0).astype(np.float32)
    shape = padded.shape[:2]
    otf = psf2otf(kernel, shape)[..., None]
    eps = 1e-6
    x = padded.copy()
    for _ in range(iterations):
        est = fft.irfft2(fft.rfft2(x, axes=(0, 1)) * otf, s=shape, axes=(0, 1))
        ratio = padded / np.maximum(est, eps)
        corr = fft.irfft2(fft.rfft2(ratio, axes=(0, 1)) * np.conj(otf), s=shape, axes=(0, 1))
        x = (x * np.maximum(corr, 0.0)).astype(np.float32)
    out = x[top:top + img.shape[0], left:left + img.shape[1]]
    return out[..., 0] if squeeze else out


def _soft_clip(x: np.ndarray, level: float, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """``R(x) = x - log(1 + exp(a (x - level))) / a`` (a smooth ``min(x, level)``) and ``R'(x)``."""
    z = sharpness * (x - level)
    soft = np.logaddexp(0.0, z) / sharpness
    slope = 0.5 * (1.0 - np.tanh(0.5 * z))  # 1 - sigmoid(z), stable for large |z|
    return (x - soft).astype(np.float32), slope.astype(np.float32)


def richardson_lucy_saturated_linear(
    blur_linear: np.ndarray,
    kernel: np.ndarray,
    *,
    iterations: int = 30,
    clip_level: float = 1.0,
    sharpness: float = 50.0,
    bright_fraction: float = 0.9,
    split: bool = True,
) -> np.ndarray:
    """Richardson–Lucy deconvolution that models clipped highlights (Whyte, Sivic & Zisserman 2014).

    The blurry image is modelled as ``y = R(k * x)`` with a smooth clipping function
    ``R(v) = v - log(1 + exp(a (v - clip_level))) / a``. The multiplicative update of the
    Poisson likelihood under this model is
    ``x <- x * k^T(y R'(k*x) / R(k*x) + 1 - R'(k*x))``: where the blurry image is clipped
    (``R' ~ 0``) a pixel carries no information and the factor is 1; elsewhere it is plain RL.

    With ``split`` (the paper's decomposition against ringing), latent pixels brighter than
    ``bright_fraction * clip_level`` (recomputed every iteration; their values cannot be
    recovered reliably) are updated from all blurry pixels, while the other latent pixels are
    updated only from the blurry pixels that receive no light from the bright ones, so the
    errors of the bright pixels do not ring into the rest of the image. Channels are treated
    independently (each clips on its own).

    Args:
        blur_linear: blurry image, float32 ``(H, W, C)`` or ``(H, W)``, linear light in
            ``[0, clip_level]``.
        kernel: blur kernel ``(k, k)``, non-negative, normalised to sum 1 here.
        iterations: multiplicative updates (more = sharper and noisier; there is no prior; see
            docs/classical.md for 30 vs 60 on the held-out ``saturated`` set).
        clip_level: the sensor's clipping value in the image's units (1.0 for images in [0, 1]).
        sharpness: ``a`` of the smooth clipping model (larger = closer to a hard clip).
        bright_fraction: latent values above this fraction of ``clip_level`` count as bright.
        split: update bright and other latent pixels separately (False: the saturated
            likelihood alone).

    Returns:
        float32 array of the input's shape, non-negative, not clipped (bright light sources may
        exceed ``clip_level``).

    Raises:
        DeblurkitError: on a bad image, kernel or setting.
    """
    img, kernel, squeeze = _check(blur_linear, kernel)
    if iterations < 0:
        raise DeblurkitError(f"iterations must be >= 0, got {iterations}")
    if not clip_level > 0:
        raise DeblurkitError(f"clip_level must be > 0, got {clip_level}")
    if not sharpness > 0:
        raise DeblurkitError(f"sharpness must be > 0, got {sharpness}")
    if not 0.0 < bright_fraction <= 1.0:
        raise DeblurkitError(f"bright_fraction must be in (0, 1], got {bright_fraction}")
    fft = _fft()
    padded, (top, left) = pad_for_deconv(np.clip(img, 0.0, clip_level), kernel)
    y = np.clip(padded, 0.0, clip_level).astype(np.float32)
    shape = y.shape[:2]
    otf = psf2otf(kernel, shape)[..., None]
    support_otf = psf2otf((kernel > 0).astype(np.float64), shape)[..., None]

    def conv(x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return fft.irfft2(fft.rfft2(x, axes=(0, 1)) * h, s=shape, axes=(0, 1)).astype(np.float32)

    eps = 1e-6
    x = y.copy()
    for _ in range(iterations):
        pred = conv(x, otf)
        r, slope = _soft_clip(pred, clip_level, sharpness)
        data = y * slope / np.maximum(r, eps)
        full = conv(data + 1.0 - slope, np.conj(otf))
        if split:
            bright = (x > bright_fraction * clip_level).astype(np.float32)
            if bright.any():
                # Blurry pixels that receive light from a bright latent pixel (support, not weight).
                seen = conv(bright, support_otf) > 0.5
                keep = np.where(seen, 0.0, 1.0).astype(np.float32)
                masked = conv(keep * data + 1.0 - keep * slope, np.conj(otf))
                full = np.where(bright > 0, full, masked)
        x = (x * np.maximum(full, 0.0)).astype(np.float32)
    out = x[top:top + img.shape[0], left:left + img.shape[1]]
    return out[..., 0] if squeeze else out


def _shrink_lut(alpha: float, beta: float, vmax: float, n: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Table of ``w*(v) = argmin_w |w|^alpha + beta/2 (w - v)^2`` for ``v`` in ``[0, vmax]``."""
    v = np.linspace(0.0, vmax, n)
    if alpha >= 1.0 - 1e-9:  # soft threshold (alpha = 1)
        return v, np.maximum(v - 1.0 / beta, 0.0)
    w = v.copy()
    pos = v > 0
    # Newton on g(w) = alpha w^(alpha-1) + beta (w - v) from w = v (g is convex and decreasing
    # to the left of its minimum, so the iteration decreases monotonically to the larger root).
    ww = w[pos]
    vv = v[pos]
    for _ in range(12):
        safe = np.maximum(ww, 1e-12)
        g = alpha * safe ** (alpha - 1.0) + beta * (safe - vv)
        dg = alpha * (alpha - 1.0) * safe ** (alpha - 2.0) + beta
        step = np.where(dg > 0, g / np.where(dg > 0, dg, 1.0), safe)
        ww = np.clip(safe - step, 0.0, vv)
    cost_w = np.abs(ww) ** alpha + 0.5 * beta * (ww - vv) ** 2
    cost_0 = 0.5 * beta * vv ** 2
    w[pos] = np.where(cost_w < cost_0, ww, 0.0)
    return v, w


def _shrink(v: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The table's minimiser at every ``v`` (float32, any shape): linear interpolation, odd in ``v``.

    The grid is even (``np.linspace(0, top, n)`` with ``top`` above every ``|v|``), so each
    sample's interval follows from one multiplication instead of ``np.interp``'s bisection; the
    arithmetic stays in single precision (the table's values agree with ``np.interp``'s to about
    1e-7 of their range). Most of the deconvolution's time was here.
    """
    grid, vals = table
    n = grid.shape[0]
    t = np.abs(v, dtype=np.float32)
    t *= np.float32((n - 1) / grid[-1])  # position on the grid, in intervals
    j = t.astype(np.intp)
    np.minimum(j, n - 2, out=j)
    t -= j  # fraction of the interval (1 at the top of the grid)
    out = np.diff(vals).astype(np.float32).take(j)
    out *= t
    out += vals.astype(np.float32).take(j)
    return np.copysign(out, v, out=out)


def hyper_laplacian_deconv(
    blur_linear: np.ndarray,
    kernel: np.ndarray,
    *,
    weight: float = 2e-3,
    alpha: float = 0.8,
    beta_max: float = 256.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Deconvolution with a hyper-Laplacian gradient prior (Krishnan & Fergus 2009).

    Minimises ``1/2 ||k * x - y||^2 + weight * sum |grad x|^alpha`` by half-quadratic
    splitting: auxiliary gradients ``w`` are solved per pixel (a lookup table of the exact
    1-D minimiser), and ``x`` in closed form with FFTs, while the coupling ``beta`` grows from
    1 to ``beta_max`` by a factor 2*sqrt(2).

    Args:
        blur_linear: blurry image, float32 ``(H, W, C)`` or ``(H, W)``, linear light in [0, 1].
        kernel: blur kernel ``(k, k)``, non-negative, normalised to sum 1 here.
        weight: prior weight (``1 / lambda`` of the paper); raise it with noise.
        alpha: prior exponent in (0, 1]; 0.5–0.8 suit natural images.
        beta_max: final coupling weight.
        shift: ``(dy, dx)`` in pixels (fractions allowed) by which the result is translated, in
            the Fourier domain of the padded image (exact, no interpolation blur). Pass
            :func:`~deblurkit.kernel_aware.kernels.kernel_centroid_offset` of the kernel so that
            the result keeps the blurry image's centroid convention to a fraction of a pixel.

    Returns:
        float32 array of the input's shape (not clipped).
    """
    img, kernel, squeeze = _check(blur_linear, kernel)
    if not 0.0 < alpha <= 1.0:
        raise DeblurkitError(f"alpha must be in (0, 1], got {alpha}")
    if weight <= 0:
        raise DeblurkitError(f"weight must be > 0, got {weight}")
    fft = _fft()
    padded, (top, left) = pad_for_deconv(img, kernel)
    shape = padded.shape[:2]
    otf = psf2otf(kernel, shape)[..., None]
    dx = psf2otf(np.array([[0.0, -1.0, 1.0]]), shape)[..., None]  # x[i+1] - x[i] (forward diff)
    dy = psf2otf(np.array([[0.0], [-1.0], [1.0]]), shape)[..., None]
    num_data = (np.conj(otf) * fft.rfft2(padded, axes=(0, 1))).astype(np.complex64)
    den_data = (np.abs(otf) ** 2).astype(np.float32)
    den_grad = (np.abs(dx) ** 2 + np.abs(dy) ** 2).astype(np.float32)
    x = padded.astype(np.float32)
    beta = 1.0
    inc = 2.0 * np.sqrt(2.0)
    ramp = fourier_shift_ramp(shape, shift)[..., None] if (shift[0] or shift[1]) else None
    while beta <= beta_max * 1.0001:
        gx, gy = circular_diff(x)
        vmax = float(max(gx.max(), -gx.min(), gy.max(), -gy.min(), 1e-3)) + 1e-6
        table = _shrink_lut(alpha, beta, vmax)
        wx = _shrink(gx, table)
        wy = _shrink(gy, table)
        dtw = circular_diff_adjoint(wx, wy)
        spectrum = split_solve_spectrum(dtw, weight * beta, num_data, den_data, den_grad)
        beta *= inc
        if ramp is not None and beta > beta_max * 1.0001:
            spectrum *= ramp  # the last solve: translate in the same inverse transform
        x = fft.irfft2(spectrum, s=shape, axes=(0, 1), overwrite_x=True).astype(np.float32, copy=False)
    out = x[top:top + img.shape[0], left:left + img.shape[1]]
    return out[..., 0] if squeeze else out


def fourier_shift_ramp(shape: tuple[int, int], shift: tuple[float, float]) -> np.ndarray:
    """Phase ramp ``(H, W // 2 + 1)`` complex64: multiplying an ``rfft2`` by it translates the
    image by ``shift = (dy, dx)`` pixels (circularly; content at ``p`` moves to ``p + shift``)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.exp(-2j * np.pi * (fy * shift[0] + fx * shift[1])).astype(np.complex64)
