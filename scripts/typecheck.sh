#!/usr/bin/env bash
# make typecheck: pyright (pinned in requirements-dev.txt) over lib/, twice:
#   1. as the board runs it: against the MicroPython stubs (micropython-rp2-stubs and the stdlib
#      stubs it brings, in .venv's site-packages, given as pyright's typeshed), pyrightconfig.json;
#   2. as CPython runs it: against CPython's stdlib (the typeshed pyright carries),
#      pyrightconfig.host.json.
# Each config says which branches its runtime takes (defineConstant). Fails on any error or warning.
# Runs offline: pyright's wrapper uses the machine's Node.js and the pyright it carries, and with
# PYRIGHT_PYTHON_IGNORE_WARNINGS it does not ask PyPI for a newer release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
PYRIGHT=.venv/bin/pyright
[ -x "$PYRIGHT" ] || { echo "typecheck: no $PYRIGHT: run scripts/setup.sh (make setup)" >&2; exit 2; }
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
[ -f "$SITE/micropython.pyi" ] || { echo "typecheck: no MicroPython stubs in $SITE: run scripts/setup.sh" >&2; exit 2; }
export PYRIGHT_PYTHON_IGNORE_WARNINGS=1
rc=0
echo "typecheck: lib/ against the MicroPython stubs (pyrightconfig.json)"
"$PYRIGHT" --warnings --pythonpath "$PY" -p pyrightconfig.json -t "$SITE" || rc=1
echo "typecheck: lib/ against CPython's stdlib (pyrightconfig.host.json)"
"$PYRIGHT" --warnings --pythonpath "$PY" -p pyrightconfig.host.json || rc=1
exit $rc
