"""Does neighbourhood context lift the ranking of change (AUROC) to the issue's 0.90? Leave one area
out on the OSCD cells (as bench/eval_change_oscd.py): a logistic model of the counted-change inputs
(10 m share, tolerant share, 4 deep change features), with and without the 3 x 3 / 5 x 5 neighbourhood
mean and max of the shares, fitted on six areas and scored on the seventh; AUROC pooled and per area.

Usage: python bench/eval_change_context.py [--shared ../shared]   (about 3 minutes)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import eval_change_oscd as E  # noqa: E402

from lulc_core.joint import fit_logistic  # noqa: E402


def _neighbours(v: np.ndarray, k: int) -> np.ndarray:
    r = k // 2
    p = np.pad(v, r, mode="edge")
    h, w = v.shape
    return np.stack([p[dy:dy + h, dx:dx + w] for dy in range(k) for dx in range(k)])


def _logit(v: np.ndarray) -> np.ndarray:
    v = np.clip(np.nan_to_num(v, nan=0.0), 1e-3, 1 - 1e-3)
    return np.log(v / (1 - v))


def cell_inputs(f: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    g = f["cell"]
    share, built = (np.nan_to_num(x.astype(float)) for x in (g["maps"][2], g["built_share"]))
    d = np.nan_to_num(g["deep"].astype(float))
    cols = {"share": _logit(share), "built": _logit(built), "c1s": _logit(d[..., 0]), "c1m": np.log(d[..., 1] + 1e-3),
            "l1s": _logit(d[..., 2]), "l1m": np.log(d[..., 3] + 1e-3)}
    for name, v in (("share", share), ("l1s", d[..., 2]), ("built", built)):
        for k in (3, 5):
            n = _neighbours(v, k)
            cols[f"{name}_mean{k}"], cols[f"{name}_max{k}"] = _logit(n.mean(0)), _logit(n.max(0))
    return {k: v[g["use"]] for k, v in cols.items()}, g["truth"]


def oscd_areas(shared: Path) -> Iterator[tuple[str, dict]]:
    """(area, features) of each OSCD area with a change map (:func:`eval_change_oscd.area_features`
    with the shipped dense model and the per-window classifier), in name order."""
    index = json.loads((shared / "data" / "s2" / "index.json").read_text())["areas"]
    provider = E.DemoProvider(shared / "data" / "s2" / "oscd", name="oscd")
    dense, clf = E.DenseClassifier(E.SHIPPED_DENSE), E.Classifier()
    for area, info in sorted(index.items()):
        if info.get("label"):
            yield area, E.area_features(provider, area, info, shared, dense, clf, clf)


def fit(X: np.ndarray, y: np.ndarray, l2: float = 1e-2):
    """A standardised logistic model (lulc_core.joint.fit_logistic) fitted on X, y: its scoring function."""
    m, s = X.mean(0), X.std(0) + 1e-9
    w = fit_logistic((X - m) / s, y, l2)
    return lambda X: 1 / (1 + np.exp(-(w[0] + ((X - m) / s) @ w[1:])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    data = [cell_inputs(f) for _, f in oscd_areas(Path(args.shared))]
    base = ["share", "built", "c1s", "c1m", "l1s", "l1m"]
    ctx = ["share", "l1s", "built"]
    sets = {"10 m share alone (raw)": None, "6 inputs": base,
            "+ 3x3 means": base + [f"{c}_mean3" for c in ctx], "+ 3x3 maxima": base + [f"{c}_max3" for c in ctx],
            "+ 3x3 means and maxima": base + [f"{c}_{a}3" for c in ctx for a in ("mean", "max")],
            "+ 5x5 means and maxima": base + [f"{c}_{a}5" for c in ctx for a in ("mean", "max")]}
    for name, keys in sets.items():
        ps, ts = [], []
        for i, (cols, truth) in enumerate(data):
            if keys is None:
                ps.append(cols["share"])
            else:
                train = [d for j, d in enumerate(data) if j != i]
                model = fit(np.concatenate([np.column_stack([c[k] for k in keys]) for c, _ in train]),
                            np.concatenate([t for _, t in train]).astype(float))
                ps.append(model(np.column_stack([cols[k] for k in keys])))
            ts.append(truth)
        print(json.dumps({"inputs": name, "auroc_pooled": round(E.auroc(np.concatenate(ps), np.concatenate(ts)), 4),
                          "auroc_per_area": [round(E.auroc(p, t), 3) for p, t in zip(ps, ts)]}), flush=True)


if __name__ == "__main__":
    main()
