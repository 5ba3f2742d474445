#!/usr/bin/env bash
# The README's demo command: install what is missing (idempotent), then connect the stack to a
# real HTTP server in a private network namespace, on CPython and on the MicroPython unix port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
make demo
