import glob
import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.classes import CLASS_NAMES
from lulc_core.errors import InputError
from lulc_core.model import Classifier, load_classifier
from lulc_core.model.eurosat_data import load_image_set
from lulc_core.model.weights import SHIPPED_RGB, load_weights, weights_sha256
from tests.conftest import FIXTURES, ROOT

SAMPLE = FIXTURES / "eurosat_test_sample"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return load_classifier()


def test_shipped_weights_and_metadata():
    assert SHIPPED_RGB.stat().st_size <= 50e6
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


def _random_bn_resnet():
    import torch

    from lulc_core.model.architectures import build_resnet

    torch.manual_seed(0)
    model = build_resnet("resnet18", "s2", 10, 3)
    with torch.no_grad():  # batch norm statistics far from identity, so an unfolded BN would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def test_folded_network_equals_unfolded():
    import torch

    from lulc_core.model.inference import fold_batchnorm

    model = _random_bn_resnet()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        ref = model(x)
        torch.testing.assert_close(folded(x.contiguous(memory_format=torch.channels_last)), ref,
                                   rtol=1e-4, atol=1e-4)


def test_shipped_classifier_folded_fp32_and_bf16_match_the_plain_network():
    """The shipped weights: folded fp32 logits equal the unfolded network's; bf16 logits stay close
    and give the same classes on the fixture sample."""
    from lulc_core.model.inference import predict_logits

    x = load_image_set(SAMPLE).images.transpose(0, 3, 1, 2)[::2]
    fp32 = Classifier(tta=False, bf16=False)
    ref = predict_logits(fp32.model, x, fp32.meta.norm_mean, fp32.meta.norm_std)
    np.testing.assert_allclose(fp32.logits(x), ref, rtol=1e-3, atol=1e-3)
    bf16 = Classifier(tta=False, bf16=True).logits(x)
    assert np.abs(bf16 - ref).max() < 1.0
    assert (bf16.argmax(1) == ref.argmax(1)).mean() >= 0.98


def test_tta_cascade_runs_tta_only_under_the_threshold():
    from lulc_core.model.calibration import softmax
    from lulc_core.model.inference import ALL_VIEWS, predict_logits

    x = load_image_set(SAMPLE).images.transpose(0, 3, 1, 2)[::4]
    plain = Classifier(tta=False).predict_recipe(x)
    np.testing.assert_allclose(Classifier(tta=True, tta_threshold=0.0).predict_recipe(x), plain)
    full_clf = Classifier(tta=True, tta_threshold=float("inf"))
    full = full_clf.predict_recipe(x)
    assert full_clf.last_tta_share == 1.0
    m = full_clf.meta
    expected = softmax(predict_logits(full_clf.net, x, m.norm_mean, m.norm_std, views=ALL_VIEWS), m.temperature_tta)
    np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-5)
    thr = float(np.median(plain.max(1)))
    mid_clf = Classifier(tta=True, tta_threshold=thr)
    mid = mid_clf.predict_recipe(x)
    low = plain.max(1) < thr
    assert 0 < low.sum() < len(x) and mid_clf.last_tta_share == pytest.approx(low.mean())
    np.testing.assert_allclose(mid[~low], plain[~low])
    np.testing.assert_allclose(mid[low], full[low], rtol=1e-5, atol=1e-5)
    # one call in another mode (the dense refine cascade runs a shared TTA classifier plain)
    np.testing.assert_allclose(full_clf.predict_recipe(x, tta=False), plain)
    assert full_clf.tta and full_clf.last_tta_share == 0.0
    np.testing.assert_allclose(Classifier(tta=False).predict_recipe(x, tta=True), Classifier(tta=True).predict_recipe(x),
                               rtol=1e-5, atol=1e-5)


def test_shipped_cascade_threshold_belongs_to_the_shipped_weights(tmp_path):
    import shutil

    from lulc_core.model.cascades import TTA_CASCADE_FILE, tta_cascade_threshold

    info = json.loads(TTA_CASCADE_FILE.read_text())
    thr = tta_cascade_threshold(weights_sha256(SHIPPED_RGB))
    assert thr == info["threshold"] and 0.5 <= thr < 1
    assert Classifier(tta=True).tta_threshold == thr
    assert info["validation"]["cascade"] >= info["validation"]["full_tta"]  # the rule it was chosen by
    other = tmp_path / "other.pt"
    shutil.copy(SHIPPED_RGB, other)
    with open(other, "ab") as f:
        f.write(b"\0")
    assert tta_cascade_threshold(weights_sha256(other)) is None  # other weights: no threshold, full TTA
    assert Classifier(other, tta=True).tta_threshold == float("inf")


def test_recipe_comes_from_the_weights_metadata():
    from dataclasses import replace

    from lulc_core.bands import eurosat_rgb_recipe
    from lulc_core.model import train
    from lulc_core.model.inference import predict_logits
    from lulc_core.errors import WeightsError
    from lulc_core.model.recipes import EUROSAT_RGB, recipe_for

    _, meta = load_weights()
    assert recipe_for(meta) is EUROSAT_RGB and train.RECIPE == meta.recipe
    assert train.predict_logits is predict_logits  # one implementation for training and inference
    dn = np.random.default_rng(0).integers(0, 4000, (3, 8, 8))
    np.testing.assert_array_equal(EUROSAT_RGB.apply(dn), eurosat_rgb_recipe(dn))
    with pytest.raises(WeightsError, match="unknown input recipe"):
        recipe_for(replace(meta, recipe="EuroSAT RGB, scaled differently"))
    with pytest.raises(WeightsError, match="declare bands B02, B03, B04"):
        recipe_for(replace(meta, bands=["B02", "B03", "B04"]))


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnets_are_torchvisions_module_for_module(arch):
    """The app builds its ResNets without importing torchvision: same state-dict keys and shapes,
    same outputs for the same weights."""
    import torch
    import torchvision

    from lulc_core.model.architectures import build_resnet

    ours = build_resnet(arch, "imagenet", 10).eval()
    tv = getattr(torchvision.models, arch)(weights=None)
    tv.fc = torch.nn.Linear(tv.fc.in_features, 10)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in tv.state_dict().items()]
    tv.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), tv.eval()(x))


def test_the_app_path_does_not_import_torchvision():
    code = ("import sys; from lulc_core.model.dense import DenseClassifier; from lulc_core.model import Classifier; "
            "DenseClassifier(); Classifier(); print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_figures_shown_are_those_of_the_mode_the_app_runs():
    from lulc_core.model.classifier import Classifier, model_figures

    clf = Classifier()
    assert clf.tta  # the shipped weights run the TTA cascade
    shown = clf.test_figures()
    assert shown["mode"].startswith("TTA cascade") and shown["n_images"] == 2430
    plain = model_figures(clf.meta, clf.weights, tta=False)
    full = Classifier(tta_threshold=float("inf")).test_figures()
    assert full["mode"].startswith("full TTA")
    assert plain["accuracy"] <= shown["accuracy"] <= full["accuracy"]  # the cascade sits between the two
    assert shown["accuracy"] != full["accuracy"]


def test_the_figures_of_each_mode_carry_the_replaced_weights_figure_of_the_same_mode():
    """The Model page shows the previous weights' accuracy beside the new one, mode for mode."""
    from lulc_core.model.classifier import model_figures

    clf = Classifier()
    prev = clf.meta.training["previous_model"]["test_accuracy"]  # recorded by train_gpu.py import --previous
    m = clf.test_figures()
    assert m["kind"] == "cascade" and m["previous_accuracy"] == prev["cascade"]
    assert m["accuracy"] > m["previous_accuracy"]
    assert model_figures(clf.meta, tta=False)["previous_accuracy"] == prev["plain"]
    assert model_figures(clf.meta, tta=True, threshold=float("inf"))["previous_accuracy"] == prev["tta"]
