"""Dense tile size: seconds to classify both dates of a Beirut AOI from cache, with and without the
refine cascade, at a given ``DenseClassifier(tile_px=...)``; peak RSS of the process.

    python bench/bench_dense_tiles.py --tile-px 768 --side-km 11.3    # ~128 km2 (issue 17's case)
    python bench/bench_dense_tiles.py --tile-px 1536 --side-km 11.3

Best of 3 wall and CPU seconds; cell labels saved to compare tile sizes (``--labels FILE.npy``).
Needs ../shared/data/s2 (the OSCD scenes) and the scene cache bench/bench_pipeline.py fills.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from bench.bench_pipeline import SHARED_S2, WINDOW_A, WINDOW_B, WORK, square_aoi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tile-px", type=int, default=768)
    ap.add_argument("--side-km", type=float, default=11.3)
    ap.add_argument("--labels", default="")
    args = ap.parse_args()
    from lulc_core.cache import SceneCache
    from lulc_core.classify import classify_cells
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.providers.base import CachingProvider
    from lulc_core.providers.local import LocalFilesProvider
    from lulc_core.scene import DateWindow

    provider = CachingProvider(LocalFilesProvider(SHARED_S2), SceneCache(WORK / "cache_small", 2**31))
    aoi = square_aoi(35.5148, 33.8598, args.side_km, "beirut")
    scenes = [provider.fetch(aoi, DateWindow.parse(w)) for w in (WINDOW_A, WINDOW_B)]
    dense, clf = DenseClassifier(tile_px=args.tile_px), Classifier()
    for refine in (True, False):
        runs = []
        for _ in range(3):
            c0, w0 = time.process_time(), time.perf_counter()
            maps = [classify_cells(s, aoi, dense, classifier=clf if refine else None) for s in scenes]
            runs.append((time.perf_counter() - w0, time.process_time() - c0))
        wall, cpu = min(runs)
        print(f"tile {args.tile_px} px, refine {'on ' if refine else 'off'}: {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"(best of 3), {aoi.area_km2:.0f} km2, windows refined {[round(m.refined_share, 3) for m in maps]}")
        if args.labels and refine:
            np.save(args.labels, np.stack([m.labels for m in maps]))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
