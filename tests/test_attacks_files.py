"""Attacks on the books the commands write (issue 14: lost updates, kills, symlinks, stale
temporary files, the writing-side errors; issue 9: Excel's and LibreOffice's lock files).

Every attack runs the real command line (``python -m xl_kpis.cli``) in a child process under
a memory cap (``RLIMIT_AS``) and a time limit, and asserts the exit code, a one-line message
on stderr, no traceback, and the book byte-identical where it must be.  Files are made here,
small, in ``tmp_path``.
"""

import csv
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from engines import in_ci
from xl_kpis.book import patch, scan
from xl_kpis.imports import parse_orders
from xl_kpis.imports.synth import write_order_export
from bookfiles import copy

DATA = Path(__file__).parent / "data" / "exports"
ORDERS_US = DATA / "orders_us.csv"
MEMORY = 1 << 30          # address space of a child: 1 GiB
TIME = 180                # seconds a child may run


@dataclass
class Result:
    code: int
    out: str
    err: str


def _limits(fsize=None):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return apply


def start(*args, preamble="", env=None, fsize=None, wrap=()):
    """The command line with ``args`` in a child process (memory cap, optional file size
    limit, ``preamble`` run first, ``wrap`` a command it runs under)."""
    code = textwrap.dedent(preamble) + "\nfrom xl_kpis.cli import main\nmain()\n"
    return subprocess.Popen([*wrap, sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, preexec_fn=_limits(fsize))


def finish(proc, timeout=TIME):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"{proc.args[-4:]} ran longer than {timeout} s") from None
    return Result(proc.returncode, out, err)


def cli(*args, **kwargs):
    return finish(start(*args, **kwargs))


def one_line_error(r, code, *words):
    """Exit ``code``, one line ``xl-kpis: ...`` on stderr, nothing on stdout, no traceback."""
    assert r.code == code, (r.code, r.out, r.err)
    assert "Traceback" not in r.out + r.err
    assert r.out == "" and len(r.err.strip().splitlines()) == 1, r.err
    assert r.err.startswith("xl-kpis: ")
    for w in words:
        assert w in r.err, (w, r.err)
    return r.err.strip()


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hidden(folder):
    """Files whose name starts with a dot: temporary files and lock files."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


def order_ids(book):
    wb = CalamineWorkbook.from_path(str(book), load_tables=True)
    t = wb.get_table_by_name("Orders")
    i = t.columns.index("Order ID")
    return sorted(str(r[i]) for r in t.to_python() if r[i] != "")


def export_ids(path):
    return sorted(r["order_id"] for r in parse_orders(path).rows)


def order_export(path, lines, offset):
    """A synthetic order export whose order ids are shifted by ``offset`` (so that two
    exports share none)."""
    write_order_export(path, lines)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    for row in rows[2:]:
        row[0] = str(int(row[0].strip()) + offset) + "\t"
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    return path


def stale(src, dst):
    """A copy of ``src`` whose every formula caches 0, so a refresh rewrites it."""
    zero = {s: (lambda ref, f: 0.0) for s in scan.read_formulas(src)}
    patch.patch_workbook(src, dst, zero)
    return dst


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def wait_for(path, proc, timeout=TIME):
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, finish(proc)
        assert time.monotonic() < end, f"{path.name} never appeared"
        time.sleep(0.02)


def holder(book, go):
    """A child that holds ``book``'s xl-kpis lock until the file ``go`` exists."""
    code = textwrap.dedent(f"""
        import os, time
        from xl_kpis.book import files
        with files.locked({str(book)!r}):
            print("held", flush=True)
            while not os.path.exists({str(go)!r}):
                time.sleep(0.02)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            preexec_fn=_limits())
    assert proc.stdout.readline().strip() == "held"
    return proc


#: Run first in a child: the import, having appended its rows to a copy of the book it read,
#: waits until the file $GO exists before it writes the book.
PAUSE_AFTER_APPENDING = """
    import os, time
    from xl_kpis.book import importer
    _append = importer.append_rows
    def append_rows(*a, **k):
        out = _append(*a, **k)
        open(os.environ["APPENDED"], "w").close()
        while not os.path.exists(os.environ["GO"]):
            time.sleep(0.02)
        return out
    importer.append_rows = append_rows
"""

#: The planted defect: no inter-process lock.
NO_LOCK = """
    import contextlib
    from xl_kpis.book import files
    @contextlib.contextmanager
    def locked(*a, **k):
        yield True
    files.locked = locked
"""

#: The child stalls (to be killed) in the middle of writing: STALL_AT "zip" after the first
#: member any zip file gets, "book" after writing half of the first block of a book's
#: temporary file (:class:`files.atomic_write`).
STALL = """
    import time, zipfile
    from xl_kpis.book import files

    def stall():
        print("writing", flush=True)
        time.sleep(TIME)

    class Half:
        def __init__(self, f):
            self.f = f
        def write(self, data):
            data = bytes(data)
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            stall()
        def __getattr__(self, name):
            return getattr(self.f, name)

    if STALL_AT == "book":
        _enter = files.atomic_write.__enter__
        files.atomic_write.__enter__ = lambda self: Half(_enter(self))
    else:
        def stalling(real):
            def write(self, *a, **k):
                real(self, *a, **k)
                stall()
            return write
        zipfile.ZipFile.writestr = stalling(zipfile.ZipFile.writestr)
        zipfile.ZipFile.write = stalling(zipfile.ZipFile.write)
"""


def kill_while_writing(*args, at="zip"):
    """Start the command, SIGKILL it in the middle of writing a book."""
    proc = start(*args, preamble=f"STALL_AT = {at!r}\nTIME = {TIME}\n" + textwrap.dedent(STALL))
    try:
        line = proc.stdout.readline().strip()
        assert line == "writing", (line, proc.stderr.read() if proc.poll() is not None else "")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


@pytest.fixture
def book(template, tmp_path):
    return copy(template, tmp_path / "b.xlsx")


# --- 1. two writers at once: none is lost -----------------------------------------------------

def test_two_imports_at_once_keep_both_exports(book, tmp_path):
    a = order_export(tmp_path / "A.csv", 3000, 0)
    b = order_export(tmp_path / "B.csv", 3000, 10 ** 15)
    assert not set(export_ids(a)) & set(export_ids(b))
    procs = [start("import", "orders", x, "--into", book) for x in (a, b)]
    results = [finish(p) for p in procs]
    landed = []
    for r, x in zip(results, (a, b)):
        if r.code == 3:         # refused after the bounded wait: said so, on one line
            one_line_error(r, 3, "being written by another xl-kpis")
        else:
            assert r.code == 0 and "3,000 added" in r.out, r
            landed.append(x)
    assert landed, results
    assert order_ids(book) == sorted(i for x in landed for i in export_ids(x))
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("lock", [True, False], ids=["locked", "planted-no-lock"])
def test_an_import_that_starts_mid_import_waits_for_it(book, tmp_path, lock):
    """The second import starts while the first is between reading the book and writing
    it.  With the lock it waits and then adds to the first's rows; without it (the planted
    defect) the first import's write drops the second's rows."""
    a = order_export(tmp_path / "A.csv", 200, 0)
    b = order_export(tmp_path / "B.csv", 200, 10 ** 15)
    appended, go = tmp_path / "appended", tmp_path / "go"
    planted = "" if lock else NO_LOCK
    first = start("import", "orders", a, "--into", book,
                  preamble=planted + PAUSE_AFTER_APPENDING,
                  env={"APPENDED": str(appended), "GO": str(go)})
    wait_for(appended, first)
    second = start("import", "orders", b, "--into", book, preamble=planted)
    if lock:
        time.sleep(2)
        assert second.poll() is None      # waiting for the first
        go.touch()
    else:
        r2 = finish(second)
        go.touch()
    r1 = finish(first)
    r2 = finish(second) if lock else r2
    assert (r1.code, r2.code) == (0, 0), (r1, r2)
    both = sorted(export_ids(a) + export_ids(b))
    if lock:
        assert order_ids(book) == both
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "A.csv", "B.csv", "appended", "b.xlsx", "go"]
    else:
        assert order_ids(book) == export_ids(a)   # the check above catches this loss


def test_a_second_writer_waits_a_bounded_time_then_exits_3(demo, tmp_path):
    book = copy(demo, tmp_path / "b.xlsx")
    other = copy(demo, tmp_path / "other.xlsx")
    before = digest(book)
    go = tmp_path / "go"
    held = holder(book, go)
    try:
        wait = {"XL_KPIS_LOCK_WAIT": "0.5"}
        for args in (["import", "orders", ORDERS_US, "--into", book], ["refresh", book],
                     ["refresh", other, "--out", book], ["build", book, "--force"]):
            t = time.monotonic()
            r = cli(*args, env=wait)
            one_line_error(r, 3, "b.xlsx is being written by another xl-kpis",
                           f"(pid {held.pid})", "waited 0.5 s")
            assert time.monotonic() - t < 60
            assert digest(book) == before
    finally:
        go.touch()
        held.wait(timeout=30)
    assert hidden(tmp_path) == []


# --- 2. Excel's and LibreOffice's lock files --------------------------------------------------

@pytest.mark.parametrize("lockname, app", [("~$b.xlsx", "Excel"),
                                           (".~lock.b.xlsx#", "LibreOffice")])
def test_every_writer_honours_the_office_lock_files(demo, tmp_path, lockname, app):
    book = stale(demo, tmp_path / "b.xlsx")
    other = copy(demo, tmp_path / "other.xlsx")
    (tmp_path / lockname).write_bytes(b"owner")
    before = digest(book)
    for args in (["import", "orders", ORDERS_US, "--into", book], ["refresh", book],
                 ["refresh", other, "--out", book], ["build", book, "--force"],
                 ["build", book, "--from", other, "--force"]):
        one_line_error(cli(*args), 3, f"b.xlsx is open in {app} ({lockname} exists)")
        assert digest(book) == before
    assert hidden(tmp_path) == ([lockname] if lockname.startswith(".") else [])


# --- 3. a kill in the middle of build ---------------------------------------------------------

@pytest.mark.parametrize("at", ["zip", "book"])
def test_a_killed_build_leaves_the_book_whole(demo, tmp_path, at):
    mine = copy(demo, tmp_path / "mine.xlsx")
    big = copy(demo, tmp_path / "big.xlsx")
    before = digest(mine)
    kill_while_writing("build", mine, "--from", big, "--force", at=at)
    assert digest(mine) == before
    with zipfile.ZipFile(mine) as z:
        assert z.testzip() is None
    left = hidden(tmp_path)
    if at == "book":          # half of the new book went to a temporary file
        [tmp] = [n for n in left if n.endswith(".tmp")]
        assert tmp.startswith(".mine.xlsx.") and (tmp_path / tmp).stat().st_size > 0
    r = cli("build", mine, "--from", big, "--force")
    assert r.code == 0, r
    assert hidden(tmp_path) == []                 # the next build removed what was left


# --- 4. a symlinked book ----------------------------------------------------------------------

def test_a_symlinked_book_is_written_through(demo, template, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    target = stale(demo, tmp_path / "real" / "b.xlsx")
    link = tmp_path / "links" / "b.xlsx"
    link.symlink_to(Path("..") / "real" / "b.xlsx")
    steps = [("refresh", link), ("import", "orders", ORDERS_US, "--into", link),
             ("build", link, "--force")]
    for args in steps:
        before = digest(target)
        r = cli(*args)
        assert r.code == 0, (args, r)
        assert link.is_symlink() and os.readlink(link) == os.path.join("..", "real", "b.xlsx")
        assert digest(target) != before, args
        with zipfile.ZipFile(target) as z:
            assert z.testzip() is None
        assert hidden(tmp_path / "real") == [] and hidden(tmp_path / "links") == []
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["b.xlsx"]


# --- 5. temporary files a kill left -----------------------------------------------------------

def test_a_later_run_removes_the_temporary_files_of_a_killed_one(book, tmp_path):
    dead = dead_pid()
    foreign = [".b.xlsx.k2j3_x9q.tmp",                  # no pid in the name: not provably ours
               f".b.xlsx.{os.getppid()}-0123abcd.tmp",  # its process runs
               f".c.xlsx.{dead}-0123abcd.tmp",          # another book's
               f".b.import-{dead}-0123abcd.xlsm",       # another book's (b.xlsm)
               "notes.tmp"]
    for name in foreign:
        (tmp_path / name).write_bytes(b"not yours")
    before = digest(book)
    kill_while_writing("import", "orders", ORDERS_US, "--into", book, at="book")
    assert digest(book) == before
    left = sorted(set(hidden(tmp_path)) - set(foreign))
    assert [n for n in left if n.startswith(".b.import-") and n.endswith(".xlsx")], left
    assert [n for n in left if n.startswith(".b.xlsx.") and n.endswith(".tmp")], left
    r = cli("import", "orders", ORDERS_US, "--into", book)
    assert r.code == 0 and "4 added" in r.out, r
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(foreign + ["b.xlsx"])
    assert all((tmp_path / n).read_bytes() == b"not yours" for n in foreign)


# --- 6. the writing-side errors ---------------------------------------------------------------

def _read_only(folder):
    """Make ``folder`` read-only; the command prefix under which that holds (root ignores
    permissions unless it runs without CAP_DAC_OVERRIDE)."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return ()
    if not shutil.which("setpriv"):
        if in_ci():
            pytest.fail("CI is set and setpriv (util-linux) is missing", pytrace=False)
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    return ("setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--")


@pytest.fixture
def ro_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)


def test_writing_into_a_read_only_folder(demo, tmp_path, ro_folder):
    book = stale(demo, ro_folder / "b.xlsx")
    before = digest(book)
    wrap = _read_only(ro_folder)
    for args in (["refresh", book], ["import", "orders", ORDERS_US, "--into", book],
                 ["build", book, "--force"], ["refresh", demo, "--out", ro_folder / "n.xlsx"],
                 ["build", ro_folder / "sub" / "n.xlsx"]):
        msg = one_line_error(cli(*args, wrap=wrap), 1, "read-only", "cannot write")
        assert str(ro_folder) in msg and "orders_us" not in msg
        assert digest(book) == before
    assert sorted(p.name for p in ro_folder.iterdir()) == ["b.xlsx"]


def test_a_full_disk(demo, template, tmp_path):
    """The file size limit (RLIMIT_FSIZE) makes writing the new book fail as on a full disk
    (EFBIG); ENOSPC itself is raised by a replaced ``os.fsync``."""
    book = stale(demo, tmp_path / "b.xlsx")
    small = copy(template, tmp_path / "small.xlsx")
    limit = small.stat().st_size // 2
    enospc = """
        import errno, os
        def fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync = fsync
    """
    for target, args in ((book, ["refresh", book]), (small, ["import", "orders", ORDERS_US,
                                                              "--into", small]),
                         (book, ["build", book, "--force"])):
        for how in ({"fsize": limit}, {"preamble": enospc}):
            before = digest(target)
            msg = one_line_error(cli(*args, **how), 1, f"cannot write {target}",
                                 "no space left on the disk", f"{target.name} is unchanged")
            assert "orders_us" not in msg            # the book is named, not the export
            assert digest(target) == before
            assert hidden(tmp_path) == [], (args, how)


def test_out_into_a_missing_folder(demo, tmp_path):
    before = digest(demo)
    missing = tmp_path / "missing" / "r.xlsx"
    one_line_error(cli("refresh", demo, "--out", missing), 1,
                   f"cannot write {missing}", f"the folder {missing.parent} does not exist")
    assert digest(demo) == before and not missing.parent.exists()


def test_one_message_per_cause(demo, tmp_path, ro_folder):
    """Each cause of a failed write has its own wording (one error type each)."""
    book = stale(demo, tmp_path / "b.xlsx")
    ro = stale(demo, ro_folder / "b.xlsx")
    wrap = _read_only(ro_folder)
    messages = {
        "missing": one_line_error(cli("refresh", book, "--out", tmp_path / "no" / "x.xlsx"), 1),
        "read-only": one_line_error(cli("refresh", ro, wrap=wrap), 1),
        "full": one_line_error(cli("refresh", book, fsize=book.stat().st_size // 2), 1),
    }
    kinds = {"missing": "does not exist", "read-only": "is read-only",
             "full": "no space left"}
    for cause, msg in messages.items():
        assert [c for c, words in kinds.items() if words in msg] == [cause], msg
