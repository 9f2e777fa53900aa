"""Brand KPIs: audience growth, share of voice and support load."""

from __future__ import annotations

from ._kpi import COUNT, POSITIVE, kpi, safe_div

__all__ = ["follower_growth_rate", "share_of_voice", "support_query_rate"]


@kpi(start=COUNT, end=COUNT)
def follower_growth_rate(start, end):
    """Follower growth rate over a period.

    Parameters
    ----------
    start : float or array_like
        Followers at the start of the period, >= 0.
    end : float or array_like
        Followers at the end of the period, >= 0.

    Returns
    -------
    float or ndarray
        A fraction (negative when the account shrank); NaN where ``start`` is 0.

    Warnings
    --------
    "New followers / start" ignores unfollows; this uses the net change.

    Notes
    -----
    .. math:: growth = (end - start) / start

    References
    ----------
    keyhole.co; mailmodo.com; ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> follower_growth_rate(2_000, 2_100)
    0.05
    """
    return safe_div(end - start, start)


@kpi(brand_mentions=COUNT, competitor_mentions=COUNT)
def share_of_voice(brand_mentions, competitor_mentions):
    """Share of voice: the brand's share of the mentions in its market.

    Parameters
    ----------
    brand_mentions : float or array_like
        Mentions of the brand, >= 0.
    competitor_mentions : float or array_like
        Mentions of the competitors, >= 0.  Several competitors are given as a
        trailing axis: when this argument has more dimensions than
        ``brand_mentions`` its last axis is summed (``[80, 100]`` for two
        competitors; an ``(n, k)`` array for ``n`` periods of ``k`` competitors).

    Returns
    -------
    float or ndarray
        A fraction; NaN where there is no mention at all.

    Warnings
    --------
    Mention-based; versions based on engagement, ad spend or impression share
    exist.  No TikTok export has competitor data: it is typed in by hand.

    Notes
    -----
    .. math:: SOV = brand / (brand + \\sum_k competitor_k)

    References
    ----------
    mutualmind.com; kpi.insightworthy.com; ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> share_of_voice(120, [80, 100])
    0.4
    >>> share_of_voice([10, 0], [[5, 5], [0, 0]])
    array([0.5, nan])
    """
    comp = competitor_mentions
    if comp.ndim > brand_mentions.ndim:
        comp = comp.sum(axis=-1)
    return safe_div(brand_mentions, brand_mentions + comp)


@kpi(queries=COUNT, orders=COUNT, per=POSITIVE)
def support_query_rate(queries, orders, per=100):
    """Customer support load: support queries per ``per`` orders.

    Parameters
    ----------
    queries : float or array_like
        Support queries (messages, tickets) received, >= 0.
    orders : float or array_like
        Orders in the same period, >= 0.
    per : float, optional
        The unit, 100 by default (queries per 100 orders).

    Returns
    -------
    float or ndarray
        Queries per ``per`` orders; NaN where ``orders`` is 0.

    Notes
    -----
    .. math:: rate = queries / orders \\times per

    References
    ----------
    ``docs/kpi-definitions.md`` §1, "Customer support queries" (no standard found;
    a convention).

    Examples
    --------
    >>> support_query_rate(15, 500)
    3.0
    """
    return safe_div(queries * per, orders)
