"""Importing TikTok exports into a workbook: parse, deduplicate, append, refresh."""

import csv
import datetime as dt
import hashlib
import zipfile
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from engines import lo_convert, mismatches, recompute_all, require_tool
from xl_kpis.book import build_workbook, importer, schema as S
from xl_kpis.xlsx import books
from xl_kpis.xlsx.refs import a1
from xl_kpis.book.importer import REPEATED, import_export, key_value
from xl_kpis.book.refresh import BookLocked
from xl_kpis.imports import ExportFormatError
from xl_kpis.imports.synth import write_order_export
from bookfiles import copy, parts

DATA = Path(__file__).parent / "data" / "exports"
ORDERS_US = DATA / "orders_us.csv"


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def table_rows(path, table):
    wb = CalamineWorkbook.from_path(str(path), load_tables=True)
    t = wb.get_table_by_name(table)
    return [dict(zip(t.columns, r)) for r in t.to_python()]


def leftovers(folder):
    """Scratch files an import left beside the book."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


def test_orders_into_the_empty_template(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    r = import_export("orders", ORDERS_US, book)
    [t] = r.tables
    assert (t.table, t.added, t.skipped, t.first_row) == ("Orders", 4, [(2, "description row")], 5)
    assert r.refresh is not None and r.refresh.rows["Orders"] == 4
    rows = table_rows(book, "Orders")
    assert [x["Order ID"] for x in rows] == ["576461234567890123", "576461234567890123",
                                            "5764612345678901239", "576461234567890124"]
    # computed columns hold their values: a cancelled order is not counted
    assert [x["Counted order"] for x in rows] == [rows[0]["Order ID"], rows[1]["Order ID"], "",
                                                  rows[3]["Order ID"]]
    assert rows[0]["Counted sales"] == 22.5
    assert rows[0]["Buyer message"] == '=HYPERLINK("http://x")'
    assert leftovers(tmp_path) == []


def test_reimporting_adds_nothing_and_does_not_write(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    import_export("orders", ORDERS_US, book)
    before, mtime = digest(book), book.stat().st_mtime_ns
    r = import_export("orders", ORDERS_US, book)
    assert r.added == 0 and r.refresh is None
    assert (r.tables[0].unchanged, r.updated, r.tables[0].skipped) == (4, 0, [(2, "description row")])
    assert digest(book) == before and book.stat().st_mtime_ns == mtime


def _export_with(tmp_path, extra):
    """orders_us.csv with rows appended (each a copy of data line 3 with changes)."""
    with open(ORDERS_US, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    for changes in extra:
        row = list(rows[2])
        for h, v in changes.items():
            row[header.index(h)] = v
        rows.append(row)
    out = tmp_path / "orders.csv"
    with open(out, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    return out


def test_duplicates_within_the_export_and_lines_sharing_a_key(template, tmp_path):
    src = _export_with(tmp_path, [{},                                          # identical line
                                  {"SKU Subtotal After Discount": "11.25"}])   # same key
    book = copy(template, tmp_path / "b.xlsx")
    r = import_export("orders", src, book)
    [t] = r.tables
    assert t.added == 5 and [x for _, x in t.skipped] == ["description row", REPEATED]
    subtotals = [x["SKU subtotal"] for x in table_rows(book, "Orders")]
    assert subtotals.count(22.5) == 1 and 11.25 in subtotals
    again = import_export("orders", src, book)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5)
    assert [x for _, x in again.tables[0].skipped] == ["description row", REPEATED]


def test_an_overlapping_export_adds_only_the_new_lines(demo, tmp_path):
    book = copy(demo, tmp_path / "d.xlsx")
    n = len(table_rows(book, "Orders"))
    import_export("orders", ORDERS_US, book)
    src = _export_with(tmp_path, [{"Order ID": "576461234567890999\t",
                                   "Buyer Message": "=1+1"}])
    r = import_export("orders", src, book)
    assert r.added == 1 and r.unchanged == 4 and r.updated == 0
    rows = table_rows(book, "Orders")
    assert len(rows) == n + 5 and rows[-1]["Buyer message"] == "=1+1"


def test_ads_fixtures_go_in(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    reports = [import_export("ads", DATA / f, book) for f in
               ("ads_campaign_usd.csv", "ads_api_fields.csv", "ads_breakdown_country.csv")]
    assert [r.added for r in reports] == [2, 1, 2]     # "(1.50)": a negative cost is refused
    assert reports[2].tables[0].dropped == ["breakdown"]
    rows = table_rows(book, "Campaigns")
    assert len(rows) == 5 and "1790123456789012345" in [x["Ad ID"] for x in rows]
    assert rows[0]["Date"] == dt.date(2026, 7, 18) and rows[0]["Cost"] == 1234.5
    for f in ("ads_campaign_usd.csv", "ads_api_fields.csv", "ads_breakdown_country.csv"):
        assert import_export("ads", DATA / f, book).added == 0


def test_studio_fills_videos_and_brand_in_one_go(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    r = import_export("studio", DATA / "studio_en", book, year=2026)
    assert [(t.table, t.added) for t in r.tables] == [("Videos", 2), ("Brand", 2)]
    assert ("Viewers.csv", "no target table") in r.not_imported
    assert any("partial month" in n for n in r.tables[1].notes)
    videos, brand = table_rows(book, "Videos"), table_rows(book, "Brand")
    assert videos[0]["Title"] == '=HYPERLINK("http://evil")' and videos[0]["Views"] == 100
    assert [b["Period"] for b in brand] == [dt.date(2025, 12, 1), dt.date(2026, 1, 1)]
    assert import_export("studio", DATA / "studio_en", book, year=2026).added == 0


def test_what_the_seller_typed_is_never_overwritten(tmp_path):
    link = "https://www.tiktok.com/@shop/video/7300000000000000001"
    book = tmp_path / "b.xlsx"
    build_workbook(book, tables={
        "Videos": {"video_link": [link], "content_type": ["tutorial"], "views": [5],
                   "saves": [7]},
        "Brand": {"period": [dt.date(2025, 12, 1)], "brand_mentions": [42],
                  "followers_start": [1]}})
    r = import_export("studio", DATA / "studio_en", book, year=2026)
    assert [(t.table, t.added, len(t.updated)) for t in r.tables] == [("Videos", 1, 1),
                                                                       ("Brand", 1, 0)]
    videos, brand = table_rows(book, "Videos"), table_rows(book, "Brand")
    # the export's views replace the book's; what only the seller types stays
    assert (videos[0]["Content type"], videos[0]["Views"], videos[0]["Saves"]) == \
        ("tutorial", 100, 7)
    # the export starts on 30 December: the book's December is kept whole
    assert (brand[0]["Brand mentions"], brand[0]["Followers start"]) == (42, 1)
    assert "in the middle of 2025-12" in r.tables[1].skipped[-1][1]
    assert brand[1]["Period"] == dt.date(2026, 1, 1)


def test_refuses_a_book_open_in_excel(template, tmp_path):
    book = copy(template, tmp_path / "open.xlsx")
    (tmp_path / "~$open.xlsx").write_bytes(b"owner")
    before = digest(book)
    with pytest.raises(BookLocked, match="open in Excel"):
        import_export("orders", ORDERS_US, book)
    assert digest(book) == before and leftovers(tmp_path) == []


def test_a_failure_leaves_the_book_as_it_was(template, tmp_path, monkeypatch):
    book = copy(template, tmp_path / "b.xlsx")
    before = digest(book)

    def broken(*args, **kwargs):
        raise books.BookFormatError("disk full, say")

    monkeypatch.setattr(importer, "refresh", broken)
    with pytest.raises(books.BookFormatError):
        import_export("orders", ORDERS_US, book)
    assert digest(book) == before and leftovers(tmp_path) == []
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(ExportFormatError):
        import_export("orders", bad, book)
    with pytest.raises(ExportFormatError):
        import_export("ads", ORDERS_US, book)                # an order export is no ads report
    assert digest(book) == before


def test_xlsm_keeps_its_macros(tmp_path):
    book = tmp_path / "b.xlsm"
    build_workbook(book)
    with zipfile.ZipFile(book) as z:
        vba = z.read("xl/vbaProject.bin")
    assert import_export("orders", ORDERS_US, book).added == 4
    with zipfile.ZipFile(book) as z:
        assert z.read("xl/vbaProject.bin") == vba


@pytest.mark.parametrize("value, kind, expected", [
    (" 576461234567890123\t", "id", "576461234567890123"),
    (576461234.0, "id", "576461234"),
    ("", "text", None),
    (None, "date", None),
    (dt.datetime(2026, 7, 1), "date", dt.date(2026, 7, 1)),
    (dt.date(2026, 7, 1), "date", dt.date(2026, 7, 1)),
    (46204.0, "date", dt.date(2026, 7, 1)),
    (46204.5, "datetime", dt.datetime(2026, 7, 1, 12)),
    (dt.datetime(2026, 7, 1, 9, 30, 14, 999_800), "datetime", dt.datetime(2026, 7, 1, 9, 30, 15)),
])
def test_key_values(value, kind, expected):
    assert key_value(value, kind) == expected


def test_an_independent_engine_agrees_after_imports(demo, tmp_path):
    """pycel recomputes every formula of the book after imports: no cached value differs."""
    require_tool("pycel")
    book = copy(demo, tmp_path / "d.xlsx")
    src = tmp_path / "orders.csv"
    write_order_export(src, 150, seed=3)
    reports = [import_export("orders", src, book), import_export("orders", ORDERS_US, book),
               import_export("ads", DATA / "ads_api_fields.csv", book)]
    assert [r.added for r in reports] == [150, 4, 1]
    assert all(r.kept == [] for r in reports)
    assert mismatches(recompute_all(book)) == {}


# --- charts --------------------------------------------------------------------------------

C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"


def charts(path):
    """``{part: bytes}`` of the workbook's charts."""
    return {k: v for k, v in parts(path).items() if k.startswith("xl/charts/chart")}


def roas_ranges(rows):
    """The ROAS chart's (categories, values) when Campaigns has ``rows`` rows: its Campaign
    and ROAS columns from the first data row to the last (schema.plan)."""
    t = S.TABLE["Campaigns"]
    first, last = t.first_data_row + 1, t.first_data_row + rows
    cols = [a1(0, t.col(h))[:-1] for h in ("Campaign", "ROAS")]
    return tuple(f"Campaigns!${c}${first}:${c}${last}" for c in cols)


def series_ranges(path):
    """(categories, values) of every chart series, as openpyxl's chart reader sees them."""
    return [((s.cat.strRef or s.cat.numRef).f, s.val.numRef.f)
            for ws in load_workbook(path).worksheets for chart in ws._charts
            for s in chart.series]


def test_the_roas_chart_follows_imported_campaigns(demo, tmp_path):
    book = copy(demo, tmp_path / "d.xlsx")
    n = len(table_rows(book, "Campaigns"))
    before = charts(book)
    assert roas_ranges(n) in series_ranges(book)
    assert import_export("ads", DATA / "ads_campaign_usd.csv", book).added == 2
    ranges = series_ranges(book)
    assert roas_ranges(n + 2) in ranges and roas_ranges(n) not in ranges
    after = charts(book)
    # the ROAS chart grew; the funnel (its counts changed) has new cached points, the others
    # are as they were
    changed = [k for k in before if before[k] != after[k]]
    assert len(changed) == 2 and roas_ranges(n)[1].encode() in before[changed[0]]
    assert b"Dashboard!$O$6:$O$8" in before[changed[1]]


def test_libreoffice_plots_the_grown_chart_ranges(demo, tmp_path):
    """LibreOffice opens the imported book and reads the grown ranges: saved again, the
    ROAS chart has them, with one point per Campaigns row (the book's cache had ``n``)."""
    require_tool("soffice")
    book = copy(demo, tmp_path / "d.xlsx")
    n = len(table_rows(book, "Campaigns"))
    assert import_export("ads", DATA / "ads_campaign_usd.csv", book).added == 2
    [saved] = lo_convert(book, "xlsx", tmp_path / "lo")
    series = [s for xml in charts(saved).values()
              for s in SafeET.fromstring(xml).iter(f"{C}ser")]
    [roas] = [s for s in series if s.find(f"{C}val//{C}f").text == roas_ranges(n + 2)[1]]
    assert roas.find(f"{C}cat//{C}f").text == roas_ranges(n + 2)[0]
    assert roas.find(f"{C}val//{C}ptCount").get("val") == str(n + 2)


def test_which_columns_hold_a_value_after_an_import():
    """A column holds a value when the book or any added or updated row has one (a key
    first met in a later row too); blanks, ``<5`` read as blank (None) and spaces do not."""
    book = {"Orders": {"order_id": ["1", ""], "refund": ["", None]}, "Videos": {"views": []}}
    rows = [{"order_id": "2", "refund": None, "note": " "},
            {"order_id": "3", "refund": None}, {"order_id": "4", "delivered": None}]
    plan = importer._Plan(importer.TableReport("Orders"), rows,
                          {0: {"refund": 2.5}, 1: {"buyer": "x"}}, [])
    has = importer._has_values(book, [plan])
    assert has == {"Orders": {"order_id": True, "refund": True, "buyer": True},
                   "Videos": {"views": False}}
    plan.updates.clear()
    assert importer._has_values(book, [plan])["Orders"] == {"order_id": True, "refund": False}
