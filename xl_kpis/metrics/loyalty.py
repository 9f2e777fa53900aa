"""Loyalty and feedback KPIs: repeat buying, ratings and reviews."""

from __future__ import annotations

import numpy as np

from ._kpi import (COUNT, LABELS, MONEY, RATING, as_float_array, as_labels, check_domain,
                   check_same_length, codes, dense, first_indices, kpi, n_distinct, present,
                   safe_div)

__all__ = ["order_count", "order_revenue", "buyer_count", "repeat_purchase_rate",
           "average_rating", "positive_rating_share", "review_rate"]


def _buyer_order_lines(fname: str, customer_ids, order_ids) -> tuple[np.ndarray, np.ndarray]:
    """The (buyer, order) id pairs of the lines where both are given."""
    c = as_labels(fname, "customer_ids", customer_ids)
    o = as_labels(fname, "order_ids", order_ids)
    check_same_length(fname, customer_ids=c, order_ids=o)
    keep = present(c) & present(o)
    return (c, o) if keep.all() else (c[keep], o[keep])


def _codes(a: np.ndarray) -> np.ndarray:
    """Dense integer codes of the distinct values of ``a`` (non-blank labels, or codes): dense
    codes stay as they are, text is factorised by hashing (never copied into a fixed-width
    array), other integers (raw ids) by a sort."""
    if dense(a):
        return a
    a = codes(a)
    return a if dense(a) else np.unique(a, return_inverse=True)[1].ravel()


@kpi(shape="aggregate", customer_ids=LABELS, order_ids=LABELS)
def repeat_purchase_rate(customer_ids, order_ids):
    """Repeat purchase rate from raw order lines.

    Parameters
    ----------
    customer_ids : array_like
        The buyer of each order line (``Buyer Username``).
    order_ids : array_like
        The order of each line (``Order ID``); an order may span several lines.
        Lines whose buyer or order is blank (None, "", NaN) are ignored.

    Returns
    -------
    float
        Customers with at least 2 distinct orders / customers with at least
        1 order; NaN when there is no customer.

    Raises
    ------
    ValueError
        When the two arguments do not have the same number of elements.

    Warnings
    --------
    Filter the lines to the period (and drop cancelled orders) before calling.
    Shopify's "returning customer rate" also counts customers whose first
    order was before the period, so it comes out higher.

    Notes
    -----
    .. math:: RPR = |\\{c : orders(c) \\ge 2\\}| / |\\{c : orders(c) \\ge 1\\}|

    References
    ----------
    firstpier.com; littlestreamsoftware.com/glossary/returning-customer-rate;
    ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    Ann has two orders (one spanning two lines), Bob one:

    >>> repeat_purchase_rate(["ann", "ann", "ann", "bob"], ["o1", "o1", "o2", "o3"])
    0.5
    """
    c, o = _buyer_order_lines("repeat_purchase_rate", customer_ids, order_ids)
    if c.size == 0:
        return float("nan")
    # Pair codes in int64 (buyers x orders can pass 2**31); the buyer code taken back out
    # of a pair is an index, and np.bincount takes only np.intp, which is int32 on wasm32
    # (xlwings Lite's Pyodide): it refuses int64 there.
    ci = _codes(c).astype(np.int64)
    oi = _codes(o).astype(np.int64)
    first = first_indices(oi)
    buyer_of_order = np.zeros(int(oi.max()) + 1, dtype=np.int64)
    buyer_of_order[oi[first]] = ci[first]
    if np.array_equal(buyer_of_order[oi], ci):
        # every order belongs to one buyer (as in TikTok's exports): count orders per buyer
        per_customer = np.bincount(buyer_of_order[oi[first]].astype(np.intp))
    else:
        base = int(oi.max()) + 1
        pairs = np.unique(ci * base + oi)
        per_customer = np.bincount((pairs // base).astype(np.intp))
    buyers = np.count_nonzero(per_customer)
    return float(np.count_nonzero(per_customer >= 2) / buyers)


def _ratings(fname: str, ratings) -> np.ndarray:
    a = as_float_array(fname, "ratings", ratings).ravel()
    check_domain(fname, "ratings", a, RATING)
    return a[~np.isnan(a)]


@kpi(shape="aggregate", ratings=RATING)
def average_rating(ratings):
    """Average star rating of the reviews.

    Parameters
    ----------
    ratings : array_like
        Star ratings 1..5; NaN entries (orders without a review) are ignored.

    Returns
    -------
    float
        The mean rating; NaN when there is no rating.

    Notes
    -----
    .. math:: \\bar r = \\sum_i r_i / n

    References
    ----------
    No standard formula; the usual definition (``docs/kpi-definitions.md`` §1,
    "Reviews and ratings").

    Examples
    --------
    >>> average_rating([5, 4, float("nan"), 3])
    4.0
    """
    r = _ratings("average_rating", ratings)
    return float(r.mean()) if r.size else float("nan")


@kpi(shape="aggregate", ratings=RATING)
def positive_rating_share(ratings):
    """Share of reviews with 4 or 5 stars.

    Parameters
    ----------
    ratings : array_like
        Star ratings 1..5; NaN entries are ignored.

    Returns
    -------
    float
        A fraction; NaN when there is no rating.

    Notes
    -----
    .. math:: share = |\\{i : r_i \\ge 4\\}| / n

    References
    ----------
    ``docs/kpi-definitions.md`` §1, "Reviews and ratings" (a convention).

    Examples
    --------
    >>> positive_rating_share([5, 4, 2, 1])
    0.5
    """
    r = _ratings("positive_rating_share", ratings)
    return float(np.count_nonzero(r >= 4) / r.size) if r.size else float("nan")


@kpi(reviews=COUNT, orders=COUNT)
def review_rate(reviews, orders):
    """Review rate: reviews per delivered order.

    Parameters
    ----------
    reviews : float or array_like
        Number of reviews received, >= 0.
    orders : float or array_like
        Delivered orders, >= 0.

    Returns
    -------
    float or ndarray
        A fraction; NaN where ``orders`` is 0.

    Notes
    -----
    .. math:: review\\_rate = reviews / delivered\\_orders

    References
    ----------
    ``docs/kpi-definitions.md`` §1, "Reviews and ratings" (a convention).

    Examples
    --------
    >>> review_rate(12, 200)
    0.06
    """
    return safe_div(reviews, orders)


@kpi(shape="aggregate", order_ids=LABELS)
def order_count(order_ids):
    """Number of orders in export lines: distinct non-blank order ids.

    Parameters
    ----------
    order_ids : array_like
        The order of each line; one order spans one line per SKU.  Blank ids
        (None, "", NaN) are ignored, so blanking the id of cancelled lines
        leaves them out.

    Returns
    -------
    float
        The number of distinct orders.

    Warnings
    --------
    TikTok Shop exports one row per SKU line: counting rows overcounts orders.

    Notes
    -----
    .. math:: orders = |\\{order\\_id\\}|

    References
    ----------
    ``docs/tiktok-exports.md`` §B ("deduplicate by Order ID").

    Examples
    --------
    >>> order_count(["o1", "o1", "o2", None])
    2.0
    """
    o = codes(as_labels("order_count", "order_ids", order_ids))
    return float(n_distinct(o[o >= 0]))


@kpi(shape="aggregate", order_ids=LABELS, order_amounts=MONEY)
def order_revenue(order_ids, order_amounts):
    """Revenue of the orders in export lines, each order's amount counted once.

    Parameters
    ----------
    order_ids : array_like
        The order of each line; blank ids are ignored.
    order_amounts : array_like
        ``Order Amount`` of each line, >= 0; it repeats on every line of an
        order, so the first line's amount is taken.

    Returns
    -------
    float
        Σ over distinct orders of the order amount.

    Warnings
    --------
    Summing ``Order Amount`` over lines counts a multi-SKU order several times.

    Notes
    -----
    .. math:: revenue = \\sum_{o} amount_{first\\ line(o)}

    References
    ----------
    ``docs/tiktok-exports.md`` §B ("Deduplicate by Order ID before taking Order Amount").

    Examples
    --------
    >>> order_revenue(["o1", "o1", "o2"], [30.0, 30.0, 12.5])
    42.5
    """
    o = codes(as_labels("order_revenue", "order_ids", order_ids))
    a = as_float_array("order_revenue", "order_amounts", order_amounts).ravel()
    check_same_length("order_revenue", order_ids=o, order_amounts=a)
    check_domain("order_revenue", "order_amounts", a, MONEY)
    keep = o >= 0
    o, a = o[keep], a[keep]
    return float(np.nansum(a[first_indices(o)]))


@kpi(shape="aggregate", customer_ids=LABELS, order_ids=LABELS)
def buyer_count(customer_ids, order_ids):
    """Number of distinct buyers among the lines that have an order id.

    Parameters
    ----------
    customer_ids : array_like
        The buyer of each line (``Buyer Username``).
    order_ids : array_like
        The order of each line; lines with a blank id (e.g. cancelled orders
        blanked out) are ignored.

    Returns
    -------
    float
        The number of distinct buyers.

    Notes
    -----
    .. math:: buyers = |\\{c : orders(c) \\ge 1\\}|

    References
    ----------
    ``docs/tiktok-exports.md`` §B ("Buyer Username" as the customer key).

    Examples
    --------
    >>> buyer_count(["ann", "ann", "bob", "cy"], ["o1", "o2", "o3", None])
    2.0
    """
    c, _ = _buyer_order_lines("buyer_count", customer_ids, order_ids)
    return float(n_distinct(codes(c)))
