"""Eight users at once on one server (Playwright contexts in Debian's Chromium): every session
finishes its own demo analysis, none sees another's, and the models are loaded once.

Skipped where Chromium is missing, except in CI (``CI=true``), where that is a failure. The
figures (slowest session, peak memory) come from ``bench/bench_many_users.py``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but Chromium is missing at {CHROMIUM}: install it with apt-get install chromium")
    pytest.skip(f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium) to run browser tests",
                allow_module_level=True)
pytest.importorskip("playwright.async_api")

from tests.app_server import start_app  # noqa: E402
from tests.many_users import MODEL_LOG_LINE, check, plans, run_sessions  # noqa: E402


def test_eight_sessions_at_once(tmp_path):
    log = tmp_path / "streamlit.log"
    proc, url = start_app(tmp_path / "cache", log)
    try:
        session_plans = plans(8)
        assert len({(p.area, p.level) for p in session_plans}) == 8  # eight different analyses
        results = run_sessions(url, session_plans, CHROMIUM, Path(__file__).parent / "screenshots" / "many_users")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert check(results) == [], [(r.plan, r.seconds) for r in results]
    loads = [line for line in log.read_text().splitlines() if line.startswith(MODEL_LOG_LINE)]
    assert len(loads) == 2, loads  # the per-window and the dense model, once each for all sessions
