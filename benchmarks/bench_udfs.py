"""UDF and core overhead on 1,000,000 rows, and the cost of one scalar call.

    python benchmarks/bench_udfs.py [--rows N]

(a) the UDF on the 2-D lists xlwings hands over vs the bare round trip
    ``np.array(lists, float)`` -> the same numpy expression -> ``.tolist()``;
(b) the core function on float64 arrays vs the raw numpy expression, and beside them the
    least any check can cost: the raw expression after one bare reduction per bound of each
    argument (the bounds read from the KPI's declaration; nothing else);
(c) one scalar UDF call.
Every time is CPU time (``time.process_time``: on a shared machine the wall time depends on
who else runs).  (a) and (c) are the best of several runs (``timeit``).  (b) is interleaved:
each round times the raw expression and the core one after the other (several calls
each); the table gives the median times and the median of the per-round ratios, so a busy
moment weighs on both sides.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit

import numpy as np

import xl_kpis
from tables import markdown, verdict
from xl_kpis import udfs

TARGET_UDF, TARGET_CORE, TARGET_SCALAR_US = 2.0, 1.5, 20.0


def _safe_div(num, den):
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


# the raw numpy expression of each KPI, written out by hand for the comparison
RAW = {
    "ROAS": lambda r, s: _safe_div(r, s),
    "CTR": lambda c, i: _safe_div(c, i),
    "CLV": lambda a, r, t: a * r * t,
}
CORE = {"ROAS": xl_kpis.roas, "CTR": xl_kpis.ctr, "CLV": xl_kpis.clv}


def _columns(rows: int, seed: int = 7) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    spend = rng.uniform(5, 500, rows).round(2)
    revenue = (spend * rng.uniform(0.5, 5, rows)).round(2)
    impressions = rng.integers(1_000, 100_000, rows).astype(float)
    clicks = np.floor(impressions * rng.uniform(0.002, 0.03, rows))
    aov = rng.uniform(10, 120, rows).round(2)
    repeat = rng.integers(1, 12, rows).astype(float)
    retention = rng.integers(1, 4, rows).astype(float)
    return {"ROAS": [revenue, spend], "CTR": [clicks, impressions],
            "CLV": [aov, repeat, retention]}


def _best(fn, repeat: int) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeat, timer=time.process_time))


def _cpu(fn, number: int) -> float:
    start = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - start) / number


def _floor(name: str, raw):
    """The raw expression after one bare reduction per bound of each argument: a lower
    bound as the int64 minimum of the values' bits (the cheapest reduction numpy has
    here), an upper bound as the maximum, both without a branch on the answer."""
    bounds = [(d.lo is not None, d.hi is not None) for _, d, _ in CORE[name].__kpi__.params]

    def floor(*cols):
        for (lo, hi), c in zip(bounds, cols):
            if lo:
                c.view(np.int64).min()
            if hi:
                c.max()
        return raw(*cols)
    return floor


def _interleaved(raw, core, floor, rounds: int, number: int) -> dict:
    """Median CPU seconds of each and the medians of the per-round ratios core / raw and
    floor / raw."""
    t = {"raw": [], "core": [], "floor": []}
    for _ in range(rounds):
        t["raw"].append(_cpu(raw, number))
        t["core"].append(_cpu(core, number))
        t["floor"].append(_cpu(floor, number))
    med = {k: statistics.median(v) for k, v in t.items()}
    med["ratio"] = statistics.median(c / r for c, r in zip(t["core"], t["raw"]))
    med["floor_ratio"] = statistics.median(f / r for f, r in zip(t["floor"], t["raw"]))
    return med


def run(rows: int = 1_000_000, repeat: int = 5, rounds: int = 25) -> list[dict]:
    results = []
    for name, cols in _columns(rows).items():
        lists = [c.reshape(-1, 1).tolist() for c in cols]  # what xlwings passes (ndim=2)
        udf, raw, core = getattr(udfs, name), RAW[name], CORE[name]
        assert udf(*lists) == raw(*(np.array(x, float) for x in lists)).tolist()
        t_udf = _best(lambda: udf(*lists), repeat)
        t_trip = _best(lambda: raw(*(np.array(x, dtype=float) for x in lists)).tolist(), repeat)
        number = max(1, 10_000_000 // rows)
        floor = _floor(name, raw)
        cr = _interleaved(lambda: raw(*cols), lambda: core(*cols), lambda: floor(*cols),
                          rounds, number)
        scalar_args = [float(c[0]) for c in cols]
        n = 20_000
        t_scalar = min(timeit.repeat(lambda: udf(*scalar_args), number=n, repeat=3,
                                     timer=time.process_time)) / n
        results.append(dict(kpi=name, udf=t_udf, trip=t_trip, core=cr["core"], raw=cr["raw"],
                            ratio=cr["ratio"], floor_ratio=cr["floor_ratio"],
                            scalar_us=t_scalar * 1e6))
    return results


def table(results: list[dict], rows: int) -> str:
    header = [f"{rows:,} rows", "UDF on lists", "np round trip", f"ratio (<= {TARGET_UDF})",
              "core (CPU)", "raw numpy (CPU)", f"ratio (<= {TARGET_CORE})",
              "raw + one bare pass per bound / raw", f"scalar UDF call (<= {TARGET_SCALAR_US:.0f} us)"]
    lines = []
    for r in results:
        c = r["scalar_us"]
        lines.append([r["kpi"], f"{r['udf'] * 1e3:.0f} ms", f"{r['trip'] * 1e3:.0f} ms",
                      verdict(r["udf"] / r["trip"], TARGET_UDF), f"{r['core'] * 1e3:.2f} ms",
                      f"{r['raw'] * 1e3:.2f} ms", verdict(r["ratio"], TARGET_CORE),
                      f"{r['floor_ratio']:.2f}x",
                      f"{c:.1f} us {'ok' if c <= TARGET_SCALAR_US else 'MISSED'}"])
    return markdown(header, lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=25, help="interleaved rounds of (b)")
    args = p.parse_args(argv)
    print(table(run(args.rows, rounds=args.rounds), args.rows))


if __name__ == "__main__":
    main()
