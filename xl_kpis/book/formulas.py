"""Formulas as data: build a formula once, render it as Excel text, evaluate it.

Every formula of the template is a small expression tree built from the
nodes below.  The same tree gives

* the formula text written into the workbook (:func:`render`), and
* the value cached beside it (:class:`Evaluator`), computed by calling the
  Excel functions of :mod:`xl_kpis.functions` themselves (the UDFs' code) for the KPIs and a small
  evaluator for the few native Excel functions the template uses
  (:data:`NATIVE_FUNCTIONS`, :data:`NATIVE_OPERATORS`).

No KPI is restated here: a KPI call is evaluated by calling the UDF.

Nodes
-----
:class:`This`
    A cell of the current row in a table's calculated column
    (``Orders[[#This Row],[Order ID]]``, shown in Excel as ``[@[Order ID]]``);
    with ``last`` a range of adjacent cells of that row.
:class:`Column`
    A whole column of a table (``Orders[Buyer]``).
:class:`Name`
    A defined name (``Margin``).
:class:`Ref`
    A planned cell, by key (resolved to ``KPIs!$B$7`` when rendered); an
    offset addresses a cell inside an array result.
:class:`Lit`, :class:`Call`, :class:`Op`
    A constant, a function call (a UDF or a native function), an operator.

Evaluation modes
----------------
A table's calculated column is evaluated for all rows at once
(:meth:`Evaluator.column`): a :class:`This` node evaluates to the whole column,
a UDF is called **once per column** with 2-D column ranges (one call instead
of one per row; the UDFs are element-wise, so the results are the same), and
the native functions and operators work on whole columns as numpy arrays
(:class:`_Vec`), with the same results as the row-by-row functions (the tests
compare the two on every operator and kind of value).  A single cell formula
(:meth:`Evaluator.cell`) evaluates the usual way.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import cells, functions, officejs
from ..metrics._kpi import Coded, LazyCoded, is_plain, plain
from ..xlsx.dates import EPOCH, to_serial
from ..xlsx.errors import is_error
from ..xlsx.refs import a1, quote_sheet

__all__ = ["Node", "This", "Column", "Name", "Ref", "Lit", "Call", "Op", "F", "lit",
           "NATIVE_FUNCTIONS", "NATIVE_OPERATORS", "RenderContext", "render", "walk",
           "functions_used", "Evaluator", "column_array"]


# --- nodes ---------------------------------------------------------------------

class Node:
    """Base class of formula nodes."""

    __slots__ = ()


@dataclass(frozen=True)
class This(Node):
    """A cell (``last`` None) or a range of cells of the current table row."""

    header: str
    last: str | None = None


@dataclass(frozen=True)
class Column(Node):
    """The data cells of a table column."""

    table: str
    header: str


@dataclass(frozen=True)
class Name(Node):
    """A workbook-level defined name (a setting cell)."""

    name: str


@dataclass(frozen=True)
class Ref(Node):
    """A planned cell, by key; ``row``/``col`` offset into an array result."""

    key: str
    row: int = 0
    col: int = 0


@dataclass(frozen=True)
class Lit(Node):
    """A constant: a number, a string or a boolean."""

    value: float | int | str | bool


@dataclass(frozen=True)
class Call(Node):
    """A call of a UDF (from :mod:`xl_kpis.functions`) or of a native function."""

    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Op(Node):
    """A binary operator: one of :data:`NATIVE_OPERATORS`."""

    op: str
    left: Node
    right: Node


def lit(x: Any) -> Node:
    """``x`` as a node (a node is returned as it is, anything else as a :class:`Lit`)."""
    return x if isinstance(x, Node) else Lit(x)


class _Functions:
    """``F.ROAS(a, b)`` builds ``Call("ROAS", (a, b))``; plain values become literals."""

    def __getattr__(self, fn: str) -> Callable[..., Call]:
        if fn not in functions.__all__ and fn not in NATIVE_FUNCTIONS:
            raise AttributeError(f"{fn} is neither an xl-kpis UDF nor a native function"
                                 f" of the template ({', '.join(NATIVE_FUNCTIONS)})")
        return lambda *args: Call(fn, tuple(lit(a) for a in args))


F = _Functions()


def walk(node: Node):
    """Every node of a formula, depth first (the node itself first)."""
    yield node
    if isinstance(node, Call):
        for a in node.args:
            yield from walk(a)
    elif isinstance(node, Op):
        yield from walk(node.left)
        yield from walk(node.right)


def functions_used(node: Node) -> set[str]:
    """Names of the functions called anywhere in a formula."""
    return {n.fn for n in walk(node) if isinstance(n, Call)}


# --- rendering ---------------------------------------------------------------------

@dataclass(frozen=True)
class RenderContext:
    """Where a formula is written.

    Parameters
    ----------
    sheet : str
        The sheet of the formula cell (references to it are relative).
    table : str or None
        The table whose calculated column holds the formula (for :class:`This`).
    address : callable
        ``key -> (sheet, row, col)`` (0-based) of a planned cell.
    display : bool
        Render ``[@[Header]]`` (what Excel shows) instead of the
        ``Table[[#This Row],[Header]]`` form stored in the file.
    officejs : bool
        Spell the UDF calls as Excel stores calls of Office.js custom
        functions (xlwings Lite): ``_xldudf_ROAS(...)`` (see
        :mod:`xl_kpis.officejs`).  Otherwise plain, as typed and as stored for
        classic (VBA) xlwings functions: ``ROAS(...)``.
    """

    sheet: str
    table: str | None = None
    address: Callable[[str], tuple[str, int, int]] | None = None
    display: bool = False
    officejs: bool = False


def _sheet_prefix(sheet: str) -> str:
    return quote_sheet(sheet) + "!"


def _render_lit(v: Any) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return '"' + v.replace('"', '""') + '"'
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def render(node: Node, ctx: RenderContext, top: bool = True) -> str:
    """The Excel formula text of ``node`` (with a leading ``=`` when ``top``).

    >>> roas = F.ROAS(This("Revenue"), This("Cost"))
    >>> render(roas, RenderContext("Campaigns", table="Campaigns", display=True))
    '=ROAS([@Revenue],[@Cost])'
    >>> render(roas, RenderContext("Campaigns", table="Campaigns"))
    '=ROAS(Campaigns[[#This Row],[Revenue]],Campaigns[[#This Row],[Cost]])'
    >>> render(F.SUM(Column("Orders", "Order amount")), RenderContext("KPIs"))
    '=SUM(Orders[Order amount])'
    >>> render(F.IF(roas, 1), RenderContext("Campaigns", table="Campaigns", display=True,
    ...                                     officejs=True))
    '=IF(_xldudf_ROAS([@Revenue],[@Cost]),1)'
    """
    text = _render(node, ctx)
    return "=" + text if top else text


def _render(node: Node, ctx: RenderContext) -> str:
    if isinstance(node, This):
        cols = f"[{node.header}]" if node.last is None else f"[{node.header}]:[{node.last}]"
        if ctx.display:
            return f"[@{cols}]" if node.last is not None or not node.header.isalnum() \
                else f"[@{node.header}]"
        if ctx.table is None:
            raise ValueError(f"a this-row reference to {node.header!r} outside a table")
        return f"{ctx.table}[[#This Row],{cols}]"
    if isinstance(node, Column):
        return f"{node.table}[{node.header}]"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Ref):
        if ctx.address is None:
            raise ValueError(f"no address for the cell {node.key!r}")
        sheet, row, col = ctx.address(node.key)
        if sheet == ctx.sheet:
            return a1(row + node.row, col + node.col, absolute=False)
        return _sheet_prefix(sheet) + a1(row + node.row, col + node.col, absolute=True)
    if isinstance(node, Lit):
        return _render_lit(node.value)
    if isinstance(node, Call):
        fn = officejs.stored_name(node.fn) if ctx.officejs and node.fn in functions.__all__ \
            else node.fn
        return f"{fn}({','.join(_render(a, ctx) for a in node.args)})"
    if isinstance(node, Op):
        return f"{_render_operand(node.left, ctx)}{node.op}{_render_operand(node.right, ctx)}"
    raise TypeError(f"not a formula node: {node!r}")


def _render_operand(node: Node, ctx: RenderContext) -> str:
    text = _render(node, ctx)
    return f"({text})" if isinstance(node, Op) else text


# --- native functions: Excel semantics for the values the template meets ---------------

def _number(v: Any) -> float | str:
    """A value as a number in arithmetic, or an error text."""
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, (date, datetime, time)):
        return to_serial(v)
    if isinstance(v, str):
        if is_error(v):
            return v
        return cells.to_number(v) if v != "" else cells.VALUE   # "1,200" -> 1200.0
    return cells.VALUE


def _logical(v: Any) -> bool | str:
    """A value as a condition (IF), or an error text."""
    if isinstance(v, bool):
        return v
    if v is None:
        return False
    if isinstance(v, str):
        if is_error(v):
            return v
        if v.upper() in ("TRUE", "FALSE"):
            return v.upper() == "TRUE"
        return cells.VALUE
    x = _number(v)
    return x if isinstance(x, str) else x != 0.0


class _Rows(list):
    """The per-row values of a sub-expression of a table column formula."""


def _is_range(v: Any) -> bool:
    """A range or array value: a 2-D list or array (per-row values are not one)."""
    return (isinstance(v, list) and not isinstance(v, _Rows)) or isinstance(v, np.ndarray)


def _range_list(v: np.ndarray) -> list[list]:
    """A 2-D array range as a 2-D list of cell values (NaN in a float array is a blank)."""
    if v.dtype == object:
        return v.tolist()
    return np.where(np.isnan(v), None, v.astype(object)).tolist()


def _cells_of(v: Any):
    """The values of a range (2-D list or array) or of a single value."""
    if isinstance(v, np.ndarray):
        v = _range_list(v)
    if _is_range(v):
        for row in v:
            yield from row
    else:
        yield v


def _first_error(values) -> str | None:
    for v in values:
        if is_error(v):
            return v
    return None


def _sum(*args: Any) -> float | str:
    """SUM: numbers in references (text, logicals, blanks skipped), values coerced."""
    total = 0.0
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype != object:   # a column of numbers
            a = a[~np.isnan(a)]
            if a.size:            # summed left to right, as the loop below does
                total = float(np.cumsum(np.concatenate(([total], a.ravel())))[-1])
        elif _is_range(a):        # a reference: numbers count, text/logicals/blanks don't
            for v in _cells_of(a):
                if is_error(v):
                    return v
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    total += v
                elif isinstance(v, (date, datetime)):
                    total += to_serial(v)
        else:                      # a value: coerced
            x = _number(a)
            if isinstance(x, str):
                return x
            total += x
    return total


def _count(*args: Any) -> float:
    """COUNT over references: the numbers (and dates) in them."""
    return float(sum(int(np.count_nonzero(~np.isnan(a))) if isinstance(a, np.ndarray)
                     and a.dtype != object else sum(_isnumber(v) for v in _cells_of(a))
                     for a in args))


def _logicals(args: Sequence[Any]) -> list[bool] | str:
    """The logical values of OR/AND's arguments (blanks and text in references skipped),
    or the first error; #VALUE! when there is none."""
    out = []
    for a in args:
        for v in _cells_of(a):
            if is_error(v):
                return v
            if v is None or (_is_range(a) and isinstance(v, str)):
                continue           # blanks, and text in references, are ignored
            x = _logical(v)
            if isinstance(x, str):
                return x
            out.append(x)
    return out or cells.VALUE


def _or(*args: Any) -> bool | str:
    """OR: TRUE if any logical value is; blanks and text in references are skipped."""
    values = _logicals(args)
    return values if isinstance(values, str) else any(values)


def _and(*args: Any) -> bool | str:
    """AND: TRUE if every logical value is; blanks and text in references are skipped."""
    values = _logicals(args)
    return values if isinstance(values, str) else all(values)


def _if(cond: Any, then: Any = True, otherwise: Any = False) -> Any:
    """IF: one branch (a blank reference stays blank here and shows as 0 at the top)."""
    c = _logical(cond)
    if isinstance(c, str):
        return c
    return then if c else otherwise


def _isnumber(v: Any) -> bool:
    """ISNUMBER: numbers and dates; not text, logicals, blanks or errors."""
    return isinstance(v, (int, float, date, datetime)) and not isinstance(v, bool)


#: Native Excel functions the template may use, with whether they take
#: references (a range is passed as a 2-D list) or values.
_NATIVES: dict[str, tuple[Callable[..., Any], bool]] = {
    "SUM": (_sum, True),
    "COUNT": (_count, True),
    "OR": (_or, True),
    "AND": (_and, True),
    "IF": (_if, False),
    "ISNUMBER": (_isnumber, False),
}

#: The native Excel functions used anywhere in the template (a headless
#: refresher must evaluate exactly these, besides the UDFs).
NATIVE_FUNCTIONS: tuple[str, ...] = tuple(_NATIVES)


def _excel_order(v: Any) -> tuple[int, Any]:
    """Excel's sort order for comparisons: numbers < text < logicals (blank as 0 or "")."""
    if isinstance(v, bool):
        return 2, v
    if isinstance(v, str):
        return 1, v.lower()
    return 0, _number(v)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def cmp(a: Any, b: Any) -> Any:
        err = _first_error((a, b))
        if err:
            return err
        if a is None:
            a = "" if isinstance(b, str) else (False if isinstance(b, bool) else 0.0)
        if b is None:
            b = "" if isinstance(a, str) else (False if isinstance(a, bool) else 0.0)
        return op(_excel_order(a), _excel_order(b))

    return cmp


def _arith(op: Callable[[float, float], float]) -> Callable[[Any, Any], Any]:
    def calc(a: Any, b: Any) -> Any:
        x, y = _number(a), _number(b)
        if isinstance(x, str):
            return x
        if isinstance(y, str):
            return y
        if op is operator.truediv and y == 0.0:
            return cells.DIV0
        z = op(x, y)
        return z if math.isfinite(z) else cells.NUM

    return calc


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _arith(operator.add), "-": _arith(operator.sub),
    "*": _arith(operator.mul), "/": _arith(operator.truediv),
    "=": _compare(operator.eq), "<>": _compare(operator.ne),
    "<": _compare(operator.lt), ">": _compare(operator.gt),
    "<=": _compare(operator.le), ">=": _compare(operator.ge),
}

#: The operators the evaluator implements.
NATIVE_OPERATORS: tuple[str, ...] = tuple(_OPERATORS)


# --- vectorised per-row evaluation ---------------------------------------------------------

_NOT_CONSTANT = object()

# what a per-row value is (the classes of Excel's comparison order, plus blanks and errors)
_K_BLANK, _K_NUMBER, _K_TEXT, _K_BOOL, _K_ERROR, _K_DATE = range(6)
_KIND_OF_TYPE = {type(None): _K_BLANK, float: _K_NUMBER, int: _K_NUMBER, str: _K_TEXT,
                 cells.Text: _K_TEXT, bool: _K_BOOL, date: _K_DATE, datetime: _K_DATE,
                 time: _K_DATE}


_EMPTY_OR_ERROR = cells.ERRORS | {""}


class _Vec:
    """The per-row values of a table column sub-expression, as arrays.

    ``kind`` says what each value is; ``num`` holds numbers, logicals (0/1)
    and dates (their serial); ``obj`` (None when no row holds text, an error or
    a date) holds those values themselves.  ``cat``, when known, is ``(codes,
    categories)``: each text row's value is ``categories[codes[i]]`` (code -2 for the empty
    text "", whatever the categories hold), every other row has code -1 (the
    categories may hold a text no row has, but none that rows code -2 for): a
    comparison with a text is then decided once per category, and a UDF gets the
    codes with the column (:class:`xl_kpis.metrics._kpi.Coded`) instead of hashing
    every id again.  Native functions and operators work on whole columns through
    these arrays; their results are the same as the row-by-row functions above give
    (a property the tests check).  The arrays may be read-only (a constant is one
    value broadcast to every row): they are never written in place.

    ``obj`` may be given as a function that makes it: it is made when first read
    (:func:`_v_if` of columns whose codes are known never needs the values of every
    row: the comparisons and the UDFs take the codes).  :attr:`has_obj` tells
    whether there is one without making it.
    """

    __slots__ = ("kind", "num", "_obj", "cat", "_lower", "_column", "constant")

    def __init__(self, kind: np.ndarray, num: np.ndarray,
                 obj: np.ndarray | Callable[[], np.ndarray] | None = None,
                 cat: tuple[np.ndarray, np.ndarray] | None = None):
        self.kind, self.num, self._obj, self.cat = kind, num, obj, cat
        self._lower: np.ndarray | None = None
        self._column: np.ndarray | None = None
        self.constant: Any = _NOT_CONSTANT     # the value on every row, when one is

    @property
    def obj(self) -> np.ndarray | None:
        if callable(self._obj):
            self._obj = self._obj()
        return self._obj

    @property
    def has_obj(self) -> bool:
        """Whether some row may hold text, an error or a date (:attr:`obj` is not None)."""
        return self._obj is not None

    def lower(self) -> np.ndarray:
        """The text of each row in lower case ("" where a row holds no text)."""
        if self._lower is None:
            if self.cat is not None:
                codes, cats = self.cat
                low = np.empty(len(cats) + 2, dtype=object)
                low[:-2] = [s.lower() for s in cats.tolist()]
                low[-2:] = ""                                  # codes -2 ("") and -1
                self._lower = low[codes]
                return self._lower
            low = np.full(len(self), "", dtype=object)
            at = np.flatnonzero(self.kind == _K_TEXT)
            if at.size:
                low[at] = [s.lower() for s in self.obj[at]]
            self._lower = low
        return self._lower

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def of(cls, values: Sequence[Any]) -> _Vec | None:
        """The values of a column, or None when one is not a plain cell value.

        A numpy array is an input column as a columnar reader gives it
        (:func:`_Vec._of_array`)."""
        if isinstance(values, np.ndarray):
            return cls._of_array(values)
        if isinstance(values, LazyCoded) and values.ndim == 1:
            return cls._of_coded(lambda: values.values.view(np.ndarray), *values.parts)
        n = len(values)
        types = set(map(type, values))
        if types <= {float, int, type(None)}:
            num = np.array(values, dtype=np.float64)          # None -> NaN
            blank = np.isnan(num)
            num[blank] = 0.0
            return cls(np.where(blank, _K_BLANK, _K_NUMBER).astype(np.int8), num)
        if not types <= _KIND_OF_TYPE.keys():
            return None
        obj = np.empty(n, dtype=object)
        obj[:] = values
        if types <= {str, cells.Text, type(None)}:
            kind = np.full(n, _K_TEXT, dtype=np.int8)
            kind[np.equal(obj, None)] = _K_BLANK
            if not cells.ERRORS.isdisjoint(values):
                kind[np.fromiter(map(is_error, values), bool, n)] = _K_ERROR
            return cls(kind, np.zeros(n), obj)
        kind = np.fromiter((_KIND_OF_TYPE[type(v)] for v in values), dtype=np.int8, count=n)
        if not cells.ERRORS.isdisjoint(values):
            kind[np.fromiter(map(is_error, values), bool, n)] = _K_ERROR
        num = np.zeros(n)
        for k in (_K_NUMBER, _K_BOOL, _K_DATE):
            at = np.flatnonzero(kind == k)
            if at.size:
                conv = to_serial if k == _K_DATE else float
                num[at] = [conv(v) for v in obj[at]]
        return cls(kind, num, obj)

    @classmethod
    def _of_array(cls, a: np.ndarray) -> _Vec | None:
        """An input column from a columnar reader, converted without a Python value per
        row: float (NaN blank), datetime64 (NaT blank), or an object array of text and
        None ("" is blank, as in a stored cell), with its codes when it is
        :class:`~xl_kpis.metrics._kpi.Coded`.  Anything else goes the way of a list."""
        parts = a.parts if isinstance(a, Coded) else None
        if a.ndim == 1 and a.size > 1 and a.strides[0] == 0:    # one value broadcast
            one = cls._of_array(a[:1].copy())
            if one is not None:
                out = cls(np.broadcast_to(one.kind, a.shape), np.broadcast_to(one.num, a.shape),
                          None if one.obj is None else np.broadcast_to(one.obj, a.shape))
                return out
        a = a.ravel()
        n = a.size
        if a.dtype.kind in "fiu":
            num = a.astype(np.float64)                  # a copy
            blank = np.isnan(num)
            num[blank] = 0.0
            return cls(np.where(blank, _K_BLANK, _K_NUMBER).astype(np.int8), num)
        if a.dtype.kind == "M":
            us = a.astype("datetime64[us]")
            nat = np.isnat(us)
            delta = (us - np.datetime64(EPOCH, "us")).astype(np.int64)
            num = np.where(nat, 0.0, delta / 1e6 / 86400)   # as to_serial computes it
            return cls(np.where(nat, _K_BLANK, _K_DATE).astype(np.int8), num,
                       us.astype(object))                      # datetime (None for NaT)
        if a.dtype.kind == "O":
            if parts is not None:
                return cls._of_coded(a.view(np.ndarray), *parts)
            if set(map(type, a)) <= {str, cells.Text, type(None)}:
                kind = np.full(n, _K_TEXT, dtype=np.int8)
                kind[np.equal(a, None) | (a == "")] = _K_BLANK
                if not cells.ERRORS.isdisjoint(a):
                    kind[np.fromiter(map(is_error, a), bool, n)] = _K_ERROR
                return cls(kind, np.zeros(n), a)
        return cls.of(a.tolist())

    @classmethod
    def _of_coded(cls, a: np.ndarray | Callable[[], np.ndarray], codes: np.ndarray,
                  cats: np.ndarray) -> _Vec | None:
        """A text column with its codes: the kind of each category, then of each row.
        ``a`` holds the values, or is a function that makes them (when first read)."""
        kinds = np.full(len(cats) + 1, _K_TEXT, dtype=np.int8)
        kinds[-1] = _K_BLANK                          # code -1
        if not is_plain(cats) and not _EMPTY_OR_ERROR.isdisjoint(cats):   # (a pass over them)
            texts = cats.tolist()
            if not set(map(type, texts)) <= {str, cells.Text}:
                return cls.of((a() if callable(a) else a).tolist())
            kinds[np.flatnonzero(cats == "")] = _K_BLANK
            kinds[:-1][np.fromiter(map(is_error, texts), bool, len(texts))] = _K_ERROR
        codes = np.maximum(codes, -1) if codes.size and codes.min() < -1 else codes
        kind = kinds[codes]
        if (kinds[:-1] != _K_TEXT).any():
            codes = np.where(kind == _K_TEXT, codes, -1)
        return cls(kind, np.zeros(codes.size), a, (codes, cats))

    @classmethod
    def full(cls, n: int, value: Any) -> _Vec | None:
        """``value`` on every row (read-only arrays: one value broadcast)."""
        one = cls.of([value])
        if one is None:
            return None
        obj = None if one.obj is None else np.broadcast_to(one.obj, (n,))
        cat = None
        if one.kind[0] == _K_TEXT:
            cat = (np.broadcast_to(np.intp(-2), (n,)), np.empty(0, dtype=object)) \
                if value == "" else (np.broadcast_to(np.intp(0), (n,)), one.obj)
        out = cls(np.broadcast_to(one.kind, (n,)), np.broadcast_to(one.num, (n,)), obj, cat)
        out._lower = np.broadcast_to(one.lower(), (n,))
        out.constant = value
        return out

    @classmethod
    def errors(cls, err: np.ndarray | None, base: _Vec) -> _Vec:
        """``base`` with the rows where ``err`` (an object array, None = no error; or None
        for no error at all) holds one."""
        if err is None:
            return base
        at = np.not_equal(err, None)
        if not at.any():
            return base
        obj = base.obj.copy() if base.has_obj else np.empty(len(base), dtype=object)
        obj[at] = err[at]
        cat = None if base.cat is None else (np.where(at, -1, base.cat[0]), base.cat[1])
        return cls(np.where(at, _K_ERROR, base.kind).astype(np.int8), base.num, obj, cat)

    def error(self) -> np.ndarray | None:
        """The error of each row (an object array, None where the row holds none), or None
        when no row holds one."""
        if not self.has_obj:
            return None
        at = self.kind == _K_ERROR
        if not at.any():
            return None
        out = np.full(len(self), None, dtype=object)
        out[at] = self.obj[at]
        return out

    def array(self) -> np.ndarray:
        """The values as an object array of Python cell values (a column of the book)."""
        kind = self.kind
        if not self.has_obj and not (kind == _K_BOOL).any():
            out = self.num.astype(object)
        else:
            out = np.full(len(self), None, dtype=object) if not self.has_obj \
                else self.obj.copy()
            at = kind == _K_NUMBER
            if at.any():
                out[at] = self.num[at]
            at = kind == _K_BOOL
            if at.any():
                out[at] = self.num[at] != 0
        out[kind == _K_BLANK] = None
        return out

    def values(self) -> list:
        """The values as Python cell values (a column of the book)."""
        return self.array().tolist()

    def shown(self) -> _Vec:
        """The values a calculated column shows: a blank shows as 0."""
        blank = self.kind == _K_BLANK
        if not blank.any():
            return self
        return _Vec(np.where(blank, _K_NUMBER, self.kind).astype(np.int8), self.num,
                    self._obj, self.cat)

    def column(self) -> np.ndarray | LazyCoded:
        """The values as an n x 1 range for a UDF (numbers as float64, NaN for blanks;
        text with its codes as :class:`~xl_kpis.metrics._kpi.LazyCoded`, whose values
        are made only if the function reads them)."""
        if self._column is None:
            kind = self.kind
            top = int(kind.max()) if kind.size else _K_BLANK
            if top <= _K_NUMBER:                # numbers and blanks (the usual column)
                out = np.where(kind == _K_NUMBER, self.num, np.nan)[:, None] \
                    if kind.size and int(kind.min()) == _K_BLANK else self.num[:, None].view()
            else:
                text = kind == _K_TEXT
                if ((kind == _K_NUMBER) | (kind == _K_BLANK) | text).all() and (
                        (self.cat[0][text] == -2).all() if self.cat is not None
                        else (self.obj[text] == "").all()):
                    # numbers and blanks; "" is a blank to every function, as a blank cell
                    out = np.where(kind == _K_NUMBER, self.num, np.nan)[:, None]
                elif self.cat is not None and ((kind == _K_TEXT) | (kind == _K_BLANK)).all():
                    self._column = LazyCoded(self.cat[0], self.cat[1], (len(kind), 1))
                    return self._column
                else:
                    out = self.array()[:, None]
            out.flags.writeable = False   # shared by every call that reads the column
            self._column = out
        return self._column


def _vec_arg(v: Any, n: int) -> _Vec | None:
    """A per-row argument, or a single value repeated, as a :class:`_Vec` (None if neither)."""
    if isinstance(v, _Vec):
        return v
    if isinstance(v, _Rows):
        return _Vec.of(v)
    if _is_range(v):
        return None
    return _Vec.full(n, v)


def _either(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The first error of each row of two error arrays (None: no error anywhere)."""
    if a is None:
        return b
    if b is None:
        return a
    return np.where(np.equal(a, None), b, a)


def _add_error(err: np.ndarray | None, where: np.ndarray, code: str) -> np.ndarray | None:
    """``err`` with ``code`` on the rows of ``where`` that hold no error yet."""
    if not where.any():
        return err
    if err is None:
        out = np.full(len(where), None, dtype=object)
        out[where] = code
        return out
    return np.where(np.equal(err, None) & where, code, err)


def _v_number(v: _Vec) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row as a number in arithmetic (:func:`_number`), and its error (or None)."""
    text = np.flatnonzero(v.kind == _K_TEXT)
    if not text.size:
        return v.num, v.error()
    num = v.num.copy()
    return num, _read_texts(v, text, _number, num)


def _read_texts(v: _Vec, text: np.ndarray, read: Callable[[Any], Any], out: np.ndarray
                ) -> np.ndarray | None:
    """The rows ``text`` of ``v`` (its text rows) read by ``read`` (:func:`_number`,
    :func:`_logical`) into ``out``, or, where ``read`` gives an error's text, as that error;
    returns the error of each row (``v``'s own and those), or None when no row has one."""
    err = v.error()
    if text.size and err is None:
        err = np.full(len(v), None, dtype=object)
    for i in text:
        x = read(v.obj[i])
        if isinstance(x, str):
            err[i] = x
        else:
            out[i] = x
    return err


def _v_arith(op: Callable[[Any, Any], Any], a: _Vec, b: _Vec) -> _Vec:
    x, ex = _v_number(a)
    y, ey = _v_number(b)
    with np.errstate(all="ignore"):
        z = op(x, y)
    err = _either(ex, ey)
    if op is operator.truediv:
        err = _add_error(err, np.asarray(y == 0.0), cells.DIV0)
    finite = np.isfinite(z)
    err = _add_error(err, ~finite, cells.NUM)
    z = np.where(finite, z, 0.0)
    return _Vec.errors(err, _Vec(np.full(len(z), _K_NUMBER, dtype=np.int8), z))


def _v_order(v: _Vec, other: _Vec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class, number, lower-case text) of each row in Excel's comparison order; a blank
    takes the class of what it is compared with ("" for text, FALSE, else 0)."""
    cls = np.select([v.kind == _K_TEXT, v.kind == _K_BOOL], [1, 2], 0)
    blank = v.kind == _K_BLANK
    cls = np.where(blank, np.select([other.kind == _K_TEXT, other.kind == _K_BOOL], [1, 2], 0)
                   * (other.kind != _K_BLANK), cls)
    return cls, np.where(blank, 0.0, v.num), v.lower()


_V_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_V_CMP = {"=": operator.eq, "<>": operator.ne, "<": operator.lt, ">": operator.gt,
          "<=": operator.le, ">=": operator.ge}


def _v_equals_text(op: Callable[[Any, Any], Any], a: _Vec, text: str) -> _Vec:
    """``a = "text"`` (``op`` eq) or ``a <> "text"`` (ne), as :func:`_v_compare` gives them,
    without a lower-case copy of every row: a text row is compared once per distinct text
    (case-insensitively; once per category when the codes are known), a blank row is ""
    (equal to "" only), any other kind is unequal; an error stays an error."""
    if a.cat is not None:
        codes, cats = a.cat
        if text == "":
            equal = codes == -2                       # no category a row codes is ""
        else:
            low = text.lower()
            same = [t.lower() == low for t in cats.tolist()]
            equal = np.array(same + [False, False], dtype=bool)[codes]   # codes -2, -1
    else:
        equal = np.zeros(len(a), dtype=bool)
        at = np.flatnonzero(a.kind == _K_TEXT)
        if at.size:
            texts = a.obj[at].tolist()
            if text == "":
                equal[at] = np.fromiter(map(operator.not_, texts), dtype=bool,
                                        count=len(texts))
            else:
                low = text.lower()
                same = {t: t.lower() == low for t in dict.fromkeys(texts)}
                equal[at] = np.fromiter(map(same.__getitem__, texts), dtype=bool,
                                        count=len(texts))
    if text == "":
        equal |= a.kind == _K_BLANK
    result = equal if op is operator.eq else ~equal
    return _Vec.errors(a.error(), _Vec(np.full(len(a), _K_BOOL, dtype=np.int8),
                                       result.astype(np.float64)))


def _v_compare(op: Callable[[Any, Any], Any], a: _Vec, b: _Vec) -> _Vec:
    for x, y in ((a, b), (b, a)):
        if (op is operator.eq or op is operator.ne) and type(y.constant) is str and \
                y.constant not in cells.ERRORS:
            return _v_equals_text(op, x, y.constant)
    ca, na, ta = _v_order(a, b)
    cb, nb, tb = _v_order(b, a)
    same = ca == cb
    within = np.where(ca == 1, op(ta, tb).astype(bool), op(na, nb))
    result = np.where(same, within, op(ca, cb))
    err = _either(a.error(), b.error())
    return _Vec.errors(err, _Vec(np.full(len(a), _K_BOOL, dtype=np.int8),
                                 result.astype(np.float64)))


def _v_logical(v: _Vec) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row as a condition (:func:`_logical`) and its error (or None)."""
    truth = v.num != 0.0
    err = _read_texts(v, np.flatnonzero(v.kind == _K_TEXT), _logical, truth)
    return truth & (v.kind != _K_BLANK), err


def _cat_of(v: _Vec) -> tuple[np.ndarray, np.ndarray] | None:
    """``v.cat``; codes -1 when no row holds text; None when unknown."""
    if v.cat is not None:
        return v.cat
    if not (v.kind == _K_TEXT).any():
        return np.broadcast_to(np.intp(-1), (len(v),)), np.empty(0, dtype=object)
    return None


def _if_cat(truth: np.ndarray, a: tuple[np.ndarray, np.ndarray],
            b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The codes of IF's result: ``a``'s where ``truth``, ``b``'s elsewhere.  The categories
    of the side with more are kept, those of the other (a constant, a few texts) looked up
    in them and added when new, so that a text keeps one code (no factorisation again)."""
    swap = len(b[1]) > len(a[1])
    (big_codes, big), (small_codes, small) = (b, a) if swap else (a, b)
    extra: list = []
    to = np.empty(len(small) + 2, dtype=np.intp)
    to[-2:] = (-2, -1)                                    # codes -2 and -1 stay
    index = {v: i for i, v in enumerate(big.tolist())} if len(small) > 8 else None
    for j, v in enumerate(small.tolist()):
        hit = index.get(v) if index is not None else \
            next(iter(np.flatnonzero(big == v).tolist()), None)
        if hit is not None:
            to[j] = hit
        else:
            to[j] = len(big) + len(extra)
            extra.append(v)
    small_codes = to[small_codes]
    cats = big
    if extra:
        cats = np.empty(len(big) + len(extra), dtype=object)
        cats[:len(big)] = big
        cats[len(big):] = extra
    codes = np.where(truth, small_codes, big_codes) if swap else \
        np.where(truth, big_codes, small_codes)
    return codes, cats


def _v_if(cond: _Vec, then: _Vec, otherwise: _Vec) -> _Vec:
    truth, err = _v_logical(cond)
    obj = cat = None
    if then.has_obj or otherwise.has_obj:
        n = len(cond)

        def obj() -> np.ndarray:
            return np.where(truth, then.obj if then.has_obj else np.empty(n, object),
                            otherwise.obj if otherwise.has_obj else np.empty(n, object))

        a, b = _cat_of(then), _cat_of(otherwise)
        if a is not None and b is not None:
            cat = _if_cat(truth, a, b)
    out = _Vec(np.where(truth, then.kind, otherwise.kind).astype(np.int8),
               np.where(truth, then.num, otherwise.num), obj, cat)
    return _Vec.errors(err, out)


def _v_or(args: list[_Vec], refs: list[bool], every: bool = False) -> _Vec:
    """OR of per-row values (AND with ``every``)."""
    n = len(args[0])
    err = None
    seen = np.zeros(n, dtype=bool)
    result = np.full(n, every)
    for v, ref in zip(args, refs):
        skip = (v.kind == _K_BLANK) | ((v.kind == _K_TEXT) if ref else False)
        truth, e = _v_logical(v)
        if e is not None:
            e = np.where(skip, None, e)
            err = _either(err, e)
            use = ~skip & np.equal(e, None)
        else:
            use = ~skip
        seen |= use
        if every:
            result &= ~use | truth
        else:
            result |= use & truth
    err = _add_error(err, ~seen, cells.VALUE)
    return _Vec.errors(err, _Vec(np.full(n, _K_BOOL, dtype=np.int8), result.astype(float)))


def _v_isnumber(v: _Vec) -> _Vec:
    yes = v.kind == _K_NUMBER
    dates = np.flatnonzero(v.kind == _K_DATE)
    if dates.size:                                  # a time of day is not a number here
        yes[dates] = [not isinstance(x, time) for x in v.obj[dates]]
    return _Vec(np.full(len(v), _K_BOOL, dtype=np.int8), yes.astype(float))


# --- evaluation ----------------------------------------------------------------------

class Evaluator:
    """Evaluate formulas against table columns, names and planned cells.

    Parameters
    ----------
    column : callable
        ``(table, header) -> list`` of the column's cell values (inputs as
        typed; computed columns as evaluated).
    name : callable
        ``name -> value`` of a defined name.
    cell : callable
        ``(key, row, col) -> value`` of a planned cell (or of an element of an
        array result).
    headers : mapping, optional
        ``table -> headers`` in sheet order, for this-row ranges
        (``[@[First]:[Last]]``).

    Notes
    -----
    Values are Python cell values: ``None`` for an empty cell, numbers, text,
    booleans, dates, error texts (:data:`xl_kpis.cells.ERRORS`) and 2-D lists
    for ranges and array results.  A column may also be a numpy array as a columnar
    reader gives it (float64 with NaN for a blank, datetime64 with NaT, an object
    array of text and None, with its codes when it is
    :class:`xl_kpis.metrics._kpi.Coded`), which is evaluated without a Python value
    per row, or what :meth:`column_values` returned.
    """

    def __init__(self, column: Callable[[str, str], Sequence[Any]],
                 name: Callable[[str], Any],
                 cell: Callable[[str, int, int], Any],
                 headers: Mapping[str, Sequence[str]] | None = None):
        self._column = column
        self._name = name
        self._cell = cell
        self._headers = headers or {}
        self._ranges: dict[tuple[str, str], Any] = {}
        self._vecs: dict[tuple[str, str], Any] = {}

    # public entry points

    def cell(self, node: Node, array: bool = False) -> Any:
        """The value of a single-cell formula, or of an ``array`` formula (a 2-D list).

        A single cell shows the top-left element of an array result (a 1 x 1
        array shows its element).
        """
        v = self._eval(node, None)
        if isinstance(v, np.ndarray):
            v = _range_list(v)
        if not array and _is_range(v):
            v = v[0][0] if v and v[0] else None
        return _shown(v)

    def column(self, node: Node, table: str, n_rows: int) -> list:
        """The values of a calculated column formula for the ``n_rows`` rows of ``table``."""
        v = self._eval(node, (table, n_rows))
        if isinstance(v, _Vec):
            return v.shown().values()       # a blank shows as 0
        return self._column_list(v, n_rows)

    def column_values(self, node: Node, table: str, n_rows: int) -> Any:
        """:meth:`column` as the evaluator holds it (arrays, and the codes of text taken
        from the columns it comes from) rather than as a list: for a ``column`` callable
        that gives it back when the formulas read the column; :func:`column_array` makes
        it an array of cell values."""
        v = self._eval(node, (table, n_rows))
        return v.shown() if isinstance(v, _Vec) else self._column_list(v, n_rows)

    @staticmethod
    def _column_list(v: Any, n_rows: int) -> list:
        if isinstance(v, _Rows):
            return [_shown(x) for x in v]
        if isinstance(v, np.ndarray):
            v = _range_list(v)
        return [_shown(v)] * n_rows

    # the recursion

    def _eval(self, node: Node, rows: tuple[str, int] | None, lazy: bool = False) -> Any:
        """The value of ``node``; a column of text with its codes may stay a
        :class:`~xl_kpis.metrics._kpi.LazyCoded` when ``lazy`` (a UDF's argument)."""
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Name):
            return self._name(node.name)
        if isinstance(node, Ref):
            return self._cell(node.key, node.row, node.col)
        if isinstance(node, Column):
            key = (node.table, node.header)
            values = self._column(node.table, node.header)
            held = self._ranges.get(key)
            if held is None or held[0] is not values:  # read many times (SUM, KPIs)
                vec = self._vec(key, values)
                held = self._ranges[key] = (
                    values, [[v] for v in vec] if isinstance(vec, _Rows) else vec.column())
            return held[1] if lazy else plain(held[1])
        if isinstance(node, This):
            return self._this(node, rows)
        if isinstance(node, Op):
            args = [self._eval(node.left, rows), self._eval(node.right, rows)]
            vecs = _per_row_vecs(args)
            if vecs is not None:
                fn = _V_CMP.get(node.op)
                return _v_compare(fn, *vecs) if fn else _v_arith(_V_ARITH[node.op], *vecs)
            return self._lift(_OPERATORS[node.op], args)
        if isinstance(node, Call):
            fn = officejs.plain_name(node.fn)     # either spelling of a UDF call
            if fn in _NATIVES:
                return self._native(node, [self._eval(a, rows) for a in node.args])
            return self._udf(fn, [self._eval(a, rows, lazy=True) for a in node.args])
        raise TypeError(f"not a formula node: {node!r}")

    def _native(self, node: Call, args: list) -> Any:
        """A native function: on whole columns at once where it has per-row arguments."""
        vecs = _per_row_vecs(args) if node.fn in ("IF", "OR", "AND", "ISNUMBER") else None
        if vecs is not None:
            if node.fn == "IF":
                n = len(vecs[0])
                return _v_if(*vecs, *[_Vec.full(n, d) for d in (True, False)[len(vecs) - 1:]])
            if node.fn in ("OR", "AND"):
                return _v_or(vecs, [isinstance(a, (Ref, This, Name)) for a in node.args],
                             every=node.fn == "AND")
            return _v_isnumber(*vecs)
        fn, takes_refs = _NATIVES[node.fn]
        if takes_refs:
            args = [_as_reference(a, n) for a, n in zip(args, node.args)]
        return self._lift(fn, args)

    def _this(self, node: This, rows: tuple[str, int] | None) -> _Rows | _Vec:
        if rows is None:
            raise ValueError(f"a this-row reference to {node.header!r} outside a table")
        table, _ = rows
        if node.last is None:
            return self._vec((table, node.header), self._column(table, node.header))
        return _Rows([list(r)] for r in zip(*self._row_range(table, node.header, node.last)))

    def _vec(self, key: tuple[str, str], values: Sequence[Any]) -> _Vec | _Rows:
        """A column's values as a :class:`_Vec` (or :class:`_Rows` when they cannot be),
        converted once for as long as the column holds the same list."""
        if isinstance(values, _Vec):
            return values
        held = self._vecs.get(key)
        if held is None or held[0] is not values:
            held = self._vecs[key] = (values, _Vec.of(values) or _Rows(
                values.tolist() if isinstance(values, np.ndarray) else values))
        return held[1]

    def _row_range(self, table: str, first: str, last: str) -> list[Sequence[Any]]:
        headers = list(self._headers[table])
        i, j = headers.index(first), headers.index(last)
        columns = [self._column(table, h) for h in headers[i:j + 1]]
        return [column_array(c).tolist() if isinstance(c, (np.ndarray, _Vec, LazyCoded)) else c
                for c in columns]

    @staticmethod
    def _lift(fn: Callable[..., Any], args: list) -> Any:
        """Apply a native function, row by row when an argument has per-row values."""
        args = [_Rows(a.values()) if isinstance(a, _Vec) else a for a in args]
        n = next((len(a) for a in args if isinstance(a, _Rows)), None)
        if n is None:
            return fn(*args)
        return _Rows(map(fn, *(a if isinstance(a, _Rows) else itertools.repeat(a, n)
                               for a in args)))

    @staticmethod
    def _udf(fn: str, args: list) -> Any:
        """Call a UDF once; per-row arguments become 2-D column ranges."""
        n = next((len(a) for a in args if isinstance(a, (_Rows, _Vec))), None)
        call = [a.column() if isinstance(a, _Vec) else
                _as_column_range(a) if isinstance(a, _Rows) else a for a in args]
        result = getattr(functions, fn)(*call)
        if n is None:
            return result
        if isinstance(result, list):
            return _Rows(r[0] if isinstance(r, list) else r for r in result)
        return _Rows([result] * n)          # one error for the whole call


def column_array(values: Any) -> np.ndarray:
    """A column's values (a list, an input array, :meth:`Evaluator.column_values`) as an
    object array of cell values."""
    if isinstance(values, _Vec):
        return values.array()
    values = plain(values)
    if isinstance(values, np.ndarray):
        vec = _Vec.of(values)
        if vec is not None:
            return vec.array()
        values = values.tolist()
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _per_row_vecs(args: list) -> list[_Vec] | None:
    """The arguments as :class:`_Vec` when one has per-row values and all can be vectorised."""
    n = next((len(a) for a in args if isinstance(a, (_Rows, _Vec))), None)
    if n is None:
        return None
    vecs = [_vec_arg(a, n) for a in args]
    return None if any(v is None for v in vecs) else vecs


def _as_reference(value: Any, node: Node) -> Any:
    """A single-cell reference passed to a reference-taking native, as a 1x1 range."""
    if not isinstance(node, (Ref, This, Name)):
        return value
    if isinstance(value, _Rows):
        return _Rows(v if _is_range(v) else [[v]] for v in value)
    return value if _is_range(value) else [[value]]


def _as_column_range(rows: _Rows) -> list[list]:
    """Per-row values (cells, or 1 x k row ranges) as one n x 1 (or n x k) range."""
    return [v[0] if _is_range(v) else [v] for v in rows]


def _shown(v: Any) -> Any:
    """What a formula cell shows for a result: a reference to an empty cell shows 0."""
    return 0.0 if v is None else v
