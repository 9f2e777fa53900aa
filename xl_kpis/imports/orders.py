"""TikTok Shop Seller Center order export (docs/tiktok-exports.md §B).

One row per SKU line (sheet ``OrderSKUList`` in the xlsx); row 2 describes
the fields and is skipped; US dates; ids with a stray trailing tab; order-level
amounts (Order Amount, Order Refund Amount) repeated on every line of an order.

Two readers:

* :func:`parse_orders` — every mapped column as row dicts for the ``Orders``
  table, dedup key ``(order_id, sku_id)``;
* :func:`read_order_columns` — a few columns (by default those the shop KPIs
  need) as numpy arrays, fast enough for a million-line CSV.

Both read a UTF-8 comma CSV with the same scanner: a single pass over the
bytes in blocks, separators found with numpy, repeated cell values converted
once; other files go through the csv module or python-calamine row by row.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Collection, Iterable, Iterator, Sequence

import numpy as np

from .aliases import ORDER_FIELDS, HeaderMap, find_header, make_result
from .clean import (CONVERTERS, MAX_RECORD, MAX_TEXT, SHORT_ROW, UNTERMINATED, Broken, ColumnConverter, ExportFormatError,
                    ImportResult, Row, Sheet, cell_location, clean_texts, convert_rows, csv_format, csv_sheet,
                    datetimes_from_bytes, is_blank, is_total_row, numbers_from_bytes, open_table, parse_id, sniff,
                    too_long)

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
        error = e
    if is_blank(raw):
        return "no order id"
    if is_total_row([raw]):
        return "total row"
    if error is None:
        return None
    return "description row" if first and isinstance(raw, str) else str(error)


def parse_orders(path: str | os.PathLike[str], *, block_size: int = 1 << 23) -> ImportResult:
    """Read an order export (CSV, or xlsx sheet ``OrderSKUList``) into ``Orders`` rows.

    Keys: see :data:`~xl_kpis.imports.aliases.ORDER_FIELDS`; ids are exact
    text, money and quantities floats, times ``datetime``.  The description
    row, blank rows, total rows and rows with a bad cell land in ``skipped``
    with their line and reason.

    A UTF-8, comma-separated CSV is split into cells with numpy in
    ``block_size`` byte blocks (as :func:`read_order_columns` does), with
    the same rows, values and reasons as the csv module gives; other CSVs
    and xlsx are read row by row.
    """
    name = os.fspath(path)
    if sniff(name) == "csv" and csv_format(name) == ("utf-8-sig", ","):
        try:
            return _parse_csv(name, block_size)
        except _Irregular:
            pass  # quoting, field counts or bytes the scanner does not follow: use the csv module
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


# =========================================================================== columnar reader

class OrderColumns(dict):
    """``dict[str, numpy.ndarray]`` of equal-length columns, plus ``categories``, ``skipped`` and ``source``.

    Text and ids are object arrays of ``str`` (``None`` when blank), money
    and quantities ``float64`` (NaN when blank), ``created`` is
    ``datetime64[s]`` (NaT when blank).

    ``categories[key]`` is the text or id column ``key`` factorised:
    ``(codes, values)``, an int64 array and an object array of the distinct
    ``str`` of the column, with ``column[i] == values[codes[i]]``, or code -1
    where the column holds None.
    """

    def __init__(self, arrays: dict[str, np.ndarray], categories: dict[str, tuple[np.ndarray, np.ndarray]],
                 skipped: list[tuple[int, str]], source: str):
        super().__init__(arrays)
        self.categories = categories
        self.skipped = skipped
        self.source = source


_DTYPES = {"number": np.float64, "datetime": "datetime64[s]"}
_MISSING = object()


class _Bad(str):
    """A cached conversion error message."""


class _Accumulator:
    """Collects converted blocks of the KPI columns of one export.

    Both readers (the numpy CSV scanner and the generic row reader) hand
    blocks to :meth:`commit`; cell conversion goes through
    :meth:`convert_uniques`, i.e. the same converters as :func:`parse_orders`,
    once per distinct raw value.
    """

    def __init__(self, hmap: HeaderMap, source: str, keys: Collection[str]):
        self.plan = [(key, *hmap.columns[key]) for key in COLUMN_KEYS if key in keys and key in hmap.columns]
        self.source = source
        self.parts: dict[str, list[np.ndarray] | _TextColumn] = {
            key: _TextColumn(sort=kind == "id") if kind in ("text", "id") else []
            for key, _, kind, _ in self.plan}
        self.skipped: list[tuple[int, str]] = []
        self.cache: dict[str, dict[Any, Any]] = {key: {} for key, *_ in self.plan}
        self.first_line: int | None = None

    # -- conversion ---------------------------------------------------------
    def convert_uniques(self, key: str, kind: str, raws: list) -> tuple[np.ndarray, list[str | None]]:
        """Convert distinct raw cells: (typed values, error message or None per value)."""
        cache, fn = self.cache[key], CONVERTERS[kind]
        if len(cache) > 500_000:
            cache.clear()
        values: list[Any] = []
        errors: list[str | None] = []
        for raw in raws:
            hit = cache.get(raw, _MISSING)
            if hit is _MISSING:
                try:
                    hit = fn(raw)
                except ValueError as e:
                    hit = _Bad(str(e))
                cache[raw] = hit
            bad = isinstance(hit, _Bad)
            errors.append(hit if bad else None)
            values.append(None if bad else hit)
        return _typed(values, kind), errors

    def order_id_problems(self, raws: list, lines: np.ndarray, header: str) -> list[str | None]:
        """:func:`order_id_problem` for each raw Order ID cell."""
        return [order_id_problem(raw, int(line) == self.first_line, header, int(line))
                for raw, line in zip(raws, lines)]

    # -- blocks -------------------------------------------------------------
    def commit(self, lines: np.ndarray, columns: dict[str, tuple[Sequence, np.ndarray]],
               errors: dict[str, dict[int, str]], id_keys: np.ndarray | None = None,
               broken: dict[int, str] | None = None) -> None:
        """Keep the rows without errors.

        ``columns`` holds per key ``(values, inverse)``: the converted value of
        each group of equal cells (a typed array, or a sequence of text) and the
        group of each row; ``errors`` per key {row index: message}.  A row is
        reported once, for its first bad column in table order, unless it is
        ``broken`` ({row index: why}: not a whole record).  ``id_keys``:
        the :func:`_id_keys` of the order id groups, if already known.
        """
        reasons: dict[int, str] = dict(broken or {})
        for key, _, _, header in self.plan:
            for i, msg in errors.get(key, {}).items():
                if i not in reasons:
                    reasons[i] = msg if key == "order_id" else cell_location(header, int(lines[i])) + msg
        keep = np.ones(len(lines), dtype=bool)
        if reasons:
            idx = np.fromiter(reasons, dtype=np.int64, count=len(reasons))
            keep[idx] = False
            self.skipped.extend((int(lines[i]), reasons[i]) for i in sorted(reasons))
        for key, part in self.parts.items():
            values, inverse = columns[key]
            if reasons:
                inverse = inverse[keep]
            if isinstance(part, _TextColumn):
                part.add(values, inverse, id_keys if key == "order_id" else None)
            else:
                part.append(values[inverse])

    def add_rows(self, rows: list[Row]) -> None:
        """A block of generic rows (xlsx, or CSV read by the csv module)."""
        rows = [(line, cells) for line, cells in rows if not all(is_blank(c) for c in cells)]
        if not rows:
            return
        if self.first_line is None:
            self.first_line = rows[0][0]
        lines = np.fromiter((line for line, _ in rows), dtype=np.int64, count=len(rows))
        broken = {i: cells.reason for i, (_, cells) in enumerate(rows) if isinstance(cells, Broken)}
        columns: dict[str, tuple[Sequence, np.ndarray]] = {}
        errors: dict[str, dict[int, str]] = {}
        for key, col, kind, header in self.plan:
            raws = [cells[col] if col < len(cells) else None for _, cells in rows]
            if key == "order_id":
                problems = self.order_id_problems(raws, lines, header)
                errors[key] = {i: p for i, p in enumerate(problems) if p}
            uniq, inverse = _factorize(raws)
            vals, errs = self.convert_uniques(key, kind, uniq)
            columns[key] = (vals, inverse)
            if key != "order_id":
                errors[key] = {i: errs[u] for i, u in enumerate(inverse.tolist()) if errs[u]}
        self.commit(lines, columns, errors, broken=broken)

    def result(self) -> OrderColumns:
        """The concatenated columns (every key of the plan, possibly empty)."""
        arrays, categories = {}, {}
        for key, _, kind, _ in self.plan:
            part = self.parts[key]
            if isinstance(part, _TextColumn):
                arrays[key], *categories[key] = part.result()
            else:
                arrays[key] = np.concatenate(part) if part else np.empty(0, dtype=_DTYPES[kind])
        return OrderColumns(arrays, categories, self.skipped, self.source)


class _TextColumn:
    """A text or id column, block by block: its rows, and its distinct values to factorise at the end.

    The distinct values are numbered in the order they first appear or, with
    ``sort``, in sorted order (cheaply for ids with :func:`_id_keys`).
    """

    def __init__(self, sort: bool):
        self.sort = sort
        self.rows: list[np.ndarray] = []
        self.values: list[np.ndarray] = []     # the distinct values of each block
        self.hashes: list[np.ndarray] = []
        self.keys: list[np.ndarray | None] = []
        self.inverse: list[np.ndarray] = []    # the value of each row among its block's

    def add(self, values: Sequence[str | None], inverse: np.ndarray, keys: np.ndarray | None = None) -> None:
        """A block: its distinct values, the index of each row's value among them and, when
        sorting, the :func:`_id_keys` of the values (computed here if not given)."""
        distinct = np.empty(len(values), dtype=object)
        distinct[:] = values
        self.rows.append(distinct[inverse])
        self.values.append(distinct)
        self.hashes.append(np.fromiter(map(hash, distinct), dtype=np.int64, count=len(distinct)))
        if self.sort:
            self.keys.append(_id_keys(distinct) if keys is None else keys)
        self.inverse.append(inverse)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the column, the code of each row, the distinct values): see :class:`OrderColumns`."""
        if not self.rows:
            return np.empty(0, dtype=object), np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
        block_values, hashes = np.concatenate(self.values), np.concatenate(self.hashes)
        of_value, values = _factorize_hashed(block_values, hashes)
        offsets = np.cumsum([0] + [len(v) for v in self.values[:-1]])
        codes = np.concatenate([of_value[offset + inverse] for offset, inverse in zip(offsets, self.inverse)])
        # None gets code -1, and the values of skipped rows only are left out
        kept = np.bincount(codes, minlength=len(values)) > 0
        maybe_none = np.flatnonzero(hashes == hash(None))
        kept[[g for g, v in zip(of_value[maybe_none], block_values[maybe_none]) if v is None]] = False
        if not self.sort:
            first = np.full(len(values), len(codes))
            np.minimum.at(first, codes, np.arange(len(codes)))
            order = np.argsort(np.where(kept, first, len(codes)), kind="stable")[: np.count_nonzero(kept)]
        else:
            order = self._sorted(of_value, values)
            order = order[kept[order]]
        number = np.full(len(values), -1)
        number[order] = np.arange(len(order))
        return np.concatenate(self.rows), number[codes], values[order]

    def _sorted(self, of_value: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The order of the sorted values (``of_value``: the value of each block value)."""
        if any(k is None for k in self.keys):      # sorted as text (never a fixed-width copy)
            text = ["" if v is None else v for v in values.tolist()]
            return np.array(sorted(range(len(text)), key=text.__getitem__), dtype=np.int64)
        keys = np.empty(len(values), dtype=_ID_KEY)
        keys[of_value] = np.concatenate(self.keys)
        order = np.argsort(keys["digits"])
        if np.any(np.diff(keys["digits"][order]) == 0):      # ids differing in trailing zeros only
            order = np.lexsort((keys["length"], keys["digits"]))
        return order


_ID_KEY = np.dtype([("digits", np.uint64), ("length", np.int64)])
_ID_DIGITS = 19        # an uint64 holds any 19 digits


def _id_keys(ids: Sequence[str | None]) -> np.ndarray | None:
    """Keys sorting ids as text: the digits left-aligned on 19 places, then the length.

    None when an id is not 1 to 19 ASCII digits; a None id gets the key (0, 0).
    """
    keys = np.zeros(len(ids), dtype=_ID_KEY)
    for i, v in enumerate(ids):
        if v is not None:
            if not (v.isascii() and v.isdigit() and len(v) <= _ID_DIGITS):
                return None
            keys[i] = (int(v.ljust(_ID_DIGITS, "0")), len(v))
    return keys


def _id_keys_from_bytes(m: np.ndarray, lens: np.ndarray) -> np.ndarray | None:
    """:func:`_id_keys` of ids given as a byte matrix of ASCII digits (zero-padded) and their lengths."""
    if lens.max(initial=0) > _ID_DIGITS:
        return None
    keys = np.zeros(len(m), dtype=_ID_KEY)
    keys["length"] = lens
    digits = np.zeros(len(m), dtype=np.uint64)
    for j in range(_ID_DIGITS):
        digits *= np.uint64(10)
        if j < m.shape[1]:
            digits += np.where(j < lens, m[:, j] - np.uint8(48), 0).astype(np.uint64)
    keys["digits"] = digits
    return keys


def _factorize_hashed(values: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each value, one value per group) of an object array of hashable values.

    ``hashes`` are the values' ``hash()``.  Values are grouped as a dict
    would (equal hashes and ``==``), but sorting the hashes is much faster
    than a dict of a million strings; the groups are checked with ``==`` and
    a hash collision falls back to a dict.
    """
    inverse = np.unique(hashes, return_inverse=True)[1].ravel()
    distinct = np.empty(int(inverse.max(initial=-1)) + 1, dtype=object)
    distinct[inverse] = values
    shared = np.flatnonzero(np.bincount(inverse)[inverse] > 1)     # the only values to check
    if np.array_equal(distinct[inverse[shared]], values[shared]):
        return inverse, distinct
    index: dict[Any, int] = {}
    inverse = np.array([index.setdefault(v, len(index)) for v in values.tolist()], dtype=np.int64)
    distinct = np.empty(len(index), dtype=object)
    distinct[:] = list(index)
    return inverse, distinct


def _typed(values: list, kind: str) -> np.ndarray:
    """A numpy array of converted values (None → NaN/NaT for numbers/dates)."""
    if kind == "number":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "datetime":
        return np.array(values, dtype="datetime64[s]")
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _factorize(raws: list) -> tuple[list, np.ndarray]:
    """(distinct values in first-seen order, index of each raw among them)."""
    index: dict[Any, int] = {}
    codes = [index.setdefault(r, len(index)) for r in raws]
    return list(index), np.array(codes, dtype=np.int64)


def read_order_columns(path: str | os.PathLike[str], keys: Collection[str] = KPI_KEYS, *,
                       block_size: int = 1 << 23) -> OrderColumns:
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
    block_size : int
        Bytes read at a time from a CSV.

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
    A UTF-8, comma-separated CSV is scanned in ``block_size`` byte blocks
    with numpy (memory stays at a few blocks plus the output columns); other
    CSVs and xlsx go through the csv module / python-calamine row by row.
    """
    unknown = set(keys) - set(COLUMN_KEYS)
    if unknown:
        raise ValueError(f"read_order_columns: unknown column keys {sorted(unknown)}; "
                         f"choose among {', '.join(COLUMN_KEYS)}")
    keys = frozenset(keys)
    name = os.fspath(path)
    if sniff(name) == "csv" and csv_format(name) == ("utf-8-sig", ","):
        try:
            return _scan_csv(name, keys, block_size)
        except _Irregular:
            pass  # quoting or field counts the scanner does not follow: use the csv module
    return _read_rows(open_table(name, sheet=SHEET), keys)


def _read_rows(sheet: Sheet, keys: frozenset[str]) -> OrderColumns:
    """The generic path: rows from the csv module or calamine, in batches."""
    _, hmap, rows = _find_order_header(sheet)
    acc = _Accumulator(hmap, sheet.name, keys)
    while batch := list(itertools.islice(rows, 65536)):
        acc.add_rows(batch)
    return acc.result()


# --------------------------------------------------------------------------- the CSV scanner

class _Irregular(Exception):
    """The file needs the csv module (ragged rows, stray quotes, unterminated quote)."""


_QUOTE, _COMMA, _NL = 34, 44, 10
_BOM = b"\xef\xbb\xbf"
_WS = np.zeros(256, dtype=bool)
_WS[[9, 13, 32]] = True
_FNV_OFFSET, _FNV_PRIME = np.uint64(14695981039346656037), np.uint64(1099511628211)
_MAX_WIDTH = 1024        # wider cells are sliced one by one
_PAD = _MAX_WIDTH + 8    # zero bytes after a block, so every cell fits a fixed-width window


def _scan_csv(name: str, keys: frozenset[str], block_size: int) -> OrderColumns:
    """Read columns of a UTF-8 comma CSV in byte blocks (see :func:`_record_blocks`).

    A worker thread reads and splits the next block while this one converts
    the current block (:func:`_prefetched`): both are mostly numpy work,
    which runs without the GIL.
    """
    header = csv_sheet(open(name, encoding="utf-8-sig", newline=""), os.path.basename(name))
    header_line, hmap, rest = _find_order_header(header)
    rest.close()  # type: ignore[attr-defined]  # closes the file
    acc = _Accumulator(hmap, header.name, keys)
    notes: list[tuple[int, str]] = []
    for block in _prefetched(_record_blocks(name, block_size, header_line,
                                            1 + max(col for _, col, _, _ in acc.plan),
                                            _width(hmap), notes, header.name)):
        _convert_block(*block, acc)
    acc.skipped.extend(notes)
    return acc.result()


def _width(hmap: HeaderMap) -> int:
    """The fields a whole record has: up to the header's last named column."""
    return max((i + 1 for i, h in enumerate(hmap.headers) if h), default=0)


def _prefetched(blocks: Iterator[_Block]) -> Iterator[_Block]:
    """The blocks, each read and split in a worker thread while the caller converts the one before."""
    with contextlib.closing(blocks), ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(next, blocks, None)
        while (block := ahead.result()) is not None:
            ahead = pool.submit(next, blocks, None)
            yield block


_Block = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _record_blocks(name: str, block_size: int, header_line: int, min_fields: int, width: int,
                   notes: list[tuple[int, str]], source: str) -> Iterator[_Block]:
    """The data records of a UTF-8 comma CSV, block by block, for :func:`_convert_block`.

    Yields ``(padded, b, quotes, grid, starts, lines, short)``: the block's
    bytes with and without the zero padding, its quote positions, the
    separator positions of each data record (one row per record), the
    records' first bytes, their line numbers and which have fewer than
    ``width`` fields (a line cut short: their missing fields are empty).
    Records that do not have ``min_fields`` fields, or not all the same
    number of at least ``width``, raise :class:`_Irregular`; a record longer
    than :data:`MAX_RECORD` bytes is an ExportFormatError.  A last record the
    file ends inside quotes of goes into ``notes`` as ``(line, reason)``.

    Blocks are read into two buffers in turn: the unfinished record at the
    end of a block is copied to the front of the buffer that does not hold
    the block yielded last, and the next block read after it, so a yielded
    block stays intact until the next one is yielded.
    """
    buffers = [np.empty(block_size + _PAD + 1, dtype=np.uint8) for _ in range(2)]
    spare = 0                          # the buffer not holding the block yielded last
    scratch = np.empty((2, len(buffers[0])), dtype=bool)
    rest = buffers[1][:0]              # the unfinished record of the block before
    records_before = 0
    with open(name, "rb", buffering=0) as f:
        if f.read(len(_BOM)) != _BOM:
            f.seek(0)
        while True:
            carry = len(rest)
            if carry > MAX_RECORD:
                raise ExportFormatError(f"{source}: line {records_before + 1} is longer than "
                                        f"{MAX_RECORD:,} bytes (a file without line ends?); "
                                        "refusing to read it")
            if len(buffers[spare]) < carry + block_size + _PAD + 1:     # one record longer than a block
                buffers[spare] = np.empty(2 * (carry + block_size) + _PAD + 1, dtype=np.uint8)
            buf = buffers[spare]
            buf[:carry] = rest
            got = f.readinto(memoryview(buf)[carry:carry + block_size])
            n, final = carry + got, not got
            if final and n and buf[n - 1] != _NL:
                buf[n] = _NL
                n += 1
            if not n:
                return
            buf[n:n + _PAD] = 0
            if scratch.shape[1] < n:
                scratch = np.empty((2, len(buf)), dtype=bool)
            used, records, block = _split_records(buf, n, scratch, records_before, header_line, min_fields,
                                                  width)
            if block is not None:
                yield block
                spare = 1 - spare
            if final:
                if used < n:
                    line = records_before + records + 1
                    if line <= header_line or not _unterminated(buf[used:n].tobytes()):
                        raise _Irregular("a quote the csv module reads otherwise")
                    notes.append((line, UNTERMINATED))
                return
            records_before += records
            rest = buf[used:n]


def _unterminated(record: bytes) -> bool:
    """Whether the csv module reads the end of a file as a record left inside quotes."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        return False
    rows = list(csv_sheet(io.StringIO(text, newline=""), "").rows)
    return len(rows) == 1 and isinstance(rows[0][1], Broken)


def _separators(b: np.ndarray, scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of unquoted commas and newlines, positions of quote bytes) in a block.

    The block starts at a record boundary, so quote parity starts even; bytes
    between an opening quote and its closing quote (``""`` escapes pair up
    harmlessly) are inside a field.  ``scratch``: a (2, ≥ len(b)) boolean
    work area, reused from block to block (fresh temporaries cost page faults).
    """
    is_quote, is_sep = scratch[0, : len(b)], scratch[1, : len(b)]
    quotes = np.flatnonzero(np.equal(b, _QUOTE, out=is_quote))
    np.equal(b, _COMMA, out=is_sep)
    np.logical_or(is_sep, np.equal(b, _NL, out=is_quote), out=is_sep)
    cand = np.flatnonzero(is_sep)
    if len(quotes) == 0:
        return cand, quotes
    opens = quotes[0::2]
    closes = np.append(quotes[1::2], len(b)) if len(quotes) % 2 else quotes[1::2]
    lo = np.searchsorted(cand, opens)
    hi = np.searchsorted(cand, closes)
    counts = hi - lo
    total = int(counts.sum())
    if total:
        inside = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(total)
        keep = np.ones(len(cand), dtype=bool)
        keep[inside] = False
        cand = cand[keep]
    return cand, quotes


def _split_records(buf: np.ndarray, n: int, scratch: np.ndarray, records_before: int, header_line: int,
                   min_fields: int, width: int) -> tuple[int, int, _Block | None]:
    """Split the complete records in ``buf[:n]``: (bytes used, records seen, their data records or None)."""
    b = buf[:n]
    seps, quotes = _separators(b, scratch)
    newline_idx = np.flatnonzero(b[seps] == _NL)
    if len(newline_idx) == 0:
        return 0, 0, None
    seps = seps[: newline_idx[-1] + 1]
    ends = seps[newline_idx]                                   # each record's newline
    starts = np.concatenate(([0], ends[:-1] + 1))
    counts = np.diff(newline_idx, prepend=-1)                  # separators per record
    lines = records_before + 1 + np.arange(len(ends))
    after_header = lines > header_line
    block = None
    if after_header.any():
        n_fields = int(np.bincount(counts[after_header]).argmax())
        body = ends - starts - (b[np.maximum(ends - 1, 0)] == 13)   # bytes before CR LF
        blank = (body <= 0) | ((counts == n_fields) & (body == n_fields - 1))
        data = after_header & ~blank
        short = data & (counts < width)           # cut short: skipped, unless blank or a total
        n_fields = max(n_fields, width)
        if np.any(counts[data & ~short] != n_fields) or n_fields < min_fields:
            raise _Irregular("rows with differing numbers of fields")
        if data.any():
            rows = np.flatnonzero(data)
            if len(rows) == len(ends) and np.all(counts == n_fields):
                grid = seps.reshape(-1, n_fields)
            else:                                 # a short record's missing fields end at its newline
                first = (newline_idx - counts + 1)[rows]
                grid = seps[np.minimum(first[:, None] + np.arange(n_fields), newline_idx[rows][:, None])]
            block = (buf[:n + _PAD], b, quotes, grid, starts[rows], lines[rows], short[rows])
    return int(ends[-1]) + 1, len(ends), block


def _cells(b: np.ndarray, quotes: np.ndarray, starts: np.ndarray, ends: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell bounds without quotes and surrounding blanks: (start, end, has escaped quotes).

    As in the csv module, a cell is quoted when its first byte is a quote;
    text after its closing quote (``"abc"x``) is left to the csv module.
    """
    e = ends.copy()
    s = np.minimum(starts, e)        # a field missing from a short record: empty, at its newline
    quoted = np.flatnonzero((e - s >= 2) & (b[s] == _QUOTE))
    _trim(b, s, e, leading=False)
    escaped = np.zeros(len(s), dtype=bool)
    if len(quoted):
        if np.any(b[e[quoted] - 1] != _QUOTE) or np.any(e[quoted] - s[quoted] < 2):
            raise _Irregular("text after a closing quote")
        s[quoted] += 1
        e[quoted] -= 1
        escaped[quoted] = np.searchsorted(quotes, e[quoted]) > np.searchsorted(quotes, s[quoted])
    _trim(b, s, e, leading=True)
    _trim(b, s, e, leading=False)
    return s, e, escaped


def _trim(b: np.ndarray, s: np.ndarray, e: np.ndarray, leading: bool) -> None:
    """Move cell bounds past blanks (tab, CR, space) in place, at the start or at the end."""
    at = (lambda idx: b[s[idx]]) if leading else (lambda idx: b[e[idx] - 1])
    idx = np.flatnonzero(e > s)
    idx = idx[_WS[at(idx)]]
    while len(idx):                       # usually none; a stray tab or CR: one round
        if leading:
            s[idx] += 1
        else:
            e[idx] -= 1
        idx = idx[e[idx] > s[idx]]
        idx = idx[_WS[at(idx)]]


def _matrix(padded: np.ndarray, s: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Cells as an (n, width) uint8 matrix, zero-padded on the right.

    ``width`` is a multiple of 8 (≤ _MAX_WIDTH + 8), so rows can be compared as uint64 words.
    """
    width = -(-max(int(lens.max(initial=0)), 1) // 8) * 8
    m = np.lib.stride_tricks.sliding_window_view(padded, width)[s]
    m *= np.arange(width) < lens[:, None]
    return m


def _groups(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group equal rows of a byte matrix: (first row of each group, group of each row).

    Runs of equal adjacent rows (the lines of one order) are collapsed first
    with one comparison, then the run heads are grouped by value.
    """
    words = m.view(np.uint64)
    change = np.ones(m.shape[0], dtype=bool)
    np.any(words[1:] != words[:-1], axis=1, out=change[1:])
    heads = np.flatnonzero(change)
    run_of_row = np.cumsum(change) - 1
    first, inverse = _unique_rows(words[heads])
    return heads[first], inverse[run_of_row]


def _unique_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first row of each distinct row, group of each row) of a uint64 matrix.

    One word is its own key; longer rows are hashed, and the grouping is
    checked against the words (a collision falls back to an exact sort).
    """
    if words.shape[1] == 1:
        _, first, inverse = np.unique(words[:, 0], return_index=True, return_inverse=True)
        return first, inverse.ravel()
    h = np.full(words.shape[0], _FNV_OFFSET, dtype=np.uint64)
    for j in range(words.shape[1]):
        h = (h ^ words[:, j]) * _FNV_PRIME
        h ^= h >> np.uint64(29)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    if not np.array_equal(words, words[first[inverse]]):
        _, first, inverse = np.unique(words, axis=0, return_index=True, return_inverse=True)
    return first, inverse.ravel()


class _Column:
    """One KPI column of one block: its distinct raw cells and each row's group.

    ``raws[g]`` is the text of group ``g`` as the csv module would return it
    (blank padding stripped, quotes removed, ``""`` unescaped), decoded on
    first use; ``matrix`` holds the same cells as bytes (None for over-wide
    cells) and ``lens`` their lengths.
    """

    def __init__(self, padded: np.ndarray, quotes: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 lines: np.ndarray, source: str):
        b = padded[: len(padded) - _PAD]
        s, e, self._escaped = _cells(b, quotes, starts, ends)
        self._cells = (b, s, e, lines, source)
        lens = e - s
        self.matrix: np.ndarray | None = None
        self._raws: list[str] | None = None
        if int(lens.max(initial=0)) > _MAX_WIDTH:
            texts = self._decode(lambda: [b[i:j].tobytes() for i, j in zip(s.tolist(), e.tolist())])
            texts, self.inverse = _factorize(texts)
            self._raws = self._unescape(texts, np.arange(len(texts)))
        else:
            m = _matrix(padded, s, lens)
            first, self.inverse = _groups(m)
            self.matrix, self.lens = m[first], lens[first]

    @property
    def raws(self) -> list[str]:
        if self._raws is None:
            self._raws = self.raws_of(np.arange(len(self.matrix)))
        return self._raws

    def raws_of(self, groups: np.ndarray) -> list[str]:
        """``raws[g]`` for the given groups, decoding only those."""
        if self._raws is not None:
            return [self._raws[g] for g in groups.tolist()]
        rows = self.matrix[groups]
        return self._unescape(self._decode(lambda: rows.view(f"S{rows.shape[1]}").ravel().tolist()), groups)

    def digit_groups(self) -> np.ndarray:
        """Mask of the groups whose text is one or more ASCII digits."""
        if self.matrix is None:
            return np.array([r.isascii() and r.isdigit() for r in self.raws], dtype=bool)
        digits = np.count_nonzero(self.matrix - np.uint8(48) < 10, axis=1)
        return (digits == self.lens) & (self.lens > 0)

    def _decode(self, cells) -> list[str]:
        """UTF-8 text of ``cells()`` (a list of bytes); ExportFormatError naming the line if invalid."""
        try:
            return [x.decode("utf-8") for x in cells()]
        except UnicodeDecodeError as err:
            b, s, e, lines, source = self._cells
            bad = next(k for k, (i, j) in enumerate(zip(s.tolist(), e.tolist()))
                       if not _is_utf8(b[i:j].tobytes()))
            raise ExportFormatError(f"{source}: line {int(lines[bad])} is not UTF-8 text ({err.reason}); "
                                    "save the file as 'CSV UTF-8'") from err

    def _unescape(self, texts: list[str], groups: np.ndarray) -> list[str]:
        """``""`` → ``"`` in the texts (of ``groups``) of quoted cells holding escaped quotes."""
        if self._escaped.any():
            for k in np.flatnonzero(np.isin(groups, self.inverse[self._escaped])).tolist():
                texts[k] = texts[k].replace('""', '"')
        return texts

    def rows_of(self, groups: Iterable[int]) -> np.ndarray:
        """Indices of the rows in the given groups."""
        return np.flatnonzero(np.isin(self.inverse, np.fromiter(groups, dtype=np.int64)))

    def errors(self, errs: list[str | None]) -> dict[int, str]:
        """{row: message} for the rows whose group failed to convert."""
        bad = [g for g, msg in enumerate(errs) if msg]
        return {int(i): errs[self.inverse[i]] for i in self.rows_of(bad)} if bad else {}


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _convert_block(padded: np.ndarray, b: np.ndarray, quotes: np.ndarray, grid: np.ndarray,
                   starts: np.ndarray, lines: np.ndarray, short: np.ndarray, acc: _Accumulator) -> None:
    """Convert the KPI columns of the data records of one block and commit them."""
    broken: dict[int, str] = {}
    if short.any():                           # lines cut short: skipped unless blank or a total
        records = _Records(b, starts, grid[:, -1])
        keep = np.ones(len(lines), dtype=bool)
        for i in np.flatnonzero(short).tolist():
            cells = records.cells(i)
            if all(is_blank(c) for c in cells):
                keep[i] = False
            elif not is_total_row(cells):
                broken[i] = SHORT_ROW
        if not keep.all():
            grid, starts, lines, short = grid[keep], starts[keep], lines[keep], short[keep]
            order = np.cumsum(keep) - 1
            broken = {int(order[i]): why for i, why in broken.items()}
        if not len(lines):
            return
    if acc.first_line is None:
        acc.first_line = int(lines[0])
    columns: dict[str, tuple[Sequence, np.ndarray]] = {}
    errors: dict[str, dict[int, str]] = {}
    id_keys = None
    for key, col, kind, header in acc.plan:
        column = _Column(padded, quotes, starts if col == 0 else grid[:, col - 1] + 1, grid[:, col],
                         lines, acc.source)
        if key == "order_id":
            vals, errors[key], id_keys = _ids(column, lines, header, acc)
        elif kind == "text":
            vals = clean_texts(column.raws)
            long = {g for g, v in enumerate(vals) if v is not None and len(v) > MAX_TEXT}
            errors[key] = column.errors([too_long(vals[g]) if g in long else None
                                         for g in range(len(vals))]) if long else {}
        elif kind in _VECTORISED and column.matrix is not None:
            vals, errors[key] = _vectorised(column, acc, key, kind)
        else:
            vals, errs = acc.convert_uniques(key, kind, column.raws)
            errors[key] = column.errors(errs)
        columns[key] = (vals, column.inverse)
    acc.commit(lines, columns, errors, id_keys, broken)


#: Parsers of the common forms of number and date cells, from bytes (see :func:`_vectorised`).
_VECTORISED = {"number": numbers_from_bytes, "datetime": datetimes_from_bytes}


def _vectorised(column: _Column, acc: _Accumulator, key: str, kind: str) -> tuple[np.ndarray, dict[int, str]]:
    """Numbers or dates parsed vectorised; the groups that parser leaves go through the converter."""
    vals, ok = _VECTORISED[kind](column.matrix)
    rest = np.flatnonzero(~ok)
    errs: list[str | None] = [None] * len(vals)
    if len(rest):
        rest_vals, rest_errs = acc.convert_uniques(key, kind, column.raws_of(rest))
        vals[rest] = rest_vals
        for g, msg in zip(rest.tolist(), rest_errs):
            errs[g] = msg
    return vals, column.errors(errs)


def _ids(column: _Column, lines: np.ndarray, header: str, acc: _Accumulator
         ) -> tuple[np.ndarray, dict[int, str], np.ndarray | None]:
    """Order ids: all-digit cells are kept as they are; the others explain why the row goes.

    Returns the id of each group, the errors by row and the :func:`_id_keys` of the ids.
    """
    digits = column.digit_groups()
    vals = np.empty(len(digits), dtype=object)
    vals[digits] = column.raws_of(np.flatnonzero(digits))
    bad = np.flatnonzero(~digits)
    keys = None
    if column.matrix is not None:
        keys = _id_keys_from_bytes(column.matrix, np.where(digits, column.lens, 0))
    if not len(bad):
        return vals, {}, keys
    rows = column.rows_of(bad)
    raws = [column.raws[column.inverse[i]] for i in rows]
    errors: dict[int, str] = {}
    for i, raw, problem in zip(rows.tolist(), raws, acc.order_id_problems(raws, lines[rows], header)):
        if problem:
            errors[i] = problem
    # a bad group can still hold a valid id once NBSP etc. are stripped: convert per group
    for g in bad.tolist():
        try:
            vals[g] = parse_id(column.raws[g])
        except ValueError:
            pass
    if keys is not None:
        rest = _id_keys(vals[bad])
        if rest is None:
            keys = None
        else:
            keys[bad] = rest
    return vals, errors, keys


# --------------------------------------------------------------------------- parse_orders on the scanner

def _parse_csv(name: str, block_size: int) -> ImportResult:
    """:func:`parse_orders` of a UTF-8 comma CSV split into cells by the scanner (see :class:`_OrderRows`)."""
    header = csv_sheet(open(name, encoding="utf-8-sig", newline=""), os.path.basename(name))
    header_line, hmap, rest = _find_order_header(header)
    rest.close()  # type: ignore[attr-defined]  # closes the file
    rows = _OrderRows(hmap, header.name)
    min_fields = 1 + max(col for col, _, _ in hmap.columns.values())
    notes: list[tuple[int, str]] = []
    for block in _prefetched(_record_blocks(name, block_size, header_line, min_fields, _width(hmap), notes,
                                            header.name)):
        rows.add(*block)
    return _orders_result(hmap, rows.out, rows.skipped + notes, header.name, rows.blanks)


class _OrderRows:
    """``Orders`` rows built block by block from the scanner's cells, as :func:`parse_orders`
    builds them from the csv module's rows (:func:`convert_rows` with :func:`order_id_problem`).

    The cells come grouped and without surrounding blanks (see :class:`_Column`); they
    convert alike, as every converter strips the cell first.  The csv module reads a record
    again where the exact cells matter: when its first cell is blank (a blank row?), and
    for a cell a converter refuses (the message quotes it).
    """

    def __init__(self, hmap: HeaderMap, source: str):
        self.plan = [(key, col, kind, ColumnConverter(CONVERTERS[kind]), header)
                     for key, (col, kind, header) in hmap.columns.items()]
        self.id_col, _, self.id_header = hmap.columns["order_id"]
        self.source = source
        self.first_line: int | None = None        # the first row neither blank nor a total
        self.out: list[dict[str, Any]] = []
        self.skipped: list[tuple[int, str]] = []
        self.blanks: list[tuple[int, str, str]] = []     #: cells read as blank (``--``)

    def add(self, padded: np.ndarray, b: np.ndarray, quotes: np.ndarray, grid: np.ndarray,
            starts: np.ndarray, lines: np.ndarray, short: np.ndarray) -> None:
        """The data records of one block (see :func:`_record_blocks`), in order."""
        records = _Records(b, starts, grid[:, -1])
        if not records.utf8():
            raise _Irregular("not UTF-8 text: the csv module reports it")
        cells = {col: _Column(padded, quotes, starts if col == 0 else grid[:, col - 1] + 1, grid[:, col],
                              lines, self.source)
                 for col in {0, *(col for _, col, _, _, _ in self.plan)}}
        first = cells[0]
        blank_first = np.array([is_blank(raw) for raw in first.raws], dtype=bool)[first.inverse]
        total = np.array([is_total_row([raw]) for raw in first.raws], dtype=bool)[first.inverse]
        total &= ~blank_first
        reasons: list[str | None] = [None] * len(lines)
        for i in np.flatnonzero(total).tolist():
            reasons[i] = "total row"
        exact = {i: records.cells(i) for i in np.flatnonzero(blank_first | short).tolist()}
        dropped = {i for i, row in exact.items() if all(is_blank(c) for c in row)}
        for i, row in exact.items():
            if i not in dropped and is_total_row(row):
                reasons[i] = "total row"
            elif i not in dropped and short[i]:
                reasons[i] = SHORT_ROW
        data = [i for i, reason in enumerate(reasons) if reason is None and i not in dropped]
        if self.first_line is None and data:
            self.first_line = int(lines[data[0]])
        self._check_ids(cells[self.id_col], exact, data, lines, reasons)
        values = self._convert(cells, exact, data, lines, reasons, records)
        for i, line in enumerate(lines.tolist()):
            if i in dropped:
                continue
            if reasons[i] is None:
                self.out.append(values[i])
            else:
                self.skipped.append((line, reasons[i]))

    def _check_ids(self, ids: _Column, exact: dict[int, list[str]], data: list[int], lines: np.ndarray,
                   reasons: list[str | None]) -> None:
        """:func:`order_id_problem` of the data rows (ids that parse need no call)."""
        valid = ids.digit_groups()
        for g in np.flatnonzero(~valid).tolist():
            try:
                valid[g] = parse_id(ids.raws[g]) is not None
            except ValueError:
                pass
        ok = valid[ids.inverse]
        for i in data:
            if i in exact or not ok[i]:
                raw = exact[i][self.id_col] if i in exact else ids.raws[ids.inverse[i]]
                line = int(lines[i])
                reasons[i] = order_id_problem(raw, line == self.first_line, self.id_header, line)

    def _convert(self, cells: dict[int, _Column], exact: dict[int, list[str]], data: list[int],
                 lines: np.ndarray, reasons: list[str | None], records: _Records
                 ) -> dict[int, dict[str, Any]]:
        """The row dict of each data row left, or its reason: the first cell its converter refuses."""
        grouped = [i for i in data if reasons[i] is None and i not in exact]
        by_group = []
        for key, col, kind, converter, header in self.plan:
            column = cells[col]
            _seed(converter, column, kind)
            values, failed = converter(column.raws)
            if failed:
                bad = np.zeros(len(values), dtype=bool)
                bad[failed] = True
                for i in np.flatnonzero(bad[column.inverse]).tolist():
                    if reasons[i] is None and i not in exact:
                        reasons[i] = _refusal(converter, records.cells(i)[col], header, int(lines[i]))
            by_group.append(np.empty(len(values), dtype=object))
            by_group[-1][:] = values
        good = np.array([i for i in grouped if reasons[i] is None], dtype=np.int64)
        for (key, col, kind, converter, header), values in zip(self.plan, by_group):
            if kind not in ("number", "datetime", "date"):
                continue                  # text and ids never read a marker as blank
            raws = cells[col].raws
            marked = [g for g in np.flatnonzero(np.equal(values, None)).tolist()
                      if not is_blank(raws[g])]
            if marked and good.size:
                at = good[np.isin(cells[col].inverse[good], marked)]
                self.blanks += [(int(lines[i]), header, raws[cells[col].inverse[i]].strip())
                                for i in at.tolist()]
        columns = [values[cells[col].inverse[good]].tolist()
                   for values, (_, col, *_) in zip(by_group, self.plan)]
        keys = [key for key, *_ in self.plan]
        rows = dict(zip(good.tolist(), (dict(zip(keys, values)) for values in zip(*columns))))
        for i in data:
            if i in exact and reasons[i] is None:
                row, reasons[i] = self._convert_cells(exact[i], int(lines[i]))
                rows[i] = row
        return rows

    def _convert_cells(self, cells: list[str], line: int) -> tuple[dict[str, Any], str | None]:
        """One row converted cell by cell: (row, None) or (partial row, the reason it is refused)."""
        row: dict[str, Any] = {}
        for key, col, _, converter, header in self.plan:
            try:
                row[key] = converter.convert(cells[col], header, line)
            except ValueError as e:
                return row, str(e)
        return row, None


def _seed(converter: ColumnConverter, column: _Column, kind: str) -> None:
    """Give the converter the values of the groups the vectorised parsers read (ids of digits,
    plain numbers, usual dates), so that it only converts the others."""
    if column.matrix is None:
        return
    if kind == "id":
        digits = np.flatnonzero(column.digit_groups())
        texts = column.raws_of(digits)
        converter.update(zip(texts, texts))
    elif kind in _VECTORISED:
        values, ok = _VECTORISED[kind](column.matrix)
        ok = np.flatnonzero(ok)
        converter.update(zip(column.raws_of(ok), values[ok].astype(object).tolist()))


def _refusal(converter: ColumnConverter, cell: str, header: str, line: int) -> str:
    """The converter's message for a cell it refuses (without its blanks), with the location."""
    try:
        converter.convert(cell, header, line)
    except ValueError as e:
        return str(e)
    raise RuntimeError(f"line {line}, column {header!r}: {cell!r} converts only with its blanks")


class _Records:
    """The text of the records of a block, read with the csv module on demand."""

    def __init__(self, b: np.ndarray, starts: np.ndarray, ends: np.ndarray):
        self.b, self.starts, self.ends = b, starts, ends

    def utf8(self) -> bool:
        """True when every record is UTF-8 text (only those with non-ASCII bytes are decoded)."""
        if self.b.max(initial=0) < 0x80:
            return True
        for i in np.unique(np.searchsorted(self.ends, np.flatnonzero(self.b >= 0x80))).tolist():
            if i < len(self.starts):
                try:
                    self.b[self.starts[i]:self.ends[i]].tobytes().decode("utf-8")
                except UnicodeDecodeError:
                    return False
        return True

    def cells(self, i: int) -> list[str]:
        """The cells of record ``i`` as the csv module reads them."""
        text = self.b[self.starts[i]:self.ends[i]].tobytes().decode("utf-8")
        return next(csv.reader(io.StringIO(text, newline="")))
