"""What every part of TCP shares: the states, relative sequence numbers, the rings, and the small
state and timer helpers of a Tcb (the connection itself is tcpip.tcp.Tcb).

TCP is split by role, as lwIP splits tcp_in.c / tcp_out.c / tcp.c:
  tcp_core   this file: states, sequence-number and ring helpers, state / timer / ending helpers
  tcp_out    what we send and when: segments, output(), retransmission, RST, the fast ACK
  tcp_timer  the retransmit / persist / TIME-WAIT / delayed-ACK / keep-alive timers, RTT
  tcp_in     what happens to an arriving segment (RFC 9293 3.10.7), header prediction first
  tcp        TcpConfig, the Tcb, the connection table, connect, demultiplexing
  (tcpip.cold: ICMP errors, TIME-WAIT reuse, keep-alive: loaded for the rare event, not kept)

Sequence numbers. On a 32-bit MicroPython port an int is a heap object from 2**30 on, and TCP
sequence numbers are spread over 2**32, so inside a Tcb every sequence number is kept RELATIVE to a
base, as a small int compared with plain < and >: send-side values (s_*: SND.UNA, SND.NXT, ACKs,
recover...) to the send base (ISS at first), receive-side values (r_*: RCV.NXT, SEG.SEQ, the
out-of-order ranges...) to the receive base (IRS at first). Each base is held as two 16-bit halves
so that converting to and from the wire (rel_read / rel_write) touches small ints only. A base
moves forward (Tcb._rebase) once SND.UNA or RCV.NXT lies rebase_at past it, so relative values stay
within about +-2**29. A value read from the wire is taken relative to a reference (RCV.NXT for
SEG.SEQ, SND.UNA for SEG.ACK): its distance from it is exactly wire.tcp.seq_diff's, clamped to
+-2**29 (still "far before" / "far after" for every check of RFC 9293 and RFC 5961). tcb.iss,
tcb.irs and tcb.snd_una, snd_nxt, snd_max, rcv_nxt (Tcb.__getattr__) are absolute (not per segment).
Per-segment code indexes buffers and allocates nothing, on 32-bit ports too.
"""
from tcpip import mem
from tcpip.clock import ticks_add

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

CLOSED = const(0)
SYN_SENT = const(1)
SYN_RECEIVED = const(2)
ESTABLISHED = const(3)
FIN_WAIT_1 = const(4)
FIN_WAIT_2 = const(5)
CLOSING = const(6)
TIME_WAIT = const(7)
CLOSE_WAIT = const(8)
LAST_ACK = const(9)

# the states' names, by number (one string: split only when a name is wanted)
STATE_NAMES = ("CLOSED SYN-SENT SYN-RECEIVED ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 CLOSING TIME-WAIT "
               "CLOSE-WAIT LAST-ACK")

FAR = const(0x20000000)  # 2**29: wire values farther than this from their reference are clamped

# a released ring: rx / tx point here once their bytes can never be used again (rx_size and
# tx_size keep the sizes the windows are computed from)
NO_RING = bytearray(0)


def rel_read(buf, o, bhi, blo, ref):
    """The 32-bit sequence number at buf[o] relative to the base (bhi, blo): ref plus its signed
    distance from base + ref (mod 2**32, as seq_diff), that distance clamped to +-FAR.
    Small ints only, for |ref| < 2**29."""
    lo = (buf[o + 2] << 8 | buf[o + 3]) - blo - (ref & 0xFFFF)
    hi = (buf[o] << 8 | buf[o + 1]) - bhi - (ref >> 16) + (lo >> 16)  # lo >> 16: borrow 0..-2
    hi = ((hi + 0x8000) & 0xFFFF) - 0x8000  # the distance's upper half, signed (mod 2**32)
    if hi >= 0x2000:
        return ref + FAR
    if hi < -0x2000:
        return ref - FAR
    return ref + (hi << 16) + (lo & 0xFFFF)


def rel_write(buf, o, bhi, blo, rel):
    """Store base + rel (mod 2**32) big-endian at buf[o], small ints only."""
    lo = blo + (rel & 0xFFFF)
    hi = bhi + (rel >> 16) + (lo >> 16)
    buf[o] = (hi >> 8) & 0xFF
    buf[o + 1] = hi & 0xFF
    buf[o + 2] = (lo >> 8) & 0xFF
    buf[o + 3] = lo & 0xFF


def put_sum(dst, o, src, so, n):
    """dst[o:o + 4] = the 32-bit number at src[so] plus n (0 <= n < 2**16), mod 2**32, bytewise."""
    c = (src[so + 2] << 8 | src[so + 3]) + n
    h = (src[so] << 8 | src[so + 1]) + (c >> 16)
    dst[o] = (h >> 8) & 0xFF
    dst[o + 1] = h & 0xFF
    dst[o + 2] = (c >> 8) & 0xFF
    dst[o + 3] = c & 0xFF


def shift(v, d):
    """A relative value after its base moved forward by d, stopping at -FAR ("long before")."""
    v -= d
    return v if v > -FAR else -FAR


def ring_write(ring, size, pos, src, soff, n):
    """Copy n bytes of src[soff:] into the ring (its first size bytes) at pos, wrapping at size."""
    first = size - pos
    if first > n:
        first = n
    mem.copy(ring, pos, src, soff, first)
    if first < n:
        mem.copy(ring, 0, src, soff + first, n - first)


def ring_read(dst, doff, ring, size, pos, n):
    """Copy n bytes out of the ring (its first size bytes) from pos, wrapping, into dst[doff:]."""
    first = size - pos
    if first > n:
        first = n
    mem.copy(dst, doff, ring, pos, first)
    if first < n:
        mem.copy(dst, doff + first, ring, 0, n - first)


# -- state, timers, tracing, ending ---------------------------------------------------------------
def trace(t, event, detail=None):
    tr = t.stack.trace
    if tr is not None:
        tr(event, t, detail)


def set_state(t, state):
    t.state = state
    tcp = t.tcp
    if tcp.hot is t:
        tcp.hot = None  # header prediction is for ESTABLISHED only (Tcp.input sets it again)
    tr = t.stack.trace
    if tr is not None:
        tr("state", t, STATE_NAMES.split()[state])


def set_wnd(t, w):
    """SND.WND from a segment, and the window header prediction expects (fastpath, th[112:114])."""
    t.snd_wnd = w
    th = t.th
    th[112] = w >> 8
    th[113] = w & 0xFF


def set_timer(t, ms):
    """The retransmit / persist / TIME-WAIT / SYN timer, ms from now."""
    t.timer_on = True
    t.tlp_armed = False
    t.deadline = ticks_add(t.stack.now, ms)


def arm_aux(t, ms):
    """The keep-alive / FIN-WAIT-2 timer, ms from now."""
    t.aux_on = True
    t.aux_deadline = ticks_add(t.stack.now, ms)


def release_rx(t):
    """The receive ring back to the pool (Tcp.release): empty, and nothing more can arrive or
    nobody will read it."""
    if t.rx is not NO_RING:
        t.tcp.release(t.rx)
        t.rx = NO_RING


def release_tx(t):
    """The send ring back to the pool: empty, and nothing more can be queued."""
    if t.tx is not NO_RING:
        t.tcp.release(t.tx)
        t.tx = NO_RING


def done(t, err):
    """Enter CLOSED, release the 4-tuple, record the error the socket will report. The rings go
    back to the pool, except received data the application may still read."""
    t.error = err
    t.timer_on = False
    t.delack_on = False
    t.aux_on = False
    set_state(t, CLOSED)
    t.tcp.remove(t)
    release_tx(t)
    if t.orphan or not t.rx_len:
        release_rx(t)
