"""Zip packages read within bounds (xl_kpis/package.py): the central directory checks, the
bounded member reads, relationship targets and the cell grid python-calamine would lay out.

The end-to-end attacks (the CLI in a child process under a memory cap) are in
test_attacks.py.
"""

from __future__ import annotations

import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zipcraft as zc
from xl_kpis import package as P
from xl_kpis.package import PackageError


def info(name="a.xml", size=100, packed=50, method=zipfile.ZIP_DEFLATED, flags=0):
    i = zipfile.ZipInfo(name)
    i.file_size, i.compress_size, i.compress_type, i.flag_bits = size, packed, method, flags
    return i


# --- the central directory --------------------------------------------------------------------

def test_ordinary_members_pass():
    P.check_members([info(size=140 << 20, packed=16 << 20), info("b.xml", 2000, 100)])


@pytest.mark.parametrize("infos, words", [
    ([info(size=(2 << 20) + 1, packed=20 << 10)], ("inflates 102 times", "zip bomb")),
    ([info(f"m{i}", size=1 << 20, packed=1 << 10) for i in range(3)], ("zip bomb",)),
    ([info(f"m{i}", size=150 << 20, packed=15 << 20) for i in range(2)], ("256 MiB",)),
    ([info(f"m{i}", size=1 << 20, packed=9 << 10) for i in range(300)], ("256 MiB", "zip bomb")),
    ([info(f"m{i}", 10, 10) for i in range(P.MAX_MEMBERS + 1)], ("10,001 files",)),
    ([info(method=zipfile.ZIP_BZIP2)], ("compression method 12",)),
    ([info(flags=1)], ("encrypted",)),
])
def test_members_beyond_a_bound_are_refused(infos, words):
    with pytest.raises(PackageError) as e:
        P.check_members(infos, "x.zip")
    assert str(e.value).startswith("x.zip: ")
    for w in words:
        assert w in str(e.value)


def test_a_big_package_that_compresses_as_real_files_do_is_too_large_not_a_bomb():
    """Past the bound at a real file's ratio (an export of a long period): TooLarge, and the
    message does not cry zip bomb; past it at a bomb's ratio it does (the case above)."""
    with pytest.raises(P.TooLarge) as e:
        P.check_members([info(f"m{i}", size=150 << 20, packed=15 << 20) for i in range(2)], "x.xlsx")
    assert "zip bomb" not in str(e.value) and "256 MiB" in str(e.value)
    with pytest.raises(PackageError) as e:
        P.check_members([info(f"m{i}", size=1 << 20, packed=9 << 10) for i in range(300)], "x.xlsx")
    assert not isinstance(e.value, P.TooLarge)


def test_the_ratio_of_one_member_is_checked_from_its_floor():
    # 1 MiB at 1000:1 alone is fine (small members are not held to the ratio one by one) ...
    P.check_members([info(size=P.RATIO_FLOOR, packed=P.RATIO_FLOOR // 1000), info("b", 10, 10)]
                    + [info("c", 200 << 10, 200 << 10)])
    # ... one byte more is not
    with pytest.raises(PackageError, match="zip bomb"):
        P.check_members([info(size=P.RATIO_FLOOR + 1, packed=P.RATIO_FLOOR // 1000)])


def test_a_smaller_total_can_be_asked_for():
    with pytest.raises(PackageError, match="64 MiB"):
        P.check_members([info(size=65 << 20, packed=10 << 20)], max_total=64 << 20)


# --- reading members ------------------------------------------------------------------------

def test_a_member_is_read_whole(tmp_path):
    path = zc.write_zip(tmp_path / "a.zip", [zc.deflated("a.xml", b"<a>" * 1000)])
    with P.open_zip(path) as z:
        assert z.read("a.xml") == b"<a>" * 1000


def test_a_member_inflating_beyond_its_declared_size_is_refused(tmp_path):
    bomb = zc.bomb("a.xml", b"<a>", b" ", 64, b"</a>")
    bomb.size = 1000                    # declared: 1000 bytes; the data inflates to 64 MiB
    path = zc.write_zip(tmp_path / "a.zip", [bomb])
    with P.open_zip(path) as z, pytest.raises(PackageError, match="a.xml is damaged"):
        z.read("a.xml")


@pytest.mark.parametrize("damage", ["crc", "deflate", "missing"])
def test_damaged_members_are_one_line_errors(tmp_path, damage):
    m = zc.deflated("a.xml", b"<a>" * 1000)
    if damage == "crc":
        m.crc ^= 1
    elif damage == "deflate":
        m.data = m.data[:5] + bytes(b ^ 0x5A for b in m.data[5:25]) + m.data[25:]
    path = zc.write_zip(tmp_path / "a.zip", [m])
    with P.open_zip(path) as z, pytest.raises(PackageError) as e:
        z.read("b.xml" if damage == "missing" else "a.xml")
    assert "\n" not in str(e.value) and str(e.value).startswith("a.zip: ")


def test_not_a_zip(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"PK\x03\x04 nothing more")
    with pytest.raises(PackageError, match="not a readable zip"):
        P.open_zip(tmp_path / "a.zip")
    with pytest.raises(PackageError, match="no such file"):
        P.open_zip(tmp_path / "b.zip")


# --- relationships --------------------------------------------------------------------------

@pytest.mark.parametrize("source, target, part", [
    ("xl/workbook.xml", "worksheets/sheet1.xml", "xl/worksheets/sheet1.xml"),
    ("xl/workbook.xml", "/xl/worksheets/sheet1.xml", "xl/worksheets/sheet1.xml"),
    ("xl/worksheets/sheet1.xml", "../tables/table1.xml", "xl/tables/table1.xml"),
])
def test_targets(source, target, part):
    assert P.part_target(source, target) == part


@pytest.mark.parametrize("target, words", [(None, "no target"), ("", "no target"),
                                           ("../../etc/passwd", "outside"),
                                           ("http://x/y.xml", "outside"),
                                           ("worksheets/sheet9.xml", "missing")])
def test_bad_targets(target, words):
    with pytest.raises(PackageError, match=words):
        P.part_target("xl/workbook.xml", target, {"xl/worksheets/sheet1.xml"})


# --- the cell grid ----------------------------------------------------------------------------

def sheet(cells: str) -> bytes:
    return ('<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
            f'spreadsheetml/2006/main"><sheetData>{cells}</sheetData></worksheet>').encode()


@pytest.mark.parametrize("cells, grid", [
    ('<row r="1"><c r="A1"><v>1</v></c><c r="C1" t="s"><v>0</v></c></row>', (1, 3)),
    ('<row r="5" spans="1:2"><c r="AB5"/></row><row r="70"><c r="B70"/></row>', (70, 28)),
    ('<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>', (1048576, 16384)),
    ('<row r="3"><c s="2" r="E9"><v>1</v></c></row>', (9, 5)),           # r not first
    ("<row r='3'><c r='E9'><v>1</v></c></row>", (9, 5)),                  # single quotes
    ('<row r="3"><c r="&#69;9"/></row>', (9, 5)),                         # escaped "E"
    ('<x:row r="3"><x:c r="ZZ77"/></x:row>', (77, 702)),                  # a prefix
    ('<row r="3"><c\n r="AAAA1"/></row>', (1, 18279)),                    # four letters
    ('<row r="70"><c><v>1</v></c><c><v>2</v></c></row>', (71, 2)),        # no addresses
    ('<row r="2"><c r="C2"/><c/><c/></row><row><c/></row>', (4, 5)),
])
def test_cell_grid(cells, grid):
    rows, cols = P.cell_grid(sheet(cells))
    assert rows >= grid[0] and cols >= grid[1]
    assert rows <= grid[0] + 2 and cols <= grid[1] + 2    # a bound, and a close one
    fast = P.cell_grid(sheet(cells), exact=False)        # a quicker, looser bound
    assert fast[0] >= rows and fast[1] >= cols


@settings(max_examples=60, deadline=None)
@given(refs=st.lists(st.tuples(st.integers(1, 1048576), st.integers(1, 16384)), min_size=1,
                     max_size=40),
       chunk=st.sampled_from([64, 1 << 20]))
def test_cell_grid_finds_the_furthest_cell(refs, chunk):
    """Whatever the cells and wherever the 1 MiB chunks of the scan end: the furthest row and
    column are found (known values: the refs written)."""
    from xl_kpis.xlsx.refs import a1
    cells = "".join(f'<row r="{r}"><c r="{a1(r - 1, c - 1, False)}"><v>1</v></c></row>'
                    for r, c in refs)
    old = P._CHUNK
    P._CHUNK = chunk
    try:
        exact = (max(r for r, _ in refs), max(c for _, c in refs))
        assert P.cell_grid(sheet(cells)) == exact
        fast = P.cell_grid(sheet(cells), exact=False)
        assert exact[0] <= fast[0] < 10 * exact[0] and exact[1] <= fast[1] < 26 * exact[1]
    finally:
        P._CHUNK = old


def test_check_cells_bound():
    small = sheet('<row r="1"><c r="A1"/></row><row r="1024"><c r="AMJ1024"/></row>')
    P.check_cells(small, "b.xlsx", "s.xml")                  # 1024 x 1024: the floor
    far = sheet('<row r="1"><c r="A1"/></row><row r="1025"><c r="AMJ1025"/></row>')
    with pytest.raises(PackageError, match="spreads its cells over 1,025 rows x 1,024"):
        P.check_cells(far, "b.xlsx", "s.xml")
    # a bigger sheet may spread over one cell per BYTES_PER_CELL bytes
    padded = far.replace(b"</sheetData>", b"</sheetData>" + b" " * (1025 * 1024 * 8))
    P.check_cells(padded, "b.xlsx", "s.xml")


def test_a_dtd_is_refused():
    xml = b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "x">]>' + sheet("")[21:]
    with pytest.raises(PackageError, match="declares a DTD"):
        P.check_cells(xml, "b.xlsx", "s.xml")
    P.check_cells(sheet('<row r="1"><c r="A1" t="inlineStr"><is><t>&lt;!DOCTYPE</t></is>'
                        '</c></row>'), "b.xlsx", "s.xml")    # text is no DTD
