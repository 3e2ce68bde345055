"""Compare: the two dates side by side, cell details, change map, transitions and exports."""

from ui import warm

warm.wait("pages")  # the map and chart packages, imported in the background (ui.warm)

from functools import partial

import numpy as np
import streamlit as st
from streamlit_folium import st_folium

from lulc_core.bands import eurosat_class_signatures
from lulc_core.change import (DEFAULT_CONFIDENCE, KIND_DEFINITIONS, KIND_NAMES, ChangeKind, ChangeState,
                              ChangeThresholds, measured_change_skill, tuned_min_built_spectral,
                              tuned_min_spectral)
from lulc_core.indices import spectral_indices
from lulc_core.export import cell_features
from lulc_core.cells import STATUS_NAMES, window_signature
from lulc_core.grid import GEOMETRY
from lulc_core.render import STATE_COLOURS, change_legend_items, legend_html
from lulc_core.render import legend_items as legend_items_for
from lulc_core.texts import change_rule_text, change_skill_text, why_cell
from ui.charts import gains_losses_bars, image_html, probability_bars, spectral_signature, transition_heatmap
from ui.compare_maps import LayerGroup, Overlay, layer_options, link_view, make_swipe_map, page_layer
from ui.map_overlays import add_geojson, add_image_overlay
from ui.offline_map import finish_map, make_map
from ui.caches import (change_state_image, change_state_png, current_analysis, download_files, map_home, map_images,
                       map_pngs, window_probabilities)
from ui.session import basemap_enabled, keep, kept

st.title("Compare two dates")

if st.session_state.get("analysis") is None:
    st.info("No analysis yet. Choose an area and dates first, or start a demo from the home page.")
    st.page_link("pages/1_Area_and_dates.py", label="Area and dates", icon=":material/draw:")
    st.stop()

PERSISTENT = {"thr_level": "group", "thr_conf": DEFAULT_CONFIDENCE, "thr_spectral": float(tuned_min_spectral()),
              "thr_built": float(tuned_min_built_spectral()),
              "class_opacity": 0.6, "map_level": "group", "cells_changed_only": False}
for k, v in PERSISTENT.items():
    kept(k, v)

with st.sidebar:
    st.header("Change decision")
    level = st.radio("Count change between", ["group", "class"], key="thr_level", horizontal=True,
                     on_change=lambda: st.session_state.update(map_level=st.session_state.thr_level),  # maps follow
                     format_func=lambda v: "4 land-cover groups" if v == "group" else "10 classes",
                     help="The decision level. Groups: built-up, agriculture and grassland, forest, water; a class "
                          "change inside a group (e.g. crop rotation / season) is not land-cover change at group "
                          "level. Classes: every change between the 10 EuroSAT classes counts. The maps then "
                          "colour the same level; 'Class map colours' below can change that.")
    conf = st.slider("Confidence threshold", 0.0, 1.0, step=0.05, key="thr_conf",
                     help="A cell whose most probable pair of classes (decided jointly for the two dates, at the "
                          "chosen level) is under this is 'uncertain' and left out of the transition tables.")
    min_built = st.slider("Built-up change support (share of 10 m pixels)", 0.0, 1.0, step=0.02, key="thr_built",
                          help="Used only where the deep change evidence is unavailable (too few comparable "
                               "pixels): a cell built-up on either date counts as built-up change when at least this "
                               "share of its comparable 10 m pixels changed. Elsewhere built-up change is decided by "
                               "the counted-change model (see 'Change' below). Tuned on OSCD change maps (leave one "
                               "area out).")
    min_spectral = st.slider("Natural dynamics support (share of 10 m pixels)", 0.0, 1.0, step=0.02,
                             key="thr_spectral",
                             help="Other cells with at least this share of changed 10 m pixels are shown as natural "
                                  "dynamics (not counted). Tuned on OSCD change maps (leave one area out).")
    st.header("Maps")
    map_level = st.radio("Class map colours", ["group", "class"], key="map_level", horizontal=True,
                         format_func=lambda v: "4 groups" if v == "group" else "10 classes",
                         help="What the maps' class layer colours; the change decision above is not affected. The "
                              "opacity below is that of the class layer and of the change state layer.")
    opacity = st.slider("Class map opacity", 0.0, 1.0, step=0.05, key="class_opacity")
    if text := change_skill_text(measured_change_skill()):
        st.caption(text)

thresholds = ChangeThresholds(conf, min_spectral, level, min_built)
if link := st.session_state.get("analysis_link"):  # the page's URL describes this analysis: reload or share it
    wanted = {**link, "level": level, "conf": f"{conf:g}", "spectral": f"{min_spectral:g}", "built": f"{min_built:g}"}
    if {k: st.query_params.get(k) for k in wanted} != wanted:  # the selected cell stays (the maps keep the view)
        st.query_params.from_dict({**wanted, **({"cell": st.query_params["cell"]} if "cell" in st.query_params else {})})
    st.session_state.restored_link = {k: v for k, v in wanted.items()}
an = current_analysis(thresholds)
key = st.session_state.analysis_key
a, b, ch = an.a, an.b, an.change
grid = an.grid
names = ch.class_names
label_a, label_b = f"A: {a.date}", f"B: {b.date}"

images = map_images(key, an)

kinds = ch.kind_areas_ha()
m = st.columns(5)
m[0].metric("Area", f"{an.aoi.area_ha:,.0f} ha", help=f"{int((a.classes.area_ha > 0).sum())} cells of "
            f"{grid.cell_px * grid.resolution:.0f} m on {grid.crs}")
m[1].metric("Changed (counted)" if level == "group" else "Changed (counted, classes)", f"{kinds['land-cover change'] + kinds['built-up change']:,.0f} ha",
            help=f"land-cover change {kinds['land-cover change']:,.0f} ha: "
                 f"{KIND_DEFINITIONS[ChangeKind.LAND_COVER]}; built-up change {kinds['built-up change']:,.0f} ha: "
                 f"{KIND_DEFINITIONS[ChangeKind.BUILT_UP]}")
m[2].metric("Natural dynamics", f"{kinds['natural dynamics']:,.0f} ha", help=KIND_DEFINITIONS[ChangeKind.NATURAL])
m[3].metric("Unchanged", f"{kinds['unchanged']:,.0f} ha",
            help=f"{KIND_DEFINITIONS[ChangeKind.UNCHANGED]}. The two dates' classifiers alone would have changed "
                 f"group on {ch.independent_flip_ha:,.0f} ha that the joint decision keeps")
m[4].metric("Uncertain (left out)", f"{kinds['uncertain']:,.0f} ha", help=KIND_DEFINITIONS[ChangeKind.UNCERTAIN])
if note := an.season_note:
    st.warning(note, icon=":material/calendar_month:")
if level == "group" and ch.within_group_ha > 0:
    st.caption(f"Class changes inside a group ({ch.within_group_ha:,.0f} ha, e.g. crop rotation / season) are shown in "
               "the class transition table but not counted as land-cover change.")
st.caption(" ".join(f"**{KIND_NAMES[k].capitalize()}**: {KIND_DEFINITIONS[k]}." for k in KIND_DEFINITIONS))
st.caption(f"Date A: {a.scene.label} (window {a.window}) | Date B: {b.scene.label} (window {b.window})"
           + (f" | processing units {an.processing_units:g}" if an.provider == "sentinelhub" else ""))
for n in an.notes:
    st.warning(n)
for n in an.aoi.notes:  # e.g. a link whose polygon is not kept here: its bounding box was used
    st.caption(f"Area: {n}")

legend_items = legend_items_for(map_level)
legend_title = "Map colours: land-cover groups" if map_level == "group" else "Map colours: 10 EuroSAT classes"

# -- the selected cell: one source of truth (st.session_state.cell), set by a map click or the list
inside_cells = set(zip(*map(lambda v: v.tolist(), np.nonzero(a.classes.area_ha > 0))))
scores = np.where(np.isnan(ch.score), -1, ch.score)
ranked = sorted(inside_cells, key=lambda rc: (-scores[rc], rc))
if st.session_state.get("cell") not in inside_cells:
    st.session_state.cell = ranked[0]
select_key = f"cell_select_{key}"
group = f"compare-{key}"  # the maps of this analysis: one view, one set of layer choices
MAP_KEYS = ("compare_map_0", "compare_map_1", "compare_swipe", "compare_change")
MAP_HEIGHT = 600


def select_from_list() -> None:
    st.session_state.cell = st.session_state[select_key]


def select_from_click(map_key: str) -> None:
    """A click on a map (st_folium's on_change, before the rerun) selects the cell under it."""
    clicked = (st.session_state.get(map_key) or {}).get("last_clicked")
    analysis = st.session_state.get("analysis")
    if not clicked or analysis is None:
        return
    hit = analysis.grid.cell_at(clicked["lng"], clicked["lat"])
    if hit is not None and analysis.a.classes.area_ha[hit] > 0:
        st.session_state.cell = hit


# -- maps: built the same on every run (their iframes stay); what a click or a widget changes goes
# through feature_group_to_add; pan, zoom, layer choices and the swipe divider stay in the browser
features = cell_features(ch)
changed_features = {"type": "FeatureCollection",
                    "features": [f for f in features["features"] if f["properties"]["change"] == "changed"]}
(s_ll, w_ll), (n_ll, e_ll) = images["tc_ll"][0][1]
home = map_home(key)  # a shared link's view, else the maps fit the area
change_ll = change_state_image(key, an)
pngs = map_pngs(key, an)
change_png = change_state_png(key, an)
CHANGE_LAYER = ("change state by kind (red land-cover, purple built-up, blue natural dynamics, grey unchanged, "
                "amber uncertain)")
LAYER_NAMES = {"tc": "true colour", "cls": "class map"}


def new_map():
    fm = make_map(home["center"] if home else ((s_ll + n_ll) / 2, (w_ll + e_ll) / 2), home["zoom"] if home else 13,
                  basemap=basemap_enabled())
    if home is None:
        fm.fit_bounds([[s_ll, w_ll], [n_ll, e_ll]])
    return fm


def show_map(fm, map_key: str, selected: dict) -> None:
    """Link the map with the others, then draw it; only a click reports back (and reruns the fragment)."""
    link_view(fm, group, f"{home['center'][0]},{home['center'][1]},{home['zoom']}" if home else None)
    finish_map(fm)
    st_folium(fm, key=map_key, height=MAP_HEIGHT, width="stretch", returned_objects=["last_clicked"],
              feature_group_to_add=page_layer(selected, opacity, map_level),
              on_change=partial(select_from_click, map_key))


def date_map(i: int):
    fm = new_map()
    add_image_overlay(fm, pngs["tc_ll"][i], images["tc_ll"][i][1], LAYER_NAMES["tc"], 1.0, **layer_options("tc"))
    classes = LayerGroup(LAYER_NAMES["cls"], "cls")
    for lv in ("group", "class"):
        add_image_overlay(classes, pngs["cls_ll"][lv][i], images["cls_ll"][lv][i][1], f"classes ({lv})", 0.0,
                          **layer_options(level=lv))
    classes.add_to(fm)
    add_image_overlay(fm, change_png, change_ll[1], CHANGE_LAYER, 0.6, show=False, **layer_options("change", fade=True))
    add_image_overlay(fm, pngs["spec_ll"], images["spec_ll"][1], "10 m spectral change", 0.9, **layer_options("spec"))
    if changed_features["features"]:
        add_geojson(fm, changed_features, "changed cells",
                    {"color": STATE_COLOURS[ChangeState.CHANGED], "weight": 1.5, "fillOpacity": 0.0},
                    tooltip_fields=["class_a", "class_b", "transition", "change_score"],
                    tooltip_aliases=["Date A class", "Date B class", "Transition", "Change score"],
                    **layer_options("cells"))
    return fm


@st.fragment
def maps_and_details() -> None:
    """The maps and the selected cell's details: a click reruns only this."""
    sel_r, sel_c = st.session_state.cell
    if st.session_state.get("analysis_link") and st.query_params.get("cell") != f"{sel_r},{sel_c}":
        st.query_params["cell"] = f"{sel_r},{sel_c}"  # the link holds the selection (the view is kept by the maps)
    selected = {"type": "Feature", "properties": {"cell": f"row {sel_r}, col {sel_c}"},
                "geometry": grid.to_wgs84(grid.cell_box(sel_r, sel_c)).__geo_interface__}
    st.markdown(f"**{legend_title}**: " + legend_html(legend_items), unsafe_allow_html=True)
    st.caption("The maps move together; switch layers with the layer button on any map (all maps follow). "
               "Click a cell on any map to see its details below.")
    cols = st.columns(2)
    for i, (col, label) in enumerate(zip(cols, (label_a, label_b))):
        with col:
            st.markdown(f"**Date {label}**: true colour, class map, changed cells")
            show_map(date_map(i), MAP_KEYS[i], selected)
    cols = st.columns(2)
    with cols[0]:
        st.markdown(f"**Swipe map**: date A left of the divider ({a.date}), date B right ({b.date}); drag the divider")
        sides = [[Overlay(pngs["tc_ll"][i], images["tc_ll"][i][1], "tc")]
                 + [Overlay(pngs["cls_ll"][lv][i], images["cls_ll"][lv][i][1], "cls", level=lv, opacity=0.0)
                    for lv in ("group", "class")] for i in (0, 1)]
        sm = make_swipe_map(home["center"] if home else ((s_ll + n_ll) / 2, (w_ll + e_ll) / 2),
                            home["zoom"] if home else 13, sides[0], sides[1], LAYER_NAMES, group=group,
                            basemap=basemap_enabled())
        if home is None:
            sm.fit_bounds([[s_ll, w_ll], [n_ll, e_ll]])
        show_map(sm, MAP_KEYS[2], selected)
    with cols[1]:
        st.markdown("**Change map** by kind: " + legend_html(change_legend_items()), unsafe_allow_html=True)
        cm = new_map()
        add_image_overlay(cm, pngs["tc_ll"][1], images["tc_ll"][1][1], "true colour, date B", 1.0)
        add_image_overlay(cm, change_png, change_ll[1], "change by kind", 0.8)
        show_map(cm, MAP_KEYS[3], selected)
    cell_details()


def describe(rc):
    r, c = rc
    la, lb = ch.label_a, ch.label_b  # the joint classification's pair
    fa = names[la[r, c]] if la[r, c] >= 0 else STATUS_NAMES[int(a.classes.status[r, c])].capitalize()
    fb = names[lb[r, c]] if lb[r, c] >= 0 else STATUS_NAMES[int(b.classes.status[r, c])].capitalize()
    s = ch.score[r, c]
    return (f"Row {r}, col {c}: {fa} -> {fb} ({KIND_NAMES[int(ch.kind[r, c])]}"
            + ("" if np.isnan(s) else f", change score {s:.2f}") + ")")


def cell_details() -> None:
    """The selected cell: the list, why it is what it is, its probabilities, spectra and true colour."""
    st.subheader("Cell details")
    only_changed = st.toggle("Changed cells only", key="cells_changed_only")
    keep(*PERSISTENT)
    pool = [rc for rc in ranked if ch.state[rc] == ChangeState.CHANGED] if only_changed else ranked
    options = pool[:200]
    if st.session_state.cell not in options:
        options = [st.session_state.cell] + options
    st.session_state[select_key] = st.session_state.cell  # the list shows the selection, never overrides it
    st.selectbox("Cell (or click one on a map), sorted by change score" + (", changed only" if only_changed else ""),
                 options, format_func=describe, key=select_key, on_change=select_from_list)
    r, c = st.session_state.cell
    y0, x0 = GEOMETRY.window_around(grid, r, c)
    pa, pb = window_probabilities(key, an, y0, x0)
    st.markdown(why_cell(ch, r, c))
    st.caption(f"Charts: the {GEOMETRY.window_px} x {GEOMETRY.window_px} px ({GEOMETRY.window_px * grid.resolution:.0f} m) "
               "window centred on the cell, classified on its own by the per-window model.")
    d1, d2, d3 = st.columns([2, 2, 1])
    with d1:
        st.markdown("**Class probabilities** (calibrated)")
        if pa is None and pb is None:
            st.info("Too little data in this window on either date.")
        st.plotly_chart(probability_bars(pa, pb, (label_a, label_b), conf, names), width="stretch", key="prob_bars")
    with d2:
        st.markdown("**Spectral signature** (13 bands, top-of-atmosphere reflectance)")
        sig_a, sig_b = window_signature(a.scene, y0, x0), window_signature(b.scene, y0, x0)
        top = list(dict.fromkeys(names[int(np.argmax(p))] for p in (pa, pb) if p is not None))
        st.plotly_chart(spectral_signature(sig_a, sig_b, (label_a, label_b), eurosat_class_signatures(), top),
                        width="stretch", key="spectral_plot")
        ia, ib = spectral_indices(sig_a), spectral_indices(sig_b)
        st.markdown(" | ".join(f"**{k}** A {ia[k]:+.2f} / B {ib[k]:+.2f}" for k in ia),
                    help="NDVI = (B08-B04)/(B08+B04) vegetation; NDWI = (B03-B08)/(B03+B08) open water; "
                         "NDBI = (B11-B08)/(B11+B08) built-up and bare soil")
    with d3:
        st.markdown("**True colour**")
        for img, lab in zip(images["tc"], (label_a, label_b)):
            st.markdown(image_html(np.repeat(np.repeat(img[y0:y0 + GEOMETRY.window_px, x0:x0 + GEOMETRY.window_px],
                                                       2, 0), 2, 1), lab),
                        unsafe_allow_html=True)
    st.caption(f"Probabilities are flagged low-confidence when the top class is under {conf:.2f}. "
               "Dotted lines: mean signature of the EuroSAT classes (13-band EuroSAT files).")


maps_and_details()

# -- change ----------------------------------------------------------------------------------------
st.subheader("Change")
st.markdown(change_rule_text(thresholds, ch.counted_model), unsafe_allow_html=True)
st.markdown(f"**Gains and losses per {'group' if level == 'group' else 'class'} (ha)**")
st.plotly_chart(gains_losses_bars(ch, level), width="stretch", key="gains_losses")
st.markdown(f"**From-to transitions between groups (hectares)**: rows = date A, columns = date B. Counted: "
            f"{ch.compared_ha:,.0f} ha confident on both dates; left out: {ch.left_out_ha:,.0f} ha uncertain.")
st.plotly_chart(transition_heatmap(ch, "group"), width="stretch", key="group_transitions")
with st.expander("Transitions between the 10 classes (hover: land-cover change or e.g. crop rotation / season)"):
    st.plotly_chart(transition_heatmap(ch, "class"), width="stretch", key="class_transitions")
    st.plotly_chart(gains_losses_bars(ch, "class"), width="stretch", key="class_gains_losses")

# -- exports ----------------------------------------------------------------------------------------
st.subheader("Downloads")
for col, (label, (data, file_name, mime)) in zip(st.columns(6), download_files(key, an).items()):
    col.download_button(label, data, file_name, mime, key=f"dl_{file_name}")
st.caption(f"Class GeoTIFFs: one pixel per {grid.cell_m:.0f} m cell, band 1 = class (colour table in the .aux.xml), bands 2-11 = "
           "probabilities x 10000 (scale 1e-4). Change GeoTIFFs: change_10m.tif (spectral change magnitude and "
           "1/0 per 10 m pixel) and change_cells.tif (state, change score, spectral share). GeoJSON: one "
           "polygon per cell with both dates' classes, groups, probabilities, change state and transition kind.")
