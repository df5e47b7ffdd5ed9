"""HighlightNet: a NAFNet-style multi-scale U-Net that fills clipped highlights from a reference frame.

After Xing et al., "Online Overexposed Pixels Hallucination in Videos with Adaptive Reference
Frame Selection" (arXiv 2308.15462): the network sees the current frame and one exposure-aligned
past frame with masks, and predicts log-radiance inside the clipped regions only.

Shape:
    input ``(B, 9, H, W)`` float32: log linear current frame (3), log exposure-normalised warped
    reference (3), clipped mask of the current frame (1, 0/1), alignment confidence (1, [0, 1]),
    clipped-or-invalid mask of the reference (1). Logs are natural logs of linear values in
    current-frame sensor units (1 = clipping), floored at ``exp(-8)``.
    Output ``(B, 3, H, W)``: log-radiance, equal to the input's log current frame wherever the
    clipped mask is 0 (``out = base + mask * net(x)``). Any H, W (zero-padded inside to a
    multiple of ``2 ** len(enc_blk_nums)``). The base is the log current frame
    (``residual_from="current"``) or the copy fill in log space (``"copy"``:
    ``log_cur + mask * conf * max(0, log_ref - log_cur)``, the larger of the two lower bounds where
    the reference is trusted), so that the network only learns what the reference cannot give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from deblurkit.models.nafnet import NAFBlock

#: Input channel layout.
IN_CHANNELS = 9


class HighlightNet(nn.Module):
    """U-Net of NAFBlocks over the 9 input planes, a residual in log space gated by the clipped mask.

    Args:
        width: channels at full resolution.
        enc_blk_nums: NAFBlocks per encoder level (each level halves the resolution).
        middle_blk_num: NAFBlocks at the lowest resolution.
        dec_blk_nums: NAFBlocks per decoder level (same length as ``enc_blk_nums``).
        residual_from: what the residual is added to inside the clipped mask: the log current
            frame, or the confidence-weighted copy fill of the reference (see the module docstring).
    """

    def __init__(
        self,
        *,
        width: int = 16,
        enc_blk_nums: Sequence[int] = (1, 1, 2),
        middle_blk_num: int = 2,
        dec_blk_nums: Sequence[int] = (1, 1, 1),
        residual_from: Literal["current", "copy"] = "current",
    ) -> None:
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f"enc_blk_nums and dec_blk_nums need the same length, got {enc_blk_nums}, {dec_blk_nums}")
        if residual_from not in ("current", "copy"):
            raise ValueError(f"residual_from must be 'current' or 'copy', got {residual_from!r}")
        self.residual_from = residual_from
        self.hparams = {"width": int(width), "enc_blk_nums": [int(n) for n in enc_blk_nums],
                        "middle_blk_num": int(middle_blk_num), "dec_blk_nums": [int(n) for n in dec_blk_nums]}
        if residual_from != "current":  # old checkpoints (no key) keep meaning "current"
            self.hparams["residual_from"] = residual_from
        self.in_channels = IN_CHANNELS
        self.intro = nn.Conv2d(IN_CHANNELS, width, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.size_multiple = 2 ** len(enc_blk_nums)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-radiance ``(B, 3, H, W)`` from the ``(B, 9, H, W)`` input planes."""
        if x.ndim != 4 or x.shape[1] != IN_CHANNELS:
            raise ValueError(f"expected (B, {IN_CHANNELS}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.size_multiple
        inp = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m))
        y = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            y = encoder(y)
            skips.append(y)
            y = down(y)
        y = self.middle_blks(y)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            y = decoder(up(y) + skip)
        residual = self.ending(y)[:, :, :h, :w]
        mask = x[:, 6:7]
        base = x[:, 0:3]
        if self.residual_from == "copy":
            base = base + mask * x[:, 7:8] * (x[:, 3:6] - base).clamp(min=0.0)
        return base + mask * residual
