"""Rewrite the cached values of formula cells inside an .xlsx/.xlsm, touching nothing else.

openpyxl cannot do this: a load + save drops every cached value and rebuilds
every part from its object model.  Here the workbook stays a zip of XML
parts: every part keeps its content byte for byte except the worksheets that
hold a changed value, and in those only the ``<v>`` (and the ``t`` type
attribute) of the formula cells whose value changed are rewritten.

Writes are atomic (:class:`xl_kpis.book.files.atomic_write`): the new file is
written to a temporary file beside the target, flushed and fsynced, then
renamed over it, so a crash or a kill at any point leaves either the old file
or the new one, never a broken one.

The jobs here are the in-place edits the book commands share: finding a
worksheet's formula cells (:class:`FormulaScan`, :func:`formula_cells`,
:func:`array_ranges`), rewriting their cached values (:func:`patch_cells`,
:func:`patch_plain`), writing whole cells (:func:`edit_cells`), and writing the
book again around them (:func:`patch_workbook`, :class:`ZipWriter`).  The
file-format facts they rest on (error values, references, a value's ``t`` and
``<v>``, opening a book and finding its parts) are :mod:`xl_kpis.xlsx`'s.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import queue
import threading
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence
from xml.sax.saxutils import escape, unescape

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from ..xlsx.books import NS, BookFormatError, open_book, read_part, sheet_parts
from ..xlsx.refs import a1, rowcol
from ..xlsx.values import constant_xml, decode_value, encode_value, encode_value_b
from .files import atomic_write

# A formula cell as Excel, XlsxWriter and LibreOffice write it:
#   <c r="K2" s="3" t="str"><f ...>FORMULA</f><v>VALUE</v></c>
# (the <f> of a shared-formula child may be empty: <f t="shared" si="0"/>).
_FORMULA_CELL = re.compile(
    r'<c (?P<attrs>[^>]*?)>(?P<f><f(?P<fattrs>[^>]*?)(?:/>|>(?P<formula>[^<]*)</f>))'
    r'(?:<v>(?P<v>[^<]*)</v>|<v\s*/>)?</c>')
_ATTR = re.compile(r'(\w+)="([^"]*)"')
# Any cell without a formula (the spilled cells of an array formula hold only a value).
# (an inline string stops at the end of its cell: an unclosed <is> costs one cell's length,
# so the scan stays linear in the part)
_PLAIN_CELL = re.compile(
    r'<c (?P<attrs>[^>]*?)(?:/>|>(?:<v>(?P<v>[^<]*)</v>|<v\s*/>|'
    r'<is>(?P<is>(?:[^<]|<(?!/is>|/c>|c[\s/>]))*)</is>)?</c>)')
_IS_TEXT = re.compile(r"<t[^>]*>([^<]*)</t>")


_ARRAY_F = re.compile(r'<f(?=[^>]*\bt="array")[^>]*\bref="([A-Z]+\d+(?::[A-Z]+\d+)?)"')
_ARRAY_F_B = re.compile(_ARRAY_F.pattern.encode())


def array_ranges(xml: str | bytes) -> list[str]:
    """The ranges (``A51:D56``) of the array formulas of a worksheet."""
    if isinstance(xml, bytes):
        return [r.decode() for r in _ARRAY_F_B.findall(xml)]
    return _ARRAY_F.findall(xml)


def formula_cells(xml: str) -> Iterator[tuple[str, str | None, str | None, str | None]]:
    """(cell ref, formula text or None for a shared child, cached value text, type)."""
    for m in _FORMULA_CELL.finditer(xml):
        attrs = dict(_ATTR.findall(m["attrs"]))
        formula = m["formula"]
        yield (attrs.get("r"), None if formula is None else unescape(formula, {"&quot;": '"'}),
               m["v"], attrs.get("t"))


def read_formulas(path: str | os.PathLike) -> dict[str, dict[str, tuple[str | None, Any]]]:
    """Every formula cell of every sheet: ``{sheet: {ref: (formula, cached value)}}``."""
    out: dict[str, dict[str, tuple[str | None, Any]]] = {}
    with open_book(path) as z:
        for name, part in sheet_parts(z).items():
            xml = read_part(z, part).decode("utf-8", "replace")
            out[name] = {ref: (f, decode_value(v, t)) for ref, f, v, t in formula_cells(xml)}
    return out


def _comparable(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "" if value is None else value
    if isinstance(value, (int, float)):
        return _sig16(float(value))
    return str(value)


def _sig16(x: float) -> float:
    """``x`` to 16 significant digits, the precision XlsxWriter writes numbers with: a
    value that agrees to that precision is not rewritten."""
    return float(f"{x:.16g}")


def _plain_value(m: re.Match, t: str | None, shared: list[str] | None) -> Any:
    """The value a cell without a formula holds (shared and inline strings resolved)."""
    if t == "s" and m["v"] is not None and shared is not None:
        if not m["v"].strip().isdigit():
            raise BookFormatError(f"a cell refers to shared string {m['v'][:20]!r}, "
                                  "not a number")
        return shared[int(m["v"])]
    if t == "inlineStr":
        return "".join(unescape(x) for x in _IS_TEXT.findall(m["is"] or ""))
    if m["v"] is None:
        return ""
    return _comparable(decode_value(m["v"], t))


def _si_text(si) -> str:
    """The text of a shared string item: its runs, without phonetic guides."""
    ns = f"{{{NS['m']}}}" if si.tag.startswith("{") else ""
    skip = {id(t) for rph in si.iter(f"{ns}rPh") for t in rph.iter(f"{ns}t")}
    return "".join(t.text or "" for t in si.iter(f"{ns}t") if id(t) not in skip)


# (an item stops before the next one: an unclosed <si> costs its own length only)
_SI = re.compile(rb"<si\s*/>|<si(?:\s[^>]*)?>(?:[^<]|<(?!/si>|si[\s/>]))*</si>")


class SharedStrings:
    """The items of a shared string table, each parsed when it is first asked for.

    A sheet's spilled cells refer to a handful of the table's items; the table
    of a big book holds every order id.  The items are located with one scan
    and only those asked for are parsed (with defusedxml, as whole parts are).
    """

    def __init__(self, z: zipfile.ZipFile) -> None:
        name = "xl/sharedStrings.xml"
        self._xml = read_part(z, name) if name in z.NameToInfo else b""
        self._spans: list[tuple[int, int]] | None = None

    def __getitem__(self, i: int) -> str:
        if self._spans is None:
            self._spans = [m.span() for m in _SI.finditer(self._xml)]
        if not 0 <= i < len(self._spans):
            raise BookFormatError(f"a cell refers to shared string {i}, but the table "
                                  f"(xl/sharedStrings.xml) holds {len(self._spans)}")
        a, b = self._spans[i]
        try:
            return _si_text(SafeET.fromstring(self._xml[a:b]))
        except (DefusedXmlException, SafeET.ParseError) as e:
            raise BookFormatError(f"unsafe or broken XML in xl/sharedStrings.xml "
                                  f"({type(e).__name__})") from e


KEEP = object()
"""Returned by a ``decide`` callback: leave this cell's cached value as it is."""


@dataclass(frozen=True)
class ColumnValues:
    """New cached values for the formula cells of one column of a sheet (a table column).

    The cells of rows ``first_row``, ``first_row + 1``, ... (sheet row numbers,
    1-based) take ``values`` in order when ``accepts`` says their formula text
    is the column's (a shared-formula child, with no text, is accepted); any
    other cell of the column goes to the sheet's ``decide`` callback.
    """

    first_row: int
    values: Sequence[Any]
    accepts: Callable[[str], bool]


# The formula of a cell and its cached value, as Excel, XlsxWriter and LibreOffice write
# them: <c r="K2" s="3" t="str"><f ...>FORMULA</f><v>VALUE</v></c> (the <f> of a
# shared-formula child may be empty: <f t="shared" si="0"/>).  Matching from "<f" is
# several times faster than from every "<c " of a big sheet; the cell's start tag is
# found backwards from there.
_FORMULA_B = re.compile(
    rb'(?P<f><f(?=[ />])[^>]*?(?:/>|>(?P<formula>[^<]*)</f>))(?:<v>(?P<v>[^<]*)</v>|<v\s*/>)?</c>')
_REF_B = re.compile(rb'\br="([A-Z]+\d+)"')
_DIGITS = b"0123456789"
#: Bytes of a patched sheet handed on at a time (compressed while the next are patched).
CHUNK = 1 << 20


def unescape_formula(raw: bytes) -> str:
    """The text of a formula as a worksheet's ``<f>`` holds it (bytes, XML-escaped)."""
    return unescape(raw.decode("utf-8"), {"&quot;": '"'})


class FormulaScan:
    """The formula cells of a worksheet's XML, found in one pass (values are decided later).

    ``cells`` holds, per formula cell in file order: where its ``<c`` starts,
    where the cell ends, its attributes, where its ``<f>`` element ends, where
    its cached value starts (-1 for none), its raw formula text (None for a
    shared-formula child), its raw cached value (or None), and its column
    letters and row number.  Scanning needs no values, so
    it can run before they are computed.
    """

    def __init__(self, xml: bytes) -> None:
        self.xml = xml
        cells = []
        append = cells.append
        rfind = xml.rfind
        for m in _FORMULA_B.finditer(xml):
            (f_at, end), (_, f_end), _, (v_at, _) = m.regs
            if xml[f_at - 1] != 62:       # ">": the <f> follows a start tag
                continue
            # that tag starts at the last "<" before it (back to the tag before: each byte
            # is looked at for one <f> only, so the scan stays linear in the sheet)
            c_at = rfind(b"<", 0, f_at - 1)
            if c_at < 0 or xml[c_at:c_at + 3] != b"<c ":
                continue                  # not the formula of a cell
            attrs = xml[c_at + 3:f_at - 1]
            if attrs.startswith(b'r="'):
                ref = attrs[3:attrs.index(b'"', 3)]
            else:
                found = _REF_B.search(attrs)
                if found is None:
                    raise BookFormatError("a formula cell has no address (r attribute)")
                ref = found.group(1)
            letters = ref.rstrip(_DIGITS)
            if not 0 < len(letters) < min(len(ref), 4) or not (letters.isalpha()
                                                               and letters.isupper()):
                raise BookFormatError(f"a formula cell has a bad address "
                                      f"{ref[:20].decode('utf-8', 'replace')!r}")
            append((c_at, end, attrs, f_end, v_at, m[2], m[3], letters,
                    int(ref[len(letters):])))
        self.cells = cells


def patch_cells(xml: bytes | FormulaScan, decide: Callable[[str, str | None], Any],
                columns: Mapping[str, ColumnValues] | None = None,
                counter: dict[str, int] | None = None) -> Iterator[bytes]:
    """The worksheet ``xml`` (or its :class:`FormulaScan`) with new cached values of its
    formula cells, in chunks.

    ``decide(ref, formula)`` gives a cell's new value or :data:`KEEP`
    (``formula`` is None for the empty ``<f>`` of a shared-formula child);
    ``columns`` (column letters -> :class:`ColumnValues`) answers for the cells
    of table columns without a call.  ``counter["changed"]`` is increased by
    the number of cells whose cached value changed, ``counter["columns"]`` by
    the number of cells ``columns`` answered.  Only the ``<v>`` and ``t`` of
    those cells change; every other byte is copied.
    """
    scan = xml if isinstance(xml, FormulaScan) else FormulaScan(xml)
    xml = scan.xml
    cols = {k.encode(): (c, None) for k, c in (columns or {}).items()}
    accepted: dict[tuple[bytes, bytes], bool] = {}
    texts: dict[bytes, str] = {}
    changed = answered = 0
    pos = 0
    out: list[bytes] = []
    append = out.append
    for c_at, end, attrs, f_end, v_at, formula, old_v, letters, row in scan.cells:
        found = cols.get(letters)
        enc = None
        if found is not None:
            col, encoded = found
            if encoded is None:           # the column's values, encoded at first use
                encoded = _encode_column(col.values)
                cols[letters] = (col, encoded)
            i = row - col.first_row
            if 0 <= i < len(encoded):
                ok = True
                if formula is not None:
                    ok = accepted.get((letters, formula))
                    if ok is None:
                        ok = accepted[(letters, formula)] = bool(
                            col.accepts(unescape_formula(formula)))
                if ok:
                    enc = encoded[i]
                    answered += 1
        if enc is None:
            text = None
            if formula is not None:
                text = texts.get(formula)
                if text is None:
                    text = texts[formula] = unescape_formula(formula)
            new = decide(f"{letters.decode()}{row}", text)
            if new is KEEP:
                continue
            enc = encode_value_b(new)
        t, v = enc
        t_at = attrs.find(b' t="')
        old_t = None if t_at < 0 else attrs[t_at + 4:attrs.index(b'"', t_at + 4)]
        if old_t == t and (old_v == v or t is None and old_v and old_v[:1] == v[:1]
                           and _same_b(old_v, old_t, v, t)):
            continue
        changed += 1
        if old_t == t and v_at >= 0:      # only the value changes
            append(xml[pos:v_at])
            append(v)
            pos = v_at + len(old_v)
        else:
            f_at = c_at + len(attrs) + 4
            if t_at >= 0:
                attrs = attrs[:t_at] + attrs[t_at + 6 + len(old_t):]
            if t is not None:
                attrs += b' t="%b"' % t
            append(xml[pos:c_at])
            append(b"<c %b>%b<v>%b</v></c>" % (attrs, xml[f_at:f_end], v))
            pos = end
        if len(out) > 16384:
            chunk = b"".join(out)
            out.clear()
            if len(chunk) < CHUNK:
                append(chunk)
            else:
                yield chunk
    append(xml[pos:])
    if counter is not None:
        counter["changed"] = counter.get("changed", 0) + changed
        counter["columns"] = counter.get("columns", 0) + answered
    yield b"".join(out)


def _encode_column(values: Sequence[Any]) -> list[tuple[bytes | None, bytes]]:
    """:func:`encode_value_b` of every value of a column (a repeated number or text is
    encoded once)."""
    seen: dict[type, dict[Any, tuple[bytes | None, bytes]]] = {float: {}, str: {}}
    out = []
    append = out.append
    for x in values:
        memo = seen.get(type(x))
        if memo is None:
            append(encode_value_b(x))
            continue
        e = memo.get(x)
        if e is None:
            e = memo[x] = encode_value_b(x)
        append(e)
    return out


def _same_b(old_v: bytes | None, old_t: bytes | None, v: bytes, t: bytes | None) -> bool:
    """Whether a cached value already says ``v`` (numbers compared as numbers, so a
    value written as ``1209.0`` is not rewritten as ``1209``)."""
    if old_v is None or old_t != t:
        return False
    if old_v == v:
        return True
    if t is None:
        try:
            a, b = float(old_v), float(v)
        except ValueError:
            return False
        return a == b or (abs(a - b) <= 1e-14 * max(abs(a), abs(b))
                          and _sig16(a) == _sig16(b))
    return False


def patch_plain(xml: bytes, plain: Mapping[str, Any], shared: Callable[[], list[str]],
                counter: dict[str, int] | None = None) -> bytes:
    """Rewrite cells without a formula listed in ``plain`` (the spilled cells of an
    array formula: only its first cell holds the formula); ``shared()`` gives the
    shared string table when a cell refers to it."""
    changed = 0
    text = xml.decode("utf-8")

    def sub(m: re.Match) -> str:
        nonlocal changed
        attrs = dict(_ATTR.findall(m["attrs"]))
        ref = attrs.get("r")
        if ref not in plain:
            return m.group(0)
        new = plain[ref]
        t = attrs.get("t")
        if _plain_value(m, t, shared() if t == "s" else None) == _comparable(new) and \
                (t == "e") == (encode_value(new)[0] == "e"):       # an error stays an error
            return m.group(0)
        changed += 1
        t, content = constant_xml(new)    # text as an inline string
        return f'<c {_set_type(m["attrs"].rstrip(" /"), t)}>{content}</c>'

    text = _PLAIN_CELL.sub(sub, text)
    if counter is not None:
        counter["changed"] = counter.get("changed", 0) + changed
    return text.encode("utf-8")


@dataclass(frozen=True)
class CellEdit:
    """A cell :func:`edit_cells` writes in full (where :func:`patch_cells` only changes
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
_CELL_EL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_F_EL = re.compile(rb"<f\b[^>]*?(?:/>|>[^<]*</f>)")
_ATTR_B = re.compile(rb'([\w:]+)="([^"]*)"')


def cell_styles(xml: bytes) -> dict[str, str]:
    """``ref -> style index`` of every cell of a worksheet that has a style (``s``)."""
    out = {}
    for m in _CELL_EL.finditer(xml):
        attrs = dict(_ATTR_B.findall(m.group(1)))
        if b"s" in attrs and b"r" in attrs:
            out[attrs[b"r"].decode()] = attrs[b"s"].decode()
    return out


def cell_contents(xml: bytes) -> dict[str, bool]:
    """``ref -> whether it holds a formula or a value`` of every cell of a worksheet."""
    out = {}
    for m in _CELL_EL.finditer(xml):
        attrs = dict(_ATTR_B.findall(m.group(1)))
        inner = m.group(2) or b""
        if b"r" in attrs:
            out[attrs[b"r"].decode()] = bool(re.search(rb"<f\b|<is>|<v>[^<]", inner))
    return out


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
    for m in (() if closed else _CELL_EL.finditer(row, end + 1)):
        attrs = dict(_ATTR_B.findall(m.group(1)))
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


def _set_type(attrs: str, t: str | None) -> str:
    attrs = re.sub(r'\s*\bt="[^"]*"', "", attrs)
    return attrs if t is None else f'{attrs} t="{t}"'


def read_sheets(path: str | os.PathLike) -> dict[str, bytes]:
    """``part name -> XML bytes`` of every worksheet of a workbook (for :func:`patch_workbook`
    and :func:`array_ranges`, so that each is inflated once)."""
    with open_book(path) as z:
        return {part: read_part(z, part) for part in sheet_parts(z).values()}


def patch_workbook(src: str | os.PathLike, dst: str | os.PathLike,
                   values: Mapping[str, Mapping[str, Any] | Callable[[str, str | None], Any]],
                   plain: Mapping[str, Mapping[str, Any]] | None = None,
                   columns: Mapping[str, Mapping[str, ColumnValues]] | None = None,
                   sheets: Mapping[str, bytes | FormulaScan] | None = None,
                   counter: dict[str, int] | None = None,
                   edits: Mapping[str, Mapping[str, CellEdit | None]] | None = None,
                   replace: Mapping[str, bytes] | None = None) -> int:
    """Copy ``src`` to ``dst`` with new cached values; the number of cells changed.

    ``values`` maps a sheet name to ``{ref: value}`` or to a callable
    ``(ref, formula) -> value | KEEP`` (see :func:`patch_cells`); ``plain``
    maps a sheet to ``{ref: value}`` of spilled array cells to rewrite;
    ``columns`` maps a sheet to its table columns' :class:`ColumnValues`.
    ``sheets`` may hold worksheet XML already read (:func:`read_sheets`) or
    scanned (:class:`FormulaScan`);
    ``counter`` receives the counts of :func:`patch_cells`; ``edits`` maps a
    sheet to the cells :func:`edit_cells` writes in full (each counts as a
    change); ``replace`` maps other zip members to their new content.

    Every zip member other than the patched worksheets keeps its content,
    compression and timestamp; a patched worksheet is compressed (fast level)
    in a second thread while the next part is patched.  The write is atomic;
    when no value changes, ``dst`` gets an exact copy of ``src`` (and ``src``
    itself is not rewritten).
    """
    plain, columns, sheets = plain or {}, columns or {}, sheets or {}
    edits, replace = edits or {}, replace or {}
    counter = {} if counter is None else counter
    with open_book(src) as z:
        parts = sheet_parts(z)
        unknown = (set(values) | set(plain) | set(columns) | set(edits)) - set(parts)
        if unknown:
            raise BookFormatError(f"{os.fspath(src)}: no sheet named {sorted(unknown)[0]!r}")
        sheet_of = {parts[s]: s for s in set(values) | set(plain) | set(columns) | set(edits)
                    if values.get(s) or plain.get(s) or columns.get(s) or edits.get(s)}
        replaced = {name: data for name, data in replace.items() if z.read(name) != data}
        shared: list[SharedStrings] = []

        def shared_table() -> SharedStrings:
            if not shared:
                shared.append(SharedStrings(z))
            return shared[0]

        same_file = os.path.exists(dst) and os.path.samefile(src, dst)
        target = atomic_write(dst)
        with target as out:
            with ZipWriter(out) as w:
                for info in z.infolist():
                    sheet = sheet_of.get(info.filename)
                    if sheet is None:
                        w.copy(info, replaced.get(info.filename) or read_part(z, info))
                        continue
                    xml = sheets.get(info.filename)
                    xml = read_part(z, info) if xml is None else xml
                    v = values.get(sheet) or {}
                    decide = v if callable(v) else (lambda ref, f, v=v: v.get(ref, KEEP))
                    chunks = patch_cells(xml, decide, columns.get(sheet), counter)
                    if plain.get(sheet):
                        chunks = [patch_plain(b"".join(chunks), plain[sheet], shared_table,
                                              counter)]
                    if edits.get(sheet):
                        chunks = [edit_cells(b"".join(chunks), edits[sheet])]
                        counter["changed"] = counter.get("changed", 0) + len(edits[sheet])
                    size = len(xml.xml if isinstance(xml, FormulaScan) else xml)
                    w.stream(info, chunks, zip64=size > zipfile.ZIP64_LIMIT // 2,
                             level=1)     # fast: the XML is the same at any level
            if not counter.get("changed") and not replaced:
                if same_file:
                    target.cancel()       # nothing to change: the file is not rewritten
                else:
                    out.seek(0)
                    out.truncate()
                    with open(src, "rb") as f:
                        shutil.copyfileobj(f, out)
    return counter.get("changed", 0)


class ZipWriter:
    """Writes the members of a new zip in a second thread, in the order they are given.

    ``copy`` writes a member with the given content; ``stream`` writes a
    member from chunks that the calling thread produces while this thread
    compresses and writes the previous ones (zlib releases the GIL).  Each
    keeps the member's name, timestamp and compression method; ``level`` is
    the compression level (None: zlib's default).  An error in either thread
    ends the write and is raised by the ``with`` block.
    """

    def __init__(self, file) -> None:
        self.zip = zipfile.ZipFile(file, "w")
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="xl-kpis zip writer",
                                       daemon=True)

    def __enter__(self) -> ZipWriter:
        self.thread.start()
        return self

    def copy(self, info: zipfile.ZipInfo, data: bytes, level: int | None = None) -> None:
        self._put(("copy", info, data, level))

    def stream(self, info: zipfile.ZipInfo, chunks: Iterable[bytes], zip64: bool = False,
               level: int | None = None) -> None:
        self._put(("open", info, zip64, level))
        for chunk in chunks:
            self._put(("data", chunk))
        self._put(("close",))

    def _put(self, task: tuple) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(task)

    def _run(self) -> None:
        stream = None
        while True:
            task = self.queue.get()
            if task is None:
                break
            if self.error is not None or task[0] == "abort":
                if stream is not None:    # drain: the caller stops at its next put
                    with contextlib.suppress(Exception):
                        stream.close()
                    stream = None
                continue
            try:
                kind = task[0]
                if kind == "copy":
                    self.zip.writestr(task[1], task[2], compress_type=task[1].compress_type,
                                      compresslevel=task[3])
                elif kind == "open":
                    info = zipfile.ZipInfo(task[1].filename, task[1].date_time)
                    info.compress_type = task[1].compress_type
                    info.external_attr = task[1].external_attr
                    info._compresslevel = task[3]
                    stream = self.zip.open(info, "w", force_zip64=task[2])
                elif kind == "data":
                    stream.write(task[1])
                else:
                    stream.close()
                    stream = None
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                self.error = e

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.queue.put(("abort",) if exc_type is not None else None)
        if exc_type is not None:
            self.queue.put(None)
        self.thread.join()
        if exc_type is None and self.error is None:
            self.zip.close()
            return False
        with contextlib.suppress(Exception):   # the file is discarded anyway
            self.zip.close()
        if exc_type is None:
            raise self.error
        return False


@contextlib.contextmanager
def paused_gc():
    """Pause the cyclic garbage collector for bulk work on a book.

    A big book is millions of cell values that form no reference cycles;
    every collection would walk all of them again (in a 100,000-line book
    that is a large share of the refresh time).  Collection resumes after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
