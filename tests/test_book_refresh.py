"""Headless refresh: every template formula recomputed, nothing else touched.

The reference values come from an independent engine (pycel, with our UDFs as
its plugin and every formula forced to recompute) and from a fresh build.
"""

import hashlib
import re
import zipfile

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from engines import chart_cache_mismatches, mismatches, recompute_all, require_tool
from xl_kpis.book import build_workbook, patch, scan, schema as S
from xl_kpis.xlsx import books
from xl_kpis.xlsx.refs import a1
from xl_kpis.book import refresh as refresh_module
from xl_kpis.book.refresh import CHANGED, BookLocked, refresh
from xl_kpis.xlsx.errors import ERRORS, Text
from xl_kpis.cli import main
from bookfiles import copy, kill_while_writing, parts, type_cells


def values(path):
    return {(s, r): v for s, cells in scan.read_formulas(path).items()
            for r, (_, v) in cells.items()}


def close(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


def stale(src, dst):
    """A copy of ``src`` whose every formula cell caches 0 (as if never computed)."""
    zero = {s: (lambda ref, f: 0.0) for s in scan.read_formulas(src)}
    patch.patch_workbook(src, dst, zero)
    return dst


_FORMULA_V = re.compile(r'(<c [^>]*?)(?: t="\w+")?(>(?:<f[^>]*?/>|<f[^>]*>[^<]*</f>))'
                        r'(?:<v>[^<]*</v>|<v/>)?(</c>)')


def without_cached_values(xml: bytes) -> str:
    return _FORMULA_V.sub(r"\1\2\3", xml.decode())


def test_refreshing_a_fresh_build_does_not_rewrite_the_file(demo, tmp_path):
    book = copy(demo, tmp_path / "b.xlsx")
    before = book.stat().st_mtime_ns
    r = refresh(book)
    assert r.changed == 0 and r.kept == [] and r.formulas > 8000
    assert book.stat().st_mtime_ns == before and book.read_bytes() == demo.read_bytes()


def test_stale_values_are_recomputed_and_nothing_else_changes(demo, tmp_path):
    book = stale(demo, tmp_path / "stale.xlsx")
    old = parts(book)
    r = refresh(book)
    assert r.changed > 5000 and r.kept == []
    fresh, got = values(demo), values(book)
    assert fresh.keys() == got.keys()
    wrong = [k for k in fresh if not close(got[k], fresh[k])]
    assert wrong == []
    new = parts(book)
    assert new.keys() == old.keys()
    for name in old:
        if name.startswith("xl/worksheets/sheet") and old[name] != new[name]:
            # in a touched sheet only the cached values (and their types) of formulas differ
            assert without_cached_values(old[name]) == without_cached_values(new[name]), name
        elif not name.startswith("xl/worksheets/sheet"):
            assert old[name] == new[name], name


def _set_input(book, table, header, row, value):
    """Type a number into an input cell, as a seller would in Excel."""
    t = S.TABLE[table]
    ref = a1(t.first_data_row + row, t.col(header), False)
    with zipfile.ZipFile(book) as z:
        part = books.sheet_parts(z)[t.sheet]
    data = parts(book)
    xml = data[part].decode()
    xml, n = re.subn(rf'(<c r="{ref}"[^>]*?)(?: t="\w+")?>(?:<v>[^<]*</v>)?</c>',
                     rf'\1><v>{value}</v></c>', xml)
    assert n == 1, ref
    data[part] = xml.encode()
    tmp = book.with_suffix(".tmp.xlsx")
    with zipfile.ZipFile(book) as z, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            out.writestr(info, data[info.filename])
    tmp.replace(book)


def test_edited_inputs_give_what_an_independent_engine_computes(demo, tmp_path):
    require_tool("pycel")
    book = copy(demo, tmp_path / "edited.xlsx")
    _set_input(book, "Campaigns", "Cost", 0, 1234.5)
    _set_input(book, "Campaigns", "Clicks", 1, 0)          # a #DIV/0! CPC appears
    _set_input(book, "Orders", "Order amount", 3, 999.99)
    before = values(book)
    r = refresh(book)
    assert r.changed > 0 and r.kept == []
    after = values(book)
    t = S.TABLE["Campaigns"]
    roas = (t.sheet, a1(t.first_data_row, t.col("ROAS"), False))
    cpc = (t.sheet, a1(t.first_data_row + 1, t.col("CPC"), False))
    assert after[roas] != before[roas] and after[cpc] == "#DIV/0!"
    assert mismatches(recompute_all(book)) == {}


def test_a_formula_the_template_does_not_have_keeps_its_value(demo, tmp_path):
    book = copy(demo, tmp_path / "own.xlsx")
    data = parts(book)
    with zipfile.ZipFile(book) as z:
        part = books.sheet_parts(z)["KPIs"]
    xml = data[part].decode()
    # the seller's own formula replaces the template's (a dynamic-array call in the .xlsx)
    xml, n = re.subn(r'<c r="B6"([^>]*?)(?: cm="1")?>(<f[^>]*>)[^<]*</f><v>[^<]*</v>',
                     r'<c r="B6"\1><f>1+1</f><v>42</v>', xml)
    assert n == 1
    data[part] = xml.encode()
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as out:
        for name, b in data.items():
            out.writestr(name, b)
    r = refresh(book)
    assert [(k.sheet, k.ref, k.reason) for k in r.kept] == [("KPIs", "B6", CHANGED)]
    assert scan.read_formulas(book)["KPIs"]["B6"] == ("1+1", 42.0)
    out = CliRunner().invoke(main, ["refresh", str(book)])
    # done, but a value may be stale: the exit code says so
    assert out.exit_code == 5 and "kept: KPIs!B6" in out.output


def test_xlsm_keeps_its_macros(tmp_path):
    book = tmp_path / "b.xlsm"
    build_workbook(book, demo=True)
    vba = parts(book)["xl/vbaProject.bin"]
    s = stale(book, tmp_path / "s.xlsm")
    refresh(s)
    assert parts(s)["xl/vbaProject.bin"] == vba


def test_refuses_when_open_in_excel(demo, tmp_path):
    book = copy(demo, tmp_path / "open.xlsx")
    (tmp_path / "~$open.xlsx").write_bytes(b"owner")
    digest = hashlib.sha256(book.read_bytes()).hexdigest()
    with pytest.raises(BookLocked, match="open in Excel"):
        refresh(book)
    out = CliRunner().invoke(main, ["refresh", str(book)])
    assert out.exit_code == 3 and "open in Excel" in out.output
    assert hashlib.sha256(book.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("content, words", [
    (b"just text", "not an .xlsx"),
    (books.OLE2_MAGIC + b"\0" * 600, "password-protected"),
])
def test_bad_files_give_one_line_and_exit_1(tmp_path, content, words):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(content)
    out = CliRunner().invoke(main, ["refresh", str(bad)])
    assert out.exit_code == 1 and words in out.output and isinstance(out.exception, SystemExit)
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1


def test_truncated_and_foreign_workbooks(demo, tmp_path):
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(demo.read_bytes()[: len(demo.read_bytes()) // 2])
    assert CliRunner().invoke(main, ["refresh", str(cut)]).exit_code == 1
    import xlsxwriter
    other = tmp_path / "other.xlsx"
    wb = xlsxwriter.Workbook(other)
    wb.add_worksheet().write("A1", 1)
    wb.close()
    out = CliRunner().invoke(main, ["refresh", str(other)])
    assert out.exit_code == 1 and "not an xl-kpis workbook" in out.output


def test_xml_bomb_is_refused(demo, tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    data = parts(demo)
    entities = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    wb = data["xl/workbook.xml"].decode()
    data["xl/workbook.xml"] = wb.replace("?>", "?>" + entities, 1).encode()
    with zipfile.ZipFile(bomb, "w") as out:
        for name, b in data.items():
            out.writestr(name, b)
    r = CliRunner().invoke(main, ["refresh", str(bomb)])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)  # not a crash
    assert "unsafe or broken XML" in r.output


def test_killed_mid_write_leaves_the_book_intact(demo, tmp_path):
    book = stale(demo, tmp_path / "k.xlsx")
    digest = hashlib.sha256(book.read_bytes()).hexdigest()
    kill_while_writing(f"""
        from xl_kpis.cli import main
        main(["refresh", {str(book)!r}])
    """)
    assert hashlib.sha256(book.read_bytes()).hexdigest() == digest
    assert refresh(book).changed > 0      # and it can still be refreshed afterwards


VIDEOS = {"video_link": ["https://x/v/1", "https://x/v/2", "https://x/v/3"],
          "content_type": ["tutorial", "review", "tutorial"], "views": [1000, 400, 50],
          "likes": [50, 8, 1], "orders": [3, 1, 0], "revenue": [90.0, 25.0, 0.0]}


def test_a_resized_array_is_rewritten_in_place_with_what_shows_it(tmp_path):
    """A video without a content type adds a "(blank)" row to CONTENT_RESONANCE: the array
    formula's range, its cells, the Dashboard's chart data and the chart grow with it, and
    shrink back when the row goes; nothing else moves and nothing is kept."""
    require_tool("pycel")
    from xl_kpis.book.append import append_rows

    book = tmp_path / "grown.xlsx"
    build_workbook(book, tables={"Videos": VIDEOS})
    anchor = S.plan().cell("content")
    kpis = sheet_part(book, "KPIs")
    before = scan.array_ranges(parts(book)[kpis])
    ref = a1(anchor.row, anchor.col, False)
    assert f"{ref}:{a1(anchor.row + 2, anchor.col + 6, False)}" in before   # 2 types
    append_rows(book, {"Videos": [{"video_link": "https://x/v/4", "views": 100.0,
                                   "likes": 5.0, "comments": 1.0, "shares": 1.0}]})
    r = refresh(book)
    assert r.kept == []
    grown = f"{ref}:{a1(anchor.row + 3, anchor.col + 6, False)}"
    assert scan.array_ranges(parts(book)[kpis]) == [
        grown if x.startswith(ref + ":") else x for x in before]
    got = values(book)
    block = S.layout()["dash.content"]
    last = a1(block.row + 3, S.DASH_DATA_COL, False)           # one more chart-data row
    assert got[("Dashboard", last)] == "(blank)"
    charts = b"".join(v for k, v in parts(book).items() if k.startswith("xl/charts/"))
    assert f"Dashboard!$N${block.row + 2}:$N${block.row + 4}".encode() in charts
    assert mismatches(recompute_all(book)) == {}
    # and back: the video gets a content type of the others, the table loses its row
    t = S.TABLE["Videos"]
    type_cells(book, "Videos", {a1(t.first_data_row + 3, t.col("Content type")): "review"})
    assert refresh(book).kept == []
    assert scan.array_ranges(parts(book)[kpis]) == before
    assert ("Dashboard", last) not in values(book)
    assert mismatches(recompute_all(book)) == {}


def sheet_part(book, sheet):
    with zipfile.ZipFile(book) as z:
        return books.sheet_parts(z)[sheet]


# --- books other writers saved ------------------------------------------------------------

def _checked(book):
    """Refresh ``book`` and check it with engines of their own: every formula cell as pycel
    computes it, every chart cache as its cells, nothing kept."""
    r = refresh(book)
    assert r.kept == [] and r.formulas > 100
    assert mismatches(recompute_all(book)) == {}
    assert chart_cache_mismatches(book) == []
    return r


@pytest.mark.parametrize("lxml, empty", [("False", b"<v />"), ("True", b"<v></v>")])
def test_a_book_openpyxl_saved(small, tmp_path, lxml, empty):
    """openpyxl drops every cached value (``<v />`` from its own XML writer, ``<v></v>``
    from lxml's), writes text as inline strings and ``t="n"`` on numbers: refresh reads
    it all and computes every formula again."""
    import subprocess
    import sys

    require_tool("pycel")
    if lxml == "True":
        pytest.importorskip("lxml")
    book = copy(small, tmp_path / "openpyxl.xlsx")
    subprocess.run([sys.executable, "-c", "import sys; from openpyxl import load_workbook;"
                    " load_workbook(sys.argv[1]).save(sys.argv[1])", str(book)], check=True,
                   env={**__import__("os").environ, "OPENPYXL_LXML": lxml})
    sheets = b"".join(v for k, v in parts(book).items() if k.startswith("xl/worksheets/"))
    assert empty in sheets and b't="inlineStr"' in sheets
    assert mismatches(recompute_all(book)) != {}     # the values openpyxl dropped
    r = _checked(book)
    assert r.changed > 100


def test_a_book_libreoffice_saved(small, tmp_path):
    """LibreOffice saves our functions in lower case (the Lite template's calls as
    ``_xldudf_roas(``) with #NAME? cached where it recomputed them (it cannot compute them),
    ``aca`` attributes and shared strings: refresh puts every value back."""
    require_tool("soffice")
    require_tool("pycel")
    from engines import lo_convert

    [book] = lo_convert(small, "xlsx", tmp_path / "lo")
    sheets = b"".join(v for k, v in parts(book).items() if k.startswith("xl/worksheets/"))
    # (ROAS inside its not-measured IF: IF(AND(...),_xldudf_roas(...),""))
    assert b"#NAME?" in sheets and re.search(rb'<f aca="false">[^<]*\b_xldudf_roas\(', sheets)
    _checked(book)
    assert refresh(book).changed == 0                # and it is stable


def _rewrite_sheet(book, sheet, fn):
    data = parts(book)
    with zipfile.ZipFile(book) as z:
        part = books.sheet_parts(z)[sheet]
    data[part] = fn(data[part].decode()).encode()
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as out:
        for name, b in data.items():
            out.writestr(name, b)


def test_cached_value_forms_and_shared_formulas(small, tmp_path):
    """``<v></v>`` (XlsxWriter's empty text), ``<v />``, no ``<v>`` at all, and a table
    column written as one shared formula (Excel's form for a filled-down formula, which
    no tool here writes: made by hand from the built book)."""
    require_tool("pycel")
    book = copy(small, tmp_path / "forms.xlsx")
    assert b"<v></v>" in b"".join(parts(book).values())            # XlsxWriter's ""
    t = S.TABLE["Campaigns"]
    col = a1(0, t.col("ROAS"))[:-1]
    first, last = t.first_data_row + 1, t.first_data_row + 8

    def forms(xml):
        cells = list(re.finditer(rf'<c r="{col}(\d+)"([^>]*)><f>([^<]*)</f><v>[^<]*</v></c>',
                                 xml))
        assert len(cells) == 8
        out, pos = [], 0
        for i, m in enumerate(cells):
            attrs = re.sub(r' t="\w+"', "", m.group(2))
            if i == 0:
                new = (f'<c r="{col}{first}"{attrs}><f t="shared" ref="{col}{first}:{col}{last}"'
                       f' si="0">{m.group(3)}</f><v />')
            else:
                new = f'<c r="{m.group(1) and col}{m.group(1)}"{attrs}><f t="shared" si="0"/>'
                new += "" if i % 2 else "<v></v>"
            out += [xml[pos:m.start()], new + "</c>"]
            pos = m.end()
        xml = "".join(out) + xml[pos:]
        # and a computed cell of another column with no <v> at all
        return re.sub(r'(<c r="X5"[^>]*?)(?: t="\w+")?>(<f>[^<]*</f>)<v>[^<]*</v></c>',
                      r"\1>\2</c>", xml, count=1)

    _rewrite_sheet(book, "Campaigns", forms)
    xml = parts(book)[sheet_part(book, "Campaigns")]
    assert b'<f t="shared" si="0"/></c>' in xml and b"<v />" in xml
    r = _checked(book)
    assert r.changed >= 8
    got = values(book)
    fresh = values(small)
    assert all(close(got[("Campaigns", f"{col}{row}")], fresh[("Campaigns", f"{col}{row}")])
               for row in range(first, last + 1))


def test_settings_and_benchmark_limits_the_seller_edits_are_read(small, tmp_path):
    """The gross margin on the Start sheet and a limit on the Benchmarks sheet, typed by the
    seller: refresh computes with them (pycel, reading the same cells, agrees)."""
    require_tool("pycel")
    book = copy(small, tmp_path / "edited.xlsx")
    margin = S.plan().cell("setting.Margin")
    weak = S.input_cells()["bench.ctr.weak"]
    type_cells(book, "Start", {a1(margin.row, margin.col): 0.61})
    type_cells(book, "Benchmarks", {a1(weak.row, weak.col): 0.9})
    assert mismatches(recompute_all(book)) != {}          # stale until refreshed
    r = refresh(book)
    assert r.changed > 0 and r.kept == []
    assert mismatches(recompute_all(book)) == {}
    got = values(book)
    rating = S.plan().cell("rating.ctr")
    assert got[("Benchmarks", a1(rating.row, rating.col, False))] == "weak"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["Completed", "", "#N/A", "#DIV/0!", " x "]),
                          st.text(max_size=3), st.floats(allow_nan=False), st.none(),
                          st.datetimes()), max_size=30))
def test_a_table_column_keeps_its_values_and_reads_error_texts_as_text(values):
    """A column read from a table's rows is its values, equal texts one object, and a text
    reading like an error a :class:`Text` (calamine gives error cells as blanks)."""
    got = refresh_module._column([["before", v, 1.0] for v in values], 1)
    assert got == values
    assert [type(v) for v in got] == [Text if isinstance(v, str) and v in ERRORS else type(v)
                                      for v in values]
    first: dict = {}
    for v in got:
        if isinstance(v, str):
            assert first.setdefault(v, v) is v            # equal texts: one object
