"""``xl-kpis build NEW --from BOOK``: nothing of the seller's book is lost, and the new book
agrees with itself the moment it is written."""

import pytest
import xlsxwriter
from click.testing import CliRunner

from bookfiles import add_table_column, copy, type_cells
from engines import (chart_cache_mismatches, mismatches, openxml_audit, recompute_all,
                     require_tool)
from xl_kpis.book import schema as S
from xl_kpis.xlsx.refs import a1
from xl_kpis.book.rebuild import build_from
from xl_kpis.book.refresh import read_inputs, refresh
from xl_kpis.book.sheets import copy_sheets
from xl_kpis.cli import main


@pytest.fixture
def seller(small, tmp_path):
    """The small book as a seller left it: a gross margin of 55 %, a Benchmarks limit and a
    CLV example edited, a video's content type changed, a Notes column in Orders, a sheet
    of their own (made in another book, copied in) — and refreshed."""
    book = copy(small, tmp_path / "seller.xlsx")
    margin = S.plan().cell("setting.Margin")
    good = S.input_cells()["bench.roas.good"]
    aov = S.input_cells()["clv_example.0.aov"]
    type_cells(book, "Start", {a1(margin.row, margin.col): 0.55})
    type_cells(book, "Benchmarks", {a1(good.row, good.col): 2.5, a1(aov.row, aov.col): 65})
    videos = S.TABLE["Videos"]
    type_cells(book, "Videos", {a1(videos.first_data_row, videos.col("Content type")):
                                "challenge"})
    add_table_column(book, "Orders", "Notes", ["gift wrap", None, "call first"])
    own = tmp_path / "own.xlsx"
    wb = xlsxwriter.Workbook(own)
    ws = wb.add_worksheet("My plan")
    ws.write("A1", "Next month", wb.add_format({"bold": True}))
    ws.write_number("B1", 1200)
    wb.close()
    copy_sheets(own, book, ["My plan"])
    assert refresh(book).kept == []
    return book


def test_nothing_is_lost(seller, tmp_path):
    out = tmp_path / "fresh.xlsx"
    r = build_from(seller, out)
    tables, settings = read_inputs(seller)
    assert read_inputs(out) == (tables, settings)
    assert settings["Margin"] == 0.55 and settings["bench.roas.good"] == 2.5
    assert settings["clv_example.0.aov"] == 65
    assert r.extra_columns == {"Orders": ["Notes"]} and r.copied.sheets == ["My plan"]
    assert r.not_carried == [] and r.rows["Orders"] == 8
    from openpyxl import load_workbook
    wb = load_workbook(out)
    assert wb.sheetnames[-1] == "My plan" and wb["My plan"]["B1"].value == 1200
    notes = [row[-1].value for row in wb["Orders"].iter_rows(min_row=4, max_row=7)]
    assert notes == ["Notes", "gift wrap", None, "call first"]
    assert wb["Orders"].tables["Orders"].ref.startswith("A4:")


def test_the_new_book_agrees_with_itself(seller, tmp_path):
    """Its cached values are what pycel computes, its charts cache their cells, a refresh
    changes nothing, and Excel 365 would open it cleanly."""
    require_tool("pycel")
    out = tmp_path / "fresh.xlsx"
    build_from(seller, out)
    assert mismatches(recompute_all(out)) == {}
    assert chart_cache_mismatches(out) == []
    r = refresh(out)
    assert r.changed == 0 and r.kept == []
    assert openxml_audit(out) == []


def test_cli(seller, tmp_path):
    out = tmp_path / "fresh.xlsx"
    r = CliRunner().invoke(main, ["build", str(out), "--from", str(seller)])
    assert r.exit_code == 0, r.output
    assert "your columns in Orders: Notes" in r.output
    assert "your sheets, copied as they are: My plan" in r.output
    assert "8 Orders" in r.output
    # a cell of the seller's own on a template sheet is named (it has no place in a fresh
    # layout)
    type_cells(seller, "KPIs", {"J5": 1})
    r = CliRunner().invoke(main, ["build", str(tmp_path / "again.xlsx"), "--from", str(seller)])
    assert r.exit_code == 0
    assert "not carried (a cell of your own on a template sheet): KPIs!J5" in r.output
