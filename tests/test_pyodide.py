"""The Pyodide lane: what xlwings Lite runs, tested inside real Pyodide under Node.

One Node process (``scripts/pyodide/run.mjs``) loads Pyodide 0.27.7 (the Python of Lite's
0.27 line) from the cache ``scripts/setup.sh`` filled, its numpy and scipy from wheels checked
against the sha256 in Pyodide's own ``pyodide-lock.json``, installs the release wheel of this
project (the ``dist`` fixture), the real xlwings wheel and pytest with micropip, then
``scripts/pyodide/lane.py`` runs the test modules of ``xl_kpis.udfs`` and of every module it
imports, with their doctests, in xlwings' Office.js mode (``XLWINGS_ON_SERVER=true``, as Lite).
The count is printed at the end of the run.  In CI a missing Node or wheel fails here.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import LITE_DESELECTED, PYODIDE_SUMMARY

ROOT = Path(__file__).resolve().parents[1]
LANE = ROOT / "scripts" / "pyodide"
RESULT = "pyodide lane result: "
#: The Python seen inside: xlwings in its Office.js mode, as xlwings Lite sets it.  The
#: xlwings PRO code behind that mode is PolyForm Noncommercial: the key is for this test only.
ENV = {"XLWINGS_ON_SERVER": "true", "XLWINGS_LICENSE_KEY": "noncommercial"}


def _fetch_module():
    spec = importlib.util.spec_from_file_location("pyodide_fetch", LANE / "fetch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checked(fetch) -> dict:
    """What fetch.check() found; a missing Node or file fails in CI and skips elsewhere."""
    try:
        fetch.node_version()
        return fetch.check()
    except fetch.LaneError as e:
        if os.environ.get("CI"):
            pytest.fail(f"pyodide lane: {e}", pytrace=False)
        pytest.skip(f"pyodide lane: {e}")


@pytest.fixture(scope="module")
def lane(dist, tmp_path_factory, request):
    """Run the lane once; returns (its output, the result it printed as JSON)."""
    fetch = _fetch_module()
    checked = _checked(fetch)
    wheels = sorted(dist.glob("xl_kpis-*.whl"))
    assert len(wheels) == 1, wheels
    config = tmp_path_factory.mktemp("pyodide") / "lane.json"
    config.write_text(json.dumps({
        "index": checked["index"], "packages": checked["packages"],
        "wheels": checked["wheels"] + [str(wheels[0])], "repo": str(ROOT), "env": ENV,
        "args": [],
    }))
    start = time.perf_counter()
    run = subprocess.run(["node", str(LANE / "run.mjs"), str(config)], capture_output=True,
                         text=True, timeout=900)
    wall = time.perf_counter() - start
    output = run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT)]
    assert lines, f"the lane printed no result (exit code {run.returncode}):\n{output[-6000:]}"
    result = json.loads(lines[-1][len(RESULT):])
    result["node_exit_code"] = run.returncode
    loaded = re.search(r"numpy/scipy loaded in ([\d.]+) s", run.stdout)
    request.config.stash[PYODIDE_SUMMARY] = (
        f"pyodide lane: {result['passed']} passed, {result['failed']} failed, "
        f"{result['deselected']} deselected (host_only) under Pyodide {fetch.PYODIDE_VERSION} "
        f"(Python {result['python']}, numpy {result['numpy']}, xlwings {result['xlwings']}); "
        f"{len(result['lite_passed'])} of them the Lite registration tests; the Node process "
        f"took {wall:.1f} s ({loaded.group(1) if loaded else '?'} s to load Pyodide, numpy and "
        f"scipy, {result['seconds']} s of pytest)")
    return output, result


def test_every_test_passes_under_pyodide(lane):
    output, result = lane
    assert result["failed"] == result["error"] == 0 and result["exit_code"] == 0, \
        f"failing under Pyodide: {result['failures']}\n{output[-8000:]}"
    assert result["node_exit_code"] == 0, output[-3000:]
    assert result["skipped"] == 0, "every test selected for the lane must run there"
    assert result["passed"] > 0


def test_the_lane_sees_a_planted_failure(lane):
    _, result = lane
    check = result["self_check"]
    assert (check["passed"], check["failed"], check["exit_code"]) == (1, 1, 1), check


def test_the_lane_is_real_pyodide_with_its_numpy_and_the_real_xlwings(lane):
    _, result = lane
    lock = json.loads((Path(_fetch_module().check()["index"]) / "pyodide-lock.json").read_text())
    assert result["platform"] == "emscripten"
    assert result["python"] == lock["info"]["python"]
    assert result["numpy"] == lock["packages"]["numpy"]["version"]
    pinned = (LANE / "requirements.txt").read_text()
    assert f"xlwings=={result['xlwings']} " in pinned
    assert result["on_server"] is True


def test_the_lane_runs_the_tests_of_every_module_udfs_imports(lane):
    # derived here again, on this Python, from what `import xl_kpis.udfs` loads
    code = ("import sys, xl_kpis.udfs\n"
            "for m in sorted(sys.modules):\n"
            "    if m.startswith('xl_kpis.') and not hasattr(sys.modules[m], '__path__'):\n"
            "        print('tests/test_' + '_'.join(p.lstrip('_') for p in m.split('.')[1:]) + '.py')\n")
    here = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT).stdout.split()
    _, result = lane
    assert result["test_modules"] == here
    assert {"tests/test_udfs.py", "tests/test_cells.py", "tests/test_metrics_loyalty.py"} \
        <= set(here)


def test_the_lite_tests_ran_in_the_lane(lane, request):
    _, result = lane
    passed = set(result["lite_passed"])
    assert passed, "no test marked lite passed under Pyodide"
    assert set(request.config.stash.get(LITE_DESELECTED, [])) <= passed


def test_only_host_only_tests_are_deselected_in_the_lane(lane):
    # the deselected set stays small: each is marked with the reason it cannot run there
    _, result = lane
    assert result["deselected"] == len(result["deselected_tests"]) <= 3, \
        result["deselected_tests"]


def test_the_check_refuses_wheels_that_are_not_the_pinned_ones(tmp_path):
    fetch = _fetch_module()
    _checked(fetch)
    fake = tmp_path / "cache"   # the real cache, as symbolic links, then spoilt file by file
    shutil.copytree(fetch.cache_dir(), fake, copy_function=os.symlink)
    assert fetch.check(fake)["wheels"]
    for wheel, what in [(next(fake.glob("pyodide-*/numpy-*.whl")), "pyodide-lock.json"),
                        (next(fake.glob("wheels/xlwings-*.whl")), "requirements.txt")]:
        wheel.unlink()
        wheel.write_bytes(b"not the wheel")
        with pytest.raises(fetch.LaneError, match=f"{wheel.name}.*sha256.*{what}"):
            fetch.check(fake)
        wheel.unlink()
        with pytest.raises(fetch.LaneError, match="missing"):
            fetch.check(fake)
        os.symlink(fetch.cache_dir() / wheel.relative_to(fake), wheel)
    fetch.check(fake)
