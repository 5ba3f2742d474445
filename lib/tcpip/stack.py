"""The stack: one Ethernet device, ARP, IPv4, ICMP, TCP and a minimal UDP, driven by poll().

Frames are received into one preallocated buffer and built in one preallocated transmit buffer;
poll() never raises: a frame that trips an unexpected error is counted (eth_drop_exception) and
dropped.
"""
from tcpip import call
from tcpip import mem
from tcpip.arp import BROADCAST, ArpCache, emit_header
from tcpip.checksum import checksum
from tcpip.clock import Clock, ticks_diff
from tcpip.counters import Counters
from tcpip.route import Route
from tcpip import fastpath
from tcpip import tcp_in
from tcpip.tcp import Tcp, TcpConfig
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_ETH_RX = const(0)
_ETH_TX = const(1)
_ETH_DROP_SHORT = const(2)
_ETH_DROP_NOT_FOR_US = const(3)
_ETH_DROP_ETHERTYPE = const(4)
_ETH_DROP_EXCEPTION = const(5)
_IP_RX = const(15)
_IP_TX = const(16)
_IP_DROP_BAD_VERSION = const(17)
_IP_DROP_BAD_HEADER_LEN = const(18)
_IP_DROP_BAD_TOTAL_LEN = const(19)
_IP_DROP_BAD_CHECKSUM = const(20)
_IP_DROP_NOT_FOR_US = const(21)
_IP_DROP_FRAGMENT = const(22)
_IP_DROP_PROTO = const(23)
_IP_DROP_BAD_SOURCE = const(24)
_IP_TX_NO_ROUTE = const(25)
_ICMP_RX = const(26)
_ICMP_DROP_SHORT = const(27)
_ICMP_DROP_BAD_CHECKSUM = const(28)
_ICMP_ECHO_REPLY_SENT = const(29)
_ICMP_DROP_TYPE = const(30)
_TCP_DROP_NOT_UNICAST = const(90)
_UDP_RX = const(79)
_UDP_NO_PORT = const(80)

_ETH_LEN = const(14)
_IP = const(14)        # IPv4 header offset in a frame
_L4 = const(34)        # payload offset in frames we build (no IP options)
_ETHERTYPE_IPV4 = const(0x0800)
_ETHERTYPE_ARP = const(0x0806)
_PROTO_ICMP = const(1)
_PROTO_TCP = const(6)
_PROTO_UDP = const(17)
_DHCP_CLIENT_PORT = const(68)
_MIN_FRAME = const(60)  # Ethernet minimum without FCS: shorter frames are padded
_FRAMES_PER_POLL = const(16)
_IDLE_WAIT_MS = const(1000)
_BAD_VERSION = const(1)     # ipv4.check() reasons (tcpip.wire.ipv4)
_BAD_HEADER_LEN = const(2)
_BAD_CHECKSUM = const(4)

_fp_match = fastpath.match
_fast_input = tcp_in.fast_input
_fast_acks = tcp_in.fast_acks

class Stack:
    # set by tcpip.board.bring_up on the stack it makes (declarations for the type checker: they
    # compile to nothing)
    board: object  # the board file's module (boards/<name>.py)
    nic: object  # the chip driver, also the stack's device

    def __init__(self, device, clock=None, addr=None, gateway=None, tcp_config=None, arp_entries=8, arp_queue=2):
        """device: the NIC contract (docs/ARCHITECTURE.md); addr: 'a.b.c.d/n'; gateway: 'a.b.c.d'."""
        self.device = device
        # made once: getattr of a method makes a bound-method object (heap) every time
        self._dev_wait = getattr(device, "wait", None)
        self.clock = clock if clock is not None else Clock()
        self.mac = bytes(device.mac)
        self.mtu = getattr(device, "mtu", 1500)
        self.counters = Counters()
        self.cnt = self.counters.v  # what the layers count into (tcpip.counters)
        self.route = Route()
        if addr is not None:
            self.route.configure(addr, 24, gateway)
        frame = _ETH_LEN + self.mtu
        if frame < _MIN_FRAME:
            frame = _MIN_FRAME
        # a device may offer its own frame buffers (the chip drivers: frames arrive where they are
        # read from and leave from where they are built, without a copy)
        b = getattr(device, "rx_buffer", None)
        self.rx = b if b is not None and len(b) >= frame else bytearray(frame + 4)
        b = getattr(device, "tx_buffer", None)
        self.tx = b if b is not None and len(b) >= frame else bytearray(frame)
        self.ident = 0
        self.now = self.clock.ticks_ms()
        self.trace = None  # optional callable(event, tcb_or_None, detail) for timelines
        self.arp = ArpCache(self, arp_entries, arp_queue, len(self.tx))
        self.tcp = Tcp(self, tcp_config if tcp_config is not None else TcpConfig())
        self._udp = None  # the UDP layer (tcpip.udp), made when first used: stack.udp
        self.dns_servers = []  # 4-byte addresses; DHCP sets them, tcpip.dns.Resolver reads them
        self._isn_refresh = self.now
        self._timers_at = -1  # the tick the timers last ran at (never a tick value)
        # pure ACKs of the hot connection in a row within one poll's batch: only the last (the
        # highest) is processed, as k of them (Stack.input, tcp_in.fast_acks)
        self._batch = False
        self._ack_k = 0
        self._ack_r = 0
        self._ack_t = None
        self._second_at = self.now  # the last once-a-second round
        # the link, as the device says once a second, two readings agreeing (None: not known yet,
        # or the device cannot tell); on_link(up) is called when it changes (tcpip.cold.link_changed)
        self._link_up = getattr(device, "link_up", None)
        self._link_was = None  # the last reading: a change counts once two readings agree
        self.link = None
        self.on_link = None

    def __getattr__(self, name):
        # stack.udp: the UDP layer is made (and tcpip.udp imported) when DHCP, DNS or a datagram to
        # us first needs it; a board with a static address and no names never loads it
        if name == "udp":
            from tcpip.udp import Udp

            self._udp = Udp(self)
            self.udp = self._udp
            return self._udp
        raise AttributeError(name)

    # -- configuration ---------------------------------------------------------------------------
    def configure(self, addr, gateway=None):
        self.route.configure(addr, 24, gateway)

    # -- the poll loop ---------------------------------------------------------------------------
    def poll(self):
        """Read waiting frames (at most 16), then run due timers (once per millisecond tick:
        every deadline is in whole milliseconds). Never raises."""
        now = self.clock.ticks_ms()
        self.now = now
        dev = self.device
        rx = self.rx
        self._batch = True
        for _ in range(_FRAMES_PER_POLL):
            n = dev.recv_into(rx)
            if not n:
                break
            try:
                self.input(rx, n)
            except Exception:
                self.cnt[_ETH_DROP_EXCEPTION] += 1
        self._batch = False
        if self._ack_k:
            try:
                self._ack_flush()
            except Exception:
                self.cnt[_ETH_DROP_EXCEPTION] += 1
        if now != self._timers_at:
            self._timers_at = now
            try:
                self._timers()
            except Exception:
                self.cnt[_ETH_DROP_EXCEPTION] += 1

    def _timers(self):
        now = self.now
        # once a second: the ARP sweep and the ISN clock (a negative d: the clock wrapped far)
        d = ticks_diff(now, self._second_at)
        second = d >= 1000 or d < 0
        if second:
            self._second_at = now
            if ticks_diff(now, self._isn_refresh) >= 60000:
                # keep the ISN clock's extended count ahead of the 2**30 tick wrap
                self._isn_refresh = now
                self.tcp.isn.advance()
            f = self._link_up
            if f is not None:
                up = f()  # one register read over SPI a second
                if up == self._link_was and up != self.link:
                    # two readings a second apart agree (a PHY read that failed once does not
                    # make a link down and up again)
                    if self.link is None:
                        self.link = up  # the first look: no change to report
                    else:
                        call("tcpip.cold", "link_changed", self, up)  # rare
                self._link_was = up
        arp = self.arp
        if second or arp._resolving:
            arp.poll(now)
        self.tcp.poll(now)
        udp = self._udp
        if udp is not None and udp.timers:
            udp.poll(now)  # DHCP and DNS timers

    def next_timer_ms(self):
        """Milliseconds until the nearest timer (capped at 1 s)."""
        now = self.clock.ticks_ms()
        best = self.arp.next_deadline(now, _IDLE_WAIT_MS)
        best = self.tcp.next_deadline(now, best)
        if self._udp is not None:
            best = self._udp.next_deadline(now, best)
        return best if best > 0 else 0

    def run_until(self, done, timeout_ms=None):
        """Service the stack until done() is true (returns True) or timeout_ms passes (False)."""
        clock = self.clock
        start = clock.ticks_ms()
        wait = self._dev_wait
        while True:
            self.poll()
            if done():
                return True
            now = clock.ticks_ms()
            left = _IDLE_WAIT_MS
            if timeout_ms is not None:
                left = timeout_ms - ticks_diff(now, start)
                if left <= 0:
                    return False
            t = self.next_timer_ms()
            if t < left:
                left = t
            if wait is not None:
                wait(left)
            elif left > 0:
                clock.sleep_ms(1 if left > 1 else left)

    # -- input -----------------------------------------------------------------------------------
    def _ack_flush(self):
        """The pure ACKs Stack.input held back (the last of them, counted as all)."""
        k = self._ack_k
        self._ack_k = 0
        r = self._ack_r
        self._ack_r = 0
        t = self._ack_t
        self._ack_t = None
        _fast_acks(t, r, k)

    def input(self, buf, n):
        """One received Ethernet frame of n bytes. Header prediction first: a frame that is the
        next in-order segment (or a new ACK) of the hot connection is handled in two calls
        (fastpath.match, tcp_in.fast_input); everything else takes the layered path below.
        Within poll()'s batch a pure new ACK is held back while the next frame is another one
        beyond it (only the last is processed, as all: tcp_in.fast_acks); any other frame, and
        the batch's end, releases it first, so frames are processed in their order."""
        t = self.tcp.hot
        if t is not None:
            r = _fp_match(buf, n, t.th, t.r_nxt, t.s_una, t.s_max)
            if r >= 0:
                if (self._batch and not r & 0x7FF and r > self._ack_r and not t.in_recovery
                        and (self._ack_t is t or self._ack_t is None)):
                    # a pure ACK beyond the pending one: it makes that one moot
                    self._ack_r = r
                    self._ack_k += 1
                    self._ack_t = t
                    return
                if self._ack_k:
                    self._ack_flush()  # first what came before this segment, then it, anew
                    t = self.tcp.hot
                    r = -1 if t is None else _fp_match(buf, n, t.th, t.r_nxt, t.s_una, t.s_max)
                if r >= 0 and _fast_input(t, buf, r):
                    return
        if self._ack_k:
            self._ack_flush()
        c = self.cnt
        c[_ETH_RX] += 1
        if n < _ETH_LEN:
            c[_ETH_DROP_SHORT] += 1
            return
        if buf[0] & 1:
            if not (buf[0] == 0xFF and buf[1] == 0xFF and buf[2] == 0xFF and buf[3] == 0xFF and buf[4] == 0xFF and buf[5] == 0xFF):
                c[_ETH_DROP_NOT_FOR_US] += 1  # multicast we did not join
                return
        elif not mem.equal(buf, 0, self.mac, 0, 6):
            c[_ETH_DROP_NOT_FOR_US] += 1
            return
        et = buf[12] << 8 | buf[13]
        if et == _ETHERTYPE_IPV4:
            self._ip_input(buf, n)
        elif et == _ETHERTYPE_ARP:
            self.arp.input(buf, _ETH_LEN, n - _ETH_LEN, self.now)
        else:
            c[_ETH_DROP_ETHERTYPE] += 1

    def _ip_input(self, buf, n):
        c = self.cnt
        c[_IP_RX] += 1
        r = ipv4.check(buf, _IP, n - _ETH_LEN)
        if r:
            if r == _BAD_CHECKSUM:
                c[_IP_DROP_BAD_CHECKSUM] += 1
            elif r == _BAD_VERSION:
                c[_IP_DROP_BAD_VERSION] += 1
            elif r == _BAD_HEADER_LEN:
                c[_IP_DROP_BAD_HEADER_LEN] += 1
            else:
                c[_IP_DROP_BAD_TOTAL_LEN] += 1
            return
        route = self.route
        configured = route.configured()
        if not configured or not route.is_local(buf, _IP + 16):
            # UDP only (DHCP): datagrams to a broadcast address, and while we have no address
            # (RFC 2131 4.1) any unicast that reached our MAC: a server's reply to yiaddr. While
            # unconfigured only DHCP replies (to port 68) come in at all.
            if buf[_IP + 9] != _PROTO_UDP or not (
                route.is_broadcast(buf, _IP + 16) or (not configured and not buf[0] & 1)
            ):
                c[_IP_DROP_NOT_FOR_US] += 1
                return
            if not configured:
                u = _IP + (buf[_IP] & 0x0F) * 4
                if (buf[_IP + 2] << 8 | buf[_IP + 3]) < u - _IP + 4 or buf[u + 2] != 0 or buf[u + 3] != _DHCP_CLIENT_PORT:
                    c[_IP_DROP_NOT_FOR_US] += 1
                    return
        # martian sources (RFC 1122 3.2.1.3; Linux ip_route_input_slow, fib_validate_source):
        # multicast, broadcast, 0/8, 127/8, and our own address
        s0 = buf[_IP + 12]
        if (s0 == 0 or s0 == 127 or ipv4.is_multicast(buf, _IP + 12) or route.is_broadcast(buf, _IP + 12)
                or (configured and route.is_local(buf, _IP + 12))):
            c[_IP_DROP_BAD_SOURCE] += 1
            return
        if ipv4.is_fragment(buf, _IP):
            c[_IP_DROP_FRAGMENT] += 1  # no reassembly (RFC 791 allows a host to refuse it)
            return
        hl = (buf[_IP] & 0x0F) * 4
        total = buf[_IP + 2] << 8 | buf[_IP + 3]
        proto = buf[_IP + 9]
        if proto == _PROTO_TCP:
            if buf[0] & 1:
                # TCP in an Ethernet broadcast (or multicast) frame: not for a host's connection
                # whatever its IP destination says (Linux tcp_v4_rcv: pkt_type != PACKET_HOST)
                c[_TCP_DROP_NOT_UNICAST] += 1
                return
            self.tcp.input(buf, _IP, _IP + hl, total - hl)
        elif proto == _PROTO_UDP:
            udp = self._udp
            if udp is None:
                if buf[0] & 1 or not route.is_local(buf, _IP + 16):
                    # broadcast or multicast and nobody uses UDP: nothing to answer either
                    c[_UDP_RX] += 1
                    c[_UDP_NO_PORT] += 1
                    return
                udp = self.udp  # a datagram to us: the UDP layer answers (port unreachable)
            udp.input(buf, _IP, _IP + hl, total - hl)
        elif proto == _PROTO_ICMP:
            off = _IP + hl
            n = total - hl
            c = self.cnt
            c[_ICMP_RX] += 1
            if n < 8:
                c[_ICMP_DROP_SHORT] += 1
                return
            if checksum(buf, off, off + n) != 0:
                c[_ICMP_DROP_BAD_CHECKSUM] += 1
                return
            t = buf[off]
            if t == 8:
                # echo request -> echo reply (RFC 792): same identifier, sequence and data
                if _L4 + n > len(self.tx):
                    c[_ICMP_DROP_SHORT] += 1
                    return
                f = self.tx
                mem.copy(f, _L4, buf, off, n)
                f[_L4] = 0
                f[_L4 + 2] = 0
                f[_L4 + 3] = 0
                cs = checksum(f, _L4, _L4 + n)
                f[_L4 + 2] = cs >> 8
                f[_L4 + 3] = cs & 0xFF
                c[_ICMP_ECHO_REPLY_SENT] += 1
                self.ip_output(buf, _IP + 12, self.route.addr, 0, _PROTO_ICMP, n)
            elif t == 3 or t == 11:
                call("tcpip.cold", "icmp_error", self, buf, off, n)  # rare: loaded for it (tcpip.cold)
            else:
                c[_ICMP_DROP_TYPE] += 1
        else:
            c[_IP_DROP_PROTO] += 1

    # -- output ----------------------------------------------------------------------------------
    def send_frame(self, buf, n):
        if n < _MIN_FRAME:
            for i in range(n, _MIN_FRAME):
                buf[i] = 0
            n = _MIN_FRAME
        self.cnt[_ETH_TX] += 1
        self.device.send(buf, n)

    def ip_output(self, dst, doff, src, soff, proto, l4_len):
        """Send the l4_len bytes at tx[34:] as one IPv4 datagram (TTL 64, DF) to dst[doff:doff+4]."""
        c = self.cnt
        f = self.tx
        route = self.route
        # UDP to a broadcast address (DHCP): Ethernet broadcast, no ARP (TCP never gets here)
        bcast = proto == _PROTO_UDP and route.is_broadcast(dst, doff)
        if bcast:
            nh = None
            nho = 0
        elif route.on_link(dst, doff):
            nh = dst
            nho = doff
        elif route.gateway is not None:
            nh = route.gateway
            nho = 0
        else:
            c[_IP_TX_NO_ROUTE] += 1
            return False
        self.ident = (self.ident + 1) & 0xFFFF
        ipv4.emit_header(f, _IP, src, soff, dst, doff, proto, l4_len, self.ident, 64, True)
        n = _L4 + l4_len
        c[_IP_TX] += 1
        mac = BROADCAST if bcast else self.arp.lookup(nh, nho, self.now)
        emit_header(f, 0, mac if mac is not None else BROADCAST, self.mac, _ETHERTYPE_IPV4)
        if mac is None:
            self.arp.enqueue(f, n, nh, nho, self.now)
        else:
            self.send_frame(f, n)
        return True
