"""Where one region tile's time goes: the three passes of ``lulc_core.region_tasks`` run in this
process on one default tile (531 km2 core) of bench_region's Beirut mosaic, as one worker of a
2-worker LocalCluster runs them (1 torch thread unless ``--threads``).

Prints seconds for: the tile's fetch (both dates, cold: read, reprojected with its halo and cached;
then from the cache), pass 1's classification split into the dense pass and the refine cascade
(pass 1 run twice: with the refine cascade off, then as shipped, from the same cache), the
refined share of windows, passes 2 and 3 (change magnitudes), and the tile's km2/s.

Needs ``../shared/data/s2`` (the OSCD scenes); builds bench_pipeline's mosaic under ``runs/bench``.

Usage: python bench/bench_tile.py [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_pipeline import MOSAIC_COPIES, SHARED_S2, WINDOW_A, WINDOW_B, WORK, build_mosaic, load_average  # noqa: E402
from bench_region import region_aoi  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a 2-worker cluster gives each 1)")
    args = ap.parse_args()
    if not SHARED_S2.is_dir():
        sys.exit(f"{SHARED_S2} is missing: the bench needs the shared OSCD scenes")
    import numpy as np
    import torch

    from lulc_core import region_tasks as rt
    from lulc_core.cells import CellStatus
    from lulc_core.deep_change import ChannelSums, DeepFeatures, DistanceSums, channel_sums
    from lulc_core.model.cascades import refine_threshold
    from lulc_core.model.weights import SHIPPED_DENSE, default_weights_path, weights_sha256
    from lulc_core.region import RegionConfig, pool_normalisation, sample_key_bound
    from lulc_core.spectral import CHANGE_BANDS, threshold_from_sums
    from lulc_core.tiles import plan_tiles

    torch.set_num_threads(args.threads)
    root = build_mosaic(WORK / "mosaic", MOSAIC_COPIES)
    cache = WORK / "tile_cache"
    shutil.rmtree(cache, ignore_errors=True)
    aoi = region_aoi(1)
    cfg = RegionConfig(WINDOW_A, WINDOW_B, provider="local", scenes=str(root), cache_dir=str(cache),
                       torch_threads=args.threads)
    tile = plan_tiles(aoi.geometry, None, dense_tile_px=cfg.dense_tile_px)[0]
    thr = refine_threshold(weights_sha256(SHIPPED_DENSE), weights_sha256(default_weights_path()))
    print(f"bench_tile: one {tile.area_km2:.0f} km2 tile of the Beirut mosaic, {args.threads} torch thread(s), "
          f"refine below {thr}, load average before {load_average()}", flush=True)
    t = {}
    t0 = time.monotonic()
    rt.worker_models(cfg)
    rt.worker_models(dataclasses.replace(cfg, refine_below=0.0))
    t["models loaded"] = time.monotonic() - t0
    t0 = time.monotonic(); rt._fetch(cfg, tile); t["fetch A + B, cold"] = time.monotonic() - t0
    t0 = time.monotonic(); rt._fetch(cfg, tile); t["fetch A + B, cached"] = time.monotonic() - t0
    bound = sample_key_bound(10**9)
    t0 = time.monotonic()
    rt.tile_classify(dataclasses.replace(cfg, refine_below=0.0), tile, bound)
    t["pass 1, dense pass only (cached fetch included)"] = time.monotonic() - t0
    t0 = time.monotonic()
    p1 = rt.tile_classify(cfg, tile, bound)
    t["pass 1 as shipped (dense + refine)"] = time.monotonic() - t0
    refined = float(np.mean([p1[f"refined_{k}"][p1[f"status_{k}"] == CellStatus.OK].mean() for k in "ab"]))
    norm = pool_normalisation([p1])
    bands = rt._change_bands(cfg, tile)
    t0 = time.monotonic()
    channel_sums(DeepFeatures(rt.worker_classifier(cfg)), bands["a"], bands["b"], CHANGE_BANDS, bands["valid"],
                 tile.core_in_tile)
    t["  of which the deep channel sums (early layers, both dates)"] = time.monotonic() - t0
    sd = ChannelSums.from_json(p1["deep_sums"]).channel_sd()
    channel_sd = {k: v.tolist() for k, v in sd.items()}
    t0 = time.monotonic(); p2 = rt.tile_measure(cfg, tile, norm, channel_sd)
    t["pass 2 (measure, early layers again)"] = time.monotonic() - t0
    thrs = tuple(threshold_from_sums(p2["n"], *p2[k]) for k in ("plain", "tolerant"))
    deep_thr = DistanceSums(p2["deep"]).thresholds()
    t0 = time.monotonic(); rt.tile_decide(cfg, tile, norm, thrs, channel_sd, deep_thr)
    t["pass 3 (decide)"] = time.monotonic() - t0
    rt.clear_stash(cfg.run_key())
    shutil.rmtree(cache, ignore_errors=True)
    for k, v in t.items():
        print(f"  {k:<50s} {v:7.1f} s", flush=True)
    refine_s = t["pass 1 as shipped (dense + refine)"] - t["pass 1, dense pass only (cached fetch included)"]
    tile_s = (t["fetch A + B, cold"] + t["pass 1 as shipped (dense + refine)"] + t["pass 2 (measure, early layers again)"]
              + t["pass 3 (decide)"])
    print(f"  refine cascade alone: {refine_s:.1f} s for {refined:.1%} of the windows re-classified (mean of A, B)")
    print(f"  a tile cold: {tile_s:.1f} s = {tile.area_km2 / tile_s:.1f} km2/s per worker; "
          f"without the refine cascade {tile_s - refine_s:.1f} s = {tile.area_km2 / (tile_s - refine_s):.1f} km2/s")
    print(f"  load average after {load_average()}")


if __name__ == "__main__":
    main()
