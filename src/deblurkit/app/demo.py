"""Deblurring part of ``deblurkit demo``: before/after images for two bundled examples.

1. ``clock``: scikit-image's ``data.clock()``, a real photo with real camera motion blur
   (grayscale, 300x400). There is no sharp reference, so only before/after images are written.
2. ``synthetic``: a sharp scikit-image photo blurred with the ``realistic`` synthesis preset
   (:func:`deblurkit.synth.pipeline.synthesize_pair`, seeded); here the sharp target exists, so
   PSNR/SSIM of the blurry input and of the result against it go into ``summary.json``.

Files written under ``out_dir``: ``<example>-before.png``, ``<example>-after.png``,
``<example>-compare.png`` (side by side), ``synthetic-sharp.png`` and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def _synthetic_example(seed: int = 0, size: int = 256) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A realistic synthetic blurry/sharp pair from scikit-image's ``astronaut`` photo (center crop)."""
    import torch
    from skimage import data

    from deblurkit.synth.pipeline import synthesize_pair
    from deblurkit.synth.presets import get_preset

    img = data.astronaut().astype(np.float32) / 255.0  # 512x512 sRGB
    h, w = img.shape[:2]
    if not 32 <= size <= 384:
        raise ValueError(f"size must be in 32..384, got {size}")
    top, left = max(0, (h - size) // 2 - 60), (w - size) // 2
    crop = np.ascontiguousarray(img[top:top + size, left:left + size])
    x = torch.from_numpy(crop.transpose(2, 0, 1))[None]
    pair = synthesize_pair(x, get_preset("realistic"), torch.Generator().manual_seed(seed))
    blur = pair.blur[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)
    sharp = pair.sharp[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)
    return blur, sharp, pair.params[0]


def _scores(result: np.ndarray, target: np.ndarray) -> dict[str, float]:
    from deblurkit.eval.metrics import psnr, ssim

    return {"psnr": round(float(psnr(result, target, data_range=1.0)), 3),
            "ssim": round(float(ssim(result, target, data_range=1.0)), 4)}


def write_deblur_demo(out_dir: Path, *, model: str | None = None, loader=None, seed: int = 0,
                      synthetic_size: int = 256) -> None:
    """Deblur the bundled real ``clock`` photo and a realistic synthetic example; write before/after images.

    Args:
        out_dir: created if missing.
        model: restorer name (None: ``deblurkit.infer.DEFAULT_RESTORER``).
        loader: ``name -> restorer`` (default :func:`deblurkit.app.restore.make_loader` ()).
        seed: seed of the synthetic blur.
        synthetic_size: side of the sharp crop the synthetic example starts from (at most 384).
    """
    from skimage import data

    from deblurkit.app.photo_io import side_by_side
    from deblurkit.app.restore import default_restorer_name, make_loader, restore_pixels
    from deblurkit.io import save_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = model or default_restorer_name()
    restorer = (loader or make_loader())(name)
    summary: dict[str, Any] = {"restorer": name, "description": getattr(restorer, "description", ""), "examples": {}}

    clock = data.clock().astype(np.float32)[..., None] / 255.0  # (300, 400, 1), real motion blur
    t0 = time.perf_counter()
    clock_out = restore_pixels(clock, restorer)
    summary["examples"]["clock"] = {"source": "skimage.data.clock() (real camera motion blur)",
                                    "size": list(clock.shape[:2]), "seconds": round(time.perf_counter() - t0, 3)}
    save_png(out_dir / "clock-before.png", clock[..., 0])
    save_png(out_dir / "clock-after.png", clock_out[..., 0])
    save_png(out_dir / "clock-compare.png", side_by_side(clock, clock_out)[..., 0])

    blur, sharp, params = _synthetic_example(seed, synthetic_size)
    t0 = time.perf_counter()
    synth_out = restore_pixels(blur, restorer)
    entry: dict[str, Any] = {"source": "skimage.data.astronaut() crop, synthesized with preset 'realistic'",
                             "seed": seed, "size": list(blur.shape[:2]),
                             "seconds": round(time.perf_counter() - t0, 3), "synth_params": params}
    if blur.shape == sharp.shape:
        entry["blurry_vs_sharp"] = _scores(blur, sharp)
        entry["deblurred_vs_sharp"] = _scores(synth_out, sharp)
    summary["examples"]["synthetic"] = entry
    save_png(out_dir / "synthetic-sharp.png", sharp)
    save_png(out_dir / "synthetic-before.png", blur)
    save_png(out_dir / "synthetic-after.png", synth_out)
    save_png(out_dir / "synthetic-compare.png", side_by_side(blur, synth_out))

    from deblurkit.io import atomic_write

    with atomic_write(out_dir / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2, default=str)
        fh.write("\n")
