"""Classifying the usable patches of a Scene into a class map of calibrated probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lulc_core.aoi import PatchGrid
from lulc_core.classes import CLASS_NAMES
from lulc_core.patches import OK, PatchSet


@dataclass
class ClassMap:
    """Per-patch results on a grid: ``probs`` (rows, cols, classes), NaN where not classified."""

    grid: PatchGrid
    probs: np.ndarray
    status: np.ndarray
    area_ha: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES

    @property
    def classified(self) -> np.ndarray:
        return self.status == OK

    @property
    def labels(self) -> np.ndarray:
        """Class index per patch, -1 where not classified."""
        out = np.full(self.status.shape, -1, dtype=np.int16)
        ok = self.classified
        out[ok] = np.argmax(self.probs[ok], axis=-1)
        return out

    @property
    def confidence(self) -> np.ndarray:
        """Top probability per patch, NaN where not classified."""
        out = np.full(self.status.shape, np.nan)
        ok = self.classified
        out[ok] = self.probs[ok].max(axis=-1)
        return out

    def class_areas_ha(self) -> np.ndarray:
        """Hectares of each class (patches cut by the AOI count their share)."""
        labels = self.labels
        return np.array([self.area_ha[labels == k].sum() for k in range(len(self.class_names))])


def classify_patches(patches: PatchSet, classifier) -> ClassMap:
    """Run ``classifier.predict_proba`` on the usable patches only (one batched call)."""
    grid = patches.grid
    probs = np.full((grid.rows, grid.cols, len(classifier.class_names)), np.nan, dtype=np.float32)
    ok = patches.usable.reshape(-1)
    if ok.any():
        p = classifier.predict_proba(patches.dn[ok], patches.bands)
        probs.reshape(-1, probs.shape[-1])[ok] = p
    return ClassMap(grid, probs, patches.status.copy(), patches.area_ha, tuple(classifier.class_names))
