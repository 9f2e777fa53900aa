"""The write path of a workbook: locks, atomic replacement, temporary files, write errors.

Every command that writes a book (build, import, refresh) goes through this module:

* :func:`writing` holds the read-modify-write of the books a command writes:
  it refuses a book that Excel or LibreOffice has open (their lock files
  ``~$BOOK.xlsx`` and ``.~lock.BOOK.xlsx#``; :class:`BookLocked`), takes an
  inter-process lock on each book (:func:`locked`; another xl-kpis writing
  the same book is waited for at most :func:`lock_wait` seconds, then
  :class:`BookLocked`), and removes the temporary files that killed runs left
  beside the book (:func:`remove_stale`);
* :class:`atomic_write` writes a new file beside the target, flushes and
  fsyncs it, then renames it over the target, so a crash or a kill at any
  point leaves the old book or the new one, never a broken one;
* :func:`scratch` is an intermediate file beside the book (the copy an import
  appends to before the refresh writes it over the book);
* a failed write is a one-line :class:`BookWriteError` naming the book
  (:class:`FolderMissing`, :class:`NotWritable`, :class:`DiskFull`);
* :func:`paused_gc` pauses the cyclic garbage collector for the bulk work of a write.

A symlinked book is written through: the new file is made in the folder of
the link's target and renamed over the target, so the link stays a link.

Temporary files carry the id of the process that writes them
(``.BOOK.xlsx.<pid>-<random>.tmp``, ``.BOOK.import-<pid>-<random>.xlsx``); a
later writer of the same book, holding its lock, removes those whose process
is gone and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Iterator

try:                                  # POSIX
    import fcntl
except ImportError:                   # pragma: no cover - Windows
    fcntl = None
    import msvcrt

__all__ = ["BookLocked", "BookWriteError", "FolderMissing", "NotWritable", "DiskFull",
           "office_lock", "check_not_open", "make_folder", "lock_wait", "locked", "writing",
           "atomic_write", "scratch", "write_errors", "remove_stale", "real_target",
           "LOCK_WAIT", "WAIT_ENV"]

#: Seconds a command waits for another xl-kpis that writes the same book.
LOCK_WAIT = 60.0
#: Environment variable that overrides :data:`LOCK_WAIT`.
WAIT_ENV = "XL_KPIS_LOCK_WAIT"

_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class BookLocked(RuntimeError):
    """The book is open in Excel or LibreOffice, or another xl-kpis is writing it (exit 3)."""


class BookWriteError(Exception):
    """The book could not be written and is unchanged (one-line message, exit 1)."""


class FolderMissing(BookWriteError):
    """The folder the book is to be written in does not exist."""


class NotWritable(BookWriteError):
    """The folder (or file system) does not allow writing there."""


class DiskFull(BookWriteError):
    """No space is left (disk full, quota or file size limit)."""


_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def _error(e: OSError, book: Path, folder: Path, during_write: bool = False
           ) -> BookWriteError | None:
    """The one-line error of a failed write of ``book`` (None: not a write failure)."""
    what = f"cannot write {book}"
    if e.errno in _FULL:
        return DiskFull(f"{what}: no space left on the disk ({e.strerror}); "
                        f"{book.name} is unchanged")
    if e.errno == errno.EROFS or (not during_write and e.errno in _DENIED):
        return NotWritable(f"{what}: the folder {folder} is read-only or not yours "
                           f"({e.strerror})")
    if during_write:
        return None
    if e.errno == errno.ENOENT or e.errno == errno.ENOTDIR:
        return FolderMissing(f"{what}: the folder {folder} does not exist")
    return BookWriteError(f"{what}: {e.strerror or e}")


@contextlib.contextmanager
def write_errors(book: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError of a write (no space, read-only file system) into a
    :class:`BookWriteError` naming ``book``; other errors pass unchanged."""
    try:
        yield
    except OSError as e:
        err = _error(e, Path(book), real_target(book).parent, during_write=True)
        if err is None:
            raise
        raise err from e


def make_folder(book: str | os.PathLike) -> None:
    """Create the folder ``book`` is to be written in (and its parents) when missing."""
    folder = real_target(book).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _error(e, Path(book), folder) from e


def real_target(path: str | os.PathLike) -> Path:
    """The file a path names, symlinks followed (also a link to a file not yet there)."""
    return Path(os.path.realpath(path))


# --- Excel's and LibreOffice's lock files -------------------------------------------------

def office_lock(path: str | os.PathLike) -> tuple[Path, str] | None:
    """The lock file and the application that holds ``path`` open, or None.

    Excel writes an owner file ``~$BOOK.xlsx`` beside the book (for a long
    name it replaces the first two characters: ``~$OK.xlsx`` for
    ``BOOK.xlsx``); LibreOffice writes ``.~lock.BOOK.xlsx#``.  For a
    symlinked book both the link's folder and the target's are looked at.
    """
    p = Path(path)
    seen = []
    for q in (p, real_target(p)):
        if q in seen:
            continue
        seen.append(q)
        for name, app in ((f"~${q.name}", "Excel"), (f"~${q.name[2:]}", "Excel"),
                          (f".~lock.{q.name}#", "LibreOffice")):
            candidate = q.with_name(name)
            if candidate.exists():
                return candidate, app
    return None


def check_not_open(*books: str | os.PathLike) -> None:
    """Raise :class:`BookLocked` when Excel or LibreOffice has one of ``books`` open."""
    for book in books:
        found = office_lock(book)
        if found is not None:
            lock, app = found
            raise BookLocked(f"{Path(book).name} is open in {app} ({lock.name} exists): close "
                             f"it first (if {app} is not running, delete {lock.name})")


# --- the inter-process lock ---------------------------------------------------------------

def lock_wait() -> float:
    """Seconds to wait for another xl-kpis writing the same book (``$XL_KPIS_LOCK_WAIT``,
    default :data:`LOCK_WAIT`)."""
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, LOCK_WAIT)))
    except ValueError:
        return LOCK_WAIT


def _lock_path(real: Path) -> Path:
    return real.with_name(f".{real.name}.xl-kpis.lock")


class _Held:
    """This process's hold of one book's lock (re-entrant in the thread that holds it)."""

    def __init__(self) -> None:
        self.thread = threading.RLock()
        self.depth = 0
        self.fd: int | None = None
        self.path: Path | None = None


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()
_scratches: set[str] = set()


def _key(path: str | os.PathLike) -> str:
    return os.path.normcase(os.fspath(real_target(path)))


def _holder_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii").strip()
        if text.isdigit():
            return f" (pid {text})"
    return ""


#: What ``flock`` answers on a file system that has no locks (an NFS mount without a lock
#: manager, some network shares): the book is then written without the lock.
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP),
             errno.ENOSYS, errno.EINVAL}


class _NoLocks(Exception):
    """The file system of the book cannot lock files."""


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:                                              # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            return False
        if e.errno in _NO_LOCKS:
            raise _NoLocks() from e
        raise
    return True


def _acquire(book: Path, lock: Path, deadline: float, wait: float) -> int | None:
    """Lock the file ``lock`` (created when missing); the descriptor that holds it, or
    None when the file system has no locks (the lock file is then removed again).

    The lock file is removed when the lock is released; a process that locked a
    file another one has just removed sees that the path no longer names its
    file and starts again, so two holders never coexist.
    """
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS |
                     getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            got = _try_lock(fd)
            if got and fcntl is not None:
                try:
                    st = os.stat(lock, follow_symlinks=False)
                except FileNotFoundError:
                    got = None                # removed by the holder we waited for
                else:
                    fst = os.fstat(fd)
                    if (st.st_dev, st.st_ino) != (fst.st_dev, fst.st_ino):
                        got = None
        except _NoLocks:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(lock)
            return None
        except BaseException:
            os.close(fd)
            raise
        if got:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        holder = _holder_pid(fd) if got is False else ""
        os.close(fd)
        if got is None:
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise BookLocked(f"{book.name} is being written by another xl-kpis{holder}; "
                             f"waited {wait:g} s: try again when it has finished")
        time.sleep(min(0.05, left))


def _release(h: _Held) -> None:
    fd, path = h.fd, h.path
    h.fd = h.path = None
    if fd is None:
        return
    if fcntl is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)           # before unlocking: see _acquire
        os.close(fd)
    else:                                                  # pragma: no cover - Windows
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)


@contextlib.contextmanager
def locked(book: str | os.PathLike, wait: float | None = None,
           required: bool = True) -> Iterator[bool]:
    """Hold the inter-process lock of ``book`` (re-entrant within a thread).

    The lock is a file beside the book (beside a symlink's target),
    ``.BOOK.xlsx.xl-kpis.lock``, locked with ``flock`` (``msvcrt.locking`` on
    Windows) and removed on release; the kernel releases it when the process
    dies, however it dies.

    Parameters
    ----------
    book : path
        The workbook.
    wait : float, optional
        Seconds to wait for another holder (default :func:`lock_wait`).
    required : bool
        False for a book that is only read: when no lock file can be made
        beside it (a read-only folder) it is read without the lock.

    Yields
    ------
    bool
        Whether the lock is held: False for a book only read where no lock
        file can be made, and on a file system that cannot lock files (an NFS
        mount without a lock manager), where the book is written without it.

    Raises
    ------
    BookLocked
        Another process held the lock for longer than ``wait`` seconds.
    BookWriteError
        ``required`` and no lock file can be made (missing or read-only folder).
    """
    book = Path(book)
    wait = lock_wait() if wait is None else wait
    deadline = time.monotonic() + wait
    key = _key(book)
    with _held_guard:
        h = _held.setdefault(key, _Held())
    if not h.thread.acquire(timeout=max(wait, 0.0)):
        raise BookLocked(f"{book.name} is being written by another thread of this process; "
                         f"waited {wait:g} s")
    try:
        if h.depth == 0:
            real = real_target(book)
            lock = _lock_path(real)
            try:
                h.fd = _acquire(book, lock, deadline, wait)
            except OSError as e:
                if not required:
                    yield False
                    return
                raise _error(e, book, real.parent) from e
            if h.fd is None:              # a file system without locks
                yield False
                return
            h.path = lock
        h.depth += 1
        try:
            yield True
        finally:
            h.depth -= 1
            if h.depth == 0:
                _release(h)
    finally:
        h.thread.release()


@contextlib.contextmanager
def writing(*books: str | os.PathLike,
            reading: tuple[str | os.PathLike, ...] | list = ()) -> Iterator[None]:
    """Hold everything a command needs to write ``books`` (having read ``reading``).

    Refuses a book open in Excel or LibreOffice, locks the books written and
    the books read (in one order, by real path, so that two commands cannot
    wait for each other; a book read from a folder where no lock file can be
    made is read without it; this process's own scratch files need none),
    then removes stale temporary files beside each book written.

    Raises
    ------
    BookLocked
        A book is open in Excel or LibreOffice, or another xl-kpis held its
        lock for longer than :func:`lock_wait` seconds.
    BookWriteError
        A lock file cannot be made beside a book written.
    """
    targets = [Path(b) for b in books]
    check_not_open(*targets)
    want: dict[str, tuple[Path, bool]] = {}
    for p in reading:
        if _key(p) not in _scratches:
            want.setdefault(_key(p), (Path(p), False))
    for p in targets:
        want[_key(p)] = (p, True)
    with contextlib.ExitStack() as stack:
        for key in sorted(want):
            path, required = want[key]
            stack.enter_context(locked(path, required=required))
        for p in targets:
            remove_stale(p)
        yield


# --- temporary files ----------------------------------------------------------------------

def _token() -> str:
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (True when that cannot be known)."""
    if os.name != "posix":                                 # pragma: no cover - Windows
        return True           # os.kill(pid, 0) would end the process there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True           # it exists, owned by someone else
    return True


def _stale_patterns(real: Path) -> list[re.Pattern]:
    return [re.compile(rf"^\.{re.escape(real.name)}\.(\d+)-[0-9a-f]{{8}}\.tmp$"),
            re.compile(rf"^\.{re.escape(real.stem)}\.import-(\d+)-[0-9a-f]{{8}}"
                       rf"{re.escape(real.suffix)}$")]


def remove_stale(book: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``book`` that killed xl-kpis runs left; the removed.

    Only names this module gives (``.BOOK.xlsx.<pid>-<8 hex>.tmp``,
    ``.BOOK.import-<pid>-<8 hex>.xlsx``) are looked at, and only those whose
    process is no longer running (never this process's own) are removed.  Call
    it holding the book's lock (:func:`writing` does): no live xl-kpis then
    writes such a file.
    """
    real = real_target(book)
    patterns = _stale_patterns(real)
    removed = []
    try:
        entries = list(os.scandir(real.parent))
    except OSError:
        return removed
    for entry in entries:
        for pattern in patterns:
            m = pattern.match(entry.name)
            if m is None:
                continue
            pid = int(m.group(1))
            if pid == os.getpid() or _pid_alive(pid):
                break
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            break
    return removed


@contextlib.contextmanager
def scratch(book: str | os.PathLike, purpose: str = "import") -> Iterator[Path]:
    """An empty scratch file beside ``book`` (``.BOOK.import-<pid>-<random>.xlsx``),
    removed on exit; write errors inside the block name ``book``."""
    book = Path(book)
    real = real_target(book)
    path = real.with_name(f".{real.stem}.{purpose}-{_token()}{real.suffix}")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
    except OSError as e:
        raise _error(e, book, real.parent) from e
    os.close(fd)
    _scratches.add(_key(path))
    try:
        with write_errors(book):
            yield path
    finally:
        _scratches.discard(_key(path))
        with contextlib.suppress(OSError):
            path.unlink()


class atomic_write:
    """Context manager yielding a binary file object; on success it replaces ``path``.

    The temporary file (``.NAME.<pid>-<random>.tmp``) lives in the folder of
    the target (a symlink's target: the link stays a link), so that
    ``os.replace`` is atomic; it is flushed and fsynced before the rename, takes
    the mode of the file it replaces (a new file gets the umask's), and is
    removed when anything fails.  The book's lock is held meanwhile
    (:func:`locked`, re-entrant).  A failure to write is a
    :class:`BookWriteError` naming ``path``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self):
        self.cancelled = False
        self._lock = locked(self.path)
        self._lock.__enter__()
        try:
            real = real_target(self.path)
            self.target = real
            self.tmp = real.with_name(f".{real.name}.{_token()}.tmp")
            try:
                fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS,
                             0o666)
            except OSError as e:
                raise _error(e, self.path, real.parent) from e
            self.file = os.fdopen(fd, "w+b")
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self.file

    def cancel(self) -> None:
        """Leave ``path`` as it is: the temporary file is removed on exit."""
        self.cancelled = True

    def __exit__(self, exc_type, exc, tb):
        try:
            done = exc_type is None and not self.cancelled
            try:
                if done:
                    self.file.flush()
                    os.fsync(self.file.fileno())
                self.file.close()
                if done:
                    with contextlib.suppress(OSError):
                        if self.target.exists():
                            os.chmod(self.tmp, self.target.stat().st_mode & 0o7777)
                    os.replace(self.tmp, self.target)
                    _fsync_dir(self.target.parent)
            except OSError as e:
                raise (_error(e, self.path, self.target.parent) or e) from e
            finally:
                if os.path.lexists(self.tmp):
                    with contextlib.suppress(OSError):
                        os.unlink(self.tmp)
        finally:
            self._lock.__exit__(None, None, None)
        if isinstance(exc, OSError):
            err = _error(exc, self.path, self.target.parent, during_write=True)
            if err is not None:
                raise err from exc
        return False


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def paused_gc():
    """Pause the cyclic garbage collector for bulk work on a book.

    A big book is millions of cell values that form no reference cycles;
    every collection would walk all of them again (in a 100,000-line book
    that is a large share of the refresh time).  Collection resumes after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
