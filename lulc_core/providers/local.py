"""Local files: folders of Sentinel-2 L1C GeoTIFFs, and the bundled offline demo.

Two layouts are read:
- ``<root>/<area>/<YYYYMMDD>/<band>.tif``: one GeoTIFF per band at its native 10/20/60 m
  resolution, in any CRS (the OSCD layout);
- ``<root>/<area>/<anything>_<YYYYMMDD>*.tif``: single 13-band stacks whose band descriptions
  name the bands (EuroSAT order B01..B12, B8A assumed when they don't).
An optional ``<root>/index.json`` (OSCD catalogue format) supplies tile ids.
Bands are resampled (bilinear) and reprojected onto the AOI's 10 m UTM grid, so two dates on
slightly different source grids end on the same one.

A fetch of a date window that holds several scenes (no acquisition chosen) is a per-pixel
composite: each band is the median of the pixel's *clear* observations (all 13 bands > 0 and not
flagged by :func:`bright_cloud_mask`), so one hazy or cloudy date does not make change. For an
even count it is the **lower median** (the smaller of the two middle values): always a DN that was
observed, no rounding, and with two observations the darker one, i.e. the less hazy. A pixel
without any clear observation takes the least-cloudy scene's valid value and stays flagged cloud.
A window holding one scene (or a chosen acquisition) gives that scene as before, bit for bit.

Band values must be Level-1C digital numbers (reflectance x 10000). Floating-point files holding
reflectance 0..1 are refused with the reason and the fix (:func:`check_dn`), never classified as
nearly black.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds
from rasterio.windows import transform as window_transform
from shapely import geometry as sg

from lulc_core.aoi import AOI, PatchGrid
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.errors import NoImageryError, OutsideCoverageError, ProviderError
from lulc_core.providers.base import ProgressFn, acquisition_parts
from lulc_core.scene import L1C, Acquisition, DateWindow, Scene

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_data"
READER_VERSION = 1
#: Cache-key tag of a multi-scene window's composite; bump when the compositing rule changes.
COMPOSITE_METHOD = "median-of-clear-v1"
#: Reprojected bands (as uint16) kept in memory between the composite's two passes; beyond it
#: bands are read again, so memory stays bounded by one band of every scene (plus the masks).
COMPOSITE_KEEP_BYTES = 256 * 2**20
#: Pixels a single-scene fetch reprojects at once, in strips of whole rows (bounds its float32
#: temporaries to 13 x 4 bytes x this). Scenes up to this size are read in one piece, as before.
FETCH_STRIP_PX = 4 * 2**20
#: Pixels sorted at once by :func:`lower_median_of_clear` (bounds its temporary arrays).
_MEDIAN_CHUNK_PX = 1 << 20
_DATE_RE = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")


def bright_cloud_mask(b02: np.ndarray, b04: np.ndarray, b11: np.ndarray, b10: np.ndarray) -> np.ndarray:
    """A simple Level-1C cloud test for sources without a cloud mask (no s2cloudless here).

    Cloud where the pixel is bright and white in the visible (B02 and B04 DN > 3000) and bright
    in SWIR (B11 > 2000, which separates clouds from water and most shadows), or where the
    cirrus band B10 exceeds 150 DN (0.015 reflectance: thin cirrus). Snow also trips it, which
    is wanted: snow is not a EuroSAT class.
    """
    return ((b02 > 3000) & (b04 > 3000) & (b11 > 2000)) | (b10 > 150)


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
            if ds.count == 13:
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

    def read_on_grid(self, grid: PatchGrid, bands: tuple[str, ...] = EUROSAT_BAND_ORDER,
                     window: Window | None = None) -> np.ndarray:
        """Bands as float32 DN (len(bands), H, W) on ``grid`` (or on a ``window`` of it: its
        height and width); 0 where the source has no data."""
        window = window or Window(0, 0, grid.width, grid.height)
        out = np.zeros((len(bands), int(window.height), int(window.width)), dtype=np.float32)
        dst_transform = window_transform(window, grid.transform)
        for i, band in enumerate(bands):
            path, index = self.locate(band)
            with rasterio.open(path) as ds:
                reproject(rasterio.band(ds, index), out[i], src_nodata=0, dst_nodata=0,
                          dst_transform=dst_transform, dst_crs=grid.crs,
                          resampling=Resampling.bilinear)
                check_dn(path, ds.dtypes[index - 1], out[i])
        return out

    def grid_window(self, grid: PatchGrid, pad_px: int = 2) -> Window | None:
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
        """Cloud % of the whole source scene by :func:`bright_cloud_mask`, read at 60 m."""
        with rasterio.open(self.reference) as ref:
            shape = (max(1, ref.height // 6), max(1, ref.width // 6))
        arrs = {}
        for band in ("B02", "B04", "B11", "B10"):
            path, index = self.locate(band)
            with rasterio.open(path) as ds:
                arrs[band] = ds.read(index, out_shape=shape, resampling=Resampling.average).astype(np.float32)
                check_dn(path, ds.dtypes[index - 1], arrs[band])
        valid = arrs["B02"] > 0
        if not valid.any():
            return 100.0
        cloud = bright_cloud_mask(arrs["B02"], arrs["B04"], arrs["B11"], arrs["B10"])
        return round(100.0 * float(cloud[valid].mean()), 2)


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


def _index_places(root: Path) -> dict[str, str]:
    """Area -> place name ("Pisa, Italy") from the folder's index.json, where it has one."""
    idx = root / "index.json"
    try:
        return {k: a["place"] for k, a in json.loads(idx.read_text()).get("areas", {}).items() if a.get("place")}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return {}


class LocalFilesProvider:
    """Search and fetch over a folder of Sentinel-2 L1C GeoTIFFs (see module docstring)."""

    collection = L1C

    def __init__(self, root: str | Path = DEMO_DIR, name: str = "local") -> None:
        self.root = Path(root)
        self.name = name
        self.sources = discover(self.root)
        if not self.sources:
            raise ProviderError(f"no Sentinel-2 scenes found under {self.root} "
                                "(expected <area>/<YYYYMMDD>/<band>.tif or 13-band stacks)")
        self._clouds: dict[Path, float] = {}

    def areas(self) -> dict[str, dict[str, Any]]:
        """Each area's extent (lon/lat bounds of the intersection of its dates), dates and place name
        (from index.json; the folder name otherwise)."""
        out: dict[str, dict[str, Any]] = {}
        places = _index_places(self.root)
        for s in self.sources:
            a = out.setdefault(s.area, {"dates": [], "footprint": s.footprint,
                                        "place": places.get(s.area, s.area)})
            a["dates"].append(s.date)
            a["footprint"] = a["footprint"].intersection(s.footprint)
        for a in out.values():
            a["bounds"] = tuple(round(v, 5) for v in a["footprint"].bounds)
        return out

    def preview(self, area: str, max_side: int = 400) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """A small true-colour preview of an area's first date: (H, W, 3) uint8 and its lon/lat bounds."""
        from lulc_core.bands import display_rgb

        source = next(s for s in self.sources if s.area == area)
        with rasterio.open(source.reference) as ref:
            scale = max(ref.width, ref.height) / max_side
            shape = (max(1, int(ref.height / scale)), max(1, int(ref.width / scale)))
            west, south, east, north = transform_bounds(ref.crs, "EPSG:4326", *ref.bounds)
        rgb = []
        for band in ("B04", "B03", "B02"):
            path, index = source.locate(band)
            with rasterio.open(path) as ds:
                rgb.append(ds.read(index, out_shape=shape, resampling=Resampling.average))
        return display_rgb(np.stack(rgb)), (west, south, east, north)

    def area_aoi(self, area: str) -> AOI:
        """The largest whole-patch AOI inside an area's extent (all dates), for one-click demos."""
        import math

        from lulc_core.aoi import PATCH_M, reproject_geometry, utm_epsg

        areas = self.areas()
        if area not in areas:
            raise OutsideCoverageError(f"unknown area {area!r}; available: {', '.join(areas)}")
        fp = areas[area]["footprint"]
        crs = f"EPSG:{utm_epsg(fp.centroid.x, fp.centroid.y)}"
        (xs, ys) = reproject_geometry(fp.exterior, "EPSG:4326", crs).coords.xy
        corners = sorted(zip(xs[:-1], ys[:-1]))  # 4 corners of a near-rectangle, left ones first
        left, right = corners[:2], corners[2:]
        x0 = math.ceil(max(x for x, _ in left) / PATCH_M) * PATCH_M
        x1 = math.floor(min(x for x, _ in right) / PATCH_M) * PATCH_M
        by_y = sorted(zip(ys[:-1], xs[:-1]))
        y0 = math.ceil(max(y for y, _ in by_y[:2]) / PATCH_M) * PATCH_M
        y1 = math.floor(min(y for y, _ in by_y[2:]) / PATCH_M) * PATCH_M
        eps = 0.01
        box = sg.box(x0 + eps, y0 + eps, x1 - eps, y1 - eps)
        return AOI(reproject_geometry(box, crs, "EPSG:4326"), name=area)

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
        acqs = [self._acq(s) for s in self._covering(aoi) if window.contains(s.date)]
        return sorted((a for a in acqs if a.cloud_cover <= max_cloud), key=lambda a: a.datetime)

    def _candidates(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None,
                    max_cloud: float) -> list[SceneSource]:
        covering = self._covering(aoi)
        if acquisition is not None:
            chosen = [s for s in covering if f"{s.area}/{s.path.name}" == acquisition.id]
            if not chosen:
                raise NoImageryError(f"acquisition {acquisition.id or acquisition.datetime} is not in {self.root}")
            return chosen
        in_window = [s for s in covering if window.contains(s.date) and self._cloud(s) <= max_cloud]
        if not in_window:
            dates = ", ".join(sorted({s.date.isoformat() for s in covering}))
            raise NoImageryError(f"no {self.name} scene within {window} with cloud <= {max_cloud:g}% "
                                 f"over this AOI; dates available here: {dates}")
        return sorted(in_window, key=lambda s: (self._cloud(s), s.date))

    def fetch(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None = None,
              max_cloud: float = 100.0, progress: ProgressFn | None = None) -> Scene:
        """The chosen acquisition, the window's one scene, or the window's per-pixel median composite.

        See the module docstring for the composite's rule (median of the clear observations).
        """
        grid = aoi.grid
        sources = self._candidates(aoi, window, acquisition, max_cloud)
        if acquisition is None and len(sources) > 1:
            return self._composite(grid, window, sources, progress)
        # uint16 output allocated lazily (pages never written stay unallocated): memory follows
        # the imagery present, read in strips of rows of each source's window of the grid
        data = np.zeros((13, grid.height, grid.width), dtype=np.uint16)
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
                cl = bright_cloud_mask(*(arr[EUROSAT_BAND_ORDER.index(b)] for b in ("B02", "B04", "B11", "B10"))) & ok
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
            raise NoImageryError(f"the {self.name} scenes hold no data over this AOI in {window}")
        return Scene(data=data, bands=EUROSAT_BAND_ORDER, valid=valid, cloud=cloud, crs=grid.crs,
                     transform=grid.transform, dates=tuple(sorted({s.date for s in used})), provider=self.name,
                     collection=L1C, acquisitions=tuple(self._acq(s) for s in used))

    def _composite(self, grid: PatchGrid, window: DateWindow, sources: list[SceneSource],
                   progress: ProgressFn | None) -> Scene:
        """Per-pixel lower median of the clear observations of ``sources`` (least-cloudy first).

        Two passes, one band at a time: the first finds each scene's valid and clear pixels (all
        bands needed), the second takes each band's median over the scenes. Bands read in the
        first pass are kept (as the uint16 DN they end as) up to COMPOSITE_KEEP_BYTES, the rest
        read again, so memory stays near one band of every scene. Rounding to DN before the
        median changes nothing: rounding keeps the order, and the lower median is an observation.
        """
        n, h, w = len(sources), grid.height, grid.width
        steps = 2 * n
        ok = np.zeros((n, h, w), dtype=bool)
        clear = np.zeros((n, h, w), dtype=bool)
        kept: dict[tuple[int, int], np.ndarray] = {}
        budget = COMPOSITE_KEEP_BYTES
        cloud_bands = ("B02", "B04", "B11", "B10")
        for i, s in enumerate(sources):
            if progress:
                progress(i / steps, f"reading {s.area} {s.date} (composite of {n} scenes)")
            ok_i = np.ones((h, w), dtype=bool)
            for_cloud = {}
            for j, band in enumerate(EUROSAT_BAND_ORDER):
                arr = s.read_on_grid(grid, (band,))[0]
                ok_i &= arr > 0
                if band in cloud_bands:
                    for_cloud[band] = arr
                if budget >= arr.size * 2:
                    kept[(i, j)] = np.rint(arr).astype(np.uint16)
                    budget -= arr.size * 2
            ok[i] = ok_i
            clear[i] = ok_i & ~bright_cloud_mask(*(for_cloud[b] for b in cloud_bands))
        valid = ok.any(axis=0)
        if not valid.any():
            raise NoImageryError(f"the {self.name} scenes hold no data over this AOI in {window}")
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
        if progress:
            progress(1.0, "done")
        used = [s for i, s in enumerate(sources) if clear[i].any() or (cloud & (fallback == i)).any()]
        return Scene(data=data, bands=EUROSAT_BAND_ORDER, valid=valid, cloud=cloud, crs=grid.crs,
                     transform=grid.transform, dates=tuple(sorted({s.date for s in used})), provider=self.name,
                     collection=L1C, acquisitions=tuple(self._acq(s) for s in used))

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


def demo_provider() -> LocalFilesProvider:
    """The bundled offline demo: real OSCD Sentinel-2 L1C scenes shipped with the project."""
    return LocalFilesProvider(DEMO_DIR, name="demo")
