# Whole-stack fuzz campaign (issue 8): structured mutations of real frames, checksums recomputed so
# they reach TCP state, fed into a Stack over an in-memory device with a manual clock, with a
# legitimate peer moving a known byte stream over the same stack all along, and invariants checked
# after every frame. One seeded generator (its own xorshift PRNG, and the stack's own randomness,
# os.urandom, replaced by a seeded one) makes the same frames on CPython and on the MicroPython
# unix port: the run prints a digest of every frame fed and every frame sent, the same on both.
#
# The main stack also listens (Tcp.listen(None, LISTEN_PORT, backlog)): a legitimate client of the
# world (on-link or behind the gateway) connects again and again (SYN, the SYN-ACK's ISS, ACK),
# the server application takes our side's Tcb from Listener.queue as accept() does (pausing now
# and then, so the queue fills) and the two move a known byte stream both ways and close in
# either order, checked byte-exact as the active transfer. Aimed at the port: SYN floods from
# random sources (bursts of up to 12), SYNs with odd options, the same SYN again with its ISN or
# another, ACKs with exact, forged and near-miss cookies and for half-open records, RSTs at and
# near their IRS+1, SYN-ACK / FIN / data / no flags, SYNs onto the listener's own TIME-WAIT
# records, mutated copies of the client's segments, and, while the server does not accept,
# completed handshakes that fill the queue. After every poll (Fuzz.l_check): records made only
# by a SYN fed now (its MSS and SACK-permitted kept), gone only for a RST at IRS+1, the
# completing ACK or the last retry; every SYN-ACK with our MSS and window and ack = ISN + 1 for
# a record or (a cookie the harness computes itself) a SYN fed now; SYN cookies accepted only for
# ACKs answering a cookie SYN-ACK the harness saw, and every valid one that reaches the listener
# accepted; connections made only by an ACK that completes a record or a cookie. After every
# frame (Fuzz.check_listener): at most syn_backlog well-formed records with deadlines ahead, at
# most backlog queued, every Tcb in the table the application's or queued (no orphan).
#
#   python3 tests/fuzz/stackfuzz.py --frames 100000 --seed 1           (PYTHONPATH=lib:tests/host)
#   MICROPYPATH=lib:tests/host micropython -X heapsize=8M tests/fuzz/stackfuzz.py --frames 100000
#   make fuzz FUZZ_FRAMES=100000 FUZZ_SEED=1                            (both runtimes)
#
# Options: --frames N, --seed S, --known NAME,NAME (those checks counted as notes, not failures:
# for a defect already reported), --trace K (frame K and what the stack sent for it, in hex), --stop
# (end at the first violation), --log (every frame fed and sent, in hex: to compare two runs),
# --quiet. The last line is "FUZZ-RESULT {json}" (tests/host/test_fuzz_stack.py reads it).
# MicroPython subset: no f-strings, no `random`, nothing that depends on dict order.
import gc
import sys
import time

import tcpip.dhcp
import tcpip.dns
import tcpip.isn
import tcpip.ports
import tcpip.tcp_listen
import tcpip.udp
from manualclock import ManualClock
from tcpip import tcp_core
from tcpip.clock import PERIOD
from tcpip.dhcp import DhcpClient
from tcpip.dns import Resolver
from tcpip.stack import Stack
from tcpip.tcp import TcpConfig

try:
    import hashlib
except ImportError:  # pragma: no cover
    import uhashlib as hashlib
from binascii import hexlify

MICROPYTHON = sys.implementation.name == "micropython"
if MICROPYTHON:
    def _now_ms():
        return time.ticks_ms()

    def _elapsed_ms(t0):
        return time.ticks_diff(time.ticks_ms(), t0)
else:
    def _now_ms():
        return time.perf_counter()

    def _elapsed_ms(t0):
        return int((time.perf_counter() - t0) * 1000)

M32 = 0xFFFFFFFF
NO_RING = getattr(tcp_core, "NO_RING", None)

# TCP states (tcpip.tcp_core)
CLOSED = 0
SYN_SENT = 1
SYN_RECEIVED = 2
ESTABLISHED = 3
FIN_WAIT_1 = 4
FIN_WAIT_2 = 5
CLOSING = 6
TIME_WAIT = 7
CLOSE_WAIT = 8
LAST_ACK = 9

FIN = 1
SYN = 2
RST = 4
PSH = 8
ACK = 16
URG = 32

OUR_MAC = b"\x02\x00\x00\x00\x00\x02"
PEER_MAC = b"\x02\x00\x00\x00\x00\x01"
H9_MAC = b"\x02\x00\x00\x00\x00\x09"
D_MAC = b"\x02\x00\x00\x00\x00\x22"  # the DHCP stack
SRV_MAC = b"\x02\x00\x00\x00\x00\x43"  # its DHCP server
BCAST_MAC = b"\xff\xff\xff\xff\xff\xff"
ZERO4 = b"\x00\x00\x00\x00"
OUR_IP = bytes((192, 0, 2, 2))
PEER_IP = bytes((192, 0, 2, 1))      # the legitimate peer, also the gateway
H9_IP = bytes((192, 0, 2, 9))        # an on-link host the harness answers ARP for
REMOTE_IP = bytes((198, 51, 100, 7))  # off-link, through the gateway
DNS2_IP = bytes((198, 51, 100, 53))
NET_BCAST = bytes((192, 0, 2, 255))
LIM_BCAST = b"\xff\xff\xff\xff"
XFER_PORT = 80
LISTEN_PORT = 8000  # the main stack listens here (Tcp.listen(None, LISTEN_PORT, backlog))
TARGETS = ((PEER_IP, 8080), (H9_IP, 22), (REMOTE_IP, 443), (PEER_IP, 25), (REMOTE_IP, 80))
PAT_LEN = 1 << 17
# heap check (Fuzz.heap_sample): units, what a connection may add, and the growth allowed
HEAP_UNIT = "bytes" if MICROPYTHON else "blocks"
HEAP_PER_CONN = 2000 if MICROPYTHON else 40
HEAP_SLACK = 24000 if MICROPYTHON else 1000

# checks whose names may be passed in --known (each fires for one defect; see the report)
CHECK_NAMES = (
    "exception", "api-exception", "malformed-output", "output-oracle", "tcb-invariant",
    "table-invariant", "arp-invariant", "transfer-bytes", "transfer-stalled", "transfer-reset",
    "heap-growth", "tables-not-empty", "tcp-broadcast-answered", "dhcp-bad-address",
    "udp-handler-args", "dns-result", "listen-invariant", "listen-synack", "listen-record",
    "listen-cookie", "listen-conn", "listen-orphan",
)
# the half-open record of tcpip.tcp_listen (24 bytes): raddr 4, laddr 4, rport 2, MSS 2, ISS 4,
# IRS 4, flags 1 (SACK-permitted), retries 1, spare 2
REC = 24
MIN_MSS = 48  # Linux net.ipv4.tcp_min_snd_mss


# -- PRNG (xorshift32): the same numbers on every runtime ------------------------------------------
class Rng:
    def __init__(self, seed):
        s = (seed * 0x9E3779B1 + 0x6A09E667) & M32
        self.s = s if s else 0x12345678
        for _ in range(4):
            self.next()

    def next(self):
        x = self.s
        x ^= (x << 13) & M32
        x ^= x >> 17
        x ^= (x << 5) & M32
        self.s = x
        return x

    def below(self, n):
        return self.next() % n

    def range(self, lo, hi):
        return lo + self.next() % (hi - lo + 1)

    def chance(self, permille):
        return self.next() % 1000 < permille

    def pick(self, seq):
        return seq[self.next() % len(seq)]

    def bytes(self, n):
        b = bytearray(n)
        for i in range(n):
            b[i] = self.next() & 0xFF
        return b


class SeededOs:
    """Stands in for `os` in the lib modules that draw randomness (ISN and port secrets, the
    port perturbation table, DNS ids and ports, DHCP xids and jitter): seeded, so that both
    runtimes make the same choices."""

    def __init__(self, seed):
        self.rng = Rng(seed ^ 0x5EED)

    def urandom(self, n):
        return bytes(self.rng.bytes(n))


# -- byte helpers and an Internet checksum of our own (independent of lib's) -----------------------
def u16(b, o):
    return b[o] << 8 | b[o + 1]


def u32(b, o):
    return b[o] << 24 | b[o + 1] << 16 | b[o + 2] << 8 | b[o + 3]


def put16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF


def put32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


def sdiff(a, b):
    """a - b in sequence space, signed."""
    d = (a - b) & M32
    return d - 0x100000000 if d & 0x80000000 else d


def words(b, start, end):
    """The 16-bit big-endian words of b[start:end] as one integer (odd length: padded with 0);
    it is congruent to their sum mod 0xFFFF, and 0 only when they all are."""
    if end <= start:
        return 0
    v = int.from_bytes(bytes(b[start:end]), "big")
    if (end - start) & 1:
        v <<= 8
    return v


def pseudo(b, src_off, proto, n):
    """Sum of the IPv4 pseudo header (addresses at b[src_off:src_off + 8])."""
    return u16(b, src_off) + u16(b, src_off + 2) + u16(b, src_off + 4) + u16(b, src_off + 6) + proto + n


def csum_valid(b, start, end, extra=0):
    """One's-complement checksum over b[start:end] (+ extra) verifies: the folded sum is 0xFFFF."""
    v = words(b, start, end) + extra
    return v != 0 and v % 0xFFFF == 0


def csum_fill(b, at, start, end, extra=0):
    """Set the 16-bit checksum at b[at] so that b[start:end] (+ extra) verifies."""
    b[at] = 0
    b[at + 1] = 0
    s = (words(b, start, end) + extra) % 0xFFFF
    put16(b, at, 0xFFFF - s)


def ip_text(b, o=0):
    return "%d.%d.%d.%d" % (b[o], b[o + 1], b[o + 2], b[o + 3])


def hexs(b):
    return hexlify(bytes(b)).decode()


def is_martian(b, o, bcast):
    """Sources the stack drops (0/8, 127/8, multicast, broadcast, the subnet's broadcast)."""
    a = b[o]
    if a == 0 or a == 127 or 224 <= a <= 239:
        return True
    if b[o] == 255 and b[o + 1] == 255 and b[o + 2] == 255 and b[o + 3] == 255:
        return True
    return bcast is not None and bytes(b[o:o + 4]) == bcast


def to_port(f, port):
    """A cheap look before parsing: an IPv4 TCP frame whose destination port is port."""
    if len(f) < 54 or f[12] != 8 or f[13] != 0 or f[23] != 6:
        return False
    o = 14 + (f[14] & 15) * 4
    return o + 4 <= len(f) and (f[o + 2] << 8 | f[o + 3]) == port


def syn_options(f, p):
    """(MSS or 0, SACK-permitted) of a segment's options, walked as Linux tcp_parse_options: END
    stops, NOP skips, a length below 2 or past the header stops, the last option of a kind wins,
    an option of another length is skipped (the harness's own parser)."""
    o = p.l4 + 20
    end = p.l4 + p.thl
    mss = 0
    sack = False
    while o < end:
        k = f[o]
        if k == 0:
            break
        if k == 1:
            o += 1
            continue
        if end - o < 2 or f[o + 1] < 2 or f[o + 1] > end - o:
            break
        if k == 2 and f[o + 1] == 4:
            mss = u16(f, o + 2)
        elif k == 4 and f[o + 1] == 2:
            sack = True
        o += f[o + 1]
    return mss, sack


def cookie_of(secret, src, dst, sport, dport, irs, count, mi):
    """A SYN cookie as RFC 4987 and tcpip.tcp_listen make it, computed here again: 8 bits of the
    64-second cookie clock, 2 bits of MSS class, 22 bits of SHA-256 over the key, the 4-tuple and
    the peer's ISN, the clock and the class."""
    h = hashlib.sha256(bytes(secret))
    h.update(bytes(src) + bytes(dst))
    h.update(bytes((sport >> 8, sport & 0xFF, dport >> 8, dport & 0xFF, count, mi,
                    irs >> 24, (irs >> 16) & 0xFF, (irs >> 8) & 0xFF, irs & 0xFF)))
    d = h.digest()
    return count << 24 | mi << 22 | (d[0] & 0x3F) << 16 | d[1] << 8 | d[2]


# -- parsing (for the oracles, the xfer filter and the output checks) ------------------------------
class Pkt:
    """What a frame is, as far as the stack's boundary checks go (never raises)."""

    def __init__(self, f):
        self.f = f
        n = len(f)
        self.n = n
        self.et = -1
        self.ipok = False
        self.ip_seen = False
        self.proto = -1
        self.frag = False
        self.tcpok = False
        self.udpok = False
        self.icmpok = False
        self.arpok = False
        self.late = False  # it waited in the ARP queue (Fuzz.collect)
        if n < 14:
            return
        self.et = u16(f, 12)
        if self.et == 0x0806:
            self.arpok = (n >= 42 and f[14] == 0 and f[15] == 1 and f[16] == 8 and f[17] == 0
                          and f[18] == 6 and f[19] == 4)
            return
        if self.et != 0x0800 or n < 34:
            return
        self.ip_seen = True
        hl = (f[14] & 15) * 4
        total = u16(f, 16)
        if f[14] >> 4 != 4 or hl < 20 or hl > total or 14 + total > n:
            return
        if not csum_valid(f, 14, 14 + hl):
            return
        self.ipok = True
        self.hl = hl
        self.total = total
        self.proto = f[23]
        self.frag = bool(f[20] & 0x3F or f[21])
        o = 14 + hl
        m = total - hl
        self.l4 = o
        self.l4len = m
        if self.proto == 6:
            if m >= 20:
                thl = (f[o + 12] >> 4) * 4
                if 20 <= thl <= m and csum_valid(f, o, o + m, pseudo(f, 26, 6, m)):
                    self.tcpok = True
                    self.sport = u16(f, o)
                    self.dport = u16(f, o + 2)
                    self.seq = u32(f, o + 4)
                    self.ack = u32(f, o + 8)
                    self.thl = thl
                    self.flags = f[o + 13]
                    self.win = u16(f, o + 14)
                    self.plen = m - thl
                    if self.sport == 0 or self.dport == 0:
                        self.tcpok = False
        elif self.proto == 17:
            if m >= 8:
                ulen = u16(f, o + 4)
                if 8 <= ulen <= m and (u16(f, o + 6) == 0 or csum_valid(f, o, o + ulen, pseudo(f, 26, 17, ulen))):
                    self.udpok = True
                    self.sport = u16(f, o)
                    self.dport = u16(f, o + 2)
                    self.ulen = ulen
        elif self.proto == 1:
            if m >= 8 and csum_valid(f, o, o + m):
                self.icmpok = True
                self.itype = f[o]
                self.icode = f[o + 1]

    def seglen(self):
        return self.plen + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)


def finalize(f, fix_ip=True, fix_l4=True):
    """Recompute the checksums of a (mutated) frame from its own header fields, as far as they
    make sense: the IPv4 header's, and the TCP / UDP / ICMP one over the declared length (cut to
    the frame)."""
    n = len(f)
    if n < 34 or u16(f, 12) != 0x0800:
        return f
    hl = (f[14] & 15) * 4
    if hl < 20 or 14 + hl > n:
        return f
    if fix_ip:
        csum_fill(f, 24, 14, 14 + hl)
    if not fix_l4:
        return f
    total = u16(f, 16)
    end = 14 + total
    if end > n or total < hl:
        end = n
    o = 14 + hl
    m = end - o
    p = f[23]
    if p == 6 and m >= 18:
        csum_fill(f, o + 16, o, end, pseudo(f, 26, 6, m))
    elif p == 17 and m >= 8:
        ulen = u16(f, o + 4)
        if 8 <= ulen <= m:
            csum_fill(f, o + 6, o, o + ulen, pseudo(f, 26, 17, ulen))
    elif p == 1 and m >= 4:
        csum_fill(f, o + 2, o, end)
    return f


# -- frame builders ---------------------------------------------------------------------------------
def eth(dst, src, et, payload):
    f = bytearray(14)
    f[0:6] = dst
    f[6:12] = src
    put16(f, 12, et)
    f += payload
    return f


def ipv4(src, dst, proto, l4, ident=0, ttl=64, ff=0x4000, opts=b"", tos=0):
    hl = 20 + len(opts)
    h = bytearray(hl)
    h[0] = 0x40 | (hl >> 2)
    h[1] = tos
    put16(h, 2, hl + len(l4))
    put16(h, 4, ident)
    put16(h, 6, ff)
    h[8] = ttl
    h[9] = proto
    h[12:16] = src
    h[16:20] = dst
    if opts:
        h[20:hl] = opts
    h += l4
    return h


def tcp_hdr(sport, dport, seq, ack, flags, win, opts=b"", payload=b"", urg=0):
    hl = 20 + len(opts)
    t = bytearray(hl)
    put16(t, 0, sport)
    put16(t, 2, dport)
    put32(t, 4, seq & M32)
    put32(t, 8, ack & M32)
    t[12] = (hl >> 2) << 4
    t[13] = flags & 0xFF
    put16(t, 14, win & 0xFFFF)
    put16(t, 18, urg)
    if opts:
        t[20:hl] = opts
    t += payload
    return t


def udp_hdr(sport, dport, payload, ulen=None):
    u = bytearray(8)
    put16(u, 0, sport)
    put16(u, 2, dport)
    put16(u, 4, 8 + len(payload) if ulen is None else ulen)
    u += payload
    return u


def pad60(f, rng=None):
    """Ethernet minimum: shorter frames are padded (zeros, or garbage the stack must ignore)."""
    if len(f) < 60:
        if rng is not None and rng.chance(300):
            f += rng.bytes(60 - len(f))
        else:
            f += bytes(60 - len(f))
    return f


def arp_pkt(op, sha, spa, tha, tpa):
    a = bytearray(28)
    a[1] = 1
    a[2] = 8
    a[4] = 6
    a[5] = 4
    a[7] = op
    a[8:14] = sha
    a[14:18] = spa
    a[18:24] = tha
    a[24:28] = tpa
    return a


# -- the in-memory NIC ------------------------------------------------------------------------------
class Device:
    """The NIC contract over two lists. Bytes of the receive buffer past the frame are overwritten
    with 0xA5 at every frame, so a read past a frame's end sees the same garbage on every run."""

    def __init__(self, mac, mtu=1500):
        self.mac = mac
        self.mtu = mtu
        self.inbox = []
        self.pos = 0
        self.sent = []
        self.fill = b"\xa5" * 1600

    def recv_into(self, buf):
        if self.pos >= len(self.inbox):
            return 0
        f = self.inbox[self.pos]
        self.pos += 1
        n = len(f)
        m = len(buf)
        if n > m:
            n = m
        buf[0:n] = f[0:n]
        if n < m:
            buf[n:m] = self.fill[0:m - n]
        return n

    def send(self, buf, n):
        self.sent.append(bytes(buf[0:n]))

    def feed(self, frames):
        self.inbox = frames
        self.pos = 0

    def take(self):
        s = self.sent
        self.sent = []
        return s


class Violation(Exception):
    pass


class Stop(BaseException):
    """Fuzz.stop: the first violation ends the run."""


# -- the legitimate transfers: our socket (Tcb API) and a small, correct TCP peer -------------------
class Transfer:
    """A connection that moves up_len bytes up (we send) and down_len bytes down (the peer sends),
    both from the shared pattern, then closes; both sides check every byte. Active: we connect to
    PEER_IP:80. Passive: a client of the world (on-link, or behind the gateway) connects to our
    listener on LISTEN_PORT (SYN, the SYN-ACK's ISS, ACK), and the server application takes our
    side's Tcb from Listener.queue as accept() does (Fuzz.server_step); the peer is then the
    client and "up" is the server's answer."""

    def __init__(self, fz, number, passive=False):
        rng = fz.rng
        self.fz = fz
        self.number = number
        self.passive = passive
        self.up_len = rng.pick((0, 1, 100, 1460, 3000, 9000, 20000, 40000))
        self.down_len = rng.pick((0, 1, 700, 1460, 4000, 12000, 30000, 60000))
        if self.up_len + self.down_len == 0:
            self.down_len = 5000
        if passive and self.down_len == 0:
            # a client speaks first (its request): after a SYN cookie nothing else would resend a
            # lost final ACK (no record, no SYN-ACK retransmission)
            self.down_len = rng.range(1, 300)
        self.up_base = rng.below(PAT_LEN - 65536)
        self.down_base = rng.below(PAT_LEN - 65536)
        self.we_close_first = rng.chance(500)
        self.rebase_at = rng.range(600, 70000) if rng.chance(300) else 0  # the relative bases move often
        self.nodelay = rng.chance(200)
        self.refused = False  # passive: our side refused or forgot the handshake (a RST): a new client
        self.fin_reset = False  # the peer's FIN was answered by a RST after our TIME-WAIT (see p_input)
        if passive:
            self.raddr = rng.pick((PEER_IP, H9_IP, REMOTE_IP, bytes((203, 0, 113, rng.range(1, 200)))))
            self.rport = fz.client_port()
            self.lport = LISTEN_PORT
            self.tcb = None  # ours: once the handshake made it (Listener.queue, then accepted)
            self.accepted = False
        else:
            rx = rng.pick((1024, 2048, 4096, 12288, 30000))
            tx = rng.pick((1024, 2048, 4096, 12288, 30000))
            self.tcb = fz.stack.tcp.connect(None, 0, PEER_IP, XFER_PORT, rx, tx)
            fz.owned.append(self.tcb)
            self.setup(self.tcb)
            self.raddr = PEER_IP
            self.rport = XFER_PORT
            self.lport = self.tcb.local_port
            self.accepted = True
        self.mac = H9_MAC if self.raddr == H9_IP else PEER_MAC
        # our side
        self.sent = 0
        self.got = 0
        self.eof = False
        self.shut = False
        self.closed = False
        # the peer
        self.iss = rng.pick((rng.next(), 0xFFFFFFF0 + rng.below(16), rng.below(100)))
        self.p_mss = rng.pick((1460, 1460, 1000, 536, 88))
        self.p_sack = rng.chance(500)
        self.p_cap = rng.pick((65535, 65535, 16384, 4096, 1500, 600))
        self.p_read = rng.pick((1 << 20, 3000, 800, 120))
        self.p_delay_ack = rng.chance(300)
        self.loss = rng.pick((0, 0, 5, 20, 40))  # permille, each direction
        # 0 waiting for our SYN, 1 SYN-ACK sent, 2 established; passive: 3 SYN sent (due at once)
        self.state = 3 if passive else 0
        self.syn_tries = 0
        self.irs = 0
        self.rcv_nxt = 0
        self.unread = 0
        self.snd_una = (self.iss + 1) & M32
        self.snd_nxt = self.snd_una
        self.fin_seq = (self.iss + 1 + self.down_len) & M32
        self.their_wnd = 0
        self.our_fin = False
        self.ack_due = False
        self.last_wnd = 0
        self.rto = 300
        self.timer = fz.vt if passive else -1  # virtual ms of the retransmission / probe deadline, -1 off
        self.dup = 0
        self.progress_at = fz.vt
        self.progress = (0, 0, 0, 0)

    def setup(self, t):
        if self.rebase_at:
            t.rebase_at = self.rebase_at
        if self.nodelay:
            t.set_nodelay(True)

    def accept(self, t):
        """The server application took our side's Tcb from the listener's queue."""
        self.tcb = t
        self.accepted = True
        self.setup(t)

    def ours(self):
        """Our side has the connection (passive: it is in the listener's queue, or accepted)."""
        if self.tcb is None:
            x = self.fz.listener
            if x is not None:
                for t in x.queue:
                    if t.remote_port == self.rport and t.remote_addr == self.raddr and t.state != CLOSED:
                        self.tcb = t
        return self.tcb is not None

    # -- the peer ------------------------------------------------------------------------------
    def p_window(self):
        w = self.p_cap - self.unread
        return w if w < 65535 else 65535

    def p_send(self, flags, seq, payload=b"", opts=b""):
        fz = self.fz
        t = tcp_hdr(self.rport, self.lport, seq, self.rcv_nxt, flags, self.p_window(), opts, payload)
        f = finalize(pad60(eth(OUR_MAC, self.mac, 0x0800, ipv4(self.raddr, OUR_IP, 6, t, fz.rng.below(65536)))))
        if flags & ACK:
            self.last_wnd = self.p_window()
            self.ack_due = False
        fz.remember(f)
        if self.passive:
            c = fz.client_frames  # what the listener's legitimate client sent (mutated copies attack)
            if len(c) >= 8:
                c.pop(0)
            c.append(f)
        if self.loss and fz.rng.below(1000) < self.loss:
            return
        fz.peer_out.append(f)

    def p_input(self, p):
        """A segment our stack sent on this 4-tuple."""
        fz = self.fz
        f = p.f
        flags = p.flags
        if flags & RST:
            if self.passive and not self.ours():
                # our side has no connection: the listener refused the handshake or forgot it (a
                # full queue, an expired cookie, ...): this client gives up, a new one comes
                if (self.state == 2 and p.seq == self.rcv_nxt
                        or self.state == 3 and flags & ACK and p.ack == (self.iss + 1) & M32):
                    self.refused = True
                return
            t = self.tcb
            if self.state == 2 and p.seq == self.rcv_nxt and (t.state != CLOSED or t.error or not self.closed):
                # (after our side closed cleanly, a RST answers a late segment for no connection)
                raise Violation("transfer-reset: our stack reset %s (RST seq %08x)" % (self.name(), p.seq))
            if (self.state == 2 and p.seq == self.rcv_nxt and self.our_fin and self.fin_out()
                    and fz.vt - self.progress_at >= fz.stack.tcp.config.time_wait_ms):
                # our side closed cleanly and its TIME-WAIT ran out before the ACK of the peer's
                # FIN got through (a lost ACK, then the clock jumped): the RST ends it, every byte
                # delivered both ways
                self.fin_reset = True
            return  # a RST answering a hostile frame on our 4-tuple: out of window, ignored
        if self.loss and fz.rng.below(1000) < self.loss:
            return
        if flags & SYN and self.passive:
            if not flags & ACK:
                raise Violation("malformed-output: a SYN without ACK from our listener (inbound transfer %d)" % self.number)
            if self.state == 3:
                if p.ack != (self.iss + 1) & M32:
                    self.p_send(RST, p.ack)  # RFC 9293 3.10.7.3 SYN-SENT: <SEQ=SEG.ACK><CTL=RST>
                    return
                fz.client_synack(self, p)
                self.irs = p.seq
                self.rcv_nxt = (p.seq + 1) & M32
                self.their_wnd = p.win
                self.state = 2
                self.timer = -1
                self.p_send(ACK, self.snd_nxt)  # the handshake's last ACK (data follows)
            elif self.state == 2 and p.seq == self.irs:
                self.ack_due = True  # the SYN-ACK again: our ACK was lost, or dropped (queue full)
            return
        if flags & SYN:
            if flags & ACK:
                raise Violation("malformed-output: SYN-ACK from our client stack on the transfer")
            if self.state < 2:
                self.irs = p.seq
                self.rcv_nxt = (p.seq + 1) & M32
                self.their_wnd = p.win
                opts = bytearray((2, 4, self.p_mss >> 8, self.p_mss & 0xFF))
                if self.p_sack:
                    opts += b"\x01\x01\x04\x02"
                self.p_send(SYN | ACK, self.iss, b"", opts)
                self.state = 1
            return
        if self.state == 0 or self.state == 3:
            return
        if flags & ACK:
            a = p.ack
            if self.state == 1 and a == self.snd_una:
                self.state = 2
            d = sdiff(a, self.snd_una)
            if d > 0 and sdiff(a, self.snd_nxt) <= 0:
                self.snd_una = a
                self.dup = 0
                self.rto = 300
                self.timer = fz.vt + self.rto if self.snd_una != self.snd_nxt else -1
                self.their_wnd = p.win
            elif d > 0:
                # beyond what we sent after a go-back: we had sent it before
                self.snd_una = a
                self.snd_nxt = a
                self.their_wnd = p.win
                self.timer = -1
            elif d == 0:
                if p.plen == 0 and not flags & FIN and self.snd_nxt != self.snd_una and p.win == self.their_wnd:
                    self.dup += 1
                    if self.dup == 3:
                        self.p_resend_first()
                self.their_wnd = p.win
        if self.state < 2:
            return
        n = p.plen
        if p.seq != self.rcv_nxt:
            self.ack_due = True  # not acceptable, or a window / keep-alive probe: answered (RFC 9293 3.10.7.4)
        if n or flags & FIN:
            d = sdiff(p.seq, self.rcv_nxt)
            if d <= 0 and d + n >= 0:
                new = d + n
                room = self.p_cap - self.unread
                take = new if new < room else room
                if take > 0:
                    k = sdiff(self.rcv_nxt, self.irs) - 1
                    start = p.l4 + p.thl - d
                    got = bytes(f[start:start + take])
                    want = fz.pat[self.up_base + k:self.up_base + k + take]
                    if k + take > self.up_len or got != want:
                        raise Violation("transfer-bytes: peer of %s received wrong bytes at offset %d"
                                        " (%d bytes; %s...)" % (self.name(), k, take, hexs(got[:16])))
                    self.rcv_nxt = (self.rcv_nxt + take) & M32
                    self.unread += take
                if take == new and flags & FIN and not self.our_fin:
                    if sdiff(self.rcv_nxt, self.irs) - 1 != self.up_len:
                        raise Violation("transfer-bytes: FIN of %s after %d of %d bytes" % (
                            self.name(), sdiff(self.rcv_nxt, self.irs) - 1, self.up_len))
                    self.our_fin = True
                    self.rcv_nxt = (self.rcv_nxt + 1) & M32
            self.ack_due = True

    def p_resend_first(self):
        end = self.fin_seq
        k = sdiff(self.snd_una, self.iss) - 1
        left = sdiff(end, self.snd_una)
        n = left if left < self.p_mss else self.p_mss
        if n > 0:
            b = self.down_base + k
            self.p_send(ACK, self.snd_una, self.fz.pat[b:b + n])
        elif left == 0 and self.fin_out():
            self.p_send(ACK | FIN, self.snd_una)

    def fin_out(self):
        return sdiff(self.snd_nxt, self.fin_seq) > 0

    def p_syn(self):
        opts = bytearray((2, 4, self.p_mss >> 8, self.p_mss & 0xFF))
        if self.p_sack:
            opts += b"\x01\x01\x04\x02"
        self.p_send(SYN, self.iss, b"", opts)

    def p_step(self):
        fz = self.fz
        if self.state == 3:
            # SYN, again after 1 s doubling up to 30 s; after 8 a new client
            if fz.vt >= self.timer:
                if self.syn_tries >= 8:
                    self.refused = True
                    return
                self.p_syn()
                ms = 1000 << self.syn_tries
                self.syn_tries += 1
                self.timer = fz.vt + (ms if ms < 30000 else 30000)
            return
        if self.state < 2:
            if self.state == 1 and self.timer < 0:
                self.timer = fz.vt + 1000
            if self.state == 1 and fz.vt >= self.timer:
                self.timer = fz.vt + 1000
                opts = bytearray((2, 4, self.p_mss >> 8, self.p_mss & 0xFF))
                self.p_send(SYN | ACK, self.iss, b"", opts)
            return
        # the application reads
        if self.unread:
            r = self.p_read if self.p_read < self.unread else self.unread
            self.unread -= r
            if self.last_wnd < self.p_mss and self.p_window() >= self.p_mss:
                self.ack_due = True  # window update
        # retransmission timer: go back to snd_una
        if self.timer >= 0 and fz.vt >= self.timer:
            self.snd_nxt = self.snd_una
            self.rto = self.rto * 2 if self.rto < 3000 else 3000
            self.timer = -1
            if self.their_wnd == 0 and sdiff(self.fin_seq, self.snd_una) > 0:
                # zero window: a one-byte probe
                k = sdiff(self.snd_una, self.iss) - 1
                b = self.down_base + k
                self.p_send(ACK, self.snd_una, fz.pat[b:b + 1])
                self.timer = fz.vt + self.rto
        # send what the window allows
        budget = 8
        while budget:
            flight = sdiff(self.snd_nxt, self.snd_una)
            left = sdiff(self.fin_seq, self.snd_nxt)
            if left < 0:
                break
            room = self.their_wnd - flight
            if left == 0:
                if not self.fin_out() and (not self.fz.rng.chance(100) or self.our_fin):
                    self.p_send(ACK | FIN, self.snd_nxt)
                    self.snd_nxt = (self.snd_nxt + 1) & M32
                    if self.timer < 0:
                        self.timer = fz.vt + self.rto
                break
            n = left if left < self.p_mss else self.p_mss
            if n > room:
                n = room
            if n <= 0:
                if flight == 0 and self.timer < 0:
                    self.timer = fz.vt + self.rto  # persist
                break
            k = sdiff(self.snd_nxt, self.iss) - 1
            b = self.down_base + k
            self.p_send(ACK | PSH if n == left else ACK, self.snd_nxt, fz.pat[b:b + n])
            self.snd_nxt = (self.snd_nxt + n) & M32
            if self.timer < 0:
                self.timer = fz.vt + self.rto
            budget -= 1
        if self.ack_due and not (self.p_delay_ack and fz.rng.chance(500)):
            self.p_send(ACK, self.snd_nxt)

    # -- our side (the application) ------------------------------------------------------------
    def app_step(self):
        fz = self.fz
        t = self.tcb
        if not self.accepted:
            return
        buf = fz.scratch
        for _ in range(8):
            n = t.recv_into(buf, 0, len(buf))
            if n <= 0:
                break
            b = self.down_base + self.got
            if self.got + n > self.down_len or bytes(buf[0:n]) != fz.pat[b:b + n]:
                raise Violation("transfer-bytes: %s read wrong bytes at offset %d (%d bytes)" % (
                    self.name(), self.got, n))
            self.got += n
        if t.fin_received and t.rx_len == 0 and not self.eof:
            if self.got != self.down_len:
                raise Violation("transfer-bytes: %s saw the peer's FIN after %d of %d bytes" % (
                    self.name(), self.got, self.down_len))
            self.eof = True
        if self.sent < self.up_len and t.state in (ESTABLISHED, CLOSE_WAIT):
            want = self.up_len - self.sent
            if want > 5000 and fz.rng.chance(500):
                want = fz.rng.range(1, 5000)
            self.sent += t.send(fz.pat, self.up_base + self.sent, want)
        if self.sent == self.up_len and not self.closed and t.state in (ESTABLISHED, CLOSE_WAIT):
            if self.we_close_first and not self.shut:
                t.shutdown_write()
                self.shut = True
            elif self.eof:
                t.close()
                self.closed = True
        if self.eof and self.shut and not self.closed:
            t.close()
            self.closed = True
        if t.state == CLOSED and t.error:
            raise Violation("transfer-reset: %s ended with error %d in our stack" % (self.name(), t.error))

    def done(self):
        t = self.tcb
        return (self.accepted and self.closed and self.eof and self.sent == self.up_len and self.our_fin
                and sdiff(self.rcv_nxt, self.irs) - 2 == self.up_len
                and (self.snd_una == ((self.fin_seq + 1) & M32) or self.fin_reset)
                and t.state in (CLOSED, TIME_WAIT))

    def name(self):
        return ("inbound transfer %d" if self.passive else "transfer %d") % self.number

    def check_progress(self):
        fz = self.fz
        t = self.tcb
        now = (self.got, self.rcv_nxt, self.snd_una, t.state if t is not None else -1, self.accepted)
        if now != self.progress:
            self.progress = now
            self.progress_at = fz.vt
        elif fz.vt - self.progress_at > 900000:
            if t is None:
                raise Violation("transfer-stalled: %s (client %s:%d) made no progress for 900 s: no connection on"
                                " our side (client state %d, %d SYNs)" % (self.name(), ip_text(self.raddr), self.rport,
                                                                            self.state, self.syn_tries))
            raise Violation("transfer-stalled: %s made no progress for 900 s (state %d, accepted %s, sent %d/%d,"
                            " read %d/%d, peer got %d, snd_wnd %d, timer %s, tx_len %d, rx_len %d)" % (
                                self.name(), t.state, self.accepted, self.sent, self.up_len, self.got, self.down_len,
                                sdiff(self.rcv_nxt, self.irs) - 1, t.snd_wnd, t.timer_on, t.tx_len, t.rx_len))

    def harmful(self, p, mixed):
        """Would this TCP segment (valid, to this 4-tuple) legitimately change the transfer? An
        attacker who knows the window can inject; the fuzzer must not, or the byte check would
        fail for no fault of the stack (RFC 9293 3.10.7, RFC 5961)."""
        if self.passive and not self.ours():
            # no connection on our side yet: a SYN, RST or ACK could make, change or end the
            # half-open record (or complete a cookie) in the client's place
            return bool(p.flags & (SYN | RST | ACK))
        t = self.tcb
        st = t.state
        flags = p.flags
        if st == CLOSED or st == TIME_WAIT:
            return False
        if st == SYN_SENT:
            if flags & ACK:
                return p.ack == ((t.iss + 1) & M32)
            return bool(flags & SYN) and not flags & RST
        if st == SYN_RECEIVED:
            return True
        # (mixed: the peer's frames come in the same batch, before this one, so RCV.NXT may have
        # moved by up to a window when it is processed; SND.UNA, SND.MAX and MAX.SND.WND may
        # move while it waits anyway: margins of a window)
        d = sdiff(p.seq, t.rcv_nxt)
        if flags & RST:
            return 0 <= d < 70000 if mixed else d == 0
        if flags & SYN or not flags & ACK:
            return False
        if sdiff(p.ack, t.snd_max) > 70000 or sdiff(p.ack, t.snd_una) < -70000 - t.max_snd_wnd:
            return False
        n = p.seglen()
        if n == 0:
            return 0 <= d < 70000
        return d + n > 0 and d < 70000


# -- the campaign -----------------------------------------------------------------------------------
class Fuzz:
    def __init__(self, seed, known=(), trace=-1, quiet=False):
        self.seed = seed
        self.known = known
        self.trace = trace
        self.quiet = quiet
        self.rng = Rng(seed)
        rng = self.rng
        seeded = SeededOs(seed)
        self.saved_os = []
        for m in (tcpip.isn, tcpip.ports, tcpip.udp, tcpip.dns, tcpip.dhcp, tcpip.tcp_listen):
            self.saved_os.append((m, m.os))
            m.os = seeded
        self.pat = bytes(rng.bytes(PAT_LEN))
        self.pool = self.pat[0:4096]
        self.scratch = bytearray(4096)
        # the clock starts 10 minutes before the 2**30 tick wrap: every run crosses it
        self.clock = ManualClock(PERIOD - 600000)
        self.vt = 0  # virtual ms since the start (the clock's ticks wrap)
        self.cfg = dict(
            header_prediction=not rng.chance(250),
            delayed_ack_ms=rng.pick((40, 40, 0, 200)),
            ooo_segments=rng.pick((4, 4, 0, 1, 8)),
            rx_buffer=2048, tx_buffer=2048,
            nodelay=rng.chance(150),
            syn_backlog=rng.pick((8, 8, 4, 2)),
            synack_retries=rng.pick((5, 5, 3, 1)),
        )
        self.dev = Device(OUR_MAC)
        self.stack = Stack(self.dev, self.clock, addr="192.0.2.2/24", gateway="192.0.2.1",
                           tcp_config=TcpConfig(**self.cfg))
        self.resolver = Resolver(self.stack, servers=["192.0.2.1", "198.51.100.53"], try_ms=700)
        self.udp_port = self.stack.udp.bind(5000, self._udp_handler)
        # the listener (tcpip.tcp_listen) and what the harness knows of it
        self.l_sizes = (rng.pick((None, 1024, 2048, 4096, 12288)), rng.pick((None, 1024, 2048, 4096)))
        self.backlog = rng.pick((1, 2, 2, 4, 8))
        self.listener = self.stack.tcp.listen(None, LISTEN_PORT, self.backlog, self.l_sizes[0], self.l_sizes[1])
        self.owned = []  # every Tcb the application got (connect, accept); the rest must be in a queue
        self.inbound = None  # the legitimate client's transfer (passive Transfer)
        self.inbound_started = 0
        self.inbound_done = 0
        self.inbound_bytes = 0
        self.inbound_refused = 0
        self.inbound_cookie = 0  # of the clients' handshakes, answered with a SYN cookie
        self.next_cport = 20000 + rng.below(12000)
        self.client_frames = []  # the last frames the legitimate client sent (mutated copies attack)
        self.cookies_seen = []  # (listener, raddr, rport, irs, iss) of cookie SYN-ACKs the harness saw
        self.accept_pause = 0  # the server application accepts nothing before this (virtual ms)
        self.accepted = 0
        self.hostile_accepted = 0
        self.cookie_acks = 0  # ACKs fed that carry a valid fresh cookie (the harness's own computation)
        self.cookie_acks_seen = 0  # of those, answering a cookie SYN-ACK the harness saw
        self.relistens = 0
        self.lcache = None  # the half-open records as check_listener last saw them
        self.o_lsnap = None  # the listener before a single-frame batch (oracle)
        self.o_tw = None  # RCV.NXT of the TIME-WAIT record a single frame is aimed at (oracle)
        cn = self.stack.counters
        self.i_cookie_ok = cn.index("tcp_syncookies_ok")
        self.i_synack_timeout = cn.index("tcp_synack_timeout")
        self.ddev = Device(D_MAC, 576 if rng.chance(300) else 1500)
        self.dstack = Stack(self.ddev, self.clock)
        self.dhcp = DhcpClient(self.dstack, hostname="fuzz", base_ms=500, tries=3, renew_min_s=5)
        self.dhcp.start()
        self.exc = []
        self.exc_index = self.stack.counters.index("eth_drop_exception")
        self.exc_seen = [0, 0]
        self._wrap(self.stack, "main")
        self._wrap(self.dstack, "dhcp")
        self.violations = []
        self.notes = {}
        self.kinds = {}
        self.frames = 0
        self.peer_out = []
        self.held = []
        self.recent = []
        self.apps = []  # [tcb, pattern base, bytes written] of target connections we own
        self.orphans = []  # the same, closed by us, until they leave the table
        self.xfer = None
        self.lingering = []
        self.transfers_done = 0
        self.bytes_moved = 0
        self.xfer_started = 0
        self.max_apps = rng.pick((3, 5, 12))  # 12: the table reaches TcpConfig.max_connections
        self.xfer_idle = 0  # when the last transfer started (or the run)
        self.dns_done = 0
        self.dns_name = 0
        self.connect_errors = 0
        self.h_in = hashlib.sha256()
        self.h_out = hashlib.sha256()
        self.out_frames = 0
        self.heap_base = None
        self.heap_worst = None
        self.heap_worst_run = None
        self.heap_max = 0
        self.warmup = 0
        self.arp_seen = []  # addresses our stacks asked for (the world answers some)
        self.stop = False  # --stop: end the run at the first violation
        self.log = False  # --log: every frame fed and sent, in hex (to compare two runs)
        self.last = None
        self.target = 0
        self.dhcp_out = []
        self.dhcp_flagged = None
        self.gone = []
        self.cfg_seen = [_config(self.stack), _config(self.dstack)]
        self.queued = [[], []]  # each stack's ARP queue at the last collect() (frames from 6 on)
        self.seen = [[], []]  # each stack's table at the last collect()
        self.heap_before = 0
        self.heap_after = 0
        self.explained_after = 0

    def restore(self):
        """The lib modules get their own `os` back (for a caller that goes on in this process)."""
        for m, o in self.saved_os:
            m.os = o

    # -- exceptions inside poll()'s own catch --------------------------------------------------
    def _wrap(self, stack, name):
        fz = self

        def guard(fn, what):
            def call(*args):
                try:
                    return fn(*args)
                except Exception as e:
                    fz.exc.append((name, what, fz.frames, _exc_text(e)))
                    raise
            return call

        stack.input = guard(stack.input, "input")
        stack._timers = guard(stack._timers, "timers")
        stack._ack_flush = guard(stack._ack_flush, "ack_flush")

    def _udp_handler(self, buf, off, n, sip, sipo, sport):
        if not (0 <= off and 0 <= n and off + n <= len(buf) and 0 <= sipo and sipo + 4 <= len(sip)
                and 0 <= sport < 65536):
            self.violation("udp-handler-args", "UDP handler got off=%d n=%d sport=%d" % (off, n, sport))

    # -- reporting -----------------------------------------------------------------------------
    def violation(self, name, text):
        if name in self.known:
            self.notes[name] = self.notes.get(name, 0) + 1
            return
        if len(self.violations) < 20:
            self.violations.append("frame %d (seed %d): %s" % (self.frames, self.seed, text))
            if self.last is not None:
                self.violations.append("  last fed frame: %s" % hexs(self.last))
        if not self.quiet:
            print("VIOLATION frame %d: %s" % (self.frames, text))
        if self.stop:
            raise Stop()

    # -- the clock ------------------------------------------------------------------------------
    def advance(self, ms):
        self.clock.advance(ms)
        self.vt += ms

    def pick_dt(self):
        r = self.rng.below(1000)
        if r < 700:
            return self.rng.below(4)
        if r < 900:
            return self.rng.range(4, 60)
        if r < 985:
            return self.rng.range(60, 1500)
        return self.rng.range(1500, 65000)

    # -- what the stacks send --------------------------------------------------------------------
    def remember(self, f):
        r = self.recent
        if len(r) >= 16:
            r.pop(0)
        r.append(f)

    def collect(self, which, before, fed):
        """Take, check and route what a stack sent during the last poll; returns the parsed frames."""
        stack = self.stack if which == 0 else self.dstack
        out = (self.dev if which == 0 else self.ddev).take()
        for t in self.seen[which]:
            if not _in(before, t):
                before = before + [t]
        self.note_gone(stack, before)
        self.seen[which] = list(stack.tcp.tcbs)
        res = []
        if len(out) > 100:
            self.violation("output-oracle", "%d frames sent in one poll" % len(out))
        cur = _config(stack)
        cfgs = (self.cfg_seen[which], cur)
        self.cfg_seen[which] = cur
        queued = self.queued[which]
        for f in out:
            self.out_frames += 1
            self.h_out.update(f)
            if self.log:
                print("out %d %s" % (self.frames, hexs(f)))
            p = Pkt(f)
            res.append(p)
            try:
                late = False  # it waited in the ARP queue, perhaps since before a change
                for q in queued:
                    if bytes(f[6:6 + len(q)]) == q:
                        late = True
                p.late = late
                self.check_out(stack, p, before, cfgs, late)
            except Violation as v:
                self.violation(str(v).split(":")[0], "%s: frame %s" % (v, hexs(f)))
            if which == 0:
                self.route_main(p)
            else:
                self.route_dhcp(p)
        arp = stack.arp
        self.queued[which] = [bytes(arp.qbuf[j][6:arp.qlen[j]]) for j in range(len(arp.qlen)) if arp.qlen[j]]
        if self.trace == self.frames and fed:
            print("TRACE frame %d fed %s" % (self.frames, hexs(fed[0])))
            for p in res:
                print("TRACE   sent %s" % hexs(p.f))
        return res

    def check_out(self, stack, p, before, cfgs, late):
        """cfgs: the stack's (address, directed broadcast or None) at the last look and now (a
        frame may have left just before the address changed)."""
        f = p.f
        n = p.n
        mtu = stack.mtu
        addrs = (cfgs[0][0], cfgs[1][0])
        if n < 60 or n > 14 + mtu:
            raise Violation("malformed-output: frame of %d bytes" % n)
        if bytes(f[6:12]) != stack.mac:
            raise Violation("malformed-output: source MAC is not ours")
        dst_b = f[0] & 1
        if p.et == 0x0806:
            if not p.arpok:
                raise Violation("malformed-output: bad ARP header")
            op = u16(f, 20)
            if op not in (1, 2) or bytes(f[22:28]) != stack.mac or bytes(f[28:32]) not in addrs:
                raise Violation("malformed-output: ARP op %d / sender not ours" % op)
            if op == 1 and bytes(f[0:6]) != BCAST_MAC:
                raise Violation("malformed-output: ARP request not broadcast")
            if op == 1:
                self.arp_seen.append((stack is self.stack, bytes(f[38:42])))
                if len(self.arp_seen) > 8:
                    self.arp_seen.pop(0)
            return
        if p.et != 0x0800 or not p.ip_seen:
            raise Violation("malformed-output: ethertype %04x" % p.et)
        if not p.ipok:
            raise Violation("malformed-output: bad IPv4 header, length or checksum")
        if p.hl != 20 or f[22] != 64 or f[20] & 0xBF or f[21] or not f[20] & 0x40:
            raise Violation("malformed-output: IPv4 options, TTL, or fragment bits")
        if 14 + p.total < n and n != 60:
            raise Violation("malformed-output: %d bytes past the IPv4 datagram" % (n - 14 - p.total))
        src = bytes(f[26:30])
        dst = bytes(f[30:34])
        dhcp_out = p.proto == 17 and p.udpok and p.sport == 68 and p.dport == 67
        if not (dhcp_out and src == ZERO4) and not late:
            if src not in addrs:
                raise Violation("malformed-output: source %s is not our address %s" % (ip_text(src), ip_text(addrs[1])))
            for c in cfgs:
                if src == c[0] and is_martian(src, 0, c[1]):
                    raise Violation("malformed-output: sent from %s" % ip_text(src))
        bdst = dst == LIM_BCAST or dst == cfgs[0][1] or dst == cfgs[1][1]
        if bdst:
            if not (p.proto == 17 and p.udpok and p.dport == 67) or bytes(f[0:6]) != BCAST_MAC:
                raise Violation("malformed-output: to broadcast %s" % ip_text(dst))
        else:
            if dst[0] == 0 or dst[0] == 127 or 224 <= dst[0] <= 239 or dst in addrs:
                raise Violation("malformed-output: to %s" % ip_text(dst))
            if dst_b or bytes(f[0:6]) == ZERO4 + b"\x00\x00":
                raise Violation("malformed-output: unicast %s to MAC %s" % (ip_text(dst), hexs(f[0:6])))
        if p.proto == 6:
            if not p.tcpok:
                raise Violation("malformed-output: bad TCP header or checksum")
            fl = p.flags
            if fl & SYN and fl & (FIN | RST) or fl & RST and p.plen or fl & 0xE0:
                raise Violation("malformed-output: TCP flags %02x with %d bytes" % (fl, p.plen))
            self.check_options(f, p)
            if not late:
                self.check_segment(stack, p, before)
        elif p.proto == 17:
            if not p.udpok or p.ulen != p.l4len or u16(f, p.l4 + 6) == 0:
                raise Violation("malformed-output: bad UDP length or checksum")
        elif p.proto == 1:
            if not p.icmpok or p.itype not in (0, 3):
                raise Violation("malformed-output: ICMP type %d or checksum" % (p.itype if p.icmpok else -1))
        else:
            raise Violation("malformed-output: IP protocol %d" % p.proto)

    def check_options(self, f, p):
        o = p.l4 + 20
        end = p.l4 + p.thl
        while o < end:
            k = f[o]
            if k == 0:
                break
            if k == 1:
                o += 1
                continue
            if o + 1 >= end or f[o + 1] < 2 or o + f[o + 1] > end:
                raise Violation("malformed-output: TCP option %d runs past the header" % k)
            ln = f[o + 1]
            if (k == 2 and ln != 4) or (k == 4 and ln != 2) or (k == 5 and (ln - 2) % 8) or k not in (2, 4, 5):
                raise Violation("malformed-output: TCP option %d length %d" % (k, ln))
            if k == 2 and not p.flags & SYN:
                raise Violation("malformed-output: MSS option without SYN")
            o += ln
        if p.flags & SYN and not self.mss_of(f, p):
            raise Violation("malformed-output: SYN without MSS")

    def mss_of(self, f, p):
        o = p.l4 + 20
        end = p.l4 + p.thl
        while o + 3 < end:
            if f[o] == 2 and f[o + 1] == 4:
                return u16(f, o + 2)
            if f[o] <= 1:
                o += 1
            else:
                o += f[o + 1] if f[o + 1] >= 2 else 1
        return 0

    def check_segment(self, stack, p, before):
        """A segment of a connection must belong to one (in the table before or after the poll;
        a RST may also answer a segment for none), carry bytes the application wrote, at sequence
        numbers it may use, and acknowledge nothing it has not received."""
        key = (bytes(p.f[30:34]), p.dport, p.sport)
        t = None
        for x in stack.tcp.tcbs:
            if x.remote_port == p.dport and x.local_port == p.sport and x.remote_addr == key[0]:
                t = x
                break
        if t is None:
            for x in before:
                if x.remote_port == p.dport and x.local_port == p.sport and x.remote_addr == key[0]:
                    t = x
                    break
            if p.flags == SYN | ACK and p.sport == LISTEN_PORT and stack is self.stack:
                return  # a half-open record's or a cookie's SYN-ACK (Fuzz.l_check)
            if t is None and not p.flags & RST and not self.recently_gone(stack, key) \
                    and not tw_has(stack, p.f, 26, 30, p.sport, p.dport):
                raise Violation("malformed-output: segment %02x for no connection %s:%d" % (
                    p.flags, ip_text(key[0]), p.dport))
            return
        if t.state == CLOSED:
            return
        if p.flags & RST:
            return
        f = p.f
        if p.flags & ACK and t.state != SYN_SENT:
            if sdiff(p.ack, t.rcv_nxt) > 0:
                raise Violation("malformed-output: ACK %08x beyond RCV.NXT %08x" % (p.ack, t.rcv_nxt))
            if p.win > t.rx_size:
                raise Violation("malformed-output: window %d beyond the %d-byte ring" % (p.win, t.rx_size))
        if sdiff(p.seq + p.seglen(), t.snd_max) > 0:
            raise Violation("malformed-output: segment ends past SND.MAX (%08x+%d > %08x)" % (p.seq, p.seglen(), t.snd_max))
        if p.plen:
            k = sdiff(p.seq, t.iss) - 1
            base, written = self.written(t)
            if base < 0:
                return
            if k == sdiff(t.snd_una, t.iss) - 2 and p.plen == 1:
                return  # keep-alive probe: one garbage octet before SND.UNA
            o = p.l4 + p.thl
            if k < 0 or k + p.plen > written or bytes(f[o:o + p.plen]) != self.pat[base + k:base + k + p.plen]:
                raise Violation("malformed-output: %d data bytes at offset %d are not what was written (%d)" % (
                    p.plen, k, written))

    def recently_gone(self, stack, key):
        """A connection of this 4-tuple ended within the last 10 s: a segment it sent may have
        waited for ARP (the queue holds frames while a neighbour is resolved: 3 s and more)."""
        for g in self.gone:
            if g[0] is stack and g[1] == key and self.vt - g[2] <= 10000:
                return True
        return False

    def note_gone(self, stack, before):
        for t in before:
            if t.state == CLOSED or t not in stack.tcp.tcbs:
                key = (t.remote_addr, t.remote_port, t.local_port)
                for g in self.gone:
                    if g[0] is stack and g[1] == key:
                        break
                else:
                    # (for g_tcp_gone: where its sequence numbers stood)
                    self.gone.append((stack, key, self.vt, t.rcv_nxt, t.snd_nxt, t.local_addr))
                    if len(self.gone) > 32:
                        self.gone.pop(0)

    def written(self, t):
        for x in (self.xfer, self.inbound):
            if x is not None and x.tcb is t:
                return x.up_base, x.sent
        for x in self.lingering:
            if x.tcb is t:
                return x.up_base, x.sent
        for a in self.apps + self.orphans:
            if a[0] is t:
                return a[1], a[2]
        return -1, 0

    def route_main(self, p):
        f = p.f
        if p.et == 0x0806:
            if u16(f, 20) == 1:
                tpa = bytes(f[38:42])
                if tpa == PEER_IP:
                    self.peer_out.append(pad60(eth(OUR_MAC, PEER_MAC, 0x0806, arp_pkt(2, PEER_MAC, PEER_IP, OUR_MAC, OUR_IP))))
                elif tpa == H9_IP and self.rng.chance(700):
                    self.peer_out.append(pad60(eth(OUR_MAC, H9_MAC, 0x0806, arp_pkt(2, H9_MAC, H9_IP, OUR_MAC, OUR_IP))))
            return
        if p.proto == 6 and p.tcpok:
            dst = bytes(f[30:34])
            for x in (self.xfer, self.inbound) + tuple(self.lingering):
                if x is not None and x.lport == p.sport and x.rport == p.dport and x.raddr == dst:
                    try:
                        x.p_input(p)
                    except Violation as v:
                        self.violation(str(v).split(":")[0], str(v))
                        self.end_of(x)
                    return
        self.remember(f)

    def route_dhcp(self, p):
        f = p.f
        if p.et == 0x0806 and u16(f, 20) == 1 and self.rng.chance(600):
            a = arp_pkt(2, SRV_MAC, f[38:42], D_MAC, f[28:32])
            self.dhcp_out.append(pad60(eth(D_MAC, SRV_MAC, 0x0806, a)))
        self.remember(f)

    # -- invariants -----------------------------------------------------------------------------
    def check_stack(self, stack, name):
        tcp = stack.tcp
        tuples = []
        for t in tcp.tcbs:
            try:
                self.check_tcb(t)
            except Violation as v:
                self.violation("tcb-invariant", "%s: %s (%s:%d state %d)" % (name, v, ip_text(t.remote_addr), t.remote_port, t.state))
            k = (t.local_addr, t.local_port, t.remote_addr, t.remote_port)
            if k in tuples:
                self.violation("table-invariant", "%s: two connections on one 4-tuple" % name)
            tuples.append(k)
        h = tcp.hot
        if h is not None and (h.state != ESTABLISHED or h not in tcp.tcbs):
            self.violation("table-invariant", "%s: hot connection in state %d / not in the table" % (name, h.state))
        if len(tcp.pool) > tcp.pool_max:
            self.violation("table-invariant", "%s: ring pool of %d > %d" % (name, len(tcp.pool), tcp.pool_max))
        if len(tcp.tcbs) > 40:
            self.violation("table-invariant", "%s: %d connections" % (name, len(tcp.tcbs)))
        if stack is self.stack:
            self.check_listener(stack)
        arp = stack.arp
        st = arp.state
        for i in range(len(st)):
            if st[i] > 3:  # FREE, INCOMPLETE, REACHABLE, STALE
                self.violation("arp-invariant", "%s: ARP entry %d state %d" % (name, i, st[i]))
            if st[i] >= 2 and arp.mac[6 * i] & 1:
                self.violation("arp-invariant", "%s: ARP entry %d has a multicast MAC" % (name, i))
        for j in range(len(arp.qlen)):
            q = arp.qlen[j]
            if q and (arp.qbuf[j] is None or len(arp.qbuf[j]) < q):
                self.violation("arp-invariant", "%s: ARP queue slot %d" % (name, j))
        n = stack.cnt[self.exc_index]
        k = 0 if stack is self.stack else 1
        if n != self.exc_seen[k]:
            self.exc_seen[k] = n
            self.violation("exception", "%s: eth_drop_exception = %d: %s" % (name, n, self.exc[-1:] if self.exc else "?"))
        if self.exc:
            self.violation("exception", "%s: %r" % (name, self.exc))
            self.exc = []

    def check_tcb(self, t):
        st = t.state
        if not SYN_SENT <= st <= LAST_ACK:
            raise Violation("state %d in the table" % st)
        una = t.s_una
        nxt = t.s_nxt
        mx = t.s_max
        if not una <= nxt <= mx:
            raise Violation("SND.UNA %d SND.NXT %d SND.MAX %d (relative)" % (una, nxt, mx))
        for v in (una, nxt, mx, t.r_nxt, t.r_wedge, t.s_wl2, t.r_wl1):
            if not -0x40000000 < v < 0x40000000:
                raise Violation("relative sequence value %d beyond small-int range" % v)
        syn = 1 if st == SYN_SENT or st == SYN_RECEIVED else 0
        fin = 1 if t.fin_sent else 0
        if mx - una > t.tx_len + syn + fin:
            raise Violation("%d in flight, %d in the send ring (syn %d fin %d)" % (mx - una, t.tx_len, syn, fin))
        if not 0 <= t.tx_len <= t.tx_size or not 0 <= t.rx_len <= t.rx_size:
            raise Violation("ring fill tx %d/%d rx %d/%d" % (t.tx_len, t.tx_size, t.rx_len, t.rx_size))
        if t.tx_len and (len(t.tx) < t.tx_size or not 0 <= t.tx_head < t.tx_size):
            raise Violation("send ring %d bytes, head %d, size %d" % (len(t.tx), t.tx_head, t.tx_size))
        if t.rx_len and (len(t.rx) < t.rx_size or not 0 <= t.rx_head < t.rx_size):
            raise Violation("receive ring %d bytes, head %d, size %d" % (len(t.rx), t.rx_head, t.rx_size))
        if not 48 <= t.mss <= t.adv_mss:
            raise Violation("MSS %d" % t.mss)
        if not 0 <= t.snd_wnd <= 65535 or t.snd_wnd > t.max_snd_wnd and st != SYN_SENT:
            raise Violation("SND.WND %d MAX.SND.WND %d" % (t.snd_wnd, t.max_snd_wnd))
        if not 0 < t.cwnd < 1 << 24:
            raise Violation("cwnd %d" % t.cwnd)
        o = t.ooo
        k = t.ooo_n
        if not 0 <= k <= len(o) // 2:
            raise Violation("ooo_n %d" % k)
        free = t.rx_size - t.rx_len
        for i in range(k):
            s = o[2 * i]
            e = o[2 * i + 1]
            if not t.r_nxt < s < e <= t.r_nxt + free:
                raise Violation("out-of-order range [%d, %d) with RCV.NXT %d, %d free" % (s, e, t.r_nxt, free))
            for j in range(i):
                if o[2 * j] <= e and s <= o[2 * j + 1]:
                    raise Violation("out-of-order ranges overlap")
        # liveness: whatever waits on a timer has one
        if (st == SYN_SENT or st == TIME_WAIT or st == SYN_RECEIVED) and not t.timer_on:
            raise Violation("no timer")
        if mx != una and not t.timer_on:
            raise Violation("%d bytes in flight and no timer" % (mx - una))
        if st == ESTABLISHED or st == CLOSE_WAIT:
            if t.tx_len > nxt - una and mx == una and not t.timer_on:
                raise Violation("%d bytes unsent, nothing in flight, no timer" % (t.tx_len - (nxt - una)))
        if st == FIN_WAIT_2 and t.orphan and not t.aux_on:
            raise Violation("orphan in FIN-WAIT-2 without its timer")

    # -- heap -------------------------------------------------------------------------------------
    def explained(self):
        """The big buffers the stacks and this harness hold at the moment (rings, the ring pool,
        the ARP queue, frames waiting in the harness), each counted once: bytes, and objects."""
        seen = []
        for s in (self.stack, self.dstack):
            for t in s.tcp.tcbs:
                seen.append(t.tx)
                seen.append(t.rx)
            for r in s.tcp.pool:
                seen.append(r)
            for b in s.arp.qbuf:
                if b is not None:
                    seen.append(b)
        for a in self.apps:
            seen.append(a[0].tx)
            seen.append(a[0].rx)
        for x in (self.xfer, self.inbound) + tuple(self.lingering):
            if x is not None and x.tcb is not None:
                seen.append(x.tcb.tx)
                seen.append(x.tcb.rx)
        if self.listener is not None:
            for t in self.listener.queue:
                seen.append(t.tx)
                seen.append(t.rx)
        for lst in (self.recent, self.peer_out, self.dhcp_out, self.queued[0], self.queued[1], self.client_frames):
            for f in lst:
                seen.append(f)
        # the harness's own small records (bounded lists of tuples): about so many bytes on
        # MicroPython, so many objects on CPython
        total = (160 * len(self.gone) + 48 * len(self.arp_seen) + 32 * len(self.orphans) + 112 * len(self.cookies_seen)
                 + 8 * len(self.owned))
        objs = 5 * len(self.gone) + 2 * len(self.arp_seen) + 2 * len(self.orphans) + 3 * len(self.cookies_seen)
        for i in range(len(seen)):
            r = seen[i]
            if r is NO_RING or _in(seen[0:i], r):
                continue
            total += len(r)
            objs += 1
        return total, objs

    def heap_used(self):
        gc.collect()
        if MICROPYTHON:
            return gc.mem_alloc()
        return sys.getallocatedblocks()

    def heap_sample(self):
        """What the heap holds beyond the buffers above, against the number of connections
        (on MicroPython bytes, gc.mem_alloc; on CPython allocated blocks,
        sys.getallocatedblocks: tracemalloc would make the run 4x slower). The first sample
        after warm-up (a fifth of the run) is the base; the worst excess over it is kept."""
        used = self.heap_used()
        ex, objs = self.explained()
        conns = len(self.stack.tcp.tcbs) + len(self.dstack.tcp.tcbs)
        conns += (getattr(self.stack.tcp, "tw_n", 0) + getattr(self.dstack.tcp, "tw_n", 0)) // 16
        if used > self.heap_max:
            self.heap_max = used
        free = used - (ex if MICROPYTHON else objs)
        h = (self.frames, used, free, conns)
        if self.frames < self.warmup:
            return used
        if self.heap_base is None:
            self.heap_base = h
            return used
        base = self.heap_base
        over = free - base[2] - HEAP_PER_CONN * (conns - base[3])
        if self.heap_worst is None or over > self.heap_worst[0]:
            self.heap_worst = (over, h)
        return used

    def check_heap(self):
        w = self.heap_worst
        if w is not None and w[0] > HEAP_SLACK:
            self.violation("heap-growth", "heap grew by %d %s beyond buffers and connections (at frame %d: %r; base %r)" % (
                w[0], HEAP_UNIT, w[1][0], w[1], self.heap_base))

    # -- the target connections and the application ----------------------------------------------
    def app_actions(self):
        rng = self.rng
        s = self.stack
        if len(self.apps) < self.max_apps and rng.chance(60):  # (up to TcpConfig.max_connections, then ENOBUFS)
            dst, port = rng.pick(TARGETS)
            before = list(s.tcp.tcbs)
            try:
                t = s.tcp.connect(None, 0, dst, port, rng.pick((None, 600, 2048, 5000)), rng.pick((None, 600, 2048)))
                self.owned.append(t)
                self.apps.append([t, rng.below(PAT_LEN - 65536), 0])
                if rng.chance(200):
                    t.rebase_at = rng.range(500, 5000)
                if rng.chance(150):
                    t.set_keepalive(True, rng.range(500, 5000), rng.range(100, 2000), rng.range(1, 4))
            except OSError:
                self.connect_errors += 1
            self.collect(0, before, None)
        for o in self.orphans[:]:
            if o[0] not in s.tcp.tcbs:
                self.orphans.remove(o)
        if not self.apps or not rng.chance(300):
            return
        a = rng.pick(self.apps)
        t = a[0]
        r = rng.below(100)
        if r < 40:
            if t.state in (ESTABLISHED, CLOSE_WAIT) and a[2] < 60000:
                n = rng.pick((1, 10, 536, 1460, 3000, 5000))
                if a[2] + n > 60000:
                    n = 60000 - a[2]
                a[2] += t.send(self.pat, a[1] + a[2], n)
        elif r < 70:
            t.recv_into(self.scratch, 0, rng.pick((1, 100, 4096)))
        elif r < 80:
            t.shutdown_write()
        elif r < 94:
            t.close()
            self.apps.remove(a)
            self.orphans.append(a)  # what it still sends is checked against what was written
        elif r < 97:
            t.abort()
            self.apps.remove(a)
        else:
            t.set_nodelay(rng.chance(500))
        if t.state == CLOSED and a in self.apps:
            self.apps.remove(a)

    def xfer_step(self, start=True):
        """The active transfer, the listener's legitimate client and the transfers that finished
        (their peers still answer)."""
        x = self.xfer
        if x is None:
            if start and (self.rng.chance(200) or self.frames < 3):
                try:
                    self.xfer = Transfer(self, self.xfer_started + 1)
                    self.xfer_started += 1
                    self.xfer_idle = self.vt
                except OSError as e:
                    # the table may be full of the targets (max_connections): later; but not forever
                    if self.vt - self.xfer_idle > 900000:
                        self.violation("transfer-stalled", "no transfer could start for 900 s: %r" % (e,))
                        self.xfer_idle = self.vt
        else:
            x.app_step()
            x.p_step()
            x.check_progress()
            if x.done():
                self.transfers_done += 1
                self.bytes_moved += x.up_len + x.down_len
                self.xfer = None
                self.lingering.append(x)
        try:
            self.inbound_step(start)
        except Violation as v:
            self.violation(str(v).split(":")[0], str(v))
            self.end_inbound()
        for y in self.lingering[:]:
            if y.tcb not in self.stack.tcp.tcbs or self.vt - y.progress_at > 300000:
                self.lingering.remove(y)
            else:
                y.p_step()

    # -- the listener: the server application, what the harness knows, the checks ---------------
    def client_port(self):
        """A fresh source port for the next legitimate client (20000-31999, never its last ones)."""
        p = self.next_cport
        self.next_cport = 20000 + (p - 20000 + 1 + self.rng.below(8)) % 12000
        return p

    def server_step(self, draining=False):
        """The server application: accept() takes the oldest connection of Listener.queue (pop(0),
        as tcpip.listener.accept does); now and then it pauses and the queue fills up. The
        legitimate client's connection goes to its transfer; any other (an attacker completed a
        handshake: it saw our SYN-ACK) becomes one of the application's connections, or is
        closed or aborted at once."""
        x = self.listener
        if x is None:
            return
        rng = self.rng
        if not draining:
            if self.vt < self.accept_pause:
                return
            if rng.chance(10):
                self.accept_pause = self.vt + rng.range(50, 30000)
                return
        q = x.queue
        while q:
            t = q.pop(0)
            self.accepted += 1
            self.owned.append(t)
            ib = self.inbound
            if ib is not None and not ib.accepted and t.remote_port == ib.rport and t.remote_addr == ib.raddr:
                ib.accept(t)
                continue
            self.hostile_accepted += 1
            if t.state == CLOSED:
                continue
            if draining or len(self.apps) >= self.max_apps or rng.chance(300):
                if rng.chance(500):
                    t.close()
                    self.orphans.append([t, 0, 0])
                else:
                    t.abort()
            else:
                self.apps.append([t, rng.below(PAT_LEN - 65536), 0])

    def relisten(self):
        """close() of the listening socket (Tcp.unlisten: the records go, what nobody accepted is
        reset), and listen() again."""
        rng = self.rng
        tcp = self.stack.tcp
        x = self.listener
        q = list(x.queue)
        tcp.unlisten(x)
        if tcp.listeners is not None or x.syn_n or x.queue:
            self.violation("listen-invariant", "after unlisten: listeners %r, %d records, %d queued" % (
                tcp.listeners, x.syn_n, len(x.queue)))
        for t in q:
            if t.state != CLOSED or _in(tcp.tcbs, t):
                self.violation("listen-invariant", "a connection nobody accepted outlived its listener (state %d)" % t.state)
        self.relistens += 1
        self.backlog = rng.pick((1, 2, 2, 4, 8))
        self.listener = tcp.listen(None, LISTEN_PORT, self.backlog, self.l_sizes[0], self.l_sizes[1])
        self.lcache = None

    def inbound_step(self, start=True):
        x = self.inbound
        if x is None:
            if start and self.listener is not None and (self.rng.chance(200) or self.frames < 3):
                self.inbound_started += 1
                self.inbound = Transfer(self, self.inbound_started, True)
                self.inbound.p_step()  # its SYN
            return
        x.app_step()
        x.p_step()
        if x.refused:
            self.inbound_refused += 1
            self.inbound = None
            return
        x.check_progress()
        if x.done():
            self.inbound_done += 1
            self.inbound_bytes += x.up_len + x.down_len
            self.inbound = None
            self.lingering.append(x)

    def end_inbound(self):
        """After the legitimate client's transfer failed (reported): abort it, a new one comes."""
        x = self.inbound
        self.inbound = None
        if x is not None and x.tcb is not None:
            x.tcb.abort()

    def end_of(self, x):
        if x is self.xfer:
            self.end_transfer()
        elif x is self.inbound:
            self.end_inbound()
        elif _in(self.lingering, x):
            self.lingering.remove(x)

    def client_synack(self, x, p):
        """The legitimate client got the SYN-ACK for its SYN (Fuzz.l_check has checked its MSS,
        window and acknowledgment): SACK-permitted only if the client offered it."""
        mss, sack = syn_options(p.f, p)
        if sack and not x.p_sack:
            raise Violation("listen-synack: SACK-permitted in the SYN-ACK to a client that did not offer it")
        if not sack and self.cookie_valid(self.listener, x.raddr, x.rport, x.iss, p.seq, self.cookie_clock()):
            self.inbound_cookie += 1

    def cookie_clock(self):
        """The listener's cookie clock now (64-second steps of the ISN generator's extended count),
        read without moving it."""
        isn = self.stack.tcp.isn
        d = self.clock.ticks_diff(self.clock.ticks_ms(), isn._last_ms)
        return ((isn._ext_ms + (d if d > 0 else 0)) >> 16) & 0xFF

    def cookie_valid(self, x, raddr, rport, irs, cookie, now):
        """cookie is the SYN cookie of listener x for the peer raddr:rport with ISN irs, made at
        the clock's step now or the one before."""
        if x is None:
            return False
        count = cookie >> 24
        if (now - count) & 0xFF > 1:
            return False
        return cookie_of(x.secret, raddr, OUR_IP, rport, x.port, irs, count, (cookie >> 22) & 3) == cookie

    def l_snap(self):
        x = self.listener
        if x is None:
            return None
        c = self.stack.cnt
        return (x, bytes(x.syn[0:x.syn_n * REC]), list(x.queue), c[self.i_cookie_ok], c[self.i_synack_timeout],
                list(self.stack.tcp.tcbs), self.stack.tcp.tw_n)

    def l_check(self, snap, fed, out):
        """What one poll of the main stack did at the listener, against the frames fed and sent:
        half-open records made only by a SYN fed now (with its MSS and SACK-permitted), gone only
        for a RST at IRS+1, the completing ACK or the last SYN-ACK retry; every SYN-ACK with our
        MSS and window and ack = the peer's ISN + 1, for a record or (a cookie) a SYN fed now;
        cookies accepted only for ACKs that answer a cookie SYN-ACK the harness saw, and every
        such ACK that reaches the listener accepted; connections made only by an ACK that
        completes a record or a cookie."""
        x = self.listener
        if snap is None or snap[0] is not x:
            return
        c = self.stack.cnt
        rec_a = bytes(x.syn[0:x.syn_n * REC])
        d_ok = c[self.i_cookie_ok] - snap[3]
        synacks = [q for q in out if q.proto == 6 and q.tcpok and q.sport == LISTEN_PORT and q.flags & SYN]
        segs = []
        for f in fed or ():
            if to_port(f, LISTEN_PORT):
                q = Pkt(f)
                if q.tcpok and bytes(f[30:34]) == OUR_IP:
                    segs.append(q)
        new = [t for t in x.queue if not _in(snap[2], t)]
        if rec_a == snap[1] and not synacks and not segs and not d_ok and not new:
            return
        before = l_decode(snap[1])
        after = l_decode(rec_a)
        now = self.cookie_clock()
        cfg = self.stack.tcp.config
        made = 0
        for r in after:
            if rec_find(before, r[0], r[1], r[4], r[5]) is not None:
                continue
            made += 1
            s = None
            for q in segs:
                if q.sport == r[1] and bytes(q.f[26:30]) == r[0] and q.flags & (SYN | ACK | RST) == SYN and q.seq == r[5]:
                    s = q
            if s is None:
                self.violation("listen-record", "a half-open record for %s:%d ISN %08x that no SYN fed now asked for" % (
                    ip_text(r[0]), r[1], r[5]))
                continue
            mss, sack = syn_options(s.f, s)
            want = mss or 536
            if want < MIN_MSS:
                want = MIN_MSS
            if r[3] != want or r[6] != (1 if sack else 0) or r[7] != 0 or r[2] != OUR_IP:
                self.violation("listen-record", "the record for %s:%d has MSS %d SACK %d retries %d, its SYN said MSS %d"
                               " SACK %d: %s" % (ip_text(r[0]), r[1], r[3], r[6], r[7], want, sack, hexs(s.f)))
        timeouts = c[self.i_synack_timeout] - snap[4]
        for r in before:
            if rec_find(after, r[0], r[1], r[4], r[5]) is not None:
                continue
            ok = False
            for q in segs:
                if q.sport == r[1] and bytes(q.f[26:30]) == r[0]:
                    if q.flags & RST and q.seq == (r[5] + 1) & M32:
                        ok = True
                    elif q.flags & (SYN | RST | ACK) == ACK and q.ack == (r[4] + 1) & M32 and q.seq == (r[5] + 1) & M32:
                        ok = True
            if not ok and timeouts > 0 and r[7] >= cfg.synack_retries:
                ok = True
                timeouts -= 1
            if not ok:
                self.violation("listen-record", "the half-open record of %s:%d (ISS %08x IRS %08x, %d retries) went without"
                               " a RST at IRS+1, the completing ACK or its last retry" % (ip_text(r[0]), r[1], r[4], r[5], r[7]))
        cap = cfg.syn_backlog
        full = len(before) >= cap or len(after) >= cap or len(before) + made >= cap
        our_mss = self.stack.mtu - 40
        win = x.rx_size if x.rx_size < 65535 else 65535
        for q in synacks:
            f = q.f
            mss, sack = syn_options(f, q)
            raddr = bytes(f[30:34])
            irs = (q.ack - 1) & M32
            if q.flags != SYN | ACK or mss != our_mss or q.win != win:
                self.violation("listen-synack", "flags %02x, MSS %d, window %d (ours: MSS %d, window %d): %s" % (
                    q.flags, mss, q.win, our_mss, win, hexs(f)))
            r = rec_find(before, raddr, q.dport, q.seq, irs) or rec_find(after, raddr, q.dport, q.seq, irs)
            if r is not None:
                if sack != bool(r[6]):
                    self.violation("listen-synack", "SACK-permitted %s, the record says %d: %s" % (sack, r[6], hexs(f)))
                continue
            valid = self.cookie_valid(x, raddr, q.dport, irs, q.seq, now)
            if q.late:
                ok = True  # it waited for ARP: its record may have gone since
            else:
                s = None
                for p in segs:
                    if p.sport == q.dport and bytes(p.f[26:30]) == raddr and p.flags & (SYN | ACK | RST) == SYN and p.seq == irs:
                        s = p
                ok = s is not None and valid and not sack and full and cfg.syncookies
            if not ok:
                self.violation("listen-synack", "SYN-ACK to %s:%d ISS %08x ACK %08x is for no record and no cookie answering a"
                               " SYN fed now (valid cookie %s, SACK %s, records %d/%d): %s" % (
                                   ip_text(raddr), q.dport, q.seq, q.ack, valid, sack, len(after), cap, hexs(f)))
            elif valid:
                cs = self.cookies_seen
                if len(cs) >= 24:
                    cs.pop(0)
                cs.append((x, raddr, q.dport, irs, q.seq))
        valid_acks = 0  # ACKs fed now that carry a valid fresh cookie (the harness's computation)
        seen_acks = 0  # ... and answer a cookie SYN-ACK the harness saw
        reach = 0  # ... and surely reach the listener (the first segment of their 4-tuple in the
        # batch, delivered, no connection, record or TIME-WAIT record on it): each must be accepted
        tuples = []
        tcp = self.stack.tcp
        for q in segs:
            f = q.f
            src = bytes(f[26:30])
            first = not (src, q.sport) in tuples
            if first:
                tuples.append((src, q.sport))
            if q.flags & (SYN | RST | ACK) != ACK:
                continue
            irs = (q.seq - 1) & M32
            ck = (q.ack - 1) & M32
            if not self.cookie_valid(x, src, q.sport, irs, ck, now):
                continue
            valid_acks += 1
            for e in self.cookies_seen:
                if e[0] is x and e[2] == q.sport and e[3] == irs and e[4] == ck and e[1] == src:
                    seen_acks += 1
                    break
            if (first and bytes(f[0:6]) == OUR_MAC and not q.frag and not is_martian(f, 26, NET_BCAST)
                    and rec_tuple(before, src, q.sport) is None
                    and (not tcp.tw_n or tcp.tw_index(f, 30, LISTEN_PORT, f, 26, q.sport) < 0)):
                for t in snap[5]:
                    if t.remote_port == q.sport and t.local_port == LISTEN_PORT and t.remote_addr == src:
                        break
                else:
                    reach += 1
        self.cookie_acks += valid_acks
        self.cookie_acks_seen += seen_acks
        if d_ok > seen_acks:
            self.violation("listen-cookie", "%d SYN cookie(s) accepted, but of the %d segment(s) fed now to port %d only %d"
                           " carry a valid one and %d answer a cookie SYN-ACK we sent" % (
                               d_ok, len(segs), LISTEN_PORT, valid_acks, seen_acks))
        elif d_ok < reach and tcp.tw_n >= snap[6]:  # (a TIME-WAIT record that went in the poll may have taken one)
            self.violation("listen-cookie", "%d ACK(s) with a valid cookie reached the listener, %d accepted" % (reach, d_ok))
        for t in new:
            r = rec_find(before, t.remote_addr, t.remote_port, t.iss, t.irs)
            s = None
            for q in segs:
                if (q.sport == t.remote_port and bytes(q.f[26:30]) == t.remote_addr and q.flags & (SYN | RST | ACK) == ACK
                        and q.ack == (t.iss + 1) & M32 and q.seq == (t.irs + 1) & M32):
                    s = q
            if t.local_port != LISTEN_PORT or s is None or r is None and not self.cookie_valid(
                    x, t.remote_addr, t.remote_port, t.irs, t.iss, now):
                self.violation("listen-conn", "a connection from %s:%d (ISS %08x IRS %08x) made without an ACK that completes"
                               " a record or a valid cookie (ACK fed: %s, record: %s)" % (
                                   ip_text(t.remote_addr), t.remote_port, t.iss, t.irs, s is not None, r is not None))
            elif r is not None and t.mss > r[3]:
                self.violation("listen-conn", "connection MSS %d above the peer's %d" % (t.mss, r[3]))

    def check_listener(self, stack):
        """Per frame: the half-open records (at most syn_backlog, each well-formed, their
        deadlines ahead and known to the timer), the accept queue (at most backlog, each of its
        connections in the table or closed), no connection the application cannot reach."""
        tcp = stack.tcp
        x = self.listener
        if x is None:
            return
        if tcp.listeners is None or not _in(tcp.listeners, x):
            self.violation("listen-invariant", "the listener is not in Tcp.listeners")
        cfg = tcp.config
        cap = cfg.syn_backlog
        n = x.syn_n
        if not 0 <= n <= cap or len(x.syn_dl) != cap or len(x.syn) != cap * REC:
            self.violation("listen-invariant", "half-open records %d (room for %d, %d bytes) with syn_backlog %d" % (
                n, len(x.syn_dl), len(x.syn), cap))
            n = min(n, len(x.syn_dl), len(x.syn) // REC)
        if len(x.queue) > x.backlog:
            self.violation("listen-invariant", "accept queue of %d > backlog %d" % (len(x.queue), x.backlog))
        for t in x.queue:
            if t.state == CLOSED:
                if _in(tcp.tcbs, t):
                    self.violation("listen-invariant", "a closed connection in the queue and the table")
            elif t.state not in (ESTABLISHED, CLOSE_WAIT) or not _in(tcp.tcbs, t) or t.local_port != x.port:
                self.violation("listen-invariant", "queued connection in state %d, port %d, in the table %s" % (
                    t.state, t.local_port, _in(tcp.tcbs, t)))
        if len(self.owned) > len(tcp.tcbs):
            self.owned = [t for t in self.owned if _in(tcp.tcbs, t)]  # (those that left the table)
        for t in tcp.tcbs:
            if not _in(self.owned, t) and not _in(x.queue, t):
                self.violation("listen-orphan", "a connection %s:%d -> %d (state %d) neither the application's nor in"
                               " the accept queue" % (ip_text(t.remote_addr), t.remote_port, t.local_port, t.state))
        if not n:
            return
        now = stack.clock.ticks_ms()
        if self.clock.ticks_diff(x.syn_next, now) <= 0:
            self.violation("listen-invariant", "a half-open record is overdue (next deadline %d ms ago)" % (
                self.clock.ticks_diff(now, x.syn_next)))
        b = bytes(x.syn[0:n * REC])
        key = (b, x.syn_dl[0:n], x.syn_next)
        if key == self.lcache:
            return
        self.lcache = key
        recs = l_decode(b)
        bcast = _config(stack)[1]
        tuples = []
        for i in range(n):
            r = recs[i]
            bad = None
            if is_martian(r[0], 0, bcast) or r[0] == OUR_IP or r[1] == 0 or r[2] != OUR_IP:
                bad = "addresses"
            elif not MIN_MSS <= r[3] <= 65535 or r[6] > 1 or r[7] > cfg.synack_retries or r[8]:
                bad = "fields"
            elif (r[0], r[1]) in tuples:
                bad = "a second record for one 4-tuple"
            elif tcp._lookup(OUR_IP, LISTEN_PORT, r[0], r[1]) is not None:
                bad = "a connection holds its 4-tuple"
            elif tcp.tw_n and tcp.tw_index(OUR_IP, 0, LISTEN_PORT, r[0], 0, r[1]) >= 0:
                bad = "a TIME-WAIT record holds its 4-tuple"
            else:
                d = self.clock.ticks_diff(x.syn_dl[i], x.syn_next)
                e = self.clock.ticks_diff(x.syn_dl[i], now)
                if d < 0 or e > cfg.rto_max_ms:
                    bad = "deadline %d ms ahead, %d after the listener's next" % (e, d)
            tuples.append((r[0], r[1]))
            if bad is not None:
                self.violation("listen-invariant", "half-open record %d: %s (%s:%d MSS %d ISS %08x IRS %08x flags %d retries %d"
                               " spare %d)" % (i, bad, ip_text(r[0]), r[1], r[3], r[4], r[5], r[6], r[7], r[8]))

    def tw_of_listener(self):
        """(remote address, remote port, RCV.NXT) of the TIME-WAIT records on LISTEN_PORT."""
        tcp = self.stack.tcp
        out = []
        tw = tcp.tw
        for i in range(tcp.tw_n):
            k = i * 24
            if u16(tw, k + 8) == LISTEN_PORT:
                out.append((bytes(tw[k + 4:k + 8]), u16(tw, k + 10), u32(tw, k + 16)))
        return out

    def listen_oracle(self, p, f, mine):
        """A single segment to the listening port, for no connection and no TIME-WAIT record:
        RFC 9293 3.10.7.2 (LISTEN) and 3.10.7.4 (SYN-RECEIVED), as tcpip.tcp_listen answers. (An
        answer may wait for ARP, so an expected RST may be missing; a wrong one may not be there.)"""
        snap = self.o_lsnap
        x = snap[0]
        src = bytes(f[26:30])
        mine = [q for q in mine if q.sport == p.dport and q.dport == p.sport and bytes(q.f[30:34]) == src]
        fl = p.flags
        recs = l_decode(snap[1])
        rec = None
        for r in recs:
            if r[0] == src and r[1] == p.sport:
                rec = r
        bad = None
        rst_ok = len(mine) == 1 and mine[0].flags == RST and mine[0].seq == p.ack
        if fl & RST:
            if mine:
                bad = "a RST answered"
        elif fl & SYN:
            if fl & ACK:
                if mine and not rst_ok:
                    bad = "a SYN-ACK not answered with <SEQ=SEG.ACK><CTL=RST>"
            elif len(mine) > 1 or mine and mine[0].flags != SYN | ACK:
                bad = "a SYN answered with %d segment(s), flags %02x" % (len(mine), mine[0].flags)
            elif mine and rec is None and len(snap[2]) >= x.backlog:
                bad = "a SYN answered while the accept queue was full"  # (one onto a record: as Linux, its SYN-ACK again)
            elif mine and rec is not None and (rec[5] != p.seq or mine[0].seq != rec[4]):
                bad = "a SYN onto a half-open record (IRS %08x ISS %08x) answered with ISS %08x" % (rec[5], rec[4], mine[0].seq)
        elif fl & ACK:
            if rec is not None and p.ack != (rec[4] + 1) & M32:
                if mine and not rst_ok:
                    bad = "an unacceptable ACK for a half-open record not answered with <SEQ=SEG.ACK><CTL=RST>"
            elif rec is not None and p.seq != (rec[5] + 1) & M32:
                if mine:
                    bad = "an ACK with the wrong sequence number for a half-open record answered"
            elif rec is not None or self.cookie_valid(x, src, p.sport, (p.seq - 1) & M32, (p.ack - 1) & M32, self.cookie_clock()):
                for q in mine:
                    if q.flags & (RST | SYN):
                        bad = "a completing ACK answered with flags %02x" % q.flags
            elif mine and not rst_ok:
                bad = "an ACK for no record and no valid cookie not answered with <SEQ=SEG.ACK><CTL=RST>"
        elif mine:
            bad = "a segment without SYN, RST or ACK answered"
        if bad is not None:
            self.violation("output-oracle", "listening port: %s: fed %s, sent %s" % (bad, hexs(f), hexs(mine[0].f) if mine else "-"))

    # -- frames for the listener ----------------------------------------------------------------
    def flood_src(self):
        rng = self.rng
        r = rng.below(10)
        if r < 4:
            return bytes((192, 0, 2, rng.range(3, 254)))  # on-link: their SYN-ACKs wait for ARP
        if r < 5:
            return rng.pick((PEER_IP, H9_IP, REMOTE_IP))
        a = rng.range(1, 223)
        return bytes((a if a != 127 else 128, rng.below(256), rng.below(256), rng.range(1, 254)))  # behind the gateway

    def l_seg(self, stack, src, sport, seq, ack, flags, opts=b"", payload=b""):
        rng = self.rng
        win = rng.pick((65535, 64240, 29200, 1024, 0, rng.below(65536)))
        seg = tcp_hdr(sport, LISTEN_PORT, seq, ack, flags, win, opts, payload)
        return self.wrap_ip(stack, src, 6, seg)

    def syn_opts(self, odd):
        """A SYN's options: as clients send them, or odd (MSS 0, tiny, huge, twice, malformed
        lengths, after END, SACK-permitted alone or malformed, ...)."""
        rng = self.rng
        o = bytearray()
        if not odd:
            if not rng.chance(100):
                o += bytes((2, 4)) + rng.pick((1460, 1460, 536, 1400, 8960, 1220)).to_bytes(2, "big")
            if rng.chance(500):
                o += b"\x01\x01\x04\x02"  # SACK-permitted
            if rng.chance(300):
                o += b"\x01\x03\x03\x07"  # window scale
            if rng.chance(300):
                o += b"\x01\x01\x08\x0a" + rng.bytes(8)  # timestamps
            return o
        r = rng.below(12)
        if r == 0:
            o += b"\x02\x04\x00\x00"  # MSS 0
        elif r == 1:
            o += b"\x02\x04\xff\xff"  # MSS 65535
        elif r == 2:
            o += bytes((2, 4, 0)) + bytes((rng.pick((1, 20, 47, 48, 49, 88)),))
        elif r == 3:
            o += bytes((2, 4)) + rng.pick((0, 100, 1460, 9000)).to_bytes(2, "big")
            o += bytes((2, 4)) + rng.pick((0, 536, 1460, 65535)).to_bytes(2, "big")  # twice: the last counts
        elif r == 4:
            o += rng.pick((b"\x02\x03\x05", b"\x02\x05\x05\xb4\x00", b"\x02\x02", b"\x02\x00\x05\xb4", b"\x02\x01\x05\xb4",
                           b"\x02\x06\x05\xb4\x00\x00", b"\x02\xff\x05\xb4"))
        elif r == 5:
            o += bytes((rng.pick((8, 3, 30, 2)), rng.pick((40, 200, 255, 9)))) + rng.bytes(rng.below(6))  # past the header
        elif r == 6:
            o += rng.pick((b"\x04\x02", b"\x04\x03\x00", b"\x04\x02\x04\x02", b"\x04\x01", b"\x04\x00"))
        elif r == 7:
            o += b"\x00\x02\x04\x05\xb4"  # END, then an MSS that is not read
        elif r == 8:
            o += b"\x01" * rng.range(1, 30) + b"\x02\x04\x02\x18\x04\x02"
        elif r == 9:
            o += bytes((rng.range(9, 254), rng.range(2, 8))) + rng.bytes(6) + b"\x02\x04\x04\x00"
        elif r == 10:
            o += b"\x01" * 36 + b"\x02\x04\x05\xb4"  # 40 bytes, the MSS last
        else:
            o = self.tcp_options(None)
        if len(o) > 40:
            o = o[0:40]
        while len(o) & 3:
            o += b"\x00" if rng.chance(500) else b"\x01"
        return o

    def g_listen_syn(self, stack, odd):
        rng = self.rng
        pl = self.payload(200) if rng.chance(50) else b""  # data on a SYN (not kept: no Fast Open)
        return self.l_seg(stack, self.flood_src(), rng.range(1, 65535), rng.next(), rng.next() if rng.chance(100) else 0,
                          SYN if not rng.chance(30) else SYN | rng.pick((FIN, PSH, URG, 0x40, 0x80)), self.syn_opts(odd), pl)

    def g_listen(self, stack):
        """A frame aimed at the listener: (kind, frame)."""
        rng = self.rng
        x = self.listener
        recs = l_decode(bytes(x.syn[0:x.syn_n * REC]))
        cs = [e for e in self.cookies_seen if e[0] is x]
        if self.vt < self.accept_pause and (recs or cs) and rng.chance(400):
            # while the server does not accept: handshakes completed (by whoever saw our SYN-ACKs)
            # fill the accept queue
            if recs and (not cs or rng.chance(500)):
                e = rng.pick(recs)
                return "listen-complete", self.l_seg(stack, e[0], e[1], (e[5] + 1) & M32, (e[4] + 1) & M32, ACK)
            e = rng.pick(cs)
            return "listen-complete", self.l_seg(stack, e[1], e[2], (e[3] + 1) & M32, (e[4] + 1) & M32, ACK)
        r = rng.below(100)
        if r < 26:
            return "listen-flood", self.g_listen_syn(stack, False)
        if r < 38:
            return "listen-odd-syn", self.g_listen_syn(stack, True)
        if r < 46 and recs:
            # the SYN again (its SYN-ACK again), or with another ISN (dropped)
            e = rng.pick(recs)
            seq = e[5] if rng.chance(500) else (e[5] + rng.pick((1, -1, 1000, 0x80000000, rng.next()))) & M32
            return "listen-resyn", self.l_seg(stack, e[0], e[1], seq, 0, SYN, self.syn_opts(rng.chance(300)))
        if r < 58 and cs:
            # the ACK for a cookie SYN-ACK: exact (a connection), or near
            e = rng.pick(cs)
            src = e[1]
            sport = e[2]
            seq = (e[3] + 1) & M32
            ack = (e[4] + 1) & M32
            flags = ACK
            pl = b""
            k = rng.below(12)
            if k == 0:
                pl = self.payload(500)
            elif k == 1:
                ack ^= 1 << rng.below(22)  # a bit of the hash
            elif k == 2:
                ack ^= 1 << (22 + rng.below(2))  # the MSS class
            elif k == 3:
                ack = (ack + (rng.pick((1, -1, 2, -2, 128)) << 24)) & M32  # another step of the cookie clock
            elif k == 4:
                ack = (ack + rng.pick((1, -1, 2, 0x400000))) & M32
            elif k == 5:
                seq = (seq + rng.pick((1, -1, 1000, rng.next()))) & M32  # another ISN
            elif k == 6:
                sport = (sport + rng.pick((1, -1, 0x100))) & 0xFFFF or 1  # another 4-tuple
            elif k == 7:
                src = self.flood_src()
            elif k == 8:
                ack = ((self.cookie_clock() << 24) | rng.below(1 << 24)) + 1  # forged, the right clock
            elif k == 9:
                flags = ACK | FIN if rng.chance(500) else ACK | PSH
                pl = self.payload(300) if flags & PSH else b""
            return "listen-cookie-ack", self.l_seg(stack, src, sport, seq, ack, flags, b"", pl)
        if r < 66 and recs:
            # the ACK for a half-open record: exact (a connection), or near
            e = rng.pick(recs)
            seq = (e[5] + 1) & M32
            ack = (e[4] + 1) & M32
            k = rng.below(8)
            if k == 1:
                ack = (ack + rng.pick((1, -1, 2, 1000, -1000))) & M32
            elif k == 2:
                seq = (seq + rng.pick((1, -1, 2, 65535))) & M32
            elif k == 3:
                ack = rng.next()
            flags = rng.pick((ACK, ACK, ACK | PSH, ACK | FIN))
            pl = self.payload(500) if flags & PSH else b""
            return "listen-record-ack", self.l_seg(stack, e[0], e[1], seq, ack, flags, b"", pl)
        if r < 76:
            # RSTs at and near a record's IRS+1 (or a cookie's)
            if recs and (rng.chance(700) or not cs):
                e = rng.pick(recs)
                src, sport, irs, iss = e[0], e[1], e[5], e[4]
            elif cs:
                e = rng.pick(cs)
                src, sport, irs, iss = e[1], e[2], e[3], e[4]
            else:
                src, sport, irs, iss = self.flood_src(), rng.range(1, 65535), rng.next(), rng.next()
            seq = (irs + 1 + rng.pick((0, 0, 0, -1, 1, 2, 65535, -65535, 0x80000000, rng.next()))) & M32
            flags = rng.pick((RST, RST, RST | ACK, RST | PSH, RST | SYN, RST | FIN))
            return "listen-rst", self.l_seg(stack, src, sport, seq, (iss + 1) & M32 if rng.chance(500) else rng.next(), flags)
        if r < 84:
            # SYN+ACK, FIN, data, no flags, ... to the port
            flags = rng.pick((SYN | ACK, FIN, FIN | ACK, ACK | PSH, PSH, 0, URG, URG | ACK, SYN | FIN, SYN | RST,
                              SYN | ACK | FIN, rng.below(256)))
            pl = self.payload(1000) if not flags & SYN or rng.chance(200) else b""
            return "listen-flags", self.l_seg(stack, self.flood_src(), rng.range(1, 65535), rng.next(), rng.next(), flags,
                                              self.syn_opts(rng.chance(500)) if flags & SYN else b"", pl)
        if r < 90:
            # onto a TIME-WAIT record of the listener's own closed connections: a SYN beyond its
            # RCV.NXT takes the 4-tuple (Linux TCP_TW_SYN), one below it is answered from the record
            tws = self.tw_of_listener()
            if tws:
                e = rng.pick(tws)
                seq = (e[2] + rng.pick((1, 1000, 0x10000, 0x7FFFFFF0, 0, -1, -1000, 0x80000000))) & M32
                flags = SYN if rng.chance(700) else rng.pick((SYN | ACK, ACK, RST, FIN | ACK, SYN | FIN))
                if flags == RST and rng.chance(500):
                    seq = e[2]
                return "listen-tw", self.l_seg(stack, e[0], e[1], seq, rng.next(), flags, self.syn_opts(False))
        if r >= 90 and self.client_frames:
            return "listen-mutant", self.g_client_mutant()
        return "listen-flood", self.g_listen_syn(stack, False)

    def g_client_mutant(self):
        """A mutated copy of one of the legitimate client's segments (protect() keeps those that
        would change its connection from reaching it)."""
        rng = self.rng
        f = bytearray(rng.pick(self.client_frames))
        o = 14 + (f[14] & 15) * 4
        if len(f) < o + 20:
            return f
        for _ in range(rng.range(1, 2)):
            k = rng.below(8)
            if k == 0:
                f[o + 13] = rng.pick((SYN, RST, FIN | ACK, SYN | ACK, RST | ACK, ACK, PSH, rng.below(256)))
            elif k == 1:
                put32(f, o + 4, (u32(f, o + 4) + rng.pick((1, -1, 1000, -1000, 65535, rng.next()))) & M32)
            elif k == 2:
                put32(f, o + 8, (u32(f, o + 8) + rng.pick((1, -1, 2, 1 << 22, 1 << 24, rng.next()))) & M32)
            elif k == 3:
                put16(f, o, (u16(f, o) + rng.pick((1, -1, 2, 0x1000))) & 0xFFFF or 1)  # another client port
            elif k == 4:
                f[26:30] = self.flood_src()
                f[6:12] = self.src_mac(bytes(f[26:30]))
            elif k == 5:
                put16(f, o + 14, rng.pick((0, 1, 65535)))
            elif k == 6:
                data = u16(f, 16) - (o - 14) - (f[o + 12] >> 4) * 4
                if data > 1:
                    put16(f, 16, u16(f, 16) - rng.range(1, data - 1))  # data cut (the rest of the frame: padding)
            else:
                i = rng.range(o + 4, o + 15)
                f[i] ^= 1 << rng.below(8)
        return finalize(f)

    # -- one step -------------------------------------------------------------------------------
    def step(self):
        rng = self.rng
        self.advance(self.pick_dt())
        # timers, the peer's frames and the world's answers
        held = []
        frames = self.peer_out
        self.peer_out = []
        if frames and rng.chance(150):
            held = frames  # they arrive with the hostile frames, in one batch
            frames = []
        before = list(self.stack.tcp.tcbs)
        lsnap = self.l_snap()
        self.dev.feed(frames)
        self.stack.poll()
        self.l_check(lsnap, frames, self.collect(0, before, None))
        dframes = self.dhcp_out
        self.dhcp_out = []
        dbefore = list(self.dstack.tcp.tcbs)
        self.ddev.feed(dframes)
        self.dstack.poll()
        self.collect(1, dbefore, None)
        # the application
        before = list(self.stack.tcp.tcbs)
        lsnap = self.l_snap()
        try:
            self.xfer_step()
        except Violation as v:
            self.violation(str(v).split(":")[0], str(v))
            self.end_transfer()
        try:
            self.server_step()
            if self.inbound is None and rng.chance(2):
                self.relisten()
            self.app_actions()
            self.dns_step()
            if self.dhcp.bound() and rng.chance(8):
                if rng.chance(300):
                    self.dhcp.release()
                self.dhcp.start()  # a new acquisition: OFFER and ACK are read again
            self.collect(1, list(self.dstack.tcp.tcbs), None)
        except Violation as v:
            self.violation(str(v).split(":")[0], str(v))
        except Exception as e:
            self.violation("api-exception", _exc_text(e))
        self.l_check(lsnap, None, self.collect(0, before, None))
        # the hostile frame(s), at the same tick: timers do not run, what goes out answers them
        which = 0 if rng.chance(850) else 1
        stack = self.stack if which == 0 else self.dstack
        dev = self.dev if which == 0 else self.ddev
        batch = []
        k = 1 if not held and not rng.chance(80) else rng.range(1, 3)
        flood = which == 0 and not held and self.listener is not None and rng.chance(12)
        if flood:
            k = rng.range(4, 12)  # a burst of SYNs (16 frames at most are read per poll)
        if k > self.target - self.frames:
            k = self.target - self.frames if self.target > self.frames else 1
        for _ in range(k):
            f = self.generate(which, bool(held), flood)
            if len(f) > 14 + 1500:
                f = f[0:1514]
            self.h_in.update(f)
            if self.log:
                print("in %d %s" % (self.frames, hexs(f)))
            batch.append(f)
            self.frames += 1
        self.last = batch[-1]
        if held and which == 0:
            mixed = []
            for f in held:
                if batch and rng.chance(400):
                    mixed.append(batch.pop(0))
                mixed.append(f)
            batch = mixed + batch
        elif held:
            self.peer_out = held + self.peer_out
        before = list(stack.tcp.tcbs)
        snap = self.snapshot(stack)
        lsnap = self.l_snap() if which == 0 else None
        self.o_lsnap = lsnap
        self.o_tw = None
        if which == 0 and len(batch) == 1 and to_port(batch[0], LISTEN_PORT) and self.stack.tcp.tw_n:
            f = batch[0]
            o = 14 + (f[14] & 15) * 4
            for e in self.tw_of_listener():
                if e[1] == u16(f, o) and e[0] == bytes(f[26:30]):
                    self.o_tw = e[2]
        dev.feed(batch)
        stack.poll()
        out = self.collect(which, before, batch)
        if which == 0:
            self.l_check(lsnap, batch, out)
        if len(batch) == 1:
            self.oracle(which, stack, batch[0], out, before, snap)
        if which == 1:
            self.check_dhcp()
        self.check_stack(self.stack, "main")
        self.check_stack(self.dstack, "dhcp")

    def end_transfer(self):
        """After a transfer failed (reported): abort it, and start afresh."""
        x = self.xfer
        self.xfer = None
        if x is not None:
            x.tcb.abort()

    def snapshot(self, stack):
        return (stack.route.addr, stack.route.broadcast if stack.route.prefix_len < 31 else None,
                stack.route.configured())

    def dns_step(self):
        r = self.resolver
        if r.state == 1:  # PENDING
            return
        if r.result is not None and len(r.result) != 4:
            self.violation("dns-result", "resolver result %r" % (r.result,))
        if self.rng.chance(30):
            self.dns_name += 1
            self.dns_done += 1
            r.start("h%d.fuzz.example" % (self.dns_name % 50))

    def check_dhcp(self):
        s = self.dstack
        if not self.dhcp.bound() or not s.route.configured():
            return
        a = s.route.addr
        # issue 8 item 9 (docs/DHCP_DNS.md): never 0/8, 127/8, 224/4, 240/4, nor the network or
        # broadcast address of its prefix
        bad = a[0] == 0 or a[0] == 127 or a[0] >= 224 or (
            s.route.prefix_len < 31 and (a == s.route.broadcast or _network(a, s.route.mask) == a))
        key = (a, s.route.prefix_len)
        if bad and key != self.dhcp_flagged:
            self.violation("dhcp-bad-address", "DHCP bound to %s/%d" % (ip_text(a), s.route.prefix_len))
        self.dhcp_flagged = key if bad else None

    # -- per-frame oracles ----------------------------------------------------------------------
    def oracle(self, which, stack, f, out, before, snap):
        """What a single frame may cause, where RFCs say exactly."""
        p = Pkt(f)
        addr, bcast, configured = snap
        mac = stack.mac
        silent = None
        if p.n < 14:
            silent = "runt"
        elif not (bytes(f[0:6]) == mac or bytes(f[0:6]) == BCAST_MAC):
            silent = "not our MAC"
        elif p.et == 0x0806:
            if not p.arpok:
                silent = "malformed ARP"
        elif p.et != 0x0800:
            silent = "ethertype"
        elif not p.ipok:
            silent = "bad IPv4"
        elif which == 0:
            src = f[26:30]
            udp_b = p.proto == 17 and (bytes(f[30:34]) == LIM_BCAST or bytes(f[30:34]) == bcast)
            if bytes(f[30:34]) != addr and not udp_b:
                silent = "not our IP"
            elif is_martian(src, 0, bcast) or bytes(src) == addr:
                silent = "martian source"
            elif p.frag:
                silent = "fragment"
            elif p.proto not in (1, 6, 17):
                silent = "protocol"
            elif p.proto == 6 and not p.tcpok or p.proto == 17 and not p.udpok or p.proto == 1 and not p.icmpok:
                silent = "bad L4"
        elif p.frag or p.proto == 6 and not p.tcpok or p.proto == 17 and not p.udpok or p.proto == 1 and not p.icmpok:
            silent = "bad L4 / fragment"
        self.kind_note(silent)
        if silent is not None:
            if out:
                self.violation("output-oracle", "%s frame answered with %d frame(s): %s" % (silent, len(out), hexs(out[0].f)))
            return
        if p.et != 0x0800 or which != 0 or not configured:
            return
        if p.proto == 6:
            mine = [q for q in out if q.proto == 6]
            tup = None
            for t in before:
                if t.remote_port == p.sport and t.local_port == p.dport and bytes(t.remote_addr) == bytes(f[26:30]):
                    tup = t
            if f[0] & 1:
                if mine:
                    self.violation("tcp-broadcast-answered", "TCP in an Ethernet broadcast frame answered: %s" % hexs(mine[0].f))
                return
            still = tw_has(stack, f, 30, 26, p.dport, p.sport)
            if self.o_tw is not None and tup is None:
                # onto a TIME-WAIT record of the listener's: a SYN beyond its RCV.NXT takes the
                # 4-tuple (the record goes, Linux TCP_TW_SYN); a RST at RCV.NXT ends it; else it stays
                takes = p.flags & (SYN | ACK | RST) == SYN and sdiff(p.seq, self.o_tw) > 0
                if takes == still and not (p.flags & RST and p.seq == self.o_tw and not still):
                    self.violation("listen-record", "TIME-WAIT record (RCV.NXT %08x) %s for a segment %02x seq %08x: %s" % (
                        self.o_tw, "stayed" if still else "went", p.flags, p.seq, hexs(f)))
            if tup is None and still:
                tup = True  # a TIME-WAIT record (Tcp.tw): a connection still
            if tup is None and p.dport == LISTEN_PORT and self.o_lsnap is not None and self.o_lsnap[0] is self.listener:
                self.listen_oracle(p, f, mine)
                return
            if tup is None:
                if p.flags & RST:
                    if mine:
                        self.violation("output-oracle", "RST for no connection answered: %s" % hexs(mine[0].f))
                    return
                for q in mine:
                    if p.flags & ACK:
                        ok = q.flags == RST and q.seq == p.ack
                    else:
                        ok = q.flags == RST | ACK and q.seq == 0 and q.ack == (p.seq + p.seglen()) & M32
                    if (not ok or q.sport != p.dport or q.dport != p.sport or len(mine) > 1
                            or bytes(q.f[30:34]) != bytes(f[26:30])):
                        self.violation("output-oracle", "wrong RST for a segment to no connection: %s" % hexs(q.f))
                return
            if p.flags & RST:
                for q in mine:
                    if q.dport == p.sport and q.sport == p.dport and (q.flags != ACK or q.plen or len(mine) > 1):
                        self.violation("output-oracle", "a RST answered with %02x: %s" % (q.flags, hexs(q.f)))
            return
        if p.proto == 1 and p.itype == 8 and not f[0] & 1 and bytes(f[30:34]) == addr:
            echo = [q for q in out if q.proto == 1]
            if len(echo) > 1:
                self.violation("output-oracle", "%d ICMP frames for one echo request" % len(echo))
            for q in echo:
                g = q.f
                n = p.l4len
                if (q.itype != 0 or q.l4len != n or bytes(g[q.l4 + 4:q.l4 + n]) != bytes(f[p.l4 + 4:p.l4 + n])
                        or bytes(g[30:34]) != bytes(f[26:30])):
                    self.violation("output-oracle", "echo reply does not mirror the request: %s" % hexs(g))

    def kind_note(self, silent):
        k = "silent:" + silent if silent is not None else "delivered"
        self.kinds[k] = self.kinds.get(k, 0) + 1

    # -- generation -----------------------------------------------------------------------------
    def generate(self, which, mixed, flood=False):
        rng = self.rng
        stack = self.stack if which == 0 else self.dstack
        r = rng.below(1000)
        if flood:
            kind = "listen-flood"
            f = self.g_listen_syn(stack, rng.chance(100))
        elif which == 0 and self.listener is not None and rng.below(1000) < 170:
            kind, f = self.g_listen(stack)
        elif which == 1 and r < 550:
            kind = "dhcp"
            f = self.g_dhcp()
        elif r < 380:
            kind = "tcp-conn"
            f = self.g_tcp_conn(stack)
        elif r < 420:
            kind = "tcp-gone"
            f = self.g_tcp_gone(stack)
        elif r < 450:
            kind = "tcp-none"
            f = self.g_tcp_none(stack)
        elif r < 530:
            kind = "icmp-echo"
            f = self.g_echo(stack)
        elif r < 640:
            kind = "icmp-error"
            f = self.g_icmp_error(stack)
        elif r < 730:
            kind = "udp"
            f = self.g_udp(stack)
        elif r < 840:
            kind = "arp"
            f = self.g_arp(stack)
        elif r < 920:
            kind = "replay"
            f = self.g_replay(stack)
        else:
            kind = "raw"
            f = self.g_raw(stack)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        f = self.mutate(f, stack)
        if which == 0:
            f = self.protect(f, mixed)
        return f

    def addr_of(self, stack):
        a = stack.route.addr
        return a if a != ZERO4 else (OUR_IP if stack is self.stack else bytes((192, 0, 2, 50)))

    def src_addr(self):
        rng = self.rng
        r = rng.below(10)
        if r < 3:
            return PEER_IP
        if r < 5:
            return bytes((192, 0, 2, rng.range(3, 254)))
        if r < 8:
            return REMOTE_IP if rng.chance(500) else bytes((rng.range(1, 223), rng.below(256), rng.below(256), rng.range(1, 254)))
        return rng.pick((H9_IP, DNS2_IP, bytes((10, 0, 0, 1))))

    def src_mac(self, src):
        if src == PEER_IP or not (src[0] == 192 and src[1] == 0 and src[2] == 2):
            return PEER_MAC  # through the gateway
        return bytes((2, 0x66, 0, 0, src[2], src[3]))

    def wrap_ip(self, stack, src, proto, l4, opts=b""):
        rng = self.rng
        dst = self.addr_of(stack)
        f = eth(stack.mac, self.src_mac(src), 0x0800, ipv4(src, dst, proto, l4, rng.below(65536),
                                                            rng.pick((64, 64, 128, 1, 255)), rng.pick((0x4000, 0, 0x4000)), opts))
        return pad60(f, rng)

    def tcp_options(self, t):
        rng = self.rng
        o = bytearray()
        for _ in range(rng.range(1, 4)):
            r = rng.below(12)
            if r == 0:
                o += bytes((2, 4)) + rng.pick((0, 1, 47, 48, 536, 1460, 1500, 65535, rng.below(65536))).to_bytes(2, "big")
            elif r == 1:
                o += b"\x04\x02"
            elif r == 2 or r == 3:
                k = rng.range(0, 4)
                o += bytes((5, 2 + 8 * k))
                base = t.snd_una if t is not None else rng.next()
                for _ in range(k):
                    a = (base + rng.range(-3000, 70000)) & M32
                    b = (a + rng.range(-10, 3000)) & M32
                    o += a.to_bytes(4, "big") + b.to_bytes(4, "big")
            elif r == 4:
                o += b"\x08\x0a" + rng.bytes(8)
            elif r == 5:
                o += bytes((3, 3, rng.pick((0, 7, 14, 15, 255))))
            elif r == 6:
                o += b"\x01"
            elif r == 7:
                o += b"\x00" + rng.bytes(rng.below(4))
            elif r == 8:
                o += bytes((rng.pick((2, 3, 4, 5, 8, 30, 254)), rng.pick((0, 1, 3, 255, 40))))
            elif r == 9:
                o += bytes((rng.range(6, 255), rng.range(2, 12))) + rng.bytes(rng.below(10))
            else:
                o += bytes((2, 4, 0x05))  # truncated MSS
        if len(o) > 40:
            o = o[0:40]
        while len(o) & 3:
            o += b"\x00" if rng.chance(500) else b"\x01"
        return o

    def payload(self, maxlen=1460):
        rng = self.rng
        r = rng.below(10)
        if r < 5:
            return b""
        n = rng.pick((1, 2, 10, 100, 536, 1000, 1460)) if r < 9 else rng.range(1, maxlen)
        if n > maxlen:
            n = maxlen
        o = rng.below(len(self.pat) - n)
        return self.pat[o:o + n]

    def g_tcp_conn(self, stack):
        rng = self.rng
        tcbs = stack.tcp.tcbs
        if not tcbs:
            return self.g_tcp_none(stack)
        t = rng.pick(tcbs)
        st = t.state
        # sequence number: near RCV.NXT and the window's edges, or far
        rn = t.rcv_nxt if st != SYN_SENT else rng.next()
        wnd = t.rx_size - t.rx_len
        r = rng.below(20)
        if r < 7:
            seq = rn
        elif r < 9:
            seq = rn - 1
        elif r < 12:
            seq = rn + rng.range(1, wnd + 2)
        elif r < 14:
            seq = rn + wnd + rng.range(-3, 3)
        elif r < 16:
            seq = rn - rng.range(1, 70000)
        elif r < 18:
            seq = rn + rng.pick((0x7FFFFFFF, 0x80000000, 0x20000000, 0x40000000, 0xFFFF0000))
        else:
            seq = rng.next()
        r = rng.below(20)
        if st == SYN_SENT and r < 10:
            ack = t.iss + 1
        elif r < 6:
            ack = t.snd_max
        elif r < 9:
            ack = t.snd_una
        elif r < 11:
            ack = t.snd_una + rng.range(1, 3000)
        elif r < 13:
            ack = t.snd_max + rng.range(1, 100000)
        elif r < 15:
            ack = t.snd_una - rng.range(1, 70000)
        elif r < 17:
            ack = t.snd_una - t.max_snd_wnd - rng.range(1, 10)
        else:
            ack = rng.next()
        r = rng.below(100)
        if st == SYN_SENT and r < 40:
            flags = SYN | ACK
        elif r < 30:
            flags = ACK
        elif r < 42:
            flags = ACK | PSH
        elif r < 50:
            flags = ACK | FIN
        elif r < 57:
            flags = RST
        elif r < 62:
            flags = RST | ACK
        elif r < 67:
            flags = SYN
        elif r < 71:
            flags = SYN | ACK
        else:
            flags = rng.below(256)
        win = rng.pick((65535, 65535, 0, 1, 100, 1460, 4096, rng.below(65536)))
        opts = self.tcp_options(t) if rng.chance(250) or flags & SYN and rng.chance(600) else b""
        pl = self.payload(1460 - len(opts)) if not flags & SYN or rng.chance(100) else b""
        urg = rng.below(65536) if flags & URG or rng.chance(20) else 0
        seg = tcp_hdr(t.remote_port, t.local_port, seq, ack, flags, win, opts, pl, urg)
        return self.wrap_ip(stack, t.remote_addr, 6, seg)

    def g_tcp_gone(self, stack):
        """A segment for a connection that ended (a TIME-WAIT record holds some of them), near
        the sequence numbers it had."""
        rng = self.rng
        gone = [g for g in self.gone if g[0] is stack]
        if not gone:
            return self.g_tcp_none(stack)
        g = rng.pick(gone)
        raddr, rport, lport = g[1]
        seq = g[3] + rng.pick((0, 0, 0, -1, 1, 100, -100, 70000, rng.next()))
        ack = g[4] + rng.pick((0, 0, -1, 1, 1000, -1000, rng.next()))
        flags = rng.pick((ACK, ACK, ACK | FIN, ACK | PSH, RST, RST | ACK, SYN, SYN | ACK, FIN, rng.below(256)))
        pl = self.payload(1000) if rng.chance(300) else b""
        seg = tcp_hdr(rport, lport, seq, ack, flags, rng.pick((0, 1000, 65535)), b"", pl)
        return self.wrap_ip(stack, raddr, 6, seg)

    def g_tcp_none(self, stack):
        rng = self.rng
        src = self.src_addr()
        flags = rng.pick((SYN, ACK, ACK | PSH, FIN | ACK, RST, RST | ACK, SYN | ACK, rng.below(256)))
        seg = tcp_hdr(rng.pick((80, 443, 22, rng.range(1, 65535))), rng.pick((rng.range(32768, 60999), 80, rng.range(1, 65535))),
                      rng.next(), rng.next(), flags, rng.below(65536),
                      self.tcp_options(None) if rng.chance(200) else b"", self.payload(600))
        return self.wrap_ip(stack, src, 6, seg)

    def g_echo(self, stack):
        rng = self.rng
        n = rng.pick((0, 8, 56, 1000, 1472, rng.below(1473)))
        body = bytearray(8)
        body[0] = 8
        put16(body, 4, rng.below(65536))
        put16(body, 6, rng.below(65536))
        o = rng.below(len(self.pat) - n)
        body += self.pat[o:o + n]
        src = self.src_addr()
        if rng.chance(400):
            src = bytes((192, 0, 2, rng.range(100, 130)))  # many on-link sources: ARP pressure
        opts = b""
        if rng.chance(100) and n <= 1432:
            opts = self.ip_options()
        return self.wrap_ip(stack, src, 1, body, opts)

    def ip_options(self):
        rng = self.rng
        r = rng.below(6)
        if r == 0:
            o = b"\x01\x01\x01\x00"
        elif r == 1:
            o = bytes((7, 11, 4)) + bytes(8) + b"\x00"  # record route
        elif r == 2:
            o = bytes((68, 12, 5, 0)) + bytes(8)  # timestamp
        elif r == 3:
            o = bytes((148, 4, 0, 0))  # router alert
        elif r == 4:
            o = bytes((131, 7, 4)) + bytes((10, 0, 0, 1)) + b"\x00"  # loose source route
        else:
            o = bytes((rng.range(2, 255), rng.range(0, 44))) + rng.bytes(rng.range(2, 30))
        o = bytearray(o)
        if len(o) > 40:
            o = o[0:40]
        while len(o) & 3:
            o += b"\x00"
        return o

    def g_icmp_error(self, stack):
        rng = self.rng
        tcbs = stack.tcp.tcbs
        addr = self.addr_of(stack)
        r = rng.below(10)
        t = rng.pick(tcbs) if tcbs and r < 6 else None
        if t is not None:
            seq = rng.pick((t.iss, t.snd_una, t.snd_nxt - 1, t.snd_max, rng.next()))
            inner = tcp_hdr(t.local_port, t.remote_port, seq, t.rcv_nxt, rng.pick((SYN, ACK, ACK | PSH)), 2048)
            q = ipv4(addr, t.remote_addr, 6, inner, rng.below(65536), 64, 0x4000,
                     self.ip_options() if rng.chance(100) else b"")
            finalize(bytearray(14) + q)
        elif r < 8:
            port = self.resolver.port or 53000
            inner = udp_hdr(port, 53, bytes(self.resolver.query[0:20]))
            q = ipv4(addr, rng.pick((PEER_IP, DNS2_IP)), 17, inner)
        else:
            q = ipv4(addr, self.src_addr(), rng.pick((6, 17, 1, 50)), rng.bytes(rng.range(0, 40)))
        keep = rng.pick((len(q), 28, 28, 20, 24, 8, 0, len(q)))
        q = q[0:keep]
        body = bytearray(8)
        body[0] = rng.pick((3, 3, 3, 11, 12, 4, 5, 3))
        body[1] = rng.pick((0, 1, 2, 3, 4, 4, 13, rng.below(20)))
        if body[0] == 3 and body[1] == 4:
            put16(body, 6, rng.pick((0, 68, 296, 576, 1006, 1280, 1492, 1500, 1600, 65535, rng.below(65536))))
        body += q
        src = rng.pick((PEER_IP, PEER_IP, bytes((192, 0, 2, rng.range(3, 254))), REMOTE_IP, bytes((203, 0, 113, 1))))
        if t is not None and rng.chance(300):
            src = t.remote_addr
        return self.wrap_ip(stack, src, 1, body)

    def g_udp(self, stack):
        rng = self.rng
        r = rng.below(10)
        res = self.resolver
        if r < 4 and stack is self.stack and res.port:
            return self.dns_answer()
        src = self.src_addr()
        dport = rng.pick((5000, 68, 67, 53, 7, rng.range(1, 65535), rng.range(49152, 65535), 0))
        sport = rng.pick((53, 67, 68, 0, rng.range(1, 65535)))
        pl = self.payload(1400)
        ulen = None
        if rng.chance(100):
            ulen = rng.pick((0, 7, 8 + len(pl) + 1, 8 + len(pl) + 100, 65535))
        u = udp_hdr(sport, dport, pl, ulen)
        f = self.wrap_ip(stack, src, 17, u)
        if rng.chance(150):
            d = rng.pick((LIM_BCAST, NET_BCAST))
            f[30:34] = d
            if rng.chance(600):
                f[0:6] = BCAST_MAC
        if rng.chance(50):
            finalize(f)
            o = 14 + (f[14] & 15) * 4
            f[o + 6] = 0  # no checksum
            f[o + 7] = 0
        return f

    def dns_answer(self):
        rng = self.rng
        res = self.resolver
        q = res.query
        ql = res.qlen
        m = bytearray(q[0:ql])
        if rng.chance(250):
            # a proper answer: the question, one A record (or a CNAME and then an A record)
            m[2] = 0x81
            m[3] = 0x80
            if rng.chance(500):
                put16(m, 6, 1)
                m += b"\xc0\x0c\x00\x01\x00\x01" + bytes(rng.bytes(4)) + b"\x00\x04" + bytes(rng.bytes(4))
            else:
                put16(m, 6, 2)
                m += b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x06\x03www\xc0\x0c"
                m += bytes((0xC0, ql)) + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes(rng.bytes(4))
            return self.wrap_ip(self.stack, PEER_IP, 17, udp_hdr(53, res.port, m))
        if rng.chance(100):
            m[0] ^= 1 << rng.below(8)
        m[2] = rng.pick((0x81, 0x81, 0x85, 0x83, 0x01, 0x87))
        m[3] = rng.pick((0x80, 0x80, 0x83, 0x82, 0x00, rng.below(256)))
        an = rng.range(0, 5)
        put16(m, 6, an if not rng.chance(50) else rng.below(65536))
        for _ in range(an):
            r = rng.below(10)
            if r < 5:
                name = b"\xc0\x0c"
            elif r < 7:
                name = bytes(q[12:ql - 4])
            elif r < 8:
                name = bytes((0xC0, rng.below(256)))
            else:
                name = bytes((rng.range(1, 70),)) + rng.bytes(rng.below(6)) + b"\x00"
            typ = rng.pick((1, 1, 5, 28, 16, rng.below(300)))
            if typ == 1:
                rd = rng.pick((bytes((93, 184, 216, 34)), bytes(rng.bytes(4)), bytes(rng.bytes(rng.below(8)))))
            elif typ == 5:
                rd = rng.pick((b"\xc0\x0c", b"\x03www\xc0\x0c", b"\x01a\x00", b"\xc0\xff"))
            else:
                rd = bytes(rng.bytes(rng.below(20)))
            rec = bytearray(name) + bytes((typ >> 8, typ & 0xFF, 0, rng.pick((1, 1, 3)))) + bytes(rng.bytes(4))
            rdl = len(rd) if not rng.chance(50) else rng.below(65536)
            rec += bytes((rdl >> 8, rdl & 0xFF)) + rd
            m += rec
        if rng.chance(100):
            m = m[0:rng.below(len(m) + 1)]
        src = rng.pick((PEER_IP, PEER_IP, DNS2_IP, H9_IP))
        sport = 53 if not rng.chance(50) else rng.below(65536)
        u = udp_hdr(sport, res.port, m)
        return self.wrap_ip(self.stack, src, 17, u)

    def g_dhcp(self):
        rng = self.rng
        d = self.dhcp
        m = bytearray(240)
        m[0] = 2 if not rng.chance(30) else rng.below(4)
        m[1] = 1
        m[2] = 6
        m[4:8] = d.xid if not rng.chance(60) else rng.bytes(4)
        r = rng.below(20)
        if r < 10:
            yi = bytes((192, 0, 2, rng.pick((50, 60, 100, 254))))
        elif r < 16:
            yi = rng.pick((bytes((192, 0, 2, 255)), bytes((192, 0, 2, 0)), ZERO4, LIM_BCAST, bytes((127, 0, 0, 1)),
                           bytes((224, 0, 0, 5)), bytes((240, 1, 2, 3)), bytes((10, 0, 0, 255))))
        else:
            yi = bytes(rng.bytes(4))
        m[16:20] = yi
        m[28:34] = D_MAC if not rng.chance(50) else rng.bytes(6)
        m[236:240] = b"\x63\x82\x53\x63"
        st = d.state
        mt = {2: 2, 3: 5, 5: 5, 6: 5}.get(st, 5)
        if rng.chance(200):
            mt = rng.pick((2, 5, 6, 1, 3, 0, 9))
        opts = bytearray((53, 1, mt))
        if rng.chance(900):
            opts += bytes((54, 4, 192, 0, 2, 1))
        if rng.chance(800):
            mask = rng.pick((b"\xff\xff\xff\x00", b"\xff\xff\xff\x00", b"\xff\xff\x00\x00", b"\xff\xff\xff\xfe",
                             b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\x00\xff\x00", bytes(rng.bytes(4))))
            opts += bytes((1, 4)) + mask
        if rng.chance(700):
            opts += bytes((3, 4)) + rng.pick((PEER_IP, bytes((10, 9, 9, 9)), yi, ZERO4))
        if rng.chance(600):
            k = rng.range(0, 4)
            opts += bytes((6, 4 * k))
            for _ in range(k):
                opts += rng.pick((PEER_IP, DNS2_IP, ZERO4, LIM_BCAST))
        if rng.chance(850):
            opts += bytes((51, 4)) + rng.pick((5, 30, 120, 3600, 0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rng.next())).to_bytes(4, "big")
        if rng.chance(300):
            opts += bytes((58, 4)) + rng.pick((0, 2, 10, 0xFFFFFFFF, rng.next())).to_bytes(4, "big")
        if rng.chance(300):
            opts += bytes((59, 4)) + rng.pick((0, 3, 20, 0xFFFFFFFF, rng.next())).to_bytes(4, "big")
        if rng.chance(150):
            opts += bytes((rng.below(256), rng.below(256))) + rng.bytes(rng.below(30))
        if rng.chance(100):
            opts += bytes((52, 1, 3))  # overload (not read)
        if not rng.chance(100):
            opts += b"\xff"
        m += opts
        if len(m) < 300 and rng.chance(700):
            m += bytes(300 - len(m))
        if rng.chance(50):
            m = m[0:rng.below(len(m))]
        dst = rng.pick((yi, LIM_BCAST, LIM_BCAST, bytes((192, 0, 2, 50))))
        u = udp_hdr(67 if not rng.chance(30) else rng.below(65536), 68, m)
        f = eth(D_MAC if not rng.chance(300) else BCAST_MAC, SRV_MAC, 0x0800,
                ipv4(PEER_IP if not rng.chance(100) else bytes(rng.bytes(4)), dst, 17, u, rng.below(65536)))
        return pad60(f, rng)

    def g_arp(self, stack):
        rng = self.rng
        addr = self.addr_of(stack)
        r = rng.below(10)
        if r < 3:
            # requests for us from many on-link senders: the cache under pressure
            spa = bytes((192, 0, 2, rng.range(3, 254)))
            sha = self.src_mac(spa) if rng.chance(800) else bytes(rng.bytes(6))
            a = arp_pkt(1, sha, spa, ZERO4 + b"\x00\x00", addr)
            dst = BCAST_MAC
        elif r < 5 and self.arp_seen:
            # a reply for something we asked for
            mine, tpa = rng.pick(self.arp_seen)
            sha = self.src_mac(tpa) if rng.chance(600) else bytes(rng.bytes(6))
            a = arp_pkt(2, sha, tpa, stack.mac, addr)
            dst = stack.mac
        elif r < 6:
            # gratuitous
            spa = rng.pick((H9_IP, REMOTE_IP, bytes((192, 0, 2, rng.range(3, 254))), addr, PEER_IP))
            sha = bytes(rng.bytes(6))
            a = arp_pkt(rng.pick((1, 2)), sha, spa, BCAST_MAC if rng.chance(500) else ZERO4 + b"\x00\x00", spa)
            dst = BCAST_MAC
        elif r < 7:
            # probe (sender 0.0.0.0) or multicast sender MAC
            a = arp_pkt(1, rng.pick((self.src_mac(H9_IP), b"\x01\x00\x5e\x00\x00\x01", BCAST_MAC)),
                        rng.pick((ZERO4, H9_IP)), ZERO4 + b"\x00\x00", addr)
            dst = BCAST_MAC
        else:
            a = arp_pkt(rng.below(5), bytes(rng.bytes(6)), self.src_addr(), bytes(rng.bytes(6)),
                        rng.pick((addr, H9_IP, bytes(rng.bytes(4)))))
            if rng.chance(500):
                a[rng.below(8)] = rng.below(256)
            dst = rng.pick((BCAST_MAC, stack.mac))
        return pad60(eth(dst, bytes(a[8:14]), 0x0806, a), rng)

    def g_replay(self, stack):
        rng = self.rng
        if not self.recent:
            return self.g_raw(stack)
        f = bytearray(rng.pick(self.recent))
        if bytes(f[6:12]) == stack.mac and len(f) >= 34 and u16(f, 12) == 0x0800:
            # one of our own frames, reflected: addresses and ports swapped
            d = bytes(f[0:6])
            f[0:6] = f[6:12]
            f[6:12] = d
            s = bytes(f[26:30])
            f[26:30] = f[30:34]
            f[30:34] = s
            o = 14 + (f[14] & 15) * 4
            if f[23] in (6, 17) and len(f) >= o + 4:
                sp = bytes(f[o:o + 2])
                f[o:o + 2] = f[o + 2:o + 4]
                f[o + 2:o + 4] = sp
        elif bytes(f[0:6]) != stack.mac and not f[0] & 1:
            f[0:6] = stack.mac
        if len(f) >= 34 and u16(f, 12) == 0x0800 and stack is self.dstack:
            f[30:34] = self.addr_of(stack)
        for _ in range(rng.range(0, 3)):
            i = rng.range(14, len(f) - 1) if len(f) > 15 else 0
            f[i] ^= 1 << rng.below(8)
        return f

    def g_raw(self, stack):
        rng = self.rng
        n = rng.pick((0, 1, 13, 14, 20, 33, 34, 41, 42, 53, 54, 60, rng.range(0, 200)))
        f = bytearray(rng.bytes(n))
        if n >= 14 and rng.chance(800):
            f[0:6] = stack.mac if rng.chance(800) else BCAST_MAC
            put16(f, 12, rng.pick((0x0800, 0x0806, 0x86DD, 0x8100, 0x88CC, rng.below(65536))))
            if n >= 34 and u16(f, 12) == 0x0800 and rng.chance(700):
                f[14] = 0x45
                put16(f, 16, n - 14 if rng.chance(700) else rng.below(65536))
                f[20] = 0x40
                f[21] = 0
                f[23] = rng.pick((6, 17, 1))
                f[30:34] = self.addr_of(stack)
                finalize(f)
        return f

    def mutate(self, f, stack):
        """Structured damage at the Ethernet and IPv4 layers, then checksums recomputed (mostly)."""
        rng = self.rng
        if len(f) < 34 or u16(f, 12) != 0x0800:
            if len(f) >= 14 and rng.chance(40):
                f[0:6] = rng.pick((BCAST_MAC, b"\x01\x00\x5e\x00\x00\x01", b"\x02\x99\x00\x00\x00\x01"))
            return f
        fix_ip = not rng.chance(30)
        fix_l4 = not rng.chance(40)
        r = rng.below(1000)
        if r < 30:
            f[20] = (f[20] & 0x40) | rng.pick((0x20, 0x20, 0x00, 0x01, 0x1F))  # MF / offset
            if rng.chance(500):
                f[21] = rng.below(256)
            if f[20] & 0x3F == 0 and f[21] == 0:
                f[21] = 1
        elif r < 60:
            total = u16(f, 16)
            put16(f, 16, (total + rng.pick((-1, 1, -8, 8, 100, -20, 65535))) & 0xFFFF)
        elif r < 75:
            f[14] = (f[14] & 0xF0) | rng.pick((0, 4, 6, 15, 1))
        elif r < 85:
            f[14] = (f[14] & 0x0F) | rng.pick((0x60, 0x00, 0xF0))
        elif r < 110:
            f[22] = rng.pick((0, 1))
            f[15] = rng.below(256)
        elif r < 140:
            f[30:34] = rng.pick((LIM_BCAST, NET_BCAST, bytes((224, 0, 0, 1)), bytes((192, 0, 2, 77)), ZERO4))
        elif r < 170:
            f[26:30] = rng.pick((ZERO4, bytes((127, 0, 0, 1)), bytes((224, 0, 0, 9)), LIM_BCAST, NET_BCAST,
                                 self.addr_of(stack), bytes((0, 1, 2, 3)), bytes((240, 0, 0, 1))))
        elif r < 200:
            f[0:6] = rng.pick((BCAST_MAC, b"\x01\x00\x5e\x00\x00\x01", b"\x02\x99\x00\x00\x00\x01", b"\x33\x33\x00\x00\x00\x01"))
        elif r < 215:
            put16(f, 12, rng.pick((0x86DD, 0x8100, 0x0000, 0x0806)))
        elif r < 235:
            f[23] = rng.pick((2, 4, 41, 47, 50, 89, 255, 0))
        elif r < 300:
            for _ in range(rng.range(1, 3)):
                i = rng.range(14, len(f) - 1)
                f[i] ^= 1 << rng.below(8)
        if rng.chance(20):
            f = f[0:rng.range(14, len(f))]
        elif rng.chance(30) and len(f) < 1500:
            f += rng.bytes(rng.range(1, 1514 - len(f)) if len(f) < 1513 else 1)
        finalize(f, fix_ip, fix_l4)
        if rng.chance(25) and len(f) > 35:
            i = rng.pick((24, 25, len(f) - 1, 14 + (f[14] & 15) * 4 + 16))
            if i < len(f):
                f[i] ^= 1 << rng.below(8)
        return f

    def protect(self, f, mixed):
        """The transfer may not be hit by what an attacker who knows its window could legitimately
        do (inject in-window data, a FIN, a RST at RCV.NXT, an ACK for bytes the peer has not got;
        in SYN-SENT: an acceptable SYN-ACK, RST or simultaneous open; ICMP errors for our SYN;
        ARP for the peer's address with another MAC). Such a frame is changed so that the stack
        must reject it (sequence number moved far, or the acknowledgment beyond SND.MAX). The
        listener's legitimate client likewise; before our side has its connection any SYN, RST
        or ACK on its 4-tuple could make, end or complete the handshake in its place: such a
        frame goes to another source port (an attack on the listener as any other)."""
        rng = self.rng
        p = Pkt(f)
        if p.et == 0x0806 and p.arpok and bytes(f[28:32]) == PEER_IP and bytes(f[22:28]) != PEER_MAC:
            f[22:28] = PEER_MAC
            return f
        if not p.ipok or p.frag:
            return f
        xs = (self.xfer, self.inbound) + tuple(self.lingering)
        if p.proto == 1 and p.icmpok and p.l4len >= 36 and f[p.l4] in (3, 11, 12, 4):
            q = p.l4 + 8
            qhl = (f[q] & 15) * 4
            t0 = q + qhl
            if qhl >= 20 and t0 + 4 <= len(f):
                for x in xs:
                    if x is not None and x.tcb is not None and x.tcb.state in (SYN_SENT, SYN_RECEIVED) \
                            and u16(f, t0) == x.lport and u16(f, t0 + 2) == x.rport:
                        put16(f, t0, x.lport ^ 0x8000)
                        finalize(f)
            return f
        if not p.tcpok:
            return f
        src = bytes(f[26:30])
        for x in xs:
            if x is not None and x.lport == p.dport and x.rport == p.sport and x.raddr == src:
                for _ in range(4):
                    if not x.harmful(p, mixed):
                        return f
                    o = p.l4
                    t = x.tcb
                    if t is None or x.passive and not x.ours():
                        put16(f, o, x.rport ^ 0x8000)  # (the clients' ports are below 32000)
                        return finalize(f)
                    if t.state == SYN_SENT:
                        f[o + 13] |= ACK
                        put32(f, o + 8, (t.iss + 1 + rng.range(1, 0x7FFFFFFF)) & M32)
                    elif p.flags & RST or rng.chance(500):
                        put32(f, o + 4, (p.seq + rng.range(0x10000000, 0x70000000)) & M32)
                    else:
                        put32(f, o + 8, (t.snd_max + rng.range(0x20000, 0x3FFFFFFF)) & M32)
                    finalize(f)
                    p = Pkt(f)
                self.violation("output-oracle", "harness: could not make a frame harmless")
        return f

    # -- the run -----------------------------------------------------------------------------------
    def run(self, frames):
        self.target = frames
        t0 = _now_ms()
        self.warmup = frames // 5
        self.heap_before = self.heap_used()
        every = 500 if frames >= 5000 else 100
        mark = every
        elapsed = 0
        try:
            while self.frames < frames:
                self.step()
                if self.frames >= mark:
                    mark += every
                    self.heap_sample()
            elapsed = _elapsed_ms(t0)
            self.check_heap()
            self.drain()
            # after the drain nothing is open: what the heap holds beyond the buffers is
            # compared with the base as during the run
            self.heap_worst_run = self.heap_worst
            self.heap_worst = None
            self.heap_after = self.heap_sample()
            self.explained_after = self.explained()[0]
            w = self.heap_worst
            if w is not None and w[0] > HEAP_SLACK:
                self.violation("heap-growth", "after the drain the heap holds %d %s more than the base (%r; base %r)" % (
                    w[0], HEAP_UNIT, w[1], self.heap_base))
        except Stop:
            self.heap_after = self.heap_used()
            return elapsed or _elapsed_ms(t0)
        return elapsed

    def drain(self):
        """No more hostile frames: the transfer finishes, the application closes everything, and
        after the longest timer every table must be empty."""
        rng = self.rng
        if self.inbound is not None and not self.inbound.ours():
            self.inbound = None  # a client still in its handshake: it goes (no new ones come)
        for _ in range(20000):
            if self.xfer is None and self.inbound is None:
                break
            self.quiet_step(rng.range(1, 50))
        if self.xfer is not None:
            self.violation("transfer-stalled", "transfer %d did not finish after the hostile frames stopped"
                           " (state %d)" % (self.xfer.number, self.xfer.tcb.state))
            self.xfer.tcb.abort()
            self.xfer = None
        if self.inbound is not None:
            t = self.inbound.tcb
            self.violation("transfer-stalled", "inbound transfer %d did not finish after the hostile frames stopped"
                           " (state %d, accepted %s)" % (self.inbound.number, t.state if t is not None else -1,
                                                          self.inbound.accepted))
            self.end_inbound()
        for a in self.apps:
            if rng.chance(500):
                a[0].close()
                self.orphans.append(a)
            else:
                a[0].abort()
        self.apps = []
        self.resolver.cancel()
        x = self.listener
        for _ in range(6000):
            self.quiet_step(1000)
            if (not self.stack.tcp.tcbs and not self.lingering and not self.dstack.tcp.tcbs
                    and not getattr(self.stack.tcp, "tw_n", 0) and not getattr(self.dstack.tcp, "tw_n", 0)
                    and (x is None or not x.syn_n and not x.queue)):
                break
        if x is not None:
            # the half-open records gave up (synack_retries), the queue was taken: then close
            if x.syn_n or x.queue:
                self.violation("tables-not-empty", "after the drain the listener holds %d half-open record(s), %d queued"
                               " connection(s)" % (x.syn_n, len(x.queue)))
            self.stack.tcp.unlisten(x)
            self.listener = None
            if self.stack.tcp.listeners is not None:
                self.violation("tables-not-empty", "Tcp.listeners after the last unlisten: %r" % (self.stack.tcp.listeners,))
        for _ in range(5):
            self.quiet_step(1000)  # what the last closes sent may wait for ARP (3 tries, 1 s apart)
        self.orphans = [o for o in self.orphans if o[0] in self.stack.tcp.tcbs]
        self.gone = []
        left = len(self.stack.tcp.tcbs) + len(self.dstack.tcp.tcbs)
        if left:
            t = (self.stack.tcp.tcbs + self.dstack.tcp.tcbs)[0]
            self.violation("tables-not-empty", "%d connection(s) left after the drain, e.g. state %d, timers %s %s %s" % (
                left, t.state, t.timer_on, t.delack_on, t.aux_on))
        tw = getattr(self.stack.tcp, "tw_n", 0) + getattr(self.dstack.tcp, "tw_n", 0)
        if tw:
            self.violation("tables-not-empty", "%d TIME-WAIT record(s) left after the drain" % tw)
        q = [x for x in self.stack.arp.qlen if x] + [x for x in self.dstack.arp.qlen if x]
        if q:
            self.violation("tables-not-empty", "ARP queue still holds %d frame(s)" % len(q))
        ports = [p for p in self.stack.udp.ports if p and p != self.udp_port]
        if ports:
            self.violation("tables-not-empty", "UDP ports still bound: %r" % (ports,))

    def quiet_step(self, ms):
        self.advance(ms)
        frames = self.peer_out
        self.peer_out = []
        before = list(self.stack.tcp.tcbs)
        lsnap = self.l_snap()
        self.dev.feed(frames)
        self.stack.poll()
        self.l_check(lsnap, frames, self.collect(0, before, None))
        d = self.dhcp_out
        self.dhcp_out = []
        before = list(self.dstack.tcp.tcbs)
        self.ddev.feed(d)
        self.dstack.poll()
        self.collect(1, before, None)
        before = list(self.stack.tcp.tcbs)
        try:
            self.xfer_step(False)
        except Violation as v:
            self.violation(str(v).split(":")[0], str(v))
            self.end_transfer()
        self.server_step(True)
        self.collect(0, before, None)
        self.check_stack(self.stack, "main")
        self.check_stack(self.dstack, "dhcp")

    def result(self, elapsed):
        c = self.stack.counters.nonzero()
        d = self.dstack.counters.nonzero()
        return {
            "runtime": sys.implementation.name,
            "seed": self.seed,
            "frames": self.frames,
            "elapsed_ms": elapsed,
            "frames_per_s": int(self.frames * 1000 // elapsed) if elapsed > 0 else 0,
            "virtual_s": self.vt // 1000,
            "transfers": self.transfers_done,
            "transfer_bytes": self.bytes_moved,
            "dns_queries": self.dns_done,
            "connect_errors": self.connect_errors,
            "listen": {
                "backlog": self.backlog, "syn_backlog": self.stack.tcp.config.syn_backlog,
                "synack_retries": self.stack.tcp.config.synack_retries,
                "inbound_started": self.inbound_started, "inbound_done": self.inbound_done,
                "inbound_bytes": self.inbound_bytes, "inbound_refused": self.inbound_refused,
                "inbound_cookie": self.inbound_cookie, "accepted": self.accepted,
                "hostile_accepted": self.hostile_accepted, "cookie_acks": self.cookie_acks,
                "cookie_acks_seen": self.cookie_acks_seen, "cookies_ok": self.stack.counters.tcp_syncookies_ok,
                "relistens": self.relistens,
            },
            "out_frames": self.out_frames,
            "digest_in": hexlify(self.h_in.digest()).decode()[0:16],
            "digest_out": hexlify(self.h_out.digest()).decode()[0:16],
            "heap_unit": HEAP_UNIT,
            "heap_before": self.heap_before,
            "heap_after": self.heap_after,
            "heap_max": self.heap_max,
            "heap_growth_run": self.heap_worst_run[0] if self.heap_worst_run is not None else 0,
            "heap_growth_after": self.heap_worst[0] if self.heap_worst is not None else 0,
            "rings_after": self.explained_after,
            "counters": c,
            "dhcp_counters": d,
            "kinds": self.kinds,
            "dhcp_state": self.dhcp.state_name(),
            "violations": self.violations,
            "notes": self.notes,
        }


def l_decode(b):
    """The half-open records in b (REC bytes each): (raddr, rport, laddr, MSS, ISS, IRS, flags,
    retries, spare)."""
    out = []
    for k in range(0, len(b) - REC + 1, REC):
        out.append((bytes(b[k:k + 4]), u16(b, k + 8), bytes(b[k + 4:k + 8]), u16(b, k + 10), u32(b, k + 12),
                    u32(b, k + 16), b[k + 20], b[k + 21], u16(b, k + 22)))
    return out


def rec_tuple(recs, raddr, rport):
    for r in recs:
        if r[1] == rport and r[0] == raddr:
            return r
    return None


def rec_find(recs, raddr, rport, iss, irs):
    for r in recs:
        if r[1] == rport and r[4] == iss and r[5] == irs and r[0] == raddr:
            return r
    return None


def tw_has(stack, b, lo, ro, lport, rport):
    """A TIME-WAIT record (Tcp.tw, where the stack keeps them) for local b[lo:lo+4]:lport and
    remote b[ro:ro+4]:rport."""
    tcp = stack.tcp
    if not getattr(tcp, "tw_n", 0):
        return False
    return tcp.tw_index(b, lo, lport, b, ro, rport) >= 0


def _in(seq, obj):
    for x in seq:
        if x is obj:
            return True
    return False


def _config(stack):
    """(our address, its directed broadcast or None) of a stack."""
    r = stack.route
    return (r.addr, r.broadcast if r.configured() and r.prefix_len < 31 else None)


def _network(a, m):
    return bytes((a[0] & m[0], a[1] & m[1], a[2] & m[2], a[3] & m[3]))


def _exc_text(e):
    if MICROPYTHON:
        import io

        s = io.StringIO()
        sys.print_exception(e, s)
        return s.getvalue()
    import traceback

    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def _show(d):
    keys = sorted(d.keys())
    return ", ".join("%s=%d" % (k, d[k]) for k in keys)


def main(argv):
    frames = 2000
    seed = 1
    known = ()
    trace = -1
    quiet = False
    log = False
    stop = False
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--frames":
            frames = int(argv[i + 1])
            i += 1
        elif a == "--seed":
            seed = int(argv[i + 1])
            i += 1
        elif a == "--known":
            known = tuple(x for x in argv[i + 1].split(",") if x)
            for k in known:
                if k not in CHECK_NAMES:
                    raise SystemExit("unknown check %s (one of %s)" % (k, " ".join(CHECK_NAMES)))
            i += 1
        elif a == "--trace":
            trace = int(argv[i + 1])
            i += 1
        elif a == "--quiet":
            quiet = True
        elif a == "--log":
            log = True
        elif a == "--stop":
            stop = True
        else:
            raise SystemExit("usage: stackfuzz.py [--frames N] [--seed S] [--known a,b] [--trace K] [--stop] [--log] [--quiet]")
        i += 1
    fz = Fuzz(seed, known, trace, quiet)
    fz.log = log
    fz.stop = stop
    elapsed = fz.run(frames)
    r = fz.result(elapsed)
    if not quiet:
        print("stackfuzz %s seed %d: %d frames in %d ms (%d frames/s), %d s virtual" % (
            r["runtime"], seed, r["frames"], elapsed, r["frames_per_s"], r["virtual_s"]))
        print("  transfers completed: %d (%d bytes, byte-exact), DNS queries %d, frames sent %d" % (
            r["transfers"], r["transfer_bytes"], r["dns_queries"], r["out_frames"]))
        ls = r["listen"]
        print("  listener (backlog %d, syn_backlog %d, synack_retries %d): inbound transfers %d of %d completed (%d"
              " bytes, byte-exact; %d handshakes through a SYN cookie, %d clients refused and replaced), %d"
              " connections accepted (%d an attacker's), cookie ACKs fed %d (%d answering a SYN-ACK we saw),"
              " %d relistens" % (ls["backlog"], ls["syn_backlog"], ls["synack_retries"], ls["inbound_done"],
                                 ls["inbound_started"], ls["inbound_bytes"], ls["inbound_cookie"], ls["inbound_refused"],
                                 ls["accepted"], ls["hostile_accepted"], ls["cookie_acks"], ls["cookie_acks_seen"],
                                 ls["relistens"]))
        print("  digests: fed %s, sent %s" % (r["digest_in"], r["digest_out"]))
        print("  heap (%s): before %d, after %d, max %d; growth beyond buffers and connections over the"
              " base at 1/5 of the run: worst %d during the run, %d after the drain (allowed %d)" % (
                  r["heap_unit"], r["heap_before"], r["heap_after"], r["heap_max"], r["heap_growth_run"],
                  r["heap_growth_after"], HEAP_SLACK))
        print("  counters (main stack): " + _show(r["counters"]))
        print("  counters (DHCP stack, %s): %s" % (r["dhcp_state"], _show(r["dhcp_counters"])))
        print("  frame kinds: " + _show(r["kinds"]))
        if r["notes"]:
            print("  known defects seen (--known): " + _show(r["notes"]))
        print("  violations: %d" % len(r["violations"]))
        for v in r["violations"]:
            print("    " + v)
    import json

    print("FUZZ-RESULT " + json.dumps(r))
    return 1 if r["violations"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
