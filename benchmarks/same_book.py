"""Check that two checkouts of xl-kpis write the same book for the same imports.

    python benchmarks/same_book.py OTHER [--lines N] [--seed S] [--keep DIR]

``OTHER`` is another checkout of the repository (for example ``git worktree
add --detach /tmp/main main``).  Both checkouts run, each in its own Python
process with its own ``xl_kpis`` first on the path, the same steps on copies
of one empty template written by this checkout:

1. import a synthetic order export of ``--lines`` lines (seed ``--seed``);
2. import a second export (seed + 1, a quarter of the lines) into that book:
   the book already holds rows (the dedup and the refresh read them);
3. import the first export again with the status of every "Shipped" and
   "To ship" line moved on to "Delivered" (rows updated, none added);
4. refresh the book after its Start sheet's period length was set to another
   value (every formula cell of the refresh recomputed, nothing imported).

After each step the books are compared: the same zip members in the same
order, each member's uncompressed bytes, and the files' bytes.  Prints one
line per step and exits with status 1 when any differs (naming the members).
The speed of each side is printed too, as a by-product (not a benchmark: the
two run one after the other).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What each side runs for a step: ``kind src book`` imports, ``refresh book`` refreshes.
_STEP = r"""
import json, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
t = time.perf_counter()
if args[0] == "refresh":
    from xl_kpis.book.refresh import refresh
    refresh(Path(args[1]))
else:
    from xl_kpis.book.importer import import_export
    import_export(args[0], Path(args[1]), Path(args[2]))
print(json.dumps({"seconds": time.perf_counter() - t,
                  "module": __import__("xl_kpis").__file__}))
"""


def run_step(checkout: Path, args: list[str]) -> dict:
    """Run one step with ``checkout``'s xl_kpis; its seconds and the module it ran."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-c", _STEP, json.dumps(args)], env=env,
                          cwd=checkout, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{checkout}: step {args[0]} failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(out["module"]).resolve().parent.parent != checkout.resolve():
        raise SystemExit(f"{checkout}: the step ran {out['module']}, not this checkout's code")
    return out


def differences(a: Path, b: Path) -> list[str]:
    """What differs between two books: members, their uncompressed bytes, the files."""
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        names_a, names_b = za.namelist(), zb.namelist()
        if names_a != names_b:
            return [f"members differ: {sorted(set(names_a) ^ set(names_b)) or 'order'}"]
        out = [n for n in names_a if za.read(n) != zb.read(n)]
    if not out and a.read_bytes() != b.read_bytes():
        out.append("(the zip files' bytes: same parts, other compression or metadata)")
    return out


def delivered_copy(src: Path, dst: Path) -> int:
    """``src`` with its Shipped / To ship lines Delivered; how many lines changed."""
    with open(src, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    status, sub = rows[0].index("Order Status"), rows[0].index("Order Substatus")
    n = 0
    for r in rows[2:]:
        if r[status] in ("Shipped", "To ship"):
            r[status], r[sub] = "Delivered", "Delivered"
            n += 1
    with open(dst, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    return n


def set_period(book: Path, months: float) -> None:
    """Set the Start sheet's period length (a cell edit, as a seller's)."""
    from xl_kpis.book.append import append_rows
    from xl_kpis.book.importer import _setting_cell

    sheet, ref = _setting_cell(book, "PeriodMonths")
    tmp = book.with_suffix(".edit.xlsx")
    with open(tmp, "wb") as f:
        append_rows(book, {}, out=f, cells={sheet: {ref: months}})
    tmp.replace(book)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", type=Path, help="the other checkout (its folder)")
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from xl_kpis.book.build import build_workbook
    from xl_kpis.imports.synth import write_order_export

    work = args.keep or Path(tempfile.mkdtemp(prefix="same_book."))
    work.mkdir(parents=True, exist_ok=True)
    sides = {"this": ROOT, "other": args.other.resolve()}
    failed = False
    try:
        first, second, moved = work / "first.csv", work / "second.csv", work / "moved.csv"
        write_order_export(first, args.lines, seed=args.seed)
        write_order_export(second, max(1, args.lines // 4), seed=args.seed + 1)
        n_moved = delivered_copy(first, moved)
        empty = work / "empty.xlsx"
        build_workbook(empty)
        books = {side: work / f"{side}.xlsx" for side in sides}
        for book in books.values():
            shutil.copy(empty, book)
        steps = [(f"import {args.lines:,} lines", ["orders", first]),
                 (f"import {max(1, args.lines // 4):,} more lines", ["orders", second]),
                 (f"import again, {n_moved:,} lines delivered", ["orders", moved]),
                 ("refresh after a settings edit", ["refresh"])]
        for title, step in steps:
            seconds = {}
            for side, checkout in sides.items():
                if step[0] == "refresh":
                    set_period(books[side], 2.5)
                    call = ["refresh", str(books[side])]
                else:
                    call = [step[0], str(step[1]), str(books[side])]
                seconds[side] = run_step(checkout, call)["seconds"]
            diff = differences(books["this"], books["other"])
            failed |= bool(diff)
            print(f"{title}: {'SAME' if not diff else 'DIFFERENT: ' + ', '.join(diff[:8])}"
                  f" (this {seconds['this']:.2f} s, other {seconds['other']:.2f} s)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
