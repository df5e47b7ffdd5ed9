"""The example grids of ``docs/synthesis.md``: ``python scripts/synthesis_figures.py --docs docs/images/synthesis``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deblurkit.demo import render_comparison_grid
from deblurkit.synth.sources import SharpSource
from deblurkit.viz import label_rows


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
        save_png(path, label_rows(grid, labels, 160))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Render the synthesis documentation figures.")
    parser.add_argument("--docs", type=Path, default=Path("docs/images/synthesis"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for p in write_doc_figures(args.docs, args.seed):
        print(p)


if __name__ == "__main__":
    main()
