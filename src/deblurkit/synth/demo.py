"""Demo outputs and documentation figures for the synthesis engine.

``write_synth_demo`` is what ``deblurkit demo`` runs; ``render_comparison_grid`` makes the
example grids of ``docs/synthesis.md`` (see ``python -m deblurkit.synth.demo --docs DIR``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from deblurkit.synth.sources import SharpSource


def render_comparison_grid(
    source_spec: str | SharpSource = "samples",
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
        source_spec: sharp-image source spec.
        presets: preset names, one row each.
        columns: number of crops.
        size: output tile size.
        seed: base seed.
        force_saturation: if not None, set ``saturation_prob`` to 1 or 0 in every preset.
        uniform_only: disable spatially varying blur (so rows differ only by the pipeline).

    Returns:
        ``(grid, row_labels)``; grid is float32 ``(rows * size, columns * size, 3)`` sRGB.
    """
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


def _label_rows(grid: np.ndarray, labels: list[str], tile: int) -> np.ndarray:
    import cv2

    from deblurkit.io import float_to_uint

    out = np.ascontiguousarray(float_to_uint(grid, 8))
    for i, text in enumerate(labels):
        y = i * tile + 18
        cv2.putText(out, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out.astype(np.float32) / 255.0


def write_synth_demo(out_dir: Path, count: int = 8, seed: int = 0) -> None:
    """Write ``count`` realistic pairs from the bundled sample photos plus ``contact_sheet.png``.

    The contact sheet has rows sharp / naive / realistic for a few crops.
    """
    from deblurkit.io import save_png
    from deblurkit.synth.sources import COLOR_SAMPLE_IMAGES, SampleImageSource
    from deblurkit.synth.writer import write_pairs

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
    save_png(out_dir / "contact_sheet.png", _label_rows(grid, labels, 256))
    print(
        f"synth: {summary.written + summary.reused} pairs in {out_dir / 'pairs'}, contact sheet {out_dir / 'contact_sheet.png'}"
    )


def _saturation_grid(source: SharpSource, size: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Night scene rows: sharp / naive / linear blur / linear blur + saturation (no noise, uniform blur)."""
    from dataclasses import replace as _replace

    import torch

    from deblurkit.synth.dataset import item_generators
    from deblurkit.synth.pipeline import synthesize_pair
    from deblurkit.synth.presets import get_preset

    base = {
        "spatially_varying_prob": 0.0,
        "blur_length_px": (15.0, 31.0),
        "jpeg_prob": 0.0,
        "noise_model": "none",
        "trim": 0,
    }
    configs = [
        _replace(get_preset("naive"), trajectory="random-walk", **base),
        _replace(get_preset("realistic"), saturation_prob=0.0, **base),
        _replace(get_preset("realistic"), saturation_prob=1.0, saturation_alpha=(1.5, 1.75), **base),
    ]
    rows: list[list[np.ndarray]] = [[] for _ in range(4)]
    for col in range(4):
        crop, _ = source.random_crop(size, item_generators(seed, col)[0])
        rows[0].append(crop)
        x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]
        for r, cfg in enumerate(configs, 1):
            pair = synthesize_pair(x, cfg, item_generators(seed, col)[1])
            rows[r].append(pair.blur[0].permute(1, 2, 0).numpy())
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    return grid, ["sharp", "naive: sRGB blur", "linear-light blur", "linear + saturation"]


def write_doc_figures(out_dir: Path, seed: int = 0) -> list[Path]:
    """Render the example grids used in ``docs/synthesis.md``."""
    from deblurkit.io import save_png
    from deblurkit.synth.sources import DeadLeavesSource, SampleImageSource

    photos = SampleImageSource(
        ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "hubble_deep_field")
    )
    out_dir = Path(out_dir)
    figures = {
        "samples_naive_vs_realistic.png": {"source_spec": photos, "presets": ("naive", "gopro", "realistic")},
        "night_saturation.png": {
            "source_spec": DeadLeavesSource(
                light_sources=(6, 14), light_radius=(1.0, 3.5), brightness=(0.15, 0.35)
            ),
            "presets": ("naive", "realistic-no-noise", "realistic-no-noise"),
            "force_saturation": None,
            "uniform_only": True,
        },
        "samples_realesrgan.png": {"source_spec": photos, "presets": ("realistic", "realesrgan")},
    }
    written = []
    for name, kw in figures.items():
        if name == "night_saturation.png":
            grid, labels = _saturation_grid(kw["source_spec"], size=160, seed=seed)  # type: ignore[arg-type]
        else:
            grid, labels = render_comparison_grid(columns=4, size=160, seed=seed, **kw)  # type: ignore[arg-type]
        path = out_dir / name
        save_png(path, _label_rows(grid, labels, 160))
        written.append(path)
    return written


def main() -> None:  # pragma: no cover - documentation helper
    parser = argparse.ArgumentParser(description="Render the synthesis documentation figures.")
    parser.add_argument("--docs", type=Path, default=Path("docs/images/synthesis"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for p in write_doc_figures(args.docs, args.seed):
        print(p)


if __name__ == "__main__":  # pragma: no cover
    main()
