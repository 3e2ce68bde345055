"""Maps that show two dates against each other on the Compare page, built so that they answer in the
browser and never make the page rerun except for a click:

* :func:`link_view` links a map with the other maps of its group (one group per analysis): pan and
  zoom follow live, the view is kept in the tab (``sessionStorage``) and in the page's URL
  (``view=lat,lng,zoom``), the layer choices (tagged layers, see :func:`layer_options`) follow on
  every map and survive reruns and reloads.
* :func:`make_swipe_map` is the split map (leaflet-side-by-side from ``static/vendor``): its divider
  position survives reruns and releasing the divider over the map never counts as a click.
* :func:`page_layer` is what changes on a click or a widget (the selected cell's outline, the
  class map's opacity and level): it goes to ``st_folium(feature_group_to_add=...)``, so the map's
  own HTML stays the same and its iframe is never rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template as FoliumTemplate
from jinja2 import Template

from ui.map_overlays import add_geojson, checked_bounds, image_overlay, image_url
from ui.offline_map import SIDE_BY_SIDE_CSS, SIDE_BY_SIDE_JS, asset_url, make_map, static_vendor_url

__all__ = ["LayerGroup", "Overlay", "layer_options", "link_view", "make_swipe_map", "page_layer"]


def layer_options(kind: str | None = None, *, level: str | None = None, fade: bool = False) -> dict[str, Any]:
    """Leaflet options that tag a layer for the linked maps' script: ``kind`` (e.g. ``"cls"``) is a layer
    the user switches on or off (the same kind follows on every map of the group), ``level``
    (``"group"``/``"class"``) an image shown only at that class level, ``fade`` an image whose opacity
    follows the page's opacity slider."""
    out: dict[str, Any] = {}
    if kind:
        out["lulc_layer"] = kind
    if level:
        if level not in ("group", "class"):
            raise ValueError(f"level must be 'group' or 'class', got {level!r}")
        out["lulc_level"] = level
    if fade:
        out["lulc_fade"] = True
    return out


class LayerGroup(folium.FeatureGroup):
    """A ``folium.FeatureGroup`` whose Leaflet options reach the layer (folium passes them as
    ``L.featureGroup``'s first argument, its layers, where Leaflet ignores them): for a group of images
    switched on and off as one layer of ``kind`` (see :func:`layer_options`)."""

    _template = FoliumTemplate("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup([], {{ this.options|tojavascript }});
        {% endmacro %}
    """)

    def __init__(self, name: str, kind: str, show: bool = True) -> None:
        super().__init__(name=name, show=show, **layer_options(kind))


class _LinkedView(MacroElement):
    """The browser side of :func:`link_view`.

    Each ``st_folium`` map lives in its own iframe served by the same server, so a map reaches the
    others through ``window.parent``: every linked map publishes itself as ``window.__lulcMap`` with
    its group. On a move it sets the view of the other maps of its group (a flag on the map being
    moved stops the echo); at the end of a move it keeps the view in ``sessionStorage`` and in the
    page's URL; a click is reported to the page at once. A history patch in the page (installed
    once) puts the view back into any URL that Streamlit writes for an analysis, since Streamlit
    only knows the query parameters it set.
    Layers tagged by :func:`layer_options` are found among the script's globals; switching a tagged
    layer on a layer control switches the same kind on the other maps and is remembered.
    ``window.__lulcMap.__lulcSettings({opacity, level})`` (called by :func:`page_layer`) fades the
    class images and shows the chosen level.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, group = {{ this.group|tojson }}, W = window.parent;
            window.__lulcMap = map; map.__lulcGroup = group;
            function load(name) {
                try { return JSON.parse(window.sessionStorage.getItem("lulc:" + name + ":" + group)); }
                catch (e) { return null; }
            }
            function save(name, value) {
                try { window.sessionStorage.setItem("lulc:" + name + ":" + group, JSON.stringify(value)); }
                catch (e) {}
            }
            function others() {
                var out = [], frames = W.document.querySelectorAll("iframe");
                for (var i = 0; i < frames.length; i++) {
                    var other;
                    try { other = frames[i].contentWindow.__lulcMap; } catch (e) { continue; }
                    if (other && other !== map && other.__lulcGroup === group) out.push(other);
                }
                return out;
            }
            // the URL of an analysis keeps the view: patched once in the page's own realm
            if (!W.__lulcHistoryPatched) {
                W.eval("(function () { window.__lulcHistoryPatched = true;" +
                    " function withView(url) { if (!window.__lulcView || url == null) return url;" +
                    "  var u = new URL(String(url), window.location.href);" +
                    "  if (!u.searchParams.has('a') || !u.searchParams.has('b')) return url;" +
                    "  u.searchParams.set('view', window.__lulcView); return u.pathname + u.search + u.hash; }" +
                    " window.__lulcWithView = withView;" +
                    " ['pushState', 'replaceState'].forEach(function (f) { var orig = history[f].bind(history);" +
                    "  history[f] = function (s, t, u) { return orig(s, t, withView(u)); }; }); })();");
            }
            // the view: a link's the first time this tab opens it (the map's own), else this tab's last
            // view of this analysis, else the map's own (the area)
            var fromLink = {{ this.link_view|tojson }}, v = null;
            if (fromLink && load("link") !== fromLink) save("link", fromLink);
            else v = load("view");
            if (v) map.setView([v.lat, v.lng], v.zoom, {animate: false});
            try {
                var c0 = map.getCenter();
                W.__lulcView = [c0.lat.toFixed(5), c0.lng.toFixed(5), map.getZoom()].join(",");
                W.history.replaceState(W.history.state, "", W.location.href);
            } catch (e) {}
            map.on("move", function () {
                if (map.__lulcFollowing) return;
                others().forEach(function (other) {
                    other.__lulcFollowing = true;
                    try { other.setView(map.getCenter(), map.getZoom(), {animate: false}); }
                    finally { other.__lulcFollowing = false; }
                });
            });
            map.on("moveend", function () {
                if (map.__lulcFollowing) return;
                var c = map.getCenter(), view = {lat: +c.lat.toFixed(6), lng: +c.lng.toFixed(6), zoom: map.getZoom()};
                save("view", view);
                try {
                    W.__lulcView = [view.lat.toFixed(5), view.lng.toFixed(5), view.zoom].join(",");
                    W.history.replaceState(W.history.state, "", W.location.href);
                } catch (e) {}
            });
            // a click goes to the page at once (st_folium's own report waits 250 ms for more events);
            // st_folium's state is told, so that its report finds nothing new to send
            map.on("click", function (e) {
                var g = window.__GLOBAL_DATA__;
                if (!g || !window.Streamlit || JSON.stringify(g.returned_objects) !== '["last_clicked"]') return;
                var data = {last_clicked: e.latlng};
                g.lat_lng_clicked = e.latlng;
                g.previous_data = data;
                window.Streamlit.setComponentValue(data);
            });
            // tagged layers (see ui.compare_maps.layer_options)
            var layers = [];
            for (var k in window) {
                var l;
                try { l = window[k]; } catch (e) { continue; }
                if (l instanceof L.Layer && l.options && (l.options.lulcLayer || l.options.lulcLevel || l.options.lulcFade))
                    layers.push(l);
            }
            map.__lulcShowLayers = function (state) {
                layers.forEach(function (l) {
                    var kind = l.options.lulcLayer;
                    if (!kind || !(kind in state)) return;
                    if (state[kind] && !map.hasLayer(l)) map.addLayer(l);
                    else if (!state[kind] && map.hasLayer(l)) map.removeLayer(l);
                });
            };
            map.__lulcSettings = function (s) {
                layers.forEach(function (l) {
                    if (!l.setOpacity) return;
                    if (l.options.lulcLevel) l.setOpacity(l.options.lulcLevel === s.level ? s.opacity : 0);
                    else if (l.options.lulcFade) l.setOpacity(s.opacity);
                });
            };
            map.__lulcShowLayers(load("layers") || {});
            map.on("overlayadd overlayremove", function (e) {
                var kind = e.layer && e.layer.options && e.layer.options.lulcLayer;
                if (!kind) return;
                var state = load("layers") || {}, on = e.type === "overlayadd";
                if (state[kind] === on) return;
                state[kind] = on;
                save("layers", state);
                others().forEach(function (other) { if (other.__lulcShowLayers) other.__lulcShowLayers(state); });
            });
        })();
        {% endmacro %}
    """)

    def __init__(self, group: str, link_view: str | None) -> None:
        super().__init__()
        self._name = "LinkedView"
        self.group = group
        self.link_view = link_view


def link_view(m: folium.Map, group: str, from_link: str | None = None) -> folium.Map:
    """Link ``m`` with every other map of ``group`` on the page (view, layer choices, settings; see
    :class:`_LinkedView`). ``from_link`` (``"lat,lng,zoom"``) says that the map opens at a shared link's
    view: it wins over the tab's last view the first time. Call it after the map's last layer; no
    script or stylesheet is loaded."""
    if not group:
        raise ValueError("a linked map needs a group name")
    _LinkedView(group, from_link).add_to(m)
    return m


class _PageSettings(MacroElement):
    """Hands the page's opacity and class level to the map's linked-view script."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        if (window.__lulcMap && window.__lulcMap.__lulcSettings) window.__lulcMap.__lulcSettings({{ this.settings|tojson }});
        {% endmacro %}
    """)

    def __init__(self, opacity: float, level: str) -> None:
        super().__init__()
        self._name = "PageSettings"
        self.settings = {"opacity": float(opacity), "level": level}


def page_layer(selected: dict | None, opacity: float, level: str) -> folium.FeatureGroup:
    """What a click or a widget changes on a linked map, for ``st_folium(feature_group_to_add=...)``:
    the selected cell's outline (GeoJSON, or None) and the class images' ``opacity`` (0..1) and ``level``."""
    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity}")
    if level not in ("group", "class"):
        raise ValueError(f"level must be 'group' or 'class', got {level!r}")
    fg = folium.FeatureGroup(name="selected cell", control=False)
    if selected is not None:
        add_geojson(fg, selected, "selected cell", {"color": "#00e5ff", "weight": 3, "fillOpacity": 0.0},
                    pane="shadowPane")  # above every overlay, the swipe map's panes included
    _PageSettings(opacity, level).add_to(fg)
    return fg


@dataclass(frozen=True)
class Overlay:
    """An image of one date for :func:`make_swipe_map`: ``image`` (uint8 array or PNG bytes),
    ``bounds`` ``((south, west), (north, east))``, ``kind`` (the layer it belongs to, e.g. ``"tc"``), and
    ``level``/``fade`` as in :func:`layer_options`."""

    image: Any
    bounds: Any
    kind: str
    level: str | None = None
    fade: bool = False
    opacity: float = 1.0


class _SwipeControl(JSCSSMixin, MacroElement):
    """leaflet-side-by-side over two custom panes: everything drawn in pane ``swipeA`` shows left
    of the divider, everything in ``swipeB`` right of it. The divider's position is kept in the
    tab (``sessionStorage``, per group) and the click that ends a drag of the divider is swallowed."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, key = "lulc:swipe:" + {{ this.group|tojson }};
            var left = L.layerGroup().addTo(map), right = L.layerGroup().addTo(map);
            left.getContainer = function () { return map.getPane("swipeA"); };
            right.getContainer = function () { return map.getPane("swipeB"); };
            var control = L.control.sideBySide(left, right).addTo(map), range = control._range;
            map.__lulcSwipe = control;
            try {
                var kept = parseFloat(window.sessionStorage.getItem(key));
                if (kept >= 0 && kept <= 1) { range.value = kept; control._updateClip(); }
            } catch (e) {}
            L.DomEvent.on(range, "input change", function () {
                try { window.sessionStorage.setItem(key, String(range.value)); } catch (e) {}
            });
            // a drag of the divider that ends over the map makes the browser click the map: not a selection
            var dragging = false;
            L.DomEvent.on(range, "mousedown touchstart pointerdown", function () { dragging = true; });
            window.addEventListener("click", function (e) {
                if (dragging) { dragging = false; e.stopPropagation(); }
            }, true);
            ["mouseup", "touchend", "pointerup"].forEach(function (type) {
                window.addEventListener(type, function () {
                    if (dragging) setTimeout(function () { dragging = false; }, 100);
                }, true);
            });
        })();
        {% endmacro %}
    """)

    def __init__(self, static_url: str, group: str) -> None:
        super().__init__()
        self._name = "SwipeControl"
        self.group = group
        self.default_js = [("leaflet_side_by_side_js", asset_url(static_url, SIDE_BY_SIDE_JS))]
        self.default_css = [(f"leaflet_side_by_side_css_{i}", asset_url(static_url, css))
                            for i, css in enumerate(SIDE_BY_SIDE_CSS)]


def make_swipe_map(center: tuple[float, float], zoom: int, left: list[Overlay], right: list[Overlay],
                   names: dict[str, str], *, group: str = "swipe", static_url: str | None = None,
                   basemap: bool = True, show: dict[str, bool] | None = None) -> folium.Map:
    """A zoomable split map: ``left`` overlays (date A) left of a draggable divider, ``right`` ones (date B)
    right of it. Overlays of one ``kind`` form one layer named ``names[kind]`` (both sides switch together,
    and with that kind on the other maps of ``group``); ``show`` says which kinds start switched on (all by
    default). Offline: the plugin comes from ``static_url`` like Leaflet itself."""
    if static_url is None:
        static_url = static_vendor_url()
    m = make_map(center, zoom, static_url=static_url, basemap=basemap)
    for pane in ("swipeA", "swipeB"):
        folium.map.CustomPane(pane, z_index=410).add_to(m)
    for kind in dict.fromkeys(o.kind for o in [*left, *right]):
        if kind not in names:
            raise ValueError(f"no layer name for the overlays of kind {kind!r}")
        fg = LayerGroup(names[kind], kind, show=(show or {}).get(kind, True))
        for pane, overlays in (("swipeA", left), ("swipeB", right)):
            for o in overlays:
                if o.kind != kind:
                    continue
                bounds = checked_bounds(o.bounds)
                image_overlay(
                    image_url(o.image, bounds, False), bounds=bounds, opacity=float(o.opacity),
                    interactive=False, pixelated=True, pane=pane,
                    **layer_options(level=o.level, fade=o.fade)).add_to(fg)
        fg.add_to(m)
    _SwipeControl(static_url, group).add_to(m)
    return m
