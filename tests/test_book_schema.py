"""The template as data: tables, keys, computed columns, formulas, plan."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from xl_kpis import udfs
from xl_kpis.book import formulas as fx
from xl_kpis.book import schema as S

# The canonical keys importers rely on (the lists; keep them exactly).
KEYS = {
    "Campaigns": ("date period_end campaign ad_group ad_name ad_id cost impressions clicks conversions"
                  " revenue new_customers video_views views_2s views_6s views_p25 views_p50"
                  " views_p75 views_p100 profile_visits likes comments shares follows"),
    "Videos": ("video_link title posted content_type views likes comments shares saves"
               " completed_views profile_visits orders revenue"),
    "Orders": ("order_id sku_id status substatus cancel_type product variation seller_sku"
               " quantity returned_qty unit_price sku_subtotal order_amount refund created"
               " paid delivered cancelled buyer buyer_message country state category rating"),
    "Brand": ("period followers_start followers_end brand_mentions competitor_a_mentions"
              " competitor_b_mentions competitor_c_mentions support_queries orders views"
              " profile_views likes comments shares"),
}


def test_public_names_exist():
    assert all(hasattr(S, n) for n in S.__all__)
    assert all(hasattr(fx, n) for n in fx.__all__)


def test_tables_and_sheets():
    assert [t.name for t in S.TABLES] == ["Campaigns", "Videos", "Orders", "Brand"]
    assert S.SHEETS == ("Start", "Campaigns", "Videos", "Orders", "Brand", "KPIs",
                        "Customers", "Benchmarks", "Dashboard")
    assert all(t.sheet == t.name for t in S.TABLES)


@pytest.mark.parametrize("table", S.TABLES, ids=lambda t: t.name)
def test_canonical_keys_are_the_agreed_ones_and_unique(table):
    assert table.keys == tuple(KEYS[table.name].split())
    assert len(set(table.keys)) == len(table.keys)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in table.keys)


@pytest.mark.parametrize("table", S.TABLES, ids=lambda t: t.name)
def test_headers_are_unique_and_safe_in_structured_references(table):
    assert len(set(table.headers)) == len(table.headers)
    for h in table.headers:
        # characters that need escaping (or break engines) in Table[Header]
        assert not set(h) & set("[]#'@,.:{}$^&*+=<>\"/\\-"), h
        assert h == h.strip() and "  " not in h


def test_header_key_round_trip():
    for t in S.TABLES:
        for c in t.inputs:
            assert t.header_of(c.key) == c.header and t.key_of(c.header) == c.key
    with pytest.raises(KeyError):
        S.ORDERS.header_of("no_such_key")


@pytest.mark.parametrize("table", S.TABLES, ids=lambda t: t.name)
def test_computed_columns_reference_existing_earlier_columns(table):
    for i, c in enumerate(table.columns):
        if isinstance(c, S.Input):
            continue
        earlier = set(table.headers[:i])
        for node in fx.walk(c.expr):
            if isinstance(node, fx.This):
                assert node.header in earlier, (c.header, node.header)
                if node.last:
                    assert node.last in earlier
                    assert table.col(node.header) < table.col(node.last)
            assert not isinstance(node, (fx.Ref, fx.Column)), c.header
            if isinstance(node, fx.Name):
                assert node.name in S.SETTING


def test_computed_declaration_is_udf_plus_input_headers():
    roas = next(c for c in S.CAMPAIGNS.computed if c.header == "ROAS")
    assert (roas.udf, roas.inputs) == ("ROAS", ("Revenue", "Cost"))
    # a row without revenue or without cost is not measured: blank, not a ROAS of 0
    assert S.CAMPAIGNS.formula("ROAS", display=True) == \
        '=IF(AND([@Revenue]<>"",[@Cost]<>""),ROAS([@Revenue],[@Cost]),"")'
    assert S.CAMPAIGNS.formula("ROAS") == (
        '=IF(AND(Campaigns[[#This Row],[Revenue]]<>"",Campaigns[[#This Row],[Cost]]<>""),'
        'ROAS(Campaigns[[#This Row],[Revenue]],Campaigns[[#This Row],[Cost]]),"")')
    # groups: one of the competitors is enough
    assert S.BRAND.formula("Share of voice", display=True) == (
        '=IF(AND([@[Brand mentions]]<>"",OR([@[Competitor A mentions]]<>"",'
        '[@[Competitor B mentions]]<>"",[@[Competitor C mentions]]<>"")),'
        'SHARE_OF_VOICE([@[Brand mentions]],[@[Competitor A mentions]:[Competitor C mentions]]),"")')


def test_counted_order_formula():
    assert S.ORDERS.formula("Counted order", display=True) == (
        '=IF(OR([@Status]="Cancelled",[@Status]="Canceled",[@[Order ID]]=""),"",'
        '[@[Order ID]])')


def test_every_udf_appears_in_the_template():
    used = set().union(*(fx.functions_used(f) for _, f in S.all_formulas()))
    assert set(udfs.__all__) <= used, sorted(set(udfs.__all__) - used)


def test_only_udfs_and_the_listed_native_functions_are_called():
    used = Counter(fn for _, f in S.all_formulas() for fn in fx.functions_used(f))
    natives = set(used) - set(udfs.__all__)
    assert natives == set(S.NATIVE_FUNCTIONS)          # listed, and nothing listed unused
    assert len(S.NATIVE_FUNCTIONS) <= 6
    ops = {n.op for _, f in S.all_formulas() for n in fx.walk(f) if isinstance(n, fx.Op)}
    assert ops <= set(S.NATIVE_OPERATORS)


def test_udf_calls_match_the_udf_signatures():
    import inspect

    for where, f in S.all_formulas():
        for node in fx.walk(f):
            if isinstance(node, fx.Call) and node.fn in udfs.__all__:
                params = inspect.signature(getattr(udfs, node.fn)).parameters.values()
                required = sum(p.default is inspect.Parameter.empty for p in params)
                assert required <= len(node.args) <= len(params), (where, node.fn)


def test_whole_table_aggregates_are_single_range_calls():
    k = S.KPIS
    p = S.plan()
    text = {key: fx.render(k[key].expr, fx.RenderContext("KPIs", address=p.address))
            for key in k}
    assert text["views"] == "=TOTAL_VIEWS(Videos[Views])"
    assert text["roas"] == ('=IF(AND(COUNT(Campaigns[Revenue])>0,COUNT(Campaigns[Cost])>0),'
                            'ROAS(SUM(Campaigns[Revenue]),SUM(Campaigns[Cost])),"")')
    assert text["rpr"] == "=REPEAT_PURCHASE_RATE(Orders[Buyer],Orders[Counted order])"
    assert text["revenue"] == "=ORDER_REVENUE(Orders[Counted order],Orders[Order amount])"
    assert text["breakeven"] == "=BREAKEVEN_ROAS(Margin,RefundRate)"
    # a KPI of KPIs is blank when one it reads is (the retention setting never is)
    assert re.fullmatch(r'=IF\(AND\(ISNUMBER\(B\d+\),ISNUMBER\(B\d+\)\),'
                        r'CLV\(B\d+,B\d+,B\d+,Margin\),""\)', text["clv_margin"])


def test_every_seed_metric_has_a_kpi_row():
    seed = {"views": "views", "engagement rate": "er", "completion rate": "completion",
            "profile visits": "profile_visits", "ctr": "ctr", "conversion rate": "cvr",
            "aov": "aov", "roas": "roas", "cac": "cac", "cltv": "clv",
            "ratings": "avg_rating", "repeat purchase rate": "rpr",
            "follower growth": "followers", "share of voice": "sov",
            "support queries": "support"}
    assert set(seed.values()) <= set(S.KPIS)
    assert {a.key for a in S.ARRAYS} == {"top_products", "content"}


def test_plan_cells_do_not_overlap_and_keys_resolve():
    p = S.plan(shapes={"top_products": (6, 4), "content": (6, 7)})
    spots = Counter((c.sheet, r, col) for c in p.cells
                    for r in (c.row,) for col in range(c.col, c.col + c.span + 1))
    assert [k for k, n in spots.items() if n > 1] == []
    for c in p.formulas():
        for node in fx.walk(c.expr):
            if isinstance(node, fx.Ref):
                assert node.key in p.keys, (c.key, node.key)
            if isinstance(node, fx.Column):
                assert node.header in S.TABLE[node.table].headers
            if isinstance(node, fx.Name):
                assert node.name in S.SETTING
    # arrays sit below everything else of the KPIs sheet, the longest one last
    kpi_rows = [c.row for c in p.cells if c.sheet == "KPIs" and not c.array]
    content = p.cell("content")
    assert content.row > p.cell("top_products").row and content.row > max(kpi_rows) - 1


def test_no_cell_moves_when_an_array_result_changes_size():
    """Only an array's own cells and the chart data that show it follow its size."""
    small = S.plan(shapes={"top_products": (1, 1), "content": (1, 1)})
    large = S.plan(shapes={"top_products": (6, 4), "content": (9, 7)})
    assert {k: small.address(k) for k in small.keys} == {k: large.address(k)
                                                           for k in large.keys}
    assert set(small.cells) <= set(large.cells)
    extra = set(large.cells) - set(small.cells)
    block = S.layout()["dash.content"]
    assert len(extra) == 2 * 7 and all(
        c.sheet == "Dashboard" and c.row > block.row + 1 and c.col in (13, 14) for c in extra)
    # nothing at all is below the growing chart data, in any column of the sheet's data
    assert max(c.row for c in large.cells if c.sheet == "Dashboard") == block.row + 8
    charts = {c.key: c for c in large.charts}
    assert charts["content"].values[3] == block.row + 8
    assert charts["top_products"].values == {c.key: c for c in small.charts}[
        "top_products"].values


def test_growing_tables_are_laid_out_last():
    # nothing starts below a table that grows in the columns it covers (the Dashboard's
    # charts lie beside the chart data, left of it), so it grows without moving a cell
    at = S.layout()
    for a in S.ARRAYS:
        if a.rows is None:
            for key in (f"kpis.{a.key}", f"dash.{a.key}"):
                g = at[key]
                cols = range(g.col, g.col + g.block.cols)
                assert all(p.row < g.row for p in at.values()
                           if p is not g and p.block.sheet == g.block.sheet
                           and set(cols) & set(range(p.col, p.col + p.block.cols))), key


def test_settings_are_defined_names_on_the_start_sheet():
    p = S.plan()
    names = {c.name: c for c in p.cells if c.name}
    assert set(names) == {"Margin", "RefundRate", "RetentionPeriods", "PeriodMonths",
                          "DiscountRate"}
    assert all(c.sheet == "Start" and c.rule is not None for c in names.values())
    assert names["Margin"].value == 0.40


def test_formula_text_beside_each_kpi_is_its_formula():
    p = S.plan()
    for k in S.KPIS.values():
        cell = p.cell(k.key)
        text = next(c for c in p.cells if c.sheet == "KPIs" and c.row == cell.row
                    and c.col == S.KPI_FORMULA_COL)
        assert text.value == fx.render(k.expr, fx.RenderContext("KPIs", address=p.address))
    # and the text is what a seller would type (written out by hand, not rendered)
    shown = {c.value for c in p.cells if c.sheet == "KPIs" and c.col == S.KPI_FORMULA_COL}
    assert {"=REPEAT_PURCHASE_RATE(Orders[Buyer],Orders[Counted order])",
            '=IF(AND(COUNT(Campaigns[Revenue])>0,COUNT(Campaigns[Cost])>0),'
            'ROAS(SUM(Campaigns[Revenue]),SUM(Campaigns[Cost])),"")',
            "=BREAKEVEN_ROAS(Margin,RefundRate)"} <= shown


def test_benchmarks_follow_kpi_definitions_section_4():
    b = {x.key: x for x in S.BENCHMARKS}
    assert (b["er_views"].weak_limit, b["er_views"].good_limit) == (0.03, 0.06)
    assert (b["ctr"].weak_limit, b["ctr"].good_limit) == (0.005, 0.01)
    assert (b["rpr"].weak_limit, b["rpr"].good_limit) == (0.15, 0.40)
    assert (b["payback"].weak_limit, b["payback"].good_limit) == (18, 12)
    assert not b["payback"].higher_is_better
    assert fx.functions_used(b["roas"].weak_limit) == {"BREAKEVEN_ROAS"}
    assert all(x.kpi is None or x.kpi in S.KPIS for x in S.BENCHMARKS)
    assert all(k.benchmark in b for k in S.KPIS.values() if k.benchmark)


def test_clv_examples_are_the_seeds_and_consistent():
    ex = S.CLV_EXAMPLES
    assert [(e.aov, e.repeat, e.stated, e.clv) for e in ex] == [
        (50, 5, "1 year", 250), (20, 12, "6 months", 240), (100, 3, "2 years", 600),
        (30, 2, "1 year", 60), (10, 1, "6 months", 10), (40, 1, "1 year", 40)]
    assert [e.verdict for e in ex] == ["good"] * 3 + ["not so good"] * 3
    for e in ex:
        assert udfs.CLV(e.aov, e.repeat, e.retention) == e.clv
        assert bool(e.fix) == (e.verdict != "good")


def test_rows_to_columns():
    cols = S.rows_to_columns("Brand", [{"period": 1, "orders": 5}, {"views": 7}])
    assert cols["period"] == [1, None] and cols["views"] == [None, 7]
    assert set(cols) == set(S.BRAND.keys)
    with pytest.raises(KeyError, match="nope"):
        S.rows_to_columns("Brand", [{"nope": 1}])
    assert S.empty_tables()["Orders"]["order_id"] == []


def test_input_kinds_have_formats_and_rules():
    for t in S.TABLES:
        for c in t.inputs:
            assert c.kind in S.KINDS
            if c.kind in ("int", "money", "date", "datetime", "rating", "choice", "month"):
                assert c.rule is not None, c.header
    order_id = S.ORDERS.inputs[0]
    assert (order_id.key, order_id.fmt) == ("order_id", "@")
    rating = next(c for c in S.ORDERS.inputs if c.key == "rating")
    assert (rating.rule.validate, rating.rule.minimum, rating.rule.maximum) == ("integer", 1, 5)
    content = next(c for c in S.VIDEOS.inputs if c.key == "content_type")
    assert content.rule.validate == "list" and "tutorial" in content.rule.choices


def test_customers_sheet_compares_the_predicted_clv_and_lays_its_tables_out_fixed():
    p = S.plan(shapes={"customer_clv": (958, 6)})
    cells = [c for c in p.cells if c.sheet == S.CUSTOMERS_SHEET]
    rows = {c.value: c.row for c in cells if c.col == 0 and isinstance(c.value, str)}
    # the predicted CLV beside the calculator's CLV and CAC, each with how to read it
    for label, key, bench, how in S.CUSTOMER_ROWS:
        value = next(c for c in cells if c.row == rows[label] and c.col == 1)
        assert value.expr == fx.Ref(key)
        note = next(c for c in cells if c.row == rows[label] and c.col == 3)
        assert note.value == how and how.endswith(".")
        rated = [c for c in cells if c.row == rows[label] and c.col == 2]
        assert [c.expr for c in rated] == ([fx.Ref(f"rating.{bench}")] if bench else [])
    assert {"pclv", "clv_margin", "cac", "pclv_cac"} <= {k for _, k, _, _ in S.CUSTOMER_ROWS}
    # every array under its title, its one note and its formula text; fixed sizes first
    anchors = {c.key: c for c in cells if c.array}
    assert list(anchors) == [a.key for a in S.CUSTOMER_ARRAYS]
    for a in S.CUSTOMER_ARRAYS:
        at = anchors[a.key]
        assert rows[a.title] == at.row - 3 and at.col == 0
        assert next(c for c in cells if c.row == at.row - 2).value == a.help
        assert next(c for c in cells if c.row == at.row - 1).value.startswith("=")
    # fixed sizes first, the per-customer table last with nothing below it
    fixed = [a for a in S.CUSTOMER_ARRAYS if a.rows is not None]
    assert fixed == list(S.CUSTOMER_ARRAYS[:-1]) and S.CUSTOMER_ARRAYS[-1].rows is None
    last = anchors["customer_clv"]
    assert max(c.row for c in cells) == last.row
    assert p.print_rows[S.CUSTOMERS_SHEET] == last.row + 958 - 1
    # no shape moves a cell of the sheet (the arrays' own results aside)
    odd = S.plan(shapes={a.key: (1, 1) for a in S.CUSTOMER_ARRAYS})
    assert [(c.row, c.col, c.value) for c in odd.cells if c.sheet == S.CUSTOMERS_SHEET] == \
        [(c.row, c.col, c.value) for c in cells]
    # the heat map: months 1 .. 11 of the 12 cohorts
    (heat,) = p.heat_maps
    tri = anchors["cohorts"]
    assert heat == (S.CUSTOMERS_SHEET, tri.row + 1, 3, tri.row + 12, 13)


def test_predicted_clv_kpis_and_benchmark():
    p = S.plan()
    text = {key: fx.render(S.KPIS[key].expr, fx.RenderContext("KPIs", address=p.address))
            for key in ("pclv", "pclv_cac")}
    assert text["pclv"] == ("=PREDICTED_CLV(Orders[Buyer],Orders[Created],"
                            "Orders[Counted sales],12,Margin,0.01)")
    # blank unless both KPIs it reads are numbers (not measured is not zero)
    assert re.fullmatch(r'=IF\(AND\(ISNUMBER\((B\d+)\),ISNUMBER\((B\d+)\)\),LTV_CAC\(\1,\2\),""\)',
                        text["pclv_cac"]), text["pclv_cac"]
    b = S.BENCHMARK["pclv_cac"]
    assert (b.kpi, b.weak_limit, b.good_limit) == ("pclv_cac", 1.0, 3.0)
    assert S.KPIS["pclv_cac"].benchmark == "pclv_cac"
    # the same bands as LTV:CAC (docs/kpi-definitions.md section 2)
    ltv = S.BENCHMARK["ltv_cac"]
    assert (b.weak_limit, b.good_limit) == (ltv.weak_limit, ltv.good_limit)
