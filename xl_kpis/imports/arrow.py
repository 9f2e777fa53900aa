"""A well-formed UTF-8 comma CSV export read and its cells converted with pyarrow.

:func:`read_table` reads the records after the header line with
``pyarrow.csv``, every cell as text, only the columns asked for; it raises
:class:`Irregular` for anything the csv module would read otherwise (a row
with more or fewer fields than the header, bytes that are not UTF-8, a
record longer than a read block, a file ending inside quotes), and the
caller reads the file with the csv module instead.

:func:`convert` turns one column of raw cells into the values the scalar
converters of :data:`xl_kpis.imports.clean.CONVERTERS` give (ids as exact
text, amounts as floats, US and ISO date-times): the usual forms are
converted by pyarrow compute functions; every other distinct cell goes
through the scalar converter itself, which stays the reference for what is
accepted and for the reason a cell is refused.

pyarrow is imported by this module only: the readers import it when they
read a CSV, so nothing the Excel functions import (``xl_kpis.udfs``, the
Pyodide lane) pulls it in.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

# pyarrow's allocator (mimalloc) reserves address space in arenas of 1 GiB: under a cap on
# address space (the hardening tests run every command under 768 MiB) the rest of a command
# (python-calamine, numpy) would find too little left.  Arenas of 64 MiB reserve what a read
# needs.  mimalloc reads the variable when pyarrow loads it.  (The system allocator reserves
# less but keeps what a read frees: 200 MB more resident memory on a 1,000,000-line export.)
os.environ.setdefault("MIMALLOC_ARENA_RESERVE", "64MiB")

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402

from ..metrics._kpi import mark_plain
from .clean import _STRIP, CONVERTERS, FIRST_DATE, MAX_RECORD, MAX_TEXT

__all__ = ["Irregular", "read_table", "column_name", "trimmed", "convert", "Converted", "parse_datetimes",
           "datetimes_of_texts", "factorize", "digits", "as_numpy"]


class Irregular(Exception):
    """The file is not a CSV pyarrow reads as the csv module does: read it with the csv module."""


def column_name(col: int) -> str:
    """The name :func:`read_table` gives column ``col`` (the header cells may repeat or be empty)."""
    return f"c{col}"


def _refuse(row: Any) -> str:
    """pyarrow's invalid-row handler: a row without the header's number of fields stops the read."""
    return "error"


def read_table(name: str, header_line: int, width: int, columns: Sequence[int] | None) -> pa.Table:
    """The records after the header of a UTF-8 comma CSV, every cell as text (``str``, never null).

    Parameters
    ----------
    name : str
        The file.
    header_line : int
        The header's record number; only 1 is read here (rows before a header may hold
        quoted line breaks, which pyarrow's ``skip_rows`` does not follow).
    width : int
        The header's number of fields: every record must have exactly as many.
    columns : sequence of int or None
        The columns to convert (None: all), named by :func:`column_name`; the last
        column is always read too (see :func:`_ends_outside_quotes`).

    Raises
    ------
    Irregular
        When the csv module would read the file otherwise, or pyarrow refuses it: a record
        with another number of fields (a line cut short, a stray line end), invalid UTF-8 in a
        column read,
        a record longer than :data:`~xl_kpis.imports.clean.MAX_RECORD` bytes (pyarrow reads
        in blocks of that size and refuses a record spanning more), a header that is not
        the first record, a file that ends inside a quoted cell.
    """
    if header_line != 1 or width < 1:
        raise Irregular("the header is not the first record")
    names = [column_name(i) for i in range(width)]
    wanted = names if columns is None else [names[i] for i in sorted({*columns, width - 1})]
    try:
        with pa.OSFile(name) as f:      # a file, not a path: pyarrow would inflate a '.gz' name
            table = pacsv.read_csv(
                f,
                read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=MAX_RECORD,
                                                  use_threads=False),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False,
                                                 invalid_row_handler=_refuse),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in wanted}, include_columns=wanted,
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowException, OSError) as e:
        raise Irregular(str(e)) from e
    if table.num_rows:
        last = table.column(names[-1])[-1].as_py()
        if not _ends_outside_quotes(name, last):
            raise Irregular("the file ends inside a quoted cell")
    return table


def _ends_outside_quotes(name: str, last: str) -> bool:
    """Whether the file ends with ``last`` as a whole last cell (quoted or not), then at most one line end.

    pyarrow reads a file that ends inside quotes as if the quote closed at its
    end; the csv module reports that record (a download cut short).  When the
    last cell is not found written out at the end of the file, that is what
    happened, or something as unusual (text after a closing quote).
    """
    raw = last.encode("utf-8")
    quoted = b'"' + raw.replace(b'"', b'""') + b'"'
    with open(name, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - len(quoted) - 3))
        tail = f.read()
    for end in (b"\r\n", b"\n", b"\r"):
        if tail.endswith(end):
            tail = tail[: -len(end)]
            break

    whole = size <= len(quoted) + 3            # the tail read is the whole file

    def starts_cell(at: int) -> bool:
        return at == 0 and whole or at > 0 and tail[at - 1:at] in (b",", b"\n", b"\r")

    if tail.endswith(quoted) and starts_cell(len(tail) - len(quoted)):
        return True
    plain = not raw.startswith(b'"') and b"\n" not in raw and b"\r" not in raw
    return plain and tail.endswith(raw) and starts_cell(len(tail) - len(raw))


def trimmed(raw: pa.Array) -> pa.Array:
    """The cells without the blanks :func:`~xl_kpis.imports.clean.clean_text` strips (tabs, NBSP...)."""
    return pc.utf8_trim(raw, characters=_STRIP)


@dataclass
class Converted:
    """One column converted: ``values`` (a pyarrow string array with nulls for text and ids,
    float64 with NaN for numbers, datetime64[s] with NaT for date-times), ``bad`` (the
    cells the converter refuses) and ``marked`` (cells not blank that convert to blank:
    ``--``, ``<5``)."""

    values: Any
    bad: np.ndarray
    marked: np.ndarray
    empty: np.ndarray            #: the blank cells (empty once stripped)
    #: the rows converted by the scalar converter, and its exact values (a date-time's
    #: microseconds, which datetime64[s] drops)
    rest: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    rest_values: list = field(default_factory=list)


_PLAIN_NUMBER = r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
_NO_TEXT = pa.scalar(None, pa.string())         # a null cell of a text column


def convert(raw: pa.Array, kind: str) -> Converted:
    """The cells of a column (raw text) converted as ``CONVERTERS[kind]`` converts each.

    ``kind``: ``"text"``, ``"id"``, ``"number"`` and ``"datetime"`` are
    converted vectorised where the cell has a usual form; every other distinct
    cell (and every cell of another kind) goes through the scalar converter.
    """
    t = trimmed(raw)
    n = len(t)
    size = pc.binary_length(t)                  # bytes: no UTF-8 decoding
    empty = _np(pc.equal(size, 0))
    no = np.zeros(n, dtype=bool)
    if kind == "text":
        values = pc.if_else(pa.array(empty), _NO_TEXT, t)
        return Converted(values, _longer_than(t, size, MAX_TEXT), no, empty)
    if kind == "id":
        ok = digits(t)
        values = pc.if_else(pa.array(ok), t, _NO_TEXT)
        rest = np.flatnonzero(~ok & ~empty)
        if not len(rest):
            return Converted(values, no, no, empty)
        got, bad = _scalar(t, rest, CONVERTERS[kind])
        fixed = ~bad & np.array([v is not None for v in got])
        if fixed.any():
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            mask = np.zeros(n, dtype=bool)
            mask[rest[fixed]] = True
            values = pc.replace_with_mask(values, pa.array(mask),
                                          pa.array([v for v, f in zip(got, fixed) if f], pa.string()))
        return Converted(values, _scatter(n, rest, bad), no, empty)
    if kind == "number":
        values = _plain_numbers(t, empty).to_numpy(zero_copy_only=False)
        if not values.flags.writeable:          # one block without a null: pyarrow's own memory
            values = values.copy()
        ok = np.isfinite(values)
        values[~ok] = np.nan
        missing = np.nan
    elif kind == "datetime":
        values, ok = parse_datetimes(t)
        missing = np.datetime64("NaT")
    else:
        values = np.empty(n, dtype=object)
        ok = no
        missing = None
    rest = np.flatnonzero(~ok & ~empty)
    if not len(rest):
        return Converted(values, no, no, empty)
    got, bad = _scalar(t, rest, CONVERTERS[kind])
    values[rest] = [missing if v is None else v for v in got]
    blank = np.array([v is None for v in got], dtype=bool) & ~bad
    return Converted(values, _scatter(n, rest, bad), _scatter(n, rest, blank), empty, rest, got)


#: The bytes a block of plain numbers may hold: '.' (46) to '9' (57); '/' (47), which
#: falls between, the cast refuses.
_LOWEST, _HIGHEST = ord("."), ord("9")


def _plain_numbers(t: pa.Array | pa.ChunkedArray, empty: np.ndarray) -> pa.ChunkedArray:
    """The float64 value of each plain number cell (:data:`_PLAIN_NUMBER`), null elsewhere.

    Block by block (the chunks of the read): in a block whose every byte lies between
    '.' and '9' no cell holds a sign, an exponent, ``inf`` or ``nan`` (which the cast
    reads and the rule does not), and the cast reads the cells that are not blank
    exactly when each is digits with at most one point (it refuses '/', '.' and
    '1.2.3'), which is the rule: no regex is needed there.  The other blocks (the
    export's description row, a cell with a currency sign...) are matched by the regex.
    """
    blocks, at = [], 0
    for chunk in (t.chunks if isinstance(t, pa.ChunkedArray) else [t]):
        blank = empty[at:at + len(chunk)]
        at += len(chunk)
        if _number_bytes(chunk):
            try:
                blocks.append(pc.cast(pc.if_else(pa.array(blank), _NO_TEXT, chunk), pa.float64()))
                continue
            except pa.ArrowInvalid:
                pass
        plain = pc.match_substring_regex(chunk, _PLAIN_NUMBER)
        blocks.append(pc.cast(pc.if_else(plain, chunk, _NO_TEXT), pa.float64()))
    return pa.chunked_array(blocks, pa.float64())


def _number_bytes(chunk: pa.Array) -> bool:
    """Whether every byte of the text of a string array lies between '.' and '9'."""
    if chunk.type != pa.string():
        return False
    _, offsets, data = chunk.buffers()
    if data is None:
        return True
    at = np.frombuffer(offsets, np.int32, len(chunk) + 1, chunk.offset * 4)
    text = np.frombuffer(data, np.uint8)[at[0]:at[-1]]
    return not text.size or (text.min() >= _LOWEST and text.max() <= _HIGHEST)


def _longer_than(t: pa.Array, size: pa.Array, limit: int) -> np.ndarray:
    """Which cells hold more than ``limit`` characters (``size``: their bytes; a text has
    no more characters than bytes, so only the cells with more bytes are counted)."""
    over = _np(pc.greater(size, limit))
    if over.any():
        at = np.flatnonzero(over)
        over[at] = _np(pc.greater(pc.utf8_length(t.take(pa.array(at))), limit))
    return over


class _Refused:
    """What :func:`_scalar` gives for a cell the converter refuses."""


_REFUSED = _Refused()


def _scalar(t: pa.Array, rows: np.ndarray, fn: Callable[..., Any]) -> tuple[list, np.ndarray]:
    """``fn`` of the (trimmed) cells at ``rows``, once per distinct text: (values, refused mask)."""
    done: dict[str, Any] = {}
    # (a few cells of a long column: one at a time, as taking them would join its chunks)
    texts = [t[i].as_py() for i in rows.tolist()] if len(rows) < 64 else \
        t.take(pa.array(rows)).to_pylist()
    for text in set(texts):
        try:
            done[text] = fn(text)
        except ValueError:
            done[text] = _REFUSED
    values = [done[text] for text in texts]
    bad = np.array([v is _REFUSED for v in values], dtype=bool)
    return [None if v is _REFUSED else v for v in values], bad


def _scatter(n: int, rows: np.ndarray, flags: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rows[flags]] = True
    return out


def digits(t: pa.Array) -> np.ndarray:
    """Which (stripped) cells are one or more ASCII digits: an id as it is.

    >>> digits(pa.array(["0123", "", "12a", "\u0663", None])).tolist()
    [True, False, False, False, False]
    """
    return _np(pc.ascii_is_decimal(t))          # False for "" (as str.isdecimal)


def as_numpy(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean pyarrow array (null: False) as numpy."""
    return _np(mask)


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean pyarrow array (null: False) as numpy."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


# --------------------------------------------------------------------------- date-times

_US = (r"^(?P<month>[0-9]{1,2})/(?P<day>[0-9]{1,2})/(?P<year>[0-9]{4}) "
       r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2}) (?P<ampm>[AP])M$")
_ISO = (r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
        r" (?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})$")
_ISO_DAY = r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})$"
_FIRST_DAY = np.datetime64(FIRST_DATE.date(), "D")


def parse_datetimes(t: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~xl_kpis.imports.clean.parse_datetime` of the usual forms of stripped text cells.

    Returns ``(datetime64[s] array, ok mask)``: the forms
    ``M/D/YYYY H:MM:SS AM`` (an export's), ``YYYY-MM-DD HH:MM:SS`` and
    ``YYYY-MM-DD`` are read when valid (a real day, hours in range, not
    before 1900-03-01); every other cell has ``ok`` False, NaT, and must go
    through ``parse_datetime``, which stays the reference.

    >>> import pyarrow as pa
    >>> values, ok = parse_datetimes(pa.array(["12/15/2025 9:30:33 PM", "2026-07-18", "15/12/2025"]))
    >>> values[ok].tolist(), ok.tolist()
    ([datetime.datetime(2025, 12, 15, 21, 30, 33), datetime.datetime(2026, 7, 18, 0, 0)], [True, True, False])
    """
    n = len(t)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    ok = np.zeros(n, dtype=bool)
    for pattern in (_US, _ISO, _ISO_DAY):
        parts = pc.extract_regex(t, pattern)
        found = _np(pc.is_valid(parts)) & ~ok
        if not found.any():
            continue
        rows = np.flatnonzero(found)
        parts = parts.take(pa.array(rows))
        field = {f.name: i for i, f in enumerate(parts.type)}

        def number(key: str) -> np.ndarray:
            return pc.cast(pc.struct_field(parts, [field[key]]), pa.int64()).to_numpy(zero_copy_only=False)

        year, month, day = number("year"), number("month"), number("day")
        if "hour" in field:
            hour, minute, second = number("hour"), number("minute"), number("second")
        else:
            hour = minute = second = np.zeros(len(rows), dtype=np.int64)
        good = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (minute <= 59) & (second <= 59)
        if "ampm" in field:
            pm = _np(pc.equal(pc.struct_field(parts, [field["ampm"]]), "P"))
            good &= (hour >= 1) & (hour <= 12)
            hour = hour % 12 + np.where(pm, 12, 0)
        else:
            good &= hour <= 23
        first = (np.where(good, (year - 1970) * 12 + month - 1, 0)).astype("timedelta64[M]") \
            + np.datetime64("1970-01", "M")
        days = first.astype("datetime64[D]") + np.where(good, day - 1, 0).astype("timedelta64[D]")
        good &= (days.astype("datetime64[M]") == first) & (days >= _FIRST_DAY)
        stamp = days.astype("datetime64[s]") + (hour * 3600 + minute * 60 + second).astype("timedelta64[s]")
        out[rows[good]] = stamp[good]
        ok[rows[good]] = True
    return out, ok


def datetimes_of_texts(texts: list[str]) -> list[dt.datetime | None]:
    """:func:`parse_datetimes` of Python strings: a ``datetime`` per text, None where not read."""
    values, ok = parse_datetimes(trimmed(pa.array(texts, pa.string())))
    return [v if good else None for v, good in zip(values.astype(object).tolist(), ok.tolist())]


# --------------------------------------------------------------------------- categories

_ID_WIDTH = 19         # digits an uint64 always holds


_POW10 = 10 ** np.arange(_ID_WIDTH, -1, -1, dtype=np.uint64)      # 10**19 ... 10**0


def _id_keys(texts: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """``(keys, lengths)`` when every text (nulls aside, at least one) is an id of 1 to 19
    ASCII digits, else None: each text's uint64 key and its length in digits (a null's
    key 0, its length 19).

    The key is the digits left-aligned and zero-padded to 19 places: keys sort as the
    texts do, and only texts that differ by trailing zeros share one (``"12"``, ``"120"``;
    their length tells them apart, and the shorter sorts first).  It is the id read as
    an integer times ``10 ** (19 - length)``: below ``10 ** 19``, within an uint64.

    >>> [a.tolist() for a in _id_keys(pa.array(["0012", None, "5"]))]
    [[12000000000000000, 0, 5000000000000000000], [4, 19, 1]]
    """
    if len(texts) == texts.null_count or not pc.all(pc.ascii_is_decimal(texts)).as_py():
        return None
    lengths = pc.binary_length(texts)
    if pc.max(lengths).as_py() > _ID_WIDTH:
        return None
    value = pc.fill_null(pc.cast(texts, pa.uint64()), 0).to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(lengths, _ID_WIDTH).to_numpy(zero_copy_only=False)
    return value * _POW10[lengths], lengths


def _text_order(texts: pa.Array) -> np.ndarray:
    """The indices that sort distinct strings as Python sorts them.

    Ids (:func:`_id_keys`) sort by their key, then their length
    (``"123" < "1230" < "124"``): much faster than sorting strings.
    """
    ids = _id_keys(texts)
    if ids is not None:
        keys, lengths = ids
        return np.lexsort((lengths, keys))
    return pc.array_sort_indices(texts).to_numpy(zero_copy_only=False)


def factorize(values: pa.Array, sort: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, distinct)`` of a string array with nulls: int64 codes (-1 for null) and an
    object array of the distinct ``str``, in order of first appearance or, with ``sort``,
    sorted (as Python sorts ``str``: by code point, which UTF-8 byte order is).

    >>> codes, distinct = factorize(pa.array(["20", None, "3", "20", "100"]), sort=True)
    >>> codes.tolist(), distinct.tolist()
    ([1, -1, 2, 1, 0], ['100', '20', '3'])
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if sort:
        ids = _factorize_ids(values)
        if ids is not None:
            return ids
    encoded = pc.dictionary_encode(values, null_encoding="mask")
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    distinct = encoded.dictionary
    if sort and len(distinct):
        order = _text_order(distinct)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
        distinct = distinct.take(pa.array(order))
    return codes, _objects(distinct)


def _factorize_ids(values: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`factorize` (sorted) of ids of 1 to 19 ASCII digits, sorting their integer
    keys (:func:`_id_keys`) rather than the text; None for any other column, or when a
    key is seen with two lengths (``"12"``, ``"120"``: the text is factorised instead).
    The distinct ids come marked plain (:func:`~xl_kpis.metrics._kpi.mark_plain`): digits
    are labels as they are.
    """
    ids = _id_keys(values)
    if ids is None:
        return None
    keys, lengths = ids
    valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
    if not valid.all():
        keys = np.where(valid, keys, _NO_KEY)          # nulls sort last, as one key
    # the lines of an order follow each other: sort the first key of each run only
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    distinct, run_codes = np.unique(keys[starts], return_inverse=True)
    codes = np.repeat(run_codes.astype(np.int64, copy=False), np.diff(np.append(starts, keys.size)))
    key_length = np.zeros(len(distinct), dtype=lengths.dtype)
    key_length[codes] = lengths
    if not np.array_equal(key_length[codes], lengths):
        return None                                    # "12" and "120": tell them apart as text
    at = np.empty(len(distinct), dtype=np.int64)
    at[run_codes] = starts                             # a row of each key (they hold one text)
    if not valid.all():
        at = at[:-1]
        codes[~valid] = -1
    return codes, mark_plain(_objects(values.take(pa.array(at))))     # digits: plain labels


_NO_KEY = np.uint64(np.iinfo(np.uint64).max)     # above every key (< 10 ** 19)


def _objects(texts: pa.Array) -> np.ndarray:
    """The texts as an object array of ``str`` (pyarrow's own conversion: a quarter faster
    than a list)."""
    return np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object)
