"""ARP (RFC 826) for one Ethernet interface: a small cache with expiry, request retries, and a
bounded queue of frames waiting for resolution.

Resolution follows Linux's defaults: up to `retries` requests (mcast_solicit 3) one `retry_ms`
apart (retrans_time 1 s); when the last one goes unanswered, the queued frames are dropped and the
stack is told, which fails a connect in SYN-SENT with EHOSTUNREACH. Nothing here allocates per
packet in steady state: the table is preallocated, and a frame that waits for resolution (once
per neighbour and minute at most) gets a buffer of its own size while it waits.
"""
from tcpip import call
from tcpip import mem
from tcpip.clock import ticks_add, ticks_diff
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_ARP_RX = const(6)
_ARP_DROP_MALFORMED = const(7)
_ARP_DROP_NOT_FOR_US = const(8)
_ARP_REQUEST_SENT = const(9)
_ARP_REPLY_SENT = const(10)
_ARP_RESOLVED = const(11)
_ARP_RESOLVE_FAILED = const(12)
_ARP_QUEUE_OVERFLOW = const(13)
_ARP_CACHE_FULL = const(14)
_ARP_EVICTED = const(88)
_ARP_UPDATE_LOCKED = const(89)
_KEEP_MS = const(5000)        # an entry confirmed or used this recently is kept from weak requests
_LOCK_MS = const(1000)        # a confirmed entry's MAC is not replaced this soon (Linux locktime)

_ETH_LEN = const(14)          # Ethernet header length
_ETHERTYPE_ARP = const(0x0806)
_OP_REQUEST = const(1)        # ARP opcodes, RFC 826 ar$op
_OP_REPLY = const(2)
_SHA = const(8)               # field offsets in the ARP packet, RFC 826
_SPA = const(14)
_THA = const(18)
_TPA = const(24)

FREE = 0
INCOMPLETE = 1
REACHABLE = 2
STALE = 3  # expired while a connection needs it: still used, and asked for again (Linux STALE/PROBE)

ARP_FRAME_LEN = 42
_ZERO_MAC = b"\x00\x00\x00\x00\x00\x00"


# -- the wire formats (RFC 826; Ethernet II, IEEE 802.3 with an EtherType, no FCS or VLAN tag): only
# what the stack uses, as (buf, off) views; offsets, accessors and Reprs are test-side
# (tests/host/wirerep/arp.py, ethernet.py) ------------------------------------------------------
BROADCAST = b"\xff\xff\xff\xff\xff\xff"


def emit_header(buf, off, dst_mac, src_mac, ethertype):
    """Write the 14-byte header; dst_mac and src_mac are 6-byte buffers."""
    for i in range(6):
        buf[off + i] = dst_mac[i]
        buf[off + 6 + i] = src_mac[i]
    buf[off + 12] = ethertype >> 8
    buf[off + 13] = ethertype & 0xFF


def get_oper(buf, off):
    return buf[off + 6] << 8 | buf[off + 7]


def is_valid_ipv4_ethernet(buf, off, n):
    """n bytes at off hold an Ethernet/IPv4 ARP packet (trailing padding allowed)."""
    # RFC 826: a receiver handles only the (ar$hrd, ar$pro) pairs it knows; ours is 1/0x0800, 6/4.
    return (n >= 28 and buf[off] == 0 and buf[off + 1] == 1 and buf[off + 2] == 0x08
            and buf[off + 3] == 0 and buf[off + 4] == 6 and buf[off + 5] == 4)


def emit(buf, off, oper, sha, spa, tha, tpa):
    """Write a 28-byte Ethernet/IPv4 ARP packet; sha/tha 6-byte, spa/tpa 4-byte buffers."""
    buf[off] = 0
    buf[off + 1] = 1
    buf[off + 2] = 0x08
    buf[off + 3] = 0
    buf[off + 4] = 6
    buf[off + 5] = 4
    buf[off + 6] = oper >> 8
    buf[off + 7] = oper & 0xFF
    for i in range(6):
        buf[off + 8 + i] = sha[i]
        buf[off + 18 + i] = tha[i]
    for i in range(4):
        buf[off + 14 + i] = spa[i]
        buf[off + 24 + i] = tpa[i]


def _weak(frame):
    """The IPv4 frame is a reply to traffic someone else started: ICMP (echo replies, errors), or a
    TCP RST."""
    p = frame[23]
    return p == 1 or (p == 6 and frame[27 + (frame[14] & 0x0F) * 4] & 0x04)


class ArpCache:
    """The cache is a few flat tables, entry i in each (no object per entry): state[i] (FREE,
    INCOMPLETE, REACHABLE, STALE), ip[4i:4i+4], mac[6i:6i+6] (macs[i] a view of it, made once),
    deadline[i] (REACHABLE: expiry; INCOMPLETE, STALE: next request), requests[i], used[i] (ticks of the
    last use, for replacement). Queue slot j: a frame qbuf[j] of qlen[j] bytes for the next hop
    at qhop[4j:4j+4] (its buffer made for it and given back once it went or was dropped)."""

    def __init__(self, stack, entries=8, queue_slots=2, frame_size=1514, retries=3, retry_ms=1000, reachable_ms=60000):
        self.stack = stack
        self.state = bytearray(entries)
        self.ip = bytearray(4 * entries)
        self.mac = bytearray(6 * entries)
        m = memoryview(self.mac)
        self.macs = [m[6 * i:6 * i + 6] for i in range(entries)]
        self.deadline = [0] * entries
        self.requests = bytearray(entries)
        self.used = [0] * entries
        self.qbuf: list[bytearray | None] = [None] * queue_slots
        self.qlen = [0] * queue_slots
        self.qhop = bytearray(4 * queue_slots)
        self.frame_size = frame_size
        self.retries = retries
        self.retry_ms = retry_ms
        self.reachable_ms = reachable_ms
        self.frame = bytearray(60)  # padded to the Ethernet minimum by send_frame
        self._swept = stack.now  # ticks: the last sweep for expired entries (poll)
        self._resolving = False  # an entry may be INCOMPLETE or STALE (its request timer runs in poll)

    # -- lookups -------------------------------------------------------------------------------
    def _find(self, buf, off):
        """The entry for the IPv4 address at buf[off:off+4], -1 if none."""
        st = self.state
        ip = self.ip
        for i in range(len(st)):
            if st[i] != FREE and mem.equal(ip, 4 * i, buf, off, 4):
                return i
        return -1

    def lookup(self, buf, off, now):
        """The MAC (a 6-byte view) for the IPv4 address at buf[off:off+4], or None."""
        i = self._find(buf, off)
        if i < 0:
            return None
        st = self.state[i]
        if st == REACHABLE:
            if ticks_diff(now, self.deadline[i]) >= 0:
                self._expire(i, now)
                if self.state[i] != STALE:
                    return None
        elif st != STALE:
            return None
        self.used[i] = now
        return self.macs[i]

    def _expire(self, i, now):
        """A REACHABLE entry's time is up: a connection still needs it -> STALE (used as it is,
        asked for again; Linux STALE -> PROBE), else it goes (templates built on it too)."""
        if self._in_use(i):
            self.state[i] = STALE
            self.requests[i] = 0
            self._resolving = True
            self._request(i, now)
        else:
            self.state[i] = FREE
            self.stack.route.gen += 1

    def _in_use(self, i):
        """Entry i is a connection's next hop: its peer, or the gateway of an off-link one (Linux
        never evicts a neighbour something holds a reference to; ours are found when needed)."""
        s = self.stack
        ip = self.ip
        o = 4 * i
        r = s.route
        gw = r.gateway
        via = gw is not None and mem.equal(ip, o, gw, 0, 4)
        for t in s.tcp.tcbs:
            a = t.remote_addr
            if mem.equal(a, 0, ip, o, 4) or (via and not r.on_link(a, 0)):
                return True
        return False

    def _allocate(self, now, weak):
        """An entry for a new neighbour: a free one, else one given up, -1 (counted) when none may
        be. Whom it is for decides what may go (docs/ARCHITECTURE.md, "ARP under pressure"):
        - weak (a reply to traffic someone else started: ICMP, a RST, an ARP request's sender):
          an INCOMPLETE entry no connection needs, else a REACHABLE one no connection needs and
          not confirmed or used for _KEEP_MS (Linux's neighbour GC spares entries updated in the
          last 5 s);
        - our own traffic: the same first, then any REACHABLE entry no connection needs, then the
          least recently used REACHABLE one a connection needs (re-resolved when it next sends);
          never an entry that is being resolved for a connection."""
        st = self.state
        for i in range(len(st)):
            if st[i] == FREE:
                return i
        used = self.used
        victim = -1
        rank = 4  # 1: INCOMPLETE, unneeded; 2: REACHABLE, unneeded; 3: REACHABLE, needed
        for i in range(len(st)):
            if self._in_use(i):
                if weak or st[i] == INCOMPLETE:
                    continue
                r = 3
            elif st[i] == INCOMPLETE:
                r = 1
            else:
                if weak and ticks_diff(now, used[i]) < _KEEP_MS:
                    continue
                r = 2
            if r < rank or (r == rank and ticks_diff(used[i], used[victim]) < 0):
                victim = i
                rank = r
        c = self.stack.cnt
        if victim < 0:
            c[_ARP_CACHE_FULL] += 1
            return -1
        c[_ARP_EVICTED] += 1
        if st[victim] == INCOMPLETE:
            self._drop_queued(victim)
        st[victim] = FREE
        self.stack.route.gen += 1  # a neighbour's entry goes: templates built for it too
        return victim

    def _drop_queued(self, i):
        """The frames waiting for entry i's address are dropped."""
        qlen = self.qlen
        for j in range(len(qlen)):
            if qlen[j] and mem.equal(self.qhop, 4 * j, self.ip, 4 * i, 4):
                qlen[j] = 0
                self.qbuf[j] = None

    def _learn(self, i, buf, spa, sha, now):
        """Entry i REACHABLE: the IPv4 address at buf[spa], the MAC at buf[sha]."""
        self.state[i] = REACHABLE
        mem.copy(self.ip, 4 * i, buf, spa, 4)
        mem.copy(self.mac, 6 * i, buf, sha, 6)
        self.deadline[i] = ticks_add(now, self.reachable_ms)
        self.used[i] = now

    # -- output side ---------------------------------------------------------------------------
    def enqueue(self, frame, n, next_hop, nh_off, now):
        """Hold frame[:n] until next_hop resolves; start resolution if it has not started."""
        qlen = self.qlen
        qbuf = self.qbuf
        # a reply to traffic someone else started (ICMP: echo replies, errors; a TCP RST) may not
        # push out what our connections need, neither a queued frame nor a cache entry
        weak = _weak(frame)
        j = -1
        for k in range(len(qlen)):
            if qlen[k] == 0:
                j = k
                break
        if j < 0:
            # queue full: a reply to strangers is dropped; our own frame drops the oldest such
            # reply, else the oldest frame (Linux drops the head of the unresolved queue)
            self.stack.cnt[_ARP_QUEUE_OVERFLOW] += 1
            if weak:
                return
            v = 0
            for k in range(len(qlen)):
                if _weak(qbuf[k]):
                    v = k
                    break
            last = len(qlen) - 1
            b = qbuf[v]
            mem.copy(self.qhop, 4 * v, self.qhop, 4 * v + 4, 4 * (last - v))
            for k in range(v, last):
                qbuf[k] = qbuf[k + 1]
                qlen[k] = qlen[k + 1]
            qbuf[last] = b
            j = last
        if n > self.frame_size:
            n = self.frame_size
        b = qbuf[j]
        if b is None or len(b) < n:
            # a buffer of the frame's size (at least the Ethernet minimum: send_frame pads in
            # place), given back once the frame went or was dropped: a waiting SYN takes 60 bytes,
            # not a whole frame's 1514 for as long as the board runs
            b = qbuf[j] = bytearray(n if n > 60 else 60)
        mem.copy(b, 0, frame, 0, n)
        qlen[j] = n
        mem.copy(self.qhop, 4 * j, next_hop, nh_off, 4)
        i = self._find(next_hop, nh_off)
        if i < 0:
            i = self._allocate(now, weak)
            if i < 0:
                qlen[j] = 0
                qbuf[j] = None
                if not weak:
                    self._ask(next_hop, nh_off)  # the frame is lost, but its next hop is asked for
                return
            self.state[i] = INCOMPLETE
            self._resolving = True
            mem.copy(self.ip, 4 * i, next_hop, nh_off, 4)
            self.requests[i] = 0
            self.used[i] = now
            self._request(i, now)

    def _request(self, i, now):
        self._ask(self.ip, 4 * i)
        self.requests[i] += 1
        self.deadline[i] = ticks_add(now, self.retry_ms)

    def _ask(self, buf, off):
        """Broadcast an ARP request for the IPv4 address at buf[off:off+4]."""
        s = self.stack
        f = self.frame
        emit_header(f, 0, BROADCAST, s.mac, _ETHERTYPE_ARP)
        emit(f, _ETH_LEN, _OP_REQUEST, s.mac, s.route.addr, _ZERO_MAC, _ZERO_MAC)
        mem.copy(f, _ETH_LEN + _TPA, buf, off, 4)
        s.send_frame(f, ARP_FRAME_LEN)
        s.cnt[_ARP_REQUEST_SENT] += 1
        if s.trace is not None:
            s.trace("arp-request", None, ipv4.ntoa(buf, off))

    def poll(self, now):
        # once a second also drop expired REACHABLE entries: one left 2**29 ms past its expiry
        # would look fresh to ticks_diff (a negative d: the clock wrapped since the last sweep)
        d = ticks_diff(now, self._swept)
        sweep = d >= 1000 or d < 0
        if not sweep and not self._resolving:
            return  # nothing is being resolved: nothing to do between sweeps
        if sweep:
            self._swept = now
        resolving = False
        st = self.state
        for i in range(len(st)):
            e = st[i]
            if e == INCOMPLETE or e == STALE:
                resolving = True
                if ticks_diff(now, self.deadline[i]) >= 0:
                    if self.requests[i] < self.retries:
                        self._request(i, now)
                        continue
                    # no answer to the last request: the frames waiting for it are dropped and
                    # the stack is told (tcpip.cold.neighbour_failed); a STALE entry just goes
                    s = self.stack
                    s.cnt[_ARP_RESOLVE_FAILED] += 1
                    st[i] = FREE
                    s.route.gen += 1
                    if e == INCOMPLETE:
                        self._drop_queued(i)
                        call("tcpip.cold", "neighbour_failed", s, self.ip[4 * i:4 * i + 4])  # rare
            elif sweep and e == REACHABLE and ticks_diff(now, self.deadline[i]) >= 0:
                self._expire(i, now)
                if st[i] == STALE:
                    resolving = True
        self._resolving = resolving

    def next_deadline(self, now, best):
        """Ticks until the nearest ARP timer (or best, if nearer)."""
        st = self.state
        for i in range(len(st)):
            if st[i] == INCOMPLETE or st[i] == STALE:
                d = ticks_diff(self.deadline[i], now)
                if d < best:
                    best = d
        return best

    # -- input side ----------------------------------------------------------------------------
    def input(self, buf, off, n, now):
        """An ARP packet at buf[off:off+n] (RFC 826 'Packet Reception')."""
        s = self.stack
        c = s.cnt
        c[_ARP_RX] += 1
        if not is_valid_ipv4_ethernet(buf, off, n):
            c[_ARP_DROP_MALFORMED] += 1
            return
        spa = off + _SPA
        sha = off + _SHA
        # a multicast/broadcast sender MAC, or an ARP probe from 0.0.0.0, teaches nothing
        learn = not (buf[sha] & 1 or ipv4.is_zero(buf, spa))
        for_us = s.route.configured() and s.route.is_local(buf, off + _TPA)
        i = self._find(buf, spa) if learn else -1
        if i >= 0 and self.state[i] != INCOMPLETE and not mem.equal(self.mac, 6 * i, buf, sha, 6):
            # a new MAC for a known neighbour: taken (RFC 826 merge), unless the entry was
            # confirmed less than _LOCK_MS ago and this is not a gratuitous ARP (sender address ==
            # target address), which then loses the race (Linux arp locktime, 1 s)
            if (self.state[i] == REACHABLE and ticks_diff(now, self.deadline[i]) + self.reachable_ms < _LOCK_MS
                    and not mem.equal(buf, spa, buf, off + _TPA, 4)):
                c[_ARP_UPDATE_LOCKED] += 1
                i = -2  # neither learnt from nor allocated for; a request for us is still answered
            else:
                s.route.gen += 1  # the neighbour moved: templates with its old MAC are stale
        if i >= 0:
            # merge: update the existing entry (RFC 826), even if the packet is not for us
            was_incomplete = self.state[i] == INCOMPLETE
            self._learn(i, buf, spa, sha, now)
            if was_incomplete:
                c[_ARP_RESOLVED] += 1
                if s.trace is not None:
                    s.trace("arp-resolved", None, ipv4.ntoa(self.ip, 4 * i))
                # the frames queued for it go out, with its MAC
                qlen = self.qlen
                for j in range(len(qlen)):
                    if qlen[j] and mem.equal(self.qhop, 4 * j, self.ip, 4 * i, 4):
                        b = self.qbuf[j]
                        mem.copy(b, 0, self.mac, 6 * i, 6)
                        s.send_frame(b, qlen[j])
                        qlen[j] = 0
                        self.qbuf[j] = None
        if not for_us:
            c[_ARP_DROP_NOT_FOR_US] += 1
            return
        if i == -1 and learn:
            i = self._allocate(now, True)  # an unsolicited sender may not push out a needed entry
            if i >= 0:
                self._learn(i, buf, spa, sha, now)
        if get_oper(buf, off) == _OP_REQUEST:
            f = self.frame
            emit_header(f, 0, _ZERO_MAC, s.mac, _ETHERTYPE_ARP)
            emit(f, _ETH_LEN, _OP_REPLY, s.mac, s.route.addr, _ZERO_MAC, _ZERO_MAC)
            # to the requester: Ethernet source, sha and spa of the request become dst, tha and tpa
            mem.copy(f, 0, buf, 6, 6)
            mem.copy(f, _ETH_LEN + _THA, buf, sha, 6)
            mem.copy(f, _ETH_LEN + _TPA, buf, spa, 4)
            s.send_frame(f, ARP_FRAME_LEN)
            c[_ARP_REPLY_SENT] += 1
