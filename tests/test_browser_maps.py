"""Real-browser tests of the Compare page's maps (issue 18): pan, zoom and the swipe divider stay in the
browser, a click reruns only the maps' fragment without reloading any map, and a link restores the
selected cell and the view. Playwright driving Debian's Chromium, as tests/test_browser.py (skipped
where Chromium is missing, except in CI)."""

from __future__ import annotations

import time

import pytest

from tests.test_browser import ARGS, CHROMIUM, SHOTS, _box, _wait_idle, playwright  # noqa: F401 (skips as it does)
from tests.app_server import start_app, stop_app

FRAMES = 'iframe[title="streamlit_folium.st_folium"]'
N_MAPS = 4  # date A, date B, swipe, change


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    proc, url = start_app(tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("log") / "streamlit.log")
    yield url
    stop_app(proc)


@pytest.fixture()
def browser():
    SHOTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def new_page(browser):
    """A page in a fresh context (its own sessionStorage) that records errors, outside requests and the
    messages it sends to the server (each rerun is one)."""
    pg = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    pg.errors, pg.sent, pg.not_found, pg.outside = [], [], [], []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("response", lambda r: pg.not_found.append(r.url) if r.status == 404 else None)
    pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:"))
          else pg.outside.append(r.url))
    pg.on("websocket", lambda ws: ws.on("framesent", lambda payload: pg.sent.append(time.monotonic())))
    return pg


def maps_ready(pg, timeout_s: float = 120) -> None:
    """Wait until the four maps are drawn and linked (each publishes ``window.__lulcMap``)."""
    frames = pg.locator(FRAMES)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if frames.count() == N_MAPS and all(
                    frames.nth(i).evaluate("f => !!(f.contentWindow.__lulcMap && f.contentWindow.__lulcMap.__lulcSettings)")
                    for i in range(N_MAPS)):
                return
        except Exception:  # a frame being attached
            pass
        pg.wait_for_timeout(300)
    raise AssertionError("the Compare maps were not drawn")


def in_map(pg, i: int, js: str):
    """Evaluate ``js`` (an expression of ``w``, the map iframe's window, and ``m``, its map) in map ``i``."""
    return pg.locator(FRAMES).nth(i).evaluate(f"f => {{ const w = f.contentWindow, m = w.__lulcMap; return ({js}); }}")


def views(pg) -> list[tuple[int, float, float]]:
    return [tuple(in_map(pg, i, "[m.getZoom(), m.getCenter().lat, m.getCenter().lng]")) for i in range(N_MAPS)]


def selection(pg) -> str:
    box = pg.locator('[data-testid="stSelectbox"]').filter(has_text="Cell (or click").first
    inputs = box.locator("input")
    return box.inner_text() + " " + " ".join(inputs.nth(k).input_value() for k in range(inputs.count()))


def divider(pg) -> float:
    return float(in_map(pg, 2, "m.__lulcSwipe._range.value"))


def wait_for(pg, predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := predicate():
                return value
        except Exception:  # a frame being redrawn
            pass
        pg.wait_for_timeout(100)
    raise AssertionError(what)


def open_demo(pg, url: str) -> None:
    pg.goto(url)
    _wait_idle(pg)
    pg.get_by_role("button", name="Analyse demo area").click()
    pg.get_by_text("Cell details").wait_for(timeout=120_000)
    maps_ready(pg)
    _wait_idle(pg)


def click_until_selected(pg, index: int, fractions) -> float:
    """Click map ``index`` at ``fractions`` of its box until the cell list changes; seconds the change took."""
    for fx, fy in fractions:
        before = selection(pg)
        el = pg.locator(FRAMES).nth(index)
        el.scroll_into_view_if_needed()
        b = _box(el)
        t0 = time.monotonic()
        pg.mouse.click(b["x"] + b["width"] * fx, b["y"] + b["height"] * fy)
        try:
            wait_for(pg, lambda: selection(pg) != before, 10, "no selection")
            return time.monotonic() - t0
        except AssertionError:  # the cell already selected, or outside the area: another point
            continue
    raise AssertionError(f"a click on map {index} must select the cell under it")


def test_zoom_divider_and_click_stay_in_the_browser(app_url, browser):
    pg = new_page(browser)
    open_demo(pg, app_url)
    for i in range(N_MAPS):  # a marker on each map's window: gone if Streamlit reloads the iframe
        in_map(pg, i, f"w.__testMark = {i + 1}")
    z0 = views(pg)[0][0]
    assert all(v[0] == z0 for v in views(pg))
    # zoom map A: every map follows in the browser and nothing is sent to the server
    pg.wait_for_timeout(1500)
    sent = len(pg.sent)
    el = pg.locator(FRAMES).nth(0)
    el.scroll_into_view_if_needed()
    pg.frame_locator(FRAMES).nth(0).locator("a.leaflet-control-zoom-in").click()
    wait_for(pg, lambda: all(v[0] == z0 + 1 for v in views(pg)), 5, "the other maps must follow map A's zoom")
    pg.wait_for_timeout(1500)
    assert len(pg.sent) == sent, "a zoom must not send anything to the server (no rerun)"
    # drag the swipe divider to 3/4: the divider moves, no cell is selected, nothing is sent
    before, sent = selection(pg), len(pg.sent)
    swipe = pg.locator(FRAMES).nth(2)
    swipe.scroll_into_view_if_needed()
    b = _box(swipe)
    assert abs(divider(pg) - 0.5) < 1e-6
    pg.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    pg.mouse.down()
    pg.mouse.move(b["x"] + b["width"] * 0.75, b["y"] + b["height"] * 0.55, steps=8)
    pg.mouse.up()
    pg.wait_for_timeout(1500)
    moved = divider(pg)
    assert 0.65 < moved < 0.85, moved
    assert selection(pg) == before and len(pg.sent) == sent, "releasing the divider must not select a cell"
    # click a cell on map A: its details arrive, and nothing else changes
    sent = len(pg.sent)
    took = click_until_selected(pg, 0, ((0.4, 0.6), (0.6, 0.4), (0.3, 0.3)))
    assert len(pg.sent) > sent  # the click reached the server (the count above can see messages)
    assert took < 5, f"the details took {took:.1f} s"
    _wait_idle(pg)
    pg.wait_for_timeout(1000)
    assert all(v[0] == z0 + 1 for v in views(pg)), views(pg)
    assert abs(divider(pg) - moved) < 1e-9
    assert [in_map(pg, i, "w.__testMark") for i in range(N_MAPS)] == [1, 2, 3, 4], "a map iframe was reloaded"
    # the selected cell is outlined at the same place on maps A and B (same view), and in the URL
    places = [in_map(pg, i, "(() => { let b = null; w.feature_group.forEach(g => g.eachLayer(l => "
                            "{ if (l.getBounds) b = l.getBounds().getCenter(); })); return b && [b.lat, b.lng]; })()")
              for i in range(N_MAPS)]
    assert places[0] is not None and all(p == places[0] for p in places), places
    text = selection(pg)
    r, c = (int(v) for v in text.split("Row ")[1].split(":")[0].split(", col "))
    assert f"cell={r}%2C{c}" in pg.url, pg.url
    zoom, lat, lng = views(pg)[0]
    assert f"%2C{zoom}" in pg.url.split("view=")[1], pg.url
    pg.screenshot(path=str(SHOTS / "compare_maps.png"))
    assert pg.errors == [] and pg.not_found == [] and pg.outside == [], (pg.errors, pg.not_found, pg.outside)

    # the link, opened in a fresh browser context (no sessionStorage): same cell, same view
    link = pg.url
    pg2 = new_page(browser)
    pg2.goto(link)
    pg2.get_by_text("Cell details").wait_for(timeout=120_000)
    maps_ready(pg2)
    _wait_idle(pg2)
    assert f"Row {r}, col {c}:" in selection(pg2), selection(pg2)
    for z, la, ln in views(pg2):
        assert z == zoom and abs(la - lat) < 1e-4 and abs(ln - lng) < 1e-4, (views(pg2), (zoom, lat, lng))
    # a deep link makes Streamlit's front end probe <page>/_stcore/... before the server's root (404s)
    assert all("/_stcore/" in u for u in pg2.not_found), pg2.not_found
    assert [e for e in pg2.errors if "404" not in e] == [] and pg2.outside == [], (pg2.errors, pg2.outside)
