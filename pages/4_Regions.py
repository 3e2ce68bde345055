"""Regions: batches of tiles on Dask for areas larger than one analysis, their progress, and a
finished region output opened as maps, totals and cell details."""

from ui import warm

warm.wait("pages")  # the map and chart packages, imported in the background (ui.warm)

from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from lulc_core.batch import cancel_batch, cell_at, list_batches
from lulc_core.classes import CLASS_NAMES
from lulc_core.errors import LulcError
from lulc_core.render import KIND_COLOURS, legend_html
from lulc_core.change import KIND_NAMES
from ui.charts import probability_bars
from ui.map_overlays import add_image_overlay
from ui.offline_map import finish_map, make_map
from ui.regions import opened_region
from ui.session import basemap_enabled, batch_root, show_error

st.title("Regions")
st.caption("Areas larger than one analysis run as batches of tiles (each in its own UTM zone) on a Dask cluster: "
           "started from the Area page or with `python -m lulc_core compare --tiles`. Finished tiles are kept: a "
           "cancelled or failed batch started again computes only the missing ones.")


@st.fragment(run_every=3)
def batches() -> None:
    """The server's batches, refreshed every few seconds while any runs."""
    found = list_batches(batch_root())
    if not found:
        st.info("No regional batch yet. On the Area page, an area above the single-analysis limit offers one.")
        return
    for b in found[:12]:
        req = b.request
        cols = st.columns([3, 4, 1, 1])
        cols[0].markdown(f"**{req.get('name', b.folder.name)}**  \n{req.get('window_a')} vs {req.get('window_b')}")
        if b.state == "running":
            text = (f"{b.stage}: {b.done}/{b.total} tiles, {b.km2_per_s:,.1f} km2/s"
                    + (f", about {b.minutes_left:.1f} min left" if b.minutes_left is not None else "")
                    if b.stage else "starting the cluster...")
            cols[1].progress(b.fraction, text=text)
            if cols[2].button("Cancel", key=f"cancel_{b.folder.name}", help="Stop; finished tiles are kept"):
                cancel_batch(b.folder)
                st.rerun(scope="fragment")
        else:
            cols[1].write(f"{b.state}" + (f" (exit code {b.returncode})" if b.state == "failed" else ""))
            if b.state != "finished" and b.last_line:
                cols[1].caption(b.last_line[-200:])
        if b.state == "finished" and cols[3].button("Open", key=f"open_{b.folder.name}"):
            st.session_state.region_out = str(b.folder / "out")
            st.rerun()


st.subheader("Batches")
batches()

st.subheader("Open a region")
typed = st.text_input("Or a region output folder (from `compare --tiles --out DIR`)", key="region_folder",
                      placeholder="/path/to/DIR")
if typed and st.session_state.get("region_out") != typed and st.button("Open this folder", key="open_typed"):
    st.session_state.region_out = typed

out = st.session_state.get("region_out")
if not out:
    st.stop()
try:
    region, layers = opened_region(out)
except (LulcError, OSError) as exc:
    show_error(exc)
    st.stop()

s = region.summary
st.markdown(f"**{s.get('name', Path(out).parent.name)}**: {s.get('area_km2', 0):,.0f} km2 in {s.get('tiles')} tiles "
            f"over {len(region.zones)} UTM zone(s); {s.get('km2_per_s', 0):,.2f} km2/s. Folder: `{out}`")
report = Path(out) / "report.html"
if report.exists():
    st.download_button("Download the report (HTML)", report.read_bytes(), file_name=f"{s.get('name') or 'region'}-report.html",
                       mime="text/html", key="region_report")
if s.get("tiles_failed"):
    st.warning(f"{len(s['tiles_failed'])} tile(s) failed and are missing from the maps: "
               + "; ".join(f"{k} {v.get('bounds_wgs84', '')}" for k, v in list(s['tiles_failed'].items())[:5]))
left, right = st.columns([3, 2])
with left:
    st.markdown(legend_html([(c, KIND_NAMES[k]) for k, c in KIND_COLOURS.items()]), unsafe_allow_html=True)
    centre = None
    for imgs in layers.values():
        for _, ((south, west), (north, east)) in imgs:
            centre = ((south + north) / 2, (west + east) / 2)
    m = make_map(centre or (43.7, 10.4), 11, basemap=basemap_enabled())
    for name, label, shown in (("classes_a", "classes, date A", False), ("classes_b", "classes, date B", False),
                               ("change", "change by kind", True)):
        for i, (img, bounds) in enumerate(layers[name]):
            add_image_overlay(m, img, bounds, label if i == 0 else f"{label} ({i + 1})", 0.8, show=shown)
    click = st_folium(finish_map(m), key="region_map", height=560, width="stretch",
                      returned_objects=["last_clicked"])
with right:
    st.markdown("**Hectares by kind**")
    st.dataframe(pd.DataFrame(region.kinds), hide_index=True, width="stretch")
    rows = [r for r in region.transitions if float(r.get("hectares", 0) or 0) > 0]
    rows.sort(key=lambda r: -float(r["hectares"]))
    st.markdown("**Largest from-to transitions (hectares)**")
    st.dataframe(pd.DataFrame(rows[:15]), hide_index=True, width="stretch")

point = (click or {}).get("last_clicked")
if point:
    cell = cell_at(Path(out), point["lng"], point["lat"])
    if cell is None:
        st.info("That point lies outside the region's cells.")
    else:
        st.markdown(f"**Cell** row {cell['row']}, column {cell['col']} (EPSG:{cell['zone']}): "
                    f"{cell['kind'] or cell['state']}; {cell['class_a'] or 'not classified'} -> "
                    f"{cell['class_b'] or 'not classified'}; spectral change on {cell['spectral_share']:.0%} of its "
                    f"10 m pixels; P(change) {cell['p_change']:.2f}"
                    + (f"; P(counted change) {cell['p_counted']:.2f} from the 10 m and deep change evidence"
                       if cell["p_counted"] == cell["p_counted"] else ""))
        st.plotly_chart(probability_bars(cell["probs_a"], cell["probs_b"], ("date A", "date B"), 0.6, CLASS_NAMES),
                        key="region_probs")
