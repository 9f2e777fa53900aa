"""The README's function reference is generated from the docstrings and up to date."""

from pathlib import Path

from xl_kpis import reference, udfs

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_reference_is_up_to_date():
    text = README.read_text(encoding="utf-8")
    block = text[text.index(reference.START) + len(reference.START):text.index(reference.END)]
    assert block == "\n" + reference.markdown(), \
        "run: python -m xl_kpis.reference README.md"


def test_every_udf_is_in_the_reference():
    md = reference.markdown()
    for name in udfs.__all__:
        assert f"`={name}(" in md
