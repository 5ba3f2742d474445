"""Passive open (RFC 9293 3.5, 3.10.7.2 LISTEN, 3.10.7.4 SYN-RECEIVED), as Linux's listening
socket does it: loaded when something listens (Tcp.listen), so a client-only board never carries it.

A Listener answers SYNs for its port. A half-open connection is a 24-byte record, not a Tcb (Linux's
request_sock): the peer's address and port, our address, the peer's MSS, our ISS, its IRS, whether
SACK is permitted, the SYN-ACK retries; its deadline beside it. The SYN-ACK goes again after 1 s,
doubling, `synack_retries` times (net.ipv4.tcp_synack_retries), then the record goes. At most
`syn_backlog` records (net.ipv4.tcp_max_syn_backlog); past that, SYN cookies (RFC 4987, Linux
tcp_syncookies = 1: only when the queue is full): the SYN-ACK's ISS carries the peer's MSS class and
a keyed hash, and an ACK that returns a valid one makes the connection without any record, so a
flood of spoofed SYNs can fill neither memory nor the queue. A connection is made (a Tcb, its rings)
only when the handshake completes with an acceptable ACK; it waits in the accept queue (at most
`backlog`) until accept() takes it. With the queue full, SYNs are dropped and so are ACKs that
would complete a handshake (Linux, tcp_abort_on_overflow = 0): the peer retries.
"""
import hashlib
import os

from tcpip import mem
from tcpip.checksum import checksum, pseudo_sum
from tcpip.clock import ticks_add, ticks_diff
from tcpip.tcp import Tcb
from tcpip.tcp_core import SYN_RECEIVED, CLOSED, done
from tcpip import tcp_in
from tcpip import tcp_out
from tcpip import tcp_timer
from tcpip.wire.tcp import emit_header, get_mss_option, get_seq, has_sack_permitted, seq_gt

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_TCP_TX = const(35)
_TCP_ACK_RATELIMITED = const(75)
_TCP_CONN_LIMIT = const(93)
_TCP_PASSIVE_OPEN = const(96)
_TCP_SYNACK_RETRANSMIT = const(97)
_TCP_SYNACK_TIMEOUT = const(98)
_TCP_LISTEN_OVERFLOW = const(99)
_TCP_SYNCOOKIES_SENT = const(100)
_TCP_SYNCOOKIES_OK = const(101)
_TCP_SYNCOOKIES_FAILED = const(102)
_TCP_LISTEN_RST_SENT = const(103)

_FIN = const(1)
_SYN = const(2)
_RST = const(4)
_ACK = const(16)
_PROTO_TCP = const(6)
_L4 = const(34)      # TCP header offset in the stack's transmit buffer (tcpip.tcp_out)
_REC = const(24)     # a half-open record: raddr 4, laddr 4, rport 2, MSS 2, ISS 4, IRS 4, flags 1,
                     # retries 1, spare 2
_MIN_SND_MSS = const(48)  # Linux net.ipv4.tcp_min_snd_mss (tcpip.tcp_in)
# the MSS a SYN cookie can carry (2 bits), as Linux's msstab: the largest not above the peer's
_COOKIE_MSS = (536, 1220, 1440, 1460)


class Listener:
    """A listening port: Tcp.listen(addr, port, backlog, rx_size, tx_size) makes one."""

    def __init__(self, tcp, addr, port, backlog, rx_size, tx_size):
        cfg = tcp.config
        self.tcp = tcp
        self.stack = tcp.stack
        self.addr = addr  # 4 bytes, or None: any of ours
        self.port = port
        self.backlog = backlog if backlog > 0 else 1
        self.rx_size = rx_size or cfg.rx_buffer
        self.tx_size = tx_size or cfg.tx_buffer
        self.queue = []  # connections whose handshake completed, oldest first: accept() takes them
        n = cfg.syn_backlog
        self.syn = bytearray(n * _REC)
        self.syn_dl = [0] * n
        self.syn_n = 0
        self.syn_next = 0  # no record is due before this
        self.secret = os.urandom(16)  # the SYN cookies' key
        self.cookie_at = -1  # the cookie clock when cookies were last sent (-1: never)
        self.dup_at = 0  # when a duplicate SYN was last answered (0: never)

    # -- the records --------------------------------------------------------------------------------
    def _find(self, buf, ip_off, sport):
        syn = self.syn
        k = 0
        for i in range(self.syn_n):
            if ((syn[k + 8] << 8 | syn[k + 9]) == sport and mem.equal(syn, k, buf, ip_off + 12, 4)
                    and mem.equal(syn, k + 4, buf, ip_off + 16, 4)):
                return i
            k += _REC
        return -1

    def _drop(self, i):
        n = self.syn_n - 1
        if i != n:
            mem.copy(self.syn, i * _REC, self.syn, n * _REC, _REC)
            self.syn_dl[i] = self.syn_dl[n]
        self.syn_n = n

    def _window(self):
        w = self.rx_size
        return w if w < 65535 else 65535

    def _synack(self, la, lo, ra, ro, rport, iss, irs, sack):
        """<SEQ=ISS><ACK=IRS+1><CTL=SYN,ACK> with our MSS (and SACK-permitted if the peer's SYN
        had it), from la[lo:lo+4] to ra[ro:ro+4]:rport."""
        s = self.stack
        f = s.tx
        hl = 28 if sack else 24
        emit_header(f, _L4, self.port, rport, iss, (irs + 1) & 0xFFFFFFFF, _SYN | _ACK, self._window(), hl)
        m = s.mtu - 40
        f[_L4 + 20] = 2
        f[_L4 + 21] = 4
        f[_L4 + 22] = m >> 8
        f[_L4 + 23] = m & 0xFF
        if sack:
            f[_L4 + 24] = 1
            f[_L4 + 25] = 1
            f[_L4 + 26] = 4
            f[_L4 + 27] = 2
        cs = checksum(f, _L4, _L4 + hl, pseudo_sum(la, lo, ra, ro, _PROTO_TCP, hl))
        f[_L4 + 16] = cs >> 8
        f[_L4 + 17] = cs & 0xFF
        s.cnt[_TCP_TX] += 1
        s.ip_output(ra, ro, la, lo, _PROTO_TCP, hl)

    def _resend(self, i):
        syn = self.syn
        k = i * _REC
        self._synack(syn, k + 4, syn, k, syn[k + 8] << 8 | syn[k + 9],
                     int.from_bytes(syn[k + 12:k + 16], "big"), int.from_bytes(syn[k + 16:k + 20], "big"),
                     syn[k + 20] & 1)

    # -- SYN cookies (RFC 4987) ---------------------------------------------------------------------
    def _clock(self):
        """The cookie clock: 64-second steps (2**16 ms) of the ISN generator's extended count."""
        isn = self.tcp.isn
        isn.advance()
        return (isn._ext_ms >> 16) & 0xFF

    def _cookie(self, buf, ip_off, sport, irs, count, mi):
        """ISS = count (8 bits) | MSS class (2 bits) | 22 bits of SHA-256 over the key, the
        4-tuple, the peer's ISN, the count and the class."""
        h = hashlib.sha256(self.secret)
        h.update(bytes(buf[ip_off + 12:ip_off + 20]))
        h.update(bytes((sport >> 8, sport & 0xFF, self.port >> 8, self.port & 0xFF, count, mi,
                        irs >> 24, (irs >> 16) & 0xFF, (irs >> 8) & 0xFF, irs & 0xFF)))
        d = h.digest()
        return count << 24 | mi << 22 | (d[0] & 0x3F) << 16 | d[1] << 8 | d[2]

    # -- arriving segments (Tcp.input: no connection and no TIME-WAIT matched) -----------------------
    def input(self, buf, ip_off, off, hl, plen):
        s = self.stack
        c = s.cnt
        flags = buf[off + 13]
        sport = buf[off] << 8 | buf[off + 1]
        i = self._find(buf, ip_off, sport)
        if flags & _RST:
            # RFC 9293 3.10.7.4 SYN-RECEIVED, passive: a RST in window returns to LISTEN (the
            # record goes); any other RST, and one for no record, is dropped
            if i >= 0 and get_seq(buf, off) == (int.from_bytes(self.syn[i * _REC + 16:i * _REC + 20], "big") + 1) & 0xFFFFFFFF:
                self._drop(i)
            return
        if flags & _SYN:
            if flags & _ACK:
                self._reset(buf, ip_off, off, plen, flags)  # RFC 9293 3.10.7.2: an ACK in LISTEN
                return
            irs = get_seq(buf, off)
            if i >= 0:
                k = i * _REC
                if irs == int.from_bytes(self.syn[k + 16:k + 20], "big"):
                    # the peer's SYN again: our SYN-ACK was lost. Answered at most once per
                    # invalid_ratelimit_ms for the listener (Linux tcp_check_req rate-limits
                    # these with tcp_oow_rate_limited), so repeated SYNs cannot make us a
                    # SYN-ACK amplifier
                    now = s.now
                    if self.dup_at and ticks_diff(now, self.dup_at) < self.tcp.config.invalid_ratelimit_ms:
                        c[_TCP_ACK_RATELIMITED] += 1
                        return
                    self.dup_at = now or 1
                    self._resend(i)
                return
            if len(self.queue) >= self.backlog:
                c[_TCP_LISTEN_OVERFLOW] += 1  # Linux drops SYNs while the accept queue is full
                return
            mss = get_mss_option(buf, off, hl) or 536  # RFC 9293 3.7.1: 536 when absent
            if mss < _MIN_SND_MSS:
                mss = _MIN_SND_MSS
            sack = has_sack_permitted(buf, off, hl)
            if self.syn_n >= len(self.syn_dl):
                if not self.tcp.config.syncookies:
                    c[_TCP_LISTEN_OVERFLOW] += 1
                    return
                # the half-open queue is full: a SYN cookie, and nothing kept (no SACK: there is
                # nowhere to keep that it was permitted)
                mi = 3
                while mi and _COOKIE_MSS[mi] > mss:
                    mi -= 1
                count = self._clock()
                self.cookie_at = count
                c[_TCP_SYNCOOKIES_SENT] += 1
                self._synack(buf, ip_off + 16, buf, ip_off + 12, sport,
                             self._cookie(buf, ip_off, sport, irs, count, mi), irs, False)
                return
            n = self.syn_n
            k = n * _REC
            syn = self.syn
            mem.copy(syn, k, buf, ip_off + 12, 4)
            mem.copy(syn, k + 4, buf, ip_off + 16, 4)
            syn[k + 8] = sport >> 8
            syn[k + 9] = sport & 0xFF
            syn[k + 10] = mss >> 8
            syn[k + 11] = mss & 0xFF
            iss = self.tcp.isn.isn(syn[k + 4:k + 8], self.port, syn[k:k + 4], sport)
            syn[k + 12] = iss >> 24
            syn[k + 13] = (iss >> 16) & 0xFF
            syn[k + 14] = (iss >> 8) & 0xFF
            syn[k + 15] = iss & 0xFF
            mem.copy(syn, k + 16, buf, off + 4, 4)
            syn[k + 20] = 1 if sack else 0
            syn[k + 21] = 0
            now = s.now
            dl = ticks_add(now, self.tcp.config.rto_initial_ms)
            self.syn_dl[n] = dl
            if n == 0 or ticks_diff(dl, self.syn_next) < 0:
                self.syn_next = dl
            self.syn_n = n + 1
            self._synack(syn, k + 4, syn, k, sport, iss, irs, sack)
            return
        if not flags & _ACK:
            return  # neither SYN, RST nor ACK: nothing to answer in LISTEN (RFC 9293 3.10.7.2)
        ack = get_seq(buf, off + 4)  # SEG.ACK
        if i >= 0:
            k = i * _REC
            syn = self.syn
            iss = int.from_bytes(syn[k + 12:k + 16], "big")
            irs = int.from_bytes(syn[k + 16:k + 20], "big")
            if ack != (iss + 1) & 0xFFFFFFFF or get_seq(buf, off) != (irs + 1) & 0xFFFFFFFF:
                if ack != (iss + 1) & 0xFFFFFFFF:
                    self._reset(buf, ip_off, off, plen, flags)  # RFC 9293 3.10.7.4: <SEQ=SEG.ACK><RST>
                return
            mss = syn[k + 10] << 8 | syn[k + 11]
            sack = syn[k + 20] & 1
            retries = syn[k + 21]
            # the handshake's RTT when the SYN-ACK went once (Karn): it left rto_initial before
            # the deadline
            rtt = -1
            if not retries:
                rtt = ticks_diff(s.now, ticks_add(self.syn_dl[i], -self.tcp.config.rto_initial_ms))
            if self._complete(buf, ip_off, off, hl, plen, iss, irs, mss, sack, rtt):
                self._drop(i)
            return
        # no record: a SYN cookie's ACK, if cookies went out lately
        if self.cookie_at >= 0:
            irs = (get_seq(buf, off) - 1) & 0xFFFFFFFF
            cookie = (ack - 1) & 0xFFFFFFFF
            count = cookie >> 24
            if (self._clock() - count) & 0xFF <= 1 and (self.cookie_at - count) & 0xFF <= 1:
                mi = (cookie >> 22) & 3
                if self._cookie(buf, ip_off, sport, irs, count, mi) == cookie:
                    c[_TCP_SYNCOOKIES_OK] += 1
                    self._complete(buf, ip_off, off, hl, plen, cookie, irs, _COOKIE_MSS[mi], False, -1)
                    return
            c[_TCP_SYNCOOKIES_FAILED] += 1
        self._reset(buf, ip_off, off, plen, flags)

    def _reset(self, buf, ip_off, off, plen, flags):
        self.stack.cnt[_TCP_LISTEN_RST_SENT] += 1
        n = plen
        if flags & _SYN:
            n += 1
        if flags & _FIN:
            n += 1
        tcp_out.reset_for(self.stack, buf, ip_off, off, n)

    def _complete(self, buf, ip_off, off, hl, plen, iss, irs, mss, sack, rtt):
        """The handshake's last ACK is acceptable: the connection (a Tcb, its rings) is made in
        SYN-RECEIVED and the ACK processed as any (RFC 9293 3.10.7.4: ESTABLISHED, and data it
        carries); into the accept queue. False (the ACK dropped, the peer retries) when the queue
        is full, the connection limit is reached or there is no memory for the rings."""
        s = self.stack
        c = s.cnt
        tcp = self.tcp
        if len(self.queue) >= self.backlog:
            c[_TCP_LISTEN_OVERFLOW] += 1
            return False
        if len(tcp.tcbs) >= tcp.config.max_connections:
            c[_TCP_CONN_LIMIT] += 1
            return False
        raddr = bytes(buf[ip_off + 12:ip_off + 16])
        try:
            nh = s.route.next_hop(raddr)
            t = Tcb(tcp, bytes(buf[ip_off + 16:ip_off + 20]), self.port, raddr,
                    buf[off] << 8 | buf[off + 1], bytes(nh), self.rx_size, self.tx_size)
        except (OSError, MemoryError):
            c[_TCP_LISTEN_OVERFLOW] += 1
            return False
        t.iss = iss
        t.s_bhi = iss >> 16
        t.s_blo = iss & 0xFFFF
        t.s_una = 0
        t.s_nxt = 1
        t.s_max = 1
        t.s_sml = 1
        t.irs = irs
        t.r_bhi = irs >> 16
        t.r_blo = irs & 0xFFFF
        t.r_nxt = 1
        t.r_wl1 = 0
        w = self._window()
        if w > t.rx_size:
            w = t.rx_size
        t.last_wnd = w
        t.r_wedge = 1 + w
        t._th_bases()
        t.mss = mss if mss < t.adv_mss else t.adv_mss
        t.sack_ok = bool(sack)
        t.last_rx = s.now
        t.connect_start = s.now
        t.state = SYN_RECEIVED
        if rtt >= 0:
            tcp_timer.rtt_sample(t, rtt)
        q = self.queue
        try:
            # into both lists first (they may grow): a MemoryError takes it out of both again
            tcp.tcbs.append(t)
            q.append(t)
            tcp_in.input(t, buf, ip_off, off, hl, plen)  # SYN-RECEIVED -> ESTABLISHED, and its data
        except MemoryError:
            if q and q[-1] is t:
                q.pop()
            t.orphan = True
            done(t, 0)
            c[_TCP_LISTEN_OVERFLOW] += 1
            return False
        if t.state == CLOSED:
            q.pop()  # (a bad ACK ended it at once)
            return True
        c[_TCP_PASSIVE_OPEN] += 1
        return True

    # -- timers (Tcp.poll) --------------------------------------------------------------------------
    def poll(self, now):
        """SYN-ACKs due again (1 s doubling), records past synack_retries gone."""
        cfg = self.tcp.config
        dl = self.syn_dl
        c = self.stack.cnt
        nxt = now
        first = True
        i = 0
        while i < self.syn_n:
            if ticks_diff(now, dl[i]) >= 0:
                k = i * _REC
                r = self.syn[k + 21] + 1
                if r > cfg.synack_retries:
                    c[_TCP_SYNACK_TIMEOUT] += 1
                    self._drop(i)
                    continue
                self.syn[k + 21] = r
                c[_TCP_SYNACK_RETRANSMIT] += 1
                self._resend(i)
                ms = cfg.rto_initial_ms << r
                dl[i] = ticks_add(now, ms if ms < cfg.rto_max_ms else cfg.rto_max_ms)
            if first or ticks_diff(dl[i], nxt) < 0:
                nxt = dl[i]
                first = False
            i += 1
        self.syn_next = nxt

    def takes_tw_syn(self, tw, k, buf, off):
        """A SYN for this port onto a TIME-WAIT record's 4-tuple starts a new connection when its
        sequence number lies beyond the old one's RCV.NXT (Linux TCP_TW_SYN); the record goes."""
        return buf[off + 13] & (_SYN | _ACK | _RST) == _SYN and seq_gt(
            get_seq(buf, off), int.from_bytes(tw[k + 16:k + 20], "big"))

    def close(self):
        """Stop listening: the half-open records go, and the connections nobody accepted are
        reset (Linux inet_csk_listen_stop)."""
        self.syn_n = 0
        q = self.queue
        self.queue = []
        for t in q:
            if t.state != CLOSED:
                t.orphan = True
                t.abort()
