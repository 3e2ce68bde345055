"""The command line end to end: help, search, fetch and compare, exit codes and messages."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from lulc_core.bands import EUROSAT_BAND_ORDER
from tests.conftest import ROOT
from tests.fake_sh_fixture import *  # noqa: F401,F403

NORCIA = {"type": "Feature", "properties": {"name": "norcia-box"},
          "geometry": {"type": "Polygon", "coordinates": [[[13.080, 42.785], [13.100, 42.785], [13.100, 42.796],
                                                           [13.080, 42.796], [13.080, 42.785]]]}}


def cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "lulc_core", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env or os.environ.copy(), timeout=timeout)


@pytest.fixture()
def aoi_file(tmp_path):
    p = tmp_path / "aoi.geojson"
    p.write_text(json.dumps(NORCIA))
    return p


def test_help_lists_subcommands():
    out = cli("--help")
    assert out.returncode == 0
    for cmd in ("train", "evaluate", "search", "fetch", "compare"):
        assert cmd in out.stdout
    out = cli("compare", "--help")
    for opt in ("--aoi", "--date-a", "--date-b", "--provider", "--scenes", "--out", "--confidence", "--level",
                "--min-spectral"):
        assert opt in out.stdout


def test_search_and_fetch_demo(aoi_file, tmp_path):
    out = cli("search", "--aoi", str(aoi_file), "--date", "2015-01-01/2018-12-31", "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    assert "2015-07-11" in out.stdout and "2017-10-18" in out.stdout and "cloud" in out.stdout
    scene = tmp_path / "scene.tif"
    out = cli("fetch", "--aoi", str(aoi_file), "--date", "2017-10-18/2017-10-18", "--provider", "demo",
              "--out", str(scene), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    with rasterio.open(scene) as ds:
        assert ds.descriptions == EUROSAT_BAND_ORDER and ds.crs.to_epsg() == 32633 and ds.res == (10, 10)
        assert ds.read(4).mean() > 100
    assert (tmp_path / "scene.masks.tif").exists()
    assert "%" in out.stderr  # progress bar


@pytest.mark.parametrize("args, message", [
    (["--date", "2018-05-31/2018-05-01"], "swap the dates"),
    (["--date", "2016-01-01/2016-01-31"], "no demo scene within 2016-01-01/2016-01-31"),
])
def test_fetch_errors_are_one_line(aoi_file, tmp_path, args, message):
    out = cli("fetch", "--aoi", str(aoi_file), *args, "--out", str(tmp_path / "x.tif"), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_fetch_invalid_aoi(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Point", "coordinates": [10, 43]}')
    out = cli("fetch", "--aoi", str(bad), "--date", "2015-07-01/2015-07-31", "--out", str(tmp_path / "x.tif"))
    assert out.returncode == 2 and "must be a polygon" in out.stderr


def test_fetch_through_sentinelhub_cli(aoi_file, tmp_path, fake_sh):
    env = dict(os.environ, SH_CLIENT_ID=fake_sh.client_id, SH_CLIENT_SECRET=fake_sh.client_secret,
               SH_BASE_URL=fake_sh.base_url, SH_TOKEN_URL=fake_sh.token_url)
    out = cli("fetch", "--aoi", str(aoi_file), "--date", "2015-07-01/2015-07-31", "--provider", "sentinelhub",
              "--out", str(tmp_path / "sh.tif"), "--cache-dir", str(tmp_path / "c"), env=env)
    assert out.returncode == 0, out.stderr
    assert "processing units" in out.stdout
    assert fake_sh.count("process") >= 1
    env["SH_CLIENT_SECRET"] = "wrong-secret-value"
    out = cli("fetch", "--aoi", str(aoi_file), "--date", "2015-07-01/2015-07-31", "--provider", "sentinelhub",
              "--out", str(tmp_path / "sh2.tif"), "--cache-dir", str(tmp_path / "c2"), env=env)
    assert out.returncode == 2
    assert "credentials" in out.stderr and "wrong-secret-value" not in out.stderr + out.stdout


def test_compare_writes_every_export_and_matches_the_dashboard_pipeline(aoi_file, tmp_path):
    out_dir = tmp_path / "out"
    out = cli("compare", "--aoi", str(aoi_file), "--date-a", "2015-07-01/2015-07-31", "--date-b",
              "2017-10-01/2017-10-31", "--provider", "demo", "--out", str(out_dir), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["cells"] > 0 and summary["cell_m"] == 160 and summary["level"] == "group"
    assert "99 days" in summary["season_note"]
    for name in ("classes_a.tif", "classes_a.tif.aux.xml", "classes_b.tif", "cells.geojson", "change_10m.tif",
                 "change_cells.tif", "transitions.csv", "class_areas.csv", "group_areas.csv", "report.html"):
        assert (out_dir / name).exists(), name
    report = (out_dir / "report.html").read_text()
    assert "http://" not in report.replace("http://www.w3.org/2000/svg", "") and "<script" not in report
    # the dashboard runs ui.session.analyse -> lulc_core.pipeline.run_analysis: same grids
    from lulc_core.aoi_readers import aoi_from_geojson
    from lulc_core.cache import SceneCache
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import run_analysis
    from lulc_core.providers.factory import make_provider
    from lulc_core.scene import DateWindow

    an = run_analysis(aoi_from_geojson(NORCIA), DateWindow.parse("2015-07-01/2015-07-31"),
                      DateWindow.parse("2017-10-01/2017-10-31"),
                      make_provider("demo", cache=SceneCache(tmp_path / "c3")), DenseClassifier(),
                      classifier=Classifier())  # the dashboard's shared classifier refines, as compare does
    assert an.a.classes.refined is not None and an.a.classes.refined.any()
    with rasterio.open(out_dir / "classes_a.tif") as ds:
        cli_a = ds.read(1).astype(int)
    labels = an.change.a.labels.astype(int)  # the class map of the joint two-date classification
    np.testing.assert_array_equal(np.where(labels < 0, 65535, labels), cli_a)
    with rasterio.open(out_dir / "change_cells.tif") as ds:
        state = ds.read(1)
    np.testing.assert_array_equal(np.where(np.isnan(state), 3, state).astype(int), an.change.state)
    with rasterio.open(out_dir / "change_cells.tif") as ds:
        kind, p_counted = ds.read(4), ds.read(6)
        assert ds.descriptions[5] == "p_counted"
    np.testing.assert_array_equal(np.where(np.isnan(kind), 5, kind).astype(int), an.change.kind)
    assert an.change.p_counted is not None  # both ran with the deep change evidence
    np.testing.assert_allclose(p_counted, an.change.p_counted.astype(np.float32), equal_nan=True)
    with rasterio.open(out_dir / "change_10m.tif") as ds:
        assert ds.res == (10, 10) and ds.descriptions == ("spectral_change_magnitude", "spectral_change")
        np.testing.assert_array_equal(np.nan_to_num(ds.read(2)) > 0, an.spectral.changed)
    assert summary["states_ha"]["changed"] == pytest.approx(an.change.state_areas_ha()["changed"], abs=0.01)


def test_dashboard_downloads_hold_the_files_the_cli_exports(tmp_path):
    import io
    import zipfile

    from lulc_core import season
    from lulc_core.export_set import EXPORT_NAMES, download_bundles, export_all
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.pipeline import run_analysis
    from lulc_core.providers.factory import make_provider

    provider = make_provider("demo")
    wa, wb = season.demo_presets(provider.areas())["norcia"]
    analysis = run_analysis(provider.area_aoi("norcia"), wa, wb, provider, DenseClassifier())
    written = {p.name: p.read_bytes() for p in export_all(analysis, tmp_path / "out")}
    assert set(written) == set(EXPORT_NAMES)
    offered = {}
    for data, name, mime in download_bundles(analysis).values():
        if mime == "application/zip":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                offered.update({n: zf.read(n) for n in zf.namelist()})
        else:
            offered[name] = data
    assert set(offered) == set(written)
    for name in ("cells.geojson", "transitions.csv", "classes_a.tif"):  # same content, not only the same names
        assert offered[name] == written[name], name
