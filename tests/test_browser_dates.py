"""Browser test of the Area page's dates and places: the place search moves the draw map, a typed
date applies on Enter, a click on an acquisition of the timeline sets a window (issue 18)."""

from __future__ import annotations

import pytest

from tests.compare_page import wait_idle
from tests.test_browser import SHOTS, _map_frame, _no_errors, app_url, page  # noqa: F401

playwright = pytest.importorskip("playwright.sync_api")


def _leaflet_view(frame) -> list[float] | None:
    return frame.locator(".leaflet-container").evaluate(
        "el => { for (const k in window) { try { const m = window[k]; if (m instanceof L.Map) "
        "return [m.getZoom(), m.getCenter().lat, m.getCenter().lng]; } catch (e) {} } return null; }")


def _type_range(pg, label: str, start: str, end: str) -> None:
    """Type a date range into a date field and press Enter (no blur, no click elsewhere)."""
    for which, day in (("start", start), ("end", end)):
        for part, value in zip(("year", "month", "day"), day.split("-")):
            seg = pg.get_by_role("spinbutton", name=f"{part}, {label} {which} date")
            seg.click()
            seg.type(value, delay=30)
    pg.keyboard.press("Enter")
    wait_idle(pg)


def test_place_search_typed_dates_and_timeline_clicks(app_url, page):  # noqa: F811
    page.goto(app_url)
    page.get_by_text("Test accuracy on held-out EuroSAT images").wait_for(timeout=120_000)  # st.navigation is up
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Area and dates").click()
    wait_idle(page)
    _, frame = _map_frame(page, 0)
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    # the place search moves the draw map (offline: GeoNames data from the package)
    box = page.get_by_role("textbox", name="Find a place")
    wait_idle(page)
    page.wait_for_timeout(3000)  # the draw map's first value reruns the page once
    wait_idle(page)
    box.click()
    box.type("saclay", delay=50)
    page.wait_for_timeout(500)
    box.press("Enter")
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "place_search.png"))
    found = page.get_by_role("combobox", name="Places found")  # the chosen place is the combobox's value
    found.wait_for(timeout=60_000)
    assert found.input_value() == "Saclay, France (demo area)", found.input_value()
    for _ in range(40):
        _, frame = _map_frame(page, 0)
        try:
            view = _leaflet_view(frame)
        except Exception:  # the map iframe being replaced
            view = None
        if view and abs(view[1] - 48.70) < 0.05 and abs(view[2] - 2.26) < 0.05:
            break
        page.wait_for_timeout(500)
    assert view and abs(view[1] - 48.70) < 0.05 and abs(view[2] - 2.26) < 0.05, view
    # a demo area: Norcia (acquisitions 2015-07-11 and 2017-10-18)
    page.get_by_text("Demo area", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Use this demo area").wait_for(timeout=60_000)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Demo area").click()
    page.get_by_role("option", name="Norcia, Italy").click()
    wait_idle(page)
    page.get_by_role("button", name="Use this demo area").click()
    wait_idle(page)
    page.get_by_text("Scene for date B").wait_for(timeout=60_000)
    # a typed window applies on Enter: nothing in May 2016, so Run is off and the warning says why
    _type_range(page, "Date B window", "2016-05-01", "2016-05-31")
    page.get_by_text("No scene in 2016-05-01/2016-05-31").wait_for(timeout=60_000)
    assert page.get_by_role("button", name="Run analysis").is_disabled()
    # a click on the 2017-10-18 acquisition sets date B's window to its month
    page.get_by_role("radiogroup", name="Clicking a date on the").get_by_text("date B", exact=True).click()
    wait_idle(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.scroll_into_view_if_needed()
    points = chart.locator("g.scatterlayer path.point")
    assert points.count() == 2
    last = points.nth(1)  # points are in date order
    b = last.bounding_box()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.mouse.click(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    wait_idle(page)
    page.get_by_text("Scene for date B").wait_for(timeout=60_000)
    assert page.get_by_text("No scene in 2016-05-01/2016-05-31").count() == 0
    assert not page.get_by_role("button", name="Run analysis").is_disabled()
    field = page.locator('[data-testid="stDateInput"]').filter(has_text="Date B window")
    shown = "".join(field.inner_text().split())  # the field shows its dates as year / month / day segments
    assert "2017-10-01–2017-10-31" in shown, shown
    page.screenshot(path=str(SHOTS / "area_dates.png"))
    _no_errors(page)
