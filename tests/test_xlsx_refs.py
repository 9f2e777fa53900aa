"""A1 references (xl_kpis/xlsx/refs.py), checked against openpyxl's independent
implementation (openpyxl.utils.cell) and Excel's documented limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.utils.cell import column_index_from_string, get_column_letter, range_boundaries

from xl_kpis.xlsx import refs as R

COLS = st.integers(0, 16383)           # Excel specifications and limits: 16,384 columns (XFD)
ROWS = st.integers(0, 1048575)         # ... and 1,048,576 rows


def test_known_columns():
    # A is the 1st column, Z the 26th, AA the 27th, AB the 28th, XFD the 16,384th (the last)
    assert [R.col_index(x) for x in ("A", "Z", "AA", "AB", "XFD")] == [0, 25, 26, 27, 16383]
    assert [R.col_letters(c) for c in (0, 25, 26, 27, 16383)] == ["A", "Z", "AA", "AB", "XFD"]


@given(COLS)
def test_columns_agree_with_openpyxl(col):
    letters = R.col_letters(col)
    assert letters == get_column_letter(col + 1)
    assert R.col_index(letters) == column_index_from_string(letters) - 1 == col


@given(ROWS, COLS, ROWS, COLS)
def test_ranges_agree_with_openpyxl(r0, c0, r1, c1):
    ref = f"{R.a1(r0, c0)}:{R.a1(r1, c1, absolute=True)}"
    mc, mr, xc, xr = range_boundaries(ref.replace("$", ""))      # 1-based
    assert R.bounds(ref) == (mr - 1, mc - 1, xr - 1, xc - 1)
    assert R.rowcol(R.a1(r0, c0, absolute=True)) == (r0, c0)


@pytest.mark.parametrize("bad", ["", "A", "1", "A0", "A01", "a1", "ABCD1", "A1B", " A1", "A-1",
                                 "$$A1", "A1:"])
def test_text_that_is_no_reference_is_refused(bad):
    with pytest.raises(ValueError, match="not a"):
        R.bounds(bad) if ":" in bad else R.rowcol(bad)


@pytest.mark.parametrize("bad", ["", "a", "ABCD", "A1", "Ä"])
def test_text_that_is_no_column_is_refused(bad):
    with pytest.raises(ValueError, match="not column letters"):
        R.col_index(bad)


def test_sheet_references():
    assert R.sheet_ref("Start!$B$6") == ("Start", "B6")
    assert R.sheet_ref(" 'My ''data'''!$A$1:$B$2 ") == ("My 'data'", "A1:B2")
    assert R.sheet_ref("Dashboard!N11:N15") == ("Dashboard", "N11:N15")
    for text in ("B6", "Start!", "Start!B", "Start!B6:", "'Start!B6", "My data!A1", "A!B1,A!C1"):
        assert R.sheet_ref(text) is None, text


@pytest.mark.parametrize("sheet, quoted", [
    # Excel's rules (as XlsxWriter documents them): a name of letters, digits, "_" and "."
    # that starts with neither a digit nor ".", and reads as no A1 or R1C1 reference, is bare
    ("Dashboard", "Dashboard"), ("KPIs", "KPIs"), ("xlwings.conf", "xlwings.conf"),
    ("My data", "'My data'"), ("Bob's", "'Bob''s'"), ("2026", "'2026'"), ("A1", "'A1'"),
    ("R1C1", "'R1C1'")])
def test_sheet_names_are_quoted_where_excel_needs_it(sheet, quoted):
    assert R.quote_sheet(sheet) == quoted
    assert R.sheet_ref(f"{quoted}!A1") == (sheet, "A1")


def test_area_text_round_trips():
    assert R.area_text("Dashboard", 10, 13, 14, 13) == "Dashboard!$N$11:$N$15"
    assert R.area_text("My data", 0, 0, 0, 0) == "'My data'!$A$1"
    sheet, ref = R.sheet_ref(R.area_text("Bob's", 3, 2, 9, 2))
    assert (sheet, R.bounds(ref)) == ("Bob's", (3, 2, 9, 2))
