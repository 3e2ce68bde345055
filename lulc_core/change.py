"""Change between two dates: one decision per cell from class and spectral evidence.

Inputs are two class maps on the same grid (160 m cells from the dense path, or 640 m patches)
and, optionally, the 10 m spectral change (:mod:`lulc_core.spectral`). Definitions (shown in the
dashboard, the report and the README):

- **Level**: ``group`` (default) compares the land-cover groups of
  :data:`~lulc_core.classes.LAND_COVER_GROUPS` (group probability = sum of its classes'
  probabilities); ``class`` compares the 10 EuroSAT classes.
- **uncertain**: the cell is cloudy or without data on either date, or the top probability at the
  chosen level is under ``confidence`` on either date.
- **changed**: otherwise, when the top group (class) differs between the dates *and* at least
  ``min_spectral`` of the cell's comparable 10 m pixels show spectral change (the evidence
  agrees). Without spectral evidence (``spectral=None``) a confident flip suffices.
- **unchanged**: everything else, including class flips inside one group at group level
  (shown as such, e.g. "crop rotation / season") and flips without spectral support.
- **change score** (``score``, 0..1, ranks cells): the share of the cell's comparable 10 m
  pixels with spectral change (without spectral evidence: the total-variation distance between
  the two dates' group probabilities). On the OSCD change maps a logistic combination with the
  group-probability distance ranked worse than the spectral share alone, held out area by area
  (docs/CHANGE_EVALUATION.md), so the score is not tuned. The only tuned number is the default
  spectral support, ``min_spectral`` (``lulc_core/data/change_model.json``, leave one area out).
- **Transitions** count only cells confident on both dates (``changed`` or ``unchanged``); the
  hectares left out are reported. A flip not supported by the spectral evidence counts as no
  change (on the diagonal), so the group table's off-diagonal is exactly the changed area.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from pathlib import Path

import numpy as np

from lulc_core.classes import GROUP_NAMES, LAND_COVER_GROUPS, group_of_classes
from lulc_core.classify import ClassMap
from lulc_core.errors import ThresholdError

DATA_DIR = Path(__file__).parent / "data"
CHANGE_EVALUATION = DATA_DIR / "change_eval.json"
CHANGE_MODEL = DATA_DIR / "change_model.json"
DEFAULT_CONFIDENCE = 0.6
LEVELS = ("group", "class")



class ChangeState(IntEnum):
    """The change decision of a cell; the values are those stored in the exports."""

    UNCHANGED = 0
    CHANGED = 1
    UNCERTAIN = 2
    OUTSIDE = 3


STATE_NAMES = {s.value: s.name.lower() for s in ChangeState}
BUILT_UP_CLASSES = LAND_COVER_GROUPS[0].classes


DEFAULT_MIN_SPECTRAL = 0.1  # used when the tuned value is not shipped


@lru_cache(maxsize=4)
def tuned_min_spectral(path: Path = CHANGE_MODEL) -> float:
    """The shipped spectral-support threshold (tuned on OSCD, leave one area out), else the default."""
    try:
        return float(json.loads(Path(path).read_text())["min_spectral"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_MIN_SPECTRAL


@dataclass(frozen=True)
class ChangeThresholds:
    """The decision rule's settings: confidence at the chosen level, spectral support, level."""

    confidence: float = DEFAULT_CONFIDENCE
    min_spectral: float = field(default_factory=tuned_min_spectral)
    level: str = "group"

    def __post_init__(self) -> None:
        if not 0 <= self.confidence <= 1 or not 0 <= self.min_spectral <= 1:
            raise ThresholdError("thresholds must lie in 0..1")
        if self.level not in LEVELS:
            raise ThresholdError(f"unknown change level {self.level!r}; use one of {', '.join(LEVELS)}")


def group_matrix(class_names: tuple[str, ...]) -> np.ndarray:
    """(classes, groups) 0/1 matrix: probabilities @ matrix = group probabilities."""
    idx = group_of_classes(class_names)
    m = np.zeros((len(class_names), len(LAND_COVER_GROUPS)))
    m[np.arange(len(class_names)), idx] = 1
    return m


def tv_distance(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Total-variation distance along the last axis."""
    return 0.5 * np.abs(pa - pb).sum(axis=-1)


@dataclass
class ChangeResult:
    """Per-cell ``state``, ``score`` (change score, 0..1) and evidence; transitions in hectares."""

    a: ClassMap
    b: ClassMap
    thresholds: ChangeThresholds
    state: np.ndarray
    score: np.ndarray
    spectral_share: np.ndarray
    group_distance: np.ndarray
    transition_ha: np.ndarray  # (classes, classes), confident cells, unsupported flips on the diagonal
    transition_cells: np.ndarray
    unsupported_flip_ha: float
    within_group_ha: float
    spectral_only_ha: float = 0.0  # confident, spectral change supported, but no flip at the level

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.a.class_names

    @property
    def group_names(self) -> tuple[str, ...]:
        return GROUP_NAMES

    @property
    def groups(self) -> np.ndarray:
        """Group index of each class."""
        return np.array(group_of_classes(self.class_names))

    @property
    def group_transition_ha(self) -> np.ndarray:
        m = group_matrix(self.class_names)
        return m.T @ self.transition_ha @ m

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
    def compared_ha(self) -> float:
        """Hectares confident on both dates (counted in the transition tables)."""
        return float(self.transition_ha.sum())

    @property
    def left_out_ha(self) -> float:
        """Hectares inside the AOI not counted in the transitions (uncertain)."""
        return float(self.a.area_ha[self.state == ChangeState.UNCERTAIN].sum())

    def gains_losses(self, level: str = "group") -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """(names, gains_ha, losses_ha) per group or class from the confident transitions."""
        m = self.group_transition_ha if level == "group" else self.transition_ha
        names = self.group_names if level == "group" else self.class_names
        off = m - np.diag(np.diag(m))
        return names, off.sum(axis=0), off.sum(axis=1)

    def transition_kind(self, i: int, j: int) -> str:
        """'no change', 'land-cover change' or the group's within-group name for classes i -> j."""
        if i == j:
            return "no change"
        g = self.groups
        if g[i] != g[j] or self.thresholds.level == "class":
            return "land-cover change"
        return LAND_COVER_GROUPS[g[i]].within

    @property
    def built_up_change(self) -> np.ndarray:
        """Signed change of built-up probability mass per cell (NaN unless classified on both dates)."""
        cols = [self.class_names.index(n) for n in BUILT_UP_CLASSES if n in self.class_names]
        pa = self.a.probs[..., cols].astype(np.float64).sum(axis=-1)
        pb = self.b.probs[..., cols].astype(np.float64).sum(axis=-1)
        return pb - pa

    def state_counts(self) -> dict[str, int]:
        return {name: int((self.state == k).sum()) for k, name in STATE_NAMES.items()}

    def state_areas_ha(self) -> dict[str, float]:
        return {name: float(self.a.area_ha[self.state == k].sum()) for k, name in STATE_NAMES.items()}


def compare(a: ClassMap, b: ClassMap, thresholds: ChangeThresholds | None = None,
            spectral_share: np.ndarray | None = None) -> ChangeResult:
    """Change between two class maps on one grid; ``spectral_share`` is per cell (NaN = no evidence)."""
    thresholds = thresholds or ChangeThresholds()
    if a.grid != b.grid:
        raise ValueError("the two class maps are on different grids")
    if a.class_names != b.class_names:
        raise ValueError("the two class maps use different classes")
    shape = a.status.shape
    if spectral_share is not None and spectral_share.shape != shape:
        raise ValueError(f"spectral evidence {spectral_share.shape} does not match the grid {shape}")
    gm = group_matrix(a.class_names)
    both = a.classified & b.classified
    pa, pb = np.nan_to_num(a.probs.astype(np.float64)), np.nan_to_num(b.probs.astype(np.float64))
    ga, gb = pa @ gm, pb @ gm
    group_distance = np.where(both, tv_distance(ga, gb), np.nan)
    if thresholds.level == "group":
        la, lb = ga.argmax(-1), gb.argmax(-1)
        ca, cb = ga.max(-1), gb.max(-1)
    else:
        la, lb = pa.argmax(-1), pb.argmax(-1)
        ca, cb = pa.max(-1), pb.max(-1)
    confident = both & (ca >= thresholds.confidence) & (cb >= thresholds.confidence)
    share = np.full(shape, np.nan) if spectral_share is None else spectral_share.astype(np.float64)
    if spectral_share is None:
        supported = np.ones(shape, bool)
    else:
        supported = np.nan_to_num(share, nan=-1.0) >= thresholds.min_spectral
        confident &= np.isfinite(share)  # no comparable 10 m pixel: the evidence is missing
    flip = la != lb
    state = np.full(shape, ChangeState.UNCERTAIN, dtype=np.int8)
    state[confident] = ChangeState.UNCHANGED
    state[confident & flip & supported] = ChangeState.CHANGED
    state[a.area_ha <= 0] = ChangeState.OUTSIDE
    score = np.where(both, group_distance if spectral_share is None else share, np.nan)
    counted = (state == ChangeState.CHANGED) | (state == ChangeState.UNCHANGED)
    ka, kb = a.labels.astype(np.int64), b.labels.astype(np.int64)
    unsupported = counted & flip & ~supported
    kb_counted = np.where(unsupported, ka, kb)  # a flip without spectral support is no change
    n = len(a.class_names)
    tc, tha = np.zeros((n, n), dtype=np.int64), np.zeros((n, n))
    np.add.at(tc, (ka[counted], kb_counted[counted]), 1)
    np.add.at(tha, (ka[counted], kb_counted[counted]), a.area_ha[counted])
    groups = np.array(group_of_classes(a.class_names))
    within = counted & ~unsupported & (ka != kb) & (groups[np.clip(ka, 0, None)] == groups[np.clip(kb, 0, None)])
    within_ha = float(a.area_ha[within].sum()) if thresholds.level == "group" else 0.0
    spectral_only = counted & ~flip & supported & (spectral_share is not None)
    return ChangeResult(a, b, thresholds, state, score, share, group_distance, tha, tc,
                        float(a.area_ha[unsupported].sum()), within_ha, float(a.area_ha[spectral_only].sum()))


def measured_change_skill(path: Path = CHANGE_EVALUATION) -> dict | None:
    """Headline figures of the shipped change evaluation on OSCD (held-out areas), or None.

    Written by ``bench/eval_change_oscd.py`` (summary figures only). Keys: auroc, f1, cell_auroc,
    cell_f1, baseline_auroc, baseline_f1, patches, truly_changed.
    """
    try:
        d = json.loads(Path(path).read_text())
        h = d["headline"]
        return {k: h[k] for k in ("auroc", "f1", "cell_auroc", "cell_f1", "baseline_auroc", "baseline_f1",
                                  "patches", "truly_changed")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
