"""The seller's flow, end to end: the book stays whole and current at every step.

From the empty template: import an order export, an Ads Manager report and a Studio
zip; type a content type on some videos (the cells written as Excel saves them); change
the gross margin; import a second week (new products, an overlapping re-export, new
videos) and type a new content type; refresh.  After every step:

* every formula cell caches what pycel computes with every formula forced to recompute;
* every chart caches exactly the points of its cells;
* ``xl-kpis report --json`` is the KPIs sheet;
* nothing was kept (no formula here is the seller's own), no command asked for
  ``build --from``;
* the Dashboard LibreOffice renders has no chart that is empty or labelled ``0`` where
  its cells hold data (the words of the PDF page, left of the chart data);

and at the end Excel 365 would open the book cleanly (openxml-audit).  The same flow
runs on an .xlsm (rendered at the end only, to keep the test short).

The exports are tests/data/flow/ (see its README.md).
"""

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookfiles import kpi_differences, sheet_kpis, type_cells
from engines import (chart_cache_mismatches, lo_convert, mismatches, openxml_audit,
                     pdf_page_texts, pdf_words, recompute_all, require_tool)
from xl_kpis.book import build_workbook
from xl_kpis.book import schema as S
from xl_kpis.xlsx.refs import a1
from xl_kpis.book.refresh import read_inputs
from xl_kpis.cli import main

FLOW = Path(__file__).parent / "data" / "flow"


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output          # 0: done, nothing kept (5 would say so)
    assert "build --from" not in r.output and "kept:" not in r.output
    return r


def studio_zip(folder: Path, dest: Path) -> Path:
    """A Studio export as TikTok hands it over: the CSV files in a zip."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
    return dest


def type_content_types(book: Path, types: dict[str, str]) -> None:
    """Type content types on the videos with these links, as the seller does in Excel."""
    t = S.TABLE["Videos"]
    links = read_inputs(book)[0]["Videos"]["video_link"]
    cells = {}
    for i, link in enumerate(links):
        for tail, kind in types.items():
            if link and link.endswith(tail):
                cells[a1(t.first_data_row + i, t.col("Content type"))] = kind
    assert len(cells) == len(types)
    type_cells(book, "Videos", cells)


def set_margin(book: Path, margin: float) -> None:
    c = S.plan().cell("setting.Margin")
    type_cells(book, "Start", {a1(c.row, c.col): margin})


# --- the checks -----------------------------------------------------------------------

def check_values(book: Path) -> None:
    assert mismatches(recompute_all(book)) == {}
    assert chart_cache_mismatches(book) == []
    report = json.loads(CliRunner().invoke(main, ["report", str(book), "--json"]).output)
    assert kpi_differences(report, sheet_kpis(book)) == set()


def chart_categories(book: Path) -> dict[str, list[str]]:
    """The category labels each Dashboard chart's cells hold (non-blank), by chart title."""
    from openpyxl import load_workbook

    wb = load_workbook(book, data_only=True)
    out = {}
    for spec in S.plan().charts:
        sheet, first, col, _ = spec.categories
        ws = wb[sheet]
        labels = []
        for row in ws.iter_rows(min_row=first + 1, min_col=col + 1, max_col=col + 1):
            v = row[0].value
            if v in (None, ""):
                if sheet == S.DASH:
                    break          # the end of a chart-data block
                continue
            labels.append(v)
        out[spec.title] = labels
    return out


def check_dashboard(book: Path, tmp: Path) -> None:
    """The rendered Dashboard: every chart with data shows its categories' labels, none is
    labelled 0 (the words of the PDF page left of the chart-data block)."""
    (pdf,) = lo_convert(book, "pdf", tmp)
    page = next(i for i, t in enumerate(pdf_page_texts(pdf), 1)
                if t.lstrip().startswith("Dashboard"))
    words = pdf_words(pdf, page)
    edge = min(x0 for w, x0, *_ in words if w == "Chart")     # "Chart data (formulas ...)"
    shown = {w for w, x0, _, x1, _ in words if x1 < edge}
    for title, labels in chart_categories(book).items():
        assert set(title.split()) <= shown, f"chart {title!r} is not drawn"
        # a date axis shows months as "mmm yy"
        texts = [v.strftime("%b") if isinstance(v, dt.date) else str(v) for v in labels
                 if not isinstance(v, (int, float))]
        assert "0" not in [str(v) for v in labels], f"chart {title!r} has a category 0"
        for label in texts[:3]:
            assert label.split()[0] in shown, f"{title!r}: {label!r} is not shown"


def check(book: Path, tmp: Path, render: bool) -> None:
    check_values(book)
    if render:
        check_dashboard(book, tmp)


# --- the flow -----------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["xlsx", "xlsm"])
def test_the_seller_s_flow(tmp_path, ext):
    require_tool("pycel")
    require_tool("soffice")
    require_tool("pdftotext")
    render = ext == "xlsx"
    book = tmp_path / f"shop.{ext}"
    build_workbook(book)
    check(book, tmp_path / "0", render)

    run("import", "orders", FLOW / "orders_week1.csv", "--into", book)
    check(book, tmp_path / "1", render)
    run("import", "ads", FLOW / "ads_report.csv", "--into", book)
    check(book, tmp_path / "2", render)
    run("import", "studio", studio_zip(FLOW / "studio_week1", tmp_path / "studio1.zip"),
        "--into", book, "--year", "2026")
    check(book, tmp_path / "3", render)
    content = S.plan().cell("content")
    before = content_types_shown(book)
    assert before == ["(blank)"]                 # five videos, no content type yet

    # the seller types content types on three videos: the content table grows from one
    # row to three, its chart data and chart with it
    type_content_types(book, {"0001": "tutorial", "0002": "unboxing", "0004": "challenge"})
    run("refresh", book)
    check(book, tmp_path / "4", render)
    assert sorted(content_types_shown(book)) == ["(blank)", "challenge", "tutorial",
                                                 "unboxing"]
    top = products_shown(book)

    # ... changes the gross margin
    set_margin(book, 0.5)
    run("refresh", book)
    check(book, tmp_path / "5", render)
    assert read_inputs(book)[1]["Margin"] == 0.5

    # ... imports the second week: new products, six lines already in the book, new videos
    run("import", "orders", FLOW / "orders_week2.csv", "--into", book)
    run("import", "studio", studio_zip(FLOW / "studio_week2", tmp_path / "studio2.zip"),
        "--into", book, "--year", "2026")
    check(book, tmp_path / "6", render)
    assert products_shown(book) != top
    # ... and types a content type no video had, and one more
    type_content_types(book, {"0006": "behind the scenes", "0007": "review",
                              "0003": "tutorial", "0005": "review"})
    run("refresh", book)
    check(book, tmp_path / "7", True)
    assert sorted(content_types_shown(book)) == ["behind the scenes", "challenge", "review",
                                                 "tutorial", "unboxing"]
    assert openxml_audit(book) == []
    assert content.row == S.plan().cell("content").row      # nothing moved it


def content_types_shown(book: Path) -> list[str]:
    return chart_categories(book)["Revenue by content type"]


def products_shown(book: Path) -> list[str]:
    return chart_categories(book)["Top products by revenue"]


def test_the_flow_data_is_what_its_readme_says():
    readme = (FLOW / "README.md").read_text(encoding="utf-8")
    for name in ("orders_week1.csv", "orders_week2.csv", "ads_report.csv", "studio_week1",
                 "studio_week2"):
        assert (FLOW / name).exists() and name in readme
    assert re.search(r"seed", readme)
