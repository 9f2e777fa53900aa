"""The synthetic demo shop: seeded, shaped like the real exports, realistic."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from xl_kpis import metrics as m
from xl_kpis.book import demo
from xl_kpis.book import schema as S


@pytest.fixture(scope="module")
def rows():
    return demo.rows()


def test_same_seed_same_data_other_seed_other_data(rows):
    assert demo.rows() == rows
    assert demo.rows(demo.SEED + 1)["Orders"] != rows["Orders"]


def test_keys_and_plain_python_values(rows):
    plain = (int, float, str, date, datetime, type(None))
    for t in S.TABLES:
        assert rows[t.name], t.name
        for r in rows[t.name]:
            assert set(r) == set(t.keys)
            assert all(type(v) in plain for v in r.values()), r
    cols = demo.tables()
    assert set(cols) == set(S.TABLE) and list(cols["Orders"]) == list(S.ORDERS.keys)


def test_money_is_rounded_to_cents(rows):
    for t in S.TABLES:
        money = [c.key for c in t.inputs if c.kind == "money"]
        for r in rows[t.name]:
            for k in money:
                if r[k] is not None:
                    assert round(r[k], 2) == r[k], (t.name, k, r[k])


def test_campaigns(rows):
    c = rows["Campaigns"]
    assert len(c) == 12 and len({r["campaign"] for r in c}) == 12
    for r in c:
        assert 0.004 <= m.ctr(r["clicks"], r["impressions"]) <= 0.021
        assert 0.5 <= m.roas(r["revenue"], r["cost"]) <= 6
        assert r["new_customers"] <= r["conversions"] <= r["clicks"] <= r["impressions"]
        assert r["views_p100"] <= r["views_p75"] <= r["views_p50"] <= r["views_p25"] \
            <= r["video_views"]
        assert len(r["ad_id"]) == 19 and r["ad_id"].isdigit()
    total = m.roas(sum(r["revenue"] for r in c), sum(r["cost"] for r in c))
    assert 1.5 <= total <= 4.5


def test_videos(rows):
    v = rows["Videos"]
    assert len(v) == 60
    types = {r["content_type"] for r in v}
    assert types == set(demo.CONTENT) and len(types) == 5 and types <= set(S.CONTENT_TYPES)
    for r in v:
        assert max(r["likes"], r["completed_views"], r["profile_visits"]) <= r["views"]
        assert r["video_link"].startswith("https://www.tiktok.com/@")
        assert (r["orders"] == 0) == (r["revenue"] == 0)
    assert len({r["video_link"] for r in v}) == 60


def test_orders_look_like_the_seller_center_export(rows):
    lines = rows["Orders"]
    assert 2000 <= len(lines) <= 4000
    by_order = defaultdict(list)
    for r in lines:
        by_order[r["order_id"]].append(r)
    assert any(len(ls) > 1 for ls in by_order.values())           # multi-SKU orders
    for oid, ls in by_order.items():
        assert isinstance(oid, str) and oid.isdigit() and len(oid) in (18, 19)
        assert len({r["order_amount"] for r in ls}) == 1           # repeated on each line
        assert len({(r["buyer"], r["status"], r["created"]) for r in ls}) == 1
        assert ls[0]["order_amount"] >= round(sum(r["sku_subtotal"] for r in ls), 2)
    statuses = {oid: ls[0]["status"] for oid, ls in by_order.items()}
    cancelled = sum(s == "Cancelled" for s in statuses.values()) / len(statuses)
    assert 0.04 <= cancelled <= 0.09
    assert set(statuses.values()) <= set(S.ORDER_STATUSES)
    buyers = {r["buyer"] for r in lines}
    assert 850 <= len(buyers) <= 1100
    kept = [r for r in lines if r["status"] != "Cancelled"]
    rpr = m.repeat_purchase_rate([r["buyer"] for r in kept], [r["order_id"] for r in kept])
    assert 0.18 <= rpr <= 0.32
    created = [r["created"] for r in lines]
    assert max(created) - min(created) <= timedelta(days=demo.ORDER_DAYS)
    assert demo.ORDERS_START <= min(created).date() and max(created).date() <= demo.END


def test_refunds_ratings_and_deliveries(rows):
    lines = rows["Orders"]
    rated = [r["rating"] for r in lines if r["rating"] is not None]
    assert 0.05 * len(lines) <= len(rated) <= 0.3 * len(lines)
    assert set(rated) <= {1, 2, 3, 4, 5} and 3.8 <= sum(rated) / len(rated) <= 4.7
    for r in lines:
        if r["rating"] is not None or r["returned_qty"]:
            assert r["delivered"] is not None and r["status"] == "Completed"
        if r["status"] == "Cancelled":
            assert r["delivered"] is None and r["cancel_type"] == "Cancel"
        if r["delivered"] is not None:
            assert r["created"] < r["paid"] < r["delivered"]
    assert any(r["refund"] > 0 for r in lines)
    assert all(r["country"] == "United States" and r["state"] for r in lines)


def test_brand_months(rows):
    b = rows["Brand"]
    assert len(b) == 12
    periods = [r["period"] for r in b]
    assert all(p.day == 1 for p in periods) and periods == sorted(periods)
    assert periods[-1] == demo.END.replace(day=1)
    for prev, cur in zip(b, b[1:]):
        assert cur["followers_start"] == prev["followers_end"]
    growth = m.follower_growth_rate([r["followers_start"] for r in b],
                                    [r["followers_end"] for r in b])
    assert all(-0.01 <= g <= 0.1 for g in growth)
    # every month's orders are those of the Orders sheet
    orders = rows["Orders"]
    for r in b:
        ids = {o["order_id"] for o in orders if o["status"] != "Cancelled"
               and (o["created"].year, o["created"].month) == (r["period"].year,
                                                               r["period"].month)}
        assert r["orders"] == len(ids)
    assert b[0]["competitor_c_mentions"] is None and b[-1]["competitor_c_mentions"] > 0


def test_orders_support_the_predictive_clv_and_fill_the_cohort_triangle(rows):
    # buyers arrive all year and buy again with BG/NBD's drop-out (demo.BUYING): the models fit
    # (a fit that runs off raises), twelve monthly cohorts come back, fewer as months pass
    from xl_kpis.metrics import predictive as P

    kept = [r for r in rows["Orders"] if r["status"] != "Cancelled"]
    lines = ([r["buyer"] for r in kept], [r["created"] for r in kept],
             [r["sku_subtotal"] for r in kept])
    model = P.clv_model(*lines)
    assert model.summary.customer.size == len(set(lines[0]))
    assert 0.2 <= (model.summary.frequency > 0).mean() <= 0.4
    assert model.bgnbd.a > 0 and model.gamma_gamma.q > 1
    table = P.customer_clv(*lines, margin=0.4)
    alive = table["p_alive"]
    assert (alive == 1).any() and (alive < 0.5).any()        # P(alive) buckets are not empty
    cohorts = P.cohort_retention(lines[0], lines[1])
    assert cohorts.cohort.size == 12 and cohorts.retention.shape == (12, 12)
    first_months = np.nanmean(cohorts.retention[:6, 1:4])
    later_months = np.nanmean(cohorts.retention[:6, 7:10])
    assert 0.02 < later_months < first_months < 0.3
