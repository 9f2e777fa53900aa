"""Shared by the test modules: the template and demo book fixtures (built once per module;
a module may change its copies, the next module gets fresh ones), the release build (once
per session), and the markers that say where a test can run.

This file is also loaded inside Pyodide (the lane of tests/test_pyodide.py), where only
numpy, xlwings and the project's pure modules exist: it imports nothing else at the top.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The empty template workbook (.xlsx)."""
    from xl_kpis.book import build_workbook

    p = tmp_path_factory.mktemp("template") / "template.xlsx"
    build_workbook(p)
    return p


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The template filled with the demo shop (.xlsx)."""
    from xl_kpis.book import build_workbook

    p = tmp_path_factory.mktemp("demo") / "demo.xlsx"
    build_workbook(p, demo=True)
    return p


def small_tables(rows: int = 8) -> dict:
    """The demo shop's tables cut to their first ``rows`` rows (a book pycel checks fast)."""
    from xl_kpis.book import demo as demo_data

    return {name: {k: list(v[:rows]) for k, v in cols.items()}
            for name, cols in demo_data.tables(demo_data.SEED).items()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The template filled with the first rows of the demo shop's tables (.xlsx)."""
    from xl_kpis.book import build_workbook

    p = tmp_path_factory.mktemp("small") / "small.xlsx"
    build_workbook(p, tables=small_tables())
    return p


@pytest.fixture(scope="session")
def dist(tmp_path_factory):
    """The release files, built once as a maintainer builds them: ``python -m build`` makes the
    sdist, then the wheel from that sdist (``--no-isolation``: the build backend comes from the
    test extras, so no download).  Returns the folder holding the two files."""
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                          str(ROOT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out


# --- where a test can run -------------------------------------------------------------

def pytest_collection_modifyitems(config, items):
    """Deselect what cannot run here (pytest reports the count as "deselected").

    * ``host_only``: needs what Pyodide lacks (a subprocess, a second interpreter); deselected
      under Pyodide.
    * ``lite``: needs xlwings in its Office.js mode, as xlwings Lite runs it
      (``XLWINGS_ON_SERVER=true`` before xlwings is imported): the Pyodide lane runs them;
      a normal run deselects them, and tests/test_pyodide.py checks they passed there.
    """
    on_pyodide = sys.platform == "emscripten"
    officejs = os.environ.get("XLWINGS_ON_SERVER") == "true"
    keep, drop = [], []
    for item in items:
        if (on_pyodide and item.get_closest_marker("host_only")) or \
                (not officejs and item.get_closest_marker("lite")):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    config.stash[LITE_DESELECTED] = [i.nodeid for i in drop if i.get_closest_marker("lite")]


#: The ``lite`` tests this run deselected (tests/test_pyodide.py checks the lane ran them).
LITE_DESELECTED = pytest.StashKey[list]()
#: What tests/test_pyodide.py learnt from the lane, for the summary at the end of the run.
PYODIDE_SUMMARY = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, config):
    """Print the Pyodide lane's test count (tests/test_pyodide.py) at the end of the run."""
    line = config.stash.get(PYODIDE_SUMMARY, None)
    if line:
        terminalreporter.write_line(line)
