"""Areas of interest: parsing (GeoJSON, KML, KMZ, zipped shapefile, bbox), validation, areas,
UTM zone and the 64-pixel patch grid at 10 m that covers them.

Every reader takes untrusted bytes and either returns a valid :class:`AOI` or raises
:class:`~lulc_core.errors.AOIError` with a one-line reason and what to do; what it leaves out
(points and lines beside the polygons) is said in :attr:`AOI.notes`.

Grids snap to a global 640 m lattice in the AOI's UTM zone, so the same place always falls on
the same patches whatever the AOI's exact outline, and two dates share one grid.
"""

from __future__ import annotations

import io
import json
import math
import threading
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
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
#: Largest AOI file (or unpacked archive) read; AOIs are outlines, not imagery.
MAX_AOI_FILE_BYTES = 50 * 2**20
#: File types :meth:`AOI.from_file` reads.
AOI_SUFFIXES = (".geojson", ".json", ".kml", ".kmz", ".zip")
_SUPPORTED = "use GeoJSON (.geojson/.json), KML (.kml), KMZ (.kmz) or a zipped shapefile (.zip)"
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

    def split(self, max_px: int) -> list[tuple[int, int, "PatchGrid"]]:
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

    @classmethod
    def from_geojson(cls, data: str | bytes | dict, name: str = "GeoJSON") -> "AOI":
        """A Feature, FeatureCollection (polygons are unioned) or bare geometry."""
        obj = _parse_json(data) if isinstance(data, (str, bytes, bytearray)) else data
        if not isinstance(obj, dict) or "type" not in obj:
            raise AOIError("not a GeoJSON object (no 'type'); expected a Feature, FeatureCollection or geometry")
        if obj["type"] == "FeatureCollection":
            feats = obj.get("features")
            if not isinstance(feats, list):
                raise AOIError("the GeoJSON FeatureCollection's 'features' must be a list of Feature objects")
            if not feats:
                raise AOIError("the GeoJSON FeatureCollection has no features")
            for i, f in enumerate(feats):
                if not isinstance(f, dict):
                    raise AOIError(f"feature {i + 1} of the FeatureCollection is a {_json_kind(f)}, not a Feature "
                                   "object; export the file again as GeoJSON")
            geoms = [f.get("geometry") for f in feats]
        elif obj["type"] == "Feature":
            geoms = [obj.get("geometry")]
            props = obj.get("properties")
            if props is not None and not isinstance(props, dict):
                raise AOIError(f"the Feature's 'properties' is a {_json_kind(props)}; GeoJSON needs an object "
                               "(or null) there")
            name = (props or {}).get("name", name)
        else:
            geoms = [obj]
        shapes = []
        for g in geoms:
            if not g:
                raise AOIError("a GeoJSON feature has no geometry")
            if not isinstance(g, dict):
                raise AOIError(f"a GeoJSON geometry is a {_json_kind(g)}, not an object")
            try:
                shapes.append(sg.shape(g))
            except Exception as exc:  # shapely raises several types for malformed input
                raise AOIError(f"malformed GeoJSON geometry: {_short(exc)}") from None
        geom, notes = _polygons_only(shapes)
        return cls(geom, name, notes)

    @classmethod
    def from_kml(cls, data: str | bytes, name: str = "KML") -> "AOI":
        """Polygons of a KML document (outer and inner boundaries); DTDs and entities are refused."""
        text = data if isinstance(data, str) else bytes(data).decode("latin-1")
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise AOIError("the KML declares a DOCTYPE or entities, which KML never needs (and which can be used "
                           "to attack the reader); export the KML again from your GIS")
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            hint = ("; save it as UTF-8 (or declare its encoding) and try again"
                    if "invalid token" in str(exc) or "encoding" in str(exc) else "")
            raise AOIError(f"not valid KML/XML: {exc}{hint}") from None
        except RecursionError:
            raise AOIError("the KML is nested too deeply to be an area outline") from None
        polys, others = [], []
        for el in root.iter():
            tag = el.tag.split("}")[-1] if isinstance(el.tag, str) else ""
            if tag in ("Point", "LineString"):
                others.append(tag)
            if tag != "Polygon":
                continue
            outer, inner = None, []
            for b in el:
                btag = b.tag.split("}")[-1] if isinstance(b.tag, str) else ""
                coords = [c for c in b.iter() if isinstance(c.tag, str) and c.tag.split("}")[-1] == "coordinates"]
                if not coords:
                    continue
                ring = _kml_ring(coords[0].text or "")
                if btag == "outerBoundaryIs":
                    outer = ring
                elif btag == "innerBoundaryIs":
                    inner.append(ring)
            if outer:
                polys.append(sg.Polygon(outer, inner))
        if not polys:
            what = f" (only {', '.join(sorted(set(others)))})" if others else ""
            raise AOIError(f"the KML has no Polygon{what}; an area of interest must be a polygon")
        geom, notes = _polygons_only(polys)
        if others:
            notes += (_left_out_note(others),)
        return cls(geom, name, notes)

    @classmethod
    def from_archive(cls, data: bytes, name: str = "archive") -> "AOI":
        """A zip archive: a zipped shapefile (.shp + .shx + .dbf, with its .prj) or a KMZ (a KML inside)."""
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            infos = [i for i in zf.infolist() if not i.is_dir() and "__MACOSX" not in i.filename
                     and not Path(i.filename).name.startswith("._")]
        except (zipfile.BadZipFile, ValueError) as exc:
            raise AOIError(f"not a readable zip archive ({_short(exc)}); upload the .zip / .kmz again") from None
        if sum(i.file_size for i in infos) > MAX_AOI_FILE_BYTES:
            raise AOIError(f"the archive unpacks to more than {MAX_AOI_FILE_BYTES // 2**20} MB; an area outline "
                           "needs far less: zip only the area's shapefile or KML")

        def read(info: zipfile.ZipInfo) -> bytes:
            try:
                return zf.read(info)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError) as exc:
                raise AOIError(f"{info.filename} in the archive can't be read ({_short(exc)})") from None

        by_ext: dict[str, list[zipfile.ZipInfo]] = {}
        for i in infos:
            by_ext.setdefault(Path(i.filename).suffix.lower(), []).append(i)
        shps = by_ext.get(".shp", [])
        if len(shps) > 1:
            raise AOIError(f"the zip holds {len(shps)} shapefiles ({', '.join(i.filename for i in shps)}); "
                           "zip the one with the area")
        if shps:
            stem = shps[0].filename[:-4].lower()
            parts = {ext: next((i for i in infos if i.filename.lower() == stem + ext), None)
                     for ext in (".shx", ".dbf", ".prj")}
            missing = [ext for ext in (".shx", ".dbf") if parts[ext] is None]
            if missing:
                raise AOIError(f"the zipped shapefile lacks its {' and '.join(missing)} file(s); zip all the "
                               f"files of {Path(shps[0].filename).name} (.shp, .shx, .dbf, .prj) together")
            prj = read(parts[".prj"]).decode("utf-8", "replace") if parts[".prj"] else None
            return cls.from_shapefile(read(shps[0]), read(parts[".shx"]), read(parts[".dbf"]), prj,
                                      name=Path(shps[0].filename).stem)
        kmls = by_ext.get(".kml", [])
        if kmls:
            doc = next((i for i in kmls if Path(i.filename).name.lower() == "doc.kml"), kmls[0])
            return cls.from_kml(read(doc), name=name)
        raise AOIError("the zip holds no shapefile (.shp with .shx, .dbf, .prj) and no .kml; "
                       f"found: {', '.join(sorted(by_ext)) or 'nothing'}")

    @classmethod
    def from_shapefile(cls, shp: bytes, shx: bytes, dbf: bytes, prj: str | None, name: str = "shapefile") -> "AOI":
        """Polygons of a shapefile (read with pyshp), reprojected from the .prj's CRS to WGS84."""
        import shapefile

        try:
            reader = shapefile.Reader(shp=io.BytesIO(shp), shx=io.BytesIO(shx), dbf=io.BytesIO(dbf))
            shapes = [s for s in reader.shapes() if s.shapeType != shapefile.NULL]
            geoms = [sg.shape(s.__geo_interface__) for s in shapes]
        except AOIError:
            raise
        except Exception as exc:  # pyshp raises several types for damaged files
            raise AOIError(f"the shapefile can't be read ({_short(exc)}); export it again from your GIS") from None
        if not geoms:
            raise AOIError("the shapefile holds no shapes")
        geom, notes = _polygons_only(geoms)
        if prj is None:
            minx, miny, maxx, maxy = geom.bounds
            if not (-180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90):
                raise AOIError("the zipped shapefile has no .prj, so its coordinate system is unknown; "
                               "zip the .prj file with it")
            notes += ("The shapefile has no .prj: its coordinates were taken as WGS84 longitude/latitude.",)
        else:
            try:
                crs = pyproj.CRS.from_user_input(prj)
            except pyproj.exceptions.CRSError as exc:
                raise AOIError(f"the shapefile's .prj can't be read as a coordinate system ({_short(exc)})") from None
            if not crs.equals(pyproj.CRS("EPSG:4326"), ignore_axis_order=True):
                geom = reproject_geometry(geom, crs, "EPSG:4326")
                if not all(math.isfinite(v) for v in geom.bounds):
                    raise AOIError(f"the shapefile's coordinates fall outside its CRS ({crs.name}); check the .prj")
                geom = shapely.make_valid(geom) if not geom.is_valid else geom
        return cls(geom, name, notes)

    @classmethod
    def from_file(cls, path: str, data: bytes | None = None) -> "AOI":
        """GeoJSON (.geojson/.json), KML (.kml), KMZ (.kmz) or zipped shapefile (.zip), by file extension.

        ``data`` (an upload's bytes) is read instead of ``path``. Any failure is an :class:`AOIError`.
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".shp", ".shx", ".dbf", ".prj"):
            raise AOIError(f"{p.name}: unsupported file type {suffix} on its own: a shapefile is several files; "
                           "zip the .shp, .shx, .dbf and .prj together and give the .zip")
        if suffix not in AOI_SUFFIXES:
            raise AOIError(f"{p.name}: unsupported file type {suffix or '(none)'}; {_SUPPORTED}")
        if data is None:
            if p.is_dir():
                raise AOIError(f"{p} is a folder; give the AOI file itself ({_SUPPORTED})")
            try:
                if p.stat().st_size > MAX_AOI_FILE_BYTES:
                    raise AOIError(f"{p.name} is larger than {MAX_AOI_FILE_BYTES // 2**20} MB; an area outline "
                                   "needs far less (simplify it in your GIS)")
                raw = p.read_bytes()
            except OSError as exc:
                raise AOIError(f"can't read AOI file {p}: {exc.strerror or exc}") from None
        else:
            raw = data
        if len(raw) > MAX_AOI_FILE_BYTES:
            raise AOIError(f"{p.name} is larger than {MAX_AOI_FILE_BYTES // 2**20} MB; an area outline needs "
                           "far less (simplify it in your GIS)")
        try:
            if suffix in (".geojson", ".json"):
                return cls.from_geojson(raw, name=p.stem)
            if suffix == ".kml":
                return cls.from_kml(raw, name=p.stem)
            return cls.from_archive(raw, name=p.stem)
        except AOIError:
            raise
        except (RecursionError, MemoryError):
            raise AOIError(f"{p.name} is nested too deeply or too large to be an area outline") from None
        except Exception as exc:  # last line of defence: a reader bug must still read as a message
            raise AOIError(f"{p.name} could not be read as an area ({type(exc).__name__}: {_short(exc)})") from None

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
            x, y = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise AOIError(f"bad KML coordinate {tok!r}; expected lon,lat[,alt]") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise AOIError(f"bad KML coordinate {tok!r}: longitude and latitude must be finite numbers")
        pts.append((x, y))
    if len(set(pts)) < 3:
        raise AOIError(f"a KML ring has {len(set(pts))} distinct coordinate(s); a polygon needs at least 3 corners")
    return pts


def _parse_json(data: str | bytes | bytearray) -> Any:
    """JSON text (UTF-8 bytes, a BOM allowed) to Python, with messages a user can act on."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise AOIError(f"the GeoJSON is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position "
                           f"{exc.start}); GeoJSON must be UTF-8: save or export it again as UTF-8") from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise AOIError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise AOIError("the JSON is nested too deeply to be GeoJSON; export the area again from your GIS") from None


def _json_kind(v: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(v), type(v).__name__)


def _short(exc: BaseException, limit: int = 160) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= limit else msg[:limit] + "..."


def _clean_name(name: Any) -> str:
    """A display name as one short line of text, whatever the input held (numbers, null, lists)."""
    text = " ".join(str(name).split()) if name is not None else ""
    return (text or "AOI")[:120]


def _left_out_note(kinds: list[str]) -> str:
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    what = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in counts.items())
    return f"Left out {what}: only polygons make an area of interest."


def _flatten(shapes: list[BaseGeometry]) -> list[BaseGeometry]:
    out = []
    for s in shapes:
        if s.geom_type == "GeometryCollection":
            out += _flatten(list(s.geoms))
        else:
            out.append(s)
    return out


def _polygons_only(shapes: list[BaseGeometry]) -> tuple[BaseGeometry, tuple[str, ...]]:
    """The union of the polygons among ``shapes`` and a note naming what else was left out."""
    shapes = [s for s in _flatten(shapes) if not s.is_empty]
    others = [s.geom_type for s in shapes if s.geom_type not in ("Polygon", "MultiPolygon")]
    geom = _union(shapes)
    return geom, ((_left_out_note(others),) if others else ())


def _union(shapes: list[BaseGeometry]) -> BaseGeometry:
    from shapely.ops import unary_union

    polys = [s for s in shapes if s.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        kinds = ", ".join(sorted({s.geom_type for s in shapes})) or "nothing"
        raise AOIError(f"the area of interest must be a polygon, got {kinds}")
    if any(not p.is_valid for p in polys):
        bad = next(p for p in polys if not p.is_valid)
        raise AOIError(f"invalid polygon: {explain_validity(bad)}")
    return polys[0] if len(polys) == 1 else unary_union(polys)
