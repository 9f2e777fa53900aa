"""TikTok Ads Manager report (CSV or xlsx, first sheet) → ``Campaigns`` rows (docs/tiktok-exports.md §A).

Quirks handled: ``<5`` and ``--`` cells, ``1.23%``, currency symbols in cells,
a currency code in the header (``Cost (USD)`` → ``ImportResult.currency``),
``Total of N results`` footers, destination clicks preferred to all clicks,
breakdown exports whose first column is Audience/Country/Age/Gender.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

from .aliases import ADS_FIELDS, BREAKDOWN_HEADERS, HeaderMap, find_header, make_result
from .clean import (CONVERTERS, NOTHING_TO_COUNT, ImportResult, clean_text, convert_rows, open_table,
                    parse_date, split_header)

__all__ = ["parse_ads", "period_in_name", "period_in_text"]

_NUMBER_KEYS = frozenset(f.key for f in ADS_FIELDS if f.kind == "number")
_RANGE_SEP = re.compile(r"~|–|—|\bto\b|\s-\s")


def _range_ends(value: str) -> tuple[str, str] | None:
    """The two ends of a date range ``a ~ b`` (the first separator with text on both sides),
    or None; in time linear in the text."""
    text = value.strip()
    if "\n" in text:
        return None
    for m in _RANGE_SEP.finditer(text):
        if 0 < m.start() and m.end() < len(text):
            return text[:m.start()].strip(), text[m.end():].strip()
    return None


# a period in a file name (Campaign_20260701_20260731_GMT+0.xlsx) or in a title row above
# the header ("Date range: 2026-07-01 ~ 2026-07-31")
_NAME_PERIOD = re.compile(r"(?<!\d)(20\d{6})[_-](20\d{6})(?!\d)")
_DAY = r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4}"
_TEXT_PERIOD = re.compile(rf"({_DAY})\s*(?:~|–|—|\bto\b|-)\s*({_DAY})")


def _valid_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
    return (start, end) if start <= end and (end - start).days < 3660 else None


def period_in_name(name: str) -> tuple[dt.date, dt.date] | None:
    """The period of an Ads Manager file name, ``…_YYYYMMDD_YYYYMMDD…``.

    >>> period_in_name("Campaign_20260701_20260731_GMT+0.xlsx")
    (datetime.date(2026, 7, 1), datetime.date(2026, 7, 31))
    """
    m = _NAME_PERIOD.search(os.path.basename(name))
    if not m:
        return None
    try:
        start, end = (dt.datetime.strptime(x, "%Y%m%d").date() for x in m.groups())
    except ValueError:
        return None
    return _valid_period(start, end)


def period_in_text(text: Any) -> tuple[dt.date, dt.date] | None:
    """A period written in a cell: ``2026-07-01 ~ 2026-07-31`` (ISO or US dates).

    >>> period_in_text("Date range: 07/01/2026 - 07/31/2026")
    (datetime.date(2026, 7, 1), datetime.date(2026, 7, 31))
    """
    m = _TEXT_PERIOD.search(text) if isinstance(text, str) else None
    ends = _dates(m[1], m[2]) if m else None
    return _valid_period(*(_day(x) for x in ends)) if ends else None


def _dates(first: str, last: str) -> tuple[dt.date | dt.datetime, dt.date | dt.datetime] | None:
    """The two dates of a range's ends (:func:`parse_date`); None unless both are dates."""
    try:
        start, end = parse_date(first), parse_date(last)
    except ValueError:
        return None
    return None if start is None or end is None else (start, end)


def _day(when: dt.date | dt.datetime) -> dt.date:
    return when.date() if isinstance(when, dt.datetime) else when


def _period(path: str | os.PathLike[str], header_line: int) -> tuple[tuple[dt.date, dt.date] | None, str]:
    """The period an undated report covers, from a title row above its header or its
    file name, and where it was found."""
    rows = open_table(path).rows
    try:
        for line, cells in rows:
            if line >= header_line:
                break
            for cell in cells:
                period = period_in_text(cell)
                if period:
                    return period, f"line {line}"
    finally:
        close = getattr(rows, "close", None)
        if close:
            close()
    period = period_in_name(os.fspath(path))
    return (period, "the file name") if period else (None, "")


def parse_period_start(value: Any, column: str | None = None, line: int | None = None
                       ) -> dt.date | dt.datetime | None:
    """A report date; for a range (lifetime reports: ``2026-07-01 ~ 2026-07-31``) its first day.

    >>> parse_period_start("2026-07-01 ~ 2026-07-31"), parse_period_start("2026-07-18 00:00:00")
    (datetime.date(2026, 7, 1), datetime.date(2026, 7, 18))
    """
    m = _range_ends(value) if isinstance(value, str) else None
    ends = _dates(*m) if m else None
    return ends[0] if ends else parse_date(value, column, line)


_CONVERTERS = {**CONVERTERS, "period": parse_period_start}


def _period_end(value: Any) -> dt.date | None:
    """The last day of a date range cell (lifetime reports); None for a single date.

    >>> _period_end("2026-07-01 ~ 2026-07-31"), _period_end("2026-07-18")
    (datetime.date(2026, 7, 31), None)
    """
    m = _range_ends(value) if isinstance(value, str) else None
    ends = _dates(*m) if m else None
    return _day(ends[1]) if ends else None


def _after(keys: tuple[str, ...], anchor: str, key: str) -> tuple[str, ...]:
    """``keys`` with ``key`` right after ``anchor``."""
    i = keys.index(anchor) + 1
    return keys[:i] + (key,) + keys[i:]


def _breakdown_columns(hmap: HeaderMap) -> list[int]:
    """The leading columns naming a breakdown dimension (Country, Age, Gender ...), not otherwise mapped."""
    used = {col for col, _, _ in hmap.columns.values()}
    cols = []
    for i, header in enumerate(hmap.headers):
        if i in used or split_header(header)[0] not in BREAKDOWN_HEADERS:
            break
        cols.append(i)
    return cols


def _with_breakdown(hmap: HeaderMap, cols: list[int]) -> HeaderMap:
    """``hmap`` with a leading ``breakdown`` text column (its headers no longer unmapped)."""
    if not cols:
        return hmap
    headers = [hmap.headers[i] for i in cols]
    columns = {"breakdown": (cols[0], "text", " / ".join(headers)), **hmap.columns}
    unmapped = [h for h in hmap.unmapped if h not in headers]
    return HeaderMap(columns=columns, units=hmap.units, unmapped=unmapped, headers=hmap.headers)


def parse_ads(path: str | os.PathLike[str]) -> ImportResult:
    """Read an Ads Manager report into ``Campaigns`` rows.

    Keys: see :data:`~xl_kpis.imports.aliases.ADS_FIELDS`, plus
    ``breakdown`` for breakdown exports (several leading dimension columns
    are joined with " / ") and ``period_end`` with a date column.  Dedup key:
    ``(ad_id, date, period_end)`` when the report has an Ad ID column, else
    ``(date, period_end, campaign, ad_group, ad_name)``, limited to the columns
    present, with ``breakdown`` appended for breakdown exports.  Rows with
    neither a campaign nor any number are skipped.  A date range in the date
    column (lifetime reports: ``2026-07-01 ~ 2026-07-31``) gives the row's
    reporting period: ``date`` its first day, ``period_end`` its last (blank
    for a single day).  A report without a date column is a total
    over a period: ``period`` is that period when a title row above the
    header or the file name (``Campaign_20260701_20260731_GMT+0.csv``) gives
    it.  Cells read as blank (``<5``, ``--``) are listed in ``blanks``.
    """
    sheet = open_table(path)
    header_line, hmap, rows = find_header(sheet, ADS_FIELDS, required_any=_NUMBER_KEYS,
                                          min_matches=2)
    extra = _breakdown_columns(hmap)
    hmap = _with_breakdown(hmap, extra)
    date_col = hmap.columns["date"][0] if "date" in hmap.columns else None

    def post(line: int, cells: list, row: dict) -> str | None:
        if date_col is not None:
            row["period_end"] = _period_end(cells[date_col] if date_col < len(cells) else None)
        if len(extra) > 1:
            parts = [clean_text(cells[i]) if i < len(cells) else None for i in extra]
            row["breakdown"] = " / ".join(p for p in parts if p) or None
        if row.get("campaign") is None and all(row[k] is None for k in row if k in _NUMBER_KEYS):
            return NOTHING_TO_COUNT
        return None

    blanks: list[tuple[int, str, str]] = []
    out, skipped = convert_rows(rows, hmap.columns, _CONVERTERS, post=post, blanks=blanks)
    key = ("ad_id", "date") if "ad_id" in hmap.columns else ("date", "campaign", "ad_group", "ad_name")
    key = tuple(k for k in key if k in hmap.columns) + (("breakdown",) if extra else ())
    result = make_result("ads", "Campaigns", ADS_FIELDS, hmap, out, skipped, key, sheet.name)
    if date_col is not None:          # the period's end goes with its start, in fields and key
        result.fields = _after(result.fields, "date", "period_end")
        result.key_fields = _after(result.key_fields, "date", "period_end")
    result.blanks = blanks
    if "date" not in hmap.columns:
        result.period, result.period_source = _period(path, header_line)
    return result
