import glob
import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.classes import CLASS_NAMES
from lulc_core.model import Classifier, InputError, load_classifier
from lulc_core.model.eurosat_data import load_image_set
from lulc_core.model.weights import DEFAULT_WEIGHTS, load_weights
from tests.conftest import FIXTURES, ROOT

SAMPLE = FIXTURES / "eurosat_test_sample"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return load_classifier()


def test_shipped_weights_and_metadata():
    assert DEFAULT_WEIGHTS.stat().st_size <= 50e6
    model, meta = load_weights()
    assert meta.class_names == list(CLASS_NAMES)
    assert meta.bands == ["B04", "B03", "B02"]
    assert "2750" in meta.recipe
    assert meta.temperature > 0 and meta.temperature_tta > 0
    assert len(meta.training_data_sha256) == 64
    assert meta.test_metrics["tta"]["n_images"] == 2430
    assert not model.training


def test_shipped_model_scores_on_unseen_test_sample(clf):
    data = load_image_set(SAMPLE)
    assert len(data) == 200
    probs = clf.predict_recipe(data.images.transpose(0, 3, 1, 2))
    acc = (probs.argmax(1) == data.labels).mean()
    assert acc >= 0.97, acc
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def _ms_patches():
    tifs = sorted(glob.glob(str(FIXTURES / "eurosat_recipe_pairs" / "*" / "*.tif")))
    dn = np.stack([rasterio.open(t).read() for t in tifs])
    labels = np.array([CLASS_NAMES.index(t.split("/")[-2]) for t in tifs])
    return dn, labels


def test_dn_patches_by_band_name_in_any_order(clf):
    dn, labels = _ms_patches()
    p = clf.predict_proba(dn, EUROSAT_BAND_ORDER)
    assert p.shape == (20, 10)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert (p.argmax(1) == labels).mean() >= 0.8
    order = np.random.default_rng(1).permutation(13)
    p2 = clf.predict_proba(dn[:, order], [EUROSAT_BAND_ORDER[i] for i in order])
    np.testing.assert_allclose(p, p2, atol=1e-6)
    # float DN input gives the same answer as uint16
    np.testing.assert_allclose(clf.predict_proba(dn.astype(np.float32), EUROSAT_BAND_ORDER), p, atol=1e-6)


def test_input_errors_are_clear(clf):
    dn, _ = _ms_patches()
    with pytest.raises(InputError, match="missing band.*B04"):
        clf.predict_proba(dn[:, :3], ["B01", "B02", "B03"])
    with pytest.raises(InputError, match=r"shape \(N, bands, 64, 64\)"):
        clf.predict_proba(dn[:, :, :32, :32], EUROSAT_BAND_ORDER)
    with pytest.raises(InputError, match="13 channels but 12 band names"):
        clf.predict_proba(dn, EUROSAT_BAND_ORDER[:12])
    bad = dn.astype(np.float32)
    bad[0, 3, 5, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        clf.predict_proba(bad, EUROSAT_BAND_ORDER)


def test_tta_and_plain_agree_mostly(clf):
    data = load_image_set(SAMPLE)
    x = data.images.transpose(0, 3, 1, 2)[::4]
    plain = Classifier(tta=False).predict_recipe(x)
    tta = Classifier(tta=True).predict_recipe(x)
    assert (plain.argmax(1) == tta.argmax(1)).mean() >= 0.9


def test_evaluate_cli_json_has_every_field(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lulc_core", "evaluate", "--data", str(SAMPLE)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("accuracy", "ece", "n_images", "per_class", "confusion_matrix", "most_confused", "seconds"):
        assert key in report
    assert report["n_images"] == 200
    assert set(report["per_class"]) == set(CLASS_NAMES)
    assert set(report["per_class"]["Forest"]) == {"precision", "recall", "f1", "support"}
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 200 and (cm.sum(1) == 20).all()
    assert report["accuracy"] == pytest.approx(np.trace(cm) / 200)
    assert "classified" in out.stderr


def test_evaluate_rejects_bad_layout(tmp_path):
    (tmp_path / "NotAClass").mkdir()
    (tmp_path / "NotAClass" / "x_1.jpg").write_bytes(b"")
    out = subprocess.run([sys.executable, "-m", "lulc_core", "evaluate", "--data", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert "not a EuroSAT class" in out.stderr


def test_evaluate_reads_a_zip(tmp_path):
    import zipfile

    from lulc_core.model.evaluate import evaluate

    z = tmp_path / "few.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(SAMPLE.glob("*/*.jpg"))[::10]:
            zf.write(p, f"{p.parent.name}/{p.name}")
    report = evaluate(z, Classifier(tta=False))
    assert report["n_images"] == 20 and 0 <= report["ece"] <= 1
    assert sum(v["support"] for v in report["per_class"].values()) == 20
