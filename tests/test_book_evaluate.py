"""Evaluating the template's formulas (:mod:`xl_kpis.book.evaluate`): every computed column,
KPI and cell from input columns, and what is not measured."""

from __future__ import annotations

from datetime import datetime

import pytest

from xl_kpis import udfs
from xl_kpis.book import demo
from xl_kpis.book import evaluate as E
from xl_kpis.book import formulas as fx
from xl_kpis.book import schema as S


@pytest.fixture(scope="module")
def demo_eval() -> E.Evaluation:
    return E.evaluate_book(demo.tables())


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
    ev = E.evaluate_book({})
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
    ev = E.evaluate_book({}, {"Margin": 0.5, "RefundRate": 0})
    assert ev.values["breakeven"] == 2.0
    with pytest.raises(KeyError, match="Nope"):
        E.evaluate_book({}, {"Nope": 1})
    with pytest.raises(KeyError, match="cost_usd"):
        E.evaluate_book({"Campaigns": {"cost_usd": [1]}})


def test_inputs_are_normalised():
    cols, rows = E.normalise_tables({"Orders": {"order_id": [576400000000000001, None],
                                                "quantity": [1, float("nan")]}})
    assert cols["Orders"]["Order ID"] == ["576400000000000001", None]
    assert cols["Orders"]["Quantity"] == [1, None] and rows["Orders"] == 2


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
    ev = E.evaluate_book(tables)
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
    ev = E.evaluate_book(tables)
    brand = tables["Brand"]
    assert ev.values["profile_visits"] == sum(brand["profile_views"])
    assert ev.values["pvr"] == pytest.approx(sum(brand["profile_views"]) / sum(brand["views"]))
    assert ev.values["pvr.unit"] == "% of views (Brand: Studio overview)"
    assert demo_eval.values["pvr.unit"] == "% of views"
    tables["Brand"]["profile_views"] = [None] * len(brand["profile_views"])
    assert E.evaluate_book(tables).values["pvr"] == ""


def test_delivered_orders_follow_the_status_without_delivered_times():
    orders = {"order_id": ["1", "1", "2", "3", "4", "5"],
              "status": ["Completed", "Completed", "Delivered", "Shipped", "Canceled", "completed"],
              "buyer": ["a", "a", "b", "c", "d", "e"], "order_amount": [10.0] * 6}
    ev = E.evaluate_book({"Orders": orders})
    assert ev.columns["Orders"]["Delivered order"] == ["1", "1", "2", "", "", "5"]
    assert ev.values["delivered"] == 3
    orders["delivered"] = [None, None, None, datetime(2026, 1, 5), datetime(2026, 1, 5), None]
    ev = E.evaluate_book({"Orders": orders})
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
    E.evaluate_book(demo.tables())
    assert len(calls) >= 4 and made.count("BG/NBD") == 1


# --- what evaluating loads ------------------------------------------------------------------

_WRITER = ("xl_kpis.book.build", "xl_kpis.book.patch", "xlsxwriter", "xml.sax.saxutils",
           "urllib.request")


@pytest.mark.host_only  # a second interpreter
def test_evaluating_loads_no_writer():
    # the report evaluates the KPIs sheet: XlsxWriter, the zip patcher and what
    # xml.sax.saxutils loads (urllib, http, ssl, email) cost every report 40 ms it never uses
    import subprocess
    import sys
    from pathlib import Path

    def loaded(code: str) -> list[str]:
        code += f"\nprint(sorted(m for m in {_WRITER!r} if m in sys.modules))\n"
        return eval(subprocess.run([sys.executable, "-c", "import sys\n" + code],
                                   capture_output=True, text=True, check=True,
                                   cwd=Path(__file__).resolve().parents[1]).stdout)

    assert loaded("import xl_kpis.report, xl_kpis.cli\n"
                  "from xl_kpis.book import evaluate_book\n"
                  "from xl_kpis.book.evaluate import evaluate_kpis\n"
                  "assert evaluate_kpis({})['breakeven'] > 0") == []
    # the check can fail: writing a book loads them all
    assert loaded("from xl_kpis.book import build, evaluate_book\n"
                  "build.workbook_bytes(evaluate_book({}))") == sorted(_WRITER)


def test_the_book_package_gives_its_names_from_their_modules():
    import xl_kpis.book as book
    from xl_kpis.book import build

    assert book.build_workbook is build.build_workbook and book.evaluate_book is E.evaluate_book
    assert book.TABLES is S.TABLES and set(book.__all__) <= set(dir(book))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        book.nope
