"""The Sentinel-2 collections the providers serve, described as data (as ``sentinelhub``'s
``DataCollection`` does): processing level, bands served and whether the model was trained on it.

A :class:`Collection` is a ``str`` (its Sentinel Hub id, e.g. ``"sentinel-2-l1c"``), so it reads and
stores as before in cache keys, GeoTIFF tags and scene labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.errors import ProviderError


@dataclass(frozen=True)
class CollectionFacts:
    level: str  # processing level, in words
    bands: tuple[str, ...]  # bands the collection serves (of the 13 in EuroSAT order)
    in_training_domain: bool  # EuroSAT, and so the shipped model, is Level-1C
    sentinelhub_name: str  # the sentinelhub.DataCollection member


class Collection(StrEnum):
    """A Sentinel-2 collection; see :attr:`facts` for what it holds."""

    L1C = "sentinel-2-l1c"
    L2A = "sentinel-2-l2a"

    @property
    def facts(self) -> CollectionFacts:
        return _FACTS[self]

    @property
    def bands(self) -> tuple[str, ...]:
        return self.facts.bands

    @property
    def in_training_domain(self) -> bool:
        return self.facts.in_training_domain

    @property
    def domain_note(self) -> str | None:
        """A warning when imagery of this collection is outside the model's training domain."""
        if self.in_training_domain:
            return None
        return f"{self.facts.level} imagery is outside the model's training domain (EuroSAT is Level-1C)."


_FACTS = {
    Collection.L1C: CollectionFacts("Level-1C (top of atmosphere)", EUROSAT_BAND_ORDER, True, "SENTINEL2_L1C"),
    Collection.L2A: CollectionFacts("Level-2A", tuple(b for b in EUROSAT_BAND_ORDER if b != "B10"), False,
                                    "SENTINEL2_L2A"),  # atmospherically corrected: no cirrus band
}
DEFAULT_COLLECTION = Collection.L1C


def get_collection(name: str) -> Collection:
    """The collection of a name such as ``"sentinel-2-l1c"``; :class:`ProviderError` for unknown ones."""
    try:
        return Collection(str(name))
    except ValueError:
        raise ProviderError(f"unknown collection {name!r}; use one of {', '.join(c.value for c in Collection)}") \
            from None
