"""Predictive customer lifetime value (BG/NBD + Gamma-Gamma) and cohort retention.

Everything here works from raw order lines: a customer id, an order date and
(for money) an order amount per line, in any order.  The models are the
standard ones of the customer-base analysis literature:

* **BG/NBD** (Fader, Hardie & Lee 2005): while alive, a customer buys as a
  Poisson process with rate λ ~ Gamma(r, α); after each purchase the customer
  drops out for good with probability p ~ Beta(a, b).  It gives the expected
  number of purchases in a future period and the probability that a customer
  is still alive.
* **Gamma-Gamma** (Fader & Hardie 2013): the amounts of a customer's
  purchases are Gamma(p, ν) around the customer's mean, with ν ~ Gamma(q, γ)
  across customers.  It gives the expected amount of a customer's future
  purchases, shrunk from the customer's own mean towards the population mean.

Conventions (the literature's; results depend on them):

* a purchase is a **customer-day**: a customer's order lines on the same day
  are one purchase and their amounts are summed;
* frequency ``x`` = the number of repeat purchase days (the first purchase day
  is not counted); recency ``t_x`` = last purchase day - first purchase day;
  age ``T`` = as-of date - first purchase day; ``t_x`` and ``T`` are whole days
  converted to the time unit (``"weeks"``: days / 7, the default; or
  ``"days"``);
* lines dated after the as-of date are left out; lines on the as-of date are
  in, so a customer first seen that day has ``T = 0``; the as-of date
  defaults to the last order date in the data;
* the spend of a customer is the mean amount of the **repeat** purchases (the
  first purchase is left out); the Gamma-Gamma model is fitted on the
  customers with ``x > 0``;
* the CLV over ``H`` months with a monthly discount rate ``d`` is
  ``Σ_{k=1..H} E[spend] (E[Y(k months)] - E[Y(k-1 months)]) / (1 + d)^k``,
  a month being 30 days (4.345 weeks when the unit is weeks), as in lifetimes
  (``BaseFitter.customer_lifetime_value``); times a gross margin for a profit
  CLV;
* lines with a blank customer, date or amount are left out (a template that
  blanks cancelled orders leaves them out this way);
* degenerate data (no customer, one customer, nobody with a repeat purchase,
  a fit that does not converge, a zero mean spend) raise :class:`FitError`
  (a ``ValueError``); a negative amount raises ``ValueError``.  Nothing here
  returns numbers that look real for data that cannot support them.

scipy (``scipy.special``, ``scipy.optimize``) is imported inside the functions
that need it, so that ``import xl_kpis`` stays numpy-only.

Only :func:`predicted_clv`, :func:`customer_clv`, :func:`clv_parameters` and
:func:`cohort_retention` are Excel functions (and ``xl_kpis.*``); the model
building blocks (:func:`rfm_summary`, :func:`bgnbd_fit`,
:func:`bgnbd_expected_purchases`, :func:`bgnbd_p_alive`,
:func:`gamma_gamma_fit`, :func:`gamma_gamma_expected_spend`,
:func:`clv_model`, :func:`model_clv`, :func:`parameter_rows`,
:func:`predicted_clv_cac`, :func:`simulate_orders`) are Python API in this module;
:func:`fits` hands over the models an Excel function fitted.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from datetime import date, datetime
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from ._kpi import (DATES, FRACTION, LABELS, MONEY, MONTHS, NONNEG, UNIT, as_float_array,
                   as_labels, check_domain, check_same_length, factorize, kpi, present)

__all__ = ["predicted_clv", "customer_clv", "clv_parameters", "p_alive_buckets",
           "cohort_retention"]

#: Length of the time units in days.
UNIT_DAYS: dict[str, int] = {"weeks": 7, "days": 1}
#: A month in each time unit (lifetimes' convention: 30 days, 4.345 weeks).
MONTH: dict[str, float] = {"weeks": 4.345, "days": 30.0}

_ORDINAL_1970 = date(1970, 1, 1).toordinal()
_BOUND = 15.0            # the box the optimiser searches, in log parameters (of scaled data)
_DIVERGED = 12.0         # |log parameter| beyond which a fit runs off: e^12 = 1.6e5
_GRAD_TOL = 1e-4         # largest gradient (of the mean log-likelihood) of a converged fit
_CURVATURE = 1e-6        # smallest curvature of the mean log-likelihood at a maximum


#: The numpydoc entries of the arguments the order-line KPIs share.  A docstring line
#: ``{{name, ...}}`` stands for the entries of those names, in that order
#: (:func:`_shared_parameters`), so the text is written once; the Excel functions' argument
#: help is read from the filled docstrings.
_SHARED_PARAMETERS = """\
customer_ids : array_like
    The customer of each order line (``Buyer Username``).
order_dates : array_like
    The date of each line; lines of a customer on one day are one purchase.
order_amounts : array_like
    The amount of each line, >= 0 (summed per customer-day).
months : int, optional
    The horizon in months (1..120; 12 by default); a month is 30 days
    (4.345 weeks).
margin : float, optional
    Gross margin 0..1 for a profit CLV (1, revenue CLV, by default).
discount : float, optional
    Discount rate per month, >= 0 (0.01 by default, lifetimes' default).
as_of : date-like, optional
    The as-of date: later lines are left out; the last order date by default.
unit : {"weeks", "days"}, optional
    The time unit the model is fitted in: weeks (the default) or days.
"""
_ENTRIES = {m.group(1): m.group(0).rstrip("\n").split("\n") for m in
            re.finditer(r"^(\w+) :.*\n(?: {4}.*\n)*", _SHARED_PARAMETERS, re.M)}
_PLACEHOLDER = re.compile(r"^( *)\{\{([\w, ]+)\}\}$", re.M)


def _shared_parameters(fn: Callable) -> Callable:
    """Put the shared entries (:data:`_SHARED_PARAMETERS`) in ``fn``'s docstring, indented
    as the ``{{name, ...}}`` line that stands for them."""
    fn.__doc__ = _PLACEHOLDER.sub(
        lambda m: "\n".join(m.group(1) + line for name in m.group(2).split(",")
                            for line in _ENTRIES[name.strip()]), fn.__doc__)
    return fn


class FitError(ValueError):
    """The data cannot support the model: too few customers, no repeat purchase, no convergence."""


class Rfm(NamedTuple):
    """The RFM summary of order lines, one element per customer.

    Attributes
    ----------
    customer : numpy.ndarray
        Customer ids (str), sorted.
    frequency : numpy.ndarray
        ``x``: repeat purchase days (purchase days - 1).
    recency : numpy.ndarray
        ``t_x``: last purchase day - first purchase day, in ``unit``.
    T : numpy.ndarray
        Age: as-of date - first purchase day, in ``unit``.
    spend : numpy.ndarray
        Mean amount of the repeat purchase days; NaN where ``x`` is 0 or no
        amounts were given.
    first : numpy.ndarray
        First purchase day (``datetime64[D]``).
    as_of : numpy.datetime64
        The as-of date (``datetime64[D]``).
    unit : str
        ``"weeks"`` or ``"days"``.
    """

    customer: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    spend: np.ndarray
    first: np.ndarray
    as_of: np.datetime64
    unit: str


class BgNbd(NamedTuple):
    """Fitted BG/NBD parameters; ``alpha`` is in ``unit`` (e.g. weeks)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    unit: str = "weeks"


class GammaGamma(NamedTuple):
    """Fitted Gamma-Gamma parameters (``gamma`` is in money)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float


class ClvModel(NamedTuple):
    """A fitted CLV model: the RFM summary and both models."""

    summary: Rfm
    bgnbd: BgNbd
    gamma_gamma: GammaGamma


class Cohorts(NamedTuple):
    """A cohort retention triangle.

    Attributes
    ----------
    cohort : numpy.ndarray
        The calendar month of the first order of each cohort (``datetime64[M]``).
    customers : numpy.ndarray
        Customers in each cohort.
    retention : numpy.ndarray
        ``retention[i, k]``: the share of cohort ``i``'s customers with at least
        one order ``k`` calendar months after their first order's month; NaN
        after the last month of data.
    """

    cohort: np.ndarray
    customers: np.ndarray
    retention: np.ndarray


# --- input ------------------------------------------------------------------------------

def _unit(fname: str, unit: Any) -> str:
    u = str(unit).strip().lower() if isinstance(unit, str) else unit
    if u not in UNIT_DAYS:
        raise ValueError(f"{fname}: argument 'unit' {UNIT.rule}, got {unit!r}")
    return u


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    try:
        return bool(v != v)  # NaN, NaT
    except (TypeError, ValueError):
        return False


def _day(fname: str, arg: str, v: Any) -> int:
    """One date as whole days since 1970-01-01 (a datetime's time of day is dropped)."""
    if isinstance(v, (date, datetime)):   # pandas Timestamp too; a timezone keeps its wall clock
        return v.toordinal() - _ORDINAL_1970
    if isinstance(v, np.datetime64):
        return int(v.astype("datetime64[D]").astype(np.int64))
    if isinstance(v, str):
        try:
            return int(np.datetime64(v.strip()).astype("datetime64[D]").astype(np.int64))
        except ValueError:
            pass
    raise TypeError(f"{fname}: argument {arg!r} {DATES.rule} (datetime64, date, datetime or"
                    f" ISO text such as '2024-05-31'), got {v!r}")


def as_dates(fname: str, arg: str, values: Any) -> np.ndarray:
    """Dates as a 1-D ``datetime64[D]`` array; blanks (None, "", NaN, NaT) become NaT.

    Accepts ``datetime64`` arrays (any unit, floored to the day), and
    sequences of ``datetime.date``/``datetime.datetime`` (pandas Timestamps),
    ``numpy.datetime64`` or ISO text.  A datetime's time of day is dropped;
    a time zone keeps its wall-clock date.  Numbers are refused (Excel serial
    numbers are converted at the Excel boundary, :mod:`xl_kpis.cells`).

    >>> as_dates("f", "d", ["2024-05-31", None, date(2024, 6, 1)])
    array(['2024-05-31',        'NaT', '2024-06-01'], dtype='datetime64[D]')
    """
    a = np.asarray(values)
    if a.dtype.kind == "M":
        return a.ravel().astype("datetime64[D]")
    if a.dtype.kind in "US":
        try:
            return a.ravel().astype("datetime64[s]").astype("datetime64[D]")
        except ValueError:
            pass
    a = np.asarray(values, dtype=object).ravel()
    if a.size and set(map(type, a)) <= {date, datetime}:
        days = np.fromiter((v.toordinal() for v in a), np.int64, a.size) - _ORDINAL_1970
        return days.astype("datetime64[D]")
    days = np.zeros(a.size, dtype=np.int64)
    blank = np.zeros(a.size, dtype=bool)
    for i, v in enumerate(a):
        if _blank(v):
            blank[i] = True
        elif isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
            raise TypeError(f"{fname}: argument {arg!r} {DATES.rule} (datetime64, date, datetime"
                            f" or ISO text such as '2024-05-31'), got {v!r}")
        else:
            days[i] = _day(fname, arg, v)
    out = days.astype("datetime64[D]")
    out[blank] = np.datetime64("NaT")
    return out


def _as_of(fname: str, as_of: Any) -> np.datetime64 | None:
    if as_of is None or _blank(as_of):
        return None
    if isinstance(as_of, (bool, np.bool_, int, float, np.integer, np.floating)):
        _day(fname, "as_of", as_of)  # raises
    return np.datetime64(_day(fname, "as_of", as_of), "D")


def _lines(fname: str, customer_ids: Any, order_dates: Any, order_amounts: Any = None,
           as_of: Any = None, extra_ids: Any = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.datetime64]:
    """The usable lines: (customer labels or codes, days, amounts or None, as-of day).

    Lines with a blank customer, date, amount or ``extra_ids`` are left out,
    and so are lines after the as-of date.
    """
    c = as_labels(fname, "customer_ids", customer_ids)
    d = as_dates(fname, "order_dates", order_dates)
    arrays = {"customer_ids": c, "order_dates": d}
    amt = None
    if order_amounts is not None:
        amt = as_float_array(fname, "order_amounts", order_amounts).ravel()
        arrays["order_amounts"] = amt
    if extra_ids is not None:
        o = as_labels(fname, "order_ids", extra_ids)
        arrays["order_ids"] = o
    check_same_length(fname, **arrays)
    if amt is not None:
        check_domain(fname, "order_amounts", amt, MONEY)
    keep = present(c) & ~np.isnat(d)
    if amt is not None:
        keep &= ~np.isnan(amt)
    if extra_ids is not None:
        keep &= present(o)
    end = _as_of(fname, as_of)
    if end is None:
        if not keep.any():
            raise FitError(f"{fname}: no order line with a customer and a date (no customer)")
        end = d[keep].max()
    keep &= d <= end
    if not keep.any():
        raise FitError(f"{fname}: no order line with a customer and a date on or before"
                       f" {end} (no customer)")
    return c[keep], d[keep], (None if amt is None else amt[keep]), end


def _customer_codes(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct customer labels, sorted, and each line's index into them)."""
    if c.dtype.kind in "iu":
        uniq, inv = np.unique(c, return_inverse=True)
        return uniq.astype(str).astype(object), inv.ravel()
    if c.dtype.kind == "O":          # hashed, never a fixed-width copy of long labels
        first, uniq = factorize(c)
        labels = [str(u) for u in uniq.tolist()]
        order = sorted(range(len(labels)), key=labels.__getitem__)
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        out = np.empty(len(order), dtype=object)
        out[:] = [labels[i] for i in order]
        return out, rank[first]
    uniq, inv = np.unique(c, return_inverse=True)
    return uniq.astype(object), inv.ravel()


# --- the RFM summary ------------------------------------------------------------------------

def rfm_summary(customer_ids, order_dates, order_amounts=None, as_of=None, unit="weeks"):
    """The RFM summary of order lines: frequency, recency, age and spend per customer.

    Parameters
    ----------
    customer_ids : array_like
        The customer of each order line; blank lines are left out.
    order_dates : array_like
        The date of each line (``datetime64``, ``date``/``datetime``, ISO
        text); the time of day is dropped.
    order_amounts : array_like, optional
        The amount of each line, >= 0; the lines of a customer-day are summed.
        Without it ``spend`` is NaN.
    as_of : date-like, optional
        The end of the calibration period (lines after it are left out);
        the last order date by default.
    unit : {"weeks", "days"}, optional
        The time unit of ``recency`` and ``T``.

    Returns
    -------
    Rfm
        One element per customer (sorted by id), with the as-of date and unit.

    Raises
    ------
    FitError
        When no line has a customer and a date (on or before ``as_of``).
    ValueError
        For a negative amount, arguments of different lengths or a bad unit.

    Notes
    -----
    .. math:: x = n_{days} - 1, \\; t_x = (d_{last} - d_{first}) / u, \\; T = (d_{as\\ of} - d_{first}) / u

    The spend is the mean over the repeat purchase days of the day's summed
    amounts (the first purchase day is left out).

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "'Counting your
    customers' the easy way: an alternative to the Pareto/NBD model",
    *Marketing Science* 24(2), 275-284 (the definitions of x, t_x, T).

    Examples
    --------
    Ann buys on 1 and 8 January (two lines that day) and 22 January; Bob once:

    >>> s = rfm_summary(["ann", "ann", "ann", "ann", "bob"],
    ...                 ["2024-01-01", "2024-01-08", "2024-01-08", "2024-01-22", "2024-01-15"],
    ...                 [10, 5, 7, 18, 30])
    >>> s.customer.tolist(), s.frequency.tolist(), s.recency.tolist(), s.T.tolist()
    (['ann', 'bob'], [2.0, 0.0], [3.0, 0.0], [3.0, 1.0])
    >>> s.spend.tolist()
    [15.0, nan]
    """
    f = "rfm_summary"
    u = _unit(f, unit)
    c, d, amt, end = _lines(f, customer_ids, order_dates, order_amounts, as_of)
    labels, ci = _customer_codes(c)
    day = d.astype(np.int64)
    d0 = int(day.min())
    span = int(day.max()) - d0 + 1
    pairs, inv = np.unique(ci.astype(np.int64) * span + (day - d0), return_inverse=True)
    pc, pd = pairs // span, pairs % span + d0
    starts = np.flatnonzero(np.r_[True, pc[1:] != pc[:-1]])
    ends = np.r_[starts[1:], pairs.size]
    x = (ends - starts - 1).astype(np.float64)
    first, last = pd[starts], pd[ends - 1]
    ud = UNIT_DAYS[u]
    end_day = int(end.astype(np.int64))
    spend = np.full(starts.size, np.nan)
    if amt is not None:
        per_day = np.bincount(inv.ravel().astype(np.intp), weights=amt, minlength=pairs.size)
        per_day[starts] = 0.0                         # the first purchase is not a repeat
        repeat_total = np.add.reduceat(per_day, starts)
        has = x > 0
        spend[has] = repeat_total[has] / x[has]
    return Rfm(customer=labels[pc[starts]], frequency=x,
               recency=(last - first).astype(np.float64) / ud,
               T=(end_day - first).astype(np.float64) / ud, spend=spend,
               first=first.astype("datetime64[D]"), as_of=end, unit=u)


# --- BG/NBD ---------------------------------------------------------------------------------

def _summary_arrays(fname: str, frequency, recency, T) -> tuple[np.ndarray, ...]:
    x = as_float_array(fname, "frequency", frequency).ravel()
    tx = as_float_array(fname, "recency", recency).ravel()
    age = as_float_array(fname, "T", T).ravel()
    check_same_length(fname, frequency=x, recency=tx, T=age)
    for name, v in (("frequency", x), ("recency", tx), ("T", age)):
        if not np.isfinite(v).all():
            raise ValueError(f"{fname}: argument {name!r} must be finite numbers,"
                             f" got {v[~np.isfinite(v)][0]!r}")
        check_domain(fname, name, v, NONNEG)
    if (x != np.floor(x)).any():
        raise ValueError(f"{fname}: argument 'frequency' must be whole numbers,"
                         f" got {x[x != np.floor(x)][0]!r}")
    if (tx > age).any():
        raise ValueError(f"{fname}: recency must be <= T, got {tx[tx > age][0]!r}"
                         f" > {age[tx > age][0]!r}")
    return x, tx, age


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Σ u v without BLAS (whose threads can stall on a busy machine for 100,000 elements)."""
    return float(np.multiply(u, v).sum())


def _bgnbd_nll(x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray | None = None):
    """The mean negative BG/NBD log-likelihood and its gradient, in log parameters.

    ``w`` weights each row (how many customers share it); 1 each by default.
    """
    from scipy.special import digamma, gammaln

    w = np.ones(x.size) if w is None else np.asarray(w, dtype=np.float64)
    n = float(w.sum())
    xs, at = np.unique(x, return_inverse=True)        # the Γ terms depend on x only
    counts = np.bincount(at.ravel().astype(np.intp), weights=w, minlength=xs.size)
    rep = x > 0
    xr, txr, Tr, T0 = x[rep], tx[rep], T[rep], T[~rep]
    wr, w0 = w[rep], w[~rep]

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(theta)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # customers without a repeat purchase: L = B(a, b) / B(a, b) (alpha / (alpha + T))^r
            log_t0 = np.log(alpha + T0)
            # customers with one: L is a sum of two terms, a3 and a4 (in logs)
            log_tr = np.log(alpha + Tr)
            log_tx = np.log(alpha + txr)
            rx = r + xr
            a3 = -rx * log_tr
            a4 = np.log(a) - np.log(b + xr - 1.0) - rx * log_tx
            m = np.maximum(a3, a4)
            e3, e4 = np.exp(a3 - m), np.exp(a4 - m)
            total = e3 + e4
            w4 = e4 / total                 # the weight of the a4 term in each derivative
            w3 = 1.0 - w4
            ll = _dot(counts, gammaln(r + xs) + gammaln(b + xs) - gammaln(a + b + xs)) \
                + n * (r * np.log(alpha) - gammaln(r) + gammaln(a + b) - gammaln(b)) \
                - r * _dot(w0, log_t0) + _dot(wr, m + np.log(total))
            w3, w4 = w3 * wr, w4 * wr                      # weighted by the customers per row
            psi_ab, psi_abx = digamma(a + b), _dot(counts, digamma(a + b + xs))
            g_r = _dot(counts, digamma(r + xs)) + n * (np.log(alpha) - digamma(r)) \
                - _dot(w0, log_t0) - _dot(w3, log_tr) - _dot(w4, log_tx)
            g_alpha = n * r / alpha - r * _dot(w0, 1.0 / (alpha + T0)) \
                - _dot(rx, w3 / (alpha + Tr) + w4 / (alpha + txr))
            g_a = n * psi_ab - psi_abx + w4.sum() / a
            g_b = n * (psi_ab - digamma(b)) + _dot(counts, digamma(b + xs)) - psi_abx \
                - (w4 / (b + xr - 1.0)).sum()
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / n, -grad / n

    return f


def _hessian(f, theta: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """The Hessian of ``f`` at ``theta`` by central differences of its analytic gradient."""
    k = theta.size
    out = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h
        out[:, i] = (f(theta + e)[1] - f(theta - e)[1]) / (2.0 * h)
    return (out + out.T) / 2.0


def _maximise(fname: str, what: str, f, starts: list[np.ndarray]) -> np.ndarray:
    """Minimise ``f`` (mean negative log-likelihood, gradient) over log parameters.

    Tries each start until one converges and returns its log parameters.  The
    data are scaled before (times by the mean age, amounts by the mean spend)
    so that every parameter of a real fit lies well inside ``±_DIVERGED``.  A
    fit converges when the optimiser stops at a finite point inside that box,
    where the gradient is (nearly) zero and the Hessian is positive definite
    (a maximum of the likelihood, not a ridge along which a parameter runs off
    to 0 or infinity); otherwise :class:`FitError`.
    """
    from scipy.optimize import minimize

    def boxed(theta: np.ndarray) -> tuple[float, np.ndarray]:
        # outside the box: the value at its wall plus a quadratic wall, so BFGS never
        # evaluates the likelihood where a parameter overflows
        inside = np.clip(theta, -_BOUND, _BOUND)
        out = theta - inside
        val, grad = f(inside)
        return val + float(out @ out), grad + 2.0 * out

    why = "no start"
    for x0 in starts:
        # BFGS: scipy's own Python and numpy on 3-4 parameters (L-BFGS-B's compiled code calls
        # BLAS, whose threads stall for milliseconds per call on a busy machine)
        res = minimize(boxed, x0, jac=True, method="BFGS",
                       options={"maxiter": 2000, "gtol": 1e-9})
        val, grad = f(np.clip(res.x, -_BOUND, _BOUND))
        if not (np.isfinite(val) and np.isfinite(res.x).all() and np.isfinite(grad).all()):
            why = "the likelihood is not finite"
            continue
        if (np.abs(res.x) > _DIVERGED).any():
            why = "a parameter runs off to 0 or infinity"
            continue
        if np.abs(grad).max() > _GRAD_TOL:
            why = f"the optimiser stopped away from a maximum ({res.message})"
            continue
        curvature = np.linalg.eigvalsh(_hessian(f, res.x))
        if not np.isfinite(curvature).all() or curvature.min() <= _CURVATURE:
            why = "the likelihood is flat along some direction (a parameter is not identified)"
            continue
        return res.x
    raise FitError(f"{fname}: the {what} fit did not converge: {why}; the data do not"
                   f" identify the model (too few customers or repeat purchases?)")


def bgnbd_fit(frequency, recency, T, unit="weeks"):
    """Fit the BG/NBD model by maximum likelihood.

    Parameters
    ----------
    frequency, recency, T : array_like
        Per customer: ``x`` (repeat purchases), ``t_x`` and ``T`` in ``unit``
        (e.g. the fields of :func:`rfm_summary`).
    unit : {"weeks", "days"}, optional
        The time unit of ``recency`` and ``T``, reported with the parameters.

    Returns
    -------
    BgNbd
        ``r``, ``alpha`` (in ``unit``), ``a``, ``b`` and the maximised
        log-likelihood (the sum over customers).

    Raises
    ------
    FitError
        Fewer than 2 customers, nobody with a repeat purchase, no customer
        with ``T > 0``, or a fit that does not converge (a parameter running
        off to 0 or infinity).

    Notes
    -----
    .. math:: L_i = \\frac{B(a, b+x)}{B(a, b)} \\frac{\\Gamma(r+x)\\, \\alpha^r}{\\Gamma(r)\\, (\\alpha+T)^{r+x}} + \\delta_{x>0} \\frac{B(a+1, b+x-1)}{B(a, b)} \\frac{\\Gamma(r+x)\\, \\alpha^r}{\\Gamma(r)\\, (\\alpha+t_x)^{r+x}}

    The log-likelihood ``Σ_i log L_i`` is maximised over the logarithms of
    the four parameters with ``scipy.optimize.minimize`` (BFGS with the
    analytic gradient), from a starting point set by the data's purchase
    rate; customers with the same (x, t_x, T) are one row of the sum, weighted.
    The fit is a function of its inputs alone: the last few fits are kept, and
    the same inputs again give the fit made before (a book's KPIs fit the same
    order lines for the predicted CLV, the customers' table, the parameters and
    the P(alive) buckets).

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "'Counting your
    customers' the easy way: an alternative to the Pareto/NBD model",
    *Marketing Science* 24(2), 275-284, equation (6).

    Examples
    --------
    Orders drawn from known parameters (:func:`simulate_orders`) give them back:

    >>> ids, days, _ = simulate_orders(5000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0), seed=3)
    >>> s = rfm_summary(ids, days)
    >>> fit = bgnbd_fit(s.frequency, s.recency, s.T)
    >>> [round(v, 1) for v in fit[:4]], fit.unit
    ([0.5, 6.4, 0.6, 2.2], 'weeks')
    """
    f = "bgnbd_fit"
    u = _unit(f, unit)
    x, tx, age = _summary_arrays(f, frequency, recency, T)
    if x.size < 2:
        raise FitError(f"{f}: needs at least 2 customers, got {x.size}")
    if not (x > 0).any():
        raise FitError(f"{f}: nobody made a repeat purchase: the drop-out process cannot be"
                       f" estimated")
    if not (age > 0).any():
        raise FitError(f"{f}: every customer was first seen on the as-of date (T = 0)")
    for (unit_was, *inputs), fit in _BGNBD_FITS:
        if unit_was == u and all(map(np.array_equal, inputs, (x, tx, age))):
            return fit
    fit = _bgnbd_fit(f, u, x, tx, age)
    _BGNBD_FITS.insert(0, ((u, x.copy(), tx.copy(), age.copy()), fit))   # (copies: the
    del _BGNBD_FITS[_BGNBD_KEPT:]                                          # caller's may change)
    return fit


#: The last BG/NBD fits, newest first: ``((unit, x, t_x, T), fit)``.
_BGNBD_FITS: list[tuple[tuple[str, np.ndarray, np.ndarray, np.ndarray], BgNbd]] = []
_BGNBD_KEPT = 4


def _bgnbd_fit(f: str, u: str, x: np.ndarray, tx: np.ndarray, age: np.ndarray) -> BgNbd:
    """:func:`bgnbd_fit` of checked inputs: the maximisation itself."""
    # fit in units of the mean age, from the data's purchase rate E[lambda] = r / alpha
    scale = float(age.mean())
    rate = x.sum() / (age.sum() / scale)
    starts = [np.log([1.0, 1.0 / rate, 1.0, 1.0]), np.zeros(4),
              np.log([0.5, 0.5 / rate, 0.5, 2.0])]
    (xd, txd, aged), _, w = _distinct_rows(x, tx, age)   # customers alike count once, weighted
    theta = _maximise(f, "BG/NBD", _bgnbd_nll(xd, txd / scale, aged / scale, w), starts)
    theta[1] += np.log(scale)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    nll, _ = _bgnbd_nll(xd, txd, aged, w)(theta)
    return BgNbd(r, alpha, a, b, float(-nll * x.size), u)


def _params(fname: str, params: Any, kind: type) -> tuple:
    if not isinstance(params, kind):
        raise TypeError(f"{fname}: argument 'params' must be a {kind.__name__} (a fit), got"
                        f" {type(params).__name__}")
    return params


def bgnbd_p_alive(params, frequency, recency, T):
    """P(alive): the probability that a customer has not dropped out by the as-of date.

    Parameters
    ----------
    params : BgNbd
        Fitted parameters (:func:`bgnbd_fit`).
    frequency, recency, T : float or array_like
        ``x``, ``t_x`` and ``T`` in the parameters' unit.

    Returns
    -------
    numpy.ndarray or float
        Probabilities; 1 where ``x`` is 0 (in BG/NBD a customer can only drop
        out right after a purchase).

    Notes
    -----
    .. math:: P(alive) = 1 / \\left(1 + \\delta_{x>0} \\frac{a}{b+x-1} \\left(\\frac{\\alpha+T}{\\alpha+t_x}\\right)^{r+x}\\right)

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2008), "Computing P(alive)
    using the BG/NBD model", brucehardie.com/notes/021; FHL (2005) eq. (11).

    Examples
    --------
    >>> bg = BgNbd(0.243, 4.414, 0.793, 2.426, float("nan"))
    >>> bgnbd_p_alive(bg, 0, 0, 30)
    1.0
    >>> round(bgnbd_p_alive(bg, 2, 30.43, 38.86), 3)
    0.727
    """
    r, alpha, a, b, *_ = _params("bgnbd_p_alive", params, BgNbd)
    x, tx, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = np.log(a) - np.log(np.where(x > 0, b + x - 1.0, 1.0)) \
            + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
        out = np.where(x > 0, 1.0 / (1.0 + np.exp(log_odds)), 1.0)
    return float(out) if out.ndim == 0 else out


def bgnbd_expected_purchases(params, t, frequency, recency, T):
    """Expected number of purchases of a customer in the next ``t`` time units.

    Parameters
    ----------
    params : BgNbd
        Fitted parameters (:func:`bgnbd_fit`).
    t : float or array_like
        The horizon after the as-of date, in the parameters' unit, >= 0.
    frequency, recency, T : float or array_like
        ``x``, ``t_x`` and ``T`` of the customers (broadcast with ``t``).

    Returns
    -------
    numpy.ndarray or float
        E[Y(t) | x, t_x, T].

    Notes
    -----
    .. math:: E[Y(t)] = \\frac{a+b+x-1}{a-1} \\left[1 - \\left(\\frac{\\alpha+T}{\\alpha+T+t}\\right)^{r+x} {}_2F_1\\left(r+x, b+x; a+b+x-1; \\frac{t}{\\alpha+T+t}\\right)\\right] / \\left(1 + \\delta_{x>0} \\frac{a}{b+x-1} \\left(\\frac{\\alpha+T}{\\alpha+t_x}\\right)^{r+x}\\right)

    Where ``scipy.special.hyp2f1`` overflows, Euler's transformation
    :math:`{}_2F_1(a, b; c; z) = (1-z)^{c-a-b} {}_2F_1(c-a, c-b; c; z)` is used.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), *Marketing Science*
    24(2), 275-284, equation (10) and its worked example (a customer with
    x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226 purchases in the next
    39 weeks).

    Examples
    --------
    >>> bg = BgNbd(0.243, 4.414, 0.793, 2.426, float("nan"))
    >>> round(bgnbd_expected_purchases(bg, 39, 2, 30.43, 38.86), 3)
    1.226
    >>> bgnbd_expected_purchases(bg, 0, 2, 30.43, 38.86)
    0.0
    """
    from scipy.special import hyp2f1

    r, alpha, a, b, *_ = _params("bgnbd_expected_purchases", params, BgNbd)
    # removable singularities at a = 1 and (for x = 0) a + b = 1: the mean of both sides
    near = ("a", 1.0) if abs(a - 1.0) < 1e-6 else \
        ("b", 1.0 - a) if abs(a + b - 1.0) < 1e-6 else None
    if near is not None:
        name, at = near
        lo, hi = (bgnbd_expected_purchases(params._replace(**{name: at + side * 1e-5}),
                                           t, frequency, recency, T) for side in (-1.0, 1.0))
        return (np.asarray(lo) + np.asarray(hi)) / 2.0 if np.ndim(lo) else (lo + hi) / 2.0
    t, x, tx, age = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                         for v in (t, frequency, recency, T)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ha, hb, hc = r + x, b + x, a + b + x - 1.0
        z = t / (alpha + age + t)
        h = hyp2f1(ha, hb, hc, z)
        sign, log_h = np.sign(h), np.log(np.abs(h))        # 2F1 < 0 when c < 0 (x = 0, a + b < 1)
        bad = ~np.isfinite(h)
        if bad.any():  # Euler's transformation
            h2 = hyp2f1(hc - ha, hc - hb, hc, z)
            sign = np.where(bad, np.sign(h2), sign)
            log_h = np.where(bad, np.log(np.abs(h2)) + (hc - ha - hb) * np.log1p(-z), log_h)
        e = log_h + (r + x) * (np.log(alpha + age) - np.log(alpha + age + t))
        second = np.where(sign > 0, -np.expm1(e), 1.0 - sign * np.exp(e))
        first = (a + b + x - 1.0) / (a - 1.0)
        log_odds = np.log(a) - np.log(np.where(x > 0, b + x - 1.0, 1.0)) \
            + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
        den = 1.0 + np.where(x > 0, np.exp(log_odds), 0.0)
        out = np.where(t > 0, first * second / den, 0.0)
    return float(out) if out.ndim == 0 else out


# --- Gamma-Gamma -------------------------------------------------------------------------

def _gg_nll(x: np.ndarray, m: np.ndarray):
    """The mean negative Gamma-Gamma log-likelihood and its gradient, in log parameters."""
    from scipy.special import digamma, gammaln

    n = x.size
    xs, counts = np.unique(x, return_counts=True)    # the Γ terms depend on x only
    counts = counts.astype(np.float64)
    log_m = np.log(m)
    sum_xlogxm = _dot(x, log_m + np.log(x))           # Σ x (log m + log x)
    sum_logm = float(log_m.sum())
    mx = m * x

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, g = np.exp(theta)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            pxs = p * xs
            log_gmx = np.log(g + mx)
            ll = _dot(counts, gammaln(pxs + q) - gammaln(pxs)) + p * sum_xlogxm - sum_logm \
                - p * _dot(x, log_gmx) - q * log_gmx.sum() + n * (q * np.log(g) - gammaln(q))
            psi = digamma(pxs + q)
            g_p = _dot(counts * xs, psi - digamma(pxs)) + sum_xlogxm - _dot(x, log_gmx)
            g_q = _dot(counts, psi) - n * digamma(q) + n * np.log(g) - log_gmx.sum()
            g_g = n * q / g - ((p * x + q) / (g + mx)).sum()
        return -ll / n, -np.array([g_p * p, g_q * q, g_g * g]) / n

    return f


def gamma_gamma_fit(frequency, spend):
    """Fit the Gamma-Gamma spend model on the customers with a repeat purchase.

    Parameters
    ----------
    frequency : array_like
        ``x`` per customer; customers with ``x = 0`` are left out of the fit.
    spend : array_like
        The mean amount of each customer's repeat purchases (> 0 where ``x > 0``).

    Returns
    -------
    GammaGamma
        ``p``, ``q``, ``gamma`` and the maximised log-likelihood.

    Raises
    ------
    FitError
        Fewer than 2 customers with a repeat purchase, a mean spend of 0, or
        a fit that does not converge.
    ValueError
        A negative or missing spend where ``x > 0``.

    Notes
    -----
    .. math:: f(m_x | p, q, \\gamma, x) = \\frac{\\Gamma(px+q)}{\\Gamma(px)\\Gamma(q)} \\frac{\\gamma^q x^{px} m_x^{px-1}}{(\\gamma + m_x x)^{px+q}}

    Maximised over the logarithms of the parameters (BFGS, analytic
    gradient).

    References
    ----------
    Fader, P. S. & Hardie, B. G. S. (2013), "The Gamma-Gamma model of
    monetary value", brucehardie.com/notes/025, equation (4); Fader, Hardie &
    Lee (2005), "RFM and CLV: using iso-value curves for customer base
    analysis", *Journal of Marketing Research* 42(4), 415-430.

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(5000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=3)
    >>> s = rfm_summary(ids, days, amounts)
    >>> [round(v, 1) for v in gamma_gamma_fit(s.frequency, s.spend)[:3]]
    [7.0, 3.8, 11.9]
    """
    f = "gamma_gamma_fit"
    x = as_float_array(f, "frequency", frequency).ravel()
    m = as_float_array(f, "spend", spend).ravel()
    check_same_length(f, frequency=x, spend=m)
    check_domain(f, "frequency", x, NONNEG)
    rep = x > 0
    x, m = x[rep], m[rep]
    if np.isnan(m).any():
        raise ValueError(f"{f}: argument 'spend' must be given for every customer with a"
                         f" repeat purchase, got nan")
    check_domain(f, "spend", m, MONEY)
    if (m == 0).any():
        raise FitError(f"{f}: a customer's mean repeat spend is 0: the Gamma-Gamma model"
                       f" needs amounts > 0")
    if x.size < 2:
        raise FitError(f"{f}: needs at least 2 customers with a repeat purchase, got {x.size}")
    # fit in units of the mean spend
    scale = float(m.mean())
    starts = [np.log([1.0, 2.0, 1.0]), np.zeros(3), np.log([5.0, 3.0, 0.4])]
    theta = _maximise(f, "Gamma-Gamma", _gg_nll(x, m / scale), starts)
    theta[2] += np.log(scale)
    p, q, g = (float(v) for v in np.exp(theta))
    nll, _ = _gg_nll(x, m)(theta)
    return GammaGamma(p, q, g, float(-nll * x.size))


def gamma_gamma_expected_spend(params, frequency, spend):
    """Expected amount of a customer's future purchases.

    Parameters
    ----------
    params : GammaGamma
        Fitted parameters (:func:`gamma_gamma_fit`).
    frequency : float or array_like
        ``x`` per customer.
    spend : float or array_like
        Mean repeat spend per customer (ignored, may be NaN, where ``x = 0``).

    Returns
    -------
    numpy.ndarray or float
        A weighted mean of the population mean ``p γ / (q - 1)`` and the
        customer's own mean; the population mean where ``x = 0``.

    Raises
    ------
    FitError
        When ``q <= 1`` (the population mean spend is not finite).

    Notes
    -----
    .. math:: E[M | p, q, \\gamma, m_x, x] = \\frac{p (\\gamma + x m_x)}{p x + q - 1}

    References
    ----------
    Fader, P. S. & Hardie, B. G. S. (2013), "The Gamma-Gamma model of
    monetary value", brucehardie.com/notes/025, equation (5).

    Examples
    --------
    >>> gg = GammaGamma(6.25, 3.74, 15.44, float("nan"))
    >>> round(gamma_gamma_expected_spend(gg, 0, float("nan")), 2)   # p γ / (q - 1)
    35.22
    >>> round(gamma_gamma_expected_spend(gg, 2, 20.0), 2)
    22.74
    """
    p, q, g, _ = _params("gamma_gamma_expected_spend", params, GammaGamma)
    if q <= 1.0:
        raise FitError(f"gamma_gamma_expected_spend: q = {q!r} <= 1: the mean spend of the"
                       f" population is not finite")
    x = np.asarray(frequency, dtype=np.float64)
    m = np.where(x > 0, np.asarray(spend, dtype=np.float64), 0.0)
    out = p * (g + x * m) / (p * x + q - 1.0)
    return float(out) if out.ndim == 0 else out


# --- CLV ----------------------------------------------------------------------------------

def clv_model(customer_ids, order_dates, order_amounts, as_of=None, unit="weeks"):
    """Summarise order lines and fit both models.

    Parameters
    ----------
    customer_ids, order_dates, order_amounts : array_like
        The order lines (see :func:`rfm_summary`).
    as_of : date-like, optional
        The as-of date; the last order date by default.
    unit : {"weeks", "days"}, optional
        The time unit of the BG/NBD parameters.

    Returns
    -------
    ClvModel
        The summary, the BG/NBD fit and the Gamma-Gamma fit.

    Raises
    ------
    FitError
        Degenerate data (see :func:`bgnbd_fit` and :func:`gamma_gamma_fit`).

    Notes
    -----
    Inside :func:`fits`, the model (or the :class:`FitError`) is also kept there.

    Examples
    --------
    See :func:`customer_clv`.
    """
    kept = _KEPT.get()
    try:
        s = rfm_summary(customer_ids, order_dates, order_amounts, as_of, unit)
        bg = bgnbd_fit(s.frequency, s.recency, s.T, s.unit)
        gg = gamma_gamma_fit(s.frequency, s.spend)
    except FitError as e:
        if kept is not None:
            # a copy without the traceback: the traceback holds this frame, whose ``kept``
            # holds the list, and the callers' frames with their columns (a reference cycle
            # that only the cyclic collector frees)
            kept.append(FitError(*e.args))
        raise
    model = ClvModel(s, bg, gg)
    if kept is not None:
        kept.append(model)
    return model


_KEPT: contextvars.ContextVar[list | None] = contextvars.ContextVar("xl_kpis_fits", default=None)


@contextlib.contextmanager
def fits() -> Iterator[list[ClvModel | FitError]]:
    """Keep the outcome of every :func:`clv_model` fit made inside the ``with`` block.

    For a caller that has a model fitted through another function (an Excel
    function's formula, :func:`predicted_clv` …) and needs the fit itself too: the
    fitted model, its parameters and every customer's figures, without fitting the
    same lines again.  A block nested in another keeps its own fits; the outer
    block does not see them.

    Yields
    ------
    list
        One entry per fit, in order: the :class:`ClvModel`, or the
        :class:`FitError` that stopped it.

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=1)
    >>> with fits() as fitted:
    ...     clv = predicted_clv(ids, days, amounts, months=12, margin=0.4)
    >>> [type(f).__name__ for f in fitted]
    ['ClvModel']
    >>> float(model_clv(fitted[0], 12, 0.4)["clv"].mean()) == clv
    True
    """
    kept: list = []
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)


def _check_clv_options(fname: str, months: Any, margin: Any, discount: Any) -> tuple:
    vals = []
    for name, v, dom in (("months", months, MONTHS), ("margin", margin, FRACTION),
                         ("discount", discount, NONNEG)):
        a = as_float_array(fname, name, v)
        if a.ndim != 0 or not np.isfinite(a):
            raise ValueError(f"{fname}: argument {name!r} must be one finite number, got {v!r}")
        check_domain(fname, name, a, dom)
        vals.append(float(a))
    if not vals[0].is_integer():
        raise ValueError(f"{fname}: argument 'months' {MONTHS.rule}, got {months!r}")
    return int(vals[0]), vals[1], vals[2]


def _distinct_rows(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray,
                                                     np.ndarray]:
    """The distinct rows of the columns, each row's index among them, and their counts.

    Customers who share (x, t_x, T) share every BG/NBD quantity: a shop's data, in whole days,
    has far fewer distinct rows than customers.
    """
    order = np.lexsort(columns[::-1])               # by the first column, then the next ...
    new = np.zeros(order.size, dtype=bool)
    new[:1] = True
    for c in columns:
        cs = c[order]
        new[1:] |= cs[1:] != cs[:-1]
    group = np.cumsum(new) - 1
    inv = np.empty(order.size, dtype=np.intp)
    inv[order] = group
    first = order[new]
    counts = np.bincount(group.astype(np.intp)).astype(np.float64)
    return tuple(c[first] for c in columns), inv, counts


def model_clv(model, months=12, margin=1.0, discount=0.01):
    """Predicted CLV per customer of a fitted model (:func:`clv_model`).

    Parameters
    ----------
    model : ClvModel
        The summary and the fits.
    months : int, optional
        The horizon in months (1..120).
    margin : float, optional
        Gross margin 0..1 (1: a revenue CLV).
    discount : float, optional
        Discount rate per month, >= 0.

    Returns
    -------
    numpy.ndarray
        As :func:`customer_clv`: one row per customer of the summary, highest
        CLV first.

    Raises
    ------
    FitError
        When the Gamma-Gamma ``q <= 1`` or a value is not finite.

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=1)
    >>> m = clv_model(ids, days, amounts)
    >>> bool((model_clv(m, 12, 0.4)["clv"] == customer_clv(ids, days, amounts, 12, 0.4)["clv"]).all())
    True
    """
    if not isinstance(model, ClvModel):
        raise TypeError(f"model_clv: argument 'model' must be a ClvModel, got"
                        f" {type(model).__name__}")
    h, margin, discount = _check_clv_options("model_clv", months, margin, discount)
    s, bg, gg = model
    spend = gamma_gamma_expected_spend(gg, s.frequency, s.spend)
    (x, tx, age), inv, _ = _distinct_rows(s.frequency, s.recency, s.T)
    step = MONTH[s.unit]
    value = np.zeros(x.size)
    before = np.zeros(x.size)
    for k in range(1, h + 1):
        now = bgnbd_expected_purchases(bg, k * step, x, tx, age)
        value += (now - before) / (1.0 + discount) ** k
        before = now
    clv = spend * value[inv] * margin
    if not np.isfinite(clv).all():
        raise FitError("predicted CLV: the fitted model gives a value that is not finite")
    out = np.zeros(s.customer.size, dtype=[("customer", object), ("purchases", np.int64),
                                           ("p_alive", float), ("expected_purchases", float),
                                           ("expected_spend", float), ("clv", float)])
    out["customer"] = s.customer
    out["purchases"] = s.frequency.astype(np.int64) + 1
    out["p_alive"] = bgnbd_p_alive(bg, x, tx, age)[inv]
    out["expected_purchases"] = before[inv]
    out["expected_spend"] = spend
    out["clv"] = clv
    return out[np.argsort(-clv, kind="stable")]


@kpi(shape="table", customer_ids=LABELS, order_dates=DATES, order_amounts=MONEY, months=MONTHS,
     margin=FRACTION, discount=NONNEG, as_of=DATES, unit=UNIT)
@_shared_parameters
def customer_clv(customer_ids, order_dates, order_amounts, months=12, margin=1.0,
                 discount=0.01, as_of=None, unit="weeks"):
    """Predicted CLV per customer (BG/NBD + Gamma-Gamma), highest first.

    Parameters
    ----------
    {{customer_ids, order_dates, order_amounts, months, margin, discount, as_of}}
    unit : {"weeks", "days"}, optional
        The time unit the model is fitted in: weeks (the default) or days (a
        month is 4.345 weeks or 30 days, so the two differ very slightly).

    Returns
    -------
    numpy.ndarray
        A structured array, one row per customer sorted by predicted CLV
        (highest first, ties by id), with fields ``customer``, ``purchases``
        (purchase days so far, ``x + 1``), ``p_alive``,
        ``expected_purchases`` (over the horizon), ``expected_spend`` (per
        purchase) and ``clv``.

    Raises
    ------
    FitError
        Degenerate data: no customer, one customer, nobody with a repeat
        purchase, a fit that does not converge, a zero mean spend.
    ValueError
        A negative amount, an option out of its range.

    Warnings
    --------
    The value of the customers' **future** purchases over the horizon: the
    purchases already made are not in it, and neither is the first purchase
    of a customer not yet acquired.  Purchases are customer-days.

    Notes
    -----
    .. math:: CLV_i = margin \\sum_{k=1}^{H} E[M_i] (E[Y_i(k)] - E[Y_i(k-1)]) / (1 + d)^k

    with ``E[Y_i(k)]`` the BG/NBD expected purchases in the next ``k`` months
    (:func:`bgnbd_expected_purchases`) and ``E[M_i]`` the Gamma-Gamma expected
    spend (:func:`gamma_gamma_expected_spend`).

    References
    ----------
    Fader, Hardie & Lee (2005), *Marketing Science* 24(2); Fader & Hardie
    (2013), "The Gamma-Gamma model of monetary value"; the month and
    discounting convention of lifetimes (C. Davidson-Pilon,
    ``BaseFitter.customer_lifetime_value``); the metrics seed ("the predicted
    net profit attributed to the entire future relationship with a
    customer"), ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=1)
    >>> t = customer_clv(ids, days, amounts, months=12, margin=0.4)
    >>> t.dtype.names
    ('customer', 'purchases', 'p_alive', 'expected_purchases', 'expected_spend', 'clv')
    >>> bool((np.diff(t["clv"]) <= 0).all())
    True
    """
    _check_clv_options("customer_clv", months, margin, discount)   # before any fitting
    return model_clv(clv_model(customer_ids, order_dates, order_amounts, as_of, unit), months,
                     margin, discount)


@kpi(shape="aggregate", customer_ids=LABELS, order_dates=DATES, order_amounts=MONEY,
     months=MONTHS, margin=FRACTION, discount=NONNEG, as_of=DATES, unit=UNIT)
@_shared_parameters
def predicted_clv(customer_ids, order_dates, order_amounts, months=12, margin=1.0,
                  discount=0.01, as_of=None, unit="weeks"):
    """Predicted CLV of the shop's customers (BG/NBD + Gamma-Gamma), mean per customer.

    Parameters
    ----------
    {{customer_ids, order_dates, order_amounts, months, margin, discount, as_of, unit}}

    Returns
    -------
    float
        The mean over the customers of :func:`customer_clv`'s ``clv``.

    Raises
    ------
    FitError
        Degenerate data (see :func:`customer_clv`).

    Warnings
    --------
    The mean value of the existing customers' future purchases over the
    horizon; the purchases already made (and a new customer's first
    purchase) are not in it, so it understates what a newly acquired
    customer is worth.  Multiply by the number of customers for the value
    of the whole customer base.

    Notes
    -----
    .. math:: CLV = \\frac{1}{N} \\sum_i margin \\sum_{k=1}^{H} E[M_i] (E[Y_i(k)] - E[Y_i(k-1)]) / (1 + d)^k

    References
    ----------
    Fader, Hardie & Lee (2005), *Marketing Science* 24(2); Fader & Hardie
    (2013), "The Gamma-Gamma model of monetary value"; lifetimes'
    ``customer_lifetime_value``; ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=1)
    >>> round(predicted_clv(ids, days, amounts, months=12, margin=0.4), 1)
    18.9
    """
    t = customer_clv(customer_ids, order_dates, order_amounts, months, margin, discount,
                     as_of, unit)
    return float(t["clv"].mean())


def predicted_clv_cac(customer_ids, order_dates, order_amounts, cac, months=12, margin=1.0,
                      discount=0.01, as_of=None, unit="weeks"):
    """Predicted CLV : CAC, the predicted CLV per customer over the acquisition cost.

    Parameters
    ----------
    customer_ids, order_dates, order_amounts : array_like
        The order lines.
    cac : float
        Customer acquisition cost, >= 0 (:func:`xl_kpis.cac`).
    months, margin, discount, as_of, unit
        As for :func:`predicted_clv` (use the gross margin: a revenue CLV
        overstates the ratio).

    Returns
    -------
    float
        ``ltv_cac(predicted_clv(...), cac)``; NaN when ``cac`` is 0.

    Notes
    -----
    .. math:: CLV{:}CAC = CLV_{predicted} / CAC

    References
    ----------
    The metrics seed ("By comparing CLTV with CAC ..."); ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=1)
    >>> ratio = predicted_clv_cac(ids, days, amounts, 20.0, margin=0.4)
    >>> ratio == predicted_clv(ids, days, amounts, margin=0.4) / 20.0
    True
    """
    from .lifetime import ltv_cac

    return ltv_cac(predicted_clv(customer_ids, order_dates, order_amounts, months, margin,
                                 discount, as_of, unit), cac)


#: The rows of :func:`clv_parameters`: each parameter's name and what it is.
PARAMETER_ROWS = (
    ("r", "BG/NBD: shape of the purchase rate across customers"),
    ("alpha", "BG/NBD: scale of the purchase rate, in the time unit"),
    ("a", "BG/NBD: drop-out probability, shape a"),
    ("b", "BG/NBD: drop-out probability, shape b"),
    ("BG/NBD log-likelihood", "the maximised log-likelihood of the purchase model"),
    ("p", "Gamma-Gamma: shape of a purchase's amount"),
    ("q", "Gamma-Gamma: shape of the spend across customers"),
    ("gamma", "Gamma-Gamma: scale of the spend across customers (money)"),
    ("Gamma-Gamma log-likelihood", "the maximised log-likelihood of the spend model"),
    ("Customers", "customers with a purchase on or before the as-of date"),
    ("Repeat customers", "customers with a repeat purchase day (the spend model's data)"),
    ("Time unit", "the unit of alpha, recency and age"),
    ("As of", "the end of the data the models were fitted on"),
)


@kpi(shape="table", customer_ids=LABELS, order_dates=DATES, order_amounts=MONEY, as_of=DATES,
     unit=UNIT)
@_shared_parameters
def clv_parameters(customer_ids, order_dates, order_amounts, as_of=None, unit="weeks"):
    """The fitted BG/NBD and Gamma-Gamma parameters behind the predicted CLV.

    Parameters
    ----------
    {{customer_ids, order_dates, order_amounts, as_of}}
    unit : {"weeks", "days"}, optional
        The time unit of ``alpha``: weeks (the default) or days.

    Returns
    -------
    numpy.ndarray
        A structured array of 13 rows with fields ``parameter``, ``value``
        (a float, or text for the unit and the as-of date) and ``meaning``:
        r, alpha, a, b, the BG/NBD log-likelihood, p, q, gamma, the
        Gamma-Gamma log-likelihood, the numbers of customers and of repeat
        customers, the time unit and the as-of date (ISO text).

    Raises
    ------
    FitError
        Degenerate data (see :func:`customer_clv`).

    Notes
    -----
    .. math:: \\lambda \\sim Gamma(r, \\alpha), \\; p \\sim Beta(a, b), \\; \\nu \\sim Gamma(q, \\gamma)

    The purchase rate λ, the drop-out probability p and the spend scale ν
    vary across customers with these distributions (see :func:`bgnbd_fit`,
    :func:`gamma_gamma_fit`).

    References
    ----------
    Fader, Hardie & Lee (2005), *Marketing Science* 24(2); Fader & Hardie
    (2013), "The Gamma-Gamma model of monetary value".

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=1)
    >>> t = clv_parameters(ids, days, amounts)
    >>> [(p, round(v, 1)) for p, v in zip(t["parameter"][:4], t["value"][:4])]
    [('r', 0.5), ('alpha', 5.5), ('a', 0.8), ('b', 3.3)]
    >>> t["value"][-2:].tolist()
    ['weeks', '2024-12-30']
    """
    rows = parameter_rows(clv_model(customer_ids, order_dates, order_amounts, as_of, unit))
    out = np.zeros(len(rows), dtype=[("parameter", object), ("value", object),
                                     ("meaning", object)])
    out["parameter"] = [p for p, _ in rows]
    out["value"] = [v for _, v in rows]
    out["meaning"] = [m for _, m in PARAMETER_ROWS]
    return out


def parameter_rows(model) -> list[tuple[str, float | str]]:
    """``(name, value)`` of every row of :func:`clv_parameters` for a fitted model.

    >>> ids, days, amounts = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0),
    ...                                      GammaGamma(6.0, 4.0, 15.0, 0.0), seed=1)
    >>> [name for name, _ in parameter_rows(clv_model(ids, days, amounts))][:5]
    ['r', 'alpha', 'a', 'b', 'BG/NBD log-likelihood']
    """
    s, bg, gg = model
    values = (bg.r, bg.alpha, bg.a, bg.b, bg.log_likelihood, gg.p, gg.q, gg.gamma,
              gg.log_likelihood, float(s.customer.size), float((s.frequency > 0).sum()),
              s.unit, str(s.as_of))
    return [(name, v) for (name, _), v in zip(PARAMETER_ROWS, values)]


#: The groups of :func:`p_alive_buckets`: a label and, for repeat buyers, P(alive) >= ``lo``.
ALIVE_GROUPS = (
    ("Bought once (P(alive) = 1 in the model)", None),
    ("Bought again, P(alive) 75-100 %", 0.75),
    ("Bought again, P(alive) 50-75 %", 0.50),
    ("Bought again, P(alive) 25-50 %", 0.25),
    ("Bought again, P(alive) under 25 %", 0.0),
)


@kpi(shape="table", customer_ids=LABELS, order_dates=DATES, order_ids=LABELS, as_of=DATES,
     unit=UNIT)
@_shared_parameters
def p_alive_buckets(customer_ids, order_dates, order_ids=None, as_of=None, unit="weeks"):
    """Customers by P(alive): how many of those who bought again are likely still buying.

    Parameters
    ----------
    {{customer_ids, order_dates}}
    order_ids : array_like, optional
        The order of each line: lines without one are left out (the template passes
        ``Counted order``, blank for cancelled orders, so that the fit sees the lines
        the predicted CLV sees).
    {{as_of, unit}}

    Returns
    -------
    numpy.ndarray
        A structured array of 5 rows (:data:`ALIVE_GROUPS`) with fields ``group``,
        ``customers`` and ``share`` (of all customers): the customers who bought once,
        then those who bought again by P(alive) 75-100 %, 50-75 %, 25-50 % and under 25 %.

    Raises
    ------
    FitError
        Degenerate data (see :func:`bgnbd_fit`).

    Warnings
    --------
    In BG/NBD a customer drops out only right after a purchase, so a customer who bought
    once is alive with probability 1: the model cannot tell whether one-time buyers are
    gone, hence their own row.  P(alive) is at the as-of date.

    Notes
    -----
    .. math:: share_g = |\\{i : x_i > 0, P_i(alive) \\in g\\}| / N

    with :func:`bgnbd_p_alive`'s P(alive) at the as-of date.

    References
    ----------
    Fader, Hardie & Lee (2008), "Computing P(alive) using the BG/NBD model",
    brucehardie.com/notes/021; FHL (2005), *Marketing Science* 24(2).

    Examples
    --------
    >>> ids, days, _ = simulate_orders(2000, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0), seed=1)
    >>> t = p_alive_buckets(ids, days)
    >>> t["group"][0], int(t["customers"].sum()), round(float(t["share"].sum()), 6)
    ('Bought once (P(alive) = 1 in the model)', 2000, 1.0)
    """
    if order_ids is not None:
        customer_ids, order_dates, _, as_of = _lines("p_alive_buckets", customer_ids,
                                                     order_dates, None, as_of, order_ids)
    s = rfm_summary(customer_ids, order_dates, None, as_of, unit)
    bg = bgnbd_fit(s.frequency, s.recency, s.T, s.unit)
    alive = np.asarray(bgnbd_p_alive(bg, s.frequency, s.recency, s.T), dtype=np.float64)
    rep = s.frequency > 0
    counts = [int((~rep).sum())]
    upper = np.inf
    for _, lo in ALIVE_GROUPS[1:]:
        counts.append(int((rep & (alive >= lo) & (alive < upper)).sum()))
        upper = lo
    out = np.zeros(len(ALIVE_GROUPS), dtype=[("group", object), ("customers", np.int64),
                                             ("share", float)])
    out["group"] = [g for g, _ in ALIVE_GROUPS]
    out["customers"] = counts
    out["share"] = np.asarray(counts, dtype=np.float64) / s.customer.size
    return out


# --- simulation ------------------------------------------------------------------------------

def simulate_orders(n_customers, bgnbd, gamma_gamma=None, start="2024-01-01", days=365,
                    acquisition_days=None, seed=0):
    """Order lines drawn from the BG/NBD (and Gamma-Gamma) processes, with known parameters.

    Parameters
    ----------
    n_customers : int
        Customers to draw, >= 1.
    bgnbd : BgNbd
        The purchase process (``alpha`` in ``bgnbd.unit``).
    gamma_gamma : GammaGamma, optional
        The spend process; without it every amount is 1.
    start : date-like, optional
        The first day of the period.
    days : int, optional
        The length of the period; its last day is the as-of date.
    acquisition_days : int, optional
        Customers make their first purchase on a day drawn uniformly from the
        first ``acquisition_days`` days (all of them by default).
    seed : int, optional
        The seed of ``numpy.random.default_rng``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(customer_ids, order_dates, order_amounts)``: one line per purchase,
        sorted by customer then time; ids are ``0 .. n_customers - 1``, dates
        ``datetime64[D]``.

    Notes
    -----
    .. math:: \\lambda_i \\sim Gamma(r, \\alpha), \\; p_i \\sim Beta(a, b), \\; gaps \\sim Exp(\\lambda_i), \\; \\nu_i \\sim Gamma(q, \\gamma), \\; amount \\sim Gamma(p, \\nu_i)

    Customer ``i`` first buys at a random time of a random day; the gaps
    between purchases are exponential with rate λ_i, and after each repeat
    purchase the customer drops out for good with probability p_i.
    Purchases up to the end of the as-of day are kept, each dated by the day
    it falls in (two purchases on one day make one customer-day when
    summarised).  Pass ``as_of`` to the summary when the last day may have no
    purchase (few customers).

    References
    ----------
    Fader, Hardie & Lee (2005), *Marketing Science* 24(2), section 2 (the
    story of the model); Fader & Hardie (2013), "The Gamma-Gamma model of
    monetary value".

    Examples
    --------
    >>> ids, days, amounts = simulate_orders(3000, BgNbd(0.5, 6.0, 0.7, 2.5, float("nan")),
    ...                                      GammaGamma(6.0, 4.0, 15.0, float("nan")), seed=7)
    >>> ids.size > 3000, str(days.max()) <= "2024-12-30"
    (True, True)
    """
    f = "simulate_orders"
    r, alpha, a, b, _, unit = _params(f, bgnbd, BgNbd)
    unit = _unit(f, unit)
    if gamma_gamma is not None:
        _params(f, gamma_gamma, GammaGamma)
    n = int(n_customers)
    days = int(days)
    acquisition_days = days if acquisition_days is None else int(acquisition_days)
    if n < 1 or days < 1 or not 1 <= acquisition_days <= days:
        raise ValueError(f"{f}: needs n_customers >= 1 and 1 <= acquisition_days <= days,"
                         f" got {n_customers!r}, {acquisition_days!r}, {days!r}")
    rng = np.random.default_rng(seed)
    ud = UNIT_DAYS[unit]
    lam = rng.gamma(r, 1.0 / alpha, n) / ud              # purchases per day
    drop = rng.beta(a, b, n)
    first = rng.integers(0, acquisition_days, n)
    end = float(days)                                      # the end of the as-of day
    t = first + rng.random(n)                              # a time of day for each purchase
    who, when = [np.arange(n)], [t]
    active = np.arange(n)
    with np.errstate(divide="ignore"):
        while active.size:
            t = t + rng.exponential(1.0, active.size) / lam[active]
            inside = t < end
            active, t = active[inside], t[inside]
            who.append(active)
            when.append(t)
            stay = rng.random(active.size) >= drop[active]
            active, t = active[stay], t[stay]
    ids = np.concatenate(who)
    times = np.concatenate(when)
    order = np.lexsort((times, ids))
    ids, times = ids[order], times[order]
    if gamma_gamma is None:
        amounts = np.ones(ids.size)
    else:
        p, q, g, _ = gamma_gamma
        nu = rng.gamma(q, 1.0 / g, n)
        amounts = rng.gamma(p, 1.0 / nu[ids])
    dates = np.datetime64(_day(f, "start", start), "D") + np.floor(times).astype(np.int64)
    return ids.astype(np.int64), dates, amounts


# --- cohorts ---------------------------------------------------------------------------------

@kpi(shape="table", customer_ids=LABELS, order_dates=DATES, order_ids=LABELS, as_of=DATES,
     months=MONTHS)
def cohort_retention(customer_ids, order_dates, order_ids=None, as_of=None, months=None):
    """Cohort retention triangle: the share of each month's new customers who buy again.

    Parameters
    ----------
    customer_ids : array_like
        The customer of each order line.
    order_dates : array_like
        The date of each line.
    order_ids : array_like, optional
        The order of each line; lines where it is blank are left out (a column
        that blanks cancelled orders leaves them out).
    as_of : date-like, optional
        The end of the data (later lines are left out); the last order date
        by default.
    months : int, optional
        A fixed-size triangle: the cohorts of the last ``months`` calendar months up to
        the as-of date's month (a month without new customers has 0 customers and no
        shares) and the months 0 .. ``months`` - 1 after them (1..120). By default every
        cohort since the first order and every month since.

    Returns
    -------
    Cohorts
        ``cohort`` (month of the first order, ``datetime64[M]``), ``customers``
        per cohort, and ``retention[i, k]``: the share of cohort ``i``'s
        customers with at least one order in the ``k``-th calendar month after
        the cohort's month (``k = 0`` is the cohort's own month, 1.0); NaN
        where that month is after the as-of date's month.

    Raises
    ------
    FitError
        When no line has a customer and a date.

    Warnings
    --------
    Months are calendar months: a customer who first bought on 31 January
    and again on 1 February is in month 1.  The last month of data may be
    incomplete.

    Notes
    -----
    .. math:: R_{c,k} = n_{c,k} / n_c

    with ``n_c`` the customers whose first order is in month ``c`` and
    ``n_{c,k}`` those of them with an order in month ``c + k``.

    References
    ----------
    The usual acquisition-cohort analysis (e.g. Fader, P. S. (2012),
    *Customer Centricity*, Wharton Digital Press, ch. 3); ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    Ann (January) comes back in March; Bob (January) in February; Cy starts in February:

    >>> c = cohort_retention(["ann", "bob", "ann", "bob", "cy"],
    ...                      ["2024-01-05", "2024-01-20", "2024-03-02", "2024-02-11", "2024-02-03"])
    >>> c.cohort.astype(str).tolist(), c.customers.tolist()
    (['2024-01', '2024-02'], [2, 1])
    >>> c.retention.tolist()
    [[1.0, 0.5, 0.5], [1.0, 0.0, nan]]

    The last 4 months, months 0 to 3 (a fixed size for a sheet):

    >>> c = cohort_retention(["ann", "bob", "ann", "bob", "cy"],
    ...                      ["2024-01-05", "2024-01-20", "2024-03-02", "2024-02-11", "2024-02-03"],
    ...                      months=4)
    >>> c.cohort.astype(str).tolist(), c.customers.tolist()
    (['2023-12', '2024-01', '2024-02', '2024-03'], [0, 2, 1, 0])
    >>> c.retention[1].tolist(), c.retention[3].tolist()
    ([1.0, 0.5, 0.5, nan], [nan, nan, nan, nan])
    """
    f = "cohort_retention"
    if months is not None:
        a = as_float_array(f, "months", months)
        check_domain(f, "months", a, MONTHS)
        if a.ndim or not float(a).is_integer():
            raise ValueError(f"{f}: argument 'months' {MONTHS.rule}, got {months!r}")
    c, d, _, end = _lines(f, customer_ids, order_dates, None, as_of, extra_ids=order_ids)
    _, ci = _customer_codes(c)
    month = d.astype("datetime64[M]").astype(np.int64)
    n_cust = int(ci.max()) + 1
    first = np.full(n_cust, np.iinfo(np.int64).max)
    np.minimum.at(first, ci, month)
    last = int(end.astype("datetime64[M]").astype(np.int64))
    if months is None:
        cohorts = np.unique(first)
        width = last - int(cohorts[0]) + 1
    else:
        width = int(months)
        cohorts = np.arange(last - width + 1, last + 1)
    row = np.searchsorted(cohorts, first)                   # a customer's cohort row
    inside = (row < cohorts.size) & (cohorts[np.minimum(row, cohorts.size - 1)] == first)
    k = month - first[ci]
    keep = inside[ci] & (k < width)
    span = max(width, int(k.max()) + 1)
    seen = np.unique(ci[keep].astype(np.int64) * span + k[keep])   # (customer, month) pairs
    cust, kk = seen // span, seen % span
    cells = np.bincount((row[cust] * width + kk).astype(np.intp),
                        minlength=cohorts.size * width).reshape(cohorts.size, width)
    sizes = np.bincount(row[inside].astype(np.intp), minlength=cohorts.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = cells / sizes[:, None]                       # no new customer: NaN
    after = np.arange(width)[None, :] > (last - cohorts)[:, None]
    share[after] = np.nan
    return Cohorts(cohorts.astype("datetime64[M]"), sizes.astype(np.int64), share)
