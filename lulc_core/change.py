"""Change between two dates: the two dates classified jointly, then one kind of change per cell.

Inputs are two class maps on the same grid (160 m cells from the dense path, or 640 m patches)
and, optionally, the 10 m spectral change (:mod:`lulc_core.spectral`) as each cell's share of
changed pixels. The two dates' class probabilities are combined with the cell's own change
evidence into a joint posterior over (class A, class B) pairs (:mod:`lulc_core.joint`): a cell
keeps one class on both dates unless its evidence makes a transition likely. The class maps,
the per-cell transition, the from-to tables and P(change) all come from that posterior.
Definitions (shown in the dashboard, the report and the README):

- **Level**: ``group`` (default) decides land-cover change between the land-cover groups of
  :data:`~lulc_core.classes.LAND_COVER_GROUPS`; ``class`` between the 10 EuroSAT classes.
- **land-cover change** (counted): the most probable (A, B) pair changes group (class) and has
  a joint probability of at least ``confidence``.
- **built-up change** (counted): no land-cover change, but change evidence of the kind that
  construction, demolition and new roads leave: with the deep change evidence
  (:mod:`lulc_core.deep_change`) and the conditional change (:mod:`lulc_core.conditional`),
  P(counted change) of at least the :class:`~lulc_core.joint.CountedChangeModel`'s threshold, from
  the cell's 10 m shares, its deep change features and its share of conditional change, except in
  a cell confidently in agriculture and grassland on both dates with a built-up probability under
  :data:`SEASONAL_MAX_BUILT` on both (the season's work); the cell
  need not be built-up on either date. Without the deep evidence: at least
  ``min_built_spectral`` of the cell's 10 m pixels changed and the cell is built-up on either date.
- **natural dynamics** (shown, not counted): at least ``min_spectral`` of the 10 m pixels
  changed without either of the above (harvest, crop rotation, phenology, water level).
- **uncertain**: cloudy or no data on either date, no comparable 10 m pixel, or the most
  probable pair under ``confidence``; **unchanged**: everything else.
- The ``state`` (``changed`` / ``unchanged`` / ``uncertain`` / ``outside``) of the exports:
  ``changed`` is exactly the counted kinds.
- **change score** (``score``, 0..1, ranks cells): P(counted change) where the counted-change
  model's evidence was given; else the share of the cell's comparable 10 m pixels with spectral
  change; without spectral evidence the total-variation distance between the two dates' group
  probabilities.
- Tuned on the OSCD change maps, leave one area out (``lulc_core/data/change_model.json``):
  the evidence model's two numbers, the two spectral supports and the counted-change model
  (docs/CHANGE_EVALUATION.md).
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
from lulc_core.joint import (CHANGE_MODEL, CountedChangeModel, EvidenceModel, grouped, joint_posterior, map_pair,
                             shipped_counted_model, shipped_evidence_model)

CHANGE_EVALUATION = CHANGE_MODEL.with_name("change_eval.json")
DEFAULT_CONFIDENCE = 0.6
#: With the deep change evidence: a cell jointly in agriculture and grassland on both dates (confident)
#: whose built-up probability stays under this on both dates shows natural dynamics, whatever its evidence.
#: A new housing block of 320 m x 320 m pasted into a field raises the cells' built-up probability to
#: 0.10-0.17 (tests/test_change.py); on the OSCD areas 0.02-0.2 all give cells F1 0.515-0.518.
SEASONAL_MAX_BUILT = 0.05
LEVELS = ("group", "class")



class ChangeState(IntEnum):
    """The change decision of a cell; the values are those stored in the exports."""

    UNCHANGED = 0
    CHANGED = 1
    UNCERTAIN = 2
    OUTSIDE = 3


STATE_NAMES = {s.value: s.name.lower() for s in ChangeState}
BUILT_UP_CLASSES = LAND_COVER_GROUPS[0].classes
BUILT_UP_SHARE = 0.5  # a date is built-up when its built-up classes hold at least this probability


class ChangeKind(IntEnum):
    """What happened in a cell between the dates; the values are those stored in the exports."""

    UNCHANGED = 0
    LAND_COVER = 1
    BUILT_UP = 2
    NATURAL = 3
    UNCERTAIN = 4
    OUTSIDE = 5


KIND_NAMES = {ChangeKind.UNCHANGED: "unchanged", ChangeKind.LAND_COVER: "land-cover change",
              ChangeKind.BUILT_UP: "built-up change", ChangeKind.NATURAL: "natural dynamics",
              ChangeKind.UNCERTAIN: "uncertain", ChangeKind.OUTSIDE: "outside"}
COUNTED_KINDS = (ChangeKind.LAND_COVER, ChangeKind.BUILT_UP)
#: Plain-words definitions of the kinds (dashboard, report, README).
KIND_DEFINITIONS = {
    ChangeKind.LAND_COVER: "the cell's most probable pair of classes on the two dates, decided jointly with its "
                           "own change evidence, moves between land-cover groups",
    ChangeKind.BUILT_UP: "change evidence of the kind construction, demolition and new roads leave (the 10 m "
                         "spectral change, the pixels unlike what their kind of surface did between the dates and "
                         "the change in the classifier's early layers, judged together by a model fitted on urban "
                         "change maps), even without a group change and in a cell not yet "
                         "classed built-up, but not in fields or grassland on both dates with no sign of built-up "
                         "(the season's work); where the early layers give no evidence: strong 10 m change evidence "
                         "in a cell built-up on either date",
    ChangeKind.NATURAL: "10 m change evidence without either of the above (harvest, crop rotation, phenology, "
                        "water level): shown, not counted",
    ChangeKind.UNCHANGED: "confident, and no change evidence beyond the natural-dynamics support",
    ChangeKind.UNCERTAIN: "cloud or no data on either date, no comparable 10 m pixel, or not confident",
}

DEFAULT_MIN_SPECTRAL = 0.1  # used when the tuned values are not shipped
DEFAULT_MIN_BUILT_SPECTRAL = 0.1


def _shipped(key: str, default: float, path: Path = CHANGE_MODEL) -> float:
    try:
        return float(json.loads(Path(path).read_text())[key])
    except (OSError, ValueError, KeyError, TypeError):
        return default


@lru_cache(maxsize=4)
def tuned_min_spectral(path: Path = CHANGE_MODEL) -> float:
    """The shipped natural-dynamics spectral support (tuned on OSCD, leave one area out), else the default."""
    return _shipped("min_spectral", DEFAULT_MIN_SPECTRAL, path)


@lru_cache(maxsize=4)
def tuned_min_built_spectral(path: Path = CHANGE_MODEL) -> float:
    """The shipped built-up change spectral support (tuned on OSCD, leave one area out), else the default."""
    return _shipped("min_built_spectral", DEFAULT_MIN_BUILT_SPECTRAL, path)


@dataclass(frozen=True)
class ChangeThresholds:
    """The decision rule's settings: confidence of the joint pair, spectral supports, level."""

    confidence: float = DEFAULT_CONFIDENCE
    min_spectral: float = field(default_factory=tuned_min_spectral)
    level: str = "group"
    min_built_spectral: float = field(default_factory=tuned_min_built_spectral)

    def __post_init__(self) -> None:
        if not all(0 <= v <= 1 for v in (self.confidence, self.min_spectral, self.min_built_spectral)):
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
    """Per-cell ``kind``, ``state`` and ``score`` with the joint two-date classification behind them.

    ``a`` / ``b``: the class maps of the joint posterior (its marginals; what the maps show);
    ``independent_a`` / ``independent_b``: each date's classifier alone. ``label_a`` / ``label_b``:
    the most probable (A, B) class pair per cell (-1 where not classified); the transition tables
    count them over cells that are neither uncertain nor outside.
    """

    a: ClassMap
    b: ClassMap
    independent_a: ClassMap
    independent_b: ClassMap
    thresholds: ChangeThresholds
    kind: np.ndarray
    state: np.ndarray
    score: np.ndarray
    p_change: np.ndarray  # P(change at the level) from the joint posterior, NaN unless classified on both
    p_evidence: np.ndarray  # P(change | the cell's own evidence), the transition prior's weight
    spectral_share: np.ndarray
    built_share: np.ndarray  # the built-up change evidence (misregistration-tolerant share)
    label_a: np.ndarray
    label_b: np.ndarray
    pair_probability: np.ndarray  # joint probability of the most probable pair at the level
    transition_ha: np.ndarray  # (classes, classes)
    transition_cells: np.ndarray
    independent_flip_ha: float  # the two dates' own argmaxes change group, the joint decision keeps it
    within_group_ha: float  # the pair changes class inside one group (natural dynamics at group level)
    p_counted: np.ndarray | None = None  # P(counted change | evidence), given deep and conditional evidence
    deep: np.ndarray | None = None  # (rows, cols, 4) deep change features (lulc_core.deep_change.FEATURES)
    counted_model: CountedChangeModel | None = None  # the model behind p_counted
    conditional_share: np.ndarray | None = None  # share of conditional 10 m change (lulc_core.conditional)

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
        """Hectares of each class on date A (the pairs' A classes, counted cells)."""
        return self.transition_ha.sum(axis=1)

    @property
    def area_b_ha(self) -> np.ndarray:
        return self.transition_ha.sum(axis=0)

    @property
    def net_change_ha(self) -> np.ndarray:
        return self.area_b_ha - self.area_a_ha

    @property
    def compared_ha(self) -> float:
        """Hectares counted in the transition tables (neither uncertain nor outside)."""
        return float(self.transition_ha.sum())

    @property
    def left_out_ha(self) -> float:
        """Hectares inside the AOI not counted in the transitions (uncertain)."""
        return float(self.a.area_ha[self.state == ChangeState.UNCERTAIN].sum())

    @property
    def counted(self) -> np.ndarray:
        """Cells whose change is counted (land-cover or built-up change)."""
        return np.isin(self.kind, COUNTED_KINDS)

    def gains_losses(self, level: str = "group") -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """(names, gains_ha, losses_ha) per group or class from the transitions."""
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
        """Signed change of built-up probability mass per cell (joint maps; NaN unless classified on both)."""
        cols = [self.class_names.index(n) for n in BUILT_UP_CLASSES if n in self.class_names]
        pa = self.a.probs[..., cols].astype(np.float64).sum(axis=-1)
        pb = self.b.probs[..., cols].astype(np.float64).sum(axis=-1)
        return pb - pa

    def state_counts(self) -> dict[str, int]:
        return {name: int((self.state == k).sum()) for k, name in STATE_NAMES.items()}

    def state_areas_ha(self) -> dict[str, float]:
        return {name: float(self.a.area_ha[self.state == k].sum()) for k, name in STATE_NAMES.items()}

    def kind_areas_ha(self) -> dict[str, float]:
        return {name: float(self.a.area_ha[self.kind == k].sum()) for k, name in KIND_NAMES.items()}


def _marginal_map(m: ClassMap, probs: np.ndarray) -> ClassMap:
    return ClassMap(m.grid, np.where(m.classified[..., None], probs, np.nan).astype(np.float32), m.status,
                    m.area_ha, m.class_names, m.refined, m.refined_share)


def compare(a: ClassMap, b: ClassMap, thresholds: ChangeThresholds | None = None,
            spectral_share: np.ndarray | None = None, evidence: EvidenceModel | None = None,
            built_share: np.ndarray | None = None, deep: np.ndarray | None = None,
            counted_model: CountedChangeModel | None = None,
            conditional_share: np.ndarray | None = None) -> ChangeResult:
    """Joint two-date classification and the kind of change of every cell (see the module docstring).

    ``spectral_share``: per cell, the share of comparable 10 m pixels with spectral change (NaN =
    no comparable pixel). Without it (None) the cells' evidence is unknown: the transition prior
    is uninformative (P(change) = 1/2) and only land-cover change can be found.
    ``evidence``: P(change | share) (default: the shipped model). ``built_share``: the evidence of
    built-up change, the share measured tolerant of 1 px misregistration (built-up texture makes
    a shifted date look changed); default ``spectral_share``. ``deep`` (the deep change features) and
    ``conditional_share`` (the share of conditional change): with both, built-up change is decided by
    the counted-change model (default: the shipped one), else by the built-up share rule."""
    thresholds = thresholds or ChangeThresholds()
    if a.grid != b.grid:
        raise ValueError("the two class maps are on different grids")
    if a.class_names != b.class_names:
        raise ValueError("the two class maps use different classes")
    shape = a.status.shape
    if spectral_share is not None and spectral_share.shape != shape:
        raise ValueError(f"spectral evidence {spectral_share.shape} does not match the grid {shape}")
    evidence = evidence or shipped_evidence_model()
    n = len(a.class_names)
    gm = group_matrix(a.class_names)
    groups = np.array(group_of_classes(a.class_names))
    both = a.classified & b.classified
    pa, pb = np.nan_to_num(a.probs.astype(np.float64)), np.nan_to_num(b.probs.astype(np.float64))
    if spectral_share is None:
        share = np.full(shape, np.nan)
        p_evidence = p_prior = np.where(both, 0.5, np.nan)
        has_evidence = both
    else:
        share = spectral_share.astype(np.float64)
        p_evidence = np.where(both, evidence.p_change(share), np.nan)
        p_prior = np.where(both, evidence.p_transition(share), np.nan)
        has_evidence = both & np.isfinite(share)
    joint = joint_posterior(pa, pb, np.nan_to_num(p_prior, nan=0.5))
    joint[~both] = np.nan
    filled = np.nan_to_num(joint)  # 0 where either date is not classified
    # the most probable pair at the level, then the most probable class pair inside it
    if thresholds.level == "group":
        jg = grouped(filled, gm)
        ga, gb, pair_p = map_pair(np.where(both[..., None, None], jg, np.nan))
        block = (groups[:, None] == ga[..., None, None]) & (groups[None, :] == gb[..., None, None])
        ka, kb, _ = map_pair(np.where(block, joint, 0.0))
        flip = ga != gb
        diff = groups[:, None] != groups[None, :]
    else:
        ka, kb, pair_p = map_pair(joint)
        flip = ka != kb
        diff = ~np.eye(n, dtype=bool)
    ka, kb = np.where(both, ka, -1), np.where(both, kb, -1)
    p_change = np.where(both, filled[..., diff].sum(-1), np.nan)
    confident = both & (np.nan_to_num(pair_p) >= thresholds.confidence)
    marg_a, marg_b = filled.sum(-1), filled.sum(-2)
    built = [a.class_names.index(c) for c in BUILT_UP_CLASSES if c in a.class_names]
    # built-up on either date, as that date's own classifier says (at least half the probability)
    built_either = (pa[..., built].sum(-1) >= BUILT_UP_SHARE) | (pb[..., built].sum(-1) >= BUILT_UP_SHARE)
    s = np.nan_to_num(share, nan=-1.0)
    kind = np.full(shape, ChangeKind.UNCERTAIN, dtype=np.int8)
    ok = confident & has_evidence
    kind[ok] = ChangeKind.UNCHANGED
    kind[ok & (s >= thresholds.min_spectral)] = ChangeKind.NATURAL
    sb = s if built_share is None else np.nan_to_num(built_share.astype(np.float64), nan=-1.0)
    evidence_given = deep is not None and conditional_share is not None
    counted_model = counted_model or (shipped_counted_model() if evidence_given else None)
    p_counted = None
    if evidence_given and counted_model is not None and spectral_share is not None:
        if deep.shape[:2] != shape or conditional_share.shape != shape:
            raise ValueError(f"deep / conditional change evidence {deep.shape[:2]} / {conditional_share.shape} "
                             f"does not match the grid {shape}")
        p_counted = np.where(both, counted_model.probability(share, share if built_share is None else built_share,
                                                             deep, conditional_share), np.nan)
        # a confident pair inside agriculture and grassland, with no hint of built-up on either date, is the
        # season's work (harvest, ploughing, crop rotation), not a building site
        farmed = groups == group_of_classes(("AnnualCrop",))[0]
        seasonal = (confident & farmed[np.maximum(ka, 0)] & farmed[np.maximum(kb, 0)]
                    & (pa[..., built].sum(-1) < SEASONAL_MAX_BUILT) & (pb[..., built].sum(-1) < SEASONAL_MAX_BUILT))
        kind[has_evidence & ~seasonal & (np.nan_to_num(p_counted) >= counted_model.threshold)] = ChangeKind.BUILT_UP
    else:
        kind[has_evidence & built_either & (sb >= thresholds.min_built_spectral)] = ChangeKind.BUILT_UP
    kind[ok & flip] = ChangeKind.LAND_COVER
    kind[a.area_ha <= 0] = ChangeKind.OUTSIDE
    state = np.full(shape, ChangeState.UNCERTAIN, dtype=np.int8)
    state[np.isin(kind, (ChangeKind.UNCHANGED, ChangeKind.NATURAL))] = ChangeState.UNCHANGED
    state[np.isin(kind, COUNTED_KINDS)] = ChangeState.CHANGED
    state[kind == ChangeKind.OUTSIDE] = ChangeState.OUTSIDE
    group_distance = np.where(both, tv_distance(pa @ gm, pb @ gm), np.nan)
    score = np.where(both, group_distance if spectral_share is None else share if p_counted is None else p_counted,
                     np.nan)
    counted = (state == ChangeState.CHANGED) | (state == ChangeState.UNCHANGED)
    tc, tha = np.zeros((n, n), dtype=np.int64), np.zeros((n, n))
    np.add.at(tc, (ka[counted], kb[counted]), 1)
    np.add.at(tha, (ka[counted], kb[counted]), a.area_ha[counted])
    own_flip = both & (groups[pa.argmax(-1)] != groups[pb.argmax(-1)]) & (groups[np.clip(ka, 0, None)]
                                                                          == groups[np.clip(kb, 0, None)])
    within = counted & (ka != kb) & (groups[np.clip(ka, 0, None)] == groups[np.clip(kb, 0, None)])
    return ChangeResult(
        _marginal_map(a, marg_a), _marginal_map(b, marg_b), a, b, thresholds, kind, state, score, p_change,
        p_evidence, share, share if built_share is None else built_share.astype(np.float64), ka, kb, pair_p, tha, tc, float(a.area_ha[own_flip & (a.area_ha > 0)].sum()),
        float(a.area_ha[within].sum()) if thresholds.level == "group" else 0.0, p_counted,
        None if deep is None else deep.astype(np.float32), counted_model if p_counted is not None else None,
        None if conditional_share is None else conditional_share.astype(np.float32))


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
