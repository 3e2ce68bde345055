"""Do object-like aggregations of the 10 m change, or the cells' magnitudes, rank OSCD's change better
than the share of changed pixels (issue 16: AUROC >= 0.90)? Leave one area out on the OSCD cells, as
bench/eval_change_context.py.

Per 160 m cell, from the product's 10 m spectral change (lulc_core.spectral.spectral_change):
- ``dense3`` / ``dense5``: share of changed pixels with at least 3 / 5 of their 8 neighbours changed
  (scattered pixels dropped, objects kept);
- ``open3``: share of changed pixels left by a 3 x 3 binary opening;
- ``rel_mean`` / ``rel_p90``: mean (capped at 5) and 90th percentile of magnitude / the scene's threshold.
Each alone (untuned AUROC, pooled and per area), then added to the counted-change model's 6 inputs
in a logistic model fitted on six areas and scored on the seventh.

Usage: python bench/eval_change_objects.py [--shared ../shared]   (about 3 minutes)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import eval_change_oscd as E  # noqa: E402
from eval_change_context import _logit, cell_inputs, fit  # noqa: E402

from lulc_core.grid import block_sums, share_in_blocks  # noqa: E402
from lulc_core.spectral import spectral_change  # noqa: E402

CELL = 16


def _around(m: np.ndarray) -> np.ndarray:
    """The 3 x 3 neighbourhood of every pixel, stacked (False beyond the edges)."""
    p = np.pad(m, 1)
    h, w = m.shape
    return np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])


def object_inputs(f: dict) -> dict[str, np.ndarray]:
    """The aggregations above for the cells the evaluation uses."""
    a, b = f["scenes"]
    sp = spectral_change(a, b)
    valid = sp.valid
    changed = sp.changed & valid
    around = _around(changed).sum(0) - changed  # changed neighbours
    eroded = _around(changed | ~valid).all(0) & changed
    opened = _around(eroded).any(0) & changed
    rel = np.where(valid, np.nan_to_num(sp.magnitude / sp.threshold), 0).astype(np.float32)
    h, w = rel.shape[0] // CELL, rel.shape[1] // CELL
    blocks = lambda x: x[:h * CELL, :w * CELL].reshape(h, CELL, w, CELL).transpose(0, 2, 1, 3).reshape(h, w, -1)  # noqa: E731
    with np.errstate(invalid="ignore"):
        p90 = np.nanpercentile(np.where(blocks(valid), blocks(rel), np.nan), 90, axis=-1)
    cols = {"dense3": share_in_blocks(changed & (around >= 3), valid, CELL),
            "dense5": share_in_blocks(changed & (around >= 5), valid, CELL),
            "open3": share_in_blocks(opened, valid, CELL),
            "rel_mean": block_sums(np.minimum(rel, 5), CELL) / np.maximum(block_sums(valid, CELL), 1), "rel_p90": p90}
    use = f["cell"]["use"]
    return {k: np.nan_to_num(v[:use.shape[0], :use.shape[1]][use].astype(float)) for k, v in cols.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    shared = Path(ap.parse_args().shared)
    index = json.loads((shared / "data" / "s2" / "index.json").read_text())["areas"]
    provider = E.DemoProvider(shared / "data" / "s2" / "oscd", name="oscd")
    dense, clf = E.DenseClassifier(E.SHIPPED_DENSE), E.Classifier()
    data = []
    for area, info in sorted(index.items()):
        if info.get("label"):
            f = E.area_features(provider, area, info, shared, dense, clf, clf)
            cols, truth = cell_inputs(f)
            raw = object_inputs(f)
            cols.update({f"{k}_raw": v for k, v in raw.items()})
            cols.update({k: _logit(raw[k]) for k in ("dense3", "dense5", "open3")})
            cols.update({k: np.log(raw[k] + 1e-2) for k in ("rel_mean", "rel_p90")})
            data.append((cols, truth))
    truths = [t for _, t in data]
    for k in ("share", "dense3", "dense5", "open3", "rel_mean", "rel_p90"):
        ps = [c[k] if k == "share" else c[f"{k}_raw"] for c, _ in data]
        print(json.dumps({"alone": k, "auroc_pooled": round(E.auroc(np.concatenate(ps), np.concatenate(truths)), 4),
                          "auroc_per_area": [round(E.auroc(p, t), 3) for p, t in zip(ps, truths)]}), flush=True)
    base = ["share", "built", "c1s", "c1m", "l1s", "l1m"]
    new = ["dense3", "dense5", "open3", "rel_mean", "rel_p90"]
    sets = {"6 inputs": base, "+ dense3": base + ["dense3"], "+ dense5": base + ["dense5"], "+ open3": base + ["open3"],
            "+ magnitudes": base + ["rel_mean", "rel_p90"], "+ all five": base + new,
            "+ all five + 3x3 maxima": base + new + ["share_max3", "l1s_max3", "built_max3"]}
    for name, keys in sets.items():
        ps = []
        for i, (cols, _) in enumerate(data):
            train = [d for j, d in enumerate(data) if j != i]
            model = fit(np.concatenate([np.column_stack([c[k] for k in keys]) for c, _ in train]),
                        np.concatenate([t for _, t in train]).astype(float))
            ps.append(model(np.column_stack([cols[k] for k in keys])))
        print(json.dumps({"inputs": name, "auroc_pooled": round(E.auroc(np.concatenate(ps), np.concatenate(truths)), 4),
                          "auroc_per_area": [round(E.auroc(p, t), 3) for p, t in zip(ps, truths)]}), flush=True)


if __name__ == "__main__":
    main()
