"""Write the template workbook with XlsxWriter, its formula cells carrying their values.

:func:`build_workbook` / :func:`write_workbook` write an ``.xlsx`` or ``.xlsm`` whose formula
cells carry the values :func:`xl_kpis.book.evaluate.evaluate_book` computed, so the workbook
shows numbers before anything recalculates.  Same input, same bytes.

The ``.xlsx`` is the xlwings Lite template: its function calls are stored as
Excel stores calls of Office.js custom functions (``_xldudf_ROAS(...)``, a
single-cell dynamic-array formula outside tables) and it carries the Lite
add-in parts with the generated ``main.py`` (:mod:`xl_kpis.officejs`,
:mod:`xl_kpis.book.litecode`).  The ``.xlsm`` is for classic (VBA) xlwings:
plain names, as Excel stores VBA functions.
"""

from __future__ import annotations

import gc
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

from .. import functions, officejs
from ..xlsx import books
from ..xlsx.dates import to_serial
from ..xlsx.errors import is_error
from ..xlsx.refs import a1
from . import files, patch
from . import schema as S
from .evaluate import Evaluation, as_grid, evaluate_book, shape_of
from .formulas import RenderContext, functions_used, render

__all__ = ["ExtraColumn", "workbook_bytes", "build_workbook", "write_workbook", "vba_project_path",
           "CREATED", "CALC_ID"]

#: The fixed creation time written into the file (the build is reproducible).
CREATED = datetime(2026, 1, 1)
#: Excel's calculation engine id of Excel 2016+ / 365.  With it, and without
#: ``fullCalcOnLoad``, Excel shows the cached values instead of recalculating
#: the UDFs (which would show #NAME? until xlwings has loaded).
CALC_ID = 191029
#: Data validation reaches this many rows below the header at least.
VALIDATION_ROWS = 5000

VBA_DIR = Path(__file__).with_name("vba")


# --- writing ----------------------------------------------------------------------------

class _EmptyText(str):
    """A formula's empty-text result ("").

    XlsxWriter writes a cached value of ``""`` as an untyped empty value,
    which readers take for "no cached value"; Excel itself writes a formula
    that returns "" as ``t="str"`` with an empty value.  This subclass of
    ``str`` compares unequal to everything, so XlsxWriter takes the
    "string result" branch and writes exactly that.
    """

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    __hash__ = str.__hash__


_EMPTY = _EmptyText("")


def _cached(v: Any) -> Any:
    """A value as XlsxWriter's cached formula value."""
    if v is None:
        return 0
    if isinstance(v, str) and v == "":
        return _EMPTY
    if isinstance(v, (date, datetime)):
        return to_serial(v)
    return v


STYLES: dict[str, dict[str, Any]] = {
    "title": {"bold": True, "font_size": 16, "font_color": "#1F3864"},
    "help": {"italic": True, "font_color": "#404040"},
    "section": {"bold": True, "font_size": 12, "font_color": "#1F3864", "bottom": 1,
                "bottom_color": "#8EA9DB"},
    "header": {"bold": True, "bg_color": "#D9E1F2", "text_wrap": True, "valign": "top",
               "border": 1, "border_color": "#B4C6E7"},
    "label": {"valign": "top"},
    "text": {"valign": "top"},
    "note": {"font_color": "#595959", "text_wrap": True, "valign": "top"},
    "input": {"bg_color": "#FFF2CC", "border": 1, "border_color": "#BF9000", "valign": "top"},
    "value": {"bold": True, "valign": "top"},
    "formula": {"font_name": "Consolas", "font_size": 9, "font_color": "#375623",
                "text_wrap": True, "valign": "top"},
    "rating": {"bold": True, "align": "center", "valign": "top"},
    "tile_label": {"bold": True, "font_color": "#595959", "align": "center",
                   "text_wrap": True, "top": 2, "top_color": "#8EA9DB"},
    "tile_value": {"bold": True, "font_size": 14, "align": "center", "bottom": 2,
                   "bottom_color": "#8EA9DB", "font_color": "#1F3864"},
    "table_header": {"bold": True, "text_wrap": True, "valign": "top"},
    "computed_header": {"bold": True, "text_wrap": True, "valign": "top",
                        "bg_color": "#7F7F7F", "font_color": "#FFFFFF"},
    "cell": {},
    "computed": {"bg_color": "#EDEDED"},
    "config_key": {"bold": True},
}

RATING_COLOURS = {"weak": ("#FFC7CE", "#9C0006"), "ok": ("#FFEB9C", "#9C5700"),
                  "good": ("#C6EFCE", "#006100"), "not so good": ("#FFC7CE", "#9C0006")}


class _Formats:
    """Cell formats by (style role, number format), created once each."""

    def __init__(self, wb):
        self._wb = wb
        self._cache: dict[tuple[str, str | None], Any] = {}

    def __call__(self, style: str, fmt: str | None = None):
        key = (style, fmt)
        if key not in self._cache:
            props = dict(STYLES[style])
            if fmt:
                props["num_format"] = fmt
            self._cache[key] = self._wb.add_format(props)
        return self._cache[key]


def _write_value(ws, row: int, col: int, v: Any, fmt) -> None:
    """Write a constant with the writer of its type (never as a formula or URL)."""
    if v is None:
        if fmt is not None:
            ws.write_blank(row, col, None, fmt)
    elif isinstance(v, bool):
        ws.write_boolean(row, col, v, fmt)
    elif isinstance(v, (int, float)):
        ws.write_number(row, col, v, fmt)
    elif isinstance(v, (datetime, date)):
        ws.write_datetime(row, col, v if isinstance(v, datetime)
                          else datetime(v.year, v.month, v.day), fmt)
    else:
        ws.write_string(row, col, str(v), fmt)


def _validation(rule: S.Rule, title: str, help: str) -> dict[str, Any]:
    """XlsxWriter data-validation options of a rule."""
    opts: dict[str, Any] = {"validate": rule.validate, "error_title": title[:32],
                            "error_message": f"{title}: {rule.message}."[:255]}
    if help:
        opts.update(input_title=title[:32], input_message=help[:255])
    if rule.validate == "list":
        opts["source"] = list(rule.choices)
    elif rule.maximum is None:
        opts.update(criteria=">=", value=rule.minimum)
    else:
        opts.update(criteria="between", minimum=rule.minimum, maximum=rule.maximum)
    return opts


#: Column width (characters) that fits on one landscape A4 page at a readable size.
PAGE_WIDTH = 250


def _page_setup(ws, last_row: int, last_col: int, repeat_row: int | None = None,
                width: float = 0) -> None:
    """Landscape A4, as many pages wide as the columns need, all rows."""
    ws.set_landscape()
    ws.set_paper(9)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.fit_to_pages(max(1, -(-int(width) // PAGE_WIDTH)), 0)
    ws.print_area(0, 0, last_row, last_col)
    if repeat_row is not None:
        ws.repeat_rows(repeat_row)


@dataclass(frozen=True)
class ExtraColumn:
    """A column a seller added to a table: its header, its values (the cached values
    of its formula, if it has one) and its calculated-column formula (or None)."""

    header: str
    values: Sequence[Any]
    formula: str | None = None


def _write_table(ws, fmts: _Formats, t: S.Table, ev: Evaluation, lite: bool,
                 extra: Sequence[ExtraColumn] = ()) -> None:
    """An input table with its calculated columns, then the columns a seller added.

    In the Lite template (``lite``) the UDF calls of a calculated column are
    spelled ``_xldudf_NAME`` in plain formula cells (no dynamic-array flag):
    no Excel-saved example of a custom function in a table's calculated
    column is known; this form passes the OOXML validator, keeps a table's
    cells ordinary formulas (as appended rows write them) and LibreOffice
    keeps their cached values.  A seller's formula is written in the
    spelling of the book written (:func:`_spelled`).
    """
    n = ev.rows[t.name]
    hr, first = t.header_row, t.first_data_row
    columns = []
    for c in t.columns:
        spec: dict[str, Any] = {"header": c.header}
        if isinstance(c, S.Input):
            spec["header_format"] = fmts("table_header")
            spec["format"] = fmts("cell", c.fmt)
        else:
            spec["header_format"] = fmts("computed_header")
            spec["format"] = fmts("computed", c.fmt)
            spec["formula"] = t.formula(c.header, officejs=lite)
        columns.append(spec)
    extra = [x if x.formula is None else
             ExtraColumn(x.header, x.values, _spelled(x.formula, lite)) for x in extra]
    for x in extra:
        columns.append({"header": x.header, "header_format": fmts("table_header"),
                        **({"formula": "=" + x.formula} if x.formula else {})})
    ws.add_table(hr, 0, hr + n, len(columns) - 1,
                 {"name": t.name, "style": "Table Style Medium 2", "columns": columns})
    for k, x in enumerate(extra):
        j = len(t.columns) + k
        ws.set_column(j, j, max(12, _header_width_of(x.header)))
        for i, v in enumerate(list(x.values)[:n]):
            if x.formula:
                ws.write_formula(first + i, j, "=" + x.formula, None, _cached(v))
            else:
                _write_value(ws, first + i, j, v, None)
    data = ev.columns[t.name]
    for j, c in enumerate(t.columns):
        ws.set_column(j, j, c.col_width)
        values = data[c.header]
        if isinstance(c, S.Input):
            fmt = fmts("cell", c.fmt)
            for i, v in enumerate(values):
                _write_value(ws, first + i, j, v, fmt)
            if c.rule is not None:
                last = max(first + n + 1000, hr + VALIDATION_ROWS)
                ws.data_validation(first, j, last, j, _validation(c.rule, c.header, c.help))
        else:
            formula = t.formula(c.header, officejs=lite)
            fmt = fmts("computed", c.fmt)
            for i, v in enumerate(values):
                ws.write_formula(first + i, j, formula, fmt, _cached(v))
    ws.set_row(hr, 32)
    ws.freeze_panes(first, 1)
    _page_setup(ws, hr + n, len(columns) - 1, repeat_row=hr,
                width=sum(c.col_width for c in t.columns) + 12 * len(extra))


def _spelled(formula: str, lite: bool) -> str:
    """A seller's formula with its UDF calls spelled as the book written stores them:
    ``_xldudf_ROAS`` in the Lite template, ``ROAS`` in the classic one (whatever the book
    it came from held)."""
    formula = officejs.plain(formula)
    return officejs.stored(formula, _UDFS) if lite else formula


def _header_width_of(header: str) -> float:
    return max((len(w) for w in header.split()), default=0) + 2.5


_UDFS = frozenset(functions.__all__)


def _write_cells(ws, fmts: _Formats, cells: Sequence[S.Cell], ev: Evaluation,
                 lite: dict[str, Any] | None) -> None:
    """The planned cells of a sheet.

    ``lite`` (the Lite template) collects ``ref -> cached value`` of the
    dynamic-array formulas written: a formula that calls a UDF is written as
    Excel saves a custom-function call, a single-cell dynamic-array formula,
    and XlsxWriter types the cached value of such a cell only as a number or
    text (:func:`_lite_package` writes the others).
    """
    address = ev.plan.address
    for c in cells:
        fmt = fmts(c.style, c.fmt)
        if c.span:
            ws.merge_range(c.row, c.col, c.row, c.col + c.span, "", fmt)
        if c.expr is None:
            _write_value(ws, c.row, c.col, c.value, fmt)
            if c.rule is not None:
                ws.data_validation(c.row, c.col, c.row, c.col,
                                   _validation(c.rule, c.name or "Value", ""))
            continue
        formula = render(c.expr, RenderContext(c.sheet, address=address,
                                               officejs=lite is not None))
        if not c.array:
            value = ev.cells[(c.sheet, c.row, c.col)]
            if lite is not None and functions_used(c.expr) & _UDFS:
                ws.write_dynamic_array_formula(c.row, c.col, c.row, c.col, formula, fmt,
                                               _cached(value))
                lite[a1(c.row, c.col)] = 0.0 if value is None else value
            else:
                ws.write_formula(c.row, c.col, formula, fmt, _cached(value))
            continue
        _write_array(ws, fmts, c, formula, ev)
        if lite is not None:
            top = as_grid(ev.values[c.key])[0][0]
            lite[a1(c.row, c.col)] = 0.0 if top is None else top


def _write_array(ws, fmts: _Formats, c: S.Cell, formula: str, ev: Evaluation) -> None:
    """A dynamic array formula over its exact result, every cell with its value.

    The first row of a table result is its header row (styled as a header).
    """
    grid = as_grid(ev.values[c.key])
    col_fmts = S.ARRAY[c.key].fmts
    n_rows, n_cols = shape_of(grid)

    def fmt_of(i: int, j: int):
        if i == 0 and n_rows > 1:
            return fmts("header")
        return fmts("value", col_fmts[j] if j < len(col_fmts) else None)

    ws.write_dynamic_array_formula(c.row, c.col, c.row + n_rows - 1, c.col + n_cols - 1,
                                   formula, fmt_of(0, 0), _cached(grid[0][0]))
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if i or j:
                # an error value: a blank here, made an error cell by _with_error_cells
                _write_value(ws, c.row + i, c.col + j,
                             None if is_error(v) else "" if v is None else v, fmt_of(i, j))


#: Characters per unit of column width, and points per line, of wrapped text by style.
_WRAP = {"formula": (1.25, 12.0), "header": (1.1, 15.0), "tile_label": (1.0, 15.0)}
_WRAP_DEFAULT = (1.2, 15.0)


def _row_heights(ws, cells: Sequence[S.Cell], widths: Sequence[float]) -> None:
    """Set the height of rows whose wrapped text needs more than one line.

    Excel fits such rows when it loads a file, LibreOffice does not; an
    estimate from the text length and the column width suits both.
    """
    height: dict[int, float] = {}
    for c in cells:
        if not isinstance(c.value, str) or not STYLES[c.style].get("text_wrap"):
            continue
        width = sum(widths[c.col:c.col + c.span + 1]) if c.col < len(widths) else 10
        per_char, per_line = _WRAP.get(c.style, _WRAP_DEFAULT)
        chars = max(int(width * per_char) - 1, 1)
        lines = sum(max(-(-len(part) // chars), 1) for part in c.value.split("\n"))
        if lines > 1:
            height[c.row] = max(height.get(c.row, 15.0), lines * per_line + 2)
    for row, h in sorted(height.items()):
        ws.set_row(row, h)


def _rating_colours(wb, ws, sheet: str, ev: Evaluation) -> None:
    """Colour the weak / ok / good ratings of a sheet."""
    cells = [c for c in ev.plan.cells if c.sheet == sheet and c.style == "rating"]
    for col in sorted({c.col for c in cells}):
        rows = [c.row for c in cells if c.col == col]
        for word, (bg, fg) in RATING_COLOURS.items():
            ws.conditional_format(min(rows), col, max(rows), col, {
                "type": "cell", "criteria": "==", "value": f'"{word}"',
                "format": wb.add_format({"bg_color": bg, "font_color": fg})})


#: The heat map's colour scale: white at 0, Excel's green at the highest value.
HEAT_MAP = {"type": "2_color_scale", "min_type": "num", "min_value": 0,
            "min_color": "#FFFFFF", "max_type": "max", "max_color": "#63BE7B"}


def _heat_maps(ws, sheet: str, ev: Evaluation) -> None:
    """The planned heat maps of a sheet as colour-scale conditional formats (blank and
    text cells stay uncoloured)."""
    for s, r0, c0, r1, c1 in ev.plan.heat_maps:
        if s == sheet:
            ws.conditional_format(r0, c0, r1, c1, dict(HEAT_MAP))


def _write_sheet(wb, ws, fmts: _Formats, sheet: str, ev: Evaluation,
                 lite: dict[str, Any] | None) -> None:
    cells = [c for c in ev.plan.cells if c.sheet == sheet]
    widths = S.WIDTHS.get(sheet, ())
    for j, w in enumerate(widths):
        ws.set_column(j, j, w)
    _write_cells(ws, fmts, cells, ev, lite)
    _row_heights(ws, cells, widths)
    _rating_colours(wb, ws, sheet, ev)
    _heat_maps(ws, sheet, ev)
    last_col = len(S.WIDTHS.get(sheet, ())) - 1
    last_row = ev.plan.print_rows.get(sheet, max(c.row for c in cells))
    if sheet == S.DASH:
        ws.hide_gridlines(2)
        last_col = S.DASH_DATA_COL + 1
    if sheet == S.START:
        ws.hide_gridlines(2)
    if sheet == S.KPIS_SHEET:
        ws.freeze_panes(4, 1)
    _page_setup(ws, last_row, last_col)


def _add_chart(wb, ws, spec: S.ChartSpec, sheet_of: Mapping[str, Any]) -> None:
    chart = wb.add_chart({"type": spec.kind} if spec.subtype is None
                         else {"type": spec.kind, "subtype": spec.subtype})
    cs, cr0, cc, cr1 = spec.categories
    vs, vr0, vc, vr1 = spec.values
    series: dict[str, Any] = {"name": spec.series,
                              "categories": [cs, cr0, cc, cr1, cc],
                              "values": [vs, vr0, vc, vr1, vc],
                              "fill": {"color": "#2F5597"}, "line": {"color": "#2F5597"}}
    if spec.kind in ("bar", "column"):
        series["data_labels"] = {"value": True, "num_format": spec.number_format}
        series["gap"] = 60
    else:
        series["marker"] = {"type": "circle", "size": 5}
    chart.add_series(series)
    chart.set_title({"name": spec.title, "name_font": {"size": 12}})
    chart.set_legend({"none": True})
    value_axis = {"num_format": spec.number_format, "major_gridlines": {"visible": True,
                  "line": {"color": "#D9D9D9"}}}
    if spec.log_axis:
        value_axis["log_base"] = 10
    category_axis: dict[str, Any] = {}
    if spec.kind == "bar":
        category_axis["reverse"] = True        # first item on top
        chart.set_x_axis(value_axis)
        chart.set_y_axis(category_axis)
    else:
        if spec.kind == "line":
            category_axis.update(date_axis=True, num_format="mmm yy")
        chart.set_x_axis(category_axis)
        chart.set_y_axis(value_axis)
    chart.set_size({"width": 710, "height": 300})
    ws.insert_chart(spec.anchor[0], spec.anchor[1], chart, {"x_offset": 4, "y_offset": 4})


def _write_config_sheet(wb, fmts: _Formats) -> None:
    """The ``xlwings.conf`` sheet: keys in A1 down, values in B (as xlwings reads it)."""
    ws = wb.add_worksheet(S.CONFIG_SHEET)
    for j, w in enumerate(S.WIDTHS[S.CONFIG_SHEET]):
        ws.set_column(j, j, w)
    for i, (k, v) in enumerate(S.CONFIG):
        ws.write_string(i, 0, k, fmts("config_key"))
        ws.write_string(i, 1, v)
    notes = ("xlwings reads its settings from this sheet: keys in column A from A1"
             " down to the first empty cell, values in column B.",
             "UDF Modules = xl_kpis.udfs makes 'Import Functions' import the KPI"
             " functions of the xl-kpis package.",
             "Other keys (Interpreter_Win, Conda Path ...) may be added below; a key"
             " left out falls back to the add-in or user settings.")
    for i, line in enumerate(notes):
        ws.write_string(i, 3, line, fmts("note"))
    _page_setup(ws, max(len(notes), len(S.CONFIG)) - 1, 3)


def vba_project_path() -> Path:
    """The xlwings VBA project embedded in ``.xlsm`` files (see ``vba/README.md``)."""
    path = VBA_DIR / "vbaProject.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the package was installed without its"
                                " data files (see xl_kpis/book/vba/README.md)")
    return path


def extract_vba_project(dest: Path | None = None) -> Path:
    """Copy ``xl/vbaProject.bin`` out of the installed xlwings' ``quickstart_standalone.xlsm``.

    This is how ``vba/vbaProject.bin`` was made; the build uses the committed
    copy so that its output does not depend on the installed xlwings.
    """
    import xlwings

    src = Path(xlwings.__file__).with_name("quickstart_standalone.xlsm")
    dest = dest or VBA_DIR / "vbaProject.bin"
    with zipfile.ZipFile(src) as z:
        dest.write_bytes(z.read("xl/vbaProject.bin"))
    return dest


def write_workbook(path: str | Path, ev: Evaluation,
                   extra_columns: Mapping[str, Sequence[ExtraColumn]] | None = None) -> Path:
    """Write an evaluated template to ``path`` (``.xlsx`` or ``.xlsm``).

    Parameters
    ----------
    path : str or Path
        The output file; its suffix decides the format.  ``.xlsm`` embeds the
        xlwings VBA project and adds the ``xlwings.conf`` sheet; ``.xlsx`` is
        the xlwings Lite template (``_xldudf_`` calls, the Lite add-in parts
        with the generated ``main.py``).
    ev : Evaluation
        From :func:`~xl_kpis.book.evaluate.evaluate_book`.
    extra_columns : mapping, optional
        ``table -> columns`` a seller added to the tables (written after the
        template's columns, as they were).

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    The file is written atomically under the book's lock
    (:mod:`xl_kpis.book.files`): a crash or a kill while writing leaves the
    file that was there before (if any), never a broken one; a symlink is
    written through to its target.

    Raises
    ------
    xl_kpis.book.files.BookLocked
        ``path`` is open in Excel or LibreOffice, or another xl-kpis writes it.
    xl_kpis.book.files.BookWriteError
        ``path`` cannot be written (read-only folder, full disk).
    """
    path = Path(path)
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise ValueError(f"the workbook must be .xlsx or .xlsm, not {path.name!r}")
    files.make_folder(path)
    with files.write_errors(path):        # XlsxWriter's own temporary files
        book = workbook_bytes(ev, path.suffix.lower() == ".xlsm", extra_columns)
    with files.writing(path), files.atomic_write(path) as f:
        f.write(book)
    return path


def workbook_bytes(ev: Evaluation, macro: bool = False,
                   extra_columns: Mapping[str, Sequence[ExtraColumn]] | None = None) -> bytes:
    """The ``.xlsx`` (``macro``: ``.xlsm``) file of an evaluated template, in memory (what
    :func:`write_workbook` writes): the ``.xlsx`` is the xlwings Lite template."""
    data = _Buffer()
    lite = _write_xlsx(data, macro, ev, extra_columns or {})
    book = _with_error_cells(_with_chart_caches(data.getvalue(), ev), ev)
    return book if lite is None else _lite_package(book, lite, ev)


class _Buffer(io.BytesIO):
    """The in-memory book XlsxWriter writes into; closing it does nothing.

    When XlsxWriter fails half way (a full disk under its temporary files), its zip
    file stays open on this buffer; the garbage collector may finalize the buffer
    first, and the zip's own finalizer would then print a traceback as it writes its
    directory into a closed file.
    """

    def close(self) -> None:
        pass


def _array_errors(ev: Evaluation) -> dict[str, dict[str, str]]:
    """``sheet -> ref -> error`` of the cells of array results that hold an error value."""
    out: dict[str, dict[str, str]] = {}
    for c in ev.plan.cells:
        if c.array:
            for i, row in enumerate(as_grid(ev.values[c.key])):
                for j, v in enumerate(row):
                    if is_error(v):
                        out.setdefault(c.sheet, {})[a1(c.row + i, c.col + j, False)] = v
    return out


def _with_error_cells(book: bytes, ev: Evaluation) -> bytes:
    """The written book with the error values of array results as error cells (``t="e"``).

    XlsxWriter writes an array formula's error result as text and has no error
    constant for the cells it spills into (:func:`_write_array` leaves those
    blank); a refresh writes both as errors, as Excel does, so the build does too.
    """
    import re

    errors = _array_errors(ev)
    if not errors:
        return book
    with zipfile.ZipFile(io.BytesIO(book)) as z:
        infos = z.infolist()
        data = {i.filename: z.read(i) for i in infos}
        parts = books.sheet_parts(z)
    for sheet, cells in errors.items():
        def cell(m: re.Match) -> str:
            attrs = re.sub(r' t="[^"]*"', "", m["attrs"])
            if m["inner"] and "<f" in m["inner"]:         # the anchor: its cached value
                return f'<c r="{m["ref"]}"{attrs} t="e">{m["inner"]}</c>'
            return f'<c r="{m["ref"]}"{attrs} t="e"><v>{cells[m["ref"]]}</v></c>'

        refs = "|".join(map(re.escape, cells))
        xml = re.sub(rf'<c r="(?P<ref>{refs})"(?P<attrs>[^>]*?)\s*(?:/>|>(?P<inner>.*?)</c>)',
                     cell, data[parts[sheet]].decode("utf-8"))
        data[parts[sheet]] = xml.encode("utf-8")
    return _repacked(infos, data)


def _repacked(infos: list[zipfile.ZipInfo], parts: Mapping[str, bytes]) -> bytes:
    """The package of ``parts`` (name -> bytes, in that order): each part stamped as its
    entry of ``infos`` (the package they were read from), a new part as the first entry is."""
    known = {i.filename: i for i in infos}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in parts.items():
            info = known.get(name)
            if info is None:          # a new part, stamped like the others
                info = zipfile.ZipInfo(name, infos[0].date_time)
                info.compress_type = infos[0].compress_type
                info.external_attr = infos[0].external_attr
            z.writestr(info, content)
    return out.getvalue()


def _write_xlsx(file: BinaryIO, macro: bool, ev: Evaluation,
                extra_columns: Mapping[str, Sequence[ExtraColumn]]
                ) -> dict[str, dict[str, Any]] | None:
    """The workbook written by XlsxWriter into a binary file (in memory: a failure to
    write the book then never meets XlsxWriter's half-closed zip).

    Returns the Lite template's ``sheet -> {ref: cached value}`` of the
    dynamic-array formulas written (for :func:`_lite_package`), None for ``macro``.
    """
    import xlsxwriter
    from xlsxwriter.exceptions import FileCreateError

    wb = xlsxwriter.Workbook(file, {"constant_memory": False,
                                    "strings_to_numbers": False,
                                    "strings_to_formulas": False,
                                    "strings_to_urls": False})
    wb.set_properties({"title": "TikTok shop KPIs", "subject": "TikTok sales KPIs",
                       "author": "xl-kpis", "company": "", "created": CREATED,
                       "comments": "Built by xl-kpis (xl-kpis build)."})
    wb.set_calc_mode("auto", calc_id=CALC_ID)
    wb.calc_on_load = False     # keep the cached values; see CALC_ID
    if macro:
        wb.add_vba_project(str(vba_project_path()))
    fmts = _Formats(wb)
    sheets = {name: wb.add_worksheet(name) for name in S.SHEETS}
    # Lite template: sheet -> {ref: cached value} of the dynamic-array formulas written
    lite: dict[str, dict[str, Any]] | None = None if macro else {n: {} for n in S.SHEETS}
    for s in S.SETTINGS:
        row, col = ev.plan.address(f"setting.{s.name}")[1:]
        wb.define_name(s.name, f"={S.START}!{a1(row, col, absolute=True)}")
    for t in S.TABLES:
        _write_cells(sheets[t.sheet], fmts, [c for c in ev.plan.cells if c.sheet == t.sheet],
                     ev, None if lite is None else lite[t.sheet])
        _write_table(sheets[t.sheet], fmts, t, ev, lite is not None,
                     extra_columns.get(t.name, ()))
    for name in (S.START, S.KPIS_SHEET, S.CUSTOMERS_SHEET, S.BENCH_SHEET, S.DASH):
        _write_sheet(wb, sheets[name], fmts, name, ev, None if lite is None else lite[name])
    for spec in ev.plan.charts:
        _add_chart(wb, sheets[S.DASH], spec, sheets)
    if macro:
        _write_config_sheet(wb, fmts)
    sheets[S.START].activate()
    try:
        wb.close()
    except FileCreateError as e:  # XlsxWriter's wrapper of the OSError of a failed write
        cause = e.args[0] if e.args else None
        error = cause if isinstance(cause, OSError) else e
        # XlsxWriter's half-written zip lives on in the frames of these tracebacks: dropped
        # and collected now, it closes while ``file`` is open, not at exit with a stray
        # traceback
        error.__traceback__ = e.__traceback__ = None
    else:
        return lite
    gc.collect()
    raise error


def function_ids(ev: Evaluation) -> list[str]:
    """The stored names (``_xldudf_ROAS``) of the UDFs the template's formulas call, sorted."""
    used = set()
    for _, expr in S.all_formulas(ev.plan):
        used |= functions_used(expr) & _UDFS
    return sorted(officejs.stored_name(f) for f in used)


def _lite_package(data: bytes, arrays: Mapping[str, Mapping[str, Any]],
                  ev: Evaluation) -> bytes:
    """The Lite template from XlsxWriter's package: the cached values of its
    dynamic-array formulas typed as Excel types them (errors ``t="e"``, booleans
    ``t="b"``), and the xlwings Lite parts added (:func:`officejs.add_webextension`)."""
    from . import litecode

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        parts = {i.filename: z.read(i) for i in infos}
        sheet_of = {part: name for name, part in books.sheet_parts(z).items()}
    for part, sheet in sheet_of.items():
        values = arrays.get(sheet)
        if values:
            parts[part] = b"".join(patch.patch_cells(
                parts[part], lambda ref, _, v=values: v.get(ref, patch.KEEP)))
    properties = {"main.py": litecode.main_py(), "pyodideVersion": officejs.PYODIDE_VERSION,
                  "addinVersion": officejs.ADDIN_VERSION,
                  "requirements.txt": litecode.requirements_txt()}
    return _repacked(infos, officejs.add_webextension(parts, properties, function_ids(ev)))


def _with_chart_caches(book: bytes, ev: Evaluation) -> bytes:
    """The written book with every chart caching the values its cells show.

    XlsxWriter caches a blank or an empty-text formula result as a point (0,
    or ""), which a viewer that draws from the cache shows as a bar or a
    label; :func:`charts.rewrite_chart` caches no point for it, as Excel does.
    """
    from .charts import chart_parts, rewrite_chart

    with zipfile.ZipFile(io.BytesIO(book)) as z:
        infos = z.infolist()
        data = {i.filename: z.read(i) for i in infos}
        new = {p: rewrite_chart(data[p], lambda area: None, ev.chart_values)
               for p in chart_parts(z)}
    if all(new[p] is data[p] for p in new):
        return book
    data.update(new)
    return _repacked(infos, data)


def build_workbook(path: str | Path, demo: bool = False, seed: int | None = None,
                   tables: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
                   settings: Mapping[str, Any] | None = None,
                   extra_columns: Mapping[str, Sequence[ExtraColumn]] | None = None
                   ) -> Evaluation:
    """Build the template workbook.

    Parameters
    ----------
    path : str or Path
        ``.xlsx`` or ``.xlsm`` output file.
    demo : bool
        Fill the tables with the synthetic demo shop (:mod:`xl_kpis.book.demo`).
    seed : int, optional
        Seed of the demo data (:data:`xl_kpis.book.demo.SEED` by default).
    tables : mapping, optional
        Input columns to write instead (``table -> key -> values``).
    settings : mapping, optional
        Settings overriding the defaults (``Margin``, ``RefundRate`` ...), and
        other input cells (:func:`schema.input_cells`).
    extra_columns : mapping, optional
        Columns a seller added to the tables (see :func:`write_workbook`).

    Returns
    -------
    Evaluation
        What was written (row counts, values).
    """
    if tables is None:
        if demo:
            from . import demo as demo_data
            tables = demo_data.tables(demo_data.SEED if seed is None else seed)
        else:
            tables = {}
    ev = evaluate_book(tables, settings)
    write_workbook(path, ev, extra_columns)
    return ev
