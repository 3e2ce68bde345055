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


def test_random_shift_moves_each_image_by_whole_pixels_with_reflected_edges():
    from lulc_core.model.transforms import random_shift

    x = torch.arange(4 * 3 * 8 * 8, dtype=torch.float32).view(4, 3, 8, 8)
    out = random_shift(x, 2, torch.Generator().manual_seed(3))
    oy, ox = torch.randint(0, 5, (2, 4), generator=torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (2,) * 4, mode="reflect")
    for i in range(4):
        assert torch.equal(out[i], padded[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8])
    assert not torch.equal(out, x)  # seed 3 moves at least one image


def test_cutmix_pastes_one_box_and_returns_its_share():
    from lulc_core.model.transforms import cutmix_batch

    x = torch.stack([torch.full((3, 16, 16), float(i)) for i in range(6)])
    y = torch.arange(6)
    mixed, y1, y2, lam = cutmix_batch(x, y, torch.Generator().manual_seed(0))
    for i in range(6):  # every image is itself outside the box and its partner inside it
        own = (mixed[i] == i).float().mean().item()
        assert abs(own - lam) < 1e-6 or y2[i] == i
        assert set(mixed[i].unique().tolist()) <= {float(i), float(y2[i])}
    assert torch.equal(y1, y)


def test_gpu_training_splits_weights_into_files_under_the_device_limit():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_gpu", "scripts/train_gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from lulc_core.model.architectures import build_resnet

    state = {k: v.half() if v.is_floating_point() else v for k, v in build_resnet().state_dict().items()}
    first, second = mod.split_by_bytes(state)
    assert set(first) | set(second) == set(state) and not set(first) & set(second)
    size = lambda keys: sum(state[k].numel() * state[k].element_size() for k in keys)  # noqa: E731
    assert max(size(first), size(second)) < 16 * 2**20 < size(first) + size(second)
