"""The zip writer of the book commands (:mod:`xl_kpis.book.zipwrite`)."""

import io
import zipfile

import pytest

from xl_kpis.book.zipwrite import ZipWriter


def _member(name, method=zipfile.ZIP_DEFLATED):
    info = zipfile.ZipInfo(name, (2026, 1, 2, 3, 4, 6))
    info.compress_type = method
    return info


def test_members_are_written_in_order_with_their_name_time_and_method():
    out = io.BytesIO()
    with ZipWriter(out) as w:
        w.copy(_member("a.xml"), b"<a/>")
        w.stream(_member("big.xml"), (b"<r>" * 1000 for _ in range(50)), level=1)
        w.copy(_member("stored.bin", zipfile.ZIP_STORED), b"\x00\x01")
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        assert [i.filename for i in z.infolist()] == ["a.xml", "big.xml", "stored.bin"]
        assert z.read("big.xml") == b"<r>" * 50_000 and z.read("a.xml") == b"<a/>"
        assert [i.compress_type for i in z.infolist()] == [
            zipfile.ZIP_DEFLATED, zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]
        assert {i.date_time for i in z.infolist()} == {(2026, 1, 2, 3, 4, 6)}


def test_an_error_of_the_writing_thread_ends_the_block():
    class Full(io.BytesIO):
        def write(self, b):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        with ZipWriter(Full()) as w:
            for i in range(100):
                w.copy(_member(f"m{i}.xml"), b"x" * 100)


def test_an_error_of_the_calling_thread_is_not_hidden():
    with pytest.raises(KeyError, match="boom"):
        with ZipWriter(io.BytesIO()) as w:
            w.copy(_member("a.xml"), b"<a/>")
            raise KeyError("boom")
