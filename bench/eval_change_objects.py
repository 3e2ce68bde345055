"""Do object-like aggregations of the 10 m change, the cells' magnitudes or the dense network's last
features rank OSCD's change better than the share of changed pixels (issue 16: AUROC >= 0.90)? Leave
one area out on the OSCD cells, as bench/eval_change_context.py.

Per 160 m cell, from the product's 10 m spectral change (lulc_core.spectral.spectral_change):
- ``dense3`` / ``dense5``: share of changed pixels with at least 3 / 5 of their 8 neighbours changed
  (scattered pixels dropped, objects kept);
- ``open3``: share of changed pixels left by a 3 x 3 binary opening;
- ``rel_mean`` / ``rel_p90``: mean (capped at 5) and 90th percentile of magnitude / the scene's threshold;
- ``sem_cos`` / ``sem_rms``: the shipped dense network's layer4 features (512 per 160 m cell: its
  stride is the cell) of both dates, cosine distance and RMS of the difference over channels scaled
  by each channel's sd over the scene (DCVA on the last layer instead of the first ones).
Each alone (untuned AUROC, pooled and per area), then added to the counted-change model's 6 inputs
in a logistic model fitted on six areas and scored on the seventh.

Usage: python bench/eval_change_objects.py [--shared ../shared]   (about 4 minutes)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import eval_change_oscd as E  # noqa: E402
from eval_change_context import _logit, cell_inputs, fit, oscd_areas  # noqa: E402

from lulc_core.bands import band_indices  # noqa: E402
from lulc_core.grid import block_sums, share_in_blocks  # noqa: E402
from lulc_core.model.dense import trunk  # noqa: E402
from lulc_core.model.inference import network_dtype  # noqa: E402
from lulc_core.model.transforms import normalise  # noqa: E402
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


def semantic_inputs(f: dict, dense) -> dict[str, np.ndarray]:
    """``sem_cos`` and ``sem_rms`` (above) for the cells the evaluation uses."""
    def features(scene) -> np.ndarray:
        recipe = dense.recipe.apply(np.asarray(scene.data)[band_indices(list(scene.bands), dense.recipe.bands)],
                                    scene.valid)
        x = normalise(torch.from_numpy(np.ascontiguousarray(recipe, dtype=np.uint8))[None], dense.meta.norm_mean,
                      dense.meta.norm_std).to(network_dtype(dense.net)).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return trunk(dense.net, x).float()[0].numpy()

    use = f["cell"]["use"]
    fa, fb = (features(s) for s in f["scenes"])
    h, w = min(fa.shape[1], use.shape[0]), min(fa.shape[2], use.shape[1])
    fa, fb = fa[:, :h, :w], fb[:, :h, :w]
    sd = np.concatenate([fa.reshape(len(fa), -1), fb.reshape(len(fb), -1)], 1).std(1)[:, None, None] + 1e-6
    out = {}
    for name, v in (("sem_cos", 1 - (fa * fb).sum(0) / (np.linalg.norm(fa, axis=0) * np.linalg.norm(fb, axis=0) + 1e-6)),
                    ("sem_rms", np.sqrt((((fa - fb) / sd) ** 2).mean(0)))):
        full = np.zeros(use.shape)
        full[:h, :w] = v
        out[name] = full[use]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    shared = Path(ap.parse_args().shared)
    dense = E.DenseClassifier(E.SHIPPED_DENSE)  # its last layer's features (the areas' own copy maps the cells)
    data = []
    for _, f in oscd_areas(shared):
        cols, truth = cell_inputs(f)
        raw = {**object_inputs(f), **semantic_inputs(f, dense)}
        cols.update({f"{k}_raw": v for k, v in raw.items()})
        cols.update({k: _logit(raw[k]) for k in ("dense3", "dense5", "open3")})
        cols.update({k: np.log(raw[k] + 1e-2) for k in ("rel_mean", "rel_p90", "sem_cos", "sem_rms")})
        data.append((cols, truth))
    truths = [t for _, t in data]
    for k in ("share", "dense3", "dense5", "open3", "rel_mean", "rel_p90", "sem_cos", "sem_rms"):
        ps = [c[k] if k == "share" else c[f"{k}_raw"] for c, _ in data]
        print(json.dumps({"alone": k, "auroc_pooled": round(E.auroc(np.concatenate(ps), np.concatenate(truths)), 4),
                          "auroc_per_area": [round(E.auroc(p, t), 3) for p, t in zip(ps, truths)]}), flush=True)
    base = ["share", "built", "c1s", "c1m", "l1s", "l1m"]
    new = ["dense3", "dense5", "open3", "rel_mean", "rel_p90"]
    sets = {"6 inputs": base, "+ dense3": base + ["dense3"], "+ dense5": base + ["dense5"], "+ open3": base + ["open3"],
            "+ magnitudes": base + ["rel_mean", "rel_p90"], "+ last-layer distances": base + ["sem_cos", "sem_rms"],
            "+ all five": base + new,
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
