# dual: cpython micropython
# Scripted segment-level tests of data transfer (issue 3): the rings and both windows, the persist
# timer, the RFC 6298 retransmission timer, RFC 5681 / RFC 6582 congestion control with go-back-N,
# out-of-order reassembly (RFC 9293 3.10.7.4), delayed ACK, Nagle and keep-alive. Every time is
# exact (ManualClock) and every segment is checked for seq, ack, flags, payload and window.
# Our ISS and the peer's IRS are fixed just below 2**32, so sequence numbers wrap in every test.
from segment import ACK, FIN, PEER_IP, PSH, RST, SYN, Harness
from tcpip import errors
from tcpip import tcp

from tcpcase import (IRS, ISS, MASK, MSS, expect, fix_isn, layout, nothing, pattern, peer,
                     read_all, segs, setup, sq, to)


# -- rings and windows -------------------------------------------------------------------------
def test_send_ring_full_send_returns_what_fits():
    h, tcb = setup(tx_buffer=1000)
    data = pattern(1500)
    assert tcb.send(data, 0, 1500) == 1000
    expect(h, ACK | PSH, 0, payload=data[:1000])
    assert tcb.tx_free() == 0 and not tcb.writable()
    assert tcb.send(data, 1000, 500) == 0
    peer(h, tcb, 0, 400)  # frees 400 bytes of the ring
    nothing(h)
    assert tcb.tx_free() == 400 and tcb.writable()
    assert tcb.send(data, 1000, 500) == 400
    nothing(h)  # Nagle: the 1000-byte segment is small and still unacknowledged
    peer(h, tcb, 0, 1000)
    expect(h, ACK | PSH, 1000, payload=data[1000:1400])
    assert tcb.tx_len == 400


def test_per_connection_ring_sizes():
    h = Harness()
    fix_isn(h)
    tcb = h.stack.tcp.connect(None, 0, PEER_IP, 80, rx_size=300, tx_size=100)
    syn = h.expect_tcp(SYN, seq=ISS)
    assert syn.tcp.window == 300
    assert len(tcb.rx) == 300 and len(tcb.tx) == 100
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), 65535, mss=MSS))
    expect(h, ACK, 0, window=300)
    assert tcb.send(pattern(500), 0, 500) == 100
    expect(h, ACK | PSH, 0, payload=pattern(100))


def test_receive_window_is_the_free_space_and_updates_at_half_the_ring():
    h, tcb = setup(delayed_ack_ms=0)  # rx ring 2048, adv MSS 1460: update threshold 1024
    data = pattern(2000, 3)
    peer(h, tcb, 0, 0, payload=data[:1000])
    expect(h, ACK, 0, 1000, window=1048)
    peer(h, tcb, 1000, 0, payload=data[1000:])
    expect(h, ACK, 0, 2000, window=48)
    buf = bytearray(2048)
    assert tcb.recv_into(buf, 0, 1023) == 1023
    nothing(h)  # the window grew by 1023 < min(MSS, ring/2): no update (RFC 9293 3.8.6.2.2)
    assert tcb.recv_into(buf, 1023, 1) == 1
    expect(h, ACK, 0, 2000, window=1072)
    assert tcb.recv_into(buf, 1024, 2048) == 976
    assert bytes(buf[:2000]) == data
    nothing(h)  # grew by only 976 since the last advertisement


def test_window_update_once_reading_doubles_a_half_closed_window():
    # Linux tcp_cleanup_rbuf: reading sends a window update only when what is left of the window
    # we advertised is half the ring or less and the new window is at least twice that (and,
    # RFC 9293 3.8.6.2.2, the right edge moves by min(MSS, ring/2) or more); other reads wait for
    # the next ACK, which carries the window anyway
    h, tcb = setup(rx_buffer=8000, delayed_ack_ms=0)  # SWS threshold min(1460, 4000)
    data = pattern(5600, 5)
    for i in range(4):
        peer(h, tcb, 1400 * i, 0, payload=data[1400 * i:1400 * (i + 1)])
        expect(h, ACK, 0, 1400 * (i + 1), window=8000 - 1400 * (i + 1))
    buf = bytearray(5600)  # 2400 of the window are left: half the ring or less
    assert tcb.recv_into(buf, 0, 1460) == 1460
    nothing(h)  # 3860 is less than twice 2400
    assert tcb.recv_into(buf, 1460, 939) == 939
    nothing(h)
    assert tcb.recv_into(buf, 2399, 1) == 1
    expect(h, ACK, 0, 5600, window=4800)
    assert tcb.recv_into(buf, 2400, 5600) == 3200
    nothing(h)  # 8000 left of the 8000 advertised: more than half the ring
    assert bytes(buf) == data


def test_receiver_sws_no_small_window_in_answers_to_probes():
    # RFC 9293 3.8.6.2.2: the receiver MUST avoid SWS -- keep RCV.NXT + RCV.WND fixed until the
    # window can grow by min(Fr * RCV.BUFF, Eff.snd.MSS) (Linux __tcp_select_window advertises 0
    # while the free space is below one MSS). An answer to a zero-window probe after a small read
    # must not offer the few bytes read, or the peer sends them as a tiny segment.
    h, tcb = setup(delayed_ack_ms=0)  # rx ring 2048: threshold min(1024, 1460) = 1024
    data = pattern(2048, 9)
    peer(h, tcb, 0, 0, payload=data[:1460])
    expect(h, ACK, 0, 1460, window=588)
    peer(h, tcb, 1460, 0, payload=data[1460:])
    expect(h, ACK, 0, 2048, window=0)
    buf = bytearray(2048)
    assert tcb.recv_into(buf, 0, 100) == 100
    nothing(h)
    peer(h, tcb, 2047, 0)  # the peer's zero-window probe (SEG.SEQ = RCV.NXT - 1)
    expect(h, ACK, 0, 2048, window=0)
    peer(h, tcb, 2048, 0, payload=data[:1])  # a byte pushed into the zero window anyway
    expect(h, ACK, 0, 2049, window=0)  # accepted (there is room) but the edge stays put
    assert tcb.recv_into(buf, 100, 924) == 924
    nothing(h)  # 1023 bytes free: still below the threshold
    assert tcb.recv_into(buf, 1024, 1) == 1  # 1024 free: now the window opens
    expect(h, ACK, 0, 2049, window=1024)
    assert bytes(buf[:1025]) == data[:1025]
    assert tcb.recv_into(buf, 0, 2048) == 1024
    expect(h, ACK, 0, 2049, window=2048)


def test_peer_window_update_releases_data_and_is_no_duplicate_ack():
    h, tcb = setup(window=1000, tx_buffer=4000)
    data = pattern(3000)
    assert tcb.send(data, 0, 3000) == 3000
    # only the window's worth goes: 1000 bytes, no PSH (more is queued)
    expect(h, ACK, 0, payload=data[:1000])
    nothing(h)
    # the peer's window opens without acknowledging anything: a window update, not a dupack
    peer(h, tcb, 0, 0, window=2460)
    expect(h, ACK, 1000, payload=data[1000:2460])
    assert tcb.dupacks == 0 and h.stack.counters.tcp_dupack == 0
    assert tcb.snd_wnd == 2460


def test_persist_probes_back_off_to_rto_max_and_never_give_up_while_answered():
    h, tcb = setup(window=0, data_retries=3)
    assert tcb.rto == 200
    assert tcb.send(b"abc", 0, 3) == 3
    nothing(h)
    # probe k at 200 * (2**k - 1) ms until the interval (200 << k) reaches rto_max_ms (120 s)
    times = [200, 600, 1400, 3000, 6200, 12600, 25400, 51000, 102200, 204600, 324600, 444600]
    for t in times:
        to(h, t - 1)
        nothing(h)
        to(h, t)
        # the probe repeats an old sequence number (SND.UNA - 1) so that the peer must answer
        expect(h, ACK, -1, 0, payload=b"")
        peer(h, tcb, 0, 0, window=0)  # answered, still closed: more probes than data_retries is fine
        nothing(h)
    assert tcb.state == tcp.ESTABLISHED
    assert h.stack.counters.tcp_persist_probe == len(times)
    peer(h, tcb, 0, 0, window=100)  # the window opens
    expect(h, ACK | PSH, 0, payload=b"abc")


def test_unanswered_persist_probes_time_out_with_rst():
    h, tcb = setup(window=0, data_retries=3)
    tcb.send(b"abc", 0, 3)
    for t in (200, 600, 1400):
        to(h, t)
        expect(h, ACK, -1, 0, payload=b"")
    to(h, 2999)
    nothing(h)
    to(h, 3000)
    expect(h, RST | ACK, 0, 0)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ETIMEDOUT
    assert h.stack.tcp.tcbs == []
    assert h.stack.counters.tcp_data_timeout == 1


def test_window_shrunk_to_zero_under_data_in_flight_is_probed_and_never_times_out():
    # RFC 9293 3.8.6.1: a sender "MUST be robust against window shrinking" and "SHOULD NOT time
    # out the connection if data beyond the right window edge is not acknowledged. If the window
    # shrinks to zero, the TCP implementation MUST probe it in the standard way" (Linux
    # tcp_retransmit_timer: a zero window makes the retransmissions probes, no timeout).
    h, tcb = setup(data_retries=3, tx_buffer=4000)
    data = pattern(2920)
    assert tcb.send(data, 0, 2920) == 2920
    assert layout(segs(h)) == [(0, MSS, ACK), (MSS, MSS, ACK | PSH)]
    peer(h, tcb, 0, MSS, window=0)  # the first segment is in, the second was beyond a shrunk window
    nothing(h)
    assert tcb.snd_wnd == 0
    t = 0
    for _ in range(8):  # more rounds than data_retries: answered, so never given up
        to(h, t + 2000000)  # far past any timer: what is due has gone out
        out = segs(h)
        assert len(out) >= 1, "no probe of the zero window"
        for s in out:
            assert len(s.payload) <= MSS
        peer(h, tcb, 0, MSS, window=0)  # answered: the window is still zero
        for s in segs(h):  # (an answer may count as a duplicate ACK: one segment resent)
            assert len(s.payload) <= MSS and s.tcp.seq == sq(ISS + 1 + MSS)
        t = h.clock.ticks_ms()
    assert tcb.state == tcp.ESTABLISHED and tcb.error == 0
    assert h.stack.counters.tcp_data_timeout == 0
    peer(h, tcb, 0, MSS, window=4000)  # the window opens: the lost second segment goes again
    out = segs(h)
    assert layout(out) == [(MSS, MSS, ACK | PSH)]
    assert out[0].payload == data[MSS:]
    assert tcb.timer_on
    # and the retransmission timer is an RTO again, not a persist interval backed off to minutes
    to(h, h.clock.ticks_ms() + tcb.rto)
    assert layout(segs(h)) == [(MSS, MSS, ACK | PSH)]


def test_window_shrunk_to_zero_unanswered_times_out():
    h, tcb = setup(data_retries=3, tx_buffer=4000)
    data = pattern(2920)
    tcb.send(data, 0, 2920)
    segs(h)
    peer(h, tcb, 0, MSS, window=0)
    for _ in range(40):  # bounded: the probes back off, then the connection gives up
        if tcb.state == tcp.CLOSED:
            break
        to(h, h.clock.ticks_ms() + 200000)
        segs(h)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ETIMEDOUT
    assert h.stack.tcp.tcbs == []


def test_not_orphaned_zero_window_answered_probes_go_on():
    h, tcb = setup(window=0)
    tcb.send(b"abc", 0, 3)
    for _ in range(30):
        to(h, h.clock.ticks_ms() + 200000)
        segs(h)
        peer(h, tcb, 0, 0, window=0)
        nothing(h)
    assert tcb.state == tcp.ESTABLISHED


def test_window_opening_before_the_first_probe_restarts_the_timer_for_the_data():
    # The persist timer shares the retransmission timer: data sent when the window opens must get
    # a full RTO from its own send time (RFC 6298 5.1), not the persist deadline already running.
    h, tcb = setup(window=0)
    assert tcb.rto == 200
    tcb.send(b"abc", 0, 3)
    nothing(h)  # the persist timer runs: due at 200
    to(h, 150)
    peer(h, tcb, 0, 0, window=1000)
    expect(h, ACK | PSH, 0, payload=b"abc")
    to(h, 349)
    nothing(h)  # no retransmission at the old persist deadline (200)
    to(h, 350)
    expect(h, ACK | PSH, 0, payload=b"abc")
    assert h.stack.counters.tcp_rto_expired == 1


# -- retransmission timer (RFC 6298) -------------------------------------------------------------
def test_rtt_estimator_follows_rfc6298():
    h, tcb = setup(handshake_ms=100)
    # first sample R = 100: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 * RTTVAR (2.2)
    assert (tcb.srtt, tcb.rttvar, tcb.rto) == (100, 50, 300)
    tcb.send(b"a", 0, 1)
    expect(h, ACK | PSH, 0, payload=b"a")
    h.advance(60)
    peer(h, tcb, 0, 1)
    # R' = 60 (2.3, whole ms): RTTVAR = (3*50 + |100-60|) / 4 = 47, SRTT = (7*100 + 60) / 8 = 95
    assert (tcb.srtt, tcb.rttvar, tcb.rto) == (95, 47, 95 + 4 * 47)
    tcb.send(b"b", 0, 1)
    expect(h, ACK | PSH, 1, payload=b"b")
    h.advance(200)
    peer(h, tcb, 0, 2)
    # R' = 200: RTTVAR = (3*47 + 105) / 4 = 61, SRTT = (7*95 + 200) / 8 = 108
    assert (tcb.srtt, tcb.rttvar, tcb.rto) == (108, 61, 108 + 4 * 61)


def test_karn_no_sample_from_a_retransmitted_segment():
    h, tcb = setup(handshake_ms=100)  # SRTT 100, RTTVAR 50, RTO 300
    tcb.send(b"x", 0, 1)  # t = 100
    expect(h, ACK | PSH, 0, payload=b"x")
    to(h, 399)
    nothing(h)
    to(h, 400)
    expect(h, ACK | PSH, 0, payload=b"x")
    assert tcb.rto == 600  # backed off (5.5)
    to(h, 450)
    peer(h, tcb, 0, 1)  # ambiguous: which transmission does it acknowledge? No sample (Karn)
    assert (tcb.srtt, tcb.rttvar, tcb.rto) == (100, 50, 600)
    assert not tcb.timer_on
    tcb.send(b"y", 0, 1)  # a fresh segment is timed again
    expect(h, ACK | PSH, 1, payload=b"y")
    to(h, 530)
    peer(h, tcb, 0, 2)  # R' = 80: RTTVAR = (150 + 20) / 4 = 42, SRTT = (700 + 80) / 8 = 97
    assert (tcb.srtt, tcb.rttvar, tcb.rto) == (97, 42, 97 + 4 * 42)


def test_rto_min_default_200():
    h, tcb = setup()  # a 0 ms handshake: SRTT 1, RTO 1 + 4 * 0 -> raised to 200
    assert tcb.rto == 200
    tcb.send(b"x", 0, 1)
    expect(h, ACK | PSH, 0, payload=b"x")
    to(h, 10)
    peer(h, tcb, 0, 1)  # R = 10 ms: SRTT 2, RTTVAR 2, RTO 10 -> 200
    assert (tcb.srtt, tcb.rttvar, tcb.rto) == (2, 2, 200)
    tcb.send(b"y", 0, 1)
    expect(h, ACK | PSH, 1, payload=b"y")
    to(h, 209)
    nothing(h)
    to(h, 210)
    expect(h, ACK | PSH, 1, payload=b"y")


def test_rto_min_configured_1000():
    h, tcb = setup(handshake_ms=100, rto_min_ms=1000)
    assert (tcb.srtt, tcb.rto) == (100, 1000)  # 300 raised to rto_min_ms
    tcb.send(b"x", 0, 1)  # t = 100
    expect(h, ACK | PSH, 0, payload=b"x")
    # the tail loss probe (RFC 8985: 2 * SRTT + 200 ms for one segment) comes before the RTO ...
    to(h, 500)
    expect(h, ACK | PSH, 0, payload=b"x")
    assert h.stack.counters.tcp_tlp_probe == 1
    # ... and the retransmission timer then runs a full (clamped) RTO
    to(h, 1499)
    nothing(h)
    to(h, 1500)
    expect(h, ACK | PSH, 0, payload=b"x")
    assert h.stack.counters.tcp_rto_expired == 1 and tcb.rto == 2000


def test_rto_backoff_doubles_up_to_rto_max_then_etimedout_with_rst():
    h, tcb = setup(rto_max_ms=1000, data_retries=6)
    tcb.send(b"x", 0, 1)
    expect(h, ACK | PSH, 0, payload=b"x")
    # RTO 200, 400, 800, then capped at 1000
    for t, rto in ((200, 400), (600, 800), (1400, 1000), (2400, 1000), (3400, 1000), (4400, 1000)):
        to(h, t - 1)
        nothing(h)
        to(h, t)
        expect(h, ACK | PSH, 0, payload=b"x")
        assert tcb.rto == rto, (t, tcb.rto)
    to(h, 5399)
    nothing(h)
    assert tcb.state == tcp.ESTABLISHED
    to(h, 5400)  # data_retries retransmissions unanswered
    expect(h, RST | ACK, 1, 0)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ETIMEDOUT
    assert h.stack.counters.tcp_data_timeout == 1 and h.stack.counters.tcp_rto_expired == 6


def test_retransmission_timer_restarts_on_an_ack_of_new_data():
    h, tcb = setup(tx_buffer=2920)
    data = pattern(2920)
    tcb.send(data, 0, 2920)
    assert layout(segs(h)) == [(0, 1460, ACK), (1460, 1460, ACK | PSH)]
    to(h, 5)
    peer(h, tcb, 0, 1460)  # RFC 6298 5.3: restart the timer (one segment left: RTO, not a TLP)
    assert tcb.rto == 200
    to(h, 204)
    nothing(h)
    to(h, 205)
    expect(h, ACK | PSH, 1460, payload=data[1460:])
    assert h.stack.counters.tcp_rto_expired == 1


# -- congestion control (RFC 5681, RFC 6582) -----------------------------------------------------
def test_initial_window_is_ten_segments():
    h, tcb = setup(tx_buffer=20000)
    data = pattern(20000)
    assert tcb.send(data, 0, 20000) == 20000
    out = segs(h)
    assert layout(out) == [(i * MSS, MSS, ACK) for i in range(10)], layout(out)
    for i in range(10):
        assert out[i].payload == data[i * MSS:(i + 1) * MSS]
    assert tcb.cwnd == 10 * MSS


def test_initial_window_is_one_segment_after_a_retransmitted_syn():
    h = Harness(tx_buffer=8000)
    fix_isn(h)
    tcb, _ = h.connect()
    h.advance(1000)
    h.expect_tcp(SYN, seq=ISS)
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), 65535, mss=MSS))
    expect(h, ACK, 0)
    assert tcb.cwnd == MSS  # RFC 5681 3.1
    data = pattern(4000)
    tcb.send(data, 0, 4000)
    assert layout(segs(h)) == [(0, MSS, ACK)]
    peer(h, tcb, 0, MSS)
    assert tcb.cwnd == 2 * MSS
    out = segs(h)
    assert layout(out) == [(1460, 1460, ACK), (2920, 1080, ACK | PSH)]
    assert out[1].payload == data[2920:]


def test_slow_start_opens_one_mss_per_ack():
    h, tcb = setup(init_cwnd=2, tx_buffer=20000)
    tcb.send(pattern(20000), 0, 20000)
    assert layout(segs(h)) == [(0, MSS, ACK), (1460, MSS, ACK)]
    peer(h, tcb, 0, 1460)
    assert tcb.cwnd == 3 * MSS
    assert layout(segs(h)) == [(2920, MSS, ACK), (4380, MSS, ACK)]
    peer(h, tcb, 0, 2920)
    assert tcb.cwnd == 4 * MSS
    assert layout(segs(h)) == [(5840, MSS, ACK), (7300, MSS, ACK)]


def test_slow_start_grows_by_at_most_one_mss_per_ack():
    h, tcb = setup(init_cwnd=2, tx_buffer=20000)
    tcb.send(pattern(20000), 0, 20000)
    segs(h)
    peer(h, tcb, 0, 2920)  # one ACK for two segments: cwnd += min(N, SMSS) (RFC 5681 3.1)
    assert tcb.cwnd == 3 * MSS
    assert layout(segs(h)) == [(2920, MSS, ACK), (4380, MSS, ACK), (5840, MSS, ACK)]


def test_congestion_avoidance_grows_by_mss_squared_over_cwnd():
    h, tcb = setup(init_cwnd=3, tx_buffer=20000)
    tcb.ssthresh = 2 * MSS  # fixture: below cwnd (4380) -> congestion avoidance
    tcb.send(pattern(20000), 0, 20000)
    assert len(segs(h)) == 3
    peer(h, tcb, 0, 1460)
    assert tcb.cwnd == 4380 + 1460 * 1460 // 4380  # 4866 (RFC 5681 eq. 3)
    # 4866 - 2920 in flight: one full segment; the 486 left would be a runt (SWS): held
    assert layout(segs(h)) == [(4380, MSS, ACK)]
    peer(h, tcb, 0, 2920)
    assert tcb.cwnd == 4866 + 1460 * 1460 // 4866  # 5304
    assert layout(segs(h)) == [(5840, MSS, ACK)]


def test_rto_sets_ssthresh_to_half_the_flight_and_cwnd_to_one_mss():
    h, tcb = setup(tx_buffer=14600)
    data = pattern(14600)
    tcb.send(data, 0, 14600)
    assert len(segs(h)) == 10
    # RFC 8985 tail loss probe first (2 * SRTT, at least 10 ms): the last segment again
    to(h, 10)
    expect(h, ACK | PSH, 13140, payload=data[13140:])
    to(h, 209)
    nothing(h)
    to(h, 210)
    expect(h, ACK, 0, payload=data[:1460])  # go-back-N: one segment (cwnd = loss window)
    assert tcb.ssthresh == 7300 and tcb.cwnd == MSS  # RFC 5681 eq. 4
    to(h, 250)
    peer(h, tcb, 0, 1460)
    assert tcb.cwnd == 2 * MSS  # slow start again below ssthresh
    assert layout(segs(h)) == [(1460, MSS, ACK), (2920, MSS, ACK)]


def test_rto_ssthresh_is_at_least_two_mss():
    h, tcb = setup(tx_buffer=2920)
    tcb.send(pattern(2920), 0, 2920)
    assert len(segs(h)) == 2
    to(h, 10)  # tail loss probe
    expect(h, ACK | PSH, 1460)
    to(h, 210)
    expect(h, ACK, 0)
    assert tcb.ssthresh == 2 * MSS and tcb.cwnd == MSS  # max(2920 / 2, 2 * SMSS)


def four_segments_then_rto():
    """4 full segments out, the TLP and the RTO done: only the first went out again."""
    h, tcb = setup(tx_buffer=5840)
    data = pattern(5840)
    tcb.send(data, 0, 5840)
    assert layout(segs(h)) == [(0, MSS, ACK), (1460, MSS, ACK), (2920, MSS, ACK), (4380, MSS, ACK | PSH)]
    to(h, 10)
    expect(h, ACK | PSH, 4380)  # tail loss probe
    to(h, 210)
    expect(h, ACK, 0, payload=data[:1460])
    assert tcb.snd_nxt == sq(ISS + 1 + 1460) and tcb.snd_max == sq(ISS + 1 + 5840)
    return h, tcb, data


def test_go_back_n_after_rto_resends_from_snd_una():
    h, tcb, data = four_segments_then_rto()
    peer(h, tcb, 0, 1460)  # the retransmission arrived, the rest was lost as well
    out = segs(h)
    assert layout(out) == [(1460, MSS, ACK), (2920, MSS, ACK)]
    assert out[0].payload == data[1460:2920] and out[1].payload == data[2920:4380]
    assert tcb.snd_nxt == sq(ISS + 1 + 4380)
    # the peer had the fourth segment: an ACK beyond SND.NXT but within SND.MAX is accepted
    peer(h, tcb, 0, 5840)
    nothing(h)
    assert tcb.snd_una == sq(ISS + 1 + 5840) and tcb.snd_nxt == tcb.snd_una and tcb.tx_len == 0
    assert not tcb.timer_on
    assert h.stack.counters.tcp_ack_unsent_data == 0


def test_ack_beyond_snd_nxt_after_rto_moves_snd_nxt():
    h, tcb, data = four_segments_then_rto()
    peer(h, tcb, 0, 4380)  # segments 2 and 3 had arrived: only the fourth is missing
    assert tcb.snd_una == sq(ISS + 1 + 4380)
    out = segs(h)
    assert layout(out) == [(4380, MSS, ACK | PSH)]
    assert out[0].payload == data[4380:]
    assert tcb.snd_nxt == tcb.snd_max


def five_segments_out(tx=7300, **opts):
    h, tcb = setup(tx_buffer=tx, **opts)
    data = pattern(tx)
    tcb.send(data, 0, tx)
    out = segs(h)
    assert len(out) == tx // MSS if tx % MSS == 0 else tx // MSS + 1
    return h, tcb, data


def test_fast_retransmit_on_exactly_the_third_duplicate_ack():
    h, tcb, data = five_segments_out()
    peer(h, tcb, 0, 0)
    peer(h, tcb, 0, 0)
    nothing(h)
    assert h.stack.counters.tcp_dupack == 2 and h.stack.counters.tcp_fast_retransmit == 0
    peer(h, tcb, 0, 0)
    expect(h, ACK, 0, payload=data[:1460])
    assert h.stack.counters.tcp_fast_retransmit == 1 and tcb.in_recovery
    assert tcb.ssthresh == 7300 // 2  # max(FlightSize / 2, 2 * SMSS)
    assert tcb.cwnd == 3650 + 3 * MSS
    peer(h, tcb, 0, 0)  # a fourth: inflates the window, nothing new to send
    nothing(h)
    assert tcb.cwnd == 3650 + 4 * MSS and h.stack.counters.tcp_fast_retransmit == 1


def test_acks_with_data_or_a_window_change_are_not_duplicates():
    h, tcb, data = five_segments_out()
    peer(h, tcb, 0, 0)
    peer(h, tcb, 0, 0)
    peer(h, tcb, 0, 0, payload=b"z")  # carries data (RFC 5681 2: not a duplicate ACK)
    peer(h, tcb, 1, 0, window=60000)  # changes the window: not a duplicate either
    nothing(h)  # (our ACK for "z" is delayed)
    assert h.stack.counters.tcp_dupack == 2 and h.stack.counters.tcp_fast_retransmit == 0
    peer(h, tcb, 1, 0, window=60000)  # the third real one
    expect(h, ACK, 0, 1, payload=data[:1460])  # also carries the ACK owed for "z"
    assert h.stack.counters.tcp_fast_retransmit == 1


def test_newreno_partial_ack_retransmits_the_next_hole():
    h, tcb, data = five_segments_out(8760)  # six segments
    for _ in range(3):
        peer(h, tcb, 0, 0)
    expect(h, ACK, 0, payload=data[:1460])
    assert tcb.cwnd == 4380 + 3 * MSS
    peer(h, tcb, 0, 2920)  # partial ACK: the third segment is lost too (RFC 6582 3.2 step 3)
    expect(h, ACK, 2920, payload=data[2920:4380])
    assert tcb.in_recovery
    assert tcb.cwnd == 4380 + 3 * MSS - 2920 + MSS  # deflated by the ACKed bytes, plus one MSS
    assert tcb.timer_on and tcb.deadline == tcb.rto  # the RTO restarted (not a loss probe: in recovery)
    peer(h, tcb, 0, 2920)  # more duplicates inflate, and never start a second fast retransmit
    nothing(h)
    assert h.stack.counters.tcp_fast_retransmit == 1
    peer(h, tcb, 0, 8760)  # full ACK
    assert not tcb.in_recovery
    assert tcb.cwnd == MSS and tcb.ssthresh == 4380  # min(ssthresh, FlightSize + SMSS), flight 0


def test_no_tail_loss_probe_during_fast_recovery():
    h, tcb, data = five_segments_out(8760)
    for _ in range(3):
        peer(h, tcb, 0, 0)
    expect(h, ACK, 0, payload=data[:1460])
    assert tcb.in_recovery
    # RFC 8985 7.2: a loss probe is scheduled only outside loss recovery (Linux: CA_Open only, and
    # the retransmission of the head re-arms the RTO). The probe armed before recovery must not fire.
    to(h, 199)
    nothing(h)
    assert h.stack.counters.tcp_tlp_probe == 0


def test_limited_transmit_segments_are_not_counted_in_ssthresh():
    h, tcb = setup(init_cwnd=6, tx_buffer=20000)
    data = pattern(20000)
    tcb.send(data, 0, 20000)
    assert len(segs(h)) == 6
    peer(h, tcb, 0, 0)  # RFC 3042: one new segment on each of the first two duplicate ACKs
    expect(h, ACK, 8760, payload=data[8760:10220])
    peer(h, tcb, 0, 0)
    expect(h, ACK, 10220, payload=data[10220:11680])
    assert tcb.cwnd == 6 * MSS  # unchanged by limited transmit
    peer(h, tcb, 0, 0)
    expect(h, ACK, 0, payload=data[:1460])
    # RFC 5681 3.2 step 2: "additional data sent in limited transmit MUST NOT be included" in
    # FlightSize for ssthresh: 8760 / 2, not 11680 / 2 (Linux: cwnd / 2, also 4380)
    assert tcb.ssthresh == 4380 and tcb.cwnd == 4380 + 3 * MSS


def test_full_ack_leaves_recovery_with_cwnd_at_most_ssthresh():
    h, tcb = setup(tx_buffer=20000)
    data = pattern(20000)
    tcb.send(data, 0, 7300)
    assert len(segs(h)) == 5
    for _ in range(3):
        peer(h, tcb, 0, 0)
    expect(h, ACK, 0, payload=data[:1460])
    assert tcb.ssthresh == 3650 and tcb.cwnd == 3650 + 3 * MSS
    assert tcb.send(data, 7300, 12700) == 12700
    nothing(h)  # 730 bytes of window: a runt, held (SWS)
    peer(h, tcb, 0, 0)  # cwnd 9490: one new segment fits beyond the 7300 in flight
    expect(h, ACK, 7300, payload=data[7300:8760])
    peer(h, tcb, 0, 7300)  # everything up to `recover` (SND.MAX when recovery began)
    assert not tcb.in_recovery
    assert tcb.cwnd == 2920 and tcb.cwnd <= tcb.ssthresh  # min(3650, 1460 in flight + 1460)
    expect(h, ACK, 8760, payload=data[8760:10220])


# -- out-of-order reassembly -------------------------------------------------------------------
def test_out_of_order_segments_are_kept_and_the_hole_fill_delivers_them():
    h, tcb = setup(rx_buffer=4096)
    data = pattern(300, 9)
    peer(h, tcb, 200, 0, payload=data[200:])
    expect(h, ACK, 0, 0, window=4096)  # duplicate ACK at once (RFC 5681 4.2)
    peer(h, tcb, 100, 0, payload=data[100:200])
    expect(h, ACK, 0, 0, window=4096)
    assert tcb.rx_len == 0 and not tcb.readable()
    assert h.stack.counters.tcp_ooo_queued == 2 and tcb.ooo_n == 1  # touching ranges merged
    peer(h, tcb, 0, 0, payload=data[:100])
    expect(h, ACK, 0, 300, window=4096 - 300)  # the hole is filled: ACK at once, not delayed
    assert tcb.rx_len == 300 and tcb.ooo_n == 0
    assert read_all(tcb) == data


def test_segment_spanning_two_ranges_and_the_gap_between():
    h, tcb = setup(rx_buffer=4096, delayed_ack_ms=0)
    data = pattern(500, 17)
    peer(h, tcb, 100, 0, payload=data[100:200])
    peer(h, tcb, 300, 0, payload=data[300:400])
    assert tcb.ooo_n == 2
    peer(h, tcb, 150, 0, payload=data[150:350])  # overlaps both and fills the gap between them
    assert tcb.ooo_n == 1
    peer(h, tcb, 380, 0, payload=data[380:500])  # overlaps the end of the merged range
    assert tcb.ooo_n == 1
    assert len(segs(h)) == 4 and tcb.rx_len == 0
    peer(h, tcb, 0, 0, payload=data[:120])  # overlaps the start of it
    expect(h, ACK, 0, 500)
    assert tcb.ooo_n == 0 and read_all(tcb) == data
    peer(h, tcb, 450, 0, payload=data[450:])  # all old now: a duplicate, ACKed
    expect(h, ACK, 0, 500)
    assert tcb.rx_len == 0


def test_in_order_segment_partly_old_is_trimmed():
    h, tcb = setup(delayed_ack_ms=0)
    data = pattern(400, 21)
    peer(h, tcb, 0, 0, payload=data[:200])
    expect(h, ACK, 0, 200)
    peer(h, tcb, 300, 0, payload=data[300:])
    expect(h, ACK, 0, 200)
    peer(h, tcb, 150, 0, payload=data[150:320])  # old head, new middle, overlaps the held range
    expect(h, ACK, 0, 400)
    assert read_all(tcb) == data


def peek(tcb):
    """The readable bytes in the receive ring, without consuming them."""
    size = len(tcb.rx)
    out = bytearray(tcb.rx_len)
    for i in range(tcb.rx_len):
        out[i] = tcb.rx[(tcb.rx_head + i) % size]
    return bytes(out)


class Rand:
    """xorshift32: the same sequence on every runtime."""

    def __init__(self, seed):
        self.x = ((seed * 2654435761) & MASK) or 1

    def below(self, n):
        x = self.x
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        self.x = x
        return x % n


def reassembly_case(seed, total, rx_buffer, ooo_segments):
    """Cut a stream into pieces plus as many overlapping extras, shuffle them (seeded), feed them
    with reads at random moments, then let the peer retransmit in order from what we ACK. The
    receiver must deliver exactly the stream, and every ACK must tell exactly what it has."""
    h, tcb = setup(rx_buffer=rx_buffer, ooo_segments=ooo_segments, delayed_ack_ms=0)
    r = Rand(seed)
    stream = pattern(total, seed)
    pieces = []
    pos = 0
    while pos < total:
        n = 1 + r.below(300)
        if n > total - pos:
            n = total - pos
        pieces.append((pos, n))
        pos += n
    for _ in range(len(pieces)):
        s = r.below(total)
        n = 1 + r.below(400)
        if n > total - s:
            n = total - s
        pieces.append((s, n))
    for i in range(len(pieces) - 1, 0, -1):
        j = r.below(i + 1)
        pieces[i], pieces[j] = pieces[j], pieces[i]
    got = bytearray()

    def check_acks(expected_count):
        out = segs(h)
        if expected_count is not None:
            assert len(out) == expected_count, (seed, out)
        fin = 1 if tcb.fin_received else 0
        for s in out:
            assert s.tcp.flags == ACK and s.payload == b"", (seed, s)
            assert s.tcp.ack == sq(IRS + 1 + len(got) + tcb.rx_len + fin), (seed, s)

    def deliver():
        got.extend(read_all(tcb))
        check_acks(None)  # a window update may go out

    def feed(s, n):
        flags = ACK | FIN if s + n == total else ACK  # every piece that ends the stream carries the FIN
        peer(h, tcb, s, 0, payload=stream[s:s + n], flags=flags)
        check_acks(1)  # one ACK per segment: in order, duplicate, out of order or out of window
        have = len(got)
        assert peek(tcb) == stream[have:have + tcb.rx_len], seed  # in order, byte-exact
        if r.below(3) == 0:
            deliver()

    for s, n in pieces:
        feed(s, n)
    for _ in range(total):  # the peer retransmits from our ACK (bounded)
        deliver()
        if tcb.fin_received:
            break
        have = len(got) + tcb.rx_len
        if have == total:
            peer(h, tcb, total, 0, flags=ACK | FIN)
            check_acks(1)
            continue
        n = total - have
        if n > 300:
            n = 300
        feed(have, n)
    deliver()
    assert tcb.fin_received and tcb.state == tcp.CLOSE_WAIT, seed
    assert bytes(got) == stream, seed
    assert tcb.rcv_nxt == sq(IRS + 1 + total + 1) and tcb.ooo_n == 0
    return h


def test_reassembly_shuffled_overlapping_segments_seed_1():
    h = reassembly_case(1, 3000, 4096, 4)
    assert h.stack.counters.tcp_ooo_queued > 0


def test_reassembly_shuffled_overlapping_segments_seed_2():
    reassembly_case(2, 3000, 4096, 4)


def test_reassembly_shuffled_overlapping_segments_small_ring():
    for seed in (3, 4, 5):
        reassembly_case(seed, 3000, 1024, 4)  # the window cuts segments off, the ring wraps


def test_reassembly_shuffled_overlapping_segments_many_ranges():
    for seed in (6, 7):
        h = reassembly_case(seed, 4000, 8192, 32)
        assert h.stack.counters.tcp_drop_out_of_order == 0


def test_reassembly_shuffled_overlapping_segments_one_range():
    for seed in (8, 9):
        reassembly_case(seed, 2000, 2048, 1)


def test_more_out_of_order_ranges_than_ooo_segments_drops_the_farthest():
    h, tcb = setup(rx_buffer=4096, ooo_segments=2, delayed_ack_ms=0)
    data = pattern(600, 33)
    peer(h, tcb, 300, 0, payload=data[300:350])
    peer(h, tcb, 500, 0, payload=data[500:550])
    peer(h, tcb, 100, 0, payload=data[100:150])  # nearer than 500: that range is forgotten
    c = h.stack.counters
    assert c.tcp_ooo_queued == 3 and c.tcp_drop_out_of_order == 1 and tcb.ooo_n == 2
    peer(h, tcb, 550, 0, payload=data[550:580])  # now the farthest itself: dropped
    assert c.tcp_ooo_queued == 3 and c.tcp_drop_out_of_order == 2
    assert layout(segs(h)) == [(0, 0, ACK)] * 4
    peer(h, tcb, 0, 0, payload=data[:100])
    expect(h, ACK, 0, 150)
    peer(h, tcb, 150, 0, payload=data[150:300])
    expect(h, ACK, 0, 350)  # the held [300, 350) joins; [500, 550) was not kept
    peer(h, tcb, 350, 0, payload=data[350:])
    expect(h, ACK, 0, 600)
    assert read_all(tcb) == data


def test_out_of_order_segment_reaching_past_the_window_is_cut_at_its_edge():
    h, tcb = setup(rx_buffer=1000, delayed_ack_ms=0)
    data = pattern(1200, 41)
    peer(h, tcb, 1000, 0, payload=data[1000:1100])  # starts at the right edge: not acceptable
    expect(h, ACK, 0, 0, window=1000)
    assert h.stack.counters.tcp_drop_out_of_window == 1 and tcb.ooo_n == 0
    peer(h, tcb, 900, 0, payload=data[900:1100])  # starts inside: the part inside is kept
    expect(h, ACK, 0, 0, window=1000)
    assert tcb.ooo_n == 1
    peer(h, tcb, 0, 0, payload=data[:900])
    expect(h, ACK, 0, 1000, window=0)
    assert read_all(tcb) == data[:1000]
    expect(h, ACK, 0, 1000, window=1000)  # window update
    peer(h, tcb, 1000, 0, payload=data[1000:])
    expect(h, ACK, 0, 1200, window=800)
    assert read_all(tcb) == data[1000:]


def test_fin_before_the_hole_is_processed_when_it_fills():
    h, tcb = setup()
    data = pattern(200, 44)
    peer(h, tcb, 100, 0, payload=data[100:], flags=ACK | FIN)
    expect(h, ACK, 0, 0)
    assert tcb.state == tcp.ESTABLISHED and not tcb.fin_received
    peer(h, tcb, 0, 0, payload=data[:100])
    expect(h, ACK, 0, 201)  # data and FIN acknowledged together, at once
    assert tcb.state == tcp.CLOSE_WAIT and tcb.fin_received
    assert read_all(tcb) == data


def test_out_of_order_fin_without_data_gets_a_duplicate_ack():
    h, tcb = setup()
    data = pattern(100, 45)
    peer(h, tcb, 100, 0, flags=ACK | FIN)  # the data before it was lost
    # RFC 5681 4.2 (and Linux's ofo queue): an out-of-order segment is answered at once
    expect(h, ACK, 0, 0)
    assert not tcb.fin_received
    peer(h, tcb, 0, 0, payload=data)
    expect(h, ACK, 0, 101)
    assert tcb.state == tcp.CLOSE_WAIT and read_all(tcb) == data


def test_out_of_order_segment_that_opens_the_window_also_releases_our_data():
    # An out-of-order data segment gets an immediate duplicate ACK (RFC 5681 4.2), but its ACK and
    # window are processed like any other (RFC 9293 3.10.7.4, fifth): data they allow goes out too.
    h, tcb = setup(window=100, tx_buffer=4000)
    data = pattern(600)
    assert tcb.send(data, 0, 600) == 600
    expect(h, ACK, 0, payload=data[:100])
    peer(h, tcb, 500, 100, window=1000, payload=b"x" * 50)  # a hole before it: out of order
    out = segs(h)
    assert layout(out) == [(100, 0, ACK), (100, 500, ACK | PSH)], layout(out)
    assert out[0].tcp.ack == sq(IRS + 1) and out[1].payload == data[100:]


# -- delayed ACK -------------------------------------------------------------------------------
def test_single_segment_acked_after_delayed_ack_ms():
    h, tcb = setup()
    to(h, 100)
    peer(h, tcb, 0, 0, payload=pattern(100))
    nothing(h)
    to(h, 139)
    nothing(h)
    to(h, 140)
    expect(h, ACK, 0, 100, window=2048 - 100)
    to(h, 1000)
    nothing(h)


def test_delayed_ack_ms_is_configurable_and_not_restarted_by_more_data():
    h, tcb = setup(delayed_ack_ms=150)
    to(h, 100)
    peer(h, tcb, 0, 0, payload=pattern(10))
    to(h, 200)
    peer(h, tcb, 10, 0, payload=pattern(10))  # the timer keeps its deadline
    nothing(h)
    to(h, 249)
    nothing(h)
    to(h, 250)
    expect(h, ACK, 0, 20)


def test_every_second_full_segment_is_acked_at_once():
    h, tcb = setup(rx_buffer=8192)
    peer(h, tcb, 0, 0, payload=pattern(MSS))
    nothing(h)
    peer(h, tcb, MSS, 0, payload=pattern(MSS))
    expect(h, ACK, 0, 2 * MSS, window=8192 - 2 * MSS)
    to(h, 500)
    nothing(h)  # the delayed ACK timer was cancelled


def test_delayed_ack_zero_acks_every_segment():
    h, tcb = setup(delayed_ack_ms=0)
    peer(h, tcb, 0, 0, payload=b"ab")
    expect(h, ACK, 0, 2)
    peer(h, tcb, 2, 0, payload=b"cd")
    expect(h, ACK, 0, 4)


def test_outgoing_data_carries_the_pending_ack():
    h, tcb = setup()
    peer(h, tcb, 0, 0, payload=pattern(100))
    nothing(h)
    to(h, 10)
    tcb.send(b"reply", 0, 5)
    expect(h, ACK | PSH, 0, 100, payload=b"reply")
    to(h, 100)
    nothing(h)  # no separate ACK later


# -- Nagle (RFC 9293 3.7.4, Minshall's variant as Linux) -----------------------------------------
def test_nagle_holds_small_writes_while_a_small_segment_is_unacked():
    h, tcb = setup()
    tcb.send(b"a", 0, 1)
    expect(h, ACK | PSH, 0, payload=b"a")
    tcb.send(b"b", 0, 1)
    tcb.send(b"c", 0, 1)
    nothing(h)
    peer(h, tcb, 0, 1)
    expect(h, ACK | PSH, 1, payload=b"bc")  # coalesced


def test_nagle_minshall_waits_for_the_small_segment_not_the_full_one():
    h, tcb = setup()
    data = pattern(1470)
    tcb.send(data, 0, 1470)
    assert layout(segs(h)) == [(0, MSS, ACK), (1460, 10, ACK | PSH)]
    tcb.send(b"x", 0, 1)
    nothing(h)
    peer(h, tcb, 0, 1460)  # the full segment is ACKed, the small one is not
    nothing(h)
    peer(h, tcb, 0, 1470)
    expect(h, ACK | PSH, 1470, payload=b"x")


def test_set_nodelay_sends_held_data_and_disables_nagle():
    h, tcb = setup()
    tcb.send(b"a", 0, 1)
    expect(h, ACK | PSH, 0, payload=b"a")
    tcb.send(b"b", 0, 1)
    nothing(h)
    tcb.set_nodelay(True)
    assert tcb.nodelay
    expect(h, ACK | PSH, 1, payload=b"b")
    tcb.send(b"c", 0, 1)
    expect(h, ACK | PSH, 2, payload=b"c")
    tcb.set_nodelay(False)
    tcb.send(b"d", 0, 1)
    nothing(h)


def test_nodelay_from_the_config():
    h, tcb = setup(nodelay=True)
    assert tcb.nodelay
    for i in range(3):
        tcb.send(b"abc", i, 1)
        expect(h, ACK | PSH, i, payload=b"abc"[i:i + 1])


def test_a_full_segment_is_never_held_by_nagle():
    h, tcb = setup()
    tcb.send(b"a", 0, 1)
    expect(h, ACK | PSH, 0, payload=b"a")
    data = pattern(MSS)
    tcb.send(data, 0, MSS)
    expect(h, ACK | PSH, 1, payload=data)


# -- cork: a small tail waits while two full segments are unacknowledged (tcp_out.output) --------
def test_a_streaming_writer_sends_full_segments_the_ack_sends_the_tail():
    h, tcb = setup(tx_buffer=8192)
    data = pattern(8192)
    tcb.send(data, 0, 2 * MSS)
    assert layout(segs(h)) == [(0, MSS, ACK), (MSS, MSS, ACK | PSH)]
    tcb.send(data, 2 * MSS, 500)  # two full segments are out: the tail waits for more data
    nothing(h)
    tcb.send(data, 2 * MSS + 500, 1000)  # the next write fills a full segment; 40 bytes wait
    assert layout(segs(h)) == [(2 * MSS, MSS, ACK)]
    peer(h, tcb, 0, MSS)  # an ACK: the tail goes (Minshall: no small segment is out)
    assert layout(segs(h)) == [(3 * MSS, 40, ACK | PSH)]


def test_a_write_to_an_idle_connection_goes_out_whole():
    h, tcb = setup(tx_buffer=8192)
    data = pattern(2048)
    tcb.send(data, 0, 2048)  # a request: nothing is out, so nothing waits (no cork)
    assert layout(segs(h)) == [(0, MSS, ACK), (MSS, 588, ACK | PSH)]
    peer(h, tcb, 0, 2048)
    tcb.send(data, 0, MSS + 100)  # one full segment out (< two): the tail goes too
    assert layout(segs(h)) == [(2048, MSS, ACK), (2048 + MSS, 100, ACK | PSH)]


def test_nodelay_never_corks():
    h, tcb = setup(nodelay=True, tx_buffer=8192)
    data = pattern(4096)
    tcb.send(data, 0, 2 * MSS)
    segs(h)
    tcb.send(data, 0, 10)
    assert layout(segs(h)) == [(2 * MSS, 10, ACK | PSH)]


# -- keep-alive (RFC 9293 3.8.4, Linux tcp_keepalive_timer) -----------------------------------------
def keepalive_probe(h, ack):
    """SEG.SEQ = SND.UNA - 1 with one garbage octet (RFC 9293 3.8.4, as BSD): an old data byte,
    which a Linux peer answers every time (a zero-length one falls under its ACK rate limit)."""
    s = expect(h, ACK, -1, ack)
    assert len(s.payload) == 1, s.payload


def test_keepalive_is_off_by_default():
    h, tcb = setup()
    for _ in range(18):
        h.advance(600000)  # 3 hours idle
    nothing(h)
    assert tcb.state == tcp.ESTABLISHED and h.stack.counters.tcp_keepalive_probe == 0


def test_keepalive_probes_then_times_out_with_rst():
    h, tcb = setup()
    tcb.set_keepalive(True, idle_ms=10000, interval_ms=1000, count=3)
    for t in (10000, 11000, 12000):
        to(h, t - 1)
        nothing(h)
        to(h, t)
        keepalive_probe(h, 0)
    to(h, 12999)
    nothing(h)
    to(h, 13000)
    expect(h, RST | ACK, 0, 0)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ETIMEDOUT
    c = h.stack.counters
    assert c.tcp_keepalive_probe == 3 and c.tcp_keepalive_timeout == 1


def test_keepalive_answer_or_data_resets_the_idle_time():
    h, tcb = setup()
    tcb.set_keepalive(True, idle_ms=10000, interval_ms=1000, count=3)
    to(h, 5000)
    peer(h, tcb, 0, 0, payload=b"hi")  # traffic from the peer: idle counts from here
    to(h, 5040)
    expect(h, ACK, 0, 2)  # (delayed ACK)
    to(h, 14999)
    nothing(h)
    to(h, 15000)
    keepalive_probe(h, 2)
    to(h, 15500)
    peer(h, tcb, 2, 0)  # the peer answers the probe
    nothing(h)
    to(h, 25499)
    nothing(h)
    to(h, 25500)
    keepalive_probe(h, 2)
    assert tcb.state == tcp.ESTABLISHED


def test_keepalive_linux_defaults():
    h, tcb = setup()
    tcb.set_keepalive(True)  # 7200 s idle, 75 s interval, 9 probes
    to(h, 7199999)
    nothing(h)
    for k in range(9):
        to(h, 7200000 + 75000 * k)
        keepalive_probe(h, 0)
    to(h, 7200000 + 75000 * 9 - 1)
    nothing(h)
    to(h, 7200000 + 75000 * 9)
    expect(h, RST | ACK, 0, 0)
    assert tcb.error == errors.ETIMEDOUT


def test_keepalive_settings_from_the_config():
    h, tcb = setup(keepalive_idle_ms=3000, keepalive_interval_ms=500, keepalive_count=1)
    tcb.set_keepalive(True)
    to(h, 3000)
    keepalive_probe(h, 0)
    to(h, 3500)
    expect(h, RST | ACK, 0, 0)
    assert tcb.error == errors.ETIMEDOUT


def test_keepalive_asked_for_during_syn_sent_starts_at_establishment():
    h = Harness(delayed_ack_ms=0)
    fix_isn(h)
    tcb, _ = h.connect()
    tcb.set_keepalive(True, idle_ms=500, interval_ms=300, count=2)
    h.advance(600)  # the aux timer fires in SYN-SENT: nothing to probe yet
    nothing(h)
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), mss=1460))
    segs(h)
    h.advance(499)
    nothing(h)
    h.advance(1)
    s = expect(h, ACK, -1, 0)  # SND.UNA - 1
    assert len(s.payload) == 1  # one garbage octet: Linux answers old data without rate limit
    assert h.stack.counters.tcp_keepalive_probe == 1


# -- window update and zero-window probes (RFC 9293 3.10.7.4, fifth and seventh) ---------------
def test_old_ack_with_newer_seq_does_not_update_the_send_window():
    # RFC 9293 3.10.7.4, fifth: "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be
    # updated" -- only then. A segment whose ACK lies before SND.UNA (but within the RFC 5961
    # bound, so it is not dropped) and whose SEQ is newer than SND.WL1 must not set SND.WND.
    h, tcb = setup(tx_buffer=8000)
    data = pattern(2000)
    assert tcb.send(data, 0, 2000) == 2000
    segs(h)
    peer(h, tcb, 0, 1000, window=30000)  # SND.UNA moves to 1000
    segs(h)
    assert tcb.snd_wnd == 30000
    # SEG.SEQ newer than SND.WL1 (one byte past RCV.NXT: acceptable, kept out of order), SEG.ACK
    # older than SND.UNA
    peer(h, tcb, 1, 500, window=0, payload=b"x")
    segs(h)
    assert tcb.snd_wnd == 30000, tcb.snd_wnd
    assert tcb.ooo_n == 1


def test_zero_window_probe_into_a_full_ring_is_acked_at_once():
    # A probe of one new byte at RCV.NXT while our ring is full (RFC 9293 3.8.6.1): not
    # acceptable data (RCV.WND = 0), so it is dropped and answered at once with the zero window
    # (RFC 9293 3.10.7.4 "an acknowledgment should be sent in reply"; Linux tcp_data_queue ->
    # out_of_window -> quick ACK), not counted as received and held for the delayed-ACK timer.
    h, tcb = setup(rx_buffer=1000, delayed_ack_ms=40)
    peer(h, tcb, 0, 0, payload=pattern(1000))  # fills the ring: the window closes
    nothing(h)  # one segment: its ACK is delayed
    to(h, h.clock.ticks_ms() + 40)
    expect(h, ACK, 0, 1000, window=0)
    before = tcb.rx_len
    peer(h, tcb, 1000, 0, payload=b"p")  # the peer's zero-window probe
    expect(h, ACK, 0, 1000, window=0)
    assert tcb.rx_len == before and not tcb.delack_on
    assert h.stack.counters.tcp_rx_buffer_full == 1


def test_byte_counters_stay_small_ints_past_2_29_bytes():
    # tcp_rx_bytes / tcp_tx_bytes count modulo 2**29: on a 32-bit port an int from 2**30 on is a
    # heap object, and adding to one would allocate on every segment after the first GiB
    h, tcb = setup()
    c = h.stack.cnt
    names = h.stack.counters
    near = (1 << 29) - 10
    c[names.index("tcp_rx_bytes")] = near
    c[names.index("tcp_tx_bytes")] = near
    for k in (1, 2):
        peer(h, tcb, 100 * (k - 1), 100 * (k - 1), payload=b"x" * 100)
        assert tcb.send(b"y" * 100, 0, 100) == 100
        h.take()
        # past 2**29 the next count wraps (so the value stays below 2**29 + one segment)
        want = near + 100 if k == 1 else near + 200 - (1 << 29)
        assert names.tcp_rx_bytes == want and names.tcp_tx_bytes == want, k
