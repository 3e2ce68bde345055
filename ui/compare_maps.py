"""Maps that show two dates against each other on the Compare page: views linked across iframes
(:func:`link_view`) and the swipe map (:func:`make_swipe_map`, leaflet-side-by-side from
``static/vendor``)."""

from __future__ import annotations

from typing import Any

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from jinja2 import Template

from ui.map_overlays import checked_bounds, image_data_url
from ui.offline_map import SIDE_BY_SIDE_CSS, SIDE_BY_SIDE_JS, asset_url, make_map, static_vendor_url

__all__ = ["link_view", "make_swipe_map"]


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
        self.default_js = [("leaflet_side_by_side_js", asset_url(static_url, SIDE_BY_SIDE_JS))]
        self.default_css = [(f"leaflet_side_by_side_css_{i}", asset_url(static_url, css))
                            for i, css in enumerate(SIDE_BY_SIDE_CSS)]


def make_swipe_map(center: tuple[float, float], zoom: int, left: list[tuple[Any, Any, str, float]],
                   right: list[tuple[Any, Any, str, float]], *, static_url: str | None = None,
                   basemap: bool = True) -> folium.Map:
    """A zoomable split map: ``left`` image overlays (date A) left of a draggable divider, ``right``
    ones (date B) right of it. Each overlay is ``(image, bounds, name, opacity)`` as for
    :func:`ui.map_overlays.add_image_overlay`. Offline: the plugin comes from ``static_url`` like Leaflet itself."""
    if static_url is None:
        static_url = static_vendor_url()
    m = make_map(center, zoom, static_url=static_url, basemap=basemap)
    for pane, overlays in (("swipeA", left), ("swipeB", right)):
        folium.map.CustomPane(pane, z_index=410).add_to(m)
        for image, bounds_latlon, name, opacity in overlays:
            bounds = checked_bounds(bounds_latlon)
            layer = folium.raster_layers.ImageOverlay(
                image=image_data_url(image, bounds, False), bounds=bounds, name=name,
                opacity=float(opacity), interactive=False, pixelated=True, pane=pane)
            layer.add_to(m)
    _SwipeControl(static_url).add_to(m)
    return m
