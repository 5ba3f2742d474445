# dual: cpython micropython
"""UDP (RFC 768): the wire module on a datagram dnsmasq sent, and the stack's UDP layer with a fake
device and an explicit clock: exact datagrams out, demux to bound handlers, checksum rules, ICMP
port unreachable (and its rate limit), broadcast without ARP, the unconfigured (DHCP) receive rule,
ICMP errors to the error handler, no allocation on the receive path."""
import sys

from segment import OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, FakeDevice, Harness, eth, ip_packet
from tcpip import errors
from manualclock import ManualClock
from tcpip.stack import Stack
from tcpip.udp import PAYLOAD
from wirecheck import expect_value_error, heap_locked, unhex
from wirerep import ethernet
from wirerep import ipv4
from wirerep import udp as wudp
from wirerep.icmp import IcmpRepr
from wirerep.udp import UdpRepr

MICROPYTHON = sys.implementation.name == "micropython"
BCAST = b"\xff\xff\xff\xff"
ZERO = b"\x00\x00\x00\x00"

# A DNS answer dnsmasq 2.90 (Linux's UDP) sent from 192.0.2.1:53 to 192.0.2.73:53661: IPv4 header,
# then UDP 0035 d19d 0036 d13e and 46 bytes of DNS (example.test A 192.0.2.1, TTL 0).
DNSMASQ_REPLY = unhex("""
4500004ae30b40004011d34cc0000201c0000249
0035d19d0036d13e
990885800001000100000000076578616d706c6504746573740000010001c00c00010001000000000004c0000201
""")
SRC = ipv4.aton("192.0.2.1")
DST = ipv4.aton("192.0.2.73")


def ones_sum(data):
    """RFC 1071 sum written out independently of tcpip.checksum."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += data[i] << 8 | data[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def udp_sum_ok(src, dst, datagram):
    pseudo = bytes(src) + bytes(dst) + bytes((0, 17, len(datagram) >> 8, len(datagram) & 0xFF))
    return ones_sum(pseudo + bytes(datagram)) == 0xFFFF


def datagram(src, dst, sport, dport, payload, checksum=True):
    b = bytearray(8 + len(payload))
    b[8:] = payload
    UdpRepr(sport, dport, len(payload)).emit(b, 0, src if checksum else None, dst if checksum else None)
    return bytes(b)


def udp_frame(sport, dport, payload, src=PEER_IP, dst=OUR_IP, eth_dst=OUR_MAC, checksum=True):
    return eth(eth_dst, PEER_MAC, ethernet.ETHERTYPE_IPV4,
               ip_packet(src, dst, ipv4.PROTO_UDP, datagram(src, dst, sport, dport, payload, checksum)))


class Recorder:
    def __init__(self):
        self.got = []
        self.errors = []

    def handler(self, buf, off, n, sip, sipo, sport):
        self.got.append((bytes(buf[off:off + n]), bytes(sip[sipo:sipo + 4]), sport))

    def error(self, err, dst, doff, dport):
        self.errors.append((err, bytes(dst[doff:doff + 4]), dport))


def decode(frame):
    """(EthernetRepr, Ipv4Repr, UdpRepr or None, payload) of a frame we sent."""
    e = ethernet.EthernetRepr.parse(frame, 0, len(frame))
    ip = ipv4.Ipv4Repr.parse(frame, 14, len(frame) - 14)
    u = None
    off = 34
    if ip.proto == ipv4.PROTO_UDP:
        u = UdpRepr.parse(frame, 34, ip.payload_len, ip.src, ip.dst)
        off = 42
    return e, ip, u, bytes(frame[off:34 + ip.payload_len])


def unconfigured():
    clock = ManualClock(1000)
    dev = FakeDevice(clock)
    return Stack(dev, clock), dev


# -- wire ------------------------------------------------------------------------------------------
def test_wire_parse_dnsmasq_datagram():
    u = UdpRepr.parse(DNSMASQ_REPLY, 20, len(DNSMASQ_REPLY) - 20, SRC, DST)
    assert u == UdpRepr(53, 53661, 46)
    assert u.buffer_len() == 54
    assert wudp.get_src_port(DNSMASQ_REPLY, 20) == 53
    assert wudp.get_dst_port(DNSMASQ_REPLY, 20) == 53661
    assert wudp.get_length(DNSMASQ_REPLY, 20) == 54
    assert wudp.get_checksum(DNSMASQ_REPLY, 20) == 0xd13e
    assert wudp.is_checksum_valid(DNSMASQ_REPLY, 20, 54, SRC, 0, DST, 0)
    assert udp_sum_ok(SRC, DST, DNSMASQ_REPLY[20:])


def test_wire_emit_matches_literal():
    buf = bytearray(b"\xa5" * 60)
    buf[3 + 8:3 + 54] = DNSMASQ_REPLY[28:]
    UdpRepr(53, 53661, 46).emit(buf, 3, SRC, DST)
    assert bytes(buf[3:57]) == DNSMASQ_REPLY[20:]
    assert bytes(buf[:3]) == b"\xa5" * 3 and bytes(buf[57:]) == b"\xa5" * 3
    # without addresses: no checksum (0), the rest the same
    UdpRepr(53, 53661, 46).emit(buf, 3)
    assert bytes(buf[3:9]) == DNSMASQ_REPLY[20:26] and buf[9] == 0 and buf[10] == 0


def test_wire_truncated_bad_length_and_checksum():
    d = DNSMASQ_REPLY[20:]
    for n in range(8):
        expect_value_error(UdpRepr.parse, d, 0, n)
    expect_value_error(UdpRepr.parse, d, 0, 53)  # length field 54 > 53 present
    short = bytearray(d)
    short[5] = 7  # length 7 < 8
    expect_value_error(UdpRepr.parse, short, 0, len(short))
    bad = bytearray(d)
    bad[-1] ^= 1
    expect_value_error(UdpRepr.parse, bad, 0, len(bad), SRC, DST)
    bad[6] = bad[7] = 0  # no checksum: accepted (RFC 768)
    assert UdpRepr.parse(bad, 0, len(bad), SRC, DST).payload_len == 46
    # link padding after the datagram is not part of it
    assert UdpRepr.parse(bytes(d) + b"\x00" * 6, 0, 60, SRC, DST).payload_len == 46


def test_wire_computed_zero_is_sent_as_ffff():
    b = bytearray(8 + 4)
    UdpRepr(1000, 2000, 4).emit(b, 0, SRC, DST)
    c = wudp.get_checksum(b, 0)
    b[10] = c >> 8  # payload word chosen so the sum is 0xffff: the checksum computes to 0
    b[11] = c & 0xFF
    wudp.fill_checksum(b, 0, 12, SRC, 0, DST, 0)
    assert wudp.get_checksum(b, 0) == 0xFFFF
    assert wudp.is_checksum_valid(b, 0, 12, SRC, 0, DST, 0) and udp_sum_ok(SRC, DST, b)


# -- sending ---------------------------------------------------------------------------------------
def test_sendto_builds_the_exact_datagram():
    h = Harness()
    assert h.stack.udp.sendto(b"hello", 5, PEER_IP, 7777, 5555)
    out = h.dev.sent
    assert len(out) == 1
    e, ip, u, payload = decode(out[0])
    assert e.dst == PEER_MAC and e.src == OUR_MAC and e.ethertype == 0x0800
    assert ip.src == OUR_IP and ip.dst == PEER_IP and ip.proto == 17 and ip.ttl == 64
    assert ip.payload_len == 13
    assert u == UdpRepr(5555, 7777, 5) and payload == b"hello"
    assert udp_sum_ok(OUR_IP, PEER_IP, out[0][34:47])
    assert len(out[0]) == 60  # padded to the Ethernet minimum
    assert h.stack.counters.udp_tx == 1


def test_sendto_in_place_from_the_transmit_buffer():
    h = Harness()
    tx = h.stack.tx
    tx[PAYLOAD:PAYLOAD + 3] = b"abc"
    h.stack.udp.sendto(tx, 3, PEER_IP, 9, 1234)
    _, _, u, payload = decode(h.dev.sent[0])
    assert u == UdpRepr(1234, 9, 3) and payload == b"abc"


def test_sendto_past_the_mtu_is_emsgsize():
    h = Harness()
    try:
        h.stack.udp.sendto(bytes(1473), 1473, PEER_IP, 9, 1234)
        assert False
    except OSError as e:
        assert e.args[0] == errors.EMSGSIZE
    assert h.stack.udp.sendto(bytes(1472), 1472, PEER_IP, 9, 1234)
    assert len(h.dev.sent[0]) == 1514


def test_limited_broadcast_from_zero_without_arp():
    stack, dev = unconfigured()
    assert stack.udp.sendto(b"x" * 10, 10, BCAST, 67, 68)
    assert len(dev.sent) == 1
    e, ip, u, payload = decode(dev.sent[0])
    assert e.dst == ethernet.BROADCAST and e.ethertype == 0x0800
    assert ip.src == ZERO and ip.dst == BCAST
    assert u == UdpRepr(68, 67, 10)
    assert stack.counters.arp_request_sent == 0


def test_directed_broadcast_without_arp():
    h = Harness(learn_peer=False)
    h.stack.udp.sendto(b"y", 1, ipv4.aton("192.0.2.255"), 9, 1234)
    out = h.dev.sent
    assert len(out) == 1
    e, ip, u, _ = decode(out[0])
    assert e.dst == ethernet.BROADCAST and ip.dst == ipv4.aton("192.0.2.255") and ip.src == OUR_IP
    assert h.stack.counters.arp_request_sent == 0


def test_unicast_waits_for_arp():
    h = Harness(learn_peer=False)
    h.stack.udp.sendto(b"q", 1, PEER_IP, 53, 40000)
    out = h.take()
    assert len(out) == 1 and out[0].arp is not None and out[0].arp.tpa == PEER_IP
    h.feed(h.arp_reply_from(PEER_IP))
    sent = h.dev.sent
    assert len(sent) == 1
    _, ip, u, payload = decode(sent[0])
    assert ip.dst == PEER_IP and u.dst_port == 53 and payload == b"q"


def test_no_route_is_false():
    stack, dev = unconfigured()
    assert not stack.udp.sendto(b"q", 1, PEER_IP, 53, 40000)
    assert dev.sent == [] and stack.counters.ip_tx_no_route == 1


# -- receiving -------------------------------------------------------------------------------------
def test_demux_by_destination_port():
    h = Harness()
    a = Recorder()
    b = Recorder()
    h.stack.udp.bind(5000, a.handler)
    h.stack.udp.bind(5001, b.handler)
    h.feed(udp_frame(53, 5001, b"to b"))
    h.feed(udp_frame(54, 5000, b"to a"))
    assert a.got == [(b"to a", PEER_IP, 54)]
    assert b.got == [(b"to b", PEER_IP, 53)]
    assert h.stack.counters.udp_rx == 2
    h.expect_nothing()


def test_checksum_rules():
    h = Harness()
    r = Recorder()
    h.stack.udp.bind(5000, r.handler)
    c = h.stack.counters
    h.feed(udp_frame(53, 5000, b"none", checksum=False))  # 0: none sent, accepted
    assert r.got == [(b"none", PEER_IP, 53)]
    f = bytearray(udp_frame(53, 5000, b"bad"))
    f[-1] ^= 0x40
    h.feed(bytes(f))
    assert len(r.got) == 1 and c.udp_drop_bad_checksum == 1
    h.expect_nothing()


def test_short_and_bad_length_dropped():
    h = Harness()
    r = Recorder()
    h.stack.udp.bind(5000, r.handler)
    c = h.stack.counters
    h.feed(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(PEER_IP, OUR_IP, 17, b"\x00\x35\x13\x88\x00")))
    assert c.udp_drop_short == 1
    for bad_len in (7, 13):  # below the header; beyond the 12 bytes present
        d = bytearray(datagram(PEER_IP, OUR_IP, 53, 5000, b"abcd", checksum=False))
        d[4] = 0
        d[5] = bad_len
        h.feed(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(PEER_IP, OUR_IP, 17, bytes(d))))
    assert c.udp_drop_bad_length == 2
    assert r.got == []
    h.expect_nothing()


def test_length_field_bounds_the_payload():
    # a datagram shorter than its IP payload (trailing bytes) hands over only its own data
    h = Harness()
    r = Recorder()
    h.stack.udp.bind(5000, r.handler)
    d = datagram(PEER_IP, OUR_IP, 53, 5000, b"x")
    h.feed(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(PEER_IP, OUR_IP, 17, d + b"\x00\x00\x00")))
    assert r.got == [(b"x", PEER_IP, 53)]


def test_unbound_port_gets_icmp_port_unreachable():
    h = Harness()
    frame = udp_frame(40000, 9999, b"anyone?")
    h.feed(frame)
    out = h.dev.sent
    assert len(out) == 1
    f = out[0]
    e = ethernet.EthernetRepr.parse(f, 0, len(f))
    ip = ipv4.Ipv4Repr.parse(f, 14, len(f) - 14)
    assert e.dst == PEER_MAC and ip.src == OUR_IP and ip.dst == PEER_IP and ip.proto == 1
    quoted = frame[14:]  # 20 + 15 bytes: all of it fits in 576
    assert ip.payload_len == 8 + len(quoted)
    icmp = IcmpRepr.parse(f, 34, ip.payload_len)
    assert icmp.type == 3 and icmp.code == 3 and icmp.ident == 0 and icmp.seq == 0
    assert bytes(f[42:42 + len(quoted)]) == quoted
    c = h.stack.counters
    assert c.udp_no_port == 1 and c.udp_port_unreach_sent == 1


def test_port_unreachable_quote_is_capped_at_576_bytes():
    h = Harness()
    h.feed(udp_frame(40000, 9999, b"z" * 1000))
    f = h.dev.sent[0]
    ip = ipv4.Ipv4Repr.parse(f, 14, len(f) - 14)
    assert ip.payload_len == 8 + 548 and 20 + ip.payload_len == 576


def test_no_port_unreachable_for_broadcast_or_when_unconfigured():
    h = Harness()
    h.feed(udp_frame(40000, 9999, b"b", dst=BCAST, eth_dst=ethernet.BROADCAST))
    h.feed(udp_frame(40000, 9999, b"b", dst=ipv4.aton("192.0.2.255"), eth_dst=ethernet.BROADCAST))
    h.feed(udp_frame(40000, 9999, b"b", src=ZERO))
    h.expect_nothing()
    c = h.stack.counters
    assert c.udp_no_port == 2 and c.ip_drop_bad_source == 1
    assert h.stack._udp is None  # nothing asked for UDP: its layer (and counters) not even made
    stack, dev = unconfigured()
    dev.inbox.append(udp_frame(40000, 9999, b"u", dst=ipv4.aton("192.0.2.77")))
    dev.inbox.append(udp_frame(67, 68, b"u", dst=ipv4.aton("192.0.2.77")))  # DHCP, not running
    stack.poll()
    assert dev.sent == [] and stack.counters.ip_drop_not_for_us == 1 and stack.counters.udp_no_port == 1


def test_port_unreachable_rate_limit():
    h = Harness()
    c = h.stack.counters
    for _ in range(8):
        h.feed(udp_frame(40000, 9999, b"r"))
    assert c.udp_port_unreach_sent == 6 and c.udp_port_unreach_ratelimited == 2
    h.advance(999)
    h.feed(udp_frame(40000, 9999, b"r"))
    assert c.udp_port_unreach_sent == 6
    h.advance(1)
    h.feed(udp_frame(40000, 9999, b"r"))
    h.feed(udp_frame(40000, 9999, b"r"))
    assert c.udp_port_unreach_sent == 7 and c.udp_port_unreach_ratelimited == 4
    h.advance(3000)
    for _ in range(5):
        h.feed(udp_frame(40000, 9999, b"r"))
    assert c.udp_port_unreach_sent == 10
    h.advance(60000)  # the bucket refills to the burst, no further
    for _ in range(8):
        h.feed(udp_frame(40000, 9999, b"r"))
    assert c.udp_port_unreach_sent == 16


def test_broadcast_delivered_to_bound_port():
    h = Harness()
    r = Recorder()
    h.stack.udp.bind(68, r.handler)
    h.feed(udp_frame(67, 68, b"bcast", dst=BCAST, eth_dst=ethernet.BROADCAST))
    h.feed(udp_frame(67, 68, b"subnet", dst=ipv4.aton("192.0.2.255"), eth_dst=ethernet.BROADCAST))
    assert [g[0] for g in r.got] == [b"bcast", b"subnet"]


def test_unconfigured_accepts_udp_to_our_mac_only():
    stack, dev = unconfigured()
    r = Recorder()
    stack.udp.bind(68, r.handler)
    c = stack.counters
    yiaddr = ipv4.aton("192.0.2.77")
    dev.inbox.append(udp_frame(67, 68, b"unicast offer", dst=yiaddr))
    dev.inbox.append(udp_frame(67, 68, b"bcast offer", dst=BCAST, eth_dst=ethernet.BROADCAST))
    # Ethernet broadcast carrying a unicast IP destination: not for us
    dev.inbox.append(udp_frame(67, 68, b"other", dst=yiaddr, eth_dst=ethernet.BROADCAST))
    stack.poll()
    assert [g[0] for g in r.got] == [b"unicast offer", b"bcast offer"]
    assert c.ip_drop_not_for_us == 1
    # TCP and ICMP to an address we do not have are still dropped
    dev.inbox.append(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(PEER_IP, yiaddr, 6, bytes(20))))
    stack.poll()
    assert c.ip_drop_not_for_us == 2 and dev.sent == []


def test_unconfigured_delivers_only_dhcp():
    # while we have no address only DHCP replies (to port 68) may come in (RFC 2131 4.1; RFC 1122
    # 3.2.1.3: 0.0.0.0 is ours only during initialization): not to any other bound port
    stack, dev = unconfigured()
    r = Recorder()
    other = Recorder()
    stack.udp.bind(68, r.handler)
    stack.udp.bind(53000, other.handler)
    yiaddr = ipv4.aton("192.0.2.77")
    dev.inbox.append(udp_frame(53, 53000, b"unicast", dst=yiaddr))
    dev.inbox.append(udp_frame(53, 53000, b"bcast", dst=BCAST, eth_dst=ethernet.BROADCAST))
    dev.inbox.append(udp_frame(67, 68, b"dhcp", dst=yiaddr))
    stack.poll()
    assert other.got == [] and [g[0] for g in r.got] == [b"dhcp"]
    assert stack.counters.ip_drop_not_for_us == 2 and dev.sent == []


def test_configured_drops_udp_for_other_addresses():
    h = Harness()
    r = Recorder()
    h.stack.udp.bind(5000, r.handler)
    h.feed(udp_frame(53, 5000, b"not ours", dst=ipv4.aton("192.0.2.77")))
    assert r.got == [] and h.stack.counters.ip_drop_not_for_us == 1
    h.expect_nothing()


def test_bind_rules():
    h = Harness()
    udp = h.stack.udp
    r = Recorder()
    assert udp.bind(5000, r.handler) == 5000
    try:
        udp.bind(5000, r.handler)
        assert False
    except OSError as e:
        assert e.args[0] == errors.EADDRINUSE
    ports = set()
    for _ in range(7):
        p = udp.bind(0, r.handler)
        assert 49152 <= p <= 65535 and p not in ports
        ports.add(p)
    try:
        udp.bind(6000, r.handler)
        assert False
    except OSError as e:
        assert e.args[0] == errors.ENOBUFS
    udp.unbind(5000)
    assert not udp.is_bound(5000)
    assert udp.bind(6000, r.handler) == 6000
    try:
        udp.bind(70000, r.handler)
        assert False
    except OSError as e:
        assert e.args[0] == errors.EINVAL


def test_icmp_port_unreachable_reaches_the_error_handler():
    h = Harness()
    r = Recorder()
    udp = h.stack.udp
    udp.bind(5555, r.handler, r.error)
    udp.sendto(b"query", 5, PEER_IP, 53, 5555)
    sent = h.dev.sent[0]
    quoted = sent[14:14 + 28]
    body = bytearray(8 + len(quoted))
    body[8:] = quoted
    IcmpRepr(3, 3, 0, 0, len(quoted)).emit(body, 0)
    h.feed(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(PEER_IP, OUR_IP, 1, bytes(body))))
    assert r.errors == [(errors.ECONNREFUSED, PEER_IP, 53)]
    assert h.stack.counters.udp_icmp_error == 1
    # quoting a port nobody holds: counted, nothing called
    udp.unbind(5555)
    h.feed(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(PEER_IP, OUR_IP, 1, bytes(body))))
    assert len(r.errors) == 1 and h.stack.counters.icmp_unreach_no_match == 1


def test_handler_exception_does_not_escape_poll():
    h = Harness()

    def boom(buf, off, n, sip, sipo, sport):
        raise ValueError("handler bug")

    h.stack.udp.bind(5000, boom)
    h.feed(udp_frame(53, 5000, b"x"))
    assert h.stack.counters.eth_drop_exception == 1


class Sink:
    def __init__(self):
        self.count = 0
        self.total = 0

    def handler(self, buf, off, n, sip, sipo, sport):
        self.count += 1
        self.total += n


def test_receive_path_allocates_nothing():
    h = Harness()
    s = Sink()
    h.stack.udp.bind(5000, s.handler)
    frames = [udp_frame(53, 5000, b"p" * 100) for _ in range(4)]
    stack = h.stack
    stack.input(bytearray(frames[0]), len(frames[0]))  # warm up
    bufs = [bytearray(f) for f in frames]

    def feed_all():
        for b in bufs:
            stack.input(b, len(b))

    heap_locked(feed_all)  # MicroPython: raises MemoryError if anything allocates
    assert s.count == 5 and s.total == 500
    if MICROPYTHON:
        import gc
        gc.collect()
        before = gc.mem_alloc()
        feed_all()
        assert gc.mem_alloc() - before == 0
