"""The fault catalogue (issue 12): bad inputs and faults against the library, the CLI and the
dashboard, each ending in one actionable line and losing nothing.

Every row of :data:`CASES` names the surface (``lib``: the library call the CLI and the dashboard
share; ``cli``: ``python -m lulc_core`` run in-process; ``app``: the dashboard through AppTest),
its status before issue 12 (``message``: already clear; ``handled``: already coped with;
``fixed``: a traceback, wrong result, lost data, raw message or silence before) and the words the
user must see. A case's runner returns the message and asserts itself that nothing was lost
(inputs unchanged, earlier outputs intact). ``docs/RELIABILITY.md`` lists the same rows
(:func:`test_reliability_doc_lists_every_case` keeps the two in step; regenerate the table with
``python -m tests.test_faults``). The Sentinel Hub network faults live in tests/test_sentinelhub.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import struct
import sys
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from lulc_core.aoi import AOI

from lulc_core.aoi_readers import aoi_from_geojson, aoi_from_kml, read_aoi_file
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow
from lulc_core.errors import LulcError

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "lulc_core" / "demo_data"
DOC = ROOT / "docs" / "RELIABILITY.md"
APP = str(ROOT / "app.py")

RING = [[13.080, 42.785], [13.100, 42.785], [13.100, 42.796], [13.080, 42.796], [13.080, 42.785]]
POLY = {"type": "Polygon", "coordinates": [RING]}
FEATURE = {"type": "Feature", "properties": {"name": "norcia-box"}, "geometry": POLY}
KML_RING = " ".join(f"{x},{y},0" for x, y in RING)
WA, WB = "2015-07-01/2015-07-31", "2017-10-01/2017-10-31"


def kml(coords: str = KML_RING, extra: str = "") -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
            f"{extra}<Placemark><Polygon><outerBoundaryIs><LinearRing><coordinates>{coords}</coordinates>"
            "</LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>")


@dataclass(frozen=True)
class Case:
    id: str
    surface: str  # lib | cli | app
    status: str  # message | handled | fixed
    expect: str  # words the user sees (a regular expression)
    run: Callable[[Path, pytest.MonkeyPatch], str]
    area: str


CASES: list[Case] = []
_area = ""


def area(name: str) -> None:
    global _area
    _area = name


def case(id: str, surface: str, status: str, expect: str):
    def register(fn):
        CASES.append(Case(id, surface, status, expect, fn, _area))
        return fn
    return register


# -- helpers -------------------------------------------------------------------------------------

def lib_error(fn: Callable[[], object], exc_type: type = LulcError) -> str:
    """The message of the error ``fn`` raises (it must raise ``exc_type``)."""
    with pytest.raises(exc_type) as info:
        fn()
    return str(info.value)


def cli(*argv: str, rc: int = 2) -> tuple[str, str]:
    """Run the CLI in-process; asserts the exit code and that no traceback reached the user.
    Returns (the ``error:`` line or, for a success, stderr; stdout)."""
    from lulc_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    e = err.getvalue()
    assert code == rc, (code, e[-2000:])
    assert "Traceback" not in e + out.getvalue()
    if rc:
        lines = [ln for ln in e.splitlines() if ln.startswith("error: ")]
        assert len(lines) == 1, e
        return lines[0], out.getvalue()
    return e, out.getvalue()


def write(p: Path, data: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def aoi_file(tmp: Path, obj=FEATURE, name: str = "aoi.geojson") -> Path:
    return write(tmp / name, json.dumps(obj) if not isinstance(obj, (str, bytes)) else obj)


def digest(folder: Path) -> dict[str, str]:
    """Name -> SHA-256 of every file under ``folder`` (to show nothing changed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def shapefile_zip(crs: str | None = "EPSG:32633", shape: str = "polygon", parts=(".shp", ".shx", ".dbf", ".prj"),
                  two: bool = False) -> bytes:
    """A zipped shapefile of the test polygon (in ``crs``), written with pyshp."""
    import pyproj
    import shapefile

    tr = pyproj.Transformer.from_crs("EPSG:4326", crs or "EPSG:4326", always_xy=True)
    ring = [list(tr.transform(x, y)) for x, y in RING][::-1]  # clockwise outer ring
    files = {}
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    kind = {"polygon": shapefile.POLYGON, "point": shapefile.POINT}[shape]
    w = shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=kind)
    w.field("name", "C")
    if shape == "polygon":
        w.poly([ring])
    else:
        w.point(*ring[0])
    w.record("field")
    w.close()
    files = {".shp": shp.getvalue(), ".shx": shx.getvalue(), ".dbf": dbf.getvalue()}
    if crs:
        files[".prj"] = pyproj.CRS(crs).to_wkt(pyproj.enums.WktVersion.WKT1_ESRI).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for stem in (["area", "other"] if two else ["area"]):
            for ext in parts:
                if ext in files:
                    zf.writestr(stem + ext, files[ext])
    return buf.getvalue()


def reference_ha() -> float:
    return aoi_from_geojson(POLY).area_ha


# == AOI inputs ====================================================================================
area("AOI inputs")


@case("fc-features-not-objects", "lib", "fixed", r"feature 1 of the FeatureCollection is a number, not a Feature")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("x.geojson", b'{"type": "FeatureCollection", "features": [1, 2]}'))


@case("fc-features-not-a-list", "lib", "fixed", r"'features' must be a list")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "FeatureCollection", "features": {"a": 1}}))


@case("feature-properties-list", "lib", "fixed", r"'properties' is a list; GeoJSON needs an object")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "Feature", "properties": [1], "geometry": POLY}))


@case("feature-geometry-not-object", "lib", "fixed", r"geometry is a string, not an object")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "Feature", "properties": {}, "geometry": "POLYGON"}))


@case("feature-name-number-cli-compare", "cli", "fixed", r"\"aoi\": \"12345\"")
def _(tmp, mp):
    f = aoi_file(tmp, {**FEATURE, "properties": {"name": 12345}})
    err, out = cli("compare", "--aoi", str(f), "--date-a", WA, "--date-b", WB, "--out", str(tmp / "out"),
                   "--cache-dir", str(tmp / "c"), rc=0)
    assert "12345" in (tmp / "out" / "report.html").read_text()
    return out


@case("geojson-not-utf8", "lib", "fixed", r"not UTF-8 text \(byte 0xe9 .*save or export it again as UTF-8")
def _(tmp, mp):
    raw = json.dumps({**FEATURE, "properties": {"name": "caf\u00e9"}}).replace("\\u00e9", "\u00e9").encode("latin-1")
    return lib_error(lambda: read_aoi_file("x.geojson", raw))


@case("geojson-not-utf8-cli", "cli", "fixed", r"error: the GeoJSON is not UTF-8 text \(byte 0xe9")
def _(tmp, mp):
    f = write(tmp / "a.geojson", b'{"type": "Feature", "properties": {"name": "caf\xe9"}, "geometry": '
              + json.dumps(POLY).encode() + b"}")
    return cli("search", "--aoi", str(f), "--date", WA, "--cache-dir", str(tmp / "c"))[0]


@case("geojson-utf8-bom", "lib", "handled", r"^ok$")
def _(tmp, mp):
    a = read_aoi_file("x.geojson", b"\xef\xbb\xbf" + json.dumps(FEATURE).encode())
    assert a.area_ha == pytest.approx(reference_ha())
    return "ok"


@case("json-nested-100000", "lib", "fixed", r"nested too deeply")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("deep.json", b"[" * 100_000 + b"]" * 100_000))


@case("json-invalid", "lib", "message", r"not valid JSON: .* at line 1")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson("{not json"))


@case("geojson-no-type", "lib", "message", r"not a GeoJSON object \(no 'type'\)")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson("[1, 2, 3]"))


@case("fc-empty", "lib", "message", r"FeatureCollection has no features")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "FeatureCollection", "features": []}))


@case("feature-without-geometry", "lib", "message", r"a GeoJSON feature has no geometry")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "Feature", "properties": {}, "geometry": None}))


@case("geojson-point-only", "lib", "message", r"must be a polygon, got a Point|must be a polygon, got Point")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "Point", "coordinates": [13.09, 42.79]}))


@case("geojson-malformed-coordinates", "lib", "message", r"malformed GeoJSON geometry")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "Polygon", "coordinates": "nope"}))


@case("fc-points-and-lines-dropped", "lib", "fixed", r"Left out 1 LineString, 1 Point: only polygons")
def _(tmp, mp):
    feats = [FEATURE, {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [13, 42]}},
             {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": RING[:2]}}]
    a = aoi_from_geojson({"type": "FeatureCollection", "features": feats})
    assert a.area_ha == pytest.approx(reference_ha())
    return a.notes[0]


@case("fc-points-dropped-cli-note", "cli", "fixed", r"note: Left out 1 Point")
def _(tmp, mp):
    feats = [FEATURE, {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [13, 42]}}]
    f = aoi_file(tmp, {"type": "FeatureCollection", "features": feats})
    err, out = cli("search", "--aoi", str(f), "--date", WA, "--cache-dir", str(tmp / "c"), rc=0)
    assert "acquisition(s)" in out
    return err.strip()


@case("geometry-collection", "lib", "handled", r"^ok$")
def _(tmp, mp):
    gc = {"type": "GeometryCollection", "geometries": [POLY]}
    assert aoi_from_geojson(gc).area_ha == pytest.approx(reference_ha())
    return "ok"


@case("polygon-self-intersecting", "lib", "message", r"invalid polygon: Self-intersection")
def _(tmp, mp):
    bow = {"type": "Polygon", "coordinates": [[[10, 43], [10.1, 43.1], [10.1, 43], [10, 43.1], [10, 43]]]}
    return lib_error(lambda: aoi_from_geojson(bow))


@case("aoi-too-small", "lib", "message", r"the area is too small")
def _(tmp, mp):
    return lib_error(lambda: AOI.from_bbox(10, 43, 10.001, 43.001))


@case("aoi-too-large", "lib", "message", r"the area is too large: .* the limit is 2,500 km2")
def _(tmp, mp):
    window = DateWindow.parse("2015-07-01/2015-07-31")  # the limit is the providers': one fetch per date
    return lib_error(lambda: DemoProvider().search(AOI.from_bbox(10, 43, 11, 44), window))


@case("aoi-projected-coordinates", "lib", "message", r"coordinates must be longitude/latitude in WGS84")
def _(tmp, mp):
    return lib_error(lambda: AOI.from_bbox(500000, 4700000, 501000, 4701000))


@case("aoi-crosses-zones", "lib", "message", r"keep it within one UTM zone")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_geojson({"type": "Polygon", "coordinates": [[[0, 60], [7, 60], [7, 60.001],
                                                                                    [0, 60.001], [0, 60]]]}))


@case("bbox-reversed", "lib", "message", r"west < east and south < north")
def _(tmp, mp):
    return lib_error(lambda: AOI.from_bbox(10, 43, 9, 44))


@case("kml-nan-coordinates", "lib", "fixed", r"bad KML coordinate 'nan,42.785': .* finite numbers")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("a.kml", kml("13.08,42.785 nan,42.785 13.1,42.796 13.08,42.785").encode()))


@case("kml-ring-two-coordinates", "lib", "fixed", r"a KML ring has 2 distinct coordinate\(s\); a polygon needs at least 3")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("a.kml", kml("13.08,42.785 13.1,42.796").encode()))


@case("kml-bad-coordinate-text", "lib", "message", r"bad KML coordinate 'x,y'")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_kml(kml("x,y 13.1,42.796 13.08,42.79")))


@case("kml-not-xml", "lib", "message", r"not valid KML/XML")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_kml("<kml"))


@case("kml-no-polygon", "lib", "message", r"the KML has no Polygon")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_kml("<kml><Document/></kml>"))


@case("kml-only-points", "lib", "fixed", r"the KML has no Polygon \(only Point\)")
def _(tmp, mp):
    return lib_error(lambda: aoi_from_kml("<kml><Placemark><Point><coordinates>13,42</coordinates></Point>"
                                          "</Placemark></kml>"))


@case("kml-points-beside-polygon", "lib", "fixed", r"Left out 1 Point")
def _(tmp, mp):
    a = aoi_from_kml(kml(extra="<Placemark><Point><coordinates>13,42</coordinates></Point></Placemark>"))
    assert a.area_ha == pytest.approx(reference_ha())
    return a.notes[0]


@case("kml-xxe", "lib", "handled", r"declares a DOCTYPE or entities")
def _(tmp, mp):
    secret = write(tmp / "secret.txt", "TOP-SECRET")
    doc = (f'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           + kml().split("?>", 1)[1].replace("<Document>", "<Document><name>&xxe;</name>"))
    msg = lib_error(lambda: aoi_from_kml(doc))
    assert "TOP-SECRET" not in msg
    return msg


@case("kml-billion-laughs", "lib", "handled", r"declares a DOCTYPE or entities")
def _(tmp, mp):
    ents = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    return lib_error(lambda: aoi_from_kml(f'<?xml version="1.0"?><!DOCTYPE kml [{ents}]><kml>&a9;</kml>'))


@case("kml-not-utf8", "lib", "message", r"not valid KML/XML.*save it as UTF-8")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("a.kml", kml().replace("<Document>", "<Document><name>caf\u00e9</name>")
                                           .encode("latin-1")))


@case("kmz", "lib", "fixed", r"^ok$")
def _(tmp, mp):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("doc.kml", kml())
        zf.writestr("files/icon.png", b"\x89PNG")
    assert read_aoi_file("area.kmz", buf.getvalue()).area_ha == pytest.approx(reference_ha())
    return "ok"


@case("shapefile-zip-utm", "lib", "fixed", r"^ok$")
def _(tmp, mp):
    a = read_aoi_file("parcels.zip", shapefile_zip("EPSG:32633"))
    assert a.area_ha == pytest.approx(reference_ha(), rel=1e-6) and a.name == "area"
    return "ok"


@case("shapefile-zip-web-mercator-cli", "cli", "fixed", r"acquisition\(s\) over area")
def _(tmp, mp):
    f = write(tmp / "parcels.zip", shapefile_zip("EPSG:3857"))
    return cli("search", "--aoi", str(f), "--date", WA, "--cache-dir", str(tmp / "c"), rc=0)[1]


@case("shapefile-zip-no-prj-lonlat", "lib", "fixed", r"has no \.prj: its coordinates were taken as WGS84")
def _(tmp, mp):
    a = read_aoi_file("p.zip", shapefile_zip(None, parts=(".shp", ".shx", ".dbf")))
    assert a.area_ha == pytest.approx(reference_ha())
    return a.notes[0]


@case("shapefile-zip-no-prj-projected", "lib", "fixed", r"has no \.prj, so its coordinate system is unknown")
def _(tmp, mp):
    raw = shapefile_zip("EPSG:32633", parts=(".shp", ".shx", ".dbf"))
    return lib_error(lambda: read_aoi_file("p.zip", raw))


@case("shapefile-zip-missing-shx", "lib", "fixed", r"lacks its \.shx file")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("p.zip", shapefile_zip(parts=(".shp", ".dbf", ".prj"))))


@case("shapefile-zip-two-shapefiles", "lib", "fixed", r"holds 2 shapefiles .*zip the one with the area")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("p.zip", shapefile_zip(two=True)))


@case("shapefile-zip-points", "lib", "fixed", r"must be a polygon, got Point")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("p.zip", shapefile_zip(shape="point")))


@case("shapefile-zip-bad-prj", "lib", "fixed", r"\.prj can't be read as a coordinate system")
def _(tmp, mp):
    raw = zipfile.ZipFile(io.BytesIO(shapefile_zip()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in raw.namelist():
            zf.writestr(n, b"GEOGCS[nonsense" if n.endswith(".prj") else raw.read(n))
    return lib_error(lambda: read_aoi_file("p.zip", buf.getvalue()))


@case("zip-nothing-usable", "lib", "fixed", r"holds no shapefile .* and no \.kml; found: \.txt")
def _(tmp, mp):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    return lib_error(lambda: read_aoi_file("p.zip", buf.getvalue()))


@case("zip-not-a-zip", "lib", "fixed", r"not a readable zip archive")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("p.kmz", os.urandom(2048)))


@case("zip-bomb", "lib", "fixed", r"unpacks to more than 50 MB")
def _(tmp, mp):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("doc.kml", b" " * (60 * 2**20))
    assert len(buf.getvalue()) < 2**20
    return lib_error(lambda: read_aoi_file("p.kmz", buf.getvalue()))


@case("shp-alone", "lib", "fixed", r"a shapefile is several files; zip the \.shp, \.shx, \.dbf and \.prj")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("area.shp", b"\x00" * 100))


@case("unsupported-extension", "lib", "message", r"unsupported file type \.txt; use GeoJSON")
def _(tmp, mp):
    return lib_error(lambda: read_aoi_file("area.txt", b"x"))


@case("aoi-file-too-large", "cli", "fixed", r"larger than 50 MB; an area outline needs far less")
def _(tmp, mp):
    f = tmp / "huge.geojson"
    with open(f, "wb") as fh:
        fh.truncate(51 * 2**20)  # sparse: nothing is actually written
    return cli("search", "--aoi", str(f), "--date", WA, "--cache-dir", str(tmp / "c"))[0]


@case("aoi-file-missing", "cli", "message", r"AOI file .* not found")
def _(tmp, mp):
    return cli("search", "--aoi", str(tmp / "absent.geojson"), "--date", WA)[0]


@case("aoi-path-is-folder", "cli", "fixed", r"is a folder; give the AOI file itself")
def _(tmp, mp):
    (tmp / "dir.geojson").mkdir()
    return cli("search", "--aoi", str(tmp / "dir.geojson"), "--date", WA)[0]


# == dates ========================================================================================
area("Dates")


@case("date-window-reversed", "cli", "message", r"swap the dates")
def _(tmp, mp):
    return cli("search", "--aoi", str(aoi_file(tmp)), "--date", "2018-05-31/2018-05-01")[0]


@case("date-unparsable", "lib", "message", r"YYYY-MM-DD")
def _(tmp, mp):
    from lulc_core.scene import DateWindow
    return lib_error(lambda: DateWindow.parse("2015-13-45"))


@case("date-b-before-a", "cli", "message", r"before date A")
def _(tmp, mp):
    return cli("compare", "--aoi", str(aoi_file(tmp)), "--date-a", WB, "--date-b", WA, "--out", str(tmp / "o"))[0]


@case("no-scene-in-window", "cli", "message", r"no demo scene within 2016-01-01/2016-01-31 .* dates available here")
def _(tmp, mp):
    return cli("fetch", "--aoi", str(aoi_file(tmp)), "--date", "2016-01-01/2016-01-31", "--out", str(tmp / "x.tif"),
               "--cache-dir", str(tmp / "c"))[0]


@case("aoi-outside-demo", "cli", "message", r"outside the demo scenes' extents. Areas available")
def _(tmp, mp):
    f = aoi_file(tmp, {"type": "Polygon", "coordinates": [[[5, 45], [5.05, 45], [5.05, 45.05], [5, 45.05], [5, 45]]]})
    return cli("search", "--aoi", str(f), "--date", WA, "--cache-dir", str(tmp / "c"))[0]


@case("same-window-a-and-b", "cli", "fixed", r"warning: Dates A and B are the same window")
def _(tmp, mp):
    err, out = cli("compare", "--aoi", str(aoi_file(tmp)), "--date-a", WA, "--date-b", WA, "--out", str(tmp / "o"),
                   "--cache-dir", str(tmp / "c"), rc=0)
    assert "same window" in json.loads(out)["warnings"][0]
    return next(ln for ln in err.splitlines() if ln.startswith("warning: Dates"))


@case("same-imagery-different-windows", "lib", "fixed", r"both use the imagery of 2015-07-11")
def _(tmp, mp):
    from types import SimpleNamespace as NS

    from lulc_core.checks import same_imagery_note
    import datetime as dt
    d = (dt.date(2015, 7, 11),)
    an = NS(a=NS(scene=NS(dates=d), window="2015-07-01/2015-07-31"), b=NS(scene=NS(dates=d), window="2015-07-05/2015-08-31"))
    return same_imagery_note(an)


# == model inputs ==================================================================================
area("Model inputs")


def eurosat_folder(tmp: Path, image: bytes, name: str = "AnnualCrop/AnnualCrop_1.png") -> Path:
    write(tmp / "data" / name, image)
    return tmp / "data"


def png_bytes(mode: str = "RGB", size=(64, 64)) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width: int, height: int, pixels: bool = True) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` zero pixels, a few hundred KB compressed (or, with
    ``pixels=False``, only its header: the declared size without the data)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    row = b"\x00" * (1 + 3 * width)
    comp = zlib.compressobj(9)
    idat = (b"".join(comp.compress(row) for _ in range(height)) if pixels else comp.compress(row)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@case("evaluate-decompression-bomb-png", "cli", "fixed", r"is 6000 x 6000 px; the model takes 64 x 64 .*refused before decoding")
def _(tmp, mp):
    from PIL import Image

    decoded = []
    mp.setattr(Image.Image, "load", lambda self, *a: decoded.append(self.size))  # nothing may be decoded
    bomb = png_bomb(6000, 6000)  # 108 MB of pixels in a ~100 KB file
    assert len(bomb) < 2**20
    line = cli("evaluate", "--data", str(eurosat_folder(tmp, bomb)))[0]
    assert not decoded
    return line


@case("evaluate-huge-declared-png", "lib", "fixed", r"declares an enormous image \(a decompression bomb\)")
def _(tmp, mp):
    from lulc_core.model.evaluate import check_images
    head = png_bomb(100_000, 100_000, pixels=False)  # 10^10 px declared: PIL's own bomb limit trips
    return lib_error(lambda: check_images(eurosat_folder(tmp, head)))


@case("evaluate-greyscale", "cli", "fixed", r"1 of 2 images are greyscale \(e.g. AnnualCrop/AnnualCrop_1.png\).*needs RGB")
def _(tmp, mp):
    write(tmp / "data" / "Forest" / "Forest_1.png", png_bytes("RGB"))
    return cli("evaluate", "--data", str(eurosat_folder(tmp, png_bytes("L"))))[0]


@case("evaluate-wrong-size", "lib", "handled", r"is 65 x 64 px; the model takes 64 x 64")
def _(tmp, mp):
    from lulc_core.model.evaluate import check_images
    return lib_error(lambda: check_images(eurosat_folder(tmp, png_bytes("RGB", (65, 64)))))


@case("evaluate-not-an-image", "lib", "fixed", r"is not a readable image")
def _(tmp, mp):
    from lulc_core.model.evaluate import check_images
    return lib_error(lambda: check_images(eurosat_folder(tmp, b"not a png at all")))


@case("evaluate-bad-layout", "cli", "message", r"folder 'NotAClass' is not a EuroSAT class")
def _(tmp, mp):
    return cli("evaluate", "--data", str(eurosat_folder(tmp, png_bytes(), "NotAClass/x_1.png")))[0]


@case("evaluate-data-missing", "cli", "message", r"no such file or folder")
def _(tmp, mp):
    return cli("evaluate", "--data", str(tmp / "absent.zip"))[0]


@case("weights-random-bytes", "cli", "fixed", r"is not a PyTorch weights file")
def _(tmp, mp):
    w = write(tmp / "w.pt", os.urandom(4096))
    return cli("evaluate", "--data", str(tmp), "--weights", str(w))[0]


def evil_weights(tmp: Path) -> tuple[Path, Path]:
    """A weights file whose pickle would run ``touch <marker>`` if it were ever unpickled."""
    import torch

    marker = tmp / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"metadata": {}, "state_dict": Evil()}, tmp / "evil.pt")
    return tmp / "evil.pt", marker


@case("weights-malicious-pickle", "cli", "fixed", r"was refused: it holds Python objects other than tensors")
def _(tmp, mp):
    weights, marker = evil_weights(tmp)
    line = cli("evaluate", "--data", str(tmp), "--weights", str(weights))[0]
    assert not marker.exists()  # the payload never ran
    return line


@case("weights-without-metadata", "cli", "fixed", r"has no metadata .*classes and bands can't be known")
def _(tmp, mp):
    import torch
    from lulc_core.model.architectures import build_resnet

    torch.save(build_resnet().state_dict(), tmp / "bare.pt")
    return cli("evaluate", "--data", str(tmp), "--weights", str(tmp / "bare.pt"))[0]


@case("weights-state-dict-mismatch", "cli", "fixed", r"the weights don't fit the resnet18 .*5 classes.*another model")
def _(tmp, mp):
    import torch
    from lulc_core.model.weights import SHIPPED_RGB

    blob = torch.load(SHIPPED_RGB, map_location="cpu", weights_only=True)
    blob["metadata"]["class_names"] = blob["metadata"]["class_names"][:5]
    torch.save(blob, tmp / "five.pt")
    line = cli("evaluate", "--data", str(tmp), "--weights", str(tmp / "five.pt"))[0]
    assert "Error(s) in loading state_dict" not in line
    return line


@case("weights-unknown-architecture", "lib", "fixed", r"unknown architecture 'vit' in its metadata")
def _(tmp, mp):
    import torch
    from lulc_core.model.weights import SHIPPED_RGB, load_weights

    blob = torch.load(SHIPPED_RGB, map_location="cpu", weights_only=True)
    blob["metadata"]["architecture"] = "vit"
    torch.save(blob, tmp / "vit.pt")
    return lib_error(lambda: load_weights(tmp / "vit.pt"))


@case("weights-truncated", "lib", "fixed", r"not a PyTorch weights file|can't be read as PyTorch weights")
def _(tmp, mp):
    from lulc_core.model.weights import SHIPPED_RGB, load_weights

    write(tmp / "cut.pt", SHIPPED_RGB.read_bytes()[: 2**20])
    return lib_error(lambda: load_weights(tmp / "cut.pt"))


@case("weights-path-is-folder", "cli", "fixed", r"is a folder; give the weights file itself")
def _(tmp, mp):
    return cli("evaluate", "--data", str(tmp), "--weights", str(tmp))[0]


@case("weights-missing", "cli", "message", r"weights file .* not found")
def _(tmp, mp):
    return cli("evaluate", "--data", str(tmp), "--weights", str(tmp / "absent.pt"))[0]


@case("dense-weights-random-bytes", "cli", "fixed", r"is not a PyTorch weights file")
def _(tmp, mp):
    w = write(tmp / "d.pt", os.urandom(4096))
    return cli("compare", "--aoi", str(aoi_file(tmp)), "--date-a", WA, "--date-b", WB, "--out", str(tmp / "o"),
               "--dense-weights", str(w))[0]


@case("dense-weights-malicious-pickle", "lib", "fixed", r"was refused: it holds Python objects other than tensors")
def _(tmp, mp):
    from lulc_core.model.dense import DenseClassifier

    weights, marker = evil_weights(tmp)
    line = lib_error(lambda: DenseClassifier(weights))  # what the dashboard builds
    assert not marker.exists()  # the payload never ran
    return line


@case("dense-weights-without-metadata", "lib", "fixed", r"has no metadata .*classes and bands can't be known")
def _(tmp, mp):
    import torch
    from lulc_core.model.architectures import build_resnet
    from lulc_core.model.dense import DenseClassifier

    torch.save(build_resnet().state_dict(), tmp / "bare.pt")
    return lib_error(lambda: DenseClassifier(tmp / "bare.pt"))


@case("classifier-nan-input", "lib", "message", r"NaN")
def _(tmp, mp):
    from lulc_core.errors import InputError
    from lulc_core.model.classifier import Classifier
    x = np.full((1, 3, 64, 64), np.nan, dtype=np.float32)
    return lib_error(lambda: Classifier(tta=False).predict_proba(x, ("B04", "B03", "B02")), InputError)


@case("classifier-missing-band", "lib", "message", r"missing band.*B04")
def _(tmp, mp):
    from lulc_core.errors import InputError
    from lulc_core.model.classifier import Classifier
    x = np.ones((1, 2, 64, 64), dtype=np.float32)
    return lib_error(lambda: Classifier(tta=False).predict_proba(x, ("B03", "B02")), InputError)


# == local imagery =================================================================================
area("Local imagery")


def local_scenes(tmp: Path, as_reflectance: bool = False, as_float_dn: bool = False) -> Path:
    """A --scenes folder: a copy of the demo's Norcia 2015-07-11 bands (optionally as float)."""
    import rasterio

    src, dst = DEMO / "norcia" / "20150711", tmp / "scenes" / "norcia" / "20150711"
    dst.mkdir(parents=True)
    for f in sorted(src.glob("*.tif")):
        if not (as_reflectance or as_float_dn):
            shutil.copy(f, dst / f.name)
            continue
        with rasterio.open(f) as ds:
            prof, arr = ds.profile, ds.read().astype(np.float32)
        prof.update(dtype="float32", nodata=0)
        with rasterio.open(dst / f.name, "w", **prof) as out:
            out.write(arr / 10000 if as_reflectance else arr)
    return tmp / "scenes"


@case("local-float-reflectance", "cli", "fixed", r"holds floating-point reflectance .*multiply the bands by 10000")
def _(tmp, mp):
    scenes = local_scenes(tmp, as_reflectance=True)
    return cli("fetch", "--aoi", str(aoi_file(tmp)), "--date", WA, "--provider", "local", "--scenes", str(scenes),
               "--out", str(tmp / "s.tif"), "--cache-dir", str(tmp / "c"))[0]


@case("local-float-dn-accepted", "lib", "handled", r"^ok$")
def _(tmp, mp):
    from lulc_core.providers.local import LocalFilesProvider
    from lulc_core.scene import DateWindow
    p = LocalFilesProvider(local_scenes(tmp, as_float_dn=True))
    scene = p.fetch(aoi_from_geojson(POLY), DateWindow.parse(WA))
    assert scene.data[3][scene.valid].mean() > 100
    return "ok"


@case("local-band-missing", "lib", "message", r"band file B11.tif is missing")
def _(tmp, mp):
    from lulc_core.providers.local import LocalFilesProvider
    from lulc_core.scene import DateWindow
    scenes = local_scenes(tmp)
    (scenes / "norcia" / "20150711" / "B11.tif").unlink()
    return lib_error(lambda: LocalFilesProvider(scenes).fetch(aoi_from_geojson(POLY), DateWindow.parse(WA)))


@case("local-scenes-missing", "cli", "message", r"scenes folder .* does not exist")
def _(tmp, mp):
    return cli("search", "--aoi", str(aoi_file(tmp)), "--date", WA, "--provider", "local", "--scenes",
               str(tmp / "absent"))[0]


@case("local-scenes-empty", "cli", "message", r"no Sentinel-2 scenes found under")
def _(tmp, mp):
    (tmp / "empty").mkdir()
    return cli("search", "--aoi", str(aoi_file(tmp)), "--date", WA, "--provider", "local", "--scenes",
               str(tmp / "empty"))[0]


@case("local-provider-without-scenes", "cli", "message", r"needs a scenes folder \(--scenes DIR\)")
def _(tmp, mp):
    return cli("search", "--aoi", str(aoi_file(tmp)), "--date", WA, "--provider", "local")[0]


# == outputs =======================================================================================
area("Outputs")


@case("fetch-out-is-an-input-band", "cli", "fixed", r"--out .* is inside the input folder .*would overwrite source data")
def _(tmp, mp):
    scenes = local_scenes(tmp)
    before = digest(scenes)
    band = scenes / "norcia" / "20150711" / "B04.tif"
    line = cli("fetch", "--aoi", str(aoi_file(tmp)), "--date", WA, "--provider", "local", "--scenes", str(scenes),
               "--out", str(band), "--cache-dir", str(tmp / "c"))[0]
    assert digest(scenes) == before
    return line


@case("fetch-out-is-the-aoi-file", "cli", "fixed", r"is an input file; writing there would overwrite source data")
def _(tmp, mp):
    f = aoi_file(tmp, name="aoi.tif")
    before = f.read_bytes()
    line = cli("fetch", "--aoi", str(f), "--date", WA, "--out", str(f), "--cache-dir", str(tmp / "c"))[0]
    assert f.read_bytes() == before
    return line


@case("fetch-out-inside-demo-data", "cli", "fixed", r"is inside the input folder .*demo_data")
def _(tmp, mp):
    before = digest(DEMO / "norcia")
    line = cli("fetch", "--aoi", str(aoi_file(tmp)), "--date", WA, "--out", str(DEMO / "norcia" / "20150711" / "B02.tif"),
               "--cache-dir", str(tmp / "c"))[0]
    assert digest(DEMO / "norcia") == before
    return line


@case("fetch-out-is-a-folder", "cli", "fixed", r"is a folder; give a file name such as")
def _(tmp, mp):
    (tmp / "outdir").mkdir()
    return cli("fetch", "--aoi", str(aoi_file(tmp)), "--date", WA, "--out", str(tmp / "outdir"))[0]


@case("fetch-write-fails-keeps-old-file", "cli", "fixed", r"no space left on the disk")
def _(tmp, mp):
    from lulc_core.scene import Scene

    old = write(tmp / "scene.tif", b"earlier scene")

    def full(self, path):
        write(Path(path), b"partial")
        raise OSError(28, "No space left on device", str(path))

    mp.setattr(Scene, "to_geotiff", full)
    line = cli("fetch", "--aoi", str(aoi_file(tmp)), "--date", WA, "--out", str(old), "--cache-dir", str(tmp / "c"))[0]
    assert old.read_bytes() == b"earlier scene"
    assert sorted(p.name for p in tmp.iterdir()) == ["aoi.geojson", "c", "scene.tif"]  # no partial files
    return line


@case("compare-out-is-a-file", "cli", "fixed", r"--out .* is a file; give a folder for the results")
def _(tmp, mp):
    f = write(tmp / "results", b"keep me")
    line = cli("compare", "--aoi", str(aoi_file(tmp)), "--date-a", WA, "--date-b", WB, "--out", str(f))[0]
    assert f.read_bytes() == b"keep me"
    return line


@case("compare-fails-midway-keeps-earlier-results", "cli", "fixed",
      r"could not write the results to .*earlier results there are unchanged")
def _(tmp, mp):
    import lulc_core.export_set as export_set

    out = tmp / "results"
    cli("compare", "--aoi", str(aoi_file(tmp)), "--date-a", WA, "--date-b", WB, "--out", str(out),
        "--cache-dir", str(tmp / "c"), rc=0)
    before = digest(out)
    assert len(before) == len(export_set.EXPORT_NAMES)

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    mp.setattr(export_set, "write_csvs", disk_full)  # after the GeoTIFFs and GeoJSON are written
    line = cli("compare", "--aoi", str(aoi_file(tmp)), "--date-a", WA, "--date-b", "2017-10-18/2017-10-18",
               "--out", str(out), "--cache-dir", str(tmp / "c"))[0]
    assert digest(out) == before
    assert [p.name for p in tmp.iterdir() if p.name.startswith(".")] == []  # no partial folder left
    return line


@case("compare-into-folder-with-other-files", "cli", "handled", r"\"outputs\"")
def _(tmp, mp):
    out = tmp / "work"
    keep = write(out / "notes.txt", b"mine")
    err, stdout = cli("compare", "--aoi", str(aoi_file(tmp)), "--date-a", WA, "--date-b", WB, "--out", str(out),
                      "--cache-dir", str(tmp / "c"), rc=0)
    assert keep.read_bytes() == b"mine" and (out / "report.html").exists()
    return stdout


@case("unexpected-exception-one-line", "cli", "fixed", r"unexpected KeyError: 'boom'; please report it")
def _(tmp, mp):
    import lulc_core.scene as scene

    def boom(*a, **k):
        raise KeyError("boom")

    mp.setattr(scene.DateWindow, "parse", staticmethod(boom))
    return cli("search", "--aoi", str(aoi_file(tmp)), "--date", WA)[0]


# == cache =========================================================================================
area("Cache")


def small_scene(seed: int = 0):
    import datetime as dt

    from affine import Affine
    from lulc_core.scene import Scene
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 5000, (13, 64, 64), dtype=np.uint16)
    return Scene(data, tuple(f"B{i:02d}" for i in range(13)), np.ones((64, 64), bool), np.zeros((64, 64), bool),
                 "EPSG:32633", Affine(10, 0, 0, 0, -10, 640), (dt.date(2015, 7, 11),), "demo", "sentinel-2-l1c", 0.0, ())


@case("cache-max-mb-not-a-number", "lib", "message", r"LULC_CACHE_MAX_MB must be a number of megabytes, got 'abc'")
def _(tmp, mp):
    from lulc_core.cache import SceneCache
    mp.setenv("LULC_CACHE_MAX_MB", "abc")
    return lib_error(lambda: SceneCache(tmp))


@case("cache-max-mb-not-a-number-cli", "cli", "message", r"error: LULC_CACHE_MAX_MB must be a number")
def _(tmp, mp):
    mp.setenv("LULC_CACHE_MAX_MB", "abc")
    return cli("search", "--aoi", str(aoi_file(tmp)), "--date", WA)[0]


@case("cache-folder-not-writable", "cli", "fixed", r"the scene cache could not be written .*the run goes on")
def _(tmp, mp):
    blocker = write(tmp / "cachefile", b"a file where the cache folder should be")
    err, out = cli("fetch", "--aoi", str(aoi_file(tmp)), "--date", WA, "--out", str(tmp / "s.tif"),
                   "--cache-dir", str(blocker / "sub"), rc=0)
    assert (tmp / "s.tif").exists() and "wrote" in out
    from lulc_core.cache import SceneCache
    c = SceneCache(blocker / "sub")
    assert c.put("k" * 64, small_scene()) is None
    return c.warnings[0]


@case("cache-disk-full", "lib", "fixed", r"No space left on device.*free disk space or set LULC_CACHE_DIR")
def _(tmp, mp):
    from lulc_core.cache import SceneCache
    from lulc_core.providers.factory import make_provider
    from lulc_core.scene import DateWindow

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    mp.setattr(np, "savez", full)
    cache = SceneCache(tmp / "c")
    scene = make_provider("demo", cache=cache).fetch(aoi_from_geojson(POLY), DateWindow.parse(WA))
    assert scene.data.any() and list((tmp / "c").iterdir()) == []  # the run went on; no partial file left
    return cache.warnings[0]


@case("cache-stale-temporary-swept", "lib", "fixed", r"^swept 1, kept 1$")
def _(tmp, mp):
    from lulc_core.cache import SceneCache
    c = SceneCache(tmp)
    stale, fresh = write(tmp / "x1.scene.tmp", b"0" * 1000), write(tmp / "x2.scene.tmp", b"0" * 1000)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    c.put("a" * 64, small_scene())
    assert not stale.exists() and fresh.exists()  # a fresh one may be another process's write in progress
    return "swept 1, kept 1"


@case("cache-corrupt-entry", "lib", "handled", r"^miss$")
def _(tmp, mp):
    from lulc_core.cache import SceneCache
    c = SceneCache(tmp)
    p = c.put("a" * 64, small_scene())
    p.write_bytes(p.read_bytes()[:500])
    assert c.get("a" * 64) is None and c.discarded == 1 and not p.exists()
    assert len(c.discard_reasons) == 1 and c.discard_reasons[0].startswith(p.name + ": ")  # why, for the log
    return "miss"


@case("cache-entry-evicted-before-read", "lib", "fixed", r"^miss$")
def _(tmp, mp):
    from lulc_core.cache import SceneCache
    c = SceneCache(tmp)
    p = c.put("a" * 64, small_scene())
    real_open = open

    def open_after_eviction(path, *a, **k):  # another process evicts between our check and our read
        if Path(path) == p:
            p.unlink(missing_ok=True)
        return real_open(path, *a, **k)

    mp.setattr("builtins.open", open_after_eviction)
    assert c.get("a" * 64) is None and c.discarded == 0
    return "miss"


def _stress_worker(root: str, seconds: float, seed: int) -> tuple[int, int, list[str]]:
    """Threads that put, get and evict on one small cache; returns (puts, verified hits, errors)."""
    from lulc_core.cache import SceneCache

    errors: list[str] = []
    counts = [0, 0]
    scenes = {k: small_scene(k) for k in range(6)}

    def work(t: int) -> None:
        rng = np.random.default_rng(seed * 10 + t)
        cache = SceneCache(root, max_bytes=3 * 120_000)
        end = time.time() + seconds
        while time.time() < end:
            k = int(rng.integers(6))
            try:
                if rng.random() < 0.5:
                    cache.put(f"{k:064d}", scenes[k])
                    counts[0] += 1
                else:
                    got = cache.get(f"{k:064d}")
                    if got is not None:
                        if not np.array_equal(got.data, scenes[k].data):
                            errors.append(f"wrong data for key {k}")
                        counts[1] += 1
                if getattr(cache, "warnings", None):
                    errors.append(cache.warnings[0])
                if cache.discarded:  # a good entry read as corrupt (a read racing a rename or an eviction)
                    errors.append(f"{cache.discarded} entries discarded as corrupt ({'; '.join(cache.discard_reasons)})")
            except Exception as exc:  # noqa: BLE001 - any exception is the failure being tested
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts[0], counts[1], errors


@case("cache-concurrent-processes-and-threads", "lib", "fixed", r"^no error in \d+ puts and \d+ verified hits$")
def _(tmp, mp):
    import multiprocessing as mproc

    ctx = mproc.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_stress_worker, [(str(tmp), 2.0, s) for s in range(3)])
    puts, hits = sum(r[0] for r in results), sum(r[1] for r in results)
    errors = [e for r in results for e in r[2]]
    assert not errors, errors[:5]
    assert puts > 50 and hits > 10
    return f"no error in {puts} puts and {hits} verified hits"


# == dashboard =====================================================================================
area("Dashboard")


@pytest.fixture(scope="module")
def area_page():
    """One AppTest session on the Area page in upload mode (reused by every upload case)."""
    from streamlit.testing.v1 import AppTest

    mp = pytest.MonkeyPatch()
    mp.setenv("LULC_BASEMAP", "0")
    for k in ("SH_CLIENT_ID", "SH_CLIENT_SECRET"):
        mp.delenv(k, raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.radio(key="aoi_how").set_value("Upload GeoJSON / KML").run()
    yield at
    mp.undo()


def app_upload(at, name: str, data: bytes) -> tuple[list[str], list[str]]:
    """Upload a file on the Area page: (error boxes, warnings); asserts no exception reached the page."""
    at.session_state["aoi"] = None
    at.file_uploader(key="aoi_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, [str(x.value)[:300] for x in at.exception]
    return [e.value for e in at.error], [w.value for w in at.warning]


APP_CASES = [
    ("app-fc-features-not-objects", "fixed", "fc.geojson", b'{"type":"FeatureCollection","features":[1]}',
     r"fc.geojson: feature 1 of the FeatureCollection is a number"),
    ("app-properties-list", "fixed", "p.geojson", json.dumps({**FEATURE, "properties": [1]}).encode(),
     r"'properties' is a list"),
    ("app-geojson-not-utf8", "fixed", "l1.geojson", json.dumps(FEATURE).replace("norcia", "caf\u00e9").encode("latin-1"),
     r"not UTF-8 text \(byte 0xe9"),
    ("app-json-nested-100000", "fixed", "deep.json", b"[" * 100_000 + b"]" * 100_000, r"nested too deeply"),
    ("app-kml-nan", "fixed", "nan.kml", kml("13.08,42.785 nan,42.785 13.1,42.796 13.08,42.785").encode(),
     r"finite numbers"),
    ("app-kml-two-coordinates", "fixed", "two.kml", kml("13.08,42.785 13.1,42.796").encode(), r"at least 3 corners"),
    ("app-kml-billion-laughs", "handled", "lol.kml",
     b'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;">]><kml>&b;</kml>',
     r"declares a DOCTYPE or entities"),
    ("app-zip-not-a-zip", "fixed", "x.zip", b"PK\x03\x04 not really", r"not a readable zip archive"),
]


@pytest.mark.parametrize("cid, status, name, data, expect", APP_CASES, ids=[c[0] for c in APP_CASES])
def test_dashboard_upload_fault(area_page, cid, status, name, data, expect):
    errors, _ = app_upload(area_page, name, data)
    assert len(errors) == 1 and re.search(expect, errors[0]), errors
    assert "Traceback" not in errors[0] and "\n" not in errors[0]
    assert area_page.session_state["aoi"] is None  # the bad file never became the AOI


APP_OK = [
    ("app-feature-name-number", "fixed", "n.geojson", json.dumps({**FEATURE, "properties": {"name": 7}}).encode(), None),
    ("app-points-dropped-note", "fixed", "pts.geojson", json.dumps({"type": "FeatureCollection", "features": [
        FEATURE, {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [13, 42]}}]}).encode(),
     r"pts.geojson: Left out 1 Point"),
    ("app-kmz", "fixed", "area.kmz", None, None),
    ("app-shapefile-zip", "fixed", "parcels.zip", None, None),
]


@pytest.mark.parametrize("cid, status, name, data, note", APP_OK, ids=[c[0] for c in APP_OK])
def test_dashboard_upload_accepted(area_page, cid, status, name, data, note):
    if cid == "app-kmz":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("doc.kml", kml())
        data = buf.getvalue()
    elif cid == "app-shapefile-zip":
        data = shapefile_zip("EPSG:32633")
    errors, warnings = app_upload(area_page, name, data)
    assert not errors
    aoi = area_page.session_state["aoi"]
    assert aoi.area_ha == pytest.approx(reference_ha(), rel=1e-6) and isinstance(aoi.name, str)
    if note:
        assert any(re.search(note, w) for w in warnings), warnings


def test_dashboard_same_window_warning_and_numeric_name_compare(tmp_path, monkeypatch):
    """Same window for A and B: a warning on the Area page; an AOI named 7 runs and exports on Compare."""
    from streamlit.testing.v1 import AppTest

    from lulc_core.scene import DateWindow
    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LULC_BASEMAP", "0")
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.session_state["aoi"] = aoi_from_geojson({**FEATURE, "properties": {"name": 7}})
    w = DateWindow.parse(WA)
    at.session_state["window_a"] = at.session_state["window_b"] = w
    at.switch_page("pages/1_Area_and_dates.py").run()
    assert any("same window" in x.value for x in at.warning)
    at.session_state["dates_B"] = (DateWindow.parse(WB).start, DateWindow.parse(WB).end)
    at.run()
    at.button(key="run_analysis").click().run()
    at.switch_page("pages/2_Compare.py").run()
    assert not at.exception and not at.error, [str(x.value)[:300] for x in at.exception] + [e.value for e in at.error]
    assert at.session_state["analysis"].aoi.name == "7"


# == the catalogue =================================================================================

@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_fault(c: Case, tmp_path, monkeypatch):
    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.delenv("LULC_CACHE_MAX_MB", raising=False)
    msg = c.run(tmp_path, monkeypatch)
    assert isinstance(msg, str) and re.search(c.expect, msg, re.S), msg
    assert "Traceback" not in msg
    if not msg.lstrip().startswith("{") and "acquisition(s)" not in msg:  # a message, not a command's output
        assert "\n" not in msg.strip(), msg  # one line


SH_CASES = [  # implemented in tests/test_sentinelhub.py (Sentinel Hub network faults)
    ("sh-missing-credentials", "message", "test_missing_credentials_fail_before_any_request"),
    ("sh-wrong-credentials", "message", "test_wrong_credentials_raise_credentials_error"),
    ("sh-401-on-process", "message", "test_401_on_process_raises_credentials_error"),
    ("sh-403-quota", "message", "test_403_quota_raises_quota_error"),
    ("sh-403-permission", "message", "test_403_without_quota_is_a_permission_error"),
    ("sh-429-then-success", "handled", "test_429_with_retry_after_then_success"),
    ("sh-429-persistent", "message", "test_persistent_429_raises_rate_limit_error"),
    ("sh-500-once", "handled", "test_500_once_then_success"),
    ("sh-500-persistent", "message", "test_persistent_500_raises_provider_error"),
    ("sh-token-endpoint-500", "message", "test_persistent_500_at_token_endpoint"),
    ("sh-token-endpoint-429", "message", "test_429_at_token_endpoint_is_a_rate_limit"),
    ("sh-slow-response", "message", "test_slow_response_past_timeout"),
    ("sh-truncated-download", "message", "test_truncated_tiff_raises_and_caches_nothing"),
    ("sh-truncated-once", "handled", "test_truncated_once_is_retried"),
    ("sh-empty-search", "message", "test_empty_search_raises_no_imagery"),
    ("sh-429-forever-no-retry-after", "fixed", "test_process_429_forever_without_retry_after_ends_at_the_deadline"),
    ("sh-answer-after-15-min", "fixed", "test_a_very_late_answer_ends_at_the_deadline"),
    ("sh-5xx-retry-past-deadline", "fixed", "test_server_errors_stop_when_the_next_retry_would_pass_the_deadline"),
    ("sh-deadline-setting", "fixed", "test_the_deadline_comes_from_lulc_sh_deadline_s"),
    ("sh-fetch-total-deadline", "fixed", "test_a_whole_fetch_has_a_total_deadline"),
    ("sh-http-token-url", "fixed", "test_plain_http_address_has_its_own_message_and_sends_nothing"),
]


def all_rows() -> list[tuple[str, str, str, str, str, str]]:
    """(area, case, surface, status, expected message, test) of every catalogue row."""
    rows = [(c.area, c.id, c.surface, c.status, c.expect, f"test_faults.py::test_fault[{c.id}]") for c in CASES]
    rows += [("Dashboard", cid, "app", st, expect, f"test_faults.py::test_dashboard_upload_fault[{cid}]")
             for cid, st, _, _, expect in APP_CASES]
    rows += [("Dashboard", cid, "app", st, note or "accepted; the AOI name is text",
              f"test_faults.py::test_dashboard_upload_accepted[{cid}]") for cid, st, _, _, note in APP_OK]
    rows.append(("Dashboard", "app-same-window-and-numeric-name-compare", "app", "fixed",
                 "same window warning; Compare page runs and exports",
                 "test_faults.py::test_dashboard_same_window_warning_and_numeric_name_compare"))
    rows += [("Sentinel Hub", cid, "lib", st, "see the test", f"test_sentinelhub.py::{t}") for cid, st, t in SH_CASES]
    return rows


def markdown_table() -> str:
    rows = all_rows()
    totals = {s: sum(r[3] == s for r in rows) for s in ("message", "handled", "fixed")}
    out = [f"Total: **{len(rows)} cases**: {totals['message']} message (clear before), {totals['handled']} handled, "
           f"{totals['fixed']} fixed.", "", "| Area | Case | Surface | Status | Expected message (regex) | Test |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join(x.replace("|", "\\|") for x in r[:4]) + f" | `{r[4].replace('|', chr(92) + '|')}` | `{r[5]}` |")
    return "\n".join(out)


def test_reliability_doc_lists_every_case():
    doc = DOC.read_text()
    assert markdown_table() in doc, "docs/RELIABILITY.md is out of date: python -m tests.test_faults"
    assert len(all_rows()) >= 60
    for _, cid, *_ , test in all_rows():
        if test.startswith("test_sentinelhub.py::"):
            name = test.split("::")[1]
            assert f"def {name}(" in (ROOT / "tests" / "test_sentinelhub.py").read_text(), name


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
