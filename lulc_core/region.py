"""Regions larger than one analysis: ``compare`` as tiles (:mod:`lulc_core.tiles`) on Dask distributed.

This module is the client's side (the driver): the run's configuration, the passes over the tiles,
the per-tile files, the pooled normalisation and thresholds, the change decision per tile. Each tile's
pass is a task on the Dask workers (:mod:`lulc_core.region_tasks`: fetching, the models, the worker's
stash); :mod:`lulc_core.region_outputs` writes the mosaics.

**The same answer as one run.** The single-run method has two global steps, both in the 10 m
spectral change (:mod:`lulc_core.spectral`): the radiometric normalisation of date B onto date A
(fitted on a sample of the jointly valid pixels) and the change threshold (mean + 2 sd of the
magnitude over all comparable pixels). A region computes them over the whole region, in three
passes:

1. *classify* (the heavy pass): fetch both dates, the dense class maps of the tile (cropped to its
   core), and the core's jointly valid pixels with the lowest pixel keys
   (:func:`~lulc_core.spectral.sample_pixels`: a hash of the pixel's absolute position, so the
   region's lowest keys are exactly the pixels one run over the region would sample); the tile's
   change bands are kept on the worker's local disk for the next passes;
2. *measure*: with the normalisation fitted on the region's sample (the lowest keys of all the
   tiles' samples), each tile's change magnitudes (plain and tolerant of 1 px of
   misregistration) and their count, sum and sum of squares over its core;
3. *decide*: with the region's two thresholds, each core cell's share of changed pixels; the
   client then runs the (per-cell) change decision and writes the mosaics.

The conditional change (:mod:`lulc_core.conditional`) is fitted on the same pooled sample as the
normalisation (pass 2's ``norm`` carries both), pass 2 adds its magnitude's sums (its threshold) and
keeps the magnitudes in the worker's stash, pass 3 its cell shares. The deep change evidence
(:mod:`lulc_core.deep_change`) has the same two global steps and follows the same passes: pass 1
adds each core's per-channel sums of the early layers (the region's channel scales), pass 2 the
sums of the scaled distances (the region's thresholds; the distances are kept in the worker's
stash), pass 3 the cells' deep features.

Everything else (the recipe, the dense windows, the refine cascade, the cell status, the joint
decision) is per window or per cell, and the tile geometry makes those equal a single run's.

**Long runs.** Every pass's result is one file per tile under ``OUT/tiles/<run key>/`` written by
the client, so a rerun computes only the tiles still missing (the normalisation, and with it passes
2-3, is recomputed when the set of classified tiles changed). A task is retried
(:data:`RETRIES`), then its tile is reported with its bounds while the rest completes. Progress
lines give tiles done / total, km2/s and the time left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from lulc_core.cells import MAX_CLOUD_SHARE, MAX_NODATA_SHARE
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.classify import ClassMap
from lulc_core.conditional import fit_conditional
from lulc_core.deep_change import ChannelSums, DistanceSums
from lulc_core.region_tasks import MAGNITUDES, clear_stash, tile_classify, tile_decide, tile_measure
from lulc_core.spectral import MIN_PIXELS, PIF_SHARE, SAMPLE_PIXELS, fit_normalisation_samples, threshold_from_sums
from lulc_core.tiles import DENSE_TILE_PX, Tile, plan_tiles

RETRIES = 2  # a failing tile is tried this many more times (on any worker) before it is reported
FORMAT = 4  # of the per-tile files (2: samples by pixel key; 3: deep change evidence; 4: conditional change)
GB = 2**30
#: Tiles keep pixels for the normalisation's sample up to this many times SAMPLE_PIXELS in all.
SAMPLE_MARGIN = 4
#: Memory a worker is given per process when the local cluster is sized (peak ~1.5 GB a tile).
WORKER_MEMORY = 3 * GB


@dataclass(frozen=True)
class RegionConfig:
    """What a tile's tasks need, picklable and free of secrets (credentials come from each worker's
    environment). ``torch_threads``: None = the worker's cores over its task slots."""

    window_a: str
    window_b: str
    provider: str = "demo"
    scenes: str | None = None
    cache_dir: str | None = None
    collection: str = "sentinel-2-l1c"
    max_cloud: float = 100.0
    dense_weights: str | None = None
    dense_tile_px: int = DENSE_TILE_PX
    refine_below: float | None = None
    max_cloud_share: float = MAX_CLOUD_SHARE
    max_nodata_share: float = MAX_NODATA_SHARE
    torch_threads: int | None = None

    def run_key(self) -> str:
        """What determines the tiles' results (not where or how fast they are computed)."""
        parts = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("cache_dir", "torch_threads")}
        parts["format"] = FORMAT
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def local_cluster_size(workers: int | None = None, cores: int | None = None,
                       memory_bytes: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads each) for a local cluster on this machine.

    Workers: ``workers`` if given, else as many as both the cores and the memory allow (one per core,
    at most one per :data:`WORKER_MEMORY` of memory). Each worker runs one tile at a time (one task
    thread) and gives torch its share of the cores (cores // workers): processes, not threads, since
    fetching and the spectral change are single-threaded numpy/GDAL work."""
    cores = cores or os.cpu_count() or 1
    if memory_bytes is None:
        try:
            import psutil

            memory_bytes = psutil.virtual_memory().total
        except ImportError:
            memory_bytes = 4 * GB
    n = workers or max(1, min(cores, memory_bytes // WORKER_MEMORY))
    return n, max(1, cores // n)


@dataclass
class RegionResult:
    """What a region run wrote and found (also written as ``region.json``)."""

    out: Path
    tiles: int
    done: list[str]
    failed: dict[str, dict[str, Any]]
    area_km2: float
    wall_s: float
    outputs: list[Path]
    totals: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0  # tiles whose pass-1 result an earlier run had left

    def summary(self) -> dict[str, Any]:
        return {"tiles": self.tiles, "tiles_done": len(self.done), "tiles_reused": self.skipped,
                "tiles_failed": self.failed, "area_km2": round(self.area_km2, 1), "wall_s": round(self.wall_s, 1),
                "km2_per_s": round(self.area_km2 / max(self.wall_s, 1e-9), 2), **self.totals,
                "outputs": [str(p) for p in self.outputs]}


class _Progress:
    """One line per finished tile: pass, tiles done / total, km2/s, time left."""

    def __init__(self, stream: TextIO | None, total_km2: float) -> None:
        self.stream, self.total_km2, self.t0 = stream, total_km2, time.monotonic()
        self.km2 = 0.0

    def line(self, text: str) -> None:
        if self.stream is not None:
            print(text, file=self.stream, flush=True)

    def tile(self, stage: str, done: int, total: int, km2: float = 0.0) -> None:
        self.km2 += km2
        dt = max(time.monotonic() - self.t0, 1e-9)
        rate = self.km2 / dt
        left = (self.total_km2 - self.km2) / rate if rate > 0 else float("nan")
        eta = f"{left / 60:.1f} min left" if math.isfinite(left) and stage.startswith("1/") else ""
        self.line(f"{stage}: tiles {done}/{total}  {rate:,.1f} km2/s  {eta}".rstrip())


def _save(path: Path, data: dict[str, Any]) -> None:
    """A per-tile result, written whole (temporary file, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in data.items() if not isinstance(v, np.ndarray)}
    with open(tmp, "wb") as f:
        np.savez(f, _meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    os.replace(tmp, path)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        with np.load(path) as z:
            out = {k: z[k] for k in z.files if k != "_meta"}
            out.update(json.loads(bytes(z["_meta"]).decode()))
        return out
    except (OSError, ValueError, KeyError):
        return None


def _run_pass(client, stage: str, fn: Callable, tiles: list[Tile], args: Callable[[Tile], tuple],
              save: Callable[[Tile, dict], None], progress: _Progress, failed: dict[str, dict[str, Any]],
              workers: dict[str, str] | None = None, count_area: bool = False) -> None:
    """Submit ``fn(*args(tile))`` for each tile (retried), saving results as they come."""
    from distributed import as_completed

    if not tiles:
        return
    futures = {}
    for t in tiles:
        where = {"workers": [workers[t.key]], "allow_other_workers": True} if workers and t.key in workers else {}
        fut = client.submit(fn, *args(t), retries=RETRIES, pure=False, key=f"{fn.__name__}-{t.key}-{time.time_ns()}",
                            **where)
        futures[fut] = t
    done = 0
    for fut in as_completed(futures):
        t = futures[fut]
        try:
            result = fut.result()
            if workers is not None:
                who = client.who_has([fut]).get(fut.key)
                if who:
                    workers[t.key] = who[0]
            save(t, result)
        except Exception as exc:  # reported with the tile's bounds; the rest goes on
            failed[t.key] = {"bounds_wgs84": list(t.bounds_wgs84), "crs": t.crs, "pass": stage,
                             "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]}
            progress.line(f"warning: tile {t.key} failed after {RETRIES + 1} tries (W, S, E, N "
                          f"{', '.join(f'{v:.4f}' for v in t.bounds_wgs84)}): {failed[t.key]['error']}")
        done += 1
        progress.tile(stage, done, len(tiles), t.area_km2 if count_area else 0.0)
        fut.release()


def sample_key_bound(core_px: int) -> int:
    """The key under which a tile keeps its pixels for the normalisation's sample: a share of keys
    that leaves :data:`SAMPLE_PIXELS` x :data:`SAMPLE_MARGIN` pixels in ``core_px`` region pixels, so
    the region's lowest SAMPLE_PIXELS keys (the single run's sample) are all kept wherever at least
    1 / SAMPLE_MARGIN of the pixels are comparable, while the samples sent stay bounded."""
    share = min(1.0, SAMPLE_MARGIN * SAMPLE_PIXELS / max(core_px, 1))
    return 2**64 - 1 if share >= 1.0 else int(share * 2**64)


def pool_normalisation(p1: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The normalisation and the conditional change model (:mod:`lulc_core.conditional`, key
    ``conditional``) fitted on the region's sample: the :data:`SAMPLE_PIXELS` lowest pixel keys of the
    tiles' samples, in key order, as one run over the region samples them (None under
    :data:`~lulc_core.spectral.MIN_PIXELS` comparable pixels in the region)."""
    total = sum(int(r["n_valid"]) for r in p1)
    if total < MIN_PIXELS:
        return None
    keys = np.concatenate([np.asarray(r["sample_keys"], np.uint64) for r in p1])
    xa = np.concatenate([r["sample_a"] for r in p1], 1)
    xb = np.concatenate([r["sample_b"] for r in p1], 1)
    order = np.argsort(keys, kind="stable")[:SAMPLE_PIXELS]
    xa, xb = xa[:, order].astype(np.float64), xb[:, order].astype(np.float64)
    gain, offset, noise = fit_normalisation_samples(xa, xb, PIF_SHARE)
    return {"gain": gain.tolist(), "offset": offset.tolist(), "noise": noise.tolist(),
            "conditional": fit_conditional(xa, xb, tuple(EUROSAT_BAND_ORDER)).to_json()}


def run_region(geometry, cfg: RegionConfig, out: str | Path, client, thresholds=None,
               tiles: list[Tile] | None = None, core_px: int | None = None,
               stream: TextIO | None = sys.stderr, name: str = "region") -> RegionResult:
    """Analyse a region (lon/lat polygon) as tiles on a Dask ``client`` and write its outputs to ``out``
    (see :mod:`lulc_core.region_outputs`)."""
    from lulc_core.change import ChangeThresholds
    from lulc_core.region_outputs import RegionWriter

    t0 = time.monotonic()
    thresholds = thresholds or ChangeThresholds()
    tiles = tiles if tiles is not None else plan_tiles(geometry, core_px, dense_tile_px=cfg.dense_tile_px)
    out = Path(out)
    work = out / "tiles" / cfg.run_key()
    work.mkdir(parents=True, exist_ok=True)
    total_km2 = sum(t.area_km2 for t in tiles)
    progress = _Progress(stream, total_km2)
    progress.line(f"region {name}: {total_km2:,.0f} km2 in {len(tiles)} tiles over "
                  f"{len({t.crs for t in tiles})} UTM zone(s); Dask dashboard: {client.dashboard_link}")
    failed: dict[str, dict[str, Any]] = {}
    p1_path = {t.key: work / f"{t.key}.classes.npz" for t in tiles}
    todo = [t for t in tiles if not p1_path[t.key].exists()]
    skipped = len(tiles) - len(todo)
    if skipped:
        progress.line(f"{skipped} tile(s) already classified by an earlier run: reused")
    core_px_total = sum((t.core[2] - t.core[0]) * (t.core[3] - t.core[1]) for t in tiles)
    key_below = sample_key_bound(core_px_total)
    workers: dict[str, str] = {}
    _run_pass(client, "1/3 classify", tile_classify, todo, lambda t: (cfg, t, key_below),
              lambda t, r: _save(p1_path[t.key], r), progress, failed, workers, count_area=True)
    ok = [t for t in tiles if p1_path[t.key].exists()]
    p1 = {t.key: _load(p1_path[t.key]) for t in ok}
    ok = [t for t in ok if p1[t.key] is not None]
    norm = pool_normalisation([p1[t.key] for t in ok])
    for r in p1.values():  # the samples are not needed any more
        if r is not None:
            r.pop("sample_a", None), r.pop("sample_b", None), r.pop("sample_keys", None)
    deep_sums = [ChannelSums.from_json(p1[t.key]["deep_sums"]) for t in ok if p1[t.key].get("deep_sums")]
    sd = sum(deep_sums, ChannelSums()).channel_sd() if len(deep_sums) == len(ok) else None
    channel_sd = None if sd is None else {k: v.tolist() for k, v in sd.items()}
    nkey = hashlib.sha256(json.dumps([norm, channel_sd]).encode()).hexdigest()[:12]
    p2_path = {t.key: work / f"{t.key}.measure-{nkey}.json" for t in ok}
    if norm is not None:
        _run_pass(client, "2/3 measure", tile_measure, [t for t in ok if not p2_path[t.key].exists()],
                  lambda t: (cfg, t, norm, channel_sd), lambda t, r: p2_path[t.key].write_text(json.dumps(r)),
                  progress, failed, workers)
        ok = [t for t in ok if p2_path[t.key].exists()]
        sums = [json.loads(p2_path[t.key].read_text()) for t in ok]
        n = sum(s["n"] for s in sums)
        thr = tuple(threshold_from_sums(n, sum(s[k][0] for s in sums), sum(s[k][1] for s in sums))
                    for k in MAGNITUDES)
        deep_thr = (sum((DistanceSums(s["deep"]) for s in sums), DistanceSums()).thresholds()
                    if channel_sd is not None and all("deep" in s for s in sums) else None)
    else:
        thr, deep_thr = (float("nan"),) * len(MAGNITUDES), None
    tkey = hashlib.sha256(json.dumps([nkey, thr, deep_thr]).encode()).hexdigest()[:12]
    p3_path = {t.key: work / f"{t.key}.decide-{tkey}.npz" for t in ok}
    _run_pass(client, "3/3 decide", tile_decide, [t for t in ok if not p3_path[t.key].exists()],
              lambda t: (cfg, t, norm, thr, channel_sd, deep_thr), lambda t, r: _save(p3_path[t.key], r), progress,
              failed, workers)
    ok = [t for t in ok if p3_path[t.key].exists()]
    try:
        client.run(clear_stash, cfg.run_key())
    except Exception:  # a worker gone: its stash goes with it
        pass
    progress.line(f"writing the mosaics of {len(ok)} tile(s)")
    writer = RegionWriter(out, tiles, thresholds, windows=(cfg.window_a, cfg.window_b))
    for t in ok:
        writer.add(t, tile_change(t, p1[t.key], _load(p3_path[t.key]), thresholds))
    spectral = {"normalisation": norm, "threshold": thr[0], "built_threshold": thr[1],
                "conditional_threshold": thr[2], "deep_thresholds": deep_thr}
    result = RegionResult(out, len(tiles), [t.key for t in ok], failed, sum(t.area_km2 for t in ok),
                          time.monotonic() - t0, [], skipped=skipped)
    result.outputs = writer.finish(name, spectral, failed)
    result.totals = writer.totals()
    result.wall_s = time.monotonic() - t0
    (out / "region.json").write_text(json.dumps({"name": name, "config": dataclasses.asdict(cfg),
                                                  "spectral": spectral, **result.summary()}, indent=2, default=str))
    return result


def tile_change(tile: Tile, p1: dict[str, Any], p3: dict[str, Any], thresholds):
    """The change decision over a tile's core cells (the single run's :func:`~lulc_core.change.compare`)."""
    from lulc_core.change import compare

    grid = tile.core_grid
    names = tuple(p1["class_names"])
    maps = [ClassMap(grid, p1[f"probs_{k}"], p1[f"status_{k}"], p1["area_ha"], names, p1[f"refined_{k}"])
            for k in "ab"]
    return compare(maps[0], maps[1], thresholds, p3["spectral_share"], built_share=p3["built_share"],
                   deep=p3.get("deep"), conditional_share=p3.get("conditional_share")), p3["change_10m"]
