"""Cleaning rules shared by the export parsers (xl_kpis/imports/clean.py).

Sources of the known values: "§A"/"§B"/"§D" are sections of
docs/tiktok-exports.md; "brief" is the cleaning-rule list
of the imports task; "ours" marks a convention of this module.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import zipfile

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpis.imports.clean import (ExportFormatError, clean_text, convert_rows,
                                   is_total_row, normalise_header, open_table, parse_code,
                                   parse_date, parse_datetime, parse_id, parse_number, sniff, split_header)

# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize("raw, expected", [
    ("Cost (USD)", ("cost", "USD")),                       # §A "Cost (USD)"
    ("CPC (THB)", ("cpc", "THB")),                         # §A "CPC (THB)"
    ("CTR (%)", ("ctr", "%")),                             # §A "CTR (%)"
    ("Cost (ZAR)", ("cost", "ZAR")),                       # §A ginoleeswan/hero test file
    ("Clicks (destination)", ("clicks (destination)", None)),  # §A: meaningful, kept
    ("Gross revenue (Shop)", ("gross revenue (shop)", None)),  # §A: meaningful, kept
    ("Video views (P25)", ("video views (p25)", None)),     # §A historical alias, kept
    ("Video views at 25%", ("video views at 25%", None)),   # §A: a % inside the name stays
    ("Cost (usd)", ("cost (usd)", None)),                   # brief: only UPPERCASE codes are units
    ("\ufeffDate", ("date", None)),                         # §D: UTF-8 BOM on the first header
    ("Campaign\u00a0name", ("campaign name", None)),        # brief: NBSP → space
    ("  Ad   group\tname ", ("ad group name", None)),       # brief: whitespace collapsed
    ("CAMPAIGN NAME", ("campaign name", None)),             # brief: case-insensitive
    ("(USD)", ("(usd)", None)),                             # ours: a bare unit is not a name
    (None, ("", None)),
])
def test_split_header(raw, expected):
    assert split_header(raw) == expected


def test_normalise_header_is_split_header_name():
    assert normalise_header("Total complete payment value (EUR)") == "total complete payment value"


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("raw, expected", [
    ("<5", None),                  # §A low-volume cells
    ("--", None),                  # §A "--" means empty
    ("", None), ("   ", None),     # brief
    ("undefined", None),           # §D "undefined" string
    ("N/A", None), ("n/a", None),  # brief
    ("-", None),                   # ours: a lone dash is never a number
    (None, None),
    ("1.23%", 0.0123),             # §A percentages
    ("-0.5%", -0.005),
    ("100%", 1.0),
    ("$1,234.50", 1234.5),         # §A currency symbols in cells; brief US separators
    ("1,234.50", 1234.5),
    ("1,234,567", 1234567.0),
    ("€1.234", 1.234),             # brief: "." is always the decimal point, never a thousands separator
    ("£12", 12.0), ("¥300", 300.0), ("₫15000", 15000.0), ("฿99.5", 99.5),
    ("R 100.00", 100.0), ("R50", 50.0),   # §A ZAR accounts
    ("USD 12.50", 12.5), ("12.50 USD", 12.5), ("THB12", 12.0),  # brief: code prefix/suffix
    ("(12.50)", -12.5), ("($12.50)", -12.5),  # brief: accounting negatives
    ("-$3.00", -3.0), ("$-3.00", -3.0),
    ("\t42\t", 42.0),              # §B stray tabs
    ("\u00a012\u00a0", 12.0),      # NBSP padding
    ("1.5e3", 1500.0), (".5", 0.5), ("3.", 3.0),
    (7, 7.0), (2.5, 2.5),          # xlsx numbers from calamine
])
def test_parse_number(raw, expected):
    assert parse_number(raw) == pytest.approx(expected) if expected is not None else parse_number(raw) is None


@pytest.mark.parametrize("raw", [
    "1.234,50",     # brief: European separators refused, not guessed
    "12,5",         # decimal comma
    "1,23",         # not a thousands group
    "12;5", "abc", "1 234", "$$12", "USD $12", "(-12)", "--5", "12%%", "$5%",
    "nan", "inf", "1_000", True, float("nan"), dt.date(2026, 1, 1),
])
def test_parse_number_rejects(raw):
    with pytest.raises(ValueError):
        parse_number(raw)


def test_parse_number_error_names_column_line_and_value():
    # brief: "a ValueError naming the column, row and value"
    with pytest.raises(ValueError, match=r"^line 7, column 'Cost \(USD\)': '12,5' is not a number$"):
        parse_number("12,5", column="Cost (USD)", line=7)


@given(cents=st.integers(min_value=-10**13, max_value=10**13),
       style=st.sampled_from(["plain", "dollar", "code", "parens"]))
def test_money_round_trip(cents, style):
    """Formatting an amount TikTok-style and parsing it back gives the same value to the cent."""
    amount = abs(cents) / 100
    text = {"plain": f"{amount:,.2f}", "dollar": f"${amount:,.2f}", "code": f"USD {amount:,.2f}",
            "parens": f"({amount:,.2f})"}[style]
    negative = cents < 0 or style == "parens"
    if cents < 0 and style != "parens":
        text = "-" + text
    value = parse_number(text)
    assert round(value * 100) == (-abs(cents) if negative else abs(cents))


@given(st.decimals(min_value=-1000, max_value=1000, places=2))
def test_percent_round_trip(x):
    assert parse_number(f"{x}%") == pytest.approx(float(x) / 100, abs=1e-12)


# --------------------------------------------------------------------------- text and ids


@pytest.mark.parametrize("raw, expected", [
    ('=HYPERLINK("http://x")', '=HYPERLINK("http://x")'),  # brief: formulas stay literal text
    ("\tjane.doe ", "jane.doe"),                             # §B stray tabs
    ("\u00a0Cap\u00a0", "Cap"),                              # NBSP
    ("Leave at door\nthanks", "Leave at door\nthanks"),     # inner line breaks kept
    ("--", "--"),                                            # brief: text is text exactly
    ("", None), ("\t ", None), (None, None),
    (12345.0, "12345"), (1.5, "1.5"), (False, "FALSE"),     # ours: xlsx numbers in text columns
])
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("576461234567890123\t", "576461234567890123"),    # §B 18-digit id with stray tab
    ("5764612345678901234", "5764612345678901234"),    # brief: 19-digit ids kept exact
    ("'576461234567890123", "576461234567890123"),     # ours: Excel's text-forcing apostrophe
    (576461234.0, "576461234"),                         # small float ids are exact
    (2.0 ** 53, "9007199254740992"),
    (12, "12"), ("", None), (None, None),
])
def test_parse_id(raw, expected):
    assert parse_id(raw) == expected


@pytest.mark.parametrize("raw", [
    5.764612345678902e+17,          # brief: a float > 2**53 has lost digits
    "Platform unique order ID.",    # §B description row
    "576-461", "12.5", 12.5, True,
])
def test_parse_id_rejects(raw):
    with pytest.raises(ValueError):
        parse_id(raw)


@pytest.mark.parametrize("raw", ["5.76461E+17", "5,76461E+17", "5.76461e17", "6E+17"])
def test_an_id_excel_saved_in_scientific_notation_is_refused_with_why(raw):
    """Excel shows an 18-digit id as 5.76461E+17 and saves a CSV so (a comma in a decimal-comma
    locale): the digits are gone, and the message says so and what to do."""
    with pytest.raises(ValueError, match="scientific notation.*digits are lost.*as downloaded"):
        parse_id(raw, "Order ID", 3)


@pytest.mark.parametrize("raw", ["576-461", "12.5", "E+17", "5.7E+", "12a"])
def test_other_non_ids_are_only_not_ids(raw):
    with pytest.raises(ValueError, match=r"is not an id$"):
        parse_id(raw)


def test_parse_code_keeps_text_ids():
    assert parse_code("ad-7") == "ad-7"
    assert parse_code("1790123456789012345") == "1790123456789012345"
    with pytest.raises(ValueError, match="digits lost"):
        parse_code(1.790123456789012e18)


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize("raw, expected", [
    ("2026-07-18", dt.datetime(2026, 7, 18)),                          # §A ISO
    ("2026-07-18 00:00:00", dt.datetime(2026, 7, 18)),                 # §A ISO with time
    ("2026-07-18T09:05", dt.datetime(2026, 7, 18, 9, 5)),
    ("2026/07/18", dt.datetime(2026, 7, 18)),
    ("12/15/2025 9:30:33 AM", dt.datetime(2025, 12, 15, 9, 30, 33)),   # §B US dates
    ("12/15/2025 9:30:33 PM", dt.datetime(2025, 12, 15, 21, 30, 33)),
    ("12/15/2025 12:00:00 AM", dt.datetime(2025, 12, 15, 0, 0)),        # midnight
    ("12/15/2025 12:30:00 PM", dt.datetime(2025, 12, 15, 12, 30)),      # noon
    ("12/15/2025", dt.datetime(2025, 12, 15)),                          # brief
    ("1/2/2026 23:59", dt.datetime(2026, 1, 2, 23, 59)),
    ("12/15/2025 9:30:33 AM\t", dt.datetime(2025, 12, 15, 9, 30, 33)),  # §B stray tab
    (45000, dt.datetime(2023, 3, 15)),                                   # Excel serial
    (45000.75, dt.datetime(2023, 3, 15, 18, 0)),
    (dt.datetime(2026, 1, 1, 8), dt.datetime(2026, 1, 1, 8)),            # calamine datetime
    (dt.date(2026, 1, 1), dt.datetime(2026, 1, 1)),
    ("", None), ("--", None), (None, None),
])
def test_parse_datetime(raw, expected):
    assert parse_datetime(raw) == expected


@pytest.mark.parametrize("raw", [
    "15/12/2025",            # day-first: refused, not guessed
    "2025-02-29", "13/01/2025", "12/15/25", "12/15/2025 13:00 PM", "2026-07-18 9:5",
    "yesterday", True, dt.time(9, 30), -1,
])
def test_parse_datetime_rejects(raw):
    with pytest.raises(ValueError, match="is not a date"):
        parse_datetime(raw)


@pytest.mark.parametrize("raw, expected", [
    ("2026-07-18 00:00:00", dt.date(2026, 7, 18)),   # a daily report's midnight is a date
    ("2026-07-18", dt.date(2026, 7, 18)),
    ("2026-07-18 10:00", dt.datetime(2026, 7, 18, 10)),
])
def test_parse_date(raw, expected):
    got = parse_date(raw)
    assert got == expected and type(got) is type(expected)


# --------------------------------------------------------------------------- total rows and row conversion


@pytest.mark.parametrize("cells, expected", [
    (["Total of 12 results", "", "1,234"], True),   # §A footer
    (["", "", "Total", "5"], True),                  # brief: first non-empty cell
    (["Totals:", "5"], True),
    (["TOTAL", "5"], True),
    (["Totally Tubular", "5"], False),               # a campaign name, not a total
    (["Summer Sale", "Total"], False),
    (["", None, ""], False),
    ([12.0, "Total"], False),
])
def test_is_total_row(cells, expected):
    assert is_total_row(cells) == expected


def test_convert_rows_skips_with_reasons():
    rows = [(2, ["a", "1"]), (3, ["", ""]), (4, ["b", "x"]), (5, ["Total of 2 results", "1"]), (6, ["c"])]
    out, skipped = convert_rows(rows, {"name": (0, "text", "Name"), "n": (1, "number", "N")})
    assert out == [{"name": "a", "n": 1.0}, {"name": "c", "n": None}]   # short row: missing cell is blank
    assert skipped == [(4, "line 4, column 'N': 'x' is not a number"), (5, "total row")]


def test_convert_rows_many_rows():
    """Thousands of rows (converted in chunks): repeated cells, bad cells, hooks, in row order."""
    rows = []
    for line in range(2, 3002):
        if line % 500 == 0:
            cells = ["Total of 3000 results", "", ""]
        elif line % 250 == 0:
            cells = ["", " ", "\t"]                                  # blank: dropped silently
        else:
            cells = [f"shop {line % 3}", "x" if line % 97 == 0 else f"{line % 7}.5", "12/15/2025 9:30:33 PM"
                     if line % 2 else f"{line % 12 + 1}/1/2026"]
        rows.append((line, cells))
    columns = {"shop": (0, "text", "Shop"), "n": (1, "number", "N"), "when": (2, "datetime", "When")}
    seen = []

    def pre(line, cells):
        seen.append(line)
        return "pre" if line == 1001 else None

    def post(line, cells, row):
        row["line"] = line
        return "post" if row["shop"] == "shop 1" and line < 20 else None

    out, skipped = convert_rows(rows, columns, pre=pre, post=post)
    assert seen == [line for line, cells in rows if cells[0].startswith("shop")]
    assert skipped[:3] == [(4, "post"), (7, "post"), (10, "post")]
    assert (97, "line 97, column 'N': 'x' is not a number") in skipped
    assert (500, "total row") in skipped and (1001, "pre") in skipped
    assert [line for line, _ in skipped] == sorted(line for line, _ in skipped)
    assert len(out) + len(skipped) == 3000 - 6                      # 6 blank rows
    assert out[0] == {"shop": "shop 2", "n": 2.5, "when": dt.datetime(2026, 3, 1), "line": 2}
    assert out[1] == {"shop": "shop 0", "n": 3.5, "when": dt.datetime(2025, 12, 15, 21, 30, 33), "line": 3}
    assert all(row["n"] == row["line"] % 7 + 0.5 for row in out)
    assert all(row["when"] == (dt.datetime(2025, 12, 15, 21, 30, 33) if row["line"] % 2
                               else dt.datetime(2026, row["line"] % 12 + 1, 1)) for row in out)


def test_convert_rows_does_not_mix_equal_numbers_of_other_types():
    """Workbook cells: 1, True and 1.0 are equal in Python but do not convert alike."""
    rows = [(2, [1]), (3, [True]), (4, [1.0]), (5, [-0.0]), (6, [0.0]), (7, ["1"])]
    out, skipped = convert_rows(rows, {"n": (0, "number", "N")})
    assert [row["n"] for row in out] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert str(out[2]["n"]) == "-0.0" and str(out[3]["n"]) == "0.0"
    assert skipped == [(3, "line 3, column 'N': True is not a number")]


@pytest.mark.parametrize("text", [
    "12/15/2025 9:30:33 PM", "\t1/2/2026 11:59:59 PM\u00a0", "2026-07-18", "2026-07-18T09:05",
    "12/15/2025 9:30PM", "2026-07-18 10:00:00.250", "", "--", "undefined", "15/12/2025", "12/15/2025\x00",
    "déc. 2025",
])
def test_convert_rows_dates_as_parse_datetime(text):
    """Text dates are parsed vectorised in convert_rows; they come out as parse_datetime's."""
    out, skipped = convert_rows([(2, ["a", text]), (3, ["b", "1/1/2026"])], {"when": (1, "datetime", "When")})
    try:
        expected = parse_datetime(text)
    except ValueError as e:
        assert skipped == [(2, f"line 2, column 'When': {e}")]
        assert out == [{"when": dt.datetime(2026, 1, 1)}]
    else:
        assert out == [{"when": expected}, {"when": dt.datetime(2026, 1, 1)}] and not skipped


# --------------------------------------------------------------------------- files


def _xlsx_bytes() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Campaign name", "Cost"])
    ws.append(["A", 1.5])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rewrite_member(xlsx: bytes, member: str, fn) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            z.writestr(info.filename, fn(data) if info.filename == member else data)
    return out.getvalue()


def _lol_bomb(sheet_xml: bytes) -> bytes:
    """A billion-laughs DTD in front of the worksheet, with the entity used in a cell."""
    dtd = '<!DOCTYPE worksheet [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i + 1} "' + f"&lol{i if i else ''};" * 10 + '">' for i in range(9)) + "]>"
    text = sheet_xml.decode()
    text = text.replace("<t>A</t>", "<t>&lol9;</t>")
    return ('<?xml version="1.0" encoding="UTF-8"?>' + dtd + text.split("?>", 1)[-1]).encode()


BAD_FILES = {
    # brief: a file that is not what it claims → ExportFormatError naming the file
    "empty.csv": (b"", "empty"),
    "picture.xlsx": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "neither a CSV"),
    "truncated.xlsx": (None, "truncated or damaged"),
    "encrypted.xlsx": (bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 1024, "encrypted"),
    "bomb.xlsx": (None, "DTD"),
    "zipbomb.xlsx": (None, "zip bomb"),
    "latin1.csv": ("Campaign name,Cost\nCafé ünïcode,1\n".encode("latin-1") + b"\xe9" * 10, "not UTF-8"),
    "html.xlsx": (b"<html><body>Session expired</body></html>", "no recognisable header"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_export_format_error(tmp_path, name):
    data, message = BAD_FILES[name]
    if name == "truncated.xlsx":
        data = _xlsx_bytes()[:1500]
    elif name == "bomb.xlsx":
        data = _rewrite_member(_xlsx_bytes(), "xl/worksheets/sheet1.xml", _lol_bomb)
    elif name == "zipbomb.xlsx":
        data = _rewrite_member(_xlsx_bytes(), "xl/worksheets/sheet1.xml", lambda d: d + b" " * (30 << 20))
    path = tmp_path / name
    path.write_bytes(data)
    from xl_kpis.imports import parse_ads

    started = time.perf_counter()
    with pytest.raises(ExportFormatError) as err:
        parse_ads(path)
    assert time.perf_counter() - started < 2.0          # refused quickly, nothing expanded
    text = str(err.value)
    assert name in text and message in text and "\n" not in text
    assert isinstance(err.value, ValueError)


def test_xml_bomb_is_also_refused_by_calamine(tmp_path):
    """Second line of defence: calamine does not expand custom entities either."""
    from python_calamine import CalamineError, CalamineWorkbook

    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_rewrite_member(_xlsx_bytes(), "xl/worksheets/sheet1.xml", _lol_bomb))
    with pytest.raises(CalamineError):
        CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()


def test_sniff_by_content_not_extension(tmp_path):
    (tmp_path / "report.xlsx").write_text("Campaign name,Cost\nA,1\n", encoding="utf-8")
    (tmp_path / "report.csv").write_bytes(_xlsx_bytes())
    assert sniff(tmp_path / "report.xlsx") == "csv"
    assert sniff(tmp_path / "report.csv") == "xlsx"
    with pytest.raises(ExportFormatError, match="is a folder"):
        sniff(tmp_path)


@pytest.mark.parametrize("encoding, text", [
    ("utf-8-sig", "Campaign name,Cost\nA,1\n"),        # §D BOM
    ("utf-8", "Campaign name;Cost\nA;1\n"),            # ours: semicolon lists
    ("utf-16", "Campaign name\tCost\nA\t1\n"),         # ours: Excel "Unicode text"
])
def test_csv_encodings_and_delimiters(tmp_path, encoding, text):
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode(encoding))
    rows = list(open_table(path).rows)
    assert rows == [(1, ["Campaign name", "Cost"]), (2, ["A", "1"])]


def test_xlsx_rows_have_excel_line_numbers(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B3"], ws["C3"], ws["B4"], ws["C4"] = "Campaign name", "Cost", "A", 2
    wb.create_sheet("Other")
    path = tmp_path / "x.xlsx"
    wb.save(path)
    rows = [(n, cells) for n, cells in open_table(path).rows if any(cells)]
    assert rows == [(3, ["Campaign name", "Cost"]), (4, ["A", 2.0])]
