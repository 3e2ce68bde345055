"""Compare: the two dates side by side, patch details, change map, transitions and exports."""

import base64
import io
import json
import zipfile

import numpy as np
import streamlit as st
import streamlit.components.v1 as components
from streamlit_folium import st_folium

from lulc_core.bands import eurosat_class_signatures
from lulc_core.change import DEFAULT_CONFIDENCE, STATE_NAMES, ChangeThresholds, measured_change_skill
from lulc_core.classes import EUROSAT_CLASSES
from lulc_core.export import html_report, patch_features, transition_matrix_csv, write_classmap_geotiff
from lulc_core.patches import STATUS_NAMES, patch_at, patch_signature
from lulc_core.render import (change_map_rgba, class_map_rgba, joint_true_colour, only_patches, patch_image_transform,
                              patch_thumbnail, png_bytes, to_latlon)
from ui.charts import class_area_bars, probability_bars, spectral_signature, transition_heatmap
from ui.offline_map import add_geojson, add_image_overlay, make_map
from ui.session import basemap_enabled, current_analysis, get_classifier


st.title("Compare two dates")

if st.session_state.get("analysis") is None:
    st.info("No analysis yet. Choose an area and dates first, or start a demo from the home page.")
    st.page_link("pages/1_Area_and_dates.py", label="Area and dates", icon=":material/draw:")
    st.stop()

with st.sidebar:
    st.header("Change thresholds")
    conf = st.slider("Confidence threshold", 0.0, 1.0, DEFAULT_CONFIDENCE, 0.05, key="thr_conf",
                     help="A patch whose top probability is under this on either date is 'uncertain'.")
    min_score = st.slider("Minimum change score", 0.0, 1.0, 0.0, 0.05, key="thr_score",
                          help="Change score = total-variation distance between the two dates' probabilities "
                               "(0..1). A confident class flip counts as 'changed' only above this score.")
    if (skill := measured_change_skill()) is not None:
        st.caption(f"Against OSCD urban change maps the change score ranks truly changed patches with AUROC "
                   f"{skill['auroc']:.2f} (F1 of 'changed' {skill['f1']:.2f}); small construction rarely flips a "
                   f"640 m patch's class. For urbanisation, look at each patch's built-up change (AUROC "
                   f"{skill['built_up_auroc']:.2f}). See docs/CHANGE_EVALUATION.md.")
    opacity = st.slider("Class map opacity", 0.0, 1.0, 0.6, 0.05, key="class_opacity")

an = current_analysis(ChangeThresholds(conf, min_score))
key = st.session_state.analysis_key
a, b, ch = an.a, an.b, an.change
grid = a.patches.grid
names = ch.class_names
label_a, label_b = f"A: {a.scene.dates[0] if a.scene.dates else a.window}", f"B: {b.scene.dates[0] if b.scene.dates else b.window}"

# Rendered images depend only on the analysis (not on thresholds or widgets): keep them per analysis.
renders = st.session_state.setdefault("renders", {})
if renders.get("key") != key:
    tc_a, tc_b = joint_true_colour(a.scene, b.scene)
    scale = 16
    ptr = patch_image_transform(grid, scale)
    renders.clear()
    renders.update(key=key, tc=(tc_a, tc_b),
                   tc_ll=tuple(to_latlon(only_patches(tc, a.classes.area_ha > 0, grid.patch_px), grid.crs, grid.transform)
                               for tc in (tc_a, tc_b)),
                   cls_ll=(to_latlon(class_map_rgba(a.classes, scale=scale), grid.crs, ptr),
                           to_latlon(class_map_rgba(b.classes, scale=scale), grid.crs, ptr)))

features = patch_features(ch)  # depends on the thresholds: cheap, rebuilt each run
counts, areas = ch.state_counts(), ch.state_areas_ha()
m = st.columns(5)
m[0].metric("Area", f"{an.aoi.area_ha:,.0f} ha", help=f"{grid.n_patches} patches on {grid.crs}")
m[1].metric("Changed", f"{areas['changed']:,.0f} ha", help=f"{counts['changed']} patches")
m[2].metric("Unchanged", f"{areas['unchanged']:,.0f} ha", help=f"{counts['unchanged']} patches")
m[3].metric("Uncertain", f"{areas['uncertain']:,.0f} ha",
            help=f"{counts['uncertain']} patches: cloudy / no data, or top probability under {conf:.2f}")
m[4].metric("Processing units", f"{an.processing_units:g}", help=f"source: {an.provider}")
st.caption(f"Date A: {a.scene.label} (window {a.window}) | Date B: {b.scene.label} (window {b.window})")
for note in an.notes:
    st.warning(note)

legend = " ".join(f'<span style="display:inline-block;width:11px;height:11px;background:{c.colour};'
                  f'border:1px solid #999;margin-left:8px"></span> {c.name}' for c in EUROSAT_CLASSES)
st.markdown(f'<div style="font-size:13px">{legend} <span style="display:inline-block;width:11px;height:11px;'
            'background:#fff;border:1px solid #999;margin-left:8px"></span> cloudy '
            '<span style="display:inline-block;width:11px;height:11px;background:#282828;margin-left:8px">'
            '</span> no data</div>', unsafe_allow_html=True)

# -- side-by-side maps --------------------------------------------------------------------------
(s_ll, w_ll), (n_ll, e_ll) = renders["tc_ll"][0][1]
center = ((s_ll + n_ll) / 2, (w_ll + e_ll) / 2)
grid_style = {"color": "#333333", "weight": 0.5, "fillOpacity": 0.0}
clicked = None
cols = st.columns(2)
for i, (col, label) in enumerate(zip(cols, (label_a, label_b))):
    with col:
        st.markdown(f"**{label}**: true colour and class map (click a patch)")
        fm = make_map(center, 13, basemap=basemap_enabled())
        fm.fit_bounds([[s_ll, w_ll], [n_ll, e_ll]])
        add_image_overlay(fm, renders["tc_ll"][i][0], renders["tc_ll"][i][1], "true colour", 1.0)
        add_image_overlay(fm, renders["cls_ll"][i][0], renders["cls_ll"][i][1], "class map", opacity)
        add_geojson(fm, features, "patches", grid_style,
                    tooltip_fields=["class_a", "class_b", "change"])
        out = st_folium(fm, key=f"compare_map_{i}", height=420, width="stretch",
                        returned_objects=["last_clicked"])
        if out and out.get("last_clicked"):
            clicked = (i, out["last_clicked"])

# -- swipe view ---------------------------------------------------------------------------------
with st.expander("Swipe view (drag the slider to compare A and B)", expanded=False):
    which = st.radio("Layer", ["true colour", "class map"], horizontal=True, key="swipe_layer")
    if which == "true colour":
        img_a, img_b = renders["tc"]
    else:
        img_a, img_b = (class_map_rgba(x.classes, scale=grid.patch_px // 4) for x in (a, b))
    ua, ub = (base64.b64encode(png_bytes(x)).decode() for x in (img_a, img_b))
    h, w = img_a.shape[:2]
    width = 700
    height = int(width * h / w)
    components.html(f"""
<div style="position:relative;width:{width}px;height:{height}px;font-family:sans-serif">
 <img src="data:image/png;base64,{ub}" style="position:absolute;width:{width}px;height:{height}px;image-rendering:pixelated">
 <div id="clip" style="position:absolute;width:50%;height:{height}px;overflow:hidden">
  <img src="data:image/png;base64,{ua}" style="width:{width}px;height:{height}px;image-rendering:pixelated"></div>
 <div id="bar" style="position:absolute;left:50%;top:0;width:2px;height:{height}px;background:#fff"></div>
 <span style="position:absolute;left:6px;top:6px;background:#fff8;padding:2px 6px">{label_a}</span>
 <span style="position:absolute;right:6px;top:6px;background:#fff8;padding:2px 6px">{label_b}</span>
</div>
<input type="range" min="0" max="100" value="50" style="width:{width}px" oninput="
 document.getElementById('clip').style.width=this.value+'%';document.getElementById('bar').style.left=this.value+'%';">
""", height=height + 40)

# -- patch details -----------------------------------------------------------------------------
st.subheader("Patch details")
inside = [(f["properties"]["row"], f["properties"]["col"]) for f in features["features"]]
if clicked is not None:
    hit = patch_at(grid, clicked[1]["lng"], clicked[1]["lat"])
    if hit is not None and hit in inside and st.session_state.get("last_click") != clicked:
        st.session_state.patch = hit
    st.session_state.last_click = clicked
if st.session_state.get("patch") not in inside:
    scores = np.where(np.isnan(ch.score), -1, ch.score)
    ranked = sorted(inside, key=lambda rc: -scores[rc])
    st.session_state.patch = ranked[0]
la, lb = a.classes.labels, b.classes.labels
built = ch.built_up_change


def describe(rc):
    r, c = rc
    fa = names[la[r, c]] if la[r, c] >= 0 else STATUS_NAMES[int(a.classes.status[r, c])]
    fb = names[lb[r, c]] if lb[r, c] >= 0 else STATUS_NAMES[int(b.classes.status[r, c])]
    s, u = ch.score[r, c], built[r, c]
    return (f"row {r}, col {c}: {fa} -> {fb} ({STATE_NAMES[int(ch.state[r, c])]}"
            + ("" if np.isnan(s) else f", score {s:.2f}, built-up {u:+.2f}") + ")")


patch = st.selectbox("Patch (or click one on a map); sorted by position", inside, format_func=describe,
                     index=inside.index(st.session_state.patch), key=f"patch_select_{key}")
if patch != st.session_state.patch:
    st.session_state.patch = patch
r, c = st.session_state.patch
pa = a.classes.probs[r, c] if la[r, c] >= 0 else None
pb = b.classes.probs[r, c] if lb[r, c] >= 0 else None
d1, d2, d3 = st.columns([2, 2, 1])
with d1:
    st.markdown("**Class probabilities** (calibrated)")
    if pa is None and pb is None:
        st.info("Not classified on either date (cloudy or no data).")
    st.plotly_chart(probability_bars(pa, pb, (label_a, label_b), conf, names), width="stretch",
                    key="prob_bars")
with d2:
    st.markdown("**Spectral signature** (13 bands, top-of-atmosphere reflectance)")
    sig_a, sig_b = patch_signature(a.scene, grid, r, c), patch_signature(b.scene, grid, r, c)
    top = [names[x] for x in {la[r, c], lb[r, c]} if x >= 0]
    st.plotly_chart(spectral_signature(sig_a, sig_b, (label_a, label_b), eurosat_class_signatures(), top),
                    width="stretch", key="spectral_plot")
with d3:
    st.markdown("**True colour**")
    st.image(patch_thumbnail(renders["tc"][0], r, c, grid.patch_px, 2), caption=label_a)
    st.image(patch_thumbnail(renders["tc"][1], r, c, grid.patch_px, 2), caption=label_b)
st.caption(f"Probabilities are flagged low-confidence when the top class is under {conf:.2f}. "
           "Dotted lines: mean signature of the EuroSAT classes (13-band EuroSAT files); "
           "the patch's two most likely classes are highlighted, others can be switched on in the legend.")

# -- change ----------------------------------------------------------------------------------------
st.subheader("Change")
c1, c2 = st.columns([1, 1])
with c1:
    st.markdown("**Change map**: red = changed, grey = unchanged, amber = uncertain")
    st.image(change_map_rgba(ch, scale=grid.patch_px // 4), width="stretch")
with c2:
    st.markdown("**Class areas (ha)**")
    st.plotly_chart(class_area_bars(ch, (label_a, label_b)), width="stretch", key="area_bars")
st.markdown("**From-to transitions (hectares)**: rows = date A, columns = date B")
st.plotly_chart(transition_heatmap(ch), width="stretch", key="transition_heatmap")

# -- exports ----------------------------------------------------------------------------------------
st.subheader("Downloads")


def geotiff_zip(classes, label: str) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        tif = write_classmap_geotiff(Path(tmp) / f"classes_{label}.tif", classes)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.write(tif, tif.name)
            zf.write(tif.with_name(tif.name + ".aux.xml"), tif.name + ".aux.xml")
        return buf.getvalue()


exports = renders.setdefault("exports", {})
ekey = (conf, min_score)
if ekey not in exports:  # built once per analysis and thresholds, not on every rerun
    exports.clear()
    exports[ekey] = {
        "tif_a": geotiff_zip(a.classes, "a"), "tif_b": geotiff_zip(b.classes, "b"),
        "geojson": json.dumps(features), "csv": transition_matrix_csv(ch),
        "html": html_report(an, get_classifier().meta),
    }
ex = exports[ekey]
e = st.columns(5)
e[0].download_button("GeoTIFF date A", ex["tif_a"], "classes_a.zip", "application/zip", key="dl_tif_a")
e[1].download_button("GeoTIFF date B", ex["tif_b"], "classes_b.zip", "application/zip", key="dl_tif_b")
e[2].download_button("GeoJSON patches", ex["geojson"], "patches.geojson", "application/geo+json", key="dl_geojson")
e[3].download_button("Transitions CSV", ex["csv"], "transitions_ha.csv", "text/csv", key="dl_csv")
e[4].download_button("HTML report", ex["html"], "report.html", "text/html", key="dl_html")
st.caption("GeoTIFFs: one pixel per patch, band 1 = class (colour table in the .aux.xml inside the zip), "
           "bands 2-11 = probabilities x 10000 (scale 1e-4). GeoJSON: one polygon per patch with both dates' "
           "classes and probabilities, change state, change score, built-up change and area in ha.")
