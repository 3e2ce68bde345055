"""Screenshots of the dashboard on a demo area (Playwright driving Debian's Chromium): the Compare
page, then the Area and dates page (with the acquisitions timeline) and the Model page.

Usage: python scripts/screenshot_demo.py [--area pisa] [--out docs/screenshot_compare.png]
           [--area-out docs/screenshot_area.png] [--model-out docs/screenshot_model.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lulc_core.settings import load_settings  # noqa: E402
from tests.app_server import CHROMIUM_ARGS, start_app, stop_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--area", default="pisa")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot_compare.png"))
    ap.add_argument("--height", type=int, default=2600)
    ap.add_argument("--area-out", default=str(ROOT / "docs" / "screenshot_area.png"))
    ap.add_argument("--home-out", default=str(ROOT / "docs" / "screenshot_home.png"))
    ap.add_argument("--model-out", default=str(ROOT / "docs" / "screenshot_model.png"))
    args = ap.parse_args()
    log = Path(tempfile.mkdtemp()) / "streamlit.log"
    proc, url = start_app(load_settings().cache_dir, log, timeout_s=120)  # as `make run`, the usual scene cache
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": args.height})
            page.goto(url)
            page.get_by_text("LULC Change Explorer").first.wait_for(timeout=60_000)
            page.get_by_text("Test accuracy on held-out EuroSAT images").wait_for(timeout=120_000)
            page.set_viewport_size({"width": 1400, "height": 900})
            page.screenshot(path=args.home_out, full_page=False)
            page.set_viewport_size({"width": 1400, "height": args.height})
            page.locator('[data-testid="stSelectbox"]').first.click()
            page.get_by_role("option").filter(has_text=args.area).first.click()
            page.get_by_role("button", name="Analyse demo area").click()
            page.get_by_text("Compare two dates").wait_for(timeout=300_000)
            page.get_by_text("Cell details").wait_for(timeout=300_000)
            page.wait_for_timeout(8000)
            page.screenshot(path=args.out, full_page=False)
            for name, out, wait_text in (("Area and dates", args.area_out, "Imagery over this area"),
                                         ("Model", args.model_out, "In plain words")):
                page.locator('[data-testid="stSidebarNav"] a', has_text=name).click()
                page.get_by_text(wait_text).first.wait_for(timeout=120_000)
                page.wait_for_timeout(6000)
                page.set_viewport_size({"width": 1400, "height": 1500})
                page.screenshot(path=out, full_page=False)
            browser.close()
        print(f"wrote {args.out}, {args.area_out}, {args.model_out}")
    finally:
        stop_app(proc)


if __name__ == "__main__":
    main()
