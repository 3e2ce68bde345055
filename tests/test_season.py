"""Season awareness: day-of-year gaps, suggested windows and demo presets."""

import datetime as dt

import pytest

from lulc_core.scene import DateWindow
from lulc_core.season import (best_matched_pair, day_of_year_gap, default_windows, demo_presets, holds_any,
                              matched_window, season_note, suggest_window_b, window_around)

D = dt.date


def test_day_of_year_gap_goes_round_the_year():
    assert day_of_year_gap(D(2015, 7, 4), D(2018, 2, 11)) == 143
    assert day_of_year_gap(D(2015, 12, 20), D(2017, 1, 10)) == 21
    assert day_of_year_gap(D(2015, 8, 20), D(2017, 10, 3)) == 44


def test_season_note_only_beyond_the_threshold():
    assert season_note(D(2015, 8, 20), D(2017, 10, 3)) is None
    note = season_note(D(2015, 7, 4), D(2018, 2, 11))
    assert note.startswith("Different seasons") and "143 days" in note


def test_suggested_window_b_holds_a_scene_in_date_a_season_after_a():
    dates = [D(2015, 7, 4), D(2016, 2, 3), D(2017, 6, 20), D(2017, 7, 28), D(2018, 2, 11), D(2019, 7, 10)]
    wa, wb = DateWindow.parse("2015-07-01/2015-07-31"), DateWindow.parse("2018-02-01/2018-02-28")
    # the closest in the season to 4 July (10 July 2019), not the empty July 2018
    assert str(suggest_window_b(wa, wb, dates)) == "2019-07-01/2019-07-31"
    # equally close in the season: the one nearest to the window B chosen now
    assert str(suggest_window_b(wa, wb, [D(2015, 7, 4), D(2016, 7, 4), D(2018, 2, 11), D(2019, 7, 4)])) == \
        "2019-07-01/2019-07-31"
    # only two acquisitions (Pisa): nothing after A is closer to A's season than B already is
    assert suggest_window_b(wa, wb, [D(2015, 7, 4), D(2018, 2, 11)]) is None
    # never a window before A or overlapping it
    assert suggest_window_b(wa, DateWindow.parse("2015-11-01/2015-11-30"), [D(2015, 7, 4), D(2015, 7, 20),
                                                                            D(2015, 11, 5)]) is None
    # every suggestion holds one of the dates and lies after A
    for b in ("2016-01-01/2016-01-31", "2017-11-01/2017-12-31", "2018-02-01/2018-02-28"):
        w = suggest_window_b(wa, DateWindow.parse(b), dates)
        assert w is not None and holds_any(w, dates) and w.start > wa.end
    assert str(matched_window(DateWindow.parse("2016-02-29/2016-03-10"), 2017)) == "2017-02-28/2017-03-10"


def test_suggestion_next_to_date_a_in_the_same_month_is_narrowed():
    wa = DateWindow.parse("2017-06-01/2017-06-10")
    w = suggest_window_b(wa, DateWindow.parse("2017-12-01/2017-12-31"), [D(2017, 6, 5), D(2017, 6, 25), D(2017, 12, 3)])
    assert str(w) == "2017-06-11/2017-06-30"


@pytest.mark.parametrize("dates, expected", [
    # Paris: 342 days apart (under a year): months around both, never the fixed 2015/2017 windows
    ([D(2016, 11, 30), D(2017, 11, 7)], ("2016-11-01/2016-11-30", "2017-11-01/2017-11-30")),
    # a year or more apart: the best-matched pair
    ([D(2015, 7, 4), D(2016, 2, 1), D(2017, 7, 20), D(2018, 2, 11)], ("2016-02-01/2016-02-29", "2018-02-01/2018-02-28")),
    # a few weeks apart, in consecutive months
    ([D(2020, 3, 28), D(2020, 4, 2)], ("2020-03-01/2020-03-31", "2020-04-01/2020-04-30")),
    # five days apart in one month: narrowed so that each window holds its own date only
    ([D(2017, 11, 2), D(2017, 11, 7)], ("2017-11-01/2017-11-02", "2017-11-03/2017-11-30")),
    # consecutive days
    ([D(2021, 5, 14), D(2021, 5, 15)], ("2021-05-01/2021-05-14", "2021-05-15/2021-05-31")),
    # one acquisition: both windows hold it
    ([D(2019, 9, 9)], ("2019-09-01/2019-09-30", "2019-09-01/2019-09-30")),
    # many dates less than a year apart: the first and the last
    ([D(2022, 1, 5), D(2022, 3, 9), D(2022, 6, 1), D(2022, 10, 30)], ("2022-01-01/2022-01-31", "2022-10-01/2022-10-31")),
])
def test_default_windows_always_hold_acquisitions(dates, expected):
    wa, wb = default_windows(dates)
    assert (str(wa), str(wb)) == expected
    assert holds_any(wa, dates) and holds_any(wb, dates)
    if len(set(dates)) > 1:
        assert wa.end < wb.start  # no shared day: never the same window twice


def test_default_windows_end_no_later_than_today_and_none_without_dates():
    wa, wb = default_windows([D(2024, 1, 10), D(2025, 3, 4)], today=D(2025, 3, 6))
    assert str(wb) == "2025-03-01/2025-03-06" and str(wa) == "2024-01-01/2024-01-31"
    assert default_windows([]) is None
    assert str(window_around(D(2018, 2, 11))) == "2018-02-01/2018-02-28"


def test_best_matched_pair_and_demo_presets():
    days = [D(2015, 7, 4), D(2016, 2, 1), D(2017, 7, 20), D(2018, 2, 11)]
    assert best_matched_pair(days) == (D(2016, 2, 1), D(2018, 2, 11))
    assert best_matched_pair([D(2015, 7, 4), D(2015, 9, 1)]) is None
    presets = demo_presets({"far": {"dates": [D(2015, 7, 4), D(2018, 2, 11)]},
                            "near": {"dates": [D(2015, 8, 12), D(2017, 8, 30)]}})
    assert list(presets) == ["near", "far"]
    assert str(presets["near"][0]) == "2015-08-01/2015-08-31" and str(presets["near"][1]) == "2017-08-01/2017-08-31"


def test_a_timeline_click_gives_its_acquisition_date():
    from ui.charts import acquisition_timeline, clicked_date

    assert clicked_date([{"x": "2017-10-18", "y": 3.0, "customdata": "2017-10-18", "point_index": 1}]) == D(2017, 10, 18)
    assert clicked_date([{"x": "2016-11-30 00:00", "y": 1.0}]) == D(2016, 11, 30)  # no customdata: the x
    assert clicked_date([{"customdata": ["2015-07-04"]}]) == D(2015, 7, 4)
    assert clicked_date([]) is None and clicked_date([{"x": None}]) is None
    from lulc_core.providers.demo import DemoProvider
    from lulc_core.scene import DateWindow as W

    acqs = DemoProvider().search(DemoProvider().area_aoi("norcia"), W.parse("2015-06-23/2018-01-01"))
    fig = acquisition_timeline(acqs, {"A": W.parse("2015-07-01/2015-07-31")})
    assert list(fig.data[0].customdata) == ["2015-07-11", "2017-10-18"]
    assert fig.layout.shapes[0].x0 == "2015-07-01" and fig.layout.shapes[0].x1 == "2015-08-01"
