# tw_probe.py -- what a connection in TIME-WAIT costs in heap: as a Tcb (a socket still open; every
# closed one before records: rings released, the rest kept) and as a record (Tcp.time_wait). On the
# emulated board (the bundle from `python -m host_tools build --board w5500_evb_pico --out DIR`;
# RP2EMU is the emulator kit, optional developer tooling: bench/README.md):
#   $RP2EMU/run_on_rp2040.sh --put DIR:/ bench/rp2040/tw_probe.py
# or on the unix port: MICROPYPATH=lib micropython bench/rp2040/tw_probe.py
# Measured 2026-12-07: a TIME-WAIT Tcb 704 B on the RP2040 (1,202 B on the 64-bit unix port); a
# record 24 B in the table plus its deadline's list slot (4 B; 8 B on 64-bit), the table grown by
# doubling up to time_wait_max and kept.
# No network: the stack sends into a device that drops every frame. Lines "TW ..." carry figures.
import gc

from tcpip.stack import Stack
from tcpip.tcp import TcpConfig, TIME_WAIT
from tcpip.tcp_core import release_rx, release_tx

N = 32


class Dev:
    mac = b"\x02\x00\x00\x00\x00\x01"
    mtu = 1500

    def recv_into(self, buf):
        return 0

    def send(self, buf, n):
        pass


s = Stack(Dev(), addr="192.0.2.2/24", tcp_config=TcpConfig(max_connections=N, time_wait_max=N))
t = s.tcp
peer = b"\xc0\x00\x02\x01"
# an ARP entry for the peer, so SYNs are not queued: learnt from its request
f = bytearray(60)
f[0:6] = b"\xff" * 6
f[6:12] = b"\x02\x00\x00\x00\x00\x02"
f[12:14] = b"\x08\x06"
f[14:22] = b"\x00\x01\x08\x00\x06\x04\x00\x01"
f[22:28] = b"\x02\x00\x00\x00\x00\x02"
f[28:32] = peer
f[38:42] = b"\xc0\x00\x02\x02"
s.input(f, 60)


def conns():
    out = []
    for i in range(N):
        c = t.connect(None, 0, peer, 1000 + i, rx_size=64, tx_size=64)
        release_rx(c)
        release_tx(c)
        c.syn_times = []
        c.timer_on = False
        c.state = TIME_WAIT
        out.append(c)
    t.pool.clear()
    return out


def _scrub():
    # overwrite the C stack's stale pointers, which MicroPython's conservative GC would follow
    x = [0] * 64
    return len(x)


def heap():
    _scrub()
    gc.collect()
    return gc.mem_alloc()


# warm up: the table's list, the pool, the record table's largest size all made once
for c in conns():
    c.orphan = True
    t.time_wait(c)
t.tw_n = 0
c = None
t.pool.clear()
m0 = heap()
tcbs = conns()
m1 = heap()
print("TW tcb_bytes %d" % ((m1 - m0) // N))
for c in tcbs:
    c.orphan = True
    t.time_wait(c)
tcbs = None
c = None
t.pool.clear()
m2 = heap()
print("TW records %d record_bytes %d (the table: %d B for %d, made at the first record)"
      % (t.tw_n, (m2 - m0) // N, len(t.tw), len(t.tw_dl)))
