"""Layout as data: blocks of cells placed relative to each other, turned into coordinates.

The sheets that hold array results (the KPIs sheet, the Dashboard's tiles,
charts and chart data) are made of a few rectangular blocks.  The schema
declares each block once — its sheet, its size, and where it goes: at a fixed
cell, below another block, or beside one — and :func:`place` turns the
declarations into coordinates.

A block whose height follows its data (a spilling table such as
``CONTENT_RESONANCE``) has ``rows=None``.  Nothing may be placed below such a
block: :func:`place` refuses it.  So when an array result grows or shrinks,
the only cells that move are its own; every other cell keeps its address, and
a refresh can resize the array in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

__all__ = ["Block", "Placed", "place"]


@dataclass(frozen=True)
class Block:
    """A rectangular block of a sheet.

    Parameters
    ----------
    key : str
        Names the block (other blocks are placed relative to it).
    sheet : str
        The sheet it is on.
    rows : int or None
        Its height in rows; None when it is as tall as its data (it then
        needs ``heights[key]`` in :func:`place`, and nothing may sit below it).
    cols : int
        Its width in columns.
    row, col : int
        Where the block starts (0-based) when it is not placed ``below`` or
        ``beside`` another (``row`` None: 0).  A block ``beside`` another
        starts at that block's row unless ``row`` is given.
    below : str, optional
        The key of the block it sits under, in the same column.
    beside : str, optional
        The key of the block it sits right of.
    gap : int
        Empty rows between it and the block above, or empty columns between it
        and the block at its left.
    """

    key: str
    sheet: str
    rows: int | None
    cols: int
    row: int | None = None
    col: int = 0
    below: str | None = None
    beside: str | None = None
    gap: int = 1

    @property
    def grows(self) -> bool:
        """Whether its height follows its data."""
        return self.rows is None


@dataclass(frozen=True)
class Placed:
    """A block at its coordinates: first row, first column and height (0-based rows)."""

    block: Block
    row: int
    col: int
    rows: int

    @property
    def last_row(self) -> int:
        return self.row + self.rows - 1


def place(blocks: Sequence[Block], heights: Mapping[str, int] | None = None
          ) -> dict[str, Placed]:
    """The coordinates of every block.

    Parameters
    ----------
    blocks : sequence of Block
        The declarations, a block after the one it is placed below.
    heights : mapping, optional
        ``key -> rows`` of the blocks whose height follows their data (at
        least 1; 1 when missing).

    Returns
    -------
    dict
        ``key -> Placed``.

    Raises
    ------
    ValueError
        A block is placed below a block whose height follows its data (the
        first would move as the second grows), or anywhere below such a block
        in columns it covers, below a block declared after it or on another
        sheet, or a key repeats.
    """
    heights = heights or {}
    out: dict[str, Placed] = {}
    for b in blocks:
        if b.key in out:
            raise ValueError(f"layout: block {b.key!r} is declared twice")
        rows = b.rows if b.rows is not None else max(int(heights.get(b.key, 1)), 1)
        if b.below is None and b.beside is None:
            out[b.key] = Placed(b, b.row or 0, b.col, rows)
            continue
        if b.below is not None and b.beside is not None:
            raise ValueError(f"layout: block {b.key!r} is placed both below and beside")
        other = out.get(b.below or b.beside)
        where = "below" if b.below else "beside"
        if other is None:
            raise ValueError(f"layout: block {b.key!r} is placed {where} {b.below or b.beside!r},"
                             " which is not declared before it")
        if other.block.sheet != b.sheet:
            raise ValueError(f"layout: block {b.key!r} is placed {where} {other.block.key!r} on"
                             " another sheet")
        if b.beside is not None:
            row = other.row if b.row is None else b.row
            out[b.key] = Placed(b, row, other.col + other.block.cols + b.gap, rows)
            continue
        if other.block.grows:
            raise ValueError(f"layout: block {b.key!r} is placed below {b.below!r}, whose"
                             " height follows its data: it would move as that grows")
        out[b.key] = Placed(b, other.last_row + 1 + b.gap, other.col, rows)
    for g in out.values():
        if not g.block.grows:
            continue
        for p in out.values():
            if (p is not g and p.block.sheet == g.block.sheet and p.row > g.row
                    and p.col < g.col + g.block.cols and g.col < p.col + p.block.cols):
                raise ValueError(f"layout: block {p.block.key!r} lies below"
                                 f" {g.block.key!r}, whose height follows its data")
    return out
