"""A region as tiles on a local Dask cluster: km2/s, wall time and peak RSS per worker, 1 vs 2 workers,
cold and from cache; optionally the same AOI as one single-process run, for the agreement of the answers.

The scene is bench_pipeline's mosaic of real tiles (both Beirut OSCD dates repeated side by side into
a local-provider folder under ``runs/bench/mosaic``, built once). The region is a square on the
640 m lattice of ``--tiles`` x ``--tiles`` default tiles (2,304 px cores, 531 km2 each): 2 x 2 =
2,123 km2 by default, inside the 69 x 59 km mosaic.

- **cold**: an empty scene cache (every tile fetched, reprojected and cached by its worker) and an
  empty output folder; **cached**: the scene cache of the cold run, a new output folder (every tile
  classified again). Each run starts its own LocalCluster (worker processes, one tile at a time each,
  cores // workers torch threads each), so each peak RSS is the run's own. The wall time is
  run_region's (the cluster's start, ~5-10 s, is printed apart).
- ``--agree``: the single-process analysis (lulc_core.pipeline.run_analysis) of the same AOI from a
  cold cache, and the share of 160 m cells whose state and kind equal the region's, and the hectares
  per kind of both.

Needs ``../shared/data/s2`` (the OSCD scenes). Writes the printed figures to docs/bench_region.txt.

Usage: python bench/bench_region.py [--tiles 2 | --km2 10000] [--workers 1,2] [--states cold,cached] [--agree]
       [--out docs/bench_region.txt]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pipeline import (MOSAIC_COPIES, SHARED_S2, WINDOW_A, WINDOW_B, WORK, build_mosaic,  # noqa: E402
                            load_average, rss_mb)

CENTRE = (35.5148, 33.8598)  # Beirut


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (run on each worker)."""
    return rss_mb()[1]


def region_aoi(tiles_per_side: int, km2: float | None = None):
    """A square of ``tiles_per_side`` x ``tiles_per_side`` default tile cores on the 640 m lattice (or of
    ``km2`` square kilometres, its side rounded to the lattice)."""
    from shapely import geometry as sg

    from lulc_core.aoi import AOI
    from lulc_core.grid import lattice_floor, reproject_geometry, utm_epsg
    from lulc_core.tiles import default_core_px

    crs = f"EPSG:{utm_epsg(*CENTRE)}"
    c = reproject_geometry(sg.Point(*CENTRE), "EPSG:4326", crs)
    side = tiles_per_side * default_core_px() * 10.0
    if km2:
        side = round(math.sqrt(km2 * 1e6) / 640) * 640.0
    x0, y0 = lattice_floor(c.x - side / 2), lattice_floor(c.y - side / 2)
    box = sg.box(x0 + 1, y0 + 1, x0 + side - 1, y0 + side - 1)  # inside the lattice lines the grid snaps to
    name = f"beirut mosaic {side / 1000:.1f} km square" if km2 else f"beirut mosaic {tiles_per_side}x{tiles_per_side} tiles"
    return AOI(reproject_geometry(box, crs, "EPSG:4326"), name=name)


def mosaic_copies(side_km: float) -> tuple[int, int]:
    """Copies of the Beirut scene (9.8 x 11.8 km) per side that cover a square of ``side_km`` centred on
    it with a scene to spare (odd, so that the scene stays in the middle)."""
    nx, ny = (math.ceil(side_km / s) + 1 for s in (9.8, 11.8))
    return nx + 1 - nx % 2, ny + 1 - ny % 2


def run_once(aoi, root: Path, workers: int, cache: Path, out: Path) -> dict:
    """One region run on a fresh LocalCluster of ``workers`` processes."""
    import distributed

    from lulc_core.cli_region import start_local_cluster
    from lulc_core.region import RegionConfig, local_cluster_size, run_region

    n, threads = local_cluster_size(workers)
    cfg = RegionConfig(WINDOW_A, WINDOW_B, provider="local", scenes=str(root), cache_dir=str(cache),
                       torch_threads=threads)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    with start_local_cluster(n) as cl, distributed.Client(cl) as client:  # the cluster `lulc compare` starts
        start_s = time.monotonic() - t0
        result = run_region(aoi.geometry, cfg, out, client, name=aoi.name, stream=sys.stderr)
        peaks = client.run(peak_rss_mb)
    return {"workers": n, "torch_threads": threads, "tiles": result.tiles, "failed": len(result.failed),
            "area_km2": round(result.area_km2, 1), "wall_s": round(result.wall_s, 1),
            "cluster_start_s": round(start_s, 1), "km2_per_s": round(result.area_km2 / result.wall_s, 1),
            "peak_rss_mb_per_worker": sorted(round(v) for v in peaks.values()),
            "client_peak_rss_mb": round(rss_mb()[1]), "totals": result.totals}


def agreement(aoi, root: Path, out: Path, cache: Path) -> dict:
    """The single-process run of the same AOI (cold) against the region's change_cells mosaic."""
    import numpy as np
    import rasterio

    from lulc_core.cache import SceneCache
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import run_analysis
    from lulc_core.providers.local import LocalFilesProvider
    from lulc_core.providers.base import CachingProvider
    from lulc_core.scene import DateWindow

    shutil.rmtree(cache, ignore_errors=True)
    provider = CachingProvider(LocalFilesProvider(root), SceneCache(cache, 8 * 2**30))
    t0 = time.monotonic()
    an = run_analysis(aoi, DateWindow.parse(WINDOW_A), DateWindow.parse(WINDOW_B), provider, DenseClassifier(),
                      classifier=Classifier(tta=False))
    wall = time.monotonic() - t0
    ch = an.change
    epsg = aoi.grid.crs.split(":")[1]
    with rasterio.open(out / f"change_cells_{epsg}.tif") as ds:
        state, kind = ds.read(1), ds.read(4)
    ref_state, ref_kind = (np.where(ch.state == 3, np.nan, x) for x in (ch.state, ch.kind))
    eq = lambda x, y: (x == y) | (np.isnan(x) & np.isnan(y))  # noqa: E731
    return {"single_wall_s": round(wall, 1), "single_peak_rss_mb": round(rss_mb()[1]), "cells": int(state.size),
            "same_state": round(float(eq(state, ref_state).mean()), 5),
            "same_kind": round(float(eq(kind, ref_kind).mean()), 5),
            "kinds_ha_single": {k: round(v, 2) for k, v in ch.kind_areas_ha().items() if k != "outside"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiles", type=int, default=2, help="tiles per side of the square region (default 2)")
    ap.add_argument("--km2", type=float, default=None,
                    help="a square of this many km2 instead (e.g. 10000: the mosaic grows to cover it)")
    ap.add_argument("--states", default="cold,cached", help="cold and/or cached runs (default both)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated (default 1,2)")
    ap.add_argument("--agree", action="store_true", help="also the single-process run and the agreement")
    ap.add_argument("--agree-with", default=None, metavar="DIR",
                    help="only the single-process run, against the region output folder DIR of an earlier run")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench_region.txt"))
    args = ap.parse_args()
    if not SHARED_S2.is_dir():
        sys.exit(f"{SHARED_S2} is missing: the bench needs the shared OSCD scenes")
    t0 = time.monotonic()
    aoi = region_aoi(args.tiles, args.km2)
    side_km = math.sqrt(aoi.area_km2)
    needed = mosaic_copies(side_km)  # the bench_pipeline mosaic when it covers the square, else a larger one
    copies = MOSAIC_COPIES if all(n <= m for n, m in zip(needed, MOSAIC_COPIES)) else needed
    root = build_mosaic(WORK / ("mosaic" if copies == MOSAIC_COPIES else f"mosaic_{copies[0]}x{copies[1]}"), copies)
    build_s = time.monotonic() - t0
    lines = [f"bench_region: {aoi.name}, {aoi.area_km2:,.0f} km2 ({aoi.grid.width} x {aoi.grid.height} px), "
             f"{os.cpu_count()} cores, load average before {load_average()}, mosaic ready in {build_s:.0f} s"]
    print(lines[0], flush=True)
    runs = []
    if args.agree_with:
        ag = agreement(aoi, root, Path(args.agree_with), WORK / "single_cache")
        region = json.loads((Path(args.agree_with) / "region.json").read_text())
        lines += [f"single-process run of the same AOI, cold: {ag['single_wall_s']:.1f} s "
                  f"({aoi.area_km2 / ag['single_wall_s']:.1f} km2/s), peak RSS {ag['single_peak_rss_mb']:,} MB; "
                  f"cells with the region's state {ag['same_state']:.3%}, kind {ag['same_kind']:.3%} of {ag['cells']:,}",
                  f"hectares by kind, single: {json.dumps(ag['kinds_ha_single'])}",
                  f"hectares by kind, region: {json.dumps(region['kinds_ha'])}"]
        print("\n".join(lines[1:]), flush=True)
        Path(args.out).with_suffix(".agree.txt").write_text("\n".join(lines) + "\n")
        return
    for n in (int(v) for v in args.workers.split(",")):
        cache = WORK / "region_cache"  # one scene cache: a cold run empties it, a cached run reuses it
        if "cold" in args.states:
            shutil.rmtree(cache, ignore_errors=True)
        for state in args.states.split(","):
            rec = run_once(aoi, root, n, cache, WORK / f"region_out_{n}_{state}")
            rec["state"] = state
            runs.append(rec)
            line = (f"{n} worker(s) x {rec['torch_threads']} torch thread(s), {state:<6}: {rec['tiles']} tiles, "
                    f"{rec['area_km2']:,.0f} km2 in {rec['wall_s']:.1f} s = {rec['km2_per_s']:.1f} km2/s "
                    f"(cluster start {rec['cluster_start_s']:.1f} s); peak RSS per worker "
                    f"{', '.join(f'{v:,} MB' for v in rec['peak_rss_mb_per_worker'])}; failed {rec['failed']}")
            print(line, flush=True)
            lines.append(line)
    by = {(r["workers"], r["state"]): r for r in runs}
    for state in ("cold", "cached"):
        if (1, state) in by and (2, state) in by:
            speedup = by[(1, state)]["wall_s"] / by[(2, state)]["wall_s"]
            lines.append(f"2 workers vs 1, {state}: {speedup:.2f}x faster, efficiency {speedup / 2:.0%}")
            print(lines[-1], flush=True)
    if args.agree:
        last = runs[-1]
        ag = agreement(aoi, root, WORK / f"region_out_{last['workers']}_{last['state']}", WORK / "single_cache")
        lines.append(f"single-process run of the same AOI, cold: {ag['single_wall_s']:.1f} s "
                     f"({aoi.area_km2 / ag['single_wall_s']:.1f} km2/s), peak RSS {ag['single_peak_rss_mb']:,} MB; "
                     f"cells with the region's state {ag['same_state']:.3%}, kind {ag['same_kind']:.3%} "
                     f"of {ag['cells']:,}")
        lines.append(f"hectares by kind, single: {json.dumps(ag['kinds_ha_single'])}")
        lines.append(f"hectares by kind, region: {json.dumps(last['totals']['kinds_ha'])}")
        print("\n".join(lines[-3:]), flush=True)
    lines.append(f"load average after {load_average()}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
