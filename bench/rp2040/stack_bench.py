# stack_bench.py -- busy cycles of the stack's own per-segment work on the RP2040, without a chip:
# a Stack over a list-backed device, an ESTABLISHED connection made from scripted frames, then
# each operation timed alone with the emulator kit's busy-cycle hook (mem32[0x40058014]), the
# empty-loop cost subtracted. bench/bench_rp2040.py runs it on the emulated board with the
# project's .mpy bundle (run_on_rp2040.sh --put bundle:/); the figures are per call.
import gc
import sys
import time
from machine import mem32

from tcpip import checksum as ck
from tcpip import mem
from tcpip import socket as ts
from tcpip.stack import Stack
from tcpip.tcp import TcpConfig
from tcpip.wire import ipv4

RX = 8192
TX = 8192
MSS = 1460
N = 20
OUR_MAC = b"\x02\x00\x00\x00\x00\x02"
PEER_MAC = b"\x02\x00\x00\x00\x00\x01"
OUR_IP = ipv4.aton("192.0.2.2")
PEER_IP = ipv4.aton("192.0.2.1")


def busy():
    return mem32[0x40058014]


class ManualClock:
    """The clock the bench drives (the tests' tests/host/manualclock.py, cut to what is used)."""

    def __init__(self, ms):
        self.ms = ms
        self.ticks_add = time.ticks_add
        self.ticks_diff = time.ticks_diff

    def ticks_ms(self):
        return self.ms

    def ticks_us(self):
        return self.ms * 1000

    def advance(self, ms):
        self.ms += ms

    def sleep_ms(self, ms):
        self.ms += ms


class Dev:
    """The NIC contract over preallocated frames: nothing allocated per frame."""

    def __init__(self):
        self.mac = OUR_MAC
        self.mtu = 1500
        self.frame = None
        self.n = 0
        self.sent = 0
        self.last = bytearray(1514)
        self.last_n = 0

    def recv_into(self, buf):
        n = self.n
        if not n:
            return 0
        self.n = 0
        mem.copy(buf, 0, self.frame, 0, n)
        return n

    def send(self, buf, n):
        self.sent += 1
        self.last_n = n


def put32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


def segment(sport, dport, seq, ack, flags, window, payload_len, opts=b""):
    """An Ethernet frame from the peer: IPv4 + TCP with valid checksums."""
    hl = 20 + len(opts)
    n = 14 + 20 + hl + payload_len
    f = bytearray(n if n >= 60 else 60)
    f[0:6] = OUR_MAC
    f[6:12] = PEER_MAC
    f[12] = 8
    ipv4.emit_header(f, 14, PEER_IP, 0, OUR_IP, 0, 6, hl + payload_len, 1, 64, True)
    t = 34
    f[t] = sport >> 8
    f[t + 1] = sport & 0xFF
    f[t + 2] = dport >> 8
    f[t + 3] = dport & 0xFF
    put32(f, t + 4, seq)
    put32(f, t + 8, ack)
    f[t + 12] = (hl // 4) << 4
    f[t + 13] = flags
    f[t + 14] = window >> 8
    f[t + 15] = window & 0xFF
    f[t + 20:t + hl] = opts
    for i in range(payload_len):
        f[t + hl + i] = (i * 7) & 0xFF
    acc = ck.pseudo_sum(f, 26, f, 30, 6, hl + payload_len)
    c = ck.checksum(f, t, t + hl + payload_len, acc)
    f[t + 16] = c >> 8
    f[t + 17] = c & 0xFF
    return f


clock = ManualClock(1000)
dev = Dev()
gc.collect()
stack = Stack(dev, clock, addr="192.0.2.2/24", gateway="192.0.2.1",
              tcp_config=TcpConfig(rx_buffer=RX, tx_buffer=TX))
# the peer's MAC, as an ARP reply would teach it
stack.arp.state[0] = 2
stack.arp.ip[0:4] = PEER_IP
stack.arp.mac[0:6] = PEER_MAC
stack.arp.deadline[0] = 1 << 28
ts.set_default_stack(stack)
tcb = stack.tcp.connect(None, 40000, PEER_IP, 5001)
iss = tcb.iss
irs = 0x10000
dev.frame = segment(5001, 40000, irs, (iss + 1) & 0xFFFFFFFF, 0x12, 65535, 0, b"\x02\x04\x05\xb4")
dev.n = len(dev.frame)
stack.poll()
assert tcb.state == 3, tcb.state
print("ESTABLISHED; fastpath", sys.modules["tcpip.fastpath"].IMPLEMENTATION, "rings", RX, TX)

rows = []


def measure(name, prepare, op, reps=N):
    """Busy cycles of op() per call, prepare() (not timed) before each."""
    got = []
    for _ in range(reps):
        prepare()
        b0 = busy()
        op()
        b1 = busy()
        b2 = busy()
        b3 = busy()
        got.append(((b1 - b0) - (b3 - b2)) & 0x3FFFFFFF)
    got.sort()
    rows.append((name, got[len(got) // 2], got[0], got[-1]))


buf = bytearray(2048)
rnxt = [irs + 1]
frames = {}


def data_frame(plen):
    key = (rnxt[0], plen)
    f = segment(5001, 40000, rnxt[0], tcb.snd_una, 0x18, 65535, plen)
    return f


# in-order data segments: each fed to Stack.input directly (no device), the app reads 2 KB now and then
def feed_prep(plen):
    def prep():
        if tcb.rx_len > RX - 2 * MSS:
            while tcb.recv_into(buf, 0, 2048):
                pass
        dev.frame = data_frame(plen)
        dev.n = len(dev.frame)
        rnxt[0] = (rnxt[0] + plen) & 0xFFFFFFFF
    return prep


def do_poll():
    stack.poll()


measure("poll: one 1460-byte data segment", feed_prep(MSS), do_poll)
measure("poll: one 536-byte data segment", feed_prep(536), do_poll)


def prep_read():
    while tcb.rx_len < 2048:
        feed_prep(MSS)()
        stack.poll()


def do_read():
    tcb.recv_into(buf, 0, 2048)


measure("tcb.recv_into 2048 B", prep_read, do_read)
s = ts.socket()
s.tcb = tcb
s.state = 2


def do_sread():
    s.recv_into(buf)


measure("socket.recv_into 2048 B (data waiting)", prep_read, do_sread)


def prep_none():
    pass


def do_idle_poll():
    stack.poll()


measure("poll: nothing waiting", prep_none, do_idle_poll)
clk = [0]


def prep_tick():
    clock.advance(1)


measure("poll: nothing waiting, the clock moved 1 ms", prep_tick, do_idle_poll)

# upload: tcb.send of one MSS (the segment goes out at once), then the peer's ACK for it
data = bytearray(MSS)


def prep_send():
    # the peer ACKs everything sent so far (not timed)
    dev.frame = segment(5001, 40000, rnxt[0], tcb.snd_nxt, 0x10, 65535, 0)
    dev.n = len(dev.frame)
    stack.poll()


def do_send():
    tcb.send(data, 0, MSS)


measure("tcb.send 1460 B (one segment out)", prep_send, do_send)


def do_ssend():
    s.write(data, MSS)


measure("socket.write 1460 B (one segment out)", prep_send, do_ssend)
acked = [0]


def prep_ack():
    tcb.send(data, 0, MSS)
    dev.frame = segment(5001, 40000, rnxt[0], tcb.snd_nxt, 0x10, 65535, 0)
    dev.n = len(dev.frame)


measure("poll: the ACK of one segment", prep_ack, do_poll)
print("segments sent %d; tcb %s; counters %s" % (dev.sent, tcb.state_name(), stack.counters.nonzero()))
print("%-44s %8s %8s %8s" % ("busy cycles per call", "median", "min", "max"))
for name, c, lo, hi in rows:
    print("%-44s %8d %8d %8d" % (name, c, lo, hi))


from tcpip import fastpath, tcp_in, tcp_out

rx = stack.rx


def prep_input():
    if tcb.rx_len > RX - 2 * MSS:
        while tcb.recv_into(buf, 0, 2048):
            pass
    f = data_frame(MSS)
    mem.copy(rx, 0, f, 0, len(f))
    dev.n = len(f)
    rnxt[0] = (rnxt[0] + MSS) & 0xFFFFFFFF


def do_input():
    stack.input(rx, dev.n)


def do_match():
    fastpath.match(rx, dev.n, tcb.th, tcb.r_nxt, tcb.s_una, tcb.s_max)


def prep_match():
    f = data_frame(MSS)
    mem.copy(rx, 0, f, 0, len(f))
    dev.n = len(f)


def do_ack():
    tcp_out.send_ack(tcb)


def do_emit_nothing():
    pass


ackr = [0]


def prep_ack_input():
    prep_ack()
    dev.n = 0  # not through the device: straight into stack.input
    mem.copy(rx, 0, dev.frame, 0, len(dev.frame))
    ackr[0] = len(dev.frame)


def do_ack_input():
    stack.input(rx, ackr[0])


def prep_ack_fast():
    prep_ack_input()
    ackr[0] = fastpath.match(rx, len(dev.frame), tcb.th, tcb.r_nxt, tcb.s_una, tcb.s_max)


def do_ack_fast():
    tcp_in.fast_input(tcb, rx, ackr[0])


rows = []
measure("stack.input: the ACK of one segment", prep_ack_input, do_ack_input)
measure("tcp_in.fast_input: that ACK", prep_ack_fast, do_ack_fast)
measure("stack.input: a 1460-byte data segment", prep_input, do_input)
measure("fastpath.match on it", prep_match, do_match)
measure("tcp_out.send_ack", prep_none, do_ack)
measure("empty op", prep_none, do_emit_nothing)
for name, c, lo, hi in rows:
    print("%-44s %8d %8d %8d" % (name, c, lo, hi))


def do_timers():
    stack._timers()


def do_arp():
    stack.arp.poll(stack.now)


def do_tcp():
    stack.tcp.poll(stack.now)


def do_udp():
    stack.udp.poll(stack.now)


rows = []
qd = bytearray(MSS)


def prep_queue():
    prep_send()
    # queue one MSS in the ring without sending (the send path minus output)
    t = tcb
    pos = (t.tx_head + t.tx_len) % t.tx_size
    mem.copy(t.tx, pos, qd, 0, MSS)
    t.tx_len += MSS


def do_output():
    tcp_out.output(tcb)


def do_emit():
    tcp_out.emit(tcb, tcb.s_nxt, 0x18, 0, MSS)


def do_build():
    fastpath.build(stack.tx, tcb.th, 5, 6, 0x180000 | 1000, MSS)


def do_copy():
    mem.copy(stack.tx, 54, tcb.tx, 0, MSS)


def do_arm():
    tcp_out.arm_rexmit(tcb, False)


measure("tcp_out.output: one MSS queued", prep_queue, do_output)
measure("tcp_out.emit: 1460-byte segment", prep_queue, do_emit)
measure("fastpath.build 1460", prep_none, do_build)
measure("mem.copy ring->frame 1460", prep_none, do_copy)
measure("arm_rexmit", prep_none, do_arm)
for name, c, lo, hi in rows:
    print("%-44s %8d %8d %8d" % (name, c, lo, hi))
rows = []
measure("stack._timers()", prep_tick, do_timers)
measure("arp.poll", prep_tick, do_arp)
measure("tcp.poll", prep_tick, do_tcp)
measure("udp.poll", prep_tick, do_udp)
for name, c, lo, hi in rows:
    print("%-44s %8d %8d %8d" % (name, c, lo, hi))
print(tcb.timer_on, tcb.delack_on, tcb.aux_on, len(stack.tcp.tcbs), stack.udp.timers)


# -- heap: bytes allocated per operation, gc disabled (none may be) --------------------------------
def heap_of(name, prepare, op, reps=20):
    tot = 0
    for _ in range(reps):
        prepare()
        gc.disable()
        a = gc.mem_alloc()
        op()
        b = gc.mem_alloc()
        gc.enable()
        tot += b - a
    print("heap %-44s %6.1f B per call" % (name, tot / reps))


heap_of("poll: one 1460-byte data segment", feed_prep(MSS), do_poll)
heap_of("tcb.recv_into 2048 B", prep_read, do_read)
heap_of("socket.recv_into 2048 B", prep_read, do_sread)
heap_of("poll: nothing waiting, 1 ms later", prep_tick, do_idle_poll)
heap_of("socket.write 1460 B", prep_send, do_ssend)
heap_of("poll: the ACK of one segment", prep_ack, do_poll)
