"""The analysis geometry in one place: the 10 m pixel grid, the 640 m windows the classifier
reads and the 160 m cells the maps report.

- **Pixels**: :data:`RESOLUTION_M` on a north-up grid in the AOI's UTM zone. Every grid snaps to a
  global lattice of :data:`LATTICE_PX` pixels (one 640 m *patch*) in its zone, so the same place
  always falls on the same cells whatever the AOI's outline, and two dates share one grid.
- **Windows**: :data:`WINDOW_PX` x :data:`WINDOW_PX` pixels (a EuroSAT image, 640 m) at a step of
  :data:`STEP_PX` pixels; window (i, j) covers pixels ``[step i, step i + window)`` on each axis.
- **Cells**: :data:`STEP_PX` x :data:`STEP_PX` pixels (160 m). Cell k takes the windows whose
  centres are its corners (the windows most centred on it), the nearest ones along the border.

:class:`WindowGeometry` owns the window / step / cell arithmetic (the dense pass, the refine
cascade, the cell statistics and the spectral share all use it) and checks itself when built;
:class:`Grid` is a pixel grid divided into square cells.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import shapely
from affine import Affine
from shapely import geometry as sg
from shapely.geometry.base import BaseGeometry

RESOLUTION_M = 10.0
WINDOW_PX = 64  # a classifier window; a "patch" is a window-sized square of the lattice
STEP_PX = 16  # windows at this step; cells of this size
LATTICE_PX = WINDOW_PX  # grids snap to whole 640 m patches
PATCH_M = RESOLUTION_M * LATTICE_PX
PATCH_HA = PATCH_M * PATCH_M / 10_000


def lattice_floor(v: float) -> float:
    """The lattice line at or below ``v`` (metres, in a UTM CRS)."""
    return math.floor(v / PATCH_M) * PATCH_M


def lattice_ceil(v: float) -> float:
    """The lattice line at or above ``v`` (metres, in a UTM CRS)."""
    return math.ceil(v / PATCH_M) * PATCH_M


@dataclass(frozen=True)
class Grid:
    """A north-up 10 m grid in a UTM CRS, divided into square cells of ``cell_px`` pixels.

    The AOI's grid (:attr:`lulc_core.aoi.AOI.grid`) has 640 m cells (whole patches of the lattice);
    ``grid.cells(STEP_PX)`` is the same extent in the maps' 160 m cells.
    """

    crs: str
    transform: Affine
    width: int
    height: int
    cell_px: int = LATTICE_PX

    @property
    def rows(self) -> int:
        return self.height // self.cell_px

    @property
    def cols(self) -> int:
        return self.width // self.cell_px

    @property
    def n_cells(self) -> int:
        return self.rows * self.cols

    @property
    def resolution(self) -> float:
        return self.transform.a

    @property
    def cell_m(self) -> float:
        """A cell's side in metres."""
        return self.cell_px * self.resolution

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the grid's CRS."""
        x0, y0 = self.transform.c, self.transform.f
        return (x0, y0 - self.height * self.resolution, x0 + self.width * self.resolution, y0)

    def cell_box(self, row: int, col: int) -> sg.Polygon:
        """Outline of cell (row, col) in the grid's CRS."""
        size = self.cell_m
        x0 = self.transform.c + col * size
        y1 = self.transform.f - row * size
        return sg.box(x0, y1 - size, x0 + size, y1)

    def cell_boxes(self) -> np.ndarray:
        """Outlines of every cell, (rows, cols) shapely polygons in the grid's CRS."""
        size = self.cell_m
        xx, yy = np.meshgrid(self.transform.c + np.arange(self.cols) * size,
                             self.transform.f - np.arange(self.rows) * size)
        return shapely.box(xx, yy - size, xx + size, yy)

    def cell_at(self, lon: float, lat: float) -> tuple[int, int] | None:
        """(row, col) of the cell containing a lon/lat point, or None outside the grid."""
        x, y = _transformer("EPSG:4326", self.crs).transform(lon, lat)
        col = int(np.floor((x - self.transform.c) / self.cell_m))
        row = int(np.floor((self.transform.f - y) / self.cell_m))
        if 0 <= row < self.rows and 0 <= col < self.cols:
            return row, col
        return None

    def to_wgs84(self, geom: BaseGeometry) -> BaseGeometry:
        """Reproject a geometry from the grid's CRS to lon/lat."""
        return reproject_geometry(geom, self.crs, "EPSG:4326")

    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        return tuple(self.to_wgs84(sg.box(*self.bounds)).bounds)  # type: ignore[return-value]

    def split(self, max_px: int) -> list[tuple[int, int, "Grid"]]:
        """Sub-grids of at most ``max_px`` per side (whole cells), with their pixel offsets."""
        step = (max_px // self.cell_px) * self.cell_px
        parts = []
        for r0 in range(0, self.height, step):
            for c0 in range(0, self.width, step):
                tr = self.transform @ Affine.translation(c0, r0)
                parts.append((r0, c0, Grid(self.crs, tr, min(step, self.width - c0),
                                           min(step, self.height - r0), self.cell_px)))
        return parts

    def cells(self, cell_px: int) -> "Grid":
        """The same extent divided into cells of ``cell_px`` pixels (a divisor of this grid's cells)."""
        if cell_px <= 0 or self.cell_px % cell_px:
            raise ValueError(f"cells of {cell_px} px do not divide {self.cell_px} px cells")
        return Grid(self.crs, self.transform, self.width, self.height, cell_px)

    def to_dict(self) -> dict[str, Any]:
        return {"crs": self.crs, "transform": list(self.transform)[:6], "width": self.width,
                "height": self.height, "cell_px": self.cell_px}


def lattice_grid(crs: str, bounds: tuple[float, float, float, float]) -> Grid:
    """The smallest grid of whole lattice patches covering ``bounds`` (minx, miny, maxx, maxy in ``crs``)."""
    minx, miny, maxx, maxy = bounds
    x0, y0, x1, y1 = lattice_floor(minx), lattice_floor(miny), lattice_ceil(maxx), lattice_ceil(maxy)
    width = int(round((x1 - x0) / RESOLUTION_M))
    height = int(round((y1 - y0) / RESOLUTION_M))
    return Grid(crs, Affine(RESOLUTION_M, 0, x0, 0, -RESOLUTION_M, y1), width, height)


def block_sums(arr: np.ndarray, block_px: int) -> np.ndarray:
    """Sum of an (H, W) array over each block_px square: (H // block_px, W // block_px), float64."""
    arr = np.asarray(arr)
    h, w = arr.shape
    r, c = h // block_px, w // block_px
    blocks = arr[: r * block_px, : c * block_px].reshape(r, block_px, c, block_px)
    return blocks.sum(axis=(1, 3), dtype=np.float64)  # no float64 copy of the input


def block_means(arr: np.ndarray, block_px: int) -> np.ndarray:
    """Mean of an (H, W) array over each block_px square: (H // block_px, W // block_px)."""
    return block_sums(arr, block_px) / (block_px * block_px)


def share_in_blocks(flag: np.ndarray, valid: np.ndarray, block_px: int) -> np.ndarray:
    """Share of ``flag`` pixels among ``valid`` ones in each block_px square (NaN where none is valid)."""
    n = block_sums(valid, block_px)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, block_sums(flag & valid, block_px) / np.maximum(n, 1), np.nan)


@dataclass(frozen=True)
class WindowGeometry:
    """Windows of ``window_px`` at a ``step_px`` step, and the cells (``step_px`` square) they map.

    Checked when built: the step divides the window and the lattice, and a window holds an even
    number of cells per side (so that each cell's corners are window centres).
    """

    window_px: int = WINDOW_PX
    step_px: int = STEP_PX

    def __post_init__(self) -> None:
        if self.step_px <= 0 or self.window_px <= 0 or self.window_px % self.step_px:
            raise ValueError(f"a {self.step_px} px step must divide the {self.window_px} px window")
        if (self.window_px // self.step_px) % 2:
            raise ValueError(f"a {self.window_px} px window must hold an even number of {self.step_px} px cells")
        if LATTICE_PX % self.step_px:
            raise ValueError(f"{self.step_px} px cells must divide the {LATTICE_PX} px lattice")

    @property
    def cell_px(self) -> int:
        """A cell's side in pixels (the step)."""
        return self.step_px

    @property
    def cells_per_window(self) -> int:
        return self.window_px // self.step_px

    def window_count(self, size_px: int) -> int:
        """Number of windows along a side of ``size_px`` pixels."""
        return max(0, (size_px - self.window_px) // self.step_px + 1)

    def window_origin(self, i: int, j: int) -> tuple[int, int]:
        """Pixel origin (y0, x0) of window (i, j)."""
        return i * self.step_px, j * self.step_px

    def window_sums(self, arr: np.ndarray) -> np.ndarray:
        """Sum of an (H, W) array over every window (window rows, window cols), float64."""
        c = np.pad(block_sums(arr, self.step_px).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        k = self.cells_per_window
        return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]

    def cell_windows(self, rows: int, cols: int, n_rows: int, n_cols: int) -> tuple[np.ndarray, ...]:
        """Window rows (r1, r2) and columns (c1, c2) behind every cell row / column of a
        (rows, cols) cell grid with (n_rows, n_cols) windows: those whose centres are the cell's
        corners, clamped at the border."""
        half = self.cells_per_window // 2
        r1, r2 = (np.clip(np.arange(rows) + d, 0, n_rows - 1) for d in (-half, 1 - half))
        c1, c2 = (np.clip(np.arange(cols) + d, 0, n_cols - 1) for d in (-half, 1 - half))
        return r1, r2, c1, c2

    def cells_from_windows(self, windows: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """Per-cell values (rows, cols, ...) from per-window values: the mean of each cell's
        :meth:`cell_windows`."""
        r1, r2, c1, c2 = self.cell_windows(rows, cols, *windows.shape[:2])
        return (windows[r1][:, c1] + windows[r1][:, c2] + windows[r2][:, c1] + windows[r2][:, c2]) / 4

    def window_around(self, grid: Grid, row: int, col: int) -> tuple[int, int]:
        """Pixel origin (y0, x0) of the window centred on cell (row, col) of ``grid``, kept inside it."""
        c, w = grid.cell_px, self.window_px
        y0 = min(max(row * c + c // 2 - w // 2, 0), grid.height - w)
        x0 = min(max(col * c + c // 2 - w // 2, 0), grid.width - w)
        return max(y0, 0), max(x0, 0)


#: The geometry of the shipped models and maps.
GEOMETRY = WindowGeometry()

_TRANSFORMERS = threading.local()  # per thread: pyproj transformers are not shared across threads


def _transformer(src_crs: str, dst_crs: str) -> pyproj.Transformer:
    """A cached pyproj transformer (making one costs ~0.1 ms; exports reproject every cell)."""
    cache = _TRANSFORMERS.__dict__.setdefault("cache", {})
    key = (str(src_crs), str(dst_crs))
    if key not in cache:
        cache[key] = pyproj.Transformer.from_crs(src_crs, dst_crs, always_xy=True)
    return cache[key]


def reproject_geometry(geom: BaseGeometry, src_crs: str, dst_crs: str) -> BaseGeometry:
    """A geometry's coordinates transformed from ``src_crs`` to ``dst_crs`` (x = lon / easting)."""
    tr = _transformer(src_crs, dst_crs)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 / UTM zone containing (lon, lat)."""
    zone = int(math.floor((lon + 180) / 6)) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone
