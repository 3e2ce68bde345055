"""The HTML report of a region run (issue 19): written with the other outputs, self-contained, its
figures the files' figures, three overview maps, failed tiles listed with their bounds."""

from __future__ import annotations

import base64
import csv
import io
import re

import pytest
from PIL import Image

from lulc_core.aoi import AOI
from lulc_core.change import ChangeThresholds
from lulc_core.region import RegionConfig, run_region
from lulc_core.region_report import region_report_html, write_region_report
from lulc_core.report import ATTRIBUTION
from lulc_core.joint import shipped_counted_model
from lulc_core.texts import change_rule_text
from lulc_core.tiles import plan_tiles

distributed = pytest.importorskip("distributed")

PISA = AOI.from_bbox(10.37, 43.69, 10.42, 43.73, name="pisa centre")  # 18 km2, some change in it
WINDOWS = ("2015-07-01/2015-07-31", "2018-02-01/2018-02-28")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """A small region of the Pisa demo on an in-process one-worker cluster (about 30 s)."""
    out = tmp_path_factory.mktemp("region")
    cfg = RegionConfig(*WINDOWS, cache_dir=str(tmp_path_factory.mktemp("cache")), torch_threads=2)
    tiles = plan_tiles(PISA.geometry, dense_tile_px=cfg.dense_tile_px)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cl, \
            distributed.Client(cl) as client:
        result = run_region(PISA.geometry, cfg, out, client, tiles=tiles, stream=None, name=PISA.name)
    assert not result.failed
    return out, result, tiles


def _csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _table_rows(page: str, cls: str) -> list[list[str]]:
    table = re.search(rf'<table class="{cls}">(.*?)</table>', page, re.S)
    assert table, f"no table {cls}"
    return [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table.group(1))][1:]


def test_report_is_written_with_the_outputs_and_self_contained(region):
    out, result, _ = region
    path = out / "report.html"
    assert path.exists() and path in result.outputs
    page = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "pisa centre" in page and "EPSG:32632" in page and "1 of 1 done, 0 failed" in page
    assert all(f"window {w}" in page for w in WINDOWS)  # the run passes its date windows
    # the region had the deep change evidence: its built-up change is the counted-change model's
    assert change_rule_text(ChangeThresholds(), shipped_counted_model()) in page and ATTRIBUTION in page
    assert change_rule_text(ChangeThresholds()) not in page
    assert "imagery acquired 2015-07" in page and "imagery acquired 2018-02" in page
    assert f"{result.area_km2:,.1f} km2" in page


def test_headline_and_tables_are_the_files_figures(region):
    out, _, _ = region
    page = (out / "report.html").read_text()
    kinds = {r["kind"]: float(r["hectares"]) for r in _csv(out / "kinds.csv")}
    head = re.search(r'id="changed-ha">([\d,.]+) ha<', page)
    assert head and float(head.group(1).replace(",", "")) == pytest.approx(
        kinds["land-cover change"] + kinds["built-up change"], abs=0.006)
    shown = {r[0]: float(r[1].replace(",", "")) for r in _table_rows(page, "kinds")}
    assert shown == pytest.approx(kinds, abs=0.006) and "state: changed" in shown
    moves = [r for r in _csv(out / "transitions.csv") if r["from_class_a"] != r["to_class_b"]]
    top = max(moves, key=lambda r: float(r["hectares"]))
    assert float(top["hectares"]) > 0, "the demo region should show some transition"
    first = _table_rows(page, "transitions")[0]
    assert first[:3] == [top["from_class_a"], top["to_class_b"], top["kind"]]
    assert float(first[3].replace(",", "")) == pytest.approx(float(top["hectares"]), abs=0.006)
    net = {r[0]: float(r[3].replace(",", "")) for r in _table_rows(page, "groups")}
    assert sum(net.values()) == pytest.approx(0, abs=0.05)  # a group's loss is another's gain


def test_three_overview_maps_with_legends(region):
    out, _, _ = region
    page = (out / "report.html").read_text()
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(pngs) == 3
    for b64 in pngs:
        img = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert img.mode == "RGBA" and 1 < max(img.size) <= 1200
        assert img.getchannel("A").getextrema()[1] == 255  # not empty
    assert "AnnualCrop" in page and "built-up change (counted)" in page
    small = region_report_html(out, name="x", thresholds=ChangeThresholds(), tiles_total=1, tiles_done=[],
                               area_km2=0.0, zones=[], failed={}, max_side=8)
    for b64 in re.findall(r'base64,([A-Za-z0-9+/=]+)"', small):
        assert max(Image.open(io.BytesIO(base64.b64decode(b64))).size) <= 8


def test_failed_tiles_are_listed_with_their_bounds(region, tmp_path):
    out, result, tiles = region
    bad = tiles[0]
    failed = {bad.key: {"bounds_wgs84": list(bad.bounds_wgs84), "crs": bad.crs, "pass": "1/3 classify",
                        "error": "RuntimeError: simulated worker failure"}}
    page = region_report_html(out, name="pisa centre", thresholds=ChangeThresholds(), tiles_total=2,
                              tiles_done=result.done, area_km2=result.area_km2, zones=["EPSG:32632"], failed=failed,
                              windows=WINDOWS)
    rows = _table_rows(page, "failed")
    assert rows == [[bad.key, ", ".join(f"{v:.4f}" for v in bad.bounds_wgs84), "1/3 classify",
                     "RuntimeError: simulated worker failure"]]
    assert "1 of 2 done, 1 failed" in page and f"window {WINDOWS[0]}" in page
    assert "Failed tiles" not in (out / "report.html").read_text()


def test_a_folder_without_kinds_gets_a_clear_message(region, tmp_path):
    out, _, _ = region
    (tmp_path / "kinds.csv").write_text("kind,hectares,cells\nunchanged,1.00,1\n")
    with pytest.raises(ValueError, match="lacks the rows land-cover change"):
        write_region_report(tmp_path, name="x", thresholds=ChangeThresholds(), tiles_total=0, tiles_done=[],
                            area_km2=0.0, zones=[], failed={})
