"""A1 cell references: column letters, cells, ranges and sheet-qualified references.

Rows and columns are 0-based here, as in XlsxWriter, whose
:mod:`xlsxwriter.utility` writes and reads the references.  XlsxWriter's
reader answers ``A1`` (with a warning) for text that is no reference, so
:func:`rowcol` checks the text's shape first and raises instead: a reference
read from a file may be anything.

Sources: ECMA-376 Part 1, the ``ST_Ref``/``ST_CellRef`` types (``A1``,
``A1:B2``) and the formula grammar's sheet names (quoted with ``'`` when they
hold other characters than letters, digits, ``_`` and ``.``; a ``'`` inside
doubled); Microsoft, "Excel specifications and limits" (columns ``A`` to
``XFD``).
"""

from __future__ import annotations

import functools
import re
from typing import Any


__all__ = ["SHEET", "AREA", "col_letters", "col_index", "a1", "rowcol", "bounds", "sheet_ref",
           "area_text", "quote_sheet"]

#: The pattern of a sheet name in a reference: quoted (a ``'`` inside doubled) or bare.
SHEET = r"'(?:[^']|'')+'|[^'!:,()\s]+"
#: The pattern of a cell or a range, ``$`` or not: ``B6``, ``$A$1:$B$2``.
AREA = r"\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?"

_LETTERS = re.compile(r"[A-Z]{1,3}")
_CELL = re.compile(r"\$?([A-Z]{1,3})\$?(\d+)")
#: A reference with its sheet: ``Start!$B$6``, ``'My ''data'''!A1:B2``.
_SHEET_REF = re.compile(rf"(?P<sheet>{SHEET})!(?P<ref>{AREA})")
_COLUMNS: dict[str, int] = {}


@functools.cache
def _xw() -> Any:
    """:mod:`xlsxwriter.utility`, imported on first use: importing it runs XlsxWriter's
    ``__init__``, which loads the whole writer (a command that only reads or evaluates
    never needs it)."""
    from xlsxwriter import utility

    return utility


def col_letters(col: int) -> str:
    """The letters of a 0-based column.

    >>> col_letters(0), col_letters(27), col_letters(16383)
    ('A', 'AB', 'XFD')
    """
    return _xw().xl_col_to_name(col)


def col_index(letters: str) -> int:
    """The 0-based column of its letters (one to three capitals); ValueError for others.

    >>> col_index("A"), col_index("AB"), col_index("XFD")
    (0, 27, 16383)
    """
    col = _COLUMNS.get(letters)
    if col is None:
        if not _LETTERS.fullmatch(letters):
            raise ValueError(f"not column letters: {letters[:20]!r}")
        col = _COLUMNS[letters] = _xw().xl_cell_to_rowcol(letters + "1")[1]
    return col


def a1(row: int, col: int, absolute: bool = False) -> str:
    """The A1 reference of a 0-based (row, column), ``$``-absolute or relative.

    >>> a1(4, 1), a1(0, 27, absolute=True)
    ('B5', '$AB$1')
    """
    return _xw().xl_rowcol_to_cell(row, col, absolute, absolute)


def rowcol(ref: str) -> tuple[int, int]:
    """The 0-based (row, column) of a cell reference (``B7``, ``$B$7``); ValueError for
    text that is none.

    >>> rowcol("B7"), rowcol("$AB$1")
    ((6, 1), (0, 27))
    """
    m = _CELL.fullmatch(ref)
    if m is None or m.group(2).startswith("0"):
        raise ValueError(f"not a cell reference: {ref[:40]!r}")
    return int(m.group(2)) - 1, col_index(m.group(1))


def bounds(ref: str) -> tuple[int, int, int, int]:
    """The 0-based (first row, first column, last row, last column) of a range (``A4:Z5``)
    or a cell (``B7``: the range of that one cell).

    >>> bounds("A4:Z5"), bounds("$B$7")
    ((3, 0, 4, 25), (6, 1, 6, 1))
    """
    first, colon, last = ref.partition(":")
    r0, c0 = rowcol(first)
    r1, c1 = rowcol(last) if colon else (r0, c0)
    return r0, c0, r1, c1


def sheet_ref(text: str) -> tuple[str, str] | None:
    """(sheet name, reference without ``$``) of a sheet-qualified reference, such as a
    defined name or a chart series holds; None for any other text.

    >>> sheet_ref("Start!$B$6"), sheet_ref("'My ''data'''!A1:B2"), sheet_ref("B6")
    (('Start', 'B6'), ("My 'data'", 'A1:B2'), None)
    """
    m = _SHEET_REF.fullmatch(text.strip())
    if m is None:
        return None
    sheet = m["sheet"]
    if sheet.startswith("'"):
        sheet = sheet[1:-1].replace("''", "'")
    return sheet, m["ref"].replace("$", "")


def area_text(sheet: str, r0: int, c0: int, r1: int, c1: int) -> str:
    """The absolute reference of a range of a sheet (the sheet name quoted where needed), a
    single cell without ``:``.

    >>> area_text("Dashboard", 10, 13, 14, 13), area_text("My data", 0, 0, 0, 0)
    ('Dashboard!$N$11:$N$15', "'My data'!$A$1")
    """
    return _xw().xl_range_formula(sheet, r0, c0, r1, c1)


def quote_sheet(sheet: str) -> str:
    """A sheet name as a formula names it (quoted when it must be).

    >>> quote_sheet("Dashboard"), quote_sheet("My data"), quote_sheet("Bob's")
    ('Dashboard', "'My data'", "'Bob''s'")
    """
    return _xw().quote_sheetname(sheet)
