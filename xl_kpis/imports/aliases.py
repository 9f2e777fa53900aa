"""Header aliases of the TikTok exports and the header matching shared by all parsers.

Each export kind has an ordered table of :class:`Field` s: a canonical key
(the column of the target workbook table), the kind of value it holds (a
converter in :data:`xl_kpis.imports.clean.CONVERTERS`, or one the parser adds:
"period" in ads.py, "daymonth" in studio.py) and the header
strings that may carry it, best first.  Aliases are compared after
:func:`~xl_kpis.imports.clean.normalise_header`, so case, NBSP, a BOM and a
trailing ``(USD)`` / ``(%)`` do not matter.  Where the aliases come from is in
``docs/tiktok-exports.md`` (§A ads, §B orders, §D Studio); the lists are meant to
grow as new header spellings are met.

To add a spelling, append it to the field's aliases; to add a column, add a
:class:`Field` (and the column to the workbook table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from .clean import (SHORT_ROW, Broken, ExportFormatError, ImportResult, Row, Sheet, is_blank,
                    is_total_row, split_header)

__all__ = ["Field", "HeaderMap", "ADS_FIELDS", "ORDER_FIELDS", "OVERVIEW_FIELDS",
           "FOLLOWER_FIELDS", "CONTENT_FIELDS", "BREAKDOWN_HEADERS", "match_headers",
           "find_header", "currency_of", "make_result"]


@dataclass(frozen=True)
class Field:
    """One canonical column: its key, value kind and header aliases (best first)."""

    key: str
    kind: str
    aliases: tuple[str, ...]
    money: bool = False

    @property
    def normalised(self) -> tuple[str, ...]:
        """The aliases as :func:`split_header` normalises headers."""
        return tuple(split_header(a)[0] for a in self.aliases)


def _f(key: str, kind: str, *aliases: str, money: bool = False) -> Field:
    return Field(key, kind, aliases, money)


def _views_at(p: int) -> Field:
    """``views_pNN`` ← "Video views at NN%", "Video views (PNN)", ``video_views_pNN``."""
    return _f(f"views_p{p}", "number", f"Video views at {p}%", f"Video views (P{p})",
              f"video_views_p{p}", f"{p}% video views")


# §A TikTok Ads Manager report.  "Clicks (destination)" is preferred to "Clicks (all)":
# CTR/CPC are defined on destination clicks (docs/kpi-definitions.md §1).  Kind "period": a date,
# or the first day of a "2026-07-01 ~ 2026-07-31" range (see ads.py).
ADS_FIELDS: tuple[Field, ...] = (
    _f("date", "period", "Date", "By Day", "Day", "Date Created", "stat_time_day"),
    _f("campaign", "text", "Campaign name", "Campaign"),
    _f("ad_group", "text", "Ad group name", "Ad group"),
    _f("ad_name", "text", "Ad name"),
    _f("ad_id", "code", "Ad ID", "ad_id"),
    _f("cost", "number", "Cost", "Spend", "Total cost", money=True),
    _f("impressions", "number", "Impressions"),
    _f("clicks", "number", "Clicks (destination)", "Clicks", "Clicks (all)"),
    _f("conversions", "number", "Conversions", "Purchases (Shop)", "Complete payment", "Purchases"),
    _f("revenue", "number", "Total complete payment value", "Complete payment value",
       "Gross revenue (Shop)", "Total purchase value", "Purchase value",
       "total_complete_payment_rate", money=True),  # the API name is a value, not a rate (§A)
    _f("new_customers", "number", "New customers"),
    _f("video_views", "number", "Video views", "Video views (all)", "video_play_actions"),
    _f("views_2s", "number", "2-second video views", "video_watched_2s"),
    _f("views_6s", "number", "6-second video views", "video_watched_6s"),
    _views_at(25), _views_at(50), _views_at(75), _views_at(100),
    _f("profile_visits", "number", "Profile visits", "Paid profile visits", "profile_visits"),
    _f("likes", "number", "Likes", "Paid likes"),
    _f("comments", "number", "Comments", "Paid comments"),
    _f("shares", "number", "Shares", "Paid shares"),
    _f("follows", "number", "Follows", "Paid follows"),
)

#: First-column headers of breakdown exports (§A): kept as the ``breakdown`` text.
BREAKDOWN_HEADERS: frozenset[str] = frozenset({
    "audience", "country", "country/region", "region", "age", "gender", "placement",
    "platform", "device", "os", "language", "interest category",
})

# §B TikTok Shop Seller Center order export, sheet "OrderSKUList".
ORDER_FIELDS: tuple[Field, ...] = (
    _f("order_id", "id", "Order ID"),
    _f("sku_id", "id", "SKU ID"),
    _f("status", "text", "Order Status"),
    _f("substatus", "text", "Order Substatus"),
    _f("cancel_type", "text", "Cancelation/Return Type", "Cancellation/Return Type"),
    _f("product", "text", "Product Name"),
    _f("variation", "text", "Variation"),
    _f("seller_sku", "text", "Seller SKU"),
    _f("quantity", "number", "Quantity"),
    _f("returned_qty", "number", "Sku Quantity of return"),
    _f("unit_price", "number", "SKU Unit Original Price", money=True),
    _f("sku_subtotal", "number", "SKU Subtotal After Discount", money=True),
    _f("order_amount", "number", "Order Amount", money=True),
    _f("refund", "number", "Order Refund Amount", money=True),
    _f("created", "datetime", "Created Time"),
    _f("paid", "datetime", "Paid Time"),
    _f("delivered", "datetime", "Delivered Time"),
    _f("cancelled", "datetime", "Cancelled Time", "Canceled Time"),
    _f("buyer", "text", "Buyer Username"),
    _f("buyer_message", "text", "Buyer Message"),
    _f("country", "text", "Country"),
    _f("state", "text", "State", "Province", "State/Province"),
    _f("category", "text", "Product Category"),
)

# §D TikTok Studio.  Dates there have no year: kind "daymonth" (see studio.py).
OVERVIEW_FIELDS: tuple[Field, ...] = (
    _f("date", "daymonth", "Date"),
    _f("views", "number", "Video Views"),
    _f("profile_views", "number", "Profile Views"),
    _f("likes", "number", "Likes"),
    _f("comments", "number", "Comments"),
    _f("shares", "number", "Shares"),
)
FOLLOWER_FIELDS: tuple[Field, ...] = (
    _f("date", "daymonth", "Date"),
    _f("followers", "number", "Followers"),
)
CONTENT_FIELDS: tuple[Field, ...] = (
    _f("video_link", "text", "Video link"),
    _f("title", "text", "Video title"),
    _f("posted", "daymonth", "Post time", "Posted", "Time"),
    _f("likes", "number", "Total likes"),
    _f("comments", "number", "Total comments"),
    _f("shares", "number", "Total shares"),
    _f("views", "number", "Total views"),
)


@dataclass
class HeaderMap:
    """Which column carries which canonical key.

    ``columns``: key → (column index, kind, header as written), in field
    order; ``units``: key → the unit stripped from its header (``"USD"``,
    ``"%"``); ``unmapped``: non-empty headers no field claimed.
    """

    columns: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)


def match_headers(headers: Sequence[Any], fields: Sequence[Field]) -> HeaderMap:
    """Map header cells to fields: per field the first alias present wins; a column is used once.

    >>> m = match_headers(["Campaign name", "Clicks (all)", "Clicks (destination)", "Cost (USD)", "CPM"],
    ...                   ADS_FIELDS)
    >>> m.columns["clicks"][:2], m.columns["cost"][0], m.units, m.unmapped
    ((2, 'number'), 3, {'cost': 'USD'}, ['Clicks (all)', 'CPM'])
    """
    written = ["" if is_blank(h) else str(h).strip(" \t\r\n\u00a0\ufeff") for h in headers]
    split = [split_header(h) for h in written]
    where: dict[str, int] = {}
    for i, (norm, _) in enumerate(split):
        if norm:
            where.setdefault(norm, i)
    result = HeaderMap(headers=written)
    used: set[int] = set()
    for f in fields:
        for alias in f.normalised:
            i = where.get(alias)
            if i is not None and i not in used:
                used.add(i)
                result.columns[f.key] = (i, f.kind, written[i])
                if split[i][1]:
                    result.units[f.key] = split[i][1]
                break
    result.unmapped = [h for i, h in enumerate(written) if h and i not in used]
    return result


def find_header(sheet: Sheet, fields: Sequence[Field], *, required_any: frozenset[str] | set[str],
                min_matches: int = 2, scan: int = 30) -> tuple[int, HeaderMap, Iterator[Row]]:
    """Locate the header row among the first ``scan`` rows; return it and the rows after it.

    A header row matches at least ``min_matches`` fields, one of them in
    ``required_any``.  Raises :class:`ExportFormatError` when no row does.
    A row after it with fewer cells than the header (a line cut short) comes
    as a :class:`~xl_kpis.imports.clean.Broken` row, unless it is blank or a
    total row.
    """
    seen: list[Row] = []
    rows = iter(sheet.rows)
    for line, cells in rows:
        seen.append((line, cells))
        if any(isinstance(c, str) and c.strip() for c in cells):
            m = match_headers(cells, fields)
            if len(m.columns) >= min_matches and required_any & m.columns.keys():
                width = max((i + 1 for i, h in enumerate(m.headers) if h), default=0)
                return line, m, _whole_rows(rows, width)
        if len(seen) >= scan:
            break
    expected = ", ".join(repr(f.aliases[0]) for f in fields[:4])
    raise ExportFormatError(f"{sheet.name}: no recognisable header row in the first {scan} rows "
                            f"(expected columns such as {expected})")


class _whole_rows:
    """The rows, those with fewer than ``width`` cells (and something in them that is not a
    total) as :class:`Broken` rows; ``close()`` closes the rows read from (and their file)."""

    def __init__(self, rows: Iterator[Row], width: int):
        self.rows, self.width = rows, width

    def __iter__(self) -> Iterator[Row]:
        return self

    def __next__(self) -> Row:
        line, cells = next(self.rows)
        if len(cells) < self.width and not isinstance(cells, Broken) and \
                not all(is_blank(c) for c in cells) and not is_total_row(cells):
            cells = Broken(cells, SHORT_ROW)
        return line, cells

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def currency_of(hmap: HeaderMap, fields: Sequence[Field], source: str) -> str | None:
    """The currency code written in the money headers (``Cost (USD)``), None if none.

    Two different codes in one file would make cost and revenue incomparable,
    so that is refused.
    """
    money = {f.key for f in fields if f.money}
    codes = {u for k, u in hmap.units.items() if k in money and u != "%"}
    if len(codes) > 1:
        raise ExportFormatError(f"{source}: money columns in different currencies ({', '.join(sorted(codes))})")
    return codes.pop() if codes else None


def make_result(kind: str, table: str, fields: Sequence[Field], hmap: HeaderMap,
                rows: list[dict[str, Any]], skipped: list[tuple[int, str]],
                key_fields: tuple[str, ...], source: str) -> ImportResult:
    """An :class:`ImportResult` for rows converted with ``hmap`` (currency, fields, unmapped filled in)."""
    return ImportResult(kind=kind, table=table, rows=rows, key_fields=key_fields, skipped=skipped,
                        unmapped_headers=list(hmap.unmapped),
                        currency=currency_of(hmap, fields, source), source=source,
                        fields=tuple(hmap.columns))
