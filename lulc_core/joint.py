"""Two-date classification decided jointly: a cell keeps its class unless its own change evidence
makes a transition likely.

Two independent argmaxes flip as often where nothing changed as where something did (on the OSCD
areas a confident group flip showed on 8% of unchanged cells). Here the two dates' calibrated
probabilities ``pA``, ``pB`` are combined with a transition prior into a joint posterior over
(class on A, class on B) pairs::

    P(a, b) ∝ pA(a) · pB(b) · T(a -> b | evidence)
    T(a -> b) = (1 - π) · [a = b] + π · [a ≠ b] / (K - 1)

where ``π`` is ``P(change | evidence)`` (plus a transition bias, :class:`EvidenceModel`), the probability that the cell's land changed given its own
10 m change evidence (:class:`EvidenceModel`: a logistic curve of the logit of the cell's share
of changed pixels, fitted leave one area out on the OSCD change maps: two summary numbers
shipped in ``lulc_core/data/change_model.json``). With no evidence (``π`` near 0) the pair
keeps one class on both dates, the one with the largest ``pA(a) pB(a)``; with strong evidence
the two dates' own answers go through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

CHANGE_MODEL = Path(__file__).parent / "data" / "change_model.json"
SHARE_FLOOR = 0.002  # shares are clipped to [floor, 1 - floor] before the logit


@dataclass(frozen=True)
class EvidenceModel:
    """``π = sigmoid(intercept + slope · logit(share))``: P(change) of a cell from its share of
    changed 10 m pixels (no evidence, NaN share: ``π`` at a share of 0).

    ``transition_bias`` is added to the logit for the transition prior only
    (:meth:`p_transition`): the change mass ``π`` is spread over the K - 1 other classes, so
    without it a flip needs one date to be about K times surer of its new class than of the old
    one; the bias is tuned leave one area out so that confident group flips stay rare (<= 1%) on
    land that did not change."""

    intercept: float = -4.0
    slope: float = 1.0
    transition_bias: float = 0.0

    def _logit(self, share: np.ndarray) -> np.ndarray:
        s = np.clip(np.nan_to_num(np.asarray(share, dtype=np.float64), nan=0.0), SHARE_FLOOR, 1 - SHARE_FLOOR)
        return self.intercept + self.slope * np.log(s / (1 - s))

    def p_change(self, share: np.ndarray) -> np.ndarray:
        """P(change | share)."""
        return 1 / (1 + np.exp(-self._logit(share)))

    def p_transition(self, share: np.ndarray) -> np.ndarray:
        """The weight of change in the transition prior (P(change) with the transition bias)."""
        return 1 / (1 + np.exp(-(self._logit(share) + self.transition_bias)))

    @classmethod
    def fit(cls, share: np.ndarray, changed: np.ndarray, iterations: int = 50) -> "EvidenceModel":
        """Maximum-likelihood logistic fit of ``changed`` (bool) on logit(share) (Newton's method)."""
        s = np.clip(np.nan_to_num(np.asarray(share, dtype=np.float64)), SHARE_FLOOR, 1 - SHARE_FLOOR)
        x = np.column_stack([np.ones(len(s)), np.log(s / (1 - s))])
        y = np.asarray(changed, dtype=np.float64)
        w = np.zeros(2)
        for _ in range(iterations):
            p = 1 / (1 + np.exp(-(x @ w)))
            hess = x.T @ (x * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
            step = np.linalg.solve(hess, x.T @ (y - p))
            w += step
            if np.abs(step).max() < 1e-8:
                break
        return cls(float(w[0]), float(w[1]))

    def with_bias(self, bias: float) -> "EvidenceModel":
        return EvidenceModel(self.intercept, self.slope, float(bias))


@lru_cache(maxsize=4)
def shipped_evidence_model(path: Path = CHANGE_MODEL) -> EvidenceModel:
    """The evidence model fitted on the OSCD areas (``change_model.json``), else the default."""
    try:
        d = json.loads(Path(path).read_text())["evidence_model"]
        return EvidenceModel(float(d["intercept"]), float(d["slope"]), float(d.get("transition_bias", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return EvidenceModel()


def transition_prior(p_change: np.ndarray, n_classes: int) -> np.ndarray:
    """T(a -> b) for every cell: (..., K, K), rows summing to 1."""
    pi = np.asarray(p_change, dtype=np.float64)[..., None, None]
    eye = np.eye(n_classes)
    return (1 - pi) * eye + pi * (1 - eye) / (n_classes - 1)


def joint_posterior(pa: np.ndarray, pb: np.ndarray, p_change: np.ndarray) -> np.ndarray:
    """P(a, b) per cell, (..., K, K) summing to 1 over the last two axes (NaN where either date is NaN)."""
    pa = np.asarray(pa, dtype=np.float64)
    pb = np.asarray(pb, dtype=np.float64)
    j = pa[..., :, None] * pb[..., None, :] * transition_prior(p_change, pa.shape[-1])
    total = j.sum(axis=(-2, -1), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return j / total


def map_pair(joint: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most probable (a, b) pair of each cell and its probability; -1 / NaN where undefined."""
    k = joint.shape[-1]
    flat = np.nan_to_num(joint, nan=-1.0).reshape(*joint.shape[:-2], k * k)
    best = flat.argmax(-1)
    prob = np.take_along_axis(flat, best[..., None], -1)[..., 0]
    bad = prob < 0
    a, b = np.where(bad, -1, best // k), np.where(bad, -1, best % k)
    return a, b, np.where(bad, np.nan, prob)


def grouped(joint: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """The joint posterior summed into groups: (..., G, G) from (..., K, K) and a (K, G) 0/1 matrix."""
    return np.einsum("...ab,ag,bh->...gh", joint, membership, membership)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 50) -> np.ndarray:
    """Logistic regression of ``y`` (0/1) on ``x`` (N, F) by Newton's method, a small ridge ``l2`` on the
    slopes: the weights of [1, x...]."""
    X = np.column_stack([np.ones(len(x)), x])
    w = np.zeros(X.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(X @ w)))
        g = X.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


#: The inputs of :class:`CountedChangeModel`, in order: the cell's 10 m spectral share, its share
#: tolerant of 1 px of misregistration, the deep change features (:mod:`lulc_core.deep_change`) and
#: the share of conditional change (:mod:`lulc_core.conditional`).
COUNTED_INPUTS: tuple[str, ...] = ("share", "built_share", "conv1_share", "conv1_mean", "layer1_share", "layer1_mean",
                                   "conditional_share")


def counted_inputs(share: np.ndarray, built_share: np.ndarray, deep: np.ndarray,
                   conditional_share: np.ndarray) -> np.ndarray:
    """(..., 7) model inputs: logits of the shares (clipped to [floor, 1 - floor]; NaN as no change),
    logs of the mean distances (NaN as 0)."""
    cols = []
    for k, v in zip(COUNTED_INPUTS, [share, built_share] + [deep[..., i] for i in range(deep.shape[-1])]
                    + [conditional_share]):
        v = np.nan_to_num(np.asarray(v, dtype=np.float64), nan=0.0)
        if k.endswith("share"):
            v = np.clip(v, SHARE_FLOOR, 1 - SHARE_FLOOR)
            cols.append(np.log(v / (1 - v)))
        else:
            cols.append(np.log(np.maximum(v, 0.0) + 1e-3))
    return np.stack(cols, -1)


@dataclass(frozen=True)
class CountedChangeModel:
    """P(change a planner counts | evidence): a logistic model of :data:`COUNTED_INPUTS` (standardised
    by ``mean`` / ``scale``), fitted on the OSCD change maps leave one area out, and the ``threshold``
    above which a cell's change is counted (chosen for the best F1 of the counted change on the
    training areas). Inputs are clipped to the range seen in fitting (``low`` / ``high``): the model
    is not extrapolated (a scene against itself has mean distances of 0, far below any fitted cell).
    Only summary numbers: 7 means, scales, lows and highs, 8 weights and the threshold."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]  # intercept first
    threshold: float = 0.5
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def probability(self, share: np.ndarray, built_share: np.ndarray, deep: np.ndarray,
                    conditional_share: np.ndarray) -> np.ndarray:
        x = counted_inputs(share, built_share, deep, conditional_share)
        if self.low is not None and self.high is not None:
            x = np.clip(x, np.asarray(self.low), np.asarray(self.high))
        x = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1 / (1 + np.exp(-(self.weights[0] + x @ np.asarray(self.weights[1:]))))

    @classmethod
    def fit(cls, share: np.ndarray, built_share: np.ndarray, deep: np.ndarray, conditional_share: np.ndarray,
            changed: np.ndarray, l2: float = 1e-3, iterations: int = 50) -> "CountedChangeModel":
        """Maximum-likelihood fit (Newton's method, a little ridge) on cells; threshold left at 0.5."""
        x = counted_inputs(share, built_share, deep, conditional_share)
        mean, scale = x.mean(0), x.std(0) + 1e-9
        w = fit_logistic((x - mean) / scale, np.asarray(changed, dtype=np.float64), l2, iterations)
        return cls(tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, w)), 0.5,
                   tuple(map(float, x.min(0))), tuple(map(float, x.max(0))))

    def with_threshold(self, threshold: float) -> "CountedChangeModel":
        return replace(self, threshold=float(threshold))

    def to_json(self) -> dict:
        return {"inputs": list(COUNTED_INPUTS), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "threshold": self.threshold,
                "low": None if self.low is None else list(self.low),
                "high": None if self.high is None else list(self.high)}


@lru_cache(maxsize=4)
def shipped_counted_model(path: Path = CHANGE_MODEL) -> CountedChangeModel | None:
    """The counted-change model fitted on the OSCD areas (``change_model.json``), else None."""
    try:
        d = json.loads(Path(path).read_text())["counted_model"]
        if list(d["inputs"]) != list(COUNTED_INPUTS):
            return None
        bounds = [None if d.get(k) is None else tuple(map(float, d[k])) for k in ("low", "high")]
        return CountedChangeModel(tuple(map(float, d["mean"])), tuple(map(float, d["scale"])),
                                  tuple(map(float, d["weights"])), float(d["threshold"]), *bounds)
    except (OSError, ValueError, KeyError, TypeError):
        return None
