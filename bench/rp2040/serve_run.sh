#!/bin/bash
# serve_run.sh KIT_DIR BUNDLE_DIR -- bench/rp2040/serve_probe.py on the emulated W5500-EVB-Pico with
# curl as its client: the kit's netrun.sh (the emulator kit RP2EMU names: bench/README.md)
# does not start clients, so this does what it does (a private namespace, the TAP, the kit's bridge
# to its W5500 model) and runs curl against the board while the probe serves. Developer tooling,
# not a test: the probe's "SERVE" lines and curl's results go to stdout.
#   python -m host_tools build --board w5500_evb_pico --out /tmp/b && bench/rp2040/serve_run.sh "$RP2EMU" /tmp/b
set -u
KIT=$(cd "$1" && pwd); BUNDLE=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${SERVE_NETNS:-}" != 1 ]; then
  exec unshare -n env SERVE_NETNS=1 bash "$0" "$@"
fi
export RP2EMU_CACHE=${RP2EMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rp2emu}
OUT=$(mktemp -d)
ip link set lo up
DEV=tapw0
ip tuntap add dev $DEV mode tap
ip addr add 192.0.2.1/24 dev $DEV; ip link set $DEV up
export W5500_PEER_PORT=47000 W5500_UDP_PORT=47001 W5500_STATS="$OUT/nic_counters.json"
python3 "$KIT/w5500model/tap_bridge.py" --dev $DEV --listen 47000 --peer 47001 --duration 900 \
  --max-frames 100000000 > "$OUT/bridge.log" 2>&1 &
BR=$!
for i in $(seq 50); do grep -q '^tap_bridge:' "$OUT/bridge.log" 2>/dev/null && break; sleep 0.1; done
timeout 600 "$KIT/run_on_rp2040.sh" --timeout 580 --device "$KIT/w5500model/device_w5500.mjs" \
  --put "$BUNDLE:/" "$HERE/serve_probe.py" 2> "$OUT/emulator.stderr" | tee "$OUT/board.out" &
EMU=$!
for i in $(seq 3000); do grep -q '^SERVE listening' "$OUT/board.out" 2>/dev/null && break; sleep 0.1; done
for k in $(seq 10); do
  curl -s -S --max-time 120 -o /dev/null -w "CURL %{http_code} %{size_download} B %{time_total} s\n" \
    "http://192.0.2.2:8080/r$k"
done
wait $EMU
kill $BR 2>/dev/null; wait $BR 2>/dev/null
rm -rf "$OUT"
