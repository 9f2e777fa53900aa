"""TikTok Shop Seller Center order export (tiktok-exports.md §B).

One row per SKU line (sheet ``OrderSKUList`` in the xlsx); row 2 describes
the fields and is skipped; US dates; ids with a stray trailing tab; order-level
amounts (Order Amount, Order Refund Amount) repeated on every line of an order.

Two readers:

* :func:`parse_orders` — every mapped column as row dicts for the ``Orders``
  table, dedup key ``(order_id, sku_id)``;
* :func:`read_order_columns` — only the columns the shop KPIs need, as numpy
  arrays, fast enough for a million-line CSV (a single pass over the bytes in
  blocks, separators found with numpy, repeated cell values converted once).
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Iterable, Iterator

import numpy as np

from .aliases import ORDER_FIELDS, HeaderMap, find_header, make_result
from .clean import (CONVERTERS, ExportFormatError, ImportResult, Row, Sheet, cell_location, clean_texts,
                    convert_rows, csv_format, csv_sheet, datetimes_from_bytes, is_blank, is_total_row,
                    open_table, parse_id, sniff)

__all__ = ["parse_orders", "read_order_columns", "OrderColumns", "COLUMN_KEYS", "SHEET"]

SHEET = "OrderSKUList"
#: The columns :func:`read_order_columns` returns.
COLUMN_KEYS = ("order_id", "status", "buyer", "order_amount", "product", "sku_subtotal",
               "quantity", "created")


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
    if is_blank(raw):
        return "no order id"
    if is_total_row([raw]):
        return "total row"
    try:
        parse_id(raw, header, line)
    except ValueError as e:
        return "description row" if first and isinstance(raw, str) else str(e)
    return None


def parse_orders(path: str | os.PathLike[str]) -> ImportResult:
    """Read an order export (CSV, or xlsx sheet ``OrderSKUList``) into ``Orders`` rows.

    Keys: see :data:`~xl_kpis.imports.aliases.ORDER_FIELDS`; ids are exact
    text, money and quantities floats, times ``datetime``.  The description
    row, blank rows, total rows and rows with a bad cell land in ``skipped``
    with their line and reason.
    """
    sheet = open_table(path, sheet=SHEET)
    _, hmap, rows = _find_order_header(sheet)
    id_col, _, id_header = hmap.columns["order_id"]
    seen_data = False

    def pre(line: int, cells: list) -> str | None:
        nonlocal seen_data
        first, seen_data = not seen_data, True
        return order_id_problem(cells[id_col] if id_col < len(cells) else None, first, id_header, line)

    out, skipped = convert_rows(rows, hmap.columns, pre=pre)
    keys = ("order_id", "sku_id") if "sku_id" in hmap.columns else ("order_id",)
    return make_result("orders", "Orders", ORDER_FIELDS, hmap, out, skipped, keys, sheet.name)


# =========================================================================== columnar reader

class OrderColumns(dict):
    """``dict[str, numpy.ndarray]`` of equal-length columns, plus ``skipped`` and ``source``.

    Text and ids are object arrays of ``str`` (``None`` when blank; equal
    values share one object), money and quantities ``float64`` (NaN when
    blank), ``created`` is ``datetime64[s]`` (NaT when blank).
    """

    def __init__(self, arrays: dict[str, np.ndarray], skipped: list[tuple[int, str]], source: str):
        super().__init__(arrays)
        self.skipped = skipped
        self.source = source


_DTYPES = {"text": object, "id": object, "number": np.float64, "datetime": "datetime64[s]"}
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

    def __init__(self, hmap: HeaderMap, source: str):
        self.plan = [(key, *hmap.columns[key]) for key in COLUMN_KEYS if key in hmap.columns]
        self.source = source
        self.parts: dict[str, list[np.ndarray]] = {key: [] for key, *_ in self.plan}
        self.skipped: list[tuple[int, str]] = []
        self.cache: dict[str, dict[Any, Any]] = {key: {} for key, *_ in self.plan}
        self.interned: dict[str, str] = {}
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
                if isinstance(hit, str) and not isinstance(hit, _Bad):
                    hit = self.interned.setdefault(hit, hit)
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
    def commit(self, lines: np.ndarray, values: dict[str, np.ndarray],
               errors: dict[str, dict[int, str]]) -> None:
        """Keep the rows without errors; errors are per key {row index: message}.

        A row is reported once, for its first bad column in table order.
        """
        reasons: dict[int, str] = {}
        for key, _, _, header in self.plan:
            for i, msg in errors.get(key, {}).items():
                if i not in reasons:
                    reasons[i] = msg if key == "order_id" else cell_location(header, int(lines[i])) + msg
        keep = np.ones(len(lines), dtype=bool)
        if reasons:
            idx = np.fromiter(reasons, dtype=np.int64, count=len(reasons))
            keep[idx] = False
            self.skipped.extend((int(lines[i]), reasons[i]) for i in sorted(reasons))
        for key in self.parts:
            self.parts[key].append(values[key][keep] if reasons else values[key])

    def add_rows(self, rows: list[Row]) -> None:
        """A block of generic rows (xlsx, or CSV read by the csv module)."""
        rows = [(line, cells) for line, cells in rows if not all(is_blank(c) for c in cells)]
        if not rows:
            return
        if self.first_line is None:
            self.first_line = rows[0][0]
        lines = np.fromiter((line for line, _ in rows), dtype=np.int64, count=len(rows))
        values: dict[str, np.ndarray] = {}
        errors: dict[str, dict[int, str]] = {}
        for key, col, kind, header in self.plan:
            raws = [cells[col] if col < len(cells) else None for _, cells in rows]
            if key == "order_id":
                problems = self.order_id_problems(raws, lines, header)
                errors[key] = {i: p for i, p in enumerate(problems) if p}
            uniq, inverse = _factorize(raws)
            vals, errs = self.convert_uniques(key, kind, uniq)
            values[key] = vals[inverse]
            if key != "order_id":
                errors[key] = {i: errs[u] for i, u in enumerate(inverse.tolist()) if errs[u]}
        self.commit(lines, values, errors)

    def result(self) -> OrderColumns:
        """The concatenated columns (every key of the plan, possibly empty)."""
        arrays = {}
        for key, _, kind, _ in self.plan:
            parts = self.parts[key]
            arrays[key] = np.concatenate(parts) if parts else np.empty(0, dtype=_DTYPES[kind])
        return OrderColumns(arrays, self.skipped, self.source)


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


def read_order_columns(path: str | os.PathLike[str], *, block_size: int = 1 << 23) -> OrderColumns:
    """The KPI columns of an order export as numpy arrays (see :data:`COLUMN_KEYS`).

    Returns an :class:`OrderColumns`: ``order_id``, ``status``, ``buyer``,
    ``product`` (object arrays of str), ``order_amount``, ``sku_subtotal``,
    ``quantity`` (float64), ``created`` (datetime64[s]); a column the file
    lacks is absent.  Rows are exactly those :func:`parse_orders` keeps,
    except that only these columns are checked: a bad cell elsewhere does
    not drop the row here.  ``.skipped`` lists the dropped rows.

    A UTF-8, comma-separated CSV is scanned in ``block_size`` byte blocks
    with numpy (memory stays at a few blocks plus the output columns); other
    CSVs and xlsx go through the csv module / python-calamine row by row.
    """
    name = os.fspath(path)
    if sniff(name) == "csv" and csv_format(name) == ("utf-8-sig", ","):
        try:
            return _scan_csv(name, block_size)
        except _Irregular:
            pass  # quoting or field counts the scanner does not follow: use the csv module
    return _read_rows(open_table(name, sheet=SHEET))


def _read_rows(sheet: Sheet) -> OrderColumns:
    """The generic path: rows from the csv module or calamine, in batches."""
    _, hmap, rows = _find_order_header(sheet)
    acc = _Accumulator(hmap, sheet.name)
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


def _scan_csv(name: str, block_size: int) -> OrderColumns:
    """Read the KPI columns of a UTF-8 comma CSV in byte blocks.

    The blocks go through one reused buffer: the unfinished record at the
    end of a block is moved to the front and the next block read after it.
    """
    header = csv_sheet(open(name, encoding="utf-8-sig", newline=""), os.path.basename(name))
    header_line, hmap, rest = _find_order_header(header)
    rest.close()  # type: ignore[attr-defined]  # closes the file
    acc = _Accumulator(hmap, header.name)
    buf = np.empty(block_size + _PAD + 1, dtype=np.uint8)
    scratch = np.empty((2, len(buf)), dtype=bool)
    carry = records_before = 0
    with open(name, "rb", buffering=0) as f:
        if f.read(len(_BOM)) != _BOM:
            f.seek(0)
        while True:
            if len(buf) < carry + block_size + _PAD + 1:     # one record longer than a block
                buf = np.concatenate((buf[:carry], np.empty(carry + 2 * block_size + _PAD, np.uint8)))
            got = f.readinto(memoryview(buf)[carry:carry + block_size])
            n, final = carry + got, not got
            if final and n and buf[n - 1] != _NL:
                buf[n] = _NL
                n += 1
            if not n:
                break
            buf[n:n + _PAD] = 0
            if scratch.shape[1] < n:
                scratch = np.empty((2, len(buf)), dtype=bool)
            used, records = _scan_block(buf, n, scratch, acc, records_before, header_line)
            if final:
                if used < n:
                    raise _Irregular("unterminated quoted field at the end of the file")
                break
            records_before += records
            carry = n - used
            buf[:carry] = buf[used:n].copy()
    return acc.result()


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


def _scan_block(buf: np.ndarray, n: int, scratch: np.ndarray, acc: _Accumulator, records_before: int,
                header_line: int) -> tuple[int, int]:
    """Convert the complete records in ``buf[:n]``; return (bytes used, records seen)."""
    b = buf[:n]
    seps, quotes = _separators(b, scratch)
    newline_idx = np.flatnonzero(b[seps] == _NL)
    if len(newline_idx) == 0:
        return 0, 0
    seps = seps[: newline_idx[-1] + 1]
    ends = seps[newline_idx]                                   # each record's newline
    starts = np.concatenate(([0], ends[:-1] + 1))
    counts = np.diff(newline_idx, prepend=-1)                  # separators per record
    lines = records_before + 1 + np.arange(len(ends))
    after_header = lines > header_line
    if after_header.any():
        n_fields = int(np.bincount(counts[after_header]).argmax())
        body = ends - starts - (b[np.maximum(ends - 1, 0)] == 13)   # bytes before CR LF
        blank = (body <= 0) | ((counts == n_fields) & (body == n_fields - 1))
        data = after_header & ~blank
        if np.any(counts[data] != n_fields) or n_fields <= max(col for _, col, _, _ in acc.plan):
            raise _Irregular("rows with differing numbers of fields")
        if data.any():
            rows = np.flatnonzero(data)
            if len(rows) == len(ends) and np.all(counts == n_fields):
                grid = seps.reshape(-1, n_fields)
            else:
                grid = seps[(newline_idx - counts + 1)[rows][:, None] + np.arange(n_fields)]
            _convert_block(buf[:n + _PAD], b, quotes, grid, starts[rows], lines[rows], acc)
    return int(ends[-1]) + 1, len(ends)


def _cells(b: np.ndarray, quotes: np.ndarray, starts: np.ndarray, ends: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell bounds without quotes and surrounding blanks: (start, end, has escaped quotes).

    As in the csv module, a cell is quoted when its first byte is a quote;
    text after its closing quote (``"abc"x``) is left to the csv module.
    """
    s, e = starts.copy(), ends.copy()
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
    cells).
    """

    def __init__(self, padded: np.ndarray, quotes: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 lines: np.ndarray, source: str):
        b = padded[: len(padded) - _PAD]
        s, e, self._escaped = _cells(b, quotes, starts, ends)
        self._cells = (b, s, e, lines, source)
        lens = e - s
        self.matrix: np.ndarray | None = None
        if int(lens.max(initial=0)) > _MAX_WIDTH:
            texts = self._decode(lambda: [b[i:j].tobytes() for i, j in zip(s.tolist(), e.tolist())])
            self._raws, self.inverse = _factorize(texts)
            self._unescape()
        else:
            m = _matrix(padded, s, lens)
            first, self.inverse = _groups(m)
            self.matrix = m[first]
            self._raws = None

    @property
    def raws(self) -> list[str]:
        if self._raws is None:
            self._raws = self._decode(lambda: self.matrix.view(f"S{self.matrix.shape[1]}").ravel().tolist())
            self._unescape()
        return self._raws

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

    def _unescape(self) -> None:
        """``""`` → ``"`` in the groups of quoted cells holding escaped quotes."""
        for g in np.unique(self.inverse[self._escaped]).tolist():
            self._raws[g] = self._raws[g].replace('""', '"')

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
                   starts: np.ndarray, lines: np.ndarray, acc: _Accumulator) -> None:
    """Convert the KPI columns of the data records of one block and commit them."""
    if acc.first_line is None:
        acc.first_line = int(lines[0])
    values: dict[str, np.ndarray] = {}
    errors: dict[str, dict[int, str]] = {}
    for key, col, kind, header in acc.plan:
        column = _Column(padded, quotes, starts if col == 0 else grid[:, col - 1] + 1, grid[:, col],
                         lines, acc.source)
        if key == "order_id":
            vals, errors[key] = _ids(column, lines, header, acc)
        elif kind == "text":
            vals, errors[key] = _typed(clean_texts(column.raws), kind), {}
        elif kind == "datetime" and column.matrix is not None:
            vals, errors[key] = _datetimes(column, acc, key)
        else:
            vals, errs = acc.convert_uniques(key, kind, column.raws)
            errors[key] = column.errors(errs)
        values[key] = vals[column.inverse]
    acc.commit(lines, values, errors)


def _datetimes(column: _Column, acc: _Accumulator, key: str) -> tuple[np.ndarray, dict[int, str]]:
    """Dates parsed vectorised; the groups that parser leaves go through :func:`parse_datetime`."""
    vals, ok = datetimes_from_bytes(column.matrix)
    rest = np.flatnonzero(~ok).tolist()
    errs: list[str | None] = [None] * len(vals)
    if rest:
        rest_vals, rest_errs = acc.convert_uniques(key, "datetime", [column.raws[g] for g in rest])
        vals[rest] = rest_vals
        for g, msg in zip(rest, rest_errs):
            errs[g] = msg
    return vals, column.errors(errs)


def _ids(column: _Column, lines: np.ndarray, header: str, acc: _Accumulator
         ) -> tuple[np.ndarray, dict[int, str]]:
    """Order ids: all-digit cells are kept as they are; the others explain why the row goes."""
    vals = np.empty(len(column.raws), dtype=object)
    vals[:] = [r if r.isascii() and r.isdigit() else None for r in column.raws]
    bad = [g for g, v in enumerate(vals) if v is None]
    if not bad:
        return vals, {}
    rows = column.rows_of(bad)
    raws = [column.raws[column.inverse[i]] for i in rows]
    errors: dict[int, str] = {}
    for i, raw, problem in zip(rows.tolist(), raws, acc.order_id_problems(raws, lines[rows], header)):
        if problem:
            errors[i] = problem
    # a bad group can still hold a valid id once NBSP etc. are stripped: convert per group
    for g in bad:
        try:
            vals[g] = parse_id(column.raws[g])
        except ValueError:
            pass
    return vals, errors
