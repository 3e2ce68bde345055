"""Area and dates: draw / upload / type an AOI, pick two date windows and scenes, run."""

from ui import warm

warm.wait("pages")  # the map and chart packages, imported in the background (ui.warm)

import datetime as dt

import streamlit as st
from streamlit_folium import st_folium

from lulc_core.aoi import AOI
from lulc_core.aoi_readers import aoi_from_geojson, read_aoi_file
from lulc_core.checks import same_window_note
from lulc_core.collection import DEFAULT_COLLECTION
from lulc_core.providers.sentinelhub.costs import estimate_fetch_pu
from lulc_core.errors import LulcError, OutsideCoverageError
from lulc_core.grid import GEOMETRY, PATCH_HA
from lulc_core.pipeline import STAGES
from lulc_core.providers.base import MAX_RUN_AREA_KM2, check_area_size
from lulc_core.scene import DateWindow, check_window_order
from lulc_core.gazetteer import search_places
from lulc_core.season import (SEASON_GAP_DAYS, day_of_year_gap, default_windows, holds_any, representative_date,
                              suggest_window_b, window_around)
from ui.charts import acquisition_timeline, clicked_date
from ui.map_overlays import add_geojson, add_image_overlay
from ui.offline_map import finish_map, make_map
from ui.date_keys import enter_commits_dates
from ui.regions import region_batch_offer
from ui.session import (analyse, basemap_enabled, demo_place, demo_place_list, demo_presets, get_provider,
                        provider_kind, pu_budget, queue_notice, search_cache, session_spend, show_error)


st.title("Area and dates")
kind = provider_kind()
provider = get_provider(kind)
st.caption(f"Data source: **{'bundled demo scenes' if kind == 'demo' else 'Sentinel Hub'}**"
           + (f" (areas: {'; '.join(demo_place(k) for k in demo_presets())})" if kind == "demo" else ""))



@st.cache_data(show_spinner=False)
def demo_previews() -> dict:
    """Small true-colour previews of the demo scenes, so the map shows imagery even offline."""
    demo = get_provider("demo")
    return {name: demo.preview(name) for name in demo.areas()}


def use_demo_area(area: str) -> None:
    """Make a demo area the AOI, with the windows around its two acquisitions (a button callback)."""
    st.session_state.aoi = get_provider("demo").area_aoi(area)
    st.session_state.window_a, st.session_state.window_b = demo_presets()[area]
    for label, w in zip("AB", demo_presets()[area]):
        st.session_state[f"dates_{label}"] = (w.start, w.end)
        st.session_state.pop(f"acq_choice_{label}", None)
    st.session_state.aoi_how, st.session_state.aoi_demo_area = "Demo area", area


def window_of(label: str) -> DateWindow | None:
    """Date ``label``'s window as the page holds it now (its date field, else the last one used)."""
    rng = st.session_state.get(f"dates_{label}")
    if isinstance(rng, (tuple, list)) and len(rng) == 2 and rng[0] <= rng[1]:
        return DateWindow(rng[0], rng[1])
    return st.session_state.get(f"window_{label.lower()}")


def set_window(label: str, w: DateWindow) -> None:
    st.session_state[f"dates_{label}"] = (w.start, w.end)
    st.session_state[f"window_{label.lower()}"] = w
    st.session_state.pop(f"acq_choice_{label}", None)


def timeline_clicked() -> None:
    """A click on an acquisition of the timeline: its month (narrowed off the other window) becomes
    the window of the date the "Clicking a date sets" choice names."""
    event = st.session_state.get("acq_timeline") or {}
    day = clicked_date((event.get("selection") or {}).get("points") or [])
    if day is None:
        return
    label = "B" if st.session_state.get("timeline_sets") == "date B" else "A"
    set_window(label, window_around(day, avoid=window_of("B" if label == "A" else "A"), today=dt.date.today()))


# -- 1. the area ------------------------------------------------------------------------------
st.subheader("1. Area of interest")
how = st.radio("How", ["Draw on the map", "Upload GeoJSON / KML", "Type a bounding box", "Demo area"],
               horizontal=True, key="aoi_how", label_visibility="collapsed")
aoi, aoi_error = st.session_state.get("aoi"), None

if how == "Draw on the map":
    view = aoi.geometry.centroid if aoi is not None else None
    center, zoom, place = ((view.y, view.x) if view is not None else (43.72, 10.40)), 12, None
    find = st.columns([2, 3])
    query = find[0].text_input("Find a place", key="place_query", placeholder="a city or a demo area, e.g. Pisa",
                               help="Cities of 15,000 people or more (GeoNames, offline) and the demo areas; "
                                    "the map moves there")
    if query.strip():
        places = search_places(query, limit=8, demo=demo_place_list())
        if places:
            pick = find[1].selectbox("Places found", range(len(places)), format_func=lambda i: places[i].label,
                                     key="place_pick")
            place = places[pick if pick is not None and pick < len(places) else 0]
            center, zoom = (place.lat, place.lon), 13 if place.area else 12
        else:
            find[1].info(f"No place starts with {query.strip()!r}.")
    m = make_map(center, zoom, draw=True, basemap=basemap_enabled())
    if place is not None:
        import folium

        folium.CircleMarker((place.lat, place.lon), radius=7, color="#d7301f", weight=2, fill=True,
                            fill_opacity=0.6, tooltip=place.label).add_to(m)
    if aoi is not None:
        add_geojson(m, aoi.to_geojson(), "current AOI", {"color": "#1f6b2a", "weight": 2, "fillOpacity": 0.05})
    if kind == "demo":
        for name, (img, (w, s_, e, n)) in demo_previews().items():
            add_image_overlay(m, img, ((s_, w), (n, e)), f"demo scene: {name}", 0.85)
        for name, a in provider.areas().items():
            add_geojson(m, {"type": "Feature", "properties": {"area": a.get("place", name)},
                            "geometry": a["footprint"].__geo_interface__},
                        f"demo: {name}", {"color": "#3d8fd9", "weight": 1, "dashArray": "4", "fillOpacity": 0.02},
                        tooltip_fields=["area"], tooltip_aliases=["Demo area"])
    st.caption("Use the rectangle or polygon tool on the left of the map to draw your area; "
               "dashed blue outlines (with image previews) are the demo scenes.")
    out = st_folium(finish_map(m), key="aoi_map", height=460, width="stretch",
                    returned_objects=["last_active_drawing"])
    drawing = (out or {}).get("last_active_drawing")
    if drawing and drawing.get("geometry"):
        try:
            drawn = aoi_from_geojson(drawing["geometry"], name="drawn area")
            if aoi is None or not drawn.geometry.equals(aoi.geometry):
                aoi = drawn
        except LulcError as exc:
            aoi_error = str(exc)
elif how == "Upload GeoJSON / KML":
    up = st.file_uploader("GeoJSON, KML, KMZ or zipped shapefile (.zip with .shp, .shx, .dbf, .prj)",
                          type=["geojson", "json", "kml", "kmz", "zip"], key="aoi_upload")
    if up is not None:
        try:
            aoi = read_aoi_file(up.name, up.getvalue())
            for note in aoi.notes:
                st.warning(f"{up.name}: {note}")
        except Exception as exc:  # AOIError by contract; anything else still gets a message, not a traceback
            aoi_error = f"{up.name}: {exc}" if isinstance(exc, LulcError) else \
                f"{up.name} could not be read ({type(exc).__name__}: {exc})"
            aoi = None  # a failed upload leaves no area behind (the previous one would read as this file's)
            st.session_state.aoi = None
elif how == "Type a bounding box":
    b = aoi.bounds if aoi is not None else (10.37, 43.68, 10.43, 43.75)
    c = st.columns(4)
    vals = [c[i].number_input(lbl, value=float(b[i]), format="%.5f", key=f"bbox_{lbl}")
            for i, lbl in enumerate(["West (lon)", "South (lat)", "East (lon)", "North (lat)"])]
    if st.button("Use this bounding box", key="bbox_apply"):
        try:
            aoi = AOI.from_bbox(*vals)
        except LulcError as exc:
            aoi_error = str(exc)
else:
    area = st.selectbox("Demo area", list(demo_presets()), key="aoi_demo_area", format_func=demo_place)
    if st.button("Use this demo area", key="demo_apply"):
        aoi = get_provider("demo").area_aoi(area)
        st.session_state.window_a, st.session_state.window_b = demo_presets()[area]
        for label, w in zip("AB", demo_presets()[area]):
            st.session_state[f"dates_{label}"] = (w.start, w.end)
        aoi_error = None

if aoi is not None and aoi is not st.session_state.get("aoi"):
    try:
        check_area_size(aoi)  # what one analysis may cover (the providers' limit)
    except LulcError as exc:
        st.session_state.region_aoi = aoi  # too large for one analysis: offered as a regional batch below
        aoi, aoi_error = (None if how.startswith("Upload") else st.session_state.get("aoi")), str(exc)
        if aoi is None:
            st.session_state.aoi = None
if aoi_error:
    st.error(aoi_error)
if st.session_state.get("region_aoi") is not None:
    region_batch_offer(st.session_state.region_aoi, kind)
if aoi is not None and aoi is not st.session_state.get("aoi"):
    st.session_state.aoi = aoi
    st.session_state.region_aoi = None
    st.session_state.pop("acq_choice_A", None)
    st.session_state.pop("acq_choice_B", None)

if aoi is None:
    st.info("No area yet: draw one, upload a file, type a bounding box or pick a demo area.")
    st.stop()

g = aoi.grid
facts = st.columns(4)
facts[0].metric("Area", f"{aoi.area_ha:,.0f} ha", help=f"{aoi.area_km2:,.2f} km2, geodesic")
cells = g.cells(GEOMETRY.cell_px)
facts[1].metric(f"{cells.cell_m:.0f} m cells", f"{cells.n_cells:,}",
                help=f"{cells.rows} rows x {cells.cols} columns of {cells.cell_m ** 2 / 1e4:.2f} ha, each classified "
                     f"from the {GEOMETRY.window_px * g.resolution:.0f} m window around it; {g.n_cells} windows of "
                     f"{GEOMETRY.window_px}x{GEOMETRY.window_px} px ({PATCH_HA:.2f} ha), {g.crs}")
if kind == "sentinelhub":  # processing units matter only where they are spent
    facts[2].metric("Sentinel Hub cost", f"{2 * estimate_fetch_pu(g):.1f} PU",
                    help="Processing units for both dates with one acquisition each (13 bands + masks); a window "
                         "of several acquisitions is a median composite costing one unit per acquisition read. "
                         "The CDSE free tier has 10,000 PU a month")
    budget = pu_budget()
    if budget.per_session is not None:
        left = max(budget.per_session - session_spend().pu, 0.0)
        st.caption(f"This session has {left:,.1f} of its {budget.per_session:,g} processing units left "
                   "(scenes already in the cache cost nothing).")
else:
    facts[2].metric("Imagery", "Demo scenes", help="The bundled demo scenes: offline, nothing is fetched and "
                                                   "nothing is charged")
facts[3].metric("UTM grid", g.crs)
st.caption(f"AOI: {aoi.name}; bounds {', '.join(f'{v:.4f}' for v in aoi.bounds)} (W, S, E, N); "
           f"limit {MAX_RUN_AREA_KM2:,.0f} km2.")

# -- imagery that exists over the AOI ------------------------------------------------------------
EVERYTHING = DateWindow(dt.date(2015, 6, 23), dt.date.today())
listing_key = (aoi.geometry.wkt, kind)
new_listing = st.session_state.get("acq_listing", (None,))[0] != listing_key
if new_listing:
    try:
        st.session_state.acq_listing = (listing_key, search_cache().search(provider, aoi, EVERYTHING, 100.0), None)
    except OutsideCoverageError as exc:
        if kind != "demo":
            st.error(str(exc))
            st.stop()
        st.error(f"This area is outside the demo scenes: offline, imagery exists for {len(demo_presets())} demo "
                 "areas only (Sentinel Hub credentials open the whole archive). Go to a demo area:")
        jump = st.columns(len(demo_presets()))
        for col, name in zip(jump, demo_presets()):
            col.button(demo_place(name), key=f"jump_{name}", on_click=use_demo_area, args=(name,),
                       icon=":material/travel_explore:")
        st.stop()
    except LulcError as exc:
        st.session_state.acq_listing = (listing_key, [], f"Search failed: {exc}")
_, all_acqs, listing_error = st.session_state.acq_listing
available = sorted({a.date for a in all_acqs})
defaults = default_windows(available, today=dt.date.today())
if new_listing and defaults:  # a new area: windows that hold none of its acquisitions move to the defaults
    for label, w in zip("AB", defaults):
        current = window_of(label)
        if current is None or not holds_any(current, available):
            set_window(label, w)
with st.expander(f"Imagery over this area: {len(all_acqs)} acquisition(s)"
                 + (f", {available[0]} to {available[-1]}" if available else ""), expanded=True):
    if listing_error:
        st.warning(listing_error)
    elif all_acqs:
        st.radio("Clicking a date on the timeline sets", ["date A", "date B"], key="timeline_sets", horizontal=True,
                 help="Click a point: the window of that date becomes its month (or the days of it that do not "
                      "overlap the other date's window)")
        shown = {k: w for k in "AB" if (w := window_of(k)) is not None}
        st.plotly_chart(acquisition_timeline(all_acqs, shown), width="stretch", key="acq_timeline",
                        on_select=timeline_clicked, selection_mode="points")
    else:
        st.info("No acquisition covers this area.")


def nearest_dates(window: DateWindow, days: list[dt.date]) -> str:
    """The closest acquisition dates before and after a window, in words."""
    before = [d for d in days if d < window.start]
    after = [d for d in days if d > window.end]
    parts = ([f"{before[-1]} (before)"] if before else []) + ([f"{after[0]} (after)"] if after else [])
    return " and ".join(parts) if parts else "none"


# -- 2. the dates -----------------------------------------------------------------------------
st.subheader("2. Two dates")
# windows around real acquisitions (:func:`default_windows`); fixed ones only where none exists
fallback = defaults or (DateWindow.parse("2015-07-01/2015-08-31"), DateWindow.parse("2017-07-01/2017-10-31"))
wa0 = st.session_state.get("window_a") or fallback[0]
wb0 = st.session_state.get("window_b") or fallback[1]
enter_commits_dates()  # a typed date applies on Enter, not only when the field loses focus
max_cloud = st.slider("Maximum scene cloud cover (%)", 0, 100, int(st.session_state.get("max_cloud", 100)), key="max_cloud_slider")
cols = st.columns(2)
choices, windows, reasons = {}, {}, []
for col, label, w0 in ((cols[0], "A", wa0), (cols[1], "B", wb0)):
    with col:
        if f"dates_{label}" not in st.session_state:
            st.session_state[f"dates_{label}"] = (w0.start, w0.end)
        rng = st.date_input(f"Date {label} window", min_value=dt.date(2015, 6, 23),
                            max_value=dt.date.today(), key=f"dates_{label}", format="YYYY-MM-DD")
        if not isinstance(rng, (tuple, list)) or len(rng) != 2:
            st.warning("Pick a start and an end date.")
            reasons.append(f"date {label} needs a start and an end")
            continue
        try:
            window = DateWindow(rng[0], rng[1])
        except LulcError as exc:
            st.error(str(exc))
            reasons.append(f"date {label} is not a valid window")
            continue
        windows[label] = window
        try:
            acqs = search_cache().search(provider, aoi, window, float(max_cloud))  # once per area and window
        except OutsideCoverageError as exc:
            st.error(str(exc))
            st.stop()
        except LulcError as exc:
            st.error(f"Search failed: {exc}")
            continue
        if not acqs:
            reasons.append(f"no scene for date {label}")
            st.warning(f"No scene in {window} with cloud <= {max_cloud}%. Nearest dates with imagery: "
                       f"{nearest_dates(window, sorted({a.date for a in all_acqs if a.cloud_cover <= max_cloud}))}.")
            continue
        n_dates = len({a.date for a in acqs})
        auto = (f"Median of the clear pixels of all {n_dates} dates (composite)" if n_dates > 1
                else "The acquisition in the window")
        options = [auto] + [f"{a.datetime:%Y-%m-%d}  cloud {a.cloud_cover:.1f}%  {a.tile_id}" for a in acqs]
        pick = st.selectbox(f"Scene for date {label}", range(len(options)), format_func=lambda i: options[i],
                            key=f"acq_choice_{label}")
        choices[label] = acqs[pick - 1] if pick else None
        st.caption(f"{len(acqs)} scene(s) found"
                   + (f"; the composite costs about {estimate_fetch_pu(g, acquisitions=n_dates):.1f} PU on "
                      "Sentinel Hub" if kind == "sentinelhub" and n_dates > 1 else "") + ".")

ready = len(windows) == 2 and len(choices) == 2
if ready:
    try:
        check_window_order(windows["A"], windows["B"])
    except LulcError as exc:
        st.error(str(exc))
        reasons.append("date B is before date A")
        ready = False
if len(windows) == 2 and (same := same_window_note(windows["A"], windows["B"])):
    st.warning(same)
if len(windows) == 2:
    clear_days = sorted({a.date for a in all_acqs if a.cloud_cover <= max_cloud})
    mid = {k: representative_date([d for d in clear_days if w.contains(d)], w) for k, w in windows.items()}
    gap = day_of_year_gap(mid["A"], mid["B"])
    if gap > SEASON_GAP_DAYS:
        suggestion = suggest_window_b(windows["A"], windows["B"], clear_days, today=dt.date.today())
        text = (f"The two dates are {gap} days apart in the year: crops, pasture and grass change class with "
                "the seasons. ")
        if suggestion is None:
            st.warning(text + "No acquisition after date A is closer to date A's season"
                       + (f" with cloud <= {max_cloud}%" if max_cloud < 100 else "") + ".",
                       icon=":material/calendar_month:")
        else:
            n = sum(suggestion.contains(d) for d in clear_days)
            st.warning(text + f"Closer to date A's season: {suggestion} ({n} acquisition(s)).",
                       icon=":material/calendar_month:")
            st.button(f"Use {suggestion} for date B", key="use_season_b", on_click=set_window, args=("B", suggestion))

# -- 3. run -----------------------------------------------------------------------------------
st.subheader("3. Run")
if not ready:
    st.caption("Run is not available yet: " + ("; ".join(reasons) or "choose both dates") + ".")
if st.session_state.get("cancel_run"):  # the Cancel button below stopped the last run (True for one rerun)
    st.info("Analysis cancelled. Nothing was changed: the previous analysis (if any) is still open.")
if st.button("Run analysis", type="primary", disabled=not ready, key="run_analysis"):
    # Any click reruns the script, and Streamlit stops the running one at its next progress update:
    # the analysis is only stored when it completes, so a cancelled run leaves the previous one intact.
    st.button("Cancel", key="cancel_run", icon=":material/cancel:",
              help="Stop this analysis (a Sentinel Hub request already sent finishes first)")
    bars = {s: st.progress(0.0, text=f"{s}: waiting") for s in STAGES}

    def progress(stage: str, fraction: float, message: str) -> None:
        bars[stage].progress(min(max(fraction, 0.0), 1.0), text=f"{stage}: {message}")

    try:
        st.session_state.window_a, st.session_state.window_b = windows["A"], windows["B"]
        st.session_state.max_cloud = max_cloud
        on_wait = queue_notice()
        analyse(aoi, windows["A"], windows["B"], kind, DEFAULT_COLLECTION, choices["A"], choices["B"],
                float(max_cloud), progress=progress, on_wait=on_wait)
        on_wait.slot.empty()
        for s in STAGES:
            bars[s].progress(1.0, text=f"{s}: done")
        st.success("Analysis ready.")
        st.page_link("pages/2_Compare.py", label="Open the comparison", icon=":material/compare:")
    except Exception as exc:
        show_error(exc)
elif st.session_state.get("analysis") is not None:
    st.page_link("pages/2_Compare.py", label="Open the last comparison", icon=":material/compare:")
