"""TCP input: what happens to an arriving segment (lwIP tcp_in.c; RFC 9293 3.10.7). input() runs
SYN-SENT (3.10.7.3) or the synchronized states (3.10.7.4, its steps labelled first..eighth) with
the RFC 5961 checks, the ACK processing of RFC 5681 / RFC 6582 (NewReno) / RFC 3042 / RFC 5827,
in-order data into the receive ring, out-of-order ranges kept in the ring until the hole fills, FIN.
"""
from tcpip import errors
from tcpip.clock import ticks_add, ticks_diff
from tcpip import mem
from tcpip.tcp_core import (arm_aux, done, rel_read, release_rx, release_tx, ring_write,
                             set_state, set_timer, set_wnd)
from tcpip import tcp_out
from tcpip import tcp_timer
from tcpip.wire import tcp as wtcp

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_ETH_RX = const(0)
_IP_RX = const(15)
_TCP_RX = const(34)
_TCP_CONNECT_REFUSED = const(45)
_TCP_ESTABLISHED = const(46)
_TCP_SYN_SENT_BAD_ACK_RST_SENT = const(47)
_TCP_SYN_SENT_BAD_ACK_DROPPED = const(48)
_TCP_RST_BLIND_DROPPED = const(49)
_TCP_SYN_SENT_NO_SYN_DROPPED = const(50)
_TCP_SIMULTANEOUS_OPEN = const(51)
_TCP_DROP_OUT_OF_WINDOW = const(52)
_TCP_DROP_OUT_OF_ORDER = const(53)
_TCP_ACK_UNSENT_DATA = const(55)
_TCP_RST_RECEIVED = const(56)
_TCP_RX_BYTES = const(59)
_TCP_DROP_NO_ACK = const(62)
_TCP_RX_BUFFER_FULL = const(63)
_TCP_DUPACK = const(65)
_TCP_FAST_RETRANSMIT = const(66)
_TCP_OOO_QUEUED = const(67)
_TCP_ABORT_ON_DATA = const(73)
_TCP_ACK_TOO_OLD = const(74)
_TCP_LIMITED_TRANSMIT = const(78)
_TCP_OOO_PURGED = const(91)

# states (tcpip.tcp_core)
_CLOSED = const(0)
_SYN_SENT = const(1)
_SYN_RECEIVED = const(2)
_ESTABLISHED = const(3)
_FIN_WAIT_1 = const(4)
_FIN_WAIT_2 = const(5)
_CLOSING = const(6)
_TIME_WAIT = const(7)
_CLOSE_WAIT = const(8)
_LAST_ACK = const(9)

_FIN = const(1)
_SYN = const(2)
_RST = const(4)
_ACK = const(16)

_WRAP = const(0x20000000)  # byte counters wrap once past 2**29 (small ints on a 32-bit port)
_MIN_SND_MSS = const(48)  # Linux net.ipv4.tcp_min_snd_mss
_RTO_FALLBACK_MS = const(3000)  # RFC 6298 5.7
_DATA = const(54)  # payload offset in a frame that matched the prediction (no IP / TCP options)


def fast_input(t, buf, r):
    """Header prediction hit (fastpath.match returned r = plen | acked << 11): an in-order data
    segment and/or a new ACK for t in ESTABLISHED, with the predicted window. Does what
    _input_synchronized does for such a segment, without its tests; returns False (having done
    nothing) when the data does not fit the ring, for the full path to handle."""
    plen = r & 0x7FF
    rl = t.rx_len
    if plen > t.rx_size - rl:
        return False
    s = t.stack
    c = s.cnt
    c[_ETH_RX] += 1
    c[_IP_RX] += 1
    c[_TCP_RX] += 1
    t.last_rx = s.now
    t.probes = 0
    seq = t.r_nxt
    # fifth: the ACK; the window is the predicted one, SND.WL1 / SND.WL2 move (RFC 9293 3.10.7.4)
    t.r_wl1 = seq
    acked = r >> 11
    if acked:
        ack = t.s_una + acked
        t.s_wl2 = ack
        _ack_advanced(t, ack)
        if ack > t.rebase_at:
            t.tcp.hot = None  # the next segment takes the full path, which moves the bases first
    else:
        t.s_wl2 = t.s_una
    if not plen:
        if t.tx_len > t.s_nxt - t.s_una:
            tcp_out.output(t)  # what the ACK allows now
        return True
    # seventh: the text, into the ring
    size = t.rx_size
    pos = t.rx_head + rl
    if pos >= size:
        pos -= size
    first = size - pos
    if first >= plen:
        mem.copy(t.rx, pos, buf, _DATA, plen)
    else:
        mem.copy(t.rx, pos, buf, _DATA, first)
        mem.copy(t.rx, 0, buf, _DATA + first, plen - first)
    t.rx_len = rl + plen
    seq += plen
    t.r_nxt = seq
    v = c[_TCP_RX_BYTES]  # wraps past 2**29: a small int on a 32-bit port (no heap)
    c[_TCP_RX_BYTES] = (v if v < _WRAP else v - _WRAP) + plen
    if seq > t.rebase_at:
        t.tcp.hot = None
    owed = t.ack_owed + plen
    if t.tx_len and t.tx_len > t.s_nxt - t.s_una and tcp_out.output(t):
        return True  # the ACK rode on data
    if owed > t.mss or not t.delack_ms:
        tcp_out.fast_ack(t)  # at least every second full-sized segment (RFC 1122 4.2.3.2)
    else:
        t.ack_owed = owed
        if not t.delack_on:
            t.delack_on = True
            t.delack_deadline = ticks_add(s.now, t.delack_ms)
    return True


def fast_acks(t, r, k):
    """k pure ACKs of t that header prediction matched in a row in one poll's batch, r the last
    (it acknowledges the most; all had the predicted window): everything an ACK does here is
    cumulative, so the last is processed, as k ACKs (counted k times, and cwnd grown as for k
    ACKs: RFC 3465 counts per ACK received). A duplicate or older ACK is never among them
    (Stack.input processes what came before it first), so fast retransmit sees every one."""
    if k > 1:
        c = t.stack.cnt
        c[_ETH_RX] += k - 1
        c[_IP_RX] += k - 1
        c[_TCP_RX] += k - 1
        # the growth of the k - 1 ACKs before the last; _ack_advanced adds the last one's
        mss = t.mss
        acked = r >> 11
        if t.cwnd < t.ssthresh:
            g = acked if acked < k * mss else k * mss
            g -= acked if acked < mss else mss
        else:
            g = mss * mss // t.cwnd
            g = (k - 1) * (g if g > 0 else 1)
        if g > 0:
            t.cwnd += g
    fast_input(t, None, r)


def input(t, buf, ip_off, off, hl, plen):
    """A segment for this connection: TCP header at buf[off], hl header bytes, plen payload bytes."""
    st = t.state
    if st == _SYN_SENT:
        _input_syn_sent(t, buf, ip_off, off, hl, plen)
        return
    if st != _SYN_RECEIVED and (t.s_una > t.rebase_at or t.r_nxt > t.rebase_at):
        t._rebase()
    _input_synchronized(t, buf, ip_off, off, hl, plen)


def _input_syn_sent(t, buf, ip_off, off, hl, plen):
    """RFC 9293 3.10.7.3."""
    c = t.stack.cnt
    flags = buf[off + 13]
    ack = rel_read(buf, off + 8, t.s_bhi, t.s_blo, 0)  # the ISS is relative 0
    if flags & _ACK:
        # first: SEG.ACK =< ISS or SEG.ACK > SND.NXT is unacceptable
        if ack <= 0 or ack > t.s_nxt:
            if flags & _RST:
                c[_TCP_SYN_SENT_BAD_ACK_DROPPED] += 1
            else:
                c[_TCP_SYN_SENT_BAD_ACK_RST_SENT] += 1
                tcp_out.reset_for(t.stack, buf, ip_off, off, 0)
            return
    # second: the RST bit
    if flags & _RST:
        if flags & _ACK:
            # acceptable ACK: the peer refused the connection
            c[_TCP_CONNECT_REFUSED] += 1
            c[_TCP_RST_RECEIVED] += 1
            done(t, errors.ECONNREFUSED)
        else:
            c[_TCP_RST_BLIND_DROPPED] += 1
        return
    # third: security (IP security options are not used here); fourth: the SYN bit
    if not flags & _SYN:
        c[_TCP_SYN_SENT_NO_SYN_DROPPED] += 1
        return
    # the peer's SYN: IRS is the receive base (SEG.SEQ relative 0, RCV.NXT 1)
    t.irs = wtcp.get_seq(buf, off)
    t.r_bhi = buf[off + 4] << 8 | buf[off + 5]
    t.r_blo = buf[off + 6] << 8 | buf[off + 7]
    t.r_nxt = 1
    t.r_wl1 = 0
    t.r_wedge = 1 + t.last_wnd  # what our SYN offered
    t._th_bases()
    mss = wtcp.get_mss_option(buf, off, hl)
    if mss:
        if mss < _MIN_SND_MSS:
            mss = _MIN_SND_MSS  # Linux tcp_min_snd_mss: no flood of tiny segments
        t.mss = mss if mss < t.adv_mss else t.adv_mss
    t.sack_ok = wtcp.has_sack_permitted(buf, off, hl)
    set_wnd(t, wtcp.get_window(buf, off))
    t.max_snd_wnd = t.snd_wnd
    t.s_wl2 = ack
    t.last_rx = t.stack.now
    if flags & _ACK:
        t.s_una = ack
        t.s_max = ack
        established(t)
        # data on the SYN-ACK is accepted like any in-order data (RFC 9293 3.10.7.3, sixth)
        if plen:
            _take_data(t, buf, off + hl, plen)
        if flags & _FIN and t.r_nxt == 1 + plen:
            t.r_nxt += 1
            t.fin_received = True
            set_state(t, _CLOSE_WAIT)
        if tcp_out.output(t) == 0:
            tcp_out.send_ack(t)
    else:
        # simultaneous open (RFC 9293 3.10.7.3, fourth, SYN without ACK)
        c[_TCP_SIMULTANEOUS_OPEN] += 1
        set_state(t, _SYN_RECEIVED)
        tcp_out.emit(t, 0, _SYN | _ACK, 0, 0)
        set_timer(t, t.rto)


def established(t):
    """Our SYN was ACKed: RTT from the handshake (Karn), initial window, ESTABLISHED."""
    t.timer_on = False
    if t.retries == 0:
        if t.state == _SYN_SENT:
            r = ticks_diff(t.stack.now, t.connect_start)
            t.first_rtt_ms = r
            tcp_timer.rtt_sample(t, r)
        t.cwnd = t.tcp.config.init_cwnd * t.mss
    else:
        if t.rto < _RTO_FALLBACK_MS:
            t.rto = _RTO_FALLBACK_MS  # RFC 6298 5.7
        t.cwnd = t.mss  # RFC 5681 3.1: a lost SYN leaves a one-segment initial window
    t.retries = 0
    if t.keepalive:
        # asked for before the handshake finished: idle time counts from now (Linux
        # tcp_finish_connect -> inet_csk_reset_keepalive_timer)
        t.probes = 0
        arm_aux(t, t.ka_idle)
    t.stack.cnt[_TCP_ESTABLISHED] += 1
    set_state(t, _ESTABLISHED)
    tcp_out.build_template(t)


def _take_data(t, buf, off, n):
    """Copy in-order payload into the receive ring; returns bytes taken."""
    size = t.rx_size
    free = size - t.rx_len
    if n > free:
        t.stack.cnt[_TCP_RX_BUFFER_FULL] += 1
        n = free
    if n <= 0:
        return 0
    ring_write(t.rx, size, (t.rx_head + t.rx_len) % size, buf, off, n)
    t.rx_len += n
    t.r_nxt += n
    c = t.stack.cnt
    v = c[_TCP_RX_BYTES]  # wraps past 2**29, as in fast_input
    c[_TCP_RX_BYTES] = (v if v < _WRAP else v - _WRAP) + n
    return n


def _ooo_store(t, seq, buf, off, n):
    """Keep an out-of-order segment in the ring at its place past rcv_nxt and note its range."""
    c = t.stack.cnt
    cap = len(t.ooo) >> 1
    d = seq - t.r_nxt
    size = t.rx_size
    free = size - t.rx_len
    if cap == 0 or d >= free:
        c[_TCP_DROP_OUT_OF_ORDER] += 1
        return
    if d + n > free:
        n = free - d
    s = seq
    e = seq + n
    o = t.ooo
    # merge with every range it overlaps or touches
    i = 0
    while i < t.ooo_n:
        rs = o[2 * i]
        re = o[2 * i + 1]
        if rs <= e and s <= re:
            if rs < s:
                s = rs
            if re > e:
                e = re
            t.ooo_n -= 1
            last = t.ooo_n
            o[2 * i] = o[2 * last]
            o[2 * i + 1] = o[2 * last + 1]
        else:
            i += 1
    if t.ooo_n == cap:
        # full: forget the range farthest from rcv_nxt (or the new one if it is the farthest)
        far = -1
        fd = s - t.r_nxt
        for j in range(cap):
            dj = o[2 * j] - t.r_nxt
            if dj > fd:
                fd = dj
                far = j
        if far < 0:
            c[_TCP_DROP_OUT_OF_ORDER] += 1
            return
        t.ooo_n -= 1
        last = t.ooo_n
        o[2 * far] = o[2 * last]
        o[2 * far + 1] = o[2 * last + 1]
        c[_TCP_DROP_OUT_OF_ORDER] += 1
    ring_write(t.rx, size, (t.rx_head + t.rx_len + d) % size, buf, off, n)
    t.r_sack = seq
    o[2 * t.ooo_n] = s
    o[2 * t.ooo_n + 1] = e
    t.ooo_n += 1
    c[_TCP_OOO_QUEUED] += 1


def _fin_in(t):
    """The peer's FIN, in order: consume it, move state (RFC 9293 3.10.7.4, eighth)."""
    t.r_nxt += 1
    t.fin_received = True
    t.ooo_fin = False
    if t.ooo_n:
        # ranges held beyond the FIN can never be delivered: they go (Linux tcp_fin purges the
        # out-of-order queue), and our SACK blocks stop naming them
        t.stack.cnt[_TCP_OOO_PURGED] += 1
        t.ooo_n = 0
    if not t.rx_len:
        release_rx(t)  # nothing more can arrive, nothing waits to be read
    st = t.state
    if st == _ESTABLISHED or st == _SYN_RECEIVED:
        set_state(t, _CLOSE_WAIT)
    elif st == _FIN_WAIT_1:
        set_state(t, _CLOSING)
    elif st == _FIN_WAIT_2:
        tcp_out.send_ack(t)
        tcp_timer.enter_time_wait(t)


def _input_synchronized(t, buf, ip_off, off, hl, plen):
    """RFC 9293 3.10.7.4 for SYN-RECEIVED and every later state."""
    c = t.stack.cnt
    flags = buf[off + 13]
    seq = rel_read(buf, off + 4, t.r_bhi, t.r_blo, t.r_nxt)
    seg_len = plen
    if flags & _SYN:
        seg_len += 1
    if flags & _FIN:
        seg_len += 1
    if flags & (_SYN | _ACK | _RST | _FIN) == _SYN | _ACK and t.state == _SYN_RECEIVED \
            and seq == 0 and plen == 0:
        # simultaneous open: the peer's SYN-ACK for our SYN (RFC 9293 3.5 figure 8, line 6;
        # Linux tcp_validate_incoming "goto pass"), before RCV.NXT but it completes the open
        ack = rel_read(buf, off + 8, t.s_bhi, t.s_blo, t.s_una)
        if ack == t.s_nxt:
            t.last_rx = t.stack.now
            set_wnd(t, buf[off + 14] << 8 | buf[off + 15])
            t.max_snd_wnd = t.snd_wnd
            t.r_wl1 = seq
            t.s_wl2 = ack
            t.s_una = ack
            t.s_max = ack
            established(t)
            tcp_out.output(t)
            return
    wnd = t.rx_size - t.rx_len
    # first: sequence number acceptability (four cases), with the zero-window allowance: a
    # segment at RCV.NXT passes so that its ACK and window are used; data that finds the ring
    # full is dropped below and ACKed at once (Linux tcp_sequence / tcp_data_queue)
    rcv_nxt = t.r_nxt
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
    # second: the RST bit
    if flags & _RST:
        # RFC 5961 3.2 -- reset only on an exact match, challenge ACK when in window
        if seq == rcv_nxt:
            c[_TCP_RST_RECEIVED] += 1
            st = t.state
            if st == _SYN_RECEIVED:
                done(t, errors.ECONNREFUSED)
            elif st == _CLOSING or st == _LAST_ACK or st == _TIME_WAIT:
                done(t, 0)
            else:
                done(t, errors.ECONNRESET)
        elif ok:
            tcp_out.challenge_ack(t)
        else:
            c[_TCP_RST_BLIND_DROPPED] += 1
        return
    if not ok:
        c[_TCP_DROP_OUT_OF_WINDOW] += 1
        if flags & _SYN:
            tcp_out.challenge_ack(t)  # RFC 5961 4.2: any SYN, whatever its sequence number
        elif plen or seq == rcv_nxt - 1:
            # data, or a window / keep-alive probe (SEG.SEQ = RCV.NXT - 1): always answered;
            # only other out-of-window ACKs are rate limited
            tcp_out.send_ack(t)
        else:
            tcp_out.ratelimited_ack(t)
        if t.state == _TIME_WAIT and flags & _FIN:
            # the peer's FIN again: ACKed above, and 2 MSL starts over (RFC 9293 3.10.7.4)
            set_timer(t, t.tcp.config.time_wait_ms)
        return
    # third: security and compartment -- IP security options are not used by this stack
    # fourth: the SYN bit
    if flags & _SYN:
        # a SYN in a synchronized state -> challenge ACK (RFC 5961 4.2)
        if t.state == _SYN_RECEIVED and seq == 0:  # the IRS (no rebase before ESTABLISHED)
            tcp_out.emit(t, 0, _SYN | _ACK, 0, 0)  # our SYN-ACK was lost: resend it
            return
        tcp_out.challenge_ack(t)
        return
    # fifth: the ACK field
    if not flags & _ACK:
        c[_TCP_DROP_NO_ACK] += 1
        return
    t.last_rx = t.stack.now
    t.probes = 0  # the peer is alive (Linux tcp_ack: icsk_probes_out = 0)
    ack = rel_read(buf, off + 8, t.s_bhi, t.s_blo, t.s_una)
    win = buf[off + 14] << 8 | buf[off + 15]
    if t.state == _SYN_RECEIVED:
        if t.s_una < ack and ack <= t.s_nxt:
            set_wnd(t, win)
            t.max_snd_wnd = win
            t.r_wl1 = seq
            t.s_wl2 = ack
            t.s_una = ack
            t.s_max = ack
            established(t)
        else:
            tcp_out.reset_for(t.stack, buf, ip_off, off, 0)
            return
    elif ack > t.s_max:
        c[_TCP_ACK_UNSENT_DATA] += 1
        tcp_out.ratelimited_ack(t)
        return
    elif ack < t.s_una - t.max_snd_wnd:
        # RFC 5961 5.2: an ACK this old is a blind injection attempt -> challenge ACK, drop
        c[_TCP_ACK_TOO_OLD] += 1
        tcp_out.challenge_ack(t)
        return
    elif t.s_una < ack:
        _ack_advanced(t, ack)
        if t.state == _CLOSED:
            return
    elif ack == t.s_una and plen == 0 and not flags & _FIN and win == t.snd_wnd \
            and t.s_max != t.s_una:
        _dupack(t)
    # the send window, from an ACK that is not older than SND.UNA only (SND.UNA =< SEG.ACK
    # =< SND.NXT, RFC 9293 3.10.7.4 fifth, ESTABLISHED; the ACK above moved SND.UNA to it)
    if t.s_una <= ack and (t.r_wl1 < seq or (t.r_wl1 == seq and t.s_wl2 <= ack)):
        set_wnd(t, win)
        if win > t.max_snd_wnd:
            t.max_snd_wnd = win
        t.r_wl1 = seq
        t.s_wl2 = ack
        if win and (t.persist_shift or t.s_max == t.s_una) and t.state != _TIME_WAIT:
            # the window opened: the persist timer (the only one running with nothing in
            # flight) stops; output() below sends and starts the retransmission timer afresh
            t.persist_shift = 0
            t.timer_on = False
    st = t.state
    if st == _TIME_WAIT:
        return
    ack_now = False
    # sixth: the URG bit -- urgent data is not supported (RFC 6093): the pointer is ignored and
    # the bytes are delivered in line
    # seventh: segment text, trimmed to what is new (RFC 9293 3.10.7.4)
    if plen and (st == _ESTABLISHED or st == _FIN_WAIT_1 or st == _FIN_WAIT_2):
        if t.orphan:
            # nobody will read it: Linux answers data after close() with a RST (TCPAbortOnData)
            c[_TCP_ABORT_ON_DATA] += 1
            tcp_out.abort_with_rst(t, 0)
            return
        d = t.r_nxt - seq  # bytes of it already received
        if d < 0:
            _ooo_store(t, seq, buf, off + hl, plen)
            if flags & _FIN:  # processed when rcv_nxt reaches it
                t.ooo_fin = True
                t.r_ooo_fin = seq + plen
            tcp_out.send_ack(t)  # out of order: duplicate ACK at once (RFC 5681 4.2)
            tcp_out.output(t)  # then what its ACK and window allow (a data segment is no dupack)
            return
        if d < plen:
            had_holes = t.ooo_n
            took = _take_data(t, buf, off + hl + d, plen - d)
            if had_holes:
                # rcv_nxt moved: absorb the ranges it reached (their bytes are in the ring)
                o = t.ooo
                i = 0
                while i < t.ooo_n:
                    s = o[2 * i]
                    if s <= t.r_nxt:
                        e = o[2 * i + 1]
                        if e > t.r_nxt:
                            t.rx_len += e - t.r_nxt
                            v = c[_TCP_RX_BYTES]  # wraps past 2**29, as in fast_input
                            c[_TCP_RX_BYTES] = (v if v < _WRAP else v - _WRAP) + e - t.r_nxt
                            t.r_nxt = e
                        t.ooo_n -= 1
                        last = t.ooo_n
                        o[2 * i] = o[2 * last]
                        o[2 * i + 1] = o[2 * last + 1]
                        i = 0  # rcv_nxt moved again: look at every range anew
                    else:
                        i += 1
                ack_now = True  # a hole filled: ACK at once (RFC 5681 4.2)
            if took < plen - d:
                # the ring is full (a zero-window probe, or more than we offered): what did
                # not fit is dropped; ACK at once with the window we have (Linux
                # tcp_data_queue: zero window -> out_of_window -> quick ACK)
                ack_now = True
            t.ack_owed += took
            if t.ack_owed > t.mss or not t.delack_ms:
                ack_now = True  # at least every second full-sized segment (RFC 1122 4.2.3.2)
            elif not t.delack_on and t.ack_owed:
                t.delack_on = True
                t.delack_deadline = ticks_add(t.stack.now, t.delack_ms)
        else:
            ack_now = True  # all old: a duplicate, ACK it
    # eighth: FIN, once everything before it has arrived
    if flags & _FIN and not t.fin_received:
        if seq + plen == t.r_nxt:
            ack_now = True
            _fin_in(t)
            if t.state == _TIME_WAIT or t.state == _CLOSED:  # CLOSED: it became a record
                return
        elif seq + plen > t.r_nxt:
            t.ooo_fin = True
            t.r_ooo_fin = seq + plen
            ack_now = True  # out of order: duplicate ACK at once (RFC 5681 4.2)
    elif flags & _FIN and t.fin_received:
        ack_now = True  # a retransmitted FIN: ACK again
    if t.ooo_fin and t.r_ooo_fin == t.r_nxt and not t.fin_received:
        ack_now = True
        _fin_in(t)
        if t.state == _TIME_WAIT or t.state == _CLOSED:
            return
    if tcp_out.output(t) == 0 and ack_now:
        tcp_out.send_ack(t)


def _dupack(t):
    """A duplicate ACK (RFC 5681 2): fast retransmit on the third, NewReno recovery after."""
    t.dupacks += 1
    c = t.stack.cnt
    c[_TCP_DUPACK] += 1
    if t.in_recovery:
        t.cwnd += t.mss  # inflate: a segment left the network (RFC 6582 3.2 step 3)
        tcp_out.output(t)
        return
    # the threshold: 3 (RFC 5681), or fewer with under 4 segments out and nothing new to send
    # (RFC 5827 early retransmit, so a 2-segment window (2 KB rings) recovers without an RTO);
    # with new data to send, limited transmit brings more duplicate ACKs
    mss = t.mss
    flight = t.s_max - t.s_una
    oseg = (flight + mss - 1) // mss
    thresh = 3
    if oseg < 4 and not (t.tx_len - t.s_nxt + t.s_una > 0 and t.snd_wnd - flight > 0):
        thresh = oseg - 1 if oseg > 1 else 1
    if t.dupacks >= thresh and t.s_una >= t.s_recover:
        # RFC 6582 asks for SND.UNA > recover; >= lets a loss of the first segment sent after
        # the previous recovery be repaired at once (2-segment windows hit that often)
        c[_TCP_FAST_RETRANSMIT] += 1
        t.ssthresh = tcp_timer.half_flight(t)
        t.s_recover = t.s_max
        t.in_recovery = True
        tcp_out.retransmit_first(t)
        t.cwnd = t.ssthresh + 3 * t.mss
        set_timer(t, t.rto)  # no loss probe during recovery (RFC 8985 7.2)
    elif t.dupacks <= 2:
        # RFC 3042 limited transmit: a new segment for each of the first two duplicate ACKs
        # (beyond cwnd by at most 2 MSS), so that a small window still yields enough of them
        extra = t.dupacks * t.mss
        before = t.s_max
        t.cwnd += extra
        if tcp_out.output(t):
            c[_TCP_LIMITED_TRANSMIT] += 1
            t.lt_bytes += t.s_max - before
        t.cwnd -= extra


def _ack_advanced(t, ack):
    """SND.UNA < SEG.ACK =< SND.MAX: drop acknowledged bytes, time RTT, grow or deflate cwnd."""
    acked = ack - t.s_una
    data = acked
    fin_acked = False
    if t.fin_sent and acked > t.tx_len:
        fin_acked = True  # the FIN occupies the sequence number after the last data byte
        data = t.tx_len
    h = t.tx_head + data
    if h >= t.tx_size:
        h -= t.tx_size
    t.tx_head = h
    t.tx_len -= data
    if not t.tx_len and t.fin_pending:
        release_tx(t)  # all data acknowledged and nothing more can be queued
    t.s_una = ack
    if t.s_nxt < ack:
        t.s_nxt = ack  # after go-back-N the peer had more than we resent so far
    t.retries = 0
    t.dupacks = 0
    t.lt_bytes = 0
    if t.rtt_timing and ack >= t.s_rtt:
        t.rtt_timing = False
        tcp_timer.rtt_sample(t, ticks_diff(t.stack.now, t.rtt_start))
    mss = t.mss
    if t.in_recovery:
        if ack >= t.s_recover:
            # full ACK: leave fast recovery (RFC 6582 3.2 step 3, first option)
            t.in_recovery = False
            f = t.s_max - t.s_una
            t.cwnd = t.ssthresh if t.ssthresh < f + mss else f + mss
        else:
            # partial ACK: the next hole is lost too; resend it, deflate (RFC 6582 3.2 step 3)
            tcp_out.retransmit_first(t)
            t.cwnd = t.cwnd - acked + mss if t.cwnd - acked + mss > mss else mss
    elif t.cwnd < t.ssthresh:
        t.cwnd += acked if acked < mss else mss  # slow start (RFC 5681 3.1, ABC L=1)
    else:
        inc = mss * mss // t.cwnd  # congestion avoidance (RFC 5681 eq. 3)
        t.cwnd += inc if inc > 0 else 1
    if t.cwnd > 0x100000:
        t.cwnd = 0x100000
    t.tlp_out = False
    if t.s_una == t.s_max:
        t.timer_on = False
        t.tlp_armed = False
    else:
        tcp_out.arm_rexmit(t, True)
    if fin_acked:
        st = t.state
        if st == _FIN_WAIT_1:
            set_state(t, _FIN_WAIT_2)
            if t.orphan:
                t.fin_wait2_start = t.stack.now
                arm_aux(t, t.tcp.config.fin_wait2_ms)
        elif st == _CLOSING:
            tcp_timer.enter_time_wait(t)
        elif st == _LAST_ACK:
            done(t, 0)
