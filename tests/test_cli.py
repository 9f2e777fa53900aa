"""The ``xl-kpis`` command line: output and exit codes.

0 ok, 1 bad file, 2 usage, 3 the book is open in Excel.
"""

import csv
import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import xlsxwriter
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

import xl_kpis
from xl_kpis.book import schema as S
from xl_kpis.xlsx import books
from xl_kpis.cli import main
from bookfiles import copy

ROOT = Path(__file__).resolve().parents[1]

DATA = Path(__file__).parent / "data" / "exports"
ORDERS_US = DATA / "orders_us.csv"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_line_error(result, code, *words):
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception   # not a crash
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("xl-kpis: ")
    for w in words:
        assert w in result.output


def order_rows(path):
    wb = CalamineWorkbook.from_path(str(path), load_tables=True)
    return wb.get_table_by_name("Orders").to_python()


# --- build ------------------------------------------------------------------------------

def test_build_template_and_demo(tmp_path):
    r = run("build", tmp_path / "sub" / "t.xlsx")
    assert r.exit_code == 0 and "empty template" in r.output
    r = run("build", tmp_path / "d.xlsm", "--demo", "--seed", 3)
    assert r.exit_code == 0 and "demo data" in r.output and "Orders" in r.output
    with zipfile.ZipFile(tmp_path / "d.xlsm") as z:
        assert "xl/vbaProject.bin" in z.namelist()


def test_build_never_replaces_a_book_without_force(tmp_path):
    book = tmp_path / "mine.xlsx"
    assert run("build", book, "--demo").exit_code == 0
    before = book.read_bytes()
    r = run("build", book)
    assert r.exit_code == 2 and "exists; pass --force" in r.output
    assert book.read_bytes() == before
    r = run("build", book, "--force")
    assert r.exit_code == 0 and "empty template" in r.output and book.read_bytes() != before


@pytest.mark.parametrize("args", [["t.csv"], ["t.xlsx", "--seed", "1"], [], ["t.xlsx", "--x"]])
def test_build_usage_errors(tmp_path, args):
    assert run("build", *[tmp_path / a if a.startswith("t.") else a for a in args]).exit_code == 2


# --- refresh ----------------------------------------------------------------------------

def test_refresh(demo, tmp_path):
    book = copy(demo, tmp_path / "b.xlsx")
    r = run("refresh", book, "--no-progress")
    assert r.exit_code == 0 and r.output.startswith(f"Refreshed {book}:")
    out = tmp_path / "out.xlsx"
    assert run("refresh", book, "--out", out).exit_code == 0 and out.exists()


def test_refresh_bad_files_and_lock(demo, tmp_path):
    one_line_error(run("refresh", tmp_path / "missing.xlsx"), 1, "no such file")
    text = tmp_path / "text.xlsx"
    text.write_text("hello")
    one_line_error(run("refresh", text), 1, "not an .xlsx")
    book = copy(demo, tmp_path / "open.xlsx")
    (tmp_path / "~$open.xlsx").write_bytes(b"owner")
    before = digest(book)
    one_line_error(run("refresh", book), 3, "open in Excel")
    assert digest(book) == before


# --- report -----------------------------------------------------------------------------

def test_report_from_a_book_and_from_exports(demo):
    r = run("report", demo)
    assert r.exit_code == 0 and "ROAS" in r.output
    data = json.loads(run("report", demo, "--json").output)
    assert data["orders"] > 0
    # the predicted CLV model is reported with the book's gross margin (the Start sheet's 40 %)
    assert data["clv_model"]["margin"] == 0.4 and data["clv_model"]["months"] == 12
    assert data["predicted_clv"] == data["clv_model"]["predicted_clv"]
    assert "Predicted CLV model" in r.output
    r = run("report", "--orders", ORDERS_US, "--ads", DATA / "ads_campaign_usd.csv", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ad_cost"] > 0
    # the ads report's row with a decimal comma is not counted, and the report says so
    assert r.stderr.splitlines() == ["xl-kpis: 1 line of ads_campaign_usd.csv not counted:",
                                     "  - 1: column 'Cost (USD)': '12,5' is not a number (line 6)"]


def test_report_from_an_export_fits_the_clv_model_when_asked(tmp_path):
    from xl_kpis.imports.synth import write_order_export

    export = tmp_path / "orders.csv"
    write_order_export(export, 3000, seed=7)
    plain = json.loads(run("report", "--orders", export, "--json").output)
    fitted = json.loads(run("report", "--orders", export, "--json", "--clv").output)
    assert plain["predicted_clv"] is None and "--clv" in plain["clv_model"]["error"]
    assert fitted["predicted_clv"] > 0 and fitted["clv_model"]["margin"] == 1.0
    assert fitted["clv_model"]["parameters"]["Customers"] == fitted["buyers"]
    # the KPIs sheet's predicted CLV rows read the columns only --clv reads; they take the
    # template's gross margin (40 %), where an export's own predicted CLV is a revenue CLV
    clv_rows = ("predicted_clv", "clv_model", "pclv", "pclv_cac")
    assert plain["pclv"] is None and plain["pclv_cac"] is None
    assert fitted["pclv"] == pytest.approx(0.4 * fitted["predicted_clv"], rel=1e-12)
    assert {k: v for k, v in fitted.items() if k not in clv_rows} == \
        {k: v for k, v in plain.items() if k not in clv_rows}
    text = run("report", "--orders", export, "--clv").output
    assert "BG/NBD" in text and "Gamma-Gamma" in text


def test_report_shows_progress_on_request(demo):
    quiet = CliRunner().invoke(main, ["report", str(demo), "--json"])
    shown = CliRunner().invoke(main, ["report", str(demo), "--json", "--progress"])
    assert quiet.exit_code == shown.exit_code == 0
    assert quiet.stderr == ""          # not a terminal: no progress unless asked
    # (the KPIs sheet's predicted CLV row fits the model the report shows: one evaluation)
    steps = ["reading the book's tables",
             "computing the KPIs and fitting the predicted CLV model", "done"]
    # each step overwrites the line before (click drops the erase-line code off a terminal)
    assert [line.split("… ")[-1] for line in shown.stderr.split("\r")[1:]] == \
        steps[:-1] + ["done\n"]
    assert shown.stdout == quiet.stdout                  # the KPIs alone on stdout
    r = CliRunner().invoke(main, ["report", "--orders", str(ORDERS_US), "--progress"])
    assert r.exit_code == 0 and "reading the exports" in r.stderr
    assert "fitting" not in r.stderr and "reading" not in r.stdout


def test_report_of_an_export_tells_which_lines_it_did_not_count(tmp_path):
    """Lines a report leaves out (a decimal comma in an amount, a cut-short line) are listed
    on stderr with why and where; stdout keeps the KPIs alone.  The export's description
    row is no data line: an export without refused lines gets no note."""
    from xl_kpis.imports.synth import write_order_export

    export = tmp_path / "orders.csv"
    write_order_export(export, 40, seed=3)
    clean = CliRunner().invoke(main, ["report", "--orders", str(export), "--json"])
    assert clean.exit_code == 0 and clean.stderr == ""
    with open(export, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    rows[4][rows[0].index("Order Amount")] = "12,50"          # a decimal comma: refused, not guessed
    rows[7] = rows[7][:3]                                     # a line cut short
    with open(export, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    r = CliRunner().invoke(main, ["report", "--orders", str(export), "--json"])
    assert r.exit_code == 0
    assert r.stderr.splitlines() == [
        "xl-kpis: 2 lines of orders.csv not counted:",
        "  - 1: column 'Order Amount': '12,50' is not a number (line 5)",
        "  - 1: fewer fields than the header (a line cut short?) (line 8)"]
    report = json.loads(r.stdout)
    assert report["orders"] <= json.loads(clean.stdout)["orders"]


def test_report_usage_and_bad_files(demo, tmp_path):
    assert run("report").exit_code == 2
    assert run("report", demo, "--orders", ORDERS_US).exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    one_line_error(run("report", "--orders", bad), 1, "bad.csv")
    one_line_error(run("report", bad), 1)


# --- import -----------------------------------------------------------------------------

def test_import_orders_then_again(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    r = run("import", "orders", ORDERS_US, "--into", book)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == ("Imported 5 order lines into Orders: 4 added, 0 updated, 0 unchanged,"
                        " 1 skipped")
    assert "  - skipped 1: description row (line 2)" in lines
    assert any(x.startswith("  refreshed ") for x in lines)
    assert len(order_rows(book)) == 4
    before = digest(book)
    r = run("import", "orders", ORDERS_US, "--into", book)
    assert r.exit_code == 0
    assert r.output.splitlines()[0] == ("Imported 5 order lines into Orders: 0 added,"
                                        " 0 updated, 4 unchanged, 1 skipped")
    assert "b.xlsx was not changed." in r.output
    assert digest(book) == before


def test_import_ads_studio_and_into_the_demo(template, demo, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    r = run("import", "ads", DATA / "ads_breakdown_country.csv", "--into", book)
    assert r.exit_code == 0
    assert "not imported (no column in Campaigns): breakdown" in r.output
    r = run("import", "studio", DATA / "studio_en", "--into", book, "--year", 2026)
    assert r.exit_code == 0
    assert "Imported 3 videos into Videos: 2 added" in r.output
    assert "Imported 2 rows into Brand: 2 added" in r.output
    assert "read as blank: 1 cell 'undefined' in Overview.csv, Video Views (line 3)" in r.output
    assert "not imported: Viewers.csv (no target table)" in r.output
    d = copy(demo, tmp_path / "d.xlsx")
    n = len(order_rows(d))
    r = run("import", "orders", ORDERS_US, "--into", d, "--no-progress")
    assert r.exit_code == 0 and len(order_rows(d)) == n + 4


def test_import_studio_in_spanish(template, tmp_path):
    # the app in Spanish writes "30 de diciembre": the rows land in Brand, one per month
    book = copy(template, tmp_path / "b.xlsx")
    r = run("import", "studio", DATA / "studio_es", "--into", book, "--year", 2026)
    assert r.exit_code == 0, r.output
    assert "Imported 2 rows into Brand: 2 added" in r.output
    assert "read as blank: 1 cell 'undefined' in Overview.csv, Video Views (line 5)" in r.output
    # read back by python-calamine: December 2025 and January 2026 (views 100 + 150, then 90)
    rows = CalamineWorkbook.from_path(str(book), load_tables=True).get_table_by_name("Brand").to_python()
    got = [dict(zip(S.TABLE["Brand"].headers, row)) for row in rows]
    assert [(str(m["Period"]), m["Followers start"], m["Followers end"], m["Views"]) for m in got] \
        == [("2025-12-01", 1200, 1210, 250), ("2026-01-01", 1205, 1230, 90)]


def test_import_into_an_xlsm_keeps_its_macros(tmp_path):
    assert run("build", tmp_path / "b.xlsm").exit_code == 0
    with zipfile.ZipFile(tmp_path / "b.xlsm") as z:
        vba = z.read("xl/vbaProject.bin")
    assert run("import", "orders", ORDERS_US, "--into", tmp_path / "b.xlsm").exit_code == 0
    with zipfile.ZipFile(tmp_path / "b.xlsm") as z:
        assert z.read("xl/vbaProject.bin") == vba


def test_import_shows_progress_on_request(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    r = CliRunner().invoke(main, ["import", "orders", str(ORDERS_US), "--into", str(book),
                                  "--progress"])
    assert r.exit_code == 0 and "reading the export" in r.stderr
    assert "reading the export" not in r.stdout


def test_import_refuses_a_book_open_in_excel(template, tmp_path):
    book = copy(template, tmp_path / "open.xlsx")
    (tmp_path / "~$open.xlsx").write_bytes(b"owner")
    before = digest(book)
    one_line_error(run("import", "orders", ORDERS_US, "--into", book), 3, "open in Excel")
    assert digest(book) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["open.xlsx", "~$open.xlsx"]


@pytest.mark.parametrize("args", [
    ["import", "orders", "ORDERS"],                              # no --into
    ["import", "tiktok", "ORDERS", "--into", "BOOK"],            # unknown kind
    ["import", "orders", "ORDERS", "--into", "BOOK", "--year", "2026"],   # year: Studio only
    ["import", "studio", "STUDIO", "--into", "BOOK", "--year", "26"],
])
def test_import_usage_errors(template, tmp_path, args):
    book = copy(template, tmp_path / "b.xlsx")
    subst = {"ORDERS": ORDERS_US, "STUDIO": DATA / "studio_en", "BOOK": book,
             "MISSING": tmp_path / "missing.csv"}
    before = digest(book)
    assert run(*[subst.get(a, a) for a in args]).exit_code == 2
    assert digest(book) == before


def _xlsx_bytes():
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("OrderSKUList")
    ws.write_row(0, 0, ["Order ID", "Order Status", "SKU ID", "Quantity"])
    ws.write_row(1, 0, ["576461234567890123", "Completed", "1729384756102938475", 1])
    wb.close()
    return buf.getvalue()


def _rewrite(xlsx, member, fn):
    src, out = zipfile.ZipFile(io.BytesIO(xlsx)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            z.writestr(info.filename, fn(data) if info.filename == member else data)
    return out.getvalue()


def _lol(xml):
    dtd = '<!DOCTYPE worksheet [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i + 1} "' + f"&lol{i if i else ''};" * 10 + '">' for i in range(9)) + "]>"
    return ('<?xml version="1.0" encoding="UTF-8"?>' + dtd
            + xml.decode().split("?>", 1)[-1]).encode()


HOSTILE_EXPORTS = {
    "empty.csv": lambda: b"",
    "picture.csv": lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "encrypted.xlsx": lambda: books.OLE2_MAGIC + b"\0" * 1024,
    "truncated.xlsx": lambda: _xlsx_bytes()[:1500],
    "bomb.xlsx": lambda: _rewrite(_xlsx_bytes(), "xl/worksheets/sheet1.xml", _lol),
    "zipbomb.xlsx": lambda: _rewrite(_xlsx_bytes(), "xl/worksheets/sheet1.xml",
                                     lambda d: d + b" " * (30 << 20)),
    "latin1.csv": lambda: "Order ID,Order Status\n1,Café\n".encode("latin-1") + b"\xe9" * 9,
    "html.csv": lambda: b"<html><body>Session expired</body></html>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_EXPORTS))
@pytest.mark.parametrize("kind", ["orders", "ads", "studio"])
def test_import_hostile_exports_exit_1(template, tmp_path, name, kind):
    src = tmp_path / name
    src.write_bytes(HOSTILE_EXPORTS[name]())
    book = copy(template, tmp_path / "b.xlsx")
    before = digest(book)
    one_line_error(run("import", kind, src, "--into", book), 1, name)
    assert digest(book) == before


def test_import_wrong_kind_of_export_exits_1(template, tmp_path):
    book = copy(template, tmp_path / "b.xlsx")
    one_line_error(run("import", "ads", ORDERS_US, "--into", book), 1)
    one_line_error(run("import", "orders", DATA / "ads_campaign_usd.csv", "--into", book), 1)
    one_line_error(run("import", "studio", DATA / "ads_campaign_usd.csv", "--into", book), 1)
    one_line_error(run("import", "orders", DATA, "--into", book), 1, "folder")


def test_a_missing_export_or_book_exits_1_with_one_line(template, tmp_path):
    """A file that is not there is a bad input file, whichever it is."""
    book = copy(template, tmp_path / "b.xlsx")
    missing = tmp_path / "missing.csv"
    for args in (["import", "orders", missing, "--into", book],
                 ["import", "orders", ORDERS_US, "--into", tmp_path / "missing.xlsx"],
                 ["report", "--orders", missing], ["report", "--orders", ORDERS_US,
                                                   "--ads", missing],
                 ["report", tmp_path / "missing.xlsx"], ["refresh", tmp_path / "missing.xlsx"],
                 ["build", tmp_path / "new.xlsx", "--from", tmp_path / "missing.xlsx"]):
        one_line_error(run(*args), 1, "no such file")


def test_import_into_a_bad_book_exits_1(tmp_path):
    one_line_error(run("import", "orders", ORDERS_US, "--into", tmp_path / "missing.xlsx"), 1,
                   "no such file")
    text = tmp_path / "text.xlsx"
    text.write_text("hello")
    one_line_error(run("import", "orders", ORDERS_US, "--into", text), 1, "not an .xlsx")
    other = tmp_path / "other.xlsx"
    wb = xlsxwriter.Workbook(other)
    wb.add_worksheet().write("A1", 1)
    wb.close()
    before = digest(other)
    one_line_error(run("import", "orders", ORDERS_US, "--into", other), 1,
                   "not an xl-kpis workbook")
    assert digest(other) == before


@pytest.mark.parametrize("member", ["xl/workbook.xml", "xl/tables/table3.xml",
                                    "xl/_rels/workbook.xml.rels"])
def test_import_into_a_book_with_an_xml_bomb_exits_1(template, tmp_path, member):
    book = tmp_path / "bomb.xlsx"
    entities = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    book.write_bytes(_rewrite(template.read_bytes(), member,
                              lambda d: d.decode().replace("?>", "?>" + entities, 1).encode()))
    before = digest(book)
    one_line_error(run("import", "orders", ORDERS_US, "--into", book), 1)
    assert digest(book) == before


def test_the_command_keeps_openblas_to_one_thread_set_before_numpy_loads():
    # OpenBLAS starts a thread pool when numpy loads, which spins for about 0.1 s of CPU
    # on the other cores: the command sets it to one thread first (the package's
    # __init__ loads nothing), and a caller's own setting wins
    code = ("import os, sys, xl_kpis.cli\n"
            "print('numpy' in sys.modules, os.environ.get('OPENBLAS_NUM_THREADS'))\n"
            "import numpy\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = functools.partial(subprocess.run, [sys.executable, "-c", code], capture_output=True,
                            text=True, check=True, cwd=ROOT)
    assert run(env=env).stdout.split() == ["False", "1"]
    assert run(env={**env, "OPENBLAS_NUM_THREADS": "2"}).stdout.split() == ["False", "2"]
    # the check can fail: a module that loads numpy before the command sets the variable
    eager = "import sys, xl_kpis.metrics, xl_kpis.cli\nprint('numpy' in sys.modules)\n"
    assert subprocess.run([sys.executable, "-c", eager], capture_output=True, text=True,
                          check=True, cwd=ROOT, env=env).stdout.split() == ["True"]


def test_the_package_loads_the_kpis_when_one_is_asked_for():
    code = ("import sys, xl_kpis\n"
            "print('numpy' in sys.modules, xl_kpis.clv(50, 5, 1), 'numpy' in sys.modules,"
            " 'roas' in dir(xl_kpis))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    assert out == ["False", "250.0", "True", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        xl_kpis.nope
