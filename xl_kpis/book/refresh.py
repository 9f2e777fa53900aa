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

import contextlib
import functools
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Collection

from python_calamine import CalamineError, CalamineWorkbook

from .. import package
from ..cells import ERRORS, Text
from . import files, patch
from . import schema as S
from .build import Evaluation, evaluate_book
from .files import BookLocked  # noqa: F401 - raised here, for callers
from .formulas import Column, Ref, RenderContext, This, a1, render, walk


#: What to do when an array result changed size (its range is fixed in the file).
REBUILD = "lay the book out anew with `xl-kpis build NEW.xlsx --from BOOK`"


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


#: Kept cells a :class:`RefreshResult` lists one by one.
MAX_KEPT = 1000


@dataclass
class RefreshResult:
    """What a refresh did."""

    path: Path
    formulas: int = 0          # formula cells recomputed
    changed: int = 0           # cells whose cached value changed
    rows: dict[str, int] = field(default_factory=dict)
    kept: list[Kept] = field(default_factory=list)
    kept_more: int = 0         # cells kept beyond the first MAX_KEPT listed in ``kept``

    def keep(self, kept: Kept) -> None:
        """Record a kept cell (the first :data:`MAX_KEPT` are listed, the others counted: a
        sheet of a million foreign formulas costs no list of a million objects)."""
        if len(self.kept) < MAX_KEPT:
            self.kept.append(kept)
        else:
            self.kept_more += 1


_CELL_REF = re.compile(r"^'?(?P<sheet>[^'!]+)'?!\$?(?P<col>[A-Z]+)\$?(?P<row>\d+)$")


def _split(ref: str) -> tuple[int, int]:
    m = re.match(r"([A-Z]+)(\d+)$", ref)
    return int(m.group(2)) - 1, patch.col_index(m.group(1))


@functools.lru_cache(maxsize=4096)
def _norm(formula: str) -> str:
    """A formula text compared loosely: no ``=``, future-function prefixes, spaces or case
    outside string literals."""
    f = formula.lstrip("=")
    parts = re.split(r'("(?:[^"]|"")*")', f)
    for i in range(0, len(parts), 2):
        p = re.sub(r"_xl(?:fn|udf|ws)\.", "", parts[i], flags=re.I)
        parts[i] = re.sub(r"\s+", "", p).upper()
    return "".join(parts)


def read_inputs(path: str | os.PathLike,
                columns: Collection[tuple[str, str]] | None = None,
                checked: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """The input tables (``table -> key -> values``) and the settings of a workbook.

    ``columns`` limits the tables to these ``(table, header)`` input columns
    (the others are left out, as if blank).

    python-calamine lays out every worksheet it reads as a dense grid, so each
    is checked first (:func:`xl_kpis.package.check_cells`): by
    ``checked(part)``, which returns once the worksheet part has passed (and
    raises when it has not), or else by a second thread here, which checks
    the worksheets in the order calamine reads them while calamine reads
    those already checked.  Anything calamine cannot read is a
    BookFormatError.
    """
    patch.check_workbook_file(path)
    with patch.open_book(path) as z:
        parts = patch.sheet_parts(z)
        tables_at = patch.table_sheets(z)
        names = patch.defined_names(z)
        settings_at = {s.name: _CELL_REF.match(names.get(s.name, "")) for s in S.SETTINGS}
        every_table = sorted({p for ps in tables_at.values() for p in ps})
        read = {t.name: tables_at.get(t.name, every_table) for t in S.TABLES}
        sheets = {m["sheet"] for m in settings_at.values() if m}
        read_order = _read_order(read, [parts[s] for s in sorted(sheets) if s in parts])
    if checked is None:
        gates = {part: Future() for part in read_order}
        with ThreadPoolExecutor(1) as pool:
            checking = pool.submit(_check_parts, Path(path), gates, read_order)
            try:
                return read_inputs(path, columns, lambda part: gates[part].result())
            finally:
                checking.result()   # done: every gate was opened or failed
    with _calamine_errors(path):
        wb = CalamineWorkbook.from_path(os.fspath(path), load_tables=True)
        missing = [t.name for t in S.TABLES if t.name not in wb.table_names]
        if missing:
            raise patch.BookFormatError(
                f"{os.fspath(path)}: not an xl-kpis workbook (no table {missing[0]!r})")
        tables: dict[str, dict[str, list]] = {}
        for t in S.TABLES:
            for part in read[t.name]:
                checked(part)
            tab = wb.get_table_by_name(t.name)
            data = tab.to_python()
            inputs = {c.header: c.key for c in t.inputs}
            tables[t.name] = {inputs[h]: _column(data, i) for i, h in enumerate(tab.columns)
                              if h in inputs and (columns is None or (t.name, h) in columns)}
        settings: dict[str, Any] = {}
        grids: dict[str, list] = {}
        for s in S.SETTINGS:
            m = settings_at[s.name]
            if not m:
                continue
            if m["sheet"] not in grids:
                if m["sheet"] not in parts:
                    raise patch.BookFormatError(f"{os.fspath(path)}: the setting {s.name} refers"
                                                f" to sheet {m['sheet']!r}, which is missing")
                checked(parts[m["sheet"]])
                grids[m["sheet"]] = wb.get_sheet_by_name(m["sheet"]).to_python(
                    skip_empty_area=False)
            grid = grids[m["sheet"]]
            r, c = int(m["row"]) - 1, patch.col_index(m["col"])
            v = grid[r][c] if r < len(grid) and c < len(grid[r]) else ""
            settings[s.name] = v if isinstance(v, (int, float)) and not isinstance(v, bool) \
                else s.default
    return tables, settings


def _read_order(tables: dict[str, list[str]], settings: list[str]) -> list[str]:
    """The worksheet parts :func:`read_inputs` reads, in the order it reads them."""
    order = [p for t in S.TABLES for p in tables[t.name]] + settings
    return list(dict.fromkeys(order))


@contextlib.contextmanager
def _calamine_errors(path: str | os.PathLike):
    """python-calamine's errors (and Rust panics) as a one-line BookFormatError."""
    try:
        yield
    except (CalamineError, OSError, ValueError) as e:
        if isinstance(e, patch.BookFormatError):
            raise
        raise patch.BookFormatError(f"{os.fspath(path)}: cannot read the workbook "
                                    f"({type(e).__name__}: {_one_line(e)})") from e
    except BaseException as e:  # pyo3 turns a Rust panic into PanicException(BaseException)
        if type(e).__name__ != "PanicException":
            raise
        raise patch.BookFormatError(f"{os.fspath(path)}: cannot read the workbook (damaged: "
                                    f"{_one_line(e)})") from e


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _column(rows: list[list], i: int) -> list:
    """Column ``i`` of a table's rows; equal texts become one object (a column of statuses
    or order ids repeats a few texts thousands of times, and every later hash and
    comparison then runs on the same few objects).  python-calamine gives error cells
    as blanks, so a text reading like an error (``#N/A``) is text: it becomes
    :class:`~xl_kpis.cells.Text`."""
    texts: dict[str, str] = {v: Text(v) for v in ERRORS}      # a cell of text, never an error
    return [texts.setdefault(v, v) if type(v) is str else v for v in map(itemgetter(i), rows)]


@functools.lru_cache(maxsize=1)
def inputs_read() -> frozenset[tuple[str, str]]:
    """The input columns ``(table, header)`` that some formula of the template reads
    (the others play no part in a refresh)."""
    exprs = [c.expr for c in S.plan().formulas()] + [a.expr for a in S.ARRAYS]
    out = {(n.table, n.header) for e in exprs for n in walk(e) if isinstance(n, Column)}
    for t in S.TABLES:
        for c in t.computed:
            for n in walk(c.expr):
                if isinstance(n, This):
                    last = n.last or n.header
                    out.update((t.name, h) for h in
                               t.headers[t.headers.index(n.header):t.headers.index(last) + 1])
    inputs = {(t.name, c.header) for t in S.TABLES for c in t.inputs}
    return frozenset(out & inputs)


def _array_cells(rng: str) -> list[str]:
    first, _, last = rng.partition(":")
    r0, c0 = _split(first)
    r1, c1 = _split(last or first)
    return [a1(r, c, False) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def refresh(path: str | os.PathLike, out: str | os.PathLike | None = None,
            progress: Callable[[str], None] | None = None) -> RefreshResult:
    """Recompute every template formula's cached value of ``path`` (written to ``out``).

    The book written (``out``, else ``path``) is locked against other xl-kpis
    commands from the first read to the rename (:func:`files.writing`), and
    ``path`` too when it is another file.

    Raises
    ------
    BookLocked
        When Excel or LibreOffice has the book open (their lock file exists),
        or another xl-kpis kept writing it for longer than :func:`files.lock_wait`.
    patch.BookFormatError
        When the file is not an xl-kpis workbook.
    files.BookWriteError
        When the book cannot be written (missing or read-only folder, full disk).
    """
    target = Path(out) if out is not None else Path(path)
    with files.writing(target, reading=[path]), patch.paused_gc():
        return _refresh(path, out, progress)


def _refresh(path: str | os.PathLike, out: str | os.PathLike | None,
             progress: Callable[[str], None] | None) -> RefreshResult:
    path = Path(path)
    out = Path(out) if out is not None else path
    say = progress or (lambda msg: None)
    patch.check_workbook_file(path)
    say("reading input tables")
    with patch.open_book(path) as z:
        parts = patch.sheet_parts(z)
        gates = {part: Future() for part in parts.values()}

        def checked(part: str) -> None:
            gate = gates.get(part)
            if gate is None:
                raise patch.BookFormatError(f"{path}: {part} is not a worksheet of the book")
            gate.result()

        with ThreadPoolExecutor(1) as pool:
            # calamine reads the tables outside the GIL while this thread inflates the
            # worksheets (checking each before calamine reads it) and finds their
            # formula cells
            inputs = pool.submit(read_inputs, path, inputs_read(), checked)
            try:
                sheets = _checked_sheets(z, path, gates, *_refresh_order(z, parts))
            except BaseException as e:
                for gate in gates.values():       # calamine waits for none in vain
                    if not gate.done():
                        gate.set_exception(e)
                with contextlib.suppress(BaseException):
                    inputs.result()
                raise
            tables, settings = inputs.result()
    say("evaluating formulas")
    ev = evaluate_book(tables, settings)
    cells = {(sh, a1(r, c, False)): v for (sh, r, c), v in ev.cells.items()}
    expected = {(c.sheet, a1(c.row, c.col, False)): _norm(render(
        c.expr, RenderContext(c.sheet, address=ev.plan.address))) for c in ev.plan.formulas()}
    result = RefreshResult(path=out, rows=dict(ev.rows))
    say("patching cached values")
    arrays = {s: patch.array_ranges(sheets[p].xml) for s, p in parts.items()}
    for ref, why in _stale_dependents(ev, arrays).items():
        expected[ref] = why  # a reason, never equal to a normalised formula: the cell is kept
    deciders, plain, columns = {}, {}, {}
    for sheet in parts:
        anchors, spilled = _arrays(ev, sheet, arrays[sheet], cells, result)
        table = _table_columns(ev, sheet)
        deciders[sheet] = _decider(sheet, expected, cells, table, anchors, result)
        if spilled:
            plain[sheet] = spilled
        if table is not None:
            first, n, cols = table
            columns[sheet] = {a1(0, c)[:-1]: patch.ColumnValues(
                first + 1, values, functools.partial(_same_formula, want))
                for c, (want, values) in cols.items()}
    counter: dict[str, int] = {}
    result.changed = patch.patch_workbook(path, out, deciders, plain, columns, sheets, counter)
    result.formulas += counter.get("columns", 0)
    say("done")
    return result


def _refresh_order(z, parts: dict[str, str]) -> tuple[list[str], set[str]]:
    """The worksheet parts in the order :func:`read_inputs` wants them, then the others; and
    those it reads."""
    tables_at = patch.table_sheets(z)
    every_table = sorted({p for ps in tables_at.values() for p in ps})
    names = patch.defined_names(z)
    sheets = {m["sheet"] for s in S.SETTINGS if (m := _CELL_REF.match(names.get(s.name, "")))}
    first = _read_order({t.name: tables_at.get(t.name, every_table) for t in S.TABLES},
                        [parts[s] for s in sorted(sheets) if s in parts])
    return list(dict.fromkeys(first + list(parts.values()))), set(first)


def _check_parts(path: Path, gates: dict[str, Future], order: list[str]) -> None:
    """Check the worksheets in ``order`` (:func:`xl_kpis.package.check_cells`), opening the
    gate of each as it passes; a failure fails its gate and those after it."""
    try:
        with patch.open_book(path) as z:
            for part in order:
                with patch._package_errors(path):
                    package.check_cells(patch.read_part(z, part), path.name, part)
                gates[part].set_result(None)
    except BaseException as e:
        for gate in gates.values():
            if not gate.done():
                gate.set_exception(e)


def _checked_sheets(z, path: Path, gates: dict[str, Future], order: list[str], read: set[str]
                    ) -> dict[str, patch.FormulaScan]:
    """Inflate the worksheets in ``order``, check each (those python-calamine ``read`` s:
    :func:`xl_kpis.package.check_cells`; the others declare no DTD) and open its gate, then
    find their formula cells."""
    xml = {}
    for part in order:
        try:
            data = patch.read_part(z, part)
            with patch._package_errors(path):
                check = package.check_cells if part in read else package.check_no_dtd
                check(data, path.name, part)
        except BaseException as e:
            gates[part].set_exception(e)
            raise
        gates[part].set_result(None)
        xml[part] = data
    out = {}
    for part, data in xml.items():
        try:
            out[part] = patch.FormulaScan(data)
        except patch.BookFormatError as e:
            raise patch.BookFormatError(f"{path.name}: {part}: {e}") from e
    return out


def _same_formula(want: str, formula: str) -> bool:
    return _norm(formula) == want


class _Stale(str):
    """In place of an expected formula: the template cell must keep its value (and why)."""


def _stale_dependents(ev: Evaluation, arrays: dict[str, list[str]]) -> dict[tuple, _Stale]:
    """Cells that read an array result whose size changed since the book was built.

    The array itself cannot be resized in place (its spill range and the cells
    laid out after it are fixed in the file), so it keeps its values; the
    cells that read it keep theirs too, so the book stays consistent.
    """
    held = {(s, rng.partition(":")[0]): _range_shape(rng) for s, rngs in arrays.items()
            for rng in rngs}
    changed = set()
    for c in ev.plan.formulas():
        if c.array:
            pos = (c.sheet, a1(c.row, c.col, False))
            if held.get(pos) != _result_shape(ev, *pos):
                changed.add(c.key)
    out = {}
    for c in ev.plan.formulas():
        keys = {n.key for n in walk(c.expr) if isinstance(n, Ref)} & changed
        if keys and not c.array:
            out[(c.sheet, a1(c.row, c.col, False))] = _Stale(
                f"reads the result of {sorted(keys)[0]}, whose size changed: {REBUILD}")
    return out


def _arrays(ev: Evaluation, sheet: str, ranges: list[str], values: dict,
            result: RefreshResult) -> tuple[dict[str, str | None], dict[str, Any]]:
    """Array anchors of a sheet (``ref -> None`` when the result no longer fits) and the
    values of their spilled cells."""
    anchors: dict[str, str | None] = {}
    spilled: dict[str, Any] = {}
    for rng in ranges:
        ref = rng.partition(":")[0]
        shape, held = _result_shape(ev, sheet, ref), _range_shape(rng)
        if shape is not None and shape != held:
            anchors[ref] = (f"array result is now {shape[0]}x{shape[1]}, {rng} holds "
                            f"{held[0]}x{held[1]}: {REBUILD}")
            continue
        cells = _array_cells(rng)
        if any((sheet, c) not in values for c in cells):
            anchors[ref] = f"array result no longer fits {rng}: {REBUILD}"
            continue
        anchors[ref] = None
        spilled.update({c: values[(sheet, c)] for c in cells[1:]})
    return anchors, spilled


def _table_columns(ev: Evaluation, sheet: str) -> tuple[int, int, dict] | None:
    """(first data row, rows, ``col -> (normalised formula, values)``) of the table on a sheet."""
    for t in S.TABLES:
        if t.sheet == sheet:
            cols = {t.col(c.header): (_norm(t.formula(c.header)), ev.columns[t.name][c.header])
                    for c in t.computed}
            return t.first_data_row, ev.rows[t.name], cols
    return None


_REF = re.compile(r"([A-Z]+)(\d+)$")


def _decider(sheet: str, expected: dict, cells: dict, table: tuple[int, int, dict] | None,
             anchors: dict[str, str | None], result: RefreshResult
             ) -> Callable[[str, str | None], Any]:
    """The per-cell decision of a sheet: the new value, or KEEP (recorded in ``result``)."""

    def template(ref: str) -> tuple[str, Any] | None:
        """The template's (normalised formula, value) at ``ref``, if any."""
        want = expected.get((sheet, ref))
        if want is not None:
            return want, cells[(sheet, ref)]
        if table is not None:
            first, n, cols = table
            m = _REF.match(ref)
            row, col = int(m.group(2)) - 1 - first, patch.col_index(m.group(1))
            if col in cols and 0 <= row < n:
                text, values = cols[col]
                return text, values[row]
        return None

    def decide(ref: str, formula: str | None) -> Any:
        found = template(ref)
        if found is None:
            result.keep(Kept(sheet, ref, formula, "not a template formula"))
            return patch.KEEP
        want, value = found
        if isinstance(want, _Stale):
            result.keep(Kept(sheet, ref, formula, str(want)))
            return patch.KEEP
        if formula is not None and _norm(formula) != want:
            result.keep(Kept(sheet, ref, formula, "formula differs from the template's"))
            return patch.KEEP
        if anchors.get(ref) is not None:
            result.keep(Kept(sheet, ref, formula, anchors[ref]))
            return patch.KEEP
        result.formulas += 1
        return value

    return decide


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
