"""Copying a seller's own sheets into another workbook, as they are.

The seller's sheet is made with XlsxWriter (its own styles, shared strings, a table, a
chart over the table, a conditional format, a print area, a workbook name); the copy is
read back with openpyxl, python-calamine, openxml-audit and LibreOffice.
"""

import zipfile

import pytest
import xlsxwriter

from bookfiles import parts
from engines import lo_csv_sheets, openxml_audit, require_tool
from xl_kpis.xlsx import books
from xl_kpis.book.sheets import copy_sheets


@pytest.fixture
def own(tmp_path):
    p = tmp_path / "own.xlsx"
    wb = xlsxwriter.Workbook(p)
    wb.add_worksheet("Start")                       # a sheet both books have
    ws = wb.add_worksheet("My notes")
    red = wb.add_format({"bold": True, "font_color": "#C00000", "font_size": 13})
    pct = wb.add_format({"num_format": "0.000%", "bg_color": "#E2EFDA"})
    ws.write("A1", "Notes on the shop", red)
    ws.write("A2", "Margin check")
    ws.write_formula("B2", "=0.25*2", pct, 0.5)
    ws.add_table("A4:B7", {"name": "MyItems", "columns": [{"header": "Item"},
                                                          {"header": "Amount"}],
                           "data": [["tee", 10], ["cap", 25], ["mug", 7]]})
    ws.conditional_format("B5:B7", {"type": "cell", "criteria": ">", "value": 20,
                                    "format": wb.add_format({"font_color": "#006100"})})
    chart = wb.add_chart({"type": "column"})
    chart.add_series({"categories": "='My notes'!$A$5:$A$7",
                      "values": "='My notes'!$B$5:$B$7"})
    ws.insert_chart("D2", chart)
    ws.print_area("A1:C10")
    wb.define_name("ItemsTotal", "='My notes'!$B$5:$B$7")
    wb.close()
    return p


def test_a_sheet_is_copied_as_it_is(own, template, tmp_path):
    from openpyxl import load_workbook
    from python_calamine import CalamineWorkbook

    out = tmp_path / "with-notes.xlsx"
    done = copy_sheets(own, template, ["My notes"], out=out)
    assert done.sheets == ["My notes"] and done.left_out == []
    assert {p.rsplit("/", 1)[0] for p in done.parts} == {
        "xl/worksheets", "xl/tables", "xl/drawings", "xl/charts"}
    wb = load_workbook(out)
    assert wb.sheetnames[-1] == "My notes" and wb.sheetnames[:-1] == load_workbook(
        template).sheetnames
    ws = wb["My notes"]
    assert ws["A1"].value == "Notes on the shop" and ws["A1"].font.b
    assert ws["A1"].font.color.rgb == "FFC00000" and ws["A1"].font.sz == 13
    assert ws["B2"].value == "=0.25*2" and ws["B2"].number_format == "0.000%"
    assert ws["B2"].fill.fgColor.rgb == "FFE2EFDA"
    assert list(ws.tables) == ["MyItems"] and len(ws._charts) == 1
    assert ws.conditional_formatting and wb.defined_names["ItemsTotal"].attr_text == \
        "'My notes'!$B$5:$B$7"
    assert ws.print_area == "'My notes'!$A$1:$C$10"
    # the cached value of the formula, and the text (the template's string table untouched)
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("My notes").to_python()
    assert rows[1][:2] == ["Margin check", 0.5] and rows[4][:2] == ["tee", 10.0]
    assert parts(out)["xl/sharedStrings.xml"] == parts(template)["xl/sharedStrings.xml"]
    # the table's id is new in the book
    ids = [x for n, b in parts(out).items() if n.startswith("xl/tables/")
           for x in __import__("re").findall(rb'<table\b[^>]*?\bid="(\d+)"', b)]
    assert len(ids) == len(set(ids)) == 5
    assert openxml_audit(out) == []


def test_libreoffice_shows_the_copied_sheet(own, template, tmp_path):
    require_tool("soffice")
    out = copy_sheets(own, template, ["My notes"], out=tmp_path / "n.xlsx") and \
        tmp_path / "n.xlsx"
    with zipfile.ZipFile(out) as z:
        names = list(books.sheet_parts(z))
    shown = lo_csv_sheets(out, tmp_path / "csv", names)["My notes"]
    assert shown[0][0] == "Notes on the shop" and shown[1][0] == "Margin check"
    assert shown[1][1].startswith("50") and shown[4][:2] == ["tee", "10"]


def test_refusals(own, template, tmp_path):
    with pytest.raises(books.BookFormatError, match="no sheet 'Nope'"):
        copy_sheets(own, template, ["Nope"], out=tmp_path / "x.xlsx")
    with pytest.raises(books.BookFormatError, match="already has a sheet 'Start'"):
        copy_sheets(own, template, ["Start"], out=tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()
    # nothing to copy: the book as it was
    copy_sheets(own, template, [], out=tmp_path / "same.xlsx")
    assert parts(tmp_path / "same.xlsx") == parts(template)
