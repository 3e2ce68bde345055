"""The Process API: output grid, data filter, evalscript outputs, SIMPLE and ORBIT mosaicking, PU header."""

from __future__ import annotations

import datetime as dt
import io
import re
import tarfile
import time
from typing import Any

import numpy as np
import pyproj
from affine import Affine
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from shapely import geometry as sg

from lulc_core.grid import Grid
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.clouds import CLOUD_TEST_BANDS, bright_cloud_mask
from lulc_core.providers.local import SceneSource
from tests.fakes.sentinelhub.common import (COLLECTION_ALIASES, COLLECTION_BANDS, MAX_PX, SENSING_TIME, ServiceError,
                                            parse_time)
from tests.fakes.sentinelhub.evalscript import ORBIT_REDUCERS, clear_median_reduce, parse_evalscript


class ProcessMixin:
    """Process API of :class:`~tests.fakes.sentinelhub.server.FakeSentinelHub` (uses its ``library``,
    ``_lock``, ``process_payloads`` and the catalog's ``_cloud``)."""

    def _process(self, p: dict[str, Any]) -> tuple[bytes, str, dict[str, str]]:
        with self._lock:
            self.process_payloads.append(p)
        inp = p.get("input") or {}
        bounds = inp.get("bounds") or {}
        crs = parse_crs((bounds.get("properties") or {}).get("crs"))
        geom = None
        if bounds.get("geometry") is not None:
            try:
                geom = sg.shape(bounds["geometry"])
            except Exception as exc:
                raise ServiceError(400, f"Invalid bounds geometry: {exc}") from None
        if bounds.get("bbox") is not None:
            bbox = [float(v) for v in bounds["bbox"]]
            if len(bbox) != 4 or bbox[0] >= bbox[2] or bbox[1] >= bbox[3]:
                raise ServiceError(400, f"Invalid bbox {bounds['bbox']}")
        elif geom is not None:
            bbox = list(geom.bounds)
        else:
            raise ServiceError(400, "input.bounds needs a bbox or a geometry")
        out = p.get("output") or {}
        width, height = out.get("width"), out.get("height")
        if width is None and height is None and out.get("resx") and out.get("resy"):
            width = int(round((bbox[2] - bbox[0]) / float(out["resx"])))
            height = int(round((bbox[3] - bbox[1]) / float(out["resy"])))
        elif width is None or height is None:
            width = width or 256
            height = height or int(round(width * (bbox[3] - bbox[1]) / (bbox[2] - bbox[0])))
        width, height = int(width), int(height)
        if width < 1 or height < 1:
            raise ServiceError(400, f"Invalid output size {width} x {height}")
        if width > MAX_PX or height > MAX_PX:
            raise ServiceError(400, f"Your request of {width:.2f} x {height:.2f} pixels exceeds the limit of "
                                  f"{MAX_PX:.2f} x {MAX_PX:.2f} pixels.", "RENDERER_EXCEPTION")
        data_list = inp.get("data") or []
        if len(data_list) != 1:
            raise ServiceError(400, "the fake supports exactly one input.data entry")
        d = data_list[0]
        collection = COLLECTION_ALIASES.get(str(d.get("type", "")).lower())
        if collection is None:
            raise ServiceError(400, f"Unknown data collection type {d.get('type')!r}")
        flt = d.get("dataFilter") or {}
        tr = flt.get("timeRange") or {}
        start = parse_time(tr.get("from")) if tr.get("from") else None
        end = parse_time(tr.get("to")) if tr.get("to") else None
        maxcc = float(flt.get("maxCloudCoverage", 100))
        order = flt.get("mosaickingOrder", "mostRecent")
        if order not in ("mostRecent", "leastRecent", "leastCC"):
            raise ServiceError(400, f"Invalid mosaickingOrder {order!r}")
        script = parse_evalscript(p.get("evalscript") or "")
        bad = [b for b in script.inputs if b not in COLLECTION_BANDS[collection] | {"dataMask", "CLM"}]
        if bad:
            raise ServiceError(400, f"Script failed to return: band(s) {', '.join(bad)} not available in "
                                  f"{collection}", "RENDERER_EXCEPTION")
        responses = out.get("responses") or [{"identifier": "default", "format": {"type": "image/tiff"}}]
        by_id = {o["id"]: o for o in script.outputs}
        for r in responses:
            if r.get("identifier") not in by_id:
                raise ServiceError(400, f"Output {r.get('identifier')!r} requested but not defined in the evalscript")
            fmt = (r.get("format") or {}).get("type", "image/tiff")
            if fmt not in ("image/tiff", "image/tif"):
                raise ServiceError(400, f"the fake serves image/tiff only, not {fmt}")

        transform = Affine((bbox[2] - bbox[0]) / width, 0, bbox[0], 0, -(bbox[3] - bbox[1]) / height, bbox[3])
        grid = Grid(crs, transform, width, height)
        if script.mosaicking == "ORBIT":
            samples, n_samples = self._render_orbits(grid, crs, bbox, geom, start, end, maxcc, script.reducer)
        else:
            samples, n_samples = self._render(grid, crs, bbox, geom, start, end, maxcc, order), 1
        if script.units.upper() == "REFLECTANCE":
            for b in EUROSAT_BAND_ORDER:
                samples[b] = samples[b] / 10000.0

        files = {}
        for r in responses:
            o = by_id[r["identifier"]]
            arr = np.stack([samples[v] if isinstance(v, str) else np.full((height, width), v, np.float32)
                            for v in o["values"]])
            files[r["identifier"]] = geotiff_bytes(arr, o["sampleType"], crs, transform)
        n_bands = len([b for b in script.inputs if b != "dataMask"])
        float_out = any(by_id[r["identifier"]]["sampleType"] == "FLOAT32" for r in responses)
        # multi-temporal (ORBIT) requests: times the number of data samples (orbits), at least one
        pu = max(0.005, width * height / (512 * 512) * max(n_bands, 1) / 3 * (2 if float_out else 1)
                 * max(n_samples, 1))
        headers = {"x-processingunits-spent": f"{pu:.6g}"}
        if len(responses) == 1:
            return next(iter(files.values())), "image/tiff", headers
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for ident, blob in files.items():
                info = tarfile.TarInfo(f"{ident}.tif")
                info.size = len(blob)
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(blob))
        return buf.getvalue(), "application/x-tar", headers

    def _candidates(self, crs: str, bbox: list[float], start: dt.datetime | None, end: dt.datetime | None,
                    maxcc: float) -> list[SceneSource]:
        """The library's scenes in the time range over the bbox with cloud <= maxcc (tiles, unsorted)."""
        try:
            wgs = sg.box(*transform_bounds(crs, "EPSG:4326", *bbox))
        except Exception as exc:
            raise ServiceError(400, f"Cannot transform bbox from {crs}: {exc}") from None
        cands = []
        for s in self.library.sources:
            when = dt.datetime.combine(s.date, SENSING_TIME, dt.timezone.utc)
            if (start and when < start) or (end and when > end):
                continue
            if not s.footprint.intersects(wgs) or self._cloud(s) > maxcc:
                continue
            cands.append(s)
        return cands

    @staticmethod
    def _mosaic(grid: Grid, cands: list[SceneSource]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(13, H, W) float32 DN, dataMask and CLM of ``cands`` in order: the first fills, clear replaces cloud."""
        h, w = grid.height, grid.width
        data = np.zeros((13, h, w), dtype=np.float32)
        valid = np.zeros((h, w), dtype=bool)
        cloud = np.zeros_like(valid)
        for s in cands:  # same rule as LocalFilesProvider.fetch: fill gaps, replace cloud by clear
            arr = s.read_on_grid(grid)
            ok = np.all(arr > 0, axis=0)
            cl = bright_cloud_mask(*(arr[EUROSAT_BAND_ORDER.index(b)] for b in CLOUD_TEST_BANDS)) & ok
            fill = ok & (~valid | (cloud & ~cl))
            if fill.any():
                data[:, fill] = arr[:, fill]
                cloud[fill] = cl[fill]
                valid |= fill
            if valid.all() and not cloud.any():
                break
        return data, valid, cloud

    @staticmethod
    def _samples(grid: Grid, geom: Any, data: np.ndarray, valid: np.ndarray,
                 cloud: np.ndarray) -> dict[str, np.ndarray]:
        if geom is not None:
            inside = ~geometry_mask([sg.mapping(geom)], out_shape=(grid.height, grid.width),
                                    transform=grid.transform)
            valid &= inside
            data[:, ~valid] = 0
            cloud &= valid
        out = {b: data[i] for i, b in enumerate(EUROSAT_BAND_ORDER)}
        out["dataMask"] = valid.astype(np.float32)
        out["CLM"] = cloud.astype(np.float32)
        return out

    def _render(self, grid: Grid, crs: str, bbox: list[float], geom: Any, start: dt.datetime | None,
                end: dt.datetime | None, maxcc: float, order: str) -> dict[str, np.ndarray]:
        """SIMPLE mosaicking: one mosaic of the tiles in the time range, in ``order``."""
        cands = self._candidates(crs, bbox, start, end, maxcc)
        if order == "leastCC":
            cands.sort(key=lambda s: (self._cloud(s), s.date))
        elif order == "leastRecent":
            cands.sort(key=lambda s: s.date)
        else:
            cands.sort(key=lambda s: s.date, reverse=True)
        data, valid, cloud = self._mosaic(grid, cands)
        return self._samples(grid, geom, data, valid, cloud)

    def _render_orbits(self, grid: Grid, crs: str, bbox: list[float], geom: Any, start: dt.datetime | None,
                       end: dt.datetime | None, maxcc: float, reducer: str) -> tuple[dict[str, np.ndarray], int]:
        """ORBIT mosaicking: one sample per acquisition date, reduced per pixel by ``reducer``.

        Returns the reduced outputs (as :meth:`_render`) and the number of samples (orbits).
        Holds every orbit's 13 bands at once: fine for a test server's small requests.
        """
        if reducer not in ORBIT_REDUCERS:
            raise ServiceError(400, f"the fake knows no ORBIT reducer {reducer!r}", "RENDERER_EXCEPTION")
        by_date: dict[dt.date, list[SceneSource]] = {}
        for s in self._candidates(crs, bbox, start, end, maxcc):
            by_date.setdefault(s.date, []).append(s)
        dates = sorted(by_date, reverse=True)  # samples most recent first (the reducer ignores the order)
        n, h, w = len(dates), grid.height, grid.width
        stack = np.zeros((n, 13, h, w), dtype=np.float32)
        ok = np.zeros((n, h, w), dtype=bool)
        cl = np.zeros((n, h, w), dtype=bool)
        orbit_cc = []
        for i, d in enumerate(dates):
            tiles = sorted(by_date[d], key=lambda s: (self._cloud(s), s.area))
            stack[i], ok[i], cl[i] = self._mosaic(grid, tiles)
            orbit_cc.append(min(self._cloud(s) for s in tiles))  # the evalscript's orbitCloud()
        data, valid, cloud = clear_median_reduce(stack, ok, cl, orbit_cc, dates)
        return self._samples(grid, geom, data, valid, cloud), n

def parse_crs(text: Any) -> str:
    if not text:
        return "OGC:CRS84"
    t = str(text)
    if t.endswith("/CRS84") or t.upper() in ("CRS84", "OGC:CRS84"):
        return "OGC:CRS84"
    m = re.search(r"EPSG/0/(\d+)$", t) or re.fullmatch(r"EPSG:(\d+)", t, flags=re.I)
    if not m:
        raise ServiceError(400, f"Unsupported CRS {t!r}")
    code = int(m[1])
    if code == 4326:
        return "OGC:CRS84"  # Sentinel Hub takes EPSG:4326 bboxes as lon/lat
    try:
        pyproj.CRS.from_epsg(code)
    except pyproj.exceptions.CRSError:
        raise ServiceError(400, f"Unknown EPSG code {code}") from None
    return f"EPSG:{code}"


def geotiff_bytes(arr: np.ndarray, sample_type: str, crs: str, transform: Affine) -> bytes:
    dtype = {"UINT8": "uint8", "UINT16": "uint16", "INT8": "int8", "INT16": "int16", "FLOAT32": "float32"}[sample_type]
    if dtype != "float32":
        info = np.iinfo(dtype)
        arr = np.clip(np.rint(arr), info.min, info.max)
    arr = arr.astype(dtype)
    n, h, w = arr.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=w, height=h, count=n, dtype=dtype, crs=crs,
                      transform=transform) as ds:
            ds.write(arr)
        return mem.read()
