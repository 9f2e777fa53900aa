"""Copy worksheets from one workbook into another, as they are, at the XML level.

``xl-kpis build NEW --from BOOK`` lays a seller's data out in a fresh
template; the sheets the seller added to ``BOOK`` go with it unchanged.
openpyxl cannot do this (it copies sheets only within one workbook, and a
load + save drops every cached value), so each sheet is copied as XML:

* its cells, rows, columns and conditional formats keep their look: every
  cell format (``cellXfs``) they use is copied into the target's styles with
  the fonts, fills, borders and number formats it refers to (equal ones are
  shared), and the differential formats (``dxfs``) of conditional formats;
* text held in the source's shared string table becomes inline text (rich
  text runs kept), so the target's table is not touched;
* the parts the sheet refers to (drawings with their charts and images,
  tables, comments …) are copied under new names with their content types;
  a table gets a new ``id``; a pivot table, whose cache belongs to the
  source workbook, is left out and reported;
* the workbook lists the sheet at the end, with its own defined names (print
  area, print titles) and the workbook names that refer to it.

Formulas and their cached values are copied as they are: a formula that
reads the template (``=KPIs!B7``) reads the same cell of the new book.
"""

from __future__ import annotations

import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Sequence
from xml.sax.saxutils import quoteattr, unescape

from .. import package
from ..xlsx.books import BookFormatError, open_book, parse_xml, sheet_parts
from .files import atomic_write
from .zipwrite import ZipWriter

__all__ = ["Copied", "copy_sheets"]

_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
_WORKSHEET_TYPE = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
                   "worksheet")
_WORKSHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_PIVOT = re.compile(r"/pivotTable$|/pivotCacheDefinition$")


@dataclass
class Copied:
    """What :func:`copy_sheets` did."""

    sheets: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


# --- styles -----------------------------------------------------------------------------

#: The containers of styles.xml in schema order, with the tag of their items.
_CONTAINERS = (("numFmts", "numFmt"), ("fonts", "font"), ("fills", "fill"),
               ("borders", "border"), ("cellStyleXfs", "xf"), ("cellXfs", "xf"),
               ("cellStyles", "cellStyle"), ("dxfs", "dxf"), ("tableStyles", "tableStyle"),
               ("colors", None), ("extLst", None))
_ATTR = re.compile(r'([\w:]+)="([^"]*)"')


def _items(xml: str, container: str, tag: str) -> tuple[list[str], re.Match | None]:
    """The raw item elements of a container of styles.xml, and the container's match."""
    m = re.search(rf"<{container}\b[^>]*?(?:/>|>(.*?)</{container}>)", xml, re.S)
    if m is None:
        return [], None
    items = re.findall(rf"<{tag}\b(?:[^>]*?/>|[^>]*?>.*?</{tag}>)", m.group(1) or "", re.S)
    return items, m


class _Styles:
    """The target's styles.xml, growing with the formats copied from a source."""

    def __init__(self, src: str, dst: str) -> None:
        self.src, self.xml = src, dst
        self.src_items = {c: _items(src, c, t)[0] for c, t in _CONTAINERS if t}
        self.new: dict[str, list[str]] = {c: [] for c, t in _CONTAINERS if t}
        self.dst_items = {c: _items(dst, c, t)[0] for c, t in _CONTAINERS if t}
        self.memo: dict[tuple[str, str], str] = {}

    def _add(self, container: str, item: str) -> int:
        """The index of ``item`` in the target's container (appended when new)."""
        have = self.dst_items[container] + self.new[container]
        if item in have:
            return have.index(item)
        self.new[container].append(item)
        return len(have)

    def num_fmt(self, src_id: str) -> str:
        if int(src_id) < 164:            # a built-in format: the same id everywhere
            return src_id
        key = ("numFmt", src_id)
        if key not in self.memo:
            fmt = next((x for x in self.src_items["numFmts"]
                        if re.search(rf'numFmtId="{src_id}"', x)), None)
            if fmt is None:
                return "0"
            code = re.search(r'formatCode="([^"]*)"', fmt).group(1)
            existing = [(re.search(r'numFmtId="(\d+)"', x).group(1),
                         re.search(r'formatCode="([^"]*)"', x).group(1))
                        for x in self.dst_items["numFmts"] + self.new["numFmts"]]
            same = next((i for i, c in existing if c == code), None)
            if same is None:
                same = str(max([int(i) for i, _ in existing] + [163]) + 1)
                self.new["numFmts"].append(f'<numFmt numFmtId="{same}" formatCode="{code}"/>')
            self.memo[key] = same
        return self.memo[key]

    def _item(self, container: str, src_index: str) -> str:
        key = (container, src_index)
        if key not in self.memo:
            items = self.src_items[container]
            i = int(src_index)
            self.memo[key] = str(self._add(container, items[i])) if i < len(items) else "0"
        return self.memo[key]

    def xf(self, src_index: str) -> str:
        """The target's ``cellXfs`` index of the source's cell format ``src_index``."""
        key = ("cellXfs", src_index)
        if key in self.memo:
            return self.memo[key]
        items = self.src_items["cellXfs"]
        i = int(src_index)
        if i >= len(items):
            return "0"
        xf = items[i]
        refs = {"numFmtId": self.num_fmt, "fontId": lambda v: self._item("fonts", v),
                "fillId": lambda v: self._item("fills", v),
                "borderId": lambda v: self._item("borders", v), "xfId": lambda v: "0"}

        def attr(m: re.Match) -> str:
            fn = refs.get(m.group(1))
            return m.group(0) if fn is None else f'{m.group(1)}="{fn(m.group(2))}"'

        head_end = xf.index(">")
        new = _ATTR.sub(attr, xf[:head_end]) + xf[head_end:]
        self.memo[key] = str(self._add("cellXfs", new))
        return self.memo[key]

    def dxf(self, src_index: str) -> str:
        return self._item("dxfs", src_index)

    def result(self) -> str:
        xml = self.xml
        for i, (container, tag) in enumerate(_CONTAINERS):
            if not tag or not self.new[container]:
                continue
            items, m = _items(xml, container, tag)
            count = len(items) + len(self.new[container])
            body = "".join(items + self.new[container])
            element = f'<{container} count="{count}">{body}</{container}>'
            if m is not None:
                head = re.match(rf"<{container}\b([^>]*?)/?>", m.group(0)).group(1)
                head = re.sub(r'\s*\bcount="\d+"', "", head)
                element = f'<{container} count="{count}"{head}>{body}</{container}>'
                xml = xml[:m.start()] + element + xml[m.end():]
                continue
            # insert it before the first container that follows it in schema order
            at = None
            for later, _ in _CONTAINERS[i + 1:]:
                lm = re.search(rf"<{later}\b", xml)
                if lm:
                    at = lm.start()
                    break
            if at is None:
                at = xml.rindex("</styleSheet>")
            xml = xml[:at] + element + xml[at:]
        return xml


# --- the sheet XML ----------------------------------------------------------------------

_CELL = re.compile(r"<c\b([^>]*?)(/>|>(.*?)</c>)", re.S)
_SI = re.compile(r"<si>(.*?)</si>|<si/>", re.S)


def _shared_strings(z: zipfile.ZipFile) -> list[str]:
    name = "xl/sharedStrings.xml"
    if name not in z.namelist():
        return []
    parse_xml(z, name)                          # refused when unsafe
    return [m.group(1) or "" for m in _SI.finditer(z.read(name).decode("utf-8"))]


def _sheet_xml(xml: str, styles: _Styles, strings: list[str]) -> str:
    """A worksheet with its style indexes remapped and shared strings made inline."""

    def cell(m: re.Match) -> str:
        attrs = m.group(1)
        inner = m.group(3)
        attrs = re.sub(r'\bs="(\d+)"', lambda a: f's="{styles.xf(a.group(1))}"', attrs)
        if re.search(r'\bt="s"', attrs) and inner is not None:
            v = re.search(r"<v>(\d+)</v>", inner)
            if v is not None and int(v.group(1)) < len(strings):
                attrs = re.sub(r'\bt="s"', 't="inlineStr"', attrs)
                inner = inner[:v.start()] + f"<is>{strings[int(v.group(1))]}</is>" + \
                    inner[v.end():]
        if inner is None:
            return f"<c{attrs}/>"
        return f"<c{attrs}>{inner}</c>"

    xml = _CELL.sub(cell, xml)
    xml = re.sub(r'(<row\b[^>]*?\bs=")(\d+)"', lambda m: f'{m.group(1)}{styles.xf(m.group(2))}"',
                 xml)
    xml = re.sub(r'(<col\b[^>]*?\bstyle=")(\d+)"',
                 lambda m: f'{m.group(1)}{styles.xf(m.group(2))}"', xml)
    xml = re.sub(r'(\bdxfId=")(\d+)"', lambda m: f'{m.group(1)}{styles.dxf(m.group(2))}"', xml)
    return xml


# --- parts and relationships ----------------------------------------------------------------

def _relative(part: str, target: str) -> str:
    return posixpath.relpath(target, posixpath.dirname(part))


class _Package:
    """The target package: its members, and names given to new ones."""

    def __init__(self, z: zipfile.ZipFile) -> None:
        self.data = {i.filename: z.read(i) for i in z.infolist()}
        self.infos = z.infolist()
        self.added: list[str] = []
        ct = self.data["[Content_Types].xml"].decode("utf-8")
        self.ct = ct

    def free_name(self, like: str) -> str:
        """A part name like ``like`` (``xl/drawings/drawing1.xml``) not used yet."""
        m = re.match(r"(.*?)(\d*)(\.[\w]+)$", like)
        stem, ext = m.group(1), m.group(3)
        n = 1
        while f"{stem}{n}{ext}" in self.data:
            n += 1
        return f"{stem}{n}{ext}"

    def add(self, name: str, data: bytes, content_type: str | None, ext: str) -> None:
        self.data[name] = data
        self.added.append(name)
        if content_type is not None:
            self.ct = self.ct.replace(
                "</Types>", f'<Override PartName="/{name}" ContentType="{content_type}"/></Types>')
        elif not re.search(rf'<Default Extension="{re.escape(ext)}"', self.ct, re.I):
            raise BookFormatError(f"no content type for {name}")

    def default(self, ext: str, content_type: str) -> None:
        if not re.search(rf'<Default Extension="{re.escape(ext)}"', self.ct, re.I):
            self.ct = re.sub(r"(<Types\b[^>]*>)",
                             rf'\1<Default Extension="{ext}" ContentType="{content_type}"/>',
                             self.ct, count=1)


def _content_types(z: zipfile.ZipFile) -> tuple[dict[str, str], dict[str, str]]:
    root = parse_xml(z, "[Content_Types].xml")
    overrides = {o.get("PartName", "").lstrip("/"): o.get("ContentType", "")
                 for o in root.iter(f"{{{_CT}}}Override")}
    defaults = {d.get("Extension", "").lower(): d.get("ContentType", "")
                for d in root.iter(f"{{{_CT}}}Default")}
    return overrides, defaults


def _copy_part(zs: zipfile.ZipFile, part: str, pkg: _Package, copied: Copied,
               types: tuple[dict[str, str], dict[str, str]], done: dict[str, str],
               transform=None) -> str:
    """Copy ``part`` of the source (and what it refers to) into ``pkg``; its new name."""
    if part in done:
        return done[part]
    overrides, defaults = types
    new = pkg.free_name(part) if part in pkg.data or part.startswith("xl/worksheets/") \
        else part
    done[part] = new
    data = zs.read(part)
    if transform is not None:
        data = transform(data)
    if part.startswith("xl/tables/") and part.endswith(".xml"):
        data = _renumber_table(data, pkg)
    ext = part.rsplit(".", 1)[-1].lower()
    if part not in overrides and ext in defaults:
        pkg.default(ext, defaults[ext])
    rels = package.rels_part(part)
    if rels in zs.namelist():
        root = parse_xml(zs, rels)
        xml = zs.read(rels).decode("utf-8")
        for rel in root:
            target, kind = rel.get("Target", ""), rel.get("Type", "")
            if rel.get("TargetMode") == "External":
                continue
            if _PIVOT.search(kind):
                copied.left_out.append(f"{part}: a pivot table (its cache belongs to the"
                                       " source workbook)")
                xml = re.sub(rf'<Relationship\b[^>]*\bId="{rel.get("Id")}"[^>]*/>', "", xml)
                continue
            src_target = package.part_target(part, target)
            if src_target not in zs.namelist():
                continue
            new_target = _copy_part(zs, src_target, pkg, copied, types, done)
            xml = xml.replace(f'Target="{target}"',
                              f'Target="{_relative(new, new_target)}"')
        pkg.add(package.rels_part(new), xml.encode("utf-8"), None, "rels")
    pkg.add(new, data, overrides.get(part), ext)
    copied.parts.append(new)
    return new


def _renumber_table(data: bytes, pkg: _Package) -> bytes:
    """A table part with an ``id`` no table of the target has."""
    used = {int(m) for name, d in pkg.data.items() if name.startswith("xl/tables/")
            for m in re.findall(rb'<table\b[^>]*?\bid="(\d+)"', d)}
    new = max(used, default=0) + 1
    return re.sub(rb'(<table\b[^>]*?\bid=")\d+"', rb'\g<1>%d"' % new, data, count=1)


# --- the workbook ---------------------------------------------------------------------------

def _sheet_list(xml: str) -> list[dict[str, str]]:
    return [dict(_ATTR.findall(m.group(1))) for m in
            re.finditer(r"<sheet\b([^>]*?)/?>", xml)]


def _refers_to(text: str, sheet: str) -> bool:
    quoted = "'" + sheet.replace("'", "''") + "'!"
    return quoted in text or re.search(rf"(?<![\w.']){re.escape(sheet)}!", text) is not None


def copy_sheets(src: str | os.PathLike, dst: str | os.PathLike | BinaryIO, names: Sequence[str],
                out: str | os.PathLike | None = None) -> Copied:
    """Copy the worksheets ``names`` of ``src`` to the end of ``dst`` (written to ``out``,
    in place by default, atomically; ``dst`` may be a workbook in memory, then ``out`` is
    needed).

    Raises
    ------
    BookFormatError
        A workbook cannot be read, a sheet is missing from ``src`` or already in ``dst``.
    """
    src = Path(src)
    if out is None:
        out = dst
    out = Path(out)
    if not hasattr(dst, "read"):
        dst = Path(dst)
    dst_name = dst.name if isinstance(dst, Path) else out.name
    copied = Copied()
    with open_book(src) as zs, zipfile.ZipFile(dst) as zd:
        src_parts, dst_parts = sheet_parts(zs), sheet_parts(zd)
        for name in names:
            if name not in src_parts:
                raise BookFormatError(f"{src.name} has no sheet {name!r}")
            if name in dst_parts:
                raise BookFormatError(f"{dst_name} already has a sheet {name!r}")
        if not names:
            pkg = None
        else:
            pkg = _Package(zd)
            styles = _Styles(zs.read("xl/styles.xml").decode("utf-8"),
                             pkg.data["xl/styles.xml"].decode("utf-8"))
            strings = _shared_strings(zs)
            types = _content_types(zs)
            wb = pkg.data["xl/workbook.xml"].decode("utf-8")
            rels = pkg.data["xl/_rels/workbook.xml.rels"].decode("utf-8")
            src_wb = zs.read("xl/workbook.xml").decode("utf-8")
            src_sheets = [s["name"] for s in _sheet_list(src_wb)]
            done: dict[str, str] = {}
            for name in names:
                part = src_parts[name]
                new = _copy_part(zs, part, pkg, copied, (
                    {**types[0], part: _WORKSHEET_CT}, types[1]), done,
                    transform=lambda d: _sheet_xml(d.decode("utf-8"), styles,
                                                   strings).encode("utf-8"))
                ids = [int(x) for x in re.findall(r'\bId="rId(\d+)"', rels)]
                rid = f"rId{max(ids, default=0) + 1}"
                rels = rels.replace("</Relationships>", f'<Relationship Id="{rid}" Type='
                                    f'"{_WORKSHEET_TYPE}" Target="{_relative("xl/x", new)}"/>'
                                    "</Relationships>")
                sheets = _sheet_list(wb)
                sheet_id = max(int(s.get("sheetId", 0)) for s in sheets) + 1
                wb = re.sub(r"</sheets>", f"<sheet name={quoteattr(name)} sheetId="
                            f'"{sheet_id}" r:id="{rid}"/></sheets>', wb, count=1)
                wb = _copy_names(src_wb, wb, name, src_sheets.index(name), len(sheets))
                copied.sheets.append(name)
            pkg.data["xl/styles.xml"] = styles.result().encode("utf-8")
            pkg.data["xl/workbook.xml"] = wb.encode("utf-8")
            pkg.data["xl/_rels/workbook.xml.rels"] = rels.encode("utf-8")
            pkg.data["[Content_Types].xml"] = pkg.ct.encode("utf-8")
        with atomic_write(out) as f, ZipWriter(f) as w:
            if pkg is None:
                for info in zd.infolist():
                    w.copy(info, zd.read(info))
            else:
                for info in pkg.infos:
                    w.copy(info, pkg.data[info.filename])
                for name in pkg.added:
                    w.copy(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), pkg.data[name], 6)
    return copied


def _copy_names(src_wb: str, wb: str, sheet: str, src_index: int, new_index: int) -> str:
    """``wb`` with the defined names of ``src_wb`` that belong to the sheet (its local
    names) or refer to it (workbook names the target lacks)."""
    have = {(a.get("name"), a.get("localSheetId")) for a in (
        dict(_ATTR.findall(m.group(1))) for m in re.finditer(r"<definedName\b([^>]*)>", wb))}
    add = []
    for m in re.finditer(r"<definedName\b([^>]*)>([^<]*)</definedName>", src_wb):
        attrs = dict(_ATTR.findall(m.group(1)))
        local = attrs.get("localSheetId")
        if local is not None:
            if int(local) != src_index:
                continue
            head = re.sub(r'\blocalSheetId="\d+"', f'localSheetId="{new_index}"', m.group(1))
        elif _refers_to(unescape(m.group(2)), sheet):
            if (attrs.get("name"), None) in have:
                continue
            head = m.group(1)
        else:
            continue
        add.append(f"<definedName{head}>{m.group(2)}</definedName>")
    if not add:
        return wb
    if "<definedNames>" in wb:
        return wb.replace("</definedNames>", "".join(add) + "</definedNames>", 1)
    return wb.replace("</sheets>", "</sheets><definedNames>" + "".join(add) + "</definedNames>",
                      1)

