"""The function reference, generated from the docstrings (never written twice).

``python -m xl_kpis.reference README.md`` rewrites the part of the file
between the ``<!-- functions:start -->`` and ``<!-- functions:end -->``
markers; a test checks the committed README is up to date.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

START, END = "<!-- functions:start -->", "<!-- functions:end -->"


def _formula(doc: str) -> str:
    """The ``.. math::`` line of a numpydoc *Notes* section, as plain text."""
    m = re.search(r"\.\. math::\s*(.+)", doc)
    if not m:
        return ""
    f = m.group(1).strip()
    for a, b in ((r"\frac{1}{N}", "(1/N) "), (r"\lambda", "λ"), (r"\alpha", "α"),
                 (r"\gamma", "γ"), (r"\nu", "ν"), (r"\sim", "~"), (r"\;", " "), (r"\in", "∈"),
                 (r"\{", "{"), (r"\}", "}"),
                 (r"\times", "×"), (r"\sum", "Σ"), (r"\ge", "≥"), (r"\_", "_"), (r"\,", " "),
                 (r"\bar r", "mean rating"), (r"\\", ""), ("{:}", ":"), ("{", ""), ("}", "")):
        f = f.replace(a, b)
    return " ".join(f.split())


def _signature(udf) -> str:
    parts, closing = [], ""
    for p in inspect.signature(udf).parameters.values():
        if p.default is None:
            parts.append(f"[{p.name}")
            closing += "]"
        else:
            parts.append(p.name)
    sig = ", ".join(parts)
    return f"={udf.__name__}({sig}{closing})".replace(", [", " [, ")


def markdown() -> str:
    """The reference as Markdown: one table per KPI group."""
    from . import udfs
    from .metrics import GROUPS

    rows: dict[str, list[str]] = {}
    for name in udfs.__all__:
        udf, core = getattr(udfs, name), udfs.KPI_OF[name]
        group = core.__module__
        doc = inspect.getdoc(core) or ""
        summary = doc.splitlines()[0]
        rows.setdefault(group, []).append(
            f"| `{_signature(udf)}` | `xl_kpis.{core.__name__}` | {summary} | "
            f"{_formula(doc).replace('|', '/')} |")
    out = []
    for group, title in GROUPS.items():
        out += [f"**{title}**", "", "| Excel | Python | What it is | Formula |",
                "|---|---|---|---|", *rows.get(group.__name__, []), ""]
    return "\n".join(out).rstrip() + "\n"


def update(path: Path) -> bool:
    """Rewrite the reference block of ``path``; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    i, j = text.index(START) + len(START), text.index(END)
    new = text[:i] + "\n" + markdown() + text[j:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["README.md"]:
        print(f"{arg}: {'updated' if update(Path(arg)) else 'up to date'}")
