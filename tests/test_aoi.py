import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import geometry as sg

from lulc_core.aoi import AOI

from lulc_core.aoi_readers import aoi_from_geojson, aoi_from_kml, read_aoi_file
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow
from lulc_core.grid import PATCH_HA, utm_epsg
from lulc_core.errors import AOIError

lon = st.floats(-170, 170)
lat = st.floats(-70, 70)
size = st.floats(0.01, 0.3)


@settings(max_examples=40, deadline=None)
@given(lon, lat, size, size)
def test_grid_covers_aoi_with_whole_patches(x, y, w, h):
    aoi = AOI.from_bbox(x, y, x + w, y + h)
    g = aoi.grid
    assert g.width % 64 == 0 and g.height % 64 == 0
    assert g.resolution == 10.0 and g.transform.e == -10.0
    assert g.transform.c % 640 == 0 and g.transform.f % 640 == 0
    utm = aoi.in_crs(g.crs)
    assert sg.box(*g.bounds).buffer(1e-6).contains(utm)
    # no spare row or column of patches
    minx, miny, maxx, maxy = utm.bounds
    assert g.bounds[2] - maxx < 640 and minx - g.bounds[0] < 640
    # patch fractions sum to the AOI area (UTM planar vs geodesic: within 1%)
    frac = aoi.cell_fractions()
    assert frac.shape == (g.rows, g.cols) and (frac >= 0).all() and (frac <= 1 + 1e-9).all()
    assert frac.sum() * PATCH_HA == pytest.approx(aoi.area_ha, rel=0.01)


@settings(max_examples=30, deadline=None)
@given(lat, st.floats(0.01, 0.4))
def test_area_of_a_degree_box_matches_spherical_formula(y, d):
    aoi = AOI.from_bbox(10, y, 10 + d, y + d)
    r = 6371.0088
    expected = r * r * np.radians(d) * abs(np.sin(np.radians(y + d)) - np.sin(np.radians(y)))
    assert aoi.area_km2 == pytest.approx(expected, rel=0.01)
    assert aoi.area_ha == pytest.approx(aoi.area_km2 * 100)


def test_utm_zone():
    assert utm_epsg(10.4, 43.7) == 32632
    assert utm_epsg(-0.5, 44.8) == 32630
    assert utm_epsg(114.2, 22.3) == 32650
    assert utm_epsg(151.2, -33.9) == 32756
    assert AOI.from_bbox(13.07, 42.78, 13.11, 42.80).utm_crs == "EPSG:32633"


GJ = {"type": "Polygon", "coordinates": [[[13.07, 42.78], [13.11, 42.78], [13.11, 42.80], [13.07, 42.80], [13.07, 42.78]]]}


def test_geojson_variants():
    a = aoi_from_geojson(json.dumps(GJ))
    b = aoi_from_geojson({"type": "Feature", "properties": {"name": "field"}, "geometry": GJ})
    c = aoi_from_geojson({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": GJ}]})
    assert a.area_ha == pytest.approx(b.area_ha) == pytest.approx(c.area_ha)
    assert b.name == "field"
    assert a.to_geojson()["geometry"]["type"] == "Polygon"


def test_kml():
    kml = """<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>
    <Placemark><Polygon><outerBoundaryIs><LinearRing><coordinates>
    13.07,42.78,0 13.11,42.78,0 13.11,42.80,0 13.07,42.80,0 13.07,42.78,0
    </coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>"""
    assert aoi_from_kml(kml).area_ha == pytest.approx(aoi_from_geojson(GJ).area_ha)


@pytest.mark.parametrize("maker, message", [
    (lambda: AOI.from_bbox(10, 43, 9, 44), "west < east"),
    (lambda: AOI.from_bbox(10, 43, 10.001, 43.001), "too small"),
    (lambda: DemoProvider().search(AOI.from_bbox(10, 43, 11, 44), DateWindow.parse("2015-07-01/2015-07-31")),
     "too large"),
    (lambda: AOI.from_bbox(500, 43, 501, 43.1), "longitude/latitude"),
    (lambda: aoi_from_geojson("{not json"), "not valid JSON"),
    (lambda: aoi_from_geojson({"type": "Point", "coordinates": [10, 43]}), "must be a polygon"),
    (lambda: aoi_from_geojson({"type": "Polygon", "coordinates": [[[10, 43], [10.1, 43.1], [10.1, 43], [10, 43.1], [10, 43]]]}),
     "invalid polygon: Self-intersection"),
    (lambda: aoi_from_geojson({"type": "FeatureCollection", "features": []}), "no features"),
    (lambda: aoi_from_kml("<kml><Document/></kml>"), "no Polygon"),
    (lambda: aoi_from_kml("<kml"), "not valid KML"),
    (lambda: read_aoi_file("area.shp", b""), "unsupported file type"),
    (lambda: read_aoi_file("area.geojson", b""), "^the file is empty"),  # was "not valid JSON"
    (lambda: read_aoi_file("area.json", b"  \n\t"), "^the file is empty"),
    (lambda: read_aoi_file("area.geojson", b"\xef\xbb\xbf"), "^the file is empty"),
    (lambda: read_aoi_file("area.kml", b""), "^the file is empty"),
    (lambda: read_aoi_file("area.zip", b""), "^the file is empty"),
])
def test_invalid_aois_have_clear_messages(maker, message):
    with pytest.raises(AOIError, match=message):
        maker()


def test_grid_split_respects_process_api_limit():
    aoi = AOI.from_bbox(10.0, 43.5, 10.45, 43.75)  # about 36 x 28 km
    g = aoi.grid
    parts = g.split(2500)
    assert len(parts) > 1
    assert all(p.width <= 2500 and p.height <= 2500 for _, _, p in parts)
    assert sum(p.width * p.height for _, _, p in parts) == g.width * g.height
    for r0, c0, p in parts:
        assert p.transform.c == g.transform.c + c0 * 10 and p.transform.f == g.transform.f - r0 * 10
