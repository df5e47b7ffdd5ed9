"""The learned deblur-or-not decision of the blind pipeline.

A blind kernel estimate is right on some photos and wrong on others, and a wrong kernel costs
many dB. Following Liu, Wang, Cho & Tang (2013), who learned a no-reference quality of deblurred
images to choose among kernels, a regressor trained on synthetic pairs predicts the PSNR gain of
deconvolving a photo with its estimated kernel, and the gain of deconvolving it with a delta
kernel (the deconvolution's prior alone); the photo is deblurred where the first is larger.

The regressor reads no-reference features (:func:`deconvolution_features`) of the two
deconvolutions: the kernel's shape, what the deconvolution did to the photo (ringing,
overshoot, gradient sparsity and gain, re-blur residual), the photo's noise and spectrum, and
how much the shipped network still changes the result. Its trees (scikit-learn's
``HistGradientBoostingRegressor``, trained by ``studies/kernel_selector.py``) are stored as
plain JSON (``deblurkit/weights/kernel-decision.json``, model card beside it) and evaluated
here with NumPy (:class:`GainTrees`), so running it needs neither scikit-learn nor a pickle.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deblurkit.errors import DeblurkitError

__all__ = [
    "DECISION_FILE",
    "FEATURES",
    "JUDGE",
    "GainTrees",
    "Network",
    "candidate_rows",
    "deconvolution_features",
    "delta_kernel",
    "load_decision",
    "row_names",
    "spectral_residue",
]

FEATURES: tuple[str, ...] = (
    "log_support", "log_extent", "compactness", "connectedness", "pause_share",
    "overshoot", "ringing", "sparsity", "log_gradient_gain", "reblur_residual",
    "log_spectral_residue", "log_noise", "network_change",
)
"""The names of :func:`deconvolution_features`, in the order the regressor reads them."""

Network = Callable[[np.ndarray], np.ndarray]
"""The judge network: sRGB float32 ``(H, W, 3)`` in [0, 1] -> its restoration, same shape."""

JUDGE = "nafnet-w16"
"""The restorer whose change of a deconvolution the features read (``network_change``), run with one
pass (no self-ensemble): the shipped network, which the default runs after the kernel stage."""

DECISION_FILE = Path(__file__).resolve().parent.parent / "weights" / "kernel-decision.json"
"""The shipped regressor (model card ``kernel-decision.md`` beside it)."""


def delta_kernel(size: int = 3) -> np.ndarray:
    """The kernel that does not blur, ``(size, size)`` float32 (``size`` odd): deconvolving with it
    applies the deconvolution's prior alone; the decision's second candidate is the 3 x 3 one."""
    k = np.zeros((size, size), np.float32)
    k[size // 2, size // 2] = 1.0
    return k


def spectral_residue(gray: np.ndarray, kernel: np.ndarray, sigma: float) -> float:
    """The photo's mean power where the kernel passes less than 5 %, in units of the noise variance.

    A right kernel's near-zeros fall where the blurry photo holds little beyond noise; a kernel
    too long for the blur removes frequencies the photo still has.

    Args:
        gray: luminance ``(H, W)`` at the working brightness scale.
        kernel: ``(k, k)`` blur kernel.
        sigma: the photo's noise standard deviation at that scale (at least 1e-3 is used).
    """
    from deblurkit.kernel_aware.deconv import psf2otf

    g = np.asarray(gray, dtype=np.float64)
    h, w = g.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.rfft2((g - g.mean()) * window)) ** 2 / float((window * window).sum())
    transfer = np.abs(psf2otf(np.asarray(kernel, np.float64) / float(np.sum(kernel)), (h, w)))
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    removed = (radius > 0.02) & (radius < 0.35) & (transfer < 0.05)
    if not removed.any():
        return 0.0
    # Every column of the half spectrum but the first (and an even width's last) stands for two
    # frequencies of the whole plane.
    weight = np.full(w // 2 + 1, 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    weight = np.broadcast_to(weight, removed.shape)[removed]
    return float((power[removed] * weight).sum() / weight.sum() / max(sigma, 1e-3) ** 2)


def deconvolution_features(gray: np.ndarray, kernel: np.ndarray, deconvolved: np.ndarray, sigma: float,
                           network_change: float) -> dict[str, float]:
    """No-reference features of deconvolving a blurry photo with one kernel (:data:`FEATURES`).

    Args:
        gray: the blurry photo's luminance at the working brightness scale ``(H, W)`` (99.5th
            percentile 1), in the space the kernel convolves.
        kernel: ``(k, k)`` kernel summing to 1.
        deconvolved: the deconvolution's luminance at the same scale ``(H, W)``.
        sigma: the photo's noise standard deviation at that scale.
        network_change: PSNR (dB) between the deconvolution (sRGB, clipped to [0, 1]) and the
            shipped network's output of it: high where the network finds little to change.

    Returns:
        The kernel's log effective support and log extent (px), their ratio, connectedness and
        pause share; the deconvolution's mean overshoot out of [0, 1], its 99th-percentile excess
        over the blurry photo's local range (relative to that range: local ringing), its gradient
        sparsity ``|grad|_1 / (|grad|_2 sqrt(n))``, the log ratio of its gradient energy to the
        blurry photo's and its re-blur residual in noise units; the photo's
        :func:`spectral_residue` (log) and log noise level; ``network_change``. Measured away from
        a border of twice the kernel size.
    """
    from scipy import ndimage

    from deblurkit.kernel_aware.deconv import convolve_fft
    from deblurkit.kernel_aware.estimation import (
        border_crop,
        kernel_connectedness,
        kernel_extent,
        kernel_pause_share,
        range_overshoot,
    )
    from deblurkit.kernel_aware.kernels import kernel_effective_support

    k = np.asarray(kernel, np.float64)
    k = k / k.sum()
    support = kernel_effective_support(k)
    extent = float(max(kernel_extent(k), 1))
    size = max(k.shape[0], 3)
    border = 2 * size
    gray = np.asarray(gray, np.float64)
    deconvolved = np.asarray(deconvolved, np.float64)
    x = border_crop(deconvolved, border)
    lo = border_crop(ndimage.minimum_filter(gray, size), border)
    hi = border_crop(ndimage.maximum_filter(gray, size), border)
    excess = np.maximum(x - hi, 0.0) + np.maximum(lo - x, 0.0)
    # Circular re-blur: the wrap reaches k/2 px into the image, inside the cropped border. (Not
    # scipy.signal's linear one: importing scipy.signal takes about 0.5 s of every run.)
    residual = border_crop(convolve_fft(deconvolved, k) - gray, border)
    dx, dy = np.diff(x, axis=1), np.diff(x, axis=0)
    l1 = np.abs(dx).sum() + np.abs(dy).sum()
    l2 = math.sqrt(float((dx * dx).sum() + (dy * dy).sum()))
    n = dx.size + dy.size

    def grad_energy(img: np.ndarray) -> float:
        return float((np.diff(img, axis=0) ** 2).mean() + (np.diff(img, axis=1) ** 2).mean())

    return {
        "log_support": math.log(support),
        "log_extent": math.log(extent),
        "compactness": support / extent,
        "connectedness": kernel_connectedness(k),
        "pause_share": kernel_pause_share(k) if k.shape[0] > 3 else 1.0,
        "overshoot": range_overshoot(deconvolved, border),
        "ringing": float(np.quantile(excess / np.maximum(hi - lo, 0.02), 0.99)),
        "sparsity": float(l1 / max(l2 * math.sqrt(n), 1e-12)),
        "log_gradient_gain": math.log(max(grad_energy(x), 1e-12) / max(grad_energy(border_crop(gray, border)), 1e-12)),
        "reblur_residual": float(np.sqrt((residual ** 2).mean())) / max(sigma, 1e-4),
        "log_spectral_residue": math.log1p(spectral_residue(gray, k, sigma)),
        "log_noise": math.log(max(sigma, 1e-5)),
        "network_change": float(network_change),
    }


def candidate_rows(kernels: list[dict[str, float]], delta: dict[str, float]) -> np.ndarray:
    """The regressor's input rows: one per kernel candidate, then one for the delta kernel.

    Each row holds the candidate's :func:`deconvolution_features`, the same minus the delta
    candidate's (what the kernel changes over the prior alone), minus their median over the kernel
    candidates (how it stands among them: a tree compares a feature with fixed thresholds only),
    and a flag that is 1 for the delta candidate.

    Args:
        kernels: features of each kernel candidate (at least one).
        delta: features of the delta candidate.

    Returns:
        ``(len(kernels) + 1, 3 * len(FEATURES) + 1)`` float64.
    """
    f = np.array([[c[name] for name in FEATURES] for c in [*kernels, delta]], dtype=np.float64)
    base = f[-1]
    median = np.median(f[:-1], axis=0)
    flag = np.zeros((len(f), 1))
    flag[-1] = 1.0
    return np.concatenate([f, f - base, f - median, flag], axis=1)


def row_names() -> list[str]:
    """Column names of :func:`candidate_rows`."""
    return [*FEATURES, *(f"{n} - delta" for n in FEATURES), *(f"{n} - median" for n in FEATURES), "is_delta"]


@dataclass(frozen=True)
class GainTrees:
    """A sum of regression trees stored as arrays (a gradient-boosted regressor's prediction).

    Each tree is a dict of equally long lists over its nodes: ``feature`` (column read at a
    split), ``threshold`` (go left where the value is at most it), ``left`` and ``right`` (child
    indices), ``missing_left`` (where a NaN goes), ``leaf`` (1 at a leaf) and ``value`` (a leaf's
    contribution). Node 0 is the root.
    """

    baseline: float
    trees: tuple[dict[str, np.ndarray], ...]
    columns: tuple[str, ...]
    meta: dict

    @classmethod
    def from_dict(cls, data: dict) -> GainTrees:
        """From the JSON form written by :meth:`to_dict`; raises :class:`DeblurkitError` if malformed."""
        try:
            trees = []
            for t in data["trees"]:
                tree = {"feature": np.asarray(t["feature"], np.int64), "threshold": np.asarray(t["threshold"], np.float64),
                        "left": np.asarray(t["left"], np.int64), "right": np.asarray(t["right"], np.int64),
                        "missing_left": np.asarray(t["missing_left"], bool), "leaf": np.asarray(t["leaf"], bool),
                        "value": np.asarray(t["value"], np.float64)}
                n = len(tree["value"])
                if n == 0 or any(len(v) != n for v in tree.values()):
                    raise ValueError("node arrays of unequal length")
                inner = ~tree["leaf"]
                if (inner.any() and (tree["left"][inner].max() >= n or tree["right"][inner].max() >= n
                                     or tree["left"][inner].min() < 1 or tree["right"][inner].min() < 1)):
                    raise ValueError("child index out of range")
                trees.append(tree)
            columns = tuple(str(c) for c in data["columns"])
            if any(int(t["feature"][~t["leaf"]].max(initial=0)) >= len(columns) for t in trees):
                raise ValueError("a split reads a column that does not exist")
            return cls(float(data["baseline"]), tuple(trees), columns, dict(data.get("meta", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise DeblurkitError(f"malformed decision trees: {e}") from e

    def to_dict(self) -> dict:
        """JSON-ready form (read back by :meth:`from_dict`)."""
        return {"baseline": self.baseline, "columns": list(self.columns), "meta": self.meta,
                "trees": [{k: v.tolist() for k, v in t.items()} for t in self.trees]}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for rows ``x`` ``(n, len(columns))`` -> ``(n,)``."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.columns):
            raise DeblurkitError(f"expected rows of {len(self.columns)} features, got shape {x.shape}")
        out = np.full(len(x), self.baseline)
        rows = np.arange(len(x))
        for t in self.trees:
            node = np.zeros(len(x), np.int64)
            while True:
                inner = ~t["leaf"][node]
                if not inner.any():
                    break
                r, nd = rows[inner], node[inner]
                v = x[r, t["feature"][nd]]
                go_left = np.where(np.isnan(v), t["missing_left"][nd], v <= t["threshold"][nd])
                node[inner] = np.where(go_left, t["left"][nd], t["right"][nd])
            out += t["value"][node]
        return out


@functools.cache
def _load(path: str) -> GainTrees:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DeblurkitError(f"cannot read the kernel decision model {path}: {e}") from e
    trees = GainTrees.from_dict(data)
    if list(trees.columns) != row_names():
        raise DeblurkitError(f"the kernel decision model {path} reads other features than this version computes")
    return trees


def load_decision(path: str | Path | None = None) -> GainTrees:
    """The decision regressor (default: the shipped :data:`DECISION_FILE`), read once per path."""
    return _load(str(Path(path) if path is not None else DECISION_FILE))
