"""Binding a workbook's calls to the Calc add-in (pure Python: no UNO, no numpy).

LibreOffice 7.4's OOXML import does not bind an add-in function's
compatibility name: ``FormulaCompiler::OpCodeMap::putExternalSoftly``
(``formula/source/core/api/FormulaCompiler.cxx``) inserts a symbol only when
its add-in has no symbol yet, and the add-in's programmatic name
(``ORG.XLKPIS.CALC.KPIFUNCTIONS.ROAS``) is inserted first.  So ``ROAS(...)``
and ``_xldudf_ROAS(...)`` load as unknown names (``#NAME?``); saving such a
book from LibreOffice as ``.xlsx`` writes the programmatic names.  The add-in
rewrites those calls once a document is loaded (:func:`bind_formula`), in the
API grammar LibreOffice's ``getFormula`` speaks (``;`` between arguments).

This module is copied into the extension's component file before
:mod:`xl_kpis.libreoffice.addin`; the test suite imports it directly.
"""

import re

__all__ = ["call_pattern", "bind_formula", "split_args", "is_reference", "is_single_cell",
           "formula_shape", "fill_runs"]

XLDUDF = "_xldudf_"

_SHEET = r"(?:\$?'(?:[^']|'')+'\.|\$?[A-Za-z0-9_]+\.)?"
_CELL = _SHEET + r"\$?[A-Za-z]{1,3}\$?[0-9]+"
_CELL_REF = re.compile(r"^%s(?::%s)?$" % (_CELL, _CELL))
_TABLE_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*\[")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def call_pattern(udf_names):
    """A regex matching a call of one of ``udf_names``, plain or ``_xldudf_``-prefixed.

    Group 1 is the prefix (or None), group 2 the name; the match ends after
    the opening parenthesis.  Case does not matter (LibreOffice shows an
    unknown name in lower case).
    """
    names = sorted(set(udf_names), key=len, reverse=True)
    return re.compile(r"(?<![A-Za-z0-9_.])(%s)?(%s)\(" % (
        re.escape(XLDUDF), "|".join(map(re.escape, names)) or "(?!)"), re.IGNORECASE)


def _outside(text, i=0, depth=0):
    """``(index, character, depth)`` of each character of ``text`` from ``i`` that stands
    outside texts in double quotes and table references in brackets; ``depth`` counts the
    parentheses open (``depth`` of them before ``i``), after the character."""
    bracket, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = text.find('"', i + 1)
            i = n if j < 0 else j
        elif ch == "[":
            bracket += 1
        elif ch == "]":
            bracket -= 1
        elif not bracket:
            depth += (ch == "(") - (ch == ")")
            yield i, ch, depth
        i += 1


def _close(text, i):
    """Index of the parenthesis closing the one just before ``i``, or -1.

    Texts in double quotes and table references in brackets are skipped.

    >>> _close('F(")";T[a(b]+G(1))', 2), _close("F(1", 2)
    (17, -1)
    """
    return next((j for j, ch, depth in _outside(text, i, 1) if depth == 0), -1)


def split_args(text):
    """The top-level arguments of a call's argument text (separator ``;``).

    >>> split_args('A1;T[[#This Row];[x]];F(1;2);"a;b"')
    ['A1', 'T[[#This Row];[x]]', 'F(1;2)', '"a;b"']
    """
    out, start = [], 0
    for i, ch, depth in _outside(text):
        if ch == ";" and not depth:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


def is_reference(arg, names=frozenset()):
    """Whether an argument is a reference: a cell, a range, a table reference or a name.

    ``names``: the document's named ranges that refer to cells, in upper case.

    >>> [is_reference(a, {"MARGIN"}) for a in ("B2", "$KPIs.$B$2:$B$9", "T[[#This Row];[x]]",
    ...                                        "Margin", "SUM(B2)", "2", "B2/3")]
    [True, True, True, True, False, False, False]
    """
    a = arg.strip()
    if _CELL_REF.match(a):
        return True
    if _TABLE_REF.match(a) and a.endswith("]") and _close("(" + a + ")", 1) == len(a) + 1:
        return True
    return bool(_NAME.match(a)) and a.upper() in names


def is_single_cell(arg, names=frozenset()):
    """Whether a reference argument is one cell: ``B2``, ``T[[#This Row];[x]]``, a 1-cell name.

    ``names``: a mapping of upper-case name -> whether it refers to one cell
    (a plain set counts as names of ranges).

    >>> [is_single_cell(a, {"MARGIN": True}) for a in ("B2", "B2:B3", "T[[#This Row];[x]]",
    ...                                               "T[[#This Row];[a]:[c]]", "T[x]", "Margin")]
    [True, False, True, False, False, True]
    """
    a = arg.strip()
    if _CELL_REF.match(a):
        return ":" not in a
    if _TABLE_REF.match(a):
        return "[#This Row]" in a and "]:[" not in a
    return bool(isinstance(names, dict) and names.get(a.upper()))


def _cell_value(ref):
    """A one-cell reference as LibreOffice computes it without a call into Python:
    blank as empty text, an error as ``#VALUE!`` text (what the functions make of any
    error text), anything else as it is."""
    return 'IF(ISBLANK(%s);"";IF(ISERROR(%s);"#VALUE!";%s))' % (ref, ref, ref)


def bind_formula(text, pattern, service, arg, names=frozenset()):
    """``text`` with every call ``pattern`` matches bound to the add-in, or None if none.

    ``ROAS(a;b)`` becomes ``SERVICE.ROAS(...)`` and ``_xldudf_ROAS(a;b)``
    ``SERVICE.XLDUDF_ROAS(...)`` (``service`` in upper case: the names the API
    grammar knows).  LibreOffice passes an empty cell as 0 and never calls a
    function with an error argument, where Excel passes a blank and the error
    (xlwings: ``err_to_str``), so a reference argument (:func:`is_reference`)
    is handed over the Excel way: one cell through native functions
    (:func:`_cell_value`, no call into Python), a range through the add-in's
    cell reader ``SERVICE.ARG(...)``.

    >>> p = call_pattern(["ROAS"])
    >>> bind_formula("=_xldudf_roas(B2:B3;2)", p, "org.x.F", "ARG")
    '=ORG.X.F.XLDUDF_ROAS(ORG.X.F.ARG(B2:B3);2)'
    >>> bind_formula("=SUM(B2)", p, "org.x.F", "ARG") is None
    True
    """
    prog = service.upper()
    out, i, found = [], 0, False
    while True:
        m = pattern.search(text, i)
        if m is None:
            break
        end = _close(text, m.end())
        if end < 0:
            break
        found = True
        inner_text = text[m.end():end]
        args = []
        for a in split_args(inner_text) if inner_text.strip() else []:
            inner = bind_formula(a, pattern, service, arg, names)
            a = a if inner is None else inner
            if not is_reference(a, names):
                args.append(a)
            elif is_single_cell(a, names):
                args.append(_cell_value(a.strip()))
            else:
                args.append("%s.%s(%s)" % (prog, arg, a.strip()))
        prefix = "XLDUDF_" if m.group(1) else ""
        out.append(text[i:m.start()])
        out.append("%s.%s%s(%s)" % (prog, prefix, m.group(2).upper(), ";".join(args)))
        i = end + 1
    out.append(text[i:])
    return "".join(out) if found else None


# --- writing many rewritten cells at once -----------------------------------------------
#
# LibreOffice 7.4 joins a formula cell written through the API to the formula
# group of its neighbours and re-registers the whole group's listeners each
# time (``ScColumn::AttachNewFormulaCell``, ``sc::ConvertToGroupListening``),
# so writing a column of n like formulas cell by cell, by ``setFormulaArray``
# or by a replace-all costs n^2: 10,000 rows took 31 s, 20,000 rows 389 s.
# A fill (``XCellSeries.fillAuto``) copies one cell's formula down a range in
# one pass: 100,000 rows in about 1 s.  A fill writes what the first cell holds
# with its relative references moved, so only a run of cells whose formulas
# have one shape (:func:`formula_shape`) is written by a fill.

_STRING = re.compile(r'"(?:[^"]|"")*"')
_ROW_REF = re.compile(r"(?<![A-Za-z0-9_$])(\$?[A-Za-z]{1,3})(\$?)([0-9]+)(?![0-9A-Za-z_(])")


def _relative_rows(part, row):
    return _ROW_REF.sub(lambda m: m.group(0) if m.group(2) else
                        "%sR[%d]" % (m.group(1), int(m.group(3)) - row), part)


def formula_shape(text, row):
    """``text`` (a formula in cell row ``row``, 1-based) with each relative row number
    written as its offset from ``row``.

    Two cells of one column whose formulas have the same shape hold one formula
    filled down; texts in double quotes are compared as they are.

    >>> formula_shape('=S.ROAS(B7;$C7;D$2;$Orders.E7:E9;"A7")', 7)
    '=S.ROAS(BR[0];$CR[0];D$2;$Orders.ER[0]:ER[2];"A7")'
    >>> formula_shape("=LOG10(A8)", 8) == formula_shape("=LOG10(A9)", 9)
    True
    """
    out, last = [], 0
    for m in _STRING.finditer(text):
        out.append(_relative_rows(text[last:m.start()], row))
        out.append(m.group())
        last = m.end()
    out.append(_relative_rows(text[last:], row))
    return "".join(out)


def fill_runs(cells, min_length):
    """Split one column's cells into runs a fill can write and cells written one by one.

    ``cells``: ``(row, formula)`` pairs in ascending row order (1-based rows).
    A run is at least ``min_length`` cells on consecutive rows with one
    :func:`formula_shape`.  Returns ``(runs, single)``: runs as ``(first row,
    last row, formula of the first row)``, single as the ``(row, formula)``
    pairs left.

    >>> fill_runs([(2, "=A2"), (3, "=A3"), (4, "=A4"), (5, "=B1"), (7, "=A7")], 3)
    ([(2, 4, '=A2')], [(5, '=B1'), (7, '=A7')])
    """
    runs, single, i, n = [], [], 0, len(cells)
    while i < n:
        row, text = cells[i]
        shape = formula_shape(text, row)
        j = i + 1
        while (j < n and cells[j][0] == cells[j - 1][0] + 1
               and formula_shape(cells[j][1], cells[j][0]) == shape):
            j += 1
        if j - i >= min_length:
            runs.append((row, cells[j - 1][0], text))
        else:
            single.extend(cells[i:j])
        i = j
    return runs, single
