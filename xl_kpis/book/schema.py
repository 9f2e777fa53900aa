"""The template workbook as data: tables, settings, KPI rows, benchmarks, layout.

Everything a builder, a refresher or an importer needs to know about the
workbook is declared here, once:

* :data:`TABLES` — the four input tables (sheet = table name).  Each
  :class:`Input` column has a header, a canonical key (importers produce rows
  keyed by these), a kind (number format and data validation follow from it)
  and a help text; each :class:`Computed` column is "UDF + input columns" and
  each :class:`Derived` column a small native formula.
* :data:`SETTINGS` — the settings cells on the Start sheet, as defined names.
* :data:`KPI_SECTIONS`, :data:`ARRAYS` — the shop-level KPIs of the KPIs sheet.
* :data:`BENCHMARKS`, :data:`CLV_EXAMPLES` — the Benchmarks sheet.
* :data:`TILES` — the Dashboard's headline numbers.
* :data:`LAYOUT` — the blocks of the KPIs sheet and the Dashboard's chart
  data, placed relative to each other (an array whose size follows its data
  has nothing below it).
* :func:`plan` — where every cell outside the tables goes (its value or
  formula and its style) and the Dashboard's charts, given the table sizes
  and the array result shapes.

Formulas are expression trees (:mod:`xl_kpis.book.formulas`): their text and
their cached values both come from the tree.  Only the Excel functions of
:mod:`xl_kpis.functions` (the UDFs' code) and :data:`NATIVE_FUNCTIONS` are called.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Iterator, Mapping, Sequence

from .layout import Block, Placed, place
from .formulas import (NATIVE_FUNCTIONS, NATIVE_OPERATORS, Call, Column, F, Lit, Name, Node,
                       Op, Ref, RenderContext, This, render, walk)

__all__ = [
    "NATIVE_FUNCTIONS", "NATIVE_OPERATORS", "FMT", "KINDS", "Rule", "Input", "Computed",
    "Derived", "Table", "TABLES", "TABLE", "CONTENT_TYPES", "ORDER_STATUSES",
    "DELIVERED_STATUSES", "present", "any_of", "when_measured", "Setting",
    "SETTINGS", "SETTING", "Kpi", "KPI_SECTIONS", "KPIS", "ArrayBlock", "ARRAYS", "ARRAY",
    "CUSTOMER_ARRAYS", "CUSTOMER_ROWS", "CUSTOMERS_SHEET", "CLV_MONTHS", "CLV_DISCOUNT",
    "Benchmark", "BENCHMARKS", "BENCHMARK", "rating", "ClvExample", "CLV_EXAMPLES", "TILES",
    "ChartSpec", "SHEETS", "CONFIG_SHEET", "CONFIG", "WIDTHS", "Cell", "Plan", "plan",
    "rows_to_columns", "empty_tables", "all_formulas", "input_cells", "LAYOUT", "layout", "DASH_ARRAYS",
]

# --- number formats ------------------------------------------------------------------

#: Number formats by name.
FMT = {
    "int": "#,##0",
    "number": "#,##0.00",
    "money": "#,##0.00",
    "percent": "0.00%",
    "percent1": "0.0%",
    "ratio": '0.00"x"',
    "rating": "0.00",
    "months": '0.0" mo"',
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
    "month": "mmm yyyy",
    "text": "@",
    "general": "General",
}


# --- input columns ---------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """A data validation rule of an input cell.

    ``validate`` is ``"decimal"``, ``"integer"``, ``"date"`` or ``"list"``;
    ``minimum``/``maximum`` bound numbers and dates; ``choices`` is the list.
    """

    validate: str
    minimum: Any = None
    maximum: Any = None
    choices: tuple[str, ...] = ()
    message: str = ""


_DATE_MIN, _DATE_MAX = date(2000, 1, 1), date(2100, 12, 31)

#: Per column kind: number format, validation rule and default width.
KINDS: dict[str, tuple[str | None, Rule | None, float]] = {
    "text": (None, None, 18),
    "id": (FMT["text"], None, 21),          # long ids stay text (no 1.2E+17)
    "choice": (None, None, 16),             # rule built from the choices
    "int": (FMT["int"], Rule("integer", 0, None, message="a whole number, 0 or more"), 9),
    "number": (FMT["number"], Rule("decimal", 0, None, message="a number, 0 or more"), 10),
    "money": (FMT["money"], Rule("decimal", 0, None, message="an amount of money, 0 or more"),
              12),
    "percent": (FMT["percent1"], Rule("decimal", 0, 1, message="a percentage, 0% to 100%"),
                10),
    "rating": ("0", Rule("integer", 1, 5, message="a star rating: a whole number 1 to 5"), 8),
    "date": (FMT["date"], Rule("date", _DATE_MIN, _DATE_MAX, message="a date (yyyy-mm-dd)"),
             12),
    "month": (FMT["month"], Rule("date", _DATE_MIN, _DATE_MAX,
                                 message="the first day of the month (yyyy-mm-01)"), 11),
    "datetime": (FMT["datetime"], Rule("date", _DATE_MIN, _DATE_MAX,
                                       message="a date and time (yyyy-mm-dd hh:mm)"), 16),
}


def present(node: Node) -> Node:
    """``node<>""``: the cell holds something (a number, text or an error, which then
    propagates)."""
    return Op("<>", node, Lit(""))


def any_of(conds: Sequence[Node]) -> Node:
    """One condition, or ``OR`` of several."""
    return conds[0] if len(conds) == 1 else F.OR(*conds)


def when_measured(expr: Node, conds: Sequence[Node]) -> Node:
    """``expr`` where every condition holds, else blank: ``IF(AND(c1,c2),expr,"")``.

    The template's "not measured": a result whose inputs are missing is blank
    (and so is its rating), never a measured-looking 0.
    """
    if not conds:
        return expr
    return F.IF(conds[0] if len(conds) == 1 else F.AND(*conds), expr, "")


def _header_width(header: str) -> float:
    """A column width that shows a (wrapped, two-line) header: its longest word fits."""
    return max(len(w) for w in header.split()) + 2.5


@dataclass(frozen=True)
class Input:
    """An input column: typed or pasted by the seller, or filled by an importer.

    Parameters
    ----------
    header : str
        The column header in the workbook.
    key : str
        The canonical key importers use for this column.
    kind : str
        One of :data:`KINDS`: ``text``, ``id``, ``choice``, ``int``, ``number``,
        ``money``, ``percent``, ``rating``, ``date``, ``month``, ``datetime``.
    help : str
        One line shown when the cell is selected.
    choices : tuple of str
        The list of a ``choice`` column.
    width : float, optional
        Column width (characters); the kind's default otherwise.
    """

    header: str
    key: str
    kind: str = "int"
    help: str = ""
    choices: tuple[str, ...] = ()
    width: float | None = None

    @property
    def fmt(self) -> str | None:
        return KINDS[self.kind][0]

    @property
    def rule(self) -> Rule | None:
        if self.kind == "choice":
            return Rule("list", choices=self.choices, message="one of the list")
        return KINDS[self.kind][1]

    @property
    def col_width(self) -> float:
        return self.width or max(KINDS[self.kind][2], _header_width(self.header))


@dataclass(frozen=True)
class Computed:
    """A computed column: a UDF applied to input columns of the same row.

    ``inputs`` are headers of the table (a pair of headers is the range of
    adjacent cells between them) or formula nodes (e.g. ``Name("Margin")``).
    ``needs`` lists the inputs the result cannot do without, as groups of
    headers of which one must hold a value (default: every header input);
    a row where a group is blank shows blank, "not measured", not a rate of 0.
    The formula ``=IF(AND([@Revenue]<>"",[@Cost]<>""),ROAS([@Revenue],[@Cost]),"")``
    and its cached values are both derived from this declaration.
    """

    header: str
    udf: str
    inputs: tuple[str | tuple[str, str] | Node, ...]
    fmt: str = FMT["percent"]
    help: str = ""
    width: float = 9
    needs: tuple[tuple[str, ...], ...] | None = None

    @property
    def needed(self) -> tuple[tuple[str, ...], ...]:
        """The groups of headers of which one must hold a value (see ``needs``)."""
        if self.needs is not None:
            return self.needs
        return tuple((x,) if isinstance(x, str) else x for x in self.inputs
                     if isinstance(x, (str, tuple)))

    @property
    def expr(self) -> Node:
        args = []
        for x in self.inputs:
            if isinstance(x, str):
                args.append(This(x))
            elif isinstance(x, tuple):
                args.append(This(*x))
            else:
                args.append(x)
        return when_measured(getattr(F, self.udf)(*args),
                             [any_of([present(This(h)) for h in g]) for g in self.needed])

    @property
    def col_width(self) -> float:
        return max(self.width, _header_width(self.header))


@dataclass(frozen=True)
class Derived:
    """A computed column given by a native formula (IF, OR, +: see NATIVE_FUNCTIONS)."""

    header: str
    expr: Node
    fmt: str | None = None
    help: str = ""
    width: float = 14

    @property
    def col_width(self) -> float:
        return max(self.width, _header_width(self.header))


@dataclass(frozen=True)
class Table:
    """An input table on its own sheet (the sheet is named like the table).

    The title is on row 1, a one-line help on row 2, a hint on row 3, the
    header on row 4 (``header_row`` = 3, 0-based) and the data below it.
    """

    name: str
    title: str
    help: str
    columns: tuple[Input | Computed | Derived, ...]
    header_row: int = 3

    @property
    def sheet(self) -> str:
        return self.name

    @property
    def inputs(self) -> tuple[Input, ...]:
        return tuple(c for c in self.columns if isinstance(c, Input))

    @property
    def computed(self) -> tuple[Computed | Derived, ...]:
        return tuple(c for c in self.columns if not isinstance(c, Input))

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(c.header for c in self.columns)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.inputs)

    def header_of(self, key: str) -> str:
        """The header of the input column with canonical key ``key``."""
        for c in self.inputs:
            if c.key == key:
                return c.header
        raise KeyError(f"table {self.name} has no input column {key!r}")

    def key_of(self, header: str) -> str:
        """The canonical key of the input column headed ``header``."""
        for c in self.inputs:
            if c.header == header:
                return c.key
        raise KeyError(f"table {self.name} has no input column {header!r}")

    def col(self, header: str) -> int:
        """The 0-based sheet column of a header."""
        return self.headers.index(header)

    def formula(self, header: str, display: bool = False, officejs: bool = False) -> str:
        """The formula of a computed column, as stored (``display``: as Excel shows it;
        ``officejs``: UDF calls spelled as for xlwings Lite, see :class:`RenderContext`)."""
        c = self.computed[[x.header for x in self.computed].index(header)]
        return render(c.expr, RenderContext(self.sheet, table=self.name, display=display,
                                            officejs=officejs))

    @property
    def first_data_row(self) -> int:
        return self.header_row + 1


def _pct(header: str, udf: str, *inputs, help: str = "") -> Computed:
    return Computed(header, udf, inputs, FMT["percent"], help)


def _money(header: str, udf: str, *inputs, help: str = "") -> Computed:
    return Computed(header, udf, inputs, FMT["money"], help)


CONTENT_TYPES = ("tutorial", "unboxing", "challenge", "review", "behind the scenes", "other")
ORDER_STATUSES = ("Unpaid", "To ship", "Shipped", "Delivered", "Completed", "Cancelled")
#: Statuses that say an order was delivered (the Delivered order column counts them when
#: the export has no delivered time).
DELIVERED_STATUSES = ("Delivered", "Completed")

CAMPAIGNS = Table(
    "Campaigns", "Ad campaigns",
    "One row per campaign (or per ad and day) from the TikTok Ads Manager report."
    " Money in your account currency; grey columns are computed.",
    (
        Input("Date", "date", "date", "Start date of the row's reporting period"),
        Input("Period end", "period_end", "date", "Last day of the row's reporting period"
              " (blank: the day of Date alone)"),
        Input("Campaign", "campaign", "text", "Campaign name", width=24),
        Input("Ad group", "ad_group", "text", "Ad group name", width=18),
        Input("Ad name", "ad_name", "text", "Ad name", width=20),
        Input("Ad ID", "ad_id", "id", "Ad ID (kept as text)"),
        Input("Cost", "cost", "money", "Ad spend"),
        Input("Impressions", "impressions", "int", "Impressions"),
        Input("Clicks", "clicks", "int", "Destination clicks"),
        Input("Conversions", "conversions", "int", "Purchases / complete payments"),
        Input("Revenue", "revenue", "money", "Attributed revenue (Gross revenue (Shop) or"
              " Complete payment value)"),
        Input("New customers", "new_customers", "int", "First-time buyers acquired"),
        Input("Video views", "video_views", "int", "Video views (plays)"),
        Input("2s views", "views_2s", "int", "2-second video views"),
        Input("6s views", "views_6s", "int", "6-second video views"),
        Input("Views 25%", "views_p25", "int", "Video views at 25%"),
        Input("Views 50%", "views_p50", "int", "Video views at 50%"),
        Input("Views 75%", "views_p75", "int", "Video views at 75%"),
        Input("Views 100%", "views_p100", "int", "Video views at 100%"),
        Input("Profile visits", "profile_visits", "int", "Paid profile visits"),
        Input("Likes", "likes", "int", "Paid likes"),
        Input("Comments", "comments", "int", "Paid comments"),
        Input("Shares", "shares", "int", "Paid shares"),
        Input("Follows", "follows", "int", "Paid follows"),
        _pct("CTR", "CTR", "Clicks", "Impressions", help="clicks / impressions"),
        _money("CPC", "CPC", "Cost", "Clicks", help="cost / clicks"),
        _money("CPM", "CPM", "Cost", "Impressions", help="cost per 1,000 impressions"),
        _pct("CVR", "CONVERSION_RATE", "Conversions", "Clicks",
             help="conversions / clicks"),
        _money("CPA", "CPA", "Cost", "Conversions", help="cost / conversions"),
        Computed("ROAS", "ROAS", ("Revenue", "Cost"), FMT["ratio"], "revenue / cost"),
        _pct("ROI", "ROI", "Revenue", "Cost", Name("Margin"),
             help="(revenue x margin - cost) / cost"),
        _money("CAC", "CAC", "Cost", "New customers", help="cost / new customers"),
        _pct("Completion rate", "COMPLETION_RATE", "Views 100%", "Video views",
             help="views at 100% / video views"),
        Computed("ER", "ENGAGEMENT_RATE", ("Likes", "Comments", "Shares", "Video views"),
                 FMT["percent"], "(likes + comments + shares) / video views",
                 needs=(("Likes", "Comments", "Shares"), ("Video views",))),
    ),
)

VIDEOS = Table(
    "Videos", "Organic videos",
    "One row per video (TikTok Studio content export, plus what it lacks: saves,"
    " completed views, profile visits, orders and revenue). Pick the content type from"
    " the list.",
    (
        Input("Video link", "video_link", "text", "Link to the video", width=40),
        Input("Title", "title", "text", "Video title or caption", width=34),
        Input("Posted", "posted", "date", "Date posted"),
        Input("Content type", "content_type", "choice", "What kind of content it is",
              choices=CONTENT_TYPES, width=17),
        Input("Views", "views", "int", "Total views"),
        Input("Likes", "likes", "int", "Likes"),
        Input("Comments", "comments", "int", "Comments"),
        Input("Shares", "shares", "int", "Shares"),
        Input("Saves", "saves", "int", "Saves (favourites)"),
        Input("Completed views", "completed_views", "int", "Views watched to the end"),
        Input("Profile visits", "profile_visits", "int", "Profile visits from this video"),
        Input("Orders", "orders", "int", "Orders attributed to the video"),
        Input("Revenue", "revenue", "money", "Revenue (GMV) attributed to the video"),
        Derived("Engagements",
                F.IF(Op("=", This("Views"), Lit("")), "",
                     Op("+", Op("+", Op("+", This("Likes"), This("Comments")),
                                This("Shares")), This("Saves"))),
                FMT["int"], "likes + comments + shares + saves", width=13),
        Computed("ER", "ENGAGEMENT_RATE", ("Likes", "Comments", "Shares", "Views", "Saves"),
                 FMT["percent"], "(likes + comments + shares + saves) / views",
                 needs=(("Likes", "Comments", "Shares", "Saves"), ("Views",))),
        _pct("Completion rate", "COMPLETION_RATE", "Completed views", "Views",
             help="completed views / views"),
        _pct("Profile visit rate", "PROFILE_VISIT_RATE", "Profile visits", "Views",
             help="profile visits / views"),
        _money("AOV", "AOV", "Revenue", "Orders", help="revenue / orders"),
    ),
)


def _cancelled() -> Node:
    return F.OR(Op("=", This("Status"), Lit("Cancelled")),
                Op("=", This("Status"), Lit("Canceled")),
                Op("=", This("Order ID"), Lit("")))


ORDERS = Table(
    "Orders", "Order lines",
    "The TikTok Shop Seller Center order export: one row per SKU line (an order with"
    " three products has three rows, each with the whole order amount). Keep Order ID as"
    " text.",
    (
        Input("Order ID", "order_id", "id", "Order ID (text: 18-19 digits)"),
        Input("SKU ID", "sku_id", "id", "SKU ID (text)"),
        Input("Status", "status", "choice", "Order status", choices=ORDER_STATUSES),
        Input("Substatus", "substatus", "text", "Order substatus", width=15),
        Input("Cancel type", "cancel_type", "text", "Cancel / return type", width=14),
        Input("Product", "product", "text", "Product name", width=28),
        Input("Variation", "variation", "text", "Variation", width=14),
        Input("Seller SKU", "seller_sku", "text", "Seller SKU", width=14),
        Input("Quantity", "quantity", "int", "Units on the line"),
        Input("Returned qty", "returned_qty", "int", "Units returned (Sku Quantity of return)"),
        Input("Unit price", "unit_price", "money", "Unit price"),
        Input("SKU subtotal", "sku_subtotal", "money", "Line subtotal after discounts"),
        Input("Order amount", "order_amount", "money", "Order amount (repeated on each line"
              " of the order)"),
        Input("Refund", "refund", "money", "Order refund amount"),
        Input("Created", "created", "datetime", "Created time"),
        Input("Paid", "paid", "datetime", "Paid time"),
        Input("Delivered", "delivered", "datetime", "Delivered time (blank if not delivered)"),
        Input("Cancelled", "cancelled", "datetime", "Cancelled time (blank if not cancelled)"),
        Input("Buyer", "buyer", "text", "Buyer username (the customer key)", width=18),
        Input("Buyer message", "buyer_message", "text", "Buyer message", width=24),
        Input("Country", "country", "text", "Country", width=14),
        Input("State", "state", "text", "State / province", width=14),
        Input("Category", "category", "text", "Product category", width=16),
        Input("Rating", "rating", "rating", "The buyer's star rating 1-5, if any"),
        Derived("Counted order", F.IF(_cancelled(), "", This("Order ID")), FMT["text"],
                "the Order ID, blank for cancelled orders: orders are counted on this column",
                width=21),
        Derived("Delivered order",
                F.IF(Op("=", This("Counted order"), Lit("")), "",
                     F.IF(F.OR(present(This("Delivered")),
                               *(Op("=", This("Status"), Lit(x)) for x in DELIVERED_STATUSES)),
                          This("Order ID"), "")),
                FMT["text"], "the Order ID when the order was delivered: it has a delivered"
                " time, or the status Delivered or Completed", width=21),
        Derived("Counted sales",
                F.IF(Op("=", This("Counted order"), Lit("")), "", This("SKU subtotal")),
                FMT["money"], "the line subtotal, blank for cancelled orders"),
    ),
)

BRAND = Table(
    "Brand", "Brand, month by month",
    "One row per month: followers at the start and end, mentions of your brand and of up"
    " to three competitors (counted by hand or in a listening tool), support queries,"
    " orders and the TikTok Studio overview totals.",
    (
        Input("Period", "period", "month", "First day of the month"),
        Input("Followers start", "followers_start", "int", "Followers on the first day"),
        Input("Followers end", "followers_end", "int", "Followers on the last day"),
        Input("Brand mentions", "brand_mentions", "int", "Mentions of your brand"),
        Input("Competitor A mentions", "competitor_a_mentions", "int",
              "Mentions of your first competitor"),
        Input("Competitor B mentions", "competitor_b_mentions", "int",
              "Mentions of your second competitor"),
        Input("Competitor C mentions", "competitor_c_mentions", "int",
              "Mentions of your third competitor (leave blank if none)"),
        Input("Support queries", "support_queries", "int", "Customer support queries"),
        Input("Orders", "orders", "int", "Orders in the month"),
        Input("Views", "views", "int", "Video views (Studio overview)"),
        Input("Profile views", "profile_views", "int", "Profile views"),
        Input("Likes", "likes", "int", "Likes"),
        Input("Comments", "comments", "int", "Comments"),
        Input("Shares", "shares", "int", "Shares"),
        _pct("Follower growth", "FOLLOWER_GROWTH_RATE", "Followers start", "Followers end",
             help="(end - start) / start"),
        Computed("Share of voice", "SHARE_OF_VOICE",
                 ("Brand mentions", ("Competitor A mentions", "Competitor C mentions")),
                 FMT["percent"], "brand / (brand + competitors)",
                 needs=(("Brand mentions",), ("Competitor A mentions", "Competitor B mentions",
                                              "Competitor C mentions"))),
        Computed("Support per 100 orders", "SUPPORT_QUERY_RATE",
                 ("Support queries", "Orders"), FMT["number"], "queries per 100 orders"),
        Computed("ER", "ENGAGEMENT_RATE", ("Likes", "Comments", "Shares", "Views"),
                 FMT["percent"], "(likes + comments + shares) / views",
                 needs=(("Likes", "Comments", "Shares"), ("Views",))),
        _pct("Profile view rate", "PROFILE_VISIT_RATE", "Profile views", "Views",
             help="profile views / views"),
    ),
)

#: The input tables, in sheet order.
TABLES: tuple[Table, ...] = (CAMPAIGNS, VIDEOS, ORDERS, BRAND)
#: Table by name.
TABLE: dict[str, Table] = {t.name: t for t in TABLES}


def rows_to_columns(table: Table | str, rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """Rows keyed by canonical keys → the table's input columns (key → values).

    Keys missing from a row are blank (``None``); unknown keys raise ``KeyError``.
    """
    t = TABLE[table] if isinstance(table, str) else table
    keys = t.keys
    for r in rows:
        unknown = set(r) - set(keys)
        if unknown:
            raise KeyError(f"table {t.name} has no input column {sorted(unknown)}")
    return {k: [r.get(k) for r in rows] for k in keys}


def empty_tables() -> dict[str, dict[str, list]]:
    """Input columns of every table with no rows."""
    return {t.name: {k: [] for k in t.keys} for t in TABLES}


# --- settings ------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A settings cell on the Start sheet, published as a workbook-level defined name."""

    name: str
    label: str
    default: float
    fmt: str
    rule: Rule
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("Margin", "Gross margin", 0.40, FMT["percent1"],
            Rule("decimal", 0, 1, message="a percentage, 0% to 100%"),
            "Share of revenue left after product, packaging, shipping and platform fees."
            " Used by ROI, break-even ROAS and the margin CLVs."),
    Setting("RefundRate", "Refund rate", 0.05, FMT["percent1"],
            Rule("decimal", 0, 0.99, message="a percentage, 0% to 99%"),
            "Share of revenue refunded. Raises the break-even ROAS."),
    Setting("RetentionPeriods", "Retention (periods)", 4, "0.0",
            Rule("decimal", 0, 1000, message="a number of periods, 0 or more"),
            "How many periods a customer keeps buying, in periods as long as the Orders"
            " data (4 periods of 3 months = 1 year)."),
    Setting("PeriodMonths", "Period length (months)", 3, "0.0",
            Rule("decimal", 0.1, 120, message="months, more than 0"),
            "How many months the Orders sheet covers (90 days = 3). Used for CAC payback."),
    Setting("DiscountRate", "Discount rate per period", 0.03, FMT["percent1"],
            Rule("decimal", 0, 1, message="a percentage, 0% to 100%"),
            "Discount rate per period for the discounted CLV (Gupta-Lehmann)."),
)
SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}


# --- KPIs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kpi:
    """A shop-level KPI row of the KPIs sheet.

    ``benchmark`` names the :class:`Benchmark` whose rating is shown beside it.
    ``needs`` lists groups of (number) table columns of which one must hold a
    value for the KPI to be measured; :data:`KPIS` holds the KPIs with that
    condition, and a number in each KPI they read, in their formula
    (:func:`when_measured`).  ``unit`` may be a formula (a KPI that
    says which data it was computed from).
    """

    key: str
    label: str
    expr: Node
    unit: str | Node
    fmt: str
    help: str
    benchmark: str | None = None
    needs: tuple[tuple[Column, ...], ...] = ()


def _c(table: str, header: str) -> Column:
    assert header in TABLE[table].headers, (table, header)
    return Column(table, header)


def _sum(table: str, *headers: str) -> Call:
    return F.SUM(*(_c(table, h) for h in headers))


K = Ref  # a reference to another KPI row by key

#: The predicted CLV's horizon (months) and monthly discount rate in the template's formulas.
CLV_MONTHS, CLV_DISCOUNT = 12, 0.01


def _predictive(udf: str) -> Call:
    """A predictive CLV function over the orders that count (cancelled lines have no
    ``Counted sales``), 12 months, the gross margin setting, 1 % monthly discount."""
    return getattr(F, udf)(_c("Orders", "Buyer"), _c("Orders", "Created"),
                           _c("Orders", "Counted sales"), CLV_MONTHS, Name("Margin"),
                           CLV_DISCOUNT)


def _n(table: str, *headers: str) -> tuple[tuple[Column, ...], ...]:
    """``needs``: each header its own group (the KPI needs every one of them)."""
    return tuple((_c(table, h),) for h in headers)


def _measured(groups: Sequence[Sequence[Column]]) -> list[Node]:
    """``COUNT(Table[Header], ...)>0`` for each group: some row holds a number there."""
    return [Op(">", F.COUNT(*g), Lit(0)) for g in groups]


def _first_measured(*choices: tuple[Node, Sequence[Sequence[Column]]]) -> Node:
    """The first expression whose columns are measured, else blank (nested IFs)."""
    out: Node = Lit("")
    for expr, groups in reversed(choices):
        conds = _measured(groups)
        out = F.IF(conds[0] if len(conds) == 1 else F.AND(*conds), expr, out)
    return out


_VIDEO_VISITS = (_c("Videos", "Profile visits"),)
_BRAND_VISITS = (_c("Brand", "Profile views"),)

KPI_SECTIONS: tuple[tuple[str, tuple[Kpi, ...]], ...] = (
    ("Engagement (organic videos)", (
        Kpi("views", "Views", F.TOTAL_VIEWS(_c("Videos", "Views")), "views", FMT["int"],
            "Total video views on the Videos sheet."),
        Kpi("er", "Engagement rate", F.ENGAGEMENT_RATE(
            _sum("Videos", "Likes"), _sum("Videos", "Comments"), _sum("Videos", "Shares"),
            _sum("Videos", "Views")), "% of views", FMT["percent"],
            "(likes + comments + shares) / views, TikTok's formula (the Videos sheet's ER"
            " also counts saves).", "er_views",
            needs=((_c("Videos", "Likes"), _c("Videos", "Comments"), _c("Videos", "Shares")),
                   (_c("Videos", "Views"),))),
        Kpi("completion", "Video completion rate", F.COMPLETION_RATE(
            _sum("Videos", "Completed views"), _sum("Videos", "Views")), "% of views",
            FMT["percent"], "Views watched to the end / views.", "completion",
            needs=_n("Videos", "Completed views", "Views")),
        Kpi("profile_visits", "Profile visits", _first_measured(
            (_sum("Videos", "Profile visits"), (_VIDEO_VISITS,)),
            (_sum("Brand", "Profile views"), (_BRAND_VISITS,))),
            F.IF(Op(">", F.COUNT(*_VIDEO_VISITS), Lit(0)), "visits",
                 F.IF(Op(">", F.COUNT(*_BRAND_VISITS), Lit(0)),
                      "profile views (Brand: Studio overview)", "visits")),
            FMT["int"], "Profile visits from the videos; when the Videos sheet has none,"
            " the account's profile views from TikTok Studio's overview (Brand sheet)."),
        Kpi("pvr", "Profile visit rate", _first_measured(
            (F.PROFILE_VISIT_RATE(_sum("Videos", "Profile visits"), _sum("Videos", "Views")),
             (_VIDEO_VISITS, (_c("Videos", "Views"),))),
            (F.PROFILE_VISIT_RATE(_sum("Brand", "Profile views"), _sum("Brand", "Views")),
             (_BRAND_VISITS, (_c("Brand", "Views"),)))),
            F.IF(Op(">", F.COUNT(*_VIDEO_VISITS), Lit(0)), "% of views",
                 F.IF(Op(">", F.COUNT(*_BRAND_VISITS), Lit(0)),
                      "% of views (Brand: Studio overview)", "% of views")),
            FMT["percent"], "Profile visits / views of the videos; when the Videos sheet"
            " has no profile visits, profile views / video views of the account from TikTok"
            " Studio's overview (Brand sheet)."),
    )),
    ("Advertising", (
        Kpi("ad_cost", "Ad spend", _sum("Campaigns", "Cost"), "currency", FMT["money"],
            "Total cost on the Campaigns sheet.",
            needs=_n("Campaigns", "Cost")),
        Kpi("ad_revenue", "Ad revenue", _sum("Campaigns", "Revenue"), "currency",
            FMT["money"], "Revenue the ads platform attributes to the ads.",
            needs=_n("Campaigns", "Revenue")),
        Kpi("ctr", "Click-through rate", F.CTR(
            _sum("Campaigns", "Clicks"), _sum("Campaigns", "Impressions")),
            "% of impressions", FMT["percent"], "Destination clicks / impressions.", "ctr",
            needs=_n("Campaigns", "Clicks", "Impressions")),
        Kpi("cvr", "Conversion rate", F.CONVERSION_RATE(
            _sum("Campaigns", "Conversions"), _sum("Campaigns", "Clicks")), "% of clicks",
            FMT["percent"], "Conversions / clicks (the benchmark divides orders by"
            " sessions; clicks are the nearest ads count).", "cvr",
            needs=_n("Campaigns", "Conversions", "Clicks")),
        Kpi("roas", "Return on ad spend (ROAS)", F.ROAS(
            _sum("Campaigns", "Revenue"), _sum("Campaigns", "Cost")), "x", FMT["ratio"],
            "Ad revenue / ad spend. Compare with the break-even ROAS below.", "roas",
            needs=_n("Campaigns", "Revenue", "Cost")),
        Kpi("breakeven", "Break-even ROAS", F.BREAKEVEN_ROAS(Name("Margin"),
                                                             Name("RefundRate")),
            "x", FMT["ratio"], "1 / (margin x (1 - refund rate)): below it the ads lose"
            " money."),
        Kpi("roi", "Return on investment (ROI)", F.ROI(
            _sum("Campaigns", "Revenue"), _sum("Campaigns", "Cost"), Name("Margin")),
            "% of spend", FMT["percent"], "(ad revenue x margin - ad spend) / ad spend.",
            needs=_n("Campaigns", "Revenue", "Cost")),
        Kpi("cpm", "Cost per 1,000 impressions (CPM)", F.CPM(
            _sum("Campaigns", "Cost"), _sum("Campaigns", "Impressions")), "currency",
            FMT["money"], "Ad spend / impressions x 1,000.",
            needs=_n("Campaigns", "Cost", "Impressions")),
        Kpi("cpc", "Cost per click (CPC)", F.CPC(
            _sum("Campaigns", "Cost"), _sum("Campaigns", "Clicks")), "currency",
            FMT["money"], "Ad spend / clicks.",
            needs=_n("Campaigns", "Cost", "Clicks")),
        Kpi("cpa", "Cost per conversion (CPA)", F.CPA(
            _sum("Campaigns", "Cost"), _sum("Campaigns", "Conversions")), "currency",
            FMT["money"], "Ad spend / conversions.",
            needs=_n("Campaigns", "Cost", "Conversions")),
        Kpi("cac", "Customer acquisition cost (CAC)", F.CAC(
            _sum("Campaigns", "Cost"), _sum("Campaigns", "New customers")), "currency",
            FMT["money"], "Ad spend / new customers (paid only; add creator fees and"
            " samples for a blended CAC).",
            needs=_n("Campaigns", "Cost", "New customers")),
    )),
    ("Shop sales (Orders sheet, cancelled orders left out)", (
        Kpi("orders", "Orders", F.ORDER_COUNT(_c("Orders", "Counted order")), "orders",
            FMT["int"], "Distinct orders that were not cancelled."),
        Kpi("revenue", "Revenue", F.ORDER_REVENUE(_c("Orders", "Counted order"),
                                                 _c("Orders", "Order amount")),
            "currency", FMT["money"], "Order amounts, each order counted once."),
        Kpi("aov", "Average order value (AOV)", F.AOV(K("revenue"), K("orders")),
            "currency", FMT["money"], "Revenue / orders."),
        Kpi("buyers", "Buyers", F.BUYER_COUNT(_c("Orders", "Buyer"),
                                             _c("Orders", "Counted order")),
            "buyers", FMT["int"], "Distinct buyers with an order."),
    )),
    ("Customer lifetime value", (
        Kpi("repeat", "Purchases per buyer per period", Op("/", K("orders"), K("buyers")),
            "orders", FMT["number"], "Orders / buyers over the Orders data: the CLV's"
            " 'repeat sales', per period of the length of the data."),
        Kpi("retention", "Retention (periods)", Name("RetentionPeriods"),
            "periods", "0.0", "The retention setting on the Start sheet."),
        Kpi("clv", "Customer lifetime value (CLV)", F.CLV(K("aov"), K("repeat"),
                                                          K("retention")),
            "currency", FMT["money"], "AOV x purchases per period x periods: the TikTok CLV"
            " calculator's revenue CLV."),
        Kpi("clv_margin", "CLV after gross margin", F.CLV(K("aov"), K("repeat"),
                                                          K("retention"), Name("Margin")),
            "currency", FMT["money"], "The CLV x gross margin: what a customer earns you."),
        Kpi("margin_period", "Gross margin per customer per period", F.CLV(
            K("aov"), K("repeat"), 1, Name("Margin")), "currency", FMT["money"],
            "AOV x purchases per period x margin."),
        Kpi("dclv", "Discounted CLV", F.DISCOUNTED_CLV(K("margin_period"), K("rpr"),
                                                       Name("DiscountRate")),
            "currency", FMT["money"], "Margin x r / (1 + d - r), with the repeat purchase"
            " rate as the retention rate r (Gupta-Lehmann)."),
        Kpi("ltv_cac", "LTV:CAC", F.LTV_CAC(K("clv_margin"), K("cac")), "x", FMT["ratio"],
            "CLV after margin / CAC.", "ltv_cac"),
        Kpi("payback", "CAC payback", F.CAC_PAYBACK(
            K("cac"), Op("/", K("margin_period"), Name("PeriodMonths"))), "months",
            FMT["months"], "CAC / gross margin per customer per month.", "payback"),
        Kpi("pclv", "Predicted CLV after margin, 12 months", _predictive("PREDICTED_CLV"),
            "currency", FMT["money"], "Mean per buyer of the gross margin expected in the next 12 months"
            " (BG/NBD + Gamma-Gamma fitted to the orders, 1% monthly discount; see the"
            " Customers sheet)."),
        Kpi("pclv_cac", "Predicted CLV : CAC", F.LTV_CAC(K("pclv"), K("cac")), "x",
            FMT["ratio"], "Predicted CLV / CAC.", "pclv_cac"),
    )),
    ("Loyalty and feedback", (
        Kpi("rpr", "Repeat purchase rate", F.REPEAT_PURCHASE_RATE(
            _c("Orders", "Buyer"), _c("Orders", "Counted order")), "% of buyers",
            FMT["percent"], "Buyers with 2 or more orders / buyers.", "rpr"),
        Kpi("avg_rating", "Average rating", F.AVERAGE_RATING(_c("Orders", "Rating")),
            "stars", FMT["rating"], "Average of the star ratings (blanks ignored)."),
        Kpi("positive", "Positive ratings (4-5 stars)", F.POSITIVE_RATING_SHARE(
            _c("Orders", "Rating")), "% of ratings", FMT["percent"],
            "Share of ratings with 4 or 5 stars."),
        Kpi("reviews", "Reviews", F.COUNT(_c("Orders", "Rating")), "reviews", FMT["int"],
            "Number of ratings.", needs=_n("Orders", "Rating")),
        Kpi("delivered", "Delivered orders", F.ORDER_COUNT(_c("Orders", "Delivered order")),
            "orders", FMT["int"], "Orders delivered: with a delivered time, or the status"
            " Delivered or Completed."),
        Kpi("review_rate", "Review rate", F.REVIEW_RATE(K("reviews"), K("delivered")),
            "% of delivered", FMT["percent"], "Reviews / delivered orders."),
    )),
    ("Brand", (
        Kpi("followers", "Follower growth per month", F.FOLLOWER_GROWTH_RATE(
            _sum("Brand", "Followers start"), _sum("Brand", "Followers end")),
            "% per month", FMT["percent"], "Monthly growth averaged over the months"
            " (weighted by followers).", "followers",
            needs=_n("Brand", "Followers start", "Followers end")),
        Kpi("sov", "Share of voice", F.SHARE_OF_VOICE(
            _sum("Brand", "Brand mentions"),
            _sum("Brand", "Competitor A mentions", "Competitor B mentions",
                 "Competitor C mentions")), "% of mentions", FMT["percent"],
            "Brand mentions / all mentions (brand + competitors).",
            needs=((_c("Brand", "Brand mentions"),),
                   tuple(_c("Brand", f"Competitor {x} mentions") for x in "ABC"))),
        Kpi("support", "Support queries per 100 orders", F.SUPPORT_QUERY_RATE(
            _sum("Brand", "Support queries"), _sum("Brand", "Orders")), "per 100 orders",
            FMT["number"], "Support queries / orders x 100.",
            needs=_n("Brand", "Support queries", "Orders")),
    )),
)


def _gated(sections: Sequence[tuple[str, Sequence[Kpi]]]
           ) -> tuple[tuple[str, tuple[Kpi, ...]], ...]:
    """The KPIs with their "not measured" condition in their formula: the columns they
    need hold a number, and so do the KPIs they read that can be blank (``ISNUMBER``: an
    empty text result compares unequal to "" in LibreOffice, so ``<>""`` would not do)."""
    kpis = {k.key: k for _, rows in sections for k in rows}
    can_be_blank: dict[str, bool] = {}

    def blank(key: str) -> bool:
        if key not in can_be_blank:
            nodes = list(walk(kpis[key].expr))
            can_be_blank[key] = bool(kpis[key].needs) or any(
                isinstance(n, Column) or (isinstance(n, Ref) and n.key in kpis and blank(n.key))
                for n in nodes)
        return can_be_blank[key]

    def gated(k: Kpi) -> Kpi:
        refs = dict.fromkeys(n.key for n in walk(k.expr)
                             if isinstance(n, Ref) and n.key in kpis and blank(n.key))
        conds = _measured(k.needs) + [F.ISNUMBER(Ref(r)) for r in refs]
        return replace(k, expr=when_measured(k.expr, conds))

    return tuple((title, tuple(gated(k) for k in rows)) for title, rows in sections)


KPI_SECTIONS = _gated(KPI_SECTIONS)

#: KPI rows by key, in sheet order.
KPIS: dict[str, Kpi] = {k.key: k for _, rows in KPI_SECTIONS for k in rows}


@dataclass(frozen=True)
class ArrayBlock:
    """A KPI returning a table, written as a dynamic array formula under a title.

    ``rows`` is the number of rows of its result (header included) when that
    is fixed (``TOP_PRODUCTS`` pads to ``top_n``), None when it follows the
    data (``CONTENT_RESONANCE``: one row per content type): such a table is
    laid out with nothing below it, so it can grow and shrink in place.
    """

    key: str
    title: str
    help: str
    expr: Node
    fmts: tuple[str | None, ...]
    rows: int | None = None

    @property
    def cols(self) -> int:
        return len(self.fmts)


ARRAYS: tuple[ArrayBlock, ...] = (
    ArrayBlock("top_products", "Top products by revenue",
               "The five best-selling products (cancelled lines left out), with their"
               " share of revenue.",
               F.TOP_PRODUCTS(_c("Orders", "Product"), _c("Orders", "Counted sales"), 5),
               (None, FMT["money"], FMT["percent1"], FMT["percent1"]), rows=6),
    # rows=1: with no videos yet the table still shows its header and one blank row
    ArrayBlock("content", "Content resonance: which content sells",
               "Videos grouped by content type, best-selling type first.",
               F.CONTENT_RESONANCE(_c("Videos", "Content type"), _c("Videos", "Views"),
                                   _c("Videos", "Engagements"), _c("Videos", "Orders"),
                                   _c("Videos", "Revenue"), 1),
               (None, FMT["int"], FMT["int"], FMT["percent"], FMT["int"], FMT["money"],
                FMT["money"])),
)


def _orders(*headers: str) -> tuple[Column, ...]:
    return tuple(_c("Orders", h) for h in headers)


#: The array results of the Customers sheet, top to bottom.  All but the last have a fixed
#: size (whatever the data: see ``cells.model``'s frame); the per-customer table, one row per
#: buyer, is last, with nothing below it, so that a refresh resizes it in place.
CUSTOMER_ARRAYS: tuple[ArrayBlock, ...] = (
    ArrayBlock("p_alive", "Customers by P(alive)",
               "How many of your buyers are likely still buying. One-time buyers are apart"
               " (the model cannot tell whether they are gone); a large group of repeat"
               " buyers under 50% are lapsed customers worth winning back.",
               F.P_ALIVE_BUCKETS(*_orders("Buyer", "Created", "Counted order")),
               (None, FMT["int"], FMT["percent1"]), rows=6),
    ArrayBlock("clv_parameters", "The fitted models behind the predicted CLV",
               "A buyer buys r / alpha times per week on average while she is still"
               " buying, drops out after a repeat purchase with probability a / (a + b)"
               " on average, and spends about gamma x p / (q - 1) per purchase; check"
               " that Customers and Repeat customers are what you expect.",
               F.CLV_PARAMETERS(*_orders("Buyer", "Created", "Counted sales")),
               (None, "#,##0.0##", None), rows=14),
    ArrayBlock("cohorts", "Cohort retention, last 12 months",
               "Each row is the buyers whose first order fell in that month, each column"
               " the months since: the share who ordered in that month (darker green is"
               " more). Compare a column down the rows to see whether newer cohorts come"
               " back more often; month 0 is 100% by definition, blank cells are not in"
               " the data yet.",
               F.COHORT_RETENTION(*_orders("Buyer", "Created", "Counted order"), "",
                                  CLV_MONTHS),
               (None, FMT["int"]) + ("0%",) * CLV_MONTHS, rows=1 + CLV_MONTHS),
    ArrayBlock("customer_clv", "Every buyer, highest predicted CLV first",
               "Purchases so far, the probability she is still buying, the purchases and"
               " the spend per purchase expected in the next 12 months, and her predicted"
               " CLV after margin: the top of the list are the buyers to keep happy, many"
               " purchases with a low P(alive) the ones to win back.",
               _predictive("CUSTOMER_CLV"),
               (None, FMT["int"], FMT["percent1"], FMT["number"], FMT["money"],
                FMT["money"])),
)
#: Array results by key (the KPIs sheet's and the Customers sheet's).
ARRAY: dict[str, ArrayBlock] = {a.key: a for a in (*ARRAYS, *CUSTOMER_ARRAYS)}


# --- benchmarks -------------------------------------------------------------------------

@dataclass(frozen=True)
class Benchmark:
    """A row of the benchmark table (``docs/kpi-definitions.md`` §2).

    ``weak_limit``/``good_limit`` give the rating: for a higher-is-better
    metric a value below ``weak_limit`` is weak and one at or above
    ``good_limit`` good; the other way round otherwise.  ``kpi`` names the
    KPI row rated (None: not measured by this workbook).
    """

    key: str
    metric: str
    weak: str
    ok: str
    good: str
    source: str
    weak_limit: float | Node | None
    good_limit: float | None
    kpi: str | None
    fmt: str
    higher_is_better: bool = True


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("er_views", "ER by views (organic)", "<3%", "3-6%", "6-10% (>10% viral)",
              "schedulala.com [low]; Rival IQ: 4.14% average (2023), retail 2.6% (2024)"
              " [medium]", 0.03, 0.06, "er", FMT["percent"]),
    Benchmark("er_followers", "ER by followers", "<1.5%", "~2.5% (median)", ">4%",
              "Rival IQ 2024 median 2.6%; emplicit.co 2.5% [medium]", 0.015, 0.04, None,
              FMT["percent"]),
    Benchmark("followers", "Follower growth per month", "<1%", "2-3%",
              ">5% (accounts under 50K)", "Rival IQ via socialmediameanscom [medium]",
              0.01, 0.05, "followers", FMT["percent"]),
    Benchmark("ctr", "Ad CTR (destination)", "<0.5%", "0.5-1%", "1-2% (>2% strong)",
              "adrevival.io 2026 [low]; Triple Whale e-commerce average 0.73% [medium]",
              0.005, 0.01, "ctr", FMT["percent"]),
    Benchmark("cvr", "Conversion rate (orders / sessions)", "<1%", "~1.4% (average)",
              ">=3.2% (top 20%)", "Littledata, about 2,800 Shopify stores [medium-high];"
              " no TikTok Shop benchmark found", 0.01, 0.032, "cvr", FMT["percent"]),
    Benchmark("roas", "ROAS", "below break-even", "2-3.5x (website)",
              "3.5-5x (TikTok Shop)", "npprteam.shop; stackmatix.com [low]; break-even"
              " = 1 / (margin x (1 - refund rate)) overrides",
              F.BREAKEVEN_ROAS(Name("Margin"), Name("RefundRate")), 3.5, "roas",
              FMT["ratio"]),
    Benchmark("completion", "Completion rate (organic)", "<40%", "40-60%",
              "60-80% (80%+ excellent)", "calculatecreator.com [low]; depends on length:"
              " 15 s about 73%, 60 s about 38%", 0.40, 0.60, "completion", FMT["percent"]),
    Benchmark("rpr", "Repeat purchase rate", "<15%", "15-30% (average about 28%)",
              ">40% (loyalty mode above 60%)", "opensend.com; rivo.io; Lean Analytics"
              " [medium]", 0.15, 0.40, "rpr", FMT["percent"]),
    Benchmark("ltv_cac", "LTV:CAC", "<1", "1-3", "3-5 (>5 may mean under-investing)",
              "pug.sh; freeconvert.ai [medium]", 1.0, 3.0, "ltv_cac", FMT["ratio"]),
    Benchmark("pclv_cac", "Predicted CLV : CAC", "<1", "1-3", "3-5",
              "the LTV:CAC bands (pug.sh; freeconvert.ai) [medium]; a 12-month predicted"
              " CLV is not a lifetime, so the ratio is conservative", 1.0, 3.0, "pclv_cac",
              FMT["ratio"]),
    Benchmark("payback", "CAC payback (months, lower is better)", ">18 months",
              "12-18 months", "<=12 months", "abracalc.com (SaaS origin) [low for"
              " e-commerce]", 18.0, 12.0, "payback", FMT["months"], higher_is_better=False),
)
BENCHMARK: dict[str, Benchmark] = {b.key: b for b in BENCHMARKS}


def rating(value: Node, weak: Node, good: Node, higher_is_better: bool = True) -> Node:
    """The native formula rating ``value`` "weak", "ok" or "good" ("" when not a number)."""
    worse = "<" if higher_is_better else ">"
    return F.IF(F.ISNUMBER(value),
                F.IF(Op(worse, value, weak), "weak",
                     F.IF(Op(worse, value, good), "ok", "good")), "")


@dataclass(frozen=True)
class ClvExample:
    """A worked example of the TikTok CLV calculator (the CLV seed).

    ``repeat`` is purchases per retention period and ``retention`` the number
    of periods; ``stated`` is the retention as the seed states it.
    """

    aov: float
    repeat: float
    retention: float
    stated: str
    clv: float
    verdict: str
    why: str
    fix: str = ""


CLV_EXAMPLES: tuple[ClvExample, ...] = (
    ClvExample(50, 5, 1, "1 year", 250, "good",
               "Steady repeat purchases drive high revenue."),
    ClvExample(20, 12, 1, "6 months", 240, "good",
               "High purchase frequency raises lifetime value."),
    ClvExample(100, 3, 2, "2 years", 600, "good",
               "Premium products lead to higher lifetime spend."),
    ClvExample(30, 2, 1, "1 year", 60, "not so good", "Low repeat sales.",
               "Introduce loyalty rewards or TikTok-exclusive discounts."),
    ClvExample(10, 1, 1, "6 months", 10, "not so good", "No repeat purchases.",
               "Retarget customers with TikTok ads."),
    ClvExample(40, 1, 1, "1 year", 40, "not so good", "Short customer retention.",
               "Improve the customer experience to extend loyalty."),
)


# --- dashboard ----------------------------------------------------------------------------

#: Headline tiles of the Dashboard: (label, KPI key).
TILES: tuple[tuple[str, str], ...] = (
    ("Revenue", "revenue"), ("Orders", "orders"), ("AOV", "aov"), ("ROAS", "roas"),
    ("Break-even ROAS", "breakeven"), ("CLV", "clv"), ("Repeat purchase rate", "rpr"),
    ("Engagement rate", "er"),
)


@dataclass(frozen=True)
class ChartSpec:
    """A native chart on the Dashboard.

    ``categories``/``values`` are ``(sheet, first_row, col, last_row)``
    ranges (0-based, inclusive), resolved by :func:`plan`.
    """

    key: str
    title: str
    kind: str
    anchor: tuple[int, int]
    categories: tuple[str, int, int, int]
    values: tuple[str, int, int, int]
    series: str
    number_format: str
    log_axis: bool = False
    subtype: str | None = None


# --- sheets and layout -------------------------------------------------------------------

START, KPIS_SHEET, BENCH_SHEET, DASH = "Start", "KPIs", "Benchmarks", "Dashboard"
CUSTOMERS_SHEET = "Customers"
#: Sheet order of the workbook (the xlsm adds :data:`CONFIG_SHEET` at the end).
SHEETS: tuple[str, ...] = (START, *(t.sheet for t in TABLES), KPIS_SHEET, CUSTOMERS_SHEET,
                           BENCH_SHEET, DASH)
#: The xlwings configuration sheet of the .xlsm (read by xlwings' VBA and Python:
#: keys in column A from A1 down, values in column B).
CONFIG_SHEET = "xlwings.conf"
CONFIG: tuple[tuple[str, str], ...] = (("UDF Modules", "xl_kpis.udfs"),)

#: Column widths of the non-table sheets.
WIDTHS: dict[str, tuple[float, ...]] = {
    START: (30, 13, 18, 110),
    KPIS_SHEET: (34, 14, 15, 10, 14, 14, 16, 72),
    BENCH_SHEET: (34, 11, 12, 12, 12, 14, 18, 34, 62),
    DASH: (17,) * 12 + (3, 26, 14),
    CUSTOMERS_SHEET: (44, 12, 10) + (9,) * (CLV_MONTHS - 1),
    CONFIG_SHEET: (16, 16, 3, 80),
}


@dataclass(frozen=True)
class Cell:
    """A planned cell outside the tables.

    Exactly one of ``expr`` (a formula) or ``value`` (a constant) is used;
    ``key`` names cells other formulas reference; ``style`` is a role the
    writer maps to a cell format (``title``, ``help``, ``section``,
    ``header``, ``label``, ``text``, ``note``, ``input``, ``value``,
    ``formula``, ``rating``, ``tile_label``, ``tile_value``); ``array`` marks
    a dynamic array formula (its result is spilled from this cell); ``span``
    merges the cell with that many cells to its right.
    """

    sheet: str
    row: int
    col: int
    value: Any = None
    expr: Node | None = None
    key: str | None = None
    style: str = "text"
    fmt: str | None = None
    array: bool = False
    name: str | None = None       # a defined name pointing at this cell
    rule: Rule | None = None      # data validation of an input cell
    span: int = 0                 # further columns merged into this cell


@dataclass
class Plan:
    """Every cell outside the tables, the charts, and where planned keys are."""

    cells: list[Cell] = field(default_factory=list)
    charts: list[ChartSpec] = field(default_factory=list)
    print_rows: dict[str, int] = field(default_factory=dict)
    #: Cell ranges shown as a heat map (a colour scale): ``(sheet, first_row, first_col,
    #: last_row, last_col)``, 0-based, inclusive.
    heat_maps: list[tuple[str, int, int, int, int]] = field(default_factory=list)

    def __post_init__(self):
        self._by_key: dict[str, Cell] = {}

    def add(self, *cells: Cell) -> None:
        for c in cells:
            if c.key is not None:
                if c.key in self._by_key:
                    raise ValueError(f"duplicate cell key {c.key!r}")
                self._by_key[c.key] = c
            self.cells.append(c)

    def cell(self, key: str) -> Cell:
        return self._by_key[key]

    @property
    def keys(self) -> dict[str, Cell]:
        return dict(self._by_key)

    def address(self, key: str) -> tuple[str, int, int]:
        """``(sheet, row, col)`` (0-based) of a planned key."""
        c = self._by_key[key]
        return c.sheet, c.row, c.col

    def formulas(self) -> Iterator[Cell]:
        return (c for c in self.cells if c.expr is not None)


@dataclass(frozen=True)
class FormulaText:
    """Placeholder for the text of the formula of a planned key (filled in by :func:`plan`)."""

    key: str


def _text(sheet: str, row: int, col: int, value: Any, style: str = "text",
          fmt: str | None = None, span: int = 0) -> Cell:
    return Cell(sheet, row, col, value=value, style=style, fmt=fmt, span=span)


def _heading(p: Plan, sheet: str, title: str, help: str) -> None:
    p.add(_text(sheet, 0, 0, title, "title"), _text(sheet, 1, 0, help, "help"))


START_HELP = (
    ("What this is", (
        "A workbook that computes the sales KPIs of a TikTok shop with Excel functions from"
        " the Python package xl-kpis (ROAS, CLV, REPEAT_PURCHASE_RATE ...).",
        "Fill the four input sheets; the grey columns and the KPIs, Benchmarks and"
        " Dashboard sheets are computed from them. Every number was computed when the file"
        " was saved, so it shows without Python.",
    )),
    ("How to fill it", (
        "Campaigns: the TikTok Ads Manager report (one row per campaign, or per ad and"
        " day). Videos: the TikTok Studio content export, plus saves, completed views,"
        " orders and a content type.",
        "Orders: the Seller Center order export, one row per SKU line; keep Order ID as"
        " text. Brand: one row per month, typed by hand.",
        "Add rows by typing or pasting directly below a table: the table grows and its"
        " computed columns fill in. Or let the command line import the exports (see"
        " xl-kpis --help).",
    )),
    ("How to refresh the numbers", (
        "Without Excel: xl-kpis refresh BOOK recomputes every formula's value in the file"
        " (pip install . in a clone of xl-kpis).",
        "Excel on Windows (the .xlsm): pip install . in a clone of xl-kpis, and xlwings;"
        " enable macros; allow 'Trust access to the VBA project object model'; then xlwings"
        " add-in > Import Functions (or Alt+F8 > ImportPythonUDFs); then Ctrl+Alt+F9 once.",
        "The sheet xlwings.conf tells xlwings where the functions are (UDF Modules ="
        " xl_kpis.udfs).",
        "xlwings Lite (the .xlsx; Windows, Mac, Excel on the web): add the xlwings Lite"
        " add-in and open it (Home > xlwings Lite); this book carries its code (main.py).",
        "A cell showing #NAME? once the functions are loaded: on Windows, Ctrl+H, find =,"
        " replace with =, Replace All; in Lite, run its script 'Re-enter xl-kpis formulas'.",
    )),
    ("Conventions", (
        "Rates are fractions shown as %. Denominators: engagement rate and completion per"
        " view, CTR per impression, ads conversion rate per click, AOV per order.",
        "Orders: cancelled orders are left out (column Counted order) and each order's"
        " amount is counted once, although it repeats on every line.",
        "CLV = AOV x repeat sales x retention: repeat sales are purchases per period and"
        " retention is the number of periods (20 x 12 purchases per 6 months x 1 = 240).",
        "Blank inputs count as 0; a result is blank when all its inputs are blank.",
        "Errors: #DIV/0! the denominator is 0 (or there is no data yet); #VALUE! text where"
        " a number belongs; #NUM! a number out of range (a negative count, a margin over"
        " 100%); #N/A ranges of different sizes.",
    )),
)


def _start(p: Plan) -> None:
    s = START
    _heading(p, s, "TikTok shop KPIs",
             "Sales KPIs for TikTok sellers: fill the input sheets, read the KPIs,"
             " Benchmarks and Dashboard sheets.")
    r = 3
    p.add(_text(s, r, 0, "Settings (used by the formulas through these names)", "section"))
    r += 1
    for i, h in enumerate(("Setting", "Value", "Name", "What it means")):
        p.add(_text(s, r, i, h, "header"))
    for st in SETTINGS:
        r += 1
        p.add(_text(s, r, 0, st.label, "label"),
              Cell(s, r, 1, value=st.default, key=f"setting.{st.name}", style="input",
                   fmt=st.fmt, name=st.name, rule=st.rule),
              _text(s, r, 2, st.name, "formula"),
              _text(s, r, 3, st.help, "note"))
    for title, lines in START_HELP:
        r += 2
        p.add(_text(s, r, 0, title, "section"))
        for line in lines:
            r += 1
            p.add(_text(s, r, 0, line))
    p.print_rows[s] = r


def _table_sheet(p: Plan, t: Table) -> None:
    _heading(p, t.sheet, t.title, t.help)
    p.add(_text(t.sheet, 2, 0, "Type or paste below the header; grey columns are computed"
                " (don't type in them). Blank cells count as 0.", "help"))


#: KPIs sheet columns: KPI, value, unit, rating, "how to read it" (merged over
#: three columns, which the array results below use) and the formula text.
KPI_HEADERS = ((0, "KPI"), (1, "Value"), (2, "Unit"), (3, "Rating"), (4, "How to read it"),
               (7, "Formula"))
KPI_NOTE_SPAN, KPI_FORMULA_COL = 2, 7


def _kpis(p: Plan, at: Mapping[str, Placed], shapes: Mapping[str, tuple[int, int]]) -> None:
    s = KPIS_SHEET
    _heading(p, s, "Shop KPIs",
             "Every KPI of the whole shop, computed live from the input sheets. Rating:"
             " against the Benchmarks sheet.")
    r = at["kpis"].row
    for i, h in KPI_HEADERS:
        p.add(_text(s, r, i, h, "header", span=KPI_NOTE_SPAN if i == 4 else 0))
    for title, rows in KPI_SECTIONS:
        r += 1
        p.add(_text(s, r, 0, title, "section"))
        for k in rows:
            r += 1
            p.add(_text(s, r, 0, k.label, "label"),
                  Cell(s, r, 1, expr=k.expr, key=k.key, style="value", fmt=k.fmt),
                  Cell(s, r, 2, expr=k.unit, key=f"{k.key}.unit") if isinstance(k.unit, Node)
                  else _text(s, r, 2, k.unit),
                  _text(s, r, 4, k.help, "note", span=KPI_NOTE_SPAN),
                  Cell(s, r, KPI_FORMULA_COL, value=FormulaText(k.key), style="formula"))
            if k.benchmark:
                p.add(Cell(s, r, 3, expr=Ref(f"rating.{k.benchmark}"), style="rating"))
    for a in ARRAYS:
        r = at[f"kpis.{a.key}"].row
        p.add(_text(s, r, 0, a.title, "section"),
              _text(s, r + 1, 0, a.help, "note", span=KPI_FORMULA_COL - 1),
              Cell(s, r + 1, KPI_FORMULA_COL, value=FormulaText(a.key), style="formula"),
              Cell(s, r + 2, 0, expr=a.expr, key=a.key, style="value", array=True))
    p.print_rows[s] = max(x.last_row for x in at.values() if x.block.sheet == s)


#: The Customers sheet's comparison of the predicted CLV with the calculator's CLV and CAC:
#: (label, KPI key, rated benchmark or None, how to read it).
CUSTOMER_ROWS: tuple[tuple[str, str, str | None, str], ...] = (
    ("Predicted CLV, next 12 months (after margin)", "pclv", None,
     "The gross margin an average buyer of yours is expected to bring in over the next 12"
     " months, from how often and how recently each one bought (the models below)."),
    ("CLV after margin (the calculator's rule)", "clv_margin", None,
     "AOV x purchases per period x the retention periods set on the Start sheet: an"
     " assumption, where the predicted CLV is fitted to your orders."),
    ("Customer acquisition cost (CAC)", "cac", None,
     "Ad spend / new customers, from the Campaigns sheet."),
    ("Predicted CLV : CAC", "pclv_cac", "pclv_cac",
     "Below 1 a new buyer is not expected to earn back what she cost within a year; 3 or"
     " more is good (Benchmarks sheet)."),
    ("LTV:CAC (the calculator's CLV)", "ltv_cac", "ltv_cac",
     "The same ratio with the calculator's CLV: far above the predicted one, it says the"
     " retention setting is optimistic."),
)
CUSTOMER_NOTE_SPAN = len(WIDTHS[CUSTOMERS_SHEET]) - 4


def _customers(p: Plan, shapes: Mapping[str, tuple[int, int]]) -> None:
    """The Customers sheet: the predicted CLV beside the calculator's CLV and CAC, then the
    array results (:data:`CUSTOMER_ARRAYS`), the per-customer table last (it grows with the
    buyers)."""
    s = CUSTOMERS_SHEET
    last_col = len(WIDTHS[s]) - 1
    _heading(p, s, "Customers: predicted lifetime value and retention",
             "Fitted to the Orders sheet (cancelled orders left out) by the BG/NBD and"
             " Gamma-Gamma models: who is still buying, what they will spend, and how each"
             " month's new buyers come back.")
    r = 3
    for i, h in enumerate(("Measure", "Value", "Rating", "How to read it")):
        p.add(_text(s, r, i, h, "header", span=CUSTOMER_NOTE_SPAN if i == 3 else 0))
    for label, kpi, bench, how in CUSTOMER_ROWS:
        r += 1
        p.add(_text(s, r, 0, label, "label"),
              Cell(s, r, 1, expr=Ref(kpi), style="value", fmt=KPIS[kpi].fmt),
              _text(s, r, 3, how, "note", span=CUSTOMER_NOTE_SPAN))
        if bench:
            p.add(Cell(s, r, 2, expr=Ref(f"rating.{bench}"), style="rating"))
    for a in CUSTOMER_ARRAYS:
        r += 2
        p.add(_text(s, r, 0, a.title, "section"),
              _text(s, r + 1, 0, a.help, "note", span=last_col),
              Cell(s, r + 2, 0, value=FormulaText(a.key), style="formula", span=last_col),
              Cell(s, r + 3, 0, expr=a.expr, key=a.key, style="value", array=True))
        r += 3
        rows = a.rows or max(shapes.get(a.key, (1, 1))[0], 1)
        if a.key == "cohorts":
            # months 1 .. 11 of the cohorts (month 0 is 100% by definition)
            p.heat_maps.append((s, r + 1, 3, r + CLV_MONTHS, 1 + CLV_MONTHS))
        r += rows - 1
    p.print_rows[s] = r


CLV_HEADERS = ("Example", "AOV", "Repeat sales (per period)", "Retention (periods)",
               "Retention as stated", "CLV", "Verdict", "Why", "Fix")
BENCH_HEADERS = ("Metric", "Your value", "Rating", "Weak limit", "Good limit", "Weak", "OK",
                 "Good", "Source (confidence)")


def _benchmarks(p: Plan) -> None:
    s = BENCH_SHEET
    _heading(p, s, "Benchmarks",
             "The TikTok CLV calculator's six worked examples, computed live, and"
             " published benchmarks with your shop rated against them.")
    p.add(_text(s, 2, 0, "Customer lifetime value: the calculator's worked examples",
                "section"))
    for i, h in enumerate(CLV_HEADERS):
        p.add(_text(s, 3, i, h, "header"))
    for i, ex in enumerate(CLV_EXAMPLES):
        r = 4 + i
        key = f"clv_example.{i}"
        p.add(_text(s, r, 0, f"{'Good' if ex.verdict == 'good' else 'Weak'} example"
                    f" {i % 3 + 1}", "label"),
              Cell(s, r, 1, value=ex.aov, key=f"{key}.aov", style="input", fmt=FMT["money"]),
              Cell(s, r, 2, value=ex.repeat, key=f"{key}.repeat", style="input", fmt="0"),
              Cell(s, r, 3, value=ex.retention, key=f"{key}.retention", style="input",
                   fmt="0"),
              _text(s, r, 4, ex.stated),
              Cell(s, r, 5, expr=F.CLV(Ref(f"{key}.aov"), Ref(f"{key}.repeat"),
                                       Ref(f"{key}.retention")),
                   key=key, style="value", fmt=FMT["money"]),
              _text(s, r, 6, ex.verdict, "rating"),
              _text(s, r, 7, ex.why, "note"),
              _text(s, r, 8, ex.fix, "note"))
    r = 4 + len(CLV_EXAMPLES)
    p.add(_text(s, r, 0, "Repeat sales are purchases per retention period and retention"
                " is the number of periods: '6 months' is one period of six months in"
                " which the customer buys 12 times (20 x 12 x 1 = 240).", "note",
                span=len(CLV_HEADERS) - 1))
    r += 2
    p.add(_text(s, r, 0, "Benchmarks and your shop (higher is better unless stated)",
                "section"))
    r += 1
    for i, h in enumerate(BENCH_HEADERS):
        p.add(_text(s, r, i, h, "header"))
    for b in BENCHMARKS:
        r += 1
        key = f"bench.{b.key}"
        value = (Cell(s, r, 1, expr=Ref(b.kpi), key=f"{key}.value", style="value",
                      fmt=b.fmt) if b.kpi else
                 Cell(s, r, 1, value="not measured", key=f"{key}.value", style="note"))
        weak = (Cell(s, r, 3, expr=b.weak_limit, key=f"{key}.weak", style="value",
                     fmt=b.fmt) if isinstance(b.weak_limit, Node) else
                Cell(s, r, 3, value=b.weak_limit, key=f"{key}.weak", style="input",
                     fmt=b.fmt))
        p.add(_text(s, r, 0, b.metric, "label"), value,
              Cell(s, r, 2, expr=rating(Ref(f"{key}.value"), Ref(f"{key}.weak"),
                                        Ref(f"{key}.good"), b.higher_is_better),
                   key=f"rating.{b.key}", style="rating"),
              weak,
              Cell(s, r, 4, value=b.good_limit, key=f"{key}.good", style="input",
                   fmt=b.fmt),
              _text(s, r, 5, b.weak, "note"), _text(s, r, 6, b.ok, "note"),
              _text(s, r, 7, b.good, "note"), _text(s, r, 8, b.source, "note"))
    r += 1
    p.add(_text(s, r, 0, "ROAS below the break-even ROAS (from your margin and refund rate"
                " on the Start sheet) is weak whatever the generic table says: the ads"
                " lose money. The yellow limits can be edited.", "note",
                span=len(BENCH_HEADERS) - 1))
    p.print_rows[s] = r


#: A chart's cells on the Dashboard: 16 rows of 20 px hold its 300 px and a margin, 6
#: columns of 17 characters (:data:`WIDTHS`) its 710 px.
CHART_ROWS, CHART_COLS = 16, 6
#: The Dashboard's charts, in a grid of two columns below the tiles: (key, the block it is
#: placed below or beside, which).
DASH_CHARTS: tuple[tuple[str, str, str], ...] = (
    ("roas", "dash.tiles", "below"), ("funnel", "chart.roas", "beside"),
    ("content", "chart.roas", "below"), ("top_products", "chart.funnel", "below"),
    ("followers", "chart.content", "below"),
)
#: Empty rows the Dashboard's print area keeps below its last chart.
DASH_PRINT_MARGIN = 3
#: The Dashboard's chart-data blocks that show an array result: (array key, title,
#: column of the array shown beside its first column, number format).
DASH_ARRAYS: tuple[tuple[str, str, int, str], ...] = (
    ("top_products", "Top products", 1, FMT["money"]),
    ("content", "Revenue by content type", 5, FMT["money"]),
)


def _array_rows(key: str, shapes: Mapping[str, tuple[int, int]]) -> int:
    """Rows of an array result: its fixed size, else its shape (header + 1 row if unknown)."""
    a = ARRAY[key]
    return a.rows if a.rows is not None else max(shapes.get(key, (2, a.cols))[0], 1)


def _data_rows(key: str, shapes: Mapping[str, tuple[int, int]]) -> int:
    """Rows of a chart-data block below its header: one per data row of the array (at
    least one, so that a chart always has a range)."""
    return max(_array_rows(key, shapes) - 1, 1)


def _layout_blocks() -> tuple[Block, ...]:
    kpi_rows = 1 + sum(1 + len(rows) for _, rows in KPI_SECTIONS)
    width = KPI_FORMULA_COL + 1
    blocks = [Block("kpis", KPIS_SHEET, kpi_rows, width, row=3)]
    for a in ARRAYS:
        blocks.append(Block(f"kpis.{a.key}", KPIS_SHEET, None if a.rows is None else 2 + a.rows,
                            width, below=blocks[-1].key))
    blocks.append(Block("dash.tiles", DASH, 2, len(TILES), row=3))
    for key, other, where in DASH_CHARTS:
        gap = 1 if other == "dash.tiles" else 0
        blocks.append(Block(f"chart.{key}", DASH, CHART_ROWS, CHART_COLS, gap=gap,
                            **{where: other}))
    # the chart data: from the tiles' row, one empty column right of the charts
    blocks.append(Block("dash.funnel", DASH, 5, 2, row=3, beside="chart.funnel"))
    for key, *_ in DASH_ARRAYS:
        a = ARRAY[key]
        blocks.append(Block(f"dash.{key}", DASH, None if a.rows is None else a.rows, 2,
                            below=blocks[-1].key))
    return tuple(blocks)


#: The blocks of the KPIs sheet and of the Dashboard (tiles, charts, chart data), placed
#: relative to each other (:func:`xl_kpis.book.layout.place`): the KPI rows, then the array
#: results, a table whose size follows its data last, so that it grows with nothing below it.
LAYOUT: tuple[Block, ...] = _layout_blocks()
#: The Dashboard's column of chart data (its print area ends there).
DASH_DATA_COL = place(LAYOUT)["dash.funnel"].col


def layout(shapes: Mapping[str, tuple[int, int]] | None = None) -> dict[str, Placed]:
    """The coordinates of the :data:`LAYOUT` blocks for array results of these shapes."""
    shapes = shapes or {}
    heights = {}
    for a in ARRAYS:
        heights[f"kpis.{a.key}"] = 2 + _array_rows(a.key, shapes)
        heights[f"dash.{a.key}"] = 1 + _data_rows(a.key, shapes)
    return place(LAYOUT, heights)


def _dashboard(p: Plan, at: Mapping[str, Placed], rows: Mapping[str, int],
               shapes: Mapping[str, tuple[int, int]]) -> None:
    s = DASH
    _heading(p, s, "Dashboard",
             "The shop at a glance. Charts read the tables, the KPIs sheet and the chart"
             " data at the right.")
    tiles = at["dash.tiles"]
    for i, (label, kpi) in enumerate(TILES):
        p.add(_text(s, tiles.row, tiles.col + i, label, "tile_label"),
              Cell(s, tiles.row + 1, tiles.col + i, expr=Ref(kpi), style="tile_value",
                   fmt=KPIS[kpi].fmt))
    c = at["dash.funnel"].col
    r = at["dash.funnel"].row
    p.add(_text(s, r, c, "Chart data (formulas: don't edit)", "section"))
    # the ads funnel
    r += 1
    funnel = r + 1
    p.add(_text(s, r, c, "Ads funnel", "header"), _text(s, r, c + 1, "Count", "header"))
    for h in ("Impressions", "Clicks", "Conversions"):
        r += 1
        p.add(_text(s, r, c, h, "label"),
              Cell(s, r, c + 1, expr=_sum("Campaigns", h), style="value", fmt=FMT["int"]))
    # blocks referencing the array results (so they show in any viewer)
    blocks = {}
    for key, title, value_col, fmt in DASH_ARRAYS:
        r = at[f"dash.{key}"].row
        p.add(_text(s, r, c, title, "header"), _text(s, r, c + 1, "Revenue", "header"))
        n = _data_rows(key, shapes)
        blocks[key] = (r + 1, r + n)
        for i in range(n):
            r += 1
            p.add(Cell(s, r, c, expr=Ref(key, 1 + i, 0), style="label"),
                  Cell(s, r, c + 1, expr=Ref(key, 1 + i, value_col), style="value", fmt=fmt))
    p.print_rows[s] = max(max(x.last_row for x in at.values() if x.block.sheet == s),
                          max(at[f"chart.{k}"].last_row for k, *_ in DASH_CHARTS)
                          + DASH_PRINT_MARGIN)

    def table_range(table: str, header: str) -> tuple[str, int, int, int]:
        t = TABLE[table]
        first = t.first_data_row
        return t.sheet, first, t.col(header), first + max(rows.get(table, 0), 1) - 1

    def data_range(first: int, last: int, col: int) -> tuple[str, int, int, int]:
        return s, first, col, last

    def anchor(key: str) -> tuple[int, int]:
        return at[f"chart.{key}"].row, at[f"chart.{key}"].col

    p.charts += [
        ChartSpec("roas", "ROAS by campaign", "bar", anchor("roas"),
                  table_range("Campaigns", "Campaign"), table_range("Campaigns", "ROAS"),
                  "ROAS", FMT["ratio"]),
        ChartSpec("funnel", "Ads funnel (log scale)", "bar", anchor("funnel"),
                  data_range(funnel, funnel + 2, c), data_range(funnel, funnel + 2, c + 1),
                  "Count", FMT["int"], log_axis=True),
        ChartSpec("content", "Revenue by content type", "column", anchor("content"),
                  data_range(*blocks["content"], c), data_range(*blocks["content"], c + 1),
                  "Revenue", FMT["int"]),
        ChartSpec("top_products", "Top products by revenue", "bar", anchor("top_products"),
                  data_range(*blocks["top_products"], c),
                  data_range(*blocks["top_products"], c + 1), "Revenue", FMT["int"]),
        ChartSpec("followers", "Followers at the end of each month", "line",
                  anchor("followers"),
                  table_range("Brand", "Period"), table_range("Brand", "Followers end"),
                  "Followers", FMT["int"]),
    ]


def plan(rows: Mapping[str, int] | None = None,
         shapes: Mapping[str, tuple[int, int]] | None = None) -> Plan:
    """Every cell outside the tables, and the charts.

    Parameters
    ----------
    rows : mapping, optional
        Data rows per table (for the chart ranges over table columns).
    shapes : mapping, optional
        ``(rows, cols)`` of each array result (:data:`ARRAYS`), which decide
        how far the array and the chart data that show it extend; no other
        cell moves with them (:data:`LAYOUT`).

    Returns
    -------
    Plan
        The planned cells (constants and formulas with their keys and
        styles) and the chart specifications.
    """
    rows, shapes = rows or {}, shapes or {}
    at = layout(shapes)
    p = Plan()
    _start(p)
    for t in TABLES:
        _table_sheet(p, t)
    _kpis(p, at, shapes)
    _customers(p, shapes)
    _benchmarks(p)
    _dashboard(p, at, rows, shapes)
    p.cells = [_with_formula_text(p, c) for c in p.cells]
    return p


def _with_formula_text(p: Plan, c: Cell) -> Cell:
    if not isinstance(c.value, FormulaText):
        return c
    target = p.cell(c.value.key)
    text = render(target.expr, RenderContext(target.sheet, address=p.address))
    return replace(c, value=text)


@functools.lru_cache(maxsize=1)
def input_cells() -> dict[str, Cell]:
    """The input cells outside the tables other than the settings: ``key -> planned cell``
    (the Benchmarks limits, the CLV examples' inputs), which the seller may edit."""
    return {c.key: c for c in plan().cells
            if c.key is not None and c.expr is None and c.style == "input"
            and not c.key.startswith("setting.")}


def all_formulas(p: Plan | None = None) -> Iterator[tuple[str, Node]]:
    """``(where, formula)`` for every formula of the template (table columns and cells)."""
    for t in TABLES:
        for c in t.computed:
            yield f"{t.name}[{c.header}]", c.expr
    for c in (p or plan()).formulas():
        yield f"{c.sheet}!{c.key or (c.row, c.col)}", c.expr
