"""Catalog search results kept for a session: one provider search per area and window.

The Area page lists what exists over an area and then searches each date window on every rerun
(a slider move, a typed date); the same window was searched up to five times in one session.
:class:`SearchCache` keeps each search's result (made without a cloud limit, which is applied
here) under (provider, collection, area, window), and answers a window inside one already searched
for the same area (e.g. the whole-archive listing) from that result, without a provider request.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

import shapely

from lulc_core.aoi import AOI
from lulc_core.scene import Acquisition, DateWindow

AREA_DECIMALS = 6  # lon/lat rounded to about 0.1 m in the cache key


class Searchable(Protocol):
    name: str

    def search(self, aoi: AOI, window: DateWindow, max_cloud: float = 100.0) -> list[Acquisition]: ...


def area_key(aoi: AOI) -> str:
    """The AOI's outline as rounded WKT (equal areas drawn twice share their searches)."""
    return shapely.to_wkt(aoi.geometry, rounding_precision=AREA_DECIMALS)


class SearchCache:
    """Provider searches per (provider name, collection, area, window), the most recent ``max_entries``.

    Results are stored for any cloud cover and filtered by ``max_cloud`` on the way out, so moving
    the cloud limit never searches again. Errors are not stored: a failed search is tried again."""

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._store: OrderedDict[tuple, tuple[DateWindow, list[Acquisition]]] = OrderedDict()
        self.provider_calls = 0

    def _covering(self, prefix: tuple, window: DateWindow) -> list[Acquisition] | None:
        for key, (w, acqs) in reversed(self._store.items()):
            if key[:3] == prefix and w.start <= window.start and window.end <= w.end:
                self._store.move_to_end(key)
                return [a for a in acqs if window.contains(a.date)]
        return None

    def search(self, provider: Searchable, aoi: AOI, window: DateWindow,
               max_cloud: float = 100.0) -> list[Acquisition]:
        """``provider.search(aoi, window, max_cloud)``, from this cache where it can answer."""
        prefix = (provider.name, getattr(provider, "collection", None), area_key(aoi))
        found = self._covering(prefix, window)
        if found is None:
            self.provider_calls += 1
            found = list(provider.search(aoi, window, 100.0))
            self._store[prefix + (str(window),)] = (window, found)
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return [a for a in found if a.cloud_cover <= max_cloud]

    def __len__(self) -> int:
        return len(self._store)


class CachedSearchProvider:
    """A provider whose :meth:`search` goes through a :class:`SearchCache`; everything else
    (``fetch``, ``collection``, ...) is the provider's own."""

    def __init__(self, provider: Any, cache: SearchCache) -> None:
        self._provider, self._cache = provider, cache

    def search(self, aoi: AOI, window: DateWindow, max_cloud: float = 100.0) -> list[Acquisition]:
        return self._cache.search(self._provider, aoi, window, max_cloud)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)
