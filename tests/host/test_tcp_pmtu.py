# dual: cpython micropython
# Path MTU discovery for TCP (RFC 1191; Linux tcp_v4_err -> tcp_v4_mtu_reduced, tcp_sync_mss,
# tcp_simple_retransmit): an ICMP fragmentation needed (type 3 code 4) that quotes a segment in
# flight lowers the send MSS to the next-hop MTU - 40 (floor: MTU 552, MSS 512; never raised) and
# what was in flight goes again at once, in segments of the new size. Anything else is counted
# (tcp_pmtu_ignored) and changes nothing. Exact segments, explicit clock; ISS and IRS just below
# 2**32, so sequence numbers wrap.
from segment import ACK, FIN, OUR_MAC, PEER_MAC, PSH, SYN, Harness, eth, ip_packet
from tcpip import tcp
from wirerep import ethernet
from wirerep import ipv4
from wirerep.icmp import IcmpRepr

from tcpcase import (IRS, ISS, MSS, expect, fix_isn, layout, nothing, pattern, peer, segs, setup,
                     sq)

ROUTER = ipv4.aton("198.51.100.254")  # the router that could not forward (off-link)


def frag_needed(h, sent, mtu, quote_len=28, seq=None, sport=None, total=None, dst=None, proto=None):
    """An ICMP fragmentation needed from ROUTER (through our gateway's MAC) quoting `sent` (a
    segment we sent: Sent), its IP header and quote_len - 20 bytes after it; mtu is the next-hop
    MTU field. seq / sport / total / dst / proto overwrite the quoted sequence number (absolute),
    source port, IP total length, destination address and protocol."""
    q = bytearray(sent.frame[14:14 + quote_len])
    if seq is not None:
        q[24] = seq >> 24 & 0xFF
        q[25] = seq >> 16 & 0xFF
        q[26] = seq >> 8 & 0xFF
        q[27] = seq & 0xFF
    if sport is not None:
        q[20] = sport >> 8
        q[21] = sport & 0xFF
    if total is not None:
        q[2] = total >> 8
        q[3] = total & 0xFF
    if dst is not None:
        q[16:20] = dst
    if proto is not None:
        q[9] = proto
    body = bytearray(8 + len(q))
    body[8:] = q
    IcmpRepr(3, 4, 0, mtu, len(q)).emit(body, 0)
    return eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4,
               ip_packet(ROUTER, sent.ip.src, ipv4.PROTO_ICMP, bytes(body)))


def counters(h):
    c = h.stack.counters
    return c.tcp_pmtu_reduced, c.tcp_pmtu_ignored


def in_flight(n=3, **opts):
    """ESTABLISHED (peer MSS 1460), n full segments sent and unacknowledged: (h, tcb, data, segs)."""
    opts.setdefault("tx_buffer", 16384)
    h, tcb = setup(**opts)
    data = pattern(n * MSS)
    assert tcb.send(data, 0, len(data)) == len(data)
    out = segs(h)
    assert [(x[0], x[1]) for x in layout(out)] == [(i * MSS, MSS) for i in range(n)], layout(out)
    return h, tcb, data, out


def pieces(total, size, start=0):
    """(offset, length) of total bytes in segments of size."""
    out = []
    o = 0
    while o < total:
        n = total - o if total - o < size else size
        out.append((start + o, n))
        o += n
    return out


# -- a valid quote ---------------------------------------------------------------------------------
def test_frag_needed_lowers_mss_and_resends_the_flight_at_the_new_size():
    h, tcb, data, out = in_flight(3)
    assert tcb.mss == MSS and tcb.cwnd == 10 * MSS
    h.advance(5)
    h.feed(frag_needed(h, out[0], 576))
    assert counters(h) == (1, 0)
    assert tcb.mss == 536
    # the 4380 bytes in flight again from SND.UNA, in 536-byte segments (Linux
    # tcp_simple_retransmit), the last one pushed
    again = segs(h)
    want = pieces(3 * MSS, 536)
    assert [(x[0], x[1]) for x in layout(again)] == want, layout(again)
    assert again[-1].tcp.flags == ACK | PSH and again[0].tcp.flags == ACK
    for s in again:
        o = (s.tcp.seq - sq(ISS + 1)) & 0xFFFFFFFF
        assert s.payload == data[o:o + len(s.payload)]
        assert s.ip.payload_len + 20 <= 576  # the datagram fits the next hop
    # cwnd kept its number of segments (10), in the new units; the RTO restarted from now
    assert tcb.cwnd == 10 * 536
    assert tcb.timer_on and tcb.deadline == h.clock.ticks_ms() + tcb.rto
    assert tcb.state == tcp.ESTABLISHED and h.stack.counters.tcp_rexmit == 1


def test_after_the_decrease_new_data_and_the_fast_path_use_the_new_mss():
    h, tcb, data, out = in_flight(3)
    h.feed(frag_needed(h, out[1], 1006))  # a quote of the second segment is in flight too
    assert tcb.mss == 966 and counters(h) == (1, 0)
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(3 * MSS, 966)
    peer(h, tcb, 0, 3 * MSS)  # all acknowledged
    nothing(h)
    assert tcb.s_una == tcb.s_max
    more = pattern(3000, 5)
    assert tcb.send(more, 0, 3000) == 3000
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(3000, 966, 3 * MSS)
    # the ACK of it takes header prediction (ESTABLISHED, hot) and the rest still fits 966
    assert h.stack.tcp.hot is tcb
    peer(h, tcb, 0, 3 * MSS + 3000)
    nothing(h)
    assert tcb.tx_len == 0 and tcb.mss == 966


def test_fin_in_flight_is_resent_on_the_last_smaller_segment():
    h, tcb, data, out = in_flight(2)
    tcb.close()  # FIN alone after the data (Nagle: nothing small is out)
    fin = expect(h, ACK | FIN, 2 * MSS, 0)
    assert tcb.state == tcp.FIN_WAIT_1
    h.feed(frag_needed(h, out[0], 576))
    again = segs(h)
    want = [(o, n, ACK) for o, n in pieces(2 * MSS, 536)]
    want[-1] = (want[-1][0], want[-1][1], ACK | PSH | FIN)
    assert layout(again) == want, layout(again)
    peer(h, tcb, 0, 2 * MSS + 1)
    nothing(h)
    assert tcb.state == tcp.FIN_WAIT_2
    assert fin.tcp.seq == sq(ISS + 1 + 2 * MSS)


def test_frag_needed_with_nothing_too_big_in_flight_lowers_mss_without_resending():
    h, tcb = setup(tx_buffer=8192)
    assert tcb.send(pattern(300), 0, 300) == 300
    out = segs(h)
    assert layout(out) == [(0, 300, ACK | PSH)]
    h.feed(frag_needed(h, out[0], 1280))
    assert tcb.mss == 1240 and counters(h) == (1, 0)
    nothing(h)  # 300 bytes fit 1240: nothing was refused for its size
    peer(h, tcb, 0, 300)
    assert tcb.send(pattern(3000), 0, 3000) == 3000
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(3000, 1240, 300)


# -- what is ignored, and counted --------------------------------------------------------------------
def test_second_frag_needed_for_the_same_flight_is_ignored():
    h, tcb, data, out = in_flight(3)
    h.feed(frag_needed(h, out[0], 576))
    segs(h)
    # the router's messages for the other two oversized segments: RFC 1191 6.4, no
    # retransmission per message
    h.feed(frag_needed(h, out[1], 576))
    h.feed(frag_needed(h, out[2], 576))
    nothing(h)
    assert tcb.mss == 536 and counters(h) == (1, 2)


def test_frag_needed_quoting_a_sequence_outside_the_flight_is_ignored():
    h, tcb, data, out = in_flight(3)
    peer(h, tcb, 0, MSS)  # the first segment is acknowledged: SND.UNA = 1460
    h.take()
    h.feed(frag_needed(h, out[0], 576))  # quotes an acknowledged segment (stale)
    h.feed(frag_needed(h, out[0], 576, seq=sq(ISS + 1 + 3 * MSS + 1)))  # beyond SND.MAX
    h.feed(frag_needed(h, out[0], 576, seq=sq(ISS + 0x40000000)))  # nowhere near
    nothing(h)
    assert tcb.mss == MSS and counters(h) == (0, 3)
    # SND.UNA and SND.MAX themselves are in (Linux's between(), both ends included)
    h.feed(frag_needed(h, out[0], 1400, seq=sq(ISS + 1 + 3 * MSS)))
    assert tcb.mss == 1360 and counters(h) == (1, 3)
    h.take()
    h.feed(frag_needed(h, out[1], 1300))
    assert tcb.mss == 1260 and counters(h) == (2, 3)


def test_frag_needed_for_another_connection_is_ignored():
    h, tcb, data, out = in_flight(3)
    h.feed(frag_needed(h, out[0], 576, sport=tcb.local_port ^ 1))
    h.feed(frag_needed(h, out[0], 576, dst=ipv4.aton("192.0.2.77")))
    nothing(h)
    assert tcb.mss == MSS and counters(h) == (0, 2)
    # a quote too short for the sequence number is no TCP quote at all
    h.feed(frag_needed(h, out[0], 576, quote_len=24))
    assert counters(h) == (0, 2) and h.stack.counters.icmp_unreach_no_match == 1
    # UDP quoted: ours are small (DHCP, DNS); not TCP's business
    h.feed(frag_needed(h, out[0], 576, proto=ipv4.PROTO_UDP))
    assert counters(h) == (0, 2) and h.stack.counters.icmp_unreach_ignored == 1
    nothing(h)
    assert tcb.mss == MSS and tcb.state == tcp.ESTABLISHED


def test_frag_needed_never_raises_the_mss():
    h, tcb = setup(mss=536, tx_buffer=8192)  # the peer allows 536
    assert tcb.mss == 536
    assert tcb.send(pattern(1072), 0, 1072) == 1072
    out = segs(h)
    assert layout(out) == [(0, 536, ACK), (536, 536, ACK | PSH)]
    h.feed(frag_needed(h, out[0], 1500))
    h.feed(frag_needed(h, out[0], 9000))
    h.feed(frag_needed(h, out[0], 576))  # 536: not below what we send
    nothing(h)
    assert tcb.mss == 536 and counters(h) == (0, 3)


def test_tiny_mtu_is_floored_at_552():
    h, tcb, data, out = in_flight(3)
    h.feed(frag_needed(h, out[0], 100))  # below Linux's min_pmtu (552): taken as 552
    assert tcb.mss == 512 and counters(h) == (1, 0)
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(3 * MSS, 512)
    h.feed(frag_needed(h, out[1], 68))  # RFC 791's minimum: still 552, no lower
    h.feed(frag_needed(h, out[2], 300))
    nothing(h)
    assert tcb.mss == 512 and counters(h) == (1, 2)


def test_zero_mtu_field_takes_the_plateau_below_the_quoted_length():
    # a router from before RFC 1191 leaves the field 0 (RFC 1191 5 and 7)
    h, tcb, data, out = in_flight(3)
    assert out[0].ip.payload_len + 20 == 1500
    h.feed(frag_needed(h, out[0], 0))
    assert tcb.mss == 1492 - 40 and counters(h) == (1, 0)
    again = segs(h)
    assert [(x[0], x[1]) for x in layout(again)] == pieces(3 * MSS, 1452)
    # the resent 1492-byte datagram is too big again: the next plateau down, 1006
    h.feed(frag_needed(h, again[0], 0))
    assert tcb.mss == 1006 - 40 and counters(h) == (2, 0)
    again = segs(h)
    assert [(x[0], x[1]) for x in layout(again)] == pieces(3 * MSS, 966)
    # and below 1006 the plateau is 508, floored at 552
    h.feed(frag_needed(h, again[0], 0))
    assert tcb.mss == 512 and counters(h) == (3, 0)
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(3 * MSS, 512)
    # a quoted length of 68 or less has no plateau below it
    h.feed(frag_needed(h, again[0], 0, total=60))
    nothing(h)
    assert tcb.mss == 512 and counters(h) == (3, 1)


def test_frag_needed_in_syn_sent_is_not_an_error():
    h = Harness()
    fix_isn(h)
    tcb, syn = h.connect()
    h.feed(frag_needed(h, syn, 576))
    h.feed(frag_needed(h, syn, 0))
    assert tcb.state == tcp.SYN_SENT and tcb.error == 0
    assert counters(h) == (0, 2) and h.stack.counters.icmp_unreach_delivered == 0
    h.expect_nothing()
    # the handshake completes and data goes at the peer's MSS
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), 65535, mss=MSS))
    expect(h, ACK, 0)
    assert tcb.mss == MSS and tcb.send(pattern(2000), 0, 2000) == 2000
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(2000, MSS)


def test_frag_needed_in_time_wait_is_ignored():
    h, tcb = setup()
    tcb.close()
    fin = expect(h, ACK | FIN, 0)
    peer(h, tcb, 0, 1, flags=ACK | FIN)
    expect(h, ACK, 1, 1)  # TIME-WAIT (a Tcb, or a record of its own)
    h.feed(frag_needed(h, fin, 576))
    nothing(h)
    assert counters(h) == (0, 1)


def test_decrease_while_waiting_for_the_rto_keeps_the_backoff_and_resends_once():
    h, tcb, data, out = in_flight(2)
    rto = tcb.rto
    for _ in range(2000):  # the tail loss probe, then the RTO (go-back-N, cwnd 1 MSS)
        if h.stack.counters.tcp_rto_expired:
            break
        h.advance(1)
    assert layout(segs(h))[-1] == (0, MSS, ACK)
    backed = tcb.rto
    assert backed == 2 * rto and tcb.cwnd == MSS
    h.feed(frag_needed(h, out[0], 576))
    # cwnd was one 1460-byte segment: now one of 536, the RTO's backoff stays
    assert layout(segs(h)) == [(0, 536, ACK)]
    assert tcb.cwnd == 536 and tcb.rto == backed
    assert tcb.deadline == h.clock.ticks_ms() + backed
    peer(h, tcb, 0, 536)  # slow start from there: two more of 536
    assert [(x[0], x[1]) for x in layout(segs(h))] == [(536, 536), (1072, 536)]


def test_decrease_during_fast_recovery_ends_it_with_the_window_deflated():
    h, tcb, data, out = in_flight(6)
    for _ in range(3):
        peer(h, tcb, 0, 0)  # three duplicate ACKs: fast retransmit, NewReno recovery
    assert layout(segs(h)) == [(0, MSS, ACK)]
    assert tcb.in_recovery and tcb.ssthresh == 3 * MSS and tcb.cwnd == 6 * MSS
    h.feed(frag_needed(h, out[1], 576))
    # the inflated window back to ssthresh (3 segments), in 536-byte units; recovery is over
    assert not tcb.in_recovery and tcb.cwnd == 3 * 536 and tcb.ssthresh == 3 * 536
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(3 * 536, 536)
    peer(h, tcb, 0, 3 * 536)  # congestion avoidance from there: the next three of 536
    assert [(x[0], x[1]) for x in layout(segs(h))] == pieces(3 * 536, 536, 3 * 536)
