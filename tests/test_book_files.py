"""The write path of a workbook (xl_kpis/book/files.py): office lock files, the inter-process
lock, atomic replacement, scratch and stale temporary files, one-line write errors."""

import errno
import re
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xl_kpis.book import files


def hidden(folder):
    """Every file whose name starts with a dot (temporary and lock files)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


def dead_pid():
    """The id of a process that has ended (and been reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def hold_lock(book, go):
    """A child process that holds ``book``'s lock until the file ``go`` exists."""
    code = textwrap.dedent(f"""
        import os, sys, time
        from xl_kpis.book import files
        with files.locked({str(book)!r}):
            print("held", flush=True)
            while not os.path.exists({str(go)!r}):
                time.sleep(0.02)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# --- Excel's and LibreOffice's lock files ---------------------------------------------------

@pytest.mark.parametrize("name, app", [
    ("~$book.xlsx", "Excel"),          # Excel's owner file
    ("~$ok.xlsx", "Excel"),            # Excel's owner file of a long name: 2 characters less
    (".~lock.book.xlsx#", "LibreOffice"),
])
def test_office_lock_files(tmp_path, name, app):
    book = tmp_path / "book.xlsx"
    book.write_bytes(b"x")
    assert files.office_lock(book) is None
    files.check_not_open(book)
    (tmp_path / name).write_bytes(b"owner")
    assert files.office_lock(book) == (tmp_path / name, app)
    with pytest.raises(files.BookLocked, match=re.escape(f"open in {app} ({name} exists)")):
        files.check_not_open(book)
    with pytest.raises(files.BookLocked):
        with files.writing(book):
            pass
    assert hidden(tmp_path) == ([name] if name.startswith(".") else [])


def test_office_lock_of_a_symlinked_book_is_looked_for_beside_the_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "book.xlsx"
    target.write_bytes(b"x")
    link = tmp_path / "link.xlsx"
    link.symlink_to(target)
    assert files.office_lock(link) is None
    (tmp_path / "real" / ".~lock.book.xlsx#").write_bytes(b"owner")
    assert files.office_lock(link)[1] == "LibreOffice"


# --- the inter-process lock -----------------------------------------------------------------

def test_lock_is_reentrant_and_its_file_goes_with_it(tmp_path):
    book = tmp_path / "b.xlsx"
    with files.locked(book, wait=0) as held:
        assert held and hidden(tmp_path) == [".b.xlsx.xl-kpis.lock"]
        assert (tmp_path / ".b.xlsx.xl-kpis.lock").read_text() == f"{os.getpid()}\n"
        with files.locked(book, wait=0), files.writing(book):
            pass
        assert hidden(tmp_path) == [".b.xlsx.xl-kpis.lock"]   # still held by the outer block
    assert hidden(tmp_path) == []


def test_a_second_process_waits_a_bounded_time_then_book_locked(tmp_path):
    book, go = tmp_path / "b.xlsx", tmp_path / "go"
    proc = hold_lock(book, go)
    try:
        t = time.monotonic()
        with pytest.raises(files.BookLocked, match=f"being written by another xl-kpis "
                                                   f"\\(pid {proc.pid}\\); waited 0.3 s"):
            with files.locked(book, wait=0.3):
                pass
        assert 0.3 <= time.monotonic() - t < 5
    finally:
        go.touch()
        proc.wait(timeout=30)
    assert hidden(tmp_path) == []         # the holder removed its lock file
    with files.locked(book, wait=0) as held:   # free again
        assert held


def test_a_waiting_process_gets_the_lock_when_the_holder_ends(tmp_path):
    book, go = tmp_path / "b.xlsx", tmp_path / "go"
    proc = hold_lock(book, go)
    go.touch()                            # the holder lets go within a few milliseconds
    with files.locked(book, wait=30) as held:
        assert held
    proc.wait(timeout=30)


def test_the_lock_of_a_killed_holder_is_free(tmp_path):
    book, go = tmp_path / "b.xlsx", tmp_path / "go"
    proc = hold_lock(book, go)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert hidden(tmp_path) == [".b.xlsx.xl-kpis.lock"]     # left behind by the kill
    with files.locked(book, wait=0) as held:               # ... but not held
        assert held
    assert hidden(tmp_path) == []


def test_a_symlinked_book_is_locked_beside_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "b.xlsx"
    link = tmp_path / "link.xlsx"
    link.symlink_to(target)
    with files.locked(link, wait=0):
        assert hidden(tmp_path / "real") == [".b.xlsx.xl-kpis.lock"]
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from xl_kpis.book import files
            try:
                with files.locked({str(target)!r}, wait=0):
                    print("got it")
            except files.BookLocked:
                print("locked")
        """)], capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() == "locked"      # the target's own path is the same lock


def test_missing_folder_and_optional_lock(tmp_path):
    book = tmp_path / "missing" / "b.xlsx"
    with pytest.raises(files.FolderMissing, match="the folder .*missing does not exist"):
        with files.locked(book):
            pass
    with files.locked(book, required=False) as held:   # a book only read: no lock needed
        assert held is False


# --- atomic writes --------------------------------------------------------------------------

def test_atomic_write_keeps_the_mode_and_gives_a_new_file_the_umask(tmp_path):
    book = tmp_path / "b.xlsx"
    book.write_bytes(b"old")
    book.chmod(0o640)
    with files.atomic_write(book) as f:
        f.write(b"new")
        assert hidden(tmp_path) == sorted([".b.xlsx.xl-kpis.lock",
                                           next(n for n in hidden(tmp_path)
                                                if n.endswith(".tmp"))])
    assert book.read_bytes() == b"new" and stat.S_IMODE(book.stat().st_mode) == 0o640
    mask = os.umask(0o027)
    try:
        with files.atomic_write(tmp_path / "new.xlsx") as f:
            f.write(b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.xlsx").stat().st_mode) == 0o640
    assert hidden(tmp_path) == []


def test_atomic_write_through_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "b.xlsx"
    target.write_bytes(b"old")
    link = tmp_path / "link.xlsx"
    link.symlink_to(target)
    with files.atomic_write(link) as f:
        assert hidden(tmp_path) == [] and len(hidden(tmp_path / "real")) == 2  # lock + temp
        f.write(b"new")
    assert link.is_symlink() and link.resolve() == target
    assert target.read_bytes() == b"new" and hidden(tmp_path / "real") == []


def test_a_failed_or_cancelled_write_leaves_the_book(tmp_path):
    book = tmp_path / "b.xlsx"
    book.write_bytes(b"old")
    with pytest.raises(ValueError):
        with files.atomic_write(book) as f:
            f.write(b"half")
            raise ValueError("boom")
    w = files.atomic_write(book)
    with w as f:
        f.write(b"new")
        w.cancel()
    assert book.read_bytes() == b"old" and hidden(tmp_path) == []


@pytest.mark.parametrize("code, cls, words", [
    (errno.ENOSPC, files.DiskFull, "no space left on the disk"),
    (errno.EFBIG, files.DiskFull, "no space left on the disk"),
    (errno.EROFS, files.NotWritable, "is read-only"),
])
def test_write_failures_are_one_line_errors_naming_the_book(tmp_path, monkeypatch, code, cls,
                                                           words):
    book = tmp_path / "b.xlsx"
    book.write_bytes(b"old")

    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", fail)
    with pytest.raises(cls, match=words) as e:
        with files.atomic_write(book) as f:
            f.write(b"new")
    assert str(book) in str(e.value) and "\n" not in str(e.value)
    assert book.read_bytes() == b"old" and hidden(tmp_path) == []


def test_an_error_writing_in_the_block_names_the_book(tmp_path):
    book = tmp_path / "b.xlsx"
    book.write_bytes(b"old")
    with pytest.raises(files.DiskFull, match="cannot write .*b.xlsx: no space left"):
        with files.atomic_write(book):
            raise OSError(errno.ENOSPC, "No space left on device", "/some/export.csv")
    with pytest.raises(PermissionError):     # not a write failure: passes unchanged
        with files.atomic_write(book):
            raise PermissionError(errno.EACCES, "Permission denied", "/some/export.csv")
    assert book.read_bytes() == b"old"


# --- scratch and stale temporary files ------------------------------------------------------

def test_scratch_file_is_named_with_the_pid_and_removed(tmp_path):
    book = tmp_path / "b.xlsx"
    with files.scratch(book) as s:
        assert s.parent == tmp_path and s.exists()
        assert s.name.startswith(f".b.import-{os.getpid()}-") and s.suffix == ".xlsx"
        with pytest.raises(files.DiskFull, match="b.xlsx: no space"):
            with files.write_errors(book):
                raise OSError(errno.EDQUOT, "Disk quota exceeded")
    assert not s.exists()


def test_remove_stale_removes_only_its_own_dead_files(tmp_path):
    book = tmp_path / "b.xlsx"
    book.write_bytes(b"book")
    dead, alive = dead_pid(), os.getppid()
    stale = [f".b.xlsx.{dead}-0123abcd.tmp", f".b.import-{dead}-89abcdef.xlsx"]
    kept = [f".b.xlsx.{alive}-0123abcd.tmp",          # its process runs
            f".b.import-{os.getpid()}-0123abcd.xlsx",   # this process's own
            ".b.xlsx.k2j3_x9q.tmp",                     # no pid: not provably ours
            f".b.import-{dead}-0123abcd.xlsm",          # another book's (b.xlsm)
            f".c.xlsx.{dead}-0123abcd.tmp",             # another book's
            f".b.xlsx.{dead}-0123abcd.tmp.keep",        # not a name we give
            f"b.xlsx.{dead}-0123abcd.tmp"]              # not hidden: not ours
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    removed = files.remove_stale(book)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["b.xlsx"])


def test_writing_removes_stale_files_of_the_book(tmp_path):
    book = tmp_path / "b.xlsx"
    book.write_bytes(b"book")
    dead = dead_pid()
    (tmp_path / f".b.xlsx.{dead}-0123abcd.tmp").write_bytes(b"x")
    with files.writing(book):
        assert hidden(tmp_path) == [".b.xlsx.xl-kpis.lock"]
    assert hidden(tmp_path) == []


def test_a_file_system_without_locks_is_written_without_the_lock(tmp_path, monkeypatch):
    book = tmp_path / "b.xlsx"
    book.write_bytes(b"old")

    def flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(files.fcntl, "flock", flock)
    with files.locked(book) as held:
        assert held is False and hidden(tmp_path) == []
    with files.atomic_write(book) as f:
        f.write(b"new")
    assert book.read_bytes() == b"new" and hidden(tmp_path) == []


def test_paused_gc_pauses_the_collector_and_restores_it():
    import gc

    assert gc.isenabled()
    with files.paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()                      # a caller that had it off keeps it off
    try:
        with pytest.raises(ValueError), files.paused_gc():
            raise ValueError
        assert not gc.isenabled()
    finally:
        gc.enable()
