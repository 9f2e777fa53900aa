"""Appending rows to a workbook's tables inside the zip: only the table's parts change."""

import datetime as dt
import re
import zipfile
from xml.sax.saxutils import escape

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from engines import lo_convert, require_tool
from xl_kpis.book import build_workbook, schema as S
from xl_kpis.xlsx import books
from xl_kpis.book.append import VALIDATION_MARGIN, append_rows
from xl_kpis.xlsx.dates import to_serial
from xl_kpis.xlsx.refs import a1
from bookfiles import copy, parts

ORDERS, CAMPAIGNS, BRAND = S.TABLE["Orders"], S.TABLE["Campaigns"], S.TABLE["Brand"]
#: The last column of the Orders table and the first column right of the Campaigns table.
Z = a1(0, len(ORDERS.headers) - 1)[:-1]
BEYOND = a1(0, len(CAMPAIGNS.headers))[:-1]
CHART_F = "{http://schemas.openxmlformats.org/drawingml/2006/chart}f"
HOSTILE = ['=HYPERLINK("http://evil","x")', "=1+1", "+1", "@SUM(A1)", "<b>&amp;</b>",
           "tab\there", "a\x01b", "_x0041_", "  padded  ", "line\r\nbreak", "😀 emoji"]


def part_names(path, table="Orders"):
    """(sheet part, table part) of a table."""
    with zipfile.ZipFile(path) as z:
        sheet = books.sheet_parts(z)[table]
        for name in z.namelist():
            if name.startswith("xl/tables/") and f'displayName="{table}"' in z.read(name).decode():
                return sheet, name
    raise AssertionError(table)


def order(i, **extra):
    row = {"order_id": f"5764000000000{i:05d}", "sku_id": f"17290000000{i:08d}",
           "status": "Completed", "product": f"Tee {i}", "quantity": 2.0, "sku_subtotal": 19.5,
           "order_amount": 39.0, "created": dt.datetime(2026, 1, 2, 9, 30, 15),
           "buyer": "jane"}
    row.update(extra)
    return row


def calamine_rows(path, table="Orders"):
    wb = CalamineWorkbook.from_path(str(path), load_tables=True)
    t = wb.get_table_by_name(table)
    return [dict(zip(t.columns, r)) for r in t.to_python()]


def cells(xml, row):
    """``{column letters: (attributes, inner xml)}`` of a sheet row."""
    m = re.search(rf'<row r="{row}"[^>]*>(.*?)</row>', xml, re.S)
    assert m, row
    out = {}
    for c in re.finditer(r"<c ([^>]*?)(?:/>|>(.*?)</c>)", m.group(1), re.S):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', c.group(1)))
        out[re.match(r"[A-Z]+", attrs["r"]).group(0)] = (attrs, c.group(2) or "")
    return out


def letter(header, table=ORDERS):
    return a1(0, table.col(header))[:-1]


def test_only_the_tables_parts_change(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    before = parts(book)
    done = append_rows(book, {"Orders": [order(i) for i in range(3)]})
    after = parts(book)
    assert list(before) == list(after)                      # same members, same order
    sheet, table = part_names(book)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {sheet, table, "xl/workbook.xml"}     # print area grew
    assert done["Orders"].first_row == 5 and done["Orders"].rows == 3
    assert done["Orders"].ref == f"A4:{Z}7"
    t = after[table].decode()
    assert f'ref="A4:{Z}7"' in t and f'<autoFilter ref="A4:{Z}7"/>' in t
    assert before[table].decode().replace(f"A4:{Z}5", f"A4:{Z}7") == t
    assert f"Orders!$A$1:${Z}$7" in after["xl/workbook.xml"].decode()
    assert f'<dimension ref="A1:{Z}7"/>' in after[sheet].decode()


def test_the_blank_row_of_an_empty_table_is_filled_first(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    append_rows(book, {"Orders": [order(1)]})
    rows = calamine_rows(book)
    assert len(rows) == 1 and rows[0]["Order ID"] == "576400000000000001"
    append_rows(book, {"Orders": [order(2), order(3)]})
    rows = calamine_rows(book)
    assert [r["Product"] for r in rows] == ["Tee 1", "Tee 2", "Tee 3"]


def test_new_cells_have_the_right_types_styles_and_formulas(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    sheet, _ = part_names(book)
    styles = {k: a.get("s") for k, (a, _) in cells(parts(book)[sheet].decode(), 5).items()}
    append_rows(book, {"Orders": [order(1, delivered=None), order(2, quantity=3)]})
    xml = parts(book)[sheet].decode()
    new = cells(xml, 6)
    assert {k: a.get("s") for k, (a, _) in new.items()} == \
        {k: s for k, s in styles.items() if k in new}       # the template row's styles
    oid, qty, created = (new[letter(h)] for h in ("Order ID", "Quantity", "Created"))
    assert oid[0]["t"] == "inlineStr" and ">576400000000000002</t>" in oid[1]   # id as text
    assert "t" not in qty[0] and qty[1] == "<v>3</v>"
    assert created[1] == f"<v>{to_serial(dt.datetime(2026, 1, 2, 9, 30, 15))!r}</v>"
    assert letter("Delivered") not in new and letter("Rating") not in new      # None: no cell
    for c in ORDERS.computed:
        attrs, inner = new[letter(c.header)]
        assert inner == f"<f>{escape(ORDERS.formula(c.header)[1:])}</f>"  # no cached value
        assert "t" not in attrs


def test_an_independent_reader_sees_the_new_rows(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    rows = [order(i, delivered=dt.datetime(2026, 1, 7, 18, 0)) for i in range(5)]
    append_rows(book, {"Orders": rows,
                       "Campaigns": [{"date": dt.date(2026, 7, 1), "campaign": "A & B",
                                      "ad_id": 1790123456789012345, "cost": 12.5}]})
    got = calamine_rows(book)
    assert [(r["Order ID"], r["Quantity"], r["Created"], r["Delivered"]) for r in got] == [
        (r["order_id"], 2.0, r["created"], r["delivered"]) for r in rows]
    camp = calamine_rows(book, "Campaigns")
    assert camp[0]["Date"] == dt.date(2026, 7, 1) and camp[0]["Campaign"] == "A & B"
    assert camp[0]["Ad ID"] == "1790123456789012345" and camp[0]["Cost"] == 12.5


def test_thousands_of_rows_read_back_exactly(template, tmp_path):
    """New rows are built a few thousand at a time: values, blank cells and row numbers stay
    right across the chunks, also for numpy numbers and aware datetimes (wall time kept)."""
    book = copy(template, tmp_path / "b.xlsx")
    n = 10_000
    utc = dt.timezone.utc
    rows = [order(i, refund=np.float64(i) / 4, buyer_message=None if i < 5000 else f"m{i % 7}",
                  delivered=dt.datetime(2026, 1, 7, i % 24, tzinfo=utc) if i % 3 else None)
            for i in range(n)]
    append_rows(book, {"Orders": rows})
    got = calamine_rows(book)
    assert [(r["Order ID"], r["Refund"], r["Buyer message"], r["Delivered"]) for r in got] == [
        (r["order_id"], i / 4, r["buyer_message"] or "",
         r["delivered"].replace(tzinfo=None) if r["delivered"] else "")
        for i, r in enumerate(rows)]
    sheet, _ = part_names(book)
    xml = parts(book)[sheet].decode()
    assert re.findall(r'<row r="(\d+)"', xml) == [str(r) for r in range(1, 5 + n)]  # 1-4: top
    with zipfile.ZipFile(book) as z:
        assert z.getinfo(sheet).extract_version < 45     # no ZIP64 (Excel would repair it)


def test_text_that_looks_like_a_formula_stays_text(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    append_rows(book, {"Orders": [order(i, buyer_message=m) for i, m in enumerate(HOSTILE)]})
    sheet, _ = part_names(book)
    xml = parts(book)[sheet].decode()
    col = letter("Buyer message")
    for i in range(len(HOSTILE)):
        attrs, inner = cells(xml, 5 + i)[col]
        assert attrs["t"] == "inlineStr" and "<f" not in inner
    assert [r["Buyer message"] for r in calamine_rows(book)] == HOSTILE
    ws = load_workbook(book)["Orders"]                        # openpyxl: text, not formula
    got = [ws[f"{col}{5 + i}"] for i in range(len(HOSTILE))]
    assert all(c.data_type == "s" for c in got)
    assert got[0].value == HOSTILE[0] and got[1].value == "=1+1"


def test_appending_to_a_full_table_goes_after_its_last_row(demo, tmp_path):
    book = copy(demo, tmp_path / "d.xlsx")
    sheet, _ = part_names(book)
    old = parts(book)[sheet].decode()
    n = len(calamine_rows(book))
    last = ORDERS.first_data_row + n                         # 1-based last data row
    done = append_rows(book, {"Orders": [order(1), order(2)]})
    assert done["Orders"].first_row == last + 1
    new = parts(book)[sheet].decode()
    cut = old.index("</sheetData>")
    assert new.startswith(old[:cut].replace(f'<dimension ref="A1:{Z}{last}"/>',
                                            f'<dimension ref="A1:{Z}{last + 2}"/>'))
    styles = {k: a.get("s") for k, (a, _) in cells(old, last).items()}
    assert {k: a.get("s") for k, (a, _) in cells(new, last + 2).items()} == \
        {k: s for k, s in styles.items() if k in cells(new, last + 2)}
    assert len(calamine_rows(book)) == n + 2


def test_validations_grow_only_when_they_stop_short(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    sheet, _ = part_names(book)
    status = letter("Status")
    append_rows(book, {"Orders": [order(i) for i in range(100)]})
    assert f'sqref="{status}5:{status}5004"' in parts(book)[sheet].decode()
    append_rows(book, {"Orders": [order(i) for i in range(100, 6000)]})
    xml = parts(book)[sheet].decode()
    assert f'sqref="{status}5:{status}{6004 + VALIDATION_MARGIN}"' in xml
    assert len(re.findall(rf'sqref="[A-Z]+5:[A-Z]+{6004 + VALIDATION_MARGIN}"', xml)) == \
        len(re.findall(r"<dataValidation ", xml))


def test_xlsm_keeps_its_macros(tmp_path):
    book = tmp_path / "b.xlsm"
    build_workbook(book)
    vba = parts(book)["xl/vbaProject.bin"]
    append_rows(book, {"Orders": [order(1)]})
    assert parts(book)["xl/vbaProject.bin"] == vba and len(calamine_rows(book)) == 1


def _rewrite(book, name, change):
    """Replace the zip member ``name`` of ``book`` by ``change(its bytes)``."""
    data = parts(book)
    data[name] = change(data[name])
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as out:
        for member, b in data.items():
            out.writestr(member, b)


def _add_row(book, xml_row, table="Orders"):
    """Put a raw ``<row>`` at the end of a table's sheetData (as a seller's note)."""
    sheet, _ = part_names(book, table)
    _rewrite(book, sheet, lambda xml: xml.replace(b"</sheetData>",
                                                  xml_row.encode() + b"</sheetData>"))


def test_data_below_the_table_is_never_overwritten(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    _add_row(book, '<row r="7"><c r="A7" t="inlineStr"><is><t>my note</t></is></c></row>')
    before = book.read_bytes()
    with pytest.raises(books.BookFormatError, match="row 7 below table Orders"):
        append_rows(book, {"Orders": [order(i) for i in range(3)]})
    assert book.read_bytes() == before
    append_rows(book, {"Orders": [order(i) for i in range(2)]})     # rows 5-6: fits above
    sheet, _ = part_names(book)
    xml = parts(book)[sheet].decode()
    assert re.findall(r'<row r="(\d+)"', xml)[-3:] == ["5", "6", "7"] and "my note" in xml


def test_empty_rows_below_the_table_are_replaced(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    _add_row(book, '<row r="6" ht="30" customHeight="1"><c r="A6" s="14"/></row>'
                   '<row r="40"><c r="B40" t="inlineStr"><is><t>far below</t></is></c></row>')
    append_rows(book, {"Orders": [order(i) for i in range(3)]})
    sheet, _ = part_names(book)
    xml = parts(book)[sheet].decode()
    assert re.findall(r'<row r="(\d+)"', xml)[-4:] == ["5", "6", "7", "40"]
    assert "far below" in xml and len(calamine_rows(book)) == 3


def test_nothing_to_append_leaves_the_file_alone(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    mtime = book.stat().st_mtime_ns
    assert append_rows(book, {"Orders": []}) == {}
    assert book.stat().st_mtime_ns == mtime
    out = tmp_path / "copy.xlsx"
    append_rows(book, {}, out=out)
    assert out.read_bytes() == book.read_bytes()


def test_bad_rows_and_books_are_refused(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    before = book.read_bytes()
    with pytest.raises(KeyError, match="no input column"):
        append_rows(book, {"Orders": [{"order_id": "1", "breakdown": "US"}]})
    with pytest.raises(KeyError):
        append_rows(book, {"Nope": [{"x": 1}]})
    assert book.read_bytes() == before
    import xlsxwriter
    other = tmp_path / "other.xlsx"
    wb = xlsxwriter.Workbook(other)
    wb.add_worksheet("Orders").write("A1", 1)
    wb.close()
    with pytest.raises(books.BookFormatError, match="no table 'Orders'"):
        append_rows(other, {"Orders": [order(1)]})
    text = tmp_path / "text.xlsx"
    text.write_text("not a workbook")
    with pytest.raises(books.BookFormatError):
        append_rows(text, {"Orders": [order(1)]})


def test_a_book_another_writer_saved(template, tmp_path):
    """LibreOffice writes shared strings, other attributes and styles: appending still works."""
    require_tool("soffice")
    (tmp_path / "in").mkdir()
    book = copy(template, tmp_path / "in" / "b.xlsx")
    append_rows(book, {"Orders": [order(1)]})
    [saved] = lo_convert(book, "xlsx", tmp_path / "lo")
    done = append_rows(saved, {"Orders": [order(2, buyer_message="=1+1"), order(3)]})
    assert done["Orders"].first_row == 6
    rows = calamine_rows(saved)
    assert [r["Product"] for r in rows] == ["Tee 1", "Tee 2", "Tee 3"]
    assert rows[1]["Buyer message"] == "=1+1"


# --- charts over table columns -------------------------------------------------------------

def campaign(i):
    return {"date": dt.date(2026, 7, 1), "campaign": f"C{i}", "cost": 12.5}


def chart_parts(path):
    """``{part: bytes}`` of the workbook's charts."""
    return {k: v for k, v in parts(path).items() if k.startswith("xl/charts/chart")}


def series_ranges(path):
    """(categories, values) range of every chart series, as openpyxl's chart reader sees them."""
    out = []
    for ws in load_workbook(path).worksheets:
        for chart in ws._charts:
            for s in chart.series:
                out.append(((s.cat.strRef or s.cat.numRef).f, s.val.numRef.f))
    return out


def column_range(table, header, first, last):
    col = letter(header, table)
    return f"{table.sheet}!${col}${first}:${col}${last}"


def test_chart_ranges_over_a_table_column_follow_the_new_rows(demo, tmp_path):
    book = copy(demo, tmp_path / "d.xlsx")
    before = chart_parts(book)

    def ranges(table, headers, added=0):
        """The ranges of a chart over table columns (schema.plan: first to last data row)."""
        first = table.first_data_row + 1
        last = table.first_data_row + len(calamine_rows(demo, table.name)) + added
        return tuple(column_range(table, h, first, last) for h in headers)

    roas, followers = ("Campaign", "ROAS"), ("Period", "Followers end")
    old = series_ranges(book)
    assert ranges(CAMPAIGNS, roas) in old and ranges(BRAND, followers) in old
    append_rows(book, {"Campaigns": [campaign(i) for i in range(3)],
                       "Brand": [{"period": dt.date(2027, m, 1), "followers_end": 100 * m}
                                 for m in (1, 2)]})
    grown = {ranges(CAMPAIGNS, roas): ranges(CAMPAIGNS, roas, added=3),
             ranges(BRAND, followers): ranges(BRAND, followers, added=2)}
    assert series_ranges(book) == [grown.get(r, r) for r in old]
    after = chart_parts(book)
    changed = {k for k in before if before[k] != after[k]}
    assert len(changed) == 2                  # the three charts of Dashboard data: as they were
    for k in changed:                                     # only the formula text changed
        expected = before[k]
        for old_ranges, new_ranges in grown.items():
            for a, b in zip(old_ranges, new_ranges):
                expected = expected.replace(f">{a}<".encode(), f">{b}<".encode())
        assert after[k] == expected


def test_one_row_chart_ranges_of_the_template(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    before = chart_parts(book)
    cat, roas = letter("Campaign", CAMPAIGNS), letter("ROAS", CAMPAIGNS)
    # the template's Campaigns table has one blank data row, row 5
    assert (f"Campaigns!${cat}$5", f"Campaigns!${roas}$5") in series_ranges(book)
    append_rows(book, {"Campaigns": [campaign(0)]})        # fills the blank row: same range
    assert chart_parts(book) == before
    append_rows(book, {"Campaigns": [campaign(1), campaign(2)]})        # rows 6 and 7
    assert (f"Campaigns!${cat}$5:${cat}$7", f"Campaigns!${roas}$5:${roas}$7") in \
        series_ranges(book)


@pytest.mark.parametrize("ref, grown", [
    ("Campaigns!$AC$5:$AC${last}", "Campaigns!$AC$5:$AC${new}"),
    ("'Campaigns'!$AC$5:$AC${last}", "'Campaigns'!$AC$5:$AC${new}"),
    ("Campaigns!AC5:AC{last}", "Campaigns!AC5:AC{new}"),
    ("(Campaigns!$A$5:$A${last},Campaigns!$AC$5:$AC${last})",
     "(Campaigns!$A$5:$A${new},Campaigns!$AC$5:$AC${new})"),
    ("Campaigns!$AC$4:$AC${last}", None),                 # with the header row
    ("Campaigns!$AC$6:$AC${last}", None),                 # part of the column
    ("Campaigns!$AB$5:$AC${last}", None),                 # two columns
    (f"Campaigns!${BEYOND}$5:${BEYOND}${{last}}", None),   # right of the table
    ("Brand!$C$5:$C${last}", None),                       # a table that does not grow
])
def test_which_chart_ranges_grow(demo, tmp_path, ref, grown):
    book = copy(demo, tmp_path / "d.xlsx")
    last = CAMPAIGNS.first_data_row + len(calamine_rows(book, "Campaigns"))
    roas = column_range(CAMPAIGNS, "ROAS", CAMPAIGNS.first_data_row + 1, last)
    [part] = [k for k, v in chart_parts(book).items() if roas.encode() in v]
    ref = ref.format(last=last)
    _rewrite(book, part, lambda xml: xml.replace(roas.encode(), escape(ref).encode()))
    append_rows(book, {"Campaigns": [campaign(i) for i in range(3)]})
    with zipfile.ZipFile(book) as z:
        refs = [f.text for f in SafeET.fromstring(z.read(part)).iter(CHART_F)]
    assert refs[1] == (grown.format(new=last + 3) if grown else ref)   # values: 3 rows more


# --- rows updated in place ---------------------------------------------------------------------

def _without_rows(xml, rows):
    """A worksheet's XML with the given rows cut out."""
    for r in rows:
        xml = re.sub(rf'<row r="{r}"[^>]*>.*?</row>', "", xml, count=1, flags=re.S)
    return xml


def test_updating_rows_changes_only_their_cells(demo, tmp_path):
    book = copy(demo, tmp_path / "d.xlsx")
    first = ORDERS.first_data_row + 1                        # sheet row of the first data row
    old_rows = calamine_rows(book)
    blank = next(i for i, r in enumerate(old_rows) if i > 1 and r["Buyer message"] == ""
                 and r["Rating"] != "")
    before = parts(book)
    done = append_rows(book, {}, updates={"Orders": {
        0: {"status": "Canceled", "refund": 12.5},
        blank: {"buyer_message": '=HYPERLINK("x")', "rating": None}}})
    assert done == {}                                        # nothing appended
    after = parts(book)
    sheet, _ = part_names(book)
    assert {k for k in before if before[k] != after[k]} == {sheet}
    old, new = before[sheet].decode(), after[sheet].decode()
    changed = (first, first + blank)
    assert _without_rows(old, changed) == _without_rows(new, changed)    # every other row
    for r, cols in ((first, {"Status", "Refund"}), (first + blank, {"Buyer message", "Rating"})):
        was, now = cells(old, r), cells(new, r)
        keep = set(was) - {letter(h) for h in cols}
        assert {c: now[c] for c in keep} == {c: was[c] for c in keep}    # formulas too
        assert [k for k in now] == sorted(now, key=lambda c: (len(c), c))  # in column order
    # a new cell takes its column's style; an emptied one keeps its own, with no value
    last = first + len(old_rows) - 1
    assert cells(new, first + blank)[letter("Buyer message")][0]["s"] == \
        cells(old, last)[letter("Buyer message")][0]["s"]
    assert cells(new, first + blank)[letter("Rating")] == (
        {"r": f"{letter('Rating')}{first + blank}",
         "s": cells(old, first + blank)[letter("Rating")][0]["s"]}, "")
    rows = calamine_rows(book)
    assert (rows[0]["Status"], rows[0]["Refund"]) == ("Canceled", 12.5)
    assert rows[blank]["Buyer message"] == '=HYPERLINK("x")'       # text, not a formula
    assert rows[1:blank] == old_rows[1:blank]


def test_updates_and_appends_together_and_a_setting(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    append_rows(book, {"Orders": [order(1), order(2)]})
    done = append_rows(book, {"Orders": [order(3)]},
                       updates={"Orders": {1: {"status": "Canceled"}}},
                       cells={"Start": {"B8": 1.25}})
    assert done["Orders"].first_row == ORDERS.first_data_row + 3
    rows = calamine_rows(book)
    assert [r["Status"] for r in rows] == ["Completed", "Canceled", "Completed"]
    start = CalamineWorkbook.from_path(str(book)).get_sheet_by_name("Start").to_python()
    assert start[7][1] == 1.25
    with pytest.raises(books.BookFormatError, match="row 9 to update"):
        append_rows(book, {}, updates={"Orders": {4: {"status": "Shipped"}}})
    with pytest.raises(books.BookFormatError, match="no sheet 'Nope'"):
        append_rows(book, {}, cells={"Nope": {"A1": 1}})
