"""What the stack does only on rare events: a TcpConfig is made, an ICMP error arrives, a
neighbour does not answer ARP, a connect finds its 4-tuple held by a TIME-WAIT, keep-alive is
switched on or its timer (or an orphan's FIN-WAIT-2 limit) runs out. The callers import this module for the event and drop it
after it (tcpip.call), so none of it stays in a board's heap between events (a few ms to load it
on an RP2040, at most once per such event)."""
from tcpip import errors
from tcpip import mem
from tcpip.checksum import checksum, pseudo_sum
from tcpip.clock import ticks_add, ticks_diff
from tcpip.tcp_core import arm_aux, done, rel_read, set_timer, trace
from tcpip import tcp_out
from tcpip.wire.tcp import emit_header, seq_gt
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_ICMP_UNREACH_DELIVERED = const(31)
_ICMP_UNREACH_NO_MATCH = const(32)
_ICMP_UNREACH_IGNORED = const(33)
_TCP_TIME_WAIT_REUSED = const(61)
_TCP_TX = const(35)
_TCP_RST_BLIND_DROPPED = const(49)
_TCP_RST_RECEIVED = const(56)
_TCP_ACK_RATELIMITED = const(75)
_TCP_KEEPALIVE_PROBE = const(69)
_TCP_KEEPALIVE_TIMEOUT = const(70)
_TCP_FIN_WAIT2_TIMEOUT = const(71)
_TCP_REXMIT = const(57)
_TCP_PMTU_REDUCED = const(94)
_TCP_PMTU_IGNORED = const(95)
_LINK_DOWN = const(104)
_LINK_UP = const(105)

# states (tcpip.tcp_core)
_CLOSED = const(0)
_SYN_SENT = const(1)
_SYN_RECEIVED = const(2)
_ESTABLISHED = const(3)
_FIN_WAIT_2 = const(5)
_TIME_WAIT = const(7)
_CLOSE_WAIT = const(8)

_FIN = const(1)
_SYN = const(2)
_RST = const(4)
_ACK = const(16)
_L4 = const(34)  # TCP header offset in the stack's transmit buffer (tcpip.tcp_out)
_TW_LEN = const(24)  # a TIME-WAIT record (tcpip.tcp)
_PROTO_TCP = const(6)
_PROTO_UDP = const(17)
_BIG = const(0x3FFFFFFF)  # an "infinite" ssthresh (tcpip.tcp)
# path MTU (RFC 1191): the floor is Linux's net.ipv4.route.min_pmtu (512 + 20 + 20), so an ICMP
# never takes the MSS below 512 (docs/ARCHITECTURE.md, "Path MTU")
_MIN_PMTU = const(552)


# -- TcpConfig(name=value, ...) ----------------------------------------------------------------------------
def check_config(cfg, kw):
    """Set the tunables in kw on cfg, each a TcpConfig default's name, and check the result."""
    for k in kw:
        if not hasattr(cfg, k):
            raise TypeError("unknown TCP option %r" % k)
        setattr(cfg, k, kw[k])
    if cfg.syn_retries < 0 or cfg.syn_retries > 127:
        raise ValueError("syn_retries must be 0..127")
    if not 1 <= cfg.rto_min_ms <= cfg.rto_max_ms or not 1 <= cfg.rto_initial_ms <= cfg.rto_max_ms:
        raise ValueError("need 1 <= rto_min_ms, rto_initial_ms <= rto_max_ms")
    if not 0 < cfg.rx_buffer <= 65535 or not 0 < cfg.tx_buffer <= 65535:
        raise ValueError("buffer sizes must be 1..65535")
    if not 0 <= cfg.delayed_ack_ms <= 500:
        raise ValueError("delayed_ack_ms must be 0..500")
    if not 0 <= cfg.ooo_segments <= 32 or cfg.init_cwnd < 1:
        raise ValueError("ooo_segments must be 0..32 and init_cwnd >= 1")
    if cfg.max_connections < 1 or cfg.time_wait_max < 0:
        raise ValueError("max_connections must be >= 1 and time_wait_max >= 0")
    n = cfg.port_table_size
    if n < 1 or n & (n - 1):
        raise ValueError("port_table_size must be a power of two")
    if cfg.syn_backlog < 1 or not 0 <= cfg.synack_retries <= 127:
        raise ValueError("syn_backlog must be >= 1 and synack_retries 0..127")


# -- ICMP errors (RFC 1122 3.2.2.1, RFC 5927) -------------------------------------------------------
def icmp_error(s, buf, off, n):
    """An ICMP destination unreachable (type 3) or time exceeded (11) of n bytes at buf[off]
    (checksum checked): the layer of the quoted datagram is told, with the errno Linux's
    icmp_err_convert[] gives (time exceeded: EHOSTUNREACH)."""
    c = s.cnt
    frag_needed = False
    if buf[off] == 11:
        err = errors.EHOSTUNREACH
    else:
        code = buf[off + 1]
        # destination-unreachable codes 0-15 -> errno; code 4 (fragmentation needed: path MTU,
        # RFC 1191, for TCP: path_mtu below) and unknown codes are not an abort
        err = (errors.ENETUNREACH, errors.EHOSTUNREACH, errors.ENOPROTOOPT, errors.ECONNREFUSED, 0,
               errors.EOPNOTSUPP, errors.ENETUNREACH, errors.EHOSTDOWN, errors.ENONET,
               errors.ENETUNREACH, errors.EHOSTUNREACH, errors.ENETUNREACH, errors.EHOSTUNREACH,
               errors.EHOSTUNREACH, errors.EHOSTUNREACH, errors.EHOSTUNREACH)[code] if code < 16 else 0
        frag_needed = code == 4
        if not err and not frag_needed:
            c[_ICMP_UNREACH_IGNORED] += 1
            return
    q = off + 8
    qlen = n - 8
    # the quoted datagram's protocol picks the layer told (UDP: tcpip.udp; else TCP)
    if qlen >= 20 and buf[q + 9] == _PROTO_UDP:
        if frag_needed:
            c[_ICMP_UNREACH_IGNORED] += 1  # our datagrams (DHCP, DNS) are far below any MTU
            return
        if s._udp is None:
            c[_ICMP_UNREACH_NO_MATCH] += 1  # we sent no UDP
            return
        s._udp.icmp_error(buf, q, qlen, err)
        return
    # TCP (tcp_v4_err): a fragmentation needed goes to path_mtu; otherwise in SYN-SENT /
    # SYN-RECEIVED a quote that matches the 4-tuple and carries our ISS fails the connect at once
    # with err; anything else is counted and ignored
    if qlen < 20:
        c[_ICMP_UNREACH_NO_MATCH] += 1
        return
    qhl = (buf[q] & 0x0F) * 4
    if qhl < 20 or qlen < qhl + 8 or buf[q + 9] != _PROTO_TCP:
        c[_ICMP_UNREACH_NO_MATCH] += 1
        return
    t = q + qhl
    sport = buf[t] << 8 | buf[t + 1]
    dport = buf[t + 2] << 8 | buf[t + 3]
    tcb = None
    for x in s.tcp.tcbs:
        if (x.local_port == sport and x.remote_port == dport and mem.equal(x.local_addr, 0, buf, q + 12, 4)
                and mem.equal(x.remote_addr, 0, buf, q + 16, 4)):
            tcb = x
            break
    if frag_needed:
        path_mtu(s, tcb, buf, off, q, t)
        return
    if tcb is None:
        c[_ICMP_UNREACH_NO_MATCH] += 1
        return
    st = tcb.state
    if st == _SYN_SENT or st == _SYN_RECEIVED:
        if rel_read(buf, t + 4, tcb.s_bhi, tcb.s_blo, tcb.s_una) != tcb.s_una:
            c[_ICMP_UNREACH_NO_MATCH] += 1  # blind ICMP: quoted sequence is not our SYN's
            return
        c[_ICMP_UNREACH_DELIVERED] += 1
        trace(tcb, "icmp", err)
        done(tcb, err)
        return
    c[_ICMP_UNREACH_IGNORED] += 1  # soft error for a synchronized connection (Linux sk_err_soft)


# -- path MTU discovery (RFC 1191; Linux tcp_v4_err -> tcp_v4_mtu_reduced) ------------------------
def path_mtu(s, t, buf, off, q, qt):
    """A fragmentation needed and DF set (ICMP type 3 code 4 at buf[off], checksum checked)
    quoting a TCP segment: IPv4 header at buf[q], its first 8 TCP bytes at buf[qt]; t is the
    connection of its 4-tuple (None: no such connection). A quote of a segment in flight (SND.UNA
    =< SEG.SEQ =< SND.MAX, as Linux's tcp_v4_err) lowers t's send MSS to the next-hop MTU - 40
    (floor _MIN_PMTU, never raised by an ICMP) and resends at once what was in flight in segments
    of the new size (Linux tcp_simple_retransmit). Everything else is counted tcp_pmtu_ignored."""
    c = s.cnt
    if t is None:
        c[_TCP_PMTU_IGNORED] += 1  # no such connection
        return
    st = t.state
    if st == _SYN_SENT or st == _SYN_RECEIVED or st == _TIME_WAIT:
        # never a hard error (RFC 1191 supersedes RFC 1122 4.2.3.9 there; Linux never aborts on
        # it); in the handshake only our 48-byte SYN is out, which no link (68 octets or more,
        # RFC 791) can have refused; in TIME-WAIT nothing is sent
        c[_TCP_PMTU_IGNORED] += 1
        return
    seq = rel_read(buf, qt + 4, t.s_bhi, t.s_blo, t.s_una)
    if seq < t.s_una or seq > t.s_max:
        c[_TCP_PMTU_IGNORED] += 1  # not a segment in flight: stale, or a blind forgery
        trace(t, "pmtu-ignored", "sequence")
        return
    # the next-hop MTU (RFC 1191 4); a router from before RFC 1191 sends 0: then the largest
    # plateau of RFC 1191 7 below the quoted datagram's total length (RFC 1191 5; 65535 is left
    # out, as no total length exceeds it; the length is taken as quoted, as BSD and Linux's
    # guess_mtu took it, without RFC 1191 5's correction for 4.2BSD routers of 1990)
    mtu = buf[off + 6] << 8 | buf[off + 7]
    if not mtu:
        total = buf[q + 2] << 8 | buf[q + 3]
        for p in (32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68):
            if p < total:
                mtu = p
                break
        if not mtu:
            c[_TCP_PMTU_IGNORED] += 1  # a datagram of 68 octets or less: too big for nothing
            trace(t, "pmtu-ignored", "no plateau")
            return
    if mtu < _MIN_PMTU:
        mtu = _MIN_PMTU  # as Linux: a forged tiny MTU cannot make us send tiny segments
    mss = mtu - 40  # IPv4 and TCP headers without options (our data segments carry none)
    old = t.mss
    if mss >= old:
        # RFC 1191 3: an ICMP never raises the estimate (a stale or forged message); nor does a
        # second one for the size already in use (RFC 1191 6.4: one retransmission per decrease)
        c[_TCP_PMTU_IGNORED] += 1
        trace(t, "pmtu-ignored", mtu)
        return
    t.mss = mss
    c[_TCP_PMTU_REDUCED] += 1
    trace(t, "pmtu", mss)
    flight = t.s_max - t.s_una
    data = t.tx_len if t.tx_len < flight else flight  # data bytes in flight (a FIN excluded)
    resend = data > mss  # else every segment in flight fits: none was refused for its size
    # cwnd and ssthresh keep their number of segments (Linux counts them in segments and leaves
    # them alone: the units shrank, not the network's capacity for packets); a cwnd inflated by
    # NewReno recovery, which the resend below ends, first goes back to ssthresh (RFC 6582 3.2)
    w = t.cwnd
    if resend and t.in_recovery and t.ssthresh < w:
        w = t.ssthresh
    w = (w + old - 1) // old * mss
    t.cwnd = w if w > mss else mss
    if t.ssthresh < _BIG:
        w = t.ssthresh // old * mss
        t.ssthresh = w if w > 2 * mss else 2 * mss
    if not resend:
        return
    # tcp_simple_retransmit: the segments in flight went out at the old size and the path drops
    # them: resend from SND.UNA at the new size now, go-back-N as after an RTO (ACKs up to
    # SND.MAX stay acceptable) but without its backoff (a size problem, not congestion)
    t.s_nxt = t.s_una
    t.in_recovery = False
    t.dupacks = 0
    t.s_recover = t.s_max  # RFC 6582 3.2 step 4: duplicate ACKs of the old flight start no recovery
    t.rtt_timing = False  # Karn
    t.tlp_out = False
    # Nagle's small segment in flight (Minshall, s_sml) was the old flight's: its end may lie
    # beyond data the peer lacks now that the pieces are cut anew, and holding the new tail for
    # its ACK would wait for the RTO (Linux resends without Nagle)
    t.s_sml = t.s_una
    c[_TCP_REXMIT] += 1
    tcp_out.output(t)
    if t.s_nxt != t.s_una:
        set_timer(t, t.rto)  # the resent head gets a full RTO (Linux tcp_xmit_retransmit_queue)


# -- a neighbour that does not answer ARP ------------------------------------------------------------
def neighbour_failed(s, ip):
    """ARP gave up on ip (4 bytes): connects in SYN-SENT through that next hop fail with
    EHOSTUNREACH (Linux: ipv4_link_failure -> ICMP host unreachable to ourselves -> tcp_v4_err)."""
    if s.trace is not None:
        s.trace("arp-failed", None, ipv4.ntoa(ip))
    tcbs = s.tcp.tcbs
    i = 0
    while i < len(tcbs):
        t = tcbs[i]
        if t.state == _SYN_SENT and t.next_hop == ip:
            trace(t, "arp-failed", None)
            done(t, errors.EHOSTUNREACH)
        else:
            i += 1


# -- a connect onto a TIME-WAIT 4-tuple ------------------------------------------------------------------
def time_wait_reuse(tcp, t, isn):
    """__inet_check_established: the 4-tuple of a new connect is held by t in TIME-WAIT (a Tcb,
    or the index of a record in tcp.tw); it may be reused once t is time_wait_reuse_ms old (a
    record: since its 2 MSL last started) and the new ISN (None: computed here) lies beyond
    everything t sent (RFC 6191's test). Then t goes and True is returned."""
    cfg = tcp.config
    now = tcp.stack.now
    if isinstance(t, int):
        k = t * _TW_LEN
        tw = tcp.tw
        if ticks_diff(now, tcp.tw_dl[t]) + cfg.time_wait_ms < cfg.time_wait_reuse_ms:
            return False
        if isn is None:
            la = bytes(tw[k:k + 4])
            ra = bytes(tw[k + 4:k + 8])
            isn = tcp.isn.isn(la, tw[k + 8] << 8 | tw[k + 9], ra, tw[k + 10] << 8 | tw[k + 11])
        if not seq_gt(isn, int.from_bytes(tw[k + 12:k + 16], "big")):
            return False
        tcp.tw_drop(t)
    else:
        if ticks_diff(now, t.time_wait_start) < cfg.time_wait_reuse_ms:
            return False
        if isn is None:
            isn = tcp.isn.isn(t.local_addr, t.local_port, t.remote_addr, t.remote_port)
        if not seq_gt(isn, t.snd_nxt):
            return False
        t.timer_on = False
        t.state = _CLOSED
        tcp.remove(t)
    tcp.stack.cnt[_TCP_TIME_WAIT_REUSED] += 1
    return True


def tw_input(tcp, i, buf, ip_off, off, hl, plen):
    """A segment for TIME-WAIT record i (Linux tcp_timewait_state_process, TIME_WAIT): a RST at
    RCV.NXT ends it and any other RST is dropped; a bare ACK at RCV.NXT needs nothing; a FIN (the
    peer's, again: our ACK was lost) is ACKed and 2 MSL starts over (RFC 9293 3.10.7.4); anything
    else (a SYN, data, an old ACK) gets an ACK, at most one per invalid_ratelimit_ms for all
    records together (Linux rate-limits these per record)."""
    s = tcp.stack
    c = s.cnt
    tw = tcp.tw
    k = i * _TW_LEN
    flags = buf[off + 13]
    at_nxt = mem.equal(buf, off + 4, tw, k + 16, 4)
    if flags & _RST:
        if at_nxt:
            c[_TCP_RST_RECEIVED] += 1
            tcp.tw_drop(i)
        else:
            c[_TCP_RST_BLIND_DROPPED] += 1
        return
    now = s.now
    if flags & _FIN:
        tcp.tw_dl[i] = ticks_add(now, tcp.config.time_wait_ms)  # later than tw_next: still valid
    elif at_nxt and not plen and not flags & _SYN:
        return
    elif tcp.tw_oow and ticks_diff(now, tcp.tw_oow) < tcp.config.invalid_ratelimit_ms:
        c[_TCP_ACK_RATELIMITED] += 1
        return
    else:
        tcp.tw_oow = now or 1
    # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, from the record, to the segment's sender
    f = s.tx
    emit_header(f, _L4, tw[k + 8] << 8 | tw[k + 9], tw[k + 10] << 8 | tw[k + 11], 0, 0, _ACK,
                tw[k + 20] << 8 | tw[k + 21], 20)
    mem.copy(f, _L4 + 4, tw, k + 12, 8)
    acc = pseudo_sum(buf, ip_off + 16, buf, ip_off + 12, _PROTO_TCP, 20)
    cs = checksum(f, _L4, _L4 + 20, acc)
    f[_L4 + 16] = cs >> 8
    f[_L4 + 17] = cs & 0xFF
    c[_TCP_TX] += 1
    s.ip_output(buf, ip_off + 12, buf, ip_off + 16, _PROTO_TCP, 20)


# -- keep-alive (RFC 9293 3.8.4, Linux tcp_keepalive_timer) and the orphan FIN-WAIT-2 limit ----------
def set_keepalive(t, on, idle_ms, interval_ms, count):
    if idle_ms is not None:
        t.ka_idle = idle_ms
    if interval_ms is not None:
        t.ka_interval = interval_ms
    if count is not None:
        t.ka_count = count
    t.keepalive = bool(on)
    t.stack.now = t.stack.clock.ticks_ms()
    if on:
        t.last_rx = t.stack.now
        t.probes = 0
        arm_aux(t, t.ka_idle)
    elif t.state != _FIN_WAIT_2:
        t.aux_on = False


def on_aux(t):
    """The aux timer ran out: keep-alive, or the orphan FIN-WAIT-2 limit (Tcp.poll)."""
    t.aux_on = False
    now = t.stack.now
    st = t.state
    c = t.stack.cnt
    if st == _FIN_WAIT_2 and t.orphan:
        # fin_wait2_ms over: RST and forget, as Linux's keep-alive timer does when
        # tcp_fin_timeout exceeds 60 s (with the default it expires silently instead; the
        # RST also frees the peer's CLOSE-WAIT socket)
        c[_TCP_FIN_WAIT2_TIMEOUT] += 1
        tcp_out.abort_with_rst(t, 0)
        return
    if not t.keepalive:
        return
    if st == _SYN_SENT or st == _SYN_RECEIVED:
        arm_aux(t, t.ka_idle)  # not yet: established() starts the idle time
        return
    if st != _ESTABLISHED and st != _CLOSE_WAIT and st != _FIN_WAIT_2:
        return  # (FIN-WAIT-2 after a half-close: probed too, as Linux tcp_keepalive_timer)
    idle = ticks_diff(now, t.last_rx)
    if t.s_max != t.s_una or t.tx_len > 0:
        arm_aux(t, t.ka_idle)  # data in flight: the retransmit timer watches the peer
        return
    if t.probes == 0 and idle < t.ka_idle:
        arm_aux(t, t.ka_idle - idle)
        return
    if t.probes >= t.ka_count:
        c[_TCP_KEEPALIVE_TIMEOUT] += 1
        tcp_out.abort_with_rst(t, errors.ETIMEDOUT)
        return
    t.probes += 1
    c[_TCP_KEEPALIVE_PROBE] += 1
    # SEG.SEQ = SND.UNA - 1 with one garbage octet (RFC 9293 3.8.4, as BSD): a zero-length
    # probe is an out-of-window ACK that Linux answers at most once per 500 ms
    # (tcp_invalid_ratelimit); an old data byte is always answered
    tcp_out.emit(t, t.s_una - 1, _ACK, 0, 1)
    arm_aux(t, t.ka_interval)


# -- the cable (Stack._timers looks once a second) ------------------------------------------------------
def link_changed(s, up):
    """The device's link went down or came back. Down: the neighbours are forgotten (another
    network may be on the cable when it comes back; Linux flushes the neighbour table on carrier
    loss) except those being resolved. Up: the DHCP lease is confirmed (INIT-REBOOT, RFC 2131 3.2;
    tcpip.dhcp.DhcpClient.reboot). Connections just go on: their retransmissions carry them over
    a short outage, as on Linux. Counted (link_down, link_up), traced, and stack.on_link(up) is
    called when set."""
    s.link = up
    c = s.cnt
    if up:
        c[_LINK_UP] += 1
        d = getattr(s, "dhcp", None)
        if d is not None:
            d.reboot()
    else:
        c[_LINK_DOWN] += 1
        st = s.arp.state
        for i in range(len(st)):
            if st[i] != 1:  # INCOMPLETE: still being resolved, its frames waiting
                st[i] = 0
        s.route.gen += 1  # templates built with a neighbour's MAC
    if s.trace is not None:
        s.trace("link", None, "up" if up else "down")
    f = s.on_link
    if f is not None:
        f(up)
