"""leafmap (folium) maps that work without internet access.

The maps are ``leafmap.foliumap.Map`` objects (leafmap's basemaps, legend, layer control and
fullscreen button).  folium loads Leaflet, jQuery, Bootstrap, font-awesome,
Leaflet.awesome-markers and the plugins (Leaflet.draw, leaflet.fullscreen,
leaflet-side-by-side) from public CDNs, so on an offline machine the map stays blank.
:func:`make_map` builds a map whose every JS/CSS link points at copies shipped in
``static/vendor/`` (see ``static/vendor/README.md`` and
``scripts/vendor_leaflet.sh``) and served by Streamlit's static file serving
(``[server] enableStaticServing = true`` -> ``<server>/app/static/<file>``).

Only Leaflet (and Leaflet.draw when ``draw=True``) is loaded.  The other folium
defaults are dropped because nothing we draw needs them:

* jQuery is used by folium only for ``folium.Popup`` (its template calls ``$(...)``),
  ``Map.keep_in_front`` and ``GeoJson(embed=False)``.  Don't use those on these maps;
  use ``folium.Tooltip``, ``folium.GeoJsonTooltip`` or ``folium.GeoJsonPopup`` (plain
  Leaflet) instead.
* Bootstrap / glyphicons / font-awesome / awesome-markers / awesome.rotate are only
  for ``folium.Icon`` markers (``folium.Marker`` without an icon uses Leaflet's default
  marker image, which is shipped).

Which URL to use (verified in headless Chromium, streamlit 1.67 + streamlit-folium
0.27.4, every non-localhost request blocked): ``st_folium`` strips the <script>/<link>
tags from the map HTML and hands the URLs to its component, which runs in an iframe
served from ``<server>/component/streamlit_folium.st_folium/index.html`` and appends
the tags there.  A relative URL such as ``"app/static/vendor"`` therefore resolves
against the *component's* URL (``/component/streamlit_folium.st_folium/app/static/...``
-> 404, blank map).  An absolute path (``/app/static/vendor/...``, same origin as the
iframe) works there and in ``folium_static``/``components.html`` (srcdoc) iframes, but
must carry ``server.baseUrlPath`` when the app is served under a prefix; that is what
:func:`static_vendor_url` (the default of ``make_map``) computes.  Streamlit serves
.js as ``application/javascript`` and .css as ``text/css`` with ``nosniff``, so the
browser accepts them.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import re

import folium
import folium.plugins
import leafmap.foliumap as leafmap
import xyzservices
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from jinja2 import Template
import numpy as np
from branca.utilities import write_png

__all__ = [
    "VENDOR_DIR",
    "DEFAULT_STATIC_URL",
    "LEAFLET_VERSION",
    "LEAFLET_DRAW_VERSION",
    "static_vendor_url",
    "make_map",
    "finish_map",
    "link_view",
    "add_legend",
    "external_urls",
    "add_image_overlay",
    "add_geojson",
]

#: Folder holding the vendored files (served at ``<base>/app/static/vendor``).
VENDOR_DIR = Path(__file__).resolve().parent.parent / "static" / "vendor"

#: URL of VENDOR_DIR as seen from the streamlit-folium iframe when Streamlit is served
#: at the root of its host (see the module docstring for why it is absolute).
DEFAULT_STATIC_URL = "/app/static/vendor"

# Versions folium 0.20.0 would load from CDNs (folium/folium.py, plugins/draw.py).
LEAFLET_VERSION = "1.9.3"
LEAFLET_DRAW_VERSION = "1.0.2"

# Paths relative to VENDOR_DIR / static_url.
LEAFLET_JS = "leaflet/leaflet.js"
LEAFLET_CSS = "leaflet/leaflet.css"
LEAFLET_DRAW_JS = "leaflet-draw/leaflet.draw.js"
LEAFLET_DRAW_CSS = "leaflet-draw/leaflet.draw.css"
SIDE_BY_SIDE_VERSION = "2.2.0"
SIDE_BY_SIDE_JS = "leaflet-side-by-side/leaflet-side-by-side.js"
SIDE_BY_SIDE_CSS = ("leaflet-side-by-side/layout.css", "leaflet-side-by-side/range.css")
FULLSCREEN_VERSION = "3.0.0"
FULLSCREEN_JS = "leaflet-fullscreen/Control.FullScreen.js"
FULLSCREEN_CSS = "leaflet-fullscreen/Control.FullScreen.css"

#: leafmap / xyzservices basemaps offered when tiles are reachable (the first one is shown).
BASEMAPS = ("OpenStreetMap.Mapnik", "Esri.WorldImagery")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def static_vendor_url(base_url_path: str | None = None) -> str:
    """Absolute URL path of ``static/vendor`` on the running Streamlit server.

    ``base_url_path`` is Streamlit's ``server.baseUrlPath`` (e.g. ``"lulc"`` when the
    app is reverse-proxied at ``https://host/lulc/``).  When None it is read from the
    Streamlit config if Streamlit is importable, else treated as empty.  Returns e.g.
    ``"/app/static/vendor"`` or ``"/lulc/app/static/vendor"``.
    """
    if base_url_path is None:
        try:
            from streamlit import config as st_config

            base_url_path = st_config.get_option("server.baseUrlPath") or ""
        except Exception:  # streamlit missing or config not loadable
            base_url_path = ""
    base = str(base_url_path).strip("/")
    return f"/{base}/app/static/vendor" if base else "/app/static/vendor"


def _join(static_url: str, rel: str) -> str:
    return f"{static_url.rstrip('/')}/{rel}"


def make_map(
    center: tuple[float, float],
    zoom: int,
    *,
    static_url: str | None = None,
    basemap: bool = True,
    draw: bool = False,
    fullscreen: bool = True,
) -> leafmap.Map:
    """A ``leafmap.foliumap.Map`` loading Leaflet and its plugins only from ``static_url``.

    Parameters
    ----------
    center : (lat, lon) of the initial view.
    zoom : initial zoom level.
    static_url : URL (as seen by the browser) of the ``static/vendor`` folder.  None
        (default) means :func:`static_vendor_url()`, i.e. ``"/app/static/vendor"``
        prefixed with Streamlit's ``server.baseUrlPath`` if one is set.  Relative URLs
        such as ``"app/static/vendor"`` do NOT work inside st_folium's iframe.
    basemap : add leafmap's basemaps :data:`BASEMAPS` (OpenStreetMap shown, Esri World
        Imagery in the layer control), with their xyzservices attributions.  Their tiles
        come from the internet, so pages pass ``basemap=ui.session.basemap_enabled()``; with
        ``basemap=False`` the map has no tile layer, no tile attribution and the rendered
        HTML contains no internet URL at all.
    draw : add a Leaflet.draw toolbar (rectangle + polygon; edit and delete enabled).
        Shapes drawn end up in ``st_folium(...)["all_drawings"]``.
    fullscreen : leafmap's fullscreen button (leaflet.fullscreen, vendored).

    Call :func:`finish_map` after the last layer is added (layer control, offline check).
    """
    if static_url is None:
        static_url = static_vendor_url()
    lat, lon = float(center[0]), float(center[1])
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"center must be (lat, lon) in degrees, got {center!r}")

    m = leafmap.Map(
        location=[lat, lon],
        zoom_start=int(zoom),
        tiles=None,
        scale_control=True,
        fullscreen_control=False,  # added below: leafmap's would also set the map option that adds a second one
        draw_control=False,
        layers_control=False,
        search_control=False,
        measure_control=False,
    )
    # Instance attributes: never mutate folium's class-level default lists (the
    # add_js_link/add_css_link helpers would, affecting every other Map).
    m.default_js = [("leaflet", _join(static_url, LEAFLET_JS))]
    m.default_css = [("leaflet_css", _join(static_url, LEAFLET_CSS))]
    if fullscreen:
        button = folium.plugins.Fullscreen(position="topleft")
        button.default_js = [("leaflet_fullscreen_js", _join(static_url, FULLSCREEN_JS))]
        button.default_css = [("leaflet_fullscreen_css", _join(static_url, FULLSCREEN_CSS))]
        button.add_to(m)
    if basemap:
        for i, name in enumerate(BASEMAPS):
            m.add_basemap(xyzservices.providers.query_name(name), show=i == 0)

    if draw:
        d = folium.plugins.Draw(
            position="topleft",
            show_geometry_on_click=False,
            draw_options={
                "polyline": False,
                "circle": False,
                "marker": False,
                "circlemarker": False,
                "rectangle": True,
                "polygon": {"allowIntersection": False, "showArea": False},
            },
            edit_options={"edit": True, "remove": True},
        )
        d.default_js = [("leaflet_draw_js", _join(static_url, LEAFLET_DRAW_JS))]
        d.default_css = [("leaflet_draw_css", _join(static_url, LEAFLET_DRAW_CSS))]
        d.add_to(m)
    return m


def add_legend(m: leafmap.Map, title: str, items: list[tuple[str, str]]) -> None:
    """A legend box on the map (leafmap's, as a plain Leaflet control: no jQuery, no CDN).
    ``items`` are ``(colour, label)`` pairs."""
    m.add_legend(title=title, legend_dict={label: colour for colour, label in items}, draggable=False,
                 position="bottomright", style={"font-size": "11px", "padding": "4px", "line-height": "1.1"})


def external_urls(m: folium.Map) -> list[str]:
    """Script and stylesheet URLs of the rendered map that are not served by this app."""
    html = m.get_root().render()
    return sorted({u for u in re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["']([^"']+)""", html)
                   if "://" in u or u.startswith("//")})


#: Map make-ups (element classes and their JS/CSS links) already checked by :func:`finish_map`.
_CHECKED_MAKEUPS: set[frozenset] = set()


def _makeup(m: folium.Map) -> frozenset:
    """The element classes of a map and the scripts and stylesheets they declare: what decides which
    ``<script>``/``<link>`` tags its HTML holds (data such as images and GeoJSON does not)."""
    seen, stack = set(), [m.get_root()]
    while stack:
        el = stack.pop()
        links = tuple(u for _, u in (*getattr(el, "default_js", ()), *getattr(el, "default_css", ())))
        seen.add((type(el), links, getattr(el, "url", None) if type(el).__name__.endswith("Link") else None))
        stack.extend(el._children.values())
    return frozenset(seen)


def finish_map(m: leafmap.Map, *, layer_control: bool = True) -> leafmap.Map:
    """The last step before ``st_folium``: leafmap's layer control (after every layer, so it lists
    them all) and the offline guarantee, checked: no script or stylesheet from the internet. The
    check renders the map's HTML once per make-up (a map of the same element classes and links
    holds the same tags), not on every rerun: rendering a Compare map costs about 0.09 s."""
    if layer_control:
        m.add_layer_control()
    makeup = _makeup(m)
    if makeup not in _CHECKED_MAKEUPS:
        if urls := external_urls(m):
            raise RuntimeError(f"map would load {urls[0]} from the internet; vendor it in static/vendor")
        _CHECKED_MAKEUPS.add(makeup)
    return m


def _to_rgba_uint8(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise TypeError(f"image array must be uint8, got {a.dtype}")
    if a.ndim == 2:  # grey
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"image array must be HxW, HxWx3 or HxWx4, got shape {a.shape}")
    if a.shape[2] == 3:
        # Add an opaque alpha ourselves: branca's write_png would turn an RGB uint8
        # array into float and stretch every channel to its own maximum.
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(a)


def _mercator_rows(rgba: np.ndarray, south: float, north: float) -> np.ndarray:
    """Resample rows (nearest neighbour, keeps class colours exact) from a regular
    latitude grid (row 0 = north) to a regular Web-Mercator y grid."""

    def merc_y(lat: np.ndarray | float) -> np.ndarray:
        return np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))

    h = rgba.shape[0]
    y = np.linspace(merc_y(north), merc_y(south), h, endpoint=False) + (
        merc_y(south) - merc_y(north)
    ) / (2 * h)
    lat = np.degrees(2 * np.arctan(np.exp(y)) - np.pi / 2)
    src = np.clip(((north - lat) / (north - south) * h).astype(int), 0, h - 1)
    return rgba[src]


def _image_data_url(image: np.ndarray | bytes, bounds, mercator_project: bool) -> str:
    if isinstance(image, (bytes, bytearray, memoryview)):
        png = bytes(image)
        if not png.startswith(_PNG_SIGNATURE):
            raise ValueError("image bytes are not a PNG (bad signature)")
        if mercator_project:
            raise ValueError("mercator_project needs a numpy array, not PNG bytes")
    else:
        rgba = _to_rgba_uint8(image)
        if mercator_project:
            rgba = _mercator_rows(rgba, bounds[0][0], bounds[1][0])
        png = write_png(rgba)  # uint8 RGBA is written as-is
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _check_bounds(bounds_latlon) -> list[list[float]]:
    try:
        (south, west), (north, east) = bounds_latlon
        south, west, north, east = map(float, (south, west, north, east))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "bounds_latlon must be ((south, west), (north, east)) in degrees"
        ) from exc
    if not (-90 <= south < north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        raise ValueError(
            f"bounds_latlon must be ((south, west), (north, east)), got {bounds_latlon!r}"
        )
    return [[south, west], [north, east]]


def add_image_overlay(
    m: folium.Map,
    rgba_png_or_array: np.ndarray | bytes,
    bounds_latlon,
    name: str,
    opacity: float = 0.7,
    *,
    show: bool = True,
    mercator_project: bool = False,
) -> folium.raster_layers.ImageOverlay:
    """Add an image embedded as a ``data:image/png;base64`` URL (no tile server).

    ``rgba_png_or_array`` is a uint8 numpy array (HxW grey, HxWx3 RGB or HxWx4 RGBA,
    row 0 = north) or the bytes of a PNG file.  ``bounds_latlon`` is
    ``((south, west), (north, east))``.  ``mercator_project=True`` (arrays only)
    resamples rows from a regular lat/lon grid to Web Mercator (nearest neighbour);
    irrelevant for small AOIs.  The PNG travels inside the map HTML, so keep images
    modest (a few hundred pixels a side).
    """
    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity}")
    bounds = _check_bounds(bounds_latlon)
    url = _image_data_url(rgba_png_or_array, bounds, mercator_project)
    # folium passes a "data:" URL string through unchanged (it is a valid URL scheme).
    layer = folium.raster_layers.ImageOverlay(
        image=url,
        bounds=bounds,
        name=name,
        opacity=float(opacity),
        show=show,
        interactive=False,
        pixelated=True,
    )
    layer.add_to(m)
    return layer


def add_geojson(
    m: folium.Map,
    data: Any,
    name: str,
    style: Mapping[str, Any] | Callable[[dict], dict] | None = None,
    *,
    tooltip_fields: list[str] | None = None,
    tooltip_aliases: list[str] | None = None,
) -> folium.GeoJson:
    """Add GeoJSON embedded in the map (never fetched by URL, never via jQuery).

    ``data`` is a GeoJSON dict, a JSON string, a path to a .geojson file, or an object
    with ``__geo_interface__`` (shapely, geopandas).  ``style`` is a Leaflet path style
    dict (``{"color": "#e31a1c", "weight": 2, "fillOpacity": 0.1}``) applied to every
    feature, or a ``feature -> dict`` function.  ``tooltip_fields`` adds a
    ``GeoJsonTooltip`` (plain Leaflet; ``folium.Popup`` would need jQuery), labelled with
    ``tooltip_aliases`` when given (e.g. "Date A class" for ``class_a``).
    """
    if hasattr(data, "__geo_interface__"):
        data = data.__geo_interface__
    elif isinstance(data, os.PathLike):
        data = json.loads(Path(data).read_text(encoding="utf-8"))
    elif isinstance(data, str):
        stripped = data.lstrip()
        if stripped.startswith(("{", "[")):
            data = json.loads(stripped)
        elif "://" in data:
            raise ValueError("add_geojson does not fetch URLs (offline map); pass the data")
        else:
            data = json.loads(Path(data).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping) or "type" not in data:
        raise ValueError("data is not GeoJSON (expected a mapping with a 'type' key)")

    if style is None:
        style_function = None
    elif callable(style):
        style_function = style
    else:
        style_dict = dict(style)
        style_function = lambda _feature: style_dict  # noqa: E731

    tooltip = (folium.GeoJsonTooltip(fields=list(tooltip_fields),
                                     aliases=list(tooltip_aliases) if tooltip_aliases else None)
               if tooltip_fields else None)
    layer = folium.GeoJson(
        data=dict(data),
        name=name,
        style_function=style_function,
        tooltip=tooltip,
        embed=True,
    )
    layer.add_to(m)
    return layer


class _LinkedView(MacroElement):
    """Pan and zoom this map's sibling maps of the same group live, in the browser.

    Each ``st_folium`` map lives in its own iframe served by the same server, so a map can reach
    the others through ``window.parent``: every linked map publishes itself as ``window.__lulcMap``
    with its group, and on each move sets the view of the other maps of its group (a flag on the
    map being moved stops the echo). Streamlit still learns the view from ``st_folium`` (the Python
    side keeps it across reruns); this only makes the maps follow each other without waiting.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, group = {{ this.group|tojson }};
            window.__lulcMap = map; map.__lulcGroup = group;
            map.on("move", function () {
                if (map.__lulcFollowing) return;
                var frames = window.parent.document.querySelectorAll("iframe");
                for (var i = 0; i < frames.length; i++) {
                    var other;
                    try { other = frames[i].contentWindow.__lulcMap; } catch (e) { continue; }
                    if (!other || other === map || other.__lulcGroup !== group) continue;
                    other.__lulcFollowing = true;
                    try { other.setView(map.getCenter(), map.getZoom(), {animate: false}); }
                    finally { other.__lulcFollowing = false; }
                }
            });
        })();
        {% endmacro %}
    """)

    def __init__(self, group: str) -> None:
        super().__init__()
        self._name = "LinkedView"
        self.group = group


def link_view(m: folium.Map, group: str) -> folium.Map:
    """Make ``m`` pan and zoom together with every other map of ``group`` on the page (see
    :class:`_LinkedView`); no script or stylesheet is loaded for it."""
    _LinkedView(group).add_to(m)
    return m


class _SwipeControl(JSCSSMixin, MacroElement):
    """leaflet-side-by-side over two custom panes: everything drawn in pane ``swipeA`` shows left
    of the divider, everything in ``swipeB`` right of it."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var left = L.layerGroup().addTo(map), right = L.layerGroup().addTo(map);
            left.getContainer = function () { return map.getPane("swipeA"); };
            right.getContainer = function () { return map.getPane("swipeB"); };
            L.control.sideBySide(left, right).addTo(map);
        })();
        {% endmacro %}
    """)

    def __init__(self, static_url: str) -> None:
        super().__init__()
        self._name = "SwipeControl"
        self.default_js = [("leaflet_side_by_side_js", _join(static_url, SIDE_BY_SIDE_JS))]
        self.default_css = [(f"leaflet_side_by_side_css_{i}", _join(static_url, css))
                            for i, css in enumerate(SIDE_BY_SIDE_CSS)]


def make_swipe_map(center: tuple[float, float], zoom: int, left: list[tuple[Any, Any, str, float]],
                   right: list[tuple[Any, Any, str, float]], *, static_url: str | None = None,
                   basemap: bool = True) -> folium.Map:
    """A zoomable split map: ``left`` image overlays (date A) left of a draggable divider, ``right``
    ones (date B) right of it. Each overlay is ``(image, bounds, name, opacity)`` as for
    :func:`add_image_overlay`. Offline: the plugin comes from ``static_url`` like Leaflet itself."""
    if static_url is None:
        static_url = static_vendor_url()
    m = make_map(center, zoom, static_url=static_url, basemap=basemap)
    for pane, overlays in (("swipeA", left), ("swipeB", right)):
        folium.map.CustomPane(pane, z_index=410).add_to(m)
        for image, bounds, name, opacity in overlays:
            layer = folium.raster_layers.ImageOverlay(
                image=_image_data_url(image, _check_bounds(bounds), False), bounds=_check_bounds(bounds), name=name,
                opacity=float(opacity), interactive=False, pixelated=True, pane=pane)
            layer.add_to(m)
    _SwipeControl(static_url).add_to(m)
    return m
