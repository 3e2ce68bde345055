"""Real-browser tests of the Compare page's maps (issue 18): pan, zoom and the swipe divider stay in the
browser, a click reruns only the maps' fragment without reloading any map, and a link restores the
selected cell and the view. Playwright driving Debian's Chromium, as tests/test_browser.py (skipped
where Chromium is missing, except in CI)."""

from __future__ import annotations

import pytest

from tests.test_browser import CHROMIUM, SHOTS, app_url, playwright  # noqa: F401 (skips as it does; the server)
from tests.app_server import CHROMIUM_ARGS
from tests.compare_page import (FRAMES, N_MAPS, box, click_until_selected, divider, in_map, maps_ready, new_page,
                                open_demo, selection, views, wait_for, wait_idle)


@pytest.fixture()
def browser():
    SHOTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_zoom_divider_and_click_stay_in_the_browser(app_url, browser):  # noqa: F811 (the imported fixture)
    pg = new_page(browser)
    open_demo(pg, app_url)
    # the true-colour images are served once by the app (not inlined in each map's HTML) and load
    served = ("Array.from(w.document.querySelectorAll('img.leaflet-image-layer'))"
              ".filter(i => i.src.includes('/app/static/maps/') && i.complete && i.naturalWidth > 0).length")
    wait_for(pg, lambda: [in_map(pg, i, served) for i in range(N_MAPS)] == [1, 1, 2, 1], 10,
             "maps A, B and the change map show one served true-colour image, the swipe map two")
    for i in range(N_MAPS):  # a marker on each map's window: gone if Streamlit reloads the iframe
        in_map(pg, i, f"w.__testMark = {i + 1}")
    z0 = views(pg)[0][0]
    assert all(v[0] == z0 for v in views(pg))
    # zoom map A: every map follows in the browser and nothing is sent to the server
    pg.wait_for_timeout(1500)
    sent = len(pg.sent)
    el = pg.locator(FRAMES).nth(0)
    el.scroll_into_view_if_needed()
    zoom_in = pg.frame_locator(FRAMES).nth(0).locator("a.leaflet-control-zoom-in")
    zoom_in.click()
    pg.wait_for_timeout(350)  # Leaflet's zoom animation (250 ms); a click during it adds nothing
    zoom_in.click()  # two quick zooms: nothing snaps back
    wait_for(pg, lambda: all(v[0] == z0 + 2 for v in views(pg)), 5, "the other maps must follow map A's zoom")
    z0 += 1  # (the zoom the maps must keep below is z0 + 1)
    pg.wait_for_timeout(1500)
    assert len(pg.sent) == sent, "a zoom must not send anything to the server (no rerun)"
    # drag the swipe divider to 3/4: the divider moves, no cell is selected, nothing is sent
    before, sent = selection(pg), len(pg.sent)
    swipe = pg.locator(FRAMES).nth(2)
    swipe.scroll_into_view_if_needed()
    b = box(swipe)
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
    wait_idle(pg)
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
    # switch the class layer off on map A: B and the swipe map follow; a full rerun (a sidebar slider)
    # keeps it off, keeps zoom and divider, applies the new opacity and reloads no map either
    def class_layer_on() -> list[bool]:
        return [in_map(pg, i, "Object.values(m._layers).some(l => l.options && l.options.lulcLayer === 'cls')")
                for i in range(3)]

    assert class_layer_on() == [True, True, True]
    in_map(pg, 0, "[...w.document.querySelectorAll('.leaflet-control-layers-overlays label')]"
                  ".find(l => l.textContent.trim() === 'class map').querySelector('input').click()")
    wait_for(pg, lambda: class_layer_on() == [False, False, False], 5, "the class layer must go on every map")
    thumb = pg.locator('[data-testid="stSlider"]').filter(has_text="Class map opacity").locator('input[type="range"]')
    thumb.focus()
    pg.keyboard.press("ArrowLeft")  # 0.60 -> 0.55
    wait_for(pg, lambda: abs(float(thumb.input_value()) - 0.55) < 1e-6, 5, "the slider did not move")
    pg.wait_for_timeout(1000)
    wait_idle(pg)
    opacities = "[...new Set(Object.keys(w).map(k => { try { return w[k]; } catch (e) { return null; } })" \
                ".filter(l => l instanceof w.L.Layer && l.options.lulcLevel === 'group').map(l => l.options.opacity))]"
    def faded() -> list:
        return [in_map(pg, i, opacities) for i in range(3)]

    try:
        wait_for(pg, lambda: all(len(o) == 1 and abs(o[0] - 0.55) < 1e-6 for o in faded()), 10, "")
    except AssertionError:
        raise AssertionError(f"the new opacity (0.55) must reach the class images: {faded()}") from None
    assert class_layer_on() == [False, False, False]
    assert all(v[0] == z0 + 1 for v in views(pg)) and abs(divider(pg) - moved) < 1e-9
    assert [in_map(pg, i, "w.__testMark") for i in range(N_MAPS)] == [1, 2, 3, 4], "a rerun reloaded a map iframe"
    # a new confidence threshold redraws the maps that show the change state (new images): they come
    # back at the same view with the same layer choices, kept in the tab
    thumb = pg.locator('[data-testid="stSlider"]').filter(has_text="Confidence threshold").locator('input[type="range"]')
    thumb.focus()
    pg.keyboard.press("ArrowLeft")
    pg.wait_for_timeout(1000)
    wait_idle(pg)
    wait_for(pg, lambda: in_map(pg, 0, "w.__testMark") is None and in_map(pg, 0, "!!m.__lulcSettings"), 30,
             "map A shows the change state: it is drawn anew")
    maps_ready(pg)
    assert all(v[0] == z0 + 1 for v in views(pg)), views(pg)
    assert class_layer_on() == [False, False, False] and abs(divider(pg) - moved) < 1e-9
    pg.screenshot(path=str(SHOTS / "compare_maps.png"))
    # the downloads are made when asked for: one arrives whole
    with pg.expect_download(timeout=60_000) as download:
        pg.get_by_role("button", name="Tables (CSV)").click()
    path = download.value.path()
    assert path.stat().st_size > 100 and path.read_bytes()[:2] == b"PK", download.value.suggested_filename
    assert pg.errors == [] and pg.not_found == [] and pg.outside == [], (pg.errors, pg.not_found, pg.outside)

    # the link, opened in a fresh browser context (no sessionStorage): same cell, same view
    link = pg.url
    pg2 = new_page(browser)
    pg2.goto(link)
    pg2.get_by_text("Cell details").wait_for(timeout=120_000)
    maps_ready(pg2)
    wait_idle(pg2)
    assert f"Row {r}, col {c}:" in selection(pg2), selection(pg2)
    for z, la, ln in views(pg2):
        assert z == zoom and abs(la - lat) < 1e-4 and abs(ln - lng) < 1e-4, (views(pg2), (zoom, lat, lng))
    # a deep link makes Streamlit's front end probe <page>/_stcore/... before the server's root (404s)
    assert all("/_stcore/" in u for u in pg2.not_found), pg2.not_found
    assert [e for e in pg2.errors if "404" not in e] == [] and pg2.outside == [], (pg2.errors, pg2.outside)


def test_a_new_analysis_opens_on_its_own_area(app_url, browser):  # noqa: F811
    """The view is kept per analysis: after zooming one, a second analysis in the same tab opens fitted
    to its own area (not at the first one's view, which the tab and the URL still hold)."""
    pg = new_page(browser)
    open_demo(pg, app_url)
    in_map(pg, 0, "m.setZoom(m.getZoom() + 2, {animate: false})")
    first = views(pg)[0]
    pg.locator('[data-testid="stSidebarNav"] a', has_text="Home").click()
    wait_idle(pg)
    pg.locator('[data-testid="stSelectbox"]').filter(has_text="Demo area").locator("input").click()
    pg.get_by_role("option", name="Pisa").first.click()
    wait_idle(pg)
    pg.get_by_role("button", name="Analyse demo area").click()
    pg.get_by_text("Cell details").wait_for(timeout=120_000)
    wait_for(pg, lambda: in_map(pg, 0, "Math.abs(m.getCenter().lng - 3.9) > 1"), 60, "the maps show the first area")
    maps_ready(pg)
    inside = "Object.values(m._layers).some(l => l instanceof w.L.ImageOverlay && l.getBounds().contains(m.getCenter()))"
    assert all(in_map(pg, i, inside) for i in range(N_MAPS)), (first, views(pg))
    assert all(v[0] < first[0] for v in views(pg)), (first, views(pg))  # fitted to the area, not zoomed in
    assert pg.errors == [] and pg.outside == [], (pg.errors, pg.outside)
