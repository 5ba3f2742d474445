# dual: cpython micropython
"""DHCP client (RFC 2131/2132), scripted: a fake device, an explicit clock, exact messages out, a
fake server's OFFER/ACK/NAK in (and a real dnsmasq OFFER/ACK replayed); retransmission backoff,
T1/T2/expiry, NAK, leases past the 2**30 ms tick wrap, malformed replies."""
from segment import OUR_MAC, PEER_IP, PEER_MAC, FakeDevice, eth, ip_packet, lcg_bytes
from tcpip import dhcp
from manualclock import ManualClock
from tcpip.dhcp import DhcpClient
from tcpip.stack import Stack
from wirecheck import heap_locked, unhex
from wirerep import ethernet
from wirerep import ipv4
from wirerep.arp import ArpRepr
from wirerep.udp import UdpRepr

SERVER = PEER_IP  # 192.0.2.1, also the router and the DNS server
SERVER_MAC = PEER_MAC
YIADDR = ipv4.aton("192.0.2.57")
BCAST = b"\xff\xff\xff\xff"
ZERO = b"\x00\x00\x00\x00"
DNS2 = ipv4.aton("192.0.2.53")
MAGIC = b"\x63\x82\x53\x63"


# -- what the server sends -------------------------------------------------------------------------
def opt(code, value):
    return bytes((code, len(value))) + bytes(value)


def u32(v):
    return bytes(((v >> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))


def bootp_reply(xid, msg_type, yiaddr=YIADDR, options=None, chaddr=OUR_MAC, lease=120, server=SERVER,
                mask=b"\xff\xff\xff\x00", router=SERVER, dns=(SERVER, DNS2), t1=None, t2=None):
    """A BOOTREPLY with a valid option list (options=None: the usual ones for msg_type)."""
    m = bytearray(240)
    m[0] = 2
    m[1] = 1
    m[2] = 6
    m[4:8] = xid
    m[16:20] = yiaddr
    m[20:24] = SERVER
    m[28:34] = chaddr
    m[236:240] = MAGIC
    if options is None:
        options = opt(53, bytes((msg_type,)))
        if server is not None:
            options += opt(54, server)
        if msg_type != dhcp.NAK:
            if lease is not None:
                options += opt(51, u32(lease))
            if t1 is not None:
                options += opt(58, u32(t1))
            if t2 is not None:
                options += opt(59, u32(t2))
            if mask is not None:
                options += opt(1, mask)
            if router is not None:
                options += opt(3, router)
            if dns:
                options += opt(6, b"".join(dns))
        options += b"\xff"
    return bytes(m) + options


def server_frame(payload, dst=YIADDR, eth_dst=OUR_MAC, src=SERVER):
    d = bytearray(8 + len(payload))
    d[8:] = payload
    UdpRepr(67, 68, len(payload)).emit(d, 0, src, dst)
    return eth(eth_dst, SERVER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(src, dst, ipv4.PROTO_UDP, bytes(d)))


# -- what we send, decoded -------------------------------------------------------------------------
class Msg:
    def __init__(self, frame):
        self.frame = frame
        self.eth = ethernet.EthernetRepr.parse(frame, 0, len(frame))
        assert self.eth.ethertype == 0x0800, frame
        self.ip = ipv4.Ipv4Repr.parse(frame, 14, len(frame) - 14)
        assert self.ip.proto == 17
        self.udp = UdpRepr.parse(frame, 34, self.ip.payload_len, self.ip.src, self.ip.dst)
        assert self.udp.src_port == 68 and self.udp.dst_port == 67
        p = bytes(frame[42:42 + self.udp.payload_len])
        self.payload = p
        self.op = p[0]
        self.xid = p[4:8]
        self.secs = p[8] << 8 | p[9]
        self.flags = p[10] << 8 | p[11]
        self.ciaddr = p[12:16]
        self.chaddr = p[28:44]
        assert p[1] == 1 and p[2] == 6 and p[3] == 0 and p[16:28] == bytes(12) and p[44:236] == bytes(192)
        assert p[236:240] == MAGIC
        self.options = []
        i = 240
        while p[i] != 255:
            self.options.append((p[i], p[i + 2:i + 2 + p[i + 1]]))
            i += 2 + p[i + 1]
        assert p[i + 1:] == bytes(len(p) - i - 1)  # zero padding only
        self.type = self.options[0][1][0]

    def option(self, code):
        for c, v in self.options:
            if c == code:
                return v
        return None

    def __repr__(self):
        return "Msg(type=%d, xid=%r, dst=%s)" % (self.type, self.xid, ipv4.ntoa(self.ip.dst))


class DhcpHarness:
    def __init__(self, start_ms=5000, hostname="board", **kw):
        self.clock = ManualClock(start_ms)
        self.dev = FakeDevice(self.clock)
        self.stack = Stack(self.dev, self.clock)
        self.events = []
        self.stack.trace = self._trace
        self.client = DhcpClient(self.stack, hostname=hostname, **kw)
        self.arp_asked = 0

    def _trace(self, event, tcb, detail):
        self.events.append((self.clock.ticks_ms(), event, detail))

    def _poll(self):
        self.stack.poll()
        for _ in range(3):  # the server answers ARP for itself, as a real host does
            keep = []
            asked = False
            for f in self.dev.sent:
                if f[12] == 8 and f[13] == 6:
                    a = ArpRepr.parse(f, 14, 28)
                    assert a.oper == 1 and a.tpa == SERVER, a
                    asked = True
                else:
                    keep.append(f)
            self.dev.sent = keep
            if not asked:
                return
            self.arp_asked += 1
            r = bytearray(28)
            ArpRepr(2, SERVER_MAC, SERVER, OUR_MAC, self.stack.route.addr).emit(r, 0)
            self.dev.inbox.append(eth(OUR_MAC, SERVER_MAC, ethernet.ETHERTYPE_ARP, bytes(r)))
            self.stack.poll()

    def start(self):
        self.client.start()
        self._poll()
        return self.one()

    def feed(self, frame):
        self.dev.inbox.append(frame)
        self._poll()

    def advance(self, ms):
        self.clock.advance(ms)
        self._poll()

    def step_until_sent(self, limit_ms, step=10):
        """Advance in steps until something is sent; returns the ms waited (bounded by limit_ms)."""
        waited = 0
        while waited < limit_ms:
            self.advance(step)
            waited += step
            if self.dev.sent:
                return waited
        return None

    def take(self):
        out = [Msg(f) for f in self.dev.sent]
        self.dev.sent = []
        return out

    def one(self):
        out = self.take()
        assert len(out) == 1, out
        return out[0]

    def expect_nothing(self):
        assert self.dev.sent == [], self.take()

    def bind(self, **reply):
        """DISCOVER -> OFFER -> REQUEST -> ACK; returns the REQUEST that was acknowledged."""
        d = self.start()
        self.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
        req = self.one()
        self.feed(server_frame(bootp_reply(req.xid, dhcp.ACK, **reply)))
        assert self.client.state == dhcp.BOUND, self.client.state_name()
        self.expect_nothing()
        return req


def expected_options(msg_type, extra=b""):
    return (opt(53, bytes((msg_type,))) + opt(61, b"\x01" + OUR_MAC) + extra + opt(12, b"board")
            + opt(55, bytes((1, 3, 6, 51, 58, 59))) + b"\xff")


# -- DISCOVER and its retransmission -------------------------------------------------------------
def test_discover_is_exact():
    h = DhcpHarness()
    assert h.client.state == dhcp.STOPPED
    m = h.start()
    assert h.client.state == dhcp.SELECTING
    assert m.eth.dst == ethernet.BROADCAST and m.eth.src == OUR_MAC
    assert m.ip.src == ZERO and m.ip.dst == BCAST and m.ip.ttl == 64
    want = bytearray(240)
    want[0:4] = b"\x01\x01\x06\x00"
    want[4:8] = h.client.xid
    want[28:34] = OUR_MAC
    want[236:240] = MAGIC
    want += expected_options(dhcp.DISCOVER)
    want += bytes(300 - len(want))  # RFC 1542: padded to the 300-byte BOOTP minimum
    assert m.payload == bytes(want)
    assert m.xid == bytes(h.client.xid) and m.secs == 0 and m.flags == 0
    assert h.stack.counters.dhcp_tx == 1


def test_broadcast_flag_and_client_id_options():
    h = DhcpHarness(hostname=None, broadcast_flag=True, client_id=b"\x00board-7")
    m = h.start()
    assert m.flags == 0x8000
    assert m.options == [(53, b"\x01"), (61, b"\x00board-7"), (55, bytes((1, 3, 6, 51, 58, 59)))]


def test_discover_backoff_4_8_16_32_64_then_a_new_round():
    h = DhcpHarness(jitter_ms=0)
    first = h.start()
    waits = []
    secs = [first.secs]
    for _ in range(4):
        waits.append(h.step_until_sent(70000, step=1000))
        m = h.one()
        assert m.type == dhcp.DISCOVER and m.xid == first.xid  # same xid within the round
        secs.append(m.secs)
    assert waits == [4000, 8000, 16000, 32000], waits
    assert secs == [0, 4, 12, 28, 60], secs
    # the fifth transmission waits 64 s, then the exchange is given up: INIT, a new xid
    h.advance(63999)
    h.expect_nothing()
    h.advance(1)
    m = h.one()
    assert m.type == dhcp.DISCOVER and m.xid != first.xid and m.secs == 0
    assert h.stack.counters.dhcp_restart == 1 and h.stack.counters.dhcp_retransmit == 4
    assert h.client.state == dhcp.SELECTING


def test_backoff_is_randomised_within_one_second():
    nominal = [4000, 8000, 16000, 32000, 64000]
    seen_off_nominal = False
    for _ in range(3):
        h = DhcpHarness()
        first = h.start()
        for k in range(5):
            w = h.step_until_sent(70000, step=10)
            assert w is not None
            assert nominal[k] - 1000 <= w <= nominal[k] + 1000 + 10, (k, w)
            if w != nominal[k]:
                seen_off_nominal = True
            m = h.one()
            if k < 4:
                assert m.xid == first.xid
            else:
                assert m.xid != first.xid  # the round ended: new xid
    assert seen_off_nominal


def test_base_scales_the_whole_series():
    h = DhcpHarness(base_ms=40)
    h.start()
    for k, nominal in enumerate((40, 80, 160, 320, 640)):
        w = h.step_until_sent(2000, step=1)
        assert nominal - 10 <= w <= nominal + 10, (k, w)
        h.one()


# -- OFFER, REQUEST, ACK --------------------------------------------------------------------------
def test_offer_request_ack_configures_the_stack():
    h = DhcpHarness()
    d = h.start()
    h.advance(1500)
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))  # unicast to yiaddr, as dnsmasq does
    assert h.client.state == dhcp.REQUESTING
    req = h.one()
    assert req.type == dhcp.REQUEST and req.xid == d.xid
    assert req.eth.dst == ethernet.BROADCAST and req.ip.src == ZERO and req.ip.dst == BCAST
    assert req.ciaddr == ZERO and req.secs == 1
    assert req.options == [(53, b"\x03"), (61, b"\x01" + OUR_MAC), (50, YIADDR), (54, SERVER),
                           (12, b"board"), (55, bytes((1, 3, 6, 51, 58, 59)))]
    h.advance(200)
    h.feed(server_frame(bootp_reply(d.xid, dhcp.ACK)))
    c = h.client
    s = h.stack
    assert c.state == dhcp.BOUND and c.bound()
    assert s.route.addr == YIADDR and s.route.prefix_len == 24 and s.route.gateway == SERVER
    assert s.dns_servers == [SERVER, DNS2] and c.dns == [SERVER, DNS2]
    assert c.addr == YIADDR and c.gateway == SERVER and c.prefix_len == 24
    assert c.lease_s == 120 and c.t1_s == 60 and c.t2_s == 105
    assert s.counters.dhcp_offer == 1 and s.counters.dhcp_ack == 1
    h.expect_nothing()
    names = [e[2] for e in h.events if e[1] == "dhcp"]
    assert "state SELECTING" in names and "state REQUESTING" in names and "state BOUND" in names
    assert names[-1].startswith("ACK 192.0.2.57/24 gw 192.0.2.1 dns 192.0.2.1,192.0.2.53 lease 120s")


# A real exchange with dnsmasq 2.90 (dhcp-range 192.0.2.50-99, 120 s, dhcp-option 58,4 and 59,8):
# its OFFER and ACK to MAC 5a:48:fa:d0:76:d7, xid b5a34c97, unicast to 192.0.2.73; and the REQUEST
# it acknowledged (secs 3: dnsmasq pings an address 3 s before offering it).
REAL_MAC = unhex("5a48fad076d7")
REAL_XID = unhex("b5a34c97")
REAL_OFFER = unhex("""
5a48fad076d7f6be5fef9fec080045c00148e309000040111191c0000201c0000249004300440134844902010600b5a3
4c970000000000000000c0000249c0000201000000005a48fad076d7""" + "00" * 202 + """
638253633501023604c00002013304000000783a04000000043b04000000080104ffffff001c04c00002ff0604c00002
010304c0000201ff0000000000000000""")
REAL_ACK = unhex("""
5a48fad076d7f6be5fef9fec080045c00148e30a000040111190c0000201c0000249004300440134814602010600b5a3
4c970003000000000000c0000249c0000201000000005a48fad076d7""" + "00" * 202 + """
638253633501053604c00002013304000000783a04000000043b04000000080104ffffff001c04c00002ff0604c00002
010304c0000201ff0000000000000000""")
REAL_REQUEST_PAYLOAD = unhex("""
01010600b5a34c9700030000000000000000000000000000000000005a48fad076d7""" + "00" * 202 + """
638253633501033d07015a48fad076d73204c00002493604c00002010c0a74637069702d746573743706010306333a3b
ff""" + "00" * 15)


def test_real_dnsmasq_offer_and_ack():
    clock = ManualClock(0)
    dev = FakeDevice(clock, mac=REAL_MAC)
    stack = Stack(dev, clock)
    c = DhcpClient(stack, hostname="tcpip-test", jitter_ms=0)
    c.start()
    dev.sent = []
    c.xid[:] = REAL_XID  # as if our random xid had been dnsmasq's
    clock.advance(3000)
    assert len(REAL_OFFER) == 342 and len(REAL_ACK) == 342
    dev.inbox.append(REAL_OFFER)
    stack.poll()
    assert len(dev.sent) == 1
    req = dev.sent[0]
    assert bytes(req[42:342]) == REAL_REQUEST_PAYLOAD
    dev.inbox.append(REAL_ACK)
    stack.poll()
    assert c.state == dhcp.BOUND
    assert stack.route.addr == ipv4.aton("192.0.2.73") and stack.route.prefix_len == 24
    assert stack.route.gateway == SERVER and stack.dns_servers == [SERVER]
    assert (c.lease_s, c.t1_s, c.t2_s) == (120, 4, 8)
    assert stack.counters.udp_drop_bad_checksum == 0 and stack.counters.dhcp_drop_malformed == 0


def test_first_offer_wins_later_offers_ignored():
    h = DhcpHarness()
    d = h.start()
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
    h.one()
    other = ipv4.aton("192.0.2.9")
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER, yiaddr=ipv4.aton("192.0.2.99"), server=other)))
    h.expect_nothing()
    assert h.stack.counters.dhcp_drop_state == 1
    # an ACK from the server we did not select is not ours
    h.feed(server_frame(bootp_reply(d.xid, dhcp.ACK, server=other)))
    assert h.client.state == dhcp.REQUESTING and h.stack.counters.dhcp_drop_not_ours == 1


def test_request_retransmits_then_restarts_from_init():
    h = DhcpHarness(jitter_ms=0)
    d = h.start()
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
    h.one()
    waits = []
    for _ in range(4):
        waits.append(h.step_until_sent(70000, step=1000))
        m = h.one()
        assert m.type == dhcp.REQUEST and m.xid == d.xid and m.option(50) == YIADDR
    assert waits == [4000, 8000, 16000, 32000]
    h.advance(64000)
    m = h.one()
    assert m.type == dhcp.DISCOVER and m.xid != d.xid
    assert h.client.state == dhcp.SELECTING and h.stack.counters.dhcp_restart == 1


def test_nak_while_requesting_restarts():
    h = DhcpHarness()
    d = h.start()
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
    h.one()
    h.feed(server_frame(bootp_reply(d.xid, dhcp.NAK, yiaddr=ZERO), dst=BCAST, eth_dst=ethernet.BROADCAST))
    m = h.one()
    assert m.type == dhcp.DISCOVER and m.xid != d.xid
    assert h.client.state == dhcp.SELECTING and h.stack.counters.dhcp_nak == 1
    assert not h.stack.route.configured()


# -- the lease: T1, T2, expiry --------------------------------------------------------------------
def test_renew_at_t1_is_unicast_and_the_ack_restarts_the_lease():
    h = DhcpHarness()
    h.bind()  # the REQUEST left at 5000 ms: T1 at 65000, T2 at 110000, expiry at 125000
    h.advance(60000 - 1)
    h.expect_nothing()
    h.advance(1)
    assert h.client.state == dhcp.RENEWING
    m = h.one()
    assert h.arp_asked == 1  # the server's MAC was resolved first
    assert m.type == dhcp.REQUEST and m.eth.dst == SERVER_MAC
    assert m.ip.src == YIADDR and m.ip.dst == SERVER and m.ciaddr == YIADDR
    assert m.option(50) is None and m.option(54) is None and m.option(55) is not None
    h.advance(30)
    h.feed(server_frame(bootp_reply(m.xid, dhcp.ACK, lease=200)))
    assert h.client.state == dhcp.BOUND and h.client.lease_s == 200 and h.client.t1_s == 100
    assert h.stack.counters.dhcp_renew == 1
    # the new lease began when the renewing REQUEST left (65000): next T1 at 165000
    h.advance(100000 - 30 - 1)
    h.expect_nothing()
    h.advance(1)
    assert h.one().type == dhcp.REQUEST and h.client.state == dhcp.RENEWING


def test_unanswered_renew_rebinds_at_t2_then_expires():
    h = DhcpHarness()
    h.bind()
    h.advance(60000)
    renew = h.one()
    assert h.client.state == dhcp.RENEWING
    # retransmission would be max(60, (105 - 60) / 2) = 60 s later: past T2, so T2 comes first
    h.advance(45000 - 1)
    h.expect_nothing()
    h.advance(1)
    m = h.one()
    assert h.client.state == dhcp.REBINDING and h.stack.counters.dhcp_rebind == 1
    assert m.type == dhcp.REQUEST and m.eth.dst == ethernet.BROADCAST and m.ip.dst == BCAST
    assert m.ip.src == YIADDR and m.ciaddr == YIADDR and m.xid != renew.xid
    h.advance(15000 - 1)
    h.expect_nothing()
    assert h.stack.route.addr == YIADDR
    h.advance(1)
    # lease expired: unconfigured, DNS servers gone, DISCOVER from 0.0.0.0
    m = h.one()
    assert m.type == dhcp.DISCOVER and m.ip.src == ZERO
    assert not h.stack.route.configured() and h.stack.route.gateway is None
    assert h.stack.dns_servers == [] and h.client.addr is None
    assert h.client.state == dhcp.SELECTING and h.stack.counters.dhcp_lease_expired == 1


def test_renewing_retransmits_at_half_the_time_to_t2_min_60s():
    h = DhcpHarness()
    h.bind(lease=1000)  # T1 500, T2 875
    times = []
    start = h.clock.ticks_ms()
    for _ in range(5):
        h.step_until_sent(600000, step=1000)
        m = h.one()
        times.append((h.clock.ticks_ms() - start) // 1000)
        assert m.ip.dst == (SERVER if h.client.state == dhcp.RENEWING else BCAST)
    # 500 (T1), +max(60, 187), +max(60, 94), +max(60, 47), then T2 (875) before 841 + 60;
    # in REBINDING: +max(60, (1000 - 875) / 2 = 62)
    assert times == [500, 687, 781, 841, 875], times
    h.step_until_sent(600000, step=1000)
    assert (h.clock.ticks_ms() - start) // 1000 == 937
    assert h.one().ip.dst == BCAST


def test_nak_while_renewing_unconfigures():
    h = DhcpHarness()
    h.bind()
    h.advance(60000)
    m = h.one()
    h.feed(server_frame(bootp_reply(m.xid, dhcp.NAK, yiaddr=ZERO)))
    d = h.one()
    assert d.type == dhcp.DISCOVER and d.ip.src == ZERO
    assert not h.stack.route.configured() and h.stack.dns_servers == []


def test_t1_t2_options_and_their_sanity():
    h = DhcpHarness()
    h.bind(lease=1000, t1=100, t2=200)
    assert (h.client.t1_s, h.client.t2_s) == (100, 200)
    h = DhcpHarness()
    h.bind(lease=1000, t1=300, t2=200)  # T1 >= T2: 0.5 lease is no better: T1 = T2
    assert (h.client.t1_s, h.client.t2_s) == (200, 200)
    h = DhcpHarness()
    h.bind(lease=1000, t1=100, t2=5000)  # T2 past the lease: both defaults
    assert (h.client.t1_s, h.client.t2_s) == (100, 875)


def test_infinite_lease_never_renews():
    h = DhcpHarness()
    h.bind(lease=0xFFFFFFFF)
    for _ in range(30):
        h.advance(20 * 24 * 3600 * 1000 // 30)  # twenty days, past two tick wraps
    h.expect_nothing()
    assert h.client.state == dhcp.BOUND and h.stack.route.addr == YIADDR


def test_thirty_day_lease_across_the_tick_wrap():
    h = DhcpHarness(start_ms=(1 << 30) - 20000)
    h.bind(lease=30 * 24 * 3600)  # T1 at 15 days: the tick counter wraps on the way (12.4 days)
    six_hours = 6 * 3600 * 1000
    for _ in range(59):
        h.advance(six_hours)
    h.advance(six_hours - 1000)
    h.expect_nothing()
    assert h.client.state == dhcp.BOUND
    h.advance(1000)
    m = h.one()
    assert h.client.state == dhcp.RENEWING and m.ip.dst == SERVER


def test_ack_details_mask_router_dns():
    h = DhcpHarness()
    h.bind(mask=None, dns=(SERVER, DNS2, ipv4.aton("192.0.2.54"), ipv4.aton("192.0.2.55")))
    assert h.stack.route.prefix_len == 24  # no mask: classful (192/8 is class C)
    assert len(h.stack.dns_servers) == 3
    h = DhcpHarness()
    h.bind(mask=b"\xff\x00\xff\x00", router=ipv4.aton("198.51.100.1"))  # non-contiguous; router off-link
    assert h.stack.route.prefix_len == 24 and h.stack.route.gateway is None
    assert h.stack.counters.dhcp_gateway_ignored == 1 and h.stack.route.addr == YIADDR
    h = DhcpHarness()
    h.bind(mask=b"\xff\xff\x00\x00", router=None, dns=())
    assert h.stack.route.prefix_len == 16 and h.stack.route.gateway is None and h.stack.dns_servers == []


def test_ack_without_lease_time_is_dropped():
    h = DhcpHarness()
    d = h.start()
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
    h.one()
    h.feed(server_frame(bootp_reply(d.xid, dhcp.ACK, lease=None)))
    assert h.client.state == dhcp.REQUESTING and h.stack.counters.dhcp_drop_malformed == 1


def test_release_sends_release_and_unconfigures():
    h = DhcpHarness()
    h.bind()
    h.client.release()
    h._poll()
    m = h.one()
    assert m.type == dhcp.RELEASE and m.ip.dst == SERVER and m.ip.src == YIADDR and m.ciaddr == YIADDR
    assert m.options == [(53, b"\x07"), (61, b"\x01" + OUR_MAC), (54, SERVER)]
    assert h.client.state == dhcp.STOPPED and not h.stack.route.configured()
    assert not h.stack.udp.is_bound(68)
    h.advance(200000)
    h.expect_nothing()


# -- what is not ours, malformed input --------------------------------------------------------------
def test_not_ours_and_malformed_replies_are_counted():
    h = DhcpHarness()
    d = h.start()
    c = h.stack.counters
    other_xid = bytes((d.xid[0] ^ 1,)) + d.xid[1:]
    h.feed(server_frame(bootp_reply(other_xid, dhcp.OFFER)))
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER, chaddr=b"\x02\x00\x00\x00\x00\x99"),
                        dst=BCAST, eth_dst=ethernet.BROADCAST))
    assert c.dhcp_drop_not_ours == 2
    good = bootp_reply(d.xid, dhcp.OFFER)
    bad_cookie = bytearray(good)
    bad_cookie[236] = 0
    h.feed(server_frame(bytes(bad_cookie)))
    runaway = good[:240] + b"\x35\x01\x02\x36\x04\xc0\x00\x02\x01\x03\x20\xc0"  # router runs past the end
    h.feed(server_frame(runaway))
    h.feed(server_frame(good[:200]))
    no_server_id = good[:240] + opt(53, b"\x02") + b"\xff"
    h.feed(server_frame(no_server_id))
    bad_yiaddr = bytearray(good)
    bad_yiaddr[16:20] = BCAST
    h.feed(server_frame(bytes(bad_yiaddr)))
    request_op = bytearray(good)
    request_op[0] = 1
    h.feed(server_frame(bytes(request_op)))
    assert c.dhcp_drop_malformed == 5, c.dhcp_drop_malformed
    assert c.dhcp_bad_address == 1  # the broadcast yiaddr: a well-formed offer of a bad address
    h.expect_nothing()
    assert h.client.state == dhcp.SELECTING
    # pads and an option past END are fine
    padded = good[:240] + b"\x00\x00" + good[240:] + b"\x99\x99"
    h.feed(server_frame(padded))
    assert h.client.state == dhcp.REQUESTING
    assert c.eth_drop_exception == 0


def test_fuzzed_replies_never_raise():
    rnd = lcg_bytes(4242)
    for round_ in range(3):
        h = DhcpHarness()
        d = h.start()
        h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
        req = h.one()
        base = bytearray(bootp_reply(req.xid, dhcp.ACK, t1=30, t2=60))
        for _ in range(150):
            m = bytearray(base)
            for _ in range(1 + rnd() % 6):
                i = 240 + rnd() % (len(m) - 240)  # options: where the parser does its work
                m[i] = rnd()
            if rnd() & 1:
                m = m[:240 + rnd() % (len(m) - 240)]
            h.feed(server_frame(bytes(m)))
            h.take()
            if h.client.state != dhcp.REQUESTING:
                break
        assert h.stack.counters.eth_drop_exception == 0, round_


# -- run() -----------------------------------------------------------------------------------------
class ServerDevice(FakeDevice):
    """A FakeDevice with a DHCP server behind it that answers each DISCOVER and REQUEST."""

    def __init__(self, clock, answer=True):
        FakeDevice.__init__(self, clock)
        self.answer = answer
        self.seen = []

    def send(self, buf, n):
        FakeDevice.send(self, buf, n)
        f = self.sent[-1]
        if f[12] != 8 or f[13] != 0 or f[23] != 17:
            return
        m = Msg(f)
        self.seen.append(m.type)
        if not self.answer:
            return
        t = dhcp.OFFER if m.type == dhcp.DISCOVER else dhcp.ACK
        self.inbox.append(server_frame(bootp_reply(m.xid, t)))


def test_run_returns_true_once_bound():
    clock = ManualClock(0)
    dev = ServerDevice(clock)
    stack = Stack(dev, clock)
    c = DhcpClient(stack)
    assert c.run(10000)
    assert dev.seen == [dhcp.DISCOVER, dhcp.REQUEST]
    assert c.state == dhcp.BOUND and stack.route.addr == YIADDR
    assert clock.ticks_ms() < 100


def test_run_gives_up_after_its_timeout_and_keeps_trying():
    clock = ManualClock(0)
    dev = ServerDevice(clock, answer=False)
    stack = Stack(dev, clock)
    c = DhcpClient(stack, jitter_ms=0)
    assert not c.run(10000)
    assert 10000 <= clock.ticks_ms() <= 11000
    assert dev.seen == [dhcp.DISCOVER, dhcp.DISCOVER]  # at 0 and 4 s; the next is due at 12 s
    assert c.state == dhcp.SELECTING
    dev.answer = True
    assert c.run(5000)
    assert c.state == dhcp.BOUND


def test_polling_a_bound_client_allocates_nothing():
    h = DhcpHarness()
    h.bind()
    assert h.client in h.stack.udp.timers

    def idle():
        for _ in range(200):
            h.clock.advance(250)  # 50 s: below T1 (60 s), every poll folds the lease clock
            h.stack.poll()
            h.stack.next_timer_ms()

    heap_locked(idle)  # MicroPython: MemoryError if the timer path allocated
    assert h.client.state == dhcp.BOUND and h.client._elapsed_s == 50
    assert h.dev.sent == []


# -- addresses that cannot be ours (issue 8, item 9) --------------------------------------------------
# (yiaddr, mask): each one unusable as our address with that mask (None: no option 1, classful)
BAD_LEASES = (
    ("192.0.2.255", b"\xff\xff\xff\x00"),  # the subnet's broadcast
    ("192.0.2.0", b"\xff\xff\xff\x00"),  # its network address
    ("192.0.2.127", b"\xff\xff\xff\x80"),  # broadcast of a /25
    ("192.0.2.64", b"\xff\xff\xff\xc0"),  # network of a /26
    ("192.0.2.3", b"\xff\xff\xff\xfc"),  # broadcast of a /30
    ("10.255.255.255", None),  # classful /8 broadcast
    ("172.16.0.0", None),  # classful /16 network
    ("192.0.2.255", b"\xff\xff\xff\xff"),  # /32 falls back to the classful /24: its broadcast
    ("0.0.0.0", b"\xff\xff\xff\x00"),
    ("0.1.2.3", b"\xff\x00\x00\x00"),  # 0/8, "this network"
    ("127.0.0.5", b"\xff\x00\x00\x00"),
    ("224.0.0.9", b"\xff\xff\xff\x00"),
    ("239.1.2.3", b"\xff\xff\xff\x00"),
    ("240.0.0.1", b"\xff\xff\xff\x00"),  # 240/4 reserved
    ("255.255.255.255", b"\xff\xff\xff\x00"),
)


def test_offer_of_an_unusable_address_is_ignored_and_selecting_goes_on():
    for addr, mask in BAD_LEASES:
        h = DhcpHarness(jitter_ms=0)
        d = h.start()
        h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER, yiaddr=ipv4.aton(addr), mask=mask), dst=BCAST,
                            eth_dst=ethernet.BROADCAST))
        h.expect_nothing()  # no REQUEST for it
        c = h.stack.counters
        assert h.client.state == dhcp.SELECTING, addr
        assert c.dhcp_bad_address == 1 and c.dhcp_offer == 0 and c.dhcp_drop_malformed == 0, addr
        # a sane OFFER (another server's, or the same after the next DISCOVER) is still taken
        assert h.step_until_sent(5000, step=100) == 4000
        assert h.one().type == dhcp.DISCOVER
        h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
        req = h.one()
        assert req.type == dhcp.REQUEST and req.option(50) == YIADDR
        h.feed(server_frame(bootp_reply(req.xid, dhcp.ACK)))
        assert h.client.state == dhcp.BOUND and h.stack.route.addr == YIADDR


def test_unusable_ack_while_requesting_is_declined_then_init_after_10_s():
    for addr, mask in BAD_LEASES:
        h = DhcpHarness(jitter_ms=0)
        d = h.start()
        h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER)))
        h.one()
        bad = ipv4.aton(addr)
        h.feed(server_frame(bootp_reply(d.xid, dhcp.ACK, yiaddr=bad, mask=mask), dst=BCAST,
                            eth_dst=ethernet.BROADCAST))
        c = h.stack.counters
        assert not h.stack.route.configured() and h.client.addr is None, addr
        assert c.dhcp_bad_address == 1 and c.dhcp_ack == 0 and c.dhcp_decline == 1, addr
        # RFC 2131 4.4.4 / table 5: broadcast, from 0.0.0.0, requested IP and server id, no params
        m = h.one()
        assert m.type == dhcp.DECLINE and m.ip.src == ZERO and m.ip.dst == BCAST, addr
        assert m.eth.dst == ethernet.BROADCAST and m.ciaddr == ZERO and m.secs == 0 and m.flags == 0
        assert m.options == [(53, b"\x04"), (61, b"\x01" + OUR_MAC), (50, bad), (54, SERVER)], m.options
        assert h.client.state == dhcp.INIT
        # RFC 2131 3.1.5: at least ten seconds before the configuration starts again
        assert h.step_until_sent(20000, step=100) == 10000
        m = h.one()
        assert m.type == dhcp.DISCOVER and m.xid != d.xid and h.client.state == dhcp.SELECTING
        h.feed(server_frame(bootp_reply(m.xid, dhcp.OFFER)))
        req = h.one()
        h.feed(server_frame(bootp_reply(req.xid, dhcp.ACK)))
        assert h.client.state == dhcp.BOUND and h.stack.route.addr == YIADDR


def test_decline_keeps_the_broadcast_flag_clear_and_the_init_wait_scales():
    h = DhcpHarness(base_ms=40, jitter_ms=0, broadcast_flag=True)
    d = h.start()
    assert d.flags == 0x8000
    h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER), dst=BCAST, eth_dst=ethernet.BROADCAST))
    h.one()
    h.feed(server_frame(bootp_reply(d.xid, dhcp.ACK, yiaddr=ipv4.aton("192.0.2.255")), dst=BCAST,
                        eth_dst=ethernet.BROADCAST))
    m = h.one()
    assert m.type == dhcp.DECLINE and m.flags == 0
    assert [e[2] for e in h.events if e[1] == "dhcp"][-2:] == ["DECLINE 192.0.2.255", "state INIT"]
    assert h.client.next_deadline(h.clock.ticks_ms(), 1 << 20) == 100  # 2.5 x base_ms
    assert h.step_until_sent(1000, step=10) == 100
    assert h.one().type == dhcp.DISCOVER
    h.client.stop()
    assert h.client.state == dhcp.STOPPED


def test_unusable_ack_while_renewing_keeps_the_lease():
    h = DhcpHarness()
    h.bind()
    h.advance(60000)  # T1: RENEWING
    m = h.one()
    assert m.type == dhcp.REQUEST and h.client.state == dhcp.RENEWING
    h.feed(server_frame(bootp_reply(m.xid, dhcp.ACK, yiaddr=ipv4.aton("192.0.2.0"))))
    c = h.stack.counters
    assert c.dhcp_bad_address == 1 and c.dhcp_decline == 0
    h.expect_nothing()
    assert h.client.state == dhcp.RENEWING and h.stack.route.addr == YIADDR
    # the renewal goes on: a sane ACK renews
    h.feed(server_frame(bootp_reply(m.xid, dhcp.ACK)))
    assert h.client.state == dhcp.BOUND and h.stack.route.addr == YIADDR


def test_usable_edges_of_a_prefix_are_taken():
    # the addresses next to the network and broadcast addresses, and both of a /31 (RFC 3021)
    for addr, mask, plen in (("192.0.2.1", b"\xff\xff\xff\x00", 24), ("192.0.2.254", b"\xff\xff\xff\x00", 24),
                             ("192.0.2.2", b"\xff\xff\xff\xfc", 30), ("10.0.0.1", None, 8),
                             ("192.0.2.0", b"\xff\xff\xff\xfe", 31), ("192.0.2.1", b"\xff\xff\xff\xfe", 31),
                             ("192.0.2.77", b"\xff\xff\xff\xff", 24)):
        a = ipv4.aton(addr)
        router = ipv4.aton("192.0.2.1") if plen != 8 else ipv4.aton("10.0.0.254")
        if addr == "192.0.2.1":
            router = ipv4.aton("192.0.2.0") if plen == 31 else ipv4.aton("192.0.2.2")
        h = DhcpHarness()
        d = h.start()
        h.feed(server_frame(bootp_reply(d.xid, dhcp.OFFER, yiaddr=a, mask=mask), dst=BCAST,
                            eth_dst=ethernet.BROADCAST))
        req = h.one()
        assert req.option(50) == a, addr
        h.feed(server_frame(bootp_reply(req.xid, dhcp.ACK, yiaddr=a, mask=mask, router=router), dst=BCAST,
                            eth_dst=ethernet.BROADCAST))
        r = h.stack.route
        assert h.client.state == dhcp.BOUND and r.addr == a and r.prefix_len == plen, (addr, r.prefix_len)
        assert r.gateway == router and h.stack.counters.dhcp_bad_address == 0, addr
