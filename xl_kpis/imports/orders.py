"""TikTok Shop Seller Center order export (docs/tiktok-exports.md §B).

One row per SKU line (sheet ``OrderSKUList`` in the xlsx); row 2 describes
the fields and is skipped; US dates; ids with a stray trailing tab; order-level
amounts (Order Amount, Order Refund Amount) repeated on every line of an order.

Two readers:

* :func:`parse_orders` — every mapped column as row dicts for the ``Orders``
  table, dedup key ``(order_id, sku_id)``;
* :func:`read_order_columns` — a few columns (by default those the shop KPIs
  need) as numpy arrays, fast enough for a million-line CSV.

Both read a well-formed UTF-8 comma CSV with pyarrow (:mod:`.arrow`: the
cells as text, only the columns needed, converted column by column); any
other file, and a CSV pyarrow would read otherwise than the csv module
(a line cut short, bytes that are not UTF-8...), goes through the csv
module or python-calamine row by row, with the same rows, values and
reasons.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Collection, Iterator

import numpy as np

from ..metrics._kpi import LazyCoded
from .aliases import ORDER_FIELDS, HeaderMap, find_header, make_result
from .clean import (CONVERTERS, DESCRIPTION_ROW, TOTAL_ROW, ImportResult, Row, Sheet, clean_text,
                    convert_rows, csv_format, csv_sheet, is_blank, is_total_row, open_table, parse_id,
                    sniff)

__all__ = ["parse_orders", "read_order_columns", "OrderColumns", "COLUMN_KEYS", "KPI_KEYS", "SHEET"]

SHEET = "OrderSKUList"
#: The columns :func:`read_order_columns` can return.
COLUMN_KEYS = ("order_id", "status", "buyer", "order_amount", "product", "sku_subtotal",
               "quantity", "created")
#: The columns the shop KPIs of :mod:`xl_kpis.report` read, which :func:`read_order_columns` reads by default.
KPI_KEYS = ("order_id", "status", "buyer", "order_amount")




def _find_order_header(sheet: Sheet) -> tuple[int, HeaderMap, Iterator[Row]]:
    """The header row of an order export (it must have Order ID)."""
    return find_header(sheet, ORDER_FIELDS, required_any={"order_id"}, min_matches=3)


def order_id_problem(raw: Any, first: bool, header: str | None = None, line: int | None = None) -> str | None:
    """Why a row whose Order ID cell is ``raw`` is not an order line; None when it is one.

    ``first``: the row is the first data row, where a non-id is the
    description row of the export (e.g. "Platform unique order ID.").

    >>> order_id_problem("Platform unique order ID.", first=True)
    'description row'
    >>> order_id_problem("576461234567890123\\t", first=False) is None
    True
    """
    try:
        if parse_id(raw, header, line) is not None:        # a valid id is neither blank nor a total
            return None
        error = None
    except ValueError as e:
        # the message only: the exception's traceback holds this frame, which would hold the
        # exception, and through its callers' frames the whole export read, until the
        # cyclic collector happens to run
        error = str(e)
    if is_blank(raw):
        return "no order id"
    if is_total_row([raw]):
        return TOTAL_ROW
    if error is None:
        return None
    return DESCRIPTION_ROW if first and isinstance(raw, str) else error




def parse_orders(path: str | os.PathLike[str]) -> ImportResult:
    """Read an order export (CSV, or xlsx sheet ``OrderSKUList``) into ``Orders`` rows.

    Keys: see :data:`~xl_kpis.imports.aliases.ORDER_FIELDS`; ids are exact
    text, money and quantities floats, times ``datetime``.  The description
    row, blank rows, total rows and rows with a bad cell land in ``skipped``
    with their line and reason.

    A well-formed UTF-8 comma CSV is read with pyarrow and converted column
    by column (:func:`_parse_csv`), with the rows, values and reasons the
    csv module's rows give; other CSVs and xlsx are read row by row.
    """
    name = os.fspath(path)
    csv_result = _parse_csv(name) if _is_plain_csv(name) else None
    if csv_result is not None:
        return csv_result
    sheet = open_table(name, sheet=SHEET)
    _, hmap, rows = _find_order_header(sheet)
    id_col, _, id_header = hmap.columns["order_id"]
    seen_data = False

    def pre(line: int, cells: list) -> str | None:
        nonlocal seen_data
        first, seen_data = not seen_data, True
        return order_id_problem(cells[id_col] if id_col < len(cells) else None, first, id_header, line)

    blanks: list[tuple[int, str, str]] = []
    out, skipped = convert_rows(rows, hmap.columns, pre=pre, blanks=blanks)
    return _orders_result(hmap, out, skipped, sheet.name, blanks)


def _orders_result(hmap: HeaderMap, out: list[dict[str, Any]], skipped: list[tuple[int, str]],
                   source: str, blanks: list[tuple[int, str, str]]) -> ImportResult:
    keys = ("order_id", "sku_id") if "sku_id" in hmap.columns else ("order_id",)
    result = make_result("orders", "Orders", ORDER_FIELDS, hmap, out, skipped, keys, source)
    result.blanks = sorted(blanks)
    return result


def _is_plain_csv(name: str) -> bool:
    """A UTF-8 (BOM or not), comma-separated CSV: the files pyarrow may read."""
    return sniff(name) == "csv" and csv_format(name) == ("utf-8-sig", ",")


def _csv_header(name: str) -> tuple[int, HeaderMap, str]:
    """(header line, header map, source name) of a CSV export, found by the csv module."""
    header = csv_sheet(open(name, encoding="utf-8-sig", newline=""), os.path.basename(name))
    line, hmap, rest = _find_order_header(header)
    rest.close()  # type: ignore[attr-defined]  # closes the file
    return line, hmap, header.name


def _arrow_table(name: str, header_line: int, hmap: HeaderMap, columns: list[int] | None):
    """:func:`.arrow.read_table` of the export, or None when the csv module must read it."""
    from . import arrow

    try:
        return arrow.read_table(name, header_line, len(hmap.headers), columns)
    except arrow.Irregular:
        return None


# --------------------------------------------------------------------------- parse_orders on pyarrow

def _parse_csv(name: str) -> ImportResult | None:
    """:func:`parse_orders` of a CSV pyarrow reads (None: it does not), as :func:`convert_rows`
    gives it from the csv module's rows with :func:`order_id_problem`.

    Every column is read (pyarrow checks all of them for UTF-8, and a row's first
    filled cell decides whether it is blank or a total).  Rows whose first cell is
    filled and whose id is digits need no more; the others are looked at cell by
    cell as the csv module's rows are.  A cell a converter refuses is converted
    again by it, for the message.
    """
    from . import arrow
    from .arrow import pc

    header_line, hmap, source = _csv_header(name)
    table = _arrow_table(name, header_line, hmap, None)
    if table is None:
        return None
    n = table.num_rows
    lines = np.arange(header_line + 1, header_line + 1 + n)
    id_col, _, id_header = hmap.columns["order_id"]
    raw = {col: table.column(arrow.column_name(col)).combine_chunks()
           for col in {0, id_col, *(col for col, _, _ in hmap.columns.values())}}
    first_cells = arrow.trimmed(raw[0])
    plain = arrow.as_numpy(pc.greater(pc.utf8_length(first_cells), 0))
    plain &= ~arrow.as_numpy(pc.match_substring_regex(first_cells, r"(?i)^tota"))   # maybe a total
    plain &= arrow.digits(arrow.trimmed(raw[id_col]))
    reasons: list[str | None] = [None] * n
    dropped = np.zeros(n, dtype=bool)
    first_data = int(np.argmax(plain)) if plain.any() else n
    odd = np.flatnonzero(~plain).tolist()
    if odd:
        cells_of = _rows_of(table, odd)
        for i, cells in zip(odd, cells_of):
            filled = next((c for c in cells if not is_blank(c)), None)
            if filled is None:
                dropped[i] = True
            elif is_total_row([filled]):
                reasons[i] = TOTAL_ROW
            elif i < first_data:
                first_data = i
        for i, cells in zip(odd, cells_of):
            if not dropped[i] and reasons[i] is None:
                line = int(lines[i])
                reasons[i] = order_id_problem(cells[id_col], i == first_data, id_header, line)
    todo = ~dropped & np.array([r is None for r in reasons], dtype=bool)
    keys = list(hmap.columns)
    columns: list[list] = []
    blanks: list[tuple[int, str, str]] = []
    marked_by: list[tuple[np.ndarray, str, Any]] = []
    for key, (col, kind, header) in hmap.columns.items():
        converted = arrow.convert(raw[col], kind)
        for i in np.flatnonzero(converted.bad & todo).tolist():
            if reasons[i] is None:
                try:
                    CONVERTERS[kind](raw[col][i].as_py(), header, int(lines[i]))
                except ValueError as e:
                    reasons[i] = str(e)
        columns.append(_python_values(converted, kind))
        if converted.marked.any():
            marked_by.append((converted.marked, header, raw[col]))
    kept = todo & np.array([r is None for r in reasons], dtype=bool)
    for marked, header, cells in marked_by:
        for i in np.flatnonzero(marked & kept).tolist():
            blanks.append((int(lines[i]), header, clean_text(cells[i].as_py())))
    keep = np.flatnonzero(kept).tolist()
    out = [dict(zip(keys, values)) for values in zip(*([c[i] for i in keep] for c in columns))] \
        if keys else [{} for _ in keep]
    skipped = [(int(lines[i]), r) for i, r in enumerate(reasons) if r is not None and not dropped[i]]
    return _orders_result(hmap, out, skipped, source, blanks)


def _rows_of(table, rows: list[int]) -> list[list[str]]:
    """The cells of some rows of a table of text columns."""
    from .arrow import pa

    picked = table.take(pa.array(rows, pa.int64()))
    return [list(r) for r in zip(*(c.to_pylist() for c in picked.columns))]


def _python_values(converted, kind: str) -> list:
    """The values of a converted column as :func:`convert_rows` gives them (None when blank)."""
    values = converted.values
    if kind in ("text", "id"):
        return values.to_pylist()
    if kind == "number":
        out = values.astype(object)
        out[np.isnan(values)] = None
        return out.tolist()
    out = values.astype(object).tolist()            # datetime64[s]: datetime, NaT: None
    for i, v in zip(converted.rest.tolist(), converted.rest_values):
        out[i] = v                                  # the scalar converter's exact value
    return out


# =========================================================================== columnar reader

class OrderColumns(dict):
    """``dict[str, numpy.ndarray]`` of equal-length columns, plus ``categories``, ``skipped`` and ``source``.

    Text and ids are object arrays of ``str`` (``None`` when blank; read with
    ``labels=False``, a :class:`~xl_kpis.metrics._kpi.LazyCoded` that makes it when
    first read), money
    and quantities ``float64`` (NaN when blank), ``created`` is
    ``datetime64[s]`` (NaT when blank).

    ``categories[key]`` is the text or id column ``key`` factorised:
    ``(codes, values)``, an int64 array and an object array of the distinct
    ``str`` of the column, with ``column[i] == values[codes[i]]``, or code -1
    where the column holds None.  Ids are numbered in sorted order, text in
    the order of first appearance.
    """

    def __init__(self, arrays: dict[str, np.ndarray], categories: dict[str, tuple[np.ndarray, np.ndarray]],
                 skipped: list[tuple[int, str]], source: str):
        super().__init__(arrays)
        self.categories = categories
        self.skipped = skipped
        self.source = source


_DTYPES = {"number": np.float64, "datetime": "datetime64[s]"}


def read_order_columns(path: str | os.PathLike[str], keys: Collection[str] = KPI_KEYS, *,
                       labels: bool = True) -> OrderColumns:
    """Some columns of an order export as numpy arrays, by default those of the shop KPIs.

    Parameters
    ----------
    path : str or os.PathLike
        The export: CSV, or xlsx (sheet ``OrderSKUList``, else the first).
    keys : collection of str
        The columns to read, among :data:`COLUMN_KEYS`: ``order_id``,
        ``status``, ``buyer``, ``product`` (object arrays of str),
        ``order_amount``, ``sku_subtotal``, ``quantity`` (float64) and
        ``created`` (datetime64[s]).  Default :data:`KPI_KEYS`.
    labels : bool, optional
        False: a text or id column of a CSV read by pyarrow is a
        :class:`~xl_kpis.metrics._kpi.LazyCoded` (its codes and distinct values; the
        object array is made when first read), for a caller that only tells the
        values apart (a million ids cost a Python reference each).

    Returns
    -------
    OrderColumns
        The columns asked for that the file has.  Rows are exactly those
        :func:`parse_orders` keeps, except that only these columns are
        checked: a bad cell elsewhere does not drop the row here.
        ``.skipped`` lists the dropped rows.

    Raises
    ------
    ExportFormatError
        When the file is not a readable order export.
    ValueError
        When a key is not one of :data:`COLUMN_KEYS`.

    Notes
    -----
    A well-formed UTF-8 comma CSV is read by pyarrow, only the columns asked
    for (see :mod:`.arrow`); other CSVs and xlsx go through the csv module /
    python-calamine row by row.  The categories are pyarrow's dictionary
    encoding of the kept rows.
    """
    unknown = set(keys) - set(COLUMN_KEYS)
    if unknown:
        raise ValueError(f"read_order_columns: unknown column keys {sorted(unknown)}; "
                         f"choose among {', '.join(COLUMN_KEYS)}")
    keys = frozenset(keys)
    name = os.fspath(path)
    if _is_plain_csv(name):
        header_line, hmap, source = _csv_header(name)
        plan = _plan(hmap, keys)
        table = _arrow_table(name, header_line, hmap, [col for _, col, _, _ in plan])
        if table is not None:
            columns = _csv_columns(name, table, header_line, hmap, plan, source, labels)
            # pyarrow's pool keeps the pages a read frees (about 330 MB resident after a
            # 1,000,000-line export, through all that follows): they go back to the system
            del table
            from .arrow import pa
            pa.default_memory_pool().release_unused()
            return columns
    return _read_rows(open_table(name, sheet=SHEET), keys)


def _plan(hmap: HeaderMap, keys: frozenset[str]) -> list[tuple[str, int, str, str]]:
    """(key, column, kind, header) of the keys asked for that the export has, in :data:`COLUMN_KEYS` order."""
    return [(key, *hmap.columns[key]) for key in COLUMN_KEYS if key in keys and key in hmap.columns]


def _csv_columns(name: str, table, header_line: int, hmap: HeaderMap, plan: list[tuple[str, int, str, str]],
                 source: str, labels: bool = True) -> OrderColumns:
    """:func:`read_order_columns` of the pyarrow table of a CSV: the rows :func:`_read_rows` keeps."""
    from . import arrow
    from .arrow import pa, pc

    n = table.num_rows
    lines = np.arange(header_line + 1, header_line + 1 + n)
    raw = {col: table.column(arrow.column_name(col)) for _, col, _, _ in plan}
    converted = {key: arrow.convert(raw[col], kind) for key, col, kind, _ in plan}
    # a row blank in every column read may hold something elsewhere: those rows are read whole
    blank = np.ones(n, dtype=bool)
    for key, *_ in plan:
        blank &= converted[key].empty
    dropped = blank
    if blank.any() and len(plan) < len(hmap.headers):
        whole = _arrow_table(name, header_line, hmap, None)
        rows = np.flatnonzero(blank).tolist()
        dropped = np.zeros(n, dtype=bool)
        dropped[rows] = [all(is_blank(c) for c in cells) for cells in _rows_of(whole, rows)]
    reasons: dict[int, str] = {}
    first_line = int(lines[np.argmax(~dropped)]) if (~dropped).any() else None
    for key, col, kind, header in plan:
        c = converted[key]
        if key == "order_id":           # not an id as it is: why (maybe no reason: 'NBSP 14', "'15")
            bad = ~dropped & arrow.as_numpy(pc.is_null(c.values))
        else:
            bad = ~dropped & c.bad
        for i in np.flatnonzero(bad).tolist():
            if i in reasons:
                continue
            cell, line = raw[col][i].as_py(), int(lines[i])
            if key == "order_id":
                problem = order_id_problem(cell, line == first_line, header, line)
            else:
                try:
                    CONVERTERS[kind](cell, header, line)
                    problem = None
                except ValueError as e:
                    problem = str(e)
            if problem:
                reasons[i] = problem
    keep = ~dropped
    if reasons:
        keep[list(reasons)] = False
    skipped = [(int(lines[i]), reasons[i]) for i in sorted(reasons)]
    arrays, categories = {}, {}
    for key, col, kind, _ in plan:
        values = converted[key].values
        if kind in ("text", "id"):
            codes = arrow.factorize(values.filter(pa.array(keep)), sort=kind == "id")
            arrays[key] = _labelled(*codes) if labels else LazyCoded(*codes, (len(codes[0]),))
            categories[key] = codes
        else:
            arrays[key] = values[keep]
    return OrderColumns(arrays, categories, skipped, source)


def _labelled(codes: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """The object column of a factorised text column (see :class:`OrderColumns`)."""
    return np.append(distinct, None)[codes]        # code -1: the None appended


def _read_rows(sheet: Sheet, keys: frozenset[str]) -> OrderColumns:
    """The generic path: rows from the csv module or calamine, in batches.

    Blank rows are dropped; the first row left may be the description row
    (:func:`order_id_problem`); a row is skipped for its first bad cell among
    the columns read, in :data:`COLUMN_KEYS` order.
    """
    _, hmap, rows = _find_order_header(sheet)
    plan = _plan(hmap, keys)
    parts: dict[str, list] = {key: [] for key, *_ in plan}
    skipped: list[tuple[int, str]] = []
    first_line: int | None = None
    while batch := list(itertools.islice(rows, 65536)):
        for line, cells in batch:
            if all(is_blank(c) for c in cells):
                continue
            if first_line is None:
                first_line = line
            reason = getattr(cells, "reason", None)     # a Broken row: not a whole record
            values = []
            for key, col, kind, header in plan:
                if reason is not None:
                    break
                cell = cells[col] if col < len(cells) else None
                try:
                    if key == "order_id":
                        reason = order_id_problem(cell, line == first_line, header, line)
                        value = None if reason else parse_id(cell)
                    else:
                        value = CONVERTERS[kind](cell, header, line)
                except ValueError as e:
                    reason = str(e)
                values.append(value)
            if reason is not None:
                skipped.append((line, reason))
                continue
            for (key, *_), value in zip(plan, values):
                parts[key].append(value)
    from . import arrow
    from .arrow import pa

    arrays, categories = {}, {}
    for key, _, kind, _ in plan:
        if kind in ("text", "id"):
            codes = arrow.factorize(pa.array(parts[key], pa.string()), sort=kind == "id")
            arrays[key], categories[key] = _labelled(*codes), codes
        elif kind == "number":
            arrays[key] = np.array([np.nan if v is None else v for v in parts[key]], dtype=np.float64)
        else:
            arrays[key] = np.array(parts[key], dtype=_DTYPES[kind]) if parts[key] else np.empty(0, _DTYPES[kind])
    return OrderColumns(arrays, categories, skipped, sheet.name)
