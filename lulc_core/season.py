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


def suggest_window_b(window_a: DateWindow, window_b: DateWindow) -> DateWindow:
    """A date B window in date A's season: A's days in B's year (or the first later year that
    keeps B after A)."""
    year = window_b.start.year
    w = matched_window(window_a, year)
    while w.start <= window_a.end:
        year += 1
        w = matched_window(window_a, year)
    return w


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


def best_matched_pair(dates: Sequence[dt.date], min_years: float = 1.0) -> tuple[dt.date, dt.date] | None:
    """The pair of dates (earlier, later), at least ``min_years`` apart, closest in the season
    (then the longest apart); None with fewer than two such dates."""
    days = sorted(set(dates))
    pairs = [(x, y) for i, x in enumerate(days) for y in days[i + 1:] if (y - x).days >= 365 * min_years]
    if not pairs:
        return None
    return min(pairs, key=lambda p: (day_of_year_gap(*p), -(p[1] - p[0]).days))


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
