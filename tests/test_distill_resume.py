"""The dense distillation on the CPU can be interrupted and resumed without losing anything
(issue 17): a run stopped at a checkpoint and resumed ends with the very weights of a run that
never stopped, and a resume with other options is refused."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _script(monkeypatch, run_dir: Path):
    spec = importlib.util.spec_from_file_location("distill_dense", ROOT / "scripts" / "distill_dense.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "RUN", run_dir)
    return mod


def _targets(mod, run_dir: Path) -> None:
    """Two small scenes of teacher targets (one training area, one held-out demo area), written as
    ``distill_dense.py targets`` writes them, for the shipped per-window weights."""
    from lulc_core.model.weights import default_weights_path, weights_sha256

    out = run_dir / "targets_plain"
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    teacher = weights_sha256(default_weights_path())
    for name in ("beirut_2015-08-20", "montpellier_2015-08-12"):
        recipe = rng.integers(1, 256, (3, 320, 320), dtype=np.uint8)
        logits = rng.normal(size=(17, 17, 10))
        probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
        np.savez_compressed(out / f"{name}.npz", recipe=recipe, probs=probs, step=16,
                            nodata=np.zeros((17, 17), np.float32), teacher_sha256=teacher)
    assert mod.load_targets(False) and mod.load_targets(True)


def _args(tmp: Path, checkpoint: str, out: str, **kw) -> argparse.Namespace:
    base = dict(minutes=0.0, lr=1e-4, batch=1, threads=1, init="", steps=3, resume=False,
                checkpoint=str(tmp / checkpoint), checkpoint_every=1, stop_at=0, eval_every=1000, seed=0,
                teacher="plain", keep_out="", out=str(tmp / out), real_share=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_a_resumed_distillation_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    mod = _script(monkeypatch, tmp_path / "run")
    _targets(mod, tmp_path / "run")
    mod.cmd_train(_args(tmp_path, "a.ckpt", "a.pt"))
    mod.cmd_train(_args(tmp_path, "b.ckpt", "b.pt", stop_at=1))
    stopped = torch.load(tmp_path / "b.ckpt", weights_only=False)
    assert stopped["step"] == 1 and not (tmp_path / "b.pt").exists()  # stopped, checkpointed, nothing shipped
    mod.cmd_train(_args(tmp_path, "b.ckpt", "b.pt", resume=True))
    a, b = (torch.load(tmp_path / f"{k}.ckpt", weights_only=False) for k in "ab")
    assert a["step"] == b["step"] == 3 and b["resumed"] == 1 and a["resumed"] == 0
    assert a["losses"] == b["losses"]
    assert all(torch.equal(a["student"][k], b["student"][k]) for k in a["student"])
    # the interrupted run trained: its weights moved away from the start
    start = stopped["student"]
    assert any(not torch.equal(start[k], b["student"][k]) for k in start if start[k].is_floating_point())

    with pytest.raises(SystemExit, match="another run"):  # other options: refused, not mixed
        mod.cmd_train(_args(tmp_path, "b.ckpt", "c.pt", resume=True, lr=3e-4))
