"""LibreOffice recalculating the scaled demo book with the xl-kpis extension vs natively.

    python benchmarks/bench_libreoffice.py [--orders 100000] [--rows 5000] [--repeat 3] [--check]

1. Build the demo template scaled to ``--orders`` order lines and ``--rows``
   campaign + ``--rows`` video rows (``bench_refresh.scaled_tables``) and
   refresh it (every cached value right).
2. LibreOffice headless with the extension installed (``xl-kpis libreoffice
   install`` into a throw-away profile), forced to recalculate everything on
   load, saves the book as .xlsx.
3. The same for the book with native formulas in place of the UDF table
   columns (``bench_refresh.native_book``: ``ROAS(a,b)`` -> ``IF(b=0,NA(),a/b)``
   ...) and no extension: what LibreOffice costs without our functions.  The
   KPIs sheet's whole-column calls stay as they are in the native book, where
   without the extension they are unknown names that cost nothing: the native
   time is a lower bound.
4. After a warm-up run of each, ``--repeat`` rounds alternate the two books
   (the machine's other work slows both alike); the ratio is the median of
   the rounds' ratios, in wall time and in CPU time of LibreOffice's
   processes.

``--check`` also compares every value LibreOffice wrote with the cached ones.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_refresh import native_book, scaled_tables  # noqa: E402
from xl_kpis.book import build_workbook, scan  # noqa: E402

TARGET = 2.0


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of LibreOffice's processes) of one conversion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=3600)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_both(book: Path, native: Path, out: Path, repeat: int = 3) -> dict[str, list]:
    """Interleaved ``soffice --convert-to xlsx`` of both books, recalculation on load forced.

    One warm-up run each, then ``repeat`` rounds of (book with the extension,
    native book without it), so that a machine shared with other work slows
    both alike.  Returns the wall and CPU seconds of every round.
    """
    from engines import lo_profile, require_tool

    require_tool("soffice")
    profiles = {"ext": lo_profile(recalc=True, extension=True),
                "nat": lo_profile(recalc=True, extension=False)}
    src = {"ext": book, "nat": native}

    def cmd(key: str) -> list[str]:
        return ["soffice", f"-env:UserInstallation={profiles[key].as_uri()}", "--headless",
                "--norestore", "--convert-to", "xlsx", "--outdir", str(out / key), str(src[key])]

    rounds: dict[str, list] = {"ext": [], "nat": []}
    try:
        for key in rounds:                                   # warm-up
            _run(cmd(key))
        for _ in range(repeat):
            for key in rounds:
                rounds[key].append(_run(cmd(key)))
    finally:
        for prof in profiles.values():
            shutil.rmtree(prof, ignore_errors=True)
    return rounds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--rows", type=int, default=5_000)
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds after a warm-up")
    p.add_argument("--check", action="store_true", help="compare every value LibreOffice wrote")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        book = tmp / "book.xlsx"
        build_workbook(book, tables=scaled_tables(a.orders, a.rows))
        n_formulas = sum(len(c) for c in scan.read_formulas(book).values())
        native = tmp / "native.xlsx"
        n_native = native_book(book, native)
        rounds = time_both(book, native, tmp, repeat=a.repeat)
        bad = None
        if a.check:
            from engines import cell_values, formula_cells, mismatches

            cached, lo = cell_values(book), cell_values(tmp / "ext" / book.name)
            bad = mismatches({c: (cached.get(c), lo.get(c)) for c in formula_cells(book)})
    print(f"Book: {a.orders:,} order lines, {a.rows:,} campaigns + {a.rows:,} videos, "
          f"{n_formulas:,} formula cells ({n_native:,} UDF table cells made native)\n")
    ext, nat = rounds["ext"], rounds["nat"]
    wall = statistics.median(e[0] / n[0] for e, n in zip(ext, nat))
    cpu = statistics.median(e[1] / n[1] for e, n in zip(ext, nat))
    print(f"| LibreOffice headless, full recalculation on load + save "
          f"(median of {len(ext)} interleaved rounds) | wall s | CPU s |\n|---|---|---|")
    print(f"| native formulas in place of the UDF columns, no extension "
          f"| {statistics.median(n[0] for n in nat):.1f} | {statistics.median(n[1] for n in nat):.1f} |")
    print(f"| the book as built, xl-kpis extension "
          f"| {statistics.median(e[0] for e in ext):.1f} | {statistics.median(e[1] for e in ext):.1f} |")
    print(f"| ratio, median of the rounds' ratios (target <= {TARGET:.0f}x) "
          f"| {wall:.2f}x | {cpu:.2f}x {'ok' if cpu <= TARGET else 'MISSED'} |")
    if bad is not None:
        print(f"\nvalues LibreOffice wrote that differ from the cached ones: {len(bad)}")


if __name__ == "__main__":
    main()
