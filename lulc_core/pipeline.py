"""The whole analysis as one call: AOI + two date windows -> scenes -> class maps -> change.

Stages report progress as ``progress(stage, fraction, message)`` with the stages in
:data:`STAGES`, so the CLI and the dashboard show the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lulc_core.aoi import AOI
from lulc_core.change import ChangeResult, ChangeThresholds, compare
from lulc_core.classify import ClassMap, classify_patches
from lulc_core.patches import MAX_CLOUD, MAX_NODATA, PatchSet, cut_patches
from lulc_core.scene import Acquisition, DateWindow, Scene, check_window_order

STAGES = ("search", "fetch A", "fetch B", "classify A", "classify B")
StageProgress = Callable[[str, float, str], None]


@dataclass
class DateResult:
    """One date: the window, what search found, the Scene, its patches and class map."""

    window: DateWindow
    acquisitions: list[Acquisition]
    scene: Scene
    patches: PatchSet
    classes: ClassMap


@dataclass
class Analysis:
    aoi: AOI
    a: DateResult
    b: DateResult
    change: ChangeResult
    provider: str
    notes: list[str] = field(default_factory=list)

    @property
    def processing_units(self) -> float:
        return self.a.scene.processing_units + self.b.scene.processing_units

    def recompare(self, thresholds: ChangeThresholds) -> "Analysis":
        """The same analysis with other change thresholds (no refetch, no reclassification)."""
        return Analysis(self.aoi, self.a, self.b, compare(self.a.classes, self.b.classes, thresholds),
                        self.provider, self.notes)


def run_analysis(aoi: AOI, window_a: DateWindow, window_b: DateWindow, provider, classifier,
                 acquisition_a: Acquisition | None = None, acquisition_b: Acquisition | None = None,
                 max_cloud: float = 100.0, thresholds: ChangeThresholds = ChangeThresholds(),
                 max_patch_cloud: float = MAX_CLOUD, max_patch_nodata: float = MAX_NODATA,
                 progress: StageProgress | None = None) -> Analysis:
    """Search, fetch both dates, cut, classify and compare."""
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
        report(f"classify {label}")(0.0, "classifying patches")
        patches = cut_patches(scene, aoi, max_nodata=max_patch_nodata, max_cloud=max_patch_cloud)
        classes = classify_patches(patches, classifier)
        report(f"classify {label}")(1.0, f"{int(patches.usable.sum())} patches classified")
        out.append(DateResult(window, acqs, scene, patches, classes))
    notes = []
    if getattr(provider, "collection", "") == "sentinel-2-l2a":
        notes.append("Level-2A imagery is outside the model's training domain (EuroSAT is Level-1C).")
    return Analysis(aoi, out[0], out[1], compare(out[0].classes, out[1].classes, thresholds),
                    getattr(provider, "name", "?"), notes)
