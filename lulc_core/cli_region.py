"""The region path of ``compare`` (:mod:`lulc_core.cli`): when it runs as tiles on Dask
(:mod:`lulc_core.region`), and the run on a local cluster sized to this machine or on a running
scheduler (``--scheduler``), with its summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lulc_core.model.weights import SHIPPED_DENSE


def as_region(args: argparse.Namespace, aoi) -> bool:
    """Whether compare runs as tiles on Dask: asked for, or the AOI is larger than one analysis."""
    from lulc_core.aoi import MAX_LON_SPAN
    from lulc_core.providers.base import MAX_RUN_AREA_KM2

    west, _, east, _ = aoi.bounds
    return bool(args.tiles or args.workers or args.scheduler or args.tile_px or aoi.area_km2 > MAX_RUN_AREA_KM2
                or east - west > MAX_LON_SPAN)


def start_local_cluster(n_workers: int):
    """A LocalCluster of ``n_workers`` processes (one task at a time each) whose workers ignore SIGINT
    (:mod:`lulc_core.worker_setup`): a Ctrl-C (or a batch's cancel) is for this process, which stops
    between tiles and closes the cluster, instead of killing workers mid-task and reporting their
    tiles as failed."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                        preload=["lulc_core.worker_setup"])


def compare_region(args: argparse.Namespace, aoi) -> int:
    """compare over a region: tiles on a Dask cluster (a local one sized to this machine, or --scheduler)."""
    from distributed import Client

    from lulc_core.cache import default_cache_dir
    from lulc_core.change import ChangeThresholds
    from lulc_core.region import RegionConfig, local_cluster_size, run_region
    from lulc_core.tiles import DENSE_TILE_PX

    if args.tile_px is not None and (args.tile_px <= 0 or args.tile_px % DENSE_TILE_PX):
        raise ValueError(f"--tile-px {args.tile_px}: a tile's core must be a positive multiple of the dense "
                         f"classifier's tile, {DENSE_TILE_PX} px (e.g. {DENSE_TILE_PX} or {3 * DENSE_TILE_PX})")

    kw = {k: v for k, v in (("min_spectral", args.min_spectral), ("min_built_spectral", args.min_built_spectral))
          if v is not None}
    thresholds = ChangeThresholds(args.confidence, level=args.level, **kw)
    # on a running cluster (other machines), each worker uses its own scene cache (LULC_CACHE_DIR) and
    # shipped weights unless told otherwise; a local cluster shares this machine's
    cache_dir = args.cache_dir or (None if args.scheduler else str(default_cache_dir()))
    weights = Path(args.dense_weights).resolve()
    cfg = RegionConfig(args.date_a, args.date_b, provider=args.provider,
                       scenes=str(Path(args.scenes).resolve()) if args.scenes else None,
                       cache_dir=str(Path(cache_dir).resolve()) if cache_dir else None, collection=args.collection,
                       max_cloud=args.max_cloud,
                       dense_weights=None if weights == Path(SHIPPED_DENSE).resolve() else str(weights),
                       refine_below=args.refine_below, torch_threads=args.threads)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:
        n, threads = local_cluster_size(args.workers)
        cfg = RegionConfig(**{**cfg.__dict__, "torch_threads": args.threads or threads})
        print(f"note: local Dask cluster of {n} worker process(es), one tile at a time each, "
              f"{cfg.torch_threads} torch thread(s) each", file=sys.stderr)
        cluster = start_local_cluster(n)
        client = Client(cluster)
    try:
        result = run_region(aoi.geometry, cfg, args.out, client, thresholds, core_px=args.tile_px, name=aoi.name)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(json.dumps({"aoi": aoi.name, "area_km2": round(aoi.area_km2, 1), **result.summary()}, indent=2))
    if result.failed:
        print(f"error: {len(result.failed)} tile(s) failed (see tiles_failed); rerun the same command to "
              "compute only the missing tiles", file=sys.stderr)
        return 1
    return 0
