"""Inside Pyodide (run.mjs runs this): run the tests of everything ``xl_kpis.udfs`` imports.

xlwings Lite runs ``xl_kpis.udfs`` and every module it imports, so those modules' tests run
here: for each ``xl_kpis`` module that ``import xl_kpis.udfs`` loads, its test module (the
project's naming: ``xl_kpis/metrics/_kpi.py`` -> ``tests/test_metrics_kpi.py``) and its
doctests.  A module without a test module stops the lane.  Tests marked ``host_only`` are
deselected (tests/conftest.py); the ``lite`` ones run, because the environment is Lite's.

The last line printed is ``pyodide lane result: {json}`` with the counts and the test modules,
and the counts of a planted failing test run first (the lane must see a failure).
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # the checkout is mounted at /repo: write nothing into it
os.chdir("/tmp")                # hypothesis keeps its example database in the working folder

REPO = "/repo"
args = list(globals().get("LANE_ARGS", []))

import xl_kpis.udfs  # noqa: E402

if "site-packages" not in xl_kpis.__file__:
    raise SystemExit(f"xl_kpis was imported from {xl_kpis.__file__}, not from its wheel")


def test_module_for(module: str) -> str:
    """``xl_kpis.metrics._kpi`` -> ``tests/test_metrics_kpi.py``."""
    parts = [p.lstrip("_") for p in module.split(".")[1:]]
    return f"{REPO}/tests/test_{'_'.join(parts)}.py"


modules = sorted(m for m in sys.modules if m.startswith("xl_kpis.")
                 and not hasattr(sys.modules[m], "__path__"))   # packages have no test module
tests = [test_module_for(m) for m in modules]
missing = [t for t in tests if not os.path.isfile(t)]
if missing:
    raise SystemExit(f"no test module for {missing} (modules imported by xl_kpis.udfs)")
doctests = [sys.modules[m].__file__ for m in sorted(m for m in sys.modules
                                                    if m == "xl_kpis" or m.startswith("xl_kpis."))]

import pytest  # noqa: E402


class Count:
    """Counts outcomes the way pytest's summary line does."""

    def __init__(self):
        self.counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0, "deselected": 0}
        self.failures, self.deselected, self.lite_passed = [], [], []

    def pytest_deselected(self, items):
        self.counts["deselected"] += len(items)
        self.deselected += [item.nodeid for item in items]

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            outcome = report.outcome
            if report.when != "call" and outcome == "failed":
                outcome = "error"
            self.counts[outcome] += 1
            if outcome in ("failed", "error"):
                self.failures.append(report.nodeid)
            elif outcome == "passed" and "lite" in report.keywords:
                self.lite_passed.append(report.nodeid)

    def pytest_collectreport(self, report):
        if report.failed:
            self.counts["error"] += 1
            self.failures.append(report.nodeid)


def run(paths, *options):
    """pytest.main over ``paths`` with the project's configuration; (exit code, Count)."""
    count = Count()
    code = pytest.main(["-c", f"{REPO}/pyproject.toml", "--rootdir", REPO, "-p", "no:cacheprovider",
                        "-p", "no:faulthandler", "-s", "-q", *options, *paths], plugins=[count])
    return int(code), count


# First a planted failure, so that a lane that cannot see one cannot pass: one test passes,
# one fails, and the counts and the exit code must say so.
os.makedirs("/tmp/planted", exist_ok=True)
with open("/tmp/planted/test_planted_lane_check.py", "w") as f:
    f.write("def test_passes():\n    assert 1 + 1 == 2\n\n"
            "def test_fails():\n    assert 1 + 1 == 3\n")
print("pyodide lane: a planted failing test first (the lane must count it as failed):")
planted_code, planted = run(["/tmp/planted/test_planted_lane_check.py"], "--tb=no", "--no-summary")
self_check = {**planted.counts, "exit_code": planted_code}

start = time.perf_counter()
exit_code, count = run([*tests, *doctests], *args)
import numpy  # noqa: E402
import xlwings  # noqa: E402

print("pyodide lane result: " + json.dumps({
    **count.counts, "exit_code": exit_code, "seconds": round(time.perf_counter() - start, 1),
    "python": sys.version.split()[0], "platform": sys.platform, "numpy": numpy.__version__,
    "xlwings": xlwings.__version__, "on_server": xlwings.on_server,
    "test_modules": [t.removeprefix(REPO + "/") for t in tests], "failures": count.failures,
    "deselected_tests": count.deselected, "lite_passed": count.lite_passed,
    "self_check": self_check,
}))
exit_code
