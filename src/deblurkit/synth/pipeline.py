"""The synthesis pipeline: a sharp sRGB image in, an aligned (blurry, sharp) pair out.

Stages for the ``motion`` degradation (each is a function in this package, usable alone):

1. sRGB -> linear light (:func:`~deblurkit.synth.color.srgb_to_linear`), unless ``blur_space="srgb"``.
2. Shake: a uniform PSF from a 2-D trajectory (:func:`~deblurkit.synth.blur.render_psf`), a
   measured PSF from ``psf_dir`` (``trajectory="recorded"``), or 3-D rotational shake as
   homographies ``K R(t) K^-1`` (spatially varying).
3. Saturation: ``linear += alpha * mask`` on clipped pixels (RSBlur), so highlights smear into
   bright streaks; clipped to [0, 1] after blurring.
4. Blur: FFT convolution (uniform) or averaging of warped copies (spatially varying).
5. Camera pipeline: linear sRGB -> camera RGB (random mix of real cameras' matrices), inverse
   white balance, Bayer mosaic, Poisson-Gaussian noise, Malvar demosaic, white balance, camera
   RGB -> linear sRGB, clip.
6. Tone curve (sRGB gamma, optionally an S-curve) applied to blur *and* sharp; optional JPEG.
7. Trim ``trim`` pixels per side from both.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from deblurkit.synth import blur as blur_ops
from deblurkit.synth import isp
from deblurkit.synth import trajectory as traj_ops
from deblurkit.synth.color import (
    apply_color_matrix,
    linear_to_srgb,
    rgb_to_cam_matrix,
    smoothstep,
    srgb_to_linear,
)
from deblurkit.synth.presets import SynthConfig
from deblurkit.synth.trajectory import uniform

#: Largest distance (px) a scene point may travel between two consecutive warped copies.
MAX_WARP_STEP_PX = 1.0
MAX_WARPS = 128


@dataclass
class SynthPair:
    """One synthesized batch.

    Attributes:
        blur: ``(B, 3, h, w)`` float32 sRGB in [0, 1], the degraded input.
        sharp: ``(B, 3, h, w)`` float32 sRGB in [0, 1], the aligned target (re-toned and trimmed
            like ``blur``).
        kernel: ``(B, 1, k, k)`` float32 PSFs summing to 1 (in the space the blur was applied,
            linear light except for ``naive``) when every item has uniform blur; else None.
        params: one JSON-serialisable dict per item with every sampled parameter.
    """

    blur: Tensor
    sharp: Tensor
    kernel: Tensor | None
    params: list[dict[str, Any]] = field(default_factory=list)


def _r(x: float, nd: int = 6) -> float:
    return float(f"{x:.{nd}g}")


def _coin(generator: torch.Generator, p: float) -> bool:
    # Always draw, so the random stream does not depend on p.
    return float(torch.rand((), generator=generator, dtype=torch.float64)) < p


def saturation_mask_linear(x: Tensor, threshold: float) -> Tensor:
    """Soft per-channel mask of clipped pixels: 0 below ``threshold``, ramping to 1 at 1.0."""
    return ((x - threshold) / max(1e-6, 1.0 - threshold)).clamp(0.0, 1.0)


def sample_shake(
    config: SynthConfig, image_size: tuple[int, int], generator: torch.Generator
) -> tuple[dict[str, Any], Tensor | None, Tensor | None]:
    """Sample the camera shake for one image.

    Returns:
        ``(params, kernel, homographies)``: exactly one of ``kernel`` ``(k, k)`` and
        ``homographies`` ``(T, 3, 3)`` is not None.
    """
    h, w = image_size
    if config.trajectory == "recorded":
        return _recorded_shake(config, generator)
    length = uniform(generator, *config.blur_length_px)
    p: dict[str, Any] = {"blur_length_px": _r(length)}
    if config.trajectory == "linear":
        angle = uniform(generator, 0.0, math.pi)
        xy = traj_ops.linear_trajectory_2d(length, angle)
        p.update(blur_type="uniform", trajectory="linear", angle_rad=_r(angle))
        return p, blur_ops.render_psf(xy, align_centroid=config.align_centroid), None
    anxiety = uniform(generator, *config.anxiety)
    walk = {
        "jerk_rate": uniform(generator, 0.0, 0.2),
        "centripetal": uniform(generator, 0.0, 0.7),
        "gaussian_term": uniform(generator, 0.0, 10.0),
    }
    p.update(anxiety=_r(anxiety), **{k: _r(v) for k, v in walk.items()})
    if _coin(generator, config.spatially_varying_prob):
        focal = uniform(generator, *config.focal_length_factor) * max(h, w)
        unit = traj_ops.random_walk(config.trajectory_steps, 3, generator, anxiety=anxiety, **walk)
        corner_radius = 0.5 * math.hypot(h, w)
        scale = torch.tensor(
            [length / focal, length / focal, config.roll_fraction * length / corner_radius],
            dtype=torch.float64,
        )
        angles = unit * scale
        if config.align_centroid:
            angles = angles - angles.mean(0)
        full = traj_ops.rotation_homographies(angles, focal, (h, w))
        path = traj_ops.homography_path_length(full, (h, w))
        n = min(MAX_WARPS, max(2, math.ceil(path / MAX_WARP_STEP_PX) + 1))
        homs = traj_ops.rotation_homographies(traj_ops.resample_trajectory(angles, n), focal, (h, w))
        p.update(
            blur_type="rotational",
            focal_px=_r(focal),
            max_path_px=_r(path),
            warps=n,
            angles_rad=[[_r(v, 5) for v in row] for row in angles.tolist()],
        )
        return p, None, homs
    xy = traj_ops.random_walk(config.trajectory_steps, 2, generator, anxiety=anxiety, **walk) * length
    p.update(
        blur_type="uniform",
        trajectory="random-walk",
        trajectory_px=[[_r(v, 5) for v in row] for row in xy.tolist()],
    )
    exposure = xy
    # Drawn only when enabled, so presets without pauses keep their random streams.
    if config.pause_prob > 0 and _coin(generator, config.pause_prob):
        pauses = traj_ops.random_pauses(generator, config.pause_share)
        exposure = traj_ops.retime_with_pauses(xy, pauses)
        p.update(pauses=[[_r(at), _r(share)] for at, share in pauses])
    return p, blur_ops.render_psf(exposure, align_centroid=config.align_centroid), None


@functools.lru_cache(maxsize=4)
def _psf_bank(folder: str) -> list[tuple[str, Tensor]]:
    return blur_ops.load_psf_bank(folder)


def _recorded_shake(config: SynthConfig, generator: torch.Generator) -> tuple[dict[str, Any], Tensor, None]:
    """A measured PSF of ``config.psf_dir`` in a random one of its 8 orientations."""
    if not config.psf_dir:
        raise ValueError('trajectory="recorded" needs psf_dir, a folder of measured PSFs')
    bank = _psf_bank(str(config.psf_dir))
    index = int(torch.randint(len(bank), (), generator=generator))
    orientation = int(torch.randint(8, (), generator=generator))
    name, psf = bank[index]
    psf = torch.rot90(psf, orientation % 4)
    if orientation >= 4:
        psf = psf.flip(-1)
    p = {"blur_type": "uniform", "trajectory": "recorded", "psf": name, "psf_orientation": orientation}
    return p, psf.clone(), None  # a copy: the caller may change the kernel, the cached bank stays


def _validate(sharp_srgb: Tensor, config: SynthConfig) -> None:
    if not isinstance(sharp_srgb, Tensor) or sharp_srgb.ndim != 4 or sharp_srgb.shape[1] != 3:
        shape = tuple(sharp_srgb.shape) if isinstance(sharp_srgb, Tensor) else type(sharp_srgb).__name__
        raise ValueError(f"sharp_srgb must be a (B, 3, H, W) tensor, got {shape}")
    if sharp_srgb.dtype != torch.float32:
        raise ValueError(f"sharp_srgb must be float32, got {sharp_srgb.dtype}")
    h, w = sharp_srgb.shape[-2:]
    if min(h, w) <= 2 * config.trim + 8:
        raise ValueError(f"image {h}x{w} too small for trim={config.trim}")
    if config.camera_pipeline and (h % 2 or w % 2):
        raise ValueError(f"the camera pipeline needs even height and width, got {h}x{w}")
    if not 0.0 <= config.pause_prob <= 1.0 or not 0.0 <= config.pause_share[0] <= config.pause_share[1] < 0.5:
        raise ValueError(f"pause_prob must be in [0, 1] and pause_share a range within [0, 0.5) "
                         f"(two pauses share the exposure), got {config.pause_prob}, {config.pause_share}")


def _synthesize_one(
    x: Tensor, config: SynthConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor | None, dict]:
    h, w = x.shape[-2:]
    # One generator per stage, so switching a stage off (a study variant) leaves the random
    # draws of every other stage unchanged: same seed => same shake, camera, ... across presets.
    seeds = torch.randint(0, 2**62, (5,), generator=generator).tolist()
    g_shake, g_sat, g_cam, g_noise, g_jpeg = (torch.Generator().manual_seed(int(s)) for s in seeds)
    linear = config.blur_space == "linear"
    scene = srgb_to_linear(x) if linear else x
    p: dict[str, Any] = {"preset": config.name, "blur_space": config.blur_space}
    shake, kernel, homs = sample_shake(config, (h, w), g_shake)
    p.update(shake)

    if linear and _coin(g_sat, config.saturation_prob):
        alpha = uniform(g_sat, *config.saturation_alpha)
        mask = saturation_mask_linear(scene, config.saturation_threshold)
        source = scene + alpha * mask
        p.update(
            saturation=True,
            saturation_alpha=_r(alpha),
            saturated_fraction=_r(float((mask > 0).float().mean())),
        )
    else:
        source = scene
        p["saturation"] = False

    if kernel is not None:
        blurred = blur_ops.convolve_fft(source, kernel[None, None])
    else:
        blurred = blur_ops.warp_average(source, [homs])
    blurred = blurred.clamp(0.0, 1.0)
    target = scene.clamp(0.0, 1.0)

    shot, read = isp.sample_noise_levels(config.noise_model, g_noise)
    if config.camera_pipeline:
        weights = {c: uniform(g_cam, 1e-3, 1.0) for c in config.cameras}
        total = sum(weights.values())
        rgb2cam = rgb_to_cam_matrix(weights)
        cam2rgb = torch.linalg.inv(rgb2cam.double()).float()
        r_gain = uniform(g_cam, *config.red_gain)
        b_gain = uniform(g_cam, *config.blue_gain)
        pattern = isp.BAYER_PATTERNS[int(torch.randint(4, (), generator=g_cam))]
        gains = torch.tensor([r_gain, 1.0, b_gain], dtype=torch.float32).view(1, 3, 1, 1)
        cam = apply_color_matrix(blurred, rgb2cam) / gains
        raw = isp.mosaic_bayer(cam, pattern)
        if config.noise_model != "none":
            noisy = isp.add_poisson_gaussian_noise(
                raw, torch.tensor([shot]), torch.tensor([read]), g_noise, poisson=config.poisson
            )
            clipped = isp.mosaic_bayer((blurred >= 1.0).float(), pattern) > 0  # clipped pixels carry no noise
            raw = torch.where(clipped, raw, noisy)
        raw = raw.clamp(0.0, 1.0)
        rgb = isp.demosaic_malvar(raw, pattern) * gains
        out_linear = apply_color_matrix(rgb, cam2rgb).clamp(0.0, 1.0)
        p.update(
            camera_weights={k: _r(v / total) for k, v in weights.items()},
            red_gain=_r(r_gain),
            blue_gain=_r(b_gain),
            bayer_pattern=pattern,
        )
    else:
        out_linear = blurred
        if config.noise_model != "none":
            out_linear = isp.add_poisson_gaussian_noise(
                blurred, torch.tensor([shot]), torch.tensor([read]), g_noise, poisson=config.poisson
            ).clamp(0.0, 1.0)
    p.update(noise_model=config.noise_model, shot_noise=_r(shot), read_noise_var=_r(read))

    if linear:
        # linear_to_srgb(srgb_to_linear(x).clamp(0, 1)) is x.clamp(0, 1): skip the round trip.
        blur_srgb, sharp_srgb = linear_to_srgb(out_linear), x.clamp(0.0, 1.0)
    else:
        blur_srgb, sharp_srgb = out_linear, target
    if config.tone_curve == "srgb-smoothstep":
        blur_srgb, sharp_srgb = smoothstep(blur_srgb), smoothstep(sharp_srgb)
    p["tone_curve"] = config.tone_curve
    blur_srgb, sharp_srgb = blur_srgb.clamp(0.0, 1.0), sharp_srgb.clamp(0.0, 1.0)
    if _coin(g_jpeg, config.jpeg_prob):
        q = int(torch.randint(config.jpeg_quality[0], config.jpeg_quality[1] + 1, (), generator=g_jpeg))
        blur_srgb = isp.jpeg_roundtrip_srgb(blur_srgb, q)
        p["jpeg_quality"] = q
    else:
        p["jpeg_quality"] = None
    t = config.trim
    if t:
        blur_srgb, sharp_srgb = blur_srgb[..., t:-t, t:-t], sharp_srgb[..., t:-t, t:-t]
    p["trim"] = t
    return blur_srgb.contiguous(), sharp_srgb.contiguous(), kernel, p


def synthesize_pair(sharp_srgb: Tensor, config: SynthConfig, generator: torch.Generator) -> SynthPair:
    """Synthesize a realistic blurry image for each sharp image of a batch.

    Args:
        sharp_srgb: ``(B, 3, H, W)`` float32 sRGB in [0, 1]. H and W must be even when the
            camera pipeline is on.
        config: a preset from :data:`deblurkit.synth.presets.PRESETS` or a variant of one.
        generator: the only source of randomness (same seed => same pair).

    Returns:
        A :class:`SynthPair` with ``blur``/``sharp`` of shape ``(B, 3, H - 2 trim, W - 2 trim)``.

    Example:
        >>> from deblurkit.synth.presets import get_preset
        >>> pair = synthesize_pair(torch.rand(1, 3, 64, 64), get_preset("gopro"), torch.Generator().manual_seed(0))
        >>> tuple(pair.blur.shape)
        (1, 3, 64, 64)
    """
    _validate(sharp_srgb, config)
    x = sharp_srgb.detach().cpu()
    if config.degradation == "realesrgan":
        from deblurkit.synth.realesrgan import degrade_realesrgan_srgb

        blur, params = degrade_realesrgan_srgb(x.clamp(0, 1), generator)
        for p in params:
            p["preset"] = config.name
        return SynthPair(blur=blur, sharp=x.clamp(0, 1).clone(), kernel=None, params=params)
    blurs, sharps, kernels, params = [], [], [], []
    for i in range(x.shape[0]):
        b, s, k, p = _synthesize_one(x[i : i + 1], config, generator)
        blurs.append(b)
        sharps.append(s)
        kernels.append(k)
        params.append(p)
    kernel = None if any(k is None for k in kernels) else blur_ops.pad_kernels(kernels)  # type: ignore[arg-type]
    return SynthPair(blur=torch.cat(blurs), sharp=torch.cat(sharps), kernel=kernel, params=params)
