"""Synthetic TikTok Shop order exports, for benchmarks and tests.

:func:`write_order_export` writes a CSV shaped like a US Seller Center
"OrderSKUList" export (docs/tiktok-exports.md §B): every real header in the real
order, the field-description row 2, US dates (``12/15/2025 9:30:33 AM``),
ids with the stray trailing tab TikTok adds, one line per SKU with the
order-level amounts repeated on every line of the order, repeat buyers,
cancellations, returns/refunds, masked recipients, the odd buyer message with a
comma, a line break or a ``=HYPERLINK(...)`` in it.

The output depends only on the arguments, so a benchmark can be rerun on the
same bytes.  A million lines (about 520 MB) take about 15 s to write.

>>> import tempfile, os, csv
>>> with tempfile.TemporaryDirectory() as d:
...     p = os.path.join(d, "orders.csv")
...     _ = write_order_export(p, 25, seed=1)
...     with open(p, encoding="utf-8-sig", newline="") as f:
...         rows = list(csv.reader(f))
>>> rows[0][:3], len(rows[0]) == len(ORDER_HEADERS), len(rows) - 2
(['Order ID', 'Order Status', 'Order Substatus'], True, 25)
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from typing import Sequence

import numpy as np

__all__ = ["ORDER_HEADERS", "ORDER_DESCRIPTIONS", "write_order_export"]

#: (header, description-row text) of a US "OrderSKUList" export, in file order.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Order ID", "Platform unique order ID."),
    ("Order Status", "Current order status."),
    ("Order Substatus", "Substatus of the order."),
    ("Cancelation/Return Type", "Cancellation or return/refund type."),
    ("Normal or Pre-order", "Whether the order is a normal order or a pre-order."),
    ("SKU ID", "Platform unique SKU ID."),
    ("Seller SKU", "SKU code set by the seller."),
    ("Product Name", "Product name."),
    ("Variation", "Product variation, e.g. color, size."),
    ("Quantity", "Quantity of this SKU in the order."),
    ("Sku Quantity of return", "Quantity of this SKU returned."),
    ("SKU Unit Original Price", "Original unit price of the SKU."),
    ("SKU Subtotal Before Discount", "Unit price x quantity."),
    ("SKU Platform Discount", "Discount funded by the platform."),
    ("SKU Seller Discount", "Discount funded by the seller."),
    ("SKU Subtotal After Discount", "Subtotal after platform and seller discounts."),
    ("Shipping Fee After Discount", "Shipping fee paid by the buyer."),
    ("Original Shipping Fee", "Shipping fee before discounts."),
    ("Shipping Fee Seller Discount", "Shipping discount funded by the seller."),
    ("Shipping Fee Platform Discount", "Shipping discount funded by the platform."),
    ("Payment platform discount", "Discount from the payment platform."),
    ("Taxes", "Taxes charged to the buyer."),
    ("Order Amount", "Total amount paid by the buyer for the order."),
    ("Order Refund Amount", "Amount refunded to the buyer."),
    ("Created Time", "Time the order was placed."),
    ("Paid Time", "Time the order was paid."),
    ("RTS Time", "Time the order was ready to ship."),
    ("Shipped Time", "Time the order was shipped."),
    ("Delivered Time", "Time the order was delivered."),
    ("Cancelled Time", "Time the order was cancelled."),
    ("Cancel By", "Who cancelled the order."),
    ("Cancel Reason", "Reason for cancellation."),
    ("Fulfillment Type", "Fulfilled by seller or by TikTok."),
    ("Warehouse Name", "Warehouse that ships the order."),
    ("Tracking ID", "Tracking number of the package."),
    ("Delivery Option", "Delivery option chosen by the buyer."),
    ("Shipping Provider Name", "Carrier name."),
    ("Buyer Message", "Message left by the buyer."),
    ("Buyer Username", "Buyer's TikTok username."),
    ("Recipient", "Recipient name."),
    ("Phone #", "Recipient phone number."),
    ("Country", "Country."),
    ("State", "State."),
    ("City", "City."),
    ("Zipcode", "Zip code."),
    ("Detail Address", "Street address."),
    ("Additional address information", "Apartment, suite, unit, etc."),
    ("Payment Method", "Payment method."),
    ("Weight(kg)", "Package weight in kg."),
    ("Product Category", "Product category."),
    ("Package ID", "Package ID."),
    ("Seller Note", "Note added by the seller."),
)

ORDER_HEADERS: tuple[str, ...] = tuple(h for h, _ in _COLUMNS)
ORDER_DESCRIPTIONS: tuple[str, ...] = tuple(d for _, d in _COLUMNS)
_COL = {h: i for i, h in enumerate(ORDER_HEADERS)}

_STATUSES = (  # (status, substatus, weight)
    ("Completed", "Completed", 0.58),
    ("Delivered", "Delivered", 0.10),
    ("Shipped", "In transit", 0.08),
    ("To ship", "Awaiting shipment", 0.06),
    ("Cancelled", "Cancelled", 0.15),
    ("Unpaid", "Unpaid", 0.03),
)
_NOUNS = (  # (noun, product category)
    ("T-Shirt", "Womenswear & Underwear"), ("Hoodie", "Womenswear & Underwear"),
    ("Phone Case", "Phones & Electronics"), ("Lip Gloss", "Beauty & Personal Care"),
    ("Serum", "Beauty & Personal Care"), ("Water Bottle", "Home Supplies"),
    ("Tote Bag", "Fashion Accessories"), ("Sneakers", "Shoes"), ("Face Mask", "Beauty & Personal Care"),
    ("LED Strip", "Home Supplies"), ("Yoga Mat", "Sports & Outdoor"), ("Earbuds", "Phones & Electronics"))
_ADJECTIVES = ("Classic", "Oversized", "Glow", "Eco", "Mini", "Pro", "Soft-Touch", "Vintage")
_COLOURS = ("Black", "White", "Red", "Pink", "Sage", "Blue")
_SIZES = ("S", "M", "L", "XL")
_STATES = (("CA", "Los Angeles", "900"), ("TX", "Houston", "770"), ("NY", "Brooklyn", "112"),
           ("FL", "Miami", "331"), ("IL", "Chicago", "606"), ("WA", "Seattle", "981"))
_CARRIERS = ("USPS", "UPS", "FedEx")
_MESSAGES = ("", "Please gift wrap, thanks!", "Leave at the back door\nThank you",
             '=HYPERLINK("http://example.com/promo")', "Size up please \U0001F64F")
_SYLLABLES = ("ka", "lo", "mi", "ra", "zu", "ne", "ti", "so", "ba", "ye", "qu", "xo")


def _us_time(t: dt.datetime | None) -> str:
    """``12/15/2025 9:30:33 AM`` as in US exports (blank for None)."""
    if t is None:
        return ""
    hour = t.hour % 12 or 12
    return f"{t.month:02d}/{t.day:02d}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} " + \
        ("AM" if t.hour < 12 else "PM")


def _username(i: int) -> str:
    """A stable, username-like handle for buyer number ``i``."""
    s = _SYLLABLES
    n = len(s)
    return f"{s[i % n]}{s[i // n % n]}{s[i // n // n % n]}.{i}"


def _catalogue(rng: np.random.Generator, size: int = 240) -> list[tuple[str, str, str, str, float, str]]:
    """SKUs as (sku_id, seller_sku, product, variation, unit_price, category)."""
    skus = []
    for p in range(size // 4):
        noun, category = _NOUNS[p % len(_NOUNS)]
        name = f"{_ADJECTIVES[p % len(_ADJECTIVES)]} {noun} No.{p}"
        if p % 5 == 0:
            name += ", 2-Pack"  # a comma inside a quoted CSV cell
        price = float(rng.choice((9.99, 12.5, 14.99, 19.99, 24.0, 29.99, 39.9, 59.0)))
        for v in range(4):
            variation = f"{_COLOURS[(p + v) % len(_COLOURS)]}, {_SIZES[v]}"
            sku_id = str(1729_000_000_000_000_000 + p * 1000 + v)  # 19 digits
            seller_sku = f"{noun[:3].upper()}-{p:03d}-{v}"
            skus.append((sku_id, seller_sku, name, variation, price, category))
    return skus


def _order_sizes(rng: np.random.Generator, n_lines: int) -> np.ndarray:
    """Number of SKU lines of each order, summing to exactly ``n_lines``."""
    sizes = rng.choice((1, 1, 1, 1, 1, 2, 2, 3, 4), size=n_lines + 1)
    ends = np.cumsum(sizes)
    k = int(np.searchsorted(ends, n_lines))
    sizes = sizes[: k + 1].copy()
    sizes[-1] -= int(ends[k] - n_lines)
    return sizes[sizes > 0]


def write_order_export(path: str | os.PathLike[str], n_lines: int, seed: int = 0,
                       end: dt.datetime = dt.datetime(2025, 12, 31, 23, 0)) -> int:
    """Write a synthetic US TikTok Shop order export (CSV) and return its number of orders.

    ``n_lines`` SKU lines follow the header and the description row; orders
    are spread over the 90 days before ``end``.  Buyers repeat (a skewed
    draw from a pool of about 0.6 buyers per order), about 15% of orders are
    cancelled, about 5% of completed orders are refunded (fully or in part,
    with a returned quantity), and 1-4 SKU lines share an order whose Order
    Amount is repeated on each line.  The file is UTF-8 with a BOM and CRLF
    line ends, as Excel-friendly exports are.
    """
    rng = np.random.default_rng(seed)
    skus = _catalogue(rng)
    sizes = _order_sizes(rng, n_lines) if n_lines > 0 else np.zeros(0, dtype=int)
    n_orders = len(sizes)
    pool = max(1, int(n_orders * 0.6))
    buyers = (pool * rng.random(n_orders) ** 2.5).astype(np.int64)  # skewed: repeat buyers
    status_idx = rng.choice(len(_STATUSES), size=n_orders, p=[s[2] for s in _STATUSES])
    refunded = (status_idx == 0) & (rng.random(n_orders) < 0.05)
    created_s = rng.integers(0, 90 * 86400, size=n_orders)
    order = np.argsort(created_s, kind="stable")  # orders listed newest first, as exported
    sku_pick = rng.integers(0, len(skus), size=n_lines)
    qty = rng.choice((1, 1, 1, 1, 2, 2, 3), size=n_lines)
    msg_pick = rng.choice(len(_MESSAGES), size=n_orders, p=(0.9, 0.04, 0.02, 0.02, 0.02))
    start = end - dt.timedelta(days=90)

    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(ORDER_HEADERS)
        w.writerow(ORDER_DESCRIPTIONS)
        line = 0
        for rank, o in enumerate(order[::-1].tolist()):
            created = start + dt.timedelta(seconds=int(created_s[o]))
            lines = range(line, line + int(sizes[o]))
            line += int(sizes[o])
            w.writerows(_order_rows(o, rank, created, lines, skus, sku_pick, qty,
                                    _STATUSES[status_idx[o]], bool(refunded[o]),
                                    int(buyers[o]), _MESSAGES[msg_pick[o]]))
    return n_orders


_SKU_COLUMNS = tuple(_COL[h] for h in (
    "SKU ID", "Seller SKU", "Product Name", "Variation", "Quantity", "Sku Quantity of return",
    "SKU Unit Original Price", "SKU Subtotal Before Discount", "SKU Platform Discount",
    "SKU Seller Discount", "SKU Subtotal After Discount", "Product Category"))


def _order_rows(o: int, rank: int, created: dt.datetime, lines: range, skus: Sequence[tuple],
                sku_pick: np.ndarray, qty: np.ndarray, status: tuple, refunded: bool,
                buyer: int, message: str) -> list[list[str]]:
    """The SKU lines of one order, as lists of cell strings."""
    name, substatus, _ = status
    order_id = str(576_400_000_000_000_000 + o * 7919 + 13)  # 18 digits
    subtotals, sku_cells = [], []
    for li in lines:
        sku_id, seller_sku, product, variation, price, category = skus[sku_pick[li]]
        q = int(qty[li])
        before = round(price * q, 2)
        seller_disc = round(before * 0.1, 2) if li % 3 == 0 else 0.0
        platform_disc = round(before * 0.05, 2) if li % 4 == 0 else 0.0
        after = round(before - seller_disc - platform_disc, 2)
        subtotals.append(after)
        sku_cells.append((sku_id + "\t", seller_sku, product, variation, str(q), str(q) if refunded else "0",
                          f"{price:.2f}", f"{before:.2f}", f"{platform_disc:.2f}", f"{seller_disc:.2f}",
                          f"{after:.2f}", category))
    shipping = 0.0 if sum(subtotals) >= 35 else 4.99
    taxes = round(sum(subtotals) * 0.0725, 2)
    amount = round(sum(subtotals) + shipping + taxes, 2)
    refund = (amount if rank % 2 else round(amount / 2, 2)) if refunded else 0.0
    state, city, zip3 = _STATES[buyer % len(_STATES)]
    paid = None if name == "Unpaid" else created + dt.timedelta(seconds=40 + o % 600)
    shipped = created + dt.timedelta(days=2) if name in ("Completed", "Delivered", "Shipped") else None
    delivered = created + dt.timedelta(days=5) if name in ("Completed", "Delivered") else None
    cancelled = created + dt.timedelta(hours=3) if name == "Cancelled" else None
    common = {
        "Order ID": order_id + "\t",
        "Order Status": name,
        "Order Substatus": substatus,
        "Cancelation/Return Type": "Cancel" if cancelled else ("Return/Refund" if refunded else ""),
        "Normal or Pre-order": "Normal",
        "Shipping Fee After Discount": f"{shipping:.2f}",
        "Original Shipping Fee": "4.99",
        "Shipping Fee Seller Discount": f"{4.99 - shipping:.2f}",
        "Shipping Fee Platform Discount": "0.00",
        "Payment platform discount": "0.00",
        "Taxes": f"{taxes:.2f}",
        "Order Amount": f"{amount:.2f}",
        "Order Refund Amount": f"{refund:.2f}",
        "Created Time": _us_time(created) + ("\t" if o % 17 == 0 else ""),  # stray tab
        "Paid Time": _us_time(paid),
        "RTS Time": _us_time(shipped and shipped - dt.timedelta(hours=20)),
        "Shipped Time": _us_time(shipped),
        "Delivered Time": _us_time(delivered),
        "Cancelled Time": _us_time(cancelled),
        "Cancel By": "User" if cancelled else "",
        "Cancel Reason": "No longer needed" if cancelled else "",
        "Fulfillment Type": "Fulfillment by seller",
        "Warehouse Name": "Main Warehouse",
        "Tracking ID": (f"9400{o:018d}" + "\t") if shipped else "",
        "Delivery Option": "Standard shipping",
        "Shipping Provider Name": _CARRIERS[o % 3] if shipped else "",
        "Buyer Message": message,
        "Buyer Username": _username(buyer),
        "Recipient": f"{'ABCDEFGHJKLMNPRSTW'[buyer % 18]}*** {'ABCDEFGHJKLMNPRSTW'[buyer // 18 % 18]}***",
        "Phone #": f"(+1)213*****{buyer % 100:02d}",
        "Country": "United States",
        "State": state,
        "City": city,
        "Zipcode": f"{zip3}{buyer % 100:02d}",
        "Detail Address": f"{100 + buyer % 900} Main St, Unit {buyer % 40}",
        "Additional address information": "",
        "Payment Method": ("Credit card", "PayPal", "Apple Pay")[o % 3],
        "Weight(kg)": "0.4",
        "Package ID": f"1153{o:014d}\t" if shipped else "",
        "Seller Note": "",
    }
    base = [""] * len(ORDER_HEADERS)
    for header, value in common.items():
        base[_COL[header]] = value
    rows = []
    for cells in sku_cells:
        row = base.copy()
        for i, value in zip(_SKU_COLUMNS, cells):
            row[i] = value
        rows.append(row)
    return rows
