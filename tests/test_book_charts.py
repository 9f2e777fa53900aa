"""Chart references and caches: every chart caches exactly what its cells show.

The reference reader is :func:`engines.chart_cache_mismatches` (ElementTree for the
chart parts, openpyxl for the cells), not the regular expressions of the module.
"""

from pathlib import Path

import pytest

from bookfiles import copy, parts
from engines import chart_cache_mismatches, chart_caches
from xl_kpis.book.charts import parse_area, read_caches, rewrite_chart
from xl_kpis.book.importer import import_export
from xl_kpis.book.refresh import refresh

DATA = Path(__file__).parent / "data" / "exports"

CHART = (b'<c:chartSpace xmlns:c="c"><c:ser><c:tx><c:v>Revenue</c:v></c:tx><c:cat><c:numRef>'
         b"<c:f>Dashboard!$N$11</c:f><c:numCache><c:formatCode>General</c:formatCode>"
         b'<c:ptCount val="1"/><c:pt idx="0"><c:v>0.0</c:v></c:pt></c:numCache></c:numRef>'
         b"</c:cat><c:val><c:numRef><c:f>Dashboard!$O$11</c:f><c:numCache><c:formatCode>"
         b'#,##0</c:formatCode><c:ptCount val="1"/><c:pt idx="0"><c:v>0.0</c:v></c:pt>'
         b"</c:numCache></c:numRef></c:val></c:ser></c:chartSpace>")


def test_parse_area():
    assert parse_area("Dashboard!$N$11:$N$15") == ("Dashboard", 10, 13, 14, 13)
    assert parse_area("'It''s mine'!B2") == ("It's mine", 1, 1, 1, 1)
    assert parse_area("Brand!$A$5:$C$5") == ("Brand", 4, 0, 4, 2)
    # two dimensions, two areas, a name, a literal: not a series range
    for text in ("A!$A$1:$B$2", "(A!$A$1,A!$A$3)", "Sales", '"ROAS"'):
        assert parse_area(text) is None


def test_rewrite_moves_ranges_and_caches_what_the_cells_hold():
    cells = {("Dashboard", r, 13): v for r, v in zip(range(10, 13), ["tutorial", "", "review"])}
    cells.update({("Dashboard", r, 14): v for r, v in zip(range(10, 13), [90.5, "", 12])})

    def values(area):
        sheet, r0, c0, r1, c1 = area
        return [cells[(sheet, r, c0)] for r in range(r0, r1 + 1)]

    out = rewrite_chart(CHART, lambda a: (a[0], a[1], a[2], 12, a[4]), values)
    [(k1, f1, n1, cat), (k2, f2, n2, val)] = read_caches(out)
    # the categories became text; a blank cell has no point; the value format stays
    assert (k1, f1, n1, cat) == ("strRef", "Dashboard!$N$11:$N$13", 3,
                                 {0: "tutorial", 2: "review"})
    assert (k2, f2, n2, val) == ("numRef", "Dashboard!$O$11:$O$13", 3, {0: "90.5", 2: "12"})
    assert b"<c:formatCode>#,##0</c:formatCode>" in out
    # nothing known, nothing moved: the very same bytes
    assert rewrite_chart(CHART, lambda a: None, lambda a: None) is CHART
    # the same points written differently (0.0 and 0) are not rewritten
    assert rewrite_chart(CHART, lambda a: None, lambda a: [0]) is CHART


def test_dates_as_categories_stay_numbers():
    chart = CHART.replace(b"$N$11", b"$A$5")
    out = rewrite_chart(chart, lambda a: None,
                        lambda a: [45992.0] if a[2] == 0 else [1010])
    assert [c[0] for c in read_caches(out)] == ["numRef", "numRef"]


def test_built_books_cache_what_their_cells_show(template, demo):
    assert chart_cache_mismatches(template) == []
    assert chart_cache_mismatches(demo) == []
    # the empty template's charts cache no point for a blank cell (no 0 bar, no "" label)
    assert all(c["points"] == {} for c in chart_caches(template)
               if c["ref"].startswith("Dashboard!$O$1"))


def test_a_stale_cache_is_caught(demo, tmp_path):
    """The check can fail: one cached point changed in a copy."""
    book = copy(demo, tmp_path / "planted.xlsx")
    data = parts(book)
    name = "xl/charts/chart2.xml"
    data[name] = data[name].replace(b"<c:v>Clicks</c:v>", b"<c:v>Klicks</c:v>", 1)
    import zipfile
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as out:
        for n, b in data.items():
            out.writestr(n, b)
    [problem] = chart_cache_mismatches(book)
    assert "Klicks" in problem


@pytest.mark.parametrize("kind, src", [("orders", "orders_us.csv"),
                                       ("ads", "ads_campaign_usd.csv"),
                                       ("studio", "studio_en")])
def test_imports_into_the_template_leave_current_caches(template, tmp_path, kind, src):
    book = copy(template, tmp_path / "t.xlsx")
    import_export(kind, DATA / src, book, year=2026 if kind == "studio" else None)
    assert chart_cache_mismatches(book) == []
    # a refresh of a current book changes nothing
    assert refresh(book).changed == 0
