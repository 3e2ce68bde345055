"""A shared server that stays fair: a bounded number of analyses at once, in arrival order, and a
processing-unit budget per session and per day.

* :class:`AnalysisSlots`: at most ``slots`` analyses run together; the others wait first come,
  first served, and are told their place in the queue while they wait. On a few cores running
  every analysis at once only makes all of them late; one after the other, the first is ready
  early and the last no later.
* :class:`PUBudget`: Sentinel Hub processing units a visitor may spend, per session and per day
  for the whole server (the day's ledger is a small JSON file beside the scene cache, locked so
  several server processes share it). A fetch is checked against its estimate before any request
  is sent and charged what the service reported (``x-processingunits-spent``) afterwards. Cached
  scenes cost nothing and are never refused.
* :class:`BudgetedProvider`: a provider wrapper that applies a :class:`PUBudget` (put it *inside*
  the caching wrapper so that cache hits never reach it).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from lulc_core.errors import BudgetError, LulcError
from lulc_core.providers.sentinelhub.costs import estimate_fetch_pu

#: ``on_wait(place)``: ``place`` analyses are ahead of this one (1 = next to start).
WaitFn = Callable[[int], None]


class AnalysisSlots:
    """At most ``slots`` holders at once; waiters are served in arrival order."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise LulcError(f"the number of analyses at once must be at least 1, got {slots}")
        self.slots = slots
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()  # tickets waiting, oldest first
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @contextmanager
    def turn(self, on_wait: WaitFn | None = None, poll_s: float = 0.5) -> Iterator[None]:
        """Wait for a slot, then hold it. While waiting, ``on_wait(place)`` is called at once and
        every ``poll_s`` seconds (place 1: next to start); raising from it leaves the queue."""
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while not (self._running < self.slots and self._queue[0] is ticket):
                    if on_wait is not None:
                        place = self._queue.index(ticket) + 1
                        self._cond.release()
                        try:
                            on_wait(place)  # may raise (a cancelled page): the ticket leaves the queue
                        finally:
                            self._cond.acquire()
                    self._cond.wait(poll_s)
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.popleft()
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


@dataclass
class SessionSpend:
    """Processing units one session has spent (kept by the caller, e.g. in the session state)."""

    pu: float = 0.0


@dataclass
class PUBudget:
    """Limits in processing units (None: no limit) and the file holding each day's total."""

    per_session: float | None
    per_day: float | None
    ledger: Path
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.timezone.utc).date())

    def spent_today(self) -> float:
        with self._locked() as data:
            return float(data.get(self.today().isoformat(), 0.0))

    def check(self, session: SessionSpend, estimate: float) -> None:
        """Refuse (:class:`~lulc_core.errors.BudgetError`) a fetch of ``estimate`` PU that would pass
        the session's or the day's limit; nothing is charged."""
        if self.per_session is not None and session.pu + estimate > self.per_session:
            raise BudgetError(
                f"this fetch needs about {estimate:.1f} processing units and this session has "
                f"{max(self.per_session - session.pu, 0):.1f} of its {self.per_session:g} left; "
                "choose a smaller area, use cached dates or the bundled demo data, or ask the operator "
                "to raise LULC_PU_PER_SESSION")
        if self.per_day is not None:
            spent = self.spent_today()
            if spent + estimate > self.per_day:
                raise BudgetError(
                    f"this fetch needs about {estimate:.1f} processing units and the server has "
                    f"{max(self.per_day - spent, 0):.1f} of today's {self.per_day:g} left (UTC day); "
                    "try again tomorrow, use cached dates or the bundled demo data, or ask the operator "
                    "to raise LULC_PU_PER_DAY")

    def charge(self, session: SessionSpend, pu: float) -> None:
        """Add what a fetch cost to the session and to today's ledger."""
        session.pu += pu
        with self._locked(write=True) as data:
            day = self.today().isoformat()
            data[day] = float(data.get(day, 0.0)) + pu
            for old in sorted(data)[:-31]:  # a month of days is plenty
                data.pop(old)

    @contextmanager
    def _locked(self, write: bool = False) -> Iterator[dict[str, Any]]:
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with open(self.ledger, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            fh.seek(0)
            try:
                data = json.loads(fh.read() or "{}")
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:  # a damaged ledger is started again (it only ever limits spending)
                data = {}
            yield data
            if write:
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(data))


class BudgetedProvider:
    """Wraps a provider: each fetch is checked against the budget first and charged after."""

    def __init__(self, provider: Any, budget: PUBudget, session: SessionSpend) -> None:
        self.provider, self.budget, self.session = provider, budget, session
        self.name = provider.name
        self.collection = provider.collection

    def search(self, aoi, window, max_cloud: float = 100.0):
        return self.provider.search(aoi, window, max_cloud)

    def fetch(self, aoi, window, acquisition=None, max_cloud: float = 100.0, progress=None, found=None):
        n = 1 if acquisition is not None or not found else len(found)
        self.budget.check(self.session, estimate_fetch_pu(aoi.grid, acquisitions=n))
        scene = self.provider.fetch(aoi, window, acquisition, max_cloud, progress, found=found)
        self.budget.charge(self.session, float(scene.processing_units))
        return scene

    def cache_parts(self, aoi, window, acquisition, max_cloud: float) -> dict[str, Any]:
        return self.provider.cache_parts(aoi, window, acquisition, max_cloud)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.provider, item)
