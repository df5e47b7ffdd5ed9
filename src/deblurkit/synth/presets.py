"""Synthesis presets: flat, typed, frozen configs.

Make variants with :func:`dataclasses.replace`, e.g.
``replace(get_preset("realistic"), spatially_varying_prob=0.0)`` for uniform blur only (so
every pair carries its PSF, for non-blind baselines).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from deblurkit.errors import UnknownNameError


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of :func:`deblurkit.synth.pipeline.synthesize_pair`. Ranges are sampled uniformly."""

    name: str = "realistic"
    """Preset name (recorded in each pair's parameters)."""
    degradation: Literal["motion", "realesrgan"] = "motion"
    """``motion``: camera-shake blur + optional sensor/ISP model; ``realesrgan``: Real-ESRGAN's
    second-order blur/resize/noise/JPEG pipeline (all fields below except ``name`` are ignored)."""

    # --- blur ---
    blur_space: Literal["linear", "srgb"] = "linear"
    """Where blur is averaged: ``linear`` light (physical) or directly on sRGB values (the naive shortcut)."""
    trajectory: Literal["random-walk", "linear", "recorded"] = "random-walk"
    """Shape of the shake: Boracchi-Foi style random walk, a straight line (a 'simple kernel'), or
    ``recorded``: a measured PSF from ``psf_dir`` (uniform blur; the length, anxiety and
    spatially varying settings are then unused)."""
    psf_dir: str | None = None
    """Folder of measured PSFs for ``trajectory="recorded"`` (float ``.npy`` or grayscale PNG, any
    scale; see :func:`deblurkit.synth.blur.load_psf_bank`). Each blur is one of them, drawn
    uniformly, in one of its 8 orientations (quarter turns, each also mirrored)."""
    blur_length_px: tuple[float, float] = (3.0, 31.0)
    """Path length of the shake in pixels (at the image centre for rotational shake)."""
    anxiety: tuple[float, float] = (0.005, 0.1)
    """Shake intensity of the random walk (0 = straight line)."""
    trajectory_steps: int = 64
    """Time samples per exposure."""
    pause_prob: float = 0.0
    """Probability that a uniform (2-D) random-walk shake pauses: two moments of the exposure,
    each holding a share (``pause_share``) of its time at one point of the path
    (:func:`deblurkit.synth.trajectory.retime_with_pauses`). The random walk moves at constant
    speed; a hand slows almost to a stop where it turns, which shows as bright points in real
    kernels. 0 keeps every other draw of a preset unchanged."""
    pause_share: tuple[float, float] = (0.15, 0.30)
    """Range of the share of the exposure time each pause holds."""
    spatially_varying_prob: float = 0.5
    """Probability of 3-D rotational shake (spatially varying blur; ``kernel`` is then None)
    instead of a uniform 2-D PSF."""
    focal_length_factor: tuple[float, float] = (0.7, 1.6)
    """Focal length in units of the crop's longer side (~24-50 mm full-frame equivalent for a
    crop spanning the frame)."""
    roll_fraction: float = 0.3
    """Relative strength of in-plane rotation (roll) in rotational shake."""
    align_centroid: bool = True
    """Centre the PSF (or the mean pose) so the sharp target is not shifted relative to the blur."""

    # --- saturation ---
    saturation_prob: float = 0.0
    """Probability of the saturation model (RSBlur): linear += alpha * mask before blur, clip after."""
    saturation_alpha: tuple[float, float] = (0.25, 1.75)
    """Range of alpha."""
    saturation_threshold: float = 0.98
    """Linear value above which a channel counts as clipped (mask ramps from here to 1)."""

    # --- sensor and camera pipeline ---
    camera_pipeline: bool = False
    """Run the raw round trip: CCM, inverse WB, mosaic, noise, demosaic, WB, CCM back."""
    cameras: tuple[str, ...] = (
        "unprocessing-1",
        "unprocessing-2",
        "unprocessing-3",
        "unprocessing-4",
        "sony-a7r3",
    )
    """Camera matrices mixed (random convex combination) for linear sRGB <-> camera RGB."""
    red_gain: tuple[float, float] = (1.9, 2.4)
    """White-balance red gain range (undone before mosaic, reapplied after demosaic)."""
    blue_gain: tuple[float, float] = (1.5, 1.9)
    """White-balance blue gain range."""
    noise_model: Literal["none", "unprocessing", "rsblur-realblur", "rsblur-rsblur"] = "none"
    """Raw noise level distribution (see :func:`deblurkit.synth.isp.sample_noise_levels`)."""
    poisson: bool = True
    """Exact Poisson shot noise (else its Gaussian approximation)."""
    tone_curve: Literal["srgb", "srgb-smoothstep"] = "srgb"
    """Final tone curve, applied to blur and sharp alike: sRGB gamma, or gamma then a smoothstep
    S-curve (a generic camera response)."""
    jpeg_prob: float = 0.0
    """Probability of a JPEG round trip of the blurred image."""
    jpeg_quality: tuple[int, int] = (60, 95)
    """JPEG quality range (inclusive)."""
    trim: int = 0
    """Pixels trimmed from each side of blur and sharp (demosaic border artefacts); callers crop
    ``size + 2 * trim`` to get ``size``."""


PRESETS: dict[str, SynthConfig] = {
    "naive": SynthConfig(
        name="naive",
        blur_space="srgb",
        trajectory="linear",
        spatially_varying_prob=0.0,
        blur_length_px=(3.0, 31.0),
    ),
    "gopro": SynthConfig(name="gopro", spatially_varying_prob=0.5),
    "realistic": SynthConfig(
        name="realistic",
        spatially_varying_prob=0.5,
        saturation_prob=0.5,
        camera_pipeline=True,
        noise_model="unprocessing",
        poisson=False,  # "Unprocessing" samples its levels for the heteroscedastic Gaussian model
        jpeg_prob=0.3,
        trim=4,
    ),
    "realesrgan": SynthConfig(name="realesrgan", degradation="realesrgan"),
}
PRESETS["realistic-no-noise"] = replace(PRESETS["realistic"], name="realistic-no-noise", noise_model="none")
PRESETS["realistic-no-saturation"] = replace(
    PRESETS["realistic"], name="realistic-no-saturation", saturation_prob=0.0
)
PRESETS["realistic-uniform"] = replace(
    PRESETS["realistic"], name="realistic-uniform", spatially_varying_prob=0.0
)


def get_preset(name: str) -> SynthConfig:
    """Look up a preset by name.

    Raises:
        UnknownNameError: ``name`` is not a key of :data:`PRESETS`.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError("preset", name, list(PRESETS)) from None
