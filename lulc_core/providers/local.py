"""Local files: folders of Sentinel-2 L1C GeoTIFFs (the bundled demo is one, see :mod:`.demo`).

Two layouts are read:
- ``<root>/<area>/<YYYYMMDD>/<band>.tif``: one GeoTIFF per band at its native 10/20/60 m
  resolution, in any CRS (the OSCD layout);
- ``<root>/<area>/<anything>_<YYYYMMDD>*.tif``: single 13-band stacks whose band descriptions
  name the bands (EuroSAT order B01..B12, B8A assumed when they don't).
An optional ``<root>/index.json`` (OSCD catalogue format) supplies tile ids.
Bands are resampled (bilinear) and reprojected onto the AOI's 10 m UTM grid, so two dates on
slightly different source grids end on the same one; a pixel's value does not depend on the part
of the grid fetched (:mod:`lulc_core.resample`), so a region's tiles equal one whole-grid fetch.

A fetch of a date window that holds several scenes (no acquisition chosen) is a per-pixel
composite, the median of each pixel's clear observations (:mod:`lulc_core.composite`), so one
hazy or cloudy date does not make change. A window holding one scene (or a chosen acquisition)
gives that scene as before, bit for bit.

Band values must be Level-1C digital numbers (reflectance x 10000). Floating-point files holding
reflectance 0..1 are refused with the reason and the fix (:func:`check_dn`), never classified as
nearly black.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds
from shapely import geometry as sg

from lulc_core.aoi import AOI
from lulc_core.grid import Grid
from lulc_core.resample import SourcePlan, kernel_radii, node_coords
from lulc_core.bands import EUROSAT_BAND_ORDER, N_BANDS
from lulc_core.clouds import CLOUD_TEST_BANDS, bright_cloud_mask, cloud_percent
from lulc_core.composite import COMPOSITE_METHOD, median_of_clear
from lulc_core.errors import NoImageryError, OutsideCoverageError, ProviderError
from lulc_core.providers.base import ProgressFn, acquisition_parts, check_area_size
from lulc_core.collection import Collection
from lulc_core.scene import Acquisition, DateWindow, Scene

#: Bumped when the pixels read change (2: window-independent resampling, :mod:`lulc_core.resample`,
#: instead of GDAL's warper), so cached scenes of an older reader are not reused.
READER_VERSION = 2
#: Destination pixels :meth:`SceneSource.read_on_grid` resamples per strip of rows (its kernel
#: plans take ~80 bytes a pixel).
READ_STRIP_PX = 2**19
#: Pixels a single-scene fetch reprojects at once, in strips of whole rows (bounds its float32
#: temporaries to 13 x 4 bytes x this). Scenes up to this size are read in one piece, as before.
FETCH_STRIP_PX = 4 * 2**20
_DATE_RE = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")


#: A floating-point band whose 99th percentile of valid values is at most this holds reflectance, not DN.
REFLECTANCE_MAX = 2.0


def check_dn(path: Path, dtype: str, values: np.ndarray) -> None:
    """Raise :class:`ProviderError` when ``values`` (read from a ``dtype`` band of ``path``) are
    reflectance 0..1 rather than Level-1C DN. Integer bands are DN by construction."""
    if not np.issubdtype(np.dtype(dtype), np.floating):
        return
    v = values[np.isfinite(values) & (values > 0)]
    if v.size and float(np.percentile(v, 99)) <= REFLECTANCE_MAX:
        raise ProviderError(
            f"{path} holds floating-point reflectance (values up to {float(v.max()):.3g}), but the model needs "
            "Level-1C digital numbers (reflectance x 10000): multiply the bands by 10000 and save them as "
            "integers (e.g. gdal_calc.py -A in.tif --calc=A*10000 --type=UInt16 --outfile=out.tif)")


@dataclass(frozen=True)
class SceneSource:
    """One acquisition on disk: a folder of band files or one stacked file."""

    area: str
    date: dt.date
    path: Path
    kind: str  # "bands" or "stack"
    tile_id: str = ""

    def band_path(self, band: str) -> Path:
        return self.path / f"{band}.tif"

    @cached_property
    def reference(self) -> Path:
        return self.band_path("B02") if self.kind == "bands" else self.path

    @cached_property
    def footprint(self) -> sg.Polygon:
        with rasterio.open(self.reference) as ds:
            return sg.box(*transform_bounds(ds.crs, "EPSG:4326", *ds.bounds))

    @cached_property
    def stack_bands(self) -> tuple[str, ...]:
        with rasterio.open(self.path) as ds:
            names = tuple(ds.descriptions)
            if all(names) and set(EUROSAT_BAND_ORDER) <= set(names):
                return names
            if ds.count == N_BANDS:
                return EUROSAT_BAND_ORDER
        raise ProviderError(f"{self.path}: a stack needs 13 bands or band descriptions naming B01..B12, B8A")

    def fingerprint(self) -> list[Any]:
        files = [self.band_path(b) for b in EUROSAT_BAND_ORDER] if self.kind == "bands" else [self.path]
        return [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]

    def locate(self, band: str) -> tuple[Path, int]:
        """The file and 1-based band index holding ``band``."""
        if self.kind == "bands":
            path = self.band_path(band)
            if not path.exists():
                raise ProviderError(f"{self.path}: band file {band}.tif is missing")
            return path, 1
        return self.path, self.stack_bands.index(band) + 1

    def read_on_grid(self, grid: Grid, bands: tuple[str, ...] = EUROSAT_BAND_ORDER,
                     window: Window | None = None) -> np.ndarray:
        """Bands as float32 DN (len(bands), H, W) on ``grid`` (or on a ``window`` of it: its
        height and width); 0 where the source has no data. Resampled by :mod:`lulc_core.resample`
        (bilinear), so a pixel's value does not depend on the window asked for."""
        window = window or Window(0, 0, grid.width, grid.height)
        r_off, c_off = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        out = np.zeros((len(bands), h, w), dtype=np.float32)
        with ExitStack() as stack:
            opened: dict[Path, Any] = {}
            groups: dict[tuple, list[tuple[int, Any, int]]] = {}  # bands sharing one source pixel grid
            for i, band in enumerate(bands):
                path, index = self.locate(band)
                if path not in opened:
                    opened[path] = stack.enter_context(rasterio.open(path))
                ds = opened[path]
                groups.setdefault((ds.crs.to_string(), ds.transform, ds.height, ds.width), []).append((i, ds, index))
            radii = {key: kernel_radii(key[0], key[1], key[2:], grid.crs, grid.resolution) for key in groups}
            rows = max(1, READ_STRIP_PX // max(1, w))
            for s0 in range(0, h, rows):
                s1 = min(h, s0 + rows)
                coords: dict[str, tuple[np.ndarray, np.ndarray]] = {}
                for key, members in groups.items():
                    if key[0] not in coords:
                        coords[key[0]] = node_coords(grid.crs, grid.transform, (r_off + s0, r_off + s1),
                                                     (c_off, c_off + w), key[0])
                    plan = SourcePlan(*coords[key[0]], key[1], key[2:], radii[key])
                    if plan.window is None:
                        continue
                    pr0, pr1, pc0, pc1 = plan.window
                    for i, ds, index in members:
                        out[i, s0:s1] = plan.apply(ds.read(index, window=Window(pc0, pr0, pc1 - pc0, pr1 - pr0)))
            for i, band in enumerate(bands):
                path, index = self.locate(band)
                check_dn(path, opened[path].dtypes[index - 1], out[i])
        return out

    def grid_window(self, grid: Grid, pad_px: int = 2) -> Window | None:
        """The window of ``grid`` the source can cover (its bounds, padded), None if they miss."""
        with rasterio.open(self.reference) as ds:
            left, bottom, right, top = transform_bounds(ds.crs, grid.crs, *ds.bounds, densify_pts=21)
        win = window_from_bounds(left, bottom, right, top, grid.transform)
        c0 = max(0, int(np.floor(win.col_off)) - pad_px)
        r0 = max(0, int(np.floor(win.row_off)) - pad_px)
        c1 = min(grid.width, int(np.ceil(win.col_off + win.width)) + pad_px)
        r1 = min(grid.height, int(np.ceil(win.row_off + win.height)) + pad_px)
        return Window(c0, r0, c1 - c0, r1 - r0) if c1 > c0 and r1 > r0 else None

    def cloud_cover(self) -> float:
        """Cloud % of the whole source scene by :func:`~lulc_core.clouds.cloud_percent`, read at 60 m."""
        with rasterio.open(self.reference) as ref:
            shape = (max(1, ref.height // 6), max(1, ref.width // 6))
        arrs = {}
        for band in CLOUD_TEST_BANDS:
            path, index = self.locate(band)
            with rasterio.open(path) as ds:
                arrs[band] = ds.read(index, out_shape=shape, resampling=Resampling.average).astype(np.float32)
                check_dn(path, ds.dtypes[index - 1], arrs[band])
        return cloud_percent(*(arrs[b] for b in CLOUD_TEST_BANDS))


def discover(root: Path) -> list[SceneSource]:
    """All acquisitions under ``root`` in either layout, sorted by area then date."""
    if not root.is_dir():
        raise ProviderError(f"scenes folder {root} does not exist")
    tiles = _index_tiles(root)
    out = []
    for area_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(area_dir.iterdir()):
            m = _DATE_RE.search(p.name)
            if not m:
                continue
            date = dt.date(int(m[1]), int(m[2]), int(m[3]))
            tile = tiles.get((area_dir.name, date.isoformat()), "")
            if p.is_dir() and (p / "B02.tif").exists():
                out.append(SceneSource(area_dir.name, date, p, "bands", tile))
            elif p.is_file() and p.suffix.lower() in (".tif", ".tiff") and not p.name.endswith(".masks.tif"):
                out.append(SceneSource(area_dir.name, date, p, "stack", tile))
    return out


def _index_tiles(root: Path) -> dict[tuple[str, str], str]:
    candidates = [root / "index.json", root.parent / "index.json"]
    idx = next((p for p in candidates if p.exists()), None)
    if idx is None:
        return {}
    try:
        areas = json.loads(idx.read_text()).get("areas", {})
        return {(area, d["date"]): d.get("mgrs_tile", "") for area, a in areas.items() for d in a["dates"]}
    except (ValueError, KeyError, AttributeError):
        return {}


class LocalFilesProvider:
    """Search and fetch over a folder of Sentinel-2 L1C GeoTIFFs (see module docstring)."""

    collection = Collection.L1C

    def __init__(self, root: str | Path, name: str = "local") -> None:
        self.root = Path(root)
        self.name = name
        self.sources = discover(self.root)
        if not self.sources:
            raise ProviderError(f"no Sentinel-2 scenes found under {self.root} "
                                "(expected <area>/<YYYYMMDD>/<band>.tif or 13-band stacks)")
        self._clouds: dict[Path, float] = {}

    def areas(self) -> dict[str, dict[str, Any]]:
        """Each area's dates and extent: ``footprint`` (the intersection of its dates' footprints)
        and its lon/lat ``bounds``."""
        out: dict[str, dict[str, Any]] = {}
        for s in self.sources:
            a = out.setdefault(s.area, {"dates": [], "footprint": s.footprint})
            a["dates"].append(s.date)
            a["footprint"] = a["footprint"].intersection(s.footprint)
        for a in out.values():
            a["bounds"] = tuple(round(v, 5) for v in a["footprint"].bounds)
        return out

    def _covering(self, aoi: AOI) -> list[SceneSource]:
        hits = [s for s in self.sources if s.footprint.intersects(aoi.geometry)]
        if not hits:
            listing = "; ".join(f"{k} ({', '.join(f'{v:.3f}' for v in a['bounds'])})"
                                for k, a in self.areas().items())
            raise OutsideCoverageError(
                f"the AOI is outside the {self.name} scenes' extents. Areas available "
                f"(W, S, E, N): {listing}")
        return hits

    def _cloud(self, s: SceneSource) -> float:
        if s.path not in self._clouds:
            self._clouds[s.path] = s.cloud_cover()
        return self._clouds[s.path]

    def _acq(self, s: SceneSource) -> Acquisition:
        return Acquisition(dt.datetime.combine(s.date, dt.time(0, 0), dt.timezone.utc), self._cloud(s),
                           s.tile_id or s.area, self.name, id=f"{s.area}/{s.path.name}")

    def search(self, aoi: AOI, window: DateWindow, max_cloud: float = 100.0) -> list[Acquisition]:
        check_area_size(aoi)
        acqs = [self._acq(s) for s in self._covering(aoi) if window.contains(s.date)]
        return sorted((a for a in acqs if a.cloud_cover <= max_cloud), key=lambda a: a.datetime)

    def _candidates(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None,
                    max_cloud: float, found: list[Acquisition] | None = None) -> list[SceneSource]:
        covering = self._covering(aoi)
        if acquisition is not None:
            chosen = [s for s in covering if f"{s.area}/{s.path.name}" == acquisition.id]
            if not chosen:
                raise NoImageryError(f"acquisition {acquisition.id or acquisition.datetime} is not in {self.root}")
            return chosen
        if found is not None:  # what search found: no second look at the scenes' dates and clouds
            ids = {a.id for a in found}
            in_window = [s for s in covering if f"{s.area}/{s.path.name}" in ids]
        else:
            in_window = [s for s in covering if window.contains(s.date) and self._cloud(s) <= max_cloud]
        if not in_window:
            dates = ", ".join(sorted({s.date.isoformat() for s in covering}))
            raise NoImageryError(f"no {self.name} scene within {window} with cloud <= {max_cloud:g}% "
                                 f"over this AOI; dates available here: {dates}")
        return sorted(in_window, key=lambda s: (self._cloud(s), s.date))

    def fetch(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None = None,
              max_cloud: float = 100.0, progress: ProgressFn | None = None,
              found: list[Acquisition] | None = None) -> Scene:
        """The chosen acquisition, the window's one scene, or the window's per-pixel median composite.

        The composite's rule (median of the clear observations) is :func:`~lulc_core.composite.median_of_clear`'s.
        """
        check_area_size(aoi)
        grid = aoi.grid
        sources = self._candidates(aoi, window, acquisition, max_cloud, found)
        if acquisition is None and len(sources) > 1:
            return self._composite(grid, window, sources, progress)
        # uint16 output allocated lazily (pages never written stay unallocated): memory follows
        # the imagery present, read in strips of rows of each source's window of the grid
        data = np.zeros((N_BANDS, grid.height, grid.width), dtype=np.uint16)
        valid = np.zeros((grid.height, grid.width), dtype=bool)
        cloud = np.zeros_like(valid)
        used = []
        for i, s in enumerate(sources):
            if progress:
                progress(i / len(sources), f"reading {s.area} {s.date}")
            win = s.grid_window(grid)
            if win is None:
                continue
            c0, c1 = int(win.col_off), int(win.col_off + win.width)
            strip = max(64, FETCH_STRIP_PX // max(1, c1 - c0))
            filled = False
            for r0 in range(int(win.row_off), int(win.row_off + win.height), strip):
                r1 = min(int(win.row_off + win.height), r0 + strip)
                arr = s.read_on_grid(grid, window=Window(c0, r0, c1 - c0, r1 - r0))
                ok = np.all(arr > 0, axis=0)
                cl = bright_cloud_mask(*(arr[EUROSAT_BAND_ORDER.index(b)] for b in CLOUD_TEST_BANDS)) & ok
                v, c = valid[r0:r1, c0:c1], cloud[r0:r1, c0:c1]
                fill = ok & (~v | (c & ~cl))  # fill gaps, and replace cloud by clear pixels
                if fill.any():
                    d = data[:, r0:r1, c0:c1]
                    for k in range(len(arr)):
                        d[k][fill] = np.rint(arr[k][fill])
                    c[fill] = cl[fill]
                    v |= fill
                    filled = True
            if filled:
                used.append(s)
            if valid.all() and not cloud.any():
                break
        if progress:
            progress(1.0, "done")
        if not used:
            raise NoImageryError.no_data(f"the {self.name} scenes", window)
        return self._scene(grid, data, valid, cloud, used)

    def _composite(self, grid: Grid, window: DateWindow, sources: list[SceneSource],
                   progress: ProgressFn | None) -> Scene:
        """The per-pixel median of the clear observations of ``sources`` (least-cloudy first)."""
        composite = median_of_clear(sources, grid, progress)
        if composite is None:
            raise NoImageryError.no_data(f"the {self.name} scenes", window)
        if progress:
            progress(1.0, "done")
        used = [s for s, u in zip(sources, composite.used) if u]
        return self._scene(grid, composite.data, composite.valid, composite.cloud, used)

    def _scene(self, grid: Grid, data: np.ndarray, valid: np.ndarray, cloud: np.ndarray,
               used: list[SceneSource]) -> Scene:
        return Scene(data=data, bands=EUROSAT_BAND_ORDER, valid=valid, cloud=cloud, crs=grid.crs,
                     transform=grid.transform, dates=tuple(sorted({s.date for s in used})), provider=self.name,
                     collection=self.collection, acquisitions=tuple(self._acq(s) for s in used))

    def cache_parts(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None,
                    max_cloud: float) -> dict[str, Any]:
        sources = self._candidates(aoi, window, acquisition, max_cloud)
        parts = {"provider": self.name, "root": str(self.root.resolve()), "reader": READER_VERSION,
                 "grid": aoi.grid.to_dict(), "window": str(window), "max_cloud": max_cloud,
                 "acquisition": acquisition_parts(acquisition), "bands": list(EUROSAT_BAND_ORDER),
                 "sources": [[s.area, s.path.name, s.fingerprint()] for s in sources]}
        if acquisition is None and len(sources) > 1:
            parts["composite"] = COMPOSITE_METHOD  # a single scene's key stays as it was
        return parts

