"""Zip packages (xlsx workbooks, Studio exports) read within fixed bounds.

A workbook or an export may come from anywhere, so nothing read from a zip is
trusted to be small.  Every bound a hostile file could push is checked here,
before and while reading, by the code that reads books (:mod:`xl_kpis.book`)
and exports (:mod:`xl_kpis.imports`):

* the central directory, before anything is inflated (:func:`check_members`):
  at most :data:`MAX_MEMBERS` members, at most :data:`MAX_TOTAL` bytes once
  inflated (as declared), no member above :data:`RATIO_FLOOR` bytes inflating
  more than :data:`MAX_RATIO` times its compressed size, nor the package as a
  whole; only stored or deflated members, none encrypted;
* every member read (:meth:`BoundedZipFile.read`): never more bytes than its
  declared size are inflated (a member whose data inflates further fails its
  CRC check and is refused), so the declared sizes checked above hold;
* a worksheet python-calamine is about to read (:func:`check_cells`):
  calamine lays a sheet out as a dense grid from its first to its last used
  cell, so two cells far apart (``A1`` and ``XFD1048576``) would make it
  allocate half a terabyte from a 2 KB file.  The grid may hold at most
  ``max(MIN_CELLS, len(xml) // BYTES_PER_CELL)`` cells.

Messages are one line and name the file and the member.
"""

from __future__ import annotations

import html
import os
import posixpath
import re
import zipfile
import zlib
from typing import Iterable, Iterator

import numpy as np

__all__ = ["PackageError", "TooLarge", "MAX_MEMBERS", "MAX_TOTAL", "MAX_RATIO", "RATIO_FLOOR",
           "MIN_CELLS", "BYTES_PER_CELL", "BoundedZipFile", "open_zip", "check_members",
           "check_cells", "check_no_dtd", "cell_grid", "part_target", "rels_part", "read_xml",
           "worksheets"]

#: Members of a package.
MAX_MEMBERS = 10_000
#: Bytes of a whole package once inflated (its members' declared sizes): a book of about
#: 150,000 order lines.  What a command holds in memory is a small multiple of it (the
#: README's "Hostile files" gives the measured bound).
MAX_TOTAL = 256 << 20
#: Inflated / compressed size of a member above :data:`RATIO_FLOOR` bytes, and of the whole
#: package (real workbook parts compress 5 to 30 times; zip bombs 1000 times and more).
MAX_RATIO = 100
#: Members up to this many inflated bytes are not held to :data:`MAX_RATIO` one by one.
RATIO_FLOOR = 1 << 20
#: Cells of the grid python-calamine lays out for any worksheet, however small its XML.
MIN_CELLS = 1 << 20
#: A bigger worksheet's grid may hold one cell per this many bytes of its XML (a cell takes
#: at least ``<c r="A1"/>``: 11 bytes; a real one with a value 20 and more).
BYTES_PER_CELL = 8


class PackageError(ValueError):
    """A zip package that is damaged or exceeds a bound (one-line message)."""


class TooLarge(PackageError):
    """A package beyond the bound of its inflated size that compresses as real files do:
    a big file, not a zip bomb."""


def _base(name: str | os.PathLike | None) -> str:
    text = os.fspath(name) if name is not None else "the package"
    return os.path.basename(text) or text


def check_members(infos: Iterable[zipfile.ZipInfo], name: str = "the package",
                  max_total: int | None = None) -> None:
    """Refuse a zip whose central directory promises too much (see the module doc).

    ``name`` names the file in the message; ``max_total`` is the bound of the
    inflated total (default :data:`MAX_TOTAL`).
    """
    infos = list(infos)
    max_total = MAX_TOTAL if max_total is None else min(max_total, MAX_TOTAL)
    if len(infos) > MAX_MEMBERS:
        raise PackageError(f"{name}: holds {len(infos):,} files, more than {MAX_MEMBERS:,}")
    total = packed = 0
    for i in infos:
        if i.flag_bits & 0x1:
            raise PackageError(f"{name}: {i.filename} is encrypted")
        if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise PackageError(f"{name}: {i.filename} uses compression method "
                               f"{i.compress_type}, not deflate")
        size = i.file_size
        if size > RATIO_FLOOR and _past_ratio(size, i.compress_size):
            raise _bomb(f"{name}: {i.filename}", size, i.compress_size)
        total += size
        packed += i.compress_size
        if total > max_total:
            text = (f"{name}: inflates to more than {max_total >> 20:,} MiB, the most xl-kpis "
                    "reads from one file")
            if _past_ratio(total, packed):
                raise PackageError(text + " (a zip bomb?)")
            raise TooLarge(text)
    if total > RATIO_FLOOR and _past_ratio(total, packed):
        raise _bomb(f"{name}:", total, packed)


def _past_ratio(size: int, packed: int) -> bool:
    """Whether ``size`` bytes inflated from ``packed`` bytes is more than :data:`MAX_RATIO`
    times: a zip bomb's ratio, not a real file's."""
    return size > MAX_RATIO * max(packed, 1)


def _bomb(what: str, size: int, packed: int) -> PackageError:
    """The refusal of ``what`` (a package, a member) that inflates past the ratio."""
    return PackageError(f"{what} inflates {size // max(packed, 1):,} times its size "
                        f"({size >> 20:,} MiB; a zip bomb?)")


_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, zipfile.LargeZipFile,
            NotImplementedError, RuntimeError)


class BoundedZipFile(zipfile.ZipFile):
    """A :class:`zipfile.ZipFile` for reading that checks its members (:func:`check_members`)
    when opened and never inflates a member beyond its declared size.

    ``read`` raises :class:`PackageError` (one line, naming the file and the
    member) for a damaged member, a missing one, or one whose data does not
    match its declared size and CRC.
    """

    def __init__(self, file, max_total: int | None = None) -> None:
        super().__init__(file)
        try:
            check_members(self.infolist(), _base(self.filename), max_total)
        except PackageError:
            self.close()
            raise

    def read(self, name: str | zipfile.ZipInfo, pwd: bytes | None = None) -> bytes:
        """The content of a member: at most its declared size is ever inflated."""
        try:
            info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        except KeyError:
            raise PackageError(f"{_base(self.filename)}: has no part {name}") from None
        try:
            with self.open(info, pwd=pwd) as f:
                data = f.read(info.file_size)   # one bounded inflate; the CRC is checked
                if f.read(1):                   # at the declared end
                    raise zipfile.BadZipFile("more data than declared")
        except _DAMAGED as e:
            raise PackageError(f"{_base(self.filename)}: {info.filename} is damaged "
                               f"({e})") from e
        if len(data) != info.file_size:
            raise PackageError(f"{_base(self.filename)}: {info.filename} is truncated")
        return data


def open_zip(path: str | os.PathLike, max_total: int | None = None) -> BoundedZipFile:
    """Open a zip for reading (:class:`BoundedZipFile`); PackageError when it is not one."""
    try:
        return BoundedZipFile(path, max_total)
    except PackageError:
        raise
    except FileNotFoundError as e:
        raise PackageError(f"{_base(path)}: no such file") from e
    except IsADirectoryError as e:
        raise PackageError(f"{_base(path)}: is a folder") from e
    except (*_DAMAGED, ValueError) as e:
        raise PackageError(f"{_base(path)}: not a readable zip file (truncated or damaged:"
                           f" {e})") from e


def rels_part(part: str) -> str:
    """The part holding the relationships of ``part`` (``xl/worksheets/_rels/sheet1.xml.rels``).

    >>> rels_part("xl/worksheets/sheet1.xml")
    'xl/worksheets/_rels/sheet1.xml.rels'
    """
    return posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")


def part_target(source: str, target: str | None, names: Iterable[str] | None = None
                ) -> str:
    """The part a relationship of part ``source`` points to.

    ``target`` is relative to the source's folder, or absolute from the
    package root.  PackageError when it is missing, leaves the package or
    (given the package's ``names``) does not exist.
    """
    if not target:
        raise PackageError(f"a relationship of {source} has no target")
    if "://" in target or target.startswith("\\"):
        raise PackageError(f"a relationship of {source} points outside the package "
                           f"({target[:80]!r})")
    if target.startswith("/"):
        part = posixpath.normpath(target.lstrip("/"))
    else:
        part = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
    if part.startswith("../") or part in ("..", ".", ""):
        raise PackageError(f"a relationship of {source} points outside the package "
                           f"({target[:80]!r})")
    if names is not None and part not in names:
        raise PackageError(f"{part} is missing (named by a relationship of {source})")
    return part


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_STRICT = "{http://purl.oclc.org/ooxml/spreadsheetml/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_REL_ID_STRICT = "{http://purl.oclc.org/ooxml/officeDocument/relationships}id"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"


def read_xml(z: zipfile.ZipFile, part: str):
    """A part parsed with defusedxml (no DTD, no entity expansion); PackageError when it is
    missing, unsafe or broken."""
    from defusedxml import DefusedXmlException
    from defusedxml import ElementTree as SafeET

    if part not in z.NameToInfo:
        raise PackageError(f"{_base(z.filename)}: has no part {part}")
    try:
        return SafeET.fromstring(z.read(part))
    except (DefusedXmlException, SafeET.ParseError) as e:
        raise PackageError(f"{_base(z.filename)}: unsafe or broken XML in {part} "
                           f"({type(e).__name__})") from e


def worksheets(z: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → its worksheet part, from ``xl/workbook.xml`` and its relationships (as
    python-calamine finds them); PackageError for a sheet whose part is missing or outside
    the package."""
    wb = read_xml(z, "xl/workbook.xml")
    rels = read_xml(z, "xl/_rels/workbook.xml.rels")
    target = {r.get("Id"): r.get("Target") for r in rels.iter(_RELS)}
    names = set(z.namelist())
    out = {}
    for ns in (_MAIN, _STRICT):
        for sheet in wb.iter(f"{ns}sheet"):
            rid = sheet.get(_REL_ID) or sheet.get(_REL_ID_STRICT)
            if rid not in target:
                raise PackageError(f"{_base(z.filename)}: sheet {sheet.get('name')!r} has no "
                                   "relationship in xl/_rels/workbook.xml.rels")
            try:
                out[sheet.get("name")] = part_target("xl/workbook.xml", target[rid], names)
            except PackageError as e:
                raise PackageError(f"{_base(z.filename)}: {e}") from None
    return out


# --- the cell grid of a worksheet --------------------------------------------------------

_CHUNK = 1 << 20
_WIN = 13                      # bytes of a reference read (3 letters, 9 digits and a quote)
_COLS = np.arange(_WIN)
_DELIMS = np.zeros(256, dtype=bool)
_DELIMS[[9, 10, 13, 32, 47, 62]] = True          # what may follow "<c" / "<row"
_TAG_R = re.compile(rb"""\sr\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_LETTERS = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"\d+")


def _find2(c: np.ndarray, pat: bytes) -> np.ndarray:
    """Positions of the two bytes ``pat`` in ``c``, in order."""
    m = c[:-1] == pat[0]
    m &= c[1:] == pat[1]
    return np.flatnonzero(m)


def _chunks(xml: bytes, tag: bytes) -> Iterator[tuple[int, np.ndarray, int, np.ndarray]]:
    """Scan ``xml`` in chunks for the two bytes ``tag`` (``b"<c"``, ``b"<r"``): per chunk,
    ``(offset, window, limit, tags)``.

    ``window`` holds the chunk's ``limit`` bytes (from ``offset`` of ``xml``) and the
    next :data:`_WIN` + 8 bytes, zeros past the end of ``xml``, so that a tag's name and
    attribute read from it never need a bound check; ``tags`` are the positions in it of
    the tags that start within the chunk.  One buffer serves every chunk: read it before
    asking for the next.
    """
    a = np.frombuffer(xml, np.uint8)
    n = len(a)
    c = np.zeros(_CHUNK + _WIN + 8, np.uint8)
    for s in range(0, n, _CHUNK):
        m = min(len(c), n - s)
        c[:m] = a[s:s + m]
        c[m:] = 0
        limit = min(_CHUNK, n - s)
        tags = _find2(c[:limit + 1], tag)
        yield s, c, limit, tags[tags < limit]


def _number(w: np.ndarray, base: int, zero: int) -> int:
    """The largest of the numbers written in the rows of ``w`` (same width, no sign)."""
    out = np.zeros(len(w), np.int64)
    for j in range(w.shape[1]):
        out = out * base + (w[:, j].astype(np.int64) - zero)
    return int(out.max())


class _Grid:
    """What :func:`cell_grid` gathers: the furthest row and column addressed, and the tags
    to read one by one."""

    def __init__(self, exact: bool) -> None:
        self.exact = exact
        self.row = self.col = 0
        self.odd: list[int] = []           # offsets of tags in an unusual form
        self.rows: list[np.ndarray] = []   # offsets of the <row elements

    def cells(self, c: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Read the references after ``<c r="`` at offsets ``at`` of ``c`` (letters,
        digits, a quote); the mask of those read (the others are tags to read one by one).

        Exactly (``self.exact``), or as a cheap upper bound: a reference of ``k``
        letters led by ``L`` (1 to 26) is below column ``(L + 2) * 26**(k - 1)`` (the
        letters after it add less than ``26**(k - 1) * 26/25``), one of ``d`` digits
        led by ``D`` below row ``(D + 1) * 10**(d - 1)``.  The bound needs no
        check that the bytes between are digits: python-calamine refuses the whole
        sheet when a reference is anything but letters then digits.
        """
        w = np.lib.stride_tricks.sliding_window_view(c, _WIN)[at]
        rows = np.arange(len(w))
        low = w | np.uint8(32)                      # either case (calamine reads both)
        nlet = np.argmin((low - np.uint8(97)) < 26, axis=1)
        end = np.argmax(w == 34, axis=1)
        ndig = end - nlet
        ok = (nlet >= 1) & (nlet <= 3) & (ndig >= 1) & (ndig <= 9)
        if self.exact:
            digits = np.packbits((w - np.uint8(48)) < 10, axis=1,
                                 bitorder="little").view("<u2")[:, 0]
            below_end = np.left_shift(1, end, dtype=np.int64) - 1
            below_letters = np.left_shift(1, nlet, dtype=np.int64) - 1
            ok &= (digits & below_end) == below_end - below_letters
            ok &= ((w[:, :3] - np.uint8(65)) < 26).sum(axis=1) >= nlet   # upper case
        if not ok.any():
            return ok
        w, low, nlet, ndig, rows = w[ok], low[ok], nlet[ok], ndig[ok], rows[:int(ok.sum())]
        if self.exact:
            k = int(nlet.max())
            self.col = max(self.col, _number(w[nlet == k, :k], 26, 64))
            k = int(ndig.max())
            sel = np.flatnonzero(ndig == k)
            self.row = max(self.row, _number(w[sel[:, None], nlet[sel][:, None] + _COLS[:k]],
                                             10, 48))
        else:
            lead = low[:, 0].astype(np.int64) - 96
            self.col = max(self.col, int(((lead + 2) * 26 ** (nlet - 1)).max()))
            lead = np.clip(w[rows, nlet].astype(np.int64) - 48, 0, 9)
            self.row = max(self.row, int(((lead + 1) * 10 ** (ndig - 1)).max()))
        return ok

    def row_numbers(self, c: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Read the row numbers after ``<row r="`` at offsets ``at``; the mask of those read."""
        w = np.lib.stride_tricks.sliding_window_view(c, _WIN)[at]
        nd = np.argmin((w - np.uint8(48)) < 10, axis=1)
        ok = (nd >= 1) & (nd <= 9) & (w[np.arange(len(w)), nd] == 34)
        if ok.any():
            k = int(nd[ok].max())
            self.row = max(self.row, _number(w[ok & (nd == k), :k], 10, 48))
        return ok

    def tag(self, xml: bytes, at: int) -> tuple[bool, int, int] | None:
        """(is a row, row, column; 0 when not given) of the tag starting at ``at`` read with
        a regex; None when it has no address."""
        end = xml.find(b">", at)
        tag = xml[at:end if end >= 0 else len(xml)]
        name = tag[1:].split(None, 1)[0].split(b"/")[0] if len(tag) > 1 else b""
        is_row = name.rsplit(b":", 1)[-1] == b"row"
        m = _TAG_R.search(tag)
        if m is None:
            return None
        ref = html.unescape((m.group(1) if m.group(1) is not None else m.group(2)).decode(
            "utf-8", "replace"))
        letters, number = _LETTERS.search(ref), _NUMBER.search(ref)
        col = 0
        if letters and not is_row:
            for ch in letters.group(0).upper()[:8]:
                col = col * 26 + ord(ch) - 64
            if len(letters.group(0)) > 8:
                col = 26 ** 9
        row = int(number.group(0)[:12]) if number else 0
        return is_row, row, col


def cell_grid(xml: bytes, exact: bool = True) -> tuple[int, int]:
    """(rows, columns) of a grid that holds every cell of a worksheet where python-calamine
    places it: from A1 to the furthest row and column addressed, plus the rows and cells
    that carry no address of their own (each follows the one before it).  Not
    ``exact``: a grid at least that large, found faster (see :meth:`_Grid.cells`).

    One pass over the XML with numpy; tags not in the form every writer uses
    (``<c r="B5"``), prefixed (``<x:c``) or escaped are read one by one, and
    the rows are looked at only when a cell has no address.
    """
    n = len(xml)
    g = _Grid(exact)
    for s, c, limit, tags in _chunks(xml, b"<c"):
        cells = tags[_DELIMS[c[tags + 2]]]
        regular = (c[cells + 2] == 32) & (c[cells + 3] == 114) & (c[cells + 4] == 61) & \
            (c[cells + 5] == 34)
        at = cells[regular]
        if at.size:
            g.odd.extend((at[~g.cells(c, at + 6)] + s).tolist())
        g.odd.extend((cells[~regular] + s).tolist())
        colons = np.flatnonzero(c[:limit] == 58)        # a prefixed element: <x:c ...>
        if colons.size:
            cell = _DELIMS[c[colons + 2]] & (c[colons + 1] == 99)
            row = (c[colons + 1] == 114) & (c[colons + 2] == 111) & (c[colons + 3] == 119) & \
                _DELIMS[c[colons + 4]]
            for t in (colons[cell | row] + s).tolist():
                lt = xml.rfind(b"<", max(0, t - 256), t)
                if lt >= 0 and re.fullmatch(rb"<[A-Za-z_][\w.-]*", xml[lt:t]):
                    g.odd.append(lt)
    rows_alone, cells_alone = 0, []
    for at in sorted(set(g.odd)):
        found = g.tag(xml, at)
        if found is None:
            name = xml[at + 1:at + 64].split(None, 1)[0] if at + 1 < n else b""
            if name.rsplit(b":", 1)[-1].startswith(b"row"):
                rows_alone += 1
            else:
                cells_alone.append(at)
            continue
        is_row, row, col = found
        g.row, g.col = max(g.row, row), max(g.col, col)
    extra_cols = 0
    if cells_alone:                       # they take their row's number and follow the cell
        rows = _rows(xml, g)              # before them: count them per row
        extra_cols = int(np.bincount(np.searchsorted(rows, np.asarray(cells_alone))).max())
    return g.row + rows_alone + (1 if cells_alone else 0), g.col + extra_cols


def _rows(xml: bytes, g: _Grid) -> np.ndarray:
    """Offsets of the ``<row`` elements; their numbers (and the rows without one) go into
    ``g``."""
    out, odd = [], []
    for s, c, _, tags in _chunks(xml, b"<r"):
        rows = tags[(c[tags + 2] == 111) & (c[tags + 3] == 119) & _DELIMS[c[tags + 4]]]
        out.append(rows + s)
        regular = (c[rows + 4] == 32) & (c[rows + 5] == 114) & (c[rows + 6] == 61) & \
            (c[rows + 7] == 34)
        at = rows[regular]
        if at.size:
            odd.extend((at[~g.row_numbers(c, at + 8)] + s).tolist())
        odd.extend((rows[~regular] + s).tolist())
    for at in odd:
        found = g.tag(xml, at)
        if found is None:
            g.row += 1                   # a row without a number: the one after the last
        else:
            g.row = max(g.row, found[1])
    return np.concatenate(out)


_ROOT = re.compile(rb"<[A-Za-z_]")
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def check_no_dtd(xml: bytes, name: str, part: str) -> None:
    """Refuse an XML part that declares a DTD (entities are never needed in a workbook part,
    and an entity bomb would expand in a reader that allows them)."""
    root = _ROOT.search(xml)
    if _DOCTYPE.search(xml, 0, root.start() if root else len(xml)):
        raise PackageError(f"{name}: {part} declares a DTD or entities (an XML entity "
                           "bomb?); refusing to read it")


def check_cells(xml: bytes, name: str, part: str) -> None:
    """Refuse a worksheet python-calamine is to read that declares a DTD
    (:func:`check_no_dtd`), or whose cells lie so far apart that the grid calamine makes
    of them (:func:`cell_grid`) would hold more than ``max(MIN_CELLS, len(xml) //
    BYTES_PER_CELL)`` cells."""
    check_no_dtd(xml, name, part)
    limit = max(MIN_CELLS, len(xml) // BYTES_PER_CELL)
    rows, cols = cell_grid(xml, exact=False)     # a bound: usually enough to pass
    if rows * cols > limit:
        rows, cols = cell_grid(xml)
    if rows * cols > limit:
        raise PackageError(f"{name}: {part} spreads its cells over {rows:,} rows x {cols:,} "
                           f"columns, more than {limit:,} cells for {len(xml):,} bytes "
                           "(a cell far from the others?)")
