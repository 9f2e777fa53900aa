"""Opening a book and reading its parts (xl_kpis/xlsx/books.py), on books openpyxl and
XlsxWriter wrote (independent writers) and on files that are no book.

The attacks through the command line (zip bombs, entity bombs under a memory cap) are in
test_attacks.py.
"""

from __future__ import annotations

import zipfile

import openpyxl
import pytest
import xlsxwriter
from openpyxl.workbook.defined_name import DefinedName

from xl_kpis.xlsx import books as B


@pytest.fixture
def book(tmp_path):
    """A book with two sheets (one with a table), a workbook-level and a sheet-level name,
    written by openpyxl."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Start"
    other = wb.create_sheet("My data")
    other.append(["a", "b"])
    other.append([1, 2])
    other.add_table(openpyxl.worksheet.table.Table(displayName="Data", ref="A1:B2"))
    wb.defined_names["Rate"] = DefinedName("Rate", attr_text="Start!$B$6")
    ws.defined_names["Local"] = DefinedName("Local", attr_text="Start!$A$1")
    path = tmp_path / "book.xlsx"
    wb.save(path)
    return path


def test_sheets_tables_and_names(book):
    with B.open_book(book) as z:
        parts = B.sheet_parts(z)
        assert list(parts) == openpyxl.load_workbook(book).sheetnames == ["Start", "My data"]
        assert all(p in z.namelist() for p in parts.values())
        assert B.table_sheets(z) == {"Data": [parts["My data"]]}
        assert B.defined_names(z) == {"Rate": "Start!$B$6"}      # not the sheet's own name
        assert B.parse_xml(z, "xl/workbook.xml").tag == f"{{{B.NS['m']}}}workbook"


def test_a_book_xlsxwriter_wrote(tmp_path):
    path = tmp_path / "x.xlsx"
    with xlsxwriter.Workbook(path) as wb:
        wb.add_worksheet("KPIs").write("A1", 1)
        wb.add_worksheet("Bob's")
        wb.define_name("Months", "=KPIs!$A$1")
    with B.open_book(path) as z:
        assert list(B.sheet_parts(z)) == ["KPIs", "Bob's"]
        assert B.defined_names(z) == {"Months": "KPIs!$A$1"}


@pytest.mark.parametrize("content, message", [
    (b"just text", "not an .xlsx/.xlsm file"),
    # MS-CFB: an OLE2 compound file (encrypted .xlsx, legacy .xls) starts with D0 CF 11 E0
    (bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600, "password-protected"),
    (b"", "not an .xlsx/.xlsm file"),
])
def test_files_that_are_no_book(tmp_path, content, message):
    path = tmp_path / "bad.xlsx"
    path.write_bytes(content)
    with pytest.raises(B.BookFormatError, match=message):
        B.open_book(path)


def test_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(B.BookFormatError, match="no such file"):
        B.open_book(tmp_path / "none.xlsx")
    with pytest.raises(B.BookFormatError, match="is a folder"):
        B.open_book(tmp_path)


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_a_zip_without_a_workbook_part(tmp_path):
    path = _zip(tmp_path / "a.xlsx", {"hello.txt": b"hi"})
    with B.open_book(path) as z, pytest.raises(B.BookFormatError,
                                               match="a.xlsx: not an Excel workbook: missing"):
        B.sheet_parts(z)


@pytest.mark.parametrize("xml, why", [
    (b"<workbook", "ParseError"),
    (b'<!DOCTYPE w [<!ENTITY a "aaaa">]><workbook>&a;</workbook>', "EntitiesForbidden"),
])
def test_unsafe_or_broken_xml(tmp_path, xml, why):
    path = _zip(tmp_path / "b.xlsx", {"xl/workbook.xml": xml})
    with B.open_book(path) as z, pytest.raises(B.BookFormatError,
                                               match=f"b.xlsx: unsafe or broken XML .*{why}"):
        B.parse_xml(z, "xl/workbook.xml")


def test_a_sheet_pointing_outside_the_package(book, tmp_path):
    with zipfile.ZipFile(book) as z:
        members = {n: z.read(n) for n in z.namelist()}
    rels = members["xl/_rels/workbook.xml.rels"].decode()
    members["xl/_rels/workbook.xml.rels"] = rels.replace(
        'Target="/xl/worksheets/sheet1.xml"', 'Target="../../etc/passwd"').replace(
        'Target="worksheets/sheet1.xml"', 'Target="../../etc/passwd"').encode()
    path = _zip(tmp_path / "c.xlsx", members)
    with B.open_book(path) as z, pytest.raises(B.BookFormatError,
                                               match="c.xlsx: .*outside the package"):
        B.sheet_parts(z)


def test_a_damaged_part_is_one_line(book, tmp_path):
    data = bytearray(book.read_bytes())
    with zipfile.ZipFile(book) as z:
        info = z.getinfo("xl/workbook.xml")
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 2
    data[at:at + 8] = b"\xff" * 8                 # inside the deflated data
    path = tmp_path / "d.xlsx"
    path.write_bytes(bytes(data))
    with B.open_book(path) as z, pytest.raises(B.BookFormatError) as e:
        B.read_part(z, "xl/workbook.xml")
    assert str(e.value).startswith("d.xlsx: ") and "\n" not in str(e.value)
