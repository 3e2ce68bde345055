"""Areas of interest: a validated WGS84 polygon, its area, UTM zone and the 10 m grid that covers it.

Grids snap to the global 640 m lattice of :mod:`lulc_core.grid` in the AOI's UTM zone, so the same
place always falls on the same cells whatever the AOI's exact outline, and two dates share one
grid. Files and uploads are read by :mod:`lulc_core.aoi_readers`. How large an area one analysis
may cover is a limit of the providers (:data:`lulc_core.providers.base.MAX_RUN_AREA_KM2`), not of
the type: a larger region is a matter of tiling.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

import numpy as np
import pyproj
import shapely
from shapely import geometry as sg
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from lulc_core.errors import AOIError
from lulc_core.grid import PATCH_HA, PATCH_M, Grid, lattice_grid, reproject_geometry, utm_epsg

_GEOD = pyproj.Geod(ellps="WGS84")
#: The widest span of longitude an AOI may have: one UTM zone (see :func:`wide_areas` for regions).
MAX_LON_SPAN = 6.0
_LON_SPAN = ContextVar("lon_span", default=MAX_LON_SPAN)


@contextmanager
def wide_areas(max_lon_span: float = 180.0) -> Iterator[None]:
    """Within this block, areas may span up to ``max_lon_span`` degrees of longitude: a region read
    for tiling (:mod:`lulc_core.region`), never analysed in one piece."""
    token = _LON_SPAN.set(max_lon_span)
    try:
        yield
    finally:
        _LON_SPAN.reset(token)


@dataclass(frozen=True)
class AOI:
    """A validated polygon in WGS84 lon/lat (``geometry``) with a display ``name``."""

    geometry: BaseGeometry
    name: str = "AOI"
    #: What reading the input left out or assumed, in words (shown to the user; not compared).
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        validate_geometry(self.geometry)
        object.__setattr__(self, "name", _clean_name(self.name))

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_bbox(cls, west: float, south: float, east: float, north: float, name: str = "bbox") -> "AOI":
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise AOIError("bounding box values must be numbers")
        if west >= east or south >= north:
            raise AOIError(f"bounding box must be west < east and south < north; got "
                           f"W {west}, S {south}, E {east}, N {north}")
        return cls(sg.box(west, south, east, north), name)

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
    def grid(self) -> Grid:
        """The 10 m UTM grid of whole lattice patches covering the AOI (its cells are the patches)."""
        return lattice_grid(self.utm_crs, self.in_crs(self.utm_crs).bounds)

    def cell_fractions(self, grid: Grid | None = None) -> np.ndarray:
        """Share (0..1) of each cell's area inside the AOI, shape (rows, cols)."""
        grid = grid or self.grid
        geom = self.in_crs(grid.crs)
        shapely.prepare(geom)
        return shapely.area(shapely.intersection(grid.cell_boxes(), geom)) / (grid.cell_m * grid.cell_m)

    def to_geojson(self) -> dict[str, Any]:
        return {"type": "Feature", "properties": {"name": self.name},
                "geometry": sg.mapping(self.geometry)}


def validate_geometry(geom: BaseGeometry) -> None:
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
    if maxx - minx > _LON_SPAN.get():
        within = ("one UTM zone (under 6 degrees)" if _LON_SPAN.get() == MAX_LON_SPAN
                  else f"{_LON_SPAN.get():g} degrees")
        raise AOIError(f"the area spans {maxx - minx:.1f} degrees of longitude; keep it within {within}, "
                       "and don't cross the antimeridian")
    if not geom.is_valid:
        raise AOIError(f"invalid polygon: {explain_validity(geom)}")
    area_km2 = abs(_GEOD.geometry_area_perimeter(geom)[0]) / 1e6
    if area_km2 * 100 < PATCH_HA:
        raise AOIError(f"the area is too small: {area_km2 * 100:.1f} ha; at least one window "
                       f"of {PATCH_M:.0f} m ({PATCH_HA:.2f} ha) is needed")


def _clean_name(name: Any) -> str:
    """A display name as one short line of text, whatever the input held (numbers, null, lists)."""
    text = " ".join(str(name).split()) if name is not None else ""
    return (text or "AOI")[:120]
