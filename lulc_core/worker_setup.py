"""Dask worker preload for the local clusters this package starts (``preload=["lulc_core.worker_setup"]``):
the worker process ignores SIGINT, so a Ctrl-C in a terminal (sent to the whole process group) reaches
only the run's own process, which stops between tiles and closes the cluster, instead of killing
workers mid-task and having their tiles reported as failed."""

from __future__ import annotations

import signal
import threading


def ignore_sigint() -> bool:
    """Ignore SIGINT in this process (from its main thread; elsewhere nothing is changed): True if done."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return True


ignore_sigint()
