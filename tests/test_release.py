"""The release in one step: ``python -m build`` makes the sdist and the pure wheel (the wheel
from the sdist, so the sdist is complete), and ``twine check --strict`` accepts both.  The
``dist`` fixture (conftest.py) builds them once; the Pyodide lane installs that same wheel."""

import email
import subprocess
import sys
import tarfile
import zipfile

import xl_kpis


def _twine_check(*files):
    return subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
                          capture_output=True, text=True)


def test_build_makes_one_sdist_and_one_pure_wheel(dist):
    v = xl_kpis.__version__
    assert sorted(p.name for p in dist.iterdir()) == \
        [f"xl_kpis-{v}-py3-none-any.whl", f"xl_kpis-{v}.tar.gz"]


def test_twine_accepts_both(dist):
    files = sorted(dist.iterdir())
    run = _twine_check(*files)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("PASSED") == len(files) == 2, run.stdout


def test_twine_check_catches_a_broken_description(dist, tmp_path):
    # the check can fail: the same wheel with reStructuredText that does not render
    wheel = next(dist.glob("*.whl"))
    broken = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w") as out:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith(".dist-info/METADATA"):
                head = data.decode().partition("\n\n")[0]
                assert "Description-Content-Type: text/markdown" in head
                head = head.replace("text/markdown", "text/x-rst")
                data = (head + "\n\nTitle\n=\n\n`broken <\n").encode()
            out.writestr(item, data)
    run = _twine_check(broken)
    assert run.returncode != 0 and "FAILED" in run.stdout, run.stdout + run.stderr


def test_the_wheel_holds_the_package_data_and_its_markers(dist):
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = email.message_from_bytes(
            zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    assert {"xl_kpis/udfs.py", "xl_kpis/py.typed"} <= set(names)
    assert any(n.startswith("xl_kpis/book/vba/") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    # under Pyodide (xlwings Lite) only numpy and scipy (the predictive CLV's fits) are
    # required, both packages Pyodide builds
    needs = meta.get_all("Requires-Dist")
    always = [r for r in needs if "extra ==" not in r and "emscripten" not in r]
    assert [r.split(">")[0].split("=")[0].strip() for r in always] == ["numpy", "scipy"], needs


def test_the_sdist_holds_the_readme_and_the_sources(dist):
    sdist = next(dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "xl_kpis/udfs.py", "xl_kpis/cells.py"} <= names
