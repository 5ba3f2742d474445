# dual: cpython micropython
# Scripted segment-level tests for defects found in review of lib/tcpip/tcp.py (issue 4): a peer
# window that shrinks to zero under data in flight, an orphan stuck behind a zero window, and the
# sequence number of a RST sent while go-back-N is under way.
from segment import ACK, FIN, PSH, RST
from tcpip import errors
from tcpip import tcp

from tcpcase import IRS, ISS, MSS, expect, layout, nothing, pattern, peer, segs, setup, sq, to


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


def test_not_orphaned_zero_window_answered_probes_go_on():
    h, tcb = setup(window=0)
    tcb.send(b"abc", 0, 3)
    for _ in range(30):
        to(h, h.clock.ticks_ms() + 200000)
        segs(h)
        peer(h, tcb, 0, 0, window=0)
        nothing(h)
    assert tcb.state == tcp.ESTABLISHED


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


def test_tiny_peer_mss_is_raised_to_48_as_linux():
    # Linux tcp_min_snd_mss (48, CVE-2019-11479): a peer announcing MSS 1 would otherwise make us
    # cut the send ring into one-byte segments, a frame (and a pass through the stack) per byte.
    from segment import SYN, Harness
    from tcpcase import IRS, fix_isn
    h = Harness()
    fix_isn(h)
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), 65535, mss=1))
    expect(h, ACK, 0, 0)
    assert tcb.state == tcp.ESTABLISHED and tcb.mss == 48
    tcb.send(pattern(100), 0, 100)
    assert layout(segs(h)) == [(0, 48, ACK), (48, 48, ACK), (96, 4, ACK | PSH)]


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


def test_simultaneous_open_completes_on_the_peers_syn_ack():
    # RFC 9293 3.5 figure 8, line 6: in SYN-RECEIVED the peer's <SEQ=IRS><ACK=ISS+1><SYN,ACK>
    # makes the connection ESTABLISHED (Linux tcp_validate_incoming: "goto pass" for exactly this
    # segment). Taking it as an out-of-window SYN (challenge ACK) left us in SYN-RECEIVED until
    # our own SYN-ACK retransmission, a second or more later.
    from segment import SYN, Harness
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN, 7000, 0, mss=1200))
    h.expect_tcp(SYN | ACK, seq=tcb.iss, ack=7001)
    assert tcb.state == tcp.SYN_RECEIVED
    h.feed(h.segment(tcb, SYN | ACK, 7000, sq(tcb.iss + 1), window=5000))
    assert tcb.state == tcp.ESTABLISHED
    assert tcb.snd_wnd == 5000 and tcb.mss == 1200
    h.expect_nothing()
    assert h.stack.counters.tcp_challenge_ack_sent == 0
    # a later copy of it (our SYN-ACK was lost, the peer repeats its own) gets an ACK
    h.feed(h.segment(tcb, SYN | ACK, 7000, sq(tcb.iss + 1), window=5000))
    h.expect_tcp(ACK, seq=sq(tcb.iss + 1), ack=7001)
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
