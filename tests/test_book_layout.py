"""Layout as data: blocks placed below each other, growing blocks with nothing below them."""

import pytest

from xl_kpis.book.layout import Block, place


def test_blocks_below_each_other():
    at = place([Block("a", "S", 3, 2, row=2, col=1), Block("b", "S", 4, 2, below="a"),
                Block("c", "S", None, 5, below="b", gap=2)], {"c": 7})
    # a: rows 2-4; b: a gap of one row, rows 6-9; c: two rows of gap, rows 12-18
    assert [(p.row, p.col, p.rows) for p in at.values()] == [(2, 1, 3), (6, 1, 4), (12, 1, 7)]
    assert at["c"].last_row == 18


def test_blocks_beside_each_other():
    at = place([Block("a", "S", 3, 2, row=2, col=1), Block("b", "S", 4, 3, beside="a", gap=0),
                Block("c", "S", 2, 1, beside="b"), Block("d", "S", 1, 1, row=9, beside="c"),
                Block("e", "S", 5, 3, below="b", gap=0)])
    # a: columns 1-2 from row 2; b right after it (col 3, row 2); c after one empty column
    # (col 3 + 3 + 1 = 7); d one empty column after c (7 + 1 + 1 = 9) but from its own row 9;
    # e under b: row 2 + 4 = 6, col 3
    assert [(p.row, p.col) for p in at.values()] == [(2, 1), (2, 3), (2, 7), (9, 9), (6, 3)]


def test_a_growing_block_without_a_height_has_one_row():
    assert place([Block("g", "S", None, 1)])["g"].rows == 1


def test_nothing_may_sit_below_a_growing_block():
    with pytest.raises(ValueError, match="height follows its data"):
        place([Block("g", "S", None, 3), Block("x", "S", 2, 3, below="g")])
    # nor anywhere lower in the columns it covers, declared at a fixed cell
    with pytest.raises(ValueError, match="lies below 'g'"):
        place([Block("g", "S", None, 3, row=5, col=2), Block("x", "S", 1, 1, row=40, col=4)])
    # beside it, or on another sheet, is fine
    at = place([Block("g", "S", None, 3, row=5, col=2), Block("x", "S", 1, 1, row=40, col=5),
                Block("y", "T", 1, 9, row=40)])
    assert at["x"].row == 40


def test_declaration_errors():
    with pytest.raises(ValueError, match="not declared before"):
        place([Block("x", "S", 1, 1, below="a"), Block("a", "S", 1, 1)])
    with pytest.raises(ValueError, match="another sheet"):
        place([Block("a", "S", 1, 1), Block("x", "T", 1, 1, below="a")])
    with pytest.raises(ValueError, match="both below and beside"):
        place([Block("a", "S", 1, 1), Block("x", "S", 1, 1, below="a", beside="a")])
    with pytest.raises(ValueError, match="beside 'a' on another sheet"):
        place([Block("a", "S", 1, 1), Block("x", "T", 1, 1, beside="a")])
    with pytest.raises(ValueError, match="twice"):
        place([Block("a", "S", 1, 1), Block("a", "S", 1, 1, row=9)])
