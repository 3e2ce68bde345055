"""Comparing two class maps of the same grid: per-patch change, scores and transitions.

Definitions (documented in the dashboard and the README):
- **change score** = total-variation distance between the two dates' calibrated probability
  vectors, ``0.5 * sum(|p_a - p_b|)``, in 0..1: 0 when the model sees the same mixture on both
  dates, 1 when the two dates share no probability mass. It ranks patches by how much they
  changed, including changes within a class mixture that don't flip the top class.
- **uncertain**: the patch is cloudy / nodata on either date, or either date's top probability
  is under ``confidence`` (default 0.6).
- **changed**: otherwise, when the top classes differ and the score is at least ``min_score``
  (default 0: any confident flip counts); **unchanged** otherwise.
- **built-up change** = ``P_b(built) - P_a(built)`` with built = Highway + Industrial +
  Residential, in -1..1 (positive: more built-up on the later date). A secondary score for
  urban change: on the OSCD urban change maps its |value| ranks patches better than the
  change score (``measured_change_skill()``, docs/CHANGE_EVALUATION.md) because crop, pasture
  and water changes don't count.
- The transition matrix counts patches classified on both dates (confident or not), in
  patches and hectares (a full 64x64 patch at 10 m is 40.96 ha; patches cut by the AOI count
  their real share).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lulc_core.classify import ClassMap

CHANGE_EVALUATION = Path(__file__).parent / "data" / "change_eval.json"
DEFAULT_CONFIDENCE = 0.6
DEFAULT_MIN_SCORE = 0.0

UNCHANGED, CHANGED, UNCERTAIN, OUTSIDE = 0, 1, 2, 3
BUILT_UP_CLASSES = ("Highway", "Industrial", "Residential")
STATE_NAMES = {UNCHANGED: "unchanged", CHANGED: "changed", UNCERTAIN: "uncertain", OUTSIDE: "outside"}


@dataclass(frozen=True)
class ChangeThresholds:
    confidence: float = DEFAULT_CONFIDENCE
    min_score: float = DEFAULT_MIN_SCORE

    def __post_init__(self) -> None:
        if not 0 <= self.confidence <= 1 or not 0 <= self.min_score <= 1:
            raise ValueError("thresholds must lie in 0..1")


@dataclass
class ChangeResult:
    """Per-patch ``state`` and ``score`` (rows, cols); transitions and class areas."""

    a: ClassMap
    b: ClassMap
    thresholds: ChangeThresholds
    state: np.ndarray
    score: np.ndarray
    transition_patches: np.ndarray
    transition_ha: np.ndarray

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.a.class_names

    @property
    def area_a_ha(self) -> np.ndarray:
        return self.a.class_areas_ha()

    @property
    def area_b_ha(self) -> np.ndarray:
        return self.b.class_areas_ha()

    @property
    def net_change_ha(self) -> np.ndarray:
        return self.area_b_ha - self.area_a_ha

    @property
    def built_up_change(self) -> np.ndarray:
        """Signed change of built-up probability mass per patch (NaN unless classified on both dates)."""
        cols = [self.class_names.index(n) for n in BUILT_UP_CLASSES if n in self.class_names]
        pa = self.a.probs[..., cols].astype(np.float64).sum(axis=-1)
        pb = self.b.probs[..., cols].astype(np.float64).sum(axis=-1)
        return pb - pa

    def state_counts(self) -> dict[str, int]:
        return {name: int((self.state == k).sum()) for k, name in STATE_NAMES.items()}

    def state_areas_ha(self) -> dict[str, float]:
        return {name: float(self.a.area_ha[self.state == k].sum()) for k, name in STATE_NAMES.items()}


def tv_distance(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Total-variation distance along the last axis."""
    return 0.5 * np.abs(pa - pb).sum(axis=-1)


def compare(a: ClassMap, b: ClassMap, thresholds: ChangeThresholds = ChangeThresholds()) -> ChangeResult:
    """Change between two class maps on the same grid."""
    if a.grid != b.grid:
        raise ValueError("the two class maps are on different grids")
    if a.class_names != b.class_names:
        raise ValueError("the two class maps use different classes")
    n = len(a.class_names)
    both = a.classified & b.classified
    score = np.full(a.status.shape, np.nan)
    score[both] = tv_distance(a.probs[both].astype(np.float64), b.probs[both].astype(np.float64))
    la, lb = a.labels, b.labels
    confident = both & (a.confidence >= thresholds.confidence) & (b.confidence >= thresholds.confidence)
    state = np.full(a.status.shape, UNCERTAIN, dtype=np.int8)
    flipped = confident & (la != lb) & (score >= thresholds.min_score)
    state[confident] = UNCHANGED
    state[flipped] = CHANGED
    outside = (a.area_ha <= 0)
    state[outside] = OUTSIDE
    tp = np.zeros((n, n), dtype=np.int64)
    tha = np.zeros((n, n))
    np.add.at(tp, (la[both], lb[both]), 1)
    np.add.at(tha, (la[both], lb[both]), a.area_ha[both])
    return ChangeResult(a, b, thresholds, state, score, tp, tha)


def measured_change_skill(path: Path = CHANGE_EVALUATION) -> dict[str, float] | None:
    """Headline figures of the shipped model's change evaluation on OSCD urban change maps.

    Written by ``bench/eval_change_oscd.py`` (summary figures only); None when absent.
    Keys: auroc, f1 (of ``changed``), built_up_auroc, cva_auroc, cva_f1, patches, truly_changed.
    """
    try:
        d = json.loads(path.read_text())
        return {"auroc": d["model"]["auroc"], "f1": d["model"]["changed_state"]["f1"],
                "built_up_auroc": d["built_up_change"]["auroc"], "cva_auroc": d["cva_baseline"]["auroc"],
                "cva_f1": d["cva_baseline"]["otsu"]["f1"], "patches": d["patches"],
                "truly_changed": d["truly_changed"]}
    except (OSError, ValueError, KeyError):
        return None
