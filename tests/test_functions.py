"""The Excel functions as plain Python (xl_kpis/functions.py): one per KPI, their arguments
and help, and that they load without xlwings (xl_kpis/udfs.py registers copies of them)."""

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import xl_kpis
from xl_kpis import functions

ROOT = Path(__file__).resolve().parents[1]


# --- one function per KPI -----------------------------------------------------------

def test_every_public_kpi_has_a_udf_and_vice_versa():
    assert sorted(n.upper() for n in xl_kpis.__all__) == sorted(functions.__all__)
    for name in functions.__all__:
        assert functions.KPI_OF[name] is getattr(xl_kpis, name.lower())


def test_public_api_is_exactly_the_kpis():
    for name in xl_kpis.__all__:
        fn = getattr(xl_kpis, name)
        assert callable(fn) and hasattr(fn, "__kpi__"), name
        doc = inspect.getdoc(fn)
        for section in ("Parameters", "Returns", "Notes", "References", "Examples"):
            assert section in doc, (name, section)


def test_udf_parameters_match_the_kpi_positionally():
    # a UDF takes its KPI's arguments in order, then only the declared layout options
    for name in functions.__all__:
        f = getattr(functions, name)
        udf_params = list(inspect.signature(f).parameters.values())
        core = functions.KPI_OF[name].__kpi__.params
        layout = functions.LAYOUT_OPTIONS.get(name, ())
        assert len(udf_params) == len(core) + len(layout), name
        for p, (cname, _, default) in zip(udf_params, core):
            optional_core = default is not inspect.Parameter.empty
            assert (p.default is None) == optional_core, (name, p.name, cname)
        assert [(p.name, p.default) for p in udf_params[len(core):]] == \
            [(o, None) for o in layout], name


@pytest.mark.parametrize("rows, expected", [
    (None, 3),            # no padding: header + one row per type (2 types)
    (4, 5),               # header + 4 rows, 2 of them blank
    (1, 3),               # never truncated: more types than rows still show
    ([[None]], 3),        # a blank cell: no padding
])
def test_content_resonance_rows_pads_the_table(rows, expected):
    out = functions.CONTENT_RESONANCE([["a"], ["b"]], [[10], [20]], [[1], [2]], [[0], [1]],
                                 [[5], [7]], rows)
    assert len(out) == expected and out[0][0] == "Content type"
    assert {r[0] for r in out[1:3]} == {"a", "b"}
    assert all(c == "" for r in out[3:] for c in r)


@pytest.mark.parametrize("rows, error", [(0, "#NUM!"), (2.5, "#NUM!"), ("many", "#VALUE!")])
def test_content_resonance_rows_must_be_a_whole_number(rows, error):
    assert functions.CONTENT_RESONANCE([["a"]], [[1]], [[0]], [[0]], [[1]], rows) == error


def test_content_resonance_rows_of_an_empty_table_are_all_blank():
    out = functions.CONTENT_RESONANCE([[None]], [[None]], [[None]], [[None]], [[None]], 2)
    assert out[0][0] == "Content type" and out[1:] == [[""] * 7] * 2


def test_docstrings_fit_excels_function_wizard_and_every_argument_is_documented():
    for name in functions.__all__:
        f = getattr(functions, name)
        assert f.__doc__ and len(f.__doc__) <= 255, name
        for p in inspect.signature(f).parameters:
            assert 0 < len(functions.ARG_DOCS[name][p]) <= 255, (name, p)


@pytest.mark.host_only  # a second interpreter; the Pyodide lane imports xlwings anyway
def test_the_workbook_evaluator_and_the_report_load_without_xlwings():
    # xlwings costs a command that never talks to Excel a tenth of a second or more (it
    # imports polars and pandas when they are installed); the UDFs are the same code
    code = ("import sys, xl_kpis.functions, xl_kpis.book.build, xl_kpis.report, xl_kpis.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'xlwings'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"
    code = "import sys, xl_kpis.udfs\nprint('xlwings' in sys.modules)\n"      # the check can fail
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT).stdout.strip() == "True"


def test_each_udf_is_the_function_registered_as_a_copy_in_the_udf_module():
    from xl_kpis import udfs

    for name in functions.__all__:
        f, udf = getattr(functions, name), getattr(udfs, name)
        assert udf is not f and udf.__module__ == "xl_kpis.udfs", name
        assert (udf.__code__, udf.__defaults__, udf.__doc__, udf.__name__) == \
            (f.__code__, f.__defaults__, f.__doc__, f.__name__), name
        assert not hasattr(f, "__xlfunc__"), name          # xlwings' marks stay on the copy
    assert udfs.ROAS([[100], [0]], [[50], [0]]) == functions.ROAS([[100], [0]], [[50], [0]]) \
        == [[2.0], ["#DIV/0!"]]
