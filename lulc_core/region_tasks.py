"""The tasks of a region run (:mod:`lulc_core.region`), executed on the Dask workers: one call per tile
and pass, imported by the workers by this module's path.

Each worker fetches its own tiles (local files, or Sentinel Hub with the credentials of the worker's
own environment: the tasks carry a :class:`~lulc_core.region.RegionConfig`, which holds no secret)
through its scene cache, and loads the models once per worker process (:func:`worker_models`, counted
by :func:`model_loads`), never shipped with a task. A tile's change bands are kept on the worker's
local disk between passes (its stash, deleted by :func:`clear_stash`). Every task (:func:`region_task`)
first undoes the Dask nanny's setting of glibc's allocator (:func:`restore_malloc_thresholds`; with it a
tile took a third longer) and ends by releasing the heap's free pages (:func:`release_free_memory`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np

from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.classify import classify_cells
from lulc_core.conditional import ConditionalModel, conditional_magnitude
from lulc_core.deep_change import DeepFeatures, DistanceSums, cell_features, change_distance, channel_sums
from lulc_core.grid import STEP_PX, share_in_blocks
from lulc_core.pipeline import BUILT_TOLERANCE_PX
from lulc_core.spectral import CHANGE_BANDS, SAMPLE_PIXELS, change_magnitude, magnitude_sums, sample_pixels
from lulc_core.tiles import Tile

ALL_BANDS = tuple(EUROSAT_BAND_ORDER)  # the stash keeps every band: the conditional change predicts from all 13

if TYPE_CHECKING:
    from lulc_core.region import RegionConfig

#: glibc's ``mallopt`` parameters (malloc.h), and the thresholds its dynamic default reaches at most
#: on 64-bit systems: mmap above 32 MiB, trim above twice that.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES

T = TypeVar("T")
_LOCK = threading.Lock()
_MALLOC: list[bool] = []
_MODELS: dict[tuple, tuple] = {}
_PROVIDERS: dict[tuple, Any] = {}
_LOADS = [0]


def model_loads() -> int:
    """How many times this process loaded the models (once per worker process and configuration)."""
    return _LOADS[0]


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    """This process's C library (looked up once), None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def restore_malloc_thresholds() -> bool:
    """Undo what Dask's nanny does to glibc's memory allocator, once per process (each region task
    starts with it): True if changed.

    The nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``
    (``distributed.nanny.pre-spawn-environ``), which fixes glibc's mmap threshold at 128 KiB: every
    array above that is mapped, zero-filled page by page and unmapped again. A Beirut tile's classify
    pass took 29.8 s instead of 22.2 s that way (1 thread, scenes from cache). Where the variable is
    set, this gives glibc the thresholds its dynamic default reaches (mmap above 32 MiB, trim above
    64 MiB) at a cost of 0.2-0.3 GB of peak memory per worker (1,456 instead of 1,246 MB for that pass); elsewhere
    (the variable unset, or another C library) it changes nothing."""
    if _MALLOC or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    done = mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) \
        and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    _MALLOC.append(done)
    return done


def release_free_memory() -> bool:
    """Give the free pages of glibc's heap back to the system (``malloc_trim``) at the end of a task,
    so that a worker's memory between tiles is what it holds, not what its last tile left fragmented
    (10,000 km2 in 30 tiles: peak RSS per worker 1.80-1.87 GB without, 1.74 / 1.78 GB with, same time). Only where
    :func:`restore_malloc_thresholds` changed the allocator: True if done."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    if not malloc_restored() or malloc_trim is None:
        return False
    malloc_trim(0)
    return True


def malloc_restored() -> bool:
    """Whether :func:`restore_malloc_thresholds` changed this process's allocator."""
    return bool(_MALLOC) and _MALLOC[0]


def region_task(fn: Callable[..., T]) -> Callable[..., T]:
    """A task of a region run: glibc's thresholds restored before (:func:`restore_malloc_thresholds`),
    the heap's free pages released after (:func:`release_free_memory`). The wrapper keeps the task's
    name and module, so Dask pickles it by reference as before."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        restore_malloc_thresholds()
        try:
            return fn(*args, **kwargs)
        finally:
            release_free_memory()

    return run


def _torch_threads(cfg: RegionConfig) -> int:
    if cfg.torch_threads:
        return cfg.torch_threads
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except (ImportError, ValueError):
        slots = 1
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def worker_models(cfg: RegionConfig) -> tuple[Any, Any]:
    """(dense classifier, refine classifier or None), loaded once per process and kept. Torch's
    threads are set here: Dask's nanny sets OMP_NUM_THREADS=1 in its workers. The per-window
    classifier of the deep change evidence is :func:`worker_classifier` (the refine classifier when
    refinement is on)."""
    refine = cfg.refine_below is None or cfg.refine_below > 0
    key = (cfg.dense_weights, cfg.dense_tile_px, refine, _torch_threads(cfg))
    with _LOCK:
        if key not in _MODELS:
            import torch

            from lulc_core.model.classifier import Classifier
            from lulc_core.model.dense import DenseClassifier

            threads = key[-1]
            torch.set_num_threads(threads)
            dense = DenseClassifier(cfg.dense_weights, threads=threads, tile_px=cfg.dense_tile_px)
            _MODELS[key] = (dense, Classifier(threads=threads, tta=False) if refine else None)
            _LOADS[0] += 1
        return _MODELS[key]


def worker_classifier(cfg: RegionConfig):
    """The per-window classifier (its recipe and early layers give the deep change evidence), loaded
    once per process: the refine classifier when refinement is on."""
    refiner = worker_models(cfg)[1]
    if refiner is not None:
        return refiner
    key = ("classifier", _torch_threads(cfg))
    with _LOCK:
        if key not in _MODELS:
            from lulc_core.model.classifier import Classifier

            _MODELS[key] = Classifier(threads=key[-1], tta=False)
            _LOADS[0] += 1
        return _MODELS[key]


def worker_provider(cfg: RegionConfig):
    """The cached provider of this process (Sentinel Hub credentials from its environment)."""
    from lulc_core.cache import SceneCache
    from lulc_core.providers.factory import make_provider

    key = (cfg.provider, cfg.scenes, cfg.cache_dir, cfg.collection)
    with _LOCK:
        if key not in _PROVIDERS:
            cache = SceneCache(cfg.cache_dir) if cfg.cache_dir else SceneCache()
            _PROVIDERS[key] = make_provider(cfg.provider, scenes=cfg.scenes, cache=cache, collection=cfg.collection)
        return _PROVIDERS[key]


def _stash_root() -> Path:
    """This worker's local folder for the runs' stashes (the system's temporary folder off Dask)."""
    try:
        from distributed import get_worker

        base = Path(get_worker().local_directory)
    except (ImportError, ValueError):
        base = Path(tempfile.gettempdir())
    return base / "lulc-region"


def _stash_dir(cfg: RegionConfig) -> Path:
    """This worker's local folder for the tiles' change bands between passes."""
    return _stash_root() / cfg.run_key()


def _fetch(cfg: RegionConfig, tile: Tile):
    from lulc_core.scene import DateWindow

    provider, aoi = worker_provider(cfg), tile.aoi()
    scenes = []
    for w in (cfg.window_a, cfg.window_b):
        window = DateWindow.parse(w)
        found = provider.search(aoi, window, cfg.max_cloud)
        scenes.append(provider.fetch(aoi, window, None, cfg.max_cloud, None, found=found))
    return aoi, scenes


def _change_bands(cfg: RegionConfig, tile: Tile, scenes=None) -> dict[str, np.ndarray]:
    """Both dates' bands (:data:`ALL_BANDS`) and the comparable pixels of a tile: from this worker's
    stash, else fetched (through the scene cache) and stashed."""
    path = _stash_dir(cfg) / f"{tile.key}.npz"
    if scenes is None:
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError):
            scenes = _fetch(cfg, tile)[1]
    a, b = scenes
    def bands(s) -> np.ndarray:  # the scene's own array when already in that order (no 13-band copy)
        return s.data if tuple(s.bands) == ALL_BANDS else s.data[[list(s.bands).index(n) for n in ALL_BANDS]]

    out = {"a": bands(a), "b": bands(b), "valid": a.valid & b.valid & ~a.cloud & ~b.cloud}
    _write_stash(path, out)
    return out


def _write_stash(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to a stash file atomically (another task may read it); a stash is a
    convenience: if it cannot be written, the next pass computes (or fetches) again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def _stashed(path: Path, made_with: dict[str, Any],
             compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays from a stash file when it was computed with the same ``made_with``
    (JSON-able), else computed and stashed."""
    key = _json_key(made_with)
    try:
        with np.load(path) as z:
            if z["made_with"].tobytes() == key:
                return {k: z[k] for k in z.files if k != "made_with"}
    except (OSError, ValueError, KeyError):
        pass
    out = compute()
    _write_stash(path, {"made_with": np.frombuffer(key, np.uint8), **out})
    return out


@region_task
def tile_classify(cfg: RegionConfig, tile: Tile, key_below: int) -> dict[str, Any]:
    """Pass 1: both dates' class maps over the core cells and a sample of the core's comparable pixels."""
    dense, refiner = worker_models(cfg)
    aoi, scenes = _fetch(cfg, tile)
    rows, cols = tile.core_cells
    out: dict[str, Any] = {"key": tile.key, "pid": os.getpid()}
    for label, scene in zip("ab", scenes):
        cm = classify_cells(scene, aoi, dense, cfg.max_nodata_share, cfg.max_cloud_share, classifier=refiner,
                            refine_below=cfg.refine_below, dense_origin_px=tile.core_in_tile[:2],
                            only_cells=(rows, cols))
        out[f"probs_{label}"] = cm.probs[rows, cols]
        out[f"status_{label}"] = cm.status[rows, cols]
        out[f"refined_{label}"] = (cm.refined[rows, cols] if cm.refined is not None
                                   else np.zeros(cm.status[rows, cols].shape, bool))
        out[f"dates_{label}"] = [d.isoformat() for d in scene.dates]
        out["area_ha"] = cm.area_ha[rows, cols]
        out["class_names"] = list(cm.class_names)
    out["pu"] = float(sum(s.processing_units for s in scenes))
    y0, x0, y1, x1 = tile.core_in_tile
    a, b = scenes
    valid = np.zeros(a.valid.shape, bool)
    valid[y0:y1, x0:x1] = (a.valid & b.valid & ~a.cloud & ~b.cloud)[y0:y1, x0:x1]
    out["n_valid"] = int(valid.sum())
    # the single run's sample (the lowest pixel keys) restricted to this core: pixels with keys under
    # key_below, at most SAMPLE_PIXELS of them; the client keeps the lowest keys of all tiles
    idx, keys = sample_pixels(valid, a.transform, SAMPLE_PIXELS, below=key_below)
    out["sample_keys"] = keys
    for label, s in zip("ab", scenes):
        out[f"sample_{label}"] = s.data.reshape(len(s.bands), -1)[:, idx]
    bands = _change_bands(cfg, tile, scenes)
    out["deep_sums"] = channel_sums(DeepFeatures(worker_classifier(cfg)), bands["a"], bands["b"], ALL_BANDS,
                                    bands["valid"], tile.core_in_tile).to_json()
    return out


#: The per-pixel change magnitudes a tile measures, in order (each with its region-wide threshold).
MAGNITUDES = ("plain", "tolerant", "conditional")


def _magnitudes(cfg: RegionConfig, tile: Tile, norm: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """The core's comparable pixels and its :data:`MAGNITUDES`, with the region's normalisation and
    conditional model (``norm``): from this worker's stash when measured with the same ``norm`` (pass
    2 measures, pass 3 reads), else measured and stashed."""
    def measure() -> dict[str, np.ndarray]:
        from types import SimpleNamespace

        d = _change_bands(cfg, tile)
        y0, x0, y1, x1 = tile.core_in_tile
        gain, offset, noise = (np.asarray(norm[k]) for k in ("gain", "offset", "noise"))  # all 13 bands
        a = SimpleNamespace(data=d["a"], bands=ALL_BANDS)
        b = SimpleNamespace(data=d["b"], bands=ALL_BANDS)
        out = {name: change_magnitude(a, b, d["valid"], gain, offset, noise, tol, CHANGE_BANDS)[y0:y1, x0:x1]
               for name, tol in (("plain", 0), ("tolerant", BUILT_TOLERANCE_PX))}
        core = np.zeros_like(d["valid"])  # the conditional change is measured on the core only
        core[y0:y1, x0:x1] = d["valid"][y0:y1, x0:x1]
        out["conditional"] = conditional_magnitude(d["a"], d["b"], ALL_BANDS, core,
                                                   ConditionalModel.from_json(norm["conditional"]))[y0:y1, x0:x1]
        return {"valid": d["valid"][y0:y1, x0:x1], **out}

    m = _stashed(_stash_dir(cfg) / f"{tile.key}.magnitudes.npz", norm, measure)
    return m["valid"], *(m[k] for k in MAGNITUDES)


def _deep_distance(cfg: RegionConfig, tile: Tile, channel_sd: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """The core's deep change distances (:func:`~lulc_core.deep_change.change_distance`): from this
    worker's stash, else computed from the change bands and stashed."""
    def compute() -> dict[str, np.ndarray]:
        d = _change_bands(cfg, tile)
        sd = {k: np.asarray(v) for k, v in channel_sd.items()}
        return change_distance(DeepFeatures(worker_classifier(cfg)), d["a"], d["b"], ALL_BANDS, d["valid"], sd,
                               tile.core_in_tile)

    return _stashed(_stash_dir(cfg) / f"{tile.key}.deep.npz", channel_sd, compute)


def _json_key(values: dict[str, Any]) -> bytes:
    """A digest of JSON-able ``values`` (what a stashed result was computed with)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).digest()


@region_task
def tile_measure(cfg: RegionConfig, tile: Tile, norm: dict[str, Any],
                 channel_sd: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """Pass 2: count, sum and sum of squares of the core's change magnitudes (:data:`MAGNITUDES`) and,
    with the region's ``channel_sd``, of its deep change distances."""
    valid, *mags = _magnitudes(cfg, tile, norm)
    out: dict[str, Any] = {"key": tile.key, "n": int(valid.sum())}
    for name, m in zip(MAGNITUDES, mags):
        out[name] = list(magnitude_sums(m))
    if channel_sd is not None:
        sums = DistanceSums()
        sums.add(_deep_distance(cfg, tile, channel_sd))
        out["deep"] = sums.sums
    return out


@region_task
def tile_decide(cfg: RegionConfig, tile: Tile, norm: dict[str, Any] | None,
                thresholds: tuple[float, ...], channel_sd: dict[str, list[float]] | None = None,
                deep_thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Pass 3: each core cell's share of changed pixels (one per :data:`MAGNITUDES`, with its region
    threshold in ``thresholds``), its deep change features (with the region's channel scales and
    thresholds; else none) and the core's 10 m change (1 changed, 0 not, 255 not comparable)."""
    y0, x0, y1, x1 = tile.core_in_tile
    if norm is None:  # too few comparable pixels in the region: no spectral evidence anywhere
        valid = _change_bands(cfg, tile)["valid"][y0:y1, x0:x1]
        shares = [share_in_blocks(np.zeros_like(valid), valid, STEP_PX)] * len(MAGNITUDES)
        changed10 = np.where(valid, 0, 255).astype(np.uint8)
    else:
        valid, *mags = _magnitudes(cfg, tile, norm)
        shares, changed10 = [], None
        for m, thr in zip(mags, thresholds):
            with np.errstate(invalid="ignore"):
                changed = m > thr
            shares.append(share_in_blocks(changed, valid, STEP_PX))
            if changed10 is None:
                changed10 = np.where(valid, changed, 255).astype(np.uint8)
    out = {"key": tile.key, "spectral_share": shares[0], "built_share": shares[1], "conditional_share": shares[2],
           "change_10m": changed10}
    if channel_sd is not None and deep_thresholds is not None:
        out["deep"] = cell_features(_deep_distance(cfg, tile, channel_sd), deep_thresholds, STEP_PX)
    return out


def clear_stash(run_key: str) -> bool:
    """Delete this worker's stash of a run (called on every worker at the end)."""
    shutil.rmtree(_stash_root() / run_key, ignore_errors=True)
    return True
