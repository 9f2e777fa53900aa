"""Fixtures shared by the workbook test modules: the template and the demo book, built once
per module (a module may change its copies; the next module gets fresh ones)."""

import pytest

from xl_kpis.book import build_workbook


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The empty template workbook (.xlsx)."""
    p = tmp_path_factory.mktemp("template") / "template.xlsx"
    build_workbook(p)
    return p


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The template filled with the demo shop (.xlsx)."""
    p = tmp_path_factory.mktemp("demo") / "demo.xlsx"
    build_workbook(p, demo=True)
    return p
