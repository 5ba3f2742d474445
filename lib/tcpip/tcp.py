"""TCP: the connection table, the client side of the handshake, and a minimal data path.

The connect path follows Linux (tcp_v4_connect -> __inet_hash_connect -> tcp_connect): route and
source address, an ephemeral port unique in its 4-tuple (ports.py), an RFC 6528 ISN (isn.py), a SYN
carrying our MSS, and the SYN retransmit timer (RTO 1 s doubling, syn_retries then ETIMEDOUT).
Segment arrival follows RFC 9293 3.10.7. Data: in-order only, go-back-N retransmission from the
send ring; windows, congestion control and the rest of the socket API arrive with the next issue.

Sequence numbers are plain ints mod 2**32 compared with wire.tcp.seq_* helpers. Per-segment code
indexes buffers and allocates nothing on the unix port (ints above 2**30 are heap objects on a
32-bit MicroPython port: a known cost of 32-bit sequence numbers there).
"""
from tcpip import errors
from tcpip import mem
from tcpip.checksum import checksum, pseudo_sum
from tcpip.clock import ticks_add, ticks_diff
from tcpip.ports import PortAllocator
from tcpip.isn import IsnGenerator
from tcpip.wire import tcp as wtcp
from tcpip.wire.tcp import seq_add, seq_diff, seq_lt, seq_le, seq_gt, seq_ge

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

DEFAULT_MSS = const(536)  # RFC 9293 3.7.1 / RFC 6691: assumed until the peer's SYN says otherwise
RTO_FALLBACK_MS = const(3000)  # RFC 6298 5.7


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
        self.rto_min_ms = 200           # TCP_RTO_MIN
        self.rto_max_ms = 120000        # TCP_RTO_MAX
        self.data_retries = 15          # net.ipv4.tcp_retries2
        self.time_wait_ms = 60000       # TCP_TIMEWAIT_LEN (2*MSL)
        self.time_wait_reuse_ms = 1000  # tcp_tw_reuse: a TIME-WAIT 4-tuple is reusable after 1 s
        self.rx_buffer = 2048
        self.tx_buffer = 2048
        self.port_low = 32768           # net.ipv4.ip_local_port_range
        self.port_high = 60999
        for k in kw:
            if not hasattr(self, k):
                raise TypeError("unknown TCP option %r" % k)
            setattr(self, k, kw[k])
        if self.syn_retries < 0 or self.syn_retries > 127:
            raise ValueError("syn_retries must be 0..127")
        if not 1 <= self.rto_initial_ms <= self.rto_max_ms:
            raise ValueError("need 1 <= rto_initial_ms <= rto_max_ms")
        if not 0 < self.rx_buffer <= 65535 or not 0 < self.tx_buffer <= 65535:
            raise ValueError("buffer sizes must be 1..65535")


class Tcb:
    """One connection's transmission control block (RFC 9293 3.3.1)."""

    def __init__(self, tcp, local_addr, local_port, remote_addr, remote_port, next_hop):
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
        # send side (RFC 9293 3.3.1)
        self.iss = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.mss = DEFAULT_MSS
        self.adv_mss = self.stack.mtu - 40
        self.tx = bytearray(cfg.tx_buffer)
        self.tx_head = 0  # ring index of the byte at snd_una
        self.tx_len = 0   # bytes in the ring: unacknowledged + unsent
        self.fin_pending = False  # the application closed its sending side
        self.fin_sent = False     # our FIN occupies snd_nxt - 1
        # receive side
        self.irs = 0
        self.rcv_nxt = 0
        self.rx = bytearray(cfg.rx_buffer)
        self.rx_head = 0
        self.rx_len = 0
        self.fin_received = False
        self.last_wnd = 0  # window we last advertised
        # timers (RFC 6298)
        self.rto = cfg.rto_initial_ms
        self.srtt = 0  # 0 = no sample yet
        self.rttvar = 0
        self.retries = 0
        self.timer_on = False
        self.deadline = 0
        self.rtt_timing = False  # Karn: time one segment that is never retransmitted
        self.rtt_seq = 0
        self.rtt_start = 0
        self.time_wait_start = 0
        # what the CLI's timeline shows (appended only at connect time, never per data segment)
        self.connect_start = 0
        self.syn_times = []
        self.first_rtt_ms = -1

    # -- helpers ---------------------------------------------------------------------------------
    def state_name(self):
        return STATE_NAMES[self.state]

    def rx_window(self):
        free = len(self.rx) - self.rx_len
        return free if free < 65535 else 65535

    def _set_timer(self, ms):
        self.timer_on = True
        self.deadline = ticks_add(self.stack.now, ms)

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
        """Build and send one segment; data comes from the send ring at data_off past snd_una."""
        s = self.stack
        f = s.tx
        hl = 24 if flags & _SYN else 20
        wnd = self.rx_window()
        self.last_wnd = wnd
        ack = self.rcv_nxt if flags & _ACK else 0
        wtcp.emit_header(f, _L4, self.local_port, self.remote_port, seq, ack, flags, wnd, hl)
        if flags & _SYN:
            # MSS option (RFC 9293 3.7.1): what our interface MTU allows
            m = self.adv_mss
            f[_L4 + 20] = 2
            f[_L4 + 21] = 4
            f[_L4 + 22] = (m >> 8) & 0xFF
            f[_L4 + 23] = m & 0xFF
        if data_len:
            ring_read(f, _L4 + hl, self.tx, (self.tx_head + data_off) % len(self.tx), data_len)
        n = hl + data_len
        acc = pseudo_sum(self.local_addr, 0, self.remote_addr, 0, _PROTO_TCP, n)
        cs = checksum(f, _L4, _L4 + n, acc)
        f[_L4 + 16] = cs >> 8
        f[_L4 + 17] = cs & 0xFF
        s.counters.tcp_tx += 1
        s.ip_output(self.remote_addr, 0, self.local_addr, 0, _PROTO_TCP, n)

    def send_ack(self):
        self._emit(self.snd_nxt, _ACK, 0, 0)

    def _send_syn(self):
        s = self.stack
        self.syn_times.append(ticks_diff(s.now, self.connect_start))
        if self.state == SYN_SENT:
            self._emit(self.iss, _SYN, 0, 0)
        else:
            self._emit(self.iss, _SYN | _ACK, 0, 0)
        s.counters.tcp_syn_sent += 1
        self._trace("syn", len(self.syn_times))

    def output(self):
        """Send what the peer's window allows; the FIN once all data has gone. Returns segments sent."""
        st = self.state
        if st != ESTABLISHED and st != CLOSE_WAIT and st != FIN_WAIT_1 and st != CLOSING and st != LAST_ACK:
            return 0
        sent = 0
        for _ in range(64):  # bounded: at most 64 segments per call
            flight = seq_diff(self.snd_nxt, self.snd_una)
            data_sent = flight - 1 if self.fin_sent else flight
            unsent = self.tx_len - data_sent
            usable = self.snd_wnd - flight
            n = unsent
            if n > self.mss:
                n = self.mss
            if n > usable:
                n = usable
            if n > 0:
                flags = _ACK | _PSH if n == unsent else _ACK
                if n == unsent and self.fin_pending and not self.fin_sent:
                    flags |= _FIN  # piggyback the FIN on the last data segment
                self._emit(self.snd_nxt, flags, data_sent, n)
                self.stack.counters.tcp_tx_bytes += n
                if not self.rtt_timing:
                    self.rtt_timing = True
                    self.rtt_seq = seq_add(self.snd_nxt, n)
                    self.rtt_start = self.stack.now
                self.snd_nxt = seq_add(self.snd_nxt, n)
                if flags & _FIN:
                    self._fin_out()
                if not self.timer_on:
                    self._set_timer(self.rto)
                sent += 1
                continue
            if unsent == 0 and self.fin_pending and not self.fin_sent:
                self._emit(self.snd_nxt, _FIN | _ACK, data_sent, 0)
                self._fin_out()
                if not self.timer_on:
                    self._set_timer(self.rto)
                sent += 1
            elif unsent > 0 and flight == 0 and not self.timer_on:
                # zero window with data waiting: the persist timer probes it (RFC 9293 3.8.6.1)
                self._set_timer(self.rto)
            break
        return sent

    def _fin_out(self):
        self.snd_nxt = seq_add(self.snd_nxt, 1)
        self.fin_sent = True
        if self.state == ESTABLISHED:
            self._set_state(FIN_WAIT_1)
        elif self.state == CLOSE_WAIT:
            self._set_state(LAST_ACK)

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
        flight = seq_diff(self.snd_nxt, self.snd_una)
        if flight == 0:
            if self.tx_len > 0 and self.snd_wnd == 0:
                # persist: probe a zero window with one byte beyond it
                self._emit(self.snd_nxt, _ACK, 0, 1)
                self.snd_nxt = seq_add(self.snd_nxt, 1)
                self.rto = min(self.rto * 2, cfg.rto_max_ms)
                self._set_timer(self.rto)
            return
        if self.retries >= cfg.data_retries:
            c.tcp_data_timeout += 1
            self._abort_with_rst(errors.ETIMEDOUT)
            return
        self.retries += 1
        self.rto = min(self.rto * 2, cfg.rto_max_ms)
        self.rtt_timing = False
        c.tcp_rexmit += 1
        # go-back-N from snd_una (RFC 6298 5.4: retransmit the earliest unacknowledged segment)
        self.snd_nxt = self.snd_una
        self.fin_sent = False
        self.output()
        if not self.timer_on:
            self._set_timer(self.rto)

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
        self._set_state(CLOSED)
        self.tcp.remove(self)

    def fail(self, err):
        self._done(err)

    def _abort_with_rst(self, err):
        if self.state != SYN_SENT and self.state != CLOSED:
            self._emit(self.snd_nxt, _RST | _ACK, 0, 0)
        self._done(err)

    def abort(self):
        """Abort (RFC 9293 3.10.5): RST when synchronized; the socket sees no error."""
        if self.state != CLOSED:
            self._abort_with_rst(0)

    def _enter_time_wait(self):
        self._set_state(TIME_WAIT)
        self.time_wait_start = self.stack.now
        self._set_timer(self.tcp.config.time_wait_ms)

    # -- user calls ------------------------------------------------------------------------------
    def send(self, data, off, n):
        """Queue up to n bytes of data[off:]; returns how many fit in the send ring."""
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
        # window update when the window opened by at least an MSS or half the buffer (RFC 9293 3.8.6.2.2)
        st = self.state
        if st == ESTABLISHED or st == FIN_WAIT_1 or st == FIN_WAIT_2:
            grown = self.rx_window() - self.last_wnd
            if grown >= self.adv_mss or grown >= len(self.rx) // 2:
                self.stack.now = self.stack.clock.ticks_ms()
                self.send_ack()
        return n

    def shutdown_write(self):
        st = self.state
        if st == ESTABLISHED or st == CLOSE_WAIT or st == SYN_RECEIVED:
            self.fin_pending = True
            self.stack.now = self.stack.clock.ticks_ms()
            self.output()

    def close(self):
        """Application close: FIN after queued data; RST if received data was left unread
        (RFC 2525 2.17, as Linux tcp_close); in SYN-SENT just forget the connection."""
        st = self.state
        self.stack.now = self.stack.clock.ticks_ms()
        if st == SYN_SENT:
            self._done(0)
        elif st == ESTABLISHED or st == CLOSE_WAIT or st == SYN_RECEIVED:
            if self.rx_len > 0:
                self.abort()
            else:
                self.shutdown_write()

    # -- input (RFC 9293 3.10.7) -----------------------------------------------------------------
    def input(self, buf, ip_off, off, hl, plen):
        """A segment for this connection: TCP header at buf[off], hl header bytes, plen payload bytes."""
        if self.state == SYN_SENT:
            self._input_syn_sent(buf, ip_off, off, hl, plen)
        else:
            self._input_synchronized(buf, ip_off, off, hl, plen)

    def _input_syn_sent(self, buf, ip_off, off, hl, plen):
        """RFC 9293 3.10.7.3."""
        c = self.stack.counters
        flags = buf[off + 13]
        seq = wtcp.get_seq(buf, off)
        ack = wtcp.get_ack(buf, off)
        if flags & _ACK:
            # first: SEG.ACK =< ISS or SEG.ACK > SND.NXT is unacceptable
            if seq_le(ack, self.iss) or seq_gt(ack, self.snd_nxt):
                if flags & _RST:
                    c.tcp_syn_sent_bad_ack_dropped += 1
                else:
                    c.tcp_syn_sent_bad_ack_rst_sent += 1
                    self.tcp.send_reset_for(buf, ip_off, off, ack, 0, _RST)
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
        self.irs = seq
        self.rcv_nxt = seq_add(seq, 1)
        mss = wtcp.get_mss_option(buf, off, hl)
        if mss:
            self.mss = mss if mss < self.adv_mss else self.adv_mss
        self.snd_wnd = wtcp.get_window(buf, off)
        self.snd_wl1 = seq
        self.snd_wl2 = ack
        if flags & _ACK:
            self.snd_una = ack
            self.retries = 0
            self.timer_on = False
            now = self.stack.now
            if len(self.syn_times) == 1:
                # Karn's rule: only a SYN that was sent once gives an RTT sample
                r = ticks_diff(now, self.connect_start)
                self.first_rtt_ms = r
                self._rtt_sample(r)
            elif self.rto < RTO_FALLBACK_MS:
                self.rto = RTO_FALLBACK_MS  # RFC 6298 5.7
            self.stack.counters.tcp_established += 1
            self._set_state(ESTABLISHED)
            # data on the SYN-ACK is accepted like any in-order data (RFC 9293 3.10.7.3, sixth)
            if plen:
                self._take_data(buf, off + hl, plen)
            if flags & _FIN and self.rcv_nxt == seq_add(seq, 1 + plen):
                self.rcv_nxt = seq_add(self.rcv_nxt, 1)
                self.fin_received = True
                self._set_state(CLOSE_WAIT)
            if self.output() == 0:
                self.send_ack()
        else:
            # simultaneous open (RFC 9293 3.10.7.3, fourth, SYN without ACK)
            c.tcp_simultaneous_open += 1
            self._set_state(SYN_RECEIVED)
            self._emit(self.iss, _SYN | _ACK, 0, 0)
            self._set_timer(self.rto)

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
        self.rcv_nxt = seq_add(self.rcv_nxt, n)
        self.stack.counters.tcp_rx_bytes += n
        return n

    def _input_synchronized(self, buf, ip_off, off, hl, plen):
        """RFC 9293 3.10.7.4 for SYN-RECEIVED and every later state."""
        c = self.stack.counters
        flags = buf[off + 13]
        seq = wtcp.get_seq(buf, off)
        seg_len = plen
        if flags & _SYN:
            seg_len += 1
        if flags & _FIN:
            seg_len += 1
        wnd = len(self.rx) - self.rx_len
        # first: sequence number acceptability (four cases), with the zero-window allowance
        rcv_nxt = self.rcv_nxt
        if seq == rcv_nxt:
            ok = True
        elif wnd == 0:
            ok = False
        else:
            d = seq_diff(seq, rcv_nxt)
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
                c.tcp_challenge_ack_sent += 1
                self.send_ack()
            else:
                c.tcp_rst_blind_dropped += 1
            return
        if not ok:
            c.tcp_drop_out_of_window += 1
            self.send_ack()
            if self.state == TIME_WAIT and flags & _FIN:
                # the peer's FIN again: ACKed above, and 2 MSL starts over (RFC 9293 3.10.7.4)
                self._set_timer(self.tcp.config.time_wait_ms)
            return
        if flags & _SYN:
            # fourth: SYN in a synchronized state -> challenge ACK (RFC 5961 4.2)
            if self.state == SYN_RECEIVED and seq == self.irs:
                self._emit(self.iss, _SYN | _ACK, 0, 0)  # our SYN-ACK was lost: resend it
                return
            c.tcp_challenge_ack_sent += 1
            self.send_ack()
            return
        if not flags & _ACK:
            c.tcp_drop_no_ack += 1
            return
        ack = wtcp.get_ack(buf, off)
        # fifth: the ACK field
        if self.state == SYN_RECEIVED:
            if seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_nxt):
                self.snd_wnd = wtcp.get_window(buf, off)
                self.snd_wl1 = seq
                self.snd_wl2 = ack
                self.timer_on = False
                if self.retries and self.rto < RTO_FALLBACK_MS:
                    self.rto = RTO_FALLBACK_MS
                self.retries = 0
                self.snd_una = ack
                c.tcp_established += 1
                self._set_state(ESTABLISHED)
            else:
                self.tcp.send_reset_for(buf, ip_off, off, ack, 0, _RST)
                return
        elif seq_gt(ack, self.snd_nxt):
            c.tcp_ack_unsent_data += 1
            self.send_ack()
            return
        elif seq_lt(self.snd_una, ack):
            self._ack_advanced(ack)
            if self.state == CLOSED:
                return
        # send window update (RFC 9293 3.10.7.4, fifth, ESTABLISHED)
        if seq_lt(self.snd_wl1, seq) or (self.snd_wl1 == seq and seq_le(self.snd_wl2, ack)):
            self.snd_wnd = wtcp.get_window(buf, off)
            self.snd_wl1 = seq
            self.snd_wl2 = ack
        st = self.state
        if st == TIME_WAIT:
            return
        need_ack = False
        # seventh: segment text, trimmed to what is new (RFC 9293 3.10.7.4)
        if plen and (st == ESTABLISHED or st == FIN_WAIT_1 or st == FIN_WAIT_2):
            d = seq_diff(self.rcv_nxt, seq)  # bytes already received
            if d < 0:
                c.tcp_drop_out_of_order += 1
                self.send_ack()  # out of order: duplicate ACK, keep nothing (reassembly: next issue)
                return
            if d < plen:
                self._take_data(buf, off + hl + d, plen - d)
            need_ack = True
        # eighth: FIN, once everything before it has arrived
        if flags & _FIN and seq_add(seq, plen) == self.rcv_nxt and not self.fin_received:
            self.rcv_nxt = seq_add(self.rcv_nxt, 1)
            self.fin_received = True
            need_ack = True
            st = self.state
            if st == ESTABLISHED or st == SYN_RECEIVED:
                self._set_state(CLOSE_WAIT)
            elif st == FIN_WAIT_1:
                self._set_state(CLOSING)
            elif st == FIN_WAIT_2:
                self.send_ack()
                self._enter_time_wait()
                return
        elif flags & _FIN and self.fin_received:
            need_ack = True  # a retransmitted FIN: ACK again
        if self.output() == 0 and need_ack:
            self.send_ack()

    def _ack_advanced(self, ack):
        """SND.UNA < SEG.ACK =< SND.NXT: drop acknowledged bytes, time RTT, manage the timer."""
        acked = seq_diff(ack, self.snd_una)
        fin_acked = self.fin_sent and ack == self.snd_nxt
        data = acked - 1 if fin_acked else acked
        if data > self.tx_len:
            data = self.tx_len
        self.tx_head = (self.tx_head + data) % len(self.tx)
        self.tx_len -= data
        self.snd_una = ack
        self.retries = 0
        if self.rtt_timing and seq_ge(ack, self.rtt_seq):
            self.rtt_timing = False
            self._rtt_sample(ticks_diff(self.stack.now, self.rtt_start))
        if self.snd_una == self.snd_nxt:
            self.timer_on = False
        else:
            self._set_timer(self.rto)
        if fin_acked:
            st = self.state
            if st == FIN_WAIT_1:
                self._set_state(FIN_WAIT_2)
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
    def connect(self, bound_addr, bound_port, raddr, rport):
        """Start an active open to raddr:rport; returns the Tcb in SYN-SENT or raises OSError."""
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
        tcb = Tcb(self, laddr, lport, bytes(raddr), rport, bytes(next_hop))
        tcb.iss = self.isn.isn(laddr, lport, raddr, rport)
        tcb.snd_una = tcb.iss
        tcb.snd_nxt = seq_add(tcb.iss, 1)
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
        if flags & _ACK:
            self.send_reset_for(buf, ip_off, off, wtcp.get_ack(buf, off), 0, _RST)
        else:
            seg_len = plen
            if flags & _SYN:
                seg_len += 1
            if flags & _FIN:
                seg_len += 1
            self.send_reset_for(buf, ip_off, off, 0, seq_add(wtcp.get_seq(buf, off), seg_len), _RST | _ACK)

    def send_reset_for(self, buf, ip_off, off, seq, ack, flags):
        """Answer the segment at buf[off] with a RST built from its own addresses and ports."""
        s = self.stack
        f = s.tx
        sport = buf[off + 2] << 8 | buf[off + 3]
        dport = buf[off] << 8 | buf[off + 1]
        wtcp.emit_header(f, _L4, sport, dport, seq, ack, flags, 0, 20)
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
            if wtcp.get_seq(buf, t) != tcb.snd_una:
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
            if t.timer_on and ticks_diff(now, t.deadline) >= 0:
                t.on_timer()
                if i < len(self.tcbs) and self.tcbs[i] is not t:
                    continue  # t left the table
            i += 1

    def next_deadline(self, now, best):
        for t in self.tcbs:
            if t.timer_on:
                d = ticks_diff(t.deadline, now)
                if d < best:
                    best = d
        return best
