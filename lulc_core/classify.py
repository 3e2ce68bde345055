"""Classifying the usable cells of a Scene into a class map of calibrated probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lulc_core.classes import CLASS_NAMES
from lulc_core.cells import MAX_CLOUD_SHARE, MAX_NODATA_SHARE, CellStatus, aoi_share, cell_status
from lulc_core.grid import Grid


@dataclass
class ClassMap:
    """Per-cell results on a grid: ``probs`` (rows, cols, classes), NaN where not classified."""

    grid: Grid
    probs: np.ndarray
    status: np.ndarray
    area_ha: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    refined: np.ndarray | None = None  # dense maps: cells with a window re-classified one by one
    refined_share: float = 0.0  # dense maps: share of the windows behind classified cells re-classified

    @property
    def classified(self) -> np.ndarray:
        return self.status == CellStatus.OK

    @property
    def labels(self) -> np.ndarray:
        """Class index per cell, -1 where not classified."""
        out = np.full(self.status.shape, -1, dtype=np.int16)
        ok = self.classified
        out[ok] = np.argmax(self.probs[ok], axis=-1)
        return out

    @property
    def confidence(self) -> np.ndarray:
        """Top probability per cell, NaN where not classified."""
        out = np.full(self.status.shape, np.nan)
        ok = self.classified
        out[ok] = self.probs[ok].max(axis=-1)
        return out

    def class_areas_ha(self) -> np.ndarray:
        """Hectares of each class (cells cut by the AOI count their share)."""
        labels = self.labels
        return np.array([self.area_ha[labels == k].sum() for k in range(len(self.class_names))])


def classify_cells(scene, aoi, dense, max_nodata_share: float = MAX_NODATA_SHARE,
                   max_cloud_share: float = MAX_CLOUD_SHARE, progress=None, classifier=None,
                   refine_below: float | None = None, dense_origin_px: tuple[int, int] = (0, 0),
                   only_cells: tuple[slice, slice] | None = None) -> ClassMap:
    """Dense class map of a Scene: calibrated probabilities per cell of the AOI grid.

    One fully convolutional pass (``dense``: a :class:`~lulc_core.model.dense.DenseClassifier`)
    gives every window at the geometry's step (:data:`~lulc_core.grid.GEOMETRY`); each cell takes
    its most centred windows. A cell is cloudy / nodata when its context (the pixels its windows
    cover) has a share of cloudy / missing pixels above ``max_cloud_share`` / ``max_nodata_share``
    (fractions), outside when under :data:`~lulc_core.cells.MIN_AOI_SHARE` of it lies in the AOI.

    Refine cascade: with a per-window ``classifier``, the windows behind classified cells whose
    dense top probability is under ``refine_below`` (None: the shipped threshold for these two
    weights files, refinement off when none ships) and with at most ``max_nodata_share`` missing
    pixels are classified again one by one (:func:`~lulc_core.model.dense.refine_windows`).
    Without a classifier the map is the dense pass alone. ``dense_origin_px``: where the dense
    pass's tiles start (:meth:`~lulc_core.model.dense.DenseClassifier.predict_scene`; a region's tiles).
    ``only_cells``: (rows, cols) slices of the cells wanted (a region tile's core); the others are
    outside, so the cascade re-classifies no window for them alone (the wanted cells' answers are
    unchanged: a window behind a wanted cell is still refined).
    """
    from lulc_core.model.cascades import refine_threshold
    from lulc_core.model.dense import refine_windows

    geo = dense.geometry
    grid = aoi.grid.cells(geo.cell_px)
    if not scene.matches(grid):
        raise ValueError(f"the scene ({scene.crs}, {scene.width}x{scene.height}) is not on the AOI grid")
    if classifier is not None and refine_below is None:
        refine_below = refine_threshold(dense.sha256, classifier.sha256)
    refine = classifier is not None and refine_below is not None and refine_below > 0
    dense_part = 0.7 if refine else 1.0
    dp = dense.predict_scene(scene.data, scene.bands, scene.valid,
                             (lambda f: progress(dense_part * f)) if progress else None, dense_origin_px)
    n_win = float(geo.window_px * geo.window_px)
    valid_w = geo.window_sums(scene.valid)
    cloud_w = geo.window_sums(scene.cloud & scene.valid)
    valid_share = geo.cells_from_windows(valid_w / n_win, grid.rows, grid.cols)
    cloud_share = geo.cells_from_windows(cloud_w / np.maximum(valid_w, 1), grid.rows, grid.cols)
    inside = aoi_share(aoi.cell_fractions(grid))
    status = cell_status(valid_share, cloud_share, inside, max_nodata_share, max_cloud_share)
    if only_cells is not None:
        wanted = np.zeros(status.shape, dtype=bool)
        wanted[only_cells] = True
        status[~wanted] = CellStatus.OUTSIDE
    refined_cells, refined_share = None, 0.0
    if refine and dp.probs.size:
        r1, r2, c1, c2 = geo.cell_windows(grid.rows, grid.cols, *dp.probs.shape[:2])
        behind = np.zeros(dp.probs.shape[:2], dtype=bool)  # windows behind classified cells
        ok_r, ok_c = np.nonzero(status == CellStatus.OK)
        for rr in (r1, r2):
            for cc in (c1, c2):
                behind[rr[ok_r], cc[ok_c]] = True
        candidates = behind & (valid_w[: behind.shape[0], : behind.shape[1]] / n_win >= 1 - max_nodata_share)
        dp = refine_windows(dp, scene.data, scene.bands, classifier, refine_below, candidates,
                            (lambda f: progress(dense_part + (1 - dense_part) * f)) if progress else None)
        refined_share = float(dp.refined.sum() / max(int(behind.sum()), 1))
        refined = geo.cells_from_windows(dp.refined[..., None].astype(np.float32), grid.rows, grid.cols)[..., 0] > 0
        refined_cells = refined & (status == CellStatus.OK)
    probs = geo.cells_from_windows(dp.probs, grid.rows, grid.cols).astype(np.float32)
    probs[status != CellStatus.OK] = np.nan
    area_ha = inside * grid.cell_m ** 2 / 10_000
    return ClassMap(grid, probs, status, area_ha, tuple(dense.class_names), refined_cells, refined_share)
