"""How far the per-window classifier agrees with itself: a scale for the dense pass's agreement.

The dense pass is measured by its top-1 agreement with the per-window classifier (one view, fp32)
on every 16 px window of the held-out demo areas (issue 17: 97% wanted; docs/dense_eval.json gives
the shipped weights' figures alone and with the refine cascade). This bench puts those figures beside the same classifier's agreement with itself
on the same windows when

- the window moves by 1, 2, 4 or 8 px (diagonally: rows and columns),
- it runs in bf16 as the app does instead of fp32,
- it averages the 8 flips / rotations (full TTA) instead of one view,

at class level and at land-cover group level (the groups the change decision counts), with the
dense pass alone and with the refine cascade (as shipped) on the same windows; and how each map
agrees with its own map of the image moved by 1, 2, 4 or 8 px (two dates are often 1-2 px apart:
a map that changes when the image moves by 10 m makes change where there is none). Windows with
over 10% missing pixels at any position compared are left out (``scripts/distill_dense.py eval``'s
rule).

    python bench/eval_dense_ceiling.py --shared ../shared [--out docs/dense_ceiling.json]

About 10 minutes on 2 cores alone. Reads the OSCD scenes in ``../shared`` (evaluation only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lulc_core.bands import eurosat_rgb_recipe
from lulc_core.cells import MAX_NODATA_SHARE
from lulc_core.classes import group_of_classes
from lulc_core.grid import STEP_PX, WINDOW_PX
from lulc_core.model.cascades import refine_threshold
from lulc_core.model.classifier import Classifier
from lulc_core.model.dense import DenseClassifier, refine_windows, windows_at
from lulc_core.model.weights import SHIPPED_DENSE, default_weights_path, weights_sha256
from lulc_core.providers.demo import DEMO_AREAS, DemoProvider
from lulc_core.scene import DateWindow

HELD_OUT = DEMO_AREAS  # the bundled demo areas: evaluation only
RGB = ("B04", "B03", "B02")
SHIFTS_PX = (1, 2, 4, 8)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def window_probs(clf: Classifier, recipe: np.ndarray, tta: bool = False) -> np.ndarray:
    """Calibrated probabilities (rows, cols, classes) of every 16 px window of a recipe image."""
    win = windows_at(recipe, STEP_PX)
    rows, cols = win.shape[:2]
    flat = np.ascontiguousarray(win.reshape(-1, 3, WINDOW_PX, WINDOW_PX))
    return clf.predict_recipe(flat, tta=tta).reshape(rows, cols, -1)


def valid_share(valid: np.ndarray) -> np.ndarray:
    return windows_at(valid[None].astype(np.uint8), STEP_PX).mean(axis=(2, 3, 4))


class Tally:
    """Pooled top-1 agreement of one comparison, by class and by land-cover group."""

    def __init__(self, groups: np.ndarray) -> None:
        self.groups = groups
        self.same = self.same_group = self.n = 0

    def add(self, a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> None:
        ka, kb = a.argmax(-1)[ok], b.argmax(-1)[ok]
        self.same += int((ka == kb).sum())
        self.same_group += int((self.groups[ka] == self.groups[kb]).sum())
        self.n += int(ok.sum())

    def figures(self) -> dict:
        n = max(self.n, 1)
        return {"class_agreement": round(self.same / n, 4), "group_agreement": round(self.same_group / n, 4),
                "windows": self.n}


def eurosat_test_mosaics(dense: DenseClassifier, app: Classifier, refine_below: float, zip_path: Path,
                         side: int = 8) -> dict:
    """Labelled windows in context: the EuroSAT test part (seed-0 split, never used for a choice)
    placed at random into mosaics of ``side`` x ``side`` images; the windows that sit exactly on
    one image carry its label. Accuracy there of the per-window classifier, of the dense pass alone
    (which sees the neighbours too) and with the refine cascade."""
    from lulc_core.model.calibration import softmax
    from lulc_core.model.eurosat_data import load_image_set, stratified_split

    data = load_image_set(zip_path)
    _, _, test = stratified_split(data.labels, seed=0)
    rng = np.random.default_rng(0)
    order = rng.permutation(test)
    per = side * side
    k = WINDOW_PX // STEP_PX  # windows per image side
    groups = np.asarray(group_of_classes(tuple(app.class_names)))
    hits = {"per_window": [0, 0], "dense_alone": [0, 0], "dense_plus_refine": [0, 0]}
    n = refined = 0
    for m in range(len(order) // per):
        pick = order[m * per:(m + 1) * per]
        tiles = data.images[pick].reshape(side, side, WINDOW_PX, WINDOW_PX, 3)
        recipe = np.ascontiguousarray(tiles.transpose(4, 0, 2, 1, 3).reshape(3, side * WINDOW_PX, side * WINDOW_PX))
        y = data.labels[pick]
        pw = app.predict_recipe(np.ascontiguousarray(data.images[pick].transpose(0, 3, 1, 2)), tta=False)
        pd = softmax(dense.logits_recipe(recipe), dense.temperature)[::k, ::k].reshape(per, -1)
        pr = pd.copy()
        low = pd.max(-1) < refine_below
        pr[low] = pw[low]  # the window on one image is that image: the refine cascade gives its own
        refined += int(low.sum())
        for name, p in (("per_window", pw), ("dense_alone", pd), ("dense_plus_refine", pr)):
            hits[name][0] += int((p.argmax(-1) == y).sum())
            hits[name][1] += int((groups[p.argmax(-1)] == groups[y]).sum())
        n += per
    return {"images": n, "mosaic_side": side, "refined_share": round(refined / max(n, 1), 4),
            **{name: {"accuracy": round(h[0] / n, 4), "group_accuracy": round(h[1] / n, 4)}
               for name, h in hits.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="")
    ap.add_argument("--eurosat", default="", help="eurosat_rgb.zip (default: SHARED/data/eurosat/eurosat_rgb.zip)")
    args = ap.parse_args()
    root = Path(args.shared) / "data" / "s2" / "oscd"
    if not root.exists():
        sys.exit(f"{root} not found: this bench needs the shared OSCD scenes (--shared)")
    torch.set_num_threads(args.threads)
    ref = Classifier(tta=False, bf16=False, threads=args.threads)  # the reference, as distilled
    app = Classifier(tta=False, threads=args.threads)  # as the app runs it (bf16) and refines with it
    tta = Classifier(tta=True, bf16=False, tta_threshold=float("inf"), threads=args.threads)
    dense = DenseClassifier(threads=args.threads)
    thr = refine_threshold(weights_sha256(SHIPPED_DENSE), weights_sha256(default_weights_path()))
    if thr is None:
        sys.exit("no shipped refine threshold for these dense weights (scripts/tune_dense_refine.py tune)")
    groups = np.asarray(group_of_classes(tuple(ref.class_names)))
    names = ([f"per_window_moved_{s}px" for s in SHIFTS_PX] + ["per_window_bf16", "per_window_tta_8_views",
             "dense_alone", "dense_plus_refine"]
             + [f"{m}_vs_itself_moved_{s}px" for m in ("dense_alone", "dense_plus_refine") for s in SHIFTS_PX])
    tallies = {name: Tally(groups) for name in names}
    provider = DemoProvider(root, name="oscd")
    t_start = time.time()
    for area, info in sorted(provider.areas().items()):
        if area not in HELD_OUT:
            continue
        aoi = provider.area_aoi(area)
        for day in sorted(info["dates"]):
            scene = provider.fetch(aoi, DateWindow(day, day))
            recipe = eurosat_rgb_recipe(scene.select(RGB), scene.valid)
            # the windows compared: <= 10% missing pixels at every position (the moved ones included)
            shares = [valid_share(scene.valid[s:, s:]) for s in (0,) + SHIFTS_PX]
            r, c = shares[-1].shape  # the most moved image has the fewest windows
            ok = np.zeros(shares[0].shape, bool)
            ok[:r, :c] = np.logical_and.reduce([v[:r, :c] >= 1 - MAX_NODATA_SHARE for v in shares])
            p0 = window_probs(ref, recipe)
            tallies["per_window_bf16"].add(p0, window_probs(app, recipe), ok)
            tallies["per_window_tta_8_views"].add(p0, window_probs(tta, recipe, tta=True), ok)
            maps = {}
            for s in (0,) + SHIFTS_PX:  # window (i, j) of the moved image starts at (16 i + s, 16 j + s)
                dn, valid = scene.data[:, s:, s:], scene.valid[s:, s:]
                if s:
                    ps = window_probs(ref, np.ascontiguousarray(recipe[:, s:, s:]))
                    tallies[f"per_window_moved_{s}px"].add(p0[:r, :c], ps[:r, :c], ok[:r, :c])
                dp = dense.predict_scene(dn, scene.bands, valid)
                ok_s = np.zeros(dp.probs.shape[:2], bool)
                ok_s[:r, :c] = ok[:r, :c]
                rp = refine_windows(dp, dn, scene.bands, app, thr, ok_s)
                maps[s] = {"dense_alone": dp.probs, "dense_plus_refine": rp.probs}
            for m in ("dense_alone", "dense_plus_refine"):
                tallies[m].add(p0, maps[0][m], ok)
                for s in SHIFTS_PX:
                    tallies[f"{m}_vs_itself_moved_{s}px"].add(maps[0][m][:r, :c], maps[s][m][:r, :c], ok[:r, :c])
            log(f"{area} {day}: {int(ok.sum())} windows")
    zip_path = Path(args.eurosat) if args.eurosat else Path(args.shared) / "data" / "eurosat" / "eurosat_rgb.zip"
    labelled = eurosat_test_mosaics(dense, app, thr, zip_path) if zip_path.exists() else {}
    res = {"reference": "per-window classifier, one view, fp32, calibrated; windows every 16 px with <= 10% "
                        "missing pixels at every position compared, both dates of the 5 demo areas",
           "moved": "window (i, j) of the image moved by s px (rows and columns) starts at (16 i + s, 16 j + s); "
                    "*_vs_itself_moved_*: the method's map of the moved image against its map of the image",
           "held_out_areas": list(HELD_OUT), "refine_below": thr,
           "agreement_with_reference": {k: v.figures() for k, v in tallies.items()},
           "eurosat_test_mosaics": labelled,
           "minutes": round((time.time() - t_start) / 60, 1),
           "command": "python bench/eval_dense_ceiling.py --shared ../shared"}
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
