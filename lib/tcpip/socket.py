"""A socket-like object over tcpip, with Linux's connect() semantics (inet_stream_connect).

    stack = Stack(device, addr="192.0.2.2/24", gateway="192.0.2.1")
    s = socket(stack)
    s.settimeout(5)
    s.connect(("192.0.2.1", 80))       # or ("192.0.2.1", 80) with setblocking(False) -> EINPROGRESS

Socket states: unconnected, connecting, connected (sock->state in Linux). Errors are
OSError(errno) with Linux numbers (tcpip.errors). A timed-out blocking connect abandons the attempt
(the socket is unconnected again and its ephemeral port released), like MicroPython's own sockets.
"""
from tcpip import errors
from tcpip import tcp as _tcp
from tcpip.wire import ipv4

AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
IPPROTO_TCP = 6
SOL_SOCKET = 1
SO_ERROR = 4
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2

UNCONNECTED = 0
CONNECTING = 1
CONNECTED = 2
CLOSED = 3

_default_stack = None


def set_default_stack(stack):
    global _default_stack
    _default_stack = stack


def parse_address(addr):
    """(host, port) -> (4-byte address, port); OSError(EINVAL / EAFNOSUPPORT) for anything else."""
    if not isinstance(addr, (tuple, list)):
        raise OSError(errors.EINVAL)
    if len(addr) == 4:
        raise OSError(errors.EAFNOSUPPORT)  # an AF_INET6 (host, port, flowinfo, scope_id) tuple
    if len(addr) != 2:
        raise OSError(errors.EINVAL)
    host, port = addr
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise OSError(errors.EINVAL)
    if isinstance(host, (bytes, bytearray)) and len(host) == 4:
        return bytes(host), port
    if not isinstance(host, str):
        raise OSError(errors.EINVAL)
    if ":" in host:
        raise OSError(errors.EAFNOSUPPORT)
    try:
        return ipv4.aton(host), port
    except ValueError:
        raise OSError(errors.EINVAL)


class Socket:
    def __init__(self, stack=None, af=AF_INET, type=SOCK_STREAM, proto=0):
        if stack is None:
            stack = _default_stack
        if stack is None:
            raise OSError(errors.ENODEV)  # no stack given and no default stack set
        if af != AF_INET:
            raise OSError(errors.EAFNOSUPPORT)
        if type != SOCK_STREAM or proto not in (0, IPPROTO_TCP):
            raise OSError(errors.EOPNOTSUPP)
        self.stack = stack
        self.state = UNCONNECTED
        self.tcb = None
        self.timeout = None  # None: blocking; 0: non-blocking; seconds otherwise
        self.bound_addr = None
        self.bound_port = 0
        self._pending_error = 0

    # -- options ---------------------------------------------------------------------------------
    def settimeout(self, value):
        if value is not None and value < 0:
            raise OSError(errors.EINVAL)
        self.timeout = value

    def setblocking(self, flag):
        self.timeout = None if flag else 0

    def getsockopt(self, level, name):
        if level == SOL_SOCKET and name == SO_ERROR:
            err = self._take_error()
            return err
        raise OSError(errors.ENOPROTOOPT)

    def _take_error(self):
        """SO_ERROR: the pending error of a failed connect, cleared by reading it."""
        if self.state == CONNECTING and self.tcb is not None and self.tcb.state == _tcp.CLOSED:
            self._pending_error = self.tcb.error or errors.ECONNABORTED
            self.tcb = None
            self.state = UNCONNECTED
        err = self._pending_error
        self._pending_error = 0
        return err

    # -- addresses -------------------------------------------------------------------------------
    def bind(self, addr):
        if self.state != UNCONNECTED or self.bound_port:
            raise OSError(errors.EINVAL)
        host, port = parse_address(addr)
        tcp = self.stack.tcp
        if host != b"\x00\x00\x00\x00" and host != self.stack.route.addr:
            raise OSError(errors.EADDRNOTAVAIL)
        if port and tcp.port_in_use(port):
            raise OSError(errors.EADDRINUSE)
        if port == 0:
            # bind to an ephemeral port now (inet_csk_get_port picks one; any free one will do)
            def free(p):
                return not tcp.port_in_use(p) and not any(t.local_port == p for t in tcp.tcbs)

            port = tcp.ports.allocate(host, b"\x00\x00\x00\x00", 0, free)
        self.bound_addr = host
        self.bound_port = port
        tcp.bound.append([host, port])

    def getsockname(self):
        if self.tcb is not None:
            return (ipv4.ntoa(self.tcb.local_addr), self.tcb.local_port)
        return (ipv4.ntoa(self.bound_addr or b"\x00\x00\x00\x00"), self.bound_port)

    def getpeername(self):
        if self.state != CONNECTED or self.tcb is None:
            raise OSError(errors.ENOTCONN)
        return (ipv4.ntoa(self.tcb.remote_addr), self.tcb.remote_port)

    # -- connect (inet_stream_connect) -----------------------------------------------------------
    def connect(self, addr):
        if self.state == CLOSED:
            raise OSError(errors.EBADF)
        if addr is None or addr == AF_UNSPEC:
            self._disconnect()
            return
        raddr, rport = parse_address(addr)
        if self.state == CONNECTED:
            raise OSError(errors.EISCONN)
        if self.state == UNCONNECTED:
            self.tcb = self.stack.tcp.connect(self.bound_addr, self.bound_port, raddr, rport)
            self.state = CONNECTING
            if self.timeout == 0:
                raise OSError(errors.EINPROGRESS)
        elif self._in_handshake() and self.timeout == 0:
            raise OSError(errors.EALREADY)
        if self._in_handshake():
            ms = None if self.timeout is None else int(self.timeout * 1000)
            if not self.stack.run_until(self._handshake_over, ms):
                # socket timeout: abandon the attempt, release the port
                self.tcb.fail(errors.ETIMEDOUT)
                self.tcb = None
                self.state = UNCONNECTED
                raise OSError(errors.ETIMEDOUT)
        self._finish_connect()

    def connect_ex(self, addr):
        try:
            self.connect(addr)
        except OSError as e:
            return e.errno if hasattr(e, "errno") else e.args[0]
        return 0

    def _in_handshake(self):
        st = self.tcb.state
        return st == _tcp.SYN_SENT or st == _tcp.SYN_RECEIVED

    def _handshake_over(self):
        return not self._in_handshake()

    def _finish_connect(self):
        tcb = self.tcb
        if tcb.state == _tcp.CLOSED:
            err = tcb.error or errors.ECONNABORTED
            self.tcb = None
            self.state = UNCONNECTED
            raise OSError(err)
        self.state = CONNECTED

    def _disconnect(self):
        """connect() with AF_UNSPEC: abort any connection, back to unconnected (tcp_disconnect)."""
        if self.tcb is not None:
            self.stack.now = self.stack.clock.ticks_ms()
            self.tcb.abort()
            self.tcb = None
        self.state = UNCONNECTED
        self._pending_error = 0

    # -- data (minimal; the full API is the next issue) ------------------------------------------
    def _connected_tcb(self):
        if self.state == CONNECTING and self.tcb is not None and not self._in_handshake():
            try:
                self._finish_connect()
            except OSError:
                raise OSError(errors.ENOTCONN)
        if self.state != CONNECTED:
            raise OSError(errors.ENOTCONN)
        return self.tcb

    def _wait(self, ready):
        if self.timeout == 0:
            return ready()
        ms = None if self.timeout is None else int(self.timeout * 1000)
        return self.stack.run_until(ready, ms)

    def send(self, data):
        tcb = self._connected_tcb()
        mv = memoryview(data)
        if tcb.state == _tcp.CLOSED:
            raise OSError(tcb.error or errors.EPIPE)
        if tcb.fin_pending:
            raise OSError(errors.EPIPE)

        def room():
            return tcb.state == _tcp.CLOSED or len(tcb.tx) > tcb.tx_len

        if not self._wait(room):
            raise OSError(errors.EAGAIN if self.timeout == 0 else errors.ETIMEDOUT)
        if tcb.state == _tcp.CLOSED:
            raise OSError(tcb.error or errors.EPIPE)
        return tcb.send(mv, 0, len(mv))

    def sendall(self, data):
        mv = memoryview(data)
        off = 0
        while off < len(mv):
            off += self.send(mv[off:])

    write = sendall

    def recv_into(self, buf, nbytes=0):
        tcb = self._connected_tcb()
        n = nbytes or len(buf)

        def readable():
            return tcb.rx_len > 0 or tcb.fin_received or tcb.state == _tcp.CLOSED

        if not self._wait(readable):
            raise OSError(errors.EAGAIN if self.timeout == 0 else errors.ETIMEDOUT)
        got = tcb.recv_into(buf, 0, n)
        if got == 0 and tcb.state == _tcp.CLOSED and tcb.error:
            raise OSError(tcb.error)
        return got

    def recv(self, bufsize):
        buf = bytearray(bufsize)
        n = self.recv_into(buf)
        return bytes(buf[:n])

    read = recv

    def shutdown(self, how):
        tcb = self._connected_tcb()
        if how == SHUT_WR or how == SHUT_RDWR:
            tcb.shutdown_write()

    def close(self):
        if self.tcb is not None:
            self.tcb.close()
            self.tcb = None
        if self.bound_port:
            tcp = self.stack.tcp
            for i in range(len(tcp.bound)):
                if tcp.bound[i][1] == self.bound_port:
                    tcp.bound.pop(i)
                    break
            self.bound_port = 0
        self.state = CLOSED

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def socket(af=AF_INET, type=SOCK_STREAM, proto=0, stack=None):
    """Like socket.socket(); uses the default stack unless one is given."""
    return Socket(stack, af, type, proto)
