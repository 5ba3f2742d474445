# dual: cpython micropython
# The ARP cache under pressure (issue 8, finding 1): spoofed on-link sources that make us ARP for
# replies must not push out the entry an established connection goes through; our own traffic may
# take entries nobody needs, and a frame that gets no entry still asks for its next hop; a confirmed
# entry's MAC is not replaced within the lock time except by a gratuitous ARP.
from segment import OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, Harness, eth, ip_packet
from tcpip import tcp
from wirerep import ethernet
from wirerep import ipv4
from wirerep.arp import ArpRepr
from wirerep.icmp import IcmpRepr

SPOOF_MAC = b"\x02\x00\x00\x00\xbe\xef"


def spoofed_ping(k):
    """An echo request from 192.0.2.(100 + k), an on-link address nobody answers ARP for."""
    body = bytearray(8 + 8)
    IcmpRepr(8, 0, 0x77, k, 8).emit(body, 0)
    src = bytes((192, 0, 2, 100 + k))
    return eth(OUR_MAC, SPOOF_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(src, OUR_IP, ipv4.PROTO_ICMP, body))


def arp_from(oper, sha, spa, tpa=OUR_IP, dst=OUR_MAC):
    b = bytearray(28)
    ArpRepr(oper, sha, spa, b"\x00" * 6 if oper == 1 else OUR_MAC, tpa).emit(b, 0)
    return eth(dst, sha, ethernet.ETHERTYPE_ARP, b)


def established():
    h = Harness()
    tcb = h.establish()
    h.peer_answers_arp = False  # from here on every ARP request we send is seen
    return h, tcb


def arp_requests(out):
    return [s.arp.tpa for s in out if s.arp is not None and s.arp.oper == 1]


def test_spoofed_pings_do_not_evict_a_connections_neighbour():
    h, tcb = established()
    for k in range(40):  # five times the cache's 8 entries
        h.feed(spoofed_ping(k))
        h.advance(60)
    out = h.take()
    assert [s for s in out if s.arp is None] == []  # no echo reply could go: nobody answered
    assert len(arp_requests(out)) >= 2
    c = h.stack.counters
    assert c.eth_drop_exception == 0
    assert c.arp_queue_overflow > 0  # the replies waiting took the queue; the rest were dropped
    # the connection still sends at once, to its peer's MAC, without asking for it
    assert tcb.send(b"hello", 0, 5) == 5
    h.advance(0)
    out = h.take()
    assert len(out) == 1 and out[0].tcp is not None, out
    assert out[0].eth.dst == PEER_MAC and out[0].payload == b"hello"


def test_a_reply_to_a_stranger_takes_an_idle_entry_not_a_recently_confirmed_one():
    h = Harness(learn_peer=False)
    for k in range(7):  # seven neighbours ARP for us, then fall silent
        h.feed(arp_from(1, bytes((2, 0, 0, 0, 0, 0x50 + k)), bytes((192, 0, 2, 0x50 + k))))
    h.advance(6000)
    other = b"\x02\x00\x00\x00\x00\x42"
    h.feed(arp_from(1, other, b"\xc0\x00\x02\x42"))  # 192.0.2.66 ARPs for us now: the 8th entry
    h.take()
    h.feed(spoofed_ping(0))
    assert arp_requests(h.take()) == [bytes((192, 0, 2, 100))]
    assert h.stack.counters.arp_evicted == 1
    assert h.stack.arp.lookup(b"\xc0\x00\x02\x42", 0, h.clock.ticks_ms()) == other
    assert h.stack.arp._find(bytes((192, 0, 2, 0x50)), 0) < 0  # the least recently used idle one


def test_a_stranger_cannot_push_a_connections_frame_out_of_the_arp_queue():
    # the fuzz campaign's defect (seed 9): a connection's segment waits in the 2-slot queue for
    # its next hop's ARP reply; replies to spoofed pings waiting too must not push it out
    h = Harness()
    tcb = h.establish()
    h.peer_answers_arp = False
    h.stack.arp.state[h.stack.arp._find(PEER_IP, 0)] = 0  # the peer's entry is gone (FREE)
    h.stack.route.gen += 1
    assert tcb.send(b"hello", 0, 5) == 5
    h.advance(0)
    assert arp_requests(h.take()) == [PEER_IP]
    for k in range(4):
        h.feed(spoofed_ping(k))
    h.take()
    h.feed(h.arp_reply_from(PEER_IP))
    out = [o for o in h.take() if o.tcp is not None]
    assert len(out) == 1 and out[0].payload == b"hello" and out[0].eth.dst == PEER_MAC, out


def test_a_needed_entry_goes_stale_and_is_used_while_it_is_asked_for_again():
    # Linux STALE -> PROBE: the entry of an active connection's peer does not vanish after 60 s
    # (which would queue the connection's segments behind an ARP exchange every minute)
    h, tcb = established()
    arp = h.stack.arp
    i = arp._find(PEER_IP, 0)
    h.advance(60000)
    assert arp.state[i] == 3  # STALE
    out = h.take()
    assert arp_requests(out) == [PEER_IP]
    assert tcb.send(b"x", 0, 1) == 1
    h.advance(0)
    out = h.take()
    assert len(out) == 1 and out[0].tcp is not None and out[0].eth.dst == PEER_MAC  # at once
    h.feed(h.arp_reply_from(PEER_IP))
    assert arp.state[i] == 2  # REACHABLE again
    # unanswered, a STALE entry goes after the retries, and the connection asks from scratch
    h.advance(60000)
    assert arp.state[i] == 3
    for _ in range(3):
        h.advance(1000)  # two more requests, then it gives up
    assert arp.state[i] == 0 and h.stack.counters.arp_resolve_failed == 1
    assert tcb.state == tcp.ESTABLISHED  # an established connection is not failed for it


def test_a_reply_waits_while_every_entry_was_confirmed_in_the_last_5_s():
    h = Harness(learn_peer=False)
    for k in range(8):  # eight neighbours ARP for us: eight REACHABLE entries nobody else needs
        h.feed(arp_from(1, bytes((2, 0, 0, 0, 0, 0x40 + k)), bytes((192, 0, 2, 0x40 + k))))
        h.advance(100)
    h.take()
    h.feed(spoofed_ping(0))
    assert h.take() == []  # no entry for the echo reply: not even an ARP request goes out
    assert h.stack.counters.arp_cache_full == 1 and h.stack.counters.arp_evicted == 0
    h.advance(4300)  # the first neighbour's entry is now 5 s old, the others younger
    h.feed(spoofed_ping(1))
    assert arp_requests(h.take()) == [bytes((192, 0, 2, 101))]
    assert h.stack.counters.arp_evicted == 1
    assert h.stack.arp._find(bytes((192, 0, 2, 0x40)), 0) < 0  # the least recently used went
    assert h.stack.arp._find(bytes((192, 0, 2, 0x41)), 0) >= 0


def test_our_connect_takes_an_entry_from_spoofed_ones():
    h = Harness(learn_peer=False)
    for k in range(8):
        h.feed(spoofed_ping(k))
    h.take()
    h.stack.tcp.connect(None, 0, PEER_IP, 80)
    out = h.take()
    assert arp_requests(out) == [PEER_IP], out
    h.feed(h.arp_reply_from(PEER_IP))
    out = h.take()
    assert len(out) == 1 and out[0].tcp is not None and out[0].eth.dst == PEER_MAC


def test_a_frame_without_an_entry_still_asks_for_its_next_hop():
    # eight connects to eight silent on-link hosts hold every entry while they are resolved: the
    # ninth connect's SYN gets no entry (counted), but its next hop is asked for all the same
    h = Harness(learn_peer=False)
    for k in range(8):
        h.stack.tcp.connect(None, 0, bytes((192, 0, 2, 10 + k)), 80)
    h.take()
    full = h.stack.counters.arp_cache_full
    ninth = bytes((192, 0, 2, 30))
    h.stack.tcp.connect(None, 0, ninth, 80)
    out = h.take()
    assert arp_requests(out) == [ninth], out
    assert h.stack.counters.arp_cache_full == full + 1


def test_an_unsolicited_arp_sender_is_answered_but_not_learnt_over_needed_entries():
    h = Harness(learn_peer=False)
    for k in range(8):
        h.stack.tcp.connect(None, 0, bytes((192, 0, 2, 10 + k)), 80)
    h.take()
    stranger = b"\x02\x00\x00\x00\x00\x55"
    h.feed(arp_from(1, stranger, b"\xc0\x00\x02\x55"))
    out = h.take()
    assert len(out) == 1 and out[0].arp.oper == 2 and out[0].eth.dst == stranger
    assert h.stack.arp.lookup(b"\xc0\x00\x02\x55", 0, h.clock.ticks_ms()) is None
    for k in range(8):  # every connect's entry is still being resolved
        assert h.stack.arp._find(bytes((192, 0, 2, 10 + k)), 0) >= 0


def test_a_confirmed_mac_is_locked_for_a_second_except_by_gratuitous_arp():
    h, tcb = established()
    arp = h.stack.arp
    now = h.clock.ticks_ms
    h.advance(10)
    h.stack.arp.lookup(PEER_IP, 0, now())
    # the peer confirms itself, then at once someone claims its address with another MAC
    h.feed(h.arp_reply_from(PEER_IP))
    h.advance(500)
    thief = b"\x02\x00\x00\x00\x66\x66"
    h.feed(arp_from(2, thief, PEER_IP))
    assert arp.lookup(PEER_IP, 0, now()) == PEER_MAC
    assert h.stack.counters.arp_update_locked == 1
    # a request for us from the thief within the lock time is still answered (to its MAC)
    h.feed(arp_from(1, thief, PEER_IP))
    out = h.take()
    assert len(out) == 1 and out[0].arp is not None and out[0].arp.oper == 2
    assert arp.lookup(PEER_IP, 0, now()) == PEER_MAC
    # a gratuitous ARP (sender address == target address) moves it at once
    moved = b"\x02\x00\x00\x00\x77\x77"
    h.feed(arp_from(1, moved, PEER_IP, tpa=PEER_IP, dst=ethernet.BROADCAST))
    assert arp.lookup(PEER_IP, 0, now()) == moved
    # and the connection follows it
    assert tcb.send(b"x", 0, 1) == 1
    h.advance(0)
    out = h.take()
    assert len(out) == 1 and out[0].eth.dst == moved
    # a second after the last confirmation an ordinary reply moves it too
    h.advance(1001)
    h.feed(arp_from(2, thief, PEER_IP))
    assert arp.lookup(PEER_IP, 0, now()) == thief
    assert h.stack.counters.arp_update_locked == 2
    assert tcb.state == tcp.ESTABLISHED
    assert h.stack.counters.eth_drop_exception == 0
