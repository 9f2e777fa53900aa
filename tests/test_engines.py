"""Built workbooks through engines nobody here wrote: pycel, LibreOffice, calamine.

Two workbooks are checked:

* a small one made here with XlsxWriter (a table ``Campaigns`` with a
  ``=ROAS([@Revenue],[@Cost])`` calculated column, ``SUM(Campaigns[Revenue])``,
  ``=CLV(...)``, a deliberate ``#DIV/0!``): it pins down the harness itself;
* the demo workbook of ``xl_kpis.book.build.build_workbook(path, demo=True)``,
  ``.xlsx`` and ``.xlsm``, built once per session.

Missing engines fail under CI and skip elsewhere (``engines.require_tool``).
"""

from __future__ import annotations

import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from engines import (
    ERROR_TEXTS, calamine_read_all, calamine_tables, cell_values, formula_cells,
    lo_convert, lo_csv_sheets, lo_display_problems, lo_keeps_cached, lo_recompute,
    mismatches,
    normalise, openxml_audit, pdf_page_texts, pdf_to_pngs, plant_cached_value, pycel_compiler,
    recompute_all, render_pdf_page, require_tool, same_value, udf_names_in,
)
from xl_kpis import udfs

pytestmark = pytest.mark.engines

UDF_NAMES = tuple(udfs.__all__)


# --- the small workbook --------------------------------------------------------------

SMALL_ROWS = [("Spring", 300, 100), ("Launch", 500, 0), ("Summer", 120, 60)]
SMALL_SHEETS = ["Campaigns", "KPIs"]
SMALL_COLUMNS = ["Campaign", "Revenue", "Cost", "ROAS"]


def make_small_workbook(path: Path) -> Path:
    """Formulas with the cached values our UDFs give, written by XlsxWriter."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Campaigns")
    ws.add_table(0, 0, len(SMALL_ROWS), 3, {
        "name": "Campaigns",
        "data": [list(r) for r in SMALL_ROWS],
        "columns": [{"header": "Campaign"}, {"header": "Revenue"}, {"header": "Cost"},
                    {"header": "ROAS", "formula": "=ROAS([@Revenue],[@Cost])"}],
    })
    # the calculated column again, now with cached values (B3/C3: cost 0 -> #DIV/0!)
    for i, (_, rev, cost) in enumerate(SMALL_ROWS, start=1):
        ws.write_formula(i, 3, "=ROAS(Campaigns[[#This Row],[Revenue]],"
                               "Campaigns[[#This Row],[Cost]])", None, udfs.ROAS(rev, cost))
    ws.write_string("F1", "Total revenue")
    ws.write_formula("G1", "=SUM(Campaigns[Revenue])", None, sum(r[1] for r in SMALL_ROWS))
    k = wb.add_worksheet("KPIs")
    k.write_row("A1", ["AOV", "Purchases", "Periods", "CLV", "ROAS of Launch"])
    k.write_row("A2", [50, 5, 1])
    k.write_formula("D2", "=CLV(A2,B2,C2)", None, udfs.CLV(50, 5, 1))
    k.write_formula("E2", "=ROAS(Campaigns!B3,Campaigns!C3)", None, udfs.ROAS(500, 0))
    k.write_formula("D3", "=D2*2", None, udfs.CLV(50, 5, 1) * 2)
    # a UDF returning a table, as a (CSE) array formula over A5:D8
    top = udfs.TOP_PRODUCTS([[r[0]] for r in SMALL_ROWS], [[r[1]] for r in SMALL_ROWS])
    k.write_array_formula("A5:D8", "{=TOP_PRODUCTS(Campaigns[Campaign],Campaigns[Revenue])}",
                          None, top[0][0])
    for i, row in enumerate(top):
        for j, v in enumerate(row):
            if i or j:
                k.write(4 + i, j, v)
    wb.close()
    return path


SMALL_ARRAY_CELLS = {f"KPIs!{c}{r}" for c in "ABCD" for r in range(5, 9)}
SMALL_FORMULA_CELLS = {"Campaigns!D2", "Campaigns!D3", "Campaigns!D4", "Campaigns!G1",
                       "KPIs!D2", "KPIs!E2", "KPIs!D3"} | SMALL_ARRAY_CELLS
SMALL_UDF_CELLS = SMALL_FORMULA_CELLS - {"Campaigns!G1", "KPIs!D3"}


@pytest.fixture(scope="session")
def small_book(tmp_path_factory) -> Path:
    return make_small_workbook(tmp_path_factory.mktemp("small") / "small.xlsx")


# --- the harness: values, comparison, tools -------------------------------------------

def test_same_value_rules():
    assert same_value(1.0, 1 + 1e-12) and same_value(3, 3.0) and same_value(0.0, 1e-13)
    assert not same_value(1.0, 1.0 + 1e-6) and not same_value(0.0, 1e-9)
    assert same_value(None, "") and same_value("", None)
    assert not same_value("", 0) and not same_value(None, 0)
    assert same_value("#DIV/0!", "#DIV/0!") and not same_value("#DIV/0!", "#VALUE!")
    assert not same_value(True, 1) and same_value(False, False)
    assert not same_value("3", 3)
    assert normalise(None) == "" and normalise(2) == 2.0


def test_udf_names_in_formula():
    assert udf_names_in("=IFERROR(ROAS(A1,B1),\"\")", UDF_NAMES) == {"ROAS"}
    assert udf_names_in("=SUM(A1:A3)", UDF_NAMES) == set()
    assert udf_names_in("=_xludf.LTV_CAC(A1,B1)+CLV(1,2,3)", UDF_NAMES) == {"LTV_CAC", "CLV"}
    # the Lite template's spelling (xl_kpis.officejs); names inside text are no calls
    assert udf_names_in('=_xldudf_ROAS(A1,B1)&"CTR(1,2)"', UDF_NAMES) == {"ROAS"}


def test_require_tool_fails_in_ci_and_skips_outside(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set.*no-such-engine"):
        require_tool("no-such-engine")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no-such-engine"):
        require_tool("no-such-engine")
    require_tool("python_calamine")             # present: returns quietly


def test_plugin_exposes_every_udf_under_its_lower_case_name():
    require_tool("pycel")
    import pycel_plugin

    assert set(pycel_plugin.__all__) == {n.lower() for n in UDF_NAMES} | {
        f"_xldudf_{n.lower()}" for n in UDF_NAMES}       # the Lite template's spelling too
    assert pycel_plugin._xldudf_roas(300, 100) == 3.0
    # pycel passes ranges as tuples of row tuples; a 2-D result goes back as one
    assert pycel_plugin.roas(((300,), (500,)), ((100,), (0,))) == ((3.0,), ("#DIV/0!",))
    assert pycel_plugin.roas(300, 100) == 3.0
    assert pycel_plugin.roas(None, None) == ""
    assert pycel_plugin.clv(50, 5, 1, "#EMPTY!") == 250.0
    top = pycel_plugin.top_products((("a",), ("b",), ("a",)), ((1,), (5,), (1,)))
    assert top[0] == ("Product", "Revenue", "Share", "Cumulative share")
    assert [r[0] for r in top[1:]] == ["b", "a", "", "", ""]  # always 5 rows (blank-padded)


# --- pycel on the small workbook ---------------------------------------------------------

def test_formula_cells_lists_every_formula(small_book):
    assert set(formula_cells(small_book)) == SMALL_FORMULA_CELLS


def test_pycel_recomputes_small_workbook(small_book):
    require_tool("pycel")
    results = recompute_all(small_book)
    assert set(results) == SMALL_FORMULA_CELLS
    assert mismatches(results) == {}
    assert results["Campaigns!D3"] == ("#DIV/0!", "#DIV/0!")
    assert results["KPIs!D2"] == (250.0, 250.0)
    assert same_value(results["Campaigns!G1"][1], 920)
    # the array formula: pycel fits the UDF's 2-D result to A5:D8
    assert [results[f"KPIs!{c}5"][1] for c in "ABCD"] == ["Product", "Revenue", "Share",
                                                          "Cumulative share"]
    assert [results[f"KPIs!A{r}"][1] for r in (6, 7, 8)] == ["Launch", "Spring", "Summer"]


def test_pycel_without_reset_only_reads_the_cache(small_book, tmp_path):
    """The trap: a plain evaluate() returns what the file holds."""
    require_tool("pycel")
    bad = plant_cached_value(small_book, tmp_path / "bad.xlsx", "KPIs!D2", 999.0)
    with pycel_compiler(bad) as xc:
        assert xc.evaluate("KPIs!D2") == 999.0
    assert recompute_all(bad)["KPIs!D2"] == (999.0, 250.0)


@pytest.mark.parametrize("address, wrong", [
    ("Campaigns!D4", 2.5),              # a calculated-column cell, wrong number
    ("Campaigns!D3", 0.0),              # a #DIV/0! replaced by a number
    ("KPIs!D2", "#VALUE!"),             # a number replaced by an error
    ("Campaigns!G1", 920.001),          # a native SUM over a table column
    ("KPIs!D3", "500"),                 # a number replaced by its text
    ("KPIs!B7", 301.0),                 # inside an array formula's range
])
def test_pycel_check_reports_exactly_the_planted_cell(small_book, tmp_path, address, wrong):
    require_tool("pycel")
    bad = plant_cached_value(small_book, tmp_path / "bad.xlsx", address, wrong)
    found = mismatches(recompute_all(bad))
    assert list(found) == [address]
    assert same_value(found[address][0], wrong)


def test_plant_cached_value_changes_only_that_cell(small_book, tmp_path):
    bad = plant_cached_value(small_book, tmp_path / "bad.xlsx", "KPIs!D2", "#N/A")
    before, after = cell_values(small_book), cell_values(bad)
    assert after.pop("KPIs!D2") == "#N/A"
    before.pop("KPIs!D2")
    assert after == before
    with zipfile.ZipFile(small_book) as a, zipfile.ZipFile(bad) as b:
        assert a.namelist() == b.namelist()


# --- LibreOffice on the small workbook ------------------------------------------------------

def test_libreoffice_shows_cached_values_of_small_workbook(small_book, tmp_path):
    require_tool("soffice")
    shown = lo_csv_sheets(small_book, tmp_path, SMALL_SHEETS)
    assert shown["Campaigns"][1][:4] == ["Spring", "300", "100", "3"]
    assert shown["Campaigns"][0][6] == "920"
    assert shown["KPIs"][1][3] == "250"
    # LibreOffice limitations: a cached error is not kept, nor are the cached
    # values of an array formula; those cells are computed on load and
    # LibreOffice does not know ROAS or TOP_PRODUCTS
    assert shown["Campaigns"][2][3] == "#NAME?" and shown["KPIs"][1][4] == "#NAME?"
    assert shown["KPIs"][4] == ["#NAME?"] * 4 + [""]
    assert not lo_keeps_cached("#DIV/0!") and lo_keeps_cached(3.0) and lo_keeps_cached("x")
    assert not lo_keeps_cached("Product", "{=TOP_PRODUCTS(A1:A3,B1:B3)}")
    problems = lo_display_problems(shown, cell_values(small_book), formula_cells(small_book),
                                   UDF_NAMES)
    assert problems == {}


def test_libreoffice_display_check_can_fail(tmp_path):
    """Error texts LibreOffice shows that the file does not hold are reported."""
    require_tool("soffice")
    import xlsxwriter

    path = tmp_path / "errors.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("S")
    ws.write_formula("A1", "=1/0", None, "#DIV/0!")        # same error cached: fine
    ws.write_formula("A2", "=1/0", None, "")               # blank cached, LO computes it
    ws.write_formula("A3", "=NOSUCHFN(1)", None, "#N/A")   # not ours, LO: #NAME?
    ws.write_formula("A4", "=CLV(1,2,3)", None, "#N/A")    # ours: LO drops the cache
    ws.write_formula("A5", "=CLV(1,2,3)", None, 6)         # ours, number kept
    wb.close()
    shown = lo_csv_sheets(path, tmp_path / "csv", ["S"])
    assert [row[0] for row in shown["S"]] == ["#DIV/0!", "#DIV/0!", "#NAME?", "#NAME?", "6"]
    problems = lo_display_problems(shown, cell_values(path), formula_cells(path), UDF_NAMES)
    assert sorted(problems) == ["S!A2", "S!A3"]
    assert problems["S!A3"] == ("#NAME?", "#N/A", "=NOSUCHFN(1)")


def test_libreoffice_forced_recalc_turns_udfs_into_name_errors(small_book, tmp_path):
    """Why the cached values matter: recomputed, every UDF cell is #NAME? in LibreOffice."""
    require_tool("soffice")
    shown = lo_csv_sheets(small_book, tmp_path, SMALL_SHEETS, recalc=True)
    from openpyxl.utils.cell import coordinate_to_tuple
    for addr in SMALL_UDF_CELLS:
        sheet, coord = addr.split("!")
        r, c = coordinate_to_tuple(coord)
        assert shown[sheet][r - 1][c - 1] == "#NAME?", addr
    assert shown["Campaigns"][0][6] == "920"           # native SUM still computes
    assert shown["KPIs"][2][3] == "#NAME?"              # =D2*2 inherits the error


def test_libreoffice_pdf_and_png_of_small_workbook(small_book, tmp_path):
    require_tool("soffice")
    require_tool("pdftoppm")
    (pdf,) = lo_convert(small_book, "pdf", tmp_path)
    assert pdf.suffix == ".pdf" and pdf.read_bytes()[:5] == b"%PDF-"
    pngs = pdf_to_pngs(pdf, tmp_path / "png")
    assert len(pngs) == 2                               # one page per (small) sheet
    for png in pngs:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", head[16:24])
        assert width > 100 and height > 100
    if shutil.which("pdftotext"):
        texts = pdf_page_texts(pdf)
        assert "Revenue" in texts[0] and "CLV" in texts[1]


# --- calamine on the small workbook -------------------------------------------------------

def test_calamine_reads_small_workbook(small_book):
    require_tool("python_calamine")
    sheets = calamine_read_all(small_book)
    assert list(sheets) == SMALL_SHEETS
    assert sheets["KPIs"][1][3] == 250.0
    tables = calamine_tables(small_book)
    assert list(tables) == ["Campaigns"]
    assert tables["Campaigns"]["columns"] == SMALL_COLUMNS
    assert tables["Campaigns"]["sheet"] == "Campaigns"
    assert [r[0] for r in tables["Campaigns"]["rows"]] == [r[0] for r in SMALL_ROWS]


# --- the demo workbook of the build ----------------------------------------------------------

#: Formula cells left out of the pycel comparison, with the reason.  None are
#: needed: pycel computes every formula of the demo workbook (structured
#: references incl. ``[#This Row]`` and column spans, the settings' defined
#: names, IF/OR/ISNUMBER/SUM/COUNT, the dynamic-array UDFs) and agrees with the
#: cached values.  (Text cells that show a formula, KPIs column "Formula", are
#: not formula cells; ``engines.pycel_compiler`` keeps pycel from evaluating them.)
PYCEL_EXCLUDED: dict[str, str] = {}


@pytest.fixture(scope="session")
def demo_books(tmp_path_factory):
    """``{"xlsx": (path, Evaluation), "xlsm": (path, Evaluation)}``, built once."""
    from xl_kpis.book.build import build_workbook

    folder = tmp_path_factory.mktemp("demo")
    out = {}
    for ext in ("xlsx", "xlsm"):
        path = folder / f"tiktok_kpis.{ext}"
        out[ext] = (path, build_workbook(path, demo=True))
    return out


@pytest.fixture(params=["xlsx", "xlsm"])
def demo(request, demo_books):
    return demo_books[request.param]


def _sheets(path: Path) -> list[str]:
    from python_calamine import CalamineWorkbook

    with CalamineWorkbook.from_path(str(path)) as wb:
        return list(wb.sheet_names)


@pytest.fixture(scope="session")
def demo_pycel(demo_books):
    """pycel's recomputation of both demo workbooks (the slow part: once per session)."""
    require_tool("pycel")
    return {ext: recompute_all(path) for ext, (path, _) in demo_books.items()}


@pytest.mark.parametrize("ext", ["xlsx", "xlsm"])
def test_pycel_agrees_with_every_cached_value_of_the_demo(demo_books, demo_pycel, ext):
    path, ev = demo_books[ext]
    results = demo_pycel[ext]
    # every formula the build evaluated is in the file as a formula, and no other
    expected = {f"{sheet}!{a1}" for sheet, a1 in ev.by_address()}
    assert set(results) == expected
    assert len(results) > 1000
    crashed = {a: p for a, (_, p) in results.items() if isinstance(p, str) and p.startswith("<")}
    assert crashed == {}
    assert mismatches(results, exclude=PYCEL_EXCLUDED) == {}


def test_pycel_check_catches_wrong_values_planted_in_the_demo(demo_books, tmp_path):
    """One wrong cached value per kind of formula cell; exactly those are reported."""
    require_tool("pycel")
    from xl_kpis.book import schema as S

    path, ev = demo_books["xlsx"]
    cells = ev.by_address()
    orders = S.TABLE["Orders"]
    computed = orders.computed[0]
    row = orders.first_data_row + 1 + 4                       # 1-based, 5th data row
    col = orders.col(computed.header)
    from openpyxl.utils import get_column_letter
    picks = {
        f"Orders!{get_column_letter(col + 1)}{row}": None,      # calculated column
        "KPIs!B6": None,                                     # a KPI
        "Benchmarks!C20": "weak" if cells[("Benchmarks", "C20")] != "weak" else "good",
        "Dashboard!O6": None,
    }
    arrays = [a for a, f in formula_cells(path).items() if f.startswith("{")]
    picks[arrays[len(arrays) // 2]] = None                   # a cell of a dynamic array
    current = path
    planted = {}
    for i, (addr, wrong) in enumerate(picks.items()):
        sheet, a1 = addr.split("!")
        cached = cells[(sheet, a1)]
        if wrong is None:
            wrong = cached * 1.5 + 1 if isinstance(cached, (int, float)) else "planted"
        planted[addr] = wrong
        current = plant_cached_value(current, tmp_path / f"bad{i}.xlsx", addr, wrong)
    found = mismatches(recompute_all(current))
    assert set(found) == set(planted)
    for addr, wrong in planted.items():
        assert same_value(found[addr][0], wrong)


def test_libreoffice_shows_the_demo_without_unexpected_errors(demo, tmp_path):
    """With the extension, no displayed #NAME?, Err:..., #VALUE! ... the file does not cache.

    LibreOffice shows the cached values and computes what it recomputes on
    load (cached errors, booleans, empty texts, array formulas) with the
    extension's functions, so no cell is exempt.
    """
    require_tool("soffice")
    require_tool("uno")
    path, _ = demo
    sheets = _sheets(path)
    shown = lo_csv_sheets(path, tmp_path, sheets, extension=True)
    assert set(shown) == set(sheets)
    values, formulas = cell_values(path), formula_cells(path)
    assert lo_display_problems(shown, values, formulas, udfs=()) == {}
    from openpyxl.utils.cell import coordinate_to_tuple
    for addr in formulas:
        cached = values.get(addr)
        if isinstance(cached, (int, float)):
            sheet, coord = addr.split("!")
            r, c = coordinate_to_tuple(coord)
            text = shown[sheet][r - 1][c - 1] if r <= len(shown[sheet]) and \
                c <= len(shown[sheet][r - 1]) else ""
            assert text.strip() and text.strip() not in ERROR_TEXTS, (addr, cached, text)


@pytest.fixture(scope="session")
def lo_demo(demo_books, tmp_path_factory):
    """LibreOffice's full recomputation of the .xlsx and .xlsm demo books (once)."""
    require_tool("soffice")
    require_tool("uno")
    return {ext: lo_recompute(path, tmp_path_factory.mktemp(f"lo-{ext}"))
            for ext, (path, _) in demo_books.items()}


@pytest.mark.parametrize("ext", ["xlsx", "xlsm"])
def test_libreoffice_recomputes_every_cached_value_of_the_demo(demo_books, lo_demo, ext):
    """LibreOffice with the extension, recalculating everything, agrees with every cached value."""
    path, ev = demo_books[ext]
    results = lo_demo[ext]
    assert set(results) == {f"{sheet}!{a1}" for sheet, a1 in ev.by_address()}
    assert len(results) > 1000
    assert mismatches(results) == {}


def test_libreoffice_recomputes_every_cached_value_of_the_template(template, tmp_path):
    """The empty template: blank rows, blank (not measured) KPIs, blank padded tables."""
    require_tool("soffice")
    require_tool("uno")
    results = lo_recompute(template, tmp_path)
    assert len(results) > 100
    kinds = {type(normalise(c)).__name__ if normalise(c) not in ERROR_TEXTS else "error"
             for c, _ in results.values()}
    assert {"float", "str"} <= kinds
    assert sum(normalise(c) == "" for c, _ in results.values()) > 50
    assert mismatches(results) == {}


def test_libreoffice_recomputes_a_sellers_book_after_imports(tmp_path):
    """The empty template, then an Ads Manager report, an order export and a Studio export
    imported (tests/data/exports): the imports' refresh keeps nothing (the content table,
    which grows, is resized in place) and LibreOffice agrees with every value it wrote, and
    with a book laid out anew with ``build --from``."""
    require_tool("soffice")
    require_tool("uno")
    from xl_kpis.book import build_workbook
    from xl_kpis.book.importer import import_export

    exports = Path(__file__).parent / "data" / "exports"
    book = tmp_path / "seller.xlsx"
    build_workbook(book)
    kept = set()
    for kind, src, year in (("ads", "ads_campaign_usd.csv", None), ("orders", "orders_us.csv", None),
                            ("studio", "studio_en", 2024)):
        report = import_export(kind, exports / src, book, year=year)
        kept |= {f"{k.sheet}!{k.ref}" for k in report.kept}
    results = lo_recompute(book, tmp_path / "lo")
    assert len(results) > 100
    assert kept == set() and mismatches(results) == {}
    from xl_kpis.book.refresh import read_inputs

    tables, settings = read_inputs(book)
    fresh = tmp_path / "fresh.xlsx"
    build_workbook(fresh, tables=tables, settings=settings)
    assert mismatches(lo_recompute(fresh, tmp_path / "lo2")) == {}


def test_libreoffice_check_catches_wrong_values_planted_in_the_demo(demo_books, tmp_path):
    """A wrong cached value of each kind (a calculated column, a KPI, an array cell, a
    native formula) is reported by LibreOffice's recomputation, and nothing else."""
    require_tool("soffice")
    require_tool("uno")
    path, ev = demo_books["xlsx"]
    cells = ev.by_address()
    arrays = [a for a, f in formula_cells(path).items() if f.startswith("{")]
    picks = ["Campaigns!AC6", "KPIs!B16", arrays[len(arrays) // 2], "Dashboard!O6"]
    current, planted = path, {}
    for i, addr in enumerate(picks):
        sheet, a1 = addr.split("!")
        cached = cells[(sheet, a1)]
        wrong = cached * 1.5 + 1 if isinstance(cached, (int, float)) else "planted"
        planted[addr] = wrong
        current = plant_cached_value(current, tmp_path / f"bad{i}.xlsx", addr, wrong)
    found = mismatches(lo_recompute(current, tmp_path / "lo"))
    assert set(found) == set(planted)
    for addr, wrong in planted.items():
        assert same_value(found[addr][0], wrong)
        assert same_value(found[addr][1], cells[tuple(addr.split("!"))])


def test_libreoffice_renders_the_demo_to_pdf_and_png(demo_books, tmp_path):
    require_tool("soffice")
    require_tool("pdftoppm")
    require_tool("pdftotext")
    from xl_kpis.book import schema as S

    require_tool("uno")
    path, _ = demo_books["xlsx"]
    # LibreOffice computes every formula itself (the extension, recalculation on load)
    (pdf,) = lo_convert(path, "pdf", tmp_path, recalc=True, extension=True)
    texts = pdf_page_texts(pdf)
    assert len(texts) >= len(S.SHEETS)
    whole = "\n".join(texts)
    assert "###" not in whole                       # no number too wide for its column
    # error texts only where the book's own text cells say them (the Start sheet explains them)
    formulas, values = formula_cells(path), cell_values(path)
    for token in ("Err:", "#NAME?", "#VALUE!"):
        in_texts = sum(str(v).count(token) for a, v in values.items()
                       if a not in formulas and isinstance(v, str))
        assert whole.count(token) == in_texts, token
    titles = ["TikTok shop KPIs", *(t.title for t in S.TABLES), "Shop KPIs",
              "Customers: predicted lifetime value", "Benchmarks", "Dashboard"]
    firsts = [next(i for i, t in enumerate(texts) if t.lstrip().startswith(title))
              for title in titles]
    assert firsts == sorted(firsts)                  # one sheet after the other
    pngs = pdf_to_pngs(pdf, tmp_path / "png", dpi=70)
    assert len(pngs) == len(texts)
    for png in pngs:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        short, long_ = sorted(struct.unpack(">II", head[16:24]))
        assert abs(short - 579) <= 2 and abs(long_ - 819) <= 2   # A4 at 70 dpi


def test_calamine_reads_every_sheet_and_table_of_the_demo(demo):
    require_tool("python_calamine")
    from xl_kpis.book import schema as S

    path, ev = demo
    sheets = calamine_read_all(path)
    expected = list(S.SHEETS) + ([S.CONFIG_SHEET] if path.suffix == ".xlsm" else [])
    assert list(sheets) == expected
    assert all(rows for rows in sheets.values())
    tables = calamine_tables(path)
    assert set(tables) == {t.name for t in S.TABLES}
    for t in S.TABLES:
        got = tables[t.name]
        assert got["sheet"] == t.sheet
        assert tuple(got["columns"]) == t.headers
        assert len(got["rows"]) == ev.rows[t.name]
        assert tuple(sheets[t.sheet][t.header_row][: len(t.headers)]) == t.headers


# --- openxml-audit: every kind of workbook the project writes ----------------------------

EXPORTS = Path(__file__).parent / "data" / "exports"


@pytest.fixture(scope="module")
def written_books(demo_books, tmp_path_factory) -> dict[str, Path]:
    """One workbook of every kind the project writes, ``.xlsx`` (Lite) and ``.xlsm``
    (classic): built (demo, empty), imported into (ads, orders, Studio), refreshed with
    values to change, and laid out anew from a book (``build --from``)."""
    from xl_kpis.book.build import build_workbook
    from xl_kpis.book.importer import import_export
    from xl_kpis.book.rebuild import build_from
    from xl_kpis.book.refresh import refresh

    folder = tmp_path_factory.mktemp("written")
    books = {}
    for ext in ("xlsx", "xlsm"):
        books[f"demo.{ext}"] = demo_books[ext][0]
        empty = books[f"empty.{ext}"] = folder / f"empty.{ext}"
        build_workbook(empty)
        imported = books[f"imported.{ext}"] = folder / f"imported.{ext}"
        build_workbook(imported)
        import_export("ads", EXPORTS / "ads_campaign_usd.csv", imported)
        import_export("orders", EXPORTS / "orders_us.csv", imported)
        import_export("studio", EXPORTS / "studio_en", imported, year=2026)
        stale = plant_cached_value(imported, folder / f"stale.{ext}", "KPIs!B16", 99.0)
        refreshed = books[f"refreshed.{ext}"] = folder / f"refreshed.{ext}"
        assert refresh(stale, refreshed).changed == 1
        other = "xlsm" if ext == "xlsx" else "xlsx"
        books[f"from-{ext}.{other}"] = folder / f"from-{ext}.{other}"
        build_from(imported, books[f"from-{ext}.{other}"])
    return books


def test_every_written_workbook_passes_the_ooxml_validator(written_books):
    """openxml-audit -f microsoft365: "expected to open cleanly (no findings)"."""
    require_tool("openxml_audit")
    assert {name: openxml_audit(path) for name, path in written_books.items()} == {
        name: [] for name in written_books}


def test_ooxml_validator_catches_planted_defects(written_books, tmp_path):
    """A defect in a sheet and one in the xlwings Lite part, as the validator reports them."""
    require_tool("openxml_audit")
    src = written_books["empty.xlsx"]
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "xl/webextensions/webextension1.xml":
                data = data.replace(b"<we:bindings/>", b"")           # a required element
            if info.filename == "xl/worksheets/sheet6.xml":             # KPIs
                data = data.replace(b'<f t="array"', b'<f t="arrays"', 1)
            out.writestr(info, data)
    found = openxml_audit(bad)
    assert found[0].startswith("Microsoft Excel: at risk"), found
    assert len(found) == 3
    assert any("webextension1.xml" in f and "'bindings' is missing" in f for f in found)
    assert any("sheet6.xml" in f and "'arrays'" in f for f in found)


# --- README screenshots (opt-in) -------------------------------------------------------------

#: docs/sheet-<name>.png: (sheet title on the page, dpi, max width, max height in pixels)
SCREENSHOTS = {
    "start": ("TikTok shop KPIs", 120, None, None),
    "campaigns": ("Ad campaigns", 150, 1600, 420),
    "kpis": ("Shop KPIs", 120, None, 850),      # down to the Brand KPIs, not the next heading
    "kpis-tables": ("The five best-selling products", 120, None, None),   # the array formulas
    "customers": ("Customers: predicted lifetime value", 120, None, None),
    "benchmarks": ("Benchmarks", 130, None, None),
    "dashboard": ("Dashboard", 120, None, None),
}


def test_docs_screenshots_render(demo_books, tmp_path):
    """Render the README's screenshots from the demo workbook's PDF (LibreOffice with the
    extension, recomputing every formula itself).

    They are written to a temporary folder; with ``XL_KPIS_DOCS_SCREENSHOTS=1``
    (or a comma-separated list of names) they replace ``docs/sheet-*.png``.
    """
    require_tool("soffice")
    require_tool("pdftoppm")
    require_tool("pdftotext")
    wanted = os.environ.get("XL_KPIS_DOCS_SCREENSHOTS", "")
    only = set(filter(None, wanted.split(","))) - {"1"}
    require_tool("uno")
    path, _ = demo_books["xlsx"]
    # computed by LibreOffice itself: the extension, recalculation on load forced
    (pdf,) = lo_convert(path, "pdf", tmp_path, recalc=True, extension=True)
    texts = pdf_page_texts(pdf)
    assert "Err:" not in "\n".join(texts)
    docs = Path(__file__).resolve().parents[1] / "docs" if wanted else tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for name, (title, dpi, max_w, max_h) in SCREENSHOTS.items():
        if only and name not in only:
            continue
        page = next((i for i, t in enumerate(texts, start=1) if t.lstrip().startswith(title)),
                    None) or next(i for i, t in enumerate(texts, start=1) if title in t)
        out = render_pdf_page(pdf, page, docs / f"sheet-{name}.png", dpi=dpi,
                              max_width=max_w, max_height=max_h)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
