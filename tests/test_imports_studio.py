"""TikTok Studio analytics parser (xl_kpis/imports/studio.py).

"§D" = docs/tiktok-exports.md section D (TikTok Studio).
"""

from __future__ import annotations

import calendar
import datetime as dt
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from babel import Locale
from babel.dates import format_skeleton
from hypothesis import given
from hypothesis import strategies as st

from xl_kpis.imports import ExportFormatError, parse_studio
from xl_kpis.imports.studio import (LANGUAGES, DayMonth, infer_years, latest_on_or_before, month_table,
                                    months_of, parse_day_month)

DATA = Path(__file__).parent / "data" / "exports"
TODAY = dt.date(2026, 3, 1)


# --------------------------------------------------------------------------- year-less dates


@pytest.mark.parametrize("raw, expected", [
    ("28 August", DayMonth(8, 28)),          # §D English
    ("August 28", DayMonth(8, 28)),
    ("Aug 28", DayMonth(8, 28)), ("28 aug.", DayMonth(8, 28)), ("Sept 3", DayMonth(9, 3)),
    ("9月13日", DayMonth(9, 13)),             # §D Chinese
    ("12 月 1 日", DayMonth(12, 1)),
    ("28 апреля", DayMonth(4, 28)),          # §D Russian genitive
    ("1 мая", DayMonth(5, 1)), ("3 сентября", DayMonth(9, 3)), ("31 декабря", DayMonth(12, 31)),
    ("5 янв.", DayMonth(1, 5)),              # Russian abbreviation
    # the app's other languages, as CLDR writes a day and a month in each (pattern in brackets)
    ("28 de agosto", DayMonth(8, 28)),       # Spanish, Portuguese [d 'de' MMMM]
    ("3 de ago.", DayMonth(8, 3)),           # Portuguese abbreviation [d 'de' MMM]
    ("1 de enero", DayMonth(1, 1)),          # Spanish
    ("28. August", DayMonth(8, 28)),         # German [d. MMMM]
    ("28 août", DayMonth(8, 28)), ("28 agosto", DayMonth(8, 28)),   # French, Italian [d MMMM]
    ("28 Agustus", DayMonth(8, 28)),         # Indonesian
    ("28 Ogos", DayMonth(8, 28)),            # Malay
    ("Agosto 28", DayMonth(8, 28)),          # Filipino [MMMM d]
    ("28 tháng 8", DayMonth(8, 28)),         # Vietnamese: the month's name is "tháng 8"
    ("1 thg 10", DayMonth(10, 1)),           # Vietnamese abbreviation
    ("28 สิงหาคม", DayMonth(8, 28)), ("28 ส.ค.", DayMonth(8, 28)),   # Thai, and its abbreviation
    ("28 Ağustos", DayMonth(8, 28)),         # Turkish
    ("28 sierpnia", DayMonth(8, 28)),        # Polish genitive
    ("28 augustus", DayMonth(8, 28)),        # Dutch
    ("28 серпня", DayMonth(8, 28)),          # Ukrainian genitive
    ("8월 28일", DayMonth(8, 28)),           # Korean [MMMM d일]
    ("aug. 28.", DayMonth(8, 28)),           # Hungarian [MMM d.]
    ("28 Αυγούστου", DayMonth(8, 28)),       # Greek genitive (case-folded: final sigma)
    ("29 February", DayMonth(2, 29)),        # a leap day is a valid day-month
    ("\ufeff 1 January\t", DayMonth(1, 1)),
    ("2026-07-18", dt.date(2026, 7, 18)),    # a full date keeps its year
    ("undefined", None), ("", None), (None, None),   # §D "undefined"
    (dt.datetime(2026, 1, 2, 0, 0), dt.date(2026, 1, 2)),   # xlsx date cell
])
def test_parse_day_month(raw, expected):
    assert parse_day_month(raw) == expected


@pytest.mark.parametrize("raw", ["32 August", "30 February", "13月1日", "28 Augustu", "Monday", "28",
                                 "31 de junio", "28 tháng 13", "8 28"])
def test_parse_day_month_rejects(raw):
    with pytest.raises(ValueError, match="is not a date"):
        parse_day_month(raw, column="Date", line=3)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_as_babel_formats_it(language):
    # Babel's formatter (CLDR's own patterns, not this parser's regexes) writes each month's
    # first and last day as that language writes a day and a month, wide and abbreviated
    # (where the abbreviated pattern has a name: Finnish writes it "28.8.", not a Studio form)
    skeletons = ["MMMMd"] + ["MMMd"] * ("MMM" in Locale.parse(language).datetime_skeletons["MMMd"].pattern)
    for month in range(1, 13):
        for day in (1, calendar.monthrange(2024, month)[1]):
            for skeleton in skeletons:
                text = format_skeleton(skeleton, dt.date(2024, month, day), locale=language)
                assert parse_day_month(text) == DayMonth(month, day), (language, skeleton, text)


def test_month_names_mean_one_month():
    names, ambiguous = month_table()
    assert ambiguous == frozenset() and len(names) > 400
    # the check finds a name two languages give two months ("listopad": October in Croatian,
    # November in Polish), and leaves it out
    names, ambiguous = months_of(["pl", "hr"])
    assert "listopad" in ambiguous and "listopad" not in names and names["sierpnia"] == 8


@pytest.mark.parametrize("days, reference, expected", [
    # crossing New Year gets consecutive years (brief)
    ([(12, 30), (12, 31), (1, 1), (1, 2)], dt.date(2026, 1, 3),
     [dt.date(2025, 12, 30), dt.date(2025, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 1, 2)]),
    # §D the last row is yesterday
    ([(8, 27), (8, 28)], dt.date(2026, 8, 29), [dt.date(2026, 8, 27), dt.date(2026, 8, 28)]),
    # the last row is never after the reference: "28 August" seen on 1 March is last year's
    ([(8, 27), (8, 28)], TODAY, [dt.date(2025, 8, 27), dt.date(2025, 8, 28)]),
    # the reference day itself is allowed
    ([(3, 1)], TODAY, [dt.date(2026, 3, 1)]),
    # newest-first files are recognised
    ([(1, 2), (1, 1), (12, 31)], dt.date(2026, 1, 3),
     [dt.date(2026, 1, 2), dt.date(2026, 1, 1), dt.date(2025, 12, 31)]),
    # more than a year of (quarterly) data: two crossings
    ([(11, 1), (2, 1), (5, 1), (8, 1), (11, 1), (2, 1)], dt.date(2026, 2, 1),
     [dt.date(2024, 11, 1), dt.date(2025, 2, 1), dt.date(2025, 5, 1), dt.date(2025, 8, 1), dt.date(2025, 11, 1),
      dt.date(2026, 2, 1)]),
    # repeated days (FollowerActivity has one row per hour) stay in the same year
    ([(12, 31), (12, 31), (1, 1), (1, 1)], dt.date(2026, 1, 2),
     [dt.date(2025, 12, 31)] * 2 + [dt.date(2026, 1, 1)] * 2),
])
def test_infer_years(days, reference, expected):
    assert infer_years([DayMonth(m, d) for m, d in days], reference) == expected


@given(start=st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2090, 1, 1)),
       length=st.integers(min_value=1, max_value=360), lag=st.integers(min_value=0, max_value=300))
def test_infer_years_recovers_daily_series(start, length, lag):
    """A daily series of under a year, exported `lag` days after its last day, gets its real dates back."""
    days = [start + dt.timedelta(days=i) for i in range(length)]
    if any(d.month == 2 and d.day == 29 for d in days) and lag > 0:
        return  # a leap day read back after the reference year moves to an earlier leap year
    reference = days[-1] + dt.timedelta(days=lag)
    if (reference - days[0]).days >= 365:
        return  # ambiguous by construction
    assert infer_years([DayMonth(d.month, d.day) for d in days], reference) == days


def test_latest_on_or_before_leap_day():
    assert latest_on_or_before(DayMonth(2, 29), dt.date(2026, 3, 1)) == dt.date(2024, 2, 29)


# --------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def english():
    return parse_studio(DATA / "studio_en", today=TODAY)


def test_tables_and_not_imported(english):
    assert [r.table for r in english] == ["Videos", "Brand"]
    assert len(english) == 2
    assert english.not_imported == [("FollowerGender.csv", "no target table"),
                                     ("Viewers.csv", "no target table")]   # §D files without a table


def test_brand_months_across_new_year(english):
    brand = english.brand
    assert (brand.kind, brand.table, brand.key_fields) == ("studio", "Brand", ("period",))
    assert brand.fields == ("period", "followers_start", "followers_end", "views", "profile_views",
                            "likes", "comments", "shares")
    assert brand.rows == [
        # Dec 30-31: followers 1000 → 1010; views 100 + "undefined" (blank, §D)
        {"period": dt.date(2025, 12, 1), "followers_start": 1000.0, "followers_end": 1010.0,
         "views": 100.0, "profile_views": 11.0, "likes": 21.0, "comments": 3.0, "shares": 1.0},
        # Jan 1-2: followers 1005 (a negative difference, §D) → 1020
        {"period": dt.date(2026, 1, 1), "followers_start": 1005.0, "followers_end": 1020.0,
         "views": 350.0, "profile_views": 8.0, "likes": 14.0, "comments": 3.0, "shares": 2.0},
    ]
    assert set(brand.unmapped_headers) == {"Difference in followers from previous day", "New followers"}
    assert brand.notes[2:] == ["2025-12: data for 2 of 31 days (partial month)",
                               "2026-01: data for 2 of 31 days (partial month)"]
    # the years it gave the dates, with the lines
    assert brand.notes[0].startswith("FollowerHistory.csv: 4 dates without a year (lines 2-5)"
                                     " read as 2025-12-30 to 2026-01-02, the last row on or"
                                     " before today")
    assert brand.blanks == [(3, "Overview.csv, Video Views", "undefined")]
    # the export starts on 30 December: that month may fill a gap, never replace a row
    assert list(brand.fill_only) == [0]
    assert brand.source == "FollowerHistory.csv + Overview.csv"


def test_videos(english):
    videos = english.videos
    assert videos.key_fields == ("video_link",)
    assert videos.fields == ("video_link", "title", "posted", "likes", "comments", "shares", "views")
    first, second = videos.rows
    assert first == {"video_link": "https://www.tiktok.com/@shop/video/7300000000000000001",
                     "title": '=HYPERLINK("http://evil")',         # brief: text stays text
                     "posted": dt.date(2025, 12, 28), "likes": 5.0, "comments": 1.0, "shares": 0.0,
                     "views": 100.0}
    assert second["posted"] == dt.date(2026, 1, 2)                  # anchored on the Overview's last day
    assert second["likes"] is None                                  # §D "undefined"
    assert videos.skipped == [(4, "Content.csv: no video link")]
    # user-typed columns are never part of an import (brief)
    typed = {"content_type", "saves", "completed_views", "profile_visits", "orders", "revenue"}
    assert not typed & set(videos.fields) and all(not typed & set(r) for r in videos.rows)
    assert not {"brand_mentions", "competitor_mentions", "support_queries", "orders"} & set(english.brand.fields)


def test_zip_with_bom_and_subfolder(tmp_path):
    archive = tmp_path / "studio.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((DATA / "studio_en").iterdir()):
            z.write(f, f"export_2026/{f.name}")                      # a folder inside the zip
        z.writestr("__MACOSX/export_2026/._Overview.csv", b"\x00\x05junk")
    result = parse_studio(archive, today=TODAY)
    assert result.brand.rows == parse_studio(DATA / "studio_en", today=TODAY).brand.rows
    assert (DATA / "studio_en" / "Overview.csv").read_bytes().startswith(b"\xef\xbb\xbf")   # §D BOM


def test_chinese_dates():
    r = parse_studio(DATA / "studio_zh", today=TODAY)
    assert r.videos is None
    assert r.brand.rows == [{"period": dt.date(2025, 9, 1), "followers_start": 200.0, "followers_end": 210.0,
                             "views": 30.0, "profile_views": 3.0, "likes": 5.0, "comments": 1.0, "shares": 0.0}]


def test_russian_dates_and_year_override():
    r = parse_studio(DATA / "studio_ru", year=2024)                  # --year: the year of the last row
    assert [(x["period"], x["followers_start"], x["followers_end"]) for x in r.brand.rows] == [
        (dt.date(2024, 4, 1), 500.0, 498.0), (dt.date(2024, 5, 1), 510.0, 510.0)]
    assert r.brand.fields == ("period", "followers_start", "followers_end")   # no Overview: no sums


def test_spanish_dates_across_new_year():
    r = parse_studio(DATA / "studio_es", today=TODAY)
    # Dec: views 100 + 150, profile views 5 + 6, likes 12 + 20, comments 1 + 2, shares 0 + 1;
    # Jan: views 90 (+ 'undefined', blank), 3 + 4, 8 + 9, 0 + 1, 0 + 0; followers first / last day
    assert r.brand.rows == [
        {"period": dt.date(2025, 12, 1), "followers_start": 1200.0, "followers_end": 1210.0,
         "views": 250.0, "profile_views": 11.0, "likes": 32.0, "comments": 3.0, "shares": 1.0},
        {"period": dt.date(2026, 1, 1), "followers_start": 1205.0, "followers_end": 1230.0,
         "views": 90.0, "profile_views": 7.0, "likes": 17.0, "comments": 1.0, "shares": 0.0}]


def test_vietnamese_dates():
    r = parse_studio(DATA / "studio_vi", year=2025)
    assert r.brand.rows == [{"period": dt.date(2025, 8, 1), "followers_start": 500.0,
                             "followers_end": 505.0}]


def test_year_override_wins_over_today():
    r = parse_studio(DATA / "studio_en", year=2030, today=TODAY)
    assert [x["period"] for x in r.brand.rows] == [dt.date(2029, 12, 1), dt.date(2030, 1, 1)]
    assert r.videos.rows[0]["posted"] == dt.date(2029, 12, 28)


def test_files_recognised_by_header_when_renamed(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(DATA / "studio_en" / "Overview.csv", folder / "概览.csv")
    shutil.copy(DATA / "studio_en" / "Content.csv", folder / "Content (1).csv")
    shutil.copy(DATA / "studio_en" / "Viewers.csv", folder / "something.csv")
    r = parse_studio(folder, today=TODAY)
    assert r.brand.fields == ("period", "views", "profile_views", "likes", "comments", "shares")
    assert len(r.videos.rows) == 2
    assert r.not_imported == [("something.csv", "not a recognised Studio file")]


def test_xlsx_with_one_sheet_per_file(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "FollowerHistory"
    for row in (["Date", "Followers"], ["30 December", 10], ["1 January", 12]):
        wb.active.append(row)
    gender = wb.create_sheet("FollowerGender")
    gender.append(["Gender", "Distribution"])
    path = tmp_path / "studio.xlsx"
    wb.save(path)
    r = parse_studio(path, today=TODAY)
    assert [(x["period"], x["followers_end"]) for x in r.brand.rows] == [
        (dt.date(2025, 12, 1), 10.0), (dt.date(2026, 1, 1), 12.0)]
    assert r.not_imported == [("FollowerGender", "no target table")]


def test_bad_date_row_is_skipped(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "FollowerHistory.csv").write_text(
        '"Date","Followers"\n"1 January","5"\n"Someday","6"\n"undefined","7"\n"2 January","8"\n', encoding="utf-8")
    r = parse_studio(folder, today=TODAY)
    assert r.brand.rows[0]["followers_end"] == 8.0
    assert r.brand.skipped == [(3, "FollowerHistory.csv: line 3, column 'Date': 'Someday' is not a date"),
                               (4, "FollowerHistory.csv: no date")]


@pytest.mark.parametrize("name, data, message", [
    ("empty.zip", None, "no Overview, FollowerHistory or Content"),
    ("truncated.zip", b"PK\x03\x04" + bytes(64), "truncated or damaged"),
    ("encrypted.xlsx", bytes.fromhex("D0CF11E0A1B11AE1") + bytes(600), "encrypted"),
])
def test_bad_studio_exports(tmp_path, name, data, message):
    path = tmp_path / name
    if data is None:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "nothing here")
    else:
        path.write_bytes(data)
    with pytest.raises(ExportFormatError, match=message):
        parse_studio(path, today=TODAY)
