"""Finding a worksheet's cells in its XML (:mod:`xl_kpis.book.scan`)."""

import zipfile

import pytest

from xl_kpis.book import scan
from xl_kpis.xlsx.books import BookFormatError

# A sheet as Excel writes one (hand-made): a formula with a cached number, a shared
# formula's parent and child, an array formula over A5:B6, a text formula (t="str") with
# an escaped quote, a styled constant, an empty styled cell.
SHEET = (b'<worksheet><sheetData>'
         b'<row r="1"><c r="A1" s="4"><f>SUM(B1:B2)</f><v>3</v></c>'
         b'<c r="B1"><v>1</v></c></row>'
         b'<row r="2"><c r="A2"><f t="shared" ref="A2:A3" si="0">B2*2</f><v>4</v></c>'
         b'<c r="B2" s="7"><v>2</v></c></row>'
         b'<row r="3"><c r="A3"><f t="shared" si="0"/><v>0</v></c><c r="B3" s="7"/></row>'
         b'<row r="5"><c r="A5" t="str"><f t="array" ref="A5:B6">T(&quot;x&quot;)</f>'
         b'<v>x</v></c></row>'
         b'</sheetData></worksheet>')


def test_a_formula_scan_finds_every_formula_cell_with_its_cached_value():
    found = scan.FormulaScan(SHEET)
    got = [(letters + str(row).encode(), formula, value)
           for _, _, _, _, _, formula, value, letters, row in found.cells]
    # by hand from SHEET: four formula cells; the shared child has no text
    assert got == [(b"A1", b"SUM(B1:B2)", b"3"), (b"A2", b"B2*2", b"4"), (b"A3", None, b"0"),
                   (b"A5", b'T(&quot;x&quot;)', b"x")]
    assert scan.unescape_formula(got[3][1]) == 'T("x")'
    text = SHEET.decode()
    assert [(ref, f, v, t) for ref, f, v, t in scan.formula_cells(text)] == [
        ("A1", "SUM(B1:B2)", "3", None), ("A2", "B2*2", "4", None), ("A3", None, "0", None),
        ("A5", 'T("x")', "x", "str")]


def test_array_ranges_styles_and_contents():
    assert scan.array_ranges(SHEET) == scan.array_ranges(SHEET.decode()) == ["A5:B6"]
    assert scan.cell_styles(SHEET) == {"A1": "4", "B2": "7", "B3": "7"}
    contents = scan.cell_contents(SHEET)
    assert contents["A3"] and contents["B1"] and not contents["B3"]


def test_a_formula_cell_without_a_good_address_is_refused():
    with pytest.raises(BookFormatError, match="no address"):
        scan.FormulaScan(b'<c s="1"><f>1+1</f><v>2</v></c>')
    with pytest.raises(BookFormatError, match="bad address"):
        scan.FormulaScan(b'<c r="a1"><f>1+1</f><v>2</v></c>')


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
        lazy = scan.SharedStrings(z)
        assert [lazy[i] for i in range(4)] == ["plain", "", "bold", "<a&b>"]


def test_a_shared_string_index_outside_the_table_is_refused(tmp_path):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/sharedStrings.xml", b"<sst><si><t>one</t></si></sst>")
    with zipfile.ZipFile(path) as z, pytest.raises(BookFormatError, match="holds 1"):
        scan.SharedStrings(z)[1]
