"""KernelDeconvNet: a small NAFNet-style U-Net that refines multi-strength Wiener deconvolutions.

The network is the learned half of the ``kernel-refine`` pipeline
(:mod:`deblurkit.kernel_aware.refine`). It never sees the blur kernel directly: the kernel enters
through ``num_wiener`` Wiener deconvolutions of the blurry image at increasing regularisation
(noise-to-signal ratios), computed in linear light and re-encoded to sRGB. Weakly regularised
copies are sharp but ring and amplify noise; strongly regularised ones are smooth. The network
sees the blurry image plus all copies and predicts a residual on the copy at index
``base_index``, so it learns to pick detail, suppress ringing and noise, and correct kernel
errors. This is the "deep Wiener deconvolution" idea (Dong, Roth & Schiele, NeurIPS 2020) in a
simpler form: Wiener in image space instead of feature space.

The network is a :class:`deblurkit.models.nafnet.NAFNet` (Chen et al., ECCV 2022) with a wider
input and the residual on one Wiener copy. Weights saved by the earlier standalone layout name
the middle blocks ``middle.*`` and the channel-attention convolution ``sca.weight``;
:meth:`KernelDeconvNet.remap_state_dict` renames them on load.

Shape:
    input ``(B, 3 * (1 + num_wiener), H, W)`` float32 sRGB in [0, 1]: channels are the blurry
    image, then each Wiener copy (3 channels each, weakest regularisation first); ``H`` and
    ``W`` must be multiples of :attr:`size_multiple`. Output ``(B, 3, H, W)`` (not clamped).
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor, nn

from deblurkit.models.nafnet import NAFNet

__all__ = ["KernelDeconvNet"]


class KernelDeconvNet(NAFNet):
    """NAFNet refining Wiener deconvolutions (see the module docstring).

    Args:
        num_wiener: number of Wiener copies in the input (regularisation strengths).
        base_index: which Wiener copy (0-based) the predicted residual is added to.
        width: channels at full resolution (doubled per level).
        enc_blk_nums: blocks per encoder level (one level per entry, each halves the size).
        middle_blk_num: blocks at the lowest resolution.
        dec_blk_nums: blocks per decoder level (same length as ``enc_blk_nums``).
    """

    def __init__(
        self,
        *,
        num_wiener: int = 3,
        base_index: int = 1,
        width: int = 24,
        enc_blk_nums: tuple[int, ...] | list[int] = (1, 1, 2),
        middle_blk_num: int = 2,
        dec_blk_nums: tuple[int, ...] | list[int] = (1, 1, 1),
    ) -> None:
        if not 0 <= base_index < num_wiener:
            raise ValueError(f"base_index must be in [0, {num_wiener}), got {base_index}")
        super().__init__(img_channel=3, width=width, middle_blk_num=middle_blk_num, enc_blk_nums=enc_blk_nums,
                         dec_blk_nums=dec_blk_nums)
        self.intro = nn.Conv2d(3 * (1 + num_wiener), width, 3, padding=1)
        self.hparams: dict[str, Any] = {
            "num_wiener": num_wiener, "base_index": base_index, "width": width,
            "enc_blk_nums": list(enc_blk_nums), "middle_blk_num": middle_blk_num,
            "dec_blk_nums": list(dec_blk_nums),
        }
        self.num_wiener = num_wiener
        self.base_index = base_index

    @staticmethod
    def remap_state_dict(sd: dict[str, Any]) -> dict[str, Any]:
        """Rename keys of the earlier layout: ``middle.*`` -> ``middle_blks.*``, ``….sca.weight`` -> ``….sca.1.weight``."""
        renamed = {re.sub(r"^middle\.", "middle_blks.", k): v for k, v in sd.items()}
        return {re.sub(r"\.sca\.(weight|bias)$", r".sca.1.\1", k): v for k, v in renamed.items()}

    def forward(self, x: Tensor) -> Tensor:
        """Refine: ``(B, 3 * (1 + num_wiener), H, W)`` -> ``(B, 3, H, W)``."""
        if x.ndim != 4 or x.shape[1] != 3 * (1 + self.num_wiener):
            raise ValueError(f"expected (B, {3 * (1 + self.num_wiener)}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"H and W must be multiples of {self.size_multiple}, got {h}x{w}")
        start = 3 * (1 + self.base_index)
        return x[:, start:start + 3] + self.ending(self.features(x))
