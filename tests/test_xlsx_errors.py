"""Excel's error values (xl_kpis/xlsx/errors.py): the list, the error of a number that is not
finite, and text that only reads like an error.

Runs in the Pyodide lane too (xl_kpis.cells imports the module): standard library and
hypothesis only.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from xl_kpis.xlsx import errors as E

# ECMA-376 Part 1, the formula grammar's error constants (openpyxl's cell.ERROR_CODES and
# pycel's excelutil.ERROR_CODES list the same seven).
ECMA_376 = {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"}
# Excel 365's further errors: #GETTING_DATA (cube functions), #SPILL! and #CALC! (dynamic
# arrays), #FIELD! (data types), #BLOCKED!, #CONNECT!, #UNKNOWN!, #BUSY! (linked data types),
# #PYTHON! (Python in Excel); Microsoft's "How to correct a ... error" support pages.
EXCEL_365 = {"#GETTING_DATA", "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!",
             "#UNKNOWN!", "#BUSY!", "#PYTHON!"}


def test_the_standard_errors_are_ecma_376s():
    assert set(E.STANDARD) == ECMA_376 and len(E.STANDARD) == 7
    assert (E.NULL, E.DIV0, E.VALUE, E.REF, E.NAME, E.NUM, E.NA) == (
        "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")


def test_every_error_excel_shows():
    assert E.ERRORS == ECMA_376 | EXCEL_365


def test_the_package_has_one_list():
    from xl_kpis import cells

    assert cells.ERRORS is E.ERRORS and cells.Text is E.Text and cells.is_error is E.is_error
    assert (cells.DIV0, cells.NUM, cells.VALUE, cells.NA) == (E.DIV0, E.NUM, E.VALUE, E.NA)


def test_a_number_that_is_not_finite_shows_an_error():
    assert E.of_number(math.nan) == "#DIV/0!"           # 0/0: undefined
    assert E.of_number(math.inf) == E.of_number(-math.inf) == "#NUM!"
    assert E.of_number(0.0) is None and E.of_number(-1e308) is None


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_of_number_is_none_exactly_for_finite_numbers(x):
    assert (E.of_number(x) is None) == math.isfinite(x)


def test_text_that_reads_like_an_error_is_text():
    assert E.is_error("#N/A") and not E.is_error(E.Text("#N/A"))
    assert not E.is_error("#N/A ") and not E.is_error("#n/a") and not E.is_error(None)
    assert isinstance(E.Text("#REF!"), str) and E.Text("#REF!") == "#REF!"


@given(st.text(max_size=14))
def test_is_error_is_membership(s):
    assert E.is_error(s) == (s in ECMA_376 | EXCEL_365)
    assert not E.is_error(E.Text(s))
