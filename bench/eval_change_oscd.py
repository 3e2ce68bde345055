"""Measure the change analysis against reality: OSCD urban change maps, leave one area out.

For every OSCD area with a change map in ../shared/data/s2/oscd (evaluation and tuning only:
the maps are CC BY-NC-SA and never shipped), this runs the product's own pipeline pieces on the
area's largest whole-patch AOI (local-files provider, dense class maps, 10 m spectral change)
and scores cells (160 m) and patches (640 m) against the change map: truly changed when >= 5%
of the map's pixels changed, among cells / patches >= 90% covered by the map and valid.

The product's change score (the share of a cell's 10 m pixels with spectral change) has no tuned
parameter. The one tuned number, the decision's spectral support ``min_spectral``, is fitted
leave-one-area-out: for each area, on the other six (best F1 of the ``changed`` decision);
every figure reported for the product is the held-out one, pooled over the seven areas and per
area, with 95% bootstrap intervals (cells / patches resampled). The shipped value
(``lulc_core/data/change_model.json``) is then fitted on all seven areas. A logistic
combination of spectral share and group-probability distance (fitted the same way) is
reported as the alternative that was tried.

Baselines on the same cells / patches: change vector analysis on raw DN (mean per-pixel
distance) and the z-scored share-above-2-sd measure (each band z-scored per scene and date,
per-pixel distance, share of pixels above the scene's mean + 2 sd).

Usage: python bench/eval_change_oscd.py [--shared ../shared] [--write]  (about 2 minutes)
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

from lulc_core.change import (CHANGE_EVALUATION, CHANGE_MODEL, ChangeKind, ChangeResult, ChangeThresholds,
                              compare)
from lulc_core.deep_change import deep_change
from lulc_core.conditional import conditional_change
from lulc_core.joint import CountedChangeModel, EvidenceModel, fit_logistic
from lulc_core.pipeline import BUILT_TOLERANCE_PX
from lulc_core.classify import ClassMap, classify_cells
from lulc_core.model.classifier import Classifier
from lulc_core.model.dense import DenseClassifier
from lulc_core.model.weights import SHIPPED_DENSE
from lulc_core.grid import GEOMETRY, LATTICE_PX, block_sums
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow
from lulc_core.spectral import spectral_change

TRUE_CHANGE_SHARE = 0.05
MIN_KNOWN = 0.9
BOOTSTRAP_DRAWS = 1000
CELL_PX = GEOMETRY.cell_px
PATCH_PX = LATTICE_PX
SPECTRAL_GRID = np.round(np.arange(0.02, 0.62, 0.02), 2)


# -- scoring helpers ----------------------------------------------------------------------------

def auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    scores, truth = np.asarray(scores, float), np.asarray(truth, bool)
    pos, neg = truth.sum(), (~truth).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    _, start, counts = np.unique(s, return_index=True, return_counts=True)
    avg = start + (counts - 1) / 2 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))


def f1(pred: np.ndarray, truth: np.ndarray) -> dict:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = int((pred & truth).sum()); fp = int((pred & ~truth).sum()); fn = int((~pred & truth).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r, "tp": tp, "fp": fp, "fn": fn}


def best_f1(scores: np.ndarray, truth: np.ndarray) -> float:
    """Best F1 over all thresholds (an oracle, for context only)."""
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    t = np.asarray(truth, bool)[order]
    tp = np.cumsum(t); fp = np.cumsum(~t); pos = t.sum()
    f = 2 * tp / np.maximum(tp + fp + pos, 1)
    return float(f.max(initial=0.0))


def otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w = hist.cumsum(); total = w[-1]
    m = (hist * centres).cumsum()
    between = (m[-1] * w / total - m) ** 2 / np.maximum(w * (total - w), 1e-12)
    return float(centres[np.argmax(between)])


def bootstrap(metric, arrays: dict[str, np.ndarray], truth: np.ndarray, draws: int = BOOTSTRAP_DRAWS,
              seed: int = 0) -> dict[str, list[float]]:
    """95% percentile intervals of ``metric(values, truth)`` for each array (shared resamples)."""
    rng = np.random.default_rng(seed)
    samples = {k: [] for k in arrays}
    for _ in range(draws):
        idx = rng.integers(0, len(truth), len(truth))
        t = truth[idx]
        if t.all() or not t.any():
            continue
        for k, v in arrays.items():
            samples[k].append(metric(v[idx], t))
    return {k: [round(float(np.percentile(v, 2.5)), 3), round(float(np.percentile(v, 97.5)), 3)]
            for k, v in samples.items()}


# -- per-area features ---------------------------------------------------------------------------

def truth_map(cm_path: Path, grid) -> np.ndarray:
    """The change map on the scene grid: 0 unknown, 1 no change, 2 change."""
    with rasterio.open(cm_path) as ds:
        dst = np.zeros((grid.height, grid.width), dtype=np.uint8)
        reproject(rasterio.band(ds, 1), dst, dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    return dst


def zscore_share(a, b, valid) -> np.ndarray:
    """The issue's baseline: per-pixel distance of per-scene z-scored bands, > mean + 2 sd."""
    def z(x):
        x = x.astype(np.float32)
        xs = x[:, valid]
        return (x - xs.mean(1)[:, None, None]) / np.maximum(xs.std(1)[:, None, None], 1e-6)
    d = np.sqrt(((z(a.data) - z(b.data)) ** 2).sum(0))
    dv = d[valid]
    return (d > dv.mean() + 2 * dv.std()) & valid


def aggregate_cells(classes: ClassMap, k: int) -> np.ndarray:
    """Mean probabilities of each k x k block of cells (a patch), NaN-aware."""
    p = classes.probs
    r, c = p.shape[0] // k, p.shape[1] // k
    blocks = p[: r * k, : c * k].reshape(r, k, c, k, -1)
    with np.errstate(invalid="ignore"):
        return np.nanmean(blocks, axis=(1, 3))


def patch_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean of each k x k block of cells of a (rows, cols, F) array over its finite values (NaN where none)."""
    r, c = x.shape[0] // k, x.shape[1] // k
    blocks = x[: r * k, : c * k].reshape(r, k, c, k, -1)
    n = np.isfinite(blocks).sum(axis=(1, 3))
    return np.where(n > 0, np.nansum(blocks, axis=(1, 3)) / np.maximum(n, 1), np.nan)


def area_features(provider, area: str, info: dict, shared: Path, dense, classifier=None, deep_classifier=None) -> dict:
    aoi = provider.area_aoi(area)
    d1, d2 = (d["date"] for d in info["dates"])
    a = provider.fetch(aoi, DateWindow.parse(d1))
    b = provider.fetch(aoi, DateWindow.parse(d2))
    grid = aoi.grid
    cm = truth_map(shared / "data" / "s2" / info["label"]["tif"], grid)
    sp = spectral_change(a, b)
    sp_tol = spectral_change(a, b, tolerance_px=BUILT_TOLERANCE_PX, normalisation=sp.normalisation)
    cond = conditional_change(a, b)
    ca, cb = classify_cells(a, aoi, dense, classifier=classifier), classify_cells(b, aoi, dense, classifier=classifier)
    zs = zscore_share(a, b, sp.valid)
    deep = deep_change(deep_classifier or classifier or Classifier(), a.data, b.data, a.bands, sp.valid,
                       ca.status.shape).features
    cva = np.sqrt(((b.data.astype(np.float32) - a.data.astype(np.float32)) ** 2).sum(0)) / 10_000
    out = {"area": area, "dates": [d1, d2], "pixel": {}, "scenes": (a, b), "valid": sp.valid}
    known_px = cm > 0
    ok = known_px & sp.valid
    out["pixel"] = {"f1": f1(sp.changed[ok], (cm == 2)[ok]), "threshold": sp.threshold,
                    "changed_share": sp.changed_share}
    for level, px in (("cell", CELL_PX), ("patch", PATCH_PX)):
        n = block_sums(np.ones_like(sp.valid), px)
        known = block_sums(known_px, px) / n
        valid = block_sums(sp.valid, px) / n
        truth = block_sums(cm == 2, px) / np.maximum(block_sums(known_px, px), 1) >= TRUE_CHANGE_SHARE
        if level == "cell":
            A, B = ca, cb
        else:
            pa, pb = aggregate_cells(ca, px // CELL_PX), aggregate_cells(cb, px // CELL_PX)
            g = grid  # patch grid
            status = np.where(np.isfinite(pa).all(-1) & np.isfinite(pb).all(-1), 0, 2).astype(np.int8)
            area_ha = np.full(status.shape, 40.96)
            A = ClassMap(g, np.where(status[..., None] == 0, pa, np.nan).astype(np.float32), status, area_ha)
            B = ClassMap(g, np.where(status[..., None] == 0, pb, np.nan).astype(np.float32), status.copy(), area_ha)
        share = sp.share(px)
        use = (known >= MIN_KNOWN) & (valid >= MIN_KNOWN) & A.classified & B.classified & np.isfinite(share)
        ga = np.nan_to_num(A.probs.astype(np.float64)); gb = np.nan_to_num(B.probs.astype(np.float64))
        from lulc_core.change import group_matrix
        gm = group_matrix(A.class_names)
        ga, gb = ga @ gm, gb @ gm
        out[level] = {
            "truth": truth[use], "share": share[use],
            "group_distance": (0.5 * np.abs(ga - gb).sum(-1))[use],
            "flip": (ga.argmax(-1) != gb.argmax(-1))[use],
            "group_a": ga[use], "group_b": gb[use],
            "class_flip": (np.nan_to_num(A.probs).argmax(-1) != np.nan_to_num(B.probs).argmax(-1))[use],
            "conf": np.minimum(ga.max(-1), gb.max(-1))[use],
            "class_conf": np.minimum(np.nan_to_num(A.probs).max(-1), np.nan_to_num(B.probs).max(-1))[use],
            "zscore": (block_sums(zs, px) / np.maximum(block_sums(sp.valid, px), 1))[use],
            "cva": (block_sums(np.where(sp.valid, cva, 0), px) / np.maximum(block_sums(sp.valid, px), 1))[use],
            "maps": (A, B, share), "use": use, "built_share": sp_tol.share(px),
            "conditional_share": cond.share(px),
            "deep": deep if level == "cell" else patch_mean(deep, px // CELL_PX),
        }
    return out


def logistic_features(f: dict) -> np.ndarray:
    s = np.clip(f["share"], 0.005, 0.995)
    return np.column_stack([np.log(s / (1 - s)), f["group_distance"]])


def decide(f: dict, min_spectral: float, confidence: float, level: str = "group") -> np.ndarray:
    """The product's decision (lulc_core.change.compare) on precomputed features."""
    flip = f["flip"] if level == "group" else f["class_flip"]
    conf = f["conf"] if level == "group" else f["class_conf"]
    return flip & (conf >= confidence) & (f["share"] >= min_spectral)


def joint_decision(f: dict, model: EvidenceModel, min_built: float, min_spectral: float,
                   confidence: float, counted: CountedChangeModel | None = None) -> ChangeResult:
    """The product's decision (lulc_core.change.compare: joint classification, kinds) on one area's maps;
    without ``counted`` the built-up share rule (no deep evidence)."""
    a, b, share = f["maps"]
    return compare(a, b, ChangeThresholds(confidence, min_spectral, "group", min_built), share, model,
                   built_share=f["built_share"], deep=f["deep"] if counted is not None else None,
                   counted_model=counted, conditional_share=f["conditional_share"] if counted is not None else None)


COUNTED_THRESHOLDS = np.round(np.arange(0.02, 0.91, 0.02), 2)


def fit_counted(train: list[dict], level: str, model: EvidenceModel, min_built: float, min_spectral: float,
                confidence: float) -> CountedChangeModel:
    """The counted-change model (logistic on the 10 m shares and the deep change features) fitted on the
    training areas' units, and its threshold: the best F1 of the counted change there."""
    def cat(key: str) -> np.ndarray:
        return np.concatenate([f[level][key][f[level]["use"]] for f in train])
    cm = CountedChangeModel.fit(np.concatenate([f[level]["share"] for f in train]), cat("built_share"), cat("deep"),
                                cat("conditional_share"), np.concatenate([f[level]["truth"] for f in train]))
    truth = np.concatenate([f[level]["truth"] for f in train])

    def score(t: float) -> tuple[float, float]:
        pred = np.concatenate([joint_decision(f[level], model, min_built, min_spectral, confidence,
                                              cm.with_threshold(t)).counted[f[level]["use"]] for f in train])
        return f1(pred, truth)["f1"], -t
    return cm.with_threshold(float(max(COUNTED_THRESHOLDS, key=score)))


BIAS_GRID = np.arange(0.0, 4.01, 0.5)
MAX_UNCHANGED_FLIPS = 0.01  # the tuning rule: confident group flips on at most 1% of unchanged training units


def fit_evidence(train: list[dict], level: str, confidence: float) -> EvidenceModel:
    """P(change | share) fitted on the training areas' units (logistic on logit(share)), then the
    transition bias: the largest in :data:`BIAS_GRID` whose confident group flips stay on at most
    :data:`MAX_UNCHANGED_FLIPS` of the training areas' unchanged units."""
    model = EvidenceModel.fit(np.concatenate([f[level]["share"] for f in train]),
                              np.concatenate([f[level]["truth"] for f in train]))
    truth = np.concatenate([f[level]["truth"] for f in train])

    def unchanged_flips(bias: float) -> float:
        flips = np.concatenate([(joint_decision(f[level], model.with_bias(bias), 1.0, 1.0, confidence).kind
                                 == ChangeKind.LAND_COVER)[f[level]["use"]] for f in train])
        return float(flips[~truth].mean())
    return model.with_bias(max([b for b in BIAS_GRID if unchanged_flips(b) <= MAX_UNCHANGED_FLIPS], default=0.0))


def tune_min_built(train: list[dict], level: str, model: EvidenceModel, min_spectral: float,
                   confidence: float) -> float:
    """Built-up change support that maximises F1 of the counted change on the training areas."""
    truth = np.concatenate([f[level]["truth"] for f in train])

    def score(s: float) -> tuple[float, float]:
        pred = np.concatenate([joint_decision(f[level], model, s, min_spectral, confidence).counted[f[level]["use"]]
                               for f in train])
        return f1(pred, truth)["f1"], -s
    return float(max(SPECTRAL_GRID, key=score))


def tune_spectral_only(train: list[dict], level: str) -> float:
    """Spectral share threshold that maximises F1 of 'share >= s' alone on the training areas."""
    truth = np.concatenate([f[level]["truth"] for f in train])
    share = np.concatenate([f[level]["share"] for f in train])
    return float(max(SPECTRAL_GRID, key=lambda s: (f1(share >= s, truth)["f1"], -s)))


def tune_min_spectral(train: list[dict], level: str, confidence: float) -> float:
    """Spectral support that maximises F1 of the ``changed`` decision on the training areas."""
    truth = np.concatenate([f[level]["truth"] for f in train])
    return float(max(SPECTRAL_GRID, key=lambda s: (f1(np.concatenate([decide(f[level], s, confidence)
                                                                       for f in train]), truth)["f1"], -s)))


def logistic_alternative(train: list[dict], held: dict, level: str) -> np.ndarray:
    """Held-out scores of a logistic model of spectral share and group distance fitted on ``train``."""
    w = fit_logistic(np.concatenate([logistic_features(f[level]) for f in train]),
                     np.concatenate([f[level]["truth"] for f in train]).astype(float))
    return 1 / (1 + np.exp(-(w[0] + logistic_features(held) @ w[1:])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--dense-weights", default=str(SHIPPED_DENSE))
    ap.add_argument("--confidence", type=float, default=0.6)
    ap.add_argument("--no-refine", action="store_true",
                    help="class maps from the dense pass alone (default: with the shipped refine cascade, as the app)")
    ap.add_argument("--deep-from", choices=("classifier", "dense"), default="classifier",
                    help="whose early layers give the deep change features: the per-window classifier's "
                         "(default) or the dense model's")
    ap.add_argument("--write", action="store_true",
                    help=f"write the summary to {CHANGE_EVALUATION.name} and the tuned model to {CHANGE_MODEL.name}")
    ap.add_argument("--out", default="", help="also write the summary JSON here")
    args = ap.parse_args()
    shared = Path(args.shared)
    index = json.loads((shared / "data" / "s2" / "index.json").read_text())["areas"]
    provider = DemoProvider(shared / "data" / "s2" / "oscd", name="oscd")
    dense = DenseClassifier(args.dense_weights)
    classifier = None if args.no_refine else Classifier()
    deep_classifier = dense if args.deep_from == "dense" else classifier or Classifier()
    t0 = time.time()
    feats = []
    for area, info in sorted(index.items()):
        if info.get("label"):
            feats.append(area_features(provider, area, info, shared, dense, classifier, deep_classifier))
            del feats[-1]["scenes"]  # not needed here (bench/eval_change_deep.py uses them)
    held: dict[str, dict[str, list]] = {lv: {k: [] for k in ("prob", "changed", "truth", "zscore", "cva", "share",
                                                                    "spectral_only", "flip", "logistic", "joint_flip",
                                                                    "built_up", "p_change", "p_evidence",
                                                                    "independent_changed", "share_rule_changed",
                                                                    "p_counted")}
                                        for lv in ("cell", "patch")}
    rows = []
    for i, f in enumerate(feats):
        train = feats[:i] + feats[i + 1:]
        row = {"area": f["area"], "dates": f["dates"], "pixel_f1": round(f["pixel"]["f1"]["f1"], 3),
               "spectral_threshold": round(f["pixel"]["threshold"], 3)}
        for level in ("cell", "patch"):
            g = f[level]
            s_only = tune_spectral_only(train, level)
            model = fit_evidence(train, level, args.confidence)
            s_built = tune_min_built(train, level, model, s_only, args.confidence)
            counted = fit_counted(train, level, model, s_built, s_only, args.confidence)
            ch = joint_decision(g, model, s_built, s_only, args.confidence, counted)
            share_rule = joint_decision(g, model, s_built, s_only, args.confidence)
            use = g["use"]
            prob = ch.score[use]  # the product's change score: P(counted change), held out
            changed = ch.counted[use]
            spectral_only = g["share"] >= s_only
            for k, v in (("prob", prob), ("changed", changed), ("truth", g["truth"]), ("zscore", g["zscore"]),
                         ("cva", g["cva"]), ("share", g["share"]), ("spectral_only", spectral_only),
                         ("flip", g["flip"] & (g["conf"] >= args.confidence)),
                         ("joint_flip", (ch.kind == ChangeKind.LAND_COVER)[use]),
                         ("built_up", (ch.kind == ChangeKind.BUILT_UP)[use]),
                         ("p_change", ch.p_change[use]), ("p_evidence", ch.p_evidence[use]),
                         ("share_rule_changed", share_rule.counted[use]), ("p_counted", ch.p_counted[use]),
                         ("independent_changed", decide(g, tune_min_spectral(train, level, args.confidence),
                                                        args.confidence)),
                         ("logistic", logistic_alternative(train, g, level))):
                held[level][k].append(v)
            row[level] = {"n": int(len(g["truth"])), "truly_changed": int(g["truth"].sum()),
                          "auroc": round(auroc(prob, g["truth"]), 3),
                          "auroc_spectral_share": round(auroc(g["share"], g["truth"]), 3),
                          "auroc_zscore_baseline": round(auroc(g["zscore"], g["truth"]), 3),
                          "auroc_cva": round(auroc(g["cva"], g["truth"]), 3),
                          "f1_changed": round(f1(changed, g["truth"])["f1"], 3),
                          "f1_changed_built_share_rule": round(f1(share_rule.counted[use], g["truth"])["f1"], 3),
                          "counted_threshold": counted.threshold,
                          "changed": int(changed.sum()), "min_spectral_tuned": s_only, "min_built_tuned": s_built,
                          "evidence_model": [round(model.intercept, 3), round(model.slope, 3), model.transition_bias],
                          "joint_flip_unchanged": round(float((ch.kind == ChangeKind.LAND_COVER)[use][~g["truth"]].mean()), 4),
                          "auroc_p_change": round(auroc(ch.p_change[use], g["truth"]), 3)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    summary = {"definition": f"truly changed = >= {TRUE_CHANGE_SHARE:.0%} of the OSCD change-map pixels changed; "
                             f"cells / patches >= {MIN_KNOWN:.0%} covered by the map and valid on both dates",
               "protocol": "leave one area out: parameters fitted on six areas, figures on the seventh, pooled",
               "confidence": args.confidence, "dense_weights": Path(args.dense_weights).name}
    for level in ("cell", "patch"):
        H = {k: np.concatenate(v) for k, v in held[level].items()}
        t = H["truth"]
        cva_thr = otsu(H["cva"])
        z_thr = otsu(H["zscore"])
        summary[level] = {
            "n": int(len(t)), "truly_changed": int(t.sum()),
            "change_score": {"auroc": auroc(H["prob"], t), "best_f1_any_threshold": best_f1(H["prob"], t),
                             "definition": "the product's change score: P(counted change) of the counted-change "
                                           "model (fitted on the other six areas)"},
            "spectral_share": {"auroc": auroc(H["share"], t), "best_f1_any_threshold": best_f1(H["share"], t),
                               "definition": "share of the unit's comparable 10 m pixels with spectral change "
                                             "(untuned; the change score before the counted-change model)"},
            "logistic_share_and_group_distance": {"auroc": auroc(H["logistic"], t),
                                                  "best_f1_any_threshold": best_f1(H["logistic"], t)},
            "changed_state": f1(H["changed"], t),
            "changed_state_definition": "counted change: land-cover change (joint group flip) + built-up change "
                                        "(counted-change model of the 10 m shares, the deep change features and "
                                        "the share of conditional change)",
            "changed_state_built_share_rule": f1(H["share_rule_changed"], t),
            "p_counted": {"auroc": auroc(H["p_counted"], t)},
            "independent_argmax_changed_state_before": f1(H["independent_changed"], t),
            "built_up_change_state": f1(H["built_up"], t),
            "p_change_joint": {"auroc": auroc(H["p_change"], t)},
            "truly_changed_with_joint_group_flip": float(H["joint_flip"][t].mean()),
            "not_changed_with_joint_group_flip": float(H["joint_flip"][~t].mean()),
            "spectral_evidence_alone_state": f1(H["spectral_only"], t),
            "truly_changed_with_confident_group_flip": float(H["flip"][t].mean()),
            "not_changed_with_confident_group_flip": float(H["flip"][~t].mean()),
            "zscore_2sd_baseline": {"auroc": auroc(H["zscore"], t), "best_f1_any_threshold": best_f1(H["zscore"], t),
                                    "otsu": f1(H["zscore"] >= z_thr, t)},
            "cva_baseline": {"auroc": auroc(H["cva"], t), "best_f1_any_threshold": best_f1(H["cva"], t),
                             "otsu": f1(H["cva"] >= cva_thr, t)},
            "bootstrap_95ci_auroc": bootstrap(auroc, {"change_score": H["prob"], "spectral_share": H["share"],
                                                      "zscore": H["zscore"], "cva": H["cva"]}, t),
            "bootstrap_95ci_auroc_difference_score_minus_zscore": bootstrap(
                lambda d, tt: auroc(d[:, 0], tt) - auroc(d[:, 1], tt), {"d": np.column_stack([H["prob"], H["zscore"]])},
                t)["d"],
            "bootstrap_95ci_f1_changed": bootstrap(lambda p, tt: f1(p, tt)["f1"], {"changed": H["changed"],
                                                   "built_share_rule": H["share_rule_changed"]}, t),
        }
    px = [f["pixel"]["f1"] for f in feats]
    tp, fp, fn = (sum(p[k] for p in px) for k in ("tp", "fp", "fn"))
    summary["pixel"] = {"f1": 2 * tp / max(2 * tp + fp + fn, 1), "precision": tp / max(tp + fp, 1),
                        "recall": tp / max(tp + fn, 1), "note": "10 m spectral change (unsupervised mean + 2 sd threshold), no tuning"}
    final = tune_spectral_only(feats, "cell")
    final_model = fit_evidence(feats, "cell", args.confidence)
    final_built = tune_min_built(feats, "cell", final_model, final, args.confidence)
    final_counted = fit_counted(feats, "cell", final_model, final_built, final, args.confidence)
    summary["shipped_counted_model"] = final_counted.to_json()
    summary["shipped_min_spectral"] = final
    summary["shipped_min_built_spectral"] = final_built
    summary["shipped_evidence_model"] = {"intercept": final_model.intercept, "slope": final_model.slope,
                                         "transition_bias": final_model.transition_bias}
    summary["per_area"] = rows
    summary["headline"] = {"auroc": summary["patch"]["change_score"]["auroc"],
                           "f1": summary["patch"]["changed_state"]["f1"],
                           "cell_auroc": summary["cell"]["change_score"]["auroc"],
                           "cell_f1": summary["cell"]["changed_state"]["f1"],
                           "baseline_auroc": summary["patch"]["zscore_2sd_baseline"]["auroc"],
                           "baseline_f1": summary["patch"]["zscore_2sd_baseline"]["best_f1_any_threshold"],
                           "patches": summary["patch"]["n"], "truly_changed": summary["patch"]["truly_changed"]}
    summary["class_maps"] = ("dense pass alone" if classifier is None else
                             "dense pass + refine cascade (lulc_core/data/dense_refine.json)")
    summary["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(summary, indent=1, default=float)
    if args.write:
        CHANGE_EVALUATION.write_text(text)
        CHANGE_MODEL.write_text(json.dumps({
            "min_spectral": final, "min_built_spectral": final_built,
            "evidence_model": {"intercept": final_model.intercept, "slope": final_model.slope,
                               "transition_bias": final_model.transition_bias},
            "counted_model": final_counted.to_json(),
            "fitted_on": "OSCD change maps, 7 areas, 160 m cells (summary numbers only): min_spectral = best F1 of "
                         "'share >= s' alone; evidence_model = logistic fit of truly changed on logit(share), transition_bias = "
                         "the largest keeping confident group flips on <= 1% of unchanged cells; "
                         "min_built_spectral = best F1 of the counted change (land-cover + built-up) "
                         "with the built-up share rule (used without deep evidence); counted_model = logistic fit of truly "
                         "changed on the 10 m shares and the deep change features, its threshold the best F1 of the "
                         "counted change",
            "confidence": args.confidence}, indent=1))
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
