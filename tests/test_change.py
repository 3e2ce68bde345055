import csv
import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from lulc_core.grid import Grid
from lulc_core.change import ChangeKind, ChangeState, ChangeThresholds, compare, tv_distance
from lulc_core.joint import EvidenceModel
from lulc_core.classes import CLASS_NAMES
from lulc_core.classify import ClassMap
from lulc_core.export import cell_features, write_classmap_geotiff, write_csvs
from lulc_core.cells import CellStatus

OK, CLOUDY, NODATA = CellStatus.OK, CellStatus.CLOUDY, CellStatus.NODATA
UNCHANGED, CHANGED, UNCERTAIN = ChangeState.UNCHANGED, ChangeState.CHANGED, ChangeState.UNCERTAIN

GRID = Grid("EPSG:32633", Affine(10, 0, 320000, 0, -10, 4740480), 3 * 64, 2 * 64)
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


#: P(change | evidence) = the cell's share of changed pixels: easy to reason about in hand-built cases
SHARE_IS_P = EvidenceModel(0.0, 1.0)


def hand_built_pair():
    """Six cells: a group flip with strong evidence, a crop-season flip with evidence, a cloud, a
    weak flip without evidence and a cell outside the AOI."""
    F, R, A, P, W = (CLASS_NAMES.index(n) for n in ("Forest", "Residential", "AnnualCrop", "Pasture", "SeaLake"))
    area = [[FULL, FULL, 20.48], [FULL, FULL, 0]]
    a = make_map([[F, F, A], [A, W, W]], status=[[OK, OK, OK], [OK, OK, CellStatus.OUTSIDE]], area=area)
    b = make_map([[F, R, P], [A, R, W]], conf=[[0.95, 0.95, 0.95], [0.95, 0.6, 0.95]],
                 status=[[OK, OK, OK], [CLOUDY, OK, CellStatus.OUTSIDE]], area=area)
    share = np.array([[0.0, 0.5, 0.6], [np.nan, 0.0, np.nan]])
    return a, b, share, (F, R, A, P, W)


def test_hand_built_pair_has_known_answers():
    a, b, share, (F, R, A, P, W) = hand_built_pair()
    ch = compare(a, b, ChangeThresholds(0.6, 0.1, "group", 0.2), share, SHARE_IS_P)
    assert ch.kind.tolist() == [[ChangeKind.UNCHANGED, ChangeKind.LAND_COVER, ChangeKind.NATURAL],
                                [ChangeKind.UNCERTAIN, ChangeKind.UNCHANGED, ChangeKind.OUTSIDE]]
    assert ch.state.tolist() == [[UNCHANGED, CHANGED, UNCHANGED], [UNCERTAIN, UNCHANGED, ChangeState.OUTSIDE]]
    # the weak flip without evidence keeps the class the two dates support jointly
    assert (ch.label_a[1, 1], ch.label_b[1, 1]) == (W, W)
    assert ch.transition_cells[F, F] == 1 and ch.transition_cells[F, R] == 1
    assert ch.transition_cells[A, P] == 1 and ch.transition_cells[W, W] == 1 and ch.transition_cells[W, R] == 0
    assert ch.transition_cells.sum() == 4
    assert ch.transition_ha[A, P] == pytest.approx(20.48)
    assert ch.compared_ha == pytest.approx(3 * FULL + 20.48)
    assert ch.left_out_ha == pytest.approx(FULL)
    assert ch.within_group_ha == pytest.approx(20.48)
    assert ch.independent_flip_ha == pytest.approx(FULL)  # W -> R by the argmaxes alone, kept as W
    assert ch.kind_areas_ha()["natural dynamics"] == pytest.approx(20.48)  # crop season: shown, not counted
    assert ch.transition_kind(A, P) == "crop rotation / season"
    assert ch.transition_kind(F, R) == "land-cover change" and ch.transition_kind(F, F) == "no change"
    # groups: built-up, agriculture and grassland, forest, water
    g = ch.group_transition_ha
    assert g[2, 0] == pytest.approx(FULL) and g[1, 1] == pytest.approx(20.48) and g[3, 3] == pytest.approx(FULL)
    assert g.sum() - np.trace(g) == pytest.approx(ch.state_areas_ha()["changed"])
    names, gains, losses = ch.gains_losses("group")
    assert names[0] == "Built-up" and gains[0] == pytest.approx(FULL) and losses[2] == pytest.approx(FULL)
    assert gains.sum() == pytest.approx(losses.sum())
    cnames, cgains, closses = ch.gains_losses("class")
    assert cgains[P] == pytest.approx(20.48) and closses[A] == pytest.approx(20.48)
    # class areas of each date come from the pairs of the counted cells
    assert ch.area_a_ha[F] == pytest.approx(2 * FULL) and ch.area_b_ha[R] == pytest.approx(FULL)
    # the change score ranks the supported flip above the unchanged forest; NaN where cloudy
    assert ch.score[0, 1] > ch.score[0, 0] and np.isnan(ch.score[1, 0])
    assert ((ch.score[np.isfinite(ch.score)] >= 0) & (ch.score[np.isfinite(ch.score)] <= 1)).all()
    assert ch.p_change[0, 1] > 0.6 > 0.01 > ch.p_change[0, 0]
    assert ch.built_up_change[0, 1] > 0.6
    assert ch.state_counts() == {"unchanged": 3, "changed": 1, "uncertain": 1, "outside": 1}


def test_rule_settings_change_the_decision():
    a, b, share, (F, R, A, P, W) = hand_built_pair()
    # class level: the crop-season flip with evidence is a class change
    cls = compare(a, b, ChangeThresholds(0.6, 0.1, "class", 0.2), share, SHARE_IS_P)
    assert cls.state[0, 2] == CHANGED and cls.within_group_ha == 0
    assert cls.transition_kind(A, P) == "land-cover change"
    # weaker evidence: the forest -> residential flip (5% of pixels) stays forest on both dates
    weak = share.copy()
    weak[0, 1] = 0.05
    kept = compare(a, b, ChangeThresholds(0.6, 0.1, "group", 0.2), weak, SHARE_IS_P)
    assert kept.state[0, 1] != CHANGED and kept.label_a[0, 1] == kept.label_b[0, 1]
    # without spectral evidence the transition prior is uninformative: confident flips go through
    assert compare(a, b, ChangeThresholds(0.6, 0.1), None, SHARE_IS_P).state[0, 1] == CHANGED
    # a high confidence threshold: the pair the dates disagree on is uncertain, the agreed one is not;
    # the forest -> residential cell still counts as built-up change (strong evidence, built-up on B)
    strict = compare(a, b, ChangeThresholds(0.99, 0.1, "group", 0.2), share, SHARE_IS_P)
    assert strict.kind[1, 1] == ChangeKind.UNCERTAIN and strict.kind[0, 0] == ChangeKind.UNCHANGED
    assert strict.kind[0, 1] == ChangeKind.BUILT_UP
    with pytest.raises(ValueError, match="level"):
        ChangeThresholds(level="pixel")


def test_no_evidence_no_flip_whatever_the_argmaxes():
    rng = np.random.default_rng(1)
    pa = rng.dirichlet(np.full(10, 0.3), size=(2, 3)).astype(np.float32)
    pb = rng.dirichlet(np.full(10, 0.3), size=(2, 3)).astype(np.float32)
    a, b = make_map(np.zeros((2, 3), int)), make_map(np.zeros((2, 3), int))
    a.probs[:], b.probs[:] = pa, pb
    assert (pa.argmax(-1) != pb.argmax(-1)).any()  # the classifiers alone disagree somewhere
    none = compare(a, b, ChangeThresholds(0.0, 0.1, "class"), np.zeros((2, 3)), SHARE_IS_P)
    assert (none.label_a == none.label_b).all() and (none.kind != ChangeKind.LAND_COVER).all()
    # the class kept is the one the two dates support jointly: argmax of pA(k) pB(k)
    np.testing.assert_array_equal(none.label_a, (pa * pb).argmax(-1))
    # strong evidence: each date's own answer goes through
    strong = compare(a, b, ChangeThresholds(0.0, 0.1, "class"), np.full((2, 3), 0.95), SHARE_IS_P)
    flips = pa.argmax(-1) != pb.argmax(-1)
    np.testing.assert_array_equal(strong.label_a[flips], pa.argmax(-1)[flips])
    np.testing.assert_array_equal(strong.label_b[flips], pb.argmax(-1)[flips])


def test_transition_table_is_the_per_cell_pairs():
    rng = np.random.default_rng(2)
    a, b = make_map(np.zeros((2, 3), int)), make_map(np.zeros((2, 3), int))
    a.probs[:] = rng.dirichlet(np.full(10, 0.2), size=(2, 3))
    b.probs[:] = rng.dirichlet(np.full(10, 0.2), size=(2, 3))
    ch = compare(a, b, ChangeThresholds(0.3, 0.1), rng.uniform(0, 1, (2, 3)), SHARE_IS_P)
    counted = (ch.state == CHANGED) | (ch.state == UNCHANGED)
    expected = np.zeros((10, 10), int)
    for r, c in zip(*np.nonzero(counted)):
        expected[ch.label_a[r, c], ch.label_b[r, c]] += 1
    np.testing.assert_array_equal(ch.transition_cells, expected)
    np.testing.assert_allclose(ch.transition_ha.sum(), a.area_ha[counted].sum())


def test_kinds_on_a_synthetic_pair():
    """Built-up texture in B over a town (no group flip): counted built-up change; a crop-season flip
    with strong evidence: natural dynamics, not counted."""
    R, I, A, H = (CLASS_NAMES.index(n) for n in ("Residential", "Industrial", "AnnualCrop", "HerbaceousVegetation"))
    a = make_map([[R, A, R]])
    b = make_map([[I, H, R]])
    share = np.array([[0.45, 0.8, 0.01]])
    ch = compare(a, b, ChangeThresholds(0.6, 0.1, "group", 0.2), share, SHARE_IS_P)
    assert ch.kind.tolist() == [[ChangeKind.BUILT_UP, ChangeKind.NATURAL, ChangeKind.UNCHANGED]]
    assert ch.counted.tolist() == [[True, False, False]]
    assert ch.state.tolist() == [[CHANGED, UNCHANGED, UNCHANGED]]


def test_kinds_with_the_deep_change_evidence_on_real_imagery():
    """Norcia in July against itself with two edits in date B: a 320 m x 320 m piece of the town pasted
    into a field is counted built-up change (the field's cells were never built-up), and nothing away
    from it; the field, reddened instead as by a season (no texture, no built-up), is natural
    dynamics, not counted."""
    from dataclasses import replace

    from lulc_core.classify import classify_cells
    from lulc_core.conditional import conditional_change
    from lulc_core.deep_change import deep_change
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import BUILT_TOLERANCE_PX
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow
    from lulc_core.spectral import spectral_change

    provider, dense, clf = DemoProvider(), DenseClassifier(), Classifier()
    aoi = provider.area_aoi("norcia")
    scene = provider.fetch(aoi, DateWindow.parse("2015-07-01/2015-07-31"))
    ca = classify_cells(scene, aoi, dense)
    px = ca.grid.cell_px
    farmed = [CLASS_NAMES.index(c) for c in ("AnnualCrop", "PermanentCrop", "Pasture", "HerbaceousVegetation")]
    assert (ca.probs[4:6, 0:4][..., farmed].sum(-1) > 0.9).all()  # fields on date A
    assert (ca.probs[0:2, 8:10, CLASS_NAMES.index("Residential")] > 0.5).all()  # the town the piece comes from

    def kinds(edit) -> tuple[np.ndarray, object]:
        b = scene.data.copy()
        edit(b)
        other = replace(scene, data=b)
        sp = spectral_change(scene, other)
        deep = deep_change(clf, scene.data, other.data, scene.bands, sp.valid, ca.status.shape, px)
        ch = compare(ca, classify_cells(other, aoi, dense), ChangeThresholds(), sp.share(px),
                     built_share=spectral_change(scene, other, tolerance_px=BUILT_TOLERANCE_PX).share(px),
                     deep=deep.features, conditional_share=conditional_change(scene, other).share(px))
        return ch.kind, ch

    def paste(b):
        b[:, 4 * px: 6 * px, 0: 2 * px] = scene.data[:, 0: 2 * px, 8 * px: 10 * px]

    def redden(b):
        red = list(scene.bands).index("B04")
        b[red, 4 * px: 5 * px, 0: 4 * px] = (b[red, 4 * px: 5 * px, 0: 4 * px] * 1.4).astype(b.dtype)

    kind, ch = kinds(paste)
    assert (kind[4:6, 0:2] == ChangeKind.BUILT_UP).all()
    from lulc_core.export import cell_features

    cell = next(f["properties"] for f in cell_features(ch)["features"] if (f["properties"]["row"], f["properties"]["col"]) == (4, 0))
    assert cell["change"] == "changed" and cell["change_kind"] == "built-up change"
    assert cell["p_counted"] >= ch.counted_model.threshold and cell["change_score"] == cell["p_counted"]
    assert cell["conditional_share"] > 0.5  # the town's pixels are unlike anything the field's stratum did
    # nothing counted beyond the cells around the piece (the early layers see 23 px around a location)
    assert ch.counted[7:].sum() + ch.counted[:3].sum() + ch.counted[:, 3:].sum() == 0
    kind, ch = kinds(redden)
    assert (kind[4, 0:4] == ChangeKind.NATURAL).all() and not ch.counted[4, 0:4].any()
    assert ch.counted.sum() == 0


def test_group_confidence_sums_the_classes_of_a_group():
    # 0.35 AnnualCrop + 0.35 Pasture: no class is confident at 0.6, the group is
    A, P = CLASS_NAMES.index("AnnualCrop"), CLASS_NAMES.index("Pasture")
    probs = np.full(10, 0.3 / 8)
    probs[A] = probs[P] = 0.35
    a = make_map([[A, A, A], [A, A, A]])
    a.probs[0, 0] = probs
    b = make_map([[A, A, A], [A, A, A]])
    b.probs[0, 0] = probs  # both dates unsure between the two (a sure date B would settle date A jointly)
    assert compare(a, b, ChangeThresholds(0.6, 0.0, "group")).state[0, 0] == UNCHANGED
    assert compare(a, b, ChangeThresholds(0.6, 0.0, "class")).state[0, 0] == UNCERTAIN


def test_grouping_covers_every_class_once():
    from lulc_core.classes import LAND_COVER_GROUPS, group_of_classes

    members = [c for g in LAND_COVER_GROUPS for c in g.classes]
    assert sorted(members) == sorted(CLASS_NAMES)
    assert group_of_classes()[CLASS_NAMES.index("HerbaceousVegetation")] == 1
    with pytest.raises(ValueError, match="without a group"):
        group_of_classes(("Glacier",))


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
    a, b, share, (F, R, A, P, W) = hand_built_pair()
    ch = compare(a, b, ChangeThresholds(0.6, 0.1, "group", 0.2), share, SHARE_IS_P)
    path = write_classmap_geotiff(tmp_path / "a.tif", a)
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32633
        assert ds.bounds == pytest.approx(GRID.bounds)
        assert ds.res == (640.0, 640.0) and ds.count == 11
        assert ds.descriptions[0] == "class" and ds.descriptions[1] == "p_AnnualCrop"
        assert ds.nodata == 65535
        assert ds.read(1).tolist() == [[F, F, A], [A, W, 65535]]
        probs = ds.read(list(range(2, 12))).astype(float) * ds.scales[1]
        np.testing.assert_allclose(probs[:, 0, 0], a.probs[0, 0], atol=1e-4)
        assert ds.colormap(1)[1][:3] == (31, 107, 42)
    fc = cell_features(ch)
    assert len(fc["features"]) == 5  # the cell outside the AOI is left out
    f = fc["features"][1]["properties"]
    assert (f["class_a"], f["class_b"], f["change"]) == ("Forest", "Residential", "changed")
    assert (f["group_a"], f["group_b"], f["transition"]) == ("Forest", "Built-up", "land-cover change")
    assert f["spectral_share"] == pytest.approx(0.5) and 0 <= f["change_score"] <= 1
    assert f["change_kind"] == "land-cover change" and f["p_change"] > 0.6
    assert fc["features"][2]["properties"]["transition"] == "crop rotation / season"
    assert (fc["features"][2]["properties"]["change"], fc["features"][2]["properties"]["change_kind"]) == \
        ("unchanged", "natural dynamics")
    assert len(f["prob_a"]) == 10 and f["area_ha"] == pytest.approx(FULL)
    assert fc["features"][3]["properties"]["class_b"] is None
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 12 < lon < 14 and 42 < lat < 43.5
    t, areas, groups = write_csvs(tmp_path, ch)
    rows = list(csv.DictReader(open(t)))
    assert len(rows) == 101 and float(rows[-1]["hectares"]) == pytest.approx(FULL)  # left-out row
    fr = next(r for r in rows if r["from_class_a"] == "Forest" and r["to_class_b"] == "Residential")
    assert fr["cells"] == "1" and float(fr["hectares"]) == pytest.approx(FULL) and fr["kind"] == "land-cover change"
    g = {r["group"]: r for r in csv.DictReader(open(groups))}
    assert float(g["Built-up"]["gains_ha"]) == pytest.approx(FULL) and float(g["Forest"]["net_change_ha"]) < 0
    json.dumps(fc)


def test_true_colour_is_shown_only_on_analysed_patches():
    from lulc_core.render import only_cells

    img = np.full((2 * 64, 3 * 64, 3), 100, dtype=np.uint8)
    inside = np.array([[True, False, True], [True, True, False]])
    rgba = only_cells(img, inside, 64)
    assert rgba.shape == (128, 192, 4)
    assert (rgba[:64, 64:128, 3] == 0).all() and (rgba[64:, 128:, 3] == 0).all()
    assert (rgba[:64, :64, 3] == 255).all() and (rgba[64:, 64:128, 3] == 255).all()
    assert (rgba[..., :3] == 100).all()


def test_real_demo_pair_is_consistent():
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import run_analysis
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    provider, dense = DemoProvider(), DenseClassifier()
    aoi = provider.area_aoi("norcia")
    wa, wb = DateWindow.parse("2015-07-01/2015-07-31"), DateWindow.parse("2017-10-01/2017-10-31")
    an = run_analysis(aoi, wa, wb, provider, dense)
    ch = an.change
    assert an.grid.cell_px == 16 and an.grid.n_cells == 16 * aoi.grid.n_cells
    ok = an.a.classes.classified & an.b.classes.classified
    assert ok.sum() == ok.size  # a clear pair: every cell classified
    assert ((ch.score[ok] >= 0) & (ch.score[ok] <= 1)).all()
    counted = (ch.state == CHANGED) | (ch.state == UNCHANGED)
    assert ch.compared_ha == pytest.approx(an.a.classes.area_ha[counted].sum())
    assert ch.compared_ha + ch.left_out_ha == pytest.approx(aoi.area_ha, rel=0.01)
    assert 0 < an.spectral.changed_share < 0.2
    assert an.season_note is not None and "99 days" in an.season_note
    # a date against itself: zero changed hectares, no spectral change at all
    same = run_analysis(aoi, wa, wa, provider, dense)
    kinds = same.change.kind_areas_ha()
    assert same.change.state_areas_ha()["changed"] == 0 and kinds["natural dynamics"] == 0
    assert not same.spectral.changed.any() and same.season_note is None
    assert np.trace(same.change.transition_ha) == pytest.approx(same.change.compared_ha)
    assert (same.change.label_a == same.change.label_b).all()


def test_pipeline_without_refinement_is_the_dense_pass_and_refinement_changes_only_refined_cells():
    from lulc_core.grid import GEOMETRY
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import run_analysis
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow

    provider, dense, clf = DemoProvider(), DenseClassifier(), Classifier()
    aoi = provider.area_aoi("norcia")
    wa, wb = DateWindow.parse("2015-07-01/2015-07-31"), DateWindow.parse("2017-10-01/2017-10-31")
    plain = run_analysis(aoi, wa, wb, provider, dense)
    off = run_analysis(aoi, wa, wb, provider, dense, classifier=clf, refine_below=0.0)
    refined = run_analysis(aoi, wa, wb, provider, dense, classifier=clf)
    for d_plain, d_off, d_ref in ((plain.a, off.a, refined.a), (plain.b, off.b, refined.b)):
        # without refinement: exactly the dense pass's most centred windows, as before the cascade
        dp = dense.predict_scene(d_plain.scene.data, d_plain.scene.bands, d_plain.scene.valid)
        ok = d_plain.classes.classified
        expected = GEOMETRY.cells_from_windows(dp.probs, *ok.shape)
        np.testing.assert_allclose(d_plain.classes.probs[ok], expected[ok], atol=1e-6)
        np.testing.assert_array_equal(d_off.classes.probs, d_plain.classes.probs)
        assert d_plain.classes.refined is None and d_off.classes.refined is None
        mask = d_ref.classes.refined
        assert mask.any() and not mask.all()
        np.testing.assert_array_equal(d_ref.classes.probs[ok & ~mask], d_plain.classes.probs[ok & ~mask])
    # the classifier also gives the deep change evidence: the same decision over the dense pass's maps
    assert off.change.deep is not None and plain.change.deep is None
    same = compare(plain.a.classes, plain.b.classes, plain.change.thresholds, plain.change.spectral_share,
                   built_share=plain.change.built_share, deep=off.change.deep,
                   conditional_share=plain.change.conditional_share)
    assert same.p_counted is not None
    np.testing.assert_array_equal(off.change.state, same.state)


def test_a_scene_against_itself_or_a_1px_shifted_copy_counts_near_zero_change():
    from dataclasses import replace

    from lulc_core.classify import classify_cells
    from lulc_core.conditional import conditional_change
    from lulc_core.deep_change import deep_change
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import BUILT_TOLERANCE_PX
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow
    from lulc_core.spectral import spectral_change

    provider, dense, clf = DemoProvider(), DenseClassifier(), Classifier()
    aoi = provider.area_aoi("norcia")
    scene = provider.fetch(aoi, DateWindow.parse("2015-07-01/2015-07-31"))

    def shifted(axis: int):
        """The scene moved by 1 px along ``axis`` (0 rows, 1 columns); the line rolled round from the far
        edge is another place, so it is nodata (a real misregistered date has no such seam)."""
        valid = np.roll(scene.valid, 1, axis=axis)
        valid[(slice(None),) * axis + (0,)] = False
        return replace(scene, data=np.roll(scene.data, 1, axis=axis + 1), valid=valid,
                       cloud=np.roll(scene.cloud, 1, axis=axis))

    ca = classify_cells(scene, aoi, dense)
    px = ca.grid.cell_px
    for other, most in ((scene, 0.0), (shifted(0), 0.01), (shifted(1), 0.01)):
        cb = classify_cells(other, aoi, dense)
        sp = spectral_change(scene, other)
        deep = deep_change(clf, scene.data, other.data, scene.bands, sp.valid, ca.status.shape, px)
        assert deep.thresholds is not None
        conditional = conditional_change(scene, other)
        for evidence in (None, deep.features):  # the built-up share rule, then the deep change evidence
            ch = compare(ca, cb, ChangeThresholds(), sp.share(px),
                         built_share=spectral_change(scene, other, tolerance_px=BUILT_TOLERANCE_PX).share(px),
                         deep=evidence, conditional_share=conditional.share(px))
            assert (ch.p_counted is None) == (evidence is None)
            kinds = ch.kind_areas_ha()
            assert kinds["land-cover change"] + kinds["built-up change"] <= most * aoi.area_ha
