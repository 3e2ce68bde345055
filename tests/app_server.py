"""Start the dashboard as a real Streamlit server for browser tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Chromium's flags for the browser tests, benchmarks and screenshots (headless, nothing fetched on its own).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(cache_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None,
              timeout_s: float = 120, plain: bool = False) -> tuple[subprocess.Popen, str]:
    """The dashboard (``python -m ui.serve``, as ``make run``) on a free port of 127.0.0.1: no basemap, its own scene cache, no Sentinel
    Hub credentials unless ``extra_env`` gives some; returns (process, URL) once it answers its health
    check, else kills it and raises RuntimeError. ``plain``: ``streamlit run app.py`` instead (no
    warm-up before the first page)."""
    env = dict(os.environ, LULC_BASEMAP="0", LULC_CACHE_DIR=str(cache_dir))
    for k in ("SH_CLIENT_ID", "SH_CLIENT_SECRET"):
        env.pop(k, None)
    env.update(extra_env or {})
    port = free_port()
    launcher = ["streamlit", "run", "app.py"] if plain else ["ui.serve"]
    proc = subprocess.Popen([sys.executable, "-m", *launcher, "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the app did not start within {timeout_s:.0f} s (log: {log_path})")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)
