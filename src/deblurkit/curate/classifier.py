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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deblurkit.logistic import LogisticModel, fit_logistic
from deblurkit.logistic import feature_vector as _feature_vector

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
_LOG_FEATURES = tuple(name for name, how in FEATURES.items() if how == "log")


def feature_vector(record: dict[str, Any], names: Sequence[str]) -> np.ndarray:
    """The transformed features ``(len(names),)`` float64 of a manifest record (missing/NaN -> NaN)."""
    return _feature_vector(record, names, _LOG_FEATURES)


@dataclass(frozen=True)
class QualityClassifier(LogisticModel):
    """``p(good)``: a :class:`deblurkit.logistic.LogisticModel` over the curation scores.

    ``threshold``: images with ``p(good)`` below it are rejected.
    """

    log_features: tuple[str, ...] = _LOG_FEATURES

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL, *, what: str = "curation classifier") -> QualityClassifier:
        """Read a model written by :meth:`save`.

        Raises:
            DeblurkitError: the file is missing or not a classifier.
        """
        return super().load(path, what=what)


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
    return fit_logistic(records, labels, features, log_features=_LOG_FEATURES, c=c, info=info,
                        model_type=QualityClassifier)
