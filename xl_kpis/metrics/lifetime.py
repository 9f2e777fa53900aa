"""Lifetime value KPIs: what a customer is worth over the relationship."""

from __future__ import annotations

from ._kpi import FRACTION, MONEY, NONNEG, kpi, safe_div

__all__ = ["clv", "discounted_clv", "ltv_cac", "cac_payback"]


@kpi(aov=MONEY, repeat=NONNEG, retention=NONNEG, margin=FRACTION)
def clv(aov, repeat, retention, margin=1):
    """Customer lifetime value, as the TikTok CLV calculator defines it.

    Parameters
    ----------
    aov : float or array_like
        Average order value, >= 0.
    repeat : float or array_like
        Purchases per customer **per retention period**, >= 0.
    retention : float or array_like
        How many periods a customer stays, >= 0, in the **same period unit**
        as ``repeat`` (e.g. 1 period of 6 months).
    margin : float or array_like, optional
        Gross margin, 0..1.  1 (the default) gives the calculator's revenue
        CLV; a margin gives a profit CLV.

    Returns
    -------
    float or ndarray
        Money per customer.

    Warnings
    --------
    Units: ``repeat`` is purchases per period and ``retention`` the number of
    such periods.  This is the only reading under which all six worked
    examples of the calculator hold (e.g. 20 x 12 purchases per 6-month period
    x 1 period = 240).  Multiplying a lifetime purchase count by years counts
    the years twice.

    Notes
    -----
    .. math:: CLV = AOV \\times repeat \\times retention \\times margin

    References
    ----------
    "TikTok Customer Lifetime Value Calculator" (2024-12-03), formula and
    worked examples; Shopify-style revenue CLV (``docs/kpi-definitions.md`` §1).

    Examples
    --------
    The calculator's six examples:

    >>> clv(50, 5, 1), clv(20, 12, 1), clv(100, 3, 2)
    (250.0, 240.0, 600.0)
    >>> clv(30, 2, 1), clv(10, 1, 1), clv(40, 1, 1)
    (60.0, 10.0, 40.0)
    >>> clv(50, 5, 1, margin=0.4)
    100.0
    """
    value = aov * repeat * retention
    if margin.ndim == 0 and margin == 1.0:
        return value  # the calculator's revenue CLV: skip a pass over the data
    return value * margin


@kpi(margin_per_period=MONEY, retention_rate=FRACTION, discount_rate=NONNEG)
def discounted_clv(margin_per_period, retention_rate, discount_rate):
    """Discounted CLV (Gupta–Lehmann): margin over an infinite horizon with churn.

    Parameters
    ----------
    margin_per_period : float or array_like
        Gross margin a retained customer yields per period, >= 0.
    retention_rate : float or array_like
        Probability a customer is retained from one period to the next, 0..1.
    discount_rate : float or array_like
        Discount rate per period, >= 0 (0.1 for 10 %).

    Returns
    -------
    float or ndarray
        Money per customer; NaN where ``1 + discount_rate - retention_rate``
        is 0 (no discounting and no churn: an infinite value).

    Warnings
    --------
    The first margin is received at the end of the first period; some texts
    count it at t = 0, which multiplies the result by ``1 + discount_rate``.
    Acquisition cost is not subtracted.

    Notes
    -----
    .. math:: CLV = m \\, r / (1 + d - r)

    References
    ----------
    Gupta & Lehmann (2003), "Customers as assets", J. Interactive Marketing;
    ``docs/kpi-definitions.md`` §1 (c).

    Examples
    --------
    >>> round(discounted_clv(100, 0.8, 0.1), 6)
    266.666667
    >>> discounted_clv(100, 1.0, 0.0)
    nan
    """
    return safe_div(margin_per_period * retention_rate, 1.0 + discount_rate - retention_rate)


@kpi(clv=MONEY, cac=MONEY)
def ltv_cac(clv, cac):
    """LTV:CAC ratio: lifetime value earned per unit spent acquiring a customer.

    Parameters
    ----------
    clv : float or array_like
        Lifetime value per customer (margin-based preferably), >= 0.
    cac : float or array_like
        Customer acquisition cost, >= 0.

    Returns
    -------
    float or ndarray
        A ratio; NaN where ``cac`` is 0.

    Warnings
    --------
    Use a margin CLV (``clv(..., margin=m)``): a revenue CLV overstates the ratio.

    Notes
    -----
    .. math:: LTV{:}CAC = CLV / CAC

    References
    ----------
    pug.sh, "LTV:CAC ratio"; freeconvert.ai.

    Examples
    --------
    >>> ltv_cac(300, 100)
    3.0
    """
    return safe_div(clv, cac)


@kpi(cac=MONEY, margin_per_customer_per_month=MONEY)
def cac_payback(cac, margin_per_customer_per_month):
    """CAC payback period in months.

    Parameters
    ----------
    cac : float or array_like
        Customer acquisition cost, >= 0.
    margin_per_customer_per_month : float or array_like
        Gross margin a customer yields per month, >= 0.

    Returns
    -------
    float or ndarray
        Months; NaN where the monthly margin is 0 (it never pays back).

    Notes
    -----
    .. math:: payback = CAC / margin\\_per\\_customer\\_per\\_month

    References
    ----------
    freeconvert.ai; calculatorsir.com; ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> cac_payback(60, 5)
    12.0
    """
    return safe_div(cac, margin_per_customer_per_month)
