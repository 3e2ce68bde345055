import datetime as dt

import numpy as np
import pytest
import rasterio

from lulc_core.aoi import AOI
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.cache import SceneCache
from lulc_core.errors import DateWindowError, NoImageryError, OutsideCoverageError, ProviderError
from lulc_core.providers.base import CachingProvider
from lulc_core.providers.demo import DEMO_AREAS, DEMO_DIR, DemoProvider
from lulc_core.providers.local import LocalFilesProvider
from lulc_core.scene import DateWindow, Scene, check_window_order
from tests.conftest import shared_path

NORCIA_A = DateWindow.parse("2015-07-01/2015-07-31")


@pytest.fixture(scope="module")
def demo():
    return DemoProvider()


def test_demo_has_at_least_three_two_date_areas_within_size(demo):
    areas = demo.areas()
    assert len(areas) >= 3 and all(len(a["dates"]) == 2 for a in areas.values())
    size = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert size <= 40e6
    assert not list(DEMO_DIR.rglob("cm*")), "OSCD change maps are non-commercial: never ship them"
    assert "Copernicus Sentinel data" in (DEMO_DIR / "SOURCE.md").read_text()


def test_demo_areas_named_once_for_the_scripts_that_hold_them_out(demo):
    # the dense distillation, the refine tuning and the ceiling bench hold out DEMO_AREAS: exactly the
    # bundled areas, so that every demo figure is measured on areas the model never trained on
    assert DEMO_AREAS == tuple(sorted(demo.areas()))


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
    p = DemoProvider(root)
    assert len(p.areas()) == 11
    aoi = p.area_aoi("hongkong")
    scene = p.fetch(aoi, DateWindow.parse("2018-03-23/2018-03-23"))
    assert scene.matches(aoi.grid) and scene.valid.mean() > 0.8


# -- composites: a window holding several scenes ---------------------------------------------------
import warnings  # noqa: E402

import lulc_core.composite as composite_module  # noqa: E402
import lulc_core.providers.local as local_module  # noqa: E402
from lulc_core.cache import cache_key  # noqa: E402
from lulc_core.clouds import bright_cloud_mask  # noqa: E402
from lulc_core.composite import COMPOSITE_METHOD, lower_median_of_clear  # noqa: E402
from tests.fake_sh_fixture import (HAZE_DN, HAZY_AOI, HAZY_DATES, HAZY_REGIONS, HAZY_WINDOW,  # noqa: E402
                                   write_hazy_scenes)

HAZY = DateWindow.parse(HAZY_WINDOW)


@pytest.fixture(scope="module")
def hazy(tmp_path_factory):
    return LocalFilesProvider(write_hazy_scenes(tmp_path_factory.mktemp("hazy")))


def _old_mosaic(provider, aoi, window, acquisition=None):
    """LocalFilesProvider.fetch as it was before composites (least-cloudy-first mosaic), frozen here."""
    grid = aoi.grid
    sources = provider._candidates(aoi, window, acquisition, 100.0)
    data = np.zeros((13, grid.height, grid.width), dtype=np.float32)
    valid = np.zeros((grid.height, grid.width), dtype=bool)
    cloud = np.zeros_like(valid)
    for s in sources:
        arr = s.read_on_grid(grid)
        ok = np.all(arr > 0, axis=0)
        cl = bright_cloud_mask(*(arr[EUROSAT_BAND_ORDER.index(b)] for b in ("B02", "B04", "B11", "B10"))) & ok
        fill = ok & (~valid | (cloud & ~cl))
        if fill.any():
            data[:, fill] = arr[:, fill]
            cloud[fill] = cl[fill]
            valid |= fill
        if valid.all() and not cloud.any():
            break
    return np.rint(data).astype(np.uint16), valid, cloud


def _numpy_clear_median(singles):
    """The expected composite from single-acquisition scenes (least-cloudy first), with numpy only."""
    stack = np.stack([s.data for s in singles]).astype(np.float64)
    ok = np.stack([s.valid for s in singles])
    clear = ok & ~np.stack([s.cloud for s in singles])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: no clear observation
        med = np.nanquantile(np.where(clear[:, None], stack, np.nan), 0.5, axis=0, method="lower")
    no_clear = ok.any(axis=0) & ~clear.any(axis=0)
    first = np.take_along_axis(stack, np.argmax(ok, axis=0)[None, None].repeat(13, axis=1), axis=0)[0]
    expected = np.where(no_clear, first, np.nan_to_num(med, nan=0.0))
    return expected.astype(np.uint16), ok.any(axis=0), no_clear


def test_lower_median_of_clear_matches_numpy(monkeypatch):
    monkeypatch.setattr(composite_module, "_MEDIAN_CHUNK_PX", 37)  # many small chunks, ragged last one
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 4):
        values = rng.integers(1, 10000, (n, 23, 17)).astype(np.uint16)
        clear = rng.random((n, 23, 17)) < 0.6
        med, count = lower_median_of_clear(values, clear)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanquantile(np.where(clear, values.astype(float), np.nan), 0.5, axis=0, method="lower")
        assert med.dtype == np.uint16
        np.testing.assert_array_equal(count, clear.sum(axis=0))
        np.testing.assert_array_equal(med, np.nan_to_num(ref, nan=0).astype(np.uint16))
    # an even count takes the lower of the middle two
    med, _ = lower_median_of_clear(np.array([[[10]], [[40]], [[20]], [[30]]], np.uint16), np.ones((4, 1, 1), bool))
    assert med[0, 0] == 20


def test_hazy_window_composite_is_the_median_of_clear_observations(hazy):
    acqs = hazy.search(HAZY_AOI, HAZY)
    assert [a.date for a in acqs] == list(HAZY_DATES)
    by_cloud = sorted(acqs, key=lambda a: (a.cloud_cover, a.date))
    assert by_cloud[0].date == HAZY_DATES[2]  # the hazy date is the least cloudy one
    singles = [hazy.fetch(HAZY_AOI, HAZY, a) for a in by_cloud]
    scene = hazy.fetch(HAZY_AOI, HAZY)
    assert scene.composite and not singles[0].composite
    assert scene.dates == HAZY_DATES and len(scene.acquisitions) == 3 and scene.matches(HAZY_AOI.grid)
    data, valid, cloud = _numpy_clear_median(singles)
    np.testing.assert_array_equal(scene.valid, valid)
    np.testing.assert_array_equal(scene.cloud, cloud)
    np.testing.assert_array_equal(scene.data, data)
    hazy_s, d1, d2 = singles[0], *sorted(singles[1:], key=lambda s: s.dates)
    vis = slice(0, 5)  # B01..B05 carry the haze
    f, a, b, e, d = (HAZY_REGIONS[k] for k in "FABED")
    # all three clear: the middle value, never the hazy one
    np.testing.assert_array_equal(scene.data[vis][:, f[0], f[1]], np.maximum(d1.data, d2.data)[vis][:, f[0], f[1]])
    assert (scene.data[vis][:, f[0], f[1]] < hazy_s.data[vis][:, f[0], f[1]] - HAZE_DN / 2).all()
    # two clear observations, one hazy: the lower median is the clear date
    for region, clear_date in ((a, d2), (b, d1), (e, d1)):
        np.testing.assert_array_equal(scene.data[vis][:, region[0], region[1]],
                                      clear_date.data[vis][:, region[0], region[1]])
    # cloudy on every date: the least-cloudy date, still flagged cloud
    assert scene.cloud[d].all() and not scene.cloud[f].any()
    np.testing.assert_array_equal(scene.data[:, d[0], d[1]], hazy_s.data[:, d[0], d[1]])
    # the least-cloudy-first mosaic that a window gave before took the hazy date everywhere it was clear
    old, _, _ = _old_mosaic(hazy, HAZY_AOI, HAZY)
    np.testing.assert_array_equal(old[:, f[0], f[1]], hazy_s.data[:, f[0], f[1]])


def test_single_scene_window_is_bit_identical_to_the_old_mosaic(hazy, demo):
    one_day = DateWindow.parse(HAZY_DATES[0].isoformat())
    for provider, aoi, window in ((hazy, HAZY_AOI, one_day), (demo, demo.area_aoi("norcia"), NORCIA_A)):
        scene = provider.fetch(aoi, window)
        data, valid, cloud = _old_mosaic(provider, aoi, window)
        assert not scene.composite and len(scene.dates) == 1
        np.testing.assert_array_equal(scene.data, data)
        np.testing.assert_array_equal(scene.valid, valid)
        np.testing.assert_array_equal(scene.cloud, cloud)
        assert "composite" not in provider.cache_parts(aoi, window, None, 100.0)
    # a chosen acquisition inside a window of three stays that one acquisition
    acq = hazy.search(HAZY_AOI, HAZY)[1]
    chosen = hazy.fetch(HAZY_AOI, HAZY, acq)
    data, _, _ = _old_mosaic(hazy, HAZY_AOI, HAZY, acq)
    assert chosen.dates == (acq.date,) and not chosen.composite
    np.testing.assert_array_equal(chosen.data, data)


def test_composite_with_no_band_kept_reads_again_and_gives_the_same(hazy, monkeypatch):
    kept = hazy.fetch(HAZY_AOI, HAZY)
    reads = []
    original = local_module.SceneSource.read_on_grid

    def counting(self, grid, bands=EUROSAT_BAND_ORDER):
        reads.append(len(bands))
        return original(self, grid, bands)

    monkeypatch.setattr(local_module.SceneSource, "read_on_grid", counting)
    hazy.fetch(HAZY_AOI, HAZY)
    assert sum(reads) == 3 * 13  # all bands kept between the two passes: each read once
    reads.clear()
    monkeypatch.setattr(composite_module, "COMPOSITE_KEEP_BYTES", 0)
    again = hazy.fetch(HAZY_AOI, HAZY)
    assert sum(reads) == 2 * 3 * 13 and max(reads) == 1  # band by band, each read twice
    np.testing.assert_array_equal(again.data, kept.data)
    np.testing.assert_array_equal(again.cloud, kept.cloud)


def test_composite_cache_key_differs_from_single_and_round_trips(hazy, tmp_path):
    acq = hazy.search(HAZY_AOI, HAZY)[0]
    composite_parts = hazy.cache_parts(HAZY_AOI, HAZY, None, 100.0)
    assert composite_parts["composite"] == COMPOSITE_METHOD
    single_parts = hazy.cache_parts(HAZY_AOI, HAZY, acq, 100.0)
    one_day_parts = hazy.cache_parts(HAZY_AOI, DateWindow.parse(HAZY_DATES[0].isoformat()), None, 100.0)
    assert "composite" not in single_parts and "composite" not in one_day_parts
    keys = {cache_key(composite_parts), cache_key(single_parts), cache_key(one_day_parts)}
    assert len(keys) == 3
    # the tag alone separates a composite from the same sources' old mosaic key
    assert cache_key({k: v for k, v in composite_parts.items() if k != "composite"}) != cache_key(composite_parts)
    cached = CachingProvider(hazy, SceneCache(tmp_path))
    first = cached.fetch(HAZY_AOI, HAZY)
    one = cached.fetch(HAZY_AOI, HAZY, acq)
    again = cached.fetch(HAZY_AOI, HAZY)
    assert cached.cache.hits == 1 and again.composite and not one.composite
    assert again.dates == first.dates == HAZY_DATES
    np.testing.assert_array_equal(again.data, first.data)
    assert not np.array_equal(one.data, first.data)


def test_cache_settings_are_read_when_used(tmp_path, monkeypatch):
    """LULC_CACHE_DIR / LULC_CACHE_MAX_MB set after import still apply (tests and users isolate the cache)."""
    from lulc_core.cache import SceneCache
    from lulc_core.errors import LulcError

    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "here"))
    monkeypatch.setenv("LULC_CACHE_MAX_MB", "3")
    cache = SceneCache()
    assert cache.root == tmp_path / "here" and cache.max_bytes == 3 * 2**20
    monkeypatch.setenv("LULC_CACHE_MAX_MB", "abc")
    with pytest.raises(LulcError, match="LULC_CACHE_MAX_MB must be a number of megabytes, got 'abc'"):
        SceneCache()


def test_resampling_is_exact_on_the_source_grid_bilinear_between_and_window_independent():
    from affine import Affine

    from lulc_core.resample import SourcePlan, kernel_radii, node_coords

    rng = np.random.default_rng(0)
    src = rng.integers(1, 5000, (40, 50)).astype(np.uint16)
    src[5, 7] = 0  # no data
    crs, t = "EPSG:32632", Affine(10, 0, 600000, 0, -10, 4800000)
    radii = kernel_radii(crs, t, src.shape, crs, 10.0)
    assert radii == (1.0, 1.0)

    def resample(dst_t, rows, cols):
        plan = SourcePlan(*node_coords(crs, dst_t, rows, cols, crs), t, src.shape, radii)
        r0, r1, c0, c1 = plan.window
        return plan.apply(src[r0:r1, c0:c1])

    same = resample(t, (0, 40), (0, 50))
    np.testing.assert_array_equal(same, src.astype(np.float32))  # 0 stays no data
    half = resample(t * Affine.translation(0.5, 0), (0, 40), (0, 49))  # centres halfway between columns
    a, b = src[:, :-1].astype(np.float32), src[:, 1:].astype(np.float32)
    expect = np.where((a > 0) & (b > 0), (a + b) / 2, np.maximum(a, b))  # no data left out, the rest reweighted
    np.testing.assert_allclose(half, expect, rtol=1e-6)
    part = resample(t * Affine.translation(0.5, 0), (10, 30), (20, 45))
    np.testing.assert_array_equal(part, half[10:30, 20:45])
