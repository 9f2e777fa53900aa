"""The xlwings Lite fallback script that enters the xl-kpis formulas again (xl_kpis.lite).

Outside Lite ``@xw.script`` leaves the function as it is, so the script runs
here against a stand-in for the part of xlwings' async book API it uses
(``sheets``, ``get_used_range``, ``options(ndim=2).get_formula``, ``range(...)
.formula = ...``).  Its registration under xlwings' Office.js code is tested
with the template's main.py (tests/test_book_litecode.py).
"""

from __future__ import annotations

import asyncio

from hypothesis import given, strategies as st

from xl_kpis import lite, officejs, udfs


class _Range:
    def __init__(self, sheet, first, last=None):
        self.sheet, self.first, self.last = sheet, first, last or first
        self.row, self.column = first

    def options(self, **kwargs):
        assert kwargs == {"ndim": 2}
        return self

    async def get_formula(self):
        return self.sheet.grid

    @property
    def formula(self):
        raise AssertionError("formulas are read with get_formula")

    @formula.setter
    def formula(self, value):
        self.sheet.writes.append((self.first, self.last, value))


class _Sheet:
    def __init__(self, grid, origin=(1, 1)):
        self.grid, self.origin, self.writes = grid, origin, []

    async def get_used_range(self):
        return None if not self.grid else _Range(self, self.origin)

    def range(self, first, last):
        return _Range(self, first, last)


class _Book:
    def __init__(self, *sheets):
        self.sheets = list(sheets)


def test_reenters_runs_of_xl_kpis_formulas_only(capsys):
    kpis = _Sheet([
        ["KPI", "Value", "Formula"],
        ["ROAS", "=_xldudf_ROAS(SUM(Campaigns[Revenue]),SUM(Campaigns[Cost]))", "=ROAS(...)"],
        ["Orders", "=ORDER_COUNT(Orders[Counted order])", 3],
        ["Per buyer", '=IF(ISNUMBER(B27),B24/B27,"")', None],
        ["Top", "=_xldudf_TOP_PRODUCTS(Orders[Product],Orders[Counted sales])", "Revenue"],
        ["", "bag", 120.5],                        # spilled values: left alone
    ], origin=(4, 1))
    table = _Sheet([["CTR"], ["=_xldudf_CTR(Campaigns[[#This Row],[Clicks]],x)"],
                    ["=_xldudf_CTR(Campaigns[[#This Row],[Clicks]],x)"]], origin=(4, 24))
    empty = _Sheet([])
    asyncio.run(lite.reenter_formulas(_Book(kpis, table, empty)))
    assert kpis.writes == [
        ((5, 2), (6, 2), [["=ROAS(SUM(Campaigns[Revenue]),SUM(Campaigns[Cost]))"],
                          ["=ORDER_COUNT(Orders[Counted order])"]]),
        ((8, 2), (8, 2), [["=TOP_PRODUCTS(Orders[Product],Orders[Counted sales])"]]),
        ((5, 3), (5, 3), [["=ROAS(...)"]]),        # a formula the seller typed: entered too
    ]
    assert table.writes == [((5, 24), (6, 24), [["=CTR(Campaigns[[#This Row],[Clicks]],x)"]] * 2)]
    assert empty.writes == []
    assert capsys.readouterr().out == "xl-kpis: entered 6 formulas again\n"


_CELL = st.one_of(st.none(), st.integers(), st.text(max_size=5),
                  st.sampled_from(["=SUM(A1)", "=ROAS(A1,B1)", "=_xldudf_CTR(1,2)", "=x",
                                   '="ROAS("']))


@given(st.lists(st.lists(_CELL, min_size=1, max_size=4), max_size=6))
def test_runs_cover_exactly_the_cells_to_reenter(grid):
    """Every cell whose formula calls an xl-kpis function is in exactly one run, nothing else."""
    covered = {}
    for row, col, formulas in lite.formula_runs(grid):
        for i, f in enumerate(formulas):
            assert (row + i, col) not in covered
            covered[(row + i, col)] = f
    expected = {(r, c): officejs.plain(v) for r, cells in enumerate(grid)
                for c, v in enumerate(cells)
                if isinstance(v, str) and v.startswith("=")
                and officejs.called_functions(v) & set(udfs.__all__)}
    assert covered == expected
