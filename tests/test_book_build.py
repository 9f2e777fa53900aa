"""Writing the template workbook (:mod:`xl_kpis.book.build`) and what the written file holds."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from xl_kpis.book import build as B
from xl_kpis.book import demo
from xl_kpis.book import formulas as fx
from xl_kpis.book import schema as S
from xl_kpis.xlsx.errors import is_error
from xl_kpis.xlsx.refs import a1

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = {ext: ROOT / "workbook" / f"tiktok_kpis.{ext}" for ext in ("xlsx", "xlsm")}


@pytest.fixture(scope="module")
def demo_eval() -> B.Evaluation:
    return B.evaluate_book(demo.tables())


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("books")
    out = {}
    for ext in ("xlsx", "xlsm"):
        out[ext] = d / f"demo.{ext}"
        B.build_workbook(out[ext], demo=True)
    return out


def test_by_address_covers_every_formula_cell(demo_eval, books):
    from openpyxl import load_workbook

    wb = load_workbook(books["xlsx"])
    formula_cells = {(ws.title, c.coordinate) for ws in wb for row in ws.iter_rows()
                     for c in row if c.data_type == "f"}
    addresses = demo_eval.by_address()
    assert formula_cells <= set(addresses)
    arrays = {(ws.title, c.coordinate) for ws in wb for row in ws.iter_rows() for c in row
              if c.data_type != "f"} & set(addresses)      # spilled cells of the arrays
    assert len(arrays) == sum(len(g) * len(g[0]) - 1 for g in (
        demo_eval.values[a.key] for a in S.ARRAY.values()))


# --- the written file ---------------------------------------------------------------------

def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.mark.parametrize("ext", ["xlsx", "xlsm"])
def test_build_is_reproducible(tmp_path, books, ext):
    again = tmp_path / f"again.{ext}"
    B.build_workbook(again, demo=True)
    assert again.read_bytes() == books[ext].read_bytes()


@pytest.mark.parametrize("ext", ["xlsx", "xlsm"])
def test_committed_workbook_is_a_fresh_demo_build(books, ext):
    """Fails when workbook/tiktok_kpis.* is stale: run `xl-kpis build workbook/tiktok_kpis.EXT --demo`."""
    committed = COMMITTED[ext]
    assert committed.is_file(), f"{committed} is missing"
    fresh, old = _parts(books[ext]), _parts(committed)
    assert list(old) == list(fresh)
    stale = [n for n in fresh if fresh[n] != old[n]]
    assert stale == [], f"stale parts {stale}: xl-kpis build workbook/tiktok_kpis.{ext} --demo"


def test_demo_seed_changes_the_data(tmp_path, books):
    other = tmp_path / "other.xlsx"
    ev = B.build_workbook(other, demo=True, seed=8)
    assert ev.rows["Campaigns"] == 12
    assert _parts(other)["xl/worksheets/sheet4.xml"] != _parts(books["xlsx"])[
        "xl/worksheets/sheet4.xml"]


def test_structure_with_openpyxl(books):
    from openpyxl import load_workbook

    wb = load_workbook(books["xlsx"])
    assert wb.sheetnames == list(S.SHEETS)
    for t in S.TABLES:
        table = wb[t.sheet].tables[t.name]
        assert [c.name for c in table.tableColumns] == list(t.headers)
        for c, tc in zip(t.columns, table.tableColumns):
            if isinstance(c, S.Input):
                assert tc.calculatedColumnFormula is None
            else:
                f = tc.calculatedColumnFormula.attr_text
                assert f == fx.render(c.expr, fx.RenderContext(t.sheet, table=t.name,
                                                               officejs=True))[1:]
        # every computed cell holds the column formula
        ws = wb[t.sheet]
        for c in t.computed:
            col = t.col(c.header) + 1
            cell = ws.cell(t.first_data_row + 1, col)
            assert cell.value == "=" + table.tableColumns[col - 1].calculatedColumnFormula \
                .attr_text
        rules = {str(dv.sqref).split(":")[0]: dv for dv in ws.data_validations.dataValidation}
        assert len(rules) == sum(c.rule is not None for c in t.inputs)
        assert ws.freeze_panes == f"B{t.first_data_row + 1}"
    orders = wb["Orders"]
    rating_col = orders.cell(4, S.ORDERS.col("Rating") + 1).column_letter
    rating = next(dv for dv in orders.data_validations.dataValidation
                  if str(dv.sqref).startswith(rating_col))
    assert (rating.type, rating.operator or "between", rating.formula1, rating.formula2) == \
        ("whole", "between", "1", "5")
    cost_col = a1(0, S.CAMPAIGNS.col("Cost"))[:-1]
    cost = next(dv for dv in wb["Campaigns"].data_validations.dataValidation
                if re.match(rf"{cost_col}\d", str(dv.sqref)))
    assert (cost.type, cost.operator, cost.formula1) == ("decimal", "greaterThanOrEqual", "0")
    kinds = wb["Videos"].data_validations.dataValidation
    assert any(dv.type == "list" and "tutorial" in dv.formula1 for dv in kinds)
    assert set(wb.defined_names) == {s.name for s in S.SETTINGS}
    assert wb.defined_names["Margin"].attr_text == "Start!$B$6"
    assert len(wb["Dashboard"]._charts) == 5
    assert wb["Orders"]["A5"].number_format == "@"


def test_xlsm_has_the_xlwings_vba_and_config_sheet(books):
    from openpyxl import load_workbook

    with zipfile.ZipFile(books["xlsm"]) as z:
        assert z.read("xl/vbaProject.bin") == B.vba_project_path().read_bytes()
        assert b"macroEnabled" in z.read("[Content_Types].xml")
    wb = load_workbook(books["xlsm"], keep_vba=True)
    assert wb.sheetnames == [*S.SHEETS, "xlwings.conf"]
    conf = wb["xlwings.conf"]
    # xlwings reads A1 down to the first empty cell (VBA) / A1:B1 expanded down (Python)
    assert [(conf.cell(r, 1).value, conf.cell(r, 2).value) for r in (1, 2)] == [
        ("UDF Modules", "xl_kpis.udfs"), (None, None)]
    assert "xlwings.conf" not in load_workbook(books["xlsx"]).sheetnames


def test_vba_project_is_xlwings_own():
    import xlwings

    src = Path(xlwings.__file__).with_name("quickstart_standalone.xlsm")
    if xlwings.__version__ != "0.37.8" or not src.is_file():
        pytest.skip(f"committed from xlwings 0.37.8, installed {xlwings.__version__}")
    with zipfile.ZipFile(src) as z:
        assert z.read("xl/vbaProject.bin") == B.vba_project_path().read_bytes()
    assert (B.VBA_DIR / "LICENSE-xlwings.txt").read_text().startswith("xlwings (Open Source)")


def test_excel_keeps_the_cached_values(books):
    wbxml = _parts(books["xlsx"])["xl/workbook.xml"].decode()
    assert 'calcId="191029"' in wbxml and "fullCalcOnLoad" not in wbxml


def test_blank_results_are_written_as_empty_text(books):
    """A formula returning "" is cached as t="str" with an empty value (as Excel writes it)."""
    sheet = _parts(books["xlsx"])["xl/worksheets/sheet4.xml"].decode()   # Orders
    import re

    counted = S.ORDERS.col("Counted order")
    letter = a1(0, counted)[:-1]
    blanks = re.findall(rf'<c r="{letter}\d+"[^>]*t="str"><f>[^<]*</f><v></v></c>', sheet)
    assert blanks and not re.search(r'<c r="[A-Z]+\d+"( s="\d+")?><f>[^<]*</f><v></v>', sheet)


def test_calamine_reads_every_sheet_and_table(books, demo_eval):
    from python_calamine import CalamineWorkbook

    for ext, path in books.items():
        wb = CalamineWorkbook.from_path(str(path), load_tables=True)
        for name in wb.sheet_names:
            wb.get_sheet_by_name(name).to_python()
        assert wb.table_names == [t.name for t in S.TABLES]
        for t in S.TABLES:
            table = wb.get_table_by_name(t.name)
            assert table.columns == list(t.headers)
            assert len(table.to_python()) == demo_eval.rows[t.name]
    wb = CalamineWorkbook.from_path(str(books["xlsx"]))
    bench = wb.get_sheet_by_name("Benchmarks").to_python()
    assert [bench[r][5] for r in range(4, 10)] == [250, 240, 600, 60, 10, 40]
    assert [bench[r][4] for r in range(4, 10)] == ["1 year", "6 months", "2 years",
                                                  "1 year", "6 months", "1 year"]


def test_cached_values_are_the_evaluation(books, demo_eval):
    """What a reader sees (calamine: no formula engine) is what evaluate_book computed."""
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(books["xlsx"]))
    sheets = {n: wb.get_sheet_by_name(n).to_python() for n in wb.sheet_names}
    checked = 0
    for (sheet, r, c), v in demo_eval.cells.items():
        shown = sheets[sheet][r][c]
        if is_error(v) or v == "":
            assert shown == "", (sheet, r, c)              # calamine shows errors as ""
        elif isinstance(v, float):
            assert shown == pytest.approx(v, rel=1e-14), (sheet, r, c)
        else:
            assert shown == v, (sheet, r, c)
        checked += 1
    assert checked > 100
    orders = sheets["Orders"]
    col = S.ORDERS.col("Counted order")
    assert [row[col] for row in orders[4:9]] == demo_eval.columns["Orders"]["Counted order"][:5]


def test_empty_template_builds(tmp_path):
    from openpyxl import load_workbook

    path = tmp_path / "empty.xlsm"
    ev = B.build_workbook(path)
    assert ev.rows == {t.name: 1 for t in S.TABLES}
    wb = load_workbook(path, keep_vba=True)
    assert wb["Orders"].tables["Orders"].ref == f"A4:{a1(4, len(S.ORDERS.headers) - 1)}"


def test_bad_suffix():
    with pytest.raises(ValueError, match="xlsx or .xlsm"):
        B.build_workbook("book.xls")


def test_cli_build(tmp_path):
    from click.testing import CliRunner

    from xl_kpis.cli import main

    out = tmp_path / "book.xlsx"
    result = CliRunner().invoke(main, ["build", str(out), "--demo", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Wrote {out} (demo data: 12 Campaigns, 60 Videos")
    assert out.read_bytes() == COMMITTED["xlsx"].read_bytes() or _parts(out) == _parts(
        COMMITTED["xlsx"])
    result = CliRunner().invoke(main, ["build", str(tmp_path / "e.xlsx")])
    assert result.exit_code == 0 and "empty template" in result.output
    assert CliRunner().invoke(main, ["build", str(out), "--seed", "3"]).exit_code == 2
    assert CliRunner().invoke(main, ["build", str(tmp_path / "x.csv")]).exit_code == 2


@pytest.mark.parametrize("typed", ["ROAS", "_xldudf_ROAS"])
@pytest.mark.parametrize("ext, stored", [("xlsx", "_xldudf_ROAS("), ("xlsm", "ROAS(")])
def test_a_sellers_formula_column_is_spelled_as_the_book_written_stores_calls(
        tmp_path, typed, ext, stored):
    """A seller's calculated column (carried by ``build --from``) calls the UDFs in the
    spelling of the book written, whichever book it came from; text stays as it was."""
    from conftest import small_tables

    rest = 'Campaigns[[#This Row],[Revenue]],Campaigns[[#This Row],[Cost]])*2&"ROAS("'
    column = B.ExtraColumn("Double", [1.0, 2.0], f"{typed}({rest}")
    out = tmp_path / f"b.{ext}"
    B.build_workbook(out, tables=small_tables(2), extra_columns={"Campaigns": [column]})
    parts = _parts(out)
    table = next(v for k, v in parts.items() if k.startswith("xl/tables/")
                 and b'displayName="Campaigns"' in v).decode()
    with zipfile.ZipFile(out) as z:
        from xl_kpis.xlsx.books import sheet_parts
        sheet = parts[sheet_parts(z)["Campaigns"]].decode()
    from xml.sax.saxutils import escape
    want = escape(stored + rest)
    assert f"<calculatedColumnFormula>{want}</calculatedColumnFormula>" in table
    assert sheet.count(f"<f>{want}</f>") == 2
    assert ("_xldudf_" in table) == (ext == "xlsx")
