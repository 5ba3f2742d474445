# dual: cpython micropython
"""DNS resolver (RFC 1035), scripted: exact queries, answers from a fake server (and dnsmasq's real
ones replayed), CNAME chains, the TTL cache, NXDOMAIN/NODATA, per-try timeouts and failover on the
explicit clock, replies that must be ignored, and malformed replies (compression loops, pointers
past the end, truncation, random damage) that must never raise."""
import sys

from segment import OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, FakeDevice, eth, ip_packet, lcg_bytes
from tcpip import dns
from tcpip import errors
from tcpip import socket as tsocket
from manualclock import ManualClock
from tcpip.dns import Resolver
from tcpip.stack import Stack
from wirecheck import unhex
from wirerep import ethernet
from wirerep import ipv4
from wirerep.arp import ArpRepr
from wirerep.icmp import IcmpRepr
from wirerep.udp import UdpRepr

MICROPYTHON = sys.implementation.name == "micropython"
S1 = PEER_IP  # 192.0.2.1
S2 = ipv4.aton("192.0.2.53")
WEB = ipv4.aton("192.0.2.80")
STRANGER = ipv4.aton("192.0.2.66")  # not one of our servers
MACS = {S1: PEER_MAC, S2: b"\x02\x00\x00\x00\x00\x53", STRANGER: b"\x02\x00\x00\x00\x00\x66"}


# -- messages --------------------------------------------------------------------------------------
def wire_name(name):
    out = b""
    for label in name.split("."):
        out += bytes((len(label),)) + label.encode()
    return out + b"\x00"


def u16(v):
    return bytes((v >> 8 & 0xFF, v & 0xFF))


def u32(v):
    return bytes((v >> 24 & 0xFF, v >> 16 & 0xFF, v >> 8 & 0xFF, v & 0xFF))


def rr(owner, rtype, ttl, rdata, rclass=1):
    """A resource record; owner is wire bytes (a name, or a 2-byte pointer)."""
    return owner + u16(rtype) + u16(rclass) + u32(ttl) + u16(len(rdata)) + rdata


def message(qid, qname, answers=(), rcode=0, flags=0x8180, qtype=1, qclass=1, qdcount=1, question=None):
    q = question if question is not None else wire_name(qname) + u16(qtype) + u16(qclass)
    return (u16(qid) + u16(flags | rcode) + u16(qdcount) + u16(len(answers)) + u16(0) + u16(0) + q
            + b"".join(answers))


PTR_Q = b"\xc0\x0c"  # a pointer to the question's name (offset 12)


def a_reply(qid, qname, addr=WEB, ttl=60):
    return message(qid, qname, [rr(PTR_Q, 1, ttl, addr)])


# -- the harness -------------------------------------------------------------------------------------
class DnsHarness:
    def __init__(self, servers=(S1, S2), start_ms=1000, **kw):
        self.clock = ManualClock(start_ms)
        self.dev = FakeDevice(self.clock)
        self.stack = Stack(self.dev, self.clock, addr="192.0.2.2/24", gateway="192.0.2.1")
        self.resolver = Resolver(self.stack, servers, **kw)
        self.events = []
        self.stack.trace = lambda e, t, d: self.events.append((e, d))

    def _poll(self):
        self.stack.poll()
        for _ in range(3):  # the servers answer ARP for themselves
            keep = []
            asked = []
            for f in self.dev.sent:
                if f[12] == 8 and f[13] == 6:
                    asked.append(ArpRepr.parse(f, 14, 28).tpa)
                else:
                    keep.append(f)
            self.dev.sent = keep
            if not asked:
                return
            for ip in asked:
                r = bytearray(28)
                ArpRepr(2, MACS[ip], ip, OUR_MAC, OUR_IP).emit(r, 0)
                self.dev.inbox.append(eth(OUR_MAC, MACS[ip], ethernet.ETHERTYPE_ARP, bytes(r)))
            self.stack.poll()

    def start(self, name):
        done = self.resolver.start(name)
        self._poll()
        return done

    def feed(self, frame):
        self.dev.inbox.append(frame)
        self._poll()

    def advance(self, ms):
        self.clock.advance(ms)
        self._poll()

    def queries(self):
        """[(server, source port, id, payload)] of what we sent since the last call."""
        out = []
        for f in self.dev.sent:
            ip = ipv4.Ipv4Repr.parse(f, 14, len(f) - 14)
            assert ip.proto == 17 and ip.src == OUR_IP
            u = UdpRepr.parse(f, 34, ip.payload_len, ip.src, ip.dst)
            assert u.dst_port == 53
            p = bytes(f[42:42 + u.payload_len])
            out.append((ip.dst, u.src_port, p[0] << 8 | p[1], p))
        self.dev.sent = []
        return out

    def one_query(self):
        q = self.queries()
        assert len(q) == 1, q
        return q[0]

    def reply(self, payload, server=S1, sport=53, dport=None):
        dport = self.resolver.port if dport is None else dport
        d = bytearray(8 + len(payload))
        d[8:] = payload
        UdpRepr(sport, dport, len(payload)).emit(d, 0, server, OUR_IP)
        self.feed(eth(OUR_MAC, MACS[server], ethernet.ETHERTYPE_IPV4,
                      ip_packet(server, OUR_IP, ipv4.PROTO_UDP, bytes(d))))

    def result(self):
        r = self.resolver
        assert r.done()
        return r.result if not r.error else r.error


def expect_oserror(code, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.args[0] == code, e.args
        return
    assert False, "no OSError(%d)" % code


# -- queries ---------------------------------------------------------------------------------------
def test_query_is_exact():
    h = DnsHarness()
    assert not h.start("Example.Test.")
    server, sport, qid, p = h.one_query()
    assert server == S1 and 49152 <= sport <= 65535 and sport == h.resolver.port
    assert p == u16(qid) + unhex("0100 0001 0000 0000 0000") + wire_name("example.test") + unhex("0001 0001")
    assert h.stack.udp.is_bound(sport)
    c = h.stack.counters
    assert c.dns_query == 1 and c.dns_tx == 1


def test_ids_and_ports_are_random():
    h = DnsHarness()
    ids = set()
    ports = set()
    for i in range(6):
        h.start("n%d.test" % i)
        _, sport, qid, _ = h.one_query()
        ids.add(qid)
        ports.add(sport)
        h.resolver.cancel()
        assert not h.stack.udp.is_bound(sport)
    assert len(ids) >= 5 and len(ports) >= 5


def test_answer_then_cache_then_ttl_expiry():
    h = DnsHarness()
    h.start("web.test")
    _, sport, qid, _ = h.one_query()
    h.reply(a_reply(qid, "web.test", ttl=60))
    assert h.result() == WEB
    assert not h.stack.udp.is_bound(sport)  # the port lives as long as the query
    c = h.stack.counters
    assert c.dns_answer == 1
    h.advance(59999)
    assert h.start("WEB.test")  # answered from the cache, case-blind
    assert h.result() == WEB and c.dns_cache_hit == 1
    assert h.queries() == []
    h.advance(1)
    assert not h.start("web.test")  # the TTL ran out: asked again
    assert len(h.queries()) == 1


def test_ttl_zero_or_top_bit_is_not_cached_and_huge_ttl_is_capped():
    h = DnsHarness(max_ttl_s=100)
    for ttl in (0, 0x80000001):
        h.start("web.test")
        qid = h.one_query()[2]
        h.reply(a_reply(qid, "web.test", ttl=ttl))
        assert h.result() == WEB
        assert h.resolver.cache == []
    h.start("web.test")
    qid = h.one_query()[2]
    h.reply(a_reply(qid, "web.test", ttl=0x7FFFFFFF))
    h.advance(99999)
    assert h.start("web.test")
    h.advance(1)
    assert not h.start("web.test")


def test_expired_entry_does_not_come_back_after_the_tick_wrap():
    # ticks wrap at 2**30 ms: an expired entry left alone for 2**29 ms (6.2 days) would look
    # valid again to ticks_diff; the resolver's timer drops expired entries as the stack runs
    h = DnsHarness()
    h.start("web.test")
    qid = h.one_query()[2]
    h.reply(a_reply(qid, "web.test", ttl=60))
    assert h.result() == WEB
    for _ in range(200):  # 200 x 1 h, the stack polled every hour
        h.advance(3600 * 1000)
    assert not h.start("web.test")
    assert len(h.queries()) == 1


def test_ttl_above_two_to_the_17_is_kept_exactly_under_a_larger_cap():
    # max_ttl_s caps the TTL, it must not stretch one below it; a cap past the tick horizon
    # (2**29 ms) is brought within it rather than failing the answer in ticks_add
    h = DnsHarness(max_ttl_s=400000)
    h.start("web.test")
    qid = h.one_query()[2]
    h.reply(a_reply(qid, "web.test", ttl=200000))
    assert h.result() == WEB
    for _ in range(199):
        h.advance(1000 * 1000)
    h.advance(999 * 1000)
    assert h.start("web.test")
    h.advance(1000)
    assert not h.start("web.test")
    h = DnsHarness(max_ttl_s=10 ** 7)
    h.start("web.test")
    qid = h.one_query()[2]
    h.reply(a_reply(qid, "web.test", ttl=0x7FFFFFFF))
    assert h.result() == WEB and len(h.resolver.cache) == 1


def test_cache_is_bounded_and_evicts_the_first_to_expire():
    h = DnsHarness(cache_entries=2)
    for name, ttl in (("a.test", 300), ("b.test", 100), ("c.test", 200)):
        h.start(name)
        qid = h.one_query()[2]
        h.reply(a_reply(qid, name, ttl=ttl))
    assert sorted(e[0] for e in h.resolver.cache) == ["a.test", "c.test"]
    assert h.start("a.test") and h.start("c.test") and not h.start("b.test")


# dnsmasq 2.90's answers (--address=/example.test/192.0.2.1, --cname=alias.test,web.test with
# --host-record=web.test,192.0.2.1, --local=/test/): DNS messages as captured on tap0.
REAL_A = unhex("990885800001000100000000076578616d706c6504746573740000010001c00c00010001000000000004c0000201")
REAL_CNAME = unhex("""
a37c8580000100020000000005616c69617304746573740000010001c00c0005000100000000000a03776562047465737400
c02800010001000000000004c0000201""")
REAL_NXDOMAIN = unhex("aeb781830001000000000000066e6f7375636804746573740000010001")


def replay(h, name, captured):
    h.start(name)
    h.one_query()
    q = h.resolver.query
    q[0] = captured[0]  # as if our random id had been the captured one
    q[1] = captured[1]
    h.reply(captured)
    return h.result()


def test_real_dnsmasq_answers():
    h = DnsHarness()
    assert replay(h, "example.test", REAL_A) == S1
    assert replay(h, "alias.test", REAL_CNAME) == S1
    assert replay(h, "nosuch.test", REAL_NXDOMAIN) == dns.EAI_NONAME
    c = h.stack.counters
    assert c.dns_answer == 2 and c.dns_nxdomain == 1 and c.dns_drop_malformed == 0
    assert h.resolver.cache == []  # dnsmasq's local names have TTL 0


def test_cname_chain_in_any_order_with_the_smallest_ttl():
    h = DnsHarness()
    h.start("www.test")
    qid = h.one_query()[2]
    # www.test -> edge.test -> web.test -> A, listed as: A, an unrelated A, edge's CNAME, www's
    # CNAME; edge's target "web" + a pointer to the ".test" of edge's own owner name
    q = wire_name("www.test") + u16(1) + u16(1)
    a = rr(b"\x03web\x04test\x00", 1, 30, WEB)
    other = rr(wire_name("other.test"), 1, 300, ipv4.aton("192.0.2.99"))
    edge_at = 12 + len(q) + len(a) + len(other)
    edge = rr(wire_name("edge.test"), 5, 50, b"\x03web\xc0" + bytes((edge_at + 5,)))
    www = rr(PTR_Q, 5, 300, wire_name("edge.test"))
    h.reply(message(qid, "www.test", [a, other, edge, www]))
    assert h.result() == WEB
    assert h.resolver.cache[0][0] == "www.test"
    h.advance(29999)
    assert h.start("www.test")
    h.advance(1)
    assert not h.start("www.test")  # kept for min(300, 50, 30) s


def test_cname_loop_and_overlong_chain_give_no_address():
    h = DnsHarness()
    h.start("loop.test")
    qid = h.one_query()[2]
    h.reply(message(qid, "loop.test", [rr(PTR_Q, 5, 60, PTR_Q)]))  # loop.test -> loop.test
    assert h.result() == dns.EAI_NONAME
    h.start("c0.test")
    qid = h.one_query()[2]
    chain = [rr(wire_name("c%d.test" % i), 5, 60, wire_name("c%d.test" % (i + 1))) for i in range(10)]
    chain.append(rr(wire_name("c10.test"), 1, 60, WEB))
    h.reply(message(qid, "c0.test", chain))
    assert h.result() == dns.EAI_NONAME  # 10 links: more than the 8 followed
    assert h.stack.counters.dns_no_address == 2 and h.stack.counters.eth_drop_exception == 0


def test_nodata_and_nxdomain_are_eai_noname():
    h = DnsHarness()
    h.start("mail.test")
    qid = h.one_query()[2]
    h.reply(message(qid, "mail.test", [rr(PTR_Q, 28, 60, bytes(16))]))  # only an AAAA
    assert h.result() == dns.EAI_NONAME
    h.start("gone.test")
    qid = h.one_query()[2]
    h.reply(message(qid, "gone.test", rcode=3))
    assert h.result() == dns.EAI_NONAME
    assert h.resolver.cache == []  # negative answers are not cached


def test_per_try_timeout_and_failover_then_eai_again():
    h = DnsHarness(try_ms=1000, rounds=2)
    t0 = h.clock.ticks_ms()
    h.start("slow.test")
    sent = []
    first = h.one_query()
    sent.append((0, first[0]))
    for _ in range(6000):
        h.advance(10)
        for q in h.queries():
            assert q[1] == first[1] and q[2] == first[2]  # one port and one id per query
            sent.append((h.clock.ticks_ms() - t0, q[0]))
        if h.resolver.done():
            break
    assert sent == [(0, S1), (1000, S2), (2000, S1), (4000, S2)], sent
    assert h.clock.ticks_ms() - t0 == 6000
    assert h.result() == dns.EAI_AGAIN
    c = h.stack.counters
    assert c.dns_retransmit == 3 and c.dns_timeout == 1
    assert not h.stack.udp.is_bound(first[1])


def test_late_answer_from_the_first_server_is_taken():
    h = DnsHarness()
    h.start("web.test")
    qid = h.one_query()[2]
    h.advance(1000)
    assert h.one_query()[0] == S2
    h.reply(a_reply(qid, "web.test"), server=S1)
    assert h.result() == WEB


def test_server_failure_moves_on_at_once():
    h = DnsHarness()
    h.start("web.test")
    qid = h.one_query()[2]
    h.reply(message(qid, "web.test", rcode=2))  # SERVFAIL
    server, _, qid2, _ = h.one_query()
    assert server == S2 and qid2 == qid and h.stack.counters.dns_server_error == 1
    h.reply(a_reply(qid, "web.test"), server=S2)
    assert h.result() == WEB


def test_icmp_port_unreachable_moves_on_at_once():
    h = DnsHarness()
    h.start("web.test")
    h.queries()
    sent = h.stack.tx  # our query is still in the transmit buffer: quote its first 28 bytes
    quoted = bytes(sent[14:42])
    body = bytearray(8 + len(quoted))
    body[8:] = quoted
    IcmpRepr(3, 3, 0, 0, len(quoted)).emit(body, 0)
    h.feed(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(S1, OUR_IP, 1, bytes(body))))
    assert h.one_query()[0] == S2
    assert h.stack.counters.dns_server_unreachable == 1


def test_replies_that_are_not_ours_are_ignored_and_counted():
    h = DnsHarness()
    h.start("web.test")
    qid = h.one_query()[2]
    c = h.stack.counters
    good = a_reply(qid, "web.test")
    h.reply(a_reply(qid ^ 1, "web.test"))
    assert c.dns_drop_bad_id == 1
    h.reply(good, sport=5353)
    assert c.dns_drop_bad_source == 1
    h.reply(good, server=STRANGER)
    assert c.dns_drop_bad_source == 2
    h.reply(a_reply(qid, "web.tests"))
    h.reply(message(qid, "web.test", [rr(PTR_Q, 1, 60, WEB)], qtype=28))
    h.reply(message(qid, "web.test", [rr(PTR_Q, 1, 60, WEB)], qclass=3))
    h.reply(message(qid, "web.test", qdcount=0, question=b""))
    h.reply(message(qid, "web.test", qdcount=2))
    assert c.dns_drop_bad_question == 5
    h.reply(message(qid, "web.test", [rr(PTR_Q, 1, 60, WEB)], flags=0x0100))  # a query, not a reply
    h.reply(good[:11])
    assert c.dns_drop_malformed == 2
    tc = bytearray(good)
    tc[2] |= 0x02
    h.reply(bytes(tc))
    assert c.dns_drop_truncated == 1
    assert not h.resolver.done()
    h.reply(message(qid, "WEB.TEST", [rr(PTR_Q, 1, 60, WEB)]))  # case differs: still our question
    assert h.result() == WEB
    h.reply(good)  # after the query: the port is closed, ICMP port unreachable as for any port
    assert c.udp_no_port == 1
    assert c.eth_drop_exception == 0


def test_malformed_answers_are_rejected_safely():
    h = DnsHarness()
    c = h.stack.counters
    q = wire_name("web.test") + u16(1) + u16(1)
    ans_off = 12 + len(q)
    cases = [
        # compression pointer to itself
        [rr(bytes((0xC0, ans_off)), 1, 60, WEB)],
        # two pointers pointing at each other (the first one forward)
        [rr(bytes((0xC0, ans_off + 2)), 1, 60, WEB), rr(bytes((0xC0, ans_off)), 1, 60, WEB)],
        # a pointer beyond the message
        [rr(b"\xc0\xff", 1, 60, WEB)],
        [rr(b"\xff\xff", 1, 60, WEB)],
        # a label running past the end of the message
        [b"\x3fabc"],
        # a record header cut short
        [PTR_Q + b"\x00\x01\x00"],
        # rdlength beyond the message
        [PTR_Q + u16(1) + u16(1) + u32(60) + u16(40) + WEB],
        # CNAME whose target name runs out of its rdata
        [rr(PTR_Q, 5, 60, b"\x05abc")],
        # a reserved label type (0x40)
        [rr(b"\x41x\x00", 1, 60, WEB)],
    ]
    for i, answers in enumerate(cases):
        h.start("web.test")
        qid = h.one_query()[2]
        h.reply(message(qid, "web.test", answers))
        assert not h.resolver.done(), i
        assert c.dns_drop_malformed == i + 1, (i, c.dns_drop_malformed)
        h.resolver.cancel()
    # a name made of 130 one-byte labels: past 255 bytes
    h.start("web.test")
    qid = h.one_query()[2]
    h.reply(message(qid, "web.test", [rr(b"\x01a" * 130 + b"\x00", 1, 60, WEB)]))
    assert not h.resolver.done() and c.dns_drop_malformed == len(cases) + 1
    # a question name with a pointer into itself
    h.reply(u16(qid) + unhex("8180 0001 0000 0000 0000") + b"\xc0\x0c" + u16(1) + u16(1))
    assert not h.resolver.done()
    assert c.eth_drop_exception == 0


def test_fuzzed_replies_never_raise():
    rnd = lcg_bytes(20260705)
    h = DnsHarness()
    accepted = 0
    for _ in range(400):
        h.start("alias.test")
        qid = h.one_query()[2]
        m = bytearray(REAL_CNAME)
        m[0] = qid >> 8
        m[1] = qid & 0xFF
        for _ in range(1 + rnd() % 4):
            i = 2 + rnd() % (len(m) - 2)
            m[i] = rnd() if rnd() & 1 else (0xC0 | rnd() & 0x3F)  # bias toward pointers
        if rnd() % 3 == 0:
            m = m[:rnd() % len(m)]
        h.reply(bytes(m))
        if h.resolver.done():
            accepted += 1
            assert h.resolver.error in (0, dns.EAI_NONAME, dns.EAI_AGAIN)
            assert h.resolver.error or len(h.resolver.result) == 4
        h.resolver.cancel()
        h.resolver.flush()
        h.queries()
    assert h.stack.counters.eth_drop_exception == 0
    assert 0 < accepted < 400


# -- names, servers, getaddrinfo -------------------------------------------------------------------
def test_bad_names_fail_without_a_query():
    h = DnsHarness()
    for bad in ("a..test", "x" * 64 + ".test", ".".join(["abcdefghi"] * 26), "", "."):
        assert h.start(bad)
        assert h.result() == dns.EAI_NONAME, bad
    assert h.queries() == []
    assert h.start("x" * 63 + ".test") is False


def test_no_server_is_eai_again():
    h = DnsHarness(servers=[])
    assert h.start("web.test")
    assert h.result() == dns.EAI_AGAIN
    h = DnsHarness(servers=None)  # stack.dns_servers (DHCP fills it)
    assert h.start("web.test") and h.result() == dns.EAI_AGAIN
    h.stack.dns_servers = [S2]
    assert not h.start("web.test")
    assert h.one_query()[0] == S2


class DnsDevice(FakeDevice):
    """A FakeDevice with a DNS server behind it: names -> addresses, everything else NXDOMAIN."""

    def __init__(self, clock, names, silent=False):
        FakeDevice.__init__(self, clock)
        self.names = names
        self.silent = silent
        self.asked = []

    def send(self, buf, n):
        f = bytes(buf[:n])
        if f[12] == 8 and f[13] == 6:
            r = bytearray(28)
            ArpRepr(2, PEER_MAC, PEER_IP, OUR_MAC, OUR_IP).emit(r, 0)
            self.inbox.append(eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_ARP, bytes(r)))
            return
        ip = ipv4.Ipv4Repr.parse(f, 14, len(f) - 14)
        u = UdpRepr.parse(f, 34, ip.payload_len)
        p = f[42:42 + u.payload_len]
        qid = p[0] << 8 | p[1]
        name = []
        i = 12
        while p[i]:
            name.append(p[i + 1:i + 1 + p[i]].decode())
            i += 1 + p[i]
        name = ".".join(name)
        self.asked.append(name)
        if self.silent:
            return
        if name in self.names:
            reply = a_reply(qid, name, self.names[name])
        else:
            reply = message(qid, name, rcode=3)
        d = bytearray(8 + len(reply))
        d[8:] = reply
        UdpRepr(53, u.src_port, len(reply)).emit(d, 0, ip.dst, ip.src)
        self.inbox.append(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(ip.dst, ip.src, 17, bytes(d))))


def test_blocking_resolve_and_getaddrinfo():
    clock = ManualClock(0)
    dev = DnsDevice(clock, {"web.test": WEB})
    stack = Stack(dev, clock, addr="192.0.2.2/24", gateway="192.0.2.1")
    r = Resolver(stack, ["192.0.2.1"])
    assert r.resolve("web.test") == WEB
    expect_oserror(dns.EAI_NONAME, r.resolve, "nosuch.test")
    r.install()
    try:
        assert tsocket.getaddrinfo("web.test", 80) == [(2, 1, 6, "", ("192.0.2.80", 80))]
        expect_oserror(-2, tsocket.getaddrinfo, "nosuch.test", 80)
        assert dev.asked == ["web.test", "nosuch.test", "nosuch.test"]  # the first from the cache
    finally:
        tsocket.set_resolver(None)


def test_blocking_resolve_times_out_with_eai_again():
    clock = ManualClock(0)
    dev = DnsDevice(clock, {}, silent=True)
    stack = Stack(dev, clock, addr="192.0.2.2/24", gateway="192.0.2.1")
    r = Resolver(stack, ["192.0.2.1"], try_ms=1000, rounds=3)
    expect_oserror(dns.EAI_AGAIN, r.resolve, "web.test", 10000)
    assert clock.ticks_ms() == 7000  # tries at 0, 1 and 3 s, the last waits 4 s
    assert dev.asked == ["web.test"] * 3
    expect_oserror(dns.EAI_AGAIN, r.resolve, "web.test", 2500)  # resolve's own bound
    assert clock.ticks_ms() == 9500
    assert not stack.udp.is_bound(r.port) and r.port == 0
    if not MICROPYTHON:
        try:
            r.resolve("web.test", 10)
        except OSError as e:
            assert e.errno == -3 and "Temporary failure" in e.strerror


def test_dns_server_unreachable_errno_is_econnrefused():
    # the UDP layer hands the resolver the errno of the ICMP code (port unreachable: ECONNREFUSED)
    got = []
    h = DnsHarness()
    h.start("web.test")
    h.queries()
    orig = h.resolver._icmp_error

    def spy(err, dst, doff, dport):
        got.append(err)
        orig(err, dst, doff, dport)

    h.stack.udp.error_handlers[h.stack.udp._slot(h.resolver.port)] = spy
    quoted = bytes(h.stack.tx[14:42])
    body = bytearray(8 + len(quoted))
    body[8:] = quoted
    IcmpRepr(3, 3, 0, 0, len(quoted)).emit(body, 0)
    h.feed(eth(OUR_MAC, PEER_MAC, 0x0800, ip_packet(S1, OUR_IP, 1, bytes(body))))
    assert got == [errors.ECONNREFUSED]
