"""Import a TikTok export into a workbook: parse, deduplicate, append, refresh.

:func:`import_export` is what ``xl-kpis import`` runs:

1. refuse when the book is open in Excel or LibreOffice
   (:class:`~xl_kpis.book.files.BookLocked`);
2. parse the export (:mod:`xl_kpis.imports`), then lock the book against other
   xl-kpis commands until it is written (:func:`~xl_kpis.book.files.writing`:
   two imports into one book run one after the other, none is lost);
3. keep the keys the target table has (others, e.g. an ads ``breakdown``,
   are reported as not imported);
4. deduplicate: a row identical to an earlier row of the export is
   dropped; the others are matched to the book's rows by key (the export's
   ``key_fields`` the table has; ids compared as text, dates as dates),
   duplicates counted (see :func:`_plan`).  Re-importing an export adds
   nothing, and rows already in the book, with whatever the seller typed
   into them (content type, rating, brand mentions …), are never touched;
5. append the new rows (:func:`~xl_kpis.book.append.append_rows`) to a scratch
   copy beside the book (:func:`~xl_kpis.book.files.scratch`) and refresh that
   copy into the book (:func:`~xl_kpis.book.refresh.refresh`), so the book is
   replaced once, atomically, and stays as it was when anything fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError

from . import files, schema as S
from .append import append_rows
from .patch import BookFormatError, check_workbook_file
from .refresh import Kept, RefreshResult, read_inputs, refresh

__all__ = ["KINDS", "ALREADY", "REPEATED", "TableReport", "ImportReport", "import_export",
           "key_value"]

#: The export kinds and what a row of each target table is called in messages.
KINDS = ("ads", "orders", "studio")
_NOUNS = {"Campaigns": "report rows", "Orders": "order lines", "Videos": "videos",
          "Brand": "rows"}

#: Skip reasons of the importer itself (the parsers add their own).
ALREADY = "already in the book"
REPEATED = "repeated in the export"

_LINE = re.compile(r"^line (\d+)(?:, |: )")


@dataclass
class TableReport:
    """What an import did to one table.

    Attributes
    ----------
    table : str
        The target table.
    source : str
        The file (or member) read.
    added : int
        Rows appended.
    skipped : list of (int or None, str)
        ``(line in the export or None, reason)`` of every row not added: the
        parser's (description row, total row, bad cell …) and the
        importer's (:data:`ALREADY`, :data:`REPEATED`).
    dropped : list of str
        Canonical keys the export carries but the table has no column for.
    unmapped : list of str
        Export headers the parser did not recognise.
    notes : list of str
        Anything else worth telling (partial months of a Studio export …).
    first_row : int or None
        The sheet row of the first added row.
    """

    table: str
    source: str = ""
    added: int = 0
    skipped: list[tuple[int | None, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_row: int | None = None

    @property
    def read(self) -> int:
        """Rows looked at: added + skipped."""
        return self.added + len(self.skipped)

    def reasons(self) -> dict[str, list[int | None]]:
        """Skip reason (its ``line N,`` prefix removed) → the lines it applies to."""
        out: dict[str, list[int | None]] = {}
        for line, reason in self.skipped:
            out.setdefault(_LINE.sub("", reason), []).append(line)
        return out

    def categories(self) -> Counter:
        """Skips counted as :data:`ALREADY`, :data:`REPEATED` or "not importable"."""
        return Counter(r if r in (ALREADY, REPEATED) else "not importable"
                       for _, r in self.skipped)


@dataclass
class ImportReport:
    """What :func:`import_export` did.

    Attributes
    ----------
    kind : str
        ``"ads"``, ``"orders"`` or ``"studio"``.
    src, book : Path
        The export and the workbook.
    tables : list of TableReport
        One per target table (Studio: Videos and Brand).
    not_imported : list of (str, str)
        Studio files left out, and why.
    refresh : RefreshResult or None
        The refresh of the book; None when no row was new (the book was not
        written).
    """

    kind: str
    src: Path
    book: Path
    tables: list[TableReport] = field(default_factory=list)
    not_imported: list[tuple[str, str]] = field(default_factory=list)
    refresh: RefreshResult | None = None

    @property
    def added(self) -> int:
        return sum(t.added for t in self.tables)

    @property
    def skipped(self) -> int:
        return sum(len(t.skipped) for t in self.tables)

    @property
    def kept(self) -> list[Kept]:
        """Formula cells the refresh left as they were (see :class:`refresh.Kept`)."""
        return list(self.refresh.kept) if self.refresh else []

    def summary(self, max_reasons: int = 12, max_kept: int = 10) -> list[str]:
        """The report as lines of text (what ``xl-kpis import`` prints)."""
        lines = []
        for t in self.tables:
            lines += _table_lines(t, max_reasons)
        lines += [f"  not imported: {name} ({why})" for name, why in self.not_imported]
        if self.refresh is None:
            lines.append(f"  {self.book.name} was not changed.")
        else:
            lines.append(f"  refreshed {self.refresh.formulas:,} formulas"
                         f" ({self.refresh.changed:,} values changed).")
            kept = self.kept
            lines += [f"  kept: {k}" for k in kept[:max_kept]]
            more = len(kept) + self.refresh.kept_more - max_kept
            if more > 0:
                lines.append(f"  … and {more:,} more formula cells kept")
        return lines


def _lines_note(lines: Sequence[int | None]) -> str:
    known = sorted(x for x in lines if x is not None)
    if not known:
        return ""
    shown = ", ".join(str(x) for x in known[:5]) + (" …" if len(known) > 5 else "")
    return f" (line{'s' if len(known) > 1 else ''} {shown})"


def _header(table: str, key: str) -> str:
    """What the seller calls a column: its header in the table, else the key in words."""
    try:
        return S.TABLE[table].header_of(key)
    except KeyError:
        return key.replace("_", " ")


def _table_lines(t: TableReport, max_reasons: int) -> list[str]:
    cats = ", ".join(f"{n:,} {c}" for c, n in t.categories().most_common())
    lines = [f"Imported {t.read:,} {_NOUNS.get(t.table, 'rows')} into {t.table}: "
             f"{t.added:,} added, {len(t.skipped):,} skipped" + (f" ({cats})" if cats else "")]
    reasons = sorted(t.reasons().items(), key=lambda kv: -len(kv[1]))
    for reason, where in reasons[:max_reasons]:
        lines.append(f"  - {len(where):,} {reason}{_lines_note(where)}")
    if len(reasons) > max_reasons:
        rest = sum(len(w) for _, w in reasons[max_reasons:])
        lines.append(f"  - … {len(reasons) - max_reasons:,} more reasons ({rest:,} rows)")
    if t.dropped:
        named = [_header(t.table, k) for k in t.dropped]
        lines.append(f"  not imported (no column in {t.table}): {', '.join(named)}")
    if t.unmapped:
        more = f" … ({len(t.unmapped)} in all)" if len(t.unmapped) > 6 else ""
        lines.append(f"  export columns not used: {', '.join(t.unmapped[:6])}{more}")
    lines += [f"  note: {n}" for n in t.notes]
    return lines


# --- keys ---------------------------------------------------------------------------------

_DATE_KINDS = frozenset({"date", "month", "datetime"})
_EPOCH = dt.datetime(1899, 12, 30)


def key_value(v: Any, kind: str | None = None) -> Any:
    """A key cell as compared between the export and the book.

    Blank is None; text is stripped; ids and whole numbers become text
    (``576…123.0`` and ``"576…123"`` match); dates and times compare as
    dates (midnight) or datetimes to the second, also when the book holds a
    date as a serial number.

    >>> key_value(" 576461234567890123\\t", "id"), key_value(12.0, "id")
    ('576461234567890123', '12')
    >>> key_value(dt.datetime(2026, 7, 1)), key_value(46204.0, "date")
    (datetime.date(2026, 7, 1), datetime.date(2026, 7, 1))
    """
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if kind in _DATE_KINDS:
            return key_value(_EPOCH + dt.timedelta(days=float(v)))
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if isinstance(v, dt.datetime):
        v = (v.replace(tzinfo=None) + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
        return v.date() if v.time() == dt.time() else v
    return v


def _key(row: Mapping[str, Any], keys: Sequence[tuple[str, str | None]]) -> tuple:
    return tuple(key_value(row.get(k), kind) for k, kind in keys)


def _book_keys(columns: Mapping[str, Sequence[Any]], keys: Sequence[tuple[str, str | None]]
               ) -> Counter:
    """How many rows of the book have each key (blank rows left out)."""
    n = max((len(v) for v in columns.values()), default=0)
    cols = [(columns.get(k) or [None] * n, kind) for k, kind in keys]
    out: Counter = Counter()
    for i in range(n):
        key = tuple(key_value(c[i], kind) for c, kind in cols)
        if any(x is not None for x in key):
            out[key] += 1
    return out


# --- planning -------------------------------------------------------------------------------

@dataclass
class _Plan:
    report: TableReport
    rows: list[dict[str, Any]]


def _plan(result: Any, book_columns: Mapping[str, Sequence[Any]]) -> _Plan:
    """The rows of one parser result to append to its table, and the report.

    A row identical to an earlier row of the export is :data:`REPEATED`.  The
    other rows are matched to the book by key (the export's ``key_fields``
    the table has), as multisets: when the book holds ``m`` rows with a key,
    the first ``m`` rows of the export with that key are :data:`ALREADY` in it
    and the others are added.  So re-importing adds nothing, and two genuinely
    different lines sharing a key (the same SKU twice in an order, with
    different discounts) are both kept.
    """
    table = S.TABLE[result.table]
    kinds = {c.key: c.kind for c in table.inputs}
    fields = list(result.fields)
    carried = [k for k in fields if k in book_columns]
    report = TableReport(result.table, result.source, skipped=list(result.skipped),
                         dropped=[k for k in fields if k not in book_columns],
                         unmapped=list(result.unmapped_headers), notes=list(result.notes))
    key = [(k, kinds[k]) for k in result.key_fields if k in book_columns] or \
        [(k, kinds[k]) for k in carried]
    in_book = _book_keys(book_columns, key)
    seen: set[tuple] = set()
    rows = []
    for row in result.rows:
        content = tuple(row.get(k) for k in fields)
        if content in seen:
            report.skipped.append((None, REPEATED))
            continue
        seen.add(content)
        row_key = _key(row, key)
        if in_book[row_key] > 0:
            in_book[row_key] -= 1
            report.skipped.append((None, ALREADY))
            continue
        rows.append(row if not report.dropped else {k: row[k] for k in carried if k in row})
    report.added = len(rows)
    return _Plan(report, rows)


def _parse(kind: str, src: Path, year: int | None) -> tuple[list[Any], list[tuple[str, str]]]:
    """The parser results of an export and the files it did not import."""
    from xl_kpis.imports import parse_ads, parse_orders, parse_studio

    if kind == "ads":
        return [parse_ads(src)], []
    if kind == "orders":
        return [parse_orders(src)], []
    studio = parse_studio(src, year=year)
    return studio.results, list(studio.not_imported)


# --- the import -------------------------------------------------------------------------------

@contextlib.contextmanager
def _book_errors(book: Path):
    """XML the workbook's parts cannot be parsed from (malformed, or declaring entities:
    a billion-laughs bomb) as a one-line :class:`BookFormatError`."""
    try:
        yield
    except (DefusedXmlException, ParseError) as e:
        raise BookFormatError(f"{book}: a part of the workbook is not readable XML"
                              f" ({type(e).__name__})") from e


def import_export(kind: str, src: str | os.PathLike, book: str | os.PathLike,
                  year: int | None = None,
                  progress: Callable[[str], None] | None = None) -> ImportReport:
    """Import a TikTok export into the tables of ``book`` and refresh its formulas.

    Parameters
    ----------
    kind : {"ads", "orders", "studio"}
        The export: an Ads Manager report (→ Campaigns), a Seller Center
        order export (→ Orders), a TikTok Studio export, zip or folder
        (→ Videos and Brand).
    src : path
        The export file (or folder, for Studio).
    book : path
        The xl-kpis workbook (``.xlsx``/``.xlsm``), changed in place.
    year : int, optional
        Studio only: the year of the export's last row (its dates have none).
    progress : callable, optional
        Called with a short message at each step.

    Returns
    -------
    ImportReport
        Rows added and skipped (with reasons) per table, the refresh result.

    Raises
    ------
    xl_kpis.book.files.BookLocked
        The book is open in Excel or LibreOffice (nothing was read or
        written), or another xl-kpis kept writing it for longer than
        :func:`~xl_kpis.book.files.lock_wait`.
    xl_kpis.imports.ExportFormatError
        The export is not what ``kind`` says, or is damaged.
    xl_kpis.book.patch.BookFormatError
        The book is not an xl-kpis workbook, or is damaged.
    xl_kpis.book.files.BookWriteError
        The book cannot be written (read-only folder, full disk): it is unchanged.

    Notes
    -----
    When anything fails the book is left as it was: the rows are appended to
    a scratch copy beside it, which the refresh writes over the book
    atomically (then the copy is deleted).  When no row is new the book is
    not written at all.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    src, book = Path(src), Path(book)
    say = progress or (lambda message: None)
    files.check_not_open(book)
    check_workbook_file(book)
    say("reading the export")
    results, not_imported = _parse(kind, src, year)
    with files.writing(book):           # from reading the book to replacing it
        say("reading the book")
        with _book_errors(book):
            tables, _ = read_inputs(book)
        plans = [_plan(r, tables[r.table]) for r in results]
        report = ImportReport(kind, src, book, [p.report for p in plans], not_imported)
        todo = {p.report.table: p.rows for p in plans if p.rows}
        if not todo:
            return report
        say(f"appending {sum(len(r) for r in todo.values()):,} rows")
        with files.scratch(book) as scratch, _book_errors(book):
            with open(scratch, "wb") as f:   # the refresh rewrites it: fast compression
                done = append_rows(book, todo, out=f, compresslevel=1)
            for p in plans:
                if p.report.table in done:
                    p.report.first_row = done[p.report.table].first_row
            report.refresh = refresh(scratch, out=book, progress=progress)
    return report
