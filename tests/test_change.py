import csv
import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from lulc_core.aoi import PatchGrid
from lulc_core.change import CHANGED, OUTSIDE, UNCERTAIN, UNCHANGED, ChangeThresholds, compare, tv_distance
from lulc_core.classes import CLASS_NAMES
from lulc_core.classify import ClassMap
from lulc_core.export import patch_features, write_classmap_geotiff, write_csvs
from lulc_core.patches import CLOUDY, NODATA, OK, OUTSIDE as P_OUTSIDE

GRID = PatchGrid("EPSG:32633", Affine(10, 0, 320000, 0, -10, 4740480), 3 * 64, 2 * 64)
FULL = 40.96


def onehot(k: int, p: float = 0.95) -> np.ndarray:
    v = np.full(10, (1 - p) / 9)
    v[k] = p
    return v


def make_map(labels, status=None, conf=None, area=None) -> ClassMap:
    labels = np.array(labels)
    probs = np.full(labels.shape + (10,), np.nan, dtype=np.float32)
    conf = np.full(labels.shape, 0.95) if conf is None else np.array(conf)
    status = np.full(labels.shape, OK) if status is None else np.array(status)
    for idx in np.ndindex(labels.shape):
        if status[idx] == OK:
            probs[idx] = onehot(labels[idx], conf[idx])
    area = np.full(labels.shape, FULL) if area is None else np.array(area, dtype=float)
    return ClassMap(GRID, probs, status.astype(np.int8), area)


def test_hand_built_pair_has_known_answers():
    F, R, A, W = (CLASS_NAMES.index(n) for n in ("Forest", "Residential", "AnnualCrop", "SeaLake"))
    a = make_map([[F, F, A], [A, W, W]], status=[[OK, OK, OK], [OK, OK, P_OUTSIDE]],
                 area=[[FULL, FULL, 20.48], [FULL, FULL, 0]])
    b = make_map([[F, R, R], [A, W, W]], status=[[OK, OK, OK], [CLOUDY, OK, P_OUTSIDE]],
                 conf=[[0.95, 0.95, 0.95], [0.95, 0.4, 0.95]], area=[[FULL, FULL, 20.48], [FULL, FULL, 0]])
    ch = compare(a, b)
    assert ch.state.tolist() == [[UNCHANGED, CHANGED, CHANGED], [UNCERTAIN, UNCERTAIN, OUTSIDE]]
    # transitions count patches classified on both dates: (F->F), (F->R), (A->R half patch), (W->W)
    assert ch.transition_patches[F, F] == 1 and ch.transition_patches[F, R] == 1
    assert ch.transition_patches[A, R] == 1 and ch.transition_patches[W, W] == 1
    assert ch.transition_patches.sum() == 4
    assert ch.transition_ha[A, R] == pytest.approx(20.48)
    assert ch.transition_ha.sum() == pytest.approx(3 * FULL + 20.48)
    assert ch.area_a_ha[F] == pytest.approx(2 * FULL) and ch.area_b_ha[R] == pytest.approx(FULL + 20.48)
    assert ch.net_change_ha[R] == pytest.approx(FULL + 20.48)
    assert ch.net_change_ha[A] == pytest.approx(-(20.48 + FULL))  # one A patch is cloudy on B
    # scores: identical vectors -> 0; two confident one-hots -> 0.95 - 0.05/9
    assert ch.score[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert ch.score[0, 1] == pytest.approx(0.95 - 0.05 / 9, abs=1e-6)
    assert np.isnan(ch.score[1, 0])
    # built-up change (Highway + Industrial + Residential mass): Forest -> Residential goes from
    # 3 * 0.05/9 to 0.95 + 2 * 0.05/9; Forest -> Forest gains nothing; a cloudy patch has none
    assert ch.built_up_change[0, 1] == pytest.approx(0.95 - 0.05 / 9, abs=1e-6)
    assert ch.built_up_change[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(ch.built_up_change[1, 0])
    assert ch.state_counts() == {"unchanged": 1, "changed": 2, "uncertain": 2, "outside": 1}
    # raising the confidence threshold turns everything uncertain; min_score filters weak flips
    assert (compare(a, b, ChangeThresholds(confidence=0.99)).state[0] == UNCERTAIN).all()
    assert compare(a, b, ChangeThresholds(min_score=0.99)).state[0, 1] == UNCHANGED


def test_tv_distance_bounds():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10), size=100)
    q = rng.dirichlet(np.ones(10), size=100)
    d = tv_distance(p, q)
    assert ((d >= 0) & (d <= 1)).all()
    np.testing.assert_allclose(tv_distance(p, p), 0)
    assert tv_distance(np.eye(10)[0], np.eye(10)[1]) == 1


def test_nodata_is_never_a_class():
    a = make_map([[0, 0, 0], [0, 0, 0]], status=[[NODATA, OK, OK], [OK, OK, OK]])
    assert a.labels[0, 0] == -1 and np.isnan(a.confidence[0, 0])
    assert a.class_areas_ha().sum() == pytest.approx(5 * FULL)


def test_exports_roundtrip(tmp_path):
    a = make_map([[1, 1, 0], [0, 9, 9]], status=[[OK, OK, CLOUDY], [OK, OK, OK]])
    b = make_map([[1, 7, 0], [0, 9, 8]])
    ch = compare(a, b)
    path = write_classmap_geotiff(tmp_path / "a.tif", a)
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32633
        assert ds.bounds == pytest.approx(GRID.bounds)
        assert ds.res == (640.0, 640.0) and ds.count == 11
        assert ds.descriptions[0] == "class" and ds.descriptions[1] == "p_AnnualCrop"
        assert ds.nodata == 65535
        cls = ds.read(1)
        assert cls.tolist() == [[1, 1, 65535], [0, 9, 9]]
        probs = ds.read(list(range(2, 12))).astype(float) * ds.scales[1]
        np.testing.assert_allclose(probs[:, 0, 0], a.probs[0, 0], atol=1e-4)
        assert ds.colormap(1)[1][:3] == (31, 107, 42)
    fc = patch_features(ch)
    assert len(fc["features"]) == 6
    f = fc["features"][1]["properties"]
    assert (f["class_a"], f["class_b"], f["change"]) == ("Forest", "Residential", "changed")
    assert len(f["prob_a"]) == 10 and f["area_ha"] == pytest.approx(FULL)
    assert f["built_up_change"] == pytest.approx(0.95 - 0.05 / 9, abs=1e-4)
    assert fc["features"][2]["properties"]["class_a"] is None
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 12 < lon < 14 and 42 < lat < 43.5
    t, areas = write_csvs(tmp_path, ch)
    rows = list(csv.DictReader(open(t)))
    assert len(rows) == 100
    fr = next(r for r in rows if r["from_class_a"] == "Forest" and r["to_class_b"] == "Residential")
    assert fr["patches"] == "1" and float(fr["hectares"]) == pytest.approx(FULL)
    json.dumps(fc)


def test_true_colour_is_shown_only_on_analysed_patches():
    from lulc_core.render import only_patches

    img = np.full((2 * 64, 3 * 64, 3), 100, dtype=np.uint8)
    inside = np.array([[True, False, True], [True, True, False]])
    rgba = only_patches(img, inside, 64)
    assert rgba.shape == (128, 192, 4)
    assert (rgba[:64, 64:128, 3] == 0).all() and (rgba[64:, 128:, 3] == 0).all()
    assert (rgba[:64, :64, 3] == 255).all() and (rgba[64:, 64:128, 3] == 255).all()
    assert (rgba[..., :3] == 100).all()


def test_real_demo_pair_is_consistent():
    from lulc_core.model import load_classifier
    from lulc_core.pipeline import run_analysis
    from lulc_core.providers.local import demo_provider
    from lulc_core.scene import DateWindow

    provider, clf = demo_provider(), load_classifier()
    aoi = provider.area_aoi("norcia")
    wa, wb = DateWindow.parse("2015-07-01/2015-07-31"), DateWindow.parse("2017-10-01/2017-10-31")
    an = run_analysis(aoi, wa, wb, provider, clf)
    ch = an.change
    ok = an.a.classes.classified & an.b.classes.classified
    assert ok.sum() == 15
    assert ((ch.score[ok] >= 0) & (ch.score[ok] <= 1)).all()
    # the matrix's row sums are date A's class areas (every patch is classified on both dates here)
    np.testing.assert_allclose(ch.transition_ha.sum(axis=1), ch.area_a_ha)
    np.testing.assert_allclose(ch.transition_ha.sum(axis=0), ch.area_b_ha)
    assert ch.transition_ha.sum() == pytest.approx(aoi.area_ha, rel=0.01)
    assert sum(ch.state_counts().values()) == 15
    # a date against itself: nothing changed, every score zero
    same = run_analysis(aoi, wa, wa, provider, clf).change
    assert same.state_counts()["changed"] == 0
    np.testing.assert_allclose(same.score[ok], 0, atol=1e-6)
    assert np.trace(same.transition_patches) == 15
