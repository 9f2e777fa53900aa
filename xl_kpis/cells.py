"""The Excel boundary: what a cell shows for every input.

This is the one module that decides how values arriving from Excel (through
xlwings, classic or Lite, or from a formula engine) become numbers for the
pure KPI functions, and how their results become cell values.  It imports
numpy, :mod:`xl_kpis.metrics` and Excel's error values and date serials
(:mod:`xl_kpis.xlsx.errors`, :mod:`xl_kpis.xlsx.dates`) only.

Cell rules (the README's "Conventions" repeats them):

* numbers are used as they are; a **blank** cell (``None`` or ``""``) counts
  as 0, as in Excel arithmetic, but where **all** inputs of an element are
  blank the result is blank; a range function (ranges in, one number out)
  whose range argument is blank everywhere gives a blank ("not measured");
* text that Excel coerces in arithmetic is coerced: ``"1,200"``,
  ``"$1,200.50"``, ``"5%"``, ``"(12)"``, ``" 7 "``, ``"1e3"``; any other text,
  a boolean, a date or an error value gives ``#VALUE!``;
* an undefined result (a 0 denominator) gives ``#DIV/0!``; a number outside
  an argument's domain (a negative count or spend, a margin above 100 %)
  gives ``#NUM!``; NaN and infinities never reach a cell;
* ranges: 2-D lists in, 2-D lists out.  A single cell broadcasts against a
  range; a single row or column broadcasts along the other axis; where ranges
  of different sizes do not overlap the result is ``#N/A`` (Excel's rules for
  array arithmetic);
* per element, the first argument (left to right) that is in error decides
  the error, as in Excel.

Blank: both xlwings backends write ``None`` as ``""`` (classic:
``_xlwindows.Engine.prepare_xl_data_element``; Office.js / Lite:
``pro/_xlofficejs.Engine.prepare_xl_data_element``), so the value that shows
an empty cell on both platforms is the empty string; :data:`BLANK` is ``""``.
Error values are returned as the strings in :data:`ERRORS`: real Excel errors
in xlwings Lite (since xlwings 0.30), look-alike text in classic Excel.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import weakref
from datetime import date, datetime, time
from itertools import chain
from typing import Any, Callable, Sequence

import numpy as np

from .metrics._kpi import MAX_ROWS, Domain, KpiSpec
from .metrics._kpi import codes as _codes
from .metrics._kpi import LazyCoded, is_plain, label_codes, plain
from .xlsx.dates import FIRST_SERIAL, LAST_SERIAL, to_serial
from .xlsx.errors import DIV0, ERRORS, NA, NUM, VALUE, Text, is_error

__all__ = ["BLANK", "DIV0", "NUM", "VALUE", "NA", "ERRORS", "Text", "is_error", "to_number",
           "elementwise", "aggregate", "table", "model", "strict"]

log = logging.getLogger("xl_kpis")

BLANK = ""

#: Rows of a worksheet (Microsoft, "Excel specifications and limits": 1,048,576 rows).  A table
#: asked to spill more rows than fit below its header is #NUM!: building it would only hang
#: the workbook (a top_n of 1E+12 must not allocate a trillion rows).
SHEET_ROWS = MAX_ROWS + 1      # the core's bound: top_products refuses more

# per-element status codes
_OK, _BLANK, _VALUE, _NA, _NUM = 0, 1, 2, 3, 4
_CODE_TEXT = {_VALUE: VALUE, _NA: NA, _NUM: NUM}

# Text Excel (en-US) turns into a number in arithmetic: optional sign or
# parentheses, an optional currency symbol, digits with optional thousands
# separators, decimals, exponent, and an optional percent sign.
# Each run of blanks follows a token (never two runs side by side), so a text that is no
# number is refused in time linear in its length.
_NUMERIC_TEXT = re.compile(
    r"""^\s*(?:(?P<sign>[-+])\s*)?(?:(?P<open>\()\s*)?(?:(?P<cur>[$€£¥])\s*)?
        (?:(?P<sign2>[-+])\s*)?
        (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)
        (?P<exp>[eE][-+]?\d+)?(?:\s*(?P<pct>%))?(?:\s*(?P<close>\)))?\s*$""",
    re.VERBOSE,
)


def _parse_text(s: str) -> float | None:
    """The number Excel reads in ``s``, or None when Excel would say #VALUE!."""
    m = _NUMERIC_TEXT.match(s)
    if m is None or bool(m["open"]) != bool(m["close"]) or (m["sign"] and m["sign2"]):
        return None
    x = float(m["num"].replace(",", "") + (m["exp"] or ""))
    if m["pct"]:
        x /= 100.0
    if m["open"] or "-" in (m["sign"] or "", m["sign2"] or ""):
        x = -x
    return x


def _cell(v: Any) -> tuple[float, int]:
    """One cell value → (number, status)."""
    t = type(v)
    if t is float:
        return (0.0, _BLANK) if v != v else (v, _OK)
    if t is int:
        return float(v), _OK
    if v is None:
        return 0.0, _BLANK
    if isinstance(v, str):
        if v == "":
            return 0.0, _BLANK
        x = _parse_text(v)
        return (0.0, _VALUE) if x is None else (x, _OK)
    if isinstance(v, (bool, np.bool_, datetime, date, time)):
        return 0.0, _VALUE
    if isinstance(v, (int, float, np.integer, np.floating)):
        x = float(v)
        return (0.0, _BLANK) if x != x else (x, _OK)
    return 0.0, _VALUE


def to_number(v: Any) -> float | str:
    """What one cell value counts as: a float, :data:`BLANK` or ``"#VALUE!"``.

    >>> to_number("$1,200.50"), to_number("5%"), to_number("(3)"), to_number(None)
    (1200.5, 0.05, -3.0, '')
    >>> to_number("abc"), to_number(True), to_number("#N/A")
    ('#VALUE!', '#VALUE!', '#VALUE!')
    """
    x, s = _cell(v)
    return BLANK if s == _BLANK else (VALUE if s == _VALUE else x)


class _Grid:
    """One argument as a 2-D float array with a per-element status."""

    __slots__ = ("values", "status", "kind")

    def __init__(self, values: np.ndarray, status: np.ndarray | None, kind: str):
        self.values = values          # float64, 2-D
        self.status = status          # int8 2-D, or None when every element is a number
        self.kind = kind              # "scalar", "1d" or "2d": how it arrived


def _rows(x: Any) -> tuple[list, str]:
    """A range value as a list of rows, and how it arrived."""
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return [[x.item()]], "scalar"
        return (x.reshape(-1, 1).tolist(), "1d") if x.ndim == 1 else (x.tolist(), "2d")
    if isinstance(x, (list, tuple)):
        if len(x) and isinstance(x[0], (list, tuple, np.ndarray)):
            return [list(r) for r in x] if isinstance(x, tuple) or isinstance(x[0], tuple) \
                else x, "2d"
        return [[v] for v in x], "1d"
    return [[x]], "scalar"


def _grid(x: Any) -> _Grid:
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim == 2 and x.size:
        a = x.astype(np.float64)             # a copy: NaN is a blank, as from a list
        blank = np.isnan(a)
        if not blank.any():
            return _Grid(a, None, "2d")
        a[blank] = 0.0
        return _Grid(a, blank.astype(np.int8), "2d")
    cells, (height, width), kind = _flat_cells(x)
    if height == 0 or width == 0:
        raise _Malformed("a range must be rectangular and not empty")
    types = set(map(type, cells))
    if types <= {float, int, type(None)}:
        a = np.array(cells, dtype=np.float64).reshape(height, width)  # None -> NaN
        blank = np.isnan(a)
        if not blank.any():
            return _Grid(a, None, kind)
        a[blank] = 0.0
        return _Grid(a, blank.astype(np.int8), kind)
    n = height * width
    vals = np.empty(n, dtype=np.float64)
    stat = np.empty(n, dtype=np.int8)
    for i, v in enumerate(cells):
        vals[i], stat[i] = _cell(v)
    return _Grid(vals.reshape(height, width), stat.reshape(height, width), kind)


def _flat_cells(x: Any) -> tuple[list, tuple[int, int], str]:
    """A range value as its cells row by row, its shape, and how it arrived."""
    if isinstance(x, np.ndarray) and x.ndim == 2:
        return x.ravel().tolist(), x.shape, "2d"
    rows, kind = _rows(x)
    width = len(rows[0]) if rows else 0
    if any(len(r) != width for r in rows):
        raise _Malformed("a range must be rectangular")
    return list(chain.from_iterable(rows)), (len(rows), width), kind


class _Malformed(Exception):
    """An argument that is no range at all (ragged, empty): the call shows #VALUE!."""


def _fit(g: _Grid, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast a grid to ``shape`` the way Excel does (#N/A where it has no element)."""
    r, c = g.values.shape
    R, C = shape
    vals, stat = g.values, g.status
    if stat is None:
        stat = np.zeros((r, c), dtype=np.int8)
    if (r, c) == (R, C):
        return vals, stat
    rr, cc = (R if r == 1 else r), (C if c == 1 else c)
    vals = np.broadcast_to(vals, (rr, cc)) if (rr, cc) != (r, c) else vals
    stat = np.broadcast_to(stat, (rr, cc)) if (rr, cc) != (r, c) else stat
    if (rr, cc) == (R, C):
        return vals, stat
    v2 = np.zeros(shape)
    s2 = np.full(shape, _NA, dtype=np.int8)
    v2[:rr, :cc] = vals
    s2[:rr, :cc] = stat
    return v2, s2


def _collapse_columns(g: _Grid) -> _Grid:
    """Sum a grid across its columns (several competitors on one row)."""
    stat = g.status if g.status is not None else np.zeros(g.values.shape, np.int8)
    out = np.where(np.any(stat == _VALUE, axis=1), _VALUE,
                   np.where(np.all(stat == _BLANK, axis=1), _BLANK, _OK)).astype(np.int8)
    return _Grid(g.values.sum(axis=1, keepdims=True), out[:, None], g.kind)


def _scalar_fast(spec: KpiSpec, fn: Callable, args: Sequence[Any]) -> Any:
    """The common case of one call with plain numbers: no arrays at all."""
    for (name, dom, _), x in zip(spec.params, args):
        if x != x or (dom.lo is not None and x < dom.lo) or (dom.hi is not None and x > dom.hi):
            return None
    y = fn(*args)
    return y if math.isfinite(y) else (DIV0 if y != y else NUM)


def _to_cells(result: np.ndarray, status: np.ndarray) -> list:
    """Results and statuses → 2-D list of cell values."""
    bad = ~np.isfinite(result)
    if not status.any() and not bad.any():
        return result.tolist()
    out = result.astype(object)
    out[bad & np.isnan(result)] = DIV0
    out[bad & ~np.isnan(result)] = NUM
    for code, text in ((_BLANK, BLANK), (_VALUE, VALUE), (_NA, NA), (_NUM, NUM)):
        m = status == code
        if m.any():
            out[m] = text
    return out.tolist()


def _elementwise(fn: Callable, args: Sequence[Any], collapse: str | None = None) -> Any:
    """Apply an element-wise KPI to cell values (scalars or ranges) under the cell rules.

    ``args`` are the values of the arguments the caller gave, in order
    (omitted optional arguments are left out and take the KPI's default).
    ``collapse`` names an argument whose columns are summed when the first
    argument is a single column (several competitors on one row).

    >>> from xl_kpis.metrics import roas
    >>> elementwise(roas, [[[100], [200], [None]], [[50], [0], [None]]])
    [[2.0], ['#DIV/0!'], ['']]
    """
    spec: KpiSpec = fn.__kpi__
    if all(type(a) in (float, int) for a in args):
        y = _scalar_fast(spec, fn, args)
        if y is not None:
            return y
    try:
        grids = [_grid(a) for a in args]
    except _Malformed:
        return VALUE
    params = spec.params[: len(args)]
    if collapse is not None:
        k = [p[0] for p in params].index(collapse)
        if grids[k].values.shape[1] > 1 and grids[0].values.shape[1] == 1:
            grids[k] = _collapse_columns(grids[k])
    shape = (max(g.values.shape[0] for g in grids), max(g.values.shape[1] for g in grids))
    fitted = [_fit(g, shape) for g in grids]
    status = np.zeros(shape, dtype=np.int8)
    all_blank = np.ones(shape, dtype=bool)
    for _, st in fitted:
        all_blank &= st == _BLANK
    # the first argument in error wins: assign from the last to the first
    values = []
    for (name, dom, _), (v, st) in reversed(list(zip(params, fitted))):
        err = (st == _VALUE) | (st == _NA)
        bad = dom.invalid(v) & ~err
        if bad.any():
            status = np.where(bad, np.int8(_NUM), status)
        if err.any():
            status = np.where(err, st, status)
        if bad.any() or err.any():
            v = np.where(bad | err, np.nan, v)  # the KPI never sees a value in error
        values.append(v)
    values.reverse()
    status = np.where(all_blank, np.int8(_BLANK), status)
    result = np.asarray(fn(*values), dtype=np.float64)
    if result.shape != shape:
        result = np.broadcast_to(result, shape)
    cells = _to_cells(result, status)
    if all(g.kind == "scalar" for g in grids):
        return cells[0][0]
    if not any(g.kind == "2d" for g in grids) and shape[1] == 1:
        return [row[0] for row in cells]
    return cells


def _flat(x: Any) -> tuple[np.ndarray, np.ndarray]:
    g = _grid(x)
    stat = g.status if g.status is not None else np.zeros(g.values.shape, np.int8)
    return g.values.ravel(), stat.ravel()


_LABELS_SEEN: dict[int, tuple[weakref.ref, tuple[np.ndarray, np.ndarray]]] = {}


def _once(cache: dict[int, tuple[weakref.ref, Any]], x: np.ndarray, make: Callable[[], Any]
          ) -> Any:
    """``make()``, computed once while the read-only (or shared, never written) array
    ``x`` lives: ``cache`` holds it under ``id(x)`` until ``x`` is collected."""
    seen = cache.get(id(x))
    if seen is not None and seen[0]() is x:
        return seen[1]
    out = make()
    key = id(x)
    cache[key] = (weakref.ref(x, lambda _, key=key: cache.pop(key, None)), out)
    return out


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """``arrays``, made read-only (a result several KPIs share)."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _labels(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """A range of identifiers/categories → (str labels, status).

    A read-only array (a column that several KPIs of one book read) is
    converted once while it lives.
    """
    coded = _coded_labels(x)
    if coded is not None:       # labels that carry their codes: made from the distinct ones
        c, stat = coded
        return np.append(label_codes(x)[1], "")[c], stat
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        return _once(_LABELS_SEEN, x, lambda: _read_only(*_labels_of(x)))
    return _labels_of(x)


_CODES_SEEN: dict[int, tuple[weakref.ref, np.ndarray]] = {}


def _label_codes(labels: np.ndarray) -> np.ndarray:
    """Integer codes of a column of labels: "" (blank) is -1, the others 0, 1, 2 … in the
    order they first appear (a hash per label, no sort: :func:`xl_kpis.metrics._kpi.codes`).

    An aggregate KPI only tells ids apart, so it gets codes (the metrics take integer
    arrays as codes of the ids) and counts them in linear time; a read-only column
    (shared by the KPIs of one book) is factorised once while it lives.
    """
    if not labels.flags.writeable:          # np.intp, as np.bincount takes them everywhere
        return _once(_CODES_SEEN, labels, lambda: _read_only(_codes(labels))[0])
    return _codes(labels)


def _coded_labels(x: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes, status) of a range of :class:`xl_kpis.metrics._kpi.Coded` labels (a column
    that carries its codes): the codes of :func:`_label_codes` without hashing a label
    per cell; None for any other range, or when a label reads as an error."""
    known = label_codes(x)
    if known is None or x.ndim != 2 or _has_error_label(known[1]):
        return None
    c = known[0]          # (made once per array: the status too, for the KPIs sharing it)
    return c, _once(_STATUS_SEEN, c, lambda: _read_only(
        np.where(c < 0, np.int8(_BLANK), np.int8(_OK)))[0])


_STATUS_SEEN: dict[int, tuple[weakref.ref, np.ndarray]] = {}


_ERROR_LABELS: dict[int, tuple[weakref.ref, bool]] = {}


def _has_error_label(labels: np.ndarray) -> bool:
    """Whether a label of a (read-only, shared) array of distinct labels reads as an error;
    looked at once while the array lives."""
    return not is_plain(labels) and _once(_ERROR_LABELS, labels,
                                          lambda: not ERRORS.isdisjoint(labels))


def _labels_of(x: Any) -> tuple[np.ndarray, np.ndarray]:
    cells, (height, _), _ = _flat_cells(x)
    if height == 0:
        raise _Malformed("a range must be rectangular")
    if set(map(type, cells)) <= {str, Text, type(None)}:  # the usual column of ids: vectorised
        labels = np.array(["" if v is None else v.strip() for v in cells], dtype=object)
        stat = np.where(labels == "", np.int8(_BLANK), np.int8(_OK))
        if not ERRORS.isdisjoint(labels):
            stat[np.fromiter((v in ERRORS and type(c) is not Text for v, c in zip(labels, cells)),
                             bool, len(labels))] = _VALUE
            labels[stat == _VALUE] = ""
        return labels, stat.astype(np.int8)
    labels = np.empty(len(cells), dtype=object)
    stat = np.zeros(len(cells), dtype=np.int8)
    for i, v in enumerate(cells):
        if v is None or v == "" or (type(v) is float and v != v):
            labels[i], stat[i] = "", _BLANK
        elif isinstance(v, (bool, np.bool_)) or (isinstance(v, str) and v.strip() in ERRORS
                                                 and not isinstance(v, Text)):
            labels[i], stat[i] = "", _VALUE
        elif isinstance(v, (float, np.floating)) and float(v).is_integer():
            labels[i] = str(int(v))
        else:
            labels[i] = str(v).strip()
    return labels, stat


def _number_or_error(x: float) -> Any:
    return x if math.isfinite(x) else (DIV0 if x != x else NUM)


def _domain_error(values: np.ndarray, dom: Domain) -> bool:
    return bool(dom.invalid(values).any())


def _aggregate(fn: Callable, args: Sequence[Any]) -> Any:
    """Apply an aggregate KPI (ranges in, one number out) under the cell rules.

    Blank cells are skipped, as SUM and AVERAGE skip them; a call with a
    range that is blank everywhere returns a blank: that input was not
    measured (no amounts, no buyers), so neither is the result.  Labels
    (ids) and numbers are checked by the argument's domain.

    >>> from xl_kpis.metrics import repeat_purchase_rate
    >>> aggregate(repeat_purchase_rate, [[["ann"], ["ann"], ["bob"]], [[1], [2], [3]]])
    0.5
    """
    spec: KpiSpec = fn.__kpi__
    try:
        cols = []
        not_measured = False
        for (name, dom, _), a in zip(spec.params, args):
            coded = _coded_labels(a) if dom.kind == "label" else None
            if coded is not None:
                vals, st = coded            # codes already
            elif dom.kind == "label":
                vals, st = _labels(a)
            else:
                vals, st = _flat(a)
            if (st == _VALUE).any():
                return VALUE
            not_measured |= bool((st == _BLANK).all())
            cols.append((dom, vals, st))
    except _Malformed:
        return VALUE
    if not_measured:
        return BLANK
    sizes = {v.size for _, v, _ in cols}
    if len(sizes) > 1:
        return VALUE
    # a row counts when every argument has a value in it
    keep = np.ones(sizes.pop(), dtype=bool)
    for _, _, st in cols:
        keep &= st != _BLANK
    call = []
    for dom, vals, _ in cols:
        if dom.kind == "label" and vals.dtype.kind not in "iu":
            vals = _label_codes(vals)       # ids only need telling apart
        vals = vals[keep]
        if dom.kind != "label" and _domain_error(vals, dom):
            return NUM
        call.append(vals)
    return _number_or_error(float(fn(*call)))


def _option(o: Any) -> tuple[float, int]:
    """A single-cell option (a value, or a 1 x 1 range) → (number, status)."""
    return _cell(o[0][0] if isinstance(o, (list, tuple)) and o and
                 isinstance(o[0], (list, tuple)) else o)


def _row_count(x: float) -> bool:
    """Whether ``x`` is a number of rows a table can spill below its header."""
    return 1 <= x < SHEET_ROWS and float(x).is_integer()


def _table_option(param: tuple[str, Domain, Any], o: Any) -> Any:
    """A single-cell option of a table KPI: its number (a blank takes the default), or an
    error text: ``#VALUE!`` for text, ``#NUM!`` outside the domain or, for the number of
    rows ``n``, not a whole number of rows a sheet can hold."""
    name, dom, default = param
    x, s = _option(o)
    if s == _VALUE:
        return VALUE
    if s == _BLANK:
        x = default
    if dom.invalid(np.asarray(x)) or (name == "n" and not _row_count(x)):
        return NUM
    return int(x) if name == "n" else x


def _arguments(spec: KpiSpec, args: Sequence[Any], options: Sequence[Any],
               option: Callable[[tuple[str, Domain, Any], Any], Any]
               ) -> tuple[list[tuple[Domain, np.ndarray, np.ndarray]], list] | str:
    """The ranges and options of a table or model KPI: ``([(domain, values, status)] of
    each range, [value of each option])``, or the error text the call shows.

    A range is read by its domain (:func:`_range_of`: labels, dates or numbers); a range
    that is not rectangular, holds a text/boolean/error cell where a number goes, or
    differs in size from the others gives ``#VALUE!``.  ``option(param, cell)`` reads one
    option (``param`` is its ``(name, domain, default)``): its value, or an error text,
    which the call returns.
    """
    try:
        cols = []
        for (_, dom, _), a in zip(spec.params, args):
            coded = _coded_labels(a) if dom.kind == "label" else None
            if coded is not None:       # the labels are made for the rows kept, if any
                vals, st = _LabelsOf(a), coded[1]
            else:
                vals, st = _range_of(dom, a)
            if (st == _VALUE).any():
                return VALUE
            cols.append((dom, vals, st))
    except _Malformed:
        return VALUE
    if len({v.size for _, v, _ in cols}) > 1:
        return VALUE
    opts = []
    for param, o in zip(spec.params[len(args):], options):
        v = option(param, o)
        if isinstance(v, str) and v in ERRORS:
            return v
        opts.append(v)
    return cols, opts


class _LabelsOf:
    """The labels of a range that carries its codes (:func:`_coded_labels`), as
    :func:`_labels` gives them (``size``, and ``[keep]`` for the rows kept), made only for
    those rows and only when a call gets that far (not when another range is blank
    everywhere: a model's dates left out)."""

    __slots__ = ("codes", "labels")

    def __init__(self, x: Any):
        self.codes, self.labels = label_codes(x)

    @property
    def size(self) -> int:
        return self.codes.size

    def __getitem__(self, keep: np.ndarray) -> np.ndarray:
        return np.append(self.labels, "")[self.codes[keep]]


def _table(fn: Callable, args: Sequence[Any], headers: Sequence[str],
          options: Sequence[Any] = (), pad_to: str | None = None, rows: Any = None) -> Any:
    """Apply a table KPI (ranges in, a table out): a header row, then one row per group.

    Rows whose cells are all blank are skipped; a blank label in a row with
    numbers is shown as ``"(blank)"``; blank numbers count as 0.  ``options``
    are trailing scalar arguments (e.g. how many rows), checked as numbers.
    ``pad_to`` names the option (e.g. ``"n"``) that fixes the number of rows:
    the table is padded with blank rows to it, even when every input is blank,
    so the spilled range keeps its size as data comes and goes.  ``rows`` (a
    cell value, for a KPI without such an option) does the same from the
    caller's argument: at least that many rows below the header (a whole
    number >= 1; blank for no padding).  Either must leave the table within
    a worksheet (:data:`SHEET_ROWS`), else the result is ``#NUM!``.
    """
    spec: KpiSpec = fn.__kpi__
    got = _arguments(spec, args, options, _table_option)
    if isinstance(got, str):
        return got
    cols, opts = got
    if pad_to is not None:  # a fixed number of rows: the spill range never changes size
        rows = dict(zip([p[0] for p in spec.params[len(args):]], opts)).get(
            pad_to, spec.params[[p[0] for p in spec.params].index(pad_to)][2])
    elif rows is not None:
        x, s = _option(rows)
        if s == _VALUE:
            return VALUE
        if s == _BLANK:
            rows = None
        elif not _row_count(x):
            return NUM
        else:
            rows = int(x)
    keep = np.zeros(cols[0][1].size, dtype=bool)
    for _, _, st in cols:
        keep |= st != _BLANK
    if not keep.any():
        if rows is None:
            return BLANK
        return [list(headers)] + [[BLANK] * len(headers) for _ in range(rows)]
    call = []
    for dom, vals, st in cols:
        vals = vals[keep]
        if dom.kind == "label":
            vals = np.where(vals == "", "(blank)", vals)
        elif _domain_error(vals, dom):
            return NUM
        call.append(vals)
    result = fn(*call, *opts)
    out = [list(headers)]
    for row in result.tolist():      # a label reading like an error stays text
        out.append([(Text(v) if v in ERRORS else v) if isinstance(v, str)
                    else _number_or_error(float(v)) for v in row])
    while rows is not None and len(out) < rows + 1:
        out.append([BLANK] * len(headers))
    return out


# --- order lines in, a model out (predictive CLV, cohorts) ---------------------------------

_SERIAL_1970 = int(to_serial(date(1970, 1, 1)))       # the Excel serial number of 1970-01-01
_SERIAL_MIN, _SERIAL_MAX = FIRST_SERIAL, LAST_SERIAL    # 1900-03-01 and 9999-12-31
_ORDINAL_1970 = date(1970, 1, 1).toordinal()
_ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d*)?)?)?\s*$")


def _date_cell(v: Any) -> tuple[int, int]:
    """One cell as a date: (days since 1970-01-01, status).

    An Excel serial number (xlwings Lite and formula engines pass dates as
    serials; its fraction, the time of day, is dropped), a date or datetime
    (classic xlwings converts date cells; the time of day is dropped), ISO
    text (``2024-05-31``, as Excel coerces it) or numeric text.  A serial
    before 1900-03-01 or after 9999-12-31 gives ``#NUM!``; other text,
    booleans, times and error values give ``#VALUE!``.
    """
    t = type(v)
    if t is datetime or t is date:
        return v.toordinal() - _ORDINAL_1970, _OK
    if isinstance(v, str) and _ISO_DATE.match(v):
        try:
            return date.fromisoformat(v.strip()[:10]).toordinal() - _ORDINAL_1970, _OK
        except ValueError:
            return 0, _VALUE
    if isinstance(v, (datetime, date)) and not isinstance(v, bool):
        return v.toordinal() - _ORDINAL_1970, _OK
    x, s = _cell(v)
    if s != _OK:
        return 0, s
    if not (_SERIAL_MIN <= x < _SERIAL_MAX + 1):
        return 0, _NUM
    return int(math.floor(x)) - _SERIAL_1970, _OK


def _dates(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """A range of dates → (``datetime64[D]`` days, status); blanks are NaT."""
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size:
        if x.size > 1 and not any(x.strides):      # one cell broadcast (a column left out)
            one, st = _dates(x.ravel()[:1].copy())
            return np.broadcast_to(one, (x.size,)), np.broadcast_to(st, (x.size,))
        a = x.ravel()
        blank = np.isnan(a)
        bad = ~blank & ~((a >= _SERIAL_MIN) & (a < _SERIAL_MAX + 1))
        days = np.where(blank | bad, 0.0, np.floor(np.where(blank, 0.0, a))) - _SERIAL_1970
        stat = np.where(blank, np.int8(_BLANK), np.where(bad, np.int8(_NUM), np.int8(_OK)))
        out = days.astype(np.int64).astype("datetime64[D]")
        out[blank | bad] = np.datetime64("NaT")
        return out, stat.astype(np.int8)
    cells, (height, width), _ = _flat_cells(x)
    if height == 0 or width == 0:
        raise _Malformed("a range must be rectangular and not empty")
    n = len(cells)
    days = np.zeros(n, dtype=np.int64)
    stat = np.zeros(n, dtype=np.int8)
    types = set(map(type, cells))
    if types <= {datetime, date}:
        days[:] = np.fromiter((v.toordinal() for v in cells), np.int64, n) - _ORDINAL_1970
    elif types == {type(None)}:                 # a column left blank: no date at all
        stat[:] = _BLANK
    else:
        for i, v in enumerate(cells):
            days[i], stat[i] = _date_cell(v)
    out = days.astype("datetime64[D]")
    out[stat != _OK] = np.datetime64("NaT")
    return out, stat


def _range_of(dom: Domain, a: Any) -> tuple[np.ndarray, np.ndarray]:
    if dom.kind == "label":
        return _labels(a)
    if dom.kind == "date":
        return _dates(a)
    return _flat(a)


def _option_of(dom: Domain, default: Any, o: Any) -> Any:
    """A single-cell option of a model function: its value, or an error text.

    A blank (or an omitted option) takes the function's default.  Numbers are
    checked by the domain (``#NUM!``); a date option is a date cell; a unit
    is the text ``weeks`` or ``days`` (any case).
    """
    if o is None:
        return default
    v = o[0][0] if isinstance(o, (list, tuple)) and o and isinstance(o[0], (list, tuple)) else o
    if isinstance(v, np.ndarray):
        v = v.ravel()[0] if v.size else None
    if v is None or (isinstance(v, str) and v == "") or (type(v) is float and v != v):
        return default
    if dom.kind == "date":
        days, s = _date_cell(v)
        return _CODE_TEXT[s] if s != _OK else np.datetime64(days, "D")
    if dom.kind == "label":
        if isinstance(v, str) and v.strip().lower() in ("weeks", "days"):
            return v.strip().lower()
        return VALUE
    x, s = _cell(v)
    if s == _VALUE:
        return VALUE
    if dom.invalid(np.asarray(x)) or not math.isfinite(x) or \
            (dom.name == "months" and not float(x).is_integer()):
        return NUM
    return x


def _layout_rows(rows: Any) -> int | None | str:
    """The ``rows`` layout option of a table: None (no padding), a count, or an error text."""
    if rows is None:
        return None
    x, s = _option(rows)
    if s == _VALUE:
        return VALUE
    if s == _BLANK:
        return None
    if not _row_count(x):
        return NUM
    return int(x)


def _out(v: Any) -> Any:
    """One value of a model's table as a cell value (NaN: a blank cell)."""
    if isinstance(v, str):
        return v
    x = float(v)
    return BLANK if x != x else _number_or_error(x)


def _cohort_header(months: int) -> list:
    return ["Cohort", "Customers"] + [f"Month {k}" for k in range(months)]


def cohort_frame(months: Any) -> list | None:
    """The frame of a cohort triangle of ``months`` cohorts x months 0 .. ``months`` - 1
    (None: no fixed size), for :func:`model`'s ``frame``."""
    if months is None:
        return None
    n = int(months)
    return [_cohort_header(n)] + [[None] * (n + 2) for _ in range(n)]


def _render(result: Any, headers: Sequence[str] | None) -> list:
    from .metrics.predictive import Cohorts

    if isinstance(result, Cohorts):
        width = result.retention.shape[1]
        out = [_cohort_header(width)]
        for month, n, shares in zip(result.cohort.astype(str).tolist(),
                                    result.customers.tolist(), result.retention.tolist()):
            out.append([month, float(n)] + [_out(v) for v in shares])
        return out
    return [list(headers)] + [[_out(v) for v in row] for row in result.tolist()]


def _model(fn: Callable, args: Sequence[Any], options: Sequence[Any] = (),
           headers: Sequence[str] | None = None, rows: Any = None,
           frame: Callable[..., list | None] | None = None) -> Any:
    """Apply a model function to order lines (ranges) and options under the cell rules.

    ``frame`` is given for a table whose size is fixed: called with the options by
    name, it returns the table's frame (its header row and the cells known without
    data, None where a value goes), or None when these options do not fix the size.
    The table then keeps that size whatever the data: without data its values are
    blank, and when the result is an error the first value cell shows it (the other
    values blank), so nothing around a spilled table ever has to move.  Otherwise see
    :func:`_model_result`.
    """
    out = _model_result(fn, args, options, headers, rows)
    if frame is None or isinstance(out, list):
        return out
    named = {}
    for (name, dom, default), o in zip(fn.__kpi__.params[len(args):], options):
        v = _option_of(dom, default, o)
        if isinstance(v, str) and v in ERRORS:
            return out              # an option in error: the size is not known
        named[name] = v
    grid = frame(**named)
    if grid is None:
        return out
    shown = False
    table = [list(grid[0])]
    for row in grid[1:]:
        cells_ = []
        for v in row:
            if v is None and not shown and out != BLANK:
                v, shown = out, True
            cells_.append(BLANK if v is None else v)
        table.append(cells_)
    return table


def _model_result(fn: Callable, args: Sequence[Any], options: Sequence[Any] = (),
                  headers: Sequence[str] | None = None, rows: Any = None) -> Any:
    """A model function's result under the cell rules (:func:`_model` without a frame).

    A line (row) counts when every range has a value in it, as for
    :func:`aggregate`; ranges of different sizes or a text/boolean/error cell
    give ``#VALUE!``; a negative amount or an impossible date serial gives
    ``#NUM!``; a call with a range that is blank everywhere gives a blank (that
    input was not measured, as for :func:`aggregate`); data the model
    cannot fit (:class:`~xl_kpis.metrics.predictive.FitError`: no customer,
    one customer, nobody with a repeat purchase, no convergence) gives
    ``#NUM!``, never numbers that look real.  A number result is one cell; a
    table (``headers``) or a cohort triangle spills with a header row, blank
    cells where a value does not exist (a month after the data), padded with
    blank rows to at least ``rows`` rows below the header.
    """
    from .metrics.predictive import FitError

    got = _arguments(fn.__kpi__, args, options, lambda param, o: _option_of(*param[1:], o))
    if isinstance(got, str):
        return got
    cols, opts = got
    rows = _layout_rows(rows)
    if isinstance(rows, str):
        return rows
    keep = np.ones(cols[0][1].size, dtype=bool)
    for _, _, st in cols:
        keep &= st != _BLANK
    if any(bool((st == _BLANK).all()) for _, _, st in cols):    # an input not measured
        if rows is None or headers is None:
            return BLANK
        return [list(headers)] + [[BLANK] * len(headers) for _ in range(rows)]
    call = []
    for dom, vals, st in cols:
        if ((st == _NUM) & keep).any():
            return NUM
        vals = vals[keep]
        if dom.kind == "number" and _domain_error(vals, dom):
            return NUM
        call.append(vals)
    try:
        result = fn(*call, *opts)
    except FitError:
        return NUM
    if isinstance(result, float):
        return _number_or_error(result)
    out = _render(result, headers)
    width = len(out[0])
    while rows is not None and len(out) < rows + 1:
        out.append([BLANK] * width)
    return out


_STRICT = os.environ.get("XL_KPIS_STRICT") == "1"


@contextlib.contextmanager
def strict():
    """Re-raise instead of showing ``#VALUE!`` for an unexpected error (for tests)."""
    global _STRICT
    old, _STRICT = _STRICT, True
    try:
        yield
    finally:
        _STRICT = old


def _is_lazy(x: Any) -> bool:
    """Whether ``x`` is, or is a list holding, a :class:`~xl_kpis.metrics._kpi.LazyCoded` column."""
    return isinstance(x, LazyCoded) or isinstance(x, (list, tuple)) and any(
        isinstance(v, LazyCoded) for v in x)


def _without_lazy(fn: Callable, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The arguments of an entry point (``ranges``, then options and settings) with every
    :class:`~xl_kpis.metrics._kpi.LazyCoded` column made into its labels, but for the
    ranges of an aggregate, table or model's label arguments whose codes stand for them
    (:func:`_coded_labels`): those only need telling apart."""
    spec = getattr(fn, "__kpi__", None)
    params = spec.params if spec is not None and spec.shape != "elementwise" else ()

    def keeps(i: int, a: LazyCoded) -> bool:
        return i < len(params) and params[i][1].kind == "label" and _coded_labels(a) is not None

    def plain_all(x: Any) -> Any:
        return type(x)(map(plain, x)) if isinstance(x, (list, tuple)) else plain(x)

    ranges, *rest = args
    ranges = [a if isinstance(a, LazyCoded) and keeps(i, a) else plain(a)
              for i, a in enumerate(ranges)]
    return (ranges, *map(plain_all, rest)), {k: plain_all(v) for k, v in kwargs.items()}


def _guard(entry: Callable) -> Callable:
    """The last line of defence: no traceback ever reaches a cell.

    Every input class has an explicit rule above; an exception escaping them
    is a bug.  It is logged with its traceback (logger ``xl_kpis``) and the
    cell shows ``#VALUE!``; under :func:`strict` (the test suite) it is
    re-raised so that the bug fails a test instead.
    """
    @functools.wraps(entry)
    def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
        try:
            if any(map(_is_lazy, chain(args, kwargs.values()))):
                args, kwargs = _without_lazy(fn, args, kwargs)
            return entry(fn, *args, **kwargs)
        except Exception:
            if _STRICT:
                raise
            log.exception("xl-kpis: %s failed", getattr(fn, "__name__", fn))
            return VALUE

    return call


elementwise = _guard(_elementwise)
aggregate = _guard(_aggregate)
table = _guard(_table)
model = _guard(_model)
