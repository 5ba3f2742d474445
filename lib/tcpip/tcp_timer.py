"""TCP timers (lwIP tcp.c's slow/fast timers, Linux tcp_timer.c): retransmission (RFC 6298) with
go-back-N, the tail loss probe (RFC 8985), the persist timer (RFC 9293 3.8.6.1), SYN retransmission,
TIME-WAIT, the delayed ACK, keep-alive (RFC 9293 3.8.4) and the orphan FIN-WAIT-2 limit; RTT
samples. Tcp.poll calls on_timer / on_delack when their deadlines pass (the keep-alive / FIN-WAIT-2
timer is tcpip.cold.on_aux).
"""
from tcpip import errors
from tcpip.tcp_core import done, set_state, set_timer
from tcpip import tcp_out

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_TCP_SYN_RETRANSMIT = const(43)
_TCP_CONNECT_TIMEOUT = const(44)
_TCP_REXMIT = const(57)
_TCP_DATA_TIMEOUT = const(58)
_TCP_RTO_EXPIRED = const(64)
_TCP_PERSIST_PROBE = const(68)
_TCP_TLP_PROBE = const(76)
_TCP_WINDOW_UPDATE_RESENT = const(77)

# states (tcpip.tcp_core)
_CLOSED = const(0)
_SYN_SENT = const(1)
_SYN_RECEIVED = const(2)
_TIME_WAIT = const(7)

_FIN = const(1)
_PSH = const(8)
_ACK = const(16)


def on_timer(t):
    cfg = t.tcp.config
    c = t.stack.cnt
    t.timer_on = False
    st = t.state
    if st == _TIME_WAIT:
        done(t, 0)
        return
    if st == _SYN_SENT or st == _SYN_RECEIVED:
        if t.retries >= cfg.syn_retries:
            c[_TCP_CONNECT_TIMEOUT] += 1
            done(t, errors.ETIMEDOUT)
            return
        t.retries += 1
        t.rto = min(t.rto * 2, cfg.rto_max_ms)
        t.rtt_timing = False  # Karn's rule: no sample from a retransmitted SYN
        c[_TCP_SYN_RETRANSMIT] += 1
        tcp_out.send_syn(t)
        set_timer(t, t.rto)
        return
    if t.tlp_armed:
        # RFC 8985 7.3 tail loss probe: resend the last segment so that its ACK (or duplicate
        # ACK) shows a lost tail quickly, instead of waiting for the RTO. One probe per episode.
        t.tlp_armed = False
        t.tlp_out = True
        flight = t.s_max - t.s_una
        if flight <= 0:
            return
        data = t.tx_len if t.tx_len < flight else flight  # data bytes out (FIN excluded)
        fin = flight > data
        n = data if data < t.mss else t.mss
        t.rtt_timing = False  # Karn
        t.stack.cnt[_TCP_TLP_PROBE] += 1
        if n > 0:
            tcp_out.emit(t, t.s_una + data - n, _ACK | _PSH | _FIN if fin else _ACK | _PSH, data - n, n)
        else:
            tcp_out.emit(t, t.s_max - 1, _ACK | _FIN, 0, 0)
        set_timer(t, t.rto)
        return
    flight = t.s_max - t.s_una
    if flight == 0 or (t.snd_wnd == 0 and t.tx_len > 0):
        if t.tx_len > 0 and t.snd_wnd == 0:
            # persist (RFC 9293 3.8.6.1): an old sequence number makes the peer answer with
            # its current window (Linux tcp_xmit_probe_skb); never gives up while answered.
            # Also when the peer shrank its window to zero under data in flight: that data
            # lay beyond the window, so go back to SND.UNA and probe "in the standard way",
            # without timing out (RFC 9293 3.8.6.1; Linux tcp_retransmit_timer).
            if t.probes >= cfg.data_retries:
                c[_TCP_DATA_TIMEOUT] += 1
                tcp_out.abort_with_rst(t, errors.ETIMEDOUT)
                return
            if t.orphan and t.persist_shift >= 8 and (
                    t.persist_shift == 10 or t.rto << t.persist_shift >= cfg.rto_max_ms):
                # nobody will ever read or write here again: an orphan's probes stop once
                # backed off to rto_max (Linux tcp_probe_timer, SOCK_DEAD: tcp_orphan_retries)
                c[_TCP_DATA_TIMEOUT] += 1
                tcp_out.abort_with_rst(t, 0)
                return
            if flight:
                t.s_nxt = t.s_una
                t.in_recovery = False
                t.dupacks = 0
                t.rtt_timing = False
            t.probes += 1
            if t.persist_shift < 10:
                t.persist_shift += 1
            c[_TCP_PERSIST_PROBE] += 1
            tcp_out.emit(t, t.s_una - 1, _ACK, 0, 0)
            set_timer(t, min(t.rto << t.persist_shift, cfg.rto_max_ms))
        return
    if t.retries >= cfg.data_retries:
        c[_TCP_DATA_TIMEOUT] += 1
        tcp_out.abort_with_rst(t, errors.ETIMEDOUT)
        return
    if t.retries == 0 or t.in_recovery:
        # RFC 5681 eq. (4) on the first timeout; held on repeated timeouts of the same data
        t.ssthresh = half_flight(t)
    t.retries += 1
    t.cwnd = t.mss  # loss window (RFC 5681 3.1)
    t.in_recovery = False
    t.s_recover = t.s_max  # RFC 6582 3.2 step 4: no fast retransmit for older dupacks
    t.dupacks = 0
    t.rto = min(t.rto * 2, cfg.rto_max_ms)
    t.rtt_timing = False
    c[_TCP_REXMIT] += 1
    c[_TCP_RTO_EXPIRED] += 1
    # go-back-N from snd_una (RFC 6298 5.4); ACKs may still arrive for up to snd_max
    t.s_nxt = t.s_una
    tcp_out.output(t)
    if not t.timer_on:
        set_timer(t, t.rto)


def half_flight(t):
    """RFC 5681 eq. (4): max(FlightSize / 2, 2 * SMSS), without what limited transmit sent."""
    h = (t.s_max - t.s_una - t.lt_bytes) >> 1
    m2 = 2 * t.mss
    return h if h > m2 else m2


def on_delack(t):
    t.delack_on = False
    st = t.state
    if st == _CLOSED or st == _SYN_SENT:
        return
    if t.ack_owed:
        tcp_out.send_ack(t)
    elif t.wupd and t.r_nxt == t.r_wupd and t.rx_size > t.rx_len:
        t.stack.cnt[_TCP_WINDOW_UPDATE_RESENT] += 1
        tcp_out.send_ack(t)
    t.wupd = False


def rtt_sample(t, r):
    """RFC 6298 2.2 / 2.3, in milliseconds (G = 1 ms)."""
    cfg = t.tcp.config
    if r < 1:
        r = 1
    if t.srtt == 0:
        t.srtt = r
        t.rttvar = r // 2
    else:
        d = t.srtt - r
        if d < 0:
            d = -d
        t.rttvar = (3 * t.rttvar + d) // 4
        t.srtt = (7 * t.srtt + r) // 8
    k = 4 * t.rttvar
    rto = t.srtt + (k if k > 1 else 1)
    if rto < cfg.rto_min_ms:
        rto = cfg.rto_min_ms
    if rto > cfg.rto_max_ms:
        rto = cfg.rto_max_ms
    t.rto = rto


def enter_time_wait(t):
    t.delack_on = False
    t.aux_on = False
    set_state(t, _TIME_WAIT)
    t.persist_shift = 0
    t.time_wait_start = t.stack.now
    set_timer(t, t.tcp.config.time_wait_ms)
    if t.orphan:
        t.tcp.time_wait(t)  # closed by the application: a 24-byte record instead of the Tcb
