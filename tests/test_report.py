"""Shop-level KPIs: the KPIs sheet's rows, on small hand-checked data, and the report of a
book compared with its KPIs sheet."""

import csv
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookfiles import kpi_differences, sheet_kpis
from xl_kpis.book import schema as S
from xl_kpis.imports import read_order_columns
from xl_kpis.metrics._kpi import LazyCoded
from xl_kpis.cli import main
from xl_kpis.imports.synth import write_order_export
from xl_kpis.report import (FIELDS, book_kpis, clv_model_report, format_clv_model, format_table,
                            format_value, shop_kpis)

DATA = Path(__file__).parent / "data" / "exports"

# Order lines as a TikTok Shop export has them (docs/tiktok-exports.md §B): one row per
# SKU line, Order Amount repeated on every line of an order.
ORDERS = {
    "order_id": ["576000000000000001", "576000000000000001", "576000000000000002",
                 "576000000000000003", "576000000000000004", "576000000000000005"],
    "status": ["Shipped", "Shipped", "Cancelled", "Delivered", "Completed", "canceled"],
    "buyer": ["ann", "ann", "bob", "ann", "cy", "cy"],
    "order_amount": [30.10, 30.10, 99.00, 10.05, 5.00, 7.00],
}
ADS = {"cost": [10.0, 20.0], "impressions": [1000, 2000], "clicks": [10, 30],
       "conversions": [2, 3], "revenue": [50.0, 40.0]}
VIDEOS = {"views": [1000, 3000], "likes": [50, 100], "comments": [5, 15], "shares": [5, 20],
          "saves": [0, 5], "completed_views": [400, 900]}
BRAND = {"followers_start": [1000, 1100], "followers_end": [1100, 1250]}


def test_the_fields_are_the_kpis_sheet_rows():
    assert [key for key, _, _, _ in FIELDS] == list(S.KPIS)
    labels = {key: label for key, label, _, _ in FIELDS}
    # the definition of follower growth is in its name: per month, not first to last
    assert labels["followers"] == "Follower growth per month"


def test_order_rules():
    k = shop_kpis(orders=ORDERS)
    # cancelled orders 2 and 5 are out (the sheet compares the status as Excel's "=" does:
    # any case); order 1 counts once: 30.10 + 10.05 + 5.00
    assert k["orders"] == 3
    assert k["revenue"] == pytest.approx(45.15, abs=1e-9)
    assert k["aov"] == pytest.approx(15.05, abs=1e-9)
    # ann (orders 1 and 3) and cy (order 4); bob's only order was cancelled
    assert k["buyers"] == 2
    assert k["rpr"] == 0.5


def test_ad_rules_pool_the_campaigns():
    k = shop_kpis(ads=ADS)
    assert k["ad_cost"] == 30.0 and k["ad_revenue"] == 90.0
    assert k["ctr"] == pytest.approx(40 / 3000)      # Σ clicks / Σ impressions
    assert k["roas"] == 3.0                          # Σ revenue / Σ spend
    assert k["cvr"] == 5 / 40                        # Σ conversions / Σ clicks
    assert k["cpc"] == 0.75 and k["cpm"] == 10.0
    # the gross margin of the book's settings: ROI = (90 x 0.5 - 30) / 30
    assert shop_kpis(ads=ADS, settings={"Margin": 0.5})["roi"] == pytest.approx(0.5)


def test_content_and_brand():
    k = shop_kpis(videos=VIDEOS, brand=BRAND)
    assert k["er"] == pytest.approx(195 / 4000)        # (150+20+25) / 4000, no saves
    assert k["completion"] == pytest.approx(1300 / 4000)
    # per month, weighted by followers: (1100 + 1250 - 1000 - 1100) / (1000 + 1100)
    assert k["followers"] == pytest.approx(250 / 2100)


def test_undefined_values_are_none_and_json_serialisable():
    k = shop_kpis()
    assert set(k) == {key for key, _, _, _ in FIELDS} | {"predicted_clv"}
    assert k["roas"] is None and k["orders"] is None
    json.dumps(k)
    assert "—" in format_table(k)


def test_every_value_is_finite_or_none():
    k = shop_kpis(ORDERS, ADS, VIDEOS, BRAND)
    assert all(v is None or math.isfinite(v) for v in k.values())


def test_values_are_shown_in_the_sheet_s_number_formats():
    assert format_value(1234.5, S.FMT["money"]) == "1,234.50"
    assert format_value(0.01234, S.FMT["percent"]) == "1.23%"
    assert format_value(2.5, S.FMT["ratio"]) == "2.50x"
    assert format_value(3.26, S.FMT["months"]) == "3.3 mo"
    assert format_value(1200, S.FMT["int"]) == "1,200"
    assert format_value(None, S.FMT["int"]) == "—"


# --- the report of a book is its KPIs sheet ---------------------------------------------

def test_report_json_is_the_kpis_sheet(demo, template, tmp_path):
    from bookfiles import copy
    from xl_kpis.book.importer import import_export
    from xl_kpis.cli import main

    book = copy(template, tmp_path / "imported.xlsx")
    import_export("orders", DATA / "orders_us.csv", book)
    import_export("ads", DATA / "ads_campaign_usd.csv", book)
    for b in (demo, book):
        r = CliRunner().invoke(main, ["report", str(b), "--json"])
        assert r.exit_code == 0, r.output
        report = json.loads(r.output)
        assert list(report) == list(S.KPIS) + ["predicted_clv", "clv_model"]
        assert kpi_differences(report, sheet_kpis(b)) == set()
        assert report == book_kpis(b)
    assert sum(v is not None for v in sheet_kpis(book).values()) > 15
    # the check can fail: a sheet value planted in a copy
    planted = dict(sheet_kpis(demo), roas=9.99)
    assert kpi_differences(book_kpis(demo), planted) == {"roas"}


# --------------------------------------------------------------------------- straight from an export

def _export_kpis_by_hand(path):
    """The order KPIs of an export computed line by line with the csv module (the rules above)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    col = {h: i for i, h in enumerate(rows[0])}
    amount, orders_of = {}, {}
    for r in rows[2:]:                                   # row 2 describes the fields
        if r[col["Order Status"]].strip().lower() in ("canceled", "cancelled"):
            continue
        order, buyer = r[col["Order ID"]].strip(), r[col["Buyer Username"]].strip()
        amount.setdefault(order, float(r[col["Order Amount"]]))
        if buyer:
            orders_of.setdefault(buyer, set()).add(order)
    revenue = sum(amount.values())
    return {"orders": len(amount), "buyers": len(orders_of), "revenue": revenue,
            "aov": revenue / len(amount),
            "rpr": sum(len(o) >= 2 for o in orders_of.values()) / len(orders_of)}


@pytest.mark.parametrize("lines, blank_buyers", [(3000, False), (3000, True), (400, True)])
def test_export_columns_give_the_kpis_of_their_lines(tmp_path, lines, blank_buyers):
    """The factorised columns of read_order_columns give exactly the KPIs of the same columns as lists."""
    path = tmp_path / "orders.csv"
    write_order_export(path, lines, seed=7)
    if blank_buyers:                                      # some lines without a buyer: None in the column
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        col = rows[0].index("Buyer Username")
        for i, row in enumerate(rows[2:]):
            if i % 10 == 0:
                row[col] = "\u00a0" if i % 20 else ""
        with open(path, "w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f, lineterminator="\r\n").writerows(rows)
    cols = read_order_columns(path)
    assert (None in cols["buyer"].tolist()) == blank_buyers
    kpis = shop_kpis(cols)
    assert kpis == shop_kpis({key: column.tolist() for key, column in cols.items()})
    codes_only = read_order_columns(path, labels=False)     # what `report --orders` reads
    assert isinstance(codes_only["buyer"], LazyCoded) and shop_kpis(codes_only) == kpis
    assert codes_only["buyer"]._values is None              # the KPIs never made the labels
    expected = _export_kpis_by_hand(path)
    for key, value in expected.items():
        assert kpis[key] == pytest.approx(value, rel=1e-12), key
    assert kpis["orders"] > 100 and 0 < kpis["rpr"] < 1


def test_export_kpis_known_values():
    cols = read_order_columns(DATA / "orders_us.csv")
    k = shop_kpis(cols)
    # order ...123 (2 lines, 40.05 once) and ...124 (21.44) by jane.doe; bob_88's ...1239 was cancelled
    assert (k["orders"], k["buyers"], k["revenue"], k["rpr"]) == (2, 1, pytest.approx(61.49), 1.0)
    assert k["aov"] == pytest.approx(30.745)


# --------------------------------------------------------------------------- predicted CLV

def _model_orders(customers=600, seed=4):
    """Order lines drawn from known BG/NBD and Gamma-Gamma processes, as a book's Orders
    columns: one SKU line per purchase plus a cancelled line for every 7th purchase."""
    from datetime import datetime

    from xl_kpis.metrics.predictive import BgNbd, GammaGamma, simulate_orders

    ids, days, amounts = simulate_orders(customers, BgNbd(0.6, 5.0, 0.7, 2.5, 0.0),
                                         GammaGamma(6.0, 4.0, 15.0, 0.0), seed=seed)
    cols = {"order_id": [], "status": [], "buyer": [], "order_amount": [], "created": [],
            "sku_subtotal": []}
    for k, (who, day, amount) in enumerate(zip(ids.tolist(), days.tolist(), amounts.tolist())):
        lines = [("Completed", round(amount, 2))] + ([("Cancelled", 99.0)] if k % 7 == 0 else [])
        for j, (status, value) in enumerate(lines):
            cols["order_id"].append(f"57600{k:07d}{j}")
            cols["status"].append(status)
            cols["buyer"].append(f"buyer{who}")
            cols["order_amount"].append(value)
            cols["created"].append(datetime(day.year, day.month, day.day, 10 + j))
            cols["sku_subtotal"].append(value)
    return cols


def test_predicted_clv_is_the_model_on_the_lines_that_count():
    from xl_kpis import predicted_clv

    cols = _model_orders()
    clv = clv_model_report(cols, margin=0.4)
    counted = [i for i, s in enumerate(cols["status"]) if s != "Cancelled"]
    expected = predicted_clv([cols["buyer"][i] for i in counted],
                             [cols["created"][i] for i in counted],
                             [cols["sku_subtotal"][i] for i in counted], 12, 0.4, 0.01)
    assert clv["predicted_clv"] == pytest.approx(expected, rel=1e-12)
    assert clv["predicted_clv"] != pytest.approx(               # the cancelled lines would count
        predicted_clv(cols["buyer"], cols["created"], cols["sku_subtotal"], 12, 0.4), rel=1e-3)
    p = clv["parameters"]
    assert set(p) >= {"r", "alpha", "a", "b", "p", "q", "gamma", "Customers", "As of"}
    assert p["Time unit"] == "weeks" and (clv["months"], clv["discount"]) == (12, 0.01)
    assert shop_kpis(cols, clv=clv)["predicted_clv"] == clv["predicted_clv"]
    assert shop_kpis(cols)["predicted_clv"] == pytest.approx(clv["predicted_clv"] / 0.4)
    text = format_clv_model(clv)
    assert "x 40% gross margin" in text and "BG/NBD" in text and "Gamma-Gamma" in text
    json.dumps(clv)


@pytest.fixture
def fits(monkeypatch):
    """The number of BG/NBD fits made so far (each CLV model fit makes one)."""
    from xl_kpis.metrics import predictive as P

    made = []
    fit = P.bgnbd_fit

    def counted(*args, **kwargs):
        made.append(1)
        return fit(*args, **kwargs)

    monkeypatch.setattr(P, "bgnbd_fit", counted)
    return lambda: len(made)


def test_the_report_fits_the_clv_model_once_and_shows_the_sheet_s_fit(fits):
    from xl_kpis.metrics import predictive as P
    from xl_kpis.report import report_kpis

    cols = _model_orders()
    kpis, clv = report_kpis(cols, settings={"Margin": 0.4}, margin=0.4)
    assert fits() == 1
    # the model's figure with the sheet's margin is the sheet's row, to the last bit
    assert clv["predicted_clv"] == kpis["pclv"] == kpis["predicted_clv"]
    # and its parameters are those of the fit of the lines that count, made independently
    counted = [i for i, s in enumerate(cols["status"]) if s != "Cancelled"]
    model = P.clv_model(*([cols[k][i] for i in counted] for k in ("buyer", "created",
                                                                    "sku_subtotal")))
    assert clv["parameters"] == dict(P.parameter_rows(model))
    assert fits() == 2                                  # (the count sees every fit)
    # a revenue CLV from the same fit: the sheet's row keeps the gross margin setting
    kpis, revenue = report_kpis(cols, settings={"Margin": 0.4})
    assert fits() == 3 and revenue["parameters"] == clv["parameters"]
    assert revenue["predicted_clv"] == pytest.approx(kpis["pclv"] / 0.4, rel=1e-12)
    assert clv_model_report(cols)["parameters"] == clv["parameters"] and fits() == 4


def test_a_book_s_report_fits_the_clv_model_once(demo, fits):
    report = book_kpis(demo)
    assert fits() == 1
    assert report["predicted_clv"] == report["pclv"] == sheet_kpis(demo)["pclv"]
    assert report["clv_model"]["margin"] == 0.4


@pytest.mark.parametrize("orders, why", [
    (None, "no order lines"),
    ({"buyer": ["a"], "order_id": ["1"]}, "no order lines"),           # no created / subtotal
    ({k: v[:3] for k, v in _model_orders(5).items()}, "needs at least 2 customers"),
    # the sheet's cell rules stop the call before a fit: no created time at all (blank), or
    # one that is no date (#VALUE!)
    ({**_model_orders(5), "created": [None] * len(_model_orders(5)["created"])},
     "no order line that counts"),
    ({**_model_orders(5), "created": ["soon"] + _model_orders(5)["created"][1:]},
     "predicted CLV shows #VALUE!"),
])
def test_predicted_clv_not_fitted_says_why(orders, why):
    clv = clv_model_report(orders)
    assert clv["predicted_clv"] is None and why in clv["error"]
    assert "not fitted" in format_clv_model(clv)
    json.dumps(clv)


def test_data_that_is_not_there_is_not_measured():
    # no buyer names, no order amounts, no conversions, no completed views: None, not 0
    orders = {k: v for k, v in ORDERS.items() if k not in ("buyer", "order_amount")}
    ads = {**ADS, "conversions": [None, None]}
    videos = {k: v for k, v in VIDEOS.items() if k != "completed_views"}
    k = shop_kpis(orders=orders, ads=ads, videos=videos)
    assert k["orders"] == 3
    assert [k[x] for x in ("buyers", "rpr", "revenue", "aov", "cvr", "cpa", "completion")] \
        == [None] * 7
    assert k["ctr"] == pytest.approx(40 / 3000) and k["er"] == pytest.approx(195 / 4000)
    table = format_table(k)
    assert "Video completion rate" in table and table.count("—") >= 7


@pytest.mark.parametrize("keep", ["header", "description", "refused"])
def test_an_export_without_a_line_to_count_is_not_measured(tmp_path, keep):
    """A shop with no order in the period (the export's header, maybe its description row),
    or an export whose every line is refused (ids Excel saved as 5.76400E+17): every order
    KPI is not measured, and the report says so instead of failing."""
    path = tmp_path / "orders.csv"
    write_order_export(path, 20, seed=2)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    if keep == "header":
        rows = rows[:1]
    elif keep == "description":
        rows = rows[:2]
    else:
        at = rows[0].index("Order ID")
        for r in rows[2:]:
            r[at] = f"{float(r[at]):.5E}"
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    columns = read_order_columns(path, labels=False)
    assert all(len(v) == 0 for v in columns.values())
    assert isinstance(columns["order_id"], LazyCoded)
    k = shop_kpis(orders=columns)
    assert [k[x] for x in ("orders", "revenue", "aov", "buyers", "rpr")] == [None] * 5
    r = CliRunner().invoke(main, ["report", "--orders", str(path), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["orders"] is None
    assert ("scientific notation" in r.stderr) == (keep == "refused")


def test_counts_are_integers_in_json():
    k = json.loads(json.dumps(shop_kpis(orders=ORDERS, videos=VIDEOS)))
    assert [type(k[x]) for x in ("orders", "buyers", "views")] == [int] * 3
    assert (k["orders"], k["buyers"], k["views"]) == (3, 2, 4000)      # by hand from ORDERS, VIDEOS
    assert isinstance(k["revenue"], float)


def test_export_columns_with_the_clv_columns_give_the_report_of_lists(tmp_path):
    """With the CLV columns (created, SKU subtotal), the reader's arrays and codes give the
    report (KPIs and fitted CLV model) of the same columns as lists."""
    from xl_kpis.report import CLV_ORDER_KEYS, report_kpis

    path = tmp_path / "orders.csv"
    write_order_export(path, 3000, seed=5)
    cols = read_order_columns(path, ("order_id", "status", "buyer", "order_amount")
                              + CLV_ORDER_KEYS)
    got = report_kpis(cols)
    want = report_kpis({key: column.tolist() for key, column in cols.items()})
    assert got == want and got[1]["predicted_clv"] is not None


def test_profile_visits_from_studio_say_so():
    # no profile visits on the Videos sheet, profile views from Studio's overview on the
    # Brand sheet: the unit the KPIs sheet computes says where they come from, and so does
    # the report (its static unit is the one the sheet shows without data)
    from xl_kpis.report import report_kpis

    brand = {"profile_views": [100, 50], "views": [1000, 1500]}
    kpis, _ = report_kpis(videos=VIDEOS, brand=brand)
    assert kpis["profile_visits"] == 150 and kpis["pvr"] == pytest.approx(150 / 2500)
    assert kpis.units["profile_visits"] == "profile views (Brand: Studio overview)"
    assert kpis.units["pvr"] == "% of views (Brand: Studio overview)"
    assert "% of views (Brand: Studio overview)" in format_table(kpis)
    kpis, _ = report_kpis(videos={**VIDEOS, "profile_visits": [10, 20]}, brand=brand)
    assert kpis["profile_visits"] == 30 and kpis.units["profile_visits"] == "visits"


def test_the_predicted_clv_is_printed_once(tmp_path):
    # the KPIs sheet's row is the predicted CLV of the text table; the model's own figure
    # (with the margin it was fitted with) is in the model's lines, labelled as such
    from xl_kpis.report import report_kpis

    path = tmp_path / "orders.csv"
    write_order_export(path, 3000, seed=5)
    cols = read_order_columns(path, ("order_id", "status", "buyer", "order_amount",
                                     "created", "sku_subtotal"))
    kpis, clv = report_kpis(cols)
    text = format_table(kpis) + "\n" + format_clv_model(clv)
    assert text.count("Predicted CLV after margin") == 1 and "mean per buyer" not in text
    assert f"revenue): {clv['predicted_clv']:,.2f} per buyer" in text
