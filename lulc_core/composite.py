"""Per-pixel composites of several scenes: each band the median of the pixel's clear observations.

An observation is clear when all 13 bands are > 0 and :func:`~lulc_core.clouds.bright_cloud_mask`
does not flag it, so one hazy or cloudy date does not make change. For an even count the median is
the **lower median** (the smaller of the two middle values): always a DN that was observed, no
rounding, and with two observations the darker one, i.e. the less hazy. A pixel without any clear
observation takes the least-cloudy scene's valid value and stays flagged cloud.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from lulc_core.grid import Grid
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.clouds import CLOUD_TEST_BANDS, bright_cloud_mask

#: Cache-key tag of a multi-scene window's composite; bump when the compositing rule changes.
COMPOSITE_METHOD = "median-of-clear-v1"
#: Reprojected bands (as uint16) kept in memory between the composite's two passes; beyond it
#: bands are read again, so memory stays bounded by one band of every scene (plus the masks).
COMPOSITE_KEEP_BYTES = 256 * 2**20
#: Pixels sorted at once by :func:`lower_median_of_clear` (bounds its temporary arrays).
_MEDIAN_CHUNK_PX = 1 << 20


def lower_median_of_clear(values: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the lower median of ``values`` (N, H, W) over the observations where ``clear``.

    Returns the median (H, W) in ``values``' dtype (0 where no observation is clear) and the
    number of clear observations (H, W). For an even count the smaller middle value is taken
    (``np.quantile(..., method="lower")``), so the result is always one of the observed values.
    Works through the image in chunks of rows so that temporaries stay small.
    """
    if values.shape != clear.shape or values.ndim != 3:
        raise ValueError(f"values {values.shape} and clear {clear.shape} must be the same (N, H, W)")
    n, h, w = values.shape
    count = clear.sum(axis=0, dtype=np.int32)
    out = np.zeros((h, w), dtype=values.dtype)
    work = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float32  # exact for uint16
    rows = max(1, _MEDIAN_CHUNK_PX // max(1, w * n))
    for r0 in range(0, h, rows):
        sl = slice(r0, min(h, r0 + rows))
        v = np.where(clear[:, sl], values[:, sl].astype(work, copy=False), np.inf)
        v.sort(axis=0)  # the clear observations first, in ascending order
        k = np.maximum(count[sl] - 1, 0) // 2
        med = np.take_along_axis(v, k[None], axis=0)[0]
        out[sl] = np.where(count[sl] > 0, med, 0).astype(values.dtype)
    return out, count


class GridSource(Protocol):
    """A scene that reads its bands onto a grid (e.g. :class:`~lulc_core.providers.local.SceneSource`)."""

    @property
    def area(self) -> str: ...

    @property
    def date(self) -> dt.date: ...

    def read_on_grid(self, grid: Grid, bands: tuple[str, ...]) -> np.ndarray:
        """Bands as float32 DN (len(bands), H, W) on ``grid``, 0 where the source has no data."""
        ...


@dataclass(frozen=True)
class Composite:
    """A composite on a grid: 13 bands (EuroSAT order) as uint16 DN, its masks, and which sources it uses."""

    data: np.ndarray
    valid: np.ndarray
    cloud: np.ndarray
    used: tuple[bool, ...]  # per source: whether any pixel comes from it


def median_of_clear(sources: Sequence[GridSource], grid: Grid,
                    progress: Callable[[float, str], None] | None = None) -> Composite | None:
    """Per-pixel lower median of the clear observations of ``sources`` (least-cloudy first), on ``grid``.

    None when no source holds data on the grid. Two passes, one band at a time: the first finds
    each scene's valid and clear pixels (all bands needed), the second takes each band's median
    over the scenes. Bands read in the first pass are kept (as the uint16 DN they end as) up to
    COMPOSITE_KEEP_BYTES, the rest read again, so memory stays near one band of every scene.
    Rounding to DN before the median changes nothing: rounding keeps the order, and the lower
    median is an observation.
    """
    n, h, w = len(sources), grid.height, grid.width
    steps = 2 * n
    ok = np.zeros((n, h, w), dtype=bool)
    clear = np.zeros((n, h, w), dtype=bool)
    kept: dict[tuple[int, int], np.ndarray] = {}
    budget = COMPOSITE_KEEP_BYTES
    for i, s in enumerate(sources):
        if progress:
            progress(i / steps, f"reading {s.area} {s.date} (composite of {n} scenes)")
        ok_i = np.ones((h, w), dtype=bool)
        for_cloud = {}
        for j, band in enumerate(EUROSAT_BAND_ORDER):
            arr = s.read_on_grid(grid, (band,))[0]
            ok_i &= arr > 0
            if band in CLOUD_TEST_BANDS:
                for_cloud[band] = arr
            if budget >= arr.size * 2:
                kept[(i, j)] = np.rint(arr).astype(np.uint16)
                budget -= arr.size * 2
        ok[i] = ok_i
        clear[i] = ok_i & ~bright_cloud_mask(*(for_cloud[b] for b in CLOUD_TEST_BANDS))
    valid = ok.any(axis=0)
    if not valid.any():
        return None
    # no clear observation: the least-cloudy scene with data (sources are sorted so), flagged cloud
    fallback = np.argmax(ok, axis=0)
    n_clear = clear.sum(axis=0)
    cloud = valid & (n_clear == 0)
    data = np.zeros((13, h, w), dtype=np.uint16)
    stack = np.empty((n, h, w), dtype=np.uint16)
    for j, band in enumerate(EUROSAT_BAND_ORDER):
        if progress:
            progress((n + j * n / 13) / steps, f"median of {band} over {n} scenes")
        for i, s in enumerate(sources):
            got = kept.pop((i, j), None)
            stack[i] = got if got is not None else np.rint(s.read_on_grid(grid, (band,))[0]).astype(np.uint16)
        med, _ = lower_median_of_clear(stack, clear)
        first = np.take_along_axis(stack, fallback[None], axis=0)[0]
        data[j] = np.where(cloud, first, med)
    used = tuple(bool(clear[i].any() or (cloud & (fallback == i)).any()) for i in range(n))
    return Composite(data=data, valid=valid, cloud=cloud, used=used)
