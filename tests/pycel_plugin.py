"""Our Excel functions as a pycel plugin module.

pycel compiles ``=ROAS(B2,C2)`` to ``roas(_C_("S!B2"), _C_("S!C2"))`` (and
``=_xldudf_ROAS(B2,C2)``, the Lite template's spelling, to ``_xldudf_roas(...)``)
and looks the name up, in lower case, in the plugin modules first
(``pycel/lib/function_helpers.py: load_functions``).  A function without
pycel's ``excel_helper`` metadata is called with the arguments as they are:

* a single cell arrives as its value (int, float, str, bool or None for an
  empty cell; an error cell as its error string, e.g. ``"#DIV/0!"``; an
  omitted argument as ``"#EMPTY!"``);
* a range (``B2:B9``, ``Table[Col]``) arrives as a tuple of row tuples.

Our UDFs take what xlwings passes: scalars, or 2-D lists (``ndim=2``); an
error cell as its error string (``err_to_str=True``), an empty cell as None.
The adapters below convert pycel's values to that and back: a 2-D list
result becomes a tuple of row tuples, which pycel fits to a CSE/array
formula's range (``in_array_formula_context.fit_to_range``); in a
single-cell formula pycel keeps its top-left element, as Excel does.

The UDFs run under :func:`xl_kpis.cells.strict`: an unexpected exception
inside a UDF is re-raised (pycel reports ``FormulaEvalError``) instead of
becoming a quiet ``#VALUE!`` that could match a cached ``#VALUE!``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from xl_kpis import cells, officejs, udfs

_PYCEL_EMPTY = "#EMPTY!"  # pycel.excelutil.EMPTY: an omitted argument


def _arg(a: Any) -> Any:
    if isinstance(a, tuple):
        return [list(row) if isinstance(row, tuple) else [row] for row in a]
    if isinstance(a, str) and a == _PYCEL_EMPTY:
        return None
    return a


def _result(r: Any) -> Any:
    if hasattr(r, "tolist"):  # numpy
        r = r.tolist()
    if isinstance(r, list):
        if not r:
            return cells.VALUE
        rows = tuple(tuple(row) if isinstance(row, (list, tuple)) else (row,) for row in r)
        if len(rows) == 1 and len(rows[0]) == 1:
            return rows[0][0]
        return rows
    return r


def _adapt(udf: Callable) -> Callable:
    @functools.wraps(udf)
    def call(*args: Any) -> Any:
        with cells.strict():
            return _result(udf(*(_arg(a) for a in args)))

    call.__name__ = udf.__name__.lower()
    return call


#: lower-case name -> adapted UDF, for every function in ``xl_kpis.udfs.__all__``, under
#: both spellings of a call: plain (``roas``, classic xlwings) and as Excel stores a call of
#: an Office.js custom function (``_xldudf_roas``, xlwings Lite; see ``xl_kpis.officejs``)
FUNCTIONS = {spelled.lower(): _adapt(getattr(udfs, name)) for name in udfs.__all__
             for spelled in (name, officejs.stored_name(name))}
for _name, _f in FUNCTIONS.items():
    _f.__name__ = _name
globals().update(FUNCTIONS)

__all__ = sorted(FUNCTIONS)
