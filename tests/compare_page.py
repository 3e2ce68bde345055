"""Browser helpers for the Compare page's maps (Playwright): a page that records what it sends to the
server, the four linked maps' state read from their iframes, clicks that select a cell. Used by
tests/test_browser_maps.py and bench/bench_ui.py."""

from __future__ import annotations

import time

FRAMES = 'iframe[title="streamlit_folium.st_folium"]'
N_MAPS = 4  # date A, date B, swipe, change


def wait_idle(pg, timeout_s: float = 240) -> None:
    """Wait until Streamlit has finished running the script."""
    pg.wait_for_timeout(800)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if pg.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        pg.wait_for_timeout(300)
    raise AssertionError("the app kept running for too long")


def box(locator, timeout_s: float = 30) -> dict:
    """An element's bounding box, scrolled into view, waiting while it has none (an iframe being attached
    or replaced by a rerun has no box for a moment; the locator finds the replacement)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            locator.scroll_into_view_if_needed(timeout=5_000)
            if (b := locator.bounding_box(timeout=5_000)) is not None:
                return b
        except Exception:  # detached while being redrawn
            pass
        time.sleep(0.3)
    raise AssertionError(f"no bounding box for {locator}")


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
    wait_idle(pg)
    button = pg.get_by_role("button", name="Analyse demo area")
    button.wait_for(timeout=180_000)  # a fresh server loads the model first
    button.click()
    pg.get_by_text("Cell details").wait_for(timeout=120_000)
    maps_ready(pg)
    wait_idle(pg)


def click_until_selected(pg, index: int, fractions) -> float:
    """Click map ``index`` at ``fractions`` of its box until the cell list changes; seconds the change took."""
    for fx, fy in fractions:
        before = selection(pg)
        b = box(pg.locator(FRAMES).nth(index))
        t0 = time.monotonic()
        pg.mouse.click(b["x"] + b["width"] * fx, b["y"] + b["height"] * fy)
        try:
            wait_for(pg, lambda: selection(pg) != before, 10, "no selection")
            return time.monotonic() - t0
        except AssertionError:  # the cell already selected, or outside the area: another point
            continue
    raise AssertionError(f"a click on map {index} must select the cell under it")
