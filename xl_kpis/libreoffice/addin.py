"""The Calc add-in component: runs inside LibreOffice's own Python.

This file is copied into the extension (``.oxt``) by
:func:`xl_kpis.libreoffice.build_oxt`, after :mod:`xl_kpis.libreoffice.binding`
and behind a generated header that sets
``FUNCTIONS`` (every UDF of :mod:`xl_kpis.udfs`: its parameters and texts)
and ``SITE_DIRS`` (where the Python environment that built the extension
keeps ``xl_kpis``, numpy and xlwings).  LibreOffice's Python loader imports
it; it imports :mod:`xl_kpis.udfs` at the first call, so Calc starts as fast
as without it.

What crosses the boundary (LibreOffice ``ScInterpreter::ScExternal`` and
``ScUnoAddInCall::SetResult``, ``sc/source/core/tool/interpr4.cxx`` and
``addincol.cxx``):

* every parameter of a function is declared ``any``: a number or a text
  arrives as a float or a str, a range as a tuple of row tuples (an empty
  cell as ``""``), an omitted optional argument as None.  A single empty
  cell would arrive as 0.0 and an error cell would stop the call, so the
  binding (:mod:`xl_kpis.libreoffice.binding`) passes references through
  ``XLKPIS_ARG`` (a ``com.sun.star.table.XCellRange`` parameter:
  :func:`cells_of`), which hands blanks and error texts over as xlwings does;
* every result is a ``[][]any`` matrix (1 x 1 for one value): Calc shows its
  top-left value in a cell and spills it under an array formula;
* an error value (``"#DIV/0!"`` ...) becomes a NaN whose low bits carry
  LibreOffice's error code (``formula/errorcodes.hxx``
  ``CreateDoubleError``): the cell shows that error, alone or inside a
  matrix.
"""

import re
import struct
import sys

import uno
import unohelper
from com.sun.star.lang import XLocalizable, XServiceInfo, XServiceName
from com.sun.star.sheet import XAddIn, XCompatibilityNames
from com.sun.star.document import XDocumentEventListener

FUNCTIONS = globals().get("FUNCTIONS", {})      # set by the generated header
SITE_DIRS = globals().get("SITE_DIRS", [])      # set by the generated header
IMPLEMENTATION = globals().get("IMPLEMENTATION", "org.xlkpis.calc.KpiFunctions")
INTERFACE = globals().get("INTERFACE", "org.xlkpis.calc.XKpiFunctions")

#: LibreOffice's FormulaError codes of the Excel error values.  Written out here rather than
#: keyed by :mod:`xl_kpis.xlsx.errors`: LibreOffice's Python imports this file from the
#: extension before ``SITE_DIRS`` (where ``xl_kpis`` lives) is on ``sys.path``, which happens
#: at the first call; the codes are LibreOffice's own fact (the seven errors of ECMA-376).
ERROR_CODES = {"#NULL!": 521, "#DIV/0!": 532, "#VALUE!": 519, "#REF!": 524, "#NAME?": 525,
               "#NUM!": 503, "#N/A": 0x7FFF}


def error_double(text):
    """The double LibreOffice reads as the error ``text`` (#VALUE! for an unknown one)."""
    code = ERROR_CODES.get(text, ERROR_CODES["#VALUE!"])
    return struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000 | code))[0]


_udfs = None


def _load():
    global _udfs
    if _udfs is None:
        for d in reversed(SITE_DIRS):
            if d not in sys.path:
                sys.path.insert(0, d)
        import xl_kpis.udfs as udfs
        _udfs = udfs
    return _udfs


def _arg(a):
    """A UNO argument as the UDF takes it: ranges become lists of rows."""
    if isinstance(a, tuple):
        return [list(row) for row in a]
    return a


def _cell(v):
    if isinstance(v, str):
        return error_double(v) if v in ERROR_CODES else v
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if v is None:
        return ""
    if isinstance(v, (int, float)):
        return float(v)
    return error_double("#VALUE!")


def to_uno(result):
    """A UDF result as Calc takes it: a ``[][]any`` matrix (1 x 1 for one value)."""
    if isinstance(result, (list, tuple)):
        return tuple(tuple(_cell(v) for v in r) if isinstance(r, (list, tuple))
                     else (_cell(r),) for r in result)
    return ((_cell(result),),)


def call(name, args):
    """Call the UDF ``name`` with Calc's arguments; never raises."""
    try:
        udf = getattr(_load(), name)
        return to_uno(udf(*[_arg(a) for a in args]))
    except Exception:                                   # noqa: BLE001 - no traceback reaches a cell
        import traceback
        traceback.print_exc(file=sys.stderr)
        return ((error_double("#VALUE!"),),)


_ERROR_TEXTS = {code: text for text, code in ERROR_CODES.items()}


def cells_of(rng):
    """The cells of a range as xlwings hands them over with ``err_to_str``.

    A blank is ``""``, an error its text (``"#DIV/0!"``; LibreOffice's own
    ``Err:5xx`` codes read as ``"#VALUE!"``), numbers and texts as they are.
    """
    data = rng.getDataArray()
    errors = rng.queryFormulaCells(4)                   # com.sun.star.sheet.FormulaResult.ERROR
    if errors.getCount() == 0:
        return data
    rows = [list(r) for r in data]
    top = rng.getRangeAddress()
    for a in errors.getRangeAddresses():
        for r in range(a.StartRow, a.EndRow + 1):
            for c in range(a.StartColumn, a.EndColumn + 1):
                code = rng.getCellByPosition(c - top.StartColumn, r - top.StartRow).getError()
                rows[r - top.StartRow][c - top.StartColumn] = _ERROR_TEXTS.get(code, "#VALUE!")
    return tuple(tuple(r) for r in rows)


def _cells_method(self, rng):
    try:
        return cells_of(rng)
    except Exception:                                   # noqa: BLE001 - no traceback reaches a cell
        import traceback
        traceback.print_exc(file=sys.stderr)
        return ((error_double("#VALUE!"),),)


def _method(name):
    def method(self, *args):
        return call(name, args)
    method.__name__ = name
    return method


class _Addin:
    """The add-in: one method per function (and per spelling) of ``FUNCTIONS``."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.locale = None
        try:
            listen(ctx)
        except Exception:                               # noqa: BLE001
            import traceback
            traceback.print_exc(file=sys.stderr)

    # XAddIn: names and texts for the function wizard (also in CalcAddIns.xcu)
    def getProgrammaticFuntionName(self, display):
        for prog, f in FUNCTIONS.items():
            if f["display"] == display:
                return prog
        return ""

    def getDisplayFunctionName(self, prog):
        return FUNCTIONS[prog]["display"] if prog in FUNCTIONS else ""

    def getFunctionDescription(self, prog):
        return FUNCTIONS[prog]["description"] if prog in FUNCTIONS else ""

    def getDisplayArgumentName(self, prog, i):
        f = FUNCTIONS.get(prog)
        return f["params"][i][0] if f and 0 <= i < len(f["params"]) else ""

    def getArgumentDescription(self, prog, i):
        f = FUNCTIONS.get(prog)
        return f["params"][i][1] if f and 0 <= i < len(f["params"]) else ""

    def getProgrammaticCategoryName(self, prog):
        return "Add-In"

    def getDisplayCategoryName(self, prog):
        return "Add-In"

    # XCompatibilityNames: the name in .xlsx files, which Calc's OOXML import binds
    def getCompatibilityNames(self, prog):
        f = FUNCTIONS.get(prog)
        if not f:
            return ()
        name = uno.createUnoStruct("com.sun.star.sheet.LocalizedName")
        name.Locale = uno.createUnoStruct("com.sun.star.lang.Locale", "en", "US", "")
        name.Name = f["compat"]
        return (name,)

    # XLocalizable
    def setLocale(self, locale):
        self.locale = locale

    def getLocale(self):
        return self.locale

    # XServiceName, XServiceInfo
    def getServiceName(self):
        return IMPLEMENTATION

    def getImplementationName(self):
        return IMPLEMENTATION

    def supportsService(self, name):
        return name in self.getSupportedServiceNames()

    def getSupportedServiceNames(self):
        return (IMPLEMENTATION, "com.sun.star.sheet.AddIn")


_namespace = {prog: _cells_method if f.get("cells") else _method(f["udf"])
              for prog, f in FUNCTIONS.items()}
# the generated interface declares the methods of FUNCTIONS: a base of the class
_bases = ((uno.getClass(INTERFACE),) if FUNCTIONS else ()) + (
    _Addin, unohelper.Base, XAddIn, XCompatibilityNames, XServiceName, XServiceInfo, XLocalizable)
KpiFunctions = type("KpiFunctions", _bases, _namespace)


# --- binding the calls of an .xlsx/.xlsm to the add-in, after it is loaded ----------------
#
# LibreOffice 7.4's OOXML import does not bind an add-in's compatibility names
# (``FormulaCompiler::OpCodeMap::putExternalSoftly`` keeps the first symbol of
# an add-in function, its programmatic name, and drops the Excel name), so
# ``ROAS(...)`` and ``_xldudf_ROAS(...)`` load as unknown names (#NAME?).  A job
# on the document event "OnLoad" rewrites exactly those calls to the add-in's
# programmatic names, which the API grammar knows; the cells compute at once.

_CALL = call_pattern(f["udf"] for f in FUNCTIONS.values() if not f.get("cells"))
_ARG = next((p for p, f in FUNCTIONS.items() if f.get("cells")), "XLKPIS_ARG")


#: a run of cells shorter than this is written cell by cell rather than by a fill
FILL_MIN = 16


def bind_document(doc):
    """Rebind every call of ours in a spreadsheet document; return how many cells.

    Automatic calculation is off while the formulas are rewritten (each
    rewrite would otherwise recompute what depends on it).  A block of formula
    cells without array formulas is written column by column: a run of rows
    holding one formula filled down (a table column) by one fill
    (:func:`_write_column`), the other cells one by one; array formulas are
    set one range each.
    """
    if not doc.supportsService("com.sun.star.sheet.SpreadsheetDocument"):
        return 0
    from com.sun.star.sheet.CellFlags import ANNOTATION, FORMULA
    names = {}                                          # upper-case name -> one cell?
    for name in doc.NamedRanges.getElementNames():
        cells = doc.NamedRanges.getByName(name).getReferredCells()
        if cells is not None:
            a = cells.getRangeAddress()
            names[name.upper()] = a.StartColumn == a.EndColumn and a.StartRow == a.EndRow
    n = 0
    auto = doc.isAutomaticCalculationEnabled()
    doc.enableAutomaticCalculation(False)
    try:
        for sheet in doc.Sheets:
            noted = set()                               # cells with a comment: never filled
            for a in sheet.queryContentCells(ANNOTATION).getRangeAddresses():
                noted.update((c, r) for c in range(a.StartColumn, a.EndColumn + 1)
                             for r in range(a.StartRow, a.EndRow + 1))
            for addr in sheet.queryContentCells(FORMULA).getRangeAddresses():
                block = sheet.getCellRangeByPosition(addr.StartColumn, addr.StartRow,
                                                     addr.EndColumn, addr.EndRow)
                rows = block.getFormulaArray()
                new_rows, arrays, changed = [], {}, 0
                for r, row in enumerate(rows):
                    new_row = []
                    for c, text in enumerate(row):
                        new = bind_formula(text, _CALL, IMPLEMENTATION, _ARG, names)
                        if new is not None:
                            changed += 1
                            if new.startswith("{"):
                                arrays.setdefault(new, (addr.StartColumn + c, addr.StartRow + r))
                        new_row.append(text if new is None else new)
                    new_rows.append(tuple(new_row))
                if not changed:
                    continue
                n += changed
                if not arrays and not any(t.startswith("{") for row in rows for t in row):
                    for c in range(addr.EndColumn - addr.StartColumn + 1):
                        col = addr.StartColumn + c
                        _write_column(sheet, col, [
                            (addr.StartRow + r, new_rows[r][c]) for r in range(len(rows))
                            if new_rows[r][c] != rows[r][c]
                            and (col, addr.StartRow + r) not in noted])
                        for r in range(len(rows)):          # a comment's cell: by itself
                            if (col, addr.StartRow + r) in noted and new_rows[r][c] != rows[r][c]:
                                sheet.getCellByPosition(col, addr.StartRow + r).setFormula(
                                    new_rows[r][c])
                    continue
                for r, row in enumerate(rows):          # a block holding array formulas
                    for c, text in enumerate(row):
                        new = new_rows[r][c]
                        if new != text and not new.startswith("{"):
                            sheet.getCellByPosition(addr.StartColumn + c,
                                                    addr.StartRow + r).setFormula(new)
                done = set()
                for new, (col, row) in arrays.items():
                    cur = sheet.createCursorByRange(sheet.getCellByPosition(col, row))
                    cur.collapseToCurrentArray()
                    a = cur.getRangeAddress()
                    if (a.StartColumn, a.StartRow) not in done:
                        done.add((a.StartColumn, a.StartRow))
                        cur.setArrayFormula(new[1:-1])
    finally:
        doc.enableAutomaticCalculation(auto)
    return n


def _write_column(sheet, col, cells):
    """Write ``(row, formula)`` pairs (0-based rows, ascending) into column ``col``.

    Writing a formula cell by cell costs LibreOffice time in proportion to the
    formula group it joins (see :mod:`xl_kpis.libreoffice.binding`), so a run
    of rows with one formula filled down (:func:`fill_runs`) is written by
    setting its first cell and filling it down the run.  A fill also copies
    the first cell's formatting, so it never crosses a change of format: the
    run is cut where the sheet's format ranges are.
    """
    from com.sun.star.sheet.FillDirection import TO_BOTTOM

    runs, single = fill_runs([(r + 1, t) for r, t in cells], FILL_MIN)
    texts = dict(cells)
    for first, last, _ in runs:
        column = sheet.getCellRangeByPosition(col, first - 1, col, last - 1)
        formats = sorted((f.getRangeAddress() for f in column.getCellFormatRanges()),
                         key=lambda a: a.StartRow)
        for f in formats:
            top, bottom = max(f.StartRow, first - 1), min(f.EndRow, last - 1)
            if bottom < top:
                continue
            sheet.getCellByPosition(col, top).setFormula(texts[top])
            if bottom - top + 1 >= 2:
                sheet.getCellRangeByPosition(col, top, col, bottom).fillAuto(TO_BOTTOM, 1)
    for row, text in single:
        sheet.getCellByPosition(col, row - 1).setFormula(text)


class _OnLoad(unohelper.Base, XDocumentEventListener):
    """Calls :func:`bind_document` on every document LibreOffice loads ("OnLoadFinished"; a
    headless conversion sends no "OnLoad")."""

    def documentEventOccured(self, event):
        if event.EventName in ("OnLoadFinished", "OnLoad"):
            try:
                bind_document(event.Source)
            except Exception:                           # noqa: BLE001 - never break a load
                import traceback
                traceback.print_exc(file=sys.stderr)

    def disposing(self, source):
        pass


_listening = []


def listen(ctx):
    """Register :class:`_OnLoad` with the global event broadcaster (once per process).

    Calc creates the add-in while it compiles the first formula of the first
    document (before that document's "OnLoad"), so every spreadsheet loaded
    from then on is bound.
    """
    if _listening:
        return
    broadcaster = ctx.getValueByName("/singletons/com.sun.star.frame.theGlobalEventBroadcaster")
    listener = _OnLoad()
    broadcaster.addDocumentEventListener(listener)
    _listening.append(listener)


g_ImplementationHelper = unohelper.ImplementationHelper()
g_ImplementationHelper.addImplementation(KpiFunctions, IMPLEMENTATION,
                                         (IMPLEMENTATION, "com.sun.star.sheet.AddIn"))
