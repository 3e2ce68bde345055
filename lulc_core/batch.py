"""Regional batches: a region too large for one analysis, run by the dashboard as a child process
(``compare --tiles`` on Dask, :mod:`lulc_core.region`), followed and opened from its folder.

A batch is a folder under ``<cache>/batches/`` holding the request (``request.json``, the AOI as
``aoi.geojson``), the run's log (``batch.log``: the region's progress lines), its process id while
it runs, ``exit.json`` when it ended (return code, or cancelled) and the region's outputs in
``out/``. The child runs ``python -m lulc_core.batch run FOLDER``: it inherits the server's
environment (Sentinel Hub credentials never enter a file, a command line or a task graph), and a
Dask scheduler address when the server has one (``LULC_DASK_SCHEDULER``), else it starts a local
cluster sized to the machine. A batch is cancelled with SIGINT to its main process, which stops
between tiles and closes its cluster (the local cluster's workers ignore SIGINT, so no tile is cut
short and reported failed); finished tiles are kept: the same request run again computes only the
missing ones.

Reading a finished output folder (:func:`read_region_output`, :func:`overview_layers`,
:func:`cell_at`) works on any ``compare`` region output, from the dashboard or the command line.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lulc_core.errors import LulcError

BATCHES_DIR = "batches"
PROGRESS_LINE = re.compile(r"^(?P<stage>\d/3 \w+): tiles (?P<done>\d+)/(?P<total>\d+)\s+(?P<rate>[\d.,]+) km2/s"
                           r"(?:\s+(?P<left>[\d.]+) min left)?")


@dataclass
class BatchStatus:
    """Where a batch stands: ``state`` is running, finished, failed or cancelled."""

    folder: Path
    state: str
    stage: str = ""
    done: int = 0
    total: int = 0
    km2_per_s: float = 0.0
    minutes_left: float | None = None
    last_line: str = ""
    returncode: int | None = None
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Overall progress 0..1 over the three passes (classify weighs most)."""
        weights = {"1/3": (0.0, 0.8), "2/3": (0.8, 0.1), "3/3": (0.9, 0.1)}
        start, width = weights.get(self.stage[:3], (0.0, 0.0))
        if self.state == "finished":
            return 1.0
        return start + width * (self.done / self.total if self.total else 0.0)


def batches_root(cache_dir: Path) -> Path:
    return Path(cache_dir) / BATCHES_DIR


def start_batch(aoi_geojson: dict[str, Any], name: str, window_a: str, window_b: str, root: Path,
                provider: str = "demo", scheduler: str | None = None, workers: int | None = None) -> Path:
    """Start a region run in a child process; returns its batch folder (see the module's docstring)."""
    request = {"name": name, "window_a": str(window_a), "window_b": str(window_b), "provider": provider,
               "scheduler": scheduler or "", "workers": workers,
               "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    digest = hashlib.sha256(json.dumps([aoi_geojson, request], sort_keys=True).encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30] or "region"
    folder = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{digest}"
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "aoi.geojson").write_text(json.dumps(aoi_geojson))
    (folder / "request.json").write_text(json.dumps(request, indent=1))
    with open(folder / "batch.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "lulc_core.batch", "run", str(folder)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=Path(__file__).resolve().parent.parent)
    (folder / "pid").write_text(str(proc.pid))
    return folder


def _command(folder: Path) -> list[str]:
    req = json.loads((folder / "request.json").read_text())
    args = ["compare", "--aoi", str(folder / "aoi.geojson"), "--date-a", req["window_a"], "--date-b",
            req["window_b"], "--out", str(folder / "out"), "--provider", req["provider"], "--tiles"]
    scheduler = req.get("scheduler") or os.environ.get("LULC_DASK_SCHEDULER", "")
    if scheduler:
        args += ["--scheduler", scheduler]
    elif req.get("workers"):
        args += ["--workers", str(req["workers"])]
    return args


def run(folder: Path) -> int:
    """The child's work: the region run, then ``exit.json`` (what the dashboard reads)."""
    from lulc_core.cli import main as cli_main

    # a process started by one that ignores SIGINT (a server, a test runner) inherits that: the cancel
    # (SIGINT to this process) must raise KeyboardInterrupt here, whatever the parent did
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code: int
    try:
        code = int(cli_main(_command(folder)) or 0)
        state = "finished" if code == 0 else "failed"
    except KeyboardInterrupt:
        code, state = 130, "cancelled"
        print("cancelled: finished tiles are kept; the same request computes only the missing ones",
              file=sys.stderr, flush=True)
    except SystemExit as exc:  # argparse and the CLI's own exits
        code = int(exc.code or 0) if isinstance(exc.code, int) else 1
        state = "finished" if code == 0 else "failed"
    except Exception as exc:  # noqa: BLE001 - reported in the batch's log and status
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code, state = 1, "failed"
    if (folder / "cancelled").exists():  # the CLI turns Ctrl-C / SIGINT into a return code of its own
        state = "cancelled"
    (folder / "exit.json").write_text(json.dumps({"returncode": code, "state": state}))
    return code


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def batch_status(folder: Path) -> BatchStatus:
    """Read a batch folder: its state and the last progress line of its log."""
    folder = Path(folder)
    request = json.loads((folder / "request.json").read_text()) if (folder / "request.json").exists() else {}
    lines = (folder / "batch.log").read_text(errors="replace").splitlines() if (folder / "batch.log").exists() else []
    st = BatchStatus(folder, "running", request=request, last_line=lines[-1] if lines else "")
    for line in reversed(lines):
        if m := PROGRESS_LINE.match(line.strip()):
            st.stage, st.done, st.total = m["stage"], int(m["done"]), int(m["total"])
            st.km2_per_s = float(m["rate"].replace(",", ""))
            st.minutes_left = float(m["left"]) if m["left"] else None
            break
    if (folder / "exit.json").exists():
        ex = json.loads((folder / "exit.json").read_text())
        st.state, st.returncode = ex["state"], ex["returncode"]
    elif (folder / "cancelled").exists():
        st.state = "cancelled"
    elif (folder / "pid").exists() and not _alive(int((folder / "pid").read_text())):
        st.state = "failed"  # ended without a word (killed)
    return st


def list_batches(root: Path) -> list[BatchStatus]:
    """Every batch under ``root``, newest first."""
    root = Path(root)
    if not root.exists():
        return []
    return [batch_status(f) for f in sorted(root.iterdir(), reverse=True) if (f / "request.json").exists()]


def cancel_batch(folder: Path, wait_s: float = 20.0) -> None:
    """Stop a running batch: SIGINT to its main process (the run stops between tiles, keeps the finished
    ones and closes its cluster, whose workers ignore SIGINT), SIGKILL to its whole process group if it
    has not ended after ``wait_s``."""
    folder = Path(folder)
    if not (folder / "pid").exists():
        return
    pid = int((folder / "pid").read_text())
    (folder / "cancelled").write_text("")
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            if sig == signal.SIGINT:
                os.kill(pid, sig)
            else:
                os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait_s
        while time.time() < deadline and _alive(pid):
            time.sleep(0.2)
        if not _alive(pid):
            return


# -- a finished region output folder -------------------------------------------------------------

@dataclass
class RegionOutput:
    """The summary of a finished region output folder."""

    out: Path
    summary: dict[str, Any]
    kinds: list[dict[str, str]]
    transitions: list[dict[str, str]]
    zones: list[str]  # EPSG codes of the zone files


def region_zones(out: Path) -> list[str]:
    """The EPSG codes of a finished region output's UTM zone files (LulcError if the run did not finish)."""
    out = Path(out)
    if not (out / "region.json").exists():
        raise LulcError(f"{out} holds no finished region run (no region.json); run `compare --tiles` into it "
                        "or wait for its batch to finish")
    return sorted(p.stem.rsplit("_", 1)[1] for p in out.glob("classes_a_*.tif"))


def read_region_output(out: Path) -> RegionOutput:
    """Read ``region.json``, ``kinds.csv`` and ``transitions.csv`` of a region output folder."""
    out = Path(out)
    zones = region_zones(out)

    def rows(name: str) -> list[dict[str, str]]:
        p = out / name
        if not p.exists():
            return []
        with open(p, newline="") as f:
            return list(csv.DictReader(f))

    return RegionOutput(out, json.loads((out / "region.json").read_text()), rows("kinds.csv"),
                        rows("transitions.csv"), zones)


def overview_layers(out: Path, max_side: int = 1200) -> dict[str, list[tuple[np.ndarray, tuple]]]:
    """Overview images of a region output for a map: ``{"classes_a" | "classes_b" | "change": [(rgba, bounds), ...]}``
    (one image per UTM zone, warped to lon/lat, at most ``max_side`` pixels a side)."""
    from lulc_core.region_report import LAYERS, overview_rgba, overview_values
    from lulc_core.render import to_latlon

    layers: dict[str, list[tuple[np.ndarray, tuple]]] = {name: [] for name, _, _ in LAYERS}
    for zone in region_zones(out):
        for name, product, band in LAYERS:
            v, transform, crs = overview_values(Path(out) / f"{product}_{zone}.tif", band, max_side)
            layers[name].append(to_latlon(overview_rgba(name, v), crs, transform, max_side))
    return layers


def cell_at(out: Path, lon: float, lat: float) -> dict[str, Any] | None:
    """What a region output says about the 160 m cell at a lon/lat point (None outside the region):
    each date's class and probabilities, the change state, kind, score, spectral share, P(change) and
    P(counted change) (NaN without the deep change evidence)."""
    import rasterio
    from pyproj import Transformer

    from lulc_core.change import KIND_NAMES, STATE_NAMES, ChangeKind, ChangeState
    from lulc_core.classes import CLASS_NAMES
    from lulc_core.export import CLASS_NODATA, PROB_SCALE

    for zone in region_zones(out):
        x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{zone}", always_xy=True).transform(lon, lat)
        with rasterio.open(Path(out) / f"change_cells_{zone}.tif") as src:
            row, col = src.index(x, y)
            if not (0 <= row < src.height and 0 <= col < src.width):
                continue
            window = ((row, row + 1), (col, col + 1))
            values = [float(b) for b in src.read(window=window)[:, 0, 0]]
            state, score, share, kind, p_change = values[:5]
            p_counted = values[5] if len(values) > 5 else float("nan")  # outputs before p_counted have 5 bands
        if np.isnan(state):
            continue
        cell: dict[str, Any] = {"zone": zone, "row": row, "col": col, "lon": lon, "lat": lat,
                                "state": STATE_NAMES[ChangeState(int(state))],
                                "kind": KIND_NAMES[ChangeKind(int(kind))] if not np.isnan(kind) else "",
                                "score": score, "spectral_share": share, "p_change": p_change,
                                "p_counted": p_counted}
        for date in ("a", "b"):
            with rasterio.open(Path(out) / f"classes_{date}_{zone}.tif") as src:
                v = src.read(window=window)[:, 0, 0]
            ok = int(v[0]) != CLASS_NODATA
            cell[f"class_{date}"] = CLASS_NAMES[int(v[0])] if ok else None
            cell[f"probs_{date}"] = (v[1:].astype(np.float64) / PROB_SCALE) if ok else None
        return cell
    return None


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "run":
        print("usage: python -m lulc_core.batch run FOLDER", file=sys.stderr)
        return 2
    return run(Path(argv[1]))


if __name__ == "__main__":
    raise SystemExit(_main())
