"""A small logistic-regression model over named scores, stored as JSON.

Used where a decision is learned from a handful of no-reference scores, e.g. accepting a photo
for training data (:mod:`deblurkit.curate.classifier`). Prediction is NumPy only; fitting needs
scikit-learn.

Features listed in ``log_features`` enter as ``log(x + 1e-4)``; every feature is then
standardised with the training mean and standard deviation:

>>> m = LogisticModel(("a",), [0.0], [1.0], [2.0], 0.0)
>>> round(m.probability({"a": 1.0}), 3)
0.881
>>> round(m.probability({}), 3)  # a missing score counts as its training mean
0.5
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from deblurkit.errors import DeblurkitError

__all__ = ["LogisticModel", "feature_vector", "fit_logistic"]

_EPS = 1e-4

M = TypeVar("M", bound="LogisticModel")


def feature_vector(record: dict[str, Any], names: Sequence[str], log_features: Sequence[str] = ()) -> np.ndarray:
    """The transformed features ``(len(names),)`` float64 of a score dict (missing or NaN -> NaN)."""
    out = np.empty(len(names))
    for i, name in enumerate(names):
        v = record.get(name)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = np.nan
        elif name in log_features:
            out[i] = math.log(max(float(v), 0.0) + _EPS)
        else:
            out[i] = float(v)
    return out


@dataclass(frozen=True)
class LogisticModel:
    """``p = sigmoid(coef . (f(x) - mean) / scale + intercept)`` over named scores."""

    features: tuple[str, ...]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = 0.5
    """Decision threshold on the probability (callers accept at or above it)."""
    info: dict[str, Any] = field(default_factory=dict)
    """How it was trained (data, counts, held-out scores)."""
    log_features: tuple[str, ...] = ()
    """Features that enter as their logarithm."""

    def probability(self, record: dict[str, Any]) -> float:
        """The probability in [0, 1] for one score dict; a missing score counts as its training mean."""
        x = feature_vector(record, self.features, self.log_features)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.where(np.isnan(z), 0.0, z)
        logit = float(z @ np.asarray(self.coef) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))

    def save(self, path: str | Path) -> None:
        """Write the model as JSON (atomically)."""
        from deblurkit.io import atomic_write

        d = asdict(self)
        d["features"] = list(self.features)
        d["log_features"] = list(self.log_features)
        with atomic_write(path, "w") as fh:
            json.dump(d, fh, indent=1)
            fh.write("\n")

    @classmethod
    def load(cls: type[M], path: str | Path, *, what: str = "logistic model") -> M:
        """Read a model written by :meth:`save`.

        Raises:
            DeblurkitError: the file is missing or not such a model (``what`` names it in the message).
        """
        try:
            d = json.loads(Path(path).read_text())
            d["features"] = tuple(d["features"])
            if "log_features" in d:
                d["log_features"] = tuple(d["log_features"])
            model = cls(**d)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise DeblurkitError(f"{path}: not a {what} ({exc})") from None
        if not (len(model.features) == len(model.mean) == len(model.scale) == len(model.coef)):
            raise DeblurkitError(f"{path}: feature, mean, scale and coef lengths differ")
        return model


def fit_logistic(
    records: Sequence[dict[str, Any]],
    labels: Sequence[int],
    features: Sequence[str],
    *,
    log_features: Sequence[str] = (),
    c: float = 1.0,
    sample_weight: Sequence[float] | None = None,
    info: dict[str, Any] | None = None,
    model_type: type[M] = LogisticModel,  # type: ignore[assignment]
) -> M:
    """Fit a :class:`LogisticModel` (scikit-learn logistic regression, L2, balanced classes).

    Args:
        records: score dicts.
        labels: 1 = positive, 0 = negative.
        features: score names used.
        log_features: the names among ``features`` that enter as logarithms.
        c: inverse regularisation strength.
        sample_weight: optional per-record weights (multiplied with the class balancing).
        info: stored with the model.
        model_type: the (sub)class to return.
    """
    from sklearn.linear_model import LogisticRegression

    logs = tuple(f for f in features if f in log_features)
    x = np.stack([feature_vector(r, features, logs) for r in records])
    y = np.asarray(labels, dtype=int)
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = np.where(np.isnan(x), 0.0, (x - mean) / scale)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(z, y, sample_weight=sample_weight)
    return model_type(
        tuple(features), mean.tolist(), scale.tolist(), model.coef_[0].tolist(), float(model.intercept_[0]),
        info=info or {}, log_features=logs,
    )
