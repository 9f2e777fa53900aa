"""``xl-kpis report --orders`` against hand-written polars and pyarrow queries of the same export.

    python benchmarks/bench_report_polars.py [--lines 1000000] [--rounds 3] [--export FILE]

Writes the synthetic export of ``bench_report.py`` (:mod:`xl_kpis.imports.synth`: BOM, CRLF,
the description row, stray tabs, quoted line breaks, 18-19 digit ids) unless ``--export``
names one, then runs, round after round and in an order that alternates, three commands
that each print the shop's order KPIs (orders, buyers, revenue, repeat purchase rate,
delivered orders: the report's KPIs that read the export, the others follow from them) from
it, each in its own Python process (process start and imports included):

* ``xl-kpis report --orders FILE --json``;
* a lazy polars query (``scan_csv`` of the four columns as text, trimmed, cancelled lines
  and lines without an order id left out, one row per order, its first line's amount);
* the same with ``pyarrow.csv`` and ``pyarrow.compute``.

Each is measured in CPU time (user + system of the process and its threads, from
``os.wait4``: what a shared machine charges, while its wall time depends on who else runs),
wall time and peak memory (the child's own ``VmHWM``).  The ratio to polars is the median
of the rounds' ratios.  The three must print the same KPIs, or the benchmark fails.

xl-kpis's modules are byte-compiled first, as pip compiles an installed package's (and
the peers'): :func:`exports.compile_package`.

polars is not a dependency of xl-kpis (pyarrow is: it reads the exports): ``pip install -e .[bench]``.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exports import compile_package, order_export, parser
from tables import markdown, verdict

TARGET_RATIO, TARGET_MIB = 1.0, 1024

#: Appended to every child: its peak resident memory on stderr as it exits.
_PEAK = """
import atexit, sys
atexit.register(lambda: sys.stderr.write(
    next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))))
"""

_XL_KPIS = _PEAK + """
sys.argv = ["xl-kpis", "report", "--orders", sys.argv[1], "--json"]
from xl_kpis.cli import main
main()
"""

# The rules of xl_kpis.report, written out by hand: an order is a distinct non-blank Order ID
# on a line whose status is not Canceled/Cancelled (any case); its amount is its first line's
# Order Amount; buyers are the distinct non-blank Buyer Usernames of the orders; the repeat
# purchase rate is the share of buyers with 2 or more orders; an order is delivered when one of
# its lines has the status Delivered or Completed (any case; the export read has no delivered
# time).  Cells are trimmed of the whitespace TikTok leaves (a stray tab after ids) and read
# as blank when nothing is left.
_POLARS = _PEAK + r"""
import json
import polars as pl

STRIP = " \t\r\n\u00a0\ufeff"

def cell(name):
    s = pl.col(name).str.strip_chars(STRIP)
    return pl.when(s == "").then(None).otherwise(s)

lines = (pl.scan_csv(sys.argv[1], infer_schema=False, skip_rows_after_header=1)
         .select(oid=cell("Order ID"), status=cell("Order Status").str.to_lowercase(),
                 buyer=cell("Buyer Username"), amount=cell("Order Amount").cast(pl.Float64))
         .filter(pl.col("oid").is_not_null()
                 & ~pl.col("status").fill_null("").is_in(["canceled", "cancelled"])))
orders = lines.group_by("oid").agg(pl.col("amount").first(), pl.col("buyer").first(),
                                    pl.col("status").is_in(["delivered", "completed"]).any())
buyer = pl.col("buyer").drop_nulls()
r = orders.select(orders=pl.len(), revenue=pl.col("amount").sum(), buyers=buyer.n_unique(),
                  repeat=(buyer.value_counts().struct.field("count") >= 2).sum(),
                  delivered=pl.col("status").sum()).collect().row(0, named=True)
print(json.dumps({"orders": r["orders"], "buyers": r["buyers"], "revenue": round(r["revenue"], 2),
                  "repeat_purchase_rate": r["repeat"] / r["buyers"], "delivered": r["delivered"]}))
"""

_PYARROW = _PEAK + r"""
import json
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

STRIP = " \t\r\n\u00a0\ufeff"
names = ["Order ID", "Order Status", "Buyer Username", "Order Amount"]
t = pv.read_csv(sys.argv[1],
                read_options=pv.ReadOptions(skip_rows_after_names=1),
                parse_options=pv.ParseOptions(newlines_in_values=True),
                convert_options=pv.ConvertOptions(include_columns=names,
                                                  column_types={n: pa.string() for n in names}))
oid, status, buyer, amount = (pc.utf8_trim(t[n], STRIP) for n in names)
out = pa.array(["canceled", "cancelled"])
keep = pc.and_(pc.not_equal(oid, ""), pc.invert(pc.is_in(pc.utf8_lower(status), value_set=out)))
amount = pc.cast(pc.if_else(pc.equal(amount, ""), None, amount), pa.float64())
done = pc.is_in(pc.utf8_lower(status), value_set=pa.array(["delivered", "completed"]))
lines = pa.table({"oid": oid, "buyer": buyer, "amount": amount, "done": done}).filter(keep)
orders = lines.group_by("oid", use_threads=False).aggregate(   # first: in line order
    [("amount", "first"), ("buyer", "first"), ("done", "any")])
buyers = orders.filter(pc.not_equal(orders["buyer_first"], "")).group_by("buyer_first").aggregate(
    [([], "count_all")])
n_buyers = buyers.num_rows
print(json.dumps({"orders": orders.num_rows, "buyers": n_buyers,
                  "revenue": round(pc.sum(orders["amount_first"]).as_py(), 2),
                  "repeat_purchase_rate":
                      pc.sum(pc.greater_equal(buyers["count_all"], 2)).as_py() / n_buyers,
                  "delivered": pc.sum(orders["done_any"]).as_py()}))
"""

CONTENDERS = {"xl-kpis report --orders": _XL_KPIS, "polars (lazy query)": _POLARS,
              "pyarrow.csv + compute": _PYARROW}
KEYS = ("orders", "buyers", "revenue", "repeat_purchase_rate", "delivered")
#: The report's JSON names some of them as the KPIs sheet does.
ALIASES = {"repeat_purchase_rate": "rpr"}


def run_child(script: str, export: Path) -> dict:
    """Run ``script`` on ``export`` in a child Python: its KPIs, CPU and wall seconds, peak MiB."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", script, str(export)], stdout=out,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode}):\n{stderr}")
    kpis = json.loads(stdout)
    return {"kpis": {k: kpis[k] if k in kpis else kpis[ALIASES[k]] for k in KEYS}, "cpu": usage.ru_utime + usage.ru_stime,
            "wall": wall, "peak": int(re.search(r"VmHWM:\s*(\d+) kB", stderr)[1]) / 1024}


def same(a: dict, b: dict) -> bool:
    """Whether two sets of KPIs agree (counts exactly, money to the cent, rates to 1e-12)."""
    return (a["orders"] == b["orders"] and a["buyers"] == b["buyers"]
            and round(a["revenue"], 2) == round(b["revenue"], 2)
            and abs(a["repeat_purchase_rate"] - b["repeat_purchase_rate"]) <= 1e-12
            and a["delivered"] == b["delivered"])


def measure(export: Path, rounds: int) -> dict[str, list[dict]]:
    """``rounds`` rounds of every contender, the order rotating from round to round."""
    runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    names = list(CONTENDERS)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            runs[name].append(run_child(CONTENDERS[name], export))
    reference = runs[names[0]][0]["kpis"]
    for name, rs in runs.items():
        for one in rs:
            if not same(one["kpis"], reference):
                raise SystemExit(f"{name} disagrees: {one['kpis']} vs xl-kpis {reference}")
    return runs


def table(runs: dict[str, list[dict]]) -> str:
    base = runs["polars (lazy query)"]
    header = ["command", "CPU (median)", "wall (median)", "peak memory (max)",
              f"CPU / polars (median of rounds; target <= {TARGET_RATIO:.1f})", "wall / polars"]
    lines = []
    for name, rs in runs.items():
        cpu = statistics.median(r["cpu"] / b["cpu"] for r, b in zip(rs, base))
        wall = statistics.median(r["wall"] / b["wall"] for r, b in zip(rs, base))
        peak = max(r["peak"] for r in rs)
        lines.append([name, f"{statistics.median(r['cpu'] for r in rs):.2f} s",
                      f"{statistics.median(r['wall'] for r in rs):.2f} s",
                      f"{peak:,.0f} MiB{'' if peak <= TARGET_MIB else ' (over 1 GiB)'}",
                      verdict(cpu, TARGET_RATIO) if name.startswith("xl-kpis") else
                      f"{cpu:.2f}x", f"{wall:.2f}x"])
    return markdown(header, lines, right=range(1, 6))


def main(argv=None) -> None:
    a = parser(__doc__).parse_args(argv)
    for module in ("polars", "pyarrow"):
        try:
            __import__(module)
        except ImportError:
            raise SystemExit(f"{module} is not installed: pip install -e .[bench]") from None
    compile_package()
    with order_export(a.export, a.lines) as (export, _):
        size = export.stat().st_size / 2**20
        runs = measure(export, a.rounds)
    kpis = runs["xl-kpis report --orders"][0]["kpis"]
    print(f"Export: {size:,.0f} MiB; all three give {kpis['orders']:,.0f} orders, "
          f"{kpis['buyers']:,.0f} buyers, revenue {kpis['revenue']:,.2f}, repeat purchase rate "
          f"{kpis['repeat_purchase_rate']:.4%}, {kpis['delivered']:,.0f} delivered orders; "
          f"{a.rounds} rounds\n")
    print(table(runs))


if __name__ == "__main__":
    main()
