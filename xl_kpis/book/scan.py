"""Find a worksheet's cells in its XML without building a tree: formula cells with their
cached values, array formula ranges, cell styles and contents, shared strings.

The book commands read big sheets (an Orders sheet of 100,000 lines is about 190 MB of XML)
to rewrite some of their cells: the patterns here find the cells in one pass over the bytes,
and a shared string is parsed (with defusedxml, as whole parts are) only when a cell asks
for it.  The cells are written by :mod:`xl_kpis.book.patch` (cached values) and
:mod:`xl_kpis.book.edit` (whole cells).
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Any, Iterator
from xml.sax.saxutils import unescape

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from ..xlsx.books import NS, BookFormatError, open_book, read_part, sheet_parts
from ..xlsx.values import decode_value

__all__ = ["FormulaScan", "SharedStrings", "array_ranges", "cell_contents", "cell_styles",
           "formula_cells", "read_formulas", "read_sheets", "unescape_formula", "ATTR",
           "ATTR_B", "CELL_EL"]

# A formula cell as Excel, XlsxWriter and LibreOffice write it:
#   <c r="K2" s="3" t="str"><f ...>FORMULA</f><v>VALUE</v></c>
# (the <f> of a shared-formula child may be empty: <f t="shared" si="0"/>).
_FORMULA_CELL = re.compile(
    r'<c (?P<attrs>[^>]*?)>(?P<f><f(?P<fattrs>[^>]*?)(?:/>|>(?P<formula>[^<]*)</f>))'
    r'(?:<v>(?P<v>[^<]*)</v>|<v\s*/>)?</c>')
#: An attribute of a start tag (text).
ATTR = re.compile(r'(\w+)="([^"]*)"')


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
        attrs = dict(ATTR.findall(m["attrs"]))
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


# The formula of a cell and its cached value, as Excel, XlsxWriter and LibreOffice write
# them: <c r="K2" s="3" t="str"><f ...>FORMULA</f><v>VALUE</v></c> (the <f> of a
# shared-formula child may be empty: <f t="shared" si="0"/>).  Matching from "<f" is
# several times faster than from every "<c " of a big sheet; the cell's start tag is
# found backwards from there.
_FORMULA_B = re.compile(
    rb'(?P<f><f(?=[ />])[^>]*?(?:/>|>(?P<formula>[^<]*)</f>))(?:<v>(?P<v>[^<]*)</v>|<v\s*/>)?</c>')
_REF_B = re.compile(rb'\br="([A-Z]+\d+)"')
_DIGITS = b"0123456789"


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


#: A cell element (bytes): its attributes, then its content (None for ``<c .../>``).
CELL_EL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
#: An attribute of a start tag (bytes; namespaced names too).
ATTR_B = re.compile(rb'([\w:]+)="([^"]*)"')


def cell_styles(xml: bytes) -> dict[str, str]:
    """``ref -> style index`` of every cell of a worksheet that has a style (``s``)."""
    out = {}
    for m in CELL_EL.finditer(xml):
        attrs = dict(ATTR_B.findall(m.group(1)))
        if b"s" in attrs and b"r" in attrs:
            out[attrs[b"r"].decode()] = attrs[b"s"].decode()
    return out


def cell_contents(xml: bytes) -> dict[str, bool]:
    """``ref -> whether it holds a formula or a value`` of every cell of a worksheet."""
    out = {}
    for m in CELL_EL.finditer(xml):
        attrs = dict(ATTR_B.findall(m.group(1)))
        inner = m.group(2) or b""
        if b"r" in attrs:
            out[attrs[b"r"].decode()] = bool(re.search(rb"<f\b|<is>|<v>[^<]", inner))
    return out


def read_sheets(path: str | os.PathLike) -> dict[str, bytes]:
    """``part name -> XML bytes`` of every worksheet of a workbook (for
    :func:`~xl_kpis.book.patch.patch_workbook` and :func:`array_ranges`, so that each is
    inflated once)."""
    with open_book(path) as z:
        return {part: read_part(z, part) for part in sheet_parts(z).values()}
