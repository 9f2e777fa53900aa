"""Evaluating the template's formulas and writing the workbook."""

from __future__ import annotations

import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest

from xl_kpis import udfs
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


# --- the native evaluator ----------------------------------------------------------------

def _eval(node, names=None, cells=None):
    ev = fx.Evaluator(lambda t, h: [], (names or {}).__getitem__,
                      lambda k, r, c: (cells or {})[k])
    return ev.cell(node)


@pytest.mark.parametrize("node, expected", [
    (fx.F.SUM(fx.Lit(1), fx.Lit("2")), 3.0),
    (fx.F.IF(fx.Lit(0), "a", "b"), "b"),
    (fx.F.IF(fx.Lit("#N/A"), "a", "b"), "#N/A"),
    (fx.F.IF(fx.Lit("x"), "a", "b"), "#VALUE!"),
    (fx.F.OR(fx.Lit(False), fx.Lit(1)), True),
    (fx.F.ISNUMBER(fx.Lit("#DIV/0!")), False),
    (fx.F.ISNUMBER(fx.Lit("")), False),
    (fx.Op("/", fx.Lit(1), fx.Lit(0)), "#DIV/0!"),
    (fx.Op("+", fx.Lit(""), fx.Lit(1)), "#VALUE!"),
    (fx.Op("+", fx.Lit("1,200"), fx.Lit(1)), 1201.0),
    (fx.Op("=", fx.Lit("Cancelled"), fx.Lit("CANCELLED")), True),
    (fx.Op("<", fx.Lit(5), fx.Lit("a")), True),          # numbers sort before text
    (fx.Op(">", fx.Lit(True), fx.Lit("z")), True),       # logicals after text
    (fx.Op("=", fx.Lit("#N/A"), fx.Lit(1)), "#N/A"),
])
def test_native_functions(node, expected):
    assert _eval(node) == expected


def test_references_blank_and_ranges():
    cells = {"blank": None, "text": "5", "range": [[1.0], ["x"], [None], [True], [2]]}
    ref = fx.Ref
    assert _eval(ref("blank"), cells=cells) == 0.0           # =A1 of an empty cell shows 0
    assert _eval(fx.Op("=", ref("blank"), fx.Lit("")), cells=cells) is True
    assert _eval(fx.Op("=", ref("blank"), fx.Lit(0)), cells=cells) is True
    assert _eval(fx.F.SUM(ref("text")), cells=cells) == 0.0  # text in a reference: skipped
    assert _eval(fx.F.SUM(ref("range")), cells=cells) == 3.0
    assert _eval(fx.F.COUNT(ref("range")), cells=cells) == 2.0
    assert _eval(fx.F.OR(ref("range")), cells=cells) is True
    assert _eval(fx.F.SUM(fx.Lit(1), fx.Lit("#NUM!")), cells=cells) == "#NUM!"
    assert _eval(fx.F.IF(fx.Lit(True), ref("blank")), cells=cells) == 0.0
    assert _eval(fx.F.SUM(fx.Lit(1), fx.Lit(date(1900, 1, 1)))) == 3.0   # serial 2


def test_render():
    ctx = fx.RenderContext("KPIs", address=lambda k: {"a": ("KPIs", 4, 1),
                                                        "b": ("Start", 0, 27)}[k])
    assert fx.render(fx.F.CLV(fx.Ref("a"), fx.Ref("b"), 1.5, fx.Name("Margin")), ctx) == \
        "=CLV(B5,Start!$AB$1,1.5,Margin)"
    assert fx.render(fx.Op("/", fx.Op("+", fx.Lit(1), fx.Lit(2)), fx.Lit('say "hi"')),
                     ctx) == '=(1+2)/"say ""hi"""'
    assert fx.render(fx.Ref("a", 2, 3), fx.RenderContext("Other", address=ctx.address)) \
        == "=KPIs!$E$7"
    with pytest.raises(AttributeError, match="neither"):
        fx.F.VLOOKUP


# --- evaluation of the whole template ------------------------------------------------------

def _per_row(expr, table: S.Table, columns: dict, i: int):
    """Evaluate a column formula for row ``i`` alone, with scalar arguments (as Excel does)."""
    def lift(node):
        if isinstance(node, fx.This):
            return fx.Ref(node.header if node.last is None else f"{node.header}:{node.last}")
        if isinstance(node, fx.Call):
            return fx.Call(node.fn, tuple(lift(a) for a in node.args))
        if isinstance(node, fx.Op):
            return fx.Op(node.op, lift(node.left), lift(node.right))
        return node

    def cell(key, r, c):
        if ":" in key:
            first, last = key.split(":")
            hs = table.headers[table.col(first):table.col(last) + 1]
            return [[columns[h][i] for h in hs]]
        return columns[key][i]

    names = {s.name: s.default for s in S.SETTINGS}
    return fx.Evaluator(lambda t, h: columns[h], names.__getitem__, cell).cell(lift(expr))


@pytest.mark.parametrize("table", S.TABLES, ids=lambda t: t.name)
def test_columns_evaluated_once_per_column_equal_row_by_row(demo_eval, table):
    columns = demo_eval.columns[table.name]
    rows = range(0, demo_eval.rows[table.name], 7)
    for c in table.computed:
        got = [columns[c.header][i] for i in rows]
        assert got == [_per_row(c.expr, table, columns, i) for i in rows], c.header


def test_demo_evaluation_values(demo_eval):
    v = demo_eval.values
    assert demo_eval.rows == {"Campaigns": 12, "Videos": 60, "Orders": len(
        demo.tables()["Orders"]["order_id"]), "Brand": 12}
    orders = demo_eval.columns["Orders"]
    assert v["orders"] == len({o for o in orders["Counted order"] if o})
    assert v["roas"] == udfs.ROAS(v["ad_revenue"], v["ad_cost"])
    assert v["clv"] == pytest.approx(v["aov"] * v["repeat"] * v["retention"])
    assert v["breakeven"] == pytest.approx(1 / (0.4 * 0.95))
    assert [v[f"clv_example.{i}"] for i in range(6)] == [250, 240, 600, 60, 10, 40]
    assert demo_eval.values["rating.roas"] == ("weak" if v["roas"] < v["breakeven"] else
                                               "ok" if v["roas"] < 3.5 else "good")
    top = v["top_products"]
    assert top[0] == ["Product", "Revenue", "Share", "Cumulative share"] and len(top) == 6
    content = v["content"]
    assert {r[0] for r in content[1:]} == set(demo.CONTENT)


def test_cancelled_lines_are_not_counted(demo_eval):
    cols = demo_eval.columns["Orders"]
    for status, oid, counted, sales in zip(cols["Status"], cols["Order ID"],
                                           cols["Counted order"], cols["Counted sales"]):
        assert (counted == "") == (status == "Cancelled")
        assert counted in ("", oid) and (sales == "") == (counted == "")


def test_empty_template_evaluates():
    ev = B.evaluate_book({})
    assert ev.rows == {t.name: 1 for t in S.TABLES}
    v = ev.values
    # nothing is measured yet: every KPI but the settings' is blank, and so is every rating
    assert {k: v[k] for k in S.KPIS if v[k] != ""} == {
        "breakeven": pytest.approx(1 / (0.4 * 0.95)), "retention": 4}
    assert {v[f"rating.{b.key}"] for b in S.BENCHMARKS} == {""}
    # top products has its fixed size (header + 5 rows); content resonance its header and the
    # one blank row the template asks for (rows=1), so that its layout is there before data
    assert v["top_products"][0][0] == "Product" and len(v["top_products"]) == 6
    assert all(c == "" for row in v["top_products"][1:] for c in row)
    assert v["content"][0][0] == "Content type" and len(v["content"]) == 2
    assert all(c == "" for c in v["content"][1])
    assert v["clv_example.0"] == 250
    assert ev.columns["Orders"]["Counted order"] == [""]


def test_settings_override_and_unknown_names():
    ev = B.evaluate_book({}, {"Margin": 0.5, "RefundRate": 0})
    assert ev.values["breakeven"] == 2.0
    with pytest.raises(KeyError, match="Nope"):
        B.evaluate_book({}, {"Nope": 1})
    with pytest.raises(KeyError, match="cost_usd"):
        B.evaluate_book({"Campaigns": {"cost_usd": [1]}})


def test_inputs_are_normalised():
    cols, rows = B.normalise_tables({"Orders": {"order_id": [576400000000000001, None],
                                                "quantity": [1, float("nan")]}})
    assert cols["Orders"]["Order ID"] == ["576400000000000001", None]
    assert cols["Orders"]["Quantity"] == [1, None] and rows["Orders"] == 2


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


# --- not measured is not zero -------------------------------------------------------------

#: What a column with no value at all leaves unmeasured (blank KPI, blank rating), by the
#: definitions of docs/kpi-definitions.md: each KPI below divides by or sums that column.
UNMEASURED = [
    ("Videos", ["completed_views"], ["completion"], ["Completion rate"]),
    # the KPI is TikTok's ER without saves; the Videos sheet's ER counts saves too
    ("Videos", ["likes", "comments", "shares"], ["er"], []),
    ("Videos", ["likes", "comments", "shares", "saves"], ["er"], ["ER"]),
    ("Videos", ["revenue"], [], ["AOV"]),
    ("Campaigns", ["conversions"], ["cvr", "cpa"], ["CVR", "CPA"]),
    ("Campaigns", ["new_customers"], ["cac", "ltv_cac", "payback", "pclv_cac"], ["CAC"]),
    ("Campaigns", ["revenue"], ["ad_revenue", "roas", "roi"], ["ROAS", "ROI"]),
    ("Campaigns", ["views_p100"], [], ["Completion rate"]),
    ("Campaigns", ["likes", "comments", "shares"], [], ["ER"]),
    ("Orders", ["order_amount"], ["revenue", "aov", "clv", "clv_margin", "margin_period",
                                  "dclv", "ltv_cac", "payback"], []),
    ("Orders", ["buyer"], ["buyers", "repeat", "clv", "clv_margin", "margin_period", "dclv",
                           "ltv_cac", "payback", "rpr", "pclv", "pclv_cac"], []),
    ("Orders", ["rating"], ["avg_rating", "positive", "reviews", "review_rate"], []),
    ("Brand", ["competitor_a_mentions", "competitor_b_mentions", "competitor_c_mentions"],
     ["sov"], ["Share of voice"]),
    ("Brand", ["followers_start"], ["followers"], ["Follower growth"]),
]


@pytest.mark.parametrize("table, keys, kpis, columns", UNMEASURED)
def test_a_column_without_any_value_is_not_measured(demo_eval, table, keys, kpis, columns):
    tables = demo.tables()
    for k in keys:
        tables[table][k] = [None] * len(tables[table][k])
    ev = B.evaluate_book(tables)
    before, after = demo_eval.values, ev.values
    assert all(isinstance(before[k], float) for k in kpis)          # measured in the demo
    assert {k: after[k] for k in kpis} == dict.fromkeys(kpis, "")
    rated = {k.benchmark for k in S.KPIS.values() if k.key in kpis and k.benchmark}
    assert {after[f"rating.{b}"] for b in rated} <= {""}
    # the other KPIs keep their values
    assert {k: after[k] for k in S.KPIS if k not in kpis} == \
        {k: before[k] for k in S.KPIS if k not in kpis}
    for c in columns:
        assert set(ev.columns[table][c]) == {""}, c
        assert "" not in demo_eval.columns[table][c]


def test_profile_visits_come_from_studio_when_the_videos_have_none(demo_eval):
    tables = demo.tables()
    tables["Videos"]["profile_visits"] = [None] * len(tables["Videos"]["profile_visits"])
    ev = B.evaluate_book(tables)
    brand = tables["Brand"]
    assert ev.values["profile_visits"] == sum(brand["profile_views"])
    assert ev.values["pvr"] == pytest.approx(sum(brand["profile_views"]) / sum(brand["views"]))
    assert ev.values["pvr.unit"] == "% of views (Brand: Studio overview)"
    assert demo_eval.values["pvr.unit"] == "% of views"
    tables["Brand"]["profile_views"] = [None] * len(brand["profile_views"])
    assert B.evaluate_book(tables).values["pvr"] == ""


def test_delivered_orders_follow_the_status_without_delivered_times():
    orders = {"order_id": ["1", "1", "2", "3", "4", "5"],
              "status": ["Completed", "Completed", "Delivered", "Shipped", "Canceled", "completed"],
              "buyer": ["a", "a", "b", "c", "d", "e"], "order_amount": [10.0] * 6}
    ev = B.evaluate_book({"Orders": orders})
    assert ev.columns["Orders"]["Delivered order"] == ["1", "1", "2", "", "", "5"]
    assert ev.values["delivered"] == 3
    orders["delivered"] = [None, None, None, datetime(2026, 1, 5), datetime(2026, 1, 5), None]
    ev = B.evaluate_book({"Orders": orders})
    assert ev.values["delivered"] == 4           # a delivered time counts; a cancelled order not
    assert ev.values["review_rate"] == "" and ev.values["reviews"] == ""   # no rating typed


def test_a_books_kpis_fit_the_bgnbd_model_once(monkeypatch):
    """PREDICTED_CLV, CUSTOMER_CLV, CLV_PARAMETERS and P_ALIVE_BUCKETS read the same order
    lines of the demo book: one maximisation between them (each fitted before)."""
    from xl_kpis.metrics import predictive as P

    monkeypatch.setattr(P, "_BGNBD_FITS", [])
    made = []
    maximise = P._maximise
    monkeypatch.setattr(P, "_maximise", lambda *a: made.append(a[1]) or maximise(*a))
    calls = []
    fit = P.bgnbd_fit
    monkeypatch.setattr(P, "bgnbd_fit", lambda *a, **k: calls.append(1) or fit(*a, **k))
    B.evaluate_book(demo.tables())
    assert len(calls) >= 4 and made.count("BG/NBD") == 1
