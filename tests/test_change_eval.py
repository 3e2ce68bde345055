"""The scoring helpers of bench/eval_change_oscd.py (AUROC, F1, Otsu) on cases with known answers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location("eval_change_oscd",
                                              Path(__file__).resolve().parent.parent / "bench" / "eval_change_oscd.py")
ev = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ev)


def test_auroc_known_values():
    truth = np.array([False, False, True, True])
    assert ev.auroc(np.array([0.1, 0.2, 0.8, 0.9]), truth) == 1.0
    assert ev.auroc(np.array([0.9, 0.8, 0.2, 0.1]), truth) == 0.0
    assert ev.auroc(np.array([0.5, 0.5, 0.5, 0.5]), truth) == 0.5  # ties count half
    # one positive ranked under one negative: 3 of 4 pairs ordered right
    assert ev.auroc(np.array([0.1, 0.6, 0.5, 0.9]), truth) == 0.75
    assert np.isnan(ev.auroc(np.array([0.1, 0.2]), np.array([True, True])))


def test_auroc_matches_pairwise_definition():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    truth = rng.random(60) < 0.3
    pos, neg = scores[truth], scores[~truth]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert ev.auroc(scores, truth) == pytest.approx(pairs)


def test_f1_and_best_f1():
    truth = np.array([True, True, False, False])
    r = ev.f1(np.array([True, False, True, False]), truth)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1) and r["f1"] == pytest.approx(0.5)
    assert ev.best_f1(np.array([0.9, 0.8, 0.1, 0.2]), truth) == 1.0


def test_logistic_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(-1.0 + 2.0 * x[:, 0] - 0.5 * x[:, 1])))
    w = ev.fit_logistic(x, (rng.random(4000) < p).astype(float))
    np.testing.assert_allclose(w, [-1.0, 2.0, -0.5], atol=0.2)


def test_otsu_splits_two_modes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.1, 0.02, 500), rng.normal(0.6, 0.05, 100)])
    assert 0.15 < ev.otsu(values) < 0.5


def test_shipped_change_evaluation_is_read(tmp_path):
    from lulc_core.change import measured_change_skill

    skill = measured_change_skill()
    assert skill is not None, "lulc_core/data/change_eval.json missing: run bench/eval_change_oscd.py"
    assert all(0 <= skill[k] <= 1 for k in ("auroc", "f1", "cell_auroc", "cell_f1", "baseline_auroc", "baseline_f1"))
    assert 0 < skill["truly_changed"] < skill["patches"]
    assert measured_change_skill(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text('{"model": ')
    assert measured_change_skill(tmp_path / "bad.json") is None
