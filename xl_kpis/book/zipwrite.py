"""Write a new zip in a second thread while the calling thread produces its members
(:class:`ZipWriter`): the book commands patch or copy one part while the previous one is
compressed (zlib releases the GIL)."""

from __future__ import annotations

import contextlib
import queue
import threading
import zipfile
from typing import Iterable

__all__ = ["ZipWriter"]


class ZipWriter:
    """Writes the members of a new zip in a second thread, in the order they are given.

    ``copy`` writes a member with the given content; ``stream`` writes a
    member from chunks that the calling thread produces while this thread
    compresses and writes the previous ones (zlib releases the GIL).  Each
    keeps the member's name, timestamp and compression method; ``level`` is
    the compression level (None: zlib's default).  An error in either thread
    ends the write and is raised by the ``with`` block.
    """

    def __init__(self, file) -> None:
        self.zip = zipfile.ZipFile(file, "w")
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="xl-kpis zip writer",
                                       daemon=True)

    def __enter__(self) -> ZipWriter:
        self.thread.start()
        return self

    def copy(self, info: zipfile.ZipInfo, data: bytes, level: int | None = None) -> None:
        self._put(("copy", info, data, level))

    def stream(self, info: zipfile.ZipInfo, chunks: Iterable[bytes], zip64: bool = False,
               level: int | None = None) -> None:
        self._put(("open", info, zip64, level))
        for chunk in chunks:
            self._put(("data", chunk))
        self._put(("close",))

    def _put(self, task: tuple) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(task)

    def _run(self) -> None:
        stream = None
        while True:
            task = self.queue.get()
            if task is None:
                break
            if self.error is not None or task[0] == "abort":
                if stream is not None:    # drain: the caller stops at its next put
                    with contextlib.suppress(Exception):
                        stream.close()
                    stream = None
                continue
            try:
                kind = task[0]
                if kind == "copy":
                    self.zip.writestr(task[1], task[2], compress_type=task[1].compress_type,
                                      compresslevel=task[3])
                elif kind == "open":
                    info = zipfile.ZipInfo(task[1].filename, task[1].date_time)
                    info.compress_type = task[1].compress_type
                    info.external_attr = task[1].external_attr
                    info._compresslevel = task[3]
                    stream = self.zip.open(info, "w", force_zip64=task[2])
                elif kind == "data":
                    stream.write(task[1])
                else:
                    stream.close()
                    stream = None
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                self.error = e

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.queue.put(("abort",) if exc_type is not None else None)
        if exc_type is not None:
            self.queue.put(None)
        self.thread.join()
        if exc_type is None and self.error is None:
            self.zip.close()
            return False
        with contextlib.suppress(Exception):   # the file is discarded anyway
            self.zip.close()
        if exc_type is None:
            raise self.error
        return False
