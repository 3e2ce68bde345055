"""Evaluating a classifier on any EuroSAT-layout zip or folder of RGB images."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lulc_core.model.calibration import expected_calibration_error
from lulc_core.model.classifier import Classifier
from lulc_core.model.eurosat_data import load_image_set


def classification_report(labels: np.ndarray, probs: np.ndarray, class_names: list[str],
                          top_confusions: int = 10) -> dict[str, Any]:
    """Accuracy, ECE (15 bins), per-class P/R/F1, confusion matrix and most-confused pairs."""
    n = len(class_names)
    pred = probs.argmax(axis=1)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp = int(cm[i, i]); support = int(cm[i].sum()); predicted = int(cm[:, i].sum())
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[name] = {"precision": p, "recall": r, "f1": f1, "support": support}
    off = [(int(cm[i, j]), class_names[i], class_names[j])
           for i in range(n) for j in range(n) if i != j and cm[i, j] > 0]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    return {
        "accuracy": float((pred == labels).mean()),
        "ece": expected_calibration_error(probs, labels, n_bins=15),
        "n_images": int(len(labels)),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "most_confused": [{"true": t, "predicted": p, "count": c} for c, t, p in off[:top_confusions]],
    }


def evaluate(data: str | Path, classifier: Classifier) -> dict[str, Any]:
    """Classify every image under ``data`` and report; progress goes to stderr."""
    t0 = time.time()
    images = load_image_set(data, progress=lambda i, n: print(f"decoded {i}/{n}", file=sys.stderr, flush=True))
    x = images.images.transpose(0, 3, 1, 2)
    probs = np.empty((len(x), len(classifier.class_names)), dtype=np.float64)
    step = 512
    for i in range(0, len(x), step):
        probs[i:i + step] = classifier.predict_recipe(x[i:i + step])
        print(f"classified {min(i + step, len(x))}/{len(x)}", file=sys.stderr, flush=True)
    report = classification_report(images.labels, probs, classifier.class_names)
    report["tta"] = classifier.tta
    report["seconds"] = round(time.time() - t0, 2)
    return report
