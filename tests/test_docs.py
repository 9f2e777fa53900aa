"""The project documents its own sources: every document a docstring or comment names is in the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path-like mention of a Markdown document: "docs/kpi-definitions.md", "README.md", "vba/README.md".
DOC = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
SECTION = re.compile(r"(docs/[\w.-]+\.md)`*,? §(\d+|[A-Z])")


def _sources():
    for folder in ("xl_kpis", "tests", "benchmarks", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() == Path(__file__).resolve():
                continue  # this module's own examples
            yield path, path.read_text(encoding="utf-8")


def _resolves(name: str, where: Path) -> bool:
    return any((base / name).is_file() for base in (ROOT, where.parent, *where.parents))


def test_every_named_document_exists():
    missing = [(str(p.relative_to(ROOT)), name) for p, text in _sources()
               for name in DOC.findall(text) if not _resolves(name, p)]
    assert missing == []


def test_every_cited_section_exists():
    cited = {(doc, sec) for _, text in _sources() for doc, sec in SECTION.findall(text)}
    assert cited, "no section citations found: the pattern is stale"
    for doc, sec in sorted(cited):
        headings = re.findall(r"^#+ §(\d+|[A-Z])\.", (ROOT / doc).read_text(encoding="utf-8"), re.M)
        assert sec in headings, f"{doc} has no section §{sec} (has {headings})"


def test_the_checks_catch_a_dangling_reference(tmp_path):
    fake = tmp_path / "x.py"
    assert DOC.findall("see ``kpi-definitions.md`` §1") == ["kpi-definitions.md"]
    assert not _resolves("kpi-definitions.md", fake)
    assert _resolves("docs/kpi-definitions.md", ROOT / "xl_kpis" / "metrics" / "sales.py")
