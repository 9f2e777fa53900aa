"""The data references of a workbook's charts: their ranges and their cached points.

A chart part (``xl/charts/chartN.xml``) names the cells of each series in a
``<c:f>`` (``Dashboard!$N$11:$N$15``) and caches their values beside it
(``<c:numCache>``/``<c:strCache>``: a point count and one ``<c:pt>`` per
non-blank cell).  Excel and LibreOffice redraw from the cells when they open
the book, but file previews and other viewers draw only the cache, so a
writer that changes the cells must rewrite the cache too.

:func:`rewrite_chart` does both for one chart part: a range the caller
moves (:data:`Ranges`) gets its new extent, and every reference whose cells
the caller knows (:data:`Values`) gets a cache of exactly those values.
References it does not understand (several areas, names) are left as they are.
"""

from __future__ import annotations

import math
import re
import zipfile
from datetime import date, datetime
from typing import Any, Callable, Sequence
from xml.sax.saxutils import escape, unescape

from ..xlsx.dates import to_serial
from ..xlsx.refs import area_text, bounds, sheet_ref
from ..xlsx.books import parse_xml
from ..xlsx.values import number_text

__all__ = ["Area", "Ranges", "Values", "chart_parts", "rewrite_chart", "read_caches",
           "parse_area"]

#: A one-column (or one-row) range: ``(sheet, first row, first col, last row, last col)``,
#: 0-based and inclusive.
Area = tuple[str, int, int, int, int]
#: ``area -> its new area`` for a range that moves, None for one that stays.
Ranges = Callable[[Area], "Area | None"]
#: ``area -> the values of its cells`` in order, None when they are not known.
Values = Callable[[Area], "Sequence[Any] | None"]

_CHART_TYPES = frozenset({"application/vnd.openxmlformats-officedocument.drawingml.chart+xml",
                          "application/vnd.ms-office.chartex+xml"})
_OVERRIDE = "{http://schemas.openxmlformats.org/package/2006/content-types}Override"

# <c:numRef><c:f>…</c:f><c:numCache>…</c:numCache></c:numRef> (any prefix, the cache optional)
_REF = re.compile(rb"(?P<cat><(?:[\w.-]+:)?cat>\s*)?<(?P<p>(?:[\w.-]+:)?)(?P<kind>numRef|strRef)>\s*"
                  rb"<(?P=p)f>(?P<f>[^<]*)</(?P=p)f>(?P<rest>.*?)</(?P=p)(?P=kind)>", re.S)
_FORMAT = re.compile(rb"<(?:[\w.-]+:)?formatCode>([^<]*)</(?:[\w.-]+:)?formatCode>")
_PT = re.compile(rb'<(?:[\w.-]+:)?pt\s+idx="(\d+)"[^>]*>\s*<(?:[\w.-]+:)?v>([^<]*)</')
_COUNT = re.compile(rb'<(?:[\w.-]+:)?ptCount\s+val="(\d+)"')


def chart_parts(z: zipfile.ZipFile) -> list[str]:
    """The workbook's chart parts (as ``[Content_Types].xml`` lists them)."""
    names = set(z.namelist())
    types = parse_xml(z, "[Content_Types].xml")
    parts = (o.get("PartName", "").lstrip("/") for o in types.iter(_OVERRIDE)
             if o.get("ContentType") in _CHART_TYPES)
    return [p for p in parts if p in names]


def parse_area(text: str) -> Area | None:
    """A ``<c:f>`` text as one column or row of cells (None for anything else).

    >>> parse_area("Dashboard!$N$11:$N$15"), parse_area("'My data'!A1")
    (('Dashboard', 10, 13, 14, 13), ('My data', 0, 0, 0, 0))
    """
    found = sheet_ref(text)
    if found is None:
        return None
    sheet, ref = found
    try:
        r0, c0, r1, c1 = bounds(ref)
    except ValueError:        # row 0
        return None
    if r1 < r0 or c1 < c0 or (r1 != r0 and c1 != c0):
        return None
    return sheet, r0, c0, r1, c1


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, (date, datetime)):
        return to_serial(v)
    return None


def _text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (date, datetime)):
        v = to_serial(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def _cache(p: bytes, kind: bytes, values: Sequence[Any], old_rest: bytes) -> bytes:
    """A ``numCache``/``strCache`` element holding ``values`` (``old_rest``: what followed
    the ``<c:f>`` before, for the number format of the points)."""
    pts = []
    for i, v in enumerate(values):
        if kind == b"numRef":
            x = _number(v)
            if x is not None:
                pts.append(b'<%spt idx="%d"><%sv>%s</%sv></%spt>' % (
                    p, i, p, number_text(x).encode(), p, p))
        else:
            t = _text(v)
            if t is not None:
                pts.append(b'<%spt idx="%d"><%sv>%s</%sv></%spt>' % (
                    p, i, p, escape(t).encode("utf-8"), p, p))
    count = b'<%sptCount val="%d"/>' % (p, len(values))
    if kind == b"numRef":
        fmt = _FORMAT.search(old_rest)
        code = fmt.group(1) if fmt else b"General"
        return (b"<%snumCache><%sformatCode>%s</%sformatCode>" % (p, p, code, p) + count
                + b"".join(pts) + b"</%snumCache>" % p)
    return b"<%sstrCache>" % p + count + b"".join(pts) + b"</%sstrCache>" % p


def _same_cache(rest: bytes, kind: bytes, values: Sequence[Any]) -> bool:
    """Whether the cache in ``rest`` already holds ``values`` (numbers compared as numbers:
    ``1855.0`` and ``1855`` are the same point)."""
    count = _COUNT.search(rest)
    if count is None or int(count.group(1)) != len(values):
        return False
    old = {int(i): unescape(v.decode("utf-8")) for i, v in _PT.findall(rest)}
    new = {}
    for i, v in enumerate(values):
        x = _number(v) if kind == b"numRef" else _text(v)
        if x is not None:
            new[i] = x
    if old.keys() != new.keys():
        return False
    for i, x in new.items():
        if isinstance(x, float):
            try:
                if float(old[i]) != x:
                    return False
            except ValueError:
                return False
        elif old[i] != x:
            return False
    return True


def rewrite_chart(xml: bytes, ranges: Ranges, values: Values) -> bytes:
    """A chart part with moved ranges and the caches of the references it knows rewritten.

    Every ``numRef``/``strRef`` whose ``<c:f>`` is one column or row of cells
    takes the new extent ``ranges`` gives (if any), then a cache of the
    values ``values`` gives for it (if known: else its cache stays).  The
    categories of a series become a ``numRef`` when all their values are
    numbers or dates (a date axis), a ``strRef`` otherwise.
    Returns ``xml`` itself when nothing changes.
    """

    def sub(m: re.Match) -> bytes:
        text = unescape(m["f"].decode("utf-8"), {"&apos;": "'", "&quot;": '"'})
        area = parse_area(text)
        if area is None:
            return m.group(0)
        moved = ranges(area)
        f = m["f"]
        if moved is not None and moved != area:
            area = moved
            f = escape(area_text(*area)).encode("utf-8")
        known = values(area)
        p, kind, rest = m["p"], m["kind"], m["rest"]
        if known is not None:
            if m["cat"]:   # category labels: numbers (dates) when all are, else text
                numbers = [_number(v) for v in known if v is not None and v != ""]
                kind = b"numRef" if numbers and None not in numbers else b"strRef"
            if f == m["f"] and kind == m["kind"] and _same_cache(rest, kind, known):
                return m.group(0)
            rest = _cache(p, kind, known, rest)
        return b"%s<%s%s><%sf>%s</%sf>%s</%s%s>" % (m["cat"] or b"", p, kind, p, f, p, rest,
                                                      p, kind)

    new = _REF.sub(sub, xml)
    return xml if new == xml else new


def read_caches(xml: bytes) -> list[tuple[str, str, int, dict[int, str]]]:
    """Every reference of a chart part with its cache, as a viewer that draws from the
    cache sees it: ``(kind, <c:f> text, point count, {index: value text})``."""
    out = []
    for m in _REF.finditer(xml):
        rest = m["rest"]
        count = _COUNT.search(rest)
        pts = {int(i): unescape(v.decode("utf-8")) for i, v in _PT.findall(rest)}
        out.append((m["kind"].decode(), unescape(m["f"].decode("utf-8"), {"&apos;": "'"}),
                    int(count.group(1)) if count else 0, pts))
    return out
