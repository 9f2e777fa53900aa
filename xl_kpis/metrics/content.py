"""Product and content KPIs: what sells, and which content sells it."""

from __future__ import annotations

import numpy as np

from ._kpi import (COUNT, LABELS, MAX_ROWS, MONEY, as_float_array, as_labels, check_domain,
                   check_same_length, factorize, kpi, safe_div)

__all__ = ["top_products", "content_resonance"]


def _group(fname: str, arg: str, labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct labels (as str, in first-seen order) and each element's group index."""
    keys = as_labels(fname, arg, labels)
    if keys.size != n:
        raise ValueError(f"{fname}: argument {arg!r} must have one entry per row,"
                         f" got {keys.size} for {n} rows")
    idx, uniq = factorize(keys)
    names = np.empty(uniq.size, dtype=object)
    names[:] = [str(u) for u in uniq.tolist()]
    return names, idx


def _column(fname: str, arg: str, values, dom) -> np.ndarray:
    a = as_float_array(fname, arg, values).ravel()
    check_domain(fname, arg, a, dom)
    return np.nan_to_num(a, nan=0.0)


@kpi(shape="table", products=LABELS, amounts=MONEY, n=COUNT)
def top_products(products, amounts, n=5):
    """The best-selling products by revenue, with their Pareto shares.

    Parameters
    ----------
    products : array_like
        Product (or SKU) of each order line.
    amounts : array_like
        Revenue of each line, >= 0 (NaN counts as 0).
    n : int, optional
        How many products to return (5 by default), at most
        :data:`~xl_kpis.metrics._kpi.MAX_ROWS`.

    Returns
    -------
    numpy.ndarray
        A structured array, best first, with fields ``product``, ``revenue``,
        ``share`` (of total revenue) and ``cumulative_share``.  Ties keep the
        order in which the products first appear.

    Warnings
    --------
    Ranked by revenue (GMV).  Net units (quantity minus returned quantity),
    orders or product CVR give other rankings.

    Notes
    -----
    .. math:: share_p = \\sum_{i \\in p} amount_i / \\sum_i amount_i

    References
    ----------
    ``docs/kpi-definitions.md`` §1, "Top products" (a convention: rank SKUs by GMV
    with the Pareto share).

    Examples
    --------
    >>> t = top_products(["mug", "tee", "mug", "cap"], [10, 30, 15, 5], n=2)
    >>> t["product"].tolist(), t["revenue"].tolist(), t["share"].tolist()
    (['tee', 'mug'], [30.0, 25.0], [0.5, 0.4166666666666667])
    """
    amt = _column("top_products", "amounts", amounts, MONEY)
    if isinstance(n, (bool, np.bool_)) or not float(n).is_integer() or not 1 <= n <= MAX_ROWS:
        raise ValueError(f"top_products: argument 'n' must be a whole number from 1 to "
                         f"{MAX_ROWS:,} (an Excel sheet's rows below a header), got {n!r}")
    names, idx = _group("top_products", "products", products, amt.size)
    totals = np.bincount(idx, weights=amt, minlength=names.size) if amt.size else np.zeros(0)
    order = np.argsort(-totals, kind="stable")[: int(n)]
    grand = totals.sum()
    out = np.zeros(order.size, dtype=[("product", object), ("revenue", float),
                                      ("share", float), ("cumulative_share", float)])
    out["product"] = names[order]
    out["revenue"] = totals[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share"] = safe_div(totals[order], np.asarray(grand))
    out["cumulative_share"] = np.cumsum(out["share"])
    return out


@kpi(shape="table", content_types=LABELS, views=COUNT, engagements=COUNT, orders=COUNT,
     revenue=MONEY)
def content_resonance(content_types, views, engagements, orders, revenue):
    """Which types of content drive sales: per content type totals and rates.

    Parameters
    ----------
    content_types : array_like
        The content type of each video (tutorial, unboxing, challenge ...).
    views : array_like
        Views of each video, >= 0 (NaN counts as 0).
    engagements : array_like
        Engagements of each video (likes + comments + shares [+ saves]), >= 0
        (NaN counts as 0).
    orders : array_like
        Orders attributed to each video, >= 0 (NaN counts as 0).
    revenue : array_like
        Revenue (GMV) attributed to each video, >= 0.

    Returns
    -------
    numpy.ndarray
        A structured array, one row per content type sorted by revenue
        (highest first), with fields ``content_type``, ``videos``, ``views``,
        ``engagement_rate`` (Σ engagements / Σ views), ``orders``,
        ``revenue`` and ``revenue_per_1000_views`` (GPM); rates are NaN for a
        type without views.

    Warnings
    --------
    The engagement rate is by views and pooled over the type's videos (not an
    average of per-video rates).  Revenue per 1,000 views is read from the name
    of TikTok's "GPM" metric.

    Notes
    -----
    .. math:: GPM_t = 1000 \\sum_{i \\in t} revenue_i / \\sum_{i \\in t} views_i

    References
    ----------
    TikTok Shop Data Compass ("GPM", knowledge_id 7615505410344750);
    ``docs/kpi-definitions.md`` §1, "Content resonance".

    Examples
    --------
    >>> t = content_resonance(["tutorial", "unboxing", "tutorial"],
    ...                       [1000, 4000, 3000], [80, 200, 120], [4, 10, 6], [100, 300, 140])
    >>> t["content_type"].tolist(), t["videos"].tolist(), t["revenue_per_1000_views"].tolist()
    (['unboxing', 'tutorial'], [1, 2], [75.0, 60.0])
    >>> t["engagement_rate"].tolist()
    [0.05, 0.05]
    """
    f = "content_resonance"
    v = _column(f, "views", views, COUNT)
    e = _column(f, "engagements", engagements, COUNT)
    o = _column(f, "orders", orders, COUNT)
    r = _column(f, "revenue", revenue, MONEY)
    check_same_length(f, views=v, engagements=e, orders=o, revenue=r)
    names, idx = _group(f, "content_types", content_types, v.size)
    k = names.size

    def total(x):
        return np.bincount(idx, weights=x, minlength=k) if x.size else np.zeros(k)

    out = np.zeros(k, dtype=[("content_type", object), ("videos", np.int64),
                             ("views", float), ("engagement_rate", float), ("orders", float),
                             ("revenue", float), ("revenue_per_1000_views", float)])
    out["content_type"] = names
    out["videos"] = np.bincount(idx, minlength=k) if v.size else 0
    out["views"] = total(v)
    out["engagement_rate"] = safe_div(total(e), out["views"])
    out["orders"] = total(o)
    out["revenue"] = total(r)
    out["revenue_per_1000_views"] = safe_div(out["revenue"] * 1000.0, out["views"])
    return out[np.argsort(-out["revenue"], kind="stable")]
