"""For xlwings Lite: the script that enters every xl-kpis formula of a workbook again.

Excel binds a call of a custom function to the add-in when the formula is
entered.  A cell that shows ``#NAME?`` after xlwings Lite has loaded the
functions (a formula typed before Lite was running, or pasted from a book
another tool wrote) binds once it is entered again; a recalculation does not
do that (office-js issues #6611, #4185).  :func:`reenter_formulas` does it for
every formula of the workbook that calls one of :data:`xl_kpis.functions.__all__`.

The template's ``main.py`` imports it (xlwings Lite lists the scripts that are
members of ``main``).  It runs in Lite only: it reads formulas with xlwings'
async API (``xw.BookAsync``, ``Range.get_formula``, xlwings 0.36.9 or newer).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import xlwings as xw

from . import officejs
from .functions import __all__ as FUNCTIONS

__all__ = ["reentered", "formula_runs", "reenter_formulas"]

_NAMES = frozenset(FUNCTIONS)


def reentered(formula: Any) -> str | None:
    """The text to enter again for a cell holding ``formula``, or None to leave the cell.

    A formula that calls an xl-kpis function is entered as it is, with the
    function names spelled as typed (a stored ``_xldudf_`` prefix dropped);
    constants, spilled values and other formulas are left alone.

    >>> reentered("=_xldudf_ROAS(B2,C2)"), reentered("=SUM(A1:A3)"), reentered(3.5)
    ('=ROAS(B2,C2)', None, None)
    """
    if not isinstance(formula, str) or not formula.startswith("="):
        return None
    if not officejs.called_functions(formula) & _NAMES:
        return None
    return officejs.plain(formula)


def formula_runs(grid: Sequence[Sequence[Any]]) -> Iterator[tuple[int, int, list[str]]]:
    """``(row, col, formulas)``: runs of cells down a column to enter again (0-based).

    One write per run: a table's calculated column is one run.

    >>> list(formula_runs([["=ROAS(A1,B1)", 1], ["=ROAS(A2,B2)", "=CTR(1,2)"], ["x", None]]))
    [(0, 0, ['=ROAS(A1,B1)', '=ROAS(A2,B2)']), (1, 1, ['=CTR(1,2)'])]
    """
    width = max((len(row) for row in grid), default=0)
    for col in range(width):
        run: list[str] = []
        for row in range(len(grid) + 1):
            text = reentered(grid[row][col]) if row < len(grid) and col < len(grid[row]) \
                else None
            if text is not None:
                run.append(text)
                continue
            if run:
                yield row - len(run), col, run
                run = []


@xw.script(name="Re-enter xl-kpis formulas")
async def reenter_formulas(book: xw.BookAsync):
    """Enter every formula that calls an xl-kpis function again.

    Run it once when cells show #NAME? although xlwings Lite is running (the
    functions are listed in its Functions tab): Excel binds a custom function
    when a formula is entered, not when it recalculates.  Protected sheets
    must be unprotected first.
    """
    done = 0
    for sheet in book.sheets:
        used = await sheet.get_used_range()
        if used is None:
            continue
        grid = await used.options(ndim=2).get_formula()
        for row, col, formulas in formula_runs(grid):
            first = (used.row + row, used.column + col)
            last = (first[0] + len(formulas) - 1, first[1])
            sheet.range(first, last).formula = [[f] for f in formulas]
            done += len(formulas)
    print(f"xl-kpis: entered {done} formulas again")
