"""Dates and times as Excel stores them: serial numbers of the 1900 date system.

A cell holds a date as a number of days since :data:`EPOCH` (the fraction is
the time of day: 0.5 is noon) and shows it as a date through its number
format.  Excel counts 29 February 1900, a day that never was (Lotus 1-2-3's
leap-year error, kept for compatibility), so its serial numbers name the
calendar's dates from :data:`FIRST_SERIAL` (1900-03-01) on; the last date it
shows is 9999-12-31 (:data:`LAST_SERIAL`).  Standard library only (used by
modules that run in Pyodide).

Sources: ECMA-376 Part 1, "Dates and Times" (the 1900 date base system: serial 1 is
1900-01-01, 60 the fictitious 1900-02-29); Microsoft, "Excel specifications
and limits" (dates from 1 January 1900 to 31 December 9999).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

__all__ = ["EPOCH", "FIRST_SERIAL", "LAST_SERIAL", "FIRST_DATE", "to_serial", "from_serial"]

#: Day 0 of the serial numbers Excel gives the dates from 1900-03-01 on (the day before
#: its 1900-01-00, since it counts a 29 February 1900).
EPOCH = datetime(1899, 12, 30)
#: The serial number of 1900-03-01, the first date Excel numbers right.
FIRST_SERIAL = 61
#: The serial number of 9999-12-31, the last date Excel shows.
LAST_SERIAL = 2958465
#: The first date Excel numbers right (before it, a serial number is a day off).
FIRST_DATE = EPOCH + timedelta(days=FIRST_SERIAL)


def to_serial(v: date | datetime | time) -> float:
    """The serial number of a date, a datetime (naive: as the clock shows it) or a time of
    day (a fraction of a day).

    >>> to_serial(date(2025, 1, 1)), to_serial(datetime(2026, 1, 1, 12)), to_serial(time(6))
    (45658.0, 46023.5, 0.25)
    """
    if isinstance(v, time):
        return (v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6) / 86400
    if not isinstance(v, datetime):
        v = datetime(v.year, v.month, v.day)
    return (v - EPOCH).total_seconds() / 86400


def from_serial(serial: float) -> datetime:
    """The date and time a serial number stands for, to the nearest second (the finest time a
    TikTok export or a date format shows); valid from :data:`FIRST_SERIAL` on.

    >>> from_serial(45658), from_serial(45000.5)
    (datetime.datetime(2025, 1, 1, 0, 0), datetime.datetime(2023, 3, 15, 12, 0))
    """
    return EPOCH + timedelta(seconds=round(float(serial) * 86400))
