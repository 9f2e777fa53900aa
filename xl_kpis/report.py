"""The shop's KPIs as the KPIs sheet defines them, from a book's tables or from export files.

Every KPI is a row of the KPIs sheet (:data:`xl_kpis.book.schema.KPIS`): its key,
its label (which names its definition: "Follower growth per month", "Conversion
rate" of clicks …), its unit and its formula.  :func:`shop_kpis` evaluates those
rows with the same evaluator that computes the sheet
(:func:`xl_kpis.book.evaluate.evaluate_kpis`), so there is one definition of each
KPI: ``xl-kpis report BOOK`` prints exactly what the refreshed KPIs sheet shows,
and ``xl-kpis report --orders EXPORT`` what the sheet would show with those rows
in the Orders table.

An export carries only some of the input columns (an order export has no
ratings, an ads report no videos): a KPI whose inputs are missing is blank, as
on a sheet whose columns are blank.  Rates are fractions; a blank KPI, or one
the sheet shows as an error (``#DIV/0!`` with no data yet), is ``None`` (JSON
``null``): data that is not there at all (no cost column, every completed-views
cell blank, no buyer names …) is "not measured", never 0, as on the KPIs sheet.
Counts (orders, buyers, views, reviews …) are integers.

Besides the sheet's rows, a report gives the predicted CLV (BG/NBD +
Gamma-Gamma, :mod:`xl_kpis.metrics.predictive`), fitted on the lines the
Orders table counts (its ``Counted sales`` column: not cancelled, with an
order id), each line's SKU subtotal summed per buyer and day, over 12 months
with a 1 % monthly discount, times the book's gross margin (a revenue CLV from
an export, which has no margin).  :func:`clv_model_report` gives the fitted
parameters, or why the data cannot support the models.  The models are fitted
once: the fit behind the KPIs sheet's predicted CLV row, which the evaluator
hands over (:func:`xl_kpis.book.evaluate.evaluate_kpis`), so the model's lines
describe the fit of the sheet's figure.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable, Mapping

import numpy as np

from .book import schema as S
from .metrics._kpi import Coded, LazyCoded

__all__ = ["FIELDS", "Report", "shop_kpis", "report_kpis", "book_kpis", "format_value", "format_table",
           "clv_model_report", "clv_not_asked", "format_clv_model"]

def _unit(unit: Any) -> str:
    """A KPI's unit as text; a unit that is a formula (a KPI saying which data it was
    computed from: ``IF(COUNT(...)>0,"visits",IF(...,"profile views (Brand: …)","visits"))``)
    gives the text it ends with, its unit when nothing else is said."""
    while not isinstance(unit, str):
        unit = unit.args[-1] if hasattr(unit, "args") else unit.value
    return unit


#: The KPI rows of the KPIs sheet in sheet order: ``(key, label, unit, number format)``.
FIELDS: tuple[tuple[str, str, str, str], ...] = tuple(
    (k.key, k.label, _unit(k.unit), k.fmt) for k in S.KPIS.values())

#: The keys of the KPIs that count things (whole numbers, integers in the output).
COUNTS = frozenset(key for key, _, _, fmt in FIELDS if fmt == "#,##0")


class Report(dict):
    """The report's values (``key -> value or None``, JSON as it is), with ``units``: the
    unit text of each KPI whose unit the KPIs sheet computes (profile visits from
    Studio's overview say so), as the sheet shows it."""

    def __init__(self, values: Mapping[str, Any], units: Mapping[str, str] | None = None):
        super().__init__(values)
        self.units = dict(units or {})

Columns = Mapping[str, Any]


def _column(values: Any, codes: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """A column as the evaluator takes it: a numpy array from an export reader as it is
    (text with the codes the reader gave it, :class:`~xl_kpis.metrics._kpi.Coded`, or
    only its codes, :class:`~xl_kpis.metrics._kpi.LazyCoded`),
    anything else as a list of cell values."""
    if isinstance(values, LazyCoded):
        return values
    if isinstance(values, np.ndarray):
        return values if codes is None else Coded(values, *codes)
    return list(values)


def _number(v: Any, count: bool = False) -> float | int | None:
    """A KPI cell's value as JSON: a finite number (an int for a whole ``count``), else
    None (blank: not measured, error text)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    x = float(v)
    if not math.isfinite(x):
        return None
    return int(x) if count and x.is_integer() else x


def _tables(orders: Columns | None, ads: Columns | None, videos: Columns | None,
            brand: Columns | None) -> dict[str, dict[str, Any]]:
    tables = {}
    for name, cols in (("Orders", orders), ("Campaigns", ads), ("Videos", videos),
                       ("Brand", brand)):
        if cols:
            known = set(S.TABLE[name].keys)
            codes = getattr(cols, "categories", None) or {}
            tables[name] = {k: _column(v, codes.get(k)) for k, v in cols.items() if k in known}
    return tables


def shop_kpis(orders: Columns | None = None, ads: Columns | None = None,
              videos: Columns | None = None, brand: Columns | None = None,
              settings: Mapping[str, Any] | None = None,
              clv: dict | None = None) -> dict[str, float | None]:
    """Every KPI of the KPIs sheet from input columns: ``key -> value or None``, then
    ``predicted_clv``.

    Parameters
    ----------
    orders, ads, videos, brand : mapping, optional
        The columns of the Orders, Campaigns, Videos and Brand tables, keyed by
        the tables' canonical keys (``order_id``, ``status``, ``cost`` …; see
        :data:`xl_kpis.book.schema.TABLES`).  Missing tables and columns are blank.
    settings : mapping, optional
        The book's settings (gross margin …), as :func:`xl_kpis.book.evaluate.evaluate_book`
        takes them; the template's defaults otherwise.
    clv : dict, optional
        :func:`clv_model_report`'s result (fitted here, as a revenue CLV, when not
        given).
    """
    return report_kpis(orders, ads, videos, brand, settings, clv=clv)[0]


def report_kpis(orders: Columns | None = None, ads: Columns | None = None,
                videos: Columns | None = None, brand: Columns | None = None,
                settings: Mapping[str, Any] | None = None, margin: float = 1.0,
                clv: dict | None = None, progress: Callable[[str], None] | None = None
                ) -> tuple[dict[str, float | None], dict]:
    """:func:`shop_kpis` and :func:`clv_model_report` from one evaluation of the tables:
    the CLV model (its figure with ``margin``, unless ``clv`` is given) is the fit behind
    the KPIs sheet's predicted CLV row.  ``progress(step)`` is told each step as it
    starts."""
    from .book.evaluate import evaluate_kpis

    say = progress or (lambda step: None)
    lines = _has_clv_columns(orders)
    say("computing the KPIs and fitting the predicted CLV model" if lines
        else "computing the KPIs")
    values = evaluate_kpis(_tables(orders, ads, videos, brand), settings)
    if clv is None:
        clv = _clv_model(values, margin) if lines else _no_lines(margin)
    out = Report({key: _number(values[key], key in COUNTS) for key, _, _, _ in FIELDS},
                 {key: v for key in S.KPIS if isinstance(v := values.get(("unit", key)), str)})
    out["predicted_clv"] = clv["predicted_clv"]
    return out, clv


def book_kpis(path: str | os.PathLike,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The report of a book, as ``xl-kpis report BOOK --json`` prints it: the KPIs of its
    tables and settings (what its KPIs sheet shows once refreshed), the predicted CLV
    with the book's gross margin, and the CLV model (``clv_model``:
    :func:`clv_model_report`).  ``progress(step)`` is told each step as it starts."""
    from .book.refresh import read_inputs

    say = progress or (lambda step: None)
    say("reading the book's tables")
    tables, settings = read_inputs(path)
    kpis, clv = report_kpis(tables.get("Orders"), tables.get("Campaigns"),
                            tables.get("Videos"), tables.get("Brand"), settings=settings,
                            margin=settings.get("Margin", 1.0), progress=say)
    return Report({**kpis, "clv_model": clv}, kpis.units)


#: The predicted CLV's horizon and monthly discount rate (the KPIs sheet's).
CLV_MONTHS, CLV_DISCOUNT = S.CLV_MONTHS, S.CLV_DISCOUNT
#: The columns of an order export the CLV model reads besides those of the order KPIs.
CLV_ORDER_KEYS = ("created", "sku_subtotal")
#: The KPIs sheet's row whose formula fits the CLV models (the predicted CLV).
_PCLV = "pclv"


def _has_clv_columns(orders: Columns | None) -> bool:
    return bool(orders) and all(k in orders for k in ("buyer",) + CLV_ORDER_KEYS) \
        and len(orders["buyer"]) > 0


def _no_lines(margin: float) -> dict:
    return {"predicted_clv": None, "margin": margin, "months": CLV_MONTHS,
            "discount": CLV_DISCOUNT,
            "error": "no order lines with a buyer, a created time and a SKU subtotal"}


def clv_model_report(orders: Columns | None, margin: float = 1.0) -> dict:
    """The predicted CLV and the fitted BG/NBD and Gamma-Gamma parameters of order lines.

    The lines are those the Orders table counts (its ``Counted sales`` column,
    evaluated as the sheet evaluates it): the model is the fit of the KPIs
    sheet's predicted CLV row.

    Returns ``{"predicted_clv": ..., "margin": ..., "months": 12, "discount": 0.01,
    "parameters": {...}}``; without the buyer, created and SKU subtotal columns, or
    when the data cannot support the models, ``predicted_clv`` is None and
    ``"error"`` says why.
    """
    from .book.evaluate import evaluate_kpis

    if not _has_clv_columns(orders):
        return _no_lines(margin)
    return _clv_model(evaluate_kpis(_tables(orders, None, None, None)), margin)


def _clv_model(values: Mapping, margin: float) -> dict:
    """:func:`clv_model_report` of the fit behind the predicted CLV row of the evaluated
    KPIs ``values`` (:func:`~xl_kpis.book.evaluate.evaluate_kpis`), its figure with ``margin``."""
    from .metrics import predictive as P

    out: dict = {"predicted_clv": None, "margin": margin, "months": CLV_MONTHS,
                 "discount": CLV_DISCOUNT}
    fitted = values.get(("model", _PCLV))
    if fitted is None:          # the sheet's cell rules stopped the call before any fit
        shown = values.get(_PCLV)
        out["error"] = ("no order line that counts has a buyer, a created time and a SKU"
                        " subtotal" if shown is None or shown == "" else
                        f"the KPIs sheet's predicted CLV shows {shown}: a Created, SKU"
                        " subtotal or gross margin value is not a date, an amount >= 0 or a"
                        " margin 0..1")
        return out
    if isinstance(fitted, Exception):
        out["error"] = str(fitted)
        return out
    try:        # (a spend model whose mean is not finite: no figure)
        table = P.model_clv(fitted, CLV_MONTHS, margin, CLV_DISCOUNT)
    except ValueError as e:
        out["error"] = str(e)
        return out
    out["predicted_clv"] = float(table["clv"].mean())
    out["parameters"] = {name: value for name, value in P.parameter_rows(fitted)}
    return out


def clv_not_asked() -> dict:
    """:func:`clv_model_report`'s answer when the model was not asked for."""
    return {"predicted_clv": None, "margin": 1.0, "months": CLV_MONTHS,
            "discount": CLV_DISCOUNT, "error": "not computed (report --orders ... --clv fits it)"}


_QUOTED = re.compile(r'"([^"]*)"')


def format_value(value: float | None, fmt: str) -> str:
    """A KPI as the sheet's number format shows it (``#,##0.00``, ``0.00%``, ``0.00"x"``)."""
    if value is None:
        return "—"
    suffix = "".join(_QUOTED.findall(fmt))
    core = _QUOTED.sub("", fmt)
    decimals = len(core.split(".", 1)[1].rstrip("%")) if "." in core else 0
    if core.endswith("%"):
        return f"{value * 100:,.{decimals}f}%{suffix}"
    return f"{value:{',' if ',' in core else ''}.{decimals}f}{suffix}"


def format_table(kpis: Mapping[str, float | None]) -> str:
    """The KPIs as an aligned text table: label, value, unit (the unit the sheet computes,
    when the report has it: :attr:`Report.units`).  The predicted CLV is the KPIs sheet's
    row (its margin is the gross margin setting); the model's own figure, with the
    margin it was fitted with, is in :func:`format_clv_model`."""
    units = getattr(kpis, "units", {})
    width = max(len(label) for _, label, _, _ in FIELDS)
    return "\n".join(
        f"{label:<{width}}  {format_value(kpis.get(key), fmt):>14}  {units.get(key, unit)}"
        for key, label, unit, fmt in FIELDS)


def format_clv_model(clv: dict) -> str:
    """:func:`clv_model_report` as a few lines of text."""
    what = (f"{clv['months']} months, {clv['discount']:.0%} monthly discount, "
            + ("revenue" if clv["margin"] == 1 else f"x {clv['margin']:.0%} gross margin"))
    if clv["predicted_clv"] is None:
        return f"Predicted CLV model ({what}): not fitted: {clv['error']}"
    p = clv["parameters"]
    return "\n".join([
        f"Predicted CLV model ({what}): {format_value(clv['predicted_clv'], '#,##0.00')} per"
        f" buyer, fitted on {p['Customers']:,.0f} buyers"
        f" ({p['Repeat customers']:,.0f} repeat), time unit {p['Time unit']}, as of {p['As of']}:",
        f"  BG/NBD       r {p['r']:.4g}  alpha {p['alpha']:.4g}  a {p['a']:.4g}  b {p['b']:.4g}"
        f"  log-likelihood {p['BG/NBD log-likelihood']:,.1f}",
        f"  Gamma-Gamma  p {p['p']:.4g}  q {p['q']:.4g}  gamma {p['gamma']:.4g}"
        f"  log-likelihood {p['Gamma-Gamma log-likelihood']:,.1f}"])
