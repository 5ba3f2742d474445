# dual: cpython micropython
# Scripted segment-level tests of the connect path: SYN, its retransmit timer, SYN-SENT input
# (RFC 9293 3.10.7.3), ICMP errors, ARP failure, routing, ports and RSTs for unknown connections.
from segment import (ACK, FIN, OUR_IP, PEER_IP, PEER_MAC, PEER_PORT, PSH, REMOTE_IP, RST, SYN,
                     Harness)
from tcpip import errors
from tcpip import tcp
from tcpip.clock import PERIOD
from wirerep import ipv4

from tcpcase import IRS, ISS, expect, fix_isn, layout, pattern, segs, sq


def syn_times_ms(h, tcb, until_ms):
    """Advance 1 ms at a time (bounded) and note when SYNs go out; returns the times."""
    times = [0]
    t = 0
    while t < until_ms and tcb.state == tcp.SYN_SENT:
        h.advance(1)
        t += 1
        for s in h.take():
            assert s.tcp is not None and s.tcp.flags == SYN and s.tcp.seq == tcb.iss, s
            times.append(t)
    return times, t


def test_syn_carries_mss_from_mtu_and_our_window():
    h = Harness()
    tcb, syn = h.connect()
    assert syn.tcp.mss == 1460
    assert syn.tcp.window == 2048
    assert syn.tcp.ack == 0
    assert syn.ip.ttl == 64 and syn.ip.df
    assert syn.eth.dst == PEER_MAC
    assert 32768 <= syn.tcp.src_port <= 60999
    assert tcb.state == tcp.SYN_SENT
    assert tcb.mss == 536  # peer MSS assumed 536 until its SYN-ACK says otherwise
    assert tcb.snd_nxt == (tcb.iss + 1) & 0xFFFFFFFF


def test_syn_retransmit_backoff_then_etimedout():
    h = Harness()
    tcb, _ = h.connect()
    times, t = syn_times_ms(h, tcb, 130000)
    assert times == [0, 1000, 3000, 7000, 15000, 31000, 63000], times
    assert t == 127000, t
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ETIMEDOUT
    assert h.stack.tcp.tcbs == []
    assert h.stack.counters.tcp_connect_timeout == 1
    h.expect_nothing()


def test_syn_retransmit_across_the_tick_wrap():
    h = Harness(start_ms=PERIOD - 2500)
    tcb, _ = h.connect()
    times, t = syn_times_ms(h, tcb, 130000)
    assert times == [0, 1000, 3000, 7000, 15000, 31000, 63000], times
    assert t == 127000
    assert tcb.error == errors.ETIMEDOUT


def test_syn_retries_and_rto_max_are_configurable():
    h = Harness(syn_retries=3, rto_max_ms=2500)
    tcb, _ = h.connect()
    times, t = syn_times_ms(h, tcb, 20000)
    assert times == [0, 1000, 3000, 5500], times
    assert t == 8000
    assert tcb.error == errors.ETIMEDOUT


def test_syn_sent_syn_ack_establishes():
    h = Harness()
    tcb, _ = h.connect()
    h.advance(40)
    h.feed(h.segment(tcb, SYN | ACK, 5000, tcb.iss + 1, window=29200, mss=1400))
    h.expect_tcp(ACK, seq=tcb.iss + 1, ack=5001)
    assert tcb.state == tcp.ESTABLISHED
    assert tcb.irs == 5000 and tcb.rcv_nxt == 5001
    assert tcb.mss == 1400 and tcb.snd_wnd == 29200
    assert tcb.first_rtt_ms == 40
    assert tcb.srtt == 40 and tcb.rttvar == 20
    assert tcb.rto == 200  # 40 + 4*20 = 120, raised to the 200 ms minimum
    assert not tcb.timer_on


def test_syn_ack_without_mss_option_keeps_536():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, 1, tcb.iss + 1))
    h.expect_tcp(ACK)
    assert tcb.mss == 536


def test_syn_ack_mss_above_ours_is_capped():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, 1, tcb.iss + 1, mss=9000))
    h.expect_tcp(ACK)
    assert tcb.mss == 1460


def test_tiny_peer_mss_is_raised_to_48_as_linux():
    # Linux tcp_min_snd_mss (48, CVE-2019-11479): a peer announcing MSS 1 would otherwise make us
    # cut the send ring into one-byte segments, a frame (and a pass through the stack) per byte.
    h = Harness()
    fix_isn(h)
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), 65535, mss=1))
    expect(h, ACK, 0, 0)
    assert tcb.state == tcp.ESTABLISHED and tcb.mss == 48
    tcb.send(pattern(100), 0, 100)
    assert layout(segs(h)) == [(0, 48, ACK), (48, 48, ACK), (96, 4, ACK | PSH)]


def test_syn_ack_with_malformed_options_still_establishes():
    h = Harness()
    tcb, _ = h.connect()
    # unknown kind 99 (len 3), then a zero-length option: parsing stops, MSS absent
    h.feed(h.segment(tcb, SYN | ACK, 1, tcb.iss + 1, options=b"\x63\x03\x00\x05\x00\x00\x00\x00"))
    h.expect_tcp(ACK)
    assert tcb.state == tcp.ESTABLISHED and tcb.mss == 536


def test_syn_sent_ack_at_or_below_iss_gets_rst():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK, 1, tcb.iss))
    h.expect_tcp(RST, seq=tcb.iss)
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.tcp_syn_sent_bad_ack_rst_sent == 1


def test_syn_sent_ack_beyond_snd_nxt_gets_rst():
    h = Harness()
    tcb, _ = h.connect()
    bad = (tcb.iss + 2) & 0xFFFFFFFF
    h.feed(h.segment(tcb, ACK, 1, bad))
    h.expect_tcp(RST, seq=bad)
    assert tcb.state == tcp.SYN_SENT


def test_syn_sent_rst_with_bad_ack_is_ignored():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, RST | ACK, 0, tcb.iss + 7))
    h.expect_nothing()
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.tcp_syn_sent_bad_ack_dropped == 1


def test_syn_sent_rst_with_ack_refuses():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, RST | ACK, 0, tcb.iss + 1))
    h.expect_nothing()
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ECONNREFUSED
    assert h.stack.tcp.tcbs == []


def test_syn_sent_rst_without_ack_is_ignored():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, RST, 0, 0))
    h.expect_nothing()
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.tcp_rst_blind_dropped == 1


def test_syn_sent_segment_without_syn_or_rst_is_dropped():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, ACK, 1, tcb.iss + 1))
    h.expect_nothing()
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.tcp_syn_sent_no_syn_dropped == 1


def test_simultaneous_open():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN, 7000, 0, mss=1200))
    h.expect_tcp(SYN | ACK, seq=tcb.iss, ack=7001)
    assert tcb.state == tcp.SYN_RECEIVED
    # the peer's ACK of our SYN-ACK completes it (its own SYN-ACK does too,
    # test_simultaneous_open_completes_on_the_peers_syn_ack)
    h.feed(h.segment(tcb, ACK, 7001, tcb.iss + 1))
    assert tcb.state == tcp.ESTABLISHED
    assert tcb.mss == 1200
    h.expect_nothing()


def test_simultaneous_open_rst_refuses():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN, 7000, 0))
    h.take()
    h.feed(h.segment(tcb, RST, 7001, 0))
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ECONNREFUSED


def test_simultaneous_open_completes_on_the_peers_syn_ack():
    # RFC 9293 3.5 figure 8, line 6: in SYN-RECEIVED the peer's <SEQ=IRS><ACK=ISS+1><SYN,ACK>
    # makes the connection ESTABLISHED (Linux tcp_validate_incoming: "goto pass" for exactly this
    # segment). Taking it as an out-of-window SYN (challenge ACK) left us in SYN-RECEIVED until
    # our own SYN-ACK retransmission, a second or more later.
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


def test_karn_no_rtt_sample_from_retransmitted_syn():
    h = Harness()
    tcb, _ = h.connect()
    h.advance(1000)
    h.expect_tcp(SYN)
    h.advance(30)
    h.feed(h.segment(tcb, SYN | ACK, 1, tcb.iss + 1, mss=1460))
    h.expect_tcp(ACK)
    assert tcb.first_rtt_ms == -1 and tcb.srtt == 0
    assert tcb.rto == 3000  # RFC 6298 5.7


def icmp_case(type, code, expected_errno):
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.icmp_error(tcb, type, code))
    assert tcb.state == tcp.CLOSED, tcb.state_name()
    assert tcb.error == expected_errno, (tcb.error, expected_errno)
    assert h.stack.counters.icmp_unreach_delivered == 1
    h.expect_nothing()


def test_icmp_host_unreachable_fails_connect():
    icmp_case(3, 1, errors.EHOSTUNREACH)


def test_icmp_net_unreachable_fails_connect():
    icmp_case(3, 0, errors.ENETUNREACH)


def test_icmp_port_unreachable_refuses_connect():
    icmp_case(3, 3, errors.ECONNREFUSED)


def test_icmp_admin_prohibited_fails_connect():
    icmp_case(3, 13, errors.EHOSTUNREACH)


def test_icmp_time_exceeded_fails_connect():
    icmp_case(11, 0, errors.EHOSTUNREACH)


def test_blind_icmp_with_wrong_sequence_is_ignored():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.icmp_error(tcb, 3, 1, quoted_seq=(tcb.iss + 12345) & 0xFFFFFFFF))
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.icmp_unreach_no_match == 1


def test_blind_icmp_for_another_port_is_ignored():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.icmp_error(tcb, 3, 3, quoted_sport=tcb.local_port ^ 1))
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.icmp_unreach_no_match == 1


def test_icmp_fragmentation_needed_does_not_abort():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.icmp_error(tcb, 3, 4))
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.tcp_pmtu_ignored == 1  # path MTU (tests/host/test_tcp_pmtu.py)


def test_arp_unanswered_fails_connect_with_ehostunreach():
    h = Harness()
    silent = ipv4.aton("192.0.2.99")
    tcb = h.stack.tcp.connect(None, 0, silent, 80)
    requests = []
    t = 0
    while tcb.state == tcp.SYN_SENT and t < 10000:
        for s in h.take():
            assert s.arp is not None and s.arp.oper == 1 and s.arp.tpa == silent, s
            requests.append(t)
        h.advance(1)
        t += 1
    assert requests == [0, 1000, 2000], requests
    assert t == 3000
    assert tcb.error == errors.EHOSTUNREACH
    assert h.stack.counters.arp_resolve_failed == 1
    h.expect_nothing()


def test_arp_reply_releases_the_queued_syn():
    h = Harness()
    other = ipv4.aton("192.0.2.50")
    mac = b"\x02\x00\x00\x00\x00\x50"
    tcb = h.stack.tcp.connect(None, 0, other, 80)
    out = h.take()
    assert len(out) == 1 and out[0].arp is not None
    h.feed(h.arp_reply_from(other, mac))
    s = h.expect_tcp(SYN, seq=tcb.iss)
    assert s.eth.dst == mac


def test_off_link_destination_goes_to_the_gateway_mac():
    h = Harness()
    tcb, syn = h.connect(REMOTE_IP, 443)
    assert syn.eth.dst == PEER_MAC  # the gateway's MAC
    assert syn.ip.dst == REMOTE_IP and syn.ip.src == OUR_IP
    assert tcb.next_hop == PEER_IP


def refused_route(addr_text):
    h = Harness()
    try:
        h.stack.tcp.connect(None, 0, ipv4.aton(addr_text), 80)
    except OSError as e:
        assert e.args[0] == errors.ENETUNREACH, e
        h.expect_nothing()
        return
    raise AssertionError("connect to %s did not fail" % addr_text)


def test_broadcast_destination_is_unreachable():
    refused_route("255.255.255.255")
    refused_route("192.0.2.255")


def test_multicast_destination_is_unreachable():
    refused_route("224.0.0.1")


def test_zero_loopback_and_own_address_are_unreachable():
    refused_route("0.0.0.0")
    refused_route("127.0.0.1")
    refused_route("192.0.2.2")


def test_no_gateway_means_off_link_is_unreachable():
    h = Harness()
    h.stack.route.configure("192.0.2.2/24")
    try:
        h.stack.tcp.connect(None, 0, REMOTE_IP, 80)
    except OSError as e:
        assert e.args[0] == errors.ENETUNREACH
        return
    raise AssertionError("no error")


def test_segment_for_unknown_connection_with_ack_gets_rst():
    h = Harness()
    tcb = h.establish()
    h.stack.tcp.remove(tcb)
    h.feed(h.segment(tcb, ACK, 1001, 4242))
    h.expect_tcp(RST, seq=4242)
    assert h.stack.counters.tcp_no_socket_rst_sent == 1


def test_syn_for_unknown_connection_gets_rst_ack():
    h = Harness()
    tcb = h.establish()
    h.stack.tcp.remove(tcb)
    h.feed(h.segment(tcb, SYN, 9000, 0, payload=b"abc"))
    h.expect_tcp(RST | ACK, seq=0, ack=9004)


def test_rst_for_unknown_connection_is_not_answered():
    h = Harness()
    tcb = h.establish()
    h.stack.tcp.remove(tcb)
    h.feed(h.segment(tcb, RST | ACK, 1, 2))
    h.expect_nothing()
    assert h.stack.counters.tcp_no_socket_rst_dropped == 1


def test_bad_tcp_checksum_is_counted_and_dropped():
    h = Harness()
    tcb, _ = h.connect()
    f = bytearray(h.segment(tcb, SYN | ACK, 1, tcb.iss + 1))
    f[-1] ^= 0xFF  # last byte of the TCP header
    h.feed(bytes(f))
    h.expect_nothing()
    assert tcb.state == tcp.SYN_SENT
    assert h.stack.counters.tcp_drop_bad_checksum == 1


def test_syn_ack_carrying_data_and_fin():
    h = Harness()
    tcb, _ = h.connect()
    h.feed(h.segment(tcb, SYN | ACK | FIN, 300, tcb.iss + 1, payload=b"hi"))
    h.expect_tcp(ACK, ack=304)
    assert tcb.state == tcp.CLOSE_WAIT and tcb.rx_len == 2
