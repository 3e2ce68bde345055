"""The provider interface and the caching wrapper every provider is used through."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, runtime_checkable

from lulc_core.aoi import AOI
from lulc_core.cache import SceneCache, cache_key
from lulc_core.errors import AOIError
from lulc_core.scene import Acquisition, DateWindow, Scene

#: progress(fraction 0..1, message)
ProgressFn = Callable[[float, str], None]
#: Largest area one analysis fetches per date (50 x 50 km: four Process API requests at 10 m); a
#: larger region is split into tiles.
MAX_RUN_AREA_KM2 = 2500.0


def check_area_size(aoi: AOI, max_area_km2: float = MAX_RUN_AREA_KM2) -> None:
    """:class:`AOIError` when ``aoi`` is larger than one analysis (one fetch per date) may be."""
    if aoi.area_km2 > max_area_km2:
        raise AOIError(f"the area is too large: {aoi.area_km2:,.0f} km2; the limit is {max_area_km2:,.0f} km2 "
                       "for one analysis")


@runtime_checkable
class ImageryProvider(Protocol):
    """Search acquisitions and fetch Scenes on an AOI's 10 m UTM grid."""

    name: str
    collection: str

    def search(self, aoi: AOI, window: DateWindow, max_cloud: float = 100.0) -> list[Acquisition]:
        """Acquisitions over ``aoi`` within ``window`` (inclusive), sorted by date."""
        ...

    def fetch(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None = None,
              max_cloud: float = 100.0, progress: ProgressFn | None = None,
              found: list[Acquisition] | None = None) -> Scene:
        """A Scene on ``aoi.grid``: the chosen acquisition, or the window's mosaic / composite.

        ``found``: what :meth:`search` returned for this AOI, window and ``max_cloud`` (the fetch then
        does not search again); None: the fetch searches itself."""
        ...

    def cache_parts(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None,
                    max_cloud: float) -> dict[str, Any]:
        """Everything that determines the pixels of a fetch (nothing secret)."""
        ...


class CachingProvider:
    """Wraps a provider so that every fetched Scene is cached on disk (hits cost 0 PU)."""

    def __init__(self, provider: ImageryProvider, cache: SceneCache) -> None:
        self.provider = provider
        self.cache = cache
        self.name = provider.name
        self.collection = provider.collection

    def search(self, aoi: AOI, window: DateWindow, max_cloud: float = 100.0) -> list[Acquisition]:
        return self.provider.search(aoi, window, max_cloud)

    def fetch(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None = None,
              max_cloud: float = 100.0, progress: ProgressFn | None = None,
              found: list[Acquisition] | None = None) -> Scene:
        key = cache_key(self.provider.cache_parts(aoi, window, acquisition, max_cloud))
        scene = self.cache.get(key)
        if scene is not None:
            if progress:
                progress(1.0, "from cache")
            return scene
        scene = self.provider.fetch(aoi, window, acquisition, max_cloud, progress, found=found)
        self.cache.put(key, scene)
        return scene

    def cache_parts(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None,
                    max_cloud: float) -> dict[str, Any]:
        return self.provider.cache_parts(aoi, window, acquisition, max_cloud)

    def __getattr__(self, item: str) -> Any:  # areas(), config and the like of the wrapped provider
        return getattr(self.provider, item)


def acquisition_parts(acquisition: Acquisition | None) -> dict[str, Any] | None:
    return None if acquisition is None else {
        k: v for k, v in dataclasses.asdict(acquisition).items() if k in ("datetime", "tile_id", "id")}
