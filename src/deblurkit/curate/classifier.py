"""A learned accept/reject model over the curation scores (logistic regression, stored as JSON).

As in GenIR (DreamClear, Ai et al. 2024), the classifier learns "good" from sharp photos and
"bad" from the same photos degraded synthetically (blur, noise, JPEG at random strengths, by
:mod:`deblurkit.synth`); ``studies/curation_filters.py`` trains and evaluates it and writes the
shipped model :data:`DEFAULT_MODEL`. Prediction is NumPy only; training needs scikit-learn.

Sharpness enters as its logarithm, so sharpness e is one unit above a mean of 0:

>>> clf = QualityClassifier(("sharpness",), [0.0], [1.0], [4.0], 0.0)
>>> round(clf.probability({"sharpness": 2.718281828}), 3)
0.982
>>> round(clf.probability({"sharpness": 1.0}), 3)
0.5
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deblurkit.errors import DeblurkitError

DEFAULT_MODEL = Path(__file__).with_name("quality_classifier.json")

#: score name -> transform applied before standardisation (logs for the ratio-like scores).
FEATURES: dict[str, str] = {
    "sharpness": "log",
    "noise_sigma": "log",
    "blockiness": "log",
    "brisque": "identity",
    "textured_fraction": "identity",
    "clipped_high": "identity",
    "clipped_low": "identity",
}
_EPS = 1e-4


def feature_vector(record: dict[str, Any], names: Sequence[str]) -> np.ndarray:
    """The transformed features ``(len(names),)`` float64 of a manifest record (missing/NaN -> NaN)."""
    out = np.empty(len(names))
    for i, name in enumerate(names):
        v = record.get(name)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = np.nan
        elif FEATURES.get(name) == "log":
            out[i] = math.log(max(float(v), 0.0) + _EPS)
        else:
            out[i] = float(v)
    return out


@dataclass(frozen=True)
class QualityClassifier:
    """``p(good) = sigmoid(coef . (f(x) - mean) / scale + intercept)`` over named scores."""

    features: tuple[str, ...]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = 0.5
    """Images with ``p(good)`` below this are rejected."""
    info: dict[str, Any] = field(default_factory=dict)
    """How it was trained (data, counts, held-out scores)."""

    def probability(self, record: dict[str, Any]) -> float:
        """``p(good)`` in [0, 1] for one manifest record; a missing score counts as its training mean."""
        x = feature_vector(record, self.features)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.where(np.isnan(z), 0.0, z)
        logit = float(z @ np.asarray(self.coef) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))

    def save(self, path: str | Path) -> None:
        """Write the model as JSON (atomically)."""
        from deblurkit.io import atomic_write

        d = asdict(self)
        d["features"] = list(self.features)
        with atomic_write(path, "w") as fh:
            json.dump(d, fh, indent=1)
            fh.write("\n")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> QualityClassifier:
        """Read a model written by :meth:`save`.

        Raises:
            DeblurkitError: the file is missing or not a classifier.
        """
        try:
            d = json.loads(Path(path).read_text())
            d["features"] = tuple(d["features"])
            clf = cls(**d)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise DeblurkitError(f"{path}: not a curation classifier ({exc})") from None
        if not (len(clf.features) == len(clf.mean) == len(clf.scale) == len(clf.coef)):
            raise DeblurkitError(f"{path}: feature, mean, scale and coef lengths differ")
        return clf


def train_logistic(
    records: Sequence[dict[str, Any]],
    labels: Sequence[int],
    features: Sequence[str] = tuple(FEATURES),
    *,
    c: float = 1.0,
    info: dict[str, Any] | None = None,
) -> QualityClassifier:
    """Fit a :class:`QualityClassifier` (scikit-learn logistic regression, L2, balanced classes).

    Args:
        records: manifest-like score dicts.
        labels: 1 = good, 0 = degraded.
        features: score names used (see :data:`FEATURES`).
        c: inverse regularisation strength.
        info: stored with the model.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.stack([feature_vector(r, features) for r in records])
    y = np.asarray(labels, dtype=int)
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = np.where(np.isnan(x), 0.0, (x - mean) / scale)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(z, y)
    return QualityClassifier(
        tuple(features), mean.tolist(), scale.tolist(), model.coef_[0].tolist(), float(model.intercept_[0]),
        info=info or {},
    )
