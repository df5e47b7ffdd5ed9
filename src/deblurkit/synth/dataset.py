"""On-the-fly synthetic pairs as a ``torch.utils.data.Dataset``.

Item ``i`` depends only on ``(seed, i)``: the crop and every degradation parameter are drawn
from generators seeded with ``numpy.random.SeedSequence([seed, i])``. So results do not depend
on the number of DataLoader workers, their order, or which process computes an item.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from deblurkit.synth.pipeline import SynthPair, synthesize_pair
from deblurkit.synth.presets import SynthConfig, get_preset
from deblurkit.synth.sources import SharpSource, make_source


def item_generators(seed: int, index: int) -> tuple[np.random.Generator, torch.Generator]:
    """The (numpy, torch) generators for item ``index`` of a run with ``seed``."""
    ss = np.random.SeedSequence([int(seed), int(index)])
    crop_seq, synth_seq = ss.spawn(2)
    torch_seed = int(synth_seq.generate_state(1, dtype=np.uint64)[0] & ((1 << 63) - 1))
    return np.random.default_rng(crop_seq), torch.Generator().manual_seed(torch_seed)


def synthesize_item(
    source: SharpSource, config: SynthConfig, size: int, seed: int, index: int
) -> tuple[SynthPair, dict]:
    """Crop ``size + 2 * trim`` from ``source`` and synthesize one pair of size ``size``.

    Returns:
        ``(pair, crop_info)``; ``pair.params[0]`` holds the degradation parameters.
    """
    rng, gen = item_generators(seed, index)
    crop, info = source.random_crop(size + 2 * config.trim, rng)
    x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].float()
    return synthesize_pair(x, config, gen), info


class SynthPairDataset(torch.utils.data.Dataset):
    """Synthetic (blur, sharp) pairs, computed on the fly and deterministic per index.

    Args:
        source: a sharp-image source, or a spec for :func:`~deblurkit.synth.sources.make_source`
            (folder path, ``"samples"``, ``"dead-leaves"``).
        preset: preset name or a :class:`~deblurkit.synth.presets.SynthConfig`.
        size: output crop size (pixels, square).
        length: number of items.
        seed: base seed; item ``i`` uses ``(seed, i)``.

    ``ds[i]`` is ``{"blur": (3, size, size), "sharp": (3, size, size), "index": i}`` (float32
    sRGB in [0, 1]); ``ds.sample(i)`` returns the full :class:`SynthPair` (with kernel and params).
    """

    def __init__(
        self,
        source: SharpSource | str,
        preset: str | SynthConfig = "realistic",
        size: int = 256,
        length: int = 1000,
        seed: int = 0,
    ) -> None:
        self.source = make_source(source) if isinstance(source, str) else source
        self.config = get_preset(preset) if isinstance(preset, str) else preset
        if size < 16:
            raise ValueError(f"size must be at least 16, got {size}")
        if self.config.camera_pipeline and size % 2:
            raise ValueError(f"size must be even for preset {self.config.name!r}, got {size}")
        self.size, self.length, self.seed = int(size), int(length), int(seed)

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int, size: int | None = None) -> SynthPair:
        """The full pair for ``index`` (batch of one), with kernel and params (incl. the crop).

        ``size`` renders the same item at another crop size (default: the dataset's ``size``).
        """
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for length {self.length}")
        size = self.size if size is None else int(size)
        if size < 16 or (self.config.camera_pipeline and size % 2):
            raise ValueError(f"size must be at least 16 (and even for preset {self.config.name!r}), got {size}")
        pair, info = synthesize_item(self.source, self.config, size, self.seed, index)
        pair.params[0]["crop"] = info
        return pair

    def render(self, index: int, size: int) -> dict[str, Tensor | int]:
        """Item ``index`` at crop size ``size`` (as ``ds[index]``; training with a crop-size schedule)."""
        pair = self.sample(int(index), size)
        return {"blur": pair.blur[0], "sharp": pair.sharp[0], "index": int(index)}

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        pair = self.sample(int(index))
        return {"blur": pair.blur[0], "sharp": pair.sharp[0], "index": int(index)}
