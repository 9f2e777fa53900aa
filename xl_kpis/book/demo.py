"""A realistic synthetic TikTok shop to fill the template with (seeded: same data every time).

The shop, "Glow Lab", sells a dozen beauty products:

* **Campaigns** — 12 ad campaigns over the 90 days, one row each (CTR 0.5-2 %,
  ROAS 1-5, some of them below break-even);
* **Videos** — 60 organic videos of five content types, each type with its
  own reach, engagement and selling power;
* **Orders** — about 1,000 buyers arriving over the twelve months, each
  buying again at a rate of her own and dropping out for good after a repeat
  order with a probability of her own (the BG/NBD process, :data:`BUYING`),
  with a basket size of her own: a quarter of them buy again, so the
  predicted CLV has data to fit and the cohort triangle twelve cohorts; a few
  thousand SKU lines (multi-SKU orders repeat the order amount on each line),
  ~6 % cancelled, some refunds and returns, ratings on part of the delivered
  orders, 18-digit order ids as text;
* **Brand** — 12 months of followers, mentions (brand and three
  competitors), support queries, orders and Studio overview totals; each
  month's orders match the Orders sheet.

All values are plain Python (int, float, str, date, datetime, None); money is
rounded to cents.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from ..metrics.predictive import BgNbd, simulate_orders
from . import schema as S

__all__ = ["SEED", "END", "DAYS", "ORDERS_START", "ORDER_DAYS", "BUYING", "tables", "rows"]

#: The default seed of the demo shop.
SEED = 7
#: The last day of the demo data, and how many days the campaigns and videos cover.
END = date(2026, 9, 30)
DAYS = 90
START = END - timedelta(days=DAYS - 1)
#: The orders cover the twelve months of the Brand sheet.
ORDERS_START = date(END.year - 1, END.month + 1, 1) if END.month < 12 else date(END.year, 1, 1)
ORDER_DAYS = (END - ORDERS_START).days + 1
#: How the demo's buyers buy again and drop out (BG/NBD, rates per week): a purchase every
#: 50 weeks on average while alive, a drop-out probability of 29 % per repeat order on average.
BUYING = BgNbd(r=0.6, alpha=30.0, a=1.0, b=2.5, log_likelihood=float("nan"))

# name, category, price, variations, popularity, seller SKU stem
PRODUCTS = (
    ("Glow Serum 30 ml", "Skincare", 24.99, ("30 ml",), 9, "GL-SER"),
    ("Hydra Gel Moisturiser", "Skincare", 19.99, ("50 ml",), 7, "GL-HYD"),
    ("Vitamin C Toner", "Skincare", 16.50, ("100 ml", "200 ml"), 5, "GL-TON"),
    ("Overnight Lip Mask", "Lip care", 12.00, ("Berry", "Vanilla", "Mint"), 8, "GL-LIP"),
    ("Tinted Lip Oil", "Makeup", 14.00, ("Rose", "Coral", "Clear"), 6, "GL-OIL"),
    ("Brow Sculpt Gel", "Makeup", 11.50, ("Clear", "Brown"), 3, "GL-BRW"),
    ("Silk Sleep Scrunchies", "Accessories", 9.99, ("Set of 3",), 4, "GL-SCR"),
    ("Jade Face Roller", "Tools", 21.00, ("Green", "Rose quartz"), 3, "GL-ROL"),
    ("SPF 50 Daily Fluid", "Skincare", 22.00, ("50 ml",), 6, "GL-SPF"),
    ("Clay Detox Mask", "Skincare", 17.99, ("75 ml",), 4, "GL-CLY"),
    ("Glow Body Oil", "Body care", 27.50, ("100 ml",), 2, "GL-BOD"),
    ("Travel Mini Kit", "Sets", 34.99, ("4 minis",), 3, "GL-KIT"),
)

STATES = ("California", "Texas", "Florida", "New York", "Illinois", "Pennsylvania", "Ohio",
          "Georgia", "Washington", "Arizona", "Michigan", "New Jersey")
STATE_WEIGHTS = (14, 10, 9, 8, 5, 5, 4, 4, 4, 3, 3, 3)
MESSAGES = ("Please gift wrap", "Leave at the front door", "Can you ship fast?",
            "Birthday present, no invoice please", "Love your videos!")

# content type: (share of videos, views multiplier, like rate, orders per 1,000 views)
CONTENT = {
    "tutorial": (0.26, 1.0, 0.060, 1.6),
    "unboxing": (0.20, 1.2, 0.055, 1.1),
    "challenge": (0.18, 2.2, 0.080, 0.35),
    "review": (0.22, 0.9, 0.050, 1.9),
    "behind the scenes": (0.14, 0.6, 0.070, 0.5),
}

CAMPAIGNS = (
    ("Glow Serum launch", "Broad 18-34", "Serum tutorial hook"),
    ("Lip Mask spark ads", "Creators - lip care", "Creator lip routine"),
    ("Retargeting - viewers 30d", "Video viewers 30d", "Back in stock"),
    ("SPF summer push", "Broad 25-44", "SPF myth busting"),
    ("Travel kit bundles", "Interest - travel", "Pack with me"),
    ("LIVE shopping promo", "LIVE viewers", "LIVE teaser"),
    ("Body oil awareness", "Broad 18-44", "Glow body routine"),
    ("Moisturiser GMV Max", "Automatic", "Product card"),
    ("Toner catalog ads", "Catalog - all", "Carousel"),
    ("Lookalike buyers", "Lookalike 3%", "Top reviews"),
    ("Face roller creators", "Creators - tools", "Creator unboxing"),
    ("Holiday gift sets", "Broad 25-54", "Gift guide"),
)


def _money(x: float) -> float:
    return round(float(x), 2)


def _campaigns(rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []
    for i, (name, group, ad) in enumerate(CAMPAIGNS):
        cost = _money(rng.uniform(250, 2600))
        impressions = int(cost / rng.uniform(4.0, 11.0) * 1000)
        clicks = int(rng.binomial(impressions, rng.uniform(0.005, 0.02)))
        aov = rng.uniform(28, 42)
        target_roas = rng.uniform(1.0, 5.0)
        cvr = float(np.clip(target_roas * cost / (clicks * aov), 0.005, 0.2))
        conversions = int(rng.binomial(clicks, cvr))
        views = int(impressions * rng.uniform(0.55, 0.8))
        p25 = int(views * rng.uniform(0.25, 0.4))
        p50 = int(p25 * rng.uniform(0.55, 0.7))
        p75 = int(p50 * rng.uniform(0.6, 0.75))

        def share(lo: float, hi: float) -> int:
            return int(rng.binomial(views, rng.uniform(lo, hi)))

        start = START + timedelta(days=int(rng.integers(0, 60)))
        out.append({
            "date": start, "period_end": END,           # each campaign runs to the end
            "campaign": name, "ad_group": group, "ad_name": ad,
            "ad_id": str(1790000000000000000 + int(rng.integers(10**14, 10**15)) * 10 + i),
            "cost": cost, "impressions": impressions, "clicks": clicks,
            "conversions": conversions,
            "revenue": _money(conversions * aov * rng.uniform(0.95, 1.05)),
            "new_customers": int(rng.binomial(conversions, rng.uniform(0.65, 0.85))),
            "video_views": views,
            "views_2s": int(views * rng.uniform(0.35, 0.55)),
            "views_6s": int(views * rng.uniform(0.15, 0.25)),
            "views_p25": p25, "views_p50": p50, "views_p75": p75,
            "views_p100": int(p75 * rng.uniform(0.55, 0.75)),
            "profile_visits": share(0.002, 0.008), "likes": share(0.01, 0.03),
            "comments": share(0.0005, 0.002), "shares": share(0.0005, 0.003),
            "follows": share(0.0005, 0.002),
        })
    return sorted(out, key=lambda r: (r["date"], r["campaign"]))


TITLES = {
    "tutorial": ("How I use the {p}", "3 steps with the {p}", "{p}: the right way"),
    "unboxing": ("Unboxing the {p}", "PR package: {p}", "What's inside: {p}"),
    "challenge": ("#GlowChallenge with the {p}", "24 hours with the {p}",
                  "Duet challenge: {p}"),
    "review": ("Honest review: {p}", "{p} after 30 days", "Is the {p} worth it?"),
    "behind the scenes": ("Packing orders: {p}", "How we make the {p}",
                          "Studio day: {p}"),
}


def _videos(rng: np.random.Generator, n: int = 60) -> list[dict[str, Any]]:
    types = list(CONTENT)
    shares = np.array([CONTENT[t][0] for t in types])
    out = []
    for i in range(n):
        kind = types[int(rng.choice(len(types), p=shares / shares.sum()))]
        _, reach, like_rate, opm = CONTENT[kind]
        views = int(rng.lognormal(np.log(9000 * reach), 1.0))
        product = PRODUCTS[int(rng.integers(len(PRODUCTS)))][0]
        orders = int(rng.poisson(views / 1000 * opm))

        def rate(lo: float, hi: float) -> int:
            return int(rng.binomial(views, rng.uniform(lo, hi)))

        out.append({
            "video_link": f"https://www.tiktok.com/@glowlab.shop/video/"
                          f"{7410000000000000000 + i * 7919 * 10**9 + int(rng.integers(10**9))}",
            "title": TITLES[kind][int(rng.integers(3))].format(p=product),
            "posted": START + timedelta(days=int(rng.integers(0, DAYS))),
            "content_type": kind, "views": views,
            "likes": int(rng.binomial(views, like_rate * rng.uniform(0.6, 1.4))),
            "comments": rate(0.002, 0.008), "shares": rate(0.002, 0.012),
            "saves": rate(0.003, 0.02), "completed_views": rate(0.2, 0.6),
            "profile_visits": rate(0.005, 0.02), "orders": orders,
            "revenue": _money(orders * rng.uniform(26, 40)),
        })
    return sorted(out, key=lambda r: (r["posted"], r["video_link"]))


def _order_times(rng: np.random.Generator, n_buyers: int) -> list[tuple[int, datetime]]:
    """(buyer index, created time) of every order, in time order.

    Buyers arrive through the year; each buys again as a Poisson process with a rate of her
    own and, after each repeat order, drops out for good with a probability of her own (the
    BG/NBD process with :data:`BUYING`): about a quarter of them buy again, more of those who
    arrived early, as in a real shop.
    """
    ids, days, _ = simulate_orders(n_buyers, BUYING, start=ORDERS_START.isoformat(),
                                   days=ORDER_DAYS, seed=int(rng.integers(2**31)))
    start = datetime(ORDERS_START.year, ORDERS_START.month, ORDERS_START.day)
    offsets = (days - np.datetime64(ORDERS_START.isoformat(), "D")).astype(np.int64)
    seconds = rng.integers(7 * 3600, 24 * 3600, size=ids.size)   # shoppers sleep at night
    orders = [(int(b), start + timedelta(days=int(d), seconds=int(s)))
              for b, d, s in zip(ids.tolist(), offsets.tolist(), seconds.tolist())]
    return sorted(orders, key=lambda o: (o[1], o[0]))


def _status(rng: np.random.Generator, created: datetime
            ) -> tuple[str, str, datetime | None]:
    """(status, substatus, delivered time) of an order that was not cancelled."""
    end = datetime(END.year, END.month, END.day, 23, 59, 59)
    shipped = created + timedelta(hours=float(rng.uniform(12, 60)))
    delivered = shipped + timedelta(hours=float(rng.uniform(48, 140)))
    if shipped > end:
        return "To ship", "Awaiting shipment", None
    if delivered > end:
        return "Shipped", "In transit", None
    return "Completed", "Delivered", delivered.replace(microsecond=0)


def _sku_id(product: int, variation: int) -> str:
    """A stable 19-digit SKU id per product variation."""
    return str(1729400000000000000 + (product * 7_919_000_003 + variation * 104_729_017
                                      + 1_000_003) % 10**14)


def _orders(rng: np.random.Generator, n_buyers: int = 1000) -> list[dict[str, Any]]:
    buyers = [f"{rng.choice(['glow', 'skin', 'beauty', 'lily', 'mia', 'jo', 'sam'])}"
              f"{int(rng.integers(10, 99))}_{int(rng.integers(10**5, 10**6))}"
              for _ in range(n_buyers)]
    popularity = np.array([p[4] for p in PRODUCTS], dtype=float)
    popularity /= popularity.sum()
    # how much each buyer puts in a basket (mean 1): big spenders stay big spenders
    basket = rng.gamma(4.0, 0.25, n_buyers)
    order_id = 576400000000000000
    lines = []
    for b, created in _order_times(rng, n_buyers):
        order_id += int(rng.integers(10**9, 10**11))
        n_lines = min(4, 1 + int(rng.poisson(0.95 * basket[b])))
        picks = rng.choice(len(PRODUCTS), size=n_lines, replace=False, p=popularity)
        items = []
        for k in picks:
            name, category, price, variations, _, stem = PRODUCTS[int(k)]
            v = int(rng.integers(len(variations)))
            qty = min(3, 1 + int(rng.poisson(0.2 * basket[b])))
            discount = 0.9 if rng.random() < 0.2 else 1.0
            items.append({"product": name, "category": category, "variation": variations[v],
                          "seller_sku": f"{stem}-{v + 1:02d}",
                          "sku_id": _sku_id(int(k), v),
                          "quantity": qty, "unit_price": price,
                          "sku_subtotal": _money(qty * price * discount)})
        subtotal = sum(i["sku_subtotal"] for i in items)
        amount = _money(subtotal + (0.0 if subtotal >= 30 else 3.99))
        cancelled = rng.random() < 0.065
        if cancelled:
            status, substatus, delivered = "Cancelled", "Cancelled", None
            paid = created + timedelta(minutes=int(rng.integers(1, 30))) \
                if rng.random() < 0.5 else None
        else:
            status, substatus, delivered = _status(rng, created)
            paid = created + timedelta(minutes=int(rng.integers(1, 30)))
        returned = delivered is not None and rng.random() < 0.04
        rated = delivered is not None and rng.random() < 0.3
        stars = int(rng.choice([1, 2, 3, 4, 5], p=[0.03, 0.04, 0.08, 0.25, 0.60]))
        message = MESSAGES[int(rng.integers(len(MESSAGES)))] if rng.random() < 0.05 else None
        state = STATES[int(rng.choice(len(STATES), p=np.array(STATE_WEIGHTS) /
                                       sum(STATE_WEIGHTS)))]
        for j, item in enumerate(items):
            lines.append({
                "order_id": str(order_id), "sku_id": item["sku_id"],
                "status": status, "substatus": substatus,
                "cancel_type": "Cancel" if cancelled else ("Return/Refund" if returned
                                                           else None),
                "product": item["product"], "variation": item["variation"],
                "seller_sku": item["seller_sku"], "quantity": item["quantity"],
                "returned_qty": item["quantity"] if returned and j == 0 else 0,
                "unit_price": item["unit_price"], "sku_subtotal": item["sku_subtotal"],
                "order_amount": amount,
                "refund": items[0]["sku_subtotal"] if returned else 0.0,
                "created": created, "paid": paid, "delivered": delivered,
                "cancelled": (paid or created) + timedelta(hours=2) if cancelled else None,
                "buyer": buyers[b], "buyer_message": message if j == 0 else None,
                "country": "United States", "state": state, "category": item["category"],
                "rating": stars if rated and j == 0 else None,
            })
    return lines


def _monthly_orders(orders: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """Orders (not cancelled) by (year, month) of creation."""
    seen: dict[tuple[int, int], set] = {}
    for line in orders:
        if line["status"] != "Cancelled":
            key = (line["created"].year, line["created"].month)
            seen.setdefault(key, set()).add(line["order_id"])
    return {k: len(v) for k, v in seen.items()}


def _brand(rng: np.random.Generator, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counted = _monthly_orders(orders)
    followers = 8400
    out = []
    for i in range(12):
        month = (END.month - 11 + i - 1) % 12 + 1
        year = END.year - (1 if END.month - 11 + i <= 0 else 0)
        start = followers
        followers = int(round(start * (1 + rng.uniform(-0.005, 0.08))))
        n_orders = counted.get((year, month)) or int(120 + 28 * i + rng.integers(-15, 15))
        views = int(rng.uniform(150_000, 260_000) * (1 + 0.12 * i))
        out.append({
            "period": date(year, month, 1), "followers_start": start,
            "followers_end": followers,
            "brand_mentions": int(40 + 9 * i + rng.integers(0, 25)),
            "competitor_a_mentions": int(rng.integers(150, 250)),
            "competitor_b_mentions": int(rng.integers(80, 150)),
            "competitor_c_mentions": int(rng.integers(30, 60)) if i >= 3 else None,
            "support_queries": int(rng.binomial(n_orders, rng.uniform(0.02, 0.05))),
            "orders": n_orders, "views": views,
            "profile_views": int(views * rng.uniform(0.01, 0.02)),
            "likes": int(views * rng.uniform(0.05, 0.07)),
            "comments": int(views * rng.uniform(0.003, 0.006)),
            "shares": int(views * rng.uniform(0.004, 0.01)),
        })
    return out


def rows(seed: int = SEED) -> dict[str, list[dict[str, Any]]]:
    """The demo shop as rows keyed by canonical keys (as importers produce them)."""
    rng = np.random.default_rng(seed)
    campaigns = _campaigns(rng)
    videos = _videos(rng)
    orders = _orders(rng)
    brand = _brand(rng, orders)
    return {"Campaigns": campaigns, "Videos": videos, "Orders": orders, "Brand": brand}


def tables(seed: int = SEED) -> dict[str, dict[str, list]]:
    """The demo shop as input columns (``table -> key -> values``) for the builder."""
    return {name: S.rows_to_columns(name, r) for name, r in rows(seed).items()}
