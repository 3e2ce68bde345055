"""Accuracy of weights on one part (train / validation / test) of a training run's split, plain and with TTA.

Used to choose between training cycles on the validation part (docs/MODEL_CARD.md, "Selection").

Usage: python scripts/eval_split_part.py --split-file runs/train3/split.json [--part validation]
           [--weights lulc_core/weights/eurosat_rgb_resnet18.pt ...] [--data ../shared/data/eurosat/eurosat_rgb.zip]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from lulc_core.model.classifier import Classifier
from lulc_core.model.eurosat_data import load_image_set
from lulc_core.model.weights import default_weights_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split-file", required=True, help="RUN_DIR/split.json written by `lulc_core train`")
    ap.add_argument("--part", choices=["train", "validation", "test"], default="validation")
    ap.add_argument("--weights", nargs="+", default=[str(default_weights_path())])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "eurosat" / "eurosat_rgb.zip"))
    args = ap.parse_args()
    data = load_image_set(args.data)
    index = {name: i for i, name in enumerate(data.names)}
    rows = np.array([index[n] for n in json.loads(Path(args.split_file).read_text())[args.part]])
    x = np.ascontiguousarray(data.images[rows].transpose(0, 3, 1, 2))  # NHWC -> NCHW uint8 recipe
    y = data.labels[rows]
    for weights in args.weights:
        for tta in (False, True):
            probs = Classifier(weights, tta=tta, tta_threshold=float("inf")).predict_recipe(x)  # full TTA
            print(json.dumps({"weights": weights, "part": args.part, "n_images": len(y), "tta": tta,
                              "accuracy": round(float((probs.argmax(1) == y).mean()), 4)}), flush=True)


if __name__ == "__main__":
    main()
