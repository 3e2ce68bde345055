"""Cancel a running analysis in the browser: the dashboard on Sentinel Hub (the project's fake server,
each Process API answer held back a few seconds), Run, then Cancel. The run stops after the request in
flight, says so, and stores nothing: no half analysis, the Compare page still has none.

Skipped where Chromium is missing, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import time

import pytest

from tests.app_server import CHROMIUM_ARGS, start_app, stop_app
from tests.fake_sh_fixture import fake_sh_server  # noqa: F401  (module-scoped fixture)
from tests.compare_page import wait_idle
from tests.test_browser import CHROMIUM, playwright

PROCESS_DELAY_S = 6.0


@pytest.fixture()
def sh_app_url(fake_sh_server, tmp_path):  # noqa: F811
    fake = fake_sh_server
    fake.reset()
    fake.inject("process", delay_s=PROCESS_DELAY_S, times=None)
    env = dict(SH_CLIENT_ID=fake.client_id, SH_CLIENT_SECRET=fake.client_secret, SH_BASE_URL=fake.base_url,
               SH_TOKEN_URL=fake.token_url, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    if fake.ca_file is not None:
        env["REQUESTS_CA_BUNDLE"] = str(fake.ca_file)
    else:
        env["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    proc, url = start_app(tmp_path / "cache", tmp_path / "streamlit.log", env)
    yield url, fake
    stop_app(proc)
    fake.reset()


def test_cancel_stops_a_running_analysis_and_keeps_nothing_half_done(sh_app_url):
    url, fake = sh_app_url
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        page.get_by_role("link", name="Area and dates").first.wait_for(timeout=60_000)
        wait_idle(page)
        page.get_by_role("link", name="Area and dates").first.click()
        # the home page also has a "Demo area" label: wait for the Area page's own radio before clicking
        how = page.locator('[data-testid="stRadio"]').filter(has_text="Upload GeoJSON")
        how.wait_for(timeout=120_000)
        how.get_by_text("Demo area", exact=True).click()
        wait_idle(page)
        use = page.get_by_role("button", name="Use this demo area")
        use.wait_for(timeout=60_000)
        use.click()
        wait_idle(page)
        run = page.get_by_role("button", name="Run analysis")
        run.wait_for()
        assert run.is_enabled()
        requests_before = fake.count("process")
        run.click()
        cancel = page.get_by_role("button", name="Cancel")
        cancel.wait_for(timeout=30_000)
        started = time.monotonic()
        cancel.click()
        page.get_by_text("Analysis cancelled").wait_for(timeout=60_000)
        waited = time.monotonic() - started
        wait_idle(page)
        assert page.get_by_text("Analysis ready").count() == 0
        # only the request in flight finished: date B was never asked for
        assert fake.count("process") - requests_before <= 1
        assert waited < PROCESS_DELAY_S + 20
        page.get_by_role("link", name="Compare").first.click()
        page.get_by_text("No analysis yet").wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
