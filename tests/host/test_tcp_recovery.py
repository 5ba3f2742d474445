# dual: cpython micropython
# Loss recovery for small windows and what we tell the peer: SACK blocks for held out-of-order data
# (RFC 2018), early retransmit (RFC 5827), the tail loss probe (RFC 8985), and the resent window
# update after a zero window. Exact segments, explicit clock.
from segment import ACK, FIN, PSH, SYN, Harness
from tcpip import tcp
from wirerep import tcp as wtcp

IRS = 1000
OLD = (IRS - 5000) & 0xFFFFFFFF  # far before RCV.NXT
MSS_SACK_OPTS = b"\x02\x04\x05\xb4\x04\x02\x01\x01"  # MSS 1460, SACK-permitted, NOP, NOP


def established(sack=True, **opts):
    h = Harness(**opts)
    tcb, syn = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, IRS, tcb.iss + 1, 65535,
                     options=MSS_SACK_OPTS if sack else b"\x02\x04\x05\xb4"))
    h.expect_tcp(ACK, seq=tcb.iss + 1, ack=IRS + 1)
    return h, tcb


def sack_blocks(s):
    """The SACK blocks of a segment we sent, as [(left, right), ...]."""
    f = s.frame
    off = 14 + (f[14] & 15) * 4
    hl = (f[off + 12] >> 4) * 4
    i = wtcp.find_option(f, off, hl, 5, f[off + 23]) if hl > 20 else -1
    if i < 0:
        return []
    out = []
    n = (f[i + 1] - 2) // 8
    for k in range(n):
        p = i + 2 + 8 * k
        out.append((int.from_bytes(f[p:p + 4], "big"), int.from_bytes(f[p + 4:p + 8], "big")))
    return out


def test_our_syn_offers_sack_and_mss():
    h = Harness()
    tcb, syn = h.connect()
    f = syn.frame
    off = 34
    assert syn.options == b"\x02\x04\x05\xb4\x01\x01\x04\x02"  # MSS 1460, NOP, NOP, SACK-permitted
    assert wtcp.has_sack_permitted(f, off, 28)


def test_sack_blocks_describe_held_ranges_latest_first():
    h, tcb = established()
    assert tcb.sack_ok
    h.feed(h.segment(tcb, ACK, IRS + 101, tcb.iss + 1, payload=b"b" * 100))  # hole 1..100
    s = h.expect_tcp(ACK, ack=IRS + 1)
    assert sack_blocks(s) == [(IRS + 101, IRS + 201)]
    h.feed(h.segment(tcb, ACK, IRS + 301, tcb.iss + 1, payload=b"d" * 100))  # second hole
    s = h.expect_tcp(ACK, ack=IRS + 1)
    assert sack_blocks(s) == [(IRS + 301, IRS + 401), (IRS + 101, IRS + 201)]
    h.feed(h.segment(tcb, ACK, IRS + 201, tcb.iss + 1, payload=b"c" * 100))  # joins both ranges
    s = h.expect_tcp(ACK, ack=IRS + 1)
    assert sack_blocks(s) == [(IRS + 101, IRS + 401)]
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, payload=b"a" * 100))  # hole filled
    h.expect_tcp(ACK, ack=IRS + 401, options=b"")  # no SACK blocks left to report
    buf = bytearray(500)
    assert tcb.recv_into(buf, 0, 500) == 400
    assert bytes(buf[:400]) == b"a" * 100 + b"b" * 100 + b"c" * 100 + b"d" * 100


def test_no_sack_blocks_when_the_peer_did_not_allow_them():
    h, tcb = established(sack=False)
    assert not tcb.sack_ok
    h.feed(h.segment(tcb, ACK, IRS + 101, tcb.iss + 1, payload=b"b" * 100))
    s = h.expect_tcp(ACK, ack=IRS + 1)
    assert (s.frame[34 + 12] >> 4) * 4 == 20 and tcb.ooo_n == 1


def test_sack_blocks_at_most_four():
    h, tcb = established(ooo_segments=6, rx_buffer=4096)
    for k in range(6):
        h.feed(h.segment(tcb, ACK, IRS + 1 + 200 * k + 100, tcb.iss + 1, payload=b"x" * 50))
        s = h.expect_tcp(ACK, ack=IRS + 1)
    blocks = sack_blocks(s)
    assert len(blocks) == 4 and blocks[0] == (IRS + 1101, IRS + 1151)
    assert (s.frame[34 + 12] >> 4) * 4 == 20 + 4 + 32


def _two_segments_out(h, tcb):
    data = bytes(range(256)) * 8  # 2048: one full segment and a 588-byte one
    assert tcb.send(data, 0, 2048) == 2048
    out = h.take()
    assert [len(s.payload) for s in out] == [1460, 588]
    return data


def test_early_retransmit_on_first_duplicate_ack_with_two_segments_out():
    h, tcb = established(tx_buffer=2048)
    data = _two_segments_out(h, tcb)
    # the first segment was lost: the peer's one duplicate ACK is all we will ever get
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1))
    s = h.expect_tcp(ACK, seq=tcb.iss + 1, payload=data[:1460])
    assert h.stack.counters.tcp_fast_retransmit == 1 and tcb.in_recovery
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1 + 2048))  # full ACK ends recovery
    assert not tcb.in_recovery and tcb.tx_len == 0 and not tcb.timer_on


def test_three_duplicate_acks_needed_while_new_data_can_go():
    h, tcb = established(tx_buffer=8192)
    data = bytes(range(256)) * 32
    assert tcb.send(data, 0, 3420) == 3420
    assert [len(s.payload) for s in h.take()] == [1460, 1460, 500]
    assert tcb.send(data, 3420, 100) == 100  # held by Nagle: new data is waiting to go
    h.expect_nothing()
    for k in range(2):
        h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1))
        assert h.stack.counters.tcp_fast_retransmit == 0
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1))
    assert h.stack.counters.tcp_fast_retransmit == 1
    s = [x for x in h.take() if x.tcp.seq == tcb.iss + 1]
    assert s and s[0].payload == data[:1460]


def test_tail_loss_probe_resends_the_last_segment_before_the_rto():
    h, tcb = established(tx_buffer=2048)
    tcb.srtt = 20  # a measured RTT of 20 ms (the scripted handshake took 0 ms)
    tcb.rttvar = 5
    tcb.rto = 200
    data = _two_segments_out(h, tcb)
    assert tcb.tlp_armed
    pto = 2 * 20
    h.advance(pto - 1)
    h.expect_nothing()
    h.advance(1)
    # the last MSS of data again (we keep no segment boundaries): its ACK, or a duplicate ACK,
    # tells what was lost
    h.expect_tcp(ACK | PSH, seq=tcb.iss + 1 + 588, payload=data[588:])
    assert h.stack.counters.tcp_tlp_probe == 1 and not tcb.tlp_armed
    # only one probe: the RTO comes next, counted from the probe
    h.advance(tcb.rto - 1)
    h.expect_nothing()
    h.advance(1)
    s = h.expect_tcp(ACK, seq=tcb.iss + 1, payload=data[:1460])
    assert h.stack.counters.tcp_rto_expired == 1 and tcb.cwnd == tcb.mss


def test_tail_loss_probe_not_used_for_one_segment_when_the_rto_is_sooner():
    h, tcb = established()
    tcb.srtt = 20
    tcb.rto = 200
    tcb.send(b"x" * 100, 0, 100)
    h.take()
    assert not tcb.tlp_armed  # 2*SRTT + 200 ms (the peer may delay its ACK) > RTO


def test_probe_ack_then_fast_retransmit_repairs_the_head():
    h, tcb = established(tx_buffer=2048)
    tcb.srtt = 20
    tcb.rto = 200
    data = _two_segments_out(h, tcb)
    h.advance(40)
    h.expect_tcp(ACK | PSH, seq=tcb.iss + 1 + 588)
    # the first segment was lost, the probe arrived: a duplicate ACK -> early retransmit
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1))
    h.expect_tcp(ACK, seq=tcb.iss + 1, payload=data[:1460])
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1 + 2048))
    assert tcb.tx_len == 0 and h.stack.counters.tcp_rto_expired == 0


def test_window_update_after_zero_window_is_resent_once_if_no_data_follows():
    h, tcb = established(rx_buffer=1000, delayed_ack_ms=0)
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, payload=b"z" * 1000))
    s = h.expect_tcp(ACK, ack=IRS + 1001)
    assert s.tcp.window == 0
    buf = bytearray(1000)
    assert tcb.recv_into(buf, 0, 1000) == 1000
    s = h.expect_tcp(ACK, ack=IRS + 1001)
    assert s.tcp.window == 1000
    h.advance(19)
    h.expect_nothing()
    h.advance(1)  # no data within max(2*SRTT, 20 ms): the update may have been lost
    s = h.expect_tcp(ACK, ack=IRS + 1001)
    assert s.tcp.window == 1000 and h.stack.counters.tcp_window_update_resent == 1
    h.advance(1000)
    h.expect_nothing()  # once only


def test_window_update_not_resent_when_data_arrives():
    h, tcb = established(rx_buffer=1000, delayed_ack_ms=0)
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, payload=b"z" * 1000))
    h.take()
    buf = bytearray(1000)
    tcb.recv_into(buf, 0, 1000)
    h.take()
    h.feed(h.segment(tcb, ACK, IRS + 1001, tcb.iss + 1, payload=b"y" * 10))
    h.expect_tcp(ACK, ack=IRS + 1011)
    h.advance(100)
    h.expect_nothing()
    assert h.stack.counters.tcp_window_update_resent == 0


def test_window_probe_always_answered_other_old_acks_rate_limited():
    h, tcb = established()
    # a zero-window / keep-alive probe (SEG.SEQ = RCV.NXT - 1) twice in a row: both answered
    for _ in range(2):
        h.feed(h.segment(tcb, ACK, IRS, tcb.iss + 1))
        h.expect_tcp(ACK, ack=IRS + 1)
    # other out-of-window pure ACKs: one answer per invalid_ratelimit_ms
    h.feed(h.segment(tcb, ACK, OLD, tcb.iss + 1))
    h.expect_tcp(ACK, ack=IRS + 1)
    h.feed(h.segment(tcb, ACK, OLD, tcb.iss + 1))
    h.expect_nothing()
    assert h.stack.counters.tcp_ack_ratelimited == 1
    h.advance(500)
    h.feed(h.segment(tcb, ACK, OLD, tcb.iss + 1))
    h.expect_tcp(ACK, ack=IRS + 1)


def test_fin_on_out_of_order_segment_waits_for_the_hole():
    h, tcb = established()
    h.feed(h.segment(tcb, ACK | FIN, IRS + 6, tcb.iss + 1, payload=b"world"))
    h.expect_tcp(ACK, ack=IRS + 1)
    assert tcb.state == tcp.ESTABLISHED and not tcb.fin_received
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, payload=b"hello"))
    h.expect_tcp(ACK, ack=IRS + 12)  # data and FIN
    assert tcb.state == tcp.CLOSE_WAIT and tcb.fin_received
    buf = bytearray(20)
    assert tcb.recv_into(buf, 0, 20) == 10 and bytes(buf[:10]) == b"helloworld"


def test_out_of_order_data_beyond_the_fin_is_purged():
    h, tcb = established()
    h.feed(h.segment(tcb, ACK | FIN, IRS + 6, tcb.iss + 1, payload=b"world"))  # FIN at IRS + 11
    h.feed(h.segment(tcb, ACK, IRS + 20, tcb.iss + 1, payload=b"beyond"))  # past the FIN
    h.take()
    assert tcb.ooo_n == 2
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, payload=b"hello"))
    s = h.expect_tcp(ACK, ack=IRS + 12)  # data and FIN; what lay beyond the FIN is gone
    assert sack_blocks(s) == []
    assert tcb.ooo_n == 0 and h.stack.counters.tcp_ooo_purged == 1
    buf = bytearray(40)
    assert tcb.recv_into(buf, 0, 40) == 10 and bytes(buf[:10]) == b"helloworld"
