"""Season awareness: day-of-year gaps, suggested windows and demo presets."""

import datetime as dt

from lulc_core.scene import DateWindow
from lulc_core.season import (best_matched_pair, day_of_year_gap, demo_presets, matched_window, season_note,
                              suggest_window_b)

D = dt.date


def test_day_of_year_gap_goes_round_the_year():
    assert day_of_year_gap(D(2015, 7, 4), D(2018, 2, 11)) == 143
    assert day_of_year_gap(D(2015, 12, 20), D(2017, 1, 10)) == 21
    assert day_of_year_gap(D(2015, 8, 20), D(2017, 10, 3)) == 44


def test_season_note_only_beyond_the_threshold():
    assert season_note(D(2015, 8, 20), D(2017, 10, 3)) is None
    note = season_note(D(2015, 7, 4), D(2018, 2, 11))
    assert note.startswith("Different seasons") and "143 days" in note


def test_suggested_window_b_is_in_date_a_season_and_after_a():
    wa, wb = DateWindow.parse("2015-07-01/2015-07-31"), DateWindow.parse("2018-02-01/2018-02-28")
    assert str(suggest_window_b(wa, wb)) == "2018-07-01/2018-07-31"
    # the same year as A would not be after A: the next year is suggested
    assert str(suggest_window_b(wa, DateWindow.parse("2015-11-01/2015-11-30"))) == "2016-07-01/2016-07-31"
    assert str(matched_window(DateWindow.parse("2016-02-29/2016-03-10"), 2017)) == "2017-02-28/2017-03-10"


def test_best_matched_pair_and_demo_presets():
    days = [D(2015, 7, 4), D(2016, 2, 1), D(2017, 7, 20), D(2018, 2, 11)]
    assert best_matched_pair(days) == (D(2016, 2, 1), D(2018, 2, 11))
    assert best_matched_pair([D(2015, 7, 4), D(2015, 9, 1)]) is None
    presets = demo_presets({"far": {"dates": [D(2015, 7, 4), D(2018, 2, 11)]},
                            "near": {"dates": [D(2015, 8, 12), D(2017, 8, 30)]}})
    assert list(presets) == ["near", "far"]
    assert str(presets["near"][0]) == "2015-08-01/2015-08-31" and str(presets["near"][1]) == "2017-08-01/2017-08-31"
