"""Inference runtime: one call contract for every deblurring method.

>>> import numpy as np
>>> from deblurkit.infer import load_restorer
>>> restorer = load_restorer("identity")  # or "default", "nafnet-w16", a checkpoint path, ...
>>> restorer(np.zeros((48, 64, 3), np.float32)).shape  # (H, W, C) float32 sRGB in [0, 1] -> same
(48, 64, 3)

- the :class:`Restorer` contract (``base.py``);
- :func:`load_restorer` / :func:`list_restorers` / :data:`DEFAULT_RESTORER` (``restorers.py``);
- padding and blended tiling (``tiling.py``);
- torch / ONNX Runtime backends and ONNX export (``backends.py``).

Importing this package does not import torch.
"""

from __future__ import annotations

#: The restorer ``load_restorer("default")`` builds: classical blind deconvolution where it finds
#: a long shake kernel, then the shipped end-to-end NAFNet (design (a)) on every photo. Chosen by
#: ``python -m studies.eval_designs`` and ``python -m studies.chain_gate``: at least as good as ``nafnet-w16``
#: alone on all six held-out sets, +0.64 dB on uniform shake (docs/default-pipeline.md);
#: ``nafnet-w16`` (about 3x faster on a 12-MP photo) and the others stay available by name.
DEFAULT_RESTORER: str = "kernel-deconv+nafnet-w16"

from deblurkit.infer.restorers import (
    Restorer,
    RestorerInfo,
    judge_network,
    list_restorers,
    load_restorer,
)

__all__ = ["DEFAULT_RESTORER", "Restorer", "RestorerInfo", "judge_network", "list_restorers", "load_restorer"]
