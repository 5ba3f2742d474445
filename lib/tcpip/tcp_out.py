"""TCP output: what we send and when (lwIP tcp_out.c). Segments from the send ring, output() under
the peer's and the congestion window, Nagle and SWS avoidance, retransmission of the first
segment, our SYN, ACKs (rate-limited ones for RFC 5961), RSTs; every function takes the Tcb first.
"""
from tcpip import fastpath
from tcpip import mem
from tcpip.checksum import checksum, pseudo_sum
from tcpip.clock import ticks_diff
from tcpip.tcp_core import NO_RING, done, rel_write, put_sum, ring_read, set_state, set_timer, trace
from tcpip.wire import tcp as wtcp

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_ETH_TX = const(1)
_IP_TX = const(16)
_TCP_TX = const(35)
_TCP_SYN_SENT = const(42)
_TCP_CHALLENGE_ACK_SENT = const(54)
_TCP_REXMIT = const(57)
_TCP_TX_BYTES = const(60)
_TCP_ACK_RATELIMITED = const(75)

# states (tcpip.tcp_core)
_CLOSED = const(0)
_SYN_SENT = const(1)
_ESTABLISHED = const(3)
_FIN_WAIT_1 = const(4)
_CLOSING = const(6)
_CLOSE_WAIT = const(8)
_LAST_ACK = const(9)

_FIN = const(1)
_SYN = const(2)
_RST = const(4)
_PSH = const(8)
_ACK = const(16)

_WRAP = const(0x20000000)  # byte counters wrap once past 2**29 (small ints on a 32-bit port)
_L4 = const(34)  # TCP header offset in the stack's transmit buffer (Ethernet 14 + IPv4 20)
_DATA = const(54)  # payload offset of a segment without options (fastpath.HEADERS_LEN)
_PROTO_TCP = const(6)

_fp_build = fastpath.build
_FAST = fastpath.ENABLED


def build_template(t):
    """Fill t.th, the headers of this connection (fastpath's layout), from the route and the
    next hop's MAC. Valid for sending (t.th_gen == route.gen) when the MAC is known; else the
    receive side of it is filled still (t.th_gen == -2) and sending takes the full path."""
    s = t.stack
    th = t.th
    mac = s.arp.lookup(t.next_hop, 0, s.now)
    if mac is not None:
        mem.copy(th, 0, mac, 0, 6)
    mem.copy(th, 6, s.mac, 0, 6)
    th[12] = 8
    th[13] = 0
    th[14] = 0x45  # IPv4, 20-byte header; TOS 0
    th[15] = 0
    for i in range(16, 54):
        th[i] = 0
    th[20] = 0x40  # DF
    th[22] = 64    # TTL
    th[23] = _PROTO_TCP
    mem.copy(th, 26, t.local_addr, 0, 4)
    mem.copy(th, 30, t.remote_addr, 0, 4)
    p = t.local_port
    th[34] = p >> 8
    th[35] = p & 0xFF
    p = t.remote_port
    th[36] = p >> 8
    th[37] = p & 0xFF
    th[46] = 0x50  # data offset 5: no options
    t._th_bases()
    # what a segment from the peer that the prediction takes looks like (fastpath's layout):
    # Ethernet to us, IPv4 and TCP from the peer to us, flags ACK, the window we predict
    for i in range(64, 114):
        th[i] = 0
    mem.copy(th, 64, s.mac, 0, 6)
    mem.copy(th, 76, th, 12, 3)  # 0x0800, 0x45
    th[87] = _PROTO_TCP
    mem.copy(th, 90, t.remote_addr, 0, 4)
    mem.copy(th, 94, t.local_addr, 0, 4)
    mem.copy(th, 98, th, 36, 2)
    mem.copy(th, 100, th, 34, 2)
    th[110] = 0x50
    th[111] = _ACK
    w = t.snd_wnd
    th[112] = w >> 8
    th[113] = w & 0xFF
    mem.copy(th, 114, fastpath.HP_MASK, 0, 50)
    if mac is None or not t.tcp.config.header_prediction:
        t.th_gen = -2
        return False
    t.th_gen = s.route.gen
    return True


def fast_ack(t):
    """A pure ACK of an ESTABLISHED connection from its template (the fast path's; when the
    template is not valid for sending, the general send_ack)."""
    s = t.stack
    if t.th_gen != s.route.gen:
        send_ack(t)
        return
    # select_window, inline
    size = t.rx_size
    wnd = size - t.rx_len
    if wnd > 65535:
        wnd = 65535
    r_nxt = t.r_nxt
    cur = t.r_wedge - r_nxt
    if cur < 0:
        cur = 0
    if wnd > cur:
        m = size >> 1
        if m > t.adv_mss:
            m = t.adv_mss
        if wnd - cur < m:
            wnd = cur
    t.last_wnd = wnd
    t.r_wedge = r_nxt + wnd
    t.delack_on = False
    t.ack_owed = 0
    f = s.tx
    n = _fp_build(f, t.th, t.s_nxt, r_nxt, 0x100000 | wnd, 0)
    c = s.cnt
    c[_TCP_TX] += 1
    c[_IP_TX] += 1
    c[_ETH_TX] += 1
    s.device.send(f, n)


def select_window(t):
    """The window to advertise now, with receiver SWS avoidance (RFC 9293 3.8.6.2.2, Linux
    __tcp_select_window): the right edge we advertised (RCV.NXT + RCV.WND) moves only by
    min(half the ring, an MSS) or more. Records it (last_wnd, r_wedge)."""
    size = t.rx_size
    wnd = size - t.rx_len
    if wnd > 65535:
        wnd = 65535
    r_nxt = t.r_nxt
    cur = t.r_wedge - r_nxt
    if cur < 0:
        cur = 0
    if wnd > cur:
        m = size >> 1
        if m > t.adv_mss:
            m = t.adv_mss
        if wnd - cur < m:
            wnd = cur
    t.last_wnd = wnd
    t.r_wedge = r_nxt + wnd
    return wnd


def emit(t, seq, flags, data_off, data_len):
    """Build and send one segment (seq relative to the send base); data comes from the send
    ring at data_off past SND.UNA. A segment without options goes out through the connection's
    template (fastpath.build) while the next hop's MAC is known; the rest is built here."""
    s = t.stack
    f = s.tx
    sack = t.ooo_n and t.sack_ok and not data_len
    if _FAST and not flags & (_SYN | _RST) and not sack and (
            t.th_gen == s.route.gen or build_template(t)):
        wnd = select_window(t)
        if data_len:
            ring = t.tx
            if ring is NO_RING:
                _payload(t, f, _DATA, data_off, data_len)
            else:
                size = t.tx_size
                pos = t.tx_head + data_off
                if pos >= size:
                    pos -= size
                first = size - pos
                if first >= data_len:
                    mem.copy(f, _DATA, ring, pos, data_len)
                else:
                    mem.copy(f, _DATA, ring, pos, first)
                    mem.copy(f, _DATA + first, ring, 0, data_len - first)
        if flags & _ACK:
            t.delack_on = False  # this segment carries the ACK we owed
            t.ack_owed = 0
        n = _fp_build(f, t.th, seq, t.r_nxt, flags << 16 | wnd, data_len)
        c = s.cnt
        c[_TCP_TX] += 1
        c[_IP_TX] += 1
        c[_ETH_TX] += 1
        s.device.send(f, n)
        return
    hl = 20
    sack = 0
    if flags & _SYN:
        hl = 28
    elif t.ooo_n and t.sack_ok and not data_len and not flags & _RST:
        sack = t.ooo_n if t.ooo_n < 4 else 4
        hl = 24 + 8 * sack
    wnd = select_window(t)
    # the fixed header (RFC 9293 3.1), sequence numbers converted from relative bytewise
    p = t.local_port
    f[_L4] = p >> 8
    f[_L4 + 1] = p & 0xFF
    p = t.remote_port
    f[_L4 + 2] = p >> 8
    f[_L4 + 3] = p & 0xFF
    rel_write(f, _L4 + 4, t.s_bhi, t.s_blo, seq)
    if flags & _ACK:
        rel_write(f, _L4 + 8, t.r_bhi, t.r_blo, t.r_nxt)
        t.delack_on = False  # this segment carries the ACK we owed
        t.ack_owed = 0
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
        m = t.adv_mss
        f[_L4 + 20] = 2
        f[_L4 + 21] = 4
        f[_L4 + 22] = (m >> 8) & 0xFF
        f[_L4 + 23] = m & 0xFF
        f[_L4 + 24] = 1
        f[_L4 + 25] = 1
        f[_L4 + 26] = 4
        f[_L4 + 27] = 2
    elif sack:
        _sack_blocks(t, f, _L4 + 20, sack)
    if data_len:
        _payload(t, f, _L4 + hl, data_off, data_len)
    n = hl + data_len
    acc = pseudo_sum(t.local_addr, 0, t.remote_addr, 0, _PROTO_TCP, n)
    cs = checksum(f, _L4, _L4 + n, acc)
    f[_L4 + 16] = cs >> 8
    f[_L4 + 17] = cs & 0xFF
    s.cnt[_TCP_TX] += 1
    s.ip_output(t.remote_addr, 0, t.local_addr, 0, _PROTO_TCP, n)


def _payload(t, f, at, data_off, n):
    """n bytes of the send ring from data_off past SND.UNA into f[at:]. A released ring (all data
    acknowledged: only a keep-alive probe's garbage octet can be asked for then) gives zeros."""
    if t.tx is NO_RING:
        for i in range(at, at + n):
            f[i] = 0
        return
    ring_read(f, at, t.tx, t.tx_size, (t.tx_head + data_off) % t.tx_size, n)


def _sack_blocks(t, f, i, k):
    """NOP NOP SACK with k blocks; the block holding the latest segment first (RFC 2018 4). (Not
    inlined in emit: its locals would make emit's frame, taken from the heap at every call,
    bigger still; see docs/ARCHITECTURE.md, "What things cost on an RP2040".)"""
    f[i] = 1
    f[i + 1] = 1
    f[i + 2] = 5
    f[i + 3] = 2 + 8 * k
    o = t.ooo
    j = 0
    for m in range(t.ooo_n):
        if o[2 * m] <= t.r_sack and t.r_sack < o[2 * m + 1]:
            j = m
            break
    p = i + 4
    for _ in range(k):
        rel_write(f, p, t.r_bhi, t.r_blo, o[2 * j])
        rel_write(f, p + 4, t.r_bhi, t.r_blo, o[2 * j + 1])
        p += 8
        j += 1
        if j == t.ooo_n:
            j = 0


def send_ack(t):
    emit(t, t.s_nxt, _ACK, 0, 0)


def send_syn(t):
    s = t.stack
    t.syn_times.append(ticks_diff(s.now, t.connect_start))
    if t.state == _SYN_SENT:
        emit(t, 0, _SYN, 0, 0)  # the ISS: the send base does not move before ESTABLISHED
    else:
        emit(t, 0, _SYN | _ACK, 0, 0)
    s.cnt[_TCP_SYN_SENT] += 1
    trace(t, "syn", len(t.syn_times))


def ratelimited_ack(t):
    """A challenge ACK (RFC 5961) or an ACK for an out-of-window segment, at most one per
    invalid_ratelimit_ms per connection (Linux __tcp_oow_rate_limited). True if sent."""
    now = t.stack.now
    if t.oow_sent and ticks_diff(now, t.oow_time) < t.tcp.config.invalid_ratelimit_ms:
        t.stack.cnt[_TCP_ACK_RATELIMITED] += 1
        return False
    t.oow_sent = True
    t.oow_time = now
    send_ack(t)
    return True


def challenge_ack(t):
    if ratelimited_ack(t):
        t.stack.cnt[_TCP_CHALLENGE_ACK_SENT] += 1


def arm_rexmit(t, restart):
    """Data is outstanding: the tail loss probe timer (RFC 8985 7.2) when it is due before the
    RTO, else the retransmission timer (restarted if `restart`, RFC 6298 5.3)."""
    if t.srtt and not t.in_recovery and not t.tlp_out and t.retries == 0:
        pto = 2 * t.srtt
        if pto < 10:
            pto = 10
        if t.s_max - t.s_una <= t.mss:
            pto += 200  # one segment out: the peer may delay its ACK (WCDelAckT)
        if pto < t.rto:
            set_timer(t, pto)
            t.tlp_armed = True
            return
    if restart or t.tlp_armed or not t.timer_on:
        set_timer(t, t.rto)


def output(t, cork=False):
    """Send what the windows (peer's and congestion), Nagle and SWS avoidance allow, then the
    FIN once all data has gone. Returns the number of segments sent. cork (Tcb.send, when two
    full segments or more are unacknowledged): a sub-MSS tail waits; the ACK those segments are
    sure to bring (the peer acknowledges every second full-sized one) sends it, or the data the
    application queues next fills it (docs/ARCHITECTURE.md, "Sending")."""
    st = t.state
    if st != _ESTABLISHED and st != _CLOSE_WAIT and st != _FIN_WAIT_1 and st != _CLOSING and st != _LAST_ACK:
        return 0
    sent = 0
    mss = t.mss
    una = t.s_una
    tx_len = t.tx_len
    wnd = t.snd_wnd if t.snd_wnd < t.cwnd else t.cwnd
    nxt = t.s_nxt
    new = False  # new data went out: the loss probe / retransmission timer is armed below
    for _ in range(64):  # bounded: at most 64 segments per call
        flight = nxt - una
        unsent = tx_len - flight  # -1 while our FIN is in flight
        if unsent > 0:
            n = unsent if unsent < mss else mss
            usable = wnd - flight
            if n > usable:
                n = usable
            if n <= 0:
                if flight == 0 and not t.timer_on:
                    set_timer(t, t.rto)  # zero window: the persist timer probes it
                break
            if n < mss and flight > 0:
                if n < unsent:
                    break  # cut by the window: wait for it to open (SWS, RFC 9293 3.8.6.2.1)
                if cork or (not t.nodelay and not t.fin_pending and t.s_sml > una):
                    break  # Nagle, Minshall's variant as Linux: one small segment in flight
            flags = _ACK
            if n == unsent:
                flags = _ACK | _PSH
                if t.fin_pending:
                    flags = _ACK | _PSH | _FIN  # piggyback the FIN on the last data
            emit(t, nxt, flags, flight, n)
            c = t.stack.cnt
            v = c[_TCP_TX_BYTES]  # wraps past 2**29: a small int on a 32-bit port (no heap)
            c[_TCP_TX_BYTES] = (v if v < _WRAP else v - _WRAP) + n
            smax = t.s_max
            if nxt == smax:
                new = True
                if not t.rtt_timing:
                    t.rtt_timing = True
                    t.s_rtt = nxt + n
                    t.rtt_start = t.stack.now
            elif not t.timer_on:
                set_timer(t, t.rto)  # a retransmission (go-back-N)
            nxt += n
            if n < mss:
                t.s_sml = nxt  # end of the last small segment (Minshall)
            if flags & _FIN:
                nxt += 1
                t.s_nxt = nxt
                fin_out(t)
            t.s_nxt = nxt
            if nxt > smax:
                t.s_max = nxt
            sent += 1
            continue
        if unsent == 0 and t.fin_pending:
            emit(t, nxt, _FIN | _ACK, flight, 0)
            nxt += 1
            t.s_nxt = nxt
            fin_out(t)
            if nxt > t.s_max:
                t.s_max = nxt
            if not t.timer_on:
                set_timer(t, t.rto)
            sent += 1
        break
    if new:
        # (RFC 8985 7.2: the probe timer restarts with each new segment; they all left now)
        arm_rexmit(t, False)
    return sent


def fin_out(t):
    if t.fin_sent:
        return
    t.fin_sent = True
    if t.state == _ESTABLISHED:
        set_state(t, _FIN_WAIT_1)
    elif t.state == _CLOSE_WAIT:
        set_state(t, _LAST_ACK)


def retransmit_first(t):
    """Resend the earliest unacknowledged segment (fast retransmit, NewReno partial ACK)."""
    flight = t.s_max - t.s_una
    n = t.tx_len if t.tx_len < flight else flight
    if n > t.mss:
        n = t.mss
    t.rtt_timing = False  # Karn
    t.stack.cnt[_TCP_REXMIT] += 1
    if n > 0:
        fin = t.fin_pending and n == t.tx_len and flight == n + 1
        emit(t, t.s_una, _ACK | _FIN if fin else _ACK, 0, n)
    elif t.fin_sent:
        emit(t, t.s_una, _ACK | _FIN, 0, 0)


def abort_with_rst(t, err):
    if t.state != _SYN_SENT and t.state != _CLOSED:
        # the highest sequence number sent: after go-back-N the peer may hold all of it
        emit(t, t.s_max, _RST | _ACK, 0, 0)
    done(t, err)


def reset_for(s, buf, ip_off, off, seg_len):
    """Answer the segment at buf[off] with a RST built from its own addresses and ports
    (RFC 9293 3.10.7.1): <SEQ=SEG.ACK><CTL=RST> if it has an ACK, else
    <SEQ=0><ACK=SEG.SEQ+seg_len><CTL=RST,ACK>. Copies bytes: no 32-bit ints."""
    f = s.tx
    sport = buf[off + 2] << 8 | buf[off + 3]
    dport = buf[off] << 8 | buf[off + 1]
    if buf[off + 13] & _ACK:
        wtcp.emit_header(f, _L4, sport, dport, 0, 0, _RST, 0, 20)
        mem.copy(f, _L4 + 4, buf, off + 8, 4)
    else:
        wtcp.emit_header(f, _L4, sport, dport, 0, 0, _RST | _ACK, 0, 20)
        put_sum(f, _L4 + 8, buf, off + 4, seg_len)
    acc = pseudo_sum(buf, ip_off + 16, buf, ip_off + 12, _PROTO_TCP, 20)
    cs = checksum(f, _L4, _L4 + 20, acc)
    f[_L4 + 16] = cs >> 8
    f[_L4 + 17] = cs & 0xFF
    s.cnt[_TCP_TX] += 1
    s.ip_output(buf, ip_off + 12, buf, ip_off + 16, _PROTO_TCP, 20)
