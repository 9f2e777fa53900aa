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

:func:`patch_cells` and :func:`patch_plain` rewrite the cached values of a worksheet's
formula cells and of an array's spilled cells; :func:`patch_workbook` writes the book again
around them (with the whole cells of :mod:`xl_kpis.book.edit`).  The cells are found by
:mod:`xl_kpis.book.scan`; the file-format facts (error values, a value's ``t`` and
``<v>``, opening a book and finding its parts) are :mod:`xl_kpis.xlsx`'s.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence
from xml.sax.saxutils import unescape

from ..xlsx.books import BookFormatError, open_book, read_part, sheet_parts
from ..xlsx.values import constant_xml, decode_value, encode_value, encode_value_b
from .edit import CellEdit, edit_cells
from .files import atomic_write
from .scan import ATTR, FormulaScan, SharedStrings, unescape_formula
from .zipwrite import ZipWriter

__all__ = ["KEEP", "ColumnValues", "patch_cells", "patch_plain", "patch_workbook"]

# Any cell without a formula (the spilled cells of an array formula hold only a value).
# (an inline string stops at the end of its cell: an unclosed <is> costs one cell's length,
# so the scan stays linear in the part)
_PLAIN_CELL = re.compile(
    r'<c (?P<attrs>[^>]*?)(?:/>|>(?:<v>(?P<v>[^<]*)</v>|<v\s*/>|'
    r'<is>(?P<is>(?:[^<]|<(?!/is>|/c>|c[\s/>]))*)</is>)?</c>)')
_IS_TEXT = re.compile(r"<t[^>]*>([^<]*)</t>")


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


#: Bytes of a patched sheet handed on at a time (compressed while the next are patched).
CHUNK = 1 << 20


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
        attrs = dict(ATTR.findall(m["attrs"]))
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


def _set_type(attrs: str, t: str | None) -> str:
    attrs = re.sub(r'\s*\bt="[^"]*"', "", attrs)
    return attrs if t is None else f'{attrs} t="{t}"'


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
    ``sheets`` may hold worksheet XML already read (:func:`~xl_kpis.book.scan.read_sheets`) or
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
