"""``deblurkit demo``: the README's main job.

:func:`write_synth_demo` synthesizes a small realistic dataset from scikit-image's bundled photos
and writes a contact sheet (``<out>/synth``). :func:`write_deblur_demo` deblurs two bundled
examples (``<out>/deblur``):

1. ``clock``: scikit-image's ``data.clock()``, a real photo with real camera motion blur
   (grayscale, 300x400). There is no sharp reference, so only before/after images are written.
2. ``synthetic``: a sharp scikit-image photo blurred with the ``realistic`` synthesis preset
   (:func:`deblurkit.synth.pipeline.synthesize_pair`, seeded); here the sharp target exists, so
   PSNR/SSIM of the blurry input and of the result against it go into ``summary.json``.

Files written under ``out_dir``: ``<example>-before.png``, ``<example>-after.png``,
``<example>-compare.png`` (side by side), ``synthetic-sharp.png`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
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

    from deblurkit.app.restore import default_restorer_name, make_loader, restore_pixels
    from deblurkit.io import save_png
    from deblurkit.viz import side_by_side

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


def render_comparison_grid(
    source_spec: str | Any = "samples",
    presets: tuple[str, ...] = ("naive", "realistic"),
    *,
    columns: int = 4,
    size: int = 192,
    seed: int = 0,
    force_saturation: bool | None = None,
    uniform_only: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """A grid image: one column per crop; rows = sharp, then one row per preset.

    Each preset sees the same crop (cropped ``size + 2 * max_trim`` once, then centre-trimmed
    to the preset's input size) and the same seed.

    Args:
        source_spec: sharp-image source spec, or a :class:`~deblurkit.synth.sources.SharpSource`.
        presets: preset names, one row each.
        columns: number of crops.
        size: output tile size.
        seed: base seed.
        force_saturation: if not None, set ``saturation_prob`` to 1 or 0 in every preset.
        uniform_only: disable spatially varying blur (so rows differ only by the pipeline).

    Returns:
        ``(grid, row_labels)``; grid is float32 ``(rows * size, columns * size, 3)`` sRGB.
    """
    from dataclasses import replace

    import torch

    from deblurkit.synth.dataset import item_generators
    from deblurkit.synth.pipeline import synthesize_pair
    from deblurkit.synth.presets import get_preset
    from deblurkit.synth.sources import make_source

    source = make_source(source_spec) if isinstance(source_spec, str) else source_spec
    configs = [get_preset(p) for p in presets]
    if force_saturation is not None:
        configs = [replace(c, saturation_prob=1.0 if force_saturation else 0.0) for c in configs]
    if uniform_only:
        configs = [replace(c, spatially_varying_prob=0.0) for c in configs]
    margin = max(c.trim for c in configs)
    rows: list[list[np.ndarray]] = [[] for _ in range(len(configs) + 1)]
    for col in range(columns):
        rng, _ = item_generators(seed, col)
        crop, _ = source.random_crop(size + 2 * margin, rng)
        inner = crop[margin : margin + size, margin : margin + size] if margin else crop
        rows[0].append(inner)
        for r, cfg in enumerate(configs, 1):
            off = margin - cfg.trim
            sub = crop[off : off + size + 2 * cfg.trim, off : off + size + 2 * cfg.trim]
            x = torch.from_numpy(np.ascontiguousarray(sub.transpose(2, 0, 1)))[None]
            gen = item_generators(seed, col)[1]  # same shake for every preset
            pair = synthesize_pair(x, cfg, gen)
            rows[r].append(pair.blur[0].permute(1, 2, 0).numpy())
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    return grid, ["sharp", *[c.name for c in configs]]


def write_synth_demo(out_dir: Path, count: int = 8, seed: int = 0) -> None:
    """Write ``count`` realistic pairs from the bundled sample photos plus ``contact_sheet.png``.

    The contact sheet has rows sharp / naive / realistic for a few crops.
    """
    from deblurkit.io import save_png
    from deblurkit.synth.sources import COLOR_SAMPLE_IMAGES, SampleImageSource
    from deblurkit.synth.writer import write_pairs
    from deblurkit.viz import label_rows

    out_dir = Path(out_dir)
    summary = write_pairs(
        "samples", out_dir / "pairs", preset="realistic", count=count, size=256, seed=seed, progress=False
    )
    grid, labels = render_comparison_grid(
        SampleImageSource(COLOR_SAMPLE_IMAGES),
        ("naive", "realistic"),
        columns=min(max(count, 1), 4),
        size=256,
        seed=seed,
    )
    save_png(out_dir / "contact_sheet.png", label_rows(grid, labels, 256))
    print(
        f"synth: {summary.written + summary.reused} pairs in {out_dir / 'pairs'}, contact sheet {out_dir / 'contact_sheet.png'}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    parser.add_argument("--count", type=int, default=8, help="synthetic pairs to write")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    write_synth_demo(out / "synth", count=args.count, seed=args.seed)
    write_deblur_demo(out / "deblur", seed=args.seed)
    print(f"demo outputs in {out}/")
    return 0
