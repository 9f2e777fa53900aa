"""Brand KPIs: follower growth, share of voice, support load."""

import math

import pytest
from hypothesis import given, strategies as st

from xl_kpis import follower_growth_rate, share_of_voice, support_query_rate


@pytest.mark.parametrize("fn, args, expected", [
    (follower_growth_rate, (2_000, 2_100), 0.05),     # (end - start) / start (keyhole.co)
    (follower_growth_rate, (2_000, 1_900), -0.05),    # net unfollows
    (share_of_voice, (120, [80, 100]), 0.4),          # 120 / (120 + 80 + 100), two competitors
    (share_of_voice, (50, 50), 0.5),                  # one competitor
    (support_query_rate, (15, 500), 3.0),             # 15 per 500 orders = 3 per 100
    (support_query_rate, (15, 500, 1000), 30.0),      # per 1,000 orders
])
def test_known_values(fn, args, expected):
    assert fn(*args) == pytest.approx(expected, rel=1e-12)


def test_share_of_voice_periods_by_competitors():
    out = share_of_voice([10, 0], [[5, 5], [0, 0]])
    assert out[0] == 0.5 and math.isnan(out[1])


@pytest.mark.parametrize("fn, args", [
    (follower_growth_rate, (0, 10)), (share_of_voice, (0, 0)), (support_query_rate, (1, 0)),
])
def test_undefined_is_nan(fn, args):
    assert math.isnan(fn(*args))


@given(b=st.floats(0, 1e9), c=st.lists(st.floats(0, 1e9), min_size=1, max_size=5))
def test_share_of_voice_is_a_fraction(b, c):
    s = share_of_voice(b, c)
    assert math.isnan(s) or 0.0 <= s <= 1.0


@given(start=st.floats(1, 1e9), k=st.floats(0, 10))
def test_growth_of_a_scaled_audience(start, k):
    assert follower_growth_rate(start, start * k) == pytest.approx(k - 1, rel=1e-9, abs=1e-9)
