# dual: cpython micropython
# Loss recovery for small windows and what we tell the peer: SACK blocks for held out-of-order data
# (RFC 2018), early retransmit (RFC 5827), the tail loss probe (RFC 8985), and the resent window
# update after a zero window. Exact segments, explicit clock; the tcpcase dialect (offsets from each
# side's first data byte, ISS and IRS just below 2**32).
from segment import ACK, FIN, PSH, Harness
from tcpcase import ISS, expect, nothing, peer, sack_blocks, setup, sq
from tcpip import tcp
from wirerep import tcp as wtcp

OLD = -5001  # far before RCV.NXT


def test_our_syn_offers_sack_and_mss():
    h = Harness()
    tcb, syn = h.connect()
    f = syn.frame
    off = 34
    assert syn.options == b"\x02\x04\x05\xb4\x01\x01\x04\x02"  # MSS 1460, NOP, NOP, SACK-permitted
    assert wtcp.has_sack_permitted(f, off, 28)


def test_sack_blocks_describe_held_ranges_latest_first():
    h, tcb = setup(sack=True)
    assert tcb.sack_ok
    peer(h, tcb, 100, 0, payload=b"b" * 100)  # hole 0..100
    s = expect(h, ACK, 0, 0)
    assert sack_blocks(s) == [(100, 200)]
    peer(h, tcb, 300, 0, payload=b"d" * 100)  # second hole
    s = expect(h, ACK, 0, 0)
    assert sack_blocks(s) == [(300, 400), (100, 200)]
    peer(h, tcb, 200, 0, payload=b"c" * 100)  # joins both ranges
    s = expect(h, ACK, 0, 0)
    assert sack_blocks(s) == [(100, 400)]
    peer(h, tcb, 0, 0, payload=b"a" * 100)  # hole filled
    expect(h, ACK, 0, 400, options=b"")  # no SACK blocks left to report
    buf = bytearray(500)
    assert tcb.recv_into(buf, 0, 500) == 400
    assert bytes(buf[:400]) == b"a" * 100 + b"b" * 100 + b"c" * 100 + b"d" * 100


def test_no_sack_blocks_when_the_peer_did_not_allow_them():
    h, tcb = setup()
    assert not tcb.sack_ok
    peer(h, tcb, 100, 0, payload=b"b" * 100)
    s = expect(h, ACK, 0, 0)
    assert (s.frame[34 + 12] >> 4) * 4 == 20 and tcb.ooo_n == 1


def test_sack_blocks_at_most_four():
    h, tcb = setup(sack=True, ooo_segments=6, rx_buffer=4096)
    for k in range(6):
        peer(h, tcb, 200 * k + 100, 0, payload=b"x" * 50)
        s = expect(h, ACK, 0, 0)
    blocks = sack_blocks(s)
    assert len(blocks) == 4 and blocks[0] == (1100, 1150)
    assert (s.frame[34 + 12] >> 4) * 4 == 20 + 4 + 32


def _two_segments_out(h, tcb):
    data = bytes(range(256)) * 8  # 2048: one full segment and a 588-byte one
    assert tcb.send(data, 0, 2048) == 2048
    out = h.take()
    assert [len(s.payload) for s in out] == [1460, 588]
    return data


def test_early_retransmit_on_first_duplicate_ack_with_two_segments_out():
    h, tcb = setup(sack=True, tx_buffer=2048)
    data = _two_segments_out(h, tcb)
    # the first segment was lost: the peer's one duplicate ACK is all we will ever get
    peer(h, tcb, 0, 0)
    expect(h, ACK, 0, 0, payload=data[:1460])
    assert h.stack.counters.tcp_fast_retransmit == 1 and tcb.in_recovery
    peer(h, tcb, 0, 2048)  # full ACK ends recovery
    assert not tcb.in_recovery and tcb.tx_len == 0 and not tcb.timer_on


def test_three_duplicate_acks_needed_while_new_data_can_go():
    h, tcb = setup(sack=True, tx_buffer=8192)
    data = bytes(range(256)) * 32
    assert tcb.send(data, 0, 3420) == 3420
    assert [len(s.payload) for s in h.take()] == [1460, 1460, 500]
    assert tcb.send(data, 3420, 100) == 100  # held by Nagle: new data is waiting to go
    nothing(h)
    for k in range(2):
        peer(h, tcb, 0, 0)
        assert h.stack.counters.tcp_fast_retransmit == 0
    peer(h, tcb, 0, 0)
    assert h.stack.counters.tcp_fast_retransmit == 1
    s = [x for x in h.take() if x.tcp.seq == sq(ISS + 1)]
    assert s and s[0].payload == data[:1460]


def test_tail_loss_probe_resends_the_last_segment_before_the_rto():
    h, tcb = setup(sack=True, tx_buffer=2048)
    tcb.srtt = 20  # a measured RTT of 20 ms (the scripted handshake took 0 ms)
    tcb.rttvar = 5
    tcb.rto = 200
    data = _two_segments_out(h, tcb)
    assert tcb.tlp_armed
    pto = 2 * 20
    h.advance(pto - 1)
    nothing(h)
    h.advance(1)
    # the last MSS of data again (we keep no segment boundaries): its ACK, or a duplicate ACK,
    # tells what was lost
    expect(h, ACK | PSH, 588, 0, payload=data[588:])
    assert h.stack.counters.tcp_tlp_probe == 1 and not tcb.tlp_armed
    # only one probe: the RTO comes next, counted from the probe
    h.advance(tcb.rto - 1)
    nothing(h)
    h.advance(1)
    expect(h, ACK, 0, 0, payload=data[:1460])
    assert h.stack.counters.tcp_rto_expired == 1 and tcb.cwnd == tcb.mss


def test_tail_loss_probe_not_used_for_one_segment_when_the_rto_is_sooner():
    h, tcb = setup(sack=True)
    tcb.srtt = 20
    tcb.rto = 200
    tcb.send(b"x" * 100, 0, 100)
    h.take()
    assert not tcb.tlp_armed  # 2*SRTT + 200 ms (the peer may delay its ACK) > RTO


def test_probe_ack_then_fast_retransmit_repairs_the_head():
    h, tcb = setup(sack=True, tx_buffer=2048)
    tcb.srtt = 20
    tcb.rto = 200
    data = _two_segments_out(h, tcb)
    h.advance(40)
    expect(h, ACK | PSH, 588, 0)
    # the first segment was lost, the probe arrived: a duplicate ACK -> early retransmit
    peer(h, tcb, 0, 0)
    expect(h, ACK, 0, 0, payload=data[:1460])
    peer(h, tcb, 0, 2048)
    assert tcb.tx_len == 0 and h.stack.counters.tcp_rto_expired == 0


def test_window_update_after_zero_window_is_resent_once_if_no_data_follows():
    h, tcb = setup(sack=True, rx_buffer=1000, delayed_ack_ms=0)
    peer(h, tcb, 0, 0, payload=b"z" * 1000)
    expect(h, ACK, 0, 1000, window=0)
    buf = bytearray(1000)
    assert tcb.recv_into(buf, 0, 1000) == 1000
    expect(h, ACK, 0, 1000, window=1000)
    h.advance(19)
    nothing(h)
    h.advance(1)  # no data within max(2*SRTT, 20 ms): the update may have been lost
    expect(h, ACK, 0, 1000, window=1000)
    assert h.stack.counters.tcp_window_update_resent == 1
    h.advance(1000)
    nothing(h)  # once only


def test_window_update_not_resent_when_data_arrives():
    h, tcb = setup(sack=True, rx_buffer=1000, delayed_ack_ms=0)
    peer(h, tcb, 0, 0, payload=b"z" * 1000)
    h.take()
    buf = bytearray(1000)
    tcb.recv_into(buf, 0, 1000)
    h.take()
    peer(h, tcb, 1000, 0, payload=b"y" * 10)
    expect(h, ACK, 0, 1010)
    h.advance(100)
    nothing(h)
    assert h.stack.counters.tcp_window_update_resent == 0


def test_window_probe_always_answered_other_old_acks_rate_limited():
    h, tcb = setup(sack=True)
    # a zero-window / keep-alive probe (SEG.SEQ = RCV.NXT - 1) twice in a row: both answered
    for _ in range(2):
        peer(h, tcb, -1, 0)
        expect(h, ACK, 0, 0)
    # other out-of-window pure ACKs: one answer per invalid_ratelimit_ms
    peer(h, tcb, OLD, 0)
    expect(h, ACK, 0, 0)
    peer(h, tcb, OLD, 0)
    nothing(h)
    assert h.stack.counters.tcp_ack_ratelimited == 1
    h.advance(500)
    peer(h, tcb, OLD, 0)
    expect(h, ACK, 0, 0)


def test_fin_on_out_of_order_segment_waits_for_the_hole():
    h, tcb = setup(sack=True)
    peer(h, tcb, 5, 0, payload=b"world", flags=ACK | FIN)
    expect(h, ACK, 0, 0)
    assert tcb.state == tcp.ESTABLISHED and not tcb.fin_received
    peer(h, tcb, 0, 0, payload=b"hello")
    expect(h, ACK, 0, 11)  # data and FIN
    assert tcb.state == tcp.CLOSE_WAIT and tcb.fin_received
    buf = bytearray(20)
    assert tcb.recv_into(buf, 0, 20) == 10 and bytes(buf[:10]) == b"helloworld"


def test_out_of_order_data_beyond_the_fin_is_purged():
    h, tcb = setup(sack=True)
    peer(h, tcb, 5, 0, payload=b"world", flags=ACK | FIN)  # FIN at offset 10
    peer(h, tcb, 19, 0, payload=b"beyond")  # past the FIN
    h.take()
    assert tcb.ooo_n == 2
    peer(h, tcb, 0, 0, payload=b"hello")
    s = expect(h, ACK, 0, 11)  # data and FIN; what lay beyond the FIN is gone
    assert sack_blocks(s) == []
    assert tcb.ooo_n == 0 and h.stack.counters.tcp_ooo_purged == 1
    buf = bytearray(40)
    assert tcb.recv_into(buf, 0, 40) == 10 and bytes(buf[:10]) == b"helloworld"
