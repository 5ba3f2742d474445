# dual: cpython micropython
# The minimal data path in absolute numbers (Harness.establish, no wrap-around): in-order send and
# receive, ACKs, duplicate and out-of-window segments, the retransmission timer and the zero-window
# probe. Closing is in test_tcp_close.py, RST/SYN checks in test_tcp_rfc5961.py, TIME-WAIT reuse in
# test_tcp_time_wait.py; the full data-transfer rules in test_tcp_transfer.py.
from segment import ACK, PSH, RST, SYN, Harness
from tcpip import errors
from tcpip import tcp

IRS = 1000


def established(**opts):
    h = Harness(**opts)
    tcb = h.establish(irs=IRS)
    return h, tcb


def test_send_data_in_one_segment():
    h, tcb = established()
    assert tcb.send(b"hello", 0, 5) == 5
    h.expect_tcp(ACK | PSH, seq=tcb.iss + 1, ack=IRS + 1, payload=b"hello")
    assert tcb.timer_on
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 6))
    assert tcb.tx_len == 0 and not tcb.timer_on
    h.expect_nothing()


def test_send_respects_peer_mss_and_window():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, IRS, tcb.iss + 1, window=1000, mss=400))
    h.take()
    data = bytes(range(256)) * 6  # 1536 bytes
    assert tcb.send(data, 0, len(data)) == 1536
    out = h.take()
    # window 1000: two full segments; the 200 bytes left in the window wait (sender SWS avoidance,
    # RFC 9293 3.8.6.2.1: less than an MSS and less than half the peer's largest window)
    assert [len(s.payload) for s in out] == [400, 400], out
    assert out[0].payload == data[:400] and out[1].payload == data[400:800]
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1 + 400, window=1000))
    out = h.take()
    assert [len(s.payload) for s in out] == [400] and out[0].payload == data[800:1200]
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1 + 1200, window=1000))
    out = h.take()
    assert [len(s.payload) for s in out] == [336]  # the tail: no data in flight, so it goes
    assert out[0].payload == data[1200:]


def test_receive_in_order_data_acks_it():
    h, tcb = established(delayed_ack_ms=0)
    h.feed(h.segment(tcb, ACK | PSH, IRS + 1, tcb.iss + 1, payload=b"abc"))
    s = h.expect_tcp(ACK, ack=IRS + 4)
    assert s.tcp.window == 2048 - 3
    buf = bytearray(10)
    assert tcb.recv_into(buf, 0, 10) == 3 and bytes(buf[:3]) == b"abc"


def test_duplicate_data_is_trimmed_and_acked():
    h, tcb = established(delayed_ack_ms=0)
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, payload=b"abcd"))
    h.take()
    # overlaps: "cdef" starting at the 'c' -> only "ef" is new
    h.feed(h.segment(tcb, ACK, IRS + 3, tcb.iss + 1, payload=b"cdef"))
    h.expect_tcp(ACK, ack=IRS + 7)
    buf = bytearray(10)
    n = tcb.recv_into(buf, 0, 10)
    assert bytes(buf[:n]) == b"abcdef"


def test_out_of_order_data_gets_duplicate_ack_and_is_not_kept_without_reassembly():
    h, tcb = established(ooo_segments=0)
    h.feed(h.segment(tcb, ACK, IRS + 11, tcb.iss + 1, payload=b"later"))
    h.expect_tcp(ACK, ack=IRS + 1)
    assert tcb.rx_len == 0
    assert h.stack.counters.tcp_drop_out_of_order == 1


def test_segment_outside_window_gets_ack_and_is_dropped():
    h, tcb = established()
    h.feed(h.segment(tcb, ACK, IRS + 1 + 5000, tcb.iss + 1, payload=b"x"))
    h.expect_tcp(ACK, ack=IRS + 1)
    assert h.stack.counters.tcp_drop_out_of_window == 1


def test_receive_window_full_keeps_what_fits():
    h, tcb = established(rx_buffer=8, delayed_ack_ms=0)
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, payload=b"0123456789"))
    s = h.expect_tcp(ACK, ack=IRS + 9)
    assert s.tcp.window == 0
    buf = bytearray(16)
    n = tcb.recv_into(buf, 0, 16)
    assert bytes(buf[:n]) == b"01234567"
    # reading opened the whole window: a window update goes out
    s = h.expect_tcp(ACK, ack=IRS + 9)
    assert s.tcp.window == 8


def test_data_retransmitted_after_rto():
    h, tcb = established()
    tcb.send(b"hello", 0, 5)
    h.take()
    h.advance(tcb.rto - 1)
    h.expect_nothing()
    h.advance(1)
    h.expect_tcp(ACK | PSH, seq=tcb.iss + 1, payload=b"hello")
    assert h.stack.counters.tcp_rexmit == 1


def test_data_retries_exhausted_aborts_with_etimedout():
    h, tcb = established(data_retries=2)
    tcb.send(b"x", 0, 1)
    h.take()
    for _ in range(200):
        if tcb.state == tcp.CLOSED:
            break
        h.advance(1000)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ETIMEDOUT
    out = h.take()
    assert out[-1].tcp.flags == RST | ACK


def test_zero_window_is_probed():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, IRS, tcb.iss + 1, window=0))
    h.take()
    tcb.send(b"abc", 0, 3)
    h.expect_nothing()
    rto = tcb.rto
    # the probe carries an old sequence number (Linux tcp_xmit_probe_skb): the peer must answer
    # it with its current window, and nothing of ours is sent beyond that window
    h.advance(rto - 1)
    h.expect_nothing()
    h.advance(1)
    h.expect_tcp(ACK, seq=tcb.iss, ack=IRS + 1, payload=b"")
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, window=0))
    h.expect_nothing()
    h.advance(2 * rto - 1)  # backed off
    h.expect_nothing()
    h.advance(1)
    h.expect_tcp(ACK, seq=tcb.iss, payload=b"")
    assert h.stack.counters.tcp_persist_probe == 2
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 1, window=100))  # the window opens
    h.expect_tcp(ACK | PSH, seq=tcb.iss + 1, payload=b"abc")
    assert tcb.persist_shift == 0


def test_rings_wrap_around_on_both_sides():
    h, tcb = established(rx_buffer=8, tx_buffer=8)
    buf = bytearray(8)
    seq = IRS + 1
    for chunk in (b"abcdef", b"ghijkl", b"mnopqr"):
        h.feed(h.segment(tcb, ACK, seq, tcb.iss + 1, payload=chunk))
        seq += len(chunk)
        h.take()
        n = tcb.recv_into(buf, 0, 8)
        assert bytes(buf[:n]) == chunk
        h.take()
    una = tcb.iss + 1
    for chunk in (b"012345", b"6789AB", b"CDEFGH"):
        assert tcb.send(chunk, 0, len(chunk)) == 6
        h.expect_tcp(ACK | PSH, seq=una, payload=chunk)
        una += 6
        h.feed(h.segment(tcb, ACK, seq, una))
    assert tcb.tx_len == 0
