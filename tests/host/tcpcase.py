# Shared by the scripted TCP rule tests (test_tcp_transfer/close/rfc5961/...): an ESTABLISHED
# connection whose ISS and IRS sit just below 2**32 (so sequence numbers wrap in every test), and
# helpers that speak in offsets from each side's first data byte. MicroPython-compatible.
#
# One dialect for both directions, seq before ack, each counted from the first data byte of the side
# that numbers it (the peer's seq and our ack from IRS + 1, our seq and the peer's ack from ISS + 1):
#   peer(h, tcb, seq, ack, payload=..., window=..., flags=ACK)    what the peer sends
#   expect(h, flags, seq, ack, payload=..., window=..., options=)  the one segment we send
#   nothing(h)                                                     we send nothing
#   sack_blocks(s)                                                 its SACK blocks, as offsets
# Harness.segment() / Harness.expect_tcp() (segment.py) are the same calls in absolute numbers.
from segment import ACK, SYN, Harness
from tcpip import tcp
from wirerep import tcp as wtcp

ISS = 0xFFFFFF00  # our data crosses 2**32 after 255 bytes
IRS = 0xFFFFFF80  # the peer's data crosses 2**32 after 127 bytes
MASK = 0xFFFFFFFF
MSS = 1460


def sq(x):
    return x & MASK


def rel(seq, base):
    """Signed distance of seq from base in sequence space."""
    d = (seq - base) & MASK
    return d - 0x100000000 if d >= 0x80000000 else d


def pattern(n, salt=0):
    b = bytearray(n)
    for i in range(n):
        b[i] = (i * 7 + (i >> 8) * 13 + salt) & 0xFF
    return bytes(b)


def fix_isn(h, iss=ISS):
    h.stack.tcp.isn.isn = lambda laddr, lport, raddr, rport: iss


def setup(window=65535, mss=MSS, handshake_ms=0, sack=False, **opts):
    """An ESTABLISHED connection; the SYN-ACK arrives handshake_ms after the SYN (first RTT) and
    carries MSS mss, with sack also SACK-permitted (RFC 2018)."""
    h = Harness(**opts)
    fix_isn(h)
    tcb, _ = h.connect()
    if handshake_ms:
        h.advance(handshake_ms)
    syn_opts = None
    if sack:  # MSS, SACK-permitted, NOP, NOP
        syn_opts = b"\x02\x04" + bytes([mss >> 8, mss & 0xFF]) + b"\x04\x02\x01\x01"
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), window, mss=mss, options=syn_opts))
    h.expect_tcp(ACK, seq=sq(ISS + 1), ack=sq(IRS + 1))
    assert tcb.state == tcp.ESTABLISHED
    return h, tcb


def peer(h, tcb, seq=0, ack=0, window=65535, payload=b"", flags=ACK, options=None):
    """The peer sends a segment; seq and ack are offsets from its and our first data byte;
    options: raw option bytes."""
    h.feed(h.segment(tcb, flags, sq(IRS + 1 + seq), sq(ISS + 1 + ack), window, payload,
                      options=options))


def segs(h):
    """Everything we sent since the last look (all TCP), oldest first."""
    out = h.take()
    for s in out:
        assert s.tcp is not None, s
    assert h.stack.counters.eth_drop_exception == 0
    return out


def layout(out):
    """(seq offset, payload length, flags) of each segment."""
    return [(rel(s.tcp.seq, sq(ISS + 1)), len(s.payload), s.tcp.flags) for s in out]


def expect(h, flags, seq, ack=0, payload=None, window=None, options=None):
    """Exactly one segment went out: flags, seq / ack as offsets, and payload / window / options
    (raw option bytes, b"" for none) if given."""
    out = segs(h)
    assert len(out) == 1, "expected one segment, got %r" % (layout(out),)
    s = out[0]
    assert s.tcp.flags == flags, (layout(out), flags)
    assert s.tcp.seq == sq(ISS + 1 + seq), (layout(out), seq)
    if flags & ACK:
        assert s.tcp.ack == sq(IRS + 1 + ack), (rel(s.tcp.ack, sq(IRS + 1)), ack)
    if payload is not None:
        assert s.payload == payload, (len(s.payload), len(payload))
    if window is not None:
        assert s.tcp.window == window, (s.tcp.window, window)
    if options is not None:
        assert s.options == options, (s.options, options)
    assert h.stack.counters.eth_drop_exception == 0
    return s


def sack_blocks(s):
    """The SACK blocks of a segment we sent, as [(left, right), ...] offsets from IRS + 1."""
    f = s.frame
    off = 14 + (f[14] & 15) * 4
    hl = (f[off + 12] >> 4) * 4
    i = wtcp.find_option(f, off, hl, 5, f[off + 23]) if hl > 20 else -1
    if i < 0:
        return []
    base = sq(IRS + 1)
    out = []
    for k in range((f[i + 1] - 2) // 8):
        p = i + 2 + 8 * k
        out.append((rel(int.from_bytes(f[p:p + 4], "big"), base),
                    rel(int.from_bytes(f[p + 4:p + 8], "big"), base)))
    return out


def nothing(h):
    out = segs(h)
    assert out == [], layout(out)


def to(h, t):
    """Advance the clock to absolute time t (ms since the harness started)."""
    now = h.clock.ticks_ms()
    assert t >= now, (t, now)
    h.advance(t - now)


def read_all(tcb):
    buf = bytearray(70000)
    n = tcb.recv_into(buf, 0, len(buf))
    return bytes(buf[:n])
