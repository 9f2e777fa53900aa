"""The Excel functions: one per KPI, named as Excel users type them, as plain Python.

Each function takes what a cell or a range gives (a range as a 2-D list or
array, a column staying a column) and returns what the cell shows: a whole
column in gives a whole column out in one call.  What a cell shows for each
kind of input is decided in :mod:`xl_kpis.cells`; this module only wires
names to KPIs, and derives each argument's help from the KPI's docstring.

:mod:`xl_kpis.udfs` registers these functions with xlwings (Excel, xlwings
Lite); the LibreOffice extension, the function reference and the workbook's
evaluator (:mod:`xl_kpis.book.formulas`) call them from here, without xlwings.
This module imports numpy and nothing else (xlwings Lite runs it under Pyodide).
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from . import cells
from . import metrics as m
from .metrics import predictive as P

CATEGORY = "TikTok KPIs"

#: The KPI behind each Excel function (``UDF name -> metrics function``), in the order the
#: functions are defined below; ``__all__`` is made from it at the end of the module.
KPI_OF: dict[str, Callable] = {}

#: The help text of every argument of every function (``UDF name -> {argument: text}``), as
#: Excel's function wizard shows it: derived from the *Parameters* section of the KPI's
#: numpydoc docstring (layout options, which the KPI does not have, document themselves in
#: :func:`_udf`).
ARG_DOCS: dict[str, dict[str, str]] = {}

#: Arguments of a UDF that its KPI does not have: how the table it returns is laid out.
LAYOUT_OPTIONS: dict[str, tuple[str, ...]] = {}

_PARAMETERS = re.compile(r"^Parameters\n-+\n(.*?)(?=\n\n[A-Z][A-Za-z ]+\n-+\n|\Z)", re.S | re.M)
_SENTENCE_END = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=\.)\s+(?=[A-Z0-9(])")
_PARAMETER = re.compile(r"^([\w, ]+?)\s*:([^\n]*)\n((?:[ \t]+\S[^\n]*(?:\n|$))+)", re.M)


def parameter_docs(kpi: Callable, limit: int = 255) -> dict[str, str]:
    """Each parameter's description in ``kpi``'s numpydoc docstring, as whole sentences that
    fit ``limit`` characters (Excel's limit for an argument's help).

    >>> from xl_kpis import clv
    >>> parameter_docs(clv)["aov"]
    'Average order value, >= 0.'
    >>> parameter_docs(clv)["margin"]
    "Gross margin, 0..1. 1 (the default) gives the calculator's revenue CLV; a margin gives a profit CLV (optional)."
    """
    found = _PARAMETERS.search(inspect.getdoc(kpi) or "")
    docs = {}
    for m in _PARAMETER.finditer(found.group(1) if found else ""):
        text = " ".join(m.group(3).split()).replace("``", "").replace("**", "")
        optional = "optional" in m.group(2) and "optional" not in text.lower()
        limit_here = limit - len(" (optional)") * optional
        doc = ""
        for sentence in _SENTENCE_END.split(text):
            if doc and len(doc) + 1 + len(sentence) > limit_here:
                break
            doc = f"{doc} {sentence}".strip()
        doc = doc[:limit_here]
        if optional:
            doc = doc[:-1] + " (optional)." if doc.endswith(".") else doc + " (optional)"
        for name in m.group(1).split(","):
            docs[name.strip()] = doc
    return docs


def _udf(kpi: Callable, **layout: str) -> Callable[[Callable], Callable]:
    """Make ``f`` the Excel function of ``kpi``, with the help of each argument.

    The function's arguments match the KPI's positionally (an Excel-friendly name may
    differ, e.g. ``avg_order_value`` for ``aov``); ``layout`` documents arguments the KPI
    does not have.
    """

    def deco(f: Callable) -> Callable:
        names = f.__code__.co_varnames[: f.__code__.co_argcount]
        core = parameter_docs(kpi)
        core_names = [p for p, _, _ in kpi.__kpi__.params]
        docs = {**{u: core[c] for u, c in zip(names, core_names)}, **layout}
        KPI_OF[f.__name__] = kpi
        ARG_DOCS[f.__name__] = {n: docs[n] for n in names}
        if layout:
            LAYOUT_OPTIONS[f.__name__] = tuple(layout)
        return f

    return deco


def _given(required: list, *optional: Any) -> list:
    """The required arguments and the optional ones up to the last one given.

    An omitted optional argument arrives as None (a blank cell arrives as a
    range, ``[[None]]``, because every argument is declared ``ndim=2``).
    """
    optional = list(optional)
    while optional and optional[-1] is None:
        optional.pop()
    return list(required) + optional


# --- engagement -----------------------------------------------------------

@_udf(m.total_views)
def TOTAL_VIEWS(views):
    """Views: the total of a range of video views (blanks ignored)."""
    return cells.aggregate(m.total_views, [views])


@_udf(m.engagement_rate)
def ENGAGEMENT_RATE(likes, comments, shares, views, saves=None):
    """Engagement rate = (likes + comments + shares [+ saves]) / views, as a fraction. #DIV/0! when views is 0."""
    return cells.elementwise(m.engagement_rate, _given([likes, comments, shares, views], saves))


@_udf(m.completion_rate)
def COMPLETION_RATE(completed_views, views):
    """Video completion rate = views at 100% / video views, as a fraction."""
    return cells.elementwise(m.completion_rate, [completed_views, views])


@_udf(m.profile_visit_rate)
def PROFILE_VISIT_RATE(profile_visits, views):
    """Profile visit rate = profile visits / views (or impressions for paid), as a fraction."""
    return cells.elementwise(m.profile_visit_rate, [profile_visits, views])


@_udf(m.ctr)
def CTR(clicks, impressions):
    """Click-through rate = destination clicks / impressions, as a fraction."""
    return cells.elementwise(m.ctr, [clicks, impressions])


# --- sales ------------------------------------------------------------------

@_udf(m.conversion_rate)
def CONVERSION_RATE(conversions, denominator):
    """Conversion rate = conversions / denominator. The denominator is yours to choose: clicks (ads), sessions or visitors (shop)."""
    return cells.elementwise(m.conversion_rate, [conversions, denominator])


@_udf(m.aov)
def AOV(revenue, orders):
    """Average order value = revenue / number of orders."""
    return cells.elementwise(m.aov, [revenue, orders])


@_udf(m.roas)
def ROAS(revenue, spend):
    """Return on ad spend = attributed revenue / ad cost (3 means 3x). #DIV/0! when spend is 0."""
    return cells.elementwise(m.roas, [revenue, spend])


@_udf(m.cac)
def CAC(spend, new_customers):
    """Customer acquisition cost = acquisition spend / new customers."""
    return cells.elementwise(m.cac, [spend, new_customers])


@_udf(m.cpm)
def CPM(spend, impressions):
    """Cost per 1,000 impressions = ad cost / impressions x 1000."""
    return cells.elementwise(m.cpm, [spend, impressions])


@_udf(m.cpc)
def CPC(spend, clicks):
    """Cost per click = ad cost / destination clicks."""
    return cells.elementwise(m.cpc, [spend, clicks])


@_udf(m.cpa)
def CPA(spend, conversions):
    """Cost per action = ad cost / conversions."""
    return cells.elementwise(m.cpa, [spend, conversions])


@_udf(m.roi)
def ROI(revenue, spend, margin):
    """Return on investment = (revenue x margin - ad cost) / ad cost, as a fraction."""
    return cells.elementwise(m.roi, [revenue, spend, margin])


@_udf(m.breakeven_roas)
def BREAKEVEN_ROAS(margin, refund_rate=None):
    """Break-even ROAS = 1 / (margin x (1 - refund rate)): below it, ads lose money."""
    return cells.elementwise(m.breakeven_roas, _given([margin], refund_rate))


# --- lifetime value -----------------------------------------------------------

@_udf(m.clv)
def CLV(avg_order_value, repeat, retention, margin=None):
    """Customer lifetime value = AOV x purchases per period x number of periods [x margin]. E.g. CLV(50, 5, 1) = 250."""
    return cells.elementwise(m.clv, _given([avg_order_value, repeat, retention], margin))


@_udf(m.discounted_clv)
def DISCOUNTED_CLV(margin_per_period, retention_rate, discount_rate):
    """Discounted CLV = margin x retention / (1 + discount - retention) (Gupta-Lehmann)."""
    return cells.elementwise(m.discounted_clv, [margin_per_period, retention_rate, discount_rate])


@_udf(m.ltv_cac)
def LTV_CAC(lifetime_value, acquisition_cost):
    """LTV:CAC ratio = customer lifetime value / customer acquisition cost."""
    return cells.elementwise(m.ltv_cac, [lifetime_value, acquisition_cost])


@_udf(m.cac_payback)
def CAC_PAYBACK(acquisition_cost, monthly_margin):
    """CAC payback in months = acquisition cost / gross margin per customer per month."""
    return cells.elementwise(m.cac_payback, [acquisition_cost, monthly_margin])


# --- orders, loyalty and feedback ----------------------------------------------

@_udf(m.order_count)
def ORDER_COUNT(order_ids):
    """Number of orders in order lines: distinct non-blank order ids."""
    return cells.aggregate(m.order_count, [order_ids])


@_udf(m.order_revenue)
def ORDER_REVENUE(order_ids, order_amounts):
    """Revenue of order lines with each order's amount counted once (not once per SKU line)."""
    return cells.aggregate(m.order_revenue, [order_ids, order_amounts])


@_udf(m.buyer_count)
def BUYER_COUNT(buyers, order_ids):
    """Number of distinct buyers among the lines that have an order id."""
    return cells.aggregate(m.buyer_count, [buyers, order_ids])


@_udf(m.repeat_purchase_rate)
def REPEAT_PURCHASE_RATE(buyers, order_ids):
    """Repeat purchase rate from order lines = buyers with 2+ distinct orders / buyers."""
    return cells.aggregate(m.repeat_purchase_rate, [buyers, order_ids])


@_udf(m.average_rating)
def AVERAGE_RATING(ratings):
    """Average star rating (1-5) of a range; blanks ignored."""
    return cells.aggregate(m.average_rating, [ratings])


@_udf(m.positive_rating_share)
def POSITIVE_RATING_SHARE(ratings):
    """Share of ratings with 4 or 5 stars; blanks ignored."""
    return cells.aggregate(m.positive_rating_share, [ratings])


@_udf(m.review_rate)
def REVIEW_RATE(reviews, orders):
    """Review rate = reviews / delivered orders, as a fraction."""
    return cells.elementwise(m.review_rate, [reviews, orders])


# --- product and content ------------------------------------------------------

@_udf(m.top_products)
def TOP_PRODUCTS(products, amounts, top_n=None):
    """Top products by revenue: header + exactly top_n rows (product, revenue, share, cumulative share), best first; blank rows when fewer."""
    return cells.table(m.top_products, [products, amounts],
                       ["Product", "Revenue", "Share", "Cumulative share"],
                       options=_given([], top_n), pad_to="n")


@_udf(m.content_resonance, rows="Rows to spill below the header at least (optional): blank rows pad the table.")
def CONTENT_RESONANCE(content_types, views, engagements, orders, revenue, rows=None):
    """Which content sells: per type videos, views, ER, orders, revenue, revenue per 1,000 views; optional rows pads the table with blank rows to a fixed size."""
    return cells.table(m.content_resonance, [content_types, views, engagements, orders, revenue],
                       ["Content type", "Videos", "Views", "Engagement rate", "Orders",
                        "Revenue", "Revenue per 1,000 views"], rows=rows)


# --- brand ----------------------------------------------------------------------

@_udf(m.follower_growth_rate)
def FOLLOWER_GROWTH_RATE(followers_start, followers_end):
    """Follower growth rate = (followers at end - at start) / at start, as a fraction."""
    return cells.elementwise(m.follower_growth_rate, [followers_start, followers_end])


@_udf(m.share_of_voice)
def SHARE_OF_VOICE(brand_mentions, competitor_mentions):
    """Share of voice = brand mentions / (brand + competitor mentions). Competitors may span several columns."""
    return cells.elementwise(m.share_of_voice, [brand_mentions, competitor_mentions],
                             collapse="competitor_mentions")


@_udf(m.support_query_rate)
def SUPPORT_QUERY_RATE(queries, orders, per=None):
    """Customer support queries per 100 orders (or per the number given)."""
    return cells.elementwise(m.support_query_rate, _given([queries, orders], per))


# --- predictive lifetime value and retention ----------------------------------------

@_udf(m.predicted_clv)
def PREDICTED_CLV(buyers, dates, amounts, months=None, margin=None, discount=None, as_of=None,
                  unit=None):
    """Predicted CLV per customer (mean) over the next months: BG/NBD purchases x Gamma-Gamma spend, discounted monthly [x margin]. #NUM! when the orders cannot support the model."""
    return cells.model(m.predicted_clv, [buyers, dates, amounts],
                       [months, margin, discount, as_of, unit])


@_udf(m.customer_clv, rows="Rows to spill below the header at least (optional): blank rows pad the table.")
def CUSTOMER_CLV(buyers, dates, amounts, months=None, margin=None, discount=None, as_of=None,
                 unit=None, rows=None):
    """Per customer, highest first: purchases, P(alive), expected purchases and spend, predicted CLV; optional rows pads the table with blank rows."""
    return cells.model(m.customer_clv, [buyers, dates, amounts],
                       [months, margin, discount, as_of, unit],
                       headers=["Customer", "Purchases", "P(alive)", "Expected purchases",
                                "Expected spend", "Predicted CLV"], rows=rows)


@_udf(m.clv_parameters)
def CLV_PARAMETERS(buyers, dates, amounts, as_of=None, unit=None):
    """The fitted BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, gamma) parameters, log-likelihoods, customers, unit and as-of date."""
    headers = ["Parameter", "Value", "What it is"]
    return cells.model(m.clv_parameters, [buyers, dates, amounts], [as_of, unit],
                       headers=headers, frame=lambda **_: [headers] + [
                           [name, None, meaning] for name, meaning in P.PARAMETER_ROWS])


@_udf(m.p_alive_buckets)
def P_ALIVE_BUCKETS(buyers, dates, order_ids=None, as_of=None, unit=None):
    """Customers by P(alive): bought once, then repeat buyers 75-100 %, 50-75 %, 25-50 %, under 25 % likely to still be buying; count and share. Lines with a blank order id are left out."""
    ranges = [buyers, dates] + ([order_ids] if order_ids is not None else [])
    headers = ["Customers by P(alive)", "Customers", "Share"]
    return cells.model(m.p_alive_buckets, ranges, [None] * (3 - len(ranges)) + [as_of, unit],
                       headers=headers, frame=lambda **_: [headers] + [
                           [group, None, None] for group, _ in P.ALIVE_GROUPS])


@_udf(m.cohort_retention)
def COHORT_RETENTION(buyers, dates, order_ids=None, as_of=None, months=None):
    """Cohort triangle: per month of first order, the share of customers ordering again 0, 1, 2 ... months later; blank after the data; months fixes the size. Lines with a blank order id are left out."""
    ranges = [buyers, dates] + ([order_ids] if order_ids is not None else [])
    return cells.model(m.cohort_retention, ranges, [None] * (3 - len(ranges)) + [as_of, months],
                       frame=lambda months, **_: cells.cohort_frame(months))


__all__ = list(KPI_OF)  # every function registered above, in order
