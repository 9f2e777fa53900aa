"""Opening a book safely and reading its parts: sheets, tables, defined names.

A workbook is a zip of XML parts.  :func:`open_book` opens one for reading
after checking that it can be one (:func:`check_workbook_file`: not an
encrypted or legacy .xls file, a zip at all), within the bounds of
:mod:`xl_kpis.package` (no zip bomb, no part inflated beyond its declared
size); :func:`parse_xml` parses a part with defusedxml (no DTD, no entity
expansion).  Every failure is a :class:`BookFormatError` with a one-line
message naming the file, which the command line prints as it is.

The book commands (:mod:`xl_kpis.book`) read books through this module; what
they then do (rewrite cached values, append rows, copy sheets) is theirs.

Sources: ECMA-376 Part 1, the workbook part (``xl/workbook.xml``: ``sheets``,
``definedNames``) and its relationships; ECMA-376 Part 2 (Open Packaging
Conventions); MS-CFB for the signature of an OLE2 compound file (an encrypted
.xlsx or a legacy .xls).
"""

from __future__ import annotations

import contextlib
import os
import zipfile

from .. import package
from ..package import PackageError

__all__ = ["NS", "OLE2_MAGIC", "BookFormatError", "check_workbook_file", "open_book",
           "package_errors", "read_part", "parse_xml", "sheet_parts", "table_sheets",
           "defined_names"]

#: The namespaces of a workbook's parts, by the prefixes the code uses.
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
      "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
      "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}

#: The first bytes of an OLE2 compound file: an encrypted (password-protected) .xlsx or a
#: legacy .xls.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class BookFormatError(ValueError):
    """The file is not a workbook this package can read (one-line message)."""


def _zip_name(z: zipfile.ZipFile) -> str:
    return os.path.basename(z.filename or "") or "the workbook"


@contextlib.contextmanager
def package_errors(z: zipfile.ZipFile | str | os.PathLike | None = None):
    """A damaged or oversized package (:class:`~xl_kpis.package.PackageError`) as a
    BookFormatError whose message starts with the file's name."""
    try:
        yield
    except PackageError as e:
        text = str(e)
        if z is not None and not isinstance(z, zipfile.ZipFile):
            name = os.path.basename(os.fspath(z))
            text = text if text.startswith(f"{name}:") else f"{name}: {text}"
        elif isinstance(z, zipfile.ZipFile) and not text.startswith(_zip_name(z)):
            text = f"{_zip_name(z)}: {text}"
        raise BookFormatError(text) from e


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


def open_book(path: str | os.PathLike) -> zipfile.ZipFile:
    """A workbook opened for reading: checked as :func:`check_workbook_file` does, its
    members within the bounds of :mod:`xl_kpis.package` (a zip bomb is a
    BookFormatError), and read without inflating a part beyond its declared size."""
    check_workbook_file(path)
    with package_errors(path):
        return package.open_zip(path)


def read_part(z: zipfile.ZipFile, name: str | zipfile.ZipInfo) -> bytes:
    """A part of the package (never inflated beyond its declared size when ``z`` comes from
    :func:`open_book`); a damaged part is a BookFormatError."""
    with package_errors(z):
        return z.read(name)


def _require(z: zipfile.ZipFile, *names: str) -> None:
    for name in names:
        if name not in z.NameToInfo:
            raise BookFormatError(f"{_zip_name(z)}: not an Excel workbook: missing {name}")


def parse_xml(z: zipfile.ZipFile, name: str):
    """A workbook part parsed with defusedxml (:func:`xl_kpis.package.read_xml`); a missing
    part, unsafe or broken XML is a BookFormatError."""
    _require(z, name)
    with package_errors(z):
        return package.read_xml(z, name)


def sheet_parts(z: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → zip part name of its worksheet XML (from workbook.xml and its rels,
    :func:`xl_kpis.package.worksheets`).

    A sheet without a relationship, a relationship without a target or
    pointing outside the package, or a missing part is a BookFormatError.
    """
    _require(z, "xl/workbook.xml", "xl/_rels/workbook.xml.rels")
    with package_errors(z):
        return package.worksheets(z)


def table_sheets(z: zipfile.ZipFile) -> dict[str, list[str]]:
    """Table name (``name`` and ``displayName``) → the worksheet parts holding a table of
    that name (a well-formed book has one per name)."""
    out: dict[str, list[str]] = {}
    names = set(z.namelist())
    for part in sheet_parts(z).values():
        rels = package.rels_part(part)
        if rels not in names:
            continue
        for rel in parse_xml(z, rels).findall("rel:Relationship", NS):
            if not rel.get("Type", "").endswith("/table"):
                continue
            with package_errors(z):
                table = package.part_target(part, rel.get("Target"), names)
            root = parse_xml(z, table)
            for key in {root.get("name"), root.get("displayName")} - {None}:
                out.setdefault(key, []).append(part)
    return out


def defined_names(z: zipfile.ZipFile) -> dict[str, str]:
    """Workbook-level defined names → their reference text (``Start!$B$6``)."""
    wb = parse_xml(z, "xl/workbook.xml")
    return {d.get("name"): (d.text or "") for d in wb.findall("m:definedNames/m:definedName", NS)
            if d.get("localSheetId") is None}
