"""Hostile inputs (issue 14): every command ends within fixed limits, with a one-line error.

Each attack writes a small file into ``tmp_path`` (a zip bomb is a few MB that
inflate to hundreds), runs the ``xl-kpis`` command line in a child process
under a memory cap (``RLIMIT_AS``) and a time limit, and checks the exit code,
a one-line message without a traceback, and the book left byte for byte as it
was when the command refuses it.  The "uncapped" tests take a bound away in the
child (the one thing they change) and show the same file then breaks the
limits: the caps are what keeps each command within them.

The bounds themselves are in :mod:`xl_kpis.package` (zip packages),
:mod:`xl_kpis.imports.clean` (records, numbers, dates, text) and
:data:`xl_kpis.metrics._kpi.MAX_ROWS`; the README states them.
"""

from __future__ import annotations

import csv
import io
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import zipcraft as zc
from bookfiles import copy
from xl_kpis import officejs
from xl_kpis.book import build_workbook, scan
from xl_kpis.imports.synth import ORDER_HEADERS
from xl_kpis.xlsx.refs import rowcol

#: Address space of a child: several times what any command needs on these small files
#: (a refresh of the template peaks near 300 MB of address space with one BLAS thread).
MEMORY = 768 << 20
#: Seconds a child may take (the files are small: each command needs a few seconds).
TIMEOUT = 180

ORDERS, START, KPIS = ("xl/worksheets/sheet4.xml", "xl/worksheets/sheet1.xml",
                       "xl/worksheets/sheet6.xml")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def killed(self) -> bool:
        return self.code < 0


def _limit(memory: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run(*args, memory: int = MEMORY, before: str = "") -> Run:
    """``xl-kpis ARGS`` in a child process under the memory cap and the time limit.

    ``before`` is Python run in the child first (to take a bound away)."""
    code = textwrap.dedent(before) + "\nimport sys\nfrom xl_kpis.cli import main\n" \
        "sys.argv = ['xl-kpis', *sys.argv[1:]]\nmain()\n"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "RUST_BACKTRACE": "0"}
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                       text=True, timeout=TIMEOUT, preexec_fn=_limit(memory), env=env)
    return Run(p.returncode, p.stdout, p.stderr)


def refused(r: Run, *words: str) -> None:
    """Exit code 1 and one line on stderr naming the problem, no traceback."""
    assert r.code == 1, (r.code, r.err[-2000:])
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xl-kpis: "), r.err[-2000:]
    assert "Traceback" not in r.err + r.out
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]


def broke_a_limit(r: Run) -> None:
    """What the uncapped child did: killed, or a crash (a traceback), never a clean refusal."""
    assert r.killed or "Traceback" in r.err or "memory allocation" in r.err, (r.code, r.err[-800:])


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    p = tmp_path_factory.mktemp("attacks") / "template.xlsx"
    build_workbook(p)
    return p


@pytest.fixture
def book(template, tmp_path):
    return copy(template, tmp_path / "book.xlsx")


def hostile_book(template: Path, tmp_path: Path, changes: dict) -> Path:
    return zc.replaced(template, tmp_path / "hostile.xlsx", changes)


def book_commands(path: Path, tmp_path: Path, export: Path) -> list[tuple]:
    """The commands that read a book: refresh, report, import into it, build from it."""
    return [("refresh", path), ("report", path), ("import", "orders", export, "--into", path),
            ("build", tmp_path / "new.xlsx", "--from", path)]


def assert_each_refuses(path: Path, tmp_path: Path, *words: str) -> None:
    before = path.read_bytes()
    export = orders_csv(tmp_path / "o.csv", [order_line("101", Order_Amount="5")])
    for cmd in book_commands(path, tmp_path, export):
        refused(run(*cmd), *words)
        assert path.read_bytes() == before, cmd
    assert not (tmp_path / "new.xlsx").exists()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no scratch left


# --- exports ---------------------------------------------------------------------------------

def order_line(order_id: str, **cells: str) -> list[str]:
    line = [""] * len(ORDER_HEADERS)
    base = {"Order ID": order_id, "Order Status": "Completed", "Buyer Username": "ann",
            "Product Name": "Mug", "Quantity": "1", "Order Amount": "10",
            "SKU Subtotal After Discount": "10", "Created Time": "1/2/2026 10:00:00 AM"}
    for k, v in {**base, **{k.replace("_", " "): v for k, v in cells.items()}}.items():
        line[ORDER_HEADERS.index(k)] = v
    return line


def orders_csv(path: Path, lines: list[list[str]], tail: str = "") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([ORDER_HEADERS, *lines])
    path.write_text(buf.getvalue() + tail, encoding="utf-8")
    return path


def table(path: Path, name: str) -> list[dict]:
    from python_calamine import CalamineWorkbook
    t = CalamineWorkbook.from_path(str(path), load_tables=True).get_table_by_name(name)
    return [dict(zip(t.columns, row)) for row in t.to_python()]


def kpi_values(path: Path) -> dict[str, object]:
    """Formula (without ``=``, calls in their plain spelling) -> cached value of the KPIs
    sheet's cells."""
    return {officejs.plain(f): v for f, v in scan.read_formulas(path)["KPIs"].values() if f}


def shop_kpis_of(path: Path) -> dict:
    vals = kpi_values(path)
    # the first cell calling each (a KPI may sit inside its not-measured IF(...))
    return {k: next(v for f, v in vals.items() if re.search(r"(?<![A-Z_])" + re.escape(k), f)) for k in
            ("ORDER_COUNT(Orders[Counted order])", "ORDER_REVENUE(", "BUYER_COUNT(", "AOV(",
             "CLV(")}


# === 6, 11: zip bombs ===========================================================================

def test_a_sheet_that_inflates_a_thousand_times_is_refused_by_every_command(template, tmp_path):
    orders = zc.content(template, ORDERS)
    head, _, tail = orders.partition(b"</sheetData>")
    hostile = hostile_book(template, tmp_path, {
        ORDERS: zc.bomb(ORDERS, head, b" ", 300, b"</sheetData>" + tail)})
    assert_each_refuses(hostile, tmp_path, "inflates", "zip bomb")


def test_a_shared_strings_bomb_is_refused(template, tmp_path):
    sst = zc.content(template, "xl/sharedStrings.xml")
    head, _, tail = sst.partition(b"</sst>")
    hostile = hostile_book(template, tmp_path, {
        "xl/sharedStrings.xml": zc.bomb("xl/sharedStrings.xml", head + b"<si><t>", b"A", 300,
                                        b"</t></si></sst>")})
    assert_each_refuses(hostile, tmp_path, "sharedStrings.xml", "zip bomb")


def test_a_member_inflating_beyond_its_declared_size_is_refused(template, tmp_path):
    orders = zc.content(template, ORDERS)
    head, _, tail = orders.partition(b"</sheetData>")
    bomb = zc.bomb(ORDERS, head, b" ", 300, b"</sheetData>" + tail)
    bomb.size = len(orders)                  # declared: the size of the real sheet
    hostile = hostile_book(template, tmp_path, {ORDERS: bomb})
    assert_each_refuses(hostile, tmp_path, ORDERS, "damaged")


def test_many_small_members_that_inflate_together_are_refused(template, tmp_path):
    """Each member stays under the size from which a single member's ratio is checked: the
    package's ratio as a whole is."""
    extra = {f"xl/media/pad{i}.bin": zc.bomb(f"xl/media/pad{i}.bin", b"", b"\0", 1, b"")
             for i in range(200)}
    hostile = hostile_book(template, tmp_path, extra)
    assert_each_refuses(hostile, tmp_path, "zip bomb")


def test_a_studio_zip_of_small_bombs_is_refused(book, tmp_path):
    members = [zc.bomb(f"Overview{i}.csv", b"Date,Video Views\n", b"1 August,1\n", 1, b"")
               for i in range(200)]
    src = zc.write_zip(tmp_path / "studio.zip", members)
    before = book.read_bytes()
    refused(run("import", "studio", src, "--into", book, "--year", "2026"), "zip bomb")
    assert book.read_bytes() == before


def test_a_studio_zip_beyond_its_total_is_refused(book, tmp_path):
    """Studio CSVs are small: a zip inflating past 64 MiB is refused even at a sane ratio."""
    rows = "".join(f"{d} August,{d * 7 % 1000}\n" for d in range(1, 29)).encode()
    members = [zc.deflated(f"Overview{i}.csv", b"Date,Video Views\n" + rows * 3000)
               for i in range(20)]
    src = zc.write_zip(tmp_path / "studio.zip", members)
    refused(run("import", "studio", src, "--into", book, "--year", "2026"), "MiB")


def test_uncapped_the_sheet_bomb_breaks_the_memory_limit(template, tmp_path):
    orders = zc.content(template, ORDERS)
    head, _, tail = orders.partition(b"</sheetData>")
    hostile = hostile_book(template, tmp_path, {
        ORDERS: zc.bomb(ORDERS, head, b" ", 1024, b"</sheetData>" + tail)})
    refused(run("refresh", hostile), "zip bomb")
    broke_a_limit(run("refresh", hostile, before="""
        import xl_kpis.package as p
        p.MAX_RATIO, p.MAX_TOTAL = 10**9, 1 << 40
    """))


# === cells far apart: python-calamine's dense grid ==============================================

def test_two_cells_far_apart_are_refused(template, tmp_path):
    start = zc.content(template, START)
    hostile = hostile_book(template, tmp_path, {START: start.replace(
        b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>')})
    assert_each_refuses(hostile, tmp_path, "spreads its cells")


@pytest.mark.parametrize("rows", [
    b'<row r="9"><c s="1" r="ZZZ9"><v>1</v></c></row>',           # r not the first attribute
    b'<x:row r="9"><x:c r="ZZZ9"><x:v>1</x:v></x:c></x:row>',       # a namespace prefix
    b'<row r="9"><c r="&#90;ZZ9"><v>1</v></c></row>',               # an escaped letter
    b"<row r='9'><c r='ZZZ9'><v>1</v></c></row>",                   # single quotes
    b'<row r="2"><c r="ZZ2"><v>1</v></c></row><row r="999999"><c><v>1</v></c></row>',  # its
])                                                                  # row's number, no address
def test_far_cells_in_unusual_forms_are_refused(template, tmp_path, rows):
    """(each with a cell at row 999,999, so that the grid spans both corners)"""
    far_row = b'<row r="999999"><c r="B999999"><v>1</v></c></row>' if b"999999" not in rows \
        else b""
    hostile = hostile_book(template, tmp_path, {START: zc.content(template, START).replace(
        b"</sheetData>", rows + far_row + b"</sheetData>")})
    refused(run("report", hostile), "spreads its cells")


def test_uncapped_far_cells_break_the_memory_limit(template, tmp_path):
    start = zc.content(template, START)
    hostile = hostile_book(template, tmp_path, {START: start.replace(
        b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>')})
    broke_a_limit(run("report", hostile, before="""
        import xl_kpis.package as p
        p.check_cells = lambda xml, name, part: None
    """))


# === 9: parsing stays linear ====================================================================

def test_twenty_thousand_unclosed_inline_strings_refresh_in_linear_time(template, tmp_path):
    kpis = zc.content(template, KPIS)
    cells = b"".join(b'<c r="A%d" t="inlineStr"><is><t>x</t></c>' % (2000 + i)
                     for i in range(20_000))
    hostile = hostile_book(template, tmp_path, {KPIS: kpis.replace(
        b"</sheetData>", b'<row r="2000">' + cells + b"</row></sheetData>")})
    r = run("refresh", hostile)            # the quadratic regex took > 300 s on these
    assert r.code in (0, 1) and "Traceback" not in r.err, r.err[-2000:]


def test_formulas_far_from_any_cell_start_refresh_in_linear_time(template, tmp_path):
    """200,000 formula elements after one cell's start tag: finding each one's cell looked back
    to that tag every time (quadratic: 20,000 took 7 s, these would take minutes)."""
    kpis = zc.content(template, KPIS)
    hostile = hostile_book(template, tmp_path, {KPIS: kpis.replace(
        b"</sheetData>", b'<row r="2000"><c r="A2000">' + b"<f>1</f></c>" * 200_000
        + b"</row></sheetData>")})
    r = run("refresh", hostile)
    assert r.code in (0, 1) and "Traceback" not in r.err, r.err[-2000:]


def test_unclosed_shared_string_items_are_refused(template, tmp_path):
    sst = zc.content(template, "xl/sharedStrings.xml")
    head, _, tail = sst.partition(b"</sst>")
    hostile = hostile_book(template, tmp_path, {"xl/sharedStrings.xml": head + b"<si><t>x</t>"
                                                * 20_000 + b"</sst>"})
    refused(run("refresh", hostile), "cannot read")


# === 16: damaged or odd books, one line each ====================================================

def test_a_dtd_in_a_worksheet_is_refused(template, tmp_path):
    orders = zc.content(template, ORDERS)
    hostile = hostile_book(template, tmp_path, {ORDERS: orders.replace(
        b"<worksheet", b'<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<worksheet", 1).replace(b"</sheetData>", b'<row r="9"><c r="B9" t="inlineStr">'
                                  b"<is><t>&b;</t></is></c></row></sheetData>")})
    assert_each_refuses(hostile, tmp_path, "DTD")


def test_corrupt_deflate_data_is_refused(template, tmp_path):
    members = zc.members_of(template)
    for m in members:
        if m.name == ORDERS:
            data = bytearray(m.data)
            for k in range(len(data) // 3, len(data) // 3 + 40):
                data[k] ^= 0x5A
            m.data = bytes(data)
    hostile = zc.write_zip(tmp_path / "hostile.xlsx", members)
    assert_each_refuses(hostile, tmp_path, ORDERS, "damaged")


@pytest.mark.parametrize("member, words", [(ORDERS, ("missing",)),
                                           ("xl/sharedStrings.xml", ("cannot read",))])
def test_a_missing_part_is_refused(template, tmp_path, member, words):
    hostile = hostile_book(template, tmp_path, {member: None})
    assert_each_refuses(hostile, tmp_path, *words)


@pytest.mark.parametrize("cell", [b'<c r="B9" t="s"><v>99999</v></c>',   # no such string
                                  b'<c r="9B"><v>1</v></c>',               # bad references
                                  b'<c r="B0"><v>1</v></c>'])
def test_bad_string_index_or_cell_reference_is_refused(template, tmp_path, cell):
    orders = zc.content(template, ORDERS)
    hostile = hostile_book(template, tmp_path, {ORDERS: orders.replace(
        b"</sheetData>", b'<row r="9">' + cell + b"</row></sheetData>")})
    refused(run("refresh", hostile))
    refused(run("report", hostile))


@pytest.mark.parametrize("target, words", [(b"", ("no target",)),
                                           (b' Target="../../../etc/passwd"', ("outside",)),
                                           (b' Target="http://example.com/x.xml"', ("outside",))])
def test_a_relationship_without_target_or_outside_the_package_is_refused(
        template, tmp_path, target, words):
    rels = zc.content(template, "xl/_rels/workbook.xml.rels")
    hostile = hostile_book(template, tmp_path, {"xl/_rels/workbook.xml.rels": rels.replace(
        b' Target="worksheets/sheet4.xml"', target)})
    assert_each_refuses(hostile, tmp_path, *words)


def test_a_formula_cell_without_address_is_refused(template, tmp_path):
    kpis = zc.content(template, KPIS)
    hostile = hostile_book(template, tmp_path, {KPIS: kpis.replace(
        b"</sheetData>", b'<row r="300"><c s="1"><f>1+1</f><v>2</v></c></row></sheetData>')})
    refused(run("refresh", hostile), "no address")


def test_not_a_zip_and_a_truncated_one_are_refused(template, tmp_path):
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(template.read_bytes()[:20_000])
    assert_each_refuses(cut, tmp_path, "truncated")


# === 3, 10, 13, 14, 15: order exports ===========================================================

def test_a_truncated_last_line_is_skipped_with_its_line_number(book, tmp_path):
    src = orders_csv(tmp_path / "o.csv", [order_line("101"), order_line("102")])
    whole = src.read_text(encoding="utf-8")
    src.write_text(whole[:whole.rindex("Mug") + 2], encoding="utf-8")      # cut mid-record
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0, r.err
    assert "1 added, 0 updated, 0 unchanged, 1 skipped" in r.out and "fewer fields than the header" in r.out, r.out
    assert "(line 3)" in r.out
    assert [x["Order ID"] for x in table(book, "Orders") if x["Order ID"]] == ["101"]
    r = run("report", "--orders", src, "--json")
    assert r.code == 0 and '"orders": 1,' in r.out, r.out
    src.write_text(whole, encoding="utf-8")                 # the complete download, imported again
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0 and "1 added, 0 updated, 1 unchanged, 0 skipped" in r.out, r.out
    rows = {x["Order ID"]: x for x in table(book, "Orders") if x["Order ID"]}
    assert sorted(rows) == ["101", "102"]
    assert (rows["102"]["Buyer"], rows["102"]["Order amount"]) == ("ann", 10.0), rows["102"]


def test_an_unterminated_quote_at_the_end_is_no_order(book, tmp_path):
    src = orders_csv(tmp_path / "o.csv", [order_line("101")], tail='102,"Completed')
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0, r.err
    assert "1 added, 0 updated, 0 unchanged, 1 skipped" in r.out and "unterminated quote" in r.out and "(line 3)" in r.out
    r = run("report", "--orders", src, "--json")
    assert r.code == 0 and '"orders": 1,' in r.out, r.out


@pytest.mark.parametrize("record", [b"1,1," * (1 << 20), b"x" * (3 << 20)])
def test_a_record_without_line_end_is_refused(book, tmp_path, record):
    src = tmp_path / "o.csv"
    src.write_bytes(orders_csv(tmp_path / "h.csv", [order_line("101")]).read_bytes() + record)
    before = book.read_bytes()
    refused(run("import", "orders", src, "--into", book), "line 3", "longer than")
    refused(run("report", "--orders", src), "line 3", "longer than")
    assert book.read_bytes() == before


@pytest.mark.parametrize("amount", ["1e309", "1e400", "-1e309"])
def test_an_amount_beyond_floats_is_refused_with_its_line(book, tmp_path, amount):
    src = orders_csv(tmp_path / "o.csv", [order_line("101"), order_line("102", Order_Amount=amount)])
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0 and "1 added, 0 updated, 0 unchanged, 1 skipped" in r.out and amount in r.out, r.out
    assert "too large" in r.out and "(line 3)" in r.out
    kpis = shop_kpis_of(book)
    assert kpis["ORDER_REVENUE("] == 10.0
    r = run("report", "--orders", src, "--json")
    assert r.code == 0 and '"revenue": 10.0' in r.out, r.out
    r = run("report", book, "--json")
    assert r.code == 0 and '"revenue": 10.0' in r.out, r.out


def test_a_negative_amount_is_refused_at_import_and_never_crashes_a_report(book, tmp_path):
    src = orders_csv(tmp_path / "o.csv", [order_line("101"), order_line("102", Order_Amount="(40.05)")])
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0 and "1 added, 0 updated, 0 unchanged, 1 skipped" in r.out, r.out
    assert "'(40.05)' is negative" in r.out and "(line 3)" in r.out
    r = run("report", "--orders", src, "--json")
    assert r.code == 0 and '"revenue": 10.0' in r.out, r.out
    # a negative amount typed into the book: the report shows the KPI undefined, as the book
    # shows #NUM!, and does not crash
    from xl_kpis.book.append import append_rows
    append_rows(book, {"Orders": [{"order_id": "103", "status": "Completed", "buyer": "bo",
                                   "order_amount": -40.05}]})
    r = run("report", book, "--json")
    assert r.code == 0 and '"revenue": null' in r.out and "Traceback" not in r.err, r.err


@pytest.mark.parametrize("when", ["2/28/1900 10:00:00 AM", "0001-01-01", "1899-12-31 00:00:00"])
def test_dates_excel_cannot_show_are_refused_with_their_line(book, tmp_path, when):
    src = orders_csv(tmp_path / "o.csv", [order_line("101"), order_line("102", Created_Time=when)])
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0 and "1 added, 0 updated, 0 unchanged, 1 skipped" in r.out and "(line 3)" in r.out, r.out
    assert "1900-03-01" in r.out
    assert min(x["Created"] for x in table(book, "Orders") if x["Created"]).year == 2026


# === 7: one long text cell ======================================================================

def test_a_long_product_name_costs_its_own_length(book, tmp_path):
    """One 30,000-character name among 6,000 lines: a fixed-width text array of the column
    would need 6,000 x 30,000 x 4 bytes (720 MB) and more; the import and the reports stay
    under the cap, and TOP_PRODUCTS in the book shows the name."""
    long = "L" * 30_000
    lines = [order_line(str(1000 + i), Buyer_Username=f"b{i % 50}",
                        Product_Name=long if i == 0 else f"p{i % 7}",
                        Order_Amount="1000" if i == 0 else "1",
                        SKU_Subtotal_After_Discount="1000" if i == 0 else "1")
             for i in range(6000)]
    src = orders_csv(tmp_path / "o.csv", lines)
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0 and "6,000 added" in r.out, (r.out, r.err[-2000:])
    top = scan.read_formulas(book)["KPIs"]
    assert "kept" not in r.out                      # TOP_PRODUCTS was refreshed, not kept
    from xl_kpis.book import schema as S
    from xl_kpis.xlsx.refs import a1

    first = S.plan().cell("top_products")           # the anchor's header; the 1st product
    spilled = table_cell(book, "KPIs", a1(first.row + 1, first.col, False))
    assert spilled == long
    for args in (("report", "--orders", src), ("report", book)):
        r = run(*args)
        assert r.code == 0, r.err[-2000:]
    assert top


def table_cell(book: Path, sheet: str, ref: str):
    from python_calamine import CalamineWorkbook
    grid = CalamineWorkbook.from_path(str(book)).get_sheet_by_name(sheet).to_python(
        skip_empty_area=False)
    row, col = rowcol(ref)
    return grid[row][col]


def test_a_text_longer_than_a_cell_is_refused_with_its_line(book, tmp_path):
    src = orders_csv(tmp_path / "o.csv", [order_line("101"),
                                          order_line("102", Product_Name="L" * 100_000)])
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0 and "1 added, 0 updated, 0 unchanged, 1 skipped" in r.out and "(line 3)" in r.out, r.out
    assert "more than a cell holds (32,767)" in r.out
    # report --orders reads only the columns of its KPIs (not Product Name), and checks those
    r = run("report", "--orders", src, "--json")
    assert r.code == 0 and '"orders": 2,' in r.out, r.err[-2000:]


# === 12: text that reads like an Excel error ====================================================

def test_error_looking_text_is_text_to_the_evaluator(book, tmp_path):
    src = orders_csv(tmp_path / "o.csv", [
        order_line("101"), order_line("102", Order_Status="#N/A", Order_Amount="20"),
        order_line("103", Buyer_Username="#N/A", Product_Name="#N/A", Order_Amount="30"),
        order_line("104", Buyer_Username="#VALUE!", Product_Name="#DIV/0!", Order_Amount="40",
                   SKU_Subtotal_After_Discount="40")])
    r = run("import", "orders", src, "--into", book)
    assert r.code == 0 and "4 added" in r.out, r.out
    kpis = shop_kpis_of(book)
    assert kpis == {"ORDER_COUNT(Orders[Counted order])": 4.0, "ORDER_REVENUE(": 100.0,
                    "BUYER_COUNT(": 3.0, "AOV(": 25.0, "CLV(": kpis["CLV("]}
    assert isinstance(kpis["CLV("], float)
    from xl_kpis.book import schema as S
    from xl_kpis.xlsx.refs import a1

    top = S.plan().cell("top_products")
    first = a1(top.row + 1, top.col, False)                # the best seller's cell
    assert table_cell(book, "KPIs", first) == "#DIV/0!"     # the best seller, as text
    xml = zc.content(book, KPIS)
    assert re.search(rb'<c r="%s"[^>]*t="inlineStr"' % first.encode(), xml)
    r = run("report", book, "--json")
    assert r.code == 0 and '"revenue": 100.0' in r.out and '"buyers": 3,' in r.out


# === 8: top_n and rows ==========================================================================

def udf_child(call: str, before: str = "") -> Run:
    code = textwrap.dedent(before) + "\nfrom xl_kpis.udfs import TOP_PRODUCTS, CONTENT_RESONANCE" \
        f"\nprint(repr({call}))\n"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=TIMEOUT, preexec_fn=_limit(MEMORY), env=env)
    return Run(p.returncode, p.stdout, p.stderr)


@pytest.mark.parametrize("call", [
    "TOP_PRODUCTS([['a']], [[1]], 1e8)", "TOP_PRODUCTS([['a']], [[1]], [[1048576]])",
    "CONTENT_RESONANCE([['t']], [[1]], [[1]], [[1]], [[1]], 1e8)"])
def test_a_huge_top_n_or_rows_is_num_error(call):
    r = udf_child(call)
    assert r.code == 0 and r.out.strip() == "'#NUM!'", (r.out, r.err[-2000:])


def test_the_largest_top_n_is_an_excel_sheet_of_rows():
    r = udf_child("len(TOP_PRODUCTS([['a']], [[1]], 1048575))")
    assert r.code == 0 and r.out.strip() == "1048576", r.err[-2000:]


def test_uncapped_a_huge_top_n_breaks_the_memory_limit():
    broke_a_limit(udf_child("TOP_PRODUCTS([['a']], [[1]], 1e8)", before="""
        import xl_kpis.cells, xl_kpis.metrics.content
        xl_kpis.cells.SHEET_ROWS = xl_kpis.metrics.content.MAX_ROWS = 10**12
        xl_kpis.cells._STRICT = True
    """))
