"""Cleaning shared by every TikTok export parser: headers, cells, files, rows.

Nothing here knows which export it is reading; the per-export alias tables
live in :mod:`xl_kpis.imports.aliases` and the parsers in ``ads``, ``orders``
and ``studio``.  The quirks handled come from ``docs/tiktok-exports.md`` (§A-§D):

* headers: case, NBSP, BOM, a trailing ``(USD)``/``(%)`` unit;
* numbers: ``<5``, ``--``, ``undefined``, ``1.23%``, ``$1,234.50``,
  ``USD 12.50``, ``(12.50)``;
* dates: ISO, US ``12/15/2025 9:30:33 AM``, Excel serials;
* text: stray tabs, NBSP and surrounding whitespace stripped, nothing else
  (``=HYPERLINK("...")`` stays a literal string);
* footer rows ``Total of N results``;
* files: CSV (any UTF-8, BOM or not; UTF-16 with a BOM) or xlsx read by
  python-calamine, with bad files (not a workbook, truncated zip, encrypted
  OLE2 container, XML entity bomb, zip bomb) refused as
  :class:`ExportFormatError` before any library gets to raise.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import itertools
import math
import operator
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence


from ..package import PackageError, TooLarge, check_cells, open_zip, worksheets
from ..xlsx.dates import FIRST_DATE, FIRST_SERIAL, LAST_SERIAL, from_serial

__all__ = [
    "ExportFormatError", "ImportResult", "Sheet",
    "split_header", "normalise_header", "clean_text", "is_blank", "parse_number",
    "parse_id", "parse_datetime", "parse_date", "is_total_row", "clean_texts",
    "sniff", "open_table", "csv_sheet", "csv_format", "sheet_from_bytes", "sheet_names",
    "convert_rows", "ColumnConverter", "CONVERTERS",
    "parse_code", "cell_location", "skip_reasons", "skip_lines", "lines_note", "TOTAL_ROW", "DESCRIPTION_ROW",
    "NOTHING_TO_COUNT", "NOT_DATA",
    "parse_amount", "Broken", "SHORT_ROW", "UNTERMINATED", "MAX_RECORD", "FIRST_DATE",
    "MAX_TEXT", "too_long",
]

Row = tuple[int, list]  # (1-based line number as Excel shows it, cells)


class ExportFormatError(ValueError):
    """The file is not the export it claims to be (wrong format, damaged, encrypted, no header).

    The message is one line and names the file and the problem.
    """


@dataclass
class ImportResult:
    """Rows of one target table read from one export.

    ``rows`` are dicts keyed by canonical field names (see
    :mod:`xl_kpis.imports.aliases`); a key is present only when the export
    has that column, so an import never blanks a column it does not carry
    (a present but empty cell is ``None``).  ``fields`` lists those keys in
    table order, also when ``rows`` is empty.
    """

    kind: str                                   #: "ads" | "orders" | "studio"
    table: str                                  #: target table: "Campaigns", "Orders", "Videos", "Brand"
    rows: list[dict[str, Any]]
    key_fields: tuple[str, ...]                 #: the export's own dedup key
    skipped: list[tuple[int, str]] = field(default_factory=list)  #: (line, reason)
    unmapped_headers: list[str] = field(default_factory=list)
    currency: str | None = None                 #: from a money header such as "Cost (USD)"
    source: str = ""                            #: file name (and sheet/member) read
    fields: tuple[str, ...] = ()                #: canonical keys the rows carry
    notes: list[str] = field(default_factory=list)  #: anything else worth telling the user
    #: cells read as blank from a marker (``<5``, ``--``, ``undefined`` ...): (line, header, text)
    blanks: list[tuple[int, str, str]] = field(default_factory=list)
    #: the period an undated report covers, when the file says (its name, a title row)
    period: tuple[dt.date, dt.date] | None = None
    period_source: str = ""                     #: where ``period`` was read
    #: indices of rows that may fill a gap in the book but never replace a row there
    #: (a month the export covers only from its middle), with the reason
    fill_only: dict[int, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- headers

_UNIT = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[A-Z]{3}|%)\)$")
_SPACES = re.compile(r"\s+")


def _squash(s: str) -> str:
    """NBSP and BOM out, whitespace collapsed, ends stripped."""
    return _SPACES.sub(" ", s.replace("\ufeff", "").replace("\u00a0", " ")).strip()


def split_header(raw: Any) -> tuple[str, str | None]:
    """Normalised header and its unit: a 3-letter uppercase currency code or ``%``.

    >>> split_header("\\ufeffCost (USD)")
    ('cost', 'USD')
    >>> split_header("CTR (%)")
    ('ctr', '%')
    >>> split_header("Video views (P25)")
    ('video views (p25)', None)
    >>> split_header("Gross  revenue\\u00a0(Shop)")
    ('gross revenue (shop)', None)
    """
    text = _squash(str(raw)) if raw is not None else ""
    m = _UNIT.match(text)
    if m and m["name"]:
        return m["name"].casefold(), m["unit"]
    return text.casefold(), None


def normalise_header(raw: Any) -> str:
    """The header as aliases are matched: see :func:`split_header`.

    >>> normalise_header(" CPC (THB) ")
    'cpc'
    >>> normalise_header("Clicks (destination)")
    'clicks (destination)'
    """
    return split_header(raw)[0]


# --------------------------------------------------------------------------- cells

_STRIP = " \t\r\n\u00a0\ufeff"
_BLANK_WORDS = frozenset({"", "-", "--", "undefined", "n/a", "null"})
_BELOW = re.compile(r"^<\s*\d+$")  # "<5": a count TikTok hides for privacy


def clean_text(value: Any) -> str | None:
    """Text exactly as exported, minus surrounding whitespace, tabs and NBSP; blank → None.

    Numbers that an xlsx stored as numbers come back as their usual text
    (``12345.0`` → ``'12345'``); nothing else is interpreted, so a cell like
    ``=HYPERLINK("http://x")`` stays that literal string.

    >>> clean_text('\\t=HYPERLINK("http://x")\\u00a0')
    '=HYPERLINK("http://x")'
    >>> clean_text(" \\t"), clean_text(12345.0), clean_text(True)
    (None, '12345', 'TRUE')
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip(_STRIP) or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return str(value)


def clean_texts(values: Iterable[str]) -> list[str | None]:
    """:func:`clean_text` of many ``str`` values at once (for big files).

    >>> clean_texts(["a\\t", " ", "b"])
    ['a', None, 'b']
    """
    return [v.strip(_STRIP) or None for v in values]


def is_blank(value: Any) -> bool:
    """True for None and for text that is empty once stripped."""
    return value is None or (isinstance(value, str) and not value.strip(_STRIP))


def _blank_number(text: str) -> bool:
    """Empty markers of number cells: '', '-', '--', 'undefined', 'N/A', '<5'."""
    return text.casefold() in _BLANK_WORDS or bool(_BELOW.match(text))


# Each run of blanks follows a token (never two runs side by side): a cell that is no
# number is refused in time linear in its length.
_NUMBER = re.compile(r"""
    ^(?:(?P<neg1>[-\u2212])\s*)?
    (?:(?:(?P<sym1>US\$|[$€£¥₫฿R])|(?P<code1>[A-Z]{3}))\s*)?
    (?:(?P<neg2>[-\u2212])\s*)?
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)
    (?:\s*(?:(?P<pct>%)|(?P<sym2>[$€£¥₫฿])|(?P<code2>[A-Z]{3})))?$
""", re.VERBOSE)


def _number_from_text(text: str) -> float:
    """Parse a stripped, non-blank number cell; ValueError when it is not one."""
    neg = False
    if text.startswith("(") and text.endswith(")"):
        neg, text = True, text[1:-1].strip(_STRIP)
    m = _NUMBER.match(text)
    if not m or (m["neg1"] and m["neg2"]) or (neg and (m["neg1"] or m["neg2"])) or \
            (m["pct"] and (m["sym1"] or m["code1"])) or \
            (sum(1 for g in ("sym1", "code1", "sym2", "code2") if m[g]) > 1):
        raise ValueError("not a number")
    value = float(m["num"].replace(",", ""))
    if not math.isfinite(value):
        raise ValueError("out of range")
    if m["pct"]:
        value /= 100.0
    return -value if (neg or m["neg1"] or m["neg2"]) else value


def parse_number(value: Any, column: str | None = None, line: int | None = None) -> float | None:
    """A number cell as a float, None when blank; ValueError naming column, line and value.

    Accepted: plain numbers, US thousands separators (``1,234.50``), a
    currency symbol (``$ € £ ¥ ₫ ฿ R``) or code (``USD 12.50``, ``12.50 USD``),
    percentages (``1.23%`` → 0.0123), negatives as ``-12.5`` or ``(12.50)``.
    Blank: ``''``, ``--``, ``-``, ``undefined``, ``N/A``, ``<5``.
    European separators (``1.234,50``) are refused rather than guessed.

    >>> parse_number("$1,234.50"), parse_number("1.23%"), parse_number("(12.50)")
    (1234.5, 0.0123, -12.5)
    >>> parse_number("USD 12.50"), parse_number("<5"), parse_number("--")
    (12.5, None, None)
    >>> parse_number("1.234,50", column="Cost", line=7)
    Traceback (most recent call last):
    ValueError: line 7, column 'Cost': '1.234,50' is not a number
    """
    try:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("not a number")
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ValueError("not a number")
            return float(value)
        text = value.strip(_STRIP)
        return None if _blank_number(text) else _number_from_text(text)
    except ValueError as e:
        why = "is too large to be a number (beyond 1.8e308)" if str(e) == "out of range" \
            else "is not a number"
        raise ValueError(f"{cell_location(column, line)}{_shown(value)} {why}") from None


def _shown(value: Any) -> str:
    """A cell value in a message: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_amount(value: Any, column: str | None = None, line: int | None = None) -> float | None:
    """:func:`parse_number` for the columns of an export, which hold amounts of money and
    counts: a negative value (``-3``, ``(40.05)``) is refused, naming column, line and value
    (refunds and discounts have columns of their own, as positive amounts).

    >>> parse_amount("$1,234.50"), parse_amount("--")
    (1234.5, None)
    >>> parse_amount("(40.05)", column="Order Amount", line=9)
    Traceback (most recent call last):
    ValueError: line 9, column 'Order Amount': '(40.05)' is negative (amounts and counts are 0 or more)
    """
    x = parse_number(value, column, line)
    if x is not None and x < 0:
        raise ValueError(f"{cell_location(column, line)}{_shown(value)} is negative "
                         "(amounts and counts are 0 or more)")
    return x


def cell_location(column: str | None, line: int | None) -> str:
    """The ``"line 7, column 'Cost': "`` prefix of cell error messages ('' when both are None)."""
    parts = ([f"line {line}"] if line is not None else []) + \
        ([f"column {column!r}"] if column is not None else [])
    return ", ".join(parts) + ": " if parts else ""


#: Why a row is skipped that holds no line of data: an export's footer of totals, the
#: description of its fields under the header (Seller Center's order export), a row with
#: nothing in it that counts.  A report does not list them among the lines it left out.
TOTAL_ROW, DESCRIPTION_ROW = "total row", "description row"
NOTHING_TO_COUNT = "no campaign and no numbers"
NOT_DATA = frozenset({TOTAL_ROW, DESCRIPTION_ROW, NOTHING_TO_COUNT})

_LINE = re.compile(r"^line (\d+)(?:, |: )")


def skip_reasons(skipped: Iterable[tuple[int | None, str]]) -> dict[str, list[int | None]]:
    """The reasons rows were skipped (their ``line N,`` prefix, :func:`cell_location`'s,
    removed) → the lines each applies to, in the order met.

    >>> skip_reasons([(3, "line 3, column 'Cost': 'x' is not a number"), (2, "description row"),
    ...               (5, "line 5, column 'Cost': 'x' is not a number")])
    {"column 'Cost': 'x' is not a number": [3, 5], 'description row': [2]}
    """
    out: dict[str, list[int | None]] = {}
    for line, reason in skipped:
        out.setdefault(_LINE.sub("", reason), []).append(line)
    return out


def skip_lines(skipped: Iterable[tuple[int | None, str]], most: int, lead: str = "",
               unit: str = "rows") -> list[str]:
    """Why rows were skipped, as lines of text, the commonest reason first:
    ``"  - <lead><count>: <reason> (lines …)"`` for at most ``most`` reasons, then one line
    counting the others and their ``unit``.

    >>> skip_lines([(3, "line 3, total row"), (4, "short"), (9, "short"), (5, "odd")], 1, "skipped ")
    ['  - skipped 2: short (lines 4, 9)', '  - skipped … 2 more reasons (2 rows)']
    """
    reasons = sorted(skip_reasons(skipped).items(), key=lambda kv: -len(kv[1]))
    out = [f"  - {lead}{len(where):,}: {reason}{lines_note(where)}" for reason, where in reasons[:most]]
    if len(reasons) > most:
        rest = sum(len(where) for _, where in reasons[most:])
        out.append(f"  - {lead}… {len(reasons) - most:,} more reasons ({rest:,} {unit})")
    return out


def lines_note(lines: Sequence[int | None]) -> str:
    """``" (lines 3, 5, 8, 9, 12 …)"``: the first five known lines, '' when none is known.

    >>> lines_note([9, 3, None]), lines_note([2]), lines_note([None])
    (' (lines 3, 9)', ' (line 2)', '')
    """
    known = sorted(x for x in lines if x is not None)
    if not known:
        return ""
    shown = ", ".join(str(x) for x in known[:5]) + (" …" if len(known) > 5 else "")
    return f" (line{'s' if len(known) > 1 else ''} {shown})"


_ID = re.compile(r"^'?(\d+)$")


def parse_id(value: Any, column: str | None = None, line: int | None = None) -> str | None:
    """A numeric platform id (order, SKU) as exact text; None when blank.

    Ids are 18-19 digits, more than a float64 holds exactly, so a float is
    accepted only when it is an integer ≤ 2**53; a larger one has already
    lost digits and is refused (store the column as text and re-export).

    >>> parse_id("5764612345678901234\\t"), parse_id(12345.0)
    ('5764612345678901234', '12345')
    >>> parse_id(5.764612345678902e+17)
    Traceback (most recent call last):
    ValueError: 5.764612345678902e+17 is a number too large to be an exact id (digits lost); keep ids as text

    A CSV saved from Excel holds such ids as Excel showed them:

    >>> parse_id("5.76461E+17", "Order ID", 3)
    Traceback (most recent call last):
    ValueError: line 3, column 'Order ID': '5.76461E+17' is an id in scientific notation, as Excel shows a long number and saves it: its digits are lost; import the export as downloaded
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{cell_location(column, line)}{value!r} is not an id")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and 0 <= value <= 2 ** 53:
            return str(int(value))
        if value.is_integer():
            raise ValueError(f"{cell_location(column, line)}{value!r} is a number too large to be an "
                             "exact id (digits lost); keep ids as text")
        raise ValueError(f"{cell_location(column, line)}{value!r} is not an id")
    text = str(value).strip(_STRIP)
    if not text:
        return None
    m = _ID.match(text)
    if not m:
        if _SCIENTIFIC.match(text):
            raise ValueError(f"{cell_location(column, line)}{text!r} is an id in scientific notation, "
                             "as Excel shows a long number and saves it: its digits are lost; "
                             "import the export as downloaded")
        raise ValueError(f"{cell_location(column, line)}{text!r} is not an id")
    return m[1]


#: A number as Excel shows a long one (``5.76461E+17``) and writes it into a CSV it saves.
_SCIENTIFIC = re.compile(r"^\d+(?:[.,]\d*)?[eE]\+?\d+$")


_ISO = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
                  r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?$")
_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})"
                 r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?[Mm]\.?)?)?$")


def _in_excel_range(when: dt.datetime) -> dt.datetime:
    if when.replace(tzinfo=None) < FIRST_DATE:
        raise ValueError("before 1900-03-01")
    return when


def _hour(h: str | None, ampm: str | None) -> int:
    """24-hour clock hour from an hour and an optional AM/PM marker."""
    hour = int(h or 0)
    if ampm is None:
        return hour
    if not 1 <= hour <= 12:
        raise ValueError("hour out of range for AM/PM")
    return hour % 12 + (12 if ampm in "Pp" else 0)


def _datetime_from_text(text: str) -> dt.datetime:
    """ISO or US (month first) date-time text; ValueError for anything else."""
    m = _ISO.match(text)
    if m:
        y, mo, d, h, mi, s, us = m.groups()
        return dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                           int((us or "0").ljust(6, "0")))
    m = _US.match(text)
    if m:
        mo, d, y, h, mi, s, ampm = m.groups()
        return dt.datetime(int(y), int(mo), int(d), _hour(h, ampm), int(mi or 0), int(s or 0))
    raise ValueError("not a date")


def parse_datetime(value: Any, column: str | None = None, line: int | None = None) -> dt.datetime | None:
    """A date/time cell as ``datetime.datetime``; None when blank.

    Accepts datetimes and dates (xlsx cells read by calamine), Excel serial
    numbers, ISO text (``2026-07-18``, ``2026-07-18 00:00:00``) and US text
    (``12/15/2025 9:30:33 AM``, ``12/15/2025``).  Day-first text such as
    ``15/12/2025`` is refused, not guessed, and so is a date before
    :data:`FIRST_DATE` (Excel would show it a day off, or not at all).

    >>> parse_datetime("12/15/2025 9:30:33 PM")
    datetime.datetime(2025, 12, 15, 21, 30, 33)
    >>> parse_datetime(45000.5)
    datetime.datetime(2023, 3, 15, 12, 0)
    """
    try:
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return _in_excel_range(value)
        if isinstance(value, dt.date):
            return _in_excel_range(dt.datetime(value.year, value.month, value.day))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not (FIRST_SERIAL <= value < LAST_SERIAL + 1):
                raise ValueError("not a date")
            return from_serial(value)
        if isinstance(value, str):
            text = value.strip(_STRIP)
            return None if _blank_number(text) else _in_excel_range(_datetime_from_text(text))
        raise ValueError("not a date")
    except (ValueError, OverflowError) as e:
        why = "is before 1900-03-01, the first date Excel shows right" \
            if str(e) == "before 1900-03-01" else "is not a date"
        raise ValueError(f"{cell_location(column, line)}{_shown(value)} {why}") from None


def parse_date(value: Any, column: str | None = None, line: int | None = None) -> dt.date | dt.datetime | None:
    """Like :func:`parse_datetime` but a ``datetime.date`` unless the cell has a time of day.

    Daily reports repeat ``2026-07-18 00:00:00``; those become plain dates so
    they compare and deduplicate equal to ``2026-07-18``.

    >>> parse_date("2026-07-18 00:00:00"), parse_date("2026-07-18 09:00")
    (datetime.date(2026, 7, 18), datetime.datetime(2026, 7, 18, 9, 0))
    """
    value = parse_datetime(value, column, line)
    if value is not None and value.time() == dt.time(0):
        return value.date()
    return value


#: Characters a worksheet cell holds (Excel's limit): a longer text cannot go into a book.
MAX_TEXT = 32_767


def parse_text(value: Any, column: str | None = None, line: int | None = None) -> str | None:
    """:func:`clean_text` with the converter signature; a text longer than a cell holds
    (:data:`MAX_TEXT`) is refused, naming column and line."""
    text = clean_text(value)
    if text is not None and len(text) > MAX_TEXT:
        raise ValueError(too_long(text, column, line))
    return text


def too_long(text: str, column: str | None = None, line: int | None = None) -> str:
    """The message refusing a text longer than :data:`MAX_TEXT`."""
    return (f"{cell_location(column, line)}a text of {len(text):,} characters, more than a "
            f"cell holds ({MAX_TEXT:,})")


def parse_code(value: Any, column: str | None = None, line: int | None = None) -> str | None:
    """An identifier that is usually numeric (an Ad ID): exact digits, else the text.

    A number cell follows :func:`parse_id` (refused once float digits are
    lost); text is kept as text.

    >>> parse_code("1790123456789012"), parse_code("ad-7"), parse_code(1790.0)
    ('1790123456789012', 'ad-7', '1790')
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return parse_id(value, column, line)
    return clean_text(value)


#: Cell converters by field kind: ``f(value, column, line) -> value or None``, ValueError if bad.
CONVERTERS: dict[str, Callable[..., Any]] = {
    "text": parse_text,
    "number": parse_amount,
    "id": parse_id,
    "code": parse_code,
    "date": parse_date,
    "datetime": parse_datetime,
}

_TOTAL = re.compile(r"^totals?\b", re.IGNORECASE)


def is_total_row(cells: Sequence[Any]) -> bool:
    """True when the first non-empty cell starts with "Total" (``Total of 12 results``).

    >>> is_total_row(["", "Total of 12 results", "1,234"]), is_total_row(["Totally Tubular"])
    (True, False)
    """
    return _is_total(_first_filled(cells))


def _first_filled(cells: Iterable[Any]) -> Any:
    """The first cell that is not blank; None when they all are."""
    return next((cell for cell in cells if not is_blank(cell)), None)


def _is_total(cell: Any) -> bool:
    """True for text starting with "Total" (the first filled cell of a total row)."""
    return isinstance(cell, str) and bool(_TOTAL.match(cell.strip(_STRIP)))


# --------------------------------------------------------------------------- files

@dataclass
class Sheet:
    """The rows of one CSV file or worksheet, read lazily as (line, cells).

    ``line`` is the row number Excel would show (a CSV record spanning two
    physical lines is still one row).
    """

    name: str
    rows: Iterator[Row]


_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")
_ZIPS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # local file, empty archive, spanned
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def sniff(path: str | os.PathLike[str]) -> str:
    """``"xlsx"``, ``"zip"`` (not a workbook) or ``"csv"``; ExportFormatError otherwise."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            head = f.read(8192)
    except IsADirectoryError:
        raise ExportFormatError(f"{_base(name)}: is a folder, not an export file") from None
    except OSError as e:
        raise ExportFormatError(f"{_base(name)}: cannot be read ({e.strerror})") from e
    if not head:
        raise ExportFormatError(f"{_base(name)}: the file is empty")
    if head.startswith(_OLE2):
        raise ExportFormatError(f"{_base(name)}: is an encrypted (password-protected) workbook or a "
                                "legacy .xls file; remove the password and save it as .xlsx or CSV")
    if head[:4] in _ZIPS:
        return "xlsx" if _is_workbook(name) else "zip"
    if _encoding(head) is None:
        if b"\x00" in head:
            raise ExportFormatError(f"{_base(name)}: is neither a CSV (UTF-8 text) nor an xlsx file")
        raise ExportFormatError(f"{_base(name)}: is not UTF-8 text; save it as 'CSV UTF-8' or xlsx")
    return "csv"


def _base(name: str) -> str:
    """File name without its folder, for messages."""
    return os.path.basename(name) or name


def _is_workbook(name: str) -> bool:
    """True for a zip holding an xlsx workbook; ExportFormatError for a damaged or hostile zip
    (the bounds of :mod:`xl_kpis.package`, or a part declaring a DTD)."""
    with _zip_errors(name), open_zip(name) as z:
        infos = z.infolist()
        is_book = any(i.filename == "xl/workbook.xml" for i in infos)
        if is_book:
            for info in infos:
                if info.filename.endswith((".xml", ".rels")):
                    with z.open(info) as member:
                        head = member.read(65536)
                    if _DTD.search(head):
                        raise ExportFormatError(
                            f"{_base(name)}: {info.filename} declares a DTD/entities "
                            "(an XML entity bomb?); refusing to read it")
        return is_book


@contextlib.contextmanager
def _zip_errors(name: str) -> Iterator[None]:
    """A damaged zip, or one beyond the bounds of :mod:`xl_kpis.package`, as an
    ExportFormatError (one line)."""
    try:
        yield
    except PackageError as e:
        text = str(e)
        if isinstance(e, TooLarge):     # a real export of a long period: say what reads it
            text += ("; export a shorter period, or the export as CSV, which is read without "
                     "this bound")
        raise ExportFormatError(text if text.startswith(_base(name)) else
                                f"{_base(name)}: {text}") from e
    except (zipfile.BadZipFile, zlib.error, EOFError, zipfile.LargeZipFile,
            NotImplementedError, RuntimeError) as e:
        raise ExportFormatError(f"{_base(name)}: is a truncated or damaged zip/xlsx file ({e})") from e
    except OSError as e:
        raise ExportFormatError(f"{_base(name)}: is a damaged zip/xlsx file ({e})") from e


def _encoding(head: bytes) -> str | None:
    """Text encoding of a CSV from its first bytes, None when it looks binary."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the sample
            return None
    return "utf-8-sig"


def open_table(path: str | os.PathLike[str], sheet: str | None = None) -> Sheet:
    """The rows of a CSV file or of an xlsx worksheet (``sheet`` by name, else the first).

    The format is taken from the content, not the extension.
    """
    name = os.fspath(path)
    kind = sniff(name)
    if kind == "zip":
        raise ExportFormatError(f"{_base(name)}: is a zip archive, not an xlsx workbook or CSV")
    if kind == "xlsx":
        return _xlsx_sheet(name, sheet)
    encoding, delimiter = csv_format(name)
    stream = open(name, encoding=encoding, newline="")
    return csv_sheet(stream, _base(name), delimiter=delimiter)


def sheet_from_bytes(data: bytes, name: str) -> Sheet:
    """A :class:`Sheet` over CSV bytes (a member of a zip archive)."""
    encoding = _encoding(data[:8192])
    if encoding is None:
        raise ExportFormatError(f"{name}: is not a CSV (UTF-8 text) file")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise ExportFormatError(f"{name}: is not UTF-8 text ({e.reason} at byte {e.start}); "
                                "save it as 'CSV UTF-8'") from e
    return csv_sheet(io.StringIO(text, newline=""), name, delimiter=_delimiter(text[:8192]))


def sheet_names(path: str | os.PathLike[str]) -> list[str]:
    """The worksheet names of an xlsx workbook (checked as :func:`sniff` checks it)."""
    from python_calamine import CalamineWorkbook

    name = os.fspath(path)
    if sniff(name) != "xlsx":
        raise ExportFormatError(f"{_base(name)}: is not an xlsx workbook")
    with _workbook_errors(name):
        return list(CalamineWorkbook.from_path(name).sheet_names)


def csv_format(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(encoding, delimiter)`` of a CSV file, from its first 8 KiB."""
    with open(path, "rb") as f:
        head = f.read(8192)
    encoding = _encoding(head) or "utf-8-sig"
    return encoding, _delimiter(head.decode(encoding, "ignore"))


def _delimiter(sample: str) -> str:
    """The delimiter of the first line: the most frequent of , ; and tab outside quotes."""
    first = re.sub(r'"[^"]*"', "", sample.lstrip("\ufeff").split("\n", 1)[0])
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


#: Characters of one CSV record (a line, or several when a quoted cell holds line ends): a
#: real export's record is a few KB; a longer one is a file without line ends.
MAX_RECORD = 1 << 20
#: Why a row that is not a whole record of the export is skipped.
SHORT_ROW = "fewer fields than the header (a line cut short?)"
UNTERMINATED = "unterminated quote: the file ends inside a quoted cell (cut short?)"
# Read after the last line: it stays a row of its own unless the file ends inside quotes.
_SENTINEL = "\u2063xl-kpis: end of file\u2063"


class Broken(list):
    """The cells of a row that is not a whole record of the export, and why (``reason``)."""

    def __init__(self, cells: Iterable[Any], reason: str):
        super().__init__(cells)
        self.reason = reason


class _Lines:
    """The lines of a text stream for the csv module: none longer than :data:`MAX_RECORD`,
    nor a record made of several, then the sentinel line."""

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream
        self.since = 0                  # characters read since the last record ended
        self.state = 0                  # 0 reading, 1 sentinel due, 2 done

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        if self.state == 0:
            line = self.stream.readline(MAX_RECORD + 1)
            if line:
                self.since += len(line)
                if self.since > MAX_RECORD:
                    raise _TooLong
                return line
            self.state = 1
        if self.state == 1:
            self.state = 2
            return _SENTINEL + "\n"
        raise StopIteration


class _TooLong(Exception):
    """A record longer than MAX_RECORD."""


def csv_sheet(stream: io.TextIOBase, name: str, delimiter: str = ",") -> Sheet:
    """A :class:`Sheet` over an open text stream (closed when the rows are exhausted).

    A record longer than :data:`MAX_RECORD` characters is an ExportFormatError;
    a last record the file ends inside quotes of is a :class:`Broken` row.
    """

    def rows() -> Iterator[Row]:
        lines = _Lines(stream)
        n = 0
        try:
            with stream:
                reader = csv.reader(lines, delimiter=delimiter)
                for cells in reader:
                    lines.since = 0
                    n += 1
                    if n == 1 and cells:
                        cells[0] = cells[0].lstrip("\ufeff")
                    if lines.state == 2:            # the sentinel, or the record it ended
                        if cells == [_SENTINEL]:
                            return
                        last = cells[-1] if cells else ""
                        cut = last.rfind(_SENTINEL)
                        if cut >= 0:
                            cells[-1] = last[:cut].rstrip("\r\n")
                            yield n, Broken(cells, UNTERMINATED)
                            return
                    yield n, cells
        except _TooLong:
            raise ExportFormatError(f"{name}: line {n + 1} is longer than {MAX_RECORD:,} "
                                    "characters (a file without line ends?); refusing to "
                                    "read it") from None
        except UnicodeDecodeError as e:
            raise ExportFormatError(f"{name}: is not UTF-8 text ({e.reason} at byte {e.start}); "
                                    "save it as 'CSV UTF-8'") from e
        except csv.Error as e:
            raise ExportFormatError(f"{name}: is not a readable CSV ({e})") from e

    return Sheet(name, rows())


@contextlib.contextmanager
def _workbook_errors(name: str) -> Iterator[None]:
    """Turn python-calamine's errors (and Rust panics) into :class:`ExportFormatError`."""
    from python_calamine import CalamineError

    try:
        yield
    except CalamineError as e:
        raise ExportFormatError(f"{_base(name)}: is not a readable xlsx workbook ({e})") from e
    except BaseException as e:  # pyo3 turns a Rust panic into PanicException(BaseException)
        if type(e).__name__ != "PanicException":
            raise
        raise ExportFormatError(f"{_base(name)}: is a damaged xlsx workbook ({e})") from e


def _xlsx_sheet(name: str, sheet: str | None) -> Sheet:
    """Rows of a worksheet read with python-calamine (once its cells are known to fit a grid
    of bounded size: :func:`xl_kpis.package.check_cells`)."""
    from python_calamine import CalamineWorkbook

    with _workbook_errors(name):
        book = CalamineWorkbook.from_path(name)
        names = book.sheet_names
        if not names:
            raise ExportFormatError(f"{_base(name)}: the workbook has no worksheet")
        chosen = sheet if sheet in names else names[0]
        with _zip_errors(name), open_zip(name) as z:
            part = worksheets(z).get(chosen)
            if part is None:
                raise ExportFormatError(f"{_base(name)}: sheet {chosen!r} has no worksheet part")
            check_cells(z.read(part), _base(name), part)
        data = book.get_sheet_by_name(chosen).iter_rows()

    def rows() -> Iterator[Row]:
        with _workbook_errors(name):
            for n, cells in enumerate(data, start=1):
                yield n, cells

    return Sheet(f"{_base(name)}[{chosen}]", rows())


# --------------------------------------------------------------------------- rows

RowHook = Callable[[int, list], "str | None"]
PostHook = Callable[[int, list, dict], "str | None"]


def convert_rows(rows: Iterable[Row], columns: Mapping[str, tuple[int, str, str]],
                 converters: Mapping[str, Callable[..., Any]] = CONVERTERS, *,
                 pre: RowHook | None = None, post: PostHook | None = None,
                 blanks: list[tuple[int, str, str]] | None = None,
                 ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Convert data rows to dicts of canonical keys; bad rows go to ``skipped``.

    ``columns`` maps each canonical key to ``(column index, kind, header)``;
    ``converters[kind](cell, header, line)`` converts a cell or raises
    ValueError.  Blank rows are dropped silently, total rows with the reason
    ``"total row"``.  ``pre(line, cells)`` may reject a raw row and
    ``post(line, cells, row)`` a converted one (or complete it in place) by
    returning a reason; a row failing in several columns is reported for the
    first one.

    Rows are converted column by column in chunks, and a converter's result
    may only depend on the cell (header and line only go into its error
    message): equal text cells are converted once.

    ``blanks``, when given, receives ``(line, header, text)`` for every cell of
    a kept row that is not blank but converts to None (``<5``, ``--``,
    ``undefined`` in a number column): what the import reports as read as blank.
    """
    out: list[dict[str, Any]] = []
    skipped: list[tuple[int, str]] = []
    plan = [(col, ColumnConverter(converters[kind]), header) for col, kind, header in columns.values()]
    keys = list(columns)
    for chunk in _chunks(iter(rows), [col for col, _, _ in plan], pre, keep_cells=post is not None):
        values_by_column = []
        marked: list[tuple[int, str, str]] = []          # (row of the chunk, header, text)
        for (_, converter, header), cells in zip(plan, chunk.cells):
            values, failed = converter(cells)
            values_by_column.append(values)
            if blanks is not None and None in values:
                marked += [(chunk.todo[k], header, clean_text(c))
                           for k, (c, v) in enumerate(zip(cells, values))
                           if v is None and not is_blank(c)]
            for k in failed:                       # the converter's own message, with the location
                i = chunk.todo[k]
                if chunk.reasons[i] is None:
                    try:
                        converter.convert(cells[k], header, chunk.lines[i])
                    except ValueError as e:
                        chunk.reasons[i] = str(e)
        converted: list[dict[str, Any] | None] = [None] * len(chunk.lines)
        values_by_row = zip(*values_by_column) if plan else itertools.repeat((), len(chunk.todo))
        for i, values in zip(chunk.todo, values_by_row):
            converted[i] = dict(zip(keys, values))
        for i, (line, cells, reason, row) in enumerate(zip(chunk.lines, chunk.table, chunk.reasons,
                                                           converted)):
            if reason is None and post:
                reason = chunk.reasons[i] = post(line, cells, row)
            if reason is None:
                out.append(row)
            else:
                skipped.append((line, reason))
        if marked:
            blanks += sorted((chunk.lines[i], header, text) for i, header, text in marked
                             if chunk.reasons[i] is None)
    return out, skipped


@dataclass
class _Chunk:
    """Rows converted together: the non-blank rows of a few hundred read."""

    lines: list[int] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)   #: why a row is skipped (so far)
    table: list[list | None] = field(default_factory=list)    #: the cells of each row, if kept
    todo: list[int] = field(default_factory=list)             #: the rows to convert (no reason yet)
    cells: list[list] = field(default_factory=list)           #: their cells, column by column


_CHUNK = 512        # rows read and converted at a time: few enough for their cells to stay in the cache
_FAILED = object()      # what ColumnConverter gives for a cell its converter refuses


def _chunks(rows: Iterator[Row], cols: list[int], pre: RowHook | None, keep_cells: bool) -> Iterator[_Chunk]:
    """The non-blank rows in chunks, with the reasons to skip total rows and those ``pre`` refuses,
    and the cells of the given columns of the other rows (None past the end of a short row)."""
    width = max(cols, default=-1) + 1
    pick = [operator.itemgetter(col) for col in cols]
    while batch := list(itertools.islice(rows, _CHUNK)):
        chunk = _Chunk()
        table = []                     # the rows to convert, padded to ``width``
        for line, cells in batch:
            first = _first_filled(cells)
            if first is None:
                continue
            reason = (cells.reason if isinstance(cells, Broken) else TOTAL_ROW if _is_total(first)
                      else pre(line, cells) if pre else None)
            if reason is None:
                chunk.todo.append(len(chunk.lines))
                table.append(cells if len(cells) >= width else [*cells, *[None] * (width - len(cells))])
            chunk.lines.append(line)
            chunk.reasons.append(reason)
            chunk.table.append(cells if keep_cells else None)
        chunk.cells = [list(map(get, table)) for get in pick]
        yield chunk


class ColumnConverter(dict):
    """Converts the cells of one column, part by part, keeping the results of text cells.

    Parameters
    ----------
    convert : callable
        A converter of :data:`CONVERTERS` (or one like them): its result
        may only depend on the cell.

    Notes
    -----
    ``self[cell]`` is the converted text cell, a placeholder when
    ``convert`` refuses it (those cells are also in ``failed``); results
    known otherwise can be added with ``update``.  Text dates are parsed
    vectorised.  Other cells (numbers, dates from a workbook) are converted
    one by one, since equal numbers of different types (``1`` and ``True``,
    ``0.0`` and ``-0.0``) do not convert alike.
    """

    def __init__(self, convert: Callable[..., Any]):
        super().__init__()
        self.convert = convert
        self.failed: set[str | None] = set()

    def __call__(self, cells: list) -> tuple[list, list[int]]:
        """The converted cells, and the positions of those the converter refuses."""
        if not set(map(type, cells)) <= {str, type(None)}:
            values = [self.attempt(cell) for cell in cells]
            return values, [k for k, v in enumerate(values) if v is _FAILED]
        if self.convert is parse_datetime:
            new = [c for c in dict.fromkeys(cells) if c is not None and c not in self]
            dates = _datetimes_of_texts(new)
            self.update(zip(new, dates))
            self.failed.update(c for c, v in zip(new, dates) if v is _FAILED)
        values = list(map(self.__getitem__, cells))
        refused = self.failed and not self.failed.isdisjoint(cells)
        failed = [k for k, v in enumerate(values) if v is _FAILED] if refused else []
        if len(self) > _MAX_KEPT:
            self.clear()
            self.failed.clear()
        return values, failed

    def __missing__(self, cell: str | None) -> Any:
        value = self[cell] = self.attempt(cell)
        if value is _FAILED:
            self.failed.add(cell)
        return value

    def attempt(self, cell: Any) -> Any:
        """``convert(cell)``, or ``_FAILED`` when it refuses the cell."""
        try:
            return self.convert(cell)
        except ValueError:
            return _FAILED


_MAX_KEPT = 200_000         # results kept per column


def _datetimes_of_texts(texts: list[str]) -> list[Any]:
    """:func:`parse_datetime` of text cells, the usual forms vectorised (``_FAILED``: refused)."""
    from .arrow import datetimes_of_texts

    return [v if v is not None else _attempt_datetime(t) for v, t in zip(datetimes_of_texts(texts), texts)]


def _attempt_datetime(text: str) -> Any:
    """:func:`parse_datetime` of a text cell, or ``_FAILED`` when it is not a date."""
    try:
        return parse_datetime(text)
    except ValueError:
        return _FAILED
