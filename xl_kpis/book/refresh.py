"""Headless refresh: recompute the cached value of every template formula in a workbook.

The input tables and settings are read with python-calamine, every formula of
the template is evaluated by :func:`xl_kpis.book.evaluate_book` (the same
code the builder uses: one UDF call per computed column), and the new values
are patched into the file by :mod:`xl_kpis.book.patch`, which leaves every
other part of the file byte-identical and writes atomically.

An array result whose size changed (a content type appears) is rewritten in
place: its spill range and cells, the Dashboard's chart data that show it,
the chart ranges and the print area (the layout has nothing below such an
array: :data:`schema.LAYOUT`).  Every chart whose cells changed gets a new
cache (:mod:`xl_kpis.book.charts`).

A formula cell the template does not contain (a seller's own formula, or a
template formula the seller changed) keeps its cached value and is reported,
never blanked; so are the template's cells that read such a cell.
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

from .. import officejs, package
from ..xlsx import books
from ..xlsx.errors import ERRORS, Text
from ..xlsx.refs import a1, bounds, rowcol, sheet_ref
from . import edit, files, patch, scan
from . import schema as S
from .evaluate import Evaluation, as_grid, evaluate_book, shape_of
from .append import table_layouts
from .charts import Area, chart_parts, rewrite_chart
from .files import BookLocked  # noqa: F401 - raised here, for callers
from .formulas import Column, Ref, RenderContext, This, render, walk


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


def _setting(text: str) -> tuple[str, int, int] | None:
    """(sheet, 0-based row, column) of the cell a setting's defined name refers to (None for
    anything but one cell)."""
    found = sheet_ref(text)
    if found is None or ":" in found[1]:
        return None
    try:
        return (found[0], *rowcol(found[1]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _norm(formula: str) -> str:
    """A formula text compared loosely: no ``=``, future-function prefixes, spaces or case
    outside string literals; either spelling of a UDF call (:func:`officejs.plain`)."""
    f = officejs.plain(formula.lstrip("="))
    parts = re.split(r'("(?:[^"]|"")*")', f)
    for i in range(0, len(parts), 2):
        p = re.sub(r"_xl(?:fn|udf|ws)\.", "", parts[i], flags=re.I)
        parts[i] = re.sub(r"\s+", "", p).upper()
    return "".join(parts)


def read_inputs(path: str | os.PathLike,
                columns: Collection[tuple[str, str]] | None = None,
                checked: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """The input tables (``table -> key -> values``) and the settings of a workbook.

    The settings are ``defined name -> value`` of the Start sheet's settings
    and ``key -> value`` of the other input cells outside the tables
    (:func:`schema.input_cells`: Benchmarks limits, CLV examples), as
    :func:`~xl_kpis.book.evaluate.evaluate_book` takes them.  ``columns`` limits
    the tables to these ``(table, header)`` input columns (the others are
    left out, as if blank).

    python-calamine lays out every worksheet it reads as a dense grid, so each
    is checked first (:func:`xl_kpis.package.check_cells`): by
    ``checked(part)``, which returns once the worksheet part has passed (and
    raises when it has not), or else by a second thread here, which checks
    the worksheets in the order calamine reads them while calamine reads
    those already checked.  Anything calamine cannot read is a
    BookFormatError.
    """
    return read_book(path, columns, checked=checked)


def read_book(path: str | os.PathLike, columns: Collection[tuple[str, str]] | None = None,
              rows: dict[str, int] | None = None,
              checked: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """:func:`read_inputs`, and the input cells outside the tables; ``rows`` receives
    each table's number of data rows (its trailing blank rows, such as the one an empty
    table keeps, left out)."""
    books.check_workbook_file(path)
    with books.open_book(path) as z:
        parts = books.sheet_parts(z)
        tables_at = books.table_sheets(z)
        names = books.defined_names(z)
        settings_at = {s.name: _setting(names.get(s.name, "")) for s in S.SETTINGS}
        every_table = sorted({p for ps in tables_at.values() for p in ps})
        read = {t.name: tables_at.get(t.name, every_table) for t in S.TABLES}
        sheets = {m[0] for m in settings_at.values() if m}
        sheets |= {sheet for sheet, _, _, _ in _input_cells().values()}
        read_order = _read_order(read, [parts[s] for s in sorted(sheets) if s in parts])
    if checked is None:
        gates = {part: Future() for part in read_order}
        with ThreadPoolExecutor(1) as pool:
            checking = pool.submit(_check_parts, Path(path), gates, read_order)
            try:
                return read_book(path, columns, rows, lambda part: gates[part].result())
            finally:
                checking.result()   # done: every gate was opened or failed
    with _calamine_errors(path):
        wb = CalamineWorkbook.from_path(os.fspath(path), load_tables=True)
        missing = [t.name for t in S.TABLES if t.name not in wb.table_names]
        if missing:
            raise books.BookFormatError(
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
            if rows is not None:
                n = len(data)
                while n and all(v == "" or v is None for v in data[n - 1]):
                    n -= 1
                rows[t.name] = n
        settings: dict[str, Any] = {}
        grids: dict[str, list] = {}

        def grid(sheet: str) -> list:
            if sheet not in grids:
                if sheet in parts and sheet in wb.sheet_names:
                    checked(parts[sheet])
                    grids[sheet] = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
                else:
                    grids[sheet] = []
            return grids[sheet]

        def at(sheet: str, r: int, c: int) -> Any:
            g = grid(sheet)
            return g[r][c] if r < len(g) and c < len(g[r]) else ""

        for s in S.SETTINGS:
            m = settings_at[s.name]
            if not m:
                continue
            if m[0] not in parts:
                raise books.BookFormatError(f"{os.fspath(path)}: the setting {s.name} refers"
                                            f" to sheet {m[0]!r}, which is missing")
            v = at(*m)
            settings[s.name] = v if _is_number(v) else s.default
        # the other input cells outside the tables (Benchmarks limits ...), where the
        # template puts them when the row still has the template's label
        for key, (sheet, r, c, label) in _input_cells().items():
            v = at(sheet, r, c)
            if at(sheet, r, 0) == label and _is_number(v):
                settings[key] = v
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
        if isinstance(e, books.BookFormatError):
            raise
        raise books.BookFormatError(f"{os.fspath(path)}: cannot read the workbook "
                                    f"({type(e).__name__}: {_one_line(e)})") from e
    except BaseException as e:  # pyo3 turns a Rust panic into PanicException(BaseException)
        if type(e).__name__ != "PanicException":
            raise
        raise books.BookFormatError(f"{os.fspath(path)}: cannot read the workbook (damaged: "
                                    f"{_one_line(e)})") from e


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@functools.lru_cache(maxsize=1)
def _input_cells() -> dict[str, tuple[str, int, int, str]]:
    """``key -> (sheet, row, col, label of the row)`` of :func:`schema.input_cells`."""
    p = S.plan()
    labels = {(c.sheet, c.row): c.value for c in p.cells if c.col == 0 and isinstance(c.value,
                                                                                       str)}
    return {k: (c.sheet, c.row, c.col, labels.get((c.sheet, c.row), ""))
            for k, c in S.input_cells().items()}


def _column(rows: list[list], i: int) -> list:
    """Column ``i`` of a table's rows; equal texts become one object (a column of statuses
    or order ids repeats a few texts thousands of times, and every later hash and
    comparison then runs on the same few objects).  python-calamine gives error cells
    as blanks, so a text reading like an error (``#N/A``) is text: it becomes
    :class:`~xl_kpis.xlsx.errors.Text`."""
    texts: dict[str, str] = {v: Text(v) for v in ERRORS}      # a cell of text, never an error
    return [texts.setdefault(v, v) if type(v) is str else v for v in map(itemgetter(i), rows)]


@functools.lru_cache(maxsize=1)
def _chart_inputs() -> frozenset[tuple[str, str]]:
    """The input columns ``(table, header)`` a chart of the template plots (its category
    names, its dates)."""
    out = set()
    for spec in S.plan().charts:
        for sheet, _, col, _ in (spec.categories, spec.values):
            for t in S.TABLES:
                if t.sheet == sheet and isinstance(t.columns[col], S.Input):
                    out.add((t.name, t.headers[col]))
    return frozenset(out)


@functools.lru_cache(maxsize=1)
def inputs_read() -> frozenset[tuple[str, str]]:
    """The input columns ``(table, header)`` that some formula or chart of the template
    reads (the others play no part in a refresh)."""
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
    return frozenset(out & inputs) | _chart_inputs()


def _array_cells(rng: str) -> list[str]:
    r0, c0, r1, c1 = bounds(rng)
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
    books.BookFormatError
        When the file is not an xl-kpis workbook.
    files.BookWriteError
        When the book cannot be written (missing or read-only folder, full disk).
    """
    target = Path(out) if out is not None else Path(path)
    with files.writing(target, reading=[path]), files.paused_gc():
        return _refresh(path, out, progress)


def _refresh(path: str | os.PathLike, out: str | os.PathLike | None,
             progress: Callable[[str], None] | None) -> RefreshResult:
    path = Path(path)
    out = Path(out) if out is not None else path
    say = progress or (lambda msg: None)
    books.check_workbook_file(path)
    say("reading input tables")
    rows: dict[str, int] = {}
    with books.open_book(path) as z:
        parts = books.sheet_parts(z)
        workbook_xml = books.read_part(z, "xl/workbook.xml")
        charts = {part: books.read_part(z, part) for part in chart_parts(z)}
        layouts = table_layouts(z)
        gates = {part: Future() for part in parts.values()}

        def checked(part: str) -> None:
            gate = gates.get(part)
            if gate is None:
                raise books.BookFormatError(f"{path}: {part} is not a worksheet of the book")
            gate.result()

        with ThreadPoolExecutor(1) as pool:
            # calamine reads the tables outside the GIL while this thread inflates the
            # worksheets (checking each before calamine reads it) and finds their
            # formula cells
            inputs = pool.submit(read_book, path, inputs_read(), rows, checked)
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
    result = RefreshResult(path=out, rows=rows)
    say("patching cached values")
    book = _Book(ev, {s: sheets[p] for s, p in parts.items()}, result, layouts)
    book.resize_arrays()
    book.follow_layout()
    book.keep_readers_of_own_formulas()
    values, plain, columns = {}, {}, {}
    for sheet in book.scans:
        table = _table_columns(ev, sheet, layouts)
        if table is None:
            values[sheet] = book.decisions(sheet)
        else:
            values[sheet] = _decider(sheet, table, result)
            first, n, cols = table
            columns[sheet] = {a1(0, c)[:-1]: patch.ColumnValues(
                first + 1, values_, functools.partial(_same_formula, want))
                for c, (want, values_) in cols.items()}
        if book.spilled.get(sheet):
            plain[sheet] = book.spilled[sheet]
    replace = {}
    for part, xml in charts.items():
        new = rewrite_chart(xml, book.chart_range, book.chart_values)
        if new != xml:
            replace[part] = new
    new_wb = _print_areas(workbook_xml, list(parts), book.old_plan, ev.plan)
    if new_wb != workbook_xml:
        replace["xl/workbook.xml"] = new_wb
    counter: dict[str, int] = {}
    result.changed = patch.patch_workbook(path, out, values, plain, columns, sheets, counter,
                                          edits=book.edits, replace=replace)
    result.formulas += counter.get("columns", 0)
    say("done")
    return result


def _refresh_order(z, parts: dict[str, str]) -> tuple[list[str], set[str]]:
    """The worksheet parts in the order :func:`read_inputs` wants them, then the others; and
    those it reads."""
    tables_at = books.table_sheets(z)
    every_table = sorted({p for ps in tables_at.values() for p in ps})
    names = books.defined_names(z)
    sheets = {m[0] for s in S.SETTINGS if (m := _setting(names.get(s.name, "")))}
    sheets |= {sheet for sheet, _, _, _ in _input_cells().values()}
    first = _read_order({t.name: tables_at.get(t.name, every_table) for t in S.TABLES},
                        [parts[s] for s in sorted(sheets) if s in parts])
    return list(dict.fromkeys(first + list(parts.values()))), set(first)


def _check_parts(path: Path, gates: dict[str, Future], order: list[str]) -> None:
    """Check the worksheets in ``order`` (:func:`xl_kpis.package.check_cells`), opening the
    gate of each as it passes; a failure fails its gate and those after it."""
    try:
        with books.open_book(path) as z:
            for part in order:
                with books.package_errors(path):
                    package.check_cells(books.read_part(z, part), path.name, part)
                gates[part].set_result(None)
    except BaseException as e:
        for gate in gates.values():
            if not gate.done():
                gate.set_exception(e)


def _checked_sheets(z, path: Path, gates: dict[str, Future], order: list[str], read: set[str]
                    ) -> dict[str, scan.FormulaScan]:
    """Inflate the worksheets in ``order``, check each (those python-calamine ``read`` s:
    :func:`xl_kpis.package.check_cells`; the others declare no DTD) and open its gate, then
    find their formula cells."""
    xml = {}
    for part in order:
        try:
            data = books.read_part(z, part)
            with books.package_errors(path):
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
            out[part] = scan.FormulaScan(data)
        except books.BookFormatError as e:
            raise books.BookFormatError(f"{path.name}: {part}: {e}") from e
    return out


def _same_formula(want: str, formula: str) -> bool:
    return _norm(formula) == want


def _stored(text: str) -> str:
    """A rendered formula as the file stores it (no leading ``=``)."""
    return text[1:] if text.startswith("=") else text


class _Book:
    """The decisions of a refresh about the cells outside the tables.

    The template's cells are where the plan for the new array shapes puts
    them (:func:`schema.plan`); the file holds them where the plan for the
    shapes it holds put them.  The two plans differ only in the arrays whose
    size changed and the chart data showing them (nothing else moves: see
    :data:`schema.LAYOUT`), so those are rewritten cell by cell
    (:attr:`edits`); every other formula cell gets its new cached value, or
    keeps its value when its formula is not the template's (:attr:`result`
    lists it).
    """

    def __init__(self, ev: Evaluation, scans: dict[str, scan.FormulaScan],
                 result: RefreshResult, layouts: dict[str, tuple[str, int, dict]]) -> None:
        self.ev, self.plan, self.scans, self.result = ev, ev.plan, scans, result
        self.layouts = layouts
        self.tables = {t.sheet for t in S.TABLES}
        # the formula text of every formula cell outside the tables (None: a shared child)
        self.texts: dict[str, dict[str, str | None]] = {
            sheet: {f"{letters.decode()}{row}": None if f is None else
                    scan.unescape_formula(f)
                    for _, _, _, _, _, f, _, letters, row in found.cells}
            for sheet, found in scans.items() if sheet not in self.tables}
        self.arrays = {sheet: {rng.partition(":")[0]: rng for rng in scan.array_ranges(
            found.xml)} for sheet, found in scans.items() if sheet not in self.tables}
        self.cells = {(sh, a1(r, c, False)): v for (sh, r, c), v in ev.cells.items()}
        self.expected: dict[tuple[str, str], str] = {
            (c.sheet, a1(c.row, c.col, False)): _norm(render(
                c.expr, RenderContext(c.sheet, address=self.plan.address)))
            for c in self.plan.formulas()}
        self.old_plan = self.plan
        self.edits: dict[str, dict[str, edit.CellEdit | None]] = {}
        self.spilled: dict[str, dict[str, Any]] = {}
        self.handled: set[tuple[str, str]] = set()     # written by an edit
        self.stale: dict[tuple[str, str], str] = {}     # kept, and why
        self._styles: dict[str, dict[str, str]] = {}
        self._contents: dict[str, dict[str, bool]] = {}

    # --- helpers

    def text(self, sheet: str, ref: str) -> str | None:
        return self.texts.get(sheet, {}).get(ref)

    def is_template(self, sheet: str, ref: str, plan: S.Plan | None = None) -> bool:
        """Whether the file holds the template's formula at ``ref`` (by ``plan``)."""
        text = self.text(sheet, ref)
        if text is None:
            return False
        if plan is None or plan is self.plan:
            want = self.expected.get((sheet, ref))
        else:
            cell = next((c for c in plan.formulas() if c.sheet == sheet
                         and a1(c.row, c.col, False) == ref), None)
            want = None if cell is None else _norm(render(
                cell.expr, RenderContext(sheet, address=plan.address)))
        return want is not None and _norm(text) == want

    def styles(self, sheet: str) -> dict[str, str]:
        if sheet not in self._styles:
            self._styles[sheet] = scan.cell_styles(self.scans[sheet].xml)
        return self._styles[sheet]

    def style_above(self, sheet: str, row: int, col: int, stop: int) -> str | None:
        """The style of the nearest styled cell above (0-based ``row``) down to row ``stop``."""
        styles = self.styles(sheet)
        for r in range(row, stop - 1, -1):
            s = styles.get(a1(r, col, False))
            if s is not None:
                return s
        return None

    def contents(self, sheet: str) -> dict[str, bool]:
        if sheet not in self._contents:
            self._contents[sheet] = scan.cell_contents(self.scans[sheet].xml)
        return self._contents[sheet]

    def edit(self, sheet: str, ref: str, cell: edit.CellEdit | None) -> None:
        self.edits.setdefault(sheet, {})[ref] = cell
        self.handled.add((sheet, ref))
        if cell is not None and (cell.formula is not None or cell.array is not None):
            self.result.formulas += 1

    # --- the steps

    def resize_arrays(self) -> None:
        """Array results whose size changed: the array formula's range, its cells.

        Also sets :attr:`old_plan`, the plan for the shapes the file holds."""
        held_shapes = {}
        for c in self.plan.formulas():
            if not c.array:
                continue
            ref = a1(c.row, c.col, False)
            rng = self.arrays.get(c.sheet, {}).get(ref)
            if rng is None or not self.is_template(c.sheet, ref):
                continue              # not the template's array: its cells are the decider's
            grid = as_grid(self.ev.values[c.key])
            shape, held = (len(grid), max(len(r) for r in grid)), _range_shape(rng)
            if shape == held:
                self.spilled.setdefault(c.sheet, {}).update(
                    (ref_, self.cells[(c.sheet, ref_)]) for ref_ in _array_cells(rng)[1:])
                continue
            held_shapes[c.key] = held
            self._resize(c, rng, grid)
        if held_shapes:
            shapes = {a.key: shape_of(self.ev.values[a.key]) for a in S.ARRAY.values()}
            self.old_plan = S.plan(self.ev.rows, {**shapes, **held_shapes})

    def _resize(self, c: S.Cell, old: str, grid: list[list]) -> None:
        n_rows, n_cols = len(grid), max(len(r) for r in grid)
        new = a1(c.row, c.col, False) + (
            f":{a1(c.row + n_rows - 1, c.col + n_cols - 1, False)}" if (n_rows, n_cols) != (1, 1)
            else "")
        styles = self.styles(c.sheet)
        # the references are made from each column's letters and the row's number (a table
        # of customers is a hundred thousand cells)
        letters = [a1(0, c.col + j, False)[:-1] for j in range(n_cols)]
        anchor = styles.get(f"{letters[0]}{c.row + 1}")
        # a new cell is styled as its row's kind: the header's cell, or the nearest styled
        # body cell above it (the header's, then the anchor's, when there is none).  The
        # nearest one is carried down column by column: one look per cell, not a scan up.
        header = [styles.get(f"{x}{c.row + 1}") for x in letters]
        body: list[str | None] = [None] * n_cols
        edits = self.edits.setdefault(c.sheet, {})
        handled = self.handled
        written = set()
        for i, values in enumerate(grid):
            number, above = str(c.row + i + 1), str(c.row + i)
            for j, x in enumerate(letters):
                ref = x + number
                v = values[j] if j < len(values) else ""
                if i >= 2:
                    style = styles.get(x + above)
                    if style is not None:
                        body[j] = style
                written.add(ref)
                if i == j == 0:
                    self.edit(c.sheet, ref, edit.CellEdit(v, array=new))
                    continue
                style = header[j] if i == 0 else body[j] or header[j]
                edits[ref] = edit.CellEdit("" if v is None else v, style=style or anchor)
                handled.add((c.sheet, ref))
        for ref in _array_cells(old):
            if ref not in written:
                self.edit(c.sheet, ref, None)

    def follow_layout(self) -> None:
        """The formula cells the new plan adds (chart data of a grown array) are written,
        those it drops are cleared (when they still hold the template's formula)."""
        if self.old_plan is self.plan:
            return
        new = {(c.sheet, a1(c.row, c.col, False)): c for c in self.plan.formulas()
               if not c.array}
        old = {(c.sheet, a1(c.row, c.col, False)): c for c in self.old_plan.formulas()
               if not c.array}
        for (sheet, ref) in old.keys() - new.keys():
            if self.is_template(sheet, ref, self.old_plan):
                self.edit(sheet, ref, None)
        for (sheet, ref) in sorted(new.keys() - old.keys(), key=_row_order):
            if sheet not in self.scans or self.text(sheet, ref) is not None:
                continue              # a formula is there: decided as any other
            if self.contents(sheet).get(ref):
                self.stale[(sheet, ref)] = "holds data of yours where the chart data grows"
                self.result.keep(Kept(sheet, ref, None, self.stale[(sheet, ref)]))
                continue
            c = new[(sheet, ref)]
            text = render(c.expr, RenderContext(sheet, address=self.plan.address))
            style = self.style_above(sheet, c.row - 1, c.col, 0)
            self.edit(sheet, ref, edit.CellEdit(self.cells[(sheet, ref)], formula=_stored(text),
                                                 style=style))

    def keep_readers_of_own_formulas(self) -> None:
        """A template cell reading a planned cell whose formula the seller changed keeps
        its value too (what it would show depends on the seller's formula)."""
        changed = {}
        for c in self.plan.formulas():
            ref = a1(c.row, c.col, False)
            if c.key is not None and self.text(c.sheet, ref) is not None and \
                    not self.is_template(c.sheet, ref):
                changed[c.key] = _label(c.key)
        while changed:
            more = {}
            for c in self.plan.formulas():
                pos = (c.sheet, a1(c.row, c.col, False))
                reads = sorted({n.key for n in walk(c.expr) if isinstance(n, Ref)} & set(changed))
                if reads and pos not in self.stale and c.key not in changed:
                    self.stale[pos] = f"reads {changed[reads[0]]}, whose formula is your own"
                    if c.key is not None:
                        more[c.key] = _label(c.key)
            changed = more

    def decisions(self, sheet: str) -> dict[str, Any]:
        """``ref -> new cached value`` of the formula cells of a sheet outside the tables (a
        cell not listed keeps its value)."""
        out: dict[str, Any] = {}
        for ref, text in self.texts[sheet].items():
            pos = (sheet, ref)
            if pos in self.handled:
                continue
            want = self.expected.get(pos)
            if want is None:
                self.result.keep(Kept(sheet, ref, text, OWN))
            elif pos in self.stale:
                self.result.keep(Kept(sheet, ref, text, self.stale[pos]))
            elif text is not None and _norm(text) != want:
                self.result.keep(Kept(sheet, ref, text, CHANGED))
            else:
                self.result.formulas += 1
                out[ref] = self.cells[pos]
        return out

    # --- charts

    def chart_range(self, area: Area) -> Area | None:
        """Where a chart range of the plan now ends (its sheet, column and first row are
        the plan's)."""
        sheet, r0, c0, r1, c1 = area
        if c0 != c1:
            return None
        for spec in self.plan.charts:
            for s, first, col, last in (spec.categories, spec.values):
                if (s, first, col) == (sheet, r0, c0):
                    return s, first, col, last, col
        return None

    def chart_values(self, area: Area) -> list | None:
        """The values of a chart range's cells after the refresh, when all are known (not
        an input column the refresh did not read, not a cell that keeps its value)."""
        sheet, r0, c0, r1, c1 = area
        for t in S.TABLES:
            if t.sheet == sheet:
                _, first, where = self.layouts.get(t.name, (sheet, t.first_data_row, {
                    h: t.col(h) for h in t.headers}))
                header = {c: h for h, c in where.items()}
                out = []
                for c in range(c0, c1 + 1):
                    h = header.get(c)
                    if h not in t.headers or (isinstance(t.columns[t.col(h)], S.Input)
                                              and (t.name, h) not in inputs_read()):
                        return None       # not a template column, or one not read
                    for r in range(r0, r1 + 1):
                        if not 0 <= r - first < self.ev.rows[t.name]:
                            return None
                        out.append(self.ev.columns[t.name][h][r - first])
                return out
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                ref = a1(r, c, False)
                if (sheet, ref) in self.stale or (
                        (sheet, ref) not in self.handled and self.text(sheet, ref) is not None
                        and not self.is_template(sheet, ref)):
                    return None
        return self.ev.chart_values(area)


def _row_order(pos: tuple[str, str]) -> tuple[str, int, int]:
    r, c = rowcol(pos[1])
    return pos[0], r, c


#: Why a formula cell keeps its cached value (what the seller reads).
OWN = "a formula of your own, not the template's: its value was not recomputed"
CHANGED = "you changed the template's formula here: its value was not recomputed"


def _label(key: str) -> str:
    """What the seller calls a planned cell: a KPI's or an array's title, a rating ..."""
    if key in S.KPIS:
        return f"the KPI '{S.KPIS[key].label}'"
    if key in S.ARRAY:
        return f"the table '{S.ARRAY[key].title}'"
    return f"the cell of '{key}'"


def _print_areas(xml: bytes, sheets: list[str], old: S.Plan, new: S.Plan) -> bytes:
    """``workbook.xml`` with the print area of each planned sheet ending where the new plan
    ends it, when it ends where the old plan did (a seller's own print area stays)."""
    for sheet, last in new.print_rows.items():
        before = old.print_rows.get(sheet)
        if before is None or before == last or sheet not in sheets:
            continue
        index = sheets.index(sheet)

        def sub(m: re.Match, before=before, last=last) -> bytes:
            return m.group(1) + (b"%d" % (last + 1)) + m.group(3) if int(m.group(2)) == \
                before + 1 else m.group(0)

        pattern = (rb'(<definedName name="_xlnm\.Print_Area" localSheetId="%d">[^<]*?\$[A-Z]+\$)'
                   rb'(\d+)(</definedName>)') % index
        xml = re.sub(pattern, sub, xml)
    return xml


def _table_columns(ev: Evaluation, sheet: str, layouts: dict[str, tuple[str, int, dict]]
                   ) -> tuple[int, int, dict] | None:
    """(first data row, rows, ``col -> (normalised formula, values)``) of the table on a
    sheet, its columns where the table part puts them."""
    for t in S.TABLES:
        if t.sheet == sheet:
            _, first, where = layouts.get(t.name, (sheet, t.first_data_row, {
                h: t.col(h) for h in t.headers}))
            cols = {where[c.header]: (_norm(t.formula(c.header)),
                                      ev.columns[t.name][c.header])
                    for c in t.computed if c.header in where}
            return first, ev.rows[t.name], cols
    return None


def _decider(sheet: str, table: tuple[int, int, dict], result: RefreshResult
             ) -> Callable[[str, str | None], Any]:
    """The per-cell decision of a table's sheet: the new value of a cell of a calculated
    column the :class:`patch.ColumnValues` did not answer, or KEEP (recorded in ``result``)."""
    first, n, cols = table

    def decide(ref: str, formula: str | None) -> Any:
        row, col = rowcol(ref)
        row -= first
        if col not in cols or not 0 <= row < n:
            result.keep(Kept(sheet, ref, formula, OWN))
            return patch.KEEP
        want, values = cols[col]
        if formula is not None and _norm(formula) != want:
            result.keep(Kept(sheet, ref, formula, CHANGED))
            return patch.KEEP
        result.formulas += 1
        return values[row]

    return decide


def _range_shape(rng: str) -> tuple[int, int]:
    r0, c0, r1, c1 = bounds(rng)
    return r1 - r0 + 1, c1 - c0 + 1
