"""Cached-value patching inside the zip: nothing else changes, writes are atomic."""

import hashlib
import os
import re
import zipfile

import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from xl_kpis.book import patch
from xl_kpis.xlsx import books
from bookfiles import kill_while_writing, parts


@pytest.fixture
def book(tmp_path):
    p = tmp_path / "b.xlsx"
    wb = xlsxwriter.Workbook(p)
    ws = wb.add_worksheet("Data")
    ws.write_row("A1", ["Revenue", "Cost", "ROAS"])
    for r in range(1, 50):
        ws.write_number(r, 0, 100.0 + r)
        ws.write_number(r, 1, 50.0)
        ws.write_formula(r, 2, f"=ROAS(A{r + 1},B{r + 1})", None, (100.0 + r) / 50.0)
    ws.write_formula("E1", '="a"&"b"', None, "ab")
    other = wb.add_worksheet("Other")
    other.write("A1", "untouched")
    other.insert_textbox("C3", "a shape")
    wb.add_chart({"type": "line"}).add_series({"values": "=Data!$C$2:$C$50"})
    wb.close()
    return p


def test_only_the_changed_cached_values_differ(book, tmp_path):
    before = parts(book)
    out = tmp_path / "out.xlsx"
    n = patch.patch_workbook(book, out, {"Data": {"C2": 9.5, "C3": "#DIV/0!", "E1": "ab"}})
    assert n == 2  # E1 already held "ab"
    after = parts(out)
    assert before.keys() == after.keys()
    changed = [k for k in before if before[k] != after[k]]
    assert changed == ["xl/worksheets/sheet1.xml"]
    old, new = before[changed[0]].decode(), after[changed[0]].decode()
    assert old.replace("<v>2.02</v>", "<v>9.5</v>").replace(
        '<c r="C3"><f>ROAS(A3,B3)</f><v>2.04</v>',
        '<c r="C3" t="e"><f>ROAS(A3,B3)</f><v>#DIV/0!</v>') == new


def test_an_independent_reader_sees_the_new_values(book, tmp_path):
    out = tmp_path / "out.xlsx"
    patch.patch_workbook(book, out, {"Data": {"C2": 9.5, "C4": "text & <more>"}})
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("Data").to_python()
    assert rows[1][2] == 9.5 and rows[3][2] == "text & <more>"
    assert patch.read_formulas(out)["Data"]["C4"] == ("ROAS(A4,B4)", "text & <more>")


def test_unknown_sheet_and_not_a_workbook(book, tmp_path):
    with pytest.raises(books.BookFormatError, match="no sheet named 'Nope'"):
        patch.patch_workbook(book, tmp_path / "x.xlsx", {"Nope": {"A1": 1}})
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(books.BookFormatError, match="not an .xlsx"):
        patch.read_formulas(bad)


def test_failed_write_leaves_the_target_and_no_temp_file(book, tmp_path, monkeypatch):
    digest = hashlib.sha256(book.read_bytes()).hexdigest()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(OSError, match="disk full"):
        patch.patch_workbook(book, book, {"Data": {"C2": 1.0}})
    assert hashlib.sha256(book.read_bytes()).hexdigest() == digest
    assert sorted(os.listdir(tmp_path)) == ["b.xlsx"]


def test_killed_mid_write_leaves_the_original_intact(book, tmp_path):
    digest = hashlib.sha256(book.read_bytes()).hexdigest()
    kill_while_writing(f"""
        from xl_kpis.book import patch
        patch.patch_workbook({str(book)!r}, {str(book)!r}, {{"Data": {{"C2": 1.0}}}})
    """)
    assert hashlib.sha256(book.read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(book) as z:
        assert z.testzip() is None


def test_shared_strings_parsed_one_item_at_a_time(tmp_path):
    # an empty item, rich-text runs, a phonetic guide (not part of the text), entities
    sst = (b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/'
           b'spreadsheetml/2006/main" count="4" uniqueCount="4">'
           b'<si><t>plain</t></si><si/>'
           b'<si><r><t>bo</t></r><r><rPr><b/></rPr><t>ld</t></r></si>'
           b'<si><t>&lt;a&amp;b&gt;</t><rPh sb="0" eb="1"><t>guide</t></rPh></si></sst>')
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/sharedStrings.xml", sst)
    with zipfile.ZipFile(path) as z:
        lazy = patch.SharedStrings(z)
        assert [lazy[i] for i in range(4)] == ["plain", "", "bold", "<a&b>"]


def test_column_values_answer_for_their_cells_and_defer_the_rest(book, tmp_path):
    # C2:C50 hold =ROAS(Ax,Bx); C10 is changed to another formula: the column's values
    # answer every other cell, C10 goes to the sheet's decide callback (which keeps it)
    xml = parts(book)["xl/worksheets/sheet1.xml"].decode().replace(
        "<f>ROAS(A10,B10)</f>", "<f>A10*2</f>").encode()
    asked = []

    def decide(ref, formula):
        asked.append((ref, formula))
        return patch.KEEP

    col = patch.ColumnValues(first_row=2, values=[float(i) for i in range(49)],
                             accepts=lambda f: f.startswith("ROAS("))
    counter = {}
    out = b"".join(patch.patch_cells(xml, decide, {"C": col}, counter)).decode()
    assert ("C10", "A10*2") in asked and ("E1", '"a"&"b"') in asked and len(asked) == 2
    assert counter == {"changed": 48, "columns": 48}
    assert '<c r="C2"><f>ROAS(A2,B2)</f><v>0</v></c>' in out          # values[0]
    assert '<c r="C50"><f>ROAS(A50,B50)</f><v>48</v></c>' in out      # values[48]
    assert "<f>A10*2</f><v>2.18</v>" in out                           # kept as it was


def test_text_and_errors_set_the_cell_type_and_shared_children_are_answered():
    xml = (b'<sheetData><row r="2"><c r="D2" s="1"><f t="shared" ref="D2:D3" si="0">X(A2)</f>'
           b'<v>1</v></c></row><row r="3"><c r="D3" s="1"><f t="shared" si="0"/><v>2</v></c>'
           b'</row></sheetData>')
    col = patch.ColumnValues(2, ["a&b", "#N/A"], accepts=lambda f: f == "X(A2)")
    out = b"".join(patch.patch_cells(xml, lambda r, f: patch.KEEP, {"D": col})).decode()
    assert '<c r="D2" s="1" t="str"><f t="shared" ref="D2:D3" si="0">X(A2)</f>' \
           '<v>a&amp;b</v></c>' in out
    assert '<c r="D3" s="1" t="e"><f t="shared" si="0"/><v>#N/A</v></c>' in out


def test_a_fresh_value_written_with_16_digits_is_not_rewritten():
    # XlsxWriter writes 16 significant digits; repr writes 17 where needed
    x = 0.1 + 0.2                                   # repr: 0.30000000000000004
    xml = b'<c r="A1"><f>B1</f><v>0.3000000000000000</v></c>'
    counter = {}
    out = b"".join(patch.patch_cells(xml, lambda r, f: x, counter=counter))
    assert out == xml and counter["changed"] == 0


def test_edit_cells_writes_whole_cells_in_sheet_order(book, tmp_path):
    """New rows and cells go in order, a cleared cell keeps its style, an array formula
    gets a new range; openpyxl and calamine read the result."""
    from openpyxl import load_workbook

    out = tmp_path / "edited.xlsx"
    edits = {
        "C2": patch.CellEdit(7.5),                        # a formula cell: its formula stays
        "D2": patch.CellEdit("new <text>", style="0"),    # a new cell in an existing row
        "A60": patch.CellEdit(3.0, formula="SUM(A2:A3)"),   # a new row below the others
        "B55": patch.CellEdit("", style="0"),              # an empty styled cell
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
    out = patch.edit_cells(xml, {"A1": patch.CellEdit("h", array="A1:B3"),
                                 "A3": patch.CellEdit("x", style="3"),
                                 "B3": patch.CellEdit(4.0, style="3")})
    assert patch.array_ranges(out) == ["A1:B3"]
    assert b'cm="1" t="str"><f t="array" ref="A1:B3">T(X)</f><v>h</v>' in out
    assert out.endswith(b'<row r="3"><c r="A3" s="3" t="inlineStr"><is><t xml:space="preserve">'
                        b'x</t></is></c><c r="B3" s="3"><v>4</v></c></row></sheetData>'
                        b'</worksheet>')
    shrunk = patch.edit_cells(out, {"A1": patch.CellEdit("h", array="A1:B1"), "A2": None,
                                    "B2": None, "A3": None, "B3": None})
    assert patch.array_ranges(shrunk) == ["A1:B1"]
    assert b'<row r="2" spans="1:2"><c r="A2" s="3"/><c r="B2" s="3"/></row>' in shrunk
    assert b'<row r="3"><c r="A3" s="3"/><c r="B3" s="3"/></row>' in shrunk


def test_edit_cells_puts_new_rows_before_between_and_after_the_others():
    """Rows to create go in order around the existing ones (however many), and the
    dimension grows to the cells written, not to a cleared one."""
    xml = (b'<worksheet><dimension ref="B3:B5"/><sheetData><row r="3"><c r="B3" s="1">'
           b'<v>3</v></c></row><row r="5"><c r="B5" s="1"><v>5</v></c></row></sheetData>'
           b'</worksheet>')
    edits = {f"A{r}": patch.CellEdit(float(r)) for r in (40, 1, 4, 2, 6, 30)}
    edits["C90"] = None                               # cleared where there is no cell
    out = patch.edit_cells(xml, edits)
    rows = [int(r) for r in re.findall(rb'<row r="(\d+)"', out)]
    assert rows == [1, 2, 3, 4, 5, 6, 30, 40, 90] and b'<row r="90"/>' in out
    assert b'<dimension ref="A1:B40"/>' in out        # not C90: nothing written there
    assert b'<row r="4"><c r="A4"><v>4</v></c></row>' in out
    assert b'<row r="5"><c r="B5" s="1"><v>5</v></c></row>' in out
