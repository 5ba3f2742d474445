"""UDP (RFC 768), as much as DHCP and DNS need: ports bound to handlers, sendto, port unreachable.

    port = stack.udp.bind(0, handler)          # 0: a random free port in 49152-65535
    stack.udp.sendto(data, n, dst_ip, 53, port)
    def handler(buf, off, n, src_ip_buf, src_ip_off, src_port): ...

Receive path (no allocation): Stack._ip_input -> Udp.input checks the length and the checksum (0
means none was sent: accepted, RFC 768) and calls the handler bound to the destination port with
the payload at buf[off:off+n]; buf is the stack's receive buffer, valid only during the call (copy
what you keep). A bound method taking six arguments makes MicroPython build a temporary argument
array (objboundmeth.c takes it from the heap and frees it at once, or from the C stack when the heap
is locked): the path works with the heap locked, and the test suite checks that.

A datagram for a port nobody bound gets ICMP port unreachable (RFC 1122 3.2.2.1, as Linux
__udp4_lib_rcv), quoting as much of it as fits in 576 bytes (Linux icmp_send), never for datagrams
sent to a broadcast address or not addressed to us (accepted while unconfigured, for DHCP), nor
about a zero source. Rate limit: a token bucket of `unreach_burst` (6) messages refilled by one
every `unreach_interval_ms` (1000), Linux's per-destination icmp_ratelimit kept as one bucket.

sendto builds the datagram in the stack's transmit buffer at PAYLOAD (42): a caller that writes its
payload straight into stack.tx[PAYLOAD:] and passes stack.tx as buf saves the copy (DHCP does).
Broadcast destinations (255.255.255.255 or the subnet's) leave as Ethernet broadcast without ARP
(Stack.ip_output). The source address is the interface's, 0.0.0.0 while unconfigured (RFC 2131 4.1).

ICMP errors quoting one of our datagrams go to the error handler given to bind(), if any, as
error_handler(err, dst_ip_buf, dst_ip_off, dst_port) (the quoted destination).

A datagram socket (tcpip.dgram) binds itself in the error handler's place with no handler:
`bind(port, None, sock)`. Its methods are called, as methods (a bound method with six arguments
would take a temporary argument array from the heap per datagram): sock.udp_input(buf, ip_off,
off, n) -> True when it took the datagram (False: not for it, as a connected socket's other
senders: counted udp_no_port and answered with port unreachable, as Linux, which finds no socket
for them), and sock.udp_error(err, buf, q, t) with the quote's IP header at buf[q] and its UDP
header at buf[t].

Timers: DHCP and DNS register objects with poll(now) and next_deadline(now, best) through
add_timer(); Stack.poll() and Stack.next_timer_ms() run them through this layer.
"""
import os

from tcpip import errors
from tcpip import mem
from tcpip.checksum import checksum, pseudo_sum
from tcpip.clock import ticks_add, ticks_diff
from tcpip.wire import ipv4
from tcpip.wire import udp as wudp

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into stack.cnt (tcpip.counter_names.NAMES; tests/host/test_counters.py)
_ICMP_UNREACH_NO_MATCH = const(32)
_UDP_RX = const(79)
_UDP_NO_PORT = const(80)
_UDP_TX = const(81)
_UDP_DROP_SHORT = const(82)
_UDP_DROP_BAD_LENGTH = const(83)
_UDP_DROP_BAD_CHECKSUM = const(84)
_UDP_PORT_UNREACH_SENT = const(85)
_UDP_PORT_UNREACH_RATELIMITED = const(86)
_UDP_ICMP_ERROR = const(87)

PAYLOAD = const(42)  # payload offset in frames we build: Ethernet 14 + IPv4 20 + UDP 8
_IP = const(14)
_L4 = const(34)
_PROTO_UDP = const(17)
_PROTO_ICMP = const(1)
_ICMP_QUOTE_MAX = const(548)  # 576 - IP header 20 - ICMP header 8 (Linux icmp_send)
EPHEMERAL_LOW = const(49152)  # RFC 6335 dynamic ports; lwIP also draws from 0xC000 up
_EPHEMERAL_TRIES = const(16)


class Udp:
    def __init__(self, stack, bindings=8, unreach_burst=6, unreach_interval_ms=1000):
        self.stack = stack
        self.ports = [0] * bindings  # 0 = free slot
        self.handlers = [None] * bindings
        # a callable, or a datagram socket (its udp_input/udp_error) where handlers has None
        self.error_handlers: list = [None] * bindings
        self.timers = []
        self.unreach_burst = unreach_burst
        self.unreach_interval_ms = unreach_interval_ms
        self.unreach_tokens = unreach_burst
        self.unreach_refill = stack.now

    # -- ports -----------------------------------------------------------------------------------
    def _slot(self, port):
        ports = self.ports
        for i in range(len(ports)):
            if ports[i] == port:
                return i
        return -1

    def is_bound(self, port):
        return port != 0 and self._slot(port) >= 0

    def bind(self, port, handler, error_handler=None):
        """Bind port (0: a random free one in 49152-65535, RFC 6056 algorithm 2) to handler (None:
        error_handler is a datagram socket, see above); returns the port. OSError(EADDRINUSE) if
        it is taken, OSError(ENOBUFS) if every slot is."""
        if not 0 <= port <= 0xFFFF:
            raise OSError(errors.EINVAL)
        if port == 0:
            for _ in range(_EPHEMERAL_TRIES):
                r = os.urandom(2)
                p = EPHEMERAL_LOW + ((r[0] << 8 | r[1]) & 0x3FFF)
                if not self.is_bound(p):
                    port = p
                    break
            if port == 0:
                raise OSError(errors.EADDRINUSE)
        elif self.is_bound(port):
            raise OSError(errors.EADDRINUSE)
        i = self._slot(0)
        if i < 0:
            raise OSError(errors.ENOBUFS)
        self.ports[i] = port
        self.handlers[i] = handler
        self.error_handlers[i] = error_handler
        return port

    def unbind(self, port):
        """Free port (nothing happens if it is not bound)."""
        if port == 0:
            return
        i = self._slot(port)
        if i >= 0:
            self.ports[i] = 0
            self.handlers[i] = None
            self.error_handlers[i] = None

    # -- timers of the protocols above -----------------------------------------------------------
    def add_timer(self, obj):
        if obj not in self.timers:
            self.timers.append(obj)

    def remove_timer(self, obj):
        if obj in self.timers:
            self.timers.remove(obj)

    def poll(self, now):
        for t in self.timers:
            t.poll(now)

    def next_deadline(self, now, best):
        for t in self.timers:
            best = t.next_deadline(now, best)
        return best

    # -- output ----------------------------------------------------------------------------------
    def sendto(self, buf, n, dst, dst_port, src_port, dst_off=0):
        """Send buf[:n] (or, when buf is stack.tx, the n bytes already at stack.tx[PAYLOAD:]) to
        dst[dst_off:dst_off+4]:dst_port from our address:src_port. True when it left or waits for
        ARP; False without a route (counted ip_tx_no_route). OSError(EMSGSIZE) past the MTU;
        ValueError when n is past the end of buf (the copy would read beyond it)."""
        s = self.stack
        f = s.tx
        if n < 0 or PAYLOAD + n > len(f):
            raise OSError(errors.EMSGSIZE)
        if buf is not f:
            if n > len(buf):  # len() counts items, never more than the bytes there are
                raise ValueError("sendto: n past the end of buf")
            mem.copy(f, PAYLOAD, buf, 0, n)
        length = n + 8
        src = s.route.addr
        wudp.emit_header(f, _L4, src_port, dst_port, length)
        wudp.fill_checksum(f, _L4, length, src, 0, dst, dst_off)
        s.cnt[_UDP_TX] += 1
        return s.ip_output(dst, dst_off, src, 0, _PROTO_UDP, length)

    # -- input -----------------------------------------------------------------------------------
    def input(self, buf, ip_off, off, n):
        """A UDP datagram (n bytes of IP payload at buf[off]) inside the IPv4 packet at buf[ip_off]."""
        c = self.stack.cnt
        c[_UDP_RX] += 1
        if n < 8:
            c[_UDP_DROP_SHORT] += 1
            return
        length = buf[off + 4] << 8 | buf[off + 5]
        if length < 8 or length > n:
            c[_UDP_DROP_BAD_LENGTH] += 1  # RFC 768: the length field covers header and data
            return
        if buf[off + 6] | buf[off + 7]:
            acc = pseudo_sum(buf, ip_off + 12, buf, ip_off + 16, _PROTO_UDP, length)
            if checksum(buf, off, off + length, acc) != 0:
                c[_UDP_DROP_BAD_CHECKSUM] += 1
                return
        dport = buf[off + 2] << 8 | buf[off + 3]
        if dport != 0:
            ports = self.ports
            for i in range(len(ports)):
                if ports[i] == dport:
                    h = self.handlers[i]
                    if h is not None:
                        h(buf, off + 8, length - 8, buf, ip_off + 12, buf[off] << 8 | buf[off + 1])
                        return
                    if self.error_handlers[i].udp_input(buf, ip_off, off + 8, length - 8):
                        return  # a datagram socket took it
                    break
        c[_UDP_NO_PORT] += 1
        self._port_unreachable(buf, ip_off)

    def _port_unreachable(self, buf, ip_off):
        s = self.stack
        c = s.cnt
        route = s.route
        # RFC 1122 3.2.2: never about a datagram to a broadcast/multicast address; nor when it was
        # not ours (accepted while unconfigured) or its source cannot be answered (RFC 1812 4.3.2.7)
        if not route.configured() or not route.is_local(buf, ip_off + 16):
            return
        if ipv4.is_zero(buf, ip_off + 12):
            return
        if not self._unreach_allowed(s.now):
            c[_UDP_PORT_UNREACH_RATELIMITED] += 1
            return
        q = buf[ip_off + 2] << 8 | buf[ip_off + 3]
        if q > _ICMP_QUOTE_MAX:
            q = _ICMP_QUOTE_MAX
        f = s.tx
        if _L4 + 8 + q > len(f):
            q = len(f) - _L4 - 8
        mem.copy(f, _L4 + 8, buf, ip_off, q)
        f[_L4] = 3  # destination unreachable (RFC 792)
        f[_L4 + 1] = 3  # port unreachable
        for i in range(2, 8):
            f[_L4 + i] = 0
        cs = checksum(f, _L4, _L4 + 8 + q)
        f[_L4 + 2] = cs >> 8
        f[_L4 + 3] = cs & 0xFF
        c[_UDP_PORT_UNREACH_SENT] += 1
        s.ip_output(buf, ip_off + 12, route.addr, 0, _PROTO_ICMP, 8 + q)

    def _unreach_allowed(self, now):
        burst = self.unreach_burst
        if self.unreach_tokens < burst:
            step = self.unreach_interval_ms
            d = ticks_diff(now, self.unreach_refill)
            if d >= step:
                k = d // step
                if self.unreach_tokens + k >= burst:
                    self.unreach_tokens = burst
                    self.unreach_refill = now
                else:
                    self.unreach_tokens += k
                    self.unreach_refill = ticks_add(self.unreach_refill, k * step)
        else:
            self.unreach_refill = now
        if self.unreach_tokens > 0:
            self.unreach_tokens -= 1
            return True
        return False

    def icmp_error(self, buf, q, qlen, err):
        """An ICMP error quoting qlen bytes of one of our datagrams at buf[q] (IP header first)."""
        s = self.stack
        c = s.cnt
        if qlen < 28:
            c[_ICMP_UNREACH_NO_MATCH] += 1
            return
        qhl = (buf[q] & 0x0F) * 4
        if qhl < 20 or qlen < qhl + 8 or buf[q + 9] != _PROTO_UDP or not s.route.is_local(buf, q + 12):
            c[_ICMP_UNREACH_NO_MATCH] += 1
            return
        t = q + qhl
        sport = buf[t] << 8 | buf[t + 1]
        i = self._slot(sport) if sport else -1
        if i < 0 or self.error_handlers[i] is None:
            c[_ICMP_UNREACH_NO_MATCH] += 1
            return
        c[_UDP_ICMP_ERROR] += 1
        if self.handlers[i] is None:
            self.error_handlers[i].udp_error(err, buf, q, t)  # a datagram socket
        else:
            self.error_handlers[i](err, buf, q + 16, buf[t + 2] << 8 | buf[t + 3])
