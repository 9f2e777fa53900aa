"""The LibreOffice Calc extension (xl_kpis.libreoffice): what it holds, and Calc running it."""

import inspect
import re
import subprocess
import sys
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines import cell_values, lo_recompute, mismatches, require_tool, same_value
from xl_kpis import libreoffice as lo
from xl_kpis import udfs
from xl_kpis.libreoffice import binding


def test_every_udf_is_a_calc_function_in_both_spellings():
    funcs = lo.functions()
    cells = [p for p, f in funcs.items() if f.get("cells")]
    assert cells == [lo.ARG]
    plain = {p: f for p, f in funcs.items() if not f.get("cells") and f["compat"] == f["udf"]}
    prefixed = {p: f for p, f in funcs.items() if f["compat"].startswith(lo.XLDUDF)}
    assert list(plain) == list(udfs.__all__)
    assert [f["udf"] for f in prefixed.values()] == list(udfs.__all__)
    for name in udfs.__all__:
        params = [p.name for p in inspect.signature(getattr(udfs, name)).parameters.values()]
        for f in (plain[name], prefixed["XLDUDF_" + name]):
            assert [p for p, _, _ in f["params"]] == params
            assert all(desc for _, desc, _ in f["params"])
        assert prefixed["XLDUDF_" + name]["compat"] == "_xldudf_" + name
    # display names are what users type; none twice
    displays = [f["display"].upper() for f in funcs.values()]
    assert len(displays) == len(set(displays))


def test_the_extension_holds_generated_parts(tmp_path):
    oxt = lo.build_oxt(tmp_path / "x.oxt", dirs=["/nowhere"])
    with zipfile.ZipFile(oxt) as z:
        names = set(z.namelist())
        manifest = z.read("META-INF/manifest.xml").decode()
        idl = z.read("XlKpis.idl").decode()
        xcu = z.read("CalcAddIns.xcu").decode()
        comp = z.read("xl_kpis_calc.py").decode()
    for part in ("XlKpis.idl", "xl_kpis.components", "CalcAddIns.xcu"):
        assert part in names and f'full-path="{part}"' in manifest
    methods = re.findall(r"> > (\w+)\(", idl)
    assert methods == list(lo.functions())
    # UNOIDL takes no lower-case letter after "_" (LibreOffice refuses the file otherwise)
    assert not re.search(r"_[a-z]", "\n".join(re.findall(r"\bany (\w+)", idl)))
    assert xcu.count('<prop oor:name="CompatibilityName">') == len(lo.functions())
    assert "SITE_DIRS = ['/nowhere']" in comp
    compile(comp, "xl_kpis_calc.py", "exec")
    # the same input gives the same bytes
    assert lo.build_oxt(tmp_path / "y.oxt", dirs=["/nowhere"]).read_bytes() == oxt.read_bytes()


def test_site_dirs_find_the_package_and_numpy():
    code = "import sys; sys.path[:0] = %r; import xl_kpis.udfs, numpy; print(xl_kpis.__file__)"
    out = subprocess.run([sys.executable, "-I", "-c", code % lo.site_dirs()],
                         capture_output=True, text=True, check=True).stdout
    assert "xl_kpis" in out


def test_cli_build_writes_and_never_replaces_without_force(tmp_path):
    from click.testing import CliRunner

    from xl_kpis.cli import main

    out = tmp_path / "xl-kpis.oxt"
    r = CliRunner().invoke(main, ["libreoffice", "build", str(out)])
    assert r.exit_code == 0 and zipfile.is_zipfile(out)
    before = out.read_bytes()
    r = CliRunner().invoke(main, ["libreoffice", "build", str(out)])
    assert r.exit_code == 2 and "--force" in r.output and out.read_bytes() == before
    r = CliRunner().invoke(main, ["libreoffice", "build", str(tmp_path / "x.zip")])
    assert r.exit_code == 2


def test_cli_install_reports_a_missing_libreoffice(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from xl_kpis.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    r = CliRunner().invoke(main, ["libreoffice", "install", "--profile", str(tmp_path / "p")])
    assert r.exit_code == 4
    assert "LibreOffice is not installed" in r.output


def _one(ref):
    return f'IF(ISBLANK({ref});"";IF(ISERROR({ref});"#VALUE!";{ref}))'


@pytest.mark.parametrize("text, expected", [
    ("=roas(B2;C2:C3)", f"=S.ROAS({_one('B2')};S.A(C2:C3))"),
    ("=_xldudf_roas(1;2)", "=S.XLDUDF_ROAS(1;2)"),
    ("{=top_products(T[x];T[y];5)}", "{=S.TOP_PRODUCTS(S.A(T[x]);S.A(T[y]);5)}"),
    ("=ctr(T[[#This Row];[c]];T[[#This Row];[a]:[b]])",
     f"=S.CTR({_one('T[[#This Row];[c]]')};S.A(T[[#This Row];[a]:[b]]))"),
    ("=IF(B2>0;clv(B2;ltv_cac(B3;Margin);1);\"roas(\")",
     f"=IF(B2>0;S.CLV({_one('B2')};S.LTV_CAC({_one('B3')};{_one('Margin')});1);\"roas(\")"),
    ("=roas(Span;1)", "=S.ROAS(S.A(Span);1)"),
    ("=cac_payback(B22;B33/PeriodMonths)", f"=S.CAC_PAYBACK({_one('B22')};B33/PeriodMonths)"),
    ("=MYROAS(B2)+ROAS2(B2)+X.ROAS(1)", None),
])
def test_binding_rewrites_exactly_our_calls(text, expected):
    p = binding.call_pattern(udfs.__all__)
    names = {"MARGIN": True, "SPAN": False}
    assert binding.bind_formula(text, p, "s", "A", names) == expected


# --- writing a column of rewritten cells: fills where one formula is filled down -------

def test_formula_shape_tells_a_filled_formula_from_another():
    same = binding.formula_shape
    assert same("=S.ROAS(B2;C2)", 2) == same("=S.ROAS(B40;C40)", 40)
    assert same("=S.ROAS(B2;C$2)", 2) == same("=S.ROAS(B3;C$2)", 3)     # absolute row stays
    assert same("=S.ROAS(B2;C$2)", 2) != same("=S.ROAS(B3;C$3)", 3)
    assert same("=S.ROAS(B2;C2)", 2) != same("=S.ROAS(B3;C2)", 3)       # not moved: no fill
    assert same('=IF(A2;"A2")', 2) != same('=IF(A3;"A3")', 3)             # texts stay as typed
    assert same("=$Orders.E2:E9", 2) == same("=$Orders.E3:E10", 3)


_KINDS = ["=A{r}*2", "=A{r}*3", "=B$1+A{r}", '="A{r}"', "=A1"]
_formulas = st.sampled_from(_KINDS)


@given(st.lists(st.tuples(st.integers(1, 3), _formulas), max_size=60), st.integers(1, 6))
def test_fill_runs_write_every_cell_once_and_a_fill_reproduces_each_run(steps, min_length):
    """Rows from gaps + formula kinds; a fill (the first formula with its relative rows
    moved, as LibreOffice does) gives back every cell of a run."""
    cells, row = [], 0
    for gap, kind in steps:
        row += gap
        cells.append((row, kind.format(r=row)))
    runs, single = binding.fill_runs(cells, min_length)
    written = {r: t for r, t in single}
    for first, last, text in runs:
        assert last - first + 1 >= min_length
        # what a fill of the first cell gives: a reference moves with the row, a text not
        kind = next(k for k in _KINDS if k.format(r=first) == text)
        moves = "{r}" in kind and '"' not in kind
        written.update({r: kind.format(r=r if moves else first) for r in range(first, last + 1)})
    assert written == dict(cells)
    assert len(single) + sum(last - first + 1 for first, last, _ in runs) == len(cells)


# --- LibreOffice running the extension -------------------------------------------------

def _one_cell_book(path):
    """Both spellings, blanks, an error argument, a spill, a table; cached values wrong."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("S")
    ws.write_column("A1", [100, 200, None, 50])
    ws.write_column("B1", [50, 0, None, 10])
    ws.write_formula("B5", "=1/0", None, "#DIV/0!")
    ws.write_column("D1", ["a", "b", "a"])
    calls = {
        "C1": "=_xldudf_ROAS(A1,B1)", "C2": "=ROAS(A1,B1)", "C3": "=ROAS(A2,B2)",
        "C4": "=ROAS(A3,B3)", "C5": "=_xldudf_ROAS(A4,B5)", "C6": "=CLV(50,5,1)",
        "C7": "=_xldudf_LTV_CAC(C1,C3)", "C8": "=AVERAGE_RATING(A1:A3)",
    }
    for cell, formula in calls.items():
        ws.write_formula(cell, formula, None, -1)
    ws.write_array_formula("E1:E4", "{=ROAS(A1:A4,B1:B4)}", None, -1)
    ws.write_array_formula("F1:H4", "{=_xldudf_TOP_PRODUCTS(D1:D3,A1:A3,3)}", None, -1)
    wb.close()
    return calls


def test_libreoffice_computes_both_spellings_as_the_udfs(tmp_path):
    """One book, every kind of cell: LibreOffice with the extension gives what the UDFs give."""
    require_tool("soffice")
    require_tool("uno")
    book = _one_cell_book(tmp_path / "one.xlsx")
    got = {a: computed for a, (_, computed) in lo_recompute(tmp_path / "one.xlsx",
                                                             tmp_path / "lo").items()}
    col = lambda *v: [[x] for x in v]                                  # noqa: E731
    expected = {
        "S!C1": udfs.ROAS(col(100), col(50)), "S!C2": udfs.ROAS(col(100), col(50)),
        "S!C3": udfs.ROAS(col(200), col(0)), "S!C4": udfs.ROAS(col(None), col(None)),
        "S!C5": udfs.ROAS(col(50), col("#DIV/0!")), "S!C6": udfs.CLV(50.0, 5.0, 1.0),
        "S!C8": udfs.AVERAGE_RATING(col(100, 200, None)),
    }
    expected = {a: v[0][0] if isinstance(v, list) else v for a, v in expected.items()}
    assert (expected["S!C1"], expected["S!C3"], expected["S!C4"], expected["S!C5"]) == \
        (2.0, "#DIV/0!", "", "#VALUE!")                  # 100/50; 0 spend; all blank; error in
    for a, v in expected.items():
        assert same_value(got[a], v), (a, got[a], v)
    assert same_value(got["S!C7"], udfs.LTV_CAC(col(2.0), col("#DIV/0!"))[0][0])
    spill = udfs.ROAS(col(100, 200, None, 50), col(50, 0, None, 10))
    for i, v in enumerate(spill):
        assert same_value(got[f"S!E{i + 1}"], v[0] if isinstance(v, list) else v)
    table = udfs.TOP_PRODUCTS(col("a", "b", "a"), col(100, 200, None), 3)
    for i, row in enumerate(table):
        for j, v in enumerate(row[:3]):
            assert same_value(got[f"S!{'FGH'[j]}{i + 1}"], v), (i, j, v)
    assert set(got) >= {f"S!{c}" for c in book}


def test_libreoffice_check_fails_on_a_wrong_cached_value(tmp_path):
    """The comparison the whole-book checks rely on reports a wrong cached value."""
    require_tool("soffice")
    require_tool("uno")
    _one_cell_book(tmp_path / "one.xlsx")             # every cached value is -1: all wrong
    results = lo_recompute(tmp_path / "one.xlsx", tmp_path / "lo")
    wrong = mismatches(results)
    assert {"S!C1", "S!C2", "S!C6"} <= set(wrong)
    assert cell_values(tmp_path / "one.xlsx")["S!C1"] == -1
