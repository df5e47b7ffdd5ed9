"""A learned reference-selection policy: logistic over a few features, trained with REINFORCE.

After each frame the policy decides whether the current frame replaces the reference, from
:class:`~deblurkit.highlights.online.StepFeatures`: the fraction of the frame newly well exposed
relative to the reference, the log2 exposure ratio, the reference's age, the alignment
confidence and the clipped fraction. ``P(replace) = sigmoid(w . f + b)``.

Training (:func:`train_reference_policy`): several stochastic rollouts per training clip; the
reward of a frame is the mu-law PSNR inside its clipped region after restoration; each decision
is credited with the discounted sum of the following frames' rewards, minus the mean of that
quantity over the rollouts of the same clip at the same frame (a variance-reducing baseline);
plain REINFORCE gradient ascent on the log-likelihood of the decisions taken.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deblurkit.highlights.align import AlignMethod, clipped_mask_srgb8
from deblurkit.highlights.metrics import HDR_PEAK, psnr_mulaw_masked
from deblurkit.highlights.online import Restorer, StepFeatures, run_online

FEATURES: tuple[str, ...] = ("20*newly_well_exposed", "log2_ratio", "age/10", "confidence", "20*clipped_fraction")


@dataclass(frozen=True)
class LogisticPolicy:
    """``P(replace | f) = sigmoid(weights . f.vector() + bias)``; acts greedily (replace if P > 0.5)."""

    weights: tuple[float, ...]
    bias: float

    def probability(self, f: StepFeatures) -> float:
        """Probability that the current frame replaces the reference."""
        if not f.has_reference:
            return 1.0
        z = float(np.dot(self.weights, f.vector())) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def __call__(self, f: StepFeatures) -> bool:
        return self.probability(f) > 0.5


def save_policy(policy: LogisticPolicy, path: str | os.PathLike[str], **extra: object) -> None:
    """Write the policy as JSON (atomically)."""
    from deblurkit.io import atomic_write

    with atomic_write(path, "w") as fh:
        json.dump({"kind": "logistic-reference-policy", "features": list(FEATURES),
                   "weights": list(policy.weights), "bias": policy.bias, **extra}, fh, indent=1)


#: The name of the shipped policy (``deblurkit/weights/highlight-policy.json``, model card beside it).
BUNDLED_POLICY = "learned"


def bundled_policy_path() -> str:
    """Path of the shipped reference policy (``deblurkit/weights/highlight-policy.json``)."""
    from deblurkit.models.checkpoint import bundled_weights_dir

    return str(bundled_weights_dir() / "highlight-policy.json")


def load_policy(path: str | os.PathLike[str]) -> LogisticPolicy:
    """Read a policy written by :func:`save_policy`; :data:`BUNDLED_POLICY` names the shipped one.

    Raises:
        DeblurkitError: missing file or not a policy.
    """
    from deblurkit.errors import DeblurkitError

    if str(path) == BUNDLED_POLICY:
        path = bundled_policy_path()
    try:
        with open(path) as fh:
            data = json.load(fh)
        if data.get("kind") != "logistic-reference-policy" or len(data["weights"]) != len(FEATURES):
            raise ValueError("not a reference policy")
        return LogisticPolicy(tuple(float(w) for w in data["weights"]), float(data["bias"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeblurkitError(f"{path}: cannot read reference policy ({exc})") from None


def _frame_rewards(results: list, frames: Sequence) -> np.ndarray:
    out = np.zeros(len(frames))
    for r, fr in zip(results, frames):
        mask = clipped_mask_srgb8(fr.srgb8)
        if mask.any():
            out[r.index] = min(60.0, psnr_mulaw_masked(r.output, fr.truth_linear, mask, peak=HDR_PEAK))
    return out


def rollout(policy: LogisticPolicy, frames: Sequence, restorer: Restorer, rng: np.random.Generator | None,
            *, align: AlignMethod = "true") -> tuple[np.ndarray, list[tuple[np.ndarray, int, float]]]:
    """Run one clip; stochastic decisions when ``rng`` is given, greedy otherwise.

    Returns:
        ``(rewards (T,), decisions)``: per decision ``(feature vector, action 0/1, frame index)``.
    """
    decisions: list[tuple[np.ndarray, int, float]] = []

    def act(f: StepFeatures) -> bool:
        p = policy.probability(f)
        a = bool(rng.uniform() < p) if rng is not None else p > 0.5
        if f.has_reference:
            decisions.append((f.vector(), int(a), f.index))
        return a

    results = list(run_online(frames, restorer, act, align=align))
    return _frame_rewards(results, frames), decisions


def train_reference_policy(
    clips: Sequence[Sequence],
    restorer: Restorer,
    *,
    iterations: int = 20,
    rollouts: int = 4,
    lr: float = 0.5,
    gamma: float = 0.8,
    rng: np.random.Generator,
    align: AlignMethod = "true",
    init: LogisticPolicy | None = None,
    log: bool = True,
) -> tuple[LogisticPolicy, list[float]]:
    """REINFORCE on training clips (lists of :class:`~deblurkit.highlights.video.VideoFrame`).

    Returns:
        The trained policy and the mean greedy-free (stochastic) return per iteration.
    """
    w = np.array(init.weights if init else np.zeros(len(FEATURES)), dtype=np.float64)
    b = float(init.bias) if init else 0.0
    history = []
    for it in range(iterations):
        grad_w, grad_b, n, returns = np.zeros_like(w), 0.0, 0, []
        for frames in clips:
            runs = [rollout(LogisticPolicy(tuple(w), b), frames, restorer, rng, align=align) for _ in range(rollouts)]
            togo = []
            for rewards, _ in runs:
                g = np.zeros(len(rewards) + 1)
                for t in range(len(rewards) - 1, -1, -1):
                    g[t] = rewards[t] + gamma * g[t + 1]
                togo.append(g)
                returns.append(float(rewards.sum()))
            mean_togo = np.mean(togo, axis=0)
            for (_, decisions), g in zip(runs, togo):
                for vec, a, t in decisions:
                    t = int(t)
                    adv = g[t + 1] - mean_togo[t + 1]  # the decision after frame t affects frames > t
                    p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, float(np.dot(w, vec)) + b))))
                    grad_w += adv * (a - p) * vec
                    grad_b += adv * (a - p)
                    n += 1
        if n:
            w += lr * grad_w / n
            b += lr * grad_b / n
        history.append(float(np.mean(returns)))
        if log:
            print(f"iteration {it + 1}/{iterations} mean return {history[-1]:.2f} "
                  f"w {np.round(w, 3).tolist()} b {b:.3f}", flush=True)
    return LogisticPolicy(tuple(float(v) for v in w), b), history
