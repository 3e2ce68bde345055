"""leafmap (folium) maps that work without internet access: the vendored assets, :func:`make_map` and
:func:`finish_map` (with its check that nothing loads from outside).

Layers go on with :mod:`ui.map_overlays` (images, GeoJSON, legend); :mod:`ui.compare_maps` shows two
dates against each other (linked views, swipe map).

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

import functools
import re
from pathlib import Path

import branca.element
import folium
import folium.plugins
import jinja2
import leafmap.foliumap as leafmap
import xyzservices

from ui.served_images import static_root_url

__all__ = [
    "VENDOR_DIR",
    "DEFAULT_STATIC_URL",
    "LEAFLET_VERSION",
    "LEAFLET_DRAW_VERSION",
    "static_vendor_url",
    "asset_url",
    "make_map",
    "finish_map",
    "external_urls",
]


class _Verbatim:
    """What jinja2 renders from a text without template syntax: the text, less one trailing newline."""

    def __init__(self, text: str) -> None:
        self._text = text[:-1] if text.endswith("\n") else text

    def render(self, *args, **kwargs) -> str:
        return self._text


@functools.lru_cache(maxsize=256)
def _compiled_template(source: str) -> jinja2.Template:
    return jinja2.Template(source)


def _element_template(source: str) -> jinja2.Template | _Verbatim:
    """The template of a branca element: compiled once per text, or none at all for plain text."""
    if "\r" in source or any(tag in source for tag in ("{{", "{%", "{#")):
        return _compiled_template(source)
    return _Verbatim(source)


# branca compiles the template text of every element it creates, and folium creates one for each
# element's rendered script while rendering a map: jinja2 lexed about 240 texts, data URLs included,
# for each run of the Compare page's four maps (0.5 of its 0.75 s). Plain text is now used as it is
# (what jinja2 would render from it) and templates are compiled once.
branca.element.Template = _element_template

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


def static_vendor_url(base_url_path: str | None = None) -> str:
    """Absolute URL path of ``static/vendor`` on the running Streamlit server.

    ``base_url_path`` is Streamlit's ``server.baseUrlPath`` (e.g. ``"lulc"`` when the
    app is reverse-proxied at ``https://host/lulc/``).  When None it is read from the
    Streamlit config if Streamlit is importable, else treated as empty.  Returns e.g.
    ``"/app/static/vendor"`` or ``"/lulc/app/static/vendor"``.
    """
    return f"{static_root_url(base_url_path)}/vendor"


def asset_url(static_url: str, rel: str) -> str:
    """URL of the vendored file ``rel`` (relative to ``static/vendor``) under ``static_url``."""
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
    m.default_js = [("leaflet", asset_url(static_url, LEAFLET_JS))]
    m.default_css = [("leaflet_css", asset_url(static_url, LEAFLET_CSS))]
    if fullscreen:
        button = folium.plugins.Fullscreen(position="topleft")
        button.default_js = [("leaflet_fullscreen_js", asset_url(static_url, FULLSCREEN_JS))]
        button.default_css = [("leaflet_fullscreen_css", asset_url(static_url, FULLSCREEN_CSS))]
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
        d.default_js = [("leaflet_draw_js", asset_url(static_url, LEAFLET_DRAW_JS))]
        d.default_css = [("leaflet_draw_css", asset_url(static_url, LEAFLET_DRAW_CSS))]
        d.add_to(m)
    return m


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
