"""Synthetic video with exact ground truth from linear HDR panoramas.

A virtual pinhole camera pans and shakes over an equirectangular HDR panorama. The camera only
rotates, so every frame is an exact reprojection of the panorama (no parallax, no holes) and the
homography between any two frames is known: ``H = K R_b^T R_a K^-1``. Optional motion blur
averages sub-frame reprojections over the exposure in linear light (as the synthesis engine's
rotational shake does). An auto-exposure loop (target mean, metering lag, overshoot, hunting
oscillation, jitter) sets each frame's exposure from earlier frames, and the camera of
:mod:`deblurkit.highlights.camera` adds noise, clips, applies the tone curve and quantises to 8 bits.

Conventions: camera and world axes are x right, y down, z forward; a camera-to-world rotation
``R`` maps a camera ray to a world direction. Longitude ``atan2(x, z)`` and latitude
``atan2(-y, hypot(x, z))`` index the panorama: column ``u = (lon / 2pi + 0.5) W - 0.5``, row
``v = (0.5 - lat / pi) H - 0.5`` (pixel centres at integers). Rotations come from
:func:`deblurkit.synth.trajectory.rotation_matrices` over (yaw, pitch, roll).

Ground truth of a frame is its linear radiance (``VideoFrame.radiance``, panorama units, blurred
like the frame when motion blur is on); ``radiance * exposure`` is in sensor units, where 1 is
the clipping level.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from deblurkit.color import luminance
from deblurkit.errors import DeblurkitError, UnknownNameError
from deblurkit.highlights.camera import CameraConfig, capture_srgb8, sample_camera
from deblurkit.synth.trajectory import rotation_matrices

#: Panoramas of ``../shared/data/hdr`` used for training / held out for testing (fixed lists).
TRAIN_PANORAMAS: tuple[str, ...] = ("city", "dawn", "park", "studio", "sunset", "warehouse")
TEST_PANORAMAS: tuple[str, ...] = ("lobby", "night")

def load_panorama_linear(path: str | Path) -> np.ndarray:
    """Read an equirectangular Radiance ``.hdr`` (or any float image OpenCV reads) as linear RGB.

    Returns:
        ``(H, W, 3)`` float32 linear radiance, non-negative.

    Raises:
        DeblurkitError: unreadable or not a 3-channel float image.
    """
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] < 3 or img.dtype != np.float32:
        raise DeblurkitError(f"{path}: not a readable HDR (float RGB) panorama")
    return np.ascontiguousarray(img[..., 2::-1]).clip(0.0, None)


def intrinsics(height: int, width: int, hfov_deg: float) -> np.ndarray:
    """Pinhole ``K`` (3x3 float64) with the principal point at the image centre."""
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation ``Rz(roll) Ry(yaw) Rx(pitch)`` (radians) as a 3x3 float64 array."""
    a = torch.tensor([[yaw, pitch, roll]], dtype=torch.float64)
    return rotation_matrices(a)[0].numpy()


def direction_to_equirect(dirs: np.ndarray, pano_height: int, pano_width: int) -> tuple[np.ndarray, np.ndarray]:
    """World directions ``(..., 3)`` -> panorama pixel coordinates ``(u, v)`` (u not wrapped)."""
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    lon = np.arctan2(x, z)
    lat = np.arctan2(-y, np.hypot(x, z))
    u = (lon / (2 * math.pi) + 0.5) * pano_width - 0.5
    v = (0.5 - lat / math.pi) * pano_height - 0.5
    return u, v


def equirect_to_direction(u: np.ndarray, v: np.ndarray, pano_height: int, pano_width: int) -> np.ndarray:
    """Inverse of :func:`direction_to_equirect`: unit world directions ``(..., 3)``."""
    lon = ((np.asarray(u) + 0.5) / pano_width - 0.5) * 2 * math.pi
    lat = (0.5 - (np.asarray(v) + 0.5) / pano_height) * math.pi
    return np.stack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)], axis=-1)


def frame_homography(rot_from: np.ndarray, rot_to: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Homography mapping pixels of the frame taken with ``rot_from`` to the frame taken with ``rot_to``.

    ``H = K R_to^T R_from K^-1`` (exact for a rotating pinhole camera); use it with
    ``cv2.warpPerspective(image_from, H, ...)`` to align ``image_from`` to the other frame.
    """
    return k @ rot_to.T @ rot_from @ np.linalg.inv(k)


def prepare_panorama_linear(pano: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Low-pass a panorama so that rendering with focal length ``K[0, 0]`` does not alias.

    When a camera pixel spans more than 1.25 panorama pixels (at the image centre) the panorama
    is area-downsampled to about one panorama pixel per camera pixel; otherwise it is returned
    unchanged (bilinear upsampling needs no filter).
    """
    import cv2

    h, w = pano.shape[:2]
    ratio = (w / (2 * math.pi)) / float(k[0, 0])  # panorama px per camera px
    if ratio <= 1.25:
        return pano
    nw = max(8, round(w / ratio))
    nh = max(4, round(h * nw / w))
    return cv2.resize(pano, (nw, nh), interpolation=cv2.INTER_AREA)


def render_view_linear(pano: np.ndarray, rotation: np.ndarray, k: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Reproject an equirectangular panorama into a pinhole view (bilinear, wrap-around in longitude).

    Args:
        pano: ``(Hp, Wp, 3)`` float32 linear radiance.
        rotation: camera-to-world 3x3.
        k: intrinsics for the output.
        size: output ``(height, width)``.

    Returns:
        ``(height, width, 3)`` float32 linear radiance.
    """
    import cv2

    h, w = size
    ph, pw = pano.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ np.linalg.inv(k).T
    u, v = direction_to_equirect(rays @ rotation.T, ph, pw)
    pad = 2
    padded = np.concatenate([pano[:, -pad:], pano, pano[:, :pad]], axis=1)
    padded = np.concatenate([padded[:1].repeat(pad, 0), padded, padded[-1:].repeat(pad, 0)], axis=0)
    map_x = (np.mod(u + 0.5, pw) - 0.5 + pad).astype(np.float32)
    map_y = (np.clip(v, -0.5, ph - 0.5) + pad).astype(np.float32)
    return cv2.remap(padded, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# ----------------------------------------------------------------------------------- camera path
@dataclass(frozen=True)
class CameraPath:
    """A smooth pan plus hand shake, evaluated at any time (in frames).

    ``angles(t) = start + pan * t + wobble(t) + shake(t)``, where wobble is a slow pitch
    sinusoid and shake a sum of random sinusoids (radians).
    """

    start: tuple[float, float, float]
    pan_per_frame: tuple[float, float, float]
    wobble_amp: float
    wobble_period: float
    wobble_phase: float
    shake: tuple[tuple[float, float, float, float], ...]
    """Per component: (axis, amplitude rad, period in frames, phase)."""

    def angles(self, t: np.ndarray) -> np.ndarray:
        """``(T, 3)`` (yaw, pitch, roll) radians at times ``t`` ``(T,)`` (frames)."""
        t = np.asarray(t, dtype=np.float64)
        out = np.asarray(self.start)[None] + np.asarray(self.pan_per_frame)[None] * t[:, None]
        out[:, 1] += self.wobble_amp * np.sin(2 * math.pi * t / self.wobble_period + self.wobble_phase)
        for axis, amp, period, phase in self.shake:
            out[:, int(axis)] += amp * np.sin(2 * math.pi * t / period + phase)
        return out

    def rotation(self, t: float) -> np.ndarray:
        """Camera-to-world rotation at time ``t`` (frames)."""
        return rotation_from_angles(*self.angles(np.array([t]))[0])


@dataclass(frozen=True)
class MotionConfig:
    """Camera motion of a clip (ranges sampled uniformly; angles in degrees)."""

    pan_deg_per_frame: tuple[float, float] = (-1.5, 1.5)
    pitch_deg: tuple[float, float] = (-10.0, 20.0)
    wobble_deg: float = 2.0
    shake_deg: float = 0.3
    """Amplitude of each of the six shake sinusoids (two per axis)."""
    shake_period_frames: tuple[float, float] = (3.0, 20.0)


def sample_camera_path(config: MotionConfig, rng: np.random.Generator) -> CameraPath:
    """Draw a :class:`CameraPath` (a pure function of ``rng``)."""
    r = math.radians
    pan = rng.uniform(*config.pan_deg_per_frame)
    shake = tuple(
        (float(axis), r(config.shake_deg) * (0.3 if axis == 2 else 1.0) * rng.uniform(0.5, 1.0),
         rng.uniform(*config.shake_period_frames), rng.uniform(0, 2 * math.pi))
        for axis in (0, 0, 1, 1, 2, 2)
    )
    return CameraPath(
        start=(rng.uniform(-math.pi, math.pi), r(rng.uniform(*config.pitch_deg)), 0.0),
        pan_per_frame=(r(pan), 0.0, 0.0),
        wobble_amp=r(config.wobble_deg) * rng.uniform(0.0, 1.0),
        wobble_period=rng.uniform(40.0, 120.0),
        wobble_phase=rng.uniform(0, 2 * math.pi),
        shake=shake,
    )


# --------------------------------------------------------------------------------- auto-exposure
@dataclass(frozen=True)
class AutoExposureConfig:
    """An auto-exposure controller (log2 domain) with realistic faults."""

    target_mean: float = 0.18
    """Target mean of the clipped linear luminance (mid grey)."""
    gain: float = 0.3
    """Fraction of the metered log-exposure error corrected per frame."""
    momentum: float = 0.0
    """Velocity carried over from the previous correction: > 0 gives overshoot and ringing."""
    delay_frames: int = 1
    """Metering lag: the exposure of frame t is set from frame t - delay (>= 1)."""
    jitter_ev: float = 0.02
    """Standard deviation of per-frame random exposure noise (EV = log2 units)."""
    hunt_ev: float = 0.0
    """Amplitude (EV) of a hunting oscillation added to the commanded exposure."""
    hunt_period_frames: float = 16.0
    """Period of the hunting oscillation."""
    min_ev: float = -14.0
    max_ev: float = 10.0
    """Bounds of log2(exposure)."""
    initial_error_ev: float = 1.0
    """The first frame's exposure is off its metered ideal by U(-x, x) EV."""


#: Named controllers: a steady one and one that overshoots and hunts.
AUTO_EXPOSURE_PRESETS: dict[str, AutoExposureConfig] = {
    "steady": AutoExposureConfig(),
    "oscillating": AutoExposureConfig(gain=0.5, momentum=0.6, delay_frames=2, jitter_ev=0.05, hunt_ev=1.0),
}


@dataclass(frozen=True)
class AutoExposureState:
    """Controller state between frames."""

    log2_exposure: float
    velocity: float = 0.0
    history: tuple[tuple[float, float], ...] = ()
    """(log2 exposure, metered mean) of recent frames, newest last."""
    frame: int = 0
    hunt_phase: float = 0.0


def meter_linear(exposed_linear: np.ndarray) -> float:
    """Mean clipped luminance of an exposed linear frame ``(H, W, 3)`` (what the camera meters)."""
    return float(luminance(np.clip(exposed_linear, 0.0, 1.0)).mean())


def init_auto_exposure(
    radiance_linear: np.ndarray, config: AutoExposureConfig, rng: np.random.Generator
) -> AutoExposureState:
    """First state: the exposure that meters the first view at the target, off by a random error."""
    y = max(float(luminance(radiance_linear).mean()), 1e-8)
    ev = math.log2(config.target_mean / y) + rng.uniform(-config.initial_error_ev, config.initial_error_ev)
    return AutoExposureState(float(np.clip(ev, config.min_ev, config.max_ev)),
                             hunt_phase=rng.uniform(0, 2 * math.pi))


def auto_exposure_step(
    state: AutoExposureState, metered_mean: float, config: AutoExposureConfig, rng: np.random.Generator
) -> AutoExposureState:
    """Record the meter reading of the frame just taken and set the next frame's exposure.

    The controller sees the reading of ``delay_frames`` frames ago, computes the exposure that
    would have hit the target then (``log2 e + log2(target / meter)``, the meter saturating at
    clipping) and moves towards it: ``v = momentum * v + gain * (ideal - log2 e)``; the next
    exposure is ``log2 e + v`` plus jitter, plus a hunting sinusoid, clamped to the bounds.

    Args:
        state: current state (its exposure is the one the frame was taken with).
        metered_mean: :func:`meter_linear` of that frame.
        config: controller.
        rng: jitter source.

    Returns:
        The next state; ``2 ** state.log2_exposure`` is the next frame's exposure.
    """
    delay = max(1, int(config.delay_frames))
    base = state.log2_exposure - config.hunt_ev * math.sin(
        2 * math.pi * state.frame / config.hunt_period_frames + state.hunt_phase)
    history = (*state.history, (base, max(metered_mean, 1e-6)))[-delay:]
    velocity = state.velocity
    if len(history) == delay:
        ev_then, meter_then = history[0]
        ideal = ev_then + math.log2(config.target_mean / meter_then)
        velocity = config.momentum * velocity + config.gain * (ideal - base)
    nxt = base + velocity + config.jitter_ev * float(rng.standard_normal())
    nxt = float(np.clip(nxt, config.min_ev, config.max_ev))
    frame = state.frame + 1
    hunt = config.hunt_ev * math.sin(2 * math.pi * frame / config.hunt_period_frames + state.hunt_phase)
    return AutoExposureState(float(np.clip(nxt + hunt, config.min_ev, config.max_ev)), velocity, history,
                             frame, state.hunt_phase)


# ------------------------------------------------------------------------------------------ video
@dataclass(frozen=True)
class VideoConfig:
    """Everything that defines a synthetic clip besides the panorama and the RNG."""

    height: int = 144
    width: int = 256
    hfov_deg: float = 90.0
    frames: int = 48
    motion: MotionConfig = field(default_factory=MotionConfig)
    motion_blur: bool = True
    shutter: float = 0.5
    """Exposure time as a fraction of the frame interval (blur length)."""
    max_subframes: int = 16
    auto_exposure: AutoExposureConfig = field(default_factory=AutoExposureConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)


@dataclass(frozen=True)
class VideoFrame:
    """One frame and its ground truth.

    Attributes:
        index: frame number.
        srgb8: ``(H, W, 3)`` uint8, what the camera recorded.
        radiance: ``(H, W, 3)`` float32 linear scene radiance (panorama units), blurred like the frame.
        exposure: the frame's exposure; ``radiance * exposure`` is in sensor units (1 = clipping).
        rotation: camera-to-world rotation at mid-exposure.
        k: intrinsics.
    """

    index: int
    srgb8: np.ndarray
    radiance: np.ndarray
    exposure: float
    rotation: np.ndarray
    k: np.ndarray

    @property
    def truth_linear(self) -> np.ndarray:
        """Unclipped, noise-free linear frame in sensor units (1 = clipping level)."""
        return self.radiance * np.float32(self.exposure)


def _exposure_radiance(pano: np.ndarray, path: CameraPath, t: float, k: np.ndarray, config: VideoConfig) -> np.ndarray:
    size = (config.height, config.width)
    if not config.motion_blur or config.shutter <= 0:
        return render_view_linear(pano, path.rotation(t), k, size)
    half = 0.5 * config.shutter
    r0, r1 = path.rotation(t - half), path.rotation(t + half)
    corners = np.array([[0, 0, 1], [config.width - 1, 0, 1], [0, config.height - 1, 1],
                        [config.width - 1, config.height - 1, 1], [(config.width - 1) / 2, (config.height - 1) / 2, 1]])
    p = corners @ frame_homography(r0, r1, k).T
    travel = float(np.abs(p[:, :2] / p[:, 2:] - corners[:, :2]).max())
    n = int(min(config.max_subframes, max(1, math.ceil(travel) + 1)))
    if n == 1:
        return render_view_linear(pano, path.rotation(t), k, size)
    acc = np.zeros((*size, 3), np.float32)
    for s in np.linspace(t - half, t + half, n):
        acc += render_view_linear(pano, path.rotation(float(s)), k, size)
    return acc / np.float32(n)


def generate_video(pano: np.ndarray, config: VideoConfig, rng: np.random.Generator) -> Iterator[VideoFrame]:
    """Frames of a synthetic clip, one at a time (memory does not grow with the clip length).

    Args:
        pano: ``(Hp, Wp, 3)`` float32 linear equirectangular panorama (:func:`load_panorama_linear`).
        config: clip settings.
        rng: the only source of randomness (path, exposure errors, camera, noise).

    Yields:
        :class:`VideoFrame` for ``config.frames`` frames.
    """
    if config.height % 2 or config.width % 2:
        raise ValueError(f"frame size must be even, got {config.height}x{config.width}")
    k = intrinsics(config.height, config.width, config.hfov_deg)
    pano = prepare_panorama_linear(pano, k)
    path = sample_camera_path(config.motion, rng)
    noise_gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    camera = sample_camera(config.camera, noise_gen)
    state: AutoExposureState | None = None
    for i in range(config.frames):
        radiance = _exposure_radiance(pano, path, float(i), k, config)
        if state is None:
            state = init_auto_exposure(radiance, config.auto_exposure, rng)
        exposure = 2.0 ** state.log2_exposure
        exposed = radiance * np.float32(exposure)
        frame = capture_srgb8(exposed, camera, noise_gen)
        yield VideoFrame(i, frame, radiance, float(exposure), path.rotation(float(i)), k)
        state = auto_exposure_step(state, meter_linear(exposed), config.auto_exposure, rng)


def with_auto_exposure(config: VideoConfig, preset: str) -> VideoConfig:
    """``config`` with a named controller of :data:`AUTO_EXPOSURE_PRESETS`."""
    if preset not in AUTO_EXPOSURE_PRESETS:
        raise UnknownNameError("auto-exposure preset", preset, list(AUTO_EXPOSURE_PRESETS))
    return replace(config, auto_exposure=AUTO_EXPOSURE_PRESETS[preset])
