"""Cutting a Scene into 64x64 patches, with per-patch masks, areas and outlines.

A patch is classified only when it is usable: at least ``MIN_AOI_SHARE`` of it inside the AOI
(thinner slivers along a rotated edge are left out), at most ``MAX_NODATA`` of its
pixels without data and at most ``MAX_CLOUD`` of them cloudy. Others are shown as what they
are (outside, nodata, cloudy), never as land cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lulc_core.aoi import AOI, PatchGrid
from lulc_core.scene import Scene

MAX_NODATA = 0.10  # share of pixels without data above which a patch is "nodata"
MAX_CLOUD = 0.10  # share of cloudy pixels above which a patch is "cloudy"
MIN_AOI_SHARE = 0.01  # patches with less of their area inside the AOI are slivers: "outside"

OK, OUTSIDE, NODATA, CLOUDY = 0, 1, 2, 3
STATUS_NAMES = {OK: "ok", OUTSIDE: "outside", NODATA: "nodata", CLOUDY: "cloudy"}


@dataclass
class PatchSet:
    """The patches of one Scene on a grid.

    ``dn``: (rows*cols, bands, 64, 64) views in row-major patch order; ``status``,
    ``valid_frac``, ``cloud_frac`` and ``aoi_frac`` are (rows, cols).
    """

    grid: PatchGrid
    bands: tuple[str, ...]
    dn: np.ndarray
    status: np.ndarray
    valid_frac: np.ndarray
    cloud_frac: np.ndarray
    aoi_frac: np.ndarray

    @property
    def usable(self) -> np.ndarray:
        return self.status == OK

    @property
    def area_ha(self) -> np.ndarray:
        """Area of each patch inside the AOI, in hectares (cut patches count their real share)."""
        side = self.grid.patch_px * self.grid.resolution
        return self.aoi_frac * side * side / 10_000


def _blocks(arr: np.ndarray, p: int) -> np.ndarray:
    """(..., H, W) -> (rows, cols, ..., p, p) without copying where possible."""
    *lead, h, w = arr.shape
    r, c = h // p, w // p
    x = arr[..., : r * p, : c * p].reshape(*lead, r, p, c, p)
    nl = len(lead)
    return x.transpose(nl, nl + 2, *range(nl), nl + 1, nl + 3)


def block_sums(arr: np.ndarray, block_px: int) -> np.ndarray:
    """Sum of an (H, W) array over each block_px square: (H // block_px, W // block_px)."""
    return _blocks(np.asarray(arr), block_px).sum(axis=(-2, -1), dtype=np.float64)  # no float64 copy


def patch_means(arr: np.ndarray, patch_px: int) -> np.ndarray:
    """Mean of an (H, W) array over each patch of a grid: (rows, cols)."""
    return _blocks(arr, patch_px).mean(axis=(-2, -1))


def cut_patches(scene: Scene, aoi: AOI | None = None, grid: PatchGrid | None = None,
                max_nodata: float = MAX_NODATA, max_cloud: float = MAX_CLOUD) -> PatchSet:
    """Patches of ``scene`` on ``grid`` (default: the AOI's grid) with their status."""
    grid = grid or (aoi.grid if aoi is not None else None)
    if grid is None:
        raise ValueError("cut_patches needs an AOI or a grid")
    if not scene.matches(grid):
        raise ValueError(f"the scene ({scene.crs}, {scene.width}x{scene.height}) is not on the AOI grid "
                         f"({grid.crs}, {grid.width}x{grid.height})")
    p = grid.patch_px
    dn = _blocks(scene.data, p).reshape(grid.n_patches, len(scene.bands), p, p)
    valid_frac = patch_means(scene.valid, p)
    cloud_frac = (_blocks(scene.cloud & scene.valid, p).sum(axis=(2, 3))
                  / np.maximum(_blocks(scene.valid, p).sum(axis=(2, 3)), 1))
    aoi_frac = aoi.patch_fractions(grid) if aoi is not None else np.ones((grid.rows, grid.cols))
    status = np.full((grid.rows, grid.cols), OK, dtype=np.int8)
    status[cloud_frac > max_cloud] = CLOUDY
    status[valid_frac < 1 - max_nodata] = NODATA
    aoi_frac = np.where(aoi_frac < MIN_AOI_SHARE, 0.0, aoi_frac)
    status[aoi_frac <= 0] = OUTSIDE
    return PatchSet(grid, scene.bands, dn, status, valid_frac, cloud_frac, aoi_frac)


def window_around(grid: PatchGrid, row: int, col: int, window_px: int = 64) -> tuple[int, int]:
    """Pixel origin (y0, x0) of the window_px square centred on cell (row, col), kept inside the grid."""
    c = grid.patch_px
    y0 = min(max(row * c + c // 2 - window_px // 2, 0), grid.height - window_px)
    x0 = min(max(col * c + c // 2 - window_px // 2, 0), grid.width - window_px)
    return max(y0, 0), max(x0, 0)


def window_signature(scene: Scene, y0: int, x0: int, size: int = 64) -> dict[str, float]:
    """Mean top-of-atmosphere reflectance (DN / 10000) of each band over a window's valid pixels."""
    window = (slice(None), slice(y0, y0 + size), slice(x0, x0 + size))
    data = scene.data[window].astype(np.float64)
    valid = scene.valid[window[1:]]
    if not valid.any():
        return {b: float("nan") for b in scene.bands}
    return {b: float(data[i][valid].mean() / 10_000) for i, b in enumerate(scene.bands)}


def patch_signature(scene: Scene, grid: PatchGrid, row: int, col: int) -> dict[str, float]:
    """Mean TOA reflectance of each band over patch (row, col) of a grid."""
    p = grid.patch_px
    return window_signature(scene, row * p, col * p, p)


def classify_window(classifier, scene: Scene, y0: int, x0: int, size: int = 64,
                    max_nodata: float = MAX_NODATA) -> np.ndarray | None:
    """Per-window classifier probabilities of one window (None when it has too little data)."""
    valid = scene.valid[y0:y0 + size, x0:x0 + size]
    if valid.mean() < 1 - max_nodata:
        return None
    return classifier.predict_proba(scene.data[None, :, y0:y0 + size, x0:x0 + size], scene.bands)[0]


def patch_at(grid: PatchGrid, lon: float, lat: float) -> tuple[int, int] | None:
    """(row, col) of the patch containing a lon/lat point, or None outside the grid."""
    import pyproj

    x, y = pyproj.Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
    size = grid.patch_px * grid.resolution
    col = int(np.floor((x - grid.transform.c) / size))
    row = int(np.floor((grid.transform.f - y) / size))
    if 0 <= row < grid.rows and 0 <= col < grid.cols:
        return row, col
    return None
