#!/usr/bin/env bash
# Set up everything xl-kpis needs on a Debian/Ubuntu machine; safe to run again.
#   - Python package with its test extras (editable install)
#   - LibreOffice Calc and poppler-utils: the headless engines the tests check workbooks with
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v soffice >/dev/null 2>&1 || need_apt+=(libreoffice-calc)
command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "setup: need root (or sudo) to install ${need_apt[*]}" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${need_apt[*]} (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 \
  | grep -v "Running pip as the 'root' user" || true
python3 -c "import xl_kpis, xlwings, openpyxl, xlsxwriter, python_calamine, pycel, hypothesis" 
echo "setup: ok ($(python3 -c 'import xl_kpis; print("xl-kpis", xl_kpis.__version__)'), $(soffice --version 2>/dev/null | head -1))"
