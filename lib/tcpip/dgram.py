"""Datagram sockets: socket(AF_INET, SOCK_DGRAM) over the stack's UDP layer (tcpip.udp).

    s = socket(AF_INET, SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"ping", ("192.0.2.1", 7))
    data, addr = s.recvfrom(512)

tcpip.socket's Socket.__new__ makes these: this module is imported by the first datagram socket,
so a board that makes none carries none of it. The class subclasses tcpip.socket.socket (one
socket class, as CPython's and MicroPython's: isinstance() holds) and takes settimeout,
setblocking, gettimeout, connect_ex, makefile, ioctl (select.poll, asyncio) and `with` from it;
everything else is its own. docs/SOCKETS.md, "UDP", has the whole API.

Linux's UDP (net/ipv4/udp.c, datagram.c, af_inet.c) is the model:
- bind(): 0.0.0.0 or our address; without one, the first sendto() or connect() takes an
  ephemeral port (inet_autobind; tcpip.udp: random in 49152-65535, RFC 6056 algorithm 2, unique
  among the bound UDP ports).
- connect(addr) sets the peer: send() and recv() use it and only its datagrams are taken (the
  others are answered with port unreachable: Linux finds no socket for them); connect(None) or
  AF_UNSPEC unconnects and gives back a port connect() or sendto() took (__udp_disconnect).
- Broadcast (255.255.255.255 or the subnet's) needs SO_BROADCAST: EACCES without it, from
  sendto() and from connect() (udp_sendmsg, ip4_datagram_connect). Broadcasts that arrive go to a
  socket bound to 0.0.0.0, not to one bound to our address.
- A datagram longer than the MTU - 28 (1472 bytes) is refused with EMSGSIZE: no fragmentation.
  Multicast, 0.0.0.0, loopback and our own address: ENETUNREACH (no multicast, no loopback).
- ICMP errors (__udp4_lib_err without IP_RECVERR): only a connected socket takes them, only the
  hard ones (destination unreachable whose icmp_err_convert[] entry is fatal: port unreachable
  -> ECONNREFUSED, protocol unreachable -> ENOPROTOOPT, ...) quoting a datagram to its peer;
  the next call reports it once (sock_error), before any queued datagram.
- recv(n) of a longer datagram returns its first n bytes and the rest is gone, as Linux and
  MicroPython (no MSG_TRUNC report). MSG_PEEK and MSG_DONTWAIT are honoured.
- Left out, as MicroPython's sockets leave them out (the .mpy budget is tight): shutdown()
  (EOPNOTSUPP), recvfrom_into(), getsockopt() of anything but SO_ERROR / SO_BROADCAST /
  SO_RCVBUF, and SO_RCVBUF once the ring exists (EISCONN, as the stream socket's rings).

The receive queue: one bytearray ring per socket, SO_RCVBUF bytes (2048 unless set before the
socket has a port; 256 to 65535), made when the socket gets its port. A datagram is an 8-byte header (length, source port,
source address) and its payload, kept in one piece: one that does not fit before the ring's end
leaves the end (a 0xFFFF length marks it when 8 bytes are there) and starts at 0. A datagram that
finds no room is dropped and counted (udp_sock_rcvbuf_errors, Linux's RcvbufErrors). Nothing is
allocated per datagram on the way in, nor by recv_into / readinto / send on the way out.
"""

from tcpip import mem
from tcpip import socket as _s
from tcpip.socket import _oserror, parse_address
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_TYPE_CHECKING = const(False)  # True for the type checker only: `if` blocks under it compile to nothing

# counters: indexes into self.cnt, this layer's own list (NAMES below; tests/host/test_counters.py)
_UDP_SOCK_RX = const(0)
_UDP_SOCK_RCVBUF_ERRORS = const(1)
_UDP_SOCK_ICMP_ERROR = const(2)
_UDP_SOCK_ICMP_IGNORED = const(3)

# datagram sockets' counters (stack.counters.udp_sock_*): datagrams queued, dropped for want of
# room in the ring, ICMP errors kept for the next call, ICMP errors ignored (not connected, soft,
# or not about the peer)
NAMES = (
    "udp_sock_rx udp_sock_rcvbuf_errors udp_sock_icmp_error udp_sock_icmp_ignored"
)

_AF_INET = const(2)
_UNCONNECTED = const(0)  # tcpip.socket's states
_CONNECTED = const(2)
_CLOSED = const(3)
_IPPROTO_UDP = const(17)
_HDR = const(8)  # a queued datagram's header: length, source port, source address
_RCVBUF = const(2048)  # the ring when SO_RCVBUF is not set: one full-size datagram and then some
_RCVBUF_MIN = const(256)  # Linux's smallest SO_RCVBUF
_RCVBUF_MAX = const(65535)
_UDP_IP_HEADERS = const(28)  # IPv4 20 + UDP 8: the largest datagram is the MTU - 28
_MSG_PEEK = const(2)  # Linux's values (the unix port's socket.MSG_PEEK / MSG_DONTWAIT)
_MSG_DONTWAIT = const(0x40)
_STREAM = const(0x10000)  # read / readinto: None instead of EAGAIN (MicroPython's stream calls)
# errno: Linux's numbers (tcpip.errors; MicroPython's errno and CPython's on Linux agree), as
# constants: a name looked up in tcpip.errors costs a board the name and the lookup
_EBADF = const(9)
_EAGAIN = const(11)
_EACCES = const(13)
_ENODEV = const(19)
_EINVAL = const(22)
_EDESTADDRREQ = const(89)
_EMSGSIZE = const(90)
_ENOPROTOOPT = const(92)
_EOPNOTSUPP = const(95)
_EAFNOSUPPORT = const(97)
_EADDRNOTAVAIL = const(99)
_ENETUNREACH = const(101)
_EISCONN = const(106)
_ENOTCONN = const(107)
_ETIMEDOUT = const(110)
# ICMP destination-unreachable codes Linux's icmp_err_convert[] marks fatal (hard): 2 protocol,
# 3 port, 6 net unknown, 7 host unknown, 8 host isolated, 9/10 prohibited, 13-15 filtered/precedence
_UNREACH_HARD = const(0xE7CC)
# socket options: what tcpip.sockopt._socket_option maps Linux's and lwIP's numbers to
_SOL_SOCKET = const(1)
_SO_REUSEADDR = const(2)
_SO_ERROR = const(4)
_SO_BROADCAST = const(6)
_SO_SNDBUF = const(7)
_SO_RCVBUF = const(8)
_LWIP_SO_ERROR = const(0x1007)
_POLLIN = const(0x01)
_POLLOUT = const(0x04)
_POLLERR = const(0x08)
_POLLNVAL = const(0x20)

_bytes = bytes
_bytearray = bytearray


def new(i, args, kw):
    """The datagram socket tcpip.socket's Socket.__new__ hands back for type SOCK_DGRAM; i is
    where `type` is among args (1: socket(af, type, proto, stack); 2: Socket(stack, af, type,
    proto)). The arguments have the same names in both."""
    s = object.__new__(DatagramSocket)
    if i == 2 and args:
        kw["stack"] = args[0]
        args = args[1:]
    s._open(*args, **kw)
    return s


class DatagramSocket(_s.socket):
    """A UDP socket on a tcpip Stack (made by socket(AF_INET, SOCK_DGRAM))."""

    tcb = None  # tcpip.socket's __repr__ reads it

    def __init__(self, *args, **kw):
        pass  # new() made it; CPython calls this after Socket.__new__ with the caller's arguments

    def _open(self, af=_AF_INET, type=0, proto=0, stack=None):
        if stack is None:
            stack = _s._default_stack
        if stack is None:
            raise _oserror(_ENODEV)
        if af != _AF_INET:
            raise _oserror(_EAFNOSUPPORT)
        if proto != 0 and proto != _IPPROTO_UDP:
            raise _oserror(_EOPNOTSUPP)
        self.stack = stack
        self.state = _UNCONNECTED
        self.timeout = None  # tcpip.socket's settimeout / setblocking / _wait use these two
        self._timeout_ms = -1
        self.port = 0  # our port, 0 until bind(), connect() or the first sendto()
        self.local = None  # the address bind() took (0.0.0.0 too); None: bind() was not called
        self.peer = None  # connect()'s address (4 bytes) and port
        self.peer_port = 0
        self.err = 0  # an ICMP error for the next call (connected sockets only)
        self.bcast = 0  # SO_BROADCAST
        self.ring = None  # the receive queue (made with the port), its size, first byte, bytes
        self.size = _RCVBUF  # used, datagrams in it
        self.head = self.used = 0
        self.cnt = stack.counters.extend(NAMES)
        self._can_read = self._readable_now  # made once: waits hand it to stack.run_until

    # -- addresses -------------------------------------------------------------------------------
    def _closed(self):
        if self.state == _CLOSED:
            raise _oserror(_EBADF)

    def _take_port(self, port):
        try:
            self.port = self.stack.udp.bind(port, None, self)
        except OSError as e:  # EADDRINUSE, ENOBUFS (every binding taken): errno set on CPython too
            raise _oserror(e.args[0])
        if self.ring is None:
            self.ring = bytearray(self.size)

    def bind(self, addr):
        self._closed()
        if addr[1:] and addr[0] == "":
            addr = ("0.0.0.0", addr[1])  # INADDR_ANY as CPython and MicroPython spell it too
        host, port = parse_address(addr)
        if host[0] and not self.stack.route.is_local(host, 0):
            raise _oserror(_EADDRNOTAVAIL)  # 0.0.0.0 (no address starts with 0) or ours
        if self.port:
            raise _oserror(_EINVAL)  # bound already (inet_bind)
        self._take_port(port)
        self.local = host

    def _route(self, dst):
        """EACCES for a broadcast address without SO_BROADCAST; ENETUNREACH where Route.next_hop
        finds no way (multicast, 0.0.0.0, loopback, our own address, no address, no gateway)."""
        route = self.stack.route
        if route.is_broadcast(dst, 0):
            if not self.bcast:
                raise _oserror(_EACCES)
            return
        try:
            route.next_hop(dst)
        except OSError as e:
            raise _oserror(e.args[0])

    def connect(self, addr):
        self._closed()
        if addr is None or addr == 0:  # AF_UNSPEC
            # AF_UNSPEC: unconnect; a port bind() did not choose is given back (__udp_disconnect)
            self.state = _UNCONNECTED
            self.peer = None
            self.peer_port = 0
            if self.port and self.local is None:
                self.stack.udp.unbind(self.port)
                self.port = 0
            return
        dst, port = parse_address(addr)
        self._route(dst)
        if not self.port:
            self._take_port(0)
        self.peer = dst
        self.peer_port = port
        self.state = _CONNECTED

    def getsockname(self):
        self._closed()
        a = self.local
        if (a is None or not a[0]) and self.state == _CONNECTED:
            a = self.stack.route.addr
        return (ipv4.ntoa(a or b"\x00\x00\x00\x00"), self.port)

    def getpeername(self):
        self._closed()
        if self.state != _CONNECTED:
            raise _oserror(_ENOTCONN)
        return (ipv4.ntoa(self.peer), self.peer_port)

    def listen(self, *args, **kw):
        # listen / accept as Linux for a datagram socket; readline (datagrams have no lines);
        # shutdown (MicroPython's sockets have none)
        raise _oserror(_EOPNOTSUPP)

    accept = readline = shutdown = listen

    def close(self):
        if self.state == _CLOSED:
            return
        if self.port:
            self.stack.udp.unbind(self.port)
            self.port = 0
        self.ring = None
        self.used = self.err = 0
        self.state = _CLOSED

    # -- options ---------------------------------------------------------------------------------
    def setsockopt(self, level, optname, value):
        """SOL_SOCKET: SO_BROADCAST (sending to a broadcast address), SO_RCVBUF (the receive ring,
        256..65535 bytes, before the socket has a port: EISCONN after, as the stream socket's
        rings after connect), SO_REUSEADDR and SO_SNDBUF (accepted, no effect). Linux's and
        lwIP's numbers. Else ENOPROTOOPT."""
        self._closed()
        from tcpip.sockopt import _int_option, _socket_option

        opt = _socket_option(level, optname)
        v = _int_option(value)
        if opt == _SO_BROADCAST:
            self.bcast = 1 if v else 0
        elif opt == _SO_RCVBUF:
            if self.ring is not None:
                raise _oserror(_EISCONN)  # the ring is made with the port
            self.size = min(max(v, _RCVBUF_MIN), _RCVBUF_MAX)
        elif opt != _SO_REUSEADDR and opt != _SO_SNDBUF:
            raise _oserror(_ENOPROTOOPT)

    def getsockopt(self, level, optname):
        """SO_ERROR (the pending ICMP error, cleared), SO_BROADCAST, SO_RCVBUF."""
        self._closed()
        if optname == _LWIP_SO_ERROR or (optname == _SO_ERROR and level == _SOL_SOCKET):
            v = self.err
            self.err = 0
            return v
        from tcpip.sockopt import _socket_option

        opt = _socket_option(level, optname)
        if opt == _SO_BROADCAST:
            return self.bcast
        if opt == _SO_RCVBUF:
            return self.size
        raise _oserror(_ENOPROTOOPT)

    # -- receiving -------------------------------------------------------------------------------
    def udp_input(self, buf, ip_off, off, n):
        """tcpip.udp: a datagram for our port, n bytes at buf[off] (its IP header at buf[ip_off]).
        False when it is not for this socket: from another than a connected socket's peer, or a
        broadcast to a socket bound to our address."""
        if self.state == _CONNECTED and (
                (buf[off - 8] << 8 | buf[off - 7]) != self.peer_port
                or not mem.equal(buf, ip_off + 12, self.peer, 0, 4)):
            return False
        a = self.local
        if a is not None and a[0] and not mem.equal(buf, ip_off + 16, a, 0, 4):
            return False
        return self._put(buf, ip_off + 12, buf[off - 8] << 8 | buf[off - 7], off, n)

    def _put(self, src, a, port, off, n):
        """Queue n bytes at src[off], from the address at src[a] and port. True: taken, or
        dropped and counted when the ring has no room."""
        r = self.ring
        if _TYPE_CHECKING:
            assert r is not None  # made with the port, to which the datagram came
        size = self.size
        used = self.used
        if not used:
            self.head = 0
        t = self.head + used
        if t >= size:
            t -= size
        rec = n + _HDR
        if t + rec > size:
            # not before the end: from the start, the end left (marked when a header fits there)
            if size - t + rec > size - used:
                self.cnt[_UDP_SOCK_RCVBUF_ERRORS] += 1
                return True
            if size - t >= _HDR:
                r[t] = 0xFF
                r[t + 1] = 0xFF
            used += size - t
            t = 0
        elif rec > size - used:
            self.cnt[_UDP_SOCK_RCVBUF_ERRORS] += 1
            return True
        r[t] = n >> 8
        r[t + 1] = n & 0xFF
        r[t + 2] = port >> 8
        r[t + 3] = port & 0xFF
        mem.copy(r, t + 4, src, a, 4)
        mem.copy(r, t + _HDR, src, off, n)
        self.used = used + rec
        self.cnt[_UDP_SOCK_RX] += 1
        return True

    def udp_error(self, err, buf, q, t):
        """tcpip.udp: an ICMP error quoting one of our datagrams (its IP header at buf[q], its UDP
        header at buf[t], the ICMP header the 8 bytes before q). Kept for the next call when this
        socket is connected, the error hard and the quote addressed to the peer."""
        if (self.state != _CONNECTED or buf[q - 8] != 3 or not (_UNREACH_HARD >> buf[q - 7]) & 1
                or not mem.equal(buf, q + 16, self.peer, 0, 4)
                or (buf[t + 2] << 8 | buf[t + 3]) != self.peer_port):
            self.cnt[_UDP_SOCK_ICMP_IGNORED] += 1
            return
        self.err = err
        self.cnt[_UDP_SOCK_ICMP_ERROR] += 1

    def _readable_now(self):
        return self.used > 0 or self.err != 0 or self.state == _CLOSED

    def _first(self, flags):
        """Wait for a datagram: the ring offset of the first one's header (-1: none, non-blocking,
        _STREAM). Raises EBADF, the pending ICMP error (once), EAGAIN (non-blocking or
        MSG_DONTWAIT) or ETIMEDOUT."""
        if not self.used and not self.err:
            self._closed()
            if flags & _MSG_DONTWAIT:
                self.stack.poll()
                ok = self._readable_now()
            else:
                ok = self._wait(self._can_read, None)
            if not ok:
                if self._timeout_ms > 0 and not flags & _MSG_DONTWAIT:
                    raise _oserror(_ETIMEDOUT)
                if flags & _STREAM:
                    return -1
                raise _oserror(_EAGAIN)
            self._closed()
        e = self.err
        if e:
            self.err = 0
            raise _oserror(e)
        r = self.ring
        if _TYPE_CHECKING:
            assert r is not None  # a datagram waits
        h = self.head
        if self.size - h < _HDR or (r[h] == 0xFF and r[h + 1] == 0xFF):
            self.used -= self.size - h  # the writer went on at the start
            h = self.head = 0
        return h

    def _out(self, buf, k, h, flags):
        """Copy up to k bytes of the datagram at h into buf; it leaves the queue unless MSG_PEEK
        (the bytes past k with it). Returns the count."""
        r = self.ring
        if _TYPE_CHECKING:
            assert r is not None  # a datagram waits
        n = r[h] << 8 | r[h + 1]
        if k > n:
            k = n
        if k > 0:
            mem.copy(buf, 0, r, h + _HDR, k)
        if not flags & _MSG_PEEK:
            used = self.used - _HDR - n
            self.used = used
            h += _HDR + n
            self.head = h if used and h < self.size else 0
        return k

    def recv(self, bufsize, flags=0):
        """The next datagram, its first bufsize bytes (the rest is dropped)."""
        h = self._first(flags)
        if h < 0:
            return None
        if _TYPE_CHECKING:
            assert self.ring is not None  # a datagram waits
        n = self.ring[h] << 8 | self.ring[h + 1]
        b = bytearray(n if n < bufsize or bufsize < 0 else bufsize)
        self._out(b, len(b), h, flags)
        return bytes(b)

    def recvfrom(self, bufsize, flags=0):
        """(data, (address, port)) of the next datagram (data: its first bufsize bytes)."""
        h = self._first(flags)
        r = self.ring
        if _TYPE_CHECKING:
            assert r is not None  # a datagram waits
        src = (ipv4.ntoa(r, h + 4), r[h + 2] << 8 | r[h + 3])
        return self.recv(bufsize, flags), src

    def recv_into(self, buf, nbytes=0, flags=0):
        """The next datagram into buf (its first nbytes bytes, or len(buf)); returns the count.
        Allocates nothing with a bytearray (or a memoryview of bytes)."""
        if buf.__class__ is not _bytearray:
            buf = _s._byte_buffer(buf, True)
        k = len(buf)
        if 0 < nbytes < k:
            k = nbytes
        h = self._first(flags)
        return None if h < 0 else self._out(buf, k, h, flags)

    # MicroPython's stream calls on a datagram socket (modlwip: one datagram per read); None
    # when non-blocking and nothing is there
    def read(self, n=0xFFFF):
        return self.recv(n, _STREAM)

    def readinto(self, buf, nbytes=None):
        return self.recv_into(buf, nbytes or 0, _STREAM)

    # -- sending ---------------------------------------------------------------------------------
    def _send(self, data, dst, port):
        t = data.__class__
        if t is not _bytes and t is not _bytearray:
            data = _s._byte_buffer(data, False)  # TypeError for what is no buffer
        n = len(data)
        s = self.stack
        if n > s.mtu - _UDP_IP_HEADERS:
            raise _oserror(_EMSGSIZE)  # no fragmentation
        self._route(dst)
        if not self.port:
            self._take_port(0)  # an ephemeral port, kept (inet_autobind)
        e = self.err
        if e:
            self.err = 0
            raise _oserror(e)
        s.now = s.clock.ticks_ms()  # ARP's timestamps
        if not s.udp.sendto(data, n, dst, port, self.port):
            raise _oserror(_ENETUNREACH)
        return n

    def sendto(self, data, a, b=None):
        """sendto(data, (host, port)) or sendto(data, flags, (host, port)): one datagram; returns
        its length. Numeric addresses only (as MicroPython)."""
        self._closed()
        dst, port = parse_address(a if b is None else b)
        if port == 0:
            raise _oserror(_EINVAL)  # udp_sendmsg
        return self._send(data, dst, port)

    def send(self, data, flags=0):
        if self.state != _CONNECTED:
            raise _oserror(_EBADF if self.state == _CLOSED else _EDESTADDRREQ)
        return self._send(data, self.peer, self.peer_port)

    sendall = send  # one datagram (it returns the length where CPython's returns None)

    def write(self, buf, a=None, b=None):
        """write(buf), write(buf, n), write(buf, off, n): one datagram of those bytes to the
        connected peer, as MicroPython's stream write picks them (off, n >= 0)."""
        if a is not None:
            buf = memoryview(buf)[:a] if b is None else memoryview(buf)[a:a + b]
        return self.send(buf)

    # -- poll ------------------------------------------------------------------------------------
    def _readiness(self, mask):
        """Linux datagram_poll: POLLIN while a datagram waits, POLLOUT always (a datagram leaves
        at once), POLLERR while an ICMP error waits, POLLNVAL once closed (no POLLHUP: nothing
        shuts). POLLIN/POLLOUT only when asked for."""
        if self.state == _CLOSED:
            return _POLLNVAL
        r = _POLLOUT
        if self.used:
            r |= _POLLIN
        r &= mask
        if self.err:
            r |= _POLLERR
        return r
