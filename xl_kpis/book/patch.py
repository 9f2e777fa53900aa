"""Rewrite the cached values of formula cells inside an .xlsx/.xlsm, touching nothing else.

openpyxl cannot do this: a load + save drops every cached value and rebuilds
every part from its object model.  Here the workbook stays a zip of XML
parts: every part is copied byte for byte except the worksheets that hold a
changed value, and in those only the ``<v>`` (and the ``t`` type attribute)
of the formula cells whose value changed are rewritten.

Writes are atomic: the new file is written to a temporary file beside the
target, flushed and fsynced, then renamed over it, so a crash or a kill at
any point leaves either the old file or the new one, never a broken one.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from xml.sax.saxutils import escape, unescape

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
      "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
      "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}

ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
                    "#GETTING_DATA", "#SPILL!", "#CALC!"})

# A formula cell as Excel, XlsxWriter and LibreOffice write it:
#   <c r="K2" s="3" t="str"><f ...>FORMULA</f><v>VALUE</v></c>
# (the <f> of a shared-formula child may be empty: <f t="shared" si="0"/>).
_FORMULA_CELL = re.compile(
    r'<c (?P<attrs>[^>]*?)>(?P<f><f(?P<fattrs>[^>]*?)(?:/>|>(?P<formula>[^<]*)</f>))'
    r'(?:<v>(?P<v>[^<]*)</v>|<v/>)?</c>')
_ATTR = re.compile(r'(\w+)="([^"]*)"')
# Any cell without a formula (the spilled cells of an array formula hold only a value).
_PLAIN_CELL = re.compile(
    r'<c (?P<attrs>[^>]*?)(?:/>|>(?:<v>(?P<v>[^<]*)</v>|<v/>|<is>(?P<is>.*?)</is>)?</c>)')
_IS_TEXT = re.compile(r"<t[^>]*>([^<]*)</t>")


class BookFormatError(ValueError):
    """The file is not a workbook this module can read (one-line message)."""


def sheet_parts(z: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → zip part name of its worksheet XML (from workbook.xml and its rels)."""
    wb = parse_xml(z, "xl/workbook.xml")
    rels = parse_xml(z, "xl/_rels/workbook.xml.rels")
    target = {r.get("Id"): r.get("Target") for r in rels.findall("rel:Relationship", NS)}
    out = {}
    for s in wb.findall("m:sheets/m:sheet", NS):
        t = target[s.get(f"{{{NS['r']}}}id")]
        out[s.get("name")] = t.lstrip("/") if t.startswith("/") else posixpath.normpath(
            posixpath.join("xl", t))
    return out


def defined_names(z: zipfile.ZipFile) -> dict[str, str]:
    """Workbook-level defined names → their reference text (``Start!$B$6``)."""
    wb = parse_xml(z, "xl/workbook.xml")
    return {d.get("name"): (d.text or "") for d in wb.findall("m:definedNames/m:definedName", NS)
            if d.get("localSheetId") is None}


def parse_xml(z: zipfile.ZipFile, name: str):
    """A workbook part parsed with defusedxml; unsafe or broken XML is a BookFormatError."""
    try:
        return SafeET.fromstring(z.read(name))
    except KeyError as e:
        raise BookFormatError(f"not an Excel workbook: missing {name}") from e
    except (DefusedXmlException, SafeET.ParseError) as e:
        raise BookFormatError(f"unsafe or broken XML in {name} ({type(e).__name__})") from e


_ARRAY_F = re.compile(r'<f(?=[^>]*\bt="array")[^>]*\bref="([A-Z]+\d+(?::[A-Z]+\d+)?)"')


def array_ranges(xml: str) -> list[str]:
    """The ranges (``A51:D56``) of the array formulas of a worksheet."""
    return _ARRAY_F.findall(xml)


def col_index(letters: str) -> int:
    """0-based column of the letters of an A1 reference (``"AB"`` -> 27)."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


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
    with _open(path) as z:
        for name, part in sheet_parts(z).items():
            xml = z.read(part).decode("utf-8")
            out[name] = {ref: (f, decode_value(v, t)) for ref, f, v, t in formula_cells(xml)}
    return out


def decode_value(v: str | None, t: str | None) -> Any:
    """A cached ``<v>`` text as a Python value ("" for none)."""
    if v is None:
        return ""
    if t in ("str", "s", "inlineStr", "e"):
        return unescape(v, {"&quot;": '"'})
    if t == "b":
        return v == "1"
    try:
        return float(v)
    except ValueError:
        return unescape(v)


def encode_value(value: Any) -> tuple[str | None, str]:
    """A cell value → (``t`` attribute or None for a number, ``<v>`` text)."""
    if isinstance(value, bool):
        return "b", "1" if value else "0"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
        if not math.isfinite(x):
            return "e", "#NUM!" if not math.isnan(x) else "#DIV/0!"
        return None, repr(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)
    if value is None:
        value = ""
    s = str(value)
    return ("e" if s in ERRORS else "str"), escape(s)


def _same(old_v: str | None, old_t: str | None, v: str, t: str | None) -> bool:
    """Whether a cached value already says ``v`` (numbers compared as numbers, so a
    value written as ``1209.0`` is not rewritten as ``1209``)."""
    if old_v is None or old_t != t:
        return False
    if old_v == v:
        return True
    if t is None:
        try:
            return _sig16(float(old_v)) == _sig16(float(v))
        except ValueError:
            return False
    return False


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
        return shared[int(m["v"])]
    if t == "inlineStr":
        return "".join(unescape(x) for x in _IS_TEXT.findall(m["is"] or ""))
    if m["v"] is None:
        return ""
    return _comparable(decode_value(m["v"], t))


def shared_strings(z: zipfile.ZipFile) -> list[str]:
    """The shared string table (the text of ``t="s"`` cells)."""
    if "xl/sharedStrings.xml" not in z.namelist():
        return []
    root = parse_xml(z, "xl/sharedStrings.xml")
    return ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t"))
            for si in root.findall("m:si", NS)]


def _set_type(attrs: str, t: str | None) -> str:
    attrs = re.sub(r'\s*\bt="[^"]*"', "", attrs)
    return attrs if t is None else f'{attrs} t="{t}"'


KEEP = object()
"""Returned by a ``decide`` callback: leave this cell's cached value as it is."""

_REF = re.compile(r'\br="([A-Z]+\d+)"')
_TYPE = re.compile(r'\bt="(\w+)"')


def patch_xml(xml: str, values: Mapping[str, Any] | Callable[[str, str | None], Any],
              plain: Mapping[str, Any] | None = None,
              shared: list[str] | None = None) -> tuple[str, int]:
    """Rewrite the cached values of formula cells; (xml, cells changed).

    ``values`` is ``{ref: value}``, or a callable ``(ref, formula) -> value``
    returning :data:`KEEP` for a cell to leave alone (``formula`` is None for
    the empty ``<f>`` of a shared-formula child).  ``plain`` gives the values
    of cells without a formula that may be rewritten too: the spilled cells
    of an array formula (only its first cell holds the formula).  Any other cell
    without a formula is never touched.
    """
    changed = 0
    decide = values if callable(values) else (lambda ref, f: values.get(ref, KEEP))
    texts: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        nonlocal changed
        attrs = m["attrs"]
        ref = _REF.search(attrs).group(1)
        formula = m["formula"]
        if formula is not None:
            text = texts.get(formula)
            if text is None:  # a table column repeats one formula: unescape it once
                text = texts[formula] = unescape(formula, {"&quot;": '"'})
            formula = text
        new = decide(ref, formula)
        if new is KEEP:
            return m.group(0)
        t, v = encode_value(new)
        old_t = _TYPE.search(attrs)
        if _same(m["v"], old_t and old_t.group(1), v, t):
            return m.group(0)
        changed += 1
        return f'<c {_set_type(attrs, t)}>{m["f"]}<v>{v}</v></c>'

    xml = _FORMULA_CELL.sub(sub, xml)
    if plain:
        def sub_plain(m: re.Match) -> str:
            nonlocal changed
            attrs = dict(_ATTR.findall(m["attrs"]))
            ref = attrs.get("r")
            if ref not in plain:
                return m.group(0)
            new = plain[ref]
            if _plain_value(m, attrs.get("t"), shared) == _comparable(new):
                return m.group(0)
            changed += 1
            t, v = encode_value(new)
            base = m["attrs"].rstrip(" /")
            if t == "str":  # a cell without a formula holds text as an inline string
                return f'<c {_set_type(base, "inlineStr")}><is><t xml:space="preserve">{v}</t></is></c>'
            return f'<c {_set_type(base, t)}><v>{v}</v></c>'

        xml = _PLAIN_CELL.sub(sub_plain, xml)
    return xml, changed


OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_workbook_file(path: str | os.PathLike) -> None:
    """Raise :class:`BookFormatError` (one line) for a file that cannot be an .xlsx/.xlsm."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except FileNotFoundError as e:
        raise BookFormatError(f"{p}: no such file") from e
    except IsADirectoryError as e:
        raise BookFormatError(f"{p}: is a folder, not a workbook") from e
    if head == OLE2_MAGIC:
        raise BookFormatError(f"{p}: password-protected (encrypted) or a legacy .xls workbook;"
                              " save it unprotected as .xlsx/.xlsm")
    if not zipfile.is_zipfile(p):
        raise BookFormatError(f"{p}: not an .xlsx/.xlsm file (not a zip archive, or truncated)")


def _open(path: str | os.PathLike) -> zipfile.ZipFile:
    check_workbook_file(path)
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise BookFormatError(f"{os.fspath(path)}: not an .xlsx/.xlsm file (not a zip archive,"
                              " or truncated)") from e
    except FileNotFoundError as e:
        raise BookFormatError(f"{os.fspath(path)}: no such file") from e


def patch_workbook(src: str | os.PathLike, dst: str | os.PathLike,
                   values: Mapping[str, Mapping[str, Any] | Callable[[str, str | None], Any]],
                   plain: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """Copy ``src`` to ``dst`` with new cached values; the number of cells changed.

    ``values`` maps a sheet name to ``{ref: value}`` or to a callable
    ``(ref, formula) -> value | KEEP`` (see :func:`patch_xml`); ``plain``
    maps a sheet to ``{ref: value}`` of spilled array cells to rewrite.

    Every zip member other than the patched worksheets is copied with its
    bytes, compression and timestamp unchanged; the write is atomic.
    """
    total = 0
    with _open(src) as z:
        parts = sheet_parts(z)
        unknown = (set(values) | set(plain or {})) - set(parts)
        if unknown:
            raise BookFormatError(f"{os.fspath(src)}: no sheet named {sorted(unknown)[0]!r}")
        by_part = {parts[s]: v for s, v in values.items() if v}
        plain_by_part = {parts[s]: v for s, v in (plain or {}).items()}
        shared = shared_strings(z) if plain_by_part else None
        patched: dict[str, bytes] = {}
        for name in set(by_part) | set(plain_by_part):
            xml, n = patch_xml(z.read(name).decode("utf-8"), by_part.get(name, {}),
                               plain_by_part.get(name), shared)
            if n:
                patched[name] = xml.encode("utf-8")
                total += n
        same_file = os.path.exists(dst) and os.path.samefile(src, dst)
        if not patched and same_file:
            return 0                      # nothing to change: the file is not rewritten
        with atomic_write(dst) as out:
            if not patched:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out)
                return 0
            with zipfile.ZipFile(out, "w") as zout:
                for info in z.infolist():
                    data = patched.get(info.filename)
                    if data is None:
                        zout.writestr(info, z.read(info), compress_type=info.compress_type)
                    else:  # a rewritten sheet: fast compression (the XML is the same either way)
                        zout.writestr(info, data, compress_type=info.compress_type,
                                      compresslevel=1)
    return total


class atomic_write:
    """Context manager yielding a binary file object; on success it replaces ``path``.

    The temporary file lives in the target's directory (same file system, so
    ``os.replace`` is atomic); it is flushed and fsynced before the rename and
    removed when anything fails.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self):
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                        dir=self.path.parent)
        self.file = os.fdopen(fd, "w+b")
        return self.file

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if exc_type is None:
                if self.path.exists():
                    os.chmod(self.tmp, self.path.stat().st_mode & 0o777)
                os.replace(self.tmp, self.path)
                _fsync_dir(self.path.parent)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def lock_file(path: str | os.PathLike) -> Path | None:
    """Excel's owner file (``~$BOOK.xlsx``) when the book is open in Excel, else None."""
    p = Path(path)
    for name in (f"~${p.name}", f"~${p.name[2:]}"):
        candidate = p.with_name(name)
        if candidate.exists():
            return candidate
    return None
