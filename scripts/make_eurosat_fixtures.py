"""Reproduce the small real EuroSAT fixtures shipped under tests/fixtures/.

- ``eurosat_recipe_pairs/``: two 13-band GeoTIFFs per class, drawn at random (seed 0) from the
  270-file subset, with the RGB JPEGs of the same names, for the recipe test.
- ``eurosat_test_sample/``: 20 JPEGs per class drawn (seed 0) from the test part of the
  training split (runs/train/split.json), never seen in training or calibration.

Usage: python scripts/make_eurosat_fixtures.py [--shared ../shared] [--split runs/train/split.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--split", default=str(ROOT / "runs/train/split.json"))
    ap.add_argument("--per-class", type=int, default=20)
    args = ap.parse_args()
    eurosat = Path(args.shared) / "data" / "eurosat"
    rgb = zipfile.ZipFile(eurosat / "eurosat_rgb.zip")
    ms = zipfile.ZipFile(eurosat / "eurosat_ms_subset270_tifs.zip")

    out = ROOT / "tests/fixtures/eurosat_recipe_pairs"
    with open(eurosat / "eurosat_ms_subset270_files.csv") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["file"])
    rng = np.random.default_rng(0)
    for cls in sorted({r["class"] for r in rows}):
        files = [r["file"] for r in rows if r["class"] == cls]
        (out / cls).mkdir(parents=True, exist_ok=True)
        for tif in rng.choice(files, 2, replace=False):
            jpg = tif[:-4] + ".jpg"
            (out / tif).write_bytes(ms.read(tif))
            (out / jpg).write_bytes(rgb.read(jpg))

    if Path(args.split).exists():
        test_names = json.loads(Path(args.split).read_text())["test"]
        rng = np.random.default_rng(0)
        out = ROOT / "tests/fixtures/eurosat_test_sample"
        by_class: dict[str, list[str]] = {}
        for n in test_names:
            by_class.setdefault(n.split("/")[0], []).append(n)
        for cls, names in sorted(by_class.items()):
            (out / cls).mkdir(parents=True, exist_ok=True)
            for n in rng.choice(sorted(names), args.per_class, replace=False):
                (out / n).write_bytes(rgb.read(n))
    print("fixtures written")


if __name__ == "__main__":
    main()
