# dual: cpython micropython
# Sequence numbers inside a Tcb are small ints relative to a send and a receive base (tcp.py's
# module docstring): the 32-bit MicroPython property, proved on a 64-bit host as far as it can be.
# Megabytes go both ways through the segment harness with ISS and IRS just below 2**32 and the bases
# forced to move every few KB (tcb.rebase_at), and after every segment every int attribute of the
# Tcb (and of its out-of-order list) must be a small int on a 32-bit port (|v| < 2**30), the
# relative SND.UNA / SND.NXT / SND.MAX / RCV.NXT must stay within rebase_at plus a window, and the
# bytes, the ACK numbers and the SACK blocks on the wire must be exact. Wire values far from
# anything (2**31 away...) must be classified exactly as wire.tcp.seq_diff would.
# test_tcp_seq_trace.py (CPython only) runs these drivers under a line tracer that checks every int
# local of tcp.py's frames.
from segment import ACK, FIN, PSH, RST, SYN, Harness
from tcpcase import IRS, ISS, MSS, fix_isn, rel, sq
from tcpip import tcp
from tcpip import tcp_core
from wirerep.tcp import seq_diff

SMALL = 1 << 30  # ints from here on are heap objects on a 32-bit MicroPython port
REBASE_AT = 3000  # tests move the bases every ~3 KB (the default is 2**28)
SLACK = 3 * 65536  # relative SND.* / RCV.NXT stay below rebase_at + a window or two
_P = 7919  # the stream repeats with a prime period, never aligned with segments or rings
_BLOCK = bytes(((i * 7 + (i >> 8) * 13) & 0xFF) for i in range(_P)) * 2  # period _P


def stream(off, n):
    """n bytes of the test stream from offset off (n < _P)."""
    s = off % _P
    return _BLOCK[s:s + n]


class Rand:
    """xorshift32: the same sequence on every runtime."""

    def __init__(self, seed):
        self.x = ((seed * 2654435761) & 0xFFFFFFFF) or 1

    def below(self, n):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x % n


class Watch:
    """Checks a Tcb after every segment; counts how often each base moved."""

    def __init__(self, tcb):
        self.tcb = tcb
        self.checks = 0
        self.send_moves = 0
        self.recv_moves = 0
        self.sb = (tcb.s_bhi, tcb.s_blo)
        self.rb = (tcb.r_bhi, tcb.r_blo)

    def __call__(self):
        t = self.tcb
        for k in t.__dict__:
            if k == "iss" or k == "irs":
                continue  # absolute by contract, set once per connection
            v = t.__dict__[k]
            if type(v) is int:
                assert -SMALL <= v < SMALL, (k, v)
            elif type(v) is list:
                for x in v:
                    assert type(x) is not int or -SMALL <= x < SMALL, (k, v)
        for v in (t.s_una, t.s_nxt, t.s_max, t.r_nxt):
            assert -SLACK < v < t.rebase_at + SLACK, (t.s_una, t.s_nxt, t.s_max, t.r_nxt)
        for i in range(2 * t.ooo_n):
            assert -SLACK < t.ooo[i] < t.rebase_at + SLACK, t.ooo
        for v in (t.s_bhi, t.s_blo, t.r_bhi, t.r_blo):
            assert 0 <= v <= 0xFFFF
        sb = (t.s_bhi, t.s_blo)
        rb = (t.r_bhi, t.r_blo)
        if sb != self.sb:
            self.send_moves += 1
            self.sb = sb
        if rb != self.rb:
            self.recv_moves += 1
            self.rb = rb
        self.checks += 1


def sack_blocks(s):
    """The SACK blocks of a segment we sent, as (start, end) absolute pairs."""
    f = s.frame
    o = 14 + (f[14] & 15) * 4
    end = o + (f[o + 12] >> 4) * 4
    i = o + 20
    out = []
    while i < end:
        k = f[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        n = f[i + 1]
        if k == 5:
            j = i + 2
            while j < i + n:
                a = f[j] << 24 | f[j + 1] << 16 | f[j + 2] << 8 | f[j + 3]
                b = f[j + 4] << 24 | f[j + 5] << 16 | f[j + 6] << 8 | f[j + 7]
                out.append((a, b))
                j += 8
        i += n
    return out


def connect(rx=8192, tx=16384, rebase_at=REBASE_AT, iss=ISS, irs=IRS):
    """ESTABLISHED with SACK permitted; ISS / IRS just below 2**32 (both wrap at once)."""
    h = Harness(rx_buffer=rx, tx_buffer=tx)
    fix_isn(h, iss)
    tcb, _ = h.connect()
    tcb.rebase_at = rebase_at
    opts = b"\x02\x04" + bytes((MSS >> 8, MSS & 0xFF)) + b"\x01\x01\x04\x02"
    h.feed(h.segment(tcb, SYN | ACK, irs, sq(iss + 1), 65535, options=opts))
    h.expect_tcp(ACK, seq=sq(iss + 1), ack=sq(irs + 1))
    assert tcb.state == tcp.ESTABLISHED and tcb.sack_ok
    return h, tcb


def download(h, tcb, total, watch, seed=1):
    """The peer sends total bytes (some segments swapped, some duplicated); the application reads
    as they come. Checks every ACK number and SACK block on the way."""
    r = Rand(seed)
    buf = bytearray(8192)
    got = 0
    sent = 0
    base = tcb.rcv_nxt
    swapped = 0
    sacked = 0
    for _ in range(4 * (total // MSS + 10)):
        if got == total:
            break
        n = total - sent
        if n > MSS:
            n = MSS
        order = [(sent, n)]
        n2 = total - sent - n
        if n2 > MSS:
            n2 = MSS
        if n2 > 0 and r.below(5) == 0:
            order = [(sent + n, n2), (sent, n)]  # out of order: the later segment first
            swapped += 1
        elif sent and r.below(9) == 0:
            order.insert(0, (sent - 100, 100))  # an old duplicate
        for off, k in order:
            h.feed(h.segment(tcb, ACK, sq(base + off), tcb.snd_una, 65535, stream(off, k)))
            watch()
            have = got + tcb.rx_len
            out = h.take()
            for s in out:
                assert s.tcp.flags == ACK and s.payload == b"", s
                assert s.tcp.ack == sq(base + have), (rel(s.tcp.ack, base), have)
                for a, b in sack_blocks(s):
                    sacked += 1
                    assert (rel(a, base), rel(b, base)) == (off, off + k), (rel(a, base), off)
            sent = off + k if off + k > sent else sent
        m = tcb.recv_into(buf, 0, len(buf))
        for i in range(0, m, 1000):
            k = m - i if m - i < 1000 else 1000
            assert buf[i:i + k] == stream(got + i, k), got + i
        got += m
        h.take()  # window updates
        watch()
    assert got == total and tcb.rx_len == 0
    assert tcb.rcv_nxt == sq(base + total)
    assert total < 100000 or (swapped > 0 and sacked > 0)


def upload(h, tcb, total, watch, seed=2):
    """The application sends total bytes; the peer drops some segments (first copies only), keeps
    what arrives out of order, and ACKs every segment it gets (duplicate ACKs for holes)."""
    r = Rand(seed)
    queued = 0
    expected = 0  # the peer's cumulative offset
    held = {}  # start -> end, out of order at the peer
    dropped = {}
    pending = []
    base = tcb.snd_una
    nxt = tcb.rcv_nxt
    for _ in range(20 * (total // MSS + 10)):
        if expected == total:
            break
        while queued < total:
            n = total - queued
            if n > 4000:
                n = 4000
            k = tcb.send(stream(queued, n), 0, n)
            if k == 0:
                break
            queued += k
        watch()
        pending.extend(h.take())
        if not pending:
            h.advance(tcb.rto)  # nothing in the air: a timer (loss probe / RTO) resends
            watch()
            continue
        s = pending.pop(0)
        n = len(s.payload)
        off = rel(s.tcp.seq, base)
        assert s.tcp.ack == nxt and 0 <= off and off + n <= total, (off, n)
        if n == 0:
            continue
        assert s.payload == stream(off, n), off
        if off not in dropped and r.below(40) == 0:
            dropped[off] = True
            continue
        if off + n > expected:
            if off <= expected:
                expected = off + n
                while expected in held:
                    e = held.pop(expected)
                    if e > expected:
                        expected = e
            else:
                held[off] = off + n
        h.feed(h.segment(tcb, ACK, nxt, sq(base + expected), 65535))
        watch()
        assert tcb.snd_una == sq(base + expected), (rel(tcb.snd_una, base), expected)
    assert expected == total and tcb.tx_len == 0
    assert total < 100000 or (len(dropped) > 0 and h.stack.counters.tcp_rexmit > 0)


def test_rel_read_write_agree_with_seq_diff():
    r = Rand(7)
    buf = bytearray(4)
    edge = (0, 1, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFF, 0x1FFFFFFF, 0x20000000,
            0xE0000000, 0xDFFFFFFF, 0x0000FFFF, 0x00010000)
    for i in range(3000):
        base = edge[i % len(edge)] if i < 4 * len(edge) else r.below(1 << 16) << 16 | r.below(1 << 16)
        bhi = base >> 16
        blo = base & 0xFFFF
        ref = r.below(1 << 29) - (1 << 28) if i % 3 else r.below(REBASE_AT + SLACK)
        w = r.below(1 << 16) << 16 | r.below(1 << 16)
        if i % 4 == 1:
            w = (base + ref + edge[(i >> 2) % len(edge)]) & 0xFFFFFFFF
        buf[0] = w >> 24
        buf[1] = (w >> 16) & 0xFF
        buf[2] = (w >> 8) & 0xFF
        buf[3] = w & 0xFF
        d = seq_diff(w, (base + ref) & 0xFFFFFFFF)
        if d >= 1 << 29:
            d = 1 << 29
        if d < -(1 << 29):
            d = -(1 << 29)
        v = tcp_core.rel_read(buf, 0, bhi, blo, ref)
        assert v == ref + d, (hex(base), ref, hex(w), v, d)
        assert -SMALL <= v < SMALL
        if -(1 << 29) < d < 1 << 29:
            out = bytearray(4)
            tcp_core.rel_write(out, 0, bhi, blo, v)  # and back: the same four bytes
            assert out == buf, (hex(base), v, out, buf)


def test_put_sum_adds_with_carries():
    out = bytearray(4)
    for v, n in ((0xFFFFFFFF, 1), (0xFFFF0000, 0xFFFF), (0x0000FFFF, 1), (0x12345678, 0x8888), (0, 0)):
        src = bytes(((v >> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))
        tcp_core.put_sum(out, 0, src, 0, n)
        w = (v + n) & 0xFFFFFFFF
        assert out == bytes(((w >> 24) & 0xFF, (w >> 16) & 0xFF, (w >> 8) & 0xFF, w & 0xFF)), (v, n)


def test_download_megabytes_small_ints_and_rebases():
    h, tcb = connect()
    w = Watch(tcb)
    total = 3 * 1000 * 1000
    download(h, tcb, total, w)
    assert w.recv_moves >= total // (REBASE_AT + 2 * 8192) and w.send_moves == 0
    assert h.stack.counters.tcp_ooo_queued > 0 and h.stack.counters.eth_drop_exception == 0


def test_upload_megabytes_small_ints_and_rebases():
    h, tcb = connect()
    w = Watch(tcb)
    total = 3 * 1000 * 1000
    upload(h, tcb, total, w)
    assert w.send_moves >= total // (REBASE_AT + 2 * 16384) and w.recv_moves == 0
    c = h.stack.counters
    assert c.tcp_fast_retransmit > 0 and c.eth_drop_exception == 0


def test_both_ways_then_close_across_many_rebases():
    h, tcb = connect(rebase_at=1)  # a move at nearly every segment
    w = Watch(tcb)
    download(h, tcb, 200000, w, seed=3)
    upload(h, tcb, 200000, w, seed=4)
    assert w.send_moves > 50 and w.recv_moves > 50
    tcb.close()
    s = h.expect_tcp(FIN | ACK, seq=sq(ISS + 1 + 200000), ack=sq(IRS + 1 + 200000))
    assert s.payload == b""
    h.feed(h.segment(tcb, FIN | ACK, sq(IRS + 1 + 200000), sq(ISS + 2 + 200000)))
    watch_ack = h.expect_tcp(ACK, seq=sq(ISS + 2 + 200000), ack=sq(IRS + 2 + 200000))
    assert watch_ack is not None and tcb.state == tcp.CLOSED
    # TIME-WAIT as a record (the application closed): SND.NXT and RCV.NXT come out of the bases
    # and the relative values in 16-bit halves, so they must be exact across all those moves
    r = h.stack.tcp.tw
    assert h.stack.tcp.tw_n == 1
    assert int.from_bytes(bytes(r[12:16]), "big") == sq(ISS + 2 + 200000)
    assert int.from_bytes(bytes(r[16:20]), "big") == sq(IRS + 2 + 200000)


# 2**31 - 2000 away: beyond the antipode of the base (which lies >= 6000 behind SND.UNA and
# RCV.NXT below) but not of the reference, so only a reading relative to SND.UNA / RCV.NXT (as
# seq_diff) classifies it right
FAR = (0x7FFFFFFF, 0x80000000, 0x80000001, 0x40000000, -0x40000000, 0x20000005, -0x20000005,
       0x10000000, -0x10000000, 0x30007, 0x3FFFFFFF, -0x3FFFFFFF, 0x7FFFF830, -0x7FFFF830)


def test_far_sequence_numbers_are_refused_after_rebases():
    h, tcb = connect()
    w = Watch(tcb)
    download(h, tcb, 50000, w, seed=5)
    upload(h, tcb, 50000, w, seed=6)
    assert w.send_moves > 3 and w.recv_moves > 3
    tcb.rebase_at = 1 << 28  # now leave each base >= 6000 behind its reference
    download(h, tcb, 6000, w, seed=7)
    upload(h, tcb, 6000, w, seed=8)
    assert tcb.s_una >= 6000 and tcb.r_nxt >= 6000
    c = h.stack.counters
    una = tcb.snd_una
    nxt = tcb.rcv_nxt
    for d in FAR:
        # data far from RCV.NXT: out of window, never taken; an ACK (maybe rate limited) answers
        before = c.tcp_drop_out_of_window
        h.feed(h.segment(tcb, ACK, sq(nxt + d), una, 65535, b"evil"))
        assert c.tcp_drop_out_of_window == before + 1 and tcb.rx_len == 0, hex(d)
        assert tcb.rcv_nxt == nxt and tcb.state == tcp.ESTABLISHED
        for s in h.take():
            assert s.tcp.flags == ACK and s.tcp.ack == nxt and s.tcp.seq == una, s
        # a RST far away: blind, dropped
        before = c.tcp_rst_blind_dropped
        h.feed(h.segment(tcb, RST | ACK, sq(nxt + d), una))
        assert c.tcp_rst_blind_dropped == before + 1 and tcb.state == tcp.ESTABLISHED, hex(d)
        h.take()
        # an ACK number far from SND.UNA: classified exactly as seq_diff says
        a = sq(una + d)
        unsent = c.tcp_ack_unsent_data
        old = c.tcp_ack_too_old
        h.feed(h.segment(tcb, ACK, nxt, a, 65535))
        if seq_diff(a, tcb.snd_max) > 0:
            assert c.tcp_ack_unsent_data == unsent + 1 and c.tcp_ack_too_old == old, hex(d)
        else:
            assert seq_diff(a, sq(una - tcb.max_snd_wnd)) < 0
            assert c.tcp_ack_too_old == old + 1 and c.tcp_ack_unsent_data == unsent, hex(d)
        assert tcb.snd_una == una
        h.take()
        h.advance(1000)  # past the rate limit of challenge / out-of-window ACKs
        h.take()
        w()
    # and the connection still works, both ways
    h.feed(h.segment(tcb, ACK | FIN, nxt, una, 65535, b"fine"))
    assert tcb.rx_len == 4 and tcb.fin_received and tcb.rcv_nxt == sq(nxt + 5)
    h.take()
    assert tcb.send(b"ok", 0, 2) == 2
    s = h.expect_tcp(ACK | PSH, seq=una, ack=sq(nxt + 5), payload=b"ok")
    assert s is not None
    w()


def test_icmp_and_reset_replies_with_far_numbers():
    h = Harness()
    fix_isn(h, 0xFFFFFFFF)
    tcb, _ = h.connect()
    # SYN-SENT: an ACK that is not ours gets <SEQ=SEG.ACK><CTL=RST>, copied bytewise
    h.feed(h.segment(tcb, SYN | ACK, 0x89ABCDEF, 0x80000000))
    h.expect_tcp(RST, seq=0x80000000)
    # ICMP quoting another sequence number: ignored; quoting our SYN's: fails the connect
    h.feed(h.icmp_error(tcb, 3, 1, quoted_seq=0x7FFFFFFF))
    assert tcb.state == tcp.SYN_SENT
    h.feed(h.icmp_error(tcb, 3, 1, quoted_seq=0xFFFFFFFF))
    assert tcb.state == tcp.CLOSED
    # no socket: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, the sum carried across 2**32
    h.feed(h.segment(tcb, SYN | FIN, 0xFFFFFFFE, 0, payload=b"abc"))
    h.expect_tcp(RST | ACK, seq=0, ack=3)
