"""Import a TikTok export into a workbook: parse, match, update and append, refresh.

:func:`import_export` is what ``xl-kpis import`` runs:

1. refuse when the book is open in Excel or LibreOffice
   (:class:`~xl_kpis.book.files.BookLocked`);
2. parse the export (:mod:`xl_kpis.imports`), then lock the book against other
   xl-kpis commands until it is written (:func:`~xl_kpis.book.files.writing`:
   two imports into one book run one after the other, none is lost);
3. keep the keys the target table has (others, e.g. an ads ``breakdown``,
   are reported as not imported);
4. match the rows to the book by the export's own keys (``key_fields``:
   order and SKU, ad or campaign and date, video link, month; ids compared
   as text, dates as dates; see :func:`_plan`).  A row whose key is in the
   book **updates** that row with the values that differ (a status, an
   amount, a refund, a delivered time, a video's views): a blank in the
   export never erases a value, and the columns the export does not carry
   (content type, rating, brand mentions, anything the seller typed) are
   never touched.  A row equal to the book's is unchanged; a new key is
   added.  Re-importing an export changes nothing and does not write;
5. an undated Ads Manager report is a total for a period: dated by that
   period's first day when the file (or ``--period``) gives the period,
   otherwise its totals replace the undated totals of the same campaigns;
6. an order import sets the Start sheet's period length to the months the
   orders cover, unless the seller typed their own (then it says so);
7. update and append (:func:`~xl_kpis.book.append.append_rows`) into a scratch
   copy beside the book (:func:`~xl_kpis.book.files.scratch`) and refresh that
   copy into the book (:func:`~xl_kpis.book.refresh.refresh`), so the book is
   replaced once, atomically, and stays as it was when anything fails.

Everything the import decided is in the report: rows added, updated (with
examples of what changed), unchanged and skipped (with the reason and the
lines), cells read as blank (``<5``, ``--``, ``undefined``), years inferred,
the period, and what the KPIs cannot measure without data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError

from ..imports import parse_ads, parse_orders, parse_studio
from ..imports.clean import lines_note, skip_lines, skip_reasons
from ..xlsx.books import BookFormatError, check_workbook_file, defined_names
from ..xlsx.dates import from_serial
from ..xlsx.refs import sheet_ref
from . import files, schema as S
from .append import append_rows
from .formulas import Column, Ref, walk
from .refresh import Kept, RefreshResult, read_inputs, refresh

__all__ = ["KINDS", "REPEATED", "OLDER", "Change", "TableReport", "ImportReport", "import_export",
           "key_value", "parse_period", "period_months"]

#: The export kinds and what a row of each target table is called in messages.
KINDS = ("ads", "orders", "studio")
_NOUNS = {"Campaigns": "report rows", "Orders": "order lines", "Videos": "videos",
          "Brand": "rows"}

#: Skip reasons of the importer itself (the parsers add their own).
REPEATED = "repeated in the export"
OLDER = ("older than the book's line (its status, refund, or delivered or cancelled time is"
         " further along there): the book's kept")

#: How many updated rows a report shows as examples.
EXAMPLES = 3

@dataclass
class Change:
    """A row of the book updated from the export.

    Attributes
    ----------
    row : int
        The row's index in the table (0: the first row below the header).
    what : str
        The row as the seller knows it (``order 576100100002``, ``campaign
        Summer Sale``, ``video "New drop"``, ``month 2026-01``).
    fields : list of (str, Any, Any)
        ``(header, old value, new value)`` of each cell that changed.
    kinds : list of str
        The kind of each of those columns (:data:`schema.KINDS`), for showing the values.
    """

    row: int
    what: str
    fields: list[tuple[str, Any, Any]]
    kinds: list[str | None] = field(default_factory=list)

    def __str__(self) -> str:
        kinds = self.kinds or [None] * len(self.fields)
        changes = ", ".join(f"{_lower(h)} {_shown(a, k)} → {_shown(b, k)}"
                            for (h, a, b), k in zip(self.fields, kinds))
        return f"{self.what}: {changes}"


def _lower(header: str) -> str:
    return header[:1].lower() + header[1:] if not header[:2].isupper() else header


def _shown(v: Any, kind: str | None = None) -> str:
    """A cell value as a message shows it (money with cents, counts whole)."""
    if v is None or v == "":
        return "(blank)"
    if isinstance(v, (int, float)) and not isinstance(v, bool) and kind in _DATE_KINDS:
        v = key_value(v, kind)
    if isinstance(v, dt.datetime):
        return f"{v:%Y-%m-%d %H:%M}" if (v.hour, v.minute, v.second) != (0, 0, 0) \
            else f"{v:%Y-%m-%d}"
    if isinstance(v, dt.date):
        return f"{v:%Y-%m-%d}"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if kind == "money":
            return f"{v:,.2f}"
        return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.4g}"
    return str(v)


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
    updated : list of Change
        Rows of the book whose cells the export changed.
    unchanged : int
        Rows of the export the book already holds as they are.
    skipped : list of (int or None, str)
        ``(line in the export or None, reason)`` of every row not imported:
        the parser's (description row, total row, bad cell …) and the
        importer's (:data:`REPEATED`, a partial month the book has).
    blanks : list of (int, str, str)
        ``(line, column, text)`` of the cells read as blank (``<5``, ``--``,
        ``undefined``).
    dropped : list of str
        Canonical keys the export carries but the table has no column for.
    unmapped : list of str
        Export headers the parser did not recognise.
    notes : list of str
        Everything else the import decided or inferred (years of Studio
        dates, partial months, the period of an undated report, the period
        length, delivered orders read from their status, KPIs not measured).
    first_row : int or None
        The sheet row of the first added row.
    """

    table: str
    source: str = ""
    added: int = 0
    updated: list[Change] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[int | None, str]] = field(default_factory=list)
    blanks: list[tuple[int, str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_row: int | None = None

    @property
    def read(self) -> int:
        """Rows looked at: added + updated + unchanged + skipped."""
        return self.added + len(self.updated) + self.unchanged + len(self.skipped)

    def reasons(self) -> dict[str, list[int | None]]:
        """Skip reason (its ``line N,`` prefix removed) → the lines it applies to."""
        return skip_reasons(self.skipped)

    def blanked(self) -> dict[tuple[str, str], list[int]]:
        """``(text as written, column) -> lines`` of the cells read as blank."""
        out: dict[tuple[str, str], list[int]] = {}
        for line, column, text in self.blanks:
            out.setdefault((text, column), []).append(line)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (counts are integers)."""
        return {
            "table": self.table, "source": self.source, "read": self.read,
            "added": self.added, "updated": len(self.updated), "unchanged": self.unchanged,
            "skipped": len(self.skipped),
            "skipped_reasons": {r: len(lines) for r, lines in self.reasons().items()},
            "changes": [{"row": c.row, "what": c.what,
                         "fields": {h: [_json(a), _json(b)] for h, a, b in c.fields}}
                        for c in self.updated],
            "read_as_blank": [{"text": t, "column": c, "cells": len(lines), "lines": lines}
                              for (t, c), lines in self.blanked().items()],
            "not_imported_columns": list(self.dropped), "unused_columns": list(self.unmapped),
            "notes": list(self.notes),
        }


def _json(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


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
    settings : dict
        Settings of the Start sheet the import changed: ``name -> (old, new)``.
    refresh : RefreshResult or None
        The refresh of the book; None when nothing changed (the book was
        not written).
    """

    kind: str
    src: Path
    book: Path
    tables: list[TableReport] = field(default_factory=list)
    not_imported: list[tuple[str, str]] = field(default_factory=list)
    settings: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    refresh: RefreshResult | None = None

    @property
    def added(self) -> int:
        return sum(t.added for t in self.tables)

    @property
    def updated(self) -> int:
        return sum(len(t.updated) for t in self.tables)

    @property
    def unchanged(self) -> int:
        return sum(t.unchanged for t in self.tables)

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

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``xl-kpis import --json`` prints)."""
        return {
            "kind": self.kind, "export": str(self.src), "book": str(self.book),
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "skipped": self.skipped, "tables": [t.as_dict() for t in self.tables],
            "not_imported": [{"file": n, "why": w} for n, w in self.not_imported],
            "settings": {k: {"old": a, "new": b} for k, (a, b) in self.settings.items()},
            "written": self.refresh is not None,
            "refreshed_formulas": self.refresh.formulas if self.refresh else 0,
            "kept": [str(k) for k in self.kept],
        }


def _header(table: str, key: str) -> str:
    """What the seller calls a column: its header in the table, else the key in words."""
    try:
        return S.TABLE[table].header_of(key)
    except KeyError:
        return key.replace("_", " ")


def _table_lines(t: TableReport, max_reasons: int) -> list[str]:
    lines = [f"Imported {t.read:,} {_NOUNS.get(t.table, 'rows')} into {t.table}: "
             f"{t.added:,} added, {len(t.updated):,} updated, {t.unchanged:,} unchanged, "
             f"{len(t.skipped):,} skipped"]
    for c in t.updated[:EXAMPLES]:
        lines.append(f"  updated {c}")
    if len(t.updated) > EXAMPLES:
        fields = Counter(_lower(h) for c in t.updated for h, _, _ in c.fields)
        lines.append(f"  … and {len(t.updated) - EXAMPLES:,} more rows updated ("
                     + ", ".join(f"{h} {n:,}" for h, n in fields.most_common()) + " in all)")
    lines += skip_lines(t.skipped, max_reasons, lead="skipped ")
    blanked = sorted(t.blanked().items(), key=lambda kv: (kv[0][0], kv[1][0]))
    for (text, column), where in blanked[:max_reasons]:
        cells = f"{len(where):,} cell{'s' if len(where) > 1 else ''}"
        lines.append(f"  - read as blank: {cells} {text!r} in {column}{lines_note(where)}")
    if len(blanked) > max_reasons:
        rest = sum(len(w) for _, w in blanked[max_reasons:])
        lines.append(f"  - read as blank: … {rest:,} more cells in other columns")
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
    if type(v) is str:                                   # the usual case first
        return v.strip() or None
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if kind in _DATE_KINDS:
            return key_value(from_serial(v))
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if isinstance(v, dt.datetime):
        v = (v.replace(tzinfo=None) + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
        return v.date() if v.time() == dt.time() else v
    return v


def _key(row: Mapping[str, Any], keys: Sequence[tuple[str, str | None]]) -> tuple:
    return tuple(key_value(row.get(k), kind) for k, kind in keys)


def _book_rows(columns: Mapping[str, Sequence[Any]], keys: Sequence[tuple[str, str | None]],
               carried: Sequence[str]) -> dict[tuple, list[int]]:
    """Key → the indices of the book's rows with that key, in order (empty rows left out:
    no key and nothing in the columns the export carries)."""
    n = max((len(v) for v in columns.values()), default=0)
    normalised = [[key_value(v, kind) for v in (columns.get(k) or [None] * n)]
                  for k, kind in keys]
    values = [columns[k] for k in carried if k in columns]
    blank = (None,) * len(keys)
    out: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*normalised)):
        if key != blank or any(key_value(c[i]) is not None for c in values):
            out.setdefault(key, []).append(i)
    return out


def _identity(table: str, row: Mapping[str, Any], lines_of_order: Counter) -> str:
    """A row as the seller knows it, for messages."""
    def get(k: str) -> Any:
        return row.get(k)

    if table == "Orders":
        what = f"order {get('order_id')}"
        if get("sku_id") and lines_of_order[get("order_id")] > 1:
            what += f", SKU {get('sku_id')}"
        return what
    if table == "Campaigns":
        if get("ad_id"):
            what = f"ad {get('ad_id')}"
        else:
            names = [x for x in (get("campaign"), get("ad_group"), get("ad_name")) if x]
            what = "campaign " + " / ".join(names) if names else "campaign (no name)"
        return what + (f" on {_shown(get('date'))}" if get("date") else " (undated)")
    if table == "Videos":
        return f"video {get('title')!r}" if get("title") else f"video {get('video_link')}"
    if table == "Brand":
        period = get("period")
        return f"month {period:%Y-%m}" if isinstance(period, dt.date) else f"month {period}"
    return "row"


@dataclass
class _Plan:
    report: TableReport
    rows: list[dict[str, Any]]                       # to append
    updates: dict[int, dict[str, Any]]               # data row index -> key -> new value
    key: list[tuple[str, str | None]]


def _plan(result: Any, book_columns: Mapping[str, Sequence[Any]]) -> _Plan:
    """The rows of one parser result to append to its table and to update in it, and the
    report.

    A row identical to an earlier row of the export is :data:`REPEATED`.  The
    other rows are matched to the book by key (the export's ``key_fields``
    the table has), as multisets: the first row of the export with a key
    goes with the first row of the book with that key, and so on; rows left
    over are added.  So re-importing changes nothing, and two genuinely
    different lines sharing a key (the same SKU twice in an order, with
    different discounts) are both kept.  A matched row updates the cells
    whose value differs, never with a blank (a blank in the export does not
    erase what the book holds); ``fill_only`` rows of the result update
    nothing (they are skipped, with their reason, when the book has them).
    """
    table = S.TABLE[result.table]
    kinds = {c.key: c.kind for c in table.inputs}
    fields = list(result.fields)
    carried = [k for k in fields if k in book_columns]
    report = TableReport(result.table, result.source, skipped=list(result.skipped),
                         blanks=list(getattr(result, "blanks", [])),
                         dropped=[k for k in fields if k not in book_columns],
                         unmapped=list(result.unmapped_headers), notes=list(result.notes))
    key = [(k, kinds[k]) for k in result.key_fields if k in book_columns] or \
        [(k, kinds[k]) for k in carried]
    key_keys = {k for k, _ in key}
    in_book = _book_rows(book_columns, key, carried)
    lines_of_order = Counter(r.get("order_id") for r in result.rows) \
        if result.table == "Orders" else Counter()
    fill_only = getattr(result, "fill_only", {}) or {}
    seen: set[tuple] = set()
    rows: list[dict[str, Any]] = []
    matched: list[tuple[dict[str, Any], int]] = []         # (export row, book row)
    contents: list[tuple] = []                             # the matched rows' values
    for n, row in enumerate(result.rows):
        content = tuple(map(row.get, fields))
        size = len(seen)
        seen.add(content)                                  # (each row's content hashed once)
        if len(seen) == size:
            report.skipped.append((None, REPEATED))
            continue
        slots = in_book.get(_key(row, key)) if in_book else None   # an empty table: no key
        if not slots:
            rows.append(row if not report.dropped else {k: row[k] for k in carried if k in row})
        elif n in fill_only:
            slots.pop(0)
            report.skipped.append((None, fill_only[n]))
        else:
            matched.append((row, slots.pop(0)))
            contents.append(content)
    # what differs, column by column: a blank never erases
    changed: dict[int, dict[str, tuple[Any, Any]]] = {}
    by_field = dict(zip(fields, zip(*contents))) if contents else {}
    where = [i for _, i in matched]
    for k in carried:
        if k in key_keys or k not in by_field:
            continue
        column, kind, news = book_columns[k], kinds[k], by_field[k]
        olds = [column[i] for i in where] if len(column) > max(where) else \
            [column[i] if i < len(column) else None for i in where]
        for j in [j for j, (old, new) in enumerate(zip(olds, news))
                  if new is not None and new != "" and old != new]:
            if key_value(olds[j], kind) != key_value(news[j], kind):
                changed.setdefault(j, {})[k] = (olds[j], news[j])
    updates: dict[int, dict[str, Any]] = {}
    for j, (row, i) in enumerate(matched):
        diff = changed.get(j)
        if not diff:
            report.unchanged += 1
        elif result.table == "Orders" and _older_order(book_columns, i, row):
            report.skipped.append((None, OLDER))
        else:
            updates[i] = {k: new for k, (_, new) in diff.items()}
            report.updated.append(Change(i, _identity(result.table, row, lines_of_order),
                                         [(table.header_of(k), old, new)
                                          for k, (old, new) in diff.items()],
                                         [kinds[k] for k in diff]))
    report.added = len(rows)
    return _Plan(report, rows, updates, key)


#: How far along an order is, by status (TikTok's statuses, lower case): a cancellation
#: ends it at any stage.
_STAGES = {"unpaid": 0, "awaiting collection": 1, "to ship": 1, "awaiting shipment": 1,
           "shipped": 2, "in transit": 2, "delivered": 3, "completed": 4, "canceled": 5,
           "cancelled": 5}


def _older_order(book: Mapping[str, Sequence[Any]], i: int, row: Mapping[str, Any]) -> bool:
    """Whether an export's order line is older than the book's row ``i`` of the same key:
    the book's status is further along, or the book has a delivered or cancelled time or a
    larger refund than the export.  Such a line (an old export imported again) updates
    nothing."""
    def book_value(k: str) -> Any:
        col = book.get(k)
        return col[i] if col is not None and i < len(col) else None

    def stage(status: Any) -> int | None:
        return _STAGES.get(status.strip().lower()) if isinstance(status, str) else None

    old, new = stage(book_value("status")), stage(row.get("status"))
    if old is not None and new is not None and new < old:
        return True
    if any(k in row and row[k] is None and key_value(book_value(k)) is not None
           for k in ("delivered", "cancelled")):
        return True
    refund, was = row.get("refund"), book_value("refund")
    return isinstance(refund, (int, float)) and isinstance(was, (int, float)) and refund < was


def _parse(kind: str, src: Path, year: int | None) -> tuple[list[Any], list[tuple[str, str]]]:
    """The parser results of an export and the files it did not import."""
    if kind == "ads":
        return [parse_ads(src)], []
    if kind == "orders":
        return [parse_orders(src)], []
    studio = parse_studio(src, year=year)
    return studio.results, list(studio.not_imported)


# --- undated ads reports ---------------------------------------------------------------------

_PERIOD = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*$")


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    """``START..END`` (ISO dates, END included) as a pair of dates; ValueError otherwise.

    >>> parse_period("2026-07-01..2026-07-31")
    (datetime.date(2026, 7, 1), datetime.date(2026, 7, 31))
    """
    m = _PERIOD.match(text or "")
    if not m:
        raise ValueError(f"--period must be START..END in ISO dates (2026-07-01..2026-07-31),"
                         f" not {text!r}")
    start, end = (dt.date.fromisoformat(x) for x in m.groups())
    if end < start:
        raise ValueError(f"--period {text}: the end is before the start")
    return start, end


def _date_undated_report(result: Any, period: tuple[dt.date, dt.date] | None,
                         book: Mapping[str, Sequence[Any]]) -> None:
    """Give an Ads Manager report without a date column the date its totals belong to.

    With a period (from the file, else ``period`` from ``--period``) every row
    is dated by its first day, so the report keys on (campaign …, that day):
    a report of the same period updates those rows, one of another period
    adds its own.  Without one the rows stay undated: they update the book's
    undated rows of the same campaigns (the newer totals supersede them).
    Says which in the result's notes.
    """
    if "date" in result.fields:
        if period is not None:
            result.notes.append("--period not used: the report has a date column")
        return
    result.key_fields = ("date", "period_end", *result.key_fields)
    result.fields = ("date", "period_end", *result.fields)
    source = result.period_source if result.period else "--period"
    period = result.period or period
    if period is None:                               # blank: matches the book's undated rows
        campaigns = {r.get("campaign") for r in result.rows} - {None}
        dated = {c for c, d in zip(book.get("campaign", []), book.get("date", []))
                 if d is not None} & campaigns
        result.notes.append(
            "the report has no date column, and neither its file name nor a title row nor"
            " --period gives its period: it is taken as the latest totals, replacing the"
            " book's undated totals of the same campaigns (give --period START..END to keep"
            " periods apart)")
        if dated:
            result.notes.append(f"{len(dated)} of these campaigns also have dated rows in the"
                                " book, which this report's totals may count again:"
                                f" {', '.join(sorted(dated)[:3])}")
        return
    start, end = period
    for row in result.rows:
        row["date"], row["period_end"] = start, end
    result.notes.append(
        f"the report has no date column: its rows are totals for {start:%Y-%m-%d} to"
        f" {end:%Y-%m-%d} (from {source}), dated {start:%Y-%m-%d}; a report of the same"
        " period replaces them, one of another period adds rows")


def _interval(date: Any, end: Any) -> tuple[dt.date, dt.date] | None:
    first, last = (_days([x]) for x in (date, end))
    if not first:
        return None
    return first[0], (last or first)[0]


def _overlap_note(plan: _Plan, book: Mapping[str, Sequence[Any]]) -> str | None:
    """A warning when added report rows cover days that rows of the book already cover for
    the same campaign (daily rows and a period total): the KPIs would count both."""
    spans: dict[Any, list[tuple[dt.date, dt.date]]] = {}
    n = len(book.get("campaign", []))
    for i in range(n):
        span = _interval(book["date"][i], (book.get("period_end") or [None] * n)[i])
        if span and book["campaign"][i]:
            spans.setdefault(key_value(book["campaign"][i]), []).append(span)
    clash = []
    for row in plan.rows:
        span = _interval(row.get("date"), row.get("period_end"))
        if span and any(a <= span[1] and span[0] <= b
                        for a, b in spans.get(key_value(row.get("campaign")), [])):
            clash.append(row.get("campaign"))
    if not clash:
        return None
    names = ", ".join(sorted(set(clash))[:3]) + (" …" if len(set(clash)) > 3 else "")
    return (f"{len(clash):,} added rows cover days that rows already in the book cover for the"
            f" same campaigns ({names}): the KPIs add both up; keep either the daily rows or"
            " the period totals of a campaign")


# --- what the import infers ------------------------------------------------------------------

_MONTH_DAYS = 365.25 / 12


def period_months(first: dt.date, last: dt.date) -> float:
    """The months from ``first`` to ``last`` (both days counted), to 2 decimals, within the
    Start sheet's bounds (0.1 to 120).

    >>> period_months(dt.date(2026, 7, 1), dt.date(2026, 8, 7))   # 38 days
    1.25
    """
    days = (last - first).days + 1
    return min(max(round(days / _MONTH_DAYS, 2), 0.1), 120.0)


def _days(values: Sequence[Any]) -> list[dt.date]:
    """The days of the dates and times among ``values`` (Excel serials too)."""
    out = []
    for v in values:
        d = v if isinstance(v, dt.date) else key_value(v, "datetime")
        if isinstance(d, dt.datetime):
            d = d.date()
        if isinstance(d, dt.date):
            out.append(d)
    return out


def _span(values: Sequence[Any]) -> list[dt.date]:
    """The first and last day of ``values`` (dates, times, serials), [] when none."""
    times = [v for v in values if type(v) is dt.datetime]
    rest = [v for v in values if type(v) is not dt.datetime and v is not None and v != ""]
    days = _days([min(times), max(times)] if times else []) + _days(rest)
    return [min(days), max(days)] if days else []


def _period_setting(plan: _Plan, book: Mapping[str, Sequence[Any]], settings: Mapping[str, Any]
                    ) -> tuple[float | None, str | None]:
    """The Start sheet's period length after an order import (None: leave it) and what to
    say about it.

    The setting follows the orders' dates (first to last created day) while it
    holds the default or the length the book's orders gave before this
    import; any other value was typed by the seller and is kept.
    """
    before = _span(book.get("created", []))
    after = _span(before + [r.get("created") for r in plan.rows]
                  + [u["created"] for u in plan.updates.values() if "created" in u])
    if not after:
        return None, None
    first, last = after
    months = period_months(first, last)
    setting = S.SETTING["PeriodMonths"]
    current = settings.get(setting.name, setting.default)
    follows = current == setting.default or (before and current == period_months(
        min(before), max(before)))
    span = (f"the orders run from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
            f" ({(last - first).days + 1} days, {months:g} months)")
    retention = settings.get("RetentionPeriods", S.SETTING["RetentionPeriods"].default)
    life = (f"; with Retention (periods) {retention:g}, the CLV counts"
            f" {retention * months:.1f} months")
    if current == months:
        return None, f"{span}: the Start sheet's {setting.label} is {months:g}{life}"
    if follows:
        return months, (f"{span}: the Start sheet's {setting.label} is now {months:g}"
                        f" (was {current:g}){life}")
    return None, (f"{span}, but the Start sheet's {setting.label} is {current:g}, typed by you:"
                  f" kept (the CLV's purchases per period and the CAC payback use it;"
                  f" {months:g} would match these orders)")


_DELIVERED = frozenset(s.lower() for s in S.DELIVERED_STATUSES)


def _status_is_delivered(status: Any) -> bool:
    return isinstance(status, str) and status.strip().lower() in _DELIVERED


def _delivered_note(result: Any) -> str | None:
    """What the import says when delivered orders come from their status."""
    orders = {}
    for r in result.rows:
        if _status_is_delivered(r.get("status")) and r.get("delivered") is None:
            orders.setdefault(r.get("order_id"), None)
    if not orders:
        return None
    ids = ", ".join(str(x) for x in list(orders)[:3]) + (" …" if len(orders) > 3 else "")
    statuses = " or ".join(S.DELIVERED_STATUSES)
    n = f"{len(orders):,} order{'s' if len(orders) > 1 else ''}"
    if "delivered" not in result.fields:
        return (f"the export has no Delivered Time column: {n} with the status {statuses}"
                f" count as delivered by their status (Delivered orders, Review rate): {ids}")
    return (f"{n} with the status {statuses} but no delivered time count as delivered by"
            f" their status: {ids}")


def _kpi_tables(key: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The tables a KPI reads, directly or through the KPIs it reads."""
    out: set[str] = set()
    for n in walk(S.KPIS[key].expr):
        if isinstance(n, Column):
            out.add(n.table)
        elif isinstance(n, Ref) and n.key in S.KPIS and n.key not in seen:
            out |= _kpi_tables(n.key, seen | {key})
    return out


def _why_blank(key: str, shown: Mapping[str, Any], has: Mapping[str, Mapping[str, bool]],
               seen: frozenset[str] = frozenset()) -> set[tuple[str, str]]:
    """The input columns without any value that leave a KPI blank: those of its ``needs``
    with no value, the input columns it reads with none, and those of the blank KPIs it
    reads."""
    def empty(table: str, header: str) -> bool:
        t = S.TABLE[table]
        return header in {c.header for c in t.inputs} and \
            not has.get(table, {}).get(t.key_of(header), False)

    k = S.KPIS[key]
    out = {(c.table, c.header) for group in k.needs
           if all(empty(c.table, c.header) for c in group) for c in group}
    for n in walk(k.expr):
        if isinstance(n, Column) and not k.needs and empty(n.table, n.header):
            out.add((n.table, n.header))
        elif isinstance(n, Ref) and n.key in S.KPIS and n.key not in seen and \
                shown.get(S.KPIS[n.key].label) == "":
            out |= _why_blank(n.key, shown, has, seen | {key})
    return out


def _kpi_values(book: Path) -> dict[str, Any]:
    """The values the KPIs sheet shows, by KPI label (column A → column B)."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        rows = CalamineWorkbook.from_path(os.fspath(book)).get_sheet_by_name(
            S.KPIS_SHEET).to_python(skip_empty_area=False)
    except (CalamineError, OSError, ValueError, KeyError):
        return {}
    return {r[0]: r[1] for r in rows if len(r) > 1 and isinstance(r[0], str)}


def _not_measured(book: Path, tables: set[str], columns: Mapping[str, Mapping[str, bool]]
                  ) -> list[str]:
    """Notes naming the KPIs of ``tables`` the KPIs sheet shows as not measured (blank),
    grouped by the input columns that hold no value."""
    shown = _kpi_values(book)
    groups: dict[tuple[str, ...], list[str]] = {}
    for key, k in S.KPIS.items():
        if shown.get(k.label, None) != "" or not _kpi_tables(key) & tables:
            continue
        empty = tuple(sorted(f"{h} ({t})" for t, h in _why_blank(key, shown, columns)))
        groups.setdefault(empty, []).append(k.label)
    return [f"not measured (blank on the KPIs sheet, not 0): {', '.join(labels)}"
            + (f" — no value in {', '.join(empty)}" if empty else "")
            for empty, labels in groups.items()]


def _has_values(book: Mapping[str, Mapping[str, Sequence[Any]]], plans: Sequence[_Plan]
                ) -> dict[str, dict[str, bool]]:
    """``table -> key -> whether a row holds a value`` after the import."""
    out = {t: {k: any(v is not None and v != "" and key_value(v) is not None for v in col)
               for k, col in cols.items()} for t, cols in book.items()}
    for p in plans:
        has = out.setdefault(p.report.table, {})
        rows = [*p.rows, *p.updates.values()]
        # key by key, each looked for until a row holds a value (not every cell of every row)
        for k in sorted(set().union(*rows)):
            if not has.get(k) and any(key_value(row[k]) is not None
                                      for row in rows if k in row):
                has[k] = True
    return out


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


def _setting_cell(book: Path, name: str) -> tuple[str, str] | None:
    """(sheet, A1 reference) of a setting's defined name."""
    with zipfile.ZipFile(book) as z:
        ref = defined_names(z).get(name, "")
    found = sheet_ref(ref)
    return found if found and ":" not in found[1] else None


def import_export(kind: str, src: str | os.PathLike, book: str | os.PathLike,
                  year: int | None = None,
                  progress: Callable[[str], None] | None = None,
                  period: tuple[dt.date, dt.date] | None = None) -> ImportReport:
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
    period : (date, date), optional
        Ads only: the period (first and last day) an undated report covers,
        when neither its file name nor a title row says (``--period``).

    Returns
    -------
    ImportReport
        Rows added, updated (with what changed), unchanged and skipped (with
        reasons) per table, cells read as blank, what was inferred, the
        settings changed, the refresh result.

    Raises
    ------
    xl_kpis.book.files.BookLocked
        The book is open in Excel or LibreOffice (nothing was read or
        written), or another xl-kpis kept writing it for longer than
        :func:`~xl_kpis.book.files.lock_wait`.
    xl_kpis.imports.ExportFormatError
        The export is not what ``kind`` says, or is damaged.
    xl_kpis.xlsx.books.BookFormatError
        The book is not an xl-kpis workbook, or is damaged.
    xl_kpis.book.files.BookWriteError
        The book cannot be written (read-only folder, full disk): it is unchanged.

    Notes
    -----
    When anything fails the book is left as it was: the changes go to a
    scratch copy beside it, which the refresh writes over the book
    atomically (then the copy is deleted).  When nothing changes the book is
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
            tables, settings = read_inputs(book)
        report, plans, cells, has = _decide(kind, src, book, results, not_imported, tables,
                                            settings, period)
        todo = {p.report.table: p.rows for p in plans if p.rows}
        updates = {p.report.table: p.updates for p in plans if p.updates}
        if todo or updates or cells:
            n_rows = sum(map(len, todo.values())) + sum(map(len, updates.values()))
            say(f"appending and updating {n_rows:,} rows")
            with files.scratch(book) as scratch, _book_errors(book):
                with open(scratch, "wb") as f:   # the refresh rewrites it: fast compression
                    done = append_rows(book, todo, out=f, compresslevel=1, updates=updates,
                                       cells=cells)
                for p in plans:
                    if p.report.table in done:
                        p.report.first_row = done[p.report.table].first_row
                report.refresh = refresh(scratch, out=book, progress=progress)
    notes = _not_measured(book, {p.report.table for p in plans}, has)
    if notes and report.tables:
        report.tables[-1].notes += notes
    return report


def _decide(kind: str, src: Path, book: Path, results: Sequence[Any],
            not_imported: list[tuple[str, str]], tables: Mapping[str, Mapping[str, Sequence]],
            settings: Mapping[str, Any], period: tuple[dt.date, dt.date] | None
            ) -> tuple[ImportReport, list[_Plan], dict[str, dict[str, Any]],
                       dict[str, dict[str, bool]]]:
    """What the import does: the report, the plan of each table and the settings cells
    to set, with every note on what it inferred; and which columns hold a value after it
    (:func:`_has_values`)."""
    if kind == "ads":
        for r in results:
            _date_undated_report(r, period, tables[r.table])
    plans = [_plan(r, tables[r.table]) for r in results]
    report = ImportReport(kind, src, book, [p.report for p in plans], not_imported)
    cells: dict[str, dict[str, Any]] = {}
    for p, r in zip(plans, results):
        if r.table != "Orders":
            continue
        months, note = _period_setting(p, tables["Orders"], settings)
        where = _setting_cell(book, "PeriodMonths") if months is not None else None
        if where is not None:
            cells.setdefault(where[0], {})[where[1]] = months
            report.settings["PeriodMonths"] = (settings.get("PeriodMonths"), months)
        p.report.notes += [n for n in (note, _delivered_note(r)) if n]
    if kind == "ads":
        for p in plans:
            note = _overlap_note(p, tables[p.report.table])
            if note:
                p.report.notes.append(note)
    has = _has_values(tables, plans)
    if kind == "studio" and not has.get("Videos", {}).get("profile_visits") and \
            has.get("Brand", {}).get("profile_views"):
        report.tables[-1].notes.append(
            "the Videos have no profile visits: the KPIs sheet's Profile visits and Profile"
            " visit rate come from the Studio overview's profile views (Brand sheet)")
    return report, plans, cells, has
