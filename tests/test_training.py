"""Training mechanics on a tiny real sample (not the real training run)."""

import json

import numpy as np
import torch

from lulc_core.model.calibration import expected_calibration_error, fit_temperature, softmax
from lulc_core.model.train import TrainConfig, train
from lulc_core.model.weights import load_weights
from tests.conftest import FIXTURES



def test_train_checkpoint_resume_and_export(tmp_path):
    cfg = TrainConfig(data=FIXTURES / "eurosat_test_sample", out=tmp_path / "w.pt",
                      run_dir=tmp_path / "run", arch="resnet18", stem="imagenet", epochs=2,
                      batch_size=32, threads=1, stop_after=1)
    assert train(cfg) is None  # interrupted after epoch 1: checkpoint, no weights
    assert (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "w.pt").exists()
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["history"]
    assert [h["epoch"] for h in first] == [1]
    cfg.resume, cfg.stop_after = True, 0
    meta = train(cfg)  # continues with epoch 2 only
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) == 160 and len(split["test"]) == 20
    assert not set(split["train"]) & set(split["test"])
    model, loaded = load_weights(tmp_path / "w.pt")
    assert [h["epoch"] for h in loaded.training["history"]] == [1, 2]
    assert loaded.training["history"][0] == first[0]
    assert loaded == meta
    assert set(loaded.test_metrics) == {"plain", "tta", "report"}
    assert loaded.test_metrics["report"]["n_images"] == 20
    va = loaded.training["validation_accuracy"]  # TTA chosen on validation, not test
    assert loaded.tta_default == (va["tta"] >= va["plain"])


def test_temperature_scaling_reduces_ece():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 4000)
    logits = rng.normal(size=(4000, 10))
    logits[np.arange(4000), labels] += 2.0
    logits *= 4  # over-confident
    t = fit_temperature(logits, labels)
    assert t > 1.5
    assert expected_calibration_error(softmax(logits, t), labels) < expected_calibration_error(softmax(logits), labels) / 2


def test_second_cycle_starts_from_given_weights(tmp_path):
    base = dict(data=FIXTURES / "eurosat_test_sample", arch="resnet18", stem="imagenet", batch_size=16, threads=1)
    first = train(TrainConfig(out=tmp_path / "w1.pt", run_dir=tmp_path / "r1", epochs=1, **base))
    second = train(TrainConfig(out=tmp_path / "w2.pt", run_dir=tmp_path / "r2", epochs=1, lr=0.01,
                               init_from=tmp_path / "w1.pt", **base))
    assert second.training["previous_cycle"]["history"] == first.training["history"]
    assert second.training["minutes"] >= first.training["minutes"]
    third = train(TrainConfig(out=tmp_path / "w4.pt", run_dir=tmp_path / "r4", epochs=1, lr=0.005,
                              init_from=tmp_path / "w2.pt", **base))
    chain = third.training["previous_cycle"]  # the whole chain of earlier cycles is kept
    assert chain["history"] == second.training["history"]
    assert chain["previous_cycle"]["history"] == first.training["history"]
    assert [c["history"] for c in third.training_cycles] == [m.training["history"] for m in (first, second, third)]
    import pytest as _pytest
    with _pytest.raises(ValueError, match="resnet18/imagenet, not resnet18/s2"):
        train(TrainConfig(out=tmp_path / "w3.pt", run_dir=tmp_path / "r3", epochs=1,
                          init_from=tmp_path / "w1.pt", **{**base, "stem": "s2"}))
