"""Shop-level KPIs from column data (a workbook's tables or export files).

Input: columns keyed by the canonical keys of the template's tables
(``order_id``, ``status``, ``buyer``, ``order_amount`` for orders; ``cost``,
``impressions``, ``clicks``, ``conversions``, ``revenue`` ... for campaigns).
Every figure is computed by the KPI functions of :mod:`xl_kpis.metrics`; this
module only decides which rows count:

* a cancelled order (status ``Canceled``/``Cancelled``, any case) does not count;
* an order is a distinct Order ID, its amount is its Order Amount taken once
  (an export repeats it on every SKU line);
* revenue = Σ order amounts, AOV = revenue / orders;
* buyers = distinct Buyer Username; repeat purchase rate = buyers with ≥ 2
  orders / buyers;
* ad KPIs pool the campaigns: CTR = Σ clicks / Σ impressions, ROAS = Σ ad
  revenue / Σ spend, conversion rate = Σ conversions / Σ clicks;
* engagement rate = (likes + comments + shares) / views, TikTok's definition (saves
  left out, as on the KPIs sheet), and completion rate pool the videos; without videos
  the ads' video metrics are used;
* follower growth runs from the first period's start to the last period's end;
* the predicted CLV (BG/NBD + Gamma-Gamma, :mod:`xl_kpis.metrics.predictive`) is
  fitted on the lines that count (not cancelled, with an order id), each line's
  SKU subtotal summed per buyer and day (the template's ``Counted sales``),
  over 12 months with a 1 % monthly discount, times the book's gross margin
  (a revenue CLV from an export, which has no margin).  :func:`clv_model_report`
  gives the fitted parameters, or why the data cannot support the models.

Rates are fractions; an undefined figure is ``None`` (JSON ``null``).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from . import metrics as m
from .metrics._kpi import as_labels, codes

CANCELLED = frozenset({"canceled", "cancelled"})

#: Keys of :func:`shop_kpis`, in display order, with their labels and formats.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("spend", "Ad spend", "money"),
    ("impressions", "Impressions", "int"),
    ("clicks", "Clicks", "int"),
    ("conversions", "Conversions", "int"),
    ("ad_revenue", "Ad revenue", "money"),
    ("ctr", "CTR", "pct"),
    ("cpc", "CPC", "money"),
    ("cpm", "CPM", "money"),
    ("roas", "ROAS", "x"),
    ("conversion_rate", "Conversion rate (per click)", "pct"),
    ("orders", "Orders", "int"),
    ("buyers", "Buyers", "int"),
    ("revenue", "Revenue", "money"),
    ("aov", "AOV", "money"),
    ("repeat_purchase_rate", "Repeat purchase rate", "pct"),
    ("predicted_clv", "Predicted CLV, 12 months (mean per buyer)", "money"),
    ("engagement_rate", "Engagement rate (by views)", "pct"),
    ("completion_rate", "Completion rate", "pct"),
    ("follower_growth_rate", "Follower growth (first to last period)", "pct"),
)

Columns = Mapping[str, "np.ndarray | list"]


def _num(cols: Columns | None, key: str) -> np.ndarray:
    """A numeric column with blanks as NaN (empty when the table or column is missing)."""
    if not cols or key not in cols:
        return np.zeros(0)
    v = cols[key]
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return v
    a = np.asarray(v, dtype=object).ravel()      # never a fixed-width array of long text
    return np.array([np.nan if x is None or x == "" else x for x in a.tolist()], dtype=float)


def _sum(cols: Columns | None, key: str) -> float:
    return float(np.nansum(_num(cols, key)))


def _clean(x: float) -> float | None:
    return x if isinstance(x, float) and math.isfinite(x) else (
        float(x) if isinstance(x, (int, np.integer)) else None)


def label_codes(orders: Columns, key: str) -> np.ndarray:
    """``codes(as_labels(...))`` of an id column: integer codes in the order of the ids, -1 for blank.

    A column read from an export comes factorised (``categories`` of
    :class:`~xl_kpis.imports.OrderColumns`: distinct ``str``, sorted for
    ids, code -1 for None), so only its distinct values are looked at.
    """
    given = getattr(orders, "categories", {}).get(key)
    if given is None:
        return codes(as_labels("report", key, orders[key]))
    line_codes, values = given
    if len(line_codes) > 1000 and line_codes.min(initial=0) >= 0:
        return line_codes            # as_labels takes a large column of text as it is
    # as_labels strips the text of any other column, and None is blank ("", the label added last)
    labels = np.empty(len(values) + 1, dtype=object)
    labels[:] = [v.strip() for v in values.tolist()] + [""]
    return codes(labels)[line_codes]


def _lower_stripped(status) -> np.ndarray:
    """Statuses as compared with :data:`CANCELLED` (an object array: a long status costs its
    own length only)."""
    out = np.empty(len(status), dtype=object)
    out[:] = ["" if v is None else str(v).strip().lower() for v in np.asarray(status, dtype=object)
              .ravel().tolist()]
    return out


def cancelled(orders: Columns) -> np.ndarray | None:
    """Mask of the cancelled order lines (status Canceled/Cancelled, any case); None without status."""
    given = getattr(orders, "categories", {}).get("status")
    if given is not None:
        line_codes, values = given
        is_cancelled = np.isin(_lower_stripped(values), list(CANCELLED))
        return np.append(is_cancelled, False)[line_codes]      # code -1: a blank status
    status = orders.get("status")
    return None if status is None else np.isin(_lower_stripped(status), list(CANCELLED))


def order_kpis(orders: Columns) -> dict[str, float | None]:
    """Orders, buyers, revenue, AOV and repeat purchase rate from order lines."""
    ids = label_codes(orders, "order_id")          # factorised once for the five KPIs
    lines_out = cancelled(orders)
    if lines_out is not None:
        ids = np.where(lines_out, -1, ids)
    buyers = label_codes(orders, "buyer")
    revenue = m.order_revenue(ids, _num(orders, "order_amount"))
    if len(buyers) == len(ids):
        # the counts depend only on the distinct (buyer, order) pairs: leave out the lines without
        # an order and those repeating the line before (the other SKU lines of an order)
        pair = ids >= 0
        pair[1:] &= (ids[1:] != ids[:-1]) | (buyers[1:] != buyers[:-1])
        ids, buyers = ids[pair], buyers[pair]
    n_orders = m.order_count(ids)
    return {
        "orders": n_orders,
        "buyers": m.buyer_count(buyers, ids),
        "revenue": round(revenue, 2),
        "aov": m.aov(revenue, n_orders),
        "repeat_purchase_rate": m.repeat_purchase_rate(buyers, ids),
    }


#: The predicted CLV's horizon and monthly discount rate (the template's too).
CLV_MONTHS, CLV_DISCOUNT = 12, 0.01
#: The columns of an order export the CLV model reads besides those of the order KPIs.
CLV_ORDER_KEYS = ("created", "sku_subtotal")


def counted_lines(orders: Columns) -> np.ndarray:
    """Mask of the order lines that count: not cancelled, with an order id."""
    keep = label_codes(orders, "order_id") >= 0
    lines_out = cancelled(orders)
    return keep if lines_out is None else keep & ~lines_out


def clv_model_report(orders: Columns | None, margin: float = 1.0) -> dict:
    """The predicted CLV and the fitted BG/NBD and Gamma-Gamma parameters of order lines.

    Returns ``{"predicted_clv": ..., "margin": ..., "months": 12, "discount": 0.01,
    "parameters": {...}}``; without the buyer, created and SKU subtotal columns, or
    when the data cannot support the models, ``predicted_clv`` is None and
    ``"error"`` says why.
    """
    from .metrics import predictive as P

    out: dict = {"predicted_clv": None, "margin": margin, "months": CLV_MONTHS,
                 "discount": CLV_DISCOUNT}
    need = ("buyer", "created", "sku_subtotal")
    if not orders or any(k not in orders for k in need) or not len(orders["buyer"]):
        out["error"] = "no order lines with a buyer, a created time and a SKU subtotal"
        return out
    try:        # (a value outside its column's domain, typed into a book: no model)
        keep = counted_lines(orders)
        buyers = label_codes(orders, "buyer")[keep]
        created = orders["created"]
        created = created[keep] if isinstance(created, np.ndarray) else \
            [v for v, k in zip(created, keep) if k]
        amounts = _num(orders, "sku_subtotal")[keep]
        model = P.clv_model(buyers, created, amounts)
        table = P.model_clv(model, CLV_MONTHS, margin, CLV_DISCOUNT)
    except (ValueError, TypeError) as e:
        out["error"] = str(e)
        return out
    out["predicted_clv"] = float(table["clv"].mean())
    out["parameters"] = {name: value for name, value in P.parameter_rows(model)}
    return out


def clv_not_asked() -> dict:
    """:func:`clv_model_report`'s answer when the model was not asked for."""
    return {"predicted_clv": None, "margin": 1.0, "months": CLV_MONTHS,
            "discount": CLV_DISCOUNT, "error": "not computed (report --orders ... --clv fits it)"}


def ad_kpis(ads: Columns) -> dict[str, float | None]:
    """Pooled ad KPIs from campaign rows."""
    spend, imp, clk = _sum(ads, "cost"), _sum(ads, "impressions"), _sum(ads, "clicks")
    conv, rev = _sum(ads, "conversions"), _sum(ads, "revenue")
    return {
        "spend": round(spend, 2), "impressions": imp, "clicks": clk, "conversions": conv,
        "ad_revenue": round(rev, 2), "ctr": m.ctr(clk, imp), "cpc": m.cpc(spend, clk),
        "cpm": m.cpm(spend, imp), "roas": m.roas(rev, spend),
        "conversion_rate": m.conversion_rate(conv, clk),
    }


def content_kpis(videos: Columns | None, ads: Columns | None) -> dict[str, float | None]:
    """Engagement and completion rates pooled over the videos (or the ads' video metrics)."""
    if videos and len(_num(videos, "views")):
        src, completed = videos, "completed_views"
        views = _sum(videos, "views")
    else:
        src, completed = ads, "views_p100"
        views = _sum(ads, "video_views")
    return {
        "engagement_rate": m.engagement_rate(_sum(src, "likes"), _sum(src, "comments"),
                                             _sum(src, "shares"), views),
        "completion_rate": m.completion_rate(_sum(src, completed), views),
    }


def brand_kpis(brand: Columns | None) -> dict[str, float | None]:
    """Follower growth from the first period's start to the last period's end."""
    start, end = _num(brand, "followers_start"), _num(brand, "followers_end")
    start, end = start[~np.isnan(start)], end[~np.isnan(end)]
    if not (start.size and end.size):
        return {"follower_growth_rate": None}
    return {"follower_growth_rate": m.follower_growth_rate(start[0], end[-1])}


def shop_kpis(orders: Columns | None = None, ads: Columns | None = None,
              videos: Columns | None = None, brand: Columns | None = None,
              clv: dict | None = None) -> dict:
    """Every shop-level KPI the report shows, as a flat dict (None when undefined).

    ``clv`` is :func:`clv_model_report`'s result (computed here, as a revenue
    CLV, when not given).
    """
    out: dict = {}
    out.update(_or_undefined(ad_kpis, ads or {}))
    if orders and len(orders.get("order_id", ())):
        out.update(_or_undefined(order_kpis, orders))
    out["predicted_clv"] = (clv if clv is not None else clv_model_report(orders))["predicted_clv"]
    out.update(_or_undefined(content_kpis, videos, ads))
    out.update(_or_undefined(brand_kpis, brand))
    return {k: _clean(out.get(k)) for k, _, _ in FIELDS}


def _or_undefined(group, *columns) -> dict:
    """A group of KPIs, or none of them (undefined, as ``#NUM!``/``#VALUE!`` on the KPIs
    sheet) when its columns hold values outside their domain: a negative amount typed
    into a book, text in a number column."""
    try:
        return group(*columns)
    except (ValueError, TypeError):
        return {}


def format_value(value: float | None, kind: str) -> str:
    """A KPI as a person reads it."""
    if value is None:
        return "—"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "int":
        return f"{value:,.0f}"
    if kind == "pct":
        return f"{value:.2%}"
    return f"{value:.2f}x"


def format_table(kpis: dict) -> str:
    """The KPIs as an aligned two-column text table."""
    width = max(len(label) for _, label, _ in FIELDS)
    return "\n".join(f"{label:<{width}}  {format_value(kpis.get(key), kind):>14}"
                     for key, label, kind in FIELDS)


def format_clv_model(clv: dict) -> str:
    """:func:`clv_model_report` as a few lines of text."""
    what = (f"{clv['months']} months, {clv['discount']:.0%} monthly discount, "
            + ("revenue" if clv["margin"] == 1 else f"x {clv['margin']:.0%} gross margin"))
    if clv["predicted_clv"] is None:
        return f"Predicted CLV model ({what}): not fitted: {clv['error']}"
    p = clv["parameters"]
    return "\n".join([
        f"Predicted CLV model ({what}), fitted on {p['Customers']:,.0f} buyers"
        f" ({p['Repeat customers']:,.0f} repeat), time unit {p['Time unit']}, as of {p['As of']}:",
        f"  BG/NBD       r {p['r']:.4g}  alpha {p['alpha']:.4g}  a {p['a']:.4g}  b {p['b']:.4g}"
        f"  log-likelihood {p['BG/NBD log-likelihood']:,.1f}",
        f"  Gamma-Gamma  p {p['p']:.4g}  q {p['q']:.4g}  gamma {p['gamma']:.4g}"
        f"  log-likelihood {p['Gamma-Gamma log-likelihood']:,.1f}"])
