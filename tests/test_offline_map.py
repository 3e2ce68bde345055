"""ui.offline_map and ui.map_overlays: maps must reference only vendored JS/CSS (no CDN) and embed images."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from html.parser import HTMLParser

import folium
import folium.plugins
import numpy as np
import pytest

import leafmap.foliumap as leafmap

from ui.map_overlays import add_geojson, add_image_overlay, add_legend
from ui.offline_map import (
    external_urls,
    finish_map,
    LEAFLET_DRAW_VERSION,
    LEAFLET_VERSION,
    VENDOR_DIR,
    make_map,
    static_vendor_url,
)

STATIC_URL = "/app/static/vendor"
BOUNDS = ((44.9, 6.9), (45.1, 7.1))
AOI = {
    "type": "Feature",
    "properties": {"name": "aoi"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[6.9, 44.9], [7.1, 44.9], [7.1, 45.1], [6.9, 45.1], [6.9, 44.9]]],
    },
}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.links.append(a["href"])


def _refs(html: str) -> _Refs:
    p = _Refs()
    p.feed(html)
    return p


def _full_map(**kw) -> folium.Map:
    m = make_map((45.0, 7.0), 11, static_url=STATIC_URL, **kw)
    img = np.zeros((8, 12, 3), np.uint8)
    img[..., 0] = 200
    add_image_overlay(m, img, BOUNDS, "change", 0.6)
    add_geojson(m, AOI, "aoi", {"color": "#e31a1c", "weight": 2}, tooltip_fields=["name"])
    folium.LayerControl().add_to(m)
    return m


def _decode_png_rgba(png: bytes) -> np.ndarray:
    """Minimal decoder for the filter-0, 8-bit RGBA PNGs branca writes."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    w = h = 0
    while pos < len(png):
        (n,) = struct.unpack("!I", png[pos : pos + 4])
        tag, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]
        if tag == b"IHDR":
            w, h, depth, ctype = struct.unpack("!IIBB", data[:10])
            assert (depth, ctype) == (8, 6)
        elif tag == b"IDAT":
            idat += data
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 4 * w)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, 4)


def _overlay_png(html: str) -> bytes:
    urls = re.findall(r'"data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(urls) == 1
    return base64.b64decode(urls[0])


def test_no_remote_script_or_link_urls():
    html = _full_map(basemap=False, draw=True).get_root().render()
    refs = _refs(html)
    assert refs.scripts and refs.links
    for url in refs.scripts + refs.links:
        assert not url.lower().startswith(("http://", "https://", "//")), url
        assert url.startswith(STATIC_URL + "/"), url
    # Without a basemap there is no internet URL anywhere (tiles, CDNs, ...).
    assert re.findall(r"https?://", html) == []
    # folium's jQuery-dependent templates are not used (jQuery is not shipped).
    assert "$(" not in html and "$.ajax" not in html


def test_exactly_leaflet_and_its_plugins_are_loaded():
    m = make_map((0, 0), 3, static_url=STATIC_URL, draw=True)
    assert isinstance(m, leafmap.Map)  # leafmap is the map layer
    refs = _refs(m.get_root().render())
    assert sorted(refs.scripts) == [
        f"{STATIC_URL}/leaflet-draw/leaflet.draw.js",
        f"{STATIC_URL}/leaflet-fullscreen/Control.FullScreen.js",
        f"{STATIC_URL}/leaflet/leaflet.js",
    ]
    assert sorted(refs.links) == [
        f"{STATIC_URL}/leaflet-draw/leaflet.draw.css",
        f"{STATIC_URL}/leaflet-fullscreen/Control.FullScreen.css",
        f"{STATIC_URL}/leaflet/leaflet.css",
    ]
    refs = _refs(make_map((0, 0), 3, static_url=STATIC_URL, fullscreen=False).get_root().render())
    assert refs.scripts == [f"{STATIC_URL}/leaflet/leaflet.js"]


def test_finish_map_adds_layer_control_and_refuses_cdn_assets():
    m = finish_map(_full_map(basemap=False))
    assert "L.control.layers" in m.get_root().render()
    assert external_urls(m) == []
    bad = make_map((0, 0), 3, static_url=STATIC_URL, basemap=False)
    folium.plugins.MiniMap().add_to(bad)  # a plugin that would come from a CDN
    with pytest.raises(RuntimeError, match="from the internet"):
        finish_map(bad)


def test_legend_is_a_plain_leaflet_control():
    m = make_map((0, 0), 3, static_url=STATIC_URL, basemap=False)
    add_legend(m, "Land-cover groups", [("#e4003a", "changed (outline)"), ("#1a9850", "Forest")])
    html = finish_map(m).get_root().render()
    assert "Land-cover groups" in html and "changed (outline)" in html and "#1a9850" in html
    assert re.findall(r"https?://", html) == [] and "$(" not in html


def test_referenced_files_exist_in_static_vendor():
    refs = _refs(_full_map(basemap=False, draw=True).get_root().render())
    for url in refs.scripts + refs.links:
        path = VENDOR_DIR / url[len(STATIC_URL) + 1 :]
        assert path.is_file() and path.stat().st_size > 500, path
    # Images referenced from the vendored CSS files are shipped too.
    for css in VENDOR_DIR.rglob("*.css"):
        for ref in re.findall(r"url\(['\"]?([^'\")]+)['\"]?\)", css.read_text()):
            if ref.startswith(("#", "data:")):
                continue
            assert (css.parent / ref).is_file(), f"{css.name} -> {ref}"


def test_vendored_versions_match_folium():
    assert f'version="{LEAFLET_VERSION}"' in (VENDOR_DIR / "leaflet/leaflet.js").read_text()
    assert f'drawVersion="{LEAFLET_DRAW_VERSION}"' in (
        VENDOR_DIR / "leaflet-draw/leaflet.draw.js"
    ).read_text()
    # The versions folium itself would fetch from the CDN.
    assert f"leaflet@{LEAFLET_VERSION}/" in dict(folium.Map.default_js)["leaflet"]
    assert f"/{LEAFLET_DRAW_VERSION}/" in dict(folium.plugins.Draw.default_js)["leaflet_draw_js"]


def test_license_files_present_and_vendor_small():
    for pkg, marker in [("leaflet", "BSD"), ("leaflet-draw", "Permission is hereby granted"),
                        ("leaflet-fullscreen", "MIT"), ("leaflet-side-by-side", "MIT")]:
        lic = VENDOR_DIR / pkg / "LICENSE"
        assert lic.is_file(), lic
        assert marker in lic.read_text(), lic
    assert (VENDOR_DIR / "README.md").is_file()
    total = sum(p.stat().st_size for p in VENDOR_DIR.rglob("*") if p.is_file())
    assert total < 1_500_000, total


def test_draw_options():
    html = make_map((0, 0), 3, static_url=STATIC_URL, draw=True).get_root().render()
    assert "L.Control.Draw" in html
    for off in ("polyline", "circle", "marker", "circlemarker"):
        assert f'"{off}": false' in html, off
    assert '"rectangle": true' in html
    assert '"polygon": {' in html
    assert '"edit": true' in html and '"remove": true' in html
    assert "L.Control.Draw" not in make_map((0, 0), 3, static_url=STATIC_URL).get_root().render()


def test_folium_class_defaults_not_mutated():
    before_map, before_draw = list(folium.Map.default_js), list(folium.plugins.Draw.default_js)
    make_map((0, 0), 3, static_url=STATIC_URL, draw=True).get_root().render()
    assert folium.Map.default_js == before_map
    assert folium.plugins.Draw.default_js == before_draw
    # A plain folium map elsewhere still behaves as upstream.
    assert "cdn.jsdelivr.net" in folium.Map(tiles=None).get_root().render()


def test_basemap_only_adds_tiles():
    html = make_map((0, 0), 3, static_url=STATIC_URL, basemap=True).get_root().render()
    refs = _refs(html)
    assert all(u.startswith(STATIC_URL) for u in refs.scripts + refs.links)
    # leafmap's basemaps (xyzservices), each with its provider's attribution
    assert "tile.openstreetmap.org" in html and "OpenStreetMap" in html
    assert "World_Imagery" in html and "Esri" in html
    assert "tile.openstreetmap.org" not in make_map(
        (0, 0), 3, static_url=STATIC_URL, basemap=False
    ).get_root().render()


def test_image_overlay_array_embedded_as_data_url_with_exact_colours():
    m = make_map((45.0, 7.0), 11, static_url=STATIC_URL, basemap=False)
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 10  # dark: branca alone would stretch each channel to 255
    rgb[1, 2] = (1, 2, 3)
    layer = add_image_overlay(m, rgb, BOUNDS, "change", 0.5)
    assert layer.url.startswith("data:image/png;base64,")
    html = m.get_root().render()
    rgba = _decode_png_rgba(_overlay_png(html))
    assert rgba.shape == (4, 5, 4)
    np.testing.assert_array_equal(rgba[..., :3], rgb)
    assert (rgba[..., 3] == 255).all()
    assert '"opacity": 0.5' in html and "[[44.9, 6.9], [45.1, 7.1]]" in html

    rgba_in = np.random.default_rng(0).integers(0, 256, (3, 2, 4), dtype=np.uint8)
    m2 = make_map((45.0, 7.0), 11, static_url=STATIC_URL, basemap=False)
    add_image_overlay(m2, rgba_in, BOUNDS, "rgba", 1.0)
    np.testing.assert_array_equal(_decode_png_rgba(_overlay_png(m2.get_root().render())), rgba_in)


def test_image_overlay_png_bytes_passed_through():
    from branca.utilities import write_png

    png = write_png(np.full((2, 2, 4), 77, np.uint8))
    m = make_map((45.0, 7.0), 11, static_url=STATIC_URL, basemap=False)
    add_image_overlay(m, png, BOUNDS, "png", 0.8)
    assert _overlay_png(m.get_root().render()) == png


def test_image_overlay_rejects_bad_input():
    m = make_map((45.0, 7.0), 11, static_url=STATIC_URL, basemap=False)
    with pytest.raises(ValueError):
        add_image_overlay(m, b"GIF89a....", BOUNDS, "x", 0.5)
    with pytest.raises(TypeError):
        add_image_overlay(m, np.zeros((2, 2, 3), np.float32), BOUNDS, "x", 0.5)
    with pytest.raises(ValueError):
        add_image_overlay(m, np.zeros((2, 2, 3), np.uint8), ((45.1, 7), (44.9, 7.1)), "x", 0.5)
    with pytest.raises(ValueError):
        add_image_overlay(m, np.zeros((2, 2, 3), np.uint8), BOUNDS, "x", 1.5)


def test_mercator_projection_keeps_shape_and_colours():
    m = make_map((45.0, 7.0), 5, static_url=STATIC_URL, basemap=False)
    img = np.zeros((50, 3, 3), np.uint8)
    img[:25] = (255, 0, 0)
    img[25:] = (0, 0, 255)
    add_image_overlay(m, img, ((30.0, 6.0), (60.0, 8.0)), "merc", 0.5, mercator_project=True)
    out = _decode_png_rgba(_overlay_png(m.get_root().render()))
    assert out.shape == (50, 3, 4)
    colours = {tuple(c) for c in out[..., :3].reshape(-1, 3)}
    assert colours == {(255, 0, 0), (0, 0, 255)}
    # In Web Mercator the northern half (45-60N) takes more than half of the height.
    assert (out[:, 0, 0] == 255).sum() > 25


def test_add_geojson_embeds_and_styles():
    m = make_map((45.0, 7.0), 11, static_url=STATIC_URL, basemap=False)
    add_geojson(m, AOI, "aoi", {"color": "#e31a1c", "weight": 3})
    add_geojson(m, '{"type": "FeatureCollection", "features": []}', "empty", None)
    html = m.get_root().render()
    assert "#e31a1c" in html and '"aoi"' in html
    assert "$.ajax" not in html
    with pytest.raises(ValueError):
        add_geojson(m, "https://example.com/aoi.geojson", "remote", None)
    with pytest.raises(ValueError):
        add_geojson(m, {"features": []}, "bad", None)


def test_static_vendor_url():
    assert static_vendor_url("") == "/app/static/vendor"
    assert static_vendor_url("lulc") == "/lulc/app/static/vendor"
    assert static_vendor_url("/a/b/") == "/a/b/app/static/vendor"
    assert make_map((0, 0), 2, static_url="/p/app/static/vendor/").default_js == [
        ("leaflet", "/p/app/static/vendor/leaflet/leaflet.js")
    ]


def test_basemap_follows_reachability_unless_forced(monkeypatch):
    import socket

    from ui import session

    session.tiles_reachable.clear()
    # a port nothing listens on: unreachable, so no tiles by default
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = ("127.0.0.1", s.getsockname()[1])
    assert session.tiles_reachable(closed, 0.5) is False
    with socket.socket() as srv:  # a listening port: reachable
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        assert session.tiles_reachable(("127.0.0.1", srv.getsockname()[1]), 0.5) is True
    monkeypatch.setenv("LULC_BASEMAP", "0")
    assert session.basemap_enabled() is False
    monkeypatch.setenv("LULC_BASEMAP", "1")
    assert session.basemap_enabled() is True
    monkeypatch.setenv("LULC_BASEMAP", "auto")
    monkeypatch.setattr(session, "tiles_reachable", lambda: False)
    assert session.basemap_enabled() is False


def test_finish_map_checks_each_make_up_once_but_every_link():
    finish_map(make_map((0, 0), 3, static_url=STATIC_URL, basemap=False))  # this make-up passes
    m = make_map((0, 0), 3, static_url=STATIC_URL, basemap=False)
    button = next(c for c in m._children.values() if isinstance(c, folium.plugins.Fullscreen))
    button.default_js = [("Control.Fullscreen.js", "https://cdn.example.org/Control.FullScreen.js")]
    with pytest.raises(RuntimeError, match="cdn.example.org"):  # same classes, another link: checked again
        finish_map(m)
