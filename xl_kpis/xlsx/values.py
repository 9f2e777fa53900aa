"""A typed value as a worksheet's XML holds it: the ``t`` attribute and text of a cell.

A cell's value sits in ``<v>`` with its type in ``t``: none for a number,
``b`` for a boolean (``1``/``0``), ``e`` for an error value, ``str`` for the
text a formula gives, ``s`` for an index into the shared strings and
``inlineStr`` for text held in the cell itself (``<is><t>…</t></is>``).
:func:`encode_value` and :func:`decode_value` turn a Python value into that
and back; :func:`constant_xml` gives the content of a cell holding a
constant; :func:`xml_text` escapes text as Excel does.  The book commands
(:mod:`xl_kpis.book.patch`, :mod:`xl_kpis.book.append`) write every value
through these.

Sources: ECMA-376 Part 1, the cell (``c``) element and its ``ST_CellType``
values, and the ``ST_Xstring`` escapes (``_xHHHH_`` for a character XML
cannot hold).
"""

from __future__ import annotations

import math
import re
from typing import Any
from xml.sax.saxutils import escape, unescape

from .errors import ERRORS, Text, of_number

__all__ = ["number_text", "encode_value", "encode_value_b", "decode_value", "xml_text",
           "constant_xml"]


def number_text(x: float) -> str:
    """A finite number as ``<v>`` holds it: a whole number below 1e15 without a decimal point,
    any other as ``repr`` (the shortest text that reads back as the same float).

    >>> number_text(1209.0), number_text(0.1), number_text(1e16), number_text(-3)
    ('1209', '0.1', '1e+16', '-3')
    """
    x = float(x)
    return repr(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def encode_value(value: Any) -> tuple[str | None, str]:
    """A cell value → (``t`` attribute or None for a number, ``<v>`` text).

    A number that is not finite is the error it shows (:func:`~xl_kpis.xlsx.errors.of_number`);
    an error value's text is an error, unless it is :class:`~xl_kpis.xlsx.errors.Text`;
    None is empty text.

    >>> encode_value(2.0), encode_value(True), encode_value("#N/A"), encode_value("a<b")
    ((None, '2'), ('b', '1'), ('e', '#N/A'), ('str', 'a&lt;b'))
    >>> encode_value(float("nan")), encode_value(Text("#N/A"))
    (('e', '#DIV/0!'), ('str', '#N/A'))
    """
    if isinstance(value, bool):
        return "b", "1" if value else "0"
    if isinstance(value, (int, float)):
        x = float(value)
        if not math.isfinite(x):
            return "e", of_number(x)
        return None, number_text(x)
    if value is None:
        value = ""
    s = str(value)          # text that reads like an error (Text) stays text
    return ("e" if s in ERRORS and not isinstance(value, Text) else "str"), escape(s)


_T_STR, _T_E = b"str", b"e"


def encode_value_b(value: Any) -> tuple[bytes | None, bytes]:
    """:func:`encode_value` as bytes (floats and texts, most of a book's values, the fast way).

    >>> encode_value_b(0.25), encode_value_b("#REF!")
    ((None, b'0.25'), (b'e', b'#REF!'))
    """
    tp = type(value)
    if tp is float and math.isfinite(value):
        return None, (repr(int(value)) if value.is_integer() and abs(value) < 1e15
                      else repr(value)).encode()
    if tp is str:
        v = value.encode("utf-8")
        if b"&" in v or b"<" in v or b">" in v:
            v = escape(value).encode("utf-8")
        return (_T_E if value in ERRORS else _T_STR), v
    t, v = encode_value(value)
    return (None if t is None else t.encode()), v.encode("utf-8")


def decode_value(v: str | None, t: str | None) -> Any:
    """A cached ``<v>`` text and its ``t`` as a Python value ("" for none; a shared string
    stays its index's text).

    >>> decode_value("2", None), decode_value("1", "b"), decode_value("a&amp;b", "str")
    (2.0, True, 'a&b')
    """
    if v is None:
        return ""
    if t in ("str", "s", "inlineStr", "e"):
        return unescape(v, {"&quot;": '"'})
    if t == "b":
        return v == "1"
    try:
        return float(v)
    except ValueError:
        return unescape(v)


_ESCAPED = re.compile(r"_x[0-9A-Fa-f]{4}_")
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")


def xml_text(s: str) -> str:
    """Text as the content of a ``<t>`` element.

    ``& < >`` are escaped; characters XML cannot hold become Excel's
    ``_xHHHH_`` escapes, and a literal ``_xHHHH_`` is protected as
    ``_x005F_xHHHH_`` (what Excel and XlsxWriter write).

    >>> xml_text('=HYPERLINK("a&b") <x> _x0041_\\x01')
    '=HYPERLINK("a&amp;b") &lt;x&gt; _x005F_x0041__x0001_'
    """
    s = escape(s)
    if "_x" in s:
        s = _ESCAPED.sub(lambda m: "_x005F" + m.group(0), s)
    if _NOT_XML.search(s):
        s = _NOT_XML.sub(lambda m: f"_x{ord(m.group(0)):04X}_", s)
    return s


#: The start of an inline string's content (text keeps its leading and trailing spaces).
INLINE_START = '<is><t xml:space="preserve">'
INLINE_END = "</t></is>"


def constant_xml(value: Any) -> tuple[str | None, str]:
    """A constant cell's ``t`` attribute (None for a number) and content: text (None as
    empty text) as an inline string (:func:`xml_text`), any other value as its ``<v>``.

    >>> constant_xml("a & b")
    ('inlineStr', '<is><t xml:space="preserve">a &amp; b</t></is>')
    >>> constant_xml(3.5), constant_xml("#DIV/0!")
    ((None, '<v>3.5</v>'), ('e', '<v>#DIV/0!</v>'))
    """
    if value is None:
        value = ""
    if isinstance(value, str) and (isinstance(value, Text) or value not in ERRORS):
        return "inlineStr", f"{INLINE_START}{xml_text(value)}{INLINE_END}"
    t, v = encode_value(value)
    return t, f"<v>{v}</v>"
