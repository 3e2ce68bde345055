"""Plain-words explanations shared by the dashboard and the HTML report."""

from __future__ import annotations

import numpy as np

from lulc_core.cells import STATUS_NAMES
from lulc_core.change import KIND_NAMES, ChangeResult, ChangeThresholds
from lulc_core.grid import GEOMETRY, PATCH_M, RESOLUTION_M
from lulc_core.joint import CountedChangeModel
from lulc_core.spectral import CHANGE_SD

CELL_M = GEOMETRY.cell_px * RESOLUTION_M


def change_rule_text(thresholds: ChangeThresholds, counted: CountedChangeModel | None = None) -> str:
    """The change decision in one paragraph (dashboard and report). ``counted``: the counted-change model
    when the analysis had the deep change evidence (the per-window classifier), else the built-up share
    rule is described."""
    level = "land-cover group" if thresholds.level == "group" else "class"
    if counted is not None:
        built = ("<b>built-up change</b> (counted): no land-cover change, but change evidence of the kind that "
                 "construction, demolition and new roads leave, judged jointly from the cell's 10 m spectral change, "
                 "its conditional change (pixels unlike what their kind of surface did between the dates, so a season "
                 "that moves every field alike is not change) and the change in the classifier's own early layers "
                 "(deep change vectors): P(counted change) of at "
                 f"least {counted.threshold:.2f} by a model fitted on OSCD urban change maps, except where both dates "
                 "are confidently agriculture or grassland with no sign of built-up (the season's work); the cell "
                 "need not be classified built-up on either date (a building site on a field rarely is); ")
    else:
        built = (f"<b>built-up change</b> (counted): at least {100 * thresholds.min_built_spectral:.0f}% of its 10 m "
                 "pixels changed in a cell built-up on either date (construction, demolition, new roads), even "
                 "without a group change; ")
    return ("The two dates are classified <b>jointly</b>: a cell keeps one class on both dates unless its own "
            "10 m change evidence makes a transition likely (date B normalised onto date A by regression on "
            "pseudo-invariant pixels; a pixel changes above the scene's mean + "
            f"{CHANGE_SD:g} standard deviations of the change magnitude). Each cell gets one kind: "
            f"<b>land-cover change</b> (counted): the most probable pair of classes changes {level} with a joint "
            f"probability of at least {thresholds.confidence:.2f}; " + built + "<b>natural dynamics</b> "
            f"(shown, not counted): at least {100 * thresholds.min_spectral:.0f}% of its 10 m pixels changed "
            "otherwise (harvest, crop rotation, phenology, water level); <b>uncertain</b>: cloudy or no data on "
            "either date, or not confident; <b>unchanged</b>: the rest. Change score (0..1): "
            + ("P(counted change)." if counted is not None else "the share of the cell's 10 m pixels with spectral change."))


def change_skill_text(skill: dict | None) -> str:
    """What the change evaluation measured, in one sentence ('' when no figures are shipped)."""
    if not skill:
        return ""
    return (f"Measured on OSCD urban change maps, areas held out ({skill['patches']} patches of {PATCH_M:.0f} m, "
            f"{skill['truly_changed']} truly changed): change score AUROC {skill['auroc']:.2f}, F1 of "
            f"'changed' {skill['f1']:.2f}; {CELL_M:.0f} m cells: AUROC {skill['cell_auroc']:.2f}, F1 {skill['cell_f1']:.2f} "
            f"(spectral baseline AUROC {skill['baseline_auroc']:.2f}). See docs/CHANGE_EVALUATION.md.")



def why_cell(change: ChangeResult, row: int, col: int) -> str:
    """Why a cell is what it is, in one paragraph (markdown): each date's classifier alone, the change
    evidence, the joint pair and its probability, P(change) and the kind."""
    names = change.class_names
    kind = KIND_NAMES[int(change.kind[row, col])]
    parts = []
    for label, m in (("A", change.independent_a), ("B", change.independent_b)):
        if m.classified[row, col]:
            p = m.probs[row, col]
            k = int(np.argmax(p))
            parts.append(f"date {label}'s classifier alone: {names[k]} {p[k]:.2f}")
        else:
            parts.append(f"date {label}: {STATUS_NAMES[int(m.status[row, col])]}")
    share = change.spectral_share[row, col]
    if np.isfinite(share):
        parts.append(f"{100 * share:.0f}% of its 10 m pixels changed, so P(change | evidence) "
                     f"{change.p_evidence[row, col]:.2f}")
    if change.p_counted is not None and np.isfinite(change.p_counted[row, col]):
        d = change.deep[row, col]
        deep = (f"{100 * d[0]:.0f}% of its stem and {100 * d[2]:.0f}% of its layer-1 locations changed in the "
                "classifier's early layers" if np.isfinite(d).all() else "no deep change evidence")
        c = np.nan if change.conditional_share is None else change.conditional_share[row, col]
        conditional = (f"{100 * c:.0f}% of its 10 m pixels unlike what their kind of surface did (conditional change)"
                       if np.isfinite(c) else "no conditional change evidence")
        parts.append(f"{conditional}; {deep}, so P(counted change) {change.p_counted[row, col]:.2f}")
    ka, kb = int(change.label_a[row, col]), int(change.label_b[row, col])
    if ka >= 0 and kb >= 0:
        level = "group" if change.thresholds.level == "group" else "class"
        parts.append(f"jointly {names[ka]} -> {names[kb]} (pair probability at {level} level "
                     f"{change.pair_probability[row, col]:.2f}; P({level} change) {change.p_change[row, col]:.2f})")
    return f"**{kind.capitalize()}**: " + "; ".join(parts) + "."
