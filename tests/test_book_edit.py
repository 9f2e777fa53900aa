"""Whole cells written into a worksheet's XML (:mod:`xl_kpis.book.edit`)."""

import re

import pytest
from python_calamine import CalamineWorkbook

from xl_kpis.book import edit, patch, scan
from bookfiles import parts, roas_book


@pytest.fixture
def book(tmp_path):
    return roas_book(tmp_path / "b.xlsx")


def test_edit_cells_writes_whole_cells_in_sheet_order(book, tmp_path):
    """New rows and cells go in order, a cleared cell keeps its style, an array formula
    gets a new range; openpyxl and calamine read the result."""
    from openpyxl import load_workbook

    out = tmp_path / "edited.xlsx"
    edits = {
        "C2": edit.CellEdit(7.5),                        # a formula cell: its formula stays
        "D2": edit.CellEdit("new <text>", style="0"),    # a new cell in an existing row
        "A60": edit.CellEdit(3.0, formula="SUM(A2:A3)"),   # a new row below the others
        "B55": edit.CellEdit("", style="0"),              # an empty styled cell
        "B3": None,                                       # cleared
        "A1": None,
    }
    n = patch.patch_workbook(book, out, {}, edits={"Data": edits})
    assert n == len(edits)
    xml = parts(out)["xl/worksheets/sheet1.xml"]
    assert b'<c r="C2"><f>ROAS(A2,B2)</f><v>7.5</v></c>' in xml
    assert xml.index(b'<row r="55">') < xml.index(b'<row r="60">')
    assert b'<dimension ref="A1:E60"/>' in xml
    ws = load_workbook(out)["Data"]
    assert ws["D2"].value == "new <text>" and ws["A60"].value == "=SUM(A2:A3)"
    assert ws["B3"].value is None and ws["A1"].value is None and ws["B4"].value == 50
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("Data").to_python()
    assert rows[1][2] == 7.5 and rows[59][0] == 3.0


def test_edit_cells_resizes_an_array_formula():
    xml = (b'<worksheet><dimension ref="A1:B2"/><sheetData><row r="1" spans="1:2">'
           b'<c r="A1" s="2" cm="1" t="str"><f t="array" ref="A1:B2">T(X)</f><v>h</v></c>'
           b'<c r="B1" s="2" t="s"><v>0</v></c></row><row r="2" spans="1:2"><c r="A2" s="3">'
           b'<v>1</v></c><c r="B2" s="3"><v>2</v></c></row></sheetData></worksheet>')
    out = edit.edit_cells(xml, {"A1": edit.CellEdit("h", array="A1:B3"),
                                 "A3": edit.CellEdit("x", style="3"),
                                 "B3": edit.CellEdit(4.0, style="3")})
    assert scan.array_ranges(out) == ["A1:B3"]
    assert b'cm="1" t="str"><f t="array" ref="A1:B3">T(X)</f><v>h</v>' in out
    assert out.endswith(b'<row r="3"><c r="A3" s="3" t="inlineStr"><is><t xml:space="preserve">'
                        b'x</t></is></c><c r="B3" s="3"><v>4</v></c></row></sheetData>'
                        b'</worksheet>')
    shrunk = edit.edit_cells(out, {"A1": edit.CellEdit("h", array="A1:B1"), "A2": None,
                                    "B2": None, "A3": None, "B3": None})
    assert scan.array_ranges(shrunk) == ["A1:B1"]
    assert b'<row r="2" spans="1:2"><c r="A2" s="3"/><c r="B2" s="3"/></row>' in shrunk
    assert b'<row r="3"><c r="A3" s="3"/><c r="B3" s="3"/></row>' in shrunk


def test_edit_cells_puts_new_rows_before_between_and_after_the_others():
    """Rows to create go in order around the existing ones (however many), and the
    dimension grows to the cells written, not to a cleared one."""
    xml = (b'<worksheet><dimension ref="B3:B5"/><sheetData><row r="3"><c r="B3" s="1">'
           b'<v>3</v></c></row><row r="5"><c r="B5" s="1"><v>5</v></c></row></sheetData>'
           b'</worksheet>')
    edits = {f"A{r}": edit.CellEdit(float(r)) for r in (40, 1, 4, 2, 6, 30)}
    edits["C90"] = None                               # cleared where there is no cell
    out = edit.edit_cells(xml, edits)
    rows = [int(r) for r in re.findall(rb'<row r="(\d+)"', out)]
    assert rows == [1, 2, 3, 4, 5, 6, 30, 40, 90] and b'<row r="90"/>' in out
    assert b'<dimension ref="A1:B40"/>' in out        # not C90: nothing written there
    assert b'<row r="4"><c r="A4"><v>4</v></c></row>' in out
    assert b'<row r="5"><c r="B5" s="1"><v>5</v></c></row>' in out
