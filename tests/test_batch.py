"""Regional batches from the dashboard: a child process running ``compare --tiles``, its progress
read from its log, cancel, and a finished output opened as totals, overview maps and cell details."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lulc_core.aoi import AOI
from lulc_core.batch import (batch_status, cancel_batch, cell_at, list_batches, overview_layers, read_region_output,
                             start_batch)
from lulc_core.errors import LulcError

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PISA_SMALL = AOI.from_bbox(10.385, 43.705, 10.405, 43.72, name="pisa small")
WINDOWS = ("2015-07-01/2015-07-31", "2018-02-01/2018-02-28")


def _wait(folder: Path, timeout_s: float = 300) -> object:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        st = batch_status(folder)
        if st.state != "running":
            return st
        time.sleep(0.5)
    raise AssertionError((folder / "batch.log").read_text()[-2000:])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One small demo region run to the end as a batch (one worker)."""
    root = tmp_path_factory.mktemp("batches")
    mp = pytest.MonkeyPatch()
    mp.setenv("LULC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    try:
        folder = start_batch(PISA_SMALL.to_geojson(), PISA_SMALL.name, *WINDOWS, root, workers=1)
        status = _wait(folder)
    finally:
        mp.undo()
    return root, folder, status


def test_a_batch_runs_to_the_end_and_its_output_opens(finished):
    root, folder, status = finished
    assert status.state == "finished" and status.returncode == 0, (folder / "batch.log").read_text()[-2000:]
    assert status.stage == "3/3 decide" and status.done == status.total >= 1 and status.fraction == 1.0
    assert [b.folder for b in list_batches(root)] == [folder]
    out = read_region_output(folder / "out")
    assert out.zones == ["32632"] and out.summary["tiles_failed"] == {}
    kinds = {r["kind"]: float(r["hectares"]) for r in out.kinds}
    assert sum(kinds[k] for k in ("unchanged", "land-cover change", "built-up change", "natural dynamics",
                                  "uncertain")) == pytest.approx(PISA_SMALL.area_ha, rel=0.15)
    layers = overview_layers(folder / "out")
    for name in ("classes_a", "classes_b", "change"):
        (img, ((south, west), (north, east))), = layers[name]
        assert img.dtype == np.uint8 and (img[..., 3] > 0).mean() > 0.2
        assert south < 43.712 < north and west < 10.395 < east
    cell = cell_at(folder / "out", 10.395, 43.712)
    assert cell is not None and cell["class_a"] and cell["class_b"] and cell["kind"]
    assert cell["probs_a"].sum() == pytest.approx(1.0, abs=0.01) and 0 <= cell["p_change"] <= 1
    assert 0 <= cell["p_counted"] <= 1  # the region ran with the deep change evidence
    assert cell_at(folder / "out", 10.6, 43.712) is None  # outside the region


def test_regions_page_shows_a_finished_batch(finished, monkeypatch, tmp_path):
    _, folder, _ = finished
    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LULC_BASEMAP", "0")
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.session_state["region_out"] = str(folder / "out")
    at.switch_page("pages/4_Regions.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("km2 in 1 tiles" in m.value for m in at.markdown)
    assert len(at.dataframe) == 2  # hectares by kind, largest transitions
    assert [b.proto.label for b in at.get("download_button")] == ["Download the report (HTML)"]


def test_a_cancelled_batch_stops_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "cache"))
    big = AOI.from_bbox(9.5, 43.0, 10.9, 44.2, name="tuscany")  # ~17,000 km2: many tiles, long enough to cancel
    # started from a process that ignores SIGINT (as this one does after some tests, or a server may): the
    # batch inherits that disposition and must undo it, or the cancel never reaches the run
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        folder = start_batch(big.to_geojson(), big.name, *WINDOWS, tmp_path / "batches", workers=1)
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(3)
    assert batch_status(folder).state == "running"
    cancel_batch(folder, wait_s=30)
    st = batch_status(folder)
    assert st.state == "cancelled"
    assert json.loads((folder / "exit.json").read_text())["state"] == "cancelled"  # it stopped by itself on SIGINT
    assert "interrupted" in (folder / "batch.log").read_text()


def test_status_from_the_log_and_a_batch_that_died(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "request.json").write_text(json.dumps({"name": "r"}))
    (folder / "batch.log").write_text("region r: 9,000 km2 in 12 tiles\n1/3 classify: tiles 5/12  14.2 km2/s  3.5 min left\n")
    (folder / "pid").write_text("999999999")  # no such process: it ended without writing its exit
    st = batch_status(folder)
    assert (st.stage, st.done, st.total, st.km2_per_s, st.minutes_left) == ("1/3 classify", 5, 12, 14.2, 3.5)
    assert st.state == "failed" and 0.3 < st.fraction < 0.4
    with pytest.raises(LulcError, match="no finished region run"):
        read_region_output(folder)


def test_area_page_offers_a_region_as_a_batch(monkeypatch, tmp_path):
    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LULC_BASEMAP", "0")
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/1_Area_and_dates.py").run()
    at.radio(key="aoi_how").set_value("Type a bounding box").run()
    for label, v in zip(["West (lon)", "South (lat)", "East (lon)", "North (lat)"], [9.5, 43.0, 10.9, 44.2]):
        at.number_input(key=f"bbox_{label}").set_value(v)
    at.button(key="bbox_apply").click().run()
    assert any("too large" in e.value for e in at.error)
    at.text_input(key="region_wb").set_value("2015-01-01/2015-02-01").run()
    at.button(key="region_start").click().run()
    assert any("must start after" in e.value for e in at.error)  # reversed windows: a message, no batch
    assert not (tmp_path / "cache" / "batches").exists()
    at.text_input(key="region_wb").set_value("2018-02-01/2018-02-28").run()
    at.button(key="region_start").click().run()
    started = list((tmp_path / "cache" / "batches").iterdir())
    assert len(started) == 1 and any("Batch started" in s.value for s in at.success)
    cancel_batch(started[0], wait_s=30)
    assert batch_status(started[0]).state == "cancelled"


def _sigint_ignored() -> bool:
    mask = next(line for line in open(f"/proc/{os.getpid()}/status") if line.startswith("SigIgn")).split()[1]
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads signal masks from /proc (Linux)")
def test_the_local_clusters_workers_ignore_sigint_and_this_process_does_not():
    """A Ctrl-C or a batch's cancel reaches the run's own process, which stops between tiles and closes the
    cluster; workers that died of it would report their tiles as failed instead."""
    from distributed import Client

    from lulc_core.cli_region import start_local_cluster

    before = signal.getsignal(signal.SIGINT)
    cluster = start_local_cluster(1)
    try:
        with Client(cluster) as client:
            assert list(client.run(_sigint_ignored).values()) == [True]
    finally:
        cluster.close()
    assert signal.getsignal(signal.SIGINT) is before  # this process's own handling is left as it was
