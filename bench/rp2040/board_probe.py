# board_probe.py -- what the throughput probe does not show, on the emulated W5500-EVB-Pico with
# the project's bundle (bench/bench_rp2040.py --detail runs it through the kit's netrun.sh):
#   depth   Python calls from Stack.poll() to the receive-ring write, and from socket.send() to
#           the driver's send(), counted in the traceback of an exception raised at the bottom
#           (a BaseException: the stack's own `except Exception` guards let it through), and the
#           C stack the deepest of them used (micropython.stack_use())
#   heap    bytes allocated per segment in steady state, both directions (gc disabled)
#   (the 16 KB-ring connect/close loop is bench/rp2040/rings_probe.py: it needs a fresh heap)
# Lines starting with "BOARD " carry the figures.
import gc
import io
import micropython
import sys

import tcpip.board as tb
from tcpip import mem
from tcpip import socket as ts
from tcpip.tcp import TcpConfig

stack = tb.bring_up(tb.load_board("w5500_evb_pico"), dhcp=False, addr="192.0.2.2/24",
                    gateway="192.0.2.1", tcp_config=TcpConfig())
nic = stack.nic
SERVER = ("192.0.2.1", 5001)


class Probe(BaseException):
    pass


def frames_of(exc):
    out = io.StringIO()
    sys.print_exception(exc, out)
    return [l.strip() for l in out.getvalue().split("\n") if l.strip().startswith("File")]


armed = [False]
seen = [None, 0]
real_copy = mem.copy


def copy_probe(dst, doff, src, soff, n):
    if armed[0] and n >= 512 and dst is not stack.tx:
        armed[0] = False
        seen[1] = micropython.stack_use()
        raise Probe()
    real_copy(dst, doff, src, soff, n)


def poll_until_probe():
    for _ in range(2000):
        try:
            stack.poll()
        except Probe as e:
            return e
        if not armed[0]:
            break
    return None


# -- depth of the receive path -------------------------------------------------------------------
gc.collect()
s = ts.socket()
s.settimeout(30)
s.connect(SERVER)
cmd = b"get 65536\n"
s.write(cmd, len(cmd))
buf = bytearray(2048)
got = 0
while got < 16384:  # well into the transfer: header prediction in use
    got += s.recv_into(buf)
mem.copy = copy_probe
armed[0] = True
e = poll_until_probe()
mem.copy = real_copy
if e is None:
    print("BOARD depth_recv none (no segment arrived)")
else:
    fr = frames_of(e)
    # the frames from this script's call into Stack.poll down to the probe (both excluded)
    calls = [f for f in fr if "poll_until_probe" not in f and "copy_probe" not in f and "<stdin>" not in f]
    print("BOARD depth_recv calls=%d c_stack=%d" % (len(calls), seen[1]))
    for f in fr:
        print("   ", f)
while True:
    n = s.recv_into(buf)
    if not n:
        break
s.close()

# -- depth of the send path ----------------------------------------------------------------------
gc.collect()
s = ts.socket()
s.settimeout(30)
s.connect(SERVER)
real_send = type(nic).send
depth = [None, 0]


def send_probe(self, b, n):
    if armed[0] and n > 1000:
        armed[0] = False
        depth[1] = micropython.stack_use()
        raise Probe()
    real_send(self, b, n)


data = bytearray(1460)
for i in range(1460):
    data[i] = i & 0xFF
cmd = b"put 14600\n"
s.write(cmd, len(cmd))
type(nic).send = send_probe
armed[0] = True
try:
    s.send(data)
    print("BOARD depth_send none")
except Probe as e:
    fr = frames_of(e)
    calls = [f for f in fr if "send_probe" not in f and "<stdin>" not in f]
    print("BOARD depth_send calls=%d c_stack=%d" % (len(calls), depth[1]))
    for f in fr:
        print("   ", f)
type(nic).send = real_send
s.tcb.abort()  # the probe cut the send path short: a RST, the rings back to the pool
s.close()

# -- heap per segment, both directions ----------------------------------------------------------
c = stack.counters
pat = bytearray(2048)  # writes of 2048 bytes keep the server's pattern (byte k = k & 0xff) in phase
for i in range(2048):
    pat[i] = i & 0xFF
for way in ("down", "up"):
    gc.collect()
    s = ts.socket()
    s.settimeout(30)
    s.connect(SERVER)
    total = 262144
    cmd = (b"get %d\n" if way == "down" else b"put %d\n") % total
    s.write(cmd, len(cmd))
    moved = 0
    a0 = -1
    s0 = 0
    while moved < total:
        if a0 == -1 and moved >= total // 4:
            # the counter read first: the first read by name loads tcpip.counter_names (once)
            s0 = c.tcp_rx if way == "down" else c.tcp_tx
            gc.collect()
            gc.disable()
            a0 = gc.mem_alloc()
        if way == "down":
            n = s.recv_into(buf)
            if not n:
                break
        else:
            n = s.write(pat, 2048)
        moved += n
        if a0 >= 0 and moved >= total * 3 // 4:
            a1 = gc.mem_alloc()
            gc.enable()
            segs = (c.tcp_rx if way == "down" else c.tcp_tx) - s0
            print("BOARD heap_%s bytes=%d segments=%d per_segment=%.2f" % (
                way, a1 - a0, segs, (a1 - a0) / segs if segs else 0))
            a0 = -2
    gc.enable()
    if way == "up":
        print("BOARD up_reply %r" % s.readline())
    s.close()
