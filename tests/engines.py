"""Check built workbooks through engines nobody here wrote.

* **pycel** (the stand-in for Excel): :func:`recompute_all` recomputes every
  formula cell with our UDFs as a plugin (:mod:`pycel_plugin`) and pairs the
  value cached in the file with the value pycel computes; :func:`mismatches`
  keeps the pairs that differ.  :func:`plant_cached_value` writes a wrong
  cached value into a copy, to prove the check can fail.
* **LibreOffice** headless: :func:`lo_convert` (one throw-away profile per
  call, optionally forcing a full recalculation on load, optionally with the
  xl-kpis extension: :func:`lo_extension_profile`), :func:`lo_recompute`
  (LibreOffice recomputes every formula with the extension),
  :func:`lo_csv_sheets` (what every sheet displays), :func:`lo_display_problems`
  (error texts LibreOffice shows where the file does not cache that error),
  :func:`pdf_to_pngs`, :func:`pdf_page_texts`, :func:`render_pdf_page` (one
  page, cropped to its content: the README screenshots).
* **python-calamine**: :func:`calamine_read_all`, :func:`calamine_tables`.
* **openxml-audit** (a port of Microsoft's Open XML SDK validation):
  :func:`openxml_audit` (what it finds against Microsoft 365's schemas).

Missing tools: :func:`require_tool` fails under CI (``CI`` set) and skips
otherwise.  Import from tests as ``from engines import ...``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import importlib
import math
import numbers
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from xml.sax.saxutils import escape

import pytest

__all__ = [
    "ERROR_TEXTS", "PLUGIN", "CSV_ALL_SHEETS", "in_ci", "require_tool", "pycel_compiler",
    "formula_cells", "cell_values", "recompute_all", "normalise", "same_value",
    "mismatches", "plant_cached_value", "lo_extension_profile", "lo_profile", "lo_convert",
    "lo_recompute", "lo_csv_sheets",
    "lo_display_problems", "lo_keeps_cached", "udf_names_in", "pdf_to_pngs",
    "pdf_page_texts", "render_pdf_page", "LO_PDF_ONE_PAGE_PER_SHEET", "calamine_read_all", "calamine_tables",
    "chart_caches", "chart_cache_mismatches", "openxml_audit", "pdf_words",
]

#: Error values as Excel shows them (and as pycel and our UDFs return them).
ERROR_TEXTS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
                         "#GETTING_DATA", "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!",
                         "#CONNECT!", "#UNKNOWN!", "#BUSY!", "#PYTHON!"})

#: The pycel plugin module with our UDFs (tests/pycel_plugin.py).
PLUGIN = "pycel_plugin"

#: LibreOffice ≥ 7.2 CSV filter: comma, double quotes, UTF-8, from row 1, cells
#: as shown (formatted), no formulas, all sheets (-1: one file per sheet,
#: ``<base>-<Sheet>.csv``).
CSV_ALL_SHEETS = 'csv:Text - txt - csv (StarCalc):44,34,UTF8,1,,0,false,true,false,false,false,-1'

#: LibreOffice ≥ 7.4 PDF export with JSON filter options: each sheet on one page,
#: at 100 % (what the sheet looks like on screen rather than printed).
LO_PDF_ONE_PAGE_PER_SHEET = 'pdf:calc_pdf_Export:{"SinglePageSheets":{"type":"boolean","value":"true"}}'

_TOOLS = {
    "soffice": "LibreOffice (Debian package libreoffice-calc)",
    "pdftoppm": "poppler-utils",
    "pdftotext": "poppler-utils",
    "pycel": "pip install pycel==1.0b30 (the project's [test] extra)",
    "python_calamine": "pip install python-calamine",
    "uno": "LibreOffice's Python bridge (Debian package python3-uno; scripts/setup.sh installs it)",
    "openxml_audit": "pip install openxml-audit==0.8.0 (the project's [test] extra)",
}


# --- missing tools: fail in CI, skip elsewhere ----------------------------------

def in_ci() -> bool:
    """True when the environment variable ``CI`` is set (to anything but 0/false/no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(name: str) -> None:
    """Make sure ``name`` (an executable or an importable module) is available.

    Missing: under CI the test fails with a clear message (CI must run these
    checks); elsewhere it is skipped with the reason.
    """
    if name == "uno":
        from xl_kpis.libreoffice import LibreOfficeError, libreoffice_python, \
            libreoffice_python_exe

        try:
            libreoffice_python_exe(libreoffice_python() or "3")
            return
        except LibreOfficeError as exc:
            reason = f"{exc}; install: {_TOOLS[name]}"
    elif name in ("pycel", "python_calamine", "openxml_audit"):
        try:
            importlib.import_module(name)
            return
        except ImportError as exc:
            reason = f"{name} is not importable ({exc}); install: {_TOOLS[name]}"
    else:
        if shutil.which(name):
            return
        reason = f"`{name}` is not on PATH; install: {_TOOLS.get(name, name)}"
    if in_ci():
        pytest.fail(f"CI is set and a required engine is missing: {reason}", pytrace=False)
    pytest.skip(reason)


# --- reading what the file holds ----------------------------------------------------

def _address(sheet: str, coordinate: str) -> str:
    return f"{sheet}!{coordinate}"          # pycel's AddressCell.address format


def formula_cells(path: str | os.PathLike) -> dict[str, str]:
    """Every cell computed by a formula, in every sheet: ``"Sheet!A1" -> formula``.

    Read with openpyxl (``data_only=False``).  For an array (CSE or dynamic
    array) formula every cell of its range is listed, with the formula text
    of the range in braces: ``"{=TOP_PRODUCTS(...)}"``.
    """
    from openpyxl import load_workbook
    from openpyxl.worksheet.formula import ArrayFormula

    wb = load_workbook(path, data_only=False)
    out: dict[str, str] = {}
    try:
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    v = c.value
                    if isinstance(v, ArrayFormula):
                        from openpyxl.utils.cell import range_boundaries
                        c0, r0, c1, r1 = range_boundaries(v.ref)
                        for r in range(r0, r1 + 1):
                            for col in range(c0, c1 + 1):
                                coord = ws.cell(r, col).coordinate
                                out[_address(ws.title, coord)] = "{" + v.text + "}"
                    elif c.data_type == "f" and isinstance(v, str) and len(v) > 1:
                        # data_type "f": a <f> element; a text that merely
                        # starts with "=" (t="s", "str", "inlineStr") is no formula
                        out[_address(ws.title, c.coordinate)] = v
    finally:
        wb.close()
    return out


def _to_serial(v: Any, epoch: dt.datetime) -> Any:
    from openpyxl.utils.datetime import to_excel
    if isinstance(v, (dt.datetime, dt.date, dt.time, dt.timedelta)):
        return to_excel(v, epoch)
    return v


def cell_values(path: str | os.PathLike) -> dict[str, Any]:
    """The value stored in every non-empty cell (the cached result for a formula).

    Read with openpyxl ``data_only=True``; dates come back as serial numbers
    (what Excel stores and pycel uses), errors as their text.
    """
    from openpyxl import load_workbook

    wb = load_workbook(path, data_only=True)
    out: dict[str, Any] = {}
    try:
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    if c.value is not None:
                        out[_address(ws.title, c.coordinate)] = _to_serial(c.value, wb.epoch)
    finally:
        wb.close()
    return out


# --- pycel -----------------------------------------------------------------------

@contextlib.contextmanager
def pycel_compiler(path: str | os.PathLike, plugins: Iterable[str] = (PLUGIN,)) -> Iterator[Any]:
    """A pycel ``ExcelCompiler`` for ``path`` with our UDFs, usable inside the block.

    pycel 1.0b30 reads ``workbook.defined_names.definedName``, which openpyxl
    3.1 no longer has; the class is patched for the duration of the block only
    (pycel reads the names lazily, so the patch must outlive the load).

    pycel takes every cell whose value is a text starting with ``=`` for a
    formula (``excelwrapper._OpxRange.cell_to_formula``), so a *text* cell
    showing a formula (``'=ROAS(...)``) would be evaluated.  Such cells are
    blanked in pycel's formula view of the workbook (its data-only view still
    holds the text, which is what a formula referring to them gets).
    """
    from openpyxl.workbook.defined_name import DefinedNameDict
    from pycel import ExcelCompiler

    had = "definedName" in DefinedNameDict.__dict__
    old = DefinedNameDict.__dict__.get("definedName")
    if not hasattr(DefinedNameDict, "definedName"):
        DefinedNameDict.definedName = property(lambda s: list(s.values()))
    try:
        xc = ExcelCompiler(filename=str(path), plugins=list(plugins))
        for ws in xc.excel.workbook.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    if (c.data_type == "s" and isinstance(c.value, str)
                            and c.value.startswith("=")):
                        c.value = None
        yield xc
    finally:
        if had:
            DefinedNameDict.definedName = old
        elif "definedName" in DefinedNameDict.__dict__:
            del DefinedNameDict.definedName


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    # pycel puts the traceback first and the failing python code last
    tail = next((ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else "")
    return f"<{type(exc).__name__}: {tail.strip()[:200]}>"


def recompute_all(path: str | os.PathLike,
                  plugins: Iterable[str] = (PLUGIN,)) -> dict[str, tuple[Any, Any]]:
    """``"Sheet!A1" -> (cached, computed)`` for every formula cell of every sheet.

    pycel starts from the cached values stored in the file and returns them
    for formula cells without computing anything.  So: evaluate every formula
    cell once (pycel loads it and all its precedents), set the value of every
    formula cell and every range in ``cell_map`` to None (what pycel's
    ``recalculate()`` does), then evaluate every formula cell again: now
    pycel computes.  An exception while computing a cell is returned as the
    text ``"<ExceptionType: message>"`` in place of the computed value.
    Compare with :func:`mismatches`.
    """
    from pycel.excelcompiler import _CellRange

    formulas = formula_cells(path)
    cached = cell_values(path)
    out: dict[str, tuple[Any, Any]] = {}
    with pycel_compiler(path, plugins) as xc:
        for addr in formulas:                      # 1) load (returns cached values)
            try:
                xc.evaluate(addr)
            except Exception:                      # reported in the second pass
                pass
        for cell in xc.cell_map.values():           # 2) forget every formula result
            if isinstance(cell, _CellRange) or cell.formula:
                cell.value = None
        for addr in formulas:                      # 3) compute
            try:
                computed = xc.evaluate(addr)
            except Exception as exc:
                computed = _first_line(exc)
            out[addr] = (cached.get(addr), computed)
    return out


def normalise(v: Any) -> Any:
    """One value for comparison: blank (None, "") → "", numbers → float,
    numpy scalars → Python, error values → their text."""
    if v is None:
        return ""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):   # numpy scalar
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, str):
        s = v.strip()
        return s if s in ERROR_TEXTS else v
    return v


def same_value(a: Any, b: Any, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    """Equal as cell values: numbers within ``rel`` relative (``abs_`` absolute),
    booleans, texts and errors exactly; None and "" are both blank."""
    a, b = normalise(a), normalise(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return False
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
    return type(a) is type(b) and a == b


def mismatches(results: Mapping[str, tuple[Any, Any]],
               exclude: Mapping[str, str] | Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """The cells of :func:`recompute_all`'s result whose cached and computed values differ.

    ``exclude``: addresses left out of the comparison (a mapping address ->
    reason, so every exclusion says why).  An excluded address that is not a
    formula cell is an error (a stale exclusion list).
    """
    excluded = set(exclude)
    stale = excluded - set(results)
    if stale:
        raise KeyError(f"excluded cells that are not formula cells: {sorted(stale)}")
    return {a: (c, p) for a, (c, p) in results.items()
            if a not in excluded and not same_value(c, p)}


def _sheet_xml_paths(z: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> path of its XML part inside the package."""
    wb = z.read("xl/workbook.xml").decode("utf-8")
    rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8")
    targets = {}
    for m in re.finditer(r"<Relationship\b([^>]*)/?>", rels):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        targets[attrs.get("Id")] = attrs.get("Target", "")
    out = {}
    for m in re.finditer(r"<sheet\b([^>]*)/?>", wb):
        attrs = dict(re.findall(r'([\w:]+)="([^"]*)"', m.group(1)))
        name = (attrs["name"].replace("&amp;", "&").replace("&lt;", "<")
                .replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'"))
        target = targets[attrs["r:id"]]
        out[name] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    return out


def plant_cached_value(src: str | os.PathLike, dst: str | os.PathLike, address: str,
                       value: Any) -> Path:
    """Copy ``src`` to ``dst`` with the cached value of one cell replaced.

    ``address`` is ``"Sheet!A1"``: a formula cell, or a cell of an array
    formula's range (those hold only a value).  The ``<v>`` of that ``<c>``
    (and its ``t`` type) is rewritten in the sheet XML inside the zip; everything else
    is copied byte for byte (never re-save with openpyxl: it drops every
    cached value).  ``value``: a number, a text, a bool or an error text.
    """
    sheet, coord = address.rsplit("!", 1)
    sheet = sheet.strip("'")
    if isinstance(value, bool):
        t, v = ' t="b"', "1" if value else "0"
    elif isinstance(value, numbers.Real):
        t, v = "", repr(float(value))
    elif isinstance(value, str) and value in ERROR_TEXTS:
        t, v = ' t="e"', escape(value)
    else:
        t, v = ' t="str"', escape(str(value))
    dst = Path(dst)
    with zipfile.ZipFile(src) as zin:
        part = _sheet_xml_paths(zin)[sheet]
        xml = zin.read(part).decode("utf-8")
        pat = re.compile(r'<c\b(?P<attrs>[^>]*?\br="%s"[^>]*?)(?<!/)>(?P<body>.*?)</c>' % coord,
                         re.DOTALL)
        m = pat.search(xml)
        if m is None:
            raise ValueError(f"no cell {address} in {part}")
        attrs = re.sub(r'\s+t="[^"]*"', "", m.group("attrs"))
        body = re.sub(r"<v>.*?</v>|<v\s*/>|<is>.*?</is>", "", m.group("body"), flags=re.DOTALL)
        if "<f" not in body and t == ' t="str"':
            # not a formula (e.g. a cell of an array formula's range): inline text
            new = f'<c{attrs} t="inlineStr">{body}<is><t>{v}</t></is></c>'
        else:
            new = f"<c{attrs}{t}>{body}<v>{v}</v></c>"
        xml = xml[: m.start()] + new + xml[m.end():]
        with zipfile.ZipFile(dst, "w") as zout:
            for info in zin.infolist():
                data = xml.encode("utf-8") if info.filename == part else zin.read(info)
                zout.writestr(info, data)
    return dst


# --- charts: what a viewer that only reads the caches draws ------------------------

_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"


def chart_caches(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every data reference of every chart with its cache, read with ElementTree:
    ``{"part", "ref", "kind", "count", "points": {index: text}}``."""
    from xml.etree import ElementTree as ET

    out = []
    with zipfile.ZipFile(path) as z:
        for name in sorted(n for n in z.namelist()
                           if re.fullmatch(r"xl/charts/chart\d+\.xml", n)):
            root = ET.fromstring(z.read(name))
            for kind in ("numRef", "strRef"):
                for ref in root.iter(f"{_C}{kind}"):
                    cache = ref.find(f"{_C}numCache" if kind == "numRef" else f"{_C}strCache")
                    count = None if cache is None else cache.find(f"{_C}ptCount")
                    points = {} if cache is None else {
                        int(pt.get("idx")): pt.findtext(f"{_C}v")
                        for pt in cache.iter(f"{_C}pt")}
                    out.append({"part": name, "ref": ref.findtext(f"{_C}f"), "kind": kind,
                                "count": None if count is None else int(count.get("val")),
                                "points": points})
    return out


def chart_cache_mismatches(path: str | os.PathLike) -> list[str]:
    """How every chart's cache differs from the cells its reference names (the cached
    values openpyxl reads): a wrong point count, a point for a blank cell or none for a
    value, a number or a text that differs.  Empty when every cache shows the cells."""
    from openpyxl.utils.cell import range_boundaries

    cells = cell_values(path)
    problems = []
    for c in chart_caches(path):
        if "!" not in (c["ref"] or ""):
            continue              # a literal (LibreOffice writes a series name as "ROAS")
        sheet, _, rng = c["ref"].rpartition("!")
        sheet = sheet.strip("'").replace("''", "'")
        c0, r0, c1, r1 = range_boundaries(rng.replace("$", ""))
        addresses = [_address(sheet, f"{_col_letters(col)}{row}")
                     for row in range(r0, r1 + 1) for col in range(c0, c1 + 1)]
        where = f"{c['part']} {c['ref']}"
        if c["count"] != len(addresses):
            problems.append(f"{where}: {c['count']} points cached for {len(addresses)} cells")
            continue
        for i, a in enumerate(addresses):
            v, cached = cells.get(a), c["points"].get(i)
            blank = v is None or v == "" or (c["kind"] == "numRef" and
                                             not isinstance(v, numbers.Real))
            if blank or isinstance(v, bool):
                if cached is not None:
                    problems.append(f"{where}[{i}]: cached {cached!r}, {a} is {v!r}")
            elif cached is None:
                problems.append(f"{where}[{i}]: nothing cached, {a} is {v!r}")
            elif isinstance(v, numbers.Real):
                try:
                    ok = math.isclose(float(cached), float(v), rel_tol=1e-9, abs_tol=1e-12)
                except ValueError:
                    ok = False
                if not ok:
                    problems.append(f"{where}[{i}]: cached {cached!r}, {a} is {v!r}")
            elif cached != str(v):
                problems.append(f"{where}[{i}]: cached {cached!r}, {a} is {v!r}")
    return problems


def _col_letters(col: int) -> str:
    from openpyxl.utils import get_column_letter
    return get_column_letter(col)


# --- openxml-audit: the file as Excel 365 reads it ---------------------------------

# --- LibreOffice ---------------------------------------------------------------

_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
           xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>{mode}</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>{mode}</value></prop></item>
</oor:items>
"""


_EXTENSION_PROFILE: list[Path] = []


def lo_extension_profile() -> Path:
    """A LibreOffice profile with the xl-kpis extension installed (built once per process).

    Made with ``xl-kpis libreoffice install --profile DIR`` (the command users
    run), in a temporary folder removed at exit.  :func:`lo_profile` copies it.
    """
    if not _EXTENSION_PROFILE:
        import atexit

        root = Path(tempfile.mkdtemp(prefix=f"lo-xlkpis-{os.getpid()}-"))
        atexit.register(shutil.rmtree, root, True)
        proc = subprocess.run([sys.executable, "-m", "xl_kpis.cli", "libreoffice", "install",
                               "--profile", str(root)], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"xl-kpis libreoffice install failed: {proc.stderr or proc.stdout}")
        _EXTENSION_PROFILE.append(root)
    return _EXTENSION_PROFILE[0]


def lo_profile(recalc: bool, parent: str | os.PathLike | None = None,
               extension: bool = False) -> Path:
    """A fresh LibreOffice user profile directory (one per call: parallel-safe).

    Its ``user/registrymodifications.xcu`` sets
    ``/org.openoffice.Office.Calc/Formula/Load/OOXMLRecalcMode`` to 0 (always
    recalculate on load) when ``recalc``, else to 1 (never: show the cached
    values, compute only cells that have none).  With ``extension`` it is a
    copy of :func:`lo_extension_profile` (the xl-kpis functions work).
    """
    root = Path(tempfile.mkdtemp(prefix=f"lo-profile-{os.getpid()}-{uuid.uuid4().hex[:8]}-",
                                 dir=parent))
    if extension:
        shutil.copytree(lo_extension_profile() / "user", root / "user", symlinks=True)
    else:
        (root / "user").mkdir()
    (root / "user" / "registrymodifications.xcu").write_text(
        _XCU.format(mode=0 if recalc else 1), encoding="utf-8")
    return root


def lo_convert(src: str | os.PathLike, fmt: str, outdir: str | os.PathLike,
               recalc: bool = False, timeout: int = 180, extension: bool = False) -> list[Path]:
    """``soffice --headless --convert-to fmt`` with a profile of its own; the files made.

    ``fmt`` is what ``--convert-to`` takes: ``"pdf"``, ``"xlsx"``,
    :data:`CSV_ALL_SHEETS`...  ``extension``: with the xl-kpis extension
    installed (:func:`lo_profile`).  Runs under ``timeout``; raises
    RuntimeError (with LibreOffice's output) when nothing was written.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    before = set(outdir.iterdir())
    profile = lo_profile(recalc, extension=extension)
    cmd = ["timeout", str(timeout), "soffice", "--headless", "--norestore",
           f"-env:UserInstallation={profile.as_uri()}",
           "--convert-to", fmt, "--outdir", str(outdir), str(src)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    made = sorted(set(outdir.iterdir()) - before)
    if proc.returncode != 0 or not made:
        raise RuntimeError(f"{' '.join(cmd)} -> exit {proc.returncode}, files {made}\n"
                           f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return made


def lo_recompute(src: str | os.PathLike, outdir: str | os.PathLike,
                 timeout: int = 600) -> dict[str, tuple[Any, Any]]:
    """``"Sheet!A1" -> (cached, LibreOffice's)`` for every formula cell of ``src``.

    LibreOffice, with the xl-kpis extension and recalculation on load forced,
    recomputes the whole book and saves it as ``.xlsx``; the values it wrote
    are read back like the cached ones (:func:`cell_values`).  Compare with
    :func:`mismatches`, as for :func:`recompute_all`.
    """
    outdir = Path(outdir)
    [saved] = lo_convert(src, "xlsx", outdir, recalc=True, timeout=timeout, extension=True)
    cached, computed = cell_values(src), cell_values(saved)
    return {a: (cached.get(a), computed.get(a)) for a in formula_cells(src)}


def lo_csv_sheets(src: str | os.PathLike, outdir: str | os.PathLike, sheets: Iterable[str],
                  recalc: bool = False, extension: bool = False) -> dict[str, list[list[str]]]:
    """What LibreOffice displays in each sheet: ``sheet -> rows of texts`` (from A1).

    One conversion with :data:`CSV_ALL_SHEETS`; ``sheets`` are the workbook's
    sheet names (the files are named ``<base>-<Sheet>.csv``).
    """
    made = lo_convert(src, CSV_ALL_SHEETS, outdir, recalc=recalc, extension=extension)
    stem = Path(src).stem
    out = {}
    for sheet in sheets:
        f = Path(outdir) / f"{stem}-{sheet}.csv"
        if not f.exists():
            raise FileNotFoundError(f"LibreOffice wrote no CSV for sheet {sheet!r}: {made}")
        with open(f, newline="", encoding="utf-8") as fh:
            out[sheet] = list(csv.reader(fh))
    return out


def udf_names_in(formula: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` (function names, upper case) ``formula`` calls."""
    from xl_kpis.officejs import called_functions

    called = {c.split(".")[-1] for c in called_functions(formula)}   # _xludf.CLV -> CLV
    return called & {n.upper() for n in names}                      # _xldudf_CLV -> CLV


def lo_keeps_cached(cached: Any, formula: str = "") -> bool:
    """Whether LibreOffice (7.4, no recalculation on load, *without* the xl-kpis extension)
    shows a formula's cached value.

    Observed, and as LibreOffice core ``sc/source/filter/oox/formulabuffer.cxx``
    does it (``applyCellFormulaValues`` sets only ``t="n"`` results and,
    for files from a known generator, ``t="str"``; ``applyArrayFormulas`` sets
    no result at all): it keeps numbers and non-empty texts of plain
    formulas.  A cached error (``t="e"``), boolean (``t="b"``) or empty text,
    and every cell of an array formula (``formula`` in braces, as
    :func:`formula_cells` lists them), are computed on load: a cell calling
    one of our UDFs then shows ``#NAME?``.
    """
    if formula.startswith("{"):
        return False
    c = normalise(cached)
    if isinstance(c, bool) or c == "":
        return False
    if isinstance(c, str) and c in ERROR_TEXTS:
        return False
    return True


def _is_error_text(s: str) -> bool:
    s = s.strip()
    return s in ERROR_TEXTS or s.startswith("Err:")


def lo_display_problems(shown: Mapping[str, list[list[str]]], values: Mapping[str, Any],
                        formulas: Mapping[str, str],
                        udfs: Iterable[str]) -> dict[str, tuple[str, Any, str]]:
    """Cells where LibreOffice displays an error text the file does not hold.

    ``shown``: :func:`lo_csv_sheets`; ``values``: :func:`cell_values`;
    ``formulas``: :func:`formula_cells`; ``udfs``: our function names.
    Returns ``address -> (shown, cached, formula)``.  An error text is fine
    where the cached value is that same error — except that LibreOffice does
    not keep a cached error, boolean or blank (:func:`lo_keeps_cached`) and
    recomputes the cell, and it recomputes every array formula: a cell that
    calls one of our UDFs then shows ``#NAME?``.  That case is *not* a
    problem of the file and is left out (pycel checks those cached values).
    """
    from openpyxl.utils import get_column_letter

    udfs = set(udfs)
    out = {}
    for sheet, rows in shown.items():
        for r, row in enumerate(rows, start=1):
            for c, text in enumerate(row, start=1):
                if not _is_error_text(text):
                    continue
                addr = _address(sheet, f"{get_column_letter(c)}{r}")
                cached = values.get(addr)
                if same_value(text.strip(), cached):
                    continue
                formula = formulas.get(addr, "")
                if (text.strip() == "#NAME?" and formula and not lo_keeps_cached(cached, formula)
                        and udf_names_in(formula, udfs)):
                    continue
                out[addr] = (text, cached, formula)
    return out


def pdf_to_pngs(pdf: str | os.PathLike, outdir: str | os.PathLike, dpi: int = 70,
                timeout: int = 180) -> list[Path]:
    """Render every page of ``pdf`` to PNG (``pdftoppm -png -r dpi``); pages in order."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    prefix = outdir / Path(pdf).stem
    subprocess.run(["timeout", str(timeout), "pdftoppm", "-png", "-r", str(dpi), str(pdf),
                    str(prefix)], check=True, capture_output=True)
    pages = list(outdir.glob(f"{prefix.name}-*.png"))
    return sorted(pages, key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def _content_box(pdf: str | os.PathLike, page: int, dpi: int,
                 timeout: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x, y, w, h) in pixels of the non-white pixels of one page."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "p"
        subprocess.run(["timeout", str(timeout), "pdftoppm", "-gray", "-singlefile", "-r",
                        str(dpi), "-f", str(page), "-l", str(page), str(pdf), str(prefix)],
                       check=True, capture_output=True)
        data = (Path(tmp) / "p.pgm").read_bytes()
    # binary PGM: "P5" width height maxval, each after whitespace, then the pixels
    parts = data.split(maxsplit=4)
    w, h = int(parts[1]), int(parts[2])
    img = np.frombuffer(parts[4][-w * h:], dtype=np.uint8).reshape(h, w)
    ink = img < 245
    if not ink.any():
        return None
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def render_pdf_page(pdf: str | os.PathLike, page: int, out_png: str | os.PathLike,
                    dpi: int = 110, trim: bool = True, margin: int = 10,
                    max_width: int | None = None, max_height: int | None = None,
                    timeout: int = 120) -> Path:
    """One page of ``pdf`` (1-based) as a PNG, cropped to its content when ``trim``.

    ``max_width`` / ``max_height`` cut the crop (from the top-left of the
    content) to a screenshot-sized window.
    """
    out_png = Path(out_png)
    cmd = ["timeout", str(timeout), "pdftoppm", "-png", "-singlefile", "-r", str(dpi),
           "-f", str(page), "-l", str(page)]
    if trim:
        box = _content_box(pdf, page, dpi, timeout)
        if box is not None:
            x, y, w, h = box
            x, y = max(0, x - margin), max(0, y - margin)
            w, h = w + 2 * margin, h + 2 * margin
            if max_width:
                w = min(w, max_width)
            if max_height:
                h = min(h, max_height)
            cmd += ["-x", str(x), "-y", str(y), "-W", str(w), "-H", str(h)]
    subprocess.run(cmd + [str(pdf), str(out_png.with_suffix(""))], check=True,
                   capture_output=True)
    return out_png


def pdf_page_texts(pdf: str | os.PathLike, timeout: int = 120) -> list[str]:
    """The text of each page of ``pdf`` (``pdftotext -layout``), to tell pages apart."""
    proc = subprocess.run(["timeout", str(timeout), "pdftotext", "-layout", str(pdf), "-"],
                          check=True, capture_output=True, text=True)
    pages = proc.stdout.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def pdf_words(pdf: str | os.PathLike, page: int, timeout: int = 120
              ) -> list[tuple[str, float, float, float, float]]:
    """The words of one page (1-based) of ``pdf`` with their boxes, as ``pdftotext -bbox``
    finds them: ``(word, x_min, y_min, x_max, y_max)`` in points from the top left."""
    proc = subprocess.run(["timeout", str(timeout), "pdftotext", "-bbox", "-f", str(page),
                           "-l", str(page), str(pdf), "-"],
                          check=True, capture_output=True, text=True)
    out = []
    for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                         r'yMax="([\d.]+)">([^<]*)</word>', proc.stdout):
        text = (m.group(5).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                .replace("&quot;", '"').replace("&apos;", "'"))
        out.append((text, *map(float, m.group(1, 2, 3, 4))))
    return out


# --- python-calamine ---------------------------------------------------------------

def calamine_read_all(path: str | os.PathLike) -> dict[str, list[list[Any]]]:
    """Every sheet as calamine reads it (cached values; error cells read as "")."""
    from python_calamine import CalamineWorkbook

    with CalamineWorkbook.from_path(str(path)) as wb:
        return {name: wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
                for name in wb.sheet_names}


def calamine_tables(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every Excel table: ``name -> {"sheet", "columns", "rows"}`` (``load_tables=True``)."""
    from python_calamine import CalamineWorkbook

    with CalamineWorkbook.from_path(str(path), load_tables=True) as wb:
        out = {}
        for name in wb.table_names or []:
            t = wb.get_table_by_name(name)
            out[name] = {"sheet": t.sheet, "columns": list(t.columns), "rows": t.to_python(),
                         "start": t.start, "end": t.end}
        return out


# --- openxml-audit ---------------------------------------------------------------------

_VALIDATOR = []


def openxml_audit(path: str | os.PathLike) -> list[str]:
    """What openxml-audit (the schema and semantic rules of Microsoft's Open XML SDK) finds
    in a workbook, validated as for Microsoft 365 (what ``openxml-audit -f microsoft365
    PATH`` reports): ``[]`` when it says "expected to open cleanly (no findings)", else
    one line per error or warning (part, path, description) after its verdict."""
    require_tool("openxml_audit")
    from openxml_audit import FileFormat, OpenXmlValidator, predict

    if not _VALIDATOR:          # loading the schemas takes a while: one validator per run
        _VALIDATOR.append(OpenXmlValidator(file_format=FileFormat.MICROSOFT_365, max_errors=0))
    result = _VALIDATOR[0].validate(str(path))
    verdict = predict(result).headline
    if not result.errors and "no findings" in verdict:
        return []
    return [verdict] + [f"{e.part_uri} {e.path}: {e.description}" for e in result.errors]
