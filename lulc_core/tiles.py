"""Splitting a region into tiles that each worker analyses alone, so that the cells equal a single run's.

- **Zones**: the region is cut along the UTM zone meridians (every 6 degrees of longitude); each
  part is analysed in its own zone (never one zone stretched across a country), on the lattice grid
  that covers it (:func:`~lulc_core.grid.lattice_grid`): the grid a single run over that part uses.
- **Cores**: squares of ``core_px`` pixels from the zone grid's origin partition it (the last row
  and column smaller). ``core_px`` is a multiple of the dense classifier's tile (768 px) and of
  the 640 m lattice, so that the dense pass, started at the core
  (:meth:`~lulc_core.model.dense.DenseClassifier.predict_scene` ``origin_px``), reads the same
  pixels for every window of the core as a single run over the zone grid does.
- **Halo**: a tile's grid is its core plus :data:`LEAD_HALO_PX` above and left and
  :data:`TRAIL_HALO_PX` below and right, clipped to the zone grid, whole 640 m patches. A core
  cell takes the 64 px windows centred on its corners (32 px beyond the core); the trailing halo
  holds every pixel the core's last dense tile reads (its windows, 64 px of context: 112 px), so
  those windows are exact; the two windows per axis centred on the core's first cell edge lie
  in the previous dense tile, read here with ``LEAD_HALO_PX - 32`` px of context before them
  (a single run reads the whole previous dense tile): the only place a tile may differ.
- **Size**: a tile (core plus halo) is at most :data:`MAX_REQUEST_PX` per side: one Sentinel Hub
  Process API request at 10 m (2,304 px cores: 531 km2 of region per tile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import shapely
from affine import Affine
from shapely import geometry as sg
from shapely.geometry.base import BaseGeometry

from lulc_core.aoi import AOI
from lulc_core.errors import AOIError
from lulc_core.grid import LATTICE_PX, STEP_PX, Grid, lattice_grid, reproject_geometry, utm_epsg

#: The largest side of one Process API request (px); a tile's grid is never larger.
MAX_REQUEST_PX = 2500
#: The dense classifier's tile (:data:`lulc_core.model.dense.TILE_PX`; a test keeps them equal).
DENSE_TILE_PX = 768
LEAD_HALO_PX = LATTICE_PX  # above and left of the core
TRAIL_HALO_PX = 2 * LATTICE_PX  # below and right: the core's last dense tile reads 112 px past it
ZONE_DEG = 6.0


def default_core_px(dense_tile_px: int = DENSE_TILE_PX, lead_px: int = LEAD_HALO_PX,
                    trail_px: int = TRAIL_HALO_PX, max_px: int = MAX_REQUEST_PX) -> int:
    """The largest core (a multiple of the dense tile and the lattice) whose tile fits one request."""
    unit = math.lcm(dense_tile_px, LATTICE_PX)
    core = (max_px - lead_px - trail_px) // unit * unit
    if core <= 0:
        raise ValueError(f"no core of {unit} px fits {max_px} px with halos of {lead_px} + {trail_px} px")
    return core


@dataclass(frozen=True)
class TileAOI(AOI):
    """A tile as the providers and :func:`~lulc_core.classify.classify_cells` see it: ``geometry`` is
    the tile grid's footprint (what is searched and fetched), ``grid`` the tile grid, and the cells'
    share inside the AOI that of the region (``inside``, in the grid's CRS)."""

    tile_grid: Grid | None = None
    inside: BaseGeometry | None = None

    @property
    def grid(self) -> Grid:  # type: ignore[override]
        return self.tile_grid

    @property
    def utm_crs(self) -> str:  # type: ignore[override]
        return self.tile_grid.crs

    def cell_fractions(self, grid: Grid | None = None):
        grid = grid or self.grid
        geom = self.inside
        shapely.prepare(geom)
        return shapely.area(shapely.intersection(grid.cell_boxes(), geom)) / (grid.cell_m * grid.cell_m)


@dataclass(frozen=True)
class Tile:
    """One tile: its ``core`` (y0, x0, y1, x1 px of ``zone_grid``) and ``grid`` (core plus halo),
    ``offset`` (y, x px of the tile grid's origin in the zone grid), the region inside it
    (``inside``, zone CRS) and the region's area in its core."""

    key: str
    zone_grid: Grid
    row: int
    col: int
    core: tuple[int, int, int, int]
    grid: Grid
    offset: tuple[int, int]
    inside: BaseGeometry
    area_km2: float

    @property
    def crs(self) -> str:
        return self.grid.crs

    @property
    def core_in_tile(self) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1) of the core in the tile grid's pixels."""
        y0, x0, y1, x1 = self.core
        oy, ox = self.offset
        return y0 - oy, x0 - ox, y1 - oy, x1 - ox

    @property
    def core_cells(self) -> tuple[slice, slice]:
        """The core's rows and columns of 160 m cells in the tile grid."""
        y0, x0, y1, x1 = self.core_in_tile
        return slice(y0 // STEP_PX, y1 // STEP_PX), slice(x0 // STEP_PX, x1 // STEP_PX)

    @property
    def core_grid(self) -> Grid:
        """The core as a grid of 160 m cells."""
        y0, x0, y1, x1 = self.core
        return Grid(self.crs, self.zone_grid.transform @ Affine.translation(x0, y0), x1 - x0, y1 - y0, STEP_PX)

    @cached_property
    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        """The core's bounds in lon/lat (W, S, E, N): how a tile is named to people."""
        return tuple(round(v, 5) for v in self.core_grid.bounds_wgs84())  # type: ignore[return-value]

    def aoi(self) -> TileAOI:
        footprint = reproject_geometry(sg.box(*self.grid.bounds), self.crs, "EPSG:4326")
        return TileAOI(footprint, name=f"tile {self.key}", tile_grid=self.grid, inside=self.inside)


def zone_parts(geometry: BaseGeometry) -> list[tuple[str, BaseGeometry, BaseGeometry]]:
    """(UTM CRS, part in lon/lat, part in that CRS) for each UTM zone the region touches.

    A region within one zone is one part, reprojected as a single run's AOI is (so it gets the same
    grid); several parts are densified first, so that the cut along a meridian stays on it."""
    minx, _, maxx, _ = geometry.bounds
    z0, z1 = int(math.floor((minx + 180) / ZONE_DEG)), int(math.floor((min(maxx, 179.999999) + 180) / ZONE_DEG))
    parts = []
    for z in range(z0, z1 + 1):
        lon0 = -180 + z * ZONE_DEG
        part = geometry if z0 == z1 else geometry.intersection(sg.box(lon0, -90, lon0 + ZONE_DEG, 90))
        part = shapely.make_valid(part) if not part.is_valid else part
        polys = [g for g in getattr(part, "geoms", [part]) if g.geom_type in ("Polygon", "MultiPolygon")]
        if not polys or sum(p.area for p in polys) <= 0:
            continue
        part = shapely.union_all(polys)
        c = part.centroid
        crs = f"EPSG:{utm_epsg(min(max(c.x, lon0 + 1e-9), lon0 + ZONE_DEG - 1e-9), c.y)}"
        densified = part if z0 == z1 else shapely.segmentize(part, 0.01)
        parts.append((crs, part, reproject_geometry(densified, "EPSG:4326", crs)))
    if not parts:
        raise AOIError("the region is empty")
    return parts


def plan_tiles(geometry: BaseGeometry, core_px: int | None = None, lead_px: int = LEAD_HALO_PX,
               trail_px: int = TRAIL_HALO_PX, dense_tile_px: int = DENSE_TILE_PX) -> list[Tile]:
    """The tiles covering a region (lon/lat polygon), zone by zone, row by row (see module docstring).
    Cores that hold no part of the region are left out."""
    if core_px is None:
        core_px = default_core_px(dense_tile_px, lead_px, trail_px)
    if core_px <= 0 or core_px % dense_tile_px or core_px % LATTICE_PX:
        raise ValueError(f"a core of {core_px} px must be a multiple of the dense tile ({dense_tile_px} px) "
                         f"and of the {LATTICE_PX} px lattice")
    if lead_px % LATTICE_PX or trail_px % LATTICE_PX or lead_px < 0 or trail_px < 0:
        raise ValueError(f"halos must be whole {LATTICE_PX} px patches")
    if core_px + lead_px + trail_px > MAX_REQUEST_PX:
        raise ValueError(f"a tile of {core_px} + {lead_px} + {trail_px} px exceeds one request ({MAX_REQUEST_PX} px)")
    tiles = []
    for crs, _, part in zone_parts(geometry):
        zone = lattice_grid(crs, part.bounds)
        shapely.prepare(part)
        for i, y0 in enumerate(range(0, zone.height, core_px)):
            for j, x0 in enumerate(range(0, zone.width, core_px)):
                y1, x1 = min(zone.height, y0 + core_px), min(zone.width, x0 + core_px)
                core_box = _px_box(zone, y0, x0, y1, x1)
                if not part.intersects(core_box):
                    continue
                gy0, gx0 = max(0, y0 - lead_px), max(0, x0 - lead_px)
                gy1, gx1 = min(zone.height, y1 + trail_px), min(zone.width, x1 + trail_px)
                grid = Grid(crs, zone.transform @ Affine.translation(gx0, gy0), gx1 - gx0, gy1 - gy0)
                inside = part.intersection(_px_box(zone, gy0, gx0, gy1, gx1))
                area = part.intersection(core_box).area / 1e6
                if area <= 0:
                    continue
                key = f"{crs.split(':')[1]}_{i:03d}_{j:03d}"
                tiles.append(Tile(key, zone, i, j, (y0, x0, y1, x1), grid, (gy0, gx0), inside, area))
    return tiles


def _px_box(grid: Grid, y0: int, x0: int, y1: int, x1: int) -> sg.Polygon:
    t = grid.transform
    return sg.box(t.c + x0 * t.a, t.f + y1 * t.e, t.c + x1 * t.a, t.f + y0 * t.e)
