# profile_probe.py -- where the busy cycles of a TCP transfer go, function by function, on the
# emulated W5500-EVB-Pico (the emulator kit RP2EMU names, optional developer tooling:
# bench/README.md, "bench_rp2040.py"). Set the settings below, then run it with the kit's
# netrun.sh and the project's bundle at / (as bench/bench_rp2040.py --detail runs its probes).
# Each wrapped function is timed with the kit's busy-cycle hook
# (mem32[0x40058014]); the wrappers cost cycles themselves (calibrated and printed), so only
# functions named in WRAP are wrapped, and "self" is inclusive minus wrapped children.
DOWN = 131072
UP = 0               # > 0: profile an upload of UP bytes instead (per sent segment)
READ_SIZE = 2048
WRITE_SIZE = 2048
RX_BUFFER = None
TX_BUFFER = None
WRAP = ("nic.recv_into", "nic.send", "Stack.input", "Stack.poll", "Socket.recv_into")
import gc
import time
from machine import mem32

import tcpip.board as tb
from tcpip import socket as ts
from tcpip import stack as S
from tcpip import tcp as T
from tcpip import tcp_in, tcp_out
from tcpip.tcp import TcpConfig

kw = {}
if RX_BUFFER:
    kw["rx_buffer"] = RX_BUFFER
if TX_BUFFER:
    kw["tx_buffer"] = TX_BUFFER
stack = tb.bring_up(tb.load_board("w5500_evb_pico"), dhcp=False, addr="192.0.2.2/24",
                    gateway="192.0.2.1", tcp_config=TcpConfig(**kw))
nic = stack.nic
cfg = stack.tcp.config
print("BENCH config board=W5500-EVB-Pico baud=%d rx_buffer=%d tx_buffer=%d read_size=%d" % (
    stack.board.BAUDRATE, cfg.rx_buffer, cfg.tx_buffer, READ_SIZE))

# connect first: the rings are the big allocations, made before the wrappers below fragment the heap
gc.collect()
s = ts.socket()
s.settimeout(30)
s.connect(("192.0.2.1", 5001))

PROF = {}
_acc = [0] * 64
_depth = [0]


def _make(orig, ent, n):
    def pre():
        d0 = _depth[0]
        _acc[d0] = 0
        _depth[0] = d0 + 1

    def post(b0):
        d = (mem32[0x40058014] - b0) & 0x3FFFFFFF
        d0 = _depth[0] - 1
        _depth[0] = d0
        ent[0] += d
        ent[1] += 1
        ent[2] += _acc[d0]
        if d0:
            _acc[d0 - 1] += d

    # fixed arities: a *args wrapper would allocate a tuple per call
    if n == -2:  # a second argument with a default (tcp_out.output's cork)
        def w(a, b=False):
            b0 = mem32[0x40058014]; pre(); r = orig(a, b); post(b0); return r
    elif n == 1:
        def w(a):
            b0 = mem32[0x40058014]; pre(); r = orig(a); post(b0); return r
    elif n == 2:
        def w(a, b):
            b0 = mem32[0x40058014]; pre(); r = orig(a, b); post(b0); return r
    elif n == 3:
        def w(a, b, c):
            b0 = mem32[0x40058014]; pre(); r = orig(a, b, c); post(b0); return r
    elif n == 4:
        def w(a, b, c, d):
            b0 = mem32[0x40058014]; pre(); r = orig(a, b, c, d); post(b0); return r
    elif n == 5:
        def w(a, b, c, d, e):
            b0 = mem32[0x40058014]; pre(); r = orig(a, b, c, d, e); post(b0); return r
    else:
        def w(a, b, c, d, e, f):
            b0 = mem32[0x40058014]; pre(); r = orig(a, b, c, d, e, f); post(b0); return r
    return w


ARITY = {"nic.recv_into": 2, "nic.send": 3, "Stack.input": 3, "stack._fp_match": 6,
         "stack._fast_input": 3, "tcp_out.emit": 5, "tcp_out._fp_build": 6, "tcp_out.output": -2,
         "Tcb.recv_into": 4, "Stack._timers": 1, "Socket.recv_into": 2, "Socket.write": 3,
         "Tcb.send": 4, "Stack.poll": 1, "cal.nop": 1, "cal.parent": 2}
OWNERS = {"nic": type(nic), "Stack": S.Stack, "stack": S, "tcp_out": tcp_out, "tcp_in": tcp_in,
          "Tcb": T.Tcb, "Socket": ts.Socket}


def wrap(owner, name, key):
    orig = getattr(owner, name, None)
    if orig is None:
        print("  (no %s)" % key)
        return
    ent = [0, 0, 0]  # inclusive, calls, wrapped children
    PROF[key] = ent
    setattr(owner, name, _make(orig, ent, ARITY[key]))


class _Cal:
    def nop(self):
        return 0

    def parent(self, n):
        for _ in range(n):
            self.nop()


wrap(_Cal, "nop", "cal.nop")
wrap(_Cal, "parent", "cal.parent")
_Cal().parent(50)
cn = PROF.pop("cal.nop")
cp = PROF.pop("cal.parent")
print("wrapper calibration: empty wrapped call %d cycles inclusive; each wrapped child adds ~%d "
      "cycles to its parent's self time" % (cn[0] // cn[1], (cp[0] - cp[2]) // 50))
for k in WRAP:
    o, name = k.split(".")
    wrap(OWNERS[o], name, k)


def table(segs, what):
    rows = []
    for k, e in PROF.items():
        if e[1]:
            rows.append((e[0] - e[2], k, e))
    rows.sort(reverse=True)
    print("%-22s %10s %10s %8s   (busy cycles per %s TCP segment)" % ("function", "inclusive", "self",
                                                                      "calls", what))
    for selfc, k, e in rows:
        print("%-22s %10.0f %10.0f %8.2f" % (k, e[0] / segs, selfc / segs, e[1] / segs))


def reset():
    for e in PROF.values():
        e[0] = e[1] = e[2] = 0


c = stack.counters
if UP:
    data = bytearray(WRITE_SIZE)
    for i in range(WRITE_SIZE):
        data[i] = i & 0xFF
    cmd = ("put %d\n" % UP).encode()
    s.write(cmd, len(cmd))
    reset()
    tx0 = c.tcp_tx
    t0 = time.ticks_us()
    b0 = mem32[0x40058014]
    sent = 0
    while sent < UP:
        n = UP - sent
        if n > WRITE_SIZE:
            n = WRITE_SIZE
        s.write(data, n)
        sent += n
    reply = s.readline()
    el = time.ticks_diff(time.ticks_us(), t0)
    bc = (mem32[0x40058014] - b0) & 0x3FFFFFFF
    segs = c.tcp_tx - tx0
    print("uploaded %d B, reply %r, %d segments; %.1f ms emulated; %d busy cycles per segment "
          "(wrappers included)" % (sent, reply, segs, el / 1000, bc // segs))
    table(segs, "sent")
else:
    cmd = ("get %d\n" % DOWN).encode()
    s.write(cmd, len(cmd))
    buf = bytearray(READ_SIZE)
    total = 0
    seg0 = 0
    first = True
    while total < DOWN:
        n = s.recv_into(buf)
        if not n:
            break
        if first:
            first = False
            reset()
            seg0 = c.tcp_rx
            t0 = time.ticks_us()
            b0 = mem32[0x40058014]
        total += n
    el = time.ticks_diff(time.ticks_us(), t0)
    bc = (mem32[0x40058014] - b0) & 0x3FFFFFFF
    segs = c.tcp_rx - seg0
    print("downloaded %d B, %d segments after the first read; %.1f ms emulated; %d busy cycles "
          "per segment (wrappers included)" % (total, segs, el / 1000, bc // segs))
    table(segs, "received")
s.close()
print("stack counters:", stack.counters.nonzero())
