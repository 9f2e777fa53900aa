#!/usr/bin/env bash
# Set up everything xl-kpis needs on a Debian/Ubuntu machine; safe to run again.
#   - a virtual environment in .venv (never the system Python: on Debian 12 / Ubuntu 24.04
#     /usr/bin/python3 is "externally managed", PEP 668), with the package and its test extras
#   - LibreOffice Calc (with python3-uno, for the xl-kpis Calc extension) and poppler-utils:
#     the headless engines the tests check workbooks with
#   - Node.js and npm, and the Pyodide lane's files (scripts/pyodide/fetch.py: Pyodide 0.27.7
#     from npm, its numpy/scipy wheels checked against its lock, pinned pure wheels), cached
#     outside the repository in $XL_KPIS_PYODIDE_CACHE (default ~/.cache/xl-kpis/pyodide)
# PYTHON picks the interpreter the venv is made from (default: python3 on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

die() { echo "setup: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON' (install python3, or set PYTHON)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'); xl-kpis needs 3.10 or newer"

need_apt=()
command -v soffice >/dev/null 2>&1 || need_apt+=(libreoffice-calc)
command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# LibreOffice's Python bridge: the xl-kpis Calc extension runs inside LibreOffice's Python
/usr/bin/python3 -c 'import uno' >/dev/null 2>&1 || need_apt+=(python3-uno)
# Debian splits venv/ensurepip out of python3: without python3-venv, "python3 -m venv" fails.
if [ ! -x .venv/bin/python ] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    die "need root (or sudo) to install ${need_apt[*]}"
  fi
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${need_apt[*]} (Debian packages)"
  $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null || die "apt-get install ${need_apt[*]} failed"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  "$PYTHON" -m venv .venv || die "could not create .venv with $PYTHON -m venv"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" >"$log" 2>&1; then
  cat "$log" >&2
  die "pip install of xl-kpis and its test extras into .venv failed (pip's output above)"
fi
.venv/bin/python -c "import xl_kpis, scipy, xlwings, openpyxl, xlsxwriter, python_calamine, babel, pycel, hypothesis, mpmath, openxml_audit" \
  || die "the packages installed into .venv do not import"
# fetch.py says in one line what is wrong (no Node, Node too old, a download or a hash)
.venv/bin/python scripts/pyodide/fetch.py || exit 1
echo "setup: ok ($(.venv/bin/python -c 'import xl_kpis, platform; print("xl-kpis", xl_kpis.__version__, "on Python", platform.python_version())'), $(soffice --version 2>/dev/null | head -1))"
