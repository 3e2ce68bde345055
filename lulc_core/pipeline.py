"""The whole analysis as one call: AOI + two date windows -> scenes -> dense class maps ->
10 m spectral change and deep change vectors -> one change decision per cell.

Stages report progress as ``progress(stage, fraction, message)`` with the stages in
:data:`STAGES`, so the CLI and the dashboard show the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lulc_core.aoi import AOI
from lulc_core.change import ChangeResult, ChangeThresholds, compare
from lulc_core.cells import MAX_CLOUD_SHARE, MAX_NODATA_SHARE
from lulc_core.collection import get_collection
from lulc_core.conditional import ConditionalChange, conditional_change
from lulc_core.deep_change import DeepChange, deep_change
from lulc_core.classify import ClassMap, classify_cells
from lulc_core.scene import Acquisition, DateWindow, Scene, check_window_order
from lulc_core.season import representative_date, season_note
from lulc_core.spectral import SpectralChange, spectral_change

#: Built-up change is measured tolerant of this much misregistration between the dates (pixels).
BUILT_TOLERANCE_PX = 1
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
    deep: DeepChange | None = None  # the deep change evidence (None without the per-window classifier)
    conditional: ConditionalChange | None = None  # the conditional 10 m change (lulc_core.conditional)

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
                        compare(self.a.classes, self.b.classes, thresholds, self.change.spectral_share,
                                built_share=self.change.built_share, deep=self.change.deep,
                                conditional_share=self.change.conditional_share),
                        self.provider, self.notes, self.deep, self.conditional)


def run_analysis(aoi: AOI, window_a: DateWindow, window_b: DateWindow, provider, dense_classifier,
                 acquisition_a: Acquisition | None = None, acquisition_b: Acquisition | None = None,
                 max_cloud: float = 100.0, thresholds: ChangeThresholds | None = None,
                 max_cloud_share: float = MAX_CLOUD_SHARE, max_nodata_share: float = MAX_NODATA_SHARE,
                 progress: StageProgress | None = None, classifier=None,
                 refine_below: float | None = None) -> Analysis:
    """Search, fetch both dates, classify densely, measure spectral change and compare.

    ``max_cloud``: the largest scene cloud cover searched for, in percent (0..100);
    ``max_cloud_share`` / ``max_nodata_share``: the shares (0..1) of cloudy / missing pixels above
    which a cell is cloudy / nodata (:func:`~lulc_core.cells.cell_status`). Each window is searched
    once and fetched from what its search found.

    ``classifier``: the per-window :class:`~lulc_core.model.classifier.Classifier` (shared,
    loaded once by the caller) that re-classifies the dense pass's low-confidence windows;
    ``refine_below``: their threshold (None: the shipped one; 0: no refinement). The classifier's
    early layers also give the deep change evidence (:mod:`lulc_core.deep_change`) that decides the
    counted built-up change. Without a classifier the class maps are the dense pass alone and
    built-up change falls back to the built-up share rule.
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
        scene = provider.fetch(aoi, window, chosen, max_cloud, report(f"fetch {label}"), found=acqs)
        report(f"fetch {label}")(1.0, scene.label)
        results.append((window, acqs, scene))
    out = []
    for label, (window, acqs, scene) in zip("AB", results):
        step = report(f"classify {label}")
        what = f"classifying {dense_classifier.geometry.cell_px * aoi.grid.resolution:.0f} m cells"
        step(0.0, what)
        classes = classify_cells(scene, aoi, dense_classifier, max_nodata_share, max_cloud_share,
                                 progress=lambda f: step(f, what), classifier=classifier,
                                 refine_below=refine_below)
        refined = (f", {100 * classes.refined_share:.0f}% of windows re-classified one by one"
                   if classes.refined is not None else "")
        step(1.0, f"{int(classes.classified.sum())} cells classified{refined}")
        out.append(DateResult(window, acqs, scene, classes))
    report("spectral change")(0.0, "normalising date B onto date A")
    spectral = spectral_change(out[0].scene, out[1].scene)
    cell_px = out[0].classes.grid.cell_px
    share = spectral.share(cell_px)
    built_share = spectral_change(out[0].scene, out[1].scene, tolerance_px=BUILT_TOLERANCE_PX,
                                  normalisation=spectral.normalisation).share(cell_px)
    report("spectral change")(0.4, "conditional change per spectral stratum")
    conditional = conditional_change(out[0].scene, out[1].scene)
    deep = None
    if classifier is not None:
        report("spectral change")(0.6, "deep change vectors")
        deep = deep_change(classifier, out[0].scene.data, out[1].scene.data, out[0].scene.bands, spectral.valid,
                           out[0].classes.status.shape, cell_px)
    report("spectral change")(1.0, f"{100 * spectral.changed_share:.1f}% of comparable pixels changed")
    notes = []
    if domain_note := get_collection(provider.collection).domain_note:
        notes.append(domain_note)
    if not np.isfinite(spectral.threshold):
        notes.append("The two dates share too few clear pixels for spectral change evidence.")
    return Analysis(aoi, out[0], out[1], spectral,
                    compare(out[0].classes, out[1].classes, thresholds, share, built_share=built_share,
                            deep=None if deep is None or deep.thresholds is None else deep.features,
                            conditional_share=conditional.share(cell_px)),
                    getattr(provider, "name", "?"), notes, deep, conditional)
