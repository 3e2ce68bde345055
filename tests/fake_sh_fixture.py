"""Pytest fixtures: a running FakeSentinelHub and a SentinelHubProvider pointed at it.

``fake_sh_server`` (module-scoped) starts one fake over the bundled demo scenes; ``fake_sh``
(function-scoped) resets its faults and request log, and makes the process trust its
self-signed certificate (``REQUESTS_CA_BUNDLE``; or, only when the fake had to fall back to
plain HTTP, ``OAUTHLIB_INSECURE_TRANSPORT``), both through monkeypatch so nothing leaks past
the test. ``sh_provider`` is a SentinelHubProvider for it with short sleeps and timeouts.
``trust_fake`` does the same environment set-up for a fake a test starts itself (e.g. over
scenes written by ``write_hazy_scenes``, a synthetic three-date window with haze and clouds).

Use with ``from tests.fake_sh_fixture import *  # noqa``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import rasterio
from affine import Affine

from lulc_core.aoi import AOI
from lulc_core.bands import EUROSAT_BAND_ORDER
from tests.fakes.sentinelhub import FakeSentinelHub
from lulc_core.providers.sentinelhub import SentinelHubProvider, SentinelHubSettings

__all__ = ["fake_sh_server", "fake_sh", "sh_settings", "sh_provider", "make_sh_settings", "trust_fake",
           "write_hazy_scenes", "HAZY_AOI", "HAZY_DATES", "HAZY_WINDOW"]


def make_sh_settings(fake: FakeSentinelHub, **overrides) -> SentinelHubSettings:
    """Settings for ``fake`` with test-friendly retries: 2 attempts, 10 ms sleeps, 3 s timeout."""
    kwargs = dict(client_id=fake.client_id, client_secret=fake.client_secret, base_url=fake.base_url,
                  token_url=fake.token_url, max_download_attempts=2, download_sleep_time=0.01, timeout_s=3.0,
                  max_rate_limit_retries=3, rate_limit_default_wait_s=0.05)
    kwargs.update(overrides)
    return SentinelHubSettings(**kwargs)


@pytest.fixture(scope="module")
def fake_sh_server() -> Iterator[FakeSentinelHub]:
    with FakeSentinelHub() as fake:
        yield fake


def trust_fake(fake: FakeSentinelHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this test's requests trust ``fake`` (its certificate, no proxy), through monkeypatch."""
    if fake.ca_file is not None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
    else:
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain-HTTP fallback, this test only
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)


@pytest.fixture
def fake_sh(fake_sh_server: FakeSentinelHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSentinelHub]:
    fake_sh_server.reset()
    trust_fake(fake_sh_server, monkeypatch)
    yield fake_sh_server
    fake_sh_server.reset()


@pytest.fixture
def sh_settings(fake_sh: FakeSentinelHub) -> SentinelHubSettings:
    return make_sh_settings(fake_sh)


@pytest.fixture
def sh_provider(sh_settings: SentinelHubSettings) -> SentinelHubProvider:
    return SentinelHubProvider(sh_settings)


# -- a synthetic window of three dates: haze on one, clouds on the others ----------------------------
#: 3 x 2 patches (192 x 128 px) in UTM 33N, near Norcia.
HAZY_AOI = AOI.from_bbox(13.000, 42.800, 13.012, 42.808, name="synthetic-haze")
HAZY_DATES = (dt.date(2020, 6, 3), dt.date(2020, 6, 13), dt.date(2020, 6, 23))
HAZY_WINDOW = "2020-06-01/2020-06-30"
#: Regions on the AOI grid (rows, cols): cloud on date 1 (A), on date 2 (B, larger), on all three
#: dates (D); no data on date 2 (E); clear everywhere (F). Date 3 is hazy all over (+450 DN in
#: B01..B05, under every cloud test) and otherwise has the least cloud, so a least-cloudy pick
#: would take the hazy date.
HAZY_REGIONS = {"A": (slice(8, 40), slice(8, 40)), "B": (slice(8, 56), slice(72, 120)),
                "D": (slice(80, 104), slice(8, 32)), "E": (slice(80, 120), slice(64, 80)),
                "F": (slice(60, 76), slice(40, 60))}
HAZE_DN = 450
_MARGIN = 32  # source pixels around the AOI grid


def _base_bands(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Vegetation-like Level-1C DN per band (EuroSAT order), smooth per 8 px block plus texture."""
    means = {"B01": 1300, "B02": 1000, "B03": 800, "B04": 600, "B05": 1100, "B06": 2200, "B07": 2700,
             "B08": 3000, "B09": 500, "B10": 60, "B11": 1700, "B12": 900, "B8A": 3100}
    out = np.empty((13, h, w), dtype=np.float64)
    for i, b in enumerate(EUROSAT_BAND_ORDER):
        blocks = rng.normal(1.0, 0.08, ((h + 7) // 8, (w + 7) // 8))
        out[i] = means[b] * np.kron(blocks, np.ones((8, 8)))[:h, :w] + rng.normal(0, 5, (h, w))
    return out


def write_hazy_scenes(root: Path, seed: int = 7) -> Path:
    """Write three 13-band stacks ``<root>/synthetic/s2_<YYYYMMDD>.tif`` covering HAZY_AOI's grid.

    On the AOI's own grid (same CRS, 10 m, pixel-aligned) with a margin, so the provider's
    bilinear resampling gives the written values back.
    """
    grid = HAZY_AOI.grid
    h, w = grid.height + 2 * _MARGIN, grid.width + 2 * _MARGIN
    t = grid.transform
    transform = Affine(t.a, 0, t.c - _MARGIN * t.a, 0, t.e, t.f - _MARGIN * t.e)
    rng = np.random.default_rng(seed)
    base = _base_bands(rng, h, w)
    noise_sd = np.maximum(0.025 * base.mean(axis=(1, 2)), 2.0)[:, None, None]  # per date; B10 stays > 0
    cloud_dn = np.array([5200, 5600, 5400, 5500, 5600, 5800, 5900, 6000, 3000, 220, 3900, 3200, 6000], float)

    def region(name: str) -> tuple[slice, slice]:
        r, c = HAZY_REGIONS[name]
        return slice(r.start + _MARGIN, r.stop + _MARGIN), slice(c.start + _MARGIN, c.stop + _MARGIN)

    folder = root / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    for k, day in enumerate(HAZY_DATES):
        data = base + rng.normal(0, 1, base.shape) * noise_sd
        if k == 2:
            data[:5] += HAZE_DN  # B01..B05 brighter: haze that no cloud test flags
        clouds = {0: ["A", "D"], 1: ["B", "D"], 2: ["D"]}[k]
        for name in clouds:
            r, c = region(name)
            data[:, r, c] = cloud_dn[:, None, None] + rng.normal(0, 40, (13, r.stop - r.start, c.stop - c.start))
        if k == 1:
            r, c = region("E")
            data[:, r, c] = 0
        arr = np.clip(np.rint(data), 0, 65535).astype(np.uint16)
        path = folder / f"s2_{day.strftime('%Y%m%d')}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=13, dtype="uint16", nodata=0,
                           crs=grid.crs, transform=transform) as ds:
            ds.write(arr)
            for i, b in enumerate(EUROSAT_BAND_ORDER, 1):
                ds.set_band_description(i, b)
    return root
