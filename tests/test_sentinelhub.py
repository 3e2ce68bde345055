"""SentinelHubProvider driven through the real sentinelhub client over real HTTPS against the fake."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import requests
from sentinelhub import SentinelHubSession

from lulc_core.aoi import AOI
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.cache import SceneCache, cache_key
from lulc_core.errors import (CredentialsError, NoImageryError, ProviderError, QuotaError, RateLimitError)
from tests.fakes.sentinelhub import ORBIT_REDUCERS, QUOTA_EXCEEDED_BODY, FakeSentinelHub, clear_median_reduce
from lulc_core.providers.base import CachingProvider, ImageryProvider
from lulc_core.clouds import bright_cloud_mask
from lulc_core.providers.demo import DemoProvider
from lulc_core.providers.local import LocalFilesProvider
from lulc_core.providers.sentinelhub import (COMPOSITE_VERSION, ENDPOINTS, EVALSCRIPT_VERSION, SentinelHubProvider,
                                             SentinelHubSettings, composite_evalscript, evalscript, redact)
from lulc_core.collection import Collection
from lulc_core.scene import DateWindow
from tests.fake_sh_fixture import *  # noqa: F401,F403
from tests.fake_sh_fixture import (HAZY_AOI, HAZY_DATES, HAZY_WINDOW, make_sh_settings, trust_fake,
                                   write_hazy_scenes)

L1C, L2A = Collection.L1C, Collection.L2A
pytestmark = pytest.mark.filterwarnings("ignore::sentinelhub.exceptions.SHRateLimitWarning")

JULY_2015 = DateWindow.parse("2015-07-01/2015-07-31")
ALL_YEARS = DateWindow.parse("2015-01-01/2018-12-31")
SECRET = "test-secret"


@pytest.fixture(scope="module")
def demo():
    return DemoProvider()


@pytest.fixture(scope="module")
def small_aoi() -> AOI:
    """About 3 x 2 patches inside the demo area "norcia"."""
    return AOI.from_bbox(13.085, 42.790, 13.095, 42.796, name="norcia-small")


def _no_secret(text: str) -> None:
    assert SECRET not in text


# -- settings ------------------------------------------------------------------------------------
def test_settings_from_env_defaults_and_secret_hidden():
    s = SentinelHubSettings.from_env(env={"SH_CLIENT_ID": "abc", "SH_CLIENT_SECRET": "s3cr3t-value"})
    assert s.has_credentials and s.client_id == "abc" and s.client_secret == "s3cr3t-value"
    assert (s.endpoint, s.base_url, s.token_url) == ("cdse", *ENDPOINTS["cdse"])
    assert s.base_url == "https://sh.dataspace.copernicus.eu"
    for text in (repr(s), str(s), repr(SentinelHubProvider(s)), repr(s.to_shconfig()), str(s.to_shconfig())):
        assert "s3cr3t-value" not in text
    commercial = SentinelHubSettings.from_env(env={"SH_ENDPOINT": "sentinelhub"})
    assert commercial.base_url == "https://services.sentinel-hub.com"
    assert commercial.token_url.startswith("https://services.sentinel-hub.com/auth/realms/main/")
    assert not commercial.has_credentials
    with pytest.raises(ProviderError, match="unknown Sentinel Hub endpoint"):
        SentinelHubSettings(endpoint="nowhere")


def test_settings_environment_first_then_secrets():
    """One rule for every setting (lulc_core.settings): the environment, then the secrets (flat or table)."""
    env = {"SH_CLIENT_ID": "env-id", "SH_CLIENT_SECRET": "env-secret", "SH_BASE_URL": "https://env.example/"}
    s = SentinelHubSettings.from_env(env=env, secrets={"SH_CLIENT_ID": "st-id", "SH_CLIENT_SECRET": "st-secret",
                                                       "SH_TOKEN_URL": "https://st.example/tok"})
    assert (s.client_id, s.client_secret, s.base_url) == ("env-id", "env-secret", "https://env.example")
    assert s.token_url == "https://st.example/tok"  # not in the environment: from the secrets
    flat = SentinelHubSettings.from_env(env={}, secrets={"SH_CLIENT_ID": "st-id", "SH_CLIENT_SECRET": "st-secret"})
    assert (flat.client_id, flat.client_secret) == ("st-id", "st-secret")
    nested = SentinelHubSettings.from_env(env={}, secrets={"sentinelhub": {"client_id": "n-id", "client_secret": "n-s",
                                                                           "token_url": "https://t.example/tok"}})
    assert (nested.client_id, nested.client_secret, nested.token_url) == ("n-id", "n-s", "https://t.example/tok")
    assert SentinelHubSettings.from_env(env={}, secrets={}).has_credentials is False


def test_redact_masks_secrets_and_tokens():
    SentinelHubSettings(client_id="x", client_secret="very-private-42")
    text = redact("body grant_type=client_credentials&client_secret=abc&x=1 very-private-42 Bearer eyJ.a.b")
    assert "very-private-42" not in text and "client_secret=abc" not in text and "eyJ.a.b" not in text


def test_missing_credentials_fail_before_any_request(fake_sh, small_aoi):
    p = SentinelHubProvider(make_sh_settings(fake_sh, client_id="", client_secret=""))
    with pytest.raises(CredentialsError, match="SH_CLIENT_ID"):
        p.search(small_aoi, JULY_2015)
    assert fake_sh.count() == 0


# -- search --------------------------------------------------------------------------------------
def test_search_sorted_with_cloud_tile_and_pagination(fake_sh, sh_settings, demo):
    aoi = demo.area_aoi("pisa")
    p = SentinelHubProvider(sh_settings, search_limit=1)
    assert isinstance(p, ImageryProvider)
    acqs = p.search(aoi, ALL_YEARS)
    assert [a.date.isoformat() for a in acqs] == ["2015-07-04", "2018-02-11"]
    assert all(a.provider == "sentinelhub" and a.tile_id == "T32TPP" for a in acqs)
    assert acqs[0].id == "S2A_MSIL1C_20150704T101006_N0204_R022_T32TPP_20150704T101337"
    assert [a.cloud_cover for a in acqs] == [a.cloud_cover for a in demo.search(aoi, ALL_YEARS)]
    assert fake_sh.count("catalog") == 2  # two pages of one feature
    assert fake_sh.catalog_payloads[1]["next"] == 1
    assert fake_sh.catalog_payloads[0]["collections"] == ["sentinel-2-l1c"]
    assert "intersects" in fake_sh.catalog_payloads[0]
    # the cloud filter reaches the catalog (cql2-text)
    clear = p.search(aoi, ALL_YEARS, max_cloud=0.05)
    assert [a.date.isoformat() for a in clear] == ["2018-02-11"]
    assert "eo:cloud_cover <= 0.05" in fake_sh.catalog_payloads[-1]["filter"]


# -- fetch ---------------------------------------------------------------------------------------
def test_fetch_matches_local_demo_and_reads_processing_units(fake_sh, sh_provider, small_aoi, demo):
    scene = sh_provider.fetch(small_aoi, JULY_2015)
    ref = demo.fetch(small_aoi, JULY_2015)
    grid = small_aoi.grid
    assert scene.matches(grid) and scene.data.dtype == np.uint16 and scene.data.shape == (13, grid.height, grid.width)
    assert scene.bands == EUROSAT_BAND_ORDER and scene.provider == "sentinelhub" and scene.collection == "sentinel-2-l1c"
    assert np.abs(scene.data.astype(np.int32) - ref.data.astype(np.int32)).mean() < 0.5
    assert np.array_equal(scene.valid, ref.valid) and np.array_equal(scene.cloud, ref.cloud)
    assert scene.dates == ref.dates and scene.acquisitions[0].tile_id == "T33TUH"
    # one Process API request; PU as the header said (13 bands + CLM, 16-bit)
    assert fake_sh.count("process") == 1
    assert scene.processing_units == pytest.approx(grid.width * grid.height / 512**2 * 14 / 3, rel=1e-4)
    body = fake_sh.process_payloads[0]
    assert body["input"]["bounds"]["properties"]["crs"].endswith("/EPSG/0/" + grid.crs.split(":")[1])
    assert body["input"]["bounds"]["bbox"] == pytest.approx(list(grid.bounds))
    assert (body["output"]["width"], body["output"]["height"]) == (grid.width, grid.height)
    data = body["input"]["data"][0]
    assert data["type"] == "sentinel-2-l1c" and data["processing"]["harmonizeValues"] is True
    assert data["dataFilter"]["mosaickingOrder"] == "leastCC" and data["dataFilter"]["maxCloudCoverage"] == 100
    assert data["dataFilter"]["timeRange"] == {"from": "2015-07-01T00:00:00Z", "to": "2015-07-31T23:59:59Z"}
    assert '"B8A", "dataMask", "CLM"' in body["evalscript"]
    assert [r["identifier"] for r in body["output"]["responses"]] == ["default", "masks"]
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ
    # one acquisition date in the window: the single-date request, no composite
    assert body["evalscript"] == evalscript(L1C) and "ORBIT" not in body["evalscript"] and not scene.composite


def test_fetch_split_into_sub_requests_equals_unsplit(fake_sh, sh_settings, small_aoi):
    """Split into 64 px sub-requests and mosaicked back: the same scene as one request.

    Not bit-identical: GDAL's bilinear kernel, when it downsamples (the demo's lon/lat pixels are
    ~8.8 m wide), scales with each request's window, so pixels differ by a few DN; a mosaicking
    error (a one-pixel shift) would differ by far more, which the last assertion checks.
    """
    whole = SentinelHubProvider(sh_settings).fetch(small_aoi, JULY_2015)
    fake_sh.reset()
    split = SentinelHubProvider(sh_settings, max_px=64).fetch(small_aoi, JULY_2015)
    n = small_aoi.grid.n_cells
    assert n > 1 and fake_sh.count("process") == n
    assert all(b["output"]["width"] <= 64 and b["output"]["height"] <= 64 for b in fake_sh.process_payloads)
    assert split.matches(small_aoi.grid)
    assert np.array_equal(split.valid, whole.valid) and np.array_equal(split.cloud, whole.cloud)
    a, b = split.data.astype(np.int32), whole.data.astype(np.int32)
    diff = np.abs(a - b)
    assert diff.mean() < 0.5 and diff.max() <= 8
    assert np.abs(a[:, :, 1:] - b[:, :, :-1]).mean() > 20 * diff.mean() + 5
    assert np.abs(a[:, 1:, :] - b[:, :-1, :]).mean() > 20 * diff.mean() + 5
    assert split.processing_units == pytest.approx(whole.processing_units, rel=1e-3)


def test_fetch_one_chosen_acquisition(fake_sh, sh_provider, small_aoi, demo):
    acq = sh_provider.search(small_aoi, ALL_YEARS)[1]
    fake_sh.reset()
    scene = sh_provider.fetch(small_aoi, ALL_YEARS, acquisition=acq)
    assert scene.dates == (acq.date,) and fake_sh.count("catalog") == 0
    tr = fake_sh.process_payloads[0]["input"]["data"][0]["dataFilter"]["timeRange"]
    assert tr == {"from": "2017-10-18T00:00:00Z", "to": "2017-10-18T23:59:59Z"}
    assert "maxCloudCoverage" not in fake_sh.process_payloads[0]["input"]["data"][0]["dataFilter"]
    ref = demo.fetch(small_aoi, DateWindow.parse("2017-10-18/2017-10-18"))
    assert np.abs(scene.data.astype(np.int32) - ref.data.astype(np.int32)).mean() < 0.5


def test_fetch_passes_the_cloud_limit_unrounded(fake_sh, sh_provider, small_aoi):
    scene = sh_provider.fetch(small_aoi, JULY_2015, max_cloud=0.05)
    assert scene.valid.all()
    assert fake_sh.catalog_payloads[0]["filter"] == "eo:cloud_cover <= 0.05"
    assert fake_sh.process_payloads[0]["input"]["data"][0]["dataFilter"]["maxCloudCoverage"] == 0.05


def test_fetch_level_2a_has_no_b10(fake_sh, sh_settings, small_aoi):
    scene = SentinelHubProvider(sh_settings, collection=L2A).fetch(small_aoi, JULY_2015)
    assert scene.collection == L2A and not scene.band("B10").any() and scene.band("B8A").all()
    assert fake_sh.process_payloads[0]["input"]["data"][0]["type"] == "sentinel-2-l2a"


def test_caching_provider_second_fetch_makes_no_request_and_stores_no_credentials(fake_sh, sh_provider, small_aoi,
                                                                                  tmp_path):
    parts = sh_provider.cache_parts(small_aoi, JULY_2015, None, 100.0)
    assert parts["evalscript"] == EVALSCRIPT_VERSION and parts["endpoint"] == fake_sh.base_url
    blob = json.dumps(parts)
    assert SECRET not in blob and fake_sh.client_id not in blob
    cached = CachingProvider(sh_provider, SceneCache(tmp_path))
    first = cached.fetch(small_aoi, JULY_2015)
    assert fake_sh.count("process") == 1
    fake_sh.reset()
    second = cached.fetch(small_aoi, JULY_2015)
    assert fake_sh.count() == 0
    assert np.array_equal(first.data, second.data)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and (tmp_path / f"{cache_key(parts)}.scene.npz").exists()
    for p in files:
        raw = p.read_bytes()
        assert SECRET.encode() not in raw and fake_sh.client_id.encode() not in raw


def test_secret_never_logged(fake_sh, sh_settings, small_aoi, caplog):
    caplog.set_level(logging.DEBUG)
    SentinelHubProvider(sh_settings).fetch(small_aoi, JULY_2015)
    assert "openid-connect/token" in caplog.text  # the token request was logged...
    _no_secret(caplog.text)  # ...without the secret


# -- composites ----------------------------------------------------------------------------------
def _single_pu(grid) -> float:
    return grid.width * grid.height / 512**2 * 14 / 3  # 13 bands + CLM, 16-bit


def test_composite_window_is_one_orbit_request_with_median_evalscript(fake_sh, sh_provider, small_aoi, demo):
    scene = sh_provider.fetch(small_aoi, ALL_YEARS)
    grid = small_aoi.grid
    assert scene.composite and scene.dates == (dt.date(2015, 7, 11), dt.date(2017, 10, 18))
    assert len(scene.acquisitions) == 2 and scene.matches(grid) and scene.data.dtype == np.uint16
    assert fake_sh.count("catalog") == 1 and fake_sh.count("process") == 1
    body = fake_sh.process_payloads[0]
    script = body["evalscript"]
    assert script == composite_evalscript(L1C)
    assert 'mosaicking: "ORBIT"' in script and "var px = clearMedian(samples, scenes);" in script
    assert '"B8A", "dataMask", "CLM"' in script and 'sampleType: "UINT16"' in script
    data = body["input"]["data"][0]
    assert "mosaickingOrder" not in data["dataFilter"] and data["dataFilter"]["maxCloudCoverage"] == 100
    assert data["dataFilter"]["timeRange"] == {"from": "2015-01-01T00:00:00Z", "to": "2018-12-31T23:59:59Z"}
    assert data["processing"] == {"upsampling": "BILINEAR", "harmonizeValues": True}
    assert [r["identifier"] for r in body["output"]["responses"]] == ["default", "masks"]
    # multi-temporal: charged per data sample, two orbits
    assert scene.processing_units == pytest.approx(2 * _single_pu(grid), rel=1e-4)
    assert sh_provider.processing_units_spent == pytest.approx(scene.processing_units)
    # the Area page's estimate prices the composite the same way
    from lulc_core.providers.sentinelhub.costs import estimate_fetch_pu
    assert estimate_fetch_pu(grid, acquisitions=2) == pytest.approx(scene.processing_units, rel=0.02)
    assert estimate_fetch_pu(grid, acquisitions=2) == pytest.approx(2 * estimate_fetch_pu(grid))
    # the same composite as the local files give
    local = demo.fetch(small_aoi, ALL_YEARS)
    assert local.composite and local.dates == scene.dates
    assert np.array_equal(scene.valid, local.valid) and np.array_equal(scene.cloud, local.cloud)
    assert np.abs(scene.data.astype(np.int32) - local.data.astype(np.int32)).mean() < 0.5


def test_composite_split_into_tiles_is_one_orbit_request_per_tile(fake_sh, sh_settings, small_aoi):
    scene = SentinelHubProvider(sh_settings, max_px=64).fetch(small_aoi, ALL_YEARS)
    n = small_aoi.grid.n_cells
    assert n > 1 and fake_sh.count("process") == n and scene.composite
    assert all('mosaicking: "ORBIT"' in b["evalscript"] for b in fake_sh.process_payloads)
    assert scene.processing_units == pytest.approx(2 * _single_pu(small_aoi.grid), rel=1e-3)


def test_composite_level_2a_has_no_b10(fake_sh, sh_settings, small_aoi):
    scene = SentinelHubProvider(sh_settings, collection=L2A).fetch(small_aoi, ALL_YEARS)
    assert scene.composite and scene.collection == L2A
    assert not scene.band("B10").any() and scene.band("B8A").all()
    script = fake_sh.process_payloads[0]["evalscript"]
    assert '"B10"' not in script and 'mosaicking: "ORBIT"' in script


def test_fake_orbit_median_equals_numpy_median_of_its_scenes(tmp_path, monkeypatch):
    """Three dates, one hazy, clouds on the others: the fake's ORBIT median is numpy's, PU x 3."""
    root = write_hazy_scenes(tmp_path)
    window = DateWindow.parse(HAZY_WINDOW)
    grid = HAZY_AOI.grid
    with FakeSentinelHub(root) as fake:
        trust_fake(fake, monkeypatch)
        p = SentinelHubProvider(make_sh_settings(fake))
        scene = p.fetch(HAZY_AOI, window)
        assert scene.composite and scene.dates == HAZY_DATES and fake.count("process") == 1
        assert scene.processing_units == pytest.approx(3 * _single_pu(grid), rel=1e-4)
        single = p.fetch(HAZY_AOI, DateWindow.parse(HAZY_DATES[0].isoformat()))
        assert not single.composite and single.processing_units == pytest.approx(_single_pu(grid), rel=1e-4)
        # numpy over the fake's own scenes, read onto the request's grid
        sources = sorted(fake.library.sources, key=lambda s: (fake._cloud(s), s.date))  # least cloudy first
        stack = np.stack([s.read_on_grid(grid) for s in sources]).astype(np.float64)
    ok = np.all(stack > 0, axis=1)
    idx = [EUROSAT_BAND_ORDER.index(b) for b in ("B02", "B04", "B11", "B10")]
    cl = np.stack([bright_cloud_mask(*a[idx]) for a in stack]) & ok
    clear = ok & ~cl
    count = clear.sum(axis=0)
    assert (count == 3).any() and (count == 2).any() and (count == 0).any()
    three, two, none = count == 3, count == 2, ok.any(axis=0) & (count == 0)
    np.testing.assert_array_equal(scene.data[:, three], np.rint(np.median(stack, axis=0))[:, three])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = np.nanquantile(np.where(clear[:, None], stack, np.nan), 0.5, axis=0, method="lower")
    np.testing.assert_array_equal(scene.data[:, two], np.rint(lower)[:, two])
    first = np.take_along_axis(stack, np.argmax(ok, axis=0)[None, None].repeat(13, axis=1), axis=0)[0]
    np.testing.assert_array_equal(scene.data[:, none], np.rint(first)[:, none])
    np.testing.assert_array_equal(scene.cloud, none)
    np.testing.assert_array_equal(scene.valid, ok.any(axis=0))
    # and the local files provider makes the same composite of the same scenes
    local = LocalFilesProvider(root).fetch(HAZY_AOI, window)
    np.testing.assert_array_equal(local.data, scene.data)
    np.testing.assert_array_equal(local.cloud, scene.cloud)


@pytest.mark.parametrize("collection", [L1C, L2A])
def test_composite_evalscript_run_by_node_computes_what_the_fake_serves(collection, tmp_path):
    """The real evalscript (JavaScript) against the fake's clearMedian reducer on the same samples."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("needs Node.js to run the evalscript (apt-get install nodejs)")
    assert "clearMedian" in ORBIT_REDUCERS
    rng = np.random.default_rng(11)
    n, px = 4, 400
    inputs = [b for b in EUROSAT_BAND_ORDER if not (collection == L2A and b == "B10")]
    values = rng.integers(1, 4000, (n, 13, px)).astype(np.float32)
    values[:, :, :8] = values[:, :, :1]  # ties between samples
    ok = rng.random((n, px)) < 0.8
    ok[:, 8:12] = False  # no data at all
    cloud = (rng.random((n, px)) < 0.45) & ok
    cloud[:, 12:20] = ok[:, 12:20]  # no clear sample
    orbit_cc = [12.5, 3.0, 3.0, 40.0]  # a tie: the earlier date wins
    dates = [dt.date(2020, 6, 23), dt.date(2020, 6, 13), dt.date(2020, 6, 3), dt.date(2020, 6, 8)]
    order = rng.permutation(n)  # the service's sample order must not matter
    pixels = [[{**{b: float(values[i, EUROSAT_BAND_ORDER.index(b), k]) for b in inputs},
                "dataMask": int(ok[i, k]), "CLM": int(cloud[i, k])} for i in order] for k in range(px)]
    scenes = {"orbits": [{"dateFrom": f"{dates[i]}T00:00:00Z", "dateTo": f"{dates[i]}T23:59:59Z",
                          "tiles": [{"cloudCoverage": orbit_cc[i] + 5}, {"cloudCoverage": orbit_cc[i]}]}
                         for i in order]}
    harness = tmp_path / "run.js"
    harness.write_text(composite_evalscript(collection) + """
var input = JSON.parse(require("fs").readFileSync(0, "utf8"));
var out = input.pixels.map(function (p) { return evaluatePixel(p, input.scenes); });
process.stdout.write(JSON.stringify(out));
""")
    res = subprocess.run([node, str(harness)], input=json.dumps({"pixels": pixels, "scenes": scenes}),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-500:]
    js = json.loads(res.stdout)
    js_default = np.array([p["default"] for p in js], dtype=np.float32).T  # (13, px)
    js_masks = np.array([p["masks"] for p in js]).T
    expected, valid, no_clear = clear_median_reduce(values[:, :, :, None], ok[:, :, None], cloud[:, :, None],
                                                    orbit_cc, dates)
    if collection == L2A:
        expected[EUROSAT_BAND_ORDER.index("B10")] = 0
    np.testing.assert_array_equal(js_masks[0], valid[:, 0].astype(int))
    np.testing.assert_array_equal(js_masks[1], no_clear[:, 0].astype(int))
    np.testing.assert_array_equal(js_default, expected[:, :, 0])
    assert no_clear[12:20, 0].all() and not valid[8:12, 0].any()


def test_composite_cache_key_differs_from_single_acquisition(fake_sh, sh_provider, small_aoi, tmp_path):
    acq = sh_provider.search(small_aoi, ALL_YEARS)[0]
    window_parts = sh_provider.cache_parts(small_aoi, ALL_YEARS, None, 100.0)
    acq_parts = sh_provider.cache_parts(small_aoi, ALL_YEARS, acq, 100.0)
    assert window_parts["composite"] == f"orbit-median-of-clear-v{COMPOSITE_VERSION}" and "composite" not in acq_parts
    assert cache_key(window_parts) != cache_key(acq_parts)
    assert cache_key({k: v for k, v in window_parts.items() if k != "composite"}) != cache_key(window_parts)
    cached = CachingProvider(sh_provider, SceneCache(tmp_path))
    first = cached.fetch(small_aoi, ALL_YEARS)
    one = cached.fetch(small_aoi, ALL_YEARS, acquisition=acq)
    assert first.composite and not one.composite and fake_sh.count("process") == 2
    fake_sh.reset()
    again = cached.fetch(small_aoi, ALL_YEARS)
    assert fake_sh.count() == 0 and again.composite and again.dates == first.dates
    np.testing.assert_array_equal(again.data, first.data)


def test_fake_rejects_orbit_scripts_it_cannot_evaluate(fake_sh, sh_provider, small_aoi):
    sh_provider.fetch(small_aoi, ALL_YEARS)
    body = dict(fake_sh.process_payloads[0])
    tok = requests.post(fake_sh.token_url, data={"grant_type": "client_credentials", "client_id": fake_sh.client_id,
                                                 "client_secret": fake_sh.client_secret}, timeout=5).json()
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    script = body["evalscript"]
    for bad, why in ((script.replace('mosaicking: "ORBIT"', 'mosaicking: "TILE"'), "SIMPLE and ORBIT"),
                     (script.replace("var px = clearMedian(samples, scenes);", "var px = samples[0];"), "reducer"),
                     (script.replace("function clearMedian(", "function otherName("), "reducer")):
        r = requests.post(fake_sh.process_url, json={**body, "evalscript": bad}, headers=headers, timeout=10)
        assert r.status_code == 400 and why in r.json()["error"]["message"]
    r = requests.post(fake_sh.process_url, json=body, headers=headers, timeout=10)
    assert r.status_code == 200 and float(r.headers["x-processingunits-spent"]) == pytest.approx(
        2 * _single_pu(small_aoi.grid), rel=1e-4)


# -- faults --------------------------------------------------------------------------------------
def test_wrong_credentials_raise_credentials_error(fake_sh, small_aoi):
    p = SentinelHubProvider(make_sh_settings(fake_sh, client_secret="wrong-secret"))
    with pytest.raises(CredentialsError, match="refused the credentials") as info:
        p.fetch(small_aoi, JULY_2015)
    msg = str(info.value)
    assert "SH_CLIENT_ID / SH_CLIENT_SECRET" in msg and "wrong-secret" not in msg and "\n" not in msg
    assert fake_sh.requests_to("token")[-1][2] == 401 and fake_sh.count("process") == 0


def test_401_on_process_raises_credentials_error(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", status=401)
    with pytest.raises(CredentialsError, match="HTTP 401"):
        sh_provider.fetch(small_aoi, JULY_2015)


def test_403_quota_raises_quota_error(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", status=403, body=QUOTA_EXCEEDED_BODY)
    with pytest.raises(QuotaError, match="quota"):
        sh_provider.fetch(small_aoi, JULY_2015)


def test_403_without_quota_is_a_permission_error(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", status=403)
    with pytest.raises(CredentialsError, match="no permission") as info:
        sh_provider.fetch(small_aoi, JULY_2015)
    assert not isinstance(info.value, QuotaError)


def test_429_with_retry_after_then_success(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", status=429, retry_after_ms=300)
    t0 = time.monotonic()
    scene = sh_provider.fetch(small_aoi, JULY_2015)
    assert time.monotonic() - t0 >= 0.3  # Retry-After read in milliseconds and honoured
    assert scene.valid.all()
    assert fake_sh.count("process", 429) == 1 and fake_sh.count("process", 200) == 1


def test_persistent_429_raises_rate_limit_error(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", status=429, retry_after_ms=10, times=None)
    with pytest.raises(RateLimitError, match="429"):
        sh_provider.fetch(small_aoi, JULY_2015)
    assert fake_sh.count("process", 429) == sh_provider.settings.max_rate_limit_retries + 1


def test_500_once_then_success(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", status=500)
    assert sh_provider.fetch(small_aoi, JULY_2015).valid.all()
    assert fake_sh.count("process", 500) == 1 and fake_sh.count("process", 200) == 1


def test_persistent_500_raises_provider_error(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", status=503, times=None)
    with pytest.raises(ProviderError, match="HTTP 503 after 2 attempts") as info:
        sh_provider.fetch(small_aoi, JULY_2015)
    assert type(info.value) is ProviderError and "\n" not in str(info.value)
    assert fake_sh.count("process", 503) == 2


def test_persistent_500_at_token_endpoint(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("token", status=500, times=None)
    with pytest.raises(ProviderError, match="token endpoint"):
        sh_provider.search(small_aoi, JULY_2015)


def test_429_at_token_endpoint_is_a_rate_limit(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("token", status=429, retry_after_ms=10, times=None)
    with pytest.raises(RateLimitError, match="token endpoint"):
        sh_provider.search(small_aoi, JULY_2015)


def test_slow_response_past_timeout(fake_sh, sh_settings, small_aoi):
    p = SentinelHubProvider(make_sh_settings(fake_sh, timeout_s=0.3))
    fake_sh.inject("process", delay_s=1.0, times=None)
    with pytest.raises(ProviderError, match="timed out after 0.3 s"):
        p.fetch(small_aoi, JULY_2015)


@pytest.mark.parametrize("mode", ["length", "body"])
def test_truncated_tiff_raises_and_caches_nothing(fake_sh, sh_provider, small_aoi, tmp_path, mode):
    fake_sh.inject("process", truncate=mode, times=None)
    cached = CachingProvider(sh_provider, SceneCache(tmp_path))
    with pytest.raises(ProviderError, match="broke mid-response" if mode == "length" else "unreadable image"):
        cached.fetch(small_aoi, JULY_2015)
    assert not list(tmp_path.glob("*.npz"))


def test_truncated_once_is_retried(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("process", truncate=True)
    assert sh_provider.fetch(small_aoi, JULY_2015).valid.all()
    assert fake_sh.count("process") == 2


def test_empty_search_raises_no_imagery(fake_sh, sh_provider, small_aoi):
    fake_sh.inject("catalog", empty=True)
    with pytest.raises(NoImageryError, match="2015-07-01/2015-07-31"):
        sh_provider.fetch(small_aoi, JULY_2015)
    assert fake_sh.count("process") == 0
    with pytest.raises(NoImageryError):  # a window without scenes, no fault
        sh_provider.fetch(small_aoi, DateWindow.parse("2016-01-01/2016-01-31"))


def test_unreachable_service(fake_sh, small_aoi):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    p = SentinelHubProvider(make_sh_settings(fake_sh, base_url=url, token_url=url + "/token"))
    with pytest.raises(ProviderError, match="could not connect"):
        p.search(small_aoi, JULY_2015)


# -- the fake itself ------------------------------------------------------------------------------
def test_fake_rejects_bad_tokens_and_oversized_outputs(fake_sh):
    r = requests.post(fake_sh.process_url, json={}, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "COMMON_UNAUTHORIZED"
    tok = requests.post(fake_sh.token_url, data={"grant_type": "client_credentials", "client_id": fake_sh.client_id,
                                                 "client_secret": fake_sh.client_secret}, timeout=5).json()
    assert tok["access_token"].count(".") == 2
    session = SentinelHubSession(config=make_sh_settings(fake_sh).to_shconfig())
    assert session.info()["azp"] == fake_sh.client_id  # JWT-shaped, as the client decodes it
    body = {"input": {"bounds": {"bbox": [13.08, 42.79, 13.09, 42.8],
                                 "properties": {"crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
                      "data": [{"type": "sentinel-2-l1c"}]},
            "output": {"width": 3000, "height": 10, "responses": [{"identifier": "default",
                                                                   "format": {"type": "image/tiff"}}]},
            "evalscript": "//VERSION=3\nfunction setup(){return {input:[\"B04\"], output:{bands:1}}}\n"
                          "function evaluatePixel(s){return [s.B04]}"}
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    r = requests.post(fake_sh.process_url, json=body, headers=headers, timeout=5)
    assert r.status_code == 400 and "2500" in r.json()["error"]["message"]
    body["output"]["width"] = 20
    r = requests.post(fake_sh.process_url, json=body, headers=headers, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/tiff"
    assert float(r.headers["x-processingunits-spent"]) == pytest.approx(0.005)
    assert fake_sh.counts() == {"token": 2, "catalog": 0, "process": 3}


def test_fake_standalone_plain_http_needs_no_certificate():
    with FakeSentinelHub(tls=False) as fake:
        assert fake.base_url.startswith("http://") and fake.ca_file is None
        r = requests.post(fake.token_url, data={"grant_type": "client_credentials", "client_id": "x",
                                                "client_secret": "y"}, timeout=5)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        assert fake.request_log == [("POST", "/auth/realms/CDSE/protocol/openid-connect/token", 401)]


# -- deadlines and plain http (issue 12): the real client over real HTTP, faults from the fake ------
def _deadline_provider(fake, **overrides) -> SentinelHubProvider:
    """Production-like waits (30 s without Retry-After, 4 attempts, 60 s timeouts) under a short deadline."""
    kwargs = dict(max_download_attempts=4, download_sleep_time=5.0, timeout_s=60.0, max_rate_limit_retries=10,
                  rate_limit_default_wait_s=30.0, deadline_s=1.5)
    return SentinelHubProvider(make_sh_settings(fake, **{**kwargs, **overrides}))


def test_process_429_forever_without_retry_after_ends_at_the_deadline(fake_sh, small_aoi):
    p = _deadline_provider(fake_sh)
    fake_sh.inject("process", status=429, times=None)  # no Retry-After: the client would wait 30 s, 11 times
    t0 = time.monotonic()
    with pytest.raises(ProviderError, match=r"within its 1\.5 s deadline \(rate limited \(HTTP 429\)") as info:
        p.fetch(small_aoi, JULY_2015)
    assert time.monotonic() - t0 < 1.5 + 1.0
    msg = str(info.value)
    assert "LULC_SH_DEADLINE_S" in msg and "Process API request" in msg and "\n" not in msg
    assert fake_sh.count("process", 429) >= 1


@pytest.mark.parametrize("endpoint", ["token", "catalog", "process"])
def test_a_very_late_answer_ends_at_the_deadline(fake_sh, small_aoi, endpoint):
    """A server that answers after 60 s: 4 attempts x 60 s timeouts would keep the user 4 minutes."""
    p = _deadline_provider(fake_sh)
    fake_sh.inject(endpoint, delay_s=60.0, times=None)
    t0 = time.monotonic()
    with pytest.raises(ProviderError, match=r"did not finish within its 1\.5 s deadline") as info:
        p.fetch(small_aoi, JULY_2015)
    assert time.monotonic() - t0 < 1.5 + 1.0
    assert "did not answer in time" in str(info.value) and not isinstance(info.value, CredentialsError)
    assert ("catalog search" if endpoint != "process" else "Process API request") in str(info.value)


def test_server_errors_stop_when_the_next_retry_would_pass_the_deadline(fake_sh, small_aoi):
    p = _deadline_provider(fake_sh, download_sleep_time=30.0, deadline_s=2.0)
    fake_sh.inject("process", status=503, times=None)
    t0 = time.monotonic()
    with pytest.raises(ProviderError, match=r"2 s deadline \(HTTP 503; the next retry would start after 30 s\)"):
        p.fetch(small_aoi, JULY_2015)
    assert time.monotonic() - t0 < 2.0 and fake_sh.count("process", 503) == 1


def test_the_deadline_comes_from_lulc_sh_deadline_s():
    s = SentinelHubSettings.from_env(env={"LULC_SH_DEADLINE_S": "7.5"}, secrets={})
    assert s.deadline_s == 7.5
    assert SentinelHubSettings.from_env(env={}, secrets={"sentinelhub": {"deadline_s": 9}}).deadline_s == 9
    assert SentinelHubSettings.from_env(env={}, secrets={}).deadline_s == 120
    from lulc_core.errors import LulcError
    with pytest.raises(LulcError, match="LULC_SH_DEADLINE_S must be a number of seconds, got 'soon'"):
        SentinelHubSettings.from_env(env={"LULC_SH_DEADLINE_S": "soon"}, secrets={})


@pytest.mark.parametrize("which", ["token", "both"])
def test_plain_http_address_has_its_own_message_and_sends_nothing(monkeypatch, small_aoi, which):
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    with FakeSentinelHub(tls=False) as fake:
        base = fake.base_url if which == "both" else "https://127.0.0.1:9"
        p = SentinelHubProvider(make_sh_settings(fake, base_url=base))
        with pytest.raises(ProviderError, match=r"SH_TOKEN_URL is http://127\.0\.0\.1:\d+/\S+, not an https://") as e:
            p.search(small_aoi, JULY_2015)
        msg = str(e.value)
        assert not isinstance(e.value, CredentialsError) and "refused" not in msg and "SH_CLIENT_ID" not in msg
        assert "write SH_TOKEN_URL with https://" in msg and "\n" not in msg
        assert fake.count() == 0  # the credentials never went out over plain http


def test_log_redaction_is_installed_by_the_provider_not_by_import():
    code = ("from lulc_core.providers.sentinelhub import SentinelHubProvider, SentinelHubSettings\n"
            "from lulc_core.providers.sentinelhub.logs import log_redaction_installed\n"
            "before = log_redaction_installed()\n"
            "SentinelHubProvider(SentinelHubSettings())\n"
            "print(before, log_redaction_installed())\n")
    from tests.conftest import ROOT
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-500:]
    assert res.stdout.split() == ["False", "True"]


def test_a_whole_fetch_has_a_total_deadline(fake_sh, small_aoi):
    """Each request alone is within its deadline (1.2 s late, deadline 2 s), but the search and the
    Process request together are not: the fetch ends at its total deadline (2 s for one part)."""
    p = _deadline_provider(fake_sh, deadline_s=2.0)
    fake_sh.inject("catalog", delay_s=1.2, times=None)
    fake_sh.inject("process", delay_s=1.2, times=None)
    assert p.search(small_aoi, JULY_2015)  # one request alone finishes
    t0 = time.monotonic()
    with pytest.raises(ProviderError, match=r"Process API request did not finish within the whole fetch's 2 s "
                                            r"deadline .*LULC_SH_DEADLINE_S"):
        p.fetch(small_aoi, JULY_2015)
    assert time.monotonic() - t0 < 2.0 + 0.5


def test_a_run_searches_each_window_once_and_fetches_what_it_found(fake_sh, sh_provider, small_aoi, demo):
    """run_analysis hands each window's search result to its fetch: two catalog searches, not four."""
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import run_analysis

    an = run_analysis(small_aoi, JULY_2015, DateWindow.parse("2017-10-01/2017-10-31"), sh_provider, DenseClassifier())
    assert fake_sh.count("catalog") == 2 and fake_sh.count("process") == 2
    assert an.a.acquisitions and an.a.scene.acquisitions == tuple(an.a.acquisitions)
