"""How fast the dashboard answers in a browser (issue 18): a fresh server to the first demo analysis on
the Compare page, a click on a map to its cell details, and what a zoom or a pan sends to the server.
Needs Chromium (apt-get install chromium) and Playwright.

    .venv/bin/python -m bench.bench_ui [--clicks 7] [--fresh-runs 3] [--plain] [--out docs/bench_ui.txt]

Figures: ``fresh server -> Compare`` is from starting ``python -m ui.serve`` as ``make run`` does
(``--plain``: ``streamlit run app.py``), a new process each time (empty scene
cache, models not loaded) to the four maps drawn after one click on "Analyse demo area" (the home
page's default area); ``click -> details`` is from a mouse click on map A to the cell list showing
the new cell (each click on a cell not yet shown; then the same cells again, their windows cached);
``zoom/pan -> messages`` counts the messages the page sends to the server during zooms and pans
(each would be a rerun).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.app_server import CHROMIUM_ARGS, start_app, stop_app
from tests.compare_page import FRAMES, maps_ready, new_page, selection, wait_idle

# points of map A to click, as fractions of its box (a spread of cells around the area's middle)
POINTS = [(0.35, 0.4), (0.6, 0.45), (0.45, 0.65), (0.55, 0.3), (0.3, 0.6), (0.65, 0.6), (0.5, 0.5),
          (0.4, 0.3), (0.6, 0.7), (0.35, 0.55), (0.7, 0.4), (0.45, 0.45)]


def click_times(pg, points) -> list[float]:
    """Seconds from a click on map A at each point to the new cell in the list (points that land on the
    cell already selected or outside the area are skipped)."""
    out = []
    for fx, fy in points:
        before = selection(pg)
        el = pg.locator(FRAMES).nth(0)
        el.scroll_into_view_if_needed()
        b = el.bounding_box()
        t0 = time.perf_counter()
        pg.mouse.click(b["x"] + b["width"] * fx, b["y"] + b["height"] * fy)
        while time.perf_counter() - t0 < 15:
            if selection(pg) != before:
                out.append(time.perf_counter() - t0)
                break
            pg.wait_for_timeout(20)
        wait_idle(pg)
    return out


def fresh_to_compare(browser, work: Path, plain: bool):
    """Start a server (new process, empty cache), open the home page, click "Analyse demo area" and wait
    for the four maps: (process, page, (total s, server up s, home page's button s, click -> maps s))."""
    t0 = time.perf_counter()
    proc, url = start_app(work / "cache", work.with_suffix(".log"), plain=plain)
    t_server = time.perf_counter() - t0
    pg = new_page(browser)
    pg.goto(url)
    pg.get_by_role("button", name="Analyse demo area").wait_for(timeout=300_000)
    t_home = time.perf_counter()
    pg.get_by_role("button", name="Analyse demo area").click()
    t_click = time.perf_counter()
    pg.get_by_text("Cell details").wait_for(timeout=300_000)
    maps_ready(pg)
    t_compare = time.perf_counter()
    wait_idle(pg)
    return proc, pg, (t_compare - t0, t_server, t_home - t0, t_compare - t_click)


def warm_up_stages(work: Path) -> str:
    """The server log's warm-up stage times (ui.warm), e.g. "; warm-up: session 2.4 s, models 0.6 s"."""
    found = re.findall(r"warm-up '(\w+)' done in ([\d.]+) s", work.with_suffix(".log").read_text(errors="replace"))
    return "; warm-up: " + ", ".join(f"{name} {sec} s" for name, sec in found) if found else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=7, help="clicks on new cells (then as many on the same cells)")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium"))
    ap.add_argument("--out", type=Path, help="also write the figures to this file")
    ap.add_argument("--fresh-runs", type=int, default=3, help="fresh servers timed (the last one goes on)")
    ap.add_argument("--plain", action="store_true",
                    help="start the server with plain `streamlit run app.py` (no warm-up thread before the first page)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    lines = [f"# bench_ui: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"load average {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')}"]
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        how = "streamlit run app.py" if args.plain else "python -m ui.serve"
        totals = []
        for run in range(args.fresh_runs):
            proc, pg, figures = fresh_to_compare(browser, Path(tmp) / f"run{run}", args.plain)
            totals.append(figures[0])
            lines.append(f"fresh server ({how}) -> Compare (4 maps drawn): {figures[0]:.1f} s "
                         f"(server up {figures[1]:.1f} s, home page's button {figures[2]:.1f} s, "
                         f"'Analyse demo area' -> maps {figures[3]:.1f} s){warm_up_stages(Path(tmp) / f'run{run}')}")
            if run < args.fresh_runs - 1:
                stop_app(proc)
                pg.close()
        if len(totals) > 1:
            lines.append(f"fresh server -> Compare, {len(totals)} runs: median {statistics.median(totals):.1f} s, "
                         f"min {min(totals):.1f}, max {max(totals):.1f}")
        try:
            # zoom and pan map A: messages sent to the server
            pg.wait_for_timeout(1500)
            sent = len(pg.sent)
            frame = pg.frame_locator(FRAMES).nth(0)
            pg.locator(FRAMES).nth(0).scroll_into_view_if_needed()
            for sel in ("a.leaflet-control-zoom-in", "a.leaflet-control-zoom-in", "a.leaflet-control-zoom-out"):
                frame.locator(sel).click()
                pg.wait_for_timeout(400)
            b = pg.locator(FRAMES).nth(0).bounding_box()
            pg.mouse.move(b["x"] + b["width"] * 0.5, b["y"] + b["height"] * 0.7)
            pg.mouse.down()
            pg.mouse.move(b["x"] + b["width"] * 0.5, b["y"] + b["height"] * 0.4, steps=10)
            pg.mouse.up()
            pg.wait_for_timeout(2000)
            lines.append(f"3 zooms + 1 pan on map A -> messages to the server: {len(pg.sent) - sent}")
            # clicks: new cells, then the same cells again
            points = POINTS[:max(args.clicks, 1)]
            new = click_times(pg, points)
            again = click_times(pg, points)
            for name, times in (("new cells", new), ("same cells again", again)):
                if times:
                    lines.append(f"click -> cell details, {name}: median {statistics.median(times):.2f} s, "
                                 f"min {min(times):.2f}, max {max(times):.2f} ({len(times)} clicks)")
            lines.append(f"console errors: {len(pg.errors)}")
        finally:
            stop_app(proc)
            browser.close()
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
