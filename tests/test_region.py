"""Regions as tiles on Dask (issue 19): tiling geometry, the same answer as one run, model loads,
no secret in the tasks, reruns and failing tiles."""

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely import geometry as sg

from lulc_core.grid import LATTICE_PX, PATCH_M
from lulc_core.providers.demo import DemoProvider
from lulc_core.region import RegionConfig, run_region
from lulc_core.region_tasks import malloc_restored, model_loads, tile_classify
from lulc_core.tiles import DENSE_TILE_PX, MAX_REQUEST_PX, default_core_px, plan_tiles, zone_parts

distributed = pytest.importorskip("distributed")

PISA_A, PISA_B = "2015-07-01/2015-07-31", "2018-02-01/2018-02-28"
DENSE_TILE = 128  # a small dense tile (in both runs) so that a 48 km2 demo area makes 12 tiles
CORE = 256  # the strip (below) in 4 tiles of these cores


def test_dense_tile_constant_matches_the_model():
    from lulc_core.model.dense import TILE_PX
    from lulc_core.tiles import DENSE_TILE_PX

    assert TILE_PX == DENSE_TILE_PX


def test_tiles_fit_one_request_and_sit_on_the_zone_lattice():
    region = sg.box(4.0, 43.0, 14.0, 47.5)  # ~10 degrees: three UTM zones
    tiles = plan_tiles(region)
    assert {t.crs for t in tiles} == {"EPSG:32631", "EPSG:32632", "EPSG:32633"}
    core = default_core_px()
    assert core % 768 == 0 and core + 64 + 128 <= MAX_REQUEST_PX
    for t in tiles[::37]:
        assert max(t.grid.width, t.grid.height) <= MAX_REQUEST_PX
        y0, x0, y1, x1 = t.core
        assert y0 % core == 0 and x0 % core == 0  # cores on a fixed lattice from the zone grid's origin
        assert t.grid.transform.c % PATCH_M == 0 and t.grid.transform.f % PATCH_M == 0  # 640 m lattice
        assert t.grid.width % LATTICE_PX == 0 and t.grid.height % LATTICE_PX == 0
        cy0, cx0, cy1, cx1 = t.core_in_tile
        assert cy0 in (0, 64) and cx0 in (0, 64)  # lead halo (0 at the zone grid's edge)
        assert t.grid.height - cy1 in (0, 128) or t.grid.height - cy1 < 128  # trail halo, clipped at the edge
    # a tile's zone is the one its part of the region lies in
    lon = {crs: (part.bounds[0], part.bounds[2]) for crs, part, _ in zone_parts(region)}
    assert lon["EPSG:32632"] == pytest.approx((6.0, 12.0))
    # the areas of the tiles' cores add up to the region's (UTM areas, ~0.1% scale error)
    from lulc_core.aoi import wide_areas, AOI

    with wide_areas():
        km2 = AOI(region).area_km2
    assert sum(t.area_km2 for t in tiles) == pytest.approx(km2, rel=0.01)


def test_region_within_one_zone_gets_the_single_run_grid():
    aoi = DemoProvider().area_aoi("pisa")
    tiles = plan_tiles(aoi.geometry, core_px=CORE, dense_tile_px=DENSE_TILE)
    assert len(tiles) == 12 and all(t.zone_grid == aoi.grid for t in tiles)
    assert sum(t.area_km2 for t in tiles) == pytest.approx(aoi.area_km2, rel=0.005)
    with pytest.raises(ValueError, match="multiple of the dense tile"):
        plan_tiles(aoi.geometry, core_px=320, dense_tile_px=DENSE_TILE)


def strip_aoi():
    """A 1.9 x 8.3 km strip of the Pisa demo (192 x 832 px): two tiles of 768 px cores (the shipped
    dense tile), four of 256 px cores with 128 px dense tiles."""
    from lulc_core.aoi import AOI
    from lulc_core.grid import reproject_geometry

    g = DemoProvider().area_aoi("pisa").grid
    x0, y1 = g.transform.c, g.transform.f
    box = sg.box(x0 + 1921, y1 - 8319, x0 + 3839, y1 - 1)  # inside lattice lines: the grid snaps to them
    return AOI(reproject_geometry(box, g.crs, "EPSG:4326"), name="pisa_strip")


def test_local_provider_gives_a_tile_the_whole_grid_pixels():
    """The local provider's resampling is a function of the pixel, not of the window fetched: a tile's
    scene equals the whole grid's at the same place, bit for bit (GDAL's warper differed by up to 115 DN)."""
    from lulc_core.cache import SceneCache
    from lulc_core.providers.factory import make_provider
    from lulc_core.scene import DateWindow

    provider = make_provider("demo", cache=SceneCache(max_bytes=0))
    aoi = DemoProvider().area_aoi("pisa")
    whole = provider.fetch(aoi, DateWindow.parse(PISA_A))
    for t in plan_tiles(aoi.geometry, core_px=CORE, dense_tile_px=DENSE_TILE)[4::5]:
        part = provider.fetch(t.aoi(), DateWindow.parse(PISA_A))
        (oy, ox), (h, w) = t.offset, (t.grid.height, t.grid.width)
        np.testing.assert_array_equal(part.data, whole.data[:, oy:oy + h, ox:ox + w])
        np.testing.assert_array_equal(part.valid, whole.valid[oy:oy + h, ox:ox + w])


def test_dense_windows_of_a_tile_core_equal_the_whole_scene_on_the_same_pixels():
    """The geometry is exact: on the same pixels, a tile's core windows equal a single run's."""
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.providers.factory import make_provider
    from lulc_core.cache import SceneCache
    from lulc_core.scene import DateWindow

    aoi = strip_aoi()
    scene = make_provider("demo", cache=SceneCache(max_bytes=0)).fetch(aoi, DateWindow.parse(PISA_A))
    t = plan_tiles(aoi.geometry, core_px=CORE, dense_tile_px=DENSE_TILE)[1]  # rows 192-640, core 256-512
    (oy, ox), (h, w) = t.offset, (t.grid.height, t.grid.width)
    end = oy + h  # the whole scene down to the tile's end: every pixel the compared windows read
    dense = DenseClassifier(tile_px=DENSE_TILE, bf16=False)
    full = dense.predict_scene(scene.data[:, :end], scene.bands, scene.valid[:end]).probs
    part = dense.predict_scene(scene.data[:, oy:end, ox:ox + w], scene.bands, scene.valid[oy:end, ox:ox + w],
                               origin_px=t.core_in_tile[:2]).probs
    y0, x0, y1, x1 = t.core_in_tile
    ny, nx = (y1 - y0) // 16, (x1 - x0) // 16
    np.testing.assert_allclose(part[y0 // 16:y0 // 16 + ny - 1, x0 // 16:x0 // 16 + nx - 1],
                               full[(oy + y0) // 16:(oy + y0) // 16 + ny - 1, (ox + x0) // 16:(ox + x0) // 16 + nx - 1],
                               atol=1e-6)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """One run over the strip with the shipped dense tile, as ``compare`` runs it (refining, no TTA)."""
    from lulc_core.cache import SceneCache
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import run_analysis
    from lulc_core.providers.factory import make_provider
    from lulc_core.scene import DateWindow

    cache = tmp_path_factory.mktemp("cache")
    aoi = strip_aoi()
    an = run_analysis(aoi, DateWindow.parse(PISA_A), DateWindow.parse(PISA_B),
                      make_provider("demo", cache=SceneCache(cache)), DenseClassifier(threads=2),
                      classifier=Classifier(threads=2, tta=False))
    return aoi, an, cache


@pytest.fixture(scope="module")
def region_run(single_run, tmp_path_factory):
    """The strip as 2 tiles on a 2-process LocalCluster, then a rerun on the same cluster after one
    tile's first-pass result is deleted."""
    aoi, _, cache = single_run
    out = tmp_path_factory.mktemp("region")
    cfg = RegionConfig(PISA_A, PISA_B, cache_dir=str(cache), torch_threads=1)
    tiles = plan_tiles(aoi.geometry, core_px=DENSE_TILE_PX, dense_tile_px=DENSE_TILE_PX)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            distributed.Client(cl) as client:
        first = run_region(aoi.geometry, cfg, out, client, tiles=tiles, stream=None)
        (out / "tiles" / cfg.run_key() / f"{tiles[0].key}.classes.npz").unlink()
        again = run_region(aoi.geometry, cfg, out, client, tiles=tiles, stream=None)
        loads = client.run(model_loads)
        restored = client.run(malloc_restored)
    return cfg, tiles, out, first, again, loads, restored


def lead_edge_cells(tiles, shape) -> np.ndarray:
    """Cells (of the zone grid) in the first two rows or columns of a core that does not start at the
    zone grid's edge: their windows centred on the core's edge are computed from the lead halo only
    (a single run reads the whole previous dense tile), the one place a tile may differ
    (:mod:`lulc_core.tiles`)."""
    edge = np.zeros(shape, bool)
    for t in tiles:
        y0, x0, y1, x1 = (v // 16 for v in t.core)
        if y0 > 0:
            edge[y0:y0 + 2, x0:x1] = True
        if x0 > 0:
            edge[y0:y1, x0:x0 + 2] = True
    return edge


def test_region_as_tiles_gives_the_single_run_answer(single_run, region_run):
    aoi, an, _ = single_run
    _, tiles, out, result, *_ = region_run
    assert not result.failed and len(result.done) == len(tiles) == 2
    epsg = aoi.grid.crs.split(":")[1]
    with rasterio.open(out / f"change_cells_{epsg}.tif") as ds:
        assert ds.transform == aoi.grid.transform @ __import__("affine").Affine.scale(16)
        state, kind = ds.read(1), ds.read(4)
    ch = an.change
    assert ch.p_counted is not None  # built-up change decided with the deep change evidence, here and on the tiles
    ref_state, ref_kind = (np.where(ch.state == 3, np.nan, x) for x in (ch.state, ch.kind))
    same = ((state == ref_state) | (np.isnan(state) & np.isnan(ref_state))) & \
        ((kind == ref_kind) | (np.isnan(kind) & np.isnan(ref_kind)))
    # The provider's pixels, the normalisation's sample and every window but the cores' lead edges are
    # exact: all cells elsewhere are equal. Measured: Pisa in 12 tiles (128 px dense tiles) 100% equal;
    # this strip 2 cells of 312 differ (kind only), both in the lead edge of the second tile's core.
    edge = lead_edge_cells(tiles, state.shape)
    assert same[~edge].all()
    assert same.mean() >= 0.99
    cell_ha = float(np.nanmax(ch.a.area_ha))
    n_diff = int((~same).sum())
    for name, ref in (("kinds_ha", ch.kind_areas_ha()), ("states_ha", ch.state_areas_ha())):
        for k, v in ref.items():
            if k != "outside":
                assert abs(result.totals[name].get(k, 0.0) - v) <= n_diff * cell_ha + 0.01, (name, k)
    # the outputs
    for name in (f"classes_a_{epsg}.tif", f"classes_b_{epsg}.tif", f"change_10m_{epsg}.tif", "change_cells.vrt",
                 "changed_cells.parquet", "kinds.csv", "transitions.csv", "region.json"):
        assert (out / name).exists(), name
    with rasterio.open(out / f"change_10m_{epsg}.tif") as ds:
        assert ds.profile.get("tiled") and ds.overviews(1) is not None
    # the region-wide steps equal the single run's: the normalisation and the conditional change model are
    # fitted on the same sample, and the thresholds come from the same pixels
    spectral = json.loads((out / "region.json").read_text())["spectral"]
    assert spectral["threshold"] == pytest.approx(an.spectral.threshold, rel=1e-5)
    assert spectral["conditional_threshold"] == pytest.approx(an.conditional.threshold, rel=1e-5)
    np.testing.assert_allclose(spectral["normalisation"]["conditional"]["a_to_b"]["coef"],
                               an.conditional.model.a_to_b.coef, rtol=1e-6, atol=1e-6)
    with rasterio.open(out / "change_cells.vrt") as ds:
        assert ds.crs.to_epsg() == int(epsg) and ds.read(1).shape == state.shape
    import geopandas as gpd

    cells = gpd.read_parquet(out / "changed_cells.parquet")
    assert cells.crs.to_epsg() == 4326 and len(cells) == int((state == 1).sum())


def test_models_load_once_per_worker(region_run):
    *_, loads, _ = region_run
    # 3 first-pass tasks (2 tiles, then 1 again) on 2 worker processes: loaded at most once each
    assert len(loads) == 2 and all(n <= 1 for n in loads.values()) and sum(loads.values()) < 3


def test_workers_undo_the_nannys_malloc_trim_setting(region_run):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers (glibc then maps and zero-fills every
    # array above 128 KiB anew: a tile's classify pass 34% slower); the region tasks restore glibc's
    # dynamic thresholds on every worker that ran one
    *_, restored = region_run
    assert len(restored) == 2 and all(restored.values())


def _python(code: str, **env: str) -> list[str]:
    """The words a fresh Python process running ``code`` prints, with this repository importable and
    ``env`` as its only MALLOC_TRIM_THRESHOLD_ setting (none unless given)."""
    root = Path(__file__).resolve().parent.parent
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    return subprocess.run([sys.executable, "-c", code], env={**base, "PYTHONPATH": str(root), **env},
                          capture_output=True, text=True, check=True, cwd=root).stdout.split()


def test_malloc_thresholds_left_alone_outside_a_nanny():
    code = ("from lulc_core.region_tasks import restore_malloc_thresholds as r, malloc_restored as m; "
            "print(r(), r(), m())")
    assert _python(code) == ["False", "False", "False"]  # the variable unset: glibc's dynamic default is kept
    assert _python(code, MALLOC_TRIM_THRESHOLD_="65536") == ["True", "False", "True"]  # once per process


def test_free_heap_pages_go_back_to_the_system_after_a_task():
    # with glibc's thresholds restored, 1 MiB arrays live on the heap: freed between kept ones they
    # stay resident until release_free_memory (called after every region task) hands them back
    code = ("import numpy as np, os\n"
            "from lulc_core.region_tasks import restore_malloc_thresholds, release_free_memory\n"
            "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') >> 20\n"
            "assert restore_malloc_thresholds()\n"
            "arrays = [np.ones(2 ** 17) for _ in range(256)]\n"
            "kept = arrays[::32]\n"
            "del arrays\n"
            "before = rss()\n"
            "print(release_free_memory(), before - rss())\n")
    done, freed_mb = _python(code, MALLOC_TRIM_THRESHOLD_="65536")
    assert done == "True" and int(freed_mb) >= 150, freed_mb  # measured: 248 MB given back, 0 without the call


def test_rerun_computes_only_missing_tiles(region_run):
    cfg, tiles, out, first, again, *_ = region_run
    assert again.skipped == len(tiles) - 1 and not again.failed
    assert (out / "tiles" / cfg.run_key() / f"{tiles[0].key}.classes.npz").exists()
    assert again.totals == first.totals


def test_a_failing_tile_is_reported_with_its_bounds_and_the_rest_completes(single_run, tmp_path, monkeypatch):
    import lulc_core.region_tasks as region_tasks

    aoi, _, cache = single_run
    tiles = plan_tiles(aoi.geometry, core_px=CORE, dense_tile_px=DENSE_TILE)[2:]  # 2 small tiles keep it short
    bad = tiles[0]
    calls = []
    real = region_tasks.classify_cells

    def flaky(scene, tile_aoi, *a, **kw):
        if tile_aoi.grid == bad.grid:
            calls.append(1)
            raise RuntimeError("simulated worker failure")
        return real(scene, tile_aoi, *a, **kw)

    monkeypatch.setattr(region_tasks, "classify_cells", flaky)
    cfg = RegionConfig(PISA_A, PISA_B, cache_dir=str(cache), dense_tile_px=DENSE_TILE, torch_threads=1,
                       refine_below=0)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cl, \
            distributed.Client(cl) as client:
        result = run_region(aoi.geometry, cfg, tmp_path, client, tiles=tiles, stream=None)
    assert list(result.failed) == [bad.key] and len(result.done) == len(tiles) - 1
    assert len(calls) == 3  # tried, then retried twice
    f = result.failed[bad.key]
    assert f["bounds_wgs84"] == pytest.approx(list(bad.bounds_wgs84)) and "simulated worker failure" in f["error"]
    assert (tmp_path / "changed_cells.parquet").exists()


def test_no_secret_in_the_tasks(monkeypatch):
    """The tasks carry a RegionConfig and a Tile: pickled as Dask ships them, no credential in them."""
    import cloudpickle

    secret = "s3cr3t-client-secret-value"
    monkeypatch.setenv("SH_CLIENT_ID", "client-id-value")
    monkeypatch.setenv("SH_CLIENT_SECRET", secret)
    from lulc_core.cli import build_parser

    args = build_parser().parse_args(["compare", "--aoi", "r.geojson", "--date-a", PISA_A, "--date-b", PISA_B,
                                      "--out", "o", "--provider", "sentinelhub"])
    cfg = RegionConfig(args.date_a, args.date_b, provider=args.provider, collection=args.collection)
    tiles = plan_tiles(DemoProvider().area_aoi("pisa").geometry, core_px=CORE, dense_tile_px=DENSE_TILE)
    blob = cloudpickle.dumps([(tile_classify, cfg, t, 1000) for t in tiles]) + pickle.dumps(cfg)
    assert secret.encode() not in blob and b"client-id-value" not in blob


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compare_on_a_running_cluster_of_two_workers_survives_losing_one(region_run, tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, each with its own scene cache
    (as two machines would have); ``compare --scheduler`` over the strip while the test kills the worker
    running a first-pass tile (no nanny to restart it): its tile is computed on the other worker, the
    run completes, and the answer is the local cluster's. ~40 s on 2 busy cores (3 processes start)."""
    cfg, tiles, local_out, local, *_ = region_run
    root = Path(__file__).resolve().parent.parent
    dask = Path(sys.executable).with_name("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(root), "LULC_CACHE_DIR": str(tmp_path / "client-cache")}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              env=env, **quiet)]
    caches = [tmp_path / f"cache{i}" for i in range(2)]
    try:
        for i, cache in enumerate(caches):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}",
                 "--local-directory", str(tmp_path / f"w{i}")], env={**env, "LULC_CACHE_DIR": str(cache)}, **quiet))
        aoi_file = tmp_path / "strip.geojson"
        aoi_file.write_text(json.dumps({"type": "Feature", "properties": {"name": "pisa_strip"},
                                        "geometry": strip_aoi().geometry.__geo_interface__}))
        out = tmp_path / "out"
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            pids = client.run(os.getpid)
            names = {addr: w["name"] for addr, w in client.scheduler_info()["workers"].items()}
            cli = subprocess.Popen([sys.executable, "-m", "lulc_core", "compare", "--aoi", str(aoi_file), "--date-a",
                                    PISA_A, "--date-b", PISA_B, "--provider", "demo", "--out", str(out),
                                    "--scheduler", address, "--tile-px", str(DENSE_TILE_PX), "--threads", "1"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            killed, deadline = None, time.monotonic() + 120
            while killed is None and cli.poll() is None and time.monotonic() < deadline:
                for addr, keys in client.processing().items():
                    if any(str(k).startswith("tile_classify") for k in keys):
                        os.kill(pids[addr], signal.SIGKILL)
                        killed = addr
                        break
                time.sleep(0.1)
            stdout, stderr = cli.communicate(timeout=240)
        assert cli.returncode == 0, stderr[-2000:]
        assert killed is not None, "no worker was seen running a first-pass tile"
        summary = json.loads(stdout)
        assert summary["tiles_done"] == 2 and not summary["tiles_failed"]
        assert summary["kinds_ha"] == local.totals["kinds_ha"] and summary["states_ha"] == local.totals["states_ha"]
        epsg = tiles[0].crs.split(":")[1]
        with rasterio.open(out / f"change_cells_{epsg}.tif") as a, rasterio.open(local_out / f"change_cells_{epsg}.tif") as b:
            np.testing.assert_array_equal(a.read(), b.read())
        # the workers fetched through their own caches, not the client's
        survivor = caches[1 - int(str(names[killed])[1:])]
        assert list(survivor.glob("*.scene.npz")) and not (tmp_path / "client-cache").exists()
    finally:
        for p in procs:
            p.kill()
            p.wait()
