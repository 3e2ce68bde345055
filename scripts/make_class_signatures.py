"""Reproduce lulc_core/data/eurosat_class_signatures.json: the mean 13-band top-of-atmosphere
reflectance of each EuroSAT class, from the 270 original 13-band EuroSAT GeoTIFFs.

Usage: python scripts/make_class_signatures.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np
from rasterio.io import MemoryFile

ROOT = Path(__file__).resolve().parent.parent
EUROSAT_BAND_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    zf = zipfile.ZipFile(Path(args.shared) / "data/eurosat/eurosat_ms_subset270_tifs.zip")
    sums: dict[str, list[np.ndarray]] = {}
    for name in sorted(zf.namelist()):
        if not name.endswith(".tif"):
            continue
        with MemoryFile(zf.read(name)) as mf, mf.open() as ds:
            dn = ds.read().astype(np.float64)
        sums.setdefault(name.split("/")[0], []).append(dn.reshape(13, -1).mean(axis=1) / 10_000)
    out = {
        "source": "EuroSAT 13-band subset (270 original GeoTIFFs), mean TOA reflectance per class",
        "bands": list(EUROSAT_BAND_ORDER),
        "n_images": {k: len(v) for k, v in sorted(sums.items())},
        "mean": {k: [round(float(x), 5) for x in np.mean(v, axis=0)] for k, v in sorted(sums.items())},
        "std": {k: [round(float(x), 5) for x in np.std(v, axis=0)] for k, v in sorted(sums.items())},
    }
    path = ROOT / "lulc_core/data/eurosat_class_signatures.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
