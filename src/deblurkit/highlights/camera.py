"""The video camera's sensor and pipeline: linear exposed radiance in, an 8-bit sRGB frame out.

Built from the synthesis engine's stages (:mod:`deblurkit.synth.isp`, :mod:`deblurkit.synth.color`)
in the same order as :func:`deblurkit.synth.pipeline.synthesize_pair`'s camera pipeline: linear sRGB
-> camera RGB (a random mix of real cameras' matrices), inverse white balance, Bayer mosaic,
Poisson-Gaussian noise, sensor clipping at 1, Malvar demosaic, white balance, camera RGB -> linear
sRGB, clip, tone curve, 8-bit quantisation. A video keeps one camera (matrix, gains, pattern, noise
level) for all its frames: :func:`sample_camera` draws it once.

Exposed radiance is "radiance x exposure": 1.0 is the sensor's saturation level.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from deblurkit.color import srgb_to_linear as srgb_to_linear_np
from deblurkit.synth import isp
from deblurkit.synth.color import apply_color_matrix, linear_to_srgb, rgb_to_cam_matrix, smoothstep
from deblurkit.synth.trajectory import uniform

ToneCurve = Literal["srgb", "srgb-smoothstep"]


@dataclass(frozen=True)
class CameraConfig:
    """How the video camera turns exposed radiance into 8-bit frames."""

    camera_pipeline: bool = True
    """Raw round trip (colour matrix, white balance, Bayer mosaic, demosaic); False adds noise to
    linear RGB directly."""
    noise_model: Literal["none", "unprocessing", "rsblur-realblur", "rsblur-rsblur"] = "unprocessing"
    """Noise level distribution (:func:`deblurkit.synth.isp.sample_noise_levels`)."""
    max_shot_noise: float = 0.004
    """Cap on the sampled shot-noise gain (video sensors at moderate gain; the "unprocessing"
    range reaches 0.012)."""
    tone_curve: ToneCurve = "srgb"
    """Tone curve after clipping: sRGB gamma, or gamma then a smoothstep S-curve."""
    red_gain: tuple[float, float] = (1.9, 2.4)
    """White-balance red gain range."""
    blue_gain: tuple[float, float] = (1.5, 1.9)
    """White-balance blue gain range."""


@dataclass(frozen=True)
class CameraParams:
    """One sampled camera (fixed for a whole video)."""

    rgb_to_cam: tuple[tuple[float, ...], ...]
    gains: tuple[float, float, float]
    pattern: str
    shot: float
    read: float
    config: CameraConfig


def sample_camera(config: CameraConfig, generator: torch.Generator) -> CameraParams:
    """Draw a camera: colour matrix mix, white-balance gains, Bayer pattern and noise levels."""
    cams = ("unprocessing-1", "unprocessing-2", "unprocessing-3", "unprocessing-4", "sony-a7r3")
    weights = {c: uniform(generator, 1e-3, 1.0) for c in cams}
    m = rgb_to_cam_matrix(weights)
    gains = (uniform(generator, *config.red_gain), 1.0, uniform(generator, *config.blue_gain))
    pattern = isp.BAYER_PATTERNS[int(torch.randint(4, (), generator=generator))]
    shot, read = isp.sample_noise_levels(config.noise_model, generator)
    if shot > config.max_shot_noise:  # scale read noise with shot like the "unprocessing" fit
        read *= (config.max_shot_noise / shot) ** 2.18
        shot = config.max_shot_noise
    return CameraParams(tuple(tuple(float(v) for v in row) for row in m.tolist()), gains, pattern,  # type: ignore[arg-type]
                        float(shot), float(read), config)


def capture_srgb8(exposed_linear: np.ndarray, camera: CameraParams, generator: torch.Generator) -> np.ndarray:
    """Photograph exposed radiance: noise, clipping, tone curve and 8-bit quantisation.

    Args:
        exposed_linear: ``(H, W, 3)`` float32 linear sRGB radiance times exposure (1 = saturation),
            H and W even when the raw round trip is on.
        camera: from :func:`sample_camera`.
        generator: noise source.

    Returns:
        ``(H, W, 3)`` uint8 sRGB-encoded frame (tone curve ``camera.config.tone_curve``).
    """
    cfg = camera.config
    x = torch.from_numpy(np.ascontiguousarray(exposed_linear, dtype=np.float32)).permute(2, 0, 1)[None]
    shot, read = torch.tensor([camera.shot]), torch.tensor([camera.read])
    noisy = cfg.noise_model != "none"
    if cfg.camera_pipeline:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise ValueError(f"the raw round trip needs even height and width, got {h}x{w}")
        rgb2cam = torch.tensor(camera.rgb_to_cam, dtype=torch.float32)
        cam2rgb = torch.linalg.inv(rgb2cam.double()).float()
        gains = torch.tensor(camera.gains, dtype=torch.float32).view(1, 3, 1, 1)
        raw = isp.mosaic_bayer(apply_color_matrix(x, rgb2cam) / gains, camera.pattern)
        if noisy:
            raw = isp.add_poisson_gaussian_noise(raw.clamp(0.0, 1.0), shot, read, generator, poisson=False)
        raw = raw.clamp(0.0, 1.0)
        out = apply_color_matrix(isp.demosaic_malvar(raw, camera.pattern) * gains, cam2rgb)
    else:
        out = x
        if noisy:
            out = isp.add_poisson_gaussian_noise(x.clamp(0.0, 1.0), shot, read, generator, poisson=False)
    # A channel whose sensor value exceeded saturation stays at the maximum code (no noise).
    out = torch.where(x >= 1.0, torch.ones_like(out), out).clamp(0.0, 1.0)
    # Tone curve + rounding to the nearest code, as a search in the curve's linear code boundaries.
    lin = out[0].permute(1, 2, 0).numpy()
    return np.searchsorted(_code_boundaries_linear(cfg.tone_curve), lin).astype(np.uint8)


def _encode_srgb(x: np.ndarray, tone_curve: ToneCurve) -> np.ndarray:
    """Linear [0, 1] -> tone-mapped [0, 1] (float64)."""
    y = linear_to_srgb(torch.from_numpy(x)).numpy()
    return smoothstep(torch.from_numpy(y)).numpy() if tone_curve == "srgb-smoothstep" else y


@functools.lru_cache(maxsize=2)
def _code_boundaries_linear(tone_curve: ToneCurve) -> np.ndarray:
    """The 255 linear values where the rounded 8-bit code steps up (curve inverted by bisection)."""
    targets = (np.arange(255, dtype=np.float64) + 0.5) / 255.0
    lo, hi = np.zeros(255), np.ones(255)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = _encode_srgb(mid, tone_curve) < targets
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return hi.astype(np.float32)


def linearize_srgb8(frame: np.ndarray, tone_curve: ToneCurve = "srgb") -> np.ndarray:
    """Invert the tone curve of an 8-bit frame: linear values in [0, 1] (1 = saturation).

    Args:
        frame: ``(H, W, 3)`` uint8 sRGB-encoded.
        tone_curve: the curve the camera applied (inverted exactly; the smoothstep inverse is
            ``0.5 - sin(asin(1 - 2y) / 3)``).

    Returns:
        ``(H, W, 3)`` float32 linear in [0, 1].
    """
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame, got {frame.dtype}")
    lut = np.arange(256, dtype=np.float64) / 255.0
    if tone_curve == "srgb-smoothstep":
        lut = 0.5 - np.sin(np.arcsin(np.clip(1.0 - 2.0 * lut, -1.0, 1.0)) / 3.0)
    elif tone_curve != "srgb":
        raise ValueError(f"unknown tone curve {tone_curve!r}; valid: srgb, srgb-smoothstep")
    return srgb_to_linear_np(lut)[frame]
