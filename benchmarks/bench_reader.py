"""The order export reader against polars reading the same columns of the same export.

    python benchmarks/bench_reader.py [--lines N] [--rounds R] [--export FILE]

Each command runs in its own Python process (start and imports included), round after
round in a rotating order; CPU time is user + system of the process and its threads,
peak memory the process's own high-water mark (``VmHWM``):

* ``read_order_columns`` of the KPI columns (order id, status, buyer, order amount):
  pyarrow reads them as text, then the cells are trimmed, converted and checked, and the
  text columns factorised (what ``xl-kpis report --orders`` starts with);
* the same with every column the reader offers (``--clv`` reads created and subtotal too);
* polars reading the same four columns as text (``scan_csv`` with ``infer_schema=False``,
  projected) and nothing else: the floor of any reader built on it;
* ``parse_orders`` (the import: every column, as row dicts) on the first 100,000 lines.

polars is not a dependency of xl-kpis: ``pip install -e .[bench]``.
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from exports import order_export, parser
from tables import markdown

_REPORT = """
import json, sys, time, resource
{body}
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"n": n, "cpu": r.ru_utime + r.ru_stime, "hwm": hwm / 1024}}))
"""

COMMANDS = {
    "read_order_columns (KPI columns)":
        "from xl_kpis.imports import read_order_columns\n"
        "n = len(read_order_columns(sys.argv[1])['order_id'])",
    "read_order_columns (all 8 columns)":
        "from xl_kpis.imports import read_order_columns\n"
        "from xl_kpis.imports.orders import COLUMN_KEYS\n"
        "n = len(read_order_columns(sys.argv[1], COLUMN_KEYS)['order_id'])",
    "polars, the KPI columns as text":
        "import polars as pl\n"
        "n = pl.scan_csv(sys.argv[1], infer_schema=False).select(\n"
        "    ['Order ID', 'Order Status', 'Buyer Username', 'Order Amount']).collect().height",
    "parse_orders (the first 100,000 lines)":
        "from xl_kpis.imports import parse_orders\n"
        "n = len(parse_orders(sys.argv[2]).rows)",
}


def run(body: str, export: Path, small: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _REPORT.format(body=body), str(export), str(small)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    a = parser(__doc__).parse_args(argv)
    with order_export(a.export, a.lines) as (export, d):
        small = d / "small.csv"
        with open(export, "rb") as src, open(small, "wb") as dst:
            dst.writelines(itertools.islice(src, 100_002 + 2_000))   # lines, a few with quoted breaks
        runs: dict[str, list[dict]] = {k: [] for k in COMMANDS}
        names = list(COMMANDS)
        for r in range(a.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                t = time.perf_counter()
                got = run(COMMANDS[name], export, small)
                got["wall"] = time.perf_counter() - t
                runs[name].append(got)
        size = export.stat().st_size / 2**20
    print(f"Export: {size:,.0f} MiB; {a.rounds} rounds\n")
    print(markdown(["command", "rows", "CPU (median)", "wall (median)", "peak memory (max)"],
                   ([name, f"{got[0]['n']:,}", f"{statistics.median(g['cpu'] for g in got):.2f} s",
                     f"{statistics.median(g['wall'] for g in got):.2f} s",
                     f"{max(g['hwm'] for g in got):,.0f} MiB"] for name, got in runs.items()),
                   right=range(1, 5)))


if __name__ == "__main__":
    main()
