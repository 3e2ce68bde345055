"""Season awareness: how far apart two dates are in the phenological year.

Crops, pasture and grass change EuroSAT class between summer and winter without any land-cover
change, so a comparison of different seasons is flagged, and a date B window in date A's season
is suggested.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from lulc_core.scene import DateWindow

SEASON_GAP_DAYS = 45  # more than this apart in the year: different seasons


def day_of_year_gap(a: dt.date, b: dt.date) -> int:
    """Days between two dates' positions in the year, going round the year end (0..183)."""
    d = abs(a.timetuple().tm_yday - b.timetuple().tm_yday)
    return min(d, 365 - d)


def representative_date(dates: Sequence[dt.date], window: DateWindow | None = None) -> dt.date:
    """The middle acquisition date, else the window's middle day."""
    if dates:
        return sorted(dates)[len(dates) // 2]
    if window is None:
        raise ValueError("need dates or a window")
    return window.start + (window.end - window.start) / 2


def _same_day_in(year: int, day: dt.date) -> dt.date:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a year without it
        return day.replace(year=year, day=28)


def matched_window(window_a: DateWindow, year: int) -> DateWindow:
    """Date A's window moved to ``year`` (same days of the year)."""
    shift = year - window_a.start.year
    return DateWindow(_same_day_in(window_a.start.year + shift, window_a.start),
                      _same_day_in(window_a.end.year + shift, window_a.end))


def suggest_window_b(window_a: DateWindow, window_b: DateWindow, dates: Sequence[dt.date],
                     today: dt.date | None = None) -> DateWindow | None:
    """A date B window around a real acquisition after date A, closer to date A's season than
    date B's window now is; None when there is none (it never names an empty window).

    ``dates``: the acquisition dates over the area (those within the cloud limit); a window's
    season is its middle acquisition (else its middle day). Among the dates after ``window_a``
    the one closest to A's season wins, then the one nearest date B's window."""
    mid_a = representative_date([d for d in dates if window_a.contains(d)], window_a)
    mid_b = representative_date([d for d in dates if window_b.contains(d)], window_b)
    now = day_of_year_gap(mid_a, mid_b)
    better = [d for d in sorted(set(dates)) if d > window_a.end and day_of_year_gap(mid_a, d) < now]
    if not better:
        return None
    best = min(better, key=lambda d: (day_of_year_gap(mid_a, d), abs((d - mid_b).days)))
    return window_around(best, avoid=window_a, today=today)


def season_note(date_a: dt.date, date_b: dt.date, threshold: int = SEASON_GAP_DAYS) -> str | None:
    """A sentence for the headline when the two dates lie in different seasons, else None."""
    gap = day_of_year_gap(date_a, date_b)
    if gap <= threshold:
        return None
    return (f"Different seasons: date A ({date_a:%d %B}) and date B ({date_b:%d %B}) are {gap} days apart in the "
            f"year. Crops, pasture and grass change class with the seasons; group-level change does not count "
            f"those flips, but compare like seasons (within {threshold} days) where you can.")


def month_window(day: dt.date) -> DateWindow:
    """The calendar month holding ``day``."""
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    return DateWindow(start, end)


def window_around(day: dt.date, avoid: DateWindow | None = None, today: dt.date | None = None) -> DateWindow:
    """A window holding the acquisition ``day``: its calendar month (ending no later than ``today``),
    narrowed to the days between ``day`` and ``avoid`` (the other date's window) where the month
    would overlap it, so that the two windows share no day."""
    w = month_window(day)
    start, end = w.start, (min(w.end, today) if today is not None and today >= day else w.end)
    if avoid is not None and start <= avoid.end and avoid.start <= end and not avoid.contains(day):
        if avoid.end < day:  # the other window lies before ``day``
            start = max(start, avoid.end + dt.timedelta(days=1))
        else:
            end = min(end, avoid.start - dt.timedelta(days=1))
    return DateWindow(start, end)


def best_matched_pair(dates: Sequence[dt.date], min_years: float = 1.0) -> tuple[dt.date, dt.date] | None:
    """The pair of dates (earlier, later), at least ``min_years`` apart, closest in the season
    (then the longest apart); None with fewer than two such dates."""
    days = sorted(set(dates))
    pairs = [(x, y) for i, x in enumerate(days) for y in days[i + 1:] if (y - x).days >= 365 * min_years]
    if not pairs:
        return None
    return min(pairs, key=lambda p: (day_of_year_gap(*p), -(p[1] - p[0]).days))


def default_windows(dates: Sequence[dt.date], today: dt.date | None = None) -> tuple[DateWindow, DateWindow] | None:
    """Default date A and date B windows, each holding real acquisitions, whatever their spacing.

    The best-matched pair a year or more apart (:func:`best_matched_pair`), else the first and the
    last date; each gets its month (:func:`window_around`), narrowed where the two would overlap.
    With a single date both windows hold it; None without any date."""
    days = sorted(set(dates))
    if not days:
        return None
    first, last = best_matched_pair(days) or (days[0], days[-1])
    if first == last:
        w = window_around(first, today=today)
        return w, w
    wa = window_around(first, today=today)
    wb = window_around(last, avoid=wa, today=today)
    if wb.contains(first):  # both in one month: B kept the month, so narrow A to before B
        wb = window_around(last, avoid=DateWindow(first, first), today=today)
        wa = window_around(first, avoid=wb, today=today)
    return wa, wb


def holds_any(window: DateWindow, dates: Sequence[dt.date]) -> bool:
    """Whether any of ``dates`` falls in ``window``."""
    return any(window.contains(d) for d in dates)


def demo_presets(areas: dict[str, dict]) -> dict[str, tuple[DateWindow, DateWindow]]:
    """Per demo area, month windows around its best-matched pair of dates, best-matched areas first.

    ``areas`` is :meth:`~lulc_core.providers.demo.DemoProvider.areas` (each with its ``dates``)."""
    out = {}
    for name, info in areas.items():
        pair = best_matched_pair(info["dates"])
        if pair:
            out[name] = (month_window(pair[0]), month_window(pair[1]))
    return dict(sorted(out.items(), key=lambda kv: (day_of_year_gap(kv[1][0].start + dt.timedelta(days=14),
                                                                     kv[1][1].start + dt.timedelta(days=14)), kv[0])))
