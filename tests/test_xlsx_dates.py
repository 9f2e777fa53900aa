"""Dates as Excel's serial numbers (xl_kpis/xlsx/dates.py): known serials, the range Excel
shows, and the round trip.

Runs in the Pyodide lane too (xl_kpis.cells imports the module): standard library and
hypothesis only.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from xl_kpis.xlsx import dates as D


def test_known_serials():
    # Microsoft's DATE function page: =DATE(2025,1,1) is 45658; 1970-01-01 is 25569 (the
    # offset between Unix time and Excel serials); 1900-03-01 is 61 (serial 60 is the
    # fictitious 1900-02-29 of ECMA-376's 1900 date system); 9999-12-31 is 2958465 (Excel
    # specifications and limits: the last date).
    assert D.to_serial(date(2025, 1, 1)) == 45658.0
    assert D.to_serial(date(1970, 1, 1)) == 25569.0
    assert D.to_serial(date(1900, 3, 1)) == D.FIRST_SERIAL == 61
    assert D.to_serial(date(9999, 12, 31)) == D.LAST_SERIAL == 2958465
    assert D.FIRST_DATE == datetime(1900, 3, 1)


def test_the_time_of_day_is_the_fraction():
    # a day is 86,400 s: 06:00 is 0.25, noon 0.5, 18:00 on 2026-01-01 is 46023.75
    assert D.to_serial(time(6)) == 0.25
    assert D.to_serial(time(12, 0, 0, 0)) == 0.5
    assert D.to_serial(datetime(2026, 1, 1, 18)) == 46023.75
    assert D.from_serial(46023.75) == datetime(2026, 1, 1, 18)


def test_from_serial_is_to_the_nearest_second():
    # 1 s is 1/86400 of a day; 0.4 s rounds down, 0.6 s up
    assert D.from_serial(45658 + 0.4 / 86400) == datetime(2025, 1, 1)
    assert D.from_serial(45658 + 0.6 / 86400) == datetime(2025, 1, 1, 0, 0, 1)
    assert D.from_serial(45658) == D.EPOCH + timedelta(days=45658)


@given(st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
       .map(lambda d: d.replace(microsecond=0)))
def test_a_datetime_to_the_second_comes_back(when):
    serial = D.to_serial(when)
    assert D.FIRST_SERIAL <= serial < D.LAST_SERIAL + 1
    assert D.from_serial(serial) == when


@given(st.dates(min_value=date(1900, 3, 1)))
def test_a_date_is_a_whole_number_one_day_after_the_day_before(day):
    serial = D.to_serial(day)
    assert serial.is_integer()
    if day > date(1900, 3, 1):
        assert D.to_serial(day - timedelta(days=1)) == serial - 1
