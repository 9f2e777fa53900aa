"""Lifetime-value KPIs: the CLV seed's six worked examples, variants, invariants."""

import math

import pytest
from hypothesis import given, strategies as st

from xl_kpis import cac_payback, clv, discounted_clv, ltv_cac


# The CLV calculator page (seeds/003_*.txt), "3 realistic examples of great results" and
# "3 ... not so great results". repeat = purchases per retention period and retention =
# number of periods: the only reading under which all six hold (docs/kpi-definitions.md §1).
@pytest.mark.parametrize("aov, repeat, retention, expected, reading", [
    (50, 5, 1, 250, "5 purchases per year, 1 period of 1 year"),
    (20, 12, 1, 240, "12 purchases per 6 months, 1 period of 6 months"),
    (100, 3, 2, 600, "3 purchases per year, 2 periods of 1 year"),
    (30, 2, 1, 60, "2 purchases per year, 1 period of 1 year"),
    (10, 1, 1, 10, "1 purchase per 6 months, 1 period of 6 months"),
    (40, 1, 1, 40, "1 purchase per year, 1 period of 1 year"),
])
def test_clv_seed_examples(aov, repeat, retention, expected, reading):
    assert clv(aov, repeat, retention) == expected


def test_margin_clv():
    # margin CLV = revenue CLV x gross margin (docs/kpi-definitions.md §1 (b)): 250 x 40%
    assert clv(50, 5, 1, margin=0.4) == pytest.approx(100.0)


@pytest.mark.parametrize("m, r, d, expected", [
    # Gupta-Lehmann m r / (1 + d - r): 100 x 0.8 / 0.3
    (100, 0.8, 0.1, 266.6666666666667),
    # no retention, no value
    (100, 0.0, 0.1, 0.0),
    # r = 0.5, d = 0: 50 / 0.5
    (100, 0.5, 0.0, 100.0),
])
def test_discounted_clv_known_values(m, r, d, expected):
    assert discounted_clv(m, r, d) == pytest.approx(expected, rel=1e-12)


def test_discounted_clv_is_undefined_without_churn_or_discounting():
    assert math.isnan(discounted_clv(100, 1.0, 0.0))


@pytest.mark.parametrize("fn, args, expected", [
    (ltv_cac, (300, 100), 3.0),       # 3:1, the lower edge of "good" (pug.sh)
    (cac_payback, (60, 5), 12.0),     # 12 months, the edge of "good" (abracalc.com)
])
def test_ratios(fn, args, expected):
    assert fn(*args) == expected


@given(aov=st.floats(0, 1e4), repeat=st.floats(0, 100), n=st.integers(1, 20))
def test_clv_is_linear_in_retention_periods(aov, repeat, n):
    assert clv(aov, repeat, n) == pytest.approx(n * clv(aov, repeat, 1), rel=1e-9, abs=1e-9)


@given(m=st.floats(0, 1e4), r=st.floats(0, 0.99), d1=st.floats(0, 1), d2=st.floats(0, 1))
def test_discounted_clv_falls_as_discount_rate_rises(m, r, d1, d2):
    lo, hi = sorted((d1, d2))
    assert discounted_clv(m, r, hi) <= discounted_clv(m, r, lo) + 1e-9
