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


CELL_PX = 16  # dense maps: one cell per 16 px (160 m), the dense path's step


def _window_sums(arr: np.ndarray, cell_px: int, cells_per_window: int) -> np.ndarray:
    """Sum of an (H, W) array over every window of cells_per_window x cells_per_window cells."""
    from lulc_core.patches import block_sums

    s = block_sums(arr, cell_px)
    c = np.pad(s.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    k = cells_per_window
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def cells_from_windows(windows: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Per-cell values from per-window values (windows of 4x4 cells at a one-cell step).

    Cell k takes the mean of the windows whose centres are its corners (windows k-2 and k-1 on
    each axis), i.e. the windows most centred on it; along the image border the nearest windows.
    """
    nr, nc = windows.shape[:2]
    r1, r2 = (np.clip(np.arange(rows) + d, 0, nr - 1) for d in (-2, -1))
    c1, c2 = (np.clip(np.arange(cols) + d, 0, nc - 1) for d in (-2, -1))
    return (windows[r1][:, c1] + windows[r1][:, c2] + windows[r2][:, c1] + windows[r2][:, c2]) / 4


def classify_cells(scene, aoi, dense, cell_px: int = CELL_PX, max_nodata: float | None = None,
                   max_cloud: float | None = None, progress=None) -> ClassMap:
    """Dense class map of a Scene: calibrated probabilities per ``cell_px`` cell of the AOI grid.

    One fully convolutional pass (``dense``: a :class:`~lulc_core.model.dense.DenseClassifier`)
    gives every 64x64 window at a 16 px step; each cell takes its most centred windows. A cell
    is cloudy / nodata when its context (the 80 x 80 px its windows cover) has more than
    ``max_cloud`` / ``max_nodata`` cloudy / missing pixels, outside when under 1% of it lies in
    the AOI.
    """
    from lulc_core.patches import CLOUDY, MAX_CLOUD, MAX_NODATA, MIN_AOI_SHARE, NODATA, OUTSIDE

    max_nodata = MAX_NODATA if max_nodata is None else max_nodata
    max_cloud = MAX_CLOUD if max_cloud is None else max_cloud
    grid = aoi.grid.cells(cell_px)
    if not scene.matches(grid):
        raise ValueError(f"the scene ({scene.crs}, {scene.width}x{scene.height}) is not on the AOI grid")
    dp = dense.predict_scene(scene.data, scene.bands, scene.valid, progress)
    k = dp.window_px // cell_px
    probs = cells_from_windows(dp.probs, grid.rows, grid.cols).astype(np.float32)
    n_win = float(dp.window_px * dp.window_px)
    valid_w = _window_sums(scene.valid, cell_px, k)
    cloud_w = _window_sums(scene.cloud & scene.valid, cell_px, k)
    valid_frac = cells_from_windows(valid_w / n_win, grid.rows, grid.cols)
    cloud_frac = cells_from_windows(cloud_w / np.maximum(valid_w, 1), grid.rows, grid.cols)
    aoi_frac = aoi.patch_fractions(grid)
    aoi_frac = np.where(aoi_frac < MIN_AOI_SHARE, 0.0, aoi_frac)
    status = np.full((grid.rows, grid.cols), OK, dtype=np.int8)
    status[cloud_frac > max_cloud] = CLOUDY
    status[valid_frac < 1 - max_nodata] = NODATA
    status[aoi_frac <= 0] = OUTSIDE
    probs[status != OK] = np.nan
    area_ha = aoi_frac * (cell_px * grid.resolution) ** 2 / 10_000
    return ClassMap(grid, probs, status, area_ha, tuple(dense.class_names))
