"""Areas of interest: parsing (GeoJSON, KML, bbox), validation, areas, UTM zone and the
64-pixel patch grid at 10 m that covers them.

Grids snap to a global 640 m lattice in the AOI's UTM zone, so the same place always falls on
the same patches whatever the AOI's exact outline, and two dates share one grid.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyproj
from affine import Affine
from shapely import geometry as sg
from shapely.geometry.base import BaseGeometry
import shapely
from shapely.validation import explain_validity

from lulc_core.errors import AOIError

RESOLUTION_M = 10.0
PATCH_PX = 64
PATCH_M = RESOLUTION_M * PATCH_PX  # 640 m
PATCH_HA = PATCH_M * PATCH_M / 10_000  # 40.96 ha
MAX_AREA_KM2 = 2500.0  # 50 x 50 km: 4 Process API requests at 10 m per date
_GEOD = pyproj.Geod(ellps="WGS84")


@dataclass(frozen=True)
class PatchGrid:
    """A north-up 10 m grid in a UTM CRS whose size is a whole number of 64x64 patches."""

    crs: str
    transform: Affine
    width: int
    height: int
    patch_px: int = PATCH_PX

    @property
    def rows(self) -> int:
        return self.height // self.patch_px

    @property
    def cols(self) -> int:
        return self.width // self.patch_px

    @property
    def n_patches(self) -> int:
        return self.rows * self.cols

    @property
    def resolution(self) -> float:
        return self.transform.a

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the grid's CRS."""
        x0, y0 = self.transform.c, self.transform.f
        return (x0, y0 - self.height * self.resolution, x0 + self.width * self.resolution, y0)

    def patch_box(self, row: int, col: int) -> sg.Polygon:
        """Outline of patch (row, col) in the grid's CRS."""
        size = self.patch_px * self.resolution
        x0 = self.transform.c + col * size
        y1 = self.transform.f - row * size
        return sg.box(x0, y1 - size, x0 + size, y1)

    def to_wgs84(self, geom: BaseGeometry) -> BaseGeometry:
        """Reproject a geometry from the grid's CRS to lon/lat."""
        return reproject_geometry(geom, self.crs, "EPSG:4326")

    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        return tuple(self.to_wgs84(sg.box(*self.bounds)).bounds)  # type: ignore[return-value]

    def split(self, max_px: int = 2500) -> list[tuple[int, int, "PatchGrid"]]:
        """Sub-grids of at most ``max_px`` per side (whole patches), with their pixel offsets."""
        step = (max_px // self.patch_px) * self.patch_px
        parts = []
        for r0 in range(0, self.height, step):
            for c0 in range(0, self.width, step):
                tr = self.transform @ Affine.translation(c0, r0)
                parts.append((r0, c0, PatchGrid(self.crs, tr, min(step, self.width - c0),
                                                 min(step, self.height - r0), self.patch_px)))
        return parts

    def cells(self, cell_px: int) -> "PatchGrid":
        """The same extent divided into cells of ``cell_px`` pixels (a divisor of the patch size)."""
        if self.patch_px % cell_px:
            raise ValueError(f"cells of {cell_px} px do not divide {self.patch_px} px patches")
        return PatchGrid(self.crs, self.transform, self.width, self.height, cell_px)

    def to_dict(self) -> dict[str, Any]:
        return {"crs": self.crs, "transform": list(self.transform)[:6], "width": self.width,
                "height": self.height, "patch_px": self.patch_px}


def reproject_geometry(geom: BaseGeometry, src_crs: str, dst_crs: str) -> BaseGeometry:
    """A geometry's coordinates transformed from ``src_crs`` to ``dst_crs`` (x = lon / easting)."""
    tr = pyproj.Transformer.from_crs(src_crs, dst_crs, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 / UTM zone containing (lon, lat)."""
    zone = int(math.floor((lon + 180) / 6)) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


@dataclass(frozen=True)
class AOI:
    """A validated polygon in WGS84 lon/lat (``geometry``) with a display ``name``."""

    geometry: BaseGeometry
    name: str = "AOI"

    def __post_init__(self) -> None:
        validate_geometry(self.geometry)

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_bbox(cls, west: float, south: float, east: float, north: float, name: str = "bbox") -> "AOI":
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise AOIError("bounding box values must be numbers")
        if west >= east or south >= north:
            raise AOIError(f"bounding box must be west < east and south < north; got "
                           f"W {west}, S {south}, E {east}, N {north}")
        return cls(sg.box(west, south, east, north), name)

    @classmethod
    def from_geojson(cls, data: str | bytes | dict, name: str = "GeoJSON") -> "AOI":
        """A Feature, FeatureCollection (polygons are unioned) or bare geometry."""
        try:
            obj = json.loads(data) if isinstance(data, (str, bytes)) else data
        except json.JSONDecodeError as exc:
            raise AOIError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(obj, dict) or "type" not in obj:
            raise AOIError("not a GeoJSON object (no 'type')")
        geoms = []
        if obj["type"] == "FeatureCollection":
            feats = obj.get("features") or []
            if not feats:
                raise AOIError("the GeoJSON FeatureCollection has no features")
            geoms = [f.get("geometry") for f in feats]
        elif obj["type"] == "Feature":
            geoms = [obj.get("geometry")]
            name = (obj.get("properties") or {}).get("name", name)
        else:
            geoms = [obj]
        shapes = []
        for g in geoms:
            if not g:
                raise AOIError("a GeoJSON feature has no geometry")
            try:
                shapes.append(sg.shape(g))
            except Exception as exc:  # shapely raises several types for malformed input
                raise AOIError(f"malformed GeoJSON geometry: {exc}") from None
        return cls(_union(shapes), name)

    @classmethod
    def from_kml(cls, data: str | bytes, name: str = "KML") -> "AOI":
        """Polygons of a KML document (outer and inner boundaries)."""
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise AOIError(f"not valid KML/XML: {exc}") from None
        polys = []
        for el in root.iter():
            if el.tag.split("}")[-1] != "Polygon":
                continue
            outer, inner = None, []
            for b in el:
                tag = b.tag.split("}")[-1]
                coords = [c for c in b.iter() if c.tag.split("}")[-1] == "coordinates"]
                if not coords:
                    continue
                ring = _kml_ring(coords[0].text or "")
                if tag == "outerBoundaryIs":
                    outer = ring
                elif tag == "innerBoundaryIs":
                    inner.append(ring)
            if outer:
                polys.append(sg.Polygon(outer, inner))
        if not polys:
            raise AOIError("the KML has no Polygon")
        return cls(_union(polys), name)

    @classmethod
    def from_file(cls, path: str, data: bytes | None = None) -> "AOI":
        """GeoJSON (.geojson/.json) or KML (.kml) by file extension."""
        from pathlib import Path

        p = Path(path)
        raw = data if data is not None else p.read_bytes()
        suffix = p.suffix.lower()
        if suffix in (".geojson", ".json"):
            return cls.from_geojson(raw, name=p.stem)
        if suffix == ".kml":
            return cls.from_kml(raw, name=p.stem)
        raise AOIError(f"{p.name}: unsupported file type {suffix or '(none)'}; use .geojson, .json or .kml")

    # -- facts --------------------------------------------------------------------------
    @cached_property
    def area_m2(self) -> float:
        """Geodesic (equal-area) area on the WGS84 ellipsoid."""
        return abs(_GEOD.geometry_area_perimeter(self.geometry)[0])

    @property
    def area_km2(self) -> float:
        return self.area_m2 / 1e6

    @property
    def area_ha(self) -> float:
        return self.area_m2 / 1e4

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(self.geometry.bounds)  # type: ignore[return-value]

    @cached_property
    def utm_crs(self) -> str:
        c = self.geometry.centroid
        return f"EPSG:{utm_epsg(c.x, c.y)}"

    def in_crs(self, crs: str) -> BaseGeometry:
        return reproject_geometry(self.geometry, "EPSG:4326", crs)

    @cached_property
    def grid(self) -> PatchGrid:
        """The 10 m UTM grid of whole 64x64 patches covering the AOI, on the 640 m lattice."""
        minx, miny, maxx, maxy = self.in_crs(self.utm_crs).bounds
        x0 = math.floor(minx / PATCH_M) * PATCH_M
        y0 = math.floor(miny / PATCH_M) * PATCH_M
        x1 = math.ceil(maxx / PATCH_M) * PATCH_M
        y1 = math.ceil(maxy / PATCH_M) * PATCH_M
        width = int(round((x1 - x0) / RESOLUTION_M))
        height = int(round((y1 - y0) / RESOLUTION_M))
        return PatchGrid(self.utm_crs, Affine(RESOLUTION_M, 0, x0, 0, -RESOLUTION_M, y1), width, height)

    def patch_fractions(self, grid: PatchGrid | None = None) -> np.ndarray:
        """Share (0..1) of each patch's area inside the AOI, shape (rows, cols)."""
        grid = grid or self.grid
        geom = self.in_crs(grid.crs)
        size = grid.patch_px * grid.resolution
        x0 = grid.transform.c + np.arange(grid.cols) * size
        y1 = grid.transform.f - np.arange(grid.rows) * size
        xx, yy = np.meshgrid(x0, y1)
        boxes = shapely.box(xx, yy - size, xx + size, yy)
        shapely.prepare(geom)
        return shapely.area(shapely.intersection(boxes, geom)) / (size * size)

    def to_geojson(self) -> dict[str, Any]:
        return {"type": "Feature", "properties": {"name": self.name},
                "geometry": sg.mapping(self.geometry)}


def validate_geometry(geom: BaseGeometry, max_area_km2: float = MAX_AREA_KM2) -> None:
    """Raise :class:`AOIError` with a clear reason when ``geom`` is not a usable AOI."""
    if geom is None or geom.is_empty:
        raise AOIError("the area of interest is empty")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise AOIError(f"the area of interest must be a polygon, got a {geom.geom_type}")
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise AOIError("coordinates must be longitude/latitude in WGS84 (EPSG:4326): "
                       f"got bounds {minx:.3f}, {miny:.3f}, {maxx:.3f}, {maxy:.3f}")
    if miny < -80 or maxy > 84:
        raise AOIError("latitudes beyond 80 S / 84 N are outside the UTM grids used here")
    if maxx - minx > 6:
        raise AOIError(f"the area spans {maxx - minx:.1f} degrees of longitude; keep it within one "
                       "UTM zone (under 6 degrees), and don't cross the antimeridian")
    if not geom.is_valid:
        raise AOIError(f"invalid polygon: {explain_validity(geom)}")
    area_km2 = abs(_GEOD.geometry_area_perimeter(geom)[0]) / 1e6
    if area_km2 * 100 < PATCH_HA:
        raise AOIError(f"the area is too small: {area_km2 * 100:.1f} ha; at least one 64x64 patch "
                       f"at 10 m ({PATCH_HA:.2f} ha) is needed")
    if area_km2 > max_area_km2:
        raise AOIError(f"the area is too large: {area_km2:,.0f} km2; the limit is {max_area_km2:,.0f} km2")


def _kml_ring(text: str) -> list[tuple[float, float]]:
    pts = []
    for tok in text.split():
        parts = tok.split(",")
        try:
            pts.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            raise AOIError(f"bad KML coordinate {tok!r}; expected lon,lat[,alt]") from None
    return pts


def _union(shapes: list[BaseGeometry]) -> BaseGeometry:
    from shapely.ops import unary_union

    polys = [s for s in shapes if s.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        kinds = ", ".join(sorted({s.geom_type for s in shapes}))
        raise AOIError(f"the area of interest must be a polygon, got {kinds}")
    if any(not p.is_valid for p in polys):
        bad = next(p for p in polys if not p.is_valid)
        raise AOIError(f"invalid polygon: {explain_validity(bad)}")
    return polys[0] if len(polys) == 1 else unary_union(polys)
