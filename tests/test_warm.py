"""The background warm-up of a fresh server (ui.warm, python -m ui.serve)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ui import warm

ROOT = Path(__file__).resolve().parent.parent


def test_an_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown warm-up stage 'maps'.*session, models, pages"):
        warm.wait("maps")


def test_the_stages_import_their_modules_and_load_the_models_without_declaring_a_component():
    """In a fresh process: every stage ends, its modules are imported, both models are loaded once, and no
    module of a stage declares a Streamlit component (one declared outside a script never reaches the
    server: the maps would not be drawn)."""
    code = textwrap.dedent("""
        import sys
        import streamlit.components.v1 as v1
        from streamlit.components.v1 import component_registry
        declared = []
        def spy(name, *a, **k):  # a stage that imports a component module is caught here
            declared.append(name)
        component_registry.declare_component = v1.declare_component = spy
        from ui import warm
        assert warm.wait("session") is True  # nothing started yet: returns at once
        assert warm.start() is True and warm.start() is False
        assert all(warm.wait(s, 240) for s in warm.STAGES)
        missing = [m for s in warm.STAGES.values() for m in s if m not in sys.modules]
        assert not missing, missing
        assert "streamlit_folium" not in sys.modules, "a component module was imported by the warm-up"
        assert not declared, declared
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
    log = out.stderr
    for stage in warm.STAGES:
        assert f"warm-up '{stage}' done" in log, log[-3000:]
    assert log.count("loaded the per-window classifier") == 1 and log.count("loaded the dense classifier") == 1
    assert "lulc: demo analysis of" in log and "ready" in log, log[-3000:]


def test_the_same_analysis_asked_twice_at_once_runs_once(monkeypatch):
    """The warm-up's demo analysis and a session's click on the same demo (or two sessions) at the same
    time: the second waits for the first one's result instead of computing it again."""
    import threading

    import ui.session as session

    calls = []
    real = session.run_analysis

    def counting(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(session, "run_analysis", counting)
    session._analysis_store().clear()
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(session.prefetch_demo()), name=f"t{i}")
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert len(results) == 2 and len(calls) == 1, calls
    assert len(session._analysis_store()) == 1
    session.prefetch_demo()  # stored: not run again
    assert len(calls) == 1
