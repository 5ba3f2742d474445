# dual: cpython micropython
"""Datagram sockets (tcpip.dgram: socket(AF_INET, SOCK_DGRAM)) over the scripted harness: the
datagrams they send byte for byte, what they take and refuse, the bounded receive ring (its wrap,
its drops, SO_RCVBUF), connect() and its peer filter, broadcast and SO_BROADCAST, EMSGSIZE,
ICMP errors (ECONNREFUSED once, connected sockets only, hard errors only), blocking / timeout /
non-blocking / MSG_DONTWAIT / MSG_PEEK on the ManualClock, poll flags (ioctl, tcpip.poller),
no allocation on the steady-state paths, and ntptime-style code unmodified."""
import sys

from segment import OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, Harness, eth, ip_packet, lcg_bytes
from tcpip import errors
from tcpip import socket as tsocket
from tcpip.poller import poll
from wirecheck import heap_locked
from wirerep import ethernet
from wirerep import ipv4
from wirerep.icmp import IcmpRepr
from wirerep.udp import UdpRepr

MICROPYTHON = sys.implementation.name == "micropython"
AF_INET = tsocket.AF_INET
SOCK_DGRAM = tsocket.SOCK_DGRAM
POLLIN = 1
POLLOUT = 4
POLLERR = 8
POLLHUP = 16
POLLNVAL = 32
MSG_PEEK = 2
MSG_DONTWAIT = 0x40
EACCES = 13
EDESTADDRREQ = 89
OTHER_IP = ipv4.aton("192.0.2.9")
BCAST = b"\xff\xff\xff\xff"
SUBNET_BCAST = ipv4.aton("192.0.2.255")
PEER = ("192.0.2.1", 7000)


def raises(errno, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.args[0] == errno, "got %r, expected %s" % (e.args[0], errors.name(errno))
        return
    raise AssertionError("no OSError(%s)" % errors.name(errno))


def datagram_frame(sport, dport, payload, src=PEER_IP, dst=OUR_IP, eth_dst=OUR_MAC, src_mac=PEER_MAC):
    """An Ethernet frame carrying one UDP datagram (checksum filled)."""
    d = bytearray(8 + len(payload))
    d[8:] = payload
    UdpRepr(sport, dport, len(payload)).emit(d, 0, src, dst)
    return eth(eth_dst, src_mac, ethernet.ETHERTYPE_IPV4, ip_packet(src, dst, ipv4.PROTO_UDP, bytes(d)))


def decode(frame):
    """(Ipv4Repr, UdpRepr or None, payload, Ethernet destination) of a frame we sent."""
    ip = ipv4.Ipv4Repr.parse(frame, 14, len(frame) - 14)
    if ip.proto != ipv4.PROTO_UDP:
        return ip, None, bytes(frame[34:34 + ip.payload_len]), bytes(frame[0:6])
    u = UdpRepr.parse(frame, 34, ip.payload_len, ip.src, ip.dst)  # checks the checksum too
    return ip, u, bytes(frame[42:42 + u.payload_len]), bytes(frame[0:6])


def sent_datagrams(h):
    """What we sent since the last look, UDP only, decoded (ARP and ICMP are returned apart)."""
    out = []
    other = []
    for f in h.dev.sent:
        if f[12] == 8 and f[13] == 0 and f[14 + 9] == ipv4.PROTO_UDP:
            out.append(decode(f))
        else:
            other.append(f)
    h.dev.sent = []
    return out, other


def icmp_error_frame(sent_frame, type_, code, src=PEER_IP):
    """An ICMP error from src quoting the IP header and 8 bytes of a frame we sent."""
    quoted = sent_frame[14:14 + 28]
    body = bytearray(8 + len(quoted))
    body[8:] = quoted
    IcmpRepr(type_, code, 0, 0, len(quoted)).emit(body, 0)
    return eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(src, OUR_IP, ipv4.PROTO_ICMP, bytes(body)))


def udp_socket(h, timeout=None):
    s = tsocket.Socket(h.stack, AF_INET, SOCK_DGRAM)
    s.settimeout(timeout)
    return s


def deliver_at(h, due_ms, frame):
    """frame arrives once the harness clock reaches due_ms (blocking calls advance the clock
    through FakeDevice.wait): something that comes while a call waits."""
    dev = h.dev
    if not hasattr(dev, "later"):
        dev.later = []
        recv_into = dev.recv_into

        def timed_recv_into(buf):
            now = dev.clock.ticks_ms()
            keep = []
            for due, f in dev.later:
                if due <= now:
                    dev.inbox.append(f)
                else:
                    keep.append((due, f))
            dev.later[:] = keep
            return recv_into(buf)

        dev.recv_into = timed_recv_into
    dev.later.append((due_ms, frame))


# -- making one ------------------------------------------------------------------------------------
def test_sock_dgram_makes_a_datagram_socket_of_the_one_socket_class():
    h = Harness()
    tsocket.set_default_stack(h.stack)
    try:
        for s in (tsocket.socket(AF_INET, SOCK_DGRAM), tsocket.socket(AF_INET, SOCK_DGRAM, 17),
                  tsocket.socket(type=SOCK_DGRAM), tsocket.Socket(h.stack, AF_INET, SOCK_DGRAM),
                  tsocket.Socket(None, AF_INET, SOCK_DGRAM, 0), tsocket.socket(AF_INET, SOCK_DGRAM, 0, h.stack)):
            assert isinstance(s, tsocket.socket) and isinstance(s, tsocket.Socket)
            assert s.stack is h.stack and hasattr(s, "recvfrom") and s.getsockname() == ("0.0.0.0", 0)
            s.close()
        t = tsocket.socket()
        assert not hasattr(t, "recvfrom") and t.tcb is None  # a stream socket as before
        raises(errors.EOPNOTSUPP, tsocket.socket, AF_INET, SOCK_DGRAM, 6)  # IPPROTO_TCP
        raises(errors.EAFNOSUPPORT, tsocket.socket, tsocket.AF_INET6, SOCK_DGRAM)
        tsocket.set_default_stack(None)
        raises(errors.ENODEV, tsocket.socket, AF_INET, SOCK_DGRAM)
    finally:
        tsocket.set_default_stack(None)


def test_the_datagram_module_is_loaded_only_for_a_datagram_socket():
    # a board that makes only stream sockets never carries tcpip.dgram
    import tcpip

    sys.modules.pop("tcpip.dgram", None)
    if hasattr(tcpip, "dgram"):
        delattr(tcpip, "dgram")
    h = Harness()
    tsocket.Socket(h.stack).close()
    tsocket.getaddrinfo("192.0.2.1", 123, 0, SOCK_DGRAM)
    assert "tcpip.dgram" not in sys.modules
    tsocket.Socket(h.stack, AF_INET, SOCK_DGRAM).close()
    assert "tcpip.dgram" in sys.modules


def test_getaddrinfo_for_datagrams():
    assert tsocket.getaddrinfo("192.0.2.1", 123, 0, SOCK_DGRAM) == [(2, 2, 17, "", ("192.0.2.1", 123))]
    assert tsocket.getaddrinfo("192.0.2.1", 123) == [(2, 1, 6, "", ("192.0.2.1", 123))]


# -- sending ---------------------------------------------------------------------------------------
def test_sendto_sends_one_exact_datagram_from_an_ephemeral_port():
    h = Harness()
    s = udp_socket(h)
    assert s.sendto(b"hello", PEER) == 5
    out, other = sent_datagrams(h)
    assert len(out) == 1 and other == []
    ip, u, payload, mac = out[0]
    assert ip.src == OUR_IP and ip.dst == PEER_IP and ip.ttl == 64 and ip.df and mac == PEER_MAC
    assert u.dst_port == 7000 and payload == b"hello"
    port = u.src_port
    assert 49152 <= port <= 65535 and s.getsockname() == ("0.0.0.0", port)
    assert h.stack.udp.is_bound(port)
    # the port stays: the next datagram comes from it too; flags may come before the address
    assert s.sendto(bytearray(b"again"), 0, PEER) == 5
    out, _ = sent_datagrams(h)
    assert out[0][1].src_port == port and out[0][2] == b"again"
    assert h.stack.counters.udp_tx == 2


def test_sendto_takes_any_buffer_and_empty_datagrams():
    from array import array

    h = Harness()
    s = udp_socket(h)
    assert s.sendto(memoryview(b"xabcx")[1:4], PEER) == 3
    assert s.sendto(array("h", [1, 2]), PEER) == 4  # bytes, not items
    assert s.sendto(b"", PEER) == 0
    out, _ = sent_datagrams(h)
    assert [p for _, _, p, _ in out] == [b"abc", bytes(array("h", [1, 2])), b""]
    assert out[2][1].payload_len == 0 and out[2][0].payload_len == 8
    try:
        s.sendto([1, 2], PEER)
        raise AssertionError("a list was sent")
    except TypeError:
        pass


def test_sendto_refuses_bad_destinations():
    h = Harness()
    s = udp_socket(h)
    raises(errors.EINVAL, s.sendto, b"x", ("192.0.2.1", 0))  # port 0 (udp_sendmsg)
    raises(errors.EINVAL, s.sendto, b"x", ("192.0.2.1",))
    raises(errors.EINVAL, s.sendto, b"x", ("example.com", 53))  # numeric only, as MicroPython
    raises(errors.EAFNOSUPPORT, s.sendto, b"x", ("::1", 53, 0, 0))
    for dst in ("224.0.0.251", "0.0.0.0", "127.0.0.1", "192.0.2.2"):  # no multicast, no loopback
        raises(errors.ENETUNREACH, s.sendto, b"x", (dst, 5353))
    assert sent_datagrams(h)[0] == []


def test_off_link_without_a_gateway_or_an_address_is_enetunreach():
    from manualclock import ManualClock
    from segment import FakeDevice
    from tcpip.stack import Stack

    clock = ManualClock(0)
    stack = Stack(FakeDevice(clock), clock, addr="192.0.2.2/24")  # no gateway
    raises(errors.ENETUNREACH, tsocket.Socket(stack, AF_INET, SOCK_DGRAM).sendto, b"x", ("198.51.100.7", 9))
    raises(errors.ENETUNREACH, tsocket.Socket(stack, AF_INET, SOCK_DGRAM).connect, ("198.51.100.7", 9))
    unconfigured = Stack(FakeDevice(clock), clock)
    s = tsocket.Socket(unconfigured, AF_INET, SOCK_DGRAM)
    raises(errors.ENETUNREACH, s.sendto, b"x", ("192.0.2.1", 9))
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_BROADCAST, 1)
    assert s.sendto(b"x", ("255.255.255.255", 67)) == 1  # as DHCP does: from 0.0.0.0
    ip, _, _, mac = decode(unconfigured.device.sent[-1])
    assert ip.src == b"\x00\x00\x00\x00" and mac == ethernet.BROADCAST


def test_datagrams_past_the_mtu_are_emsgsize():
    h = Harness()
    s = udp_socket(h)
    raises(errors.EMSGSIZE, s.sendto, bytes(1473), PEER)
    assert s.sendto(bytes(1472), PEER) == 1472
    out, _ = sent_datagrams(h)
    assert len(out) == 1 and out[0][0].payload_len == 1480
    s.connect(PEER)
    raises(errors.EMSGSIZE, s.send, bytes(1473))
    assert sent_datagrams(h)[0] == []


def test_emsgsize_follows_the_device_mtu():
    from manualclock import ManualClock
    from segment import FakeDevice
    from tcpip.stack import Stack

    clock = ManualClock(0)
    dev = FakeDevice(clock, mtu=576)
    stack = Stack(dev, clock, addr="192.0.2.2/24")
    s = tsocket.Socket(stack, AF_INET, SOCK_DGRAM)
    raises(errors.EMSGSIZE, s.sendto, bytes(549), ("192.0.2.255", 9))  # broadcast: no ARP wait
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_BROADCAST, 1)
    raises(errors.EMSGSIZE, s.sendto, bytes(549), ("192.0.2.255", 9))
    assert s.sendto(bytes(548), ("192.0.2.255", 9)) == 548
    assert len(dev.sent) == 1 and len(dev.sent[0]) == 14 + 576


def test_ephemeral_ports_are_unique_among_bound_udp_ports():
    from tcpip import udp as udp_module

    h = Harness()
    udp = h.stack.udp
    udp.bind(50000, lambda *a: None)

    class Draws:
        # every draw at first lands on a port already bound; then fresh ones
        def __init__(self):
            self.n = 0

        def urandom(self, k):
            self.n += 1
            v = (50000 - 49152) if self.n <= 3 else (self.n * 977) & 0x3FFF
            return bytes(((v >> 8) & 0xFF, v & 0xFF))

    real = udp_module.os
    udp_module.os = Draws()
    try:
        ports = []
        socks = []
        for i in range(7):  # the other seven of the layer's eight bindings
            s = udp_socket(h)
            s.sendto(b"x", PEER)
            ports.append(s.getsockname()[1])
            socks.append(s)
    finally:
        udp_module.os = real
    assert 50000 not in ports and len(set(ports)) == 7
    assert all(49152 <= p <= 65535 for p in ports)
    # every binding is taken: the eighth socket cannot get a port
    raises(errors.ENOBUFS, udp_socket(h).sendto, b"x", PEER)
    socks[0].close()
    assert not udp.is_bound(ports[0])
    s = udp_socket(h)
    s.sendto(b"x", PEER)
    assert s.getsockname()[1] not in ports[1:] + [50000]


def test_ephemeral_ports_are_random():
    h = Harness()
    seen = set()
    for _ in range(6):
        s = udp_socket(h)
        s.sendto(b"x", PEER)
        seen.add(s.getsockname()[1])
        s.close()
    assert len(seen) >= 4  # 6 draws from 16,384 ports: a repeat now and then, never a sequence


# -- binding ---------------------------------------------------------------------------------------
def test_bind_rules():
    h = Harness()
    s = udp_socket(h)
    s.bind(("0.0.0.0", 5000))
    assert s.getsockname() == ("0.0.0.0", 5000) and h.stack.udp.is_bound(5000)
    raises(errors.EINVAL, s.bind, ("0.0.0.0", 5001))  # bound already
    t = udp_socket(h)
    raises(errors.EADDRINUSE, t.bind, ("0.0.0.0", 5000))
    t.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_REUSEADDR, 1)  # accepted; one socket per port
    raises(errors.EADDRINUSE, t.bind, ("0.0.0.0", 5000))
    h.stack.udp.bind(68, lambda *a: None)  # a port DHCP holds through the UDP layer's own API
    raises(errors.EADDRINUSE, t.bind, ("0.0.0.0", 68))
    raises(errors.EADDRNOTAVAIL, t.bind, ("192.0.2.77", 5002))  # not ours
    t.bind(("192.0.2.2", 0))
    assert t.getsockname()[0] == "192.0.2.2" and 49152 <= t.getsockname()[1] <= 65535
    s.close()
    u = udp_socket(h)
    u.bind(("", 5000))  # free again after close(); "" is 0.0.0.0 (CPython's INADDR_ANY)
    assert u.getsockname() == ("0.0.0.0", 5000)
    raises(errors.EBADF, s.bind, ("0.0.0.0", 5003))


def test_a_socket_bound_to_our_address_takes_no_broadcasts():
    h = Harness()
    a = udp_socket(h, 0)
    a.bind(("192.0.2.2", 6000))
    b = udp_socket(h, 0)
    b.bind(("0.0.0.0", 6001))
    h.feed(datagram_frame(9, 6000, b"to-a", dst=SUBNET_BCAST, eth_dst=ethernet.BROADCAST))
    h.feed(datagram_frame(9, 6001, b"to-b", dst=SUBNET_BCAST, eth_dst=ethernet.BROADCAST))
    h.feed(datagram_frame(9, 6000, b"unicast-a"))
    assert a.recv(64) == b"unicast-a"
    raises(errors.EAGAIN, a.recv, 64)
    assert b.recv(64) == b"to-b"
    _, other = sent_datagrams(h)
    assert other == []  # no port unreachable about a broadcast
    assert h.stack.counters.udp_no_port == 1


# -- receiving -------------------------------------------------------------------------------------
def test_recvfrom_returns_datagrams_in_order_with_their_sources():
    h = Harness()
    s = udp_socket(h, 0)
    s.bind(("0.0.0.0", 5000))
    h.feed(datagram_frame(1111, 5000, b"first"))
    h.feed(datagram_frame(2222, 5000, b"second", src=OTHER_IP))
    h.feed(datagram_frame(3333, 5000, b""))
    assert s.recvfrom(100) == (b"first", ("192.0.2.1", 1111))
    assert s.recvfrom(100) == (b"second", ("192.0.2.9", 2222))
    assert s.recvfrom(100) == (b"", ("192.0.2.1", 3333))  # an empty datagram is one too
    raises(errors.EAGAIN, s.recvfrom, 100)
    assert h.stack.counters.udp_sock_rx == 3


def test_recv_truncates_a_longer_datagram_and_drops_the_rest():
    h = Harness()
    s = udp_socket(h, 0)
    s.bind(("0.0.0.0", 5000))
    for p in (b"0123456789", b"abcdef", b"XYZ", b"gone", b"tail"):
        h.feed(datagram_frame(53, 5000, p))
    assert s.recv(4) == b"0123"  # as Linux and MicroPython: the rest of that datagram is gone
    assert s.recv(100) == b"abcdef"
    buf = bytearray(2)
    assert s.recv_into(buf) == 2 and buf == b"XY"
    assert s.recv(0) == b""  # a zero-length read takes a datagram too (Linux)
    buf = bytearray(8)
    assert s.recv_into(buf, 3) == 3 and buf[:3] == b"tai"
    raises(errors.EAGAIN, s.recv, 100)
    assert not hasattr(s, "recvfrom_into")  # as MicroPython's sockets


def test_msg_peek_and_msg_dontwait():
    h = Harness()
    s = udp_socket(h, 5)  # blocking with a timeout: MSG_DONTWAIT makes one call non-blocking
    s.bind(("0.0.0.0", 5000))
    t0 = h.clock.ticks_ms()
    raises(errors.EAGAIN, s.recv, 10, MSG_DONTWAIT)
    assert h.clock.ticks_ms() == t0
    h.feed(datagram_frame(53, 5000, b"peekaboo"))
    assert s.recv(4, MSG_PEEK) == b"peek"
    assert s.recvfrom(100, MSG_PEEK | MSG_DONTWAIT) == (b"peekaboo", ("192.0.2.1", 53))
    buf = bytearray(3)
    assert s.recv_into(buf, 0, MSG_PEEK) == 3 and buf == b"pee"
    assert s.recv(100) == b"peekaboo"
    raises(errors.EAGAIN, s.recv, 10, MSG_DONTWAIT)


def test_blocking_recv_waits_for_a_datagram_and_times_out():
    h = Harness()
    s = udp_socket(h, 2)
    s.bind(("0.0.0.0", 5000))
    start = h.clock.ticks_ms()
    deliver_at(h, start + 700, datagram_frame(53, 5000, b"late"))
    assert s.recvfrom(64) == (b"late", ("192.0.2.1", 53))
    assert 700 <= h.clock.ticks_ms() - start < 2000
    start = h.clock.ticks_ms()
    raises(errors.ETIMEDOUT, s.recv, 64)
    assert h.clock.ticks_ms() - start == 2000
    s.setblocking(False)
    raises(errors.EAGAIN, s.recv, 64)
    assert s.gettimeout() == 0
    s.setblocking(True)
    deliver_at(h, h.clock.ticks_ms() + 5000, datagram_frame(53, 5000, b"much later"))
    assert s.recv(64) == b"much later" and s.gettimeout() is None


def test_the_receive_ring_is_bounded_and_counts_its_drops():
    h = Harness()
    s = udp_socket(h, 0)
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF, 256)
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF) == 256
    s.bind(("0.0.0.0", 5000))
    # 80-byte records (8 of header, 72 of payload): three fit in 256 bytes, the fourth not
    for i in range(4):
        h.feed(datagram_frame(53, 5000, bytes([i]) * 72))
    c = h.stack.counters
    assert c.udp_sock_rx == 3 and c.udp_sock_rcvbuf_errors == 1
    assert s.recv(100) == bytes([0]) * 72
    # the free part is 16 bytes at the end and 80 at the start: the next record goes to the start
    h.feed(datagram_frame(53, 5000, b"W" * 72))
    assert c.udp_sock_rx == 4 and c.udp_sock_rcvbuf_errors == 1
    h.feed(datagram_frame(53, 5000, b"no room"))
    assert c.udp_sock_rcvbuf_errors == 2
    assert [s.recv(100) for _ in range(3)] == [bytes([1]) * 72, bytes([2]) * 72, b"W" * 72]
    raises(errors.EAGAIN, s.recv, 100)
    # the largest datagram fits an empty 256-byte ring exactly; one byte more never does
    h.feed(datagram_frame(53, 5000, b"M" * 248))
    h.feed(datagram_frame(53, 5000, b"m" * 249))
    assert s.recv(300) == b"M" * 248 and c.udp_sock_rcvbuf_errors == 3
    raises(errors.EAGAIN, s.recv, 100)


def test_a_record_that_wraps_leaves_a_marked_end():
    h = Harness()
    s = udp_socket(h, 0)
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF, 256)
    s.bind(("0.0.0.0", 5000))
    h.feed(datagram_frame(1, 5000, b"a" * 92))  # 100 bytes at 0
    h.feed(datagram_frame(2, 5000, b"b" * 92))  # 100 bytes at 100
    assert s.recvfrom(100) == (b"a" * 92, ("192.0.2.1", 1))
    h.feed(datagram_frame(3, 5000, b"c" * 92))  # 56 bytes left at the end (marked): goes to 0
    assert h.stack.counters.udp_sock_rcvbuf_errors == 0
    assert s.recvfrom(100) == (b"b" * 92, ("192.0.2.1", 2))
    assert s.recvfrom(100) == (b"c" * 92, ("192.0.2.1", 3))
    raises(errors.EAGAIN, s.recv, 100)


def test_the_ring_against_a_model_with_random_sizes():
    # datagrams of random sizes fed and read in random order through a 512-byte ring: what comes
    # out is what went in, in order; a datagram is dropped only when the ring has no room for it,
    # and never when the ring is empty and it fits
    h = Harness()
    s = udp_socket(h, 0)
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF, 512)
    s.bind(("0.0.0.0", 5000))
    rnd = lcg_bytes(20261207)
    c = h.stack.counters
    queued = []  # what the socket should hold, oldest first
    sent = 0
    for step in range(600):
        if rnd() < 150:
            n = (rnd() << 8 | rnd()) % 300
            payload = bytes([sent & 0xFF]) + bytes([rnd()]) * (n - 1) if n else b""
            was_empty = not queued
            drops = c.udp_sock_rcvbuf_errors
            h.feed(datagram_frame(1000 + sent % 100, 5000, payload))
            sent += 1
            if c.udp_sock_rcvbuf_errors == drops:
                queued.append((payload, 1000 + (sent - 1) % 100))
            else:
                assert not was_empty, "dropped %d bytes into an empty ring" % n
        elif queued:
            want = queued.pop(0)
            assert s.recvfrom(400) == (want[0], ("192.0.2.1", want[1]))
    while queued:
        want = queued.pop(0)
        assert s.recvfrom(400) == (want[0], ("192.0.2.1", want[1]))
    raises(errors.EAGAIN, s.recv, 1)
    assert c.udp_sock_rx + c.udp_sock_rcvbuf_errors == sent and c.udp_sock_rcvbuf_errors > 0
    assert c.udp_sock_rx > 100  # tens of kilobytes through 512 bytes: the ring wrapped many times


def test_so_rcvbuf_sizes_the_ring_before_the_port():
    h = Harness()
    s = udp_socket(h, 0)
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF) == 2048  # the default
    s.setsockopt(tsocket.LWIP_SOL_SOCKET, tsocket.LWIP_SO_RCVBUF, 1000)  # lwIP's numbers too
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF) == 1000
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF, 10)  # raised to the minimum, 256
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF) == 256
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF, 1 << 20)
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF) == 65535
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_RCVBUF, 600)
    s.bind(("0.0.0.0", 5000))
    # the ring is made with the port: too late to change it (EISCONN, as the stream socket's
    # rings after connect)
    raises(errors.EISCONN, s.setsockopt, tsocket.SOL_SOCKET, tsocket.SO_RCVBUF, 4096)
    for i in range(3):  # 3 x (8 + 192) = 600 bytes
        h.feed(datagram_frame(53, 5000, bytes([i]) * 192))
    h.feed(datagram_frame(53, 5000, b"x"))
    assert h.stack.counters.udp_sock_rx == 3 and h.stack.counters.udp_sock_rcvbuf_errors == 1
    assert [s.recv(400) for _ in range(3)] == [bytes([i]) * 192 for i in range(3)]


# -- connect ---------------------------------------------------------------------------------------
def test_connect_send_recv_and_the_peer_filter():
    h = Harness()
    s = udp_socket(h, 0)
    raises(EDESTADDRREQ, s.send, b"x")  # not connected
    raises(errors.ENOTCONN, s.getpeername)
    s.connect(PEER)
    port = s.getsockname()[1]
    assert 49152 <= port and s.getsockname()[0] == "192.0.2.2" and s.getpeername() == PEER
    assert s.send(b"ping") == 4
    out, _ = sent_datagrams(h)
    assert out[0][1].src_port == port and out[0][1].dst_port == 7000 and out[0][2] == b"ping"
    # only the peer's datagrams are taken; the others get port unreachable (Linux: no socket)
    h.feed(datagram_frame(7000, port, b"from the peer"))
    h.feed(datagram_frame(7001, port, b"other port"))
    h.feed(datagram_frame(7000, port, b"other host", src=OTHER_IP))
    assert s.recv(100) == b"from the peer"
    raises(errors.EAGAIN, s.recv, 100)
    _, other = sent_datagrams(h)
    icmps = [decode(f) for f in other if f[12] == 8 and f[23] == ipv4.PROTO_ICMP]
    assert len(icmps) == 1 and icmps[0][2][0:2] == b"\x03\x03"  # to the peer (the other: ARP first)
    assert h.stack.counters.udp_no_port == 2 and h.stack.counters.udp_port_unreach_sent == 2
    # sendto another address still works on a connected socket (Linux)
    assert s.sendto(b"aside", ("192.0.2.9", 9)) == 5
    # connect again: a new peer
    s.connect(("192.0.2.9", 9))
    h.feed(datagram_frame(9, port, b"new peer", src=OTHER_IP))
    assert s.recvfrom(100) == (b"new peer", ("192.0.2.9", 9))


def test_connect_none_unconnects_and_gives_an_ephemeral_port_back():
    h = Harness()
    s = udp_socket(h, 0)
    s.connect(PEER)
    port = s.getsockname()[1]
    s.connect(None)
    raises(errors.ENOTCONN, s.getpeername)
    raises(EDESTADDRREQ, s.send, b"x")
    assert s.getsockname() == ("0.0.0.0", 0) and not h.stack.udp.is_bound(port)
    # bind() chose the port: it stays (Linux SOCK_BINDPORT_LOCK); AF_UNSPEC works as None
    s.bind(("0.0.0.0", 5000))
    s.connect(PEER)
    s.connect(tsocket.AF_UNSPEC)
    assert s.getsockname() == ("0.0.0.0", 5000) and h.stack.udp.is_bound(5000)
    h.feed(datagram_frame(1234, 5000, b"anyone"))
    assert s.recv(100) == b"anyone"
    assert s.connect_ex(("192.0.2.255", 9)) == EACCES


# -- broadcast -------------------------------------------------------------------------------------
def test_broadcast_needs_so_broadcast():
    h = Harness()
    s = udp_socket(h)
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_BROADCAST) == 0
    raises(EACCES, s.sendto, b"x", ("255.255.255.255", 9))
    raises(EACCES, s.sendto, b"x", ("192.0.2.255", 9))
    raises(EACCES, s.connect, ("255.255.255.255", 9))
    assert sent_datagrams(h)[0] == []
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_BROADCAST, 1)
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_BROADCAST) == 1
    assert s.sendto(b"all", ("255.255.255.255", 9)) == 3
    assert s.sendto(b"subnet", ("192.0.2.255", 9)) == 6
    out, other = sent_datagrams(h)
    assert other == []  # no ARP for a broadcast
    assert [(ip.dst, mac, p) for ip, _, p, mac in out] == [
        (BCAST, ethernet.BROADCAST, b"all"), (SUBNET_BCAST, ethernet.BROADCAST, b"subnet")]
    assert out[0][0].src == OUR_IP
    s.connect(("255.255.255.255", 9))
    assert s.send(b"c") == 1
    # lwIP's numbers (modlwip's SO_BROADCAST is SOF_BROADCAST, 0x20) turn it off again
    s.setsockopt(tsocket.LWIP_SOL_SOCKET, 0x20, 0)
    raises(EACCES, s.send, b"c")
    raises(errors.ENOPROTOOPT, s.setsockopt, 0, 6, 1)  # IPPROTO_IP level: nothing there


def test_broadcasts_arrive_at_a_socket_bound_to_any_address():
    h = Harness()
    s = udp_socket(h, 0)
    s.bind(("0.0.0.0", 5000))  # no SO_BROADCAST needed to receive (Linux)
    h.feed(datagram_frame(68, 5000, b"limited", dst=BCAST, eth_dst=ethernet.BROADCAST))
    h.feed(datagram_frame(68, 5000, b"directed", dst=SUBNET_BCAST, eth_dst=ethernet.BROADCAST))
    assert s.recvfrom(64) == (b"limited", ("192.0.2.1", 68))
    assert s.recvfrom(64) == (b"directed", ("192.0.2.1", 68))


# -- ICMP errors -----------------------------------------------------------------------------------
def test_port_unreachable_is_econnrefused_once_on_a_connected_socket():
    h = Harness()
    s = udp_socket(h, 0)
    s.connect(PEER)
    s.send(b"anyone there?")
    out = list(h.dev.sent)
    h.dev.sent = []
    h.feed(icmp_error_frame(out[-1], 3, 3))
    c = h.stack.counters
    assert c.udp_icmp_error == 1 and c.udp_sock_icmp_error == 1
    assert s.ioctl(3, POLLIN | POLLOUT) == POLLERR | POLLOUT
    raises(errors.ECONNREFUSED, s.recv, 100)
    raises(errors.EAGAIN, s.recv, 100)  # reported once
    assert s.ioctl(3, POLLIN | POLLOUT) == POLLOUT
    # the next send after another port unreachable reports it, and sends nothing
    s.send(b"again")
    out = list(h.dev.sent)
    h.dev.sent = []
    h.feed(icmp_error_frame(out[-1], 3, 3))
    raises(errors.ECONNREFUSED, s.send, b"third")
    assert h.dev.sent == []
    assert s.send(b"fourth") == 6
    # SO_ERROR reads (and clears) it too
    h.feed(icmp_error_frame(h.dev.sent[-1], 3, 3))
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_ERROR) == errors.ECONNREFUSED
    assert s.getsockopt(tsocket.LWIP_SOL_SOCKET, 0x1007) == 0


def test_a_blocking_recv_wakes_with_the_icmp_error():
    h = Harness()
    s = udp_socket(h, 5)
    s.connect(PEER)
    s.send(b"query")
    frame = h.dev.sent[-1]
    start = h.clock.ticks_ms()
    deliver_at(h, start + 30, icmp_error_frame(frame, 3, 3))
    raises(errors.ECONNREFUSED, s.recv, 48)
    assert h.clock.ticks_ms() - start < 5000  # woken, not timed out
    # the error comes before a datagram that is already queued (Linux sock_error first)
    s.send(b"query")
    h.feed(datagram_frame(7000, s.getsockname()[1], b"answer"))
    h.feed(icmp_error_frame(h.dev.sent[-1], 3, 3))
    raises(errors.ECONNREFUSED, s.recv, 48)
    assert s.recv(48) == b"answer"


def test_icmp_errors_that_linux_ignores():
    h = Harness()
    c = h.stack.counters
    # unconnected: no error (Linux needs IP_RECVERR for that)
    s = udp_socket(h, 0)
    s.sendto(b"x", PEER)
    h.feed(icmp_error_frame(h.dev.sent[-1], 3, 3))
    raises(errors.EAGAIN, s.recv, 10)
    assert c.udp_sock_icmp_ignored == 1
    # connected: soft errors (host unreachable from a router, time exceeded) are not reported
    t = udp_socket(h, 0)
    t.connect(PEER)
    t.send(b"y")
    frame = h.dev.sent[-1]
    h.feed(icmp_error_frame(frame, 3, 1))
    h.feed(icmp_error_frame(frame, 11, 0))
    raises(errors.EAGAIN, t.recv, 10)
    assert c.udp_sock_icmp_ignored == 3
    # a hard error about a datagram to another destination (sendto aside) is not the peer's
    t.sendto(b"z", ("198.51.100.7", 9))  # off-link, through the gateway (the peer)
    h.feed(icmp_error_frame(h.dev.sent[-1], 3, 3))
    raises(errors.EAGAIN, t.recv, 10)
    assert c.udp_sock_icmp_ignored == 4
    # hard ones other than port unreachable: their errno (icmp_err_convert)
    h.feed(icmp_error_frame(frame, 3, 10))  # host administratively prohibited
    raises(errors.EHOSTUNREACH, t.recv, 10)
    h.feed(icmp_error_frame(frame, 3, 2))  # protocol unreachable
    raises(errors.ENOPROTOOPT, t.send, b"w")
    assert c.udp_sock_icmp_error == 2


# -- poll ------------------------------------------------------------------------------------------
def test_poll_flags():
    h = Harness()
    s = udp_socket(h, 0)
    both = POLLIN | POLLOUT
    assert s.ioctl(3, both) == POLLOUT  # no POLLHUP for a new datagram socket (Linux)
    assert s.ioctl(3, POLLIN) == 0
    s.bind(("0.0.0.0", 5000))
    h.dev.inbox.append(datagram_frame(53, 5000, b"x"))
    assert s.ioctl(3, both) == both  # the poll ioctl services the stack
    assert s.ioctl(3, POLLIN) == POLLIN
    s.recv(10)
    assert s.ioctl(3, both) == POLLOUT
    s.connect(PEER)
    assert s.ioctl(3, both) == POLLOUT
    s.close()
    assert s.ioctl(3, both) == POLLNVAL
    assert s.ioctl(99, 0) == -1


def test_tcpip_poller_waits_for_a_datagram():
    h = Harness()
    s = udp_socket(h, 0)
    s.bind(("0.0.0.0", 5000))
    p = poll()
    p.register(s, POLLIN)
    start = h.clock.ticks_ms()
    deliver_at(h, start + 250, datagram_frame(53, 5000, b"wake"))
    assert p.poll(1000) == [(s, POLLIN)]
    assert 250 <= h.clock.ticks_ms() - start <= 1000  # FakeDevice.wait lets whole waits pass
    assert s.recv(10) == b"wake"
    start = h.clock.ticks_ms()
    assert p.poll(300) == []
    assert h.clock.ticks_ms() - start >= 300


def test_select_poll_on_micropython():
    if not MICROPYTHON:
        return
    import select

    h = Harness()
    s = udp_socket(h, 0)
    s.bind(("0.0.0.0", 5000))
    p = select.poll()
    p.register(s, select.POLLIN)
    assert p.poll(0) == []
    h.dev.inbox.append(datagram_frame(53, 5000, b"x"))
    assert p.poll(0) == [(s, select.POLLIN)]


# -- the rest of the socket ------------------------------------------------------------------------
def test_stream_calls_on_a_datagram_socket():
    h = Harness()
    s = udp_socket(h, 0)
    s.connect(PEER)
    port = s.getsockname()[1]
    assert s.write(b"written") == 7
    # write(buf, n) and write(buf, off, n) pick the bytes, as MicroPython's stream write does
    assert s.write(b"abcdef", 2) == 2 and s.write(bytearray(b"abcdef"), 1, 3) == 3
    s.sendall(b"all")
    out, _ = sent_datagrams(h)
    assert [p for _, _, p, _ in out] == [b"written", b"ab", b"bcd", b"all"]
    assert s.read() is None and s.readinto(bytearray(4)) is None  # non-blocking, nothing there
    for p in (b"one datagram", b"two", b"three"):
        h.feed(datagram_frame(7000, port, p))
    assert s.read() == b"one datagram"
    assert s.read(2) == b"tw"
    buf = bytearray(10)
    assert s.readinto(buf) == 5 and buf[:5] == b"three"
    h.feed(datagram_frame(7000, port, b"four"))
    assert s.readinto(buf, None) == 4 and buf[:4] == b"four"  # nbytes None: the whole buffer
    raises(errors.EOPNOTSUPP, s.readline)
    raises(errors.EOPNOTSUPP, s.listen, 1)
    raises(errors.EOPNOTSUPP, s.accept)
    raises(errors.EOPNOTSUPP, s.shutdown, tsocket.SHUT_WR)  # MicroPython's sockets have none
    assert s.makefile("rwb") is s


def test_every_call_after_close_is_ebadf():
    h = Harness()
    s = udp_socket(h, 0)
    s.bind(("0.0.0.0", 5000))
    h.feed(datagram_frame(53, 5000, b"left"))
    s.close()
    s.close()  # twice is fine
    assert not h.stack.udp.is_bound(5000)
    for call, args in ((s.recv, (1,)), (s.recvfrom, (1,)), (s.recv_into, (bytearray(1),)),
                       (s.sendto, (b"x", PEER)), (s.send, (b"x",)), (s.connect, (PEER,)),
                       (s.bind, (("0.0.0.0", 0),)), (s.getsockname, ()), (s.getpeername, ()),
                       (s.setsockopt, (1, 6, 1)), (s.getsockopt, (1, 6))):
        raises(errors.EBADF, call, *args)
    # the port is free for another socket, and datagrams to it get port unreachable again
    h.feed(datagram_frame(53, 5000, b"nobody"))
    assert h.stack.counters.udp_port_unreach_sent == 1
    with udp_socket(h, 0) as t:
        t.bind(("0.0.0.0", 5000))
    raises(errors.EBADF, t.recv, 1)


def test_recv_into_checks_its_buffer():
    h = Harness()
    s = udp_socket(h, 0)
    s.bind(("0.0.0.0", 5000))
    h.feed(datagram_frame(53, 5000, b"abcdef"))
    for bad in (b"read-only", memoryview(b"read-only")):
        try:
            s.recv_into(bad)
            raise AssertionError("wrote into a read-only buffer")
        except TypeError:
            pass
    m = memoryview(bytearray(10))
    assert s.recv_into(m[2:6]) == 4 and bytes(m) == b"\x00\x00abcd\x00\x00\x00\x00"


def test_steady_state_paths_allocate_nothing():
    # a connected socket's send and recv_into, and the datagrams arriving: no heap on MicroPython
    h = Harness()
    s = udp_socket(h, 0)
    s.connect(PEER)
    port = s.getsockname()[1]
    frames = [bytearray(datagram_frame(7000, port, bytes([i]) * 100)) for i in range(4)]
    stack = h.stack
    buf = bytearray(200)
    data = b"steady" * 10

    h.dev.send = lambda f, n: None  # FakeDevice.send keeps a copy of each frame: this keeps none
    s.send(data)
    stack.input(frames[0], len(frames[0]))
    s.recv_into(buf)  # warm up

    def loop():
        for f in frames:
            stack.input(f, len(f))
            s.recv_into(buf)
            s.send(data)

    heap_locked(loop)  # MicroPython: raises MemoryError if anything allocates
    assert buf[:100] == bytes([3]) * 100
    if MICROPYTHON:
        import gc

        gc.collect()
        before = gc.mem_alloc()
        loop()
        assert gc.mem_alloc() - before == 0


def test_repr_and_options():
    h = Harness()
    s = udp_socket(h, 0)
    s.connect(PEER)
    assert repr(s) == "<tcpip socket connected ->"  # tcpip.socket's
    raises(errors.ENOPROTOOPT, s.getsockopt, tsocket.SOL_SOCKET, tsocket.SO_KEEPALIVE)
    raises(errors.ENOPROTOOPT, s.setsockopt, tsocket.SOL_SOCKET, tsocket.SO_KEEPALIVE, 1)
    raises(errors.ENOPROTOOPT, s.setsockopt, tsocket.IPPROTO_TCP, tsocket.TCP_NODELAY, 1)
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_SNDBUF, 4096)  # accepted, no effect
    raises(errors.EINVAL, s.setsockopt, tsocket.SOL_SOCKET, tsocket.SO_BROADCAST, b"xy")
    s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_BROADCAST, b"\x01\x00\x00\x00")  # a C int
    assert s.getsockopt(tsocket.SOL_SOCKET, tsocket.SO_BROADCAST) == 1
    s.close()
    assert repr(s) == "<tcpip socket closed ->"


# -- unmodified ntptime-style code -----------------------------------------------------------------
class NtpPeer:
    """Answers each NTP request (48 bytes to 192.0.2.1:123) as a server would: mode 4, the
    request's transmit timestamp as originate, a fixed transmit timestamp (seconds since 1900)."""

    SECONDS = 3913056000 + 86400 * 500 + 12345

    def __init__(self, h):
        self.h = h
        self.requests = []
        dev = h.dev
        real_send = dev.send

        def send(buf, n):
            real_send(buf, n)
            f = dev.sent[-1]
            if f[12] == 8 and f[23] == ipv4.PROTO_UDP and f[36] == 0 and f[37] == 123:
                ip, u, payload, _ = decode(f)
                self.requests.append(payload)
                if len(payload) == 48:
                    r = bytearray(48)
                    r[0] = 0x24  # LI 0, version 4, mode 4 (server)
                    r[1] = 2
                    r[24:32] = payload[40:48]
                    t = self.SECONDS
                    r[40:44] = bytes(((t >> 24) & 0xFF, (t >> 16) & 0xFF, (t >> 8) & 0xFF, t & 0xFF))
                    dev.inbox.append(datagram_frame(123, u.src_port, bytes(r)))

        dev.send = send


def ntp_time(socket, host="192.0.2.1", timeout=1):
    # written as micropython-lib's ntptime.time() is (the module `socket` passed in)
    import struct

    NTP_QUERY = bytearray(48)
    NTP_QUERY[0] = 0x23
    addr = socket.getaddrinfo(host, 123)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(NTP_QUERY, addr)
        msg = s.recv(48)
    finally:
        s.close()
    return struct.unpack("!I", msg[40:44])[0]


def test_ntptime_style_code_runs_unmodified():
    h = Harness()
    peer = NtpPeer(h)
    tsocket.set_default_stack(h.stack)
    try:
        assert ntp_time(tsocket) == NtpPeer.SECONDS
        assert len(peer.requests) == 1 and peer.requests[0][0] == 0x23
        # no server: the socket timeout ends it with ETIMEDOUT
        start = h.clock.ticks_ms()
        raises(errors.ETIMEDOUT, ntp_time, tsocket, "192.0.2.9")
        assert h.clock.ticks_ms() - start == 1000
    finally:
        tsocket.set_default_stack(None)
    assert not [p for p in h.stack.udp.ports if p]  # both sockets gave their ports back
