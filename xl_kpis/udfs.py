"""Excel functions (xlwings UDFs): the functions of :mod:`xl_kpis.functions`, registered with xlwings.

Register this module in Excel:

* classic Windows Excel: xlwings add-in, ``UDF Modules = xl_kpis.udfs``, then
  *Import Functions*;
* xlwings Lite (Windows, Mac, Excel on the web): ``from xl_kpis.udfs import *``
  in ``main.py``.  Lite registers the functions that are members of ``main``
  itself (xlwings' ``custom_functions_meta``): ``import xl_kpis.udfs`` alone
  registers none.

Every range argument is declared ``ndim=2`` so a column stays a column on
both platforms, and ``err_to_str=True`` so an error cell is seen as an error
rather than as a blank; its help is the argument's in
:data:`xl_kpis.functions.ARG_DOCS`.  Each UDF is a copy of the function of
:mod:`xl_kpis.functions` (the same code, defaults and docstring) that belongs to
this module, so xlwings' marks stay here and the functions stay plain for
whatever calls them without xlwings (the workbook's evaluator, LibreOffice).
This module imports numpy and xlwings and nothing else (xlwings Lite runs it
under Pyodide).
"""

from __future__ import annotations

import types
from typing import Callable

import xlwings as xw

from . import functions
from .functions import ARG_DOCS, CATEGORY, KPI_OF, LAYOUT_OPTIONS  # noqa: F401  (re-exported)


def _register(f: Callable) -> Callable:
    """A copy of ``f`` in this module, marked by xlwings as an Excel function of ``CATEGORY``."""
    udf = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    udf.__doc__, udf.__kwdefaults__, udf.__qualname__ = f.__doc__, f.__kwdefaults__, f.__qualname__
    udf.__module__ = __name__
    for name in udf.__code__.co_varnames[: udf.__code__.co_argcount]:
        udf = xw.arg(name, ndim=2, err_to_str=True, doc=ARG_DOCS[f.__name__][name])(udf)
    return xw.func(category=CATEGORY)(udf)


globals().update({name: _register(getattr(functions, name)) for name in functions.__all__})

__all__ = list(functions.__all__)  # every Excel function, in order
