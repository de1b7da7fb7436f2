"""Recurrence rules are expanded in a bounded walk: the rule is moved forward by whole
400-year cycles of the calendar (scheduling.series.calendar_shift) so that dateutil's search
for a next date ends with the calendar, at most 400 years past the schedule window, whatever
the rule. These tests prove the move changes no date and bounds the walk; the API's answers to
bad rules are in test_api.py."""

from datetime import MAXYEAR, date, datetime
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from clinic.inputs import schedule_window
from scheduling.errors import RecurrenceRuleError
from scheduling.series import CALENDAR_CYCLE_YEARS, calendar_shift, series_occurrences

NEW_YORK = ZoneInfo("America/New_York")
TODAY = date(2026, 12, 9)
FIRST = datetime(2026, 12, 10, 10, tzinfo=NEW_YORK)


@pytest.mark.parametrize("year", [1, 1999, 2026, 2036, 2099, 2100, 2399, 2400, 5000, MAXYEAR])
def test_the_shift_keeps_every_date_and_weekday_and_ends_the_walk_within_a_cycle(year):
    last = date(year, 12, 31)
    shift = calendar_shift(last)
    assert shift.days % 7 == 0  # whole weeks: every weekday kept
    for day in (last, date(year, 1, 1), date(year, 3, 1)):
        moved = day + shift
        assert (moved.month, moved.day, moved.weekday()) == (day.month, day.day, day.weekday())
        assert moved.isocalendar().week == day.isocalendar().week
    assert 0 <= MAXYEAR - (last + shift).year < CALENDAR_CYCLE_YEARS  # the walk's bound


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=24",
        "FREQ=MONTHLY;BYDAY=2TU;COUNT=12",
        "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=24",
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13;COUNT=5",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=2",
        "FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH;COUNT=1",
        "FREQ=YEARLY;BYYEARDAY=366;COUNT=2",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=10",
        "FREQ=DAILY;INTERVAL=3;UNTIL=20270315T093000",
        "FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=SU,TU;COUNT=9",
    ],
)
def test_the_moved_rule_gives_the_dates_dateutil_gives(rule):
    expected = [
        moment.replace(tzinfo=NEW_YORK)
        for moment in rrulestr(rule, dtstart=FIRST.replace(tzinfo=None))
    ]
    assert series_occurrences(rrule=rule, first_start=FIRST, tz=NEW_YORK, today=TODAY) == expected


def test_a_rule_with_no_date_is_refused_after_a_bounded_walk():
    """30 February: dateutil alone searched to the year 9999 (3.6-7.2 s); moved, the search
    starts in the calendar's last cycle, so it looks through under 400 years of days."""
    _, last = schedule_window(today=TODAY)
    walked_from = (FIRST.replace(tzinfo=None) + calendar_shift(last)).year
    assert MAXYEAR - walked_from < CALENDAR_CYCLE_YEARS + (last.year - FIRST.year)
    with pytest.raises(RecurrenceRuleError) as refused:
        series_occurrences(
            rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=5",
            first_start=FIRST,
            tz=NEW_YORK,
            today=TODAY,
        )
    assert refused.value.code == "rrule-empty" and refused.value.status == 400
    assert refused.value.extra["errors"] == {
        "rrule": ["The rule gives no date from 2026-12-10 to 2036-12-31."]
    }


def test_a_series_ends_within_the_schedule_window():
    with pytest.raises(RecurrenceRuleError) as refused:
        series_occurrences(
            rrule="FREQ=YEARLY;COUNT=12", first_start=FIRST, tz=NEW_YORK, today=TODAY
        )
    assert refused.value.code == "rrule-too-far"
    eleven = series_occurrences(
        rrule="FREQ=YEARLY;COUNT=11", first_start=FIRST, tz=NEW_YORK, today=TODAY
    )
    assert eleven[-1] == FIRST.replace(year=2036)  # the window's last year
