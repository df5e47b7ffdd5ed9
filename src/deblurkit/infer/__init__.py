"""Inference runtime: one call contract for every deblurring method.

>>> from deblurkit.infer import load_restorer          # doctest: +SKIP
>>> restorer = load_restorer("mimo-unet", tile=512)    # doctest: +SKIP
>>> sharp = restorer(blurry)  # (H, W, C) float32 sRGB in [0, 1] -> same  # doctest: +SKIP

- :func:`load_restorer` / :func:`list_restorers` / :data:`DEFAULT_RESTORER` (``restorers.py``);
- padding and blended tiling (``tiling.py``);
- torch / ONNX Runtime backends and ONNX export (``backends.py``).

Importing this package does not import torch.
"""

from __future__ import annotations

#: The restorer ``load_restorer("default")`` builds: the shipped end-to-end NAFNet (design (a)),
#: chosen by ``studies/eval_designs.py``: the best of the three designs on all six held-out sets
#: (see docs/default-pipeline.md); the kernel-aware ``kernel-refine`` stays available by name.
DEFAULT_RESTORER: str = "nafnet-w16"

from deblurkit.infer.restorers import (
    Restorer,
    RestorerInfo,
    list_restorers,
    load_restorer,
)

__all__ = ["DEFAULT_RESTORER", "Restorer", "RestorerInfo", "list_restorers", "load_restorer"]
