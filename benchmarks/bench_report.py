"""``xl-kpis report --orders`` straight from a large TikTok Shop order export.

    python benchmarks/bench_report.py [--lines 1000000] [--rounds 3]

Writes a synthetic export (all the real headers, the description row, US
dates, stray tabs, multi-SKU orders) with :mod:`xl_kpis.imports.synth`, then
runs the CLI in a child process, without and with ``--clv`` in turn (each
round runs both, so a busy machine slows both alike), and measures its wall
time, its CPU time and its peak memory.  The package is byte-compiled first, as an
installed one is (:func:`exports.compile_package`).

The peak is the child's own high-water mark (``VmHWM`` of ``/proc/self/status``,
printed by the child as it exits): the ``ru_maxrss`` the parent gets for a
child counts the parent's memory too, since Linux carries the peak of the
forked copy across ``exec``.  The CPU time is the child's (user + system,
``RUSAGE_CHILDREN``), which a shared machine disturbs less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exports import compile_package
from xl_kpis.imports.synth import write_order_export

TARGET_S, TARGET_MIB = 3.0, 1024

#: The CLI, printing its own peak resident memory to stderr as it exits.
_CHILD = """
import atexit, sys
atexit.register(lambda: sys.stderr.write(
    next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))))
sys.argv[0] = "xl-kpis"
from xl_kpis.cli import main
main()
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    compile_package()
    with tempfile.TemporaryDirectory() as d:
        export = Path(d) / "orders.csv"
        write_order_export(export, a.lines, seed=1)
        size = export.stat().st_size / 2**20
        load = os.getloadavg()[0]
        runs: dict[str, list[tuple[float, float, float]]] = {"": [], "--clv": []}
        for _ in range(a.rounds):
            for extra in runs:
                runs[extra].append(_run(export, [extra] if extra else []))
    (best, cpu, peak), (best_clv, cpu_clv, peak_clv) = (
        (min(w for w, _, _ in r), min(c for _, c, _ in r), max(m for _, _, m in r))
        for r in runs.values())
    print(f"Export: {a.lines:,} lines, {size:,.0f} MiB; best of {a.rounds} rounds, load"
          f" {load:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print("| measure | value | target | result |\n|---|---|---|---|")
    print(f"| report --orders, wall time (process start included) | {best:.2f} s | "
          f"<= {TARGET_S:.0f} s | {'ok' if best <= TARGET_S else 'MISSED'} |")
    print(f"| CPU time | {cpu:.2f} s | | |")
    print(f"| peak memory (VmHWM) | {peak:,.0f} MiB | <= {TARGET_MIB:,} MiB | "
          f"{'ok' if peak <= TARGET_MIB else 'MISSED'} |")
    print(f"| with `--clv` (two more columns read, BG/NBD + Gamma-Gamma fitted once), wall time |"
          f" {best_clv:.2f} s | | |")
    print(f"| with `--clv`, CPU time | {cpu_clv:.2f} s | | |")
    print(f"| with `--clv`, peak memory | {peak_clv:,.0f} MiB | <= {TARGET_MIB:,} MiB | "
          f"{'ok' if peak_clv <= TARGET_MIB else 'MISSED'} |")


def _run(export: Path, extra: list[str]) -> tuple[float, float, float]:
    """One run of the CLI: wall time and CPU time (seconds), peak memory (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _CHILD, "report", "--orders", str(export),
                          "--json", *extra], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, int(re.search(r"VmHWM:\s*(\d+) kB", run.stderr)[1]) / 1024


if __name__ == "__main__":
    main()
