"""Layout as data: blocks placed below each other, growing blocks with nothing below them."""

import pytest

from xl_kpis.book.layout import Block, place


def test_blocks_below_each_other():
    at = place([Block("a", "S", 3, 2, row=2, col=1), Block("b", "S", 4, 2, below="a"),
                Block("c", "S", None, 5, below="b", gap=2)], {"c": 7})
    # a: rows 2-4; b: a gap of one row, rows 6-9; c: two rows of gap, rows 12-18
    assert [(p.row, p.col, p.rows) for p in at.values()] == [(2, 1, 3), (6, 1, 4), (12, 1, 7)]
    assert at["c"].last_row == 18


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
    with pytest.raises(ValueError, match="twice"):
        place([Block("a", "S", 1, 1), Block("a", "S", 1, 1, row=9)])
