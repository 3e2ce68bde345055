"""Choose the TTA cascade threshold on the validation part, then report plain / cascade / full
TTA on the test part once, for fp32 and bf16 inference; writes lulc_core/data/tta_cascade.json.

The split is the training run's own (:func:`lulc_core.model.eurosat_data.stratified_split` with
the seed and fractions stored in the weights' metadata; the part sizes are checked against it).
Rule: the lowest threshold (0.50..0.99 by 0.01, then 0.995, 0.999) whose cascade accuracy on
validation is at least full TTA's on validation, with the precision the app runs
(:data:`lulc_core.model.inference.INFERENCE_BF16`).

Usage: python scripts/tune_tta_cascade.py [--data ../shared/data/eurosat/eurosat_rgb.zip] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from lulc_core.model.calibration import expected_calibration_error, softmax
from lulc_core.model.cascades import TTA_CASCADE_FILE
from lulc_core.model.classifier import Classifier
from lulc_core.model.weights import default_weights_path, file_sha256
from lulc_core.model.eurosat_data import load_image_set, stratified_split
from lulc_core.model.inference import INFERENCE_BF16

CANDIDATES = [round(t, 3) for t in np.arange(0.50, 0.995, 0.01)] + [0.995, 0.999]


def cascade(views: np.ndarray, t_plain: float, t_tta: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Cascade probabilities from per-view logits (8, N, K) and the mask of rows sent to TTA."""
    p = softmax(views[0], t_plain)
    need = p.max(1) < threshold
    p[need] = softmax(views[:, need].mean(0), t_tta)
    return p, need


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "eurosat" / "eurosat_rgb.zip"))
    ap.add_argument("--weights", default=str(default_weights_path()))
    ap.add_argument("--out", default=str(TTA_CASCADE_FILE))
    ap.add_argument("--timing-only", action="store_true",
                    help="re-time plain / cascade / full TTA on the test part with the shipped threshold "
                         "(nothing is chosen again; accuracies are deterministic and kept)")
    args = ap.parse_args()
    data = load_image_set(args.data)
    if args.timing_only:
        retime(args, data)
        return
    ref = Classifier(args.weights)
    split = ref.meta.split
    _, va, te = stratified_split(data.labels, tuple(split.get("fractions", (0.8, 0.1, 0.1))), seed=split.get("seed", 0))
    if (len(va), len(te)) != (split.get("validation"), split.get("test")):
        raise SystemExit(f"split sizes {len(va)}/{len(te)} differ from the weights' {split}")
    x = data.images.transpose(0, 3, 1, 2)
    y = data.labels
    t_plain, t_tta = ref.meta.temperature, ref.meta.temperature_tta
    result: dict = {"weights": Path(args.weights).name, "weights_sha256": file_sha256(Path(args.weights)),
                    "created": dt.date.today().isoformat(), "rule": __doc__.split("Rule: ")[1].split("\n\n")[0].replace("\n", " "),
                    "split": {"seed": split.get("seed"), "validation": len(va), "test": len(te)}, "precision": {}}
    for bf16 in (False, True):
        clf = Classifier(args.weights, bf16=bf16, tta=False)
        views = {part: np.stack([clf._logits(x[idx], (k,)) for k in range(8)]) for part, idx in (("validation", va), ("test", te))}
        rec = {}
        for part, idx in (("validation", va), ("test", te)):
            v = views[part]
            rec[part] = {"plain": float((v[0].argmax(1) == y[idx]).mean()),
                         "full_tta": float((v.mean(0).argmax(1) == y[idx]).mean())}
        rec["validation"]["cascade_by_threshold"] = {
            str(t): [float((cascade(views["validation"], t_plain, t_tta, t)[0].argmax(1) == y[va]).mean()),
                     float(cascade(views["validation"], t_plain, t_tta, t)[1].mean())] for t in CANDIDATES}
        result["precision"]["bf16" if bf16 else "fp32"] = rec
        print(json.dumps({"bf16": bf16, "validation": {k: rec["validation"][k] for k in ("plain", "full_tta")},
                          "test": rec["test"]}), flush=True)
        if bf16 == INFERENCE_BF16:
            shipped_views = views
    # the choice, on validation only
    v_full = result["precision"]["bf16" if INFERENCE_BF16 else "fp32"]["validation"]["full_tta"]
    table = result["precision"]["bf16" if INFERENCE_BF16 else "fp32"]["validation"]["cascade_by_threshold"]
    ok = [t for t in CANDIDATES if table[str(t)][0] >= v_full]
    threshold = ok[0] if ok else max(CANDIDATES, key=lambda t: table[str(t)][0])
    result["threshold"] = threshold
    result["validation"] = {"plain": result["precision"]["bf16" if INFERENCE_BF16 else "fp32"]["validation"]["plain"],
                            "cascade": table[str(threshold)][0], "cascade_tta_share": table[str(threshold)][1],
                            "full_tta": v_full}
    # the test part, once: accuracy and ECE from the logits, seconds from timed runs of the Classifier
    v, yt = shipped_views["test"], y[te]
    test = {}
    for mode, thr in (("plain", 0.0), ("cascade", threshold), ("full_tta", float("inf"))):
        p, need = cascade(v, t_plain, t_tta, thr)
        clf = Classifier(args.weights, tta=mode != "plain", tta_threshold=thr)
        clf.predict_recipe(x[te[:64]])  # warm-up
        t0 = time.perf_counter()
        p_run = clf.predict_recipe(x[te])
        secs = time.perf_counter() - t0
        test[mode] = {"accuracy": float((p.argmax(1) == yt).mean()), "ece": expected_calibration_error(p, yt),
                      "tta_share": float(need.mean()), "seconds": round(secs, 2),
                      "accuracy_of_timed_run": float((p_run.argmax(1) == yt).mean())}
        print(mode, json.dumps(test[mode]), flush=True)
    result["test"] = test
    result["test"]["n_images"] = int(len(te))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"threshold {threshold}; wrote {args.out}")


def retime(args, data) -> None:
    """Update only the seconds of the shipped file's test figures (best of 2 runs each)."""
    result = json.loads(Path(args.out).read_text())
    split = Classifier(args.weights).meta.split
    _, _, te = stratified_split(data.labels, tuple(split.get("fractions", (0.8, 0.1, 0.1))), seed=split.get("seed", 0))
    x = data.images.transpose(0, 3, 1, 2)[te]
    for mode, thr in (("plain", 0.0), ("cascade", result["threshold"]), ("full_tta", float("inf"))):
        clf = Classifier(args.weights, tta=mode != "plain", tta_threshold=thr)
        clf.predict_recipe(x[:64])
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            p = clf.predict_recipe(x)
            times.append(time.perf_counter() - t0)
        if float((p.argmax(1) == data.labels[te]).mean()) != result["test"][mode]["accuracy"]:
            raise SystemExit(f"{mode}: accuracy differs from the shipped figure; run without --timing-only")
        result["test"][mode]["seconds"] = round(min(times), 2)
        print(mode, result["test"][mode], flush=True)
    result["test"]["timed"] = f"{time.strftime('%Y-%m-%d %H:%M')}, load average {' '.join(open('/proc/loadavg').read().split()[:3])}"
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
