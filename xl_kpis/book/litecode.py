"""The code the template carries for xlwings Lite: ``main.py`` and ``requirements.txt``.

xl-kpis is not on PyPI, so xlwings Lite cannot install it from
``requirements.txt``.  Instead ``main.py`` carries the package's own source:
the modules :mod:`xl_kpis.udfs` and :mod:`xl_kpis.lite` import (found by
reading their imports, :func:`embedded_modules`), written into Pyodide's file
system when Lite runs ``main.py``, then ``from xl_kpis.udfs import *`` (Lite
registers the functions that are members of ``main``) and the fallback script
:func:`xl_kpis.lite.reenter_formulas`.  ``requirements.txt`` lists only what
those modules import besides the standard library: xlwings, numpy and scipy.

Both files are generated from the installed package, never edited by hand:
the builder writes them into every ``.xlsx`` (:mod:`xl_kpis.officejs`), and
``python -m xl_kpis.book.litecode DIR`` writes them into ``DIR`` (the
committed copies beside the template, ``workbook/main.py`` and
``workbook/requirements.txt``, are checked against this by a test).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import xl_kpis

__all__ = ["ROOTS", "XLWINGS", "embedded_modules", "sources", "main_py", "requirements_txt",
           "write"]

#: The modules main.py imports from the embedded package.
ROOTS = ("xl_kpis.udfs", "xl_kpis.lite")
#: The xlwings requirement of the Lite code (0.36.9 added the async API the script uses;
#: the tests run 0.37.8).
XLWINGS = "xlwings>=0.37.8"

_PACKAGE_DIR = Path(xl_kpis.__file__).resolve().parent
_PACKAGE = "xl_kpis"


def _module_file(name: str) -> Path | None:
    """The source file of an ``xl_kpis`` module or package, or None."""
    parts = name.split(".")
    if parts[0] != _PACKAGE:
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imports(name: str, path: Path) -> set[str]:
    """The ``xl_kpis`` modules a module imports (relative or absolute)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)   # submodules imported by name
    return {m for m in out if _module_file(m) is not None}


def embedded_modules(roots: tuple[str, ...] = ROOTS) -> list[str]:
    """Every ``xl_kpis`` module the roots need: their imports, recursively, and the
    packages that contain them (their ``__init__`` runs on import), sorted."""
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]   # parent packages
        todo += sorted(_imports(name, _module_file(name)))
    return sorted(seen)


def sources(roots: tuple[str, ...] = ROOTS) -> dict[str, str]:
    """``relative path -> source text`` of the embedded modules (``xl_kpis/udfs.py`` ...)."""
    out = {}
    for name in embedded_modules(roots):
        path = _module_file(name)
        out[path.relative_to(_PACKAGE_DIR.parent).as_posix()] = path.read_text(encoding="utf-8")
    return out


def _third_party(src: dict[str, str]) -> set[str]:
    """Top-level modules the embedded code imports that are neither ours nor stdlib."""
    out = set()
    for text in src.values():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                out.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                out.add(node.module.split(".")[0])
    return out - {_PACKAGE, "__future__"} - set(sys.stdlib_module_names)


def requirements_txt() -> str:
    """``requirements.txt`` for xlwings Lite: what the embedded code imports (xlwings, numpy,
    scipy)."""
    found = _third_party(sources())
    known = {"xlwings": f"{XLWINGS}  # required by xlwings Lite",
             "numpy": "numpy  # comes with Pyodide: not pinned",
             "scipy": "scipy  # comes with Pyodide: not pinned (the predictive CLV functions)"}
    unknown = found - set(known)
    if unknown:
        raise RuntimeError(f"the Lite code imports {sorted(unknown)}: say in litecode.py "
                           "how xlwings Lite gets them")
    return "".join(known[m] + "\n" for m in known if m in found)


_HEADER = '''\
"""xl-kpis {version}: TikTok shop KPIs as Excel functions, for xlwings Lite.

Generated from the xl-kpis package by `python -m xl_kpis.book.litecode`: do not edit it
by hand (`xl-kpis build` writes it afresh into every .xlsx it makes).

When xlwings Lite runs this file, it writes the xl-kpis modules below into Pyodide's
file system and imports the Excel functions into this module: Lite registers the
functions that main.py holds (`from xl_kpis.udfs import *`).  The script
"Re-enter xl-kpis formulas" enters every xl-kpis formula of the workbook again, for
cells that show #NAME? although Lite is running.  requirements.txt: xlwings, numpy, scipy.
"""

import hashlib
import importlib
import os
import sys
import tempfile


def _install(sources):
    """Write the modules into a folder of their own, put it first on sys.path and forget
    xl_kpis modules imported from anywhere else."""
    digest = hashlib.sha256(repr(sorted(sources.items())).encode("utf-8")).hexdigest()
    root = os.path.join(tempfile.gettempdir(), "xl-kpis-" + digest[:16])
    for name, text in sources.items():
        path = os.path.join(root, *name.split("/"))
        if os.path.isfile(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    for mod in [m for m in sys.modules if m == "xl_kpis" or m.startswith("xl_kpis.")]:
        where = os.path.abspath(getattr(sys.modules[mod], "__file__", None) or "")
        if not where.startswith(root + os.sep):
            del sys.modules[mod]
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    importlib.invalidate_caches()


_SOURCES = {{
'''

_FOOTER = '''\
}}

_install(_SOURCES)

from xl_kpis.udfs import *  # noqa: E402,F401,F403  the Excel functions (Lite registers them)
from xl_kpis.lite import reenter_formulas  # noqa: E402,F401  the fallback script
'''


def main_py() -> str:
    """The text of the template's ``main.py``: the embedded package and the imports.

    Each module is one string made of its lines, one literal per line (adjacent
    literals are joined by the compiler), so the code stays readable in Lite's editor.
    """
    out = [_HEADER.format(version=xl_kpis.__version__)]
    for path, text in sources().items():
        lines = text.splitlines(keepends=True)
        if not lines:
            out.append(f"    {path!r}: '',\n")
            continue
        out.append(f"    {path!r}: (\n")
        out += [f"        {line!r}\n" for line in lines]
        out.append("    ),\n")
    out.append(_FOOTER.format())
    return "".join(out)


def write(folder: str | Path) -> list[Path]:
    """Write ``main.py`` and ``requirements.txt`` into ``folder``; the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in (("main.py", main_py()), ("requirements.txt", requirements_txt())):
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="\n")
        out.append(path)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m xl_kpis.book.litecode FOLDER")
    for p in write(sys.argv[1]):
        print(f"wrote {p}")
