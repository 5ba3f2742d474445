"""TCP: the connection table, the client side of the handshake, and the Tcb.

The connect path follows Linux (tcp_v4_connect -> __inet_hash_connect -> tcp_connect): route and
source address, an ephemeral port unique in its 4-tuple (ports.py), an RFC 6528 ISN (isn.py), a SYN
carrying our MSS, and the SYN retransmit timer (RTO 1 s doubling, syn_retries then ETIMEDOUT).
Segment arrival follows RFC 9293 3.10.7 with the RFC 5961 checks (challenge ACKs, rate limited as
Linux does). Data moves through two rings per connection: RFC 6298 RTO, RFC 5681
slow start / congestion avoidance / fast retransmit with RFC 6582 (NewReno) recovery, go-back-N
after an RTO, a persist timer, Nagle and sender/receiver SWS avoidance, delayed ACKs (every second
full segment at once), out-of-order segments kept in the receive ring (a few ranges) until the hole
fills, keep-alive, and every close path of RFC 9293 3.6 including orphaned connections.

The parts (tcpip.tcp_core's docstring has the map and the relative sequence numbers): tcp_in
(arriving segments), tcp_out (what we send), tcp_timer (timers), tcp_core (shared helpers); this
module holds TcpConfig, the Tcb with the calls the socket layer makes, and Tcp (the table, connect,
demultiplexing, ICMP errors, the timer sweep).
"""
import gc
import sys

from tcpip import call
from tcpip import errors
from tcpip import mem
from tcpip.checksum import checksum, pseudo_sum
from tcpip.clock import ticks_add, ticks_diff
from tcpip.ports import PortAllocator
from tcpip.isn import IsnGenerator
from tcpip.fastpath import TEMPLATE_LEN
from tcpip.tcp_core import NO_RING
from tcpip.tcp_core import (  # noqa: F401 (the states are this module's API too)
    CLOSED, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT,
    CLOSE_WAIT, LAST_ACK, STATE_NAMES, arm_aux, done, rel_write, release_rx, release_tx,
    set_timer, shift, trace)
from tcpip import tcp_in
from tcpip import tcp_out
from tcpip import tcp_timer

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_TYPE_CHECKING = const(False)  # True for the type checker only: `if` blocks under it compile to nothing

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_TCP_RX = const(34)
_TCP_DROP_SHORT = const(36)
_TCP_DROP_BAD_HEADER_LEN = const(37)
_TCP_DROP_BAD_CHECKSUM = const(38)
_TCP_DROP_BAD_PORT = const(39)
_TCP_NO_SOCKET_RST_SENT = const(40)
_TCP_NO_SOCKET_RST_DROPPED = const(41)
_TCP_ABORT_ON_CLOSE = const(72)
_TCP_TW_OVERFLOW = const(92)
_TCP_CONN_LIMIT = const(93)

_FIN = const(1)
_SYN = const(2)
_RST = const(4)
_PROTO_TCP = const(6)
# a TIME-WAIT record in Tcp.tw: local address 4, remote address 4, local port 2, remote port 2,
# SND.NXT 4, RCV.NXT 4 (absolute, big-endian), the window we advertised 2, spare 2
_TW_LEN = const(24)

DEFAULT_MSS = const(536)  # RFC 9293 3.7.1 / RFC 6691: assumed until the peer's SYN says otherwise
_BIG = const(0x3FFFFFFF)  # "infinite" ssthresh, still a small int on 32-bit ports
_MICROPYTHON = sys.implementation.name == "micropython"
# a base moves once SND.UNA / RCV.NXT is this far past it (2**28; tests make it small)
REBASE_AT = 0x10000000


class TcpConfig:
    """Tunables, Linux's defaults unless noted: TcpConfig(name=value, ...) sets some (checked by
    tcpip.cold.check_config: TypeError for an unknown name, ValueError for a value out of range).
    The defaults are class attributes, so a config holds only what was set."""

    syn_retries = 6            # net.ipv4.tcp_syn_retries
    rto_initial_ms = 1000      # TCP_TIMEOUT_INIT (RFC 6298)
    rto_min_ms = 200           # TCP_RTO_MIN (RFC 6298 says 1 s; Linux uses 200 ms)
    rto_max_ms = 120000        # TCP_RTO_MAX
    data_retries = 15          # net.ipv4.tcp_retries2
    time_wait_ms = 60000       # TCP_TIMEWAIT_LEN (2*MSL)
    time_wait_reuse_ms = 1000  # tcp_tw_reuse: a TIME-WAIT 4-tuple is reusable after 1 s
    fin_wait2_ms = 60000       # net.ipv4.tcp_fin_timeout, for closed (orphaned) sockets
    rx_buffer = 12288          # receive ring: the most we ever advertise (docs/BOARDS.md, "Rings")
    tx_buffer = 12288          # send ring
    init_cwnd = 10             # segments (RFC 6928, Linux TCP_INIT_CWND); 1 after a lost SYN
    delayed_ack_ms = 40        # 0: ACK every segment at once (Linux TCP_DELACK_MIN = 40 ms)
    nodelay = False            # True: no Nagle (TCP_NODELAY) for new connections
    keepalive_idle_ms = 7200000   # net.ipv4.tcp_keepalive_time
    keepalive_interval_ms = 75000  # net.ipv4.tcp_keepalive_intvl
    keepalive_count = 9           # net.ipv4.tcp_keepalive_probes
    ooo_segments = 4           # out-of-order ranges kept for reassembly (0: drop them)
    invalid_ratelimit_ms = 500  # net.ipv4.tcp_invalid_ratelimit: challenge/out-of-window ACKs
    header_prediction = True   # False: every segment takes the full RFC 9293 path
    prealloc_rings = 0         # connections whose rings are allocated when the stack starts
    port_low = 32768           # net.ipv4.ip_local_port_range
    port_high = 60999
    port_table_size = 256      # RFC 6056 alg. 4 perturbation entries, 2 bytes each (Linux: 65536;
                               # tcpip.ports says why a board keeps 256)
    max_connections = 16       # Tcbs at once, closing ones included: connect() then fails with
                               # ENOBUFS (lwIP MEMP_NUM_TCP_PCB; Linux has no such limit)
    time_wait_max = 64         # TIME-WAIT records (net.ipv4.tcp_max_tw_buckets): past it a
                               # closed connection ends without TIME-WAIT (tcp_tw_overflow)
    syn_backlog = 8            # half-open records per listening port (net.ipv4.tcp_max_syn_backlog)
    synack_retries = 5         # net.ipv4.tcp_synack_retries
    syncookies = True          # SYN cookies once the half-open records are full (tcp_syncookies 1)

    def __init__(self, **kw):
        if kw:
            call("tcpip.cold", "check_config", self, kw)


class Tcb:
    """One connection's transmission control block (RFC 9293 3.3.1).

    The fields that start at a constant are class attributes: a connection's own dict holds only
    what it set (the ones read on every segment before any write stay in __init__)."""

    error = 0
    orphan = False  # the application closed its socket: nobody reads any more
    # send side (RFC 9293 3.3.1), relative to the send base (s_bhi, s_blo): see tcp_core's
    # docstring. s_nxt falls back to s_una after an RTO (go-back-N); s_max is the highest
    # sequence number sent so far (+1).
    iss = 0  # absolute
    s_bhi = 0
    s_blo = 0
    s_una = 0
    s_nxt = 0
    s_max = 0
    s_sml = 0  # end of the last segment shorter than the MSS that we sent
    snd_wnd = 0
    max_snd_wnd = 0
    r_wl1 = 0  # SND.WL1: a receive-side (peer) sequence number
    s_wl2 = 0  # SND.WL2
    mss = DEFAULT_MSS
    tx_head = 0  # ring index of the byte at snd_una
    tx_len = 0   # bytes in the ring: unacknowledged + unsent
    # congestion control (RFC 5681, NewReno recovery of RFC 6582)
    ssthresh = _BIG
    dupacks = 0
    lt_bytes = 0  # sent by limited transmit since the last new ACK (not in FlightSize)
    s_recover = 0
    tlp_armed = False  # the retransmit timer is a tail loss probe timer (RFC 8985)
    tlp_out = False    # a probe was sent and no ACK has advanced since
    # receive side
    irs = 0  # absolute
    r_bhi = 0  # the receive base
    r_blo = 0
    r_nxt = 0
    rx_head = 0
    rx_len = 0
    last_wnd = 0  # window we last advertised
    r_wedge = 0  # its right edge, RCV.NXT + RCV.WND then (relative)
    sack_ok = False  # the peer's SYN allowed SACK: our ACKs describe the ooo ranges
    r_sack = 0  # start of the latest out-of-order segment (first SACK block)
    ooo_fin = False  # a FIN arrived out of order at r_ooo_fin
    r_ooo_fin = 0
    ack_owed = 0     # bytes received since our last ACK (delayed ACK)
    wupd = False     # a window update that reopened a zero window may be resent once
    r_wupd = 0
    # timers: retransmit / persist / TIME-WAIT / SYN share `deadline`; delayed ACK has its own;
    # `aux` is keep-alive or the FIN-WAIT-2 timeout
    srtt = 0  # 0 = no sample yet
    rttvar = 0
    retries = 0
    deadline = 0
    delack_deadline = 0
    aux_deadline = 0
    probes = 0  # unanswered zero-window or keep-alive probes (any ACK resets it)
    persist_shift = 0  # persist timer backoff, reset when the window opens
    keepalive = False
    last_rx = 0
    oow_time = 0  # when the last rate-limited (challenge / out-of-window) ACK went out
    oow_sent = False
    rtt_timing = False  # Karn: time one segment that is never retransmitted
    s_rtt = 0
    rtt_start = 0
    time_wait_start = 0
    fin_wait2_start = 0
    connect_start = 0  # what the CLI's timeline shows (with syn_times, set at connect time)
    first_rtt_ms = -1
    th_gen = -1  # header prediction's template th is valid for sending while == stack.route.gen

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
        self.rebase_at = REBASE_AT  # a base moves once SND.UNA / RCV.NXT is this far past it
        self.adv_mss = self.stack.mtu - 40
        # the rings come from the pool (Tcp.ring): allocated once, reused by later connections
        self.tx_size = tx_size or cfg.tx_buffer
        self.rx_size = rx_size or cfg.rx_buffer
        self.tx = tcp.ring(self.tx_size)
        try:
            self.rx = tcp.ring(self.rx_size)
        except OSError:
            tcp.release(self.tx)
            raise
        self.fin_pending = False  # the application closed its sending side: FIN after tx data
        self.fin_sent = False     # our FIN went out at least once (state changed for it)
        self.nodelay = cfg.nodelay
        self.cwnd = cfg.init_cwnd * DEFAULT_MSS
        self.in_recovery = False
        self.fin_received = False
        self.ooo = [0] * (2 * cfg.ooo_segments)  # [start, end) ranges held in the ring (relative)
        self.ooo_n = 0
        self.delack_ms = cfg.delayed_ack_ms
        self.rto = cfg.rto_initial_ms
        self.timer_on = False
        self.delack_on = False
        self.aux_on = False
        self.ka_idle = cfg.keepalive_idle_ms
        self.ka_interval = cfg.keepalive_interval_ms
        self.ka_count = cfg.keepalive_count
        self.syn_times = []  # what the CLI's timeline shows (appended at connect time only)
        # header prediction (tcpip.fastpath): the headers we send and what we expect back
        self.th = bytearray(TEMPLATE_LEN)

    # -- sequence numbers --------------------------------------------------------------------------
    def _th_bases(self):
        """The bases into the header-prediction template (th[56:64], big-endian)."""
        th = self.th
        v = self.s_bhi
        th[56] = v >> 8
        th[57] = v & 0xFF
        v = self.s_blo
        th[58] = v >> 8
        th[59] = v & 0xFF
        v = self.r_bhi
        th[60] = v >> 8
        th[61] = v & 0xFF
        v = self.r_blo
        th[62] = v >> 8
        th[63] = v & 0xFF

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
            self.s_sml = shift(self.s_sml, d)
            self.s_wl2 = shift(self.s_wl2, d)
            self.s_recover = shift(self.s_recover, d)
            self.s_rtt = shift(self.s_rtt, d)
        d = self.r_nxt
        if d > self.rebase_at:
            lo = self.r_blo + (d & 0xFFFF)
            self.r_bhi = (self.r_bhi + (d >> 16) + (lo >> 16)) & 0xFFFF
            self.r_blo = lo & 0xFFFF
            self.r_nxt = 0
            self.r_wl1 = shift(self.r_wl1, d)
            self.r_sack = shift(self.r_sack, d)
            self.r_ooo_fin = shift(self.r_ooo_fin, d)
            self.r_wupd = shift(self.r_wupd, d)
            self.r_wedge = shift(self.r_wedge, d)
            o = self.ooo
            for i in range(len(o)):
                o[i] = shift(o[i], d)
        self._th_bases()

    def _absolute(self, name):
        if name == "rcv_nxt":
            return ((self.r_bhi << 16 | self.r_blo) + self.r_nxt) & 0xFFFFFFFF
        if name == "snd_una":
            rel = self.s_una
        elif name == "snd_nxt":
            rel = self.s_nxt
        elif name == "snd_max":
            rel = self.s_max
        else:
            raise AttributeError(name)
        return ((self.s_bhi << 16 | self.s_blo) + rel) & 0xFFFFFFFF

    # Absolute snd_una, snd_nxt, snd_max and rcv_nxt for tests, tools and the socket layer, built on
    # demand (big ints on 32-bit ports: never for per-segment code). MicroPython: __getattr__, as a
    # class with a property makes it search the class on every attribute store to an instance
    # (~4x slower stores); a test that assigns tcb.snd_nxt then hides the computed value.
    # CPython: properties (tcpip._host.absolute_properties, below the class), as __getattr__
    # stops CPython 3.11+ specializing attribute access.
    if _MICROPYTHON:
        __getattr__ = _absolute

    # -- helpers ---------------------------------------------------------------------------------
    def state_name(self):
        return STATE_NAMES.split()[self.state]

    def tx_free(self):
        if self.tx is NO_RING:
            return 0
        return self.tx_size - self.tx_len

    def readable(self):
        """recv would not block: data, the peer's FIN, or the connection has ended."""
        return self.rx_len > 0 or self.fin_received or self.state == CLOSED

    def writable(self):
        """A send is worth waking up for (or fails at once because the connection ended): a
        third of the send ring or more is free (Linux sk_stream_is_writeable: free space at least
        half of what is queued), so a blocked writer queues a good chunk, not the few bytes that
        came free (which would go out as a tiny segment)."""
        st = self.state
        if st == CLOSED:
            return True
        if self.fin_pending or (st != ESTABLISHED and st != CLOSE_WAIT):
            return False
        free = self.tx_size - self.tx_len
        return free > 0 and free + free >= self.tx_len

    # -- user calls ------------------------------------------------------------------------------
    def send(self, data, off, n):
        """Queue up to n bytes of data[off:]; returns how many fit in the send ring."""
        st = self.state
        if self.fin_pending or (st != ESTABLISHED and st != CLOSE_WAIT):
            return 0
        size = self.tx_size
        tl = self.tx_len
        if n > size - tl:
            n = size - tl
        if n <= 0:
            return 0
        pos = self.tx_head + tl
        if pos >= size:
            pos -= size
        first = size - pos
        ring = self.tx
        if first >= n:
            mem.copy(ring, pos, data, off, n)
        else:
            mem.copy(ring, pos, data, off, first)
            mem.copy(ring, 0, data, off + first, n - first)
        self.tx_len = tl + n
        s = self.stack
        s.now = s.clock.ticks_ms()
        # cork: with two full segments unacknowledged a small tail waits (tcp_out.output)
        tcp_out.output(self, not self.nodelay and self.s_nxt - self.s_una >= 2 * self.mss)
        return n

    def recv_into(self, buf, off, n):
        """Move up to n received bytes into buf[off:]; 0 when none are waiting."""
        rl = self.rx_len
        if n > rl:
            n = rl
        if n <= 0:
            return 0
        ring = self.rx
        size = self.rx_size
        head = self.rx_head
        first = size - head
        if first > n:
            mem.copy(buf, off, ring, head, n)
            head += n
        else:
            mem.copy(buf, off, ring, head, first)
            if first < n:
                mem.copy(buf, off + first, ring, 0, n - first)
            head = n - first
        self.rx_head = head
        rl -= n
        self.rx_len = rl
        st = self.state
        if st == ESTABLISHED or st == FIN_WAIT_1 or st == FIN_WAIT_2:
            # a window update, as Linux tcp_cleanup_rbuf sends one: once what is left of the
            # window we advertised is half the ring or less, and reading at least doubled it
            # (with the receiver SWS rule: the right edge moves by min(ring / 2, MSS) or more)
            cur = self.r_wedge - self.r_nxt
            if cur < 0:
                cur = 0
            if cur + cur <= size:
                free = size - rl
                if free > 65535:
                    free = 65535
                m = size >> 1
                if m > self.adv_mss:
                    m = self.adv_mss
                if free - cur >= m and free >= cur + cur:
                    was_closed = self.last_wnd == 0
                    s = self.stack
                    s.now = s.clock.ticks_ms()
                    tcp_out.send_ack(self)
                    if was_closed:
                        # the peer waits on this update: if it is lost, the peer stalls
                        # until its persist timer (>= 200 ms on Linux). Send it once more
                        # unless data comes first.
                        self.wupd = True
                        self.r_wupd = self.r_nxt
                        wait = 2 * self.srtt
                        self.delack_on = True
                        self.delack_deadline = ticks_add(s.now, wait if wait > 20 else 20)
        elif not rl and self.fin_received:
            release_rx(self)  # all read after the peer's FIN: nothing more can arrive
        return n

    def shutdown_write(self):
        st = self.state
        if st == ESTABLISHED or st == CLOSE_WAIT or st == SYN_RECEIVED:
            self.fin_pending = True
            self.stack.now = self.stack.clock.ticks_ms()
            tcp_out.output(self)

    def close(self):
        """Application close: FIN after queued data; RST if received data was left unread
        (RFC 2525 2.17, as Linux tcp_close); in SYN-SENT just forget the connection. The Tcb
        lives on alone (orphan) through FIN-WAIT / TIME-WAIT."""
        st = self.state
        self.stack.now = self.stack.clock.ticks_ms()
        self.orphan = True
        if self.tcp.hot is self:
            self.tcp.hot = None
        if not self.rx_len or st == CLOSED:
            release_rx(self)  # nobody reads any more (data arriving now gets a RST)
        if not self.tx_len:
            release_tx(self)  # nothing to resend (the FIN carries no bytes of the ring)
        if st == SYN_SENT:
            done(self, 0)
        elif st == TIME_WAIT:
            self.tcp.time_wait(self)  # nobody holds the Tcb any more: a record is enough
        elif self.rx_len > 0 and st != CLOSED:
            self.stack.cnt[_TCP_ABORT_ON_CLOSE] += 1
            tcp_out.abort_with_rst(self, 0)
        elif st == ESTABLISHED or st == CLOSE_WAIT or st == SYN_RECEIVED:
            self.shutdown_write()
        elif st == FIN_WAIT_2:
            self.fin_wait2_start = self.stack.now
            arm_aux(self, self.tcp.config.fin_wait2_ms)

    def abort(self):
        """Abort (RFC 9293 3.10.5): RST when synchronized, except in CLOSING, LAST-ACK and
        TIME-WAIT where the TCB just goes (as Linux tcp_disconnect); the socket sees no error."""
        st = self.state
        if st == CLOSED:
            return
        self.stack.now = self.stack.clock.ticks_ms()
        if st == CLOSING or st == LAST_ACK or st == TIME_WAIT:
            done(self, 0)
        else:
            tcp_out.abort_with_rst(self, 0)

    def fail(self, err):
        """End the connection at once with err (no segment sent): a failed connect."""
        done(self, err)

    def set_keepalive(self, on, idle_ms=None, interval_ms=None, count=None):
        """SO_KEEPALIVE with its idle time, interval and probe count (None: as they are)."""
        call("tcpip.cold", "set_keepalive", self, on, idle_ms, interval_ms, count)

    def set_nodelay(self, flag):
        self.nodelay = bool(flag)
        if flag:
            self.stack.now = self.stack.clock.ticks_ms()
            tcp_out.output(self)


if not _MICROPYTHON:
    from tcpip._host import absolute_properties

    absolute_properties(Tcb)


class Tcp:
    """The TCP layer of a stack: connection table, demultiplexing, connect, RSTs, ICMP errors."""

    def __init__(self, stack, config=None):
        self.stack = stack
        self.config = config if config is not None else TcpConfig()
        self.tcbs = []
        self.hot = None  # the ESTABLISHED Tcb whose segments header prediction tries (Stack.input)
        self.bound = []  # [addr, port] of sockets bound explicitly (never handed out as ephemeral)
        self.ports = PortAllocator(self.config.port_low, self.config.port_high,
                                   table_size=self.config.port_table_size)
        self.isn = IsnGenerator(stack.clock)
        # rings freed by closed connections, kept for the next ones (docs/ARCHITECTURE.md, "Rings")
        self.pool = []
        n = self.config.prealloc_rings
        for _ in range(n):
            self.pool.append(bytearray(self.config.tx_buffer))
            self.pool.append(bytearray(self.config.rx_buffer))
        self.pool_max = 2 * n if n > 2 else 4
        # TIME-WAIT records (Linux inet_timewait_sock): tw_n of them, _TW_LEN bytes each in tw,
        # deadlines (ticks) in tw_dl; none expires before tw_next. Made at the first one.
        self.tw = None
        self.tw_dl = None
        self.tw_n = 0
        self.tw_next = 0
        self.tw_oow = 0  # when the last rate-limited ACK from a record went (tcpip.cold.tw_input)
        self.listeners = None  # tcpip.tcp_listen.Listener per listening port (Tcp.listen)

    # -- rings -----------------------------------------------------------------------------------
    def ring(self, size):
        """A ring of size bytes or more: the pool's smallest that fits, else a new one; when the
        heap has no such block, the pool's other rings go back to it, a garbage collection runs
        and one more try is made; OSError(ENOMEM) when there is still none. (The connection uses
        size bytes of it: Tcb.rx_size / tx_size.)"""
        pool = self.pool
        best = -1
        for i in range(len(pool)):
            n = len(pool[i])
            if n >= size and (best < 0 or n < len(pool[best])):
                best = i
        if best >= 0:
            return pool.pop(best)
        try:
            return bytearray(size)
        except MemoryError:
            pass
        pool.clear()  # rings of other sizes: the blocks they hold may be what is missing
        gc.collect()
        try:
            return bytearray(size)
        except MemoryError:
            raise OSError(errors.ENOMEM, "no free %d-byte block for a TCP ring (gc.mem_free() "
                          "%d): smaller rings, or TcpConfig(prealloc_rings=...)"
                          % (size, gc.mem_free() if _MICROPYTHON else -1))

    def release(self, ring):
        """A ring its connection no longer needs: kept for the next connection (pool_max rings at
        most; the rest go back to the heap)."""
        if len(self.pool) < self.pool_max:
            self.pool.append(ring)

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
        """4-tuple uniqueness (__inet_check_established): free, or held by a TIME-WAIT (a Tcb or a
        record) that is safe to reuse (tcpip.cold.time_wait_reuse)."""
        for t in self.tcbs:
            if t.local_port == lport and t.remote_port == rport and t.remote_addr == raddr and t.local_addr == laddr:
                return t.state == TIME_WAIT and call("tcpip.cold", "time_wait_reuse", self, t, isn)
        if self.tw_n:
            i = self.tw_index(laddr, 0, lport, raddr, 0, rport)
            if i >= 0:
                return call("tcpip.cold", "time_wait_reuse", self, i, isn)
        return True

    # -- passive open (tcpip.tcp_listen, loaded by the first listen) ------------------------------
    def listen(self, addr, port, backlog, rx_size=None, tx_size=None):
        """A Listener for port (addr: 4 bytes, or None for any of ours): SYNs to it make
        connections that wait in its queue until taken (Listener.queue)."""
        from tcpip.tcp_listen import Listener

        for x in self.listeners or ():
            if x.port == port:
                raise OSError(errors.EADDRINUSE)
        x = Listener(self, addr, port, backlog, rx_size or 0, tx_size or 0)
        if self.listeners is None:
            self.listeners = []
        self.listeners.append(x)
        return x

    def unlisten(self, x):
        x.close()
        ls = self.listeners
        if _TYPE_CHECKING:
            assert ls is not None  # x is one of them
        for i in range(len(ls)):
            if ls[i] is x:
                ls.pop(i)
                break
        if not ls:
            self.listeners = None

    def _listener(self, buf, ip_off, off):
        port = buf[off + 2] << 8 | buf[off + 3]
        if _TYPE_CHECKING:
            assert self.listeners is not None  # called when there are listeners
        for x in self.listeners:
            if x.port == port and (x.addr is None or mem.equal(x.addr, 0, buf, ip_off + 16, 4)):
                return x
        return None

    # -- TIME-WAIT records -------------------------------------------------------------------------
    def time_wait(self, t):
        """t, in TIME-WAIT and closed by the application, becomes a record of the 24 bytes
        TIME-WAIT needs (Linux inet_timewait_sock: the 4-tuple, SND.NXT, RCV.NXT, the window, the
        deadline); the Tcb goes. Past config.time_wait_max records the connection just ends,
        counted (Linux tcp_max_tw_buckets: "time wait bucket table overflow")."""
        n = self.tw_n
        dl = t.deadline
        done(t, 0)
        cap = self.config.time_wait_max
        if n >= cap:
            self.stack.cnt[_TCP_TW_OVERFLOW] += 1
            return
        tw = self.tw
        if tw is None or len(tw) < (n + 1) * _TW_LEN:
            m = 2 * n if n >= 4 else 4  # grows by doubling, up to the cap
            if m > cap:
                m = cap
            b = bytearray(m * _TW_LEN)
            d = [0] * m
            if tw is not None:
                mem.copy(b, 0, tw, 0, n * _TW_LEN)
                if _TYPE_CHECKING:
                    assert self.tw_dl is not None  # made with tw
                for i in range(n):
                    d[i] = self.tw_dl[i]
            self.tw = tw = b
            self.tw_dl = d
        k = n * _TW_LEN
        mem.copy(tw, k, t.local_addr, 0, 4)
        mem.copy(tw, k + 4, t.remote_addr, 0, 4)
        v = t.local_port
        tw[k + 8] = v >> 8
        tw[k + 9] = v & 0xFF
        v = t.remote_port
        tw[k + 10] = v >> 8
        tw[k + 11] = v & 0xFF
        # SND.NXT and RCV.NXT: base + relative, bytewise (no 32-bit ints on a board)
        rel_write(tw, k + 12, t.s_bhi, t.s_blo, t.s_nxt)
        rel_write(tw, k + 16, t.r_bhi, t.r_blo, t.r_nxt)
        v = t.last_wnd
        tw[k + 20] = v >> 8
        tw[k + 21] = v & 0xFF
        if _TYPE_CHECKING:
            assert self.tw_dl is not None  # made with tw
        self.tw_dl[n] = dl
        if n == 0 or ticks_diff(dl, self.tw_next) < 0:
            self.tw_next = dl
        self.tw_n = n + 1

    def tw_index(self, la, lo, lport, ra, ro, rport):
        """The TIME-WAIT record of local la[lo:lo+4]:lport, remote ra[ro:ro+4]:rport, or -1."""
        tw = self.tw
        if _TYPE_CHECKING:
            assert tw is not None  # called when there are records (tw_n > 0)
        k = 0
        for i in range(self.tw_n):
            if ((tw[k + 8] << 8 | tw[k + 9]) == lport and (tw[k + 10] << 8 | tw[k + 11]) == rport
                    and mem.equal(tw, k + 4, ra, ro, 4) and mem.equal(tw, k, la, lo, 4)):
                return i
            k += _TW_LEN
        return -1

    def tw_drop(self, i):
        """Record i goes (the last one takes its place)."""
        n = self.tw_n - 1
        if _TYPE_CHECKING:
            assert self.tw_dl is not None  # a record i: made with tw
        if i != n:
            mem.copy(self.tw, i * _TW_LEN, self.tw, n * _TW_LEN, _TW_LEN)
            self.tw_dl[i] = self.tw_dl[n]
        self.tw_n = n

    def _tw_expire(self, now):
        dl = self.tw_dl
        if _TYPE_CHECKING:
            assert dl is not None  # called when there are records (tw_n > 0)
        nxt = now
        first = True
        i = 0
        while i < self.tw_n:
            if ticks_diff(now, dl[i]) >= 0:
                self.tw_drop(i)
                continue
            if first or ticks_diff(dl[i], nxt) < 0:
                nxt = dl[i]
                first = False
            i += 1
        self.tw_next = nxt

    # -- connect (tcp_v4_connect) ----------------------------------------------------------------
    def connect(self, bound_addr, bound_port, raddr, rport, rx_size=None, tx_size=None):
        """Start an active open to raddr:rport; returns the Tcb in SYN-SENT or raises OSError.
        rx_size / tx_size: this connection's ring sizes (default: the TcpConfig's)."""
        for size in (rx_size, tx_size):
            if size is not None and not 0 < size <= 65535:
                raise OSError(errors.EINVAL)
        if not 0 < rport <= 65535:
            raise OSError(errors.EADDRNOTAVAIL)  # as the socket layer (docs/SOCKETS.md)
        if len(self.tcbs) >= self.config.max_connections:
            self.stack.cnt[_TCP_CONN_LIMIT] += 1
            raise OSError(errors.ENOBUFS, "%d connections open or closing (TcpConfig max_connections)"
                          % len(self.tcbs))
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
        # all or nothing: everything is allocated before the Tcb enters the table, and a
        # MemoryError before the SYN is out takes it out again (its port, its rings)
        tcb = None
        try:
            tcb = Tcb(self, laddr, lport, bytes(raddr), rport, bytes(next_hop), rx_size or 0, tx_size or 0)
            # the send base is the ISS (relative 0)
            iss = self.isn.isn(laddr, lport, raddr, rport)
            tcb.iss = iss
            tcb.s_bhi = iss >> 16
            tcb.s_blo = iss & 0xFFFF
            tcb.s_una = 0
            tcb.s_nxt = 1
            tcb.s_max = 1
            tcb.s_sml = 1
            tcb.s_recover = 0  # RFC 6582 3.2
            tcb._th_bases()
            tcb.connect_start = s.now
            tcb.state = SYN_SENT
            self.tcbs.append(tcb)
            set_timer(tcb, tcb.rto)
            trace(tcb, "connect", None)
            tcp_out.send_syn(tcb)
        except MemoryError:
            if tcb is not None:
                tcb.orphan = True
                done(tcb, 0)  # out of the table, the rings back to the pool
            raise OSError(errors.ENOMEM, "out of memory in connect()")
        return tcb

    # -- input -----------------------------------------------------------------------------------
    def input(self, buf, ip_off, off, n):
        """A TCP segment (n bytes from buf[off]) inside an IPv4 packet at buf[ip_off]."""
        c = self.stack.cnt
        c[_TCP_RX] += 1
        if n < 20:
            c[_TCP_DROP_SHORT] += 1
            return
        hl = (buf[off + 12] >> 4) * 4
        if hl < 20 or hl > n:
            c[_TCP_DROP_BAD_HEADER_LEN] += 1
            return
        acc = pseudo_sum(buf, ip_off + 12, buf, ip_off + 16, _PROTO_TCP, n)
        if checksum(buf, off, off + n, acc) != 0:
            c[_TCP_DROP_BAD_CHECKSUM] += 1
            return
        if buf[off] == 0 and buf[off + 1] == 0 or buf[off + 2] == 0 and buf[off + 3] == 0:
            c[_TCP_DROP_BAD_PORT] += 1
            return
        tcb = self.find(buf, ip_off, off)
        if tcb is None:
            if self.tw_n:
                i = self.tw_index(buf, ip_off + 16, buf[off + 2] << 8 | buf[off + 3],
                                  buf, ip_off + 12, buf[off] << 8 | buf[off + 1])
                if i >= 0:
                    x = self._listener(buf, ip_off, off) if self.listeners else None
                    if x is None or not x.takes_tw_syn(self.tw, i * _TW_LEN, buf, off):
                        call("tcpip.cold", "tw_input", self, i, buf, ip_off, off, hl, n - hl)
                        return
                    self.tw_drop(i)  # a new connection from the same 4-tuple (Linux TCP_TW_SYN)
            if self.listeners:
                x = self._listener(buf, ip_off, off)
                if x is not None:
                    x.input(buf, ip_off, off, hl, n - hl)
                    return
            self._no_socket(buf, ip_off, off, hl, n - hl)
            return
        tcp_in.input(tcb, buf, ip_off, off, hl, n - hl)
        if (tcb.state == ESTABLISHED and not tcb.ooo_n and not tcb.ooo_fin and not tcb.orphan
                and tcb.th_gen != -1 and self.config.header_prediction
                and tcb.r_nxt <= tcb.rebase_at and tcb.s_una <= tcb.rebase_at):
            self.hot = tcb  # its next in-order segment takes the fast path (tcp_in.fast_input)
        elif self.hot is tcb:
            self.hot = None  # out-of-order data held, closing, ...: the full path only

    def _no_socket(self, buf, ip_off, off, hl, plen):
        """RFC 9293 3.10.7.1: a segment for no connection gets a RST, unless it is one."""
        c = self.stack.cnt
        flags = buf[off + 13]
        if flags & _RST:
            c[_TCP_NO_SOCKET_RST_DROPPED] += 1
            return
        c[_TCP_NO_SOCKET_RST_SENT] += 1
        seg_len = plen
        if flags & _SYN:
            seg_len += 1
        if flags & _FIN:
            seg_len += 1
        tcp_out.reset_for(self.stack, buf, ip_off, off, seg_len)

    # -- timers ----------------------------------------------------------------------------------
    def poll(self, now):
        if self.tw_n and ticks_diff(now, self.tw_next) >= 0:
            self._tw_expire(now)
        if self.listeners:
            for x in self.listeners:
                if x.syn_n and ticks_diff(now, x.syn_next) >= 0:
                    x.poll(now)
        tcbs = self.tcbs
        n = len(tcbs)
        i = 0
        while i < n:
            t = tcbs[i]
            if t.timer_on or t.delack_on or t.aux_on:
                if t.delack_on and ticks_diff(now, t.delack_deadline) >= 0:
                    tcp_timer.on_delack(t)
                if t.timer_on and ticks_diff(now, t.deadline) >= 0:
                    tcp_timer.on_timer(t)
                if t.aux_on and ticks_diff(now, t.aux_deadline) >= 0:
                    call("tcpip.cold", "on_aux", t)  # keep-alive, orphan FIN-WAIT-2 (rare)
                n = len(tcbs)
                if i < n and tcbs[i] is not t:
                    continue  # t left the table
            i += 1

    def next_deadline(self, now, best):
        if self.tw_n:
            d = ticks_diff(self.tw_next, now)
            if d < best:
                best = d
        if self.listeners:
            for x in self.listeners:
                if x.syn_n:
                    d = ticks_diff(x.syn_next, now)
                    if d < best:
                        best = d
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
