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
    refined: np.ndarray | None = None  # dense maps: cells with a window re-classified one by one
    refined_share: float = 0.0  # dense maps: share of the windows behind classified cells re-classified

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


def cell_windows(rows: int, cols: int, n_rows: int, n_cols: int) -> tuple[np.ndarray, ...]:
    """Window rows (r1, r2) and columns (c1, c2) behind every cell row / column: cell k takes
    windows k-2 and k-1 on each axis (those whose centres are its corners), clamped at the border."""
    r1, r2 = (np.clip(np.arange(rows) + d, 0, n_rows - 1) for d in (-2, -1))
    c1, c2 = (np.clip(np.arange(cols) + d, 0, n_cols - 1) for d in (-2, -1))
    return r1, r2, c1, c2


def cells_from_windows(windows: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Per-cell values from per-window values (windows of 4x4 cells at a one-cell step).

    Cell k takes the mean of the windows whose centres are its corners (windows k-2 and k-1 on
    each axis), i.e. the windows most centred on it; along the image border the nearest windows.
    """
    r1, r2, c1, c2 = cell_windows(rows, cols, *windows.shape[:2])
    return (windows[r1][:, c1] + windows[r1][:, c2] + windows[r2][:, c1] + windows[r2][:, c2]) / 4


def classify_cells(scene, aoi, dense, cell_px: int = CELL_PX, max_nodata: float | None = None,
                   max_cloud: float | None = None, progress=None, classifier=None,
                   refine_below: float | None = None) -> ClassMap:
    """Dense class map of a Scene: calibrated probabilities per ``cell_px`` cell of the AOI grid.

    One fully convolutional pass (``dense``: a :class:`~lulc_core.model.dense.DenseClassifier`)
    gives every 64x64 window at a 16 px step; each cell takes its most centred windows. A cell
    is cloudy / nodata when its context (the 80 x 80 px its windows cover) has more than
    ``max_cloud`` / ``max_nodata`` cloudy / missing pixels, outside when under 1% of it lies in
    the AOI.

    Refine cascade: with a per-window ``classifier``, the windows behind classified cells whose
    dense top probability is under ``refine_below`` (None: the shipped threshold for these two
    weights files, refinement off when none ships) and with at most ``max_nodata`` missing
    pixels are classified again one by one (:func:`~lulc_core.model.dense.refine_windows`).
    Without a classifier the map is the dense pass alone.
    """
    from lulc_core.model.cascades import refine_threshold
    from lulc_core.model.dense import refine_windows
    from lulc_core.patches import CLOUDY, MAX_CLOUD, MAX_NODATA, MIN_AOI_SHARE, NODATA, OUTSIDE

    max_nodata = MAX_NODATA if max_nodata is None else max_nodata
    max_cloud = MAX_CLOUD if max_cloud is None else max_cloud
    grid = aoi.grid.cells(cell_px)
    if not scene.matches(grid):
        raise ValueError(f"the scene ({scene.crs}, {scene.width}x{scene.height}) is not on the AOI grid")
    if classifier is not None and refine_below is None:
        refine_below = refine_threshold(dense.sha256, classifier.sha256)
    refine = classifier is not None and refine_below is not None and refine_below > 0
    dense_part = 0.7 if refine else 1.0
    dp = dense.predict_scene(scene.data, scene.bands, scene.valid,
                             (lambda f: progress(dense_part * f)) if progress else None)
    k = dp.window_px // cell_px
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
    refined_cells, refined_share = None, 0.0
    if refine and dp.probs.size:
        r1, r2, c1, c2 = cell_windows(grid.rows, grid.cols, *dp.probs.shape[:2])
        behind = np.zeros(dp.probs.shape[:2], dtype=bool)  # windows behind classified cells
        ok_r, ok_c = np.nonzero(status == OK)
        for rr in (r1, r2):
            for cc in (c1, c2):
                behind[rr[ok_r], cc[ok_c]] = True
        candidates = behind & (valid_w[: behind.shape[0], : behind.shape[1]] / n_win >= 1 - max_nodata)
        dp = refine_windows(dp, scene.data, scene.bands, classifier, refine_below, candidates,
                            (lambda f: progress(dense_part + (1 - dense_part) * f)) if progress else None)
        refined_share = float(dp.refined.sum() / max(int(behind.sum()), 1))
        refined_cells = cells_from_windows(dp.refined[..., None].astype(np.float32), grid.rows, grid.cols)[..., 0] > 0
        refined_cells &= status == OK
    probs = cells_from_windows(dp.probs, grid.rows, grid.cols).astype(np.float32)
    probs[status != OK] = np.nan
    area_ha = aoi_frac * (cell_px * grid.resolution) ** 2 / 10_000
    return ClassMap(grid, probs, status, area_ha, tuple(dense.class_names), refined_cells, refined_share)
