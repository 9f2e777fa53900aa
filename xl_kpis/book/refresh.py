"""Headless refresh: recompute the cached value of every template formula in a workbook.

The input tables and settings are read with python-calamine, every formula of
the template is evaluated by :func:`xl_kpis.book.evaluate_book` (the same
code the builder uses: one UDF call per computed column), and the new values
are patched into the file by :mod:`xl_kpis.book.patch`, which leaves every
other part of the file byte-identical and writes atomically.

A formula cell the template does not contain (a seller's own formula, or a
template formula the seller changed) keeps its cached value and is reported,
never blanked.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from python_calamine import CalamineError, CalamineWorkbook

from . import patch
from . import schema as S
from .build import Evaluation, evaluate_book
from .formulas import RenderContext, a1, render


class BookLocked(RuntimeError):
    """The workbook is open in Excel (its lock file exists)."""


@dataclass
class Kept:
    """A formula cell whose cached value was left as it was, and why."""

    sheet: str
    ref: str
    formula: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.sheet}!{self.ref}: {self.reason}" + (
            f" (={self.formula})" if self.formula else "")


@dataclass
class RefreshResult:
    """What a refresh did."""

    path: Path
    formulas: int = 0          # formula cells recomputed
    changed: int = 0           # cells whose cached value changed
    rows: dict[str, int] = field(default_factory=dict)
    kept: list[Kept] = field(default_factory=list)
    evaluation: Evaluation | None = None


_CELL_REF = re.compile(r"^'?(?P<sheet>[^'!]+)'?!\$?(?P<col>[A-Z]+)\$?(?P<row>\d+)$")


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _split(ref: str) -> tuple[int, int]:
    m = re.match(r"([A-Z]+)(\d+)$", ref)
    return int(m.group(2)) - 1, _col_index(m.group(1))


def _norm(formula: str) -> str:
    """A formula text compared loosely: no ``=``, future-function prefixes, spaces or case
    outside string literals."""
    f = formula.lstrip("=")
    parts = re.split(r'("(?:[^"]|"")*")', f)
    for i in range(0, len(parts), 2):
        p = re.sub(r"_xl(?:fn|udf|ws)\.", "", parts[i], flags=re.I)
        parts[i] = re.sub(r"\s+", "", p).upper()
    return "".join(parts)


def read_inputs(path: str | os.PathLike) -> tuple[dict, dict]:
    """The input tables (``table -> key -> values``) and the settings of a workbook."""
    try:
        wb = CalamineWorkbook.from_path(os.fspath(path), load_tables=True)
    except (CalamineError, OSError, ValueError) as e:
        raise patch.BookFormatError(f"{os.fspath(path)}: cannot read the workbook ({e})") from e
    missing = [t.name for t in S.TABLES if t.name not in wb.table_names]
    if missing:
        raise patch.BookFormatError(
            f"{os.fspath(path)}: not an xl-kpis workbook (no table {missing[0]!r})")
    tables: dict[str, dict[str, list]] = {}
    for t in S.TABLES:
        tab = wb.get_table_by_name(t.name)
        data = tab.to_python()
        inputs = {c.header: c.key for c in t.inputs}
        cols = {h: i for i, h in enumerate(tab.columns) if h in inputs}
        tables[t.name] = {inputs[h]: [row[i] for row in data] for h, i in cols.items()}
    with zipfile.ZipFile(path) as z:
        names = patch.defined_names(z)
    settings: dict[str, Any] = {}
    sheets: dict[str, list] = {}
    for s in S.SETTINGS:
        m = _CELL_REF.match(names.get(s.name, ""))
        if not m:
            continue
        grid = sheets.setdefault(m["sheet"], wb.get_sheet_by_name(m["sheet"]).to_python(
            skip_empty_area=False))
        r, c = int(m["row"]) - 1, _col_index(m["col"])
        v = grid[r][c] if r < len(grid) and c < len(grid[r]) else ""
        settings[s.name] = v if isinstance(v, (int, float)) and not isinstance(v, bool) \
            else s.default
    return tables, settings


def expected_formulas(ev: Evaluation) -> dict[tuple[str, str], str]:
    """``(sheet, ref) -> formula text`` of every formula cell the template puts in the book."""
    out: dict[tuple[str, str], str] = {}
    for t in S.TABLES:
        for c in t.computed:
            text, col = t.formula(c.header), t.col(c.header)
            for i in range(ev.rows[t.name]):
                out[(t.sheet, a1(t.first_data_row + i, col, False))] = text
    for c in ev.plan.formulas():
        out[(c.sheet, a1(c.row, c.col, False))] = render(
            c.expr, RenderContext(c.sheet, address=ev.plan.address))
    return out


def _array_cells(rng: str) -> list[str]:
    first, _, last = rng.partition(":")
    r0, c0 = _split(first)
    r1, c1 = _split(last or first)
    return [a1(r, c, False) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def refresh(path: str | os.PathLike, out: str | os.PathLike | None = None,
            progress: Callable[[str], None] | None = None) -> RefreshResult:
    """Recompute every template formula's cached value of ``path`` (written to ``out``).

    Raises
    ------
    BookLocked
        When Excel's lock file says the book is open.
    patch.BookFormatError
        When the file is not an xl-kpis workbook.
    """
    path = Path(path)
    out = Path(out) if out is not None else path
    say = progress or (lambda msg: None)
    for p in {path, out}:
        lock = patch.lock_file(p)
        if lock is not None:
            raise BookLocked(f"{p.name} is open in Excel ({lock.name} exists): close it first")
    say("reading input tables")
    tables, settings = read_inputs(path)
    say("evaluating formulas")
    ev = evaluate_book(tables, settings)
    values = ev.by_address()
    expected = expected_formulas(ev)
    say("patching cached values")
    in_file = patch.read_formulas(path)
    with zipfile.ZipFile(path) as z:
        parts = patch.sheet_parts(z)
        arrays = {s: patch.array_ranges(z.read(parts[s]).decode("utf-8")) for s in in_file}
    result = RefreshResult(path=out, rows=dict(ev.rows), evaluation=ev)
    new: dict[str, dict[str, Any]] = {}
    plain: dict[str, set[str]] = {}
    for sheet, cells in in_file.items():
        anchors = {rng.partition(":")[0]: rng for rng in arrays.get(sheet, [])}
        for ref, (formula, _cached) in cells.items():
            want = expected.get((sheet, ref))
            if want is None:
                result.kept.append(Kept(sheet, ref, formula, "not a template formula"))
                continue
            if formula is not None and _norm(formula) != _norm(want):
                result.kept.append(Kept(sheet, ref, formula, "formula differs from the template's"))
                continue
            if ref in anchors:
                spill = _array_cells(anchors[ref])
                if any((sheet, c) not in values for c in spill) or \
                        sum(1 for (s, _) in values if s == sheet) < len(spill):
                    result.kept.append(Kept(sheet, ref, formula,
                                            f"array result no longer fits {anchors[ref]}: rebuild"))
                    continue
                grid = _result_shape(ev, sheet, ref)
                if grid is not None and grid != _range_shape(anchors[ref]):
                    result.kept.append(Kept(sheet, ref, formula,
                                            f"array result is now {grid[0]}x{grid[1]}, "
                                            f"{anchors[ref]} holds {_range_shape(anchors[ref])[0]}"
                                            f"x{_range_shape(anchors[ref])[1]}: rebuild the book"))
                    continue
                for c in spill:
                    new.setdefault(sheet, {})[c] = values[(sheet, c)]
                plain.setdefault(sheet, set()).update(spill[1:])
            else:
                new.setdefault(sheet, {})[ref] = values[(sheet, ref)]
            result.formulas += 1
    result.changed = patch.patch_workbook(path, out, new, plain)
    say("done")
    return result


def _range_shape(rng: str) -> tuple[int, int]:
    first, _, last = rng.partition(":")
    r0, c0 = _split(first)
    r1, c1 = _split(last or first)
    return r1 - r0 + 1, c1 - c0 + 1


def _result_shape(ev: Evaluation, sheet: str, ref: str) -> tuple[int, int] | None:
    r, c = _split(ref)
    for cell in ev.plan.formulas():
        if cell.array and cell.sheet == sheet and (cell.row, cell.col) == (r, c):
            v = ev.values.get(cell.key)
            if isinstance(v, list):
                return len(v), max((len(x) for x in v), default=0)
            return 1, 1
    return None
