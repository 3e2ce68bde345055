"""Plain-words explanations shared by the dashboard and the HTML report."""

from __future__ import annotations

from lulc_core.change import ChangeThresholds
from lulc_core.grid import GEOMETRY, PATCH_M, RESOLUTION_M
from lulc_core.spectral import CHANGE_SD

CELL_M = GEOMETRY.cell_px * RESOLUTION_M


def change_rule_text(thresholds: ChangeThresholds) -> str:
    """The change decision in one paragraph (dashboard and report)."""
    level = "land-cover group" if thresholds.level == "group" else "class"
    return (f"A cell is <b>changed</b> when its top {level} differs between the dates, both dates are confident "
            f"(top {level} probability at least {thresholds.confidence:.2f}) and at least "
            f"{100 * thresholds.min_spectral:.0f}% of its comparable 10 m pixels show spectral change (date B "
            "normalised onto date A by regression on pseudo-invariant pixels; a pixel changes above the "
            f"scene's mean + {CHANGE_SD:g} standard deviations of the change magnitude, an unsupervised threshold). "
            "<b>Uncertain</b>: cloudy or no data on either date, or not confident. Class flips inside a group "
            "(for example crop rotation / season) and flips without spectral support are not counted as change. "
            "Change score (0..1): the share of the cell's 10 m pixels with spectral change.")


def change_skill_text(skill: dict | None) -> str:
    """What the change evaluation measured, in one sentence ('' when no figures are shipped)."""
    if not skill:
        return ""
    return (f"Measured on OSCD urban change maps, areas held out ({skill['patches']} patches of {PATCH_M:.0f} m, "
            f"{skill['truly_changed']} truly changed): change score AUROC {skill['auroc']:.2f}, F1 of "
            f"'changed' {skill['f1']:.2f}; {CELL_M:.0f} m cells: AUROC {skill['cell_auroc']:.2f}, F1 {skill['cell_f1']:.2f} "
            f"(spectral baseline AUROC {skill['baseline_auroc']:.2f}). See docs/CHANGE_EVALUATION.md.")

