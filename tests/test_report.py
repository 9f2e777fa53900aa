"""Shop-level KPIs: the order rules of the report, on small hand-checked data."""

import json
import math

import pytest

from xl_kpis.report import FIELDS, format_table, shop_kpis

# Order lines as a TikTok Shop export has them (tiktok-exports.md §B): one row per
# SKU line, Order Amount repeated on every line of an order.
ORDERS = {
    "order_id": ["576000000000000001", "576000000000000001", "576000000000000002",
                 "576000000000000003", "576000000000000004", "576000000000000005"],
    "status": ["Shipped", "Shipped", "Cancelled", "Delivered", "Completed", " canceled\t"],
    "buyer": ["ann", "ann", "bob", "ann", "cy", "cy"],
    "order_amount": [30.10, 30.10, 99.00, 10.05, 5.00, 7.00],
}
ADS = {"cost": [10.0, 20.0], "impressions": [1000, 2000], "clicks": [10, 30],
       "conversions": [2, 3], "revenue": [50.0, 40.0]}
VIDEOS = {"views": [1000, 3000], "likes": [50, 100], "comments": [5, 15], "shares": [5, 20],
          "saves": [0, 5], "completed_views": [400, 900]}
BRAND = {"followers_start": [1000, 1100], "followers_end": [1100, 1250]}


def test_order_rules():
    k = shop_kpis(orders=ORDERS)
    # cancelled orders 2 and 5 are out; order 1 counts once: 30.10 + 10.05 + 5.00
    assert k["orders"] == 3
    assert k["revenue"] == pytest.approx(45.15, abs=1e-9)
    assert k["aov"] == pytest.approx(15.05, abs=1e-9)
    # ann (orders 1 and 3) and cy (order 4); bob's only order was cancelled
    assert k["buyers"] == 2
    assert k["repeat_purchase_rate"] == 0.5


def test_ad_rules_pool_the_campaigns():
    k = shop_kpis(ads=ADS)
    assert k["spend"] == 30.0 and k["ad_revenue"] == 90.0
    assert k["ctr"] == pytest.approx(40 / 3000)      # Σ clicks / Σ impressions
    assert k["roas"] == 3.0                          # Σ revenue / Σ spend
    assert k["conversion_rate"] == 5 / 40            # Σ conversions / Σ clicks
    assert k["cpc"] == 0.75 and k["cpm"] == 10.0


def test_content_and_brand():
    k = shop_kpis(videos=VIDEOS, brand=BRAND)
    assert k["engagement_rate"] == pytest.approx(195 / 4000)   # (150+20+25) / 4000, no saves
    assert k["completion_rate"] == pytest.approx(1300 / 4000)
    assert k["follower_growth_rate"] == pytest.approx(0.25)    # 1000 -> 1250


def test_undefined_values_are_none_and_json_serialisable():
    k = shop_kpis()
    assert set(k) == {key for key, _, _ in FIELDS}
    assert k["roas"] is None and k["orders"] is None
    json.dumps(k)
    assert "—" in format_table(k)


def test_every_value_is_finite_or_none():
    k = shop_kpis(ORDERS, ADS, VIDEOS, BRAND)
    assert all(v is None or math.isfinite(v) for v in k.values())
