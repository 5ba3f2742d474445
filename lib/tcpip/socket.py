"""A `socket` module over tcpip, for code written against MicroPython's (or CPython's) sockets.

    stack = Stack(device, addr="192.0.2.2/24", gateway="192.0.2.1")
    set_default_stack(stack)
    ai = getaddrinfo("192.0.2.1", 80, 0, SOCK_STREAM)[0]
    s = socket(ai[0], ai[1], ai[2])
    s.settimeout(5)
    s.connect(ai[-1])
    s.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    status = s.readline()

Installed as sys.modules["socket"] (before the client imports it) unmodified MicroPython code,
asyncio.open_connection included, runs over the stack. docs/SOCKETS.md has the whole API.

Conventions, and where they come from:
- connect() follows Linux (inet_stream_connect): EINPROGRESS / EALREADY / EISCONN on
  non-blocking sockets, SO_ERROR, AF_UNSPEC disconnects; a refused connect is ECONNREFUSED (lwIP
  says ECONNRESET). A blocking connect that hits the socket timeout abandons the attempt (the
  socket is unconnected again, its port released) with ETIMEDOUT.
- Errors are OSError(errno) with the numbers MicroPython's lwIP sockets (extmod/modlwip.c) use:
  EAGAIN when a non-blocking call has nothing to do, ETIMEDOUT when the socket timeout passes,
  the connection's own error (ECONNRESET after a RST, ETIMEDOUT after retransmissions or
  keep-alive gave up, ECONNREFUSED) reported once by the next call, ENOTCONN before connect,
  EBADF after close(). After the error was reported, recv() returns b"" and send() raises EPIPE
  (as Linux; lwIP turns every later call into EBADF).
- recv()/send()/sendall() raise EAGAIN; the stream methods read/readinto/readline/write return
  None instead (MicroPython's stream protocol, which asyncio relies on). Blocking read(n) and
  readinto(buf) wait for n bytes or EOF; blocking write() writes everything (mp_stream_rw).
- On MicroPython the class subclasses io.IOBase and implements ioctl(), so select.poll and
  asyncio streams work on it; the poll ioctl services the stack, so a poll loop drives it.
  On CPython the base is `object` (io.IOBase would add close-on-__del__, a `closed` property and
  fileno()); tcpip.poller.poll is the polling loop there. There is no fileno(): no file
  descriptor exists.
- Buffers: what a normal socket takes. bytes and bytearray go straight to the Tcb; anything else
  goes through tcpip.sockopt.byte_buffer, which counts bytes, not items (an array('i') sends its
  4-byte items), refuses what is no buffer (a list; a str on CPython) with TypeError, and for
  recv_into/readinto anything read-only (bytes, str, a memoryview of them), as MicroPython's and
  CPython's own sockets do.
Per call, recv_into/readinto/write/send allocate nothing beyond what the Tcb needs (a memoryview
of bytes neither; an array of wider items gets a byte view).
"""
import sys

from tcpip import errors
from tcpip import tcp as _tcp
from tcpip.clock import ticks_diff
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_TYPE_CHECKING = const(False)  # True for the type checker only: `if` blocks under it compile to nothing

if sys.implementation.name == "micropython":
    import io

    _Base: type = io.IOBase  # the stream protocol (select.poll, asyncio)

    def _oserror(code):
        return OSError(code)  # e.errno and e.args[0] are the code
else:
    from tcpip._host import oserror as _oserror

    _Base = object

# -- constants: Linux values (CPython and the MicroPython unix port agree) ----------------------
AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
IPPROTO_IP = 0
IPPROTO_TCP = 6
# getaddrinfo errors: MicroPython raises OSError(-2) for a name it cannot resolve (modlwip passes
# lwIP's negative code through; the unix port reports glibc's EAI_NONAME, also -2)
EAI_NONAME = -2
EAI_FAMILY = -6
EAI_SOCKTYPE = -7
EAI_SERVICE = -8
# poll flags (select.POLL*; MicroPython's MP_STREAM_POLL_*)
POLLIN = const(0x01)
POLLOUT = const(0x04)
POLLERR = const(0x08)
POLLHUP = const(0x10)
POLLNVAL = const(0x20)


_MP_STREAM_FLUSH = const(1)
_MP_STREAM_POLL = const(3)
_MP_STREAM_CLOSE = const(4)
_ESTABLISHED = const(3)  # tcpip.tcp_core.ESTABLISHED

# socket states (sock->state in Linux)
UNCONNECTED = 0
CONNECTING = 1
CONNECTED = 2
CLOSED = 3
LISTENING = 4  # listen() was called (tcpip.listener)

error = OSError  # CPython's alias; MicroPython code catches OSError

_default_stack = None
_resolver = None

# Socket.__getattr__: the calls tcpip.sockopt makes (loaded on first use)
_SOCKOPT_CALLS = ("setsockopt", "getsockopt", "bind", "getsockname", "getpeername", "shutdown",
                  "connect_ex", "makefile", "gettimeout")
# Socket._opts (a list tcpip.sockopt makes on the first setsockopt): the ones read here
_NODELAY = const(1)
_KEEPALIVE = const(2)
_RCVBUF = const(6)
_SNDBUF = const(7)
_LINGER = const(8)


def __getattr__(name):
    # the option constants (SOL_SOCKET, SO_*, TCP_*, SHUT_*, LWIP_*) live in tcpip.sockopt, the
    # part of this module loaded on first use: socket.SO_KEEPALIVE and the like load it
    if name.startswith("_"):
        raise AttributeError(name)
    from tcpip import sockopt

    try:
        return getattr(sockopt, name)
    except AttributeError:
        raise AttributeError(name)


# the types of the short path of the data calls, as globals: a builtin's name is found by a scan of
# the builtins table (~1,000 cycles on the RP2040), a global's by hash
_bytes = bytes
_bytearray = bytearray


def _byte_buffer(buf, writable):
    # a data call's buffer that is not bytes or a bytearray: tcpip.sockopt checks it and gives a
    # view whose len() counts bytes (loaded on first use; this name then stands for its function)
    global _byte_buffer
    from tcpip import sockopt

    _byte_buffer = sockopt.byte_buffer
    return _byte_buffer(buf, writable)


def _recv_flags(sock, buf, n, flags):
    # recv / recv_into with flags (MSG_PEEK, MSG_DONTWAIT): tcpip.sockopt's recv_flags (loaded on
    # first use; this name then stands for it)
    global _recv_flags
    from tcpip import sockopt

    _recv_flags = sockopt.recv_flags
    return _recv_flags(sock, buf, n, flags)


_in_place = None  # how _as_bytes makes bytes of a bytearray (_bytes_layout); None: not asked yet


def _bytes_layout():
    """For _as_bytes, asked once: (uctypes.struct, the object layout for it, the bytes type's
    address), or False (CPython; no uctypes; another layout). py/objarray.h: a bytearray is
    {base (the type); typecode:8 | free; len; items}; py/objstr.h: a bytes object is
    {base; hash; len; data}, and MicroPython asserts that len and items / data share their offsets
    (MP_STATIC_ASSERT_STR_ARRAY_COMPATIBLE); a hash of 0 means "not computed yet" (GET_STR_HASH).
    Checked here on live objects before anything is ever written: the len and data words of a
    bytearray and of a bytes object are where that layout puts them; the type word is read off a
    bytes object. (Here, not in tcpip.cold: loading that takes tens of ms on an RP2040, and this
    runs at the first read.)"""
    try:
        import uctypes
    except ImportError:
        return False
    w = 8 if sys.maxsize > 0xFFFFFFFF else 4
    u = uctypes.UINT64 if w == 8 else uctypes.UINT32
    layout = {"type": 0 | u, "hash": w | u, "len": 2 * w | u, "data": 3 * w | u}
    probe = bytearray(b"tcpip\x00")
    ref = bytes(probe)
    for o in (probe, ref):
        v = uctypes.struct(id(o), layout)
        if v.len != len(o) or v.data != uctypes.addressof(o):
            return False
    return (uctypes.struct, layout, uctypes.struct(id(ref), layout).type)


def _as_bytes(b, n):
    """The first n bytes of b, a bytearray nobody else holds, as bytes, allocated once. MicroPython's
    own stream read returns the buffer it read into as the bytes object (py/stream.c,
    mp_obj_new_bytes_from_vstr): no copy. Where _bytes_layout found the object layout (MicroPython,
    through uctypes) b itself becomes that bytes object: a zero hash (computed when asked for,
    py/objstr.h GET_STR_HASH), its length n and the bytes type are written over the bytearray's
    words, whose len and items are where a bytes object keeps len and data; b[n] = 0, the NUL a
    MicroPython bytes object has after its data. Elsewhere (CPython) one copy."""
    global _in_place
    m = _in_place
    if m is None:
        m = _in_place = _bytes_layout()
    if not m:
        return bytes(b) if n == len(b) else bytes(memoryview(b)[:n])
    if n >= len(b):
        b.append(0)
    b[n] = 0
    o = m[0](id(b), m[1])  # uctypes.struct over the object (one small allocation)
    # hash over typecode and free; the type last: from here on b is a bytes object (a
    # uctypes.struct's fields can be written: the stubs give it __getattr__ only)
    o.hash = 0  # pyright: ignore[reportAttributeAccessIssue]
    o.len = n  # pyright: ignore[reportAttributeAccessIssue]
    o.type = m[2]  # pyright: ignore[reportAttributeAccessIssue]
    return b


def set_default_stack(stack):
    """The stack socket() uses when none is given."""
    global _default_stack
    _default_stack = stack


def set_resolver(fn):
    """fn(name) -> "a.b.c.d" or 4 address bytes, or None (or OSError) when the name is unknown:
    getaddrinfo() calls it for anything that is not a dotted IPv4 address. None removes it."""
    global _resolver
    _resolver = fn


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """[(AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (ip, port))] for a numeric IPv4 host or a name the
    resolver (set_resolver) knows (type=SOCK_DGRAM: SOCK_DGRAM, IPPROTO_UDP); OSError(EAI_NONAME)
    (-2, as MicroPython) otherwise."""
    if af != 0 and af != AF_INET:
        raise _oserror(EAI_FAMILY)
    if type != 0 and type != SOCK_STREAM and type != SOCK_DGRAM:
        raise _oserror(EAI_SOCKTYPE)
    if isinstance(port, str):
        if not port.isdigit():
            raise _oserror(EAI_SERVICE)
        port = int(port)
    elif port is None:
        port = 0
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise _oserror(EAI_SERVICE)
    if isinstance(host, (bytes, bytearray)):
        host = host.decode()
    if not isinstance(host, str) or not host:
        raise _oserror(EAI_NONAME)
    try:
        packed = ipv4.aton(host)
    except ValueError:
        packed = None
    if packed is None:
        if ":" in host:
            raise _oserror(EAI_FAMILY)  # an IPv6 literal
        if _resolver is None:
            raise _oserror(EAI_NONAME)
        found = _resolver(host)
        if found is None:
            raise _oserror(EAI_NONAME)
        if isinstance(found, str):
            try:
                packed = ipv4.aton(found)
            except ValueError:
                raise _oserror(EAI_NONAME)
        elif len(found) == 4:
            packed = bytes(found)
        else:
            raise _oserror(EAI_NONAME)
    # SOCK_DGRAM asked for: (AF_INET, SOCK_DGRAM, IPPROTO_UDP (17), ...)
    return [(AF_INET, type or SOCK_STREAM, 17 if type == SOCK_DGRAM else IPPROTO_TCP, "",
             (ipv4.ntoa(packed), port))]


def parse_address(addr):
    """(host, port) -> (4-byte address, port). Arguments of the wrong type raise TypeError, as
    CPython's socket and MicroPython's (modlwip: mp_obj_get_int, mp_obj_str_get_str) do: an
    address that is no tuple (a str), a port that is no int (a str: "80"), a host that is no
    str or bytes; bad values raise OSError(EINVAL / EAFNOSUPPORT)."""
    if not isinstance(addr, (tuple, list)):
        raise TypeError("AF_INET address must be tuple, not " + type(addr).__name__)
    if len(addr) == 4:
        raise _oserror(errors.EAFNOSUPPORT)  # an AF_INET6 (host, port, flowinfo, scope_id) tuple
    if len(addr) != 2:
        raise _oserror(errors.EINVAL)
    host, port = addr
    if not isinstance(port, int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(port).__name__)
    if isinstance(port, bool) or not 0 <= port <= 65535:
        raise _oserror(errors.EINVAL)
    if isinstance(host, (bytes, bytearray)) and len(host) == 4:
        return bytes(host), port
    if not isinstance(host, str):
        if isinstance(host, (bytes, bytearray)):
            raise _oserror(errors.EINVAL)
        raise TypeError("str, bytes or bytearray expected, not " + type(host).__name__)
    if ":" in host:
        raise _oserror(errors.EAFNOSUPPORT)
    if not host:
        return b"\x00\x00\x00\x00", port  # "": INADDR_ANY (bind(("", 80)), as CPython and lwIP)
    try:
        return ipv4.aton(host), port
    except ValueError:
        raise _oserror(errors.EINVAL)


class Socket(_Base):
    """A TCP socket on a tcpip Stack: Socket(stack=None, af=AF_INET, type=SOCK_STREAM, proto=0)."""

    # set by bind() and setsockopt() (tcpip.sockopt); a socket that never calls them reads these
    bound_addr = None
    bound_port = 0
    _opts: list | None = None  # options set (tcpip.sockopt): rings, TCP_NODELAY, keep-alive, linger
    _listener = None  # listen() (tcpip.listener): the tcpip.tcp_listen.Listener

    def __getattr__(self, name):
        # the rarely used calls are tcpip.sockopt's, loaded on first use (a board that never makes
        # them never loads it): setsockopt, getsockopt, bind, getsockname, getpeername, shutdown,
        # connect_ex, makefile, gettimeout
        if name == "listen" or name == "accept":
            from tcpip import listener as sockopt  # the listening socket's calls
        elif name not in _SOCKOPT_CALLS:
            raise AttributeError(name)
        else:
            from tcpip import sockopt

        f = getattr(sockopt, name)
        return lambda *args, **kw: f(self, *args, **kw)

    def __new__(cls, *args, **kw):
        # socket(AF_INET, SOCK_DGRAM), Socket(stack, AF_INET, SOCK_DGRAM): a datagram socket,
        # tcpip.dgram's (imported then: a board that makes none never loads it)
        i = 1 if issubclass(cls, socket) else 2  # where `type` is among the arguments
        if kw.get("type", args[i] if len(args) > i else 0) == SOCK_DGRAM:
            from tcpip import dgram

            return dgram.new(i, args, kw)
        return object.__new__(cls)

    def __init__(self, stack=None, af=AF_INET, type=SOCK_STREAM, proto=0):
        if stack is None:
            stack = _default_stack
        if stack is None:
            raise _oserror(errors.ENODEV)  # no stack given and no default stack set
        if af != AF_INET:
            raise _oserror(errors.EAFNOSUPPORT)
        if type != SOCK_STREAM or proto not in (0, IPPROTO_TCP):
            raise _oserror(errors.EOPNOTSUPP)
        self.stack = stack
        self.state = UNCONNECTED
        self.tcb = None
        self.timeout = None  # None: blocking; 0: non-blocking; seconds otherwise
        self._timeout_ms = -1  # the same in ms: -1 blocking, 0 non-blocking
        self._pending_error = 0     # a failed connect's errno, for SO_ERROR
        self._error_reported = False  # the Tcb's own error was raised once already
        self._rd_shut = False
        self._wr_shut = False
        # bound methods made once: blocking waits hand them to stack.run_until without allocating
        self._can_read = self._readable_now
        self._can_write = self._writable_now

    # -- options ---------------------------------------------------------------------------------
    def settimeout(self, value):
        if value is None:
            self.timeout = None
            self._timeout_ms = -1
            return
        if value < 0:
            raise _oserror(errors.EINVAL)
        ms = int(value * 1000)
        if ms == 0 and value > 0:
            ms = 1
        self.timeout = value
        self._timeout_ms = ms

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    # -- connect (inet_stream_connect) -----------------------------------------------------------
    def connect(self, addr):
        if self.state == CLOSED:
            raise _oserror(errors.EBADF)
        if addr is None or addr == AF_UNSPEC:
            # AF_UNSPEC: abort any connection, back to unconnected (Linux tcp_disconnect)
            if self.tcb is not None:
                self.stack.now = self.stack.clock.ticks_ms()
                self.tcb.abort()
                self.tcb = None
            self.state = UNCONNECTED
            self._pending_error = 0
            self._rd_shut = False
            self._wr_shut = False
            return
        raddr, rport = parse_address(addr)
        if self.state == CONNECTED:
            raise _oserror(errors.EISCONN)
        if self.state == UNCONNECTED:
            if rport == 0:
                # no connection can reach port 0 (our own input drops any reply from it): refused
                # at once, as BSD's in_pcbconnect (Linux would send SYNs to it)
                raise _oserror(errors.EADDRNOTAVAIL)
            o = self._opts
            try:
                self.tcb = self.stack.tcp.connect(self.bound_addr, self.bound_port, raddr, rport,
                                                  o[_RCVBUF] if o else None, o[_SNDBUF] if o else None)
            except OSError as e:  # EADDRNOTAVAIL, ENETUNREACH ...: with e.errno on CPython too
                raise _oserror(e.args[0])
            self.state = CONNECTING
            self._error_reported = False
            if o and o[_NODELAY] is not None:
                self.tcb.set_nodelay(o[_NODELAY])
            if self._timeout_ms == 0:
                raise _oserror(errors.EINPROGRESS)
        elif self._in_handshake() and self._timeout_ms == 0:
            raise _oserror(errors.EALREADY)
        if self._in_handshake():
            ms = None if self._timeout_ms < 0 else self._timeout_ms
            if not self.stack.run_until(self._handshake_over, ms):
                # socket timeout: abandon the attempt, release the port
                if _TYPE_CHECKING:
                    assert self.tcb is not None  # still in the handshake: a Tcb
                self.tcb.fail(errors.ETIMEDOUT)
                self.tcb = None
                self.state = UNCONNECTED
                raise _oserror(errors.ETIMEDOUT)
        self._finish_connect()

    def _in_handshake(self):
        if _TYPE_CHECKING:
            assert self.tcb is not None  # asked while CONNECTING: a Tcb
        st = self.tcb.state
        return st == _tcp.SYN_SENT or st == _tcp.SYN_RECEIVED

    def _handshake_over(self):
        return not self._in_handshake()

    def _finish_connect(self):
        tcb = self.tcb
        if _TYPE_CHECKING:
            assert tcb is not None  # CONNECTING: a Tcb
        if tcb.state == _tcp.CLOSED and tcb.snd_una == tcb.iss:
            # never synchronized: the connect failed. (A connection that was established and
            # has ended since is CONNECTED: the next data call reports how it ended.)
            err = tcb.error or errors.ECONNABORTED
            self.tcb = None
            self.state = UNCONNECTED
            raise _oserror(err)
        self.state = CONNECTED
        if self._opts and self._opts[_KEEPALIVE]:
            from tcpip import sockopt

            sockopt.apply_keepalive(self)

    # -- readiness and waiting -------------------------------------------------------------------
    def _io_tcb(self):
        """The Tcb for a data call: EBADF after close, ENOTCONN before connect; a finished
        non-blocking connect completes here (or raises its error, once)."""
        st = self.state
        if st != CONNECTED:
            if st == CLOSED:
                raise _oserror(errors.EBADF)
            if st != CONNECTING:
                raise _oserror(errors.ENOTCONN)
            if not self._in_handshake():
                self._finish_connect()  # CONNECTED, or raises
        if _TYPE_CHECKING:
            assert self.tcb is not None  # CONNECTING or CONNECTED: a Tcb
        return self.tcb

    def _settle(self):
        """After a wait: a connect still CONNECTING completes (or raises its error)."""
        if self.state == CONNECTING and not self._in_handshake():
            self._finish_connect()

    def _readable_now(self):
        t = self.tcb
        return t is None or self._rd_shut or t.rx_len > 0 or t.fin_received or t.state == _tcp.CLOSED

    def _writable_now(self):
        t = self.tcb
        return t is None or t.writable()

    def _wait(self, ready, start):
        """Service the stack until ready() or the socket timeout (counted from `start`, or from
        now when start is None); non-blocking sockets poll the stack once. True when ready."""
        ms = self._timeout_ms
        if ms == 0:
            self.stack.poll()
            return ready()
        if ms < 0:
            return self.stack.run_until(ready, None)
        if start is not None:
            ms -= ticks_diff(self.stack.clock.ticks_ms(), start)
            if ms <= 0:
                self.stack.poll()
                return ready()
        return self.stack.run_until(ready, ms)

    def _start(self):
        """The start of a call that may wait several times (the timeout covers all of them)."""
        return self.stack.clock.ticks_ms() if self._timeout_ms > 0 else 0

    def _rx_ready(self, start):
        """Wait for something to read: bytes waiting (> 0), 0 at EOF, -1 when non-blocking and
        nothing is there. Raises ETIMEDOUT or the connection's error (once)."""
        tcb = self._io_tcb()
        if self._rd_shut:
            return 0
        if not (tcb.rx_len > 0 or tcb.fin_received or tcb.state == _tcp.CLOSED):
            if not self._wait(self._can_read, start):
                if self._timeout_ms == 0:
                    return -1
                raise _oserror(errors.ETIMEDOUT)
            self._settle()
            tcb = self.tcb
            if _TYPE_CHECKING:
                assert tcb is not None  # still CONNECTING or CONNECTED after the wait
        n = tcb.rx_len
        if n:
            return n
        if tcb.state == _tcp.CLOSED and tcb.error and not self._error_reported:
            self._error_reported = True
            raise _oserror(tcb.error)
        return 0

    def _check_send(self, tcb):
        # modlwip reports a pending error (state < 0, e.g. ERR_RST -> ECONNRESET) before sending;
        # afterwards Linux says EPIPE (lwIP: EBADF)
        if self._wr_shut or tcb.fin_pending:
            raise _oserror(errors.EPIPE)
        if tcb.state == _tcp.CLOSED:
            if tcb.error and not self._error_reported:
                self._error_reported = True
                raise _oserror(tcb.error)
            raise _oserror(errors.EPIPE)

    def _send_some(self, buf, off, n, start):
        """Queue up to n bytes of buf[off:]: the count, or -1 when non-blocking and no room."""
        tcb = self._io_tcb()
        self._check_send(tcb)
        if n <= 0:
            return 0
        if not tcb.writable():
            if not self._wait(self._can_write, start):
                if self._timeout_ms == 0:
                    return -1
                raise _oserror(errors.ETIMEDOUT)
            self._settle()
            tcb = self.tcb
            if _TYPE_CHECKING:
                assert tcb is not None  # still CONNECTING or CONNECTED after the wait
            self._check_send(tcb)
        return tcb.send(buf, off, n)

    def _readiness(self, mask):
        """Poll flags now (no stack service): POLLIN when data, the peer's FIN or an error waits;
        POLLOUT when connected with a third of the send ring free (or a send would fail at once);
        POLLHUP when both directions are shut (Linux tcp_poll: SHUTDOWN_MASK or TCP_CLOSE, so
        also an unconnected socket); POLLERR while an error is pending; POLLNVAL once closed.
        POLLIN/POLLOUT only when asked for in mask; the others always. (modlwip's
        lwip_socket_ioctl likewise: HUP for a new socket, RD|WR once the peer closed, HUP after
        a RST, NVAL once closed.)"""
        st = self.state
        if st == CLOSED:
            return POLLNVAL
        if st == LISTENING:
            if _TYPE_CHECKING:
                assert self._listener is not None  # made by listen()
            return POLLIN & mask if self._listener.queue else 0  # a connection waits for accept()
        if st == UNCONNECTED:
            r = POLLHUP | (mask & POLLOUT)
            if self._pending_error:
                r |= POLLERR
            return r
        t = self.tcb
        if _TYPE_CHECKING:
            assert t is not None  # CONNECTING or CONNECTED: a Tcb
        ts = t.state
        if ts == _tcp.CLOSED:
            r = POLLHUP | (mask & (POLLIN | POLLOUT))
            if (st == CONNECTING and t.snd_una == t.iss) or (t.error and not self._error_reported):
                r |= POLLERR
            return r
        if ts == _tcp.SYN_SENT or ts == _tcp.SYN_RECEIVED:
            return 0
        r = 0
        rd_shut = self._rd_shut or t.fin_received
        if rd_shut or t.rx_len > 0:
            r |= POLLIN
        if self._wr_shut or t.fin_pending:
            r |= POLLOUT  # a send fails at once (EPIPE)
            if rd_shut:
                r |= POLLHUP
        elif 2 * (t.tx_size - t.tx_len) >= t.tx_len and t.tx_len < t.tx_size:
            r |= POLLOUT  # a third of the ring or more free (Linux sk_stream_is_writeable)
        return r & (mask | POLLERR | POLLHUP)

    def ioctl(self, req, arg):
        """MicroPython's stream ioctl: MP_STREAM_POLL (3) services the stack once and returns the
        ready flags; MP_STREAM_CLOSE (4) closes. select.poll and asyncio call it."""
        if req == _MP_STREAM_POLL:
            if self.state != CLOSED:
                self.stack.poll()
            return self._readiness(arg)
        if req == _MP_STREAM_CLOSE:
            self.close()
            return 0
        if req == _MP_STREAM_FLUSH:
            return 0
        return -1

    # -- data: socket calls (raise EAGAIN) -------------------------------------------------------
    def send(self, data, flags=0):
        t = data.__class__
        if t is not _bytes and t is not _bytearray:
            data = _byte_buffer(data, False)
        if self.state == CONNECTED:
            t = self.tcb
            if _TYPE_CHECKING:
                assert t is not None  # CONNECTED: a Tcb
            if t.state == _ESTABLISHED and not self._wr_shut:
                n = len(data)
                if 0 < n <= t.tx_size - t.tx_len:
                    return t.send(data, 0, n)  # the common case: it all fits
        n = self._send_some(data, 0, len(data), None)
        if n < 0:
            raise _oserror(errors.EAGAIN)
        return n

    def sendall(self, data, flags=0) -> "int | None":  # None (a datagram socket's: the length)
        n = data.__class__
        if n is not _bytes and n is not _bytearray:
            data = _byte_buffer(data, False)
        n = len(data)
        if self._timeout_ms == 0:
            # lwIP: a non-blocking sendall that cannot queue everything queues nothing (EAGAIN)
            tcb = self._io_tcb()
            self._check_send(tcb)
            if n > tcb.tx_free():
                self.stack.poll()
                if n > tcb.tx_free():
                    raise _oserror(errors.EAGAIN)
        start = self._start()
        off = 0
        for _ in range(n + 1):  # bounded: every round queues at least one byte or raises
            if off >= n:
                return
            r = self._send_some(data, off, n - off, start)
            if r < 0:
                raise _oserror(errors.EAGAIN)  # non-blocking, still connecting
            off += r

    def recv(self, bufsize, flags=0):
        if bufsize <= 0:
            self._io_tcb()
            return b""
        if flags:
            return _recv_flags(self, None, bufsize, flags)  # MSG_PEEK, MSG_DONTWAIT
        k = self._rx_ready(None)
        if _TYPE_CHECKING:
            assert self.tcb is not None  # _rx_ready raises without one
        if k < 0:
            raise _oserror(errors.EAGAIN)
        if k > bufsize:
            k = bufsize
        if k <= 0:
            return b""
        b = bytearray(k + 1)  # + 1: the NUL after a bytes object's data (_as_bytes)
        self.tcb.recv_into(b, 0, k)
        return _as_bytes(b, k)

    def recv_into(self, buf, nbytes=0, flags=0):
        if buf.__class__ is not _bytearray:
            buf = _byte_buffer(buf, True)  # TypeError for bytes, str, a read-only memoryview
        # (no more locals here: with a sixth, the frame of every call would come from the heap on
        # MicroPython, docs/ARCHITECTURE.md "What things cost on an RP2040")
        t = self.tcb
        if t is not None and t.rx_len and self.state == CONNECTED and not self._rd_shut and not flags:
            if 0 < nbytes < len(buf):
                return t.recv_into(buf, 0, nbytes)
            return t.recv_into(buf, 0, len(buf))  # the common case: data waits
        if not 0 < nbytes < len(buf):
            nbytes = len(buf)
        if flags:
            return _recv_flags(self, buf, nbytes, flags)  # MSG_PEEK, MSG_DONTWAIT
        t = self._rx_ready(None)  # bytes waiting, 0 at EOF, -1: non-blocking and nothing there
        if _TYPE_CHECKING:
            assert self.tcb is not None  # _rx_ready raises without one
        if t < 0:
            raise _oserror(errors.EAGAIN)
        if t == 0 or nbytes == 0:
            return 0
        return self.tcb.recv_into(buf, 0, nbytes)

    # -- data: stream calls (MicroPython's stream protocol: None instead of EAGAIN) --------------
    def write(self, buf, a=None, b=None):
        """write(buf), write(buf, n), write(buf, off, n): blocking -> everything, returns the
        count; non-blocking -> what fits now, None when nothing does."""
        t = buf.__class__
        if t is not _bytes and t is not _bytearray:
            buf = _byte_buffer(buf, False)
        if b is None and self.state == CONNECTED:
            t = self.tcb
            if _TYPE_CHECKING:
                assert t is not None  # CONNECTED: a Tcb
            if t.state == _ESTABLISHED and not self._wr_shut:
                n = len(buf) if a is None else a
                if 0 < n <= len(buf) and n <= t.tx_size - t.tx_len:
                    return t.send(buf, 0, n)  # the common case: it all fits
        size = len(buf)
        if b is None:
            off = 0
            n = size if a is None else a
        else:
            if _TYPE_CHECKING:
                assert a is not None  # write(buf, off, n)
            off = a if 0 <= a < size else size  # a negative off is huge as a size_t there
            n = b
        if n > size - off:
            n = size - off  # py/stream.c stream_write_method clamps both to the buffer
        if n <= 0:
            self._check_send(self._io_tcb())
            return 0
        if self._timeout_ms == 0:
            r = self._send_some(buf, off, n, None)
            return None if r < 0 else r
        start = self._start()
        done = 0
        for _ in range(n + 1):  # bounded: every round queues at least one byte or raises
            if done >= n:
                break
            done += self._send_some(buf, off + done, n - done, start)
        return done

    def readinto(self, buf, nbytes=None):
        """Blocking: fill buf (or nbytes of it) unless EOF comes first; non-blocking: what is
        there, None when nothing is (and no EOF)."""
        if buf.__class__ is not _bytearray:
            buf = _byte_buffer(buf, True)
        n = len(buf)
        if nbytes is not None and 0 <= nbytes < n:
            n = nbytes
        if self._timeout_ms == 0:
            k = self._rx_ready(None)
            if _TYPE_CHECKING:
                assert self.tcb is not None  # _rx_ready raises without one
            if k < 0:
                return None
            return self.tcb.recv_into(buf, 0, n) if k and n else 0
        if n == 0:
            self._io_tcb()
            return 0
        start = self._start()
        got = 0
        while got < n:
            k = self._rx_ready(start)
            if _TYPE_CHECKING:
                assert self.tcb is not None  # _rx_ready raises without one
            if k == 0:
                break
            got += self.tcb.recv_into(buf, got, n - got)
        return got

    def read(self, n=-1):
        """read(n): blocking -> n bytes unless EOF comes first; non-blocking -> what is there
        (None when nothing is). read() reads to EOF (non-blocking: what is there). As
        MicroPython's stream read over modlwip (py/stream.c mp_stream_rw loops until n).
        The result is allocated once, as MicroPython's own read: one buffer is read into and
        becomes the bytes object (_as_bytes; CPython: one copy at the end). read() grows one
        buffer while it reads, by a receive ring's size when it is full (stream_readall grows by
        256 bytes): nothing else is allocated between two growths, so the heap can grow it in
        place."""
        if n is None or n < 0:
            # to EOF (non-blocking: what there is so far)
            start = self._start()
            out = None
            got = 0
            while True:
                k = self._rx_ready(start)
                if _TYPE_CHECKING:
                    assert self.tcb is not None  # _rx_ready raises without one
                if k <= 0:
                    if out is None:
                        return None if k < 0 else b""
                    return _as_bytes(out, got)
                if out is None:
                    out = bytearray(k + 1)  # + 1: the NUL after a bytes object's data
                elif len(out) - got <= k:
                    out.extend(self.tcb.rx)  # room for k more (a ring holds at least k): no temporary
                got += self.tcb.recv_into(out, got, k)
        if n == 0:
            return b""
        if self._timeout_ms == 0:
            k = self._rx_ready(None)
            if _TYPE_CHECKING:
                assert self.tcb is not None  # _rx_ready raises without one
            if k < 0:
                return None
            if k > n:
                k = n
            b = bytearray(k + 1)
            if k:
                self.tcb.recv_into(b, 0, k)
            return _as_bytes(b, k)
        b = bytearray(n + 1)
        return _as_bytes(b, self.readinto(b, n))

    def readline(self, limit=-1):
        """One line, b"\\n" included (b"" at EOF). Non-blocking: the part that is there, None when
        nothing is (py/stream.c stream_unbuffered_readline, the readline of modlwip's sockets;
        asyncio's Stream.readline joins the parts)."""
        if limit == 0:
            return b""
        start = self._start()
        line = None
        got = 0
        while True:
            k = self._rx_ready(start)
            if _TYPE_CHECKING:
                assert self.tcb is not None  # _rx_ready raises without one
            if k <= 0:
                if line is not None:
                    return _as_bytes(line, got)
                return None if k < 0 else b""
            # up to and including the first b"\n" in the receive ring (which may be a longer
            # buffer from the pool: Tcb.rx_size is what it uses)
            tcb = self.tcb
            ring = tcb.rx
            head = tcb.rx_head
            size = tcb.rx_size
            end = head + k
            take = ring.find(b"\n", head, end if end < size else size) + 1
            if take:
                take -= head
            elif end > size:
                take = ring.find(b"\n", 0, end - size) + 1
                if take:
                    take += size - head
            done = take > 0
            if not done:
                take = k
            if limit is not None and limit > 0:
                room = limit - got
                if take >= room:
                    take = room
                    done = True
            if line is None:
                line = bytearray(take + 1)  # + 1: the NUL after a bytes object's data (_as_bytes)
            elif len(line) - got <= take:
                line.extend(bytes(take + 1))  # a line that came in pieces
            got += tcb.recv_into(line, got, take)
            if done:
                return _as_bytes(line, got)

    # -- ending ----------------------------------------------------------------------------------
    def close(self):
        """FIN after the queued data (RST if received data was left unread, as Linux); with
        SO_LINGER 0 an abort (RST); with SO_LINGER n > 0 wait up to n s for the FIN's ACK.
        The connection finishes alone (FIN-WAIT, TIME-WAIT). Closing twice is fine."""
        if self.state == CLOSED:
            return
        if self.state == LISTENING:
            from tcpip import listener

            listener.stop(self)
        tcb = self.tcb
        self.tcb = None
        linger = self._opts[_LINGER] if self._opts else -1
        if tcb is not None:
            st = tcb.state
            if linger == 0 and st in (_tcp.ESTABLISHED, _tcp.CLOSE_WAIT, _tcp.FIN_WAIT_1,
                                      _tcp.FIN_WAIT_2, _tcp.SYN_RECEIVED, _tcp.SYN_SENT):
                tcb.abort()  # Linux tcp_close -> tcp_disconnect: RST where tcp_need_reset()
            else:
                tcb.close()
                if linger > 0:
                    def closed():
                        s = tcb.state
                        return s != _tcp.FIN_WAIT_1 and s != _tcp.CLOSING and s != _tcp.LAST_ACK

                    self.stack.run_until(closed, linger * 1000)
        if self.bound_port:
            from tcpip import sockopt

            sockopt.unbind(self)
        self.state = CLOSED

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        t = self.tcb
        return "<tcpip socket %s %s>" % (("unconnected", "connecting", "connected", "closed")[self.state],
                                        t.state_name() if t is not None else "-")


class socket(Socket):
    """socket(af=AF_INET, type=SOCK_STREAM, proto=0, stack=None): a Socket on the default stack
    (set_default_stack), with the standard constructor signature."""

    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0, stack=None):
        Socket.__init__(self, stack, af, type, proto)
