"""CPython only (sys.settrace): every int local of the TCP modules' frames (lib/tcpip/tcp*.py)
stays a small int of a 32-bit MicroPython port (|v| < 2**30) on every line executed while segments
flow both ways, the bases move at nearly every segment, and far-away sequence numbers arrive. The
drivers are those of the dual module test_tcp_seq_relative.py (which checks the Tcb's attributes
after each segment on both runtimes); this adds what only a tracer can see: the temporaries inside
the functions.

Left out on purpose: the frames that work with absolute values by contract (connect time and the
absolute snd_una / snd_nxt / snd_max / rcv_nxt), listed in ABSOLUTE_OK."""
import os
import sys

import test_tcp_seq_relative as rel_tests
from tcpip import cold
from tcpip import tcp
from tcpip import tcp_core, tcp_in, tcp_out, tcp_timer

SMALL = 1 << 30
# every module of the TCP layer (tcpip.tcp_core lists them), and tcpip.cold (ICMP errors,
# keep-alive, TIME-WAIT reuse: imported for each event, from the same file)
TCP_FILES = tuple(os.path.abspath(m.__file__) for m in (tcp, tcp_core, tcp_in, tcp_out, tcp_timer, cold))
# connect time (the ISS / IRS arrive once) and the absolute views for tests, tools and sockets
# (Tcb._absolute behind the properties / __getattr__: snd_una, snd_nxt, snd_max, rcv_nxt)
ABSOLUTE_OK = ("connect", "_set_recv_base", "_tuple_free", "time_wait_reuse",
               "_absolute", "__getattr__", "<lambda>", "__init__")


class IntTracer:
    def __init__(self):
        self.lines = 0
        self.ints = 0
        self.biggest = 0
        self.bad = []
        self.names = set()

    def __call__(self, frame, event, arg):
        code = frame.f_code
        if code.co_filename not in TCP_FILES or code.co_name in ABSOLUTE_OK:
            return None
        self.names.add(code.co_name)
        return self.local

    def local(self, frame, event, arg):
        self.lines += 1
        for k, v in frame.f_locals.items():
            if type(v) is int:
                self.ints += 1
                a = v if v >= 0 else -v
                if a > self.biggest:
                    self.biggest = a
                if not -SMALL <= v < SMALL and len(self.bad) < 20:
                    self.bad.append((frame.f_code.co_name, frame.f_lineno, k, v))
        if event == "return" and type(arg) is int and not -SMALL <= arg < SMALL:
            self.bad.append((frame.f_code.co_name, frame.f_lineno, "<return>", arg))
        return self.local


def traced(fn):
    t = IntTracer()
    sys.settrace(t)
    try:
        fn()
    finally:
        sys.settrace(None)
    assert t.bad == [], t.bad
    return t


def test_transfer_both_ways_every_int_local_small():
    h, tcb = rel_tests.connect(rebase_at=1000)
    w = rel_tests.Watch(tcb)

    def run():
        rel_tests.download(h, tcb, 300000, w, seed=11)
        rel_tests.upload(h, tcb, 300000, w, seed=12)
        # a lost tail: the loss probe and the RTO resend it (timer paths), then it is ACKed
        una = tcb.snd_una
        assert tcb.send(b"tail", 0, 4) == 4
        h.take()
        for _ in range(3):
            h.advance(tcb.rto)
            w()
        out = h.take()
        assert len(out) >= 2 and all(s.payload == b"tail" and s.tcp.seq == una for s in out), out
        h.feed(h.segment(tcb, rel_tests.ACK, tcb.rcv_nxt, (una + 4) & 0xFFFFFFFF))
        assert tcb.tx_len == 0 and tcb.snd_una == (una + 4) & 0xFFFFFFFF
        w()

    t = traced(run)
    assert w.send_moves > 50 and w.recv_moves > 50
    # the tracer did see the per-segment paths, and the relative values did get large enough
    # that a base-free implementation would have failed (|v| reaching well past 2**16)
    for name in ("_input_synchronized", "emit", "rel_read", "rel_write", "_rebase",
                 "_ooo_store", "_ack_advanced", "_dupack",
                 "output", "_take_data", "on_timer"):
        assert name in t.names, (name, sorted(t.names))
    assert t.lines > 100000 and t.biggest >= 1 << 16, (t.lines, t.biggest)


def test_far_numbers_every_int_local_small():
    t = traced(rel_tests.test_far_sequence_numbers_are_refused_after_rebases)
    assert "rel_read" in t.names and t.biggest >= 1 << 28, t.biggest


def test_reset_and_icmp_replies_every_int_local_small():
    t = traced(rel_tests.test_icmp_and_reset_replies_with_far_numbers)
    for name in ("reset_for", "_no_socket", "icmp_error", "_input_syn_sent", "put_sum"):
        assert name in t.names, (name, sorted(t.names))


def test_tracer_catches_a_big_int():
    """The tracer is honest: an absolute sequence number in a tcp.py frame is reported."""
    h, tcb = rel_tests.connect()
    t = IntTracer()
    sys.settrace(t)
    try:
        tcb._rebase()  # nothing to move: sees only small ints
        tcp.Tcb._rebase(tcb)
    finally:
        sys.settrace(None)
    assert t.bad == [] and t.lines > 0
    t = IntTracer()
    sys.settrace(t)
    try:
        tcp_core.shift(0xFFFFFF00, 1)
    finally:
        sys.settrace(None)
    assert t.bad and t.bad[0][2] == "v", t.bad
