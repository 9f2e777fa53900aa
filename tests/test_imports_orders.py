"""TikTok Shop order export parsers (xl_kpis/imports/orders.py) and the synthetic export (synth.py).

"§B" = docs/tiktok-exports.md section B (Seller Center order export).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xl_kpis.imports.orders as orders_module
from xl_kpis.imports import ExportFormatError, parse_orders, read_order_columns
from xl_kpis.imports.orders import COLUMN_KEYS, KPI_KEYS
from xl_kpis.imports.synth import ORDER_DESCRIPTIONS, ORDER_HEADERS, write_order_export

DATA = Path(__file__).parent / "data" / "exports"


@pytest.fixture(scope="module")
def orders():
    return parse_orders(DATA / "orders_us.csv")


def test_result_shape(orders):
    assert (orders.kind, orders.table, orders.key_fields) == ("orders", "Orders", ("order_id", "sku_id"))
    assert orders.skipped == [(2, "description row")]       # §B row 2 holds field descriptions
    assert len(orders.rows) == 4
    assert "Phone #" in orders.unmapped_headers and "Recipient" in orders.unmapped_headers  # PII not imported
    assert orders.currency is None


@pytest.mark.parametrize("row, key, expected", [
    (0, "order_id", "576461234567890123"),        # §B stray tab after the id
    (2, "order_id", "5764612345678901239"),       # brief: 19-digit id kept exact
    (0, "sku_id", "1729384756102938475"),
    (0, "created", dt.datetime(2025, 12, 15, 9, 30, 33)),   # §B "12/15/2025 9:30:33 AM" + tab
    (2, "created", dt.datetime(2026, 1, 2, 23, 59, 59)),    # "1/2/2026 11:59:59 PM"
    (3, "created", dt.datetime(2026, 1, 3, 0, 0)),          # "12:00:00 AM" is midnight
    (0, "delivered", dt.datetime(2025, 12, 19, 14, 5)),
    (2, "paid", None),
    (0, "buyer_message", '=HYPERLINK("http://x")'),          # brief: kept as literal text
    (2, "buyer", "bob_88"),                                   # §B tabs around the username
    (0, "product", "Classic Tee, 2-Pack"),                   # quoted comma
    (0, "order_amount", 40.05), (1, "order_amount", 40.05),  # §B repeated on each SKU line
    (0, "sku_subtotal", 22.5), (1, "sku_subtotal", 15.0),
    (3, "returned_qty", 1.0), (3, "refund", 21.44), (3, "cancel_type", "Return/Refund"),
    (2, "status", "Cancelled"), (2, "cancel_type", "Cancel"),
    (0, "state", "CA"), (0, "country", "United States"), (2, "category", None),
])
def test_known_values(orders, row, key, expected):
    assert orders.rows[row][key] == expected


def test_columns_match_rows(orders):
    cols = read_order_columns(DATA / "orders_us.csv", COLUMN_KEYS)
    assert cols.skipped == orders.skipped
    _assert_same(cols, orders)
    assert set(cols) == set(COLUMN_KEYS)
    assert cols["order_id"].dtype == object and cols["order_amount"].dtype == np.float64
    assert cols["created"].dtype == np.dtype("datetime64[s]")


def test_default_columns_are_those_of_the_kpis(orders):
    cols = read_order_columns(DATA / "orders_us.csv")
    assert set(cols) == set(KPI_KEYS) == {"order_id", "status", "buyer", "order_amount"}
    _assert_same(cols, orders)
    with pytest.raises(ValueError, match="unknown column keys \\['sku_id'\\]"):
        read_order_columns(DATA / "orders_us.csv", ["order_id", "sku_id"])


def test_categories(orders):
    cols = read_order_columns(DATA / "orders_us.csv", COLUMN_KEYS)
    codes, values = cols.categories["order_id"]
    # sorted as text, as numpy.unique sorts them: the 19-digit id comes before "...124"
    assert values.tolist() == ["576461234567890123", "5764612345678901239", "576461234567890124"]
    assert codes.tolist() == [0, 0, 1, 2]
    codes, values = cols.categories["buyer"]
    assert values[codes].tolist() == [row["buyer"] for row in orders.rows]
    assert set(cols.categories) == {"order_id", "status", "buyer", "product"}


def _assert_same(cols, result):
    """read_order_columns gives the parse_orders values of its columns, row for row;
    its categories give the same text and ids."""
    for key in cols:
        expected = [row[key] for row in result.rows]
        got = cols[key]
        assert len(got) == len(expected), key
        if got.dtype == np.float64:
            np.testing.assert_array_equal(got, np.array([np.nan if v is None else v for v in expected]))
        elif got.dtype.kind == "M":
            assert got.astype(object).tolist() == expected, key
        else:
            assert got.tolist() == expected, key
            codes, values = cols.categories[key]
            assert [None if c < 0 else values[c] for c in codes.tolist()] == expected, key
            assert len(set(values.tolist())) == len(values) and None not in values.tolist(), key
            if key == "order_id":
                assert values.tolist() == sorted(values.tolist())
            else:       # text: in the order of first appearance
                assert values.tolist() == list(dict.fromkeys(v for v in expected if v is not None)), key


# --------------------------------------------------------------------------- xlsx


def _order_book(path, rows, sheet=True):
    wb = openpyxl.Workbook()
    if sheet:
        wb.active.title = "Summary"
        ws = wb.create_sheet("OrderSKUList")
    else:
        ws = wb.active
    ws.append(list(ORDER_HEADERS))
    ws.append(list(ORDER_DESCRIPTIONS))
    col = {h: i for i, h in enumerate(ORDER_HEADERS)}
    for r in rows:
        line = [None] * len(ORDER_HEADERS)
        for k, v in r.items():
            line[col[k]] = v
        ws.append(line)
    wb.save(path)


def test_an_xlsx_export_beyond_the_bound_says_what_reads_it(tmp_path, monkeypatch):
    """An xlsx export past the inflated-size bound (a long period: about 150,000 lines at the
    real 256 MiB, lowered here) compresses as real sheets do: the refusal names the bound and
    the way out (a shorter period, or CSV), not a zip bomb; the same lines as CSV are read."""
    from xl_kpis import package

    path = tmp_path / "orders.xlsx"
    rows = [{"Order ID": f"5764612345678{i:05d}", "SKU ID": "1", "Quantity": 1, "Order Amount": 12.5,
             "Buyer Username": f"buyer{i % 97}", "Buyer Message": "Please gift wrap, thanks!"}
            for i in range(6000)]
    _order_book(path, rows)
    monkeypatch.setattr(package, "MAX_TOTAL", 1 << 20)
    for reader in (parse_orders, read_order_columns):
        with pytest.raises(ExportFormatError) as e:
            reader(path)
        assert str(e.value).startswith("orders.xlsx: inflates to more than 1 MiB")
        assert "export a shorter period, or the export as CSV" in str(e.value)
        assert "zip bomb" not in str(e.value)
    csv_path = tmp_path / "orders.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(ORDER_HEADERS)
        w.writerow(ORDER_DESCRIPTIONS)
        w.writerows([[r.get(h, "") for h in ORDER_HEADERS] for r in rows])
    assert len(parse_orders(csv_path).rows) == 6000


def test_xlsx_sheet_ordersku_list(tmp_path):
    path = tmp_path / "orders.xlsx"
    _order_book(path, [
        {"Order ID": "576461234567890123\t", "SKU ID": "1729384756102938475", "Quantity": 2,
         "Order Amount": 12.5, "Created Time": dt.datetime(2025, 12, 15, 9, 30, 33), "Buyer Username": "a"},
        {"Order ID": 576461234567890124, "SKU ID": "1", "Quantity": 1, "Order Amount": 1,   # a number: digits lost
         "Created Time": "12/15/2025 9:30:33 AM", "Buyer Username": "b"},
        {"Order ID": 576461234.0, "SKU ID": 17.0, "Quantity": 1, "Order Amount": "$3.00",
         "Created Time": 45000.5, "Buyer Username": "c", "Buyer Message": '=HYPERLINK("http://x")'},
    ])
    r = parse_orders(path)
    assert r.source == "orders.xlsx[OrderSKUList]"
    assert [(x["order_id"], x["sku_id"], x["quantity"], x["created"]) for x in r.rows] == [
        ("576461234567890123", "1729384756102938475", 2.0, dt.datetime(2025, 12, 15, 9, 30, 33)),
        ("576461234", "17", 1.0, dt.datetime(2023, 3, 15, 12, 0)),
    ]
    assert r.skipped[0] == (2, "description row")
    assert r.skipped[1][0] == 4 and "digits lost" in r.skipped[1][1]    # brief: float id > 2**53
    # openpyxl writes a leading "=" string as a formula; a real export stores text, which stays text:
    cols = read_order_columns(path, COLUMN_KEYS)
    assert cols.skipped == r.skipped
    _assert_same(cols, r)


def test_xlsx_first_sheet_when_no_ordersku_list(tmp_path):
    path = tmp_path / "orders.xlsx"
    _order_book(path, [{"Order ID": "1", "Order Amount": "5"}], sheet=False)
    assert [x["order_amount"] for x in parse_orders(path).rows] == [5.0]


# --------------------------------------------------------------------------- bad files and odd CSVs


def test_not_an_order_export(tmp_path):
    path = tmp_path / "ads.csv"
    path.write_text("Campaign name,Cost\nA,1\n", encoding="utf-8")
    with pytest.raises(ExportFormatError, match="no recognisable header"):
        parse_orders(path)
    with pytest.raises(ExportFormatError, match="no recognisable header"):
        read_order_columns(path)


@pytest.mark.parametrize("name, data", [
    ("encrypted.xlsx", bytes.fromhex("D0CF11E0A1B11AE1") + bytes(600)),   # brief: OLE2 container
    ("truncated.xlsx", b"PK\x03\x04" + bytes(100)),
])
def test_bad_files(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    for reader in (parse_orders, read_order_columns):
        with pytest.raises(ExportFormatError, match=name.replace(".", r"\.")):
            reader(path)


def _csv_text(rows, quoting=csv.QUOTE_MINIMAL, headers=ORDER_HEADERS):
    buf = io.StringIO()
    w = csv.writer(buf, quoting=quoting, lineterminator="\r\n")
    w.writerow(headers)
    w.writerow(ORDER_DESCRIPTIONS[: len(headers)])
    w.writerows(rows)
    return buf.getvalue()


def _row(order_id, **cells):
    line = [""] * len(ORDER_HEADERS)
    line[0] = order_id
    for k, v in cells.items():
        line[ORDER_HEADERS.index(k.replace("_", " "))] = v
    return line


@pytest.mark.parametrize("case", ["ragged", "semicolon", "unterminated", "blank_lines", "quote_all",
                                  "stray_quote", "stray_quotes", "after_quote", "space_quote"])
def test_odd_csvs_read_the_same_both_ways(tmp_path, case):
    rows = [_row("11", Order_Amount="1.50", Buyer_Username="x"), _row("12", Order_Amount="2", Quantity="3")]
    text = _csv_text(rows, quoting=csv.QUOTE_ALL if case == "quote_all" else csv.QUOTE_MINIMAL)
    if case == "ragged":
        text += "13,Completed\r\n"                    # a short row: read by the csv module
    elif case == "semicolon":
        text = text.replace(",", ";")
    elif case == "unterminated":
        text += '14,"Completed'
    elif case == "blank_lines":
        text = text.replace("\r\n11,", "\r\n\r\n,,,\r\n11,") + "\r\n\r\n"
    elif case == "stray_quote":
        text = text.replace(",x,", ',x"y,')                # a quote inside an unquoted cell
    elif case == "stray_quotes":
        text = text.replace(",x,", ',x"y"z,')
    elif case == "after_quote":
        text = text.replace(",x,", ',"x"y,')               # text after the closing quote
    elif case == "space_quote":
        text = text.replace(",x,", ', "x" ,')              # not a quoted cell for the csv module
    path = tmp_path / "o.csv"
    path.write_text(text, encoding="utf-8")
    result = parse_orders(path)
    assert result == _parse_with_csv_module(path)
    cols = read_order_columns(path, COLUMN_KEYS)
    _assert_same(cols, result)
    assert cols.skipped == result.skipped
    assert [x["order_id"] for x in result.rows][:2] == ["11", "12"]


def test_bad_number_in_kpi_column_is_skipped_with_reason(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text(_csv_text([_row("11", Order_Amount="1,5"), _row("12", Order_Amount="$2.00")]), encoding="utf-8")
    cols = read_order_columns(path)
    assert cols["order_id"].tolist() == ["12"]
    assert cols.skipped == [(2, "description row"),
                            (3, "line 3, column 'Order Amount': '1,5' is not a number")]
    assert parse_orders(path).skipped == cols.skipped


def test_invalid_utf8_in_kpi_column(tmp_path):
    path = tmp_path / "o.csv"
    text = _csv_text([_row("11", Buyer_Username="BUYER")]).encode("utf-8")
    path.write_bytes(text.replace(b"BUYER", b"bu\xffyer"))
    with pytest.raises(ExportFormatError, match="not UTF-8"):
        read_order_columns(path)


# --------------------------------------------------------------------------- fast path = slow path


def test_columns_equal_parse_orders_on_synthetic_export(tmp_path):
    path = tmp_path / "orders.csv"
    write_order_export(path, 3000, seed=11)
    result = parse_orders(path)
    cols = read_order_columns(path, COLUMN_KEYS)
    assert len(result.rows) == 3000
    _assert_same(cols, result)
    assert cols.skipped == result.skipped == [(2, "description row")]
    codes_only = read_order_columns(path, COLUMN_KEYS, labels=False)
    for key in ("order_id", "status", "buyer", "product"):     # the text columns: made when read
        assert [a.tolist() for a in codes_only[key].parts] == \
            [a.tolist() for a in cols.categories[key]]
        assert codes_only[key].values.tolist() == cols[key].tolist()


_cell = st.one_of(
    st.sampled_from(["", " ", "\t", "--", "<5", "N/A", "Total of 3 results", "a,b", 'say "hi"', "x\ny",
                     "\u00a0nbsp\u00a0", "=HYPERLINK(\"http://x\")", "12/15/2025 9:30:33 AM", "12/15/2025",
                     "2026-07-18 00:00:00", "15/12/2025", "$1,234.50", "(3.00)", "1.5%", "USD 2", "1,5",
                     "576461234567890123\t", "5764612345678901234", "0", "-1", "Completed", "ünï", "😀"]),
    st.text(alphabet="ab ,\"\t\n0123456789.$/:", max_size=12),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["11", "12", "x", "", "576461234567890123", "Total"]),
                               _cell, _cell, _cell, _cell, _cell, _cell, _cell), max_size=25),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
def test_fast_reader_matches_parse_orders(tmp_path_factory, rows, quoting):
    """Any mix of quirky cells: read_order_columns keeps/drops the same rows with the same values."""
    path = tmp_path_factory.mktemp("prop") / "o.csv"
    lines = [_row(oid, Order_Status=a, Buyer_Username=b, Order_Amount=c, Product_Name=d,
                  SKU_Subtotal_After_Discount=e, Quantity=f, Created_Time=g) for oid, a, b, c, d, e, f, g in rows]
    path.write_text(_csv_text(lines, quoting=quoting), encoding="utf-8")
    result = parse_orders(path)
    cols = read_order_columns(path, COLUMN_KEYS)
    _assert_same(cols, result)
    # parse_orders also checks columns the fast reader does not read; restricted to ours they agree
    kept = {line for line, _ in cols.skipped}
    assert kept <= {line for line, _ in result.skipped}


def _parse_with_csv_module(path):
    """parse_orders as it reads the files pyarrow does not read as the csv module: row by row."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(orders_module, "_arrow_table", lambda *args: None)
        return parse_orders(path)


def _read_with_csv_module(path, keys=COLUMN_KEYS):
    """read_order_columns on the csv module's rows."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(orders_module, "_arrow_table", lambda *args: None)
        return read_order_columns(path, keys)


class _Spy:
    """Records which reader read a file: pyarrow's table, or None (the csv module)."""

    def __init__(self, monkeypatch):
        self.tables = []
        real = orders_module._arrow_table
        monkeypatch.setattr(orders_module, "_arrow_table",
                            lambda *a: self.tables.append(real(*a)) or self.tables[-1])

    @property
    def by_arrow(self):
        return bool(self.tables) and all(t is not None for t in self.tables)


def test_parse_orders_on_pyarrow_equals_csv_module(tmp_path, monkeypatch):
    path = tmp_path / "orders.csv"
    write_order_export(path, 3000, seed=11)
    spy = _Spy(monkeypatch)
    result = parse_orders(path)
    assert spy.by_arrow                                             # pyarrow read it
    assert len(result.rows) == 3000 and result.skipped == [(2, "description row")]
    assert result == _parse_with_csv_module(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = list(csv.reader(f))[2]
    assert first[0].endswith("\t") and result.rows[0]["order_id"] == first[0][:-1]   # without the stray tab
    created = first[ORDER_HEADERS.index("Created Time")]
    assert result.rows[0]["created"] == dt.datetime.strptime(created, "%m/%d/%Y %I:%M:%S %p")


_row_kind = st.sampled_from(["data"] * 4 + ["blank", "spaces", "no id", "late total", "id only"])
_order_id = st.sampled_from(["11", "12", "x", "", " 13\t", "576461234567890123", "Total", "\u00a014", "'15"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_row_kind, _order_id, *[_cell] * 8), max_size=25),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
def test_parse_orders_scanner_matches_csv_module(tmp_path_factory, rows, quoting):
    """Any mix of quirky cells and rows: pyarrow's cells give parse_orders' rows, values and reasons."""
    lines = []
    for kind, oid, a, b, c, d, e, f, g, h in rows:
        if kind == "blank":
            lines.append([""] * len(ORDER_HEADERS))
        elif kind == "spaces":
            lines.append(_row(" ", Order_Status="\t", Buyer_Username="\u00a0", Seller_Note=" "))
        elif kind == "id only":
            lines.append(_row(oid))
        else:
            lines.append(_row("" if kind == "no id" else oid, Order_Status=a, Buyer_Username=b,
                              Order_Amount=c, Product_Name=d, Quantity=e, Created_Time=f, Paid_Time=g,
                              SKU_ID=h, Seller_Note="Total" if kind == "late total" else ""))
    path = tmp_path_factory.mktemp("prop") / "o.csv"
    path.write_text(_csv_text(lines, quoting=quoting), encoding="utf-8")
    assert parse_orders(path) == _parse_with_csv_module(path)


def test_parse_orders_invalid_utf8_anywhere(tmp_path):
    """A byte that is not UTF-8, even in a column not imported: reported as the csv module reports it."""
    path = tmp_path / "o.csv"
    text = _csv_text([_row("11", Seller_Note="NOTE"), _row("12")]).encode("utf-8")
    path.write_bytes(text.replace(b"NOTE", b"n\xffte"))
    with pytest.raises(ExportFormatError, match="is not UTF-8 text") as fast:
        parse_orders(path)
    with pytest.raises(ExportFormatError) as slow:
        _parse_with_csv_module(path)
    assert str(fast.value) == str(slow.value)


def test_very_wide_cells(tmp_path):
    long_name = "Gift set, " + "x" * 3000 + ' "deluxe"'
    path = tmp_path / "o.csv"
    path.write_text(_csv_text([_row("11", Product_Name=long_name), _row("12", Product_Name="short")]),
                    encoding="utf-8")
    cols = read_order_columns(path, COLUMN_KEYS)
    assert cols["product"].tolist() == [long_name, "short"]
    _assert_same(cols, parse_orders(path))


# --------------------------------------------------------------------------- the synthetic export

# §B full header list (jeffpham2906/JP-Manager), with the US State/City/Zipcode columns in place of
# Province/District/Commune, copied from the reference rather than from synth.py.
REFERENCE_HEADERS = tuple("""Order ID|Order Status|Order Substatus|Cancelation/Return Type|Normal or Pre-order|SKU ID|
Seller SKU|Product Name|Variation|Quantity|Sku Quantity of return|SKU Unit Original Price|SKU Subtotal Before Discount|
SKU Platform Discount|SKU Seller Discount|SKU Subtotal After Discount|Shipping Fee After Discount|Original Shipping Fee|
Shipping Fee Seller Discount|Shipping Fee Platform Discount|Payment platform discount|Taxes|Order Amount|
Order Refund Amount|Created Time|Paid Time|RTS Time|Shipped Time|Delivered Time|Cancelled Time|Cancel By|Cancel Reason|
Fulfillment Type|Warehouse Name|Tracking ID|Delivery Option|Shipping Provider Name|Buyer Message|Buyer Username|
Recipient|Phone #|Country|State|City|Zipcode|Detail Address|Additional address information|Payment Method|Weight(kg)|
Product Category|Package ID|Seller Note""".replace("\n", "").split("|"))


def test_synthetic_export_is_realistic(tmp_path):
    path = tmp_path / "orders.csv"
    n_orders = write_order_export(path, 2000, seed=5)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                                  # UTF-8 BOM
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == ORDER_HEADERS == REFERENCE_HEADERS             # every §B header (US variant)
    assert rows[1][0] == "Platform unique order ID."                       # §B description row 2
    data = rows[2:]
    assert len(data) == 2000
    assert all(r[0].endswith("\t") for r in data)                          # §B stray tab after ids
    col = {h: i for i, h in enumerate(ORDER_HEADERS)}
    assert all(r[col["Created Time"]].rstrip("\t")[-2:] in ("AM", "PM") for r in data)   # §B US dates
    by_order: dict[str, set[str]] = {}
    for r in data:
        by_order.setdefault(r[0], set()).add(r[col["Order Amount"]])
    assert len(by_order) == n_orders
    assert any(len(v) == 1 for k, v in by_order.items()) and all(len(v) == 1 for v in by_order.values())
    lines_per_order = np.bincount([list(by_order).index(r[0]) for r in data])
    assert lines_per_order.max() > 1                                        # multi-SKU orders
    statuses = {r[col["Order Status"]] for r in data}
    assert {"Completed", "Cancelled"} <= statuses
    assert any(float(r[col["Order Refund Amount"]]) > 0 for r in data)      # refunds
    buyers = [r[col["Buyer Username"]] for r in data]
    orders_per_buyer = {b: {r[0] for r in data if r[col["Buyer Username"]] == b} for b in set(buyers)}
    assert any(len(v) >= 2 for v in orders_per_buyer.values())               # repeat buyers
    assert any("\n" in r[col["Buyer Message"]] for r in data)               # quoted line breaks


def test_synthetic_export_is_deterministic(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_order_export(a, 300, seed=1)
    write_order_export(b, 300, seed=1)
    write_order_export(c, 300, seed=2)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_synthetic_export_zero_lines(tmp_path):
    path = tmp_path / "empty.csv"
    assert write_order_export(path, 0, seed=1) == 0
    assert parse_orders(path).rows == []
    assert len(read_order_columns(path)["order_id"]) == 0


# --------------------------------------------------------------------------- which reader reads what


def test_a_well_formed_export_is_read_by_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "orders.csv"
    write_order_export(path, 200, seed=4)
    spy = _Spy(monkeypatch)
    cols = read_order_columns(path, COLUMN_KEYS)
    parse_orders(path)
    assert len(spy.tables) == 2 and spy.by_arrow
    _assert_same(cols, _parse_with_csv_module(path))
    assert cols.skipped == _read_with_csv_module(path).skipped == [(2, "description row")]


@pytest.mark.parametrize("case, reason", [
    ("short", "fewer fields than the header"),        # a line cut short: pyarrow refuses it
    ("long", None),                                   # more fields than the header
    ("unterminated_last_cell", "unterminated quote"),  # pyarrow would close the quote at the end
    ("not_utf8", None),
])
def test_irregular_exports_are_read_by_the_csv_module(tmp_path, monkeypatch, case, reason):
    rows = [_row("11", Order_Amount="1.50", Buyer_Username="x"), _row("12", Order_Amount="2")]
    text = _csv_text(rows).encode("utf-8")
    if case == "short":
        text += b"13,Completed\r\n" + text.split(b"\r\n")[2] + b"\r\n"
    elif case == "long":
        text = text.replace(b"\r\n12,", b",extra\r\n12,")
    elif case == "unterminated_last_cell":
        text += ",".join(["14"] + [""] * (len(ORDER_HEADERS) - 2)).encode() + b',"a note, cut\r\n'
    elif case == "not_utf8":
        text = text.replace(b",x,", b",\xff,")
    path = tmp_path / "o.csv"
    path.write_bytes(text)
    spy = _Spy(monkeypatch)
    try:
        result = parse_orders(path)
    except ExportFormatError as e:
        assert case == "not_utf8" and "not UTF-8" in str(e)
        return
    assert spy.tables and not spy.by_arrow
    assert result == _parse_with_csv_module(path)
    if reason:
        assert reason in result.skipped[-1][1] and result.skipped[-1][0] == 5
    cols = read_order_columns(path, COLUMN_KEYS)
    assert cols.skipped == result.skipped
    _assert_same(cols, result)


def test_line_numbers_count_records_across_quoted_line_breaks(tmp_path, monkeypatch):
    """A record with line breaks in quoted cells is one line, as Excel numbers its rows (and the
    csv module its records): the reason for record 5 says line 5 though it starts on file line 8."""
    rows = [_row("11", Buyer_Message="two\r\nlines"), _row("12", Buyer_Message="three\nshort\nlines"),
            _row("13", Order_Amount="1,5"), _row("", Buyer_Username="y"), _row("15", Created_Time="31/12/2025")]
    path = tmp_path / "o.csv"
    path.write_text(_csv_text(rows), encoding="utf-8", newline="")
    spy = _Spy(monkeypatch)
    result = parse_orders(path)
    cols = read_order_columns(path, COLUMN_KEYS)
    assert spy.by_arrow
    assert result.skipped == [(2, "description row"),
                              (5, "line 5, column 'Order Amount': '1,5' is not a number"),
                              (6, "no order id"),
                              (7, "line 7, column 'Created Time': '31/12/2025' is not a date")]
    assert cols.skipped == result.skipped
    assert [r["buyer_message"] for r in result.rows] == ["two\r\nlines", "three\nshort\nlines"]
    assert result == _parse_with_csv_module(path)


def test_blank_rows_and_a_total_row_on_pyarrow(tmp_path, monkeypatch):
    """Rows blank in the columns read but not elsewhere are read whole before they are dropped."""
    rows = [_row("11"), [""] * len(ORDER_HEADERS), _row("", Seller_Note="a note"), _row("Total of 2 results"),
            _row("12")]
    path = tmp_path / "o.csv"
    path.write_text(_csv_text(rows) + "\r\n", encoding="utf-8", newline="")
    spy = _Spy(monkeypatch)
    result = parse_orders(path)
    cols = read_order_columns(path)
    assert spy.by_arrow
    assert result.skipped == [(2, "description row"), (5, "no order id"), (6, "total row")]
    assert cols.skipped == [(2, "description row"), (5, "no order id"), (6, "total row")]
    assert result == _parse_with_csv_module(path)
    assert cols["order_id"].tolist() == ["11", "12"]


def test_reading_an_export_leaves_no_arrow_memory_behind(tmp_path):
    # the read's pyarrow table (116 MB for 1,000,000 lines) is freed when the read returns,
    # not when the cyclic collector next runs: a refused cell (the description row) once
    # kept its exception, whose traceback held the reader's frames in a reference cycle
    import gc

    import pyarrow as pa

    path = tmp_path / "orders.csv"
    write_order_export(path, 500, seed=3)
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        before = pa.total_allocated_bytes()
        columns = read_order_columns(path)
        assert pa.total_allocated_bytes() == before
    finally:
        if enabled:
            gc.enable()
    assert columns.skipped[0][1] == "description row"         # a refused Order ID was read
