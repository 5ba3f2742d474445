# dual: cpython micropython
# The minimal data path in the tcpcase dialect (offsets from each side's first data byte; ISS and IRS
# just below 2**32): in-order send and receive, ACKs, duplicate and out-of-window segments, the
# retransmission timer and the zero-window probe. Closing is in test_tcp_close.py, RST/SYN checks in
# test_tcp_rfc5961.py, TIME-WAIT reuse in test_tcp_time_wait.py; the full data-transfer rules in
# test_tcp_transfer.py.
from segment import ACK, PSH, RST
from tcpcase import expect, nothing, peer, setup
from tcpip import errors
from tcpip import tcp


def test_send_data_in_one_segment():
    h, tcb = setup()
    assert tcb.send(b"hello", 0, 5) == 5
    expect(h, ACK | PSH, 0, 0, payload=b"hello")
    assert tcb.timer_on
    peer(h, tcb, 0, 5)
    assert tcb.tx_len == 0 and not tcb.timer_on
    nothing(h)


def test_send_respects_peer_mss_and_window():
    h, tcb = setup(window=1000, mss=400)
    data = bytes(range(256)) * 6  # 1536 bytes
    assert tcb.send(data, 0, len(data)) == 1536
    out = h.take()
    # window 1000: two full segments; the 200 bytes left in the window wait (sender SWS avoidance,
    # RFC 9293 3.8.6.2.1: less than an MSS and less than half the peer's largest window)
    assert [len(s.payload) for s in out] == [400, 400], out
    assert out[0].payload == data[:400] and out[1].payload == data[400:800]
    peer(h, tcb, 0, 400, window=1000)
    out = h.take()
    assert [len(s.payload) for s in out] == [400] and out[0].payload == data[800:1200]
    peer(h, tcb, 0, 1200, window=1000)
    out = h.take()
    assert [len(s.payload) for s in out] == [336]  # the tail: no data in flight, so it goes
    assert out[0].payload == data[1200:]


def test_receive_in_order_data_acks_it():
    h, tcb = setup(delayed_ack_ms=0)
    peer(h, tcb, 0, 0, payload=b"abc", flags=ACK | PSH)
    expect(h, ACK, 0, 3, window=2048 - 3)
    buf = bytearray(10)
    assert tcb.recv_into(buf, 0, 10) == 3 and bytes(buf[:3]) == b"abc"


def test_duplicate_data_is_trimmed_and_acked():
    h, tcb = setup(delayed_ack_ms=0)
    peer(h, tcb, 0, 0, payload=b"abcd")
    h.take()
    # overlaps: "cdef" starting at the 'c' -> only "ef" is new
    peer(h, tcb, 2, 0, payload=b"cdef")
    expect(h, ACK, 0, 6)
    buf = bytearray(10)
    n = tcb.recv_into(buf, 0, 10)
    assert bytes(buf[:n]) == b"abcdef"


def test_out_of_order_data_gets_duplicate_ack_and_is_not_kept_without_reassembly():
    h, tcb = setup(ooo_segments=0)
    peer(h, tcb, 10, 0, payload=b"later")
    expect(h, ACK, 0, 0)
    assert tcb.rx_len == 0
    assert h.stack.counters.tcp_drop_out_of_order == 1


def test_segment_outside_window_gets_ack_and_is_dropped():
    h, tcb = setup()
    peer(h, tcb, 5000, 0, payload=b"x")
    expect(h, ACK, 0, 0)
    assert h.stack.counters.tcp_drop_out_of_window == 1


def test_receive_window_full_keeps_what_fits():
    h, tcb = setup(rx_buffer=8, delayed_ack_ms=0)
    peer(h, tcb, 0, 0, payload=b"0123456789")
    expect(h, ACK, 0, 8, window=0)
    buf = bytearray(16)
    n = tcb.recv_into(buf, 0, 16)
    assert bytes(buf[:n]) == b"01234567"
    # reading opened the whole window: a window update goes out
    expect(h, ACK, 0, 8, window=8)


def test_data_retransmitted_after_rto():
    h, tcb = setup()
    tcb.send(b"hello", 0, 5)
    h.take()
    h.advance(tcb.rto - 1)
    nothing(h)
    h.advance(1)
    expect(h, ACK | PSH, 0, 0, payload=b"hello")
    assert h.stack.counters.tcp_rexmit == 1


def test_data_retries_exhausted_aborts_with_etimedout():
    h, tcb = setup(data_retries=2)
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
    h, tcb = setup(window=0)
    tcb.send(b"abc", 0, 3)
    nothing(h)
    rto = tcb.rto
    # the probe carries an old sequence number (Linux tcp_xmit_probe_skb): the peer must answer
    # it with its current window, and nothing of ours is sent beyond that window
    h.advance(rto - 1)
    nothing(h)
    h.advance(1)
    expect(h, ACK, -1, 0, payload=b"")
    peer(h, tcb, 0, 0, window=0)
    nothing(h)
    h.advance(2 * rto - 1)  # backed off
    nothing(h)
    h.advance(1)
    expect(h, ACK, -1, 0, payload=b"")
    assert h.stack.counters.tcp_persist_probe == 2
    peer(h, tcb, 0, 0, window=100)  # the window opens
    expect(h, ACK | PSH, 0, 0, payload=b"abc")
    assert tcb.persist_shift == 0


def test_rings_wrap_around_on_both_sides():
    h, tcb = setup(rx_buffer=8, tx_buffer=8)
    buf = bytearray(8)
    seq = 0
    for chunk in (b"abcdef", b"ghijkl", b"mnopqr"):
        peer(h, tcb, seq, 0, payload=chunk)
        seq += len(chunk)
        h.take()
        n = tcb.recv_into(buf, 0, 8)
        assert bytes(buf[:n]) == chunk
        h.take()
    una = 0
    for chunk in (b"012345", b"6789AB", b"CDEFGH"):
        assert tcb.send(chunk, 0, len(chunk)) == 6
        expect(h, ACK | PSH, una, seq, payload=chunk)
        una += 6
        peer(h, tcb, seq, una)
    assert tcb.tx_len == 0
