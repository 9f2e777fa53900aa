"""The template's xlwings Lite code: main.py and requirements.txt (xl_kpis.book.litecode)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from xl_kpis import officejs, udfs
from xl_kpis.book import litecode

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "python -m xl_kpis.book.litecode workbook"


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (this venv's), in ``tmp_path``, with ``env`` added."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(tmp_path), **env})


def test_committed_main_py_is_generated_from_the_package():
    """workbook/main.py and requirements.txt are what the package generates now."""
    for name, text in (("main.py", litecode.main_py()),
                       ("requirements.txt", litecode.requirements_txt())):
        committed = ROOT / "workbook" / name
        assert committed.is_file(), f"{committed} is missing: {REGENERATE}"
        assert committed.read_text(encoding="utf-8") == text, \
            f"workbook/{name} is stale: {REGENERATE}"


def test_main_py_follows_the_package_source(monkeypatch):
    """A change in any embedded module changes main.py (so the check above can fail)."""
    real = litecode.sources()
    changed = dict(real, **{"xl_kpis/metrics/sales.py": real["xl_kpis/metrics/sales.py"] + "#"})
    monkeypatch.setattr(litecode, "sources", lambda roots=litecode.ROOTS: changed)
    assert litecode.main_py() != (ROOT / "workbook" / "main.py").read_text(encoding="utf-8")


def _embedded(main_py: str) -> dict[str, str]:
    """The ``_SOURCES`` literal of a main.py."""
    for node in ast.parse(main_py).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["_SOURCES"]:
            return ast.literal_eval(node.value)
    raise AssertionError("main.py has no _SOURCES")


def test_main_py_embeds_the_modules_byte_for_byte():
    embedded = _embedded(litecode.main_py())
    assert embedded == litecode.sources()
    for path, text in embedded.items():
        assert (ROOT / path).read_text(encoding="utf-8") == text


def test_embedded_modules_are_what_the_imports_load(tmp_path):
    """What importing the functions and the script loads in a fresh interpreter (an
    independent check of the import graph litecode reads)."""
    out = _run("""
        import sys, json
        import xl_kpis.udfs, xl_kpis.lite
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "xl_kpis")))
    """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == litecode.embedded_modules()
    assert "xl_kpis.book" not in litecode.embedded_modules()


def test_requirements_list_what_the_embedded_code_imports():
    assert [line.split()[0] for line in litecode.requirements_txt().splitlines()] == [
        litecode.XLWINGS, "numpy", "scipy"]
    assert litecode._third_party({"a.py": "import numpy\nfrom xlwings import func\nimport os"}) \
        == {"numpy", "xlwings"}


def test_an_unknown_dependency_is_refused(monkeypatch):
    monkeypatch.setattr(litecode, "sources",
                        lambda roots=litecode.ROOTS: {"xl_kpis/x.py": "import pandas\n"})
    with pytest.raises(RuntimeError, match="pandas"):
        litecode.requirements_txt()


REGISTER = """
    import json, sys, types
    import xl_kpis.udfs          # the installed package first: main.py must replace it
    main = types.ModuleType("main")
    sys.modules["main"] = main
    code = compile(open("main.py", encoding="utf-8").read(), "main.py", "exec")
    exec(code, main.__dict__)
    exec(code, main.__dict__)    # Lite runs main.py again after every edit
    from xlwings.pro.udfs_officejs import custom_functions_meta, custom_scripts_meta
    print(json.dumps({"functions": custom_functions_meta(main)["functions"],
                      "scripts": custom_scripts_meta(main),
                      "udfs_file": sys.modules["xl_kpis.udfs"].__file__}))
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> dict:
    """main.py run in a fresh CPython as xlwings Lite runs it, and what xlwings' Office.js
    metadata builder registers from it.  XLWINGS_ON_SERVER=true is what Lite sets; the
    licence key is the PolyForm Noncommercial one, for this test only."""
    tmp = tmp_path_factory.mktemp("lite")
    litecode.write(tmp)
    out = _run(REGISTER, tmp, XLWINGS_ON_SERVER="true", XLWINGS_LICENSE_KEY="noncommercial")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["tmp"] = str(tmp)
    return result


def test_main_py_registers_every_udf(registered):
    import inspect

    funcs = {f["name"]: f for f in registered["functions"]}
    assert set(funcs) == set(udfs.__all__)
    for name in udfs.__all__:
        f = funcs[name]
        params = list(inspect.signature(getattr(udfs, name)).parameters)
        assert [p["name"] for p in f["parameters"]] == params, name
        assert all(p["dimensionality"] == "matrix" and p["description"]
                   for p in f["parameters"]), name
        assert f["description"] and f["result"]["dimensionality"] == "matrix", name
        assert "namespace" not in f or not f["namespace"], name   # Lite: no namespace
    # the functions come from the modules main.py wrote, not from the installed package
    assert registered["udfs_file"].startswith(registered["tmp"])


def test_main_py_registers_the_fallback_script(registered):
    assert [(s["function_name"], s["name"], s["lazy"]) for s in registered["scripts"]] == [
        ("reenter_formulas", "Re-enter xl-kpis formulas", True)]   # BookAsync: on demand


def test_the_built_template_carries_the_generated_code(template):
    from defusedxml import ElementTree as ET

    with zipfile.ZipFile(template) as z:
        root = ET.fromstring(z.read(officejs.WEBEXTENSION_PART))
    props = {p.get("name"): json.loads(p.get("value"))
             for p in root.iter(f"{{{officejs.NS_WE}}}property")}
    assert props == {"main.py": litecode.main_py(),
                     "pyodideVersion": officejs.PYODIDE_VERSION,
                     "addinVersion": officejs.ADDIN_VERSION,
                     "requirements.txt": litecode.requirements_txt()}
