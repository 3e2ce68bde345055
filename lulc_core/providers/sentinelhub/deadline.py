"""Deadlines for Sentinel Hub requests, across attempts, retry sleeps and rate-limit waits: one for
each request, and one for a whole fetch (its catalog search and Process API parts together).

The sentinelhub client retries on its own (5xx and connection errors with growing sleeps, 429
after the wait the service asks for), so one request could take many minutes. The provider starts
a :class:`Deadline` for each catalog search and each Process API request and hands it to its
download client (see ``provider.py``), which checks it before each HTTP request, bounds the
request's timeout by the time left, and gives up with :class:`DeadlinePassed` as soon as the
next wait would end past the deadline instead of sleeping into it; the session's token request
reads it through :func:`current_deadline` (the client downloads in a worker thread).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass
from typing import Iterator


class DeadlinePassed(Exception):
    """Raised inside the client when a request cannot finish before its deadline (``reason`` says why)."""

    def __init__(self, reason: str, seconds: float, scope: str = "its") -> None:
        super().__init__(reason)
        self.reason, self.seconds, self.scope = reason, seconds, scope


@dataclass(frozen=True)
class Deadline:
    seconds: float
    ends_at: float  # time.monotonic()
    scope: str = "its"  # how messages name it: "its" (one request's) or e.g. "the whole fetch's"

    def left(self) -> float:
        return self.ends_at - time.monotonic()

    def check(self, doing: str = "waiting for Sentinel Hub") -> None:
        if self.left() <= 0:
            raise DeadlinePassed(doing, self.seconds, self.scope)

    def bound(self, timeout: float) -> float:
        """``timeout`` cut to the time left (at least 10 ms: the check above comes first)."""
        return max(0.01, min(timeout, self.left()))

    def refuse_wait(self, wait_s: float, reason: str) -> None:
        """Raise DeadlinePassed now when waiting ``wait_s`` before the next attempt would pass the deadline."""
        if wait_s >= self.left():
            raise DeadlinePassed(reason, self.seconds, self.scope)


#: The deadline of the token request the current thread makes (set by the download client around
#: its session's token refresh, which runs in the client's worker thread).
_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("sentinelhub_deadline", default=None)


def start_deadline(seconds: float, scope: str = "its") -> Deadline:
    return Deadline(seconds, time.monotonic() + seconds, scope)


def earliest(limit: Deadline, within: Deadline | None) -> Deadline:
    """``limit``, or ``within`` when that one ends first (a request inside a fetch's total deadline); when
    both end within 0.1 s of each other (the first request of a one-part fetch), the request's own."""
    return limit if within is None or limit.ends_at <= within.ends_at + 0.1 else within


def current_deadline() -> Deadline | None:
    return _CURRENT.get()


@contextlib.contextmanager
def bound_to(limit: Deadline | None) -> Iterator[None]:
    """Make ``limit`` the current thread's deadline inside the block (for the session's token request)."""
    token = _CURRENT.set(limit)
    try:
        yield
    finally:
        _CURRENT.reset(token)
