"""Shared test helpers: paths to shipped fixtures and to ../shared (optional)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = Path(os.environ.get("LULC_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; skips the test with a clear reason when it is absent."""
    p = SHARED.joinpath("data", *parts)
    if not p.exists():
        pytest.skip(f"needs the project's shared data at {p} (absent on this machine; set LULC_SHARED)")
    return p
