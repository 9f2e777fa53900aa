"""Sales KPIs: known values (source in each comment) and invariants."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from xl_kpis import aov, breakeven_roas, cac, conversion_rate, cpa, cpc, cpm, roas, roi

money = st.floats(min_value=0, max_value=1e9, allow_nan=False)
positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False)


@pytest.mark.parametrize("fn, args, expected", [
    # conversions / base with base = clicks: 30 / 1,000
    (conversion_rate, (30, 1_000), 0.03),
    # AOV = revenue / orders; the CLV seed's first example has AOV $50
    (aov, (1_250.0, 25), 50.0),
    # ROAS = revenue / spend (TikTok Shop Ads reporting): $350 on $100 is 3.5x, the
    # low end of the "good" TikTok Shop band in docs/kpi-definitions.md §2
    (roas, (350, 100), 3.5),
    (cac, (500, 20), 25.0),                 # spend / new customers, hand computed
    (cpm, (50, 10_000), 5.0),               # 50 / 10,000 x 1000 (TikTok aid=10000166)
    (cpc, (50, 200), 0.25),                 # 50 / 200
    (cpa, (300, 12), 25.0),                 # 300 / 12
    (roi, (1_000, 200, 0.4), 1.0),          # (1000 x 0.4 - 200) / 200 (stackmatix)
    (roi, (400, 200, 0.25), -0.5),          # a loss: (100 - 200) / 200
    (breakeven_roas, (0.4,), 2.5),          # 1 / 0.4 (promarketer.ca)
    (breakeven_roas, (0.5, 0.2), 2.5),      # 1 / (0.5 x 0.8) (metrictoolbox.com)
    (breakeven_roas, (1.0,), 1.0),
])
def test_known_values(fn, args, expected):
    assert fn(*args) == pytest.approx(expected, rel=1e-12)


def test_cents_are_exact_for_typical_money():
    # $1,234.56 over 3 orders is $411.52 exactly
    assert aov(1234.56, 3) == pytest.approx(411.52, abs=1e-9)
    assert round(cpc(19.99, 7), 2) == 2.86


@pytest.mark.parametrize("fn, args", [
    (conversion_rate, (1, 0)), (aov, (10, 0)), (roas, (100, 0)), (roas, (0, 0)),
    (cac, (1, 0)), (cpm, (1, 0)), (cpc, (1, 0)), (cpa, (1, 0)), (roi, (1, 0, 0.5)),
    (breakeven_roas, (0.0,)), (breakeven_roas, (0.5, 1.0)),
])
def test_undefined_results_are_nan(fn, args):
    assert math.isnan(fn(*args))


@pytest.mark.parametrize("fn, args, arg", [
    (roas, (100, -1), "'spend'"), (cac, (-5, 1), "'spend'"), (roi, (1, 1, 1.2), "'margin'"),
    (breakeven_roas, (0.5, -0.1), "'refund_rate'"), (aov, (1, -2), "'orders'"),
])
def test_out_of_domain_raises_naming_the_argument(fn, args, arg):
    with pytest.raises(ValueError, match=arg):
        fn(*args)


@given(revenue=money, spend=positive, k=st.floats(min_value=0.01, max_value=100))
def test_roas_scales_with_revenue(revenue, spend, k):
    assert roas(revenue * k, spend) == pytest.approx(k * roas(revenue, spend), rel=1e-9)


@given(revenue=money, spend=positive, margin=st.floats(min_value=0, max_value=1))
def test_roi_is_positive_exactly_when_roas_beats_breakeven(revenue, spend, margin):
    r = roi(revenue, spend, margin)
    if margin > 0 and abs(roas(revenue, spend) - breakeven_roas(margin)) > 1e-6:
        assert (r > 0) == (roas(revenue, spend) > breakeven_roas(margin))


@given(st.lists(st.tuples(money, money), min_size=1, max_size=30))
def test_roas_array_call_equals_elementwise_calls(rows):
    rev, sp = (np.array(c) for c in zip(*rows))
    np.testing.assert_array_equal(roas(rev, sp), np.array([roas(r, s) for r, s in rows]))
