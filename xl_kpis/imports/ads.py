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
from .clean import CONVERTERS, ImportResult, clean_text, convert_rows, open_table, parse_date, split_header

__all__ = ["parse_ads"]

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



def parse_period_start(value: Any, column: str | None = None, line: int | None = None
                       ) -> dt.date | dt.datetime | None:
    """A report date; for a range (lifetime reports: ``2026-07-01 ~ 2026-07-31``) its first day.

    >>> parse_period_start("2026-07-01 ~ 2026-07-31"), parse_period_start("2026-07-18 00:00:00")
    (datetime.date(2026, 7, 1), datetime.date(2026, 7, 18))
    """
    m = _range_ends(value) if isinstance(value, str) else None
    if m:
        try:
            start, end = parse_date(m[0]), parse_date(m[1])
        except ValueError:
            pass
        else:
            if start is not None and end is not None:
                return start
    return parse_date(value, column, line)


_CONVERTERS = {**CONVERTERS, "period": parse_period_start}


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
    are joined with " / ").  Dedup key: ``(ad_id, date)`` when the report has
    an Ad ID column, else ``(date, campaign, ad_group, ad_name)``, limited to
    the columns present, with ``breakdown`` appended for breakdown exports.
    Rows with neither a campaign nor any number are skipped.  A date range
    in the date column (lifetime reports) gives its first day, the start of
    the row's reporting period.
    """
    sheet = open_table(path)
    _, hmap, rows = find_header(sheet, ADS_FIELDS, required_any=_NUMBER_KEYS, min_matches=2)
    extra = _breakdown_columns(hmap)
    hmap = _with_breakdown(hmap, extra)

    def post(line: int, cells: list, row: dict) -> str | None:
        if len(extra) > 1:
            parts = [clean_text(cells[i]) if i < len(cells) else None for i in extra]
            row["breakdown"] = " / ".join(p for p in parts if p) or None
        if row.get("campaign") is None and all(row[k] is None for k in row if k in _NUMBER_KEYS):
            return "no campaign and no numbers"
        return None

    out, skipped = convert_rows(rows, hmap.columns, _CONVERTERS, post=post)
    key = ("ad_id", "date") if "ad_id" in hmap.columns else ("date", "campaign", "ad_group", "ad_name")
    key = tuple(k for k in key if k in hmap.columns) + (("breakdown",) if extra else ())
    return make_result("ads", "Campaigns", ADS_FIELDS, hmap, out, skipped, key, sheet.name)
