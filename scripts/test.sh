#!/usr/bin/env bash
# The README's test command: install what is missing (idempotent), then run every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh  # also installs make itself if the machine lacks it
make test
