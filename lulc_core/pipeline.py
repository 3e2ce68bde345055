"""The whole analysis as one call: AOI + two date windows -> scenes -> dense class maps ->
10 m spectral change -> one change decision per cell.

Stages report progress as ``progress(stage, fraction, message)`` with the stages in
:data:`STAGES`, so the CLI and the dashboard show the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lulc_core.aoi import AOI
from lulc_core.change import ChangeResult, ChangeThresholds, compare
from lulc_core.classify import CELL_PX, ClassMap, classify_cells
from lulc_core.patches import MAX_CLOUD, MAX_NODATA
from lulc_core.scene import Acquisition, DateWindow, Scene, check_window_order
from lulc_core.season import representative_date, season_note
from lulc_core.spectral import SpectralChange, spectral_change

STAGES = ("search", "fetch A", "fetch B", "classify A", "classify B", "spectral change")
StageProgress = Callable[[str, float, str], None]


@dataclass
class DateResult:
    """One date: the window, what search found, the Scene and its dense class map (cells)."""

    window: DateWindow
    acquisitions: list[Acquisition]
    scene: Scene
    classes: ClassMap

    @property
    def date(self):
        """The representative acquisition date (middle of a composite)."""
        return representative_date(self.scene.dates, self.window)


@dataclass
class Analysis:
    aoi: AOI
    a: DateResult
    b: DateResult
    spectral: SpectralChange
    change: ChangeResult
    provider: str
    notes: list[str] = field(default_factory=list)

    @property
    def grid(self):
        """The cell grid of the class maps and the change."""
        return self.a.classes.grid

    @property
    def processing_units(self) -> float:
        return self.a.scene.processing_units + self.b.scene.processing_units

    @property
    def season_note(self) -> str | None:
        return season_note(self.a.date, self.b.date)

    def recompare(self, thresholds: ChangeThresholds) -> "Analysis":
        """The same analysis with other change thresholds (no refetch, no reclassification)."""
        return Analysis(self.aoi, self.a, self.b, self.spectral,
                        compare(self.a.classes, self.b.classes, thresholds, self.change.spectral_share),
                        self.provider, self.notes)


def run_analysis(aoi: AOI, window_a: DateWindow, window_b: DateWindow, provider, dense_classifier,
                 acquisition_a: Acquisition | None = None, acquisition_b: Acquisition | None = None,
                 max_cloud: float = 100.0, thresholds: ChangeThresholds | None = None,
                 max_patch_cloud: float = MAX_CLOUD, max_patch_nodata: float = MAX_NODATA,
                 progress: StageProgress | None = None, cell_px: int = CELL_PX, classifier=None,
                 refine_below: float | None = None) -> Analysis:
    """Search, fetch both dates, classify densely, measure spectral change and compare.

    ``classifier``: the per-window :class:`~lulc_core.model.classifier.Classifier` (shared,
    loaded once by the caller) that re-classifies the dense pass's low-confidence windows;
    ``refine_below``: their threshold (None: the shipped one). Without a classifier the class
    maps are the dense pass alone.
    """
    check_window_order(window_a, window_b)

    def report(stage: str) -> Callable[[float, str], None]:
        return lambda f, msg: progress(stage, f, msg) if progress else None

    report("search")(0.0, "searching acquisitions")
    acq_a = provider.search(aoi, window_a, max_cloud)
    acq_b = provider.search(aoi, window_b, max_cloud)
    report("search")(1.0, f"{len(acq_a)} + {len(acq_b)} acquisitions")
    results = []
    for label, window, acqs, chosen in (("A", window_a, acq_a, acquisition_a), ("B", window_b, acq_b, acquisition_b)):
        scene = provider.fetch(aoi, window, chosen, max_cloud, report(f"fetch {label}"))
        report(f"fetch {label}")(1.0, scene.label)
        results.append((window, acqs, scene))
    out = []
    for label, (window, acqs, scene) in zip("AB", results):
        step = report(f"classify {label}")
        step(0.0, "classifying 160 m cells")
        classes = classify_cells(scene, aoi, dense_classifier, cell_px, max_patch_nodata, max_patch_cloud,
                                 progress=lambda f: step(f, "classifying 160 m cells"), classifier=classifier,
                                 refine_below=refine_below)
        refined = (f", {100 * classes.refined_share:.0f}% of windows re-classified one by one"
                   if classes.refined is not None else "")
        step(1.0, f"{int(classes.classified.sum())} cells classified{refined}")
        out.append(DateResult(window, acqs, scene, classes))
    report("spectral change")(0.0, "normalising date B onto date A")
    spectral = spectral_change(out[0].scene, out[1].scene)
    share = spectral.share(cell_px)
    report("spectral change")(1.0, f"{100 * spectral.changed_share:.1f}% of comparable pixels changed")
    notes = []
    if getattr(provider, "collection", "") == "sentinel-2-l2a":
        notes.append("Level-2A imagery is outside the model's training domain (EuroSAT is Level-1C).")
    if not np.isfinite(spectral.threshold):
        notes.append("The two dates share too few clear pixels for spectral change evidence.")
    return Analysis(aoi, out[0], out[1], spectral,
                    compare(out[0].classes, out[1].classes, thresholds, share),
                    getattr(provider, "name", "?"), notes)
