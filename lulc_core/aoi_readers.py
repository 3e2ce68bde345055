"""Reading areas of interest from files and uploads: GeoJSON, KML, KMZ and zipped shapefiles.

Every reader takes untrusted bytes and either returns a valid :class:`~lulc_core.aoi.AOI` or raises
:class:`~lulc_core.errors.AOIError` with a one-line reason and what to do; what it leaves out
(points and lines beside the polygons) is said in :attr:`AOI.notes`.
"""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pyproj
import shapely
from shapely import geometry as sg
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from lulc_core.aoi import AOI
from lulc_core.errors import AOIError
from lulc_core.grid import reproject_geometry

#: Largest AOI file (or unpacked archive) read; AOIs are outlines, not imagery.
MAX_AOI_FILE_BYTES = 50 * 2**20
#: File types :func:`read_aoi_file` reads.
AOI_SUFFIXES = (".geojson", ".json", ".kml", ".kmz", ".zip")
_SUPPORTED = "use GeoJSON (.geojson/.json), KML (.kml), KMZ (.kmz) or a zipped shapefile (.zip)"


def aoi_from_geojson(data: str | bytes | dict, name: str = "GeoJSON") -> AOI:
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
    return AOI(geom, name, notes)

def aoi_from_kml(data: str | bytes, name: str = "KML") -> AOI:
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
    return AOI(geom, name, notes)

def aoi_from_archive(data: bytes, name: str = "archive") -> AOI:
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
        return aoi_from_shapefile(read(shps[0]), read(parts[".shx"]), read(parts[".dbf"]), prj,
                                  name=Path(shps[0].filename).stem)
    kmls = by_ext.get(".kml", [])
    if kmls:
        doc = next((i for i in kmls if Path(i.filename).name.lower() == "doc.kml"), kmls[0])
        return aoi_from_kml(read(doc), name=name)
    raise AOIError("the zip holds no shapefile (.shp with .shx, .dbf, .prj) and no .kml; "
                   f"found: {', '.join(sorted(by_ext)) or 'nothing'}")

def aoi_from_shapefile(shp: bytes, shx: bytes, dbf: bytes, prj: str | None, name: str = "shapefile") -> AOI:
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
    return AOI(geom, name, notes)

def read_aoi_file(path: str, data: bytes | None = None) -> AOI:
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
    if not raw.strip() or raw.strip() == b"\xef\xbb\xbf":  # nothing, or only a UTF-8 byte-order mark
        raise AOIError("the file is empty; export the area again from your GIS or map tool")
    try:
        if suffix in (".geojson", ".json"):
            return aoi_from_geojson(raw, name=p.stem)
        if suffix == ".kml":
            return aoi_from_kml(raw, name=p.stem)
        return aoi_from_archive(raw, name=p.stem)
    except AOIError:
        raise
    except (RecursionError, MemoryError):
        raise AOIError(f"{p.name} is nested too deeply or too large to be an area outline") from None
    except Exception as exc:  # last line of defence: a reader bug must still read as a message
        raise AOIError(f"{p.name} could not be read as an area ({type(exc).__name__}: {_short(exc)})") from None


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
