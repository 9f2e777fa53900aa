"""Predictive CLV (BG/NBD + Gamma-Gamma) and cohort retention.

Known values: the published CDNOW results (``tests/data/cdnow/README.md``):
Fader, Hardie & Lee (2005), *Marketing Science* 24(2), 275-284, section 4 and its worked example;
Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", brucehardie.com/notes/025.
Per customer, the closed forms are evaluated again here with mpmath at 30 digits (its own
hypergeometric function), and the expected purchases a second way, as a numerical integral
over the posterior of the drop-out probability; the RFM summary and the cohort triangle are
recomputed with plain Python (dicts and ``datetime``).
"""

import math
import random
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from xl_kpis import clv_parameters, cohort_retention, customer_clv, predicted_clv
from xl_kpis.metrics import predictive as P
from xl_kpis.metrics.predictive import BgNbd, FitError, GammaGamma

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT / "tests" / "data" / "cdnow" / "CDNOW_sample.txt"
CALIBRATION_END = "1997-09-30"


def _cdnow_records():
    """(customer, date, amount) per record of the CDNOW sample, as plain Python values."""
    out = []
    for line in CDNOW.read_text().splitlines():
        _, cust, day, _, amount = line.split()
        out.append((cust, date(int(day[:4]), int(day[4:6]), int(day[6:])), float(amount)))
    return out


@pytest.fixture(scope="module")
def cdnow():
    recs = _cdnow_records()
    return ([c for c, _, _ in recs], [d for _, d, _ in recs], [a for _, _, a in recs])


@pytest.fixture(scope="module")
def calibration(cdnow):
    s = P.rfm_summary(*cdnow, as_of=CALIBRATION_END)
    return s, P.bgnbd_fit(s.frequency, s.recency, s.T, s.unit), \
        P.gamma_gamma_fit(s.frequency, s.spend)


# --- the published CDNOW results ---------------------------------------------------------------

def test_cdnow_sample_is_the_published_one(cdnow):
    customers, days, _ = cdnow
    assert len(set(customers)) == 2357                      # FHL (2005): 2,357 customers
    assert min(days) == date(1997, 1, 1) and max(days) == date(1998, 6, 30)


def test_cdnow_bgnbd_reproduces_fader_hardie_lee_2005(calibration):
    _, bg, _ = calibration
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, section 4
    for name, value in published.items():
        assert getattr(bg, name) == pytest.approx(value, rel=0.01), name
        assert round(getattr(bg, name), 3) == value, name     # in fact to every published digit
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert bg.unit == "weeks"


def test_cdnow_gamma_gamma_reproduces_fader_hardie_2013(calibration):
    s, _, gg = calibration
    assert int((s.frequency > 0).sum()) == 946               # the note's 946 repeat customers
    assert gg.p == pytest.approx(6.25, rel=0.01)
    assert gg.q == pytest.approx(3.74, rel=0.01)
    assert gg.gamma == pytest.approx(15.44, rel=0.01)


def test_fhl_worked_example_expected_purchases(calibration):
    # FHL (2005), section 4: x = 2, t_x = 30.43, T = 38.86 weeks -> 1.226 purchases in 39 weeks
    _, bg, _ = calibration
    assert round(P.bgnbd_expected_purchases(bg, 39, 2, 30.43, 38.86), 3) == 1.226


def test_days_unit_gives_the_same_model_in_days(cdnow, calibration):
    s_w, bg_w, _ = calibration
    s_d = P.rfm_summary(*cdnow, as_of=CALIBRATION_END, unit="days")
    np.testing.assert_allclose(s_d.recency, 7 * s_w.recency)
    np.testing.assert_allclose(s_d.T, 7 * s_w.T)
    bg_d = P.bgnbd_fit(s_d.frequency, s_d.recency, s_d.T, "days")
    assert bg_d.unit == "days"
    assert bg_d.alpha == pytest.approx(7 * bg_w.alpha, rel=1e-5)
    for name in ("r", "a", "b"):
        assert getattr(bg_d, name) == pytest.approx(getattr(bg_w, name), rel=1e-5)
    # the likelihood of event times scales by the unit: Σx log 7 (x repeat purchase times each)
    assert bg_d.log_likelihood == pytest.approx(
        bg_w.log_likelihood - s_w.frequency.sum() * math.log(7), rel=1e-9)


def test_fit_is_invariant_to_the_currency(calibration):
    s, _, gg = calibration
    scaled = P.gamma_gamma_fit(s.frequency, s.spend * 16_000)   # e.g. dollars -> rupiah
    assert (scaled.p, scaled.q) == pytest.approx((gg.p, gg.q), rel=1e-5)
    assert scaled.gamma == pytest.approx(16_000 * gg.gamma, rel=1e-5)


def test_analytic_gradients_match_finite_differences(calibration):
    from scipy.optimize import approx_fprime

    s, _, _ = calibration
    rep = s.frequency > 0
    for f, theta in ((P._bgnbd_nll(s.frequency, s.recency, s.T), np.array([-1.0, 1.2, 0.1, 0.7])),
                     (P._gg_nll(s.frequency[rep], s.spend[rep]), np.array([1.5, 1.0, 2.0]))):
        numeric = approx_fprime(theta, lambda z: f(z)[0], 1e-7)
        np.testing.assert_allclose(f(theta)[1], numeric, rtol=1e-5, atol=1e-7)


def test_customers_alike_are_one_weighted_row_of_the_likelihood(calibration):
    s, _, _ = calibration
    (x, tx, T), inv, w = P._distinct_rows(s.frequency, s.recency, s.T)
    assert x.size < s.frequency.size / 2            # CDNOW: 2,357 customers, far fewer rows
    rows = np.stack([s.frequency, s.recency, s.T], axis=1)
    np.testing.assert_array_equal(np.stack([x, tx, T], axis=1)[inv], rows)
    assert x.size == np.unique(rows, axis=0).shape[0] and w.sum() == s.frequency.size
    theta = np.array([-1.0, 1.2, 0.1, 0.7])
    every, weighted = P._bgnbd_nll(s.frequency, s.recency, s.T)(theta), \
        P._bgnbd_nll(x, tx, T, w)(theta)
    assert weighted[0] == pytest.approx(every[0], rel=1e-12)
    np.testing.assert_allclose(weighted[1], every[1], rtol=1e-10)


# --- the RFM summary against plain Python ---------------------------------------------------------

def _plain_rfm(records, as_of, unit_days=7):
    """x, t_x, T and the mean repeat spend per customer, by dicts and dates."""
    per_day = defaultdict(float)
    for c, d, a in records:
        if d <= as_of:
            per_day[(c, d)] += a
    days = defaultdict(list)
    for (c, d), a in sorted(per_day.items()):
        days[c].append((d, a))
    out = {}
    for c, seq in days.items():
        first, last = seq[0][0], seq[-1][0]
        repeat = [a for _, a in seq[1:]]
        out[c] = (len(seq) - 1, (last - first).days / unit_days, (as_of - first).days / unit_days,
                  sum(repeat) / len(repeat) if repeat else math.nan)
    return out


def test_rfm_summary_equals_a_plain_python_computation(cdnow, calibration):
    s, _, _ = calibration
    plain = _plain_rfm(zip(*cdnow), date(1997, 9, 30))
    assert sorted(plain) == s.customer.tolist()
    for i, c in enumerate(s.customer):
        x, tx, T, spend = plain[c]
        assert (s.frequency[i], s.recency[i], s.T[i]) == pytest.approx((x, tx, T), abs=1e-12), c
        assert s.spend[i] == pytest.approx(spend, rel=1e-12, nan_ok=True), c


def test_as_of_conventions():
    lines = (["a", "a", "b", "c"], ["2024-03-01", "2024-03-15", "2024-03-15", "2024-03-20"],
             [10, 20, 30, 40])
    s = P.rfm_summary(*lines, as_of="2024-03-15", unit="days")
    # c's line is after the as-of date: c is not a customer yet; b is first seen on it: T = 0
    assert s.customer.tolist() == ["a", "b"]
    assert s.T.tolist() == [14.0, 0.0] and s.recency.tolist() == [14.0, 0.0]
    assert str(s.as_of) == "2024-03-15"
    assert str(P.rfm_summary(*lines).as_of) == "2024-03-20"      # default: the last order date


def test_time_of_day_and_input_types_do_not_matter():
    a = P.rfm_summary(["x", "x", "y"], [datetime(2024, 1, 1, 23, 59), datetime(2024, 1, 8, 0, 1),
                                        datetime(2024, 1, 3, 12)], [1, 2, 3])
    b = P.rfm_summary(["x", "x", "y"],
                      np.array(["2024-01-01", "2024-01-08", "2024-01-03"], "datetime64[D]"),
                      [1, 2, 3])
    c = P.rfm_summary(["x", "x", "y"], ["2024-01-01T23:59", "2024-01-08", date(2024, 1, 3)],
                      [1, 2, 3])
    for other in (b, c):
        for field in ("customer", "frequency", "recency", "T"):
            assert getattr(a, field).tolist() == getattr(other, field).tolist()


def test_blank_lines_are_left_out():
    s = P.rfm_summary(["a", "a", None, "a", ""], ["2024-01-01", "2024-01-02", "2024-01-03", None,
                                                 "2024-01-09"], [1, float("nan"), 3, 4, 5])
    assert s.customer.tolist() == ["a"] and s.frequency.tolist() == [0.0]
    assert str(s.as_of) == "2024-01-01"


# --- per customer: our closed forms against an independent evaluation ---------------------------

mpmath.mp.dps = 30


def _mp_expected(bg, t, x, tx, T):
    """FHL (2005) eq. (10) with mpmath's own 2F1."""
    r, alpha, a, b = (mpmath.mpf(v) for v in bg[:4])
    t, x, tx, T = (mpmath.mpf(float(v)) for v in (t, x, tx, T))
    hyp = mpmath.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    odds = a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x) if x > 0 else 0
    return num / (1 + odds)


def _mp_expected_by_integral(bg, t, x, tx, T):
    """The same expectation from the model's definition, not from the 2F1 closed form.

    Alive at T (P(alive)), a customer's λ ~ Gamma(r + x, α + T) and p ~ Beta(a, b + x), and an
    alive customer makes (1 - exp(-λ p t)) / p purchases in t on average; integrating λ gives
    (1 - ((α+T)/(α+T+p t))^(r+x)) / p, integrated here over p numerically.
    """
    r, alpha, a, b = (mpmath.mpf(v) for v in bg[:4])
    t, x, tx, T = (mpmath.mpf(float(v)) for v in (t, x, tx, T))
    odds = a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x) if x > 0 else 0
    beta = alpha + T

    def integrand(p):
        return (-mpmath.expm1((r + x) * mpmath.log(beta / (beta + p * t)))) / p \
            * p ** (a - 1) * (1 - p) ** (b + x - 1) / mpmath.beta(a, b + x)

    return mpmath.quad(integrand, [0, mpmath.mpf("1e-8"), 0.01, 0.5, 1]) / (1 + odds)


def test_expected_purchases_match_mpmath_for_every_cdnow_customer(calibration):
    s, bg, _ = calibration
    for horizon in (39.0, 52.14):
        ours = P.bgnbd_expected_purchases(bg, horizon, s.frequency, s.recency, s.T)
        for i in range(s.customer.size):
            ref = _mp_expected(bg, horizon, s.frequency[i], s.recency[i], s.T[i])
            assert ours[i] == pytest.approx(float(ref), rel=1e-10), s.customer[i]


@pytest.mark.parametrize("x, tx, T, t", [
    (0, 0, 38.86, 39), (2, 30.43, 38.86, 39), (7, 35.0, 36.0, 52), (1, 0.5, 30.0, 4.345),
    (50, 50.0, 52.0, 52), (200, 100.0, 104.0, 260), (30, 5.0, 104.0, 520), (0, 0, 0, 520),
])
def test_expected_purchases_equal_the_integral_of_the_model(calibration, x, tx, T, t):
    _, bg, _ = calibration
    ours = P.bgnbd_expected_purchases(bg, t, x, tx, T)
    assert ours == pytest.approx(float(_mp_expected_by_integral(bg, t, x, tx, T)), rel=1e-8)
    assert ours == pytest.approx(float(_mp_expected(bg, t, x, tx, T)), rel=1e-9)


@pytest.mark.parametrize("bg", [BgNbd(1.0, 1.0, 0.3, 0.4, math.nan),     # c < 0 when x = 0
                                BgNbd(2.0, 3.0, 1.0, 2.0, math.nan),      # a = 1 exactly
                                BgNbd(0.8, 2.0, 0.5, 0.5, math.nan)])     # c = 0 when x = 0
@pytest.mark.parametrize("x, tx, T, t", [(0, 0, 5.0, 3.0), (3, 2.0, 6.0, 10.0)])
def test_expected_purchases_where_the_closed_form_is_delicate(bg, x, tx, T, t):
    ours = P.bgnbd_expected_purchases(bg, t, x, tx, T)
    assert ours == pytest.approx(float(_mp_expected_by_integral(bg, t, x, tx, T)), rel=1e-6)


def test_p_alive_and_expected_spend_match_mpmath(calibration):
    s, bg, gg = calibration
    alive = P.bgnbd_p_alive(bg, s.frequency, s.recency, s.T)
    spend = P.gamma_gamma_expected_spend(gg, s.frequency, s.spend)
    r, alpha, a, b = (mpmath.mpf(v) for v in bg[:4])
    p, q, g = (mpmath.mpf(v) for v in gg[:3])
    for i in range(0, s.customer.size, 3):
        x, tx, T = (mpmath.mpf(float(v)) for v in (s.frequency[i], s.recency[i], s.T[i]))
        odds = a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x) if x > 0 else 0
        assert alive[i] == pytest.approx(float(1 / (1 + odds)), rel=1e-12)
        m = mpmath.mpf(float(s.spend[i])) if x > 0 else 0
        assert spend[i] == pytest.approx(float(p * (g + x * m) / (p * x + q - 1)), rel=1e-12)


def _mp_clv(bg, gg, x, tx, T, spend, months, margin, discount, month=4.345):
    p, q, g = (mpmath.mpf(v) for v in gg[:3])
    m = mpmath.mpf(float(spend)) if x > 0 else 0
    e_spend = p * (g + x * m) / (p * x + q - 1)
    total, before = 0, 0
    for k in range(1, months + 1):
        now = _mp_expected(bg, k * month, x, tx, T)
        total += e_spend * (now - before) / mpmath.mpf(1 + discount) ** k
        before = now
    return float(total * margin)


def test_customer_clv_matches_an_independent_sum(cdnow, calibration):
    s, bg, gg = calibration
    t = customer_clv(*cdnow, months=6, margin=0.4, discount=0.02, as_of=CALIBRATION_END)
    assert t.size == 2357 and (np.diff(t["clv"]) <= 0).all()
    row = {c: i for i, c in enumerate(s.customer)}
    for rec in t[::25]:
        i = row[rec["customer"]]
        ref = _mp_clv(bg, gg, s.frequency[i], s.recency[i], s.T[i], s.spend[i], 6, 0.4, 0.02)
        assert rec["clv"] == pytest.approx(ref, rel=1e-9), rec["customer"]
        assert rec["purchases"] == s.frequency[i] + 1


def test_the_independent_sum_catches_a_planted_defect(calibration):
    # a month of 30 days read in weeks as 30/7 = 4.286 instead of lifetimes' 4.345: detected
    s, bg, gg = calibration
    i = int(np.argmax(s.frequency))
    args = (bg, gg, s.frequency[i], s.recency[i], s.T[i], s.spend[i], 6, 1.0, 0.01)
    assert _mp_clv(*args, month=30 / 7) != pytest.approx(_mp_clv(*args), rel=1e-9)


def test_predicted_clv_is_the_mean_and_one_month_is_spend_times_purchases(cdnow, calibration):
    s, bg, gg = calibration
    t = customer_clv(*cdnow, months=12, as_of=CALIBRATION_END)
    assert predicted_clv(*cdnow, months=12, as_of=CALIBRATION_END) == pytest.approx(
        t["clv"].mean(), rel=1e-12)
    one = customer_clv(*cdnow, months=1, discount=0.0, as_of=CALIBRATION_END)
    ey = P.bgnbd_expected_purchases(bg, 4.345, s.frequency, s.recency, s.T)
    spend = P.gamma_gamma_expected_spend(gg, s.frequency, s.spend)
    by_id = dict(zip(s.customer, spend * ey))
    assert all(r["clv"] == pytest.approx(by_id[r["customer"]], rel=1e-12) for r in one)


def test_predicted_clv_cac_is_ltv_cac_of_the_predicted_clv(cdnow):
    clv = predicted_clv(*cdnow, margin=0.3, as_of=CALIBRATION_END)
    assert P.predicted_clv_cac(*cdnow, 12.5, margin=0.3, as_of=CALIBRATION_END) == \
        pytest.approx(clv / 12.5, rel=1e-12)
    assert math.isnan(P.predicted_clv_cac(*cdnow, 0.0, as_of=CALIBRATION_END))


def test_clv_parameters_table(cdnow, calibration):
    _, bg, gg = calibration
    t = clv_parameters(*cdnow, as_of=CALIBRATION_END)
    values = dict(zip(t["parameter"], t["value"]))
    assert (values["r"], values["alpha"], values["a"], values["b"]) == pytest.approx(bg[:4])
    assert (values["p"], values["q"], values["gamma"]) == pytest.approx(gg[:3])
    assert values["Customers"] == 2357 and values["Repeat customers"] == 946
    assert values["Time unit"] == "weeks" and values["As of"] == CALIBRATION_END


def test_fits_keeps_the_fit_behind_a_figure(cdnow, calibration):
    s, bg, gg = calibration
    with P.fits() as outer:
        clv = predicted_clv(*cdnow, margin=0.3, as_of=CALIBRATION_END)
        with P.fits() as inner:                        # a nested block keeps its own fits
            with pytest.raises(FitError):
                predicted_clv(cdnow[0][:1], cdnow[1][:1], cdnow[2][:1])
        P.clv_parameters(*cdnow, as_of=CALIBRATION_END)
    assert [type(f) for f in outer] == [P.ClvModel, P.ClvModel]
    assert [type(f) for f in inner] == [FitError] and "needs at least 2 customers" in str(inner[0])
    # the fit kept is the one the figure came from: the CDNOW fit (FHL 2005, tested above)
    assert outer[0].bgnbd == bg and outer[0].gamma_gamma == gg
    assert float(P.model_clv(outer[0], 12, 0.3)["clv"].mean()) == clv
    predicted_clv(*cdnow, as_of=CALIBRATION_END)      # outside a block nothing is kept
    assert len(outer) == 2


def test_p_alive_buckets_leave_lines_without_an_order_id_out(cdnow):
    ids, days = (np.asarray(a) for a in cdnow[:2])
    order = np.array([f"o{i}" if i % 7 else "" for i in range(ids.size)], dtype=object)
    kept = order != ""
    with_ids = P.p_alive_buckets(ids, days, order, CALIBRATION_END)
    # the same as the lines with an order id alone (filtered here, not by the function)
    alone = P.p_alive_buckets(ids[kept], days[kept], as_of=CALIBRATION_END)
    assert with_ids["customers"].tolist() == alone["customers"].tolist()
    assert with_ids["customers"].sum() < P.p_alive_buckets(
        ids, days, as_of=CALIBRATION_END)["customers"].sum() or kept.all()


def test_p_alive_buckets_count_the_customers_by_their_p_alive(cdnow, calibration):
    s, bg, _ = calibration
    t = P.p_alive_buckets(*cdnow[:2], as_of=CALIBRATION_END)
    assert t["group"].tolist() == [g for g, _ in P.ALIVE_GROUPS]
    # counted again customer by customer, with mpmath's P(alive)
    r, alpha, a, b = (mpmath.mpf(v) for v in bg[:4])
    plain = [0] * 5
    for x, tx, T in zip(s.frequency, s.recency, s.T):
        if x == 0:
            plain[0] += 1
            continue
        x, tx, T = (mpmath.mpf(float(v)) for v in (x, tx, T))
        p = float(1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)))
        plain[1 if p >= 0.75 else 2 if p >= 0.5 else 3 if p >= 0.25 else 4] += 1
    assert t["customers"].tolist() == plain and plain[0] == 2357 - 946
    assert t["share"].tolist() == pytest.approx([n / 2357 for n in plain], rel=1e-15)


# --- the cohort triangle against plain Python -----------------------------------------------

def _month(d):
    return d.year * 12 + d.month - 1


def _first_and_active(records):
    """Each customer's first month, and the months after it (0: that month) in which she
    bought, by dicts."""
    first, active = {}, defaultdict(set)
    for c, d in records:
        first[c] = min(first.get(c, _month(d)), _month(d))
    for c, d in records:
        active[c].add(_month(d) - first[c])
    return first, active


def _plain_cohorts(records, as_of=None):
    records = [(c, d) for c, d in records if as_of is None or d <= as_of]
    end = max(d for _, d in records) if as_of is None else as_of
    first, active = _first_and_active(records)
    table = {}
    for cohort in sorted(set(first.values())):
        members = [c for c in first if first[c] == cohort]
        row = []
        for k in range(_month(end) - min(first.values()) + 1):
            if cohort + k > _month(end):
                row.append(None)
            else:
                row.append(sum(k in active[c] for c in members) / len(members))
        table[f"{cohort // 12}-{cohort % 12 + 1:02d}"] = (len(members), row)
    return table


@pytest.mark.parametrize("as_of", [None, date(1997, 9, 30)])
def test_cohort_triangle_equals_a_plain_python_computation(cdnow, as_of):
    customers, days, _ = cdnow
    c = cohort_retention(customers, days, as_of=as_of)
    plain = _plain_cohorts(zip(customers, days), as_of)
    assert c.cohort.astype(str).tolist() == list(plain)
    for i, (n, row) in enumerate(plain.values()):
        assert c.customers[i] == n
        assert c.retention[i].tolist() == pytest.approx(
            [math.nan if v is None else v for v in row], rel=1e-15, nan_ok=True)
    assert c.retention.shape == ((3, 18) if as_of is None else (3, 9))


def _plain_window(records, months):
    """The last ``months`` calendar months' cohorts, months 0 .. months - 1, by dicts."""
    end = max(d for _, d in records)
    first, active = _first_and_active(records)
    rows = []
    for cohort in range(_month(end) - months + 1, _month(end) + 1):
        members = [c for c in first if first[c] == cohort]
        rows.append((len(members), [
            math.nan if cohort + k > _month(end) or not members else
            sum(k in active[c] for c in members) / len(members) for k in range(months)]))
    return rows


@pytest.mark.parametrize("months", [1, 6, 12, 30])
def test_cohort_window_equals_a_plain_python_computation(cdnow, months):
    customers, days, _ = cdnow
    c = cohort_retention(customers, days, months=months)
    assert c.retention.shape == (months, months) and str(c.cohort[-1]) == "1998-06"
    for i, (n, row) in enumerate(_plain_window(list(zip(customers, days)), months)):
        assert c.customers[i] == n
        assert c.retention[i].tolist() == pytest.approx(row, rel=1e-15, nan_ok=True)


def test_cohort_blank_after_the_data_and_zero_inside():
    c = cohort_retention(["a", "b", "a"], ["2024-01-10", "2024-02-10", "2024-03-01"])
    assert c.retention[0].tolist() == [1.0, 0.0, 1.0]
    assert c.retention[1, :2].tolist() == [1.0, 0.0] and math.isnan(c.retention[1, 2])


def test_cohort_order_ids_leave_cancelled_lines_out():
    c = cohort_retention(["a", "a", "b"], ["2024-01-10", "2024-02-10", "2024-02-11"],
                         order_ids=["o1", None, "o3"])
    assert c.cohort.astype(str).tolist() == ["2024-01", "2024-02"]
    assert c.retention[0].tolist() == [1.0, 0.0]


# --- properties --------------------------------------------------------------------------------

lines = st.lists(st.tuples(st.sampled_from(["ann", "bob", "cy", "di", "ed"]),
                           st.integers(0, 120), st.integers(1, 500)), min_size=1, max_size=40)
BASE = date(2024, 1, 1)


def _columns(recs):
    return ([c for c, _, _ in recs], [BASE + timedelta(days=d) for _, d, _ in recs],
            [float(a) for _, _, a in recs])


def _same_summary(a, b):
    for field in ("customer", "frequency", "recency", "T", "first"):
        assert getattr(a, field).tolist() == getattr(b, field).tolist()
    np.testing.assert_allclose(a.spend, b.spend, rtol=1e-12)
    assert a.as_of == b.as_of


@settings(max_examples=60, deadline=None)
@given(recs=lines, seed=st.integers(0, 10**6))
def test_order_of_lines_does_not_matter(recs, seed):
    shuffled = list(recs)
    random.Random(seed).shuffle(shuffled)
    _same_summary(P.rfm_summary(*_columns(recs)), P.rfm_summary(*_columns(shuffled)))
    a = cohort_retention(*_columns(recs)[:2])
    b = cohort_retention(*_columns(shuffled)[:2])
    np.testing.assert_array_equal(a.retention, b.retention)


@settings(max_examples=60, deadline=None)
@given(recs=lines, split=st.data())
def test_same_day_lines_are_one_purchase(recs, split):
    # split every line's amount over 1-3 lines of the same day: the summary does not change
    more = []
    for c, d, a in recs:
        k = split.draw(st.integers(1, 3))
        parts = [a // k] * (k - 1) + [a - (a // k) * (k - 1)]
        more += [(c, d, p) for p in parts]
    _same_summary(P.rfm_summary(*_columns(recs)), P.rfm_summary(*_columns(more)))


@settings(max_examples=60, deadline=None)
@given(recs=lines)
def test_plain_python_agrees_on_random_lines(recs):
    s = P.rfm_summary(*_columns(recs))
    plain = _plain_rfm(zip(*_columns(recs)), BASE + timedelta(days=max(d for _, d, _ in recs)))
    assert s.customer.tolist() == sorted(plain)
    for i, c in enumerate(s.customer):
        assert (s.frequency[i], s.recency[i], s.T[i]) == pytest.approx(plain[c][:3])
    c = cohort_retention(*_columns(recs)[:2])
    table = _plain_cohorts(zip(*_columns(recs)[:2]))
    assert [[None if math.isnan(v) else v for v in row] for row in c.retention.tolist()] == \
        [row for _, row in table.values()]
    w = cohort_retention(*_columns(recs)[:2], months=3)
    plain = _plain_window(list(zip(*_columns(recs)[:2])), 3)
    assert w.customers.tolist() == [n for n, _ in plain]
    np.testing.assert_array_equal(w.retention, np.array([row for _, row in plain]))


params = st.builds(BgNbd, st.floats(0.01, 20), st.floats(0.01, 200), st.floats(0.01, 20),
                   st.floats(0.01, 20), st.just(math.nan))


@settings(max_examples=200, deadline=None)
@given(bg=params, T=st.floats(0, 500), tx=st.floats(0, 1), x=st.integers(1, 60))
def test_p_alive_is_one_without_repeat_purchases_and_a_probability_otherwise(bg, T, tx, x):
    assert P.bgnbd_p_alive(bg, 0, 0, T) == 1.0
    p = P.bgnbd_p_alive(bg, x, tx * T, T)
    assert 0.0 <= p <= 1.0
    if tx == 1.0:  # bought on the as-of date: alive for sure
        assert p == pytest.approx(1 / (1 + bg.a / (bg.b + x - 1)))


@settings(max_examples=100, deadline=None)
@given(bg=params, T=st.floats(0.5, 200), tx=st.floats(0, 1), x=st.integers(0, 40),
       t=st.floats(0.1, 100))
def test_expected_purchases_grow_with_the_horizon(bg, T, tx, x, t):
    tx = tx * T if x else 0.0
    e1 = P.bgnbd_expected_purchases(bg, t, x, tx, T)
    e2 = P.bgnbd_expected_purchases(bg, 2 * t, x, tx, T)
    assert 0.0 <= e1 <= e2 * (1 + 1e-9) + 1e-12


# --- degenerate data ------------------------------------------------------------------------

@pytest.mark.parametrize("ids, days, amounts, match", [
    ([], [], [], "no customer"),
    ([None, ""], ["2024-01-01", "2024-01-02"], [1, 2], "no customer"),
    (["a", "a"], ["2024-01-01", "2024-01-09"], [1, 2], "at least 2 customers"),
    (["a", "b", "c"], ["2024-01-01", "2024-01-09", "2024-01-20"], [1, 2, 3],
     "nobody made a repeat purchase"),
])
def test_degenerate_data_raise_fit_error(ids, days, amounts, match):
    with pytest.raises(FitError, match=match):
        predicted_clv(ids, days, amounts)
    assert issubclass(FitError, ValueError)


def test_a_zero_mean_spend_raises(calibration):
    s, _, _ = calibration
    spend = s.spend.copy()
    spend[np.flatnonzero(s.frequency > 0)[5]] = 0.0      # free repeat orders only
    with pytest.raises(FitError, match="mean repeat spend is 0"):
        P.gamma_gamma_fit(s.frequency, spend)
    with pytest.raises(ValueError, match="must be given"):
        P.gamma_gamma_fit([1, 2], [3.0, float("nan")])


def test_a_fit_that_does_not_converge_raises():
    # everybody buys every week up to the as-of date: no drop-out is ever seen, the drop-out
    # probability runs off to 0 and the purchase rates are all alike (r and alpha to infinity)
    ids = [c for c in range(30) for _ in range(20)]
    days = [np.datetime64("2024-01-01") + c + 7 * w for c in range(30) for w in range(20)]
    with pytest.raises(FitError, match="did not converge"):
        P.bgnbd_fit(*P.rfm_summary(ids, days)[1:4])
    # two customers cannot identify four parameters
    with pytest.raises(FitError, match="did not converge"):
        P.bgnbd_fit([1, 0], [3, 0], [5, 5])
    with pytest.raises(FitError, match="did not converge"):
        P.gamma_gamma_fit([1, 2], [10.0, 12.0])


def test_q_at_most_one_has_no_finite_mean_spend():
    with pytest.raises(FitError, match="not finite"):
        P.gamma_gamma_expected_spend(GammaGamma(2.0, 0.9, 5.0, math.nan), 0, math.nan)


@pytest.mark.parametrize("kwargs, match", [
    ({"order_amounts": [1, -2, 3]}, "'order_amounts' must be an amount of money >= 0"),
    ({"months": 0}, "'months' must be a whole number of months"),
    ({"months": 2.5}, "'months' must be a whole number of months"),
    ({"months": 121}, "'months' must be a whole number of months"),
    ({"margin": 1.5}, "'margin' must be a fraction"),
    ({"discount": -0.1}, "'discount' must be >= 0"),
    ({"unit": "months"}, "'unit' must be 'weeks' or 'days'"),
    ({"order_dates": [45000, 45001, 45002]}, "'order_dates' must be dates"),
    ({"order_dates": ["2024-01-01", "soon", "2024-01-03"]}, "'order_dates' must be dates"),
    ({"customer_ids": ["a", "b"]}, "same length"),
])
def test_malformed_input_raises_naming_the_argument(kwargs, match):
    args = {"customer_ids": ["a", "b", "a"], "order_dates": ["2024-01-01", "2024-01-02",
                                                            "2024-01-03"],
            "order_amounts": [1, 2, 3]}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        customer_clv(**args)


# --- footprint ----------------------------------------------------------------------------------

@pytest.mark.host_only
def test_import_xl_kpis_does_not_import_scipy():
    code = "import sys, xl_kpis, xl_kpis.metrics.predictive; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "False"
    # and the check can fail: a function that fits does import it
    code = ("import sys, xl_kpis.metrics.predictive as P; P.bgnbd_p_alive(P.BgNbd(1, 1, 1, 1, 0),"
            " 0, 0, 1); P.gamma_gamma_fit([1, 2, 3], [1.0, 2.0, 4.0]) if False else None;"
            " P.bgnbd_expected_purchases(P.BgNbd(1, 1, 2, 1, 0), 1, 0, 0, 1);"
            " print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "True"


# --- the shared parameter text ----------------------------------------------------------------

def test_shared_parameter_text_is_filled_in_every_docstring():
    """The order-line KPIs write their common arguments once (``{{name, ...}}`` lines): every
    placeholder is filled, with the same text in each function, indented as numpydoc wants
    (so the Excel argument help, read from the docstring, has it)."""
    import inspect

    from xl_kpis.functions import parameter_docs

    for name, fn in vars(P).items():
        if callable(fn) and getattr(fn, "__module__", None) == P.__name__ and \
                not name.startswith("_"):
            assert "{{" not in fn.__doc__, name
    shared = ["customer_ids", "order_dates", "order_amounts", "months", "margin", "discount",
              "as_of"]
    docs = parameter_docs(customer_clv)
    assert all(parameter_docs(predicted_clv)[n] == docs[n] for n in shared)
    assert docs["order_dates"] == ("The date of each line; lines of a customer on one day are "
                                   "one purchase.")
    assert "    as_of : date-like, optional\n        The as-of date:" in predicted_clv.__doc__
    assert "as_of : date-like, optional\n    The as-of date:" in inspect.getdoc(clv_parameters)


def test_the_same_inputs_give_the_bgnbd_fit_made_before(monkeypatch):
    """A book's KPIs fit the same lines for several functions: equal inputs are not fitted
    again (the fit depends on them alone), anything else is."""
    ids, days, _ = P.simulate_orders(800, BgNbd(0.5, 6.0, 0.7, 2.5, 0.0), seed=11)
    s = P.rfm_summary(ids, days)
    x, tx, age = (np.array(v, dtype=float) for v in (s.frequency, s.recency, s.T))
    monkeypatch.setattr(P, "_BGNBD_FITS", [])
    made = []
    maximise = P._maximise
    monkeypatch.setattr(P, "_maximise", lambda *a: made.append(a[1]) or maximise(*a))
    fit = P.bgnbd_fit(x, tx, age)
    assert P.bgnbd_fit(x.copy(), list(tx), age.copy()) is fit and made == ["BG/NBD"]
    assert P.bgnbd_fit(x, tx, age, unit="days").unit == "days" and len(made) == 2
    tx[np.argmax(x)] -= 1.0                     # the caller's array changed after the fit
    assert P.bgnbd_fit(x, tx, age) != fit and len(made) == 3
    tx[np.argmax(x)] += 1.0
    assert P.bgnbd_fit(x, tx, age) is fit and len(made) == 3
    for k in range(1, 5):                       # four other fits push it out of the last four
        P.bgnbd_fit(x, tx, age + k)
    monkeypatch.setattr(P, "_BGNBD_FITS", [])   # and a fit made afresh is the same
    assert P.bgnbd_fit(x, tx, age) == fit and len(made) == 8



def test_a_kept_fit_error_holds_no_frame():
    # the error kept for the caller must not hold the fit's frames: through them (and the
    # callers') every column of the evaluation would stay in memory until the cyclic
    # collector ran.  A weak reference to an object of the caller's frame tells.
    import gc
    import weakref

    class Column:
        pass

    def caller(kept_out: list) -> weakref.ref:
        column = Column()
        with P.fits() as fitted:
            with pytest.raises(FitError):
                predicted_clv(["a"], [date(2026, 1, 1)], [10.0])
        kept_out.extend(fitted)
        return weakref.ref(column)

    enabled = gc.isenabled()
    gc.disable()
    try:
        kept: list = []
        ref = caller(kept)
        assert ref() is None
    finally:
        if enabled:
            gc.enable()
    assert [type(k) for k in kept] == [FitError] and "needs at least 2 customers" in str(kept[0])
    assert kept[0].__traceback__ is None
