"""The same contract for every provider: the bundled demo and Sentinel Hub (real client, fake server)."""

import datetime as dt

import numpy as np
import pytest

from lulc_core.aoi import AOI
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.cache import SceneCache
from lulc_core.errors import NoImageryError
from lulc_core.providers.base import CachingProvider, ImageryProvider
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow
from tests.fake_sh_fixture import *  # noqa: F401,F403

WINDOW = DateWindow.parse("2015-07-01/2015-07-31")
# a 2 x 1 km box inside the Norcia demo scenes
AOI_NORCIA = AOI.from_bbox(13.080, 42.785, 13.100, 42.796, name="norcia-box")


@pytest.fixture(params=["demo", "sentinelhub"])
def provider(request):
    if request.param == "demo":
        return DemoProvider()
    return request.getfixturevalue("sh_provider")


def test_provider_satisfies_the_protocol(provider):
    assert isinstance(provider, ImageryProvider)
    assert provider.collection == "sentinel-2-l1c"


def test_search_contract(provider):
    acqs = provider.search(AOI_NORCIA, DateWindow.parse("2015-01-01/2018-12-31"))
    assert [a.date for a in acqs] == [dt.date(2015, 7, 11), dt.date(2017, 10, 18)]
    assert all(0 <= a.cloud_cover <= 100 and "33TUH" in a.tile_id for a in acqs)
    assert provider.search(AOI_NORCIA, DateWindow.parse("2016-01-01/2016-12-31")) == []


def test_fetch_contract(provider):
    scene = provider.fetch(AOI_NORCIA, WINDOW)
    assert scene.matches(AOI_NORCIA.grid)
    assert scene.bands == EUROSAT_BAND_ORDER
    assert scene.data.dtype == np.uint16 and scene.data.shape == (13, AOI_NORCIA.grid.height, AOI_NORCIA.grid.width)
    assert scene.valid.mean() > 0.9 and scene.cloud.dtype == bool
    assert scene.dates == (dt.date(2015, 7, 11),)
    assert scene.collection == "sentinel-2-l1c"


def test_fetch_outside_window_is_a_clear_error(provider):
    with pytest.raises(NoImageryError, match="2016-01-01/2016-01-31"):
        provider.fetch(AOI_NORCIA, DateWindow.parse("2016-01-01/2016-01-31"))


def test_sentinelhub_and_local_give_the_same_pixels(sh_provider):
    local = DemoProvider().fetch(AOI_NORCIA, WINDOW)
    remote = sh_provider.fetch(AOI_NORCIA, WINDOW)
    np.testing.assert_array_equal(remote.valid, local.valid)
    diff = np.abs(remote.data.astype(int) - local.data.astype(int))[:, local.valid]
    assert diff.mean() < 1.0 and diff.max() <= 8
    assert remote.processing_units > 0 and local.processing_units == 0


def test_cache_hit_makes_zero_requests(sh_provider, fake_sh, tmp_path):
    cached = CachingProvider(sh_provider, SceneCache(tmp_path))
    first = cached.fetch(AOI_NORCIA, WINDOW)
    n = len(fake_sh.request_log)
    assert n >= 1
    second = cached.fetch(AOI_NORCIA, WINDOW)
    assert len(fake_sh.request_log) == n
    np.testing.assert_array_equal(first.data, second.data)
    assert second.processing_units == 0


ALL_YEARS = DateWindow.parse("2015-01-01/2018-12-31")


def test_window_of_several_dates_is_a_composite(provider):
    scene = provider.fetch(AOI_NORCIA, ALL_YEARS)
    assert scene.composite and scene.dates == (dt.date(2015, 7, 11), dt.date(2017, 10, 18))
    assert len(scene.acquisitions) == 2 and scene.matches(AOI_NORCIA.grid)
    assert scene.data.dtype == np.uint16 and scene.valid.mean() > 0.9
    single = provider.fetch(AOI_NORCIA, WINDOW)
    assert not single.composite
    assert provider.cache_parts(AOI_NORCIA, ALL_YEARS, None, 100.0) != provider.cache_parts(AOI_NORCIA, WINDOW, None,
                                                                                           100.0)


def test_sentinelhub_and_local_give_the_same_composite(sh_provider, fake_sh):
    local = DemoProvider().fetch(AOI_NORCIA, ALL_YEARS)
    remote = sh_provider.fetch(AOI_NORCIA, ALL_YEARS)
    assert fake_sh.count("process") == 1 and remote.dates == local.dates
    np.testing.assert_array_equal(remote.valid, local.valid)
    np.testing.assert_array_equal(remote.cloud, local.cloud)
    diff = np.abs(remote.data.astype(int) - local.data.astype(int))[:, local.valid]
    assert diff.mean() < 1.0 and diff.max() <= 8
    assert remote.processing_units > 0 and local.processing_units == 0
