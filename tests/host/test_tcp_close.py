# dual: cpython micropython
# Scripted segment-level tests of every close path (RFC 9293 3.6, 3.10.4, 3.10.5, 3.10.7.4):
# active, passive and simultaneous close, half-close, FIN retransmission, TIME-WAIT, the orphan
# FIN-WAIT-2 timeout, keep-alive in FIN-WAIT-2, an orphan behind a zero window, data after
# close(), abort (its RST at SND.MAX during go-back-N), close with unread data, and a RST arriving in
# each synchronized state with the error the application sees. Exact times (ManualClock) and
# exact segments; our ISS and the peer's IRS sit just below 2**32 so sequence numbers wrap.
from segment import ACK, FIN, PSH, RST, SYN, Harness
from tcpip import errors
from tcpip import tcp

from tcpcase import (IRS, ISS, MSS, expect, fix_isn, layout, nothing, pattern, peer, read_all, rel,
                     segs, setup, sq, to)


# -- states reached the normal way --------------------------------------------------------------
def in_close_wait(**opts):
    h, tcb = setup(**opts)
    peer(h, tcb, 0, 0, flags=ACK | FIN)
    expect(h, ACK, 0, 1)
    assert tcb.state == tcp.CLOSE_WAIT
    return h, tcb


def in_last_ack(**opts):
    h, tcb = in_close_wait(**opts)
    tcb.close()
    expect(h, ACK | FIN, 0, 1)
    assert tcb.state == tcp.LAST_ACK
    return h, tcb


def in_fin_wait_1(orphan=False, **opts):
    h, tcb = setup(**opts)
    if orphan:
        tcb.close()
    else:
        tcb.shutdown_write()
    expect(h, ACK | FIN, 0, 0)
    assert tcb.state == tcp.FIN_WAIT_1
    return h, tcb


def in_fin_wait_2(orphan=False, **opts):
    h, tcb = in_fin_wait_1(orphan, **opts)
    peer(h, tcb, 0, 1)
    nothing(h)
    assert tcb.state == tcp.FIN_WAIT_2
    return h, tcb


def in_closing(**opts):
    h, tcb = in_fin_wait_1(**opts)
    peer(h, tcb, 0, 0, flags=ACK | FIN)  # crosses our FIN
    expect(h, ACK, 1, 1)
    assert tcb.state == tcp.CLOSING
    return h, tcb


def in_time_wait(**opts):
    h, tcb = in_fin_wait_2(**opts)
    peer(h, tcb, 0, 1, flags=ACK | FIN)
    expect(h, ACK, 1, 1)
    assert tcb.state == tcp.TIME_WAIT
    return h, tcb


def in_syn_received():
    h = Harness()
    fix_isn(h)
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN, IRS, 0, 65535, mss=MSS))  # simultaneous open
    h.expect_tcp(SYN | ACK, seq=ISS, ack=sq(IRS + 1))
    assert tcb.state == tcp.SYN_RECEIVED
    return h, tcb


def tw_record(h, tcb):
    """tcb, closed by the application, went on in TIME-WAIT as a record (Tcp.time_wait): its
    (SND.NXT, RCV.NXT) as offsets from each side's first data byte."""
    t = h.stack.tcp
    assert tcb.state == tcp.CLOSED and tcb.error == 0 and t.tcbs == [], tcb.state_name()
    assert t.tw_n == 1
    r = bytes(t.tw[0:24])
    assert r[0:4] == tcb.local_addr and r[4:8] == tcb.remote_addr
    assert (r[8] << 8 | r[9], r[10] << 8 | r[11]) == (tcb.local_port, tcb.remote_port)
    return (rel(int.from_bytes(r[12:16], "big"), sq(ISS + 1)), rel(int.from_bytes(r[16:20], "big"), sq(IRS + 1)))


def gone(h, tcb, err):
    assert tcb.state == tcp.CLOSED, tcb.state_name()
    assert tcb.error == err, (tcb.error, err)
    assert h.stack.tcp.tcbs == []
    assert not tcb.timer_on and not tcb.delack_on and not tcb.aux_on


# -- active close ----------------------------------------------------------------------------------
def test_active_close_through_time_wait():
    h, tcb = setup(time_wait_ms=5000)
    tcb.close()
    expect(h, FIN | ACK, 0, 0)
    assert tcb.state == tcp.FIN_WAIT_1
    peer(h, tcb, 0, 1)
    assert tcb.state == tcp.FIN_WAIT_2
    peer(h, tcb, 0, 1, flags=FIN | ACK)
    expect(h, ACK, 1, 1)
    # closed by the application: TIME-WAIT is a record now, the Tcb is gone
    assert tcb.state == tcp.CLOSED and h.stack.tcp.tcbs == [] and h.stack.tcp.tw_n == 1
    # a retransmitted FIN is ACKed again (from the record) and restarts 2 MSL
    h.advance(3000)
    peer(h, tcb, 0, 1, flags=FIN | ACK)
    expect(h, ACK, 1, 1)
    h.advance(4999)
    assert h.stack.tcp.tw_n == 1
    h.advance(1)
    assert h.stack.tcp.tw_n == 0


def test_simultaneous_close():
    h, tcb = setup()
    tcb.close()
    expect(h, FIN | ACK, 0, 0)
    peer(h, tcb, 0, 0, flags=FIN | ACK)  # crosses ours: does not ACK our FIN
    expect(h, ACK, 1, 1)
    assert tcb.state == tcp.CLOSING
    peer(h, tcb, 1, 1)
    assert tcb.state == tcp.CLOSED and h.stack.tcp.tw_n == 1  # TIME-WAIT, as a record


def test_fin_piggybacks_on_queued_data():
    h, tcb = setup()
    h.stack.now = h.clock.ticks_ms()
    tcb.snd_wnd = 0  # hold the data back
    tcb.send(b"data", 0, 4)
    nothing(h)
    tcb.close()
    nothing(h)
    peer(h, tcb, 0, 0, window=1000)
    expect(h, ACK | PSH | FIN, 0, 0, payload=b"data")
    assert tcb.state == tcp.FIN_WAIT_1


def test_half_close_keeps_receiving_through_fin_wait_states_to_time_wait():
    h, tcb = setup(time_wait_ms=4000)
    tcb.shutdown_write()
    expect(h, ACK | FIN, 0, 0)
    assert tcb.state == tcp.FIN_WAIT_1
    assert tcb.send(b"late", 0, 4) == 0 and not tcb.writable()
    to(h, 10)
    peer(h, tcb, 0, 0, payload=b"abc")  # our FIN not yet ACKed: data still flows to us
    nothing(h)
    to(h, 50)
    expect(h, ACK, 1, 3)  # delayed ACK; our sequence number counts the FIN
    to(h, 60)
    peer(h, tcb, 3, 1, payload=b"def")  # ACKs our FIN, with more data
    assert tcb.state == tcp.FIN_WAIT_2 and not tcb.timer_on
    to(h, 100)
    expect(h, ACK, 1, 6)
    to(h, 200000)  # not orphaned: FIN-WAIT-2 waits for the peer as long as it takes
    nothing(h)
    assert tcb.state == tcp.FIN_WAIT_2
    peer(h, tcb, 6, 1, payload=b"g", flags=ACK | FIN)
    expect(h, ACK, 1, 8)
    assert tcb.state == tcp.TIME_WAIT and tcb.fin_received and tcb.readable()
    assert read_all(tcb) == b"abcdefg"
    nothing(h)  # no window update from TIME-WAIT
    to(h, 203999)
    assert tcb.state == tcp.TIME_WAIT
    to(h, 204000)
    gone(h, tcb, 0)
    nothing(h)


def test_fin_and_the_ack_of_our_fin_in_one_segment_go_to_time_wait():
    h, tcb = setup(time_wait_ms=3000, fin_wait2_ms=1000)
    tcb.close()
    expect(h, ACK | FIN, 0, 0)
    to(h, 20)
    peer(h, tcb, 0, 1, flags=ACK | FIN)  # FIN-WAIT-1 -> (FIN-WAIT-2) -> TIME-WAIT at once
    expect(h, ACK, 1, 1)
    assert tw_record(h, tcb) == (1, 1)
    to(h, 3019)
    nothing(h)  # the orphan FIN-WAIT-2 limit (1 s) does not apply any more
    assert h.stack.tcp.tw_n == 1
    to(h, 3020)
    assert h.stack.tcp.tw_n == 0
    nothing(h)


def test_simultaneous_close_retransmits_our_fin_in_closing():
    h, tcb = setup(time_wait_ms=2000)
    tcb.close()
    expect(h, ACK | FIN, 0, 0)
    to(h, 50)
    peer(h, tcb, 0, 0, flags=ACK | FIN)
    expect(h, ACK, 1, 1)
    assert tcb.state == tcp.CLOSING
    to(h, 199)
    nothing(h)
    to(h, 200)
    expect(h, ACK | FIN, 0, 1)  # our FIN was lost: retransmitted on the RTO
    to(h, 250)
    peer(h, tcb, 1, 1)
    assert tw_record(h, tcb) == (1, 1)
    to(h, 2249)
    assert h.stack.tcp.tw_n == 1
    to(h, 2250)
    assert h.stack.tcp.tw_n == 0


def test_fin_retransmitted_with_backoff_then_etimedout():
    h, tcb = in_fin_wait_1(orphan=True, data_retries=2)
    to(h, 199)
    nothing(h)
    to(h, 200)
    expect(h, ACK | FIN, 0, 0)
    to(h, 599)
    nothing(h)
    to(h, 600)
    expect(h, ACK | FIN, 0, 0)
    to(h, 1399)
    nothing(h)
    to(h, 1400)
    expect(h, RST | ACK, 1, 0)
    gone(h, tcb, errors.ETIMEDOUT)


def test_time_wait_acks_every_retransmitted_fin_and_restarts_2msl():
    h, tcb = in_time_wait(time_wait_ms=5000)
    # RFC 9293 3.10.7.4 TIME-WAIT: acknowledge a retransmitted FIN and restart the 2 MSL timeout;
    # it occupies sequence space, so no ACK rate limit applies (Linux tcp_oow_rate_limited)
    for t in (100, 200, 300):
        to(h, t)
        peer(h, tcb, 0, 1, flags=ACK | FIN)
        expect(h, ACK, 1, 1)
    to(h, 5299)
    assert tcb.state == tcp.TIME_WAIT
    to(h, 5300)
    gone(h, tcb, 0)


def test_time_wait_ignores_a_plain_ack():
    h, tcb = in_time_wait(time_wait_ms=5000)
    to(h, 1000)
    peer(h, tcb, 1, 1)
    nothing(h)
    to(h, 5000)
    gone(h, tcb, 0)  # not restarted


def test_keepalive_goes_on_in_fin_wait_2_after_a_half_close():
    # Linux tcp_keepalive_timer probes every state but CLOSE and SYN-SENT (an orphan FIN-WAIT-2
    # has its own limit): a half-closed connection whose peer vanished is found dead, not kept
    # forever (FIN-WAIT-2 without an orphan otherwise waits as long as it takes).
    h, tcb = setup()
    tcb.set_keepalive(True, idle_ms=10000, interval_ms=1000, count=2)
    tcb.shutdown_write()
    expect(h, ACK | FIN, 0, 0)
    peer(h, tcb, 0, 1)  # our FIN is acknowledged: FIN-WAIT-2, the peer never closes
    nothing(h)
    assert tcb.state == tcp.FIN_WAIT_2
    for t in (10000, 11000):
        to(h, t - 1)
        nothing(h)
        to(h, t)
        out = segs(h)
        assert len(out) == 1 and out[0].tcp.flags == ACK, layout(out)
        assert out[0].tcp.seq == sq(ISS + 1)  # SND.UNA - 1: an old sequence number (our FIN's)
    to(h, 12000)
    expect(h, RST | ACK, 1, 0)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ETIMEDOUT


# -- passive close ---------------------------------------------------------------------------------
def test_peer_closes_first_passive_close():
    h, tcb = setup()
    peer(h, tcb, 0, 0, payload=b"bye", flags=FIN | ACK)
    expect(h, ACK, 0, 4)
    assert tcb.state == tcp.CLOSE_WAIT and tcb.fin_received
    buf = bytearray(8)
    assert tcb.recv_into(buf, 0, 8) == 3
    tcb.close()
    expect(h, FIN | ACK, 0, 4)
    assert tcb.state == tcp.LAST_ACK
    peer(h, tcb, 4, 1)
    assert tcb.state == tcp.CLOSED and tcb.error == 0
    assert h.stack.tcp.tcbs == []


def test_passive_close_sends_queued_data_then_fin_through_last_ack():
    h, tcb = in_close_wait()
    assert tcb.fin_received and tcb.readable() and read_all(tcb) == b""
    assert tcb.send(b"resp", 0, 4) == 4  # CLOSE-WAIT may still send
    expect(h, ACK | PSH, 0, 1, payload=b"resp")
    tcb.close()
    expect(h, ACK | FIN, 4, 1)
    assert tcb.state == tcp.LAST_ACK
    peer(h, tcb, 1, 4)  # the data only
    assert tcb.state == tcp.LAST_ACK and tcb.timer_on
    peer(h, tcb, 1, 5)  # and the FIN
    gone(h, tcb, 0)
    nothing(h)


def test_last_ack_fin_retransmitted_on_rto():
    h, tcb = in_last_ack()
    to(h, 199)
    nothing(h)
    to(h, 200)
    expect(h, ACK | FIN, 0, 1)
    to(h, 599)
    nothing(h)
    to(h, 600)
    expect(h, ACK | FIN, 0, 1)
    peer(h, tcb, 1, 1)
    gone(h, tcb, 0)


def test_peer_fin_while_our_data_is_in_flight():
    h, tcb = setup()
    tcb.send(b"abc", 0, 3)
    expect(h, ACK | PSH, 0, 0, payload=b"abc")
    to(h, 50)
    peer(h, tcb, 0, 0, flags=ACK | FIN)  # does not ACK our data
    expect(h, ACK, 3, 1)
    assert tcb.state == tcp.CLOSE_WAIT
    to(h, 200)
    expect(h, ACK | PSH, 0, 1, payload=b"abc")  # still retransmitted
    peer(h, tcb, 1, 3)
    assert tcb.tx_len == 0 and not tcb.timer_on
    tcb.close()
    expect(h, ACK | FIN, 3, 1)
    peer(h, tcb, 1, 4)
    gone(h, tcb, 0)


def test_close_after_reading_everything_sends_fin_not_rst():
    h, tcb = setup()
    peer(h, tcb, 0, 0, payload=b"bye", flags=ACK | FIN)
    expect(h, ACK, 0, 4)
    assert read_all(tcb) == b"bye" and read_all(tcb) == b""
    tcb.close()
    expect(h, ACK | FIN, 0, 4)
    assert h.stack.counters.tcp_abort_on_close == 0


# -- the orphan (closed socket) ---------------------------------------------------------------------
def test_orphan_fin_wait_2_times_out_with_rst():
    h, tcb = setup(fin_wait2_ms=5000)
    tcb.close()
    expect(h, ACK | FIN, 0, 0)
    to(h, 100)
    peer(h, tcb, 0, 1)
    assert tcb.state == tcp.FIN_WAIT_2
    to(h, 5099)
    nothing(h)
    to(h, 5100)
    expect(h, RST | ACK, 1, 0)
    gone(h, tcb, 0)
    assert h.stack.counters.tcp_fin_wait2_timeout == 1


def test_close_in_fin_wait_2_starts_the_orphan_timer():
    h, tcb = in_fin_wait_2(fin_wait2_ms=5000)
    to(h, 100000)
    nothing(h)
    tcb.close()
    nothing(h)
    to(h, 104999)
    nothing(h)
    to(h, 105000)
    expect(h, RST | ACK, 1, 0)
    gone(h, tcb, 0)


def test_peer_fin_cancels_the_orphan_fin_wait_2_timer():
    h, tcb = in_fin_wait_2(orphan=True, fin_wait2_ms=5000, time_wait_ms=10000)
    to(h, 1000)
    peer(h, tcb, 0, 1, flags=ACK | FIN)
    expect(h, ACK, 1, 1)
    to(h, 10999)
    nothing(h)
    assert tw_record(h, tcb) == (1, 1)
    to(h, 11000)
    assert h.stack.tcp.tw_n == 0
    nothing(h)


def test_orphan_behind_a_zero_window_is_aborted_at_last():
    # Linux tcp_probe_timer: "if the socket is orphaned ... we kill the socket when the retry count
    # and the time exceeds the corresponding system limit" -- an orphan's probes back off to
    # TCP_RTO_MAX and then it is aborted, even though the peer answers every probe. Without that a
    # closed socket whose peer never reads holds its Tcb and rings forever.
    h, tcb = setup(window=0)
    assert tcb.send(b"abc", 0, 3) == 3
    nothing(h)
    tcb.close()  # orphaned: the FIN waits behind the data, the data behind the zero window
    nothing(h)
    assert tcb.orphan and tcb.state == tcp.ESTABLISHED
    for _ in range(40):  # bounded
        if tcb.state == tcp.CLOSED:
            break
        to(h, h.clock.ticks_ms() + 200000)
        out = segs(h)
        if tcb.state != tcp.CLOSED:
            peer(h, tcb, 0, 0, window=0)  # every probe answered
            segs(h)
    assert tcb.state == tcp.CLOSED
    assert h.stack.tcp.tcbs == []
    assert out and out[-1].tcp.flags == RST | ACK


def test_data_after_close_in_fin_wait_2_gets_rst():
    h, tcb = in_fin_wait_2(orphan=True)
    peer(h, tcb, 0, 1, payload=b"late")
    # nobody can read it: Linux answers with a RST (TCPAbortOnData); the data is not ACKed
    expect(h, RST | ACK, 1, 0)
    gone(h, tcb, 0)
    assert h.stack.counters.tcp_abort_on_data == 1


def test_data_after_close_in_fin_wait_1_gets_rst():
    h, tcb = in_fin_wait_1(orphan=True)
    peer(h, tcb, 0, 0, payload=b"late")
    expect(h, RST | ACK, 1, 0)
    gone(h, tcb, 0)


def test_fin_without_data_after_close_is_acked_not_reset():
    h, tcb = in_fin_wait_2(orphan=True, time_wait_ms=1000)
    peer(h, tcb, 0, 1, flags=ACK | FIN)
    expect(h, ACK, 1, 1)
    assert tw_record(h, tcb) == (1, 1) and h.stack.counters.tcp_abort_on_data == 0


# -- abort and close with unread data (RFC 9293 3.10.5, RFC 2525 2.17) -----------------------------
def test_abort_sends_rst_at_snd_nxt_and_reports_no_error():
    h, tcb = setup()
    tcb.send(b"abc", 0, 3)
    expect(h, ACK | PSH, 0, 0, payload=b"abc")
    tcb.abort()
    expect(h, RST | ACK, 3, 0)
    gone(h, tcb, 0)
    to(h, 5000)
    nothing(h)  # no retransmission afterwards


def test_rst_on_abort_during_go_back_n_carries_snd_max():
    # After an RTO SND.NXT falls back to SND.UNA; the peer may already hold everything up to
    # SND.MAX (only its ACKs were lost). A RST must use the highest sequence number sent
    # (RFC 9293 3.10.7.4 <SEQ=SND.NXT>; Linux tcp_acceptable_seq uses snd_nxt, never rewound), or
    # an RFC 5961 peer whose RCV.NXT is past it drops the RST and keeps its connection.
    h, tcb = setup(tx_buffer=8000)
    data = pattern(5840)
    tcb.send(data, 0, 5840)
    assert len(segs(h)) == 4
    to(h, 10)  # the tail loss probe (2 * SRTT, at least 10 ms) resends the last segment
    assert layout(segs(h)) == [(4380, MSS, ACK | PSH)]
    to(h, 10 + tcb.rto)  # the RTO: go-back-N, one segment (cwnd = 1 MSS)
    expect(h, ACK, 0, payload=data[:MSS])
    assert tcb.snd_nxt != tcb.snd_max
    tcb.abort()
    expect(h, RST | ACK, 5840)
    assert tcb.state == tcp.CLOSED


def test_abort_in_close_wait_sends_rst():
    h, tcb = in_close_wait()
    tcb.abort()
    expect(h, RST | ACK, 0, 1)
    gone(h, tcb, 0)


def test_abort_in_time_wait_sends_nothing():
    h, tcb = in_time_wait()
    tcb.abort()
    # RFC 9293 3.10.5 ABORT in CLOSING / LAST-ACK / TIME-WAIT: "respond with ok and delete the
    # TCB" -- no RST (Linux tcp_disconnect: tcp_need_reset() is false in these states)
    nothing(h)
    gone(h, tcb, 0)


def test_abort_in_last_ack_sends_nothing():
    h, tcb = in_last_ack()
    tcb.abort()
    nothing(h)
    gone(h, tcb, 0)


def test_abort_in_closing_sends_nothing():
    h, tcb = in_closing()
    tcb.abort()
    nothing(h)
    gone(h, tcb, 0)


def test_close_with_unread_data_sends_rst():
    h, tcb = setup()
    peer(h, tcb, 0, 0, payload=b"unread")
    segs(h)
    tcb.close()
    expect(h, RST | ACK, 0, 6)
    assert tcb.state == tcp.CLOSED


def test_close_with_unread_data_in_close_wait_sends_rst():
    h, tcb = setup()
    peer(h, tcb, 0, 0, payload=b"xyz", flags=ACK | FIN)
    expect(h, ACK, 0, 4)
    tcb.close()
    expect(h, RST | ACK, 0, 4)
    gone(h, tcb, 0)
    assert h.stack.counters.tcp_abort_on_close == 1


# -- a RST arriving in each state (RFC 9293 3.10.7.4 second; exact sequence number, RFC 5961) ------
def test_rst_in_established_with_data_in_flight_is_connection_reset():
    h, tcb = setup()
    tcb.send(b"abc", 0, 3)
    expect(h, ACK | PSH, 0, 0, payload=b"abc")
    peer(h, tcb, 0, 0, flags=RST)
    nothing(h)
    gone(h, tcb, errors.ECONNRESET)
    to(h, 5000)
    nothing(h)


def test_rst_in_fin_wait_1_is_connection_reset():
    h, tcb = in_fin_wait_1()
    peer(h, tcb, 0, 0, flags=RST | ACK)
    nothing(h)
    gone(h, tcb, errors.ECONNRESET)


def test_rst_in_fin_wait_2_is_connection_reset():
    h, tcb = in_fin_wait_2()
    peer(h, tcb, 0, 1, flags=RST)
    nothing(h)
    gone(h, tcb, errors.ECONNRESET)


def test_rst_in_close_wait_is_connection_reset():
    h, tcb = in_close_wait()
    peer(h, tcb, 1, 0, flags=RST)  # RCV.NXT is past the peer's FIN
    nothing(h)
    gone(h, tcb, errors.ECONNRESET)


def test_rst_in_closing_closes_without_error():
    h, tcb = in_closing()
    peer(h, tcb, 1, 0, flags=RST)
    nothing(h)
    gone(h, tcb, 0)  # RFC 9293: CLOSING, LAST-ACK, TIME-WAIT: "enter CLOSED ... and return"


def test_rst_in_last_ack_closes_without_error():
    h, tcb = in_last_ack()
    peer(h, tcb, 1, 0, flags=RST)
    nothing(h)
    gone(h, tcb, 0)


def test_rst_in_time_wait_closes_it():
    h, tcb = in_time_wait()
    peer(h, tcb, 1, 1, flags=RST)
    nothing(h)
    gone(h, tcb, 0)


def test_rst_in_time_wait_with_wrong_sequence_number_does_not_close_it():
    h, tcb = in_time_wait()
    peer(h, tcb, 0, 1, flags=RST)  # the peer's FIN's own sequence number: one below RCV.NXT
    nothing(h)
    assert tcb.state == tcp.TIME_WAIT


def test_rst_in_syn_received_challenge_then_refused():
    h, tcb = in_syn_received()
    h.feed(h.segment(tcb, RST, sq(IRS + 1 + 100), 0))  # in the window, not RCV.NXT
    h.expect_tcp(ACK, seq=sq(ISS + 1), ack=sq(IRS + 1))  # challenge ACK (RFC 5961 3.2)
    assert tcb.state == tcp.SYN_RECEIVED
    h.feed(h.segment(tcb, RST, sq(IRS + 1), 0))
    nothing(h)
    gone(h, tcb, errors.ECONNREFUSED)  # came from SYN-SENT: "connection refused"
