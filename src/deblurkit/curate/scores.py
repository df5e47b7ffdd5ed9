"""No-reference image measures for curating sharp training photos (NumPy only).

Every function takes a float32 sRGB image ``(H, W, 3)`` in [0, 1] (as returned by
:func:`deblurkit.io.load_image_rgb`) or its luma ``(H, W)``, and returns plain floats. Local
measures are computed on square tiles at the image's own resolution and then pooled, so a flat
sky neither hides the blur of the textured parts nor counts as noise-free evidence:

- sharpness: per textured tile, the smallest over 8 orientations of the spectral energy of
  the top octave (0.25-0.5 cycles/px) over the octave below, after removing the white-noise
  floor; about 1 for sharp natural detail, lower when blurred (a motion blur empties one
  orientation, defocus all). Pooled as the 90th percentile over tiles (the in-focus part).
- noise: per tile, the MAD estimate ``median(|HH|) / 0.6745`` of the finest Haar diagonal
  band (Donoho & Johnstone 1994); pooled as the 10th percentile (the flattest tiles).
- blockiness: mean absolute step across each of the 8 column (row) phases; the largest phase
  over the median of the others (1 = no 8x8 grid, JPEG blocking > 1).

>>> import numpy as np
>>> flat = np.full((64, 64, 3), 0.5, np.float32)
>>> clipping_fractions_srgb(flat)
{'clipped_high': 0.0, 'clipped_low': 0.0}
"""

from __future__ import annotations

import numpy as np

#: Rec. 601 luma weights, applied to sRGB-encoded (gamma) values.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
TILE = 128
"""Tile side (pixels) for the local measures."""
OCTAVE_LOW = 0.125
"""Lower edge (cycles/px) of the reference octave; the top octave is [2 * OCTAVE_LOW, 0.5]."""
SECTORS = 8
"""Orientation sectors over [0, pi) for the directional sharpness."""


def luma_srgb(img_srgb: np.ndarray) -> np.ndarray:
    """Luma ``(H, W)`` float32 of an sRGB image ``(H, W, 3)`` (Rec. 601 weights on gamma values)."""
    if img_srgb.ndim != 3 or img_srgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img_srgb.shape}")
    r, g, b = LUMA_WEIGHTS
    x = img_srgb.astype(np.float32, copy=False)
    return (r * x[..., 0] + g * x[..., 1] + b * x[..., 2]).astype(np.float32)


def tiles(gray: np.ndarray, size: int = TILE) -> np.ndarray:
    """Non-overlapping ``size`` x ``size`` tiles of ``gray`` ``(H, W)``: ``(N, size, size)``.

    The remainder at the right and bottom is dropped; an image smaller than one tile gives one
    tile of its largest centred square (so ``N >= 1`` for any image at least 8 px wide).
    """
    h, w = gray.shape
    if h < size or w < size:
        s = min(h, w)
        t, l0 = (h - s) // 2, (w - s) // 2
        return gray[None, t : t + s, l0 : l0 + s]
    ny, nx = h // size, w // size
    g = gray[: ny * size, : nx * size]
    return g.reshape(ny, size, nx, size).swapaxes(1, 2).reshape(ny * nx, size, size)


def noise_sigma_tiles(tile_stack: np.ndarray) -> np.ndarray:
    """Per-tile noise standard deviation ``(N,)`` from the finest Haar diagonal band (MAD).

    For white Gaussian noise of standard deviation s, the orthonormal Haar HH coefficients are
    N(0, s^2), and ``median(|HH|) / 0.6745`` estimates s; texture raises it, so pool with a low
    percentile.
    """
    t = tile_stack[:, : tile_stack.shape[1] // 2 * 2, : tile_stack.shape[2] // 2 * 2]
    hh = (t[:, 0::2, 0::2] - t[:, 0::2, 1::2] - t[:, 1::2, 0::2] + t[:, 1::2, 1::2]) * 0.5
    return np.median(np.abs(hh).reshape(hh.shape[0], -1), axis=1) / 0.6745


def noise_sigma_srgb(img_srgb: np.ndarray, percentile: float = 10.0) -> float:
    """Noise standard deviation of the luma, in sRGB units (0-1 scale; 0.01 = 2.55 levels of 255).

    The ``percentile`` (default 10th) of the per-tile MAD estimates (:func:`noise_sigma_tiles`).
    """
    return float(np.percentile(noise_sigma_tiles(tiles(luma_srgb(img_srgb))), percentile))


def _spectral_geometry(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    angle = np.mod(np.arctan2(fy, fx), np.pi)
    sector = np.minimum((angle / np.pi * SECTORS).astype(int), SECTORS - 1)
    window = np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)
    return radius, sector, window


def sharpness_tiles(tile_stack: np.ndarray, noise_sigma: float = 0.0) -> np.ndarray:
    """Per-tile directional octave ratio ``(N,)`` (higher = sharper; about 1 for sharp natural detail).

    Each tile is Hann-windowed; from its power spectrum the white-noise floor of ``noise_sigma``
    is removed, and the spectrum is split into :data:`SECTORS` orientations. In each, the energy
    of the top octave (0.25-0.5 cycles/px) is divided by that of the octave below (0.125-0.25):
    a scale-invariant (power ~ 1/f^2) image gives about 1 whatever its contrast, and blur lowers
    it. The tile's value is the smallest over orientations (a motion blur removes one
    orientation's detail, defocus all).
    """
    n, size, _ = tile_stack.shape
    radius, sector, window = _spectral_geometry(size)
    t = tile_stack - tile_stack.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.rfft2(t * window)) ** 2
    power = np.maximum(power - noise_sigma**2 * float((window**2).sum()), 0.0)
    top = (radius >= 2 * OCTAVE_LOW) & (radius <= 0.5)
    below = (radius >= OCTAVE_LOW) & (radius < 2 * OCTAVE_LOW)
    ratios = np.empty((n, SECTORS))
    for s in range(SECTORS):
        in_s = sector == s
        ratios[:, s] = power[:, top & in_s].sum(axis=1) / np.maximum(power[:, below & in_s].sum(axis=1), 1e-12)
    return ratios.min(axis=1)


def texture_tiles(tile_stack: np.ndarray, noise_sigma: float = 0.0) -> np.ndarray:
    """Per-tile standard deviation of the luma gradient above the noise's own share ``(N,)``."""
    gy = np.diff(tile_stack, axis=1)[:, :, :-1]
    gx = np.diff(tile_stack, axis=2)[:, :-1, :]
    energy = (gx**2 + gy**2).reshape(tile_stack.shape[0], -1).mean(axis=1)
    return np.sqrt(np.maximum(energy - 4.0 * noise_sigma**2, 0.0))


def sharpness_srgb(
    img_srgb: np.ndarray, *, percentile: float = 90.0, min_texture: float = 0.01
) -> dict[str, float]:
    """Directional sharpness of an sRGB image, pooled over its textured tiles.

    Args:
        img_srgb: ``(H, W, 3)`` float32 sRGB in [0, 1], at least 8 px on each side.
        percentile: pooling percentile over textured tiles (90: the in-focus part decides).
        min_texture: tiles whose gradient RMS (above noise, sRGB units per pixel) is below this
            are flat and ignored.

    Returns:
        ``{"sharpness": s, "textured_fraction": f, "noise_sigma": n}``: ``s`` >= 0, about 1 when
        sharp (:func:`sharpness_tiles`; NaN when no tile is textured), ``f`` the share of textured tiles, ``n`` as
        :func:`noise_sigma_srgb`.
    """
    stack = tiles(luma_srgb(img_srgb))
    sigma = float(np.percentile(noise_sigma_tiles(stack), 10.0))
    textured = texture_tiles(stack, sigma) >= min_texture
    frac = float(textured.mean())
    if not textured.any():
        return {"sharpness": float("nan"), "textured_fraction": frac, "noise_sigma": sigma}
    s = sharpness_tiles(stack[textured], sigma)
    return {"sharpness": float(np.percentile(s, percentile)), "textured_fraction": frac, "noise_sigma": sigma}


def blockiness_srgb(img_srgb: np.ndarray, block: int = 8) -> float:
    """JPEG blocking: mean step across the strongest of the ``block`` grid phases, relative to the others.

    Computed on the luma in both directions (averaged); about 1.0 without a block grid, above
    1 with visible 8x8 blocking (any grid offset, so crops of JPEGs count too). NaN for images
    smaller than ``2 * block`` or without any gradient.
    """
    y = luma_srgb(img_srgb).astype(np.float64)
    if min(y.shape) < 2 * block:
        return float("nan")
    vals = []
    for d in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        n = d.shape[1] // block * block
        phase = d[:, :n].reshape(d.shape[0], -1, block).mean(axis=(0, 1))
        strongest = int(np.argmax(phase))
        rest = np.delete(phase, strongest)
        med = float(np.median(rest))
        if med <= 0:
            continue
        vals.append(float(phase[strongest]) / med)
    return float(np.mean(vals)) if vals else float("nan")


def clipping_fractions_srgb(img_srgb: np.ndarray) -> dict[str, float]:
    """Share of pixels with a channel at the top code value (>= 254.5/255) and with all channels at 0.

    Returns:
        ``{"clipped_high": a, "clipped_low": b}``, both in [0, 1].
    """
    hi = (img_srgb >= 254.5 / 255.0).any(axis=2)
    lo = (img_srgb <= 0.5 / 255.0).all(axis=2)
    return {"clipped_high": float(hi.mean()), "clipped_low": float(lo.mean())}


def dct_phash_srgb(img_srgb: np.ndarray, hash_size: int = 8) -> str:
    """64-bit perceptual hash (hex) of the luma: signs of the lowest DCT frequencies vs their median.

    Computed by ImageHash's ``phash`` (Pillow resize to 32x32, DCT, median threshold; the
    ``imagehash`` package of the ``curate`` extra).
    """
    import imagehash
    from PIL import Image

    y8 = np.clip(luma_srgb(img_srgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return str(imagehash.phash(Image.fromarray(y8), hash_size=hash_size))


def hamming_hex(a: str, b: str) -> int:
    """Number of differing bits between two equal-length hex hashes."""
    if len(a) != len(b):
        raise ValueError(f"hashes of different lengths: {a!r}, {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()
