"""Spectral indices of a signature, and the plain-words explanation of a cell."""

import math

import numpy as np
import pytest

from lulc_core.indices import spectral_indices


def test_indices_have_known_values():
    vegetation = {"B03": 0.05, "B04": 0.03, "B08": 0.40, "B11": 0.20}
    water = {"B03": 0.08, "B04": 0.05, "B08": 0.02, "B11": 0.01}
    roof = {"B03": 0.12, "B04": 0.14, "B08": 0.20, "B11": 0.30}
    v, w, r = spectral_indices(vegetation), spectral_indices(water), spectral_indices(roof)
    assert v["NDVI"] == pytest.approx((0.40 - 0.03) / 0.43) and v["NDVI"] > 0.8
    assert w["NDWI"] == pytest.approx(0.6) and w["NDVI"] < 0
    assert r["NDBI"] == pytest.approx(0.2) and v["NDBI"] < 0
    assert all(math.isnan(x) for x in spectral_indices({"B03": float("nan")}).values())


def test_why_cell_names_both_dates_the_evidence_and_the_kind():
    from lulc_core.change import ChangeThresholds, compare
    from lulc_core.classes import CLASS_NAMES
    from lulc_core.joint import EvidenceModel
    from lulc_core.texts import why_cell
    from tests.test_change import make_map

    F, R = CLASS_NAMES.index("Forest"), CLASS_NAMES.index("Residential")
    ch = compare(make_map([[F, F]]), make_map([[R, F]]), ChangeThresholds(0.6, 0.1, "group", 0.2),
                 np.array([[0.5, 0.0]]), EvidenceModel(0.0, 1.0))
    text = why_cell(ch, 0, 0)
    assert text.startswith("**Land-cover change**") and "Forest 0.95" in text and "Residential 0.95" in text
    assert "50% of its 10 m pixels changed" in text and "jointly Forest -> Residential" in text
    assert why_cell(ch, 0, 1).startswith("**Unchanged**") and "jointly Forest -> Forest" in why_cell(ch, 0, 1)
