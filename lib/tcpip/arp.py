"""ARP (RFC 826) for one Ethernet interface: a small cache with expiry, request retries, and a
bounded queue of frames waiting for resolution.

Resolution follows Linux's defaults: up to `retries` requests (mcast_solicit 3) one `retry_ms`
apart (retrans_time 1 s); when the last one goes unanswered, the queued frames are dropped and the
stack is told, which fails a connect in SYN-SENT with EHOSTUNREACH. Nothing here allocates per
packet: entries are preallocated, and each queue slot's frame buffer is made the first time the
slot is used, then kept.
"""
from tcpip import mem
from tcpip.clock import ticks_add, ticks_diff
from tcpip.wire import arp as warp
from tcpip.wire import ethernet
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

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

_ETH_LEN = const(14)          # Ethernet header length (tcpip.wire.ethernet)
_ETHERTYPE_ARP = const(0x0806)
_OP_REQUEST = const(1)        # ARP opcodes, RFC 826 ar$op (tcpip.wire.arp)
_OP_REPLY = const(2)
_SHA = const(8)               # field offsets in the ARP packet, RFC 826 (tcpip.wire.arp)
_SPA = const(14)
_THA = const(18)
_TPA = const(24)

FREE = 0
INCOMPLETE = 1
REACHABLE = 2

ARP_FRAME_LEN = 42
_ZERO_MAC = b"\x00\x00\x00\x00\x00\x00"


class _Entry:
    def __init__(self):
        self.state = FREE
        self.ip = bytearray(4)
        self.mac = bytearray(6)
        self.deadline = 0  # REACHABLE: expiry; INCOMPLETE: next request
        self.requests = 0
        self.used = 0  # ticks of last use, for replacement


class _Slot:
    def __init__(self, size):
        self.size = size
        self.buf = None  # the frame buffer, made when the slot is first used (then kept)
        self.len = 0
        self.next_hop = bytearray(4)


class ArpCache:
    def __init__(self, stack, entries=8, queue_slots=2, frame_size=1514, retries=3, retry_ms=1000, reachable_ms=60000):
        self.stack = stack
        self.entries = [_Entry() for _ in range(entries)]
        self.slots = [_Slot(frame_size) for _ in range(queue_slots)]
        self.retries = retries
        self.retry_ms = retry_ms
        self.reachable_ms = reachable_ms
        self.frame = bytearray(60)  # padded to the Ethernet minimum by send_frame
        self._swept = stack.now  # ticks: the last sweep for expired entries (poll)
        self._resolving = False  # an entry may be INCOMPLETE (its request timer runs in poll)

    # -- lookups -------------------------------------------------------------------------------
    def _find(self, buf, off):
        for e in self.entries:
            if e.state != FREE and mem.equal(e.ip, 0, buf, off, 4):
                return e
        return None

    def lookup(self, buf, off, now):
        """The MAC (bytearray) for the IPv4 address at buf[off:off+4], or None."""
        e = self._find(buf, off)
        if e is None or e.state != REACHABLE:
            return None
        if ticks_diff(now, e.deadline) >= 0:
            # expired: resolve afresh (Linux would go STALE and probe; a board keeps it simple)
            e.state = FREE
            self.stack.route.gen += 1
            return None
        e.used = now
        return e.mac

    def _allocate(self, now):
        victim = None
        for e in self.entries:
            if e.state == FREE:
                return e
        # replace the least recently used REACHABLE entry; never an INCOMPLETE one
        for e in self.entries:
            if e.state == REACHABLE and (victim is None or ticks_diff(e.used, victim.used) < 0):
                victim = e
        if victim is None:
            self.stack.cnt[_ARP_CACHE_FULL] += 1
        else:
            self.stack.route.gen += 1  # a neighbour's entry goes: templates built for it too
        return victim

    # -- output side ---------------------------------------------------------------------------
    def enqueue(self, frame, n, next_hop, nh_off, now):
        """Hold frame[:n] until next_hop resolves; start resolution if it has not started."""
        c = self.stack.cnt
        slot = None
        for s in self.slots:
            if s.len == 0:
                slot = s
                break
        if slot is None:
            # queue full: drop the oldest (Linux drops the head of the unresolved queue)
            c[_ARP_QUEUE_OVERFLOW] += 1
            slot = self.slots[0]
            for i in range(len(self.slots) - 1):
                self.slots[i] = self.slots[i + 1]
            self.slots[-1] = slot
        if slot.buf is None:
            slot.buf = bytearray(slot.size)  # once: a board that never waits for ARP saves it
        if n > slot.size:
            n = slot.size
        mem.copy(slot.buf, 0, frame, 0, n)
        slot.len = n
        mem.copy(slot.next_hop, 0, next_hop, nh_off, 4)
        e = self._find(next_hop, nh_off)
        if e is None:
            e = self._allocate(now)
            if e is None:
                slot.len = 0
                return
            e.state = INCOMPLETE
            self._resolving = True
            mem.copy(e.ip, 0, next_hop, nh_off, 4)
            e.requests = 0
            e.used = now
            self._request(e, now)

    def _request(self, e, now):
        s = self.stack
        f = self.frame
        ethernet.emit_header(f, 0, ethernet.BROADCAST, s.mac, _ETHERTYPE_ARP)
        warp.emit(f, _ETH_LEN, _OP_REQUEST, s.mac, s.route.addr, _ZERO_MAC, e.ip)
        s.send_frame(f, ARP_FRAME_LEN)
        s.cnt[_ARP_REQUEST_SENT] += 1
        if s.trace is not None:
            s.trace("arp-request", None, ipv4.ntoa(e.ip))
        e.requests += 1
        e.deadline = ticks_add(now, self.retry_ms)

    def _flush(self, e):
        s = self.stack
        for slot in self.slots:
            if slot.len and mem.equal(slot.next_hop, 0, e.ip, 0, 4):
                mem.copy(slot.buf, 0, e.mac, 0, 6)
                s.send_frame(slot.buf, slot.len)
                slot.len = 0

    def _fail(self, e):
        s = self.stack
        s.cnt[_ARP_RESOLVE_FAILED] += 1
        for slot in self.slots:
            if slot.len and mem.equal(slot.next_hop, 0, e.ip, 0, 4):
                slot.len = 0
        e.state = FREE
        s.route.gen += 1
        s.neighbour_failed(e.ip)

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
        for e in self.entries:
            st = e.state
            if st == INCOMPLETE:
                resolving = True
                if ticks_diff(now, e.deadline) >= 0:
                    if e.requests >= self.retries:
                        self._fail(e)
                    else:
                        self._request(e, now)
            elif sweep and st == REACHABLE and ticks_diff(now, e.deadline) >= 0:
                e.state = FREE
                self.stack.route.gen += 1
        self._resolving = resolving

    def next_deadline(self, now, best):
        """Ticks until the nearest ARP timer (or best, if nearer)."""
        for e in self.entries:
            if e.state == INCOMPLETE:
                d = ticks_diff(e.deadline, now)
                if d < best:
                    best = d
        return best

    # -- input side ----------------------------------------------------------------------------
    def input(self, buf, off, n, now):
        """An ARP packet at buf[off:off+n] (RFC 826 'Packet Reception')."""
        s = self.stack
        c = s.cnt
        c[_ARP_RX] += 1
        if not warp.is_valid_ipv4_ethernet(buf, off, n):
            c[_ARP_DROP_MALFORMED] += 1
            return
        spa = off + _SPA
        sha = off + _SHA
        # a multicast/broadcast sender MAC, or an ARP probe from 0.0.0.0, teaches nothing
        learn = not (buf[sha] & 1 or ipv4.is_zero(buf, spa))
        for_us = s.route.configured() and s.route.is_local(buf, off + _TPA)
        e = self._find(buf, spa) if learn else None
        if e is not None:
            # merge: update the existing entry (RFC 826), even if the packet is not for us
            if not mem.equal(e.mac, 0, buf, sha, 6):
                s.route.gen += 1  # the neighbour moved: templates with its old MAC are stale
            mem.copy(e.mac, 0, buf, sha, 6)
            was_incomplete = e.state == INCOMPLETE
            e.state = REACHABLE
            e.deadline = ticks_add(now, self.reachable_ms)
            e.used = now
            if was_incomplete:
                c[_ARP_RESOLVED] += 1
                if s.trace is not None:
                    s.trace("arp-resolved", None, ipv4.ntoa(e.ip))
                self._flush(e)
        if not for_us:
            c[_ARP_DROP_NOT_FOR_US] += 1
            return
        if e is None and learn:
            e = self._allocate(now)
            if e is not None:
                e.state = REACHABLE
                mem.copy(e.ip, 0, buf, spa, 4)
                mem.copy(e.mac, 0, buf, sha, 6)
                e.deadline = ticks_add(now, self.reachable_ms)
                e.used = now
        if warp.get_oper(buf, off) == _OP_REQUEST:
            f = self.frame
            ethernet.emit_header(f, 0, _ZERO_MAC, s.mac, _ETHERTYPE_ARP)
            warp.emit(f, _ETH_LEN, _OP_REPLY, s.mac, s.route.addr, _ZERO_MAC, _ZERO_MAC)
            # to the requester: Ethernet source, sha and spa of the request become dst, tha and tpa
            mem.copy(f, 0, buf, 6, 6)
            mem.copy(f, _ETH_LEN + _THA, buf, sha, 6)
            mem.copy(f, _ETH_LEN + _TPA, buf, spa, 4)
            s.send_frame(f, ARP_FRAME_LEN)
            c[_ARP_REPLY_SENT] += 1

