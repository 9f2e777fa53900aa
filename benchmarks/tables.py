"""The benchmarks' result tables: Markdown, as the README shows them, each ratio beside its
target with its verdict."""

from __future__ import annotations

from typing import Iterable, Sequence


def verdict(ratio: float, target: float) -> str:
    """A ratio as a table shows it, with whether it meets its target (``<= target``).

    >>> verdict(1.36, 1.5), verdict(1.9, 1.5)
    ('1.36x ok', '1.90x MISSED')
    """
    return f"{ratio:.2f}x {'ok' if ratio <= target else 'MISSED'}"


def markdown(header: Sequence[str], rows: Iterable[Sequence[str]],
             right: Sequence[int] = ()) -> str:
    """A Markdown table: the header, then the rows; the columns numbered in ``right`` are
    aligned right.

    >>> print(markdown(["kpi", "ratio"], [["ROAS", verdict(0.9, 1.0)]], right=[1]))
    | kpi | ratio |
    |---|---:|
    | ROAS | 0.90x ok |
    """
    rule = "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"
    lines = ["| " + " | ".join(cells) + " |" for cells in [header, *rows]]
    return "\n".join([lines[0], rule, *lines[1:]])
