"""Excel's error values, as a cell shows them and a workbook file stores them.

A cell holding an error stores its text with the type ``e``
(``<c r="A1" t="e"><v>#DIV/0!</v></c>``); xlwings hands a function an error
as the same text (``err_to_str=True``) and writes such text back as the error
in xlwings Lite.  This module imports only the standard library, so that :mod:`xl_kpis.cells`
(which runs in Pyodide) can take its error values from here.

Sources: ECMA-376 Part 1, the formula grammar's seven error constants
(``#DIV/0!`` ``#N/A`` ``#NAME?`` ``#NULL!`` ``#NUM!`` ``#REF!`` ``#VALUE!``); ``#GETTING_DATA`` is the placeholder Excel stores while a
cube function waits for data (MS-XLSX); the others are the errors of
Excel 365's dynamic arrays, data types and Python in Excel (Office.js,
``Excel.ErrorCellValueType``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["NULL", "DIV0", "VALUE", "REF", "NAME", "NUM", "NA", "GETTING_DATA", "STANDARD",
           "ERRORS", "Text", "is_error", "of_number"]

NULL = "#NULL!"
DIV0 = "#DIV/0!"
VALUE = "#VALUE!"
REF = "#REF!"
NAME = "#NAME?"
NUM = "#NUM!"
NA = "#N/A"
GETTING_DATA = "#GETTING_DATA"

#: The error constants of ECMA-376 (every spreadsheet program that reads .xlsx knows them).
STANDARD = (NULL, DIV0, VALUE, REF, NAME, NUM, NA)

#: Every error value Excel 365 shows.
ERRORS = frozenset(STANDARD + (GETTING_DATA, "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!",
                               "#CONNECT!", "#UNKNOWN!", "#BUSY!", "#PYTHON!"))


def of_number(x: float) -> str | None:
    """The error a number that is not finite shows as: NaN (an undefined result, a
    0 denominator) is ``#DIV/0!``, an infinity (a result out of range) ``#NUM!``; None
    for a finite number.

    >>> of_number(float("nan")), of_number(float("-inf")), of_number(2.5)
    ('#DIV/0!', '#NUM!', None)
    """
    if x != x:
        return DIV0
    if x in (float("inf"), float("-inf")):
        return NUM
    return None


class Text(str):
    """Text known to be text although it reads like an error value: a cell holding the
    text ``#N/A`` (typed, or from an export) rather than the error.

    Error values travel as their text (xlwings hands them over that way,
    ``err_to_str=True``), so a reader that can tell the two apart (a workbook
    file says which cells are errors) marks such text with this type: it is
    text to every rule of :mod:`xl_kpis.cells` (a label is a label, arithmetic
    on it is ``#VALUE!``), never the error, and a file stores it as text.  In
    Excel itself xlwings hands a UDF the same string for both, so there a label
    reading ``#N/A`` counts as the error.
    """

    __slots__ = ()


def is_error(v: Any) -> bool:
    """True for an Excel error value (its text, not :class:`Text`).

    >>> is_error("#N/A"), is_error(Text("#N/A")), is_error("N/A"), is_error(0)
    (True, False, False, False)
    """
    return isinstance(v, str) and v in ERRORS and not isinstance(v, Text)
