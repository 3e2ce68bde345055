"""The dense (fully convolutional) path: geometry, tiling, cells and agreement with the
per-window classifier on real scenes."""

import numpy as np
import pytest
import torch

from lulc_core.bands import eurosat_rgb_recipe
from lulc_core.classify import classify_cells
from lulc_core.grid import GEOMETRY
from lulc_core.model.classifier import Classifier
from lulc_core.model.dense import DenseClassifier, dense_logits, head_from_fc, windows_at
from lulc_core.model.weights import SHIPPED_DENSE, SHIPPED_RGB, weights_sha256
from lulc_core.cells import CellStatus
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow


@pytest.fixture(scope="module")
def dense():
    return DenseClassifier(SHIPPED_DENSE)


@pytest.fixture(scope="module")
def montpellier():
    p = DemoProvider()
    aoi = p.area_aoi("montpellier")  # a demo area: never seen by the distillation
    return aoi, [p.fetch(aoi, DateWindow.parse(w)) for w in ("2015-08-01/2015-08-31", "2017-10-01/2017-10-31")]


def test_one_window_is_the_per_window_forward_pass(dense):
    """Geometry: on a lone 64 px window the dense path is the per-window forward pass, and the
    uniform 4x4 head is exactly global average pooling + the linear layer."""
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        z = dense_logits(dense.model, x)
        assert z.shape == (2, 10, 1, 1)
        torch.testing.assert_close(z[:, :, 0, 0], dense.model(x), rtol=1e-4, atol=1e-4)
        big = torch.rand(1, 3, 128, 192)
        torch.testing.assert_close(dense_logits(dense.model, big, head_from_fc(dense.model.fc)),
                                   dense_logits(dense.model, big), rtol=1e-4, atol=1e-4)
        if dense.head is not None:
            assert dense_logits(dense.model, big, dense.head).shape == (1, 10, 5, 9)
    assert GEOMETRY.window_count(64) == 1 and GEOMETRY.window_count(320) == 17 and GEOMETRY.window_count(63) == 0


def test_dense_weights_round_trip_with_their_head(dense, tmp_path):
    from lulc_core.errors import WeightsError
    from lulc_core.model.weights import load_dense_weights, save_weights

    head = head_from_fc(dense.model.fc)
    with torch.no_grad():
        head.weight.mul_(1.5)
    save_weights(tmp_path / "d.pt", dense.model, dense.meta, dense_head=head)
    model, meta, loaded = load_dense_weights(tmp_path / "d.pt")
    assert meta.class_names == dense.meta.class_names
    torch.testing.assert_close(loaded.weight, head.weight.half().float())
    with pytest.raises(WeightsError, match="not found"):
        load_dense_weights(tmp_path / "absent.pt")


def test_tiles_do_not_change_the_map(dense, montpellier):
    _, (scene, _) = montpellier
    recipe = eurosat_rgb_recipe(scene.select(("B04", "B03", "B02")), scene.valid)
    whole = dense.logits_recipe(recipe)
    tiled = DenseClassifier(SHIPPED_DENSE, tile_px=128, context_px=64).logits_recipe(recipe)
    assert whole.shape == tiled.shape == (GEOMETRY.window_count(scene.height), GEOMETRY.window_count(scene.width), 10)
    assert (whole.argmax(-1) == tiled.argmax(-1)).mean() > 0.97


def test_dense_agrees_with_the_per_window_classifier_on_real_scenes(dense, montpellier):
    """Top-1 agreement on windows every 32 px of both dates of a held-out demo area, against the
    per-window classifier run as the dense path was distilled from it (one view, calibrated): the
    dense pass alone well above a naive fully convolutional pass (57% on the demo areas), and the
    shipped default (dense pass + refine cascade at the shipped threshold) at 90% or more."""
    from lulc_core.model.cascades import refine_threshold
    from lulc_core.model.dense import refine_windows

    _, scenes = montpellier
    clf = Classifier(tta=False)
    thr = refine_threshold(dense.sha256, clf.sha256)
    assert thr is not None, "no refine threshold ships for the shipped pair of weights"
    agree = agree_refined = total = 0
    for scene in scenes:
        recipe = eurosat_rgb_recipe(scene.select(("B04", "B03", "B02")), scene.valid)
        per_window = clf.predict_recipe(np.ascontiguousarray(windows_at(recipe, 32).reshape(-1, 3, 64, 64)))
        rows, cols = windows_at(recipe, 32).shape[:2]
        dp = dense.predict_scene(scene.data, scene.bands, scene.valid)
        alone = dp.probs[::2, ::2][:rows, :cols].reshape(-1, 10)
        refined = refine_windows(dp, scene.data, scene.bands, clf, thr).probs[::2, ::2][:rows, :cols].reshape(-1, 10)
        agree += int((alone.argmax(-1) == per_window.argmax(-1)).sum())
        agree_refined += int((refined.argmax(-1) == per_window.argmax(-1)).sum())
        total += len(alone)
    assert total > 200
    assert agree / total >= 0.75, f"dense pass alone agrees on only {agree / total:.1%} of windows"
    assert agree_refined / total >= 0.9, f"dense + refine agrees on only {agree_refined / total:.1%} of windows"


def test_cells_take_their_most_centred_windows():
    windows = np.arange(5, dtype=float)[:, None] * 10 + np.arange(5, dtype=float)[None, :]
    cells = GEOMETRY.cells_from_windows(windows[..., None], 8, 8)[..., 0]
    # cell k: mean of windows k-2 and k-1 (clamped at the edges) on each axis
    assert cells[3, 3] == pytest.approx(np.mean([windows[i, j] for i in (1, 2) for j in (1, 2)]))
    assert cells[0, 0] == pytest.approx(windows[0, 0])
    assert cells[7, 7] == pytest.approx(windows[4, 4])


def test_cell_map_of_a_scene_flags_cloud_around_a_cloud(dense, montpellier):
    from dataclasses import replace

    aoi, (scene, _) = montpellier
    cloud = np.zeros_like(scene.cloud)
    cloud[64:128, 64:128] = True
    cm = classify_cells(replace(scene, cloud=cloud), aoi, dense)
    assert cm.grid.cell_px == 16 and cm.probs.shape[:2] == (scene.height // 16, scene.width // 16)
    assert (cm.status[5:7, 5:7] == CellStatus.CLOUDY).all() and cm.status[0, 0] == CellStatus.OK
    assert np.isnan(cm.probs[5, 5]).all()
    ok = cm.status == CellStatus.OK
    np.testing.assert_allclose(cm.probs[ok].sum(-1), 1, atol=1e-4)
    assert cm.area_ha[ok].sum() == pytest.approx(2.56 * ok.sum(), rel=0.02)


def test_folded_dense_network_equals_unfolded(dense):
    from lulc_core.model.inference import fold_batchnorm

    folded = fold_batchnorm(dense.model)
    x = torch.rand(1, 3, 192, 160)
    with torch.inference_mode():
        torch.testing.assert_close(dense_logits(folded, x, dense.head), dense_logits(dense.model, x, dense.head),
                                   rtol=1e-4, atol=1e-4)


def test_tiles_without_data_are_skipped_and_the_rest_unchanged(dense, montpellier):
    _, (scene, _) = montpellier
    small = DenseClassifier(SHIPPED_DENSE, tile_px=64)  # a tile reads 64 + 3 x 16 + 64 px
    full = small.predict_scene(scene.data, scene.bands, scene.valid).probs
    valid = scene.valid.copy()
    valid[:, :176] = False  # the first tile column (and its context) holds no data
    part = small.predict_scene(scene.data, scene.bands, valid).probs
    np.testing.assert_allclose(part[:, :4], 0.1, atol=1e-6)  # skipped: uniform, later masked as nodata
    assert not np.allclose(part[:, 4:8], 0.1, atol=1e-3)  # the next tile has data: computed
    np.testing.assert_allclose(part[:, 16:], full[:, 16:], atol=1e-5)  # beyond its context: unchanged


def test_refinement_replaces_exactly_the_low_confidence_windows_with_their_own_window(dense, montpellier):
    """Refine cascade on a real demo scene: exactly the windows under the threshold change, and each
    takes the per-window classifier's answer for pixels [16 i, 16 i + 64) x [16 j, 16 j + 64), not for a
    window 8 px off (where a cell's centred window would lie)."""
    from lulc_core.model.dense import refine_windows

    _, (scene, _) = montpellier
    clf = Classifier(tta=True)  # a shared classifier in its default mode: refinement still runs it plain
    dp = dense.predict_scene(scene.data, scene.bands, scene.valid)
    thr = 0.8
    rp = refine_windows(dp, scene.data, scene.bands, clf, thr)
    low = dp.probs.max(-1) < thr
    assert 0.05 < low.mean() < 0.95
    np.testing.assert_array_equal(rp.refined, low)
    np.testing.assert_array_equal(rp.probs[~low], dp.probs[~low])
    rng = np.random.default_rng(0)
    inner = low.copy()  # windows whose 8 px shifted neighbour (below) still lies in the scene
    inner[-1, :] = inner[:, -1] = False
    picks = [tuple(p) for p in np.argwhere(inner)[rng.choice(int(inner.sum()), 12, replace=False)]]
    own = np.stack([scene.data[:, 16 * i:16 * i + 64, 16 * j:16 * j + 64] for i, j in picks])
    expected = Classifier(tta=False).predict_proba(own, scene.bands)
    got = np.stack([rp.probs[i, j] for i, j in picks])
    np.testing.assert_allclose(got, expected, atol=2e-3)
    shifted = np.stack([scene.data[:, 16 * i + 8:16 * i + 72, 16 * j + 8:16 * j + 72] for i, j in picks])
    off = Classifier(tta=False).predict_proba(shifted, scene.bands)
    assert np.abs(off - got).max(-1).mean() > 0.02  # the test tells the right window from its neighbour
    restricted = refine_windows(dp, scene.data, scene.bands, clf, thr, candidates=np.zeros_like(low))
    assert not restricted.refined.any() and np.array_equal(restricted.probs, dp.probs)


def test_cell_map_refines_only_cells_behind_low_confidence_windows(dense, montpellier):
    aoi, (scene, _) = montpellier
    clf = Classifier(tta=False)
    plain = classify_cells(scene, aoi, dense)
    assert plain.refined is None and plain.refined_share == 0.0
    off = classify_cells(scene, aoi, dense, classifier=clf, refine_below=0.0)
    np.testing.assert_array_equal(off.probs, plain.probs)
    thr = 0.8
    ref = classify_cells(scene, aoi, dense, classifier=clf, refine_below=thr)
    np.testing.assert_array_equal(ref.status, plain.status)
    ok = ref.status == CellStatus.OK
    dp = dense.predict_scene(scene.data, scene.bands, scene.valid)
    enough_data = windows_at(scene.valid[None].astype(np.uint8), 16).mean(axis=(2, 3, 4)) >= 0.9
    low = (dp.probs.max(-1) < thr) & enough_data
    low_cells = GEOMETRY.cells_from_windows(low[..., None].astype(float), *ref.status.shape)[..., 0] > 0
    np.testing.assert_array_equal(ref.refined, low_cells & ok)
    np.testing.assert_array_equal(ref.probs[ok & ~ref.refined], plain.probs[ok & ~ref.refined])
    assert (np.abs(ref.probs[ref.refined] - plain.probs[ref.refined]).max(-1) > 1e-4).mean() > 0.9
    np.testing.assert_allclose(ref.probs[ok].sum(-1), 1, atol=1e-3)
    assert 0.05 < ref.refined_share < 0.95


def test_refine_threshold_ships_for_the_shipped_weights(dense, tmp_path):
    import json

    from lulc_core.model.cascades import REFINE_FILE, refine_threshold

    dense_sha, rgb_sha = weights_sha256(SHIPPED_DENSE), weights_sha256(SHIPPED_RGB)
    assert dense.sha256 == dense_sha
    entry = json.loads(REFINE_FILE.read_text())
    thr = refine_threshold(dense_sha, rgb_sha)
    assert thr == entry["refine_below"] and 0 < thr < 1
    assert entry["tuning_chosen"]["agreement"] >= 0.955  # the rule it was chosen by
    assert refine_threshold(rgb_sha, dense_sha) is None  # other weights: no threshold
    other = tmp_path / "refine.json"
    other.write_text(json.dumps({**entry, "refine_below": 0.33}))
    assert refine_threshold(dense_sha, rgb_sha, other) == 0.33
    other.write_text(json.dumps({**entry, "dense_weights_sha256": "0" * 64}))
    assert refine_threshold(dense_sha, rgb_sha, other) is None


def test_cell_map_uses_the_shipped_threshold_by_default(dense, montpellier):
    from lulc_core.model.cascades import refine_threshold

    aoi, (_, scene) = montpellier
    clf = Classifier(tta=False)
    default = classify_cells(scene, aoi, dense, classifier=clf)
    explicit = classify_cells(scene, aoi, dense, classifier=clf,
                              refine_below=refine_threshold(weights_sha256(SHIPPED_DENSE), weights_sha256(SHIPPED_RGB)))
    np.testing.assert_array_equal(default.refined, explicit.refined)
    np.testing.assert_array_equal(default.probs, explicit.probs)
    assert default.refined.any()


def test_only_the_wanted_cells_are_classified_and_refined_with_the_same_answer(dense, montpellier):
    """A region tile classifies its core only: the core's cells are what the whole map says, and no
    window behind the other cells alone is re-classified (fewer windows than the whole map's cascade)."""
    aoi, (scene, _) = montpellier
    clf = Classifier(tta=False)
    whole = classify_cells(scene, aoi, dense, classifier=clf, refine_below=0.8)
    h, w = whole.status.shape
    core = (slice(2, h // 2), slice(3, w - 2))
    part = classify_cells(scene, aoi, dense, classifier=clf, refine_below=0.8, only_cells=core)
    np.testing.assert_array_equal(part.status[core], whole.status[core])
    np.testing.assert_array_equal(part.probs[core], whole.probs[core])
    np.testing.assert_array_equal(part.refined[core], whole.refined[core])
    outside = np.ones(whole.status.shape, bool)
    outside[core] = False
    assert (part.status[outside] == CellStatus.OUTSIDE).all() and np.isnan(part.probs[outside]).all()
    assert not part.refined[outside].any() and whole.refined[outside].any()
