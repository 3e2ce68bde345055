"""Measure the change analysis against reality: OSCD urban change maps.

For every OSCD area with a change map in ../shared/data/s2/oscd (evaluation only: the maps are
CC BY-NC-SA and never shipped), this fetches both dates with the local-files provider on the
area's largest whole-patch AOI, classifies them, compares them, and scores patches against the
change map: a patch is truly changed when >= 5% of its map pixels changed.

Reported per area and pooled: the change score's AUROC and the F1 of the ``changed`` state
(uncertain counted as not changed), next to a change-vector-analysis (CVA) baseline on the same
patches: the mean per-pixel Euclidean distance between the two dates' 13-band TOA reflectance
vectors, thresholded with Otsu's method (unsupervised, as CVA is used in practice). Best-F1
over all thresholds (an oracle) is given for both for context.

Two extras help read the figures: 95% bootstrap intervals (patches resampled, 2000 draws) for the
pooled AUROCs and their difference, and a secondary score stated before looking at its result:
the change in built-up probability mass |P_b(built) - P_a(built)| with built = Highway,
Industrial, Residential, because OSCD labels only urban change (new buildings, new roads) while
the total-variation score also counts crop, pasture and water changes.

Usage: python bench/eval_change_oscd.py [--shared ../shared] [--out lulc_core/data/change_eval.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lulc_core.change import BUILT_UP_CLASSES, CHANGED, ChangeThresholds  # noqa: E402
from lulc_core.model import load_classifier  # noqa: E402
from lulc_core.patches import patch_means  # noqa: E402
from lulc_core.pipeline import run_analysis  # noqa: E402
from lulc_core.providers.local import LocalFilesProvider  # noqa: E402
from lulc_core.scene import DateWindow  # noqa: E402

TRUE_CHANGE_SHARE = 0.05
BOOTSTRAP_DRAWS = 2000


def auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    pos, neg = truth.sum(), (~truth).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))


def f1(pred: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((pred & truth).sum()); fp = int((pred & ~truth).sum()); fn = int((~pred & truth).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r, "tp": tp, "fp": fp, "fn": fn}


def best_f1(scores: np.ndarray, truth: np.ndarray) -> float:
    return max((f1(scores >= t, truth)["f1"] for t in np.unique(scores)), default=0.0)


def bootstrap_auroc(score_sets: dict[str, np.ndarray], truth: np.ndarray, draws: int = BOOTSTRAP_DRAWS,
                    seed: int = 0) -> dict:
    """95% percentile intervals of each score's AUROC and of the model-minus-CVA difference."""
    rng = np.random.default_rng(seed)
    samples = {k: [] for k in score_sets}
    for _ in range(draws):
        idx = rng.integers(0, len(truth), len(truth))
        t = truth[idx]
        if t.all() or not t.any():
            continue
        for k, v in score_sets.items():
            samples[k].append(auroc(v[idx], t))
    out = {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in samples.items()}
    diff = np.array(samples["score"]) - np.array(samples["cva"])
    out["score_minus_cva"] = [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))]
    return out


def otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w = hist.cumsum(); total = w[-1]
    m = (hist * centres).cumsum()
    between = (m[-1] * w / total - m) ** 2 / np.maximum(w * (total - w), 1e-12)
    return float(centres[np.argmax(between)])


def truth_per_patch(cm_path: Path, grid) -> tuple[np.ndarray, np.ndarray]:
    """Per patch: share of change-map pixels marked changed, and share covered by the map."""
    with rasterio.open(cm_path) as ds:
        dst = np.zeros((grid.height, grid.width), dtype=np.uint8)
        reproject(rasterio.band(ds, 1), dst, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    return patch_means(dst == 2, grid.patch_px), patch_means(dst > 0, grid.patch_px)


def cva_per_patch(a, b, grid) -> np.ndarray:
    da = a.data.astype(np.float32) / 10_000
    db = b.data.astype(np.float32) / 10_000
    mag = np.sqrt(((db - da) ** 2).sum(axis=0))
    return patch_means(mag, grid.patch_px)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", default=str(ROOT / "lulc_core" / "data" / "change_eval.json"))
    ap.add_argument("--confidence", type=float, default=0.6)
    args = ap.parse_args()
    root = Path(args.shared) / "data" / "s2" / "oscd"
    index = json.loads((Path(args.shared) / "data" / "s2" / "index.json").read_text())["areas"]
    provider = LocalFilesProvider(root, name="oscd")
    clf = load_classifier()
    rows, pooled = [], {k: [] for k in ("score", "built", "cva", "changed", "truth")}
    t0 = time.time()
    for area, info in sorted(index.items()):
        label = info.get("label")
        if not label:
            continue
        aoi = provider.area_aoi(area)
        d1, d2 = (d["date"] for d in info["dates"])
        an = run_analysis(aoi, DateWindow.parse(d1), DateWindow.parse(d2), provider, clf,
                          thresholds=ChangeThresholds(args.confidence))
        grid = an.a.patches.grid
        share, known = truth_per_patch(Path(args.shared) / "data" / "s2" / label["tif"], grid)
        use = (an.change.state != 3) & (known > 0.5) & an.a.classes.classified & an.b.classes.classified
        truth = share[use] >= TRUE_CHANGE_SHARE
        score = an.change.score[use]
        cva = cva_per_patch(an.a.scene, an.b.scene, grid)[use]
        changed = an.change.state[use] == CHANGED
        built = np.abs(an.change.built_up_change[use])
        row = {"area": area, "dates": [d1, d2], "patches": int(use.sum()), "truly_changed": int(truth.sum()),
               "auroc_change_score": auroc(score, truth), "auroc_cva": auroc(cva, truth),
               "auroc_built_up_change": auroc(built, truth),
               "f1_changed": f1(changed, truth)["f1"], "changed_patches": int(changed.sum())}
        rows.append(row)
        for k, v in (("score", score), ("built", built), ("cva", cva), ("changed", changed), ("truth", truth)):
            pooled[k].append(v)
        print(json.dumps(row), file=sys.stderr, flush=True)
    P = {k: np.concatenate(v) for k, v in pooled.items()}
    cva_thr = otsu(P["cva"])
    summary = {
        "definition": f"truly changed = >= {TRUE_CHANGE_SHARE:.0%} of the patch's OSCD change-map pixels changed",
        "confidence_threshold": args.confidence,
        "patches": int(len(P["truth"])), "truly_changed": int(P["truth"].sum()),
        "model": {"auroc": auroc(P["score"], P["truth"]), "changed_state": f1(P["changed"], P["truth"]),
                  "best_f1_any_threshold": best_f1(P["score"], P["truth"])},
        "cva_baseline": {"auroc": auroc(P["cva"], P["truth"]), "otsu_threshold": cva_thr,
                         "otsu": f1(P["cva"] >= cva_thr, P["truth"]),
                         "best_f1_any_threshold": best_f1(P["cva"], P["truth"])},
        "built_up_change": {"classes": list(BUILT_UP_CLASSES), "auroc": auroc(P["built"], P["truth"]),
                            "best_f1_any_threshold": best_f1(P["built"], P["truth"])},
        "bootstrap_95ci": bootstrap_auroc({"score": P["score"], "cva": P["cva"], "built": P["built"]}, P["truth"]),
        "per_area": rows, "seconds": round(time.time() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
