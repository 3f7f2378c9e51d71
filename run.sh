#!/usr/bin/env bash
# The two entry points of the project: `./run.sh serve` and `./run.sh test`.
# Each creates .venv with python3 (3.11+) if needed and installs the project into it first.
# `test` runs, in order and stopping at the first that fails: ruff (lint), ruff format --check, mypy, then pytest
# with branch coverage of backend/ (report at the end). Tool settings live in pyproject.toml. It installs Debian's
# Chromium first when it is missing (the desk console's browser tests; screenshots in tests/output/screenshots/), and
# the PDF font (`serve` too).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}

ensure_env() {
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2> >(grep -v "^WARNING: Location" >&2)
}

# The desk console's browser tests drive Debian's Chromium (Playwright's own browser download is not used).
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    return
  fi
  echo "==> installing chromium (Debian package) for the browser tests"
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

# The PDFs embed a Chinese TrueType font (PDF_FONT_PATH; default WenQuanYi Micro Hei from Debian's
# fonts-wqy-microhei). Installed here when missing and the machine has apt-get and root; otherwise say what to do.
DEFAULT_PDF_FONT=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
ensure_font() {
  local font=${PDF_FONT_PATH:-$DEFAULT_PDF_FONT}
  [ -f "$font" ] && return 0
  if [ "$font" = "$DEFAULT_PDF_FONT" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing the PDF font (Debian package fonts-wqy-microhei)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq fonts-wqy-microhei >/dev/null; }
  fi
  if [ ! -f "$font" ]; then
    echo "The PDF font $font is missing: install fonts-wqy-microhei (sudo apt-get install fonts-wqy-microhei)," >&2
    echo "or set PDF_FONT_PATH (and PDF_FONT_INDEX for a .ttc) to a TrueType font with Chinese glyphs." >&2
    exit 1
  fi
}

# Run one check; on failure say which one and stop, so pytest never runs on code that fails the checks.
check() {
  local name=$1
  shift
  echo "==> $name"
  if ! "$@"; then
    echo "./run.sh test: $name failed (see above); fix it before the tests run" >&2
    exit 1
  fi
}

command=${1:-}
shift || true
case "$command" in
  serve)
    ensure_env
    ensure_font
    exec .venv/bin/safety serve --demo "$@"
    ;;
  test)
    ensure_env
    ensure_chromium
    ensure_font
    check "lint (ruff check)" .venv/bin/ruff check .
    check "format (ruff format --check)" .venv/bin/ruff format --check .
    check "types (mypy)" .venv/bin/mypy
    echo "==> tests (pytest, with coverage)"
    exec .venv/bin/python -m pytest --cov "$@"
    ;;
  *)
    echo "usage: ./run.sh serve | test [pytest arguments]" >&2
    exit 2
    ;;
esac
