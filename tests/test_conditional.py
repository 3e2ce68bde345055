"""The conditional 10 m change (lulc_core.conditional) on edits of a real scene (Norcia in July)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lulc_core.conditional import ConditionalModel, conditional_change, conditional_magnitude, fit_conditional
from lulc_core.spectral import SAMPLE_PIXELS, sample_pixels, spectral_change

CELL = 16


@pytest.fixture(scope="module")
def scene():
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    provider = DemoProvider()
    return provider.fetch(provider.area_aoi("norcia"), DateWindow.parse("2015-07-01/2015-07-31"))


def _ndvi(scene) -> np.ndarray:
    b = list(scene.bands)
    red, nir = (scene.data[b.index(n)].astype(np.float32) for n in ("B04", "B08"))
    return np.clip((nir - red) / (nir + red + 1e-6), 0, 1)


def test_a_scene_against_itself_has_no_conditional_change(scene):
    c = conditional_change(scene, scene)
    assert c.model is not None and c.changed.sum() == 0
    assert np.nanmax(c.magnitude) < 1e-3


def test_a_season_that_moves_one_kind_of_surface_is_not_change_but_a_new_object_is(scene):
    ndvi = _ndvi(scene)
    data = scene.data.astype(np.float32)
    bands = list(scene.bands)
    # a season: the greener a pixel, the more its near infrared and red edge drop and its red rises
    for band, f in (("B08", -0.35), ("B8A", -0.35), ("B07", -0.3), ("B06", -0.2), ("B04", 0.5), ("B03", 0.2),
                    ("B02", 0.1)):
        data[bands.index(band)] *= 1 + f * ndvi
    season = replace(scene, data=np.clip(data, 0, 65535).astype(np.uint16))
    green = (ndvi > 0.3) & scene.valid
    plain, conditional = spectral_change(scene, season), conditional_change(scene, season)
    assert plain.changed[green].mean() > 0.05  # one gain per band for the whole scene cannot follow it
    assert conditional.changed[green].mean() < 0.005  # each stratum's own fit does
    # a piece of the town pasted into the fields: changed, both ways of measuring
    town = scene.data.copy()
    town[:, 4 * CELL:6 * CELL, 0:2 * CELL] = scene.data[:, 0:2 * CELL, 8 * CELL:10 * CELL]
    pasted = conditional_change(scene, replace(scene, data=town))
    assert (pasted.share(CELL)[4:6, 0:2] > 0.8).all()
    rest = pasted.changed.copy()
    rest[4 * CELL - 2:6 * CELL + 2, 0:2 * CELL + 2] = False
    assert rest[pasted.valid].mean() < 0.03


def test_the_model_travels_as_json_and_a_given_model_gives_the_same_change(scene):
    other = replace(scene, data=np.roll(scene.data, 1, axis=2))
    fitted = conditional_change(scene, other)
    again = conditional_change(scene, other, model=ConditionalModel.from_json(fitted.model.to_json()))
    np.testing.assert_array_equal(np.nan_to_num(fitted.magnitude, nan=-1), np.nan_to_num(again.magnitude, nan=-1))
    assert fitted.threshold == again.threshold
    # fitting on the sample directly (as a region does with its pooled sample) is the same model
    valid = scene.valid & other.valid & ~scene.cloud & ~other.cloud
    idx, _ = sample_pixels(valid, scene.transform, SAMPLE_PIXELS)
    nb = len(scene.bands)
    model = fit_conditional(scene.data.reshape(nb, -1)[:, idx], other.data.reshape(nb, -1)[:, idx],
                            tuple(scene.bands))
    np.testing.assert_allclose(model.a_to_b.coef, fitted.model.a_to_b.coef)
    with pytest.raises(ValueError, match="fitted on bands"):
        conditional_magnitude(scene.data[:4], other.data[:4], tuple(scene.bands[:4]), valid, model)


def test_too_few_comparable_pixels_give_no_evidence(scene):
    empty = replace(scene, valid=np.zeros_like(scene.valid))
    c = conditional_change(scene, empty)
    assert c.model is None and not np.isfinite(c.threshold) and not c.changed.any()
    assert np.isnan(c.share(CELL)).all()
