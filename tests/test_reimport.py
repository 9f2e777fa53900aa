"""Imports as sellers really re-run them: week after week, the book follows the latest export.

Scenarios with the exports of ``tests/data/reimport`` (hand-made, see its README): a second
order export with a cancellation, a refund and a changed amount; daily, undated and
period ads reports; two Studio exports with ``undefined``; and exports missing each optional
column.  After every import: the cached values equal what pycel computes with every formula
recomputed, the KPIs sheet says what ``report BOOK --json`` says (blank and null for what is
not measured), the messages say what changed and why, what the seller typed is intact, and
importing the same file again leaves the book byte-identical.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

from bookfiles import copy
from engines import lo_csv_sheets, mismatches, recompute_all, require_tool
from xl_kpis.book import importer, schema as S
from xl_kpis.book.append import append_rows
from xl_kpis.book.refresh import read_inputs, refresh
from xl_kpis.cli import main

DATA = Path(__file__).parent / "data" / "reimport"

# --- helpers --------------------------------------------------------------------------------

def cli(*args) -> str:
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def imported(kind: str, src: Path, book: Path, *extra) -> str:
    return cli("import", kind, src, "--into", book, "--no-progress", *extra)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kpi_sheet(book: Path) -> dict[str, tuple]:
    """KPI key → (value, rating) as the KPIs sheet holds them."""
    rows = CalamineWorkbook.from_path(str(book)).get_sheet_by_name(S.KPIS_SHEET).to_python()
    by_label = {k.label: key for key, k in S.KPIS.items()}
    return {by_label[r[0]]: (r[1], r[3]) for r in rows if r and r[0] in by_label}


def table_rows(book: Path, table: str) -> list[dict]:
    t = CalamineWorkbook.from_path(str(book), load_tables=True).get_table_by_name(table)
    return [dict(zip(t.columns, r)) for r in t.to_python()]


def rows_of(book: Path, table: str, **match) -> list[int]:
    """Indices of the table rows whose columns (by header) hold these values."""
    return [i for i, r in enumerate(table_rows(book, table))
            if all(r.get(h) == v for h, v in match.items())]


def seller_types(book: Path, table: str | None = None, rows: dict | None = None,
                 cells: dict | None = None) -> None:
    """What a seller does in Excel: type into some cells, and the book recalculates."""
    append_rows(book, {}, updates={table: rows} if table else None, cells=cells)
    refresh(book)


def kept_cells(book: Path, folder: Path) -> set[str]:
    """The formula cells a refresh keeps as they are, and says so (an array result whose
    size changed, and what reads it)."""
    r = refresh(book, out=folder / f"refreshed-{book.name}")
    return {f"{k.sheet}!{k.ref}" for k in r.kept}


def check(book: Path, pycel: bool = True) -> dict[str, tuple]:
    """What must hold after every import; returns the KPIs sheet."""
    if pycel:
        require_tool("pycel")
        assert set(mismatches(recompute_all(book))) <= kept_cells(book, book.parent)
    sheet = kpi_sheet(book)
    report = json.loads(cli("report", book, "--json"))
    for key, (value, _) in sheet.items():     # the report is the KPIs sheet, key by key
        if isinstance(value, (int, float)):
            assert report[key] == pytest.approx(value, rel=1e-9, abs=0.006), key
        else:                                   # blank (not measured) or an error: null
            assert report[key] is None, (key, report[key], value)
    for key, (value, rating) in sheet.items():
        if value == "":                 # not measured: no rating either ("weak" would lie)
            assert rating in ("", None), (key, rating)
    # the Dashboard's tiles show the KPIs sheet's values, blank included
    dash = CalamineWorkbook.from_path(str(book)).get_sheet_by_name(S.DASH).to_python()
    tiles = dict(zip(dash[3], dash[4]))
    assert {label: tiles[label] for label, _ in S.TILES} == \
        {label: sheet[key][0] for label, key in S.TILES}
    return sheet


def without(src: Path, header: str, folder: Path) -> Path:
    """A copy of a CSV export without one column."""
    with open(src, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    i = rows[0].index(header)
    out = folder / f"no {header.replace('/', ' ')} {src.name}"
    with open(out, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows([r[:i] + r[i + 1:] for r in rows])
    return out


# --- orders ---------------------------------------------------------------------------------

def test_orders_week_after_week(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    out = imported("orders", DATA / "orders_week1.csv", book)
    assert out.splitlines()[0] == ("Imported 11 order lines into Orders: 10 added, 0 updated,"
                                   " 0 unchanged, 1 skipped")
    # the orders run from 1 to 28 July: 28 days = 28 / (365.25 / 12) = 0.92 months
    assert read_inputs(book)[1]["PeriodMonths"] == 0.92
    assert "28 days, 0.92 months): the Start sheet's Period length (months) is now 0.92" \
        " (was 3)" in out
    sheet = check(book)
    # 7 orders, each amount once (hand sum of the Order Amount column of orders_week1.csv)
    assert sheet["orders"][0] == 7
    assert sheet["revenue"][0] == pytest.approx(44.99 + 19.99 + 29.95 + 58.00 + 35.00 + 61.03
                                                + 40.00)

    # the seller rates two orders (no export has ratings)
    rated = {i: {"rating": 5} for i in rows_of(book, "Orders", **{"Order ID": "576100100004"})}
    rated[rows_of(book, "Orders", **{"Order ID": "576100100007"})[0]] = {"rating": 4}
    seller_types(book, "Orders", rated)

    # a week later TikTok has cancelled 002, refunded part of 004, lowered 005's amount and
    # delivered 006; 008 and 009 are new, and one line of 009 is there twice
    out = imported("orders", DATA / "orders_week2.csv", book)
    lines = out.splitlines()
    assert lines[0] == ("Imported 12 order lines into Orders: 3 added, 6 updated, 1 unchanged,"
                        " 2 skipped")
    assert lines[1].startswith("  updated order 576100100002: status Shipped → Canceled,")
    assert "refund 0.00 → 19.99" in lines[1]
    assert "cancelled (blank) → 2026-07-16 10:00" in lines[1]
    assert lines[2] == ("  updated order 576100100004, SKU 1729000000000000001: cancel type"
                        " (blank) → Return/Refund, returned qty 0 → 1, refund 0.00 → 12.50")
    assert "  … and 3 more rows updated (" in out
    assert "  - skipped 1: repeated in the export" in lines
    assert "  - skipped 1: description row (line 2)" in lines
    rows = {(r["Order ID"], r["SKU ID"]): r for r in table_rows(book, "Orders")}
    assert rows[("576100100002", "1729000000000000003")]["Status"] == "Canceled"
    assert rows[("576100100005", "1729000000000000004")]["Order amount"] == 32.5
    assert rows[("576100100006", "1729000000000000002")]["Delivered"] == \
        dt.datetime(2026, 7, 30, 17, 0)
    assert [rows[("576100100004", s)]["Rating"] for s in ("1729000000000000001",
                                                           "1729000000000000004")] == [5, 5]
    assert rows[("576100100007", "1729000000000000003")]["Rating"] == 4
    assert len(rows) == 13
    sheet = check(book)
    # 002 cancelled: 8 orders; 001 and 003 (too old for this export) as they were
    assert sheet["orders"][0] == 8
    assert sheet["revenue"][0] == pytest.approx(44.99 + 29.95 + 58.00 + 32.50 + 61.03 + 40.00
                                                + 31.03 + 27.50)
    assert sheet["delivered"][0] == 5                   # 001, 003, 004, 006, 007
    assert sheet["reviews"][0] == 3 and sheet["review_rate"][0] == pytest.approx(3 / 5)
    # 1 July to 7 August: 38 days; the setting followed the data, so it follows it again
    assert read_inputs(book)[1]["PeriodMonths"] == 1.25
    assert "(38 days, 1.25 months): the Start sheet's Period length (months) is now 1.25" \
        " (was 0.92)" in out

    # the same export again: nothing changes, the file is not written
    before = digest(book)
    out = imported("orders", DATA / "orders_week2.csv", book)
    assert out.splitlines()[0] == ("Imported 12 order lines into Orders: 0 added, 0 updated,"
                                   " 10 unchanged, 2 skipped")
    assert "b.xlsx was not changed." in out and digest(book) == before

    # last week's export by mistake: its lines are older than the book's, nothing changes
    out = imported("orders", DATA / "orders_week1.csv", book)
    assert out.splitlines()[0] == ("Imported 11 order lines into Orders: 0 added, 0 updated,"
                                   " 4 unchanged, 7 skipped")
    assert f"  - skipped 6: {importer.OLDER}" in out.splitlines()
    assert digest(book) == before

    # the seller sets their own period length: imports keep it and say that it differs
    sheet_name, ref = importer._setting_cell(book, "PeriodMonths")
    seller_types(book, cells={sheet_name: {ref: 6}})
    out = imported("orders", DATA / "orders_week3.csv", book)
    assert out.splitlines()[0].startswith("Imported 3 order lines into Orders: 2 added,")
    assert ("(45 days, 1.48 months), but the Start sheet's Period length (months) is 6, typed"
            " by you: kept") in out
    assert read_inputs(book)[1]["PeriodMonths"] == 6
    check(book)


def test_delivered_orders_come_from_their_status_without_delivered_times(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    src = without(DATA / "orders_week2.csv", "Delivered Time", tmp_path)
    out = imported("orders", src, book)
    # Completed 004 and 007, Delivered 006
    assert ("note: the export has no Delivered Time column: 3 orders with the status Delivered"
            " or Completed count as delivered by their status (Delivered orders, Review rate):"
            " 576100100004, 576100100006, 576100100007") in out
    sheet = check(book)
    assert sheet["delivered"][0] == 3
    # nobody rated anything: the review rate is not measured, and its rating cell is blank
    assert sheet["review_rate"] == ("", "") or sheet["review_rate"][0] == ""
    assert "Review rate — no value in Rating (Orders)" in out


# --- ads ------------------------------------------------------------------------------------

def test_daily_ads_reports_update_the_days_they_share(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    out = imported("ads", DATA / "ads_daily_1.csv", book)
    assert out.splitlines()[0] == ("Imported 5 report rows into Campaigns: 4 added, 0 updated,"
                                   " 0 unchanged, 1 skipped")
    assert "  - read as blank: 1 cell '<5' in Clicks (destination) (line 3)" in out
    assert "  - read as blank: 4 cells '--' in Likes (lines 2, 3, 4, 5)" in out
    check(book)
    out = imported("ads", DATA / "ads_daily_2.csv", book)
    lines = out.splitlines()
    assert lines[0] == ("Imported 4 report rows into Campaigns: 2 added, 1 updated,"
                        " 1 unchanged, 0 skipped")
    assert lines[1] == ("  updated campaign Summer Sale / AG 1 on 2026-07-02: cost 130.50 →"
                        " 131.75, impressions 12,500 → 12,610, clicks 151 → 153, video views"
                        " 5,400 → 5,410, views 100% 950 → 951")
    sheet = check(book)
    # the costs of 1, 2 (final) and 3 July, from the two files by hand
    assert sheet["ad_cost"][0] == pytest.approx(120 + 40 + 131.75 + 42 + 125 + 41)
    # a day whose clicks were "<5" has no CTR of its own (blank), the others do
    ctr = {(r["Campaign"], r["Date"]): r["CTR"] for r in table_rows(book, "Campaigns")}
    assert ctr[("Always On", dt.date(2026, 7, 1))] == ""
    assert ctr[("Always On", dt.date(2026, 7, 2))] == pytest.approx(12 / 6300)
    # no likes in these reports: the per-campaign engagement rate is not measured, not 0 %
    assert {r["ER"] for r in table_rows(book, "Campaigns")} == {""}
    before = digest(book)
    imported("ads", DATA / "ads_daily_2.csv", book)
    assert digest(book) == before


def test_undated_totals_supersede_the_campaigns_totals(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    imported("ads", DATA / "ads_totals_1.csv", book)
    out = imported("ads", DATA / "ads_totals_2.csv", book)
    assert out.splitlines()[0] == ("Imported 3 report rows into Campaigns: 1 added, 2 updated,"
                                   " 0 unchanged, 0 skipped")
    assert "updated campaign Summer Sale (undated): cost 1,234.50 → 2,000.00" in out
    assert "updated campaign Always On (undated): cost 820.00 → 900.00" in out
    assert "replacing the book's undated totals of the same campaigns (give --period" in out
    assert "already in the book" not in out
    sheet = check(book)
    assert sheet["ad_cost"][0] == pytest.approx(2000 + 900 + 150)    # the second report's
    assert len(table_rows(book, "Campaigns")) == 3


def test_period_totals_by_file_name_title_row_and_flag(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    july = DATA / "Campaign_20260701_20260731_GMT+0.csv"
    out = imported("ads", july, book)
    assert "totals for 2026-07-01 to 2026-07-31 (from the file name), dated 2026-07-01" in out
    out = imported("ads", DATA / "Campaign_20260801_20260831_GMT+0.csv", book)
    assert out.splitlines()[0].startswith("Imported 2 report rows into Campaigns: 2 added,")
    out = imported("ads", DATA / "ads_titled.csv", book)
    assert "totals for 2026-09-01 to 2026-09-30 (from line 1)" in out
    out = imported("ads", DATA / "ads_totals_1.csv", book, "--period", "2026-10-01..2026-10-31")
    assert "totals for 2026-10-01 to 2026-10-31 (from --period)" in out
    spans = [(r["Campaign"], r["Date"], r["Period end"]) for r in table_rows(book, "Campaigns")]
    assert spans[:2] == [("Summer Sale", dt.date(2026, 7, 1), dt.date(2026, 7, 31)),
                         ("Always On", dt.date(2026, 7, 1), dt.date(2026, 7, 31))]
    assert len(spans) == 7 and spans[-1][1:] == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    sheet = check(book)
    assert sheet["ad_cost"][0] == pytest.approx(1234.5 + 820 + 766 + 80 + 300 + 1234.5 + 820)
    # July again: the same period, the same figures
    before = digest(book)
    out = imported("ads", july, book)
    assert "0 added, 0 updated, 2 unchanged" in out and digest(book) == before
    # daily rows inside a period already in the book would be counted twice: said so
    out = imported("ads", DATA / "ads_daily_1.csv", book)
    assert "4 added rows cover days that rows already in the book cover for the same" \
        " campaigns (Always On, Summer Sale)" in out


def test_period_flag_usage(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    for args in (["ads", DATA / "ads_totals_1.csv", "--period", "2026-07-31..2026-07-01"],
                 ["ads", DATA / "ads_totals_1.csv", "--period", "July"],
                 ["orders", DATA / "orders_week1.csv", "--period", "2026-07-01..2026-07-31"]):
        r = CliRunner().invoke(main, ["import", *map(str, args), "--into", str(book)])
        assert r.exit_code == 2 and "--period" in r.output
    out = imported("ads", DATA / "ads_daily_1.csv", book, "--period", "2026-07-01..2026-07-31")
    assert "--period not used: the report has a date column" in out


# --- Studio ---------------------------------------------------------------------------------

def test_studio_exports_two_weeks_apart(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    out = imported("studio", DATA / "studio_1", book, "--year", 2026)
    assert "  - read as blank: 31 cells 'undefined' in Overview.csv, Video Views (lines 8, 9," \
        " 10, 11, 12 …)" in out
    assert "  - read as blank: 1 cell 'undefined' in Content.csv, Total likes (line 3)" in out
    assert "note: Overview.csv: 42 dates without a year (lines 2-43) read as 2025-11-25 to" \
        " 2026-01-05, the last row in 2026 (--year)" in out
    assert "note: 2025-12: no Video Views on any of its 31 days in the export: left blank," \
        " not 0" in out
    assert "Profile visits and Profile visit rate come from the Studio overview's profile" \
        " views (Brand sheet)" in out
    sheet = check(book)
    brand = {r["Period"]: r for r in table_rows(book, "Brand")}
    december = brand[dt.date(2025, 12, 1)]
    # no views in December: its rates are not measured (blank), neither 0 nor #DIV/0!
    assert (december["Views"], december["ER"], december["Profile view rate"]) == ("", "", "")
    # Studio has no completed views: completion is not measured, and not rated "weak"
    assert sheet["completion"] == ("", "")
    assert "Video completion rate — no value in Completed views (Videos)" in out
    # profile views come from the Studio overview (the Videos have none), and say so
    assert sheet["pvr"][0] == pytest.approx(sum(r["Profile views"] for r in brand.values())
                                            / sum(r["Views"] or 0 for r in brand.values()))
    unit = {r[0]: r[2] for r in CalamineWorkbook.from_path(str(book)).get_sheet_by_name(
        S.KPIS_SHEET).to_python() if r}
    assert unit["Profile visit rate"] == "% of views (Brand: Studio overview)"

    # the seller gives the first video a content type and its saves
    [first] = rows_of(book, "Videos", Title="How to layer serum")
    seller_types(book, "Videos", {first: {"content_type": "tutorial", "saves": 40}})
    out = imported("studio", DATA / "studio_2", book, "--year", 2026)
    assert "Imported 4 videos into Videos: 1 added, 2 updated, 1 unchanged, 0 skipped" in out
    assert "  updated video 'How to layer serum': likes 120 → 150, comments 14 → 17, shares" \
        " 6 → 8, views 3,100 → 3,900" in out
    assert "  updated video 'Unboxing the tote': likes (blank) → 61" in out
    # the export starts on 20 December: December stays as the first export had it
    assert "Imported 2 rows into Brand: 0 added, 1 updated, 0 unchanged, 1 skipped" in out
    assert "  - skipped 1: the export starts on 2025-12-20, in the middle of 2025-12: the" \
        " 2025-12 already in the book is kept" in out
    videos = {r["Title"]: r for r in table_rows(book, "Videos")}
    assert (videos["How to layer serum"]["Content type"],
            videos["How to layer serum"]["Saves"]) == ("tutorial", 40)
    assert videos["Unboxing the tote"]["Views"] == 1800     # "undefined" erases nothing
    brand2 = {r["Period"]: r for r in table_rows(book, "Brand")}
    assert brand2[dt.date(2025, 12, 1)] == december
    # January: 1 to 19 January now (hand sums of studio_2's Overview: day i after 25 Nov
    # has 400 + 10 i views)
    assert brand2[dt.date(2026, 1, 1)]["Views"] == sum(400 + 10 * i for i in range(37, 56))
    check(book)
    before = digest(book)
    out = imported("studio", DATA / "studio_2", book, "--year", 2026)
    assert digest(book) == before and "b.xlsx was not changed." in out


def test_libreoffice_shows_what_is_not_measured_as_blank(template, tmp_path):
    """LibreOffice recomputes a cell whose cached value is blank, without our functions: the
    not-measured condition is plain Excel, so it shows blank there too (not #NAME?)."""
    require_tool("soffice")
    book = copy(template, tmp_path / "b.xlsx")
    imported("studio", DATA / "studio_1", book, "--year", 2026)
    shown = lo_csv_sheets(book, tmp_path / "lo", [S.KPIS_SHEET, "Brand"])
    kpis = {r[0]: r for r in shown[S.KPIS_SHEET] if r}
    assert kpis["Video completion rate"][1:4] == ["", "% of views", ""]
    assert kpis["Share of voice"][1] == ""
    brand = S.TABLE["Brand"]
    header = next(i for i, r in enumerate(shown["Brand"]) if r and r[0] == "Period")
    november, december, january = shown["Brand"][header + 1:header + 4]
    assert [december[brand.col(h)] for h in ("Views", "ER", "Profile view rate")] == [""] * 3
    assert all(m[brand.col("ER")].endswith("%") for m in (november, january))   # measured


# --- exports missing each optional column ---------------------------------------------------

def _optional(src: Path, required: set[str]) -> list[str]:
    with open(src, encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    return [h for h in header if h not in required]


MISSING = (
    [("orders", DATA / "orders_week2.csv", h) for h in
     _optional(DATA / "orders_week2.csv", {"Order ID"})]
    + [("ads", DATA / "ads_daily_1.csv", h) for h in
       _optional(DATA / "ads_daily_1.csv", {"Campaign name"})]
    + [("studio", DATA / "studio_1" / "Content.csv", h) for h in
       _optional(DATA / "studio_1" / "Content.csv", {"Video link", "Time"})]
)
#: The cases pycel also recomputes (one per kind of KPI input; the others check the sheet
#: against the report, which reads the same cached values).
PYCEL = {"Order Amount", "Buyer Username", "Conversions", "Total views"}


@pytest.fixture(scope="module")
def full_books(template, tmp_path_factory):
    """The KPIs sheet after importing each complete export into the empty template."""
    folder = tmp_path_factory.mktemp("full")
    out = {}
    for kind, src in {("orders", DATA / "orders_week2.csv"), ("ads", DATA / "ads_daily_1.csv"),
                      ("studio", DATA / "studio_1" / "Content.csv")}:
        book = copy(template, folder / f"{kind}.xlsx")
        imported(kind, src, book, *(["--year", 2026] if kind == "studio" else []))
        out[src] = kpi_sheet(book)
    return out


@pytest.mark.parametrize("kind, src, header", MISSING,
                         ids=[f"{k}-{h}" for k, _, h in MISSING])
def test_an_export_without_a_column(template, tmp_path, full_books, kind, src, header):
    book = copy(template, tmp_path / "b.xlsx")
    reduced = without(src, header, tmp_path)
    year = ["--year", 2026] if kind == "studio" else []
    out = imported(kind, reduced, book, *year)
    sheet = check(book, pycel=header in PYCEL)
    full = full_books[src]
    for key, (value, _) in sheet.items():
        # a KPI the column fed is blank, never a measured-looking 0 ...
        assert not (value == 0 and full[key][0] != 0), (key, value, full[key])
        # ... and the import names what is not measured
        if value == "" and full[key][0] != "":
            assert any(S.KPIS[key].label in line and "not measured" in line
                       for line in out.splitlines()), (key, out)
    before = digest(book)
    imported(kind, reduced, book, *year)
    assert digest(book) == before


def test_json_output_counts_are_integers(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    imported("orders", DATA / "orders_week1.csv", book)
    out = json.loads(imported("orders", DATA / "orders_week2.csv", book, "--json"))
    assert (out["added"], out["updated"], out["unchanged"], out["skipped"]) == (3, 6, 1, 2)
    [t] = out["tables"]
    assert t["skipped_reasons"] == {"description row": 1, importer.REPEATED: 1}
    assert t["changes"][0]["what"] == "order 576100100002"
    assert t["changes"][0]["fields"]["Status"] == ["Shipped", "Canceled"]
    assert out["settings"] == {"PeriodMonths": {"old": 0.92, "new": 1.25}}
    counts = [out[k] for k in ("added", "updated", "unchanged", "skipped")] + \
        [t[k] for k in ("read", "added", "updated", "unchanged", "skipped")]
    assert all(type(x) is int for x in counts)
