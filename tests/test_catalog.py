"""The session's catalog search cache: one provider search per area and window."""

import datetime as dt

import pytest

from lulc_core.aoi import AOI
from lulc_core.catalog import SearchCache
from lulc_core.errors import OutsideCoverageError
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow

EVERYTHING = DateWindow(dt.date(2015, 6, 23), dt.date(2030, 1, 1))


class Counting:
    """The demo provider, counting its searches."""

    def __init__(self) -> None:
        self.inner = DemoProvider()
        self.name, self.collection = self.inner.name, self.inner.collection
        self.calls: list[tuple[str, float]] = []

    def search(self, aoi, window, max_cloud=100.0):
        self.calls.append((str(window), max_cloud))
        return self.inner.search(aoi, window, max_cloud)


@pytest.fixture(scope="module")
def norcia() -> AOI:
    return DemoProvider().area_aoi("norcia")


def test_a_second_search_of_the_same_area_and_window_does_not_reach_the_provider(norcia):
    provider, cache = Counting(), SearchCache()
    july = DateWindow.parse("2015-07-01/2015-07-31")
    first = cache.search(provider, norcia, july, 100.0)
    assert [a.date for a in first] == [dt.date(2015, 7, 11)]
    assert cache.search(provider, norcia, july, 100.0) == first
    # the same area drawn again (an equal, new AOI object) and a lower cloud limit: still cached
    again = AOI(norcia.geometry, name="drawn again")
    cloud = first[0].cloud_cover
    assert cache.search(provider, again, july, cloud) == first
    assert cache.search(provider, again, july, max(cloud - 0.01, 0) if cloud > 0 else -1) == []
    assert len(provider.calls) == 1 and provider.calls[0][1] == 100.0  # searched once, without a cloud limit
    # another window is a new search, another area too
    october = DateWindow.parse("2017-10-01/2017-10-31")
    assert [a.date for a in cache.search(provider, norcia, october)] == [dt.date(2017, 10, 18)]
    assert len(provider.calls) == 2


def test_a_window_inside_a_searched_one_is_answered_from_it(norcia):
    provider, cache = Counting(), SearchCache()
    listing = cache.search(provider, norcia, EVERYTHING)
    assert len(listing) == 2
    for w, expected in (("2015-07-01/2015-07-31", [dt.date(2015, 7, 11)]), ("2016-05-01/2016-05-31", []),
                        ("2015-06-23/2018-01-01", [dt.date(2015, 7, 11), dt.date(2017, 10, 18)])):
        window = DateWindow.parse(w)
        assert [a.date for a in cache.search(provider, norcia, window)] == expected
        assert cache.search(provider, norcia, window) == provider.inner.search(norcia, window)
    assert len(provider.calls) == 1  # the listing only


def test_errors_are_not_cached_and_the_cache_is_bounded(norcia):
    provider, cache = Counting(), SearchCache(max_entries=2)
    elsewhere = AOI.from_bbox(5.0, 45.0, 5.05, 45.05)
    for _ in range(2):
        with pytest.raises(OutsideCoverageError):
            cache.search(provider, elsewhere, EVERYTHING)
    assert len(provider.calls) == 2 and len(cache) == 0
    for w in ("2015-07-01/2015-07-31", "2015-08-01/2015-08-31", "2015-09-01/2015-09-30"):
        cache.search(provider, norcia, DateWindow.parse(w))
    assert len(cache) == 2


def test_a_cached_search_provider_searches_through_the_cache_and_fetches_as_the_provider(norcia):
    from lulc_core.catalog import CachedSearchProvider

    provider, cache = Counting(), SearchCache()
    cache.search(provider, norcia, EVERYTHING)
    wrapped = CachedSearchProvider(provider, cache)
    july = DateWindow.parse("2015-07-01/2015-07-31")
    assert [a.date for a in wrapped.search(norcia, july)] == [dt.date(2015, 7, 11)]
    assert len(provider.calls) == 1 and wrapped.collection == provider.collection
    assert wrapped.inner is provider.inner  # anything else is the provider's own
