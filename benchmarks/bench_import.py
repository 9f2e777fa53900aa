"""``xl-kpis import orders`` of a big synthetic export into the empty template, by phase.

    python benchmarks/bench_import.py [--lines N] [--seed S] [--keep DIR]

Writes the template (``build_workbook``) and a synthetic Seller Center order
export (:func:`xl_kpis.imports.synth.write_order_export`), then runs
:func:`xl_kpis.book.importer.import_export` once, timing each phase from its
progress messages: parsing the export, reading the book and deduplicating,
appending the rows (XML), and the refresh.  Prints a markdown table of each
phase's wall time and CPU time (user + system of the whole process, every
thread: on a machine shared with other work the CPU time varies less than the
wall time), and the load average before and after.
Then imports the same export again (nothing to add: the book is not written).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from xl_kpis.book.build import build_workbook
from xl_kpis.book.importer import import_export
from xl_kpis.imports.synth import write_order_export

#: Seconds: the whole import of 100,000 lines on a 2-core machine, and the share
#: budgeted to parse + dedup + append (the refresh gets the rest).
TARGET_TOTAL, TARGET_IMPORT = 10.0, 5.0

# progress message (prefix) -> phase it starts
PHASES = (("reading the export", "parse the export"),
          ("reading the book", "read the book + dedup"),
          ("appending", "append rows (XML)"),
          ("reading input tables", "refresh"))


def now() -> tuple[float, float]:
    """(wall clock, CPU time of the process: user + system of all its threads)."""
    return time.perf_counter(), time.process_time()


class Clock:
    """A progress callback recording when each message arrives (wall and CPU time)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, tuple[float, float]]] = []

    def __call__(self, message: str) -> None:
        self.marks.append((message, now()))

    def phases(self, end: tuple[float, float]) -> dict[str, tuple[float, float]]:
        """Phase -> (wall seconds, CPU seconds)."""
        out: dict[str, tuple[float, float]] = {}
        starts = [(self._phase(m), t) for m, t in self.marks if self._phase(m)]
        for (name, t0), (_, t1) in zip(starts, starts[1:] + [("", end)]):
            wall, cpu = out.get(name, (0.0, 0.0))
            out[name] = (wall + t1[0] - t0[0], cpu + t1[1] - t0[1])
        return out

    @staticmethod
    def _phase(message: str) -> str | None:
        return next((name for prefix, name in PHASES if message.startswith(prefix)), None)


def _since(t0: tuple[float, float]) -> tuple[float, float]:
    t1 = now()
    return t1[0] - t0[0], t1[1] - t0[1]


def run(lines: int, seed: int, work: Path) -> list[tuple[str, tuple[float, float], str]]:
    src, book = work / "orders.csv", work / "book.xlsx"
    t = now()
    write_order_export(src, lines, seed=seed)
    build_workbook(book)
    setup = _since(t)
    clock = Clock()
    t0 = now()
    report = import_export("orders", src, book, progress=clock)
    end = now()
    phases = clock.phases(end)
    ours = tuple(sum(v[i] for k, v in phases.items() if k != "refresh") for i in (0, 1))
    t = now()
    again = import_export("orders", src, book)
    second = _since(t)
    assert again.added == 0 and again.refresh is None
    rows = [("setup: write export + template (not timed)", setup, ""),
            *((name, phases.get(name, (0.0, 0.0)), "") for _, name in PHASES),
            ("parse + dedup + append", ours, f"≤ {TARGET_IMPORT:g}"),
            ("end to end (import_export)", (end[0] - t0[0], end[1] - t0[1]),
             f"≤ {TARGET_TOTAL:g}"),
            ("second import (nothing to add)", second, "")]
    print(f"{lines:,} export lines: {report.added:,} added, {report.skipped:,} skipped;"
          f" book {book.stat().st_size / 1e6:.1f} MB\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_import."))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    try:
        rows = run(args.lines, args.seed, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average (1 min): {load:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| phase | seconds | CPU seconds | target (100,000 lines) |")
    print("|---|---:|---:|---|")
    for name, (secs, cpu), target in rows:
        print(f"| {name} | {secs:.2f} | {cpu:.2f} | {target} |")


if __name__ == "__main__":
    main()
