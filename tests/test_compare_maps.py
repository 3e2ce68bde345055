"""ui.compare_maps: the Compare page's linked maps are the same HTML on every run (so Streamlit keeps
their iframes), their layers carry the tags the browser script uses, and what a click changes goes
apart (st_folium's feature group)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit_folium import _get_map_string, generate_js_hash

from ui.compare_maps import LayerGroup, Overlay, layer_options, link_view, make_swipe_map, page_layer
from ui.map_overlays import add_image_overlay
from ui.offline_map import external_urls, finish_map, make_map
from ui.session import parse_view

STATIC_URL = "/app/static/vendor"
BOUNDS = ((44.9, 6.9), (45.1, 7.1))
IMG = np.zeros((8, 8, 3), np.uint8)


def _date_map():
    m = make_map((45.0, 7.0), 13, static_url=STATIC_URL, basemap=False)
    add_image_overlay(m, IMG, BOUNDS, "true colour", 1.0, **layer_options("tc"))
    classes = LayerGroup("class map", "cls")
    for level in ("group", "class"):
        add_image_overlay(classes, IMG, BOUNDS, f"classes ({level})", 0.0, **layer_options(level=level))
    classes.add_to(m)
    m.fit_bounds([list(BOUNDS[0]), list(BOUNDS[1])])
    link_view(m, "compare-abc")
    return finish_map(m)


def _swipe_map():
    sides = [[Overlay(IMG, BOUNDS, "tc"), Overlay(IMG, BOUNDS, "cls", level="group", opacity=0.0)] for _ in (0, 1)]
    m = make_swipe_map((45.0, 7.0), 13, sides[0], sides[1], {"tc": "true colour", "cls": "class map"},
                       group="compare-abc", static_url=STATIC_URL, basemap=False)
    link_view(m, "compare-abc")
    return finish_map(m)


@pytest.mark.parametrize("build", [_date_map, _swipe_map])
def test_a_map_is_the_same_on_every_run(build):
    """st_folium keys its component by the map's script: the same script keeps the iframe."""
    def component_key(m) -> str:  # as st_folium computes it (it renders the map first)
        m.get_root().render()
        m.render()
        return generate_js_hash(_get_map_string(m), "k")

    keys = {component_key(build()) for _ in range(3)}
    assert len(keys) == 1
    assert external_urls(build()) == []


def test_layers_carry_their_tags():
    html = _swipe_map().get_root().render()
    # folium's FeatureGroup passes options as L.featureGroup's layers; LayerGroup passes them as options
    assert html.count('L.featureGroup([],') == 2 and '"lulcLayer": "cls"' in html and '"lulcLevel": "group"' in html
    assert "sideBySide" in html and '"lulc:swipe:" + "compare-abc"' in html and "window.__lulcMap = map" in html
    with pytest.raises(ValueError, match="level"):
        layer_options("cls", level="groups")
    with pytest.raises(ValueError, match="no layer name"):
        make_swipe_map((45.0, 7.0), 13, [Overlay(IMG, BOUNDS, "spec")], [], {"tc": "true colour"},
                       static_url=STATIC_URL, basemap=False)


def test_what_a_click_changes_goes_apart():
    selected = {"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[6.95, 44.95], [6.96, 44.95], [6.96, 44.96], [6.95, 44.95]]]}}
    m = _date_map()
    fg = page_layer(selected, 0.4, "class")
    fg.add_to(m)
    script = m.get_root().render()
    assert '__lulcSettings({"level": "class", "opacity": 0.4})' in script.replace("'", '"') \
        or '__lulcSettings({"opacity": 0.4, "level": "class"})' in script
    assert '"pane": "shadowPane"' in script  # the outline above the images and the swipe panes
    with pytest.raises(ValueError, match="opacity"):
        page_layer(selected, 1.5, "group")
    with pytest.raises(ValueError, match="level"):
        page_layer(None, 0.5, "groups")


def test_a_view_from_a_link():
    assert parse_view("43.7,10.4,14") == {"center": (43.7, 10.4), "zoom": 14}
    for bad in ("43.7,10.4", "91,0,3", "a,b,c", "43.7,10.4,40"):
        with pytest.raises(ValueError, match="bad view"):
            parse_view(bad)
