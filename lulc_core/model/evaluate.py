"""Evaluating a classifier on any EuroSAT-layout zip or folder of RGB images.

Images are checked by their headers before any is decoded (:func:`check_images`): each must be a
64 x 64 RGB image of at most :data:`MAX_IMAGE_BYTES`, so a decompression bomb is refused unread and
greyscale images are named instead of being silently turned into grey RGB.
"""

from __future__ import annotations

import io
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lulc_core.errors import InputImageError
from lulc_core.model.calibration import expected_calibration_error
from lulc_core.model.classifier import Classifier
from lulc_core.model.eurosat_data import _label_of, load_image_set

#: Largest single image file accepted (a EuroSAT 64 x 64 JPEG is about 3 KB).
MAX_IMAGE_BYTES = 4 * 2**20
IMAGE_SIZE = (64, 64)
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def _members_with_size(path: Path):
    """(name, size in bytes, read()) of every file under a folder or in a zip, sizes from the listing."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                yield p.relative_to(path).as_posix(), p.stat().st_size, p.read_bytes
    elif zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if not info.is_dir():
                yield info.filename, info.file_size, (lambda i=info: zf.read(i))
    else:
        raise InputImageError(f"{path}: not a folder or a zip file; give a EuroSAT-layout zip or folder "
                              "(<Class>/<Class>_<n>.jpg)")


def check_images(data: str | Path) -> int:
    """Check every image's file size, pixel size and mode from its header, decoding none.

    Returns the number of images; raises :class:`InputImageError` naming the first offending file
    (and how many are like it) when any is too large, not 64 x 64, greyscale or unreadable.
    """
    from PIL import Image

    path = Path(data)
    if not path.exists():
        raise InputImageError(f"{path}: no such file or folder")
    n, grey = 0, []
    for name, size, read in _members_with_size(path):
        if _label_of(name) is None:
            continue
        n += 1
        if size > MAX_IMAGE_BYTES:
            raise InputImageError(f"{name} is {size / 2**20:.1f} MB; EuroSAT images are 64 x 64 px (a few KB): "
                                  "refused before decoding")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(read())) as im:  # reads the header only
                    dims, mode = im.size, im.mode
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputImageError(f"{name} declares an enormous image (a decompression bomb); refused before "
                                  "decoding: EuroSAT images are 64 x 64 px") from None
        except Exception as exc:  # PIL raises several types for damaged files
            why = "unknown or damaged format" if "cannot identify" in str(exc) else " ".join(str(exc).split())[:120]
            raise InputImageError(f"{name} is not a readable image ({why}); EuroSAT images are 64 x 64 px "
                                  "JPEG / PNG / TIFF") from None
        if dims != IMAGE_SIZE:
            raise InputImageError(f"{name} is {dims[0]} x {dims[1]} px; the model takes 64 x 64 px EuroSAT images "
                                  "(refused before decoding)")
        if mode in _GREY_MODES:
            grey.append(name)
    if grey:
        raise InputImageError(f"{len(grey)} of {n} images are greyscale (e.g. {grey[0]}); the model needs RGB "
                              "(bands B04, B03, B02): evaluate on the EuroSAT RGB images")
    return n


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
    check_images(data)
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
