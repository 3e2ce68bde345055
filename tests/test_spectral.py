"""10 m spectral change: relative normalisation, magnitude, threshold and aggregation."""

from dataclasses import replace

import numpy as np
import pytest

from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow
from lulc_core.spectral import orthogonal_fit, spectral_change


@pytest.fixture(scope="module")
def scene():
    p = DemoProvider()
    return p.fetch(p.area_aoi("norcia"), DateWindow.parse("2015-07-01/2015-07-31"))


def affine_copy(scene, gain, offset):
    """Date B = gain x date A + offset per band (what haze, sun and sensor differences look like)."""
    data = scene.data.astype(np.float64) * gain[:, None, None] + offset[:, None, None]
    return replace(scene, data=np.clip(np.rint(data), 1, 65535).astype(np.uint16))


def test_gain_and_offset_are_normalised_away(scene):
    rng = np.random.default_rng(0)
    gain, offset = rng.uniform(0.75, 1.3, 13), rng.uniform(-80, 300, 13)
    b = affine_copy(scene, gain, offset)
    sc = spectral_change(scene, b)
    keep = np.array([b != "B10" for b in scene.bands])  # B10 (cirrus) holds tens of DN: rounding dominates
    np.testing.assert_allclose(sc.gain[keep], gain[keep], rtol=0.01)
    np.testing.assert_allclose(sc.offset[keep], offset[keep], atol=15)
    assert not sc.changed.any(), "a pure gain/offset difference is no change"
    assert sc.changed_share == 0 and np.nanmax(sc.magnitude) < sc.threshold


def test_a_real_change_is_found_where_it_is(scene):
    b = affine_copy(scene, np.full(13, 0.9), np.full(13, 120.0))
    data = b.data.copy()
    # a 40 x 40 px block (16 ha) replaced by the pixels of another part of the scene
    data[:, 100:140, 200:240] = data[:, 20:60, 20:60]
    b = replace(b, data=data)
    sc = spectral_change(scene, b)
    block = np.zeros(sc.changed.shape, bool)
    block[100:140, 200:240] = True
    differs = np.abs(scene.data[:, block].astype(int) - scene.data[:, 20:60, 20:60].reshape(13, -1)).max(0) > 300
    assert sc.changed[block].mean() > 0.5 * differs.mean()
    assert sc.changed[~block].mean() < 0.01
    share = sc.share(16)
    assert share.shape == (sc.changed.shape[0] // 16, sc.changed.shape[1] // 16)
    assert np.nanmax(share[7:8, 13:14]) > 0.5 and np.nanmean(share[:4, 16:]) < 0.02


def test_identical_scenes_show_no_change(scene):
    sc = spectral_change(scene, scene)
    assert not sc.changed.any() and np.nanmax(sc.magnitude) == 0
    np.testing.assert_allclose(sc.gain, 1, atol=1e-6)


def test_clouds_and_nodata_are_masked(scene):
    b = affine_copy(scene, np.ones(13), np.zeros(13))
    data, cloud, valid = b.data.copy(), b.cloud.copy(), b.valid.copy()
    data[:, :50, :50] = 9000  # a bright cloud...
    cloud[:50, :50] = True  # ...that the mask flags
    valid[-30:, :] = False  # and a strip without data
    sc = spectral_change(scene, replace(b, data=data, cloud=cloud, valid=valid))
    assert not sc.valid[:50, :50].any() and not sc.valid[-30:].any()
    assert not sc.changed[:50, :50].any() and np.isnan(sc.magnitude[:50, :50]).all()
    assert np.isnan(sc.share(16)[-1]).all()  # the last row of cells has no comparable pixel


def test_too_few_comparable_pixels_gives_no_evidence(scene):
    b = replace(scene, valid=np.zeros_like(scene.valid))
    sc = spectral_change(scene, b)
    assert np.isnan(sc.threshold) and not sc.changed.any() and np.isnan(sc.changed_share)


def test_mismatched_scenes_are_refused(scene):
    with pytest.raises(ValueError, match="share bands and grid"):
        spectral_change(scene, replace(scene, data=scene.data[:, :-1], valid=scene.valid[:-1], cloud=scene.cloud[:-1]))


def test_orthogonal_fit_is_symmetric_total_least_squares():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1000, 2000)
    slope, intercept = orthogonal_fit(x, 1.5 * x + 40)
    assert slope == pytest.approx(1.5) and intercept == pytest.approx(40)
    y = 0.8 * x + rng.normal(0, 30, x.size)
    s_xy, _ = orthogonal_fit(x, y)
    s_yx, _ = orthogonal_fit(y, x)
    assert s_xy * s_yx == pytest.approx(1.0)  # the same line whichever date is "x"


def shifted_copy(scene, dy: int, dx: int):
    """Date B = date A moved by (dy, dx) pixels (a misregistration), edges left as they were."""
    data = scene.data.copy()
    h, w = scene.height, scene.width
    data[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        scene.data[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return replace(scene, data=data)


@pytest.mark.parametrize("tolerance_px", [0, 1])
def test_a_scene_against_itself_has_zero_changed_share(scene, tolerance_px):
    sc = spectral_change(scene, scene, tolerance_px=tolerance_px)
    assert not sc.changed.any() and np.nanmax(sc.magnitude) == 0
    assert np.nanmax(sc.share(16)) == 0 and np.nanmax(sc.share(16, softness=0.05)) < 1e-6


@pytest.mark.parametrize("bands", [None, ("B02", "B03", "B04", "B08")])
def test_tolerance_absorbs_a_one_pixel_shift_but_not_a_real_change(scene, bands):
    b = shifted_copy(scene, 1, -1)
    strict = spectral_change(scene, b, tolerance_px=0, bands=bands)
    tolerant = spectral_change(scene, b, tolerance_px=1, bands=bands)
    inner = (slice(2, -2), slice(2, -2))  # the copied edge rows and columns are no shift
    assert np.nanmax(tolerant.magnitude[inner]) < 0.5 * np.nanmax(strict.magnitude[inner])
    assert tolerant.changed[inner].mean() < 0.002
    data = b.data.copy()
    data[:, 100:140, 200:240] = data[:, 20:60, 20:60]  # a 16 ha block of other land pasted in
    pasted = spectral_change(scene, replace(b, data=data), tolerance_px=1, bands=bands)
    block = np.zeros(pasted.changed.shape, bool)
    block[100:140, 200:240] = True
    assert pasted.changed[block].mean() > 0.3 and pasted.changed[~block][2:-2].mean() < 0.005
    share = pasted.share(16)
    assert share[7, 13] > 0.5 and np.nanmean(share[:4, 16:]) < 0.02


def test_magnitude_bands_choose_what_counts(scene):
    data = scene.data.copy()
    data[12, 50:60, 50:60] += 3000  # B8A only (EuroSAT order: B8A last): not a 10 m band
    b = replace(scene, data=data)
    assert spectral_change(scene, b, bands=None).changed[50:60, 50:60].all()
    assert not spectral_change(scene, b, bands=("B02", "B03", "B04", "B08")).changed.any()


def test_a_reused_normalisation_gives_the_same_answer_as_a_fresh_fit(scene):
    """The pipeline's second pass (built-up tolerance) reuses the first pass's fit: same result."""
    data = scene.data.copy()
    data[:, 40:70, 40:70] = np.clip(data[:, 40:70, 40:70].astype(np.int32) + 900, 0, 65535).astype(data.dtype)
    b = replace(scene, data=(data * 1.05).astype(data.dtype))
    plain = spectral_change(scene, b)
    assert plain.normalisation is not None
    fresh = spectral_change(scene, b, tolerance_px=1)
    reused = spectral_change(scene, b, tolerance_px=1, normalisation=plain.normalisation)
    np.testing.assert_array_equal(fresh.magnitude, reused.magnitude)
    assert fresh.threshold == reused.threshold and fresh.changed.any()
    # a different fit gives a different answer: the argument is used, not ignored
    other = spectral_change(scene, b, tolerance_px=1, normalisation=(plain.gain * 1.3, plain.offset, plain.noise))
    assert not np.array_equal(other.magnitude, fresh.magnitude, equal_nan=True)
