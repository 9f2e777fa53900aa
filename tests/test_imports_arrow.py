"""The pyarrow reader of well-formed CSV exports and its vectorised converters (xl_kpis/imports/arrow.py).

Every vectorised converter is checked against the scalar converter of
xl_kpis/imports/clean.py, the reference for what a cell means.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpis.imports import arrow
from xl_kpis.metrics._kpi import is_plain
from xl_kpis.imports.arrow import Irregular, convert, factorize, parse_datetimes, read_table
from xl_kpis.imports.clean import parse_amount, parse_datetime, parse_id, parse_number


def _numbers(text):
    """The vectorised reading of one number cell: (values, read vectorised?)."""
    c = convert(pa.array([text]), "number")
    return c.values, ~c.bad & ~c.empty & (np.arange(1) >= len(c.rest))


@pytest.mark.parametrize("text", [
    "12/15/2025 9:30:33 AM", "12/15/2025 12:00:00 AM", "1/2/2026 11:59:59 PM", "02/29/2024",
    "2026-07-18", "2026-07-18 00:00:00", "2026-07-18T09:05", "2026/07/18 09:05:01",
    "02/29/2025", "13/01/2025", "12/15/2025 13:00 PM", "12/15/2025 9:30PM", "12/15/2025  9:30",
    "2026-07-18 9:5", "12/15/2025 PM", "12/15/2025 9:30 AM PM", "2026-07-18 AM", "12-15-2025",
    "2026-7-8", "0000-01-01", "9999-12-31 23:59:59", "2026-07-18 24:00", "12/31/2025 0:00 AM",
])
def test_vectorised_dates_agree_with_parse_datetime(text):
    """The fast date parser accepts a subset of parse_datetime, with equal values (ours)."""
    values, ok = parse_datetimes(pa.array([text]))
    try:
        expected = parse_datetime(text)
    except ValueError:
        assert not ok[0]
    else:
        assert not ok[0] or values[0].astype(object) == expected


@settings(max_examples=200)
@given(when=st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1)),
       form=st.sampled_from(["us", "us_pad", "us24", "iso", "iso_min", "date_us", "date_iso"]))
def test_vectorised_dates_parse_generated(when, form):
    when = when.replace(microsecond=0)
    h12 = when.hour % 12 or 12
    ampm = "AM" if when.hour < 12 else "PM"
    text = {
        "us": f"{when.month}/{when.day}/{when.year:04d} {h12}:{when:%M:%S} {ampm}",
        "us_pad": f"{when:%m/%d/%Y} {h12:02d}:{when:%M:%S} {ampm}",
        "us24": f"{when:%m/%d/%Y} {when:%H:%M:%S}",
        "iso": f"{when.year:04d}-{when:%m-%d %H:%M:%S}",
        "iso_min": f"{when.year:04d}-{when:%m-%d %H:%M}",
        "date_us": f"{when:%m/%d/%Y}",
        "date_iso": f"{when.year:04d}-{when:%m-%d}",
    }[form]
    values, ok = parse_datetimes(pa.array([text]))
    assert ok[0] or form in ("us24", "iso_min", "date_us"), text     # an export's forms are vectorised
    assert not ok[0] or values[0].astype(object) == parse_datetime(text)
    column = convert(pa.array([f"{text}\t"]), "datetime")             # the others: parse_datetime
    assert column.values[0].astype(object) == parse_datetime(text) and not column.bad.any()


@settings(max_examples=300)
@given(st.text(alphabet="0123456789/-: APMapmT.", max_size=24))
def test_vectorised_dates_never_accept_what_parse_datetime_refuses(text):
    text = text.strip()
    if not text:
        return
    values, ok = parse_datetimes(pa.array([text]))
    if ok[0]:
        assert values[0].astype(object) == parse_datetime(text)


@pytest.mark.parametrize("text, expected", [
    ("53.79", 53.79), ("0.00", 0.0), ("12", 12.0), ("12.", 12.0), (".5", 0.5), ("007.50", 7.5),
    ("999999999999999", 999999999999999.0), ("0.1", 0.1), ("1234567.891", 1234567.891),
    ("9999999999999999", 1e16), ("12 ", 12.0), ("\t40.05", 40.05),
    ("1.2.3", None), (".", None), ("", None), ("-1", None), ("$1.00", None),
    ("1,234", None), ("1e5", None), ("<5", None), ("1.5%", None), ("1\x002", None), ("9" * 400, None),
])
def test_vectorised_numbers(text, expected):
    """Plain decimals are read by pyarrow's cast, exactly as parse_number reads them (correctly
    rounded); the rest (None here) go through parse_amount."""
    values, ok = _numbers(text)
    assert bool(ok[0]) == (expected is not None)
    if expected is not None:
        assert values[0] == expected == parse_number(text)


@settings(max_examples=300)
@given(st.lists(st.text(alphabet="0123456789.,$-%() <e", max_size=18), min_size=1, max_size=8))
def test_numbers_agree_with_parse_amount(texts):
    """A column of number cells: the values and the refused cells of parse_amount."""
    c = convert(pa.array(texts), "number")
    _assert_agree(texts, [None if v != v else v for v in c.values.tolist()], c.bad, parse_amount)


@settings(max_examples=200)
@given(st.lists(st.lists(st.one_of(st.text(alphabet="0123456789./", max_size=8),
                                   st.text(alphabet="0123456789.,$-%e <", max_size=8)),
                         max_size=6), min_size=1, max_size=5))
def test_numbers_in_blocks_agree_with_parse_amount(blocks):
    """A column read in blocks (a file's chunks): a block of digits and points only is cast
    without the regex, unless the cast refuses one of its cells ('1.2.3', '/', '.'); the
    values are parse_amount's in every block, whatever its neighbours hold."""
    texts = [t for b in blocks for t in b]
    c = convert(pa.chunked_array([pa.array(b, pa.string()) for b in blocks], pa.string()), "number")
    _assert_agree(texts, [None if v != v else v for v in c.values.tolist()], c.bad, parse_amount)


def test_a_block_of_digits_the_cast_refuses_is_matched_by_the_rule():
    """'1/2' and '1.2.3' hold only the bytes of numbers: the cast refuses them and their block
    goes through the regex (a plain cell of that block is still read there); '/' and '.' alone
    are not numbers (parse_amount refuses them)."""
    column = pa.chunked_array([["12.50", "3"], ["7.", "1/2"], ["1.2.3", ".5"]])
    c = convert(column, "number")
    assert [None if v != v else v for v in c.values.tolist()][:3] == [12.5, 3.0, 7.0]
    assert c.values[5] == 0.5
    _assert_agree(["12.50", "3", "7.", "1/2", "1.2.3", ".5"],
                  [None if v != v else v for v in c.values.tolist()], c.bad, parse_amount)
    assert arrow._number_bytes(pa.array(["1/2", ".."])) and not arrow._number_bytes(pa.array(["1-2"]))
    assert arrow._number_bytes(pa.array(["", None], pa.string()))


def _assert_agree(texts, values, bad, reference):
    """Each cell's value is the reference converter's, and a cell is refused where it refuses it."""
    for text, value, refused in zip(texts, values, bad.tolist()):
        try:
            expected = reference(text)
        except ValueError:
            assert refused, text
        else:
            assert not refused and value == expected, text


@settings(max_examples=200)
@given(st.lists(st.one_of(st.text(alphabet="0123456789' \t\u00a0x٣", max_size=20),
                          st.sampled_from(["576461234567890123\t", "5764612345678901234", "'15", " "])),
                min_size=1, max_size=8))
def test_ids_agree_with_parse_id(texts):
    """Ids: exact text (never a float), as parse_id gives them; blank is None."""
    c = convert(pa.array(texts), "id")
    _assert_agree(texts, c.values.to_pylist(), c.bad, parse_id)


def test_text_is_trimmed_and_a_text_longer_than_a_cell_is_refused():
    c = convert(pa.array(["\t jane \u00a0", " ", "=HYPERLINK(\"x\")", "x" * 32_768]), "text")
    assert c.values.to_pylist()[:3] == ["jane", None, '=HYPERLINK("x")']
    assert c.bad.tolist() == [False, False, False, True]
    # the limit is in characters: 32,767 two-byte characters fit, one more does not
    c = convert(pa.array(["\u00e9" * 32_767, "\u00e9" * 32_768, "x" * 32_767]), "text")
    assert c.bad.tolist() == [False, True, False]


def test_factorize():
    values = pa.array(["b", None, "a", "b", "ü", "a"])
    codes, distinct = factorize(values, sort=False)
    assert distinct.tolist() == ["b", "a", "ü"] and codes.tolist() == [0, -1, 1, 0, 2, 1]   # first seen
    codes, distinct = factorize(values, sort=True)
    assert distinct.tolist() == sorted(["b", "a", "ü"]) and codes.tolist() == [1, -1, 0, 1, 2, 0]
    ids = pa.array(["576461234567890124", "5764612345678901239", "576461234567890123"])
    codes, distinct = factorize(ids, sort=True)
    assert distinct.tolist() == sorted(ids.to_pylist()) and codes.tolist() == [2, 1, 0]   # as text


@given(st.lists(st.none() | st.text(alphabet="0129", min_size=1, max_size=21), min_size=1,
                max_size=30))
def test_ids_sort_as_text(ids):
    """Digit ids sort as Python sorts the strings (trailing and leading zeros, 20+ digits,
    blanks), whichever way they are factorised (integer keys or text)."""
    codes, distinct = factorize(pa.array(ids, pa.string()), sort=True)
    assert distinct.tolist() == sorted({i for i in ids if i is not None})
    assert [None if c < 0 else distinct[c] for c in codes] == ids


def test_ids_are_factorised_by_integer_keys_unless_two_share_one():
    """Ids of up to 19 digits are hashed as integers; "12" and "120" (one key) or a 20-digit
    id send the column to the text path, which the property test above checks too."""
    fast = arrow._factorize_ids(pa.array(["5764612345678901239", None, "576461234567890123",
                                          "0012", "5764612345678901239"]))
    assert fast is not None and fast[0].tolist() == [2, -1, 1, 0, 2]
    assert fast[1].tolist() == ["0012", "576461234567890123", "5764612345678901239"]
    assert is_plain(fast[1])                       # digits: labels as they are
    for other in (["12", "120"], ["1" * 20], ["12", "a"], [None]):
        assert arrow._factorize_ids(pa.array(other, pa.string())) is None
        assert not is_plain(factorize(pa.array(other, pa.string()), sort=True)[1])


# --------------------------------------------------------------------------- read_table

def _csv(path, rows, tail=b""):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode() + tail)
    return str(path)


def test_read_table_reads_what_the_csv_module_reads(tmp_path):
    rows = [["Order ID", "Note", "Last"], ["1\t", "two\r\nlines", ""], ["", "", ""], ["2", 'say "hi"', "x"]]
    name = _csv(tmp_path / "a.csv", rows, b"\r\n")              # and a blank line at the end
    table = read_table(name, 1, 3, [0, 1])
    assert table.column_names == ["c0", "c1", "c2"]            # the last column is always read
    with open(name, encoding="utf-8-sig", newline="") as f:
        expected = list(csv.reader(f))[1:]
    got = [list(r) for r in zip(*(c.to_pylist() for c in table.columns))]
    assert got == [r if r else ["", "", ""] for r in expected]


@pytest.mark.parametrize("tail", [
    b"3,short\r\n",                    # fewer fields than the header
    b"3,a,b,c\r\n",                    # more
    b'3,a,"cut inside quotes\r\n',     # the file ends inside the last cell's quotes
    b'3,a,"cut ""inside',
    b'3,a,"',
    b"3,\xff,b\r\n",                   # not UTF-8 (in a column read: pyarrow checks those)
    b"3,a," + b"x" * (1 << 21) + b"\r\n",   # a record longer than a read block
])
def test_read_table_refuses_what_the_csv_module_reads_otherwise(tmp_path, tail):
    name = _csv(tmp_path / "a.csv", [["Order ID", "Note", "Last"], ["1", "a", "b"]], tail)
    with pytest.raises(Irregular):
        read_table(name, 1, 3, [1])


@pytest.mark.parametrize("tail", [b'3,a,"closed, quoted"', b'3,a,"closed ""quoted"""\r\n', b"3,a,plain",
                                  b"3,a,", b'3,a,""\n'])
def test_read_table_accepts_a_last_cell_written_out(tmp_path, tail):
    name = _csv(tmp_path / "a.csv", [["Order ID", "Note", "Last"], ["1", "a", "b"]], tail)
    assert read_table(name, 1, 3, [0]).num_rows == 2


def test_read_table_needs_the_header_first(tmp_path):
    name = _csv(tmp_path / "a.csv", [["Shop orders"], ["Order ID", "Note"], ["1", "a"]])
    with pytest.raises(Irregular):
        read_table(name, 2, 2, None)
    assert arrow.column_name(3) == "c3"
