"""Append rows to the Excel Tables of an existing workbook, and update rows in place, at
the XML level.

openpyxl cannot do this: a load + save drops every cached value and rebuilds
every part.  Here the workbook stays a zip of XML parts and only these change:

* the table's worksheet: new ``<row>`` elements after the table's last row,
  the ``<dimension ref>``, and the data validations of the table's columns
  that stop short of the new last row; the cells given new values in rows
  already there (an import's updates), and nothing else of those rows;
* the cells of other sheets given new values (a setting on the Start sheet);
* the table part: its ``ref`` and ``autoFilter ref``;
* ``xl/workbook.xml``, only when the sheet's print area must grow;
* the charts with a series over the data of a table column that grows: that
  range reaches the new last row (the cached points stay as they are: Excel
  and LibreOffice read the range when they open the book).

Every other zip member keeps its content, and the write is atomic and done
under the book's lock (:mod:`xl_kpis.book.files`).

Trailing blank rows of a table (an empty template table keeps one blank data
row) are filled first.  New cells hold numbers as ``<v>``, text as inline
strings (never as formulas: ``=HYPERLINK("…")`` from a buyer message stays
text), dates as Excel serial numbers and id columns as text; a ``None`` gives
no cell.  Each cell takes the style of its column in the table's last data
row.  Computed columns get their formula with no cached value: a refresh
(:func:`xl_kpis.book.refresh.refresh`) fills them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from itertools import chain, groupby, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Sequence
from xml.sax.saxutils import escape, unescape

from .. import officejs, package
from ..xlsx.books import NS, BookFormatError, open_book, parse_xml, sheet_parts
from ..xlsx.dates import to_serial
from ..xlsx.refs import AREA, SHEET, bounds, col_letters, rowcol
from ..xlsx.errors import Text
from ..xlsx.values import INLINE_END, INLINE_START, constant_xml, number_text, xml_text
from . import files, schema as S
from .charts import chart_parts
from .files import paused_gc
from .zipwrite import ZipWriter

__all__ = ["Appended", "append_rows", "table_layouts", "VALIDATION_MARGIN"]

#: A data validation that must grow reaches this many rows below the new last row
#: (as the builder leaves room below a table).
VALIDATION_MARGIN = 1000


@dataclass
class Appended:
    """Where the rows appended to one table went.

    Attributes
    ----------
    table : str
        The table (and sheet) name.
    first_row : int
        The 1-based sheet row of the first new row (a filled blank row counts).
    rows : int
        The number of rows written.
    ref : str
        The table's range afterwards (``A4:Z2666``).
    """

    table: str
    first_row: int
    rows: int
    ref: str


# --- addresses --------------------------------------------------------------------------

def _cell(ref: str) -> tuple[int, int]:
    """``"B5"`` → (0-based column, 1-based row), as this module counts."""
    try:
        row, col = rowcol(ref)
    except ValueError as e:
        raise BookFormatError(str(e)) from None
    return col, row + 1


def _range(ref: str) -> tuple[int, int, int, int]:
    """``"A4:Z5"`` → (first col, first row, last col, last row); cols 0-based, rows 1-based."""
    try:
        r0, c0, r1, c1 = bounds(ref)
    except ValueError as e:
        raise BookFormatError(str(e)) from None
    return c0, r0 + 1, c1, r1 + 1


def _with_last_row(ref: str, row: int) -> str:
    """``ref`` (``A4:Z5`` or ``A1``) with its last row set to ``row``."""
    c0, r0, c1, _ = _range(ref)
    return f"{col_letters(c0)}{r0}:{col_letters(c1)}{row}"


# --- the table's layout -----------------------------------------------------------------

@dataclass
class _Column:
    """One column of the table as the new rows fill it."""

    col: int                     # 0-based sheet column
    key: str | None              # canonical key of an input column
    kind: str | None             # its kind (schema.KINDS)
    formula: str | None          # formula of a computed column (no leading "=")


@dataclass
class _Table:
    """A table found in the workbook: its parts and layout."""

    name: str
    sheet: str
    sheet_part: str
    part: str
    ref: str
    first: int                   # 1-based first data row
    last: int                    # 1-based last data row
    columns: list[_Column]

    @property
    def computed_cols(self) -> set[int]:
        return {c.col for c in self.columns if c.formula is not None}

    @property
    def span(self) -> tuple[int, int]:
        return self.columns[0].col, self.columns[-1].col


def _table_parts(z: zipfile.ZipFile) -> Iterator[tuple[str, str, str]]:
    """(sheet name, sheet part, table part) of every table in the workbook."""
    names = set(z.namelist())
    for sheet, part in sheet_parts(z).items():
        rels = package.rels_part(part)
        if rels not in names:
            continue
        for rel in parse_xml(z, rels).findall("rel:Relationship", NS):
            if rel.get("Type", "").endswith("/table"):
                yield sheet, part, package.part_target(part, rel.get("Target"))


def _columns(spec: S.Table, root, c0: int) -> list[_Column]:
    """The table part's columns, matched to the schema by header."""
    inputs = {c.header: c for c in spec.inputs}
    computed = {c.header for c in spec.computed}
    columns = []
    for j, tc in enumerate(root.findall("m:tableColumns/m:tableColumn", NS)):
        header = tc.get("name", "")
        own = tc.findtext("m:calculatedColumnFormula", None, NS)
        if header in inputs:
            columns.append(_Column(c0 + j, inputs[header].key, inputs[header].kind, None))
        elif header in computed:   # UDF calls spelled as the book spells them (Lite or not)
            lite = own is not None and officejs.plain(own) != own
            columns.append(_Column(c0 + j, None, None,
                                   spec.formula(header, officejs=lite).lstrip("=")))
        else:                      # a column the seller added: Excel would copy its formula
            columns.append(_Column(c0 + j, None, None, own.lstrip("=") if own else None))
    return columns


def table_layouts(z: zipfile.ZipFile) -> dict[str, tuple[str, int, dict[str, int]]]:
    """Where each table of the workbook is: ``name -> (sheet, first data row (0-based),
    header -> 0-based sheet column)``, as its table part says (a column the seller
    inserted moves the ones after it)."""
    out = {}
    for sheet, _, part in _table_parts(z):
        root = parse_xml(z, part)
        name = root.get("displayName") or root.get("name") or ""
        c0, r0, _, _ = _range(root.get("ref", "A1"))
        first = r0 + (0 if root.get("headerRowCount") == "0" else 1)
        headers = [tc.get("name", "") for tc in root.findall("m:tableColumns/m:tableColumn", NS)]
        out[name] = (sheet, first - 1, {h: c0 + j for j, h in enumerate(headers)})
    return out


def _find_table(z: zipfile.ZipFile, name: str) -> _Table:
    """The table ``name`` (a :data:`schema.TABLE`), with its columns matched to the schema."""
    for sheet, sheet_part, part in _table_parts(z):
        root = parse_xml(z, part)
        if (root.get("displayName") or root.get("name")) != name:
            continue
        if root.get("totalsRowCount", "0") not in ("", "0"):
            raise BookFormatError(f"table {name} has a totals row: remove it before importing")
        ref = root.get("ref", "")
        c0, r0, _, r1 = _range(ref)
        first = r0 + (0 if root.get("headerRowCount") == "0" else 1)
        return _Table(name, sheet, sheet_part, part, ref, first, max(r1, first - 1),
                      _columns(S.TABLE[name], root, c0))
    raise BookFormatError(f"not an xl-kpis workbook (no table {name!r})")


# --- cell values --------------------------------------------------------------------------

def _plain(v: Any, kind: str | None) -> Any:
    """A row value as the cell will hold it: None (no cell), str, bool, number."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()                                        # numpy scalar
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    if isinstance(v, (dt.date, dt.time)):
        if isinstance(v, dt.datetime) and v.tzinfo is not None:
            v = v.replace(tzinfo=None)
        return to_serial(v)
    if kind == "id" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(int(v)) if float(v).is_integer() else repr(v)
    if isinstance(v, (str, bool, int, float)):
        return v
    return str(v)


def _tail(v: Any, style: str) -> bytes:
    """A cell's XML after its ``r="…"`` attribute, UTF-8 encoded (text as an inline string,
    also text that reads like an error: a row's values are constants the seller typed)."""
    t, content = constant_xml(Text(v) if isinstance(v, str) else v)
    t_attr = f' t="{t}"' if t else ""
    return f'"{style}{t_attr}>{content}</c>'.encode("utf-8")


def _tail_of(v: Any, kind: str | None, style: str) -> bytes | None:
    """The cell tail of a row value, None for no cell."""
    p = _plain(v, kind)
    return None if p is None else _tail(p, style)


#: Types whose equal values give equal cells (unlike True == 1), so a column of them is
#: encoded once per distinct value.
_CACHEABLE = frozenset({str, float, int, type(None), dt.date, dt.datetime})

#: Text that :func:`xml_text` changes (or may: ``_x`` starts an escape).
_UNSAFE = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x")


def _text_tails(texts: list[str], style: str) -> list[bytes | None]:
    """:func:`_tail_of` of texts ("" gives no cell); escaped only when one of them needs it."""
    head, end = f'"{style} t="inlineStr">{INLINE_START}', f"{INLINE_END}</c>"
    if _UNSAFE.search("".join(texts)):
        texts = list(map(xml_text, texts))
    return [(head + t + end).encode("utf-8") if t else None for t in texts]


def _datetime_tails(values: list[dt.datetime], style: str) -> list[bytes]:
    """:func:`_tail_of` of datetimes: their Excel serial numbers."""
    naive = [v if v.tzinfo is None else v.replace(tzinfo=None) for v in values]
    return [f'"{style}><v>{number_text(x)}</v></c>'.encode() for x in map(to_serial, naive)]


def _distinct_tails(values: Sequence[Any], kind: str | None, style: str
                    ) -> dict[Any, bytes | None]:
    """Value → :func:`_tail_of` for each distinct value (all of :data:`_CACHEABLE` types);
    texts and datetimes, most of a big export's distinct values, are encoded in bulk."""
    distinct = list(dict.fromkeys(values))
    tails: dict[Any, bytes | None] = {}
    for tp in set(map(type, distinct)):
        group = [v for v in distinct if type(v) is tp]
        if tp is str:
            tails.update(zip(group, _text_tails(group, style)))
        elif tp is dt.datetime:
            tails.update(zip(group, _datetime_tails(group, style)))
        else:
            tails.update((v, _tail_of(v, kind, style)) for v in group)
    return tails


#: A piece of the new rows that varies by row: ``(row numbers, i, j) -> one bytes for
#: each of the rows i to j`` (0-based, j excluded; ``row numbers`` are theirs).
_RowPiece = Callable[[list[bytes], int, int], list[bytes]]


def _numbers(numbers: list[bytes], i: int, j: int) -> list[bytes]:
    """The row number (a :data:`_RowPiece`)."""
    return numbers


class _InputCells:
    """The new cells of one input column: ``<c r="`` + letters, row number, tail.

    Each distinct value's tail (:func:`_tail_of`) is encoded once.

    Attributes
    ----------
    pieces : list
        The column's part of a row: constant bytes and :data:`_RowPiece`.
    longest : int
        The length of its longest cell.
    """

    def __init__(self, prefix: bytes, values: Sequence[Any], kind: str | None, style: str,
                 width: int) -> None:
        self.prefix, self.values = prefix, values
        self.of: dict[Any, bytes | None] | None = None
        if set(map(type, values)) <= _CACHEABLE:
            self.of = _distinct_tails(values, kind, style)
            tails: Iterable[bytes | None] = self.of.values()
        else:
            self.values = tails = [_tail_of(v, kind, style) for v in values]
        self.longest = len(prefix) + width + max(map(len, filter(None, tails)), default=0)
        blank = None in tails                          # a row with no cell here
        self.pieces = [self.cells] if blank else [prefix, _numbers, self.tails]

    def tails(self, numbers: list[bytes], i: int, j: int) -> list[bytes | None]:
        """The cell tails of rows ``i`` to ``j`` (a :data:`_RowPiece` when none is None)."""
        if self.of is None:
            return self.values[i:j]
        return list(map(self.of.__getitem__, self.values[i:j]))

    def cells(self, numbers: list[bytes], i: int, j: int) -> list[bytes]:
        """The cells of rows ``i`` to ``j``, b"" for no cell (a :data:`_RowPiece`)."""
        prefix = self.prefix
        return [prefix + n + t if t is not None else b""
                for n, t in zip(numbers, self.tails(numbers, i, j))]


def _values(rows: Sequence[Mapping[str, Any]], keys: list[str]) -> dict[str, Sequence[Any]]:
    """``key -> its value in each row`` (None where a row lacks it)."""
    try:
        if len(keys) > 1:
            return dict(zip(keys, zip(*map(itemgetter(*keys), rows))))
        return {k: list(map(itemgetter(k), rows)) for k in keys}
    except KeyError:
        return {k: [r.get(k) for r in rows] for k in keys}


def _joined(pieces: list[bytes | _RowPiece]) -> list[bytes | _RowPiece]:
    """``pieces`` with each run of constant bytes joined into one."""
    out: list[bytes | _RowPiece] = []
    for constant, run in groupby(pieces, lambda p: isinstance(p, bytes)):
        out += [b"".join(run)] if constant else run
    return out


#: New rows are built this many at a time (each chunk is compressed while the next is
#: built).
_CHUNK_ROWS = 4096


def _rows_xml(table: _Table, rows: Sequence[Mapping[str, Any]], keys: set[str], start: int,
              styles: Mapping[int, str], spans: str) -> tuple[Iterator[bytes], int]:
    """The ``<row>`` elements of ``rows`` (UTF-8), numbered from ``start``, and an upper
    bound of their size.

    A row is made of pieces: constant bytes, the row number, and per-column
    lists of cell tails (:class:`_InputCells`).  ``zip`` takes them row-wise
    and one ``bytes.join`` makes each row, so no Python code runs per cell
    except in columns where some rows get no cell.  The rows are built
    :data:`_CHUNK_ROWS` at a time, as the returned iterator is read.
    """
    numbers = [b"%d" % r for r in range(start, start + len(rows))]
    width = len(numbers[-1])
    values = _values(rows, [c.key for c in table.columns if c.formula is None and c.key in keys])
    pieces: list[bytes | _RowPiece] = [b'<row r="', _numbers, f'"{spans}>'.encode()]
    longest = len(b'<row r=""></row>') + len(spans) + width        # of a row
    for c in table.columns:
        prefix = f'<c r="{col_letters(c.col)}'.encode()
        style = f' s="{styles[c.col]}"' if c.col in styles else ""
        if c.formula is not None:
            tail = f'"{style}><f>{escape(c.formula)}</f></c>'.encode("utf-8")
            pieces += [prefix, _numbers, tail]
            longest += len(prefix) + width + len(tail)
        elif c.key in keys:
            cells = _InputCells(prefix, values[c.key], c.kind, style, width)
            pieces += cells.pieces
            longest += cells.longest
    pieces = _joined(pieces + [b"</row>"])

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(rows), _CHUNK_ROWS):
            nums = numbers[i:i + _CHUNK_ROWS]
            columns = [repeat(p) if isinstance(p, bytes) else p(nums, i, i + len(nums))
                       for p in pieces]
            yield b"".join(map(b"".join, zip(*columns)))

    return chunks(), longest * len(rows)


# --- the worksheet --------------------------------------------------------------------------
# The worksheet stays bytes (it may be hundreds of MB); only the rows near the end
# of the table, and the parts before and after sheetData, are decoded.

_ROW_R = re.compile(rb'\br="(\d+)"')
_ATTR = re.compile(r'\b([\w:]+)="([^"]*)"')
# (a cell's content stops before the next cell: an unclosed one costs its own length only)
_CELL_XML = re.compile(r"<c\b([^>]*?)(?:/>|>((?:[^<]|<(?!/c>|c[\s/>]))*)</c>)")
_V_TEXT = re.compile(r"<v>[^<]")


@dataclass
class _Row:
    """A ``<row>`` element of sheetData: ``xml[start:end]`` (up to the next row)."""

    r: int
    start: int
    end: int
    data: bytes

    def cells(self) -> Iterator[tuple[int, dict[str, str], bool]]:
        """(0-based column, attributes, holds something) of each cell."""
        col = -1
        for m in _CELL_XML.finditer(self.data.decode("utf-8")):
            attrs = dict(_ATTR.findall(m.group(1)))
            col = _cell(attrs["r"])[0] if "r" in attrs else col + 1
            inner = m.group(2) or ""
            yield col, attrs, ("<f" in inner or "<is" in inner or bool(_V_TEXT.search(inner)))

    def has_content(self, cols: Callable[[int], bool] = lambda c: True) -> bool:
        """Whether a cell in one of ``cols`` holds a value or a formula."""
        return any(full and cols(c) for c, _, full in self.cells())

    @property
    def spans(self) -> str:
        """The row's ``spans`` attribute (`` spans="1:26"``), or ""."""
        m = re.search(rb'\sspans="([^"]*)"', self.data[:self.data.index(b">")])
        return f' spans="{m.group(1).decode()}"' if m else ""


def _rows_backwards(xml: bytes, lo: int, hi: int) -> Iterator[_Row]:
    """The row elements of ``xml[lo:hi]`` (sheetData's content), last first."""
    end = hi
    while True:
        start = xml.rfind(b"<row", lo, end)
        if start < 0:
            return
        if xml[start + 4:start + 5] not in (b" ", b">", b"/"):
            end = start
            continue
        m = _ROW_R.search(xml, start, xml.index(b">", start))
        if not m:
            raise BookFormatError("a worksheet row has no row number (unsupported writer)")
        yield _Row(int(m.group(1)), start, end, xml[start:end])
        end = start


@dataclass
class _Slot:
    """Where new rows go in a worksheet and what the rows below them are."""

    insert_at: int               # offset in the XML
    start_row: int               # 1-based sheet row of the first new row
    below: list[_Row]            # rows after the insertion point, in sheet order
    style_row: _Row | None       # the table's last data row


def _slot(xml: bytes, lo: int, hi: int, table: _Table) -> _Slot:
    """Find the insertion point: after the last table row holding an input value."""
    computed = table.computed_cols

    def blank(row: _Row) -> bool:    # nothing but formulas of computed columns
        return not row.has_content(lambda c: c not in computed)

    below: list[_Row] = []
    style_row = None
    for row in _rows_backwards(xml, lo, hi):
        if style_row is None and table.first <= row.r <= table.last:
            style_row = row          # walking backwards: the last data row there is
        if row.r > table.last or (row.r >= table.first and blank(row)):
            below.append(row)
            continue
        return _Slot(row.end, max(row.r + 1, table.first), below[::-1], style_row)
    return _Slot(lo, table.first, below[::-1], style_row)


def _styles(row: _Row | None, cols_xml: str) -> dict[int, str]:
    """Column → style index: the table's last data row, else the ``<col>`` defaults."""
    styles: dict[int, str] = {}
    for m in re.finditer(r"<col\b([^>]*)/?>", cols_xml):
        a = dict(_ATTR.findall(m.group(1)))
        if "style" in a and "min" in a and "max" in a:
            for c in range(int(a["min"]) - 1, min(int(a["max"]), 16384)):
                styles[c] = a["style"]
    if row is not None:
        styles.update({c: a["s"] for c, a, _ in row.cells() if "s" in a})
    return styles


def _sheet_data(xml: bytes) -> tuple[int, int]:
    """Offsets of sheetData's content (after ``<sheetData>``, at ``</sheetData>``)."""
    open_at = xml.find(b"<sheetData")
    if open_at < 0:
        raise BookFormatError("a worksheet has no <sheetData> (unsupported writer)")
    gt = xml.index(b">", open_at)
    if xml[gt - 1:gt] == b"/":
        raise BookFormatError("a table's worksheet has no rows")
    close = xml.find(b"</sheetData>", gt)
    if close < 0:
        raise BookFormatError("a worksheet's <sheetData> is not closed")
    return gt + 1, close


def _merge_below(below: list[_Row], table: _Table, new_end: int) -> bytes:
    """The rows after the new ones: those the new rows overwrite must be empty."""
    kept = []
    for row in below:
        if row.r > new_end:
            kept.append(row.data)
        elif row.r > table.last and row.has_content():
            raise BookFormatError(f"{table.sheet}: row {row.r} below table {table.name} holds"
                                  " data; move it further down or to another sheet first")
    return b"".join(kept)


def _grow_dimension(head: str, last_row: int, last_col: int) -> str:
    def sub(m: re.Match) -> str:
        c0, r0, c1, r1 = _range(m.group(2))
        end = f"{col_letters(max(c1, last_col))}{max(r1, last_row)}"
        return f'{m.group(1)}{col_letters(c0)}{r0}:{end}"'
    return re.sub(r'(<dimension\b[^>]*?\bref=")([^"]+)"', sub, head, count=1)


def _grow_validations(tail: str, table: _Table, new_last: int) -> str:
    """Extend the data validations over a table column that stop above ``new_last``."""
    c0, c1 = table.span

    def grow(token: str) -> str:
        try:
            a, r0, b, r1 = _range(token)
        except BookFormatError:
            return token
        if c0 <= a <= b <= c1 and r0 <= table.first <= table.last <= r1 < new_last:
            return _with_last_row(token, new_last + VALIDATION_MARGIN)
        return token

    def sub(m: re.Match) -> str:
        return m.group(1) + " ".join(grow(t) for t in m.group(2).split()) + '"'

    return re.sub(r'(<dataValidation\b[^>]*?\bsqref=")([^"]*)"', sub, tail)


@dataclass
class _Stream:
    """A rewritten part as chunks of bytes, built as they are read."""

    chunks: Iterable[bytes]
    size: int                    # an upper bound of the part's size


def _append_sheet(xml: bytes, table: _Table, rows: Sequence[Mapping[str, Any]], keys: set[str],
                  updates: Mapping[int, Mapping[str, Any]] | None = None
                  ) -> tuple[_Stream, Appended | None]:
    """The worksheet XML with ``rows`` appended to ``table`` and the rows in ``updates``
    (``data row index -> key -> value``) updated."""
    lo, hi = _sheet_data(xml)
    slot = _slot(xml, lo, hi, table)
    col_of = {c.key: c.col for c in table.columns if c.key}
    kinds = {c.col: c.kind for c in table.columns if c.key}
    changes = {table.first + i: {col_of[k]: v for k, v in row.items()}
               for i, row in (updates or {}).items()}
    if not rows:
        cols = re.search(rb"<cols>.*?</cols>", xml[:lo], re.S)
        styles = _styles(slot.style_row, cols.group(0).decode("utf-8") if cols else "")
        chunks = [xml[:lo], *_patched_rows(xml, lo, hi, changes, kinds, styles, table.sheet),
                  xml[hi:]]
        return _Stream(chunks, sum(map(len, chunks))), None
    new_end = slot.start_row + len(rows) - 1
    last = max(table.last, new_end)
    below = _merge_below(slot.below, table, new_end)
    head = _decode(xml[:lo], table.sheet_part)
    cols = re.search(r"<cols>(?:[^<]|<(?!/?cols>))*</cols>", head)   # linear, unclosed too
    style_row = slot.style_row
    new_rows, size = _rows_xml(table, rows, keys, slot.start_row,
                               _styles(style_row, cols.group(0) if cols else ""),
                               style_row.spans if style_row else "")
    head_xml = _grow_dimension(head, last, table.span[1]).encode("utf-8")
    tail_xml = _grow_validations(_decode(xml[hi:], table.sheet_part), table, last).encode("utf-8")
    styles = _styles(style_row, cols.group(0) if cols else "")
    before = _patched_rows(xml, lo, slot.insert_at, changes, kinds, styles, table.sheet) \
        if changes else [memoryview(xml)[lo:slot.insert_at]]
    out = _Stream(chain([head_xml], before, new_rows, [below, tail_xml]),
                  len(head_xml) + sum(map(len, before)) + size + len(below) + len(tail_xml))
    return out, Appended(table.name, slot.start_row, len(rows), _with_last_row(table.ref, last))


# --- cells rewritten in place ---------------------------------------------------------------

_ROW_START = re.compile(rb'<row\b[^>]*?\br="(\d+)"')


def _new_cell(col: int, row: int, value: Any, kind: str | None, style: str) -> str:
    """The XML of a cell holding ``value`` (an empty styled cell for None)."""
    ref = f"{col_letters(col)}{row}"
    tail = _tail_of(value, kind, style)
    return f'<c r="{ref}"{style}/>' if tail is None else f'<c r="{ref}' + tail.decode("utf-8")


def _rewrite_row(data: bytes, row: int, values: Mapping[int, Any],
                 kinds: Mapping[int, str | None], styles: Mapping[int, str]) -> bytes:
    """A ``<row>`` element with the cells of the columns in ``values`` set to them.

    A cell keeps its style; a new cell takes its column's; the other cells and
    whatever lies between them are kept byte for byte.
    """
    text = data.decode("utf-8")
    gt = text.index(">")
    if text[gt - 1] == "/":                                     # <row .../>: no cells
        head, body, tail = text[:gt - 1].rstrip() + ">", "", "</row>" + text[gt + 1:]
    else:
        close = text.rindex("</row>")
        head, body, tail = text[:gt + 1], text[gt + 1:close], text[close:]
    todo = dict(values)

    def new(c: int, style: str | None = None) -> str:
        return _new_cell(c, row, todo.pop(c), kinds.get(c),
                         _style_attr(styles, c) if style is None else style)

    out, at, col = [], 0, -1
    for m in _CELL_XML.finditer(body):
        attrs = dict(_ATTR.findall(m.group(1)))
        col = _cell(attrs["r"])[0] if "r" in attrs else col + 1
        out.append(body[at:m.start()])
        out += [new(c) for c in sorted(k for k in todo if k < col)]   # cells it lacked
        out.append(new(col, f' s="{attrs["s"]}"' if "s" in attrs else "") if col in todo
                   else m.group(0))
        at = m.end()
    out += [new(c) for c in sorted(todo)]
    out.append(body[at:])
    return (head + "".join(out) + tail).encode("utf-8")


def _style_attr(styles: Mapping[int, str], col: int) -> str:
    return f' s="{styles[col]}"' if col in styles else ""


def _patched_rows(xml: bytes, lo: int, hi: int, changes: Mapping[int, Mapping[int, Any]],
                  kinds: Mapping[int, str | None], styles: Mapping[int, str],
                  where: str) -> list[bytes]:
    """``xml[lo:hi]`` (rows of sheetData) as chunks, the rows in ``changes``
    (``row -> column -> value``) rewritten by :func:`_rewrite_row`."""
    if not changes:
        return [xml[lo:hi]]
    out, at, found = [], lo, set()
    for m in _ROW_START.finditer(xml, lo, hi):
        r = int(m.group(1))
        if r not in changes:
            continue
        gt = xml.index(b">", m.end())
        end = gt + 1 if xml[gt - 1:gt] == b"/" else xml.index(b"</row>", gt) + len(b"</row>")
        out += [xml[at:m.start()], _rewrite_row(xml[m.start():end], r, changes[r], kinds, styles)]
        at = end
        found.add(r)
    missing = sorted(set(changes) - found)
    if missing:
        raise BookFormatError(f"{where}: row {missing[0]} to update is not in the sheet")
    out.append(xml[at:hi])
    return out


def _update_sheet(xml: bytes, where: str, changes: Mapping[int, Mapping[int, Any]],
                  kinds: Mapping[int, str | None] | None = None) -> bytes:
    """A worksheet (not a table's) with some cells set (``row -> column -> value``)."""
    lo, hi = _sheet_data(xml)
    return b"".join([xml[:lo], *_patched_rows(xml, lo, hi, changes, kinds or {}, {}, where),
                     xml[hi:]])


# --- the other parts ------------------------------------------------------------------------

def _grow_table_part(xml: str, ref: str) -> str:
    """The table part with its ``ref`` and its autoFilter's ``ref`` set to ``ref``."""
    xml = re.sub(r'(<table\b[^>]*?\sref=")[^"]*"', lambda m: f'{m.group(1)}{ref}"', xml, count=1)
    return re.sub(r'(<autoFilter\b[^>]*?\sref=")[^"]*"', lambda m: f'{m.group(1)}{ref}"', xml,
                  count=1)


#: A range with its sheet in a reference list (``'My sheet'!$A$1:$B$2``, ``(A!B1,A!C1)``).
# (a sheet name starts the text or follows a separator, so each is tried once: a long run of
# name characters costs its own length, never its length squared)
_AREA = re.compile(rf"(?<![^,(\s=])((?:{SHEET})!)({AREA})")


def _grow_print_area(xml: str, sheet_index: int, sheet: str, old_last: int, new_last: int
                     ) -> str:
    """``workbook.xml`` with the sheet's print area reaching ``new_last`` when it covered
    the table's old last row."""

    def area(m: re.Match) -> str:
        name = m.group(1)[:-1]
        if name.strip("'").replace("''", "'") != sheet:
            return m.group(0)
        c0, r0, c1, r1 = _range(m.group(2).replace("$", ""))
        if not old_last <= r1 < new_last:
            return m.group(0)
        return f"{m.group(1)}${col_letters(c0)}${r0}:${col_letters(c1)}${new_last}"

    def name(m: re.Match) -> str:
        attrs = dict(_ATTR.findall(m.group(1)))
        if attrs.get("name") != "_xlnm.Print_Area" or attrs.get("localSheetId") != str(
                sheet_index):
            return m.group(0)
        return f"<definedName{m.group(1)}>{_AREA.sub(area, m.group(2))}</definedName>"

    return re.sub(r"<definedName\b([^>]*)>([^<]*)</definedName>", name, xml)


def _sheet_index(z: zipfile.ZipFile, sheet: str) -> int:
    names = [s.get("name") for s in parse_xml(z, "xl/workbook.xml").findall("m:sheets/m:sheet", NS)]
    return names.index(sheet)


_CHART_F = re.compile(rb"(<(?:[\w.-]+:)?f>)([^<]*)(</(?:[\w.-]+:)?f>)")


def _grow_chart(xml: bytes, grown: Sequence[tuple[_Table, int]]) -> bytes:
    """A chart part whose ranges over the data of a grown table's column reach its new
    last row.

    ``grown`` holds ``(table, new last row)``; a range grows when it is one
    column of the table from its first to its (old) last data row
    (``Campaigns!$B$5:$B$16``, or ``Campaigns!$B$5`` for one row).  Other
    ranges, and the cached values (``numCache``/``strCache``, which Excel
    and LibreOffice recompute from the ranges), stay as they are.
    """

    def area(m: re.Match) -> str:
        sheet = m.group(1)[:-1]
        if sheet.startswith("'"):
            sheet = sheet[1:-1].replace("''", "'")
        c0, r0, c1, r1 = _range(m.group(2).replace("$", ""))
        for table, new_last in grown:
            lo, hi = table.span
            one_column = sheet == table.sheet and lo <= c0 == c1 <= hi
            if one_column and (r0, r1) == (table.first, table.last):
                first, _, end = m.group(2).partition(":")
                return f"{m.group(1)}{first}:{(end or first).rstrip('0123456789')}{new_last}"
        return m.group(0)

    def formula(m: re.Match) -> bytes:
        text = unescape(m.group(2).decode("utf-8", "surrogateescape"),
                        {"&apos;": "'", "&quot;": '"'})
        new = _AREA.sub(area, text)
        if new == text:
            return m.group(0)
        return m.group(1) + escape(new).encode("utf-8", "surrogateescape") + m.group(3)

    return _CHART_F.sub(formula, xml)


# --- the workbook -----------------------------------------------------------------------------

def _open(path: Path) -> zipfile.ZipFile:
    return open_book(path)          # checked, and no part inflated beyond its declared size


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BookFormatError(f"{name} is not UTF-8 XML") from e


def _check_keys(table: _Table, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """The keys the rows carry (each an input column of the table in the workbook)."""
    keys = {k for r in rows for k in r}
    spec = S.TABLE[table.name]
    unknown = keys - set(spec.keys)
    if unknown:
        raise KeyError(f"table {table.name} has no input column {sorted(unknown)}")
    missing = keys - {c.key for c in table.columns if c.key}
    if missing:
        headers = sorted(spec.header_of(k) for k in missing)
        raise BookFormatError(f"table {table.name} of the workbook has no column {headers[0]!r}")
    return keys


def append_rows(book: str | os.PathLike, tables: Mapping[str, Sequence[Mapping[str, Any]]],
                out: str | os.PathLike | BinaryIO | None = None,
                compresslevel: int | None = None,
                updates: Mapping[str, Mapping[int, Mapping[str, Any]]] | None = None,
                cells: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Appended]:
    """Append rows to tables of ``book``, update rows in place and set single cells
    (written to ``out``, in place by default).

    Parameters
    ----------
    book : path
        An ``.xlsx``/``.xlsm`` holding the tables (an xl-kpis workbook).
    tables : mapping
        ``table name -> rows``; each row maps canonical keys of the table's
        input columns (:attr:`schema.Table.keys`) to values.  A missing key or
        ``None`` leaves the cell out.
    out : path or binary file, optional
        Where to write the result; ``book`` itself by default.  A path is
        written atomically under its lock, also when nothing is appended (then
        ``out`` is a copy); a file object (a scratch file) is written as it is.
    compresslevel : int, optional
        zlib level of the parts written (default: zlib's); 1 is several
        times faster, for a scratch file that is rewritten anyway.
    updates : mapping, optional
        ``table name -> {data row index (0 = the first row below the header)
        -> {canonical key -> value}}``: cells of rows already in the table
        set to new values (None empties a cell, keeping its style).  The other
        cells of those rows are kept byte for byte, formulas included (a
        refresh recomputes their cached values).
    cells : mapping, optional
        ``sheet name -> {A1 reference -> value}`` for single cells of sheets
        without a table (a setting on the Start sheet).

    Returns
    -------
    dict
        ``table name -> Appended`` for each table that received rows.

    Raises
    ------
    BookFormatError
        The workbook is not readable, lacks a table or a column the rows
        need, or something below a table would be overwritten.
    xl_kpis.book.files.BookLocked, xl_kpis.book.files.BookWriteError
        ``out`` is open in Excel or LibreOffice, or cannot be written.
    KeyError
        A table is not one of :data:`schema.TABLES`, or a row has a key that
        is no input column of its table.
    """
    book = Path(book)
    unknown = set(tables) - set(S.TABLE)
    if unknown:
        raise KeyError(f"no such table: {sorted(unknown)}")
    updates = {name: rows for name, rows in (updates or {}).items() if rows}
    unknown = set(updates) - set(S.TABLE)
    if unknown:
        raise KeyError(f"no such table: {sorted(unknown)}")
    todo = {name: rows for name, rows in tables.items() if rows}
    if hasattr(out, "write"):
        with files.writing(reading=[book]):
            return _append(book, todo, out, compresslevel, updates, cells or {})
    out = Path(out) if out is not None else book
    with files.writing(out, reading=[book]):
        return _append(book, todo, out, compresslevel, updates, cells or {})


def _append(book: Path, todo: Mapping[str, Sequence[Mapping[str, Any]]],
            out: Path | BinaryIO, compresslevel: int | None,
            updates: Mapping[str, Mapping[int, Mapping[str, Any]]],
            cells: Mapping[str, Mapping[str, Any]]) -> dict[str, Appended]:
    with _open(book) as z, paused_gc():
        parts: dict[str, bytes | _Stream] = {}
        done: dict[str, Appended] = {}
        grown: list[tuple[_Table, int]] = []
        for name in dict.fromkeys([*todo, *updates]):
            rows = todo.get(name, ())
            table = _find_table(z, name)
            keys = _check_keys(table, [*rows, *updates.get(name, {}).values()])
            if table.sheet_part in parts:
                raise BookFormatError(f"two tables to fill on sheet {table.sheet}")
            parts[table.sheet_part], appended = _append_sheet(
                z.read(table.sheet_part), table, rows, keys, updates.get(name))
            if appended is None:
                continue
            done[name] = appended
            parts[table.part] = _grow_table_part(_decode(z.read(table.part), table.part),
                                                 done[name].ref).encode("utf-8")
            new_last = _range(done[name].ref)[3]
            if new_last > table.last:
                grown.append((table, new_last))
                wb = _decode(parts.get("xl/workbook.xml") or z.read("xl/workbook.xml"),
                             "xl/workbook.xml")
                grew = _grow_print_area(wb, _sheet_index(z, table.sheet), table.sheet,
                                        table.last, new_last)
                if grew != wb:
                    parts["xl/workbook.xml"] = grew.encode("utf-8")
        if cells:
            where = sheet_parts(z)
            for sheet, values in cells.items():
                if sheet not in where:
                    raise BookFormatError(f"the workbook has no sheet {sheet!r}")
                if where[sheet] in parts:
                    raise BookFormatError(f"sheet {sheet} holds a table to fill")
                changes: dict[int, dict[int, Any]] = {}
                for ref, value in values.items():
                    col, row = _cell(ref)
                    changes.setdefault(row, {})[col] = value
                parts[where[sheet]] = _update_sheet(z.read(where[sheet]), sheet, changes)
        if grown:
            for part in chart_parts(z):
                xml = z.read(part)
                chart = _grow_chart(xml, grown)
                if chart != xml:
                    parts[part] = chart
        if isinstance(out, Path):
            if not parts and out.exists() and os.path.samefile(book, out):
                return done
            target = files.atomic_write(out)
        else:
            target = contextlib.nullcontext(out)
        with target as f:
            if not parts:
                with open(book, "rb") as src:
                    shutil.copyfileobj(src, f)
                return done
            _write_zip(z, f, parts, compresslevel)
    return done


def _write_zip(z: zipfile.ZipFile, f, parts: Mapping[str, bytes | _Stream],
               compresslevel: int | None) -> None:
    """The members of ``z`` written to the file ``f`` in their order (compressed at
    ``compresslevel``), ``parts`` replacing their content; a rewritten sheet is
    compressed in a second thread while its next rows are built."""
    with ZipWriter(f) as w:
        for info in z.infolist():
            data = parts.get(info.filename)
            if isinstance(data, _Stream):
                w.stream(info, data.chunks, level=compresslevel,
                         zip64=data.size * 1.05 > zipfile.ZIP64_LIMIT)  # as zipfile decides
            else:
                w.copy(info, z.read(info) if data is None else data, compresslevel)
