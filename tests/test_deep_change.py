"""Deep change evidence (lulc_core.deep_change): blocks, additive statistics, no change without change."""

import numpy as np
import pytest

from lulc_core import deep_change as dc


@pytest.fixture(scope="module")
def norcia():
    from lulc_core.model.classifier import Classifier
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    provider = DemoProvider()
    aoi = provider.area_aoi("norcia")
    a = provider.fetch(aoi, DateWindow.parse("2015-07-01/2015-07-31"))
    b = provider.fetch(aoi, DateWindow.parse("2017-10-01/2017-10-31"))
    return Classifier(threads=2, tta=False), a, b


def test_blocks_computed_twice_equal_the_layers_kept_once(norcia, monkeypatch):
    """A scene too large to keep its layers runs them twice in square blocks with a halo: the same
    statistics and cell features as running them once over the whole scene (one block)."""
    clf, a, b = norcia
    valid = a.valid & b.valid
    cells = (valid.shape[0] // 16, valid.shape[1] // 16)
    once = dc.deep_change(clf, a.data, b.data, a.bands, valid, cells)
    monkeypatch.setattr(dc, "KEEP_BYTES", 0)
    monkeypatch.setattr(dc, "BLOCK_PX", 64)  # 3 x 5 blocks over Norcia's 192 x 320 px
    twice = dc.deep_change(clf, a.data, b.data, a.bands, valid, cells)
    for k in dc.LAYERS:
        np.testing.assert_allclose(twice.channel_sd[k], once.channel_sd[k], rtol=1e-5)
        assert twice.thresholds[k] == pytest.approx(once.thresholds[k], rel=1e-5)
    np.testing.assert_allclose(twice.features, once.features, rtol=1e-4, atol=1e-6)
    assert np.isfinite(once.features).all() and (once.features[..., 0] > 0).any()


def test_statistics_add_over_parts_of_the_scene(norcia):
    """A region adds its tiles' channel and distance sums: two halves give the whole's scales and thresholds."""
    clf, a, b = norcia
    valid = a.valid & b.valid
    deep = dc.DeepFeatures(clf)
    h, w = valid.shape
    whole = dc.channel_sums(deep, a.data, b.data, a.bands, valid)
    halves = [dc.channel_sums(deep, a.data, b.data, a.bands, valid, core) for core in
              ((0, 0, h // 2, w), (h // 2, 0, h, w))]
    sd = whole.channel_sd()
    for k in dc.LAYERS:
        np.testing.assert_allclose((halves[0] + halves[1]).channel_sd()[k], sd[k], rtol=1e-6)
    assert dc.ChannelSums.from_json(whole.to_json()).channel_sd()[dc.LAYERS[0]] == pytest.approx(sd[dc.LAYERS[0]])
    d = dc.change_distance(deep, a.data, b.data, a.bands, valid, sd)
    parts = [dc.change_distance(deep, a.data, b.data, a.bands, valid, sd, core) for core in
             ((0, 0, h // 2, w), (h // 2, 0, h, w))]
    total, split = dc.DistanceSums(), dc.DistanceSums()
    total.add(d)
    for p in parts:
        s = dc.DistanceSums()
        s.add(p)
        split = split + s
    for k in dc.LAYERS:
        np.testing.assert_allclose(np.concatenate([p[k] for p in parts]), d[k], rtol=1e-5, equal_nan=True)
        assert split.thresholds()[k] == pytest.approx(total.thresholds()[k], rel=1e-6)


def test_a_scene_against_itself_has_no_deep_change_and_the_threshold_keeps_its_floor(norcia):
    clf, a, _ = norcia
    same = dc.deep_change(clf, a.data, a.data, a.bands, a.valid, (12, 20))
    assert np.nanmax(same.features[..., [0, 2]]) == 0 and np.nanmax(same.features[..., [1, 3]]) == 0
    assert all(t == dc.MIN_DISTANCE for t in same.thresholds.values())
    few = np.zeros_like(a.valid)
    few[:4, :4] = True  # 4 locations of 20 m: too few for any statistic
    none = dc.deep_change(clf, a.data, a.data, a.bands, few, (12, 20))
    assert none.thresholds is None and np.isnan(none.features).all()
