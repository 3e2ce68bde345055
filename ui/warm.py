"""The dashboard's slow first steps done in a background thread, so that a fresh server answers sooner.

A new server process spends its first seconds importing torch and the library (~2.5 s on two cores),
loading both models (~0.6 s) and importing the map and chart packages that the pages need (folium,
leafmap, plotly: ~1.6 s); then it runs the analysis of the demo area the home page offers first
(~1.9 s; :func:`ui.session.prefetch_demo`), which a session asking for it meanwhile waits for instead
of computing it again. :func:`start` does these in order in one daemon thread: started by
``python -m ui.serve`` before the server listens, they overlap with the server's start and the
browser loading the page; started by the home page (plain ``streamlit run app.py``), the later stages
overlap with the person reading it.

A script :func:`wait` s for a stage before importing what it needs, so that a module is never imported
by two threads at once. A stage that fails only logs: the page's own import or load then raises the
error where the page shows it.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time

#: The stages, in order: name -> modules imported (``models`` also loads the shared models). Never a
#: module that declares a Streamlit component (``streamlit_folium``): a component registers itself with
#: the server only when imported by a script, and would be missing from the pages otherwise.
STAGES: dict[str, tuple[str, ...]] = {
    "session": ("torch", "ui.session"),
    "models": (),
    "pages": ("pandas", "folium", "leafmap.foliumap", "plotly.graph_objects", "ui.charts",
              "ui.map_overlays", "ui.offline_map", "ui.compare_maps", "ui.caches", "ui.regions", "ui.date_keys"),
    "demo": (),
}

_LOCK = threading.Lock()
_DONE = {name: threading.Event() for name in STAGES}
_THREAD: list[threading.Thread] = []


def _load_models() -> None:
    from ui.session import get_classifier, get_dense_classifier

    get_classifier()
    get_dense_classifier()


def _prefetch_demo() -> None:
    from ui.session import prefetch_demo

    print(f"lulc: demo analysis of {prefetch_demo()} ready", file=sys.stderr, flush=True)


def _run() -> None:
    for name, modules in STAGES.items():
        t0 = time.perf_counter()
        try:
            for module in modules:
                importlib.import_module(module)
            if name == "models":
                _load_models()
            if name == "demo":
                _prefetch_demo()
            print(f"lulc: warm-up '{name}' done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        except Exception as exc:  # the page that needs it raises it again, where it is shown
            print(f"lulc: warm-up '{name}' failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            _DONE[name].set()


def start() -> bool:
    """Start the warm-up thread once per process; True if this call started it."""
    with _LOCK:
        if _THREAD:
            return False
        _THREAD.append(threading.Thread(target=_run, name="lulc-warm-up", daemon=True))
        _THREAD[0].start()
        return True


def wait(stage: str, timeout_s: float = 300.0) -> bool:
    """Block until ``stage`` has finished (at once when no warm-up was started); False on timeout."""
    if stage not in STAGES:
        raise ValueError(f"unknown warm-up stage {stage!r}; stages: {', '.join(STAGES)}")
    if not _THREAD:
        return True
    return _DONE[stage].wait(timeout_s)
