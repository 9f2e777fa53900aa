"""Sales and advertising KPIs: what the money buys."""

from __future__ import annotations

import numpy as np

from ._kpi import COUNT, FRACTION, MONEY, kpi, safe_div

__all__ = ["conversion_rate", "aov", "roas", "cac", "cpm", "cpc", "cpa", "roi",
           "breakeven_roas"]


@kpi(conversions=COUNT, base=COUNT)
def conversion_rate(conversions, base):
    """Conversion rate: conversions per unit of the chosen base.

    Parameters
    ----------
    conversions : float or array_like
        Purchases / orders / conversions, >= 0.
    base : float or array_like
        The denominator, >= 0: clicks, impressions, sessions or visitors.

    Returns
    -------
    float or ndarray
        A fraction; NaN where ``base`` is 0.

    Warnings
    --------
    There is no single conversion rate: TikTok Ads' ``CVR`` divides by
    impressions (since Oct 2024), ``CVR (clicks)`` by destination clicks,
    Seller Center divides buyers by visitors and e-commerce benchmarks divide
    orders by sessions.  The denominator is therefore an explicit argument; the
    template uses clicks for ads and states it.

    Notes
    -----
    .. math:: CVR = conversions / base

    References
    ----------
    TikTok Ads help, "About updates to click and conversion rate metrics";
    ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> conversion_rate(30, 1_000)
    0.03
    """
    return safe_div(conversions, base)


@kpi(revenue=MONEY, orders=COUNT)
def aov(revenue, orders):
    """Average order value: revenue per order.

    Parameters
    ----------
    revenue : float or array_like
        Revenue of the orders, >= 0.
    orders : float or array_like
        Number of distinct orders, >= 0.

    Returns
    -------
    float or ndarray
        Money per order; NaN where ``orders`` is 0.

    Warnings
    --------
    Seller Center GMV includes cancelled and refunded orders; the workbook's
    report excludes cancelled orders and counts each order's amount once.
    State whether revenue is gross or net when comparing.

    Notes
    -----
    .. math:: AOV = revenue / orders

    References
    ----------
    TikTok Ads ``Average order value (Shop)`` = gross revenue / purchases;
    ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> aov(1_250.0, 25)
    50.0
    >>> aov(10.0, 0)
    nan
    """
    return safe_div(revenue, orders)


@kpi(revenue=MONEY, spend=MONEY)
def roas(revenue, spend):
    """Return on ad spend: attributed revenue per unit of ad cost.

    Parameters
    ----------
    revenue : float or array_like
        Attributed revenue (``Total complete payment value`` for website ads,
        ``Gross revenue (Shop)`` for Shop ads), >= 0.
    spend : float or array_like
        Ad cost, >= 0.

    Returns
    -------
    float or ndarray
        A multiple (3.0 means 3x); NaN where ``spend`` is 0.

    Warnings
    --------
    Platform-attributed ROAS is often higher than measured ROAS; blended ROAS
    (MER) divides all revenue by all spend.  Compare ROAS with the break-even
    ROAS (:func:`breakeven_roas`), not only with generic benchmarks.

    Notes
    -----
    .. math:: ROAS = revenue / spend

    References
    ----------
    TikTok Ads help, "View Shop Ads reporting"; ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> roas(100, 50)
    2.0
    >>> roas([100, 200], [50, 0])
    array([ 2., nan])
    """
    return safe_div(revenue, spend)


@kpi(spend=MONEY, new_customers=COUNT)
def cac(spend, new_customers):
    """Customer acquisition cost: spend per new customer.

    Parameters
    ----------
    spend : float or array_like
        Acquisition spend, >= 0 (paid only, or blended with creator fees,
        samples and agency costs).
    new_customers : float or array_like
        First-time buyers acquired, >= 0.

    Returns
    -------
    float or ndarray
        Money per new customer; NaN where ``new_customers`` is 0.

    Warnings
    --------
    ``Cost per purchase`` is not CAC: purchases include repeat buyers.

    Notes
    -----
    .. math:: CAC = spend / new\\_customers

    References
    ----------
    pug.sh, "LTV:CAC ratio"; ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> cac(500, 20)
    25.0
    """
    return safe_div(spend, new_customers)


@kpi(spend=MONEY, impressions=COUNT)
def cpm(spend, impressions):
    """Cost per mille: ad cost per 1,000 impressions.

    Parameters
    ----------
    spend : float or array_like
        Ad cost, >= 0.
    impressions : float or array_like
        Impressions, >= 0.

    Returns
    -------
    float or ndarray
        Money per 1,000 impressions; NaN where ``impressions`` is 0.

    Notes
    -----
    .. math:: CPM = spend / impressions \\times 1000

    References
    ----------
    TikTok Ads help, metric definitions (aid=10000166).

    Examples
    --------
    >>> cpm(50, 10_000)
    5.0
    """
    return safe_div(spend * 1000.0, impressions)


@kpi(spend=MONEY, clicks=COUNT)
def cpc(spend, clicks):
    """Cost per click: ad cost per destination click.

    Parameters
    ----------
    spend : float or array_like
        Ad cost, >= 0.
    clicks : float or array_like
        Destination clicks, >= 0.

    Returns
    -------
    float or ndarray
        Money per click; NaN where ``clicks`` is 0.

    Notes
    -----
    .. math:: CPC = spend / clicks

    References
    ----------
    TikTok Ads help, ``CPC (destination)`` (aid=10000166).

    Examples
    --------
    >>> cpc(50, 200)
    0.25
    """
    return safe_div(spend, clicks)


@kpi(spend=MONEY, conversions=COUNT)
def cpa(spend, conversions):
    """Cost per action: ad cost per conversion.

    Parameters
    ----------
    spend : float or array_like
        Ad cost, >= 0.
    conversions : float or array_like
        Conversions (purchases), >= 0.

    Returns
    -------
    float or ndarray
        Money per conversion; NaN where ``conversions`` is 0.

    Notes
    -----
    .. math:: CPA = spend / conversions

    References
    ----------
    TikTok Ads help, ``Cost per conversion`` (aid=10000166); help.metricool.com.

    Examples
    --------
    >>> cpa(300, 12)
    25.0
    """
    return safe_div(spend, conversions)


@kpi(revenue=MONEY, spend=MONEY, margin=FRACTION)
def roi(revenue, spend, margin):
    """Return on investment of ad spend: profit after ad cost per unit of ad cost.

    Parameters
    ----------
    revenue : float or array_like
        Attributed revenue, >= 0.
    spend : float or array_like
        Ad cost, >= 0.
    margin : float or array_like
        Gross (contribution) margin as a fraction of revenue, 0..1.

    Returns
    -------
    float or ndarray
        A fraction: 0.5 is a 50 % return, -0.2 a 20 % loss; NaN where
        ``spend`` is 0.

    Warnings
    --------
    ROI is often confused with ROAS: ROAS ignores the cost of goods, ROI
    subtracts it (through ``margin``) and the ad cost.

    Notes
    -----
    .. math:: ROI = (revenue \\times margin - spend) / spend

    References
    ----------
    stackmatix.com, "TikTok ROAS benchmarks"; ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> roi(1_000, 200, 0.4)
    1.0
    >>> roi(400, 200, 0.25)
    -0.5
    """
    return safe_div(revenue * margin - spend, spend)


@kpi(margin=FRACTION, refund_rate=FRACTION)
def breakeven_roas(margin, refund_rate=0):
    """Break-even ROAS: the ROAS at which ads pay for themselves.

    Parameters
    ----------
    margin : float or array_like
        Contribution margin as a fraction of revenue, 0..1.
    refund_rate : float or array_like, optional
        Share of revenue refunded, 0..1; 0 by default.

    Returns
    -------
    float or ndarray
        A multiple; NaN where the margin or ``1 - refund_rate`` is 0.

    Warnings
    --------
    A campaign below its break-even ROAS loses money whatever a generic
    benchmark says: the template's benchmark tab lets it override them.

    Notes
    -----
    .. math:: ROAS_{BE} = 1 / (margin \\times (1 - refund\\_rate))

    References
    ----------
    promarketer.ca; metrictoolbox.com/guides/break-even-roas.

    Examples
    --------
    >>> breakeven_roas(0.4)
    2.5
    >>> breakeven_roas(0.5, 0.2)
    2.5
    """
    return safe_div(np.asarray(1.0), margin * (1.0 - refund_rate))
