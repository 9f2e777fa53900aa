"""TikTok Ads Manager report parser (xl_kpis/imports/ads.py).

Fixtures in tests/data/exports/ are small synthetic files mimicking the quirks
listed in docs/tiktok-exports.md §A ("§A" below).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from xl_kpis.imports import ExportFormatError, parse_ads
from xl_kpis.imports.aliases import ADS_FIELDS, match_headers

DATA = Path(__file__).parent / "data" / "exports"


@pytest.fixture(scope="module")
def campaign():
    return parse_ads(DATA / "ads_campaign_usd.csv")


def test_result_shape(campaign):
    assert (campaign.kind, campaign.table, campaign.source) == ("ads", "Campaigns", "ads_campaign_usd.csv")
    assert campaign.key_fields == ("date", "period_end", "campaign", "ad_group", "ad_name")
    assert campaign.currency == "USD"                              # §A "Cost (USD)" header
    assert campaign.unmapped_headers == ["Clicks (all)", "CTR (%)"]
    assert campaign.fields == ("date", "period_end", "campaign", "ad_group", "ad_name", "cost",
                               "impressions", "clicks", "conversions", "revenue", "views_p25",
                               "profile_visits")
    assert campaign.blanks == [(2, "Conversions", "--"), (3, "Profile visits", "--"),
                               (3, "Video views at 25%", "<5")]        # read as blank, said so


@pytest.mark.parametrize("row, key, expected", [
    (0, "date", dt.date(2026, 7, 18)),   # §A ISO "2026-07-18 00:00:00" → a date
    (1, "date", dt.date(2026, 7, 18)),   # §A ISO "2026-07-18"
    (0, "cost", 1234.5),                 # §A "$1,234.50"
    (0, "clicks", 120.0),                # Clicks (destination) preferred over Clicks (all) "<5"
    (1, "clicks", 2.0),                  # destination 2, all 4
    (0, "conversions", None),            # §A "--"
    (0, "revenue", 2500.0),              # Total complete payment value "$2,500.00"
    (1, "views_p25", None),              # §A "<5"
    (1, "profile_visits", None),         # §A "--"
    (0, "impressions", 10000.0),
])
def test_known_values(campaign, row, key, expected):
    assert campaign.rows[row][key] == expected


def test_skipped_rows(campaign):
    assert len(campaign.rows) == 2
    assert campaign.skipped == [
        (5, "no campaign and no numbers"),                            # only a date and "--"
        (6, "line 6, column 'Cost (USD)': '12,5' is not a number"),   # decimal comma refused
        (7, "total row"),                                             # §A "Total of N results"
    ]


def test_breakdown_export():
    r = parse_ads(DATA / "ads_breakdown_country.csv")   # §A: breakdown exports start with "Country"
    assert r.currency == "ZAR"
    assert r.fields[0] == "breakdown"
    assert r.key_fields == ("campaign", "breakdown")
    assert [(x["breakdown"], x["cost"], x["clicks"], x["conversions"], x["revenue"]) for x in r.rows] == [
        ("United States", 100.0, 10.0, 2.0, 400.0),   # "R 100.00", Purchases (Shop), Gross revenue (Shop)
        ("South Africa", 50.0, None, None, None),
    ]
    assert r.skipped == [(4, "total row")]
    assert r.unmapped_headers == []


def test_api_field_names_and_ad_id_key():
    r = parse_ads(DATA / "ads_api_fields.csv")   # §A Marketing API field names
    assert r.key_fields == ("ad_id", "date", "period_end")
    assert r.currency is None
    first, = r.rows
    assert first["ad_id"] == "1790123456789012345"          # 19 digits, exact
    assert (first["video_views"], first["views_2s"], first["views_6s"]) == (900.0, 400.0, 200.0)
    assert (first["views_p50"], first["views_p100"], first["follows"]) == (150.0, 60.0, 1.0)
    assert first["date"] == dt.date(2026, 7, 18)
    # "(1.50)" is an accounting negative: a cost below 0 is refused (the book's columns hold
    # amounts of 0 or more), with the line and the value
    assert r.skipped == [(3, "line 3, column 'spend': '(1.50)' is negative "
                             "(amounts and counts are 0 or more)")]


def test_age_gender_breakdown_joined(tmp_path):
    path = tmp_path / "Campaign_20260701_20260731_GMT+0.csv"    # §A file-name pattern
    path.write_text("Age,Gender,Campaign name,Cost,Impressions\n"
                    "18-24,Female,C1,1,10\n18-24,Male,C1,2,20\n25-34,,C1,3,30\n", encoding="utf-8")
    r = parse_ads(path)
    assert [x["breakdown"] for x in r.rows] == ["18-24 / Female", "18-24 / Male", "25-34"]
    assert r.key_fields == ("campaign", "breakdown")


def test_xlsx_first_sheet(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Campaign"
    ws.append(["By Day", "Campaign name", "Ad group name", "Ad name", "Ad ID", "Spend", "Impressions",
               "Clicks (destination)", "Conversions", "6-second video views"])
    ws.append([dt.datetime(2026, 7, 18), "Summer", "AG", "Ad", "1790123456789012345", 10.5, 1000, 12, 1, 300])
    ws.append([dt.datetime(2026, 7, 19), "Summer", "AG", "Ad", 1790123456.0, "--", "<5", 0, 0, 0])
    ws.append(["Total of 2 results", None, None, None, None, 10.5, 1000, 12, 1, 300])
    wb.create_sheet("Notes").append(["Cost", "Impressions"])
    path = tmp_path / "ads.xlsx"
    wb.save(path)
    r = parse_ads(path)
    assert r.source == "ads.xlsx[Campaign]"
    assert r.key_fields == ("ad_id", "date", "period_end")
    assert [(x["date"], x["ad_id"], x["cost"], x["impressions"], x["views_6s"]) for x in r.rows] == [
        (dt.date(2026, 7, 18), "1790123456789012345", 10.5, 1000.0, 300.0),
        (dt.date(2026, 7, 19), "1790123456", None, None, 0.0),
    ]
    assert r.skipped == [(4, "total row")]


def test_float_ad_id_beyond_2_53_is_skipped_not_corrupted(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["Date", "Ad ID", "Cost"])
    wb.active.append([dt.datetime(2026, 7, 18), 1790123456789012345, 1])   # stored as a number
    path = tmp_path / "ads.xlsx"
    wb.save(path)
    r = parse_ads(path)
    assert r.rows == []
    assert r.skipped[0][0] == 2 and "digits lost" in r.skipped[0][1]


@pytest.mark.parametrize("cell, expected", [
    ("2026-07-01 ~ 2026-07-31", dt.date(2026, 7, 1)),     # ours: a lifetime report's range → its start
    ("2026-07-01 - 2026-07-31", dt.date(2026, 7, 1)),
    ("07/01/2026 to 07/31/2026", dt.date(2026, 7, 1)),
    ("2026-07-18", dt.date(2026, 7, 18)),
])
def test_date_ranges_give_the_period_start(tmp_path, cell, expected):
    path = tmp_path / "ads.csv"
    path.write_text(f"Date,Campaign name,Cost\n{cell},A,1\n", encoding="utf-8")
    assert parse_ads(path).rows[0]["date"] == expected


def test_header_after_preamble_rows(tmp_path):
    path = tmp_path / "ads.csv"
    path.write_text("Report: Campaign\nDate range: 2026-07-01 ~ 2026-07-31\n\nCampaign name,Cost,Impressions\nA,1,2\n",
                    encoding="utf-8")
    r = parse_ads(path)
    assert r.rows == [{"campaign": "A", "cost": 1.0, "impressions": 2.0}]


def test_mixed_currencies_refused(tmp_path):
    path = tmp_path / "ads.csv"
    path.write_text("Campaign name,Cost (USD),Complete payment value (EUR)\nA,1,2\n", encoding="utf-8")
    with pytest.raises(ExportFormatError, match="different currencies"):
        parse_ads(path)


def test_no_header(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("Order ID,Order Status\n1,Completed\n", encoding="utf-8")
    with pytest.raises(ExportFormatError, match=r"orders\.csv: no recognisable header row"):
        parse_ads(path)


@pytest.mark.parametrize("headers, key, column", [
    (["Clicks (all)", "Clicks (destination)"], "clicks", 1),   # §A destination preferred
    (["Clicks (all)", "Clicks"], "clicks", 1),
    (["Clicks (all)"], "clicks", 0),
    (["Spend", "Total cost"], "cost", 0),                        # kdung1206 template uses "Spend"
    (["Purchase value", "Complete payment value"], "revenue", 1),
    (["Video views (P25)"], "views_p25", 0),                     # §A historical alias
    (["video_views_p100"], "views_p100", 0),                     # §A API name
    (["Paid profile visits"], "profile_visits", 0),
    (["Date Created"], "date", 0),                               # §A unidentified parser
])
def test_alias_priority(headers, key, column):
    assert match_headers(headers, ADS_FIELDS).columns[key][0] == column
