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

    from xl_kpis.book import patch

    data = parts(book)
    with zipfile.ZipFile(book) as z:
        part = patch.sheet_parts(z)[sheet]
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
    cells = {ref: patch.CellEdit(float(v)) for ref, (t, v) in edits.items()}
    xml = patch.edit_cells(xml, cells)
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
