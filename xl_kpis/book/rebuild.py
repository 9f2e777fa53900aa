"""``xl-kpis build NEW --from BOOK``: a fresh template holding everything of a seller's book.

The new book gets, from ``BOOK``:

* every row of the four input tables, with every input column (imported or
  typed: content types, ratings, brand mentions …);
* the columns the seller added to a table (after the template's columns,
  with their values, and their formula when it is a calculated column);
* the settings (gross margin …) and the other input cells outside the tables
  (the Benchmarks limits, the CLV examples) where the template has them;
* the sheets the seller added, copied as they are (:mod:`xl_kpis.book.sheets`).

Every formula of the template is evaluated with those inputs before the book
is written, so its cached values, charts and settings agree from the start.
What ``BOOK`` holds in the template's own sheets beyond that (a formula typed
on the KPIs sheet, a chart added to the Dashboard) is not carried: it is
listed in :attr:`Rebuilt.not_carried`.  ``BOOK`` is only read.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from python_calamine import CalamineWorkbook

from ..xlsx import books
from ..xlsx.refs import a1, bounds
from . import files, scan
from . import schema as S
from .build import ExtraColumn, workbook_bytes
from .evaluate import Evaluation, evaluate_book
from .refresh import _calamine_errors, read_book
from .sheets import Copied, copy_sheets

__all__ = ["Rebuilt", "build_from", "extra_columns", "own_sheets"]


@dataclass
class Rebuilt:
    """What :func:`build_from` wrote."""

    evaluation: Evaluation
    rows: dict[str, int]
    extra_columns: dict[str, list[str]] = field(default_factory=dict)
    copied: Copied = field(default_factory=Copied)
    not_carried: list[str] = field(default_factory=list)


def own_sheets(path: str | os.PathLike) -> list[str]:
    """The sheets of a book that the template does not have, in book order."""
    with books.open_book(path) as z:
        names = list(books.sheet_parts(z))
    return [n for n in names if n not in S.SHEETS and n != S.CONFIG_SHEET]


def extra_columns(path: str | os.PathLike) -> dict[str, list[ExtraColumn]]:
    """The columns a seller added to the template's tables: ``table -> columns``."""
    import re

    # (the table sheets were checked by read_book, which build_from calls first)
    with _calamine_errors(path):
        wb = CalamineWorkbook.from_path(os.fspath(path), load_tables=True)
        tables = {t.name: wb.get_table_by_name(t.name) for t in S.TABLES
                  if t.name in wb.table_names}
        data_of = {name: (tab.columns, tab.to_python()) for name, tab in tables.items()}
    formulas: dict[tuple[str, str], str] = {}
    with books.open_book(path) as z:
        for name in z.namelist():
            if not name.startswith("xl/tables/") or not name.endswith(".xml"):
                continue
            root = books.parse_xml(z, name)
            table = root.get("displayName") or root.get("name") or ""
            for tc in root.iter(f"{{{books.NS['m']}}}tableColumn"):
                f = tc.find("m:calculatedColumnFormula", books.NS)
                if f is not None and f.text:
                    formulas[(table, tc.get("name", ""))] = f.text.lstrip("=")
    out: dict[str, list[ExtraColumn]] = {}
    for t in S.TABLES:
        if t.name not in data_of:
            continue
        headers, data = data_of[t.name]
        for i, header in enumerate(headers):
            if header in t.headers:
                continue
            values = [row[i] if i < len(row) else None for row in data]
            values = [None if v == "" else v for v in values]
            formula = formulas.get((t.name, header))
            if formula is not None:
                formula = re.sub(r"\[@\[?([^\]]+)\]?\]", rf"{t.name}[[#This Row],[\1]]", formula)
            out.setdefault(t.name, []).append(ExtraColumn(header, values, formula))
    return out


def _not_carried(path: Path, plan: S.Plan) -> list[str]:
    """Cells of ``path``'s template sheets that the template does not plan (a seller's own
    value or formula there): a fresh layout does not have them."""
    planned = {(c.sheet, a1(c.row, c.col + j, False)) for c in plan.cells
               for j in range(c.span + 1)}
    out = []
    with books.open_book(path) as z:
        parts = books.sheet_parts(z)
        for sheet in (S.START, S.KPIS_SHEET, S.CUSTOMERS_SHEET, S.BENCH_SHEET, S.DASH):
            if sheet not in parts:
                continue
            xml = z.read(parts[sheet])
            spilled = set()
            for rng in scan.array_ranges(xml):
                r0, c0, r1, c1 = bounds(rng)
                spilled |= {(sheet, a1(r, c)) for r in range(r0, r1 + 1)
                            for c in range(c0, c1 + 1)}
            formulas = {ref: f for ref, f, _, _ in scan.formula_cells(xml.decode("utf-8"))}
            for ref, full in scan.cell_contents(xml).items():
                if full and (sheet, ref) not in planned | spilled:
                    f = formulas.get(ref)
                    out.append(f"{sheet}!{ref}" + (f" (={f})" if f else ""))
    return out


def build_from(source: str | os.PathLike, out: str | os.PathLike) -> Rebuilt:
    """Write a fresh template to ``out`` with everything of ``source`` it can hold.

    Raises
    ------
    books.BookFormatError
        ``source`` is not an xl-kpis workbook, or cannot be read.
    """
    source, out = Path(source), Path(out)
    rows: dict[str, int] = {}
    tables, settings = read_book(source, rows=rows)
    extras = extra_columns(source)
    own = own_sheets(source)
    ev = evaluate_book(tables, settings)
    fresh = workbook_bytes(ev, out.suffix.lower() == ".xlsm", extras)   # in memory
    files.make_folder(out)
    with files.writing(out, reading=[source]), files.write_errors(out):
        copied = copy_sheets(source, io.BytesIO(fresh), own, out=out)
    return Rebuilt(ev, rows, {t: [x.header for x in cols] for t, cols in extras.items()},
                   copied, _not_carried(source, ev.plan))

