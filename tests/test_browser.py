"""Real-browser tests: Playwright for Python driving Debian's Chromium against the app.

Skipped with a reason where Chromium is not installed (``apt-get install chromium``), except in
CI (``CI=true``), where a missing browser is a failure. Screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.app_server import CHROMIUM_ARGS, ROOT, start_app, stop_app
from tests.compare_page import FRAMES, box, wait_idle

SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but Chromium is missing at {CHROMIUM}: install it with apt-get install chromium")
    pytest.skip(f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium) to run browser tests",
                allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    proc, url = start_app(tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("log") / "streamlit.log")
    yield url
    stop_app(proc)


@pytest.fixture()
def page():
    SHOTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.console_errors = []
        pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
        # offline: nothing may be asked of the internet, and nothing asked may fail
        pg.outside_requests, pg.failed_requests = [], []
        pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:"))
              else pg.outside_requests.append(r.url))
        pg.on("requestfailed", lambda r: pg.failed_requests.append(r.url))
        yield pg
        browser.close()


def _no_errors(pg) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0
    alerts = pg.locator('[data-testid="stAlertContentError"]')
    assert alerts.count() == 0, [alerts.nth(i).inner_text() for i in range(alerts.count())]
    assert pg.console_errors == []
    assert pg.outside_requests == [] and pg.failed_requests == [], (pg.outside_requests, pg.failed_requests)


def _map_frame(pg, index: int):
    frames = pg.locator(FRAMES)
    frames.nth(index).wait_for(timeout=60_000)
    return frames.nth(index), pg.frame_locator(FRAMES).nth(index)


def _set_date_range(pg, label: str, start: str, end: str) -> None:
    """Type a date range into a Streamlit date_input, segment by segment (year, month, day)."""
    for which, day in (("start", start), ("end", end)):
        for part, value in zip(("year", "month", "day"), day.split("-")):
            seg = pg.get_by_role("spinbutton", name=f"{part}, {label} {which} date")
            seg.click()
            seg.type(value, delay=30)
    pg.keyboard.press("Enter")
    pg.keyboard.press("Escape")
    pg.get_by_role("heading", name="2. Two dates").click()  # blur: the widget commits its value
    wait_idle(pg)


def test_home_page(app_url, page):
    page.goto(app_url)
    page.get_by_text("LULC Change Explorer").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_text("Test accuracy on held-out EuroSAT images").wait_for()
    page.screenshot(path=str(SHOTS / "home.png"))
    _no_errors(page)


def test_model_page(app_url, page):
    # through the page menu: a deep link (/Model) makes Streamlit's front end probe /Model/_stcore/health
    # (404) before it finds the server's root, which the browser logs as errors
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("link", name="Model").first.click()
    page.get_by_role("heading", name="Input contract").wait_for(timeout=60_000)
    wait_idle(page)
    _no_errors(page)


def test_draw_pick_dates_run_and_inspect_a_patch(app_url, page):
    page.goto(app_url)
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Area and dates").click()
    wait_idle(page)
    frame_el, frame = _map_frame(page, 0)
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    # draw a rectangle with the mouse over Pisa (the map opens centred on the Pisa demo scenes)
    frame.locator("a.leaflet-draw-draw-rectangle").click()
    fb = box(frame_el)
    cx, cy = fb["x"] + fb["width"] / 2, fb["y"] + fb["height"] / 2
    page.mouse.move(cx - 70, cy - 50)
    page.mouse.down()
    page.mouse.move(cx, cy, steps=5)
    page.mouse.move(cx + 70, cy + 50, steps=5)
    page.mouse.up()
    wait_idle(page)
    page.get_by_text("160 m cells").wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "area_drawn.png"))
    # the two Pisa acquisitions are 2015-07-04 and 2018-02-11
    _set_date_range(page, "Date A window", "2015-07-01", "2015-07-31")
    _set_date_range(page, "Date B window", "2018-02-01", "2018-02-28")
    page.get_by_text("Scene for date B").wait_for(timeout=60_000)
    page.get_by_role("button", name="Run analysis").click()
    page.get_by_text("Analysis ready").wait_for(timeout=300_000)
    wait_idle(page)
    page.get_by_role("link", name="Open the comparison").click()
    wait_idle(page)
    page.get_by_text("Compare two dates").wait_for(timeout=60_000)
    # both class maps: image overlays (true colour + classes) on both side-by-side maps
    for i in (0, 1):
        _, f = _map_frame(page, i)
        f.locator("img.leaflet-image-layer").nth(1).wait_for(timeout=60_000)
    # click a cell on map A: the cell list and the highlight on map B follow
    def box_text() -> str:
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Cell (or click").first
        box.scroll_into_view_if_needed()
        inputs = box.locator("input")
        return box.inner_text() + " " + " ".join(inputs.nth(k).input_value() for k in range(inputs.count()))

    page.get_by_text("Cell details").wait_for(timeout=60_000)
    wait_idle(page)
    before = box_text()
    assert "Row " in before, before

    def click_selects(index: int, points) -> bool:
        """Click map ``index`` at ``points`` ((x, y) of its box -> page position) one after another until
        the cell list changes: a click can land on the cell already selected, or while a map is being
        redrawn; each click is given time to rerun the page (and once more to draw the highlight)."""
        before = box_text()
        for at in points:
            el, _ = _map_frame(page, index)
            el.scroll_into_view_if_needed()
            page.mouse.click(*at(box(el)))
            for _ in range(30):
                page.wait_for_timeout(500)
                wait_idle(page)
                if box_text() != before:
                    return True
        return False

    assert click_selects(0, [lambda b, dx=dx, dy=dy: (b["x"] + b["width"] / 2 + dx, b["y"] + b["height"] / 2 + dy)
                             for dx, dy in ((5, 5), (-45, 35), (50, -40))]), \
        "a click on map A must select the cell under it"

    def outline_places() -> list[tuple[float, float, float]]:
        rel = []
        for i in (0, 1):
            _, f = _map_frame(page, i)
            outline = f.locator('path.leaflet-interactive[stroke="#00e5ff"]')
            outline.wait_for(timeout=60_000)
            ob, cb = outline.bounding_box(), f.locator(".leaflet-container").bounding_box()
            rel.append((ob["x"] + ob["width"] / 2 - cb["x"], ob["y"] + ob["height"] / 2 - cb["y"], ob["width"]))
        return rel

    # the highlighted cell sits at the same place on both maps (same view), once map B has redrawn
    for _ in range(20):
        rel = outline_places()
        if abs(rel[0][0] - rel[1][0]) < 2 and abs(rel[0][1] - rel[1][1]) < 2:
            break
        page.wait_for_timeout(500)
        wait_idle(page)
    assert abs(rel[0][0] - rel[1][0]) < 2 and abs(rel[0][1] - rel[1][1]) < 2, rel
    # linked, stable views: zoom map A in, then move a slider: both maps keep the new zoom; pan A: B follows
    def view(i):
        _, f = _map_frame(page, i)
        return f.locator(".leaflet-container").evaluate(
            "el => { for (const k in window) { try { const m = window[k]; if (m instanceof L.Map) "
            "return [m.getZoom(), m.getCenter().lat, m.getCenter().lng]; } catch (e) {} } return null; }")

    def settle(predicate, what):
        for _ in range(40):
            page.wait_for_timeout(500)
            wait_idle(page)
            try:
                if predicate():
                    return
            except Exception:  # an iframe being redrawn
                pass
        raise AssertionError(what)

    # leafmap maps: layer control (overlays incl. the change state), fullscreen button; one legend, above the maps
    _, fb = _map_frame(page, 1)
    assert fb.locator(".leaflet-control-layers").count() == 1
    assert fb.locator(".leaflet-control-layers-overlays label", has_text="change state").count() == 1
    assert fb.locator(".fullscreen-icon").count() == 1
    assert page.locator('[data-testid="stMarkdown"]', has_text="Map colours:").filter(
        has_text="changed (outline)").count() == 1
    zoom0 = view(0)[0]
    el_a, fa = _map_frame(page, 0)
    el_a.scroll_into_view_if_needed()
    fa.locator("a.leaflet-control-zoom-in").click()
    settle(lambda: view(0)[0] == zoom0 + 1 and view(1)[0] == zoom0 + 1, "map B must follow map A's zoom")
    page.get_by_label("Class map opacity").focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(1000)
    wait_idle(page)
    settle(lambda: view(0)[0] == zoom0 + 1, "a slider move must not reset the zoom")
    lat_before = view(1)[1]
    panned = lambda: abs(view(1)[1] - lat_before) > 1e-4 and abs(view(1)[1] - view(0)[1]) < 1e-4  # noqa: E731
    for _ in range(3):  # a drag can fall in a redraw of map A (the slider move reran the page): try again
        wait_idle(page)
        el_a, _ = _map_frame(page, 0)
        b = box(el_a)
        page.mouse.move(b["x"] + b["width"] * 0.5, b["y"] + b["height"] * 0.7)
        page.mouse.down()
        page.mouse.move(b["x"] + b["width"] * 0.5, b["y"] + b["height"] * 0.3, steps=10)
        page.mouse.up()
        try:
            settle(panned, "panning map A must move map B's centre")
            break
        except AssertionError:
            pass
    assert panned(), "panning map A must move map B's centre"
    # live: moving map A moves map B and the swipe map in the same instant, in the browser (no rerun)
    wait_idle(page)
    _, fa = _map_frame(page, 0)
    offsets = fa.locator(".leaflet-container").evaluate(
        "el => { const a = window.__lulcMap; a.panBy([120, 40], {animate: false}); const c = a.getCenter();"
        " const out = []; for (const f of window.parent.document.querySelectorAll('iframe')) {"
        " const m = f.contentWindow.__lulcMap; if (m && m !== a) out.push([m.getCenter().lat - c.lat,"
        " m.getCenter().lng - c.lng, m.getZoom() - a.getZoom()]); } return out; }")
    # B and the swipe map (Streamlit may still hold an iframe of a previous run: it follows too)
    assert len(offsets) >= 2 and all(abs(d) < 1e-9 for o in offsets for d in o), offsets
    wait_idle(page)
    # the swipe map: a draggable divider clips date A (left) and date B (right)
    moved_clip = False
    for _ in range(3):  # a drag can fall in a redraw of the map (the pan above reruns the page): try again
        page.wait_for_timeout(1000)
        wait_idle(page)
        el_s, fs = _map_frame(page, 2)
        el_s.scroll_into_view_if_needed()
        fs.locator(".leaflet-sbs-range").wait_for(state="attached", timeout=60_000)
        clip_a = lambda: fs.locator(".leaflet-swipeA-pane").evaluate("e => e.style.clip")  # noqa: E731
        clip_b = lambda: fs.locator(".leaflet-swipeB-pane").evaluate("e => e.style.clip")  # noqa: E731
        before_a, before_b = clip_a(), clip_b()
        assert before_a.startswith("rect(") and before_b.startswith("rect(")
        assert fs.locator(".leaflet-swipeA-pane img.leaflet-image-layer").count() >= 1
        assert fs.locator(".leaflet-swipeB-pane img.leaflet-image-layer").count() >= 1
        rb = box(fs.locator(".leaflet-container"))  # the divider's thumb sits at its centre
        page.mouse.move(rb["x"] + rb["width"] / 2, rb["y"] + rb["height"] / 2)
        page.mouse.down()
        page.mouse.move(rb["x"] + rb["width"] * 0.8, rb["y"] + rb["height"] / 2, steps=8)
        page.mouse.up()
        page.wait_for_timeout(500)
        try:
            moved_clip = clip_a() != before_a and clip_b() != before_b
        except Exception:  # the frame was redrawn under the drag
            moved_clip = False
        if moved_clip:
            break
    assert moved_clip, "dragging the divider must move the clip"
    # a click on the swipe map selects the cell under it too (list and highlight follow)
    def in_area(b: dict, fx: float, fy: float) -> tuple[float, float]:
        """A point at (fx, fy) of the part of the swipe map (box ``b``) that shows the analysed area
        (its date-A image): the maps were panned above, so the area fills only part of the map."""
        _, f = _map_frame(page, 2)
        ib = f.locator(".leaflet-swipeA-pane img.leaflet-image-layer").first.bounding_box()
        x0, y0 = max(b["x"], ib["x"]), max(b["y"], ib["y"])
        x1, y1 = min(b["x"] + b["width"], ib["x"] + ib["width"]), min(b["y"] + b["height"], ib["y"] + ib["height"])
        return x0 + (x1 - x0) * fx, y0 + (y1 - y0) * fy

    assert click_selects(2, [lambda b, fx=fx, fy=fy: in_area(b, fx, fy)
                             for fx, fy in ((0.35, 0.45), (0.3, 0.6), (0.45, 0.35), (0.6, 0.6))]), \
        "a click on the swipe map must select the cell under it"
    _, f_s = _map_frame(page, 2)
    f_s.locator('path.leaflet-interactive[stroke="#00e5ff"]').wait_for(timeout=60_000)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.nth(3).wait_for(timeout=60_000)  # probabilities, spectra, gains/losses, transitions
    text = page.locator('[data-testid="stMain"]').inner_text()
    for expected in ("Class probabilities", "Spectral signature", "From-to transitions", "Change map",
                     "Different seasons", "Gains and losses"):
        assert expected in text
    page.set_viewport_size({"width": 1400, "height": 3400})
    page.wait_for_timeout(1500)
    wait_idle(page)  # the last click's details drawn, not faded as out of date
    page.screenshot(path=str(SHOTS / "compare.png"))
    _no_errors(page)
