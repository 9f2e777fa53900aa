"""Evaluate the template's formulas: input columns (and settings) in, the value of every
formula out.

:func:`evaluate_book` computes every cell of the template (:class:`Evaluation`): a
refresher reads a workbook's input columns, calls it and patches the cached values, and
the builder (:mod:`xl_kpis.book.build`) writes them into the formula cells.
:func:`evaluate_kpis` computes only the KPIs sheet's rows and what they read (the
``report`` command).  Nothing here writes a file: a command that only evaluates imports
neither XlsxWriter's workbook nor the zip patcher.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics import predictive
from ..metrics._kpi import Coded, LazyCoded, plain
from ..xlsx.refs import a1
from . import schema as S
from .formulas import Evaluator, Node, column_array

__all__ = ["Evaluation", "evaluate_book", "evaluate_kpis", "normalise_tables", "as_grid", "shape_of"]


@dataclass
class Evaluation:
    """The values of every formula of the template for given inputs.

    Attributes
    ----------
    columns : dict
        ``table -> header -> values`` for every column (inputs as written,
        computed columns as evaluated), all of the table's row count.
    rows : dict
        ``table -> number of data rows`` (at least 1: an empty table keeps one
        blank row).
    settings : dict
        ``defined name -> value``.
    plan : schema.Plan
        Where every cell outside the tables goes.
    values : dict
        ``planned formula key -> value`` (an array result as a 2-D list).
    cells : dict
        ``(sheet, row, col) -> value`` of every planned formula cell (0-based;
        an array formula's cells one by one).
    """

    columns: dict[str, dict[str, list]]
    rows: dict[str, int]
    settings: dict[str, Any]
    plan: S.Plan
    values: dict[str, Any]
    cells: dict[tuple[str, int, int], Any]

    def value_at(self, sheet: str, row: int, col: int) -> Any:
        """The value of a cell (0-based) a formula computes or a table holds.

        Raises
        ------
        KeyError
            The cell is neither a planned formula cell nor a table data cell.
        """
        if (sheet, row, col) in self.cells:
            return self.cells[(sheet, row, col)]
        for t in S.TABLES:
            if t.sheet == sheet:
                i = row - t.first_data_row
                if 0 <= i < self.rows[t.name] and col < len(t.headers):
                    return self.columns[t.name][t.headers[col]][i]
        raise KeyError((sheet, row, col))

    def chart_values(self, area: tuple[str, int, int, int, int]) -> list | None:
        """The values of the cells of a chart range (``charts.Area``), None when one is
        not known."""
        sheet, r0, c0, r1, c1 = area
        try:
            return [self.value_at(sheet, r, c) for r in range(r0, r1 + 1)
                    for c in range(c0, c1 + 1)]
        except KeyError:
            return None

    def by_address(self) -> dict[tuple[str, str], Any]:
        """``(sheet, "B7") -> cached value`` of every formula cell, tables included."""
        out = {(s, a1(r, c, False)): v for (s, r, c), v in self.cells.items()}
        for t in S.TABLES:
            for col in t.computed:
                c = t.col(col.header)
                for i, v in enumerate(self.columns[t.name][col.header]):
                    out[(t.sheet, a1(t.first_data_row + i, c, False))] = v
        return out


def _clean(col: S.Input, v: Any) -> Any:
    """An input value as the workbook stores it (ids as text, NaN as blank, numpy as Python)."""
    if v is None or v == "":
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()                      # numpy scalar
    if isinstance(v, float) and v != v:
        return None
    if col.kind == "id" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(int(v))
    return v


_PLAIN = {str, float, int, bool, type(None), date, datetime}


#: A column with no value, as long as any (NaN broadcast: no memory per row).
_BLANK_COLUMN = np.broadcast_to(np.float64(np.nan), (1 << 40,))


def _as_is(col: S.Input, raw: Any, n: int) -> bool:
    """Whether a numpy input column can be evaluated as it is (:class:`~.formulas.Evaluator`
    reads such arrays): float (not for ids, stored as text), datetime64, or text and None
    (with codes, or checked value by value)."""
    if isinstance(raw, LazyCoded):
        return raw.ndim == 1 and len(raw) == n
    if not isinstance(raw, np.ndarray) or raw.ndim != 1 or len(raw) != n:
        return False
    kind = raw.dtype.kind
    if kind == "f":
        return col.kind != "id"
    if kind == "M":
        return True
    if kind != "O":
        return False
    if isinstance(raw, Coded) and raw.parts is not None:
        return True
    return set(map(type, raw)) <= {str, type(None)}


def normalise_tables(tables: Mapping[str, Mapping[str, Sequence[Any]]],
                     arrays: bool = False
                     ) -> tuple[dict[str, dict[str, list]], dict[str, int]]:
    """Input columns keyed by canonical key → columns keyed by header, padded.

    Missing tables and columns are blank; every table gets at least one row
    (the blank row an empty Excel table keeps).  With ``arrays``, a numpy column
    of a columnar reader (see :func:`_as_is`) is kept as it is and a missing column
    is NaN (one value broadcast): the evaluator reads them without a Python value per row.

    Returns
    -------
    (dict, dict)
        ``table -> header -> values`` of the input columns, and
        ``table -> number of rows``.
    """
    unknown = set(tables) - set(S.TABLE)
    if unknown:
        raise KeyError(f"no such table: {sorted(unknown)}")
    columns, rows = {}, {}
    for t in S.TABLES:
        data = tables.get(t.name, {})
        extra = set(data) - set(t.keys)
        if extra:
            raise KeyError(f"table {t.name} has no input column {sorted(extra)}")
        n = max([len(v) for v in data.values()] + [1])
        rows[t.name] = n
        columns[t.name] = {}
        for c in t.inputs:
            raw = data.get(c.key, ())
            if arrays and (c.key not in data or _as_is(c, raw, n)):
                columns[t.name][c.header] = raw if c.key in data else _BLANK_COLUMN[:n]
                continue
            raw = plain(raw)            # codes only, not evaluated as they are: their labels
            types = set(map(type, raw)) if isinstance(raw, list) else None
            if types is not None and types <= {str, type(None)}:
                # text (what calamine reads for ids): only blanks need cleaning
                values = [None if v == "" else v for v in raw]
            elif c.kind != "id" and types is not None and types <= _PLAIN:
                # plain Python values (what calamine reads): only blanks need cleaning
                values = [None if v == "" or v != v else v for v in raw]
            else:
                values = [_clean(c, v) for v in raw]
            columns[t.name][c.header] = values + [None] * (n - len(values))
    return columns, rows


def evaluate_book(tables: Mapping[str, Mapping[str, Sequence[Any]]],
                  settings: Mapping[str, Any] | None = None) -> Evaluation:
    """Compute every formula of the template from the input columns.

    Parameters
    ----------
    tables : mapping
        ``table name -> canonical key -> column values`` for the input
        columns (see :data:`schema.TABLES`; :func:`schema.rows_to_columns`
        turns importer rows into this).  Missing tables or keys are blank.
    settings : mapping, optional
        ``defined name -> value`` overriding :data:`schema.SETTINGS` defaults,
        and ``key -> value`` of the other input cells outside the tables
        (:func:`schema.input_cells`: the Benchmarks limits, the CLV examples),
        overriding the template's values.  The plan of the evaluation holds
        these values, so a book written from it shows what it computed with.

    Returns
    -------
    Evaluation
        Computed columns, planned formula values and the plan itself.

    Notes
    -----
    KPIs are evaluated by calling the Excel functions of :mod:`xl_kpis.functions` (once per
    computed column, with whole columns); native functions by the small
    evaluator of :mod:`xl_kpis.book.formulas`.
    """
    return _evaluate(tables, settings, kpis_only=False)


def evaluate_kpis(tables: Mapping[str, Mapping[str, Sequence[Any]]],
                  settings: Mapping[str, Any] | None = None,
                  columns: Sequence[tuple[str, str]] = ()) -> dict[Any, Any]:
    """The value of each KPI row of the KPIs sheet (:data:`schema.KPIS`), as
    :func:`evaluate_book` computes it for the book, but evaluating only what they read
    (no array result, no Dashboard, no computed column no KPI reads).

    Each ``(table, header)`` of ``columns`` (a computed column, such as the
    Orders table's ``Counted sales``) adds that column's values, keyed by the
    tuple, as an object array of cell values; a KPI whose unit is a formula (it says
    which data the KPI was computed from) adds that unit's value, keyed ``("unit", key)``;
    a KPI whose formula fits the CLV models (the predicted CLV) adds the fit its value
    comes from, keyed ``("model", key)``: the
    :class:`~xl_kpis.metrics.predictive.ClvModel`, or the
    :class:`~xl_kpis.metrics.predictive.FitError` that stopped it
    (:func:`xl_kpis.metrics.predictive.fits`), so a caller that shows the model shows the
    one behind the KPI's value, fitted once.

    The columns may be numpy arrays as a columnar reader gives them (float64 with
    NaN for a blank, datetime64, object arrays of text and None; text columns with
    their codes as :class:`xl_kpis.metrics._kpi.Coded`): they are evaluated as
    arrays, never as a Python value per row."""
    return _evaluate(tables, settings, kpis_only=True, also=columns)


def _evaluate(tables: Mapping[str, Mapping[str, Sequence[Any]]],
              settings: Mapping[str, Any] | None, kpis_only: bool,
              also: Sequence[tuple[str, str]] = ()) -> Any:
    """:func:`evaluate_book`, or only the KPI rows (:func:`evaluate_kpis`)."""
    columns, rows = normalise_tables(tables, arrays=kpis_only)
    names = {s.name: s.default for s in S.SETTINGS}
    settings = dict(settings or {})
    given = {k: settings.pop(k) for k in list(settings) if k in S.input_cells()}
    unknown = set(settings) - set(names)
    if unknown:
        raise KeyError(f"no such setting: {sorted(unknown)}")
    names.update(settings)
    given.update({f"setting.{n}": v for n, v in names.items()})

    state: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    formulas: dict[str, S.Cell] = {}
    evaluating: set[str] = set()
    models: dict[str, Any] = {}     # the CLV fit a KPI's own formula made

    def value_of(key: str) -> Any:
        if key in constants:
            return constants[key]
        if key not in state:
            if key in evaluating:
                raise ValueError(f"circular reference through {key!r}")
            evaluating.add(key)
            if kpis_only:
                with predictive.fits() as fitted:
                    state[key] = ev.cell(formulas[key].expr, array=formulas[key].array)
                if fitted:
                    models[key] = fitted[-1]
            else:
                state[key] = ev.cell(formulas[key].expr, array=formulas[key].array)
            evaluating.discard(key)
        return state[key]

    def cell(key: str, row: int, col: int) -> Any:
        v = value_of(key)
        if isinstance(v, list):
            return v[row][col] if row < len(v) and col < len(v[row]) else None
        return v if row == col == 0 else None

    computed = {(t.name, c.header): c for t in S.TABLES for c in t.computed}

    def column(table: str, header: str) -> list:
        """A column's values; a computed column is evaluated when first asked for."""
        values = columns[table].get(header)
        if values is None:
            c = computed[(table, header)]
            evaluate = ev.column_values if kpis_only else ev.column
            values = columns[table][header] = evaluate(c.expr, table, rows[table])
        return values

    ev = Evaluator(column, names.__getitem__, cell,
                   headers={t.name: t.headers for t in S.TABLES})
    if kpis_only:
        for k in S.KPIS.values():
            formulas[k.key] = S.Cell(S.KPIS_SHEET, 0, 0, expr=k.expr, key=k.key)
        out: dict[Any, Any] = {k: value_of(k) for k in S.KPIS}
        out.update({("unit", k.key): ev.cell(k.unit) for k in S.KPIS.values()
                    if isinstance(k.unit, Node)})
        out.update({(t, h): column_array(column(t, h)) for t, h in also})
        out.update({("model", k): m for k, m in models.items()})
        return out

    for t in S.TABLES:
        for c in t.computed:
            column(t.name, c.header)

    shapes = {}
    for a in S.ARRAY.values():
        formulas[a.key] = S.Cell(S.KPIS_SHEET, 0, 0, expr=a.expr, key=a.key, array=True)
        shapes[a.key] = shape_of(value_of(a.key))
    plan = S.plan(rows, shapes)
    plan.cells = [replace(c, value=given[c.key]) if c.key in given and c.expr is None else c
                  for c in plan.cells]
    for c in plan.cells:
        if c.key is not None:
            (formulas if c.expr is not None else constants)[c.key] = c
    constants = {k: c.value for k, c in constants.items()}

    cells: dict[tuple[str, int, int], Any] = {}
    for c in plan.formulas():
        v = value_of(c.key) if c.key is not None else ev.cell(c.expr, array=c.array)
        if c.array:
            for i, row in enumerate(as_grid(v)):
                for j, x in enumerate(row):
                    cells[(c.sheet, c.row + i, c.col + j)] = x
        else:
            cells[(c.sheet, c.row, c.col)] = v
    values = {k: value_of(k) for k in formulas}
    return Evaluation(columns, rows, names, plan, values, cells)


def as_grid(v: Any) -> list[list]:
    """A formula's value as a 2-D list (a single value as one cell)."""
    return v if isinstance(v, list) else [[v]]


def shape_of(v: Any) -> tuple[int, int]:
    """The rows and columns a formula's value fills."""
    g = as_grid(v)
    return len(g), max(len(r) for r in g)
