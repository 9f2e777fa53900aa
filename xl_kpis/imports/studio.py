"""TikTok Studio account analytics (docs/tiktok-exports.md §D) → ``Videos`` and ``Brand`` rows.

The export is a zip of CSVs (also accepted: the unzipped folder, a single
CSV, or an xlsx with one sheet per file).  Files are recognised by name
(``Overview``, ``FollowerHistory``, ``Content``) or, failing that, by their
headers.  ``Viewers``, ``FollowerActivity``, ``FollowerGender`` and
``FollowerTopTerritories`` have no target table: they are listed in
:attr:`StudioImport.not_imported`.

Dates have no year and follow the app language ("28 August", "9月13日",
"28 апреля", "28 de agosto": :data:`LANGUAGES`).  The year is inferred (see :func:`infer_years`) from a
reference date: ``today`` (default: the current date), or 31 December of
``year`` when given, i.e. ``year`` is the year of the most recent row.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple, Sequence

from ..package import PackageError, open_zip
from .aliases import CONTENT_FIELDS, FOLLOWER_FIELDS, OVERVIEW_FIELDS, Field, HeaderMap, find_header
from .clean import (CONVERTERS, ExportFormatError, ImportResult, Sheet, cell_location, clean_text, convert_rows,
                    open_table, parse_datetime, sheet_from_bytes, sheet_names, sniff)

__all__ = ["parse_studio", "StudioImport", "DayMonth", "parse_day_month", "LANGUAGES", "month_table",
           "months_of", "infer_years", "latest_on_or_before"]


# --------------------------------------------------------------------------- year-less dates

class DayMonth(NamedTuple):
    """A calendar day without its year."""

    month: int
    day: int


#: The languages whose month names a Studio date may use: TikTok writes it in the app's
#: language.  The names are CLDR's, as Babel has them, in every form a date takes
#: (format and stand-alone, wide and abbreviated: "28 de agosto", "28 ส.ค.", "8월 28일",
#: "28 tháng 8").  Croatian is left out: its "listopad" is October, Polish and Czech
#: "listopad" November.
LANGUAGES = ("en", "en_GB", "ru", "uk", "bg", "es", "ca", "pt", "fr", "it", "ro", "de", "nl",
             "sv", "da", "nb", "fi", "pl", "cs", "sk", "hu", "el", "tr", "id", "ms", "fil", "vi",
             "th", "ko", "ja", "zh", "zh_Hant")


def _month_key(name: str) -> str:
    """A month name as it is looked up: NFC, case-folded, without a final point ("aug.",
    "ส.ค.")."""
    return unicodedata.normalize("NFC", name).casefold().strip().rstrip(".")


@functools.cache
def month_table() -> tuple[dict[str, int], frozenset[str]]:
    """:func:`months_of` the :data:`LANGUAGES`, made once, when a Studio date first needs
    it (Babel loads each language's data)."""
    return months_of(LANGUAGES)


def months_of(languages: Sequence[str]) -> tuple[dict[str, int], frozenset[str]]:
    """``(names, ambiguous)``: each month name of the CLDR ``languages`` (a
    :func:`_month_key`) and its month 1-12; the names that mean two months in two of the
    languages, left out of ``names``.

    >>> names, ambiguous = months_of(["pl", "hr"])
    >>> names["sierpnia"], sorted(ambiguous)[:2]
    (8, ['lip', 'lis'])
    """
    from babel import Locale

    months: dict[str, set[int]] = {}
    for code in languages:
        table = Locale.parse(code).months
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for month, name in table[context][width].items():
                    months.setdefault(_month_key(name), set()).add(month)
    ambiguous = frozenset(k for k, v in months.items() if len(v) > 1)
    return {k: min(v) for k, v in months.items() if k not in ambiguous}, ambiguous


_CJK = re.compile(r"^(\d{1,2})\s*月\s*(\d{1,2})\s*[日号號]?$")
# the day, then the month's name (which may hold a space and digits: "tháng 8", "thg 8"),
# with the particles CLDR's patterns put around them ("28. August", "28 de agosto", "aug. 28.",
# "8월 28일"); the name found is then looked up, so that "28" or "Monday" is no date
_DAY_FIRST = re.compile(r"^(\d{1,2})\.?\s*(?:de\s+)?(\S.*?)\.?$")
_MONTH_FIRST = re.compile(r"^(\S.*?)\.?\s*(\d{1,2})(?:st|nd|rd|th|일)?[.,]?$")
_DAYS_IN = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def parse_day_month(value: Any, column: str | None = None, line: int | None = None
                    ) -> DayMonth | dt.date | None:
    """A Studio date: a :class:`DayMonth` when it has no year, else a ``date``; None when blank.

    The day and the month's name or abbreviation in one of the :data:`LANGUAGES`, as
    TikTok writes them in the app's language: "28 August", "Aug 28", "28 апреля",
    "28 de agosto", "28. August", "28 Agustus", "28 tháng 8", "28 ส.ค.", "8월 28일";
    and "9月13日" (Chinese, Japanese).  Dates with a year (ISO, US, xlsx dates) are
    returned as dates.

    >>> parse_day_month("28 August"), parse_day_month("9月13日"), parse_day_month("28 апреля")
    (DayMonth(month=8, day=28), DayMonth(month=9, day=13), DayMonth(month=4, day=28))
    >>> parse_day_month("28 de agosto"), parse_day_month("8월 28일")
    (DayMonth(month=8, day=28), DayMonth(month=8, day=28))
    >>> parse_day_month("2026-07-18")
    datetime.date(2026, 7, 18)

    References
    ----------
    Unicode CLDR, month names and date patterns (https://cldr.unicode.org), through
    Babel (https://babel.pocoo.org).
    """
    text = clean_text(value) if isinstance(value, str) else value
    if text is None or (isinstance(text, str) and text.casefold() in ("undefined", "--")):
        return None
    if isinstance(text, str):
        dm = _day_month_from_text(text.casefold())
        if dm is not None:
            if not 1 <= dm.day <= _DAYS_IN[dm.month - 1]:
                raise ValueError(cell_location(column, line) + f"{value!r} is not a date")
            return dm
    try:
        when = parse_datetime(text, column, line)
    except ValueError:
        raise ValueError(cell_location(column, line) + f"{value!r} is not a date") from None
    return when.date() if when is not None else None


def _day_month_from_text(text: str) -> DayMonth | None:
    """Match the year-less forms; None when the text has none of them."""
    m = _CJK.match(text)
    if m and 1 <= int(m[1]) <= 12:
        return DayMonth(int(m[1]), int(m[2]))
    names, _ = month_table()
    m = _DAY_FIRST.match(text)
    month = m and names.get(_month_key(m[2]))
    if month:
        return DayMonth(month, int(m[1]))
    m = _MONTH_FIRST.match(text)
    month = m and names.get(_month_key(m[1]))
    if month:
        return DayMonth(month, int(m[2]))
    return None


def _dated(dm: DayMonth, year: int) -> dt.date:
    """``dm`` in ``year``; ValueError for 29 February of a common year."""
    return dt.date(year, dm.month, dm.day)


def latest_on_or_before(dm: DayMonth, anchor: dt.date) -> dt.date:
    """The most recent date with this day and month that is not after ``anchor``.

    >>> latest_on_or_before(DayMonth(12, 30), dt.date(2026, 1, 4))
    datetime.date(2025, 12, 30)
    """
    year = anchor.year if (dm.month, dm.day) <= (anchor.month, anchor.day) else anchor.year - 1
    for y in range(year, year - 8, -1):      # 29 February: back to a leap year
        try:
            return _dated(dm, y)
        except ValueError:
            continue
    raise ValueError(f"no date {dm.month}/{dm.day}")


def infer_years(days: Sequence[DayMonth | dt.date], reference: dt.date) -> list[dt.date]:
    """Dates for a chronological sequence of year-less days ending on or before ``reference``.

    The last row gets the latest year that keeps it on or before the
    reference; going back, each step to a later calendar day crosses a New
    Year (so Dec → Jan gets consecutive years).  A file listed newest first
    is recognised (reading it that way spans less time) and dated the same
    way.  Entries that already have a year are kept.

    >>> infer_years([DayMonth(12, 30), DayMonth(12, 31), DayMonth(1, 1)], dt.date(2026, 3, 1))
    [datetime.date(2025, 12, 30), datetime.date(2025, 12, 31), datetime.date(2026, 1, 1)]
    """
    oldest_first: list[dt.date] | None = None
    try:
        oldest_first = _years_backwards(days, reference)
        newest_first = _years_backwards(days[::-1], reference)[::-1]
    except ValueError:
        if oldest_first is not None:
            return oldest_first
        return _years_backwards(days[::-1], reference)[::-1]
    return newest_first if _span(newest_first) < _span(oldest_first) else oldest_first


def _span(dates: Sequence[dt.date]) -> int:
    return (max(dates) - min(dates)).days if dates else 0


def _years_backwards(days: Sequence[DayMonth | dt.date], reference: dt.date) -> list[dt.date]:
    """Years for days read oldest first: from the last row back, one year less per wrap-around."""
    out: list[dt.date] = [None] * len(days)  # type: ignore[list-item]
    after: DayMonth | None = None
    year = 0
    for i in range(len(days) - 1, -1, -1):
        d = days[i]
        if isinstance(d, dt.date):
            out[i], after, year = d, DayMonth(d.month, d.day), d.year
            continue
        if after is None:
            year = latest_on_or_before(d, reference).year
        elif (d.month, d.day) > (after.month, after.day):
            year -= 1
        out[i] = _dated(d, year)
        after = d
    return out


# --------------------------------------------------------------------------- files

@dataclass
class StudioImport:
    """What :func:`parse_studio` read: ``videos`` and ``brand`` results (None when the file is absent).

    Iterating gives the results present, so ``for result in parse_studio(p)``
    works like a list.  ``not_imported`` lists (file name, reason) for the
    files that have no target table or were not recognised.
    """

    videos: ImportResult | None = None
    brand: ImportResult | None = None
    not_imported: list[tuple[str, str]] = field(default_factory=list)

    @property
    def results(self) -> list[ImportResult]:
        return [r for r in (self.videos, self.brand) if r is not None]

    def __iter__(self) -> Iterator[ImportResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


_KNOWN = {"overview": "overview", "followerhistory": "followers", "content": "content"}
_NO_TABLE = {"viewers", "followeractivity", "followergender", "followertopterritories"}
_SPECS: dict[str, tuple[tuple[Field, ...], frozenset[str]]] = {
    "content": (CONTENT_FIELDS, frozenset({"video_link"})),
    "overview": (OVERVIEW_FIELDS, frozenset({"views", "profile_views"})),
    "followers": (FOLLOWER_FIELDS, frozenset({"followers"})),
}

Opener = Callable[[], Sheet]

#: Bytes a Studio export zip may inflate to (its CSVs hold a few hundred rows each), besides
#: the bounds every zip is held to (:mod:`xl_kpis.package`).
MAX_UNZIPPED = 64 << 20


def _members(path: str) -> list[tuple[str, Opener]]:
    """(file name, opener) of each table of the export, in name order."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(".csv"))
        return [(n, lambda p=os.path.join(path, n): open_table(p)) for n in names]
    kind = sniff(path)
    if kind == "xlsx":
        return [(s, lambda s=s: open_table(path, sheet=s)) for s in sheet_names(path)]
    if kind == "csv":
        return [(os.path.basename(path), lambda: open_table(path))]
    try:
        with open_zip(path, max_total=MAX_UNZIPPED) as z:
            infos = [i for i in z.infolist() if not i.is_dir() and i.filename.lower().endswith(".csv")
                     and not i.filename.startswith("__MACOSX/")]
            data = {os.path.basename(i.filename): z.read(i) for i in sorted(infos, key=lambda i: i.filename)}
    except PackageError as e:
        raise ExportFormatError(str(e)) from e
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
        raise ExportFormatError(f"{os.path.basename(path)}: is a damaged zip file ({e})") from e
    return [(n, lambda n=n, b=b: sheet_from_bytes(b, n)) for n, b in data.items()]


def _stem(name: str) -> str:
    """``"Follower History (1).csv"`` → ``"followerhistory"``."""
    stem = os.path.splitext(name)[0] if name.lower().endswith(".csv") else name
    return re.sub(r"[^a-z]", "", re.sub(r"\(\d+\)", "", stem.casefold()))


def _identify(name: str, opener: Opener) -> str | None:
    """"overview" | "followers" | "content" | None, by file name, else by header."""
    stem = _stem(name)
    if stem in _KNOWN:
        return _KNOWN[stem]
    if stem in _NO_TABLE:
        return None
    for kind, (fields, needed) in _SPECS.items():
        try:
            _, _, rows = find_header(opener(), fields, required_any=needed, min_matches=2, scan=5)
        except ExportFormatError:
            continue
        rows.close()  # type: ignore[attr-defined]
        return kind
    return None


@dataclass
class _Table:
    """One Studio file converted: rows with year-less dates still as DayMonth."""

    name: str
    hmap: HeaderMap
    rows: list[dict[str, Any]]
    skipped: list[tuple[int, str]]
    lines: list[int] = field(default_factory=list)           #: the line of each row
    blanks: list[tuple[int, str, str]] = field(default_factory=list)


def _read(name: str, opener: Opener, kind: str) -> _Table:
    """Convert one Studio file (dates left year-less)."""
    fields, needed = _SPECS[kind]
    sheet = opener()
    _, hmap, rows = find_header(sheet, fields, required_any=needed, min_matches=2)
    converters = {**CONVERTERS, "daymonth": parse_day_month}
    date_key = "posted" if kind == "content" else "date"

    lines: list[int] = []

    def post(line: int, cells: list, row: dict) -> str | None:
        if kind == "content":
            reason = None if row.get("video_link") else "no video link"
        else:
            reason = None if row.get(date_key) is not None else "no date"
        if reason is None:
            lines.append(line)
        return reason

    blanks: list[tuple[int, str, str]] = []
    out, skipped = convert_rows(rows, hmap.columns, converters, post=post, blanks=blanks)
    return _Table(name, hmap, out, [(line, f"{name}: {reason}") for line, reason in skipped],
                  lines, [(line, f"{name}, {header}", text) for line, header, text in blanks])


def _lines(lines: Sequence[int]) -> str:
    """``lines 2-63`` (or ``line 2``)."""
    if not lines:
        return "no lines"
    return f"line {lines[0]}" if len(lines) == 1 else f"lines {min(lines)}-{max(lines)}"


def _year_note(table: _Table, key: str, dated: Sequence[dt.date], how: str) -> str | None:
    """What the import says about the year it gave the year-less dates of a file."""
    lines = [line for line, r in zip(table.lines, table.rows) if isinstance(r.get(key), DayMonth)]
    if not lines:
        return None
    days = [d for d, r in zip(dated, table.rows) if isinstance(r.get(key), DayMonth)]
    return (f"{table.name}: {len(lines)} dates without a year ({_lines(lines)}) read as "
            f"{min(days):%Y-%m-%d} to {max(days):%Y-%m-%d}, {how}")


def _date_series(table: _Table, reference: dt.date) -> list[dict[str, Any]]:
    """Daily rows with real dates (years inferred over the whole file)."""
    try:
        dates = infer_years([r["date"] for r in table.rows], reference)
    except ValueError as e:
        raise ExportFormatError(f"{table.name}: the inferred years put 29 February in a common "
                                f"year ({e}); give the year of the last row explicitly") from e
    return [{**r, "date": d} for r, d in zip(table.rows, dates)]


# --------------------------------------------------------------------------- tables

_BRAND_SUMS = ("views", "profile_views", "likes", "comments", "shares")


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _days_in_month(period: dt.date) -> int:
    return ((period.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - period).days


def _brand(overview: list[dict] | None, followers: list[dict] | None, sums: Sequence[str],
           headers: dict[str, str] | None = None) -> tuple[list[dict], list[str]]:
    """Monthly Brand rows from daily Overview / FollowerHistory rows, plus notes on partial
    months and on months where a column has no value on any day (left blank).

    ``sums``: the Overview keys present in the file (summed per month); ``headers``:
    their headers in the file.
    """
    months: dict[dt.date, dict[str, Any]] = {}
    days: dict[dt.date, set[dt.date]] = {}
    for r in sorted(followers or [], key=lambda r: r["date"]):
        row = months.setdefault(_month(r["date"]), {})
        days.setdefault(_month(r["date"]), set()).add(r["date"])
        if r.get("followers") is not None:
            row.setdefault("followers_start", r["followers"])
            row["followers_end"] = r["followers"]
    for r in overview or []:
        row = months.setdefault(_month(r["date"]), {})
        days.setdefault(_month(r["date"]), set()).add(r["date"])
        for key in sums:
            if r[key] is not None:
                row[key] = row.get(key, 0.0) + r[key]
    keys = (["followers_start", "followers_end"] if followers is not None else []) + list(sums)
    rows = [{"period": period, **{k: row.get(k) for k in keys}} for period, row in sorted(months.items())]
    notes = [f"{p:%Y-%m}: data for {len(d)} of {_days_in_month(p)} days (partial month)"
             for p, d in sorted(days.items()) if len(d) < _days_in_month(p)]
    overview_days = {}
    for r in overview or []:
        overview_days.setdefault(_month(r["date"]), set()).add(r["date"])
    for period, row in sorted(months.items()):
        n = len(overview_days.get(period, ()))
        notes += [f"{period:%Y-%m}: no {(headers or {}).get(key, key)} on any of its {n} days"
                  " in the export: left blank, not 0" for key in sums if n and key not in row]
    return rows, notes


def _videos(table: _Table, anchor: dt.date) -> list[dict[str, Any]]:
    """Videos rows: each year-less post date placed on or before ``anchor``."""
    out = []
    for r in table.rows:
        posted = r.get("posted")
        if isinstance(posted, DayMonth):
            r = {**r, "posted": latest_on_or_before(posted, anchor)}
        out.append(r)
    return out


def parse_studio(path: str | os.PathLike[str], year: int | None = None,
                 today: dt.date | None = None) -> StudioImport:
    """Read a TikTok Studio export into ``Videos`` and ``Brand`` results.

    ``Videos`` (from Content): ``video_link`` (dedup key), ``title``,
    ``posted``, ``likes``, ``comments``, ``shares``, ``views``.  ``Brand``
    (monthly, from FollowerHistory and Overview): ``period`` (first day of the
    month, dedup key), ``followers_start`` / ``followers_end`` (first and last
    day with data in the month), ``views``, ``profile_views``, ``likes``,
    ``comments``, ``shares`` (sums over the days present).  Columns the user
    types (content type, saves, mentions ...) are never set.  ``year`` is the
    year of the most recent row; without it the year comes from ``today``.
    """
    name = os.fspath(path)
    reference = dt.date(year, 12, 31) if year else (today or dt.date.today())
    result = StudioImport()
    tables: dict[str, _Table] = {}
    for member, opener in _members(name):
        kind = _identify(member, opener)
        if kind is None:
            reason = "no target table" if _stem(member) in _NO_TABLE else "not a recognised Studio file"
            result.not_imported.append((member, reason))
        elif kind in tables:
            result.not_imported.append((member, f"a second {kind} file"))
        else:
            tables[kind] = _read(member, opener, kind)
    if not tables:
        raise ExportFormatError(f"{os.path.basename(name)}: no Overview, FollowerHistory or Content "
                                "file found in this Studio export")

    how = (f"the last row in {year} (--year)" if year else
           f"the last row on or before today, {reference:%Y-%m-%d} (give --year if the export"
           " ends in another year)")
    series = {k: _date_series(tables[k], reference) for k in ("overview", "followers") if k in tables}
    if series:
        sums = [k for k in _BRAND_SUMS if "overview" in tables and k in tables["overview"].hmap.columns]
        headers = {k: tables["overview"].hmap.columns[k][2] for k in sums}
        rows, notes = _brand(series.get("overview"), series.get("followers"), sums, headers)
        parts = [tables[k] for k in ("followers", "overview") if k in tables]
        years = [_year_note(tables[k], "date", [r["date"] for r in series[k]], how)
                 for k in ("followers", "overview") if k in series]
        result.brand = ImportResult(
            kind="studio", table="Brand", rows=rows, key_fields=("period",),
            skipped=[s for t in parts for s in t.skipped],
            unmapped_headers=[h for t in parts for h in t.hmap.unmapped],
            source=" + ".join(t.name for t in parts),
            fields=("period",) + (("followers_start", "followers_end") if "followers" in tables else ())
            + tuple(sums), notes=[n for n in years if n] + notes,
            blanks=[b for t in parts for b in t.blanks])
        first = min((r["date"] for s in series.values() for r in s), default=None)
        if first is not None and first.day != 1:
            month = _month(first)
            result.brand.fill_only.update(
                (i, f"the export starts on {first:%Y-%m-%d}, in the middle of {month:%Y-%m}:"
                    f" the {month:%Y-%m} already in the book is kept")
                for i, r in enumerate(rows) if r["period"] == month)
    if "content" in tables:
        content = tables["content"]
        last_days = [s[-1]["date"] for s in series.values() if s]
        anchor = max(last_days) if last_days else reference
        videos = _videos(content, anchor)
        where = ("the export's last day" if last_days else
                 f"31 December {year}, --year" if year else "today")
        note = _year_note(content, "posted", [r.get("posted") for r in videos],
                          f"each the latest such day on or before {anchor:%Y-%m-%d} ({where})")
        result.videos = ImportResult(
            kind="studio", table="Videos", rows=videos, key_fields=("video_link",),
            skipped=content.skipped, unmapped_headers=list(content.hmap.unmapped), source=content.name,
            fields=tuple(content.hmap.columns), notes=[note] if note else [],
            blanks=content.blanks)
    return result
