# Scripted segment-level test harness (smoltcp style): a fake device, an explicit clock, templates
# for what the peer sends, and expect() that checks what we sent and that nothing else went out.
# MicroPython-compatible: the dual test modules import it on both runtimes.
from manualclock import ManualClock
from tcpip.stack import Stack
from tcpip.tcp import TcpConfig
from wirerep import ethernet
from wirerep import ipv4
from wirerep import tcp as wtcp
from wirerep.arp import ArpRepr
from wirerep.icmp import IcmpRepr
from wirerep.ipv4 import Ipv4Repr
from wirerep.tcp import TcpRepr

try:
    from listlink import ListLink
except ImportError:  # host_tools/mp is not on the path (MICROPYPATH=lib:tests/host, pytest)
    import sys
    try:
        _here = __file__
    except NameError:  # pragma: no cover
        _here = "tests/host/segment.py"
    _root = _here.rsplit("tests/host/", 1)[0] if "tests/host/" in _here else "../../"
    sys.path.append(_root + "host_tools/mp")
    from listlink import ListLink

OUR_MAC = b"\x02\x00\x00\x00\x00\x02"
PEER_MAC = b"\x02\x00\x00\x00\x00\x01"
OUR_IP = ipv4.aton("192.0.2.2")
PEER_IP = ipv4.aton("192.0.2.1")      # on-link peer, also the gateway
REMOTE_IP = ipv4.aton("198.51.100.7")  # off-link, reached via the gateway
PEER_PORT = 80

FIN = wtcp.FLAG_FIN
SYN = wtcp.FLAG_SYN
RST = wtcp.FLAG_RST
PSH = wtcp.FLAG_PSH
ACK = wtcp.FLAG_ACK


def lcg_bytes(seed):
    """A seeded byte source for fuzz tests, the same on both runtimes: next_byte() -> 0..255."""
    state = [seed]

    def next_byte():
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] >> 16 & 0xFF

    return next_byte


class FakeDevice(ListLink):
    """The NIC contract over ListLink's two lists (inbox: frames to arrive, sent: what we sent).
    wait() lets virtual time pass (blocking calls advance it)."""

    def __init__(self, clock, mac=OUR_MAC, mtu=1500):
        ListLink.__init__(self)
        self.clock = clock
        self.mac = mac
        self.mtu = mtu

    def wait(self, ms):
        self.clock.advance(ms if ms > 0 else 1)


def eth(dst, src, ethertype, payload):
    f = bytearray(14 + len(payload))
    ethernet.emit_header(f, 0, dst, src, ethertype)
    f[14:] = payload
    return bytes(f)


def ip_packet(src, dst, proto, l4):
    b = bytearray(20 + len(l4))
    b[20:] = l4
    Ipv4Repr(src, dst, proto, len(l4)).emit(b, 0)
    return bytes(b)


def tcp_segment(src, dst, sport, dport, seq, ack, flags, window=65535, payload=b"", mss=0, options=None):
    """A TCP segment with a valid checksum; options: raw option bytes (overrides mss)."""
    opt = options if options is not None else b""
    r = TcpRepr(sport, dport, seq, ack, flags, window, 0, 0 if options is not None else mss,
                len(opt) if options is not None else None, len(payload))
    b = bytearray(r.buffer_len())
    if options is not None:
        b[20:20 + len(opt)] = opt
    b[r.header_len():] = payload
    emit_opts = r.mss
    r.emit(b, 0, src, dst)
    if options is not None and not emit_opts:
        b[20:20 + len(opt)] = opt  # emit() zero-fills options it does not know: restore, re-sum
        wtcp.fill_checksum(b, 0, len(b), src, 0, dst, 0)
    return bytes(b)


class Sent:
    """One frame we transmitted, decoded."""

    def __init__(self, frame):
        self.frame = frame
        self.eth = ethernet.EthernetRepr.parse(frame, 0, len(frame))
        self.arp = None
        self.ip = None
        self.tcp = None
        self.icmp = None
        self.payload = b""
        self.options = b""  # TCP option bytes as sent (padding included)
        if self.eth.ethertype == ethernet.ETHERTYPE_ARP:
            self.arp = ArpRepr.parse(frame, 14, len(frame) - 14)
        elif self.eth.ethertype == ethernet.ETHERTYPE_IPV4:
            self.ip = Ipv4Repr.parse(frame, 14, len(frame) - 14)
            hl = (frame[14] & 15) * 4
            off = 14 + hl
            n = self.ip.payload_len
            if self.ip.proto == ipv4.PROTO_TCP:
                self.tcp = TcpRepr.parse(frame, off, n, self.ip.src, self.ip.dst)
                start = off + self.tcp.header_len()
                self.options = bytes(frame[off + 20:start])
                self.payload = bytes(frame[start:off + n])
            elif self.ip.proto == ipv4.PROTO_ICMP:
                self.icmp = IcmpRepr.parse(frame, off, n)
                self.payload = bytes(frame[off + 8:off + n])

    def __repr__(self):
        if self.tcp is not None:
            return "Sent(%r, payload=%r)" % (self.tcp, self.payload)
        if self.arp is not None:
            return "Sent(%r)" % (self.arp,)
        return "Sent(%r)" % (self.ip,)


class Harness:
    def __init__(self, start_ms=0, learn_peer=True, **tcp_options):
        # the scripted tests are written for 2 KB rings (their expected windows say so), not the
        # default, which suits a chip's buffer (TcpConfig, docs/BOARDS.md "Rings")
        tcp_options.setdefault("rx_buffer", 2048)
        tcp_options.setdefault("tx_buffer", 2048)
        self.clock = ManualClock(start_ms)
        self.dev = FakeDevice(self.clock)
        self.stack = Stack(self.dev, self.clock, addr="192.0.2.2/24", gateway="192.0.2.1",
                           tcp_config=TcpConfig(**tcp_options))
        self.events = []
        self.stack.trace = self._trace
        self.peer_answers_arp = False
        if learn_peer:
            # the peer ARPs for us first: we answer and learn its MAC (RFC 826 merge)
            self.feed(self.arp_request_from_peer())
            out = self.take()
            assert len(out) == 1 and out[0].arp is not None and out[0].arp.oper == 2, out
        self.peer_answers_arp = learn_peer

    def _trace(self, event, tcb, detail):
        self.events.append((self.clock.ticks_ms(), event, detail))

    # -- driving -----------------------------------------------------------------------------------
    def _poll(self):
        self.stack.poll()
        if self.peer_answers_arp:
            # the peer answers ARP for itself, as a real host does; those frames are not shown
            for _ in range(4):
                keep = []
                asked = False
                for f in self.dev.sent:
                    s = Sent(f)
                    if s.arp is not None and s.arp.oper == 1 and s.arp.tpa == PEER_IP:
                        asked = True
                    else:
                        keep.append(f)
                self.dev.sent = keep
                if not asked:
                    break
                self.dev.inbox.append(self.arp_reply_from(PEER_IP))
                self.stack.poll()

    def feed(self, frame):
        self.dev.inbox.append(frame)
        self._poll()

    def advance(self, ms):
        self.clock.advance(ms)
        self._poll()

    def take(self):
        """Everything sent since the last take(), decoded, oldest first."""
        out = [Sent(f) for f in self.dev.sent]
        self.dev.sent = []
        return out

    def expect_tcp(self, flags, seq=None, ack=None, payload=None, options=None):
        """Exactly one frame went out, a TCP segment with these flags (and seq/ack/payload/options,
        absolute numbers; tcpcase.expect() is the same check in offsets)."""
        out = self.take()
        assert len(out) == 1, "expected one segment, got %r" % (out,)
        s = out[0]
        assert s.tcp is not None, s
        assert s.tcp.flags == flags, "flags %s != %s" % (wtcp.flags_str(s.tcp.flags), wtcp.flags_str(flags))
        if seq is not None:
            assert s.tcp.seq == seq, (s.tcp.seq, seq)
        if ack is not None:
            assert s.tcp.ack == ack, (s.tcp.ack, ack)
        if payload is not None:
            assert s.payload == payload, (s.payload, payload)
        if options is not None:
            assert s.options == options, (s.options, options)
        return s

    def expect_nothing(self):
        out = self.take()
        assert out == [], out

    # -- templates for what the peer sends -----------------------------------------------------------
    def arp_request_from_peer(self):
        a = ArpRepr(1, PEER_MAC, PEER_IP, b"\x00" * 6, OUR_IP)
        b = bytearray(28)
        a.emit(b, 0)
        return eth(ethernet.BROADCAST, PEER_MAC, ethernet.ETHERTYPE_ARP, b)

    def arp_reply_from(self, ip, mac=PEER_MAC):
        a = ArpRepr(2, mac, ip, OUR_MAC, OUR_IP)
        b = bytearray(28)
        a.emit(b, 0)
        return eth(OUR_MAC, mac, ethernet.ETHERTYPE_ARP, b)

    def segment(self, tcb, flags, seq, ack=0, window=65535, payload=b"", mss=0, options=None, src=None):
        """A segment from the peer of tcb (its 4-tuple reversed)."""
        src = tcb.remote_addr if src is None else src
        t = tcp_segment(src, tcb.local_addr, tcb.remote_port, tcb.local_port, seq, ack, flags,
                        window, payload, mss, options)
        return eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(src, tcb.local_addr, ipv4.PROTO_TCP, t))

    def icmp_error(self, tcb, type, code, quoted_seq=None, quoted_sport=None, src=PEER_IP):
        """An ICMP error quoting our SYN (IP header + first 8 bytes of TCP) back to us."""
        sport = tcb.local_port if quoted_sport is None else quoted_sport
        seq = tcb.iss if quoted_seq is None else quoted_seq
        quoted_tcp = tcp_segment(tcb.local_addr, tcb.remote_addr, sport, tcb.remote_port, seq, 0, SYN, mss=1460)
        quoted = ip_packet(tcb.local_addr, tcb.remote_addr, ipv4.PROTO_TCP, quoted_tcp)[:28]
        body = bytearray(8 + len(quoted))
        body[8:] = quoted
        IcmpRepr(type, code, 0, 0, len(quoted)).emit(body, 0)
        return eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(src, tcb.local_addr, ipv4.PROTO_ICMP, body))

    # -- shortcuts -----------------------------------------------------------------------------------
    def connect(self, raddr=PEER_IP, rport=PEER_PORT, bound_port=0):
        """Start an active open; returns (tcb, the SYN we sent)."""
        tcb = self.stack.tcp.connect(None, bound_port, raddr, rport)
        syn = self.expect_tcp(SYN, seq=tcb.iss)
        return tcb, syn

    def establish(self, irs=1000, window=65535, mss=1460):
        tcb, syn = self.connect()
        self.feed(self.segment(tcb, SYN | ACK, irs, tcb.iss + 1, window, mss=mss))
        self.expect_tcp(ACK, seq=tcb.iss + 1, ack=irs + 1)
        return tcb
