"""Many users at once: several browser sessions against one app server, each with its own analysis.

Used by ``tests/test_many_users.py`` (correctness: all finish, no session sees another's analysis,
the models are loaded once) and ``bench/bench_many_users.py`` (figures: the slowest session's time
and the server's peak memory). Playwright's async API drives one Chromium with one browser context
(its own cookies and Streamlit session) per user.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from tests.app_server import CHROMIUM_ARGS

MODEL_LOG_LINE = "lulc: loaded"


@dataclass(frozen=True)
class SessionPlan:
    """What one user does: a demo area, opened from the home page's button or from a shared link
    (the link also sets the change level, so two sessions on one area still differ)."""

    user: int
    area: str
    via: str  # "home" or "link"
    level: str = "group"


@dataclass
class SessionResult:
    plan: SessionPlan
    seconds: float = 0.0
    caption: str = ""  # the Compare page's "Date A: ... | Date B: ..." line
    level_shown: str = ""
    problems: list[str] = field(default_factory=list)


def demo_windows() -> dict[str, tuple[str, str, list[str]]]:
    """Demo area -> (window A, window B, the acquisition dates the analysis must show)."""
    from lulc_core import season
    from lulc_core.providers.factory import make_provider

    provider = make_provider("demo")
    areas = provider.areas()
    out = {}
    for area, (wa, wb) in season.demo_presets(areas).items():
        aoi = provider.area_aoi(area)
        dates = [acq.date.isoformat() for w in (wa, wb) for acq in provider.search(aoi, w)[:1]]
        out[area] = (str(wa), str(wb), dates)
    return out


def plans(n: int = 8) -> list[SessionPlan]:
    """``n`` users: each demo area once from the home page, then shared links at class level."""
    areas = list(demo_windows())
    out = [SessionPlan(i, areas[i], "home") for i in range(min(n, len(areas)))]
    out += [SessionPlan(i, areas[i % len(areas)], "link", "class") for i in range(len(out), n)]
    return out


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process so far (Linux VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _idle(page, timeout_s: float = 600) -> None:
    """Wait until Streamlit has finished running this session's script."""
    await page.wait_for_timeout(800)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if await page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        await page.wait_for_timeout(400)
    raise TimeoutError("the app kept running for too long")


async def _session(browser, url: str, plan: SessionPlan, windows: dict, places: dict,
                   shots: Path | None) -> SessionResult:
    res = SessionResult(plan)
    context = await browser.new_context(viewport={"width": 1300, "height": 1000})
    context.set_default_timeout(300_000)  # eight sessions share two cores: every step is slow
    page = await context.new_page()
    page.on("pageerror", lambda e: res.problems.append(f"page error: {e}"))
    t0 = time.perf_counter()
    step = "opening the app"
    try:
        wa, wb, _ = windows[plan.area]
        if plan.via == "home":
            await page.goto(url)
            await page.get_by_role("button", name="Analyse demo area").wait_for()
            await _idle(page)
            await page.locator('[data-testid="stSelectbox"]').filter(has_text="Demo area").first.click()
            await page.get_by_role("option").filter(has_text=places[plan.area]).first.click()
            await _idle(page)
            await page.get_by_role("button", name="Analyse demo area").click()
        else:
            query = urlencode({"area": plan.area, "a": wa, "b": wb, "level": plan.level, "conf": "0.5"})
            await page.goto(f"{url}/?{query}")
            # the home page's own button: the app has run (and opened the linked analysis), not just loaded
            await page.get_by_role("button", name="Analyse demo area").wait_for()
            await _idle(page)
            await page.get_by_role("link", name="Compare").first.click()
        step = "waiting for the Compare page"
        await page.get_by_role("heading", name="Compare two dates").wait_for(timeout=600_000)
        await _idle(page)
        step = "reading the dates shown"
        caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Date A:").first
        await caption.wait_for(timeout=120_000)
        res.caption = await caption.inner_text()
        # the headline metric is named after the change level: "Changed (counted)" (groups) or
        # "Changed (counted, classes)"
        res.level_shown = ("class" if await page.get_by_text("Changed (counted, classes)", exact=True).count()
                           else "group")
        step = "clicking a cell and the changed-only filter"
        frame = page.locator('iframe[title="streamlit_folium.st_folium"]').first
        await frame.wait_for(timeout=120_000)
        box = await frame.bounding_box()
        if box:
            await page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.55)
            await _idle(page)
        await page.get_by_text("Changed cells only").click()
        await _idle(page)
        if await page.locator('[data-testid="stException"]').count():
            res.problems.append("a traceback on the page")
        errors = page.locator('[data-testid="stAlertContentError"]')
        for i in range(await errors.count()):
            res.problems.append("error box: " + await errors.nth(i).inner_text())
    except Exception as exc:  # noqa: BLE001 - reported per session, the run goes on
        res.problems.append(f"{step}: {type(exc).__name__}: {exc}".splitlines()[0])
        if shots is not None:  # what the user saw when it went wrong
            shots.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(shots / f"user{plan.user}_{plan.area}.png"), full_page=True)
    res.seconds = time.perf_counter() - t0
    await context.close()
    return res


async def _run_all(url: str, session_plans: list[SessionPlan], chromium: str,
                   shots: Path | None) -> list[SessionResult]:
    from playwright.async_api import async_playwright

    windows = demo_windows()
    from lulc_core.providers.factory import make_provider

    areas = make_provider("demo").areas()
    places = {k: v.get("place", k) for k, v in areas.items()}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            return list(await asyncio.gather(*(_session(browser, url, plan, windows, places, shots)
                                               for plan in session_plans)))
        finally:
            await browser.close()


def run_sessions(url: str, session_plans: list[SessionPlan], chromium: str,
                 shots: Path | None = None) -> list[SessionResult]:
    """Run every plan at the same time, each in its own browser context; results in plan order. A
    session that fails leaves a screenshot in ``shots`` when given."""
    return asyncio.run(_run_all(url, session_plans, chromium, shots))


def check(results: list[SessionResult]) -> list[str]:
    """What went wrong across sessions: failures, and any session showing another's analysis."""
    windows = demo_windows()
    problems = []
    for r in results:
        who = f"user {r.plan.user} ({r.plan.area}, {r.plan.via})"
        problems += [f"{who}: {p}" for p in r.problems]
        own = windows[r.plan.area][2]
        if not all(d in r.caption for d in own):
            problems.append(f"{who}: expected dates {own} in {r.caption!r}")
        for other, (_, _, dates) in windows.items():
            if other != r.plan.area and all(d in r.caption for d in dates):
                problems.append(f"{who}: shows {other}'s analysis: {r.caption!r}")
        if r.level_shown != r.plan.level:
            problems.append(f"{who}: level {r.level_shown!r}, expected {r.plan.level}")
    return problems
