"""TCP: the connection table, the client side of the handshake, and reliable data transfer.

The connect path follows Linux (tcp_v4_connect -> __inet_hash_connect -> tcp_connect): route and
source address, an ephemeral port unique in its 4-tuple (ports.py), an RFC 6528 ISN (isn.py), a SYN
carrying our MSS, and the SYN retransmit timer (RTO 1 s doubling, syn_retries then ETIMEDOUT).
Segment arrival follows RFC 9293 3.10.7 with the RFC 5961 checks (challenge ACKs, rate limited as
Linux does). Data moves through two preallocated rings per connection: RFC 6298 RTO, RFC 5681
slow start / congestion avoidance / fast retransmit with RFC 6582 (NewReno) recovery, go-back-N
after an RTO, a persist timer, Nagle and sender/receiver SWS avoidance, delayed ACKs (every second
full segment at once), out-of-order segments kept in the receive ring (a few ranges) until the hole
fills, keep-alive, and every close path of RFC 9293 3.6 including orphaned connections.

Sequence numbers. On a 32-bit MicroPython port an int is a heap object from 2**30 on, and TCP
sequence numbers are spread over 2**32, so inside a Tcb every sequence number is kept RELATIVE to a
base, as a small int compared with plain < and >: send-side values (s_*: SND.UNA, SND.NXT, ACKs,
recover...) to the send base (ISS at first), receive-side values (r_*: RCV.NXT, SEG.SEQ, the
out-of-order ranges...) to the receive base (IRS at first). Each base is held as two 16-bit halves
so that converting to and from the wire (_rel_read / _rel_write) touches small ints only. A base
moves forward (_rebase) once SND.UNA or RCV.NXT lies rebase_at past it, so relative values stay
within about +-2**29. A value read from the wire is taken relative to a reference (RCV.NXT for
SEG.SEQ, SND.UNA for SEG.ACK): its distance from it is exactly wire.tcp.seq_diff's, clamped to
+-2**29 (still "far before" / "far after" for every check of RFC 9293 and RFC 5961). tcb.iss,
tcb.irs and tcb.snd_una, snd_nxt, snd_max, rcv_nxt (Tcb.__getattr__) are absolute (not per segment).
Per-segment code indexes buffers and allocates nothing, on 32-bit ports too.
"""
import sys

from tcpip import errors
from tcpip import mem
from tcpip.checksum import checksum, pseudo_sum
from tcpip.clock import ticks_add, ticks_diff
from tcpip.ports import PortAllocator
from tcpip.isn import IsnGenerator
from tcpip.wire import tcp as wtcp
from tcpip.wire.tcp import seq_gt

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

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

STATE_NAMES = (
    "CLOSED", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
    "CLOSING", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK",
)

_FIN = const(1)
_SYN = const(2)
_RST = const(4)
_PSH = const(8)
_ACK = const(16)

_L4 = const(34)  # TCP header offset in the stack's transmit buffer (Ethernet 14 + IPv4 20)
_PROTO_TCP = const(6)

_MIN_SND_MSS = const(48)  # Linux net.ipv4.tcp_min_snd_mss
DEFAULT_MSS = const(536)  # RFC 9293 3.7.1 / RFC 6691: assumed until the peer's SYN says otherwise
RTO_FALLBACK_MS = const(3000)  # RFC 6298 5.7
_BIG = const(0x3FFFFFFF)  # "infinite" ssthresh, still a small int on 32-bit ports
_CWND_MAX = const(0x100000)
_MICROPYTHON = sys.implementation.name == "micropython"
_FAR = const(0x20000000)  # 2**29: wire values farther than this from their reference are clamped
# a base moves once SND.UNA / RCV.NXT is this far past it (2**28; tests make it small)
REBASE_AT = 0x10000000


def _rel_read(buf, o, bhi, blo, ref):
    """The 32-bit sequence number at buf[o] relative to the base (bhi, blo): ref plus its signed
    distance from base + ref (mod 2**32, as seq_diff), that distance clamped to +-_FAR.
    Small ints only, for |ref| < 2**29."""
    lo = (buf[o + 2] << 8 | buf[o + 3]) - blo - (ref & 0xFFFF)
    hi = (buf[o] << 8 | buf[o + 1]) - bhi - (ref >> 16) + (lo >> 16)  # lo >> 16: borrow 0..-2
    hi = ((hi + 0x8000) & 0xFFFF) - 0x8000  # the distance's upper half, signed (mod 2**32)
    if hi >= 0x2000:
        return ref + _FAR
    if hi < -0x2000:
        return ref - _FAR
    return ref + (hi << 16) + (lo & 0xFFFF)


def _rel_write(buf, o, bhi, blo, rel):
    """Store base + rel (mod 2**32) big-endian at buf[o], small ints only."""
    lo = blo + (rel & 0xFFFF)
    hi = bhi + (rel >> 16) + (lo >> 16)
    buf[o] = (hi >> 8) & 0xFF
    buf[o + 1] = hi & 0xFF
    buf[o + 2] = (lo >> 8) & 0xFF
    buf[o + 3] = lo & 0xFF


def _put_sum(dst, o, src, so, n):
    """dst[o:o + 4] = the 32-bit number at src[so] plus n (0 <= n < 2**16), mod 2**32, bytewise."""
    c = (src[so + 2] << 8 | src[so + 3]) + n
    h = (src[so] << 8 | src[so + 1]) + (c >> 16)
    dst[o] = (h >> 8) & 0xFF
    dst[o + 1] = h & 0xFF
    dst[o + 2] = (c >> 8) & 0xFF
    dst[o + 3] = c & 0xFF


def _shift(v, d):
    v -= d
    return v if v > -_FAR else -_FAR


def ring_write(ring, pos, src, soff, n):
    """Copy n bytes of src[soff:] into the ring buffer at pos, wrapping at its end."""
    first = len(ring) - pos
    if first > n:
        first = n
    mem.copy(ring, pos, src, soff, first)
    if first < n:
        mem.copy(ring, 0, src, soff + first, n - first)


def ring_read(dst, doff, ring, pos, n):
    """Copy n bytes out of the ring buffer from pos (wrapping) into dst[doff:]."""
    first = len(ring) - pos
    if first > n:
        first = n
    mem.copy(dst, doff, ring, pos, first)
    if first < n:
        mem.copy(dst, doff + first, ring, 0, n - first)


class TcpConfig:
    """Tunables, Linux's defaults unless noted."""

    def __init__(self, **kw):
        self.syn_retries = 6            # net.ipv4.tcp_syn_retries
        self.rto_initial_ms = 1000      # TCP_TIMEOUT_INIT (RFC 6298)
        self.rto_min_ms = 200           # TCP_RTO_MIN (RFC 6298 says 1 s; Linux uses 200 ms)
        self.rto_max_ms = 120000        # TCP_RTO_MAX
        self.data_retries = 15          # net.ipv4.tcp_retries2
        self.time_wait_ms = 60000       # TCP_TIMEWAIT_LEN (2*MSL)
        self.time_wait_reuse_ms = 1000  # tcp_tw_reuse: a TIME-WAIT 4-tuple is reusable after 1 s
        self.fin_wait2_ms = 60000       # net.ipv4.tcp_fin_timeout, for closed (orphaned) sockets
        self.rx_buffer = 2048           # receive ring: the most we ever advertise
        self.tx_buffer = 2048           # send ring
        self.init_cwnd = 10             # segments (RFC 6928, Linux TCP_INIT_CWND); 1 after a lost SYN
        self.delayed_ack_ms = 40        # 0: ACK every segment at once (Linux TCP_DELACK_MIN = 40 ms)
        self.nodelay = False            # True: no Nagle (TCP_NODELAY) for new connections
        self.keepalive_idle_ms = 7200000   # net.ipv4.tcp_keepalive_time
        self.keepalive_interval_ms = 75000  # net.ipv4.tcp_keepalive_intvl
        self.keepalive_count = 9           # net.ipv4.tcp_keepalive_probes
        self.ooo_segments = 4           # out-of-order ranges kept for reassembly (0: drop them)
        self.invalid_ratelimit_ms = 500  # net.ipv4.tcp_invalid_ratelimit: challenge/out-of-window ACKs
        self.port_low = 32768           # net.ipv4.ip_local_port_range
        self.port_high = 60999
        for k in kw:
            if not hasattr(self, k):
                raise TypeError("unknown TCP option %r" % k)
            setattr(self, k, kw[k])
        if self.syn_retries < 0 or self.syn_retries > 127:
            raise ValueError("syn_retries must be 0..127")
        if not 1 <= self.rto_min_ms <= self.rto_max_ms or not 1 <= self.rto_initial_ms <= self.rto_max_ms:
            raise ValueError("need 1 <= rto_min_ms, rto_initial_ms <= rto_max_ms")
        if not 0 < self.rx_buffer <= 65535 or not 0 < self.tx_buffer <= 65535:
            raise ValueError("buffer sizes must be 1..65535")
        if not 0 <= self.delayed_ack_ms <= 500:
            raise ValueError("delayed_ack_ms must be 0..500")
        if not 0 <= self.ooo_segments <= 32 or self.init_cwnd < 1:
            raise ValueError("ooo_segments must be 0..32 and init_cwnd >= 1")


class Tcb:
    """One connection's transmission control block (RFC 9293 3.3.1)."""

    def __init__(self, tcp, local_addr, local_port, remote_addr, remote_port, next_hop,
                 rx_size=0, tx_size=0):
        cfg = tcp.config
        self.tcp = tcp
        self.stack = tcp.stack
        self.state = CLOSED
        self.local_addr = local_addr
        self.local_port = local_port
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.next_hop = next_hop
        self.error = 0
        self.orphan = False  # the application closed its socket: nobody reads any more
        # send side (RFC 9293 3.3.1), relative to the send base (s_bhi, s_blo): see the module
        # docstring. s_nxt falls back to s_una after an RTO (go-back-N); s_max is the highest
        # sequence number sent so far (+1).
        self.iss = 0  # absolute
        self.s_bhi = 0
        self.s_blo = 0
        self.s_una = 0
        self.s_nxt = 0
        self.s_max = 0
        self.s_sml = 0  # end of the last segment shorter than the MSS that we sent
        self.snd_wnd = 0
        self.max_snd_wnd = 0
        self.r_wl1 = 0  # SND.WL1: a receive-side (peer) sequence number
        self.s_wl2 = 0  # SND.WL2
        self.rebase_at = REBASE_AT
        self.mss = DEFAULT_MSS
        self.adv_mss = self.stack.mtu - 40
        self.tx = bytearray(tx_size or cfg.tx_buffer)
        self.tx_head = 0  # ring index of the byte at snd_una
        self.tx_len = 0   # bytes in the ring: unacknowledged + unsent
        self.fin_pending = False  # the application closed its sending side: FIN after tx data
        self.fin_sent = False     # our FIN went out at least once (state changed for it)
        self.nodelay = cfg.nodelay
        # congestion control (RFC 5681, NewReno recovery of RFC 6582)
        self.cwnd = cfg.init_cwnd * DEFAULT_MSS
        self.ssthresh = _BIG
        self.dupacks = 0
        self.lt_bytes = 0  # sent by limited transmit since the last new ACK (not in FlightSize)
        self.in_recovery = False
        self.s_recover = 0
        self.tlp_armed = False  # the retransmit timer is a tail loss probe timer (RFC 8985)
        self.tlp_out = False    # a probe was sent and no ACK has advanced since
        # receive side
        self.irs = 0  # absolute
        self.r_bhi = 0  # the receive base
        self.r_blo = 0
        self.r_nxt = 0
        self.rx = bytearray(rx_size or cfg.rx_buffer)
        self.rx_head = 0
        self.rx_len = 0
        self.fin_received = False
        self.last_wnd = 0  # window we last advertised
        self.r_wedge = 0  # its right edge, RCV.NXT + RCV.WND then (relative)
        self.ooo = [0] * (2 * cfg.ooo_segments)  # [start, end) ranges held in the ring (relative)
        self.ooo_n = 0
        self.sack_ok = False  # the peer's SYN allowed SACK: our ACKs describe the ooo ranges
        self.r_sack = 0  # start of the latest out-of-order segment (first SACK block)
        self.ooo_fin = False  # a FIN arrived out of order at r_ooo_fin
        self.r_ooo_fin = 0
        self.ack_owed = 0     # bytes received since our last ACK (delayed ACK)
        self.wupd = False     # a window update that reopened a zero window may be resent once
        self.r_wupd = 0
        # timers: retransmit / persist / TIME-WAIT / SYN share `deadline`; delayed ACK has its own;
        # `aux` is keep-alive or the FIN-WAIT-2 timeout
        self.rto = cfg.rto_initial_ms
        self.srtt = 0  # 0 = no sample yet
        self.rttvar = 0
        self.retries = 0
        self.timer_on = False
        self.deadline = 0
        self.delack_on = False
        self.delack_deadline = 0
        self.aux_on = False
        self.aux_deadline = 0
        self.probes = 0  # unanswered zero-window or keep-alive probes (any ACK resets it)
        self.persist_shift = 0  # persist timer backoff, reset when the window opens
        self.keepalive = False
        self.ka_idle = cfg.keepalive_idle_ms
        self.ka_interval = cfg.keepalive_interval_ms
        self.ka_count = cfg.keepalive_count
        self.last_rx = 0
        self.oow_time = 0  # when the last rate-limited (challenge / out-of-window) ACK went out
        self.oow_sent = False
        self.rtt_timing = False  # Karn: time one segment that is never retransmitted
        self.s_rtt = 0
        self.rtt_start = 0
        self.time_wait_start = 0
        self.fin_wait2_start = 0
        # what the CLI's timeline shows (appended only at connect time, never per data segment)
        self.connect_start = 0
        self.syn_times = []
        self.first_rtt_ms = -1

    # -- sequence numbers --------------------------------------------------------------------------
    def _set_send_base(self, iss):
        """Connect time: the send base is the ISS (relative 0)."""
        self.iss = iss
        self.s_bhi = iss >> 16
        self.s_blo = iss & 0xFFFF
        self.s_una = 0
        self.s_nxt = 1
        self.s_max = 1
        self.s_sml = 1
        self.s_recover = 0  # RFC 6582 3.2

    def _set_recv_base(self, buf, off):
        """The peer's SYN at buf[off]: IRS is the receive base (relative 0)."""
        self.irs = wtcp.get_seq(buf, off)
        self.r_bhi = buf[off + 4] << 8 | buf[off + 5]
        self.r_blo = buf[off + 6] << 8 | buf[off + 7]
        self.r_nxt = 1
        self.r_wl1 = 0
        self.r_wedge = 1 + self.last_wnd  # what our SYN offered

    def _rebase(self):
        """Move a base forward to SND.UNA / RCV.NXT once they are rebase_at past it, shifting every
        relative value of that side; values left far behind stop at -_FAR (still "long before")."""
        d = self.s_una
        if d > self.rebase_at:
            lo = self.s_blo + (d & 0xFFFF)
            self.s_bhi = (self.s_bhi + (d >> 16) + (lo >> 16)) & 0xFFFF
            self.s_blo = lo & 0xFFFF
            self.s_una = 0
            self.s_nxt -= d
            self.s_max -= d
            self.s_sml = _shift(self.s_sml, d)
            self.s_wl2 = _shift(self.s_wl2, d)
            self.s_recover = _shift(self.s_recover, d)
            self.s_rtt = _shift(self.s_rtt, d)
        d = self.r_nxt
        if d > self.rebase_at:
            lo = self.r_blo + (d & 0xFFFF)
            self.r_bhi = (self.r_bhi + (d >> 16) + (lo >> 16)) & 0xFFFF
            self.r_blo = lo & 0xFFFF
            self.r_nxt = 0
            self.r_wl1 = _shift(self.r_wl1, d)
            self.r_sack = _shift(self.r_sack, d)
            self.r_ooo_fin = _shift(self.r_ooo_fin, d)
            self.r_wupd = _shift(self.r_wupd, d)
            self.r_wedge = _shift(self.r_wedge, d)
            o = self.ooo
            for i in range(len(o)):
                o[i] = _shift(o[i], d)

    def _abs_snd(self, rel):
        return ((self.s_bhi << 16 | self.s_blo) + rel) & 0xFFFFFFFF

    def _absolute(self, name):
        if name == "snd_una":
            return self._abs_snd(self.s_una)
        if name == "snd_nxt":
            return self._abs_snd(self.s_nxt)
        if name == "snd_max":
            return self._abs_snd(self.s_max)
        if name == "rcv_nxt":
            return ((self.r_bhi << 16 | self.r_blo) + self.r_nxt) & 0xFFFFFFFF
        raise AttributeError(name)

    # Absolute snd_una, snd_nxt, snd_max and rcv_nxt for tests, tools and the socket layer, built on
    # demand (big ints on 32-bit ports: never for per-segment code). MicroPython: __getattr__, as a
    # class with a property makes it search the class on every attribute store to an instance
    # (~4x slower stores); a test that assigns tcb.snd_nxt then hides the computed value.
    # CPython: properties, as __getattr__ stops CPython 3.11+ specializing attribute access.
    if _MICROPYTHON:
        def __getattr__(self, name):
            return self._absolute(name)
    else:
        def _set_snd_nxt(self, v):  # tests
            self.s_nxt = wtcp.seq_diff(v, self.s_bhi << 16 | self.s_blo)

        snd_una = property(lambda self: self._absolute("snd_una"))
        snd_nxt = property(lambda self: self._absolute("snd_nxt"), _set_snd_nxt)
        snd_max = property(lambda self: self._absolute("snd_max"))
        rcv_nxt = property(lambda self: self._absolute("rcv_nxt"))

    # -- helpers ---------------------------------------------------------------------------------
    def state_name(self):
        return STATE_NAMES[self.state]

    def rx_window(self):
        free = len(self.rx) - self.rx_len
        return free if free < 65535 else 65535

    def tx_free(self):
        return len(self.tx) - self.tx_len

    def readable(self):
        """recv would not block: data, the peer's FIN, or the connection has ended."""
        return self.rx_len > 0 or self.fin_received or self.state == CLOSED

    def writable(self):
        """send would queue something (or fail at once because the connection ended)."""
        st = self.state
        if st == CLOSED:
            return True
        if self.fin_pending or (st != ESTABLISHED and st != CLOSE_WAIT):
            return False
        return self.tx_len < len(self.tx)

    def _set_timer(self, ms):
        self.timer_on = True
        self.tlp_armed = False
        self.deadline = ticks_add(self.stack.now, ms)

    def _arm_rexmit(self, restart):
        """Data is outstanding: the tail loss probe timer (RFC 8985 7.2) when it is due before the
        RTO, else the retransmission timer (restarted if `restart`, RFC 6298 5.3)."""
        if self.srtt and not self.in_recovery and not self.tlp_out and self.retries == 0:
            pto = 2 * self.srtt
            if pto < 10:
                pto = 10
            if self.s_max - self.s_una <= self.mss:
                pto += 200  # one segment out: the peer may delay its ACK (WCDelAckT)
            if pto < self.rto:
                self._set_timer(pto)
                self.tlp_armed = True
                return
        if restart or self.tlp_armed or not self.timer_on:
            self._set_timer(self.rto)

    def _trace(self, event, detail=None):
        t = self.stack.trace
        if t is not None:
            t(event, self, detail)

    def _set_state(self, state):
        self.state = state
        t = self.stack.trace
        if t is not None:
            t("state", self, STATE_NAMES[state])

    # -- output ----------------------------------------------------------------------------------
    def _emit(self, seq, flags, data_off, data_len):
        """Build and send one segment (seq relative to the send base); data comes from the send
        ring at data_off past SND.UNA."""
        s = self.stack
        f = s.tx
        hl = 20
        sack = 0
        if flags & _SYN:
            hl = 28
        elif self.ooo_n and self.sack_ok and not data_len and not flags & _RST:
            sack = self.ooo_n if self.ooo_n < 4 else 4
            hl = 24 + 8 * sack
        # receiver SWS avoidance (RFC 9293 3.8.6.2.2, Linux __tcp_select_window): the right edge
        # we advertised (RCV.NXT + RCV.WND) moves only by min(half the ring, an MSS) or more
        wnd = self.rx_window()
        cur = self.r_wedge - self.r_nxt
        if cur < 0:
            cur = 0
        if wnd > cur:
            t = len(self.rx) >> 1
            if t > self.adv_mss:
                t = self.adv_mss
            if wnd - cur < t:
                wnd = cur
        self.last_wnd = wnd
        self.r_wedge = self.r_nxt + wnd
        # the fixed header (RFC 9293 3.1), sequence numbers converted from relative bytewise
        p = self.local_port
        f[_L4] = p >> 8
        f[_L4 + 1] = p & 0xFF
        p = self.remote_port
        f[_L4 + 2] = p >> 8
        f[_L4 + 3] = p & 0xFF
        _rel_write(f, _L4 + 4, self.s_bhi, self.s_blo, seq)
        if flags & _ACK:
            _rel_write(f, _L4 + 8, self.r_bhi, self.r_blo, self.r_nxt)
            self.delack_on = False  # this segment carries the ACK we owed
            self.ack_owed = 0
        else:
            f[_L4 + 8] = 0
            f[_L4 + 9] = 0
            f[_L4 + 10] = 0
            f[_L4 + 11] = 0
        f[_L4 + 12] = hl << 2  # (hl / 4) << 4
        f[_L4 + 13] = flags
        f[_L4 + 14] = wnd >> 8
        f[_L4 + 15] = wnd & 0xFF
        f[_L4 + 16] = 0
        f[_L4 + 17] = 0
        f[_L4 + 18] = 0
        f[_L4 + 19] = 0
        if flags & _SYN:
            # MSS (RFC 9293 3.7.1): what our interface MTU allows; SACK-permitted (RFC 2018): we
            # send SACK blocks for what we hold out of order (we do not act on the peer's)
            m = self.adv_mss
            f[_L4 + 20] = 2
            f[_L4 + 21] = 4
            f[_L4 + 22] = (m >> 8) & 0xFF
            f[_L4 + 23] = m & 0xFF
            f[_L4 + 24] = 1
            f[_L4 + 25] = 1
            f[_L4 + 26] = 4
            f[_L4 + 27] = 2
        elif sack:
            self._sack_blocks(f, _L4 + 20, sack)
        if data_len:
            ring_read(f, _L4 + hl, self.tx, (self.tx_head + data_off) % len(self.tx), data_len)
        n = hl + data_len
        acc = pseudo_sum(self.local_addr, 0, self.remote_addr, 0, _PROTO_TCP, n)
        cs = checksum(f, _L4, _L4 + n, acc)
        f[_L4 + 16] = cs >> 8
        f[_L4 + 17] = cs & 0xFF
        s.counters.tcp_tx += 1
        s.ip_output(self.remote_addr, 0, self.local_addr, 0, _PROTO_TCP, n)

    def _sack_blocks(self, f, i, k):
        """NOP NOP SACK with k blocks; the block holding the latest segment first (RFC 2018 4)."""
        f[i] = 1
        f[i + 1] = 1
        f[i + 2] = 5
        f[i + 3] = 2 + 8 * k
        o = self.ooo
        first = 0
        for j in range(self.ooo_n):
            if o[2 * j] <= self.r_sack and self.r_sack < o[2 * j + 1]:
                first = j
                break
        p = i + 4
        j = first
        bhi = self.r_bhi
        blo = self.r_blo
        for _ in range(k):
            _rel_write(f, p, bhi, blo, o[2 * j])
            _rel_write(f, p + 4, bhi, blo, o[2 * j + 1])
            p += 8
            j += 1
            if j == self.ooo_n:
                j = 0

    def send_ack(self):
        self._emit(self.s_nxt, _ACK, 0, 0)

    def _send_syn(self):
        s = self.stack
        self.syn_times.append(ticks_diff(s.now, self.connect_start))
        if self.state == SYN_SENT:
            self._emit(0, _SYN, 0, 0)  # the ISS: the send base does not move before ESTABLISHED
        else:
            self._emit(0, _SYN | _ACK, 0, 0)
        s.counters.tcp_syn_sent += 1
        self._trace("syn", len(self.syn_times))

    def _ratelimited_ack(self):
        """A challenge ACK (RFC 5961) or an ACK for an out-of-window segment, at most one per
        invalid_ratelimit_ms per connection (Linux __tcp_oow_rate_limited). True if sent."""
        now = self.stack.now
        if self.oow_sent and ticks_diff(now, self.oow_time) < self.tcp.config.invalid_ratelimit_ms:
            self.stack.counters.tcp_ack_ratelimited += 1
            return False
        self.oow_sent = True
        self.oow_time = now
        self.send_ack()
        return True

    def _challenge_ack(self):
        if self._ratelimited_ack():
            self.stack.counters.tcp_challenge_ack_sent += 1

    def output(self):
        """Send what the windows (peer's and congestion), Nagle and SWS avoidance allow, then the
        FIN once all data has gone. Returns the number of segments sent."""
        st = self.state
        if st != ESTABLISHED and st != CLOSE_WAIT and st != FIN_WAIT_1 and st != CLOSING and st != LAST_ACK:
            return 0
        sent = 0
        mss = self.mss
        for _ in range(64):  # bounded: at most 64 segments per call
            flight = self.s_nxt - self.s_una
            unsent = self.tx_len - flight  # -1 while our FIN is in flight
            if unsent > 0:
                wnd = self.snd_wnd if self.snd_wnd < self.cwnd else self.cwnd
                n = unsent if unsent < mss else mss
                usable = wnd - flight
                if n > usable:
                    n = usable
                if n <= 0:
                    if flight == 0 and not self.timer_on:
                        self._set_timer(self.rto)  # zero window: the persist timer probes it
                    break
                if n < mss and flight > 0:
                    if n < unsent:
                        break  # cut by the window: wait for it to open (SWS, RFC 9293 3.8.6.2.1)
                    if not self.nodelay and not self.fin_pending and self.s_sml > self.s_una:
                        break  # Nagle, Minshall's variant as Linux: one small segment in flight
                flags = _ACK
                if n == unsent:
                    flags = _ACK | _PSH
                    if self.fin_pending:
                        flags = _ACK | _PSH | _FIN  # piggyback the FIN on the last data
                self._emit(self.s_nxt, flags, flight, n)
                self.stack.counters.tcp_tx_bytes += n
                new = self.s_nxt == self.s_max
                self.s_nxt += n
                if n < mss:
                    self.s_sml = self.s_nxt  # end of the last small segment (Minshall)
                if flags & _FIN:
                    self.s_nxt += 1
                    self._fin_out()
                if self.s_nxt > self.s_max:
                    self.s_max = self.s_nxt
                if new:
                    if not self.rtt_timing:
                        self.rtt_timing = True
                        self.s_rtt = self.s_nxt
                        self.rtt_start = self.stack.now
                    self._arm_rexmit(False)
                elif not self.timer_on:
                    self._set_timer(self.rto)
                sent += 1
                continue
            if unsent == 0 and self.fin_pending:
                self._emit(self.s_nxt, _FIN | _ACK, flight, 0)
                self.s_nxt += 1
                self._fin_out()
                if self.s_nxt > self.s_max:
                    self.s_max = self.s_nxt
                if not self.timer_on:
                    self._set_timer(self.rto)
                sent += 1
            break
        return sent

    def _fin_out(self):
        if self.fin_sent:
            return
        self.fin_sent = True
        if self.state == ESTABLISHED:
            self._set_state(FIN_WAIT_1)
        elif self.state == CLOSE_WAIT:
            self._set_state(LAST_ACK)

    def _retransmit_first(self):
        """Resend the earliest unacknowledged segment (fast retransmit, NewReno partial ACK)."""
        flight = self.s_max - self.s_una
        n = self.tx_len if self.tx_len < flight else flight
        if n > self.mss:
            n = self.mss
        self.rtt_timing = False  # Karn
        self.stack.counters.tcp_rexmit += 1
        if n > 0:
            fin = self.fin_pending and n == self.tx_len and flight == n + 1
            self._emit(self.s_una, _ACK | _FIN if fin else _ACK, 0, n)
        elif self.fin_sent:
            self._emit(self.s_una, _ACK | _FIN, 0, 0)

    # -- timers ----------------------------------------------------------------------------------
    def on_timer(self):
        cfg = self.tcp.config
        c = self.stack.counters
        self.timer_on = False
        st = self.state
        if st == TIME_WAIT:
            self._done(0)
            return
        if st == SYN_SENT or st == SYN_RECEIVED:
            if self.retries >= cfg.syn_retries:
                c.tcp_connect_timeout += 1
                self._done(errors.ETIMEDOUT)
                return
            self.retries += 1
            self.rto = min(self.rto * 2, cfg.rto_max_ms)
            self.rtt_timing = False  # Karn's rule: no sample from a retransmitted SYN
            c.tcp_syn_retransmit += 1
            self._send_syn()
            self._set_timer(self.rto)
            return
        if self.tlp_armed:
            self._tail_loss_probe()
            return
        flight = self.s_max - self.s_una
        if flight == 0 or (self.snd_wnd == 0 and self.tx_len > 0):
            if self.tx_len > 0 and self.snd_wnd == 0:
                # persist (RFC 9293 3.8.6.1): an old sequence number makes the peer answer with
                # its current window (Linux tcp_xmit_probe_skb); never gives up while answered.
                # Also when the peer shrank its window to zero under data in flight: that data
                # lay beyond the window, so go back to SND.UNA and probe "in the standard way",
                # without timing out (RFC 9293 3.8.6.1; Linux tcp_retransmit_timer).
                if self.probes >= cfg.data_retries:
                    c.tcp_data_timeout += 1
                    self._abort_with_rst(errors.ETIMEDOUT)
                    return
                if self.orphan and self.persist_shift >= 8 and (
                        self.persist_shift == 10 or self.rto << self.persist_shift >= cfg.rto_max_ms):
                    # nobody will ever read or write here again: an orphan's probes stop once
                    # backed off to rto_max (Linux tcp_probe_timer, SOCK_DEAD: tcp_orphan_retries)
                    c.tcp_data_timeout += 1
                    self._abort_with_rst(0)
                    return
                if flight:
                    self.s_nxt = self.s_una
                    self.in_recovery = False
                    self.dupacks = 0
                    self.rtt_timing = False
                self.probes += 1
                if self.persist_shift < 10:
                    self.persist_shift += 1
                c.tcp_persist_probe += 1
                self._emit(self.s_una - 1, _ACK, 0, 0)
                self._set_timer(min(self.rto << self.persist_shift, cfg.rto_max_ms))
            return
        if self.retries >= cfg.data_retries:
            c.tcp_data_timeout += 1
            self._abort_with_rst(errors.ETIMEDOUT)
            return
        if self.retries == 0 or self.in_recovery:
            # RFC 5681 eq. (4) on the first timeout; held on repeated timeouts of the same data
            self.ssthresh = self._half_flight()
        self.retries += 1
        self.cwnd = self.mss  # loss window (RFC 5681 3.1)
        self.in_recovery = False
        self.s_recover = self.s_max  # RFC 6582 3.2 step 4: no fast retransmit for older dupacks
        self.dupacks = 0
        self.rto = min(self.rto * 2, cfg.rto_max_ms)
        self.rtt_timing = False
        c.tcp_rexmit += 1
        c.tcp_rto_expired += 1
        # go-back-N from snd_una (RFC 6298 5.4); ACKs may still arrive for up to snd_max
        self.s_nxt = self.s_una
        self.output()
        if not self.timer_on:
            self._set_timer(self.rto)

    def _tail_loss_probe(self):
        """RFC 8985 7.3: resend the last segment so that its ACK (or duplicate ACK) shows a lost
        tail quickly, instead of waiting for the RTO. One probe per episode."""
        self.tlp_armed = False
        self.tlp_out = True
        flight = self.s_max - self.s_una
        if flight <= 0:
            return
        data = self.tx_len if self.tx_len < flight else flight  # data bytes out (FIN excluded)
        fin = flight > data
        n = data if data < self.mss else self.mss
        self.rtt_timing = False  # Karn
        self.stack.counters.tcp_tlp_probe += 1
        if n > 0:
            self._emit(self.s_una + data - n, _ACK | _PSH | _FIN if fin else _ACK | _PSH, data - n, n)
        else:
            self._emit(self.s_max - 1, _ACK | _FIN, 0, 0)
        self._set_timer(self.rto)

    def _half_flight(self):
        """RFC 5681 eq. (4): max(FlightSize / 2, 2 * SMSS), without what limited transmit sent."""
        h = (self.s_max - self.s_una - self.lt_bytes) >> 1
        m2 = 2 * self.mss
        return h if h > m2 else m2

    def on_delack(self):
        self.delack_on = False
        st = self.state
        if st == CLOSED or st == SYN_SENT:
            return
        if self.ack_owed:
            self.send_ack()
        elif self.wupd and self.r_nxt == self.r_wupd and self.rx_window() > 0:
            self.stack.counters.tcp_window_update_resent += 1
            self.send_ack()
        self.wupd = False

    def on_aux(self):
        """Keep-alive (RFC 9293 3.8.4, Linux tcp_keepalive_timer) or the orphan FIN-WAIT-2 limit."""
        self.aux_on = False
        now = self.stack.now
        st = self.state
        c = self.stack.counters
        if st == FIN_WAIT_2 and self.orphan:
            # fin_wait2_ms over: RST and forget, as Linux's keep-alive timer does when
            # tcp_fin_timeout exceeds 60 s (with the default it expires silently instead; the
            # RST also frees the peer's CLOSE-WAIT socket)
            c.tcp_fin_wait2_timeout += 1
            self._abort_with_rst(0)
            return
        if not self.keepalive:
            return
        if st == SYN_SENT or st == SYN_RECEIVED:
            self._arm_aux(self.ka_idle)  # not yet: _established() starts the idle time
            return
        if st != ESTABLISHED and st != CLOSE_WAIT and st != FIN_WAIT_2:
            return  # (FIN-WAIT-2 after a half-close: probed too, as Linux tcp_keepalive_timer)
        idle = ticks_diff(now, self.last_rx)
        if self.s_max != self.s_una or self.tx_len > 0:
            self._arm_aux(self.ka_idle)  # data in flight: the retransmit timer watches the peer
            return
        if self.probes == 0 and idle < self.ka_idle:
            self._arm_aux(self.ka_idle - idle)
            return
        if self.probes >= self.ka_count:
            c.tcp_keepalive_timeout += 1
            self._abort_with_rst(errors.ETIMEDOUT)
            return
        self.probes += 1
        c.tcp_keepalive_probe += 1
        # SEG.SEQ = SND.UNA - 1 with one garbage octet (RFC 9293 3.8.4, as BSD): a zero-length
        # probe is an out-of-window ACK that Linux answers at most once per 500 ms
        # (tcp_invalid_ratelimit); an old data byte is always answered
        self._emit(self.s_una - 1, _ACK, 0, 1)
        self._arm_aux(self.ka_interval)

    def _arm_aux(self, ms):
        self.aux_on = True
        self.aux_deadline = ticks_add(self.stack.now, ms)

    def set_keepalive(self, on, idle_ms=None, interval_ms=None, count=None):
        if idle_ms is not None:
            self.ka_idle = idle_ms
        if interval_ms is not None:
            self.ka_interval = interval_ms
        if count is not None:
            self.ka_count = count
        self.keepalive = bool(on)
        self.stack.now = self.stack.clock.ticks_ms()
        if on:
            self.last_rx = self.stack.now
            self.probes = 0
            self._arm_aux(self.ka_idle)
        elif self.state != FIN_WAIT_2:
            self.aux_on = False

    def set_nodelay(self, flag):
        self.nodelay = bool(flag)
        if flag:
            self.stack.now = self.stack.clock.ticks_ms()
            self.output()

    def _rtt_sample(self, r):
        """RFC 6298 2.2 / 2.3, in milliseconds (G = 1 ms)."""
        cfg = self.tcp.config
        if r < 1:
            r = 1
        if self.srtt == 0:
            self.srtt = r
            self.rttvar = r // 2
        else:
            d = self.srtt - r
            if d < 0:
                d = -d
            self.rttvar = (3 * self.rttvar + d) // 4
            self.srtt = (7 * self.srtt + r) // 8
        k = 4 * self.rttvar
        rto = self.srtt + (k if k > 1 else 1)
        if rto < cfg.rto_min_ms:
            rto = cfg.rto_min_ms
        if rto > cfg.rto_max_ms:
            rto = cfg.rto_max_ms
        self.rto = rto

    # -- ending ----------------------------------------------------------------------------------
    def _done(self, err):
        """Enter CLOSED, release the 4-tuple, record the error the socket will report."""
        self.error = err
        self.timer_on = False
        self.delack_on = False
        self.aux_on = False
        self._set_state(CLOSED)
        self.tcp.remove(self)

    def fail(self, err):
        self._done(err)

    def _abort_with_rst(self, err):
        if self.state != SYN_SENT and self.state != CLOSED:
            # the highest sequence number sent: after go-back-N the peer may hold all of it
            self._emit(self.s_max, _RST | _ACK, 0, 0)
        self._done(err)

    def abort(self):
        """Abort (RFC 9293 3.10.5): RST when synchronized, except in CLOSING, LAST-ACK and
        TIME-WAIT where the TCB just goes (as Linux tcp_disconnect); the socket sees no error."""
        st = self.state
        if st == CLOSED:
            return
        self.stack.now = self.stack.clock.ticks_ms()
        if st == CLOSING or st == LAST_ACK or st == TIME_WAIT:
            self._done(0)
        else:
            self._abort_with_rst(0)

    def _enter_time_wait(self):
        self.delack_on = False
        self.aux_on = False
        self._set_state(TIME_WAIT)
        self.persist_shift = 0
        self.time_wait_start = self.stack.now
        self._set_timer(self.tcp.config.time_wait_ms)

    # -- user calls ------------------------------------------------------------------------------
    def send(self, data, off, n):
        """Queue up to n bytes of data[off:]; returns how many fit in the send ring."""
        st = self.state
        if self.fin_pending or (st != ESTABLISHED and st != CLOSE_WAIT):
            return 0
        free = len(self.tx) - self.tx_len
        if n > free:
            n = free
        if n <= 0:
            return 0
        ring_write(self.tx, (self.tx_head + self.tx_len) % len(self.tx), data, off, n)
        self.tx_len += n
        self.stack.now = self.stack.clock.ticks_ms()
        self.output()
        return n

    def recv_into(self, buf, off, n):
        """Move up to n received bytes into buf[off:]; 0 when none are waiting."""
        if n > self.rx_len:
            n = self.rx_len
        if n <= 0:
            return 0
        ring_read(buf, off, self.rx, self.rx_head, n)
        self.rx_head = (self.rx_head + n) % len(self.rx)
        self.rx_len -= n
        # window update once it opened by an MSS or half the ring (receiver SWS, RFC 9293 3.8.6.2.2)
        st = self.state
        if st == ESTABLISHED or st == FIN_WAIT_1 or st == FIN_WAIT_2:
            grown = self.rx_window() - self.last_wnd
            if grown >= self.adv_mss or grown >= len(self.rx) // 2:
                was_closed = self.last_wnd == 0
                self.stack.now = self.stack.clock.ticks_ms()
                self.send_ack()
                if was_closed:
                    # the peer waits on this update: if it is lost, the peer stalls until its
                    # persist timer (>= 200 ms on Linux). Send it once more unless data comes first.
                    self.wupd = True
                    self.r_wupd = self.r_nxt
                    wait = 2 * self.srtt
                    self.delack_on = True
                    self.delack_deadline = ticks_add(self.stack.now, wait if wait > 20 else 20)
        return n

    def shutdown_write(self):
        st = self.state
        if st == ESTABLISHED or st == CLOSE_WAIT or st == SYN_RECEIVED:
            self.fin_pending = True
            self.stack.now = self.stack.clock.ticks_ms()
            self.output()

    def close(self):
        """Application close: FIN after queued data; RST if received data was left unread
        (RFC 2525 2.17, as Linux tcp_close); in SYN-SENT just forget the connection. The Tcb
        lives on alone (orphan) through FIN-WAIT / TIME-WAIT."""
        st = self.state
        self.stack.now = self.stack.clock.ticks_ms()
        self.orphan = True
        if st == SYN_SENT:
            self._done(0)
        elif self.rx_len > 0 and st != TIME_WAIT and st != CLOSED:
            self.stack.counters.tcp_abort_on_close += 1
            self._abort_with_rst(0)
        elif st == ESTABLISHED or st == CLOSE_WAIT or st == SYN_RECEIVED:
            self.shutdown_write()
        elif st == FIN_WAIT_2:
            self.fin_wait2_start = self.stack.now
            self._arm_aux(self.tcp.config.fin_wait2_ms)

    # -- input (RFC 9293 3.10.7) -----------------------------------------------------------------
    def input(self, buf, ip_off, off, hl, plen):
        """A segment for this connection: TCP header at buf[off], hl header bytes, plen payload bytes."""
        st = self.state
        if st == SYN_SENT:
            self._input_syn_sent(buf, ip_off, off, hl, plen)
            return
        if st != SYN_RECEIVED and (self.s_una > self.rebase_at or self.r_nxt > self.rebase_at):
            self._rebase()
        self._input_synchronized(buf, ip_off, off, hl, plen)

    def _input_syn_sent(self, buf, ip_off, off, hl, plen):
        """RFC 9293 3.10.7.3."""
        c = self.stack.counters
        flags = buf[off + 13]
        ack = _rel_read(buf, off + 8, self.s_bhi, self.s_blo, 0)  # the ISS is relative 0
        if flags & _ACK:
            # first: SEG.ACK =< ISS or SEG.ACK > SND.NXT is unacceptable
            if ack <= 0 or ack > self.s_nxt:
                if flags & _RST:
                    c.tcp_syn_sent_bad_ack_dropped += 1
                else:
                    c.tcp_syn_sent_bad_ack_rst_sent += 1
                    self.tcp.send_reset_for(buf, ip_off, off, 0)
                return
        if flags & _RST:
            if flags & _ACK:
                # acceptable ACK: the peer refused the connection
                c.tcp_connect_refused += 1
                c.tcp_rst_received += 1
                self._done(errors.ECONNREFUSED)
            else:
                c.tcp_rst_blind_dropped += 1
            return
        if not flags & _SYN:
            c.tcp_syn_sent_no_syn_dropped += 1
            return
        self._set_recv_base(buf, off)  # SEG.SEQ (the IRS) is relative 0, RCV.NXT 1
        mss = wtcp.get_mss_option(buf, off, hl)
        if mss:
            if mss < _MIN_SND_MSS:
                mss = _MIN_SND_MSS  # Linux tcp_min_snd_mss: no flood of tiny segments
            self.mss = mss if mss < self.adv_mss else self.adv_mss
        self.sack_ok = wtcp.has_sack_permitted(buf, off, hl)
        self.snd_wnd = wtcp.get_window(buf, off)
        self.max_snd_wnd = self.snd_wnd
        self.s_wl2 = ack
        self.last_rx = self.stack.now
        if flags & _ACK:
            self.s_una = ack
            self.s_max = ack
            self._established()
            # data on the SYN-ACK is accepted like any in-order data (RFC 9293 3.10.7.3, sixth)
            if plen:
                self._take_data(buf, off + hl, plen)
            if flags & _FIN and self.r_nxt == 1 + plen:
                self.r_nxt += 1
                self.fin_received = True
                self._set_state(CLOSE_WAIT)
            if self.output() == 0:
                self.send_ack()
        else:
            # simultaneous open (RFC 9293 3.10.7.3, fourth, SYN without ACK)
            c.tcp_simultaneous_open += 1
            self._set_state(SYN_RECEIVED)
            self._emit(0, _SYN | _ACK, 0, 0)
            self._set_timer(self.rto)

    def _established(self):
        """Our SYN was ACKed: RTT from the handshake (Karn), initial window, ESTABLISHED."""
        self.timer_on = False
        if self.retries == 0:
            if self.state == SYN_SENT:
                r = ticks_diff(self.stack.now, self.connect_start)
                self.first_rtt_ms = r
                self._rtt_sample(r)
            self.cwnd = self.tcp.config.init_cwnd * self.mss
        else:
            if self.rto < RTO_FALLBACK_MS:
                self.rto = RTO_FALLBACK_MS  # RFC 6298 5.7
            self.cwnd = self.mss  # RFC 5681 3.1: a lost SYN leaves a one-segment initial window
        self.retries = 0
        if self.keepalive:
            # asked for before the handshake finished: idle time counts from now (Linux
            # tcp_finish_connect -> inet_csk_reset_keepalive_timer)
            self.probes = 0
            self._arm_aux(self.ka_idle)
        self.stack.counters.tcp_established += 1
        self._set_state(ESTABLISHED)

    def _take_data(self, buf, off, n):
        """Copy in-order payload into the receive ring; returns bytes taken."""
        size = len(self.rx)
        free = size - self.rx_len
        if n > free:
            self.stack.counters.tcp_rx_buffer_full += 1
            n = free
        if n <= 0:
            return 0
        ring_write(self.rx, (self.rx_head + self.rx_len) % size, buf, off, n)
        self.rx_len += n
        self.r_nxt += n
        self.stack.counters.tcp_rx_bytes += n
        return n

    def _ooo_store(self, seq, buf, off, n):
        """Keep an out-of-order segment in the ring at its place past rcv_nxt and note its range."""
        c = self.stack.counters
        cap = len(self.ooo) >> 1
        d = seq - self.r_nxt
        size = len(self.rx)
        free = size - self.rx_len
        if cap == 0 or d >= free:
            c.tcp_drop_out_of_order += 1
            return
        if d + n > free:
            n = free - d
        s = seq
        e = seq + n
        o = self.ooo
        # merge with every range it overlaps or touches
        i = 0
        while i < self.ooo_n:
            rs = o[2 * i]
            re = o[2 * i + 1]
            if rs <= e and s <= re:
                if rs < s:
                    s = rs
                if re > e:
                    e = re
                self.ooo_n -= 1
                last = self.ooo_n
                o[2 * i] = o[2 * last]
                o[2 * i + 1] = o[2 * last + 1]
            else:
                i += 1
        if self.ooo_n == cap:
            # full: forget the range farthest from rcv_nxt (or the new one if it is the farthest)
            far = -1
            fd = s - self.r_nxt
            for j in range(cap):
                dj = o[2 * j] - self.r_nxt
                if dj > fd:
                    fd = dj
                    far = j
            if far < 0:
                c.tcp_drop_out_of_order += 1
                return
            self.ooo_n -= 1
            last = self.ooo_n
            o[2 * far] = o[2 * last]
            o[2 * far + 1] = o[2 * last + 1]
            c.tcp_drop_out_of_order += 1
        ring_write(self.rx, (self.rx_head + self.rx_len + d) % size, buf, off, n)
        self.r_sack = seq
        o[2 * self.ooo_n] = s
        o[2 * self.ooo_n + 1] = e
        self.ooo_n += 1
        c.tcp_ooo_queued += 1

    def _ooo_advance(self):
        """rcv_nxt moved: absorb the ranges it reached (their bytes are already in the ring)."""
        o = self.ooo
        i = 0
        while i < self.ooo_n:
            s = o[2 * i]
            if s <= self.r_nxt:
                e = o[2 * i + 1]
                if e > self.r_nxt:
                    n = e - self.r_nxt
                    self.rx_len += n
                    self.r_nxt = e
                    self.stack.counters.tcp_rx_bytes += n
                self.ooo_n -= 1
                last = self.ooo_n
                o[2 * i] = o[2 * last]
                o[2 * i + 1] = o[2 * last + 1]
                i = 0  # rcv_nxt moved again: look at every range anew
            else:
                i += 1

    def _fin_in(self):
        """The peer's FIN, in order: consume it, move state (RFC 9293 3.10.7.4, eighth)."""
        self.r_nxt += 1
        self.fin_received = True
        self.ooo_fin = False
        st = self.state
        if st == ESTABLISHED or st == SYN_RECEIVED:
            self._set_state(CLOSE_WAIT)
        elif st == FIN_WAIT_1:
            self._set_state(CLOSING)
        elif st == FIN_WAIT_2:
            self.send_ack()
            self._enter_time_wait()

    def _input_synchronized(self, buf, ip_off, off, hl, plen):
        """RFC 9293 3.10.7.4 for SYN-RECEIVED and every later state."""
        c = self.stack.counters
        flags = buf[off + 13]
        seq = _rel_read(buf, off + 4, self.r_bhi, self.r_blo, self.r_nxt)
        seg_len = plen
        if flags & _SYN:
            seg_len += 1
        if flags & _FIN:
            seg_len += 1
        if flags & (_SYN | _ACK | _RST | _FIN) == _SYN | _ACK and self.state == SYN_RECEIVED \
                and seq == 0 and plen == 0:
            # simultaneous open: the peer's SYN-ACK for our SYN (RFC 9293 3.5 figure 8, line 6;
            # Linux tcp_validate_incoming "goto pass"), before RCV.NXT but it completes the open
            ack = _rel_read(buf, off + 8, self.s_bhi, self.s_blo, self.s_una)
            if ack == self.s_nxt:
                self.last_rx = self.stack.now
                self.snd_wnd = buf[off + 14] << 8 | buf[off + 15]
                self.max_snd_wnd = self.snd_wnd
                self.r_wl1 = seq
                self.s_wl2 = ack
                self.s_una = ack
                self.s_max = ack
                self._established()
                self.output()
                return
        wnd = len(self.rx) - self.rx_len
        # first: sequence number acceptability (four cases), with the zero-window allowance
        rcv_nxt = self.r_nxt
        if seq == rcv_nxt:
            ok = True
        elif wnd == 0:
            ok = False
        else:
            d = seq - rcv_nxt
            ok = 0 <= d < wnd
            if not ok and seg_len > 0:
                d2 = d + seg_len - 1
                ok = 0 <= d2 < wnd
        if flags & _RST:
            # second: RFC 5961 3.2 -- reset only on an exact match, challenge ACK when in window
            if seq == rcv_nxt:
                c.tcp_rst_received += 1
                st = self.state
                if st == SYN_RECEIVED:
                    self._done(errors.ECONNREFUSED)
                elif st == CLOSING or st == LAST_ACK or st == TIME_WAIT:
                    self._done(0)
                else:
                    self._done(errors.ECONNRESET)
            elif ok:
                self._challenge_ack()
            else:
                c.tcp_rst_blind_dropped += 1
            return
        if not ok:
            c.tcp_drop_out_of_window += 1
            if flags & _SYN:
                self._challenge_ack()  # RFC 5961 4.2: any SYN, whatever its sequence number
            elif plen or seq == rcv_nxt - 1:
                # data, or a window / keep-alive probe (SEG.SEQ = RCV.NXT - 1): always answered;
                # only other out-of-window ACKs are rate limited
                self.send_ack()
            else:
                self._ratelimited_ack()
            if self.state == TIME_WAIT and flags & _FIN:
                # the peer's FIN again: ACKed above, and 2 MSL starts over (RFC 9293 3.10.7.4)
                self._set_timer(self.tcp.config.time_wait_ms)
            return
        if flags & _SYN:
            # fourth: SYN in a synchronized state -> challenge ACK (RFC 5961 4.2)
            if self.state == SYN_RECEIVED and seq == 0:  # the IRS (no rebase before ESTABLISHED)
                self._emit(0, _SYN | _ACK, 0, 0)  # our SYN-ACK was lost: resend it
                return
            self._challenge_ack()
            return
        if not flags & _ACK:
            c.tcp_drop_no_ack += 1
            return
        self.last_rx = self.stack.now
        self.probes = 0  # the peer is alive (Linux tcp_ack: icsk_probes_out = 0)
        ack = _rel_read(buf, off + 8, self.s_bhi, self.s_blo, self.s_una)
        win = buf[off + 14] << 8 | buf[off + 15]
        # fifth: the ACK field
        if self.state == SYN_RECEIVED:
            if self.s_una < ack and ack <= self.s_nxt:
                self.snd_wnd = win
                self.max_snd_wnd = win
                self.r_wl1 = seq
                self.s_wl2 = ack
                self.s_una = ack
                self.s_max = ack
                self._established()
            else:
                self.tcp.send_reset_for(buf, ip_off, off, 0)
                return
        elif ack > self.s_max:
            c.tcp_ack_unsent_data += 1
            self._ratelimited_ack()
            return
        elif ack < self.s_una - self.max_snd_wnd:
            # RFC 5961 5.2: an ACK this old is a blind injection attempt -> challenge ACK, drop
            c.tcp_ack_too_old += 1
            self._challenge_ack()
            return
        elif self.s_una < ack:
            self._ack_advanced(ack)
            if self.state == CLOSED:
                return
        elif ack == self.s_una and plen == 0 and not flags & _FIN and win == self.snd_wnd \
                and self.s_max != self.s_una:
            self._dupack()
        # send window update (RFC 9293 3.10.7.4, fifth, ESTABLISHED)
        if self.r_wl1 < seq or (self.r_wl1 == seq and self.s_wl2 <= ack):
            self.snd_wnd = win
            if win > self.max_snd_wnd:
                self.max_snd_wnd = win
            self.r_wl1 = seq
            self.s_wl2 = ack
            if win and (self.persist_shift or self.s_max == self.s_una) and self.state != TIME_WAIT:
                # the window opened: the persist timer (the only one running with nothing in
                # flight) stops; output() below sends and starts the retransmission timer afresh
                self.persist_shift = 0
                self.timer_on = False
        st = self.state
        if st == TIME_WAIT:
            return
        ack_now = False
        # seventh: segment text, trimmed to what is new (RFC 9293 3.10.7.4)
        if plen and (st == ESTABLISHED or st == FIN_WAIT_1 or st == FIN_WAIT_2):
            if self.orphan:
                # nobody will read it: Linux answers data after close() with a RST (TCPAbortOnData)
                c.tcp_abort_on_data += 1
                self._abort_with_rst(0)
                return
            d = self.r_nxt - seq  # bytes of it already received
            if d < 0:
                self._ooo_store(seq, buf, off + hl, plen)
                if flags & _FIN:  # processed when rcv_nxt reaches it
                    self.ooo_fin = True
                    self.r_ooo_fin = seq + plen
                self.send_ack()  # out of order: duplicate ACK at once (RFC 5681 4.2)
                self.output()  # then what its ACK and window allow (a data segment is no dupack)
                return
            if d < plen:
                had_holes = self.ooo_n
                self._take_data(buf, off + hl + d, plen - d)
                if had_holes:
                    self._ooo_advance()
                    ack_now = True  # a hole filled: ACK at once (RFC 5681 4.2)
                self.ack_owed += plen - d
                if self.ack_owed > self.mss or self.tcp.config.delayed_ack_ms == 0:
                    ack_now = True  # at least every second full-sized segment (RFC 1122 4.2.3.2)
                elif not self.delack_on:
                    self.delack_on = True
                    self.delack_deadline = ticks_add(self.stack.now, self.tcp.config.delayed_ack_ms)
            else:
                ack_now = True  # all old: a duplicate, ACK it
        # eighth: FIN, once everything before it has arrived
        if flags & _FIN and not self.fin_received:
            if seq + plen == self.r_nxt:
                ack_now = True
                self._fin_in()
                if self.state == TIME_WAIT:
                    return
            elif seq + plen > self.r_nxt:
                self.ooo_fin = True
                self.r_ooo_fin = seq + plen
                ack_now = True  # out of order: duplicate ACK at once (RFC 5681 4.2)
        elif flags & _FIN and self.fin_received:
            ack_now = True  # a retransmitted FIN: ACK again
        if self.ooo_fin and self.r_ooo_fin == self.r_nxt and not self.fin_received:
            ack_now = True
            self._fin_in()
            if self.state == TIME_WAIT:
                return
        if self.output() == 0 and ack_now:
            self.send_ack()

    def _dupack(self):
        """A duplicate ACK (RFC 5681 2): fast retransmit on the third, NewReno recovery after."""
        self.dupacks += 1
        c = self.stack.counters
        c.tcp_dupack += 1
        if self.in_recovery:
            self.cwnd += self.mss  # inflate: a segment left the network (RFC 6582 3.2 step 3)
            self.output()
        elif self.dupacks >= self._dupthresh() and self.s_una >= self.s_recover:
            # RFC 6582 asks for SND.UNA > recover; >= lets a loss of the first segment sent after
            # the previous recovery be repaired at once (2-segment windows hit that often)
            c.tcp_fast_retransmit += 1
            self.ssthresh = self._half_flight()
            self.s_recover = self.s_max
            self.in_recovery = True
            self._retransmit_first()
            self.cwnd = self.ssthresh + 3 * self.mss
            self._set_timer(self.rto)  # no loss probe during recovery (RFC 8985 7.2)
        elif self.dupacks <= 2:
            # RFC 3042 limited transmit: a new segment for each of the first two duplicate ACKs
            # (beyond cwnd by at most 2 MSS), so that a small window still yields enough of them
            extra = self.dupacks * self.mss
            before = self.s_max
            self.cwnd += extra
            if self.output():
                c.tcp_limited_transmit += 1
                self.lt_bytes += self.s_max - before
            self.cwnd -= extra

    def _dupthresh(self):
        """3 (RFC 5681), or fewer with under 4 segments out and nothing new to send: RFC 5827
        early retransmit, so a 2-segment window (2 KB rings) recovers without an RTO."""
        mss = self.mss
        flight = self.s_max - self.s_una
        oseg = (flight + mss - 1) // mss
        if oseg >= 4:
            return 3
        unsent = self.tx_len - self.s_nxt + self.s_una
        if unsent > 0 and self.snd_wnd - flight > 0:
            return 3  # new data can go (limited transmit) and bring more duplicate ACKs
        return oseg - 1 if oseg > 1 else 1

    def _ack_advanced(self, ack):
        """SND.UNA < SEG.ACK =< SND.MAX: drop acknowledged bytes, time RTT, grow or deflate cwnd."""
        acked = ack - self.s_una
        data = acked
        fin_acked = False
        if self.fin_sent and acked > self.tx_len:
            fin_acked = True  # the FIN occupies the sequence number after the last data byte
            data = self.tx_len
        self.tx_head = (self.tx_head + data) % len(self.tx)
        self.tx_len -= data
        self.s_una = ack
        if self.s_nxt < ack:
            self.s_nxt = ack  # after go-back-N the peer had more than we resent so far
        self.retries = 0
        self.dupacks = 0
        self.lt_bytes = 0
        if self.rtt_timing and ack >= self.s_rtt:
            self.rtt_timing = False
            self._rtt_sample(ticks_diff(self.stack.now, self.rtt_start))
        mss = self.mss
        if self.in_recovery:
            if ack >= self.s_recover:
                # full ACK: leave fast recovery (RFC 6582 3.2 step 3, first option)
                self.in_recovery = False
                f = self.s_max - self.s_una
                self.cwnd = self.ssthresh if self.ssthresh < f + mss else f + mss
            else:
                # partial ACK: the next hole is lost too; resend it, deflate (RFC 6582 3.2 step 3)
                self._retransmit_first()
                self.cwnd = self.cwnd - acked + mss if self.cwnd - acked + mss > mss else mss
        elif self.cwnd < self.ssthresh:
            self.cwnd += acked if acked < mss else mss  # slow start (RFC 5681 3.1, ABC L=1)
        else:
            inc = mss * mss // self.cwnd  # congestion avoidance (RFC 5681 eq. 3)
            self.cwnd += inc if inc > 0 else 1
        if self.cwnd > _CWND_MAX:
            self.cwnd = _CWND_MAX
        self.tlp_out = False
        if self.s_una == self.s_max:
            self.timer_on = False
            self.tlp_armed = False
        else:
            self._arm_rexmit(True)
        if fin_acked:
            st = self.state
            if st == FIN_WAIT_1:
                self._set_state(FIN_WAIT_2)
                if self.orphan:
                    self.fin_wait2_start = self.stack.now
                    self._arm_aux(self.tcp.config.fin_wait2_ms)
            elif st == CLOSING:
                self._enter_time_wait()
            elif st == LAST_ACK:
                self._done(0)


class Tcp:
    """The TCP layer of a stack: connection table, demultiplexing, connect, RSTs, ICMP errors."""

    def __init__(self, stack, config=None):
        self.stack = stack
        self.config = config if config is not None else TcpConfig()
        self.tcbs = []
        self.bound = []  # [addr, port] of sockets bound explicitly (never handed out as ephemeral)
        self.ports = PortAllocator(self.config.port_low, self.config.port_high)
        self.isn = IsnGenerator(stack.clock)

    # -- table -----------------------------------------------------------------------------------
    def remove(self, tcb):
        for i in range(len(self.tcbs)):
            if self.tcbs[i] is tcb:
                self.tcbs.pop(i)
                return

    def find(self, buf, ip_off, off):
        sport = buf[off] << 8 | buf[off + 1]
        dport = buf[off + 2] << 8 | buf[off + 3]
        for t in self.tcbs:
            if (
                t.remote_port == sport
                and t.local_port == dport
                and mem.equal(t.remote_addr, 0, buf, ip_off + 12, 4)
                and mem.equal(t.local_addr, 0, buf, ip_off + 16, 4)
            ):
                return t
        return None

    def _lookup(self, laddr, lport, raddr, rport):
        for t in self.tcbs:
            if t.local_port == lport and t.remote_port == rport and t.remote_addr == raddr and t.local_addr == laddr:
                return t
        return None

    def port_in_use(self, port):
        for b in self.bound:
            if b[1] == port:
                return True
        return False

    def _tuple_free(self, laddr, lport, raddr, rport, isn):
        """4-tuple uniqueness (__inet_check_established): free, or held by a TIME-WAIT that is safe
        to reuse -- old for 1 s and the new ISN beyond everything it sent (RFC 6191's test)."""
        t = self._lookup(laddr, lport, raddr, rport)
        if t is None:
            return True
        if t.state != TIME_WAIT:
            return False
        age = ticks_diff(self.stack.now, t.time_wait_start)
        if age < self.config.time_wait_reuse_ms:
            return False
        if isn is None:
            isn = self.isn.isn(laddr, lport, raddr, rport)
        if not seq_gt(isn, t.snd_nxt):
            return False
        t.timer_on = False
        t.state = CLOSED
        self.remove(t)
        self.stack.counters.tcp_time_wait_reused += 1
        return True

    # -- connect (tcp_v4_connect) ----------------------------------------------------------------
    def connect(self, bound_addr, bound_port, raddr, rport, rx_size=None, tx_size=None):
        """Start an active open to raddr:rport; returns the Tcb in SYN-SENT or raises OSError.
        rx_size / tx_size: this connection's ring sizes (default: the TcpConfig's)."""
        for size in (rx_size, tx_size):
            if size is not None and not 0 < size <= 65535:
                raise OSError(errors.EINVAL)
        s = self.stack
        s.now = s.clock.ticks_ms()
        route = s.route
        next_hop = route.next_hop(raddr)
        laddr = route.source_for(bound_addr)
        if bound_port:
            if not self._tuple_free(laddr, bound_port, raddr, rport, None):
                raise OSError(errors.EADDRNOTAVAIL)
            lport = bound_port
        else:
            def is_free(port):
                return not self.port_in_use(port) and self._tuple_free(laddr, port, raddr, rport, None)

            lport = self.ports.allocate(laddr, raddr, rport, is_free)
        tcb = Tcb(self, laddr, lport, bytes(raddr), rport, bytes(next_hop), rx_size or 0, tx_size or 0)
        tcb._set_send_base(self.isn.isn(laddr, lport, raddr, rport))
        tcb.connect_start = s.now
        tcb.state = SYN_SENT
        self.tcbs.append(tcb)
        tcb._trace("connect", None)
        tcb._send_syn()
        tcb._set_timer(tcb.rto)
        return tcb

    # -- input -----------------------------------------------------------------------------------
    def input(self, buf, ip_off, off, n):
        """A TCP segment (n bytes from buf[off]) inside an IPv4 packet at buf[ip_off]."""
        c = self.stack.counters
        c.tcp_rx += 1
        if n < 20:
            c.tcp_drop_short += 1
            return
        hl = (buf[off + 12] >> 4) * 4
        if hl < 20 or hl > n:
            c.tcp_drop_bad_header_len += 1
            return
        acc = pseudo_sum(buf, ip_off + 12, buf, ip_off + 16, _PROTO_TCP, n)
        if checksum(buf, off, off + n, acc) != 0:
            c.tcp_drop_bad_checksum += 1
            return
        if buf[off] == 0 and buf[off + 1] == 0 or buf[off + 2] == 0 and buf[off + 3] == 0:
            c.tcp_drop_bad_port += 1
            return
        tcb = self.find(buf, ip_off, off)
        if tcb is None:
            self._no_socket(buf, ip_off, off, hl, n - hl)
            return
        tcb.input(buf, ip_off, off, hl, n - hl)

    def _no_socket(self, buf, ip_off, off, hl, plen):
        """RFC 9293 3.10.7.1: a segment for no connection gets a RST, unless it is one."""
        c = self.stack.counters
        flags = buf[off + 13]
        if flags & _RST:
            c.tcp_no_socket_rst_dropped += 1
            return
        c.tcp_no_socket_rst_sent += 1
        seg_len = plen
        if flags & _SYN:
            seg_len += 1
        if flags & _FIN:
            seg_len += 1
        self.send_reset_for(buf, ip_off, off, seg_len)

    def send_reset_for(self, buf, ip_off, off, seg_len):
        """Answer the segment at buf[off] with a RST built from its own addresses and ports
        (RFC 9293 3.10.7.1): <SEQ=SEG.ACK><CTL=RST> if it has an ACK, else
        <SEQ=0><ACK=SEG.SEQ+seg_len><CTL=RST,ACK>. Copies bytes: no 32-bit ints."""
        s = self.stack
        f = s.tx
        sport = buf[off + 2] << 8 | buf[off + 3]
        dport = buf[off] << 8 | buf[off + 1]
        if buf[off + 13] & _ACK:
            wtcp.emit_header(f, _L4, sport, dport, 0, 0, _RST, 0, 20)
            mem.copy(f, _L4 + 4, buf, off + 8, 4)
        else:
            wtcp.emit_header(f, _L4, sport, dport, 0, 0, _RST | _ACK, 0, 20)
            _put_sum(f, _L4 + 8, buf, off + 4, seg_len)
        acc = pseudo_sum(buf, ip_off + 16, buf, ip_off + 12, _PROTO_TCP, 20)
        cs = checksum(f, _L4, _L4 + 20, acc)
        f[_L4 + 16] = cs >> 8
        f[_L4 + 17] = cs & 0xFF
        s.counters.tcp_tx += 1
        s.ip_output(buf, ip_off + 12, buf, ip_off + 16, _PROTO_TCP, 20)

    # -- errors from below -----------------------------------------------------------------------
    def icmp_error(self, buf, q, qlen, err):
        """ICMP unreachable/time exceeded quoting q bytes of our datagram at buf[q] (RFC 5927).

        In SYN-SENT / SYN-RECEIVED, a quote that matches the 4-tuple and carries our ISS fails the
        connect at once with err, as tcp_v4_err does; anything else is counted and ignored."""
        c = self.stack.counters
        if qlen < 20:
            c.icmp_unreach_no_match += 1
            return
        qhl = (buf[q] & 0x0F) * 4
        if qhl < 20 or qlen < qhl + 8 or buf[q + 9] != _PROTO_TCP:
            c.icmp_unreach_no_match += 1
            return
        t = q + qhl
        sport = buf[t] << 8 | buf[t + 1]
        dport = buf[t + 2] << 8 | buf[t + 3]
        tcb = None
        for x in self.tcbs:
            if (
                x.local_port == sport
                and x.remote_port == dport
                and mem.equal(x.local_addr, 0, buf, q + 12, 4)
                and mem.equal(x.remote_addr, 0, buf, q + 16, 4)
            ):
                tcb = x
                break
        if tcb is None:
            c.icmp_unreach_no_match += 1
            return
        st = tcb.state
        if st == SYN_SENT or st == SYN_RECEIVED:
            if _rel_read(buf, t + 4, tcb.s_bhi, tcb.s_blo, tcb.s_una) != tcb.s_una:
                c.icmp_unreach_no_match += 1  # blind ICMP: quoted sequence is not our SYN's
                return
            c.icmp_unreach_delivered += 1
            tcb._trace("icmp", err)
            tcb.fail(err)
            return
        c.icmp_unreach_ignored += 1  # soft error for a synchronized connection (Linux sk_err_soft)

    def neighbour_failed(self, ip):
        """ARP gave up on ip: connects in SYN-SENT through that next hop fail with EHOSTUNREACH
        (Linux: ipv4_link_failure -> ICMP host unreachable to ourselves -> tcp_v4_err)."""
        i = 0
        while i < len(self.tcbs):
            t = self.tcbs[i]
            if t.state == SYN_SENT and t.next_hop == ip:
                t._trace("arp-failed", None)
                t.fail(errors.EHOSTUNREACH)
            else:
                i += 1

    # -- timers ----------------------------------------------------------------------------------
    def poll(self, now):
        i = 0
        while i < len(self.tcbs):
            t = self.tcbs[i]
            if t.delack_on and ticks_diff(now, t.delack_deadline) >= 0:
                t.on_delack()
            if t.timer_on and ticks_diff(now, t.deadline) >= 0:
                t.on_timer()
            if t.aux_on and ticks_diff(now, t.aux_deadline) >= 0:
                t.on_aux()
            if i < len(self.tcbs) and self.tcbs[i] is not t:
                continue  # t left the table
            i += 1

    def next_deadline(self, now, best):
        for t in self.tcbs:
            if t.timer_on:
                d = ticks_diff(t.deadline, now)
                if d < best:
                    best = d
            if t.delack_on:
                d = ticks_diff(t.delack_deadline, now)
                if d < best:
                    best = d
            if t.aux_on:
                d = ticks_diff(t.aux_deadline, now)
                if d < best:
                    best = d
        return best
