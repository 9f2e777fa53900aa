"""Write whole cells into a worksheet's XML: a formula, a constant, a style, an array
formula's range (:func:`edit_cells`), where :mod:`xl_kpis.book.patch` only rewrites cached
values.  Rows and cells are inserted in sheet order, a row's ``spans`` and the sheet's
``<dimension>`` kept right; every other byte is copied.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from xml.sax.saxutils import escape

from ..xlsx.books import BookFormatError
from ..xlsx.refs import a1, rowcol
from ..xlsx.values import constant_xml, encode_value
from .scan import ATTR_B, CELL_EL

__all__ = ["CellEdit", "edit_cells"]

@dataclass(frozen=True)
class CellEdit:
    """A cell :func:`edit_cells` writes in full (where :func:`~xl_kpis.book.patch.patch_cells` only changes
    cached values).

    ``formula`` (its text without ``=``) makes a formula cell caching ``value``;
    without it the cell keeps the formula it has (``array`` then sets the
    range of its array formula), or holds ``value`` as a constant if it has
    none.  ``style`` (a ``cellXfs`` index) is used when the cell has no style
    of its own.
    """

    value: Any = None
    formula: str | None = None
    array: str | None = None
    style: str | None = None


_ROW_EL = re.compile(rb"<row\b[^>]*?(?:/>|>.*?</row>)", re.S)
_F_EL = re.compile(rb"<f\b[^>]*?(?:/>|>[^<]*</f>)")


def _cell_xml(ref: str, attrs: dict[bytes, bytes], f_el: bytes | None, edit: CellEdit | None
              ) -> bytes | None:
    """The XML of an edited cell (None: no cell)."""
    style = attrs.get(b"s")
    if edit is None:                      # cleared: only its style stays
        return b'<c r="%s" s="%s"/>' % (ref.encode(), style) if style else None
    if style is None and edit.style is not None:
        style = edit.style.encode()
    if edit.formula is not None:
        f_el = b"<f>%s</f>" % escape(edit.formula).encode("utf-8")
    elif f_el is not None and edit.array is not None:
        f_el = re.sub(rb'\sref="[^"]*"', b' ref="%s"' % edit.array.encode(), f_el, count=1)
    head = b'<c r="%s"' % ref.encode() + (b' s="%s"' % style if style else b"")
    if f_el is None:                      # a constant: text as an inline string
        if edit.value is None or edit.value == "":
            return head + b"/>"
        t, content = constant_xml(edit.value)
        return head + (b' t="%s"' % t.encode() if t else b"") + b">%s</c>" % (
            content.encode("utf-8"))
    if b"cm" in attrs:                    # the dynamic-array metadata of an array formula
        head += b' cm="%s"' % attrs[b"cm"]
    t, v = encode_value(edit.value)
    return head + (b' t="%s"' % t.encode() if t else b"") + b">%s<v>%s</v></c>" % (
        f_el, v.encode("utf-8"))


def _edit_row(row: bytes, number: int, edits: Mapping[int, tuple[str, CellEdit | None]]
              ) -> bytes:
    """A ``<row>`` element with its cells in ``edits`` (column -> (ref, edit)) rewritten."""
    end = row.index(b">")
    start_tag = row[:end + 1]
    closed = start_tag.endswith(b"/>")
    if closed:
        start_tag = start_tag[:-2] + b">"
    cells: dict[int, bytes] = {}
    for m in (() if closed else CELL_EL.finditer(row, end + 1)):
        attrs = dict(ATTR_B.findall(m.group(1)))
        r = attrs.get(b"r")
        if r is None:
            raise BookFormatError(f"a cell of row {number} has no reference (unsupported"
                                  " writer)")
        col = rowcol(r.decode())[1]
        if col in edits:
            ref, edit = edits[col]
            f = _F_EL.search(m.group(2) or b"")
            new = _cell_xml(ref, attrs, f.group(0) if f else None, edit)
            if new is not None:
                cells[col] = new
        else:
            cells[col] = m.group(0)
    for col, (ref, edit) in edits.items():
        if col not in cells and edit is not None:
            new = _cell_xml(ref, {}, None, edit)
            if new is not None:
                cells[col] = new
    if cells and b"spans=" in start_tag:
        start_tag = re.sub(rb'\sspans="[^"]*"', b' spans="%d:%d"' % (min(cells) + 1,
                                                                    max(cells) + 1), start_tag)
    if not cells:
        return start_tag[:-1] + b"/>"
    return start_tag + b"".join(cells[c] for c in sorted(cells)) + b"</row>"


def edit_cells(xml: bytes, edits: Mapping[str, CellEdit | None]) -> bytes:
    """A worksheet with the cells in ``edits`` written (:class:`CellEdit`) or cleared (None:
    its value and formula go, its style stays).

    Rows and cells are inserted in sheet order where they do not exist yet, a
    row's ``spans`` and the sheet's ``<dimension>`` are kept right; every
    other byte is copied.  For small sheets (the KPIs sheet, the Dashboard):
    the rows of the sheet are scanned.
    """
    if not edits:
        return xml
    by_row: dict[int, dict[int, tuple[str, CellEdit | None]]] = {}
    written = []                                      # (row, col) of the cells written
    for ref, edit in edits.items():
        row, col = rowcol(ref)
        if edit is not None:
            written.append((row, col))
        by_row.setdefault(row + 1, {})[col] = (ref, edit)
    lo = xml.find(b"<sheetData")
    if lo < 0:
        raise BookFormatError("a worksheet has no <sheetData> (unsupported writer)")
    gt = xml.index(b">", lo)
    if xml[gt - 1:gt] == b"/":                        # <sheetData/>: no rows at all
        xml = xml[:gt - 1] + b"></sheetData>" + xml[gt + 1:]
    lo = xml.index(b">", lo) + 1
    hi = xml.index(b"</sheetData>", lo)
    out, pos = [], lo
    pending = sorted(by_row)
    at = 0                                            # pending[at] is the next row to edit
    for m in _ROW_EL.finditer(xml, lo, hi):
        r = _ROW_R_B.search(m.group(0), 0, m.group(0).index(b">"))
        if r is None:
            raise BookFormatError("a worksheet row has no row number (unsupported writer)")
        number = int(r.group(1))
        out.append(xml[pos:m.start()])
        while at < len(pending) and pending[at] < number:    # rows to create before this one
            out.append(_edit_row(b'<row r="%d">' % pending[at], pending[at], by_row[pending[at]]))
            at += 1
        if at < len(pending) and pending[at] == number:
            out.append(_edit_row(m.group(0), number, by_row[number]))
            at += 1
        else:
            out.append(m.group(0))
        pos = m.end()
    out.append(xml[pos:hi])
    for number in pending[at:]:
        out.append(_edit_row(b'<row r="%d">' % number, number, by_row[number]))
    head = _grow_dimension(xml[:lo], written)
    return head + b"".join(out) + xml[hi:]


_ROW_R_B = re.compile(rb'\br="(\d+)"')
_DIMENSION = re.compile(rb'(<dimension\b[^>]*?\bref=")([^"]*)(")')


def _grow_dimension(head: bytes, cells: Sequence[tuple[int, int]]) -> bytes:
    """The part before sheetData with ``<dimension ref>`` covering ``cells`` ((row, col),
    0-based) too."""
    m = _DIMENSION.search(head)
    if m is None or not cells:
        return head
    first, _, last = m.group(2).decode().partition(":")
    corners = list(cells)
    for x in (first, last or first):
        with contextlib.suppress(ValueError):     # a dimension that is no reference
            corners.append(rowcol(x))
    rows, cols = zip(*corners)
    r0, r1, c0, c1 = min(rows), max(rows), min(cols), max(cols)
    ref = f"{a1(r0, c0)}:{a1(r1, c1)}".encode()
    return head[:m.start(2)] + ref + head[m.end(2):]
