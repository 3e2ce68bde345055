"""LULC Change Explorer: home page (``python -m ui.serve``, or ``streamlit run app.py``)."""

import streamlit as st

from ui import warm

warm.start()  # no-op when ``python -m ui.serve`` started it with the server
warm.wait("session")
from ui.session import (LINK_KEYS, VIEW_KEYS, demo_place, demo_presets, get_classifier, model_summary, provider_kind,
                        queue_notice, restore_from_link, sentinelhub_configured, show_error, start_demo)


def home() -> None:
    """What the tool does, the data source and model in use, and a one-click demo."""
    st.title("LULC Change Explorer")
    st.markdown(
        "Draw an area on the map and pick two dates: the app fetches **Sentinel-2** imagery for both, "
        "maps **10 EuroSAT land-cover classes** every 160 m with a ResNet, measures **10 m spectral change**, "
        "and shows the two dates **side by side** with a change map where a changed hectare needs both a "
        "land-cover flip and spectral evidence, and a from-to table in hectares."
    )

    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Data source")
        kind = provider_kind()
        if kind == "demo":
            st.info("**Bundled demo scenes** (offline): real Sentinel-2 Level-1C images of "
                    f"{len(demo_presets())} areas, two dates each, from the OSCD dataset.")
            if sentinelhub_configured():
                if st.button("Use Sentinel Hub instead"):
                    st.session_state.provider_kind = "sentinelhub"
                    st.rerun()
            else:
                st.caption("Set SH_CLIENT_ID and SH_CLIENT_SECRET (environment or .streamlit/secrets.toml) "
                           "to use Sentinel Hub / Copernicus Data Space.")
        else:
            st.success("**Sentinel Hub** (credentials found): imagery is searched and fetched live and cached on disk.")
            if st.button("Use the bundled demo scenes instead"):
                st.session_state.provider_kind = "demo"
                st.rerun()
    with c2:
        st.subheader("Model")
        try:
            summary = model_summary(get_classifier())
            acc = summary["accuracy"]
            st.metric("Test accuracy on held-out EuroSAT images",
                      f"{100 * acc:.2f}%" if acc is not None else "n/a",
                      help=f"{summary['n_images']} images never seen in training; calibration error (ECE) "
                           f"{summary['ece']:.3f}")
            st.caption(f"{summary['architecture']}, trained here from scratch on EuroSAT RGB; "
                       f"{summary['mode']}. Details on the Model page.")
        except Exception as exc:  # weights missing or unreadable: say so, keep the page usable
            show_error(exc)

    st.subheader("Start")
    cols = st.columns([2, 1, 3])
    presets = demo_presets()
    area = cols[0].selectbox("Demo area", list(presets), index=0, key="home_demo_area",
                             format_func=lambda k: (f"{demo_place(k)} ({presets[k][0].start:%b %Y} / "
                                                    f"{presets[k][1].start:%b %Y})"),
                             help="Each area has two real acquisitions a few years apart; the areas whose two "
                                  "dates are closest in the season come first.")
    if cols[1].button("Analyse demo area", type="primary", key="home_start"):
        try:
            on_wait = queue_notice()
            with st.spinner(f"Analysing {demo_place(area)}: fetch, classify and compare both dates..."):
                start_demo(area, on_wait)
            on_wait.slot.empty()
            st.switch_page("pages/2_Compare.py")
        except Exception as exc:
            show_error(exc)
    cols[2].page_link("pages/1_Area_and_dates.py", label="Or choose your own area and dates", icon=":material/draw:")
    st.caption("Contains modified Copernicus Sentinel data. Classes and training data: EuroSAT (Helber et al., 2019).")


st.set_page_config(page_title="LULC Change Explorer", page_icon=":earth_africa:", layout="wide")
nav = st.navigation([
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page("pages/1_Area_and_dates.py", title="Area and dates", icon=":material/draw:"),
    st.Page("pages/2_Compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/3_Model.py", title="Model", icon=":material/model_training:"),
    st.Page("pages/4_Regions.py", title="Regions", icon=":material/grid_view:"),
])
link = {k: st.query_params[k] for k in LINK_KEYS if k in st.query_params}
if link and st.session_state.get("restored_link") != link:  # a shared link: open its analysis once
    st.session_state.restored_link = link
    try:
        on_wait = queue_notice()
        with st.spinner("Opening the shared analysis..."):
            restore_from_link({**link, **{k: st.query_params[k] for k in VIEW_KEYS if k in st.query_params}}, on_wait)
        on_wait.slot.empty()
    except Exception as exc:
        show_error(exc)
nav.run()
