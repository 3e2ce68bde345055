"""A fair shared server: analyses take turns in arrival order, and processing units are budgeted
per session and per day (the budget checked with the real sentinelhub client on the fake service)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from lulc_core.admission import AnalysisSlots, BudgetedProvider, PUBudget, SessionSpend
from lulc_core.aoi import AOI
from lulc_core.cache import SceneCache
from lulc_core.errors import BudgetError, LulcError, SettingsError
from lulc_core.providers.base import CachingProvider
from lulc_core.providers.sentinelhub.costs import estimate_fetch_pu
from lulc_core.scene import DateWindow
from lulc_core.settings import DEFAULT_PU_PER_DAY, DEFAULT_PU_PER_SESSION, load_settings
from tests.fake_sh_fixture import *  # noqa: F401,F403

pytestmark = pytest.mark.filterwarnings("ignore::sentinelhub.exceptions.SHRateLimitWarning")
JULY_2015 = DateWindow.parse("2015-07-01/2015-07-31")
SMALL = AOI.from_bbox(13.085, 42.790, 13.095, 42.796, name="norcia-small")


def _wait_until(cond, timeout_s: float = 10.0) -> None:
    deadline = time.time() + timeout_s
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.005)


def _queue(slots: AnalysisSlots, n: int):
    """n threads arriving one after the other (each queued before the next starts), each holding its
    slot until released: start order, most running at once, the places each was told."""
    started, places, lock = [], {i: [] for i in range(n)}, threading.Lock()
    running, peak, release = [0], [0], threading.Event()

    def work(i: int) -> None:
        with slots.turn(lambda place: places[i].append(place), poll_s=0.01):
            with lock:
                started.append(i)
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            release.wait(10)
            with lock:
                running[0] -= 1

    threads = []
    for i in range(n):
        threads.append(threading.Thread(target=work, args=(i,)))
        threads[-1].start()
        _wait_until(lambda: len(started) + slots.waiting == i + 1)  # running or queued before the next comes
    _wait_until(lambda: all(places[i] for i in range(slots.slots, n)))  # every waiter told its place
    first_places = {i: places[i][0] for i in range(n) if places[i]}
    release.set()
    for t in threads:
        t.join(10)
    return started, peak[0], places, first_places


def test_one_slot_runs_one_at_a_time_in_arrival_order_and_tells_each_its_place():
    slots = AnalysisSlots(1)
    started, peak, places, first = _queue(slots, 4)
    assert started == [0, 1, 2, 3] and peak == 1
    assert places[0] == []  # the first never waits
    assert first == {1: 1, 2: 2, 3: 3}  # on arrival: how many analyses are ahead in the queue
    assert slots.running == 0 and slots.waiting == 0


def test_two_slots_run_two_at_once():
    started, peak, _, first = _queue(AnalysisSlots(2), 4)
    assert peak == 2 and sorted(started) == [0, 1, 2, 3] and first == {2: 1, 3: 2}


def test_a_waiter_that_gives_up_leaves_the_queue():
    slots = AnalysisSlots(1)
    release, entered = threading.Event(), threading.Event()

    def holder() -> None:
        with slots.turn():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    entered.wait(5)

    def give_up(place: int) -> None:
        raise KeyboardInterrupt("page closed")

    with pytest.raises(KeyboardInterrupt):
        with slots.turn(give_up):
            pass
    assert slots.waiting == 0
    release.set()
    t.join(5)
    with slots.turn():  # the slot is free again: nobody is stuck behind the one that left
        assert slots.running == 1
    with pytest.raises(LulcError, match="at least 1"):
        AnalysisSlots(0)


def test_budget_per_session_and_per_day_shared_through_the_ledger(tmp_path):
    ledger = tmp_path / "pu_ledger.json"
    day = [dt.date(2026, 12, 4)]
    budget = PUBudget(per_session=10.0, per_day=15.0, ledger=ledger, today=lambda: day[0])
    alice, bob = SessionSpend(), SessionSpend()
    budget.check(alice, 6.0)
    budget.charge(alice, 6.0)
    with pytest.raises(BudgetError, match=r"this session has 4\.0 of its 10"):
        budget.check(alice, 5.0)
    assert alice.pu == 6.0  # a refusal charges nothing
    # another server process reading the same ledger sees the day's total
    other = PUBudget(per_session=10.0, per_day=15.0, ledger=ledger, today=lambda: day[0])
    assert other.spent_today() == 6.0
    other.charge(bob, 8.0)
    with pytest.raises(BudgetError, match=r"server has 1\.0 of today's 15"):
        budget.check(bob, 1.5)
    assert json.loads(ledger.read_text()) == {"2026-12-04": 14.0}
    day[0] = dt.date(2026, 12, 5)  # a new UTC day starts at zero
    budget.check(bob, 1.5)
    PUBudget(None, None, ledger, today=lambda: day[0]).check(SessionSpend(1e9), 1e9)


def test_damaged_ledger_is_started_again(tmp_path):
    ledger = tmp_path / "pu_ledger.json"
    ledger.write_text("{not json")
    budget = PUBudget(5.0, 5.0, ledger, today=lambda: dt.date(2026, 12, 4))
    assert budget.spent_today() == 0.0
    budget.charge(SessionSpend(), 2.0)
    assert json.loads(ledger.read_text()) == {"2026-12-04": 2.0}


def test_budget_settings_defaults_off_and_bad_values():
    s = load_settings(env={}, secrets={})
    assert s.pu_per_session == DEFAULT_PU_PER_SESSION and s.pu_per_day == DEFAULT_PU_PER_DAY
    assert s.max_analyses >= 1
    s = load_settings(env={"LULC_PU_PER_SESSION": "off", "LULC_PU_PER_DAY": "40", "LULC_MAX_ANALYSES": "3"},
                      secrets={})
    assert s.pu_per_session is None and s.pu_per_day == 40.0 and s.max_analyses == 3
    for name, value in (("LULC_PU_PER_DAY", "lots"), ("LULC_PU_PER_SESSION", "-1"), ("LULC_MAX_ANALYSES", "1.5")):
        bad = load_settings(env={name: value}, secrets={})
        with pytest.raises(SettingsError, match=name):
            (bad.pu_per_day, bad.pu_per_session, bad.max_analyses)


def test_sentinel_hub_fetch_charged_what_the_service_reported_refused_before_any_request(
        fake_sh, sh_provider, tmp_path):
    budget = PUBudget(per_session=estimate_fetch_pu(SMALL.grid) * 1.5, per_day=None, ledger=tmp_path / "l.json")
    spend = SessionSpend()
    provider = CachingProvider(BudgetedProvider(sh_provider, budget, spend), SceneCache(tmp_path / "cache"))
    scene = provider.fetch(SMALL, JULY_2015)
    assert fake_sh.count("process") == 1
    assert scene.processing_units > 0 and spend.pu == pytest.approx(scene.processing_units)
    # the same scene again comes from the cache: free, and never refused even with the budget spent
    spend.pu = budget.per_session
    fake_sh.reset()
    again = provider.fetch(SMALL, JULY_2015)
    assert fake_sh.count() == 0 and again.processing_units == 0.0 and spend.pu == budget.per_session
    # a new window would pass the session's budget: refused with a message, no request sent
    with pytest.raises(BudgetError, match="processing units"):
        provider.fetch(SMALL, DateWindow.parse("2018-02-01/2018-02-28"))
    assert fake_sh.count("process") == 0
