# dual: cpython micropython
# Ethernet/ARP/IPv4/ICMP input paths of the stack, drop counters, robustness against malformed
# frames, and (on MicroPython) zero heap allocation per received frame once warmed up.
import sys

from segment import (ACK, OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, PSH, SYN, Harness, eth, ip_packet,
                     tcp_segment)
from tcpip import errors
from tcpip import tcp
from wirerep import ethernet
from wirerep import ipv4
from wirerep.icmp import IcmpRepr

MICROPYTHON = sys.implementation.name == "micropython"


def echo_request(ident=0x1234, seq=1, data=b"0123456789abcdef", src=PEER_IP, dst=OUR_IP):
    body = bytearray(8 + len(data))
    body[8:] = data
    IcmpRepr(8, 0, ident, seq, len(data)).emit(body, 0)
    return eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(src, dst, ipv4.PROTO_ICMP, body))


def test_answers_arp_request_for_our_address():
    h = Harness(learn_peer=False)
    h.feed(h.arp_request_from_peer())
    out = h.take()
    assert len(out) == 1
    a = out[0].arp
    assert a.oper == 2 and a.sha == OUR_MAC and a.spa == OUR_IP and a.tha == PEER_MAC and a.tpa == PEER_IP
    assert out[0].eth.dst == PEER_MAC
    assert len(out[0].frame) == 60  # padded to the Ethernet minimum
    assert h.stack.counters.arp_reply_sent == 1


def test_ignores_arp_request_for_another_address():
    h = Harness(learn_peer=False)
    f = bytearray(h.arp_request_from_peer())
    f[14 + 24 + 3] = 77  # target 192.0.2.77
    h.feed(bytes(f))
    h.expect_nothing()
    assert h.stack.counters.arp_drop_not_for_us == 1


def test_malformed_arp_is_counted():
    h = Harness(learn_peer=False)
    f = bytearray(h.arp_request_from_peer())
    f[14 + 4] = 8  # hardware length 8
    h.feed(bytes(f))
    h.expect_nothing()
    assert h.stack.counters.arp_drop_malformed == 1


def test_arp_entry_expires_and_is_resolved_again():
    h = Harness()
    h.peer_answers_arp = False
    h.advance(60000)
    tcb = h.stack.tcp.connect(None, 0, PEER_IP, 80)
    out = h.take()
    assert len(out) == 1 and out[0].arp is not None and out[0].arp.tpa == PEER_IP, out
    h.feed(h.arp_reply_from(PEER_IP))
    h.expect_tcp(SYN, seq=tcb.iss)


def test_expired_arp_entry_does_not_come_back_after_the_tick_wrap():
    # an entry left unused 2**29 ms (6.2 days) past its expiry would look fresh to ticks_diff:
    # the stack's poll must have dropped it by then
    h = Harness()
    h.peer_answers_arp = False
    for _ in range(150):  # 150 x 1 h, the stack polled every hour
        h.advance(3600 * 1000)
    h.stack.tcp.connect(None, 0, PEER_IP, 80)
    out = h.take()
    assert len(out) == 1 and out[0].arp is not None and out[0].arp.tpa == PEER_IP, out


def test_arp_queue_overflow_drops_the_oldest():
    h = Harness()
    silent = ipv4.aton("192.0.2.99")
    for port in (1, 2, 3):
        h.stack.tcp.connect(None, 0, silent, port)
    assert h.stack.counters.arp_queue_overflow == 1
    h.take()
    h.feed(h.arp_reply_from(silent, b"\x02\x00\x00\x00\x00\x99"))
    out = h.take()
    assert sorted(s.tcp.dst_port for s in out) == [2, 3]


def test_ping_is_answered():
    h = Harness()
    h.feed(echo_request(0x4242, 7, b"ping payload"))
    out = h.take()
    assert len(out) == 1
    s = out[0]
    assert s.icmp.type == 0 and s.icmp.code == 0 and s.icmp.ident == 0x4242 and s.icmp.seq == 7
    assert s.payload == b"ping payload"
    assert s.ip.src == OUR_IP and s.ip.dst == PEER_IP and s.ip.ttl == 64
    assert h.stack.counters.icmp_echo_reply_sent == 1


def test_ping_with_bad_checksum_is_dropped():
    h = Harness()
    f = bytearray(echo_request())
    f[-1] ^= 1
    h.feed(bytes(f))
    h.expect_nothing()
    assert h.stack.counters.icmp_drop_bad_checksum == 1


def test_ip_bad_header_checksum_is_counted():
    h = Harness()
    f = bytearray(echo_request())
    f[14 + 10] ^= 0xFF
    h.feed(bytes(f))
    h.expect_nothing()
    assert h.stack.counters.ip_drop_bad_checksum == 1


def test_ip_for_another_host_is_counted():
    h = Harness()
    h.feed(echo_request(dst=ipv4.aton("192.0.2.3")))
    h.expect_nothing()
    assert h.stack.counters.ip_drop_not_for_us == 1


def test_martian_sources_are_dropped():
    # RFC 1122 3.2.1.3: "A host MUST silently discard an incoming datagram containing an IP source
    # address that is invalid by the rules of this section": 0/8 ("this network", only a source
    # while initializing), 127/8 (never outside a host), and, as Linux ip_route_input_slow /
    # fib_validate_source, our own address. No echo reply goes to them.
    h = Harness()
    for src in ("0.0.0.0", "0.1.2.3", "127.0.0.1", "127.9.9.9"):
        h.feed(echo_request(src=ipv4.aton(src)))
    h.feed(echo_request(src=OUR_IP))
    h.expect_nothing()
    c = h.stack.counters
    assert c.ip_drop_bad_source == 5 and c.icmp_echo_reply_sent == 0


def test_fragments_are_counted_and_dropped():
    h = Harness()
    f = bytearray(echo_request())
    f[14 + 6] = 0x20  # MF
    ipv4.fill_checksum(f, 14)
    h.feed(bytes(f))
    h.expect_nothing()
    assert h.stack.counters.ip_drop_fragment == 1


def test_frames_for_other_macs_and_ethertypes_are_counted():
    h = Harness()
    f = bytearray(echo_request())
    f[5] ^= 1
    h.feed(bytes(f))
    g = bytearray(echo_request())
    g[12] = 0x86
    g[13] = 0xDD
    h.feed(bytes(g))
    h.feed(b"\x00" * 10)
    h.expect_nothing()
    c = h.stack.counters
    assert c.eth_drop_not_for_us == 1 and c.eth_drop_ethertype == 1 and c.eth_drop_short == 1


def test_ethernet_padding_after_the_ip_datagram_is_ignored():
    h = Harness()
    tcb, _ = h.connect()
    f = h.segment(tcb, SYN | ACK, 9, tcb.iss + 1) + b"\x00" * 6
    h.feed(f)
    h.expect_tcp(ACK)
    assert tcb.state == tcp.ESTABLISHED


def test_truncated_and_garbage_frames_never_escape_poll():
    h = Harness()
    tcb, _ = h.connect()
    good = h.segment(tcb, SYN | ACK, 9, tcb.iss + 1, payload=b"data")
    for n in range(len(good)):
        h.feed(good[:n])
    seed = 12345
    for i in range(300):
        f = bytearray(good)
        for _ in range(4):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            f[14 + seed % (len(f) - 14)] = (seed >> 8) & 0xFF
        h.feed(bytes(f))
    assert h.stack.counters.eth_drop_exception == 0
    h.take()


def test_counters_snapshot_is_one_call():
    h = Harness()
    snap = h.stack.counters.snapshot()
    assert snap["arp_reply_sent"] == 1 and snap["tcp_rx"] == 0
    assert "arp_reply_sent" in h.stack.counters.nonzero()


class PreloadedDevice:
    """Preloaded frames, no allocation on receive or send."""

    def __init__(self, frames):
        self.mac = OUR_MAC
        self.mtu = 1500
        self.frames = frames
        self.i = 0
        self.sent = 0

    def recv_into(self, buf):
        if self.i >= len(self.frames):
            return 0
        f = self.frames[self.i]
        self.i += 1
        n = len(f)
        buf[:n] = f
        return n

    def send(self, buf, n):
        self.sent += 1


def _alloc_per_frame(h, frames, replies=None):
    import gc
    dev = PreloadedDevice(frames)
    stack = h.stack
    stack.device = dev
    stack.poll()  # warm up with the first frame
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for _ in range(len(frames) - 1):
            stack.poll()
        after = gc.mem_alloc()
    finally:
        gc.enable()
    want = len(frames) if replies is None else replies
    assert dev.sent == want, (dev.sent, want)
    return after - before


def test_no_heap_allocation_per_frame_on_micropython():
    if not MICROPYTHON:
        return  # gc.mem_alloc is MicroPython's; CPython has no equivalent to assert on
    h = Harness()
    arp = [h.arp_request_from_peer() for _ in range(6)]
    assert _alloc_per_frame(h, arp) == 0
    h = Harness()
    pings = [echo_request(1, i, b"x" * 56) for i in range(6)]
    assert _alloc_per_frame(h, pings) == 0
    h = Harness(delayed_ack_ms=0)  # an ACK for every segment
    tcb = h.establish(irs=5000)
    segs = []
    seq = 5001
    for i in range(6):
        segs.append(h.segment(tcb, ACK | PSH, seq, tcb.iss + 1, payload=b"d" * 100))
        seq += 100
    assert _alloc_per_frame(h, segs) == 0
    assert tcb.rx_len == 600
    # delayed ACKs: full-sized segments, an ACK for every second one (the first, warm-up, alone)
    h = Harness(rx_buffer=16384)
    tcb = h.establish(irs=5000)
    segs = []
    seq = 5001
    for i in range(7):
        segs.append(h.segment(tcb, ACK, seq, tcb.iss + 1, payload=b"e" * 1460))
        seq += 1460
    assert _alloc_per_frame(h, segs, replies=3) == 0
    assert tcb.rx_len == 7 * 1460 and tcb.delack_on


def test_tcp_in_an_ethernet_broadcast_frame_is_dropped():
    # Linux tcp_v4_rcv drops any segment whose frame was not addressed to this host alone
    h = Harness()
    tcb = h.establish(irs=1000)
    seg = bytearray(h.segment(tcb, ACK | PSH, 1001, tcb.iss + 1, payload=b"hi"))
    seg[0:6] = b"\xff\xff\xff\xff\xff\xff"
    h.feed(bytes(seg))
    h.expect_nothing()
    assert tcb.rx_len == 0 and h.stack.counters.tcp_drop_not_unicast == 1
    seg[0:6] = OUR_MAC
    h.feed(bytes(seg))
    assert tcb.rx_len == 2
