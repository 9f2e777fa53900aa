"""A value as a cell's XML holds it (xl_kpis/xlsx/values.py): the ``t`` and ``<v>`` of every
kind of value, read back by openpyxl (an independent reader) from a sheet written with them."""

from __future__ import annotations

import io
import math
import zipfile

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xl_kpis.xlsx import errors as E
from xl_kpis.xlsx import values as V


@pytest.mark.parametrize("value, t, v", [
    # ECMA-376 ST_CellType: no t for a number, b for a boolean (1/0), e for an error, str for
    # a formula's text; <v> is the number's text (the shortest repr reading back the same
    # float: 1/3 to 16 digits) and text XML-escaped.
    (2.0, None, "2"), (0.1, None, "0.1"), (1 / 3, None, "0.3333333333333333"), (7, None, "7"),
    (1e16, None, "1e+16"), (1e15, None, "1000000000000000.0"), ("#N/A", "e", "#N/A"), ("", "str", ""), (None, "str", ""),
    ("a<b", "str", "a&lt;b"), (True, "b", "1"), (False, "b", "0"),
    (float("nan"), "e", "#DIV/0!"), (float("inf"), "e", "#NUM!"),
    (E.Text("#N/A"), "str", "#N/A"), ("#FIELD", "str", "#FIELD"),
])
def test_encode_value(value, t, v):
    assert V.encode_value(value) == (t, v)
    tb, vb = V.encode_value_b(value)
    assert (tb.decode() if tb else None, vb.decode()) == (t, v)


def test_every_excel_error_is_written_as_an_error():
    # a cached #FIELD! or #SPILL! is an error cell (t="e"), not the text "#FIELD!"
    for e in E.ERRORS:
        assert V.encode_value(e)[0] == "e" and V.encode_value_b(e)[0] == b"e"
        assert V.constant_xml(e) == ("e", f"<v>{e}</v>")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_reads_back_as_itself(x):
    t, v = V.encode_value(x)
    assert t is None and float(v) == x and V.decode_value(v, t) == x
    assert V.encode_value_b(x) == (None, v.encode())


@given(st.text())
def test_text_reads_back_as_itself(s):
    t, v = V.encode_value(E.Text(s))
    assert t == "str" and V.decode_value(v, t) == s


def test_xml_text_escapes():
    # Excel's and XlsxWriter's ST_Xstring escapes: a control character as _xHHHH_, a literal
    # _xHHHH_ protected as _x005F_xHHHH_
    assert V.xml_text("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert V.xml_text("_x000D_") == "_x005F_x000D_" and V.xml_text("\x0b") == "_x000B_"


def _sheet_with(cells: dict[str, object]) -> openpyxl.Workbook:
    """A one-sheet workbook whose cells hold ``cells`` as :func:`constant_xml` writes them,
    loaded by openpyxl."""
    buf = io.BytesIO()
    wb = openpyxl.Workbook()
    wb.active.title = "S"
    wb.save(buf)
    with zipfile.ZipFile(buf) as z:
        files = {n: z.read(n) for n in z.namelist()}
    row = []
    for ref, value in cells.items():
        t, content = V.constant_xml(value)
        row.append(f'<c r="{ref}"' + (f' t="{t}"' if t else "") + f">{content}</c>")
    xml = files["xl/worksheets/sheet1.xml"].decode()
    head, _, tail = xml.partition("<sheetData")
    tail = tail[tail.index(">") + 1:]
    tail = tail[tail.index("</sheetData>"):] if "</sheetData>" in tail else tail
    files["xl/worksheets/sheet1.xml"] = (
        head + '<sheetData><row r="1">' + "".join(row) + "</row>" + tail).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return openpyxl.load_workbook(out)


def test_openpyxl_reads_each_kind_of_constant():
    text = 'a & <b> "c" _x0041_ \x01 '
    wb = _sheet_with({"A1": 2.5, "B1": 7, "C1": True, "D1": "#DIV/0!", "E1": text,
                      "F1": E.Text("#N/A"), "G1": float("inf")})
    ws = wb["S"]
    got = {c.coordinate: (c.data_type, c.value) for c in ws[1]}
    assert got["A1"] == ("n", 2.5) and got["B1"] == ("n", 7)
    assert got["C1"] == ("b", True)
    assert got["D1"] == ("e", "#DIV/0!") and got["G1"] == ("e", "#NUM!")
    assert got["F1"] == ("s", "#N/A")             # text, not the error
    # openpyxl reads an inline string's text as the XML holds it (it leaves the _xHHHH_
    # escapes as they are), so the escaped form is what it shows
    assert got["E1"] == ("s", V.xml_text(text).replace("&amp;", "&").replace("&lt;", "<")
                         .replace("&gt;", ">"))


def test_decode_value():
    # the <v> of each type as Excel writes it
    assert V.decode_value(None, None) == ""
    assert V.decode_value("1209", None) == 1209.0 and V.decode_value("0", "b") is False
    assert V.decode_value("#REF!", "e") == "#REF!"
    assert V.decode_value("&quot;x&quot; &amp; y", "str") == '"x" & y'
    assert math.isnan(V.decode_value("NaN", None))
