#!/usr/bin/env bash
# The two entry points of the project: `./run.sh serve` and `./run.sh test`.
# Each creates .venv with python3 (3.11+) if needed and installs the project into it first.
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

command=${1:-}
shift || true
case "$command" in
  serve)
    ensure_env
    exec .venv/bin/safety serve --demo "$@"
    ;;
  test)
    ensure_env
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh serve | test [pytest arguments]" >&2
    exit 2
    ;;
esac
