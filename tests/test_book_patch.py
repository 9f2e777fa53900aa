"""Cached-value patching inside the zip: nothing else changes, writes are atomic."""

import hashlib
import os
import zipfile

import pytest
from python_calamine import CalamineWorkbook

from xl_kpis.book import patch, scan
from xl_kpis.xlsx import books
from bookfiles import kill_while_writing, parts, roas_book


@pytest.fixture
def book(tmp_path):
    return roas_book(tmp_path / "b.xlsx")


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
    assert scan.read_formulas(out)["Data"]["C4"] == ("ROAS(A4,B4)", "text & <more>")


def test_unknown_sheet_and_not_a_workbook(book, tmp_path):
    with pytest.raises(books.BookFormatError, match="no sheet named 'Nope'"):
        patch.patch_workbook(book, tmp_path / "x.xlsx", {"Nope": {"A1": 1}})
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(books.BookFormatError, match="not an .xlsx"):
        scan.read_formulas(bad)


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
