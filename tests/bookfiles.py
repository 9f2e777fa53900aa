"""Small file helpers the workbook tests share."""

import signal
import subprocess
import sys
import textwrap
import zipfile


def copy(src, dst):
    """Copy the file ``src`` to ``dst`` (a Path) and return ``dst``."""
    dst.write_bytes(src.read_bytes())
    return dst


def parts(path):
    """Every zip member of a workbook: ``{name: bytes}``."""
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def kill_while_writing(code: str) -> None:
    """Run ``code`` in a child process whose zip writing stalls after its first member,
    and kill it (SIGKILL) once the new file is half written."""
    script = textwrap.dedent("""
        import time, zipfile
        real = zipfile.ZipFile.writestr
        def slow(self, *a, **k):
            real(self, *a, **k)
            print("writing", flush=True)
            time.sleep(60)
        zipfile.ZipFile.writestr = slow
    """) + textwrap.dedent(code)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()


def type_cells(book, sheet: str, values: dict) -> None:
    """Type values into cells of ``sheet`` as Excel saves them: a number as ``<v>``, text
    as a new shared string (``t="s"``), the cell keeping its style; rows and cells that do
    not exist yet are added in order.  The book is rewritten in place."""
    import re
    from xml.sax.saxutils import escape

    from xl_kpis.book import edit
    from xl_kpis.xlsx import books

    data = parts(book)
    with zipfile.ZipFile(book) as z:
        part = books.sheet_parts(z)[sheet]
    sst = data["xl/sharedStrings.xml"].decode()
    count = len(re.findall(r"<si>|<si ", sst))
    edits = {}
    for ref, v in values.items():
        if isinstance(v, str):
            sst = sst.replace("</sst>", f"<si><t>{escape(v)}</t></si></sst>")
            edits[ref] = ("s", str(count))
            count += 1
        else:
            edits[ref] = (None, repr(float(v)) if not float(v).is_integer() else str(int(v)))
    sst = re.sub(r'uniqueCount="\d+"', f'uniqueCount="{count}"', sst)
    sst = re.sub(r'\bcount="\d+"', f'count="{count}"', sst)
    data["xl/sharedStrings.xml"] = sst.encode()
    xml = data[part]
    # numbers and shared-string indexes as constants: edit_cells writes a number as <v>
    cells = {ref: edit.CellEdit(float(v)) for ref, (t, v) in edits.items()}
    xml = edit.edit_cells(xml, cells)
    for ref, (t, v) in edits.items():
        if t == "s":
            xml, n = re.subn(rb'(<c r="%s"[^>]*?)>(<v>)[^<]*(</v>)' % ref.encode(),
                             rb'\1 t="s">\g<2>%s\3' % v.encode(), xml)
            assert n == 1, ref
    data[part] = xml
    tmp = book.with_name(book.name + ".tmp")
    with zipfile.ZipFile(book) as z, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            out.writestr(info, data[info.filename])
    tmp.replace(book)


def add_table_column(book, table: str, header: str, values: list) -> str:
    """Add a column at the right of a table, as Excel does when a seller types a header
    beside it: the table part gets the column and a wider ``ref``, the sheet gets the
    header and the values (text as shared strings).  Returns the column's letters."""
    import re

    from xl_kpis.xlsx import books
    from xl_kpis.xlsx.refs import a1, col_index

    data = parts(book)
    with zipfile.ZipFile(book) as z:
        sheet = table
        part = books.sheet_parts(z)[sheet]
    name = next(n for n, x in data.items() if n.startswith("xl/tables/")
                and re.search(rb'displayName="%s"' % table.encode(), x))
    xml = data[name].decode()
    ref = re.search(r'\bref="([A-Z]+)(\d+):([A-Z]+)(\d+)"', xml)
    last_col = col_index(ref.group(3)) + 1
    letters = a1(0, last_col)[:-1]
    first_row = int(ref.group(2))
    new_ref = f"{ref.group(1)}{ref.group(2)}:{letters}{ref.group(4)}"
    xml = re.sub(r'\bref="[A-Z]+\d+:[A-Z]+\d+"', f'ref="{new_ref}"', xml)
    count = int(re.search(r'<tableColumns count="(\d+)"', xml).group(1))
    ids = [int(i) for i in re.findall(r'<tableColumn id="(\d+)"', xml)]
    xml = xml.replace(f'<tableColumns count="{count}"', f'<tableColumns count="{count + 1}"')
    xml = xml.replace("</tableColumns>", f'<tableColumn id="{max(ids) + 1}" name="{header}"/>'
                                         "</tableColumns>")
    data[name] = xml.encode()
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as out:
        for n, b in data.items():
            out.writestr(n, b)
    cells = {f"{letters}{first_row}": header}
    cells.update({f"{letters}{first_row + 1 + i}": v for i, v in enumerate(values)
                  if v is not None})
    type_cells(book, sheet, cells)
    return letters


def sheet_kpis(book) -> dict:
    """The KPIs sheet's cached values (read with openpyxl), by KPI key; a blank or an error
    as None, as ``xl-kpis report --json`` gives them."""
    from openpyxl import load_workbook

    from xl_kpis.book import schema as S
    from xl_kpis.xlsx.refs import a1

    ws = load_workbook(book, data_only=True)[S.KPIS_SHEET]
    out = {}
    plan = S.plan()
    for key in S.KPIS:
        c = plan.cell(key)
        v = ws[a1(c.row, c.col)].value
        out[key] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) \
            else None
    return out


def kpi_differences(report: dict, sheet: dict, rel: float = 1e-12) -> set:
    """The KPI keys whose report value is not the sheet's (None for None, numbers within
    ``rel``)."""
    import math

    return {k for k in sheet if (report.get(k) is None) != (sheet[k] is None) or (
        sheet[k] is not None and not math.isclose(report[k], sheet[k], rel_tol=rel,
                                                  abs_tol=1e-12))}


def roas_book(path):
    """A small book written by XlsxWriter: a Data sheet of 49 rows with a ROAS formula
    column (C2:C50) and a formula at E1, an Other sheet with a shape, a chart; ``path``."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("Data")
    ws.write_row("A1", ["Revenue", "Cost", "ROAS"])
    for r in range(1, 50):
        ws.write_number(r, 0, 100.0 + r)
        ws.write_number(r, 1, 50.0)
        ws.write_formula(r, 2, f"=ROAS(A{r + 1},B{r + 1})", None, (100.0 + r) / 50.0)
    ws.write_formula("E1", '="a"&"b"', None, "ab")
    other = wb.add_worksheet("Other")
    other.write("A1", "untouched")
    other.insert_textbox("C3", "a shape")
    wb.add_chart({"type": "line"}).add_series({"values": "=Data!$C$2:$C$50"})
    wb.close()
    return path
