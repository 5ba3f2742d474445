"""DNS stub resolver (RFC 1035): A records over UDP, a small TTL cache, getaddrinfo() integration.

    r = Resolver(stack)              # servers: stack.dns_servers (DHCP sets them) unless given
    r.install()                      # tcpip.socket.getaddrinfo() now resolves names through r
    addr = r.resolve("example.com")  # 4 bytes; OSError(-2) for a name that does not exist

One query at a time, with a random 16-bit id and a random source port in 49152-65535 (RFC 5452
9.2), bound only while the query runs. Each try waits try_ms (1000, doubling every round) for an
answer; the tries go round the servers in order (failover), `rounds` (2) times, all bounded by
resolve()'s timeout_ms (10000). A server answering SERVFAIL/REFUSED/..., or an ICMP port
unreachable for our query, moves on to the next server at once.

Answers are read in place in the stack's receive buffer. Accepted only from port 53 of a server we
queried, with our id, QR set, opcode 0, and exactly our question (name compared case-blind,
QTYPE A, QCLASS IN); anything else is ignored and counted (dns_drop_*). TC set: ignored (no TCP
fallback) and counted, the next try goes on. Every record of the answer section is checked before
use: names may use compression pointers only backwards (RFC 1035 4.1.4: "a prior occurrence"),
at most 16 hops and 255 bytes per name, no record may run past the message. A CNAME chain is
followed within the answer (up to 8 links, in any order); the A record at its end is the address
and the cache keeps it for the smallest TTL on the chain (capped at max_ttl_s, 1 day: a 0 TTL is
not cached; TTLs with the top bit set count as 0, RFC 2181 8). NXDOMAIN, and an answer without
an A record for the name (NODATA), raise OSError(-2) (EAI_NONAME, as MicroPython's getaddrinfo);
no answer from any server raises OSError(-3) (EAI_AGAIN, glibc's "temporary failure"), as does
having no server at all. Negative answers are not cached. Nothing malformed raises out of
stack.poll(): the parser checks every index against the message length before reading.
"""
import os
import sys

from tcpip.clock import ticks_add, ticks_diff
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into self.cnt, this layer's own list (NAMES below; tests/host/test_counters.py)
_DNS_QUERY = const(0)
_DNS_TX = const(1)
_DNS_RETRANSMIT = const(2)
_DNS_RX = const(3)
_DNS_DROP_BAD_SOURCE = const(4)
_DNS_DROP_BAD_ID = const(5)
_DNS_DROP_MALFORMED = const(6)
_DNS_DROP_TRUNCATED = const(7)
_DNS_DROP_BAD_QUESTION = const(8)
_DNS_ANSWER = const(9)
_DNS_NXDOMAIN = const(10)
_DNS_NO_ADDRESS = const(11)
_DNS_SERVER_ERROR = const(12)
_DNS_SERVER_UNREACHABLE = const(13)
_DNS_TIMEOUT = const(14)
_DNS_CACHE_HIT = const(15)

PORT = const(53)
EAI_NONAME = -2
EAI_AGAIN = -3
TYPE_A = const(1)
TYPE_CNAME = const(5)
CLASS_IN = const(1)
RCODE_NXDOMAIN = const(3)
_HEADER = const(12)
_MAX_NAME = const(255)  # RFC 1035 2.3.4, wire form
_MAX_HOPS = const(16)  # compression pointers followed per name
_MAX_CHAIN = const(8)  # CNAME links followed
_MAX_RECORDS = const(64)  # answer records looked at
_EPHEMERAL_LOW = const(49152)
_MAX_TTL_S = const(536000)  # (2**29 - 1) ms, the furthest ticks_add reaches, in whole seconds
_SWEEP_MS = const(1000)  # poll() drops expired cache entries this often

# query states
IDLE = const(0)
PENDING = const(1)
DONE = const(2)

if sys.implementation.name == "micropython":
    def _gai_error(code):
        return OSError(code)
else:
    def _gai_error(code):
        return OSError(code, "Name or service not known" if code == EAI_NONAME
                       else "Temporary failure in name resolution")


def encode_name(name, out, off):
    """Write name ("example.com", a trailing dot allowed) in wire form into out at off; returns
    the length written. ValueError for an empty label, a label over 63 bytes or a name over 255."""
    if isinstance(name, str):
        name = name.encode()
    if name.endswith(b"."):
        name = name[:-1]
    if not name or len(name) > 253:
        raise ValueError("bad DNS name")
    i = off
    start = 0
    n = len(name)
    while start <= n:
        dot = name.find(b".", start)
        if dot < 0:
            dot = n
        ln = dot - start
        if not 0 < ln <= 63:
            raise ValueError("bad DNS label")
        out[i] = ln
        for k in range(ln):
            out[i + 1 + k] = name[start + k]
        i += 1 + ln
        start = dot + 1
    out[i] = 0
    return i + 1 - off


def skip_name(buf, p, end):
    """Offset just past the name at p (a pointer ends it), or -1 if it runs past end or has a
    reserved label type."""
    for _ in range(128):
        if p >= end:
            return -1
        ln = buf[p]
        if ln == 0:
            return p + 1
        if ln & 0xC0 == 0xC0:
            return p + 2 if p + 1 < end else -1
        if ln & 0xC0:
            return -1
        p += 1 + ln
    return -1


def _label(buf, base, end, p):
    """Follow pointers from p to a length byte: its offset, or -1 (beyond end, not backwards, too
    many hops, reserved bits). Pointers are offsets from base (the message start)."""
    for _ in range(_MAX_HOPS + 1):
        if p >= end:
            return -1
        ln = buf[p]
        if ln & 0xC0 == 0:
            return p
        if ln & 0xC0 != 0xC0 or p + 1 >= end:
            return -1
        q = base + ((ln & 0x3F) << 8 | buf[p + 1])
        if q >= p:
            return -1  # forward or self pointer: not a prior occurrence (and a loop guard)
        p = q
    return -1


def name_valid(buf, base, end, p):
    """True when the (possibly compressed) name at p is complete and at most 255 bytes."""
    total = 0
    while True:
        p = _label(buf, base, end, p)
        if p < 0:
            return False
        ln = buf[p]
        total += ln + 1
        if total > _MAX_NAME or p + 1 + ln > end:
            return False
        if ln == 0:
            return True
        p += 1 + ln


def names_equal(a, abase, aend, ap, b, bbase, bend, bp):
    """Compare two (possibly compressed) names, ASCII case-blind; False if either is malformed."""
    total = 0
    while True:
        ap = _label(a, abase, aend, ap)
        bp = _label(b, bbase, bend, bp)
        if ap < 0 or bp < 0:
            return False
        ln = a[ap]
        if ln != b[bp]:
            return False
        total += ln + 1
        if total > _MAX_NAME or ap + 1 + ln > aend or bp + 1 + ln > bend:
            return False
        if ln == 0:
            return True
        for k in range(1, ln + 1):
            x = a[ap + k]
            y = b[bp + k]
            if x != y:
                if 65 <= x <= 90:
                    x += 32
                if 65 <= y <= 90:
                    y += 32
                if x != y:
                    return False
        ap += 1 + ln
        bp += 1 + ln


# the resolver's counters (stack.counters.dns_*)
NAMES = (
    "dns_query dns_tx dns_retransmit dns_rx dns_drop_bad_source dns_drop_bad_id "
    "dns_drop_malformed dns_drop_truncated dns_drop_bad_question dns_answer dns_nxdomain "
    "dns_no_address dns_server_error dns_server_unreachable dns_timeout dns_cache_hit"
)


class Resolver:
    def __init__(self, stack, servers=None, try_ms=1000, rounds=2, cache_entries=8, max_ttl_s=86400):
        self.cnt = stack.counters.extend(NAMES)
        """servers: addresses ("a.b.c.d" or 4 bytes); None means stack.dns_servers at query time."""
        self.stack = stack
        self.servers = None if servers is None else [_addr(s) for s in servers]
        self.try_ms = try_ms
        self.rounds = rounds
        # expiries are ticks: at most 2**29 ms ahead (6.2 days)
        self.max_ttl_s = max_ttl_s if max_ttl_s < _MAX_TTL_S else _MAX_TTL_S
        self.cache_size = cache_entries
        self.cache = []  # [name (lowercase str), address (bytes), expiry ticks]
        self.query = bytearray(_HEADER + _MAX_NAME + 4)
        self.qlen = 0
        self.qname = None
        self.state = IDLE
        self.port = 0
        self.result = None
        self.error = 0
        self.ttl = 0
        self._active = []  # the servers of the running query
        self._server = 0  # index into _active of the current try
        self._round = 0
        self._deadline = 0
        self._swept = 0  # ticks: the cache's last sweep for expired entries (poll)

    # -- public ----------------------------------------------------------------------------------
    def install(self):
        """Make tcpip.socket.getaddrinfo() resolve names through this resolver."""
        from tcpip import socket as tsocket
        tsocket.set_resolver(self.resolve)

    def resolve(self, name, timeout_ms=10000):
        """name -> 4-byte address; OSError(-2) if it does not exist, OSError(-3) without an answer."""
        if not self.start(name):
            s = self.stack
            s.run_until(self.done, timeout_ms)
            if self.state == PENDING:
                self._finish(EAI_AGAIN)
                self.cnt[_DNS_TIMEOUT] += 1
        if self.error:
            raise _gai_error(self.error)
        return self.result

    def start(self, name):
        """Begin resolving name without waiting; True if the answer is already there (cached or
        invalid). Then done() / result / error, while the stack is polled."""
        self.cancel()
        self.result = None
        self.error = 0
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).decode()
        key = name.lower()
        if key.endswith("."):
            key = key[:-1]
        s = self.stack
        now = s.clock.ticks_ms()
        hit = self.lookup(key, now)
        if hit is not None:
            self.cnt[_DNS_CACHE_HIT] += 1
            self.result = hit
            self.state = DONE
            return True
        try:
            qlen = _HEADER + encode_name(key, self.query, _HEADER) + 4
        except (ValueError, UnicodeError):
            self.error = EAI_NONAME
            self.state = DONE
            return True
        servers = self.servers if self.servers is not None else s.dns_servers
        if not servers:
            self.error = EAI_AGAIN
            self.state = DONE
            return True
        q = self.query
        r = os.urandom(2)
        q[0] = r[0]
        q[1] = r[1]
        q[2] = 0x01  # RD (RFC 1035 4.1.1): a stub asks for recursion
        q[3] = 0
        q[4] = 0
        q[5] = 1  # QDCOUNT
        for i in range(6, 12):
            q[i] = 0
        q[qlen - 4] = 0
        q[qlen - 3] = TYPE_A
        q[qlen - 2] = 0
        q[qlen - 1] = CLASS_IN
        self.qlen = qlen
        self.qname = key
        self._active = list(servers)
        self._server = 0
        self._round = 0
        self.port = s.udp.bind(0, self._input, self._icmp_error)
        s.udp.add_timer(self)
        self.state = PENDING
        self.cnt[_DNS_QUERY] += 1
        self._send(now)
        return False

    def done(self):
        return self.state != PENDING

    def cancel(self):
        if self.state == PENDING:
            self._finish(EAI_AGAIN)

    # -- cache -----------------------------------------------------------------------------------
    def lookup(self, key, now):
        """The cached address of key (lowercase, no trailing dot) or None; drops expired entries
        (key None: only that)."""
        cache = self.cache
        i = 0
        while i < len(cache):
            e = cache[i]
            if ticks_diff(now, e[2]) >= 0:
                cache.pop(i)
                continue
            if e[0] == key:
                return e[1]
            i += 1
        return None

    def _remember(self, key, addr, ttl_s, now):
        if ttl_s <= 0 or self.cache_size <= 0:
            return
        cache = self.cache
        for e in cache:
            if e[0] == key:
                cache.remove(e)
                break
        if len(cache) >= self.cache_size:
            # evict the entry that expires first
            victim = cache[0]
            for e in cache:
                if ticks_diff(e[2], victim[2]) < 0:
                    victim = e
            cache.remove(victim)
        cache.append([key, addr, ticks_add(now, ttl_s * 1000)])
        self._swept = now

    def flush(self):
        self.cache = []

    # -- timers ----------------------------------------------------------------------------------
    def poll(self, now):
        if self.state == PENDING and ticks_diff(now, self._deadline) >= 0:
            self._next(now)
        if self.cache:
            # drop expired entries while their expiry is still within ticks_diff's reach (an
            # entry left 2**29 ms past it would look valid again); a negative d: the clock wrapped
            d = ticks_diff(now, self._swept)
            if d >= _SWEEP_MS or d < 0:
                self._swept = now
                self.lookup(None, now)

    def next_deadline(self, now, best):
        if self.state == PENDING:
            d = ticks_diff(self._deadline, now)
            if d < best:
                return d
        return best

    # -- sending ---------------------------------------------------------------------------------
    def _send(self, now):
        s = self.stack
        self.cnt[_DNS_TX] += 1
        wait = self.try_ms << self._round
        self._deadline = ticks_add(now, wait)
        t = s.trace
        if t is not None:
            t("dns", None, "query %s to %s (round %d)" % (self.qname, ipv4.ntoa(self._active[self._server]),
                                                          self._round + 1))
        s.udp.sendto(self.query, self.qlen, self._active[self._server], PORT, self.port)

    def _next(self, now):
        """This try failed: the next server, or the next round, or give up."""
        self._server += 1
        if self._server >= len(self._active):
            self._server = 0
            self._round += 1
            if self._round >= self.rounds:
                self.cnt[_DNS_TIMEOUT] += 1
                self._finish(EAI_AGAIN)
                return
        self.cnt[_DNS_RETRANSMIT] += 1
        self._send(now)

    def _finish(self, error, result=None):
        s = self.stack
        s.udp.unbind(self.port)
        self.port = 0
        self.error = error
        self.result = result
        self.state = DONE
        t = s.trace
        if t is not None:
            t("dns", None, "%s -> %s" % (self.qname, ipv4.ntoa(result) if result is not None else "error %d" % error))

    # -- receiving -------------------------------------------------------------------------------
    def _from_server(self, sip, sipo):
        for a in self._active:
            if a[0] == sip[sipo] and a[1] == sip[sipo + 1] and a[2] == sip[sipo + 2] and a[3] == sip[sipo + 3]:
                return True
        return False

    def _icmp_error(self, err, dst, doff, dport):
        # RFC 1122 4.1.3.3: a UDP error is passed up; the server refused: try the next one now
        if self.state != PENDING:
            return
        cur = self._active[self._server]
        if dport == PORT and cur[0] == dst[doff] and cur[1] == dst[doff + 1] and cur[2] == dst[doff + 2] and cur[3] == dst[doff + 3]:
            self.cnt[_DNS_SERVER_UNREACHABLE] += 1
            self._next(self.stack.clock.ticks_ms())

    def _input(self, buf, off, n, sip, sipo, sport):
        c = self.cnt
        c[_DNS_RX] += 1
        if self.state != PENDING:
            return
        if sport != PORT or not self._from_server(sip, sipo):
            c[_DNS_DROP_BAD_SOURCE] += 1
            return
        if n < _HEADER:
            c[_DNS_DROP_MALFORMED] += 1
            return
        q = self.query
        if buf[off] != q[0] or buf[off + 1] != q[1]:
            c[_DNS_DROP_BAD_ID] += 1
            return
        flags = buf[off + 2]
        if not flags & 0x80 or flags & 0x78:
            c[_DNS_DROP_MALFORMED] += 1  # not a response, or not a standard query
            return
        if flags & 0x02:
            c[_DNS_DROP_TRUNCATED] += 1  # TC: we have no TCP fallback; the next try goes on
            return
        end = off + n
        # the question must be ours: one entry, same name, type A, class IN
        p = off + _HEADER
        if buf[off + 4] != 0 or buf[off + 5] != 1:
            c[_DNS_DROP_BAD_QUESTION] += 1
            return
        qend = skip_name(buf, p, end)
        if qend < 0 or qend + 4 > end:
            c[_DNS_DROP_MALFORMED] += 1
            return
        if (not names_equal(buf, off, end, p, q, 0, self.qlen - 4, _HEADER)
                or buf[qend] != 0 or buf[qend + 1] != TYPE_A or buf[qend + 2] != 0 or buf[qend + 3] != CLASS_IN):
            c[_DNS_DROP_BAD_QUESTION] += 1
            return
        rcode = buf[off + 3] & 0x0F
        now = self.stack.clock.ticks_ms()
        if rcode == RCODE_NXDOMAIN:
            c[_DNS_NXDOMAIN] += 1
            self._finish(EAI_NONAME)
            return
        if rcode != 0:
            c[_DNS_SERVER_ERROR] += 1  # SERVFAIL, NOTIMP, REFUSED ...: ask the next server
            self._next(now)
            return
        ancount = buf[off + 6] << 8 | buf[off + 7]
        if ancount > _MAX_RECORDS:
            ancount = _MAX_RECORDS
        # check every answer record before using any (bounds, names)
        first = qend + 4
        p = first
        for _ in range(ancount):
            if not name_valid(buf, off, end, p):
                c[_DNS_DROP_MALFORMED] += 1
                return
            p = skip_name(buf, p, end)
            if p < 0 or p + 10 > end:
                c[_DNS_DROP_MALFORMED] += 1
                return
            rdlen = buf[p + 8] << 8 | buf[p + 9]
            rd = p + 10
            if rd + rdlen > end:
                c[_DNS_DROP_MALFORMED] += 1
                return
            if buf[p] == 0 and buf[p + 1] == TYPE_CNAME and buf[p + 2] == 0 and buf[p + 3] == CLASS_IN:
                if not name_valid(buf, off, end, rd) or skip_name(buf, rd, rd + rdlen) < 0:
                    c[_DNS_DROP_MALFORMED] += 1
                    return
            p = rd + rdlen
        # follow the chain from the question's name: CNAME -> ... -> A (RFC 1034 3.6.2)
        target = off + _HEADER
        ttl = self.max_ttl_s
        for _ in range(_MAX_CHAIN + 1):
            p = first
            nxt = -1
            for _ in range(ancount):
                owner = p
                p = skip_name(buf, p, end)
                rdlen = buf[p + 8] << 8 | buf[p + 9]
                rd = p + 10
                if buf[p + 2] == 0 and buf[p + 3] == CLASS_IN and buf[p] == 0 and names_equal(
                        buf, off, end, owner, buf, off, end, target):
                    t = buf[p + 1]
                    if t == TYPE_A and rdlen == 4:
                        rttl = self._ttl(buf, p + 4)
                        if rttl < ttl:
                            ttl = rttl
                        addr = bytes(buf[rd:rd + 4])
                        c[_DNS_ANSWER] += 1
                        self._remember(self.qname, addr, ttl, now)
                        self._finish(0, addr)
                        return
                    if t == TYPE_CNAME and nxt < 0:
                        rttl = self._ttl(buf, p + 4)
                        if rttl < ttl:
                            ttl = rttl
                        nxt = rd
                p = rd + rdlen
            if nxt < 0:
                break
            target = nxt
        c[_DNS_NO_ADDRESS] += 1  # NODATA, or a chain that ends outside the answer
        self._finish(EAI_NONAME)

    def _ttl(self, buf, p):
        # RFC 2181 8: a TTL with the top bit set is 0; keep the arithmetic in small ints
        if buf[p] & 0x80:
            return 0
        if buf[p] >= 0x40:
            return self.max_ttl_s  # >= 2**30 s: past any cap
        v = buf[p] << 24 | buf[p + 1] << 16 | buf[p + 2] << 8 | buf[p + 3]
        return v if v < self.max_ttl_s else self.max_ttl_s


def _addr(a):
    if isinstance(a, str):
        return ipv4.aton(a)
    if len(a) != 4:
        raise ValueError("DNS server address must be 4 bytes")
    return bytes(a)

