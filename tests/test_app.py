"""Page logic with streamlit.testing.v1.AppTest (no browser): home, area and dates, compare, model."""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lulc_core.aoi import AOI
from lulc_core.scene import DateWindow
from tests.fake_sh_fixture import *  # noqa: F401,F403

TIMEOUT = 300
APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LULC_BASEMAP", "0")
    for k in ("SH_CLIENT_ID", "SH_CLIENT_SECRET"):
        monkeypatch.delenv(k, raising=False)


def _clf_calls():
    from ui.session import get_dense_classifier
    return get_dense_classifier().calls


def _errors(at):
    return [e.value for e in at.error] + [str(x.value) for x in at.exception]


def test_home_shows_source_and_model_and_runs_demo():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not _errors(at)
    assert at.title[0].value == "LULC Change Explorer"
    assert any("Bundled demo scenes" in i.value for i in at.info)
    assert at.metric[0].label.startswith("Test accuracy")
    demo_box = at.selectbox(key="home_demo_area")
    assert demo_box.value == "montpellier"  # the demo area whose two dates are closest in the season
    assert "Pisa, Italy (Jul 2015 / Feb 2018)" in demo_box.options
    at.selectbox(key="home_demo_area").set_value("norcia")
    at.button(key="home_start").click().run()
    assert not _errors(at)
    an = at.session_state["analysis"]
    assert an.aoi.name == "norcia" and an.grid.n_cells == 16 * 15  # 160 m cells
    assert at.title[0].value == "Compare two dates"  # switched to the Compare page


def test_compare_page_reruns_never_reclassify():
    import streamlit as st

    st.cache_resource.clear()  # fresh model and analysis store: count from zero
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert _clf_calls() == 0
    at.selectbox(key="home_demo_area").set_value("norcia")
    at.button(key="home_start").click().run()
    calls = _clf_calls()
    assert calls == 2  # one dense pass per date
    labels = [m.label for m in at.metric]
    assert labels[:5] == ["Area", "Changed (counted)", "Natural dynamics", "Unchanged", "Uncertain (left out)"]
    assert any("Different seasons" in w.value and "99 days" in w.value for w in at.warning)
    subheaders = [s.value for s in at.subheader]
    assert {"Cell details", "Change", "Downloads"} <= set(subheaders)
    # widgets that don't change the inputs: thresholds, level, opacity, cell choice, plain reruns
    at.sidebar.slider(key="thr_conf").set_value(0.3).run()
    at.sidebar.slider(key="thr_spectral").set_value(0.5).run()
    at.sidebar.radio(key="thr_level").set_value("class").run()
    assert at.metric[1].label == "Changed (counted, classes)"
    assert at.sidebar.radio(key="map_level").value == "class"  # the maps colour the decision level
    assert any(m.value.startswith("**Map colours: 10 EuroSAT classes**") for m in at.markdown)
    at.sidebar.slider(key="class_opacity").set_value(0.9).run()
    cell_box = next(s for s in at.selectbox if s.key and s.key.startswith("cell_select_"))
    cell_box.set_value(cell_box.options and cell_box.value).run()
    at.run()
    assert _clf_calls() == calls
    assert not _errors(at)
    # a lower confidence threshold can only turn uncertain patches into (un)changed ones
    an = at.session_state["analysis"]
    assert an.change.thresholds.confidence == 0.6


def test_area_page_suggests_only_windows_that_hold_scenes():
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["aoi"] = DemoProvider().area_aoi("pisa")  # acquisitions 2015-07-04 and 2018-02-11
    at.session_state["window_a"] = DateWindow.parse("2015-07-01/2015-07-31")
    at.session_state["window_b"] = DateWindow.parse("2018-02-01/2018-02-28")
    at.switch_page("pages/1_Area_and_dates.py").run()
    # no July 2018 scene over Pisa: the old suggestion ("Use 2018-07-01/2018-07-31") named an empty window
    assert any("days apart in the year" in w.value and "No acquisition after date A is closer" in w.value
               for w in at.warning)
    assert not [b for b in at.button if b.key == "use_season_b"]
    assert not any("2018-07" in w.value for w in at.warning)
    # an empty date B window further from A's season: the suggestion is the window of a real scene
    at.date_input(key="dates_B").set_value((DateWindow.parse("2017-01-01/2017-01-31").start,
                                            DateWindow.parse("2017-01-01/2017-01-31").end)).run()
    assert any("Closer to date A's season: 2018-02-01/2018-02-28 (1 acquisition(s))" in w.value for w in at.warning)
    at.button(key="use_season_b").click().run()
    assert str(at.session_state["window_b"]) == "2018-02-01/2018-02-28"
    assert tuple(at.date_input(key="dates_B").value) == (DateWindow.parse("2018-02-01/2018-02-28").start,
                                                         DateWindow.parse("2018-02-01/2018-02-28").end)
    assert not at.button(key="run_analysis").disabled


def test_area_page_a_new_area_gets_windows_around_its_own_acquisitions():
    """Windows left from another area that hold none of the new area's acquisitions move to windows
    around them (they once fell back to fixed, empty windows); windows that hold one stay."""
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["aoi"] = DemoProvider().area_aoi("norcia")  # 2015-07-11 and 2017-10-18
    at.session_state["window_a"] = DateWindow.parse("2015-07-01/2015-07-31")  # holds norcia's first date
    at.session_state["window_b"] = DateWindow.parse("2018-02-01/2018-02-28")  # Pisa's: nothing over Norcia
    at.switch_page("pages/1_Area_and_dates.py").run()
    assert not _errors(at)
    oct17 = DateWindow.parse("2017-10-01/2017-10-31")
    assert tuple(at.date_input(key="dates_B").value) == (oct17.start, oct17.end)
    assert tuple(at.date_input(key="dates_A").value)[0].isoformat() == "2015-07-01"
    assert not at.button(key="run_analysis").disabled
    assert not any("No scene" in w.value for w in at.warning)


def test_area_page_searches_each_window_once_per_session(monkeypatch):
    """Reruns (a cloud limit moved, a window typed back) are answered from the session's searches."""
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    from ui.session import _analysis_store

    _analysis_store.clear()  # the run below really runs (and would search)
    calls = []
    real = DemoProvider.search
    monkeypatch.setattr(DemoProvider, "search", lambda self, *a, **k: calls.append(str(a[1])) or real(self, *a, **k))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["aoi"] = DemoProvider().area_aoi("norcia")
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.slider(key="max_cloud_slider").set_value(50).run()
    at.slider(key="max_cloud_slider").set_value(100).run()
    may = DateWindow.parse("2016-05-01/2016-05-31")
    at.date_input(key="dates_B").set_value((may.start, may.end)).run()
    at.date_input(key="dates_B").set_value((DateWindow.parse("2017-10-01/2017-10-31").start,
                                            DateWindow.parse("2017-10-01/2017-10-31").end)).run()
    assert not _errors(at)
    assert len(calls) == 1, calls  # the listing of everything over the area; every window is inside it
    at.button(key="run_analysis").click().run()
    assert any("Analysis ready" in s.value for s in at.success)
    assert len(calls) == 1, calls  # the run's own searches too


def test_selection_has_one_source_of_truth():
    """A selection made elsewhere (a map click sets session_state.cell) is what the cell list shows;
    the list never writes its old value back, and choosing in the list selects everywhere."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.selectbox(key="home_demo_area").set_value("norcia")
    at.button(key="home_start").click().run()
    box = next(s for s in at.selectbox if s.key and s.key.startswith("cell_select_"))
    first = at.session_state["cell"]
    assert box.value == first
    other = next(o for o in box.options if o != box.format_func(first))  # options are shown formatted
    g = at.session_state["analysis"].grid
    target = next(rc for rc in [(r, c) for r in range(g.rows) for c in range(g.cols)] if box.format_func(rc) == other)
    at.session_state["cell"] = target  # what a click on a map does
    at.run()
    box = next(s for s in at.selectbox if s.key and s.key.startswith("cell_select_"))
    assert at.session_state["cell"] == target and box.value == target
    at.sidebar.slider(key="thr_conf").set_value(0.5).run()  # an unrelated rerun keeps it
    assert at.session_state["cell"] == target
    box = next(s for s in at.selectbox if s.key and s.key.startswith("cell_select_"))
    box.set_value(first).run()
    assert at.session_state["cell"] == first
    at.toggle(key="cells_changed_only").set_value(True).run()
    assert not _errors(at)


def test_area_page_lists_the_dates_that_exist_and_says_why_run_is_off():
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["aoi"] = DemoProvider().area_aoi("norcia")
    at.switch_page("pages/1_Area_and_dates.py").run()
    assert any("2 acquisition(s), 2015-07-11 to 2017-10-18" in e.label for e in at.expander)
    # defaults: windows around the dates that exist (a month each)
    assert tuple(at.date_input(key="dates_A").value) == (DateWindow.parse("2015-07-01/2015-07-31").start,
                                                         DateWindow.parse("2015-07-01/2015-07-31").end)
    assert not at.button(key="run_analysis").disabled
    # a window with nothing in it names the nearest dates, and the Run button says why it is off
    at.date_input(key="dates_B").set_value((DateWindow.parse("2016-05-01/2016-05-31").start,
                                            DateWindow.parse("2016-05-01/2016-05-31").end)).run()
    assert any("Nearest dates with imagery: 2015-07-11 (before) and 2017-10-18 (after)" in w.value for w in at.warning)
    assert at.button(key="run_analysis").disabled
    assert any("Run is not available yet: no scene for date B" in c.value for c in at.caption)


def test_thresholds_survive_a_page_switch():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.selectbox(key="home_demo_area").set_value("norcia")
    at.button(key="home_start").click().run()
    at.sidebar.slider(key="thr_conf").set_value(0.8).run()
    at.sidebar.radio(key="thr_level").set_value("class").run()
    at.switch_page("pages/3_Model.py").run()
    at.switch_page("pages/2_Compare.py").run()
    assert at.sidebar.slider(key="thr_conf").value == 0.8 and at.sidebar.radio(key="thr_level").value == "class"
    assert at.session_state["analysis"].change.thresholds.confidence == 0.6  # the stored analysis is untouched
    assert not _errors(at)


def test_a_shared_link_opens_its_analysis():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"area": "norcia", "a": "2015-07-01/2015-07-31", "b": "2017-10-01/2017-10-31",
                            "source": "demo", "level": "class", "conf": "0.7", "spectral": "0.1"})
    at.run()
    assert not _errors(at)
    an = at.session_state["analysis"]
    assert an.aoi.name == "norcia" and str(an.a.window) == "2015-07-01/2015-07-31"
    at.switch_page("pages/2_Compare.py").run()
    assert at.sidebar.slider(key="thr_conf").value == 0.7 and at.sidebar.radio(key="thr_level").value == "class"
    assert at.sidebar.slider(key="thr_spectral").value == 0.1
    assert at.query_params["area"] == ["norcia"] or at.query_params["area"] == "norcia"
    # a bad link gets a message, not a traceback
    bad = AppTest.from_file(APP, default_timeout=TIMEOUT)
    bad.query_params.update({"bbox": "10,abc", "a": "2015-07-01/2015-07-31", "b": "2017-10-01/2017-10-31"})
    bad.run()
    assert any("bad bbox" in e for e in _errors(bad))


def test_a_link_restores_a_drawn_polygon_the_cell_and_the_view():
    from shapely import geometry as sg

    from lulc_core.aoi_store import load_aoi
    from ui.session import aoi_folder

    polygon = sg.Polygon([(13.080, 42.785), (13.100, 42.787), (13.095, 42.796), (13.082, 42.793)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["aoi"] = AOI(polygon, name="my field")
    at.session_state["window_a"] = DateWindow.parse("2015-07-01/2015-07-31")
    at.session_state["window_b"] = DateWindow.parse("2017-10-01/2017-10-31")
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.button(key="run_analysis").click().run()
    at.switch_page("pages/2_Compare.py").run()
    assert not _errors(at)
    link = {k: at.query_params[k] for k in at.query_params}
    link = {k: v[0] if isinstance(v, list) else v for k, v in link.items()}
    assert {"aoi", "bbox", "cell"} <= set(link), link
    assert load_aoi(link["aoi"], aoi_folder()).geometry.equals_exact(polygon, 0)
    g = at.session_state["analysis"].grid
    inside = at.session_state["analysis"].a.classes.area_ha > 0
    cell = next((r, c) for r in range(g.rows) for c in range(g.cols) if inside[r, c] and (r, c) != at.session_state["cell"])
    # a fresh session opens the link with another cell and a view
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT)
    fresh.query_params.update({**link, "cell": f"{cell[0]},{cell[1]}", "view": "42.79,13.09,16"})
    fresh.run()
    assert not _errors(fresh)
    an = fresh.session_state["analysis"]
    assert an.aoi.geometry.equals_exact(polygon, 0) and an.aoi.name == "my field"
    assert fresh.session_state["map_home"][fresh.session_state["analysis_key"]] == {"center": (42.79, 13.09), "zoom": 16}
    fresh.switch_page("pages/2_Compare.py").run()
    assert fresh.session_state["cell"] == cell and not _errors(fresh)
    # a link from a server that does not keep the polygon opens its bounding box, and says so
    other = AppTest.from_file(APP, default_timeout=TIMEOUT)
    other.query_params.update({**link, "aoi": "0" * 12})
    other.run()
    assert other.session_state["analysis"].aoi.geometry.equals(polygon.envelope)
    assert "not kept on this server" in other.session_state["analysis"].aoi.notes[0]
    bad = AppTest.from_file(APP, default_timeout=TIMEOUT)
    bad.query_params.update({**link, "view": "91,0,3"})
    bad.run()
    assert any("bad view" in e for e in _errors(bad))


def test_a_sentinelhub_table_in_secrets_counts_as_configured():
    """Credentials given as a [sentinelhub] table in secrets.toml are what the core accepts; the
    dashboard's "is it configured" check agrees (it used to look at top-level keys only)."""
    import streamlit as st

    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["sentinelhub"] = {"client_id": "an-id", "client_secret": "a-secret"}
    at.run()
    assert any("Sentinel Hub" in s.value and "credentials found" in s.value for s in at.success)
    st.cache_resource.clear()


def test_area_page_invalid_bbox_message():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.radio(key="aoi_how").set_value("Type a bounding box").run()
    at.number_input(key="bbox_East (lon)").set_value(10.0).run()  # east < west
    at.button(key="bbox_apply").click().run()
    assert any("west < east" in e for e in _errors(at))


def test_area_page_outside_demo_and_reversed_dates():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["aoi"] = AOI.from_bbox(5.0, 45.0, 5.05, 45.05, name="elsewhere")
    at.switch_page("pages/1_Area_and_dates.py").run()
    message = next(e for e in _errors(at) if "outside the demo scenes" in e)
    assert "saclay_e" not in message and "(W, S, E, N)" not in message
    jumps = {b.label: b for b in at.button if b.key and b.key.startswith("jump_")}
    assert {"Pisa, Italy", "Saclay, France", "Norcia, Italy"} <= set(jumps)
    jumps["Saclay, France"].click().run()
    assert not _errors(at)
    assert at.session_state["aoi"].name == "saclay_e" and at.radio(key="aoi_how").value == "Demo area"
    assert str(at.session_state["window_a"]).startswith("2016-03") and not at.button(key="run_analysis").disabled
    at2 = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow
    at2.session_state["aoi"] = DemoProvider().area_aoi("norcia")
    at2.session_state["window_a"] = DateWindow.parse("2017-10-01/2017-10-31")
    at2.session_state["window_b"] = DateWindow.parse("2015-07-01/2015-07-31")
    at2.switch_page("pages/1_Area_and_dates.py").run()
    assert any("before date A" in e for e in _errors(at2))
    assert at2.button(key="run_analysis").disabled


def test_area_page_a_failed_upload_clears_the_area_and_an_empty_file_says_so():
    import json

    from lulc_core.providers.demo import DemoProvider

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.radio(key="aoi_how").set_value("Upload GeoJSON / KML").run()
    box = DemoProvider().area_aoi("norcia").to_geojson()
    at.file_uploader(key="aoi_upload").set_value(("norcia.geojson", json.dumps(box).encode(), "application/json")).run()
    assert not _errors(at) and at.session_state["aoi"].name == "norcia"
    at.file_uploader(key="aoi_upload").set_value(("empty.geojson", b"", "application/json")).run()
    assert _errors(at) == ["empty.geojson: the file is empty; export the area again from your GIS or map tool"]
    assert at.session_state["aoi"] is None  # the previous area is gone with the failed upload
    assert not [m for m in at.metric if m.label == "Area"]
    assert any("No area yet" in i.value for i in at.info)
    at.file_uploader(key="aoi_upload").set_value(("bad.geojson", b"{nope", "application/json")).run()
    assert len(_errors(at)) == 1 and "not valid JSON" in _errors(at)[0]  # only this file's error


def test_area_page_place_search_moves_the_draw_map():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.text_input(key="place_query").set_value("saclay").run()
    assert not _errors(at)
    pick = at.selectbox(key="place_pick")
    assert pick.options[0] == "Saclay, France (demo area)"
    def map_center() -> tuple[float, float]:  # the draw map's initial view, from its st_folium HTML
        lat, lon = re.search(r"center: \[([-0-9.]+), ([-0-9.]+)\]", str(at.get("component_instance")[0].proto)).groups()
        return float(lat), float(lon)

    assert abs(map_center()[0] - 48.70) < 0.01 and abs(map_center()[1] - 2.26) < 0.01  # Saclay, not Pisa
    at.text_input(key="place_query").set_value("qxzqxz").run()
    assert any("No place starts with" in i.value for i in at.info)
    assert map_center() == (43.72, 10.4)  # nothing found: the map stays where it opens


def test_area_page_runs_analysis_on_demo_area():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.radio(key="aoi_how").set_value("Demo area").run()
    at.selectbox(key="aoi_demo_area").set_value("norcia").run()
    at.button(key="demo_apply").click().run()
    assert [m.label for m in at.metric][:2] == ["Area", "160 m cells"]
    assert at.metric[1].value == "240"
    assert not _errors(at)
    at.button(key="run_analysis").click().run()
    assert not _errors(at)
    assert any("Analysis ready" in s.value for s in at.success)
    an = at.session_state["analysis"]
    assert an.a.scene.dates[0].isoformat() == "2015-07-11" and an.b.scene.dates[0].isoformat() == "2017-10-18"


def test_model_page():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/3_Model.py").run()
    assert not _errors(at)
    assert at.metric[0].label == "Test accuracy"
    assert any("Input contract" == s.value for s in at.subheader)
    import json

    from lulc_core.model.cascades import REFINE_FILE

    held = json.loads(REFINE_FILE.read_text())["held_out"]  # the shipped cascade's figures, not the dense pass's
    agreement = next(m for m in at.metric if m.label == "Agreement with the per-window model")
    assert agreement.value == f"{100 * held['dense_plus_refine']['agreement']:.1f}%"
    refined = next(m for m in at.metric if m.label == "Windows re-classified one by one")
    prev = json.loads(REFINE_FILE.read_text()).get("previous_pair")
    if prev:  # the replaced pair's figures beside the new ones, as deltas
        gain = 100 * (held["dense_plus_refine"]["agreement"] - prev["held_out"]["dense_plus_refine"]["agreement"])
        assert agreement.delta.startswith(f"{gain:+.1f} points")
        assert refined.delta.startswith(f"{100 * (held['refined_share'] - prev['held_out']['refined_share']):+.1f} points")


def test_dashboard_runs_on_sentinelhub_when_credentials_are_set(fake_sh, monkeypatch):
    """With SH_* credentials (pointing at the project's fake server) the app uses Sentinel Hub."""
    import streamlit as st

    from lulc_core.scene import DateWindow

    for k, v in (("SH_CLIENT_ID", fake_sh.client_id), ("SH_CLIENT_SECRET", fake_sh.client_secret),
                 ("SH_BASE_URL", fake_sh.base_url), ("SH_TOKEN_URL", fake_sh.token_url)):
        monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert any("Sentinel Hub" in s.value for s in at.success)
    at.session_state["aoi"] = AOI.from_bbox(13.080, 42.785, 13.100, 42.796, name="norcia-box")
    at.session_state["window_a"] = DateWindow.parse("2015-07-01/2015-07-31")
    at.session_state["window_b"] = DateWindow.parse("2017-10-01/2017-10-31")
    at.switch_page("pages/1_Area_and_dates.py").run()
    assert not _errors(at)
    assert "PU" in at.metric[2].value
    at.button(key="run_analysis").click().run()
    assert not _errors(at)
    an = at.session_state["analysis"]
    assert an.provider == "sentinelhub" and an.processing_units > 0
    assert fake_sh.count("process") == 2  # one Process request per date
    st.cache_resource.clear()


def test_a_cache_that_cannot_be_written_is_a_warning_on_the_page(tmp_path, monkeypatch):
    blocker = tmp_path / "cachefile"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LULC_CACHE_DIR", str(blocker / "sub"))
    from ui.session import _analysis_store, get_provider
    get_provider.clear()  # providers (and their caches) are shared by the process: make one for this folder
    _analysis_store.clear()  # and analyses too: run this one afresh
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.selectbox(key="home_demo_area").set_value("norcia")
    at.button(key="home_start").click().run()
    assert not _errors(at)  # the analysis ran
    assert at.title[0].value == "Compare two dates"
    assert any("scene cache could not be written" in w.value for w in at.warning), [w.value for w in at.warning]


def test_dashboard_spends_no_more_than_the_session_budget(fake_sh, monkeypatch, tmp_path):
    """A session's processing-unit budget: shown before the run, and a run that would pass it is
    refused with a message before any Process API request (the per-day ledger sits in the cache)."""
    import streamlit as st

    from lulc_core.scene import DateWindow

    for k, v in (("SH_CLIENT_ID", fake_sh.client_id), ("SH_CLIENT_SECRET", fake_sh.client_secret),
                 ("SH_BASE_URL", fake_sh.base_url), ("SH_TOKEN_URL", fake_sh.token_url),
                 ("LULC_PU_PER_SESSION", "0.5"), ("LULC_CACHE_DIR", str(tmp_path / "cache"))):
        monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.session_state["aoi"] = AOI.from_bbox(13.080, 42.785, 13.100, 42.796, name="norcia-box")
    at.session_state["window_a"] = DateWindow.parse("2015-07-01/2015-07-31")
    at.session_state["window_b"] = DateWindow.parse("2017-10-01/2017-10-31")
    at.switch_page("pages/1_Area_and_dates.py").run()
    assert any("This session has 0.5 of its 0.5 processing units left" in c.value for c in at.caption)
    at.button(key="run_analysis").click().run()
    errors = _errors(at)
    assert len(errors) == 1 and "processing units" in errors[0] and "LULC_PU_PER_SESSION" in errors[0], errors
    assert fake_sh.count("process") == 0 and "analysis" not in at.session_state
    st.cache_resource.clear()
