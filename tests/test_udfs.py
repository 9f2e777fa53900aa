"""The xlwings UDF adapter: names, signatures, metadata, VBA wrapper, import footprint."""

import importlib.util
import inspect
import io
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import xl_kpis
from xl_kpis import udfs
from xl_kpis.cells import BLANK, DIV0, NA, NUM, VALUE

ROOT = Path(__file__).resolve().parents[1]

# VBA reserved words and statement names that break or shadow a generated wrapper
# (Microsoft VBA language reference, "Keywords"); compared case-insensitively.
VBA_KEYWORDS = {w.lower() for w in """
AddressOf Alias And Any Append As Attribute Base Binary Boolean ByRef Byte ByVal Call Case
CBool CByte CCur CDate CDbl CDec CInt CLng CLngLng CLngPtr Close Compare Const CSng CStr
Currency CVar CVErr Date Debug Decimal Declare DefBool DefByte DefCur DefDate DefDbl DefDec
DefInt DefLng DefLngLng DefLngPtr DefObj DefSng DefStr DefVar Dim Do DoEvents Double Each Else
ElseIf Empty End EndIf Enum Eqv Erase Error Event Exit Explicit False For Friend Function Get
Global GoSub GoTo If Imp Implements In Input Integer Is LBound Len Let Lib Like Line Load Lock
Long LongLong LongPtr Loop LSet Me Mid Mod Name New Next Not Nothing Null Object On Open
Option Optional Or Output ParamArray Preserve Print Private Property PtrSafe Public Put
RaiseEvent Random Read ReDim Rem Reset Resume Return RSet Seek Select Set Shared Single Spc
Static Step Stop String Sub Tab Then Time To True Type TypeOf UBound Unload Until Variant Wend
While Width With WithEvents Write Xor
""".split()}


# --- what the "Done when" asks, literally ----------------------------------

def test_done_when_examples():
    from xl_kpis.udfs import CLV, ROAS
    assert CLV(50, 5, 1) == 250
    assert ROAS(100, 0) == "#DIV/0!"
    assert ROAS("abc", 10) == "#VALUE!"
    assert ROAS([[100], [200], [None]], [[50], [0], [None]]) == [[2.0], [DIV0], [BLANK]]


# --- the VBA wrapper xlwings generates on "Import Functions" -----------------------

@pytest.fixture
def classic_udfs(monkeypatch):
    """xl_kpis.udfs decorated by xlwings' classic (Windows) decorators.

    ``xlwings.udfs`` imports the Windows-only pywin32 modules; stub them so
    that its real decorators and VBA generator run here.
    """
    class Stub(types.ModuleType):
        def __getattr__(self, attr):  # any pywin32 call is a no-op here
            return lambda *a, **k: None

    client = Stub("win32com.client")
    win32com = Stub("win32com")
    win32com.client = client
    for name, mod in {"pythoncom": Stub("pythoncom"), "pywintypes": Stub("pywintypes"),
                      "win32com": win32com, "win32com.client": client}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "xlwings.udfs", raising=False)
    xu = importlib.import_module("xlwings.udfs")
    import xlwings
    monkeypatch.setattr(xlwings, "func", xu.xlfunc, raising=False)
    monkeypatch.setattr(xlwings, "arg", xu.xlarg, raising=False)
    monkeypatch.setattr(xlwings, "ret", xu.xlret, raising=False)
    spec = importlib.util.spec_from_file_location("xl_kpis._udfs_classic", udfs.__file__)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return xu, mod


def test_classic_metadata_ndim2_err_to_str_and_category(classic_udfs):
    _, mod = classic_udfs
    for name in udfs.__all__:
        info = getattr(mod, name).__xlfunc__
        assert info["category"] == "TikTok KPIs"
        for arg in info["args"]:
            assert arg["options"].get("ndim") == 2, (name, arg["name"])
            assert arg["options"].get("err_to_str") is True
            assert arg["doc"] == udfs.ARG_DOCS[name][arg["name"]]


def test_generated_vba_declares_every_function_with_legal_parameter_names(classic_udfs):
    xu, mod = classic_udfs
    out = io.StringIO()
    book = types.SimpleNamespace(Name="tiktok_kpis.xlsm")
    xu.generate_vba_wrapper("xl_kpis.udfs", mod, out, book)
    vba = out.getvalue()
    sigs = dict(re.findall(r"^Function (\w+)\(([^)]*)\)", vba, flags=re.M))
    assert sorted(sigs) == sorted(udfs.__all__)
    function_names = {n.lower() for n in sigs}
    for name, params in sigs.items():
        for p in filter(None, (s.strip() for s in params.split(","))):
            ident = p.removeprefix("Optional ").strip()
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,254}", ident), (name, ident)
            assert ident.lower() not in VBA_KEYWORDS, (name, ident)
            assert ident.lower() not in function_names, (name, ident)
        assert f'XLPy.CallUDF("xl_kpis.udfs", "{name}"' in vba
    assert "Optional margin" in sigs["CLV"]


# --- runs in xlwings Lite (Pyodide): numpy and xlwings only ------------------------

@pytest.mark.host_only  # a second interpreter; the Pyodide lane itself shows it in Pyodide
def test_import_udfs_loads_nothing_but_numpy_and_xlwings():
    code = (
        "import sys, numpy, xlwings\n"
        "before = set(sys.modules)\n"
        "import xl_kpis.udfs\n"
        "new = sorted(m for m in set(sys.modules) - before)\n"
        "print('\\n'.join(new))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    assert out, "nothing was imported?"
    stdlib = sys.stdlib_module_names
    outside = [m for m in out if not m.startswith("xl_kpis") and m.split(".")[0] not in stdlib]
    assert outside == [], outside
    assert "xl_kpis.book" not in out and "xl_kpis.cli" not in out


def test_errors_are_the_strings_xlwings_lite_turns_into_real_errors(monkeypatch):
    # xlwings' own Office.js converter (what Lite runs) turns these strings into error values;
    # a string it does not know would reach the cell as text
    monkeypatch.setenv("XLWINGS_LICENSE_KEY", "noncommercial")  # xlwings PRO code, tests only
    officejs = importlib.import_module("xlwings.pro._xlofficejs")
    for error in (DIV0, NUM, VALUE, NA):
        assert officejs.errorstr_to_errortype(error, "1.5")["type"] == "Error", error
    assert officejs.errorstr_to_errortype("#NOT-AN-ERROR", "1.5") == "#NOT-AN-ERROR"


# --- xlwings Lite: what Excel registers and what a call returns ---------------------
# Marked ``lite``: they need xlwings in its Office.js mode (XLWINGS_ON_SERVER=true when
# xlwings is imported, as Lite runs it), so they run in the Pyodide lane (test_pyodide.py).
# Lite imports the workbook's main.py as the module ``main`` and registers what xlwings'
# Office.js metadata builder (``custom_functions_meta``) finds among main's own members.

#: What the README tells Lite users to put in main.py.
LITE_MAIN = "from xl_kpis.udfs import *\n"
#: Office.js error values (Microsoft's ``Excel.ErrorCellValueType``: Div0, NotAvailable, Num,
#: Value ...), what a returned error string must become in Lite.
EXCEL_ERROR = {code: {"type": "Error", "errorType": kind} for code, kind in
               [("#DIV/0!", "Div0"), ("#N/A", "NotAvailable"), ("#NUM!", "Num"),
                ("#VALUE!", "Value")]}


def _lite_main(source: str) -> types.ModuleType:
    """The module ``main`` that Lite makes of a workbook's main.py."""
    main = types.ModuleType("main")
    exec(compile(source, "main.py", "exec"), main.__dict__)
    return main


def _documented() -> dict:
    """The README's function reference: ``{NAME: [(parameter, optional), ...]}``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = {}
    for name, params in re.findall(r"^\| `=(\w+)\(([^)]*)\)`", text, flags=re.M):
        required, _, optional = params.partition("[")
        out[name] = [(p, False) for p in re.findall(r"\w+", required)] + \
                    [(p, True) for p in re.findall(r"\w+", optional)]
    return out


def _settle(coroutine):
    """The value of a coroutine that never waits on anything (no event loop needed: inside
    Pyodide the lane already runs in one)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("the call waited on something")


def test_readme_tells_lite_users_to_write_the_star_import():
    assert f"`{LITE_MAIN.strip()}`" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert LITE_MAIN.strip() in udfs.__doc__


@pytest.mark.lite
def test_lite_registers_every_udf_with_the_documented_names_and_parameters():
    import xlwings
    from xlwings.server import custom_functions_meta

    assert xlwings.on_server, "xlwings is not in its Office.js mode"
    meta = custom_functions_meta(_lite_main(LITE_MAIN))
    funcs = {f["id"]: f for f in meta["functions"]}
    decorated = sorted(n for n, obj in vars(udfs).items() if hasattr(obj, "__xlfunc__"))
    assert sorted(funcs) == decorated == sorted(udfs.__all__)
    documented = _documented()
    assert sorted(documented) == decorated
    assert meta["allowErrorForDataTypeAny"] is True   # error cells reach err_to_str
    for name, f in funcs.items():
        assert f["name"] == name, "no namespace: called as =NAME(...), as documented"
        params = f["parameters"]
        assert [(p["name"], p.get("optional", False)) for p in params] == documented[name]
        assert all(p["dimensionality"] == "matrix" and p["type"] == "any" for p in params), \
            (name, params)   # every argument is declared ndim=2: a cell or a range
        assert f["result"]["dimensionality"] == "matrix"
        assert f["description"] == getattr(udfs, name).__doc__ and f["description"].strip()
        assert [p["description"] for p in params] == [udfs.ARG_DOCS[name][p["name"]] for p in params]
        assert all(p["description"].strip() for p in params)


@pytest.mark.lite
def test_importing_the_module_alone_registers_nothing():
    # why the README says `from xl_kpis.udfs import *`: the builder looks at main's members
    from xlwings.server import custom_functions_meta

    assert custom_functions_meta(_lite_main("import xl_kpis.udfs\n"))["functions"] == []
    assert len(custom_functions_meta(_lite_main(LITE_MAIN))["functions"]) == len(udfs.__all__)


@pytest.mark.lite
@pytest.mark.parametrize("func, args, expected", [
    ("CLV", [[[50]], [[5]], [[1]], None], [[250.0]]),              # margin left out
    ("ROAS", [[[100]], [[0]]], [[EXCEL_ERROR["#DIV/0!"]]]),
    ("ROAS", [[["abc"]], [[10]]], [[EXCEL_ERROR["#VALUE!"]]]),
    ("CAC", [[[-1]], [[10]]], [[EXCEL_ERROR["#NUM!"]]]),
    ("ROAS", [[[100], [200], [None]], [[50], [0], [None]]],
     [[2.0], [EXCEL_ERROR["#DIV/0!"]], [""]]),
    ("AOV", [[[10], [20]], [[1], [2], [4]]], [[10.0], [10.0], [EXCEL_ERROR["#N/A"]]]),
    # an error cell arrives as Office.js sends it; err_to_str hands it on as text
    ("ROAS", [[[{"type": "Error", "errorType": "Div0", "basicValue": "#DIV/0!"}]], [[10]]],
     [[EXCEL_ERROR["#VALUE!"]]]),
])
def test_lite_calls_return_real_excel_errors(func, args, expected):
    import xlwings
    from xlwings.server import custom_functions_call

    payload = {"func_name": func, "args": args, "caller_address": "Sheet1!B2",
               "version": xlwings.__version__, "client": "Office.js", "runtime": "1.5",
               "culture_info_name": "en-US", "date_format": "M/d/yyyy"}
    assert _settle(custom_functions_call(payload, _lite_main(LITE_MAIN))) == expected


def test_the_error_codes_are_among_the_strings_lite_knows():
    # xlwings.pro._xlofficejs maps exactly these strings to Excel error values (a second
    # function of the name of the test above used to hide that one from pytest)
    lite = {"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"}
    from xl_kpis import cells
    assert {cells.DIV0, cells.NUM, cells.VALUE, cells.NA} <= lite
    assert VALUE in lite


# --- predictive CLV and cohorts as a seller calls them ----------------------------------------

def _cdnow_cells():
    """The CDNOW sample (tests/data/cdnow/README.md) as sheet columns: buyer, date, amount."""
    from datetime import datetime

    rows = [line.split() for line in
            (ROOT / "tests" / "data" / "cdnow" / "CDNOW_sample.txt").read_text().splitlines()]
    return ([[r[1]] for r in rows],
            [[datetime(int(r[2][:4]), int(r[2][4:6]), int(r[2][6:]), 14, 30)] for r in rows],
            [[float(r[4])] for r in rows])


def test_predicted_clv_udfs_on_cdnow_equal_the_core():
    from datetime import date

    from xl_kpis.cells import strict

    buyers, dates, amounts = _cdnow_cells()
    serials = [[(d[0].date() - date(1899, 12, 30)).days] for d in dates]   # Excel's serials
    core = xl_kpis.predicted_clv([b[0] for b in buyers], [d[0] for d in dates],
                                 [a[0] for a in amounts], 12, 0.4, 0.01, "1997-09-30")
    with strict():
        by_datetime = udfs.PREDICTED_CLV(buyers, dates, amounts, 12, 0.4, None, "1997-09-30")
        by_serial = udfs.PREDICTED_CLV(buyers, serials, amounts, [[12]], [[0.4]], [[None]],
                                       [[35703]])                  # 35703 = 1997-09-30
        params = udfs.CLV_PARAMETERS(buyers, serials, amounts, 35703)
        table = udfs.CUSTOMER_CLV(buyers, serials, amounts, 12, 0.4, None, 35703)
        triangle = udfs.COHORT_RETENTION(buyers, serials)
    assert by_datetime == pytest.approx(core, rel=1e-12) and by_serial == by_datetime
    values = {row[0]: row[1] for row in params[1:]}
    assert [round(values[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert values["Time unit"] == "weeks" and values["As of"] == "1997-09-30"
    assert table[0] == ["Customer", "Purchases", "P(alive)", "Expected purchases",
                        "Expected spend", "Predicted CLV"]
    assert len(table) == 2358 and sum(r[5] for r in table[1:]) / 2357 == pytest.approx(core)
    assert triangle[0][:3] == ["Cohort", "Customers", "Month 0"] and len(triangle[0]) == 20
    assert [r[:3] for r in triangle[1:]] == [["1997-01", 781.0, 1.0], ["1997-02", 857.0, 1.0],
                                             ["1997-03", 719.0, 1.0]]
    assert triangle[3][-2:] == ["", ""] and triangle[2][-1] == ""   # after the data: blank


def test_p_alive_buckets_and_a_fixed_size_triangle_on_cdnow():
    buyers, dates, amounts = _cdnow_cells()
    buckets = udfs.P_ALIVE_BUCKETS(buyers, dates, None, 35703)            # as of 1997-09-30
    assert buckets[0] == ["Customers by P(alive)", "Customers", "Share"] and len(buckets) == 6
    assert buckets[1][1] == 2357.0 - 946.0 and sum(r[1] for r in buckets[1:]) == 2357.0
    triangle = udfs.COHORT_RETENTION(buyers, dates, None, None, 12)
    assert len(triangle) == 13 and len(triangle[0]) == 14           # 12 cohorts x months 0-11
    assert [r[0] for r in triangle[1:4]] == ["1997-07", "1997-08", "1997-09"]
    assert triangle[1][1:3] == [0.0, ""]         # no new customer after March 1997: blank
    assert udfs.COHORT_RETENTION(buyers, dates, None, None, 0) == "#NUM!"


def test_customer_clv_rows_pads_and_an_empty_history_is_blank():
    buyers, dates, amounts = _cdnow_cells()
    out = udfs.CUSTOMER_CLV(buyers[:200], dates[:200], amounts[:200], rows=500)
    assert len(out) == 501 and out[-1] == [""] * 6
    empty = udfs.CUSTOMER_CLV([[None]], [[None]], [[None]], rows=3)
    assert empty[0][0] == "Customer" and empty[1:] == [[""] * 6] * 3
    assert udfs.COHORT_RETENTION([[None]], [[None]]) == ""
    assert udfs.CUSTOMER_CLV(buyers, dates, amounts, rows=0) == "#NUM!"


def test_fixed_size_tables_keep_their_size_without_data_and_on_errors():
    from xl_kpis.cells import NUM, VALUE

    buyers, dates, amounts = _cdnow_cells()
    # P_ALIVE_BUCKETS: 6 x 3, CLV_PARAMETERS: 14 x 3, COHORT_RETENTION(..., 12): 13 x 14
    full = {"p": udfs.P_ALIVE_BUCKETS(buyers, dates),
            "c": udfs.CLV_PARAMETERS(buyers, dates, amounts),
            "t": udfs.COHORT_RETENTION(buyers, dates, None, None, 12)}
    one = ([["ann"], ["ann"]], [[45000], [45010]], [[5], [6]])      # one customer: no fit
    calls = {
        "blank": {"p": udfs.P_ALIVE_BUCKETS([[None]], [[None]]),
                  "c": udfs.CLV_PARAMETERS([[None]], [[None]], [[None]]),
                  "t": udfs.COHORT_RETENTION([[None]], [[None]], None, None, 12)},
        NUM: {"p": udfs.P_ALIVE_BUCKETS(*one[:2]), "c": udfs.CLV_PARAMETERS(*one),
              "t": udfs.COHORT_RETENTION(*one[:2], None, 40000, 12)},    # before the data
        VALUE: {"p": udfs.P_ALIVE_BUCKETS([["a"]], [["soon"]]),
                "c": udfs.CLV_PARAMETERS([["a"]], [["soon"]], [[1]]),
                "t": udfs.COHORT_RETENTION([["a"]], [["soon"]], None, None, 12)},
    }
    value_cols = {"p": (1, 2), "c": (1,), "t": tuple(range(14))}
    for case, outs in calls.items():
        for k, out in outs.items():
            assert len(out) == len(full[k]) and {len(r) for r in out} == {len(full[k][0])}
            assert out[0] == full[k][0]                                   # the header
            cols = value_cols[k]
            labels = [[v for j, v in enumerate(r) if j not in cols] for r in out[1:]]
            assert labels == [[v for j, v in enumerate(r) if j not in cols]
                              for r in full[k][1:]]     # group and parameter names stay
            values = [r[j] for r in out[1:] for j in cols]
            first = "" if case == "blank" else case       # the error in the first value cell
            assert values == [first] + [""] * (len(values) - 1), (case, k)
    # an option in error: the size is not known, the error alone
    assert udfs.COHORT_RETENTION(buyers, dates, None, None, 0) == NUM
    assert udfs.P_ALIVE_BUCKETS(buyers, dates, None, None, "months") == VALUE


def test_p_alive_buckets_leaves_lines_without_an_order_id_out():
    buyers, dates, _ = _cdnow_cells()
    order = [[f"o{i}" if i % 7 else None] for i in range(len(buyers))]
    kept = [i for i, o in enumerate(order) if o[0] is not None]
    with_ids = udfs.P_ALIVE_BUCKETS(buyers, dates, order)
    alone = udfs.P_ALIVE_BUCKETS([buyers[i] for i in kept], [dates[i] for i in kept])
    assert with_ids == alone and with_ids != udfs.P_ALIVE_BUCKETS(buyers, dates)


def test_cohort_retention_leaves_lines_without_an_order_id_out():
    out = udfs.COHORT_RETENTION([["a"], ["a"], ["b"]], [[45000], [45040], [45041]],
                                [["o1"], [None], ["o3"]])
    assert out[1] == ["2023-03", 1.0, 1.0, 0.0] and out[2] == ["2023-04", 1.0, 1.0, ""]


# --- every main.py the project ships, as xlwings Lite runs it -----------------------
# The README's line, and the main.py the committed template carries in its xlwings Lite
# part once `xl-kpis build` writes one (generated with the package's code in it).

TEMPLATE = ROOT / "workbook" / "tiktok_kpis.xlsx"


def _shipped_mains() -> list[str]:
    """The README's main.py, then the ``main.py`` property (a JSON-encoded string) of the
    template's xlwings Lite part where the template has one."""
    import json
    import zipfile
    from xml.etree import ElementTree

    we = "{http://schemas.microsoft.com/office/webextensions/webextension/2010/11}"
    with zipfile.ZipFile(TEMPLATE) as zf:
        if "xl/webextensions/webextension1.xml" not in zf.namelist():
            return [LITE_MAIN]
        root = ElementTree.fromstring(zf.read("xl/webextensions/webextension1.xml"))
    values = [p.get("value") for p in root.iter(f"{we}property") if p.get("name") == "main.py"]
    assert len(values) == 1, "the template's Lite part carries no main.py"
    return [LITE_MAIN, json.loads(values[0])]


@pytest.fixture
def restored_modules():
    """A main.py may install its own copy of xl_kpis and drops the imported one:
    put sys.modules and sys.path back afterwards for the tests that follow."""
    path = list(sys.path)
    ours = {k: v for k, v in sys.modules.items() if k == "xl_kpis" or k.startswith("xl_kpis.")}
    yield
    for k in [k for k in sys.modules if k == "xl_kpis" or k.startswith("xl_kpis.")]:
        del sys.modules[k]
    sys.modules.update(ours)
    sys.path[:] = path


@pytest.mark.lite
def test_every_shipped_main_py_registers_what_the_package_registers(restored_modules):
    import xlwings
    from xlwings.server import custom_functions_call, custom_functions_meta, custom_scripts_meta

    package = custom_functions_meta(udfs)   # the module itself: what a main.py must hold
    assert len(package["functions"]) == len(udfs.__all__)
    payload = {"func_name": "ROAS", "args": [[[100], [200]], [[0], [50]]],
               "caller_address": "Sheet1!B2", "version": xlwings.__version__,
               "client": "Office.js", "runtime": "1.5"}
    for source in _shipped_mains():
        main = _lite_main(source)
        assert custom_functions_meta(main) == package   # every function, name, parameter, text
        assert _settle(custom_functions_call(payload, main)) == \
            [[EXCEL_ERROR["#DIV/0!"]], [4.0]]
        if source != LITE_MAIN:   # the template's: with the formula re-enter script
            assert custom_scripts_meta(main), "no Lite script in the template's main.py"
