# dual: cpython micropython
# Passive open (RFC 9293 3.10.7.2 LISTEN, 3.10.7.4 SYN-RECEIVED) as Linux's listener does it:
# half-open records answered with SYN-ACKs (retransmitted 1 s doubling, then given up), the
# connection made only by an acceptable ACK, a bounded accept queue, SYN cookies once the half-open
# records are full (a flood of 10,000 spoofed SYNs while a real client connects), a new SYN onto a
# TIME-WAIT 4-tuple. Exact segments, explicit clock.
from segment import (ACK, FIN, OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, PSH, RST, SYN, Harness, eth,
                     ip_packet, tcp_segment)
from tcpip import tcp
from wirerep import ethernet
from wirerep import ipv4
from wirerep import tcp as wtcp

PORT = 8080
MASK = 0xFFFFFFFF
SACK_OPTS = b"\x02\x04\x05\xb4\x04\x02\x01\x01"  # MSS 1460, SACK-permitted, NOP, NOP


def seg(flags, seq, ack=0, sport=40000, payload=b"", mss=0, options=None, src=PEER_IP, window=64240):
    t = tcp_segment(src, OUR_IP, sport, PORT, seq, ack, flags, window, payload, mss, options)
    return eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(src, OUR_IP, ipv4.PROTO_TCP, t))


def listening(backlog=4, **opts):
    h = Harness(**opts)
    x = h.stack.tcp.listen(None, PORT, backlog)
    return h, x


def synack(h, seq, sport=40000):
    """Exactly one SYN-ACK went out, for the peer's SYN with sequence number seq: its ISS."""
    s = h.expect_tcp(SYN | ACK, ack=(seq + 1) & MASK)
    assert s.tcp.src_port == PORT and s.tcp.dst_port == sport
    return s.tcp.seq


def handshake(h, x, sport=40000, seq=5000, payload=b""):
    h.feed(seg(SYN, seq, sport=sport, mss=1460))
    iss = synack(h, seq, sport)
    h.feed(seg(ACK | (PSH if payload else 0), seq + 1, iss + 1, sport=sport, payload=payload))
    return iss


def test_a_syn_gets_a_syn_ack_with_our_mss_and_the_ack_makes_the_connection():
    h, x = listening()
    h.feed(seg(SYN, 5000, mss=1400))
    s = h.expect_tcp(SYN | ACK, ack=5001)
    assert s.tcp.mss == 1460 and s.tcp.window == 2048  # the harness's 2 KB rings
    assert h.stack.tcp.tcbs == [] and x.syn_n == 1  # a record, no connection yet
    h.advance(30)
    h.feed(seg(ACK | PSH, 5001, s.tcp.seq + 1, payload=b"GET /"))
    assert len(x.queue) == 1 and x.syn_n == 0
    t = x.queue[0]
    assert t.state == tcp.ESTABLISHED and t.local_port == PORT and t.remote_port == 40000
    assert t.mss == 1400 and t.iss == s.tcp.seq and t.irs == 5000
    assert t.srtt == 30  # the handshake's RTT (the SYN-ACK went once)
    buf = bytearray(10)
    assert t.recv_into(buf, 0, 10) == 5 and bytes(buf[:5]) == b"GET /"
    assert h.stack.counters.tcp_passive_open == 1
    # the connection works both ways
    assert t.send(b"200 OK", 0, 6) == 6
    h.advance(0)
    out = h.take()
    assert [o.payload for o in out if o.payload] == [b"200 OK"]


def test_sack_permitted_is_answered_and_kept():
    h, x = listening()
    h.feed(seg(SYN, 7000, options=SACK_OPTS))
    s = h.expect_tcp(SYN | ACK, ack=7001)
    f = s.frame
    off = 14 + 20
    assert wtcp.find_option(f, off, (f[off + 12] >> 4) * 4, 4, 2) >= 0
    h.feed(seg(ACK, 7001, s.tcp.seq + 1))
    assert x.queue[0].sack_ok


def test_the_same_syn_again_gets_the_same_syn_ack_at_most_twice_a_second():
    h, x = listening()
    h.feed(seg(SYN, 5000, mss=1460))
    iss = synack(h, 5000)
    h.feed(seg(SYN, 5000, mss=1460))
    assert synack(h, 5000) == iss and x.syn_n == 1
    for _ in range(5):  # more copies at once: no SYN-ACK amplifier (Linux tcp_oow_rate_limited)
        h.feed(seg(SYN, 5000, mss=1460))
    h.expect_nothing()
    assert h.stack.counters.tcp_ack_ratelimited == 5
    h.advance(501)
    h.take()
    h.feed(seg(SYN, 5000, mss=1460))
    assert synack(h, 5000) == iss


def test_the_syn_ack_is_retransmitted_doubling_then_given_up():
    h, x = listening(synack_retries=3)
    h.feed(seg(SYN, 5000, mss=1460))
    iss = synack(h, 5000)
    at = 0
    for wait in (1000, 2000, 4000):
        h.advance(wait - 1)
        h.expect_nothing()
        h.advance(1)
        assert synack(h, 5000) == iss
        at += wait
    h.advance(8000)
    h.expect_nothing()
    assert x.syn_n == 0
    c = h.stack.counters
    assert c.tcp_synack_retransmit == 3 and c.tcp_synack_timeout == 1
    # the peer's late ACK now finds nothing: RST
    h.feed(seg(ACK, 5001, iss + 1))
    assert h.expect_tcp(RST).tcp.seq == (iss + 1) & MASK


def test_an_unacceptable_ack_gets_a_rst_and_the_record_stays():
    h, x = listening()
    h.feed(seg(SYN, 5000, mss=1460))
    iss = synack(h, 5000)
    h.feed(seg(ACK, 5001, iss + 7))
    assert h.expect_tcp(RST).tcp.seq == (iss + 7) & MASK  # <SEQ=SEG.ACK><CTL=RST>
    assert x.syn_n == 1 and x.queue == []
    h.feed(seg(ACK, 5001, iss + 1))
    assert len(x.queue) == 1


def test_a_rst_at_the_right_sequence_ends_the_half_open_record():
    h, x = listening()
    h.feed(seg(SYN, 5000, mss=1460))
    synack(h, 5000)
    h.feed(seg(RST, 4000))  # out of window: ignored
    assert x.syn_n == 1
    h.feed(seg(RST, 5001))
    h.expect_nothing()
    assert x.syn_n == 0


def test_listen_answers_other_segments_as_rfc_9293_says():
    h, x = listening()
    h.feed(seg(ACK, 100, 12345))  # an ACK in LISTEN: <SEQ=SEG.ACK><CTL=RST>
    assert h.expect_tcp(RST).tcp.seq == 12345
    h.feed(seg(SYN | ACK, 100, 12345))
    assert h.expect_tcp(RST).tcp.seq == 12345
    h.feed(seg(FIN, 100))  # neither SYN, RST nor ACK: dropped
    h.feed(seg(RST, 100))
    h.expect_nothing()
    assert h.stack.counters.tcp_listen_rst_sent == 2
    # another port, nobody listens: RST as before
    t = tcp_segment(PEER_IP, OUR_IP, 40000, 9999, 100, 0, SYN)
    h.feed(eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(PEER_IP, OUR_IP, ipv4.PROTO_TCP, t)))
    assert h.expect_tcp(RST | ACK).tcp.ack == 101


def test_a_full_accept_queue_drops_syns_and_completing_acks():
    h, x = listening(backlog=1)
    handshake(h, x, sport=40001)
    assert len(x.queue) == 1
    h.feed(seg(SYN, 9000, sport=40002, mss=1460))
    h.expect_nothing()  # Linux: dropped while the queue is full; the client retries
    assert h.stack.counters.tcp_listen_overflow == 1
    x.queue.pop(0)  # accept()
    iss = handshake(h, x, sport=40002, seq=9000)
    assert len(x.queue) == 1 and x.queue[0].iss == iss


def test_the_connection_limit_holds_for_passive_opens_too():
    h, x = listening(backlog=8, max_connections=2)
    handshake(h, x, sport=40001)
    handshake(h, x, sport=40002)
    h.feed(seg(SYN, 9000, sport=40003, mss=1460))
    iss = synack(h, 9000, 40003)
    h.feed(seg(ACK, 9001, iss + 1, sport=40003))
    assert len(x.queue) == 2 and h.stack.counters.tcp_conn_limit == 1
    assert x.syn_n == 1  # kept: its SYN-ACK goes again, and the client's ACK then may succeed


def _rand(state):
    state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
    return state[0]


def test_a_flood_of_10000_spoofed_syns_while_a_real_client_connects():
    h, x = listening(backlog=4)
    h.stack.trace = None  # the harness's trace keeps every event
    h.events = None
    st = [7]
    legit_iss = None
    for i in range(10000):
        r = _rand(st)
        # spoofed sources behind the gateway (no ARP for them) with random ports and ISNs
        src = bytes((198, 51, 100, 1 + r % 250))
        h.feed(seg(SYN, _rand(st), sport=1024 + r % 60000, src=src, mss=1460))
        h.dev.sent = []
        if i == 5000:
            # the real client, in the middle of it: its SYN gets a cookie (the records are full)
            h.feed(seg(SYN, 777, sport=40000, mss=1460))
            legit_iss = synack(h, 777)
        if i % 500 == 0:
            h.advance(10)
    c = h.stack.counters
    assert x.syn_n == h.stack.tcp.config.syn_backlog  # the records stayed at their bound
    assert c.tcp_syncookies_sent > 9000
    assert h.stack.tcp.tcbs == [] and x.queue == []
    # the real client's ACK: the cookie makes its connection
    h.feed(seg(ACK | PSH, 778, legit_iss + 1, payload=b"hello"))
    assert len(x.queue) == 1 and c.tcp_syncookies_ok == 1
    t = x.queue[0]
    assert t.state == tcp.ESTABLISHED and t.mss == 1460 and not t.sack_ok and t.rx_len == 5
    # a forged cookie (another ISN) is refused
    h.feed(seg(ACK, 12346, legit_iss + 1, sport=40009))
    h.expect_tcp(RST)
    assert c.tcp_syncookies_failed == 1 and len(x.queue) == 1
    assert c.eth_drop_exception == 0


def test_a_new_syn_onto_a_time_wait_4_tuple_opens_a_new_connection():
    h, x = listening()
    handshake(h, x, sport=40000, seq=5000)
    t = x.queue.pop(0)
    # the server closes first: TIME-WAIT on its side
    t.close()
    fin = h.expect_tcp(ACK | FIN)
    h.feed(seg(ACK | FIN, 5001, fin.tcp.seq + 1))
    h.expect_tcp(ACK)
    assert h.stack.tcp.tw_n == 1
    # the same client port again, with a higher ISN: a new connection (Linux TCP_TW_SYN)
    h.feed(seg(SYN, 90000, mss=1460))
    iss = synack(h, 90000)
    assert h.stack.tcp.tw_n == 0
    h.feed(seg(ACK, 90001, iss + 1))
    assert len(x.queue) == 1
    # an older ISN would have been answered from the record instead (an ACK)


def test_closing_the_listener_resets_what_nobody_accepted():
    h, x = listening()
    handshake(h, x, sport=40001)
    h.feed(seg(SYN, 9000, sport=40002, mss=1460))
    h.take()
    h.stack.tcp.unlisten(x)
    out = h.take()
    assert [(o.tcp.dst_port, o.tcp.flags & RST) for o in out] == [(40001, RST)]
    assert h.stack.tcp.listeners is None and h.stack.tcp.tcbs == []
    h.feed(seg(SYN, 9500, sport=40003, mss=1460))
    assert h.expect_tcp(RST | ACK).tcp.ack == 9501  # nobody listens any more
