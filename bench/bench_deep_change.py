"""Cost of the deep change evidence (lulc_core.deep_change) on one analysis: the early layers of both
dates, the distances and the cell features, as run_analysis runs them (layers kept once when they fit
KEEP_BYTES), and with the layers run twice, block by block (as a scene too large to keep them, or a region
tile, does). Prints seconds (best of --repeat) and peak RSS growth.

``--wide 2528x5056``: instead, one synthetic pair that large (random DN, half its rows different on
date B), its layers kept only if they fit KEEP_BYTES (as an analysis does): seconds of one run and
its peak RSS growth (what a large AOI costs; the memory the blocks bound).

Usage: python bench/bench_deep_change.py [--area pisa] [--oscd beirut --shared ../shared] [--threads 2]
                                         [--wide HxW]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from lulc_core import deep_change as dc
from lulc_core.model.classifier import Classifier
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow
from lulc_core.spectral import spectral_change


def scenes(provider: DemoProvider, area: str):
    d1, d2 = provider.areas()[area]["dates"]
    aoi = provider.area_aoi(area)
    return aoi, provider.fetch(aoi, DateWindow.parse(f"{d1}/{d1}")), provider.fetch(aoi, DateWindow.parse(f"{d2}/{d2}"))


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def wide(h: int, w: int, threads: int) -> None:
    from lulc_core.bands import EUROSAT_BAND_ORDER

    rng = np.random.default_rng(0)
    bands = tuple(EUROSAT_BAND_ORDER)
    a = rng.integers(500, 3000, (len(bands), h, w), dtype=np.uint16)
    b = a.copy()
    b[:, : h // 2] = rng.integers(500, 3000, (len(bands), h // 2, w), dtype=np.uint16)
    valid = np.ones((h, w), bool)
    clf = Classifier(threads=threads, tta=False)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    dc.deep_change(clf, a, b, bands, valid, (h // 16, w // 16))
    seconds = time.perf_counter() - t0
    print(json.dumps({"synthetic_px": [h, w], "km2": round(h * w * 1e-4, 1), "threads": threads,
                      "seconds": round(seconds, 2),
                      "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--area", default="pisa", help="bundled demo area")
    ap.add_argument("--oscd", default="", help="an OSCD area of ../shared instead (e.g. beirut)")
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parent.parent.parent / "shared"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--wide", default="", metavar="HxW", help="a synthetic pair of this many pixels instead")
    args = ap.parse_args()
    if args.wide:
        return wide(*(int(v) for v in args.wide.lower().split("x")), args.threads)
    if args.oscd:
        provider, area = DemoProvider(Path(args.shared) / "data" / "s2" / "oscd", name="oscd"), args.oscd
    else:
        provider, area = DemoProvider(), args.area
    aoi, a, b = scenes(provider, area)
    clf = Classifier(threads=args.threads, tta=False)
    valid = spectral_change(a, b).valid
    cells = (valid.shape[0] // 16, valid.shape[1] // 16)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dc.deep_change(clf, a.data, b.data, a.bands, valid, cells)  # warm-up
    kept = best_of(args.repeat, lambda: dc.deep_change(clf, a.data, b.data, a.bands, valid, cells))
    rss_kept = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    keep = dc.KEEP_BYTES
    dc.KEEP_BYTES = 0
    twice = best_of(args.repeat, lambda: dc.deep_change(clf, a.data, b.data, a.bands, valid, cells))
    dc.KEEP_BYTES = keep
    km2 = float(np.prod(valid.shape)) * 1e-4
    print(json.dumps({"area": area, "km2": round(km2, 1), "threads": args.threads,
                      "seconds_layers_kept": round(kept, 2), "seconds_layers_twice_in_blocks": round(twice, 2),
                      "s_per_km2_kept": round(kept / km2, 4), "peak_rss_growth_mb": round((rss_kept - rss0) / 1024)}))


if __name__ == "__main__":
    main()
