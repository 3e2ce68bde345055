import datetime as dt

import numpy as np
import pytest
import rasterio

from lulc_core.aoi import AOI
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.cache import SceneCache
from lulc_core.errors import DateWindowError, NoImageryError, OutsideCoverageError, ProviderError
from lulc_core.providers.base import CachingProvider
from lulc_core.providers.local import DEMO_DIR, LocalFilesProvider, demo_provider
from lulc_core.scene import DateWindow, Scene, check_window_order
from tests.conftest import shared_path

NORCIA_A = DateWindow.parse("2015-07-01/2015-07-31")


@pytest.fixture(scope="module")
def demo():
    return demo_provider()


def test_demo_has_at_least_three_two_date_areas_within_size(demo):
    areas = demo.areas()
    assert len(areas) >= 3 and all(len(a["dates"]) == 2 for a in areas.values())
    size = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert size <= 40e6
    assert not list(DEMO_DIR.rglob("cm*")), "OSCD change maps are non-commercial: never ship them"
    assert "Copernicus Sentinel data" in (DEMO_DIR / "SOURCE.md").read_text()


def test_search_sorted_with_cloud(demo):
    aoi = demo.area_aoi("norcia")
    acqs = demo.search(aoi, DateWindow.parse("2015-01-01/2018-12-31"))
    assert [a.date for a in acqs] == [dt.date(2015, 7, 11), dt.date(2017, 10, 18)]
    assert all(0 <= a.cloud_cover <= 100 and a.tile_id == "33TUH" for a in acqs)
    assert demo.search(aoi, DateWindow.parse("2016-01-01/2016-12-31")) == []


def test_fetch_scene_on_aoi_grid(demo):
    aoi = demo.area_aoi("norcia")
    scene = demo.fetch(aoi, NORCIA_A)
    assert scene.matches(aoi.grid)
    assert scene.bands == EUROSAT_BAND_ORDER and scene.bands[-1] == "B8A"
    assert scene.data.dtype == np.uint16 and scene.valid.mean() > 0.8
    assert scene.dates == (dt.date(2015, 7, 11),)
    # realistic L1C values: vegetation is bright in near infrared, B10 (cirrus) is dark
    ok = scene.valid
    assert scene.band("B08")[ok].mean() > 1.5 * scene.band("B04")[ok].mean()
    assert scene.band("B10")[ok].mean() < 100


def test_two_dates_on_different_source_grids_end_on_one_grid(demo):
    aoi = demo.area_aoi("saclay_e")
    a = demo.fetch(aoi, DateWindow.parse("2016-03-15/2016-03-15"))
    b = demo.fetch(aoi, DateWindow.parse("2017-08-29/2017-08-29"))
    assert a.matches(aoi.grid) and b.matches(aoi.grid)
    # the same roads and buildings: B04 structure correlates across dates
    both = a.valid & b.valid
    r = np.corrcoef(a.band("B04")[both].astype(float), b.band("B04")[both].astype(float))[0, 1]
    assert r > 0.5


def test_outside_demo_extents_names_the_areas(demo):
    with pytest.raises(OutsideCoverageError, match="Areas available.*norcia.*pisa"):
        demo.search(AOI.from_bbox(5.0, 45.0, 5.05, 45.05), NORCIA_A)


def test_no_scene_in_window_says_which_dates_exist(demo):
    with pytest.raises(NoImageryError, match="2015-07-11, 2017-10-18"):
        demo.fetch(demo.area_aoi("norcia"), DateWindow.parse("2016-01-01/2016-02-01"))


def test_dates_validated():
    with pytest.raises(DateWindowError, match="swap"):
        DateWindow.parse("2018-05-31/2018-05-01")
    with pytest.raises(DateWindowError, match="YYYY-MM-DD"):
        DateWindow.parse("May 2018")
    with pytest.raises(DateWindowError, match="before date A"):
        check_window_order(DateWindow.parse("2018-01-01/2018-01-31"), DateWindow.parse("2017-01-01/2017-01-31"))
    assert str(DateWindow.parse("2018-05-17")) == "2018-05-17/2018-05-17"


def test_stack_layout_gives_the_same_pixels(demo, tmp_path):
    aoi = demo.area_aoi("norcia")
    scene = demo.fetch(aoi, NORCIA_A)
    (tmp_path / "norcia").mkdir()
    scene.to_geotiff(tmp_path / "norcia" / "stack_20150711.tif")
    stacked = LocalFilesProvider(tmp_path)
    assert [s.kind for s in stacked.sources] == ["stack"]
    again = stacked.fetch(aoi, NORCIA_A)
    np.testing.assert_array_equal(again.data[:, scene.valid], scene.data[:, scene.valid])


def test_scene_geotiff_roundtrip(demo, tmp_path):
    aoi = demo.area_aoi("norcia")
    scene = demo.fetch(aoi, NORCIA_A)
    bands_path, masks_path = scene.to_geotiff(tmp_path / "s.tif")
    with rasterio.open(bands_path) as ds:
        assert ds.descriptions == EUROSAT_BAND_ORDER and ds.crs.to_epsg() == 32633
        assert ds.res == (10.0, 10.0)
    back = Scene.from_geotiff(bands_path)
    np.testing.assert_array_equal(back.data, scene.data)
    np.testing.assert_array_equal(back.valid, scene.valid)
    assert back.dates == scene.dates and back.transform == scene.transform


def test_cache_hit_reads_no_source(demo, tmp_path, monkeypatch):
    cached = CachingProvider(demo, SceneCache(tmp_path))
    aoi = demo.area_aoi("norcia")
    first = cached.fetch(aoi, NORCIA_A)
    calls = []
    monkeypatch.setattr(demo, "fetch", lambda *a, **k: calls.append(1))
    second = cached.fetch(aoi, NORCIA_A)
    assert calls == [] and cached.cache.hits == 1
    np.testing.assert_array_equal(first.data, second.data)


def test_corrupt_or_truncated_cache_entry_is_discarded_and_refetched(demo, tmp_path):
    cache = SceneCache(tmp_path)
    cached = CachingProvider(demo, cache)
    aoi = demo.area_aoi("norcia")
    good = cached.fetch(aoi, NORCIA_A)
    (entry,) = tmp_path.glob("*.scene.npz")
    raw = entry.read_bytes()
    for broken in (raw[: len(raw) // 2], raw[:2000] + bytes(len(raw) - 2000), b"garbage"):
        entry.write_bytes(broken)
        again = cached.fetch(aoi, NORCIA_A)
        np.testing.assert_array_equal(again.data, good.data)
    assert cache.discarded == 3


def test_cache_lru_eviction(demo, tmp_path):
    aoi = demo.area_aoi("norcia")
    scene = demo.fetch(aoi, NORCIA_A)
    cache = SceneCache(tmp_path, max_bytes=10**9)
    p1 = cache.put("a" * 64, scene)
    size = p1.stat().st_size
    cache.max_bytes = int(2.5 * size)
    cache.put("b" * 64, scene)
    import os
    import time
    os.utime(p1, (time.time() + 5, time.time() + 5))  # "a" used most recently
    cache.put("c" * 64, scene)
    names = sorted(p.name[:1] for p in tmp_path.glob("*.scene.npz"))
    assert names == ["a", "c"]


def test_local_provider_errors(tmp_path):
    with pytest.raises(ProviderError, match="does not exist"):
        LocalFilesProvider(tmp_path / "nope")
    with pytest.raises(ProviderError, match="no Sentinel-2 scenes"):
        LocalFilesProvider(tmp_path)


def test_local_provider_over_shared_oscd_folder():
    root = shared_path("s2", "oscd")
    p = LocalFilesProvider(root)
    assert len(p.areas()) == 11
    aoi = p.area_aoi("hongkong")
    scene = p.fetch(aoi, DateWindow.parse("2018-03-23/2018-03-23"))
    assert scene.matches(aoi.grid) and scene.valid.mean() > 0.8
